/* Who is calling and what they may do: bearer tokens (stored as SHA-256
 * only), machine-identity secrets, and the role checks of the API. */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H
#include <stddef.h>
#include "server/http/http.h"

/* "Bearer <token>" header -> principal (cleared by the caller). SRV_R_NONE,
 * or why not: SRV_R_TOKEN_MISSING (no bearer header), SRV_R_TOKEN_INVALID
 * (unknown or expired), SRV_R_PRINCIPAL_DISABLED (out filled: the token is
 * its, and an admin disabled it), or a storage reason. */
srv_reason srv_auth_bearer(const srv_ctx *ctx, const char *header, srv_principal *out);

/* The token -> principal cache srv_auth_bearer uses (ctx->auth_cache). */
struct srv_cache *srv_auth_cache_new(void);

/* SHA-256 hex of a secret (out: 65 bytes). */
void srv_auth_hash(const char *secret, char out[65]);

#define SRV_TOKEN_LEN 69 /* "rsu_" + 64 hex + NUL */

/* Console sessions: a random secret ("rsc_" + 64 hex) in an HttpOnly
 * cookie, stored as its SHA-256 only; its CSRF token, derived from the
 * secret, in a cookie the page's script reads and sends back in the
 * X-CSRF-Token header of every request that may change state. */
#define SRV_SESSION_COOKIE "__Host-rsign-session"
#define SRV_CSRF_COOKIE "__Host-rsign-csrf"
#define SRV_CSRF_HEADER "X-CSRF-Token"
#define SRV_SESSION_MAX_SECS (7 * 86400) /* the absolute cap, whatever the use */

/* The value of cookie name in a Cookie header into out: 0, or -1 when
 * absent, empty or longer than outlen - 1. */
int srv_cookie_value(const char *header, const char *name, char *out, size_t outlen);
/* The CSRF token of a session secret: hex SHA-256 of "rsign-csrf:" and it. */
void srv_session_csrf(const char *secret, char out[65]);
/* Session secret (the cookie's value) -> principal. With csrf_check, the
 * X-CSRF-Token header (csrf, NULL when absent) must be the session's.
 * SRV_R_NONE, or why not: SRV_R_SESSION_INVALID (unknown, signed out,
 * idle too long, past its cap, or not a user's), SRV_R_PRINCIPAL_DISABLED
 * (out filled), SRV_R_CSRF_TOKEN, or a storage reason. hash receives the
 * session's hash (for sign-out). A use moves the idle expiry on. */
srv_reason srv_auth_session(const srv_ctx *ctx, const char *secret, const char *csrf,
			    int csrf_check, srv_principal *out, char hash[65]);
/* New random secret with the given prefix ("rsu_", "rsa_", "rss_"). */
int srv_auth_new_secret(const char *prefix, char out[SRV_TOKEN_LEN])
	__attribute__((warn_unused_result));

#endif
