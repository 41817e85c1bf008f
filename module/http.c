/* The HTTPS client: libcurl easy handles kept in a small pool so that
 * keep-alive connections are reused across C_Sign calls and threads, with a
 * share for DNS and TLS sessions so a new handle resumes TLS. Certificate
 * verification is always on (ca_file, else the system store); connect and
 * whole-request timeouts are explicit; response bodies stop at 1 MiB.
 * The pool, the share and the copy of the configuration a request takes
 * have their own mutex (pool_mu), held only to take or give back a handle,
 * never across a transfer: a C_Sign takes the global lock only where it
 * reads its session, not for the connection. The global lock, when held
 * too, is taken first (C_Initialize, C_Finalize, fork).
 *
 * Failover: `url` may list several base URLs (replicas of one rsignd
 * deployment). A request starts at the one that last worked and moves to
 * the next, each tried at most once, after no response (connect, TLS,
 * timeout, a dropped connection) or a 502/503/504. A request that may not
 * be repeated (a POST other than a login, without an Idempotency-Key) moves
 * on only when it surely did nothing: nothing was sent, or the answer was
 * 503. A request that ends on another URL than the current one makes it
 * the current one, logged once per switch. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>

#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"

#include "module.h"
#include "http.h"

#define POOL_MAX 8
#define URL_MAX MOD_URL_MAX

typedef struct share_state {
	CURLSH *sh;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	struct share_state *next; /* on the retired list */
} share_state;

/* What one request needs of the configuration, copied under the lock: a
 * C_Finalize in another thread may free the configuration meanwhile. */
typedef struct req_conf {
	char urls[MOD_MAX_URLS][URL_MAX];
	int plain[MOD_MAX_URLS];
	size_t n_urls, cur;
	char ca_file[4097];
	int resolve_in_caller;
	long connect_ms, request_ms;
} req_conf;

static const mod_config *http_conf;
static int resolve_in_caller; /* CKF_LIBRARY_CANT_CREATE_OS_THREADS */
static share_state *share;
/* Shares a C_Finalize could not clean up because a transfer in another
 * thread still used them; freed once that transfer's handle is gone. */
static share_state *retired;
static CURL *pool[POOL_MAX];
static int pool_n;
static size_t url_cur; /* the URL that last worked (failover) */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the statics above */
static char tool_name[64] = "unknown";
static char host_name[256] = "unknown";

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	share_state *s = ud;

	(void)h;
	(void)access;
	pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	share_state *s = ud;

	(void)h;
	pthread_mutex_unlock(&s->locks[data]);
}

static share_state *share_new(void)
{
	share_state *s = calloc(1, sizeof(*s));
	int i;

	if (!s)
		return NULL;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->locks[i], NULL);
	s->sh = curl_share_init();
	if (!s->sh || curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s) ||
	    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) {
		if (s->sh)
			curl_share_cleanup(s->sh);
		free(s);
		return NULL;
	}
	return s;
}

/* pool_mu is held. A share still used by a running transfer (C_Finalize
 * while another thread signs) is retired, not freed: that transfer still
 * calls its lock callbacks. */
static void share_free(share_state *s)
{
	int i;

	if (!s)
		return;
	if (curl_share_cleanup(s->sh) != CURLSHE_OK) {
		s->next = retired;
		retired = s;
		return;
	}
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->locks[i]);
	free(s);
}

/* Frees the retired shares no handle uses any more; pool_mu is held. */
static void retired_sweep_inlock(void)
{
	share_state *s = retired, *next;

	retired = NULL;
	for (; s; s = next) {
		next = s->next;
		share_free(s); /* back on the list while a transfer still uses it */
	}
}

static void read_identity(void)
{
	const char *p = program_invocation_short_name;

	if (p && *p)
		rs_strlcpy(tool_name, p, sizeof(tool_name));
	if (gethostname(host_name, sizeof(host_name)) < 0 || !host_name[0])
		rs_strlcpy(host_name, "unknown", sizeof(host_name));
	host_name[sizeof(host_name) - 1] = '\0';
}

void mod_http_fork_prepare(void)
{
	pthread_mutex_lock(&pool_mu);
}

void mod_http_fork_release(void)
{
	pthread_mutex_unlock(&pool_mu);
}

int mod_http_init(const mod_config *conf, int no_threads)
{
	read_identity();
	share_state *sh = share_new();
	pthread_mutex_lock(&pool_mu);
	http_conf = conf;
	url_cur = 0;
	resolve_in_caller = no_threads;
	share = sh;
	pthread_mutex_unlock(&pool_mu);
	return sh ? 0 : -1;
}

