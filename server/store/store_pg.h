/* Internal to the PostgreSQL storage, shared by its files:
 * store_pg.c (connection pool, helpers, principals and credentials),
 * store_pg_pki.c (keys, certificates, signers, members, history),
 * store_pg_policy.c (policies, approval requests, decisions),
 * store_pg_grant.c (grants, grant-consuming history, audit log),
 * store_pg_tsa.c (time-stamp authorities and their timestamps),
 * store_pg_migrate.c (the numbered schema migrations) and
 * store_pg_import.c (rsignd migrate: a SQLite database copied in).
 * store_pg_migrate.c (the numbered schema migrations),
 * store_pg_import.c (rsignd migrate: a SQLite database copied in) and
 * store_pg_session.c (console sessions, the overview's daily counts).
 * Each op takes one connection of the pool for its whole run (its
 * transaction included) and gives it back; the statements are prepared on
 * every connection when it is made. Nothing outside those files and their
 * unit test includes this. */
#ifndef SRV_STORE_PG_H
#define SRV_STORE_PG_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "rsign/util.h"
#include "server/store/store.h"
#include "server/store/store_batch.h"
#include "server/store/store_chain.h"

/* Every statement, over the four files that use them (one name space: each
 * is prepared as "q<number>" on every connection). */
enum {
	/* store_pg.c */
	G_PING,
	G_META_GET,
	G_META_SET,
	G_META_ADD,
	G_PRINCIPAL_INSERT,
	G_PRINCIPAL_GET,
	G_PRINCIPAL_LIST,
	G_PRINCIPAL_COUNT,
	G_PRINCIPAL_DISABLE,
	G_PRINCIPAL_DELETE,
	G_APPROVER_NEEDED,
	G_TOKEN_INSERT,
	G_TOKEN_LOOKUP,
	G_TOKEN_PURGE,
	G_SECRET_CLIENT,
	G_SECRET_DROP,
	G_SECRET_INSERT,
	G_SECRET_LOOKUP,
	G_WRITE_LOCK,
	G_PRINCIPAL_UPDATE,
	G_TOKEN_COUNT_API,
	G_TOKEN_LIST,
	G_TOKEN_LIST_COUNT,
	G_TOKEN_REVOKE,
	G_TOKEN_TOUCH,
	G_SECRET_ROWS,
	G_SECRET_EXPIRE,
	G_SECRET_DELETE,
	G_SECRET_LIST,
	/* store_pg_pki.c */
	PK_KEY_INSERT,
	PK_KEY_GET,
	PK_KEY_LIST,
	PK_KEY_COUNT,
	PK_KEY_SPKI,
	PK_CERT_INSERT,
	PK_CERT_GET,
	PK_CERT_LIST,
	PK_CERT_COUNT,
	PK_SIGNER_INSERT,
	PK_SIGNER_GET,
	PK_SIGNER_LIST,
	PK_SIGNER_COUNT,
	PK_SIGNER_UPDATE,
	PK_SIGNER_RETIRE,
	PK_SIGNER_EXISTS,
	PK_SIGNER_POLICY,
	PK_MEMBER_SET,
	PK_MEMBER_DELETE,
	PK_MEMBER_ROLE,
	PK_MEMBER_LIST,
	PK_OP_INSERT,
	PK_OP_INSERT_TOUCH,
	PK_OP_LAST_SIGNED,
	PK_OP_LIST,
	PK_OP_COUNT,
	PK_OP_LIST_STATUS,
	PK_OP_COUNT_STATUS,
	PK_OP_LIST_FILTER,
	PK_OP_COUNT_FILTER,
	PK_OP_PURGE_DENIED,
	PK_KEY_FIND,
	/* store_pg_policy.c */
	PO_POL_INSERT,
	PO_POL_UPDATE,
	PO_POL_GET,
	PO_POL_LIST,
	PO_POL_COUNT,
	PO_POL_DELETE,
	PO_POL_IN_USE,
	PO_APPR_INSERT,
	PO_APPR_CLEAR,
	PO_REQ_INSERT,
	PO_REQ_EXPIRE,
	PO_REQ_GET,
	PO_REQ_LIST,
	PO_REQ_COUNT,
	PO_REQ_CLOSE,
	PO_REQ_EXISTS,
	PO_REQ_APPROVED,
	PO_REQ_PENDING_SIGNER,
	PO_REQ_PENDING_POLICY,
	PO_APPR_USABLE,
	PO_DEC_INSERT,
	PO_DEC_COUNT,
	PO_DEC_LIST,
	/* store_pg_grant.c */
	GT_GRANT_INSERT,
	GT_GRANT_GET,
	GT_GRANT_LIST,
	GT_GRANT_COUNT,
	GT_GRANT_REVOKE,
	GT_GRANT_EXISTS,
	GT_GRANT_USABLE,
	GT_GRANT_USE,
	GT_GRANT_ACTIVE_SIGNER,
	GT_GRANT_GOVERNED,
	GT_GRANT_CLAMP,
	GT_AUDIT_INSERT,
	GT_AUDIT_LIST,
	GT_AUDIT_COUNT,
	GT_AUDIT_LIST_FILTER,
	GT_AUDIT_COUNT_FILTER,
	/* store_pg_tsa.c */
	TA_TSA_INSERT,
	TA_TSA_GET,
	TA_TSA_LIST,
	TA_TSA_COUNT,
	TA_TSA_UPDATE,
	TA_TSA_DELETE,
	TA_STAMP_INSERT,
	TA_STAMP_LIST,
	TA_STAMP_COUNT,
	/* store_pg_session.c */
	GS_INSERT,
	GS_LOOKUP,
	GS_TOUCH,
	GS_DELETE,
	GS_PURGE,
	GS_DAILY,
	/* store_pg_chain.c */
	PC_HEAD_GET,
	PC_HEAD_LOCK,
	PC_NAME_OF,
	PC_OP_ROWS,
	PC_AU_ROWS,
	PC_OP_COUNT,
	PC_AU_COUNT,
	PC_CP_INSERT,
	PC_CP_LIST,
	PC_CP_LAST,
	PG_NSTMT
};

