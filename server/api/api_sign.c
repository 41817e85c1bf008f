/* POST /pki/signers/{id}/sign: the checks of docs/api.md in their order, the
 * signature made in the token, and the history record committed before the
 * answer. Every attempt past authentication on a signer the caller can see
 * is recorded, whatever its end (its clientMetadata only for admins and
 * members); attempts on signers it cannot see are counted, not recorded
 * (sign_unseen.h).
 *
 * Idempotency-Key: a success made under a key keeps it, with a hash of the
 * request and the signature, in its history record. A later request of the
 * same principal with that key, on any replica, gets the first answer back
 * (the same signature, operationId and grantId) once it passes the same
 * checks up to a well-formed request: no second signature, record or grant
 * use. The same key with another signer, algorithm, data, isDigest or
 * pssSaltLength is 409 idempotencyKeyReused. Two calls with one key at once:
 * the history insert of the second finds the key taken (store.h) and that
 * call answers with the first's result. Refused attempts do not claim a
 * key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/base64.h"
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/api/sign_target.h"
#include "server/api/sign_unseen.h"
#include "server/http/ratelimit.h"

#define SIGN_DATA_MAX 128
#define META_MAX_KEYS 16
#define META_MAX_LEN 256

/* What the body says, collected even when part of it is malformed so the
 * history can show as much as was sent. bad/msg hold the first problem. */
typedef struct {
	srv_reason bad; /* SRV_R_NONE while the body is well-formed */
	char msg[200];
	char alg_name[32];
	rs_sign_alg alg;
	unsigned char data[SIGN_DATA_MAX];
	size_t data_len;
	int have_data;
	int is_digest;
	long long salt;			/* -1 = default */
	char *metadata;			/* JSON text */
	char key[SRV_IDEM_KEY_MAX + 1]; /* Idempotency-Key; "" = none */
	char request_hash[65];		/* of what is asked, when key is set */
} sign_body;

static void body_fail(sign_body *b, srv_reason why, const char *msg)
{
	if (b->bad == SRV_R_NONE) {
		b->bad = why;
		rs_strlcpy(b->msg, msg, sizeof(b->msg));
	}
}

static double mono_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rsign_sign_duration_seconds{phase} */
static void observe_phase(const char *phase, double since)
{
	const char *labels[] = {"phase", phase, NULL};
	rs_metric_observe(&rs_m_sign_duration, mono_seconds() - since, labels);
}

/* rsign_sign_total of a record written: the algorithm by its canonical
 * name, or "unknown" (what a body says is not a label: it is unbounded). */
static void count_record(const srv_sign_target *s, const sign_body *b, const char *status)
{
	rs_sign_alg alg;
	const char *name =
		rs_sign_alg_parse(b->alg_name, &alg) == 0 ? rs_sign_alg_name(alg) : "unknown";
	const char *labels[] = {"signer", s->name, "algorithm", name, "status", status, NULL};
	rs_metric_add(&rs_m_sign_total, 1, labels);
}

static void parse_metadata(const cJSON *j, sign_body *b)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "clientMetadata");
	if (!m || cJSON_IsNull(m))
		return;
	if (!cJSON_IsObject(m)) {
		body_fail(b, SRV_R_INVALID_METADATA, "clientMetadata must be an object of strings");
		return;
	}
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach (it, m) {
		if (++n > META_MAX_KEYS) {
			body_fail(b, SRV_R_INVALID_METADATA,
				  "clientMetadata has more than 16 keys");
			return;
		}
		if (!cJSON_IsString(it)) {
			body_fail(b, SRV_R_INVALID_METADATA,
				  "clientMetadata values must be strings");
			return;
		}
		if (rs_utf8_chars(it->string) > META_MAX_LEN ||
		    rs_utf8_chars(it->valuestring) > META_MAX_LEN) {
			body_fail(b, SRV_R_INVALID_METADATA,
				  "clientMetadata keys and values are at most 256 characters");
			return;
		}
	}
	free(b->metadata);
	b->metadata = rs_json_print(m);
}

