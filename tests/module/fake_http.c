/* The fake rsignd's HTTP side: HTTPS with libmicrohttpd, rsignd's error
 * body and reasons, the route table (matched before the bearer is checked,
 * as rsignd does), bearer authentication, injected faults, and the /_fake/
 * control interface of the standalone fake. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fake_int.h"

/* ---- answers ----------------------------------------------------------------- */

/* The reasons the fake answers with, as server/http/errors.c classes them. */
static const struct {
	const char *reason;
	unsigned status;
	const char *word;
} reasons[] = {
	{"invalidJson", 400, "BadRequest"},
	{"invalidField", 400, "BadRequest"},
	{"invalidQuery", 400, "BadRequest"},
	{"invalidBase64", 400, "BadRequest"},
	{"dataLength", 400, "BadRequest"},
	{"digestLength", 400, "BadRequest"},
	{"saltLength", 400, "BadRequest"},
	{"unknownAlgorithm", 400, "BadRequest"},
	{"algorithmMismatch", 400, "BadRequest"},
	{"invalidMetadata", 400, "BadRequest"},
	{"noPolicy", 400, "BadRequest"},
	{"exceedsPolicy", 400, "BadRequest"},
	{"tokenRejected", 400, "BadRequest"},
	{"invalidIdempotencyKey", 400, "BadRequest"},
	{"signerDisabled", 400, "SignerDisabled"},
	{"certificateExpired", 400, "CertificateExpired"},
	{"certificateNotYetValid", 400, "CertificateExpired"},
	{"tokenMissing", 401, "Unauthorized"},
	{"tokenInvalid", 401, "Unauthorized"},
	{"invalidCredentials", 401, "Unauthorized"},
	{"roleRequired", 403, "PermissionDenied"},
	{"approvalRequired", 403, "ApprovalRequired"},
	{"notFound", 404, "NotFound"},
	{"noEndpoint", 404, "NotFound"},
	{"stateConflict", 409, "Conflict"},
	{"idempotencyKeyReused", 409, "Conflict"},
	{"bodyTooLarge", 413, "PayloadTooLarge"},
	{"rateLimited", 429, "RateLimitExceeded"},
	{"databaseUnavailable", 503, "Unavailable"},
	{"tokenUnavailable", 503, "Unavailable"},
	{"internal", 500, "InternalError"}, /* last: also any reason not above */
};

void fake_fail(fake_reply *r, const char *reason, const char *fmt, ...)
{
	char msg[256];
	size_t i;
	va_list ap;
	cJSON *o;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]) - 1; i++)
		if (strcmp(reasons[i].reason, reason) == 0)
			break; /* the last row, internal, when none matches */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "statusCode", reasons[i].status);
	cJSON_AddStringToObject(o, "error", reasons[i].word);
	cJSON_AddStringToObject(o, "reason", reasons[i].reason);
	cJSON_AddStringToObject(o, "message", msg);
	cJSON_AddStringToObject(o, "reqId", r->req_id);
	fake_reply_json(r, reasons[i].status, o);
	cJSON_Delete(o);
}

void fake_reply_json(fake_reply *r, unsigned status, const cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	r->status = status;
	rs_buf_reset(&r->body);
	rs_buf_append_str(&r->body, s ? s : "{}");
	free(s);
}

static void reply_raw(fake_reply *r, unsigned status, const char *text)
{
	r->status = status;
	rs_buf_reset(&r->body);
	rs_buf_append_str(&r->body, text);
}

