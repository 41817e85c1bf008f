/* SQLite storage of grants, the history insert that consumes one, and the
 * audit log (see store_sqlite.c for the connection and helpers). A grant
 * past its end or its count is reported expired by the queries themselves,
 * from the caller's `now`, and never written back: a grant read stays a
 * read. Audit entries are written only inside the transaction of the
 * change they record (sq_audited). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

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
/* ?1 signer, ?2 grantee, ?3 time. The grant ending first is used first so
 * a short window is not wasted while an open-ended grant waits. */
#define GRANT_USABLE                                                                               \
	" FROM grants g WHERE g.signer_id = ?1 AND g.grantee_id = ?2 AND g.status = 'active'"      \
	" AND g.window_start <= ?3 AND NOT " GRANT_SPENT(                                          \
		"?3") " ORDER BY g.expires_at = 0, g.expires_at, g.seq LIMIT 1"
/* ?1 signer, ?2 status, ?3 grantee, ?4 now, ?5 visible_to (NULL = any:
 * srv_may_see_grant) */
#define GRANT_WHERE                                                                                \
	" WHERE (?1 IS NULL OR g.signer_id = ?1) AND (?2 IS NULL OR " GRANT_STATUS(                \
		"?4") " = ?2) AND (?3 IS NULL OR g.grantee_id = ?3)"                               \
		      " AND (?5 IS NULL OR g.grantee_id = ?5 OR " SQ_MEMBER_OF(                    \
			      "g.signer_id", "?5") " OR " SQ_APPROVES_SIGNER("g.signer_id",        \
									     "?5") ")"

/* srv_list_filter on the audit log, each part NULL = any */
#define AU_FILTER                                                                                  \
	" (?1 IS NULL OR actor_id = ?1 OR actor_name = ?1) AND (?2 IS NULL OR action = ?2)"        \
	" AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)"

const char *const sq_grant_sql[GR_COUNT] = {
	[GR_GRANT_INSERT] = "INSERT INTO grants (id, signer_id, grantee_id, request_id, status,"
			    " max_signings, used_signings, window_start, expires_at, created_at)"
			    " VALUES (?1, ?2, ?3, ?4, 'active', ?5, 0, ?6, ?7, ?8)",
	[GR_GRANT_GET] = "SELECT " GRANT_COLS("?2") " FROM grants g WHERE g.id = ?1",
	[GR_GRANT_LIST] = "SELECT " GRANT_COLS("?4") " FROM grants g" GRANT_WHERE
						     " ORDER BY g.seq DESC" SQ_PAGE,
	[GR_GRANT_COUNT] = "SELECT count(*) FROM grants g" GRANT_WHERE,
	[GR_GRANT_REVOKE] = "UPDATE grants AS g SET status = 'revoked', revoked_at = ?2"
			    " WHERE g.id = ?1 AND g.status = 'active' AND NOT " GRANT_SPENT("?2"),
	[GR_GRANT_EXISTS] = "SELECT count(*) FROM grants WHERE id = ?1",
	[GR_GRANT_USABLE] = "SELECT " GRANT_COLS("?3") GRANT_USABLE,
	[GR_GRANT_USE] = "UPDATE grants SET used_signings = used_signings + 1"
			 " WHERE id = ?1 AND status = 'active'"
			 " AND (max_signings = 0 OR used_signings < max_signings)",
	[GR_GRANT_ACTIVE_SIGNER] =
		"SELECT g.id FROM grants g WHERE g.signer_id = ?1"
		" AND g.status = 'active' AND NOT " GRANT_SPENT("?2") " ORDER BY g.seq",
	/* the usable grants of the live signers policy ?1 governs */
	[GR_GRANT_GOVERNED] = "SELECT " GRANT_COLS(
		"?2") " FROM grants g JOIN signers s"
		      " ON s.id = g.signer_id WHERE s.policy_id = ?1 AND s.retired_at = 0"
		      " AND g.status = 'active' AND NOT " GRANT_SPENT("?2") " ORDER BY g.seq",
	[GR_GRANT_CLAMP] = "UPDATE grants SET max_signings = ?2, expires_at = ?3"
			   " WHERE id = ?1 AND status = 'active'",
	[GR_AUDIT_INSERT] = "INSERT INTO audit (actor_id, actor_name, action, object_type,"
			    " object_id, detail, created_at, chain_seq, prev_hash, body_hash, hash)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[GR_AUDIT_LIST] = "SELECT seq, actor_id, actor_name, action, object_type, object_id,"
			  " detail, created_at FROM audit ORDER BY seq DESC" SQ_PAGE,
	[GR_AUDIT_COUNT] = "SELECT count(*) FROM audit",
	[GR_AUDIT_LIST_FILTER] =
		"SELECT seq, actor_id, actor_name, action, object_type, object_id,"
		" detail, created_at FROM audit WHERE" AU_FILTER " ORDER BY seq DESC" SQ_PAGE,
	[GR_AUDIT_COUNT_FILTER] = "SELECT count(*) FROM audit WHERE" AU_FILTER,
};

