/* Certificates and CSRs whose signatures come from the token, and the checks
 * an imported certificate must pass. OpenSSL only encodes and verifies here:
 * it never holds a private key. Every object we sign is re-parsed and
 * verified before it is handed out. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/hsm/pki.h"

#define PKI_SUBJECT_MAX 1024
#define PKI_PEM_MAX (256 * 1024)
#define PKI_CHAIN_MAX 16
#define PKI_SIG_MAX 1024
#define PKI_TIME_MIN ((time_t)-631152000)   /* 1950-01-01: UTCTime's first year */
#define PKI_TIME_MAX ((time_t)253402300799) /* 9999-12-31T23:59:59Z */

/* ---- small helpers ------------------------------------------------------- */

static EVP_PKEY *pkey_from_spki(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *pk;
	if (!der || !len || len > 4096)
		return NULL;
	pk = d2i_PUBKEY(NULL, &p, (long)len);
	if (pk && p != der + len) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

/* The signature the built-in keys make: sha256WithRSAEncryption for RSA,
 * ECDSA with the hash that matches the curve. */
int srv_pki_sig_alg(rs_key_alg k, rs_sign_alg *sa, int *nid)
{
	switch (k) {
	case RS_KEY_RSA_2048:
	case RS_KEY_RSA_3072:
	case RS_KEY_RSA_4096:
		*sa = RS_ALG_RSA_PKCS1_SHA256;
		*nid = NID_sha256WithRSAEncryption;
		return 0;
	case RS_KEY_EC_P256:
		*sa = RS_ALG_ECDSA_SHA256;
		*nid = NID_ecdsa_with_SHA256;
		return 0;
	case RS_KEY_EC_P384:
		*sa = RS_ALG_ECDSA_SHA384;
		*nid = NID_ecdsa_with_SHA384;
		return 0;
	case RS_KEY_EC_P521:
		*sa = RS_ALG_ECDSA_SHA512;
		*nid = NID_ecdsa_with_SHA512;
		return 0;
	default:
		return -1;
	}
}

/* RSA AlgorithmIdentifiers carry an explicit NULL; ECDSA ones no parameters
 * (RFC 4055, RFC 5758). */
static int algor_set(X509_ALGOR *a, int nid)
{
	int rsa = nid == NID_sha256WithRSAEncryption;
	return a && X509_ALGOR_set0(a, OBJ_nid2obj(nid), rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL)
		       ? 0
		       : -1;
}

static int bitstring_set(ASN1_BIT_STRING *bs, const unsigned char *sig, size_t len)
{
	if (!bs || !ASN1_BIT_STRING_set(bs, (unsigned char *)sig, (int)len))
		return -1;
	/* A signature is whole bytes: say so, or DER would trim trailing zeros. */
	bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	return 0;
}

static char *bio_to_str(BIO *b)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static char *x509_pem(X509 *x)
{
	char *s = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio_X509(b, x))
		s = bio_to_str(b);
	BIO_free(b);
	return s;
}

