/* Inside the fake rsignd: its state (fake_rsignd.c), and what the HTTP side
 * (fake_http.c: routes, authentication, faults) shares with the handlers of
 * the API (fake_api.c). Everything here is guarded by fake_server.lock
 * unless said otherwise. */
#ifndef FAKE_INT_H
#define FAKE_INT_H
#include <pthread.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "rsign/buf.h"
#include "rsign/json.h"
#include "rsign/util.h"

#include "fake_rsignd.h"

#define FAKE_MAX_SIGNERS 512
#define FAKE_MAX_TOKENS 256
#define FAKE_MAX_REQUESTS 64
#define FAKE_MAX_BODY 65536 /* rsignd's default max_body */
#define FAKE_PRINCIPAL_ID "00000000-0000-4000-8000-0000000000c1"
#define FAKE_MAX_KEYED 256 /* Idempotency-Keys remembered (the oldest go) */
#define FAKE_MAX_SEEN 64   /* sign requests logged for fake_sign_seen_at */
#define FAKE_IDEM_KEY_MAX 64

/* A success made under an Idempotency-Key, as rsignd keeps it: what was
 * asked (hash) and the answer given. */
typedef struct fake_keyed {
	char key[FAKE_IDEM_KEY_MAX + 1];
	char hash[65];
	char *answer; /* the 200 body */
} fake_keyed;

typedef struct fake_seen {
	int listener;
	char key[FAKE_IDEM_KEY_MAX + 1];
} fake_seen;

/* One of the fake's listeners: the daemon's closure. */
typedef struct fake_listener {
	struct fake_server *f;
	int idx;
} fake_listener;

typedef struct fake_signer {
	char id[RS_UUID_LEN];
	char cert_id[RS_UUID_LEN];
	char name[65];
	rs_key_alg alg;
	EVP_PKEY *key; /* owned unless shared */
	int shared_key;
	X509 *cert;
	char *cert_pem;
	time_t not_before, not_after; /* of cert */
	fake_role role;
	int enabled;
	int removed;	    /* fake_remove_signer: answers as unknown */
	int needs_approval; /* fake_set_approval */
	int grant_signings; /* given by one approval */
	int grants_left;    /* signings the approvals left */
} fake_signer;

typedef struct fake_request {
	char id[RS_UUID_LEN];
	size_t signer; /* index */
	char status[16];
	int polls;
	time_t created;
	char justification[1025];
	long long signings, window; /* requested; 0 = the policy's limit */
	char *body;
} fake_request;

struct fake_server {
	pthread_mutex_t lock;
	struct MHD_Daemon *d, *d2; /* fake_start's, fake_start_replica's */
	unsigned short port, port2;
	fake_listener lis[2];
	char *tls_key_pem, *tls_cert_pem;
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	char *ca_pem;
	fake_signer signers[FAKE_MAX_SIGNERS];
	size_t n;
	char user_token[256];
	char *access[FAKE_MAX_TOKENS];
	size_t n_access;
	long expires_in;
	fake_fault fault;
	int fault_count;
	int fault_at; /* the listener the fault counts at; -1 any */
	char fault_match[64];
	int replay_status;
	char *replay_body;
	int timeout_ms;
	int counts[CNT__MAX];
	char *last_sign;
	fake_request reqs[FAKE_MAX_REQUESTS];
	int n_reqs;
	char auto_status[16];
	int auto_polls;
	fake_control_fn control; /* set before fake_start */
	fake_keyed keyed[FAKE_MAX_KEYED];
	int n_keyed, next_keyed;
	fake_seen seen[FAKE_MAX_SEEN];
	int n_seen;
};

/* The answer being built. */
typedef struct fake_reply {
	unsigned status;
	rs_buf body;
	char req_id[33];
} fake_reply;

/* One request as a handler sees it. */
typedef struct fake_req {
	fake_server *f;
	struct MHD_Connection *c;
	int listener; /* 0 or 1 (fake_start_replica) */
	const char *method;
	const char *path;      /* below /api/v1 */
	const char *params[2]; /* the '*' segments of the route */
	const char *body;
	size_t len;
	fake_fault fault; /* the fault this request carries, FAULT_NONE */
	fake_reply *r;
} fake_req;

/* rsignd's error body for reason (server/http/errors.c gives the status
 * and error word) with a printf-style message. */
void fake_fail(fake_reply *r, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A JSON answer; o is not freed. */
void fake_reply_json(fake_reply *r, unsigned status, const cJSON *o);
const char *fake_query(const fake_req *q, const char *name);
/* A signer by id or name, NULL when there is none (or it was removed). */
fake_signer *fake_find_inlock(fake_server *f, const char *id_or_name);

/* The handlers (fake_api.c), called with the lock held after the route
 * matched and the caller was authenticated. */
void fake_api_login(fake_req *q);
void fake_api_whoami(fake_req *q);
void fake_api_signer_list(fake_req *q);
void fake_api_signer_get(fake_req *q);
void fake_api_signer_public_key(fake_req *q);
void fake_api_signer_certificate(fake_req *q);
void fake_api_sign(fake_req *q);
void fake_api_request_create(fake_req *q);
void fake_api_request_get(fake_req *q);

/* Approving a request grants its signer's signings. */
void fake_decide_inlock(fake_server *f, fake_request *q, const char *status);

#endif
