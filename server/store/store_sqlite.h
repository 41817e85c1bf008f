/* Internal to the SQLite storage, shared by its seven files:
 * store_sqlite.c (connection, helpers, principals and credentials),
 * store_sqlite_pki.c (keys, certificates, signers, members, history reads),
 * store_sqlite_history.c (history inserts, with group commit),
 * store_sqlite_policy.c (policies, approval requests, decisions),
 * store_sqlite_grant.c (grants, grant-consuming history, audit log),
 * store_sqlite_tsa.c (time-stamp authorities and their timestamps) and
 * store_sqlite_session.c (console sessions, the overview's daily counts) and
 * store_sqlite_migrate.c (opening, pragmas, schema migrations).
 * Nothing outside those files and their unit test includes this. */
#ifndef SRV_STORE_SQLITE_H
#define SRV_STORE_SQLITE_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "rsign/util.h"
#include "server/store/store.h"
#include "server/store/store_batch.h"
#include "server/store/store_chain.h"

/* Opens path (creating it mode 0600 when absent), applies the connection
 * pragmas and every pending migration. NULL + err on failure. */
sqlite3 *srv_sqlite_db_open(const char *path, char *err, size_t errlen);

/* The schema version (PRAGMA user_version) this code writes and expects. */
int srv_sqlite_schema_version(void);

/* Statements of store_sqlite.c */
enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_PING,
	Q_META_GET,
	Q_META_SET,
	Q_META_ADD,
	Q_PRINCIPAL_INSERT,
	Q_PRINCIPAL_GET,
	Q_PRINCIPAL_LIST,
	Q_PRINCIPAL_COUNT,
	Q_PRINCIPAL_DISABLE,
	Q_PRINCIPAL_DELETE,
	Q_APPROVER_NEEDED,
	Q_TOKEN_INSERT,
	Q_TOKEN_LOOKUP,
	Q_TOKEN_PURGE,
	Q_SECRET_CLIENT,
	Q_SECRET_DROP,
	Q_SECRET_INSERT,
	Q_SECRET_LOOKUP,
	Q_PRINCIPAL_UPDATE,
	Q_TOKEN_COUNT_API,
	Q_TOKEN_LIST,
	Q_TOKEN_LIST_COUNT,
	Q_TOKEN_REVOKE,
	Q_TOKEN_TOUCH,
	Q_SECRET_ROWS,
	Q_SECRET_EXPIRE,
	Q_SECRET_DELETE,
	Q_SECRET_LIST,
	Q_COUNT
};

/* Statements of store_sqlite_pki.c, texts in sq_pki_sql */
enum {
	P_KEY_INSERT,
	P_KEY_GET,
	P_KEY_LIST,
	P_KEY_COUNT,
	P_KEY_SPKI,
	P_CERT_INSERT,
	P_CERT_GET,
	P_CERT_LIST,
	P_CERT_COUNT,
	P_SIGNER_INSERT,
	P_SIGNER_GET,
	P_SIGNER_LIST,
	P_SIGNER_COUNT,
	P_SIGNER_UPDATE,
	P_SIGNER_RETIRE,
	P_SIGNER_EXISTS,
	P_SIGNER_POLICY,
	P_MEMBER_SET,
	P_MEMBER_DELETE,
	P_MEMBER_ROLE,
	P_MEMBER_LIST,
	P_OP_INSERT,
	P_OP_LAST_SIGNED,
	P_OP_LIST,
	P_OP_COUNT,
	P_OP_LIST_STATUS,
	P_OP_COUNT_STATUS,
	P_OP_LIST_FILTER,
	P_OP_COUNT_FILTER,
	P_OP_PURGE_DENIED,
	P_COUNT
};
extern const char *const sq_pki_sql[P_COUNT];

