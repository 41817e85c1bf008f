/* /pki/signers: named code-signers bound to a code-signing certificate;
 * their public key and certificate chain; who may use them (members).
 * Signers are retired, never erased: a retired one signs no more and frees
 * its name, and its history stays readable by admins and its members. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/api/access.h"
#include "server/hsm/pki.h"

static cJSON *signer_json(const srv_signer *s, int can_sign)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "description", s->description ? s->description : "");
	cJSON_AddStringToObject(o, "status",
				s->retired_at ? "retired"
				: s->enabled  ? "enabled"
					      : "disabled");
	cJSON_AddStringToObject(o, "certificateId", s->certificate_id);
	if (s->policy_id[0])
		cJSON_AddStringToObject(o, "policyId", s->policy_id);
	else
		cJSON_AddNullToObject(o, "policyId");
	cJSON_AddStringToObject(o, "keyAlgorithm", rs_key_alg_name(s->key_alg));
	srv_json_time(o, "certificateNotAfter", s->cert_not_after);
	srv_json_time(o, "createdAt", s->created_at);
	srv_json_time(o, "lastSignedAt", s->last_signed_at);
	srv_json_time(o, "retiredAt", s->retired_at);
	cJSON_AddBoolToObject(o, "canSign", can_sign && !s->retired_at);
	return o;
}

/* An id, or null for "" (policyId). */
static void add_id(cJSON *o, const char *name, const char *id)
{
	if (id[0])
		cJSON_AddStringToObject(o, name, id);
	else
		cJSON_AddNullToObject(o, name);
}

static cJSON *member_detail(const srv_principal *p, const char *role)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "principalId", p->id);
	cJSON_AddStringToObject(d, "principalName", p->name ? p->name : "");
	if (role)
		cJSON_AddStringToObject(d, "role", role);
	return d;
}

srv_err api_signer_load(srv_req *r, api_signer_rule may, srv_signer *s)
{
	srv_store *st = r->ctx->store;
	srv_st_rc rc = st->ops->signer_get(st, r->params[0], s);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no signer \"%s\"", r->params[0]);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the signer");
	srv_reason why = may ? may(r, s->id) : SRV_R_NONE;
	srv_err e = SRV_OK;
	if (why == SRV_R_NOT_FOUND) /* as if it did not exist */
		e = srv_fail(r, why, "no signer \"%s\"", r->params[0]);
	else if (why != SRV_R_NONE)
		e = srv_fail(r, why, "%s may not %s signer %s", r->actor.name,
			     may == srv_may_sign ? "sign with" : "read", r->params[0]);
	else if (may == srv_may_sign && s->retired_at)
		e = srv_fail(r, SRV_R_NOT_FOUND, "signer %s is retired", r->params[0]);
	if (e != SRV_OK)
		srv_signer_clear(s);
	return e;
}

srv_err api_signer_query(srv_req *r, const char **signer, srv_id id)
{
	srv_signer s = {0};
	if (!*signer)
		return SRV_OK;
	srv_st_rc rc = r->ctx->store->ops->signer_get(r->ctx->store, *signer, &s);
	if (rc == SRV_ST_OK) {
		memcpy(id, s.id, sizeof(srv_id));
		*signer = id;
	}
	srv_signer_clear(&s);
	if (rc != SRV_ST_OK && rc != SRV_ST_NOT_FOUND)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the signer");
	return SRV_OK;
}

/* Reads the policyId field: absent leaves *out, null clears it, otherwise
 * it must name a policy (by id or name). */
static srv_err read_policy(srv_req *r, const cJSON *j, char *out, size_t outlen)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "policyId");
	if (!p)
		return SRV_OK;
	if (cJSON_IsNull(p)) {
		out[0] = '\0';
		return SRV_OK;
	}
	if (!cJSON_IsString(p) || strlen(p->valuestring) > 64)
		return srv_fail(r, SRV_R_INVALID_FIELD, "policyId must be a string or null");
	srv_policy pol = {0};
	srv_st_rc rc = r->ctx->store->ops->policy_get(r->ctx->store, p->valuestring, &pol);
	if (rc == SRV_ST_OK)
		rs_strlcpy(out, pol.id, outlen);
	srv_policy_clear(&pol);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_UNKNOWN_REFERENCE,
				"policyId \"%s\" names no signing policy", p->valuestring);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the policy");
	return SRV_OK;
}

