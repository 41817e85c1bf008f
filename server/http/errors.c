/* Every error the API can answer, in one table: status, word, history
 * status. Storage and HSM outcomes are mapped here and nowhere else. */
#include "server/http/errors.h"
#include "server/hsm/pki.h"

static const struct {
	int status;
	const char *word;
} table[SRV_E_COUNT] = {
	[SRV_OK] = {200, "OK"},
	[SRV_E_BAD_REQUEST] = {400, "BadRequest"},
	[SRV_E_SIGNER_DISABLED] = {400, "SignerDisabled"},
	[SRV_E_CERT_EXPIRED] = {400, "CertificateExpired"},
	[SRV_E_UNAUTHORIZED] = {401, "Unauthorized"},
	[SRV_E_PERMISSION] = {403, "PermissionDenied"},
	[SRV_E_APPROVAL] = {403, "ApprovalRequired"},
	[SRV_E_NOT_FOUND] = {404, "NotFound"},
	[SRV_E_CONFLICT] = {409, "Conflict"},
	[SRV_E_TOO_LARGE] = {413, "PayloadTooLarge"},
	[SRV_E_RATE_LIMIT] = {429, "RateLimitExceeded"},
	[SRV_E_INTERNAL] = {500, "InternalError"},
	[SRV_E_UNAVAILABLE] = {503, "Unavailable"},
};

int srv_err_status(srv_err e)
{
	return (e >= 0 && e < SRV_E_COUNT) ? table[e].status : 500;
}

const char *srv_err_word(srv_err e)
{
	return (e >= 0 && e < SRV_E_COUNT) ? table[e].word : "InternalError";
}

const char *srv_err_history_status(srv_err e)
{
	if (e == SRV_OK)
		return "success";
	if (srv_err_status(e) == 403)
		return "denied";
	return "failed";
}

srv_err srv_err_from_store(srv_st_rc rc)
{
	switch (rc) {
	case SRV_ST_OK:
		return SRV_OK;
	case SRV_ST_NOT_FOUND:
		return SRV_E_NOT_FOUND;
	case SRV_ST_CONFLICT:
		return SRV_E_CONFLICT;
	case SRV_ST_UNAVAILABLE:
		return SRV_E_UNAVAILABLE;
	default:
		return SRV_E_INTERNAL;
	}
}

srv_err srv_err_from_hsm(srv_hsm_rc rc)
{
	switch (rc) {
	case SRV_HSM_OK:
		return SRV_OK;
	case SRV_HSM_UNAVAILABLE:
		return SRV_E_UNAVAILABLE;
	case SRV_HSM_INVALID:
		return SRV_E_BAD_REQUEST;
	case SRV_HSM_NOT_FOUND: /* a key the database knows is gone from the token */
	default:
		return SRV_E_INTERNAL;
	}
}

srv_err srv_err_from_pki(int rc)
{
	switch (rc) {
	case SRV_PKI_OK:
		return SRV_OK;
	case SRV_PKI_EINVAL:
		return SRV_E_BAD_REQUEST;
	case SRV_PKI_EUNAVAIL:
		return SRV_E_UNAVAILABLE;
	default:
		return SRV_E_INTERNAL;
	}
}
