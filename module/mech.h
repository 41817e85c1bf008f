/* The mechanism table: what each PKCS#11 mechanism does locally (hash or
 * not) and which server algorithm family it becomes. */
#ifndef MOD_MECH_H
#define MOD_MECH_H
#include "rsign/alg.h"
#include "rsign/der.h"

#include "pkcs11.h"

typedef enum { MECH_PKCS1, MECH_PSS, MECH_ECDSA } mech_family;

typedef struct mod_mech {
	CK_MECHANISM_TYPE type;
	const char *name;
	mech_family family;
	rs_hash hash; /* hashed locally; RS_HASH_NONE: the input is a hash */
} mod_mech;

const mod_mech *mod_mech_find(CK_MECHANISM_TYPE type);
int mod_mech_fits_key(const mod_mech *m, rs_key_alg key);
/* Mechanisms for a key (all of them while the key is unknown). */
size_t mod_mech_list(int key_known, rs_key_alg key, CK_MECHANISM_TYPE *out, size_t max);
/* The server algorithm for a family and hash. */
rs_sign_alg mod_mech_alg(mech_family f, rs_hash h);
/* CKM_SHA256 / CKG_MGF1_SHA256 ... -> hash, RS_HASH_NONE if not SHA-2 256/384/512. */
rs_hash mod_mech_hash_of_ckm(CK_MECHANISM_TYPE t);
rs_hash mod_mech_hash_of_mgf(CK_RSA_PKCS_MGF_TYPE g);

#endif
