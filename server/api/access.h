/* Who may do what: every access rule of the API, one function per action
 * (access.c holds the rule table). Each returns SRV_R_NONE when the caller
 * may, else the reason to refuse with (or a storage reason when the facts
 * could not be read). Handlers, the sign path and the route table decide
 * nothing themselves. */
#ifndef SRV_ACCESS_H
#define SRV_ACCESS_H
#include "server/http/http.h"

/* The gate of admin-only routes (routes.c): adminRequired. */
srv_reason srv_may_manage(const srv_req *r);
/* GET /metrics with a token (routes.c's gate): admins; adminRequired. */
srv_reason srv_may_read_metrics(const srv_req *r);
/* A principal presenting valid credentials at login: principalDisabled. */
srv_reason srv_may_log_in(const srv_principal *p);

/* What the store's visible_to filters take: NULL for an admin (sees all),
 * else the caller's id. The SQL of those filters (store_sqlite.h
 * SQ_MEMBER_OF ...) implements the srv_may_see_* rules below. */
const char *srv_visible_to(const srv_req *r);

/* On an existing signer (its id): sign and ask for approval (operators),
 * read it, its key, certificate, history and members (members). notFound
 * when the caller cannot see the signer at all, roleRequired when it can. */
srv_reason srv_may_sign(srv_req *r, const char *signer_id);
srv_reason srv_may_read_signer(srv_req *r, const char *signer_id);
/* Whether the clientMetadata of the caller's sign attempt is kept in the
 * history (admins and members): roleRequired when it is dropped. */
srv_reason srv_may_annotate(srv_req *r, const char *signer_id);

/* Single objects the caller may not see are notFound, like absent ones. */
srv_reason srv_may_see_request(srv_req *r, const srv_request *q);
srv_reason srv_may_see_grant(srv_req *r, const srv_grant *g);
srv_reason srv_may_see_policy(srv_req *r, const srv_policy *p);
/* Of a policy the caller sees: whether its approvers' ids are shown
 * (admins and its approvers; notApprover otherwise). */
srv_reason srv_may_see_approvers(const srv_req *r, const srv_policy *p);
srv_reason srv_may_read_principal(const srv_req *r, const srv_principal *p);

/* On a request the caller sees; p is the signer's current policy (which
 * must be the request's: the caller checks). */
srv_reason srv_may_decide(srv_req *r, const srv_request *q, const srv_policy *p);
srv_reason srv_may_cancel(const srv_req *r, const srv_request *q);
/* On a grant the caller sees. */
srv_reason srv_may_revoke_grant(srv_req *r, const srv_grant *g);
/* A principal's credentials: list, create and revoke its tokens; list and
 * rotate its client secrets (an identity's). Admins for anyone, a principal
 * for itself; notFound for another. */
srv_reason srv_may_manage_tokens(const srv_req *r, const srv_principal *p);
srv_reason srv_may_rotate_secret(const srv_req *r, const srv_principal *p);
/* Admin routes on a principal (the gate ran): not on oneself. */
srv_reason srv_may_delete_principal(const srv_req *r, const srv_principal *p);
srv_reason srv_may_disable_principal(const srv_req *r, const srv_principal *p);

#endif
