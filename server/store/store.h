/* Storage: the one interface rsignd keeps its state behind. SQLite (WAL) is
 * the embedded default; PostgreSQL (store_pg*.c) implements the same ops.
 * Records are plain structs owned by the caller; every *_free is NULL-safe.
 * Lists are arrays of records freed with the matching *_list_free.
 * Every list op pages in the database: it returns at most `limit` records
 * (0 = no limit) after skipping `offset`, and *total counts every match. */
#ifndef SRV_STORE_H
#define SRV_STORE_H
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include "rsign/alg.h"
#include "rsign/util.h"

typedef enum {
	SRV_ST_OK = 0,
	SRV_ST_NOT_FOUND,   /* 404 */
	SRV_ST_CONFLICT,    /* unique name taken, or state conflict: 409 */
	SRV_ST_UNAVAILABLE, /* database unreachable / busy beyond the timeout: 503 */
	SRV_ST_FAILED,	    /* anything else: 500 */
} srv_st_rc;

typedef char srv_id[RS_UUID_LEN]; /* "" = none */

/* An OIDC login as an access token and the history keep it: JSON
 * {"issuer", "subject", "claims": {recorded claim: value}}, at most this
 * many bytes with its NUL (api_oidc.c leaves out claims that do not fit). */
#define SRV_OIDC_LOGIN_MAX 2048
/* A policy's bypass_claims, canonical JSON, at most this many bytes with
 * its NUL (server/api/api_policies.c refuses longer ones). */
#define SRV_BYPASS_CLAIMS_MAX 512

typedef struct {
	srv_id id;
	char type[12]; /* "user" | "identity" */
	char *name;
	int admin;
	int disabled;		     /* its tokens and its login are refused */
	int metrics;		     /* may read GET /metrics (the metrics role) */
	char client_id[RS_UUID_LEN]; /* identities only */
	time_t created_at;
	char *oidc;   /* identities only: the OIDC login config, canonical JSON
		       * (server/api/api_oidc.c validates it); NULL = none */
	char *login;  /* not a column: the OIDC login of the access token that
		       * token_lookup found (its tokens.oidc); NULL = none */
	char mac[65]; /* store-internal: the row's MAC as read (store_mac.c) */
} srv_principal;

typedef struct {
	srv_id id;
	char *name;
	rs_key_alg alg;
	unsigned char ckid[16]; /* CKA_ID in the token */
	unsigned char *spki;	/* DER SubjectPublicKeyInfo */
	size_t spki_len;
	time_t created_at;
} srv_key;

typedef struct {
	srv_id id;
	srv_id key_id;
	rs_key_alg key_alg; /* joined from the key */
	char *common_name;
	char *serial;
	time_t not_before, not_after;
	char *cert_pem;
	char *chain_pem; /* "" when none */
	time_t created_at;
} srv_cert;

typedef struct {
	srv_id id;
	char *name;
	char *description; /* "" when none */
	int enabled;
	srv_id certificate_id;
	srv_id policy_id; /* "" = no policy */
	time_t created_at;
	time_t last_signed_at; /* 0 = never */
	time_t retired_at;     /* 0 = live; a retired signer signs no more (read-only) */
	/* joined from the certificate and its key, read-only: */
	rs_key_alg key_alg;
	srv_id key_id;
	time_t cert_not_before, cert_not_after;
} srv_signer;

/* One signer's sign attempts of one UTC day, by status (operation_daily). */
typedef struct {
	long long day; /* days since 1970-01-01 */
	srv_id signer_id;
	long long success, denied, failed;
} srv_op_day;

#define SRV_IDEM_KEY_MAX 64   /* characters of an Idempotency-Key */
#define SRV_SIGNATURE_MAX 512 /* bytes: an RSA-4096 signature */

typedef struct {
	srv_id id;
	srv_id signer_id;
	char status[8];	    /* "success" | "denied" | "failed" */
	char algorithm[32]; /* as requested; "" when unparseable */
	char data_hash[65]; /* SHA-256 hex of the decoded data; "" when none */
	int is_digest;
	char actor_type[12];
	srv_id actor_id;
	char *actor_name;
	srv_id grant_id;       /* "" when none */
	char *client_metadata; /* JSON object text; "{}" when none */
	char source_ip[48];
	char error_code[32]; /* "" on success, else the API error word */
	char approval[8];    /* "none" (no policy), "grant" or "bypass"; "" = "none" */
	char *oidc;	     /* the actor's OIDC login (SRV_OIDC_LOGIN_MAX); NULL = none */
	time_t created_at;
	/* A success made under an Idempotency-Key keeps the key, a hash of
	 * what was asked and the signature answered, so that a retry of the
	 * key gets the same answer (operation_find_key); other records keep
	 * none. Not read by operation_list. */
	char idem_key[SRV_IDEM_KEY_MAX + 1]; /* "" = none */
	char request_hash[65];		     /* SHA-256 hex, set with idem_key */
	unsigned char signature[SRV_SIGNATURE_MAX];
	size_t signature_len;
} srv_operation;

/* A time-stamp authority (RFC 3161): a name, the certificate (and so the
 * key in the token) it stamps with, and what its tokens say. require_auth
 * decides who may use it, so its row carries a MAC (store_mac.c). */
