/* /pki/signers/{id}/requests and /pki/signing-requests: an operator asks
 * for signings with a justification; the policy's approvers approve or
 * reject; enough approvals create a grant for the requester. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/api/access.h"

static cJSON *request_json(const srv_request *q)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", q->id);
	cJSON_AddStringToObject(o, "signerId", q->signer_id);
	cJSON_AddStringToObject(o, "policyId", q->policy_id);
	cJSON_AddStringToObject(o, "requesterId", q->requester_id);
	cJSON_AddStringToObject(o, "requesterName", q->requester_name ? q->requester_name : "");
	cJSON_AddStringToObject(o, "justification", q->justification ? q->justification : "");
	if (q->signings)
		cJSON_AddNumberToObject(o, "requestedSignings", (double)q->signings);
	else
		cJSON_AddNullToObject(o, "requestedSignings");
	if (q->window)
		cJSON_AddNumberToObject(o, "requestedWindowDuration", (double)q->window);
	else
		cJSON_AddNullToObject(o, "requestedWindowDuration");
	cJSON_AddStringToObject(o, "status", q->status);
	cJSON_AddNumberToObject(o, "approvals", q->approvals);
	srv_json_time(o, "createdAt", q->created_at);
	srv_json_time(o, "expiresAt", q->expires_at);
	srv_json_time(o, "closedAt", q->closed_at);
	if (q->grant_id[0])
		cJSON_AddStringToObject(o, "grantId", q->grant_id);
	else
		cJSON_AddNullToObject(o, "grantId");
	return o;
}

/* request_json with the signer's name beside its id ("signerName", null
 * when the signer cannot be read): an approver who is no member of the
 * signer cannot look it up, yet is asked to approve signings with it.
 * last (NULL = none) remembers one lookup across a list's rows. */
typedef struct {
	srv_id id;
	char name[128];
	int found;
} signer_name_memo;

static cJSON *request_out(srv_req *r, const srv_request *q, signer_name_memo *last)
{
	signer_name_memo one = {.found = 0};
	signer_name_memo *m = last ? last : &one;
	cJSON *o = request_json(q);

	if (!m->id[0] || strcmp(m->id, q->signer_id) != 0) {
		srv_signer s = {0};
		rs_strlcpy(m->id, q->signer_id, sizeof(m->id));
		m->found = r->ctx->store->ops->signer_get(r->ctx->store, q->signer_id, &s) ==
				   SRV_ST_OK &&
			   s.name;
		if (m->found)
			rs_strlcpy(m->name, s.name, sizeof(m->name));
		srv_signer_clear(&s);
	}
	if (m->found)
		cJSON_AddStringToObject(o, "signerName", m->name);
	else
		cJSON_AddNullToObject(o, "signerName");
	return o;
}

/* requestedSignings / requestedWindowDuration within the policy's limits;
 * omitted ones take the limit. */
static srv_err read_wanted(srv_req *r, const cJSON *j, const srv_policy *p, srv_request *q)
{
	long long s = 0, w = 0;
	if (rs_json_int(j, "requestedSignings", 0, 1, 1000000000, &s) != RS_JSON_OK ||
	    rs_json_int(j, "requestedWindowDuration", 0, 1, 315360000, &w) != RS_JSON_OK)
		return srv_fail(r, SRV_R_INVALID_FIELD,
				"requestedSignings and requestedWindowDuration must be positive "
				"whole numbers");
	if (p->max_signings && s > p->max_signings)
		return srv_fail(r, SRV_R_EXCEEDS_POLICY,
				"requestedSignings exceeds the policy's maxSignings (%lld)",
				p->max_signings);
	if (p->max_window && w > p->max_window)
		return srv_fail(
			r, SRV_R_EXCEEDS_POLICY,
			"requestedWindowDuration exceeds the policy's maxWindowDuration (%lld)",
			p->max_window);
	q->signings = s ? s : p->max_signings;
	q->window = w ? w : p->max_window;
	return SRV_OK;
}

