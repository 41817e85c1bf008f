/* JSON Web Key Sets (jwks.h): the RSA and EC signing keys of a set as
 * OpenSSL keys. Apart from the fetching cache (jwks.c) so that it builds
 * without libcurl (tests/fuzz/fuzz_jwks.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include "rsign/util.h"
#include "server/http/jwks.h"
#include "server/http/jwt.h"

typedef struct {
	char kid[SRV_JWT_KID_MAX + 1];
	EVP_PKEY *key;
} jwk;

struct srv_jwks {
	jwk keys[SRV_JWKS_MAX_KEYS];
	size_t n;
};

void srv_jwks_free(srv_jwks *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		EVP_PKEY_free(s->keys[i].key);
	free(s);
}

size_t srv_jwks_count(const srv_jwks *s)
{
	return s ? s->n : 0;
}

/* A base64url member of k as bytes (at most max); NULL when absent or bad. */
static unsigned char *member(const cJSON *k, const char *name, size_t max, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(k, name);
	if (!cJSON_IsString(v))
		return NULL;
	unsigned char *b = malloc(max);
	if (b && srv_b64url_decode(v->valuestring, strlen(v->valuestring), b, max, len) != 0) {
		free(b);
		b = NULL;
	}
	return b;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = bld ? OSSL_PARAM_BLD_to_param(bld) : NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *key = NULL;
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return key;
}

static EVP_PKEY *rsa_key(const cJSON *k)
{
	size_t nl = 0, el = 0;
	unsigned char *n = member(k, "n", 1024, &nl), *e = member(k, "e", 16, &el);
	BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL;
	BIGNUM *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *key = NULL;
	if (bn && be && bld && BN_num_bits(bn) >= 2048 && BN_num_bits(bn) <= 8192 &&
	    BN_is_odd(be) && BN_num_bits(be) > 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
		key = from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return key;
}

static EVP_PKEY *ec_key(const cJSON *k)
{
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(k, "crv");
	const char *group = NULL;
	size_t half = 0;
	if (cJSON_IsString(crv) && strcmp(crv->valuestring, "P-256") == 0) {
		group = "prime256v1";
		half = 32;
	} else if (cJSON_IsString(crv) && strcmp(crv->valuestring, "P-384") == 0) {
		group = "secp384r1";
		half = 48;
	} else {
		return NULL;
	}
	size_t xl = 0, yl = 0;
	unsigned char *x = member(k, "x", half, &xl), *y = member(k, "y", half, &yl);
	unsigned char pt[1 + 2 * 48];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *key = NULL;
	if (x && y && xl == half && yl == half && bld) {
		pt[0] = 0x04; /* uncompressed: OpenSSL checks the point is on the curve */
		memcpy(pt + 1, x, half);
		memcpy(pt + 1 + half, y, half);
		if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ==
			    1 &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
						     1 + 2 * half) == 1)
			key = from_params("EC", bld);
	}
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return key;
}

srv_jwks *srv_jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
	if (len > SRV_JWKS_MAX_BYTES) {
		snprintf(err, errlen, "the key set is larger than %d bytes", SRV_JWKS_MAX_BYTES);
		return NULL;
	}
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
	srv_jwks *s = NULL;
	if (!cJSON_IsObject(j) || !cJSON_IsArray(keys)) {
		snprintf(err, errlen, "the key set is not a JSON object with a \"keys\" array");
		goto out;
	}
	if (cJSON_GetArraySize(keys) > SRV_JWKS_MAX_KEYS) {
		snprintf(err, errlen, "the key set holds more than %d keys", SRV_JWKS_MAX_KEYS);
		goto out;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	const cJSON *k;
	cJSON_ArrayForEach (k, keys) {
		const cJSON *kty = cJSON_GetObjectItemCaseSensitive(k, "kty");
		const cJSON *use = cJSON_GetObjectItemCaseSensitive(k, "use");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
		if (!cJSON_IsObject(k) || !cJSON_IsString(kty) ||
		    (kid && (!cJSON_IsString(kid) || strlen(kid->valuestring) > SRV_JWT_KID_MAX))) {
			snprintf(err, errlen, "key %zu of the set is not a JWK", s->n);
			goto bad;
		}
		if (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig") != 0))
			continue;
		int rsa = strcmp(kty->valuestring, "RSA") == 0;
		if (!rsa && strcmp(kty->valuestring, "EC") != 0)
			continue;
		EVP_PKEY *key = rsa ? rsa_key(k) : ec_key(k);
		if (!key) {
			snprintf(err, errlen,
				 "key \"%s\" of the set does not decode (RSA of 2048-8192 bits, EC "
				 "on P-256 or P-384)",
				 kid ? kid->valuestring : "");
			goto bad;
		}
		rs_strlcpy(s->keys[s->n].kid, kid ? kid->valuestring : "",
			   sizeof(s->keys[s->n].kid));
		s->keys[s->n++].key = key;
	}
	goto out;
bad:
	srv_jwks_free(s);
	s = NULL;
out:
	cJSON_Delete(j);
	return s;
}

EVP_PKEY *srv_jwks_find(const srv_jwks *s, const char *kid)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		if ((kid[0] && strcmp(s->keys[i].kid, kid) == 0) || (!kid[0] && s->n == 1)) {
			EVP_PKEY_up_ref(s->keys[i].key);
			return s->keys[i].key;
		}
	}
	return NULL;
}