/* The certificate must exist; returns 400 otherwise (a body field, not the URL). */
static srv_err check_cert(srv_req *r, const char *id)
{
	srv_cert c = {0};
	srv_st_rc rc = r->ctx->store->ops->cert_get(r->ctx->store, id, &c);
	srv_cert_clear(&c);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_UNKNOWN_REFERENCE,
				"certificateId \"%s\" names no certificate", id);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the certificate");
	return SRV_OK;
}

srv_err api_signer_create(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	const char *name = NULL, *desc = "", *cert = NULL;
	srv_signer s = {0}, got = {0};
	srv_audit a = {0};
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_str(j, "name", 1, 64, &name) != RS_JSON_OK || !rs_is_slug(name)) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "name must match ^[a-z0-9][a-z0-9-]{0,63}$ (e.g. release-signer)");
		goto out;
	}
	if (rs_json_str(j, "description", 0, 1024, &desc) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "description must be a string of at most 1024 characters");
		goto out;
	}
	if (rs_json_str(j, "certificateId", 1, 64, &cert) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "certificateId is required");
		goto out;
	}
	if ((e = read_policy(r, j, s.policy_id, sizeof(s.policy_id))) != SRV_OK ||
	    (e = check_cert(r, cert)) != SRV_OK)
		goto out;
	if (rs_uuid(s.id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	s.name = (char *)name;
	s.description = (char *)desc;
	s.enabled = 1;
	rs_strlcpy(s.certificate_id, cert, sizeof(s.certificate_id));
	s.created_at = time(NULL);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", name);
	cJSON_AddStringToObject(d, "certificateId", s.certificate_id);
	add_id(d, "policyId", s.policy_id);
	if ((e = api_audit_entry(r, &a, "signer.create", "signer", s.id, d)) != SRV_OK)
		goto out;
	srv_st_rc rc = st->ops->signer_insert(st, &s, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_NAME_TAKEN, "a signer named \"%s\" exists", name);
		goto out;
	}
	if (rc == SRV_ST_OK)
		rc = st->ops->signer_get(st, s.id, &got);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the signer");
		goto out;
	}
	rs_info("signer %s created by %s", name, r->actor.name);
	*out = signer_json(&got, 1);
	r->status = 201;
out:
	api_audit_done(&a);
	srv_signer_clear(&got);
	cJSON_Delete(j);
	return e;
}

srv_err api_signer_list(srv_req *r, cJSON **out)
{
	size_t offset, limit, n = 0, total = 0;
	if (srv_paging(r, &offset, &limit) != SRV_OK)
		return r->err;
	const char *search = srv_query(r, "search");
	const char *cs = srv_query(r, "canSign");
	int sign_only = cs && strcmp(cs, "true") == 0;
	if (cs && !sign_only && strcmp(cs, "false") != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "canSign must be true or false");
	if (search && strlen(search) > 64)
		return srv_fail(r, SRV_R_INVALID_QUERY, "search is at most 64 characters");
	const char *status = srv_query(r, "status");
	if (status && strcmp(status, "enabled") != 0 && strcmp(status, "disabled") != 0 &&
	    strcmp(status, "retired") != 0 && strcmp(status, "any") != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY,
				"status must be enabled, disabled, retired or any");
	srv_signer *v = NULL;
	srv_st_rc rc =
		r->ctx->store->ops->signer_list(r->ctx->store, srv_visible_to(r), sign_only, search,
						status, offset, limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list signers");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "signers");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(
			arr,
			signer_json(&v[i], sign_only || srv_may_sign(r, v[i].id) == SRV_R_NONE));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_signer_list_free(v, n);
	return SRV_OK;
}

srv_err api_signer_get(srv_req *r, cJSON **out)
{
	srv_signer s = {0};
	if (api_signer_load(r, srv_may_read_signer, &s) != SRV_OK)
		return r->err;
	*out = signer_json(&s, srv_may_sign(r, s.id) == SRV_R_NONE);
	srv_signer_clear(&s);
	return SRV_OK;
}

/* {"from": before, "to": after} under field in d, when they differ; ""
 * stands for null (no policy). */
static void add_change(cJSON *d, const char *field, const char *before, const char *after)
{
	if (strcmp(before, after) == 0)
		return;
	cJSON *c = cJSON_AddObjectToObject(d, field);
	add_id(c, "from", before);
	add_id(c, "to", after);
}

/* What a PATCH changed, field by field (the audit entry's detail). */
static cJSON *update_detail(const srv_signer *before, const srv_signer *after)
{
	cJSON *d = cJSON_CreateObject();
	add_change(d, "name", before->name, after->name);
	add_change(d, "description", before->description, after->description);
	add_change(d, "status", before->enabled ? "enabled" : "disabled",
		   after->enabled ? "enabled" : "disabled");
	add_change(d, "certificateId", before->certificate_id, after->certificate_id);
	add_change(d, "policyId", before->policy_id, after->policy_id);
	return d;
}

