/* libFuzzer target: the HTTP request pieces that are rsign's own to read
 * (server/http/parse.c). The first byte picks the reader, the rest is its
 * input; each answer is checked against a plain reimplementation of the
 * rule it follows (seeds start with a digit: '0' % 6 is 0):
 *   - srv_route_match: matches exactly when the path has the pattern's
 *     segments, none empty, literals equal; the captures put back into the
 *     pattern give the path again; buf is a block of exactly the bound;
 *   - srv_uri_check: a path with a malformed escape, an escaped slash or
 *     control character, or a raw control character is refused, and a
 *     query with %00 or a raw control character; nothing else;
 *   - srv_bearer_parse: the scheme in any case, spaces skipped, 8 to 256;
 *   - srv_framing_*: ambiguous exactly when Content-Length or
 *     Transfer-Encoding repeat, come together, or hold other than digits
 *     or "chunked";
 *   - srv_parse_count: exactly 1 to 19 digits within the bounds;
 *   - srv_utf8_clean: valid UTF-8 within the bound, the input itself when
 *     it was valid and fits, the same again when cleaned twice.
 * fuzz-sources: server/http/parse.c common/json.c
 * fuzz-max-len: 512
 */
#include <ctype.h>
#include <strings.h>

#include "rsign/json.h"
#include "fuzz.h"
#include "../../server/http/parse.h"

/* The segments of s (after its leading '/'), split at '/'. */
static size_t split(const char *s, char segs[][512], size_t max)
{
	size_t n = 0, len = 0;

	for (s++;; s++) {
		if (*s == '/' || *s == '\0') {
			if (n < max)
				segs[n][len < 511 ? len : 511] = '\0';
			n++;
			len = 0;
			if (!*s)
				return n;
			continue;
		}
		if (n < max && len < 511)
			segs[n][len] = *s;
		len++;
	}
}

static void check_route(const char *path)
{
	static const char *const patterns[] = {
		"/health", "/pki/signers/*", "/pki/signers/*/sign", "/pki/signers/*/members/*",
		"/*/*/*",  "/*/*/*/*",
	};
	static char ps[8][512], ss[8][512];
	size_t n = strlen(path);

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		const char *pat = patterns[i];
		const char *params[SRV_MAX_PARAMS] = {0};
		char *buf = (char *)fuzz_alloc(n ? n : 1);
		int got = srv_route_match(pat, path, buf, n ? n : 1, params);
		size_t np = split(pat, ps, 8), ns = path[0] == '/' ? split(path, ss, 8) : 0;
		size_t stars = 0;
		int want = path[0] == '/' && ns == np;

		for (size_t k = 0; want && k < np; k++) {
			if (!ss[k][0])
				want = 0;
			else if (strcmp(ps[k], "*") == 0)
				stars++;
			else if (strcmp(ps[k], ss[k]) != 0)
				want = 0;
		}
		if (stars > SRV_MAX_PARAMS)
			want = 0;
		fuzz_check(got == want, "a route matches exactly when its segments do");
		if (got) {
			/* the captures put back into the pattern give the path */
			char again[600];
			size_t o = 0, c = 0;
			for (size_t k = 0; k < np; k++) {
				const char *seg = strcmp(ps[k], "*") == 0 ? params[c++] : ps[k];
				fuzz_check(seg && *seg && !strchr(seg, '/'),
					   "a capture is one non-empty segment");
				fuzz_check(strcmp(ps[k], "*") != 0 || (seg >= buf && seg < buf + n),
					   "a capture points into buf");
				o += (size_t)snprintf(again + o, sizeof(again) - o, "/%s", seg);
			}
			fuzz_check(strcmp(again, path) == 0, "captures rebuild the path");
		}
		free(buf);
		if (n > 1) { /* one byte short of what it needs: no match, no overrun */
			buf = (char *)fuzz_alloc(n - 1);
			fuzz_check(!srv_route_match(pat, path, buf, n - 1, params),
				   "a path that does not fit buf does not match");
			free(buf);
		}
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static srv_uri_verdict uri_oracle(const char *raw)
{
	const char *q = strchr(raw, '?');
	size_t plen = q ? (size_t)(q - raw) : strlen(raw);

	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c < 0x20 || c == 0x7f)
			return SRV_URI_BAD_PATH;
		if (c != '%')
			continue;
		int hi = i + 1 < plen ? hexval(raw[i + 1]) : -1;
		int lo = i + 2 < plen ? hexval(raw[i + 2]) : -1;
		if (hi < 0 || lo < 0)
			return SRV_URI_BAD_PATH;
		int v = hi * 16 + lo;
		if (v < 0x20 || v == 0x7f || v == '/')
			return SRV_URI_BAD_PATH;
		i += 2;
	}
	if (!q)
		return SRV_URI_OK;
	for (const char *p = q + 1; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return SRV_URI_BAD_QUERY;
		if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			if (hexval(p[1]) == 0 && hexval(p[2]) == 0)
				return SRV_URI_BAD_QUERY;
			p += 2;
		}
	}
	return SRV_URI_OK;
}

