/* The SQLite implementation of srv_store_ops: one connection behind a mutex,
 * every statement prepared once at open and reset after each use; an op holds
 * the mutex for its own statements only. Here: the shared helpers, open and
 * close, meta, principals, tokens and secrets. Keys, certificates, signers,
 * members and history are in store_sqlite_pki.c; policies and requests in
 * store_sqlite_policy.c; grants and the audit log in store_sqlite_grant.c;
 * the schema in store_sqlite_migrate.c. */
#include <stdio.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

#define SQ_STR2(x) #x
#define SQ_STR(x) SQ_STR2(x)
/* a token's columns (rd_token), alias t */
#define TOK_COLS                                                                                   \
	"t.id, t.principal_id, t.kind, t.name, t.created_at, t.expires_at, t.last_used_at, "       \
	"t.hash, t.mac, t.oidc"
#define TOK_NCOLS 10
/* a secret's columns (rd_secret), alias s */
#define SEC_COLS                                                                                   \
	"s.id, s.principal_id, s.client_id, s.created_at, s.expires_at, s.secret_hash, s.mac"
#define SEC_NCOLS 7

static const char *const sq_sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_PING] = "SELECT count(*) FROM meta",
	[Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[Q_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
		       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[Q_META_ADD] = "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
	[Q_PRINCIPAL_INSERT] = "INSERT INTO principals (id, type, name, admin, client_id, "
			       "created_at, mac, metrics, oidc)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[Q_PRINCIPAL_GET] = "SELECT " SQ_P_COLS " FROM principals p" SQ_BY_ID_OR_NAME("p"),
	[Q_PRINCIPAL_LIST] = "SELECT " SQ_P_COLS " FROM principals p ORDER BY p.name" SQ_PAGE,
	[Q_PRINCIPAL_COUNT] = "SELECT count(*) FROM principals",
	[Q_PRINCIPAL_DISABLE] = "SELECT " SQ_P_COLS " FROM principals p WHERE p.id = ?1",
	[Q_PRINCIPAL_UPDATE] = "UPDATE principals SET disabled = ?2, client_id = ?3, mac = ?4,"
			       " oidc = ?5 WHERE id = ?1",
	[Q_PRINCIPAL_DELETE] = "DELETE FROM principals WHERE id = ?1",
	/* Policies that need ?1, an enabled user, among their approvers: the
	 * others who could still approve (enabled users) are fewer than it
	 * requires. Zero while ?1 is disabled: taking it away changes nothing. */
	[Q_APPROVER_NEEDED] =
		"SELECT count(*) FROM policies p"
		" WHERE EXISTS (SELECT 1 FROM principals x WHERE x.id = ?1 AND x.disabled = 0"
		" AND x.type = 'user')"
		" AND EXISTS (SELECT 1 FROM policy_approvers a WHERE a.policy_id = p.id"
		" AND a.principal_id = ?1)"
		" AND (SELECT count(*) FROM policy_approvers b JOIN principals u ON u.id = "
		"b.principal_id"
		" WHERE b.policy_id = p.id AND b.principal_id <> ?1 AND u.disabled = 0"
		" AND u.type = 'user') < p.required_approvals",
	[Q_TOKEN_INSERT] = "INSERT INTO tokens (hash, principal_id, kind, expires_at, created_at,"
			   " id, name, mac, oidc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[Q_TOKEN_PURGE] = "DELETE FROM tokens WHERE expires_at > 0 AND expires_at <= ?1",
	[Q_TOKEN_LOOKUP] = "SELECT " SQ_P_COLS ", " TOK_COLS
			   " FROM tokens t JOIN principals p ON p.id = t.principal_id"
			   " WHERE t.hash = ?1 AND (t.expires_at = 0 OR t.expires_at > ?2)",
	[Q_TOKEN_COUNT_API] = "SELECT count(*) FROM tokens WHERE principal_id = ?1 AND kind = 'api'"
			      " AND (expires_at = 0 OR expires_at > ?2)",
	[Q_TOKEN_LIST] = "SELECT " TOK_COLS " FROM tokens t WHERE t.principal_id = ?1"
			 " AND (t.expires_at = 0 OR t.expires_at > ?2)"
			 " ORDER BY t.created_at, t.rowid" SQ_PAGE,
	[Q_TOKEN_LIST_COUNT] = "SELECT count(*) FROM tokens t WHERE t.principal_id = ?1"
			       " AND (t.expires_at = 0 OR t.expires_at > ?2)",
	[Q_TOKEN_REVOKE] = "DELETE FROM tokens WHERE id = ?1 AND principal_id = ?2",
	[Q_TOKEN_TOUCH] = "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1"
			  " AND last_used_at <= ?2 - " SQ_STR(SRV_TOKEN_TOUCH_SECS),
	[Q_SECRET_CLIENT] = "SELECT " SQ_P_COLS " FROM principals p WHERE p.id = ?1",
	[Q_SECRET_DROP] = "DELETE FROM secrets WHERE principal_id = ?1",
	[Q_SECRET_INSERT] = "INSERT INTO secrets (id, principal_id, client_id, secret_hash,"
			    " created_at, expires_at, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_SECRET_LOOKUP] = "SELECT " SEC_COLS ", " SQ_P_COLS
			    " FROM secrets s JOIN principals p ON p.id = s.principal_id"
			    " WHERE s.client_id = ?1 AND (s.expires_at = 0 OR s.expires_at > ?2)"
			    " ORDER BY s.created_at, s.rowid",
	[Q_SECRET_ROWS] = "SELECT " SEC_COLS " FROM secrets s WHERE s.principal_id = ?1",
	[Q_SECRET_EXPIRE] = "UPDATE secrets SET expires_at = ?2, mac = ?3 WHERE id = ?1",
	[Q_SECRET_DELETE] = "DELETE FROM secrets WHERE id = ?1",
	[Q_SECRET_LIST] = "SELECT " SEC_COLS " FROM secrets s WHERE s.principal_id = ?1"
			  " AND (s.expires_at = 0 OR s.expires_at > ?2)"
			  " ORDER BY s.created_at, s.rowid",
};

void sq_lock(sq_store *s)
{
	if (pthread_mutex_lock(&s->mu) != 0)
		abort();
}

void sq_unlock(sq_store *s)
{
	if (pthread_mutex_unlock(&s->mu) != 0)
		abort();
}

srv_st_rc sq_bad_arg(const char *op)
{
	rs_err("store: %s: invalid argument", op);
	return SRV_ST_FAILED;
}

/* The one place SQLite result codes become srv_st_rc. A foreign key failure
 * means a referenced row is missing on insert/update (fk = NOT_FOUND) and
 * that the row is still referenced on delete (fk = CONFLICT). Logs once;
 * errmsg names tables and columns, never the bound values. */
srv_st_rc sq_fail(sq_store *s, const char *op, int rc, srv_st_rc fk)
{
	srv_st_rc r;

	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = SRV_ST_CONFLICT;
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = fk;
	else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ||
		 (rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_IOERR ||
		 (rc & 0xff) == SQLITE_FULL)
		r = SRV_ST_UNAVAILABLE;
	else
		r = SRV_ST_FAILED;
	if (r == SRV_ST_CONFLICT || r == SRV_ST_NOT_FOUND)
		rs_info("store: %s: %s", op, sqlite3_errmsg(s->db));
	else
		rs_err("store: %s: %s (%d)", op, sqlite3_errmsg(s->db), rc);
	return r;
}

static void sq_done(sqlite3_stmt *st)
{
	/* reset repeats the last step's error, already handled */
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* Steps a bound write statement to completion, then resets it. */
srv_st_rc sq_run(sq_store *s, const char *op, sqlite3_stmt *st, int brc, int flags)
{
	int rc = brc == SQLITE_OK ? sqlite3_step(st) : brc;
	srv_st_rc r = SRV_ST_OK;

	if (rc != SQLITE_DONE)
		r = sq_fail(s, op, rc, (flags & RUN_DELETE) ? SRV_ST_CONFLICT : SRV_ST_NOT_FOUND);
	else if ((flags & RUN_MUST_CHANGE) && sqlite3_changes(s->db) == 0)
		r = SRV_ST_NOT_FOUND;
	sq_done(st);
	return r;
}

void sq_rollback(sq_store *s, const char *op)
{
	/* some errors (FULL, IOERR) already rolled the transaction back */
	if (!sqlite3_get_autocommit(s->db))
		(void)sq_run(s, op, s->q[Q_ROLLBACK], SQLITE_OK, RUN_PLAIN);
}

srv_st_rc sq_begin(sq_store *s, const char *op)
{
	return sq_run(s, op, s->q[Q_BEGIN], SQLITE_OK, RUN_PLAIN);
}

srv_st_rc sq_commit(sq_store *s, const char *op)
{
	srv_st_rc r = sq_run(s, op, s->q[Q_COMMIT], SQLITE_OK, RUN_PLAIN);

	if (r != SRV_ST_OK)
		sq_rollback(s, op);
	return r;
}

srv_st_rc sq_audited(sq_store *s, const char *op, sq_change change, const void *arg,
		     const srv_audit *a)
{
	srv_st_rc r;

	if (!s || !a || !a->action[0] || !a->object_type[0] || !a->object_id[0])
		return sq_bad_arg(op);
	sq_lock(s);
	if ((r = sq_begin(s, op)) != SRV_ST_OK)
		goto out;
	/* the entry first, so that what the change brings about (audited by
	 * the change itself) follows its cause in the log */
	if ((r = sq_audit_inlock(s, op, a)) != SRV_ST_OK ||
	    (r = change(s, op, arg, a)) != SRV_ST_OK) {
		sq_rollback(s, op);
		goto out;
	}
	r = sq_commit(s, op);
out:
	sq_unlock(s);
	return r;
}

srv_st_rc sq_rd_str(sqlite3_stmt *st, int c, void *out)
{
	char **v = out;

	*v = col_dup(st, c, "");
	return *v ? SRV_ST_OK : SRV_ST_FAILED;
}

void sq_json_time(time_t t, char out[RS_TIME_LEN + 2])
{
	char v[RS_TIME_LEN];

	if (!t) {
		rs_strlcpy(out, "null", RS_TIME_LEN + 2);
		return;
	}
	rs_time_format(t, v);
	snprintf(out, RS_TIME_LEN + 2, "\"%s\"", v);
}

srv_st_rc sq_rd_id(sqlite3_stmt *st, int c, void *out)
{
	col_copy(st, c, out, sizeof(srv_id));
	return SRV_ST_OK;
}

srv_st_rc sq_rd_principal(sqlite3_stmt *st, int c, void *out)
{
	srv_principal *p = out;

	memset(p, 0, sizeof(*p));
	col_copy(st, c, p->id, sizeof(p->id));
	col_copy(st, c + 1, p->type, sizeof(p->type));
	p->admin = sqlite3_column_int(st, c + 3) != 0;
	col_copy(st, c + 4, p->client_id, sizeof(p->client_id));
	p->created_at = (time_t)sqlite3_column_int64(st, c + 5);
	p->disabled = sqlite3_column_int(st, c + 6) != 0;
	col_copy(st, c + 7, p->mac, sizeof(p->mac));
	p->metrics = sqlite3_column_int(st, c + 8) != 0;
	p->name = col_dup(st, c + 2, "");
	if (sqlite3_column_type(st, c + 9) != SQLITE_NULL && !(p->oidc = col_dup(st, c + 9, ""))) {
		free(p->name);
		p->name = NULL;
	}
	return p->name ? SRV_ST_OK : SRV_ST_FAILED;
}

/* A token or secret row as read: the metadata, and what its MAC covers. */
typedef struct {
	srv_token t;
	char hash[132];
	char mac[SRV_MAC_HEX];
	char oidc[SRV_OIDC_LOGIN_MAX]; /* "" = none */
} token_row;

typedef struct {
	srv_secret s;
	char hash[132];
	char mac[SRV_MAC_HEX];
} secret_row;

static srv_st_rc rd_token(sqlite3_stmt *st, int c, void *out)
{
	token_row *x = out;

	memset(x, 0, sizeof(*x));
	col_copy(st, c, x->t.id, sizeof(x->t.id));
	col_copy(st, c + 1, x->t.principal_id, sizeof(x->t.principal_id));
	col_copy(st, c + 2, x->t.kind, sizeof(x->t.kind));
	col_copy(st, c + 3, x->t.name, sizeof(x->t.name));
	x->t.created_at = (time_t)sqlite3_column_int64(st, c + 4);
	x->t.expires_at = (time_t)sqlite3_column_int64(st, c + 5);
	x->t.last_used_at = (time_t)sqlite3_column_int64(st, c + 6);
	col_copy(st, c + 7, x->hash, sizeof(x->hash));
	col_copy(st, c + 8, x->mac, sizeof(x->mac));
	col_copy(st, c + 9, x->oidc, sizeof(x->oidc));
	return SRV_ST_OK;
}

static srv_st_rc rd_secret(sqlite3_stmt *st, int c, void *out)
{
	secret_row *x = out;

	memset(x, 0, sizeof(*x));
	col_copy(st, c, x->s.id, sizeof(x->s.id));
	col_copy(st, c + 1, x->s.principal_id, sizeof(x->s.principal_id));
	col_copy(st, c + 2, x->s.client_id, sizeof(x->s.client_id));
	x->s.created_at = (time_t)sqlite3_column_int64(st, c + 3);
	x->s.expires_at = (time_t)sqlite3_column_int64(st, c + 4);
	col_copy(st, c + 5, x->hash, sizeof(x->hash));
	col_copy(st, c + 6, x->mac, sizeof(x->mac));
	return SRV_ST_OK;
}

static srv_st_rc check_token(sq_store *s, const token_row *x)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_token(x->t.id, x->hash, x->t.principal_id, x->t.kind,
				     x->t.expires_at, x->oidc, m);
	return srv_rowmac_check(s->mac, "tokens", x->t.id, m, n, x->mac);
}

static srv_st_rc check_token_rec(sq_store *s, const void *rec)
{
	return check_token(s, rec);
}

static srv_st_rc check_secret(sq_store *s, const secret_row *x)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_secret(x->s.id, x->s.client_id, x->s.principal_id, x->hash,
				      x->s.expires_at, m);
	return srv_rowmac_check(s->mac, "secrets", x->s.id, m, n, x->mac);
}

