/* Key generation in the token, and the SubjectPublicKeyInfo built from the
 * public key object's attributes. Only public attributes are ever read. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include "rsign/log.h"
#include "server/hsm/hsm_int.h"

/* DER OBJECT IDENTIFIERs for CKA_EC_PARAMS, and OpenSSL's group names. */
static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
					 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};

typedef struct {
	const unsigned char *oid;
	size_t oid_len;
	const char *group;
	size_t field_bytes;
} ec_curve;

static const ec_curve *curve_of(rs_key_alg alg)
{
	static const ec_curve c[] = {
		{oid_p256, sizeof oid_p256, "prime256v1", 32},
		{oid_p384, sizeof oid_p384, "secp384r1", 48},
		{oid_p521, sizeof oid_p521, "secp521r1", 66},
	};
	switch (alg) {
	case RS_KEY_EC_P256:
		return &c[0];
	case RS_KEY_EC_P384:
		return &c[1];
	case RS_KEY_EC_P521:
		return &c[2];
	default:
		return NULL;
	}
}

static int pkey_to_spki(EVP_PKEY *pk, unsigned char **out, size_t *out_len)
{
	unsigned char *der, *p;
	int n = i2d_PUBKEY(pk, NULL);
	if (n <= 0)
		return -1;
	der = p = malloc((size_t)n);
	if (!der)
		return -1;
	if (i2d_PUBKEY(pk, &p) != n) {
		free(der);
		return -1;
	}
	*out = der;
	*out_len = (size_t)n;
	return 0;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY *pk = NULL;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static int spki_rsa(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
		    int bits, unsigned char **out, size_t *out_len)
{
	int ret = -1;
	EVP_PKEY *pk = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();

	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pk = pkey_from_params("RSA", bld);
	if (pk && EVP_PKEY_get_bits(pk) == bits)
		ret = pkey_to_spki(pk, out, out_len);
	EVP_PKEY_free(pk);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return ret;
}

/* CKA_EC_POINT is a DER OCTET STRING (PKCS#11 2.40, SoftHSM2); some tokens
 * return the bare uncompressed point. Accept both. */
static int ec_point_unwrap(const unsigned char *in, size_t len, size_t field_bytes,
			   const unsigned char **pt)
{
	size_t want = 1 + 2 * field_bytes;
	size_t hdr;

	if (len == want && in[0] == 0x04) {
		*pt = in;
		return 0;
	}
	if (len < 2 || in[0] != 0x04)
		return -1;
	if (in[1] < 0x80)
		hdr = 2;
	else if (in[1] == 0x81 && len >= 3 && in[2] >= 0x80)
		hdr = 3;
	else
		return -1;
	if ((hdr == 2 ? in[1] : in[2]) != want || len != hdr + want || in[hdr] != 0x04)
		return -1;
	*pt = in + hdr;
	return 0;
}

static int spki_ec(const ec_curve *cv, const unsigned char *params, size_t params_len,
		   const unsigned char *point, size_t point_len, unsigned char **out,
		   size_t *out_len)
{
	int ret = -1;
	EVP_PKEY *pk = NULL;
	const unsigned char *pt;
	OSSL_PARAM_BLD *bld;

	if (params_len != cv->oid_len || memcmp(params, cv->oid, params_len) != 0)
		return -1;
	if (ec_point_unwrap(point, point_len, cv->field_bytes, &pt) != 0)
		return -1;
	bld = OSSL_PARAM_BLD_new();
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, cv->group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
					     1 + 2 * cv->field_bytes))
		pk = pkey_from_params("EC", bld);
	if (pk)
		ret = pkey_to_spki(pk, out, out_len);
	EVP_PKEY_free(pk);
	OSSL_PARAM_BLD_free(bld);
	return ret;
}

typedef struct {
	rs_key_alg alg;
	const unsigned char *ckid;
	const char *label;
	int generated; /* a pair was made in an attempt that later failed */
	unsigned char *spki;
	size_t spki_len;
} gen_ctx;