static X509 *x509_from_pem(const char *pem)
{
	X509 *x;
	BIO *b = BIO_new_mem_buf(pem, -1);
	if (!b)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

int srv_pki_token_sign(srv_hsm *h, const srv_pki_key *key, rs_sign_alg sa, const unsigned char *tbs,
		       size_t tbs_len, unsigned char *sig, size_t *sig_len, char *err,
		       size_t errlen)
{
	unsigned char dig[64];
	rs_hash hash = rs_sign_alg_hash(sa);
	srv_hsm_rc rc;

	if (rs_hash_compute(hash, tbs, tbs_len, dig) != 0) {
		rs_errf(err, errlen, "hashing the data to be signed failed");
		return SRV_PKI_EFAIL;
	}
	rc = srv_hsm_sign(h, key->ckid, sa, dig, rs_hash_len(hash), -1, sig, PKI_SIG_MAX, sig_len);
	switch (rc) {
	case SRV_HSM_OK:
		return SRV_PKI_OK;
	case SRV_HSM_UNAVAILABLE:
		rs_errf(err, errlen, "the HSM is unavailable");
		return SRV_PKI_EUNAVAIL;
	case SRV_HSM_NOT_FOUND:
		rs_errf(err, errlen, "the signing key is missing from the HSM");
		return SRV_PKI_EFAIL;
	default:
		rs_errf(err, errlen, "the HSM failed to sign");
		return SRV_PKI_EFAIL;
	}
}

/* ---- subjects ------------------------------------------------------------ */

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static char *trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static int name_add(X509_NAME *n, char *rdn, char *err, size_t errlen)
{
	char *eq = strchr(rdn, '='), *key, *val;

	if (!eq) {
		rs_errf(err, errlen, "the subject component \"%s\" lacks an '='", rdn);
		return -1;
	}
	*eq = '\0';
	key = trim(rdn);
	val = trim(eq + 1);
	if (!*key || !*val) {
		rs_errf(err, errlen, "the subject has a component with an empty name or value");
		return -1;
	}
	for (const char *p = key; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.') {
			rs_errf(err, errlen, "the subject attribute name \"%s\" is malformed", key);
			return -1;
		}
	if (!X509_NAME_add_entry_by_txt(n, key, MBSTRING_UTF8, (const unsigned char *)val, -1, -1,
					0)) {
		rs_errf(err, errlen,
			"the subject attribute \"%s\" is unknown, or its value is too long or "
			"not UTF-8",
			key);
		return -1;
	}
	return 0;
}

/* "/CN=a/O=b" (OpenSSL one-line form, DER order) or "CN=a,O=b" (RFC 4514,
 * most specific first, so added in reverse). No escapes and no multi-valued
 * RDNs: those are refused rather than misread. */
static X509_NAME *subject_parse(const char *subject, char *err, size_t errlen)
{
	char buf[PKI_SUBJECT_MAX + 1];
	char *parts[64];
	size_t n = 0, len;
	int slash;
	X509_NAME *name;

	if (!subject || !*subject) {
		rs_errf(err, errlen, "the subject is empty");
		return NULL;
	}
	len = strlen(subject);
	if (len > PKI_SUBJECT_MAX) {
		rs_errf(err, errlen, "the subject is longer than %d characters", PKI_SUBJECT_MAX);
		return NULL;
	}
	if (has_ctl(subject)) {
		rs_errf(err, errlen, "the subject contains control characters");
		return NULL;
	}
	if (strpbrk(subject, "\\\"+")) {
		rs_errf(err, errlen,
			"the subject uses escapes or multi-valued RDNs, which are not "
			"supported");
		return NULL;
	}
	memcpy(buf, subject, len + 1);
	slash = buf[0] == '/';
	for (char *p = buf + slash, *next; p; p = next) {
		next = strchr(p, slash ? '/' : ',');
		if (next)
			*next++ = '\0';
		if (n == sizeof parts / sizeof parts[0]) {
			rs_errf(err, errlen, "the subject has too many components");
			return NULL;
		}
		if (!*trim(p)) {
			rs_errf(err, errlen,
				"the subject has an empty component; use \"/CN=a/O=b\" "
				"or \"CN=a,O=b\"");
			return NULL;
		}
		parts[n++] = p;
	}
	name = X509_NAME_new();
	if (!name) {
		rs_errf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (name_add(name, parts[slash ? i : n - 1 - i], err, errlen) != 0) {
			X509_NAME_free(name);
			ERR_clear_error();
			return NULL;
		}
	return name;
}

static X509_NAME *cn_name(const char *cn, char *err, size_t errlen)
{
	X509_NAME *n;
	if (!cn || !*cn) {
		rs_errf(err, errlen, "the common name is empty");
		return NULL;
	}
	if (has_ctl(cn)) {
		rs_errf(err, errlen, "the common name contains control characters");
		return NULL;
	}
	n = X509_NAME_new();
	if (n && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					     (const unsigned char *)cn, -1, -1, 0)) {
		rs_errf(err, errlen, "the common name must be 1 to 64 characters of UTF-8");
		X509_NAME_free(n);
		ERR_clear_error();
		return NULL;
	}
	if (!n)
		rs_errf(err, errlen, "out of memory");
	return n;
}

/* ---- CSR ----------------------------------------------------------------- */

int srv_pki_csr(srv_hsm *h, const srv_pki_key *key, const char *subject, char **csr_pem, char *err,
		size_t errlen)
{
	int ret = SRV_PKI_EFAIL, nid;
	rs_sign_alg sa;
	X509_REQ *req = NULL, *back = NULL;
	X509_NAME *name = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *bs = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *tbs = NULL, sig[PKI_SIG_MAX];
	size_t sig_len = 0;
	int tbs_len;
	BIO *b = NULL;
	char *pem = NULL;

	if (!h || !key || !csr_pem || srv_pki_sig_alg(key->alg, &sa, &nid) != 0) {
		rs_errf(err, errlen, "invalid arguments");
		return SRV_PKI_EFAIL;
	}
	*csr_pem = NULL;
	if (!(name = subject_parse(subject, err, errlen)))
		return SRV_PKI_EINVAL;
	rs_errf(err, errlen, "encoding the CSR failed");
	if (!(pk = pkey_from_spki(key->spki, key->spki_len)))
		goto out;
	req = X509_REQ_new();
	alg = X509_ALGOR_new();
	bs = ASN1_BIT_STRING_new();
	if (!req || !alg || !bs || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, pk) ||
	    algor_set(alg, nid) != 0 || !X509_REQ_set1_signature_algo(req, alg))
		goto out;
	tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
	if (tbs_len <= 0)
		goto out;
	ret = srv_pki_token_sign(h, key, sa, tbs, (size_t)tbs_len, sig, &sig_len, err, errlen);
	if (ret != SRV_PKI_OK)
		goto out;
	ret = SRV_PKI_EFAIL;
	if (bitstring_set(bs, sig, sig_len) != 0)
		goto out;
	X509_REQ_set0_signature(req, bs);
	bs = NULL;
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509_REQ(b, req) || !(pem = bio_to_str(b)))
		goto out;
	BIO_free(b);
	/* Never hand out a CSR we cannot verify ourselves. */
	b = BIO_new_mem_buf(pem, -1);
	back = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	if (!back || X509_REQ_verify(back, pk) != 1) {
		rs_err("pki: the CSR signed in the token does not verify");
		rs_errf(err, errlen, "the CSR signed in the HSM does not verify");
		goto out;
	}
	*csr_pem = pem;
	pem = NULL;
	ret = SRV_PKI_OK;
	if (err && errlen)
		err[0] = '\0';
