/* GET /health (liveness: the process serves HTTP) and GET /ready
 * (readiness: the token and the database answer; 503 names the one that
 * does not). */
#include "server/api/api.h"

srv_err api_health(srv_req *r, cJSON **out)
{
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "status", "ok");
	cJSON_AddStringToObject(*out, "version", RSIGN_VERSION);
	return SRV_OK;
}

/* A token found broken here also lets the HSM pool try to re-initialise it
 * (hsm_pool.c's backoff), so a monitor polling /ready heals rsignd while no
 * one signs. */
srv_err api_ready(srv_req *r, cJSON **out)
{
	srv_ctx *ctx = r->ctx;
	if (srv_hsm_ping(ctx->hsm) != SRV_HSM_OK)
		return srv_fail(r, SRV_R_TOKEN_UNAVAILABLE,
				"not ready: the token cannot be reached");
	if (ctx->store->ops->ping(ctx->store) != SRV_ST_OK)
		return srv_fail(r, SRV_R_DATABASE_UNAVAILABLE,
				"not ready: the database cannot be reached");
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "status", "ready");
	cJSON_AddStringToObject(*out, "version", RSIGN_VERSION);
	cJSON *checks = cJSON_AddObjectToObject(*out, "checks");
	cJSON_AddStringToObject(checks, "token", "ok");
	cJSON_AddStringToObject(checks, "database", "ok");
	return SRV_OK;
}
