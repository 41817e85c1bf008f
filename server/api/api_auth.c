/* /auth/universal-auth/login, /auth/whoami and /principals: users with API
 * tokens, machine identities with clientId/clientSecret. Secrets are shown
 * once, stored only as SHA-256, and wiped from memory after use. */
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/http/auth.h"
#include "server/http/ratelimit.h"

static cJSON *principal_json(const srv_principal *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "name", p->name ? p->name : "");
	cJSON_AddStringToObject(o, "type", p->type);
	cJSON_AddBoolToObject(o, "admin", p->admin);
	cJSON_AddBoolToObject(o, "disabled", p->disabled);
	if (strcmp(p->type, "identity") == 0)
		cJSON_AddStringToObject(o, "clientId", p->client_id);
	srv_json_time(o, "createdAt", p->created_at);
	return o;
}

/* Issues a token of kind for principal_id and adds it to o as field. */
static srv_err add_token(srv_req *r, const char *principal_id, const char *prefix, const char *kind,
			 time_t expires, cJSON *o, const char *field)
{
	char tok[SRV_TOKEN_LEN], hash[65];
	if (srv_auth_new_secret(prefix, tok) != 0)
		return srv_fail(r, SRV_R_INTERNAL, "no randomness for a token");
	srv_auth_hash(tok, hash);
	srv_st_rc rc =
		r->ctx->store->ops->token_insert(r->ctx->store, hash, principal_id, kind, expires);
	if (rc == SRV_ST_OK)
		cJSON_AddStringToObject(o, field, tok);
	rs_wipe(tok, sizeof(tok));
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot store the token");
	return SRV_OK;
}

srv_err api_login(srv_req *r, cJSON **out)
{
	srv_err e = SRV_OK;
	const char *cid = NULL, *secret = NULL;
	srv_principal p = {0};
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_str(j, "clientId", 1, 64, &cid) != RS_JSON_OK ||
	    rs_json_str(j, "clientSecret", 1, 256, &secret) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "clientId and clientSecret are required strings");
		goto out;
	}
	if ((e = srv_limit_login(r, cid)) != SRV_OK) /* 429 before the secret is read */
		goto out;
	char hash[65];
	srv_auth_hash(secret, hash);
	srv_st_rc rc = r->ctx->store->ops->secret_lookup(r->ctx->store, cid, hash, &p);
	if (rc == SRV_ST_OK || rc == SRV_ST_NOT_FOUND)
		srv_limit_login_result(r, cid, rc == SRV_ST_OK);
	if (rc == SRV_ST_NOT_FOUND) {
		e = srv_fail(r, SRV_R_INVALID_CREDENTIALS,
			     "unknown clientId or wrong clientSecret");
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot check the credentials");
		goto out;
	}
	srv_reason why = srv_may_log_in(&p);
	if (why != SRV_R_NONE) {
		e = srv_fail(r, why, "principal %s is disabled", p.name);
		goto out;
	}
	long long ttl = r->ctx->access_token_ttl;
	*out = cJSON_CreateObject();
	e = add_token(r, p.id, "rsa_", "access", time(NULL) + ttl, *out, "accessToken");
	if (e != SRV_OK) {
		cJSON_Delete(*out);
		*out = NULL;
		goto out;
	}
	cJSON_AddNumberToObject(*out, "expiresIn", (double)ttl);
	cJSON_AddStringToObject(*out, "tokenType", "Bearer");
	/* each login adds an access token; the expired ones go here, so the
	 * table stays as large as the tokens that can still be used */
	size_t purged = 0;
	if (r->ctx->store->ops->token_purge(r->ctx->store, time(NULL), &purged) == SRV_ST_OK &&
	    purged)
		rs_debug("purged %zu expired access tokens", purged);
out:
	/* the secret lives in the parsed tree; wipe it before freeing */
	if (secret)
		rs_wipe((char *)secret, strlen(secret));
	cJSON_Delete(j);
	srv_principal_clear(&p);
	return e;
}

srv_err api_whoami(srv_req *r, cJSON **out)
{
	*out = principal_json(&r->actor);
	return SRV_OK;
}

static int valid_principal_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (i > 0 && (c == '-' || c == '_' || c == '.' || c == '@'))))
			return 0;
	}
	return 1;
}

