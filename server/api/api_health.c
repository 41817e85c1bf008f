/* GET /health: liveness of the token and the database. */
#include "server/api/api.h"

srv_err api_health(srv_req *r, cJSON **out)
{
	srv_ctx *ctx = r->ctx;
	if (srv_hsm_ping(ctx->hsm) != SRV_HSM_OK)
		return srv_fail(r, SRV_R_TOKEN_UNAVAILABLE, "the HSM token cannot be reached");
	if (ctx->store->ops->ping(ctx->store) != SRV_ST_OK)
		return srv_fail(r, SRV_R_DATABASE_UNAVAILABLE, "the database cannot be reached");
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "status", "ok");
	cJSON_AddStringToObject(*out, "version", RSIGN_VERSION);
	return SRV_OK;
}