srv_err api_request_create(srv_req *r, cJSON **out)
{
	srv_signer s = {0};
	srv_policy p = {0};
	srv_request q = {0};
	srv_audit a = {0};
	const char *why = NULL;
	srv_err e;
	cJSON *j = srv_body_json(r);
	if (!j)
		return r->err;
	if ((e = api_signer_load(r, srv_may_sign, &s)) != SRV_OK)
		goto out;
	if (!s.policy_id[0]) {
		e = srv_fail(r, SRV_R_NO_POLICY,
			     "signer %s has no signing policy: it signs without approval", s.name);
		goto out;
	}
	if ((e = api_policy_load(r, s.policy_id, &p)) != SRV_OK)
		goto out;
	if (rs_json_str(j, "justification", 1, 1024, &why) != RS_JSON_OK || !*why) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "justification (1-1024 characters) is required");
		goto out;
	}
	if ((e = read_wanted(r, j, &p, &q)) != SRV_OK)
		goto out;
	if (rs_uuid(q.id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	memcpy(q.signer_id, s.id, sizeof(q.signer_id));
	memcpy(q.policy_id, p.id, sizeof(q.policy_id));
	memcpy(q.requester_id, r->actor.id, sizeof(q.requester_id));
	q.requester_name = r->actor.name;
	q.justification = (char *)why;
	rs_strlcpy(q.status, "pending", sizeof(q.status));
	q.created_at = time(NULL);
	q.expires_at = q.created_at + p.request_ttl;
	if ((e = api_audit_entry(r, &a, "request.create", "request", q.id, request_json(&q))) !=
	    SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->request_insert(r->ctx->store, &q, &a);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot store the request");
		goto out;
	}
	*out = request_out(r, &q, NULL);
	cJSON_AddNumberToObject(*out, "requiredApprovals", p.required_approvals);
	rs_info("signing request %s on %s by %s", q.id, s.name, r->actor.name);
	r->status = 201;
out:
	api_audit_done(&a);
	q.requester_name = NULL;
	q.justification = NULL;
	srv_signer_clear(&s);
	srv_policy_clear(&p);
	cJSON_Delete(j);
	return e;
}

static srv_err load_request(srv_req *r, srv_request *q)
{
	srv_st_rc rc = r->ctx->store->ops->request_get(r->ctx->store, r->params[0], time(NULL), q);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no signing request \"%s\"", r->params[0]);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the request");
	srv_reason why = srv_may_see_request(r, q);
	if (why != SRV_R_NONE) {
		srv_request_clear(q);
		return srv_fail(r, why, "no signing request \"%s\"", r->params[0]);
	}
	return SRV_OK;
}

static cJSON *decisions_json(srv_req *r, const char *request_id)
{
	srv_decision *v = NULL;
	size_t n = 0;
	cJSON *arr = cJSON_CreateArray();
	if (r->ctx->store->ops->decision_list(r->ctx->store, request_id, &v, &n) != SRV_ST_OK)
		return arr;
	for (size_t i = 0; i < n; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "approverId", v[i].approver_id);
		cJSON_AddStringToObject(d, "approverName",
					v[i].approver_name ? v[i].approver_name : "");
		cJSON_AddStringToObject(d, "decision", v[i].approve ? "approve" : "reject");
		cJSON_AddStringToObject(d, "comment", v[i].comment ? v[i].comment : "");
		srv_json_time(d, "createdAt", v[i].created_at);
		cJSON_AddItemToArray(arr, d);
	}
	srv_decision_list_free(v, n);
	return arr;
}

srv_err api_request_get(srv_req *r, cJSON **out)
{
	srv_request q = {0};
	if (load_request(r, &q) != SRV_OK)
		return r->err;
	*out = request_out(r, &q, NULL);
	cJSON_AddItemToObject(*out, "decisions", decisions_json(r, q.id));
	srv_request_clear(&q);
	return SRV_OK;
}

/* Filtered in SQL with srv_visible_to: what srv_may_see_request allows. */
srv_err api_request_list(srv_req *r, cJSON **out)
{
	srv_request *v = NULL;
	size_t n = 0, total = 0, offset, limit;
	const char *signer = srv_query(r, "signerId"), *status = srv_query(r, "status");
	srv_id sid;
	if (srv_paging(r, &offset, &limit) != SRV_OK || api_signer_query(r, &signer, sid) != SRV_OK)
		return r->err;
	srv_st_rc rc =
		r->ctx->store->ops->request_list(r->ctx->store, signer, status, srv_visible_to(r),
						 time(NULL), offset, limit, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list requests");
	*out = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(*out, "requests");
	signer_name_memo last = {.found = 0};
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, request_out(r, &v[i], &last));
	cJSON_AddNumberToObject(*out, "totalCount", (double)total);
	srv_request_list_free(v, n);
	return SRV_OK;
}

/* The policy the request must still be under: its signer's current one. */
static srv_err load_policy_in_force(srv_req *r, const srv_request *q, srv_policy *p)
{
	srv_signer s = {0};
	srv_st_rc rc = r->ctx->store->ops->signer_get(r->ctx->store, q->signer_id, &s);
	int moved = rc == SRV_ST_NOT_FOUND ||
		    (rc == SRV_ST_OK && (s.retired_at || strcmp(s.policy_id, q->policy_id) != 0));
	srv_signer_clear(&s);
	if (moved)
		return srv_fail(r, SRV_R_STATE_CONFLICT,
				"request %s was made under a policy its signer no longer has",
				q->id);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot read the signer");
	return api_policy_load(r, q->policy_id, p);
}

