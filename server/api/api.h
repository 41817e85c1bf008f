/* Every API handler, one group per file named after its URL resource. */
#ifndef SRV_API_H
#define SRV_API_H
#include "server/http/http.h"
#include "server/store/store_chain.h"

/* api_health.c */
srv_err api_health(srv_req *r, cJSON **out);
srv_err api_ready(srv_req *r, cJSON **out);
/* api_auth.c: /auth and /principals */
srv_err api_login(srv_req *r, cJSON **out);
srv_err api_whoami(srv_req *r, cJSON **out);
/* api_session.c: /auth/console (the web console's sign-in) */
srv_err api_console_login(srv_req *r, cJSON **out);
srv_err api_console_logout(srv_req *r, cJSON **out);
srv_err api_principal_create(srv_req *r, cJSON **out);
srv_err api_principal_list(srv_req *r, cJSON **out);
srv_err api_principal_get(srv_req *r, cJSON **out);
srv_err api_principal_update(srv_req *r, cJSON **out);
srv_err api_principal_delete(srv_req *r, cJSON **out);
/* The principal object of the API; the principal r->params[0] names,
 * notFound unless the caller may read it (access.c). */
cJSON *api_principal_json(const srv_principal *p);
srv_err api_principal_load(srv_req *r, srv_principal *p);
/* Issues a token of kind for principal_id and adds it to o as field; oidc
 * (NULL = none) is the OIDC login an access token comes from; a (NULL for
 * a login's access token) is the audit entry stored with it. */
srv_err api_add_token(srv_req *r, const char *principal_id, const char *prefix, const char *kind,
		      time_t expires, const char *oidc, cJSON *o, const char *field,
		      const srv_audit *a);
/* api_oidc.c: POST /auth/oidc-auth/login and the identities' oidc config */
srv_err api_oidc_login(srv_req *r, cJSON **out);
/* The canonical JSON text (malloc'd) of an identity's oidc config in, with
 * defaults filled in; NULL with a sentence in why when it is not valid. */
char *api_oidc_config(const cJSON *in, char *why, size_t whylen);
/* pattern (exact, '*' matching any run of characters) against s: 1 or 0 */
int api_oidc_glob(const char *pattern, const char *s);
/* The claim at a dot path ("a.b.c") of claims; NULL when absent. */
const cJSON *api_oidc_claim(const cJSON *claims, const char *path);
/* A string, boolean or integer claim as text: 0, or -1 (another kind, or
 * longer than n). */
int api_oidc_claim_text(const cJSON *v, char *out, size_t n);
/* Every claim of patterns ({"dot.path": "pattern"}) matches in claims: 1;
 * else 0 with *failed naming the first that does not. */
int api_oidc_claims_match(const cJSON *claims, const cJSON *patterns, const char **failed);
/* A signing policy's bypassClaims ({claim: pattern}, 1..8) as canonical
 * JSON (malloc'd, under SRV_BYPASS_CLAIMS_MAX bytes); NULL with a sentence
 * in why when it is not valid. */
char *api_oidc_bypass_claims(const cJSON *in, char *why, size_t whylen);
/* The OIDC login an access token came from (its recorded claims, as
 * login_record keeps them; NULL or "" = none) matches every pattern of
 * bypass_claims: 1; else 0 with a sentence in why. A claim the login does
 * not record never matches. */
int api_oidc_bypass_holds(const char *login, const char *bypass_claims, char *why, size_t n);
/* api_tokens.c: /principals/{id}/tokens and /principals/{id}/secrets */
srv_err api_token_create(srv_req *r, cJSON **out);
srv_err api_token_list(srv_req *r, cJSON **out);
srv_err api_token_revoke(srv_req *r, cJSON **out);
srv_err api_secret_rotate(srv_req *r, cJSON **out);
srv_err api_secret_list(srv_req *r, cJSON **out);
/* api_keys.c: /pki/keys */
srv_err api_key_create(srv_req *r, cJSON **out);
srv_err api_key_list(srv_req *r, cJSON **out);
srv_err api_key_get(srv_req *r, cJSON **out);
srv_err api_key_csr(srv_req *r, cJSON **out);
/* api_certs.c: /pki/certificates and /pki/ca */
srv_err api_cert_import(srv_req *r, cJSON **out);
srv_err api_cert_issue(srv_req *r, cJSON **out);
srv_err api_cert_list(srv_req *r, cJSON **out);
srv_err api_cert_get(srv_req *r, cJSON **out);
srv_err api_ca_get(srv_req *r, cJSON **out);
/* api_signers.c: /pki/signers */
srv_err api_signer_create(srv_req *r, cJSON **out);
srv_err api_signer_list(srv_req *r, cJSON **out);
srv_err api_signer_get(srv_req *r, cJSON **out);
srv_err api_signer_update(srv_req *r, cJSON **out);
srv_err api_signer_retire(srv_req *r, cJSON **out);
srv_err api_signer_public_key(srv_req *r, cJSON **out);
srv_err api_signer_certificate(srv_req *r, cJSON **out);
srv_err api_member_add(srv_req *r, cJSON **out);
srv_err api_member_remove(srv_req *r, cJSON **out);
srv_err api_member_list(srv_req *r, cJSON **out);
/* api_sign.c: POST /pki/signers/{id}/sign */
srv_err api_sign(srv_req *r, cJSON **out);
/* api_operations.c: GET /pki/signers/{id}/operations */
srv_err api_operation_list(srv_req *r, cJSON **out);
/* The query's actor, from and to into f (the history's and the audit log's
 * shared filters); 400 invalidQuery on a bad value. */
