/* Direct-mapped caches with one global generation: see cache.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/util.h"
#include "server/http/cache.h"

typedef struct {
	char key[SRV_CACHE_KEY_MAX];
	unsigned long gen;
	long long stored; /* monotonic ms; 0 = empty */
} slot_head;

#define SLOT_ALIGN _Alignof(max_align_t)

struct srv_cache {
	pthread_mutex_t mu;
	size_t slots, val_size, stride;
	unsigned char *mem; /* slots * (head + value) */
};

static atomic_ulong generation = 1;

unsigned long srv_cache_gen(void)
{
	return atomic_load(&generation);
}

void srv_cache_bump(void)
{
	atomic_fetch_add(&generation, 1);
}

srv_cache *srv_cache_new(size_t slots, size_t val_size)
{
	srv_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->slots = slots;
	c->val_size = val_size;
	/* every slot starts where a slot_head may live: a stride of head plus
	 * value would misalign every other head for values like an int */
	c->stride = (sizeof(slot_head) + val_size + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
	c->mem = calloc(slots, c->stride);
	if (!c->mem || pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->mem);
		free(c);
		return NULL;
	}
	return c;
}

void srv_cache_free(srv_cache *c)
{
	if (!c)
		return;
	rs_wipe(c->mem, c->slots * c->stride);
	free(c->mem);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0 */
}

static slot_head *slot_for(srv_cache *c, const char *key)
{
	unsigned long h = 14695981039346656037UL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211UL;
	return (slot_head *)(c->mem + (h % c->slots) * c->stride);
}

int srv_cache_get(srv_cache *c, const char *key, void *val)
{
	if (!c || strlen(key) >= SRV_CACHE_KEY_MAX)
		return 0;
	int hit = 0;
	long long now = now_ms();
	pthread_mutex_lock(&c->mu);
	slot_head *s = slot_for(c, key);
	if (s->stored && s->gen == srv_cache_gen() && now - s->stored < SRV_CACHE_TTL_MS &&
	    strcmp(s->key, key) == 0) {
		memcpy(val, s + 1, c->val_size);
		hit = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void srv_cache_put(srv_cache *c, const char *key, unsigned long gen, const void *val)
{
	if (!c || strlen(key) >= SRV_CACHE_KEY_MAX || gen != srv_cache_gen())
		return;
	pthread_mutex_lock(&c->mu);
	slot_head *s = slot_for(c, key);
	rs_strlcpy(s->key, key, sizeof(s->key));
	s->gen = gen;
	s->stored = now_ms();
	memcpy(s + 1, val, c->val_size);
	pthread_mutex_unlock(&c->mu);
}
