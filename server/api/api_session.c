/* /auth/console/login and /auth/console/logout: a user exchanges an API
 * token for a console session, as Vault's UI does for its token method.
 * The session's id lives only in an HttpOnly cookie (its SHA-256 in the
 * store), its CSRF token in a second cookie the page's script reads; the
 * API token is read once and wiped. Machine identities (and the access
 * tokens of their logins) are refused: the console is for people. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/http/auth.h"
#include "server/http/ratelimit.h"

/* "NAME=VALUE; attributes" (malloc'd; NULL out of memory). max_age < 0: a
 * session cookie; 0 clears it. */
static char *cookie(const char *name, const char *value, int http_only, long long max_age)
{
	char age[40] = "";
	if (max_age >= 0)
		snprintf(age, sizeof(age), "; Max-Age=%lld", max_age);
	size_t n = strlen(name) + strlen(value) + 96;
	char *c = malloc(n);
	if (c)
		snprintf(c, n, "%s=%s; Path=/; Secure; SameSite=Strict%s%s", name, value,
			 http_only ? "; HttpOnly" : "", age);
	return c;
}

/* Looks the API token up: the user it belongs to, or why it cannot sign in. */
static srv_err token_user(srv_req *r, const char *token, srv_principal *p)
{
	char hash[65];
	srv_token t = {0};
	if ((srv_limit_bearer(r)) != SRV_OK)
		return r->err;
	srv_auth_hash(token, hash);
	srv_st_rc rc = r->ctx->store->ops->token_lookup(r->ctx->store, hash, time(NULL), p, &t);
	if (rc == SRV_ST_NOT_FOUND) {
		srv_limit_bearer_failed(r);
		return srv_fail(r, SRV_R_TOKEN_INVALID, "unknown or expired token");
	}
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot check the token");
	if (strcmp(p->type, "user") != 0 || strcmp(t.kind, "api") != 0)
		return srv_fail(r, SRV_R_CONSOLE_USERS,
				"only users sign in to the console, with an API token; %s is a "
				"machine identity",
				p->name);
	srv_reason why = srv_may_log_in(p);
	if (why != SRV_R_NONE)
		return srv_fail(r, why, "principal %s is disabled", p->name);
	return SRV_OK;
}

srv_err api_console_login(srv_req *r, cJSON **out)
{
	srv_err e;
	const char *token = NULL;
	srv_principal p = {0};
	char secret[SRV_TOKEN_LEN] = "", csrf[65] = "";
	srv_session s = {0};
	/* a cross-site form cannot send this type without a CORS preflight
	 * (which rsignd never grants): no login CSRF into another account */
	const char *ct = srv_header(r, "Content-Type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
		return srv_fail(r, SRV_R_INVALID_JSON,
				"the console sign-in takes a JSON body sent as application/json");
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_str(j, "token", 1, 256, &token) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "token (a user's API token) is a required string");
		goto out;
	}
	if ((e = token_user(r, token, &p)) != SRV_OK)
		goto out;
	if (srv_auth_new_secret("rsc_", secret) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for a session");
		goto out;
	}
	long long idle = r->ctx->session_idle > 0 ? r->ctx->session_idle : 43200;
	srv_auth_hash(secret, s.hash);
	rs_strlcpy(s.principal_id, p.id, sizeof(s.principal_id));
	s.created_at = s.last_seen_at = time(NULL);
	s.expires_at = s.created_at + SRV_SESSION_MAX_SECS;
	srv_st_rc rc = r->ctx->store->ops->session_insert(r->ctx->store, &s);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the session");
		goto out;
	}
	srv_session_csrf(secret, csrf);
	r->set_cookie[0] = cookie(SRV_SESSION_COOKIE, secret, 1, -1);
	r->set_cookie[1] = cookie(SRV_CSRF_COOKIE, csrf, 0, -1);
	if (!r->set_cookie[0] || !r->set_cookie[1]) {
		r->ctx->store->ops->session_delete(r->ctx->store, s.hash);
		e = srv_fail(r, SRV_R_INTERNAL, "out of memory");
		goto out;
	}
	*out = cJSON_CreateObject();
	cJSON_AddItemToObject(*out, "principal", api_principal_json(&p));
	cJSON_AddStringToObject(*out, "csrfToken", csrf);
	cJSON_AddNumberToObject(*out, "idleTimeout", (double)idle);
	srv_json_time(*out, "expiresAt", s.expires_at);
	/* the sessions that ended go here, so the table stays as large as
	 * the sessions that can still be used */
	size_t purged = 0;
	if (r->ctx->store->ops->session_purge(r->ctx->store, s.created_at, idle, &purged) ==
		    SRV_ST_OK &&
	    purged)
		rs_debug("purged %zu ended console sessions", purged);
	e = SRV_OK;
out:
	if (token)
		rs_wipe((char *)token, strlen(token));
	rs_wipe(secret, sizeof(secret));
	cJSON_Delete(j);
	srv_principal_clear(&p);
	return e;
}

srv_err api_console_logout(srv_req *r, cJSON **out)
{
	if (!r->session[0])
		return srv_fail(r, SRV_R_SESSION_INVALID,
				"sign-out ends a console session: this request came with none");
	srv_st_rc rc = r->ctx->store->ops->session_delete(r->ctx->store, r->session);
	if (rc != SRV_ST_OK && rc != SRV_ST_NOT_FOUND)
		return srv_fail(r, srv_reason_from_store(rc), "cannot end the session");
	r->set_cookie[0] = cookie(SRV_SESSION_COOKIE, "", 1, 0);
	r->set_cookie[1] = cookie(SRV_CSRF_COOKIE, "", 0, 0);
	*out = cJSON_CreateObject();
	cJSON_AddBoolToObject(*out, "signedOut", 1);
	return SRV_OK;
}
