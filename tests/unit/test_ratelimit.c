/* Unit tests of the rate limiter (server/http/ratelimit.c) on a clock the
 * test sets: failures block at the limit and back off exponentially, a
 * quiet window forgives, the table stays within its slots whatever keys
 * arrive and keeps the blocked ones, token buckets refill at their rate,
 * and source addresses become keys (IPv6 by /64). */
#include <stdio.h>
#include <string.h>
#include "server/http/ratelimit.h"
#include "tap.h"

/* n failures of key at time t; the block the last one started (0: none),
 * and whether any before it started one. */
static long fail_n(srv_ratelimit *rl, const char *key, unsigned limit, int n, double t, int *early)
{
	long b = 0;
	*early = 0;
	for (int i = 0; i < n; i++) {
		b = srv_ratelimit_fail(rl, key, limit, t);
		if (b && i < n - 1)
			*early = 1;
	}
	return b;
}

static void failures(void)
{
	srv_ratelimit *rl = srv_ratelimit_new(64);
	int early = 0;
	double t = 1000;

	if (!rl)
		tap_bail("no limiter");
	ok(fail_n(rl, "c:a", 10, 10, t, &early) == 60 && !early,
	   "the_tenth_failure_in_a_window_blocks_for_60_s_and_the_nine_before_do_not");
	ok(srv_ratelimit_blocked(rl, "c:a", t) == 60 &&
		   srv_ratelimit_blocked(rl, "c:a", t + 59.5) == 1 &&
		   srv_ratelimit_blocked(rl, "c:a", t + 60) == 0,
	   "a_block_reports_whole_seconds_left_and_ends_on_time");
	ok(srv_ratelimit_fail(rl, "c:a", 10, t + 30) == 0 &&
		   srv_ratelimit_blocked(rl, "c:a", t + 30) == 30,
	   "failures_while_blocked_neither_count_nor_extend_the_block");
	ok(srv_ratelimit_blocked(rl, "c:b", t) == 0 &&
		   srv_ratelimit_blocked(rl, "a:10.0.0.1", t) == 0,
	   "other_keys_are_not_blocked");

	/* each block that follows within a window of the last doubles */
	long want[] = {120, 240, 480, 900, 900};
	int doubled = 1;
	t += 60;
	for (size_t i = 0; i < TAP_COUNT(want); i++) {
		long b = fail_n(rl, "c:a", 10, 10, t + 1, &early);
		if (b != want[i] || early)
			doubled = 0;
		t += 1 + (double)b;
	}
	ok(doubled, "blocks_that_follow_each_other_double_up_to_15_minutes");

	/* a whole window without a failure after a block: back to 60 s */
	t += SRV_RL_WINDOW;
	ok(fail_n(rl, "c:a", 10, 10, t, &early) == 60 && !early,
	   "a_quiet_window_after_a_block_starts_again_from_60_s");

	ok(fail_n(rl, "c:spread", 10, 9, t, &early) == 0 &&
		   fail_n(rl, "c:spread", 10, 9, t + SRV_RL_WINDOW, &early) == 0 &&
		   srv_ratelimit_blocked(rl, "c:spread", t + SRV_RL_WINDOW) == 0,
	   "nine_failures_a_window_never_block");

	fail_n(rl, "c:ok", 10, 9, t, &early);
	srv_ratelimit_forget(rl, "c:ok");
	ok(srv_ratelimit_fail(rl, "c:ok", 10, t) == 0 && fail_n(rl, "c:ok", 10, 9, t, &early) == 60,
	   "a_success_forgets_the_failures_before_it");

	size_t before = srv_ratelimit_size(rl);
	ok(fail_n(rl, "c:off", 0, 1000, t, &early) == 0 &&
		   srv_ratelimit_blocked(rl, "c:off", t) == 0 && srv_ratelimit_size(rl) == before,
	   "limit_0_blocks_nothing_and_keeps_no_key");
	ok(srv_ratelimit_fail(
		   rl, "c:0123456789012345678901234567890123456789012345678901234567890123456789",
		   1, t) == 0 &&
		   srv_ratelimit_size(rl) == before,
	   "a_key_too_long_to_hold_is_neither_kept_nor_blocked");
	srv_ratelimit_free(rl);
}