static void parse_body(srv_req *r, sign_body *b)
{
	const char *alg = NULL, *data = NULL;
	b->salt = -1;
	cJSON *j = rs_json_parse((const char *)r->body, r->body_len, RS_JSON_MAX_DEPTH);
	if (!j || !cJSON_IsObject(j)) {
		body_fail(b, SRV_R_INVALID_JSON, "the request body is not a JSON object");
		goto out;
	}
	if (rs_json_str(j, "signingAlgorithm", 1, 31, &alg) != RS_JSON_OK) {
		body_fail(b, SRV_R_INVALID_FIELD, "signingAlgorithm is required");
	} else {
		rs_strlcpy(b->alg_name, alg, sizeof(b->alg_name));
		if (rs_sign_alg_parse(alg, &b->alg) != 0)
			body_fail(b, SRV_R_UNKNOWN_ALGORITHM,
				  "signingAlgorithm is not one of the 9 supported algorithms");
	}
	if (rs_json_str(j, "data", 1, 65536, &data) != RS_JSON_OK) {
		body_fail(b, SRV_R_INVALID_FIELD,
			  "data (base64, at most 128 bytes decoded) is required");
	} else {
		int rc = rs_b64_decode(data, strlen(data), b->data, sizeof(b->data), &b->data_len);
		if (rc == RS_B64_TOO_LARGE)
			body_fail(b, SRV_R_DATA_LENGTH,
				  "data is larger than 128 bytes once decoded");
		else if (rc != RS_B64_OK)
			body_fail(b, SRV_R_INVALID_BASE64, "data is not valid base64");
		else if (b->data_len == 0)
			body_fail(b, SRV_R_DATA_LENGTH, "data is empty");
		else
			b->have_data = 1;
	}
	if (rs_json_bool(j, "isDigest", 0, &b->is_digest) != RS_JSON_OK)
		body_fail(b, SRV_R_INVALID_FIELD, "isDigest must be a boolean");
	if (rs_json_int(j, "pssSaltLength", 0, 0, 1024, &b->salt) != RS_JSON_OK)
		body_fail(b, SRV_R_SALT_LENGTH, "pssSaltLength must be a whole number of bytes");
	parse_metadata(j, b);
out:
	cJSON_Delete(j);
}

/* The Idempotency-Key header: 1 to 64 visible ASCII characters. */
static void parse_key(srv_req *r, sign_body *b)
{
	const char *k = srv_header(r, "Idempotency-Key");
	size_t n;

	if (!k)
		return;
	for (n = 0; k[n]; n++) {
		if (n == SRV_IDEM_KEY_MAX || k[n] < 0x21 || k[n] > 0x7e) {
			n = 0;
			break;
		}
	}
	if (n == 0) {
		body_fail(b, SRV_R_INVALID_IDEMPOTENCY_KEY,
			  "Idempotency-Key must be 1 to 64 visible ASCII characters (a UUID)");
		return;
	}
	rs_strlcpy(b->key, k, sizeof(b->key));
}

/* What a key stands for: the signer and every field that changes the
 * signature (not clientMetadata), the algorithm by its canonical name (an
 * alias is the same request). */
static int hash_request(const srv_sign_target *s, sign_body *b)
{
	unsigned char in[256 + SIGN_DATA_MAX], d[64];
	int n = snprintf((char *)in, 256, "%s\n%s\n%d\n%lld\n", s->id, rs_sign_alg_name(b->alg),
			 b->is_digest, b->salt);

	if (n < 0 || n >= 256)
		return -1;
	memcpy(in + n, b->data, b->data_len);
	if (rs_hash_compute(RS_HASH_SHA256, in, (size_t)n + b->data_len, d) != 0)
		return -1;
	rs_hex_encode(d, 32, b->request_hash);
	rs_wipe(in, sizeof(in));
	return 0;
}

/* The first answer to the caller's key: *prev when that success was the
 * same request (*found = 1), 409 when the key went with another one, OK
 * with *found = 0 when the key is new. */