srv_err api_principal_create(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	const char *type = NULL, *name = NULL;
	int admin = 0;
	srv_principal p = {0};
	char secret[SRV_TOKEN_LEN] = "", hash[65];
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_str(j, "type", 1, 16, &type) != RS_JSON_OK ||
	    (strcmp(type, "user") != 0 && strcmp(type, "identity") != 0)) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "type must be \"user\" or \"identity\"");
		goto out;
	}
	if (rs_json_str(j, "name", 1, 64, &name) != RS_JSON_OK || !valid_principal_name(name)) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "name must be 1-64 letters, digits or - _ . @, starting with a letter "
			     "or digit");
		goto out;
	}
	if (rs_json_bool(j, "admin", 0, &admin) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "admin must be a boolean");
		goto out;
	}
	if (rs_uuid(p.id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	rs_strlcpy(p.type, type, sizeof(p.type));
	p.name = (char *)name;
	p.admin = admin;
	p.created_at = time(NULL);
	int identity = strcmp(type, "identity") == 0;
	if (identity && rs_uuid(p.client_id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a client id");
		goto out;
	}
	srv_st_rc rc = st->ops->principal_insert(st, &p);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_NAME_TAKEN, "a principal named \"%s\" exists", name);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the principal");
		goto out;
	}
	*out = principal_json(&p);
	if (identity) {
		if (srv_auth_new_secret("rss_", secret) != 0) {
			e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a secret");
			goto out;
		}
		srv_auth_hash(secret, hash);
		rc = st->ops->secret_set(st, p.id, p.client_id, hash);
		if (rc != SRV_ST_OK) {
			e = srv_fail(r, srv_reason_from_store(rc),
				     "cannot store the client secret");
			goto out;
		}
		cJSON_AddStringToObject(*out, "clientSecret", secret);
	} else {
		e = add_token(r, p.id, "rsu_", "api", 0, *out, "token");
	}
	if (e == SRV_OK) {
		r->status = 201;
		rs_info("principal %s (%s) created by %s", p.name, p.type, r->actor.name);
	}
out:
	if (e != SRV_OK) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	rs_wipe(secret, sizeof(secret));
	cJSON_Delete(j);
	return e;
}

srv_err api_principal_list(srv_req *r, cJSON **out)
{
	srv_principal *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	srv_st_rc rc =
		r->ctx->store->ops->principal_list(r->ctx->store, offset, limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list principals");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "principals");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, principal_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_principal_list_free(v, n);
	return SRV_OK;
}

/* Loads r->params[0]: notFound unless the caller may read it (access.c). */
static srv_err load_principal(srv_req *r, srv_principal *p)
{
	srv_st_rc rc = r->ctx->store->ops->principal_get(r->ctx->store, r->params[0], p);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no principal \"%s\"", r->params[0]);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the principal");
	srv_reason why = srv_may_read_principal(r, p);
	if (why != SRV_R_NONE) {
		srv_principal_clear(p);
		return srv_fail(r, why, "no principal \"%s\"", r->params[0]);
	}
	return SRV_OK;
}

srv_err api_principal_get(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	if (load_principal(r, &p) != SRV_OK)
		return r->err;
	*out = principal_json(&p);
	srv_principal_clear(&p);
	return SRV_OK;
}

srv_err api_principal_delete(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	if (load_principal(r, &p) != SRV_OK)
		return r->err;
	srv_reason why = srv_may_delete_principal(r, &p);
	if (why != SRV_R_NONE) {
		srv_principal_clear(&p);
		return srv_fail(r, why, "a principal cannot delete itself");
	}
	srv_st_rc rc = r->ctx->store->ops->principal_delete(r->ctx->store, p.id);
	if (rc != SRV_ST_OK) {
		srv_principal_clear(&p);
		return srv_fail(r, srv_reason_from_store(rc), "cannot delete the principal");
	}
	rs_info("principal %s deleted by %s", p.name, r->actor.name);
	*out = principal_json(&p);
	srv_principal_clear(&p);
	return SRV_OK;
}

/* PATCH {"disabled": bool}: a disabled principal's tokens, access tokens
 * and login are refused at once (the route invalidates the caches). */
srv_err api_principal_update(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	int disabled = 0;
	srv_err e = SRV_OK;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_bool(j, "disabled", 1, &disabled) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "disabled (a boolean) is required");
		goto out;
	}
	if ((e = load_principal(r, &p)) != SRV_OK)
		goto out;
	srv_reason why = srv_may_disable_principal(r, &p);
	if (why != SRV_R_NONE) {
		e = srv_fail(r, why, "a principal cannot disable or enable itself");
		goto out;
	}
	srv_st_rc rc = r->ctx->store->ops->principal_set_disabled(r->ctx->store, p.id, disabled);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot update the principal");
		goto out;
	}
	p.disabled = disabled;
	rs_info("principal %s %s by %s", p.name, disabled ? "disabled" : "enabled", r->actor.name);
	*out = principal_json(&p);
	api_audit(r, disabled ? "principal.disable" : "principal.enable", "principal", p.id, NULL);
out:
	srv_principal_clear(&p);
	cJSON_Delete(j);
	return e;
}

srv_err api_principal_token(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	if (load_principal(r, &p) != SRV_OK)
		return r->err;
	if (strcmp(p.type, "user") != 0) {
		srv_principal_clear(&p);
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"machine identities log in with their client secret");
	}
	*out = principal_json(&p);
	srv_err e = add_token(r, p.id, "rsu_", "api", 0, *out, "token");
	srv_principal_clear(&p);
	if (e != SRV_OK) {
		cJSON_Delete(*out);
		*out = NULL;
		return e;
	}
	r->status = 201;
	return SRV_OK;
}
