/* The PostgreSQL implementation of srv_store_ops (libpq): a pool of
 * db_connections connections, each with every statement prepared when it is
 * made; an op takes one for its whole run. Here: the pool, the outage rule
 * (one log line per outage, a dead connection remade on the next use), the
 * shared helpers, open and close, meta, principals, tokens and secrets.
 * Keys, certificates, signers, members and history are in store_pg_pki.c;
 * policies and requests in store_pg_policy.c; grants and the audit log in
 * store_pg_grant.c; row MACs in store_pg_mac.c; the schema in
 * store_pg_migrate.c. Every op means what
 * the SQLite store's op means (server/store/store.h). */
#include <inttypes.h>
#include <stdio.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"

#define PG_STR2(x) #x
#define PG_STR(x) PG_STR2(x)
/* a token's columns (rd_token), alias t */
#define TOK_COLS                                                                                   \
	"t.id, t.principal_id, t.kind, t.name, t.created_at, t.expires_at, t.last_used_at, "       \
	"t.hash, t.mac, t.oidc"
#define TOK_NCOLS 10
/* a secret's columns (rd_secret), alias s */
#define SEC_COLS                                                                                   \
	"s.id, s.principal_id, s.client_id, s.created_at, s.expires_at, s.secret_hash, s.mac"
#define SEC_NCOLS 7