/* Statements of store_sqlite_policy.c, texts in sq_policy_sql */
enum {
	PL_POL_INSERT,
	PL_POL_UPDATE,
	PL_POL_GET,
	PL_POL_LIST,
	PL_POL_COUNT,
	PL_POL_DELETE,
	PL_POL_IN_USE,
	PL_APPR_INSERT,
	PL_APPR_CLEAR,
	PL_REQ_INSERT,
	PL_REQ_EXPIRE,
	PL_REQ_GET,
	PL_REQ_LIST,
	PL_REQ_COUNT,
	PL_REQ_CLOSE,
	PL_REQ_EXISTS,
	PL_REQ_APPROVED,
	PL_REQ_PENDING_SIGNER,
	PL_REQ_PENDING_POLICY,
	PL_APPR_USABLE,
	PL_DEC_INSERT,
	PL_DEC_COUNT,
	PL_DEC_LIST,
	PL_COUNT
};
extern const char *const sq_policy_sql[PL_COUNT];

/* Statements of store_sqlite_grant.c, texts in sq_grant_sql */
enum {
	GR_GRANT_INSERT,
	GR_GRANT_GET,
	GR_GRANT_LIST,
	GR_GRANT_COUNT,
	GR_GRANT_REVOKE,
	GR_GRANT_EXISTS,
	GR_GRANT_USABLE,
	GR_GRANT_USE,
	GR_GRANT_ACTIVE_SIGNER,
	GR_GRANT_GOVERNED,
	GR_GRANT_CLAMP,
	GR_AUDIT_INSERT,
	GR_AUDIT_LIST,
	GR_AUDIT_COUNT,
	GR_AUDIT_LIST_FILTER,
	GR_AUDIT_COUNT_FILTER,
	GR_COUNT
};
extern const char *const sq_grant_sql[GR_COUNT];

/* Statements of store_sqlite_tsa.c, texts in sq_tsa_sql */
enum {
	TS_TSA_INSERT,
	TS_TSA_GET,
	TS_TSA_LIST,
	TS_TSA_COUNT,
	TS_TSA_UPDATE,
	TS_TSA_DELETE,
	TS_STAMP_INSERT,
	TS_STAMP_LIST,
	TS_STAMP_COUNT,
	TS_COUNT
};
extern const char *const sq_tsa_sql[TS_COUNT];

/* Statements of store_sqlite_history.c, texts in sq_history_sql */
enum { H_KEY_FIND, H_KEY_SET, H_COUNT };
extern const char *const sq_history_sql[H_COUNT];

/* Statements of store_sqlite_session.c, texts in sq_session_sql */
enum { SS_INSERT, SS_LOOKUP, SS_TOUCH, SS_DELETE, SS_PURGE, SS_DAILY, SS_COUNT };
extern const char *const sq_session_sql[SS_COUNT];
/* Statements of store_sqlite_chain.c, texts in sq_chain_sql */
enum {
	CH_HEAD_GET,
	CH_HEAD_SET,
	CH_NAME_OF,
	CH_OP_ROWS,
	CH_AU_ROWS,
	CH_OP_COUNT,
	CH_AU_COUNT,
	CH_CP_INSERT,
	CH_CP_LIST,
	CH_CP_LAST,
	CH_COUNT
};
extern const char *const sq_chain_sql[CH_COUNT];

/* A chain's head while a transaction links records to it. */
typedef struct {
	srv_chain c;
	long long seq, start; /* the head now; as read */
	unsigned char hash[SRV_CHAIN_LEN];
} sq_chain_cur;

/* The chain columns of one record (hex). */
typedef struct {
	long long seq;
	char prev[SRV_CHAIN_HEX], body[SRV_CHAIN_HEX], hash[SRV_CHAIN_HEX];
} sq_chain_link;

/* The principal columns sq_rd_principal reads (SQ_P_NCOLS of them), table
 * alias p. */
#define SQ_P_COLS                                                                                  \
	"p.id, p.type, p.name, p.admin, p.client_id, p.created_at, p.disabled, p.mac, p.metrics, " \
	"p.oidc"
#define SQ_P_NCOLS 10
/* The visibility rules of server/api/access.c, in SQL, for the lists that
 * filter by visible_to (policies, requests, grants): they must agree with
 * srv_may_see_policy, srv_may_see_request and srv_may_see_grant, and
 * tests/api/t_access.py checks that they do. who is the caller's id. */
#define SQ_MEMBER_OF(signer, who)                                                                  \
	"EXISTS (SELECT 1 FROM members vm WHERE vm.signer_id = " signer                            \
	" AND vm.principal_id = " who ")"
