/* Group commit of signing-history records on PostgreSQL. A record's insert
 * links it to the history chain by updating the chain's head row, whose
 * lock is then held until the commit: one commit at a time per chain, over
 * every replica. Committing each record alone made the records of one
 * rsignd wait for each other's flush. So, as on SQLite
 * (store_sqlite_history.c), callers queue their record; whoever finds no
 * commit in progress becomes the leader and writes every queued record
 * (up to PG_BATCH_MAX) in one transaction, one statement each, the head
 * lock taken once and one commit for all; the others wait for its end.
 * No record is reported before the commit that holds it has returned, and
 * synchronous_commit stays on.
 *
 * A batch fails as a whole when one of its statements fails (an
 * Idempotency-Key used meanwhile is CONFLICT, for instance): it is rolled
 * back, nothing of it was committed, and each of its records is then
 * written alone, so every caller gets its own outcome. A batch of one is
 * written alone at once: one statement, no BEGIN or COMMIT round trip.
 * Records with a "denied" retention set take the transactional path of
 * pg_operation_insert (store_pg_pki.c), one by one. */
#include <string.h>
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "server/store/store_pg.h"

#define PG_BATCH_MAX 64 /* records per transaction; the rest waits for the next */

typedef struct pg_job {
	srv_batch_job q; /* first: the queue's link (store_batch.h) */
	const srv_operation *op;
	srv_st_rc rc;
} pg_job;

/* The job after j in its batch, or NULL. */
static pg_job *next_job(const pg_job *j)
{
	return (pg_job *)j->q.next;
}

static const char op_name[] = "operation_insert";

/* One record in one statement (its own commit). Not retried on a lost
 * link: it may have committed (pg_acquire checked the link first). */
static srv_st_rc insert_alone(pg_store *s, const srv_operation *o)
{
	pg_conn *pc;
	pg_chain_buf buf;
	pg_args a = {0};
	srv_st_rc r;

	if ((r = pg_acquire(s, op_name, &pc)) != SRV_ST_OK)
		return r;
	if ((r = pg_a_operation(&a, o, o->grant_id, &buf)) == SRV_ST_OK) {
		pc->used++;
		r = pg_run(s, pc, op_name, PK_OP_INSERT_TOUCH, &a, PGRUN_PLAIN, NULL);
	}
	pg_release(s, pc);
	if (r == SRV_ST_OK)
		rs_metric_observe(&rs_m_commit_batch, 1, NULL);
	return r;
}

/* Every record of batch (two or more) in one transaction; on a failure
 * before the commit, each alone. */
static void run_batch(pg_store *s, pg_job *batch)
{
	pg_conn *pc;
	srv_st_rc r;
	size_t n = 0;

	if (!batch->q.next) {
		batch->rc = insert_alone(s, batch->op);
		return;
	}
	if ((r = pg_acquire(s, op_name, &pc)) != SRV_ST_OK) {
		for (pg_job *j = batch; j; j = next_job(j))
			j->rc = r;
		return;
	}
	r = pg_begin(s, pc, op_name);
	for (pg_job *j = batch; j && r == SRV_ST_OK; j = next_job(j), n++) {
		pg_chain_buf buf;
		pg_args a = {0};
		if ((r = pg_a_operation(&a, j->op, j->op->grant_id, &buf)) == SRV_ST_OK)
			r = pg_run(s, pc, op_name, PK_OP_INSERT_TOUCH, &a, PGRUN_PLAIN, NULL);
	}
	if (r != SRV_ST_OK) {
		pg_rollback(s, pc, op_name);
		pg_release(s, pc);
		rs_debug("store: a batch of history records failed: writing each alone");
		for (pg_job *j = batch; j; j = next_job(j))
			j->rc = insert_alone(s, j->op);
		return;
	}
	r = pg_commit(s, pc, op_name); /* durable once OK */
	pg_release(s, pc);
	for (pg_job *j = batch; j; j = next_job(j))
		j->rc = r;
	if (r == SRV_ST_OK)
		rs_metric_observe(&rs_m_commit_batch, (double)n, NULL);
}

static void run_queued(void *ctx, srv_batch_job *batch)
{
	run_batch(ctx, (pg_job *)batch);
}

srv_st_rc pg_history_submit(pg_store *s, const srv_operation *o)
{
	pg_job j = {.op = o};

	srv_batch_submit(&s->hq, &j.q, PG_BATCH_MAX, run_queued, s);
	return j.rc;
}