/* The store's refusal of a decision, as the API says it. */
static srv_err decide_refused(srv_req *r, srv_decide_why why, const srv_request *q,
			      const srv_policy *p)
{
	switch (why) {
	case SRV_DECIDE_NOT_APPROVER:
		return srv_fail(r, SRV_R_NOT_APPROVER, "%s is not an approver of policy %s",
				r->actor.name, p->name);
	case SRV_DECIDE_OWN:
		return srv_fail(r, SRV_R_OWN_REQUEST, "nobody approves their own request");
	case SRV_DECIDE_POLICY_CHANGED:
		return srv_fail(r, SRV_R_STATE_CONFLICT,
				"request %s was made under a policy its signer no longer has",
				q->id);
	case SRV_DECIDE_TWICE:
		return srv_fail(r, SRV_R_STATE_CONFLICT, "%s decided request %s already",
				r->actor.name, q->id);
	default:
		return srv_fail(r, SRV_R_STATE_CONFLICT, "request %s is no longer pending", q->id);
	}
}

/* approve and reject: listed user approvers of the policy in force, never
 * the requester; checked here for the answer and again by the store in the
 * transaction that records the decision. */
static srv_err decide(srv_req *r, int approve, cJSON **out)
{
	srv_request q = {0}, after = {0};
	srv_policy p = {0};
	srv_audit a = {0};
	const char *comment = "";
	srv_err e;
	cJSON *j = r->body_len ? srv_body_json(r) : cJSON_CreateObject();
	if (!j)
		return r->err;
	if (rs_json_str(j, "comment", 0, 1024, &comment) != RS_JSON_OK) {
		e = srv_fail(r, SRV_R_INVALID_FIELD,
			     "comment must be a string of at most 1024 characters");
		goto out;
	}
	if ((e = load_request(r, &q)) != SRV_OK || (e = load_policy_in_force(r, &q, &p)) != SRV_OK)
		goto out;
	srv_reason why = srv_may_decide(r, &q, &p);
	if (why == SRV_R_OWN_REQUEST) {
		e = srv_fail(r, why, "nobody approves their own request");
		goto out;
	}
	if (why != SRV_R_NONE) {
		e = srv_fail(r, why, "%s is not an approver of policy %s", r->actor.name, p.name);
		goto out;
	}
	time_t now = time(NULL);
	srv_decision d = {.approve = approve,
			  .comment = (char *)comment,
			  .created_at = now,
			  .approver_name = r->actor.name};
	memcpy(d.request_id, q.id, sizeof(d.request_id));
	memcpy(d.approver_id, r->actor.id, sizeof(d.approver_id));
	char grant_id[RS_UUID_LEN];
	if (rs_uuid(grant_id) != 0) {
		e = srv_fail(r, SRV_R_INTERNAL, "no randomness for an id");
		goto out;
	}
	cJSON *detail = cJSON_CreateObject();
	cJSON_AddStringToObject(detail, "decision", approve ? "approve" : "reject");
	cJSON_AddStringToObject(detail, "comment", comment);
	cJSON_AddStringToObject(detail, "policyId", p.id);
	if ((e = api_audit_entry(r, &a, approve ? "request.approve" : "request.reject", "request",
				 q.id, detail)) != SRV_OK)
		goto out;
	a.created_at = now;
	srv_decide_why refused = SRV_DECIDE_OK;
	srv_st_rc rc = r->ctx->store->ops->request_decide(r->ctx->store, &d, grant_id, now, &after,
							  &refused, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = decide_refused(r, refused, &q, &p);
		goto out;
	}
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot record the decision");
		goto out;
	}
	*out = request_out(r, &after, NULL);
	if (after.grant_id[0])
		rs_info("grant %s created for %s on signer %s", after.grant_id, q.requester_name,
			q.signer_id);
out:
	api_audit_done(&a);
	srv_request_clear(&q);
	srv_request_clear(&after);
	srv_policy_clear(&p);
	cJSON_Delete(j);
	return e;
}

srv_err api_request_approve(srv_req *r, cJSON **out)
{
	return decide(r, 1, out);
}

srv_err api_request_reject(srv_req *r, cJSON **out)
{
	return decide(r, 0, out);
}

srv_err api_request_cancel(srv_req *r, cJSON **out)
{
	srv_request q = {0};
	srv_audit a = {0};
	if (load_request(r, &q) != SRV_OK)
		return r->err;
	srv_err e = SRV_OK;
	srv_reason why = srv_may_cancel(r, &q);
	if (why != SRV_R_NONE) {
		e = srv_fail(r, why, "only the requester or an admin cancels a request");
		goto out;
	}
	if ((e = api_audit_entry(r, &a, "request.cancel", "request", q.id, NULL)) != SRV_OK)
		goto out;
	srv_st_rc rc = r->ctx->store->ops->request_close(r->ctx->store, q.id, "cancelled",
							 a.created_at, &a);
	if (rc == SRV_ST_CONFLICT) {
		e = srv_fail(r, SRV_R_STATE_CONFLICT, "request %s is %s, not pending", q.id,
			     q.status);
		goto out;
	}
	srv_request_clear(&q);
	if (rc == SRV_ST_OK)
		rc = r->ctx->store->ops->request_get(r->ctx->store, r->params[0], time(NULL), &q);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot cancel the request");
		goto out;
	}
	*out = request_out(r, &q, NULL);
out:
	api_audit_done(&a);
	srv_request_clear(&q);
	return e;
}