typedef struct {
	srv_id id;
	char *name;
	srv_id certificate_id;
	char policy_oid[128]; /* dotted decimal */
	long long accuracy_seconds;
	int require_auth;
	time_t created_at;
	char mac[65]; /* store-internal: the row's MAC as read */
} srv_tsa;

/* One timestamp issued: serial is unique over every TSA and for ever (the
 * store refuses a second with CONFLICT). */
typedef struct {
	long long seq;
	srv_id tsa_id;
	char serial[41];      /* upper-case hex, 128 bits */
	char imprint_alg[8];  /* "SHA256" | "SHA384" | "SHA512" */
	char imprint[129];    /* hex of the message imprint */
	char protocol[16];    /* "rfc3161" | "authenticode" */
	char actor_name[129]; /* "" when anonymous */
	char source_ip[48];
	time_t created_at;
} srv_timestamp;

/* A bearer token's metadata (never its secret or hash). id is public and
 * stable; kind "api" (a user's API token) or "access" (a login's). */
typedef struct {
	srv_id id;
	srv_id principal_id;
	char kind[8];
	char name[65];	     /* "" when none */
	time_t created_at;   /* 0 when unknown (tokens made before schema 6) */
	time_t expires_at;   /* 0 = never */
	time_t last_used_at; /* 0 = never; updated at most once a minute */
} srv_token;

/* A machine identity's client secret's metadata. While rotations overlap an
 * identity has more than one; each works until its expires_at (0 = never). */
typedef struct {
	srv_id id;
	srv_id principal_id;
	char client_id[RS_UUID_LEN];
	time_t created_at;
	time_t expires_at;
} srv_secret;

/* How often a token's last_used_at is written, at most (seconds). */
#define SRV_TOKEN_TOUCH_SECS 60

/* A console sign-in (migration 13): stored by the SHA-256 hex of its
 * random id only. expires_at is the absolute cap; last_seen_at moves with
 * use and ends the session once it is older than the idle limit. */
typedef struct {
	char hash[65];
	srv_id principal_id;
	time_t created_at, expires_at, last_seen_at;
} srv_session;

typedef enum { SRV_ROLE_NONE = 0, SRV_ROLE_OPERATOR, SRV_ROLE_AUDITOR } srv_role;

/* Signing policies, approval requests, grants and the audit log. */
typedef struct {
	srv_id id;
	char *name;
	srv_id *approvers; /* principal ids, malloc'd array */
	size_t n_approvers;
	int required_approvals;
	long long max_signings; /* 0 = no limit on the count */
	long long max_window;	/* seconds; 0 = no limit on the duration */
	long long request_ttl;	/* seconds a request stays pending */
	int bypass_identities;
	char *bypass_claims; /* migration 14: canonical JSON {claim: pattern} the
			      * actor's OIDC login must match for the bypass
			      * (server/api/api_policies.c); NULL = none */
	time_t created_at, updated_at;
	/* store-internal: the MACs read with the row and with each approver
	 * (approver_macs parallel to approvers, freed by srv_policy_clear) */
	char mac[65];
	char (*approver_macs)[65];
} srv_policy;

typedef struct {
	srv_id id;
	srv_id signer_id;
	srv_id policy_id;
	srv_id requester_id;
	char *requester_name;
	char *justification;
	long long signings; /* what the grant will allow; 0 = no count limit */
	long long window;   /* seconds; 0 = no time limit */
	char status[12];    /* pending approved rejected cancelled expired */
	int approvals;	    /* approve decisions so far (read-only) */
	time_t created_at, expires_at, closed_at; /* closed_at 0 while pending */
	srv_id grant_id;			  /* "" until approved */
} srv_request;

typedef struct {
	srv_id request_id;
	srv_id approver_id;
	char *approver_name;
	int approve; /* 1 approve, 0 reject */
	char *comment;
	time_t created_at;
} srv_decision;

typedef struct {
	srv_id id;
	srv_id signer_id;
	srv_id grantee_id;
	srv_id request_id;
	char status[10];	/* active expired revoked (expired derived on read) */
	long long max_signings; /* 0 = no count limit */
	long long used_signings;
	time_t window_start;
	time_t expires_at; /* 0 = no time limit */
	time_t created_at, revoked_at;
} srv_grant;

/* What a list of the history or the audit log shows: every field set must
 * match. NULL or "" strings match anything; the range is created_at >= from
 * (when has_from) and < to (when has_to). actor is an actor id or the actor
 * name recorded with the row. */
typedef struct {
	const char *status;    /* history: "success", "denied", "failed" */
	const char *actor;     /* both */
	const char *algorithm; /* history: the canonical signingAlgorithm (a record
				* written in the alias spelling, "_SHA_256", matches
				* too) */
	const char *action;    /* audit log: "policy.create", ... */
	int has_from, has_to;
	time_t from, to;
} srv_list_filter;

/* One entry of the audit log. Every op that changes who may sign what
 * takes one and writes it in the transaction of the change: both are
 * committed or neither is. Its created_at is also the op's "now" for what
 * the change brings about (requests it cancels, grants it ends), which the
 * op records as entries of their own with the same actor and time. */
