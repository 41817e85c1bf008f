/* The HTTPS client (libcurl): a small pool of easy handles reused across
 * calls and threads, sharing DNS and TLS sessions; TLS verification always
 * on; explicit timeouts; response bodies bounded. */
#ifndef MOD_HTTP_H
#define MOD_HTTP_H
#include "rsign/buf.h"

#include "config.h"

#define MOD_HTTP_MAX_BODY (1024 * 1024)

typedef struct mod_http_resp {
	long status;	      /* HTTP status; 0 when there was no response */
	int transport_failed; /* no usable response: connect, TLS, timeout, size */
	char transport_error[256];
	rs_buf body; /* bounded by MOD_HTTP_MAX_BODY */
	/* from an error body {"statusCode", "error", "reason", "message", "reqId"};
	 * empty when absent (a proxy, an older rsignd) */
	char error[64];
	char reason[64];
	char message[256];
	char req_id[80];
	/* failover (http.c): nothing of the request left this host; the
	 * outcome lets the next URL be tried */
	int nothing_sent;
	int may_fail_over;
} mod_http_resp;

/* Per C_Initialize; conf must outlive mod_http_free. No network I/O. With
 * no_threads (CKF_LIBRARY_CANT_CREATE_OS_THREADS) host names are resolved
 * in the calling thread instead of libcurl's resolver thread. 0 or -1. */
int mod_http_init(const mod_config *conf, int no_threads) __attribute__((warn_unused_result));
void mod_http_free(void);
/* In a forked child: drops the inherited handles without touching them (a
 * cleanup could send a TLS close_notify on the parent's connections). */
void mod_http_forget(void);
/* Around fork(2), after the global lock: the pool's mutex held, then let go
 * (in the parent and in the child). */
void mod_http_fork_prepare(void);
void mod_http_fork_release(void);

/* method "GET"/"POST"; path below /api/v1 ("/pki/signers"); bearer may be
 * NULL; body is JSON or NULL; idem_key, when not NULL, is sent as the
 * Idempotency-Key header (on every URL tried). Tries the configured URLs
 * in turn as http.c says. Always fills resp (free with
 * mod_http_resp_free). Must be called without the global lock. */
void mod_http_request(const char *method, const char *path, const char *bearer, const char *body,
		      const char *idem_key, mod_http_resp *resp);
void mod_http_resp_free(mod_http_resp *resp);

/* clientMetadata: the calling program's name and the host name. */
const char *mod_http_tool(void);
const char *mod_http_hostname(void);
/* Percent-encodes one path segment into out; -1 when it does not fit. */
int mod_http_escape(const char *seg, char *out, size_t outlen) __attribute__((warn_unused_result));

#endif