static srv_st_rc check_secret_rec(sq_store *s, const void *rec)
{
	return check_secret(s, rec);
}

static srv_st_rc check_principal_rec(sq_store *s, const void *rec)
{
	return sq_check_principal(s, rec);
}

/* A token row and its principal, as token_lookup reads them. */
typedef struct {
	srv_principal p;
	token_row t;
} lookup_row;

static srv_st_rc rd_lookup(sqlite3_stmt *st, int c, void *out)
{
	lookup_row *x = out;

	if (rd_token(st, c + SQ_P_NCOLS, &x->t) != SRV_ST_OK)
		return SRV_ST_FAILED;
	return sq_rd_principal(st, c, &x->p);
}

typedef struct {
	secret_row s;
	srv_principal p;
} secret_lookup_row;

static srv_st_rc rd_secret_lookup(sqlite3_stmt *st, int c, void *out)
{
	secret_lookup_row *x = out;

	if (rd_secret(st, c, &x->s) != SRV_ST_OK)
		return SRV_ST_FAILED;
	return sq_rd_principal(st, c + SEC_NCOLS, &x->p);
}

static void clr_secret_lookup(void *p)
{
	srv_principal_clear(&((secret_lookup_row *)p)->p);
}

static void clr_flat(void *p)
{
	(void)p;
}