/* The key of the store-wide advisory lock audited changes (and an import)
 * take in their transaction. */
#define PG_WRITE_LOCK_KEY "7310400101"

/* One statement's text, by its id; each file lists its own, ending {-1, NULL}. */
typedef struct {
	int id;
	const char *sql;
} pg_sql;
extern const pg_sql pg_core_sql[], pg_pki_sql[], pg_policy_sql[], pg_grant_sql[], pg_tsa_sql[],
	pg_session_sql[], pg_chain_sql[];

/* The principal columns pg_rd_principal reads (PG_P_NCOLS of them), table
 * alias p. */
#define PG_P_COLS                                                                                  \
	"p.id, p.type, p.name, p.admin, p.client_id, p.created_at, p.disabled, p.mac, p.metrics, " \
	"p.oidc"
#define PG_P_NCOLS 10
/* The visibility rules of server/api/access.c, in SQL, as the SQLite store
 * has them (store_sqlite.h): they must agree with srv_may_see_*. */
#define PG_MEMBER_OF(signer, who)                                                                  \
	"EXISTS (SELECT 1 FROM members vm WHERE vm.signer_id = " signer                            \
	" AND vm.principal_id = " who ")"
#define PG_APPROVES_POLICY(policy, who)                                                            \
	"EXISTS (SELECT 1 FROM policy_approvers va WHERE va.policy_id = " policy                   \
	" AND va.principal_id = " who ")"
#define PG_APPROVES_SIGNER(signer, who)                                                            \
	"EXISTS (SELECT 1 FROM signers vs JOIN policy_approvers va ON va.policy_id = vs.policy_id" \
	" WHERE vs.id = " signer " AND va.principal_id = " who ")"
/* The paging clause a list statement ends with: its two parameters follow
 * the filter's (pg_pager.nfilter of them); a NULL limit is no limit. */