out:
	free(pem);
	BIO_free(b);
	X509_REQ_free(back);
	OPENSSL_free(tbs);
	ASN1_BIT_STRING_free(bs);
	X509_ALGOR_free(alg);
	X509_REQ_free(req);
	X509_NAME_free(name);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return ret;
}

/* ---- certificates -------------------------------------------------------- */

static int serial_random(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	r[0] = (r[0] & 0x7f) | 0x40; /* positive, and always 16 bytes long */
	bn = BN_bin2bn(r, sizeof r, NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A version 3 certificate with a random serial; extensions come later. */
static X509 *cert_new(EVP_PKEY *pk, const X509_NAME *subject, const X509_NAME *issuer,
		      time_t not_before, time_t not_after)
{
	X509 *x = X509_new();
	if (!x || !X509_set_version(x, X509_VERSION_3) || serial_random(x) != 0 ||
	    !X509_set_subject_name(x, subject) || !X509_set_issuer_name(x, issuer) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), not_after) || !X509_set_pubkey(x, pk)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Signs x in the token with signer, returns its PEM once the re-parsed
 * certificate verifies with verify_pk. */
static int cert_sign(srv_hsm *h, X509 *x, const srv_pki_key *signer, EVP_PKEY *verify_pk,
		     char **pem_out, char *err, size_t errlen)
{
	int ret = SRV_PKI_EFAIL, nid, tbs_len;
	rs_sign_alg sa;
	const X509_ALGOR *outer = NULL;
	const ASN1_BIT_STRING *sig_bs = NULL;
	unsigned char *tbs = NULL, sig[PKI_SIG_MAX];
	size_t sig_len = 0;
	char *pem = NULL;
	X509 *back = NULL;

	rs_errf(err, errlen, "encoding the certificate failed");
	if (srv_pki_sig_alg(signer->alg, &sa, &nid) != 0)
		return SRV_PKI_EFAIL;
	X509_get0_signature(&sig_bs, &outer, x);
	/* OpenSSL has no setter for a key it does not hold: both AlgorithmIdentifiers
	 * (TBS and outer) must name the algorithm the token is about to use. */
	if (algor_set((X509_ALGOR *)X509_get0_tbs_sigalg(x), nid) != 0 ||
	    algor_set((X509_ALGOR *)outer, nid) != 0)
		goto out;
	tbs_len = i2d_re_X509_tbs(x, &tbs);
	if (tbs_len <= 0)
		goto out;
	ret = srv_pki_token_sign(h, signer, sa, tbs, (size_t)tbs_len, sig, &sig_len, err, errlen);
	if (ret != SRV_PKI_OK)
		goto out;
	ret = SRV_PKI_EFAIL;
	if (bitstring_set((ASN1_BIT_STRING *)sig_bs, sig, sig_len) != 0 || !(pem = x509_pem(x)))
		goto out;
	back = x509_from_pem(pem);
	if (!back || X509_verify(back, verify_pk) != 1) {
		rs_err("pki: the certificate signed in the token does not verify");
		rs_errf(err, errlen, "the certificate signed in the HSM does not verify");
		goto out;
	}
	*pem_out = pem;
	pem = NULL;
	ret = SRV_PKI_OK;
	if (err && errlen)
		err[0] = '\0';
out:
	OPENSSL_free(tbs);
	free(pem);
	X509_free(back);
	return ret;
}

int srv_pki_ca_create(srv_hsm *h, const srv_pki_key *ca, const char *common_name, int days,
		      char **cert_pem, char *err, size_t errlen)
{
	int ret = SRV_PKI_EFAIL;
	X509_NAME *name = NULL;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	time_t now = time(NULL);

	if (!h || !ca || !cert_pem) {
		rs_errf(err, errlen, "invalid arguments");
		return SRV_PKI_EFAIL;
	}
	*cert_pem = NULL;
	if (days < 1 || days > 36500) {
		rs_errf(err, errlen, "the CA validity must be 1 to 36500 days");
		return SRV_PKI_EINVAL;
	}
	if (!(name = cn_name(common_name, err, errlen)))
		return SRV_PKI_EINVAL;
	rs_errf(err, errlen, "encoding the CA certificate failed");
	if (!(pk = pkey_from_spki(ca->spki, ca->spki_len)) ||
	    !(x = cert_new(pk, name, name, now, now + (time_t)days * 86400)))
		goto out;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509V3_set_ctx_nodb(&ctx);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0)
		goto out;
	ret = cert_sign(h, x, ca, pk, cert_pem, err, errlen);
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	X509_NAME_free(name);
	ERR_clear_error();
	return ret;
}

int srv_pki_issue(srv_hsm *h, const srv_pki_key *ca, const char *ca_cert_pem,
		  const srv_pki_key *key, const char *common_name, time_t not_before,
		  time_t not_after, char **cert_pem, char *err, size_t errlen)
{
	return srv_pki_issue_as(h, ca, ca_cert_pem, key, SRV_PKI_CODE_SIGNING, common_name,
				not_before, not_after, cert_pem, err, errlen);
}

int srv_pki_issue_as(srv_hsm *h, const srv_pki_key *ca, const char *ca_cert_pem,
		     const srv_pki_key *key, srv_pki_profile profile, const char *common_name,
		     time_t not_before, time_t not_after, char **cert_pem, char *err, size_t errlen)
{
	int ret = SRV_PKI_EFAIL;
	X509_NAME *name = NULL;
	EVP_PKEY *pk = NULL, *ca_pk = NULL;
	X509 *x = NULL, *cacert = NULL;
	X509V3_CTX ctx;

	if (!h || !ca || !ca_cert_pem || !key || !cert_pem) {
		rs_errf(err, errlen, "invalid arguments");
		return SRV_PKI_EFAIL;
	}
	*cert_pem = NULL;
	if (not_after <= not_before) {
		rs_errf(err, errlen, "the certificate must end after it begins");
		return SRV_PKI_EINVAL;
	}
	if (not_before < PKI_TIME_MIN || not_after > PKI_TIME_MAX) {
		rs_errf(err, errlen, "the validity dates must lie between 1950 and 9999");
		return SRV_PKI_EINVAL;
	}
	if (!(name = cn_name(common_name, err, errlen)))
		return SRV_PKI_EINVAL;
	if (!(cacert = x509_from_pem(ca_cert_pem)) ||
	    !(ca_pk = pkey_from_spki(ca->spki, ca->spki_len)) ||
	    EVP_PKEY_eq(X509_get0_pubkey(cacert), ca_pk) != 1) {
		rs_err("pki: the CA certificate does not match the CA key");
		rs_errf(err, errlen, "the CA certificate does not match the CA key");
		goto out;
	}
	rs_errf(err, errlen, "encoding the certificate failed");
	if (!(pk = pkey_from_spki(key->spki, key->spki_len)) ||
	    !(x = cert_new(pk, name, X509_get_subject_name(cacert), not_before, not_after)))
		goto out;
	X509V3_set_ctx(&ctx, cacert, x, NULL, NULL, 0);
	X509V3_set_ctx_nodb(&ctx);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage,
		    profile == SRV_PKI_TSA ? "critical,timeStamping" : "codeSigning") != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0)
		goto out;
	ret = cert_sign(h, x, ca, ca_pk, cert_pem, err, errlen);
