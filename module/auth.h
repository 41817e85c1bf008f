/* Credentials and the authenticated API call: bearer selection, the
 * universal-auth login for a machine identity, caching of its access token
 * until shortly before it expires, and one re-login (or token file re-read)
 * after a 401. Secrets are wiped when dropped and never logged. */
#ifndef MOD_AUTH_H
#define MOD_AUTH_H
#include "pkcs11.h"
#include "config.h"
#include "http.h"
#include "oidc.h"

typedef struct mod_cred {
	char *token;	  /* a bearer given directly: token file, $RSIGN_TOKEN, PIN */
	char *token_file; /* re-read after a 401: an agent may have renewed it */
	char *client_id;  /* a machine identity ... */
	char *client_secret;
	mod_oidc oidc;		/* or one logging in with OIDC JWTs (identity_id) ... */
	char *access;		/* ... and the access token its login returned */
	long long access_until; /* mod_now() milliseconds */
	unsigned long gen;	/* bumped whenever the credential is replaced */
} mod_cred;

int mod_cred_is_set(const mod_cred *c);
void mod_cred_clear(mod_cred *c);
/* token_file, then $RSIGN_TOKEN, then $RSIGN_CLIENT_ID + $RSIGN_CLIENT_SECRET,
 * then client_id + client_secret_file, then identity_id (OIDC: oidc.h). No
 * network. 0 (possibly none) or -1. */
int mod_cred_load_configured(const mod_config *conf, mod_cred *c)
	__attribute__((warn_unused_result));
/* PIN = access token, or "clientId:clientSecret". 0 or -1 (empty). */
int mod_cred_from_pin(const unsigned char *pin, size_t len, mod_cred *c)
	__attribute__((warn_unused_result));

/* One API call. */
typedef struct mod_call {
	const char *what;   /* "sign", "list signers", ... for the log line */
	const char *signer; /* signer name for the log line, or NULL */
	const char *method;
	const char *path;     /* below /api/v1 */
	const char *body;     /* JSON or NULL */
	const char *idem_key; /* Idempotency-Key: one per operation, the same on
			       * every retry of it (sign.c); NULL: none */
	int in_login;	      /* inside C_Login: 401 means a wrong PIN */
	mod_http_resp resp;   /* filled; free with mod_call_done */
} mod_call;

/* Makes the call with cred (which must be a configured or slot credential
 * that lives until C_Finalize). Without the lock. CKR_OK with a 2xx body in
 * call->resp, or the CK_RV of the one table (errors.c), already logged. */
CK_RV mod_api_call(mod_cred *cred, unsigned long gen, mod_call *call)
	__attribute__((warn_unused_result));
/* The same with a credential only the caller holds (C_Login's candidate):
 * no lock is taken; a renewed access token is stored into cred. */
CK_RV mod_cred_call(mod_cred *cred, mod_call *call) __attribute__((warn_unused_result));
void mod_call_done(mod_call *call);

#endif