#define PG_PAGE(lim, off) " LIMIT " lim " OFFSET " off
/* An id matches before a name. */
#define PG_BY_ID_OR_NAME(t)                                                                        \
	" WHERE " t ".id = $1 OR " t ".name = $1 ORDER BY " t ".id = $1 DESC LIMIT 1"
/* NULL -> the principal's current name -> "" */
#define PG_NAME_OF(v, id)                                                                          \
	"coalesce(" v "::text, (SELECT name FROM principals WHERE id = " id "), '')"

/* One pooled connection. used counts the statements of the current op: a
 * connection found dead on an op's first statement is remade and the
 * statement retried, since nothing of the op has run. */
typedef struct {
	PGconn *c;
	int used;
} pg_conn;

typedef struct {
	srv_store base; /* first: srv_store * <-> pg_store * */
	char *uri;
	pthread_mutex_t mu; /* guards the pool and down */
	pthread_cond_t cv;
	pg_conn *conns;
	size_t n_conns;
	size_t *idle; /* indexes of idle connections, a stack */
	size_t n_idle;
	int down;		    /* an outage was logged and has not ended */
	long long denied_retention; /* seconds; 0 = keep; under mu */
	srv_rowmac *mac;	    /* row MACs (store.h); never NULL once open */
	srv_batch hq;		    /* the history's group commit (store_pg_history.c) */
} pg_store;

#define PGS(st) ((pg_store *)(st))

/* The parameters of one statement, $1 .. $PG_MAXP. Values are borrowed:
 * they must outlive the call. Unset parameters are SQL NULL. */
#define PG_MAXP 24
typedef struct {
	int n;
	const char *v[PG_MAXP];
	int len[PG_MAXP];
	int fmt[PG_MAXP];
	char num[PG_MAXP][24];
} pg_args;

void a_text(pg_args *a, int i, const char *v); /* NULL -> "" */
void a_opt(pg_args *a, int i, const char *v);  /* NULL or "" -> SQL NULL */
void a_int(pg_args *a, int i, long long v);
void a_blob(pg_args *a, int i, const void *p, size_t n); /* bytea, binary */
/* a list filter's time range at i and i + 1: an unset end is SQL NULL */
void pg_a_range(pg_args *a, int i, const srv_list_filter *f);
/* a LIMIT value: 0 = no limit (NULL) */
void a_limit(pg_args *a, int i, size_t v);

srv_st_rc pg_bad_arg(const char *op);

/* Takes an idle connection (waiting for one), connecting it when it is not.
 * UNAVAILABLE when the database cannot be reached. */
srv_st_rc pg_acquire(pg_store *s, const char *op, pg_conn **out);
/* Gives it back; a connection left inside a transaction is dropped. */
void pg_release(pg_store *s, pg_conn *c);

/* run flags */
enum { PGRUN_PLAIN = 0, PGRUN_MUST_CHANGE = 1, PGRUN_DELETE = 2 };

/* Runs a write statement. PGRUN_MUST_CHANGE: NOT_FOUND when no row changed.
 * PGRUN_DELETE: a foreign key failure is CONFLICT (still referenced) instead
 * of NOT_FOUND. *changed (may be NULL) = rows changed. */
srv_st_rc pg_run(pg_store *s, pg_conn *c, const char *op, int stmt, const pg_args *a, int flags,
		 size_t *changed);
srv_st_rc pg_begin(pg_store *s, pg_conn *c, const char *op);
/* rolls back when the commit fails */
srv_st_rc pg_commit(pg_store *s, pg_conn *c, const char *op);
void pg_rollback(pg_store *s, pg_conn *c, const char *op);

/* One change of an audited op, run by pg_audited inside its transaction. */
typedef srv_st_rc (*pg_change)(pg_store *s, pg_conn *c, const char *op, const void *arg,
			       const srv_audit *a);
/* The shape of every audited op: a connection, BEGIN, the store-wide write
 * lock (an advisory lock: audited changes run one at a time over every
 * replica, as they do on SQLite's single writer), *a, change, COMMIT; all
 * rolled back when either fails. */
