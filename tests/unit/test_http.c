/* The HTTP layer (server/http/) on a real libmicrohttpd daemon, over plain
 * HTTP on loopback, with a storage stub whose outcome each check sets: how
 * bearer authentication, routing and failures become statuses and the
 * API's JSON error bodies; request targets and framing that would route or
 * read a request otherwise than it was meant (%00, %2F, two lengths); the
 * errors libmicrohttpd makes itself, which must carry the API's JSON body
 * too (mhd_errors.c); a storm of bad tokens (429, Retry-After); the
 * per-address connection cap (127.0.0.1 against 127.0.0.2); and the
 * deadline of a request head, which trickling does not move. Requests are
 * written byte for byte on a socket, so nothing between the test and the
 * server interprets them. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "rsign/json.h"
#include "server/http/auth.h"
#include "server/http/cache.h"
#include "server/http/http.h"
#include "server/http/ratelimit.h"
#include "tap.h"

/* ---- a store whose token lookup answers what the check set ------------- */

static srv_st_rc lookup_rc = SRV_ST_NOT_FOUND;

static srv_st_rc stub_token_lookup(srv_store *st, const char *hash_hex, time_t now,
				   srv_principal *out, srv_token *tok)
{
	if (tok) {
		memset(tok, 0, sizeof(*tok));
		tok->last_used_at = now; /* used just now: nothing to record */
	}
	(void)st;
	(void)hash_hex;
	(void)now;
	if (lookup_rc != SRV_ST_OK)
		return lookup_rc;
	memset(out, 0, sizeof(*out));
	memcpy(out->id, "00000000-0000-4000-8000-000000000001", RS_UUID_LEN);
	memcpy(out->type, "user", 5);
	out->name = strdup("alice");
	return out->name ? SRV_ST_OK : SRV_ST_FAILED;
}

static const srv_store_ops stub_ops = {.token_lookup = stub_token_lookup};
static srv_store stub_store = {.ops = &stub_ops};

static srv_err handle_hello(srv_req *r, cJSON **out)
{
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "hello", r->actor.name ? r->actor.name : "");
	return SRV_OK;
}

/* What the route captured and the query said, as the handler saw them. */
static srv_err handle_thing(srv_req *r, cJSON **out)
{
	const char *q = srv_query(r, "q");
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "id", r->params[0]);
	cJSON_AddStringToObject(*out, "q", q ? q : "");
	return SRV_OK;
}

static srv_err handle_parts(srv_req *r, cJSON **out)
{
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "partsOf", r->params[0]);
	return SRV_OK;
}

/* A message longer than the error message buffer, of 2-byte characters:
 * cut at 255 bytes, the last one is cut in half. */
static srv_err handle_long_error(srv_req *r, cJSON **out)
{
	char msg[601];
	(void)out;
	for (int i = 0; i < 300; i++)
		memcpy(msg + 2 * i, "\xc3\xa9", 2);
	msg[600] = '\0';
	return srv_fail(r, SRV_R_NOT_FOUND, "%s", msg);
}

static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cv = PTHREAD_COND_INITIALIZER;
static int slow_begun;

/* A handler that runs longer than a head deadline of 1 s (and says when it
 * began). */
static srv_err handle_slow(srv_req *r, cJSON **out)
{
	(void)r;
	pthread_mutex_lock(&slow_mu);
	slow_begun++;
	pthread_cond_broadcast(&slow_cv);
	pthread_mutex_unlock(&slow_mu);
	struct timespec ts = {1, 500 * 1000000L};
	nanosleep(&ts, NULL);
	*out = cJSON_CreateObject();
	cJSON_AddBoolToObject(*out, "slow", 1);
	return SRV_OK;
}