/* Destroys every object with CKA_ID ckid: leftovers of a failed attempt. */
static CK_RV destroy_by_id(srv_hsm *h, CK_SESSION_HANDLE s, const unsigned char *ckid,
			   CK_ULONG *count, const char **fn)
{
	CK_ATTRIBUTE t = {CKA_ID, (void *)ckid, SRV_CKID_LEN};
	CK_OBJECT_HANDLE objs[8];
	CK_ULONG n = 0;
	CK_RV rv, rv2;

	*count = 0;
	*fn = "C_FindObjectsInit";
	rv = h->mod->C_FindObjectsInit(s, &t, 1);
	if (rv != CKR_OK)
		return rv;
	*fn = "C_FindObjects";
	rv = h->mod->C_FindObjects(s, objs, 8, &n);
	rv2 = h->mod->C_FindObjectsFinal(s);
	if (rv == CKR_OK)
		rv = rv2;
	*count = n;
	*fn = "C_DestroyObject";
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
		rv = h->mod->C_DestroyObject(s, objs[i]);
	return rv;
}

static CK_RV count_by_id(srv_hsm *h, CK_SESSION_HANDLE s, const unsigned char *ckid, CK_ULONG *n,
			 const char **fn)
{
	CK_ATTRIBUTE t = {CKA_ID, (void *)ckid, SRV_CKID_LEN};
	CK_OBJECT_HANDLE obj;
	CK_RV rv, rv2;

	*fn = "C_FindObjectsInit";
	rv = h->mod->C_FindObjectsInit(s, &t, 1);
	if (rv != CKR_OK)
		return rv;
	*fn = "C_FindObjects";
	rv = h->mod->C_FindObjects(s, &obj, 1, n);
	rv2 = h->mod->C_FindObjectsFinal(s);
	return rv == CKR_OK ? rv2 : rv;
}

static CK_RV read_spki(srv_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, gen_ctx *c,
		       const char **fn)
{
	const ec_curve *cv = curve_of(c->alg);
	unsigned char a[1024], b[1024];
	CK_ATTRIBUTE t[2] = {
		{cv ? CKA_EC_PARAMS : CKA_MODULUS, a, sizeof a},
		{cv ? CKA_EC_POINT : CKA_PUBLIC_EXPONENT, b, sizeof b},
	};
	CK_RV rv;
	int r;

	*fn = "C_GetAttributeValue";
	rv = h->mod->C_GetAttributeValue(s, pub, t, 2);
	if (rv != CKR_OK)
		return rv;
	if (cv)
		r = spki_ec(cv, a, t[0].ulValueLen, b, t[1].ulValueLen, &c->spki, &c->spki_len);
	else
		r = spki_rsa(a, t[0].ulValueLen, b, t[1].ulValueLen, rs_key_alg_bits(c->alg),
			     &c->spki, &c->spki_len);
	if (r != 0) {
		*fn = "the token's public key attributes do not form the requested key";
		return HSM_RV_FAILED;
	}
	return CKR_OK;
}

