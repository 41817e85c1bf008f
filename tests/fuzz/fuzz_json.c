/* libFuzzer target: rs_json_parse, the typed getters and rs_json_print.
 * Whatever rs_json_parse accepts must keep its contract, checked here by
 * means of its own: no raw NUL, valid UTF-8 in the text and in every decoded
 * string, no \u0000 escape, no member named twice, depth within the limit
 * (and exactly: one less refuses it); print -> parse gives an equal tree that
 * prints the same text; each getter answers as its header says.
 * fuzz-sources: common/json.c
 * fuzz-max-len: 4096
 */
#include <limits.h>
#include <math.h>

#include "rsign/json.h"
#include "fuzz.h"

/* RFC 3629 section 4, written as its table of byte ranges rather than as a
 * decoder: the lead byte fixes the range of the second byte and how many
 * continuation bytes follow. Returns the code points, or -1. */
static long utf8_count(const unsigned char *s, size_t len)
{
	long n = 0;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t tail;

		if (c <= 0x7f) {
			i++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			tail = 1;
		else if (c >= 0xe0 && c <= 0xef)
			tail = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			tail = 3;
		else
			return -1;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing past U+10FFFF */
		if (len - i <= tail || s[i + 1] < lo || s[i + 1] > hi)
			return -1;
		for (size_t k = 2; k <= tail; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return -1;
		i += tail + 1;
		n++;
	}
	return n;
}

/* Outside strings JSON has no backslash, and inside one a run of an odd
 * number of backslashes escapes the character after it: so "\u0000" is an
 * escaped NUL exactly when an odd run precedes "u0000". */
static int has_escaped_nul(const char *s, size_t len)
{
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\') {
			run++;
			continue;
		}
		if (run % 2 && len - i >= 5 && memcmp(s + i, "u0000", 5) == 0)
			return 1;
		run = 0;
	}
	return 0;
}

/* Containers on the deepest path: {"a":[1]} is 2, a scalar 0. */
static int depth(const cJSON *j)
{
	int d = 0;

	if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
		return 0;
	for (const cJSON *c = j->child; c; c = c->next) {
		int cd = depth(c);
		d = cd > d ? cd : d;
	}
	return d + 1;
}

static void check_string(const char *s)
{
	long n = utf8_count((const unsigned char *)s, strlen(s));

	fuzz_check(n >= 0, "a decoded string is not UTF-8");
	fuzz_check(rs_utf8_chars(s) == (size_t)n, "rs_utf8_chars miscounts");
}

/* The getters on member m of obj, against what m holds. */
static void check_getters(const cJSON *obj, const cJSON *m)
{
	static const char sentinel[] = "untouched";
	const char *name = m->string, *s = sentinel;
	long long ll = 7, lo = -1000, hi = 1000;
	int b = 7, want;

	fuzz_check(name != NULL, "an object member has no name");
	for (int req = 0; req < 2; req++) {
		int absent = cJSON_IsNull(m) ? (req ? RS_JSON_MISSING : RS_JSON_OK) : 1;

		/* string: at most 8 bytes */
		want = absent != 1		    ? absent
		       : !cJSON_IsString(m)	    ? RS_JSON_TYPE
		       : strlen(m->valuestring) > 8 ? RS_JSON_RANGE
						    : RS_JSON_OK;
		s = sentinel;
		fuzz_check(rs_json_str(obj, name, req, 8, &s) == want, "rs_json_str result");
		fuzz_check(s == ((want == RS_JSON_OK && absent == 1) ? m->valuestring : sentinel),
			   "rs_json_str output");

		/* integer within [-1000, 1000], then over the whole long long range */
		for (int wide = 0; wide < 2; wide++) {
			double d = m->valuedouble;
			long long min = wide ? LLONG_MIN : lo, max = wide ? LLONG_MAX : hi;

			if (absent != 1)
				want = absent;
			else if (!cJSON_IsNumber(m) || !isfinite(d) || trunc(d) != d)
				want = RS_JSON_TYPE;
			else if (d < -0x1p63 || d >= 0x1p63 || d < (double)min || d > (double)max)
				want = RS_JSON_RANGE;
			else
				want = RS_JSON_OK;
			ll = 7;
			fuzz_check(rs_json_int(obj, name, req, min, max, &ll) == want,
				   "rs_json_int result");
			fuzz_check(want == RS_JSON_OK && absent == 1 ? (double)ll == d : ll == 7,
				   "rs_json_int output");
		}

		want = absent != 1 ? absent : cJSON_IsBool(m) ? RS_JSON_OK : RS_JSON_TYPE;
		b = 7;
		fuzz_check(rs_json_bool(obj, name, req, &b) == want, "rs_json_bool result");
		fuzz_check(want == RS_JSON_OK && absent == 1 ? b == cJSON_IsTrue(m) : b == 7,
			   "rs_json_bool output");
	}
}

