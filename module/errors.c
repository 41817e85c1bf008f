/* The one table from a server call's outcome to the CK_RV a PKCS#11 caller
 * sees, and the one log line each failure writes (signer, HTTP status, error
 * word, reason, request id; never a token, PIN, secret or signed data).
 *
 * Only the status and the error body's `reason` (server/http/errors.c) are
 * read, never the message: messages are for people and change wording. A
 * 4xx without a reason (a proxy, an older rsignd) falls back on the row of
 * its status. The first matching row wins.
 *
 * | outcome                                             | CK_RV                  |
 * |-----------------------------------------------------|------------------------|
 * | no response: connect refused, DNS, TLS, timeout,    | CKR_DEVICE_ERROR       |
 * |   body over 1 MiB                                   |                        |
 * | 2xx whose body does not parse, misses a field, has  | CKR_DEVICE_ERROR       |
 * |   bad base64 or a signature of the wrong length     |   (mod_err_response)   |
 * | 400 signerDisabled, certificateExpired,             | CKR_FUNCTION_REJECTED  |
 * |   certificateNotYetValid                            |                        |
 * | 400 dataLength, digestLength                        | CKR_DATA_LEN_RANGE     |
 * | 400 any other reason, or none                       | CKR_DATA_INVALID       |
 * | 401 (in C_Login: CKR_PIN_INCORRECT)                 | CKR_USER_NOT_LOGGED_IN |
 * | 403 roleRequired, approvalRequired, any (in         | CKR_FUNCTION_REJECTED  |
 * |   C_Login: CKR_PIN_INCORRECT)                       |                        |
 * | 404 noEndpoint: the url is not rsignd's API         | CKR_DEVICE_ERROR       |
 * | 404 notFound, or no reason: the signer is gone      | CKR_DEVICE_REMOVED     |
 * | 413 (bodyTooLarge)                                  | CKR_DATA_LEN_RANGE     |
 * | 429 (rateLimited)                                   | CKR_FUNCTION_REJECTED  |
 * | other 4xx (409 Conflict, ...)                       | CKR_FUNCTION_FAILED    |
 * | 5xx (internal, databaseUnavailable, proxies)        | CKR_DEVICE_ERROR       |
 * | anything else (1xx, 3xx: redirects are not followed)| CKR_DEVICE_ERROR       |
 *
 * A disabled signer or a certificate outside its validity is a refusal of
 * the signer, not a fault in the caller's data: CKR_FUNCTION_REJECTED. */
#include <limits.h>
#include <string.h>

#include "rsign/log.h"

#include "errors.h"

typedef struct err_row {
	long lo, hi;	    /* HTTP status range; 0..0 = no response */
	const char *reason; /* the error body's reason, NULL = any or none */
	CK_RV rv;
	CK_RV rv_in_login; /* inside C_Login; 0 = rv */
	const char *hint;  /* added to the log line, or NULL */
} err_row;

static const err_row err_table[] = {
	{0, 0, NULL, CKR_DEVICE_ERROR, 0, NULL},
	{400, 400, "signerDisabled", CKR_FUNCTION_REJECTED, 0, NULL},
	{400, 400, "certificateExpired", CKR_FUNCTION_REJECTED, 0, NULL},
	{400, 400, "certificateNotYetValid", CKR_FUNCTION_REJECTED, 0, NULL},
	{400, 400, "dataLength", CKR_DATA_LEN_RANGE, 0, NULL},
	{400, 400, "digestLength", CKR_DATA_LEN_RANGE, 0, NULL},
	{400, 400, NULL, CKR_DATA_INVALID, 0, NULL},
	{401, 401, NULL, CKR_USER_NOT_LOGGED_IN, CKR_PIN_INCORRECT, NULL},
	{403, 403, NULL, CKR_FUNCTION_REJECTED, CKR_PIN_INCORRECT, NULL},
	{404, 404, "noEndpoint", CKR_DEVICE_ERROR, 0,
	 "; the url does not point at rsignd's API (check `url` in the module configuration)"},
	{404, 404, NULL, CKR_DEVICE_REMOVED, 0, NULL},
	{413, 413, NULL, CKR_DATA_LEN_RANGE, 0, NULL},
	{429, 429, NULL, CKR_FUNCTION_REJECTED, 0, NULL},
	{400, 499, NULL, CKR_FUNCTION_FAILED, 0, NULL},
	{500, 599, NULL, CKR_DEVICE_ERROR, 0, NULL},
	{1, LONG_MAX, NULL, CKR_DEVICE_ERROR, 0, NULL},
};

static int row_matches(const err_row *r, const mod_http_resp *resp)
{
	long status = resp->transport_failed ? 0 : resp->status;

	if (status < r->lo || status > r->hi)
		return 0;
	return !r->reason || strcmp(r->reason, resp->reason) == 0;
}

CK_RV mod_err_http(const mod_call *call)
{
	const mod_http_resp *resp = &call->resp;
	const err_row *row = NULL;
	CK_RV rv = CKR_DEVICE_ERROR;
	size_t i;

	for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
		if (row_matches(&err_table[i], resp)) {
			row = &err_table[i];
			rv = call->in_login && row->rv_in_login ? row->rv_in_login : row->rv;
			break;
		}
	}
	if (resp->transport_failed)
		rs_err("%s%s%s: no response from rsignd: %s -> %s", call->what,
		       call->signer ? " signer=" : "", call->signer ? call->signer : "",
		       resp->transport_error, mod_rv_name(rv));
	else
		rs_err("%s%s%s: HTTP %ld %s reason=%s%s%s%s: %.200s -> %s%s", call->what,
		       call->signer ? " signer=" : "", call->signer ? call->signer : "",
		       resp->status, resp->error[0] ? resp->error : "-",
		       resp->reason[0] ? resp->reason : "-", resp->req_id[0] ? " (reqId " : "",
		       resp->req_id, resp->req_id[0] ? ")" : "", resp->message, mod_rv_name(rv),
		       row && row->hint ? row->hint : "");
	return rv;
}

CK_RV mod_err_response(const mod_call *call, const char *problem)
{
	rs_err("%s%s%s: HTTP %ld with an unusable answer: %s -> %s", call->what,
	       call->signer ? " signer=" : "", call->signer ? call->signer : "", call->resp.status,
	       problem, mod_rv_name(CKR_DEVICE_ERROR));
	return CKR_DEVICE_ERROR;
}