static const srv_route routes[] = {
	{"GET", "/hello", handle_hello, SRV_AUTH_ANY, 0, NULL},
	{"POST", "/hello", handle_hello, SRV_AUTH_NONE, 0, NULL},
	{"GET", "/things/*", handle_thing, SRV_AUTH_NONE, 0, NULL},
	{"GET", "/things/*/parts", handle_parts, SRV_AUTH_NONE, 0, NULL},
	{"GET", "/long", handle_long_error, SRV_AUTH_NONE, 0, NULL},
	{"GET", "/slow", handle_slow, SRV_AUTH_NONE, 0, NULL},
	{NULL, NULL, NULL, 0, 0, NULL},
};

/* ---- sockets ----------------------------------------------------------- */

/* A connection to port from the loopback address src ("127.0.0.2"). */
static int dial(const char *src, int port)
{
	struct sockaddr_in me = {.sin_family = AF_INET}, sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, src, &me.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		tap_bail("cannot connect from %s to the daemon on port %d: %s", src, port,
			 strerror(errno));
	return fd;
}

static int send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t k = send(fd, s, len, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		s += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Reads until the peer closes; the bytes read (NUL-terminated, static). */
static const char *read_to_end(int fd, size_t *len)
{
	static char buf[65536];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* 1 when the peer closed fd (EOF or reset) within ms milliseconds. */
static int closed_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	if (poll(&p, 1, ms) <= 0)
		return 0;
	ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT);
	return k == 0 || (k < 0 && errno == ECONNRESET);
}

/* One HTTP/1.1 request on a connection kept open: the status of its
 * answer, read to the end of its body (Content-Length), or -1. */
static int ask_kept(int fd, const char *path)
{
	char req[256], buf[8192];
	size_t n = 0;
	int status = -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	if (send_all(fd, req, strlen(req)) != 0)
		return -1;
	for (;;) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			return -1;
		n += (size_t)k;
		buf[n] = '\0';
		const char *end = strstr(buf, "\r\n\r\n"),
			   *cl = strcasestr(buf, "Content-Length: ");
		if (end && cl && n >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10))
			break;
		if (n == sizeof(buf) - 1)
			return -1;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	return status;
}

/* ---- one request, one answer ------------------------------------------- */

typedef struct {
	int status;
	cJSON *body;	  /* NULL when the body is not JSON (json_parse: valid UTF-8) */
	long retry_after; /* the Retry-After header, -1 when absent */
	int heads;	  /* status lines in what came */
} answer;

static answer parse_answer(const char *buf, size_t n)
{
	answer a = {-1, NULL, -1, 0};
	if (sscanf(buf, "HTTP/1.%*d %d", &a.status) != 1)
		a.status = -1;
	/* the body follows the last blank line (a compact JSON body has none);
	 * a status line is "HTTP/1.x NNN " */
	const char *body = NULL;
	for (const char *p = strstr(buf, "\r\n\r\n"); p; p = strstr(p + 4, "\r\n\r\n"))
		body = p;
	for (const char *p = strstr(buf, "HTTP/1."); p; p = strstr(p + 1, "HTTP/1."))
		a.heads += strnlen(p, 13) == 13 && p[8] == ' ' && p[9] >= '1' && p[9] <= '5' &&
			   p[12] == ' ';
	if (body)
		a.body = rs_json_parse(body + 4, n - (size_t)(body + 4 - buf), RS_JSON_MAX_DEPTH);
	const char *ra = strcasestr(buf, "\r\nRetry-After: ");
	if (ra && (!body || ra < body))
		a.retry_after = strtol(ra + 15, NULL, 10);
	return a;
}

static int port, port_capped, port_deadline;

/* request sent from src to p; the answer read to the connection's end */
static answer ask_at(const char *src, int p, const char *request, size_t len)
{
	int fd = dial(src, p);
	size_t n = 0;
	if (send_all(fd, request, len) != 0)
		tap_bail("cannot send the request");
	const char *buf = read_to_end(fd, &n);
	close(fd);
	return parse_answer(buf, n);
}

static answer ask(const char *request)
{
	return ask_at("127.0.0.1", port, request, strlen(request));
}

