/* CSRs, the built-in CA and issued code-signing certificates, all signed in
 * a real SoftHSM2 token and checked with OpenSSL; and the checks an imported
 * certificate must pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "rsign/alg.h"
#include "rsign/base64.h"
#include "rsign/log.h"
#include "server/hsm/hsm.h"
#include "server/hsm/pki.h"
#include "tests/unit/softhsm_fixture.h"
#include "tests/unit/tap.h"

static srv_hsm *hsm;

typedef struct {
	srv_pki_key k;
	unsigned char *spki;
	EVP_PKEY *pk;
} test_key;

static int key_new(test_key *t, rs_key_alg alg)
{
	const unsigned char *p;
	size_t len = 0;

	memset(t, 0, sizeof *t);
	t->k.alg = alg;
	if (RAND_bytes(t->k.ckid, SRV_CKID_LEN) != 1 ||
	    srv_hsm_generate(hsm, alg, t->k.ckid, rs_key_alg_name(alg), &t->spki, &len) !=
		    SRV_HSM_OK)
		return -1;
	t->k.spki = t->spki;
	t->k.spki_len = len;
	p = t->spki;
	t->pk = d2i_PUBKEY(NULL, &p, (long)len);
	return t->pk ? 0 : -1;
}

static void key_free(test_key *t)
{
	free(t->spki);
	EVP_PKEY_free(t->pk);
}

static X509 *pem_x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

static char *x509_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;
	if (b && PEM_write_bio_X509(b, x) && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (s = malloc((size_t)n + 1))) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(b);
	return s;
}

static char *cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

static int cn_is(X509_NAME *n, const char *cn)
{
	char buf[256];
	return X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof buf) > 0 &&
	       strcmp(buf, cn) == 0;
}

/* Verifies leaf up to ca as OpenSSL would for a code-signing chain: strict
 * X.509 checks, then the EKU (3.0 has no code-signing purpose). */
static int chain_verifies(X509 *leaf, X509 *ca)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = st && ctx && X509_STORE_add_cert(st, ca) &&
		 X509_STORE_CTX_init(ctx, st, leaf, NULL);

	if (ok) {
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
		ok = X509_verify_cert(ctx) == 1;
		if (!ok)
			printf("# X509_verify_cert: %s\n",
			       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
	ok = ok && (X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) &&
	     (X509_get_extended_key_usage(leaf) & XKU_CODE_SIGN);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

static test_key ca_ec, ca_rsa, leaf_rsa, leaf_ec;
static char *ca_ec_pem, *ca_rsa_pem, *leaf_pem, *leaf_ec_pem;

/* The CAs test_ca makes: the RSA-2048 and P-256 ones are kept to issue. */
static const struct {
	rs_key_alg alg;
	int nid;
} ca_cases[] = {
	{RS_KEY_RSA_2048, NID_sha256WithRSAEncryption},
	{RS_KEY_EC_P256, NID_ecdsa_with_SHA256},
	{RS_KEY_EC_P384, NID_ecdsa_with_SHA384},
	{RS_KEY_EC_P521, NID_ecdsa_with_SHA512},
};

static void test_ca(void)
{
	char err[256];

	for (size_t i = 0; i < TAP_COUNT(ca_cases); i++) {
		test_key t, *keep = ca_cases[i].alg == RS_KEY_RSA_2048	? &ca_rsa
				    : ca_cases[i].alg == RS_KEY_EC_P256 ? &ca_ec
									: &t;
		char **keep_pem = keep == &ca_rsa  ? &ca_rsa_pem
				  : keep == &ca_ec ? &ca_ec_pem
						   : NULL;
		char *pem = NULL;
		X509 *x = NULL;
		int r = -1;

		if (key_new(keep, ca_cases[i].alg) == 0)
			r = srv_pki_ca_create(hsm, &keep->k, "rsign test CA", 3650, &pem, err,
					      sizeof err);
		else
			printf("# no %s key for the CA\n", rs_key_alg_name(ca_cases[i].alg));
		x = r == 0 ? pem_x509(pem) : NULL;
		ok(x && X509_verify(x, keep->pk) == 1 &&
			   X509_get_signature_nid(x) == ca_cases[i].nid,
		   "ca_create_self_signed_verifies_%s", rs_key_alg_name(ca_cases[i].alg));
		ok(x && X509_check_ca(x) == 1 && (X509_get_extension_flags(x) & EXFLAG_CA) &&
			   X509_get_key_usage(x) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN) &&
			   X509_get0_subject_key_id(x) &&
			   X509_EXTENSION_get_critical(X509_get_ext(
				   x, X509_get_ext_by_NID(x, NID_basic_constraints, -1))) &&
			   X509_EXTENSION_get_critical(
				   X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1))) &&
			   cn_is(X509_get_subject_name(x), "rsign test CA") &&
			   X509_get_version(x) == X509_VERSION_3,
		   "ca_create_sets_ca_true_keycertsign_crlsign_ski_%s",
		   rs_key_alg_name(ca_cases[i].alg));
		X509_free(x);
		if (keep_pem)
			*keep_pem = pem;
		else
			free(pem);
		if (keep == &t)
			key_free(&t);
	}
	{
		char *pem = NULL;
		char long_cn[80];
		memset(long_cn, 'a', sizeof long_cn - 1);
		long_cn[sizeof long_cn - 1] = '\0';
		ok(srv_pki_ca_create(hsm, &ca_ec.k, "", 365, &pem, err, sizeof err) ==
				   SRV_PKI_EINVAL &&
			   !pem && *err,
		   "ca_create_rejects_an_empty_common_name");
		ok(srv_pki_ca_create(hsm, &ca_ec.k, long_cn, 365, &pem, err, sizeof err) ==
				   SRV_PKI_EINVAL &&
			   !pem,
		   "ca_create_rejects_a_common_name_over_64_characters");
		ok(srv_pki_ca_create(hsm, &ca_ec.k, "x", 0, &pem, err, sizeof err) ==
			   SRV_PKI_EINVAL,
		   "ca_create_rejects_zero_days");
	}
}

