/* JWT parsing and signature checks (jwt.h), with OpenSSL. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include "rsign/base64.h"
#include "rsign/util.h"
#include "server/http/jwt.h"

int srv_b64url_decode(const char *s, size_t n, unsigned char *out, size_t outmax, size_t *outlen)
{
	if (n % 4 == 1 || n > SRV_JWT_MAX * 2)
		return -1;
	size_t padded = (n + 3) / 4 * 4;
	char *t = malloc(padded + 1);
	if (!t)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+' || c == '/' || c == '=') {
			free(t);
			return -1;
		}
		t[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	for (size_t i = n; i < padded; i++)
		t[i] = '=';
	int rc = rs_b64_decode(t, padded, out, outmax, outlen);
	free(t);
	return rc == RS_B64_OK ? 0 : -1;
}

static const struct {
	const char *name;
	srv_jwt_alg alg;
} algs[] = {
	{"RS256", SRV_JWT_RS256}, {"RS384", SRV_JWT_RS384}, {"RS512", SRV_JWT_RS512},
	{"ES256", SRV_JWT_ES256}, {"ES384", SRV_JWT_ES384},
};

const char *srv_jwt_alg_name(srv_jwt_alg a)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == a)
			return algs[i].name;
	return "?";
}

/* The JSON object of the base64url part s[0..n). */
static cJSON *part_json(const char *s, size_t n)
{
	unsigned char *b = malloc(n + 1);
	size_t len = 0;
	cJSON *j = NULL;
	if (!b)
		return NULL;
	if (srv_b64url_decode(s, n, b, n, &len) == 0 && memchr(b, 0, len) == NULL) {
		j = cJSON_ParseWithLength((const char *)b, len);
		if (j && !cJSON_IsObject(j)) {
			cJSON_Delete(j);
			j = NULL;
		}
	}
	free(b);
	return j;
}

void srv_jwt_clear(srv_jwt *j)
{
	if (!j)
		return;
	cJSON_Delete(j->claims);
	free(j->sig);
	memset(j, 0, sizeof(*j));
}

srv_jwt_rc srv_jwt_parse(const char *token, srv_jwt *out)
{
	memset(out, 0, sizeof(*out));
	size_t n = strnlen(token, SRV_JWT_MAX + 1);
	if (n == 0 || n > SRV_JWT_MAX)
		return SRV_JWT_MALFORMED;
	const char *d1 = memchr(token, '.', n);
	const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
		return SRV_JWT_MALFORMED;
	cJSON *h = part_json(token, (size_t)(d1 - token));
	if (!h)
		return SRV_JWT_MALFORMED;
	srv_jwt_rc rc = SRV_JWT_MALFORMED;
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
	const cJSON *crit = cJSON_GetObjectItemCaseSensitive(h, "crit");
	if (!cJSON_IsString(alg) || (kid && !cJSON_IsString(kid)))
		goto out;
	if (kid && strlen(kid->valuestring) > SRV_JWT_KID_MAX)
		goto out;
	rc = SRV_JWT_ALG;
	size_t i;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(alg->valuestring, algs[i].name) == 0)
			break;
	if (i == sizeof(algs) / sizeof(algs[0]))
		goto out;
	rc = SRV_JWT_MALFORMED;
	if (crit) /* no extension is understood here (RFC 7515 4.1.11) */
		goto out;
	out->alg = algs[i].alg;
	if (kid)
		rs_strlcpy(out->kid, kid->valuestring, sizeof(out->kid));
	if (!(out->claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1))))
		goto out;
	size_t sn = n - (size_t)(d2 + 1 - token);
	if (sn == 0 || !(out->sig = malloc(sn)) ||
	    srv_b64url_decode(d2 + 1, sn, out->sig, sn, &out->sig_len) != 0)
		goto out;
	out->signed_len = (size_t)(d2 - token);
	rc = SRV_JWT_OK;
out:
	cJSON_Delete(h);
	if (rc != SRV_JWT_OK)
		srv_jwt_clear(out);
	return rc;
}

/* The EC curve's name for ES256/ES384, NULL for RSA algorithms. */
static const char *alg_curve(srv_jwt_alg a)
{
	return a == SRV_JWT_ES256 ? "prime256v1" : a == SRV_JWT_ES384 ? "secp384r1" : NULL;
}

static const EVP_MD *alg_md(srv_jwt_alg a)
{
	switch (a) {
	case SRV_JWT_RS256:
	case SRV_JWT_ES256:
		return EVP_sha256();
	case SRV_JWT_RS384:
	case SRV_JWT_ES384:
		return EVP_sha384();
	case SRV_JWT_RS512:
		return EVP_sha512();
	}
	return NULL;
}

/* r||s (JWS) as a DER ECDSA-Sig-Value; malloc'd in *der. */
static int ec_sig_der(const unsigned char *sig, size_t n, size_t half, unsigned char **der,
		      size_t *der_len)
{
	if (n != 2 * half)
		return -1;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *ss = BN_bin2bn(sig + half, (int)half, NULL);
	if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(ss);
		return -1;
	}
	*der = NULL;
	int len = i2d_ECDSA_SIG(s, der);
	ECDSA_SIG_free(s);
	if (len <= 0)
		return -1;
	*der_len = (size_t)len;
	return 0;
}

srv_jwt_rc srv_jwt_verify(const srv_jwt *j, const char *token, EVP_PKEY *key)
{
	const char *curve = alg_curve(j->alg);
	if (curve) {
		char group[64] = "";
		if (!EVP_PKEY_is_a(key, "EC") ||
		    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) != 1 ||
		    strcmp(group, curve) != 0)
			return SRV_JWT_ALG;
	} else if (!EVP_PKEY_is_a(key, "RSA")) {
		return SRV_JWT_ALG;
	}
	const unsigned char *sig = j->sig;
	size_t sig_len = j->sig_len;
	unsigned char *der = NULL;
	if (curve) {
		size_t half = j->alg == SRV_JWT_ES256 ? 32 : 48;
		if (ec_sig_der(j->sig, j->sig_len, half, &der, &sig_len) != 0)
			return SRV_JWT_SIGNATURE;
		sig = der;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestVerifyInit(md, NULL, alg_md(j->alg), NULL, key) == 1 &&
		 EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)token, j->signed_len) ==
			 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok ? SRV_JWT_OK : SRV_JWT_SIGNATURE;
}