/* Every string decoded well; objects name each member once; getters agree. */
static void walk(const cJSON *j)
{
	if (cJSON_IsString(j))
		check_string(j->valuestring);
	for (const cJSON *c = j->child; c; c = c->next) {
		if (cJSON_IsObject(j)) {
			check_string(c->string);
			for (const cJSON *d = c->next; d; d = d->next)
				fuzz_check(strcmp(c->string, d->string) != 0,
					   "an object names a member twice");
			check_getters(j, c);
		}
		walk(c);
	}
}

/* A name no member has gives MISSING when required, else OK untouched. */
static void check_absent(const cJSON *j)
{
	const char *name = "\x01"
			   "absent",
		   *s = NULL;
	long long ll = 7;
	int b = 7;

	if (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, name))
		return;
	fuzz_check(rs_json_str(j, name, 1, 8, &s) == RS_JSON_MISSING &&
			   rs_json_int(j, name, 1, 0, 1, &ll) == RS_JSON_MISSING &&
			   rs_json_bool(j, name, 1, &b) == RS_JSON_MISSING,
		   "an absent field is not MISSING when required");
	fuzz_check(rs_json_str(j, name, 0, 8, &s) == RS_JSON_OK && !s &&
			   rs_json_int(j, name, 0, 0, 1, &ll) == RS_JSON_OK && ll == 7 &&
			   rs_json_bool(j, name, 0, &b) == RS_JSON_OK && b == 7,
		   "an absent optional field is not OK and untouched");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	cJSON *j = rs_json_parse(text, size, RS_JSON_MAX_DEPTH), *again;
	char *p1, *p2;
	int d;

	if (!j)
		return 0;
	fuzz_check(!memchr(text, '\0', size), "accepted a raw NUL");
	fuzz_check(utf8_count(data, size) >= 0, "accepted text that is not UTF-8");
	fuzz_check(!has_escaped_nul(text, size), "accepted a \\u0000 escape");

	d = depth(j);
	fuzz_check(d <= RS_JSON_MAX_DEPTH, "accepted a tree deeper than the limit");
	again = rs_json_parse(text, size, d);
	fuzz_check(again != NULL, "refused a tree exactly as deep as the limit");
	cJSON_Delete(again);
	if (d > 0)
		fuzz_check(rs_json_parse(text, size, d - 1) == NULL,
			   "accepted a tree one deeper than the limit");

	walk(j);
	check_absent(j);

	p1 = rs_json_print(j);
	fuzz_check(p1 != NULL, "rs_json_print failed");
	again = rs_json_parse(p1, strlen(p1), RS_JSON_MAX_DEPTH);
	fuzz_check(again != NULL, "refused its own printed text");
	fuzz_check(cJSON_Compare(j, again, 1), "print -> parse changed the tree");
	p2 = rs_json_print(again);
	fuzz_check(p2 && strcmp(p1, p2) == 0, "printing is not stable");
	fuzz_check(rs_json_print(NULL) == NULL, "rs_json_print(NULL)");

	free(p1);
	free(p2);
	cJSON_Delete(again);
	cJSON_Delete(j);
	return 0;
}
