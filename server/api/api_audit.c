/* The audit log of policy, request, decision and grant changes: written
 * beside the signing history, read at GET /audit-log. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"

void api_audit(srv_req *r, const char *action, const char *type, const char *id, cJSON *detail)
{
	srv_audit a = {0};
	rs_strlcpy(a.actor_id, r->actor.id, sizeof(a.actor_id));
	a.actor_name = r->actor.name;
	rs_strlcpy(a.action, action, sizeof(a.action));
	rs_strlcpy(a.object_type, type, sizeof(a.object_type));
	rs_strlcpy(a.object_id, id, sizeof(a.object_id));
	a.detail = detail ? rs_json_print(detail) : NULL;
	a.created_at = time(NULL);
	if (!a.detail)
		a.detail = strdup("{}");
	srv_st_rc rc =
		a.detail ? r->ctx->store->ops->audit_insert(r->ctx->store, &a) : SRV_ST_FAILED;
	/* the change itself is committed; a lost audit entry must be loud */
	if (rc != SRV_ST_OK)
		rs_err("audit: cannot record %s on %s %s by %s", action, type, id, r->actor.name);
	free(a.detail);
	cJSON_Delete(detail);
}

srv_err api_audit_list(srv_req *r, cJSON **out)
{
	size_t offset, limit, n = 0, total = 0;
	srv_audit *v = NULL;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->audit_list(r->ctx->store, offset, limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the audit log");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "events");
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "seq", (double)v[i].seq);
		cJSON_AddStringToObject(o, "action", v[i].action);
		cJSON_AddStringToObject(o, "objectType", v[i].object_type);
		cJSON_AddStringToObject(o, "objectId", v[i].object_id);
		cJSON_AddStringToObject(o, "actorId", v[i].actor_id);
		cJSON_AddStringToObject(o, "actorName", v[i].actor_name ? v[i].actor_name : "");
		const char *d = v[i].detail ? v[i].detail : "{}";
		cJSON *dj = rs_json_parse(d, strlen(d), RS_JSON_MAX_DEPTH);
		cJSON_AddItemToObject(o, "detail", dj ? dj : cJSON_CreateObject());
		srv_json_time(o, "createdAt", v[i].created_at);
		cJSON_AddItemToArray(arr, o);
	}
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_audit_list_free(v, n);
	return SRV_OK;
}