static srv_err find_first(srv_req *r, const sign_body *b, srv_operation *prev, int *found)
{
	srv_st_rc rc =
		r->ctx->store->ops->operation_find_key(r->ctx->store, r->actor.id, b->key, prev);

	*found = 0;
	if (rc == SRV_ST_NOT_FOUND)
		return SRV_OK;
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the signing history");
	if (strcmp(prev->request_hash, b->request_hash) != 0)
		return srv_fail(r, SRV_R_IDEMPOTENCY_KEY_REUSED,
				"Idempotency-Key %s was used for another signing request", b->key);
	*found = 1;
	return SRV_OK;
}

/* A refused call with a key looks once more before its refusal is
 * recorded: a call with the same key, on any replica, that committed since
 * the first look (taking a grant's last signing, or the rate) answers this
 * one too. 1 with *prev and the refusal cleared; else 0 with the refusal
 * as it was. */
static int answered_meanwhile(srv_req *r, const sign_body *b, srv_operation *prev)
{
	srv_err err = r->err;
	srv_reason reason = r->reason;
	long retry_after = r->retry_after;
	char msg[sizeof(r->errmsg)];
	int found = 0;

	memcpy(msg, r->errmsg, sizeof(msg));
	if (b->key[0] && find_first(r, b, prev, &found) == SRV_OK && found) {
		r->err = SRV_OK;
		r->reason = SRV_R_NONE;
		r->retry_after = 0;
		r->errmsg[0] = '\0';
		return 1;
	}
	r->err = err;
	r->reason = reason;
	r->retry_after = retry_after;
	memcpy(r->errmsg, msg, sizeof(msg));
	return 0;
}

/* Algorithm, digest and salt against the signer's key. */
static srv_err check_request(srv_req *r, const srv_sign_target *s, sign_body *b,
			     unsigned char *digest, size_t *dlen)
{
	if (b->bad != SRV_R_NONE)
		return srv_fail(r, b->bad, "%s", b->msg);
	if (!rs_alg_fits_key(b->alg, s->key_alg))
		return srv_fail(r, SRV_R_ALGORITHM_MISMATCH, "%s does not fit the signer's %s key",
				rs_sign_alg_name(b->alg), rs_key_alg_name(s->key_alg));
	rs_hash h = rs_sign_alg_hash(b->alg);
	*dlen = rs_hash_len(h);
	if (b->is_digest) {
		if (b->data_len != *dlen)
			return srv_fail(r, SRV_R_DIGEST_LENGTH,
					"a %s digest is %zu bytes, data has %zu", rs_hash_name(h),
					*dlen, b->data_len);
		memcpy(digest, b->data, *dlen);
	} else if (rs_hash_compute(h, b->data, b->data_len, digest) != 0) {
		return srv_fail(r, SRV_R_INTERNAL, "cannot hash the data");
	}
	if (b->salt >= 0) {
		if (!rs_sign_alg_is_pss(b->alg))
			return srv_fail(r, SRV_R_SALT_LENGTH,
					"pssSaltLength applies only to RSASSA_PSS algorithms");
		long long max = (long long)rs_key_alg_sig_len(s->key_alg) - (long long)*dlen - 2;
		if (b->salt > max)
			return srv_fail(r, SRV_R_SALT_LENGTH,
					"pssSaltLength must be between 0 and %lld for this key",
					max);
	}
	if (b->key[0] && hash_request(s, b) != 0)
		return srv_fail(r, SRV_R_INTERNAL, "cannot hash the request");
	return SRV_OK;
}

/* The history record of this attempt; committed before any answer. With
 * consume, a success also takes one signing from the caller's grant in the
 * same transaction; SRV_E_APPROVAL when none is left (nothing written). A
 * success under an Idempotency-Key keeps the key, the request's hash and
 * sig; when the caller's key was taken meanwhile, nothing is written and
 * *taken is set. */
