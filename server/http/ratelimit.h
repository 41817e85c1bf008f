/* Rate limits, in memory and bounded: failed logins and bad bearer tokens
 * (per clientId and per source address, with exponential backoff) and
 * max_sign_rate (signatures per second per principal). Each limiter is a
 * fixed-size table; when it is full, a new key takes the slot of the least
 * recently active key that is not blocked, so an attacker cannot grow it. */
#ifndef SRV_RATELIMIT_H
#define SRV_RATELIMIT_H
#include <stddef.h>
#include "server/http/http.h"

/* Failures are counted in a window that opens with a key's first one. */
#define SRV_RL_WINDOW 60.0
/* The limit-th failure inside a window blocks the key for 60 s, doubling
 * with each block that follows within a window of the last, up to 15 min;
 * a full window without a block starts again from 60 s. */
#define SRV_RL_FIRST_BLOCK 60.0
#define SRV_RL_MAX_BLOCK 900.0
#define SRV_RL_KEY_MAX 72 /* "c:" + a clientId (at most 64) or "a:" + an address */

typedef struct srv_ratelimit srv_ratelimit;

/* A table of slots keys (rounded up to a power of two, at least 16). */
srv_ratelimit *srv_ratelimit_new(size_t slots);
void srv_ratelimit_free(srv_ratelimit *rl);
/* Seconds on the monotonic clock: the `now` every call takes. */
double srv_ratelimit_now(void);

/* Whole seconds until key may be tried again; 0 when it may now. */
long srv_ratelimit_blocked(srv_ratelimit *rl, const char *key, double now);
/* Counts a failure of key. Returns the seconds of the block it starts
 * when it is the limit-th in its window (limit 0: never), else 0. */
long srv_ratelimit_fail(srv_ratelimit *rl, const char *key, unsigned limit, double now);
/* A success of key: its failures are forgotten. */
void srv_ratelimit_forget(srv_ratelimit *rl, const char *key);
/* A token bucket of rate per second holding at most max(rate, 1): 0 when
 * key takes one now, else the whole seconds (>= 1) until one is there. */
long srv_ratelimit_take(srv_ratelimit *rl, const char *key, double rate, double now);
/* Keys held (for tests). */
size_t srv_ratelimit_size(srv_ratelimit *rl);

/* ---- the API's limits, on srv_ctx's limiters (NULL = not limited) ---- */

/* Login of clientId: 429 rateLimited (Retry-After set) while the clientId
 * or the source address is blocked; call before the secret is checked. */
srv_err srv_limit_login(srv_req *r, const char *client_id);
/* Its outcome: a failure counts for both; a success forgets the clientId. */
void srv_limit_login_result(srv_req *r, const char *client_id, int ok);
/* A bearer token from r's address: 429 while the address is blocked. */
srv_err srv_limit_bearer(srv_req *r);
/* A token found invalid counts for the address. */
void srv_limit_bearer_failed(srv_req *r);
/* A sign attempt of r's principal on a signer it cannot see (or that does
 * not exist): counted as a failure of the principal (max_auth_failures a
 * window, then blocks as for logins); 429 while it is blocked. */
srv_err srv_limit_unseen(srv_req *r);
/* max_sign_rate: 429 when r's principal signed its rate this second. */
srv_err srv_limit_sign(srv_req *r);

/* The key of a source address: IPv4 as it is, IPv6 by its /64 (one host
 * holds a whole /64), an IPv4-mapped IPv6 address as its IPv4 address. */
void srv_address_key(const char *ip, char out[SRV_RL_KEY_MAX]);

#endif
