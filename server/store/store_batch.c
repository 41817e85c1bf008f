/* The group commit's queue and its leader: see store_batch.h. */
#include "server/store/store_batch.h"

int srv_batch_init(srv_batch *q)
{
	if (pthread_mutex_init(&q->mu, NULL) != 0)
		return -1;
	if (pthread_cond_init(&q->cv, NULL) != 0) {
		pthread_mutex_destroy(&q->mu);
		return -1;
	}
	q->head = q->tail = NULL;
	q->leader = 0;
	return 0;
}

void srv_batch_fini(srv_batch *q)
{
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

void srv_batch_submit(srv_batch *q, srv_batch_job *j, size_t max, srv_batch_run run, void *ctx)
{
	j->done = 0;
	j->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	while (!j->done) {
		if (q->leader) {
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		/* lead: take up to max queued jobs (ours among them) */
		q->leader = 1;
		srv_batch_job *batch = q->head, *last = batch;
		for (size_t n = 1; n < max && last->next; n++)
			last = last->next;
		q->head = last->next;
		if (!q->head)
			q->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&q->mu);
		run(ctx, batch);
		pthread_mutex_lock(&q->mu);
		for (srv_batch_job *b = batch; b; b = b->next)
			b->done = 1; /* its owner reads it only after we let go */
		q->leader = 0;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
}
