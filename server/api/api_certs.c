/* /pki/certificates and /pki/ca: importing certificates from any CA, and
 * issuing code-signing certificates from the built-in CA in the token. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/hsm/pki.h"

/* "profile": "codeSigning" (the default) or "tsa" (critical extended key
 * usage timeStamping only, for a time-stamp authority). */
static srv_err read_profile(srv_req *r, const cJSON *j, srv_pki_profile *out)
{
	const char *p = NULL;
	*out = SRV_PKI_CODE_SIGNING;
	if (rs_json_str(j, "profile", 0, 32, &p) != RS_JSON_OK ||
	    (p && strcmp(p, "codeSigning") != 0 && strcmp(p, "tsa") != 0))
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"profile must be \"codeSigning\" or \"tsa\"");
	if (p && strcmp(p, "tsa") == 0)
		*out = SRV_PKI_TSA;
	return SRV_OK;
}

static cJSON *cert_json(const srv_cert *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", c->id);
	cJSON_AddStringToObject(o, "keyId", c->key_id);
	cJSON_AddStringToObject(o, "commonName", c->common_name ? c->common_name : "");
	cJSON_AddStringToObject(o, "serialNumber", c->serial ? c->serial : "");
	srv_json_time(o, "notBefore", c->not_before);
	srv_json_time(o, "notAfter", c->not_after);
	cJSON_AddStringToObject(o, "keyAlgorithm", rs_key_alg_name(c->key_alg));
	cJSON_AddStringToObject(o, "certificatePem", c->cert_pem ? c->cert_pem : "");
	cJSON_AddStringToObject(o, "chainPem", c->chain_pem ? c->chain_pem : "");
	srv_json_time(o, "createdAt", c->created_at);
	return o;
}

/* Stores a checked certificate for key k, audited as action, and answers
 * with it. */
static srv_err store_cert(srv_req *r, const srv_key *k, srv_cert_info *ci, const char *action,
			  cJSON **out)
{
	srv_cert c = {0};
	srv_audit a = {0};
	char when[RS_TIME_LEN];
	if (rs_uuid(c.id) != 0)
		return srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
	rs_strlcpy(c.key_id, k->id, sizeof(c.key_id));
	c.key_alg = k->alg;
	c.common_name = ci->common_name;
	c.serial = ci->serial;
	c.not_before = ci->not_before;
	c.not_after = ci->not_after;
	c.cert_pem = ci->cert_pem;
	c.chain_pem = ci->chain_pem;
	c.created_at = time(NULL);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "keyId", k->id);
	cJSON_AddStringToObject(d, "commonName", c.common_name ? c.common_name : "");
	cJSON_AddStringToObject(d, "serialNumber", c.serial ? c.serial : "");
	rs_time_format(c.not_after, when);
	cJSON_AddStringToObject(d, "notAfter", when);
	if (api_audit_entry(r, &a, action, "certificate", c.id, d) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->cert_insert(r->ctx->store, &c, &a);
	api_audit_done(&a);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot store the certificate");
	rs_info("certificate %s (CN=%s, key %s) stored by %s", c.id, c.common_name, k->name,
		r->actor.name);
	*out = cert_json(&c);
	r->status = 201;
	return SRV_OK;
}

srv_err api_cert_import(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	const char *pem = NULL, *chain = NULL;
	srv_cert_info ci = {0};
	srv_key k = {0};
	char err[256] = "";
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	srv_pki_profile profile;
	if ((e = read_profile(r, j, &profile)) != SRV_OK)
		goto out;
	if (rs_json_str(j, "certificatePem", 1, 32768, &pem) != RS_JSON_OK ||
	    rs_json_str(j, "chainPem", 0, 65536, &chain) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "certificatePem (and optional chainPem) must be PEM strings");
		goto out;
	}
	if (srv_pki_parse_cert_as(pem, chain, profile, &ci, err, sizeof(err)) != 0) {
		e = srv_fail(r, SRV_R_INVALID_CERTIFICATE, "%s",
			     err[0] ? err : "the certificate is invalid");
		goto out;
	}
	srv_st_rc rc = st->ops->key_find_spki(st, ci.spki, ci.spki_len, &k);
	if (rc == SRV_ST_NOT_FOUND ||
	    (rc == SRV_ST_OK && srv_hsm_key_exists(r->ctx->hsm, k.ckid) != SRV_HSM_OK)) {
		e = srv_fail(r, SRV_R_UNKNOWN_KEY,
			     "the certificate's public key matches no key in the token");
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot read keys");
		goto out;
	}
	e = store_cert(r, &k, &ci, "certificate.import", out);
out:
	srv_cert_info_free(&ci);
	srv_key_clear(&k);
	cJSON_Delete(j);
	return e;
}