/* Steps a bound query expected to return at most one row. */
srv_st_rc sq_one(sq_store *s, const char *op, sqlite3_stmt *st, int brc, sq_reader rd, void *out)
{
	int rc = brc == SQLITE_OK ? sqlite3_step(st) : brc;
	srv_st_rc r;

	if (rc == SQLITE_ROW) {
		r = rd(st, 0, out);
		if (r != SRV_ST_OK)
			rs_err("store: %s: cannot read the row (out of memory or bad value)", op);
	} else if (rc == SQLITE_DONE) {
		r = SRV_ST_NOT_FOUND;
	} else {
		r = sq_fail(s, op, rc, SRV_ST_FAILED);
	}
	sq_done(st);
	return r;
}

/* Steps a bound query into a malloc'd array of records of size bytes;
 * *out = NULL when there are none. clr undoes one record. */
srv_st_rc sq_list(sq_store *s, const char *op, sqlite3_stmt *st, int brc, sq_reader rd, size_t size,
		  void (*clr)(void *), void **out, size_t *n)
{
	unsigned char *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	srv_st_rc r = SRV_ST_OK;
	int rc = brc;

	*out = NULL;
	*n = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;

			if (ncap > SIZE_MAX / size || !(nv = realloc(v, ncap * size))) {
				rs_err("store: %s: out of memory", op);
				r = SRV_ST_FAILED;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		if ((r = rd(st, 0, v + cnt * size)) != SRV_ST_OK) {
			rs_err("store: %s: cannot read a row (out of memory or bad value)", op);
			goto out;
		}
		cnt++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sq_fail(s, op, rc, SRV_ST_FAILED);
		goto out;
	}
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
out:
	sq_done(st);
	for (size_t i = 0; i < cnt; i++)
		clr(v + i * size);
	free(v);
	return r;
}

srv_st_rc sq_count(sq_store *s, const char *op, sqlite3_stmt *st, int brc, size_t *total)
{
	int rc = brc == SQLITE_OK ? sqlite3_step(st) : brc;
	srv_st_rc r = SRV_ST_OK;

	if (rc == SQLITE_ROW)
		*total = (size_t)sqlite3_column_int64(st, 0);
	else
		r = sq_fail(s, op, rc, SRV_ST_FAILED);
	sq_done(st);
	return r;
}

srv_st_rc sq_get(sq_store *s, const char *op, sqlite3_stmt *q, const char *key, sq_reader rd,
		 void *out)
{
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !key || !out)
		return sq_bad_arg(op);
	sq_lock(s);
	b_text(q, 1, key, &brc);
	r = sq_one(s, op, q, brc, rd, out);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_page_inlock(sq_store *s, const char *op, const sq_pager *pg, size_t offset,
			 size_t limit, void **out, size_t *n, size_t *total)
{
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (pg->bind)
		pg->bind(pg->count, pg->filter, &brc);
	if ((r = sq_count(s, op, pg->count, brc, total)) != SRV_ST_OK)
		return r;
	if (pg->bind)
		pg->bind(pg->list, pg->filter, &brc);
	b_int(pg->list, 20, sq_limit(limit), &brc);
	b_int(pg->list, 21, sq_offset(offset), &brc);
	return sq_list(s, op, pg->list, brc, pg->rd, pg->size, pg->clr, out, n);
}

srv_st_rc sq_page(sq_store *s, const char *op, const sq_pager *pg, size_t offset, size_t limit,
		  void **out, size_t *n, size_t *total)
{
	srv_st_rc r;

	if (!s || !out || !n || !total)
		return sq_bad_arg(op);
	*out = NULL;
	*n = 0;
	*total = 0;
	sq_lock(s);
	r = sq_page_inlock(s, op, pg, offset, limit, out, n, total);
	sq_unlock(s);
	return r;
}

SQ_CLEARER(clr_principal, srv_principal_clear)

/* ---- ops ------------------------------------------------------------------ */

