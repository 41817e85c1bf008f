/* PostgreSQL storage of signing policies, approval requests and their
 * decisions (see store_pg.c for the pool and helpers, store_pg_grant.c for
 * the grants a completed approval creates). The rules are the SQLite
 * store's (store_sqlite_policy.c): a pending request past its expires_at is
 * persisted as expired before every request read or change, and approvals
 * are bound to the policy in force. Changes run under the store-wide write
 * lock (pg_audited), so check-then-write holds across replicas. */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"

/* Approvers in the order given, joined by ","; ids never hold a comma
 * (policy writes refuse them). */
#define POL_COLS                                                                                   \
	"p.id, p.name, p.required_approvals, p.max_signings, p.max_window, p.request_ttl, "        \
	"p.bypass_identities, p.created_at, p.updated_at, "                                        \
	"(SELECT string_agg(a.principal_id, ',' ORDER BY a.pos)"                                   \
	" FROM policy_approvers a WHERE a.policy_id = p.id), p.mac, "                              \
	"(SELECT string_agg(coalesce(a.mac, ''), ',' ORDER BY a.pos)"                              \
	" FROM policy_approvers a WHERE a.policy_id = p.id), p.bypass_claims"
#define REQ_COLS                                                                                   \
	"r.id, r.signer_id, r.policy_id, r.requester_id, r.requester_name, r.justification, "      \
	"r.signings, r.window_secs, r.status, (SELECT count(*) FROM decisions d"                   \
	" WHERE d.request_id = r.id AND d.approve = 1), r.created_at, r.expires_at, "              \
	"r.closed_at, r.grant_id"
#define DEC_COLS "request_id, approver_id, approver_name, approve, comment, created_at"
/* $1 visible_to: NULL = every policy (srv_may_see_policy) */
#define POL_VISIBLE                                                                                \
	" WHERE ($1::text IS NULL OR " PG_APPROVES_POLICY(                                         \
		"p.id", "$1::text") " OR EXISTS (SELECT"                                           \
				    " 1"                                                           \
				    " FROM signers vs JOIN members vm ON vm.signer_id = vs.id "    \
				    "WHERE vs.policy_id = p.id"                                    \
				    " AND vm.principal_id = $1::text))"
/* $1 signer, $2 status, $3 visible_to: NULL = any (srv_may_see_request) */
#define REQ_WHERE                                                                                  \
	" WHERE ($1::text IS NULL OR r.signer_id = $1::text)"                                      \
	" AND ($2::text IS NULL OR r.status = $2::text)"                                           \
	" AND ($3::text IS NULL OR r.requester_id = $3::text OR " PG_MEMBER_OF(                    \
		"r.signer_id",                                                                     \
		"$3::text") " OR " PG_APPROVES_POLICY("r.policy_id",                               \
						      "$3::text") " OR " PG_APPROVES_SIGNER("r."   \
											    "sign" \
											    "er_"  \
											    "id",  \
											    "$3::" \
											    "tex"  \
											    "t") ")"

