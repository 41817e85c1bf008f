/* The group commit's queue, one for each store's history (SQLite's
 * store_sqlite_history.c, PostgreSQL's store_pg_history.c): callers queue
 * a job; whoever finds no commit in progress becomes the leader, takes up
 * to max queued jobs (its own among them), runs them as one batch without
 * the queue's lock, and wakes the others once their batch has ended. A
 * job's outcome is the backend's business (its struct embeds
 * srv_batch_job first). */
#ifndef RSIGN_STORE_BATCH_H
#define RSIGN_STORE_BATCH_H
#include <pthread.h>
#include <stddef.h>

typedef struct srv_batch_job {
	int done;
	struct srv_batch_job *next;
} srv_batch_job;

typedef struct {
	pthread_mutex_t mu; /* guards head, tail, leader and every job's done */
	pthread_cond_t cv;
	srv_batch_job *head, *tail;
	int leader;
} srv_batch;

/* 0 or -1. */
int srv_batch_init(srv_batch *q);
void srv_batch_fini(srv_batch *q);

/* Writes batch, a list of at least one job linked by next; every job's
 * outcome is set when it returns. */
typedef void (*srv_batch_run)(void *ctx, srv_batch_job *batch);

/* Queues j and returns once the batch that held it has run. */
void srv_batch_submit(srv_batch *q, srv_batch_job *j, size_t max, srv_batch_run run, void *ctx);

#endif
