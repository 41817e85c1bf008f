/* common/log.c: text lines unchanged, and JSON lines that parse, whatever
 * the message holds (quotes, controls, bytes that are not UTF-8, more than
 * a line's room), with the calling thread's request fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cJSON.h>
#include "rsign/log.h"
#include "tap.h"

static char path[] = "/tmp/rsign-test-log-XXXXXX";

/* The lines written since the last call, into lines[] (malloc'd). */
static size_t read_lines(char **lines, size_t max)
{
	static long done;
	FILE *f = fopen(path, "r");
	size_t n = 0;
	char buf[8192];
	if (!f)
		tap_bail("cannot read %s", path);
	fseek(f, done, SEEK_SET);
	while (n < max && fgets(buf, sizeof(buf), f))
		lines[n++] = strdup(buf);
	done = ftell(f);
	fclose(f);
	return n;
}

static const char *str_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int main(void)
{
	char *lines[8];
	plan(15);
	int fd = mkstemp(path);
	if (fd < 0)
		tap_bail("mkstemp");
	close(fd);
	if (rs_log_set_file(path) != 0)
		tap_bail("rs_log_set_file");
	rs_log_set_ident("rsignd");
	rs_log_set_level(RS_LOG_INFO);

	rs_info("plain %d", 1);
	size_t n = read_lines(lines, 8);
	ok(n == 1 && strstr(lines[0], " rsignd[") && strstr(lines[0], " INFO: plain 1\n"),
	   "text_line_is_time_ident_pid_level_message");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);

	rs_log_set_format(RS_LOG_JSON);
	rs_log_request req = {.req_id = "abc123",
			      .method = "POST",
			      .route = "/pki/signers/*/sign",
			      .principal = "ci \"runner\"",
			      .signer = "demo-ec",
			      .outcome = "ok",
			      .status = 200,
			      .ms = 7};
	rs_log_set_request(&req);
	rs_info("quote \" backslash \\ newline\nforged INFO line\ttab \x01 bad \xff\xfe utf8 "
		"\xc3\xa9");
	rs_log_set_request(NULL);
	char big[6000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[3000] = '"';
	rs_warn("%s", big);
	rs_debug("below the level");
	n = read_lines(lines, 8);
	ok(n == 2, "two_json_lines_one_per_call_none_below_the_level (got %zu)", n);
	cJSON *a = n > 0 ? cJSON_Parse(lines[0]) : NULL;
	cJSON *b = n > 1 ? cJSON_Parse(lines[1]) : NULL;
	ok(a != NULL, "a_message_with_quotes_controls_and_bad_utf8_gives_valid_json");
	ok(a && str_of(a, "msg") &&
		   strcmp(str_of(a, "msg"),
			  "quote \" backslash \\ newline\nforged INFO line\ttab \x01 bad ?? utf8 "
			  "\xc3\xa9") == 0,
	   "the_message_round_trips_bad_bytes_as_question_marks");
	ok(a && str_of(a, "level") && strcmp(str_of(a, "level"), "info") == 0 &&
		   str_of(a, "time") && strlen(str_of(a, "time")) == 20,
	   "level_and_rfc3339_time");
	ok(a && str_of(a, "reqId") && strcmp(str_of(a, "reqId"), "abc123") == 0,
	   "the_request_id_of_the_thread");
	ok(a && str_of(a, "route") && strcmp(str_of(a, "route"), "/pki/signers/*/sign") == 0 &&
		   str_of(a, "method") && strcmp(str_of(a, "method"), "POST") == 0,
	   "method_and_route");
	ok(a && str_of(a, "principal") && strcmp(str_of(a, "principal"), "ci \"runner\"") == 0 &&
		   str_of(a, "signer") && strcmp(str_of(a, "signer"), "demo-ec") == 0,
	   "principal_and_signer");
	const cJSON *st = a ? cJSON_GetObjectItemCaseSensitive(a, "status") : NULL;
	const cJSON *ms = a ? cJSON_GetObjectItemCaseSensitive(a, "ms") : NULL;
	ok(cJSON_IsNumber(st) && st->valueint == 200 && cJSON_IsNumber(ms) && ms->valueint == 7 &&
		   str_of(a, "outcome") && strcmp(str_of(a, "outcome"), "ok") == 0,
	   "status_outcome_and_duration_are_fields");
	ok(b != NULL, "a_message_longer_than_a_line_is_cut_but_still_valid_json");
	ok(b && str_of(b, "msg") && strlen(str_of(b, "msg")) > 1000 &&
		   strlen(str_of(b, "msg")) < sizeof(big) - 1,
	   "the_long_message_is_cut_short (%zu chars)",
	   b && str_of(b, "msg") ? strlen(str_of(b, "msg")) : (size_t)0);
	ok(b && !cJSON_GetObjectItemCaseSensitive(b, "reqId") && str_of(b, "level") &&
		   strcmp(str_of(b, "level"), "warn") == 0,
	   "no_request_fields_once_the_request_is_cleared");
	cJSON_Delete(a);
	cJSON_Delete(b);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);

	/* a request with only an id leaves the rest out */
	rs_log_request only = {.req_id = "r2", .ms = -1};
	rs_log_set_request(&only);
	rs_err("short");
	rs_log_set_request(NULL);
	n = read_lines(lines, 8);
	cJSON *c = n == 1 ? cJSON_Parse(lines[0]) : NULL;
	ok(c && str_of(c, "reqId") && !cJSON_GetObjectItemCaseSensitive(c, "status") &&
		   !cJSON_GetObjectItemCaseSensitive(c, "ms") &&
		   !cJSON_GetObjectItemCaseSensitive(c, "route"),
	   "unset_fields_are_left_out");
	cJSON_Delete(c);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);

	rs_log_set_format(RS_LOG_TEXT);
	rs_info("back to text");
	n = read_lines(lines, 8);
	ok(n == 1 && lines[0][0] != '{' && strstr(lines[0], "INFO: back to text"),
	   "text_again_after_json");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	rs_info("a\nb");
	n = read_lines(lines, 8);
	ok(n == 1 && strstr(lines[0], "INFO: a?b\n"), "a_newline_cannot_forge_a_text_line");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	rs_log_set_file(NULL);
	unlink(path);
	return tap_done();
}
