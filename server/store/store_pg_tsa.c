/* PostgreSQL storage of time-stamp authorities (sealed rows, audited
 * changes) and of the timestamps they issued (serial unique for ever, over
 * every replica): the SQLite store's store_sqlite_tsa.c, op for op. */
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"

#define T_COLS                                                                                     \
	"t.id, t.name, t.certificate_id, t.policy_oid, t.accuracy_seconds, t.require_auth, "       \
	"t.created_at, t.mac"
#define M_COLS                                                                                     \
	"seq, tsa_id, serial, imprint_alg, imprint, protocol, actor_name, source_ip, created_at"

const pg_sql pg_tsa_sql[] = {
	{TA_TSA_INSERT, "INSERT INTO timestamp_authorities (id, name, certificate_id, policy_oid,"
			" accuracy_seconds, require_auth, created_at, mac)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"},
	{TA_TSA_GET, "SELECT " T_COLS " FROM timestamp_authorities t" PG_BY_ID_OR_NAME("t")},
	{TA_TSA_LIST,
	 "SELECT " T_COLS " FROM timestamp_authorities t ORDER BY t.name" PG_PAGE("$1", "$2")},
	{TA_TSA_COUNT, "SELECT count(*) FROM timestamp_authorities"},
	{TA_TSA_UPDATE, "UPDATE timestamp_authorities SET name = $2, certificate_id = $3,"
			" policy_oid = $4, accuracy_seconds = $5, require_auth = $6, mac = $7"
			" WHERE id = $1"},
	{TA_TSA_DELETE, "DELETE FROM timestamp_authorities WHERE id = $1"},
	{TA_STAMP_INSERT, "INSERT INTO timestamps (tsa_id, serial, imprint_alg, imprint, protocol,"
			  " actor_name, source_ip, created_at)"
			  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"},
	{TA_STAMP_LIST, "SELECT " M_COLS " FROM timestamps WHERE tsa_id = $1"
			" ORDER BY seq DESC" PG_PAGE("$2", "$3")},
	{TA_STAMP_COUNT, "SELECT count(*) FROM timestamps WHERE tsa_id = $1"},
	{-1, NULL},
};

static srv_st_rc rd_tsa(const PGresult *res, int r, int c, void *out)
{
	srv_tsa *t = out;

	memset(t, 0, sizeof(*t));
	pg_col_copy(res, r, c, t->id, sizeof(t->id));
	pg_col_copy(res, r, c + 2, t->certificate_id, sizeof(t->certificate_id));
	pg_col_copy(res, r, c + 3, t->policy_oid, sizeof(t->policy_oid));
	t->accuracy_seconds = pg_col_ll(res, r, c + 4);
	t->require_auth = pg_col_ll(res, r, c + 5) != 0;
	t->created_at = (time_t)pg_col_ll(res, r, c + 6);
	pg_col_copy(res, r, c + 7, t->mac, sizeof(t->mac));
	if (!(t->name = pg_col_dup(res, r, c + 1, "")))
		return SRV_ST_FAILED;
	return SRV_ST_OK;
}

static srv_st_rc rd_stamp(const PGresult *res, int r, int c, void *out)
{
	srv_timestamp *t = out;

	memset(t, 0, sizeof(*t));
	t->seq = pg_col_ll(res, r, c);
	pg_col_copy(res, r, c + 1, t->tsa_id, sizeof(t->tsa_id));
	pg_col_copy(res, r, c + 2, t->serial, sizeof(t->serial));
	pg_col_copy(res, r, c + 3, t->imprint_alg, sizeof(t->imprint_alg));
	pg_col_copy(res, r, c + 4, t->imprint, sizeof(t->imprint));
	pg_col_copy(res, r, c + 5, t->protocol, sizeof(t->protocol));
	pg_col_copy(res, r, c + 6, t->actor_name, sizeof(t->actor_name));
	pg_col_copy(res, r, c + 7, t->source_ip, sizeof(t->source_ip));
	t->created_at = (time_t)pg_col_ll(res, r, c + 8);
	return SRV_ST_OK;
}

PG_CLEARER(clr_tsa, srv_tsa_clear)

static void clr_stamp(void *p)
{
	memset(p, 0, sizeof(srv_timestamp));
}

static srv_st_rc check_tsa(pg_store *s, const void *rec)
{
	const srv_tsa *t = rec;
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_tsa(t, m);
	return srv_rowmac_check(s->mac, "timestamp_authorities", t->id, m, n, t->mac);
}

typedef struct {
	const srv_tsa *t;
	char mac[SRV_MAC_HEX];
} tsa_write;

/* $1 id, $2 name, $3 certificate_id, $4 policy_oid, $5 accuracy, $6 require_auth */
static void a_tsa(pg_args *a, const srv_tsa *t)
{
	a_text(a, 1, t->id);
	a_text(a, 2, t->name);
	a_text(a, 3, t->certificate_id);
	a_text(a, 4, t->policy_oid);
	a_int(a, 5, t->accuracy_seconds);
	a_int(a, 6, t->require_auth ? 1 : 0);
}

static srv_st_rc do_tsa_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
			       const srv_audit *au)
{
	const tsa_write *w = arg;
	pg_args a = {0};

	(void)au;
	a_tsa(&a, w->t);
	a_int(&a, 7, w->t->created_at);
	a_opt(&a, 8, w->mac);
	return pg_run(s, pc, op, TA_TSA_INSERT, &a, PGRUN_PLAIN, NULL);
}

