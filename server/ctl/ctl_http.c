/* rsignctl's HTTP client over libcurl: base URL checks, the Bearer header,
 * bounded responses, downloads checked by their SHA-256, and the translation
 * of error bodies and transport failures into one stderr line and an exit
 * code. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include "rsign/base64.h"
#include "rsign/json.h"
#include "rsign/url.h"
#include "rsign/util.h"
#include "server/ctl/ctl_http.h"

#define API_PREFIX "/api/v1"
#define CONNECT_TIMEOUT_S 10L
#define TOTAL_TIMEOUT_S 60L
#define ERROR_FIELD_MAX 2048

struct ctl_http {
	CURL *curl;
	char *base;    /* url without trailing '/', plus API_PREFIX */
	char *ca_file; /* NULL: the system store */
	char *auth;    /* "Authorization: Bearer <token>", wiped on free; NULL: none */
	char *idem;    /* "Idempotency-Key: <key>"; NULL: none */
	char errbuf[CURL_ERROR_SIZE];
};

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/* The rule of include/rsign/url.h (shared with the module). */
static int check_url(const char *url)
{
	char why[256];
	int plain, r = rs_url_check(url, &plain, why, sizeof(why));

	if (r == 0)
		return CTL_EXIT_OK;
	fprintf(stderr, "rsignctl: the server URL is refused: %s\n", why);
	return r == -2 ? CTL_EXIT_SOFTWARE : CTL_EXIT_CONFIG;
}

/* Tokens travel in a header: printable ASCII without spaces only. */
static int token_ok(const char *t)
{
	if (!*t)
		return 0;
	for (; *t; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return 0;
	return 1;
}

int ctl_http_new(const char *url, const char *ca_file, const char *token, ctl_http **out)
{
	ctl_http *h;
	rs_buf b;
	size_t n;
	int rc;

	*out = NULL;
	/* One handle per process; rsignctl makes at most a few calls per run. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "rsignctl: cannot initialise libcurl\n");
		return CTL_EXIT_SOFTWARE;
	}
	rc = check_url(url);
	if (rc == CTL_EXIT_OK && token && !token_ok(token)) {
		fprintf(stderr, "rsignctl: the token contains characters a token cannot have\n");
		rc = CTL_EXIT_CONFIG;
	}
	if (rc != CTL_EXIT_OK) {
		curl_global_cleanup();
		return rc;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		curl_global_cleanup();
		goto oom;
	}
	h->curl = curl_easy_init();
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	rs_buf_init(&b, n + sizeof(API_PREFIX));
	(void)rs_buf_append(&b, url, n);
	(void)rs_buf_append_str(&b, API_PREFIX);
	h->base = rs_buf_ok(&b) ? (char *)rs_buf_steal(&b, NULL) : NULL;
	rs_buf_free(&b);
	h->ca_file = ca_file ? dup_str(ca_file) : NULL;
	if (token) {
		rs_buf_init(&b, strlen(token) + 64);
		(void)rs_buf_append_str(&b, "Authorization: Bearer ");
		(void)rs_buf_append_str(&b, token);
		h->auth = rs_buf_ok(&b) ? (char *)rs_buf_steal(&b, NULL) : NULL;
		rs_buf_wipe(&b);
	}
	if (!h->curl || !h->base || (ca_file && !h->ca_file) || (token && !h->auth)) {
		ctl_http_free(h);
		goto oom;
	}
	*out = h;
	return CTL_EXIT_OK;
oom:
	fprintf(stderr, "rsignctl: out of memory\n");
	return CTL_EXIT_SOFTWARE;
}

void ctl_http_free(ctl_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->ca_file);
	rs_free_secret(h->auth);
	free(h->idem);
	free(h);
	curl_global_cleanup();
}

static int append_escaped(ctl_http *h, rs_buf *b, const char *s)
{
	char *e = curl_easy_escape(h->curl, s, 0);
	int r;

	if (!e) {
		b->failed = 1; /* keep the buffer's failure sticky */
		return -1;
	}
	r = rs_buf_append_str(b, e);
	curl_free(e);
	return r;
}

int ctl_http_pathf(ctl_http *h, rs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ctl_http_vpathf(h, b, fmt, ap);
	va_end(ap);
	return rc;
}

