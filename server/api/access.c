/* Every "who may" rule of the API, in one place, below the table they
 * implement. Roles: admin (server-wide), operator and auditor (members of
 * one signer), approver (a user listed in a policy), and the requester of
 * a request or grantee of a grant ("own").
 *
 *   action                       admin  operator auditor approver own   other
 *   sign, request approval       yes    yes      403r    403r     -     404
 *   read signer, key, cert,      yes    yes      yes     403r     -     404
 *     history, member list
 *   clientMetadata of a sign     kept   kept     kept    dropped  -     -
 *     attempt
 *   list signers                 all    theirs   theirs  -        -     none
 *   list/get requests            all    signer's signer's signer's own  none/404
 *   approve, reject              (only a listed user approver of the
 *                                 request's policy, 403n; never own, 403o)
 *   cancel a request             yes    403q     403q    403q     yes   404
 *   list grants                  all    signer's signer's signer's own  none
 *   revoke a grant               yes    403n     403n    yes      403n  404
 *   list/get policies            all    their    their   theirs   -     none/404
 *                                       signers' signers'
 *   see a policy's approvers     yes    -        -       yes      -     -
 *   get principal, new token     any    self     self    self     -     404
 *   list/revoke tokens           any    self     self    self     -     404
 *   list/rotate client secrets   any    self     self    self     -     404
 *   principals (list, create,    yes    403a ... (admin only)
 *     delete, disable), keys,
 *     certificates, signer
 *     create/update/retire,
 *     member add/remove,
 *     policy create/update/
 *     delete, audit log,
 *     GET /metrics (also on
 *     metrics_listen, untokened),
 *     GET /log/verify
 *   GET /log/key (the log key's  any    any      any     any      any   -
 *     public key)
 *
 * 403r roleRequired, 403a adminRequired, 403n notApprover, 403o
 * ownRequest, 403q notRequester; 404 notFound. "approver" means a user
 * listed in the signer's *current* policy (for a request also in the
 * policy it was made under); approvers who are not members do not read the
 * signer itself. An admin counts as an operator of every signer but
 * approves only where listed, and only while listed in the signer's current
 * policy (the store checks that again in request_decide's transaction). A
 * signer the caller cannot see -- no role on it, no approver of its current
 * policy -- is 404 notFound wherever a path names it, exactly like one that
 * does not exist, so that its name tells a stranger nothing; one it sees but
 * may not use is 403. Those who see a policy but are not its approvers see
 * it without its approvers' ids.
 * A disabled principal gets 401 principalDisabled before any rule
 * (server/http/auth.c for tokens, srv_may_log_in for logins); an expired
 * or unknown token 401 tokenInvalid. The lists filter in SQL with
 * visible_to (store_sqlite.h): those filters must say what this file says,
 * and tests/api/t_access.py checks every cell of the table against both. */
#include <stdio.h>
#include <string.h>
#include "server/api/access.h"
#include "server/http/cache.h"

/* ---- facts ------------------------------------------------------------- */

/* The caller's membership of a signer (SRV_ROLE_NONE when none), cached:
 * the sign path asks on every signature. */
static srv_reason member_role(srv_req *r, const char *signer_id, srv_role *role)
{
	char key[SRV_CACHE_KEY_MAX];
	snprintf(key, sizeof(key), "%.36s/%.36s", signer_id, r->actor.id);
	if (srv_cache_get(r->ctx->role_cache, key, role))
		return SRV_R_NONE;
	unsigned long gen = srv_cache_gen();
	srv_st_rc rc = r->ctx->store->ops->member_role(r->ctx->store, signer_id, r->actor.id, role);
	if (rc != SRV_ST_OK)
		return srv_reason_from_store(rc);
	srv_cache_put(r->ctx->role_cache, key, gen, role);
	return SRV_R_NONE;
}

static int is_self(const srv_req *r, const char *principal_id)
{
	return strcmp(principal_id, r->actor.id) == 0;
}