#define SQ_APPROVES_POLICY(policy, who)                                                            \
	"EXISTS (SELECT 1 FROM policy_approvers va WHERE va.policy_id = " policy                   \
	" AND va.principal_id = " who ")"
/* an approver of the signer's current policy */
#define SQ_APPROVES_SIGNER(signer, who)                                                            \
	"EXISTS (SELECT 1 FROM signers vs JOIN policy_approvers va ON va.policy_id = vs.policy_id" \
	" WHERE vs.id = " signer " AND va.principal_id = " who ")"

/* The paging clause every list statement ends with; its filter parameters
 * are numbered below ?20 (sq_page binds these two). */
#define SQ_PAGE " LIMIT ?20 OFFSET ?21"
/* An id matches before a name: ORDER BY puts the id hit first. */
#define SQ_BY_ID_OR_NAME(t)                                                                        \
	" WHERE " t ".id = ?1 OR " t ".name = ?1 ORDER BY " t ".id = ?1 DESC LIMIT 1"

typedef struct {
	srv_store base; /* first: srv_store * <-> sq_store * */
	sqlite3 *db;
	pthread_mutex_t mu;	    /* guards db and every statement */
	srv_batch hq;		    /* group commit of history records (store_sqlite_history.c) */
	long long denied_retention; /* seconds; 0 = keep; under mu */
	sqlite3_stmt *q[Q_COUNT];
	sqlite3_stmt *p[P_COUNT];
	sqlite3_stmt *pl[PL_COUNT];
	sqlite3_stmt *gr[GR_COUNT];
	sqlite3_stmt *h[H_COUNT];
	sqlite3_stmt *ts[TS_COUNT];
	sqlite3_stmt *ss[SS_COUNT];
	sqlite3_stmt *ch[CH_COUNT];
	/* the history chain's head during a group commit (under mu) */
	sq_chain_cur hchain;
	srv_rowmac *mac; /* row MACs (store_mac.c); checks nothing until set */
	char *path;	 /* the database file, for backups */
} sq_store;

#define SQ(st) ((sq_store *)(st))

void sq_lock(sq_store *s);
void sq_unlock(sq_store *s);
/* Logs "invalid argument" for op; returns SRV_ST_FAILED. */
srv_st_rc sq_bad_arg(const char *op);

/* sq_run flags */
enum { RUN_PLAIN = 0, RUN_MUST_CHANGE = 1, RUN_DELETE = 2 };

/* The one place SQLite result codes become srv_st_rc, logged once. fk is
 * what a foreign key failure means for this statement. */
srv_st_rc sq_fail(sq_store *s, const char *op, int rc, srv_st_rc fk);
/* Steps a bound write statement to completion, then resets it.
 * RUN_MUST_CHANGE: NOT_FOUND when no row changed. RUN_DELETE: a foreign key
 * failure is CONFLICT (still referenced) instead of NOT_FOUND. */
srv_st_rc sq_run(sq_store *s, const char *op, sqlite3_stmt *st, int brc, int flags);
srv_st_rc sq_begin(sq_store *s, const char *op);
/* rolls back when the commit fails */
srv_st_rc sq_commit(sq_store *s, const char *op);
void sq_rollback(sq_store *s, const char *op);

/* One change of an audited op, run by sq_audited inside its transaction
 * with the lock held; arg is the op's own. Returns what the op returns. */
typedef srv_st_rc (*sq_change)(sq_store *s, const char *op, const void *arg, const srv_audit *a);
/* The shape of every audited op: takes the lock, BEGIN IMMEDIATE, inserts
 * *a, runs change, commits; rolls everything back when either fails.
 * An audit entry without action, object type or object id is a bug
 * (FAILED, nothing written). */
srv_st_rc sq_audited(sq_store *s, const char *op, sq_change change, const void *arg,
		     const srv_audit *a);
/* store_sqlite_backup.c: the backup op */
srv_st_rc sq_backup(srv_store *st, const srv_audit *a, int *fd, char *err, size_t errlen);

/* Row readers fill *out from the columns starting at c. On failure they
 * leave nothing allocated and return FAILED (out of memory, or a value this
 * code cannot read). */