/* ttlDays, or explicit notBefore/notAfter (RFC 3339) for back-dating. */
static srv_err issue_validity(srv_req *r, const cJSON *j, time_t *nb, time_t *na)
{
	long long days = 365;
	const char *snb = NULL, *sna = NULL;
	if (rs_json_int(j, "ttlDays", 0, 1, 3650, &days) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "ttlDays must be between 1 and 3650");
	if (rs_json_str(j, "notBefore", 0, 40, &snb) != RS_JSON_OK ||
	    rs_json_str(j, "notAfter", 0, 40, &sna) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD, "notBefore and notAfter must be strings");
	time_t now = time(NULL);
	*nb = now - 300; /* tolerate clocks a little behind ours */
	*na = now + (time_t)days * 86400;
	if (snb && rs_time_parse(snb, nb) != 0)
		return srv_fail(r, SRV_R_INVALID_FIELD, "notBefore is not an RFC 3339 time");
	if (sna && rs_time_parse(sna, na) != 0)
		return srv_fail(r, SRV_R_INVALID_FIELD, "notAfter is not an RFC 3339 time");
	if (*na <= *nb)
		return srv_fail(r, SRV_R_INVALID_FIELD, "notAfter must be after notBefore");
	if (*na > r->ctx->ca_not_after) {
		char ca[RS_TIME_LEN];
		rs_time_format(r->ctx->ca_not_after, ca);
		return srv_fail(r, SRV_R_OUTLIVES_CA,
				"the certificate would outlive the built-in CA (valid until %s)",
				ca);
	}
	return SRV_OK;
}

static void pki_key(const srv_key *k, srv_pki_key *pk)
{
	pk->alg = k->alg;
	memcpy(pk->ckid, k->ckid, sizeof(pk->ckid));
	pk->spki = k->spki;
	pk->spki_len = k->spki_len;
}

srv_err api_cert_issue(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	const char *key_id = NULL, *cn = NULL;
	srv_key k = {0}, ca = {0};
	srv_cert_info ci = {0};
	char *pem = NULL;
	char err[256] = "";
	time_t nb, na;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_str(j, "keyId", 1, 64, &key_id) != RS_JSON_OK ||
	    rs_json_str(j, "commonName", 1, 64, &cn) != RS_JSON_OK || !*cn) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "keyId and commonName (1-64 characters) are required");
		goto out;
	}
	srv_pki_profile profile;
	if ((e = read_profile(r, j, &profile)) != SRV_OK ||
	    (e = issue_validity(r, j, &nb, &na)) != SRV_OK)
		goto out;
	srv_st_rc rc = st->ops->key_get(st, key_id, &k);
	if (rc == SRV_ST_NOT_FOUND) {
		e = srv_fail(r, SRV_R_UNKNOWN_REFERENCE, "keyId \"%s\" names no key", key_id);
		goto out;
	}
	if (rc == SRV_ST_OK)
		rc = st->ops->key_get(st, r->ctx->ca_key_id, &ca);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot read the keys");
		goto out;
	}
	if (strcmp(k.id, ca.id) == 0) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "the CA's own key cannot get a certificate of its own");
		goto out;
	}
	srv_pki_key pk, pca;
	pki_key(&k, &pk);
	pki_key(&ca, &pca);
	int prc = srv_pki_issue_as(r->ctx->hsm, &pca, r->ctx->ca_cert_pem, &pk, profile, cn, nb, na,
				   &pem, err, sizeof(err));
	if (prc != SRV_PKI_OK) {
		e = srv_fail(r, srv_reason_from_pki(prc), "%s",
			     err[0] ? err : "cannot issue the certificate");
		goto out;
	}
	/* what was just issued must pass the checks an import would */
	if (srv_pki_parse_cert_as(pem, r->ctx->ca_cert_pem, profile, &ci, err, sizeof(err)) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "the issued certificate fails its own checks: %s",
			     err);
		goto out;
	}
	e = store_cert(r, &k, &ci, "certificate.issue", out);
out:
	free(pem);
	srv_cert_info_free(&ci);
	srv_key_clear(&k);
	srv_key_clear(&ca);
	cJSON_Delete(j);
	return e;
}

srv_err api_cert_list(srv_req *r, cJSON **out)
{
	srv_cert *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->cert_list(r->ctx->store, offset, limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list certificates");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "certificates");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cert_json(&v[i]));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_cert_list_free(v, n);
	return SRV_OK;
}

srv_err api_cert_get(srv_req *r, cJSON **out)
{
	srv_cert c = {0};
	srv_st_rc rc = r->ctx->store->ops->cert_get(r->ctx->store, r->params[0], &c);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no certificate \"%s\"", r->params[0]);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the certificate");
	*out = cert_json(&c);
	srv_cert_clear(&c);
	return SRV_OK;
}

srv_err api_ca_get(srv_req *r, cJSON **out)
{
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "certificatePem", r->ctx->ca_cert_pem);
	return SRV_OK;
}
