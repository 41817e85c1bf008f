/* The route table: method + path pattern -> handler and the authentication
 * it needs. Paths are relative to /api/v1; '*' is one path segment. */
#include <stddef.h>
#include "server/api/api.h"

const srv_route srv_routes[] = {
	{"GET", "/health", api_health, SRV_AUTH_NONE, 0},
	{"POST", "/auth/universal-auth/login", api_login, SRV_AUTH_NONE, SRV_ROUTE_KEEPS_CACHES},
	{"GET", "/auth/whoami", api_whoami, SRV_AUTH_ANY, 0},

	{"POST", "/principals", api_principal_create, SRV_AUTH_ADMIN, 0},
	{"GET", "/principals", api_principal_list, SRV_AUTH_ADMIN, 0},
	{"GET", "/principals/*", api_principal_get, SRV_AUTH_ANY, 0},
	{"DELETE", "/principals/*", api_principal_delete, SRV_AUTH_ADMIN, 0},
	{"POST", "/principals/*/tokens", api_principal_token, SRV_AUTH_ANY, 0},

	{"POST", "/pki/keys", api_key_create, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/keys", api_key_list, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/keys/*", api_key_get, SRV_AUTH_ADMIN, 0},
	{"POST", "/pki/keys/*/csr", api_key_csr, SRV_AUTH_ADMIN, 0},

	{"GET", "/pki/ca", api_ca_get, SRV_AUTH_ANY, 0},
	{"POST", "/pki/certificates", api_cert_import, SRV_AUTH_ADMIN, 0},
	{"POST", "/pki/certificates/issue", api_cert_issue, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/certificates", api_cert_list, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/certificates/*", api_cert_get, SRV_AUTH_ADMIN, 0},

	{"POST", "/pki/signers", api_signer_create, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/signers", api_signer_list, SRV_AUTH_ANY, 0},
	{"GET", "/pki/signers/*", api_signer_get, SRV_AUTH_ANY, 0},
	{"PATCH", "/pki/signers/*", api_signer_update, SRV_AUTH_ADMIN, 0},
	{"DELETE", "/pki/signers/*", api_signer_delete, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/signers/*/public-key", api_signer_public_key, SRV_AUTH_ANY, 0},
	{"GET", "/pki/signers/*/certificate", api_signer_certificate, SRV_AUTH_ANY, 0},
	{"POST", "/pki/signers/*/members", api_member_add, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/signers/*/members", api_member_list, SRV_AUTH_ADMIN, 0},
	{"DELETE", "/pki/signers/*/members/*", api_member_remove, SRV_AUTH_ADMIN, 0},
	{"POST", "/pki/signers/*/sign", api_sign, SRV_AUTH_ANY, SRV_ROUTE_KEEPS_CACHES},
	{"GET", "/pki/signers/*/operations", api_operation_list, SRV_AUTH_ANY, 0},
	{"POST", "/pki/signers/*/requests", api_request_create, SRV_AUTH_ANY, 0},

	{"POST", "/pki/signing-policies", api_policy_create, SRV_AUTH_ADMIN, 0},
	{"GET", "/pki/signing-policies", api_policy_list, SRV_AUTH_ANY, 0},
	{"GET", "/pki/signing-policies/*", api_policy_get, SRV_AUTH_ANY, 0},
	{"PATCH", "/pki/signing-policies/*", api_policy_update, SRV_AUTH_ADMIN, 0},
	{"DELETE", "/pki/signing-policies/*", api_policy_delete, SRV_AUTH_ADMIN, 0},

	{"GET", "/pki/signing-requests", api_request_list, SRV_AUTH_ANY, 0},
	{"GET", "/pki/signing-requests/*", api_request_get, SRV_AUTH_ANY, 0},
	{"POST", "/pki/signing-requests/*/approve", api_request_approve, SRV_AUTH_ANY, 0},
	{"POST", "/pki/signing-requests/*/reject", api_request_reject, SRV_AUTH_ANY, 0},
	{"POST", "/pki/signing-requests/*/cancel", api_request_cancel, SRV_AUTH_ANY, 0},

	{"GET", "/pki/grants", api_grant_list, SRV_AUTH_ANY, 0},
	{"POST", "/pki/grants/*/revoke", api_grant_revoke, SRV_AUTH_ANY, 0},

	{"GET", "/audit-log", api_audit_list, SRV_AUTH_ADMIN, 0},
	{NULL, NULL, NULL, 0, 0},
};
