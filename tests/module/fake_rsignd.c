/* The fake rsignd's plumbing: its signers and controls, HTTPS with
 * libmicrohttpd, rsignd's error body and reasons, the route table (matched
 * before the bearer is checked, as rsignd does), bearer authentication, and
 * injected faults. The handlers are in fake_api.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fake_int.h"
#include "fake_pki.h"

/* ---- signers --------------------------------------------------------------- */

fake_signer *fake_find_inlock(fake_server *f, const char *id_or_name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (!f->signers[i].removed && (strcmp(f->signers[i].id, id_or_name) == 0 ||
					       strcmp(f->signers[i].name, id_or_name) == 0))
			return &f->signers[i];
	return NULL;
}

/* A new certificate for s, valid from nb to na. */
static int signer_certify(fake_server *f, fake_signer *s, time_t nb, time_t na)
{
	X509 *cert = fake_make_cert(s->key, s->name, f->ca_cert, f->ca_key, 1,
				    100 + (long)(s - f->signers) * 1000 + (long)time(NULL) % 1000,
				    nb, na);
	char *pem = cert ? fake_pem_of_cert(cert) : NULL;

	if (!pem || rs_uuid(s->cert_id) < 0) {
		X509_free(cert);
		free(pem);
		return -1;
	}
	X509_free(s->cert);
	free(s->cert_pem);
	s->cert = cert;
	s->cert_pem = pem;
	s->not_before = nb;
	s->not_after = na;
	return 0;
}

static int signer_add(fake_server *f, const char *name, rs_key_alg alg, const fake_signer *share)
{
	time_t now = time(NULL);
	fake_signer *s;

	if (f->n == FAKE_MAX_SIGNERS)
		return -1;
	s = &f->signers[f->n];
	memset(s, 0, sizeof(*s));
	if (rs_uuid(s->id) < 0)
		return -1;
	rs_strlcpy(s->name, name, sizeof(s->name));
	s->alg = alg;
	s->role = FAKE_ROLE_OPERATOR;
	s->enabled = 1;
	if (share) {
		s->key = share->key;
		s->shared_key = 1;
		s->cert = share->cert;
		X509_up_ref(share->cert);
		s->cert_pem = strdup(share->cert_pem);
		memcpy(s->cert_id, share->cert_id, sizeof(s->cert_id));
		s->not_before = share->not_before;
		s->not_after = share->not_after;
		if (!s->cert_pem)
			return -1;
	} else {
		s->key = fake_keygen(alg);
		if (!s->key || signer_certify(f, s, now - 3600, now + 30L * 86400) < 0) {
			EVP_PKEY_free(s->key);
			X509_free(s->cert);
			return -1;
		}
	}
	f->n++;
	return 0;
}

fake_server *fake_new(int extra)
{
	fake_server *f = calloc(1, sizeof(*f));
	EVP_PKEY *tls_key = NULL;
	X509 *tls_cert = NULL;
	char name[32];
	int i;

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	rs_strlcpy(f->user_token, FAKE_USER_TOKEN, sizeof(f->user_token));
	f->expires_in = 3600;
	f->timeout_ms = 2500;
	tls_key = fake_keygen(RS_KEY_EC_P256);
	tls_cert = tls_key ? fake_make_cert(tls_key, "127.0.0.1", NULL, NULL, 2, 1, 0, 0) : NULL;
	f->ca_key = fake_keygen(RS_KEY_EC_P256);
	f->ca_cert = f->ca_key ? fake_make_cert(f->ca_key, "rsign test CA", NULL, NULL, 0, 2,
						time(NULL) - 86400, time(NULL) + 3650L * 86400)
			       : NULL;
	if (!tls_cert || !f->ca_cert)
		goto fail;
	f->tls_key_pem = fake_pem_of_key(tls_key);
	f->tls_cert_pem = fake_pem_of_cert(tls_cert);
	f->ca_pem = fake_pem_of_cert(f->ca_cert);
	if (!f->tls_key_pem || !f->tls_cert_pem || !f->ca_pem ||
	    signer_add(f, FAKE_RSA, RS_KEY_RSA_2048, NULL) < 0 ||
	    signer_add(f, FAKE_EC, RS_KEY_EC_P256, NULL) < 0)
		goto fail;
	for (i = 0; i < extra; i++) {
		snprintf(name, sizeof(name), "extra-%03d", i);
		if (signer_add(f, name, RS_KEY_EC_P256, &f->signers[1]) < 0)
			goto fail;
	}
	EVP_PKEY_free(tls_key);
	X509_free(tls_cert);
	return f;
fail:
	EVP_PKEY_free(tls_key);
	X509_free(tls_cert);
	fake_free(f);
	return NULL;
}