static srv_err record(srv_req *r, const srv_sign_target *s, const sign_body *b, srv_err outcome,
		      int consume, const char *approval, const unsigned char *sig, size_t siglen,
		      char op_id[RS_UUID_LEN], char grant_id[RS_UUID_LEN], int *taken)
{
	srv_operation op = {0};

	*taken = 0;
	/* time-ordered: the history's index of ids grows at its end */
	if (rs_uuid_v7(op.id) != 0)
		return srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
	rs_strlcpy(op.signer_id, s->id, sizeof(op.signer_id));
	rs_strlcpy(op.status, srv_err_history_status(outcome), sizeof(op.status));
	rs_strlcpy(op.algorithm, b->alg_name, sizeof(op.algorithm));
	if (b->have_data) {
		unsigned char d[64];
		if (rs_hash_compute(RS_HASH_SHA256, b->data, b->data_len, d) == 0)
			rs_hex_encode(d, 32, op.data_hash);
	}
	op.is_digest = b->is_digest;
	rs_strlcpy(op.actor_type, r->actor.type, sizeof(op.actor_type));
	rs_strlcpy(op.actor_id, r->actor.id, sizeof(op.actor_id));
	op.actor_name = r->actor.name;
	op.oidc = r->actor.login; /* the OIDC login behind its access token */
	/* what a non-member sends is not kept: not its history to write in */
	int annotate = b->metadata && srv_may_annotate(r, s->id) == SRV_R_NONE;
	op.client_metadata = annotate ? b->metadata : "{}";
	rs_strlcpy(op.source_ip, r->source_ip, sizeof(op.source_ip));
	if (outcome != SRV_OK)
		rs_strlcpy(op.error_code, srv_err_word(outcome), sizeof(op.error_code));
	rs_strlcpy(op.approval, approval, sizeof(op.approval));
	op.created_at = time(NULL);
	if (outcome == SRV_OK && b->key[0]) {
		if (siglen > sizeof(op.signature))
			return srv_fail(r, SRV_R_INTERNAL, "the signature is too long to keep");
		rs_strlcpy(op.idem_key, b->key, sizeof(op.idem_key));
		rs_strlcpy(op.request_hash, b->request_hash, sizeof(op.request_hash));
		memcpy(op.signature, sig, siglen);
		op.signature_len = siglen;
	}
	double t0 = mono_seconds();
	srv_st_rc rc =
		consume ? r->ctx->store->ops->operation_insert_consume(r->ctx->store, &op, grant_id)
			: r->ctx->store->ops->operation_insert(r->ctx->store, &op);
	observe_phase("commit", t0);
	if (rc == SRV_ST_OK)
		count_record(s, b, op.status);
	if (op.idem_key[0] && rc == SRV_ST_CONFLICT) {
		*taken = 1;
		return SRV_OK;
	}
	if (consume && rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_APPROVAL_REQUIRED,
				"no active grant is left for %s on signer %s: request approval",
				r->actor.name, s->name);
	if (rc != SRV_ST_OK) {
		rs_err("sign: cannot record the operation on signer %s: storage error %d",
		       op.signer_id, (int)rc);
		return srv_fail(r, SRV_R_DATABASE_UNAVAILABLE,
				"the signing history cannot be written");
	}
	memcpy(op_id, op.id, RS_UUID_LEN);
	return SRV_OK;
}

static srv_err sign_in_token(srv_req *r, const srv_sign_target *s, const sign_body *b,
			     const unsigned char *digest, size_t dlen, unsigned char *sig,
			     size_t sigmax, size_t *siglen)
{
	double t0 = mono_seconds();
	srv_hsm_rc hr = srv_hsm_sign(r->ctx->hsm, s->ckid, b->alg, digest, dlen, (long)b->salt, sig,
				     sigmax, siglen);
	observe_phase("token", t0);
	if (hr == SRV_HSM_NOT_FOUND)
		return srv_fail(r, srv_reason_from_hsm(hr),
				"the key of signer %s is not in the token", s->name);
	if (hr != SRV_HSM_OK)
		return srv_fail(r, srv_reason_from_hsm(hr), "the token could not sign");
	return SRV_OK;
}

