/* JWKS parsing with OpenSSL and the fetched-set cache (jwks.h). The cache
 * is a small table of URLs under one mutex, held across a fetch: logins of
 * OIDC identities wait for at most one fetch (SRV_JWKS_FETCH_TIMEOUT), and
 * an issuer is never asked twice at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/jwks.h"
#include "server/http/jwt.h"

typedef struct {
	char kid[SRV_JWT_KID_MAX + 1];
	EVP_PKEY *key;
} jwk;

struct srv_jwks {
	jwk keys[SRV_JWKS_MAX_KEYS];
	size_t n;
};

void srv_jwks_free(srv_jwks *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		EVP_PKEY_free(s->keys[i].key);
	free(s);
}

size_t srv_jwks_count(const srv_jwks *s)
{
	return s ? s->n : 0;
}

/* A base64url member of k as bytes (at most max); NULL when absent or bad. */
static unsigned char *member(const cJSON *k, const char *name, size_t max, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(k, name);
	if (!cJSON_IsString(v))
		return NULL;
	unsigned char *b = malloc(max);
	if (b && srv_b64url_decode(v->valuestring, strlen(v->valuestring), b, max, len) != 0) {
		free(b);
		b = NULL;
	}
	return b;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = bld ? OSSL_PARAM_BLD_to_param(bld) : NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *key = NULL;
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return key;
}

static EVP_PKEY *rsa_key(const cJSON *k)
{
	size_t nl = 0, el = 0;
	unsigned char *n = member(k, "n", 1024, &nl), *e = member(k, "e", 16, &el);
	BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL;
	BIGNUM *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *key = NULL;
	if (bn && be && bld && BN_num_bits(bn) >= 2048 && BN_num_bits(bn) <= 8192 &&
	    BN_is_odd(be) && BN_num_bits(be) > 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
		key = from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return key;
}

static EVP_PKEY *ec_key(const cJSON *k)
{
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(k, "crv");
	const char *group = NULL;
	size_t half = 0;
	if (cJSON_IsString(crv) && strcmp(crv->valuestring, "P-256") == 0) {
		group = "prime256v1";
		half = 32;
	} else if (cJSON_IsString(crv) && strcmp(crv->valuestring, "P-384") == 0) {
		group = "secp384r1";
		half = 48;
	} else {
		return NULL;
	}
	size_t xl = 0, yl = 0;
	unsigned char *x = member(k, "x", half, &xl), *y = member(k, "y", half, &yl);
	unsigned char pt[1 + 2 * 48];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *key = NULL;
	if (x && y && xl == half && yl == half && bld) {
		pt[0] = 0x04; /* uncompressed: OpenSSL checks the point is on the curve */
		memcpy(pt + 1, x, half);
		memcpy(pt + 1 + half, y, half);
		if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ==
			    1 &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
						     1 + 2 * half) == 1)
			key = from_params("EC", bld);
	}
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return key;
}

srv_jwks *srv_jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
	if (len > SRV_JWKS_MAX_BYTES) {
		snprintf(err, errlen, "the key set is larger than %d bytes", SRV_JWKS_MAX_BYTES);
		return NULL;
	}
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
	srv_jwks *s = NULL;
	if (!cJSON_IsObject(j) || !cJSON_IsArray(keys)) {
		snprintf(err, errlen, "the key set is not a JSON object with a \"keys\" array");
		goto out;
	}
	if (cJSON_GetArraySize(keys) > SRV_JWKS_MAX_KEYS) {
		snprintf(err, errlen, "the key set holds more than %d keys", SRV_JWKS_MAX_KEYS);
		goto out;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	const cJSON *k;
	cJSON_ArrayForEach (k, keys) {
		const cJSON *kty = cJSON_GetObjectItemCaseSensitive(k, "kty");
		const cJSON *use = cJSON_GetObjectItemCaseSensitive(k, "use");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
		if (!cJSON_IsObject(k) || !cJSON_IsString(kty) ||
		    (kid && (!cJSON_IsString(kid) || strlen(kid->valuestring) > SRV_JWT_KID_MAX))) {
			snprintf(err, errlen, "key %zu of the set is not a JWK", s->n);
			goto bad;
		}
		if (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig") != 0))
			continue;
		int rsa = strcmp(kty->valuestring, "RSA") == 0;
		if (!rsa && strcmp(kty->valuestring, "EC") != 0)
			continue;
		EVP_PKEY *key = rsa ? rsa_key(k) : ec_key(k);
		if (!key) {
			snprintf(err, errlen,
				 "key \"%s\" of the set does not decode (RSA of 2048-8192 bits, EC "
				 "on P-256 or P-384)",
				 kid ? kid->valuestring : "");
			goto bad;
		}
		rs_strlcpy(s->keys[s->n].kid, kid ? kid->valuestring : "",
			   sizeof(s->keys[s->n].kid));
		s->keys[s->n++].key = key;
	}
	goto out;
bad:
	srv_jwks_free(s);
	s = NULL;
out:
	cJSON_Delete(j);
	return s;
}

EVP_PKEY *srv_jwks_find(const srv_jwks *s, const char *kid)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		if ((kid[0] && strcmp(s->keys[i].kid, kid) == 0) || (!kid[0] && s->n == 1)) {
			EVP_PKEY_up_ref(s->keys[i].key);
			return s->keys[i].key;
		}
	}
	return NULL;
}

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
	rs_info("oidc: fetched the key set at %s (%zu keys)", s->url, set->n);
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
