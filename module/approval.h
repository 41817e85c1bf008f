/* What C_Sign does when rsignd answers 403 ApprovalRequired: with
 * `approval = fail` (the default) it says how to ask for approval and fails;
 * with `approval = wait` it opens a signing request, says which rsignctl
 * command approves it, and waits for the decision. */
#ifndef MOD_APPROVAL_H
#define MOD_APPROVAL_H
#include "pkcs11.h"
#include "auth.h"

/* The call was answered 403 ApprovalRequired. */
int mod_approval_needed(const mod_call *call);

/* For a sign call answered 403 ApprovalRequired, made with cred at gen for
 * the signer signer_id (call->signer is its name). Without the lock.
 * fail: one line on stderr (and the log file), CKR_FUNCTION_REJECTED.
 * wait: opens a request (or joins the one this process already has pending
 * for the signer), one line naming it, polls it; once approved makes call
 * again and returns that result (call->resp holds the new answer); rejected,
 * cancelled, expired or approval_timeout: a line, CKR_FUNCTION_REJECTED. */
CK_RV mod_approval_sign(mod_cred *cred, unsigned long gen, const char *signer_id, mod_call *call)
	__attribute__((warn_unused_result));

/* Frees the request table's unused entries; the global lock is held. */
void mod_approval_free_inlock(void);

#endif