/* Whether the caller, a user, is listed in the policy (by id; "" = none). */
static srv_reason approves_policy(srv_req *r, const char *policy_id, int *yes)
{
	srv_policy p = {0};
	*yes = 0;
	if (!policy_id[0] || strcmp(r->actor.type, "user") != 0)
		return SRV_R_NONE;
	srv_st_rc rc = r->ctx->store->ops->policy_get(r->ctx->store, policy_id, &p);
	if (rc == SRV_ST_NOT_FOUND)
		return SRV_R_NONE;
	if (rc != SRV_ST_OK)
		return srv_reason_from_store(rc);
	for (size_t i = 0; i < p.n_approvers; i++)
		*yes |= is_self(r, p.approvers[i]);
	srv_policy_clear(&p);
	return SRV_R_NONE;
}

/* Whether the caller approves for the signer's current policy. */
static srv_reason approves_signer(srv_req *r, const char *signer_id, int *yes)
{
	srv_signer s = {0};
	*yes = 0;
	srv_st_rc rc = r->ctx->store->ops->signer_get(r->ctx->store, signer_id, &s);
	if (rc == SRV_ST_NOT_FOUND)
		return SRV_R_NONE;
	if (rc != SRV_ST_OK)
		return srv_reason_from_store(rc);
	srv_reason why = approves_policy(r, s.policy_id, yes);
	srv_signer_clear(&s);
	return why;
}

/* Member of the signer or approver of its current policy: who sees the
 * signer's requests and grants. *yes = 0 with SRV_R_NONE when neither. */
static srv_reason watches_signer(srv_req *r, const char *signer_id, int *yes)
{
	srv_role role = SRV_ROLE_NONE;
	srv_reason why = member_role(r, signer_id, &role);
	*yes = role != SRV_ROLE_NONE;
	if (why != SRV_R_NONE || *yes)
		return why;
	return approves_signer(r, signer_id, yes);
}

/* ---- rules ------------------------------------------------------------- */

srv_reason srv_may_manage(const srv_req *r)
{
	return r->actor.admin ? SRV_R_NONE : SRV_R_ADMIN_REQUIRED;
}

/* /metrics: admins, and principals with the metrics role (a scraper's
 * token, which may do nothing else an ordinary principal could not). */
srv_reason srv_may_read_metrics(const srv_req *r)
{
	return r->actor.admin || r->actor.metrics ? SRV_R_NONE : SRV_R_METRICS_REQUIRED;
}

srv_reason srv_may_log_in(const srv_principal *p)
{
	return p->disabled ? SRV_R_PRINCIPAL_DISABLED : SRV_R_NONE;
}

const char *srv_visible_to(const srv_req *r)
{
	return r->actor.admin ? NULL : r->actor.id;
}

/* Admins, and members with the role (SRV_ROLE_NONE: any role); 403 for
 * those who see the signer without the role, 404 for the others. */
static srv_reason member_with(srv_req *r, const char *signer_id, srv_role need)
{
	srv_role role = SRV_ROLE_NONE;
	int approver = 0;
	if (r->actor.admin)
		return SRV_R_NONE;
	srv_reason why = member_role(r, signer_id, &role);
	if (why == SRV_R_NONE && role == SRV_ROLE_NONE)
		why = approves_signer(r, signer_id, &approver);
	if (why != SRV_R_NONE)
		return why;
	if (role == SRV_ROLE_NONE && !approver)
		return SRV_R_NOT_FOUND;
	if (role == SRV_ROLE_NONE || (need != SRV_ROLE_NONE && role != need))
		return SRV_R_ROLE_REQUIRED;
	return SRV_R_NONE;
}

srv_reason srv_may_sign(srv_req *r, const char *signer_id)
{
	return member_with(r, signer_id, SRV_ROLE_OPERATOR);
}

srv_reason srv_may_read_signer(srv_req *r, const char *signer_id)
{
	return member_with(r, signer_id, SRV_ROLE_NONE);
}

srv_reason srv_may_annotate(srv_req *r, const char *signer_id)
{
	srv_role role = SRV_ROLE_NONE;
	if (r->actor.admin)
		return SRV_R_NONE;
	srv_reason why = member_role(r, signer_id, &role);
	if (why != SRV_R_NONE)
		return why;
	return role == SRV_ROLE_NONE ? SRV_R_ROLE_REQUIRED : SRV_R_NONE;
}

