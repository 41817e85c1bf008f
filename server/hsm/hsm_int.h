/* What hsm.c, hsm_pool.c and hsm_keygen.c share and nobody else sees: the
 * handle's layout, the session runner, module loading and the CK_RV table. */
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
/* The token is down (a re-init failed, or one is running): fail fast. */
#define HSM_RV_DOWN (CKR_VENDOR_DEFINED | 0x7273005UL)

#define HSM_CACHE_SIZE 4096 /* key handle cache entries, a power of two */
#define HSM_POOL_MAX 256
#define HSM_MISSING_SIZE 256 /* keys known missing after a re-init, a power of two */

/* Re-initialisation backoff: the first attempt at once, then attempts at
 * least MIN seconds apart, doubling to MAX; back to MIN after QUIET seconds
 * without an attempt. */
#define HSM_BACKOFF_MIN 0.1
#define HSM_BACKOFF_MAX 5.0
#define HSM_BACKOFF_QUIET 60.0

typedef struct {
	CK_SESSION_HANDLE h; /* CK_INVALID_HANDLE until opened and logged in */
	unsigned long gen;   /* the module generation h belongs to */
	int busy;
} hsm_sess;

typedef struct {
	int used;
	unsigned long gen; /* obj is a handle of this module generation */
	unsigned char ckid[SRV_CKID_LEN];
	CK_OBJECT_HANDLE obj;
	CK_KEY_TYPE type;
	CK_ULONG mod_len; /* RSA modulus bytes, 0 for EC */
} hsm_key;

/* Locking. lock guards the pool and the token's state below; it is never
 * held across a PKCS#11 call. mod, slot and the session handles change only
 * in a re-init, which runs while no other thread is inside the module
 * (active == 0) and no new one may enter (reiniting): the reiniting flag is
 * the one "lock" held across token calls, and it serialises re-inits.
 * A thread reads mod, slot and gen without the lock while it is counted in
 * active: they cannot change then. */
struct srv_hsm {
	CK_FUNCTION_LIST *mod; /* NULL while down after a failed re-init */
	CK_SLOT_ID slot;
	char *path;  /* the module, loaded again by a re-init */
	char *label; /* the token, found again by label after a re-init */
	char *pin;   /* kept to log in again after a session is lost; wiped on close */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* a session given back, active reached 0, a re-init ended */
	hsm_sess *sess;
	int nsess;
	int closing;
	int active;	   /* threads inside the module: a busy session or a ping */
	unsigned long gen; /* module generation: bumped by each successful re-init */
	int down;	   /* a token fault was seen: fail fast until a re-init works */
	int fail_logged;   /* a failed re-init was logged since the last fault */
	int reiniting;	   /* one thread is re-initialising the module */
	int pin_refused;   /* a re-init's login was refused: no more attempts */
	double backoff;	   /* seconds between re-init attempts, doubling */
	double next_try;   /* monotonic time before which none is attempted */
	double last_try;   /* monotonic time of the last attempt */
	int writing;	   /* a call that creates or destroys objects is inside */
	int writers_waiting;
	int shared_writes; /* readers may run beside a writer (hsm_exclusive_writes = no) */

	pthread_mutex_t cache_lock;		    /* guards cache and missing */
	hsm_key *cache;				    /* direct-mapped by a hash of the CKA_ID */
	unsigned char (*missing)[SRV_CKID_LEN + 1]; /* [0] used, then the CKA_ID */
};

/* Runs op on a pooled session. A session fault (handle invalid, closed,
 * logged out) makes it reopen the session, log in again and run op once
 * more. A token fault (rv_is_token_fault), or a key that is not found when
 * missing names one (a CKA_ID the caller knows exists), makes it re-initialise
 * the module (hsm_pool.c) and run op once more on the new generation. *fn
 * names the PKCS#11 function or check that failed; what names the operation
 * in the one log line a failure writes. */
typedef CK_RV (*hsm_op_fn)(srv_hsm *h, CK_SESSION_HANDLE s, void *ctx, const char **fn);
srv_hsm_rc hsm_run(srv_hsm *h, const char *what, hsm_op_fn op, void *ctx,
		   const unsigned char *missing);
/* hsm_run for an op that creates or destroys token objects. Such calls run
 * one at a time, and (unless shared_writes) alone in the module: they wait
 * for the calls inside to leave, and new calls wait for them. SoftHSM2's
 * file object store is not safe for an object created while another
 * thread creates or reads one (C_GenerateKeyPair then fails at random with
 * CKR_GENERAL_ERROR). Waiting writers go first, so signing cannot starve
 * them. */
srv_hsm_rc hsm_run_write(srv_hsm *h, const char *what, hsm_op_fn op, void *ctx);
/* The cheap token call of srv_hsm_ping, counted in active, with the same
 * recovery as hsm_run. */
srv_hsm_rc hsm_ping(srv_hsm *h);
/* Closes every session, finalizes the module; for srv_hsm_close and a
 * re-init (nothing else inside the module). */
void hsm_sessions_drop_all(srv_hsm *h);

srv_hsm_rc hsm_rc_from_rv(CK_RV rv);
const char *hsm_rv_name(CK_RV rv);
void hsm_log_rv(const char *what, const char *fn, CK_RV rv);

/* Loads and initialises a module (NULL with err set), and the reverse. */
CK_FUNCTION_LIST *hsm_module_load(const char *path, char *err, size_t errlen);
void hsm_module_unload(CK_FUNCTION_LIST *mod);
/* Finds the slot of the token labelled label (when label != NULL), or else
 * the first uninitialised one; *found says whether it did. */
CK_RV hsm_slot_find(CK_FUNCTION_LIST *mod, const char *label, CK_SLOT_ID *slot, int *found,
		    const char **fn);
/* Opens s's session and logs in, when s has none of the current generation
 * (the caller owns s, or nobody else can use the pool yet). */
CK_RV hsm_sess_ready(srv_hsm *h, hsm_sess *s, const char **fn);

/* Key handle cache; entries are copied in and out under cache_lock. A hit
 * is an entry of the current generation (the caller is in active). */
int hsm_cache_get(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], hsm_key *out);
void hsm_cache_put(srv_hsm *h, const hsm_key *k);
void hsm_cache_drop(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], CK_OBJECT_HANDLE obj);
/* Keys still not found after a re-init: they trigger no other (bounded,
 * direct-mapped; forgotten when found again). hsm_missing_add returns 1 when ckid
 * was not there yet. */
int hsm_missing_has(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN]);
int hsm_missing_add(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN]);
void hsm_missing_forget(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN]);

/* C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal: at most max
 * objects matching tmpl into objs, *n of them. */
CK_RV hsm_find(srv_hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
	       CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *n, const char **fn);
/* Finds the private key with CKA_ID ckid in session s (HSM_RV_NOT_FOUND when
 * there is none) and caches it. */
CK_RV hsm_key_find(srv_hsm *h, CK_SESSION_HANDLE s, const unsigned char ckid[SRV_CKID_LEN],
		   hsm_key *out, const char **fn);

#endif