static void sq_close(srv_store *st)
{
	sq_store *s = SQ(st);

	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	for (int i = 0; i < P_COUNT; i++)
		sqlite3_finalize(s->p[i]);
	for (int i = 0; i < PL_COUNT; i++)
		sqlite3_finalize(s->pl[i]);
	for (int i = 0; i < GR_COUNT; i++)
		sqlite3_finalize(s->gr[i]);
	for (int i = 0; i < H_COUNT; i++)
		sqlite3_finalize(s->h[i]);
	for (int i = 0; i < TS_COUNT; i++)
		sqlite3_finalize(s->ts[i]);
	for (int i = 0; i < SS_COUNT; i++)
		sqlite3_finalize(s->ss[i]);
	for (int i = 0; i < CH_COUNT; i++)
		sqlite3_finalize(s->ch[i]);
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		rs_err("store: close: %s", sqlite3_errmsg(s->db));
	pthread_mutex_destroy(&s->mu);
	sq_history_fini(s);
	srv_rowmac_free(s->mac);
	free(s->path);
	free(s);
}

static srv_st_rc sq_ping(srv_store *st)
{
	sq_store *s = SQ(st);
	size_t n;
	srv_st_rc r;

	if (!s)
		return sq_bad_arg("ping");
	sq_lock(s);
	r = sq_count(s, "ping", s->q[Q_PING], SQLITE_OK, &n);
	sq_unlock(s);
	return r;
}

static srv_st_rc sq_meta_get(srv_store *st, const char *key, char **value)
{
	if (!st || !value)
		return sq_bad_arg("meta_get");
	*value = NULL;
	return sq_get(SQ(st), "meta_get", SQ(st)->q[Q_META_GET], key, sq_rd_str, value);
}

/* meta_set (upsert) and meta_add (insert if absent: CONFLICT when set) */
static srv_st_rc meta_write(srv_store *st, const char *op, int qi, int mode, const char *key,
			    const char *value)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !key || !value)
		return sq_bad_arg(op);
	sq_lock(s);
	q = s->q[qi];
	b_text(q, 1, key, &brc);
	b_text(q, 2, value, &brc);
	r = sq_run(s, op, q, brc, mode);
	sq_unlock(s);
	return r;
}

static srv_st_rc sq_meta_set(srv_store *st, const char *key, const char *value)
{
	return meta_write(st, "meta_set", Q_META_SET, RUN_PLAIN, key, value);
}

static srv_st_rc sq_meta_add(srv_store *st, const char *key, const char *value)
{
	srv_st_rc r = meta_write(st, "meta_add", Q_META_ADD, RUN_MUST_CHANGE, key, value);

	return r == SRV_ST_NOT_FOUND ? SRV_ST_CONFLICT : r;
}

