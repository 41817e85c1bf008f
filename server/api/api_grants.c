/* /pki/grants: what approvals produced; listing and revocation. A revoked
 * grant stops at the next sign call. */
#include <string.h>
#include <time.h>
#include "rsign/log.h"
#include "server/api/api.h"
#include "server/http/auth.h"

static cJSON *grant_json(const srv_grant *g)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", g->id);
	cJSON_AddStringToObject(o, "signerId", g->signer_id);
	cJSON_AddStringToObject(o, "granteeId", g->grantee_id);
	cJSON_AddStringToObject(o, "requestId", g->request_id);
	cJSON_AddStringToObject(o, "status", g->status);
	if (g->max_signings)
		cJSON_AddNumberToObject(o, "maxSignings", (double)g->max_signings);
	else
		cJSON_AddNullToObject(o, "maxSignings");
	cJSON_AddNumberToObject(o, "usedSignings", (double)g->used_signings);
	srv_json_time(o, "windowStart", g->window_start);
	srv_json_time(o, "expiresAt", g->expires_at);
	srv_json_time(o, "createdAt", g->created_at);
	srv_json_time(o, "revokedAt", g->revoked_at);
	return o;
}

static int may_see(srv_req *r, const srv_grant *g)
{
	if (r->actor.admin || strcmp(g->grantee_id, r->actor.id) == 0)
		return 1;
	srv_role role = SRV_ROLE_NONE;
	return srv_auth_signer_role(r->ctx->store, &r->actor, g->signer_id, &role) == SRV_R_NONE &&
	       role != SRV_ROLE_NONE;
}

srv_err api_grant_list(srv_req *r, cJSON **out)
{
	srv_grant *v = NULL;
	size_t n = 0;
	const char *signer = srv_query(r, "signerId"), *status = srv_query(r, "status");
	srv_id sid;
	if (api_signer_query(r, &signer, sid) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->grant_list(r->ctx->store, signer, status, NULL,
						      time(NULL), &v, &n);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list grants");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "grants");
	size_t shown = 0;
	for (size_t i = 0; i < n; i++)
		if (may_see(r, &v[i])) {
			cJSON_AddItemToArray(arr, grant_json(&v[i]));
			shown++;
		}
	cJSON_AddNumberToObject(*out, "totalCount", (double)shown);
	srv_grant_list_free(v, n);
	return SRV_OK;
}

/* Admins and the approvers of the signer's current policy revoke. */
static int may_revoke(srv_req *r, const srv_grant *g)
{
	if (r->actor.admin)
		return 1;
	srv_signer s = {0};
	srv_policy p = {0};
	int yes = 0;
	if (r->ctx->store->ops->signer_get(r->ctx->store, g->signer_id, &s) == SRV_ST_OK &&
	    s.policy_id[0] &&
	    r->ctx->store->ops->policy_get(r->ctx->store, s.policy_id, &p) == SRV_ST_OK)
		for (size_t i = 0; i < p.n_approvers; i++)
			yes |= strcmp(p.approvers[i], r->actor.id) == 0;
	srv_signer_clear(&s);
	srv_policy_clear(&p);
	return yes;
}

srv_err api_grant_revoke(srv_req *r, cJSON **out)
{
	srv_grant g = {0};
	time_t now = time(NULL);
	srv_st_rc rc = r->ctx->store->ops->grant_get(r->ctx->store, r->params[0], now, &g);
	if (rc != SRV_ST_OK && rc != SRV_ST_NOT_FOUND)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the grant");
	int revoker = rc == SRV_ST_OK && may_revoke(r, &g);
	if (rc == SRV_ST_NOT_FOUND || (!revoker && !may_see(r, &g)))
		return srv_fail(r, SRV_R_NOT_FOUND, "no grant \"%s\"", r->params[0]);
	if (!revoker)
		return srv_fail(r, SRV_R_NOT_APPROVER,
				"only admins and the policy's approvers revoke grants");
	rc = r->ctx->store->ops->grant_revoke(r->ctx->store, g.id, now);
	if (rc == SRV_ST_CONFLICT)
		return srv_fail(r, SRV_R_STATE_CONFLICT, "grant %s is %s, not active", g.id,
				g.status);
	if (rc == SRV_ST_OK)
		rc = r->ctx->store->ops->grant_get(r->ctx->store, g.id, now, &g);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot revoke the grant");
	*out = grant_json(&g);
	api_audit(r, "grant.revoke", "grant", g.id, NULL);
	rs_info("grant %s revoked by %s", g.id, r->actor.name);
	return SRV_OK;
}
