/* What the module's files share: the global lock and life-cycle checks
 * (init.c), slots and their signers (slot_table.c), objects (object.c),
 * sessions (session.c) and the per-call log line. Functions named _inlock
 * must be called with the global lock held; everything else takes it itself
 * or needs none. The lock guards these tables only and is never held across
 * HTTP: callers copy what they need, unlock, call, relock and look their
 * session or slot up again by handle. */
#ifndef MOD_MODULE_H
#define MOD_MODULE_H
#include <stddef.h>
#include <time.h>

#include "rsign/alg.h"
#include "rsign/util.h"

#include "pkcs11.h"
#include "config.h"
#include "auth.h"

#define MOD_VERSION_MAJOR 0
#define MOD_VERSION_MINOR 1
#define MOD_MANUFACTURER "rsign"
#define MOD_ID_LEN 16 /* CKA_ID bytes */
#define MOD_NAME_MAX 64
#define MOD_SIGNER_ID_MAX 64
#define MOD_MAX_CHAIN 8

/* ---- init.c: global state, lock, life cycle ------------------------------ */
void mod_lock(void);
void mod_unlock(void);
/* Waits (lock held, released while waiting) for mod_broadcast_inlock or
 * until deadline_ms on CLOCK_REALTIME; 0 when woken, -1 on timeout. */
int mod_wait_inlock(long long deadline_ms);
void mod_broadcast_inlock(void);
/* Locks; CKR_OK with the lock held, or CKR_CRYPTOKI_NOT_INITIALIZED without
 * (also in a forked child that has not called C_Initialize again). */
CK_RV mod_enter(void) __attribute__((warn_unused_result));
/* Relocks after an unlocked call. CKR_OK when the module is still the same
 * initialisation as at gen; otherwise CKR_CRYPTOKI_NOT_INITIALIZED, still
 * locked so the caller leaves through its single exit. */
CK_RV mod_reenter(unsigned long gen) __attribute__((warn_unused_result));
unsigned long mod_generation_inlock(void);
const mod_config *mod_conf(void);
/* Credentials from the configuration or the environment, NULL when the
 * PIN must carry them (then tokens require login). */
mod_cred *mod_configured_cred(void);
int mod_login_required(void);
/* Logs the entry point's result at debug level and returns it. */
CK_RV mod_rv(const char *fn, CK_RV rv);
/* Monotonic milliseconds, for expiries and refresh intervals. */
long long mod_now(void);
/* Blank-padded, unterminated PKCS#11 text field. */
void mod_pad(CK_UTF8CHAR *dst, size_t n, const char *src);
CK_RV mod_get_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor);

/* ---- object.c / object_load.c: the objects of one signer ---------------- */
typedef struct mod_object {
	CK_OBJECT_CLASS klass;
	CK_ATTRIBUTE *attrs; /* values owned */
	size_t n_attrs;
	int private_key; /* secret parts answer CKR_ATTRIBUTE_SENSITIVE */
	int is_private;	 /* CKA_PRIVATE: hidden until login */
} mod_object;

/* Object handles encode the slot's table index and the object's position:
 * stable for a slot within the process. */
enum { MOD_OBJ_CERT = 0, MOD_OBJ_PUBKEY = 1, MOD_OBJ_PRIVKEY = 2, MOD_OBJ_CHAIN = 3 };
#define MOD_HANDLE(slot_index, obj) ((CK_OBJECT_HANDLE)(((slot_index) + 1) << 8 | ((obj) + 1)))
#define MOD_HANDLE_SLOT(h) ((size_t)((h) >> 8) - 1)
#define MOD_HANDLE_OBJ(h) ((size_t)((h)&0xff) - 1)

/* ---- slot_table.c: slots, one per signer ------------------------------------ */
typedef struct mod_slot {
	CK_SLOT_ID id;
	size_t index;			       /* position in the table, never reused */
	char name[MOD_NAME_MAX + 1];	       /* token label */
	char signer_id[MOD_SIGNER_ID_MAX + 1]; /* "" until resolved */
	int resolved;			       /* signer_id and key_alg are known */
	rs_key_alg key_alg;
	int enabled;
	int present; /* listed at the last refresh */
	unsigned char ckaid[MOD_ID_LEN];

	mod_object *objects; /* NULL until fetched */
	size_t n_objects;
	long long objects_time;

	int logged_in;
	mod_cred pin_cred; /* without configured credentials */
	unsigned long sessions, rw_sessions;
} mod_slot;

int mod_slots_init_inlock(void) __attribute__((warn_unused_result));
void mod_slots_free_inlock(void);
/* Fetches or refreshes the signer list when due. Never fails: a server that
 * cannot be reached leaves the previous list (or none) and one log line. */
void mod_slots_refresh(void);
/* Fetches the list once if no C_GetSlotList has yet: slot IDs are stable
 * across processes, and callers such as Java's SunPKCS11 (`slot =`) open a
 * slot by its ID without listing first. Without the lock. */
