/* SQLite storage of signing policies, approval requests and their decisions
 * (see store_sqlite.c for the connection and helpers, store_sqlite_grant.c
 * for the grants a completed approval creates). A pending request past its
 * expires_at is persisted as expired, at the caller's `now`, before every
 * request read or change. Approvals are bound to the policy in force: a
 * decision is checked and counted against the signer's current policy, and
 * a change of a policy, or of a signer's policy, cancels the pending
 * requests it affects in the transaction of the change. */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

/* Approvers in the order given, joined by ","; ids never hold a comma
 * (policy writes refuse them). */
#define POL_COLS                                                                                   \
	"p.id, p.name, p.required_approvals, p.max_signings, p.max_window, p.request_ttl, "        \
	"p.bypass_identities, p.created_at, p.updated_at, "                                        \
	"(SELECT group_concat(principal_id, ',') FROM (SELECT a.principal_id"                      \
	" FROM policy_approvers a WHERE a.policy_id = p.id ORDER BY a.pos)), p.mac, "              \
	"(SELECT group_concat(m, ',') FROM (SELECT coalesce(a.mac, '') AS m"                       \
	" FROM policy_approvers a WHERE a.policy_id = p.id ORDER BY a.pos)), p.bypass_claims"
#define REQ_COLS                                                                                   \
	"r.id, r.signer_id, r.policy_id, r.requester_id, r.requester_name, r.justification, "      \
	"r.signings, r.window_secs, r.status, (SELECT count(*) FROM decisions d"                   \
	" WHERE d.request_id = r.id AND d.approve = 1), r.created_at, r.expires_at, "              \
	"r.closed_at, r.grant_id"
#define DEC_COLS "request_id, approver_id, approver_name, approve, comment, created_at"
/* ?1 visible_to: NULL = every policy (srv_may_see_policy) */
#define POL_VISIBLE                                                                                \
	" WHERE (?1 IS NULL OR " SQ_APPROVES_POLICY(                                               \
		"p.id", "?1") " OR EXISTS (SELECT 1"                                               \
			      " FROM signers vs JOIN members vm ON vm.signer_id = vs.id WHERE "    \
			      "vs.policy_id = p.id"                                                \
			      " AND vm.principal_id = ?1))"
/* ?1 signer, ?2 status, ?3 visible_to: NULL = any (srv_may_see_request) */
#define REQ_WHERE                                                                                  \
	" WHERE (?1 IS NULL OR r.signer_id = ?1) AND (?2 IS NULL OR r.status = ?2)"                \
	" AND (?3 IS NULL OR r.requester_id = ?3 OR " SQ_MEMBER_OF(                                \
		"r.signer_id",                                                                     \
		"?3") " OR " SQ_APPROVES_POLICY("r.policy_id",                                     \
						"?3") " OR " SQ_APPROVES_SIGNER("r.signer_id",     \
										"?3") ")"
/* NULL -> the principal's current name -> "" */
#define NAME_OF(v, id) "coalesce(" v ", (SELECT name FROM principals WHERE id = " id "), '')"

