/* The HTTPS client: libcurl easy handles kept in a small pool so that
 * keep-alive connections are reused across C_Sign calls and threads, with a
 * share for DNS and TLS sessions so a new handle resumes TLS. Certificate
 * verification is always on (ca_file, else the system store); connect and
 * whole-request timeouts are explicit; response bodies stop at 1 MiB.
 * The pool is a table like any other and is guarded by the global lock,
 * which is released before any transfer. */
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
#include "rsign/util.h"

#include "module.h"
#include "http.h"

#define POOL_MAX 8
#define URL_MAX 2048

typedef struct share_state {
	CURLSH *sh;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	struct share_state *next; /* on the retired list */
} share_state;

/* What one request needs of the configuration, copied under the lock: a
 * C_Finalize in another thread may free the configuration meanwhile. */
typedef struct req_conf {
	char url[URL_MAX];
	char ca_file[4097];
	int plain_http, resolve_in_caller;
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

/* The lock is held. A share still used by a running transfer (C_Finalize
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

/* Frees the retired shares no handle uses any more; the lock is held. */
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

int mod_http_init(const mod_config *conf, int no_threads)
{
	http_conf = conf;
	resolve_in_caller = no_threads;
	read_identity();
	share = share_new();
	return share ? 0 : -1;
}

/* Called with the global lock held. */
void mod_http_free(void)
{
	int i;

	for (i = 0; i < pool_n; i++)
		curl_easy_cleanup(pool[i]);
	pool_n = 0;
	share_free(share);
	share = NULL;
	http_conf = NULL;
}

/* What a forked child inherited, kept (not freed: freeing would shut down
 * TLS on sockets the parent still uses) and reachable. Not static, so that
 * the stores are not optimised away. */
struct {
	CURL *pool[POOL_MAX];
	share_state *share;
} mod_http_abandoned;

void mod_http_forget(void)
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

	mod_lock();
	*sh = share && http_conf && http_conf->url ? share->sh : NULL;
	if (*sh) {
		rs_strlcpy(rc->url, http_conf->url, sizeof(rc->url));
		rs_strlcpy(rc->ca_file, http_conf->ca_file ? http_conf->ca_file : "",
			   sizeof(rc->ca_file));
		rc->plain_http = http_conf->plain_http;
		rc->resolve_in_caller = resolve_in_caller;
		rc->connect_ms = (long)(http_conf->connect_timeout * 1000);
		rc->request_ms = (long)(http_conf->request_timeout * 1000);
		if (pool_n > 0)
			h = pool[--pool_n];
	}
	mod_unlock();
	if (!*sh)
		return NULL;
	return h ? h : curl_easy_init();
}

static void pool_put(CURL *h, CURLSH *sh)
{
	mod_lock();
	/* A handle from before a C_Finalize (or made for another share) is
	 * not kept. */
	if (share && share->sh == sh && pool_n < POOL_MAX) {
		pool[pool_n++] = h;
		h = NULL;
	}
	mod_unlock();
	if (h) {
		curl_easy_cleanup(h);
		mod_lock();
		retired_sweep_inlock();
		mod_unlock();
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

static struct curl_slist *headers_new(const char *bearer, int has_body)
{
	struct curl_slist *l = NULL, *n;
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

static int set_options(CURL *h, CURLSH *sh, const req_conf *c, const char *method, const char *url,
		       struct curl_slist *headers, const char *body, mod_http_resp *resp,
		       char *errbuf)
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
	SET(CURLOPT_PROTOCOLS_STR, c->plain_http ? "http" : "https");
#else
	SET(CURLOPT_PROTOCOLS, c->plain_http ? (long)CURLPROTO_HTTP : (long)CURLPROTO_HTTPS);
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

void mod_http_request(const char *method, const char *path, const char *bearer, const char *body,
		      mod_http_resp *resp)
{
	struct curl_slist *resolve = NULL;
	char url[URL_MAX], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers = NULL;
	CURLSH *sh = NULL;
	CURL *h = NULL;
	req_conf conf;
	CURLcode rc;
	int n;

	memset(resp, 0, sizeof(*resp));
	rs_buf_init(&resp->body, MOD_HTTP_MAX_BODY);
	errbuf[0] = '\0';
	h = pool_get(&sh, &conf);
	if (!sh) {
		fail_transport(resp, "no server url configured");
		return;
	}
	n = snprintf(url, sizeof(url), "%s/api/v1%s", conf.url, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		fail_transport(resp, "request url too long");
		goto out;
	}
	headers = headers_new(bearer, body != NULL);
	if (!headers || !h) {
		fail_transport(resp, "out of memory");
		goto out;
	}
	curl_easy_reset(h);
	if (conf.resolve_in_caller)
		resolve = resolve_here(url);
	if (set_options(h, sh, &conf, method, url, headers, body, resp, errbuf) < 0 ||
	    (resolve && curl_easy_setopt(h, CURLOPT_RESOLVE, resolve) != CURLE_OK)) {
		fail_transport(resp, "libcurl refused an option");
		goto out;
	}
	rc = curl_easy_perform(h);
	if (rc == CURLE_WRITE_ERROR && resp->body.failed) {
		fail_transport(resp, "response larger than 1 MiB");
	} else if (rc != CURLE_OK) {
		fail_transport(resp, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		if (resp->status >= 400)
			parse_error_body(resp);
	}
	/* The handle keeps no pointer to our stack or headers past here. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_RESOLVE, NULL);
out:
	curl_slist_free_all(resolve);
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