srv_err api_signer_update(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	srv_signer s = {0}, before = {0}, got = {0};
	srv_audit a = {0};
	const char *name = NULL, *desc = NULL, *status = NULL, *cert = NULL;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (api_signer_load(r, NULL, &s) != SRV_OK) {
		e = r->err;
		goto out;
	}
	if (s.retired_at) {
		e = srv_fail(r, SRV_R_STATE_CONFLICT, "signer %s is retired: it changes no more",
			     s.name);
		goto out;
	}
	if (rs_json_str(j, "name", 0, 64, &name) != RS_JSON_OK || (name && !rs_is_slug(name))) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "name must match ^[a-z0-9][a-z0-9-]{0,63}$");
		goto out;
	}
	if (rs_json_str(j, "description", 0, 1024, &desc) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "description must be a string of at most 1024 characters");
		goto out;
	}
	if (rs_json_str(j, "status", 0, 16, &status) != RS_JSON_OK ||
	    (status && strcmp(status, "enabled") != 0 && strcmp(status, "disabled") != 0)) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "status must be \"enabled\" or \"disabled\"");
		goto out;
	}
	if (rs_json_str(j, "certificateId", 0, 64, &cert) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "certificateId must be a string");
		goto out;
	}
	before = s; /* shares the strings: cleared through s only */
	if ((e = read_policy(r, j, s.policy_id, sizeof(s.policy_id))) != SRV_OK ||
	    (cert && (e = check_cert(r, cert)) != SRV_OK))
		goto out;
	if (name)
		s.name = (char *)name;
	if (desc)
		s.description = (char *)desc;
	if (status)
		s.enabled = strcmp(status, "enabled") == 0;
	if (cert)
		rs_strlcpy(s.certificate_id, cert, sizeof(s.certificate_id));
	if ((e = api_audit_entry(r, &a, "signer.update", "signer", s.id,
				 update_detail(&before, &s))) != SRV_OK)
		goto out;
	srv_st_rc rc = st->ops->signer_update(st, &s, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_NAME_TAKEN, "a signer named \"%s\" exists", name);
		goto out;
	}
	if (rc == SRV_ST_OK)
		rc = st->ops->signer_get(st, s.id, &got);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot update the signer");
		goto out;
	}
	rs_info("signer %s updated by %s", got.name, r->actor.name);
	*out = signer_json(&got, 1);
out:
	api_audit_done(&a);
	if (before.name) { /* give s back the strings it owns */
		s.name = before.name;
		s.description = before.description;
	}
	srv_signer_clear(&s);
	srv_signer_clear(&got);
	cJSON_Delete(j);
	return e;
}

/* DELETE: retires the signer (store.h signer_retire); answers with it. */
srv_err api_signer_retire(srv_req *r, cJSON **out)
{
	srv_signer s = {0}, got = {0};
	srv_audit a = {0};
	srv_err e;
	if (api_signer_load(r, NULL, &s) != SRV_OK)
		return r->err;
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", s.name);
	if ((e = api_audit_entry(r, &a, "signer.retire", "signer", s.id, d)) != SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->signer_retire(r->ctx->store, s.id, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_STATE_CONFLICT, "signer %s is retired already", s.name);
		goto out;
	}
	if (rc == SRV_ST_OK)
		rc = r->ctx->store->ops->signer_get(r->ctx->store, s.id, &got);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot retire the signer");
		goto out;
	}
	rs_info("signer %s retired by %s", s.name, r->actor.name);
	*out = signer_json(&got, 0);
out:
	api_audit_done(&a);
	srv_signer_clear(&s);
	srv_signer_clear(&got);
	return e;
}

srv_err api_signer_public_key(srv_req *r, cJSON **out)
{
	srv_signer s = {0};
	srv_key k = {0};
	if (api_signer_load(r, srv_may_read_signer, &s) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->key_get(r->ctx->store, s.key_id, &k);
	srv_signer_clear(&s);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the signer's key");
	char *pub = srv_pki_b64_der(k.spki, k.spki_len);
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "publicKey", pub ? pub : "");
	cJSON_AddStringToObject(*out, "keyAlgorithm", rs_key_alg_name(k.alg));
	free(pub);
	srv_key_clear(&k);
	return SRV_OK;
}

