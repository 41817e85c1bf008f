/* The read caches of server/http/cache.c: values of every size round-trip
 * through every slot (under UndefinedBehaviorSanitizer, scripts/check-
 * sanitizers, a misaligned slot is an error: the stride was once head plus
 * value, so a cache of ints misaligned every other slot's head), a bump of
 * the generation drops every entry, and a value read before a bump is not
 * kept. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "server/http/cache.h"
#include "tap.h"

#define SLOTS 7
#define MAX_VALUE 40

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Puts value under key and reads it back; a read that comes after the
 * entry's time to live (a descheduled process) tries again. 1 when the
 * value read is the value put. */
static int round_trip(srv_cache *c, const char *key, const unsigned char *val, size_t size)
{
	unsigned char got[MAX_VALUE];

	for (;;) {
		long long t0 = now_ms();
		memset(got, 0, sizeof(got));
		srv_cache_put(c, key, srv_cache_gen(), val);
		int hit = srv_cache_get(c, key, got);
		if (hit)
			return memcmp(got, val, size) == 0;
		if (now_ms() - t0 < SRV_CACHE_TTL_MS)
			return 0;
	}
}

int main(void)
{
	unsigned char val[MAX_VALUE];
	char key[32];
	int sizes_ok = 0;

	plan(3);
	for (size_t size = 1; size <= MAX_VALUE; size++) {
		srv_cache *c = srv_cache_new(SLOTS, size);
		int all = c != NULL;
		/* enough keys to land in every slot */
		for (int k = 0; all && k < 8 * SLOTS; k++) {
			snprintf(key, sizeof(key), "key-%d", k);
			for (size_t i = 0; i < size; i++)
				val[i] = (unsigned char)(k * 31 + i);
			all = round_trip(c, key, val, size);
		}
		sizes_ok += all;
		srv_cache_free(c);
	}
	ok(sizes_ok == MAX_VALUE, "values_of_1_to_%d_bytes_round_trip_through_every_slot (%d/%d)",
	   MAX_VALUE, sizes_ok, MAX_VALUE);

	srv_cache *c = srv_cache_new(SLOTS, sizeof(int));
	int v = 42, out = 0;
	srv_cache_put(c, "bumped", srv_cache_gen(), &v);
	srv_cache_bump();
	ok(c && !srv_cache_get(c, "bumped", &out), "a_bump_of_the_generation_drops_every_entry");

	unsigned long gen = srv_cache_gen();
	srv_cache_bump(); /* a write between the read and the put */
	srv_cache_put(c, "stale", gen, &v);
	ok(c && !srv_cache_get(c, "stale", &out), "a_value_read_before_a_bump_is_not_kept");
	srv_cache_free(c);
	return tap_done();
}
