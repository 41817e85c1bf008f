/* Bringing rsignd up: `rsignd init` (database, token, built-in CA, TLS
 * certificate, first admin), opening the running context, and the
 * self-contained `rsignd dev` state directory. */
#ifndef SRV_SETUP_H
#define SRV_SETUP_H
#include <stddef.h>
#include "server/http/auth.h"
#include "server/http/http.h"
#include "server/rsignd/config.h"

/* TLS files used when tls_cert / tls_key are not configured: beside the
 * database, in tls/server.pem and tls/server.key. out holds 4096. */
void srv_setup_tls_paths(const srv_config *cfg, char *cert, char *key, size_t len);

/* Creates what is missing: token, database, CA, self-signed TLS
 * certificate, and the first admin (whose token lands in admin_token, or
 * "" when an admin already existed). Idempotent. 0 or -1 + err. */
int srv_setup_init(const srv_config *cfg, char admin_token[SRV_TOKEN_LEN], char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Opens the store, the HSM and the CA for serving. 0 or -1 + err. */
int srv_setup_open(srv_ctx *ctx, const srv_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void srv_setup_close(srv_ctx *ctx);

/* Runs a handler in-process as actor (dev mode's demo set-up uses the same
 * code paths as the API). param may be NULL. */
srv_err srv_setup_call(srv_ctx *ctx, const srv_principal *actor, srv_handler h, const char *param,
		       const char *body, cJSON **out, char *err, size_t errlen);

/* Serves until SIGTERM or SIGINT; ready(arg, port) runs once the port is
 * bound. Returns the process exit code. */
int srv_run(srv_ctx *ctx, const srv_config *cfg, void (*ready)(void *arg, int port), void *arg);

#endif