out:
	X509_free(x);
	X509_free(cacert);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(ca_pk);
	X509_NAME_free(name);
	ERR_clear_error();
	return ret;
}

/* ---- imported certificates ----------------------------------------------- */

/* Reads every PEM block of text as a certificate. Only whitespace may come
 * before, between and after the blocks. what names the text in errors. */
static int pem_certs(const char *text, const char *what, STACK_OF(X509) * out, char *err,
		     size_t errlen)
{
	size_t len = strlen(text);
	BIO *b;
	int ret = -1;

	if (len > PKI_PEM_MAX) {
		rs_errf(err, errlen, "the %s is larger than %d bytes", what, PKI_PEM_MAX);
		return -1;
	}
	b = BIO_new_mem_buf(text, (int)len);
	if (!b) {
		rs_errf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		char *rest, *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		const unsigned char *p;
		long n = BIO_get_mem_data(b, &rest), dlen = 0;
		size_t k = 0;
		X509 *x = NULL;
		int bad = 1;

		while (n > 0 && (size_t)n > k && isspace((unsigned char)rest[k]))
			k++;
		if ((size_t)n == k) {
			ret = 0;
			break;
		}
		if ((size_t)n - k < 11 || memcmp(rest + k, "-----BEGIN ", 11) != 0) {
			rs_errf(err, errlen, "the %s contains data outside PEM blocks", what);
			break;
		}
		/* PEM_read_bio wants "-----BEGIN" at a line start: drop the space. */
		while (k > 0) {
			char skip[256];
			int m = BIO_read(b, skip, (int)(k < sizeof skip ? k : sizeof skip));
			if (m <= 0)
				break;
			k -= (size_t)m;
		}
		if (sk_X509_num(out) >= PKI_CHAIN_MAX) {
			rs_errf(err, errlen, "the %s holds more than %d certificates", what,
				PKI_CHAIN_MAX);
			break;
		}
		if (!PEM_read_bio(b, &name, &header, &data, &dlen)) {
			rs_errf(err, errlen, "the %s is not valid PEM", what);
			break;
		}
		p = data;
		if (*header)
			rs_errf(err, errlen,
				"the %s has PEM headers, which certificates never carry", what);
		else if (strcmp(name, "CERTIFICATE") != 0)
			rs_errf(err, errlen,
				"the %s holds a \"%s\" block where a certificate was "
				"expected",
				what, name);
		else if (!(x = d2i_X509(NULL, &p, dlen)) || p != data + dlen)
			rs_errf(err, errlen,
				"the %s holds a block that is not a valid X.509 "
				"certificate",
				what);
		else if (!sk_X509_push(out, x))
			rs_errf(err, errlen, "out of memory");
		else {
			x = NULL; /* the stack owns it */
			bad = 0;
		}
		X509_free(x);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (bad)
			break;
	}
	BIO_free(b);
	return ret;
}

