/* Every error the API can answer, in two tables: the classes (status and
 * error word) and the reasons (name and class). Storage, HSM and PKI
 * outcomes become reasons here and nowhere else. */
#include "server/http/errors.h"
#include "server/hsm/pki.h"

static const struct {
	int status;
	const char *word;
} classes[SRV_E_COUNT] = {
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
	[SRV_E_URI_TOO_LONG] = {414, "URITooLong"},
	[SRV_E_HEADERS_TOO_LARGE] = {431, "RequestHeaderFieldsTooLarge"},
	[SRV_E_HTTP_VERSION] = {505, "HTTPVersionNotSupported"},
};

/* The first reason of each class is its default (srv_reason_default). */
static const struct {
	const char *name;
	srv_err class;
} reasons[SRV_R_COUNT] = {
	[SRV_R_NONE] = {"none", SRV_OK},
	[SRV_R_INVALID_FIELD] = {"invalidField", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_JSON] = {"invalidJson", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_QUERY] = {"invalidQuery", SRV_E_BAD_REQUEST},
	[SRV_R_UNKNOWN_REFERENCE] = {"unknownReference", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_BASE64] = {"invalidBase64", SRV_E_BAD_REQUEST},
	[SRV_R_DATA_LENGTH] = {"dataLength", SRV_E_BAD_REQUEST},
	[SRV_R_DIGEST_LENGTH] = {"digestLength", SRV_E_BAD_REQUEST},
	[SRV_R_SALT_LENGTH] = {"saltLength", SRV_E_BAD_REQUEST},
	[SRV_R_UNKNOWN_ALGORITHM] = {"unknownAlgorithm", SRV_E_BAD_REQUEST},
	[SRV_R_ALGORITHM_MISMATCH] = {"algorithmMismatch", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_METADATA] = {"invalidMetadata", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_CERTIFICATE] = {"invalidCertificate", SRV_E_BAD_REQUEST},
	[SRV_R_UNKNOWN_KEY] = {"unknownKey", SRV_E_BAD_REQUEST},
	[SRV_R_OUTLIVES_CA] = {"outlivesCa", SRV_E_BAD_REQUEST},
	[SRV_R_NO_POLICY] = {"noPolicy", SRV_E_BAD_REQUEST},
	[SRV_R_EXCEEDS_POLICY] = {"exceedsPolicy", SRV_E_BAD_REQUEST},
	[SRV_R_TOKEN_REJECTED] = {"tokenRejected", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_PATH] = {"invalidPath", SRV_E_BAD_REQUEST},
	[SRV_R_AMBIGUOUS_LENGTH] = {"ambiguousLength", SRV_E_BAD_REQUEST},
	[SRV_R_MALFORMED_REQUEST] = {"malformedRequest", SRV_E_BAD_REQUEST},
	[SRV_R_INVALID_IDEMPOTENCY_KEY] = {"invalidIdempotencyKey", SRV_E_BAD_REQUEST},
	[SRV_R_SIGNER_DISABLED] = {"signerDisabled", SRV_E_SIGNER_DISABLED},
	[SRV_R_CERTIFICATE_EXPIRED] = {"certificateExpired", SRV_E_CERT_EXPIRED},
	[SRV_R_CERTIFICATE_NOT_YET_VALID] = {"certificateNotYetValid", SRV_E_CERT_EXPIRED},
	[SRV_R_TOKEN_MISSING] = {"tokenMissing", SRV_E_UNAUTHORIZED},
	[SRV_R_TOKEN_INVALID] = {"tokenInvalid", SRV_E_UNAUTHORIZED},
	[SRV_R_INVALID_CREDENTIALS] = {"invalidCredentials", SRV_E_UNAUTHORIZED},
	[SRV_R_PRINCIPAL_DISABLED] = {"principalDisabled", SRV_E_UNAUTHORIZED},
	[SRV_R_ROLE_REQUIRED] = {"roleRequired", SRV_E_PERMISSION},
	[SRV_R_ADMIN_REQUIRED] = {"adminRequired", SRV_E_PERMISSION},
	[SRV_R_METRICS_REQUIRED] = {"metricsRequired", SRV_E_PERMISSION},
	[SRV_R_BACKUP_UNSUPPORTED] = {"backupUnsupported", SRV_E_CONFLICT},
	[SRV_R_NOT_APPROVER] = {"notApprover", SRV_E_PERMISSION},
	[SRV_R_OWN_REQUEST] = {"ownRequest", SRV_E_PERMISSION},
	[SRV_R_NOT_REQUESTER] = {"notRequester", SRV_E_PERMISSION},
	[SRV_R_APPROVAL_REQUIRED] = {"approvalRequired", SRV_E_APPROVAL},
	[SRV_R_NOT_FOUND] = {"notFound", SRV_E_NOT_FOUND},
	[SRV_R_NO_ENDPOINT] = {"noEndpoint", SRV_E_NOT_FOUND},
	[SRV_R_STATE_CONFLICT] = {"stateConflict", SRV_E_CONFLICT},
	[SRV_R_NAME_TAKEN] = {"nameTaken", SRV_E_CONFLICT},
	[SRV_R_IN_USE] = {"inUse", SRV_E_CONFLICT},
	[SRV_R_SELF_DELETE] = {"selfDelete", SRV_E_CONFLICT},
	[SRV_R_SELF_DISABLE] = {"selfDisable", SRV_E_CONFLICT},
	[SRV_R_APPROVER_IN_USE] = {"approverInUse", SRV_E_CONFLICT},
	[SRV_R_TOO_MANY_TOKENS] = {"tooManyTokens", SRV_E_CONFLICT},
	[SRV_R_IDEMPOTENCY_KEY_REUSED] = {"idempotencyKeyReused", SRV_E_CONFLICT},
	[SRV_R_BODY_TOO_LARGE] = {"bodyTooLarge", SRV_E_TOO_LARGE},
	[SRV_R_RATE_LIMITED] = {"rateLimited", SRV_E_RATE_LIMIT},
	[SRV_R_INTERNAL] = {"internal", SRV_E_INTERNAL},
	[SRV_R_KEY_MISSING] = {"keyMissing", SRV_E_INTERNAL},
	[SRV_R_DATABASE_UNAVAILABLE] = {"databaseUnavailable", SRV_E_UNAVAILABLE},
	[SRV_R_TOKEN_UNAVAILABLE] = {"tokenUnavailable", SRV_E_UNAVAILABLE},
	[SRV_R_URI_TOO_LONG] = {"uriTooLong", SRV_E_URI_TOO_LONG},
	[SRV_R_HEADERS_TOO_LARGE] = {"headersTooLarge", SRV_E_HEADERS_TOO_LARGE},
	[SRV_R_HTTP_VERSION] = {"httpVersion", SRV_E_HTTP_VERSION},
};