const char *const sq_policy_sql[PL_COUNT] = {
	[PL_POL_INSERT] =
		"INSERT INTO policies (id, name, required_approvals, max_signings,"
		" max_window, request_ttl, bypass_identities, created_at, updated_at, mac,"
		" bypass_claims) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[PL_POL_UPDATE] = "UPDATE policies SET name = ?2, required_approvals = ?3,"
			  " max_signings = ?4, max_window = ?5, request_ttl = ?6,"
			  " bypass_identities = ?7, updated_at = ?9, mac = ?10,"
			  " bypass_claims = ?11 WHERE id = ?1",
	[PL_POL_GET] = "SELECT " POL_COLS " FROM policies p" SQ_BY_ID_OR_NAME("p"),
	[PL_POL_LIST] =
		"SELECT " POL_COLS " FROM policies p" POL_VISIBLE " ORDER BY p.name" SQ_PAGE,
	[PL_POL_COUNT] = "SELECT count(*) FROM policies p" POL_VISIBLE,
	[PL_POL_DELETE] = "DELETE FROM policies WHERE id = ?1",
	[PL_POL_IN_USE] = "SELECT count(*) FROM signers WHERE policy_id = ?1 AND retired_at = 0",
	/* OR IGNORE drops a repeated approver; a missing principal still
	 * fails the foreign key */
	[PL_APPR_INSERT] = "INSERT OR IGNORE INTO policy_approvers (policy_id, principal_id, pos,"
			   " mac) VALUES (?1, ?2, ?3, ?4)",
	[PL_APPR_CLEAR] = "DELETE FROM policy_approvers WHERE policy_id = ?1",
	[PL_REQ_INSERT] = "INSERT INTO requests (id, signer_id, policy_id, requester_id,"
			  " requester_name, justification, signings, window_secs, status,"
			  " created_at, expires_at)"
			  " VALUES (?1, ?2, ?3, ?4, " NAME_OF("?5", "?4") ", ?6, ?7, ?8, 'pending',"
									  " ?9, ?10)",
	[PL_REQ_EXPIRE] = "UPDATE requests SET status = 'expired', closed_at = expires_at"
			  " WHERE status = 'pending' AND expires_at <= ?1",
	[PL_REQ_GET] = "SELECT " REQ_COLS " FROM requests r WHERE r.id = ?1",
	[PL_REQ_LIST] =
		"SELECT " REQ_COLS " FROM requests r" REQ_WHERE " ORDER BY r.seq DESC" SQ_PAGE,
	[PL_REQ_COUNT] = "SELECT count(*) FROM requests r" REQ_WHERE,
	[PL_REQ_CLOSE] = "UPDATE requests SET status = ?2, closed_at = ?3"
			 " WHERE id = ?1 AND status = 'pending' AND expires_at > ?3",
	[PL_REQ_EXISTS] = "SELECT count(*) FROM requests WHERE id = ?1",
	[PL_REQ_APPROVED] = "UPDATE requests SET status = 'approved', closed_at = ?2, grant_id = ?3"
			    " WHERE id = ?1 AND status = 'pending'",
	[PL_REQ_PENDING_SIGNER] = "SELECT id FROM requests WHERE signer_id = ?1"
				  " AND status = 'pending' ORDER BY seq",
	[PL_REQ_PENDING_POLICY] = "SELECT id FROM requests WHERE policy_id = ?1"
				  " AND status = 'pending' ORDER BY seq",
	/* ?2 may decide under policy ?1: an enabled user listed in it
	 * (srv_may_decide in server/api/access.c says the same) */
	[PL_APPR_USABLE] = "SELECT count(*) FROM policy_approvers a JOIN principals u"
			   " ON u.id = a.principal_id WHERE a.policy_id = ?1"
			   " AND a.principal_id = ?2 AND u.type = 'user' AND u.disabled = 0",
	[PL_DEC_INSERT] = "INSERT INTO decisions (" DEC_COLS ")"
			  " VALUES (?1, ?2, " NAME_OF("?3", "?2") ", ?4, ?5, ?6)",
	/* the approvals that count: those of policy ?2's current usable approvers */
	[PL_DEC_COUNT] = "SELECT count(*) FROM decisions d JOIN policy_approvers a"
			 " ON a.principal_id = d.approver_id AND a.policy_id = ?2"
			 " JOIN principals u ON u.id = d.approver_id WHERE d.request_id = ?1"
			 " AND d.approve = 1 AND u.type = 'user' AND u.disabled = 0",
	[PL_DEC_LIST] = "SELECT " DEC_COLS " FROM decisions WHERE request_id = ?1"
			" ORDER BY created_at, rowid",
};

/* ---- row readers ---------------------------------------------------------- */

/* "a,b,c" -> malloc'd array; "" -> NULL, 0. -1 when out of memory or an id
 * does not fit. */
static int split_ids(const char *csv, srv_id **out, size_t *n)
{
	size_t cnt = 1, i = 0;
	const char *p, *e;
	srv_id *v;

	*out = NULL;
	*n = 0;
	if (!*csv)
		return 0;
	for (p = csv; *p; p++)
		cnt += *p == ',';
	if (!(v = calloc(cnt, sizeof(*v))))
		return -1;
	for (p = csv; i < cnt; p = e + 1, i++) {
		e = strchr(p, ',');
		if (!e)
			e = p + strlen(p);
		if ((size_t)(e - p) >= sizeof(v[i])) {
			free(v);
			return -1;
		}
		memcpy(v[i], p, (size_t)(e - p));
	}
	*out = v;
	*n = cnt;
	return 0;
}

