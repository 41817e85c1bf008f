/* Console sessions on SQLite (migration 13): kept by the SHA-256 hex of
 * their random id only, each row sealed with its MAC (hash, principal_id,
 * expires_at); a lookup refuses a session past its absolute cap or idle
 * for longer than the caller's limit, and one whose row or principal fails
 * its MAC. Also the daily counts of sign attempts the console's overview
 * charts (operation_daily). */
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

#define SS_COLS "c.hash, c.principal_id, c.created_at, c.expires_at, c.last_seen_at, c.mac"
#define SS_NCOLS 6

const char *const sq_session_sql[SS_COUNT] = {
	[SS_INSERT] = "INSERT INTO console_sessions (hash, principal_id, created_at, expires_at,"
		      " last_seen_at, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SS_LOOKUP] = "SELECT " SS_COLS ", " SQ_P_COLS
		      " FROM console_sessions c JOIN principals p ON p.id = c.principal_id"
		      " WHERE c.hash = ?1 AND c.expires_at > ?2 AND c.last_seen_at > ?2 - ?3",
	[SS_TOUCH] = "UPDATE console_sessions SET last_seen_at = ?2"
		     " WHERE hash = ?1 AND last_seen_at <= ?3",
	[SS_DELETE] = "DELETE FROM console_sessions WHERE hash = ?1",
	[SS_PURGE] =
		"DELETE FROM console_sessions WHERE expires_at <= ?1 OR last_seen_at <= ?1 - ?2",
	[SS_DAILY] =
		"SELECT o.created_at / 86400 AS day, o.signer_id,"
		" sum(CASE WHEN o.status = 'success' THEN 1 ELSE 0 END),"
		" sum(CASE WHEN o.status = 'denied' THEN 1 ELSE 0 END),"
		" sum(CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END)"
		" FROM operations o WHERE o.created_at >= ?1"
		" AND (?2 IS NULL OR " SQ_MEMBER_OF(
			"o.signer_id", "?2") ")"
					     " GROUP BY day, o.signer_id ORDER BY day, o.signer_id",
};

typedef struct {
	srv_session s;
	char mac[SRV_MAC_HEX];
	srv_principal p;
} session_row;

static srv_st_rc rd_session(sqlite3_stmt *st, int c, void *out)
{
	session_row *x = out;

	col_copy(st, c, x->s.hash, sizeof(x->s.hash));
	col_copy(st, c + 1, x->s.principal_id, sizeof(x->s.principal_id));
	x->s.created_at = (time_t)sqlite3_column_int64(st, c + 2);
	x->s.expires_at = (time_t)sqlite3_column_int64(st, c + 3);
	x->s.last_seen_at = (time_t)sqlite3_column_int64(st, c + 4);
	col_copy(st, c + 5, x->mac, sizeof(x->mac));
	return sq_rd_principal(st, c + SS_NCOLS, &x->p);
}

srv_st_rc sq_session_insert(srv_store *st, const srv_session *x)
{
	static const char op[] = "session_insert";
	sq_store *s = SQ(st);
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !x || strlen(x->hash) != 64 || !x->principal_id[0])
		return sq_bad_arg(op);
	size_t n = srv_mac_msg_session(x, m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	sq_lock(s);
	sqlite3_stmt *q = s->ss[SS_INSERT];
	b_text(q, 1, x->hash, &brc);
	b_text(q, 2, x->principal_id, &brc);
	b_int(q, 3, x->created_at, &brc);
	b_int(q, 4, x->expires_at, &brc);
	b_int(q, 5, x->last_seen_at, &brc);
	b_opt(q, 6, mac, &brc);
	r = sq_run(s, op, q, brc, RUN_PLAIN);
	sq_unlock(s);
	return r;
}

/* Both the session's row and its principal's must pass their MACs. */
srv_st_rc sq_session_lookup(srv_store *st, const char *hash_hex, time_t now, long long idle,
			    srv_principal *out, srv_session *sess)
{
	static const char op[] = "session_lookup";
	sq_store *s = SQ(st);
	unsigned char m[SRV_MAC_MSG_MAX];
	session_row x;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !hash_hex || !out || idle <= 0)
		return sq_bad_arg(op);
	memset(&x, 0, sizeof(x));
	sq_lock(s);
	sqlite3_stmt *q = s->ss[SS_LOOKUP];
	b_text(q, 1, hash_hex, &brc);
	b_int(q, 2, now, &brc);
	b_int(q, 3, idle, &brc);
	r = sq_one(s, op, q, brc, rd_session, &x);
	sq_unlock(s);
	if (r != SRV_ST_OK)
		return r;
	size_t n = srv_mac_msg_session(&x.s, m);
	if ((r = srv_rowmac_check(s->mac, "console_sessions", x.s.principal_id, m, n, x.mac)) !=
		    SRV_ST_OK ||
	    (r = sq_check_principal(s, &x.p)) != SRV_ST_OK) {
		srv_principal_clear(&x.p);
		return r;
	}
	*out = x.p;
	if (sess)
		*sess = x.s;
	return SRV_ST_OK;
}

srv_st_rc sq_session_touch(srv_store *st, const char *hash_hex, time_t now, time_t before)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !hash_hex)
		return sq_bad_arg("session_touch");
	sq_lock(s);
	sqlite3_stmt *q = s->ss[SS_TOUCH];
	b_text(q, 1, hash_hex, &brc);
	b_int(q, 2, now, &brc);
	b_int(q, 3, before, &brc);
	r = sq_run(s, "session_touch", q, brc, RUN_PLAIN);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_session_delete(srv_store *st, const char *hash_hex)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !hash_hex)
		return sq_bad_arg("session_delete");
	sq_lock(s);
	sqlite3_stmt *q = s->ss[SS_DELETE];
	b_text(q, 1, hash_hex, &brc);
	r = sq_run(s, "session_delete", q, brc, RUN_MUST_CHANGE);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_session_purge(srv_store *st, time_t now, long long idle, size_t *n)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !n || idle <= 0)
		return sq_bad_arg("session_purge");
	sq_lock(s);
	sqlite3_stmt *q = s->ss[SS_PURGE];
	b_int(q, 1, now, &brc);
	b_int(q, 2, idle, &brc);
	r = sq_run(s, "session_purge", q, brc, RUN_PLAIN);
	*n = r == SRV_ST_OK ? (size_t)sqlite3_changes(s->db) : 0;
	sq_unlock(s);
	return r;
}

static srv_st_rc rd_day(sqlite3_stmt *st, int c, void *out)
{
	srv_op_day *d = out;

	d->day = sqlite3_column_int64(st, c);
	col_copy(st, c + 1, d->signer_id, sizeof(d->signer_id));
	d->success = sqlite3_column_int64(st, c + 2);
	d->denied = sqlite3_column_int64(st, c + 3);
	d->failed = sqlite3_column_int64(st, c + 4);
	return SRV_ST_OK;
}

static void clr_day(void *p)
{
	(void)p;
}

srv_st_rc sq_operation_daily(srv_store *st, const char *visible_to, time_t since, srv_op_day **out,
			     size_t *n)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !out || !n)
		return sq_bad_arg("operation_daily");
	sq_lock(s);
	sqlite3_stmt *q = s->ss[SS_DAILY];
	b_int(q, 1, since, &brc);
	b_opt(q, 2, visible_to, &brc);
	r = sq_list(s, "operation_daily", q, brc, rd_day, sizeof(**out), clr_day, (void **)out, n);
	sq_unlock(s);
	return r;
}
