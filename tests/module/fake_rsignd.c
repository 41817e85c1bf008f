/* The fake rsignd: just enough of the API (docs/api.md) for the module, with
 * real signatures and injectable faults. Not a model of the server's policy
 * engine: every authenticated caller may sign with every signer that has
 * canSign. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "rsign/base64.h"
#include "rsign/buf.h"
#include "rsign/der.h"
#include "rsign/json.h"
#include "rsign/util.h"

#include "fake_pki.h"
#include "fake_rsignd.h"

#define MAX_SIGNERS 512
#define MAX_TOKENS 256
#define MAX_REQUESTS 64

typedef struct fake_signer {
	char id[RS_UUID_LEN];
	char name[65];
	rs_key_alg alg;
	EVP_PKEY *key; /* owned unless shared */
	int shared_key;
	X509 *cert;
	char *cert_pem;
	int can_sign;
	int needs_approval; /* fake_set_approval */
	int grant_signings; /* given by one approval */
	int grants_left;    /* signings the approvals left */
} fake_signer;

typedef struct fake_request {
	char id[RS_UUID_LEN];
	size_t signer; /* index */
	char status[16];
	int polls;
	char *body;
} fake_request;

struct fake_server {
	pthread_mutex_t lock;
	struct MHD_Daemon *d;
	unsigned short port;
	char *tls_key_pem, *tls_cert_pem;
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	char *ca_pem;
	fake_signer signers[MAX_SIGNERS];
	size_t n;
	char user_token[256];
	char *access[MAX_TOKENS];
	size_t n_access;
	long expires_in;
	unsigned long token_seq;
	fake_fault fault;
	int fault_count;
	char fault_match[64];
	int timeout_ms;
	int counts[CNT__MAX];
	char *last_sign;
	fake_request reqs[MAX_REQUESTS];
	int n_reqs;
	char auto_status[16];
	int auto_polls;
};

/* ---- signers --------------------------------------------------------------- */

static fake_signer *signer_by(fake_server *f, const char *id_or_name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->signers[i].id, id_or_name) == 0 ||
		    strcmp(f->signers[i].name, id_or_name) == 0)
			return &f->signers[i];
	return NULL;
}

static int signer_add(fake_server *f, const char *name, rs_key_alg alg, EVP_PKEY *share,
		      X509 *share_cert)
{
	fake_signer *s;

	if (f->n == MAX_SIGNERS)
		return -1;
	s = &f->signers[f->n];
	memset(s, 0, sizeof(*s));
	if (rs_uuid(s->id) < 0)
		return -1;
	rs_strlcpy(s->name, name, sizeof(s->name));
	s->alg = alg;
	s->can_sign = 1;
	if (share) {
		s->key = share;
		s->shared_key = 1;
		s->cert = share_cert;
		X509_up_ref(share_cert);
	} else {
		s->key = fake_keygen(alg);
		s->cert = s->key ? fake_make_cert(s->key, name, f->ca_cert, f->ca_key, 1,
						  (long)f->n + 100)
				 : NULL;
	}
	s->cert_pem = s->cert ? fake_pem_of_cert(s->cert) : NULL;
	if (!s->cert_pem)
		return -1;
	f->n++;
	return 0;
}

fake_server *fake_new(int extra)
{
	fake_server *f = calloc(1, sizeof(*f));
	EVP_PKEY *tls_key = NULL;
	X509 *tls_cert = NULL;
	char name[32];
	int i;

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	rs_strlcpy(f->user_token, FAKE_USER_TOKEN, sizeof(f->user_token));
	f->expires_in = 3600;
	f->timeout_ms = 2500;
	tls_key = fake_keygen(RS_KEY_EC_P256);
	tls_cert = tls_key ? fake_make_cert(tls_key, "127.0.0.1", NULL, NULL, 2, 1) : NULL;
	f->ca_key = fake_keygen(RS_KEY_EC_P256);
	f->ca_cert =
		f->ca_key ? fake_make_cert(f->ca_key, "rsign test CA", NULL, NULL, 0, 2) : NULL;
	if (!tls_cert || !f->ca_cert)
		goto fail;
	f->tls_key_pem = fake_pem_of_key(tls_key);
	f->tls_cert_pem = fake_pem_of_cert(tls_cert);
	f->ca_pem = fake_pem_of_cert(f->ca_cert);
	if (!f->tls_key_pem || !f->tls_cert_pem || !f->ca_pem ||
	    signer_add(f, FAKE_RSA, RS_KEY_RSA_2048, NULL, NULL) < 0 ||
	    signer_add(f, FAKE_EC, RS_KEY_EC_P256, NULL, NULL) < 0)
		goto fail;
	for (i = 0; i < extra; i++) {
		snprintf(name, sizeof(name), "extra-%03d", i);
		if (signer_add(f, name, RS_KEY_EC_P256, f->signers[1].key, f->signers[1].cert) < 0)
			goto fail;
	}
	EVP_PKEY_free(tls_key);
	X509_free(tls_cert);
	return f;
fail:
	EVP_PKEY_free(tls_key);
	X509_free(tls_cert);
	fake_free(f);
	return NULL;
}