typedef struct {
	long long seq;
	srv_id actor_id;
	char *actor_name;     /* NULL or "" on insert: the actor's current name */
	char action[40];      /* "policy.create", "request.approve", "grant.revoke", ... */
	char object_type[16]; /* "principal" "key" "certificate" "signer" "policy" ... */
	srv_id object_id;
	char *detail; /* JSON object text, "{}" when none */
	time_t created_at;
} srv_audit;

/* Why request_decide refused with CONFLICT. */
typedef enum {
	SRV_DECIDE_OK = 0,
	SRV_DECIDE_CLOSED,	   /* the request is no longer pending */
	SRV_DECIDE_TWICE,	   /* this approver decided it before */
	SRV_DECIDE_NOT_APPROVER,   /* not a usable approver of the current policy */
	SRV_DECIDE_OWN,		   /* the approver is the requester */
	SRV_DECIDE_POLICY_CHANGED, /* the signer is retired or under another policy */
} srv_decide_why;

typedef struct srv_store srv_store;
/* the hash chains (store_chain.h) */
struct srv_chain_row;
struct srv_checkpoint;

/* Row MACs (store_mac.c): what computes them. msg is the canonical encoding
 * of a row (store_mac.c); out receives HMAC-SHA-256 under a key the caller
 * holds (rsignd: CKM_SHA256_HMAC in the PKCS#11 token). 0, or -1 when the
 * key cannot be used now (the token is down). */
#define SRV_MAC_LEN 32
typedef int (*srv_row_mac_fn)(void *arg, const unsigned char *msg, size_t len,
			      unsigned char out[SRV_MAC_LEN]);

