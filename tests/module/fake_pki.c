/* Keys, certificates and signatures for the fake rsignd, made in-process
 * with OpenSSL: signer keys of every API key algorithm, a CA, code-signing
 * certificates of any validity, the TLS server certificate for 127.0.0.1,
 * and the signatures of the nine API algorithms. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "fake_pki.h"

char *fake_pem_of_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n;

	if (b && PEM_write_bio_X509(b, x) && (n = BIO_get_mem_data(b, &p)) > 0) {
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

char *fake_pem_of_key(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n;

	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) &&
	    (n = BIO_get_mem_data(b, &p)) > 0) {
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

EVP_PKEY *fake_keygen(rs_key_alg alg)
{
	switch (alg) {
	case RS_KEY_RSA_2048:
	case RS_KEY_RSA_3072:
	case RS_KEY_RSA_4096:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rs_key_alg_bits(alg));
	case RS_KEY_EC_P256:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	case RS_KEY_EC_P384:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	case RS_KEY_EC_P521:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	default:
		return NULL;
	}
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int set_validity(X509 *x, time_t not_before, time_t not_after)
{
	if (!not_before && !not_after)
		return X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
		       X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
	return ASN1_TIME_set(X509_getm_notBefore(x), not_before) &&
	       ASN1_TIME_set(X509_getm_notAfter(x), not_after);
}

X509 *fake_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int kind,
		     long serial, time_t not_before, time_t not_after)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (!x)
		return NULL;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !set_validity(x, not_before, not_after) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					(const unsigned char *)"rsign tests", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
		goto fail;
	if (kind == 0 && (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
			  add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0))
		goto fail;
	if (kind == 1 && (add_ext(x, issuer, NID_ext_key_usage, "codeSigning") < 0 ||
			  add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") < 0))
		goto fail;
	if (kind == 2 && add_ext(x, x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") < 0)
		goto fail;
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

int fake_sign_digest(EVP_PKEY *key, rs_sign_alg alg, const unsigned char *dig, size_t dlen,
		     long salt, unsigned char *out, size_t *outlen)
{
	rs_hash h = rs_sign_alg_hash(alg);
	const EVP_MD *md = h == RS_HASH_SHA256	 ? EVP_sha256()
			   : h == RS_HASH_SHA384 ? EVP_sha384()
						 : EVP_sha512();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	int ok = ctx && EVP_PKEY_sign_init(ctx) > 0;

	if (ok && rs_sign_alg_is_rsa(alg)) {
		ok = EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
		if (ok && rs_sign_alg_is_pss(alg))
			ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)salt) > 0;
		else if (ok)
			ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
	}
	ok = ok && EVP_PKEY_sign(ctx, out, outlen, dig, dlen) > 0;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}