/* An attacker sends failures under ever new keys: the table keeps its
 * size, and keys that are blocked stay blocked (unblocked ones go first). */
static void bounded(void)
{
	srv_ratelimit *rl = srv_ratelimit_new(64);
	char key[32];
	int early = 0, kept = 1;
	double t = 50;

	if (!rl)
		tap_bail("no limiter");
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "a:blocked-%d", i);
		fail_n(rl, key, 3, 3, t, &early);
	}
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "c:flood-%d", i);
		srv_ratelimit_fail(rl, key, 10, t + 1);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "a:blocked-%d", i);
		if (srv_ratelimit_blocked(rl, key, t + 1) != 59)
			kept = 0;
	}
	ok(srv_ratelimit_size(rl) == 64,
	   "a_flood_of_100000_keys_leaves_the_table_at_its_64_slots (%zu)", srv_ratelimit_size(rl));
	ok(kept, "blocked_keys_outlive_a_flood_of_new_keys");
	srv_ratelimit_free(rl);
}

static void buckets(void)
{
	srv_ratelimit *rl = srv_ratelimit_new(16);
	int took = 1;
	double t = 10;

	if (!rl)
		tap_bail("no limiter");
	for (int i = 0; i < 5; i++)
		if (srv_ratelimit_take(rl, "p1", 5, t) != 0)
			took = 0;
	ok(took && srv_ratelimit_take(rl, "p1", 5, t) == 1,
	   "a_rate_of_5_takes_5_at_once_then_asks_to_wait_1_s");
	ok(srv_ratelimit_take(rl, "p1", 5, t + 0.1) == 1 &&
		   srv_ratelimit_take(rl, "p1", 5, t + 0.21) == 0,
	   "a_bucket_refills_one_per_fifth_of_a_second");
	ok(srv_ratelimit_take(rl, "p2", 5, t) == 0, "each_key_has_its_own_bucket");
	ok(srv_ratelimit_take(rl, "slow", 0.5, t) == 0 &&
		   srv_ratelimit_take(rl, "slow", 0.5, t) == 2 &&
		   srv_ratelimit_take(rl, "slow", 0.5, t + 2) == 0,
	   "a_rate_below_1_holds_one_and_refills_it_in_1_over_rate_seconds");
	ok(srv_ratelimit_take(rl, "p3", 1, t) == 0 &&
		   srv_ratelimit_take(rl, "p3", 1, t + 100) == 0 &&
		   srv_ratelimit_take(rl, "p3", 1, t + 100) == 1,
	   "a_bucket_never_holds_more_than_its_rate");
	srv_ratelimit_free(rl);
}

static void addresses(void)
{
	char a[SRV_RL_KEY_MAX], b[SRV_RL_KEY_MAX];

	srv_address_key("192.0.2.7", a);
	ok(strcmp(a, "a:192.0.2.7") == 0, "an_ipv4_address_is_its_own_key");
	srv_address_key("2001:db8:1:2:aaaa::1", a);
	srv_address_key("2001:db8:1:2:bbbb::9", b);
	ok(strcmp(a, b) == 0 && strcmp(a, "a:2001:db8:1:2::/64") == 0,
	   "ipv6_addresses_of_one_64_share_a_key (%s)", a);
	srv_address_key("2001:db8:1:3::1", b);
	ok(strcmp(a, b) != 0, "ipv6_addresses_of_another_64_do_not");
	srv_address_key("::ffff:192.0.2.7", a);
	ok(strcmp(a, "a:192.0.2.7") == 0, "an_ipv4_mapped_address_is_its_ipv4_key");
}

int main(void)
{
	plan(10 + 2 + 5 + 4);
	failures();
	bounded();
	buckets();
	addresses();
	return tap_done();
}
