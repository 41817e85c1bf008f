/* Unit tests for the table-driven configuration parser. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsign/conf.h"
#include "tap.h"

struct cfg {
	char *listen;
	char *db;
	long long threads;
	long long offset;
	int tls;
	int level;
	char *shortstr;
};

static const char *const levels[] = {"error", "warn", "info", "debug", NULL};

static const rs_conf_item tab[] = {
	{"listen", RS_CONF_STR, offsetof(struct cfg, listen), "127.0.0.1:8443", 0, 0, NULL},
	{"db", RS_CONF_STR, offsetof(struct cfg, db), NULL, 0, 0, NULL},
	{"threads", RS_CONF_INT, offsetof(struct cfg, threads), "4", 1, 64, NULL},
	{"offset", RS_CONF_INT, offsetof(struct cfg, offset), "-3", -10, 10, NULL},
	{"tls", RS_CONF_BOOL, offsetof(struct cfg, tls), "yes", 0, 0, NULL},
	{"log_level", RS_CONF_ENUM, offsetof(struct cfg, level), "info", 0, 0, levels},
	{"short", RS_CONF_STR, offsetof(struct cfg, shortstr), NULL, 0, 4, NULL},
	{NULL, 0, 0, NULL, 0, 0, NULL},
};

static char err[RS_CONF_ERRLEN];

static int parse(struct cfg *c, const char *text)
{
	err[0] = '\0';
	return rs_conf_parse("test.conf", text, strlen(text), tab, c, err, sizeof(err));
}

/* Parses text on fresh defaults; returns the status, frees nothing. */
static int fresh(struct cfg *c, const char *text)
{
	memset(c, 0, sizeof(*c));
	if (rs_conf_defaults(tab, c, err, sizeof(err)) != 0)
		return -2;
	return parse(c, text);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t n = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int main(void)
{
	struct cfg c;
	char path[] = "/tmp/rsign-test-conf-XXXXXX";
	char file[sizeof(path) + 16];
	char *bigtext;
	int r;

	plan(63);
	memset(&c, 0, sizeof(c));
	ok(rs_conf_defaults(tab, &c, err, sizeof(err)) == 0, "conf_defaults_apply");
	ok(c.listen && strcmp(c.listen, "127.0.0.1:8443") == 0, "conf_default_str_is_copied");
	ok(c.db == NULL, "conf_str_without_default_stays_null");
	ok(c.threads == 4 && c.offset == -3 && c.tls == 1 && c.level == 2,
	   "conf_defaults_set_every_type");

	r = parse(&c, "# comment\n"
		      "\n"
		      "   \t\n"
		      "  listen =  0.0.0.0:9000  \n"
		      "threads=8\n"
		      "offset = -10\n"
		      "tls = off\n"
		      "log_level = debug\n"
		      "db = \"/var/lib/rsign/db # not a comment = still value\"\n");
	ok(r == 0, "conf_parse_accepts_valid_file");
	ok(c.listen && strcmp(c.listen, "0.0.0.0:9000") == 0, "conf_str_is_trimmed_and_replaced");
	ok(c.threads == 8, "conf_int_parsed");
	ok(c.offset == -10, "conf_int_accepts_negative_min");
	ok(c.tls == 0, "conf_bool_off_is_false");
	ok(c.level == 3, "conf_enum_is_index");
	ok(c.db && strcmp(c.db, "/var/lib/rsign/db # not a comment = still value") == 0,
	   "conf_quoted_value_keeps_hash_and_equals");
	rs_conf_free(tab, &c);
	ok(c.listen == NULL && c.db == NULL && c.shortstr == NULL,
	   "conf_free_sets_str_fields_null");
	rs_conf_free(tab, &c);
	ok(c.listen == NULL && c.db == NULL && c.shortstr == NULL && c.threads == 8 &&
		   c.offset == -10 && c.tls == 0 && c.level == 3,
	   "conf_free_twice_keeps_strings_null_and_other_fields_alone");

	ok(fresh(&c, "listen = a=b\n") == 0 && strcmp(c.listen, "a=b") == 0,
	   "conf_unquoted_value_may_contain_equals");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "listen = host # trailing comment\n") == 0 && strcmp(c.listen, "host") == 0,
	   "conf_unquoted_value_stops_at_comment");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "listen = \"x\"   # comment\n") == 0 && strcmp(c.listen, "x") == 0,
	   "conf_quoted_value_allows_trailing_comment");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "listen = \"  spaced  \"\n") == 0 && strcmp(c.listen, "  spaced  ") == 0,
	   "conf_quoted_value_keeps_inner_whitespace");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "listen = \"\"\n") == 0 && strcmp(c.listen, "") == 0,
	   "conf_quoted_empty_value_is_empty_string");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = \"12\"\ntls = \"true\"\nlog_level = \"warn\"\n") == 0 &&
		   c.threads == 12 && c.tls == 1 && c.level == 1,
	   "conf_quotes_are_optional_for_every_type");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 2\r\nlisten = crlf\r\n") == 0 && c.threads == 2 &&
		   strcmp(c.listen, "crlf") == 0,
	   "conf_accepts_crlf_lines");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 3") == 0 && c.threads == 3,
	   "conf_accepts_last_line_without_newline");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "") == 0 && c.threads == 4, "conf_empty_text_keeps_defaults");
	rs_conf_free(tab, &c);

	{
		static const char *const yes[] = {"true", "yes", "on", "1"};
		static const char *const no[] = {"false", "no", "off", "0"};
		char line[64];
		int i, all = 1;

		for (i = 0; i < 4; i++) {
			snprintf(line, sizeof(line), "tls = %s\n", yes[i]);
			if (fresh(&c, line) != 0 || c.tls != 1)
				all = 0;
			rs_conf_free(tab, &c);
			snprintf(line, sizeof(line), "tls = %s\n", no[i]);
			if (fresh(&c, line) != 0 || c.tls != 0)
				all = 0;
			rs_conf_free(tab, &c);
		}
		ok(all, "conf_bool_accepts_every_spelling");
	}

	r = fresh(&c, "threads = 1\n\n# x\nthreads = 2\n");
	ok(r == -1 && strcmp(err, "test.conf:4: duplicate setting \"threads\"") == 0,
	   "conf_rejects_duplicate_with_file_line");
	rs_conf_free(tab, &c);
	r = fresh(&c, "# a\nfoo = 1\n");
	ok(r == -1 && strcmp(err, "test.conf:2: unknown setting \"foo\"") == 0,
	   "conf_rejects_unknown_setting_with_file_line");
	rs_conf_free(tab, &c);
	r = fresh(&c, "Threads = 1\n");
	ok(r == -1 && strstr(err, "unknown setting"), "conf_names_are_case_sensitive");
	rs_conf_free(tab, &c);
	r = fresh(&c, "\n\nthreads 5\n");
	ok(r == -1 && strncmp(err, "test.conf:3: ", 13) == 0, "conf_rejects_line_without_equals");
	rs_conf_free(tab, &c);
	r = fresh(&c, " = 5\n");
	ok(r == -1 && strncmp(err, "test.conf:1: ", 13) == 0, "conf_rejects_empty_name");
	rs_conf_free(tab, &c);

	r = fresh(&c, "\n\n\n\n\n\nthreads = 65\n");
	ok(r == -1 && strcmp(err, "test.conf:7: threads must be between 1 and 64") == 0,
	   "conf_int_rejects_above_max_with_file_line");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 0\n") == -1 && strstr(err, "between 1 and 64"),
	   "conf_int_rejects_below_min");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 64\n") == 0 && c.threads == 64, "conf_int_accepts_max");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 1\n") == 0 && c.threads == 1, "conf_int_accepts_min");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 4x\n") == -1, "conf_int_rejects_trailing_letters");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads =\n") == -1, "conf_int_rejects_empty");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = 99999999999999999999999\n") == -1, "conf_int_rejects_overflow");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "threads = "
		     "0000000000000000000000000000000000000000000000000000000000000000005\n") == -1,
	   "conf_int_rejects_overlong_text");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "offset = -11\n") == -1 && strstr(err, "offset must be between -10 and 10"),
	   "conf_int_rejects_below_negative_min");
	rs_conf_free(tab, &c);

	r = fresh(&c, "\n\nlog_level = verbose\n");
	ok(r == -1 && strcmp(err,
			     "test.conf:3: log_level must be one of error, warn, info, debug") == 0,
	   "conf_enum_rejects_unknown_value_listing_choices");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "tls = maybe\n") == -1 &&
		   strcmp(err, "test.conf:1: tls must be true or false") == 0,
	   "conf_bool_rejects_other_words");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "short = abcd\n") == 0 && strcmp(c.shortstr, "abcd") == 0,
	   "conf_str_accepts_max_bytes");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "short = abcde\n") == -1 &&
		   strstr(err, "test.conf:1: short must be at most 4"),
	   "conf_str_rejects_over_max_bytes");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "listen = \"open\n") == -1 && strncmp(err, "test.conf:1: ", 13) == 0,
	   "conf_rejects_unterminated_quote");
	rs_conf_free(tab, &c);
	ok(fresh(&c, "listen = \"a\" b\n") == -1, "conf_rejects_text_after_closing_quote");
	rs_conf_free(tab, &c);
	ok(rs_conf_parse("test.conf", "threads = 1\0\n", 13, tab, &c, err, sizeof(err)) == -1,
	   "conf_rejects_nul_byte");

	{
		static const rs_conf_item bad[] = {
			{"threads", RS_CONF_INT, offsetof(struct cfg, threads), "100", 1, 64, NULL},
			{NULL, 0, 0, NULL, 0, 0, NULL},
		};

		memset(&c, 0, sizeof(c));
		ok(rs_conf_defaults(bad, &c, err, sizeof(err)) == -1 && strstr(err, "threads"),
		   "conf_defaults_use_the_same_checks");
	}

	/* Later sources replace earlier ones, and the old string is freed
	 * (valgrind would report a leak otherwise). */
	ok(fresh(&c, "listen = first\n") == 0 && parse(&c, "listen = second\n") == 0 &&
		   strcmp(c.listen, "second") == 0,
	   "conf_later_source_replaces_str");
	rs_conf_free(tab, &c);

	ok(mkdtemp(path) != NULL, "conf_tmpdir_created");
	snprintf(file, sizeof(file), "%s/rsign.conf", path);

	ok(write_file(file, "threads = 9\nlisten = file\n", 0600) == 0, "conf_file_written");
	memset(&c, 0, sizeof(c));
	ok(rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == 0 && c.threads == 9 &&
		   strcmp(c.listen, "file") == 0,
	   "conf_load_reads_private_file");
	rs_conf_free(tab, &c);

	ok(write_file(file, "threads = 9\n", 0620) == 0, "conf_file_group_writable_written");
	memset(&c, 0, sizeof(c));
	r = rs_conf_load(file, 1, tab, &c, err, sizeof(err));
	ok(r == -1 && strstr(err, "refusing a configuration file writable by group or others") &&
		   strncmp(err, file, strlen(file)) == 0,
	   "conf_load_strict_refuses_group_writable");
	ok(write_file(file, "threads = 9\n", 0602) == 0 &&
		   rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == -1,
	   "conf_load_strict_refuses_other_writable");
	ok(rs_conf_load(file, 0, tab, &c, err, sizeof(err)) == 0 && c.threads == 9,
	   "conf_load_lenient_accepts_writable");
	rs_conf_free(tab, &c);
	ok(write_file(file, "threads = 9\n", 0644) == 0 &&
		   rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == 0,
	   "conf_load_strict_accepts_world_readable");

	ok(write_file(file, "threads = 9\nnope = 1\n", 0600) == 0 &&
		   rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == -1,
	   "conf_load_reports_parse_error");
	{
		char want[128];

		snprintf(want, sizeof(want), "%s:2: unknown setting \"nope\"", file);
		ok(strcmp(err, want) == 0, "conf_load_error_names_path_and_line");
	}

	bigtext = malloc(70 * 1024);
	memset(bigtext, '#', 70 * 1024 - 1);
	bigtext[70 * 1024 - 1] = '\0';
	ok(write_file(file, bigtext, 0600) == 0 &&
		   rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == -1,
	   "conf_load_rejects_file_over_64k");
	bigtext[64 * 1024] = '\0';
	ok(write_file(file, bigtext, 0600) == 0 &&
		   rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == 0,
	   "conf_load_accepts_file_of_exactly_64k");
	free(bigtext);

	ok(unlink(file) == 0 && rs_conf_load(file, 1, tab, &c, err, sizeof(err)) == -1 &&
		   strncmp(err, file, strlen(file)) == 0,
	   "conf_load_missing_file_names_path");
	ok(rs_conf_load(path, 1, tab, &c, err, sizeof(err)) == -1, "conf_load_rejects_directory");
	ok(rmdir(path) == 0, "conf_tmpdir_removed");
	{
		/* Errors go through rs_errf: cut to the caller's buffer, and
		 * none asked for is none written. */
		char small[12];

		memset(small, 'x', sizeof(small));
		ok(rs_conf_parse("test.conf", "nope = 1\n", 9, tab, &c, small, 8) == -1 &&
			   strcmp(small, "test.co") == 0 && small[8] == 'x',
		   "conf_error_is_cut_to_the_callers_buffer");
		ok(rs_conf_parse("test.conf", "nope = 1\n", 9, tab, &c, NULL, 0) == -1,
		   "conf_error_without_a_buffer_still_fails");
	}
	rs_conf_free(tab, &c);
	return tap_done();
}