srv_st_rc pg_audited(pg_store *s, const char *op, pg_change change, const void *arg,
		     const srv_audit *a);

/* Row readers fill *out from the columns of row r starting at c. */
typedef srv_st_rc (*pg_reader)(const PGresult *res, int r, int c, void *out);
srv_st_rc pg_rd_str(const PGresult *res, int r, int c, void *out); /* char ** */
srv_st_rc pg_rd_id(const PGresult *res, int r, int c, void *out);  /* srv_id */
srv_st_rc pg_rd_principal(const PGresult *res, int r, int c, void *out);

#define PG_CLEARER(name, clear)                                                                    \
	static void name(void *p)                                                                  \
	{                                                                                          \
		clear(p);                                                                          \
	}

/* At most one row; NOT_FOUND when none. */
srv_st_rc pg_one(pg_store *s, pg_conn *c, const char *op, int stmt, const pg_args *a, pg_reader rd,
		 void *out);
/* Every row into a malloc'd array of size-byte records (*out NULL when none). */
srv_st_rc pg_list(pg_store *s, pg_conn *c, const char *op, int stmt, const pg_args *a, pg_reader rd,
		  size_t size, void (*clr)(void *), void **out, size_t *n);
/* A "SELECT count(*)". */
srv_st_rc pg_count(pg_store *s, pg_conn *c, const char *op, int stmt, const pg_args *a,
		   size_t *total);

/* One-shot forms that take and give back a connection themselves. */
srv_st_rc pg_get(pg_store *s, const char *op, int stmt, const pg_args *a, pg_reader rd, void *out);
srv_st_rc pg_get_list(pg_store *s, const char *op, int stmt, const pg_args *a, pg_reader rd,
		      size_t size, void (*clr)(void *), void **out, size_t *n);

/* A paged list: count and list share the filter parameters (nfilter of
 * them, in args); list ends with PG_PAGE($nfilter+1, $nfilter+2). */
typedef struct {
	int count, list;
	const pg_args *args; /* NULL: no filter */
	int nfilter;
	pg_reader rd;
	size_t size;
	void (*clr)(void *);
} pg_pager;

srv_st_rc pg_page_on(pg_store *s, pg_conn *c, const char *op, const pg_pager *pg, size_t offset,
		     size_t limit, void **out, size_t *n, size_t *total);
srv_st_rc pg_page(pg_store *s, const char *op, const pg_pager *pg, size_t offset, size_t limit,
		  void **out, size_t *n, size_t *total);

/* Column readers (text format). */
char *pg_col_dup(const PGresult *res, int r, int c, const char *def); /* NULL: out of memory */
void pg_col_copy(const PGresult *res, int r, int c, char *out, size_t n);
long long pg_col_ll(const PGresult *res, int r, int c);

/* store_pg_mac.c: row MACs (the rule is store.h's). The MAC of principal
 * p (hex "" when no function is installed), and a read row against its. */
srv_st_rc pg_mac_principal(pg_store *s, const srv_principal *p, char hex[SRV_MAC_HEX]);
srv_st_rc pg_check_principal(pg_store *s, const srv_principal *p);
/* Drops from the *n size-byte records at v those check finds NOT_FOUND
 * (clr clears each dropped one); any other failure is returned with *n the
 * records still to be freed. */
srv_st_rc pg_filter(pg_store *s, void *v, size_t *n, size_t size,
		    srv_st_rc (*check)(pg_store *s, const void *rec), void (*clr)(void *));
void pg_set_row_mac(srv_store *st, srv_row_mac_fn fn, void *arg);
srv_st_rc pg_seal_rows(srv_store *st, size_t *n);

/* store_pg_session.c: console sessions */
srv_st_rc pg_session_insert(srv_store *st, const srv_session *x);
srv_st_rc pg_session_lookup(srv_store *st, const char *hash_hex, time_t now, long long idle,
			    srv_principal *out, srv_session *sess);