static void test_issue(void)
{
	char err[256];
	time_t nb = time(NULL) - 60, na = nb + 30 * 86400;
	X509 *leaf, *ca = pem_x509(ca_ec_pem);
	int r;

	r = srv_pki_issue(hsm, &ca_ec.k, ca_ec_pem, &leaf_rsa.k, "Release Signing", nb, na,
			  &leaf_pem, err, sizeof err);
	leaf = r == 0 ? pem_x509(leaf_pem) : NULL;
	ok(leaf && X509_verify(leaf, ca_ec.pk) == 1, "issue_cert_signature_verifies_with_ca_key");
	ok(leaf && ca && chain_verifies(leaf, ca), "issue_cert_verifies_to_ca_for_code_signing");
	{
		int have = leaf && ca; /* else every check below fails */
		const ASN1_INTEGER *sn = have ? X509_get0_serialNumber(leaf) : NULL;
		const ASN1_OCTET_STRING *aki = have ? X509_get0_authority_key_id(leaf) : NULL;
		const ASN1_OCTET_STRING *ca_ski = have ? X509_get0_subject_key_id(ca) : NULL;
		uint32_t fl = have ? X509_get_extension_flags(leaf) : 0;
		ok(have && X509_get_version(leaf) == X509_VERSION_3 &&
			   cn_is(X509_get_subject_name(leaf), "Release Signing") &&
			   X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca)) ==
				   0,
		   "issue_cert_is_v3_with_cn_and_ca_issuer");
		ok(sn && sn->length == 16 && !(sn->type & V_ASN1_NEG),
		   "issue_cert_serial_is_16_positive_bytes");
		ok(have && (fl & EXFLAG_BCONS) && !(fl & EXFLAG_CA) &&
			   X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE &&
			   X509_get_extended_key_usage(leaf) == XKU_CODE_SIGN,
		   "issue_cert_is_ca_false_digitalsignature_codesigning");
		ok(have && X509_get0_subject_key_id(leaf) && aki && ca_ski &&
			   ASN1_OCTET_STRING_cmp(aki, ca_ski) == 0,
		   "issue_cert_aki_matches_ca_ski");
		ok(have && EVP_PKEY_eq(X509_get0_pubkey(leaf), leaf_rsa.pk) == 1,
		   "issue_cert_carries_the_subject_key");
		ok(have && ASN1_TIME_cmp_time_t(X509_get0_notBefore(leaf), nb) == 0 &&
			   ASN1_TIME_cmp_time_t(X509_get0_notAfter(leaf), na) == 0,
		   "issue_cert_validity_as_requested");
	}
	X509_free(leaf);

	r = srv_pki_issue(hsm, &ca_rsa.k, ca_rsa_pem, &leaf_ec.k, "EC signer", nb, na, &leaf_ec_pem,
			  err, sizeof err);
	leaf = r == 0 ? pem_x509(leaf_ec_pem) : NULL;
	X509_free(ca);
	ca = pem_x509(ca_rsa_pem);
	ok(leaf && ca && X509_get_signature_nid(leaf) == NID_sha256WithRSAEncryption &&
		   chain_verifies(leaf, ca),
	   "issue_by_rsa_ca_for_ec_key_verifies");
	X509_free(leaf);
	X509_free(ca);
	{
		char *pem = NULL;
		ok(srv_pki_issue(hsm, &ca_ec.k, ca_rsa_pem, &leaf_rsa.k, "x", nb, na, &pem, err,
				 sizeof err) != 0 &&
			   !pem,
		   "issue_refuses_a_ca_cert_that_does_not_match_the_ca_key");
		ok(srv_pki_issue(hsm, &ca_ec.k, ca_ec_pem, &leaf_rsa.k, "x", na, nb, &pem, err,
				 sizeof err) == SRV_PKI_EINVAL,
		   "issue_refuses_reversed_validity");
		ok(srv_pki_issue(hsm, &ca_ec.k, ca_ec_pem, &leaf_rsa.k, "x", nb,
				 (time_t)253402300800LL, &pem, err, sizeof err) == SRV_PKI_EINVAL,
		   "issue_refuses_dates_past_9999");
		ok(srv_pki_issue(hsm, &ca_ec.k, ca_ec_pem, &leaf_rsa.k, "a\tb", nb, na, &pem, err,
				 sizeof err) == SRV_PKI_EINVAL,
		   "issue_refuses_control_characters_in_the_name");
	}
}

