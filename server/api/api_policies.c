/* /pki/signing-policies: who approves signing with a signer, how many
 * approvals, and what a grant allows (maxSignings, maxWindowDuration). A
 * change of who approves, how many or what a grant allows cancels the
 * policy's pending requests and clamps its grants (store.h policy_update). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"

#define MAX_APPROVERS 32

cJSON *api_policy_json(const srv_policy *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "name", p->name ? p->name : "");
	cJSON *a = cJSON_AddArrayToObject(o, "approvers");
	for (size_t i = 0; i < p->n_approvers; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(p->approvers[i]));
	cJSON_AddNumberToObject(o, "requiredApprovals", p->required_approvals);
	cJSON *c = cJSON_AddObjectToObject(o, "constraints");
	if (p->max_signings)
		cJSON_AddNumberToObject(c, "maxSignings", (double)p->max_signings);
	else
		cJSON_AddNullToObject(c, "maxSignings");
	if (p->max_window)
		cJSON_AddNumberToObject(c, "maxWindowDuration", (double)p->max_window);
	else
		cJSON_AddNullToObject(c, "maxWindowDuration");
	cJSON_AddNumberToObject(o, "requestTtl", (double)p->request_ttl);
	cJSON_AddBoolToObject(o, "bypassForMachineIdentities", p->bypass_identities);
	cJSON *bc = p->bypass_claims ? cJSON_Parse(p->bypass_claims) : NULL;
	if (bc)
		cJSON_AddItemToObject(o, "bypassClaims", bc);
	else
		cJSON_AddNullToObject(o, "bypassClaims");
	srv_json_time(o, "createdAt", p->created_at);
	srv_json_time(o, "updatedAt", p->updated_at);
	return o;
}

/* The policy as the caller may see it: without its approvers' ids unless
 * it is an admin or one of them (access.c). */
static cJSON *policy_json_for(const srv_req *r, const srv_policy *p)
{
	cJSON *o = api_policy_json(p);
	if (srv_may_see_approvers(r, p) != SRV_R_NONE)
		cJSON_DeleteItemFromObjectCaseSensitive(o, "approvers");
	return o;
}

/* approvers: a non-empty array of distinct, enabled user principals (id or
 * name). */
static srv_err read_approvers(srv_req *r, const cJSON *arr, srv_policy *p)
{
	srv_store *st = r->ctx->store;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
	    cJSON_GetArraySize(arr) > MAX_APPROVERS)
		return srv_fail(r, SRV_R_INVALID_FIELD, "approvers must list 1 to %d principals",
				MAX_APPROVERS);
	srv_id *ids = calloc((size_t)cJSON_GetArraySize(arr), sizeof(srv_id));
	if (!ids)
		return srv_fail(r, SRV_R_INTERNAL, "out of memory");
	size_t n = 0;
	const cJSON *it;
	cJSON_ArrayForEach (it, arr) {
		srv_principal u = {0};
		if (!cJSON_IsString(it) || strlen(it->valuestring) > 64 ||
		    st->ops->principal_get(st, it->valuestring, &u) != SRV_ST_OK) {
			free(ids);
			return srv_fail(r, SRV_R_UNKNOWN_REFERENCE,
					"approver \"%s\" names no principal",
					cJSON_IsString(it) ? it->valuestring : "?");
		}
		int user = strcmp(u.type, "user") == 0, dup = 0, disabled = u.disabled;
		for (size_t i = 0; i < n; i++)
			dup |= strcmp(ids[i], u.id) == 0;
		if (!dup)
			memcpy(ids[n++], u.id, sizeof(srv_id));
		srv_principal_clear(&u);
		if (!user || disabled) {
			free(ids);
			return srv_fail(
				r, SRV_R_INVALID_FIELD,
				disabled ? "approver \"%s\" is disabled; it could not approve"
					 : "approver \"%s\" is a machine identity; only users "
					   "approve",
				it->valuestring);
		}
	}
	free(p->approvers);
	p->approvers = ids;
	p->n_approvers = n;
	return SRV_OK;
}

/* bypassClaims: an object {claim: pattern} (set), null (cleared) or
 * absent (kept); only with bypassForMachineIdentities true, which it
 * narrows to the OIDC logins whose recorded claims match (api_sign.c). */
static srv_err read_bypass_claims(srv_req *r, const cJSON *j, srv_policy *p)
{
	const cJSON *bc = cJSON_GetObjectItemCaseSensitive(j, "bypassClaims");
	char why[400];
	if (bc && cJSON_IsNull(bc)) {
		free(p->bypass_claims);
		p->bypass_claims = NULL;
	} else if (bc) {
		char *t = api_oidc_bypass_claims(bc, why, sizeof(why));
		if (!t)
			return srv_fail(r, SRV_R_INVALID_FIELD, "%s", why);
		free(p->bypass_claims);
		p->bypass_claims = t;
	}
	if (p->bypass_claims && !p->bypass_identities)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"bypassClaims needs bypassForMachineIdentities: true (it narrows "
				"that bypass); set it, or clear bypassClaims with null");
	return SRV_OK;
}

