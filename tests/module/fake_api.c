/* The fake rsignd's handlers: login, whoami, signers (list, get, public key,
 * certificate), sign and signing requests, each making the checks of
 * server/api/ in the same order with the same reasons and messages of the
 * same shape. The caller is always FAKE_PRINCIPAL, a non-admin; its role on
 * each signer is the signer's `role`; a signer with `needs_approval` stands
 * for one under a signing policy. tests/contract holds the two to the same
 * answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "rsign/base64.h"

#include "fake_int.h"
#include "fake_pki.h"

#define SIGN_DATA_MAX 128
#define META_MAX_KEYS 16
#define META_MAX_LEN 256
#define FAKE_POLICY_ID "00000000-0000-4000-8000-00000000a0b1"

static void add_time(cJSON *o, const char *name, time_t t)
{
	char buf[RS_TIME_LEN];

	if (!t) {
		cJSON_AddNullToObject(o, name);
		return;
	}
	rs_time_format(t, buf);
	cJSON_AddStringToObject(o, name, buf);
}

static cJSON *signer_json(const fake_signer *s, int can_sign)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "description", "");
	cJSON_AddStringToObject(o, "status", s->enabled ? "enabled" : "disabled");
	cJSON_AddStringToObject(o, "certificateId", s->cert_id);
	if (s->needs_approval)
		cJSON_AddStringToObject(o, "policyId", FAKE_POLICY_ID);
	else
		cJSON_AddNullToObject(o, "policyId");
	cJSON_AddStringToObject(o, "keyAlgorithm", rs_key_alg_name(s->alg));
	add_time(o, "certificateNotAfter", s->not_after);
	add_time(o, "createdAt", s->not_before);
	cJSON_AddNullToObject(o, "lastSignedAt");
	cJSON_AddNullToObject(o, "retiredAt"); /* the fake retires nothing */
	cJSON_AddBoolToObject(o, "canSign", can_sign);
	return o;
}

static void reply_obj(fake_req *q, unsigned status, cJSON *o)
{
	fake_reply_json(q->r, status, o);
	cJSON_Delete(o);
}

/* The body as a JSON object, or invalidJson (srv_body_json). */
static cJSON *body_json(fake_req *q)
{
	cJSON *j = rs_json_parse(q->body, q->len, RS_JSON_MAX_DEPTH);

	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		fake_fail(q->r, "invalidJson", "the request body is not a JSON object");
		return NULL;
	}
	return j;
}

/* api_signer_load: the signer exists and the caller sees it (a role on it:
 * the fake has no approvers), then it may read it (any role) or sign with it
 * (operator). One it cannot see is notFound, exactly like one that does not
 * exist (server/api/access.c). */
static fake_signer *signer_load(fake_req *q, fake_role need)
{
	fake_signer *s = fake_find_inlock(q->f, q->params[0]);

	if (!s || s->role == FAKE_ROLE_NONE) {
		fake_fail(q->r, "notFound", "no signer \"%s\"", q->params[0]);
		return NULL;
	}
	if (need == FAKE_ROLE_OPERATOR && s->role != need) {
		fake_fail(q->r, "roleRequired", "%s may not %s with this signer", FAKE_PRINCIPAL,
			  need == FAKE_ROLE_OPERATOR ? "sign" : "read");
		return NULL;
	}
	return s;
}

/* ---- auth ------------------------------------------------------------------ */

void fake_api_login(fake_req *q)
{
	fake_server *f = q->f;
	const char *id = NULL, *secret = NULL;
	char hex[65], tok[80];
	cJSON *j = body_json(q), *o;

	if (!j)
		return;
	if (rs_json_str(j, "clientId", 1, 64, &id) != RS_JSON_OK ||
	    rs_json_str(j, "clientSecret", 1, 256, &secret) != RS_JSON_OK) {
		fake_fail(q->r, "invalidField", "clientId and clientSecret are required strings");
	} else if (strcmp(id, FAKE_CLIENT_ID) != 0 || strcmp(secret, FAKE_CLIENT_SECRET) != 0) {
		f->counts[CNT_UNAUTHORIZED]++;
		fake_fail(q->r, "invalidCredentials", "unknown clientId or wrong clientSecret");
	} else if (rs_random_hex(32, hex) < 0 || f->n_access == FAKE_MAX_TOKENS) {
		fake_fail(q->r, "internal", "no randomness for a token");
	} else {
		snprintf(tok, sizeof(tok), "rsa_%s", hex);
		f->access[f->n_access] = strdup(tok);
		if (f->access[f->n_access])
			f->n_access++;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "accessToken", tok);
		cJSON_AddNumberToObject(o, "expiresIn", (double)f->expires_in);
		cJSON_AddStringToObject(o, "tokenType", "Bearer");
		reply_obj(q, 200, o);
	}
	cJSON_Delete(j);
}