const pg_sql pg_core_sql[] = {
	{G_PING, "SELECT count(*) FROM meta"},
	{G_META_GET, "SELECT value FROM meta WHERE key = $1"},
	{G_META_SET, "INSERT INTO meta (key, value) VALUES ($1, $2)"
		     " ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
	{G_META_ADD, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"},
	{G_PRINCIPAL_INSERT,
	 "INSERT INTO principals (id, type, name, admin, client_id, created_at, mac, metrics, oidc)"
	 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"},
	{G_PRINCIPAL_GET, "SELECT " PG_P_COLS " FROM principals p" PG_BY_ID_OR_NAME("p")},
	{G_PRINCIPAL_LIST,
	 "SELECT " PG_P_COLS " FROM principals p ORDER BY p.name" PG_PAGE("$1", "$2")},
	{G_PRINCIPAL_COUNT, "SELECT count(*) FROM principals"},
	{G_PRINCIPAL_DISABLE, "SELECT " PG_P_COLS " FROM principals p WHERE p.id = $1 FOR UPDATE"},
	{G_PRINCIPAL_UPDATE, "UPDATE principals SET disabled = $2, client_id = $3, mac = $4,"
			     " oidc = $5 WHERE id = $1"},
	{G_PRINCIPAL_DELETE, "DELETE FROM principals WHERE id = $1"},
	/* as Q_APPROVER_NEEDED of the SQLite store */
	{G_APPROVER_NEEDED,
	 "SELECT count(*) FROM policies p"
	 " WHERE EXISTS (SELECT 1 FROM principals x WHERE x.id = $1 AND x.disabled = 0"
	 " AND x.type = 'user')"
	 " AND EXISTS (SELECT 1 FROM policy_approvers a WHERE a.policy_id = p.id"
	 " AND a.principal_id = $1)"
	 " AND (SELECT count(*) FROM policy_approvers b JOIN principals u ON u.id = b.principal_id"
	 " WHERE b.policy_id = p.id AND b.principal_id <> $1 AND u.disabled = 0"
	 " AND u.type = 'user') < p.required_approvals"},
	{G_TOKEN_INSERT, "INSERT INTO tokens (hash, principal_id, kind, expires_at, created_at,"
			 " id, name, mac, oidc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"},
	{G_TOKEN_PURGE, "DELETE FROM tokens WHERE expires_at > 0 AND expires_at <= $1"},
	{G_TOKEN_LOOKUP, "SELECT " PG_P_COLS ", " TOK_COLS
			 " FROM tokens t JOIN principals p ON p.id = t.principal_id"
			 " WHERE t.hash = $1 AND (t.expires_at = 0 OR t.expires_at > $2)"},
	{G_TOKEN_COUNT_API, "SELECT count(*) FROM tokens WHERE principal_id = $1 AND kind = 'api'"
			    " AND (expires_at = 0 OR expires_at > $2)"},
	{G_TOKEN_LIST, "SELECT " TOK_COLS " FROM tokens t WHERE t.principal_id = $1"
		       " AND (t.expires_at = 0 OR t.expires_at > $2)"
		       " ORDER BY t.created_at, t.seq" PG_PAGE("$3", "$4")},
	{G_TOKEN_LIST_COUNT, "SELECT count(*) FROM tokens t WHERE t.principal_id = $1"
			     " AND (t.expires_at = 0 OR t.expires_at > $2)"},
	{G_TOKEN_REVOKE, "DELETE FROM tokens WHERE id = $1 AND principal_id = $2"},
	{G_TOKEN_TOUCH, "UPDATE tokens SET last_used_at = $2 WHERE id = $1"
			" AND last_used_at <= $2::bigint - " PG_STR(SRV_TOKEN_TOUCH_SECS)},
	{G_SECRET_CLIENT, "SELECT " PG_P_COLS " FROM principals p WHERE p.id = $1 FOR UPDATE"},
	{G_SECRET_DROP, "DELETE FROM secrets WHERE principal_id = $1"},
	{G_SECRET_INSERT, "INSERT INTO secrets (id, principal_id, client_id, secret_hash,"
			  " created_at, expires_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7)"},
	{G_SECRET_LOOKUP, "SELECT " SEC_COLS ", " PG_P_COLS
			  " FROM secrets s JOIN principals p ON p.id = s.principal_id"
			  " WHERE s.client_id = $1 AND (s.expires_at = 0 OR s.expires_at > $2)"
			  " ORDER BY s.created_at, s.seq"},
	{G_SECRET_ROWS, "SELECT " SEC_COLS " FROM secrets s WHERE s.principal_id = $1"},
	{G_SECRET_EXPIRE, "UPDATE secrets SET expires_at = $2, mac = $3 WHERE id = $1"},
	{G_SECRET_DELETE, "DELETE FROM secrets WHERE id = $1"},
	{G_SECRET_LIST, "SELECT " SEC_COLS " FROM secrets s WHERE s.principal_id = $1"
			" AND (s.expires_at = 0 OR s.expires_at > $2)"
			" ORDER BY s.created_at, s.seq"},
	{G_WRITE_LOCK, "SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK_KEY ")"},
	{-1, NULL},
};

/* ---- parameters ------------------------------------------------------------ */

static void a_set(pg_args *a, int i, const char *v, int len, int fmt)
{
	if (i < 1 || i > PG_MAXP)
		abort(); /* a statement table bug */
	a->v[i - 1] = v;
	a->len[i - 1] = len;
	a->fmt[i - 1] = fmt;
	if (i > a->n)
		a->n = i;
}

void a_text(pg_args *a, int i, const char *v)
{
	a_set(a, i, v ? v : "", 0, 0);
}

void a_opt(pg_args *a, int i, const char *v)
{
	a_set(a, i, v && *v ? v : NULL, 0, 0);
}

void a_int(pg_args *a, int i, long long v)
{
	if (i < 1 || i > PG_MAXP)
		abort();
	snprintf(a->num[i - 1], sizeof(a->num[i - 1]), "%lld", v);
	a_set(a, i, a->num[i - 1], 0, 0);
}

void a_blob(pg_args *a, int i, const void *p, size_t n)
{
	static const char empty[1];

	a_set(a, i, n ? p : empty, (int)n, 1);
}

void a_limit(pg_args *a, int i, size_t v)
{
	if (v == 0)
		a_set(a, i, NULL, 0, 0);
	else
		a_int(a, i, v > (size_t)INT64_MAX ? INT64_MAX : (long long)v);
}

void pg_a_range(pg_args *a, int i, const srv_list_filter *f)
{
	if (f->has_from)
		a_int(a, i, (long long)f->from);
	else
		a_set(a, i, NULL, 0, 0);
	if (f->has_to)
		a_int(a, i + 1, (long long)f->to);
	else
		a_set(a, i + 1, NULL, 0, 0);
}

srv_st_rc pg_bad_arg(const char *op)
{
	rs_err("store: %s: invalid argument", op);
	return SRV_ST_FAILED;
}

/* ---- the pool and the outage rule ---------------------------------------------- */

static const char *sql_of(int id)
{
	static const pg_sql *const lists[] = {pg_core_sql,  pg_pki_sql, pg_policy_sql,
					      pg_grant_sql, pg_tsa_sql, pg_session_sql,
					      pg_chain_sql};

	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
		for (const pg_sql *q = lists[l]; q->sql; q++)
			if (q->id == id)
				return q->sql;
	return NULL;
}

/* Prepares every statement on c. 0 or -1 + err. */
static int prepare_all(PGconn *c, char *err, size_t errlen)
{
	for (int i = 0; i < PG_NSTMT; i++) {
		const char *sql = sql_of(i);
		char name[16];
		PGresult *res;

		if (!sql) {
			snprintf(err, errlen, "statement %d has no text", i);
			return -1;
		}
		snprintf(name, sizeof(name), "q%d", i);
		res = PQprepare(c, name, sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "cannot prepare \"%.60s...\": %s", sql,
				 PQresultErrorMessage(res));
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/* libpq's messages end with a newline; logs want one line. */
static void one_line(const char *msg, char *out, size_t n)
{
	rs_strlcpy(out, msg ? msg : "", n);
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
}

/* The one place an outage is logged: the first failure of an outage at
 * error level, the rest at debug, and its end once. */
static void outage(pg_store *s, const char *op, const char *msg)
{
	char line[256];
	int first;

	one_line(msg, line, sizeof(line));
	pthread_mutex_lock(&s->mu);
	first = !s->down;
	s->down = 1;
	pthread_mutex_unlock(&s->mu);
	if (first)
		rs_err("store: the database is unavailable (%s: %s); requests get 503 until it is "
		       "back",
		       op, line);
	else
		rs_debug("store: %s: database still unavailable: %s", op, line);
}

static void recovered(pg_store *s)
{
	int was;

	pthread_mutex_lock(&s->mu);
	was = s->down;
	s->down = 0;
	pthread_mutex_unlock(&s->mu);
	if (was)
		rs_warn("store: the database is reachable again");
}

/* NOTICEs ("relation already exists, skipping") are not for the log. */
static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Opens a connection to uri. The URI's own connect_timeout, when it has
 * one, wins over ours. */
static PGconn *connect_uri(const char *uri, char *err, size_t errlen)
{
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const vals[] = {"5", "rsignd", uri, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		char line[256];

		one_line(PQerrorMessage(c), line, sizeof(line));
		snprintf(err, errlen, "%s", line);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

static int reconnect(pg_store *s, pg_conn *pc, const char *op)
{
	char err[512];

	if (pc->c)
		PQfinish(pc->c);
	pc->c = connect_uri(s->uri, err, sizeof(err));
	if (pc->c && prepare_all(pc->c, err, sizeof(err)) != 0) {
		PQfinish(pc->c);
		pc->c = NULL;
	}
	if (!pc->c) {
		outage(s, op, err);
		return -1;
	}
	recovered(s);
	return 0;
}

srv_st_rc pg_acquire(pg_store *s, const char *op, pg_conn **out)
{
	pg_conn *pc;

	pthread_mutex_lock(&s->mu);
	while (s->n_idle == 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pc = &s->conns[s->idle[--s->n_idle]];
	pthread_mutex_unlock(&s->mu);
	pc->used = 0;
	/* reading what waits on an idle link notices a server that went away
	 * (its goodbye, or the closed socket) before anything is sent */
	if (pc->c && PQstatus(pc->c) == CONNECTION_OK && !PQconsumeInput(pc->c))
		rs_debug("store: %s: a pooled connection was closed; making it again", op);
	if ((!pc->c || PQstatus(pc->c) != CONNECTION_OK) && reconnect(s, pc, op) != 0) {
		pg_release(s, pc);
		return SRV_ST_UNAVAILABLE;
	}
	*out = pc;
	return SRV_ST_OK;
}

void pg_release(pg_store *s, pg_conn *pc)
{
	/* an op that failed mid-transaction rolled back; anything else is a
	 * bug or a dead link: drop the connection rather than reuse it */
	if (pc->c && PQtransactionStatus(pc->c) != PQTRANS_IDLE) {
		PQfinish(pc->c);
		pc->c = NULL;
	}
	pthread_mutex_lock(&s->mu);
	s->idle[s->n_idle++] = (size_t)(pc - s->conns);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- statements ------------------------------------------------------------------ */

static int link_lost(PGconn *c, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(c) != CONNECTION_OK)
		return 1;
	/* 08: connection exception; 57P01..3: shut down, crashed, starting */
	return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

/* The one place PostgreSQL errors become srv_st_rc. fk is what a foreign key
 * failure means for the statement (see PGRUN_DELETE). Logs once; the message
 * names tables and constraints, and values only as libpq's detail does, which
 * is not logged. */
static srv_st_rc pg_fail(pg_store *s, pg_conn *pc, const char *op, const PGresult *res,
			 srv_st_rc fk)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[256];
	srv_st_rc r;

	if (!msg)
		msg = PQerrorMessage(pc->c);
	if (link_lost(pc->c, res)) {
		outage(s, op, msg);
		return SRV_ST_UNAVAILABLE;
	}
	if (state && strcmp(state, "23505") == 0)
		r = SRV_ST_CONFLICT; /* unique_violation */
	else if (state && strcmp(state, "23503") == 0)
		r = fk; /* foreign_key_violation */
	else if (state && (strncmp(state, "53", 2) == 0 || strcmp(state, "40001") == 0 ||
			   strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0))
		r = SRV_ST_UNAVAILABLE; /* resources, serialization, deadlock, lock */
	else
		r = SRV_ST_FAILED;
	one_line(msg, line, sizeof(line));
	if (r == SRV_ST_CONFLICT || r == SRV_ST_NOT_FOUND)
		rs_info("store: %s: %s", op, line);
	else
		rs_err("store: %s: %s (%s)", op, line, state ? state : "no state");
	return r;
}

/* Runs stmt; on an op's first statement over a link found dead, remakes the
 * connection and runs it once more (nothing of the op ran). */
static PGresult *exec_stmt(pg_store *s, pg_conn *pc, const char *op, int stmt, const pg_args *a)
{
	static const pg_args none;
	char name[16];
	PGresult *res;

	if (!a)
		a = &none;
	snprintf(name, sizeof(name), "q%d", stmt);
	for (int attempt = 0;; attempt++) {
		res = PQexecPrepared(pc->c, name, a->n, a->v, a->len, a->fmt, 0);
		ExecStatusType t = PQresultStatus(res);
		if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK || attempt > 0 || pc->used > 0 ||
		    !link_lost(pc->c, res) || reconnect(s, pc, op) != 0)
			break;
		PQclear(res);
	}
	pc->used++;
	return res;
}

/* BEGIN, COMMIT and ROLLBACK: plain commands. */
static srv_st_rc exec_plain(pg_store *s, pg_conn *pc, const char *op, const char *cmd)
{
	PGresult *res;
	srv_st_rc r = SRV_ST_OK;

	for (int attempt = 0;; attempt++) {
		res = PQexec(pc->c, cmd);
		if (PQresultStatus(res) == PGRES_COMMAND_OK || attempt > 0 || pc->used > 0 ||
		    !link_lost(pc->c, res) || reconnect(s, pc, op) != 0)
			break;
		PQclear(res);
	}
	pc->used++;
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = pg_fail(s, pc, op, res, SRV_ST_FAILED);
	PQclear(res);
	return r;
}

srv_st_rc pg_run(pg_store *s, pg_conn *pc, const char *op, int stmt, const pg_args *a, int flags,
		 size_t *changed)
{
	PGresult *res = exec_stmt(s, pc, op, stmt, a);
	ExecStatusType t = PQresultStatus(res);
	srv_st_rc r = SRV_ST_OK;
	size_t n = 0;

	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
		r = pg_fail(s, pc, op, res,
			    (flags & PGRUN_DELETE) ? SRV_ST_CONFLICT : SRV_ST_NOT_FOUND);
	} else {
		n = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
		if ((flags & PGRUN_MUST_CHANGE) && n == 0)
			r = SRV_ST_NOT_FOUND;
	}
	if (changed)
		*changed = r == SRV_ST_OK ? n : 0;
	PQclear(res);
	return r;
}

srv_st_rc pg_begin(pg_store *s, pg_conn *pc, const char *op)
{
	return exec_plain(s, pc, op, "BEGIN");
}

void pg_rollback(pg_store *s, pg_conn *pc, const char *op)
{
	if (pc->c && PQtransactionStatus(pc->c) != PQTRANS_IDLE)
		(void)exec_plain(s, pc, op, "ROLLBACK");
}

srv_st_rc pg_commit(pg_store *s, pg_conn *pc, const char *op)
{
	PGresult *res = PQexec(pc->c, "COMMIT");
	srv_st_rc r = SRV_ST_OK;

	pc->used++;
	/* a COMMIT of a failed transaction answers ROLLBACK, without error */
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = pg_fail(s, pc, op, res, SRV_ST_FAILED);
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		r = SRV_ST_FAILED;
	PQclear(res);
	if (r != SRV_ST_OK)
		pg_rollback(s, pc, op);
	return r;
}

srv_st_rc pg_audited(pg_store *s, const char *op, pg_change change, const void *arg,
		     const srv_audit *a)
{
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !a || !a->action[0] || !a->object_type[0] || !a->object_id[0])
		return pg_bad_arg(op);
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	if ((r = pg_begin(s, pc, op)) != SRV_ST_OK)
		goto out;
	/* the entry first, so that what the change brings about (audited by
	 * the change itself) follows its cause in the log */
	if ((r = pg_run(s, pc, op, G_WRITE_LOCK, NULL, PGRUN_PLAIN, NULL)) != SRV_ST_OK ||
	    (r = pg_audit_on(s, pc, op, a)) != SRV_ST_OK ||
	    (r = change(s, pc, op, arg, a)) != SRV_ST_OK) {
		pg_rollback(s, pc, op);
		goto out;
	}
	r = pg_commit(s, pc, op);
out:
	pg_release(s, pc);
	return r;
}

/* ---- rows ---------------------------------------------------------------------- */

char *pg_col_dup(const PGresult *res, int r, int c, const char *def)
{
	return strdup(PQgetisnull(res, r, c) ? def : PQgetvalue(res, r, c));
}

void pg_col_copy(const PGresult *res, int r, int c, char *out, size_t n)
{
	rs_strlcpy(out, PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c), n);
}

long long pg_col_ll(const PGresult *res, int r, int c)
{
	const char *v = PQgetvalue(res, r, c);

	if (PQgetisnull(res, r, c))
		return 0;
	if (strcmp(v, "t") == 0)
		return 1; /* a boolean */
	return strtoll(v, NULL, 10);
}

srv_st_rc pg_rd_str(const PGresult *res, int r, int c, void *out)
{
	char **v = out;

	*v = pg_col_dup(res, r, c, "");
	return *v ? SRV_ST_OK : SRV_ST_FAILED;
}

srv_st_rc pg_rd_id(const PGresult *res, int r, int c, void *out)
{
	pg_col_copy(res, r, c, out, sizeof(srv_id));
	return SRV_ST_OK;
}

srv_st_rc pg_rd_principal(const PGresult *res, int r, int c, void *out)
{
	srv_principal *p = out;

	memset(p, 0, sizeof(*p));
	pg_col_copy(res, r, c, p->id, sizeof(p->id));
	pg_col_copy(res, r, c + 1, p->type, sizeof(p->type));
	p->admin = pg_col_ll(res, r, c + 3) != 0;
	pg_col_copy(res, r, c + 4, p->client_id, sizeof(p->client_id));
	p->created_at = (time_t)pg_col_ll(res, r, c + 5);
	p->disabled = pg_col_ll(res, r, c + 6) != 0;
	pg_col_copy(res, r, c + 7, p->mac, sizeof(p->mac));
	p->metrics = pg_col_ll(res, r, c + 8) != 0;
	p->name = pg_col_dup(res, r, c + 2, "");
	if (!PQgetisnull(res, r, c + 9) && !(p->oidc = pg_col_dup(res, r, c + 9, ""))) {
		free(p->name);
		p->name = NULL;
	}
	return p->name ? SRV_ST_OK : SRV_ST_FAILED;
}

/* A text parameter the database cannot hold (not UTF-8): SQLite compares
 * such bytes and finds no row; so does a read here. */
static int unmatchable(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return state && strcmp(state, "22021") == 0; /* character_not_in_repertoire */
}

/* Runs a query; *res on success (TUPLES_OK), else the mapped error:
 * NOT_FOUND (*res NULL) when a parameter can match no row. */
static srv_st_rc query(pg_store *s, pg_conn *pc, const char *op, int stmt, const pg_args *a,
		       PGresult **out)
{
	PGresult *res = exec_stmt(s, pc, op, stmt, a);
	srv_st_rc r;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*out = res;
		return SRV_ST_OK;
	}
	*out = NULL;
	if (unmatchable(res) && PQtransactionStatus(pc->c) == PQTRANS_IDLE) {
		rs_info("store: %s: a value that is not UTF-8 matches nothing", op);
		PQclear(res);
		return SRV_ST_NOT_FOUND;
	}
	r = pg_fail(s, pc, op, res, SRV_ST_FAILED);
	PQclear(res);
	*out = NULL;
	return r;
}

srv_st_rc pg_one(pg_store *s, pg_conn *pc, const char *op, int stmt, const pg_args *a, pg_reader rd,
		 void *out)
{
	PGresult *res;
	srv_st_rc r;

	if ((r = query(s, pc, op, stmt, a, &res)) != SRV_ST_OK)
		return r;
	if (PQntuples(res) == 0) {
		r = SRV_ST_NOT_FOUND;
	} else if ((r = rd(res, 0, 0, out)) != SRV_ST_OK) {
		rs_err("store: %s: cannot read the row (out of memory or bad value)", op);
	}
	PQclear(res);
	return r;
}

srv_st_rc pg_list(pg_store *s, pg_conn *pc, const char *op, int stmt, const pg_args *a,
		  pg_reader rd, size_t size, void (*clr)(void *), void **out, size_t *n)
{
	PGresult *res;
	unsigned char *v = NULL;
	size_t cnt = 0, rows;
	srv_st_rc r;

	*out = NULL;
	*n = 0;
	if ((r = query(s, pc, op, stmt, a, &res)) != SRV_ST_OK)
		return r == SRV_ST_NOT_FOUND ? SRV_ST_OK : r; /* none can match */
	rows = (size_t)PQntuples(res);
	if (rows && (rows > SIZE_MAX / size || !(v = calloc(rows, size)))) {
		rs_err("store: %s: out of memory", op);
		r = SRV_ST_FAILED;
		goto out;
	}
	for (; cnt < rows; cnt++) {
		if ((r = rd(res, (int)cnt, 0, v + cnt * size)) != SRV_ST_OK) {
			rs_err("store: %s: cannot read a row (out of memory or bad value)", op);
			goto out;
		}
	}
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
out:
	PQclear(res);
	for (size_t i = 0; i < cnt; i++)
		clr(v + i * size);
	free(v);
	return r;
}

srv_st_rc pg_count(pg_store *s, pg_conn *pc, const char *op, int stmt, const pg_args *a,
		   size_t *total)
{
	PGresult *res;
	srv_st_rc r;

	if ((r = query(s, pc, op, stmt, a, &res)) != SRV_ST_OK) {
		if (r == SRV_ST_NOT_FOUND)
			*total = 0; /* none can match */
		return r == SRV_ST_NOT_FOUND ? SRV_ST_OK : r;
	}
	if (PQntuples(res) != 1) {
		rs_err("store: %s: a count returned no row", op);
		r = SRV_ST_FAILED;
	} else {
		*total = (size_t)pg_col_ll(res, 0, 0);
	}
	PQclear(res);
	return r;
}

srv_st_rc pg_get(pg_store *s, const char *op, int stmt, const pg_args *a, pg_reader rd, void *out)
{
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !out)
		return pg_bad_arg(op);
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	r = pg_one(s, pc, op, stmt, a, rd, out);
	pg_release(s, pc);
	return r;
}

srv_st_rc pg_get_list(pg_store *s, const char *op, int stmt, const pg_args *a, pg_reader rd,
		      size_t size, void (*clr)(void *), void **out, size_t *n)
{
	pg_conn *pc;
	srv_st_rc r;

	*out = NULL;
	*n = 0;
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	r = pg_list(s, pc, op, stmt, a, rd, size, clr, out, n);
	pg_release(s, pc);
	return r;
}

srv_st_rc pg_page_on(pg_store *s, pg_conn *pc, const char *op, const pg_pager *pg, size_t offset,
		     size_t limit, void **out, size_t *n, size_t *total)
{
	pg_args a;
	srv_st_rc r;

	memset(&a, 0, sizeof(a));
	if (pg->args) {
		a = *pg->args;
		/* the copy's numbers must point into the copy */
		for (int i = 0; i < a.n; i++)
			if (pg->args->v[i] == pg->args->num[i])
				a.v[i] = a.num[i];
	}
	a.n = pg->nfilter;
	if ((r = pg_count(s, pc, op, pg->count, &a, total)) != SRV_ST_OK)
		return r;
	a_limit(&a, pg->nfilter + 1, limit);
	a_int(&a, pg->nfilter + 2, offset > (size_t)INT64_MAX ? INT64_MAX : (long long)offset);
	return pg_list(s, pc, op, pg->list, &a, pg->rd, pg->size, pg->clr, out, n);
}

srv_st_rc pg_page(pg_store *s, const char *op, const pg_pager *pg, size_t offset, size_t limit,
		  void **out, size_t *n, size_t *total)
{
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !out || !n || !total)
		return pg_bad_arg(op);
	*out = NULL;
	*n = 0;
	*total = 0;
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	r = pg_page_on(s, pc, op, pg, offset, limit, out, n, total);
	pg_release(s, pc);
	return r;
}

PG_CLEARER(clr_principal, srv_principal_clear)

/* ---- ops ------------------------------------------------------------------------- */

static void pg_close(srv_store *st)
{
	pg_store *s = PGS(st);

	if (!s)
		return;
	for (size_t i = 0; i < s->n_conns; i++)
		if (s->conns[i].c)
			PQfinish(s->conns[i].c);
	free(s->conns);
	free(s->idle);
	if (s->uri)
		rs_wipe(s->uri, strlen(s->uri)); /* may hold a password */
	free(s->uri);
	srv_rowmac_free(s->mac);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	srv_batch_fini(&s->hq);
	free(s);
}

static srv_st_rc pg_ping(srv_store *st)
{
	size_t n = 0;
	pg_conn *pc;
	srv_st_rc r;

	if (!st)
		return pg_bad_arg("ping");
	if ((r = pg_acquire(PGS(st), "ping", &pc)) != SRV_ST_OK)
		return r;
	r = pg_count(PGS(st), pc, "ping", G_PING, NULL, &n);
	pg_release(PGS(st), pc);
	return r;
}

static srv_st_rc pg_meta_get(srv_store *st, const char *key, char **value)
{
	pg_args a = {0};

	if (!st || !key || !value)
		return pg_bad_arg("meta_get");
	*value = NULL;
	a_text(&a, 1, key);
	return pg_get(PGS(st), "meta_get", G_META_GET, &a, pg_rd_str, value);
}

/* meta_set (upsert) and meta_add (insert if absent: CONFLICT when set) */
static srv_st_rc meta_write(srv_store *st, const char *op, int qi, int mode, const char *key,
			    const char *value)
{
	pg_args a = {0};
	pg_conn *pc;
	srv_st_rc r;

	if (!st || !key || !value)
		return pg_bad_arg(op);
	a_text(&a, 1, key);
	a_text(&a, 2, value);
	if ((r = pg_acquire(PGS(st), op, &pc)) != SRV_ST_OK)
		return r;
	r = pg_run(PGS(st), pc, op, qi, &a, mode, NULL);
	pg_release(PGS(st), pc);
	return r;
}

static srv_st_rc pg_meta_set(srv_store *st, const char *key, const char *value)
{
	return meta_write(st, "meta_set", G_META_SET, PGRUN_PLAIN, key, value);
}

static srv_st_rc pg_meta_add(srv_store *st, const char *key, const char *value)
{
	srv_st_rc r = meta_write(st, "meta_add", G_META_ADD, PGRUN_MUST_CHANGE, key, value);

	return r == SRV_ST_NOT_FOUND ? SRV_ST_CONFLICT : r;
}

/* Inserts secret x (its id, principal, client id, times) with hash. */
static srv_st_rc put_secret_row(pg_store *s, pg_conn *pc, const char *op, const srv_secret *x,
				const char *hash)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_st_rc r;

	size_t n = srv_mac_msg_secret(x->id, x->client_id, x->principal_id, hash, x->expires_at, m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, x->id);
	a_text(&a, 2, x->principal_id);
	a_text(&a, 3, x->client_id);
	a_text(&a, 4, hash);
	a_int(&a, 5, x->created_at);
	a_int(&a, 6, x->expires_at);
	a_opt(&a, 7, mac);
	return pg_run(s, pc, op, G_SECRET_INSERT, &a, PGRUN_PLAIN, NULL);
}

