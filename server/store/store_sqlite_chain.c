/* SQLite: the hash chains of the history and the audit log (store_chain.h).
 * The head of each chain is a row of chain_heads, read and written inside
 * the transaction that inserts records (BEGIN IMMEDIATE: the one writer);
 * a group commit reads it once and writes it once per batch. Also the
 * chain reads of a verification, the signed checkpoints, and the chaining
 * of the records made before migration 10 (sq_chain_backfill). */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

/* a record's chain columns and its table seq, then its body (store_chain.h
 * order) from column CH_BODY on */
#define CH_COLS "seq, chain_seq, prev_hash, body_hash, hash, purged, "
#define CH_BODY 8
#define OP_BODY                                                                                    \
	"id, signer_id, status, algorithm, data_hash, is_digest, actor_type, actor_id,"            \
	" actor_name, grant_id, client_metadata, source_ip, error_code, approval, created_at,"     \
	" idem_key, request_hash, signature"
#define OP_NBODY 18
/* the history body as chained since migration 12: OP_BODY, then oidc only
 * when it is not NULL (OP_NOPT trailing optional columns). The migration-10
 * backfill reads OP_BODY alone: oidc does not exist yet there. */
#define OP_BODY_OIDC OP_BODY ", oidc"
#define OP_NOPT 1
#define AU_BODY "actor_id, actor_name, action, object_type, object_id, detail, created_at"
#define AU_NBODY 7
/* then the id and the kind (columns 6 and 7) */
#define OP_ROWS "SELECT " CH_COLS "id, status, " OP_BODY_OIDC " FROM operations"
#define CP_COLS "chain, seq, hash, created_at, signature, replica"

const char *const sq_chain_sql[CH_COUNT] = {
	[CH_HEAD_GET] = "SELECT seq, hash FROM chain_heads WHERE chain = ?1",
	[CH_HEAD_SET] = "UPDATE chain_heads SET seq = ?2, hash = ?3 WHERE chain = ?1",
	[CH_NAME_OF] = "SELECT coalesce((SELECT name FROM principals WHERE id = ?1), '')",
	[CH_OP_ROWS] = OP_ROWS " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[CH_AU_ROWS] = "SELECT seq, chain_seq, prev_hash, body_hash, hash, 0, CAST(seq AS TEXT),"
		       " action, " AU_BODY " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[CH_OP_COUNT] = "SELECT count(*) FROM operations WHERE chain_seq = ?1",
	[CH_AU_COUNT] = "SELECT count(*) FROM audit WHERE chain_seq = ?1",
	[CH_CP_INSERT] = "INSERT INTO checkpoints (" CP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			 " ON CONFLICT (chain, seq) DO NOTHING",
	[CH_CP_LIST] = "SELECT " CP_COLS " FROM checkpoints WHERE chain = ?1 AND seq > ?2"
		       " ORDER BY seq LIMIT ?3",
	[CH_CP_LAST] = "SELECT " CP_COLS " FROM checkpoints WHERE chain = ?1"
		       " ORDER BY seq DESC LIMIT 1",
};

/* ---- linking records as they are inserted ------------------------------- */

typedef struct {
	long long seq;
	char hash[SRV_CHAIN_HEX];
} head_row;

static srv_st_rc rd_head(sqlite3_stmt *st, int c, void *out)
{
	head_row *h = out;

	h->seq = sqlite3_column_int64(st, c);
	col_copy(st, c + 1, h->hash, sizeof(h->hash));
	return SRV_ST_OK;
}

static srv_st_rc head_get(sq_store *s, const char *op, srv_chain c, head_row *h)
{
	int brc = SQLITE_OK;

	b_text(s->ch[CH_HEAD_GET], 1, srv_chain_name(c), &brc);
	return sq_one(s, op, s->ch[CH_HEAD_GET], brc, rd_head, h);
}

