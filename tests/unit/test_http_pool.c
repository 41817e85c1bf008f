/* The HTTP layer's thread pool under concurrent clients, on a real
 * libmicrohttpd daemon over plain HTTP on loopback with a storage stub:
 * many clients at once, two per bearer token, through the token cache
 * while mutating requests bump its generation, and a stop that lets the
 * requests in flight finish. scripts/check-sanitizers runs it under
 * ThreadSanitizer (build-tsan/) for the daemon's threads, the caches and
 * the in-flight accounting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "server/http/auth.h"
#include "server/http/cache.h"
#include "server/http/http.h"
#include "start_gate.h"
#include "tap.h"

#define POOL_THREADS 4 /* the daemon's */
#define CLIENTS 8
#define TOKENS (CLIENTS / 2) /* two clients share each token */
#define REQUESTS 24	     /* per client; every fourth one mutates */
#define HELD POOL_THREADS    /* requests in flight while the daemon stops */

/* ---- a store that knows every token: the principal's name is "p-" and
 * the first 16 hex digits of the token's hash ----------------------------- */

static void name_of_hash(const char *hash_hex, char out[32])
{
	snprintf(out, 32, "p-%.16s", hash_hex);
}

static srv_st_rc stub_token_lookup(srv_store *st, const char *hash_hex, time_t now,
				   srv_principal *out, srv_token *tok)
{
	if (tok) {
		memset(tok, 0, sizeof(*tok));
		tok->last_used_at = now; /* used just now: nothing to record */
	}
	char name[32];

	(void)st;
	(void)now;
	memset(out, 0, sizeof(*out));
	memcpy(out->id, "00000000-0000-4000-8000-000000000002", RS_UUID_LEN);
	memcpy(out->type, "user", 5);
	name_of_hash(hash_hex, name);
	out->name = strdup(name);
	return out->name ? SRV_ST_OK : SRV_ST_FAILED;
}

static const srv_store_ops stub_ops = {.token_lookup = stub_token_lookup};
static srv_store stub_store = {.ops = &stub_ops};

/* ---- routes: who am I, a mutating no-op, and one that waits -------------- */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int held, released;

static srv_err handle_whoami(srv_req *r, cJSON **out)
{
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "name", r->actor.name ? r->actor.name : "");
	return SRV_OK;
}

/* Waits (in a daemon thread) until the test releases every held request. */
static srv_err handle_hold(srv_req *r, cJSON **out)
{
	pthread_mutex_lock(&hold_mu);
	held++;
	pthread_cond_broadcast(&hold_cv);
	while (!released)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);
	return handle_whoami(r, out);
}

static const srv_route routes[] = {
	{"GET", "/whoami", handle_whoami, SRV_AUTH_ANY, 0, NULL},
	{"POST", "/touch", handle_whoami, SRV_AUTH_ANY, 0, NULL}, /* bumps the caches */
	{"GET", "/hold", handle_hold, SRV_AUTH_ANY, 0, NULL},
	{NULL, NULL, NULL, 0, 0, NULL},
};

/* ---- a client: one request per connection -------------------------------- */

static int port;

static int connect_daemon(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Sends method path with the token; the status (-1: no answer) and the
 * body's "name" in name. */
static int request(const char *method, const char *path, const char *token, char name[32])
{
	char req[512], buf[8192];
	size_t n = 0;
	ssize_t k;
	int status = -1, fd = connect_daemon();

	name[0] = '\0';
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req),
		 "%s /api/v1%s HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n",
		 method, path, token);
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req))
		while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
			n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	const char *body = strstr(buf, "\r\n\r\n");
	cJSON *j = body ? rs_json_parse(body + 4, strlen(body + 4), RS_JSON_MAX_DEPTH) : NULL;
	const char *got = NULL;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	if (j && rs_json_str(j, "name", 1, 31, &got) == RS_JSON_OK)
		snprintf(name, 32, "%s", got);
	cJSON_Delete(j);
	return status;
}

static char tokens[TOKENS][SRV_TOKEN_LEN];
static char names[TOKENS][32]; /* the principal each token stands for */

/* ---- many clients at once -------------------------------------------------- */

typedef struct {
	int id;
	int answered; /* 200s */
	int own_name; /* 200s that named this client's own principal */
} client;

static start_gate go_gate = START_GATE_INIT;

static void *client_thread(void *arg)
{
	client *c = arg;
	int t = c->id % TOKENS;
	char name[32];

	start_gate_wait(&go_gate);
	for (int i = 0; i < REQUESTS; i++) {
		int mutate = i % 4 == 3;
		int status = request(mutate ? "POST" : "GET", mutate ? "/touch" : "/whoami",
				     tokens[t], name);
		c->answered += status == 200;
		c->own_name += status == 200 && strcmp(name, names[t]) == 0;
	}
	return NULL;
}