/* An identity's client secret for client_id: the row replaces every other. */
static srv_st_rc put_secret(pg_store *s, pg_conn *pc, const char *op, const char *principal_id,
			    const char *client_id, const char *hash)
{
	pg_args a = {0};
	srv_secret x;
	srv_st_rc r;

	a_text(&a, 1, principal_id);
	if ((r = pg_run(s, pc, op, G_SECRET_DROP, &a, PGRUN_PLAIN, NULL)) != SRV_ST_OK)
		return r;
	memset(&x, 0, sizeof(x));
	if (rs_uuid(x.id) != 0)
		return SRV_ST_FAILED;
	rs_strlcpy(x.principal_id, principal_id, sizeof(x.principal_id));
	rs_strlcpy(x.client_id, client_id, sizeof(x.client_id));
	x.created_at = time(NULL);
	return put_secret_row(s, pc, op, &x, hash);
}

/* Inserts token t (id "" = a new random one) with hash. */
static srv_st_rc put_token(pg_store *s, pg_conn *pc, const char *op, const srv_token *t,
			   const char *hash, const char *oidc)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_id id;
	srv_st_rc r;

	rs_strlcpy(id, t->id, sizeof(id));
	if (!id[0] && rs_uuid(id) != 0)
		return SRV_ST_FAILED;
	size_t n = srv_mac_msg_token(id, hash, t->principal_id, t->kind, t->expires_at, oidc, m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, hash);
	a_text(&a, 2, t->principal_id);
	a_text(&a, 3, t->kind);
	a_int(&a, 4, t->expires_at);
	a_int(&a, 5, t->created_at ? t->created_at : time(NULL));
	a_text(&a, 6, id);
	a_text(&a, 7, t->name);
	a_opt(&a, 8, mac);
	a_opt(&a, 9, oidc);
	return pg_run(s, pc, op, G_TOKEN_INSERT, &a, PGRUN_PLAIN, NULL);
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

