/* Record helpers shared by every storage implementation. */
#include <stdlib.h>
#include <string.h>
#include "server/store/store.h"

void srv_principal_clear(srv_principal *p)
{
	if (p) {
		free(p->name);
		free(p->oidc);
		free(p->login);
		memset(p, 0, sizeof(*p));
	}
}

void srv_key_clear(srv_key *k)
{
	if (k) {
		free(k->name);
		free(k->spki);
		memset(k, 0, sizeof(*k));
	}
}

void srv_cert_clear(srv_cert *c)
{
	if (c) {
		free(c->common_name);
		free(c->serial);
		free(c->cert_pem);
		free(c->chain_pem);
		memset(c, 0, sizeof(*c));
	}
}

void srv_signer_clear(srv_signer *s)
{
	if (s) {
		free(s->name);
		free(s->description);
		memset(s, 0, sizeof(*s));
	}
}

void srv_operation_clear(srv_operation *o)
{
	if (o) {
		free(o->actor_name);
		free(o->client_metadata);
		free(o->oidc);
		memset(o, 0, sizeof(*o));
	}
}

void srv_policy_clear(srv_policy *p)
{
	if (p) {
		free(p->name);
		free(p->approvers);
		free(p->approver_macs);
		free(p->bypass_claims);
		memset(p, 0, sizeof(*p));
	}
}

void srv_request_clear(srv_request *q)
{
	if (q) {
		free(q->requester_name);
		free(q->justification);
		memset(q, 0, sizeof(*q));
	}
}

void srv_decision_clear(srv_decision *d)
{
	if (d) {
		free(d->approver_name);
		free(d->comment);
		memset(d, 0, sizeof(*d));
	}
}

void srv_audit_clear(srv_audit *a)
{
	if (a) {
		free(a->actor_name);
		free(a->detail);
		memset(a, 0, sizeof(*a));
	}
}

static void grant_clear(srv_grant *g)
{
	(void)g;
}

#define LIST_FREE(fn, type, clear)                                                                 \
	void fn(type *v, size_t n)                                                                 \
	{                                                                                          \
		if (!v)                                                                            \
			return;                                                                    \
		for (size_t i = 0; i < n; i++)                                                     \
			clear(&v[i]);                                                              \
		free(v);                                                                           \
	}
LIST_FREE(srv_principal_list_free, srv_principal, srv_principal_clear)
LIST_FREE(srv_key_list_free, srv_key, srv_key_clear)
LIST_FREE(srv_cert_list_free, srv_cert, srv_cert_clear)
LIST_FREE(srv_signer_list_free, srv_signer, srv_signer_clear)
LIST_FREE(srv_operation_list_free, srv_operation, srv_operation_clear)
LIST_FREE(srv_policy_list_free, srv_policy, srv_policy_clear)

void srv_token_list_free(srv_token *v, size_t n)
{
	(void)n;
	free(v);
}

void srv_secret_list_free(srv_secret *v, size_t n)
{
	(void)n;
	free(v);
}
LIST_FREE(srv_request_list_free, srv_request, srv_request_clear)
LIST_FREE(srv_decision_list_free, srv_decision, srv_decision_clear)
LIST_FREE(srv_grant_list_free, srv_grant, grant_clear)
LIST_FREE(srv_audit_list_free, srv_audit, srv_audit_clear)

const char *srv_role_name(srv_role r)
{
	switch (r) {
	case SRV_ROLE_OPERATOR:
		return "operator";
	case SRV_ROLE_AUDITOR:
		return "auditor";
	default:
		return "";
	}
}

int srv_role_parse(const char *s, srv_role *out)
{
	if (s && strcmp(s, "operator") == 0)
		*out = SRV_ROLE_OPERATOR;
	else if (s && strcmp(s, "auditor") == 0)
		*out = SRV_ROLE_AUDITOR;
	else
		return -1;
	return 0;
}

void srv_tsa_clear(srv_tsa *t)
{
	if (t) {
		free(t->name);
		memset(t, 0, sizeof(*t));
	}
}

void srv_tsa_list_free(srv_tsa *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		srv_tsa_clear(&v[i]);
	free(v);
}