static char *strdup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Subject CN as UTF-8, "" when there is none; NULL on a malformed CN. */
static char *cert_cn(X509 *x)
{
	X509_NAME *n = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	unsigned char *u = NULL;
	int len;
	char *s;

	if (i < 0)
		return strdup("");
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (len < 0)
		return NULL;
	s = memchr(u, 0, (size_t)len) ? NULL : strdup_n((const char *)u, (size_t)len);
	OPENSSL_free(u);
	return s;
}

static char *cert_serial(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL, *s = hex ? strdup(hex) : NULL;
	OPENSSL_free(hex);
	BN_free(bn);
	return s;
}

static int cert_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*out = timegm(&tm);
	return 0;
}

static char *chain_pem_join(STACK_OF(X509) * chain)
{
	char *s = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	int ok = b != NULL;

	for (int i = 0; ok && i < sk_X509_num(chain); i++)
		ok = PEM_write_bio_X509(b, sk_X509_value(chain, i));
	if (ok)
		s = sk_X509_num(chain) ? bio_to_str(b) : strdup("");
	BIO_free(b);
	return s;
}

/* RFC 3161 2.3: the extended key usage is critical and timeStamping only. */
static int tsa_usage_ok(X509 *x, char *err, size_t errlen)
{
	int crit = -1, ok;
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);

	if (!eku) {
		rs_errf(err, errlen,
			"the certificate has no extended key usage; a time-stamp authority's "
			"must be critical and timeStamping only");
		return -1;
	}
	ok = crit == 1 && sk_ASN1_OBJECT_num(eku) == 1 &&
	     OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_time_stamp;
	if (!ok)
		rs_errf(err, errlen,
			crit != 1
				? "the certificate's extended key usage is not critical; a "
				  "time-stamp authority's must be critical and timeStamping only"
				: "the certificate's extended key usage is not timeStamping alone; "
				  "a time-stamp authority's must be critical and timeStamping "
				  "only");
	EXTENDED_KEY_USAGE_free(eku);
	return ok ? 0 : -1;
}

