/* Objects and attributes: what each signer's certificate, public key,
 * private key and CA certificate carry; the attribute-reading rules
 * (sensitive, unknown, length query, short buffer); find templates; reads
 * during a find; stable handles; write protection; lazy certificate fetch. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rsign/base64.h"
#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static CK_SESSION_HANDLE srsa, sec;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static int attr_eq(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, const void *v,
		   size_t n)
{
	unsigned char buf[4096];
	CK_ATTRIBUTE a = {t, buf, sizeof(buf)};

	return p11->C_GetAttributeValue(s, h, &a, 1) == CKR_OK && a.ulValueLen == n &&
	       memcmp(buf, v, n) == 0;
}

static int bool_is(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_BBOOL v)
{
	return attr_eq(s, h, t, &v, sizeof(v));
}

static int ulong_is(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
	return attr_eq(s, h, t, &v, sizeof(v));
}

static size_t der_of_name(X509_NAME *n, unsigned char *out)
{
	unsigned char *p = out;

	return (size_t)i2d_X509_NAME(n, &p);
}

static void signer_ckaid(const char *name, unsigned char id[16])
{
	const char *s = fake_signer_id(f, name);
	char hex[33];
	size_t i, o = 0, len;

	for (i = 0; s[i]; i++)
		if (s[i] != '-')
			hex[o++] = s[i];
	hex[o] = '\0';
	if (rs_hex_decode(hex, id, 16, &len) != 0)
		memset(id, 0, 16);
}

static void test_find_templates(void)
{
	X509 *cert = fake_signer_cert(f, FAKE_RSA);
	unsigned char id[16], subj[512], iss[512], serial[64], *p = serial;
	size_t subj_len = der_of_name(X509_get_subject_name(cert), subj);
	size_t iss_len = der_of_name(X509_get_issuer_name(cert), iss);
	size_t serial_len = (size_t)i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &p);
	CK_OBJECT_CLASS cls_cert = CKO_CERTIFICATE, cls_priv = CKO_PRIVATE_KEY;
	CK_KEY_TYPE rsa = CKK_RSA, ec = CKK_EC;
	CK_ULONG user = 1;
	CK_ATTRIBUTE t[3];
	int before = fake_count(f, CNT_CERT);

	signer_ckaid(FAKE_RSA, id);
	ok(mt_find_count(srsa, NULL, 0) == 4, "find_all_gives_cert_pubkey_privkey_and_ca_cert");
	ok(mt_find_count(srsa, NULL, 0) == 4 && fake_count(f, CNT_CERT) == before + 1,
	   "certificate_fetched_once_per_slot");
	t[0] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	ok(mt_find_count(srsa, t, 1) == 4, "find_token_true_gives_all");
	t[0] = (CK_ATTRIBUTE){CKA_TOKEN, &no, sizeof(no)};
	ok(mt_find_count(srsa, t, 1) == 0, "find_token_false_gives_none");
	t[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls_cert, sizeof(cls_cert)};
	ok(mt_find_count(srsa, t, 1) == 2, "find_class_certificate_gives_signer_and_ca");
	t[1] = (CK_ATTRIBUTE){CKA_CERTIFICATE_CATEGORY, &user, sizeof(user)};
	ok(mt_find_count(srsa, t, 2) == 1, "find_certificate_category_user_gives_signer_cert");
	t[0] = (CK_ATTRIBUTE){CKA_ID, id, sizeof(id)};
	ok(mt_find_count(srsa, t, 1) == 3, "find_id_from_signer_uuid_gives_three_objects");
	t[1] = (CK_ATTRIBUTE){CKA_CLASS, &cls_priv, sizeof(cls_priv)};
	ok(mt_find_count(srsa, t, 2) == 1, "find_id_and_class_gives_the_private_key");
	t[1] = (CK_ATTRIBUTE){CKA_CLASS, &cls_cert, sizeof(cls_cert)};
	ok(mt_find_count(srsa, t, 2) == 1, "find_id_and_certificate_gives_only_the_signer_cert");
	t[0] = (CK_ATTRIBUTE){CKA_LABEL, (void *)FAKE_RSA, strlen(FAKE_RSA)};
	ok(mt_find_count(srsa, t, 1) == 3, "find_label_gives_three_objects");
	t[0] = (CK_ATTRIBUTE){CKA_LABEL, (void *)"rsa-signer CA 1", 15};
	ok(mt_find_count(srsa, t, 1) == 1, "find_ca_label_gives_the_ca_cert");
	t[0] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &rsa, sizeof(rsa)};
	ok(mt_find_count(srsa, t, 1) == 2, "find_key_type_rsa_gives_both_keys");
	t[0] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &ec, sizeof(ec)};
	ok(mt_find_count(srsa, t, 1) == 0 && mt_find_count(sec, t, 1) == 2,
	   "find_key_type_ec_only_on_the_ec_token");
	t[0] = (CK_ATTRIBUTE){CKA_SUBJECT, subj, subj_len};
	ok(mt_find_count(srsa, t, 1) == 3, "find_subject_gives_cert_and_keys");
	t[0] = (CK_ATTRIBUTE){CKA_ISSUER, iss, iss_len};
	ok(mt_find_count(srsa, t, 1) == 2, "find_issuer_gives_signer_and_self_signed_ca_cert");
	t[1] = (CK_ATTRIBUTE){CKA_SERIAL_NUMBER, serial, serial_len};
	ok(mt_find_count(srsa, t, 2) == 1, "find_issuer_and_serial_gives_the_signer_cert");
	t[0] = (CK_ATTRIBUTE){CKA_VENDOR_DEFINED + 7, &yes, sizeof(yes)};
	ok(mt_find_count(srsa, t, 1) == 0, "find_unknown_attribute_gives_none");
}

static void test_find_state(void)
{
	CK_OBJECT_HANDLE h[8], h2[8];
	CK_ULONG n = 0, n2 = 0, m = 0;
	char label[64];
	CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
	int good;

	ok(p11->C_FindObjects(srsa, h, 8, &n) == CKR_OPERATION_NOT_INITIALIZED,
	   "find_objects_without_init_is_operation_not_initialized");
	ok(p11->C_FindObjectsInit(srsa, NULL, 0) == CKR_OK &&
		   p11->C_FindObjectsInit(srsa, NULL, 0) == CKR_OPERATION_ACTIVE,
	   "second_find_init_is_operation_active");
	good = p11->C_FindObjects(srsa, h, 1, &n) == CKR_OK && n == 1 &&
	       p11->C_GetAttributeValue(srsa, h[0], &a, 1) == CKR_OK &&
	       p11->C_FindObjects(srsa, h + 1, 7, &m) == CKR_OK && m == 3;
	ok(good, "attribute_reads_work_during_an_active_find");
	ok(p11->C_FindObjects(srsa, h2, 8, &n2) == CKR_OK && n2 == 0, "find_ends_with_zero");
	ok(p11->C_FindObjectsFinal(srsa) == CKR_OK &&
		   p11->C_FindObjectsFinal(srsa) == CKR_OPERATION_NOT_INITIALIZED,
	   "find_final_ends_the_find");
	p11->C_FindObjectsInit(srsa, NULL, 0);
	p11->C_FindObjects(srsa, h2, 8, &n2);
	p11->C_FindObjectsFinal(srsa);
	ok(n2 == 4 && memcmp(h, h2, 4 * sizeof(h[0])) == 0, "object_handles_are_stable");
	a.ulValueLen = sizeof(label);
	ok(p11->C_GetAttributeValue(sec, h[0], &a, 1) == CKR_OBJECT_HANDLE_INVALID,
	   "handle_of_another_token_is_object_handle_invalid");
}

static void test_attribute_rules(void)
{
	CK_OBJECT_HANDLE priv = mt_find(srsa, CKO_PRIVATE_KEY);
	CK_OBJECT_HANDLE cert;
	CK_OBJECT_CLASS c = CKO_CERTIFICATE;
	CK_ULONG user = 1;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &c, sizeof(c)},
			     {CKA_CERTIFICATE_CATEGORY, &user, sizeof(user)}};
	unsigned char buf[4096], small[4];
	CK_ATTRIBUTE a[3];
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 0, size = 0;
	X509 *x = fake_signer_cert(f, FAKE_RSA);
	unsigned char *der = NULL;
	int der_len = i2d_X509(x, &der);

	p11->C_FindObjectsInit(srsa, t, 2);
	p11->C_FindObjects(srsa, &h, 1, &n);
	p11->C_FindObjectsFinal(srsa);
	cert = h;

	a[0] = (CK_ATTRIBUTE){CKA_VALUE, buf, sizeof(buf)};
	ok(p11->C_GetAttributeValue(srsa, priv, a, 1) == CKR_ATTRIBUTE_SENSITIVE &&
		   a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION,
	   "private_value_is_attribute_sensitive_and_unavailable");
	a[0] = (CK_ATTRIBUTE){CKA_PRIVATE_EXPONENT, buf, sizeof(buf)};
	a[1] = (CK_ATTRIBUTE){CKA_PRIME_1, NULL, 0};
	ok(p11->C_GetAttributeValue(srsa, priv, a, 2) == CKR_ATTRIBUTE_SENSITIVE &&
		   a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
		   a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION,
	   "private_exponent_and_primes_are_attribute_sensitive");
	ok(bool_is(srsa, priv, CKA_SENSITIVE, CK_TRUE) &&
		   bool_is(srsa, priv, CKA_EXTRACTABLE, CK_FALSE) &&
		   bool_is(srsa, priv, CKA_ALWAYS_SENSITIVE, CK_TRUE) &&
		   bool_is(srsa, priv, CKA_NEVER_EXTRACTABLE, CK_TRUE) &&
		   bool_is(srsa, priv, CKA_SIGN, CK_TRUE) &&
		   bool_is(srsa, priv, CKA_DECRYPT, CK_FALSE) &&
		   bool_is(srsa, priv, CKA_ALWAYS_AUTHENTICATE, CK_FALSE) &&
		   bool_is(srsa, priv, CKA_TOKEN, CK_TRUE),
	   "private_key_flags_as_design_says");
	a[0] = (CK_ATTRIBUTE){CKA_LABEL, buf, sizeof(buf)};
	a[1] = (CK_ATTRIBUTE){CKA_VALUE_LEN, buf + 100, 8};
	a[2] = (CK_ATTRIBUTE){CKA_ID, buf + 200, 16};
	ok(p11->C_GetAttributeValue(srsa, cert, a, 3) == CKR_ATTRIBUTE_TYPE_INVALID &&
		   a[0].ulValueLen == strlen(FAKE_RSA) &&
		   a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION && a[2].ulValueLen == 16,
	   "unknown_attribute_is_type_invalid_unavailable_and_the_others_are_filled");
	a[0] = (CK_ATTRIBUTE){CKA_VALUE, NULL, 0};
	ok(p11->C_GetAttributeValue(srsa, cert, a, 1) == CKR_OK &&
		   a[0].ulValueLen == (CK_ULONG)der_len,
	   "null_value_gives_the_length");
	a[0] = (CK_ATTRIBUTE){CKA_VALUE, small, sizeof(small)};
	ok(p11->C_GetAttributeValue(srsa, cert, a, 1) == CKR_BUFFER_TOO_SMALL &&
		   a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION,
	   "short_buffer_is_buffer_too_small_and_unavailable");
	ok(attr_eq(srsa, cert, CKA_VALUE, der, (size_t)der_len), "certificate_value_is_the_der");
	ok(ulong_is(srsa, cert, CKA_CERTIFICATE_TYPE, CKC_X_509) &&
		   bool_is(srsa, cert, CKA_TRUSTED, CK_FALSE) &&
		   bool_is(srsa, cert, CKA_PRIVATE, CK_FALSE) &&
		   ulong_is(srsa, cert, CKA_CERTIFICATE_CATEGORY, 1),
	   "certificate_attributes_as_design_says");
	ok(p11->C_GetObjectSize(srsa, cert, &size) == CKR_OK && size > (CK_ULONG)der_len,
	   "object_size_is_answered");
	OPENSSL_free(der);
}

static void test_key_material(void)
{
	CK_OBJECT_HANDLE pub = mt_find(srsa, CKO_PUBLIC_KEY), priv = mt_find(srsa, CKO_PRIVATE_KEY);
	CK_OBJECT_HANDLE ecpub = mt_find(sec, CKO_PUBLIC_KEY),
			 ecpriv = mt_find(sec, CKO_PRIVATE_KEY);
	EVP_PKEY *pk = X509_get0_pubkey(fake_signer_cert(f, FAKE_RSA));
	EVP_PKEY *epk = X509_get0_pubkey(fake_signer_cert(f, FAKE_EC));
	static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
					     0xce, 0x3d, 0x03, 0x01, 0x07};
	static const unsigned char e65537[] = {0x01, 0x00, 0x01};
	unsigned char n[512], spki[1024], point[80], ecp[80], *p = spki;
	CK_MECHANISM_TYPE mechs[32];
	CK_ATTRIBUTE a = {CKA_ALLOWED_MECHANISMS, mechs, sizeof(mechs)};
	BIGNUM *bn = NULL;
	size_t n_len = 0, plen = 0, i;
	int spki_len, has_rsa = 0, has_ec = 0;

	memset(mechs, 0, sizeof(mechs));
	if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn))
		n_len = (size_t)BN_bn2bin(bn, n);
	BN_free(bn);
	spki_len = i2d_PUBKEY(pk, &p);
	ok(attr_eq(srsa, pub, CKA_MODULUS, n, n_len) && attr_eq(srsa, priv, CKA_MODULUS, n, n_len),
	   "rsa_modulus_on_both_keys_is_the_certificates");
	ok(ulong_is(srsa, pub, CKA_MODULUS_BITS, 2048) &&
		   attr_eq(srsa, pub, CKA_PUBLIC_EXPONENT, e65537, 3) &&
		   ulong_is(srsa, pub, CKA_KEY_TYPE, CKK_RSA) &&
		   bool_is(srsa, pub, CKA_VERIFY, CK_TRUE),
	   "rsa_public_key_attributes");
	ok(attr_eq(srsa, pub, CKA_PUBLIC_KEY_INFO, spki, (size_t)spki_len) &&
		   attr_eq(srsa, priv, CKA_PUBLIC_KEY_INFO, spki, (size_t)spki_len),
	   "public_key_info_is_the_certificates_spki");
	ok(attr_eq(sec, ecpub, CKA_EC_PARAMS, p256, sizeof(p256)) &&
		   attr_eq(sec, ecpriv, CKA_EC_PARAMS, p256, sizeof(p256)),
	   "ec_params_is_the_p256_oid");
	EVP_PKEY_get_octet_string_param(epk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					sizeof(point), &plen);
	ecp[0] = 0x04;
	ecp[1] = (unsigned char)plen;
	memcpy(ecp + 2, point, plen);
	ok(plen == 65 && attr_eq(sec, ecpub, CKA_EC_POINT, ecp, plen + 2),
	   "ec_point_is_a_der_octet_string_of_the_uncompressed_point");
	ok(p11->C_GetAttributeValue(srsa, priv, &a, 1) == CKR_OK, "allowed_mechanisms_readable");
	for (i = 0; i < a.ulValueLen / sizeof(mechs[0]); i++) {
		has_rsa |= mechs[i] == CKM_SHA256_RSA_PKCS_PSS;
		has_ec |= mechs[i] == CKM_ECDSA;
	}
	ok(has_rsa && !has_ec, "allowed_mechanisms_fit_the_key");
}

static void test_write_protected(void)
{
	CK_OBJECT_HANDLE h = mt_find(srsa, CKO_CERTIFICATE), nh;
	CK_ATTRIBUTE a = {CKA_LABEL, (void *)"x", 1};

	ok(p11->C_CreateObject(srsa, &a, 1, &nh) == CKR_TOKEN_WRITE_PROTECTED,
	   "create_object_is_token_write_protected");
	ok(p11->C_DestroyObject(srsa, h) == CKR_TOKEN_WRITE_PROTECTED,
	   "destroy_object_is_token_write_protected");
	ok(p11->C_SetAttributeValue(srsa, h, &a, 1) == CKR_TOKEN_WRITE_PROTECTED,
	   "set_attribute_is_token_write_protected");
}

int main(void)
{
	plan(4 + 17 + 7 + 9 + 7 + 3);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	mt_load();
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK, "initialize");
	ok(fake_count(f, CNT_CERT) == 0, "no_certificate_fetched_before_it_is_needed");
	srsa = mt_open(FAKE_RSA);
	sec = mt_open(FAKE_EC);
	ok(srsa != CK_INVALID_HANDLE && sec != CK_INVALID_HANDLE && fake_count(f, CNT_CERT) == 0,
	   "sessions_open_without_fetching_certificates");
	test_find_templates();
	test_find_state();
	test_attribute_rules();
	test_key_material();
	test_write_protected();
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize");
	mt_unload();
	fake_free(f);
	return tap_done();
}