/* Inserts secret x (its id, principal, client id, times) with hash. */
static srv_st_rc put_secret_row(sq_store *s, const char *op, const srv_secret *x, const char *hash)
{
	sqlite3_stmt *q = s->q[Q_SECRET_INSERT];
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	int brc = SQLITE_OK;
	srv_st_rc r;

	size_t n = srv_mac_msg_secret(x->id, x->client_id, x->principal_id, hash, x->expires_at, m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	b_text(q, 1, x->id, &brc);
	b_text(q, 2, x->principal_id, &brc);
	b_text(q, 3, x->client_id, &brc);
	b_text(q, 4, hash, &brc);
	b_int(q, 5, x->created_at, &brc);
	b_int(q, 6, x->expires_at, &brc);
	b_opt(q, 7, mac, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

/* An identity's client secret for client_id: the row replaces every other. */
static srv_st_rc put_secret(sq_store *s, const char *op, const char *principal_id,
			    const char *client_id, const char *hash)
{
	sqlite3_stmt *q = s->q[Q_SECRET_DROP];
	srv_secret x;
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(q, 1, principal_id, &brc);
	if ((r = sq_run(s, op, q, brc, RUN_PLAIN)) != SRV_ST_OK)
		return r;
	memset(&x, 0, sizeof(x));
	if (rs_uuid(x.id) != 0)
		return SRV_ST_FAILED;
	rs_strlcpy(x.principal_id, principal_id, sizeof(x.principal_id));
	rs_strlcpy(x.client_id, client_id, sizeof(x.client_id));
	x.created_at = time(NULL);
	return put_secret_row(s, op, &x, hash);
}

/* Inserts token t (id "" = a new random one) with hash. */
static srv_st_rc put_token(sq_store *s, const char *op, const srv_token *t, const char *hash,
			   const char *oidc)
{
	sqlite3_stmt *q = s->q[Q_TOKEN_INSERT];
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	srv_id id;
	int brc = SQLITE_OK;
	srv_st_rc r;

	rs_strlcpy(id, t->id, sizeof(id));
	if (!id[0] && rs_uuid(id) != 0)
		return SRV_ST_FAILED;
	size_t n = srv_mac_msg_token(id, hash, t->principal_id, t->kind, t->expires_at, oidc, m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	b_text(q, 1, hash, &brc);
	b_text(q, 2, t->principal_id, &brc);
	b_text(q, 3, t->kind, &brc);
	b_int(q, 4, t->expires_at, &brc);
	b_int(q, 5, t->created_at ? t->created_at : time(NULL), &brc);
	b_text(q, 6, id, &brc);
	b_text(q, 7, t->name, &brc);
	b_opt(q, 8, mac, &brc);
	b_opt(q, 9, oidc, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

static srv_token token_of(const char *principal_id, const char *kind, time_t expires_at)
{
	srv_token t;

	memset(&t, 0, sizeof(t));
	rs_strlcpy(t.principal_id, principal_id, sizeof(t.principal_id));
	rs_strlcpy(t.kind, kind, sizeof(t.kind));
	t.expires_at = expires_at;
	return t;
}

typedef struct {
	const srv_principal *p;
	const char *cred;
} principal_arg;

static srv_st_rc do_principal_insert(sq_store *s, const char *op, const void *arg,
				     const srv_audit *a)
{
	const principal_arg *x = arg;
	const srv_principal *p = x->p;
	sqlite3_stmt *q = s->q[Q_PRINCIPAL_INSERT];
	char mac[SRV_MAC_HEX];
	int brc = SQLITE_OK;
	srv_st_rc r;

	(void)a;
	if ((r = sq_mac_principal(s, p, mac)) != SRV_ST_OK)
		return r;
	b_text(q, 1, p->id, &brc);
	b_text(q, 2, p->type, &brc);
	b_text(q, 3, p->name, &brc);
	b_int(q, 4, p->admin ? 1 : 0, &brc);
	b_opt(q, 5, p->client_id, &brc);
	b_int(q, 6, p->created_at, &brc);
	b_opt(q, 7, mac, &brc);
	b_int(q, 8, p->metrics ? 1 : 0, &brc);
	b_opt(q, 9, p->oidc, &brc);
	if ((r = sq_run(s, op, q, brc, RUN_PLAIN)) != SRV_ST_OK || !x->cred)
		return r;
	if (strcmp(p->type, "identity") == 0)
		return put_secret(s, op, p->id, p->client_id, x->cred);
	srv_token t = token_of(p->id, "api", 0);
	return put_token(s, op, &t, x->cred, NULL);
}

static srv_st_rc sq_principal_insert(srv_store *st, const srv_principal *p, const char *cred_hash,
				     const srv_audit *a)
{
	if (!st || !p || !p->id[0] || !p->name || !p->name[0] || (cred_hash && !*cred_hash) ||
	    (cred_hash && strcmp(p->type, "identity") == 0 && !p->client_id[0]))
		return sq_bad_arg("principal_insert");
	principal_arg x = {p, cred_hash};
	return sq_audited(SQ(st), "principal_insert", do_principal_insert, &x, a);
}

static srv_st_rc sq_principal_get(srv_store *st, const char *id_or_name, srv_principal *out)
{
	srv_st_rc r;

	if (!st || !out)
		return sq_bad_arg("principal_get");
	r = sq_get(SQ(st), "principal_get", SQ(st)->q[Q_PRINCIPAL_GET], id_or_name, sq_rd_principal,
		   out);
	if (r == SRV_ST_OK && (r = sq_check_principal(SQ(st), out)) != SRV_ST_OK)
		srv_principal_clear(out);
	return r;
}

static srv_st_rc sq_principal_list(srv_store *st, size_t offset, size_t limit, srv_principal **out,
				   size_t *n, size_t *total)
{
	srv_st_rc r;

	if (!st)
		return sq_bad_arg("principal_list");
	sq_pager pg = {.count = SQ(st)->q[Q_PRINCIPAL_COUNT],
		       .list = SQ(st)->q[Q_PRINCIPAL_LIST],
		       .rd = sq_rd_principal,
		       .size = sizeof(**out),
		       .clr = clr_principal};
	r = sq_page(SQ(st), "principal_list", &pg, offset, limit, (void **)out, n, total);
	if (r == SRV_ST_OK && (r = sq_filter(SQ(st), *out, n, sizeof(**out), check_principal_rec,
					     clr_principal)) != SRV_ST_OK) {
		srv_principal_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	if (r == SRV_ST_OK && *n == 0) { /* every row refused: none, as sq_list says */
		free(*out);
		*out = NULL;
	}
	return r;
}

/* CONFLICT while taking id away leaves a policy short of approvers. */
static srv_st_rc approver_needed(sq_store *s, const char *op, const char *id)
{
	size_t n = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(s->q[Q_APPROVER_NEEDED], 1, id, &brc);
	if ((r = sq_count(s, op, s->q[Q_APPROVER_NEEDED], brc, &n)) != SRV_ST_OK)
		return r;
	if (n == 0)
		return SRV_ST_OK;
	rs_info("store: %s: %zu polic%s would have too few approvers left", op, n,
		n == 1 ? "y" : "ies");
	return SRV_ST_CONFLICT;
}

/* Changes a principal's disabled flag (disabled >= 0), client id
 * (client_id != NULL: identities only) or OIDC config (oidc != NULL, ""
 * clears it: identities only), and its MAC with them. The row must pass its
 * MAC first: a changed row is never sealed again. NOT_FOUND when there is
 * no such principal (or no such identity for a client id or config). */
static srv_st_rc update_principal(sq_store *s, const char *op, const char *id, int disabled,
				  const char *client_id, const char *oidc)
{
	sqlite3_stmt *q = s->q[Q_PRINCIPAL_DISABLE];
	srv_principal p;
	char mac[SRV_MAC_HEX];
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(q, 1, id, &brc);
	if ((r = sq_one(s, op, q, brc, sq_rd_principal, &p)) != SRV_ST_OK)
		return r;
	if ((r = sq_check_principal(s, &p)) != SRV_ST_OK)
		goto out;
	if ((client_id || oidc) && strcmp(p.type, "identity") != 0) {
		r = SRV_ST_NOT_FOUND;
		goto out;
	}
	if (disabled >= 0)
		p.disabled = disabled != 0;
	if (client_id)
		rs_strlcpy(p.client_id, client_id, sizeof(p.client_id));
	if (oidc) {
		free(p.oidc);
		p.oidc = NULL;
		if (*oidc && !(p.oidc = strdup(oidc))) {
			r = SRV_ST_FAILED;
			goto out;
		}
	}
	if ((r = sq_mac_principal(s, &p, mac)) != SRV_ST_OK)
		goto out;
	q = s->q[Q_PRINCIPAL_UPDATE];
	b_text(q, 1, p.id, &brc);
	b_int(q, 2, p.disabled, &brc);
	b_opt(q, 3, p.client_id, &brc);
	b_opt(q, 4, mac, &brc);
	b_opt(q, 5, p.oidc, &brc);
	r = sq_run(s, op, q, brc, RUN_MUST_CHANGE);
out:
	srv_principal_clear(&p);
	return r;
}

typedef struct {
	const char *id;
	int disabled;
} disable_arg;

static srv_st_rc do_principal_set_disabled(sq_store *s, const char *op, const void *arg,
					   const srv_audit *a)
{
	const disable_arg *x = arg;
	srv_st_rc r;

	(void)a;
	if (x->disabled && (r = approver_needed(s, op, x->id)) != SRV_ST_OK)
		return r;
	return update_principal(s, op, x->id, x->disabled ? 1 : 0, NULL, NULL);
}

static srv_st_rc sq_principal_set_disabled(srv_store *st, const char *id, int disabled,
					   const srv_audit *a)
{
	if (!st || !id)
		return sq_bad_arg("principal_set_disabled");
	disable_arg x = {id, disabled};
	return sq_audited(SQ(st), "principal_set_disabled", do_principal_set_disabled, &x, a);
}

typedef struct {
	const char *id;
	const char *oidc;
} oidc_arg;

static srv_st_rc do_principal_set_oidc(sq_store *s, const char *op, const void *arg,
				       const srv_audit *a)
{
	const oidc_arg *x = arg;

	(void)a;
	return update_principal(s, op, x->id, -1, NULL, x->oidc);
}

static srv_st_rc sq_principal_set_oidc(srv_store *st, const char *id, const char *oidc,
				       const srv_audit *a)
{
	if (!st || !id)
		return sq_bad_arg("principal_set_oidc");
	oidc_arg x = {id, oidc ? oidc : ""};
	return sq_audited(SQ(st), "principal_set_oidc", do_principal_set_oidc, &x, a);
}

/* tokens, secrets, memberships and approver places go with it: ON DELETE
 * CASCADE */
static srv_st_rc do_principal_delete(sq_store *s, const char *op, const void *arg,
				     const srv_audit *a)
{
	const char *id = arg;
	int brc = SQLITE_OK;
	srv_st_rc r;

	(void)a;
	if ((r = approver_needed(s, op, id)) != SRV_ST_OK)
		return r;
	b_text(s->q[Q_PRINCIPAL_DELETE], 1, id, &brc);
	return sq_run(s, op, s->q[Q_PRINCIPAL_DELETE], brc, RUN_MUST_CHANGE | RUN_DELETE);
}

static srv_st_rc sq_principal_delete(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id)
		return sq_bad_arg("principal_delete");
	return sq_audited(SQ(st), "principal_delete", do_principal_delete, id, a);
}

typedef struct {
	const srv_token *t;
	const char *hash;
	size_t cap;
	const char *oidc; /* an access token's OIDC login, NULL = none */
} token_arg;

static srv_st_rc do_token_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const token_arg *x = arg;
	size_t held = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	(void)a;
	if (x->cap && strcmp(x->t->kind, "api") == 0) {
		sqlite3_stmt *q = s->q[Q_TOKEN_COUNT_API];
		b_text(q, 1, x->t->principal_id, &brc);
		b_int(q, 2, x->t->created_at ? x->t->created_at : time(NULL), &brc);
		if ((r = sq_count(s, op, q, brc, &held)) != SRV_ST_OK)
			return r;
		if (held >= x->cap) {
			rs_info("store: %s: the principal holds %zu API tokens, the cap", op, held);
			return SRV_ST_CONFLICT;
		}
	}
	return put_token(s, op, x->t, x->hash, x->oidc);
}

/* An access token of a login is a session, not a credential: no audit. */
static srv_st_rc sq_token_insert(srv_store *st, const char *hash_hex, const char *principal_id,
				 const char *kind, time_t expires_at, const char *oidc,
				 const srv_audit *a)
{
	static const char op[] = "token_insert";
	sq_store *s = SQ(st);
	srv_st_rc r;

	if (!s || !hash_hex || !*hash_hex || !principal_id || !kind)
		return sq_bad_arg(op);
	srv_token t = token_of(principal_id, kind, expires_at);
	token_arg x = {&t, hash_hex, 0, oidc};
	if (a)
		return sq_audited(s, op, do_token_insert, &x, a);
	sq_lock(s);
	r = put_token(s, op, &t, hash_hex, oidc);
	sq_unlock(s);
	return r;
}

static srv_st_rc sq_token_create(srv_store *st, const srv_token *t, const char *hash_hex,
				 size_t cap, const srv_audit *a)
{
	if (!st || !t || !t->id[0] || !t->principal_id[0] || !hash_hex || !*hash_hex ||
	    (strcmp(t->kind, "api") != 0 && strcmp(t->kind, "access") != 0))
		return sq_bad_arg("token_create");
	token_arg x = {t, hash_hex, cap, NULL};
	return sq_audited(SQ(st), "token_create", do_token_insert, &x, a);
}

typedef struct {
	const char *principal_id;
	time_t now;
} token_filter;

static void b_token_filter(sqlite3_stmt *q, const void *filter, int *brc)
{
	const token_filter *f = filter;

	b_text(q, 1, f->principal_id, brc);
	b_int(q, 2, f->now, brc);
}

static srv_st_rc sq_token_list(srv_store *st, const char *principal_id, time_t now, size_t offset,
			       size_t limit, srv_token **out, size_t *n, size_t *total)
{
	token_row *rows = NULL;
	size_t cnt = 0;
	srv_st_rc r;

	if (!st || !principal_id || !out || !n || !total)
		return sq_bad_arg("token_list");
	*out = NULL;
	*n = 0;
	token_filter f = {principal_id, now};
	sq_pager pg = {.count = SQ(st)->q[Q_TOKEN_LIST_COUNT],
		       .list = SQ(st)->q[Q_TOKEN_LIST],
		       .bind = b_token_filter,
		       .filter = &f,
		       .rd = rd_token,
		       .size = sizeof(*rows),
		       .clr = clr_flat};
	r = sq_page(SQ(st), "token_list", &pg, offset, limit, (void **)&rows, &cnt, total);
	if (r == SRV_ST_OK)
		r = sq_filter(SQ(st), rows, &cnt, sizeof(*rows), check_token_rec, clr_flat);
	if (r == SRV_ST_OK && cnt && !(*out = calloc(cnt, sizeof(**out))))
		r = SRV_ST_FAILED;
	for (size_t i = 0; r == SRV_ST_OK && i < cnt; i++)
		(*out)[i] = rows[i].t;
	if (r == SRV_ST_OK)
		*n = cnt;
	free(rows);
	return r;
}

typedef struct {
	const char *principal_id, *id;
} revoke_arg;

static srv_st_rc do_token_revoke(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const revoke_arg *x = arg;
	sqlite3_stmt *q = s->q[Q_TOKEN_REVOKE];
	int brc = SQLITE_OK;

	(void)a;
	b_text(q, 1, x->id, &brc);
	b_text(q, 2, x->principal_id, &brc);
	return sq_run(s, op, q, brc, RUN_MUST_CHANGE | RUN_DELETE);
}

static srv_st_rc sq_token_revoke(srv_store *st, const char *principal_id, const char *id,
				 const srv_audit *a)
{
	if (!st || !principal_id || !id)
		return sq_bad_arg("token_revoke");
	revoke_arg x = {principal_id, id};
	return sq_audited(SQ(st), "token_revoke", do_token_revoke, &x, a);
}

static srv_st_rc sq_token_touch(srv_store *st, const char *id, time_t now)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !id)
		return sq_bad_arg("token_touch");
	sq_lock(s);
	q = s->q[Q_TOKEN_TOUCH];
	b_text(q, 1, id, &brc);
	b_int(q, 2, now, &brc);
	r = sq_run(s, "token_touch", q, brc, RUN_PLAIN);
	sq_unlock(s);
	return r;
}

static srv_st_rc sq_token_purge(srv_store *st, time_t now, size_t *n)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !n)
		return sq_bad_arg("token_purge");
	sq_lock(s);
	sqlite3_stmt *q = s->q[Q_TOKEN_PURGE];
	b_int(q, 1, now, &brc);
	r = sq_run(s, "token_purge", q, brc, RUN_PLAIN);
	*n = r == SRV_ST_OK ? (size_t)sqlite3_changes(s->db) : 0;
	sq_unlock(s);
	return r;
}

/* Both the token's row and its principal's must pass their MACs. */
static srv_st_rc sq_token_lookup(srv_store *st, const char *hash_hex, time_t now,
				 srv_principal *out, srv_token *tok)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	lookup_row x;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !hash_hex || !out)
		return sq_bad_arg("token_lookup");
	memset(&x, 0, sizeof(x));
	sq_lock(s);
	q = s->q[Q_TOKEN_LOOKUP];
	b_text(q, 1, hash_hex, &brc);
	b_int(q, 2, now, &brc);
	r = sq_one(s, "token_lookup", q, brc, rd_lookup, &x);
	sq_unlock(s);
	if (r != SRV_ST_OK)
		return r;
	if ((r = check_token(s, &x.t)) != SRV_ST_OK ||
	    (r = sq_check_principal(s, &x.p)) != SRV_ST_OK ||
	    (x.t.oidc[0] && !(x.p.login = strdup(x.t.oidc)) && (r = SRV_ST_FAILED))) {
		srv_principal_clear(&x.p);
		return r;
	}
	*out = x.p;
	if (tok)
		*tok = x.t.t;
	return SRV_ST_OK;
}

