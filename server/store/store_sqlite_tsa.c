/* SQLite storage of time-stamp authorities (sealed rows, audited changes)
 * and of the timestamps they issued (serial unique for ever). See
 * store_sqlite.c for the connection and helpers. */
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

#define T_COLS                                                                                     \
	"t.id, t.name, t.certificate_id, t.policy_oid, t.accuracy_seconds, t.require_auth, "       \
	"t.created_at, t.mac"
#define M_COLS                                                                                     \
	"seq, tsa_id, serial, imprint_alg, imprint, protocol, actor_name, source_ip, created_at"

const char *const sq_tsa_sql[TS_COUNT] = {
	[TS_TSA_INSERT] = "INSERT INTO timestamp_authorities (id, name, certificate_id, policy_oid,"
			  " accuracy_seconds, require_auth, created_at, mac)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[TS_TSA_GET] = "SELECT " T_COLS " FROM timestamp_authorities t" SQ_BY_ID_OR_NAME("t"),
	[TS_TSA_LIST] = "SELECT " T_COLS " FROM timestamp_authorities t ORDER BY t.name" SQ_PAGE,
	[TS_TSA_COUNT] = "SELECT count(*) FROM timestamp_authorities",
	[TS_TSA_UPDATE] = "UPDATE timestamp_authorities SET name = ?2, certificate_id = ?3,"
			  " policy_oid = ?4, accuracy_seconds = ?5, require_auth = ?6, mac = ?8"
			  " WHERE id = ?1",
	[TS_TSA_DELETE] = "DELETE FROM timestamp_authorities WHERE id = ?1",
	[TS_STAMP_INSERT] =
		"INSERT INTO timestamps (tsa_id, serial, imprint_alg, imprint, protocol,"
		" actor_name, source_ip, created_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[TS_STAMP_LIST] = "SELECT " M_COLS " FROM timestamps WHERE tsa_id = ?1"
			  " ORDER BY seq DESC" SQ_PAGE,
	[TS_STAMP_COUNT] = "SELECT count(*) FROM timestamps WHERE tsa_id = ?1",
};

static srv_st_rc rd_tsa(sqlite3_stmt *st, int c, void *out)
{
	srv_tsa *t = out;

	memset(t, 0, sizeof(*t));
	col_copy(st, c, t->id, sizeof(t->id));
	col_copy(st, c + 2, t->certificate_id, sizeof(t->certificate_id));
	col_copy(st, c + 3, t->policy_oid, sizeof(t->policy_oid));
	t->accuracy_seconds = sqlite3_column_int64(st, c + 4);
	t->require_auth = sqlite3_column_int(st, c + 5) != 0;
	t->created_at = (time_t)sqlite3_column_int64(st, c + 6);
	col_copy(st, c + 7, t->mac, sizeof(t->mac));
	if (!(t->name = col_dup(st, c + 1, "")))
		return SRV_ST_FAILED;
	return SRV_ST_OK;
}

static srv_st_rc rd_stamp(sqlite3_stmt *st, int c, void *out)
{
	srv_timestamp *t = out;

	memset(t, 0, sizeof(*t));
	t->seq = sqlite3_column_int64(st, c);
	col_copy(st, c + 1, t->tsa_id, sizeof(t->tsa_id));
	col_copy(st, c + 2, t->serial, sizeof(t->serial));
	col_copy(st, c + 3, t->imprint_alg, sizeof(t->imprint_alg));
	col_copy(st, c + 4, t->imprint, sizeof(t->imprint));
	col_copy(st, c + 5, t->protocol, sizeof(t->protocol));
	col_copy(st, c + 6, t->actor_name, sizeof(t->actor_name));
	col_copy(st, c + 7, t->source_ip, sizeof(t->source_ip));
	t->created_at = (time_t)sqlite3_column_int64(st, c + 8);
	return SRV_ST_OK;
}

SQ_CLEARER(clr_tsa, srv_tsa_clear)

static void clr_stamp(void *p)
{
	memset(p, 0, sizeof(srv_timestamp));
}

static srv_st_rc check_tsa(sq_store *s, const void *rec)
{
	const srv_tsa *t = rec;
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_tsa(t, m);
	return srv_rowmac_check(s->mac, "timestamp_authorities", t->id, m, n, t->mac);
}

/* The row's MAC as it will be written (hex "" without a MAC function). */
static srv_st_rc seal_tsa(sq_store *s, const srv_tsa *t, char hex[SRV_MAC_HEX])
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_tsa(t, m);
	return srv_rowmac_seal(s->mac, m, n, hex);
}

typedef struct {
	const srv_tsa *t;
	const char *mac;
} tsa_write;

static void b_tsa(sqlite3_stmt *q, const tsa_write *w, int *brc)
{
	b_text(q, 1, w->t->id, brc);
	b_text(q, 2, w->t->name, brc);
	b_text(q, 3, w->t->certificate_id, brc);
	b_text(q, 4, w->t->policy_oid, brc);
	b_int(q, 5, w->t->accuracy_seconds, brc);
	b_int(q, 6, w->t->require_auth ? 1 : 0, brc);
}