typedef struct srv_store_ops {
	void (*close)(srv_store *st);
	srv_st_rc (*ping)(srv_store *st);

	/* small key/value settings: "ca_key_id", "ca_cert_id", ... */
	srv_st_rc (*meta_get)(srv_store *st, const char *key, char **value);
	srv_st_rc (*meta_set)(srv_store *st, const char *key, const char *value);
	/* sets key only when it has no value yet: CONFLICT when it has one
	 * (replicas racing to create the same thing: the first one wins) */
	srv_st_rc (*meta_add)(srv_store *st, const char *key, const char *value);

	/* principals; name unique among all principals -> CONFLICT. cred_hash
	 * (NULL = none) is the first credential, stored in the same
	 * transaction: a user's API token, an identity's client secret (for
	 * p->client_id). */
	srv_st_rc (*principal_insert)(srv_store *st, const srv_principal *p, const char *cred_hash,
				      const srv_audit *a);
	srv_st_rc (*principal_get)(srv_store *st, const char *id_or_name, srv_principal *out);
	srv_st_rc (*principal_list)(srv_store *st, size_t offset, size_t limit, srv_principal **out,
				    size_t *n, size_t *total);
	/* NOT_FOUND when no such principal. Disabling and deleting refuse
	 * with CONFLICT (nothing written) while the principal is a usable
	 * approver (an enabled user) of a policy that would be left with
	 * fewer usable approvers than it requires. */
	srv_st_rc (*principal_set_disabled)(srv_store *st, const char *id, int disabled,
					    const srv_audit *a);
	/* An identity's OIDC config (oidc NULL or "" = none), its MAC with it.
	 * NOT_FOUND when id is no identity. */
	srv_st_rc (*principal_set_oidc)(srv_store *st, const char *id, const char *oidc,
					const srv_audit *a);
	/* deletes the principal, its tokens, secrets, memberships and places
	 * among policies' approvers */
	srv_st_rc (*principal_delete)(srv_store *st, const char *id, const srv_audit *a);

	/* bearer tokens, stored by SHA-256 hex only. kind: "api" | "access".
	 * expires_at 0 = never. lookup ignores expired tokens (NOT_FOUND); it
	 * returns a disabled principal's tokens (out->disabled set) so the
	 * caller can say why they are refused; tok (NULL = not wanted) gets
	 * the token's metadata. a: the audit entry, NULL for the access tokens
	 * of logins (sessions, not credentials). token_insert gives the token
	 * a new random id and no name; token_create takes them from t. */
	srv_st_rc (*token_insert)(srv_store *st, const char *hash_hex, const char *principal_id,
				  const char *kind, time_t expires_at, const char *oidc,
				  const srv_audit *a);
	srv_st_rc (*token_lookup)(srv_store *st, const char *hash_hex, time_t now,
				  srv_principal *out, srv_token *tok);
	/* A new token t (id, principal_id, kind, name, created_at, expires_at
	 * set by the caller) stored with hash_hex, in one transaction with *a.
	 * cap > 0: CONFLICT (nothing written) when the principal holds cap
	 * unexpired "api" tokens at t->created_at already; access tokens of
	 * logins are not counted (they expire). NOT_FOUND: no such principal. */
	srv_st_rc (*token_create)(srv_store *st, const srv_token *t, const char *hash_hex,
				  size_t cap, const srv_audit *a);
	/* A principal's unexpired tokens at now, oldest first (both kinds). */
	srv_st_rc (*token_list)(srv_store *st, const char *principal_id, time_t now, size_t offset,
				size_t limit, srv_token **out, size_t *n, size_t *total);
	/* Deletes token id of principal_id (NOT_FOUND when it has none such). */
	srv_st_rc (*token_revoke)(srv_store *st, const char *principal_id, const char *id,
				  const srv_audit *a);
	/* Sets last_used_at = now unless it was set less than
	 * SRV_TOKEN_TOUCH_SECS ago (then nothing is written). */
	srv_st_rc (*token_touch)(srv_store *st, const char *id, time_t now);
	/* deletes every token whose expires_at (non-zero) is <= now; *n = count */
	srv_st_rc (*token_purge)(srv_store *st, time_t now, size_t *n);
	/* machine identity secrets, by SHA-256 hex only. secret_set replaces
	 * every secret of the identity by one (and sets its client_id). */
	srv_st_rc (*secret_set)(srv_store *st, const char *principal_id, const char *client_id,
				const char *secret_hash_hex, const srv_audit *a);
	/* OK when one of client_id's secrets unexpired at now has that hash. */
	srv_st_rc (*secret_lookup)(srv_store *st, const char *client_id,
				   const char *secret_hash_hex, time_t now, srv_principal *out);
	/* Rotation: adds secret s (id, principal_id, created_at set; client_id
	 * is the identity's) with hash_hex, and makes every other secret of
	 * the identity expire at old_until (<= s->created_at: deleted at once;
	 * one that expires sooner already keeps its expiry). One transaction
	 * with *a. NOT_FOUND when principal_id is no identity. */
	srv_st_rc (*secret_rotate)(srv_store *st, const srv_secret *s, const char *hash_hex,
				   time_t old_until, const srv_audit *a);
	/* An identity's unexpired secrets at now, oldest first. */
	srv_st_rc (*secret_list)(srv_store *st, const char *principal_id, time_t now,
				 srv_secret **out, size_t *n);

	/* console sessions (server/http/auth.c), by SHA-256 hex only; each
	 * row carries a MAC (hash, principal_id, expires_at). lookup:
	 * NOT_FOUND when absent, expires_at <= now, last_seen_at <= now -
	 * idle, or the row or its principal fail their MACs; out gets the
	 * principal (disabled ones too: the caller says why they are
	 * refused), sess (NULL = not wanted) the row. touch sets last_seen_at
	 * = now when it is <= before (fewer writes than one per request).
	 * delete: NOT_FOUND when absent. purge deletes the sessions lookup
	 * would refuse at now; *n = count. */
	srv_st_rc (*session_insert)(srv_store *st, const srv_session *s);
	srv_st_rc (*session_lookup)(srv_store *st, const char *hash_hex, time_t now, long long idle,
				    srv_principal *out, srv_session *sess);
	srv_st_rc (*session_touch)(srv_store *st, const char *hash_hex, time_t now, time_t before);
	srv_st_rc (*session_delete)(srv_store *st, const char *hash_hex);
	srv_st_rc (*session_purge)(srv_store *st, time_t now, long long idle, size_t *n);

	/* keys; name unique */
	srv_st_rc (*key_insert)(srv_store *st, const srv_key *k, const srv_audit *a);
	srv_st_rc (*key_get)(srv_store *st, const char *id_or_name, srv_key *out);
	srv_st_rc (*key_list)(srv_store *st, size_t offset, size_t limit, srv_key **out, size_t *n,
			      size_t *total);
	/* the key whose SPKI equals spki exactly */
	srv_st_rc (*key_find_spki)(srv_store *st, const unsigned char *spki, size_t len,
				   srv_key *out);

	srv_st_rc (*cert_insert)(srv_store *st, const srv_cert *c, const srv_audit *a);
	srv_st_rc (*cert_get)(srv_store *st, const char *id, srv_cert *out);
	srv_st_rc (*cert_list)(srv_store *st, size_t offset, size_t limit, srv_cert **out,
			       size_t *n, size_t *total);

	/* signers; a name is unique among live signers: retiring one frees its
	 * name (a retired signer is found by its id only, and keeps its name
	 * for reading). list: visible_to = principal id whose memberships
	 * filter the list, NULL = all (admins); with operators_only only
	 * signers where visible_to is an operator (ignored when visible_to is
	 * NULL). search matches a substring of the name, NULL/"" = any. status:
	 * NULL = live ones (enabled and disabled), "enabled", "disabled",
	 * "retired" or "any". Sorted by name; total counts every match before
	 * offset/limit. */
	srv_st_rc (*signer_insert)(srv_store *st, const srv_signer *s, const srv_audit *a);
	srv_st_rc (*signer_get)(srv_store *st, const char *id_or_name, srv_signer *out);
	srv_st_rc (*signer_list)(srv_store *st, const char *visible_to, int operators_only,
				 const char *search, const char *status, size_t offset,
				 size_t limit, srv_signer **out, size_t *n, size_t *total);
	/* updates name, description, enabled, certificate_id, policy_id of a
	 * live signer (NOT_FOUND when absent or retired). A change of policy
	 * (attached, detached, swapped) cancels the signer's pending requests
	 * and revokes its active grants in the same transaction, each audited
	 * (detail "why": "policyChanged"). */
	srv_st_rc (*signer_update)(srv_store *st, const srv_signer *s, const srv_audit *a);
	/* Retires a live signer at a->created_at: it signs no more, its name
	 * is free, its history, members and certificate stay; its pending
	 * requests are cancelled and its active grants revoked (audited,
	 * "why": "signerRetired"). NOT_FOUND when absent, CONFLICT when
	 * retired already. */
	srv_st_rc (*signer_retire)(srv_store *st, const char *id, const srv_audit *a);

	srv_st_rc (*member_set)(srv_store *st, const char *signer_id, const char *principal_id,
				srv_role role, const srv_audit *a);
	srv_st_rc (*member_delete)(srv_store *st, const char *signer_id, const char *principal_id,
				   const srv_audit *a);
	/* SRV_ROLE_NONE with OK when not a member */
	srv_st_rc (*member_role)(srv_store *st, const char *signer_id, const char *principal_id,
				 srv_role *out);
	/* memberships of a signer: parallel arrays, names joined from principals */
	srv_st_rc (*member_list)(srv_store *st, const char *signer_id, srv_principal **principals,
				 srv_role **roles, size_t *n);

	/* Records one sign attempt durably (committed when this returns OK);
	 * on "success" also sets the signer's last_signed_at. With a denied
	 * retention set, each commit also deletes (a bounded batch of) the
	 * "denied" records older than it; never a success or failure.
	 * A success with op->idem_key set: CONFLICT, nothing written, when
	 * op->actor_id already has a record under that key (the check and the
	 * insert are one transaction; read the first with operation_find_key). */
	srv_st_rc (*operation_insert)(srv_store *st, const srv_operation *op);
	/* The record actor_id made under Idempotency-Key key (whatever the
	 * signer), with its request_hash and signature; NOT_FOUND when none.
	 * Keys are kept as long as their record (successes: for ever). */
	srv_st_rc (*operation_find_key)(srv_store *st, const char *actor_id, const char *key,
					srv_operation *out);
	/* Seconds a "denied" record is kept; 0 = for ever (the default). */
	void (*history_set_retention)(srv_store *st, long long denied_seconds);
	/* Sign attempts per UTC day (created_at / 86400), signer and status
	 * from since on, of the signers visible_to is a member of (NULL = all;
	 * retired ones included), sorted by day then signer id (the console's
	 * overview chart). */
	srv_st_rc (*operation_daily)(srv_store *st, const char *visible_to, time_t since,
				     srv_op_day **out, size_t *n);
	/* newest first; f NULL = all (status, actor, algorithm and the time
	 * range; action is ignored) */
	srv_st_rc (*operation_list)(srv_store *st, const char *signer_id, const srv_list_filter *f,
				    size_t offset, size_t limit, srv_operation **out, size_t *n,
				    size_t *total);

	/* ---- policies (name unique). delete: CONFLICT while a signer uses it.
	 * list: visible_to NULL = all; else only the policies that principal
	 * approves or that govern a signer it is a member of (the rule of
	 * srv_may_see_policy in server/api/access.c: the two must agree).
	 * Only live signers keep a policy in use. */
	srv_st_rc (*policy_insert)(srv_store *st, const srv_policy *p, const srv_audit *a);
	srv_st_rc (*policy_get)(srv_store *st, const char *id_or_name, srv_policy *out);
	srv_st_rc (*policy_list)(srv_store *st, const char *visible_to, size_t offset, size_t limit,
				 srv_policy **out, size_t *n, size_t *total);
	/* An update that changes the approvers, requiredApprovals, maxSignings
	 * or maxWindowDuration also, in the same transaction, cancels the
	 * pending requests made under the policy and clamps the active grants
	 * of the live signers it governs to its new limits (each audited,
	 * "why": "policyChanged"; see request_decide for what "clamp" means). */
	srv_st_rc (*policy_update)(srv_store *st, const srv_policy *p, const srv_audit *a);
	srv_st_rc (*policy_delete)(srv_store *st, const char *id, const srv_audit *a);

	/* ---- requests. Every read first marks pending requests whose
	 * expires_at <= now as expired (closed_at = expires_at). */
	srv_st_rc (*request_insert)(srv_store *st, const srv_request *q, const srv_audit *a);
	srv_st_rc (*request_get)(srv_store *st, const char *id, time_t now, srv_request *out);
	/* newest first; signer_id / status NULL = any. visible_to NULL = all;
	 * else only what that principal may see: its own requests, those of a
	 * signer it is a member of, and those it approves (listed in the
	 * request's policy or the signer's current one) -- the rule of
	 * srv_may_see_request in server/api/access.c: the two must agree. */
	srv_st_rc (*request_list)(srv_store *st, const char *signer_id, const char *status,
				  const char *visible_to, time_t now, size_t offset, size_t limit,
				  srv_request **out, size_t *n, size_t *total);
	/* One transaction, against the policy in force: the signer's current
	 * policy must be the request's (else CONFLICT, POLICY_CHANGED); the
	 * request must be pending and unexpired at now (CLOSED); the approver
	 * an enabled user listed in that policy (NOT_APPROVER), not the
	 * requester (OWN), deciding for the first time (TWICE). Records the
	 * decision and *a. A rejection closes the request as rejected. An
	 * approval counts the approve decisions of the policy's current,
	 * enabled approvers; once they reach its requiredApprovals it inserts
	 * the grant grant_id for the requester (active, from now, what was
	 * requested clamped to the policy's current maxSignings and
	 * maxWindowDuration), audits it ("grant.create") and closes the
	 * request as approved. *why says why a CONFLICT; *after receives the
	 * request as it stands after the decision. */
	srv_st_rc (*request_decide)(srv_store *st, const srv_decision *d, const char *grant_id,
				    time_t now, srv_request *after, srv_decide_why *why,
				    const srv_audit *a);
	/* decisions on a request, oldest first */
	srv_st_rc (*decision_list)(srv_store *st, const char *request_id, srv_decision **out,
				   size_t *n);
	/* pending -> to ("cancelled"), closed_at = now; CONFLICT when not pending */
	srv_st_rc (*request_close)(srv_store *st, const char *id, const char *to, time_t now,
				   const srv_audit *a);

	/* ---- grants. status "active" is reported as "expired" once now >=
	 * expires_at (when set) or used >= max (when set). */
	srv_st_rc (*grant_get)(srv_store *st, const char *id, time_t now, srv_grant *out);
	/* newest first; signer_id / status / grantee_id NULL = any. visible_to
	 * NULL = all; else only its own grants, those of a signer it is a
	 * member of, and those of a signer whose current policy it approves --
	 * the rule of srv_may_see_grant in server/api/access.c: they must agree. */
	srv_st_rc (*grant_list)(srv_store *st, const char *signer_id, const char *status,
				const char *grantee_id, const char *visible_to, time_t now,
				size_t offset, size_t limit, srv_grant **out, size_t *n,
				size_t *total);
	/* active -> revoked at now; CONFLICT when not active */
	srv_st_rc (*grant_revoke)(srv_store *st, const char *id, time_t now, const srv_audit *a);
	/* OK with *out when (signer, grantee) has a usable grant at now;
	 * NOT_FOUND otherwise. Consumes nothing. */
	srv_st_rc (*grant_find_active)(srv_store *st, const char *signer_id, const char *grantee_id,
				       time_t now, srv_grant *out);
	/* Records a successful signing that needs a grant, atomically: in one
	 * transaction picks the usable grant of (op->signer_id, op->actor_id) at
	 * op->created_at that expires first, increments its used_signings, sets
	 * op's grant_id to it, inserts the operation and sets last_signed_at;
	 * grant_id_out receives the grant used. NOT_FOUND (nothing written)
	 * when no usable grant is left. With maxSignings N and any number of
	 * concurrent callers exactly N succeed. With op->idem_key set and the
	 * key already used by op->actor_id: CONFLICT, no grant used, nothing
	 * written (as operation_insert). */
	srv_st_rc (*operation_insert_consume)(srv_store *st, const srv_operation *op,
					      char grant_id_out[RS_UUID_LEN]);

	/* ---- online backup (GET /backup). Writes *a, then a checked,
	 * consistent copy of the whole database (srv_store_sqlite_backup)
	 * into a new file beside it, opens it and unlinks it: *fd (O_RDONLY)
	 * reads the copy, which holds the audit entry. NULL for a store that
	 * cannot (PostgreSQL: pg_dump). FAILED + err when the copy fails. */
	srv_st_rc (*backup)(srv_store *st, const srv_audit *a, int *fd, char *err, size_t errlen);

	/* ---- the audit log, written only by the ops above; newest first */
	/* f NULL = all (actor, action and the time range; status and
	 * algorithm are ignored) */
	srv_st_rc (*audit_list)(srv_store *st, const srv_list_filter *f, size_t offset,
				size_t limit, srv_audit **out, size_t *n, size_t *total);

	/* ---- rows that grant power are authenticated (issue 10, item 9).
	 * Principals, tokens, secrets, members, policies and policy approvers
	 * carry a MAC (hex, column `mac`) over their canonical encoding
	 * (store_mac.c), computed by every write. set_row_mac installs the
	 * function before any other op runs. With one installed, a row whose
	 * MAC is missing or wrong is treated as absent -- a lookup or get is
	 * NOT_FOUND, a membership gives no role, a list leaves the row out, a
	 * policy loses that approver -- and one ERROR log line names the table
	 * and the row; when the function fails (token down) the op is
	 * UNAVAILABLE, unless the same row was verified before (verified rows
	 * are remembered, in memory, by a hash of their encoding and MAC).
	 * Without one (fn NULL: unit tests, never rsignd) rows are written
	 * with no MAC and read unchecked (time-stamp authorities, added later,
	 * follow the same rule in their own ops). Tables other than these (signers,
	 * grants, ...) are not authenticated. */
	void (*set_row_mac)(srv_store *st, srv_row_mac_fn fn, void *arg);
	/* Computes the MAC of every row of those tables that has none; *n =
	 * rows sealed. Only for the start that creates the MAC key: it is how
	 * a database from before schema 7 gets its MACs (the migration adds
	 * the columns, the token is needed to fill them). */
	srv_st_rc (*seal_rows)(srv_store *st, size_t *n);

	/* ---- the hash chains of the history and the audit log (issue 15,
	 * item 7; store_chain.h). chain: srv_chain. Every history and audit
	 * insert links its record in its own transaction. chain_rows: up to
	 * limit records whose table seq is > after, in table order, each with
	 * the hash of its body as read. chain_count_seq: how many records
	 * carry chain_seq seq. chain_head: the head row (seq 0 and the genesis
	 * hash while the chain is empty). */
	srv_st_rc (*chain_rows)(srv_store *st, int chain, long long after, size_t limit,
				struct srv_chain_row *out, size_t *n);
	srv_st_rc (*chain_count_seq)(srv_store *st, int chain, long long seq, size_t *n);
	srv_st_rc (*chain_head)(srv_store *st, int chain, long long *seq, char hash[65]);
	/* Signed checkpoints: insert keeps the first one of a (chain, seq)
	 * (another replica's checkpoint of the same head: OK, nothing
	 * written); list: up to limit with seq > after, ascending; last: the
	 * newest of the chain, NOT_FOUND when none. */
	srv_st_rc (*checkpoint_insert)(srv_store *st, const struct srv_checkpoint *c);
	srv_st_rc (*checkpoint_list)(srv_store *st, int chain, long long after, size_t limit,
				     struct srv_checkpoint *out, size_t *n);
	srv_st_rc (*checkpoint_last)(srv_store *st, int chain, struct srv_checkpoint *out);
	/* ---- time-stamp authorities (name unique -> CONFLICT; certificate_id
	 * must name a certificate -> NOT_FOUND). Rows carry a MAC (above). */
	srv_st_rc (*tsa_insert)(srv_store *st, const srv_tsa *t, const srv_audit *a);
	srv_st_rc (*tsa_get)(srv_store *st, const char *id_or_name, srv_tsa *out);
	srv_st_rc (*tsa_list)(srv_store *st, size_t offset, size_t limit, srv_tsa **out, size_t *n,
			      size_t *total);
	/* updates name, certificate_id, policy_oid, accuracy_seconds, require_auth */
	srv_st_rc (*tsa_update)(srv_store *st, const srv_tsa *t, const srv_audit *a);
	/* its timestamps stay (history) */
	srv_st_rc (*tsa_delete)(srv_store *st, const char *id, const srv_audit *a);
	/* Records one timestamp durably; CONFLICT (nothing written) when its
	 * serial was ever issued before. */
	srv_st_rc (*timestamp_insert)(srv_store *st, const srv_timestamp *t);
	/* newest first */
	srv_st_rc (*timestamp_list)(srv_store *st, const char *tsa_id, size_t offset, size_t limit,
				    srv_timestamp **out, size_t *n, size_t *total);
} srv_store_ops;