typedef struct {
	const char *principal_id, *client_id, *hash;
} secret_arg;

static srv_st_rc do_secret_set(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const secret_arg *x = arg;
	srv_st_rc r;

	(void)a;
	if ((r = update_principal(s, op, x->principal_id, -1, x->client_id, NULL)) != SRV_ST_OK)
		return r;
	return put_secret(s, op, x->principal_id, x->client_id, x->hash);
}

/* One secret per identity: setting a new one replaces the others, and the
 * identity's client_id follows. NOT_FOUND when no such identity. */
static srv_st_rc sq_secret_set(srv_store *st, const char *principal_id, const char *client_id,
			       const char *secret_hash_hex, const srv_audit *a)
{
	if (!st || !principal_id || !client_id || !*client_id || !secret_hash_hex ||
	    !*secret_hash_hex)
		return sq_bad_arg("secret_set");
	secret_arg x = {principal_id, client_id, secret_hash_hex};
	return sq_audited(SQ(st), "secret_set", do_secret_set, &x, a);
}

typedef struct {
	const srv_secret *s;
	const char *hash;
	time_t old_until;
} rotate_arg;

/* Every other secret of the identity ends at old_until (re-sealed, since
 * the expiry is part of its MAC), or now when that is past. */
static srv_st_rc end_old_secrets(sq_store *s, const char *op, const rotate_arg *x)
{
	secret_row *rows = NULL;
	size_t n = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(s->q[Q_SECRET_ROWS], 1, x->s->principal_id, &brc);
	r = sq_list(s, op, s->q[Q_SECRET_ROWS], brc, rd_secret, sizeof(*rows), clr_flat,
		    (void **)&rows, &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		secret_row *o = &rows[i];
		unsigned char m[SRV_MAC_MSG_MAX];
		char mac[SRV_MAC_HEX];
		sqlite3_stmt *q;

		if (x->old_until <= x->s->created_at ||
		    (o->s.expires_at && o->s.expires_at <= x->s->created_at)) {
			q = s->q[Q_SECRET_DELETE];
			b_text(q, 1, o->s.id, &brc);
			r = sq_run(s, op, q, brc, RUN_PLAIN);
			continue;
		}
		if (o->s.expires_at && o->s.expires_at <= x->old_until)
			continue; /* ends sooner already */
		/* a row that fails its MAC is not re-sealed: it stays refused */
		if (check_secret(s, o) != SRV_ST_OK)
			continue;
		size_t len = srv_mac_msg_secret(o->s.id, o->s.client_id, o->s.principal_id, o->hash,
						x->old_until, m);
		if ((r = srv_rowmac_seal(s->mac, m, len, mac)) != SRV_ST_OK)
			break;
		q = s->q[Q_SECRET_EXPIRE];
		b_text(q, 1, o->s.id, &brc);
		b_int(q, 2, x->old_until, &brc);
		b_opt(q, 3, mac, &brc);
		r = sq_run(s, op, q, brc, RUN_PLAIN);
	}
	free(rows);
	return r;
}