srv_err api_list_filter(srv_req *r, srv_list_filter *f);
srv_err api_operation_daily(srv_req *r, cJSON **out);

/* api_policies.c: /pki/signing-policies */
srv_err api_policy_create(srv_req *r, cJSON **out);
srv_err api_policy_list(srv_req *r, cJSON **out);
srv_err api_policy_get(srv_req *r, cJSON **out);
srv_err api_policy_update(srv_req *r, cJSON **out);
srv_err api_policy_delete(srv_req *r, cJSON **out);
/* Loads a policy by id or name: 404 when absent. */
srv_err api_policy_load(srv_req *r, const char *id, srv_policy *p);
cJSON *api_policy_json(const srv_policy *p);
/* api_requests.c: /pki/signers/{id}/requests, /pki/signing-requests */
srv_err api_request_create(srv_req *r, cJSON **out);
srv_err api_request_list(srv_req *r, cJSON **out);
srv_err api_request_get(srv_req *r, cJSON **out);
srv_err api_request_approve(srv_req *r, cJSON **out);
srv_err api_request_reject(srv_req *r, cJSON **out);
srv_err api_request_cancel(srv_req *r, cJSON **out);
/* api_grants.c: /pki/grants */
srv_err api_grant_list(srv_req *r, cJSON **out);
srv_err api_grant_revoke(srv_req *r, cJSON **out);
/* api_audit.c: /audit-log, and the entry every change hands to the store:
 * the caller as actor, now, and detail (taken, printed; NULL = {}).
 * api_audit_done frees what api_audit_entry allocated. */
srv_err api_audit_list(srv_req *r, cJSON **out);
srv_err api_audit_entry(srv_req *r, srv_audit *a, const char *action, const char *type,
			const char *id, cJSON *detail);
void api_audit_done(srv_audit *a);

/* A rule of access.c about one signer (srv_may_sign, srv_may_read_signer). */
typedef srv_reason (*api_signer_rule)(srv_req *r, const char *signer_id);

/* Shared by the signer-scoped handlers (api_signers.c): loads the signer
 * named by r->params[0] (404 when absent), then asks `may` (NULL: the
 * route's gate decided already): 404 with the same words when the caller
 * cannot see it, 403 when it sees it without the role, and 404 for a
 * retired signer asked to sign. On failure nothing is left to free. */
srv_err api_signer_load(srv_req *r, api_signer_rule may, srv_signer *s);

/* A ?signerId= filter given as id or name becomes the id (kept in id);
 * an unknown one stays as given and matches nothing. */
srv_err api_signer_query(srv_req *r, const char **signer, srv_id id);

/* api_backup.c: GET /backup, the database's online copy (r->file_fd) */
srv_err api_backup(srv_req *r, cJSON **out);

/* api_log.c: GET /log/verify (?chain=history|audit: one chain), GET
 * /log/key; and the check of a checkpoint's signature with the log key of
 * arg (a srv_ctx *): 0 good, 1 bad, -1 cannot check (no key). */
srv_err api_log_verify(srv_req *r, cJSON **out);
srv_err api_log_key(srv_req *r, cJSON **out);
int api_log_verify_sig(void *arg, const srv_checkpoint *c);

/* api_metrics.c: GET /metrics, the Prometheus text format (r->text) */
srv_err api_metrics(srv_req *r, cJSON **out);

/* api_tsa.c: /pki/timestamp-authorities and the RFC 3161 protocol */
srv_err api_tsa_create(srv_req *r, cJSON **out);
srv_err api_tsa_list(srv_req *r, cJSON **out);
srv_err api_tsa_get(srv_req *r, cJSON **out);
srv_err api_tsa_update(srv_req *r, cJSON **out);
srv_err api_tsa_delete(srv_req *r, cJSON **out);
srv_err api_tsa_operations(srv_req *r, cJSON **out);
srv_err api_tsa_stamp(srv_req *r, cJSON **out);
srv_err api_tsa_authenticode(srv_req *r, cJSON **out);

/* routes.c: the route table, method + path -> handler (ends with a NULL
 * pattern). */
extern const srv_route srv_routes[];
/* The table of metrics_listen: GET /metrics without a token, nothing else. */
extern const srv_route srv_metrics_routes[];
/* The table of tsa_listen: POST /tsa/{name}, nothing else. */
extern const srv_route srv_tsa_routes[];

#endif