struct srv_store {
	const srv_store_ops *ops;
};

/* Opens (creating when absent) the SQLite database at path, WAL mode,
 * synchronous=FULL, runs the numbered migrations. NULL + err on failure. */
srv_store *srv_store_sqlite_open(const char *path, char *err, size_t errlen);

/* `rsignd backup`: copies one consistent snapshot of the SQLite database at
 * path into the new file out (mode 0600, never overwritten) while other
 * processes go on writing, checks the copy (integrity, foreign keys, the
 * source's schema version; report, NULL = none, gets each table's rows)
 * and only then gives it its name. 0, or -1 + err with no out written. */
int srv_store_sqlite_backup(const char *path, const char *out, FILE *report, char *err,
			    size_t errlen);

/* Opens the PostgreSQL database at uri (a libpq URI, postgresql:// or
 * postgres://) with a pool of `connections` connections, runs the numbered
 * migrations. NULL + err on failure. */
srv_store *srv_store_pg_open(const char *uri, int connections, char *err, size_t errlen);
/* Copies the SQLite database at path into the empty PostgreSQL database at
 * uri (both brought to the latest migration first): every row of every
 * table, in one transaction committed only when each table's row count
 * matches. Refuses a target that holds any row. report (NULL = none) gets a
 * line per table. 0, or -1 + err (nothing written to the target). */
