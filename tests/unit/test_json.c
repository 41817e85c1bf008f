/* Unit tests for the bounded cJSON helpers. */
#include <stdlib.h>
#include <string.h>

#include "rsign/json.h"
#include "tap.h"

static cJSON *parse(const char *s, int depth)
{
	return rs_json_parse(s, strlen(s), depth);
}

/* "[[[...1...]]]" with n brackets. */
static char *nested(int n)
{
	char *s = malloc((size_t)n * 2 + 2);
	int i;

	for (i = 0; i < n; i++)
		s[i] = '[';
	s[n] = '1';
	for (i = 0; i < n; i++)
		s[n + 1 + i] = ']';
	s[2 * n + 1] = '\0';
	return s;
}

/* {"k0":0,"k1":0,...} with n distinct names; when dup_of >= 0, the last
 * member is named like member dup_of instead. */
static char *many_keys(int n, int dup_of)
{
	size_t cap = (size_t)n * 16 + 16, len = 1;
	char *s = malloc(cap);

	s[0] = '{';
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s\"k%d\":0", i ? "," : "",
					i == n - 1 && dup_of >= 0 ? dup_of : i);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

/* The duplicate check sorts each object's names: about n log2 n
 * comparisons, where comparing every pair (the old check) makes n(n-1)/2,
 * 33 million for 8191 names: 83 ms before authentication, 21 s for 1 MiB. */