/* The answer is status + the API's error body with this error and reason. */
static int is_error(answer a, int status, const char *error, const char *reason)
{
	const char *e = NULL, *why = NULL, *msg = NULL, *rid = NULL;
	long long code = 0;
	if (a.status != status || !a.body ||
	    rs_json_int(a.body, "statusCode", 1, 100, 599, &code) != RS_JSON_OK ||
	    rs_json_str(a.body, "error", 1, 64, &e) != RS_JSON_OK ||
	    rs_json_str(a.body, "reason", 1, 64, &why) != RS_JSON_OK ||
	    rs_json_str(a.body, "message", 1, 1024, &msg) != RS_JSON_OK ||
	    rs_json_str(a.body, "reqId", 1, 64, &rid) != RS_JSON_OK)
		return 0;
	return code == status && strcmp(e, error) == 0 && strcmp(why, reason) == 0 && *msg && *rid;
}

static int has_str(answer a, const char *name, const char *want)
{
	const char *v = NULL;
	return a.body && rs_json_str(a.body, name, 0, 4096, &v) == RS_JSON_OK && v &&
	       strcmp(v, want) == 0;
}

#define BEARER "Authorization: Bearer rsu_0123456789abcdef\r\n"

static srv_http *start(srv_ctx *ctx, long long threads, long long per_ip, long long head_timeout,
		       int *p)
{
	char err[256] = "";
	srv_http_opts opts = {.listen = "127.0.0.1:0",
			      .insecure_http = 1,
			      .threads = threads,
			      .max_connections_per_ip = per_ip,
			      .request_header_timeout = head_timeout};
	srv_http *h = srv_http_start(ctx, routes, &opts, p, err, sizeof(err));
	if (!h || *p <= 0)
		tap_bail("the daemon did not start: %s", err);
	return h;
}

static void basics(void)
{
	answer a;
	lookup_rc = SRV_ST_OK;
	a = ask("GET /api/v1/hello HTTP/1.0\r\n" BEARER "\r\n");
	const char *who = NULL;
	ok(a.status == 200 && a.body && rs_json_str(a.body, "hello", 1, 64, &who) == RS_JSON_OK &&
		   strcmp(who, "alice") == 0,
	   "a_known_token_reaches_the_handler_as_its_principal");
	cJSON_Delete(a.body);

	/* a database that cannot be reached is the server's fault: 503, never
	 * a 401 that tells a client its good token is bad */
	srv_cache_bump();
	lookup_rc = SRV_ST_UNAVAILABLE;
	a = ask("GET /api/v1/hello HTTP/1.0\r\n" BEARER "\r\n");
	ok(is_error(a, 503, "Unavailable", "databaseUnavailable"),
	   "database_down_while_checking_a_token_is_503_not_401 (got %d)", a.status);
	cJSON_Delete(a.body);

	lookup_rc = SRV_ST_NOT_FOUND;
	a = ask("GET /api/v1/hello HTTP/1.0\r\n" BEARER "\r\n");
	ok(is_error(a, 401, "Unauthorized", "tokenInvalid"), "unknown_token_is_401_token_invalid");
	cJSON_Delete(a.body);

	a = ask("GET /api/v1/hello HTTP/1.0\r\n\r\n");
	ok(is_error(a, 401, "Unauthorized", "tokenMissing"), "no_token_is_401_token_missing");
	cJSON_Delete(a.body);

	a = ask("GET /api/v1/nothing/here HTTP/1.0\r\n" BEARER "\r\n");
	ok(is_error(a, 404, "NotFound", "noEndpoint"), "unknown_path_is_404_no_endpoint");
	cJSON_Delete(a.body);

	a = ask("DELETE /api/v1/hello HTTP/1.0\r\n" BEARER "\r\n");
	ok(is_error(a, 404, "NotFound", "noEndpoint"), "unserved_method_is_404_no_endpoint");
	cJSON_Delete(a.body);
}

/* Request targets that unescape into another route, or into a value cut
 * short, are refused before routing; plain escapes still route. */