int srv_store_pg_import_sqlite(const char *path, const char *uri, FILE *report, char *err,
			       size_t errlen);
/* The schema version (schema_version) the PostgreSQL store writes: the
 * SQLite store's, migration for migration. */
int srv_pg_schema_version(void);
/* 1 when database names a PostgreSQL database (a URI), 0 for a path. */
int srv_store_is_pg_uri(const char *database);

/* store.c: record helpers shared by every implementation */
void srv_principal_clear(srv_principal *p);
void srv_key_clear(srv_key *k);
void srv_cert_clear(srv_cert *c);
void srv_signer_clear(srv_signer *s);
void srv_operation_clear(srv_operation *o);
void srv_principal_list_free(srv_principal *v, size_t n);
void srv_key_list_free(srv_key *v, size_t n);
void srv_cert_list_free(srv_cert *v, size_t n);
void srv_signer_list_free(srv_signer *v, size_t n);
void srv_operation_list_free(srv_operation *v, size_t n);
void srv_policy_clear(srv_policy *p);
void srv_tsa_clear(srv_tsa *t);
void srv_tsa_list_free(srv_tsa *v, size_t n);
void srv_request_clear(srv_request *q);
void srv_decision_clear(srv_decision *d);
void srv_audit_clear(srv_audit *a);
void srv_policy_list_free(srv_policy *v, size_t n);
void srv_request_list_free(srv_request *v, size_t n);
void srv_decision_list_free(srv_decision *v, size_t n);
void srv_grant_list_free(srv_grant *v, size_t n); /* grants own no heap memory */
void srv_audit_list_free(srv_audit *v, size_t n);
void srv_token_list_free(srv_token *v, size_t n);   /* flat: free(v) */
void srv_secret_list_free(srv_secret *v, size_t n); /* flat: free(v) */
const char *srv_role_name(srv_role r);		    /* "operator" | "auditor" | "" */
int srv_role_parse(const char *s, srv_role *out);   /* 0 or -1 */

