/* Sign attempts on a signer the caller cannot see: one that does not
 * exist, is retired, or on which the caller has no standing (access.c).
 * They are not history records -- an outsider could fill the disk with
 * them, under names no API could read back -- but they are counted, the
 * count is logged, and they are rate-limited per principal. */
#ifndef SRV_SIGN_UNSEEN_H
#define SRV_SIGN_UNSEEN_H
#include "server/http/http.h"

/* Counts one attempt; logs the count at the 1st, 2nd, 4th, 8th, ...
 * attempt, and at the next one once a minute has passed since the last
 * line, so that a burst is seen at once and a steady trickle once a
 * minute. */
void srv_unseen_count(const srv_req *r);
/* Attempts counted since the process started. */
unsigned long long srv_unseen_total(void);

/* The rate limit of these attempts (srv_limit_unseen, ratelimit.h: per
 * principal, max_auth_failures a window, then blocks of 60 s doubling):
 * SRV_OK to answer 404 as usual, else the 429 rateLimited it recorded on r
 * (Retry-After set). */
srv_err srv_unseen_limit(srv_req *r);

#endif
