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
/* New random secret with the given prefix ("rsu_", "rsa_", "rss_"). */
int srv_auth_new_secret(const char *prefix, char out[SRV_TOKEN_LEN])
	__attribute__((warn_unused_result));

#endif
