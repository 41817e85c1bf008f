/* The HTTP layer: libmicrohttpd daemon, TLS, bounded bodies, routing to one
 * handler per resource, JSON responses and the API's error bodies. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H
#include <stddef.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "rsign/log.h"
#include "server/http/errors.h"
#include "server/http/parse.h"
#include "server/hsm/hsm.h"
#include "server/store/store.h"

/* Everything a handler may use; read-only once serving starts. */
typedef struct {
	long long max_body;	    /* request body limit, bytes (413 beyond) */
	long long access_token_ttl; /* seconds a login's access token lives */
	long long max_tokens;	    /* API tokens one principal may hold; 0 = no cap */
	long long session_idle;	    /* seconds a console session lives unused (auth.c) */
	srv_store *store;
	srv_hsm *hsm;
	char ca_key_id[RS_UUID_LEN];
	char *ca_cert_pem;
	time_t ca_not_after; /* nothing it issues may outlive it */
	/* read caches of the sign path (cache.h); NULL = no caching */
	struct srv_cache *auth_cache;	/* token hash -> principal */
	struct srv_cache *signer_cache; /* signer id or name -> srv_sign_target */
	struct srv_cache *role_cache;	/* signer id/principal id -> srv_role */
	/* rate limits (ratelimit.h); a NULL limiter limits nothing */
	struct srv_ratelimit *auth_limit;   /* failed logins, bad bearer tokens */
	struct srv_ratelimit *sign_limit;   /* max_sign_rate */
	long long max_auth_failures;	    /* per clientId and window; 0 = no limit */
	long long max_auth_failures_per_ip; /* per source address and window */
	long long max_sign_rate;	    /* signatures per second per principal; 0 = off */
	struct srv_jwks_cache *jwks;	    /* OIDC issuers' key sets (jwks.h) */
	int tsa_require_synced_clock;	    /* refuse timestamps on an unsynchronised clock */
	/* the log key that signs checkpoints of the hash chains (an ECDSA P-256
	 * key in the token, server/rsignd/checkpoint.c): its CKA_ID and its
	 * public key, checked against the token at start; NULL = none */
	unsigned char log_ckid[SRV_CKID_LEN];
	unsigned char *log_spki;
	size_t log_spki_len;
} srv_ctx;

/* A route's auth: none (health, login) or a valid bearer token. */
enum { SRV_AUTH_NONE, SRV_AUTH_ANY };

typedef struct srv_req {
	srv_ctx *ctx;
	void *conn; /* struct MHD_Connection */
	const char *method;
	const char *path;		    /* after /api/v1 */
	const char *params[SRV_MAX_PARAMS]; /* the '*' segments of the route */
	const unsigned char *body;
	size_t body_len;
	char req_id[33];
	char source_ip[48];
	srv_principal actor; /* valid when the route needs auth */
	srv_err err;	     /* the error class, set with reason by srv_fail */
	srv_reason reason;   /* the body's `reason` */
	char errmsg[256];
	int status;	     /* success status, 200 unless a handler sets 201 */
	long retry_after;    /* seconds, sent as Retry-After with a 429 */
	const char *route;   /* the matched route's pattern, for the log */
	char signer[129];    /* the signer a /pki/signers/{name}/... path names, for the log */
	rs_log_request *log; /* this request's fields in every line it logs */
	/* a handler that answers with text rather than JSON (GET /metrics):
	 * malloc'd body, its Content-Type; *out stays NULL */
	char *text;
	const char *content_type;
	size_t text_len; /* bytes of text; 0 = strlen(text) (binary bodies set it) */
	/* a handler that answers with a file (GET /backup): file_fd >= 0 is
	 * streamed (file_size bytes, content_type, X-Content-SHA256:
	 * file_sha256) and closed by this layer, error or not; -1 = none */
	int file_fd;
	long long file_size;
	char file_sha256[65];
	/* a console session's hash when the caller came with its cookie
	 * (auth.c), "" with a bearer token */
	char session[65];
	/* Set-Cookie values of the answer (malloc'd; sent with errors too) */
	char *set_cookie[2];
} srv_req;

