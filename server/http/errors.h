/* The API's errors in one table: every reason an answer can fail for, with
 * its HTTP status and error word, and the mapping of storage, HSM and PKI
 * outcomes onto reasons. Handlers name a reason; nothing else decides a
 * status. */
#ifndef SRV_ERRORS_H
#define SRV_ERRORS_H
#include "server/hsm/hsm.h"
#include "server/store/store.h"

/* The error word of a response: its class. A program branches on this, or
 * more finely on the reason. */
typedef enum {
	SRV_OK = 0,
	SRV_E_BAD_REQUEST,
	SRV_E_SIGNER_DISABLED,
	SRV_E_CERT_EXPIRED,
	SRV_E_UNAUTHORIZED,
	SRV_E_PERMISSION,
	SRV_E_APPROVAL,
	SRV_E_NOT_FOUND,
	SRV_E_CONFLICT,
	SRV_E_TOO_LARGE,
	SRV_E_RATE_LIMIT,
	SRV_E_INTERNAL,
	SRV_E_UNAVAILABLE,
	SRV_E_URI_TOO_LONG,	 /* 414, from libmicrohttpd */
	SRV_E_HEADERS_TOO_LARGE, /* 431, from libmicrohttpd */
	SRV_E_HTTP_VERSION,	 /* 505, from libmicrohttpd */
	SRV_E_COUNT
} srv_err;

/* Why a request failed: the stable, machine-readable `reason` of an error
 * body (docs/api.md lists them). Each belongs to exactly one srv_err. */
typedef enum {
	SRV_R_NONE = 0,
	/* 400 BadRequest */
	SRV_R_INVALID_JSON,	       /* invalidJson */
	SRV_R_INVALID_FIELD,	       /* invalidField */
	SRV_R_INVALID_QUERY,	       /* invalidQuery */
	SRV_R_UNKNOWN_REFERENCE,       /* unknownReference */
	SRV_R_INVALID_BASE64,	       /* invalidBase64 */
	SRV_R_DATA_LENGTH,	       /* dataLength */
	SRV_R_DIGEST_LENGTH,	       /* digestLength */
	SRV_R_SALT_LENGTH,	       /* saltLength */
	SRV_R_UNKNOWN_ALGORITHM,       /* unknownAlgorithm */
	SRV_R_ALGORITHM_MISMATCH,      /* algorithmMismatch */
	SRV_R_INVALID_METADATA,	       /* invalidMetadata */
	SRV_R_INVALID_CERTIFICATE,     /* invalidCertificate */
	SRV_R_UNKNOWN_KEY,	       /* unknownKey */
	SRV_R_OUTLIVES_CA,	       /* outlivesCa */
	SRV_R_NO_POLICY,	       /* noPolicy */
	SRV_R_EXCEEDS_POLICY,	       /* exceedsPolicy */
	SRV_R_TOKEN_REJECTED,	       /* tokenRejected */
	SRV_R_INVALID_PATH,	       /* invalidPath */
	SRV_R_AMBIGUOUS_LENGTH,	       /* ambiguousLength */
	SRV_R_MALFORMED_REQUEST,       /* malformedRequest */
	SRV_R_INVALID_IDEMPOTENCY_KEY, /* invalidIdempotencyKey */
	/* 400 SignerDisabled */
	SRV_R_SIGNER_DISABLED, /* signerDisabled */
	/* 400 CertificateExpired */
	SRV_R_CERTIFICATE_EXPIRED,	 /* certificateExpired */
	SRV_R_CERTIFICATE_NOT_YET_VALID, /* certificateNotYetValid */
	/* 401 Unauthorized */
	SRV_R_TOKEN_MISSING,	   /* tokenMissing */
	SRV_R_TOKEN_INVALID,	   /* tokenInvalid */
	SRV_R_INVALID_CREDENTIALS, /* invalidCredentials */
	SRV_R_PRINCIPAL_DISABLED,  /* principalDisabled */
	/* 403 PermissionDenied */
	SRV_R_ADMIN_REQUIRED,	  /* adminRequired */
	SRV_R_METRICS_REQUIRED,	  /* metricsRequired */
	SRV_R_BACKUP_UNSUPPORTED, /* backupUnsupported */
	SRV_R_ROLE_REQUIRED,	  /* roleRequired */
	SRV_R_NOT_APPROVER,	  /* notApprover */
	SRV_R_OWN_REQUEST,	  /* ownRequest */
	SRV_R_NOT_REQUESTER,	  /* notRequester */
	/* 403 ApprovalRequired */
	SRV_R_APPROVAL_REQUIRED, /* approvalRequired */
	/* 404 NotFound */
	SRV_R_NOT_FOUND,   /* notFound */
	SRV_R_NO_ENDPOINT, /* noEndpoint */
	/* 409 Conflict */
	SRV_R_NAME_TAKEN,	      /* nameTaken */
	SRV_R_STATE_CONFLICT,	      /* stateConflict */
	SRV_R_IN_USE,		      /* inUse */
	SRV_R_SELF_DELETE,	      /* selfDelete */
	SRV_R_SELF_DISABLE,	      /* selfDisable */
	SRV_R_APPROVER_IN_USE,	      /* approverInUse */
	SRV_R_TOO_MANY_TOKENS,	      /* tooManyTokens */
	SRV_R_IDEMPOTENCY_KEY_REUSED, /* idempotencyKeyReused */
	/* 413 PayloadTooLarge */
	SRV_R_BODY_TOO_LARGE, /* bodyTooLarge */
	/* 429 RateLimitExceeded */
	SRV_R_RATE_LIMITED, /* rateLimited */
	/* 500 InternalError */
	SRV_R_INTERNAL,	   /* internal */
	SRV_R_KEY_MISSING, /* keyMissing */
	/* 503 Unavailable */
	SRV_R_DATABASE_UNAVAILABLE, /* databaseUnavailable */
	SRV_R_TOKEN_UNAVAILABLE,    /* tokenUnavailable */
	/* 414, 431, 505: requests libmicrohttpd refuses before rsignd sees them */
	SRV_R_URI_TOO_LONG,	 /* uriTooLong */
	SRV_R_HEADERS_TOO_LARGE, /* headersTooLarge */
	SRV_R_HTTP_VERSION,	 /* httpVersion */
	SRV_R_COUNT
} srv_reason;

int srv_err_status(srv_err e);
const char *srv_err_word(srv_err e);
/* "success" for SRV_OK, "denied" for 403s and 429s (the caller may not
 * sign, or not now), "failed" otherwise: the status of a signing-history
 * record. */
const char *srv_err_history_status(srv_err e);

/* The class a reason belongs to (SRV_E_INTERNAL for an unknown one). */
srv_err srv_reason_class(srv_reason r);
/* The reason's camelCase name ("digestLength"); "internal" when unknown. */
const char *srv_reason_name(srv_reason r);
/* The reason a handler that failed with only a class is reported with. */
srv_reason srv_reason_default(srv_err e);
/* The reason for a status libmicrohttpd answered with by itself: the
 * default reason of the class with that status (400: malformedRequest),
 * SRV_R_INTERNAL for a status no class has. */
srv_reason srv_reason_for_status(int status);

srv_reason srv_reason_from_store(srv_st_rc rc);
srv_reason srv_reason_from_hsm(srv_hsm_rc rc);
/* SRV_PKI_* codes of pki.h */
srv_reason srv_reason_from_pki(int rc);

#endif
