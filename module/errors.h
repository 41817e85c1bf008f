/* The one table from a server call's outcome (transport failure, HTTP
 * status, error word) to a CK_RV, and the one log line per failure. */
#ifndef MOD_ERRORS_H
#define MOD_ERRORS_H
#include "rsign/ckr.h"

#include "pkcs11.h"
#include "auth.h"

/* The names come from the table the server shares (common/ckr.c). */
#define mod_rv_name rs_ckr_name

/* A call that failed in transport or answered with a non-2xx status. */
CK_RV mod_err_http(const mod_call *call);
/* A 2xx answer whose body cannot be used (bad JSON, missing fields, bad
 * base64, wrong signature length): CKR_DEVICE_ERROR. */
CK_RV mod_err_response(const mod_call *call, const char *problem);

#endif