static srv_st_rc do_principal_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				     const srv_audit *au)
{
	const principal_arg *x = arg;
	const srv_principal *p = x->p;
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_st_rc r;

	(void)au;
	if ((r = pg_mac_principal(s, p, mac)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, p->id);
	a_text(&a, 2, p->type);
	a_text(&a, 3, p->name);
	a_int(&a, 4, p->admin ? 1 : 0);
	a_opt(&a, 5, p->client_id);
	a_int(&a, 6, p->created_at);
	a_opt(&a, 7, mac);
	a_int(&a, 8, p->metrics ? 1 : 0);
	a_opt(&a, 9, p->oidc);
	if ((r = pg_run(s, pc, op, G_PRINCIPAL_INSERT, &a, PGRUN_PLAIN, NULL)) != SRV_ST_OK ||
	    !x->cred)
		return r;
	if (strcmp(p->type, "identity") == 0)
		return put_secret(s, pc, op, p->id, p->client_id, x->cred);
	srv_token t = token_of(p->id, "api", 0);
	return put_token(s, pc, op, &t, x->cred, NULL);
}

static srv_st_rc pg_principal_insert(srv_store *st, const srv_principal *p, const char *cred_hash,
				     const srv_audit *a)
{
	if (!st || !p || !p->id[0] || !p->name || !p->name[0] || (cred_hash && !*cred_hash) ||
	    (cred_hash && strcmp(p->type, "identity") == 0 && !p->client_id[0]))
		return pg_bad_arg("principal_insert");
	principal_arg x = {p, cred_hash};
	return pg_audited(PGS(st), "principal_insert", do_principal_insert, &x, a);
}

static srv_st_rc pg_principal_get(srv_store *st, const char *id_or_name, srv_principal *out)
{
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !id_or_name || !out)
		return pg_bad_arg("principal_get");
	a_text(&a, 1, id_or_name);
	r = pg_get(PGS(st), "principal_get", G_PRINCIPAL_GET, &a, pg_rd_principal, out);
	if (r == SRV_ST_OK && (r = pg_check_principal(PGS(st), out)) != SRV_ST_OK)
		srv_principal_clear(out);
	return r;
}