int ctl_http_vpathf(ctl_http *h, rs_buf *b, const char *fmt, va_list ap)
{
	const char *p, *arg;
	int rc = CTL_EXIT_OK;

	for (p = fmt; *p && rc == CTL_EXIT_OK; p++) {
		if (p[0] != '%') {
			(void)rs_buf_append(b, p, 1);
		} else if (p[1] == '%') {
			(void)rs_buf_append(b, "%", 1);
			p++;
		} else if (p[1] == 's') {
			arg = va_arg(ap, const char *);
			/* Dot segments would be folded away and name another URL. */
			if (!*arg || strcmp(arg, ".") == 0 || strcmp(arg, "..") == 0) {
				fprintf(stderr, "rsignctl: '%s' is not a valid identifier\n", arg);
				rc = CTL_EXIT_USAGE;
			} else {
				(void)append_escaped(h, b, arg);
			}
			p++;
		} else {
			fprintf(stderr, "rsignctl: internal error: path format %s\n", fmt);
			rc = CTL_EXIT_SOFTWARE;
		}
	}
	if (rc == CTL_EXIT_OK && !rs_buf_ok(b)) {
		fprintf(stderr, "rsignctl: cannot build the request path (too long?)\n");
		rc = CTL_EXIT_USAGE;
	}
	return rc;
}

int ctl_http_query(ctl_http *h, rs_buf *b, const char *name, const char *value)
{
	(void)rs_buf_append_str(b, strchr(rs_buf_str(b), '?') ? "&" : "?");
	(void)append_escaped(h, b, name);
	(void)rs_buf_append_str(b, "=");
	(void)append_escaped(h, b, value);
	if (!rs_buf_ok(b)) {
		fprintf(stderr, "rsignctl: cannot build the request path (too long?)\n");
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	rs_buf *b = arg;

	/* A short count makes curl stop with CURLE_WRITE_ERROR. */
	if (rs_buf_append(b, p, size * n) < 0)
		return 0;
	return size * n;
}

#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if ((res = curl_easy_setopt(h->curl, opt, val)) != CURLE_OK)                       \
			return res;                                                                \
	} while (0)

static CURLcode setup(ctl_http *h, const char *method, const char *url, const char *body,
		      struct curl_slist *hdrs, rs_buf *resp)
{
	CURLcode res;

	curl_easy_reset(h->curl);
	h->errbuf[0] = '\0';
	SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
	SETOPT(CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, "https,http");
#else
	SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	/* Verification is never optional; there is no switch to turn it off. */
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		SETOPT(CURLOPT_CAINFO, h->ca_file);
	SETOPT(CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	SETOPT(CURLOPT_TIMEOUT, TOTAL_TIMEOUT_S);
	SETOPT(CURLOPT_USERAGENT, "rsignctl/" RSIGN_VERSION);
	SETOPT(CURLOPT_HTTPHEADER, hdrs);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, resp);
	if (strcmp(method, "GET") == 0) {
		SETOPT(CURLOPT_HTTPGET, 1L);
		return CURLE_OK;
	}
	if (strcmp(method, "POST") != 0)
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "POST") == 0) {
		SETOPT(CURLOPT_POSTFIELDS, body ? body : "");
		SETOPT(CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}
	return CURLE_OK;
}

#undef SETOPT