void fake_api_whoami(fake_req *q)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", FAKE_PRINCIPAL_ID);
	cJSON_AddStringToObject(o, "name", FAKE_PRINCIPAL);
	cJSON_AddStringToObject(o, "type", "user");
	cJSON_AddBoolToObject(o, "admin", 0);
	reply_obj(q, 200, o);
}

/* ---- signers --------------------------------------------------------------- */

/* srv_paging's parse_size: digits only, lo..hi. */
static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end || v < lo || v > hi)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* SQLite's instr(lower(hay), lower(needle)) > 0: ASCII case folding. */
static int contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle), i;

	if (!n)
		return 1;
	for (; *hay; hay++) {
		for (i = 0; i < n && hay[i] && lower(hay[i]) == lower(needle[i]); i++)
			;
		if (i == n)
			return 1;
	}
	return 0;
}

static int by_name(const void *a, const void *b, void *signers)
{
	const fake_signer *v = signers;

	return strcmp(v[*(const size_t *)a].name, v[*(const size_t *)b].name);
}

/* GET /pki/signers: the caller's signers (any role; operator ones with
 * canSign=true) in name order, paged; totalCount counts them all. */
void fake_api_signer_list(fake_req *q)
{
	fake_server *f = q->f;
	const char *o_s = fake_query(q, "offset"), *l_s = fake_query(q, "limit");
	const char *cs = fake_query(q, "canSign"), *search = fake_query(q, "search");
	size_t offset = 0, limit = 20, idx[FAKE_MAX_SIGNERS], i, n = 0, total = 0;
	int sign_only = cs && strcmp(cs, "true") == 0;
	cJSON *o, *arr;

	if (o_s && parse_size(o_s, 0, 1000000000, &offset) != 0) {
		fake_fail(q->r, "invalidQuery", "offset must be a whole number");
		return;
	}
	if (l_s && parse_size(l_s, 1, 100, &limit) != 0) {
		fake_fail(q->r, "invalidQuery", "limit must be between 1 and 100");
		return;
	}
	if (cs && !sign_only && strcmp(cs, "false") != 0) {
		fake_fail(q->r, "invalidQuery", "canSign must be true or false");
		return;
	}
	if (search && strlen(search) > 64) {
		fake_fail(q->r, "invalidQuery", "search is at most 64 characters");
		return;
	}
	for (i = 0; i < f->n; i++)
		idx[n++] = i;
	qsort_r(idx, n, sizeof(idx[0]), by_name, f->signers);
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "signers");
	for (i = 0; i < n; i++) {
		const fake_signer *s = &f->signers[idx[i]];

		if (s->removed || s->role == FAKE_ROLE_NONE ||
		    (sign_only && s->role != FAKE_ROLE_OPERATOR) ||
		    (search && !contains_nocase(s->name, search)))
			continue;
		if (total >= offset && total < offset + limit)
			cJSON_AddItemToArray(arr, signer_json(s, s->role == FAKE_ROLE_OPERATOR));
		total++;
	}
	cJSON_AddNumberToObject(o, "totalCount", (double)total);
	reply_obj(q, 200, o);
}

void fake_api_signer_get(fake_req *q)
{
	fake_signer *s = signer_load(q, FAKE_ROLE_AUDITOR);

	if (s)
		reply_obj(q, 200, signer_json(s, s->role == FAKE_ROLE_OPERATOR));
}

void fake_api_signer_public_key(fake_req *q)
{
	fake_signer *s = signer_load(q, FAKE_ROLE_AUDITOR);
	unsigned char *der = NULL;
	char *b64 = NULL;
	cJSON *o;
	int dl;

	if (!s)
		return;
	dl = i2d_PUBKEY(s->key, &der);
	b64 = dl > 0 ? rs_b64_encode(der, (size_t)dl) : NULL;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "publicKey", b64 ? b64 : "");
	cJSON_AddStringToObject(o, "keyAlgorithm", rs_key_alg_name(s->alg));
	reply_obj(q, 200, o);
	free(b64);
	OPENSSL_free(der);
}

