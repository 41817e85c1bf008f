/* Bounded helpers over cJSON. Parse into our own structs and free the tree
 * in the same function; these helpers never keep pointers past the tree. */
#ifndef RSIGN_JSON_H
#define RSIGN_JSON_H
#include <stddef.h>
#include <cjson/cJSON.h>

#define RS_JSON_MAX_DEPTH 16

enum {
	RS_JSON_OK = 0,
	RS_JSON_MISSING = -1, /* required field absent (or null) */
	RS_JSON_TYPE = -2,    /* present with the wrong type */
	RS_JSON_RANGE = -3,   /* string too long or number out of bounds */
};

/* Parses len bytes (need not be NUL-terminated). NULL when the text is not
 * valid JSON, has trailing garbage, nests deeper than max_depth, is not
 * valid UTF-8, escapes a NUL (\u0000), names an object member twice or
 * holds a number past 1e308 in magnitude (printing could not keep it). */
cJSON *rs_json_parse(const char *text, size_t len, int max_depth);

/* Test hook: the member-name comparisons rs_json_parse's duplicate check
 * made on this thread (it sorts each object's names: O(n log n)). */
extern _Thread_local unsigned long rs_json_key_compares;

/* Each getter leaves *out untouched when the field is absent and not
 * required (returns RS_JSON_OK). A JSON null counts as absent. */
int rs_json_str(const cJSON *obj, const char *name, int required, size_t max_len, const char **out)
	__attribute__((warn_unused_result));
int rs_json_int(const cJSON *obj, const char *name, int required, long long min, long long max,
		long long *out) __attribute__((warn_unused_result));
int rs_json_bool(const cJSON *obj, const char *name, int required, int *out)
	__attribute__((warn_unused_result));

/* The length (1 to 4) of the valid UTF-8 sequence starting s, within
 * avail bytes (>= 1), or 0 when none does. Strict (RFC 3629): no overlong
 * forms, no surrogates, nothing past U+10FFFF. */
size_t rs_utf8_seq(const unsigned char *s, size_t avail);
/* Characters (code points) of a valid UTF-8 string. */
size_t rs_utf8_chars(const char *s);

/* Renders compactly; malloc'd, NULL on failure. */
char *rs_json_print(const cJSON *obj);

#endif