/* curl copies header strings; the Authorization copy is wiped here. */
static void free_headers_wiped(struct curl_slist *l)
{
	struct curl_slist *i;

	for (i = l; i; i = i->next)
		rs_wipe(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static int add_header(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return -1;
	*l = n;
	return 0;
}

static const char *error_field(const cJSON *tree, const char *name)
{
	const char *v = NULL;

	if (!cJSON_IsObject(tree) || rs_json_str(tree, name, 0, ERROR_FIELD_MAX, &v) != RS_JSON_OK)
		return NULL;
	return v;
}

static void print_error(long status, const cJSON *tree)
{
	const char *err = error_field(tree, "error");
	const char *why = error_field(tree, "reason");
	const char *msg = error_field(tree, "message");
	const char *rid = error_field(tree, "reqId");

	fprintf(stderr, "rsignctl: %ld", status);
	if (err) {
		fputc(' ', stderr);
		ctl_put_safe(stderr, err, 0);
	}
	if (err && why) {
		fputs(" (", stderr);
		ctl_put_safe(stderr, why, 0);
		fputc(')', stderr);
	}
	if (msg) {
		fputs(": ", stderr);
		ctl_put_safe(stderr, msg, 0);
	}
	if (!err && !msg)
		fputs(status >= 300 && status < 400 ? " unexpected redirect" : " (no error body)",
		      stderr);
	if (rid) {
		fputs(" (reqId ", stderr);
		ctl_put_safe(stderr, rid, 0);
		fputc(')', stderr);
	}
	fputc('\n', stderr);
}

int ctl_http_set_idempotency_key(ctl_http *h, const char *key)
{
	static const char name[] = "Idempotency-Key: ";
	char *line = NULL;

	if (key) {
		size_t n = sizeof(name) + strlen(key);

		if (!(line = malloc(n)))
			return -1;
		snprintf(line, n, "%s%s", name, key);
	}
	free(h->idem);
	h->idem = line;
	return 0;
}

int ctl_http_call(ctl_http *h, const char *method, const char *path, const cJSON *req,
		  ctl_http_cb cb, void *arg)
{
	rs_buf url, resp;
	struct curl_slist *hdrs = NULL;
	char *body = NULL;
	cJSON *tree = NULL;
	long status = 0;
	CURLcode res;
	int rc;

	rs_buf_init(&url, strlen(h->base) + CTL_HTTP_MAX_PATH);
	rs_buf_init(&resp, CTL_HTTP_MAX_RESPONSE);
	(void)rs_buf_append_str(&url, h->base);
	(void)rs_buf_append_str(&url, path);
	if (!rs_buf_ok(&url)) {
		fprintf(stderr, "rsignctl: request path too long\n");
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (req && !(body = rs_json_print(req)))
		goto oom;
	if (add_header(&hdrs, "Accept: application/json") < 0 ||
	    (body && add_header(&hdrs, "Content-Type: application/json") < 0) ||
	    (h->auth && add_header(&hdrs, h->auth) < 0) ||
	    (h->idem && add_header(&hdrs, h->idem) < 0))
		goto oom;
	res = setup(h, method, rs_buf_str(&url), body, hdrs, &resp);
	if (res == CURLE_OK)
		res = curl_easy_perform(h->curl);
	if (res != CURLE_OK) {
		if (!rs_buf_ok(&resp))
			fprintf(stderr, "rsignctl: the server's response is larger than %u MiB\n",
				CTL_HTTP_MAX_RESPONSE >> 20);
		else
			fprintf(stderr, "rsignctl: %s\n",
				h->errbuf[0] ? h->errbuf : curl_easy_strerror(res));
		rc = CTL_EXIT_TRANSPORT;
		goto out;
	}
	if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
		fprintf(stderr, "rsignctl: no HTTP status in the response\n");
		rc = CTL_EXIT_TRANSPORT;
		goto out;
	}
	if (resp.len > 0)
		tree = rs_json_parse((const char *)resp.data, resp.len, RS_JSON_MAX_DEPTH);
	if (status < 200 || status >= 300) {
		print_error(status, tree);
		rc = CTL_EXIT_SERVER;
	} else if (resp.len > 0 && !tree) {
		fprintf(stderr, "rsignctl: %ld response is not valid JSON\n", status);
		rc = CTL_EXIT_SERVER;
	} else {
		rc = cb ? cb(tree, arg) : CTL_EXIT_OK;
	}
	goto out;
oom:
	fprintf(stderr, "rsignctl: out of memory\n");
	rc = CTL_EXIT_SOFTWARE;
out:
	ctl_json_delete_wiped(tree);
	rs_buf_wipe(&resp);
	rs_buf_free(&url);
	rs_free_secret(body);
	free_headers_wiped(hdrs);
	return rc;
}

/* ---- downloads (rsignctl backup) --------------------------------------- */

typedef struct {
	ctl_http *h;
	int fd;		/* the file being written */
	rs_buf err;	/* the body of an error status, bounded */
	EVP_MD_CTX *md; /* SHA-256 of what was written */
	long long size;
	char want[65]; /* X-Content-SHA256 */
	int failed;    /* a write failed: errno in werr */
	int werr;
} download;

static size_t on_download_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "x-content-sha256:";
	download *d = arg;
	size_t len = size * n;

	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t i = sizeof(name) - 1, j = 0;
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		while (i < len && j < sizeof(d->want) - 1 && isxdigit((unsigned char)p[i]))
			d->want[j++] = p[i++];
		d->want[j] = '\0';
	}
	return len;
}