static void test_csr(void)
{
	static const char *bad[] = {"",	   "CN",  "/CN=a//O=b", "CN=a,,O=b", "CN=a\\,b", "XX=a",
				    "CN=", "/=x", "CN=a+O=b",	"CN=a\nb",   "/CN=a/"};
	char err[256];
	char *pem1 = NULL, *pem2 = NULL, *pem3 = NULL;
	X509_REQ *r1 = NULL, *r2 = NULL, *r3 = NULL;
	BIO *b;
	int all = 1;

	ok(srv_pki_csr(hsm, &leaf_rsa.k, "/CN=Release Signing/O=Example Ltd/C=GB", &pem1, err,
		       sizeof err) == 0,
	   "csr_from_slash_subject");
	ok(srv_pki_csr(hsm, &leaf_ec.k, "CN=Release Signing, O=Example Ltd,C=GB", &pem2, err,
		       sizeof err) == 0,
	   "csr_from_rfc4514_subject");
	ok(srv_pki_csr(hsm, &ca_ec.k, "/C=GB/O=Example Ltd/CN=Release Signing", &pem3, err,
		       sizeof err) == 0,
	   "csr_with_ec_p256_key");
	if ((b = BIO_new_mem_buf(pem1 ? pem1 : "", -1))) {
		r1 = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(pem2 ? pem2 : "", -1))) {
		r2 = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(pem3 ? pem3 : "", -1))) {
		r3 = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	ok(r1 && X509_REQ_verify(r1, leaf_rsa.pk) == 1 && r2 &&
		   X509_REQ_verify(r2, leaf_ec.pk) == 1 && r3 && X509_REQ_verify(r3, ca_ec.pk) == 1,
	   "csr_signature_verifies_with_the_key");
	ok(r1 && r3 && X509_REQ_get_signature_nid(r1) == NID_sha256WithRSAEncryption &&
		   X509_REQ_get_signature_nid(r3) == NID_ecdsa_with_SHA256,
	   "csr_signature_algorithm_follows_the_key");
	ok(r1 && r2 && cn_is(X509_REQ_get_subject_name(r1), "Release Signing") &&
		   X509_NAME_cmp(X509_REQ_get_subject_name(r2), X509_REQ_get_subject_name(r3)) ==
			   0 &&
		   X509_NAME_entry_count(X509_REQ_get_subject_name(r1)) == 3,
	   "csr_rfc4514_subject_is_most_specific_first");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *pem = NULL;
		err[0] = '\0';
		if (srv_pki_csr(hsm, &leaf_rsa.k, bad[i], &pem, err, sizeof err) !=
			    SRV_PKI_EINVAL ||
		    pem || !*err) {
			printf("# accepted subject \"%s\"\n", bad[i]);
			all = 0;
		}
		free(pem);
	}
	ok(all, "csr_rejects_malformed_subjects");
	X509_REQ_free(r1);
	X509_REQ_free(r2);
	X509_REQ_free(r3);
	free(pem1);
	free(pem2);
	free(pem3);
}

