/* GET /pki/signers/{id}/operations: the signing history, newest first;
 * GET /pki/operations/daily: sign attempts per day, signer and status (the
 * web console's overview chart). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* ?days=N (1..90, default 30): the last N UTC days, today included; only
 * the signers the caller may read (admins: all; others: those they are a
 * member of). Days without attempts are left out. */
srv_err api_operation_daily(srv_req *r, cJSON **out)
{
	size_t days = 30, n = 0;
	srv_op_day *v = NULL;
	const char *d = srv_query(r, "days");
	if (d && srv_parse_count(d, 1, 90, &days) != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "days must be between 1 and 90");
	long long today = (long long)time(NULL) / 86400;
	long long first = today - (long long)days + 1;
	srv_st_rc rc = r->ctx->store->ops->operation_daily(r->ctx->store, srv_visible_to(r),
							   (time_t)(first * 86400), &v, &n);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot count the signing history");
	*out = cJSON_CreateObject();
	char date[16];
	time_t t = (time_t)(first * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	cJSON_AddStringToObject(*out, "from", date);
	cJSON_AddNumberToObject(*out, "days", (double)days);
	cJSON *arr = cJSON_AddArrayToObject(*out, "counts");
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		t = (time_t)(v[i].day * 86400);
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		cJSON_AddStringToObject(o, "date", date);
		cJSON_AddStringToObject(o, "signerId", v[i].signer_id);
		cJSON_AddNumberToObject(o, "success", (double)v[i].success);
		cJSON_AddNumberToObject(o, "denied", (double)v[i].denied);
		cJSON_AddNumberToObject(o, "failed", (double)v[i].failed);
		cJSON_AddItemToArray(arr, o);
	}
	free(v);
	return SRV_OK;
}
