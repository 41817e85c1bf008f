/* The rate limiter of ratelimit.h: a fixed table of keys under one lock,
 * each with its failures and block (logins, bearer tokens) or its token
 * bucket (signatures), and the API's limits on top of it. */
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/ratelimit.h"

/* A key is looked for in PROBE slots from its hash, so a lookup costs the
 * same whatever the table holds, and a full table evicts among them. */
#define PROBE 16

typedef struct {
	char key[SRV_RL_KEY_MAX]; /* "" = free */
	double last;		  /* last activity: the eviction order */
	double window_start;	  /* failures: the window's start; bucket: last refill */
	double until;		  /* blocked until (0: not) */
	double tokens;		  /* bucket */
	unsigned failures;
	unsigned strikes; /* blocks that followed one another */
} rl_entry;

struct srv_ratelimit {
	pthread_mutex_t lock;
	size_t mask;
	uint64_t seed; /* keeps an attacker from choosing keys that share slots */
	size_t used;
	rl_entry *slots;
};

srv_ratelimit *srv_ratelimit_new(size_t slots)
{
	size_t n = 16;
	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	srv_ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	char seed[17];
	rl->slots = calloc(n, sizeof(*rl->slots));
	if (!rl->slots || rs_random_hex(8, seed) != 0) {
		free(rl->slots);
		free(rl);
		return NULL;
	}
	rl->seed = strtoull(seed, NULL, 16);
	rl->mask = n - 1;
	pthread_mutex_init(&rl->lock, NULL);
	return rl;
}

void srv_ratelimit_free(srv_ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->slots);
	free(rl);
}

double srv_ratelimit_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t slot_of(const srv_ratelimit *rl, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ rl->seed; /* FNV-1a, seeded */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h ^= h >> 29;
	return (size_t)h & rl->mask;
}