/* A certificate OpenSSL signs with a throwaway in-memory key. */
static char *foreign_cert(const char *eku)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	char *pem = NULL;

	if (pk && x && X509_set_version(x, X509_VERSION_3) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 7) &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				       (const unsigned char *)"foreign", -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(x)) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, pk)) {
		X509_EXTENSION *ext = NULL;
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		if (eku)
			ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_ext_key_usage, eku);
		if ((!eku || (ext && X509_add_ext(x, ext, -1))) && X509_sign(x, pk, EVP_sha256()))
			pem = x509_pem(x);
		X509_EXTENSION_free(ext);
	}
	X509_free(x);
	EVP_PKEY_free(pk);
	return pem;
}

/* Re-encodes pem with one DER bit flipped: in the first occurrence of what,
 * or else from_end bytes before the end. */
static char *tamper(const char *pem, const char *what, size_t from_end)
{
	X509 *x = pem_x509(pem);
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	char *out = NULL;
	BIO *b;

	X509_free(x);
	if (n <= 0 || (size_t)n <= from_end)
		return NULL;
	if (what) {
		unsigned char *at = memmem(der, (size_t)n, what, strlen(what));
		if (!at) {
			OPENSSL_free(der);
			return NULL;
		}
		*at ^= 0x01;
	} else {
		der[n - 1 - from_end] ^= 0x01;
	}
	b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio(b, "CERTIFICATE", "", der, n)) {
		char *data;
		long len = BIO_get_mem_data(b, &data);
		out = malloc((size_t)len + 1);
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(b);
	OPENSSL_free(der);
	return out;
}

static int rejected(const char *cert, const char *chain, const char *want)
{
	srv_cert_info ci;
	char err[256] = "";
	int r = srv_pki_parse_cert(cert, chain, &ci, err, sizeof err);
	if (r == 0)
		srv_cert_info_free(&ci);
	else
		printf("# rejected: %s\n", err);
	return r == SRV_PKI_EINVAL && !ci.cert_pem &&
	       (!want ? *err != 0 : strstr(err, want) != NULL);
}

static void test_parse(void)
{
	srv_cert_info ci;
	char err[256] = "";
	X509 *leaf = leaf_pem ? pem_x509(leaf_pem) : NULL;
	char *no_eku = foreign_cert(NULL), *server_eku = foreign_cert("serverAuth"),
	     *foreign_cs = foreign_cert("codeSigning");
	char *two = cat(leaf_pem, leaf_pem), *trailing = cat(leaf_pem, "garbage\n"),
	     *leading = cat("garbage\n", leaf_pem), *padded = cat("\n  ", leaf_pem);
	char *bad_sig = tamper(leaf_pem, NULL, 3), *bad_body = tamper(leaf_pem, "Release", 0);
	char *bad_der = tamper(leaf_pem, NULL, 200);
	char *chain2 = cat(ca_ec_pem, ca_rsa_pem);
	int r;

	r = srv_pki_parse_cert(leaf_pem, NULL, &ci, err, sizeof err);
	ok(r == 0, "parse_cert_accepts_an_issued_certificate");
	{
		int have = r == 0 && leaf; /* else every check below fails */
		BIGNUM *bn = have ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL) : NULL;
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		ok(have && hex && strcmp(ci.common_name, "Release Signing") == 0 &&
			   strcmp(ci.serial, hex) == 0 &&
			   strspn(ci.serial, "0123456789ABCDEF") == strlen(ci.serial),
		   "parse_cert_reports_cn_and_upper_hex_serial");
		ok(have && ASN1_TIME_cmp_time_t(X509_get0_notBefore(leaf), ci.not_before) == 0 &&
			   ASN1_TIME_cmp_time_t(X509_get0_notAfter(leaf), ci.not_after) == 0 &&
			   ci.not_after > ci.not_before,
		   "parse_cert_reports_validity_dates");
		ok(have && ci.spki_len == leaf_rsa.k.spki_len &&
			   memcmp(ci.spki, leaf_rsa.k.spki, ci.spki_len) == 0,
		   "parse_cert_reports_the_public_key");
		ok(have && strcmp(ci.cert_pem, leaf_pem) == 0 && strcmp(ci.chain_pem, "") == 0,
		   "parse_cert_normalises_pem");
		OPENSSL_free(hex);
		BN_free(bn);
		if (r == 0)
			srv_cert_info_free(&ci);
	}
	r = srv_pki_parse_cert(padded, ca_ec_pem, &ci, err, sizeof err);
	ok(r == 0 && strcmp(ci.chain_pem, ca_ec_pem) == 0 && strcmp(ci.cert_pem, leaf_pem) == 0,
	   "parse_cert_accepts_the_right_ca_chain");
	if (r == 0)
		srv_cert_info_free(&ci);
	r = srv_pki_parse_cert(leaf_pem, chain2, &ci, err, sizeof err);
	ok(r == 0 && strcmp(ci.chain_pem, chain2) == 0, "parse_cert_keeps_a_longer_chain");
	if (r == 0)
		srv_cert_info_free(&ci);
	r = srv_pki_parse_cert(foreign_cs, NULL, &ci, err, sizeof err);
	ok(r == 0 && strcmp(ci.common_name, "foreign") == 0 && strcmp(ci.serial, "07") == 0,
	   "parse_cert_accepts_a_foreign_code_signing_cert");
	if (r == 0)
		srv_cert_info_free(&ci);

	ok(rejected(leaf_pem, ca_rsa_pem,
		    "certificate signature does not verify against the chain"),
	   "parse_cert_rejects_a_different_ca");
	ok(rejected(no_eku, NULL, "certificate lacks the codeSigning extended key usage"),
	   "parse_cert_rejects_a_cert_without_eku");
	ok(rejected(server_eku, NULL, "certificate lacks the codeSigning extended key usage"),
	   "parse_cert_rejects_a_cert_without_codesigning_eku");
	ok(bad_sig && rejected(bad_sig, ca_ec_pem, "does not verify"),
	   "parse_cert_rejects_a_tampered_signature");
	ok(bad_body && rejected(bad_body, ca_ec_pem, "does not verify"),
	   "parse_cert_rejects_a_tampered_body");
	ok(bad_der && rejected(bad_der, ca_ec_pem, NULL), "parse_cert_rejects_corrupted_der");
	ok(rejected(two, NULL, "more than one certificate"), "parse_cert_rejects_two_certificates");
	ok(rejected(trailing, NULL, "outside PEM"), "parse_cert_rejects_trailing_garbage");
	ok(rejected(leading, NULL, "outside PEM"), "parse_cert_rejects_leading_garbage");
	ok(rejected("garbage", NULL, NULL) && rejected("", NULL, NULL) &&
		   rejected("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NULL,
			    NULL),
	   "parse_cert_rejects_garbage");
	ok(rejected(leaf_pem, "garbage", "chain"), "parse_cert_rejects_a_garbage_chain");
	X509_free(leaf);
	free(no_eku);
	free(server_eku);
	free(foreign_cs);
	free(two);
	free(trailing);
	free(leading);
	free(padded);
	free(bad_sig);
	free(bad_body);
	free(bad_der);
	free(chain2);
	srv_cert_info_free(NULL);
}

