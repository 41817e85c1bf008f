/* The mechanisms the module offers (docs/clients.md, "Mechanisms"):
 *
 * | mechanism                 | module does                   | server algorithm     |
 * |---------------------------|-------------------------------|----------------------|
 * | CKM_RSA_PKCS              | parse the DigestInfo          | RSASSA_PKCS1_V1_5_*  |
 * | CKM_SHAxxx_RSA_PKCS       | hash locally (multi-part)     | RSASSA_PKCS1_V1_5_*  |
 * | CKM_RSA_PKCS_PSS          | check CK_RSA_PKCS_PSS_PARAMS  | RSASSA_PSS_* + salt  |
 * | CKM_SHAxxx_RSA_PKCS_PSS   | hash locally                  | RSASSA_PSS_* + salt  |
 * | CKM_ECDSA                 | input is a hash (32/48/64 B)  | ECDSA_SHAxxx         |
 * | CKM_ECDSA_SHAxxx          | hash locally                  | ECDSA_SHAxxx         |
 *
 * The server signs only SHA-256/384/512 digests and records the algorithm in
 * its history, so a CKM_ECDSA input of another length (a SHA-1 or SHA-224
 * digest) is CKR_DATA_LEN_RANGE rather than padded into a "SHA-256" record. */
#include "mech.h"

static const mod_mech mechs[] = {
	{CKM_RSA_PKCS, "CKM_RSA_PKCS", MECH_PKCS1, RS_HASH_NONE},
	{CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS", MECH_PKCS1, RS_HASH_SHA256},
	{CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS", MECH_PKCS1, RS_HASH_SHA384},
	{CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS", MECH_PKCS1, RS_HASH_SHA512},
	{CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS", MECH_PSS, RS_HASH_NONE},
	{CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS", MECH_PSS, RS_HASH_SHA256},
	{CKM_SHA384_RSA_PKCS_PSS, "CKM_SHA384_RSA_PKCS_PSS", MECH_PSS, RS_HASH_SHA384},
	{CKM_SHA512_RSA_PKCS_PSS, "CKM_SHA512_RSA_PKCS_PSS", MECH_PSS, RS_HASH_SHA512},
	{CKM_ECDSA, "CKM_ECDSA", MECH_ECDSA, RS_HASH_NONE},
	{CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256", MECH_ECDSA, RS_HASH_SHA256},
	{CKM_ECDSA_SHA384, "CKM_ECDSA_SHA384", MECH_ECDSA, RS_HASH_SHA384},
	{CKM_ECDSA_SHA512, "CKM_ECDSA_SHA512", MECH_ECDSA, RS_HASH_SHA512},
};

#define N_MECHS (sizeof(mechs) / sizeof(mechs[0]))

const mod_mech *mod_mech_find(CK_MECHANISM_TYPE type)
{
	size_t i;

	for (i = 0; i < N_MECHS; i++)
		if (mechs[i].type == type)
			return &mechs[i];
	return NULL;
}

int mod_mech_fits_key(const mod_mech *m, rs_key_alg key)
{
	return (m->family == MECH_ECDSA) == !rs_key_alg_is_rsa(key);
}

size_t mod_mech_list(int key_known, rs_key_alg key, CK_MECHANISM_TYPE *out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < N_MECHS; i++) {
		if (key_known && !mod_mech_fits_key(&mechs[i], key))
			continue;
		if (out && n < max)
			out[n] = mechs[i].type;
		n++;
	}
	return n;
}

rs_sign_alg mod_mech_alg(mech_family f, rs_hash h)
{
	static const rs_sign_alg algs[3][3] = {
		[MECH_PKCS1] = {RS_ALG_RSA_PKCS1_SHA256, RS_ALG_RSA_PKCS1_SHA384,
				RS_ALG_RSA_PKCS1_SHA512},
		[MECH_PSS] = {RS_ALG_RSA_PSS_SHA256, RS_ALG_RSA_PSS_SHA384, RS_ALG_RSA_PSS_SHA512},
		[MECH_ECDSA] = {RS_ALG_ECDSA_SHA256, RS_ALG_ECDSA_SHA384, RS_ALG_ECDSA_SHA512},
	};

	if (h == RS_HASH_NONE)
		return RS_ALG_COUNT;
	return algs[f][h];
}

rs_hash mod_mech_hash_of_ckm(CK_MECHANISM_TYPE t)
{
	switch (t) {
	case CKM_SHA256:
		return RS_HASH_SHA256;
	case CKM_SHA384:
		return RS_HASH_SHA384;
	case CKM_SHA512:
		return RS_HASH_SHA512;
	default:
		return RS_HASH_NONE;
	}
}

rs_hash mod_mech_hash_of_mgf(CK_RSA_PKCS_MGF_TYPE g)
{
	switch (g) {
	case CKG_MGF1_SHA256:
		return RS_HASH_SHA256;
	case CKG_MGF1_SHA384:
		return RS_HASH_SHA384;
	case CKG_MGF1_SHA512:
		return RS_HASH_SHA512;
	default:
		return RS_HASH_NONE;
	}
}