static srv_st_rc do_tsa_update(pg_store *s, pg_conn *pc, const char *op, const void *arg,
			       const srv_audit *au)
{
	const tsa_write *w = arg;
	pg_args a = {0};

	(void)au;
	a_tsa(&a, w->t);
	a_opt(&a, 7, w->mac);
	return pg_run(s, pc, op, TA_TSA_UPDATE, &a, PGRUN_MUST_CHANGE, NULL);
}

static srv_st_rc tsa_write_op(srv_store *st, const char *op, pg_change change, const srv_tsa *t,
			      const srv_audit *a)
{
	tsa_write w = {t, ""};
	unsigned char m[SRV_MAC_MSG_MAX];
	srv_st_rc r;

	if (!st || !t || !t->id[0] || !t->name || !t->name[0] || !t->certificate_id[0])
		return pg_bad_arg(op);
	if ((r = srv_rowmac_seal(PGS(st)->mac, m, srv_mac_msg_tsa(t, m), w.mac)) != SRV_ST_OK)
		return r;
	return pg_audited(PGS(st), op, change, &w, a);
}

srv_st_rc pg_tsa_insert(srv_store *st, const srv_tsa *t, const srv_audit *a)
{
	return tsa_write_op(st, "tsa_insert", do_tsa_insert, t, a);
}

srv_st_rc pg_tsa_update(srv_store *st, const srv_tsa *t, const srv_audit *a)
{
	return tsa_write_op(st, "tsa_update", do_tsa_update, t, a);
}

static srv_st_rc do_tsa_delete(pg_store *s, pg_conn *pc, const char *op, const void *arg,
			       const srv_audit *au)
{
	pg_args a = {0};

	(void)au;
	a_text(&a, 1, arg);
	return pg_run(s, pc, op, TA_TSA_DELETE, &a, PGRUN_MUST_CHANGE, NULL);
}

srv_st_rc pg_tsa_delete(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id || !*id)
		return pg_bad_arg("tsa_delete");
	return pg_audited(PGS(st), "tsa_delete", do_tsa_delete, id, a);
}

srv_st_rc pg_tsa_get(srv_store *st, const char *id_or_name, srv_tsa *out)
{
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !id_or_name || !out)
		return pg_bad_arg("tsa_get");
	a_text(&a, 1, id_or_name);
	r = pg_get(PGS(st), "tsa_get", TA_TSA_GET, &a, rd_tsa, out);
	if (r == SRV_ST_OK && (r = check_tsa(PGS(st), out)) != SRV_ST_OK)
		srv_tsa_clear(out);
	return r;
}

srv_st_rc pg_tsa_list(srv_store *st, size_t offset, size_t limit, srv_tsa **out, size_t *n,
		      size_t *total)
{
	srv_st_rc r;

	if (!st || !out || !n)
		return pg_bad_arg("tsa_list");
	pg_pager pg = {.count = TA_TSA_COUNT,
		       .list = TA_TSA_LIST,
		       .rd = rd_tsa,
		       .size = sizeof(**out),
		       .clr = clr_tsa};
	r = pg_page(PGS(st), "tsa_list", &pg, offset, limit, (void **)out, n, total);
	if (r == SRV_ST_OK)
		r = pg_filter(PGS(st), *out, n, sizeof(**out), check_tsa, clr_tsa);
	if (r != SRV_ST_OK) {
		srv_tsa_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

srv_st_rc pg_timestamp_insert(srv_store *st, const srv_timestamp *t)
{
	pg_store *s = PGS(st);
	pg_conn *pc = NULL;
	pg_args a = {0};
	srv_st_rc r;

	if (!s || !t || !t->tsa_id[0] || !t->serial[0])
		return pg_bad_arg("timestamp_insert");
	a_text(&a, 1, t->tsa_id);
	a_text(&a, 2, t->serial);
	a_text(&a, 3, t->imprint_alg);
	a_text(&a, 4, t->imprint);
	a_text(&a, 5, t->protocol);
	a_text(&a, 6, t->actor_name);
	a_text(&a, 7, t->source_ip);
	a_int(&a, 8, t->created_at);
	if ((r = pg_acquire(s, "timestamp_insert", &pc)) != SRV_ST_OK)
		return r;
	r = pg_run(s, pc, "timestamp_insert", TA_STAMP_INSERT, &a, PGRUN_PLAIN, NULL);
	pg_release(s, pc);
	return r;
}

srv_st_rc pg_timestamp_list(srv_store *st, const char *tsa_id, size_t offset, size_t limit,
			    srv_timestamp **out, size_t *n, size_t *total)
{
	pg_args a = {0};

	if (!st || !tsa_id)
		return pg_bad_arg("timestamp_list");
	a_text(&a, 1, tsa_id);
	pg_pager pg = {.count = TA_STAMP_COUNT,
		       .list = TA_STAMP_LIST,
		       .args = &a,
		       .nfilter = 1,
		       .rd = rd_stamp,
		       .size = sizeof(**out),
		       .clr = clr_stamp};
	return pg_page(PGS(st), "timestamp_list", &pg, offset, limit, (void **)out, n, total);
}
