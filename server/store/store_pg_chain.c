/* PostgreSQL: the hash chains of the history and the audit log
 * (store_chain.h). Several replicas insert at once, so the head of each
 * chain is a row of chain_heads that the inserting statement itself
 * advances (PG_CHAIN_LINK: UPDATE ... RETURNING, which takes the row's lock
 * until the transaction ends and computes the link with sha256() from the
 * head it locked). The body's hash comes from C, the link's bytes around
 * the seq too (pg_chain_args), so both stores hash the same bytes. Also the
 * chain reads of a verification, the signed checkpoints, and the chaining
 * of the records made before migration 10 (pg_chain_backfill). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"

#define BYTEAOID 17
#define INT8OID 20
#define INT2OID 21
#define INT4OID 23

/* a record's chain columns and its table seq, its id and kind, then its
 * body (store_chain.h order) from column CH_BODY on */
#define CH_COLS "seq, chain_seq, prev_hash, body_hash, hash, "
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
#define CP_COLS "chain, seq, hash, created_at, signature, replica"

const pg_sql pg_chain_sql[] = {
	{PC_HEAD_GET, "SELECT seq, hash FROM chain_heads WHERE chain = $1"},
	{PC_HEAD_LOCK, "SELECT seq FROM chain_heads WHERE chain = 'history' FOR UPDATE"},
	{PC_NAME_OF, "SELECT coalesce((SELECT name FROM principals WHERE id = $1), '')"},
	{PC_OP_ROWS, "SELECT " CH_COLS "purged, id, status, " OP_BODY_OIDC " FROM operations"
		     " WHERE seq > $1 ORDER BY seq LIMIT $2"},
	{PC_AU_ROWS, "SELECT " CH_COLS "0, seq::text AS rid, action, " AU_BODY " FROM audit"
		     " WHERE seq > $1 ORDER BY seq LIMIT $2"},
	{PC_OP_COUNT, "SELECT count(*) FROM operations WHERE chain_seq = $1"},
	{PC_AU_COUNT, "SELECT count(*) FROM audit WHERE chain_seq = $1"},
	{PC_CP_INSERT, "INSERT INTO checkpoints (" CP_COLS ") VALUES ($1, $2, $3, $4, $5, $6)"
		       " ON CONFLICT (chain, seq) DO NOTHING"},
	{PC_CP_LIST, "SELECT " CP_COLS " FROM checkpoints WHERE chain = $1 AND seq > $2"
		     " ORDER BY seq LIMIT $3"},
	{PC_CP_LAST, "SELECT " CP_COLS " FROM checkpoints WHERE chain = $1"
		     " ORDER BY seq DESC LIMIT 1"},
	{-1, NULL},
};

/* ---- linking --------------------------------------------------------------- */

int pg_chain_args(pg_args *a, int first, srv_chain c, const char *kind,
		  const unsigned char body[SRV_CHAIN_LEN], pg_chain_buf *buf)
{
	srv_chain_hex(body, buf->body);
	if (!(buf->npre = srv_chain_link_prefix(c, buf->pre, sizeof(buf->pre))) ||
	    !(buf->nsuf = srv_chain_link_suffix(kind, body, buf->suf, sizeof(buf->suf))))
		return -1;
	a_text(a, first, buf->body);
	a_blob(a, first + 1, buf->pre, buf->npre);
	a_blob(a, first + 2, buf->suf, buf->nsuf);
	return 0;
}

srv_st_rc pg_chain_actor_name(pg_store *s, pg_conn *pc, const char *op, const srv_audit *a,
			      char **name)
{
	pg_args q = {0};

	*name = NULL;
	if (a->actor_name && *a->actor_name) {
		*name = strdup(a->actor_name);
		return *name ? SRV_ST_OK : SRV_ST_FAILED;
	}
	a_text(&q, 1, a->actor_id);
	return pg_one(s, pc, op, PC_NAME_OF, &q, pg_rd_str, name);
}

/* ---- reading records back ---------------------------------------------- */

/* The body hash of the n columns from c, by their types: a record as it
 * is, whoever wrote it. */
