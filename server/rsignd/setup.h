/* Bringing rsignd up: `rsignd init` (database, token, built-in CA, TLS
 * certificate, first admin), opening the running context, and the
 * self-contained `rsignd dev` state directory. Every set-up step can be
 * interrupted (kill -9, power loss) and is finished by the next run; the
 * test-only crash points of srv_setup_crash_point mark where. */
#ifndef SRV_SETUP_H
#define SRV_SETUP_H
#include <stddef.h>
#include <sys/types.h>
#include "server/http/auth.h"
#include "server/http/http.h"
#include "server/rsignd/config.h"

/* TLS files used when tls_cert / tls_key are not configured: beside the
 * database, in tls/server.pem and tls/server.key. out holds 4096. */
void srv_setup_tls_paths(const srv_config *cfg, char *cert, char *key, size_t len);

/* How the first admin's token reaches a person. deliver(arg, token) shows or
 * stores it and returns 0 once it is durable (printed and flushed, or in a
 * file); the admin set-up counts as done only after that. held: a token the
 * caller already holds (dev's admin.token), NULL when none; renew: when held
 * is missing or no longer an admin's, make a new token even though the first
 * one was delivered (dev keeps its admin.token working). */
typedef struct {
	int (*deliver)(void *arg, const char *token);
	void *arg;
	const char *held;
	int renew;
} srv_setup_admin;

/* Creates what is missing and finishes what an interrupted run left: token,
 * database, CA, self-signed TLS certificate, the first admin and its token
 * (handed to admin->deliver). Idempotent. 0 or -1 + err. */
int srv_setup_init(const srv_config *cfg, const srv_setup_admin *admin, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Opens the store, the HSM and the CA for serving. 0 or -1 + err. */
int srv_setup_open(srv_ctx *ctx, const srv_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void srv_setup_close(srv_ctx *ctx);

/* Runs a handler in-process as actor (dev mode's demo set-up uses the same
 * code paths as the API). param may be NULL. */
srv_err srv_setup_call(srv_ctx *ctx, const srv_principal *actor, srv_handler h, const char *param,
		       const char *body, cJSON **out, char *err, size_t errlen);

/* The key named name: the one an earlier, interrupted run created (its
 * private half must be in the token), or a new one made through the API's
 * handler as actor; crash_step is reached once that one is in the token and
 * the database. out is cleared with srv_key_clear. 0 or -1 + err. */
int srv_setup_key(srv_ctx *ctx, const srv_principal *actor, const char *name, const char *alg,
		  const char *crash_step, srv_key *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Writes path atomically: a temporary file beside it (created 0600, then
 * given mode), flushed to disk, renamed over path. An interruption leaves
 * the old file or none, never half of one. crash_step (may be NULL) names
 * the crash point reached with half of the data written. 0 or -1 (errno). */
int srv_setup_write_file(const char *path, const void *data, size_t len, mode_t mode,
			 const char *crash_step) __attribute__((warn_unused_result));

/* Test-only crash points. When the environment variable RSIGN_TEST_CRASH_AT
 * names step, rsignd kills itself with SIGKILL right there, as kill -9
 * would: no clean-up, no exit handlers, no buffered output. Without the
 * variable it does nothing. Compiled into every build, so that the tests
 * crash the very binary that ships; only whoever starts rsignd can set its
 * environment, and they can kill it anyway. step must be in the table of
 * setup.c (else abort: a bug); what each point leaves behind is in the
 * table of tests/api/run-setup-tests. */
void srv_setup_crash_point(const char *step);
/* -1 + err when RSIGN_TEST_CRASH_AT is set to a name that is no crash point
 * (a mistyped test would otherwise pass without crashing). */
int srv_setup_crash_check(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Serves until SIGTERM or SIGINT; ready(arg, port) runs once the port is
 * bound. Returns the process exit code. */
int srv_run(srv_ctx *ctx, const srv_config *cfg, void (*ready)(void *arg, int port), void *arg);

#endif
