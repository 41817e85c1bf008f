/* The API's error words and the one table that maps every internal outcome
 * (storage, HSM, request checks) to an HTTP status and word. */
#ifndef SRV_ERRORS_H
#define SRV_ERRORS_H
#include "server/hsm/hsm.h"
#include "server/store/store.h"

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
	SRV_E_COUNT
} srv_err;

int srv_err_status(srv_err e);
const char *srv_err_word(srv_err e);
/* "success" for SRV_OK, "denied" for 403s, "failed" otherwise: the status
 * of a signing-history record. */
const char *srv_err_history_status(srv_err e);
srv_err srv_err_from_store(srv_st_rc rc);
srv_err srv_err_from_hsm(srv_hsm_rc rc);
/* SRV_PKI_* codes of pki.h */
srv_err srv_err_from_pki(int rc);

#endif
