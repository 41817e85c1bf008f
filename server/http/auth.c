/* Bearer-token authentication. Tokens are random 256-bit
 * secrets, so one SHA-256 is enough to store them; nothing here logs them.
 * A token's last use is recorded when the cache is filled, at most once a
 * minute per token (SRV_TOKEN_TOUCH_SECS): signing writes no row per call. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/auth.h"
#include "server/http/cache.h"
#include "server/http/http.h"

void srv_auth_hash(const char *secret, char out[65])
{
	unsigned char d[64];
	if (rs_hash_compute(RS_HASH_SHA256, secret, strlen(secret), d) != 0) {
		out[0] = '\0';
		return;
	}
	rs_hex_encode(d, 32, out);
}

int srv_auth_new_secret(const char *prefix, char out[SRV_TOKEN_LEN])
{
	size_t pl = strlen(prefix);
	if (pl != 4)
		return -1;
	memcpy(out, prefix, pl);
	return rs_random_hex(32, out + pl);
}

/* A principal as the token cache keeps it: flat, no pointers. */
typedef struct {
	srv_id id;
	char type[12];
	char name[65];
	int admin;
	int metrics;
	int disabled;
	char client_id[RS_UUID_LEN];
	time_t created_at;
} cached_principal;

srv_cache *srv_auth_cache_new(void)
{
	return srv_cache_new(4096, sizeof(cached_principal));
}

static int to_cache(const srv_principal *p, cached_principal *c)
{
	if (!p->name || strlen(p->name) >= sizeof(c->name))
		return -1;
	memset(c, 0, sizeof(*c));
	memcpy(c->id, p->id, sizeof(c->id));
	memcpy(c->type, p->type, sizeof(c->type));
	rs_strlcpy(c->name, p->name, sizeof(c->name));
	c->admin = p->admin;
	c->metrics = p->metrics;
	c->disabled = p->disabled;
	memcpy(c->client_id, p->client_id, sizeof(c->client_id));
	c->created_at = p->created_at;
	return 0;
}

static srv_reason from_cache(const cached_principal *c, srv_principal *p)
{
	memset(p, 0, sizeof(*p));
	if (!(p->name = strdup(c->name)))
		return SRV_R_INTERNAL;
	memcpy(p->id, c->id, sizeof(p->id));
	memcpy(p->type, c->type, sizeof(p->type));
	p->admin = c->admin;
	p->metrics = c->metrics;
	p->disabled = c->disabled;
	memcpy(p->client_id, c->client_id, sizeof(p->client_id));
	p->created_at = c->created_at;
	return SRV_R_NONE;
}

srv_reason srv_auth_bearer(const srv_ctx *ctx, const char *header, srv_principal *out)
{
	const char *tok = NULL;
	size_t n = 0;
	srv_bearer_verdict v = srv_bearer_parse(header, &tok, &n);
	if (v == SRV_BEARER_MISSING)
		return SRV_R_TOKEN_MISSING;
	if (v != SRV_BEARER_OK)
		return SRV_R_TOKEN_INVALID;
	char hash[65];
	srv_auth_hash(tok, hash);
	if (!hash[0])
		return SRV_R_INTERNAL;
	cached_principal c;
	srv_reason why;
	if (srv_cache_get(ctx->auth_cache, hash, &c)) {
		why = from_cache(&c, out);
	} else {
		unsigned long gen = srv_cache_gen();
		srv_token t = {0};
		time_t now = time(NULL);
		srv_st_rc rc = ctx->store->ops->token_lookup(ctx->store, hash, now, out, &t);
		if (rc == SRV_ST_NOT_FOUND)
			return SRV_R_TOKEN_INVALID;
		if (rc != SRV_ST_OK)
			return srv_reason_from_store(rc);
		if (to_cache(out, &c) == 0)
			srv_cache_put(ctx->auth_cache, hash, gen, &c);
		/* a failed touch costs only the lastUsedAt of this minute */
		if (!out->disabled && now - t.last_used_at >= SRV_TOKEN_TOUCH_SECS &&
		    ctx->store->ops->token_touch(ctx->store, t.id, now) != SRV_ST_OK)
			rs_warn("cannot record the last use of token %s", t.id);
		why = SRV_R_NONE;
	}
	/* a disabled principal's credentials are not honoured (the same rule
	 * as srv_may_log_in in server/api/access.c, which this layer cannot
	 * call); disabling bumps the caches, so this holds at once */
	if (why == SRV_R_NONE && out->disabled)
		why = SRV_R_PRINCIPAL_DISABLED;
	return why;
}