static void test_b64(void)
{
	char *s = srv_pki_b64_der(leaf_rsa.k.spki, leaf_rsa.k.spki_len);
	unsigned char back[1024];
	size_t n = 0;
	ok(s && !strchr(s, '\n') &&
		   rs_b64_decode(s, strlen(s), back, sizeof back, &n) == RS_B64_OK &&
		   n == leaf_rsa.k.spki_len && memcmp(back, leaf_rsa.k.spki, n) == 0,
	   "b64_der_round_trips_the_spki");
	free(s);
}

int main(void)
{
	char err[256] = "";
	const char *lvl = getenv("RSIGN_TEST_LOG");

	plan(1 + (2 * TAP_COUNT(ca_cases) + 3) + 13 + 7 + 1 + 19 + 1);
	rs_log_set_level(lvl ? rs_log_level_parse(lvl) : RS_LOG_ERROR);
	if (fixture_softhsm_setup("pki", err, sizeof err) != 0)
		tap_bail("cannot create the SoftHSM2 fixture: %s", err);
	hsm = fixture_softhsm_token(2, err, sizeof err);
	ok(hsm != NULL, "token_ready");
	if (!hsm)
		tap_bail("no token: %s", err);
	if (key_new(&leaf_rsa, RS_KEY_RSA_2048) != 0 || key_new(&leaf_ec, RS_KEY_EC_P384) != 0)
		tap_bail("cannot generate the leaf keys in the token");
	test_ca();
	if (!ca_ec_pem || !ca_rsa_pem)
		tap_bail("no CA certificate to issue with (see the ca_create checks)");
	test_issue();
	test_csr();
	test_b64();
	if (!leaf_pem)
		tap_bail("no issued certificate to parse (see the issue checks)");
	test_parse();
	srv_hsm_close(hsm);
	key_free(&ca_ec);
	key_free(&ca_rsa);
	key_free(&leaf_rsa);
	key_free(&leaf_ec);
	free(ca_ec_pem);
	free(ca_rsa_pem);
	free(leaf_pem);
	free(leaf_ec_pem);
	ok(fixture_softhsm_teardown() == 0, "fixture_directory_removed");
	return tap_done();
}
