/* Signing-history records with group commit, and the retention of denied
 * records. Every record must be durable (synchronous=FULL: an fsync per
 * commit) before its signature is returned, and one fsync per signature
 * would serialise all signers on the disk. So callers queue their record;
 * whoever finds no commit in progress becomes the leader, writes every
 * queued record in one transaction, commits once, and wakes the others with
 * their own outcome. No record is reported before the commit that holds it
 * has returned.
 *
 * A success made under an Idempotency-Key (migration 8) is written only
 * when its actor has no record under that key yet, checked in the batch's
 * transaction (so also against an earlier record of the same batch): else
 * the job gets CONFLICT, writes nothing and uses no grant, and the caller
 * reads the first record with operation_find_key. The unique index
 * operations_idem backs the check.
 *
 * Each record is linked to the history's hash chain (store_chain.h) in the
 * batch's transaction: the head is read once, the records hashed in the
 * order they are written, the head written once before the commit. A
 * "denied" record past its retention becomes a tombstone of the chain. */
#include <stdlib.h>
#include <string.h>
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "rsign/util.h"
#include "server/store/store_sqlite.h"

#define BATCH_MAX 256 /* bounds one transaction; the rest waits for the next */
#define PURGE_MAX 512 /* "denied" records past their retention deleted per commit */

const char *const sq_history_sql[H_COUNT] = {
	[H_KEY_FIND] = "SELECT id, signer_id, status, algorithm, actor_id, grant_id, created_at,"
		       " idem_key, request_hash, signature FROM operations"
		       " WHERE actor_id = ?1 AND idem_key = ?2",
	[H_KEY_SET] = "UPDATE operations SET idem_key = ?2, request_hash = ?3, signature = ?4"
		      " WHERE id = ?1",
};

typedef struct sq_job sq_job;

struct sq_job {
	srv_batch_job q; /* first: the queue's link (store_batch.h) */
	const srv_operation *op;
	int consume; /* take one signing from the actor's grant */
	char grant[RS_UUID_LEN];
	srv_st_rc rc;
	int key_taken; /* CONFLICT: its actor used its Idempotency-Key already */
};

/* The job after j in its batch, or NULL. */
static sq_job *next_job(const sq_job *j)
{
	return (sq_job *)j->q.next;
}

int sq_history_init(sq_store *s)
{
	return srv_batch_init(&s->hq);
}

void sq_history_fini(sq_store *s)
{
	srv_batch_fini(&s->hq);
}

void sq_history_set_retention(srv_store *st, long long denied_seconds)
{
	sq_store *s = SQ(st);

	if (!s || denied_seconds < 0)
		return;
	sq_lock(s);
	s->denied_retention = denied_seconds;
	sq_unlock(s);
}

/* With a retention, each commit also deletes up to PURGE_MAX "denied"
 * records older than the batch's newest by more than the retention: as
 * denied attempts arrive they take old ones away, and a backlog (after the
 * setting was lowered) goes in bounded steps. Caller holds the lock, inside
 * the batch's transaction. */
static srv_st_rc purge_denied(sq_store *s, const char *op, sq_job *batch)
{
	time_t newest = 0;
	size_t n = 0;
	srv_st_rc r;

	if (!s->denied_retention)
		return SRV_ST_OK;
	for (sq_job *j = batch; j; j = next_job(j))
		if (j->op->created_at > newest)
			newest = j->op->created_at;
	r = sq_op_purge_denied(s, op, newest - (time_t)s->denied_retention, PURGE_MAX, &n);
	if (r == SRV_ST_OK && n)
		rs_debug("store: %zu denied history records past their retention deleted", n);
	return r;
}