typedef srv_st_rc (*sq_reader)(sqlite3_stmt *st, int c, void *out);
srv_st_rc sq_rd_str(sqlite3_stmt *st, int c, void *out); /* char ** */
srv_st_rc sq_rd_principal(sqlite3_stmt *st, int c, void *out);

/* Defines name, the clr of sq_list and sq_pager, from a record's *_clear. */
#define SQ_CLEARER(name, clear)                                                                    \
	static void name(void *p)                                                                  \
	{                                                                                          \
		clear(p);                                                                          \
	}

/* Steps a bound query expected to return at most one row; NOT_FOUND when none. */
srv_st_rc sq_one(sq_store *s, const char *op, sqlite3_stmt *st, int brc, sq_reader rd, void *out);
/* Steps a bound query into a malloc'd array of size-byte records; *out =
 * NULL when there are none. clr undoes one record on failure. */
srv_st_rc sq_list(sq_store *s, const char *op, sqlite3_stmt *st, int brc, sq_reader rd, size_t size,
		  void (*clr)(void *), void **out, size_t *n);
/* Steps a bound "SELECT count(*)". */
srv_st_rc sq_count(sq_store *s, const char *op, sqlite3_stmt *st, int brc, size_t *total);

/* The one getter: takes the lock, binds key as ?1 of q, reads at most one
 * row with rd into out (NOT_FOUND when none), releases the lock. */
srv_st_rc sq_get(sq_store *s, const char *op, sqlite3_stmt *q, const char *key, sq_reader rd,
		 void *out);

/* Binds a list's filter parameters (?1 .. ?19) into a statement. */
typedef void (*sq_binder)(sqlite3_stmt *q, const void *filter, int *brc);

/* A paged list: count counts every match of the filter, list (ending with
 * SQ_PAGE) returns one page of records of size bytes read by rd; clr undoes
 * one record. bind may be NULL when there is no filter. */
typedef struct {
	sqlite3_stmt *count, *list;
	sq_binder bind;
	const void *filter;
	sq_reader rd;
	size_t size;
	void (*clr)(void *);
} sq_pager;

/* The one list: *total = every match, *out and *n the page at offset (limit 0
 * = no limit). _inlock: the caller holds the lock. */
srv_st_rc sq_page_inlock(sq_store *s, const char *op, const sq_pager *pg, size_t offset,
			 size_t limit, void **out, size_t *n, size_t *total);
srv_st_rc sq_page(sq_store *s, const char *op, const sq_pager *pg, size_t offset, size_t limit,
		  void **out, size_t *n, size_t *total);

/* Sticky binders: the first failure is kept in *rc, later calls do nothing.
 * Values are bound SQLITE_STATIC: they must outlive the step. */
static inline void b_text(sqlite3_stmt *st, int i, const char *v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

/* NULL or "" -> SQL NULL, for optional ids and texts */
static inline void b_opt(sqlite3_stmt *st, int i, const char *v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = v && *v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC)
			      : sqlite3_bind_null(st, i);
}

/* A list filter's time range at i and i + 1: an unset end is SQL NULL */
static inline void b_range(sqlite3_stmt *st, int i, const srv_list_filter *f, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = f->has_from ? sqlite3_bind_int64(st, i, f->from) : sqlite3_bind_null(st, i);
	if (*rc == SQLITE_OK)
		*rc = f->has_to ? sqlite3_bind_int64(st, i + 1, f->to)
				: sqlite3_bind_null(st, i + 1);
}

static inline void b_int(sqlite3_stmt *st, int i, sqlite3_int64 v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, i, v);
}

static inline void b_blob(sqlite3_stmt *st, int i, const void *p, size_t n, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = n ? sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC)
			: sqlite3_bind_zeroblob(st, i, 0);
}

/* LIMIT/OFFSET values; a limit of 0 means none (-1 to SQLite). */
static inline sqlite3_int64 sq_limit(size_t v)
{
	return v == 0 ? -1 : v > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

static inline sqlite3_int64 sq_offset(size_t v)
{
	return v > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

/* Column readers: col_dup is malloc'd (def for SQL NULL), NULL when out of memory. */
static inline char *col_dup(sqlite3_stmt *st, int i, const char *def)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return strdup(t ? (const char *)t : def);
}

static inline void col_copy(sqlite3_stmt *st, int i, char *out, size_t n)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	rs_strlcpy(out, t ? (const char *)t : "", n);
}