void fake_api_signer_certificate(fake_req *q)
{
	fake_signer *s = signer_load(q, FAKE_ROLE_AUDITOR);
	cJSON *o;

	if (!s)
		return;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "certificatePem", s->cert_pem);
	cJSON_AddStringToObject(o, "chainPem", q->f->ca_pem);
	reply_obj(q, 200, o);
}

/* ---- sign ------------------------------------------------------------------ */

/* What the body says; bad/msg hold its first problem (api_sign.c). */
typedef struct sign_body {
	const char *bad; /* a reason, NULL while well-formed */
	char msg[200];
	rs_sign_alg alg;
	unsigned char data[SIGN_DATA_MAX];
	size_t data_len;
	int is_digest;
	long long salt;			 /* -1 = default */
	char key[FAKE_IDEM_KEY_MAX + 1]; /* Idempotency-Key, "" = none */
	char hash[65];			 /* of the request, with key */
} sign_body;

static void body_fail(sign_body *b, const char *why, const char *msg)
{
	if (!b->bad) {
		b->bad = why;
		rs_strlcpy(b->msg, msg, sizeof(b->msg));
	}
}

static void check_metadata(const cJSON *j, sign_body *b)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "clientMetadata"), *it;
	int n = 0;

	if (!m || cJSON_IsNull(m))
		return;
	if (!cJSON_IsObject(m)) {
		body_fail(b, "invalidMetadata", "clientMetadata must be an object of strings");
		return;
	}
	cJSON_ArrayForEach (it, m) {
		if (++n > META_MAX_KEYS)
			body_fail(b, "invalidMetadata", "clientMetadata has more than 16 keys");
		else if (!cJSON_IsString(it))
			body_fail(b, "invalidMetadata", "clientMetadata values must be strings");
		else if (rs_utf8_chars(it->string) > META_MAX_LEN ||
			 rs_utf8_chars(it->valuestring) > META_MAX_LEN)
			body_fail(b, "invalidMetadata",
				  "clientMetadata keys and values are at most 256 characters");
	}
}

static void parse_sign_body(const fake_req *q, sign_body *b)
{
	const char *alg = NULL, *data = NULL;
	cJSON *j = rs_json_parse(q->body, q->len, RS_JSON_MAX_DEPTH);
	int rc;

	b->salt = -1;
	if (!j || !cJSON_IsObject(j)) {
		body_fail(b, "invalidJson", "the request body is not a JSON object");
		goto out;
	}
	if (rs_json_str(j, "signingAlgorithm", 1, 31, &alg) != RS_JSON_OK)
		body_fail(b, "invalidField", "signingAlgorithm is required");
	else if (rs_sign_alg_parse(alg, &b->alg) != 0)
		body_fail(b, "unknownAlgorithm",
			  "signingAlgorithm is not one of the 9 supported algorithms");
	if (rs_json_str(j, "data", 1, 65536, &data) != RS_JSON_OK) {
		body_fail(b, "invalidField",
			  "data (base64, at most 128 bytes decoded) is required");
	} else {
		rc = rs_b64_decode(data, strlen(data), b->data, sizeof(b->data), &b->data_len);
		if (rc == RS_B64_TOO_LARGE)
			body_fail(b, "dataLength", "data is larger than 128 bytes once decoded");
		else if (rc != RS_B64_OK)
			body_fail(b, "invalidBase64", "data is not valid base64");
		else if (b->data_len == 0)
			body_fail(b, "dataLength", "data is empty");
	}
	if (rs_json_bool(j, "isDigest", 0, &b->is_digest) != RS_JSON_OK)
		body_fail(b, "invalidField", "isDigest must be a boolean");
	if (rs_json_int(j, "pssSaltLength", 0, 0, 1024, &b->salt) != RS_JSON_OK)
		body_fail(b, "saltLength", "pssSaltLength must be a whole number of bytes");
	check_metadata(j, b);
out:
	cJSON_Delete(j);
}

/* The Idempotency-Key header as api_sign.c judges it: 1 to 64 visible
 * ASCII characters. */
static void parse_key(fake_req *q, sign_body *b)
{
	const char *k = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, "Idempotency-Key");
	size_t n;

	if (!k)
		return;
	for (n = 0; k[n]; n++)
		if (n == FAKE_IDEM_KEY_MAX || k[n] < 0x21 || k[n] > 0x7e)
			break;
	if (n == 0 || k[n]) {
		body_fail(b, "invalidIdempotencyKey",
			  "Idempotency-Key must be 1 to 64 visible ASCII characters (a UUID)");
		return;
	}
	rs_strlcpy(b->key, k, sizeof(b->key));
}