static size_t on_download_body(char *p, size_t size, size_t n, void *arg)
{
	download *d = arg;
	size_t len = size * n, off = 0;
	long status = 0;

	if (curl_easy_getinfo(d->h->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	    status < 200 || status >= 300)
		return rs_buf_append(&d->err, p, len) < 0 ? 0 : len;
	while (off < len) {
		ssize_t w = write(d->fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			d->failed = 1;
			d->werr = w < 0 ? errno : ENOSPC;
			return 0;
		}
		off += (size_t)w;
	}
	if (EVP_DigestUpdate(d->md, p, len) != 1)
		return 0;
	d->size += (long long)len;
	return len;
}

static int download_check(download *d, const char *out)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char got[65];

	if (EVP_DigestFinal_ex(d->md, md, &mdlen) != 1 || mdlen != sizeof(md)) {
		fprintf(stderr, "rsignctl: cannot hash the download\n");
		return CTL_EXIT_SOFTWARE;
	}
	rs_hex_encode(md, sizeof(md), got);
	if (!d->want[0]) {
		fprintf(stderr, "rsignctl: the server sent no X-Content-SHA256 header\n");
		return CTL_EXIT_TRANSPORT;
	}
	if (strcasecmp(got, d->want) != 0) {
		fprintf(stderr, "rsignctl: %s: the download's SHA-256 is %s, the server's %s\n",
			out, got, d->want);
		return CTL_EXIT_TRANSPORT;
	}
	if (fsync(d->fd) != 0) {
		fprintf(stderr, "rsignctl: %s: %s\n", out, strerror(errno));
		return CTL_EXIT_CANTCREAT;
	}
	return CTL_EXIT_OK;
}

int ctl_http_download(ctl_http *h, const char *path, const char *out, long long *size)
{
	download d = {.h = h, .fd = -1};
	rs_buf url;
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode res;
	int rc;

	*size = 0;
	rs_buf_init(&url, strlen(h->base) + CTL_HTTP_MAX_PATH);
	rs_buf_init(&d.err, 64 * 1024);
	(void)rs_buf_append_str(&url, h->base);
	(void)rs_buf_append_str(&url, path);
	if (!(d.md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) != 1 ||
	    (h->auth && add_header(&hdrs, h->auth) < 0)) {
		fprintf(stderr, "rsignctl: out of memory\n");
		rc = CTL_EXIT_SOFTWARE;
		goto out;
	}
	if ((d.fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "rsignctl: %s: %s\n", out, strerror(errno));
		rc = CTL_EXIT_CANTCREAT;
		goto out;
	}
	res = setup(h, "GET", rs_buf_str(&url), NULL, hdrs, NULL);
	/* a large database takes longer than one API call may: no total
	 * timeout, but a transfer that stalls for a minute ends */
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 0L);
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, 60L);
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_download_body);
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &d);
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_download_header);
	if (res == CURLE_OK)
		res = curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &d);
	if (res == CURLE_OK)
		res = curl_easy_perform(h->curl);
	if (res != CURLE_OK) {
		if (d.failed)
			fprintf(stderr, "rsignctl: %s: %s\n", out, strerror(d.werr));
		else
			fprintf(stderr, "rsignctl: %s\n",
				h->errbuf[0] ? h->errbuf : curl_easy_strerror(res));
		rc = d.failed ? CTL_EXIT_CANTCREAT : CTL_EXIT_TRANSPORT;
		goto out;
	}
	if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
		fprintf(stderr, "rsignctl: no HTTP status in the response\n");
		rc = CTL_EXIT_TRANSPORT;
		goto out;
	}
	if (status < 200 || status >= 300) {
		cJSON *tree = d.err.len ? rs_json_parse((const char *)d.err.data, d.err.len,
							RS_JSON_MAX_DEPTH)
					: NULL;
		print_error(status, tree);
		cJSON_Delete(tree);
		rc = CTL_EXIT_SERVER;
		goto out;
	}
	if ((rc = download_check(&d, out)) == CTL_EXIT_OK)
		*size = d.size;
out:
	if (d.fd >= 0 && close(d.fd) != 0 && rc == CTL_EXIT_OK) {
		fprintf(stderr, "rsignctl: %s: %s\n", out, strerror(errno));
		rc = CTL_EXIT_CANTCREAT;
	}
	if (d.fd >= 0 && rc != CTL_EXIT_OK)
		unlink(out);
	EVP_MD_CTX_free(d.md);
	rs_buf_free(&d.err);
	rs_buf_free(&url);
	free_headers_wiped(hdrs);
	return rc;
}

static void wipe_strings(cJSON *n)
{
	cJSON *c;

	if (n->valuestring)
		rs_wipe(n->valuestring, strlen(n->valuestring));
	for (c = n->child; c; c = c->next)
		wipe_strings(c);
}

void ctl_json_delete_wiped(cJSON *tree)
{
	if (!tree)
		return;
	wipe_strings(tree);
	cJSON_Delete(tree);
}

void ctl_put_safe(FILE *f, const char *s, int keep_nl)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p == '\n' && keep_nl) {
			fputc('\n', f);
		} else if (*p < 0x20 || *p == 0x7f) {
			fputc('?', f);
		} else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* C1 controls (U+0080..U+009F) include CSI. */
			fputc('?', f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
}