static void targets(void)
{
	static const struct {
		const char *target, *reason, *name;
	} bad[] = {
		{"/api/v1/things/abc%00/parts", "invalidPath",
		 "escaped_nul_in_a_path_is_400_not_the_route_of_its_prefix"},
		{"/api/v1/things/abc%2Fparts", "invalidPath",
		 "escaped_slash_in_a_segment_is_400_not_two_segments"},
		{"/api/v1/things/abc%2fparts", "invalidPath", "escaped_slash_in_lower_case_is_400"},
		{"/api/v1/things/abc%0Aparts", "invalidPath",
		 "escaped_newline_in_a_path_is_400_not_a_log_line"},
		{"/api/v1/things/abc%zz", "invalidPath", "malformed_escape_in_a_path_is_400"},
		{"/api/v1/things/abc?q=a%00b", "invalidQuery",
		 "escaped_nul_in_a_query_value_is_400_not_a_value_cut_short"},
	};
	char req[256];
	for (size_t i = 0; i < TAP_COUNT(bad); i++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", bad[i].target);
		answer a = ask(req);
		ok(is_error(a, 400, "BadRequest", bad[i].reason), "%s (got %d)", bad[i].name,
		   a.status);
		cJSON_Delete(a.body);
	}
	answer a = ask("GET /api/v1/things/%41b%20c?q=x%26y HTTP/1.0\r\n\r\n");
	ok(a.status == 200 && has_str(a, "id", "Ab c") && has_str(a, "q", "x&y"),
	   "plain_escapes_in_path_and_query_still_route_and_decode");
	cJSON_Delete(a.body);
	a = ask("GET /api/v1/things/abc/parts HTTP/1.0\r\n\r\n");
	ok(a.status == 200 && has_str(a, "partsOf", "abc"), "the_route_a_nul_would_reach_is_there");
	cJSON_Delete(a.body);
}

/* Error bodies are JSON text, so UTF-8, whatever bytes the message echoes
 * (is_error parses with rs_json_parse, which refuses invalid UTF-8). */
static void utf8_bodies(void)
{
	answer a = ask("GET /api/v1/caf%E9/%FF%FE HTTP/1.0\r\n\r\n");
	const char *msg = NULL;
	ok(is_error(a, 404, "NotFound", "noEndpoint") &&
		   rs_json_str(a.body, "message", 1, 1024, &msg) == RS_JSON_OK &&
		   strstr(msg, "caf\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd"),
	   "an_error_echoing_bytes_that_are_not_utf8_has_a_utf8_body_with_u_fffd (got %d)",
	   a.status);
	cJSON_Delete(a.body);
	a = ask("GET /api/v1/long HTTP/1.0\r\n\r\n");
	ok(is_error(a, 404, "NotFound", "notFound"),
	   "an_error_message_cut_inside_a_character_still_has_a_utf8_body (got %d)", a.status);
	cJSON_Delete(a.body);
}

/* libmicrohttpd's own refusals, answered with the API's body through
 * mhd_errors.c (they were HTML, which is_error cannot parse). */
static void mhd_refusals(void)
{
	static char big[40000];
	snprintf(big, sizeof(big), "GET /api/v1/hello HTTP/1.1\r\nHost: x\r\nX-Big: %0*d\r\n\r\n",
		 36000, 0);
	/* doubled: libmicrohttpd 0.9.75 sends the head of its answer to a
	 * Content-Length it cannot read twice (MHD_connection_handle_idle
	 * overwrites the state transmit_error_response set), whatever the
	 * body; the body is the API's all the same */
	static const struct {
		const char *request;
		int status;
		const char *error, *reason, *name;
		int doubled;
	} cases[] = {
		{"GET /api/v1/hello HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTPVersionNotSupported",
		 "httpVersion", "http_2_0_is_505_with_the_api_body", 0},
		{big, 431, "RequestHeaderFieldsTooLarge", "headersTooLarge",
		 "a_head_over_libmicrohttpds_memory_is_431_with_the_api_body", 0},
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
		 "chunked\r\n\r\nZZ\r\n"
		 "x\r\n0\r\n\r\n",
		 400, "BadRequest", "malformedRequest", "a_bad_chunk_is_400_with_the_api_body", 0},
		{"GET /api/v1/hello HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400,
		 "BadRequest", "malformedRequest",
		 "a_header_line_without_colon_is_400_with_the_api_body", 0},
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400,
		 "BadRequest", "malformedRequest",
		 "a_content_length_that_is_no_number_is_400_with_the_api_body", 1},
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: "
		 "99999999999999999999999\r\n\r\n",
		 413, "PayloadTooLarge", "bodyTooLarge",
		 "a_content_length_past_64_bits_is_413_with_the_api_body", 1},
	};
	for (size_t i = 0; i < TAP_COUNT(cases); i++) {
		answer a = ask_at("127.0.0.1", port, cases[i].request, strlen(cases[i].request));
		ok(is_error(a, cases[i].status, cases[i].error, cases[i].reason) &&
			   (a.heads == 1 || (cases[i].doubled && a.heads == 2)),
		   "%s (got %d, %d heads)", cases[i].name, a.status, a.heads);
		cJSON_Delete(a.body);
	}
}

