/* OIDC login of a machine identity (identity_id): where its JWT comes from
 * -- oidc_token_file (read again at every login), oidc_token_env, or, with
 * oidc_github, GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL asked for the
 * oidc_audience with ACTIONS_ID_TOKEN_REQUEST_TOKEN. A fresh JWT is fetched
 * for every login; JWTs are wiped when dropped and never logged. */
#ifndef MOD_OIDC_H
#define MOD_OIDC_H
#include "config.h"

typedef struct {
	char *identity_id; /* NULL: no OIDC login */
	char *token_file;
	char *token_env;
	char *audience;
	char *ca_file; /* for the GitHub endpoint; NULL: the system's CAs */
	int github;
} mod_oidc;

/* From the config: 0 (identity_id unset: nothing), or -1 after one log line
 * (no source, or more than one). */
int mod_oidc_from_config(const mod_config *conf, mod_oidc *o) __attribute__((warn_unused_result));
int mod_oidc_copy(mod_oidc *dst, const mod_oidc *src) __attribute__((warn_unused_result));
void mod_oidc_clear(mod_oidc *o);
/* A fresh JWT (malloc'd; rs_free_secret it), or NULL after one log line. */
char *mod_oidc_jwt(const mod_oidc *o);

#endif
