/* Unit tests for the small helpers of common/util.c: rs_errf. */
#include <string.h>

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

int main(void)
{
	plan(5);
	errf_formats_whole_message();
	errf_truncates_and_terminates();
	errf_ignores_missing_buffer();
	return tap_done();
}
