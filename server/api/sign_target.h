/* What the sign path needs to know about a signer, its key and its policy,
 * in one flat record that is cached between signatures (cache.h). */
#ifndef SRV_SIGN_TARGET_H
#define SRV_SIGN_TARGET_H
#include <time.h>
#include "server/http/http.h"

typedef struct {
	srv_id id;
	char name[65];
	int enabled;
	rs_key_alg key_alg;
	time_t not_before, not_after; /* the certificate's validity */
	unsigned char ckid[16];	      /* the key's CKA_ID in the token */
	srv_id policy_id;	      /* "" = no policy */
	int bypass_identities;	      /* the policy lets identities sign without a grant */
	char bypass_claims[SRV_BYPASS_CLAIMS_MAX]; /* ... whose OIDC login matches; "" = any */
	int retired;				   /* signs no more */
} srv_sign_target;

/* The signer named by r->params[0] (id or name): 404 NotFound when absent. */
srv_err srv_sign_target_get(srv_req *r, srv_sign_target *t);

#endif
