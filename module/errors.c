/* The one table from a server call's outcome to the CK_RV a PKCS#11 caller
 * sees, and the one log line each failure writes (signer, HTTP status, error
 * word, request id; never a token, PIN, secret or signed data).
 *
 * | outcome                                             | CK_RV                  |
 * |-----------------------------------------------------|------------------------|
 * | no response: connect refused, DNS, TLS, timeout,    | CKR_DEVICE_ERROR       |
 * |   body over 1 MiB                                   |                        |
 * | 2xx whose body does not parse, misses a field, has  | CKR_DEVICE_ERROR       |
 * |   bad base64 or a signature of the wrong length     |                        |
 * | 400 SignerDisabled, 400 CertificateExpired          | CKR_FUNCTION_REJECTED  |
 * | 400 whose message mentions "length"                 | CKR_DATA_LEN_RANGE     |
 * | 400 otherwise (BadRequest)                          | CKR_DATA_INVALID       |
 * | 401 (in C_Login: CKR_PIN_INCORRECT)                 | CKR_USER_NOT_LOGGED_IN |
 * | 403 ApprovalRequired, PermissionDenied (in C_Login: | CKR_FUNCTION_REJECTED  |
 * |   CKR_PIN_INCORRECT)                                |                        |
 * | 404 (the signer is gone)                            | CKR_DEVICE_REMOVED     |
 * | 413 PayloadTooLarge                                 | CKR_DATA_LEN_RANGE     |
 * | 429 RateLimitExceeded                               | CKR_FUNCTION_REJECTED  |
 * | other 4xx (409 Conflict, ...)                       | CKR_FUNCTION_FAILED    |
 * | 5xx (InternalError, Unavailable, proxies)           | CKR_DEVICE_ERROR       |
 * | anything else (1xx, 3xx: redirects are not followed)| CKR_DEVICE_ERROR       |
 *
 * SignerDisabled and CertificateExpired are refusals of the signer, not
 * faults in the caller's data, so they read as CKR_FUNCTION_REJECTED. */
#include <limits.h>
#include <string.h>

#include "rsign/log.h"

#include "errors.h"

typedef struct err_row {
	long lo, hi;		 /* HTTP status range; 0..0 = no response */
	const char *error;	 /* error word, NULL = any */
	const char *message_has; /* case-insensitive substring of message, NULL = any */
	CK_RV rv;
	CK_RV rv_in_login; /* inside C_Login; 0 = rv */
} err_row;

static const err_row err_table[] = {
	{0, 0, NULL, NULL, CKR_DEVICE_ERROR, 0},
	{400, 400, "SignerDisabled", NULL, CKR_FUNCTION_REJECTED, 0},
	{400, 400, "CertificateExpired", NULL, CKR_FUNCTION_REJECTED, 0},
	{400, 400, NULL, "length", CKR_DATA_LEN_RANGE, 0},
	{400, 400, NULL, NULL, CKR_DATA_INVALID, 0},
	{401, 401, NULL, NULL, CKR_USER_NOT_LOGGED_IN, CKR_PIN_INCORRECT},
	{403, 403, NULL, NULL, CKR_FUNCTION_REJECTED, CKR_PIN_INCORRECT},
	{404, 404, NULL, NULL, CKR_DEVICE_REMOVED, 0},
	{413, 413, NULL, NULL, CKR_DATA_LEN_RANGE, 0},
	{429, 429, NULL, NULL, CKR_FUNCTION_REJECTED, 0},
	{400, 499, NULL, NULL, CKR_FUNCTION_FAILED, 0},
	{500, 599, NULL, NULL, CKR_DEVICE_ERROR, 0},
	{1, LONG_MAX, NULL, NULL, CKR_DEVICE_ERROR, 0},
};

static int row_matches(const err_row *r, const mod_http_resp *resp)
{
	long status = resp->transport_failed ? 0 : resp->status;

	if (status < r->lo || status > r->hi)
		return 0;
	if (r->error && strcmp(r->error, resp->error) != 0)
		return 0;
	if (r->message_has && !strcasestr(resp->message, r->message_has))
		return 0;
	return 1;
}

CK_RV mod_err_http(const mod_call *call)
{
	const mod_http_resp *resp = &call->resp;
	CK_RV rv = CKR_DEVICE_ERROR;
	size_t i;

	for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
		if (row_matches(&err_table[i], resp)) {
			rv = call->in_login && err_table[i].rv_in_login ? err_table[i].rv_in_login
									: err_table[i].rv;
			break;
		}
	}
	if (resp->transport_failed)
		rs_err("%s%s%s: no response from rsignd: %s -> %s", call->what,
		       call->signer ? " signer=" : "", call->signer ? call->signer : "",
		       resp->transport_error, mod_rv_name(rv));
	else
		rs_err("%s%s%s: HTTP %ld %s%s%s%s: %.200s -> %s", call->what,
		       call->signer ? " signer=" : "", call->signer ? call->signer : "",
		       resp->status, resp->error[0] ? resp->error : "-",
		       resp->req_id[0] ? " (reqId " : "", resp->req_id, resp->req_id[0] ? ")" : "",
		       resp->message, mod_rv_name(rv));
	return rv;
}

CK_RV mod_err_response(const mod_call *call, const char *problem)
{
	rs_err("%s%s%s: HTTP %ld with an unusable answer: %s -> %s", call->what,
	       call->signer ? " signer=" : "", call->signer ? call->signer : "", call->resp.status,
	       problem, mod_rv_name(CKR_DEVICE_ERROR));
	return CKR_DEVICE_ERROR;
}
