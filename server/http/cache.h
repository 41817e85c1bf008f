/* Small read caches for the sign path (tokens, signers, roles), so that a
 * signature costs no database read in steady state. Every mutating API call
 * bumps one generation counter, which invalidates every entry at once; a
 * short TTL bounds staleness for what this process cannot see (another
 * replica's writes, an access token reaching its expiry). */
#ifndef SRV_CACHE_H
#define SRV_CACHE_H
#include <stddef.h>

typedef struct srv_cache srv_cache; /* struct srv_cache in http.h too */

#define SRV_CACHE_KEY_MAX 80
#define SRV_CACHE_TTL_MS 1000

/* slots entries of val_size bytes (flat values: no pointers). */
srv_cache *srv_cache_new(size_t slots, size_t val_size);
void srv_cache_free(srv_cache *c); /* NULL-safe */

/* The generation to pass to srv_cache_put: read it BEFORE reading the
 * value from the database, so a write racing the read invalidates it. */
unsigned long srv_cache_gen(void);
/* Invalidates every cache; called before and after each mutating request. */
void srv_cache_bump(void);

/* 1 and *val filled on a fresh hit, 0 otherwise. NULL cache: always 0. */
int srv_cache_get(srv_cache *c, const char *key, void *val);
void srv_cache_put(srv_cache *c, const char *key, unsigned long gen, const void *val);

#endif