srv_st_rc pg_session_touch(srv_store *st, const char *hash_hex, time_t now, time_t before);
srv_st_rc pg_session_delete(srv_store *st, const char *hash_hex);
srv_st_rc pg_session_purge(srv_store *st, time_t now, long long idle, size_t *n);
srv_st_rc pg_operation_daily(srv_store *st, const char *visible_to, time_t since, srv_op_day **out,
			     size_t *n);

/* store_pg_migrate.c: runs every pending migration on c, one transaction
 * each, serialised over every process by an advisory lock. 0 or -1 + err. */
int pg_migrate(PGconn *c, char *err, size_t errlen);

/* store_pg_pki.c ops */
srv_st_rc pg_key_insert(srv_store *st, const srv_key *k, const srv_audit *a);
srv_st_rc pg_key_get(srv_store *st, const char *id_or_name, srv_key *out);
srv_st_rc pg_key_list(srv_store *st, size_t offset, size_t limit, srv_key **out, size_t *n,
		      size_t *total);
srv_st_rc pg_key_find_spki(srv_store *st, const unsigned char *spki, size_t len, srv_key *out);
srv_st_rc pg_cert_insert(srv_store *st, const srv_cert *c, const srv_audit *a);
srv_st_rc pg_cert_get(srv_store *st, const char *id, srv_cert *out);
srv_st_rc pg_cert_list(srv_store *st, size_t offset, size_t limit, srv_cert **out, size_t *n,
		       size_t *total);
srv_st_rc pg_signer_insert(srv_store *st, const srv_signer *x, const srv_audit *a);
srv_st_rc pg_signer_get(srv_store *st, const char *id_or_name, srv_signer *out);
srv_st_rc pg_signer_list(srv_store *st, const char *visible_to, int operators_only,
			 const char *search, const char *status, size_t offset, size_t limit,
			 srv_signer **out, size_t *n, size_t *total);
srv_st_rc pg_signer_update(srv_store *st, const srv_signer *x, const srv_audit *a);
srv_st_rc pg_signer_retire(srv_store *st, const char *id, const srv_audit *a);
srv_st_rc pg_member_set(srv_store *st, const char *signer_id, const char *principal_id,
			srv_role role, const srv_audit *a);
srv_st_rc pg_member_delete(srv_store *st, const char *signer_id, const char *principal_id,
			   const srv_audit *a);
srv_st_rc pg_member_role(srv_store *st, const char *signer_id, const char *principal_id,
			 srv_role *out);
srv_st_rc pg_member_list(srv_store *st, const char *signer_id, srv_principal **principals,
			 srv_role **roles, size_t *n);
srv_st_rc pg_operation_insert(srv_store *st, const srv_operation *o);
srv_st_rc pg_operation_find_key(srv_store *st, const char *actor_id, const char *key,
				srv_operation *out);
/* Inside the caller's transaction: CONFLICT when o's actor used o's
 * Idempotency-Key already (OK when o has none). The record's own insert
 * (pg_op_apply) writes the key; the unique index operations_idem fails a
 * concurrent second one (CONFLICT). */
srv_st_rc pg_key_unused(pg_store *s, pg_conn *c, const char *op, const srv_operation *o);
srv_st_rc pg_operation_list(srv_store *st, const char *signer_id, const srv_list_filter *f,
			    size_t offset, size_t limit, srv_operation **out, size_t *n,
			    size_t *total);
void pg_history_set_retention(srv_store *st, long long denied_seconds);
/* Inside the caller's transaction: the history row (with grant_id), and
 * last_signed_at and the retention purge for a record just written. */
srv_st_rc pg_op_apply(pg_store *s, pg_conn *c, const char *op, const srv_operation *o,
		      const char *grant_id);
srv_st_rc pg_op_after(pg_store *s, pg_conn *c, const char *op, const srv_operation *o);
/* The signer's current policy ("" = none) and retirement time (0 = live);
 * NOT_FOUND when no such signer. */
