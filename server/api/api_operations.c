/* GET /pki/signers/{id}/operations: the signing history, newest first,
 * filtered by status, actor, algorithm and time; the query filters shared
 * with GET /audit-log; GET /pki/operations/daily: sign attempts per day,
 * signer and status (the web console's overview chart). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/alg.h"
#include "rsign/json.h"
#include "rsign/util.h"
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

/* An RFC 3339 time as the filters take it: "2026-12-05T18:43:24Z", with
 * optional fractional seconds and a Z or +hh:mm / -hh:mm offset. Created
 * times are whole seconds, so a fraction rounds up: t >= 10.5 and t < 10.5
 * are t >= 11 and t < 11. -1 when it is not such a time. */
static int filter_time(const char *s, time_t *out)
{
	char base[21];
	size_t len = strlen(s);
	long long off = 0;
	int frac = 0;
	if (len < 20 || len > 40 || s[19] == 'Z' || s[19] == 'z')
		return len >= 20 && len <= 40 && rs_time_parse(s, out) == 0 ? 0 : -1;
	memcpy(base, s, 19);
	base[19] = 'Z';
	base[20] = '\0';
	const char *p = s + 19;
	if (*p == '.') {
		const char *d = ++p;
		while (*p >= '0' && *p <= '9') {
			frac |= *p != '0';
			p++;
		}
		if (p == d)
			return -1;
	}
	if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' && p[1] >= '0' &&
	    p[1] <= '2' && p[2] >= '0' && p[2] <= '9' && p[4] >= '0' && p[4] <= '5' &&
	    p[5] >= '0' && p[5] <= '9') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600LL +
		      ((p[4] - '0') * 10 + (p[5] - '0')) * 60LL;
		if (off > 23 * 3600 + 59 * 60)
			return -1;
		if (*p == '-')
			off = -off;
	} else if (!((*p == 'Z' || *p == 'z') && p[1] == '\0')) {
		return -1;
	}
	if (rs_time_parse(base, out) != 0)
		return -1;
	*out = *out - (time_t)off + (frac ? 1 : 0);
	return 0;
}

srv_err api_list_filter(srv_req *r, srv_list_filter *f)
{
	const char *from = srv_query(r, "from"), *to = srv_query(r, "to");
	f->actor = srv_query(r, "actor");
	if (f->actor && !rs_is_text(f->actor, 255))
		return srv_fail(r, SRV_R_INVALID_QUERY,
				"actor must be a principal id or name (1 to 255 characters)");
	if (from && (f->has_from = 1, filter_time(from, &f->from) != 0))
		return srv_fail(r, SRV_R_INVALID_QUERY,
				"from must be an RFC 3339 time such as 2026-01-31T00:00:00Z");
	if (to && (f->has_to = 1, filter_time(to, &f->to) != 0))
		return srv_fail(r, SRV_R_INVALID_QUERY,
				"to must be an RFC 3339 time such as 2026-01-31T00:00:00Z");
	if (from && to && f->from >= f->to)
		return srv_fail(r, SRV_R_INVALID_QUERY, "from must be before to");
	return SRV_OK;
}

srv_err api_operation_list(srv_req *r, cJSON **out)
{
	size_t offset, limit, n = 0, total = 0;
	srv_signer s = {0};
	srv_operation *v = NULL;
	srv_list_filter f = {0};
	rs_sign_alg alg;
	if (srv_paging(r, &offset, &limit) != SRV_OK || api_list_filter(r, &f) != SRV_OK)
		return r->err;
	f.status = srv_query(r, "status");
	if (f.status && strcmp(f.status, "success") != 0 && strcmp(f.status, "denied") != 0 &&
	    strcmp(f.status, "failed") != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "status must be success, denied or failed");
	f.algorithm = srv_query(r, "algorithm");
	if (f.algorithm) {
		if (rs_sign_alg_parse(f.algorithm, &alg) != 0)
			return srv_fail(r, SRV_R_INVALID_QUERY,
					"algorithm must be a signingAlgorithm such as "
					"RSASSA_PKCS1_V1_5_SHA256");
		f.algorithm = rs_sign_alg_name(alg); /* as recorded */
	}
	if (api_signer_load(r, srv_may_read_signer, &s) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->operation_list(r->ctx->store, s.id, &f, offset, limit,
							  &v, &n, &total);
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