/* Row MACs (store.h, store_sqlite_mac.c): the MAC of a principal as it
 * will be written (hex "" when no MAC function is installed), and the check
 * of one as read (NOT_FOUND, logged, when it fails). seal_rows is the op. */
srv_st_rc sq_mac_principal(sq_store *s, const srv_principal *p, char hex[SRV_MAC_HEX]);
srv_st_rc sq_check_principal(sq_store *s, const srv_principal *p);
/* Drops from v (n records of size bytes, cleared with clr) the ones check
 * refuses; *n shrinks. FAILED/UNAVAILABLE from check stop it. */
srv_st_rc sq_filter(sq_store *s, void *v, size_t *n, size_t size,
		    srv_st_rc (*check)(sq_store *s, const void *rec), void (*clr)(void *));
srv_st_rc sq_seal_rows(srv_store *st, size_t *n);

/* store_sqlite_pki.c ops */
srv_st_rc sq_key_insert(srv_store *st, const srv_key *k, const srv_audit *a);
srv_st_rc sq_key_get(srv_store *st, const char *id_or_name, srv_key *out);
srv_st_rc sq_key_list(srv_store *st, size_t offset, size_t limit, srv_key **out, size_t *n,
		      size_t *total);
srv_st_rc sq_key_find_spki(srv_store *st, const unsigned char *spki, size_t len, srv_key *out);
srv_st_rc sq_cert_insert(srv_store *st, const srv_cert *c, const srv_audit *a);
srv_st_rc sq_cert_get(srv_store *st, const char *id, srv_cert *out);
srv_st_rc sq_cert_list(srv_store *st, size_t offset, size_t limit, srv_cert **out, size_t *n,
		       size_t *total);
srv_st_rc sq_signer_insert(srv_store *st, const srv_signer *x, const srv_audit *a);
srv_st_rc sq_signer_get(srv_store *st, const char *id_or_name, srv_signer *out);
srv_st_rc sq_signer_list(srv_store *st, const char *visible_to, int operators_only,
			 const char *search, const char *status, size_t offset, size_t limit,
			 srv_signer **out, size_t *n, size_t *total);
srv_st_rc sq_signer_update(srv_store *st, const srv_signer *x, const srv_audit *a);
srv_st_rc sq_signer_retire(srv_store *st, const char *id, const srv_audit *a);
srv_st_rc sq_member_set(srv_store *st, const char *signer_id, const char *principal_id,
			srv_role role, const srv_audit *a);
srv_st_rc sq_member_delete(srv_store *st, const char *signer_id, const char *principal_id,
			   const srv_audit *a);
srv_st_rc sq_member_role(srv_store *st, const char *signer_id, const char *principal_id,
			 srv_role *out);
srv_st_rc sq_member_list(srv_store *st, const char *signer_id, srv_principal **principals,
			 srv_role **roles, size_t *n);
srv_st_rc sq_operation_insert(srv_store *st, const srv_operation *o);
srv_st_rc sq_session_insert(srv_store *st, const srv_session *x);
srv_st_rc sq_session_lookup(srv_store *st, const char *hash_hex, time_t now, long long idle,
			    srv_principal *out, srv_session *sess);
srv_st_rc sq_session_touch(srv_store *st, const char *hash_hex, time_t now, time_t before);
srv_st_rc sq_session_delete(srv_store *st, const char *hash_hex);
srv_st_rc sq_session_purge(srv_store *st, time_t now, long long idle, size_t *n);
srv_st_rc sq_operation_daily(srv_store *st, const char *visible_to, time_t since, srv_op_day **out,
			     size_t *n);
srv_st_rc sq_operation_list(srv_store *st, const char *signer_id, const srv_list_filter *f,
			    size_t offset, size_t limit, srv_operation **out, size_t *n,
			    size_t *total);

