/* /pki/grants: what approvals produced; listing and revocation. A revoked
 * grant stops at the next sign call. */
#include <string.h>
#include <time.h>
#include "rsign/log.h"
#include "server/api/api.h"
#include "server/api/access.h"

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

/* Filtered in SQL with srv_visible_to: what srv_may_see_grant allows. */
srv_err api_grant_list(srv_req *r, cJSON **out)
{
	srv_grant *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	const char *signer = srv_query(r, "signerId"), *status = srv_query(r, "status");
	srv_id sid;
	if (srv_paging(r, &offset, &limit) != SRV_OK || api_signer_query(r, &signer, sid) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->grant_list(r->ctx->store, signer, status, NULL,
						      srv_visible_to(r), time(NULL), offset, limit,
						      &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list grants");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "grants");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, grant_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_grant_list_free(v, n);
	return SRV_OK;
}

srv_err api_grant_revoke(srv_req *r, cJSON **out)
{
	srv_grant g = {0};
	srv_audit a = {0};
	time_t now = time(NULL);
	srv_st_rc rc = r->ctx->store->ops->grant_get(r->ctx->store, r->params[0], now, &g);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no grant \"%s\"", r->params[0]);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the grant");
	srv_reason why = srv_may_see_grant(r, &g);
	if (why != SRV_R_NONE)
		return srv_fail(r, why, "no grant \"%s\"", r->params[0]);
	if ((why = srv_may_revoke_grant(r, &g)) != SRV_R_NONE)
		return srv_fail(r, why, "only admins and the policy's approvers revoke grants");
	if (api_audit_entry(r, &a, "grant.revoke", "grant", g.id, NULL) != SRV_OK)
		return r->err;
	a.created_at = now;
	rc = r->ctx->store->ops->grant_revoke(r->ctx->store, g.id, now, &a);
	api_audit_done(&a);
	if (rc == SRV_ST_CONFLICT)
		return srv_fail(r, SRV_R_STATE_CONFLICT, "grant %s is %s, not active", g.id,
				g.status);
	if (rc == SRV_ST_OK)
		rc = r->ctx->store->ops->grant_get(r->ctx->store, g.id, now, &g);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot revoke the grant");
	*out = grant_json(&g);
	rs_info("grant %s revoked by %s", g.id, r->actor.name);
	return SRV_OK;
}