void fake_free(fake_server *f)
{
	size_t i;

	if (!f)
		return;
	fake_stop(f);
	for (i = 0; i < f->n; i++) {
		if (!f->signers[i].shared_key)
			EVP_PKEY_free(f->signers[i].key);
		X509_free(f->signers[i].cert);
		free(f->signers[i].cert_pem);
	}
	for (i = 0; i < f->n_access; i++)
		free(f->access[i]);
	free(f->tls_key_pem);
	free(f->tls_cert_pem);
	free(f->ca_pem);
	EVP_PKEY_free(f->ca_key);
	X509_free(f->ca_cert);
	free(f->last_sign);
	for (i = 0; i < (size_t)f->n_reqs; i++)
		free(f->reqs[i].body);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- controls ----------------------------------------------------------- */

unsigned short fake_port(const fake_server *f)
{
	return f->port;
}

const char *fake_tls_pem(const fake_server *f)
{
	return f->tls_cert_pem;
}

const char *fake_ca_pem(const fake_server *f)
{
	return f->ca_pem;
}

void fake_fault_set(fake_server *f, fake_fault fault, int count, const char *match)
{
	pthread_mutex_lock(&f->lock);
	f->fault = fault;
	f->fault_count = count;
	rs_strlcpy(f->fault_match, match ? match : "", sizeof(f->fault_match));
	pthread_mutex_unlock(&f->lock);
}

void fake_set_timeout_ms(fake_server *f, int ms)
{
	f->timeout_ms = ms;
}

void fake_expire_tokens(fake_server *f)
{
	size_t i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->n_access; i++)
		free(f->access[i]);
	f->n_access = 0;
	pthread_mutex_unlock(&f->lock);
}

void fake_set_expires_in(fake_server *f, long seconds)
{
	f->expires_in = seconds;
}

void fake_set_user_token(fake_server *f, const char *token)
{
	pthread_mutex_lock(&f->lock);
	rs_strlcpy(f->user_token, token, sizeof(f->user_token));
	pthread_mutex_unlock(&f->lock);
}

int fake_count(fake_server *f, fake_counter c)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->counts[c];
	pthread_mutex_unlock(&f->lock);
	return n;
}

void fake_reset_counts(fake_server *f)
{
	pthread_mutex_lock(&f->lock);
	memset(f->counts, 0, sizeof(f->counts));
	pthread_mutex_unlock(&f->lock);
}

char *fake_last_sign_body(fake_server *f)
{
	char *p;

	pthread_mutex_lock(&f->lock);
	p = f->last_sign ? strdup(f->last_sign) : NULL;
	pthread_mutex_unlock(&f->lock);
	return p;
}

const char *fake_signer_id(fake_server *f, const char *name)
{
	fake_signer *s = signer_by(f, name);

	return s ? s->id : NULL;
}

X509 *fake_signer_cert(fake_server *f, const char *name)
{
	fake_signer *s = signer_by(f, name);

	return s ? s->cert : NULL;
}

int fake_add_signer(fake_server *f, const char *name, rs_key_alg alg)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = signer_add(f, name, alg, NULL, NULL);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void fake_set_can_sign(fake_server *f, const char *name, int can_sign)
{
	fake_signer *s;

	pthread_mutex_lock(&f->lock);
	s = signer_by(f, name);
	if (s)
		s->can_sign = can_sign;
	pthread_mutex_unlock(&f->lock);
}