srv_st_rc sq_chain_begin(sq_store *s, const char *op, srv_chain c, sq_chain_cur *cur)
{
	head_row h;
	srv_st_rc r = head_get(s, op, c, &h);

	if (r == SRV_ST_NOT_FOUND) {
		rs_err("store: %s: the %s chain has no head row", op, srv_chain_name(c));
		return SRV_ST_FAILED;
	}
	if (r != SRV_ST_OK)
		return r;
	cur->c = c;
	cur->seq = cur->start = h.seq;
	if (srv_chain_unhex(h.hash, cur->hash) != 0) {
		rs_err("store: %s: the %s chain's head hash is unreadable", op, srv_chain_name(c));
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

srv_st_rc sq_chain_next(sq_chain_cur *cur, const char *kind,
			const unsigned char body[SRV_CHAIN_LEN], sq_chain_link *out)
{
	unsigned char h[SRV_CHAIN_LEN];

	if (srv_chain_link(cur->hash, cur->c, cur->seq + 1, kind, body, h) != 0)
		return SRV_ST_FAILED;
	out->seq = cur->seq + 1;
	srv_chain_hex(cur->hash, out->prev);
	srv_chain_hex(body, out->body);
	srv_chain_hex(h, out->hash);
	cur->seq++;
	memcpy(cur->hash, h, sizeof(h));
	return SRV_ST_OK;
}

srv_st_rc sq_chain_end(sq_store *s, const char *op, const sq_chain_cur *cur)
{
	sqlite3_stmt *q = s->ch[CH_HEAD_SET];
	char hex[SRV_CHAIN_HEX];
	int brc = SQLITE_OK;

	if (cur->seq == cur->start)
		return SRV_ST_OK;
	srv_chain_hex(cur->hash, hex);
	b_text(q, 1, srv_chain_name(cur->c), &brc);
	b_int(q, 2, cur->seq, &brc);
	b_text(q, 3, hex, &brc);
	return sq_run(s, op, q, brc, RUN_MUST_CHANGE);
}

srv_st_rc sq_chain_actor_name(sq_store *s, const char *op, const srv_audit *a, char **name)
{
	int brc = SQLITE_OK;

	*name = NULL;
	if (a->actor_name && *a->actor_name) {
		*name = strdup(a->actor_name);
		return *name ? SRV_ST_OK : SRV_ST_FAILED;
	}
	b_text(s->ch[CH_NAME_OF], 1, a->actor_id, &brc);
	return sq_one(s, op, s->ch[CH_NAME_OF], brc, sq_rd_str, name);
}

/* ---- reading records back ------------------------------------------------ */

/* The body hash of the n columns from c, by their stored types: a record
 * as it is, whoever wrote it. */
static int body_of(sqlite3_stmt *st, int c, int n, int nopt, unsigned char out[SRV_CHAIN_LEN])
{
	srv_chain_body b;

	if (srv_chain_body_begin(&b) != 0)
		return -1;
	for (int i = c; i < c + n + nopt; i++) {
		if (i >= c + n && sqlite3_column_type(st, i) == SQLITE_NULL)
			continue; /* an optional column, unset: not in the body */
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			srv_chain_body_null(&b);
			break;
		case SQLITE_INTEGER:
			srv_chain_body_int(&b, sqlite3_column_int64(st, i));
			break;
		case SQLITE_BLOB: {
			const void *p = sqlite3_column_blob(st, i);
			srv_chain_body_bytes(&b, p, (size_t)sqlite3_column_bytes(st, i));
			break;
		}
		default: { /* TEXT, and a REAL as its text */
			const unsigned char *t = sqlite3_column_text(st, i);
			srv_chain_body_bytes(&b, t, (size_t)sqlite3_column_bytes(st, i));
			break;
		}
		}
	}
	return srv_chain_body_end(&b, out);
}

static srv_st_rc rd_row(sqlite3_stmt *st, int nbody, int nopt, srv_chain_row *r)
{
	memset(r, 0, sizeof(*r));
	r->row = sqlite3_column_int64(st, 0);
	r->chain_seq = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 1);
	col_copy(st, 2, r->prev_hash, sizeof(r->prev_hash));
	col_copy(st, 3, r->body_hash, sizeof(r->body_hash));
	col_copy(st, 4, r->hash, sizeof(r->hash));
	r->purged = sqlite3_column_int(st, 5) != 0;
	col_copy(st, 6, r->id, sizeof(r->id));
	col_copy(st, 7, r->kind, sizeof(r->kind));
	return body_of(st, CH_BODY, nbody, nopt, r->body) == 0 ? SRV_ST_OK : SRV_ST_FAILED;
}