static void check_bearer(const char *h)
{
	const char *tok = NULL;
	size_t len = 0;
	srv_bearer_verdict v = srv_bearer_parse(h, &tok, &len);
	int scheme = strncasecmp(h, "Bearer ", 7) == 0;
	const char *t = h + (scheme ? 7 : 0);

	while (scheme && *t == ' ')
		t++;
	size_t n = strlen(t);
	fuzz_check((v == SRV_BEARER_MISSING) == !scheme, "missing exactly without the scheme");
	if (!scheme)
		return;
	fuzz_check((v == SRV_BEARER_OK) == (n >= SRV_BEARER_MIN && n <= SRV_BEARER_MAX),
		   "a token is 8 to 256 long");
	if (v == SRV_BEARER_OK)
		fuzz_check(tok == t && len == n && *tok != ' ', "the token follows the spaces");
}

/* "name: value" lines, split at the first ':'; the value trimmed of
 * spaces as libmicrohttpd does. */
static void check_framing(char *text)
{
	srv_framing f = {0};
	unsigned cl = 0, te = 0;
	int bad = 0;

	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		size_t vl = strlen(value);
		while (vl && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
			value[--vl] = '\0';
		srv_framing_add(&f, line, value);
		size_t nl = strlen(line);
		while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
			nl--;
		if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
			cl++;
			int digits = vl > 0;
			for (size_t i = 0; i < vl; i++)
				digits &= isdigit((unsigned char)value[i]) != 0;
			bad |= !digits;
		} else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
			te++;
			bad |= strcasecmp(value, "chunked") != 0;
		}
	}
	int want = cl > 1 || te > 1 || (cl && te) || bad;
	fuzz_check(srv_framing_ambiguous(&f) == want, "framing is ambiguous exactly by the rule");
}

static void check_count(const uint8_t *data, size_t size)
{
	static const size_t bounds[][2] = {
		{0, 1000000000}, {1, 100}, {0, 0}, {5, 5}, {0, (size_t)-1},
	};
	if (size < 1)
		return;
	size_t lo = bounds[data[0] % 5][0], hi = bounds[data[0] % 5][1];
	char *s = fuzz_cstr(data + 1, size - 1);
	size_t out = 12345, n = strlen(s), digits = 0;
	int got = srv_parse_count(s, lo, hi, &out);

	while (digits < n && isdigit((unsigned char)s[digits]))
		digits++;
	int want = n > 0 && digits == n && n <= 19;
	unsigned long long v = want ? strtoull(s, NULL, 10) : 0;
	want = want && v >= lo && v <= hi;
	fuzz_check((got == 0) == want, "a count is 1 to 19 digits within the bounds");
	fuzz_check(!want || out == v, "a count reads as its digits");
	fuzz_check(want || out == 12345, "a refused count leaves *out alone");
	free(s);
}

static int valid_utf8(const char *s)
{
	size_t left = strlen(s);
	while (left) {
		size_t n = rs_utf8_seq((const unsigned char *)s, left);
		if (!n)
			return 0;
		s += n;
		left -= n;
	}
	return 1;
}

static void check_utf8(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	size_t outlen = 4 + data[0] % 61;
	char *in = fuzz_cstr(data + 1, size - 1);
	char *out = (char *)fuzz_alloc(outlen), *again = (char *)fuzz_alloc(outlen);
	size_t n = srv_utf8_clean(in, out, outlen);

	fuzz_check(n == strlen(out) && n < outlen, "the output fits its bound");
	fuzz_check(valid_utf8(out), "the output is valid UTF-8");
	if (valid_utf8(in) && strlen(in) < outlen)
		fuzz_check(strcmp(in, out) == 0, "valid UTF-8 that fits is kept as it is");
	srv_utf8_clean(out, again, outlen);
	fuzz_check(strcmp(out, again) == 0, "cleaning twice changes nothing");
	free(in);
	free(out);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned which = data[0] % 6;
	data++;
	size--;
	if (which == 4) {
		check_count(data, size);
		return 0;
	}
	if (which == 5) {
		check_utf8(data, size);
		return 0;
	}
	char *s = fuzz_cstr(data, size);
	if (which == 0)
		check_route(s);
	else if (which == 1)
		fuzz_check(srv_uri_check(s) == uri_oracle(s), "a target is refused by the rule");
	else if (which == 2)
		check_bearer(s);
	else
		check_framing(s);
	free(s);
	return 0;
}
