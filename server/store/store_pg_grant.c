/* PostgreSQL storage of grants, the history insert that consumes one, and
 * the audit log (see store_pg.c for the pool and helpers; the rules are
 * store_sqlite_grant.c's). A grant's use is taken by a conditional UPDATE
 * that PostgreSQL re-checks on the row's latest version under its row lock,
 * in the transaction of the history record: a grant of maxSignings N yields
 * exactly N records whichever process, replica or connection asks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "server/store/store_pg.h"

/* An active grant is spent once its end or its count is reached. */
#define GRANT_SPENT(now)                                                                           \
	"((g.expires_at > 0 AND g.expires_at <= " now ") OR"                                       \
	" (g.max_signings > 0 AND g.used_signings >= g.max_signings))"
#define GRANT_STATUS(now)                                                                          \
	"CASE WHEN g.status = 'active' AND " GRANT_SPENT(now) " THEN 'expired' ELSE g.status END"
#define GRANT_COLS(now)                                                                            \
	"g.id, g.signer_id, g.grantee_id, g.request_id, " GRANT_STATUS(                            \
		now) ", "                                                                          \
		     "g.max_signings, g.used_signings, g.window_start, g.expires_at, "             \
		     "g.created_at, "                                                              \
		     "g.revoked_at"
/* $1 signer, $2 grantee, $3 time. The grant ending first is used first. */
#define GRANT_USABLE                                                                               \
	" FROM grants g WHERE g.signer_id = $1 AND g.grantee_id = $2 AND g.status = 'active'"      \
	" AND g.window_start <= $3::bigint AND NOT " GRANT_SPENT(                                  \
		"$3::bigint") " ORDER BY g.expires_at = 0, g.expires_at, g.seq LIMIT 1"
/* $1 signer, $2 status, $3 grantee, $4 now, $5 visible_to (NULL = any:
 * srv_may_see_grant) */
#define GRANT_WHERE                                                                                \
	" WHERE ($1::text IS NULL OR g.signer_id = $1::text)"                                      \
	" AND ($2::text IS NULL OR " GRANT_STATUS(                                                 \
		"$4::bigint") " = $2::text)"                                                       \
			      " AND ($3::text IS NULL OR g.grantee_id = $3::text)"                 \
			      " AND ($5::text IS NULL OR g.grantee_id = $5::text "                 \
			      "OR " PG_MEMBER_OF(                                                  \
				      "g.signer_id",                                               \
				      "$5::text") " OR " PG_APPROVES_SIGNER("g.signer_id",         \
									    "$5::text") ")"

/* an audit entry's columns; $8..$10 its link (pg_chain_args), the chain
 * columns from the CTE h and the row's seq drawn under the head's lock */
#define AU_INS_COLS                                                                                \
	"actor_id, actor_name, action, object_type, object_id, detail, created_at, chain_seq,"     \
	" prev_hash, body_hash, hash, seq"
#define AU_LINK PG_CHAIN_LINK("audit", "$9", "$10")
/* srv_list_filter on the audit log, each part NULL = any */
#define AU_FILTER                                                                                  \
	" ($1::text IS NULL OR actor_id = $1 OR actor_name = $1) AND ($2::text IS NULL"            \
	" OR action = $2) AND ($3::bigint IS NULL OR created_at >= $3)"                            \
	" AND ($4::bigint IS NULL OR created_at < $4)"
#define AU_INS_CHAIN                                                                               \
	"(SELECT seq FROM h), (SELECT prev FROM h), $8, (SELECT hash FROM h), " PG_CHAIN_ROW(      \
		"audit")