static CK_RV gen_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	gen_ctx *c = vctx;
	const ec_curve *cv = curve_of(c->alg);
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = (CK_ULONG)rs_key_alg_bits(c->alg), n = 0;
	CK_BYTE e65537[] = {0x01, 0x00, 0x01};
	CK_MECHANISM mech = {cv ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG label_len = strlen(c->label);
	/* Sign-only: a token that holds a key for decryption or key transport
	 * too would let anyone with a session use it as an oracle for them. */
	CK_ATTRIBUTE pub[] = {
		{CKA_TOKEN, &yes, sizeof yes},
		{CKA_VERIFY, &yes, sizeof yes},
		{CKA_VERIFY_RECOVER, &no, sizeof no},
		{CKA_ENCRYPT, &no, sizeof no},
		{CKA_WRAP, &no, sizeof no},
		{CKA_ID, (void *)c->ckid, SRV_CKID_LEN},
		{CKA_LABEL, (void *)c->label, label_len},
		/* the last two: key size for RSA, curve for EC */
		{CKA_MODULUS_BITS, &bits, sizeof bits},
		{CKA_PUBLIC_EXPONENT, e65537, sizeof e65537},
	};
	CK_ATTRIBUTE priv[] = {
		{CKA_TOKEN, &yes, sizeof yes},
		{CKA_PRIVATE, &yes, sizeof yes},
		{CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &no, sizeof no},
		{CKA_SIGN, &yes, sizeof yes},
		{CKA_SIGN_RECOVER, &no, sizeof no},
		{CKA_DECRYPT, &no, sizeof no},
		{CKA_UNWRAP, &no, sizeof no},
		{CKA_DERIVE, &no, sizeof no},
		{CKA_ID, (void *)c->ckid, SRV_CKID_LEN},
		{CKA_LABEL, (void *)c->label, label_len},
	};
	CK_ULONG npub = sizeof pub / sizeof pub[0];
	CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
	hsm_key k;
	CK_RV rv;

	if (cv) {
		pub[npub - 2].type = CKA_EC_PARAMS;
		pub[npub - 2].pValue = (void *)cv->oid;
		pub[npub - 2].ulValueLen = cv->oid_len;
		npub--;
	}
	if (c->generated) {
		/* The session died after a pair was made: remove it, start over. */
		rv = destroy_by_id(h, s, c->ckid, &n, fn);
		if (rv != CKR_OK)
			return rv;
		c->generated = 0;
	} else {
		rv = count_by_id(h, s, c->ckid, &n, fn);
		if (rv != CKR_OK)
			return rv;
		if (n) {
			*fn = "an object with this CKA_ID already exists";
			return HSM_RV_INVALID;
		}
	}
	*fn = "C_GenerateKeyPair";
	rv = h->mod->C_GenerateKeyPair(s, &mech, pub, npub, priv, sizeof priv / sizeof priv[0],
				       &hpub, &hpriv);
	if (rv != CKR_OK)
		return rv;
	c->generated = 1;
	rv = read_spki(h, s, hpub, c, fn);
	if (rv != CKR_OK) {
		if (h->mod->C_DestroyObject(s, hpriv) == CKR_OK &&
		    h->mod->C_DestroyObject(s, hpub) == CKR_OK)
			c->generated = 0;
		return rv;
	}
	c->generated = 0;
	memset(&k, 0, sizeof k);
	memcpy(k.ckid, c->ckid, SRV_CKID_LEN);
	k.obj = hpriv;
	k.type = cv ? CKK_EC : CKK_RSA;
	k.mod_len = cv ? 0 : bits / 8;
	hsm_cache_put(h, &k);
	return CKR_OK;
}

srv_hsm_rc srv_hsm_generate(srv_hsm *h, rs_key_alg alg, const unsigned char ckid[SRV_CKID_LEN],
			    const char *label, unsigned char **spki, size_t *spki_len)
{
	gen_ctx c;
	srv_hsm_rc rc;

	if (!h || !ckid || !label || !spki || !spki_len || (int)alg < 0 || alg >= RS_KEY_COUNT ||
	    strlen(label) > 255)
		return SRV_HSM_INVALID;
	*spki = NULL;
	*spki_len = 0;
	memset(&c, 0, sizeof c);
	c.alg = alg;
	c.ckid = ckid;
	c.label = label;
	rc = hsm_run_write(h, "generate", gen_op, &c);
	if (rc != SRV_HSM_OK) {
		free(c.spki);
		return rc;
	}
	rs_info("hsm: generated a %s key pair", rs_key_alg_name(alg));
	*spki = c.spki;
	*spki_len = c.spki_len;
	return SRV_HSM_OK;
}