void fake_set_approval(fake_server *f, const char *name, int required, int signings)
{
	fake_signer *s;

	pthread_mutex_lock(&f->lock);
	s = signer_by(f, name);
	if (s) {
		s->needs_approval = required;
		s->grant_signings = signings;
		s->grants_left = 0;
	}
	pthread_mutex_unlock(&f->lock);
}

void fake_set_auto_decision(fake_server *f, const char *status, int polls)
{
	pthread_mutex_lock(&f->lock);
	rs_strlcpy(f->auto_status, status ? status : "", sizeof(f->auto_status));
	f->auto_polls = polls;
	pthread_mutex_unlock(&f->lock);
}

/* Called with the lock held. */
static void decide_inlock(fake_server *f, fake_request *q, const char *status)
{
	if (strcmp(q->status, "pending") != 0)
		return;
	rs_strlcpy(q->status, status, sizeof(q->status));
	if (strcmp(status, "approved") == 0)
		f->signers[q->signer].grants_left += f->signers[q->signer].grant_signings;
}

int fake_decide_last(fake_server *f, const char *status)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (f->n_reqs > 0) {
		decide_inlock(f, &f->reqs[f->n_reqs - 1], status);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fake_request_total(fake_server *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->n_reqs;
	pthread_mutex_unlock(&f->lock);
	return n;
}

char *fake_last_request(fake_server *f, char *id_out, size_t id_len)
{
	char *p = NULL;

	pthread_mutex_lock(&f->lock);
	if (id_out && id_len)
		id_out[0] = '\0';
	if (f->n_reqs > 0) {
		if (id_out)
			rs_strlcpy(id_out, f->reqs[f->n_reqs - 1].id, id_len);
		p = f->reqs[f->n_reqs - 1].body ? strdup(f->reqs[f->n_reqs - 1].body) : NULL;
	}
	pthread_mutex_unlock(&f->lock);
	return p;
}

/* ---- HTTP ----------------------------------------------------------------- */

typedef struct reply {
	unsigned status;
	rs_buf body;
} reply;

typedef struct req_ctx {
	rs_buf body;
} req_ctx;

static void reply_error(reply *r, unsigned status, const char *error, const char *message)
{
	r->status = status;
	rs_buf_reset(&r->body);
	rs_buf_printf(
		&r->body,
		"{\"statusCode\":%u,\"error\":\"%s\",\"message\":\"%s\",\"reqId\":\"fake-1\"}",
		status, error, message);
}

static void reply_json(reply *r, cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);

	r->status = 200;
	rs_buf_reset(&r->body);
	rs_buf_append_str(&r->body, s ? s : "{}");
	free(s);
}

/* Called with the lock held. */
static int authorized_inlock(fake_server *f, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	size_t i;

	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	if (strcmp(h, f->user_token) == 0)
		return 1;
	for (i = 0; i < f->n_access; i++)
		if (strcmp(h, f->access[i]) == 0)
			return 1;
	return 0;
}

static cJSON *signer_json(const fake_signer *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "description", "");
	cJSON_AddStringToObject(o, "status", "enabled");
	cJSON_AddStringToObject(o, "keyAlgorithm", rs_key_alg_name(s->alg));
	cJSON_AddStringToObject(o, "certificateNotAfter", "2099-01-01T00:00:00Z");
	cJSON_AddBoolToObject(o, "canSign", s->can_sign);
	return o;
}

static void do_login(fake_server *f, const char *body, size_t len, reply *r)
{
	cJSON *req = rs_json_parse(body, len, 4), *o;
	const char *id = NULL, *secret = NULL;
	char tok[80], hex[65];

	if (!req || rs_json_str(req, "clientId", 1, 256, &id) != RS_JSON_OK ||
	    rs_json_str(req, "clientSecret", 1, 256, &secret) != RS_JSON_OK) {
		reply_error(r, 400, "BadRequest", "clientId and clientSecret required");
		goto out;
	}
	if (strcmp(id, FAKE_CLIENT_ID) != 0 || strcmp(secret, FAKE_CLIENT_SECRET) != 0) {
		f->counts[CNT_UNAUTHORIZED]++;
		reply_error(r, 401, "Unauthorized", "unknown client");
		goto out;
	}
	if (rs_random_hex(32, hex) < 0 || f->n_access == MAX_TOKENS) {
		reply_error(r, 500, "InternalError", "no token");
		goto out;
	}
	snprintf(tok, sizeof(tok), "rsa_%s", hex);
	f->access[f->n_access++] = strdup(tok);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "accessToken", tok);
	cJSON_AddNumberToObject(o, "expiresIn", (double)f->expires_in);
	cJSON_AddStringToObject(o, "tokenType", "Bearer");
	reply_json(r, o);
	cJSON_Delete(o);