/* A signer with a policy signs only under an active grant of the caller,
 * unless the policy lets machine identities bypass approval (and, with
 * bypassClaims, the identity's access token came from an OIDC login whose
 * recorded claims match them). */
static srv_err check_policy(srv_req *r, const srv_sign_target *s, int *need_grant, int *bypass)
{
	srv_grant g = {0};
	*need_grant = 0;
	*bypass = 0;
	if (!s->policy_id[0])
		return SRV_OK;
	char why[600] = "";
	*bypass = s->bypass_identities && strcmp(r->actor.type, "identity") == 0;
	if (*bypass && s->bypass_claims[0])
		*bypass = api_oidc_bypass_holds(r->actor.login, s->bypass_claims, why, sizeof(why));
	if (*bypass)
		return SRV_OK;
	*need_grant = 1;
	srv_st_rc rc = r->ctx->store->ops->grant_find_active(r->ctx->store, s->id, r->actor.id,
							     time(NULL), &g);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(
			r, SRV_R_APPROVAL_REQUIRED,
			"signer %s needs approval: %s has no active grant (request one)%s%s",
			s->name, r->actor.name, why[0] ? "; no bypass: " : "", why);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read grants");
	return SRV_OK;
}

/* Exists and the caller sees it (404 for both, *seen = 0), then the caller
 * may sign with it (access.c) and it is not retired. */
static srv_err load_target(srv_req *r, srv_sign_target *s, int *seen)
{
	*seen = 0;
	srv_err e = srv_sign_target_get(r, s);
	if (e != SRV_OK)
		return e;
	srv_reason why = srv_may_sign(r, s->id);
	if (why == SRV_R_NOT_FOUND)
		return srv_fail(r, why, "no signer \"%s\"", r->params[0]);
	if (why != SRV_R_NONE && srv_reason_class(why) != SRV_E_PERMISSION)
		return srv_fail(r, why, "cannot check who may sign with signer %s", s->name);
	*seen = 1;
	if (why != SRV_R_NONE)
		return srv_fail(r, why, "%s may not sign with signer %s", r->actor.name, s->name);
	if (s->retired) {
		*seen = 0; /* a retired signer keeps the history it has */
		return srv_fail(r, SRV_R_NOT_FOUND, "signer %s is retired", s->name);
	}
	return SRV_OK;
}

/* Answers with the first result of the caller's key. */
static void take_first(const srv_operation *prev, unsigned char *sig, size_t *siglen,
		       char op_id[RS_UUID_LEN], char grant_id[RS_UUID_LEN])
{
	memcpy(sig, prev->signature, prev->signature_len);
	*siglen = prev->signature_len;
	rs_strlcpy(op_id, prev->id, RS_UUID_LEN);
	rs_strlcpy(grant_id, prev->grant_id, RS_UUID_LEN);
}

