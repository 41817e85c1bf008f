/* An in-process fake rsignd for the module's tests: HTTPS (libmicrohttpd,
 * a self-signed certificate made at start), real keys made by OpenSSL
 * (an RSA-2048 and an EC P-256 signer, certificates from a fake CA), the
 * endpoints the module calls answered as the real rsignd answers them
 * (status, error word and reason of server/http/errors.c, messages of the
 * same shape, the same order of checks), the caller's role per signer,
 * disabled signers, certificates outside their validity, and fault
 * injection. tests/contract checks it against a real rsignd. */
#ifndef FAKE_RSIGND_H
#define FAKE_RSIGND_H
#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>

#include "rsign/alg.h"

#define FAKE_USER_TOKEN "rsu_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FAKE_CLIENT_ID "3f1c1e1a-0000-4000-8000-00000000c1d1"
#define FAKE_CLIENT_SECRET "rss_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
/* The one principal every token of the fake stands for; rsignd names it
 * in refusals ("ci may not sign with this signer"). */
#define FAKE_PRINCIPAL "ci"
#define FAKE_RSA "rsa-signer"
#define FAKE_EC "ec-signer"

typedef struct fake_server fake_server;

/* Injected answers; each is the real rsignd's answer in that situation. */
typedef enum {
	FAULT_NONE = 0,
	FAULT_500,		 /* 500 InternalError internal */
	FAULT_503,		 /* 503 Unavailable tokenUnavailable */
	FAULT_401,		 /* 401 Unauthorized tokenInvalid whatever the token */
	FAULT_403_APPROVAL,	 /* 403 ApprovalRequired approvalRequired */
	FAULT_403_PERMISSION,	 /* 403 PermissionDenied roleRequired */
	FAULT_404,		 /* 404 NotFound notFound (the signer is gone) */
	FAULT_404_NO_ENDPOINT,	 /* 404 NotFound noEndpoint (not rsignd's API) */
	FAULT_400_BAD,		 /* 400 BadRequest invalidJson */
	FAULT_400_LENGTH,	 /* 400 BadRequest digestLength, data of 31 bytes */
	FAULT_400_DISABLED,	 /* 400 SignerDisabled signerDisabled */
	FAULT_400_EXPIRED,	 /* 400 CertificateExpired certificateExpired */
	FAULT_400_NOT_YET_VALID, /* 400 CertificateExpired certificateNotYetValid */
	FAULT_409,		 /* 409 Conflict stateConflict */
	FAULT_413,		 /* 413 PayloadTooLarge bodyTooLarge */
	FAULT_429,		 /* 429 RateLimitExceeded rateLimited */
	FAULT_TIMEOUT,		 /* answers only after the client gave up */
	FAULT_TRUNCATED_JSON,
	FAULT_INVALID_JSON,
	FAULT_WRONG_SIG_LEN,
	FAULT_BAD_BASE64,
	FAULT_HUGE_BODY,      /* 2 MiB answer */
	FAULT_NOT_JSON_ERROR, /* 502 with an HTML body, as a proxy would */
	FAULT_REPLAY,	      /* the status and body given to fake_replay */
	FAULT_LOST_ANSWER,    /* handled (signed, remembered), then a proxy's 502 */
} fake_fault;

typedef enum {
	CNT_REQUESTS,
	CNT_LOGIN,
	CNT_LIST,
	CNT_GET_SIGNER,
	CNT_CERT,
	CNT_SIGN,
	CNT_CONNECTIONS,
	CNT_UNAUTHORIZED,
	CNT_REQUEST_CREATE,
	CNT_REQUEST_GET,
	CNT__MAX
} fake_counter;

/* The caller's role on a signer, as rsignd's members table holds it. */
typedef enum { FAKE_ROLE_NONE = 0, FAKE_ROLE_AUDITOR, FAKE_ROLE_OPERATOR } fake_role;

/* Makes keys and certificates; extra = further signers (sharing the EC key,
 * named "extra-NNN") to exercise paging. NULL on failure. */
fake_server *fake_new(int extra);
/* Listens on 127.0.0.1 (the same port again after fake_stop). 0 or -1. */
int fake_start(fake_server *f);
void fake_stop(fake_server *f);
/* A second listener on another port of 127.0.0.1 serving the same state:
 * a replica of one rsignd deployment (the module's failover). Listener 0
 * is fake_start's, 1 this one. 0 or -1. */