srv_st_rc sq_chain_rows(srv_store *st, int chain, long long after, size_t limit, srv_chain_row *out,
			size_t *n)
{
	sq_store *s = SQ(st);
	int hist = chain == SRV_CHAIN_HISTORY, brc = SQLITE_OK, rc;
	sqlite3_stmt *q;
	srv_st_rc r = SRV_ST_OK;

	if (!s || !out || !n || !limit || (chain != SRV_CHAIN_HISTORY && chain != SRV_CHAIN_AUDIT))
		return sq_bad_arg("chain_rows");
	*n = 0;
	sq_lock(s);
	q = s->ch[hist ? CH_OP_ROWS : CH_AU_ROWS];
	b_int(q, 1, after, &brc);
	b_int(q, 2, (sqlite3_int64)limit, &brc);
	rc = brc;
	while (rc == SQLITE_OK && *n < limit && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		if ((r = rd_row(q, hist ? OP_NBODY : AU_NBODY, hist ? OP_NOPT : 0, &out[*n])) !=
		    SRV_ST_OK)
			break;
		(*n)++;
		rc = SQLITE_OK;
	}
	if (r == SRV_ST_OK && rc != SQLITE_OK && rc != SQLITE_DONE)
		r = sq_fail(s, "chain_rows", rc, SRV_ST_FAILED);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_chain_count_seq(srv_store *st, int chain, long long seq, size_t *n)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !n || (chain != SRV_CHAIN_HISTORY && chain != SRV_CHAIN_AUDIT))
		return sq_bad_arg("chain_count_seq");
	sq_lock(s);
	sqlite3_stmt *q = s->ch[chain == SRV_CHAIN_HISTORY ? CH_OP_COUNT : CH_AU_COUNT];
	b_int(q, 1, seq, &brc);
	r = sq_count(s, "chain_count_seq", q, brc, n);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_chain_head(srv_store *st, int chain, long long *seq, char hash[SRV_CHAIN_HEX])
{
	sq_store *s = SQ(st);
	head_row h;
	srv_st_rc r;

	if (!s || !seq || !hash || (chain != SRV_CHAIN_HISTORY && chain != SRV_CHAIN_AUDIT))
		return sq_bad_arg("chain_head");
	sq_lock(s);
	r = head_get(s, "chain_head", (srv_chain)chain, &h);
	sq_unlock(s);
	if (r == SRV_ST_OK) {
		*seq = h.seq;
		rs_strlcpy(hash, h.hash, SRV_CHAIN_HEX);
	}
	return r;
}

/* ---- checkpoints ----------------------------------------------------------- */

static srv_st_rc rd_cp(sqlite3_stmt *st, int c, void *out)
{
	srv_checkpoint *cp = out;
	char name[16];
	int n = sqlite3_column_bytes(st, c + 4);
	const void *sig = sqlite3_column_blob(st, c + 4);

	memset(cp, 0, sizeof(*cp));
	col_copy(st, c, name, sizeof(name));
	if (srv_chain_parse(name, &cp->chain) != 0 || n < 0 || (size_t)n > sizeof(cp->sig))
		return SRV_ST_FAILED;
	cp->seq = sqlite3_column_int64(st, c + 1);
	col_copy(st, c + 2, cp->hash, sizeof(cp->hash));
	cp->created_at = sqlite3_column_int64(st, c + 3);
	if (n && sig)
		memcpy(cp->sig, sig, (size_t)n);
	cp->sig_len = sig ? (size_t)n : 0;
	col_copy(st, c + 5, cp->replica, sizeof(cp->replica));
	return SRV_ST_OK;
}

srv_st_rc sq_checkpoint_insert(srv_store *st, const srv_checkpoint *c)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !c || c->seq <= 0 || !c->sig_len || strlen(c->hash) != 2 * SRV_CHAIN_LEN)
		return sq_bad_arg("checkpoint_insert");
	sq_lock(s);
	sqlite3_stmt *q = s->ch[CH_CP_INSERT];
	b_text(q, 1, srv_chain_name(c->chain), &brc);
	b_int(q, 2, c->seq, &brc);
	b_text(q, 3, c->hash, &brc);
	b_int(q, 4, c->created_at, &brc);
	b_blob(q, 5, c->sig, c->sig_len, &brc);
	b_text(q, 6, c->replica, &brc);
	r = sq_run(s, "checkpoint_insert", q, brc, RUN_PLAIN);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_checkpoint_list(srv_store *st, int chain, long long after, size_t limit,
			     srv_checkpoint *out, size_t *n)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK, rc;
	srv_st_rc r = SRV_ST_OK;

	if (!s || !out || !n || !limit || (chain != SRV_CHAIN_HISTORY && chain != SRV_CHAIN_AUDIT))
		return sq_bad_arg("checkpoint_list");
	*n = 0;
	sq_lock(s);
	sqlite3_stmt *q = s->ch[CH_CP_LIST];
	b_text(q, 1, srv_chain_name((srv_chain)chain), &brc);
	b_int(q, 2, after, &brc);
	b_int(q, 3, (sqlite3_int64)limit, &brc);
	rc = brc;
	while (rc == SQLITE_OK && *n < limit && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		if ((r = rd_cp(q, 0, &out[*n])) != SRV_ST_OK)
			break;
		(*n)++;
		rc = SQLITE_OK;
	}
	if (r == SRV_ST_OK && rc != SQLITE_OK && rc != SQLITE_DONE)
		r = sq_fail(s, "checkpoint_list", rc, SRV_ST_FAILED);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	sq_unlock(s);
	return r;
}