/* A handler returns SRV_OK with *out set, or an error set with srv_fail. */
typedef srv_err (*srv_handler)(srv_req *r, cJSON **out);

/* A route's flags. SRV_ROUTE_KEEPS_CACHES: a request that changes nothing
 * the read caches hold (cache.h) even though its method is not GET. */
enum { SRV_ROUTE_KEEPS_CACHES = 1 };

/* A route's gate: run once the caller is known, before the handler, for
 * rules that hold for the whole route (admin-only routes). SRV_R_NONE or
 * the reason to refuse. The route table (server/api/routes.c) points at
 * the functions of server/api/access.c; this layer only calls them. */
typedef srv_reason (*srv_gate)(const struct srv_req *r);

typedef struct {
	const char *method;
	const char *pattern; /* "/pki/signers/ * /sign" with '*' capturing a segment */
	srv_handler handler;
	int auth;
	int flags;
	srv_gate gate; /* NULL = any authenticated caller reaches the handler */
} srv_route;

/* Records why the request failed (its reason, hence its status and error
 * word) and a sentence for the response; returns the reason's class. */
srv_err srv_fail(srv_req *r, srv_reason why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Query parameter (URL-decoded) or NULL. */
const char *srv_query(srv_req *r, const char *name);
/* Request header (the first of that name) or NULL. */
const char *srv_header(const srv_req *r, const char *name);
/* Authenticates the bearer token of the request (as a route with
 * SRV_AUTH_ANY does: rate limits, disabled principals) into r->actor.
 * SRV_OK, or the failure recorded with srv_fail. For handlers whose routes
 * decide per object whether a token is needed (POST /tsa/{name}). */
srv_err srv_authenticate(srv_req *r);
/* Parses the body as a JSON object; on failure records 400 and returns NULL. */
cJSON *srv_body_json(srv_req *r);
/* Adds an RFC 3339 time, or null for 0. */
void srv_json_time(cJSON *o, const char *name, time_t t);
/* offset/limit query parameters: defaults 0/20, limit 1..100. */
srv_err srv_paging(srv_req *r, size_t *offset, size_t *limit);

/* A file served outside the API (the web console's, server/console/):
 * its bytes (static storage), Content-Type and quoted ETag. */
typedef struct {
	const unsigned char *data;
	size_t len;
	const char *content_type;
	const char *etag;
} srv_page;
/* path (no query) -> 1 and *out for a file served there, else 0. */
typedef int (*srv_page_fn)(const char *path, srv_page *out);

/* The Content-Security-Policy of the console's pages: its own scripts and
 * styles only (no inline script), API calls to itself, never framed. */
#define SRV_PAGE_CSP                                                                               \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* How to listen. tls_cert_pem/tls_key_pem are PEM text, NULL with
 * insecure_http (which is refused unless listen is a loopback address). */
typedef struct {
	const char *listen; /* "127.0.0.1:8443", "[::1]:8443", ":8443" */
	int insecure_http;
	long long threads;
	const char *tls_cert_pem, *tls_key_pem;
	const char *tls_priorities;	  /* GnuTLS priority string; NULL: SRV_TLS_PRIORITIES */
	long long max_connections;	  /* open at once; 0: 1024 */
	long long max_connections_per_ip; /* from one address; 0: no limit of its own */
	long long request_header_timeout; /* seconds to a full request head; 0: 10 */
	int plain_public;  /* plain HTTP allowed on any address (tsa_listen: its replies are signed)
			    */
	srv_page_fn pages; /* GET/HEAD of paths outside the API; NULL: none */
} srv_http_opts;

/* TLS 1.3 and 1.2 only, GnuTLS's NORMAL ciphers otherwise. */
#define SRV_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

typedef struct srv_http srv_http;
/* Starts serving the routes (ended by a NULL pattern); *port receives the
 * bound port (for listen ports of 0). */
srv_http *srv_http_start(srv_ctx *ctx, const srv_route *routes, const srv_http_opts *opts,
			 int *port, char *err, size_t errlen);
/* Stops accepting, lets in-flight requests finish (bounded), stops. */
void srv_http_stop(srv_http *h);

#endif