static srv_st_rc do_tsa_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const tsa_write *w = arg;
	sqlite3_stmt *q = s->ts[TS_TSA_INSERT];
	int brc = SQLITE_OK;

	(void)a;
	b_tsa(q, w, &brc);
	b_int(q, 7, w->t->created_at, &brc);
	b_opt(q, 8, w->mac, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

static srv_st_rc do_tsa_update(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const tsa_write *w = arg;
	sqlite3_stmt *q = s->ts[TS_TSA_UPDATE];
	int brc = SQLITE_OK;

	(void)a;
	b_tsa(q, w, &brc);
	b_opt(q, 8, w->mac, &brc);
	return sq_run(s, op, q, brc, RUN_MUST_CHANGE);
}

static srv_st_rc tsa_write_op(srv_store *st, const char *op, sq_change change, const srv_tsa *t,
			      const srv_audit *a)
{
	char hex[SRV_MAC_HEX];
	srv_st_rc r;

	if (!st || !t || !t->id[0] || !t->name || !t->name[0] || !t->certificate_id[0])
		return sq_bad_arg(op);
	if ((r = seal_tsa(SQ(st), t, hex)) != SRV_ST_OK)
		return r;
	tsa_write w = {t, hex};
	return sq_audited(SQ(st), op, change, &w, a);
}

srv_st_rc sq_tsa_insert(srv_store *st, const srv_tsa *t, const srv_audit *a)
{
	return tsa_write_op(st, "tsa_insert", do_tsa_insert, t, a);
}

srv_st_rc sq_tsa_update(srv_store *st, const srv_tsa *t, const srv_audit *a)
{
	return tsa_write_op(st, "tsa_update", do_tsa_update, t, a);
}

static srv_st_rc do_tsa_delete(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	sqlite3_stmt *q = s->ts[TS_TSA_DELETE];
	int brc = SQLITE_OK;

	(void)a;
	b_text(q, 1, arg, &brc);
	return sq_run(s, op, q, brc, RUN_MUST_CHANGE);
}

srv_st_rc sq_tsa_delete(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id || !*id)
		return sq_bad_arg("tsa_delete");
	return sq_audited(SQ(st), "tsa_delete", do_tsa_delete, id, a);
}

srv_st_rc sq_tsa_get(srv_store *st, const char *id_or_name, srv_tsa *out)
{
	srv_st_rc r;

	if (!st)
		return sq_bad_arg("tsa_get");
	r = sq_get(SQ(st), "tsa_get", SQ(st)->ts[TS_TSA_GET], id_or_name, rd_tsa, out);
	if (r == SRV_ST_OK && (r = check_tsa(SQ(st), out)) != SRV_ST_OK)
		srv_tsa_clear(out);
	return r;
}

srv_st_rc sq_tsa_list(srv_store *st, size_t offset, size_t limit, srv_tsa **out, size_t *n,
		      size_t *total)
{
	srv_st_rc r;

	if (!st || !out || !n)
		return sq_bad_arg("tsa_list");
	sq_pager pg = {.count = SQ(st)->ts[TS_TSA_COUNT],
		       .list = SQ(st)->ts[TS_TSA_LIST],
		       .rd = rd_tsa,
		       .size = sizeof(**out),
		       .clr = clr_tsa};
	r = sq_page(SQ(st), "tsa_list", &pg, offset, limit, (void **)out, n, total);
	if (r == SRV_ST_OK)
		r = sq_filter(SQ(st), *out, n, sizeof(**out), check_tsa, clr_tsa);
	if (r != SRV_ST_OK) {
		srv_tsa_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

srv_st_rc sq_timestamp_insert(srv_store *st, const srv_timestamp *t)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !t || !t->tsa_id[0] || !t->serial[0])
		return sq_bad_arg("timestamp_insert");
	q = s->ts[TS_STAMP_INSERT];
	sq_lock(s);
	b_text(q, 1, t->tsa_id, &brc);
	b_text(q, 2, t->serial, &brc);
	b_text(q, 3, t->imprint_alg, &brc);
	b_text(q, 4, t->imprint, &brc);
	b_text(q, 5, t->protocol, &brc);
	b_text(q, 6, t->actor_name, &brc);
	b_text(q, 7, t->source_ip, &brc);
	b_int(q, 8, t->created_at, &brc);
	r = sq_run(s, "timestamp_insert", q, brc, RUN_PLAIN);
	sq_unlock(s);
	return r;
}

static void bind_tsa_id(sqlite3_stmt *q, const void *filter, int *brc)
{
	b_text(q, 1, filter, brc);
}

srv_st_rc sq_timestamp_list(srv_store *st, const char *tsa_id, size_t offset, size_t limit,
			    srv_timestamp **out, size_t *n, size_t *total)
{
	if (!st || !tsa_id)
		return sq_bad_arg("timestamp_list");
	sq_pager pg = {.count = SQ(st)->ts[TS_STAMP_COUNT],
		       .list = SQ(st)->ts[TS_STAMP_LIST],
		       .bind = bind_tsa_id,
		       .filter = tsa_id,
		       .rd = rd_stamp,
		       .size = sizeof(**out),
		       .clr = clr_stamp};
	return sq_page(SQ(st), "timestamp_list", &pg, offset, limit, (void **)out, n, total);
}