/* A body framed two ways is refused from its head, before any of it is
 * read, and the connection ends there: the request written after it (which
 * a server reading the body the other way would take for the next one) is
 * never answered. */
static void framing(void)
{
#define NEXT "GET /api/v1/things/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	static const struct {
		const char *request, *name;
	} cases[] = {
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: "
		 "54\r\n\r\n{}" NEXT,
		 "two_conflicting_content_lengths_are_400_ambiguous_length_and_nothing_after"},
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: "
		 "2\r\n\r\n{}" NEXT,
		 "two_equal_content_lengths_are_400_ambiguous_length_and_nothing_after"},
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: "
		 "4\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n0\r\n\r\n" NEXT,
		 "content_length_with_chunked_is_400_ambiguous_length_and_nothing_after"},
		{"POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
		 "chunked\r\n\r\n0\r\n\r\n" NEXT,
		 "a_transfer_encoding_other_than_chunked_is_400_ambiguous_length_and_nothing_"
		 "after"},
	};
	for (size_t i = 0; i < TAP_COUNT(cases); i++) {
		answer a = ask_at("127.0.0.1", port, cases[i].request, strlen(cases[i].request));
		ok(is_error(a, 400, "BadRequest", "ambiguousLength") && a.heads == 1,
		   "%s (got %d, %d answers)", cases[i].name, a.status, a.heads);
		cJSON_Delete(a.body);
	}
	const char *two = "POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
			  "GET /api/v1/things/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	answer a = ask_at("127.0.0.1", port, two, strlen(two));
	ok(a.heads == 2 && a.status == 200 && has_str(a, "id", "y"),
	   "one_content_length_is_served_and_so_is_the_next_request (got %d, %d answers)", a.status,
	   a.heads);
	cJSON_Delete(a.body);
	a = ask("POST /api/v1/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: "
		"chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
	ok(a.status == 200, "chunked_alone_is_served (got %d)", a.status);
	cJSON_Delete(a.body);
#undef NEXT
}

/* ---- bad tokens from one address ---------------------------------------- */

