/* libFuzzer target: the JWK Set parser (server/http/jwks.h, jwk.c). The
 * input is a set's text. What srv_jwks_parse accepts holds at most
 * SRV_JWKS_MAX_KEYS keys, each an RSA or EC public key OpenSSL took, found
 * again by its kid; what it refuses says why in err. No input crashes,
 * leaks or reads past the text given (an exact-size copy).
 * fuzz-sources: server/http/jwk.c server/http/jwt.c common/base64.c common/util.c
 * fuzz-max-len: 8192
 */
#include <cjson/cJSON.h>

#include "server/http/jwks.h"
#include "server/http/jwt.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy = fuzz_alloc(size);
	char err[200] = "";

	memcpy(copy, data, size);
	srv_jwks *s = srv_jwks_parse((const char *)copy, size, err, sizeof(err));
	if (!s) {
		fuzz_check(err[0] != '\0', "a refused set without a reason");
		free(copy);
		return 0;
	}
	size_t n = srv_jwks_count(s);
	fuzz_check(n <= SRV_JWKS_MAX_KEYS, "more keys than the limit");
	cJSON *j = cJSON_ParseWithLength((const char *)copy, size);
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys"), *k;
	fuzz_check(cJSON_IsArray(keys) && (size_t)cJSON_GetArraySize(keys) >= n,
		   "more keys than the set lists");
	cJSON_ArrayForEach (k, keys) {
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
		if (!cJSON_IsString(kid) || !kid->valuestring[0])
			continue;
		EVP_PKEY *key = srv_jwks_find(s, kid->valuestring);
		if (key) {
			fuzz_check(EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "EC"),
				   "a key neither RSA nor EC");
			EVP_PKEY_free(key);
		}
	}
	cJSON_Delete(j);
	srv_jwks_free(s);
	free(copy);
	return 0;
}
