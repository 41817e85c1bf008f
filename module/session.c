/* Sessions and login: C_OpenSession, C_CloseSession, C_CloseAllSessions,
 * C_GetSessionInfo, C_SessionCancel, C_Login, C_Logout, and the session
 * table.
 *
 * Session handles count up from 1 and are never reused within a process, so
 * a handle looked up again after an unlocked server call either finds the
 * same session or none. Read/write sessions are allowed (tools open them by
 * default); anything that would write answers CKR_TOKEN_WRITE_PROTECTED.
 *
 * Login, per token as PKCS#11 has it:
 * - credentials configured: no CKF_LOGIN_REQUIRED; C_Login accepts any PIN
 *   and only changes the session state;
 * - otherwise: the PIN is an access token or "clientId:clientSecret"; C_Login
 *   resolves the token's signer with it (a wrong PIN is CKR_PIN_INCORRECT)
 *   and keeps it for the token's requests until C_Logout or until the last
 *   session on the token closes. */
#include <stdlib.h>
#include <string.h>

#include "rsign/log.h"

#include "module.h"
#include "errors.h"

#define MAX_SESSIONS 65536

static struct {
	mod_session **v;
	size_t n, cap;
	CK_SESSION_HANDLE next;
} tab;

/* The position of session h in the table, tab.n when there is none. */
static size_t session_index_inlock(CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < tab.n; i++)
		if (tab.v[i]->handle == h)
			break;
	return i;
}

mod_session *mod_session_get_inlock(CK_SESSION_HANDLE h)
{
	size_t i = session_index_inlock(h);

	return i < tab.n ? tab.v[i] : NULL;
}

CK_RV mod_session_enter(CK_SESSION_HANDLE h, mod_session **s)
{
	CK_RV rv = mod_enter();

	*s = NULL;
	if (rv != CKR_OK)
		return rv;
	*s = mod_session_get_inlock(h);
	if (!*s) {
		mod_unlock();
		return CKR_SESSION_HANDLE_INVALID;
	}
	return CKR_OK;
}

CK_RV mod_session_reenter(CK_SESSION_HANDLE h, unsigned long gen, CK_RV rv, mod_session **s)
{
	*s = NULL;
	if (mod_reenter(gen) != CKR_OK)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	*s = mod_session_get_inlock(h);
	return *s ? rv : CKR_SESSION_CLOSED;
}

CK_RV mod_session_answer(const char *fn, CK_SESSION_HANDLE h, CK_RV answer)
{
	mod_session *s;
	CK_RV rv = mod_session_enter(h, &s);

	if (rv != CKR_OK)
		return mod_rv(fn, rv);
	mod_unlock();
	return mod_rv(fn, answer);
}

static void logout_inlock(mod_slot *slot)
{
	slot->logged_in = 0;
	if (mod_login_required())
		mod_cred_clear(&slot->pin_cred);
}

/* Removes entry i; an op detached by a thread still working on it is not
 * here to free: that thread frees it when it finds the session gone. */
static void session_remove_inlock(size_t i)
{
	mod_session *s = tab.v[i];
	mod_slot *slot = s->slot;

	slot->sessions--;
	if (s->flags & CKF_RW_SESSION)
		slot->rw_sessions--;
	if (slot->sessions == 0)
		logout_inlock(slot);
	free(s->found);
	mod_op_free(s->sign);
	mod_op_free(s->verify);
	mod_digest_free(s->digest);
	free(s);
	tab.v[i] = tab.v[--tab.n];
}

