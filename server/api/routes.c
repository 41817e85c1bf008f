/* The route table: method + path pattern -> handler, the authentication
 * it needs and, for admin-only routes, the gate of access.c that checks it.
 * Paths are relative to /api/v1; '*' is one path segment. */
#include <stddef.h>
#include "server/api/access.h"
#include "server/api/api.h"

/* no token; any valid token; a valid token of an admin (access.c) */
#define NONE SRV_AUTH_NONE, 0, NULL
#define ANY SRV_AUTH_ANY, 0, NULL
#define ADMIN SRV_AUTH_ANY, 0, srv_may_manage

const srv_route srv_routes[] = {
	{"GET", "/health", api_health, NONE},
	{"GET", "/ready", api_ready, NONE},
	{"POST", "/auth/universal-auth/login", api_login, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES,
	 NULL},
	{"POST", "/auth/oidc-auth/login", api_oidc_login, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES,
	 NULL},
	{"GET", "/auth/whoami", api_whoami, ANY},
	{"POST", "/auth/console/login", api_console_login, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES,
	 NULL},
	{"POST", "/auth/console/logout", api_console_logout, SRV_AUTH_ANY, SRV_ROUTE_KEEPS_CACHES,
	 NULL},

	{"POST", "/principals", api_principal_create, ADMIN},
	{"GET", "/principals", api_principal_list, ADMIN},
	{"GET", "/principals/*", api_principal_get, ANY},
	{"PATCH", "/principals/*", api_principal_update, ADMIN},
	{"DELETE", "/principals/*", api_principal_delete, ADMIN},
	{"POST", "/principals/*/tokens", api_token_create, ANY},
	{"GET", "/principals/*/tokens", api_token_list, ANY},
	{"DELETE", "/principals/*/tokens/*", api_token_revoke, ANY},
	{"POST", "/principals/*/secrets/rotate", api_secret_rotate, ANY},
	{"GET", "/principals/*/secrets", api_secret_list, ANY},

	{"POST", "/pki/keys", api_key_create, ADMIN},
	{"GET", "/pki/keys", api_key_list, ADMIN},
	{"GET", "/pki/keys/*", api_key_get, ADMIN},
	{"POST", "/pki/keys/*/csr", api_key_csr, ADMIN},

	{"GET", "/pki/ca", api_ca_get, ANY},
	{"POST", "/pki/certificates", api_cert_import, ADMIN},
	{"POST", "/pki/certificates/issue", api_cert_issue, ADMIN},
	{"GET", "/pki/certificates", api_cert_list, ADMIN},
	{"GET", "/pki/certificates/*", api_cert_get, ADMIN},

	{"POST", "/pki/signers", api_signer_create, ADMIN},
	{"GET", "/pki/signers", api_signer_list, ANY},
	{"GET", "/pki/signers/*", api_signer_get, ANY},
	{"PATCH", "/pki/signers/*", api_signer_update, ADMIN},
	{"DELETE", "/pki/signers/*", api_signer_retire, ADMIN},
	{"GET", "/pki/signers/*/public-key", api_signer_public_key, ANY},
	{"GET", "/pki/signers/*/certificate", api_signer_certificate, ANY},
	{"POST", "/pki/signers/*/members", api_member_add, ADMIN},
	{"GET", "/pki/signers/*/members", api_member_list, ANY},
	{"DELETE", "/pki/signers/*/members/*", api_member_remove, ADMIN},
	{"POST", "/pki/signers/*/sign", api_sign, SRV_AUTH_ANY, SRV_ROUTE_KEEPS_CACHES, NULL},
	{"GET", "/pki/signers/*/operations", api_operation_list, ANY},
	{"POST", "/pki/signers/*/requests", api_request_create, ANY},
	{"GET", "/pki/operations/daily", api_operation_daily, ANY},

	{"POST", "/pki/signing-policies", api_policy_create, ADMIN},
	{"GET", "/pki/signing-policies", api_policy_list, ANY},
	{"GET", "/pki/signing-policies/*", api_policy_get, ANY},
	{"PATCH", "/pki/signing-policies/*", api_policy_update, ADMIN},
	{"DELETE", "/pki/signing-policies/*", api_policy_delete, ADMIN},

	{"GET", "/pki/signing-requests", api_request_list, ANY},
	{"GET", "/pki/signing-requests/*", api_request_get, ANY},
	{"POST", "/pki/signing-requests/*/approve", api_request_approve, ANY},
	{"POST", "/pki/signing-requests/*/reject", api_request_reject, ANY},
	{"POST", "/pki/signing-requests/*/cancel", api_request_cancel, ANY},

	{"GET", "/pki/grants", api_grant_list, ANY},
	{"POST", "/pki/grants/*/revoke", api_grant_revoke, ANY},

	{"POST", "/pki/timestamp-authorities", api_tsa_create, ADMIN},
	{"GET", "/pki/timestamp-authorities", api_tsa_list, ADMIN},
	{"GET", "/pki/timestamp-authorities/*", api_tsa_get, ADMIN},
	{"PATCH", "/pki/timestamp-authorities/*", api_tsa_update, ADMIN},
	{"DELETE", "/pki/timestamp-authorities/*", api_tsa_delete, ADMIN},
	{"GET", "/pki/timestamp-authorities/*/operations", api_tsa_operations, ADMIN},
	/* RFC 3161: a token only when the TSA has requireAuth (the handler) */
	{"POST", "/tsa/*", api_tsa_stamp, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES, NULL},
	{"POST", "/tsa/*/authenticode", api_tsa_authenticode, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES,
	 NULL},

	{"GET", "/audit-log", api_audit_list, ADMIN},
	{"GET", "/backup", api_backup, ADMIN},
	{"GET", "/log/verify", api_log_verify, ADMIN},
	{"GET", "/log/key", api_log_key, ANY},
	{"GET", "/metrics", api_metrics, SRV_AUTH_ANY, 0, srv_may_read_metrics},
	{NULL, NULL, NULL, 0, 0, NULL},
};

/* metrics_listen: no token (an address only the scraper reaches) */
const srv_route srv_metrics_routes[] = {
	{"GET", "/metrics", api_metrics, NONE},
	{NULL, NULL, NULL, 0, 0, NULL},
};

/* tsa_listen: the two timestamp protocols and nothing else */
const srv_route srv_tsa_routes[] = {
	{"POST", "/tsa/*", api_tsa_stamp, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES, NULL},
	{"POST", "/tsa/*/authenticode", api_tsa_authenticode, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES,
	 NULL},
	{NULL, NULL, NULL, 0, 0, NULL},
};
