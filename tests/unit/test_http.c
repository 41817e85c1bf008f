/* The HTTP layer (server/http/) on a real libmicrohttpd daemon, over plain
 * HTTP on loopback, with a storage stub whose outcome each check sets: how
 * bearer authentication, routing and failures become statuses and the
 * API's JSON error bodies. Requests are written byte for byte on a socket,
 * so nothing between the test and the server interprets them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "rsign/json.h"
#include "server/http/auth.h"
#include "server/http/cache.h"
#include "server/http/http.h"
#include "tap.h"

/* ---- a store whose token lookup answers what the check set ------------- */

static srv_st_rc lookup_rc = SRV_ST_NOT_FOUND;

static srv_st_rc stub_token_lookup(srv_store *st, const char *hash_hex, time_t now,
				   srv_principal *out)
{
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

static const srv_route routes[] = {
	{"GET", "/hello", handle_hello, SRV_AUTH_ANY, 0, NULL},
	{NULL, NULL, NULL, 0, 0, NULL},
};

/* ---- one request, one answer ------------------------------------------- */

typedef struct {
	int status;
	cJSON *body; /* NULL when the body is not JSON */
} answer;

static int port;

static answer ask(const char *request)
{
	answer a = {0, NULL};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		tap_bail("cannot connect to the daemon on port %d", port);
	size_t len = strlen(request);
	if (write(fd, request, len) != (ssize_t)len)
		tap_bail("cannot send the request");
	static char buf[65536];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &a.status) != 1)
		a.status = -1;
	const char *body = strstr(buf, "\r\n\r\n");
	if (body)
		a.body = rs_json_parse(body + 4, strlen(body + 4), RS_JSON_MAX_DEPTH);
	return a;
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

#define BEARER "Authorization: Bearer rsu_0123456789abcdef\r\n"

int main(void)
{
	char err[256] = "";
	srv_ctx ctx = {.max_body = 4096, .access_token_ttl = 60, .store = &stub_store};
	srv_http_opts opts = {.listen = "127.0.0.1:0", .insecure_http = 1, .threads = 2};
	answer a;

	plan(6);
	ctx.auth_cache = srv_auth_cache_new();
	srv_http *h = srv_http_start(&ctx, routes, &opts, &port, err, sizeof(err));
	if (!h || port <= 0)
		tap_bail("the daemon did not start: %s", err);

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

	srv_http_stop(h);
	srv_cache_free(ctx.auth_cache);
	return tap_done();
}