const pg_sql pg_policy_sql[] = {
	{PO_POL_INSERT, "INSERT INTO policies (id, name, required_approvals, max_signings,"
			" max_window, request_ttl, bypass_identities, created_at, updated_at, mac,"
			" bypass_claims) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
	/* $8 (created_at) is not changed; named so the parameters match insert's */
	{PO_POL_UPDATE, "UPDATE policies SET name = $2, required_approvals = $3,"
			" max_signings = $4, max_window = $5, request_ttl = $6,"
			" bypass_identities = $7, updated_at = $9, mac = $10,"
			" bypass_claims = $11 WHERE id = $1 AND $8::bigint IS NOT NULL"},
	{PO_POL_GET, "SELECT " POL_COLS " FROM policies p" PG_BY_ID_OR_NAME("p")},
	{PO_POL_LIST,
	 "SELECT " POL_COLS " FROM policies p" POL_VISIBLE " ORDER BY p.name" PG_PAGE("$2", "$3")},
	{PO_POL_COUNT, "SELECT count(*) FROM policies p" POL_VISIBLE},
	{PO_POL_DELETE, "DELETE FROM policies WHERE id = $1"},
	{PO_POL_IN_USE, "SELECT count(*) FROM signers WHERE policy_id = $1 AND retired_at = 0"},
	/* a repeated approver is dropped; a missing principal still fails the
	 * foreign key */
	{PO_APPR_INSERT, "INSERT INTO policy_approvers (policy_id, principal_id, pos, mac)"
			 " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"},
	{PO_APPR_CLEAR, "DELETE FROM policy_approvers WHERE policy_id = $1"},
	{PO_REQ_INSERT, "INSERT INTO requests (id, signer_id, policy_id, requester_id,"
			" requester_name, justification, signings, window_secs, status,"
			" created_at, expires_at)"
			" VALUES ($1, $2, $3, $4::text, " PG_NAME_OF("$5", "$4::text") ", $6, $7,"
										       " $8, "
										       "'pending',"
										       " $9, $10)"},
	{PO_REQ_EXPIRE, "UPDATE requests SET status = 'expired', closed_at = expires_at"
			" WHERE status = 'pending' AND expires_at <= $1"},
	{PO_REQ_GET, "SELECT " REQ_COLS " FROM requests r WHERE r.id = $1"},
	{PO_REQ_LIST, "SELECT " REQ_COLS " FROM requests r" REQ_WHERE
		      " ORDER BY r.seq DESC" PG_PAGE("$4", "$5")},
	{PO_REQ_COUNT, "SELECT count(*) FROM requests r" REQ_WHERE},
	{PO_REQ_CLOSE, "UPDATE requests SET status = $2, closed_at = $3"
		       " WHERE id = $1 AND status = 'pending' AND expires_at > $3"},
	{PO_REQ_EXISTS, "SELECT count(*) FROM requests WHERE id = $1"},
	{PO_REQ_APPROVED, "UPDATE requests SET status = 'approved', closed_at = $2, grant_id = $3"
			  " WHERE id = $1 AND status = 'pending'"},
	{PO_REQ_PENDING_SIGNER, "SELECT id FROM requests WHERE signer_id = $1"
				" AND status = 'pending' ORDER BY seq"},
	{PO_REQ_PENDING_POLICY, "SELECT id FROM requests WHERE policy_id = $1"
				" AND status = 'pending' ORDER BY seq"},
	{PO_APPR_USABLE, "SELECT count(*) FROM policy_approvers a JOIN principals u"
			 " ON u.id = a.principal_id WHERE a.policy_id = $1"
			 " AND a.principal_id = $2 AND u.type = 'user' AND u.disabled = 0"},
	{PO_DEC_INSERT, "INSERT INTO decisions (" DEC_COLS ")"
			" VALUES ($1, $2::text, " PG_NAME_OF("$3", "$2::text") ", $4, $5, $6)"},
	{PO_DEC_COUNT, "SELECT count(*) FROM decisions d JOIN policy_approvers a"
		       " ON a.principal_id = d.approver_id AND a.policy_id = $2"
		       " JOIN principals u ON u.id = d.approver_id WHERE d.request_id = $1"
		       " AND d.approve = 1 AND u.type = 'user' AND u.disabled = 0"},
	{PO_DEC_LIST, "SELECT " DEC_COLS " FROM decisions WHERE request_id = $1"
		      " ORDER BY created_at, seq"},
	{-1, NULL},
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

/* A policy as read against its MACs (store_mac.c). */
static srv_st_rc check_policy(pg_store *s, srv_policy *p)
{
	return srv_policy_check_macs(s->mac, p);
}

static srv_st_rc check_policy_rec(pg_store *s, const void *rec)
{
	return check_policy(s, (srv_policy *)rec);
}

static srv_st_rc rd_policy(const PGresult *res, int r, int c, void *out)
{
	srv_policy *p = out;

	memset(p, 0, sizeof(*p));
	pg_col_copy(res, r, c, p->id, sizeof(p->id));
	p->required_approvals = (int)pg_col_ll(res, r, c + 2);
	p->max_signings = pg_col_ll(res, r, c + 3);
	p->max_window = pg_col_ll(res, r, c + 4);
	p->request_ttl = pg_col_ll(res, r, c + 5);
	p->bypass_identities = pg_col_ll(res, r, c + 6) != 0;
	p->created_at = (time_t)pg_col_ll(res, r, c + 7);
	p->updated_at = (time_t)pg_col_ll(res, r, c + 8);
	if (split_ids(PQgetisnull(res, r, c + 9) ? "" : PQgetvalue(res, r, c + 9), &p->approvers,
		      &p->n_approvers) != 0)
		return SRV_ST_FAILED;
	pg_col_copy(res, r, c + 10, p->mac, sizeof(p->mac));
	p->name = pg_col_dup(res, r, c + 1, "");
	int claims = !PQgetisnull(res, r, c + 12);
	if (claims)
		p->bypass_claims = pg_col_dup(res, r, c + 12, "");
	if (!p->name || (claims && !p->bypass_claims) ||
	    srv_policy_split_macs(PQgetisnull(res, r, c + 11) ? "" : PQgetvalue(res, r, c + 11),
				  p) != 0) {
		srv_policy_clear(p);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_request(const PGresult *res, int r, int c, void *out)
{
	srv_request *q = out;

	memset(q, 0, sizeof(*q));
	pg_col_copy(res, r, c, q->id, sizeof(q->id));
	pg_col_copy(res, r, c + 1, q->signer_id, sizeof(q->signer_id));
	pg_col_copy(res, r, c + 2, q->policy_id, sizeof(q->policy_id));
	pg_col_copy(res, r, c + 3, q->requester_id, sizeof(q->requester_id));
	q->signings = pg_col_ll(res, r, c + 6);
	q->window = pg_col_ll(res, r, c + 7);
	pg_col_copy(res, r, c + 8, q->status, sizeof(q->status));
	q->approvals = (int)pg_col_ll(res, r, c + 9);
	q->created_at = (time_t)pg_col_ll(res, r, c + 10);
	q->expires_at = (time_t)pg_col_ll(res, r, c + 11);
	q->closed_at = (time_t)pg_col_ll(res, r, c + 12);
	pg_col_copy(res, r, c + 13, q->grant_id, sizeof(q->grant_id));
	q->requester_name = pg_col_dup(res, r, c + 4, "");
	q->justification = pg_col_dup(res, r, c + 5, "");
	if (!q->requester_name || !q->justification) {
		srv_request_clear(q);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_decision(const PGresult *res, int r, int c, void *out)
{
	srv_decision *d = out;

	memset(d, 0, sizeof(*d));
	pg_col_copy(res, r, c, d->request_id, sizeof(d->request_id));
	pg_col_copy(res, r, c + 1, d->approver_id, sizeof(d->approver_id));
	d->approve = pg_col_ll(res, r, c + 3) != 0;
	d->created_at = (time_t)pg_col_ll(res, r, c + 5);
	d->approver_name = pg_col_dup(res, r, c + 2, "");
	d->comment = pg_col_dup(res, r, c + 4, "");
	if (!d->approver_name || !d->comment) {
		srv_decision_clear(d);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

PG_CLEARER(clr_policy, srv_policy_clear)

PG_CLEARER(clr_request, srv_request_clear)

PG_CLEARER(clr_decision, srv_decision_clear)

static void clr_nothing(void *p)
{
	(void)p; /* ids own no heap memory */
}

/* ---- shared steps ---------------------------------------------------------- */

static srv_st_rc expire_requests(pg_store *s, pg_conn *pc, const char *op, time_t now)
{
	pg_args a = {0};

	a_int(&a, 1, now);
	return pg_run(s, pc, op, PO_REQ_EXPIRE, &a, PGRUN_PLAIN, NULL);
}

static srv_st_rc get_request(pg_store *s, pg_conn *pc, const char *op, const char *id,
			     srv_request *out)
{
	pg_args a = {0};

	a_text(&a, 1, id);
	return pg_one(s, pc, op, PO_REQ_GET, &a, rd_request, out);
}

srv_st_rc pg_absent_or_conflict(pg_store *s, pg_conn *pc, const char *op, int exists_q,
				const char *id)
{
	pg_args a = {0};
	size_t n = 0;
	srv_st_rc r;

	a_text(&a, 1, id);
	if ((r = pg_count(s, pc, op, exists_q, &a, &n)) != SRV_ST_OK)
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

/* Writes the policy row with stmt (insert or update), then replaces its
 * approvers. */
static srv_st_rc policy_write(pg_store *s, pg_conn *pc, const char *op, int stmt,
			      const srv_policy *p)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_st_rc r;

	if ((r = srv_rowmac_seal(s->mac, m, srv_mac_msg_policy(p, m), mac)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, p->id);
	a_text(&a, 2, p->name);
	a_int(&a, 3, p->required_approvals);
	a_int(&a, 4, p->max_signings);
	a_int(&a, 5, p->max_window);
	a_int(&a, 6, p->request_ttl);
	a_int(&a, 7, p->bypass_identities ? 1 : 0);
	a_int(&a, 8, p->created_at);
	a_int(&a, 9, p->updated_at);
	a_opt(&a, 10, mac);
	a_opt(&a, 11, p->bypass_claims);
	if ((r = pg_run(s, pc, op, stmt, &a, PGRUN_MUST_CHANGE, NULL)) != SRV_ST_OK)
		return r;
	memset(&a, 0, sizeof(a));
	a_text(&a, 1, p->id);
	if ((r = pg_run(s, pc, op, PO_APPR_CLEAR, &a, PGRUN_PLAIN, NULL)) != SRV_ST_OK)
		return r;
	for (size_t i = 0; i < p->n_approvers; i++) {
		size_t n = srv_mac_msg_approver(p->id, p->approvers[i], m);
		if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
			return r;
		a_text(&a, 2, p->approvers[i]);
		a_int(&a, 3, (long long)i);
		a_opt(&a, 4, mac);
		if ((r = pg_run(s, pc, op, PO_APPR_INSERT, &a, PGRUN_PLAIN, NULL)) != SRV_ST_OK)
			return r; /* NOT_FOUND: no such principal */
	}
	return SRV_ST_OK;
}

static srv_st_rc do_policy_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *a)
{
	(void)a;
	return policy_write(s, pc, op, PO_POL_INSERT, arg);
}

srv_st_rc pg_policy_insert(srv_store *st, const srv_policy *p, const srv_audit *a)
{
	if (!st || !policy_ok(p))
		return pg_bad_arg("policy_insert");
	return pg_audited(PGS(st), "policy_insert", do_policy_insert, p, a);
}

static int listed(const srv_policy *p, const char *id)
{
	for (size_t i = 0; i < p->n_approvers; i++)
		if (strcmp(p->approvers[i], id) == 0)
			return 1;
	return 0;
}

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

static srv_st_rc cancel_pending(pg_store *s, pg_conn *pc, const char *op, int stmt, const char *key,
				const char *detail, const srv_audit *base);

static srv_st_rc do_policy_update(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	const srv_policy *p = arg;
	srv_policy before;
	char detail[128];
	pg_args a = {0};
	srv_st_rc r;

	memset(&before, 0, sizeof(before));
	a_text(&a, 1, p->id);
	if ((r = pg_one(s, pc, op, PO_POL_GET, &a, rd_policy, &before)) != SRV_ST_OK)
		return r;
	int same_id = strcmp(before.id, p->id) == 0; /* else a name matched */
	int differ = approval_rules_differ(&before, p);
	srv_policy_clear(&before);
	if (!same_id)
		return SRV_ST_NOT_FOUND;
	if ((r = policy_write(s, pc, op, PO_POL_UPDATE, p)) != SRV_ST_OK || !differ)
		return r;
	snprintf(detail, sizeof(detail), "{\"why\":\"policyChanged\",\"policyId\":\"%s\"}", p->id);
	if ((r = cancel_pending(s, pc, op, PO_REQ_PENDING_POLICY, p->id, detail, au)) != SRV_ST_OK)
		return r;
	return pg_grants_clamp_policy(s, pc, op, p, au);
}

srv_st_rc pg_policy_update(srv_store *st, const srv_policy *p, const srv_audit *a)
{
	if (!st || !policy_ok(p))
		return pg_bad_arg("policy_update");
	return pg_audited(PGS(st), "policy_update", do_policy_update, p, a);
}

srv_st_rc pg_policy_get(srv_store *st, const char *id_or_name, srv_policy *out)
{
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !id_or_name || !out)
		return pg_bad_arg("policy_get");
	a_text(&a, 1, id_or_name);
	r = pg_get(PGS(st), "policy_get", PO_POL_GET, &a, rd_policy, out);
	if (r == SRV_ST_OK && (r = check_policy(PGS(st), out)) != SRV_ST_OK)
		srv_policy_clear(out);
	return r;
}

srv_st_rc pg_policy_list(srv_store *st, const char *visible_to, size_t offset, size_t limit,
			 srv_policy **out, size_t *n, size_t *total)
{
	pg_args a = {0};

	if (!st || (visible_to && !*visible_to))
		return pg_bad_arg("policy_list");
	a_opt(&a, 1, visible_to);
	pg_pager pg = {.count = PO_POL_COUNT,
		       .list = PO_POL_LIST,
		       .args = &a,
		       .nfilter = 1,
		       .rd = rd_policy,
		       .size = sizeof(**out),
		       .clr = clr_policy};
	srv_st_rc r = pg_page(PGS(st), "policy_list", &pg, offset, limit, (void **)out, n, total);
	if (r == SRV_ST_OK && (r = pg_filter(PGS(st), *out, n, sizeof(**out), check_policy_rec,
					     clr_policy)) != SRV_ST_OK) {
		srv_policy_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	if (r == SRV_ST_OK && *n == 0) { /* every row refused: none, as pg_list says */
		free(*out);
		*out = NULL;
	}
	return r;
}

static srv_st_rc do_policy_delete(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	pg_args a = {0};
	size_t users = 0;
	srv_st_rc r;

	(void)au;
	a_text(&a, 1, arg);
	if ((r = pg_count(s, pc, op, PO_POL_IN_USE, &a, &users)) != SRV_ST_OK)
		return r;
	if (users) {
		rs_info("store: %s: %zu signer(s) still use the policy", op, users);
		return SRV_ST_CONFLICT;
	}
	return pg_run(s, pc, op, PO_POL_DELETE, &a, PGRUN_MUST_CHANGE | PGRUN_DELETE, NULL);
}

srv_st_rc pg_policy_delete(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id || !*id)
		return pg_bad_arg("policy_delete");
	return pg_audited(PGS(st), "policy_delete", do_policy_delete, id, a);
}

/* ---- requests and decisions -------------------------------------------------- */

static srv_st_rc do_request_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				   const srv_audit *au)
{
	const srv_request *q = arg;
	pg_args a = {0};

	(void)au;
	a_text(&a, 1, q->id);
	a_text(&a, 2, q->signer_id);
	a_text(&a, 3, q->policy_id);
	a_text(&a, 4, q->requester_id);
	a_opt(&a, 5, q->requester_name);
	a_text(&a, 6, q->justification);
	a_int(&a, 7, q->signings);
	a_int(&a, 8, q->window);
	a_int(&a, 9, q->created_at);
	a_int(&a, 10, q->expires_at);
	return pg_run(s, pc, op, PO_REQ_INSERT, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_request_insert(srv_store *st, const srv_request *q, const srv_audit *a)
{
	if (!st || !q || !q->id[0] || !q->signer_id[0] || !q->policy_id[0] || !q->requester_id[0] ||
	    q->signings < 0 || q->window < 0 || q->expires_at <= 0)
		return pg_bad_arg("request_insert");
	return pg_audited(PGS(st), "request_insert", do_request_insert, q, a);
}

srv_st_rc pg_request_get(srv_store *st, const char *id, time_t now, srv_request *out)
{
	static const char op[] = "request_get";
	pg_store *s = PGS(st);
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !id || !out)
		return pg_bad_arg(op);
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	if ((r = expire_requests(s, pc, op, now)) == SRV_ST_OK)
		r = get_request(s, pc, op, id, out);
	pg_release(s, pc);
	return r;
}

srv_st_rc pg_request_list(srv_store *st, const char *signer_id, const char *status,
			  const char *visible_to, time_t now, size_t offset, size_t limit,
			  srv_request **out, size_t *n, size_t *total)
{
	static const char op[] = "request_list";
	pg_store *s = PGS(st);
	pg_args a = {0};
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !out || !n || !total || (visible_to && !*visible_to))
		return pg_bad_arg(op);
	*out = NULL;
	*n = 0;
	*total = 0;
	a_opt(&a, 1, signer_id);
	a_opt(&a, 2, status);
	a_opt(&a, 3, visible_to);
	pg_pager pg = {.count = PO_REQ_COUNT,
		       .list = PO_REQ_LIST,
		       .args = &a,
		       .nfilter = 3,
		       .rd = rd_request,
		       .size = sizeof(**out),
		       .clr = clr_request};
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	if ((r = expire_requests(s, pc, op, now)) == SRV_ST_OK)
		r = pg_page_on(s, pc, op, &pg, offset, limit, (void **)out, n, total);
	pg_release(s, pc);
	return r;
}

static srv_st_rc close_request(pg_store *s, pg_conn *pc, const char *op, const char *id,
			       const char *to, time_t now)
{
	pg_args a = {0};
	srv_st_rc r;

	a_text(&a, 1, id);
	a_text(&a, 2, to);
	a_int(&a, 3, now);
	r = pg_run(s, pc, op, PO_REQ_CLOSE, &a, PGRUN_MUST_CHANGE, NULL);
	if (r == SRV_ST_NOT_FOUND)
		r = pg_absent_or_conflict(s, pc, op, PO_REQ_EXISTS, id);
	return r;
}

static srv_st_rc cancel_pending(pg_store *s, pg_conn *pc, const char *op, int stmt, const char *key,
				const char *detail, const srv_audit *base)
{
	srv_id *ids = NULL;
	size_t n = 0;
	pg_args a = {0};
	srv_st_rc r;

	if ((r = expire_requests(s, pc, op, base->created_at)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, key);
	r = pg_list(s, pc, op, stmt, &a, pg_rd_id, sizeof(*ids), clr_nothing, (void **)&ids, &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		r = close_request(s, pc, op, ids[i], "cancelled", base->created_at);
		if (r == SRV_ST_OK)
			r = pg_audit_derived(s, pc, op, base, "request.cancel", "request", ids[i],
					     detail);
	}
	free(ids);
	return r;
}

srv_st_rc pg_end_signer_approvals(pg_store *s, pg_conn *pc, const char *op, const char *signer_id,
				  const char *why, const srv_audit *base)
{
	char detail[64];
	srv_st_rc r;

	snprintf(detail, sizeof(detail), "{\"why\":\"%s\"}", why);
	if ((r = cancel_pending(s, pc, op, PO_REQ_PENDING_SIGNER, signer_id, detail, base)) !=
	    SRV_ST_OK)
		return r;
	return pg_grants_revoke_signer(s, pc, op, signer_id, why, base);
}

static long long clamp(long long wanted, long long limit)
{
	if (!limit)
		return wanted;
	return wanted && wanted < limit ? wanted : limit;
}

static srv_st_rc approve_request(pg_store *s, pg_conn *pc, const char *op, const srv_request *q,
				 const srv_policy *p, const char *grant_id, time_t now,
				 const srv_audit *au)
{
	char detail[320], until[RS_TIME_LEN + 2] = "null";
	pg_args a = {0};
	srv_st_rc r;

	srv_grant g = {.max_signings = clamp(q->signings, p->max_signings),
		       .window_start = now,
		       .created_at = now};
	long long window = clamp(q->window, p->max_window);
	g.expires_at = window ? now + (time_t)window : 0;
	rs_strlcpy(g.id, grant_id, sizeof(g.id));
	rs_strlcpy(g.signer_id, q->signer_id, sizeof(g.signer_id));
	rs_strlcpy(g.grantee_id, q->requester_id, sizeof(g.grantee_id));
	if ((r = pg_grant_insert_on(s, pc, op, &g, q->id, now)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, q->id);
	a_int(&a, 2, now);
	a_text(&a, 3, g.id);
	if ((r = pg_run(s, pc, op, PO_REQ_APPROVED, &a, PGRUN_MUST_CHANGE, NULL)) != SRV_ST_OK)
		return r;
	pg_json_time(g.expires_at, until);
	snprintf(detail, sizeof(detail),
		 "{\"requestId\":\"%s\",\"granteeId\":\"%s\",\"policyId\":\"%s\","
		 "\"maxSignings\":%lld,\"expiresAt\":%s}",
		 q->id, q->requester_id, p->id, g.max_signings, until);
	return pg_audit_derived(s, pc, op, au, "grant.create", "grant", g.id, detail);
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

static srv_st_rc policy_in_force(pg_store *s, pg_conn *pc, const char *op, const srv_request *q,
				 srv_policy *p, srv_decide_why *why)
{
	char current[RS_UUID_LEN] = "";
	time_t retired = 0;
	srv_st_rc r = pg_signer_state(s, pc, op, q->signer_id, current, &retired);

	if (r == SRV_ST_OK && !retired && strcmp(current, q->policy_id) == 0) {
		pg_args a = {0};

		a_text(&a, 1, q->policy_id);
		r = pg_one(s, pc, op, PO_POL_GET, &a, rd_policy, p);
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

static srv_st_rc do_request_decide(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				   const srv_audit *au)
{
	const decide_arg *x = arg;
	const srv_decision *d = x->d;
	srv_request q;
	srv_policy p;
	size_t n = 0;
	pg_args a = {0};
	srv_st_rc r;

	memset(&q, 0, sizeof(q));
	memset(&p, 0, sizeof(p));
	if ((r = expire_requests(s, pc, op, x->now)) != SRV_ST_OK ||
	    (r = get_request(s, pc, op, d->request_id, &q)) != SRV_ST_OK)
		goto out;
	if (strcmp(q.status, "pending") != 0) {
		r = refuse(x->why, SRV_DECIDE_CLOSED, op, "the request is not pending");
		goto out;
	}
	if ((r = policy_in_force(s, pc, op, &q, &p, x->why)) != SRV_ST_OK)
		goto out;
	a_text(&a, 1, p.id);
	a_text(&a, 2, d->approver_id);
	if ((r = pg_count(s, pc, op, PO_APPR_USABLE, &a, &n)) != SRV_ST_OK)
		goto out;
	if (n == 0) {
		r = refuse(x->why, SRV_DECIDE_NOT_APPROVER, op, "not an approver of the policy");
		goto out;
	}
	if (strcmp(d->approver_id, q.requester_id) == 0) {
		r = refuse(x->why, SRV_DECIDE_OWN, op, "the approver is the requester");
		goto out;
	}
	memset(&a, 0, sizeof(a));
	a_text(&a, 1, d->request_id);
	a_text(&a, 2, d->approver_id);
	a_opt(&a, 3, d->approver_name);
	a_int(&a, 4, d->approve ? 1 : 0);
	a_text(&a, 5, d->comment);
	a_int(&a, 6, d->created_at ? d->created_at : x->now);
	if ((r = pg_run(s, pc, op, PO_DEC_INSERT, &a, PGRUN_PLAIN, NULL)) == SRV_ST_CONFLICT) {
		r = refuse(x->why, SRV_DECIDE_TWICE, op, "this approver decided before");
		goto out;
	}
	if (r != SRV_ST_OK)
		goto out;
	if (!d->approve) {
		r = close_request(s, pc, op, d->request_id, "rejected", x->now);
	} else {
		memset(&a, 0, sizeof(a));
		a_text(&a, 1, d->request_id);
		a_text(&a, 2, p.id);
		r = pg_count(s, pc, op, PO_DEC_COUNT, &a, &n);
		if (r == SRV_ST_OK && n >= (size_t)p.required_approvals)
			r = approve_request(s, pc, op, &q, &p, x->grant_id, x->now, au);
	}
	if (r == SRV_ST_OK)
		r = get_request(s, pc, op, d->request_id, x->after);
out:
	srv_request_clear(&q);
	srv_policy_clear(&p);
	return r;
}

srv_st_rc pg_request_decide(srv_store *st, const srv_decision *d, const char *grant_id, time_t now,
			    srv_request *after, srv_decide_why *why, const srv_audit *a)
{
	static const char op[] = "request_decide";
	srv_decide_why ignored;

	if (!st || !d || !d->request_id[0] || !d->approver_id[0] || !after ||
	    (d->approve && (!grant_id || !grant_id[0])))
		return pg_bad_arg(op);
	memset(after, 0, sizeof(*after));
	if (!why)
		why = &ignored;
	*why = SRV_DECIDE_OK;
	decide_arg x = {d, grant_id, now, after, why};
	srv_st_rc r = pg_audited(PGS(st), op, do_request_decide, &x, a);
	if (r != SRV_ST_OK)
		srv_request_clear(after);
	return r;
}

srv_st_rc pg_decision_list(srv_store *st, const char *request_id, srv_decision **out, size_t *n)
{
	pg_args a = {0};

	if (!st || !request_id || !out || !n)
		return pg_bad_arg("decision_list");
	a_text(&a, 1, request_id);
	return pg_get_list(PGS(st), "decision_list", PO_DEC_LIST, &a, rd_decision, sizeof(**out),
			   clr_decision, (void **)out, n);
}

typedef struct {
	const char *id, *to;
	time_t now;
} close_arg;

static srv_st_rc do_request_close(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *a)
{
	const close_arg *x = arg;
	srv_st_rc r;

	(void)a;
	if ((r = expire_requests(s, pc, op, x->now)) != SRV_ST_OK)
		return r;
	return close_request(s, pc, op, x->id, x->to, x->now);
}

srv_st_rc pg_request_close(srv_store *st, const char *id, const char *to, time_t now,
			   const srv_audit *a)
{
	static const char op[] = "request_close";

	if (!st || !id || !to ||
	    (strcmp(to, "cancelled") != 0 && strcmp(to, "rejected") != 0 &&
	     strcmp(to, "expired") != 0))
		return pg_bad_arg(op);
	close_arg x = {id, to, now};
	return pg_audited(PGS(st), op, do_request_close, &x, a);
}