void fake_free(fake_server *f)
{
	size_t i;

	if (!f)
		return;
	fake_stop(f);
	for (i = 0; i < f->n; i++) {
		if (!f->signers[i].shared_key)
			EVP_PKEY_free(f->signers[i].key);
		X509_free(f->signers[i].cert);
		free(f->signers[i].cert_pem);
	}
	for (i = 0; i < f->n_access; i++)
		free(f->access[i]);
	free(f->tls_key_pem);
	free(f->tls_cert_pem);
	free(f->ca_pem);
	EVP_PKEY_free(f->ca_key);
	X509_free(f->ca_cert);
	free(f->last_sign);
	free(f->replay_body);
	for (i = 0; i < (size_t)f->n_reqs; i++)
		free(f->reqs[i].body);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- controls ----------------------------------------------------------- */

unsigned short fake_port(const fake_server *f)
{
	return f->port;
}

const char *fake_tls_pem(const fake_server *f)
{
	return f->tls_cert_pem;
}

const char *fake_ca_pem(const fake_server *f)
{
	return f->ca_pem;
}

void fake_fault_set(fake_server *f, fake_fault fault, int count, const char *match)
{
	pthread_mutex_lock(&f->lock);
	f->fault = fault;
	f->fault_count = count;
	rs_strlcpy(f->fault_match, match ? match : "", sizeof(f->fault_match));
	pthread_mutex_unlock(&f->lock);
}

void fake_replay(fake_server *f, int status, const char *body, int count, const char *match)
{
	char *copy = strdup(body);

	pthread_mutex_lock(&f->lock);
	free(f->replay_body);
	f->replay_body = copy;
	f->replay_status = status;
	pthread_mutex_unlock(&f->lock);
	fake_fault_set(f, copy ? FAULT_REPLAY : FAULT_500, count, match);
}

void fake_set_timeout_ms(fake_server *f, int ms)
{
	f->timeout_ms = ms;
}

void fake_expire_tokens(fake_server *f)
{
	size_t i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->n_access; i++)
		free(f->access[i]);
	f->n_access = 0;
	pthread_mutex_unlock(&f->lock);
}

void fake_set_expires_in(fake_server *f, long seconds)
{
	f->expires_in = seconds;
}

void fake_set_user_token(fake_server *f, const char *token)
{
	pthread_mutex_lock(&f->lock);
	rs_strlcpy(f->user_token, token, sizeof(f->user_token));
	pthread_mutex_unlock(&f->lock);
}

int fake_count(fake_server *f, fake_counter c)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->counts[c];
	pthread_mutex_unlock(&f->lock);
	return n;
}

void fake_reset_counts(fake_server *f)
{
	pthread_mutex_lock(&f->lock);
	memset(f->counts, 0, sizeof(f->counts));
	pthread_mutex_unlock(&f->lock);
}

char *fake_last_sign_body(fake_server *f)
{
	char *p;

	pthread_mutex_lock(&f->lock);
	p = f->last_sign ? strdup(f->last_sign) : NULL;
	pthread_mutex_unlock(&f->lock);
	return p;
}

const char *fake_signer_id(fake_server *f, const char *name)
{
	fake_signer *s;

	pthread_mutex_lock(&f->lock);
	s = fake_find_inlock(f, name);
	pthread_mutex_unlock(&f->lock);
	return s ? s->id : NULL;
}

