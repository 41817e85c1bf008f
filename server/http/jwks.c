/* The fetched-key-set cache (jwks.h; parsing is in jwk.c). The cache is a
 * small table of URLs under one mutex, held across a fetch: logins of
 * OIDC identities wait for at most one fetch (SRV_JWKS_FETCH_TIMEOUT), and
 * an issuer is never asked twice at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/jwks.h"
#include "server/http/jwt.h"

/* ---- the cache ---------------------------------------------------------- */

#define CACHE_SLOTS 64
#define URL_MAX 1024

typedef struct {
	char url[URL_MAX + 1]; /* "" = free */
	srv_jwks *set;	       /* NULL until a fetch succeeded */
	double fetched_at;     /* of set */
	double refetched_at;   /* the last refetch for an unknown kid */
	double used_at;
} slot;

struct srv_jwks_cache {
	pthread_mutex_t mu;
	char *ca_file;
	double max_age;
	unsigned long fetches;
	slot slots[CACHE_SLOTS];
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

srv_jwks_cache *srv_jwks_cache_new(const char *ca_file, long max_age)
{
	srv_jwks_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if ((ca_file && *ca_file && !(c->ca_file = strdup(ca_file))) ||
	    pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->ca_file);
		free(c);
		return NULL;
	}
	c->max_age = (double)max_age;
	return c;
}

void srv_jwks_cache_free(srv_jwks_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		srv_jwks_free(c->slots[i].set);
	pthread_mutex_destroy(&c->mu);
	free(c->ca_file);
	free(c);
}

unsigned long srv_jwks_cache_fetches(srv_jwks_cache *c)
{
	pthread_mutex_lock(&c->mu);
	unsigned long n = c->fetches;
	pthread_mutex_unlock(&c->mu);
	return n;
}

typedef struct {
	char *buf;
	size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	body *b = arg;
	size_t n = size * nmemb;
	if (n > SRV_JWKS_MAX_BYTES - b->len)
		return 0; /* too large: curl ends the transfer with an error */
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return n;
}

/* GET url into a parsed set; NULL + err. */
static srv_jwks *fetch(const srv_jwks_cache *c, const char *url, char *err, size_t errlen)
{
	body b = {malloc(SRV_JWKS_MAX_BYTES), 0};
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	srv_jwks *s = NULL;
	CURL *h = curl_easy_init();
	if (!b.buf || !h) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, SRV_JWKS_FETCH_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rsignd/" RSIGN_VERSION);
	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_WRITE_ERROR) {
		snprintf(err, errlen, "the key set at %s is larger than %d bytes", url,
			 SRV_JWKS_MAX_BYTES);
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "cannot fetch the key set at %s: %s", url,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(err, errlen, "cannot fetch the key set at %s: HTTP status %ld", url,
			 status);
		goto out;
	}
	char perr[200] = "";
	if (!(s = srv_jwks_parse(b.buf, b.len, perr, sizeof(perr))))
		snprintf(err, errlen, "the key set at %s: %s", url, perr);
out:
	curl_easy_cleanup(h);
	free(b.buf);
	return s;
}

/* The slot of url, or a free one, or the least recently used. */
static slot *slot_of(srv_jwks_cache *c, const char *url)
{
	slot *free_one = NULL, *lru = &c->slots[0];
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		slot *s = &c->slots[i];
		if (s->url[0] && strcmp(s->url, url) == 0)
			return s;
		if (!s->url[0] && !free_one)
			free_one = s;
		if (s->used_at < lru->used_at)
			lru = s;
	}
	slot *s = free_one ? free_one : lru;
	srv_jwks_free(s->set);
	memset(s, 0, sizeof(*s));
	s->refetched_at = -1e18;
	rs_strlcpy(s->url, url, sizeof(s->url));
	return s;
}

/* Fetches s's set again; 0, or -1 with err (the old set is kept only while
 * it is young enough: the caller checks). */
static int refetch(srv_jwks_cache *c, slot *s, char *err, size_t errlen)
{
	c->fetches++;
	srv_jwks *set = fetch(c, s->url, err, errlen);
	if (!set) {
		rs_warn("oidc: %s", err);
		return -1;
	}
	srv_jwks_free(s->set);
	s->set = set;
	s->fetched_at = mono();
	rs_info("oidc: fetched the key set at %s (%zu keys)", s->url, srv_jwks_count(set));
	return 0;
}

srv_jwks_rc srv_jwks_cache_key(srv_jwks_cache *c, const char *url, const char *kid, EVP_PKEY **key,
			       char *err, size_t errlen)
{
	*key = NULL;
	if (strlen(url) > URL_MAX || strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "the key set URL is not an https URL");
		return SRV_JWKS_UNAVAILABLE;
	}
	pthread_mutex_lock(&c->mu);
	double now = mono();
	slot *s = slot_of(c, url);
	s->used_at = now;
	srv_jwks_rc rc;
	int fresh = s->set && now - s->fetched_at < c->max_age;
	if (!fresh) {
		/* aged out or never fetched: an aged set is not used */
		if (refetch(c, s, err, errlen) != 0) {
			srv_jwks_free(s->set);
			s->set = NULL;
			rc = SRV_JWKS_UNAVAILABLE;
			goto out;
		}
	}
	if ((*key = srv_jwks_find(s->set, kid))) {
		rc = SRV_JWKS_FOUND;
		goto out;
	}
	rc = SRV_JWKS_UNKNOWN_KID;
	if (fresh && now - s->refetched_at >= SRV_JWKS_REFETCH) {
		/* the issuer may have rotated its keys; a failed refetch keeps
		 * the fresh set, which lacks kid all the same */
		s->refetched_at = now;
		if (refetch(c, s, err, errlen) == 0 && (*key = srv_jwks_find(s->set, kid)))
			rc = SRV_JWKS_FOUND;
	}
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}
