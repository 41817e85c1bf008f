/* Bounded helpers over cJSON: strict parse with a depth limit, typed getters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rsign/json.h"

/* cJSON has its own (large) nesting limit; ours is checked on the tree so
 * callers can pick a tighter one per endpoint. Depth counts containers:
 * {"a":[1]} is 2 deep, a bare scalar 0. */
static int json_depth_ok(const cJSON *item, int depth, int max_depth)
{
	const cJSON *c;

	if (!cJSON_IsArray(item) && !cJSON_IsObject(item))
		return 1;
	if (depth + 1 > max_depth)
		return 0;
	for (c = item->child; c; c = c->next)
		if (!json_depth_ok(c, depth + 1, max_depth))
			return 0;
	return 1;
}

size_t rs_utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* JSON text must be UTF-8; cJSON itself does not check. */
static int utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = rs_utf8_seq(s + i, len - i)))
			return 0;
	return 1;
}

/* A "\u0000" escape inside a string would become a NUL that cuts the C
 * string cJSON hands back, silently changing the value: refuse it. */
static int has_nul_escape(const char *s, size_t len)
{
	int in_string = 0;
	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = s[i] == '"';
			continue;
		}
		if (s[i] == '"') {
			in_string = 0;
		} else if (s[i] == '\\' && i + 1 < len) {
			if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
				return 1;
			i++; /* skip the escaped character */
		}
	}
	return 0;
}

_Thread_local unsigned long rs_json_key_compares;

static int name_cmp(const void *a, const void *b)
{
	rs_json_key_compares++;
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object naming a member twice is ambiguous (which one wins?): refuse.
 * This runs on whatever a client sends, before authentication, so each
 * object's names are sorted and neighbours compared: O(n log n), where
 * comparing every pair took 21 s for 1 MiB of keys. */
static int has_duplicate_keys(const cJSON *node)
{
	const cJSON *c;
	size_t n = 0, i;
	int dup = 0;

	if (!node)
		return 0;
	if (cJSON_IsObject(node))
		for (c = node->child; c; c = c->next)
			n += c->string != NULL;
	if (n > 1) {
		const char *few[16], **names = n <= 16 ? few : malloc(n * sizeof(*names));
		if (!names)
			return 1; /* cannot check it: refuse it */
		i = 0;
		for (c = node->child; c; c = c->next)
			if (c->string)
				names[i++] = c->string;
		qsort(names, n, sizeof(*names), name_cmp);
		for (i = 1; i < n && !dup; i++) {
			rs_json_key_compares++;
			dup = strcmp(names[i - 1], names[i]) == 0;
		}
		if (names != few)
			free(names);
		if (dup)
			return 1;
	}
	for (c = node->child; c; c = c->next)
		if (has_duplicate_keys(c))
			return 1;
	return 0;
}

/* Numbers past 1e308 in magnitude are refused: past DBL_MAX they parse as
 * infinity, which cJSON prints as null; just below it, cJSON's 15-digit
 * form rounds up past DBL_MAX. Either way the value would not survive
 * parse -> print -> parse. */
static int has_huge_number(const cJSON *node)
{
	if (cJSON_IsNumber(node) && !(fabs(node->valuedouble) <= 1e308))
		return 1;
	for (const cJSON *c = node->child; c; c = c->next)
		if (has_huge_number(c))
			return 1;
	return 0;
}

size_t rs_utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

cJSON *rs_json_parse(const char *text, size_t len, int max_depth)
{
	const char *end = NULL;
	cJSON *root;

	if (!text || len == 0)
		return NULL;
	/* No valid JSON text holds a raw NUL; cJSON would cut strings there. */
	if (memchr(text, '\0', len) || !utf8_valid((const unsigned char *)text, len) ||
	    has_nul_escape(text, len))
		return NULL;
	/* Without require_null_terminated cJSON stops after the value; the
	 * trailing check below stays inside len. */
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root)
		return NULL;
	if (!end || end < text || end > text + len)
		goto reject;
	while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != text + len)
		goto reject;
	if (!json_depth_ok(root, 0, max_depth) || has_duplicate_keys(root) || has_huge_number(root))
		goto reject;
	return root;
reject:
	cJSON_Delete(root);
	return NULL;
}

/* A JSON null is treated like an absent field. */
static const cJSON *json_field(const cJSON *obj, const char *name)
{
	const cJSON *v;

	if (!cJSON_IsObject(obj))
		return NULL;
	v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsNull(v) ? NULL : v;
}

int rs_json_str(const cJSON *obj, const char *name, int required, size_t max_len, const char **out)
{
	const cJSON *v = json_field(obj, name);

	if (!v)
		return required ? RS_JSON_MISSING : RS_JSON_OK;
	if (!cJSON_IsString(v) || !v->valuestring)
		return RS_JSON_TYPE;
	if (strlen(v->valuestring) > max_len)
		return RS_JSON_RANGE;
	*out = v->valuestring;
	return RS_JSON_OK;
}

int rs_json_int(const cJSON *obj, const char *name, int required, long long min, long long max,
		long long *out)
{
	const cJSON *v = json_field(obj, name);
	long long ll;
	double d;

	if (!v)
		return required ? RS_JSON_MISSING : RS_JSON_OK;
	if (!cJSON_IsNumber(v))
		return RS_JSON_TYPE;
	d = v->valuedouble;
	if (!isfinite(d))
		return RS_JSON_TYPE;
	/* Compare as doubles first so the conversion below cannot overflow;
	 * 2^63 is exactly representable, so this bound is exact. */
	if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
		return RS_JSON_RANGE;
	ll = (long long)d;
	if ((double)ll != d)
		return RS_JSON_TYPE; /* a fraction */
	if (ll < min || ll > max)
		return RS_JSON_RANGE;
	*out = ll;
	return RS_JSON_OK;
}

int rs_json_bool(const cJSON *obj, const char *name, int required, int *out)
{
	const cJSON *v = json_field(obj, name);

	if (!v)
		return required ? RS_JSON_MISSING : RS_JSON_OK;
	if (!cJSON_IsBool(v))
		return RS_JSON_TYPE;
	*out = cJSON_IsTrue(v) ? 1 : 0;
	return RS_JSON_OK;
}

char *rs_json_print(const cJSON *obj)
{
	return obj ? cJSON_PrintUnformatted(obj) : NULL;
}