static srv_st_rc rd_keyed(sqlite3_stmt *st, int c, void *out)
{
	srv_operation *o = out;
	const void *sig = sqlite3_column_blob(st, c + 9);
	int n = sqlite3_column_bytes(st, c + 9);

	memset(o, 0, sizeof(*o));
	col_copy(st, c, o->id, sizeof(o->id));
	col_copy(st, c + 1, o->signer_id, sizeof(o->signer_id));
	col_copy(st, c + 2, o->status, sizeof(o->status));
	col_copy(st, c + 3, o->algorithm, sizeof(o->algorithm));
	col_copy(st, c + 4, o->actor_id, sizeof(o->actor_id));
	col_copy(st, c + 5, o->grant_id, sizeof(o->grant_id));
	o->created_at = (time_t)sqlite3_column_int64(st, c + 6);
	col_copy(st, c + 7, o->idem_key, sizeof(o->idem_key));
	col_copy(st, c + 8, o->request_hash, sizeof(o->request_hash));
	if (n < 0 || (size_t)n > sizeof(o->signature) || (n > 0 && !sig))
		return SRV_ST_FAILED;
	if (n > 0)
		memcpy(o->signature, sig, (size_t)n);
	o->signature_len = (size_t)n;
	return SRV_ST_OK;
}

srv_st_rc sq_operation_find_key(srv_store *st, const char *actor_id, const char *key,
				srv_operation *out)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !actor_id || !key || !*key || !out)
		return sq_bad_arg("operation_find_key");
	sq_lock(s);
	q = s->h[H_KEY_FIND];
	b_text(q, 1, actor_id, &brc);
	b_text(q, 2, key, &brc);
	r = sq_one(s, "operation_find_key", q, brc, rd_keyed, out);
	sq_unlock(s);
	return r;
}

/* CONFLICT when o's actor has a record under o's key already; inside the
 * batch's transaction. */
static srv_st_rc key_unused(sq_store *s, const char *op, const srv_operation *o)
{
	srv_operation seen;
	sqlite3_stmt *q = s->h[H_KEY_FIND];
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(q, 1, o->actor_id, &brc);
	b_text(q, 2, o->idem_key, &brc);
	r = sq_one(s, op, q, brc, rd_keyed, &seen);
	if (r == SRV_ST_OK)
		return SRV_ST_CONFLICT;
	return r == SRV_ST_NOT_FOUND ? SRV_ST_OK : r;
}

static srv_st_rc key_set(sq_store *s, const char *op, const srv_operation *o)
{
	sqlite3_stmt *q = s->h[H_KEY_SET];
	int brc = SQLITE_OK;

	b_text(q, 1, o->id, &brc);
	b_text(q, 2, o->idem_key, &brc);
	b_opt(q, 3, o->request_hash, &brc);
	b_blob(q, 4, o->signature, o->signature_len, &brc);
	return sq_run(s, op, q, brc, RUN_MUST_CHANGE);
}

/* One job's rows: NOT_FOUND (a used-up grant) and CONFLICT (a key used
 * already) write nothing and leave the batch going; other failures fail it. */
static srv_st_rc apply_job(sq_store *s, const char *op, sq_job *j)
{
	srv_st_rc r;

	if (j->op->idem_key[0] && (r = key_unused(s, op, j->op)) != SRV_ST_OK) {
		j->key_taken = r == SRV_ST_CONFLICT;
		return r;
	}
	r = j->consume ? sq_op_apply_consume(s, op, j->op, j->grant)
		       : sq_op_apply(s, op, j->op, j->op->grant_id);
	if (r == SRV_ST_OK && j->op->idem_key[0])
		r = key_set(s, op, j->op);
	return r;
}

static int job_skipped(const sq_job *j)
{
	return (j->consume && j->rc == SRV_ST_NOT_FOUND) || j->key_taken;
}

/* Writes a batch in one transaction. A job whose grant is used up gets
 * NOT_FOUND and writes nothing; any database error fails the whole batch,
 * since none of it was committed. */