static void duplicate_check_is_n_log_n(void)
{
	const int n = 8191; /* 13 bits: log2 n < 13 */
	char *s = many_keys(n, -1), *d = many_keys(n, 0);
	char *nest = malloc(strlen(s) + 16);
	cJSON *j;

	snprintf(nest, strlen(s) + 16, "{\"a\":[%s]}", d);
	rs_json_key_compares = 0;
	j = parse(s, RS_JSON_MAX_DEPTH);
	ok(j != NULL && cJSON_GetArraySize(j) == n, "json_parse_accepts_8191_distinct_members");
	ok(rs_json_key_compares > 0 && rs_json_key_compares <= 2UL * (unsigned long)n * 13,
	   "json_duplicate_check_of_8191_names_makes_at_most_2_n_log2_n_comparisons (made %lu)",
	   rs_json_key_compares);
	cJSON_Delete(j);
	ok(parse(d, RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_the_last_of_8191_members_named_like_the_first");
	ok(parse(nest, RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_a_duplicate_among_8191_members_nested_in_an_array");
	j = parse("{\"k1\":1,\"k10\":2,\"k\":3,\"\":4,\"o\":{\"k1\":5}}", RS_JSON_MAX_DEPTH);
	ok(j != NULL, "json_parse_accepts_names_that_share_a_prefix_or_are_empty");
	cJSON_Delete(j);
	free(s);
	free(d);
	free(nest);
}

int main(void)
{
	cJSON *j;
	const char *s;
	long long ll;
	int b;
	char *txt;

	plan(62 + 5);
	j = parse("{\"a\":1}", RS_JSON_MAX_DEPTH);
	ok(j && cJSON_IsObject(j), "json_parse_accepts_object");
	cJSON_Delete(j);
	j = parse("  {\"a\":1} \r\n\t", RS_JSON_MAX_DEPTH);
	ok(j != NULL, "json_parse_accepts_surrounding_whitespace");
	cJSON_Delete(j);
	ok(parse("{\"a\":1} x", RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_trailing_garbage");
	ok(parse("{\"a\":1}{}", RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_second_value");
	ok(parse("{\"a\":", RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_truncated");
	ok(parse("", RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_empty");
	ok(parse("   ", RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_only_whitespace");
	ok(rs_json_parse("{\"a\":\"x\0y\"}", 11, RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_embedded_nul");
	ok(rs_json_parse("{\"a\":1}\0", 8, RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_trailing_nul_inside_len");

	{
		/* Not NUL-terminated: the byte after len must not be read as part
		 * of the value, and the value must parse from len alone. */
		char raw[16];

		memcpy(raw, "{\"n\":12}XXXXXXXX", 16);
		j = rs_json_parse(raw, 8, RS_JSON_MAX_DEPTH);
		ll = 0;
		ok(j && rs_json_int(j, "n", 1, 0, 100, &ll) == RS_JSON_OK && ll == 12,
		   "json_parse_works_without_nul_terminator");
		cJSON_Delete(j);
		memcpy(raw, "[1,2]   ]]]]]]]]", 16);
		j = rs_json_parse(raw, 8, RS_JSON_MAX_DEPTH);
		ok(j && cJSON_GetArraySize(j) == 2, "json_parse_stops_at_len");
		cJSON_Delete(j);
		memcpy(raw, "{\"n\":123456789}", 16);
		ok(rs_json_parse(raw, 7, RS_JSON_MAX_DEPTH) == NULL,
		   "json_parse_rejects_value_cut_by_len");
	}

	txt = nested(RS_JSON_MAX_DEPTH);
	j = parse(txt, RS_JSON_MAX_DEPTH);
	ok(j != NULL, "json_parse_accepts_depth_at_limit");
	cJSON_Delete(j);
	free(txt);
	txt = nested(RS_JSON_MAX_DEPTH + 1);
	ok(parse(txt, RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_depth_over_limit");
	free(txt);
	ok(parse("{\"a\":{\"b\":{}}}", 2) == NULL, "json_parse_rejects_nested_objects_over_limit");
	j = parse("{\"a\":{\"b\":1}}", 2);
	ok(j != NULL, "json_parse_counts_scalars_as_leaf_depth");
	cJSON_Delete(j);
	txt = nested(5000);
	ok(parse(txt, RS_JSON_MAX_DEPTH) == NULL, "json_parse_rejects_very_deep_input");
	free(txt);
	j = parse("7", 0);
	ok(j && cJSON_IsNumber(j), "json_parse_accepts_scalar_root_at_depth_0");
	cJSON_Delete(j);
	ok(parse("[]", 0) == NULL, "json_parse_rejects_container_at_depth_0");

	j = parse("{\"s\":\"hello\",\"n\":42,\"neg\":-5,\"f\":1.5,\"big\":1e30,"
		  "\"t\":true,\"fa\":false,\"z\":null,\"arr\":[1],\"e\":\"\"}",
		  RS_JSON_MAX_DEPTH);
	ok(j != NULL, "json_parse_accepts_mixed_object");

	s = NULL;
	ok(rs_json_str(j, "s", 1, 5, &s) == RS_JSON_OK && s && strcmp(s, "hello") == 0,
	   "json_str_reads_string_at_max_len");
	ok(rs_json_str(j, "s", 1, 4, &s) == RS_JSON_RANGE, "json_str_rejects_too_long");
	ok(rs_json_str(j, "n", 1, 10, &s) == RS_JSON_TYPE, "json_str_rejects_number");
	ok(rs_json_str(j, "e", 1, 10, &s) == RS_JSON_OK && s && s[0] == '\0',
	   "json_str_accepts_empty_string");
	s = "untouched";
	ok(rs_json_str(j, "missing", 0, 10, &s) == RS_JSON_OK && strcmp(s, "untouched") == 0,
	   "json_str_optional_absent_leaves_out_untouched");
	ok(rs_json_str(j, "missing", 1, 10, &s) == RS_JSON_MISSING,
	   "json_str_required_absent_is_missing");
	ok(rs_json_str(j, "z", 1, 10, &s) == RS_JSON_MISSING, "json_str_null_counts_as_absent");
	ok(rs_json_str(j, "z", 0, 10, &s) == RS_JSON_OK && strcmp(s, "untouched") == 0,
	   "json_str_optional_null_leaves_out_untouched");
	ok(rs_json_str(j, "S", 0, 10, &s) == RS_JSON_OK && strcmp(s, "untouched") == 0,
	   "json_str_names_are_case_sensitive");

	ok(rs_json_int(j, "n", 1, 0, 100, &ll) == RS_JSON_OK && ll == 42, "json_int_reads_number");
	ok(rs_json_int(j, "n", 1, 42, 42, &ll) == RS_JSON_OK, "json_int_bounds_are_inclusive");
	ok(rs_json_int(j, "n", 1, 0, 41, &ll) == RS_JSON_RANGE, "json_int_rejects_above_max");
	ok(rs_json_int(j, "n", 1, 43, 100, &ll) == RS_JSON_RANGE, "json_int_rejects_below_min");
	ok(rs_json_int(j, "neg", 1, -10, 0, &ll) == RS_JSON_OK && ll == -5,
	   "json_int_reads_negative");
	ok(rs_json_int(j, "f", 1, 0, 100, &ll) == RS_JSON_TYPE, "json_int_rejects_fraction");
	ok(rs_json_int(j, "big", 1, 0, 100, &ll) == RS_JSON_RANGE, "json_int_rejects_huge_number");
	ok(rs_json_int(j, "s", 1, 0, 100, &ll) == RS_JSON_TYPE, "json_int_rejects_string");
	ok(rs_json_int(j, "t", 1, 0, 100, &ll) == RS_JSON_TYPE, "json_int_rejects_bool");
	ll = 7;
	ok(rs_json_int(j, "missing", 0, 0, 100, &ll) == RS_JSON_OK && ll == 7,
	   "json_int_optional_absent_leaves_out_untouched");
	ok(rs_json_int(j, "z", 1, 0, 100, &ll) == RS_JSON_MISSING,
	   "json_int_null_counts_as_absent");

	ok(rs_json_bool(j, "t", 1, &b) == RS_JSON_OK && b == 1, "json_bool_reads_true");
	ok(rs_json_bool(j, "fa", 1, &b) == RS_JSON_OK && b == 0, "json_bool_reads_false");
	ok(rs_json_bool(j, "n", 1, &b) == RS_JSON_TYPE, "json_bool_rejects_number");
	ok(rs_json_bool(j, "s", 1, &b) == RS_JSON_TYPE, "json_bool_rejects_string");
	b = 5;
	ok(rs_json_bool(j, "missing", 0, &b) == RS_JSON_OK && b == 5,
	   "json_bool_optional_absent_leaves_out_untouched");
	ok(rs_json_bool(j, "missing", 1, &b) == RS_JSON_MISSING,
	   "json_bool_required_absent_is_missing");
	ok(rs_json_str(cJSON_GetObjectItem(j, "arr"), "x", 1, 10, &s) == RS_JSON_MISSING,
	   "json_getters_on_non_object_find_nothing");
	cJSON_Delete(j);

	j = parse("{ \"b\" : [1, 2], \"a\" : \"x\" }", RS_JSON_MAX_DEPTH);
	txt = rs_json_print(j);
	ok(txt && strcmp(txt, "{\"b\":[1,2],\"a\":\"x\"}") == 0, "json_print_is_compact");
	free(txt);
	cJSON_Delete(j);
	ok(rs_json_print(NULL) == NULL, "json_print_null_is_null");

	/* text that is JSON in shape but would change meaning or break the
	 * history: refused */
	{
		const char bad_utf8[] = "{\"k\":\"\xff\xfe\"}";
		const char overlong[] = "{\"k\":\"\xc0\xaf\"}";
		const char surrogate[] = "{\"k\":\"\xed\xa0\x80\"}";
		const char nul_escape[] = "{\"k\":\"a\\u0000b\"}";
		const char escaped_backslash[] = "{\"k\":\"a\\\\u0000b\"}";
		const char dup[] = "{\"data\":\"AAAA\",\"data\":\"BBBB\"}";
		const char nested_dup[] = "{\"m\":{\"a\":1,\"a\":2}}";
		const char fine[] = "{\"k\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"a\":[{\"x\":"
				    "1},{\"x\":2}]}";
		ok(!rs_json_parse(bad_utf8, strlen(bad_utf8), 8),
		   "json_parse_rejects_invalid_utf8");
		ok(!rs_json_parse(overlong, strlen(overlong), 8),
		   "json_parse_rejects_overlong_utf8");
		ok(!rs_json_parse(surrogate, strlen(surrogate), 8),
		   "json_parse_rejects_utf8_surrogates");
		ok(!rs_json_parse(nul_escape, strlen(nul_escape), 8),
		   "json_parse_rejects_nul_escape");
		j = rs_json_parse(escaped_backslash, strlen(escaped_backslash), 8);
		ok(j != NULL, "json_parse_accepts_escaped_backslash_before_u0000_text");
		cJSON_Delete(j);
		ok(!rs_json_parse(dup, strlen(dup), 8), "json_parse_rejects_duplicate_member");
		ok(!rs_json_parse(nested_dup, strlen(nested_dup), 8),
		   "json_parse_rejects_nested_duplicate_member");
		j = rs_json_parse(fine, strlen(fine), 8);
		ok(j != NULL,
		   "json_parse_accepts_multibyte_utf8_and_same_names_in_sibling_objects");
		cJSON_Delete(j);
		ok(rs_utf8_chars("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z") == 4,
		   "utf8_chars_counts_code_points");
	}

	/* A number past a double's range became infinity, printed as null, and
	 * one just below DBL_MAX printed as text past it: parse -> print ->
	 * parse changed the value (found by fuzz_json). */
	ok(parse("{\"n\":1e400}", RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_number_beyond_double_range");
	ok(parse("[-1e400]", RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_negative_number_beyond_double_range");
	ok(parse("[1.7976931348623157e308]", RS_JSON_MAX_DEPTH) == NULL,
	   "json_parse_rejects_numbers_past_1e308");
	j = parse("[1e308,-1e308,-1e-400]", RS_JSON_MAX_DEPTH);
	txt = rs_json_print(j);
	{
		cJSON *again = txt ? parse(txt, RS_JSON_MAX_DEPTH) : NULL;

		ok(j && again && cJSON_Compare(j, again, 1),
		   "json_print_then_parse_keeps_1e308_and_an_underflow");
		cJSON_Delete(again);
	}
	free(txt);
	cJSON_Delete(j);
	duplicate_check_is_n_log_n();
	return tap_done();
}
