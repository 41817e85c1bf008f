/* libmicrohttpd glue: accepts connections over TLS, collects bounded
 * request bodies, authenticates, routes to a handler from routes.c and turns
 * its outcome into a JSON response or the API's error body. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include "rsign/buf.h"
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/auth.h"
#include "server/http/cache.h"
#include "server/http/http.h"

struct srv_http {
	struct MHD_Daemon *daemon;
	srv_ctx *ctx;
	const srv_route *routes;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int inflight;
	unsigned long started; /* requests begun, ever */
};

/* Per-request state kept by MHD between calls of the access handler. */
typedef struct {
	rs_buf body;
	int too_large;
	struct timespec start;
} req_state;

srv_err srv_fail(srv_req *r, srv_reason why, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
	va_end(ap);
	r->reason = why;
	r->err = srv_reason_class(why);
	return r->err;
}

const char *srv_query(srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

cJSON *srv_body_json(srv_req *r)
{
	cJSON *j = rs_json_parse((const char *)r->body, r->body_len, RS_JSON_MAX_DEPTH);
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		srv_fail(r, SRV_R_INVALID_JSON, "the request body is not a JSON object");
		return NULL;
	}
	return j;
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v < lo || v > hi)
		return -1;
	*out = (size_t)v;
	return 0;
}

srv_err srv_paging(srv_req *r, size_t *offset, size_t *limit)
{
	const char *o = srv_query(r, "offset"), *l = srv_query(r, "limit");
	*offset = 0;
	*limit = 20;
	if (o && parse_size(o, 0, 1000000000, offset) != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "offset must be a whole number");
	if (l && parse_size(l, 1, 100, limit) != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "limit must be between 1 and 100");
	return SRV_OK;
}

void srv_json_time(cJSON *o, const char *name, time_t t)
{
	if (!t) {
		cJSON_AddNullToObject(o, name);
		return;
	}
	char buf[RS_TIME_LEN];
	rs_time_format(t, buf);
	cJSON_AddStringToObject(o, name, buf);
}

/* Matches path against pattern segment by segment; '*' captures one
 * non-empty segment into params (pointers into buf, which holds the path
 * split at its slashes). */
int srv_route_match(const char *pattern, const char *path, char *buf, size_t buflen,
		    const char **params)
{
	if (path[0] != '/' || rs_strlcpy(buf, path + 1, buflen) >= buflen)
		return 0;
	int np = 0;
	const char *p = pattern + 1;
	char *s = buf;
	for (;;) {
		size_t plen = strcspn(p, "/");
		char *slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (*s == '\0')
			return 0;
		if (plen == 1 && *p == '*') {
			if (np >= SRV_MAX_PARAMS)
				return 0;
			params[np++] = s;
		} else if (strlen(s) != plen || memcmp(p, s, plen) != 0) {
			return 0;
		}
		p += plen;
		if (*p == '\0' || !slash)
			return *p == '\0' && !slash;
		p++;
		s = slash + 1;
	}
}

static void client_ip(struct MHD_Connection *c, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	out[0] = '\0';
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, outlen);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, outlen);
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, const char *req_id,
				 char *text)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, "X-Request-Id", req_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static char *error_body(srv_req *r)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "statusCode", srv_err_status(r->err));
	cJSON_AddStringToObject(j, "error", srv_err_word(r->err));
	cJSON_AddStringToObject(j, "reason", srv_reason_name(r->reason));
	cJSON_AddStringToObject(j, "message", r->errmsg[0] ? r->errmsg : srv_err_word(r->err));
	cJSON_AddStringToObject(j, "reqId", r->req_id);
	char *text = rs_json_print(j);
	cJSON_Delete(j);
	return text;
}

