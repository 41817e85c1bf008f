/* The HSM layer: rsignd's only door to the PKCS#11 token that holds every
 * private key. Loads any module through p11-kit's loader, keeps a pool of
 * logged-in sessions, generates sign-only keys (CKA_SENSITIVE, never
 * extractable) and signs digests. It never reads a private key value.
 *
 * A broken token heals itself: after a token fault (CKR_GENERAL_ERROR,
 * CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, a session
 * that stays invalid, CKR_CRYPTOKI_NOT_INITIALIZED...) or a key that the
 * caller knows exists but the token no longer finds, the layer closes every
 * session, finalizes and re-initialises the module, finds the token again
 * by label and logs in again, one thread at a time, with backoff. Meanwhile
 * calls fail fast with SRV_HSM_UNAVAILABLE. */
#ifndef SRV_HSM_H
#define SRV_HSM_H
#include <stddef.h>
#include "rsign/alg.h"

typedef struct srv_hsm srv_hsm;

typedef enum {
	SRV_HSM_OK = 0,
	SRV_HSM_UNAVAILABLE, /* module, slot, token or session failure: HTTP 503 */
	SRV_HSM_NOT_FOUND,   /* no key object with that CKA_ID (even after a re-init) */
	SRV_HSM_INVALID,     /* arguments the token refused (salt length, sizes) */
	SRV_HSM_FAILED,	     /* anything else: HTTP 500 */
} srv_hsm_rc;

#define SRV_CKID_LEN 16 /* CKA_ID of every key rsignd creates */

/* Initialises a fresh token with label in the first slot with no token
 * initialised yet (SoftHSM2 style), sets the user PIN. For `rsignd init`. */
srv_hsm_rc srv_hsm_init_token(const char *module_path, const char *label, const char *so_pin,
			      const char *user_pin, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Loads module_path, finds the token whose label is token_label, opens
 * pool_size sessions and logs in as CKU_USER with pin. */
srv_hsm_rc srv_hsm_open(const char *module_path, const char *token_label, const char *pin,
			int pool_size, srv_hsm **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void srv_hsm_close(srv_hsm *h); /* NULL-safe; logs out, finalizes */
/* on: signing and look-ups go on while a key is generated (a token that is
 * safe for that: network HSMs). Off (the default after srv_hsm_open): key
 * generation runs alone in the token, as SoftHSM2 needs. Key generations
 * run one at a time either way. Call before the handle is shared. */
void srv_hsm_set_shared_writes(srv_hsm *h, int on);

/* Generates a key pair; both objects get CKA_ID = ckid, CKA_LABEL = label,
 * CKA_TOKEN. Sign-only: the private key CKA_SIGN and none of CKA_DECRYPT,
 * CKA_UNWRAP, CKA_DERIVE, CKA_SIGN_RECOVER; the public key CKA_VERIFY and
 * none of CKA_ENCRYPT, CKA_WRAP, CKA_VERIFY_RECOVER; the private key
 * CKA_SENSITIVE and not CKA_EXTRACTABLE.
 * Returns the public key as DER SubjectPublicKeyInfo (malloc'd). */
srv_hsm_rc srv_hsm_generate(srv_hsm *h, rs_key_alg alg, const unsigned char ckid[SRV_CKID_LEN],
			    const char *label, unsigned char **spki, size_t *spki_len)
	__attribute__((warn_unused_result));

/* Signs a digest (rs_hash_len(rs_sign_alg_hash(alg)) bytes) with the private
 * key whose CKA_ID is ckid:
 *   PKCS#1 v1.5: CKM_RSA_PKCS over the DigestInfo -> modulus-length bytes;
 *   PSS: CKM_RSA_PKCS_PSS, MGF1 with the same hash, salt_len (-1 = hash
 *        length) -> modulus-length bytes;
 *   ECDSA: CKM_ECDSA -> converted to a DER ECDSA-Sig-Value.
 * sig must hold at least 1024 bytes. */
srv_hsm_rc srv_hsm_sign(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], rs_sign_alg alg,
			const unsigned char *digest, size_t digest_len, long salt_len,
			unsigned char *sig, size_t sigmax, size_t *siglen)
	__attribute__((warn_unused_result));

/* SRV_HSM_OK when the private key object exists in the token. Like
 * srv_hsm_sign, a key it does not find makes it re-initialise the module
 * once (the caller knows the key exists): pass only CKA_IDs of known keys. */
srv_hsm_rc srv_hsm_key_exists(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN])
	__attribute__((warn_unused_result));

/* Cheap liveness check for GET /health (C_GetTokenInfo on the slot); while
 * the token is down, a call after the backoff attempts the re-init. */
srv_hsm_rc srv_hsm_ping(srv_hsm *h) __attribute__((warn_unused_result));

/* The pool's sessions taken by a call right now, and the pool's size
 * (GET /metrics: rsign_hsm_sessions_in_use). */
void srv_hsm_sessions(srv_hsm *h, int *in_use, int *size);

/* The row MAC key (hsm_mac.c): an HMAC-SHA-256 key (CKK_GENERIC_SECRET,
 * 32 bytes, CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN and CKA_VERIFY
 * only, a token object) found by its CKA_LABEL. find: *found says whether
 * one exists. create: a new one labelled label. relabel: the key labelled
 * from gets label to (NOT_FOUND when there is none). mac: HMAC-SHA-256 of
 * msg with the key labelled label (CKM_SHA256_HMAC). */
#define SRV_HSM_MAC_LEN 32
srv_hsm_rc srv_hsm_mac_key_find(srv_hsm *h, const char *label, int *found)
	__attribute__((warn_unused_result));
srv_hsm_rc srv_hsm_mac_key_create(srv_hsm *h, const char *label)
	__attribute__((warn_unused_result));
srv_hsm_rc srv_hsm_mac_key_relabel(srv_hsm *h, const char *from, const char *to)
	__attribute__((warn_unused_result));
srv_hsm_rc srv_hsm_mac(srv_hsm *h, const char *label, const unsigned char *msg, size_t len,
		       unsigned char out[SRV_HSM_MAC_LEN]) __attribute__((warn_unused_result));

/* The module generation: 0 after srv_hsm_open, one more after each
 * successful re-initialisation. */
unsigned long srv_hsm_generation(srv_hsm *h);

#endif
