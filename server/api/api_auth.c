/* /auth/universal-auth/login, /auth/whoami and /principals: users with API
 * tokens, machine identities with clientId/clientSecret. Secrets are shown
 * once, stored only as SHA-256, and wiped from memory after use. Every
 * change but a login is audited in its own transaction. */
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/http/auth.h"
#include "server/http/ratelimit.h"

cJSON *api_principal_json(const srv_principal *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "name", p->name ? p->name : "");
	cJSON_AddStringToObject(o, "type", p->type);
	cJSON_AddBoolToObject(o, "admin", p->admin);
	cJSON_AddBoolToObject(o, "metrics", p->metrics);
	cJSON_AddBoolToObject(o, "disabled", p->disabled);
	if (strcmp(p->type, "identity") == 0)
		cJSON_AddStringToObject(o, "clientId", p->client_id);
	srv_json_time(o, "createdAt", p->created_at);
	return o;
}

/* Issues a token of kind for principal_id and adds it to o as field; a
 * (NULL for a login's access token) is the audit entry stored with it. */
static srv_err add_token(srv_req *r, const char *principal_id, const char *prefix, const char *kind,
			 time_t expires, cJSON *o, const char *field, const srv_audit *a)
{
	char tok[SRV_TOKEN_LEN], hash[65];
	if (srv_auth_new_secret(prefix, tok) != 0)
		return srv_fail(r, SRV_R_INTERNAL, "no randomness for a token");
	srv_auth_hash(tok, hash);
	srv_st_rc rc = r->ctx->store->ops->token_insert(r->ctx->store, hash, principal_id, kind,
							expires, a);
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
	srv_st_rc rc = r->ctx->store->ops->secret_lookup(r->ctx->store, cid, hash, time(NULL), &p);
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
	e = add_token(r, p.id, "rsa_", "access", time(NULL) + ttl, *out, "accessToken", NULL);
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
	*out = api_principal_json(&r->actor);
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

static cJSON *principal_detail(const srv_principal *p)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", p->name ? p->name : "");
	cJSON_AddStringToObject(d, "type", p->type);
	cJSON_AddBoolToObject(d, "admin", p->admin);
	if (p->metrics)
		cJSON_AddBoolToObject(d, "metrics", 1);
	return d;
}

/* The principal, its first credential (a user's API token, an identity's
 * client secret: shown once in the answer) and the audit entry, stored in
 * one transaction. */
srv_err api_principal_create(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	const char *type = NULL, *name = NULL;
	int admin = 0, metrics = 0;
	srv_principal p = {0};
	srv_audit a = {0};
	char secret[SRV_TOKEN_LEN] = "", hash[65] = "";
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
	if (rs_json_bool(j, "metrics", 0, &metrics) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "metrics must be a boolean");
		goto out;
	}
	if (rs_uuid(p.id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	rs_strlcpy(p.type, type, sizeof(p.type));
	p.name = (char *)name;
	p.admin = admin;
	p.metrics = metrics;
	p.created_at = time(NULL);
	int identity = strcmp(type, "identity") == 0;
	if (identity && rs_uuid(p.client_id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a client id");
		goto out;
	}
	if (srv_auth_new_secret(identity ? "rss_" : "rsu_", secret) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a credential");
		goto out;
	}
	srv_auth_hash(secret, hash);
	if ((e = api_audit_entry(r, &a, "principal.create", "principal", p.id,
				 principal_detail(&p))) != SRV_OK)
		goto out;
	srv_st_rc rc = st->ops->principal_insert(st, &p, hash, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_NAME_TAKEN, "a principal named \"%s\" exists", name);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the principal");
		goto out;
	}
	*out = api_principal_json(&p);
	cJSON_AddStringToObject(*out, identity ? "clientSecret" : "token", secret);
	r->status = 201;
	rs_info("principal %s (%s) created by %s", p.name, p.type, r->actor.name);
out:
	api_audit_done(&a);
	rs_wipe(secret, sizeof(secret));
	rs_wipe(hash, sizeof(hash));
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
		cJSON_AddItemToArray(arr, api_principal_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_principal_list_free(v, n);
	return SRV_OK;
}

srv_err api_principal_load(srv_req *r, srv_principal *p)
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
	if (api_principal_load(r, &p) != SRV_OK)
		return r->err;
	*out = api_principal_json(&p);
	srv_principal_clear(&p);
	return SRV_OK;
}

/* The store refused to delete or disable p: a policy needs it (store.h). */
static srv_err approver_in_use(srv_req *r, const srv_principal *p)
{
	return srv_fail(r, SRV_R_APPROVER_IN_USE,
			"%s approves for a signing policy that would be left with fewer usable "
			"approvers than it requires: change the policy first",
			p->name);
}

srv_err api_principal_delete(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	srv_audit a = {0};
	srv_err e;
	if (api_principal_load(r, &p) != SRV_OK)
		return r->err;
	srv_reason why = srv_may_delete_principal(r, &p);
	if (why != SRV_R_NONE) {
		e = srv_fail(r, why, "a principal cannot delete itself");
		goto out;
	}
	if ((e = api_audit_entry(r, &a, "principal.delete", "principal", p.id,
				 principal_detail(&p))) != SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->principal_delete(r->ctx->store, p.id, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = approver_in_use(r, &p);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot delete the principal");
		goto out;
	}
	rs_info("principal %s deleted by %s", p.name, r->actor.name);
	*out = api_principal_json(&p);
out:
	api_audit_done(&a);
	srv_principal_clear(&p);
	return e;
}

/* PATCH {"disabled": bool}: a disabled principal's tokens, access tokens
 * and login are refused at once (the route invalidates the caches). */
srv_err api_principal_update(srv_req *r, cJSON **out)
{
	srv_principal p = {0};
	srv_audit a = {0};
	int disabled = 0;
	srv_err e = SRV_OK;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_bool(j, "disabled", 1, &disabled) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "disabled (a boolean) is required");
		goto out;
	}
	if ((e = api_principal_load(r, &p)) != SRV_OK)
		goto out;
	srv_reason why = srv_may_disable_principal(r, &p);
	if (why != SRV_R_NONE) {
		e = srv_fail(r, why, "a principal cannot disable or enable itself");
		goto out;
	}
	if ((e = api_audit_entry(r, &a, disabled ? "principal.disable" : "principal.enable",
				 "principal", p.id, principal_detail(&p))) != SRV_OK)
		goto out;
	srv_st_rc rc =
		r->ctx->store->ops->principal_set_disabled(r->ctx->store, p.id, disabled, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = approver_in_use(r, &p);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot update the principal");
		goto out;
	}
	p.disabled = disabled;
	rs_info("principal %s %s by %s", p.name, disabled ? "disabled" : "enabled", r->actor.name);
	*out = api_principal_json(&p);
out:
	api_audit_done(&a);
	srv_principal_clear(&p);
	cJSON_Delete(j);
	return e;
}
