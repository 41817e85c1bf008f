/* Unit tests for the bounded buffer and its sticky failure flag. */
#include <stdlib.h>
#include <string.h>

#include "rsign/buf.h"
#include "tap.h"

int main(void)
{
	rs_buf b;
	unsigned char *p;
	size_t n, i;
	char big[700]; /* the last append takes 700 bytes of it */

	plan(31);
	rs_buf_init(&b, 16);
	ok(rs_buf_ok(&b) && b.len == 0, "buf_init_is_empty_and_ok");
	ok(strcmp(rs_buf_str(&b), "") == 0, "buf_str_of_empty_is_empty_string");
	ok(rs_buf_append_str(&b, "hello") == 0 && b.len == 5, "buf_append_str_appends");
	ok(rs_buf_printf(&b, " %d", 42) == 0, "buf_printf_appends");
	ok(strcmp(rs_buf_str(&b), "hello 42") == 0, "buf_contents_are_nul_terminated");
	ok(b.cap <= b.max + 1, "buf_cap_never_exceeds_max_plus_one");
	ok(rs_buf_append(&b, "12345678", 8) == 0 && b.len == 16, "buf_append_up_to_exactly_max");
	ok(b.cap == 17, "buf_growth_clamps_at_max_plus_one");
	ok(rs_buf_append(&b, "x", 1) == -1, "buf_append_over_max_fails");
	ok(!rs_buf_ok(&b), "buf_failure_sets_flag");
	ok(b.len == 16 && strcmp(rs_buf_str(&b), "hello 4212345678") == 0,
	   "buf_failed_append_leaves_contents_intact");
	ok(rs_buf_append(&b, "", 0) == -1, "buf_failure_is_sticky_even_for_empty_append");
	ok(rs_buf_printf(&b, "%s", "") == -1, "buf_printf_fails_after_failure");
	ok(rs_buf_steal(&b, &n) == NULL && n == 0, "buf_steal_of_failed_buffer_returns_null");
	ok(b.data == NULL && b.len == 0, "buf_steal_empties_buffer");
	rs_buf_reset(&b);
	ok(rs_buf_ok(&b), "buf_reset_clears_failure");
	rs_buf_free(&b);

	rs_buf_init(&b, 100);
	ok(rs_buf_printf(&b, "%0120d", 1) == -1 && !rs_buf_ok(&b) && b.len == 0,
	   "buf_printf_over_max_fails_without_writing");
	rs_buf_free(&b);

	rs_buf_init(&b, 1000);
	for (i = 0; i < 10; i++)
		(void)rs_buf_append_str(&b, "abc");
	ok(rs_buf_ok(&b) && b.len == 30, "buf_many_appends_checked_once");
	p = rs_buf_steal(&b, &n);
	ok(p && n == 30 && p[30] == '\0' && memcmp(p, "abcabc", 6) == 0,
	   "buf_steal_hands_over_terminated_storage");
	free(p);
	ok(strcmp(rs_buf_str(&b), "") == 0 && rs_buf_ok(&b), "buf_after_steal_is_empty_and_usable");
	p = rs_buf_steal(&b, &n);
	ok(p && n == 0 && p[0] == '\0', "buf_steal_of_empty_returns_empty_string");
	free(p);

	memset(big, 'q', sizeof(big));
	ok(rs_buf_append(&b, big, 300) == 0 && b.len == 300 && b.cap >= 301 && b.cap <= 1001,
	   "buf_grows_past_initial_capacity");
	ok(rs_buf_append(&b, big, 700) == 0 && b.len == 1000 && b.cap == 1001,
	   "buf_grows_to_exactly_max");
	rs_buf_reset(&b);
	ok(b.len == 0 && strcmp(rs_buf_str(&b), "") == 0 && b.cap == 1001,
	   "buf_reset_keeps_storage");
	rs_buf_free(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf_free_releases_storage");
	rs_buf_free(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0 && b.max == 1000 && rs_buf_ok(&b),
	   "buf_free_twice_leaves_an_empty_buffer_with_its_maximum");
	ok(rs_buf_append_str(&b, "again") == 0 && strcmp(rs_buf_str(&b), "again") == 0,
	   "buf_after_free_is_usable_again");
	rs_buf_free(&b);
	rs_buf_free(NULL);

	rs_buf_init(&b, (size_t)-1);
	ok(rs_buf_append(&b, "x", 1) == 0 && rs_buf_append(&b, "y", (size_t)-1) == -1,
	   "buf_huge_length_fails_without_overflow");
	rs_buf_free(&b);

	rs_buf_init(&b, 64);
	ok(rs_buf_append_str(&b, "secret-token") == 0, "buf_wipe_setup");
	rs_buf_wipe(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf_wipe_frees_storage");
	rs_buf_wipe(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0 && b.max == 64 && rs_buf_ok(&b) &&
		   rs_buf_append_str(&b, "x") == 0 && strcmp(rs_buf_str(&b), "x") == 0,
	   "buf_wipe_of_empty_leaves_a_usable_empty_buffer");
	rs_buf_free(&b);
	rs_buf_wipe(NULL);
	return tap_done();
}