static void run_batch(sq_store *s, sq_job *batch)
{
	static const char op[] = "operation_insert";
	srv_st_rc r;
	sq_lock(s);
	if ((r = sq_begin(s, op)) != SRV_ST_OK)
		goto fail;
	/* the chain's head once per batch; each record links to the last */
	if ((r = sq_chain_begin(s, op, SRV_CHAIN_HISTORY, &s->hchain)) != SRV_ST_OK)
		goto rollback;
	for (sq_job *j = batch; j; j = next_job(j)) {
		j->rc = apply_job(s, op, j);
		if (j->rc != SRV_ST_OK && !job_skipped(j)) {
			r = j->rc;
			goto rollback;
		}
	}
	/* last_signed_at once per signer of the batch, not once per record */
	for (sq_job *j = batch; j; j = next_job(j)) {
		if (j->rc != SRV_ST_OK || strcmp(j->op->status, "success") != 0)
			continue;
		time_t latest = j->op->created_at;
		int first = 1;
		for (sq_job *k = batch; k; k = next_job(k)) {
			if (k->rc != SRV_ST_OK || strcmp(k->op->status, "success") != 0 ||
			    strcmp(k->op->signer_id, j->op->signer_id) != 0)
				continue;
			if (k == j)
				break;
			first = 0; /* an earlier job of this signer did it */
		}
		if (!first)
			continue;
		for (sq_job *k = next_job(j); k; k = next_job(k))
			if (k->rc == SRV_ST_OK && strcmp(k->op->status, "success") == 0 &&
			    strcmp(k->op->signer_id, j->op->signer_id) == 0 &&
			    k->op->created_at > latest)
				latest = k->op->created_at;
		if ((r = sq_op_touch_signer(s, op, j->op->signer_id, latest)) != SRV_ST_OK)
			goto rollback;
	}
	if ((r = purge_denied(s, op, batch)) != SRV_ST_OK ||
	    (r = sq_chain_end(s, op, &s->hchain)) != SRV_ST_OK)
		goto rollback;
	if ((r = sq_commit(s, op)) != SRV_ST_OK) /* durable once OK */
		goto fail;
	sq_unlock(s);
	size_t written = 0;
	for (sq_job *j = batch; j; j = next_job(j))
		written += j->rc == SRV_ST_OK;
	if (written)
		rs_metric_observe(&rs_m_commit_batch, (double)written, NULL);
	return;
rollback:
	sq_rollback(s, op);
fail:
	sq_unlock(s);
	for (sq_job *j = batch; j; j = next_job(j)) {
		j->rc = r;
		j->grant[0] = '\0';
	}
}

static void run_queued(void *ctx, srv_batch_job *batch)
{
	run_batch(ctx, (sq_job *)batch);
}

/* Queues j and returns once the commit that holds it (or failed it) ended. */
static srv_st_rc submit(sq_store *s, sq_job *j)
{
	srv_batch_submit(&s->hq, &j->q, BATCH_MAX, run_queued, s);
	return j->rc;
}

srv_st_rc sq_operation_insert(srv_store *st, const srv_operation *o)
{
	sq_store *s = SQ(st);
	if (!s || !o || !o->id[0] || !o->signer_id[0] ||
	    (o->idem_key[0] && strcmp(o->status, "success") != 0))
		return sq_bad_arg("operation_insert");
	sq_job j = {.op = o};
	return submit(s, &j);
}

srv_st_rc sq_operation_insert_consume(srv_store *st, const srv_operation *o,
				      char grant_id_out[RS_UUID_LEN])
{
	sq_store *s = SQ(st);
	if (!s || !o || !o->id[0] || !o->signer_id[0] || !o->actor_id[0] || !grant_id_out ||
	    strcmp(o->status, "success") != 0)
		return sq_bad_arg("operation_insert_consume");
	grant_id_out[0] = '\0';
	sq_job j = {.op = o, .consume = 1};
	srv_st_rc r = submit(s, &j);
	if (r == SRV_ST_OK)
		rs_strlcpy(grant_id_out, j.grant, RS_UUID_LEN);
	return r;
}