/* Finds the route, authenticates, runs the handler. Fills r->err or *out. */
static void dispatch(const srv_route *routes, srv_req *r, cJSON **out)
{
	char buf[512];
	const srv_route *rt;
	int path_seen = 0;
	for (rt = routes; rt->pattern; rt++) {
		const char *params[SRV_MAX_PARAMS] = {0};
		if (!srv_route_match(rt->pattern, r->path, buf, sizeof(buf), params))
			continue;
		path_seen = 1;
		if (strcmp(rt->method, r->method) != 0)
			continue;
		memcpy(r->params, params, sizeof(params));
		break;
	}
	if (!rt->pattern) {
		if (path_seen)
			srv_fail(r, SRV_R_NO_ENDPOINT, "%s is not supported on %s", r->method,
				 r->path);
		else
			srv_fail(r, SRV_R_NO_ENDPOINT, "no such endpoint: %s", r->path);
		return;
	}
	if (rt->auth != SRV_AUTH_NONE) {
		const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							    MHD_HTTP_HEADER_AUTHORIZATION);
		srv_reason why = srv_auth_bearer(r->ctx, h, &r->actor);
		if (why == SRV_R_TOKEN_MISSING) {
			srv_fail(r, why, "this operation needs an Authorization: Bearer token");
			return;
		}
		if (why == SRV_R_TOKEN_INVALID) {
			srv_fail(r, why, "unknown or expired token");
			return;
		}
		if (why == SRV_R_PRINCIPAL_DISABLED) {
			srv_fail(r, why, "principal %s is disabled", r->actor.name);
			return;
		}
		if (why != SRV_R_NONE) {
			srv_fail(r, why, "cannot check the token");
			return;
		}
	}
	srv_reason why = rt->gate ? rt->gate(r) : SRV_R_NONE;
	if (why != SRV_R_NONE) {
		srv_fail(r, why, "%s may not %s %s", r->actor.name ? r->actor.name : "-", r->method,
			 r->path);
		return;
	}
	/* a request that may change state invalidates the read caches before
	 * and after it runs (cache.h) */
	int mutating = strcmp(r->method, "GET") != 0 && !(rt->flags & SRV_ROUTE_KEEPS_CACHES);
	if (mutating)
		srv_cache_bump();
	srv_err e = rt->handler(r, out);
	if (mutating)
		srv_cache_bump();
	if (e != SRV_OK && r->err == SRV_OK)
		srv_fail(r, srv_reason_default(e), "%s", srv_err_word(e));
	if (e == SRV_OK && !*out)
		srv_fail(r, SRV_R_INTERNAL, "handler returned no body");
}

static enum MHD_Result respond(srv_http *h, struct MHD_Connection *c, const char *url,
			       const char *method, req_state *st)
{
	srv_req r;
	memset(&r, 0, sizeof(r));
	r.ctx = h->ctx;
	r.conn = c;
	r.method = method;
	r.status = 200;
	if (rs_random_hex(16, r.req_id) != 0)
		rs_strlcpy(r.req_id, "0", sizeof(r.req_id));
	client_ip(c, r.source_ip, sizeof(r.source_ip));
	r.body = st->body.data ? st->body.data : (const unsigned char *)"";
	r.body_len = st->body.len;

	cJSON *out = NULL;
	if (strcmp(url, "/health") == 0)
		url = "/api/v1/health";
	if (strncmp(url, "/api/v1/", 8) != 0)
		srv_fail(&r, SRV_R_NO_ENDPOINT, "no such endpoint: %s", url);
	else if (st->too_large)
		srv_fail(&r, SRV_R_BODY_TOO_LARGE, "the request body exceeds %lld bytes",
			 h->ctx->max_body);
	else {
		r.path = url + 7;
		dispatch(h->routes, &r, &out);
	}

	int status = r.err == SRV_OK ? r.status : srv_err_status(r.err);
	char *text = r.err == SRV_OK ? rs_json_print(out) : error_body(&r);
	cJSON_Delete(out);

	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - st->start.tv_sec) * 1000 +
		  (now.tv_nsec - st->start.tv_nsec) / 1000000;
	if (r.err == SRV_E_INTERNAL || r.err == SRV_E_UNAVAILABLE)
		rs_err("%s %s -> %d %s (%s) %ldms req=%s", method, url, status, srv_err_word(r.err),
		       r.errmsg, ms, r.req_id);
	else
		rs_info("%s %s -> %d %ldms req=%s actor=%s", method, url, status, ms, r.req_id,
			r.actor.name ? r.actor.name : "-");
	srv_principal_clear(&r.actor);
	if (!text)
		return MHD_NO;
	return send_json(c, status, r.req_id, text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	srv_http *h = cls;
	req_state *st = *con_cls;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		rs_buf_init(&st->body, (size_t)h->ctx->max_body);
		clock_gettime(CLOCK_MONOTONIC, &st->start);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > (unsigned long long)h->ctx->max_body)
			st->too_large = 1;
		*con_cls = st;
		pthread_mutex_lock(&h->lock);
		h->inflight++;
		h->started++;
		pthread_cond_broadcast(&h->idle);
		pthread_mutex_unlock(&h->lock);
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* Past the limit the rest of the body is read and dropped, so the
		 * client gets its 413 instead of a reset connection. */
		if (!st->too_large && rs_buf_append(&st->body, upload_data, *upload_data_size) != 0)
			st->too_large = 1;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return respond(h, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	srv_http *h = cls;
	req_state *st = *con_cls;
	if (!st)
		return;
	rs_buf_wipe(&st->body);
	free(st);
	*con_cls = NULL;
	pthread_mutex_lock(&h->lock);
	if (--h->inflight == 0)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	rs_debug("microhttpd: %s", line);
}

