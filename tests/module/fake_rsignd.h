/* An in-process fake rsignd for the module's tests: HTTPS (libmicrohttpd,
 * a self-signed certificate made at start), real keys made by OpenSSL
 * (an RSA-2048 and an EC P-256 signer, certificates from a fake CA), the
 * endpoints the module calls, and fault injection. */
#ifndef FAKE_RSIGND_H
#define FAKE_RSIGND_H
#include <openssl/x509.h>

#include "rsign/alg.h"

#define FAKE_USER_TOKEN "rsu_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FAKE_CLIENT_ID "3f1c1e1a-0000-4000-8000-00000000c1d1"
#define FAKE_CLIENT_SECRET "rss_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define FAKE_RSA "rsa-signer"
#define FAKE_EC "ec-signer"

typedef struct fake_server fake_server;

typedef enum {
	FAULT_NONE = 0,
	FAULT_500,	    /* 500 InternalError */
	FAULT_503,	    /* 503 Unavailable */
	FAULT_401,	    /* 401 Unauthorized whatever the token */
	FAULT_403_APPROVAL, /* 403 ApprovalRequired */
	FAULT_403_PERMISSION,
	FAULT_404,
	FAULT_400_BAD,	    /* 400 BadRequest */
	FAULT_400_LENGTH,   /* 400 BadRequest "digest length wrong ..." */
	FAULT_400_DISABLED, /* 400 SignerDisabled */
	FAULT_400_EXPIRED,  /* 400 CertificateExpired */
	FAULT_409,
	FAULT_413,
	FAULT_429,
	FAULT_TIMEOUT, /* answers only after the client gave up */
	FAULT_TRUNCATED_JSON,
	FAULT_INVALID_JSON,
	FAULT_WRONG_SIG_LEN,
	FAULT_BAD_BASE64,
	FAULT_HUGE_BODY,      /* 2 MiB answer */
	FAULT_NOT_JSON_ERROR, /* 502 with an HTML body, as a proxy would */
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

/* Makes keys and certificates; extra = further signers (sharing the EC key,
 * named "extra-NNN") to exercise paging. NULL on failure. */
fake_server *fake_new(int extra);
/* Listens on 127.0.0.1 (the same port again after fake_stop). 0 or -1. */
int fake_start(fake_server *f);
void fake_stop(fake_server *f);
void fake_free(fake_server *f);
unsigned short fake_port(const fake_server *f);
/* PEM of the TLS certificate (what the module's ca_file holds). */
const char *fake_tls_pem(const fake_server *f);
const char *fake_ca_pem(const fake_server *f);

/* The next count requests whose path ends with match (NULL: any) fail so. */
void fake_fault_set(fake_server *f, fake_fault fault, int count, const char *match);
void fake_set_timeout_ms(fake_server *f, int ms);
/* Access tokens issued by the login stop working (as after expiresIn). */
void fake_expire_tokens(fake_server *f);
void fake_set_expires_in(fake_server *f, long seconds);
void fake_set_user_token(fake_server *f, const char *token);

int fake_count(fake_server *f, fake_counter c);
void fake_reset_counts(fake_server *f);
/* The JSON body of the last sign request (malloc'd), NULL if none. */
char *fake_last_sign_body(fake_server *f);

/* Signers. */
const char *fake_signer_id(fake_server *f, const char *name);
X509 *fake_signer_cert(fake_server *f, const char *name); /* owned by f */
int fake_add_signer(fake_server *f, const char *name, rs_key_alg alg);
void fake_set_can_sign(fake_server *f, const char *name, int can_sign);

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

#endif
