/* The pieces of an HTTP request that are rsign's own to read, as pure
 * functions of their bytes (no libmicrohttpd, no allocation): the raw
 * request target, route patterns, the bearer header, framing headers,
 * whole-number query values, and message text made safe for a JSON body.
 * tests/fuzz/fuzz_http.c links this file alone. */
#ifndef SRV_HTTP_PARSE_H
#define SRV_HTTP_PARSE_H
#include <stddef.h>

#define SRV_MAX_PARAMS 3

/* 1 when path matches pattern segment by segment ('*' captures one
 * non-empty segment); captured segments point into buf, which holds the
 * path split at its slashes. 0 when it does not match or does not fit. */
int srv_route_match(const char *pattern, const char *path, char *buf, size_t buflen,
		    const char **params);

/* What the request target says about itself before it is unescaped. */
typedef enum {
	SRV_URI_OK = 0,
	SRV_URI_BAD_PATH,  /* %00, %2F, a malformed escape or a control character in the path */
	SRV_URI_BAD_QUERY, /* %00 or a control byte in the query */
} srv_uri_verdict;

/* Checks a raw request target ("/api/v1/x%20y?a=b"), as the client sent
 * it: unescaped, a NUL would cut the path short and %2F would make one
 * segment look like two, so both route a request somewhere else. */
srv_uri_verdict srv_uri_check(const char *raw);

/* An "Authorization" header's bearer token. */
typedef enum {
	SRV_BEARER_OK = 0,
	SRV_BEARER_MISSING,   /* no header, or not the Bearer scheme */
	SRV_BEARER_MALFORMED, /* a token shorter than 8 or longer than 256 */
} srv_bearer_verdict;

#define SRV_BEARER_MIN 8
#define SRV_BEARER_MAX 256

/* "Bearer <token>" (the scheme in any case, spaces before the token) ->
 * the token, pointing into header, and its length. */
srv_bearer_verdict srv_bearer_parse(const char *header, const char **token, size_t *len);

/* How the body's length is framed, gathered header line by header line.
 * Two Content-Length lines, or Content-Length with Transfer-Encoding, or a
 * Transfer-Encoding other than exactly "chunked", are read one way by one
 * proxy and another way by the next: request smuggling. */
typedef struct {
	unsigned content_length;    /* Content-Length lines */
	unsigned transfer_encoding; /* Transfer-Encoding lines */
	int bad_value;		    /* a length not all digits, a coding not "chunked" */
} srv_framing;

/* Adds one header line (name as sent, value with its spaces trimmed). */
void srv_framing_add(srv_framing *f, const char *name, const char *value);
/* 1 when the lines added frame the body ambiguously. */
int srv_framing_ambiguous(const srv_framing *f);

/* A whole number written in 1 to 19 decimal digits and nothing else,
 * within lo..hi: 0 and *out, or -1. */
int srv_parse_count(const char *s, size_t lo, size_t hi, size_t *out);

/* Copies in into out (outlen >= 4) as valid UTF-8: each byte that does not
 * begin a valid sequence becomes U+FFFD; a sequence that would not fit is
 * left out rather than cut. Returns the length written (NUL not counted). */
size_t srv_utf8_clean(const char *in, char *out, size_t outlen);

#endif