/* "127.0.0.1:8443", "[::1]:8443", ":8443" -> sockaddr. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, int *loopback)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon)
		return -1;
	size_t hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 2 || host[n - 1] != ']')
			return -1;
		host[n - 1] = '\0';
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -1;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
		*len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		a4->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return -1;
	*loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	*len = sizeof(*a4);
	return 0;
}

srv_http *srv_http_start(srv_ctx *ctx, const srv_route *routes, const srv_http_opts *opts,
			 int *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int loopback = 0;
	if (parse_listen(opts->listen, &ss, &sslen, &loopback) != 0) {
		snprintf(err, errlen, "listen: cannot parse \"%s\" (want host:port)", opts->listen);
		return NULL;
	}
	int tls = !opts->insecure_http;
	if (!tls && !loopback) {
		snprintf(err, errlen, "insecure_http is only allowed on a loopback address");
		return NULL;
	}
	if (tls && (!opts->tls_cert_pem || !opts->tls_key_pem)) {
		snprintf(err, errlen, "TLS needs tls_cert and tls_key (rsignd init creates them)");
		return NULL;
	}
	srv_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->ctx = ctx;
	h->routes = routes;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->idle, NULL);

	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			     MHD_USE_EPOLL_INTERNAL_THREAD;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem mhd_opts[] = {
		{MHD_OPTION_SOCK_ADDR, 0, &ss},
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)opts->threads, NULL},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
		{MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, 1024, NULL},
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
		{tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)opts->tls_cert_pem},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)opts->tls_key_pem},
		{MHD_OPTION_END, 0, NULL},
	};
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY,
				     mhd_opts, MHD_OPTION_END);
	if (!h->daemon) {
		snprintf(err, errlen, "cannot listen on %s (address in use, or bad TLS files)",
			 opts->listen);
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->idle);
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (port)
		*port = di ? di->port : 0;
	return h;
}

void srv_http_stop(srv_http *h)
{
	if (!h)
		return;
	MHD_quiesce_daemon(h->daemon);
	struct timespec deadline, settle;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	pthread_mutex_lock(&h->lock);
	/* Finish what is in flight; then give requests whose bytes were
	 * already on their way over accepted connections a short moment to
	 * begin, and finish those too. */
	for (;;) {
		while (h->inflight > 0)
			if (pthread_cond_timedwait(&h->idle, &h->lock, &deadline) != 0)
				goto late;
		unsigned long seen = h->started;
		clock_gettime(CLOCK_REALTIME, &settle);
		settle.tv_nsec += 500 * 1000000L;
		if (settle.tv_nsec >= 1000000000L) {
			settle.tv_sec++;
			settle.tv_nsec -= 1000000000L;
		}
		while (h->started == seen)
			if (pthread_cond_timedwait(&h->idle, &h->lock, &settle) != 0)
				break;
		if (h->started == seen)
			break;
	}
	goto done;
late:
	rs_warn("shutdown: %d requests still running after 30 s", h->inflight);
done:
	pthread_mutex_unlock(&h->lock);
	MHD_stop_daemon(h->daemon);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->idle);
	free(h);
}
