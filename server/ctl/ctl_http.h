/* rsignctl's HTTP client: one libcurl handle per run, requests under
 * <base URL>/api/v1, bounded JSON responses, and the one place where HTTP and
 * transport failures become messages on stderr and exit codes. */
#ifndef RSIGN_CTL_HTTP_H
#define RSIGN_CTL_HTTP_H
#include <stdarg.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "rsign/buf.h"

/* rsignctl's exit codes; 64 and up follow sysexits.h. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_SERVER = 1,	 /* the server answered with an error status */
	CTL_EXIT_TRANSPORT = 2,	 /* no usable answer: connect, TLS, timeout, size */
	CTL_EXIT_USAGE = 64,	 /* bad command line */
	CTL_EXIT_DATAERR = 65,	 /* an input file's content is unusable */
	CTL_EXIT_NOINPUT = 66,	 /* an input file cannot be read */
	CTL_EXIT_SOFTWARE = 70,	 /* out of memory, internal error */
	CTL_EXIT_CANTCREAT = 73, /* an output file cannot be written */
	CTL_EXIT_CONFIG = 78,	 /* no URL, no token, bad configuration file */
};

#define CTL_HTTP_MAX_RESPONSE (4u << 20)
#define CTL_HTTP_MAX_PATH 4096

typedef struct ctl_http ctl_http;

/* Called with the parsed body of a 2xx response (NULL when the body is
 * empty). The tree belongs to ctl_http_call, which frees it afterwards.
 * Returns an exit code. */
typedef int (*ctl_http_cb)(const cJSON *body, void *arg);

/* url is "https://host[:port]" (plain http only for a loopback host); ca_file
 * may be NULL for the system store; token may be NULL for calls without
 * authentication and is copied, then wiped by ctl_http_free. Prints the
 * reason and returns an exit code on failure. */
int ctl_http_new(const char *url, const char *ca_file, const char *token, ctl_http **out)
	__attribute__((warn_unused_result));
void ctl_http_free(ctl_http *h);

/* Appends to b the path fmt where each "%s" is replaced by its argument
 * URL-encoded as one path segment; "%%" is a literal '%'. Prints the reason
 * and returns an exit code on failure (an empty, "." or ".." segment is a
 * usage error). */
int ctl_http_pathf(ctl_http *h, rs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), warn_unused_result));
int ctl_http_vpathf(ctl_http *h, rs_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0), warn_unused_result));
/* Appends "?name=value" or "&name=value" with value URL-encoded. Prints
 * the reason and returns an exit code on failure. */
int ctl_http_query(ctl_http *h, rs_buf *b, const char *name, const char *value)
	__attribute__((warn_unused_result));

/* Sends "Idempotency-Key: key" with the following calls (NULL: stops).
 * key is copied. 0, or -1 when out of memory. */
int ctl_http_set_idempotency_key(ctl_http *h, const char *key) __attribute__((warn_unused_result));

/* Sends method to /api/v1 + path with req as the JSON body (NULL: none).
 * On a 2xx status calls cb; on an error status prints
 * "rsignctl: 403 ApprovalRequired: message (reqId ...)" and returns
 * CTL_EXIT_SERVER; on a transport failure prints curl's message and returns
 * CTL_EXIT_TRANSPORT. */
int ctl_http_call(ctl_http *h, const char *method, const char *path, const cJSON *req,
		  ctl_http_cb cb, void *arg) __attribute__((warn_unused_result));

/* GETs path and streams a 2xx body into the new file out (created 0600,
 * refused when it exists), checking it against the response's
 * X-Content-SHA256 header, then fsyncs it; *size gets its length. An
 * error status prints the error as ctl_http_call does. Nothing is left at
 * out on any failure. Returns an exit code. */
int ctl_http_download(ctl_http *h, const char *path, const char *out, long long *size)
	__attribute__((warn_unused_result));

/* Wipes every string in the tree, then deletes it: for trees that held
 * tokens or secrets. NULL-safe. */
void ctl_json_delete_wiped(cJSON *tree);

/* Writes s to f with control characters replaced by '?', so text from the
 * server cannot drive the terminal; newlines kept when keep_nl. */
void ctl_put_safe(FILE *f, const char *s, int keep_nl);

#endif
