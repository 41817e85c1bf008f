/* JSON Web Key Sets (RFC 7517): parsing the RSA and EC signing keys of a
 * set, and a cache of the sets of OIDC issuers, fetched over HTTPS with
 * libcurl (no redirects, bounded size, timeouts). A set is kept
 * max_age seconds (oidc_jwks_max_age); a kid a fresh set lacks makes it
 * fetched again at once, but such refetches happen at most once every
 * SRV_JWKS_REFETCH seconds per URL, so tokens with made-up kids cannot make
 * rsignd hammer an issuer. */
#ifndef SRV_JWKS_H
#define SRV_JWKS_H
#include <stddef.h>
#include <openssl/evp.h>

#define SRV_JWKS_MAX_BYTES 65536 /* a larger set (inline or fetched) is refused */
#define SRV_JWKS_MAX_KEYS 32
#define SRV_JWKS_REFETCH 60.0
#define SRV_JWKS_FETCH_TIMEOUT 10L /* seconds, the whole fetch */

typedef struct srv_jwks srv_jwks;

/* The set in json[0..len): NULL with a sentence in err when it is not a
 * JSON object with a "keys" array of at most SRV_JWKS_MAX_KEYS objects, or
 * when a usable key (kty RSA of 2048 bits or more, or EC on P-256/P-384;
 * "use" absent or "sig") does not decode. Keys of other kinds are skipped. */
srv_jwks *srv_jwks_parse(const char *json, size_t len, char *err, size_t errlen);
void srv_jwks_free(srv_jwks *s); /* NULL-safe */
size_t srv_jwks_count(const srv_jwks *s);
/* The key of kid (or the only key when kid is "" and the set has one),
 * with a reference the caller frees (EVP_PKEY_free); NULL when none. */
EVP_PKEY *srv_jwks_find(const srv_jwks *s, const char *kid);

typedef enum {
	SRV_JWKS_FOUND = 0,
	SRV_JWKS_UNKNOWN_KID, /* the set (fresh, or refetched) has no such kid */
	SRV_JWKS_UNAVAILABLE, /* no usable set: the fetch failed and none is cached */
} srv_jwks_rc;

typedef struct srv_jwks_cache srv_jwks_cache;
/* ca_file: the CA bundle to trust (NULL: the system's); max_age: seconds
 * a fetched set is used before it is fetched again. */
srv_jwks_cache *srv_jwks_cache_new(const char *ca_file, long max_age);
void srv_jwks_cache_free(srv_jwks_cache *c); /* NULL-safe */
/* The key for kid from the set at url (https only), fetching it when it is
 * not cached, aged out, or lacks kid (once a SRV_JWKS_REFETCH). *key gets
 * a reference (EVP_PKEY_free). err says why on UNAVAILABLE. */
srv_jwks_rc srv_jwks_cache_key(srv_jwks_cache *c, const char *url, const char *kid, EVP_PKEY **key,
			       char *err, size_t errlen);
/* How many fetches were made (for logs and tests). */
unsigned long srv_jwks_cache_fetches(srv_jwks_cache *c);

#endif