/* Applies the fields present in j to p (create: all defaults first). */
static srv_err read_policy(srv_req *r, const cJSON *j, srv_policy *p, int create)
{
	const char *name = NULL;
	long long v;
	int b;
	if (rs_json_str(j, "name", create, 64, &name) != RS_JSON_OK || (name && !rs_is_slug(name)))
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"name must match ^[a-z0-9][a-z0-9-]{0,63}$");
	if (name) {
		free(p->name);
		p->name = strdup(name);
	}
	const cJSON *ap = cJSON_GetObjectItemCaseSensitive(j, "approvers");
	if (ap || create)
		if (read_approvers(r, ap, p) != SRV_OK)
			return r->err;
	v = p->required_approvals ? p->required_approvals : 1;
	if (rs_json_int(j, "requiredApprovals", 0, 1, MAX_APPROVERS, &v) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "requiredApprovals must be at least 1");
	p->required_approvals = (int)v;
	if ((size_t)p->required_approvals > p->n_approvers)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"requiredApprovals (%d) exceeds the number of approvers (%zu)",
				p->required_approvals, p->n_approvers);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "constraints");
	if (c || create) {
		if (!cJSON_IsObject(c))
			return srv_fail(r, SRV_R_INVALID_FIELD,
					"constraints must be an object with maxSignings and/or "
					"maxWindowDuration");
		long long ms = 0, mw = 0;
		if (rs_json_int(c, "maxSignings", 0, 1, 1000000000, &ms) != RS_JSON_OK ||
		    rs_json_int(c, "maxWindowDuration", 0, 1, 315360000, &mw) != RS_JSON_OK)
			return srv_fail(
				r, SRV_R_INVALID_FIELD,
				"maxSignings and maxWindowDuration must be positive whole numbers");
		if (!ms && !mw)
			return srv_fail(r, SRV_R_INVALID_FIELD,
					"constraints need maxSignings, maxWindowDuration or both");
		p->max_signings = ms;
		p->max_window = mw;
	}
	v = p->request_ttl ? p->request_ttl : 86400;
	if (rs_json_int(j, "requestTtl", 0, 1, 31536000, &v) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "requestTtl must be 1 to 31536000 seconds");
	p->request_ttl = v;
	b = p->bypass_identities;
	if (rs_json_bool(j, "bypassForMachineIdentities", 0, &b) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"bypassForMachineIdentities must be a boolean");
	p->bypass_identities = b;
	return read_bypass_claims(r, j, p);
}

srv_err api_policy_create(srv_req *r, cJSON **out)
{
	srv_policy p = {0};
	srv_audit a = {0};
	srv_err e = SRV_OK;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if ((e = read_policy(r, j, &p, 1)) != SRV_OK)
		goto out;
	if (rs_uuid(p.id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	p.created_at = p.updated_at = time(NULL);
	if ((e = api_audit_entry(r, &a, "policy.create", "policy", p.id, api_policy_json(&p))) !=
	    SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->policy_insert(r->ctx->store, &p, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_NAME_TAKEN, "a policy named \"%s\" exists", p.name);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the policy");
		goto out;
	}
	*out = api_policy_json(&p);
	r->status = 201;
out:
	api_audit_done(&a);
	srv_policy_clear(&p);
	cJSON_Delete(j);
	return e;
}

/* Filtered in SQL with srv_visible_to: what srv_may_see_policy allows. */
srv_err api_policy_list(srv_req *r, cJSON **out)
{
	srv_policy *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->policy_list(r->ctx->store, srv_visible_to(r), offset,
						       limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list policies");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "policies");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, policy_json_for(r, &v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_policy_list_free(v, n);
	return SRV_OK;
}

srv_err api_policy_load(srv_req *r, const char *id, srv_policy *p)
{
	srv_st_rc rc = r->ctx->store->ops->policy_get(r->ctx->store, id, p);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no signing policy \"%s\"", id);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the policy");
	return SRV_OK;
}

srv_err api_policy_get(srv_req *r, cJSON **out)
{
	srv_policy p = {0};
	if (api_policy_load(r, r->params[0], &p) != SRV_OK)
		return r->err;
	srv_reason why = srv_may_see_policy(r, &p);
	if (why != SRV_R_NONE) {
		srv_policy_clear(&p);
		return srv_fail(r, why, "no signing policy \"%s\"", r->params[0]);
	}
	*out = policy_json_for(r, &p);
	srv_policy_clear(&p);
	return SRV_OK;
}

srv_err api_policy_update(srv_req *r, cJSON **out)
{
	srv_policy p = {0};
	srv_audit a = {0};
	srv_err e;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if ((e = api_policy_load(r, r->params[0], &p)) != SRV_OK ||
	    (e = read_policy(r, j, &p, 0)) != SRV_OK)
		goto out;
	p.updated_at = time(NULL);
	if ((e = api_audit_entry(r, &a, "policy.update", "policy", p.id, api_policy_json(&p))) !=
	    SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->policy_update(r->ctx->store, &p, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_NAME_TAKEN, "a policy named \"%s\" exists", p.name);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot update the policy");
		goto out;
	}
	*out = api_policy_json(&p);
out:
	api_audit_done(&a);
	srv_policy_clear(&p);
	cJSON_Delete(j);
	return e;
}

srv_err api_policy_delete(srv_req *r, cJSON **out)
{
	srv_policy p = {0};
	srv_audit a = {0};
	if (api_policy_load(r, r->params[0], &p) != SRV_OK)
		return r->err;
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", p.name ? p.name : "");
	srv_err e = api_audit_entry(r, &a, "policy.delete", "policy", p.id, d);
	if (e == SRV_OK) {
		srv_st_rc rc = r->ctx->store->ops->policy_delete(r->ctx->store, p.id, &a);
		if (rc == SRV_ST_CONFLICT)
			e = srv_fail(r, SRV_R_IN_USE, "policy %s is used by a signer", p.name);
		else if (rc != SRV_ST_OK)
			e = srv_fail(r, srv_reason_from_store(rc), "cannot delete the policy");
		else
			*out = api_policy_json(&p);
	}
	api_audit_done(&a);
	srv_policy_clear(&p);
	return e;
}
