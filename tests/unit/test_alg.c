/* Unit tests for the API's algorithm names and properties, and the OpenSSL
 * digest behind each hash. */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "rsign/alg.h"
#include "tap.h"

/* rs_hash_md: the digest OpenSSL computes for each hash, by NID and size. */
static void hash_md_checks(void)
{
	static const struct {
		rs_hash hash;
		int nid;
	} mds[] = {
		{RS_HASH_SHA256, NID_sha256},
		{RS_HASH_SHA384, NID_sha384},
		{RS_HASH_SHA512, NID_sha512},
	};
	size_t i;

	for (i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
		const EVP_MD *md = rs_hash_md(mds[i].hash);

		ok(md && EVP_MD_get_type(md) == mds[i].nid &&
			   (size_t)EVP_MD_get_size(md) == rs_hash_len(mds[i].hash),
		   "hash_md_%s_is_openssl_%s", rs_hash_name(mds[i].hash), OBJ_nid2sn(mds[i].nid));
	}
	ok(rs_hash_md(RS_HASH_NONE) == NULL, "hash_md_none_is_null");
	ok(rs_hash_md((rs_hash)42) == NULL && rs_hash_md((rs_hash)-1) == NULL,
	   "hash_md_out_of_range_is_null");
}

int main(void)
{
	static const struct {
		const char *name, *alias;
		rs_sign_alg alg;
		rs_hash hash;
		int rsa, pss, ecdsa;
	} sign[] = {
		{"RSASSA_PKCS1_V1_5_SHA256", "RSASSA_PKCS1_V1_5_SHA_256", RS_ALG_RSA_PKCS1_SHA256,
		 RS_HASH_SHA256, 1, 0, 0},
		{"RSASSA_PKCS1_V1_5_SHA384", "RSASSA_PKCS1_V1_5_SHA_384", RS_ALG_RSA_PKCS1_SHA384,
		 RS_HASH_SHA384, 1, 0, 0},
		{"RSASSA_PKCS1_V1_5_SHA512", "RSASSA_PKCS1_V1_5_SHA_512", RS_ALG_RSA_PKCS1_SHA512,
		 RS_HASH_SHA512, 1, 0, 0},
		{"RSASSA_PSS_SHA256", "RSASSA_PSS_SHA_256", RS_ALG_RSA_PSS_SHA256, RS_HASH_SHA256,
		 1, 1, 0},
		{"RSASSA_PSS_SHA384", "RSASSA_PSS_SHA_384", RS_ALG_RSA_PSS_SHA384, RS_HASH_SHA384,
		 1, 1, 0},
		{"RSASSA_PSS_SHA512", "RSASSA_PSS_SHA_512", RS_ALG_RSA_PSS_SHA512, RS_HASH_SHA512,
		 1, 1, 0},
		{"ECDSA_SHA256", "ECDSA_SHA_256", RS_ALG_ECDSA_SHA256, RS_HASH_SHA256, 0, 0, 1},
		{"ECDSA_SHA384", "ECDSA_SHA_384", RS_ALG_ECDSA_SHA384, RS_HASH_SHA384, 0, 0, 1},
		{"ECDSA_SHA512", "ECDSA_SHA_512", RS_ALG_ECDSA_SHA512, RS_HASH_SHA512, 0, 0, 1},
	};
	static const struct {
		const char *name;
		rs_key_alg key;
		int rsa, bits;
		size_t sig_len;
	} keys[] = {
		{"RSA_2048", RS_KEY_RSA_2048, 1, 2048, 256},
		{"RSA_3072", RS_KEY_RSA_3072, 1, 3072, 384},
		{"RSA_4096", RS_KEY_RSA_4096, 1, 4096, 512},
		{"EC_P256", RS_KEY_EC_P256, 0, 256, 64},
		{"EC_P384", RS_KEY_EC_P384, 0, 384, 96},
		{"EC_P521", RS_KEY_EC_P521, 0, 521, 132},
	};
	static const char *const bad[] = {
		"",
		"rsassa_pss_sha256",
		"RSASSA_PSS_SHA1",
		"RSASSA_PSS_SHA256 ",
		"RSASSA_PSS",
		"ECDSA_SHA__256",
		"ECDSA_SHA_2_56",
		"RSA_2048",
		"ECDSA_SHA256\n",
	};
	size_t i, j;
	rs_sign_alg a;
	rs_key_alg k;

	plan(17 + 4 * TAP_COUNT(sign) + TAP_COUNT(bad) + 4 * TAP_COUNT(keys));
	ok(TAP_COUNT(sign) == RS_ALG_COUNT, "sign_alg_table_covers_every_alg");
	for (i = 0; i < TAP_COUNT(sign); i++) {
		a = RS_ALG_COUNT;
		ok(rs_sign_alg_parse(sign[i].name, &a) == 0 && a == sign[i].alg,
		   "sign_alg_parses_%s", sign[i].name);
		a = RS_ALG_COUNT;
		ok(rs_sign_alg_parse(sign[i].alias, &a) == 0 && a == sign[i].alg,
		   "sign_alg_parses_alias_%s", sign[i].alias);
		ok(rs_sign_alg_name(sign[i].alg) &&
			   strcmp(rs_sign_alg_name(sign[i].alg), sign[i].name) == 0,
		   "sign_alg_name_is_canonical_%s", sign[i].name);
		ok(rs_sign_alg_hash(sign[i].alg) == sign[i].hash &&
			   rs_sign_alg_is_rsa(sign[i].alg) == sign[i].rsa &&
			   rs_sign_alg_is_pss(sign[i].alg) == sign[i].pss &&
			   rs_sign_alg_is_ecdsa(sign[i].alg) == sign[i].ecdsa,
		   "sign_alg_properties_%s", sign[i].name);
	}
	for (i = 0; i < TAP_COUNT(bad); i++) {
		a = RS_ALG_COUNT;
		ok(rs_sign_alg_parse(bad[i], &a) == -1 && a == RS_ALG_COUNT,
		   "sign_alg_rejects_unknown_%zu", i);
	}
	ok(rs_sign_alg_parse(NULL, &a) == -1, "sign_alg_rejects_null");
	ok(rs_sign_alg_name(RS_ALG_COUNT) == NULL &&
		   rs_sign_alg_hash(RS_ALG_COUNT) == RS_HASH_NONE &&
		   !rs_sign_alg_is_rsa(RS_ALG_COUNT) && !rs_sign_alg_is_ecdsa(RS_ALG_COUNT),
	   "sign_alg_out_of_range_is_nothing");

	ok(TAP_COUNT(keys) == RS_KEY_COUNT, "key_alg_table_covers_every_key");
	for (i = 0; i < TAP_COUNT(keys); i++) {
		k = RS_KEY_COUNT;
		ok(rs_key_alg_parse(keys[i].name, &k) == 0 && k == keys[i].key, "key_alg_parses_%s",
		   keys[i].name);
		ok(strcmp(rs_key_alg_name(keys[i].key), keys[i].name) == 0, "key_alg_name_%s",
		   keys[i].name);
		ok(rs_key_alg_is_rsa(keys[i].key) == keys[i].rsa &&
			   rs_key_alg_bits(keys[i].key) == keys[i].bits,
		   "key_alg_type_and_bits_%s", keys[i].name);
		ok(rs_key_alg_sig_len(keys[i].key) == keys[i].sig_len, "key_alg_sig_len_%s_is_%zu",
		   keys[i].name, keys[i].sig_len);
	}
	k = RS_KEY_COUNT;
	ok(rs_key_alg_parse("RSA_1024", &k) == -1 && rs_key_alg_parse("ec_p256", &k) == -1 &&
		   rs_key_alg_parse("EC_P256K", &k) == -1 && rs_key_alg_parse("", &k) == -1 &&
		   rs_key_alg_parse(NULL, &k) == -1 && k == RS_KEY_COUNT,
	   "key_alg_rejects_unknown");
	ok(rs_key_alg_name(RS_KEY_COUNT) == NULL && rs_key_alg_sig_len(RS_KEY_COUNT) == 0,
	   "key_alg_out_of_range_is_nothing");

	{
		int table_ok = 1;

		for (i = 0; i < TAP_COUNT(sign); i++)
			for (j = 0; j < TAP_COUNT(keys); j++)
				if (rs_alg_fits_key(sign[i].alg, keys[j].key) !=
				    (sign[i].rsa == keys[j].rsa))
					table_ok = 0;
		ok(table_ok, "alg_fits_key_matches_rsa_to_rsa_and_ecdsa_to_ec");
	}
	ok(rs_alg_fits_key(RS_ALG_RSA_PSS_SHA512, RS_KEY_RSA_2048), "alg_fits_key_pss_on_rsa");
	ok(!rs_alg_fits_key(RS_ALG_ECDSA_SHA256, RS_KEY_RSA_4096),
	   "alg_fits_key_rejects_ecdsa_on_rsa");
	ok(!rs_alg_fits_key(RS_ALG_RSA_PKCS1_SHA256, RS_KEY_EC_P256),
	   "alg_fits_key_rejects_rsa_on_ec");
	ok(rs_alg_fits_key(RS_ALG_ECDSA_SHA512, RS_KEY_EC_P256),
	   "alg_fits_key_any_ecdsa_hash_on_any_curve");
	ok(!rs_alg_fits_key(RS_ALG_COUNT, RS_KEY_EC_P256) &&
		   !rs_alg_fits_key(RS_ALG_ECDSA_SHA256, RS_KEY_COUNT),
	   "alg_fits_key_rejects_out_of_range");
	hash_md_checks();
	return tap_done();
}