static void token_storm(void)
{
	srv_ctx ctx = {.max_body = 4096, .store = &stub_store, .max_auth_failures_per_ip = 3};
	int p = 0, unauthorized = 1;
	ctx.auth_limit = srv_ratelimit_new(64);
	srv_http *h = start(&ctx, 2, 0, 10, &p);
	const char *req = "GET /api/v1/hello HTTP/1.0\r\n" BEARER "\r\n";
	size_t len = strlen(req);
	answer a;

	lookup_rc = SRV_ST_NOT_FOUND;
	for (int i = 0; i < 3; i++) {
		a = ask_at("127.0.0.1", p, req, len);
		if (!is_error(a, 401, "Unauthorized", "tokenInvalid"))
			unauthorized = 0;
		cJSON_Delete(a.body);
	}
	ok(unauthorized, "the_first_3_bad_tokens_from_an_address_are_401");
	a = ask_at("127.0.0.1", p, req, len);
	ok(is_error(a, 429, "RateLimitExceeded", "rateLimited") && a.retry_after >= 1 &&
		   a.retry_after <= 60,
	   "the_4th_bad_token_is_429_rate_limited_with_retry_after (got %d, Retry-After %ld)",
	   a.status, a.retry_after);
	cJSON_Delete(a.body);
	lookup_rc = SRV_ST_OK;
	a = ask_at("127.0.0.1", p, req, len);
	ok(is_error(a, 429, "RateLimitExceeded", "rateLimited"),
	   "a_blocked_address_is_not_heard_even_with_a_good_token (got %d)", a.status);
	cJSON_Delete(a.body);
	lookup_rc = SRV_ST_NOT_FOUND;
	a = ask_at("127.0.0.2", p, req, len);
	ok(is_error(a, 401, "Unauthorized", "tokenInvalid"),
	   "another_address_is_not_limited (got %d)", a.status);
	cJSON_Delete(a.body);
	srv_http_stop(h);
	srv_ratelimit_free(ctx.auth_limit);
}

/* ---- connections -------------------------------------------------------- */

/* With a cap of 3 per address, the 4th connection from 127.0.0.1 is closed
 * unanswered while 127.0.0.2 is served; closing one lets 127.0.0.1 in. */