void mod_slots_ensure(void);
mod_slot *mod_slot_get_inlock(CK_SLOT_ID id);
/* How a C_ function on a slot begins, after its argument checks: fetches the
 * signer list if none was ever fetched (mod_slots_ensure), takes the lock,
 * checks the module is initialised in this process and finds the slot, with
 * a token in it when need_token. CKR_OK with the lock held and *slot set;
 * otherwise CKR_CRYPTOKI_NOT_INITIALIZED, CKR_SLOT_ID_INVALID or
 * CKR_TOKEN_NOT_PRESENT with the lock released. */
CK_RV mod_slot_enter(CK_SLOT_ID id, int need_token, mod_slot **slot)
	__attribute__((warn_unused_result));
/* Present slots (or all) sorted by name; count without list. */
size_t mod_slots_list_inlock(int present_only, CK_SLOT_ID *list, size_t max);
/* One signer as the server describes it. */
typedef struct mod_signer_rec {
	char id[MOD_SIGNER_ID_MAX + 1];
	char name[MOD_NAME_MAX + 1];
	rs_key_alg key_alg;
	int enabled;
} mod_signer_rec;
/* GET /pki/signers/{name} with a credential only the caller holds (C_Login
 * with the PIN's credential). Without the lock. */
CK_RV mod_slot_fetch_signer(mod_cred *cred, const char *name, int in_login, mod_signer_rec *rec)
	__attribute__((warn_unused_result));
void mod_slot_apply_inlock(mod_slot *slot, const mod_signer_rec *rec);
/* The credentials requests for this slot are made with. */
mod_cred *mod_slot_cred_inlock(mod_slot *slot);
/* Forces a refresh of the list at the next C_GetSlotList (signer gone). */
void mod_slots_mark_stale_inlock(void);

/* ---- object_load.c (fetch, build) and object.c (lookup) ----------------- */
/* Fetches the certificate and chain when missing or stale. Takes the lock. */
CK_RV mod_objects_load(CK_SLOT_ID id) __attribute__((warn_unused_result));
void mod_objects_free(mod_object *objs, size_t n);
/* The object behind h on this slot, NULL if none or not visible. */
mod_object *mod_object_get_inlock(mod_slot *slot, CK_OBJECT_HANDLE h);
int mod_object_visible_inlock(const mod_slot *slot, const mod_object *obj);
const CK_ATTRIBUTE *mod_object_attr(const mod_object *obj, CK_ATTRIBUTE_TYPE type);

/* ---- session.c ----------------------------------------------------------- */
struct mod_op;
typedef struct mod_session {
	CK_SESSION_HANDLE handle;
	mod_slot *slot;
	CK_FLAGS flags;
	/* find */
	int find_active;
	CK_OBJECT_HANDLE *found;
	size_t n_found, find_pos;
	/* sign and verify: NULL when none. busy while the op is detached for
	 * work done without the lock (hashing, the server call). */
	struct mod_op *sign;
	int sign_busy;
	struct mod_op *verify;
	int verify_busy;
	/* digest (digest.c): local SHA-2, same busy rule */
	struct mod_digest *digest;
	int digest_busy;
} mod_session;

void mod_sessions_free_inlock(void);
mod_session *mod_session_get_inlock(CK_SESSION_HANDLE h);
/* How a C_ function on a session begins, after its argument checks: takes
 * the lock, checks the module is initialised in this process and finds
 * session h. CKR_OK with the lock held and *s set; otherwise
 * CKR_CRYPTOKI_NOT_INITIALIZED or CKR_SESSION_HANDLE_INVALID with the lock
 * released, so the caller returns at once. */
CK_RV mod_session_enter(CK_SESSION_HANDLE h, mod_session **s) __attribute__((warn_unused_result));
/* After work done without the lock, whose outcome was rv: relocks and finds
 * session h again. CKR_CRYPTOKI_NOT_INITIALIZED when the module was
 * finalised or initialised again since gen, else CKR_SESSION_CLOSED when the
 * session was closed meanwhile (*s NULL in both), else rv with *s set. The
 * lock is held in every case: the caller leaves through its single exit. */
CK_RV mod_session_reenter(CK_SESSION_HANDLE h, unsigned long gen, CK_RV rv, mod_session **s)
	__attribute__((warn_unused_result));
/* Ends the operations of s named by flags (CKF_SIGN, CKF_VERIFY, CKF_DIGEST,
 * CKF_FIND_OBJECTS), active or not. One that another thread is working on
 * without the lock (hashing, the server call) cannot be stopped:
 * CKR_OPERATION_CANCEL_FAILED, and it goes on; the others named end in any
 * case. */
CK_RV mod_session_cancel_inlock(mod_session *s, CK_FLAGS flags) __attribute__((warn_unused_result));
/* The whole of an entry point that only needs a valid session: answer,
 * or why not (logged under fn). */
CK_RV mod_session_answer(const char *fn, CK_SESSION_HANDLE h, CK_RV answer);

/* ---- sign.c -------------------------------------------------------------- */
void mod_op_free(struct mod_op *op);

/* ---- digest.c: CKM_SHA256/384/512, computed locally ---------------------- */
struct mod_digest;
void mod_digest_free(struct mod_digest *d);
/* The digest mechanisms every token lists after its signing ones. */
size_t mod_digest_mechs(CK_MECHANISM_TYPE *out, size_t max);
/* 1 and *info filled when type is one of them, else 0. */
int mod_digest_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info);

#endif