srv_err api_sign(srv_req *r, cJSON **out)
{
	sign_body b = {0};
	srv_sign_target s = {0};
	srv_operation prev;
	unsigned char digest[64], sig[1024];
	size_t dlen = 0, siglen = 0;
	char op_id[RS_UUID_LEN] = "", grant_id[RS_UUID_LEN] = "";
	int need_grant = 0, bypass = 0, seen = 0, replayed = 0, taken = 0;
	time_t now = time(NULL);
	char when[RS_TIME_LEN];
	double t0 = mono_seconds();

	parse_body(r, &b);
	parse_key(r, &b);
	srv_err e = load_target(r, &s, &seen);
	if (e != SRV_OK && !seen) {
		if (r->reason == SRV_R_NOT_FOUND) {
			srv_unseen_count(r);
			srv_err limited = srv_limit_unseen(r);
			if (limited != SRV_OK)
				e = limited;
		}
		goto answer;
	}
	if (e != SRV_OK)
		goto record;
	if (!s.enabled) {
		e = srv_fail(r, SRV_R_SIGNER_DISABLED, "signer %s is disabled", s.name);
		goto record;
	}
	if (now < s.not_before || now > s.not_after) {
		int early = now < s.not_before;
		rs_time_format(early ? s.not_before : s.not_after, when);
		e = srv_fail(r, early ? SRV_R_CERTIFICATE_NOT_YET_VALID : SRV_R_CERTIFICATE_EXPIRED,
			     "the certificate of signer %s %s %s", s.name,
			     early ? "is not valid before" : "expired at", when);
		goto record;
	}
	if ((e = check_request(r, &s, &b, digest, &dlen)) != SRV_OK)
		goto record;
	/* a retry of a key answers as the first time, before any limit or
	 * grant: the first call may have used the last signing */
	if (b.key[0] && ((e = find_first(r, &b, &prev, &replayed)) != SRV_OK || replayed))
		goto replay;
	if ((e = srv_limit_sign(r)) != SRV_OK) /* max_sign_rate: 429, recorded as denied */
		goto refused;
	if ((e = check_policy(r, &s, &need_grant, &bypass)) != SRV_OK)
		goto refused;
	e = sign_in_token(r, &s, &b, digest, dlen, sig, sizeof(sig), &siglen);
	if (e == SRV_OK && need_grant) {
		/* the grant is consumed with the record; when another call took
		 * the last signing meanwhile, this one is denied and recorded so */
		e = record(r, &s, &b, SRV_OK, 1, "grant", sig, siglen, op_id, grant_id, &taken);
		if (e == SRV_OK && taken)
			goto taken;
		if (e == SRV_OK)
			goto answer;
		if (e != SRV_E_APPROVAL)
			goto answer;
	}
	goto record;
refused:
	if (answered_meanwhile(r, &b, &prev)) {
		e = SRV_OK;
		replayed = 1;
		goto replay;
	}
record:;
	srv_err re = record(r, &s, &b, e, 0,
			    bypass	 ? "bypass"
			    : need_grant ? "grant"
					 : "none",
			    sig, siglen, op_id, grant_id, &taken);
	if (e == SRV_OK && re != SRV_OK)
		e = re;
	if (e != SRV_OK || !taken)
		goto answer;
taken:
	/* another call with this key committed first: its answer is ours */
	e = find_first(r, &b, &prev, &replayed);
	if (e == SRV_OK && !replayed)
		e = srv_fail(r, SRV_R_INTERNAL, "the first use of Idempotency-Key %s is gone",
			     b.key);
replay:
	if (e != SRV_OK) {
		replayed = 0;
		goto record; /* a refusal: records no key, so this runs once */
	}
	take_first(&prev, sig, &siglen, op_id, grant_id);
	rs_info("sign on %s by %s: Idempotency-Key %s answered with operation %s", s.name,
		r->actor.name, b.key, op_id);
answer:
	if (e == SRV_OK) {
		char *sig64 = rs_b64_encode(sig, siglen);
		if (!sig64) {
			e = srv_fail(r, SRV_R_INTERNAL, "out of memory");
		} else {
			*out = cJSON_CreateObject();
			cJSON_AddStringToObject(*out, "signature", sig64);
			cJSON_AddStringToObject(*out, "signingAlgorithm", rs_sign_alg_name(b.alg));
			cJSON_AddStringToObject(*out, "signerId", s.id);
			cJSON_AddStringToObject(*out, "operationId", op_id);
			if (grant_id[0])
				cJSON_AddStringToObject(*out, "grantId", grant_id);
			free(sig64);
		}
	} else if (seen) { /* the others are counted, not logged one by one */
		rs_info("sign on %s by %s refused: %s (%s)", s.name, r->actor.name, srv_err_word(e),
			r->errmsg);
	}
	rs_wipe(b.data, sizeof(b.data));
	rs_wipe(digest, sizeof(digest));
	rs_wipe(sig, sizeof(sig));
	free(b.metadata);
	observe_phase("total", t0);
	return e;
}