int srv_err_status(srv_err e)
{
	return (e >= 0 && e < SRV_E_COUNT) ? classes[e].status : 500;
}

const char *srv_err_word(srv_err e)
{
	return (e >= 0 && e < SRV_E_COUNT) ? classes[e].word : "InternalError";
}

const char *srv_err_history_status(srv_err e)
{
	if (e == SRV_OK)
		return "success";
	if (srv_err_status(e) == 403 || srv_err_status(e) == 429)
		return "denied";
	return "failed";
}

static int reason_ok(srv_reason r)
{
	return r > SRV_R_NONE && r < SRV_R_COUNT && reasons[r].name;
}

srv_err srv_reason_class(srv_reason r)
{
	return reason_ok(r) ? reasons[r].class : SRV_E_INTERNAL;
}

const char *srv_reason_name(srv_reason r)
{
	return reason_ok(r) ? reasons[r].name : "internal";
}

srv_reason srv_reason_default(srv_err e)
{
	/* the enum lists each class's reasons together, the default first
	 * among them except where a more general one was added later */
	static const srv_reason defaults[SRV_E_COUNT] = {
		[SRV_E_BAD_REQUEST] = SRV_R_INVALID_FIELD,
		[SRV_E_SIGNER_DISABLED] = SRV_R_SIGNER_DISABLED,
		[SRV_E_CERT_EXPIRED] = SRV_R_CERTIFICATE_EXPIRED,
		[SRV_E_UNAUTHORIZED] = SRV_R_TOKEN_INVALID,
		[SRV_E_PERMISSION] = SRV_R_ROLE_REQUIRED,
		[SRV_E_APPROVAL] = SRV_R_APPROVAL_REQUIRED,
		[SRV_E_NOT_FOUND] = SRV_R_NOT_FOUND,
		[SRV_E_CONFLICT] = SRV_R_STATE_CONFLICT,
		[SRV_E_TOO_LARGE] = SRV_R_BODY_TOO_LARGE,
		[SRV_E_RATE_LIMIT] = SRV_R_RATE_LIMITED,
		[SRV_E_INTERNAL] = SRV_R_INTERNAL,
		[SRV_E_UNAVAILABLE] = SRV_R_DATABASE_UNAVAILABLE,
		[SRV_E_URI_TOO_LONG] = SRV_R_URI_TOO_LONG,
		[SRV_E_HEADERS_TOO_LARGE] = SRV_R_HEADERS_TOO_LARGE,
		[SRV_E_HTTP_VERSION] = SRV_R_HTTP_VERSION,
	};
	return (e > SRV_OK && e < SRV_E_COUNT) ? defaults[e] : SRV_R_INTERNAL;
}

srv_reason srv_reason_for_status(int status)
{
	if (status == 400) /* a request line, header or chunk that does not parse */
		return SRV_R_MALFORMED_REQUEST;
	for (int e = SRV_E_BAD_REQUEST; e < SRV_E_COUNT; e++)
		if (classes[e].status == status)
			return srv_reason_default((srv_err)e);
	return SRV_R_INTERNAL;
}

srv_reason srv_reason_from_store(srv_st_rc rc)
{
	switch (rc) {
	case SRV_ST_NOT_FOUND:
		return SRV_R_NOT_FOUND;
	case SRV_ST_CONFLICT:
		return SRV_R_STATE_CONFLICT;
	case SRV_ST_UNAVAILABLE:
		return SRV_R_DATABASE_UNAVAILABLE;
	default:
		return SRV_R_INTERNAL;
	}
}

srv_reason srv_reason_from_hsm(srv_hsm_rc rc)
{
	switch (rc) {
	case SRV_HSM_UNAVAILABLE:
		return SRV_R_TOKEN_UNAVAILABLE;
	case SRV_HSM_INVALID:
		return SRV_R_TOKEN_REJECTED;
	case SRV_HSM_NOT_FOUND: /* a key the database knows is gone from the token */
		return SRV_R_KEY_MISSING;
	default:
		return SRV_R_INTERNAL;
	}
}

srv_reason srv_reason_from_pki(int rc)
{
	switch (rc) {
	case SRV_PKI_EINVAL:
		return SRV_R_INVALID_FIELD;
	case SRV_PKI_EUNAVAIL:
		return SRV_R_TOKEN_UNAVAILABLE;
	default:
		return SRV_R_INTERNAL;
	}
}