srv_st_rc pg_signer_state(pg_store *s, pg_conn *c, const char *op, const char *id,
			  char policy_id[RS_UUID_LEN], time_t *retired_at);

/* store_pg_policy.c */
srv_st_rc pg_absent_or_conflict(pg_store *s, pg_conn *c, const char *op, int exists_q,
				const char *id);
srv_st_rc pg_end_signer_approvals(pg_store *s, pg_conn *c, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base);
srv_st_rc pg_policy_insert(srv_store *st, const srv_policy *p, const srv_audit *a);
srv_st_rc pg_policy_get(srv_store *st, const char *id_or_name, srv_policy *out);
srv_st_rc pg_policy_list(srv_store *st, const char *visible_to, size_t offset, size_t limit,
			 srv_policy **out, size_t *n, size_t *total);
srv_st_rc pg_policy_update(srv_store *st, const srv_policy *p, const srv_audit *a);
srv_st_rc pg_policy_delete(srv_store *st, const char *id, const srv_audit *a);
srv_st_rc pg_request_insert(srv_store *st, const srv_request *q, const srv_audit *a);
srv_st_rc pg_request_get(srv_store *st, const char *id, time_t now, srv_request *out);
srv_st_rc pg_request_list(srv_store *st, const char *signer_id, const char *status,
			  const char *visible_to, time_t now, size_t offset, size_t limit,
			  srv_request **out, size_t *n, size_t *total);
srv_st_rc pg_request_decide(srv_store *st, const srv_decision *d, const char *grant_id, time_t now,
			    srv_request *after, srv_decide_why *why, const srv_audit *a);
srv_st_rc pg_decision_list(srv_store *st, const char *request_id, srv_decision **out, size_t *n);
srv_st_rc pg_request_close(srv_store *st, const char *id, const char *to, time_t now,
			   const srv_audit *a);

/* store_pg_grant.c */
srv_st_rc pg_grant_insert_on(pg_store *s, pg_conn *c, const char *op, const srv_grant *g,
			     const char *request_id, time_t now);
srv_st_rc pg_grants_revoke_signer(pg_store *s, pg_conn *c, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base);
srv_st_rc pg_grants_clamp_policy(pg_store *s, pg_conn *c, const char *op, const srv_policy *p,
				 const srv_audit *base);
srv_st_rc pg_audit_on(pg_store *s, pg_conn *c, const char *op, const srv_audit *a);
srv_st_rc pg_audit_derived(pg_store *s, pg_conn *c, const char *op, const srv_audit *base,
			   const char *action, const char *type, const char *id,
			   const char *detail);
void pg_json_time(time_t t, char out[RS_TIME_LEN + 2]);
srv_st_rc pg_grant_get(srv_store *st, const char *id, time_t now, srv_grant *out);
srv_st_rc pg_grant_list(srv_store *st, const char *signer_id, const char *status,
			const char *grantee_id, const char *visible_to, time_t now, size_t offset,
			size_t limit, srv_grant **out, size_t *n, size_t *total);
srv_st_rc pg_grant_revoke(srv_store *st, const char *id, time_t now, const srv_audit *a);
srv_st_rc pg_grant_find_active(srv_store *st, const char *signer_id, const char *grantee_id,
			       time_t now, srv_grant *out);
srv_st_rc pg_operation_insert_consume(srv_store *st, const srv_operation *o,
				      char grant_id_out[RS_UUID_LEN]);
srv_st_rc pg_audit_list(srv_store *st, const srv_list_filter *f, size_t offset, size_t limit,
			srv_audit **out, size_t *n, size_t *total);

/* store_pg_tsa.c */
srv_st_rc pg_tsa_insert(srv_store *st, const srv_tsa *t, const srv_audit *a);
srv_st_rc pg_tsa_get(srv_store *st, const char *id_or_name, srv_tsa *out);
srv_st_rc pg_tsa_list(srv_store *st, size_t offset, size_t limit, srv_tsa **out, size_t *n,
		      size_t *total);
