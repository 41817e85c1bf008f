/* What hsm.c and hsm_keygen.c share and nobody else sees: the handle's
 * layout, the session runner and the CK_RV table. */
#ifndef SRV_HSM_INT_H
#define SRV_HSM_INT_H
#include <pthread.h>
#include <p11-kit/p11-kit.h>
#include "server/hsm/hsm.h"

/* Outcomes decided by our code rather than the token; they travel as CK_RVs
 * so one table (hsm_rc_from_rv) turns every outcome into a srv_hsm_rc. */
#define HSM_RV_NOT_FOUND (CKR_VENDOR_DEFINED | 0x7273001UL)
#define HSM_RV_INVALID (CKR_VENDOR_DEFINED | 0x7273002UL)
#define HSM_RV_FAILED (CKR_VENDOR_DEFINED | 0x7273003UL)
#define HSM_RV_UNAVAILABLE (CKR_VENDOR_DEFINED | 0x7273004UL)

#define HSM_CACHE_SIZE 4096 /* key handle cache entries, a power of two */
#define HSM_POOL_MAX 256

typedef struct {
	CK_SESSION_HANDLE h; /* CK_INVALID_HANDLE until opened and logged in */
	int busy;
} hsm_sess;

typedef struct {
	int used;
	unsigned char ckid[SRV_CKID_LEN];
	CK_OBJECT_HANDLE obj;
	CK_KEY_TYPE type;
	CK_ULONG mod_len; /* RSA modulus bytes, 0 for EC */
} hsm_key;

struct srv_hsm {
	CK_FUNCTION_LIST *mod;
	CK_SLOT_ID slot;
	char *pin; /* kept to log in again after a session is lost; wiped on close */

	pthread_mutex_t lock; /* guards sess[].busy and closing */
	pthread_cond_t cond;
	hsm_sess *sess;
	int nsess;
	int closing;

	pthread_mutex_t cache_lock;
	hsm_key *cache; /* direct-mapped by a hash of the CKA_ID */
};

/* Runs op on a pooled session. A session fault (handle invalid, closed,
 * device error, token gone, logged out) makes it reopen the session, log in
 * again and run op once more. *fn names the PKCS#11 function or check that
 * failed; what names the operation in the one log line a failure writes. */
typedef CK_RV (*hsm_op_fn)(srv_hsm *h, CK_SESSION_HANDLE s, void *ctx, const char **fn);
srv_hsm_rc hsm_run(srv_hsm *h, const char *what, hsm_op_fn op, void *ctx);

srv_hsm_rc hsm_rc_from_rv(CK_RV rv);
const char *hsm_rv_name(CK_RV rv);

/* Key handle cache; entries are copied in and out under cache_lock. */
int hsm_cache_get(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], hsm_key *out);
void hsm_cache_put(srv_hsm *h, const hsm_key *k);
void hsm_cache_drop(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], CK_OBJECT_HANDLE obj);

/* Finds the private key with CKA_ID ckid in session s (HSM_RV_NOT_FOUND when
 * there is none) and caches it. */
CK_RV hsm_key_find(srv_hsm *h, CK_SESSION_HANDLE s, const unsigned char ckid[SRV_CKID_LEN],
		   hsm_key *out, const char **fn);

#endif