X509 *fake_signer_cert(fake_server *f, const char *name)
{
	fake_signer *s;

	pthread_mutex_lock(&f->lock);
	s = fake_find_inlock(f, name);
	pthread_mutex_unlock(&f->lock);
	return s ? s->cert : NULL;
}

int fake_add_signer(fake_server *f, const char *name, rs_key_alg alg)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (!fake_find_inlock(f, name))
		rc = signer_add(f, name, alg, NULL);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* Runs fn on the named signer under the lock; -1 when there is none. */
static int with_signer(fake_server *f, const char *name,
		       int (*fn)(fake_server *, fake_signer *, const void *), const void *arg)
{
	fake_signer *s;
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	s = fake_find_inlock(f, name);
	if (s)
		rc = fn(f, s, arg);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int do_remove(fake_server *f, fake_signer *s, const void *arg)
{
	(void)f;
	(void)arg;
	s->removed = 1;
	return 0;
}

static int do_role(fake_server *f, fake_signer *s, const void *arg)
{
	(void)f;
	s->role = *(const fake_role *)arg;
	return 0;
}

static int do_enable(fake_server *f, fake_signer *s, const void *arg)
{
	(void)f;
	s->enabled = *(const int *)arg;
	return 0;
}

static int do_validity(fake_server *f, fake_signer *s, const void *arg)
{
	const time_t *t = arg;

	if (s->shared_key) { /* its own key from now on: the certificate is its own */
		s->key = fake_keygen(s->alg);
		s->shared_key = 0;
		if (!s->key)
			return -1;
	}
	return signer_certify(f, s, t[0], t[1]);
}

static int do_approval(fake_server *f, fake_signer *s, const void *arg)
{
	const int *a = arg;

	(void)f;
	s->needs_approval = a[0];
	s->grant_signings = a[1];
	s->grants_left = 0;
	return 0;
}

int fake_remove_signer(fake_server *f, const char *name)
{
	return with_signer(f, name, do_remove, NULL);
}

void fake_set_role(fake_server *f, const char *name, fake_role role)
{
	(void)with_signer(f, name, do_role, &role);
}

void fake_set_enabled(fake_server *f, const char *name, int enabled)
{
	(void)with_signer(f, name, do_enable, &enabled);
}

int fake_set_validity(fake_server *f, const char *name, time_t not_before, time_t not_after)
{
	time_t t[2] = {not_before, not_after};

	return with_signer(f, name, do_validity, t);
}

void fake_set_approval(fake_server *f, const char *name, int required, int signings)
{
	int a[2] = {required, signings};

	(void)with_signer(f, name, do_approval, a);
}

void fake_set_auto_decision(fake_server *f, const char *status, int polls)
{
	pthread_mutex_lock(&f->lock);
	rs_strlcpy(f->auto_status, status ? status : "", sizeof(f->auto_status));
	f->auto_polls = polls;
	pthread_mutex_unlock(&f->lock);
}

void fake_decide_inlock(fake_server *f, fake_request *q, const char *status)
{
	if (strcmp(q->status, "pending") != 0)
		return;
	rs_strlcpy(q->status, status, sizeof(q->status));
	if (strcmp(status, "approved") == 0)
		f->signers[q->signer].grants_left += f->signers[q->signer].grant_signings;
}

int fake_decide_last(fake_server *f, const char *status)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (f->n_reqs > 0) {
		fake_decide_inlock(f, &f->reqs[f->n_reqs - 1], status);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fake_request_total(fake_server *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->n_reqs;
	pthread_mutex_unlock(&f->lock);
	return n;
}

char *fake_last_request(fake_server *f, char *id_out, size_t id_len)
{
	char *p = NULL;

	pthread_mutex_lock(&f->lock);
	if (id_out && id_len)
		id_out[0] = '\0';
	if (f->n_reqs > 0) {
		if (id_out)
			rs_strlcpy(id_out, f->reqs[f->n_reqs - 1].id, id_len);
		p = f->reqs[f->n_reqs - 1].body ? strdup(f->reqs[f->n_reqs - 1].body) : NULL;
	}
	pthread_mutex_unlock(&f->lock);
	return p;
}

void fake_set_control(fake_server *f, fake_control_fn fn)
{
	f->control = fn;
}

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

/* Faults that replace the answer entirely; 0 when the handler must run. */
static int fault_reply(fake_req *q)
{
	const char *signer = q->params[0] ? q->params[0] : "-";
	fake_reply *r = q->r;

	switch (q->fault) {
	case FAULT_500:
		fake_fail(r, "internal", "injected fault");
		return 1;
	case FAULT_503:
		fake_fail(r, "tokenUnavailable", "the token could not sign");
		return 1;
	case FAULT_401:
		fake_fail(r, "tokenInvalid", "unknown or expired token");
		return 1;
	case FAULT_403_APPROVAL:
		fake_fail(r, "approvalRequired",
			  "signer %s needs approval: %s has no active grant (request one)", signer,
			  FAKE_PRINCIPAL);
		return 1;
	case FAULT_403_PERMISSION:
		fake_fail(r, "roleRequired", "%s may not sign with this signer", FAKE_PRINCIPAL);
		return 1;
	case FAULT_404:
		fake_fail(r, "notFound", "no signer \"%s\"", signer);
		return 1;
	case FAULT_404_NO_ENDPOINT:
		fake_fail(r, "noEndpoint", "no such endpoint: %s", q->path);
		return 1;
	case FAULT_400_BAD:
		fake_fail(r, "invalidJson", "the request body is not a JSON object");
		return 1;
	case FAULT_400_LENGTH:
		fake_fail(r, "digestLength", "a SHA256 digest is 32 bytes, data has 31");
		return 1;
	case FAULT_400_DISABLED:
		fake_fail(r, "signerDisabled", "signer %s is disabled", signer);
		return 1;
	case FAULT_400_EXPIRED:
		fake_fail(r, "certificateExpired",
			  "the certificate of signer %s expired at 2021-01-01T00:00:00Z", signer);
		return 1;
	case FAULT_400_NOT_YET_VALID:
		fake_fail(r, "certificateNotYetValid",
			  "the certificate of signer %s is not valid before 2090-01-01T00:00:00Z",
			  signer);
		return 1;
	case FAULT_409:
		fake_fail(r, "stateConflict", "the request is closed");
		return 1;
	case FAULT_413:
		fake_fail(r, "bodyTooLarge", "the request body exceeds %d bytes", FAKE_MAX_BODY);
		return 1;
	case FAULT_429:
		fake_fail(r, "rateLimited", "too many requests");
		return 1;
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

/* Takes the fault for this url, if any; the lock is held. */
static fake_fault take_fault_inlock(fake_server *f, const char *url)
{
	fake_fault fault = FAULT_NONE;

	if (f->fault != FAULT_NONE && f->fault_count > 0 &&
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
	q->fault = take_fault_inlock(f, url);
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
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct req_ctx {
	rs_buf body;
	int too_large;
} req_ctx;

static void answer(fake_server *f, struct MHD_Connection *c, const char *url, const char *method,
		   req_ctx *rc, fake_reply *r)
{
	unsigned status = 500;
	char *out = NULL;
	fake_req q;

	memset(&q, 0, sizeof(q));
	q.f = f;
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
	fake_server *f = cls;
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
	answer(f, c, url, method, rc, &r);
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

int fake_start(fake_server *f)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(f->port);
	sa.sin_addr.s_addr = htonl(0x7f000001);
	f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					MHD_USE_TLS,
				f->port, NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_HTTPS_MEM_KEY, f->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT,
				f->tls_cert_pem, MHD_OPTION_NOTIFY_COMPLETED, on_completed, f,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, f,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
	if (!f->d)
		return -1;
	info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		fake_stop(f);
		return -1;
	}
	f->port = info->port;
	return 0;
}

void fake_stop(fake_server *f)
{
	if (f->d) {
		MHD_stop_daemon(f->d);
		f->d = NULL;
	}
}