/* ---- store_mac.c: row MACs, shared by every implementation.
 *
 * The canonical encoding of a row (the MAC input): the table name, then
 * each column that grants power, in the order below; every item is a 4-byte
 * big-endian length followed by its bytes. A text is its bytes (NULL and ""
 * alike: length 0); an integer is its decimal text. Field boundaries are
 * thus unambiguous (moving a byte from one field to the next changes the
 * encoding) and a row cannot pass for a row of another table.
 *   principals:       id, type, name, admin, disabled, client_id, and
 *                     then 1 only when metrics is set (so the rows sealed
 *                     before the metrics role existed stay valid), then,
 *                     only when it is set, the SHA-256 hex of oidc
 *   tokens:           id, hash, principal_id, kind, expires_at, then, only
 *                     when set, the SHA-256 hex of oidc (an OIDC login)
 *   secrets:          id, client_id, principal_id, secret_hash, expires_at
 *   members:          signer_id, principal_id, role
 *   policies:         id, name, required_approvals, max_signings,
 *                     max_window, request_ttl, bypass_identities, then,
 *                     only when set, the SHA-256 hex of bypass_claims
 *   policy_approvers: policy_id, principal_id
 *   timestamp_authorities: id, name, certificate_id, require_auth
 *   console_sessions: hash, principal_id, expires_at
 * Columns left out change nothing anyone may do (names of tokens,
 * created_at, last_used_at, updated_at, an approver's pos). */