srv_reason srv_may_see_request(srv_req *r, const srv_request *q)
{
	int yes = r->actor.admin || is_self(r, q->requester_id);
	srv_reason why = SRV_R_NONE;
	if (!yes)
		why = watches_signer(r, q->signer_id, &yes);
	if (why == SRV_R_NONE && !yes)
		why = approves_policy(r, q->policy_id, &yes);
	if (why != SRV_R_NONE)
		return why;
	return yes ? SRV_R_NONE : SRV_R_NOT_FOUND;
}

srv_reason srv_may_decide(srv_req *r, const srv_request *q, const srv_policy *p)
{
	int listed = 0;
	if (strcmp(r->actor.type, "user") == 0 && !r->actor.disabled)
		for (size_t i = 0; i < p->n_approvers; i++)
			listed |= is_self(r, p->approvers[i]);
	if (!listed)
		return SRV_R_NOT_APPROVER;
	return is_self(r, q->requester_id) ? SRV_R_OWN_REQUEST : SRV_R_NONE;
}

srv_reason srv_may_cancel(const srv_req *r, const srv_request *q)
{
	return r->actor.admin || is_self(r, q->requester_id) ? SRV_R_NONE : SRV_R_NOT_REQUESTER;
}

srv_reason srv_may_see_grant(srv_req *r, const srv_grant *g)
{
	int yes = r->actor.admin || is_self(r, g->grantee_id);
	srv_reason why = SRV_R_NONE;
	if (!yes)
		why = watches_signer(r, g->signer_id, &yes);
	if (why != SRV_R_NONE)
		return why;
	return yes ? SRV_R_NONE : SRV_R_NOT_FOUND;
}

srv_reason srv_may_revoke_grant(srv_req *r, const srv_grant *g)
{
	int yes = r->actor.admin;
	srv_reason why = SRV_R_NONE;
	if (!yes)
		why = approves_signer(r, g->signer_id, &yes);
	if (why != SRV_R_NONE)
		return why;
	return yes ? SRV_R_NONE : SRV_R_NOT_APPROVER;
}

srv_reason srv_may_see_policy(srv_req *r, const srv_policy *p)
{
	if (r->actor.admin)
		return SRV_R_NONE;
	for (size_t i = 0; i < p->n_approvers; i++)
		if (is_self(r, p->approvers[i]))
			return SRV_R_NONE;
	/* a member of a signer the policy governs (retired ones too, as the
	 * SQL of policy_list says) */
	srv_signer *v = NULL;
	size_t n = 0, total = 0;
	srv_st_rc rc = r->ctx->store->ops->signer_list(r->ctx->store, r->actor.id, 0, NULL, "any",
						       0, 0, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_reason_from_store(rc);
	int yes = 0;
	for (size_t i = 0; i < n; i++)
		yes |= strcmp(v[i].policy_id, p->id) == 0;
	srv_signer_list_free(v, n);
	return yes ? SRV_R_NONE : SRV_R_NOT_FOUND;
}

srv_reason srv_may_see_approvers(const srv_req *r, const srv_policy *p)
{
	if (r->actor.admin)
		return SRV_R_NONE;
	for (size_t i = 0; i < p->n_approvers; i++)
		if (is_self(r, p->approvers[i]))
			return SRV_R_NONE;
	return SRV_R_NOT_APPROVER;
}

srv_reason srv_may_read_principal(const srv_req *r, const srv_principal *p)
{
	return r->actor.admin || is_self(r, p->id) ? SRV_R_NONE : SRV_R_NOT_FOUND;
}

srv_reason srv_may_manage_tokens(const srv_req *r, const srv_principal *p)
{
	return r->actor.admin || is_self(r, p->id) ? SRV_R_NONE : SRV_R_NOT_FOUND;
}

srv_reason srv_may_rotate_secret(const srv_req *r, const srv_principal *p)
{
	return r->actor.admin || is_self(r, p->id) ? SRV_R_NONE : SRV_R_NOT_FOUND;
}

srv_reason srv_may_delete_principal(const srv_req *r, const srv_principal *p)
{
	return is_self(r, p->id) ? SRV_R_SELF_DELETE : srv_may_manage(r);
}

srv_reason srv_may_disable_principal(const srv_req *r, const srv_principal *p)
{
	return is_self(r, p->id) ? SRV_R_SELF_DISABLE : srv_may_manage(r);
}