static srv_st_rc check_principal_rec(pg_store *s, const void *rec)
{
	return pg_check_principal(s, rec);
}

static srv_st_rc pg_principal_list(srv_store *st, size_t offset, size_t limit, srv_principal **out,
				   size_t *n, size_t *total)
{
	pg_pager pg = {.count = G_PRINCIPAL_COUNT,
		       .list = G_PRINCIPAL_LIST,
		       .rd = pg_rd_principal,
		       .size = sizeof(**out),
		       .clr = clr_principal};
	srv_st_rc r;

	r = pg_page(PGS(st), "principal_list", &pg, offset, limit, (void **)out, n, total);
	if (r == SRV_ST_OK && (r = pg_filter(PGS(st), *out, n, sizeof(**out), check_principal_rec,
					     clr_principal)) != SRV_ST_OK) {
		srv_principal_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	if (r == SRV_ST_OK && *n == 0) { /* every row refused: none, as pg_list says */
		free(*out);
		*out = NULL;
	}
	return r;
}

static srv_st_rc approver_needed(pg_store *s, pg_conn *pc, const char *op, const char *id)
{
	pg_args a = {0};
	size_t n = 0;
	srv_st_rc r;

	a_text(&a, 1, id);
	if ((r = pg_count(s, pc, op, G_APPROVER_NEEDED, &a, &n)) != SRV_ST_OK)
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
static srv_st_rc update_principal(pg_store *s, pg_conn *pc, const char *op, const char *id,
				  int disabled, const char *client_id, const char *oidc)
{
	srv_principal p;
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_st_rc r;

	a_text(&a, 1, id);
	if ((r = pg_one(s, pc, op, G_PRINCIPAL_DISABLE, &a, pg_rd_principal, &p)) != SRV_ST_OK)
		return r;
	if ((r = pg_check_principal(s, &p)) != SRV_ST_OK)
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
	if ((r = pg_mac_principal(s, &p, mac)) != SRV_ST_OK)
		goto out;
	memset(&a, 0, sizeof(a));
	a_text(&a, 1, p.id);
	a_int(&a, 2, p.disabled);
	a_opt(&a, 3, p.client_id);
	a_opt(&a, 4, mac);
	a_opt(&a, 5, p.oidc);
	r = pg_run(s, pc, op, G_PRINCIPAL_UPDATE, &a, PGRUN_MUST_CHANGE, NULL);
out:
	srv_principal_clear(&p);
	return r;
}

typedef struct {
	const char *id;
	int disabled;
} disable_arg;

static srv_st_rc do_principal_set_disabled(pg_store *s, pg_conn *pc, const char *op,
					   const void *arg, const srv_audit *au)
{
	const disable_arg *x = arg;
	srv_st_rc r;

	(void)au;
	if (x->disabled && (r = approver_needed(s, pc, op, x->id)) != SRV_ST_OK)
		return r;
	return update_principal(s, pc, op, x->id, x->disabled ? 1 : 0, NULL, NULL);
}

static srv_st_rc pg_principal_set_disabled(srv_store *st, const char *id, int disabled,
					   const srv_audit *a)
{
	if (!st || !id)
		return pg_bad_arg("principal_set_disabled");
	disable_arg x = {id, disabled};
	return pg_audited(PGS(st), "principal_set_disabled", do_principal_set_disabled, &x, a);
}

typedef struct {
	const char *id;
	const char *oidc;
} oidc_arg;

static srv_st_rc do_principal_set_oidc(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				       const srv_audit *au)
{
	const oidc_arg *x = arg;

	(void)au;
	return update_principal(s, pc, op, x->id, -1, NULL, x->oidc);
}

static srv_st_rc pg_principal_set_oidc(srv_store *st, const char *id, const char *oidc,
				       const srv_audit *a)
{
	if (!st || !id)
		return pg_bad_arg("principal_set_oidc");
	oidc_arg x = {id, oidc ? oidc : ""};
	return pg_audited(PGS(st), "principal_set_oidc", do_principal_set_oidc, &x, a);
}

/* tokens, secrets, memberships and approver places go with it: ON DELETE
 * CASCADE */
static srv_st_rc do_principal_delete(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				     const srv_audit *au)
{
	pg_args a = {0};
	srv_st_rc r;

	(void)au;
	if ((r = approver_needed(s, pc, op, arg)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, arg);
	return pg_run(s, pc, op, G_PRINCIPAL_DELETE, &a, PGRUN_MUST_CHANGE | PGRUN_DELETE, NULL);
}

static srv_st_rc pg_principal_delete(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id)
		return pg_bad_arg("principal_delete");
	return pg_audited(PGS(st), "principal_delete", do_principal_delete, id, a);
}

/* ---- tokens and secrets ---------------------------------------------------------- */

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

static srv_st_rc rd_token(const PGresult *res, int r, int c, void *out)
{
	token_row *x = out;

	memset(x, 0, sizeof(*x));
	pg_col_copy(res, r, c, x->t.id, sizeof(x->t.id));
	pg_col_copy(res, r, c + 1, x->t.principal_id, sizeof(x->t.principal_id));
	pg_col_copy(res, r, c + 2, x->t.kind, sizeof(x->t.kind));
	pg_col_copy(res, r, c + 3, x->t.name, sizeof(x->t.name));
	x->t.created_at = (time_t)pg_col_ll(res, r, c + 4);
	x->t.expires_at = (time_t)pg_col_ll(res, r, c + 5);
	x->t.last_used_at = (time_t)pg_col_ll(res, r, c + 6);
	pg_col_copy(res, r, c + 7, x->hash, sizeof(x->hash));
	pg_col_copy(res, r, c + 8, x->mac, sizeof(x->mac));
	pg_col_copy(res, r, c + 9, x->oidc, sizeof(x->oidc));
	return SRV_ST_OK;
}

static srv_st_rc rd_secret(const PGresult *res, int r, int c, void *out)
{
	secret_row *x = out;

	memset(x, 0, sizeof(*x));
	pg_col_copy(res, r, c, x->s.id, sizeof(x->s.id));
	pg_col_copy(res, r, c + 1, x->s.principal_id, sizeof(x->s.principal_id));
	pg_col_copy(res, r, c + 2, x->s.client_id, sizeof(x->s.client_id));
	x->s.created_at = (time_t)pg_col_ll(res, r, c + 3);
	x->s.expires_at = (time_t)pg_col_ll(res, r, c + 4);
	pg_col_copy(res, r, c + 5, x->hash, sizeof(x->hash));
	pg_col_copy(res, r, c + 6, x->mac, sizeof(x->mac));
	return SRV_ST_OK;
}

static srv_st_rc check_token(pg_store *s, const token_row *x)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_token(x->t.id, x->hash, x->t.principal_id, x->t.kind,
				     x->t.expires_at, x->oidc, m);
	return srv_rowmac_check(s->mac, "tokens", x->t.id, m, n, x->mac);
}

static srv_st_rc check_token_rec(pg_store *s, const void *rec)
{
	return check_token(s, rec);
}

static srv_st_rc check_secret(pg_store *s, const secret_row *x)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_secret(x->s.id, x->s.client_id, x->s.principal_id, x->hash,
				      x->s.expires_at, m);
	return srv_rowmac_check(s->mac, "secrets", x->s.id, m, n, x->mac);
}