static void per_address_cap(void)
{
	const char *req = "GET /api/v1/things/x HTTP/1.0\r\n\r\n";
	int held[3], served = 1;
	/* each answered once, so the daemon holds all three before the 4th */
	for (int i = 0; i < 3; i++) {
		held[i] = dial("127.0.0.1", port_capped);
		if (ask_kept(held[i], "/api/v1/things/x") != 200)
			served = 0;
	}
	ok(served, "three_connections_from_one_address_are_served_and_kept");
	int fourth = dial("127.0.0.1", port_capped);
	size_t n = 0;
	(void)send_all(fourth, req, strlen(req)); /* may fail: it is closed */
	const char *got = read_to_end(fourth, &n);
	ok(n == 0 || strncmp(got, "HTTP/", 5) != 0,
	   "the_connection_past_the_cap_from_one_address_is_closed_unanswered (read %zu bytes)", n);
	close(fourth);
	answer a = ask_at("127.0.0.2", port_capped, req, strlen(req));
	ok(a.status == 200, "another_address_is_served_while_the_first_is_at_its_cap (got %d)",
	   a.status);
	cJSON_Delete(a.body);
	/* held[0]'s end reaches the daemon when it reads it: try again until
	 * it has (each try refused meanwhile is closed at once) */
	close(held[0]);
	served = 0;
	for (int i = 0; i < 600 && !served; i++) {
		a = ask_at("127.0.0.1", port_capped, req, strlen(req));
		served = a.status == 200;
		cJSON_Delete(a.body);
		if (!served) {
			struct timespec ts = {0, 50 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	ok(served, "a_closed_connection_frees_its_place_under_the_cap");
	close(held[1]);
	close(held[2]);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Head deadline of 1 s: a trickled head is cut though bytes keep coming; a
 * kept-alive connection idle after its answer too; a request whose head
 * came in time runs as long as it takes. */
static void head_deadline(void)
{
	const char *head = "GET /api/v1/things/x HTTP/1.1\r\nHost: x\r\nX-Trickle: ";
	/* t0 before the connect: the server's deadline starts at its accept,
	 * which may come before dial() returns here (it once measured 0.99 s) */
	double t0 = now_s();
	int fd = dial("127.0.0.1", port_deadline);
	int cut = 0, sent = 0;
	/* one byte every 200 ms, at most 300 of them (a hang guard only) */
	for (size_t i = 0; i < 300 && !cut; i++) {
		char c = i < strlen(head) ? head[i] : 'a';
		if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
			cut = 1;
			break;
		}
		sent++;
		cut = closed_within(fd, 200);
	}
	double took = now_s() - t0;
	close(fd);
	ok(cut && sent >= 5 && took >= 1.0,
	   "a_head_trickled_a_byte_every_200_ms_is_cut_at_its_deadline (%d bytes, %.1f s)", sent,
	   took);

	fd = dial("127.0.0.1", port_deadline);
	int status = ask_kept(fd, "/api/v1/things/x");
	t0 = now_s();
	int idle_cut = 0;
	/* at most 30 s, a hang guard below libmicrohttpd's own 60 s idle
	 * timeout, which would close it too */
	for (int i = 0; i < 300 && !idle_cut; i++)
		idle_cut = closed_within(fd, 100);
	took = now_s() - t0;
	close(fd);
	ok(status == 200 && idle_cut && took >= 0.9,
	   "a_kept_alive_connection_without_a_next_head_is_cut_at_the_deadline (%.1f s)", took);

	answer a = ask_at("127.0.0.1", port_deadline, "GET /api/v1/slow HTTP/1.0\r\n\r\n", 30);
	ok(a.status == 200 && a.body && cJSON_IsTrue(cJSON_GetObjectItem(a.body, "slow")),
	   "a_request_whose_head_came_in_time_runs_past_the_deadline (got %d)", a.status);
	cJSON_Delete(a.body);
}

/* One daemon thread, head deadline 1 s. A kept-alive connection has its
 * answer (its next head's deadline starts); then the thread runs a handler
 * of 1.5 s for another client, and the first sends its next head at once.
 * The thread reads it only after the handler, past the deadline: that
 * time was rsignd's, not the client's, so the request is answered. (The
 * reaper cut it before: during a long key generation, kept-alive clients
 * got their connection closed without a response.) */
static int port_single;

static void *ask_slow(void *arg)
{
	answer *a = arg;
	*a = ask_at("127.0.0.1", port_single, "GET /api/v1/slow HTTP/1.0\r\n\r\n", 30);
	return NULL;
}

static void busy_thread_is_not_the_clients_time(void)
{
	pthread_t t;
	answer slow = {0};
	int begun, fd = dial("127.0.0.1", port_single);
	int first = ask_kept(fd, "/api/v1/things/x");

	pthread_mutex_lock(&slow_mu);
	begun = slow_begun;
	pthread_mutex_unlock(&slow_mu);
	if (pthread_create(&t, NULL, ask_slow, &slow) != 0)
		tap_bail("no thread");
	pthread_mutex_lock(&slow_mu);
	while (slow_begun == begun) /* the one daemon thread is in the handler */
		pthread_cond_wait(&slow_cv, &slow_mu);
	pthread_mutex_unlock(&slow_mu);
	int next = ask_kept(fd, "/api/v1/things/x");
	pthread_join(t, NULL);
	close(fd);
	ok(first == 200 && slow.status == 200 && next == 200,
	   "a_head_that_waited_for_a_busy_daemon_thread_past_its_deadline_is_answered "
	   "(first %d, slow %d, next %d)",
	   first, slow.status, next);
	cJSON_Delete(slow.body);
}

int main(void)
{
	srv_ctx ctx = {.max_body = 4096, .access_token_ttl = 60, .store = &stub_store};

	plan(6 + 8 + 2 + 6 + 6 + 4 + 4 + 3 + 1);
	ctx.auth_cache = srv_auth_cache_new();
	srv_http *h = start(&ctx, 2, 0, 10, &port);
	srv_ctx other = {.max_body = 4096, .store = &stub_store};
	srv_http *capped = start(&other, 2, 3, 10, &port_capped);
	srv_http *deadline = start(&other, 2, 0, 1, &port_deadline);
	srv_http *single = start(&other, 1, 0, 1, &port_single);

	basics();
	targets();
	utf8_bodies();
	mhd_refusals();
	framing();
	token_storm();
	per_address_cap();
	head_deadline();
	busy_thread_is_not_the_clients_time();

	srv_http_stop(single);
	srv_http_stop(deadline);
	srv_http_stop(capped);
	srv_http_stop(h);
	srv_cache_free(ctx.auth_cache);
	return tap_done();
}
