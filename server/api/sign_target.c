/* Loading (and caching) the signer, key and policy a signature needs. A
 * hit costs no database read; see cache.h for when entries go stale. */
#include <string.h>
#include "rsign/util.h"
#include "server/http/cache.h"
#include "server/api/sign_target.h"

static srv_err load(srv_req *r, srv_sign_target *t)
{
	srv_store *st = r->ctx->store;
	srv_signer s = {0};
	srv_key k = {0};
	srv_policy p = {0};
	srv_err e = SRV_OK;
	srv_st_rc rc = st->ops->signer_get(st, r->params[0], &s);
	if (rc == SRV_ST_NOT_FOUND)
		return srv_fail(r, SRV_R_NOT_FOUND, "no signer \"%s\"", r->params[0]);
	if (rc == SRV_ST_OK)
		rc = st->ops->key_get(st, s.key_id, &k);
	if (rc == SRV_ST_OK && s.policy_id[0])
		rc = st->ops->policy_get(st, s.policy_id, &p);
	if (rc != SRV_ST_OK) {
		e = srv_fail(r, srv_reason_from_store(rc),
			     "cannot read the signer, its key or its policy");
		goto out;
	}
	memset(t, 0, sizeof(*t));
	memcpy(t->id, s.id, sizeof(t->id));
	rs_strlcpy(t->name, s.name, sizeof(t->name));
	t->enabled = s.enabled;
	t->key_alg = s.key_alg;
	t->not_before = s.cert_not_before;
	t->not_after = s.cert_not_after;
	memcpy(t->ckid, k.ckid, sizeof(t->ckid));
	memcpy(t->policy_id, s.policy_id, sizeof(t->policy_id));
	t->bypass_identities = p.bypass_identities;
	if (p.bypass_claims && rs_strlcpy(t->bypass_claims, p.bypass_claims,
					  sizeof(t->bypass_claims)) >= sizeof(t->bypass_claims)) {
		/* longer than the API lets in: no bypass rather than a cut pattern */
		t->bypass_identities = 0;
		t->bypass_claims[0] = '\0';
	}
	t->retired = s.retired_at != 0;
out:
	srv_signer_clear(&s);
	srv_key_clear(&k);
	srv_policy_clear(&p);
	return e;
}

srv_err srv_sign_target_get(srv_req *r, srv_sign_target *t)
{
	if (srv_cache_get(r->ctx->signer_cache, r->params[0], t))
		return SRV_OK;
	unsigned long gen = srv_cache_gen();
	srv_err e = load(r, t);
	if (e == SRV_OK)
		srv_cache_put(r->ctx->signer_cache, r->params[0], gen, t);
	return e;
}
