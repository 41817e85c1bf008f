/* Console sessions on PostgreSQL (migration 13), as the SQLite store keeps
 * them (store_sqlite_session.c): by the SHA-256 hex of their random id
 * only, each row sealed with its MAC (hash, principal_id, expires_at); a
 * lookup refuses a session past its absolute cap or idle for longer than
 * the caller's limit, and one whose row or principal fails its MAC. Also
 * the daily counts of sign attempts the console's overview charts. */
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"

#define SS_COLS "c.hash, c.principal_id, c.created_at, c.expires_at, c.last_seen_at, c.mac"
#define SS_NCOLS 6

const pg_sql pg_session_sql[] = {
	{GS_INSERT, "INSERT INTO console_sessions (hash, principal_id, created_at, expires_at,"
		    " last_seen_at, mac) VALUES ($1, $2, $3, $4, $5, $6)"},
	{GS_LOOKUP, "SELECT " SS_COLS ", " PG_P_COLS
		    " FROM console_sessions c JOIN principals p ON p.id = c.principal_id"
		    " WHERE c.hash = $1 AND c.expires_at > $2::bigint"
		    " AND c.last_seen_at > $2::bigint - $3::bigint"},
	{GS_TOUCH, "UPDATE console_sessions SET last_seen_at = $2"
		   " WHERE hash = $1 AND last_seen_at <= $3::bigint"},
	{GS_DELETE, "DELETE FROM console_sessions WHERE hash = $1"},
	{GS_PURGE, "DELETE FROM console_sessions WHERE expires_at <= $1::bigint"
		   " OR last_seen_at <= $1::bigint - $2::bigint"},
	{GS_DAILY,
	 "SELECT o.created_at / 86400 AS day, o.signer_id,"
	 " sum(CASE WHEN o.status = 'success' THEN 1 ELSE 0 END),"
	 " sum(CASE WHEN o.status = 'denied' THEN 1 ELSE 0 END),"
	 " sum(CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END)"
	 " FROM operations o WHERE o.created_at >= $1::bigint"
	 " AND ($2::text IS NULL OR " PG_MEMBER_OF(
		 "o.signer_id", "$2::text") ")"
					    " GROUP BY day, o.signer_id ORDER BY day, o.signer_id"},
	{-1, NULL},
};

typedef struct {
	srv_session s;
	char mac[SRV_MAC_HEX];
	srv_principal p;
} session_row;

static srv_st_rc rd_session(const PGresult *res, int r, int c, void *out)
{
	session_row *x = out;

	pg_col_copy(res, r, c, x->s.hash, sizeof(x->s.hash));
	pg_col_copy(res, r, c + 1, x->s.principal_id, sizeof(x->s.principal_id));
	x->s.created_at = (time_t)pg_col_ll(res, r, c + 2);
	x->s.expires_at = (time_t)pg_col_ll(res, r, c + 3);
	x->s.last_seen_at = (time_t)pg_col_ll(res, r, c + 4);
	pg_col_copy(res, r, c + 5, x->mac, sizeof(x->mac));
	return pg_rd_principal(res, r, c + SS_NCOLS, &x->p);
}

/* One write statement on a connection of the pool. */
static srv_st_rc run(pg_store *s, const char *op, int stmt, const pg_args *a, int flags,
		     size_t *changed)
{
	pg_conn *pc;
	srv_st_rc r;

	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	r = pg_run(s, pc, op, stmt, a, flags, changed);
	pg_release(s, pc);
	return r;
}

srv_st_rc pg_session_insert(srv_store *st, const srv_session *x)
{
	static const char op[] = "session_insert";
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !x || strlen(x->hash) != 64 || !x->principal_id[0])
		return pg_bad_arg(op);
	size_t n = srv_mac_msg_session(x, m);
	if ((r = srv_rowmac_seal(PGS(st)->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, x->hash);
	a_text(&a, 2, x->principal_id);
	a_int(&a, 3, x->created_at);
	a_int(&a, 4, x->expires_at);
	a_int(&a, 5, x->last_seen_at);
	a_opt(&a, 6, mac);
	return run(PGS(st), op, GS_INSERT, &a, PGRUN_PLAIN, NULL);
}

/* Both the session's row and its principal's must pass their MACs. */
srv_st_rc pg_session_lookup(srv_store *st, const char *hash_hex, time_t now, long long idle,
			    srv_principal *out, srv_session *sess)
{
	static const char op[] = "session_lookup";
	unsigned char m[SRV_MAC_MSG_MAX];
	session_row x;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !hash_hex || !out || idle <= 0)
		return pg_bad_arg(op);
	memset(&x, 0, sizeof(x));
	a_text(&a, 1, hash_hex);
	a_int(&a, 2, now);
	a_int(&a, 3, idle);
	if ((r = pg_get(PGS(st), op, GS_LOOKUP, &a, rd_session, &x)) != SRV_ST_OK)
		return r;
	size_t n = srv_mac_msg_session(&x.s, m);
	if ((r = srv_rowmac_check(PGS(st)->mac, "console_sessions", x.s.principal_id, m, n,
				  x.mac)) != SRV_ST_OK ||
	    (r = pg_check_principal(PGS(st), &x.p)) != SRV_ST_OK) {
		srv_principal_clear(&x.p);
		return r;
	}
	*out = x.p;
	if (sess)
		*sess = x.s;
	return SRV_ST_OK;
}

srv_st_rc pg_session_touch(srv_store *st, const char *hash_hex, time_t now, time_t before)
{
	pg_args a = {0};

	if (!st || !hash_hex)
		return pg_bad_arg("session_touch");
	a_text(&a, 1, hash_hex);
	a_int(&a, 2, now);
	a_int(&a, 3, before);
	return run(PGS(st), "session_touch", GS_TOUCH, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_session_delete(srv_store *st, const char *hash_hex)
{
	pg_args a = {0};

	if (!st || !hash_hex)
		return pg_bad_arg("session_delete");
	a_text(&a, 1, hash_hex);
	return run(PGS(st), "session_delete", GS_DELETE, &a, PGRUN_MUST_CHANGE, NULL);
}

srv_st_rc pg_session_purge(srv_store *st, time_t now, long long idle, size_t *n)
{
	pg_args a = {0};

	if (!st || !n || idle <= 0)
		return pg_bad_arg("session_purge");
	*n = 0;
	a_int(&a, 1, now);
	a_int(&a, 2, idle);
	return run(PGS(st), "session_purge", GS_PURGE, &a, PGRUN_PLAIN, n);
}

static srv_st_rc rd_day(const PGresult *res, int r, int c, void *out)
{
	srv_op_day *d = out;

	d->day = pg_col_ll(res, r, c);
	pg_col_copy(res, r, c + 1, d->signer_id, sizeof(d->signer_id));
	d->success = pg_col_ll(res, r, c + 2);
	d->denied = pg_col_ll(res, r, c + 3);
	d->failed = pg_col_ll(res, r, c + 4);
	return SRV_ST_OK;
}

static void clr_day(void *p)
{
	(void)p;
}

srv_st_rc pg_operation_daily(srv_store *st, const char *visible_to, time_t since, srv_op_day **out,
			     size_t *n)
{
	pg_args a = {0};

	if (!st || !out || !n)
		return pg_bad_arg("operation_daily");
	a_int(&a, 1, since);
	a_opt(&a, 2, visible_to);
	return pg_get_list(PGS(st), "operation_daily", GS_DAILY, &a, rd_day, sizeof(**out), clr_day,
			   (void **)out, n);
}