static srv_st_rc check_secret_rec(pg_store *s, const void *rec)
{
	return check_secret(s, rec);
}

/* A token row and its principal, as token_lookup reads them. */
typedef struct {
	srv_principal p;
	token_row t;
} lookup_row;

static srv_st_rc rd_lookup(const PGresult *res, int r, int c, void *out)
{
	lookup_row *x = out;

	if (rd_token(res, r, c + PG_P_NCOLS, &x->t) != SRV_ST_OK)
		return SRV_ST_FAILED;
	return pg_rd_principal(res, r, c, &x->p);
}

typedef struct {
	secret_row s;
	srv_principal p;
} secret_lookup_row;

static srv_st_rc rd_secret_lookup(const PGresult *res, int r, int c, void *out)
{
	secret_lookup_row *x = out;

	if (rd_secret(res, r, c, &x->s) != SRV_ST_OK)
		return SRV_ST_FAILED;
	return pg_rd_principal(res, r, c + SEC_NCOLS, &x->p);
}

static void clr_secret_lookup(void *p)
{
	srv_principal_clear(&((secret_lookup_row *)p)->p);
}

static void clr_flat(void *p)
{
	(void)p;
}

typedef struct {
	const srv_token *t;
	const char *hash;
	size_t cap;
	const char *oidc; /* an access token's OIDC login, NULL = none */
} token_arg;

static srv_st_rc do_token_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				 const srv_audit *au)
{
	const token_arg *x = arg;
	size_t held = 0;
	pg_args a = {0};
	srv_st_rc r;

	(void)au;
	/* under the store-wide write lock (pg_audited): the count and the
	 * insert are one step over every connection */
	if (x->cap && strcmp(x->t->kind, "api") == 0) {
		a_text(&a, 1, x->t->principal_id);
		a_int(&a, 2, x->t->created_at ? x->t->created_at : time(NULL));
		if ((r = pg_count(s, pc, op, G_TOKEN_COUNT_API, &a, &held)) != SRV_ST_OK)
			return r;
		if (held >= x->cap) {
			rs_info("store: %s: the principal holds %zu API tokens, the cap", op, held);
			return SRV_ST_CONFLICT;
		}
	}
	return put_token(s, pc, op, x->t, x->hash, x->oidc);
}

/* An access token of a login is a session, not a credential: no audit. */
static srv_st_rc pg_token_insert(srv_store *st, const char *hash_hex, const char *principal_id,
				 const char *kind, time_t expires_at, const char *oidc,
				 const srv_audit *a)
{
	static const char op[] = "token_insert";
	pg_conn *pc;
	srv_st_rc r;

	if (!st || !hash_hex || !*hash_hex || !principal_id || !kind)
		return pg_bad_arg(op);
	srv_token t = token_of(principal_id, kind, expires_at);
	token_arg x = {&t, hash_hex, 0, oidc};
	if (a)
		return pg_audited(PGS(st), op, do_token_insert, &x, a);
	if ((r = pg_acquire(PGS(st), op, &pc)) != SRV_ST_OK)
		return r;
	r = put_token(PGS(st), pc, op, &t, hash_hex, oidc);
	pg_release(PGS(st), pc);
	return r;
}

static srv_st_rc pg_token_create(srv_store *st, const srv_token *t, const char *hash_hex,
				 size_t cap, const srv_audit *a)
{
	if (!st || !t || !t->id[0] || !t->principal_id[0] || !hash_hex || !*hash_hex ||
	    (strcmp(t->kind, "api") != 0 && strcmp(t->kind, "access") != 0))
		return pg_bad_arg("token_create");
	token_arg x = {t, hash_hex, cap, NULL};
	return pg_audited(PGS(st), "token_create", do_token_insert, &x, a);
}

