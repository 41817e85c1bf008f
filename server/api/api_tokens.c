/* A principal's credentials: /principals/{id}/tokens (list, create with an
 * optional name and expiry, revoke) and /principals/{id}/secrets (list,
 * rotate with an optional overlap). Secrets are shown once, stored only as
 * SHA-256 and wiped from memory after use; lists show metadata only. Every
 * change is audited in its own transaction; a revocation holds at once
 * because the route empties the read caches (cache.h). */
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/http/auth.h"

#define MAX_EXPIRY (10LL * 365 * 86400) /* expiresIn, overlapSeconds: 10 years at most */

static cJSON *token_json(const srv_token *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", t->id);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "kind", t->kind);
	srv_json_time(o, "createdAt", t->created_at);
	srv_json_time(o, "expiresAt", t->expires_at);
	srv_json_time(o, "lastUsedAt", t->last_used_at);
	return o;
}

static cJSON *secret_json(const srv_secret *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "clientId", s->client_id);
	srv_json_time(o, "createdAt", s->created_at);
	srv_json_time(o, "expiresAt", s->expires_at);
	return o;
}

/* An optional body: none at all counts as {}. */
static cJSON *optional_body(srv_req *r)
{
	if (r->body_len == 0)
		return cJSON_CreateObject();
	return srv_body_json(r);
}

/* The principal of the path, when the caller may manage its credentials. */
static srv_err load(srv_req *r, srv_principal *p,
		    srv_reason (*may)(const srv_req *, const srv_principal *))
{
	if (api_principal_load(r, p) != SRV_OK)
		return r->err;
	srv_reason why = may(r, p);
	if (why != SRV_R_NONE) {
		srv_principal_clear(p);
		return srv_fail(r, why, "no principal \"%s\"", r->params[0]);
	}
	return SRV_OK;
}

/* name?, and expiresIn (seconds) or expiresAt (RFC 3339, in the future). */
static srv_err token_fields(srv_req *r, const cJSON *j, srv_token *t)
{
	const char *name = NULL, *at = NULL;
	long long in = 0;
	if (rs_json_str(j, "name", 0, 64, &name) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"name must be a string of at most 64 bytes");
	if (rs_json_int(j, "expiresIn", 0, 1, MAX_EXPIRY, &in) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"expiresIn must be a whole number of seconds, 1 to %lld",
				MAX_EXPIRY);
	if (rs_json_str(j, "expiresAt", 0, 40, &at) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "expiresAt must be an RFC 3339 time");
	if (in && at)
		return srv_fail(r, SRV_R_INVALID_FIELD, "give expiresIn or expiresAt, not both");
	if (name)
		rs_strlcpy(t->name, name, sizeof(t->name));
	if (in)
		t->expires_at = t->created_at + (time_t)in;
	if (at) {
		if (rs_time_parse(at, &t->expires_at) != 0)
			return srv_fail(r, SRV_R_INVALID_FIELD,
					"expiresAt must be an RFC 3339 time");
		if (t->expires_at <= t->created_at ||
		    t->expires_at - t->created_at > (time_t)MAX_EXPIRY)
			return srv_fail(r, SRV_R_INVALID_FIELD,
					"expiresAt must be in the future, at most 10 years away");
	}
	return SRV_OK;
}

static cJSON *token_detail(const srv_token *t)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "kind", t->kind);
	cJSON_AddStringToObject(d, "tokenId", t->id);
	cJSON_AddStringToObject(d, "tokenName", t->name);
	srv_json_time(d, "expiresAt", t->expires_at);
	return d;
}

/* A new API token for a user (itself, or any user for an admin): the
 * principal object plus `token` (shown once) and `tokenInfo`. */
srv_err api_token_create(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_principal p = {0};
	srv_audit a = {0};
	srv_token t = {0};
	char tok[SRV_TOKEN_LEN] = "", hash[65] = "";
	srv_err e;
	cJSON *j = optional_body(r);
	if (!j)
		return r->err;
	if ((e = load(r, &p, srv_may_manage_tokens)) != SRV_OK)
		goto out;
	if (strcmp(p.type, "user") != 0) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "machine identities log in with their client secret");
		goto out;
	}
	t.created_at = time(NULL);
	rs_strlcpy(t.principal_id, p.id, sizeof(t.principal_id));
	rs_strlcpy(t.kind, "api", sizeof(t.kind));
	if ((e = token_fields(r, j, &t)) != SRV_OK)
		goto out;
	if (rs_uuid(t.id) != 0 || srv_auth_new_secret("rsu_", tok) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a token");
		goto out;
	}
	srv_auth_hash(tok, hash);
	cJSON *d = token_detail(&t);
	cJSON_AddStringToObject(d, "name", p.name ? p.name : "");
	if ((e = api_audit_entry(r, &a, "principal.token", "principal", p.id, d)) != SRV_OK)
		goto out;
	srv_st_rc rc = st->ops->token_create(st, &t, hash, (size_t)r->ctx->max_tokens, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_TOO_MANY_TOKENS,
			     "%s holds %lld API tokens, the most max_tokens_per_principal allows: "
			     "revoke one first",
			     p.name, r->ctx->max_tokens);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the token");
		goto out;
	}
	*out = api_principal_json(&p);
	cJSON_AddStringToObject(*out, "token", tok);
	cJSON_AddItemToObject(*out, "tokenInfo", token_json(&t));
	r->status = 201;
	rs_info("API token %s for %s made by %s", t.id, p.name, r->actor.name);
