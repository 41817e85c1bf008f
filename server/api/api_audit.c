/* The audit log: the entry a change hands to the store, which writes it in
 * the transaction of the change (store.h), and GET /audit-log (filtered by
 * actor, action and time). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"

srv_err api_audit_entry(srv_req *r, srv_audit *a, const char *action, const char *type,
			const char *id, cJSON *detail)
{
	memset(a, 0, sizeof(*a));
	rs_strlcpy(a->actor_id, r->actor.id, sizeof(a->actor_id));
	a->actor_name = r->actor.name;
	rs_strlcpy(a->action, action, sizeof(a->action));
	rs_strlcpy(a->object_type, type, sizeof(a->object_type));
	rs_strlcpy(a->object_id, id, sizeof(a->object_id));
	a->created_at = time(NULL);
	a->detail = detail ? rs_json_print(detail) : strdup("{}");
	cJSON_Delete(detail);
	if (!a->detail)
		return srv_fail(r, SRV_R_INTERNAL, "out of memory for the audit entry");
	return SRV_OK;
}

void api_audit_done(srv_audit *a)
{
	free(a->detail);
	a->detail = NULL;
}

/* "object.verb": lower-case letters and '_', one dot, as srv_audit.action
 * holds them */
static int audit_action_ok(const char *s)
{
	size_t n = strlen(s), dots = 0;
	if (n < 3 || n >= sizeof(((srv_audit *)0)->action) || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dots++;
		else if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
			return 0;
	}
	return dots == 1;
}

srv_err api_audit_list(srv_req *r, cJSON **out)
{
	size_t offset, limit, n = 0, total = 0;
	srv_audit *v = NULL;
	srv_list_filter f = {0};
	if (srv_paging(r, &offset, &limit) != SRV_OK || api_list_filter(r, &f) != SRV_OK)
		return r->err;
	f.action = srv_query(r, "action");
	if (f.action && !audit_action_ok(f.action))
		return srv_fail(r, SRV_R_INVALID_QUERY,
				"action must be an audit action such as policy.create");
	srv_st_rc rc =
		r->ctx->store->ops->audit_list(r->ctx->store, &f, offset, limit, &v, &n, &total);
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