static srv_st_rc do_secret_rotate(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const rotate_arg *x = arg;
	sqlite3_stmt *q = s->q[Q_SECRET_CLIENT];
	srv_principal p;
	srv_secret ns;
	int brc = SQLITE_OK;
	srv_st_rc r;

	(void)a;
	b_text(q, 1, x->s->principal_id, &brc);
	if ((r = sq_one(s, op, q, brc, sq_rd_principal, &p)) != SRV_ST_OK)
		return r;
	if ((r = sq_check_principal(s, &p)) == SRV_ST_OK &&
	    (strcmp(p.type, "identity") != 0 || !p.client_id[0]))
		r = SRV_ST_NOT_FOUND;
	ns = *x->s;
	rs_strlcpy(ns.client_id, p.client_id, sizeof(ns.client_id));
	srv_principal_clear(&p);
	if (r != SRV_ST_OK || (r = end_old_secrets(s, op, x)) != SRV_ST_OK)
		return r;
	return put_secret_row(s, op, &ns, x->hash);
}

static srv_st_rc sq_secret_rotate(srv_store *st, const srv_secret *sec, const char *hash_hex,
				  time_t old_until, const srv_audit *a)
{
	if (!st || !sec || !sec->id[0] || !sec->principal_id[0] || !hash_hex || !*hash_hex)
		return sq_bad_arg("secret_rotate");
	rotate_arg x = {sec, hash_hex, old_until};
	return sq_audited(SQ(st), "secret_rotate", do_secret_rotate, &x, a);
}

static srv_st_rc sq_secret_list(srv_store *st, const char *principal_id, time_t now,
				srv_secret **out, size_t *n)
{
	sq_store *s = SQ(st);
	secret_row *rows = NULL;
	size_t cnt = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !principal_id || !out || !n)
		return sq_bad_arg("secret_list");
	*out = NULL;
	*n = 0;
	sq_lock(s);
	b_text(s->q[Q_SECRET_LIST], 1, principal_id, &brc);
	b_int(s->q[Q_SECRET_LIST], 2, now, &brc);
	r = sq_list(s, "secret_list", s->q[Q_SECRET_LIST], brc, rd_secret, sizeof(*rows), clr_flat,
		    (void **)&rows, &cnt);
	sq_unlock(s);
	if (r == SRV_ST_OK)
		r = sq_filter(s, rows, &cnt, sizeof(*rows), check_secret_rec, clr_flat);
	if (r == SRV_ST_OK && cnt && !(*out = calloc(cnt, sizeof(**out))))
		r = SRV_ST_FAILED;
	for (size_t i = 0; r == SRV_ST_OK && i < cnt; i++)
		(*out)[i] = rows[i].s;
	if (r == SRV_ST_OK)
		*n = cnt;
	free(rows);
	return r;
}

/* Compares without an early exit. */
static int hash_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* Every unexpired secret of client_id is compared (an overlap may leave
 * several); the one that matches must pass its MAC, and so must its
 * principal. */