/* Called with the global lock held. */
void mod_http_free(void)
{
	int i;

	pthread_mutex_lock(&pool_mu);
	for (i = 0; i < pool_n; i++)
		curl_easy_cleanup(pool[i]);
	pool_n = 0;
	share_free(share);
	share = NULL;
	http_conf = NULL;
	pthread_mutex_unlock(&pool_mu);
}

/* What a forked child inherited, kept (not freed: freeing would shut down
 * TLS on sockets the parent still uses) and reachable. Not static, so that
 * the stores are not optimised away. */
struct {
	CURL *pool[POOL_MAX];
	share_state *share;
} mod_http_abandoned;

void mod_http_forget(void) /* in the child, pool_mu released by the fork handler */
{
	memcpy(mod_http_abandoned.pool, pool, sizeof(pool));
	mod_http_abandoned.share = share;
	memset(pool, 0, sizeof(pool));
	pool_n = 0;
	share = NULL;
	http_conf = NULL;
}

const char *mod_http_tool(void)
{
	return tool_name;
}

const char *mod_http_hostname(void)
{
	return host_name;
}

int mod_http_escape(const char *seg, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *seg; seg++) {
		unsigned char c = (unsigned char)*seg;
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

		if (o + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

/* A pooled (or new) handle, the share and a copy of the configuration;
 * NULL and *sh NULL when the module has no url or is not initialised. */
static CURL *pool_get(CURLSH **sh, req_conf *rc)
{
	CURL *h = NULL;

	pthread_mutex_lock(&pool_mu);
	*sh = share && http_conf && http_conf->n_urls ? share->sh : NULL;
	if (*sh) {
		rc->n_urls = http_conf->n_urls;
		for (size_t i = 0; i < rc->n_urls; i++) {
			rs_strlcpy(rc->urls[i], http_conf->urls[i], sizeof(rc->urls[i]));
			rc->plain[i] = http_conf->plain[i];
		}
		rc->cur = url_cur < rc->n_urls ? url_cur : 0;
		rs_strlcpy(rc->ca_file, http_conf->ca_file ? http_conf->ca_file : "",
			   sizeof(rc->ca_file));
		rc->resolve_in_caller = resolve_in_caller;
		rc->connect_ms = (long)(http_conf->connect_timeout * 1000);
		rc->request_ms = (long)(http_conf->request_timeout * 1000);
		if (pool_n > 0)
			h = pool[--pool_n];
	}
	pthread_mutex_unlock(&pool_mu);
	if (!*sh)
		return NULL;
	return h ? h : curl_easy_init();
}

static void pool_put(CURL *h, CURLSH *sh)
{
	pthread_mutex_lock(&pool_mu);
	/* A handle from before a C_Finalize (or made for another share) is
	 * not kept. */
	if (share && share->sh == sh && pool_n < POOL_MAX) {
		pool[pool_n++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	if (h) {
		curl_easy_cleanup(h);
		pthread_mutex_lock(&pool_mu);
		retired_sweep_inlock();
		pthread_mutex_unlock(&pool_mu);
	}
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	rs_buf *b = ud;

	if (rs_buf_append(b, p, size * n) < 0)
		return 0; /* over the limit: curl stops with CURLE_WRITE_ERROR */
	return size * n;
}

/* The header holding the bearer is wiped before it is freed. */
static void headers_free(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p; p = p->next)
		if (p->data)
			rs_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static struct curl_slist *headers_new(const char *bearer, int has_body, const char *idem_key)
{
	struct curl_slist *l = NULL, *n;
	char key[128];
	rs_buf auth;

	n = curl_slist_append(l, "Accept: application/json");
	if (!n)
		goto fail;
	l = n;
	n = curl_slist_append(l, "Expect:");
	if (!n)
		goto fail;
	l = n;
	if (has_body) {
		n = curl_slist_append(l, "Content-Type: application/json");
		if (!n)
			goto fail;
		l = n;
	}
	if (idem_key) {
		snprintf(key, sizeof(key), "Idempotency-Key: %s", idem_key);
		n = curl_slist_append(l, key);
		if (!n)
			goto fail;
		l = n;
	}
	if (bearer) {
		rs_buf_init(&auth, 8192);
		rs_buf_append_str(&auth, "Authorization: Bearer ");
		rs_buf_append_str(&auth, bearer);
		n = rs_buf_ok(&auth) ? curl_slist_append(l, rs_buf_str(&auth)) : NULL;
		rs_buf_wipe(&auth);
		if (!n)
			goto fail;
		l = n;
	}
	return l;
fail:
	headers_free(l);
	return NULL;
}

static void copy_json_str(const cJSON *obj, const char *name, char *out, size_t outlen)
{
	const char *s = NULL;

	if (rs_json_str(obj, name, 0, 4096, &s) == RS_JSON_OK && s)
		rs_strlcpy(out, s, outlen);
}

static void parse_error_body(mod_http_resp *resp)
{
	cJSON *obj;

	if (!resp->body.len)
		return;
	obj = rs_json_parse((const char *)resp->body.data, resp->body.len, RS_JSON_MAX_DEPTH);
	if (!obj)
		return;
	if (cJSON_IsObject(obj)) {
		copy_json_str(obj, "error", resp->error, sizeof(resp->error));
		copy_json_str(obj, "reason", resp->reason, sizeof(resp->reason));
		copy_json_str(obj, "message", resp->message, sizeof(resp->message));
		copy_json_str(obj, "reqId", resp->req_id, sizeof(resp->req_id));
	}
	cJSON_Delete(obj);
}

static void fail_transport(mod_http_resp *resp, const char *why)
{
	resp->transport_failed = 1;
	rs_strlcpy(resp->transport_error, why, sizeof(resp->transport_error));
}

static int set_options(CURL *h, CURLSH *sh, const req_conf *c, int plain_http, const char *method,
		       const char *url, struct curl_slist *headers, const char *body,
		       mod_http_resp *resp, char *errbuf)
{
	CURLcode e = CURLE_OK;

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(h, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_SHARE, sh);
	SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
	SET(CURLOPT_PROTOCOLS_STR, plain_http ? "http" : "https");
#else
	SET(CURLOPT_PROTOCOLS, plain_http ? (long)CURLPROTO_HTTP : (long)CURLPROTO_HTTPS);
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file[0])
		SET(CURLOPT_CAINFO, c->ca_file);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	SET(CURLOPT_TIMEOUT_MS, c->request_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "rsign-pkcs11/" RSIGN_VERSION);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &resp->body);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	if (strcmp(method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, body ? body : "");
		SET(CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	} else if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, method);
	}
#undef SET
	return e == CURLE_OK ? 0 : -1;
}

/* With CKF_LIBRARY_CANT_CREATE_OS_THREADS libcurl's threaded resolver must
 * not run: the server's name is resolved here, in the caller's thread, and
 * handed to libcurl as a CURLOPT_RESOLVE entry (IP literals need nothing). */
static struct curl_slist *resolve_here(const char *url)
{
	char *host = NULL, *port = NULL, addr[INET6_ADDRSTRLEN], entry[1024];
	struct addrinfo hints, *ai = NULL, *it;
	int n;
	struct curl_slist *l = NULL;
	unsigned char buf[sizeof(struct in6_addr)];
	CURLU *u = curl_url();

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) || host[0] == '[' ||
	    inet_pton(AF_INET, host, buf) == 1)
		goto out;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		goto out;
	/* "host:port:addr[,addr...]", every address libcurl may try */
	n = snprintf(entry, sizeof(entry), "%s:%s:", host, port);
	for (it = ai; it && n > 0 && (size_t)n < sizeof(entry); it = it->ai_next) {
		if (getnameinfo(it->ai_addr, it->ai_addrlen, addr, sizeof(addr), NULL, 0,
				NI_NUMERICHOST) != 0)
			continue;
		n += snprintf(entry + n, sizeof(entry) - (size_t)n,
			      it->ai_family == AF_INET6 ? "%s[%s]" : "%s%s",
			      entry[n - 1] == ':' ? "" : ",", addr);
	}
	if (n > 0 && (size_t)n < sizeof(entry) && entry[n - 1] != ':')
		l = curl_slist_append(NULL, entry);