const pg_sql pg_grant_sql[] = {
	{GT_GRANT_INSERT, "INSERT INTO grants (id, signer_id, grantee_id, request_id, status,"
			  " max_signings, used_signings, window_start, expires_at, created_at)"
			  " VALUES ($1, $2, $3, $4, 'active', $5, 0, $6, $7, $8)"},
	{GT_GRANT_GET, "SELECT " GRANT_COLS("$2::bigint") " FROM grants g WHERE g.id = $1"},
	{GT_GRANT_LIST,
	 "SELECT " GRANT_COLS("$4::bigint") " FROM grants g" GRANT_WHERE
					    " ORDER BY g.seq DESC" PG_PAGE("$6", "$7")},
	{GT_GRANT_COUNT, "SELECT count(*) FROM grants g" GRANT_WHERE},
	{GT_GRANT_REVOKE, "UPDATE grants AS g SET status = 'revoked', revoked_at = $2"
			  " WHERE g.id = $1 AND g.status = 'active' AND NOT " GRANT_SPENT("$2")},
	{GT_GRANT_EXISTS, "SELECT count(*) FROM grants WHERE id = $1"},
	{GT_GRANT_USABLE, "SELECT " GRANT_COLS("$3::bigint") GRANT_USABLE},
	/* re-checked by PostgreSQL on the latest row version once a concurrent
	 * writer of the row has committed ($2: the record's time) */
	{GT_GRANT_USE, "UPDATE grants AS g SET used_signings = used_signings + 1"
		       " WHERE g.id = $1 AND g.status = 'active' AND g.window_start <= $2"
		       " AND NOT " GRANT_SPENT("$2")},
	{GT_GRANT_ACTIVE_SIGNER,
	 "SELECT g.id FROM grants g WHERE g.signer_id = $1"
	 " AND g.status = 'active' AND NOT " GRANT_SPENT("$2") " ORDER BY g.seq"},
	{GT_GRANT_GOVERNED,
	 "SELECT " GRANT_COLS(
		 "$2::bigint") " FROM grants g JOIN signers s"
			       " ON s.id = g.signer_id WHERE s.policy_id = $1 AND s.retired_at = 0"
			       " AND g.status = 'active' AND NOT " GRANT_SPENT(
				       "$2::bigint") " ORDER BY g.seq"},
	{GT_GRANT_CLAMP, "UPDATE grants SET max_signings = $2, expires_at = $3"
			 " WHERE id = $1 AND status = 'active'"},
	/* $2: the name resolved (pg_chain_actor_name); $8..$10 the link */
	{GT_AUDIT_INSERT, "WITH h AS (" AU_LINK ") INSERT INTO audit (" AU_INS_COLS ")"
			  " VALUES ($1, $2, $3, $4, $5, $6, $7, " AU_INS_CHAIN ")"},
	{GT_AUDIT_LIST, "SELECT seq, actor_id, actor_name, action, object_type, object_id,"
			" detail, created_at FROM audit ORDER BY seq DESC" PG_PAGE("$1", "$2")},
	{GT_AUDIT_COUNT, "SELECT count(*) FROM audit"},
	{GT_AUDIT_LIST_FILTER,
	 "SELECT seq, actor_id, actor_name, action, object_type, object_id,"
	 " detail, created_at FROM audit WHERE" AU_FILTER " ORDER BY seq DESC" PG_PAGE("$5", "$6")},
	{GT_AUDIT_COUNT_FILTER, "SELECT count(*) FROM audit WHERE" AU_FILTER},
	{-1, NULL},
};

/* ---- row readers ---------------------------------------------------------- */

static srv_st_rc rd_grant(const PGresult *res, int r, int c, void *out)
{
	srv_grant *g = out;

	memset(g, 0, sizeof(*g));
	pg_col_copy(res, r, c, g->id, sizeof(g->id));
	pg_col_copy(res, r, c + 1, g->signer_id, sizeof(g->signer_id));
	pg_col_copy(res, r, c + 2, g->grantee_id, sizeof(g->grantee_id));
	pg_col_copy(res, r, c + 3, g->request_id, sizeof(g->request_id));
	pg_col_copy(res, r, c + 4, g->status, sizeof(g->status));
	g->max_signings = pg_col_ll(res, r, c + 5);
	g->used_signings = pg_col_ll(res, r, c + 6);
	g->window_start = (time_t)pg_col_ll(res, r, c + 7);
	g->expires_at = (time_t)pg_col_ll(res, r, c + 8);
	g->created_at = (time_t)pg_col_ll(res, r, c + 9);
	g->revoked_at = (time_t)pg_col_ll(res, r, c + 10);
	return SRV_ST_OK;
}