/* What a key stands for: the signer and what changes the signature. */
static void hash_request(const fake_signer *s, sign_body *b)
{
	unsigned char d[64];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char head[128];
	int n = snprintf(head, sizeof(head), "%s\n%d\n%d\n%lld\n", s->id, (int)b->alg, b->is_digest,
			 b->salt);

	b->hash[0] = '\0';
	if (c && n > 0 && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, head, (size_t)n) == 1 &&
	    EVP_DigestUpdate(c, b->data, b->data_len) == 1 && EVP_DigestFinal_ex(c, d, NULL) == 1)
		rs_hex_encode(d, 32, b->hash);
	EVP_MD_CTX_free(c);
}

static fake_keyed *keyed_find_inlock(fake_server *f, const char *key)
{
	for (int i = 0; i < FAKE_MAX_KEYED; i++)
		if (f->keyed[i].answer && strcmp(f->keyed[i].key, key) == 0)
			return &f->keyed[i];
	return NULL;
}

/* A retry of a key: answered from the first success (1), or 409 for
 * another request (1); 0 when the key is new. */
static int replay_key(fake_req *q, const sign_body *b)
{
	fake_keyed *k = b->key[0] ? keyed_find_inlock(q->f, b->key) : NULL;

	if (!k)
		return 0;
	if (strcmp(k->hash, b->hash) != 0) {
		fake_fail(q->r, "idempotencyKeyReused",
			  "Idempotency-Key %s was used for another signing request", b->key);
		return 1;
	}
	q->r->status = 200;
	rs_buf_reset(&q->r->body);
	rs_buf_append_str(&q->r->body, k->answer);
	return 1;
}

static void keep_key(fake_req *q, const sign_body *b)
{
	fake_server *f = q->f;
	fake_keyed *k = &f->keyed[f->next_keyed];
	char *answer;

	if (!b->key[0] || q->r->status != 200 || q->fault == FAULT_WRONG_SIG_LEN ||
	    q->fault == FAULT_BAD_BASE64)
		return;
	answer = strndup((const char *)q->r->body.data, q->r->body.len);
	if (!answer)
		return;
	if (!k->answer)
		f->n_keyed++;
	free(k->answer);
	k->answer = answer;
	rs_strlcpy(k->key, b->key, sizeof(k->key));
	rs_strlcpy(k->hash, b->hash, sizeof(k->hash));
	f->next_keyed = (f->next_keyed + 1) % FAKE_MAX_KEYED;
}

/* Enabled, and now within the certificate's validity. */
static int signer_usable(fake_req *q, const fake_signer *s)
{
	time_t now = time(NULL);
	char when[RS_TIME_LEN];

	if (!s->enabled) {
		fake_fail(q->r, "signerDisabled", "signer %s is disabled", s->name);
		return 0;
	}
	if (now < s->not_before) {
		rs_time_format(s->not_before, when);
		fake_fail(q->r, "certificateNotYetValid",
			  "the certificate of signer %s is not valid before %s", s->name, when);
		return 0;
	}
	if (now > s->not_after) {
		rs_time_format(s->not_after, when);
		fake_fail(q->r, "certificateExpired", "the certificate of signer %s expired at %s",
			  s->name, when);
		return 0;
	}
	return 1;
}

/* The body against the signer's key: algorithm, digest, salt. The digest
 * to sign goes into dig. */