out:
	if (ai)
		freeaddrinfo(ai);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return l;
}

/* One attempt on base URL i of c, with handle h. */
static void attempt(CURL *h, CURLSH *sh, const req_conf *c, size_t i, const char *method,
		    const char *path, struct curl_slist *headers, const char *body,
		    mod_http_resp *resp)
{
	struct curl_slist *resolve = NULL;
	char url[URL_MAX + 256], errbuf[CURL_ERROR_SIZE];
	long sent = 0;
	CURLcode rc;
	int n;

	memset(resp, 0, sizeof(*resp));
	rs_buf_init(&resp->body, MOD_HTTP_MAX_BODY);
	errbuf[0] = '\0';
	resp->nothing_sent = 1;
	n = snprintf(url, sizeof(url), "%s/api/v1%s", c->urls[i], path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		fail_transport(resp, "request url too long");
		return;
	}
	curl_easy_reset(h);
	if (c->resolve_in_caller)
		resolve = resolve_here(url);
	if (set_options(h, sh, c, c->plain[i], method, url, headers, body, resp, errbuf) < 0 ||
	    (resolve && curl_easy_setopt(h, CURLOPT_RESOLVE, resolve) != CURLE_OK)) {
		fail_transport(resp, "libcurl refused an option");
		goto out;
	}
	rc = curl_easy_perform(h);
	if (curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK || sent != 0)
		resp->nothing_sent = 0;
	if (rc == CURLE_WRITE_ERROR && resp->body.failed) {
		fail_transport(resp, "response larger than 1 MiB");
	} else if (rc != CURLE_OK) {
		fail_transport(resp, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		resp->may_fail_over = 1;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		if (resp->status >= 400)
			parse_error_body(resp);
		resp->may_fail_over =
			resp->status == 502 || resp->status == 503 || resp->status == 504;
	}
out:
	/* The handle keeps no pointer to our stack or headers past here. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_RESOLVE, NULL);
	curl_slist_free_all(resolve);
}

/* Whether the next URL may be tried after resp: a GET, a login or a
 * request with an Idempotency-Key may be repeated; anything else only when
 * it surely did nothing (nothing sent, or 503). */
static int fail_over(const mod_http_resp *resp, const char *method, const char *path,
		     const char *idem_key)
{
	int repeatable = strcmp(method, "GET") == 0 || idem_key || strncmp(path, "/auth/", 6) == 0;

	if (!resp->may_fail_over)
		return 0;
	return repeatable || resp->nothing_sent || resp->status == 503;
}

static void describe(const mod_http_resp *resp, char *out, size_t len)
{
	if (resp->transport_failed)
		snprintf(out, len, "%s", resp->transport_error);
	else
		snprintf(out, len, "HTTP %ld%s%s", resp->status, resp->reason[0] ? " " : "",
			 resp->reason);
}

/* The request ended on URL i, having started at c->cur: i becomes the
 * current URL, logged when this call is the one that moves it there. */
static void settle(const req_conf *c, size_t i, const char *why)
{
	int moved = 0;

	if (i == c->cur)
		return;
	pthread_mutex_lock(&pool_mu);
	if (http_conf && url_cur != i && i < http_conf->n_urls) {
		url_cur = i;
		moved = 1;
	}
	pthread_mutex_unlock(&pool_mu);
	if (moved)
		rs_warn("switched to %s (url %zu of %zu): %s failed: %s", c->urls[i], i + 1,
			c->n_urls, c->urls[c->cur], why);
}

void mod_http_request(const char *method, const char *path, const char *bearer, const char *body,
		      const char *idem_key, mod_http_resp *resp)
{
	struct curl_slist *headers = NULL;
	char why[320] = "";
	CURLSH *sh = NULL;
	CURL *h = NULL;
	req_conf conf;
	size_t k, i = 0;

	memset(resp, 0, sizeof(*resp));
	rs_buf_init(&resp->body, MOD_HTTP_MAX_BODY);
	h = pool_get(&sh, &conf);
	if (!sh) {
		fail_transport(resp, "no server url configured");
		return;
	}
	headers = headers_new(bearer, body != NULL, idem_key);
	if (!headers || !h) {
		fail_transport(resp, "out of memory");
		goto out;
	}
	for (k = 0; k < conf.n_urls; k++) {
		char now[sizeof(why)];

		i = (conf.cur + k) % conf.n_urls;
		attempt(h, sh, &conf, i, method, path, headers, body, resp);
		if (k + 1 == conf.n_urls || !fail_over(resp, method, path, idem_key))
			break;
		describe(resp, now, sizeof(now));
		if (k == 0) /* what the switch, if any, is logged with */
			rs_strlcpy(why, now, sizeof(why));
		rs_info("%s %s: %s failed (%s); trying %s", method, path, conf.urls[i], now,
			conf.urls[(i + 1) % conf.n_urls]);
		rs_buf_wipe(&resp->body);
	}
	if (!resp->may_fail_over)
		settle(&conf, i, why);
	else if (conf.n_urls > 1 && resp->transport_failed) {
		char msg[URL_MAX + sizeof(resp->transport_error) + 64];

		snprintf(msg, sizeof(msg), "%zu urls tried, the last (%s): %s", k + 1, conf.urls[i],
			 resp->transport_error);
		rs_strlcpy(resp->transport_error, msg, sizeof(resp->transport_error));
	}
out:
	headers_free(headers);
	if (h && sh)
		pool_put(h, sh);
	else if (h)
		curl_easy_cleanup(h);
}

void mod_http_resp_free(mod_http_resp *resp)
{
	if (!resp)
		return;
	rs_buf_free(&resp->body);
}
