/* A sign or verify operation between C_*Init and its end: the mechanism and
 * its checked parameters, what is known of the key, the local hashing of
 * multi-part input, and the one digest the server is asked to sign. */
#ifndef MOD_OP_H
#define MOD_OP_H
#include <openssl/evp.h>

#include "rsign/alg.h"
#include "rsign/buf.h"

#include "module.h"
#include "mech.h"

#define MOD_MAX_SIG 512	 /* RSA-4096; ECDSA P-521 r||s is 132 */
#define MOD_RAW_MAX 1024 /* input of the raw mechanisms (a DigestInfo, a hash) */

typedef struct mod_op {
	const mod_mech *mech;
	CK_SLOT_ID slot_id;
	char signer_id[MOD_SIGNER_ID_MAX + 1];
	char signer_name[MOD_NAME_MAX + 1];
	rs_key_alg key_alg;
	size_t sig_len;	  /* from key metadata: never from the network */
	rs_hash pss_hash; /* PSS: the params' hash */
	long salt_len;	  /* PSS: sLen; -1 otherwise */
	EVP_MD_CTX *md;	  /* hashing mechanisms */
	rs_buf raw;	  /* raw mechanisms: input given to C_*Update */
	int multipart;	  /* C_*Update was called */
	/* the digest to sign, computed once */
	int have_digest;
	unsigned char digest[64];
	size_t digest_len;
	rs_sign_alg alg;
	/* a signature computed and not yet handed out, for the retry */
	unsigned char kept[MOD_MAX_SIG];
	size_t kept_len;
	EVP_PKEY *pub; /* verify */
} mod_op;

/* Checks the mechanism against the slot's key; the lock is held. */
CK_RV mod_op_new_inlock(const CK_MECHANISM *m, const mod_slot *slot, mod_op **out)
	__attribute__((warn_unused_result));
/* Multi-part input: hashed, or collected (bounded) for the raw mechanisms. */
CK_RV mod_op_update(mod_op *op, const unsigned char *p, size_t n)
	__attribute__((warn_unused_result));
/* Turns the input (single-part data, or what C_*Update gave when final) into
 * the digest and server algorithm the mechanism table says. */
CK_RV mod_op_digest(mod_op *op, const unsigned char *data, size_t n, int final)
	__attribute__((warn_unused_result));
/* Local verification with op->pub: CKR_OK, CKR_SIGNATURE_INVALID or
 * CKR_SIGNATURE_LEN_RANGE. op_digest must have succeeded. */
CK_RV mod_op_verify(mod_op *op, const unsigned char *data, size_t n, const unsigned char *sig,
		    size_t sig_len) __attribute__((warn_unused_result));

#endif