/* ---- row readers ---------------------------------------------------------- */

static srv_st_rc rd_grant(sqlite3_stmt *st, int c, void *out)
{
	srv_grant *g = out;

	memset(g, 0, sizeof(*g));
	col_copy(st, c, g->id, sizeof(g->id));
	col_copy(st, c + 1, g->signer_id, sizeof(g->signer_id));
	col_copy(st, c + 2, g->grantee_id, sizeof(g->grantee_id));
	col_copy(st, c + 3, g->request_id, sizeof(g->request_id));
	col_copy(st, c + 4, g->status, sizeof(g->status));
	g->max_signings = sqlite3_column_int64(st, c + 5);
	g->used_signings = sqlite3_column_int64(st, c + 6);
	g->window_start = (time_t)sqlite3_column_int64(st, c + 7);
	g->expires_at = (time_t)sqlite3_column_int64(st, c + 8);
	g->created_at = (time_t)sqlite3_column_int64(st, c + 9);
	g->revoked_at = (time_t)sqlite3_column_int64(st, c + 10);
	return SRV_ST_OK;
}

static srv_st_rc rd_audit(sqlite3_stmt *st, int c, void *out)
{
	srv_audit *a = out;

	memset(a, 0, sizeof(*a));
	a->seq = sqlite3_column_int64(st, c);
	col_copy(st, c + 1, a->actor_id, sizeof(a->actor_id));
	col_copy(st, c + 3, a->action, sizeof(a->action));
	col_copy(st, c + 4, a->object_type, sizeof(a->object_type));
	col_copy(st, c + 5, a->object_id, sizeof(a->object_id));
	a->created_at = (time_t)sqlite3_column_int64(st, c + 7);
	a->actor_name = col_dup(st, c + 2, "");
	a->detail = col_dup(st, c + 6, "{}");
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

SQ_CLEARER(clr_audit, srv_audit_clear)

/* ---- grants ----------------------------------------------------------------------- */

/* The grant a completed approval creates (request_decide, in its
 * transaction): active, nothing used, for request_id. */
srv_st_rc sq_grant_insert_inlock(sq_store *s, const char *op, const srv_grant *g,
				 const char *request_id, time_t now)
{
	sqlite3_stmt *q = s->gr[GR_GRANT_INSERT];
	int brc = SQLITE_OK;

	b_text(q, 1, g->id, &brc);
	b_text(q, 2, g->signer_id, &brc);
	b_text(q, 3, g->grantee_id, &brc);
	b_opt(q, 4, request_id, &brc);
	b_int(q, 5, g->max_signings, &brc);
	b_int(q, 6, g->window_start, &brc);
	b_int(q, 7, g->expires_at, &brc);
	b_int(q, 8, g->created_at ? g->created_at : now, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

srv_st_rc sq_grant_get(srv_store *st, const char *id, time_t now, srv_grant *out)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !id || !out)
		return sq_bad_arg("grant_get");
	sq_lock(s);
	q = s->gr[GR_GRANT_GET];
	b_text(q, 1, id, &brc);
	b_int(q, 2, now, &brc);
	r = sq_one(s, "grant_get", q, brc, rd_grant, out);
	sq_unlock(s);
	return r;
}

typedef struct {
	const char *signer_id, *status, *grantee_id, *visible_to;
	time_t now;
} grant_filter;

static void b_grant_filter(sqlite3_stmt *q, const void *filter, int *brc)
{
	const grant_filter *f = filter;

	b_opt(q, 1, f->signer_id, brc);
	b_opt(q, 2, f->status, brc);
	b_opt(q, 3, f->grantee_id, brc);
	b_int(q, 4, f->now, brc);
	b_opt(q, 5, f->visible_to, brc);
}

srv_st_rc sq_grant_list(srv_store *st, const char *signer_id, const char *status,
			const char *grantee_id, const char *visible_to, time_t now, size_t offset,
			size_t limit, srv_grant **out, size_t *n, size_t *total)
{
	if (!st || (visible_to && !*visible_to))
		return sq_bad_arg("grant_list");
	grant_filter f = {signer_id, status, grantee_id, visible_to, now};
	sq_pager pg = {.count = SQ(st)->gr[GR_GRANT_COUNT],
		       .list = SQ(st)->gr[GR_GRANT_LIST],
		       .bind = b_grant_filter,
		       .filter = &f,
		       .rd = rd_grant,
		       .size = sizeof(**out),
		       .clr = clr_grant};
	return sq_page(SQ(st), "grant_list", &pg, offset, limit, (void **)out, n, total);
}

static srv_st_rc revoke_grant(sq_store *s, const char *op, const char *id, time_t now)
{
	sqlite3_stmt *q = s->gr[GR_GRANT_REVOKE];
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(q, 1, id, &brc);
	b_int(q, 2, now, &brc);
	r = sq_run(s, op, q, brc, RUN_MUST_CHANGE);
	if (r == SRV_ST_NOT_FOUND)
		r = sq_absent_or_conflict(s, op, s->gr[GR_GRANT_EXISTS], id);
	return r;
}

typedef struct {
	const char *id;
	time_t now;
} revoke_arg;

static srv_st_rc do_grant_revoke(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const revoke_arg *x = arg;

	(void)a;
	return revoke_grant(s, op, x->id, x->now);
}

/* CONFLICT for a grant already revoked or expired (derived at now). */
srv_st_rc sq_grant_revoke(srv_store *st, const char *id, time_t now, const srv_audit *a)
{
	if (!st || !id || !*id)
		return sq_bad_arg("grant_revoke");
	revoke_arg x = {id, now};
	return sq_audited(SQ(st), "grant_revoke", do_grant_revoke, &x, a);
}

srv_st_rc sq_grants_revoke_signer(sq_store *s, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base)
{
	sqlite3_stmt *q = s->gr[GR_GRANT_ACTIVE_SIGNER];
	srv_id *ids = NULL;
	size_t n = 0;
	char detail[64];
	int brc = SQLITE_OK;
	srv_st_rc r;

	snprintf(detail, sizeof(detail), "{\"why\":\"%s\"}", why);
	b_text(q, 1, signer_id, &brc);
	b_int(q, 2, base->created_at, &brc);
	r = sq_list(s, op, q, brc, sq_rd_id, sizeof(*ids), clr_grant, (void **)&ids, &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		r = revoke_grant(s, op, ids[i], base->created_at);
		if (r == SRV_ST_OK)
			r = sq_audit_derived(s, op, base, "grant.revoke", "grant", ids[i], detail);
	}
	free(ids);
	return r;
}

/* g within p's limits: a count no larger than maxSignings, an end no later
 * than windowStart + maxWindowDuration. 1 when that changed g. */
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

srv_st_rc sq_grants_clamp_policy(sq_store *s, const char *op, const srv_policy *p,
				 const srv_audit *base)
{
	sqlite3_stmt *q = s->gr[GR_GRANT_GOVERNED];
	srv_grant *v = NULL;
	size_t n = 0;
	char detail[256], until[RS_TIME_LEN + 2];
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(q, 1, p->id, &brc);
	b_int(q, 2, base->created_at, &brc);
	r = sq_list(s, op, q, brc, rd_grant, sizeof(*v), clr_grant, (void **)&v, &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		if (!clamp_grant(&v[i], p))
			continue;
		q = s->gr[GR_GRANT_CLAMP];
		b_text(q, 1, v[i].id, &brc);
		b_int(q, 2, v[i].max_signings, &brc);
		b_int(q, 3, v[i].expires_at, &brc);
		if ((r = sq_run(s, op, q, brc, RUN_MUST_CHANGE)) != SRV_ST_OK)
			break;
		sq_json_time(v[i].expires_at, until);
		snprintf(detail, sizeof(detail),
			 "{\"why\":\"policyChanged\",\"policyId\":\"%s\",\"maxSignings\":%lld,"
			 "\"expiresAt\":%s}",
			 p->id, v[i].max_signings, until);
		r = sq_audit_derived(s, op, base, "grant.clamp", "grant", v[i].id, detail);
	}
	free(v);
	return r;
}

static srv_st_rc find_usable(sq_store *s, const char *op, const char *signer_id,
			     const char *grantee_id, time_t t, srv_grant *out)
{
	sqlite3_stmt *q = s->gr[GR_GRANT_USABLE];
	int brc = SQLITE_OK;

	b_text(q, 1, signer_id, &brc);
	b_text(q, 2, grantee_id, &brc);
	b_int(q, 3, t, &brc);
	return sq_one(s, op, q, brc, rd_grant, out);
}

srv_st_rc sq_grant_find_active(srv_store *st, const char *signer_id, const char *grantee_id,
			       time_t now, srv_grant *out)
{
	sq_store *s = SQ(st);
	srv_st_rc r;

	if (!s || !signer_id || !grantee_id || !out)
		return sq_bad_arg("grant_find_active");
	sq_lock(s);
	r = find_usable(s, "grant_find_active", signer_id, grantee_id, now, out);
	sq_unlock(s);
	return r;
}

/* Pick, count and record, inside the caller's write transaction (BEGIN
 * IMMEDIATE holds the database's write lock from the pick to the commit, so
 * no other connection can spend the same signing). NOT_FOUND: no usable
 * grant, nothing written. */
srv_st_rc sq_op_apply_consume(sq_store *s, const char *op, const srv_operation *o,
			      char grant_id_out[RS_UUID_LEN])
{
	srv_grant g;
	int brc = SQLITE_OK;
	srv_st_rc r;

	memset(&g, 0, sizeof(g));
	if ((r = find_usable(s, op, o->signer_id, o->actor_id, o->created_at, &g)) != SRV_ST_OK)
		return r;
	sqlite3_stmt *q = s->gr[GR_GRANT_USE];
	b_text(q, 1, g.id, &brc);
	if ((r = sq_run(s, op, q, brc, RUN_MUST_CHANGE)) != SRV_ST_OK)
		return r;
	if ((r = sq_op_apply(s, op, o, g.id)) == SRV_ST_OK)
		rs_strlcpy(grant_id_out, g.id, RS_UUID_LEN);
	return r;
}

/* ---- audit ---------------------------------------------------------------------------- */

/* a->seq is assigned; actor_name "" = the actor's current name. The entry
 * is linked to the audit chain (store_chain.h) in the caller's transaction. */
srv_st_rc sq_audit_inlock(sq_store *s, const char *op, const srv_audit *a)
{
	sqlite3_stmt *q = s->gr[GR_AUDIT_INSERT];
	unsigned char body[SRV_CHAIN_LEN];
	sq_chain_cur cur;
	sq_chain_link l;
	char *name = NULL;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if ((r = sq_chain_actor_name(s, op, a, &name)) != SRV_ST_OK ||
	    (r = sq_chain_begin(s, op, SRV_CHAIN_AUDIT, &cur)) != SRV_ST_OK)
		goto out;
	if (srv_chain_body_audit(a, name, body) != 0 ||
	    sq_chain_next(&cur, a->action, body, &l) != SRV_ST_OK) {
		rs_err("store: %s: cannot hash the audit entry", op);
		r = SRV_ST_FAILED;
		goto out;
	}
	b_text(q, 1, a->actor_id, &brc);
	b_text(q, 2, name, &brc);
	b_text(q, 3, a->action, &brc);
	b_text(q, 4, a->object_type, &brc);
	b_text(q, 5, a->object_id, &brc);
	b_text(q, 6, a->detail && *a->detail ? a->detail : "{}", &brc);
	b_int(q, 7, a->created_at, &brc);
	b_int(q, 8, l.seq, &brc);
	b_text(q, 9, l.prev, &brc);
	b_text(q, 10, l.body, &brc);
	b_text(q, 11, l.hash, &brc);
	if ((r = sq_run(s, op, q, brc, RUN_PLAIN)) == SRV_ST_OK)
		r = sq_chain_end(s, op, &cur);
out:
	free(name);
	return r;
}

srv_st_rc sq_audit_derived(sq_store *s, const char *op, const srv_audit *base, const char *action,
			   const char *type, const char *id, const char *detail)
{
	srv_audit a = *base;

	rs_strlcpy(a.action, action, sizeof(a.action));
	rs_strlcpy(a.object_type, type, sizeof(a.object_type));
	rs_strlcpy(a.object_id, id, sizeof(a.object_id));
	a.detail = (char *)detail;
	return sq_audit_inlock(s, op, &a);
}

static void b_audit_filter(sqlite3_stmt *q, const void *filter, int *brc)
{
	const srv_list_filter *f = filter;

	b_opt(q, 1, f->actor, brc);
	b_opt(q, 2, f->action, brc);
	b_range(q, 3, f, brc);
}

srv_st_rc sq_audit_list(srv_store *st, const srv_list_filter *f, size_t offset, size_t limit,
			srv_audit **out, size_t *n, size_t *total)
{
	if (!st)
		return sq_bad_arg("audit_list");
	int by = f &&
		 ((f->actor && *f->actor) || (f->action && *f->action) || f->has_from || f->has_to);
	sq_pager pg = {.count = SQ(st)->gr[by ? GR_AUDIT_COUNT_FILTER : GR_AUDIT_COUNT],
		       .list = SQ(st)->gr[by ? GR_AUDIT_LIST_FILTER : GR_AUDIT_LIST],
		       .bind = by ? b_audit_filter : NULL,
		       .filter = f,
		       .rd = rd_audit,
		       .size = sizeof(**out),
		       .clr = clr_audit};
	return sq_page(SQ(st), "audit_list", &pg, offset, limit, (void **)out, n, total);
}