static srv_st_rc pg_token_list(srv_store *st, const char *principal_id, time_t now, size_t offset,
			       size_t limit, srv_token **out, size_t *n, size_t *total)
{
	token_row *rows = NULL;
	size_t cnt = 0;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !principal_id || !out || !n || !total)
		return pg_bad_arg("token_list");
	*out = NULL;
	*n = 0;
	a_text(&a, 1, principal_id);
	a_int(&a, 2, now);
	pg_pager pg = {.count = G_TOKEN_LIST_COUNT,
		       .list = G_TOKEN_LIST,
		       .args = &a,
		       .nfilter = 2,
		       .rd = rd_token,
		       .size = sizeof(*rows),
		       .clr = clr_flat};
	r = pg_page(PGS(st), "token_list", &pg, offset, limit, (void **)&rows, &cnt, total);
	if (r == SRV_ST_OK)
		r = pg_filter(PGS(st), rows, &cnt, sizeof(*rows), check_token_rec, clr_flat);
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

static srv_st_rc do_token_revoke(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				 const srv_audit *au)
{
	const revoke_arg *x = arg;
	pg_args a = {0};

	(void)au;
	a_text(&a, 1, x->id);
	a_text(&a, 2, x->principal_id);
	return pg_run(s, pc, op, G_TOKEN_REVOKE, &a, PGRUN_MUST_CHANGE | PGRUN_DELETE, NULL);
}

static srv_st_rc pg_token_revoke(srv_store *st, const char *principal_id, const char *id,
				 const srv_audit *a)
{
	if (!st || !principal_id || !id)
		return pg_bad_arg("token_revoke");
	revoke_arg x = {principal_id, id};
	return pg_audited(PGS(st), "token_revoke", do_token_revoke, &x, a);
}

/* One conditional UPDATE: at most one write a minute whatever the number
 * of connections or replicas touching the token. */
static srv_st_rc pg_token_touch(srv_store *st, const char *id, time_t now)
{
	pg_args a = {0};
	pg_conn *pc;
	srv_st_rc r;

	if (!st || !id)
		return pg_bad_arg("token_touch");
	a_text(&a, 1, id);
	a_int(&a, 2, now);
	if ((r = pg_acquire(PGS(st), "token_touch", &pc)) != SRV_ST_OK)
		return r;
	r = pg_run(PGS(st), pc, "token_touch", G_TOKEN_TOUCH, &a, PGRUN_PLAIN, NULL);
	pg_release(PGS(st), pc);
	return r;
}

static srv_st_rc pg_token_purge(srv_store *st, time_t now, size_t *n)
{
	pg_args a = {0};
	pg_conn *pc;
	srv_st_rc r;

	if (!st || !n)
		return pg_bad_arg("token_purge");
	*n = 0;
	a_int(&a, 1, now);
	if ((r = pg_acquire(PGS(st), "token_purge", &pc)) != SRV_ST_OK)
		return r;
	r = pg_run(PGS(st), pc, "token_purge", G_TOKEN_PURGE, &a, PGRUN_PLAIN, n);
	pg_release(PGS(st), pc);
	return r;
}