/* Caller holds the lock. After a guarded write changed nothing: NOT_FOUND
 * when exists_q (a count bound by ?1 = id) finds no row, else CONFLICT (the
 * row is in a state that does not allow the change). store_sqlite_policy.c */
srv_st_rc sq_absent_or_conflict(sq_store *s, const char *op, sqlite3_stmt *exists_q,
				const char *id);
/* Caller holds the lock, inside request_decide's transaction: inserts *g
 * as an active, unused grant for request_id. store_sqlite_grant.c */
srv_st_rc sq_grant_insert_inlock(sq_store *s, const char *op, const srv_grant *g,
				 const char *request_id, time_t now);

/* Inside an audited op's transaction (store_sqlite_grant.c): the audit
 * entry, and one more entry for something the change brought about, with
 * base's actor and time (detail: JSON object text). */
srv_st_rc sq_audit_inlock(sq_store *s, const char *op, const srv_audit *a);
srv_st_rc sq_audit_derived(sq_store *s, const char *op, const srv_audit *base, const char *action,
			   const char *type, const char *id, const char *detail);
/* What a change of a signer's policy, or its retirement, ends: its pending
 * requests (cancelled) and active grants (revoked), each audited with
 * "why" (store_sqlite_policy.c, _grant.c). */
srv_st_rc sq_end_signer_approvals(sq_store *s, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base);
srv_st_rc sq_grants_revoke_signer(sq_store *s, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base);
/* Clamps the active grants of the live signers governed by policy p to
 * its limits, auditing each grant that changed ("grant.clamp"). */
srv_st_rc sq_grants_clamp_policy(sq_store *s, const char *op, const srv_policy *p,
				 const srv_audit *base);
/* t as a JSON value for audit details: "\"2025-...Z\"", or null for 0. */
void sq_json_time(time_t t, char out[RS_TIME_LEN + 2]);
/* Reads one id column (into a srv_id). */
srv_st_rc sq_rd_id(sqlite3_stmt *st, int c, void *out);

/* store_sqlite_policy.c ops */
srv_st_rc sq_policy_insert(srv_store *st, const srv_policy *p, const srv_audit *a);
srv_st_rc sq_policy_get(srv_store *st, const char *id_or_name, srv_policy *out);
srv_st_rc sq_policy_list(srv_store *st, const char *visible_to, size_t offset, size_t limit,
			 srv_policy **out, size_t *n, size_t *total);
srv_st_rc sq_policy_update(srv_store *st, const srv_policy *p, const srv_audit *a);
srv_st_rc sq_policy_delete(srv_store *st, const char *id, const srv_audit *a);
srv_st_rc sq_request_insert(srv_store *st, const srv_request *q, const srv_audit *a);
srv_st_rc sq_request_get(srv_store *st, const char *id, time_t now, srv_request *out);
srv_st_rc sq_request_list(srv_store *st, const char *signer_id, const char *status,
			  const char *visible_to, time_t now, size_t offset, size_t limit,
			  srv_request **out, size_t *n, size_t *total);
srv_st_rc sq_request_decide(srv_store *st, const srv_decision *d, const char *grant_id, time_t now,
			    srv_request *after, srv_decide_why *why, const srv_audit *a);
srv_st_rc sq_decision_list(srv_store *st, const char *request_id, srv_decision **out, size_t *n);
srv_st_rc sq_request_close(srv_store *st, const char *id, const char *to, time_t now,
			   const srv_audit *a);

/* History rows inside an open transaction (store_sqlite_pki.c, _grant.c). */
srv_st_rc sq_op_apply(sq_store *s, const char *op, const srv_operation *o, const char *grant_id);
/* Deletes at most max "denied" records created before `before` (the
 * oldest first); *n = how many. */
srv_st_rc sq_op_purge_denied(sq_store *s, const char *op, time_t before, int max, size_t *n);
/* The signer's current policy ("" = none) and retirement time (0 = live),
 * inside the caller's transaction; NOT_FOUND when no such signer. */
srv_st_rc sq_signer_state(sq_store *s, const char *op, const char *id, char policy_id[RS_UUID_LEN],
			  time_t *retired_at);