out:
	cJSON_Delete(req);
}

static void do_list(fake_server *f, struct MHD_Connection *c, reply *r)
{
	const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	const char *off = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
	const char *cs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "canSign");
	long limit = lim ? atol(lim) : 20, offset = off ? atol(off) : 0, total = 0;
	cJSON *o, *arr;
	size_t i;

	if (limit < 1 || limit > 100 || offset < 0) {
		reply_error(r, 400, "BadRequest", "limit is 1..100");
		return;
	}
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "signers");
	for (i = 0; i < f->n; i++) {
		if (cs && strcmp(cs, "true") == 0 && !f->signers[i].can_sign)
			continue;
		if (total >= offset && total < offset + limit)
			cJSON_AddItemToArray(arr, signer_json(&f->signers[i]));
		total++;
	}
	cJSON_AddNumberToObject(o, "totalCount", (double)total);
	reply_json(r, o);
	cJSON_Delete(o);
}

static int sign_digest(const fake_signer *s, rs_sign_alg alg, const unsigned char *dig, size_t dlen,
		       long salt, unsigned char *out, size_t *outlen)
{
	const EVP_MD *md = rs_sign_alg_hash(alg) == RS_HASH_SHA256   ? EVP_sha256()
			   : rs_sign_alg_hash(alg) == RS_HASH_SHA384 ? EVP_sha384()
								     : EVP_sha512();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(s->key, NULL);
	int ok = ctx && EVP_PKEY_sign_init(ctx) > 0;

	if (ok && rs_sign_alg_is_rsa(alg)) {
		ok = EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
		if (ok && rs_sign_alg_is_pss(alg))
			ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)salt) > 0;
		else if (ok)
			ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
	}
	ok = ok && EVP_PKEY_sign(ctx, out, outlen, dig, dlen) > 0;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

static void do_sign(fake_server *f, fake_signer *s, const char *body, size_t len, reply *r,
		    fake_fault fault)
{
	unsigned char data[256], dig[64], sig[1024];
	const char *b64 = NULL, *algname = NULL;
	size_t dlen = 0, siglen = sizeof(sig);
	long long salt = -1;
	int is_digest = 0;
	rs_sign_alg alg;
	cJSON *req = rs_json_parse(body, len, 4), *o;
	char *sig64 = NULL;

	free(f->last_sign);
	f->last_sign = strndup(body, len);
	if (!req || rs_json_str(req, "data", 1, 4096, &b64) != RS_JSON_OK ||
	    rs_json_str(req, "signingAlgorithm", 1, 64, &algname) != RS_JSON_OK ||
	    rs_json_bool(req, "isDigest", 0, &is_digest) != RS_JSON_OK ||
	    rs_json_int(req, "pssSaltLength", 0, 0, 4096, &salt) != RS_JSON_OK ||
	    rs_b64_decode(b64, strlen(b64), data, 128, &dlen) != RS_B64_OK || dlen == 0 ||
	    rs_sign_alg_parse(algname, &alg) < 0) {
		reply_error(r, 400, "BadRequest", "malformed sign request");
		goto out;
	}
	if (rs_sign_alg_is_rsa(alg) != rs_key_alg_is_rsa(s->alg)) {
		reply_error(r, 400, "BadRequest", "key/algorithm mismatch");
		goto out;
	}
	if (is_digest) {
		if (dlen != rs_hash_len(rs_sign_alg_hash(alg))) {
			reply_error(r, 400, "BadRequest", "digest length wrong for the algorithm");
			goto out;
		}
		memcpy(dig, data, dlen);
	} else if (rs_hash_compute(rs_sign_alg_hash(alg), data, dlen, dig) < 0) {
		reply_error(r, 500, "InternalError", "hash");
		goto out;
	} else {
		dlen = rs_hash_len(rs_sign_alg_hash(alg));
	}
	if (salt < 0)
		salt = (long long)dlen;
	if (sign_digest(s, alg, dig, dlen, (long)salt, sig, &siglen) < 0) {
		ERR_clear_error();
		reply_error(r, 400, "BadRequest", "signing failed (salt length?)");
		goto out;
	}
	if (fault == FAULT_WRONG_SIG_LEN) {
		if (rs_key_alg_is_rsa(s->alg)) {
			sig[siglen++] = 0x5a; /* one byte too many */
		} else {
			memset(sig, 0x01, 64); /* r||s where DER was promised */
			siglen = 64;
		}
	}
	sig64 = rs_b64_encode(sig, siglen);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "signature",
				fault == FAULT_BAD_BASE64 ? "!!not*base64!!" : sig64);
	cJSON_AddStringToObject(o, "signingAlgorithm", rs_sign_alg_name(alg));
	cJSON_AddStringToObject(o, "signerId", s->id);
	cJSON_AddStringToObject(o, "operationId", "00000000-0000-4000-8000-000000000001");
	reply_json(r, o);
	cJSON_Delete(o);