/* Both the token's row and its principal's must pass their MACs. */
static srv_st_rc pg_token_lookup(srv_store *st, const char *hash_hex, time_t now,
				 srv_principal *out, srv_token *tok)
{
	lookup_row x;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !hash_hex || !out)
		return pg_bad_arg("token_lookup");
	memset(&x, 0, sizeof(x));
	a_text(&a, 1, hash_hex);
	a_int(&a, 2, now);
	if ((r = pg_get(PGS(st), "token_lookup", G_TOKEN_LOOKUP, &a, rd_lookup, &x)) != SRV_ST_OK)
		return r;
	if ((r = check_token(PGS(st), &x.t)) != SRV_ST_OK ||
	    (r = pg_check_principal(PGS(st), &x.p)) != SRV_ST_OK ||
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

static srv_st_rc do_secret_set(pg_store *s, pg_conn *pc, const char *op, const void *arg,
			       const srv_audit *au)
{
	const secret_arg *x = arg;
	srv_st_rc r;

	(void)au;
	if ((r = update_principal(s, pc, op, x->principal_id, -1, x->client_id, NULL)) != SRV_ST_OK)
		return r;
	return put_secret(s, pc, op, x->principal_id, x->client_id, x->hash);
}

static srv_st_rc pg_secret_set(srv_store *st, const char *principal_id, const char *client_id,
			       const char *secret_hash_hex, const srv_audit *a)
{
	if (!st || !principal_id || !client_id || !*client_id || !secret_hash_hex ||
	    !*secret_hash_hex)
		return pg_bad_arg("secret_set");
	secret_arg x = {principal_id, client_id, secret_hash_hex};
	return pg_audited(PGS(st), "secret_set", do_secret_set, &x, a);
}

typedef struct {
	const srv_secret *s;
	const char *hash;
	time_t old_until;
} rotate_arg;

/* Every other secret of the identity ends at old_until (re-sealed, since
 * the expiry is part of its MAC), or now when that is past. */
static srv_st_rc end_old_secrets(pg_store *s, pg_conn *pc, const char *op, const rotate_arg *x)
{
	secret_row *rows = NULL;
	size_t n = 0;
	pg_args a = {0};
	srv_st_rc r;

	a_text(&a, 1, x->s->principal_id);
	r = pg_list(s, pc, op, G_SECRET_ROWS, &a, rd_secret, sizeof(*rows), clr_flat,
		    (void **)&rows, &n);
	for (size_t i = 0; r == SRV_ST_OK && i < n; i++) {
		secret_row *o = &rows[i];
		unsigned char m[SRV_MAC_MSG_MAX];
		char mac[SRV_MAC_HEX];
		pg_args b = {0};

		a_text(&b, 1, o->s.id);
		if (x->old_until <= x->s->created_at ||
		    (o->s.expires_at && o->s.expires_at <= x->s->created_at)) {
			r = pg_run(s, pc, op, G_SECRET_DELETE, &b, PGRUN_PLAIN, NULL);
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
		a_int(&b, 2, x->old_until);
		a_opt(&b, 3, mac);
		r = pg_run(s, pc, op, G_SECRET_EXPIRE, &b, PGRUN_PLAIN, NULL);
	}
	free(rows);
	return r;
}

static srv_st_rc do_secret_rotate(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	const rotate_arg *x = arg;
	srv_principal p;
	srv_secret ns;
	pg_args a = {0};
	srv_st_rc r;

	(void)au;
	a_text(&a, 1, x->s->principal_id);
	if ((r = pg_one(s, pc, op, G_SECRET_CLIENT, &a, pg_rd_principal, &p)) != SRV_ST_OK)
		return r;
	if ((r = pg_check_principal(s, &p)) == SRV_ST_OK &&
	    (strcmp(p.type, "identity") != 0 || !p.client_id[0]))
		r = SRV_ST_NOT_FOUND;
	ns = *x->s;
	rs_strlcpy(ns.client_id, p.client_id, sizeof(ns.client_id));
	srv_principal_clear(&p);
	if (r != SRV_ST_OK || (r = end_old_secrets(s, pc, op, x)) != SRV_ST_OK)
		return r;
	return put_secret_row(s, pc, op, &ns, x->hash);
}

static srv_st_rc pg_secret_rotate(srv_store *st, const srv_secret *sec, const char *hash_hex,
				  time_t old_until, const srv_audit *a)
{
	if (!st || !sec || !sec->id[0] || !sec->principal_id[0] || !hash_hex || !*hash_hex)
		return pg_bad_arg("secret_rotate");
	rotate_arg x = {sec, hash_hex, old_until};
	return pg_audited(PGS(st), "secret_rotate", do_secret_rotate, &x, a);
}

static srv_st_rc pg_secret_list(srv_store *st, const char *principal_id, time_t now,
				srv_secret **out, size_t *n)
{
	secret_row *rows = NULL;
	size_t cnt = 0;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !principal_id || !out || !n)
		return pg_bad_arg("secret_list");
	*out = NULL;
	*n = 0;
	a_text(&a, 1, principal_id);
	a_int(&a, 2, now);
	r = pg_get_list(PGS(st), "secret_list", G_SECRET_LIST, &a, rd_secret, sizeof(*rows),
			clr_flat, (void **)&rows, &cnt);
	if (r == SRV_ST_OK)
		r = pg_filter(PGS(st), rows, &cnt, sizeof(*rows), check_secret_rec, clr_flat);
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
static srv_st_rc pg_secret_lookup(srv_store *st, const char *client_id, const char *secret_hash_hex,
				  time_t now, srv_principal *out)
{
	secret_lookup_row *rows = NULL;
	size_t n = 0, hit = SIZE_MAX;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !client_id || !secret_hash_hex || !out)
		return pg_bad_arg("secret_lookup");
	a_text(&a, 1, client_id);
	a_int(&a, 2, now);
	r = pg_get_list(PGS(st), "secret_lookup", G_SECRET_LOOKUP, &a, rd_secret_lookup,
			sizeof(*rows), clr_secret_lookup, (void **)&rows, &n);
	if (r != SRV_ST_OK)
		return r;
	for (size_t i = 0; i < n; i++)
		if (hash_eq(rows[i].s.hash, secret_hash_hex) && hit == SIZE_MAX)
			hit = i;
	if (hit == SIZE_MAX)
		r = SRV_ST_NOT_FOUND;
	else if ((r = check_secret(PGS(st), &rows[hit].s)) == SRV_ST_OK &&
		 (r = pg_check_principal(PGS(st), &rows[hit].p)) == SRV_ST_OK) {
		*out = rows[hit].p;
		memset(&rows[hit].p, 0, sizeof(rows[hit].p));
	}
	for (size_t i = 0; i < n; i++)
		srv_principal_clear(&rows[i].p);
	free(rows);
	return r;
}

static const srv_store_ops pg_ops = {
	.close = pg_close,
	.ping = pg_ping,
	.meta_get = pg_meta_get,
	.meta_set = pg_meta_set,
	.meta_add = pg_meta_add,
	.principal_insert = pg_principal_insert,
	.principal_get = pg_principal_get,
	.principal_list = pg_principal_list,
	.principal_set_disabled = pg_principal_set_disabled,
	.principal_set_oidc = pg_principal_set_oidc,
	.principal_delete = pg_principal_delete,
	.token_insert = pg_token_insert,
	.token_lookup = pg_token_lookup,
	.token_create = pg_token_create,
	.token_list = pg_token_list,
	.token_revoke = pg_token_revoke,
	.token_touch = pg_token_touch,
	.token_purge = pg_token_purge,
	.secret_rotate = pg_secret_rotate,
	.secret_list = pg_secret_list,
	.operation_find_key = pg_operation_find_key,
	.session_insert = pg_session_insert,
	.session_lookup = pg_session_lookup,
	.session_touch = pg_session_touch,
	.session_delete = pg_session_delete,
	.session_purge = pg_session_purge,
	.operation_daily = pg_operation_daily,
	.set_row_mac = pg_set_row_mac,
	.seal_rows = pg_seal_rows,
	.chain_rows = pg_chain_rows,
	.chain_count_seq = pg_chain_count_seq,
	.chain_head = pg_chain_head,
	.checkpoint_insert = pg_checkpoint_insert,
	.checkpoint_list = pg_checkpoint_list,
	.checkpoint_last = pg_checkpoint_last,
	.secret_set = pg_secret_set,
	.secret_lookup = pg_secret_lookup,
	.key_insert = pg_key_insert,
	.key_get = pg_key_get,
	.key_list = pg_key_list,
	.key_find_spki = pg_key_find_spki,
	.cert_insert = pg_cert_insert,
	.cert_get = pg_cert_get,
	.cert_list = pg_cert_list,
	.signer_insert = pg_signer_insert,
	.signer_get = pg_signer_get,
	.signer_list = pg_signer_list,
	.signer_update = pg_signer_update,
	.signer_retire = pg_signer_retire,
	.member_set = pg_member_set,
	.member_delete = pg_member_delete,
	.member_role = pg_member_role,
	.member_list = pg_member_list,
	.operation_insert = pg_operation_insert,
	.operation_list = pg_operation_list,
	.history_set_retention = pg_history_set_retention,
	.policy_insert = pg_policy_insert,
	.policy_get = pg_policy_get,
	.policy_list = pg_policy_list,
	.policy_update = pg_policy_update,
	.policy_delete = pg_policy_delete,
	.request_insert = pg_request_insert,
	.request_get = pg_request_get,
	.request_list = pg_request_list,
	.request_decide = pg_request_decide,
	.decision_list = pg_decision_list,
	.request_close = pg_request_close,
	.grant_get = pg_grant_get,
	.grant_list = pg_grant_list,
	.grant_revoke = pg_grant_revoke,
	.grant_find_active = pg_grant_find_active,
	.operation_insert_consume = pg_operation_insert_consume,
	.audit_list = pg_audit_list,
	.tsa_insert = pg_tsa_insert,
	.tsa_get = pg_tsa_get,
	.tsa_list = pg_tsa_list,
	.tsa_update = pg_tsa_update,
	.tsa_delete = pg_tsa_delete,
	.timestamp_insert = pg_timestamp_insert,
	.timestamp_list = pg_timestamp_list,
};

int srv_store_is_pg_uri(const char *database)
{
	return database && (strncmp(database, "postgresql://", 13) == 0 ||
			    strncmp(database, "postgres://", 11) == 0);
}

srv_store *srv_store_pg_open(const char *uri, int connections, char *err, size_t errlen)
{
	char dummy[1], why[512] = "";
	pg_store *s;
	PGconn *first;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!srv_store_is_pg_uri(uri) || connections < 1) {
		snprintf(err, errlen, "not a postgresql:// URI, or no connections");
		return NULL;
	}
	if (!PQisthreadsafe()) {
		snprintf(err, errlen, "this libpq was built without thread support");
		return NULL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base.ops = &pg_ops;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		snprintf(err, errlen, "cannot create a mutex");
		return NULL;
	}
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		snprintf(err, errlen, "cannot create a condition variable");
		return NULL;
	}
	if (srv_batch_init(&s->hq) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		snprintf(err, errlen, "cannot create the history queue's lock");
		return NULL;
	}
	s->uri = strdup(uri);
	s->conns = calloc((size_t)connections, sizeof(*s->conns));
	s->idle = calloc((size_t)connections, sizeof(*s->idle));
	s->mac = srv_rowmac_new();
	if (!s->uri || !s->conns || !s->idle || !s->mac) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->n_conns = (size_t)connections;
	for (size_t i = 0; i < s->n_conns; i++)
		s->idle[s->n_idle++] = s->n_conns - 1 - i;
	/* the first connection migrates and proves the statements; the
	 * others are made on first use */
	if (!(first = connect_uri(uri, why, sizeof(why)))) {
		snprintf(err, errlen, "cannot connect to the database: %s", why);
		goto fail;
	}
	s->conns[0].c = first;
	if (pg_migrate(first, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	if (prepare_all(first, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	return &s->base;
fail:
	pg_close(&s->base);
	return NULL;
}