out:
	api_audit_done(&a);
	rs_wipe(tok, sizeof(tok));
	rs_wipe(hash, sizeof(hash));
	srv_principal_clear(&p);
	cJSON_Delete(j);
	return e;
}

srv_err api_token_list(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	srv_token *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	if (load(r, &p, srv_may_manage_tokens) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->token_list(r->ctx->store, p.id, time(NULL), offset,
						      limit, &v, &n, &total);
	srv_principal_clear(&p);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list the tokens");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "tokens");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, token_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_token_list_free(v, n);
	return SRV_OK;
}

/* DELETE /principals/{id}/tokens/{tokenId}: the token (either kind) stops
 * working at once; 404 when the principal holds no such token. */
srv_err api_token_revoke(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	srv_audit a = {0};
	srv_err e;
	const char *id = r->params[1];
	if (load(r, &p, srv_may_manage_tokens) != SRV_OK)
		return r->err;
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "tokenId", id);
	if ((e = api_audit_entry(r, &a, "token.revoke", "principal", p.id, d)) != SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->token_revoke(r->ctx->store, p.id, id, &a);
	if (rc == SRV_ST_NOT_FOUND) {
		e = srv_fail(r, SRV_R_NOT_FOUND, "%s holds no token \"%s\"", p.name, id);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot revoke the token");
		goto out;
	}
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "principalId", p.id);
	cJSON_AddStringToObject(*out, "tokenId", id);
	rs_info("token %s of %s revoked by %s", id, p.name, r->actor.name);
out:
	api_audit_done(&a);
	srv_principal_clear(&p);
	return e;
}

/* The identity of the path, when the caller may handle its secrets. */
static srv_err load_identity(srv_req *r, srv_principal *p)
{
	if (load(r, p, srv_may_rotate_secret) != SRV_OK)
		return r->err;
	if (strcmp(p->type, "identity") != 0) {
		srv_principal_clear(p);
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"only machine identities have client secrets");
	}
	return SRV_OK;
}

/* POST /principals/{id}/secrets/rotate {overlapSeconds?}: a new client
 * secret (shown once); the others keep working for overlapSeconds (default
 * 0: they stop at once). */
srv_err api_secret_rotate(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	srv_audit a = {0};
	srv_secret s = {0};
	long long overlap = 0;
	char secret[SRV_TOKEN_LEN] = "", hash[65] = "";
	srv_err e;
	cJSON *j = optional_body(r);
	if (!j)
		return r->err;
	if (rs_json_int(j, "overlapSeconds", 0, 0, MAX_EXPIRY, &overlap) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "overlapSeconds must be a whole number of seconds, 0 to %lld",
			     MAX_EXPIRY);
		goto out;
	}
	if ((e = load_identity(r, &p)) != SRV_OK)
		goto out;
	if (rs_uuid(s.id) != 0 || srv_auth_new_secret("rss_", secret) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a secret");
		goto out;
	}
	srv_auth_hash(secret, hash);
	s.created_at = time(NULL);
	rs_strlcpy(s.principal_id, p.id, sizeof(s.principal_id));
	rs_strlcpy(s.client_id, p.client_id, sizeof(s.client_id));
	time_t until = s.created_at + (time_t)overlap;
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "secretId", s.id);
	cJSON_AddNumberToObject(d, "overlapSeconds", (double)overlap);
	if ((e = api_audit_entry(r, &a, "secret.rotate", "principal", p.id, d)) != SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->secret_rotate(r->ctx->store, &s, hash, until, &a);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the secret");
		goto out;
	}
	*out = api_principal_json(&p);
	cJSON_AddStringToObject(*out, "clientSecret", secret);
	cJSON_AddItemToObject(*out, "secretInfo", secret_json(&s));
	srv_json_time(*out, "previousSecretsExpireAt", overlap ? until : 0);
	r->status = 201;
	rs_info("client secret of %s rotated by %s (overlap %llds)", p.name, r->actor.name,
		overlap);
out:
	api_audit_done(&a);
	rs_wipe(secret, sizeof(secret));
	rs_wipe(hash, sizeof(hash));
	srv_principal_clear(&p);
	cJSON_Delete(j);
	return e;
}

srv_err api_secret_list(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	srv_secret *v = NULL;
	size_t n = 0;
	if (load_identity(r, &p) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->secret_list(r->ctx->store, p.id, time(NULL), &v, &n);
	srv_principal_clear(&p);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list the secrets");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "secrets");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, secret_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)n);
	srv_secret_list_free(v, n);
	return SRV_OK;
}