static srv_st_rc sq_secret_lookup(srv_store *st, const char *client_id, const char *secret_hash_hex,
				  time_t now, srv_principal *out)
{
	sq_store *s = SQ(st);
	secret_lookup_row *rows = NULL;
	size_t n = 0, hit = SIZE_MAX;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !client_id || !secret_hash_hex || !out)
		return sq_bad_arg("secret_lookup");
	sq_lock(s);
	b_text(s->q[Q_SECRET_LOOKUP], 1, client_id, &brc);
	b_int(s->q[Q_SECRET_LOOKUP], 2, now, &brc);
	r = sq_list(s, "secret_lookup", s->q[Q_SECRET_LOOKUP], brc, rd_secret_lookup, sizeof(*rows),
		    clr_secret_lookup, (void **)&rows, &n);
	sq_unlock(s);
	if (r != SRV_ST_OK)
		return r;
	for (size_t i = 0; i < n; i++)
		if (hash_eq(rows[i].s.hash, secret_hash_hex) && hit == SIZE_MAX)
			hit = i;
	if (hit == SIZE_MAX)
		r = SRV_ST_NOT_FOUND;
	else if ((r = check_secret(s, &rows[hit].s)) == SRV_ST_OK &&
		 (r = sq_check_principal(s, &rows[hit].p)) == SRV_ST_OK) {
		*out = rows[hit].p;
		memset(&rows[hit].p, 0, sizeof(rows[hit].p));
	}
	for (size_t i = 0; i < n; i++)
		srv_principal_clear(&rows[i].p);
	free(rows);
	return r;
}

static void sq_set_row_mac(srv_store *st, srv_row_mac_fn fn, void *arg)
{
	if (st && SQ(st)->mac)
		srv_rowmac_set(SQ(st)->mac, fn, arg);
}

static const srv_store_ops sq_ops = {
	.close = sq_close,
	.backup = sq_backup,
	.ping = sq_ping,
	.meta_get = sq_meta_get,
	.meta_set = sq_meta_set,
	.meta_add = sq_meta_add,
	.principal_insert = sq_principal_insert,
	.principal_get = sq_principal_get,
	.principal_list = sq_principal_list,
	.principal_set_disabled = sq_principal_set_disabled,
	.principal_set_oidc = sq_principal_set_oidc,
	.principal_delete = sq_principal_delete,
	.token_insert = sq_token_insert,
	.token_lookup = sq_token_lookup,
	.token_purge = sq_token_purge,
	.token_create = sq_token_create,
	.token_list = sq_token_list,
	.token_revoke = sq_token_revoke,
	.token_touch = sq_token_touch,
	.secret_set = sq_secret_set,
	.secret_lookup = sq_secret_lookup,
	.secret_rotate = sq_secret_rotate,
	.secret_list = sq_secret_list,
	.key_insert = sq_key_insert,
	.key_get = sq_key_get,
	.key_list = sq_key_list,
	.key_find_spki = sq_key_find_spki,
	.cert_insert = sq_cert_insert,
	.cert_get = sq_cert_get,
	.cert_list = sq_cert_list,
	.signer_insert = sq_signer_insert,
	.signer_get = sq_signer_get,
	.signer_list = sq_signer_list,
	.signer_update = sq_signer_update,
	.signer_retire = sq_signer_retire,
	.member_set = sq_member_set,
	.member_delete = sq_member_delete,
	.member_role = sq_member_role,
	.member_list = sq_member_list,
	.operation_insert = sq_operation_insert,
	.operation_list = sq_operation_list,
	.history_set_retention = sq_history_set_retention,
	.policy_insert = sq_policy_insert,
	.policy_get = sq_policy_get,
	.policy_list = sq_policy_list,
	.policy_update = sq_policy_update,
	.policy_delete = sq_policy_delete,
	.request_insert = sq_request_insert,
	.request_get = sq_request_get,
	.request_list = sq_request_list,
	.request_decide = sq_request_decide,
	.decision_list = sq_decision_list,
	.request_close = sq_request_close,
	.grant_get = sq_grant_get,
	.grant_list = sq_grant_list,
	.grant_revoke = sq_grant_revoke,
	.grant_find_active = sq_grant_find_active,
	.operation_insert_consume = sq_operation_insert_consume,
	.operation_find_key = sq_operation_find_key,
	.audit_list = sq_audit_list,
	.tsa_insert = sq_tsa_insert,
	.tsa_get = sq_tsa_get,
	.tsa_list = sq_tsa_list,
	.tsa_update = sq_tsa_update,
	.tsa_delete = sq_tsa_delete,
	.timestamp_insert = sq_timestamp_insert,
	.timestamp_list = sq_timestamp_list,
	.session_insert = sq_session_insert,
	.session_lookup = sq_session_lookup,
	.session_touch = sq_session_touch,
	.session_delete = sq_session_delete,
	.session_purge = sq_session_purge,
	.operation_daily = sq_operation_daily,
	.set_row_mac = sq_set_row_mac,
	.seal_rows = sq_seal_rows,
	.chain_rows = sq_chain_rows,
	.chain_count_seq = sq_chain_count_seq,
	.chain_head = sq_chain_head,
	.checkpoint_insert = sq_checkpoint_insert,
	.checkpoint_list = sq_checkpoint_list,
	.checkpoint_last = sq_checkpoint_last,
};

/* Prepared once for the life of the connection: a typo in any statement
 * fails the open, not a request. */
static int prepare_all(sq_store *s, const char *const *sql, sqlite3_stmt **q, int n,
		       const char *path, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		int rc = sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q[i],
					    NULL);

		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: cannot prepare \"%.40s...\": %s", path, sql[i],
				 sqlite3_errmsg(s->db));
			return -1;
		}
	}
	return 0;
}

srv_store *srv_store_sqlite_open(const char *path, char *err, size_t errlen)
{
	char dummy[1];
	sq_store *s;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!sqlite3_threadsafe()) {
		snprintf(err, errlen, "this SQLite library was built without thread support");
		return NULL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base.ops = &sq_ops;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		snprintf(err, errlen, "cannot create a mutex");
		free(s);
		return NULL;
	}
	if (sq_history_init(s) != 0) {
		snprintf(err, errlen, "cannot create a mutex");
		pthread_mutex_destroy(&s->mu);
		free(s);
		return NULL;
	}
	if (!(s->mac = srv_rowmac_new())) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!(s->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!(s->db = srv_sqlite_db_open(path, err, errlen)))
		goto fail;
	if (prepare_all(s, sq_sql, s->q, Q_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_pki_sql, s->p, P_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_policy_sql, s->pl, PL_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_grant_sql, s->gr, GR_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_history_sql, s->h, H_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_tsa_sql, s->ts, TS_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_session_sql, s->ss, SS_COUNT, path, err, errlen) != 0 ||
	    prepare_all(s, sq_chain_sql, s->ch, CH_COUNT, path, err, errlen) != 0)
		goto fail;
	return &s->base;
fail:
	sq_close(&s->base);
	return NULL;
}