static int body_of(const PGresult *res, int r, int c, int n, int nopt,
		   unsigned char out[SRV_CHAIN_LEN])
{
	srv_chain_body b;

	if (srv_chain_body_begin(&b) != 0)
		return -1;
	for (int i = c; i < c + n + nopt; i++) {
		const char *v = PQgetvalue(res, r, i);
		Oid t = PQftype(res, i);

		if (i >= c + n && PQgetisnull(res, r, i))
			continue; /* an optional column, unset: not in the body */
		if (PQgetisnull(res, r, i)) {
			srv_chain_body_null(&b);
		} else if (t == INT8OID || t == INT4OID || t == INT2OID) {
			srv_chain_body_int(&b, strtoll(v, NULL, 10));
		} else if (t == BYTEAOID) {
			size_t len = 0;
			unsigned char *raw = PQunescapeBytea((const unsigned char *)v, &len);
			if (!raw) {
				b.err = 1;
				break;
			}
			srv_chain_body_bytes(&b, raw, len);
			PQfreemem(raw);
		} else {
			srv_chain_body_bytes(&b, v, (size_t)PQgetlength(res, r, i));
		}
	}
	return srv_chain_body_end(&b, out);
}

static srv_st_rc rd_row(const PGresult *res, int r, int nbody, int nopt, srv_chain_row *o)
{
	memset(o, 0, sizeof(*o));
	o->row = pg_col_ll(res, r, 0);
	o->chain_seq = PQgetisnull(res, r, 1) ? 0 : pg_col_ll(res, r, 1);
	pg_col_copy(res, r, 2, o->prev_hash, sizeof(o->prev_hash));
	pg_col_copy(res, r, 3, o->body_hash, sizeof(o->body_hash));
	pg_col_copy(res, r, 4, o->hash, sizeof(o->hash));
	o->purged = pg_col_ll(res, r, 5) != 0;
	pg_col_copy(res, r, 6, o->id, sizeof(o->id));
	pg_col_copy(res, r, 7, o->kind, sizeof(o->kind));
	return body_of(res, r, CH_BODY, nbody, nopt, o->body) == 0 ? SRV_ST_OK : SRV_ST_FAILED;
}

static srv_st_rc rd_op_row(const PGresult *res, int r, int c, void *out)
{
	(void)c;
	return rd_row(res, r, OP_NBODY, OP_NOPT, out);
}

static srv_st_rc rd_au_row(const PGresult *res, int r, int c, void *out)
{
	(void)c;
	return rd_row(res, r, AU_NBODY, 0, out);
}

static void clr_none(void *p)
{
	(void)p;
}

static int chain_ok(int chain)
{
	return chain == SRV_CHAIN_HISTORY || chain == SRV_CHAIN_AUDIT;
}

srv_st_rc pg_chain_rows(srv_store *st, int chain, long long after, size_t limit, srv_chain_row *out,
			size_t *n)
{
	int hist = chain == SRV_CHAIN_HISTORY;
	srv_chain_row *v = NULL;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !out || !n || !limit || !chain_ok(chain))
		return pg_bad_arg("chain_rows");
	*n = 0;
	a_int(&a, 1, after);
	a_limit(&a, 2, limit);
	r = pg_get_list(PGS(st), "chain_rows", hist ? PC_OP_ROWS : PC_AU_ROWS, &a,
			hist ? rd_op_row : rd_au_row, sizeof(*v), clr_none, (void **)&v, n);
	if (r == SRV_ST_OK && *n > limit)
		*n = limit;
	if (r == SRV_ST_OK && *n)
		memcpy(out, v, *n * sizeof(*v));
	free(v);
	return r;
}

srv_st_rc pg_chain_count_seq(srv_store *st, int chain, long long seq, size_t *n)
{
	pg_args a = {0};
	pg_conn *pc;
	srv_st_rc r;

	if (!st || !n || !chain_ok(chain))
		return pg_bad_arg("chain_count_seq");
	a_int(&a, 1, seq);
	if ((r = pg_acquire(PGS(st), "chain_count_seq", &pc)) != SRV_ST_OK)
		return r;
	r = pg_count(PGS(st), pc, "chain_count_seq",
		     chain == SRV_CHAIN_HISTORY ? PC_OP_COUNT : PC_AU_COUNT, &a, n);
	pg_release(PGS(st), pc);
	return r;
}

typedef struct {
	long long seq;
	char hash[SRV_CHAIN_HEX];
} head_row;