srv_err api_signer_certificate(srv_req *r, cJSON **out)
{
	srv_signer s = {0};
	srv_cert c = {0};
	if (api_signer_load(r, srv_may_read_signer, &s) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->cert_get(r->ctx->store, s.certificate_id, &c);
	srv_signer_clear(&s);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc),
				"cannot read the signer's certificate");
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "certificatePem", c.cert_pem);
	cJSON_AddStringToObject(*out, "chainPem", c.chain_pem ? c.chain_pem : "");
	srv_cert_clear(&c);
	return SRV_OK;
}

srv_err api_member_add(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_err e = SRV_OK;
	srv_signer s = {0};
	srv_principal p = {0};
	srv_audit a = {0};
	const char *pid = NULL, *role_s = NULL;
	srv_role role;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if (rs_json_str(j, "principalId", 1, 64, &pid) != RS_JSON_OK ||
	    rs_json_str(j, "role", 1, 16, &role_s) != RS_JSON_OK ||
	    srv_role_parse(role_s, &role) != 0) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "principalId and role (\"operator\" or \"auditor\") are required");
		goto out;
	}
	if ((e = api_signer_load(r, NULL, &s)) != SRV_OK)
		goto out;
	srv_st_rc rc = st->ops->principal_get(st, pid, &p);
	if (rc == SRV_ST_NOT_FOUND) {
		e = srv_fail(r, SRV_R_UNKNOWN_REFERENCE, "principalId \"%s\" names no principal",
			     pid);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot read the principal");
		goto out;
	}
	if ((e = api_audit_entry(r, &a, "member.set", "signer", s.id,
				 member_detail(&p, srv_role_name(role)))) != SRV_OK)
		goto out;
	rc = st->ops->member_set(st, s.id, p.id, role, &a);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the membership");
		goto out;
	}
	rs_info("%s is now %s of signer %s (by %s)", p.name, srv_role_name(role), s.name,
		r->actor.name);
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "signerId", s.id);
	cJSON_AddStringToObject(*out, "principalId", p.id);
	cJSON_AddStringToObject(*out, "principalName", p.name);
	cJSON_AddStringToObject(*out, "role", srv_role_name(role));
	r->status = 201;
out:
	api_audit_done(&a);
	srv_signer_clear(&s);
	srv_principal_clear(&p);
	cJSON_Delete(j);
	return e;
}

srv_err api_member_remove(srv_req *r, cJSON **out)
{
	srv_store *st = r->ctx->store;
	srv_signer s = {0};
	srv_principal p = {0};
	srv_audit a = {0};
	srv_err e = SRV_OK;
	if (api_signer_load(r, NULL, &s) != SRV_OK)
		return r->err;
	srv_st_rc rc = st->ops->principal_get(st, r->params[1], &p);
	if (rc == SRV_ST_OK) {
		if ((e = api_audit_entry(r, &a, "member.remove", "signer", s.id,
					 member_detail(&p, NULL))) != SRV_OK)
			goto out;
		rc = st->ops->member_delete(st, s.id, p.id, &a);
	}
	if (rc == SRV_ST_NOT_FOUND)
		e = srv_fail(r, SRV_R_NOT_FOUND, "\"%s\" is not a member of %s", r->params[1],
			     s.name);
	else if (rc != SRV_ST_OK)
		e = srv_fail(r, srv_reason_from_store(rc), "cannot remove the membership");
	else {
		*out = cJSON_CreateObject();
		cJSON_AddStringToObject(*out, "signerId", s.id);
		cJSON_AddStringToObject(*out, "principalId", p.id);
	}
out:
	api_audit_done(&a);
	srv_signer_clear(&s);
	srv_principal_clear(&p);
	return e;
}

srv_err api_member_list(srv_req *r, cJSON **out)
{
	srv_signer s = {0};
	srv_principal *ps = NULL;
	srv_role *roles = NULL;
	size_t n = 0;
	if (api_signer_load(r, srv_may_read_signer, &s) != SRV_OK)
		return r->err;
	srv_st_rc rc = r->ctx->store->ops->member_list(r->ctx->store, s.id, &ps, &roles, &n);
	srv_signer_clear(&s);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list members");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "members");
	for (size_t i = 0; i < n; i++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "principalId", ps[i].id);
		cJSON_AddStringToObject(m, "principalName", ps[i].name ? ps[i].name : "");
		cJSON_AddStringToObject(m, "role", srv_role_name(roles[i]));
		cJSON_AddItemToArray(arr, m);
	}
	srv_principal_list_free(ps, n);
	free(roles);
	return SRV_OK;
}