/* last_signed_at = max(last_signed_at, t) */
srv_st_rc sq_op_touch_signer(sq_store *s, const char *op, const char *signer_id, time_t t);
srv_st_rc sq_op_apply_consume(sq_store *s, const char *op, const srv_operation *o,
			      char grant_id_out[RS_UUID_LEN]);
/* store_sqlite_history.c: queue set-up for sq_store open/close */
int sq_history_init(sq_store *s);
void sq_history_fini(sq_store *s);
void sq_history_set_retention(srv_store *st, long long denied_seconds);
srv_st_rc sq_operation_find_key(srv_store *st, const char *actor_id, const char *key,
				srv_operation *out);

/* store_sqlite_tsa.c ops */
srv_st_rc sq_tsa_insert(srv_store *st, const srv_tsa *t, const srv_audit *a);
srv_st_rc sq_tsa_get(srv_store *st, const char *id_or_name, srv_tsa *out);
srv_st_rc sq_tsa_list(srv_store *st, size_t offset, size_t limit, srv_tsa **out, size_t *n,
		      size_t *total);
srv_st_rc sq_tsa_update(srv_store *st, const srv_tsa *t, const srv_audit *a);
srv_st_rc sq_tsa_delete(srv_store *st, const char *id, const srv_audit *a);
srv_st_rc sq_timestamp_insert(srv_store *st, const srv_timestamp *t);
srv_st_rc sq_timestamp_list(srv_store *st, const char *tsa_id, size_t offset, size_t limit,
			    srv_timestamp **out, size_t *n, size_t *total);

/* store_sqlite_grant.c ops */
srv_st_rc sq_grant_get(srv_store *st, const char *id, time_t now, srv_grant *out);
srv_st_rc sq_grant_list(srv_store *st, const char *signer_id, const char *status,
			const char *grantee_id, const char *visible_to, time_t now, size_t offset,
			size_t limit, srv_grant **out, size_t *n, size_t *total);
srv_st_rc sq_grant_revoke(srv_store *st, const char *id, time_t now, const srv_audit *a);
srv_st_rc sq_grant_find_active(srv_store *st, const char *signer_id, const char *grantee_id,
			       time_t now, srv_grant *out);
srv_st_rc sq_operation_insert_consume(srv_store *st, const srv_operation *o,
				      char grant_id_out[RS_UUID_LEN]);
srv_st_rc sq_audit_list(srv_store *st, const srv_list_filter *f, size_t offset, size_t limit,
			srv_audit **out, size_t *n, size_t *total);

/* ---- store_sqlite_chain.c: the hash chains (store_chain.h) ---- */
/* Inside a write transaction: reads chain c's head into cur; cur gives each
 * record its link (sq_chain_next); sq_chain_end writes the head back when
 * it moved. */
srv_st_rc sq_chain_begin(sq_store *s, const char *op, srv_chain c, sq_chain_cur *cur);
srv_st_rc sq_chain_next(sq_chain_cur *cur, const char *kind,
			const unsigned char body[SRV_CHAIN_LEN], sq_chain_link *out);
srv_st_rc sq_chain_end(sq_store *s, const char *op, const sq_chain_cur *cur);
/* The name an audit row gets: a->actor_name, or the actor's current name
 * (malloc'd, "" when none). */
srv_st_rc sq_chain_actor_name(sq_store *s, const char *op, const srv_audit *a, char **name);
/* Migration 10: links every record made before it, in seq order. 0 or -1 + err. */
int sq_chain_backfill(sqlite3 *db, char *err, size_t errlen);
srv_st_rc sq_chain_rows(srv_store *st, int chain, long long after, size_t limit, srv_chain_row *out,
			size_t *n);
srv_st_rc sq_chain_count_seq(srv_store *st, int chain, long long seq, size_t *n);
srv_st_rc sq_chain_head(srv_store *st, int chain, long long *seq, char hash[SRV_CHAIN_HEX]);
srv_st_rc sq_checkpoint_insert(srv_store *st, const srv_checkpoint *c);
srv_st_rc sq_checkpoint_list(srv_store *st, int chain, long long after, size_t limit,
			     srv_checkpoint *out, size_t *n);
srv_st_rc sq_checkpoint_last(srv_store *st, int chain, srv_checkpoint *out);

#endif