static srv_st_rc rd_policy(sqlite3_stmt *st, int c, void *out)
{
	srv_policy *p = out;
	const unsigned char *csv = sqlite3_column_text(st, c + 9);

	memset(p, 0, sizeof(*p));
	col_copy(st, c, p->id, sizeof(p->id));
	p->required_approvals = sqlite3_column_int(st, c + 2);
	p->max_signings = sqlite3_column_int64(st, c + 3);
	p->max_window = sqlite3_column_int64(st, c + 4);
	p->request_ttl = sqlite3_column_int64(st, c + 5);
	p->bypass_identities = sqlite3_column_int(st, c + 6) != 0;
	p->created_at = (time_t)sqlite3_column_int64(st, c + 7);
	p->updated_at = (time_t)sqlite3_column_int64(st, c + 8);
	if (split_ids(csv ? (const char *)csv : "", &p->approvers, &p->n_approvers) != 0)
		return SRV_ST_FAILED;
	col_copy(st, c + 10, p->mac, sizeof(p->mac));
	p->name = col_dup(st, c + 1, "");
	int claims = sqlite3_column_type(st, c + 12) != SQLITE_NULL;
	if (claims)
		p->bypass_claims = col_dup(st, c + 12, "");
	if (!p->name || (claims && !p->bypass_claims) ||
	    srv_policy_split_macs((const char *)sqlite3_column_text(st, c + 11), p) != 0) {
		srv_policy_clear(p);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

/* A policy as read against its MACs (store_mac.c). */
static srv_st_rc check_policy(sq_store *s, srv_policy *p)
{
	return srv_policy_check_macs(s->mac, p);
}

static srv_st_rc check_policy_rec(sq_store *s, const void *rec)
{
	return check_policy(s, (srv_policy *)rec);
}

static srv_st_rc rd_request(sqlite3_stmt *st, int c, void *out)
{
	srv_request *q = out;

	memset(q, 0, sizeof(*q));
	col_copy(st, c, q->id, sizeof(q->id));
	col_copy(st, c + 1, q->signer_id, sizeof(q->signer_id));
	col_copy(st, c + 2, q->policy_id, sizeof(q->policy_id));
	col_copy(st, c + 3, q->requester_id, sizeof(q->requester_id));
	q->signings = sqlite3_column_int64(st, c + 6);
	q->window = sqlite3_column_int64(st, c + 7);
	col_copy(st, c + 8, q->status, sizeof(q->status));
	q->approvals = sqlite3_column_int(st, c + 9);
	q->created_at = (time_t)sqlite3_column_int64(st, c + 10);
	q->expires_at = (time_t)sqlite3_column_int64(st, c + 11);
	q->closed_at = (time_t)sqlite3_column_int64(st, c + 12);
	col_copy(st, c + 13, q->grant_id, sizeof(q->grant_id));
	q->requester_name = col_dup(st, c + 4, "");
	q->justification = col_dup(st, c + 5, "");
	if (!q->requester_name || !q->justification) {
		srv_request_clear(q);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_decision(sqlite3_stmt *st, int c, void *out)
{
	srv_decision *d = out;

	memset(d, 0, sizeof(*d));
	col_copy(st, c, d->request_id, sizeof(d->request_id));
	col_copy(st, c + 1, d->approver_id, sizeof(d->approver_id));
	d->approve = sqlite3_column_int(st, c + 3) != 0;
	d->created_at = (time_t)sqlite3_column_int64(st, c + 5);
	d->approver_name = col_dup(st, c + 2, "");
	d->comment = col_dup(st, c + 4, "");
	if (!d->approver_name || !d->comment) {
		srv_decision_clear(d);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

SQ_CLEARER(clr_policy, srv_policy_clear)

SQ_CLEARER(clr_request, srv_request_clear)

SQ_CLEARER(clr_decision, srv_decision_clear)

static void clr_nothing(void *p)
{
	(void)p; /* ids own no heap memory */
}

/* ---- shared steps (caller holds the lock) ---------------------------------- */

static srv_st_rc expire_requests(sq_store *s, const char *op, time_t now)
{
	int brc = SQLITE_OK;

	b_int(s->pl[PL_REQ_EXPIRE], 1, now, &brc);
	return sq_run(s, op, s->pl[PL_REQ_EXPIRE], brc, RUN_PLAIN);
}

static srv_st_rc get_request(sq_store *s, const char *op, const char *id, srv_request *out)
{
	int brc = SQLITE_OK;

	b_text(s->pl[PL_REQ_GET], 1, id, &brc);
	return sq_one(s, op, s->pl[PL_REQ_GET], brc, rd_request, out);
}

/* Tells "no such row" from "not in a state that allows this". */
srv_st_rc sq_absent_or_conflict(sq_store *s, const char *op, sqlite3_stmt *exists_q, const char *id)
{
	size_t n = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(exists_q, 1, id, &brc);
	if ((r = sq_count(s, op, exists_q, brc, &n)) != SRV_ST_OK)
		return r;
	if (n == 0)
		return SRV_ST_NOT_FOUND;
	rs_info("store: %s: not in a state that allows it", op);
	return SRV_ST_CONFLICT;
}

/* ---- policies ---------------------------------------------------------------- */

static int policy_ok(const srv_policy *p)
{
	if (!p || !p->id[0] || !p->name || !p->name[0] || p->required_approvals < 1 ||
	    p->max_signings < 0 || p->max_window < 0 || p->request_ttl <= 0 ||
	    (p->n_approvers && !p->approvers))
		return 0;
	for (size_t i = 0; i < p->n_approvers; i++)
		if (!p->approvers[i][0] || strchr(p->approvers[i], ','))
			return 0;
	return 1;
}

/* ?1 id, ?2 name, ?3 required, ?4 max_signings, ?5 max_window, ?6 ttl,
 * ?7 bypass, ?8 created_at, ?9 updated_at, ?11 bypass_claims */
static void b_policy(sqlite3_stmt *q, const srv_policy *p, int *brc)
{
	b_text(q, 1, p->id, brc);
	b_text(q, 2, p->name, brc);
	b_int(q, 3, p->required_approvals, brc);
	b_int(q, 4, p->max_signings, brc);
	b_int(q, 5, p->max_window, brc);
	b_int(q, 6, p->request_ttl, brc);
	b_int(q, 7, p->bypass_identities ? 1 : 0, brc);
	b_int(q, 8, p->created_at, brc);
	b_int(q, 9, p->updated_at, brc);
	b_opt(q, 11, p->bypass_claims, brc);
}

/* Writes the policy row with stmt (insert or update), then replaces its
 * approvers. */
static srv_st_rc policy_write(sq_store *s, const char *op, int stmt, const srv_policy *p)
{
	sqlite3_stmt *q;
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	int brc = SQLITE_OK;
	srv_st_rc r;

	if ((r = srv_rowmac_seal(s->mac, m, srv_mac_msg_policy(p, m), mac)) != SRV_ST_OK)
		return r;
	b_policy(s->pl[stmt], p, &brc);
	b_opt(s->pl[stmt], 10, mac, &brc);
	if ((r = sq_run(s, op, s->pl[stmt], brc, RUN_MUST_CHANGE)) != SRV_ST_OK)
		return r;
	q = s->pl[PL_APPR_CLEAR];
	b_text(q, 1, p->id, &brc);
	if ((r = sq_run(s, op, q, brc, RUN_PLAIN)) != SRV_ST_OK)
		return r;
	q = s->pl[PL_APPR_INSERT];
	for (size_t i = 0; i < p->n_approvers; i++) {
		size_t n = srv_mac_msg_approver(p->id, p->approvers[i], m);
		if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
			return r;
		b_text(q, 1, p->id, &brc);
		b_text(q, 2, p->approvers[i], &brc);
		b_int(q, 3, (sqlite3_int64)i, &brc);
		b_opt(q, 4, mac, &brc);
		if ((r = sq_run(s, op, q, brc, RUN_PLAIN)) != SRV_ST_OK)
			return r; /* NOT_FOUND: no such principal */
	}
	return SRV_ST_OK;
}

static srv_st_rc do_policy_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	(void)a;
	return policy_write(s, op, PL_POL_INSERT, arg);
}

srv_st_rc sq_policy_insert(srv_store *st, const srv_policy *p, const srv_audit *a)
{
	if (!st || !policy_ok(p))
		return sq_bad_arg("policy_insert");
	return sq_audited(SQ(st), "policy_insert", do_policy_insert, p, a);
}

static int listed(const srv_policy *p, const char *id)
{
	for (size_t i = 0; i < p->n_approvers; i++)
		if (strcmp(p->approvers[i], id) == 0)
			return 1;
	return 0;
}

/* Whether approvals under `before` would be decided or bounded otherwise
 * under `after`: who approves, how many, what a grant may allow. */
static int approval_rules_differ(const srv_policy *before, const srv_policy *after)
{
	int differ = before->required_approvals != after->required_approvals ||
		     before->max_signings != after->max_signings ||
		     before->max_window != after->max_window;

	for (size_t i = 0; !differ && i < before->n_approvers; i++)
		differ = !listed(after, before->approvers[i]);
	for (size_t i = 0; !differ && i < after->n_approvers; i++)
		differ = !listed(before, after->approvers[i]);
	return differ;
}

/* Cancels every pending request stmt finds (?1 = key), each audited. */
static srv_st_rc cancel_pending(sq_store *s, const char *op, int stmt, const char *key,
				const char *detail, const srv_audit *base);

static srv_st_rc do_policy_update(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const srv_policy *p = arg;
	srv_policy before;
	char detail[128];
	int brc = SQLITE_OK;
	srv_st_rc r;

	memset(&before, 0, sizeof(before));
	b_text(s->pl[PL_POL_GET], 1, p->id, &brc);
	if ((r = sq_one(s, op, s->pl[PL_POL_GET], brc, rd_policy, &before)) != SRV_ST_OK)
		return r;
	int same_id = strcmp(before.id, p->id) == 0; /* else a name matched */
	int differ = approval_rules_differ(&before, p);
	srv_policy_clear(&before);
	if (!same_id)
		return SRV_ST_NOT_FOUND;
	if ((r = policy_write(s, op, PL_POL_UPDATE, p)) != SRV_ST_OK || !differ)
		return r;
	snprintf(detail, sizeof(detail), "{\"why\":\"policyChanged\",\"policyId\":\"%s\"}", p->id);
	if ((r = cancel_pending(s, op, PL_REQ_PENDING_POLICY, p->id, detail, a)) != SRV_ST_OK)
		return r;
	return sq_grants_clamp_policy(s, op, p, a);
}

/* Updates everything but id and created_at; the approvers are replaced. */
srv_st_rc sq_policy_update(srv_store *st, const srv_policy *p, const srv_audit *a)
{
	if (!st || !policy_ok(p))
		return sq_bad_arg("policy_update");
	return sq_audited(SQ(st), "policy_update", do_policy_update, p, a);
}

srv_st_rc sq_policy_get(srv_store *st, const char *id_or_name, srv_policy *out)
{
	srv_st_rc r;

	if (!st || !out)
		return sq_bad_arg("policy_get");
	r = sq_get(SQ(st), "policy_get", SQ(st)->pl[PL_POL_GET], id_or_name, rd_policy, out);
	if (r == SRV_ST_OK && (r = check_policy(SQ(st), out)) != SRV_ST_OK)
		srv_policy_clear(out);
	return r;
}

static void b_visible(sqlite3_stmt *q, const void *visible_to, int *brc)
{
	b_opt(q, 1, visible_to, brc);
}

srv_st_rc sq_policy_list(srv_store *st, const char *visible_to, size_t offset, size_t limit,
			 srv_policy **out, size_t *n, size_t *total)
{
	/* visible_to "" would show everything; treat it as a bug */
	if (!st || (visible_to && !*visible_to))
		return sq_bad_arg("policy_list");
	sq_pager pg = {.count = SQ(st)->pl[PL_POL_COUNT],
		       .list = SQ(st)->pl[PL_POL_LIST],
		       .bind = b_visible,
		       .filter = visible_to,
		       .rd = rd_policy,
		       .size = sizeof(**out),
		       .clr = clr_policy};
	srv_st_rc r = sq_page(SQ(st), "policy_list", &pg, offset, limit, (void **)out, n, total);
	if (r == SRV_ST_OK && (r = sq_filter(SQ(st), *out, n, sizeof(**out), check_policy_rec,
					     clr_policy)) != SRV_ST_OK) {
		srv_policy_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	if (r == SRV_ST_OK && *n == 0) { /* every row refused: none, as sq_list says */
		free(*out);
		*out = NULL;
	}
	return r;
}

/* signers.policy_id has no foreign key (migration 1 predates policies), so
 * "still used" is checked in the same transaction as the delete. */
static srv_st_rc do_policy_delete(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const char *id = arg;
	size_t users = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	(void)a;
	b_text(s->pl[PL_POL_IN_USE], 1, id, &brc);
	if ((r = sq_count(s, op, s->pl[PL_POL_IN_USE], brc, &users)) != SRV_ST_OK)
		return r;
	if (users) {
		rs_info("store: %s: %zu signer(s) still use the policy", op, users);
		return SRV_ST_CONFLICT;
	}
	b_text(s->pl[PL_POL_DELETE], 1, id, &brc);
	return sq_run(s, op, s->pl[PL_POL_DELETE], brc, RUN_MUST_CHANGE | RUN_DELETE);
}

srv_st_rc sq_policy_delete(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id || !*id)
		return sq_bad_arg("policy_delete");
	return sq_audited(SQ(st), "policy_delete", do_policy_delete, id, a);
}

/* ---- requests and decisions -------------------------------------------------- */

static srv_st_rc do_request_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const srv_request *q = arg;
	sqlite3_stmt *x = s->pl[PL_REQ_INSERT];
	int brc = SQLITE_OK;

	(void)a;
	b_text(x, 1, q->id, &brc);
	b_text(x, 2, q->signer_id, &brc);
	b_text(x, 3, q->policy_id, &brc);
	b_text(x, 4, q->requester_id, &brc);
	b_opt(x, 5, q->requester_name, &brc);
	b_text(x, 6, q->justification, &brc);
	b_int(x, 7, q->signings, &brc);
	b_int(x, 8, q->window, &brc);
	b_int(x, 9, q->created_at, &brc);
	b_int(x, 10, q->expires_at, &brc);
	return sq_run(s, op, x, brc, RUN_PLAIN);
}

/* A new request is always pending: q->status, approvals, closed_at and
 * grant_id are ignored. requester_name "" = the requester's current name. */
srv_st_rc sq_request_insert(srv_store *st, const srv_request *q, const srv_audit *a)
{
	if (!st || !q || !q->id[0] || !q->signer_id[0] || !q->policy_id[0] || !q->requester_id[0] ||
	    q->signings < 0 || q->window < 0 || q->expires_at <= 0)
		return sq_bad_arg("request_insert");
	return sq_audited(SQ(st), "request_insert", do_request_insert, q, a);
}

srv_st_rc sq_request_get(srv_store *st, const char *id, time_t now, srv_request *out)
{
	static const char op[] = "request_get";
	sq_store *s = SQ(st);
	srv_st_rc r;

	if (!s || !id || !out)
		return sq_bad_arg(op);
	sq_lock(s);
	if ((r = expire_requests(s, op, now)) == SRV_ST_OK)
		r = get_request(s, op, id, out);
	sq_unlock(s);
	return r;
}

typedef struct {
	const char *signer_id, *status, *visible_to;
} req_filter;

static void b_req_filter(sqlite3_stmt *q, const void *filter, int *brc)
{
	const req_filter *f = filter;

	b_opt(q, 1, f->signer_id, brc);
	b_opt(q, 2, f->status, brc);
	b_opt(q, 3, f->visible_to, brc);
}

srv_st_rc sq_request_list(srv_store *st, const char *signer_id, const char *status,
			  const char *visible_to, time_t now, size_t offset, size_t limit,
			  srv_request **out, size_t *n, size_t *total)
{
	static const char op[] = "request_list";
	sq_store *s = SQ(st);
	srv_st_rc r;

	if (!s || !out || !n || !total || (visible_to && !*visible_to))
		return sq_bad_arg(op);
	*out = NULL;
	*n = 0;
	*total = 0;
	req_filter f = {signer_id, status, visible_to};
	sq_pager pg = {.count = s->pl[PL_REQ_COUNT],
		       .list = s->pl[PL_REQ_LIST],
		       .bind = b_req_filter,
		       .filter = &f,
		       .rd = rd_request,
		       .size = sizeof(**out),
		       .clr = clr_request};
	sq_lock(s);
	if ((r = expire_requests(s, op, now)) == SRV_ST_OK)
		r = sq_page_inlock(s, op, &pg, offset, limit, (void **)out, n, total);
	sq_unlock(s);
	return r;
}

/* Closes a pending, unexpired request as `to` at now (the caller has swept
 * expiry at now); NOT_FOUND or CONFLICT otherwise. */
static srv_st_rc close_request(sq_store *s, const char *op, const char *id, const char *to,
			       time_t now)
{
	sqlite3_stmt *q = s->pl[PL_REQ_CLOSE];
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(q, 1, id, &brc);
	b_text(q, 2, to, &brc);
	b_int(q, 3, now, &brc);
	r = sq_run(s, op, q, brc, RUN_MUST_CHANGE);
	if (r == SRV_ST_NOT_FOUND)
		r = sq_absent_or_conflict(s, op, s->pl[PL_REQ_EXISTS], id);
	return r;
}

static srv_st_rc cancel_pending(sq_store *s, const char *op, int stmt, const char *key,
				const char *detail, const srv_audit *base)
{
	srv_id *ids = NULL;
	size_t n = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if ((r = expire_requests(s, op, base->created_at)) != SRV_ST_OK)
		return r;
	b_text(s->pl[stmt], 1, key, &brc);
	r = sq_list(s, op, s->pl[stmt], brc, sq_rd_id, sizeof(*ids), clr_nothing, (void **)&ids,
		    &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		r = close_request(s, op, ids[i], "cancelled", base->created_at);
		if (r == SRV_ST_OK)
			r = sq_audit_derived(s, op, base, "request.cancel", "request", ids[i],
					     detail);
	}
	free(ids);
	return r;
}

srv_st_rc sq_end_signer_approvals(sq_store *s, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base)
{
	char detail[64];
	srv_st_rc r;

	snprintf(detail, sizeof(detail), "{\"why\":\"%s\"}", why);
	if ((r = cancel_pending(s, op, PL_REQ_PENDING_SIGNER, signer_id, detail, base)) !=
	    SRV_ST_OK)
		return r;
	return sq_grants_revoke_signer(s, op, signer_id, why, base);
}

/* What was requested, within what the policy allows now (0 = no limit). */
static long long clamp(long long wanted, long long limit)
{
	if (!limit)
		return wanted;
	return wanted && wanted < limit ? wanted : limit;
}

/* The request is pending under p when this runs: inserts the grant and
 * marks the request approved with it. */
static srv_st_rc approve_request(sq_store *s, const char *op, const srv_request *q,
				 const srv_policy *p, const char *grant_id, time_t now,
				 const srv_audit *a)
{
	sqlite3_stmt *x = s->pl[PL_REQ_APPROVED];
	char detail[320], until[RS_TIME_LEN + 2] = "null";
	int brc = SQLITE_OK;
	srv_st_rc r;

	srv_grant g = {.max_signings = clamp(q->signings, p->max_signings),
		       .window_start = now,
		       .created_at = now};
	long long window = clamp(q->window, p->max_window);
	g.expires_at = window ? now + (time_t)window : 0;
	rs_strlcpy(g.id, grant_id, sizeof(g.id));
	rs_strlcpy(g.signer_id, q->signer_id, sizeof(g.signer_id));
	rs_strlcpy(g.grantee_id, q->requester_id, sizeof(g.grantee_id));
	if ((r = sq_grant_insert_inlock(s, op, &g, q->id, now)) != SRV_ST_OK)
		return r;
	b_text(x, 1, q->id, &brc);
	b_int(x, 2, now, &brc);
	b_text(x, 3, g.id, &brc);
	if ((r = sq_run(s, op, x, brc, RUN_MUST_CHANGE)) != SRV_ST_OK)
		return r;
	sq_json_time(g.expires_at, until);
	snprintf(detail, sizeof(detail),
		 "{\"requestId\":\"%s\",\"granteeId\":\"%s\",\"policyId\":\"%s\","
		 "\"maxSignings\":%lld,\"expiresAt\":%s}",
		 q->id, q->requester_id, p->id, g.max_signings, until);
	return sq_audit_derived(s, op, a, "grant.create", "grant", g.id, detail);
}

typedef struct {
	const srv_decision *d;
	const char *grant_id;
	time_t now;
	srv_request *after;
	srv_decide_why *why;
} decide_arg;

static srv_st_rc refuse(srv_decide_why *why, srv_decide_why w, const char *op, const char *what)
{
	*why = w;
	rs_info("store: %s: %s", op, what);
	return SRV_ST_CONFLICT;
}

/* The request's policy, read only while it is still its signer's. */
static srv_st_rc policy_in_force(sq_store *s, const char *op, const srv_request *q, srv_policy *p,
				 srv_decide_why *why)
{
	char current[RS_UUID_LEN] = "";
	time_t retired = 0;
	int brc = SQLITE_OK;
	srv_st_rc r = sq_signer_state(s, op, q->signer_id, current, &retired);

	if (r == SRV_ST_OK && !retired && strcmp(current, q->policy_id) == 0) {
		b_text(s->pl[PL_POL_GET], 1, q->policy_id, &brc);
		r = sq_one(s, op, s->pl[PL_POL_GET], brc, rd_policy, p);
		if (r == SRV_ST_OK && (r = check_policy(s, p)) != SRV_ST_OK)
			srv_policy_clear(p);
		if (r == SRV_ST_OK && strcmp(p->id, q->policy_id) == 0)
			return SRV_ST_OK;
	}
	if (r != SRV_ST_OK && r != SRV_ST_NOT_FOUND)
		return r;
	return refuse(why, SRV_DECIDE_POLICY_CHANGED, op,
		      "the signer is retired or no longer under the request's policy");
}

/* The request, its signer's current policy, and whether the approver may
 * decide under it, in this order; then the decision. */
static srv_st_rc do_request_decide(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const decide_arg *x = arg;
	const srv_decision *d = x->d;
	srv_request q;
	srv_policy p;
	size_t n = 0;
	sqlite3_stmt *st;
	int brc = SQLITE_OK;
	srv_st_rc r;

	memset(&q, 0, sizeof(q));
	memset(&p, 0, sizeof(p));
	if ((r = expire_requests(s, op, x->now)) != SRV_ST_OK ||
	    (r = get_request(s, op, d->request_id, &q)) != SRV_ST_OK)
		goto out;
	if (strcmp(q.status, "pending") != 0) {
		r = refuse(x->why, SRV_DECIDE_CLOSED, op, "the request is not pending");
		goto out;
	}
	if ((r = policy_in_force(s, op, &q, &p, x->why)) != SRV_ST_OK)
		goto out;
	st = s->pl[PL_APPR_USABLE];
	b_text(st, 1, p.id, &brc);
	b_text(st, 2, d->approver_id, &brc);
	if ((r = sq_count(s, op, st, brc, &n)) != SRV_ST_OK)
		goto out;
	if (n == 0) {
		r = refuse(x->why, SRV_DECIDE_NOT_APPROVER, op, "not an approver of the policy");
		goto out;
	}
	if (strcmp(d->approver_id, q.requester_id) == 0) {
		r = refuse(x->why, SRV_DECIDE_OWN, op, "the approver is the requester");
		goto out;
	}
	st = s->pl[PL_DEC_INSERT];
	b_text(st, 1, d->request_id, &brc);
	b_text(st, 2, d->approver_id, &brc);
	b_opt(st, 3, d->approver_name, &brc);
	b_int(st, 4, d->approve ? 1 : 0, &brc);
	b_text(st, 5, d->comment, &brc);
	b_int(st, 6, d->created_at ? d->created_at : x->now, &brc);
	if ((r = sq_run(s, op, st, brc, RUN_PLAIN)) == SRV_ST_CONFLICT) {
		r = refuse(x->why, SRV_DECIDE_TWICE, op, "this approver decided before");
		goto out;
	}
	if (r != SRV_ST_OK)
		goto out;
	if (!d->approve) {
		r = close_request(s, op, d->request_id, "rejected", x->now);
	} else {
		st = s->pl[PL_DEC_COUNT];
		b_text(st, 1, d->request_id, &brc);
		b_text(st, 2, p.id, &brc);
		r = sq_count(s, op, st, brc, &n);
		if (r == SRV_ST_OK && n >= (size_t)p.required_approvals)
			r = approve_request(s, op, &q, &p, x->grant_id, x->now, a);
	}
	if (r == SRV_ST_OK)
		r = get_request(s, op, d->request_id, x->after);
out:
	srv_request_clear(&q);
	srv_policy_clear(&p);
	return r;
}

/* BEGIN IMMEDIATE makes check-then-write safe against other connections;
 * the mutex against this one's other threads. */
srv_st_rc sq_request_decide(srv_store *st, const srv_decision *d, const char *grant_id, time_t now,
			    srv_request *after, srv_decide_why *why, const srv_audit *a)
{
	static const char op[] = "request_decide";
	srv_decide_why ignored;

	if (!st || !d || !d->request_id[0] || !d->approver_id[0] || !after ||
	    (d->approve && (!grant_id || !grant_id[0])))
		return sq_bad_arg(op);
	memset(after, 0, sizeof(*after));
	if (!why)
		why = &ignored;
	*why = SRV_DECIDE_OK;
	decide_arg x = {d, grant_id, now, after, why};
	srv_st_rc r = sq_audited(SQ(st), op, do_request_decide, &x, a);
	if (r != SRV_ST_OK)
		srv_request_clear(after);
	return r;
}

srv_st_rc sq_decision_list(srv_store *st, const char *request_id, srv_decision **out, size_t *n)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !request_id || !out || !n)
		return sq_bad_arg("decision_list");
	sq_lock(s);
	b_text(s->pl[PL_DEC_LIST], 1, request_id, &brc);
	r = sq_list(s, "decision_list", s->pl[PL_DEC_LIST], brc, rd_decision, sizeof(**out),
		    clr_decision, (void **)out, n);
	sq_unlock(s);
	return r;
}

typedef struct {
	const char *id, *to;
	time_t now;
} close_arg;

static srv_st_rc do_request_close(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const close_arg *x = arg;
	srv_st_rc r;

	(void)a;
	if ((r = expire_requests(s, op, x->now)) != SRV_ST_OK)
		return r;
	return close_request(s, op, x->id, x->to, x->now);
}

srv_st_rc sq_request_close(srv_store *st, const char *id, const char *to, time_t now,
			   const srv_audit *a)
{
	static const char op[] = "request_close";

	/* approval goes through request_decide, which creates the grant */
	if (!st || !id || !to ||
	    (strcmp(to, "cancelled") != 0 && strcmp(to, "rejected") != 0 &&
	     strcmp(to, "expired") != 0))
		return sq_bad_arg(op);
	close_arg x = {id, to, now};
	return sq_audited(SQ(st), op, do_request_close, &x, a);
}