static void test_concurrent_clients(void)
{
	pthread_t th[CLIENTS];
	client c[CLIENTS];
	int started = 0, answered = 0, own = 0;

	memset(c, 0, sizeof(c));
	for (int i = 0; i < CLIENTS; i++) {
		c[i].id = i;
		if (pthread_create(&th[i], NULL, client_thread, &c[i]) != 0)
			break;
		started++;
	}
	start_gate_open(&go_gate, started);
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		answered += c[i].answered;
		own += c[i].own_name;
	}
	ok(started == CLIENTS && answered == CLIENTS * REQUESTS,
	   "%d_clients_at_once_on_%d_daemon_threads_all_answered_200 (%d/%d)", CLIENTS,
	   POOL_THREADS, answered, CLIENTS * REQUESTS);
	ok(own == answered && answered > 0,
	   "every_answer_names_its_own_tokens_principal_through_the_shared_cache (%d/%d)", own,
	   answered);
}

/* ---- a stop while requests are in flight --------------------------------- */

typedef struct {
	int token;
	int status;
	char name[32];
} held_req;

static void *held_thread(void *arg)
{
	held_req *h = arg;
	h->status = request("GET", "/hold", tokens[h->token], h->name);
	return NULL;
}

static void *stop_thread(void *arg)
{
	srv_http_stop(arg);
	return NULL;
}

/* Holds one request on every daemon thread (each started once the one
 * before is inside its handler, so that no thread takes two), begins the
 * stop, then lets the handlers return. */
static void test_stop_in_flight(srv_http *h)
{
	pthread_t th[HELD], stopper;
	held_req q[HELD];
	int started = 0, finished = 0, stopped = 0;

	memset(q, 0, sizeof(q));
	for (int i = 0; i < HELD; i++) {
		q[i].token = i % TOKENS;
		if (pthread_create(&th[i], NULL, held_thread, &q[i]) != 0)
			break;
		started++;
		pthread_mutex_lock(&hold_mu);
		while (held < started)
			pthread_cond_wait(&hold_cv, &hold_mu);
		pthread_mutex_unlock(&hold_mu);
	}
	stopped = pthread_create(&stopper, NULL, stop_thread, h) == 0;
	pthread_mutex_lock(&hold_mu);
	released = 1;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		finished += q[i].status == 200 && strcmp(q[i].name, names[q[i].token]) == 0;
	}
	if (stopped)
		stopped = pthread_join(stopper, NULL) == 0;
	else
		srv_http_stop(h);
	ok(started == HELD && held == HELD && stopped,
	   "a_stop_begun_with_a_request_held_on_each_of_the_%d_daemon_threads_returns", HELD);
	ok(finished == HELD, "requests_in_flight_at_the_stop_finish_with_200 (%d/%d)", finished,
	   HELD);
}

/* ---- stopping while the connection limit is reached ------------------------ */

#define CYCLES 60

/* Start, fill the connection limit (libmicrohttpd then takes the listen
 * socket out of its event set and puts it back as connections close), one
 * request, stop: many times. With MHD_USE_EPOLL and a thread pool,
 * MHD_quiesce_daemon raced the workers' own removal of the listen socket
 * and libmicrohttpd aborted the process ("Failed to remove listen FD from
 * epoll set"): rsignd died on SIGTERM instead of stopping. */
static void test_stop_cycles(srv_ctx *ctx)
{
	srv_http_opts opts = {.listen = "127.0.0.1:0",
			      .insecure_http = 1,
			      .threads = POOL_THREADS,
			      .max_connections = 2};
	char err[256] = "", name[32];
	int cycles = 0, answered = 0;

	for (int i = 0; i < CYCLES; i++) {
		srv_http *h = srv_http_start(ctx, routes, &opts, &port, err, sizeof(err));
		if (!h)
			break;
		int idle = connect_daemon();
		answered += request("GET", "/whoami", tokens[0], name) == 200;
		int more = connect_daemon();
		srv_http_stop(h);
		if (idle >= 0)
			close(idle);
		if (more >= 0)
			close(more);
		cycles++;
	}
	ok(cycles == CYCLES, "daemon_stops_cleanly_at_its_connection_limit (%d/%d cycles) %s",
	   cycles, CYCLES, err);
	ok(answered == cycles, "each_cycle_answered_its_request (%d/%d)", answered, cycles);
}

int main(void)
{
	char err[256] = "";
	srv_ctx ctx = {.max_body = 4096, .access_token_ttl = 60, .store = &stub_store};
	srv_http_opts opts = {.listen = "127.0.0.1:0", .insecure_http = 1, .threads = POOL_THREADS};

	plan(4 + 2);
	rs_log_set_level(RS_LOG_WARN); /* not a line per request */
	for (int t = 0; t < TOKENS; t++) {
		char hash[65];
		if (srv_auth_new_secret("rsu_", tokens[t]) != 0)
			tap_bail("no random token");
		srv_auth_hash(tokens[t], hash);
		name_of_hash(hash, names[t]);
	}
	ctx.auth_cache = srv_auth_cache_new();
	srv_http *h = srv_http_start(&ctx, routes, &opts, &port, err, sizeof(err));
	if (!h || port <= 0 || !ctx.auth_cache)
		tap_bail("the daemon did not start: %s", err);
	test_concurrent_clients();
	test_stop_in_flight(h); /* stops the daemon */
	test_stop_cycles(&ctx);
	srv_cache_free(ctx.auth_cache);
	return tap_done();
}
