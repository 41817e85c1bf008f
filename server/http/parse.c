/* Pure readers of a request's pieces (parse.h): what libmicrohttpd hands
 * over raw, checked before anything routes or answers on it. */
#include <string.h>
#include <strings.h>

#include "rsign/json.h"
#include "parse.h"

int srv_route_match(const char *pattern, const char *path, char *buf, size_t buflen,
		    const char **params)
{
	size_t n = strlen(path);
	if (path[0] != '/' || n > buflen)
		return 0;
	memcpy(buf, path + 1, n); /* with its NUL */
	int np = 0;
	const char *p = pattern + 1;
	char *s = buf;
	for (;;) {
		size_t plen = strcspn(p, "/");
		char *slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (*s == '\0')
			return 0;
		if (plen == 1 && *p == '*') {
			if (np >= SRV_MAX_PARAMS)
				return 0;
			params[np++] = s;
		} else if (strlen(s) != plen || memcmp(p, s, plen) != 0) {
			return 0;
		}
		p += plen;
		if (*p == '\0' || !slash)
			return *p == '\0' && !slash;
		p++;
		s = slash + 1;
	}
}

static int hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

srv_uri_verdict srv_uri_check(const char *raw)
{
	int query = 0;
	for (const char *p = raw; *p; p++) {
		unsigned char c = (unsigned char)*p;
		srv_uri_verdict bad = query ? SRV_URI_BAD_QUERY : SRV_URI_BAD_PATH;
		if (c < 0x20 || c == 0x7f)
			return bad;
		if (c == '?' && !query) {
			query = 1;
			continue;
		}
		if (c != '%')
			continue;
		if (!hex_digit(p[1]) || !hex_digit(p[2])) {
			/* a query's stray '%' reads as itself; a path's would
			 * route on text the client did not mean */
			if (!query)
				return bad;
			continue;
		}
		if (p[1] == '0' && p[2] == '0')
			return bad;
		/* a path never holds a slash inside a segment, nor a control
		 * character (which would also reach the log unescaped) */
		if (!query && ((p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) || p[1] == '0' ||
			       p[1] == '1' || (p[1] == '7' && (p[2] == 'f' || p[2] == 'F'))))
			return bad;
		p += 2;
	}
	return SRV_URI_OK;
}

srv_bearer_verdict srv_bearer_parse(const char *header, const char **token, size_t *len)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return SRV_BEARER_MISSING;
	const char *t = header + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	if (n < SRV_BEARER_MIN || n > SRV_BEARER_MAX)
		return SRV_BEARER_MALFORMED;
	*token = t;
	*len = n;
	return SRV_BEARER_OK;
}

/* name equals want ignoring case and the spaces or tabs a lenient parser
 * may have kept before the colon */
static int header_is(const char *name, const char *want)
{
	size_t n = strlen(want);
	if (strncasecmp(name, want, n) != 0)
		return 0;
	return name[n + strspn(name + n, " \t")] == '\0';
}

void srv_framing_add(srv_framing *f, const char *name, const char *value)
{
	if (!name)
		return;
	if (header_is(name, "Content-Length")) {
		f->content_length++;
		size_t digits = value ? strspn(value, "0123456789") : 0;
		if (digits == 0 || value[digits] != '\0')
			f->bad_value = 1;
	} else if (header_is(name, "Transfer-Encoding")) {
		f->transfer_encoding++;
		if (!value || strcasecmp(value, "chunked") != 0)
			f->bad_value = 1;
	}
}

int srv_framing_ambiguous(const srv_framing *f)
{
	return f->content_length > 1 || f->transfer_encoding > 1 ||
	       (f->content_length && f->transfer_encoding) || f->bad_value;
}

int srv_parse_count(const char *s, size_t lo, size_t hi, size_t *out)
{
	size_t n = s ? strspn(s, "0123456789") : 0;
	if (n == 0 || n > 19 || s[n] != '\0')
		return -1;
	unsigned long long v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long long)(s[i] - '0');
	if (v < lo || v > hi)
		return -1;
	*out = (size_t)v;
	return 0;
}

size_t srv_utf8_clean(const char *in, char *out, size_t outlen)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, left = strlen(in);
	while (left) {
		size_t n = rs_utf8_seq(s, left);
		const char *from = n ? (const char *)s : replacement;
		size_t len = n ? n : 3;
		if (o + len >= outlen)
			break;
		memcpy(out + o, from, len);
		o += len;
		s += n ? n : 1;
		left -= n ? n : 1;
	}
	out[o] = '\0';
	return o;
}
