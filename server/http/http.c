/* libmicrohttpd glue: accepts connections over TLS 1.2/1.3 within the
 * connection limits and head deadline (conns.c), refuses request heads
 * that would route or frame ambiguously, collects bounded request bodies,
 * authenticates, routes to a handler from routes.c and turns its outcome
 * into a JSON response or the API's error body. */
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
#include "rsign/metrics.h"
#include "rsign/util.h"
#include "server/http/auth.h"
#include "server/http/cache.h"
#include "server/http/conns.h"
#include "server/http/http.h"
#include "server/http/http_int.h"
#include "server/http/tls.h"
#include "server/http/ratelimit.h"

struct srv_http {
	struct MHD_Daemon *daemon;
	srv_ctx *ctx;
	const srv_route *routes;
	srv_conns *conns;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int inflight;
	unsigned long started; /* requests begun, ever */
	char start_err[256];   /* libmicrohttpd's last word while starting */
	int starting;
	int tls_claimed; /* serves the reloadable pair of tls.c */
};

/* Per-request state kept by MHD between calls of the access handler; made
 * when the request line is read (on_uri), or by the first call. */
typedef struct {
	rs_buf body;
	srv_uri_verdict uri; /* the raw request target, checked before unescaping */
	int started;	     /* the access handler has seen the whole head */
	int too_large;
	srv_reason refused; /* decided from the head: answered before any body */
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

const char *srv_header(const srv_req *r, const char *name)
{
	return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
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

srv_err srv_paging(srv_req *r, size_t *offset, size_t *limit)
{
	const char *o = srv_query(r, "offset"), *l = srv_query(r, "limit");
	*offset = 0;
	*limit = 20;
	if (o && srv_parse_count(o, 0, 1000000000, offset) != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "offset must be a whole number");
	if (l && srv_parse_count(l, 1, 100, limit) != 0)
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

void srv_client_ip(struct MHD_Connection *c, char *out, size_t outlen)
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

static struct MHD_Response *text_response(char *text, const char *ctype, const char *req_id,
					  long retry_after)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	/* every response rsignd makes carries X-Request-Id: mhd_errors.c
	 * tells libmicrohttpd's own responses by its absence */
	MHD_add_response_header(resp, "X-Request-Id", req_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (retry_after > 0) {
		char secs[24];
		snprintf(secs, sizeof(secs), "%ld", retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	return resp;
}

struct MHD_Response *srv_json_response(char *text, const char *req_id, long retry_after)
{
	return text_response(text, "application/json", req_id, retry_after);
}

/* A handler's file (r->file_fd): streamed by libmicrohttpd from the
 * descriptor, which it closes; on failure the descriptor is closed here. */
static struct MHD_Response *file_response(const srv_req *r)
{
	struct MHD_Response *resp =
		MHD_create_response_from_fd64((uint64_t)r->file_size, r->file_fd);
	if (!resp) {
		close(r->file_fd);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->content_type ? r->content_type : "application/octet-stream");
	MHD_add_response_header(resp, "X-Request-Id", r->req_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-SHA256", r->file_sha256);
	return resp;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, const char *req_id,
				 long retry_after, const char *ctype, char *text)
{
	struct MHD_Response *resp = text_response(text, ctype, req_id, retry_after);
	if (!resp)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(c, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

char *srv_error_body(srv_reason why, const char *message, const char *req_id)
{
	/* the message may echo what the request held (a path, a name), in
	 * any bytes, or be cut inside a character: JSON text is UTF-8 */
	char clean[sizeof(((srv_req *)0)->errmsg) * 3];
	srv_err e = srv_reason_class(why);
	srv_utf8_clean(message && *message ? message : srv_err_word(e), clean, sizeof(clean));
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "statusCode", srv_err_status(e));
	cJSON_AddStringToObject(j, "error", srv_err_word(e));
	cJSON_AddStringToObject(j, "reason", srv_reason_name(why));
	cJSON_AddStringToObject(j, "message", clean);
	cJSON_AddStringToObject(j, "reqId", req_id);
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
		r->route = rt->pattern;
		if (strncmp(rt->pattern, "/pki/signers/*", 14) == 0 && params[0])
			rs_strlcpy(r->signer, params[0], sizeof(r->signer));
		if (r->log) {
			r->log->route = r->route;
			r->log->signer = r->signer[0] ? r->signer : NULL;
		}
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
		/* an address that sent too many bad tokens is not heard until
		 * its block ends (ratelimit.h) */
		if (srv_limit_bearer(r) != SRV_OK)
			return;
		srv_reason why = srv_auth_bearer(r->ctx, h, &r->actor);
		if (why == SRV_R_TOKEN_INVALID)
			srv_limit_bearer_failed(r);
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
		if (r->log)
			r->log->principal = r->actor.name;
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
	if (e == SRV_OK && !*out && !r->text && r->file_fd < 0)
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
	r.file_fd = -1;
	if (rs_random_hex(16, r.req_id) != 0)
		rs_strlcpy(r.req_id, "0", sizeof(r.req_id));
	srv_client_ip(c, r.source_ip, sizeof(r.source_ip));
	/* every line logged for this request carries its id (JSON logs) */
	rs_log_request lr = {.req_id = r.req_id, .method = method, .ms = -1};
	rs_log_set_request(&lr);
	r.log = &lr;
	r.body = st->body.data ? st->body.data : (const unsigned char *)"";
	r.body_len = st->body.len;

	cJSON *out = NULL;
	if (strcmp(url, "/health") == 0)
		url = "/api/v1/health";
	else if (strcmp(url, "/ready") == 0)
		url = "/api/v1/ready";
	else if (strcmp(url, "/metrics") == 0)
		url = "/api/v1/metrics";
	if (st->refused == SRV_R_INVALID_PATH)
		srv_fail(&r, st->refused,
			 "the request path holds an escaped NUL, slash or control character, or a "
			 "malformed escape");
	else if (st->refused == SRV_R_INVALID_QUERY)
		srv_fail(&r, st->refused,
			 "a query parameter holds an escaped NUL or a control "
			 "character");
	else if (st->refused != SRV_R_NONE)
		srv_fail(&r, st->refused,
			 "the request's body length is ambiguous: Content-Length twice, or with "
			 "Transfer-Encoding, or a Transfer-Encoding other than chunked");
	else if (strncmp(url, "/api/v1/", 8) != 0)
		srv_fail(&r, SRV_R_NO_ENDPOINT, "no such endpoint: %s", url);
	else if (st->too_large)
		srv_fail(&r, SRV_R_BODY_TOO_LARGE, "the request body exceeds %lld bytes",
			 h->ctx->max_body);
	else {
		r.path = url + 7;
		dispatch(h->routes, &r, &out);
	}

	int status = r.err == SRV_OK ? r.status : srv_err_status(r.err);
	const char *ctype = "application/json";
	char *text = NULL;
	struct MHD_Response *file = NULL;
	if (r.err == SRV_OK && r.file_fd >= 0) {
		file = file_response(&r);
		r.file_fd = -1; /* file_response closed it, or gave it to the response */
		if (!file) {
			srv_fail(&r, SRV_R_INTERNAL, "cannot stream the file");
			status = srv_err_status(r.err);
		}
	} else if (r.file_fd >= 0) {
		close(r.file_fd);
	}
	if (file) {
		free(r.text);
	} else if (r.err == SRV_OK && r.text) {
		text = r.text;
		ctype = r.content_type ? r.content_type : "text/plain";
	} else {
		text = r.err == SRV_OK ? rs_json_print(out)
				       : srv_error_body(r.reason, r.errmsg, r.req_id);
		free(r.text);
	}
	cJSON_Delete(out);
	/* the route's pattern, never the raw path: the label set stays bounded */
	char code[8];
	snprintf(code, sizeof(code), "%d", status);
	const char *labels[] = {"route", r.route ? r.route : "unmatched", "code", code, NULL};
	rs_metric_add(&rs_m_http_requests, 1, labels);

	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - st->start.tv_sec) * 1000 +
		  (now.tv_nsec - st->start.tv_nsec) / 1000000;
	lr.route = r.route ? r.route : url;
	lr.principal = r.actor.name;
	lr.signer = r.signer[0] ? r.signer : NULL;
	lr.status = status;
	lr.outcome = r.err == SRV_OK ? "ok" : srv_reason_name(r.reason);
	lr.ms = ms;
	if (r.err == SRV_E_INTERNAL || r.err == SRV_E_UNAVAILABLE)
		rs_err("%s %s -> %d %s (%s) %ldms req=%s", method, url, status, srv_err_word(r.err),
		       r.errmsg, ms, r.req_id);
	else
		rs_info("%s %s -> %d %ldms req=%s actor=%s", method, url, status, ms, r.req_id,
			r.actor.name ? r.actor.name : "-");
	rs_log_set_request(NULL);
	srv_principal_clear(&r.actor);
	if (file) {
		enum MHD_Result ret = MHD_queue_response(c, (unsigned int)status, file);
		MHD_destroy_response(file);
		return ret;
	}
	if (!text)
		return MHD_NO;
	return send_json(c, status, r.req_id, r.err == SRV_E_RATE_LIMIT ? r.retry_after : 0, ctype,
			 text);
}

/* The request line is read: the raw target, before libmicrohttpd unescapes
 * it (a %00 would cut the path short there), is checked now. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)c;
	req_state *st = calloc(1, sizeof(*st));
	if (st)
		st->uri = srv_uri_check(uri);
	return st;
}

static void *socket_context(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static enum MHD_Result add_framing(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	(void)kind;
	srv_framing_add(cls, key, value);
	return MHD_YES;
}

/* The whole head is in, no body read yet: what the head alone decides. */
static void begin(srv_http *h, struct MHD_Connection *c, req_state *st)
{
	srv_framing f = {0};
	rs_buf_init(&st->body, (size_t)h->ctx->max_body);
	clock_gettime(CLOCK_MONOTONIC, &st->start);
	st->started = 1;
	srv_conns_head_done(h->conns, socket_context(c));
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_framing, &f);
	if (st->uri == SRV_URI_BAD_PATH)
		st->refused = SRV_R_INVALID_PATH;
	else if (st->uri == SRV_URI_BAD_QUERY)
		st->refused = SRV_R_INVALID_QUERY;
	else if (srv_framing_ambiguous(&f))
		st->refused = SRV_R_AMBIGUOUS_LENGTH;
	const char *cl =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > (unsigned long long)h->ctx->max_body)
		st->too_large = 1;
	pthread_mutex_lock(&h->lock);
	h->inflight++;
	h->started++;
	pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	srv_http *h = cls;
	req_state *st = *con_cls;
	(void)version;
	if (!st || !st->started) {
		if (!st && !(st = calloc(1, sizeof(*st))))
			return MHD_NO;
		*con_cls = st;
		begin(h, c, st);
		/* a refused head is answered now: its body, however framed, is
		 * never read, and libmicrohttpd closes the connection after */
		if (st->refused != SRV_R_NONE)
			return respond(h, c, url, method, st);
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
	srv_conns_busy(h->conns, 1); /* this thread's other connections wait */
	enum MHD_Result res = respond(h, c, url, method, st);
	srv_conns_busy(h->conns, 0);
	return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	srv_http *h = cls;
	req_state *st = *con_cls;
	(void)toe;
	srv_conns_response_done(h->conns, socket_context(c));
	if (!st)
		return;
	int started = st->started;
	rs_buf_wipe(&st->body);
	free(st);
	*con_cls = NULL;
	if (!started)
		return;
	pthread_mutex_lock(&h->lock);
	if (--h->inflight == 0)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	srv_http *h = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci)
			srv_conns_started(h->conns, ci->connect_fd, socket_ctx);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		srv_conns_closed(h->conns, socket_ctx);
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	srv_http *h = cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	rs_debug("microhttpd: %s", line);
	/* while the daemon starts, its complaint says why it did not */
	pthread_mutex_lock(&h->lock);
	if (h->starting)
		rs_strlcpy(h->start_err, line, sizeof(h->start_err));
	pthread_mutex_unlock(&h->lock);
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
		snprintf(err, errlen,
			 "plain HTTP (insecure_http, metrics_listen) is only allowed on a loopback "
			 "address, not %s",
			 opts->listen);
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
	long long header_timeout =
		opts->request_header_timeout > 0 ? opts->request_header_timeout : 10;
	h->conns = srv_conns_new((double)header_timeout);
	if (!h->conns) {
		snprintf(err, errlen, "cannot start the connection reaper");
		goto fail;
	}
	h->starting = 1;

	/* poll(), not epoll: with epoll and a thread pool, MHD_quiesce_daemon
	 * (srv_http_stop) races the workers' own removal of the listen socket
	 * from their epoll sets, and libmicrohttpd 0.9.75 aborts the process
	 * ("Failed to remove listen FD from epoll set"; test_http_pool's
	 * stop cycles). Each worker polls only its own connections. */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			     MHD_USE_POLL_INTERNAL_THREAD;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem mhd_opts[16] = {
		{MHD_OPTION_SOCK_ADDR, 0, &ss},
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)opts->threads, NULL},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
		{MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
		{MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, h},
		{MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
		{MHD_OPTION_CONNECTION_LIMIT,
		 (intptr_t)(opts->max_connections > 0 ? opts->max_connections : 1024), NULL},
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, h},
	};
	size_t n = 8;
	if (opts->max_connections_per_ip > 0)
		mhd_opts[n++] =
			(struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
						(intptr_t)opts->max_connections_per_ip, NULL};
	if (tls) {
		char terr[256];
		srv_tls_callback cb =
			srv_tls_claim(opts->tls_cert_pem, opts->tls_key_pem, terr, sizeof(terr));
		if (!cb && terr[0]) {
			snprintf(err, errlen, "cannot serve HTTPS: %s", terr);
			goto fail;
		}
		h->tls_claimed = cb != NULL;
		if (cb) {
			mhd_opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
								(void *)cb};
		} else { /* another daemon of this process holds the callback */
			mhd_opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
								(void *)opts->tls_cert_pem};
			mhd_opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
								(void *)opts->tls_key_pem};
		}
		mhd_opts[n++] = (struct MHD_OptionItem){
			MHD_OPTION_HTTPS_PRIORITIES, 0,
			(void *)(opts->tls_priorities ? opts->tls_priorities : SRV_TLS_PRIORITIES)};
	}
	mhd_opts[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY,
				     mhd_opts, MHD_OPTION_END);
	pthread_mutex_lock(&h->lock);
	h->starting = 0;
	pthread_mutex_unlock(&h->lock);
	if (!h->daemon) {
		snprintf(err, errlen, "cannot listen on %s: %s", opts->listen,
			 h->start_err[0] ? h->start_err
					 : "address in use, or bad TLS files or tls_priorities");
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (port)
		*port = di ? di->port : 0;
	return h;
fail:
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	if (h->tls_claimed)
		srv_tls_release();
	srv_conns_free(h->conns);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->idle);
	free(h);
	return NULL;
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
	if (h->tls_claimed)
		srv_tls_release();
	srv_conns_free(h->conns);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->idle);
	free(h);
}
