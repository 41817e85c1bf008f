/* /pki/timestamp-authorities (the TSA objects, their timestamps) and the
 * RFC 3161 protocol at POST /tsa/{name}: a query in, a reply signed in the
 * token out, every timestamp recorded before it is answered. Failures the
 * protocol can carry are replies with a PKIStatus of rejection (HTTP 200);
 * an unknown TSA or a missing token are the API's JSON errors. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <openssl/rand.h>
#include "rsign/base64.h"
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/hsm/pki.h"
#include "server/hsm/tsa.h"

#define TSA_SERIAL_TRIES 4

static cJSON *tsa_json(const srv_tsa *t)
{
	char url[160];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", t->id);
	cJSON_AddStringToObject(o, "name", t->name ? t->name : "");
	cJSON_AddStringToObject(o, "certificateId", t->certificate_id);
	cJSON_AddStringToObject(o, "policyOid", t->policy_oid);
	cJSON_AddNumberToObject(o, "accuracySeconds", (double)t->accuracy_seconds);
	cJSON_AddBoolToObject(o, "requireAuth", t->require_auth);
	snprintf(url, sizeof(url), "/tsa/%s", t->name ? t->name : "");
	cJSON_AddStringToObject(o, "path", url);
	srv_json_time(o, "createdAt", t->created_at);
	return o;
}

/* Dotted decimal, at least two arcs, each without leading zeros, that
 * OpenSSL reads as an OID. */
static int oid_ok(const char *s)
{
	int arcs = 0;
	const char *p = s;
	if (!s || !*s || strlen(s) >= sizeof(((srv_tsa *)0)->policy_oid))
		return 0;
	while (*p) {
		if (!isdigit((unsigned char)*p) || (p[0] == '0' && isdigit((unsigned char)p[1])))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		arcs++;
		if (*p == '.' && p[1])
			p++;
		else if (*p)
			return 0;
	}
	if (arcs < 2 || s[0] > '2')
		return 0;
	ASN1_OBJECT *o = OBJ_txt2obj(s, 1);
	ASN1_OBJECT_free(o);
	return o != NULL;
}

/* The certificate must exist and be fit for a TSA (critical EKU
 * timeStamping only); its key must be in the token. */
static srv_err check_cert(srv_req *r, const char *cert_id)
{
	srv_cert c = {0};
	srv_cert_info ci = {0};
	char err[256] = "";
	srv_st_rc rc = r->ctx->store->ops->cert_get(r->ctx->store, cert_id, &c);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_UNKNOWN_REFERENCE,
				"certificateId \"%s\" names no certificate", cert_id);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the certificate");
	int prc = srv_pki_parse_cert_as(c.cert_pem, NULL, SRV_PKI_TSA, &ci, err, sizeof(err));
	srv_cert_clear(&c);
	srv_cert_info_free(&ci);
	if (prc != SRV_PKI_OK)
		return srv_fail(r,
				prc == SRV_PKI_EINVAL ? SRV_R_INVALID_CERTIFICATE : SRV_R_INTERNAL,
				"%s", err[0] ? err : "the certificate cannot serve a TSA");
	return SRV_OK;
}

/* Applies the fields present in j to t (create: all required). */
static srv_err read_tsa(srv_req *r, const cJSON *j, srv_tsa *t, int create)
{
	const char *name = NULL, *cert = NULL, *oid = NULL;
	long long acc = t->accuracy_seconds;
	int auth = t->require_auth;
	if (rs_json_str(j, "name", create, 64, &name) != RS_JSON_OK || (name && !rs_is_slug(name)))
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"name must match ^[a-z0-9][a-z0-9-]{0,63}$");
	if (rs_json_str(j, "certificateId", create, 64, &cert) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "certificateId must name a certificate");
	if (rs_json_str(j, "policyOid", create, 127, &oid) != RS_JSON_OK || (oid && !oid_ok(oid)))
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"policyOid must be an object identifier in dotted decimal "
				"(e.g. 1.3.6.1.4.1.99999.1)");
	if (create)
		acc = 1;
	if (rs_json_int(j, "accuracySeconds", 0, 0, 3600, &acc) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"accuracySeconds must be a whole number from 0 to 3600");
	if (rs_json_bool(j, "requireAuth", 0, &auth) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "requireAuth must be a boolean");
	if (name) {
		free(t->name);
		if (!(t->name = strdup(name)))
			return srv_fail(r, SRV_R_INTERNAL, "out of memory");
	}
	if (cert) {
		if (check_cert(r, cert) != SRV_OK)
			return r->err;
		rs_strlcpy(t->certificate_id, cert, sizeof(t->certificate_id));
	}
	if (oid)
		rs_strlcpy(t->policy_oid, oid, sizeof(t->policy_oid));
	t->accuracy_seconds = acc;
	t->require_auth = auth;
	return SRV_OK;
}