out:
	free(sig64);
	cJSON_Delete(req);
}

static void reply_request(reply *r, fake_server *f, const fake_request *q, unsigned status)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", q->id);
	cJSON_AddStringToObject(o, "signerId", f->signers[q->signer].id);
	cJSON_AddStringToObject(o, "status", q->status);
	cJSON_AddNullToObject(o, "requestedSignings");
	if (strcmp(q->status, "approved") == 0)
		cJSON_AddStringToObject(o, "grantId", "00000000-0000-4000-8000-00000000a001");
	else
		cJSON_AddNullToObject(o, "grantId");
	reply_json(r, o);
	r->status = status;
	cJSON_Delete(o);
}

/* POST /pki/signers/{id}/requests {justification, requestedSignings?, ...} */
static void do_request_create(fake_server *f, fake_signer *s, const char *body, size_t len,
			      reply *r)
{
	cJSON *req = rs_json_parse(body, len, 4);
	const char *why = NULL;
	fake_request *q;

	if (!req || rs_json_str(req, "justification", 1, 1024, &why) != RS_JSON_OK || !*why) {
		reply_error(r, 400, "BadRequest", "justification (1-1024 characters) is required");
	} else if (!s->needs_approval) {
		reply_error(r, 400, "BadRequest", "signer has no signing policy");
	} else if (f->n_reqs == MAX_REQUESTS) {
		reply_error(r, 500, "InternalError", "too many requests");
	} else {
		q = &f->reqs[f->n_reqs];
		memset(q, 0, sizeof(*q));
		if (rs_uuid(q->id) < 0) {
			reply_error(r, 500, "InternalError", "no uuid");
			goto out;
		}
		q->signer = (size_t)(s - f->signers);
		rs_strlcpy(q->status, "pending", sizeof(q->status));
		q->body = strndup(body, len);
		f->n_reqs++;
		reply_request(r, f, q, 201);
	}
out:
	cJSON_Delete(req);
}

/* GET /pki/signing-requests/{rid}; the auto decision happens here. */
static void do_request_get(fake_server *f, const char *rid, reply *r)
{
	fake_request *q = NULL;
	int i;

	for (i = 0; i < f->n_reqs; i++)
		if (strcmp(f->reqs[i].id, rid) == 0)
			q = &f->reqs[i];
	if (!q) {
		reply_error(r, 404, "NotFound", "no signing request");
		return;
	}
	q->polls++;
	if (f->auto_status[0] && q->polls >= f->auto_polls)
		decide_inlock(f, q, f->auto_status);
	reply_request(r, f, q, 200);
}