static int request_fits(fake_req *q, const fake_signer *s, sign_body *b, unsigned char *dig,
			size_t *dlen)
{
	rs_hash h;
	long long max;

	if (b->bad) {
		fake_fail(q->r, b->bad, "%s", b->msg);
		return 0;
	}
	if (!rs_alg_fits_key(b->alg, s->alg)) {
		fake_fail(q->r, "algorithmMismatch", "%s does not fit the signer's %s key",
			  rs_sign_alg_name(b->alg), rs_key_alg_name(s->alg));
		return 0;
	}
	h = rs_sign_alg_hash(b->alg);
	*dlen = rs_hash_len(h);
	if (b->is_digest && b->data_len != *dlen) {
		fake_fail(q->r, "digestLength", "a %s digest is %zu bytes, data has %zu",
			  rs_hash_name(h), *dlen, b->data_len);
		return 0;
	}
	if (b->is_digest)
		memcpy(dig, b->data, *dlen);
	else if (rs_hash_compute(h, b->data, b->data_len, dig) != 0) {
		fake_fail(q->r, "internal", "cannot hash the data");
		return 0;
	}
	if (b->salt < 0)
		return 1;
	if (!rs_sign_alg_is_pss(b->alg)) {
		fake_fail(q->r, "saltLength",
			  "pssSaltLength applies only to RSASSA_PSS algorithms");
		return 0;
	}
	max = (long long)rs_key_alg_sig_len(s->alg) - (long long)*dlen - 2;
	if (b->salt > max) {
		fake_fail(q->r, "saltLength",
			  "pssSaltLength must be between 0 and %lld for this key", max);
		return 0;
	}
	return 1;
}

static void reply_signature(fake_req *q, const fake_signer *s, const sign_body *b,
			    unsigned char *sig, size_t siglen, int granted)
{
	char op_id[RS_UUID_LEN], *sig64;
	cJSON *o;

	if (q->fault == FAULT_WRONG_SIG_LEN) {
		if (rs_key_alg_is_rsa(s->alg)) {
			sig[siglen++] = 0x5a; /* one byte too many */
		} else {
			memset(sig, 0x01, 64); /* r||s where DER was promised */
			siglen = 64;
		}
	}
	sig64 = rs_b64_encode(sig, siglen);
	if (!sig64 || rs_uuid(op_id) != 0) {
		free(sig64);
		fake_fail(q->r, "internal", "out of memory");
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "signature",
				q->fault == FAULT_BAD_BASE64 ? "!!not*base64!!" : sig64);
	cJSON_AddStringToObject(o, "signingAlgorithm", rs_sign_alg_name(b->alg));
	cJSON_AddStringToObject(o, "signerId", s->id);
	cJSON_AddStringToObject(o, "operationId", op_id);
	if (granted)
		cJSON_AddStringToObject(o, "grantId", "00000000-0000-4000-8000-00000000a001");
	reply_obj(q, 200, o);
	free(sig64);
}

/* POST /pki/signers/{id}/sign: auth (done) -> signer exists -> operator ->
 * enabled -> certificate valid -> body well-formed -> key and algorithm ->
 * grant, as api_sign.c. */
void fake_api_sign(fake_req *q)
{
	fake_server *f = q->f;
	unsigned char dig[64], sig[1024];
	size_t dlen = 0, siglen = sizeof(sig);
	sign_body b;
	fake_signer *s;

	memset(&b, 0, sizeof(b));
	free(f->last_sign);
	f->last_sign = strndup(q->body, q->len);
	parse_sign_body(q, &b);
	parse_key(q, &b);
	s = signer_load(q, FAKE_ROLE_OPERATOR);
	if (!s || !signer_usable(q, s) || !request_fits(q, s, &b, dig, &dlen))
		goto out;
	if (b.key[0])
		hash_request(s, &b);
	if (replay_key(q, &b)) /* before the grant, as api_sign.c */
		goto out;
	if (s->needs_approval && s->grants_left <= 0) {
		fake_fail(q->r, "approvalRequired",
			  "signer %s needs approval: %s has no active grant (request one)", s->name,
			  FAKE_PRINCIPAL);
		goto out;
	}
	if (fake_sign_digest(s->key, b.alg, dig, dlen,
			     (long)(b.salt < 0 ? (long long)dlen : b.salt), sig, &siglen) < 0) {
		ERR_clear_error();
		fake_fail(q->r, "tokenRejected", "the token could not sign");
		goto out;
	}
	if (s->needs_approval)
		s->grants_left--;
	reply_signature(q, s, &b, sig, siglen, s->needs_approval);
	keep_key(q, &b);
out:
	rs_wipe(b.data, sizeof(b.data));
	rs_wipe(dig, sizeof(dig));
	rs_wipe(sig, sizeof(sig));
}

/* ---- signing requests -------------------------------------------------------- */

