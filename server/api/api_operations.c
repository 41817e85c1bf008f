/* GET /pki/signers/{id}/operations: the signing history, newest first. */
#include <string.h>
#include "rsign/json.h"
#include "server/api/access.h"
#include "server/api/api.h"

static cJSON *operation_json(const srv_operation *op)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", op->id);
	cJSON_AddStringToObject(o, "signerId", op->signer_id);
	cJSON_AddStringToObject(o, "status", op->status);
	cJSON_AddStringToObject(o, "signingAlgorithm", op->algorithm);
	if (op->data_hash[0])
		cJSON_AddStringToObject(o, "dataHash", op->data_hash);
	else
		cJSON_AddNullToObject(o, "dataHash");
	cJSON_AddBoolToObject(o, "isDigest", op->is_digest);
	cJSON_AddStringToObject(o, "actorType", op->actor_type);
	cJSON_AddStringToObject(o, "actorId", op->actor_id);
	cJSON_AddStringToObject(o, "actorName", op->actor_name ? op->actor_name : "");
	if (op->grant_id[0])
		cJSON_AddStringToObject(o, "grantId", op->grant_id);
	else
		cJSON_AddNullToObject(o, "grantId");
	cJSON_AddStringToObject(o, "approval", op->approval[0] ? op->approval : "none");
	const char *meta = op->client_metadata ? op->client_metadata : "{}";
	cJSON *m = rs_json_parse(meta, strlen(meta), RS_JSON_MAX_DEPTH);
	cJSON_AddItemToObject(o, "clientMetadata", m ? m : cJSON_CreateObject());
	cJSON *login =
		op->oidc ? rs_json_parse(op->oidc, strlen(op->oidc), RS_JSON_MAX_DEPTH) : NULL;
	cJSON_AddItemToObject(o, "oidc", login ? login : cJSON_CreateNull());
	cJSON_AddStringToObject(o, "sourceIp", op->source_ip);
	if (op->error_code[0])
		cJSON_AddStringToObject(o, "errorCode", op->error_code);
	else
		cJSON_AddNullToObject(o, "errorCode");
	srv_json_time(o, "createdAt", op->created_at);
	return o;
}

srv_err api_operation_list(srv_req *r, cJSON **out)
{
	size_t offset, limit, n = 0, total = 0;
	srv_signer s = {0};
	srv_operation *v = NULL;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	const char *status = srv_query(r, "status");
	if (status && strcmp(status, "success") != 0 && strcmp(status, "denied") != 0 &&
	    strcmp(status, "failed") != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "status must be success, denied or failed");
	if (api_signer_load(r, srv_may_read_signer, &s) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->operation_list(r->ctx->store, s.id, status, offset,
							  limit, &v, &n, &total);
	srv_signer_clear(&s);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the signing history");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "operations");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, operation_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_operation_list_free(v, n);
	return SRV_OK;
}
