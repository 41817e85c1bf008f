/* The API's signing and key algorithm names and their properties. */
#include <string.h>

#include "rsign/alg.h"

static const struct {
	const char *name;
	const char *alias; /* underscore before the digits, accepted on input */
	rs_hash hash;
	enum { FAM_PKCS1, FAM_PSS, FAM_ECDSA } family;
} sign_algs[RS_ALG_COUNT] = {
	[RS_ALG_RSA_PKCS1_SHA256] = {"RSASSA_PKCS1_V1_5_SHA256", "RSASSA_PKCS1_V1_5_SHA_256",
				     RS_HASH_SHA256, FAM_PKCS1},
	[RS_ALG_RSA_PKCS1_SHA384] = {"RSASSA_PKCS1_V1_5_SHA384", "RSASSA_PKCS1_V1_5_SHA_384",
				     RS_HASH_SHA384, FAM_PKCS1},
	[RS_ALG_RSA_PKCS1_SHA512] = {"RSASSA_PKCS1_V1_5_SHA512", "RSASSA_PKCS1_V1_5_SHA_512",
				     RS_HASH_SHA512, FAM_PKCS1},
	[RS_ALG_RSA_PSS_SHA256] = {"RSASSA_PSS_SHA256", "RSASSA_PSS_SHA_256", RS_HASH_SHA256,
				   FAM_PSS},
	[RS_ALG_RSA_PSS_SHA384] = {"RSASSA_PSS_SHA384", "RSASSA_PSS_SHA_384", RS_HASH_SHA384,
				   FAM_PSS},
	[RS_ALG_RSA_PSS_SHA512] = {"RSASSA_PSS_SHA512", "RSASSA_PSS_SHA_512", RS_HASH_SHA512,
				   FAM_PSS},
	[RS_ALG_ECDSA_SHA256] = {"ECDSA_SHA256", "ECDSA_SHA_256", RS_HASH_SHA256, FAM_ECDSA},
	[RS_ALG_ECDSA_SHA384] = {"ECDSA_SHA384", "ECDSA_SHA_384", RS_HASH_SHA384, FAM_ECDSA},
	[RS_ALG_ECDSA_SHA512] = {"ECDSA_SHA512", "ECDSA_SHA_512", RS_HASH_SHA512, FAM_ECDSA},
};

static const struct {
	const char *name;
	int rsa;
	int bits;
} key_algs[RS_KEY_COUNT] = {
	[RS_KEY_RSA_2048] = {"RSA_2048", 1, 2048}, [RS_KEY_RSA_3072] = {"RSA_3072", 1, 3072},
	[RS_KEY_RSA_4096] = {"RSA_4096", 1, 4096}, [RS_KEY_EC_P256] = {"EC_P256", 0, 256},
	[RS_KEY_EC_P384] = {"EC_P384", 0, 384},	   [RS_KEY_EC_P521] = {"EC_P521", 0, 521},
};

static int sign_ok(rs_sign_alg a)
{
	return (int)a >= 0 && a < RS_ALG_COUNT;
}

static int key_ok(rs_key_alg k)
{
	return (int)k >= 0 && k < RS_KEY_COUNT;
}

const char *rs_sign_alg_name(rs_sign_alg a)
{
	return sign_ok(a) ? sign_algs[a].name : NULL;
}

int rs_sign_alg_parse(const char *s, rs_sign_alg *out)
{
	int i;

	if (!s)
		return -1;
	for (i = 0; i < RS_ALG_COUNT; i++) {
		if (strcmp(s, sign_algs[i].name) == 0 || strcmp(s, sign_algs[i].alias) == 0) {
			*out = (rs_sign_alg)i;
			return 0;
		}
	}
	return -1;
}

rs_hash rs_sign_alg_hash(rs_sign_alg a)
{
	return sign_ok(a) ? sign_algs[a].hash : RS_HASH_NONE;
}

int rs_sign_alg_is_rsa(rs_sign_alg a)
{
	return sign_ok(a) && sign_algs[a].family != FAM_ECDSA;
}

int rs_sign_alg_is_pss(rs_sign_alg a)
{
	return sign_ok(a) && sign_algs[a].family == FAM_PSS;
}

int rs_sign_alg_is_ecdsa(rs_sign_alg a)
{
	return sign_ok(a) && sign_algs[a].family == FAM_ECDSA;
}

const char *rs_key_alg_name(rs_key_alg k)
{
	return key_ok(k) ? key_algs[k].name : NULL;
}

int rs_key_alg_parse(const char *s, rs_key_alg *out)
{
	int i;

	if (!s)
		return -1;
	for (i = 0; i < RS_KEY_COUNT; i++) {
		if (strcmp(s, key_algs[i].name) == 0) {
			*out = (rs_key_alg)i;
			return 0;
		}
	}
	return -1;
}

int rs_key_alg_is_rsa(rs_key_alg k)
{
	return key_ok(k) && key_algs[k].rsa;
}

int rs_key_alg_bits(rs_key_alg k)
{
	return key_ok(k) ? key_algs[k].bits : 0;
}

size_t rs_key_alg_sig_len(rs_key_alg k)
{
	size_t bytes;

	if (!key_ok(k))
		return 0;
	bytes = ((size_t)key_algs[k].bits + 7) / 8;
	return key_algs[k].rsa ? bytes : 2 * bytes;
}

int rs_alg_fits_key(rs_sign_alg a, rs_key_alg k)
{
	if (!sign_ok(a) || !key_ok(k))
		return 0;
	return rs_sign_alg_is_rsa(a) == rs_key_alg_is_rsa(k);
}