int srv_pki_parse_cert(const char *cert_pem, const char *chain_pem, srv_cert_info *out, char *err,
		       size_t errlen)
{
	return srv_pki_parse_cert_as(cert_pem, chain_pem, SRV_PKI_CODE_SIGNING, out, err, errlen);
}

int srv_pki_parse_cert_as(const char *cert_pem, const char *chain_pem, srv_pki_profile profile,
			  srv_cert_info *out, char *err, size_t errlen)
{
	int ret = SRV_PKI_EINVAL, len;
	STACK_OF(X509) *certs = sk_X509_new_null(), *chain = sk_X509_new_null();
	X509 *x;
	EVP_PKEY *issuer_pk;
	uint32_t flags;
	unsigned char *p;

	if (!out) {
		rs_errf(err, errlen, "invalid arguments");
		return SRV_PKI_EFAIL;
	}
	memset(out, 0, sizeof *out);
	if (!certs || !chain) {
		rs_errf(err, errlen, "out of memory");
		ret = SRV_PKI_EFAIL;
		goto out;
	}
	if (!cert_pem || !*cert_pem) {
		rs_errf(err, errlen, "the certificate is missing");
		goto out;
	}
	if (pem_certs(cert_pem, "certificate", certs, err, errlen) != 0 ||
	    (chain_pem && pem_certs(chain_pem, "chain", chain, err, errlen) != 0))
		goto out;
	if (sk_X509_num(certs) != 1) {
		rs_errf(err, errlen,
			sk_X509_num(certs)
				? "the certificate field holds more than one certificate; "
				  "send the issuers as the chain"
				: "the certificate field holds no PEM certificate");
		goto out;
	}
	x = sk_X509_value(certs, 0);
	flags = X509_get_extension_flags(x);
	if (flags & EXFLAG_INVALID) {
		rs_errf(err, errlen, "the certificate has malformed or duplicate extensions");
		goto out;
	}
	if (profile == SRV_PKI_TSA) {
		if (tsa_usage_ok(x, err, errlen) != 0)
			goto out;
	} else if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(x) & XKU_CODE_SIGN)) {
		rs_errf(err, errlen, "certificate lacks the codeSigning extended key usage");
		goto out;
	}
	if (sk_X509_num(chain) > 0) {
		issuer_pk = X509_get0_pubkey(sk_X509_value(chain, 0));
		if (!issuer_pk || X509_verify(x, issuer_pk) != 1) {
			rs_errf(err, errlen,
				"certificate signature does not verify against the chain");
			goto out;
		}
	}

	ret = SRV_PKI_EFAIL;
	rs_errf(err, errlen, "out of memory");
	out->common_name = cert_cn(x);
	out->serial = cert_serial(x);
	out->cert_pem = x509_pem(x);
	out->chain_pem = chain_pem_join(chain);
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), NULL);
	if (len > 0 && (out->spki = malloc((size_t)len)) != NULL) {
		p = out->spki;
		out->spki_len = (size_t)i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &p);
	}
	if (!out->serial || !out->cert_pem || !out->chain_pem || !out->spki ||
	    out->spki_len != (size_t)len)
		goto fail;
	if (!out->common_name) {
		rs_errf(err, errlen, "the certificate's common name is malformed");
		ret = SRV_PKI_EINVAL;
		goto fail;
	}
	if (cert_time(X509_get0_notBefore(x), &out->not_before) != 0 ||
	    cert_time(X509_get0_notAfter(x), &out->not_after) != 0) {
		rs_errf(err, errlen, "the certificate's validity dates are malformed");
		ret = SRV_PKI_EINVAL;
		goto fail;
	}
	ret = SRV_PKI_OK;
	if (err && errlen)
		err[0] = '\0';
	goto out;
fail:
	srv_cert_info_free(out);
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error(); /* leave no rejected-input errors on this thread's queue */
	return ret;
}

void srv_cert_info_free(srv_cert_info *ci)
{
	if (!ci)
		return;
	free(ci->common_name);
	free(ci->serial);
	free(ci->spki);
	free(ci->cert_pem);
	free(ci->chain_pem);
	memset(ci, 0, sizeof *ci);
}

char *srv_pki_b64_der(const unsigned char *der, size_t len)
{
	return der ? rs_b64_encode(der, len) : NULL;
}