static srv_st_rc rd_head(const PGresult *res, int r, int c, void *out)
{
	head_row *h = out;

	h->seq = pg_col_ll(res, r, c);
	pg_col_copy(res, r, c + 1, h->hash, sizeof(h->hash));
	return SRV_ST_OK;
}

srv_st_rc pg_chain_head(srv_store *st, int chain, long long *seq, char hash[SRV_CHAIN_HEX])
{
	pg_args a = {0};
	head_row h;
	srv_st_rc r;

	if (!st || !seq || !hash || !chain_ok(chain))
		return pg_bad_arg("chain_head");
	a_text(&a, 1, srv_chain_name((srv_chain)chain));
	if ((r = pg_get(PGS(st), "chain_head", PC_HEAD_GET, &a, rd_head, &h)) == SRV_ST_OK) {
		*seq = h.seq;
		rs_strlcpy(hash, h.hash, SRV_CHAIN_HEX);
	}
	return r;
}

/* ---- checkpoints ------------------------------------------------------------ */

static srv_st_rc rd_cp(const PGresult *res, int r, int c, void *out)
{
	srv_checkpoint *cp = out;
	size_t n = 0;
	unsigned char *raw;

	memset(cp, 0, sizeof(*cp));
	if (srv_chain_parse(PQgetvalue(res, r, c), &cp->chain) != 0)
		return SRV_ST_FAILED;
	cp->seq = pg_col_ll(res, r, c + 1);
	pg_col_copy(res, r, c + 2, cp->hash, sizeof(cp->hash));
	cp->created_at = pg_col_ll(res, r, c + 3);
	if (!PQgetisnull(res, r, c + 4)) {
		raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, c + 4), &n);
		if (!raw)
			return SRV_ST_FAILED;
		if (n > sizeof(cp->sig)) {
			PQfreemem(raw);
			return SRV_ST_FAILED;
		}
		memcpy(cp->sig, raw, n);
		cp->sig_len = n;
		PQfreemem(raw);
	}
	pg_col_copy(res, r, c + 5, cp->replica, sizeof(cp->replica));
	return SRV_ST_OK;
}

srv_st_rc pg_checkpoint_insert(srv_store *st, const srv_checkpoint *c)
{
	pg_args a = {0};
	pg_conn *pc;
	srv_st_rc r;

	if (!st || !c || c->seq <= 0 || !c->sig_len || strlen(c->hash) != 2 * SRV_CHAIN_LEN)
		return pg_bad_arg("checkpoint_insert");
	a_text(&a, 1, srv_chain_name(c->chain));
	a_int(&a, 2, c->seq);
	a_text(&a, 3, c->hash);
	a_int(&a, 4, c->created_at);
	a_blob(&a, 5, c->sig, c->sig_len);
	a_text(&a, 6, c->replica);
	if ((r = pg_acquire(PGS(st), "checkpoint_insert", &pc)) != SRV_ST_OK)
		return r;
	r = pg_run(PGS(st), pc, "checkpoint_insert", PC_CP_INSERT, &a, PGRUN_PLAIN, NULL);
	pg_release(PGS(st), pc);
	return r;
}

srv_st_rc pg_checkpoint_list(srv_store *st, int chain, long long after, size_t limit,
			     srv_checkpoint *out, size_t *n)
{
	srv_checkpoint *v = NULL;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !out || !n || !limit || !chain_ok(chain))
		return pg_bad_arg("checkpoint_list");
	*n = 0;
	a_text(&a, 1, srv_chain_name((srv_chain)chain));
	a_int(&a, 2, after);
	a_limit(&a, 3, limit);
	r = pg_get_list(PGS(st), "checkpoint_list", PC_CP_LIST, &a, rd_cp, sizeof(*v), clr_none,
			(void **)&v, n);
	if (r == SRV_ST_OK && *n > limit)
		*n = limit;
	if (r == SRV_ST_OK && *n)
		memcpy(out, v, *n * sizeof(*v));
	free(v);
	return r;
}

srv_st_rc pg_checkpoint_last(srv_store *st, int chain, srv_checkpoint *out)
{
	pg_args a = {0};

	if (!st || !out || !chain_ok(chain))
		return pg_bad_arg("checkpoint_last");
	a_text(&a, 1, srv_chain_name((srv_chain)chain));
	return pg_get(PGS(st), "checkpoint_last", PC_CP_LAST, &a, rd_cp, out);
}