#define SRV_MAC_MSG_MAX 1024 /* an encoding longer than this is refused */
#define SRV_MAC_HEX 65	     /* hex MAC + NUL */
typedef struct srv_rowmac srv_rowmac;
srv_rowmac *srv_rowmac_new(void);
void srv_rowmac_free(srv_rowmac *m); /* NULL-safe */
void srv_rowmac_set(srv_rowmac *m, srv_row_mac_fn fn, void *arg);
int srv_rowmac_on(const srv_rowmac *m); /* a function is installed */
/* One encoder per table: the length written to out (SRV_MAC_MSG_MAX
 * bytes), 0 when it does not fit. */
size_t srv_mac_msg_principal(const srv_principal *p, unsigned char *out);
size_t srv_mac_msg_token(const char *id, const char *hash, const char *principal_id,
			 const char *kind, long long expires_at, const char *oidc,
			 unsigned char *out);
size_t srv_mac_msg_secret(const char *id, const char *client_id, const char *principal_id,
			  const char *hash, long long expires_at, unsigned char *out);
size_t srv_mac_msg_member(const char *signer_id, const char *principal_id, const char *role,
			  unsigned char *out);
size_t srv_mac_msg_policy(const srv_policy *p, unsigned char *out);
size_t srv_mac_msg_approver(const char *policy_id, const char *principal_id, unsigned char *out);
size_t srv_mac_msg_tsa(const srv_tsa *t, unsigned char *out);
size_t srv_mac_msg_session(const srv_session *s, unsigned char *out);
/* The MAC of msg as hex (hex "" when no function is installed): OK, FAILED
 * (len 0: the row does not fit) or UNAVAILABLE (the function failed). */
srv_st_rc srv_rowmac_seal(srv_rowmac *m, const unsigned char *msg, size_t len,
			  char hex[SRV_MAC_HEX]);
/* OK when no function is installed or hex is msg's MAC; NOT_FOUND (and
 * one ERROR line naming table and row) when it is not; UNAVAILABLE when
 * it cannot be computed now. */
srv_st_rc srv_rowmac_check(srv_rowmac *m, const char *table, const char *row,
			   const unsigned char *msg, size_t len, const char *hex);
/* A policy as read: its approvers' MACs from "m1,m2,..." (the order of
 * p->approvers; an empty item for a row without one) into approver_macs
 * (0, or -1 out of memory); and the policy against its MACs: NOT_FOUND when
 * its row fails, an approver whose row fails dropped from it (logged). */
int srv_policy_split_macs(const char *csv, srv_policy *p);
srv_st_rc srv_policy_check_macs(srv_rowmac *m, srv_policy *p);

#endif