static void reply_request(fake_req *q, const fake_request *r, unsigned status)
{
	const fake_signer *s = &q->f->signers[r->signer];
	int approved = strcmp(r->status, "approved") == 0;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", r->id);
	cJSON_AddStringToObject(o, "signerId", s->id);
	cJSON_AddStringToObject(o, "signerName", s->name);
	cJSON_AddStringToObject(o, "policyId", FAKE_POLICY_ID);
	cJSON_AddStringToObject(o, "requesterId", FAKE_PRINCIPAL_ID);
	cJSON_AddStringToObject(o, "requesterName", FAKE_PRINCIPAL);
	cJSON_AddStringToObject(o, "justification", r->justification);
	if (r->signings)
		cJSON_AddNumberToObject(o, "requestedSignings", (double)r->signings);
	else
		cJSON_AddNullToObject(o, "requestedSignings");
	if (r->window)
		cJSON_AddNumberToObject(o, "requestedWindowDuration", (double)r->window);
	else
		cJSON_AddNullToObject(o, "requestedWindowDuration");
	cJSON_AddStringToObject(o, "status", r->status);
	cJSON_AddNumberToObject(o, "approvals", approved);
	add_time(o, "createdAt", r->created);
	add_time(o, "expiresAt", r->created + 600);
	if (strcmp(r->status, "pending") == 0)
		cJSON_AddNullToObject(o, "closedAt");
	else
		add_time(o, "closedAt", time(NULL));
	if (approved)
		cJSON_AddStringToObject(o, "grantId", "00000000-0000-4000-8000-00000000a001");
	else
		cJSON_AddNullToObject(o, "grantId");
	if (status == 201)
		cJSON_AddNumberToObject(o, "requiredApprovals", 1);
	else
		cJSON_AddArrayToObject(o, "decisions");
	reply_obj(q, status, o);
}

/* POST /pki/signers/{id}/requests {justification, requestedSignings?, ...} */
void fake_api_request_create(fake_req *q)
{
	fake_server *f = q->f;
	long long signings = 0, window = 0;
	const char *why = NULL;
	fake_request *r;
	fake_signer *s;
	cJSON *j = body_json(q);

	if (!j)
		return;
	s = signer_load(q, FAKE_ROLE_OPERATOR);
	if (!s)
		goto out;
	if (!s->needs_approval) {
		fake_fail(q->r, "noPolicy",
			  "signer %s has no signing policy: it signs without approval", s->name);
	} else if (rs_json_str(j, "justification", 1, 1024, &why) != RS_JSON_OK || !*why) {
		fake_fail(q->r, "invalidField", "justification (1-1024 characters) is required");
	} else if (rs_json_int(j, "requestedSignings", 0, 1, 1000000000, &signings) != RS_JSON_OK ||
		   rs_json_int(j, "requestedWindowDuration", 0, 1, 315360000, &window) !=
			   RS_JSON_OK) {
		fake_fail(q->r, "invalidField",
			  "requestedSignings and requestedWindowDuration must be positive whole "
			  "numbers");
	} else if (s->grant_signings && signings > s->grant_signings) {
		fake_fail(q->r, "exceedsPolicy",
			  "requestedSignings exceeds the policy's maxSignings (%d)",
			  s->grant_signings);
	} else if (f->n_reqs == FAKE_MAX_REQUESTS) {
		fake_fail(q->r, "internal", "cannot store the request");
	} else {
		r = &f->reqs[f->n_reqs];
		memset(r, 0, sizeof(*r));
		if (rs_uuid(r->id) < 0) {
			fake_fail(q->r, "internal", "no randomness for an id");
			goto out;
		}
		r->signer = (size_t)(s - f->signers);
		rs_strlcpy(r->status, "pending", sizeof(r->status));
		r->created = time(NULL);
		rs_strlcpy(r->justification, why, sizeof(r->justification));
		r->signings = signings ? signings : s->grant_signings;
		r->window = window;
		r->body = strndup(q->body, q->len);
		f->n_reqs++;
		reply_request(q, r, 201);
	}
out:
	cJSON_Delete(j);
}

/* GET /pki/signing-requests/{rid}; the auto decision happens here. */
void fake_api_request_get(fake_req *q)
{
	fake_server *f = q->f;
	fake_request *r = NULL;
	int i;

	for (i = 0; i < f->n_reqs; i++)
		if (strcmp(f->reqs[i].id, q->params[0]) == 0)
			r = &f->reqs[i];
	if (!r) {
		fake_fail(q->r, "notFound", "no signing request \"%s\"", q->params[0]);
		return;
	}
	r->polls++;
	if (f->auto_status[0] && r->polls >= f->auto_polls)
		fake_decide_inlock(f, r, f->auto_status);
	reply_request(q, r, 200);
}