/* ---- migration 10: the records made before it ------------------------------ */

#define BACKFILL_PAGE 512

int pg_res_ok(PGresult *res, const char *what, char *err, size_t errlen)
{
	ExecStatusType t = PQresultStatus(res);

	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(res));
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return -1;
}

/* Chains every record of one table in seq order, in the caller's
 * transaction (the migration's, under its lock). */
static int backfill_table(PGconn *db, srv_chain c, char *err, size_t errlen)
{
	int hist = c == SRV_CHAIN_HISTORY;
	const char *sel = hist ? "SELECT seq, status, " OP_BODY " FROM operations WHERE seq > $1"
				 " ORDER BY seq LIMIT 512"
			       : "SELECT seq, action, " AU_BODY " FROM audit WHERE seq > $1"
				 " ORDER BY seq LIMIT 512";
	const char *upd = hist ? "UPDATE operations SET chain_seq = $2, prev_hash = $3,"
				 " body_hash = $4, hash = $5 WHERE seq = $1"
			       : "UPDATE audit SET chain_seq = $2, prev_hash = $3,"
				 " body_hash = $4, hash = $5 WHERE seq = $1";
	unsigned char prev[SRV_CHAIN_LEN] = {0}, body[SRV_CHAIN_LEN], h[SRV_CHAIN_LEN];
	char after[24] = "0", seqs[24], rowseq[24], ph[SRV_CHAIN_HEX], bh[SRV_CHAIN_HEX],
	     hh[SRV_CHAIN_HEX];
	long long seq = 0;
	int n;

	do {
		const char *p1[1] = {after};
		PGresult *res = PQexecParams(db, sel, 1, NULL, p1, NULL, NULL, 0);
		if (pg_res_ok(res, "reading the records to chain", err, errlen) != 0) {
			PQclear(res);
			return -1;
		}
		n = PQntuples(res);
		for (int i = 0; i < n; i++) {
			rs_strlcpy(rowseq, PQgetvalue(res, i, 0), sizeof(rowseq));
			if (body_of(res, i, 2, hist ? OP_NBODY : AU_NBODY, 0, body) != 0 ||
			    srv_chain_link(prev, c, seq + 1, PQgetvalue(res, i, 1), body, h) != 0) {
				snprintf(err, errlen, "cannot hash record %s", rowseq);
				PQclear(res);
				return -1;
			}
			seq++;
			snprintf(seqs, sizeof(seqs), "%lld", seq);
			srv_chain_hex(prev, ph);
			srv_chain_hex(body, bh);
			srv_chain_hex(h, hh);
			memcpy(prev, h, sizeof(prev));
			const char *pu[5] = {rowseq, seqs, ph, bh, hh};
			PGresult *u = PQexecParams(db, upd, 5, NULL, pu, NULL, NULL, 0);
			int bad = pg_res_ok(u, "chaining a record", err, errlen);
			PQclear(u);
			if (bad) {
				PQclear(res);
				return -1;
			}
		}
		if (n)
			rs_strlcpy(after, rowseq, sizeof(after));
		PQclear(res);
	} while (n == BACKFILL_PAGE);
	srv_chain_hex(prev, hh);
	snprintf(seqs, sizeof(seqs), "%lld", seq);
	const char *ph4[4] = {srv_chain_name(c), seqs, hh, seq ? ph : srv_chain_genesis};
	PGresult *res = PQexecParams(db,
				     "UPDATE chain_heads SET seq = $2, hash = $3, prev = $4"
				     " WHERE chain = $1",
				     4, NULL, ph4, NULL, NULL, 0);
	int rc = pg_res_ok(res, "writing the chain's head", err, errlen);
	PQclear(res);
	if (rc == 0 && seq)
		rs_info("store: %lld %s records chained", seq, srv_chain_name(c));
	return rc;
}

int pg_chain_backfill(PGconn *db, char *err, size_t errlen)
{
	return backfill_table(db, SRV_CHAIN_HISTORY, err, errlen) == 0 &&
			       backfill_table(db, SRV_CHAIN_AUDIT, err, errlen) == 0
		       ? 0
		       : -1;
}