const char *fake_query(const fake_req *q, const char *name)
{
	return MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- faults ---------------------------------------------------------------- */

#define STR_(x) #x
#define STR(x) STR_(x)

enum { ARG_NONE, ARG_SIGNER, ARG_PATH };

/* The injected refusals: rsignd's answer in that situation, its message
 * made of before, the signer or path named by the request, and after. */
static const struct {
	fake_fault fault;
	const char *reason, *before;
	int arg;
	const char *after;
} refusals[] = {
	{FAULT_500, "internal", "injected fault", ARG_NONE, ""},
	{FAULT_503, "tokenUnavailable", "the token could not sign", ARG_NONE, ""},
	{FAULT_401, "tokenInvalid", "unknown or expired token", ARG_NONE, ""},
	{FAULT_403_APPROVAL, "approvalRequired", "signer ", ARG_SIGNER,
	 " needs approval: " FAKE_PRINCIPAL " has no active grant (request one)"},
	{FAULT_403_PERMISSION, "roleRequired", FAKE_PRINCIPAL " may not sign with this signer",
	 ARG_NONE, ""},
	{FAULT_404, "notFound", "no signer \"", ARG_SIGNER, "\""},
	{FAULT_404_NO_ENDPOINT, "noEndpoint", "no such endpoint: ", ARG_PATH, ""},
	{FAULT_400_BAD, "invalidJson", "the request body is not a JSON object", ARG_NONE, ""},
	{FAULT_400_LENGTH, "digestLength", "a SHA256 digest is 32 bytes, data has 31", ARG_NONE,
	 ""},
	{FAULT_400_DISABLED, "signerDisabled", "signer ", ARG_SIGNER, " is disabled"},
	{FAULT_400_EXPIRED, "certificateExpired", "the certificate of signer ", ARG_SIGNER,
	 " expired at 2021-01-01T00:00:00Z"},
	{FAULT_400_NOT_YET_VALID, "certificateNotYetValid", "the certificate of signer ",
	 ARG_SIGNER, " is not valid before 2090-01-01T00:00:00Z"},
	{FAULT_409, "stateConflict", "the request is closed", ARG_NONE, ""},
	{FAULT_413, "bodyTooLarge", "the request body exceeds " STR(FAKE_MAX_BODY) " bytes",
	 ARG_NONE, ""},
	{FAULT_429, "rateLimited", "too many requests", ARG_NONE, ""},
};

/* Faults that replace the answer entirely; 0 when the handler must run. */
static int fault_reply(fake_req *q)
{
	const char *arg[] = {"", q->params[0] ? q->params[0] : "-", q->path};
	fake_reply *r = q->r;
	size_t i;

	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		if (refusals[i].fault == q->fault) {
			fake_fail(r, refusals[i].reason, "%s%s%s", refusals[i].before,
				  arg[refusals[i].arg], refusals[i].after);
			return 1;
		}
	}
	switch (q->fault) {
	case FAULT_REPLAY:
		reply_raw(r, (unsigned)q->f->replay_status,
			  q->f->replay_body ? q->f->replay_body : "");
		return 1;
	case FAULT_TRUNCATED_JSON:
		reply_raw(r, 200, "{\"signature\":\"AAEC");
		return 1;
	case FAULT_INVALID_JSON:
		reply_raw(r, 200, "signature=AAEC; not json");
		return 1;
	case FAULT_HUGE_BODY:
		reply_raw(r, 200, "{\"pad\":\"");
		while (r->body.len < 2 * 1024 * 1024)
			rs_buf_append_str(&r->body,
					  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		rs_buf_append_str(&r->body, "\"}");
		return 1;
	case FAULT_NOT_JSON_ERROR:
		reply_raw(r, 502, "<html><body>Bad Gateway</body></html>");
		return 1;
	default:
		return 0;
	}
}

/* ---- routes ---------------------------------------------------------------- */

typedef struct fake_route {
	const char *method, *pattern; /* below /api/v1; '*' is one segment */
	void (*handler)(fake_req *q);
	int auth;
	fake_counter counter; /* CNT__MAX: not counted */
} fake_route;

static const fake_route routes[] = {
	{"POST", "/auth/universal-auth/login", fake_api_login, 0, CNT_LOGIN},
	{"GET", "/auth/whoami", fake_api_whoami, 1, CNT__MAX},
	{"GET", "/pki/signers", fake_api_signer_list, 1, CNT_LIST},
	{"GET", "/pki/signers/*", fake_api_signer_get, 1, CNT_GET_SIGNER},
	{"GET", "/pki/signers/*/public-key", fake_api_signer_public_key, 1, CNT__MAX},
	{"GET", "/pki/signers/*/certificate", fake_api_signer_certificate, 1, CNT_CERT},
	{"POST", "/pki/signers/*/sign", fake_api_sign, 1, CNT_SIGN},
	{"POST", "/pki/signers/*/requests", fake_api_request_create, 1, CNT_REQUEST_CREATE},
	{"GET", "/pki/signing-requests/*", fake_api_request_get, 1, CNT_REQUEST_GET},
};

/* As srv_route_match: the path against the pattern segment by segment,
 * every segment non-empty; the '*' segments go to params, pointing into
 * buf. */
static int route_match(const char *pattern, const char *path, char *buf, size_t buflen,
		       const char **params)
{
	const char *pat = pattern + 1;
	char *seg = buf, *next;
	int n = 0;

	if (path[0] != '/' || rs_strlcpy(buf, path + 1, buflen) >= buflen)
		return 0;
	for (; seg; seg = next) {
		size_t want = strcspn(pat, "/");

		next = strchr(seg, '/');
		if (next)
			*next++ = '\0';
		if (!*seg)
			return 0;
		if (want == 1 && *pat == '*' && n < 2)
			params[n++] = seg;
		else if (strlen(seg) != want || memcmp(pat, seg, want) != 0)
			return 0;
		pat += want;
		if (!*pat || !next)
			return !*pat && !next;
		pat++;
	}
	return 0;
}

/* srv_auth_bearer: tokenMissing without "Bearer ", tokenInvalid for a
 * token of the wrong length or one the fake did not issue. */
static const char *auth_inlock(fake_server *f, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	size_t i, n;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return "tokenMissing";
	for (h += 7; *h == ' '; h++)
		;
	n = strlen(h);
	if (n < 8 || n > 256)
		return "tokenInvalid";
	if (strcmp(h, f->user_token) == 0)
		return NULL;
	for (i = 0; i < f->n_access; i++)
		if (strcmp(h, f->access[i]) == 0)
			return NULL;
	return "tokenInvalid";
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Takes the fault for this url on this listener, if any; the lock is held. */
static fake_fault take_fault_inlock(fake_server *f, const char *url, int listener)
{
	fake_fault fault = FAULT_NONE;

	if (f->fault != FAULT_NONE && f->fault_count > 0 &&
	    (f->fault_at < 0 || f->fault_at == listener) &&
	    (!f->fault_match[0] || ends_with(url, f->fault_match))) {
		fault = f->fault;
		if (--f->fault_count == 0)
			f->fault = FAULT_NONE;
	}
	return fault;
}

static void dispatch(fake_req *q, const char *url)
{
	fake_server *f = q->f;
	const fake_route *rt = NULL;
	const char *why;
	char buf[512];
	int path_seen = 0;
	size_t i;

	f->counts[CNT_REQUESTS]++;
	if (ends_with(url, "/sign") && f->n_seen < FAKE_MAX_SEEN) {
		const char *k =
			MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, "Idempotency-Key");

		f->seen[f->n_seen].listener = q->listener;
		rs_strlcpy(f->seen[f->n_seen++].key, k ? k : "", sizeof(f->seen[0].key));
	}
	q->fault = take_fault_inlock(f, url, q->listener);
	if (q->fault == FAULT_TIMEOUT) {
		int ms = f->timeout_ms;

		pthread_mutex_unlock(&f->lock);
		usleep((useconds_t)ms * 1000);
		pthread_mutex_lock(&f->lock);
		fake_fail(q->r, "tokenUnavailable", "the token could not sign");
		return;
	}
	if (strncmp(url, "/api/v1/", 8) != 0) {
		fake_fail(q->r, "noEndpoint", "no such endpoint: %s", url);
		return;
	}
	q->path = url + 7;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		memset(q->params, 0, sizeof(q->params));
		if (!route_match(routes[i].pattern, q->path, buf, sizeof(buf), q->params))
			continue;
		path_seen = 1;
		if (strcmp(routes[i].method, q->method) == 0) {
			rt = &routes[i];
			break;
		}
	}
	if (!rt) {
		if (path_seen)
			fake_fail(q->r, "noEndpoint", "%s is not supported on %s", q->method,
				  q->path);
		else
			fake_fail(q->r, "noEndpoint", "no such endpoint: %s", q->path);
		return;
	}
	if (rt->auth && (why = auth_inlock(f, q->c)) != NULL) {
		f->counts[CNT_UNAUTHORIZED]++;
		fake_fail(q->r, why,
			  strcmp(why, "tokenMissing") == 0
				  ? "this operation needs an Authorization: Bearer token"
				  : "unknown or expired token");
		return;
	}
	if (rt->counter != CNT__MAX)
		f->counts[rt->counter]++;
	if (!fault_reply(q))
		rt->handler(q);
	if (q->fault == FAULT_LOST_ANSWER)
		reply_raw(q->r, 502, "<html><body>Bad Gateway</body></html>");
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct req_ctx {
	rs_buf body;
	int too_large;
} req_ctx;

static void answer(fake_server *f, int listener, struct MHD_Connection *c, const char *url,
		   const char *method, req_ctx *rc, fake_reply *r)
{
	unsigned status = 500;
	char *out = NULL;
	fake_req q;

	memset(&q, 0, sizeof(q));
	q.f = f;
	q.listener = listener;
	q.c = c;
	q.method = method;
	q.body = rs_buf_str(&rc->body);
	q.len = rc->body.len;
	q.r = r;
	if (f->control && strncmp(url, "/_fake/", 7) == 0) {
		f->control(f, method, url, q.body, q.len, &status, &out);
		reply_raw(r, status, out ? out : "{}");
		free(out);
		return;
	}
	pthread_mutex_lock(&f->lock);
	if (rc->too_large)
		fake_fail(r, "bodyTooLarge", "the request body exceeds %d bytes", FAKE_MAX_BODY);
	else
		dispatch(&q, url);
	pthread_mutex_unlock(&f->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	fake_listener *lis = cls;
	fake_server *f = lis->f;
	req_ctx *rc = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *cl;
	fake_reply r;

	(void)version;
	if (!rc) {
		rc = calloc(1, sizeof(*rc));
		if (!rc)
			return MHD_NO;
		rs_buf_init(&rc->body, FAKE_MAX_BODY);
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		rc->too_large = cl && strtoull(cl, NULL, 10) > FAKE_MAX_BODY;
		*con_cls = rc;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rc->too_large && rs_buf_append(&rc->body, upload_data, *upload_size) < 0)
			rc->too_large = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	memset(&r, 0, sizeof(r));
	r.status = 500;
	if (rs_random_hex(16, r.req_id) < 0)
		rs_strlcpy(r.req_id, "0", sizeof(r.req_id));
	rs_buf_init(&r.body, 4 * 1024 * 1024);
	answer(f, lis->idx, c, url, method, rc, &r);
	resp = MHD_create_response_from_buffer(r.body.len, r.body.data ? r.body.data : (void *)"",
					       MHD_RESPMEM_MUST_COPY);
	rs_buf_free(&r.body);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Request-Id", r.req_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	req_ctx *rc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rc) {
		rs_buf_wipe(&rc->body);
		free(rc);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	fake_server *f = cls;

	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		pthread_mutex_lock(&f->lock);
		f->counts[CNT_CONNECTIONS]++;
		pthread_mutex_unlock(&f->lock);
	}
}

/* A daemon for listener idx on 127.0.0.1:*port (0: any); *port is set. */
static struct MHD_Daemon *listen_on(fake_server *f, int idx, unsigned short *port)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;

	f->lis[idx].f = f;
	f->lis[idx].idx = idx;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(*port);
	sa.sin_addr.s_addr = htonl(0x7f000001);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				     MHD_USE_TLS,
			     *port, NULL, NULL, on_request, &f->lis[idx], MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_HTTPS_MEM_KEY, f->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT,
			     f->tls_cert_pem, MHD_OPTION_NOTIFY_COMPLETED, on_completed, f,
			     MHD_OPTION_NOTIFY_CONNECTION, on_connection, f,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
	if (!d)
		return NULL;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		MHD_stop_daemon(d);
		return NULL;
	}
	*port = info->port;
	return d;
}

int fake_start(fake_server *f)
{
	f->d = listen_on(f, 0, &f->port);
	return f->d ? 0 : -1;
}

int fake_start_replica(fake_server *f)
{
	f->d2 = listen_on(f, 1, &f->port2);
	return f->d2 ? 0 : -1;
}

void fake_stop_replica(fake_server *f)
{
	if (f->d2) {
		MHD_stop_daemon(f->d2);
		f->d2 = NULL;
	}
}

unsigned short fake_replica_port(const fake_server *f)
{
	return f->port2;
}

void fake_stop(fake_server *f)
{
	if (f->d) {
		MHD_stop_daemon(f->d);
		f->d = NULL;
	}
}