srv_st_rc sq_checkpoint_last(srv_store *st, int chain, srv_checkpoint *out)
{
	sq_store *s = SQ(st);

	if (!s || !out || (chain != SRV_CHAIN_HISTORY && chain != SRV_CHAIN_AUDIT))
		return sq_bad_arg("checkpoint_last");
	return sq_get(s, "checkpoint_last", s->ch[CH_CP_LAST], srv_chain_name((srv_chain)chain),
		      rd_cp, out);
}

/* ---- migration 10: the records made before it ------------------------------ */

#define BACKFILL_PAGE 512

typedef struct {
	long long seq;
	char kind[41];
	unsigned char body[SRV_CHAIN_LEN];
} old_row;

/* Chains every record of one table in seq order; the caller's transaction. */
static int backfill_table(sqlite3 *db, srv_chain c, char *err, size_t errlen)
{
	int hist = c == SRV_CHAIN_HISTORY;
	const char *sel = hist ? "SELECT seq, status, " OP_BODY " FROM operations WHERE seq > ?1"
				 " ORDER BY seq LIMIT ?2"
			       : "SELECT seq, action, " AU_BODY " FROM audit WHERE seq > ?1"
				 " ORDER BY seq LIMIT ?2";
	const char *upd = hist ? "UPDATE operations SET chain_seq = ?2, prev_hash = ?3,"
				 " body_hash = ?4, hash = ?5 WHERE seq = ?1"
			       : "UPDATE audit SET chain_seq = ?2, prev_hash = ?3,"
				 " body_hash = ?4, hash = ?5 WHERE seq = ?1";
	sqlite3_stmt *qs = NULL, *qu = NULL, *qh = NULL;
	old_row *rows = calloc(BACKFILL_PAGE, sizeof(*rows));
	sq_chain_cur cur = {.c = c};
	long long after = 0;
	size_t n;
	int rc = -1;

	if (!rows || sqlite3_prepare_v2(db, sel, -1, &qs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, upd, -1, &qu, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE chain_heads SET seq = ?2, hash = ?3 WHERE chain = ?1",
			       -1, &qh, NULL) != SQLITE_OK)
		goto out;
	do {
		n = 0;
		sqlite3_bind_int64(qs, 1, after);
		sqlite3_bind_int(qs, 2, BACKFILL_PAGE);
		while (sqlite3_step(qs) == SQLITE_ROW) {
			old_row *o = &rows[n++];
			const unsigned char *k = sqlite3_column_text(qs, 1);
			o->seq = sqlite3_column_int64(qs, 0);
			rs_strlcpy(o->kind, k ? (const char *)k : "", sizeof(o->kind));
			if (body_of(qs, 2, hist ? OP_NBODY : AU_NBODY, 0, o->body) != 0)
				goto out;
		}
		if (sqlite3_reset(qs) != SQLITE_OK)
			goto out;
		for (size_t i = 0; i < n; i++) {
			sq_chain_link l;
			if (sq_chain_next(&cur, rows[i].kind, rows[i].body, &l) != SRV_ST_OK)
				goto out;
			sqlite3_bind_int64(qu, 1, rows[i].seq);
			sqlite3_bind_int64(qu, 2, l.seq);
			sqlite3_bind_text(qu, 3, l.prev, -1, SQLITE_STATIC);
			sqlite3_bind_text(qu, 4, l.body, -1, SQLITE_STATIC);
			sqlite3_bind_text(qu, 5, l.hash, -1, SQLITE_STATIC);
			if (sqlite3_step(qu) != SQLITE_DONE || sqlite3_reset(qu) != SQLITE_OK)
				goto out;
		}
		if (n)
			after = rows[n - 1].seq;
	} while (n == BACKFILL_PAGE);
	char hex[SRV_CHAIN_HEX];
	srv_chain_hex(cur.hash, hex);
	sqlite3_bind_text(qh, 1, srv_chain_name(c), -1, SQLITE_STATIC);
	sqlite3_bind_int64(qh, 2, cur.seq);
	sqlite3_bind_text(qh, 3, hex, -1, SQLITE_STATIC);
	if (sqlite3_step(qh) != SQLITE_DONE)
		goto out;
	if (cur.seq)
		rs_info("store: %lld %s records chained", cur.seq, srv_chain_name(c));
	rc = 0;
out:
	if (rc != 0)
		snprintf(err, errlen, "chaining the %s records failed: %s", srv_chain_name(c),
			 sqlite3_errmsg(db));
	sqlite3_finalize(qs);
	sqlite3_finalize(qu);
	sqlite3_finalize(qh);
	free(rows);
	return rc;
}

int sq_chain_backfill(sqlite3 *db, char *err, size_t errlen)
{
	return backfill_table(db, SRV_CHAIN_HISTORY, err, errlen) == 0 &&
			       backfill_table(db, SRV_CHAIN_AUDIT, err, errlen) == 0
		       ? 0
		       : -1;
}