static rl_entry *find_inlock(srv_ratelimit *rl, const char *key)
{
	size_t s = slot_of(rl, key);
	for (size_t i = 0; i < PROBE; i++) {
		rl_entry *e = &rl->slots[(s + i) & rl->mask];
		if (e->key[0] && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* The key's entry, made when missing: in a free slot, else in the place of
 * the least recently active unblocked key, else of the one unblocked
 * first. NULL for a key too long to hold. */
static rl_entry *get_inlock(srv_ratelimit *rl, const char *key, double now)
{
	rl_entry *e = find_inlock(rl, key), *victim = NULL;
	if (e)
		return e;
	if (strlen(key) >= SRV_RL_KEY_MAX || !key[0])
		return NULL;
	size_t s = slot_of(rl, key);
	for (size_t i = 0; i < PROBE; i++) {
		rl_entry *c = &rl->slots[(s + i) & rl->mask];
		if (!c->key[0]) {
			victim = c;
			break;
		}
		int blocked = c->until > now, vblocked = victim && victim->until > now;
		if (!victim || (vblocked && !blocked) ||
		    (vblocked == blocked &&
		     (blocked ? c->until < victim->until : c->last < victim->last)))
			victim = c;
	}
	if (!victim->key[0])
		rl->used++;
	memset(victim, 0, sizeof(*victim));
	rs_strlcpy(victim->key, key, sizeof(victim->key));
	victim->window_start = now;
	victim->last = now;
	return victim;
}

static long whole_seconds(double s)
{
	double c = ceil(s);
	return c < 1 ? 1 : (long)c;
}

long srv_ratelimit_blocked(srv_ratelimit *rl, const char *key, double now)
{
	long wait = 0;
	pthread_mutex_lock(&rl->lock);
	rl_entry *e = find_inlock(rl, key);
	if (e && e->until > now)
		wait = whole_seconds(e->until - now);
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

long srv_ratelimit_fail(srv_ratelimit *rl, const char *key, unsigned limit, double now)
{
	long block = 0;
	if (limit == 0)
		return 0;
	pthread_mutex_lock(&rl->lock);
	rl_entry *e = get_inlock(rl, key, now);
	if (!e || e->until > now)
		goto out;
	e->last = now;
	if (now - e->window_start >= SRV_RL_WINDOW) {
		/* a whole window without a block: start again from the first */
		e->window_start = now;
		e->failures = 0;
		e->strikes = 0;
	}
	if (++e->failures < limit)
		goto out;
	double d = SRV_RL_FIRST_BLOCK;
	for (unsigned i = 0; i < e->strikes && d < SRV_RL_MAX_BLOCK; i++)
		d *= 2;
	if (d > SRV_RL_MAX_BLOCK)
		d = SRV_RL_MAX_BLOCK;
	if (e->strikes < 64)
		e->strikes++;
	e->until = now + d;
	e->failures = 0;
	e->window_start = e->until; /* the next window opens when the block ends */
	block = whole_seconds(d);
out:
	pthread_mutex_unlock(&rl->lock);
	return block;
}

void srv_ratelimit_forget(srv_ratelimit *rl, const char *key)
{
	pthread_mutex_lock(&rl->lock);
	rl_entry *e = find_inlock(rl, key);
	if (e) {
		memset(e, 0, sizeof(*e));
		rl->used--;
	}
	pthread_mutex_unlock(&rl->lock);
}

long srv_ratelimit_take(srv_ratelimit *rl, const char *key, double rate, double now)
{
	long wait = 0;
	double cap = rate < 1 ? 1 : rate;
	if (!(rate > 0))
		return 0;
	pthread_mutex_lock(&rl->lock);
	rl_entry *e = find_inlock(rl, key);
	if (!e) {
		e = get_inlock(rl, key, now);
		if (e)
			e->tokens = cap;
	}
	if (!e)
		goto out;
	e->tokens += (now - e->window_start) * rate;
	if (e->tokens > cap)
		e->tokens = cap;
	e->window_start = now;
	e->last = now;
	if (e->tokens >= 1)
		e->tokens -= 1;
	else
		wait = whole_seconds((1 - e->tokens) / rate);
out:
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

size_t srv_ratelimit_size(srv_ratelimit *rl)
{
	pthread_mutex_lock(&rl->lock);
	size_t n = rl->used;
	pthread_mutex_unlock(&rl->lock);
	return n;
}

/* ---- the API's limits ------------------------------------------------- */

void srv_address_key(const char *ip, char out[SRV_RL_KEY_MAX])
{
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text));
		} else {
			memset(&a6.s6_addr[8], 0, 8);
			inet_ntop(AF_INET6, &a6, text, sizeof(text));
			snprintf(out, SRV_RL_KEY_MAX, "a:%s/64", text);
			return;
		}
		ip = text;
	}
	snprintf(out, SRV_RL_KEY_MAX, "a:%s", ip);
}

static srv_err refuse(srv_req *r, long wait, const char *what)
{
	r->retry_after = wait;
	return srv_fail(r, SRV_R_RATE_LIMITED, "too many %s: try again in %ld s", what, wait);
}

srv_err srv_limit_unseen(srv_req *r)
{
	srv_ratelimit *rl = r->ctx->auth_limit;
	char key[SRV_RL_KEY_MAX];
	if (!rl)
		return SRV_OK;
	double now = srv_ratelimit_now();
	snprintf(key, sizeof(key), "u:%.*s", RS_UUID_LEN, r->actor.id);
	long w = srv_ratelimit_blocked(rl, key, now);
	if (w)
		return refuse(r, w, "sign attempts on unknown signers");
	long b = srv_ratelimit_fail(rl, key, (unsigned)r->ctx->max_auth_failures, now);
	if (b)
		rs_warn("sign attempts of %s on unknown signers refused for %ld s: too many",
			r->actor.name ? r->actor.name : "?", b);
	return SRV_OK;
}

srv_err srv_limit_login(srv_req *r, const char *client_id)
{
	srv_ratelimit *rl = r->ctx->auth_limit;
	char ck[SRV_RL_KEY_MAX], ak[SRV_RL_KEY_MAX];
	if (!rl)
		return SRV_OK;
	double now = srv_ratelimit_now();
	snprintf(ck, sizeof(ck), "c:%s", client_id);
	srv_address_key(r->source_ip, ak);
	long wc = srv_ratelimit_blocked(rl, ck, now), wa = srv_ratelimit_blocked(rl, ak, now);
	if (wc || wa)
		return refuse(r, wc > wa ? wc : wa, "failed logins");
	return SRV_OK;
}

void srv_limit_login_result(srv_req *r, const char *client_id, int ok)
{
	srv_ratelimit *rl = r->ctx->auth_limit;
	char ck[SRV_RL_KEY_MAX], ak[SRV_RL_KEY_MAX];
	if (!rl)
		return;
	snprintf(ck, sizeof(ck), "c:%s", client_id);
	if (ok) {
		srv_ratelimit_forget(rl, ck);
		return;
	}
	double now = srv_ratelimit_now();
	srv_address_key(r->source_ip, ak);
	long bc = srv_ratelimit_fail(rl, ck, (unsigned)r->ctx->max_auth_failures, now);
	long ba = srv_ratelimit_fail(rl, ak, (unsigned)r->ctx->max_auth_failures_per_ip, now);
	if (bc)
		rs_warn("logins of clientId %s refused for %ld s: too many failures", client_id,
			bc);
	if (ba)
		rs_warn("logins and tokens from %s refused for %ld s: too many failures",
			r->source_ip, ba);
}

srv_err srv_limit_bearer(srv_req *r)
{
	srv_ratelimit *rl = r->ctx->auth_limit;
	char ak[SRV_RL_KEY_MAX];
	if (!rl)
		return SRV_OK;
	srv_address_key(r->source_ip, ak);
	long w = srv_ratelimit_blocked(rl, ak, srv_ratelimit_now());
	return w ? refuse(r, w, "invalid tokens") : SRV_OK;
}

void srv_limit_bearer_failed(srv_req *r)
{
	srv_ratelimit *rl = r->ctx->auth_limit;
	char ak[SRV_RL_KEY_MAX];
	if (!rl)
		return;
	srv_address_key(r->source_ip, ak);
	long b = srv_ratelimit_fail(rl, ak, (unsigned)r->ctx->max_auth_failures_per_ip,
				    srv_ratelimit_now());
	if (b)
		rs_warn("logins and tokens from %s refused for %ld s: too many failures",
			r->source_ip, b);
}

srv_err srv_limit_sign(srv_req *r)
{
	srv_ratelimit *rl = r->ctx->sign_limit;
	if (!rl || r->ctx->max_sign_rate <= 0)
		return SRV_OK;
	long w = srv_ratelimit_take(rl, r->actor.id, (double)r->ctx->max_sign_rate,
				    srv_ratelimit_now());
	return w ? refuse(r, w, "signatures") : SRV_OK;
}