int fake_start_replica(fake_server *f);
void fake_stop_replica(fake_server *f);
unsigned short fake_replica_port(const fake_server *f);
void fake_free(fake_server *f);
unsigned short fake_port(const fake_server *f);
/* PEM of the TLS certificate (what the module's ca_file holds). */
const char *fake_tls_pem(const fake_server *f);
const char *fake_ca_pem(const fake_server *f);

/* The next count requests whose path ends with match (NULL: any) fail so. */
void fake_fault_set(fake_server *f, fake_fault fault, int count, const char *match);
/* The same, counting only the requests that reach listener (0 or 1). */
void fake_fault_set_at(fake_server *f, int listener, fake_fault fault, int count,
		       const char *match);
/* The next count requests whose path ends with match (NULL: any) are
 * answered with exactly this status and body (FAULT_REPLAY). */
void fake_replay(fake_server *f, int status, const char *body, int count, const char *match);
void fake_set_timeout_ms(fake_server *f, int ms);
/* Access tokens issued by the login stop working (as after expiresIn). */
void fake_expire_tokens(fake_server *f);
void fake_set_expires_in(fake_server *f, long seconds);
void fake_set_user_token(fake_server *f, const char *token);

int fake_count(fake_server *f, fake_counter c);
void fake_reset_counts(fake_server *f);
/* The JSON body of the last sign request (malloc'd), NULL if none. */
char *fake_last_sign_body(fake_server *f);
/* Sign requests as they arrived, faulted ones included (the first 64):
 * how many, and the i-th one's listener and Idempotency-Key header ("" for
 * none). -1 when there is no i-th. */
int fake_sign_seen(fake_server *f);
int fake_sign_seen_at(fake_server *f, int i, char *key, size_t keylen);
/* Successful signings the fake remembers by Idempotency-Key (a replay
 * answers from these). */
int fake_keyed_total(fake_server *f);

/* Signers. A new one is enabled, its certificate valid from an hour ago
 * for 30 days, and the caller its operator. */
const char *fake_signer_id(fake_server *f, const char *name);
/* Owned by f, and freed when fake_set_validity gives the signer another. */
X509 *fake_signer_cert(fake_server *f, const char *name);
int fake_add_signer(fake_server *f, const char *name, rs_key_alg alg);
/* As DELETE /pki/signers/{id}: the name answers 404 notFound from now on. */
int fake_remove_signer(fake_server *f, const char *name);
void fake_set_role(fake_server *f, const char *name, fake_role role);
void fake_set_enabled(fake_server *f, const char *name, int enabled);
/* Issues the signer a new certificate valid from not_before to not_after. */
int fake_set_validity(fake_server *f, const char *name, time_t not_before, time_t not_after);

/* Approval (a stand-in for a signing policy): with required set, signing
 * with the signer needs a grant, and 403 ApprovalRequired without one.
 * POST /pki/signers/{id}/requests opens a pending request; approving it
 * grants `signings` signatures. GET /pki/signing-requests/{rid} tells its
 * status. */
void fake_set_approval(fake_server *f, const char *name, int required, int signings);
/* Every request decides itself as status ("approved", "rejected",
 * "expired", ...) at its polls-th GET; NULL: requests stay pending. */
void fake_set_auto_decision(fake_server *f, const char *status, int polls);
/* Decides the last request opened now. -1 when there is none. */
int fake_decide_last(fake_server *f, const char *status);
/* Requests opened since fake_new. */
int fake_request_total(fake_server *f);
/* The id (copied into out) and JSON body (malloc'd) of the last request. */
char *fake_last_request(fake_server *f, char *id_out, size_t id_len);

/* A control interface the standalone fake (fake_rsignd_main.c) serves
 * under /_fake/ and no rsignd has: called without the fake's lock for every
 * request whose path starts with /_fake/; fills *status and *body (malloc'd
 * JSON text). */
typedef void (*fake_control_fn)(fake_server *f, const char *method, const char *path,
				const char *body, size_t len, unsigned *status, char **out);
void fake_set_control(fake_server *f, fake_control_fn fn);

#endif