static srv_err tsa_load(srv_req *r, srv_tsa *t)
{
	srv_st_rc rc = r->ctx->store->ops->tsa_get(r->ctx->store, r->params[0], t);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no time-stamp authority \"%s\"", r->params[0]);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc),
				"cannot read the time-stamp authority");
	return SRV_OK;
}

static srv_err store_result(srv_req *r, srv_st_rc rc, const srv_tsa *t, const char *what)
{
	if (rc == SRV_ST_CONFLICT)
		return srv_fail(r, SRV_R_NAME_TAKEN, "a time-stamp authority named \"%s\" exists",
				t->name);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no time-stamp authority \"%s\"", t->id);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot %s the time-stamp authority",
				what);
	return SRV_OK;
}

srv_err api_tsa_create(srv_req *r, cJSON **out)
{
	srv_tsa t = {0};
	srv_audit a = {0};
	srv_err e;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if ((e = read_tsa(r, j, &t, 1)) != SRV_OK)
		goto out;
	if (rs_uuid(t.id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	t.created_at = time(NULL);
	if ((e = api_audit_entry(r, &a, "tsa.create", "tsa", t.id, tsa_json(&t))) != SRV_OK)
		goto out;
	if ((e = store_result(r, r->ctx->store->ops->tsa_insert(r->ctx->store, &t, &a), &t,
			      "store")) != SRV_OK)
		goto out;
	rs_info("time-stamp authority %s (%s) created by %s", t.name, t.id, r->actor.name);
	*out = tsa_json(&t);
	r->status = 201;
out:
	api_audit_done(&a);
	srv_tsa_clear(&t);
	cJSON_Delete(j);
	return e;
}

srv_err api_tsa_list(srv_req *r, cJSON **out)
{
	srv_tsa *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->tsa_list(r->ctx->store, offset, limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list time-stamp authorities");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "timestampAuthorities");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, tsa_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_tsa_list_free(v, n);
	return SRV_OK;
}

srv_err api_tsa_get(srv_req *r, cJSON **out)
{
	srv_tsa t = {0};
	if (tsa_load(r, &t) != SRV_OK)
		return r->err;
	*out = tsa_json(&t);
	srv_tsa_clear(&t);
	return SRV_OK;
}

srv_err api_tsa_update(srv_req *r, cJSON **out)
{
	srv_tsa t = {0};
	srv_audit a = {0};
	srv_err e;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if ((e = tsa_load(r, &t)) != SRV_OK || (e = read_tsa(r, j, &t, 0)) != SRV_OK)
		goto out;
	if ((e = api_audit_entry(r, &a, "tsa.update", "tsa", t.id, tsa_json(&t))) != SRV_OK)
		goto out;
	if ((e = store_result(r, r->ctx->store->ops->tsa_update(r->ctx->store, &t, &a), &t,
			      "update")) != SRV_OK)
		goto out;
	*out = tsa_json(&t);
out:
	api_audit_done(&a);
	srv_tsa_clear(&t);
	cJSON_Delete(j);
	return e;
}

srv_err api_tsa_delete(srv_req *r, cJSON **out)
{
	srv_tsa t = {0};
	srv_audit a = {0};
	srv_err e;
	if ((e = tsa_load(r, &t)) != SRV_OK)
		return e;
	if ((e = api_audit_entry(r, &a, "tsa.delete", "tsa", t.id, tsa_json(&t))) == SRV_OK &&
	    (e = store_result(r, r->ctx->store->ops->tsa_delete(r->ctx->store, t.id, &a), &t,
			      "delete")) == SRV_OK) {
		*out = cJSON_CreateObject();
		cJSON_AddStringToObject(*out, "id", t.id);
		cJSON_AddBoolToObject(*out, "deleted", 1);
	}
	api_audit_done(&a);
	srv_tsa_clear(&t);
	return e;
}

static cJSON *stamp_json(const srv_timestamp *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "serialNumber", s->serial);
	cJSON_AddStringToObject(o, "hashAlgorithm", s->imprint_alg);
	cJSON_AddStringToObject(o, "messageImprint", s->imprint);
	cJSON_AddStringToObject(o, "protocol", s->protocol);
	if (s->actor_name[0])
		cJSON_AddStringToObject(o, "requester", s->actor_name);
	else
		cJSON_AddNullToObject(o, "requester");
	cJSON_AddStringToObject(o, "sourceIp", s->source_ip);
	srv_json_time(o, "createdAt", s->created_at);
	return o;
}

srv_err api_tsa_operations(srv_req *r, cJSON **out)
{
	srv_tsa t = {0};
	srv_timestamp *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	if (srv_paging(r, &offset, &limit) != SRV_OK || tsa_load(r, &t) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->timestamp_list(r->ctx->store, t.id, offset, limit, &v,
							  &n, &total);
	srv_tsa_clear(&t);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list timestamps");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "timestamps");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, stamp_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	free(v);
	return SRV_OK;
}

/* ---- POST /tsa/{name} ------------------------------------------------------ */

/* The kernel's word on the clock (adjtimex: TIME_ERROR or STA_UNSYNC when
 * no time daemon keeps it in step). RSIGN_TEST_CLOCK_UNSYNCED=1 makes it
 * answer "unsynchronised" for the tests: it can only refuse more. */
static int clock_synced(void)
{
	struct timex tx;
	const char *force = getenv("RSIGN_TEST_CLOCK_UNSYNCED");
	if (force && strcmp(force, "1") == 0)
		return 0;
	memset(&tx, 0, sizeof(tx));
	int state = adjtimex(&tx);
	return state != -1 && state != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

/* The reply r answers with: binary DER, application/timestamp-reply. */
static srv_err reply(srv_req *r, unsigned char *der, size_t len)
{
	r->text = (char *)der;
	r->text_len = len;
	r->content_type = "application/timestamp-reply";
	return SRV_OK;
}

/* rfc: a TimeStampResp of PKIStatus rejection (HTTP 200); else (the
 * legacy Authenticode protocol, which has no status) the API's error
 * legacy_why. */
static srv_err refuse_as(srv_req *r, int rfc, int fail_bit, srv_reason legacy_why, const char *text)
{
	unsigned char *der = NULL;
	size_t len = 0;
	rs_info("tsa %s: refused (failure bit %d): %s", r->params[0], fail_bit, text);
	if (!rfc)
		return srv_fail(r, legacy_why, "%s", text);
	if (srv_tsa_reject_der(fail_bit, text, &der, &len) != 0)
		return srv_fail(r, SRV_R_INTERNAL, "cannot encode the refusal");
	return reply(r, der, len);
}

/* refuse_as, the legacy protocol's error following from fail_bit: the
 * request's fault (400) or the server's (500). */
static srv_err refuse(srv_req *r, int rfc, int fail_bit, const char *text)
{
	return refuse_as(r, rfc, fail_bit,
			 fail_bit == SRV_TSA_SYSTEM_FAILURE ? SRV_R_INTERNAL
							    : SRV_R_MALFORMED_REQUEST,
			 text);
}

/* refuse, for what a stamp (res) produced: a token out of reach is 503. */
static srv_err refuse_result(srv_req *r, int rfc, const srv_tsa_result *res)
{
	if (res->token_down)
		return refuse_as(r, rfc, res->fail_bit, SRV_R_TOKEN_UNAVAILABLE, res->text);
	return refuse(r, rfc, res->fail_bit, res->text);
}

/* The TSA's signer: its certificate and chain, its key in the token. */
static int tsa_signer(srv_req *r, const srv_tsa *t, srv_cert *c, srv_key *k, srv_tsa_signer *s)
{
	srv_store *st = r->ctx->store;
	if (st->ops->cert_get(st, t->certificate_id, c) != SRV_ST_OK ||
	    st->ops->key_get(st, c->key_id, k) != SRV_ST_OK)
		return -1;
	memset(s, 0, sizeof(*s));
	s->hsm = r->ctx->hsm;
	s->key.alg = k->alg;
	memcpy(s->key.ckid, k->ckid, sizeof(s->key.ckid));
	s->key.spki = k->spki;
	s->key.spki_len = k->spki_len;
	s->cert_pem = c->cert_pem;
	s->chain_pem = c->chain_pem ? c->chain_pem : "";
	s->policy_oid = t->policy_oid;
	s->accuracy_seconds = t->accuracy_seconds;
	return 0;
}

/* 128 random bits, recorded under a UNIQUE constraint before the reply
 * leaves: a serial drawn twice (anywhere, ever) is refused by the store and
 * drawn again. rfc3161: the serial goes into the TSTInfo (stamped again
 * with the new one); authenticode: the protocol has none, the record's
 * serial only names it. 0: recorded, res->der is the answer; 1: refused,
 * *e is the refusal's outcome (refuse). */
static int stamp_and_record(srv_req *r, const srv_tsa *t, const srv_tsa_signer *s, time_t now,
			    const unsigned char *body, size_t len, int rfc, srv_tsa_result *res,
			    srv_err *e)
{
	for (int i = 0;; i++) {
		unsigned char serial[SRV_TSA_SERIAL_LEN];
		if (i == TSA_SERIAL_TRIES || RAND_bytes(serial, sizeof(serial)) != 1) {
			*e = refuse(r, rfc, SRV_TSA_SYSTEM_FAILURE, "no unique serial number");
			return 1;
		}
		serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
		srv_tsa_result_free(res);
		int rc = rfc ? srv_tsa_stamp(s, body, len, serial, now, res)
			     : srv_tsa_authenticode(s, body, len, now, res);
		if (rc != 0) {
			*e = refuse_result(r, rfc, res);
			return 1;
		}
		if (!rfc) {
			char hex[2 * SRV_TSA_SERIAL_LEN + 1];
			rs_hex_encode(serial, sizeof(serial), hex);
			for (char *c = hex; *c; c++)
				*c = (char)toupper((unsigned char)*c);
			rs_strlcpy(res->serial, hex, sizeof(res->serial));
		}
		srv_timestamp rec = {.created_at = now};
		rs_strlcpy(rec.tsa_id, t->id, sizeof(rec.tsa_id));
		rs_strlcpy(rec.serial, res->serial, sizeof(rec.serial));
		rs_strlcpy(rec.imprint_alg, res->imprint_alg, sizeof(rec.imprint_alg));
		rs_strlcpy(rec.imprint, res->imprint, sizeof(rec.imprint));
		rs_strlcpy(rec.protocol, rfc ? "rfc3161" : "authenticode", sizeof(rec.protocol));
		rs_strlcpy(rec.actor_name, r->actor.name ? r->actor.name : "",
			   sizeof(rec.actor_name));
		rs_strlcpy(rec.source_ip, r->source_ip, sizeof(rec.source_ip));
		srv_st_rc rc2 = r->ctx->store->ops->timestamp_insert(r->ctx->store, &rec);
		if (rc2 == SRV_ST_CONFLICT) {
			rs_warn("tsa %s: serial %s was issued before; drawing another", t->name,
				res->serial);
			continue;
		}
		if (rc2 != SRV_ST_OK) {
			*e = refuse(r, rfc, SRV_TSA_SYSTEM_FAILURE,
				    "the timestamp cannot be recorded");
			return 1;
		}
		return 0;
	}
}

/* The base64 of an Authenticode request, whitespace (line breaks) allowed,
 * decoded into out (SRV_TSA_QUERY_MAX bytes). 0 or -1. */
static int b64_lines_decode(const unsigned char *in, size_t len, unsigned char *out,
			    size_t *out_len)
{
	char *clean = malloc(len + 1);
	size_t n = 0;
	int rc;
	if (!clean)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!isspace(in[i]))
			clean[n++] = (char)in[i];
	clean[n] = '\0';
	rc = n ? rs_b64_decode(clean, n, out, SRV_TSA_QUERY_MAX, out_len) : -1;
	free(clean);
	return rc;
}

/* der as base64 in lines of 64 characters, as the legacy clients read it
 * (OpenSSL's base64 BIO). malloc'd, NULL when out of memory. */
static char *b64_lines(const unsigned char *der, size_t len, size_t *out_len)
{
	char *one = rs_b64_encode(der, len), *s;
	size_t n, k = 0;
	if (!one)
		return NULL;
	n = strlen(one);
	if ((s = malloc(n + n / 64 + 2)) != NULL) {
		for (size_t i = 0; i < n; i++) {
			s[k++] = one[i];
			if (i % 64 == 63)
				s[k++] = '\n';
		}
		if (!k || s[k - 1] != '\n')
			s[k++] = '\n';
		s[k] = '\0';
		*out_len = k;
	}
	free(one);
	return s;
}

/* Both protocols: the TSA, its token when requireAuth, the query, the
 * clock, the signer; then the stamp, recorded, and the answer. */
static srv_err tsa_serve(srv_req *r, int rfc)
{
	srv_tsa t = {0};
	srv_cert c = {0};
	srv_key k = {0};
	srv_tsa_signer s;
	srv_tsa_result res = {0};
	unsigned char *legacy = NULL;
	const unsigned char *body = r->body;
	size_t len = r->body_len;
	int granted = 0;
	srv_err e;
	if ((e = tsa_load(r, &t)) != SRV_OK)
		return e; /* no such TSA: not counted, so the labels stay the TSAs' names */
	if (t.require_auth && (e = srv_authenticate(r)) != SRV_OK)
		goto out;
	const char *ct = srv_header(r, "Content-Type");
	if (rfc && ct && strncasecmp(ct, "application/timestamp-query", 27) != 0) {
		e = refuse(r, rfc, SRV_TSA_BAD_REQUEST,
			   "the query's Content-Type is not application/timestamp-query");
		goto out;
	}
	if (!rfc) {
		if (!(legacy = malloc(SRV_TSA_QUERY_MAX))) {
			e = srv_fail(r, SRV_R_INTERNAL, "out of memory");
			goto out;
		}
		if (b64_lines_decode(r->body, r->body_len, legacy, &len) != 0) {
			e = refuse(r, rfc, SRV_TSA_BAD_DATA_FORMAT,
				   "the request is not base64 of at most 16384 bytes");
			goto out;
		}
		body = legacy;
	} else if (srv_tsa_check_query(t.policy_oid, body, len, &res) != 0) {
		e = refuse_result(r, rfc, &res);
		goto out;
	}
	if (r->ctx->tsa_require_synced_clock && !clock_synced()) {
		rs_warn("tsa %s: refusing to timestamp: the system clock is not synchronised "
			"(adjtimex); set tsa_require_synced_clock = false to stamp anyway",
			t.name);
		e = refuse_as(r, rfc, SRV_TSA_SYSTEM_FAILURE, SRV_R_CLOCK_UNSYNCHRONISED,
			      "the TSA's clock is not synchronised");
		goto out;
	}
	if (tsa_signer(r, &t, &c, &k, &s) != 0) {
		e = refuse(r, rfc, SRV_TSA_SYSTEM_FAILURE,
			   "the TSA's certificate or key cannot be read");
		goto out;
	}
	time_t now = time(NULL);
	if (now < c.not_before || now >= c.not_after) {
		rs_warn("tsa %s: its certificate is not valid now", t.name);
		e = refuse(r, rfc, SRV_TSA_SYSTEM_FAILURE,
			   "the TSA's certificate is not valid now");
		goto out;
	}
	if (stamp_and_record(r, &t, &s, now, body, len, rfc, &res, &e) != 0)
		goto out;
	granted = 1;
	if (rfc) {
		e = reply(r, res.der, res.der_len);
		res.der = NULL;
	} else {
		size_t n = 0;
		char *text = b64_lines(res.der, res.der_len, &n);
		if (!text) {
			e = srv_fail(r, SRV_R_INTERNAL, "out of memory");
			goto out;
		}
		e = reply(r, (unsigned char *)text, n);
		r->content_type = "application/octet-stream";
	}
out:;
	const char *labels[] = {"tsa",	    t.name ? t.name : "",
				"protocol", rfc ? "rfc3161" : "authenticode",
				"status",   granted ? "granted" : "rejected",
				NULL};
	rs_metric_add(&rs_m_timestamp_total, 1, labels);
	free(legacy);
	srv_tsa_result_free(&res);
	srv_cert_clear(&c);
	srv_key_clear(&k);
	srv_tsa_clear(&t);
	return e;
}

srv_err api_tsa_stamp(srv_req *r, cJSON **out)
{
	(void)out;
	return tsa_serve(r, 1);
}

srv_err api_tsa_authenticode(srv_req *r, cJSON **out)
{
	(void)out;
	return tsa_serve(r, 0);
}
