/* Unit tests for the small helpers of common/util.c: rs_errf, RFC 3339 time,
 * rs_is_text, the two UUID kinds. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rsign/util.h"
#include "tap.h"

static void errf_formats_whole_message(void)
{
	char buf[64];

	memset(buf, 'x', sizeof(buf));
	rs_errf(buf, sizeof(buf), "%s: line %d", "conf", 12);
	ok(strcmp(buf, "conf: line 12") == 0, "errf_formats_whole_message");
}

static void errf_truncates_and_terminates(void)
{
	char buf[16];

	/* Guard bytes after the part handed over must stay as they were. */
	memset(buf, 'x', sizeof(buf));
	rs_errf(buf, 8, "%s", "0123456789abcdef");
	ok(memcmp(buf, "0123456", 7) == 0 && buf[7] == '\0', "errf_truncates_to_errlen_minus_one");
	ok(buf[8] == 'x' && buf[15] == 'x', "errf_writes_nothing_past_errlen");
	memset(buf, 'x', sizeof(buf));
	rs_errf(buf, 1, "%s", "anything");
	ok(buf[0] == '\0' && buf[1] == 'x', "errf_with_one_byte_gives_empty_string");
}

static void errf_ignores_missing_buffer(void)
{
	char buf[4] = {'a', 'b', 'c', 'd'};

	/* A NULL buffer must not be written (a crash ends the run short of
	 * its plan, which the TAP driver reports as an error). */
	rs_errf(NULL, 100, "%s", "nowhere");
	rs_errf(buf, 0, "%s", "nowhere");
	ok(memcmp(buf, "abcd", 4) == 0, "errf_with_null_or_zero_size_buffer_writes_nothing");
}

/* RFC 3339 wants four-digit years: rs_time_format wrote year 500 as
 * "500-01-01T00:00:00Z", which rs_time_parse (and any RFC 3339 parser)
 * refuses though it takes "0500-..." (found by fuzz_time). */
static void time_format_pads_the_year(void)
{
	time_t t = 0, back = 0;
	char buf[RS_TIME_LEN];

	ok(rs_time_parse("0500-01-01T00:00:00Z", &t) == 0, "time_parse_takes_year_500");
	rs_time_format(t, buf);
	ok(strcmp(buf, "0500-01-01T00:00:00Z") == 0, "time_format_writes_year_500_in_four_digits");
	ok(rs_time_parse("0016-12-31T23:59:59Z", &t) == 0, "time_parse_takes_year_16");
	rs_time_format(t, buf);
	ok(rs_time_parse(buf, &back) == 0 && back == t, "time_format_of_year_16_parses_back");
	rs_time_format(1795729467, buf);
	ok(strcmp(buf, "2026-11-26T21:44:27Z") == 0, "time_format_of_a_current_time");
}

/* rs_is_text: the bounds and every control byte (request filters, OIDC
 * values). */
static void is_text_bounds(void)
{
	ok(rs_is_text("a", 1) && rs_is_text("héllo wörld", 255), "is_text_takes_text_within_max");
	ok(!rs_is_text("", 255) && !rs_is_text(NULL, 255) && !rs_is_text("ab", 1),
	   "is_text_refuses_empty_null_and_too_long");
	ok(!rs_is_text("a\nb", 255) &&
		   !rs_is_text("a\x1f"
			       "b",
			       255) &&
		   !rs_is_text("a\x7f", 255) && !rs_is_text("\t", 255),
	   "is_text_refuses_control_characters");
}

/* rs_uuid_v7: version 7, the variant, the time in its first 48 bits, and
 * ids made later sort after earlier ones (what keeps the history's index
 * of ids growing at its end). */
static void uuid_v7_is_time_ordered(void)
{
	char a[RS_UUID_LEN], b[RS_UUID_LEN], v4[RS_UUID_LEN];
	struct timespec ts, pause = {0, 2000000};

	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long now = (unsigned long long)ts.tv_sec * 1000ULL +
				 (unsigned long long)ts.tv_nsec / 1000000ULL;
	ok(rs_uuid_v7(a) == 0 && strlen(a) == 36 && a[8] == '-' && a[13] == '-' && a[14] == '7' &&
		   strchr("89ab", a[19]) != NULL,
	   "uuid_v7_has_version_7_and_the_rfc_variant");
	char ms_hex[13];
	memcpy(ms_hex, a, 8);
	memcpy(ms_hex + 8, a + 9, 4);
	ms_hex[12] = '\0';
	unsigned long long ms = strtoull(ms_hex, NULL, 16);
	ok(ms + 1000 >= now && ms <= now + 1000, "uuid_v7_starts_with_the_time_in_ms");
	nanosleep(&pause, NULL);
	ok(rs_uuid_v7(b) == 0 && strcmp(a, b) < 0 && strcmp(a + 19, b + 19) != 0,
	   "uuid_v7_made_later_sorts_after_and_differs");
	ok(rs_uuid(v4) == 0 && v4[14] == '4' && strchr("89ab", v4[19]) != NULL,
	   "uuid_v4_keeps_version_4");
}

/* rs_pid: the cached pid is this process's, and a forked child gets its
 * own, not the parent's (the module's "initialised here" check and every
 * log line rely on it). */
static void pid_is_kept_and_renewed_at_fork(void)
{
	ok(rs_pid() == (long)getpid() && rs_pid() == (long)getpid(),
	   "pid_is_this_processs_on_every_call");
	pid_t child = fork();
	if (child == 0)
		_exit(rs_pid() == (long)getpid() && rs_pid() != (long)getppid() ? 0 : 1);
	int status = -1;
	ok(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
		   WEXITSTATUS(status) == 0,
	   "pid_in_a_forked_child_is_the_childs");
}

int main(void)
{
	plan(19);
	pid_is_kept_and_renewed_at_fork();
	uuid_v7_is_time_ordered();
	is_text_bounds();
	errf_formats_whole_message();
	errf_truncates_and_terminates();
	errf_ignores_missing_buffer();
	time_format_pads_the_year();
	return tap_done();
}
