/* Request-head deadlines (conns.h): the connections waiting for a head,
 * in one list ordered by deadline (every deadline is now + the same
 * timeout, so appending keeps the order), and the reaper thread that
 * sleeps until the first one is due.
 *
 * Why shutdown(2) from another thread is safe here: the reaper calls it
 * holding g->lock, and srv_conns_closed, which takes the same lock, runs
 * before libmicrohttpd closes the socket. In libmicrohttpd (daemon.c,
 * MHD_cleanup_connections, and the error path after a connection was
 * set up in new_connection_process_) the notify_connection callback with
 * MHD_CONNECTION_NOTIFY_CLOSED comes before MHD_socket_close_chk_ of the
 * connection's socket. So while an entry is in the list its fd is still
 * that connection's, and a number reused by the kernel is never hit.
 *
 * The deadline measures the client, not rsignd: a connection belongs to
 * the daemon thread that accepted it, and while that thread runs a
 * handler (a key generation can take seconds, and with
 * hsm_exclusive_writes every thread waits for it) it reads nothing from
 * its other connections. So time the owner spends busy does not count: a
 * due connection whose owner is busy, or was busy since its deadline
 * started, gets a whole timeout again from when the owner was free. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include "rsign/log.h"
#include "server/http/conns.h"

/* A daemon thread: busy while it runs a handler. */
typedef struct worker {
	int busy;
	double idle_since; /* when its last handler ended; 0: never busy */
	struct worker *next;
} worker;

typedef struct entry {
	int fd;
	int waiting; /* in the list: its head has not come */
	int reaped;
	double armed;	 /* when the deadline started */
	double deadline; /* armed + the timeout */
	worker *owner;	 /* the thread that accepted it; NULL: unknown */
	struct entry *prev, *next;
} entry;

struct srv_conns {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t reaper;
	double timeout;
	double sleep_until; /* the reaper wakes by then unless signalled */
	int stop;
	entry *head, *tail; /* waiting, by deadline */
	worker *workers;    /* every daemon thread seen, freed with g */
};

/* The calling thread's record in g (made on its first call). */
static __thread struct {
	srv_conns *g;
	worker *w;
} self;

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void unlink_inlock(srv_conns *g, entry *e)
{
	if (!e->waiting)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		g->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		g->tail = e->prev;
	e->prev = e->next = NULL;
	e->waiting = 0;
}

/* Puts e in the list, kept in deadline order (an entry re-armed after its
 * owner was busy may go before later ones). */
static void insert_inlock(srv_conns *g, entry *e)
{
	entry *after = g->tail;
	while (after && after->deadline > e->deadline)
		after = after->prev;
	e->waiting = 1;
	e->prev = after;
	e->next = after ? after->next : g->head;
	if (e->next)
		e->next->prev = e;
	else
		g->tail = e;
	if (after)
		after->next = e;
	else
		g->head = e;
	/* wake the reaper only when it sleeps past this deadline: a
	 * keep-alive connection re-armed after each answer then costs no
	 * thread switch (it sleeps a whole timeout while the list is empty) */
	if (e->deadline < g->sleep_until)
		pthread_cond_signal(&g->wake);
}

static void arm_inlock(srv_conns *g, entry *e, double from)
{
	e->armed = from;
	e->deadline = from + g->timeout;
	insert_inlock(g, e);
}

static worker *self_inlock(srv_conns *g)
{
	if (self.g == g)
		return self.w;
	worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->next = g->workers;
	g->workers = w;
	self.g = g;
	self.w = w;
	return w;
}

static void *reaper_main(void *arg)
{
	srv_conns *g = arg;
	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		double now = mono_now();
		/* an empty list: every deadline armed from now on is at least
		 * now + timeout, so sleeping that long misses none */
		double due = g->head ? g->head->deadline : now + (g->timeout > 0 ? g->timeout : 1);
		if (due > now) {
			g->sleep_until = due;
			struct timespec ts;
			ts.tv_sec = (time_t)due;
			ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
			if (ts.tv_nsec >= 1000000000L)
				ts.tv_nsec = 999999999L;
			pthread_cond_timedwait(&g->wake, &g->lock, &ts);
			continue;
		}
		entry *e = g->head;
		unlink_inlock(g, e);
		worker *w = e->owner;
		if (w && (w->busy || w->idle_since > e->armed)) {
			/* its thread was not reading it: the client's time
			 * starts when the thread is free */
			arm_inlock(g, e, w->busy ? now : w->idle_since);
			continue;
		}
		e->reaped = 1;
		shutdown(e->fd, SHUT_RDWR);
		rs_debug("a connection sent no whole request head within %.0f s: closed",
			 g->timeout);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

srv_conns *srv_conns_new(double header_timeout)
{
	srv_conns *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	if (!g)
		return NULL;
	g->timeout = header_timeout;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	return g;
}

void srv_conns_free(srv_conns *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->reaper, NULL);
	while (g->head) { /* none once the daemon stopped; in case */
		entry *e = g->head;
		unlink_inlock(g, e);
		free(e);
	}
	while (g->workers) {
		worker *w = g->workers;
		g->workers = w->next;
		free(w);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void srv_conns_started(srv_conns *g, int fd, void **ctx)
{
	entry *e = calloc(1, sizeof(*e));
	*ctx = e;
	if (!e)
		return; /* no deadline for this one; the idle timeout still holds */
	e->fd = fd;
	pthread_mutex_lock(&g->lock);
	e->owner = self_inlock(g);
	arm_inlock(g, e, mono_now());
	pthread_mutex_unlock(&g->lock);
}

void srv_conns_head_done(srv_conns *g, void *ctx)
{
	entry *e = ctx;
	if (!e)
		return;
	pthread_mutex_lock(&g->lock);
	unlink_inlock(g, e);
	pthread_mutex_unlock(&g->lock);
}

void srv_conns_response_done(srv_conns *g, void *ctx)
{
	entry *e = ctx;
	if (!e)
		return;
	pthread_mutex_lock(&g->lock);
	if (!e->waiting && !e->reaped)
		arm_inlock(g, e, mono_now());
	pthread_mutex_unlock(&g->lock);
}

void srv_conns_closed(srv_conns *g, void **ctx)
{
	entry *e = *ctx;
	if (!e)
		return;
	pthread_mutex_lock(&g->lock);
	unlink_inlock(g, e);
	pthread_mutex_unlock(&g->lock);
	free(e);
	*ctx = NULL;
}

void srv_conns_busy(srv_conns *g, int busy)
{
	pthread_mutex_lock(&g->lock);
	worker *w = self_inlock(g);
	if (w) {
		w->busy = busy;
		if (!busy)
			w->idle_since = mono_now();
	}
	pthread_mutex_unlock(&g->lock);
}
