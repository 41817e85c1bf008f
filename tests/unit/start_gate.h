/* A start gate for the C tests' threads (header only): each thread waits at
 * the gate until the test has seen them all arrive and opens it, so that
 * they all call in at once rather than one after another as they are
 * created. */
#ifndef RSIGN_TEST_START_GATE_H
#define RSIGN_TEST_START_GATE_H
#include <pthread.h>

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int arrived, open;
} start_gate;

#define START_GATE_INIT                                                                            \
	{                                                                                          \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0                          \
	}

/* In each thread, first: waits until the gate opens. */
static inline void start_gate_wait(start_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->arrived++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

/* In the test, once n threads are started: waits until all n have arrived,
 * then lets them go together. */
static inline void start_gate_open(start_gate *g, int n)
{
	pthread_mutex_lock(&g->mu);
	while (g->arrived < n)
		pthread_cond_wait(&g->cv, &g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

#endif