void mod_sessions_free_inlock(void)
{
	while (tab.n)
		session_remove_inlock(tab.n - 1);
	free(tab.v);
	memset(&tab, 0, sizeof(tab));
}

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
		    CK_SESSION_HANDLE_PTR phSession)
{
	mod_session *s = NULL;
	mod_slot *slot;
	CK_RV rv;

	if (!phSession)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	if (!(flags & CKF_SERIAL_SESSION))
		return mod_rv(__func__, CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	rv = mod_slot_enter(slotID, 1, &slot);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (tab.n >= MAX_SESSIONS) {
		rv = CKR_SESSION_COUNT;
		goto out;
	}
	if (tab.n == tab.cap) {
		size_t cap = tab.cap ? tab.cap * 2 : 16;
		mod_session **v = realloc(tab.v, cap * sizeof(*v));

		if (!v) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		tab.v = v;
		tab.cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	s->handle = ++tab.next;
	s->slot = slot;
	s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
	tab.v[tab.n++] = s;
	slot->sessions++;
	if (flags & CKF_RW_SESSION)
		slot->rw_sessions++;
	*phSession = s->handle;
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
	mod_session *s;
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	session_remove_inlock(session_index_inlock(hSession));
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
	mod_slot *slot;
	size_t i;
	CK_RV rv;

	rv = mod_enter();
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	slot = mod_slot_get_inlock(slotID);
	if (!slot) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	for (i = tab.n; i-- > 0;)
		if (tab.v[i]->slot == slot)
			session_remove_inlock(i);
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

/* Ends *op; one detached by a busy thread is not here to end. */
static CK_RV cancel_op(struct mod_op **op, int busy)
{
	mod_op_free(*op);
	*op = NULL;
	return busy ? CKR_OPERATION_CANCEL_FAILED : CKR_OK;
}

CK_RV mod_session_cancel_inlock(mod_session *s, CK_FLAGS flags)
{
	CK_RV rv = CKR_OK, r;

	if ((flags & CKF_SIGN) && (r = cancel_op(&s->sign, s->sign_busy)) != CKR_OK)
		rv = r;
	if ((flags & CKF_VERIFY) && (r = cancel_op(&s->verify, s->verify_busy)) != CKR_OK)
		rv = r;
	if (flags & CKF_DIGEST) {
		mod_digest_free(s->digest);
		s->digest = NULL;
		if (s->digest_busy)
			rv = CKR_OPERATION_CANCEL_FAILED;
	}
	if (flags & CKF_FIND_OBJECTS) {
		free(s->found);
		s->found = NULL;
		s->n_found = s->find_pos = 0;
		s->find_active = 0;
	}
	return rv;
}

/* PKCS#11 3.0: ends the session's operations named by flags. The module
 * has no encrypt, decrypt, message or key operations: those flags find
 * nothing to end. */
CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	mod_session *s;
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	rv = mod_session_cancel_inlock(s, flags);
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	mod_session *s;
	int rw;
	CK_RV rv;

	if (!pInfo)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	rw = (s->flags & CKF_RW_SESSION) != 0;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->slotID = s->slot->id;
	pInfo->flags = s->flags;
	if (s->slot->logged_in)
		pInfo->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	else
		pInfo->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
	pInfo->ulDeviceError = 0;
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
	      CK_ULONG ulPinLen)
{
	char name[MOD_NAME_MAX + 1];
	mod_signer_rec rec;
	mod_cred cand = {0};
	mod_session *s;
	unsigned long gen;
	CK_RV rv;

	if (!pPin && ulPinLen)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (userType == CKU_CONTEXT_SPECIFIC) {
		/* No key needs CKA_ALWAYS_AUTHENTICATE; accepted while signing. */
		if (!s->sign && !s->sign_busy)
			rv = CKR_OPERATION_NOT_INITIALIZED;
		else if (!s->slot->logged_in && mod_login_required())
			rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	if (userType != CKU_USER) {
		rv = CKR_USER_TYPE_INVALID;
		goto out;
	}
	if (s->slot->logged_in) {
		rv = CKR_USER_ALREADY_LOGGED_IN;
		goto out;
	}
	if (!mod_login_required()) {
		s->slot->logged_in = 1; /* the PIN is not used */
		goto out;
	}
	if (mod_cred_from_pin(pPin, ulPinLen, &cand) < 0) {
		rv = ulPinLen ? CKR_PIN_LEN_RANGE : CKR_PIN_INCORRECT;
		goto out;
	}
	rs_strlcpy(name, s->slot->name, sizeof(name));
	gen = mod_generation_inlock();
	mod_unlock();

	rv = mod_slot_fetch_signer(&cand, name, 1, &rec);

	rv = mod_session_reenter(hSession, gen, rv, &s);
	if (rv != CKR_OK)
		goto out;
	if (s->slot->logged_in) {
		rv = CKR_USER_ALREADY_LOGGED_IN;
		goto out;
	}
	/* A new generation, so that calls still holding a copy of the old
	 * credential do not store into the new one. */
	mod_cred_clear(&s->slot->pin_cred);
	cand.gen = s->slot->pin_cred.gen + 1;
	s->slot->pin_cred = cand;
	memset(&cand, 0, sizeof(cand));
	mod_slot_apply_inlock(s->slot, &rec);
	s->slot->logged_in = 1;
out:
	mod_unlock();
	mod_cred_clear(&cand);
	return mod_rv(__func__, rv);
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
	mod_session *s;
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (!s->slot->logged_in) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	logout_inlock(s->slot);
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}