/* Faults that replace the answer entirely; 0 when the route must run. */
static int fault_reply(fake_fault fault, reply *r)
{
	switch (fault) {
	case FAULT_500:
		reply_error(r, 500, "InternalError", "injected");
		return 1;
	case FAULT_503:
		reply_error(r, 503, "Unavailable", "HSM unreachable");
		return 1;
	case FAULT_401:
		reply_error(r, 401, "Unauthorized", "token expired");
		return 1;
	case FAULT_403_APPROVAL:
		reply_error(r, 403, "ApprovalRequired", "an approved request is required");
		return 1;
	case FAULT_403_PERMISSION:
		reply_error(r, 403, "PermissionDenied", "not an operator");
		return 1;
	case FAULT_404:
		reply_error(r, 404, "NotFound", "no such signer");
		return 1;
	case FAULT_400_BAD:
		reply_error(r, 400, "BadRequest", "malformed request");
		return 1;
	case FAULT_400_LENGTH:
		reply_error(r, 400, "BadRequest", "digest length wrong for the algorithm");
		return 1;
	case FAULT_400_DISABLED:
		reply_error(r, 400, "SignerDisabled", "signer is disabled");
		return 1;
	case FAULT_400_EXPIRED:
		reply_error(r, 400, "CertificateExpired", "certificate expired");
		return 1;
	case FAULT_409:
		reply_error(r, 409, "Conflict", "conflict");
		return 1;
	case FAULT_413:
		reply_error(r, 413, "PayloadTooLarge", "too large");
		return 1;
	case FAULT_429:
		reply_error(r, 429, "RateLimitExceeded", "slow down");
		return 1;
	case FAULT_TRUNCATED_JSON:
		r->status = 200;
		rs_buf_append_str(&r->body, "{\"signature\":\"AAEC");
		return 1;
	case FAULT_INVALID_JSON:
		r->status = 200;
		rs_buf_append_str(&r->body, "signature=AAEC; not json");
		return 1;
	case FAULT_HUGE_BODY:
		r->status = 200;
		rs_buf_append_str(&r->body, "{\"pad\":\"");
		while (r->body.len < 2 * 1024 * 1024)
			rs_buf_append_str(&r->body,
					  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		rs_buf_append_str(&r->body, "\"}");
		return 1;
	case FAULT_NOT_JSON_ERROR:
		r->status = 502;
		rs_buf_append_str(&r->body, "<html><body>Bad Gateway</body></html>");
		return 1;
	default:
		return 0;
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void route(fake_server *f, struct MHD_Connection *c, const char *url, const char *method,
		  const char *body, size_t len, reply *r)
{
	char id[128], rest[64];
	fake_fault fault = FAULT_NONE;
	fake_signer *s;
	cJSON *o;
	int n;

	pthread_mutex_lock(&f->lock);
	f->counts[CNT_REQUESTS]++;
	if (f->fault != FAULT_NONE && f->fault_count > 0 &&
	    (!f->fault_match[0] || ends_with(url, f->fault_match))) {
		fault = f->fault;
		if (--f->fault_count == 0)
			f->fault = FAULT_NONE;
	}
	if (fault == FAULT_TIMEOUT) {
		int ms = f->timeout_ms;

		pthread_mutex_unlock(&f->lock);
		usleep((useconds_t)ms * 1000);
		reply_error(r, 503, "Unavailable", "too late");
		return;
	}
	if (strcmp(url, "/api/v1/auth/universal-auth/login") == 0 && strcmp(method, "POST") == 0) {
		f->counts[CNT_LOGIN]++;
		if (!fault_reply(fault, r))
			do_login(f, body, len, r);
		goto out;
	}
	if (!authorized_inlock(f, c)) {
		f->counts[CNT_UNAUTHORIZED]++;
		reply_error(r, 401, "Unauthorized", "no, unknown or expired token");
		goto out;
	}
	if (strcmp(url, "/api/v1/auth/whoami") == 0) {
		r->status = 200;
		rs_buf_append_str(&r->body, "{\"id\":\"x\",\"name\":\"ci\",\"type\":\"identity\"}");
		goto out;
	}
	if (strcmp(url, "/api/v1/pki/signers") == 0 && strcmp(method, "GET") == 0) {
		f->counts[CNT_LIST]++;
		if (!fault_reply(fault, r))
			do_list(f, c, r);
		goto out;
	}
	if (sscanf(url, "/api/v1/pki/signing-requests/%127[^/]", id) == 1 &&
	    strcmp(method, "GET") == 0) {
		f->counts[CNT_REQUEST_GET]++;
		if (!fault_reply(fault, r))
			do_request_get(f, id, r);
		goto out;
	}
	rest[0] = '\0';
	n = sscanf(url, "/api/v1/pki/signers/%127[^/]/%63s", id, rest);
	if (n < 1) {
		reply_error(r, 404, "NotFound", "no such route");
		goto out;
	}
	s = signer_by(f, id);
	if (n == 1)
		f->counts[CNT_GET_SIGNER]++;
	else if (strcmp(rest, "certificate") == 0)
		f->counts[CNT_CERT]++;
	else if (strcmp(rest, "sign") == 0)
		f->counts[CNT_SIGN]++;
	else if (strcmp(rest, "requests") == 0)
		f->counts[CNT_REQUEST_CREATE]++;
	if (fault_reply(fault, r))
		goto out;
	if (!s) {
		reply_error(r, 404, "NotFound", "unknown signer");
		goto out;
	}
	if (n == 1) {
		o = signer_json(s);
		reply_json(r, o);
		cJSON_Delete(o);
	} else if (strcmp(rest, "certificate") == 0) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "certificatePem", s->cert_pem);
		cJSON_AddStringToObject(o, "chainPem", f->ca_pem);
		reply_json(r, o);
		cJSON_Delete(o);
	} else if (strcmp(rest, "public-key") == 0) {
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(s->key, &der);
		char *b64 = dl > 0 ? rs_b64_encode(der, (size_t)dl) : NULL;

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "publicKey", b64 ? b64 : "");
		cJSON_AddStringToObject(o, "keyAlgorithm", rs_key_alg_name(s->alg));
		reply_json(r, o);
		cJSON_Delete(o);
		free(b64);
		OPENSSL_free(der);
	} else if (strcmp(rest, "sign") == 0 && strcmp(method, "POST") == 0) {
		if (!s->can_sign)
			reply_error(r, 403, "PermissionDenied", "not an operator");
		else if (s->needs_approval && s->grants_left <= 0)
			reply_error(r, 403, "ApprovalRequired",
				    "no active grant: request approval");
		else
			do_sign(f, s, body, len, r, fault);
		if (s->can_sign && s->needs_approval && s->grants_left > 0 && r->status == 200)
			s->grants_left--;
	} else if (strcmp(rest, "requests") == 0 && strcmp(method, "POST") == 0) {
		do_request_create(f, s, body, len, r);
	} else {
		reply_error(r, 404, "NotFound", "no such route");
	}
out:
	pthread_mutex_unlock(&f->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	fake_server *f = cls;
	req_ctx *rc = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	reply r;

	(void)version;
	if (!rc) {
		rc = calloc(1, sizeof(*rc));
		if (!rc)
			return MHD_NO;
		rs_buf_init(&rc->body, 64 * 1024);
		*con_cls = rc;
		return MHD_YES;
	}
	if (*upload_size) {
		rs_buf_append(&rc->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	r.status = 500;
	rs_buf_init(&r.body, 4 * 1024 * 1024);
	route(f, c, url, method, rs_buf_str(&rc->body), rc->body.len, &r);
	resp = MHD_create_response_from_buffer(r.body.len, r.body.data ? r.body.data : (void *)"",
					       MHD_RESPMEM_MUST_COPY);
	rs_buf_free(&r.body);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Request-Id", "fake-1");
	ret = MHD_queue_response(c, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	req_ctx *rc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rc) {
		rs_buf_free(&rc->body);
		free(rc);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	fake_server *f = cls;

	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		pthread_mutex_lock(&f->lock);
		f->counts[CNT_CONNECTIONS]++;
		pthread_mutex_unlock(&f->lock);
	}
}

int fake_start(fake_server *f)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(f->port);
	sa.sin_addr.s_addr = htonl(0x7f000001);
	f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					MHD_USE_TLS,
				f->port, NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_HTTPS_MEM_KEY, f->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT,
				f->tls_cert_pem, MHD_OPTION_NOTIFY_COMPLETED, on_completed, f,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, f,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
	if (!f->d)
		return -1;
	info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		fake_stop(f);
		return -1;
	}
	f->port = info->port;
	return 0;
}

void fake_stop(fake_server *f)
{
	if (f->d) {
		MHD_stop_daemon(f->d);
		f->d = NULL;
	}
}
