/* The count of sign attempts on signers the caller cannot see, its log
 * line, and the rate limiter's hook for them (sign_unseen.h). */
#include <stdatomic.h>
#include <time.h>
#include "rsign/log.h"
#include "server/api/sign_unseen.h"
#include "server/http/ratelimit.h"

#define LOG_EVERY_S 60

static atomic_ullong total;
static atomic_llong last_log; /* CLOCK_MONOTONIC seconds; 0 = never */

static long long now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec + 1; /* never 0 */
}

void srv_unseen_count(const srv_req *r)
{
	unsigned long long n = atomic_fetch_add(&total, 1) + 1;
	long long now = now_s(), last = atomic_load(&last_log);
	int burst = (n & (n - 1)) == 0;
	if (!burst && now - last < LOG_EVERY_S)
		return;
	if (!atomic_compare_exchange_strong(&last_log, &last, now) && !burst)
		return; /* another thread logs this minute */
	/* the path's signer segment is the caller's text: not logged */
	rs_warn("sign: %llu attempt%s on signers that do not exist or that the caller cannot "
		"see since start (latest by %s from %s); not recorded in any history",
		n, n == 1 ? "" : "s", r->actor.name ? r->actor.name : "?", r->source_ip);
}

unsigned long long srv_unseen_total(void)
{
	return atomic_load(&total);
}

srv_err srv_unseen_limit(srv_req *r)
{
	return srv_limit_unseen(r);
}