static srv_st_rc rd_audit(const PGresult *res, int r, int c, void *out)
{
	srv_audit *a = out;

	memset(a, 0, sizeof(*a));
	a->seq = pg_col_ll(res, r, c);
	pg_col_copy(res, r, c + 1, a->actor_id, sizeof(a->actor_id));
	pg_col_copy(res, r, c + 3, a->action, sizeof(a->action));
	pg_col_copy(res, r, c + 4, a->object_type, sizeof(a->object_type));
	pg_col_copy(res, r, c + 5, a->object_id, sizeof(a->object_id));
	a->created_at = (time_t)pg_col_ll(res, r, c + 7);
	a->actor_name = pg_col_dup(res, r, c + 2, "");
	a->detail = pg_col_dup(res, r, c + 6, "{}");
	if (!a->actor_name || !a->detail) {
		srv_audit_clear(a);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static void clr_grant(void *p)
{
	(void)p; /* grants own no heap memory */
}

PG_CLEARER(clr_audit, srv_audit_clear)

void pg_json_time(time_t t, char out[RS_TIME_LEN + 2])
{
	char v[RS_TIME_LEN];

	if (!t) {
		rs_strlcpy(out, "null", RS_TIME_LEN + 2);
		return;
	}
	rs_time_format(t, v);
	snprintf(out, RS_TIME_LEN + 2, "\"%s\"", v);
}

/* ---- grants ----------------------------------------------------------------------- */

srv_st_rc pg_grant_insert_on(pg_store *s, pg_conn *pc, const char *op, const srv_grant *g,
			     const char *request_id, time_t now)
{
	pg_args a = {0};

	a_text(&a, 1, g->id);
	a_text(&a, 2, g->signer_id);
	a_text(&a, 3, g->grantee_id);
	a_opt(&a, 4, request_id);
	a_int(&a, 5, g->max_signings);
	a_int(&a, 6, g->window_start);
	a_int(&a, 7, g->expires_at);
	a_int(&a, 8, g->created_at ? g->created_at : now);
	return pg_run(s, pc, op, GT_GRANT_INSERT, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_grant_get(srv_store *st, const char *id, time_t now, srv_grant *out)
{
	pg_args a = {0};

	if (!st || !id || !out)
		return pg_bad_arg("grant_get");
	a_text(&a, 1, id);
	a_int(&a, 2, now);
	return pg_get(PGS(st), "grant_get", GT_GRANT_GET, &a, rd_grant, out);
}

srv_st_rc pg_grant_list(srv_store *st, const char *signer_id, const char *status,
			const char *grantee_id, const char *visible_to, time_t now, size_t offset,
			size_t limit, srv_grant **out, size_t *n, size_t *total)
{
	pg_args a = {0};

	if (!st || (visible_to && !*visible_to))
		return pg_bad_arg("grant_list");
	a_opt(&a, 1, signer_id);
	a_opt(&a, 2, status);
	a_opt(&a, 3, grantee_id);
	a_int(&a, 4, now);
	a_opt(&a, 5, visible_to);
	pg_pager pg = {.count = GT_GRANT_COUNT,
		       .list = GT_GRANT_LIST,
		       .args = &a,
		       .nfilter = 5,
		       .rd = rd_grant,
		       .size = sizeof(**out),
		       .clr = clr_grant};
	return pg_page(PGS(st), "grant_list", &pg, offset, limit, (void **)out, n, total);
}

static srv_st_rc revoke_grant(pg_store *s, pg_conn *pc, const char *op, const char *id, time_t now)
{
	pg_args a = {0};
	srv_st_rc r;

	a_text(&a, 1, id);
	a_int(&a, 2, now);
	r = pg_run(s, pc, op, GT_GRANT_REVOKE, &a, PGRUN_MUST_CHANGE, NULL);
	if (r == SRV_ST_NOT_FOUND)
		r = pg_absent_or_conflict(s, pc, op, GT_GRANT_EXISTS, id);
	return r;
}

typedef struct {
	const char *id;
	time_t now;
} revoke_arg;

static srv_st_rc do_grant_revoke(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				 const srv_audit *a)
{
	const revoke_arg *x = arg;

	(void)a;
	return revoke_grant(s, pc, op, x->id, x->now);
}

srv_st_rc pg_grant_revoke(srv_store *st, const char *id, time_t now, const srv_audit *a)
{
	if (!st || !id || !*id)
		return pg_bad_arg("grant_revoke");
	revoke_arg x = {id, now};
	return pg_audited(PGS(st), "grant_revoke", do_grant_revoke, &x, a);
}

srv_st_rc pg_grants_revoke_signer(pg_store *s, pg_conn *pc, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base)
{
	srv_id *ids = NULL;
	size_t n = 0;
	char detail[64];
	pg_args a = {0};
	srv_st_rc r;

	snprintf(detail, sizeof(detail), "{\"why\":\"%s\"}", why);
	a_text(&a, 1, signer_id);
	a_int(&a, 2, base->created_at);
	r = pg_list(s, pc, op, GT_GRANT_ACTIVE_SIGNER, &a, pg_rd_id, sizeof(*ids), clr_grant,
		    (void **)&ids, &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		r = revoke_grant(s, pc, op, ids[i], base->created_at);
		if (r == SRV_ST_OK)
			r = pg_audit_derived(s, pc, op, base, "grant.revoke", "grant", ids[i],
					     detail);
	}
	free(ids);
	return r;
}

static int clamp_grant(srv_grant *g, const srv_policy *p)
{
	int changed = 0;

	if (p->max_signings && (!g->max_signings || g->max_signings > p->max_signings)) {
		g->max_signings = p->max_signings;
		changed = 1;
	}
	if (p->max_window &&
	    (!g->expires_at || g->expires_at > g->window_start + (time_t)p->max_window)) {
		g->expires_at = g->window_start + (time_t)p->max_window;
		changed = 1;
	}
	return changed;
}

srv_st_rc pg_grants_clamp_policy(pg_store *s, pg_conn *pc, const char *op, const srv_policy *p,
				 const srv_audit *base)
{
	srv_grant *v = NULL;
	size_t n = 0;
	char detail[256], until[RS_TIME_LEN + 2];
	pg_args a = {0};
	srv_st_rc r;

	a_text(&a, 1, p->id);
	a_int(&a, 2, base->created_at);
	r = pg_list(s, pc, op, GT_GRANT_GOVERNED, &a, rd_grant, sizeof(*v), clr_grant, (void **)&v,
		    &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		if (!clamp_grant(&v[i], p))
			continue;
		pg_args c = {0};
		a_text(&c, 1, v[i].id);
		a_int(&c, 2, v[i].max_signings);
		a_int(&c, 3, v[i].expires_at);
		if ((r = pg_run(s, pc, op, GT_GRANT_CLAMP, &c, PGRUN_MUST_CHANGE, NULL)) !=
		    SRV_ST_OK)
			break;
		pg_json_time(v[i].expires_at, until);
		snprintf(detail, sizeof(detail),
			 "{\"why\":\"policyChanged\",\"policyId\":\"%s\",\"maxSignings\":%lld,"
			 "\"expiresAt\":%s}",
			 p->id, v[i].max_signings, until);
		r = pg_audit_derived(s, pc, op, base, "grant.clamp", "grant", v[i].id, detail);
	}
	free(v);
	return r;
}

static srv_st_rc find_usable(pg_store *s, pg_conn *pc, const char *op, const char *signer_id,
			     const char *grantee_id, time_t t, srv_grant *out)
{
	pg_args a = {0};

	a_text(&a, 1, signer_id);
	a_text(&a, 2, grantee_id);
	a_int(&a, 3, t);
	return pg_one(s, pc, op, GT_GRANT_USABLE, &a, rd_grant, out);
}

srv_st_rc pg_grant_find_active(srv_store *st, const char *signer_id, const char *grantee_id,
			       time_t now, srv_grant *out)
{
	pg_args a = {0};

	if (!st || !signer_id || !grantee_id || !out)
		return pg_bad_arg("grant_find_active");
	a_text(&a, 1, signer_id);
	a_text(&a, 2, grantee_id);
	a_int(&a, 3, now);
	return pg_get(PGS(st), "grant_find_active", GT_GRANT_USABLE, &a, rd_grant, out);
}

/* Pick a usable grant, then take one use of it with the conditional UPDATE.
 * When a concurrent transaction spent it first the UPDATE changes nothing
 * (it waited for that transaction and re-checked), and the pick runs again
 * on a fresh snapshot: each round another signing was taken, so the loop
 * ends once the grants are spent (NOT_FOUND) or a use is ours. */
static srv_st_rc consume(pg_store *s, pg_conn *pc, const char *op, const srv_operation *o,
			 char grant_id_out[RS_UUID_LEN])
{
	srv_grant g;
	size_t changed = 0;
	srv_st_rc r;

	for (;;) {
		memset(&g, 0, sizeof(g));
		if ((r = find_usable(s, pc, op, o->signer_id, o->actor_id, o->created_at, &g)) !=
		    SRV_ST_OK)
			return r;
		pg_args a = {0};
		a_text(&a, 1, g.id);
		a_int(&a, 2, o->created_at);
		if ((r = pg_run(s, pc, op, GT_GRANT_USE, &a, PGRUN_PLAIN, &changed)) != SRV_ST_OK)
			return r;
		if (changed == 1)
			break;
		rs_debug("store: %s: grant %s was spent concurrently; picking again", op, g.id);
	}
	if ((r = pg_op_apply(s, pc, op, o, g.id)) == SRV_ST_OK)
		rs_strlcpy(grant_id_out, g.id, RS_UUID_LEN);
	return r;
}

srv_st_rc pg_operation_insert_consume(srv_store *st, const srv_operation *o,
				      char grant_id_out[RS_UUID_LEN])
{
	static const char op[] = "operation_insert_consume";
	pg_store *s = PGS(st);
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !o || !o->id[0] || !o->signer_id[0] || !o->actor_id[0] || !grant_id_out ||
	    strcmp(o->status, "success") != 0)
		return pg_bad_arg(op);
	grant_id_out[0] = '\0';
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	if ((r = pg_begin(s, pc, op)) != SRV_ST_OK)
		goto out;
	/* the history chain's head first, then the signer's row, then the
	 * grant's: the head before the signer as every history insert takes
	 * them (PK_OP_INSERT_TOUCH), the signer before the grant as
	 * signer_update and signer_retire do -- no deadlock among them */
	if ((r = pg_run(s, pc, op, PC_HEAD_LOCK, NULL, PGRUN_PLAIN, NULL)) != SRV_ST_OK ||
	    (r = pg_key_unused(s, pc, op, o)) != SRV_ST_OK ||
	    (r = pg_op_after(s, pc, op, o)) != SRV_ST_OK ||
	    (r = consume(s, pc, op, o, grant_id_out)) != SRV_ST_OK) {
		/* No grant left. A concurrent call with this Idempotency-Key may
		 * have taken the last signing after the check above: its record
		 * is committed by now (the grant's UPDATE waited for it, or the
		 * pick saw it spent), so look again; then the key is taken and
		 * the caller answers with that call's result, not a refusal. */
		if (r == SRV_ST_NOT_FOUND && o->idem_key[0]) {
			srv_st_rc k = pg_key_unused(s, pc, op, o);
			if (k != SRV_ST_OK)
				r = k;
		}
		pg_rollback(s, pc, op);
		goto out;
	}
	r = pg_commit(s, pc, op);
out:
	if (r == SRV_ST_OK) /* every commit of the history is a batch of 1 */
		rs_metric_observe(&rs_m_commit_batch, 1, NULL);
	if (r != SRV_ST_OK)
		grant_id_out[0] = '\0';
	pg_release(s, pc);
	return r;
}

/* ---- audit ---------------------------------------------------------------------------- */

/* The entry, linked to the audit chain (store_chain.h) in the caller's
 * transaction. */
srv_st_rc pg_audit_on(pg_store *s, pg_conn *pc, const char *op, const srv_audit *au)
{
	unsigned char body[SRV_CHAIN_LEN];
	pg_chain_buf buf;
	pg_args a = {0};
	char *name = NULL;
	srv_st_rc r;

	if ((r = pg_chain_actor_name(s, pc, op, au, &name)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, au->actor_id);
	a_text(&a, 2, name);
	a_text(&a, 3, au->action);
	a_text(&a, 4, au->object_type);
	a_text(&a, 5, au->object_id);
	a_text(&a, 6, au->detail && *au->detail ? au->detail : "{}");
	a_int(&a, 7, au->created_at);
	if (srv_chain_body_audit(au, name, body) != 0 ||
	    pg_chain_args(&a, 8, SRV_CHAIN_AUDIT, au->action, body, &buf) != 0) {
		rs_err("store: %s: cannot hash the audit entry", op);
		free(name);
		return SRV_ST_FAILED;
	}
	r = pg_run(s, pc, op, GT_AUDIT_INSERT, &a, PGRUN_PLAIN, NULL);
	free(name);
	return r;
}

srv_st_rc pg_audit_derived(pg_store *s, pg_conn *pc, const char *op, const srv_audit *base,
			   const char *action, const char *type, const char *id, const char *detail)
{
	srv_audit a = *base;

	rs_strlcpy(a.action, action, sizeof(a.action));
	rs_strlcpy(a.object_type, type, sizeof(a.object_type));
	rs_strlcpy(a.object_id, id, sizeof(a.object_id));
	a.detail = (char *)detail;
	return pg_audit_on(s, pc, op, &a);
}

srv_st_rc pg_audit_list(srv_store *st, const srv_list_filter *f, size_t offset, size_t limit,
			srv_audit **out, size_t *n, size_t *total)
{
	int by = f &&
		 ((f->actor && *f->actor) || (f->action && *f->action) || f->has_from || f->has_to);
	pg_args a = {0};

	if (by) {
		a_opt(&a, 1, f->actor);
		a_opt(&a, 2, f->action);
		pg_a_range(&a, 3, f);
	}
	pg_pager pg = {.count = by ? GT_AUDIT_COUNT_FILTER : GT_AUDIT_COUNT,
		       .list = by ? GT_AUDIT_LIST_FILTER : GT_AUDIT_LIST,
		       .args = by ? &a : NULL,
		       .nfilter = by ? 4 : 0,
		       .rd = rd_audit,
		       .size = sizeof(**out),
		       .clr = clr_audit};

	return pg_page(PGS(st), "audit_list", &pg, offset, limit, (void **)out, n, total);
}