srv_st_rc pg_tsa_update(srv_store *st, const srv_tsa *t, const srv_audit *a);
srv_st_rc pg_tsa_delete(srv_store *st, const char *id, const srv_audit *a);
srv_st_rc pg_timestamp_insert(srv_store *st, const srv_timestamp *t);
srv_st_rc pg_timestamp_list(srv_store *st, const char *tsa_id, size_t offset, size_t limit,
			    srv_timestamp **out, size_t *n, size_t *total);
/* ---- store_pg_chain.c: the hash chains (store_chain.h) ---- */
/* A CTE that links one record to chain ch (a literal) and returns its
 * seq, prev and hash (hex): it advances the head row, whose lock it holds
 * until the transaction ends, and hashes from the head it locked (SET sees
 * the row's old values). pre and suf are the bytea parameters of
 * pg_chain_args. */
#define PG_CHAIN_LINK(ch, pre, suf)                                                                \
	"UPDATE chain_heads SET seq = seq + 1, prev = hash, hash = encode(sha256(decode(hash,"     \
	" 'hex') || " pre "::bytea || int8send(seq + 1) || " suf "::bytea), 'hex')"                \
	" WHERE chain = '" ch "' RETURNING seq, prev, hash"
/* The table seq of the record being linked (table t), drawn only once
 * the CTE h holds the head's lock: the table's order is then the chain's
 * order over every replica (a default drawn before the lock would let two
 * inserts take their seqs in one order and their links in the other). */
#define PG_CHAIN_ROW(t) "(SELECT nextval(pg_get_serial_sequence('" t "', 'seq')) FROM h)"
/* What the link's parameters borrow. */
typedef struct {
	char body[SRV_CHAIN_HEX];
	unsigned char pre[64], suf[80];
	size_t npre, nsuf;
} pg_chain_buf;
/* Sets $first (body_hash hex), $first+1 (pre) and $first+2 (suf) for a
 * record of kind with that body hash. 0 or -1. */
int pg_chain_args(pg_args *a, int first, srv_chain c, const char *kind,
		  const unsigned char body[SRV_CHAIN_LEN], pg_chain_buf *buf);
/* $1..$22 of PK_OP_INSERT(_TOUCH) for o with grant_id: its columns and its
 * link (buf holds what the link's parameters borrow). */
srv_st_rc pg_a_operation(pg_args *a, const srv_operation *o, const char *grant_id,
			 pg_chain_buf *buf);
/* Writes o (a record without a "denied" retention to apply) through the
 * group commit: returns once the commit that holds it, or its failure,
 * has ended. CONFLICT when o's Idempotency-Key was used already. */
srv_st_rc pg_history_submit(pg_store *s, const srv_operation *o);
/* The name an audit row gets: a->actor_name, or the actor's current name
 * (malloc'd, "" when none). */
srv_st_rc pg_chain_actor_name(pg_store *s, pg_conn *pc, const char *op, const srv_audit *a,
			      char **name);
/* 0 when res is a success, else -1 with err = "what: message" on one line. */
int pg_res_ok(PGresult *res, const char *what, char *err, size_t errlen);
/* Migration 10: links every record made before it, in seq order. 0 or -1 + err. */
int pg_chain_backfill(PGconn *db, char *err, size_t errlen);
srv_st_rc pg_chain_rows(srv_store *st, int chain, long long after, size_t limit, srv_chain_row *out,
			size_t *n);
srv_st_rc pg_chain_count_seq(srv_store *st, int chain, long long seq, size_t *n);
srv_st_rc pg_chain_head(srv_store *st, int chain, long long *seq, char hash[SRV_CHAIN_HEX]);
srv_st_rc pg_checkpoint_insert(srv_store *st, const srv_checkpoint *c);
srv_st_rc pg_checkpoint_list(srv_store *st, int chain, long long after, size_t limit,
			     srv_checkpoint *out, size_t *n);
srv_st_rc pg_checkpoint_last(srv_store *st, int chain, srv_checkpoint *out);

#endif
