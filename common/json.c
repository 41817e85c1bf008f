/* Bounded helpers over cJSON: strict parse with a depth limit, typed getters. */
#include <math.h>
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

cJSON *rs_json_parse(const char *text, size_t len, int max_depth)
{
	const char *end = NULL;
	cJSON *root;

	if (!text || len == 0)
		return NULL;
	/* No valid JSON text holds a raw NUL; cJSON would cut strings there. */
	if (memchr(text, '\0', len))
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
	if (!json_depth_ok(root, 0, max_depth))
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
