/* The session pool and the token's health: taking and giving back sessions,
 * reopening a lost one, and re-initialising the whole module after a token
 * fault, with backoff, by one thread at a time while no other is inside the
 * module. Every PKCS#11 call after srv_hsm_open runs through hsm_run or
 * hsm_ping (the locking rules are in hsm_int.h).
 *
 * States and their log lines (one per change, never one per call):
 *   up --fault--> down       ERROR "...; re-initialising the PKCS#11 module"
 *   down --re-init ok--> up  WARN  "... is available again ..."
 *   down --re-init fails-->  ERROR "... stays unavailable: ...; retrying ..."
 *                            the first time after a fault, DEBUG after that
 * While down, calls fail fast; one that comes after the backoff makes the
 * next attempt. A key still not found after a re-init: ERROR naming it,
 * once. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/hsm/hsm_int.h"

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Faults after which the session (or its login) cannot be trusted: reopen. */
static int rv_is_session_fault(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	       rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_OPERATION_ACTIVE;
}

/* Faults of the module or the token itself: re-initialise the module. */
static int rv_is_token_fault(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED ||
	       rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED ||
	       rv == CKR_SLOT_ID_INVALID || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* A login the token refuses for good: retrying could lock the PIN. */
static int rv_is_pin_refusal(CK_RV rv)
{
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED ||
	       rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE;
}

/* ---- sessions ------------------------------------------------------------ */

static void sess_drop(srv_hsm *h, hsm_sess *s)
{
	/* a handle of an older generation belongs to a module instance that
	 * is gone: forget it, never pass it to the new one */
	if (s->h != CK_INVALID_HANDLE && s->gen == h->gen && h->mod)
		(void)h->mod->C_CloseSession(s->h);
	s->h = CK_INVALID_HANDLE;
}

/* Opens a session for s in generation gen and logs in (the login is the
 * token's: a second one is CKR_USER_ALREADY_LOGGED_IN, which is fine). */
static CK_RV sess_open(srv_hsm *h, hsm_sess *s, unsigned long gen, const char **fn)
{
	CK_SESSION_HANDLE sh;
	CK_RV rv;

	*fn = "C_OpenSession";
	rv = h->mod->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
	if (rv != CKR_OK)
		return rv;
	*fn = "C_Login";
	rv = h->mod->C_Login(sh, CKU_USER, (CK_UTF8CHAR_PTR)h->pin, strlen(h->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		(void)h->mod->C_CloseSession(sh);
		return rv;
	}
	s->h = sh;
	s->gen = gen;
	return CKR_OK;
}

CK_RV hsm_sess_ready(srv_hsm *h, hsm_sess *s, const char **fn)
{
	if (s->h != CK_INVALID_HANDLE && s->gen == h->gen)
		return CKR_OK;
	s->h = CK_INVALID_HANDLE;
	return sess_open(h, s, h->gen, fn);
}

void hsm_sessions_drop_all(srv_hsm *h)
{
	int logged_out = 0;

	for (int i = 0; h->mod && h->sess && i < h->nsess; i++) {
		hsm_sess *s = &h->sess[i];
		if (s->h == CK_INVALID_HANDLE || s->gen != h->gen)
			continue;
		if (!logged_out) /* the login belongs to the token, not the session */
			logged_out = h->mod->C_Logout(s->h) == CKR_OK;
		sess_drop(h, s);
	}
	for (int i = 0; h->sess && i < h->nsess; i++)
		h->sess[i].h = CK_INVALID_HANDLE;
	hsm_module_unload(h->mod);
	h->mod = NULL;
}

/* May a call enter now? Readers wait while a writer is inside or waiting
 * (unless writes are shared); a writer waits for the other writer and,
 * unless writes are shared, for every call inside to leave. */
static int may_enter_inlock(srv_hsm *h, int write)
{
	if (write)
		return !h->writing && (h->shared_writes || h->active == 0);
	return h->shared_writes || (!h->writing && !h->writers_waiting);
}

/* Takes a free session; *gen is the generation it belongs to. HSM_RV_DOWN
 * at once while the token is down or being re-initialised. write: the call
 * creates or destroys objects (hsm_run_write). */
static CK_RV pool_take(srv_hsm *h, hsm_sess **out, unsigned long *gen, const char **fn, int write)
{
	CK_RV rv = CKR_OK;

	*out = NULL;
	pthread_mutex_lock(&h->lock);
	if (write)
		h->writers_waiting++;
	for (;;) {
		*gen = h->gen;
		if (h->closing) {
			*fn = "the session pool is closed";
			rv = HSM_RV_UNAVAILABLE;
			break;
		}
		if (h->down || h->reiniting) {
			*fn = h->reiniting ? "the module is being re-initialised"
					   : "the token is unavailable";
			rv = HSM_RV_DOWN;
			break;
		}
		if (may_enter_inlock(h, write))
			for (int i = 0; i < h->nsess && !*out; i++)
				if (!h->sess[i].busy)
					*out = &h->sess[i];
		if (*out)
			break;
		pthread_cond_wait(&h->cond, &h->lock);
	}
	if (write) {
		h->writers_waiting--;
		if (*out)
			h->writing = 1;
		else
			pthread_cond_broadcast(&h->cond); /* readers held back by this writer */
	}
	if (*out) {
		(*out)->busy = 1;
		h->active++;
	}
	pthread_mutex_unlock(&h->lock);
	return rv;
}

/* Leaves the module: wakes session waiters, srv_hsm_close, writers and a
 * re-init waiting for active to reach 0. */
static void module_leave(srv_hsm *h, hsm_sess *s, int write)
{
	pthread_mutex_lock(&h->lock);
	if (s)
		s->busy = 0;
	if (write)
		h->writing = 0;
	h->active--;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* ---- re-initialisation ------------------------------------------------------ */

/* The module as new: every session closed, C_Finalize, C_Initialize, the
 * token found again by label, every session opened and logged in for the
 * generation gen. Runs with reiniting set and nobody else in the module. */
static int reinit(srv_hsm *h, unsigned long gen, int *pin_refused, char *err, size_t errlen)
{
	const char *fn = "";
	int found = 0;
	CK_RV rv;

	hsm_sessions_drop_all(h);
	h->mod = hsm_module_load(h->path, err, errlen);
	if (!h->mod)
		return 0;
	rv = hsm_slot_find(h->mod, h->label, &h->slot, &found, &fn);
	if (rv == CKR_OK && !found) {
		rs_errf(err, errlen, "no token labelled \"%s\" in %s", h->label, h->path);
		goto fail;
	}
	for (int i = 0; rv == CKR_OK && i < h->nsess; i++)
		rv = sess_open(h, &h->sess[i], gen, &fn);
	if (rv == CKR_OK)
		return 1;
	*pin_refused = rv_is_pin_refusal(rv);
	rs_errf(err, errlen, "%s failed: %s", fn, hsm_rv_name(rv));
fail:
	for (int i = 0; i < h->nsess; i++)
		h->sess[i].h = CK_INVALID_HANDLE; /* C_Finalize closes them */
	hsm_module_unload(h->mod);
	h->mod = NULL;
	return 0;
}

static void log_fault(srv_hsm *h, const char *what, const char *fn, CK_RV rv)
{
	if (rv == HSM_RV_NOT_FOUND)
		rs_err("hsm: token \"%s\": %s: a key that should be there is not found (%s); "
		       "re-initialising the PKCS#11 module",
		       h->label, what, fn);
	else
		rs_err("hsm: token \"%s\" is unavailable: %s: %s returned %s; re-initialising the "
		       "PKCS#11 module",
		       h->label, what, fn, hsm_rv_name(rv));
}

/* Called after a call saw fault rv (from fn) in generation seen. The first
 * fault takes the token down: calls fail fast until a re-init succeeds. A
 * key not found (HSM_RV_NOT_FOUND) is only a suspicion: it re-initialises
 * when an attempt is due, and otherwise leaves the token as it is.
 * Returns 1 when a generation newer than seen is up (this thread
 * re-initialised the module, or another one did meanwhile): run the call
 * again. 0 when the token stays unavailable for now: another thread is
 * re-initialising, the backoff has not passed, the PIN was refused, or the
 * attempt failed. */
static int recover(srv_hsm *h, unsigned long seen, const char *what, const char *fn, CK_RV rv)
{
	char err[512] = "";
	int first, up, pin_refused = 0, fail_logged;
	unsigned long gen;
	double now = mono_now();

	pthread_mutex_lock(&h->lock);
	if (h->closing) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	if (!h->down && !h->reiniting && h->gen != seen) {
		pthread_mutex_unlock(&h->lock);
		return 1;
	}
	if (rv == HSM_RV_NOT_FOUND &&
	    (h->down || h->reiniting || h->pin_refused || now < h->next_try)) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	first = !h->down && !h->reiniting;
	h->down = 1;
	if (h->reiniting || h->pin_refused || now < h->next_try) {
		pthread_mutex_unlock(&h->lock);
		if (first)
			log_fault(h, what, fn, rv);
		return 0;
	}
	h->reiniting = 1; /* the one re-init: callers fail fast meanwhile */
	while (h->active > 0)
		pthread_cond_wait(&h->cond, &h->lock);
	if (now - h->last_try >= HSM_BACKOFF_QUIET)
		h->backoff = HSM_BACKOFF_MIN;
	gen = h->gen + 1;
	pthread_mutex_unlock(&h->lock);

	if (first)
		log_fault(h, what, fn, rv);
	up = reinit(h, gen, &pin_refused, err, sizeof err);

	pthread_mutex_lock(&h->lock);
	now = mono_now();
	h->last_try = now;
	h->next_try = now + h->backoff;
	h->backoff = h->backoff * 2 > HSM_BACKOFF_MAX ? HSM_BACKOFF_MAX : h->backoff * 2;
	if (up)
		h->gen = gen;
	h->down = !up;
	h->pin_refused = pin_refused;
	fail_logged = h->fail_logged;
	h->fail_logged = !up;
	h->reiniting = 0;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);

	if (up)
		rs_warn("hsm: token \"%s\" is available again: the module was re-initialised "
			"(generation %lu)",
			h->label, gen);
	else if (pin_refused)
		rs_err("hsm: token \"%s\" stays unavailable: %s; the PIN was refused, so rsignd "
		       "stops trying (a locked PIN would lock the token): restart rsignd once it "
		       "is fixed",
		       h->label, err);
	else if (!fail_logged)
		rs_err("hsm: token \"%s\" stays unavailable: %s; retrying every %.1f to %.0f s "
		       "while calls come",
		       h->label, err, HSM_BACKOFF_MIN, HSM_BACKOFF_MAX);
	else
		rs_debug("hsm: token \"%s\" is still unavailable: %s", h->label, err);
	return up;
}

/* ---- running calls ------------------------------------------------------------- */

/* op on s, reopening s once after a session fault. */
static CK_RV run_on(srv_hsm *h, hsm_sess *s, const char *what, hsm_op_fn op, void *ctx,
		    const char **fn)
{
	CK_RV rv = hsm_sess_ready(h, s, fn);

	if (rv == CKR_OK)
		rv = op(h, s->h, ctx, fn);
	if (rv_is_session_fault(rv)) {
		rs_warn("hsm: %s: %s returned %s; reopening the session", what, *fn,
			hsm_rv_name(rv));
		sess_drop(h, s);
		rv = hsm_sess_ready(h, s, fn);
		if (rv == CKR_OK)
			rv = op(h, s->h, ctx, fn);
	}
	if (rv_is_session_fault(rv) || rv_is_token_fault(rv))
		sess_drop(h, s);
	return rv;
}

static void key_id_text(const unsigned char ckid[SRV_CKID_LEN], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t w = 0;
	for (int i = 0; i < SRV_CKID_LEN; i++) { /* the key's id: UUID layout */
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[w++] = '-';
		out[w++] = hex[ckid[i] >> 4];
		out[w++] = hex[ckid[i] & 15];
	}
	out[w] = '\0';
}

static srv_hsm_rc run_call(srv_hsm *h, const char *what, hsm_op_fn op, void *ctx,
			   const unsigned char *missing, int write)
{
	const char *fn = "";
	CK_RV rv = HSM_RV_UNAVAILABLE;
	int retried = 0, known_missing = 0;

	for (;;) {
		unsigned long gen;
		hsm_sess *s;

		rv = pool_take(h, &s, &gen, &fn, write);
		if (rv == CKR_OK) {
			rv = run_on(h, s, what, op, ctx, &fn);
			module_leave(h, s, write);
		}
		if (rv == HSM_RV_NOT_FOUND && missing)
			known_missing = hsm_missing_has(h, missing);
		if (retried ||
		    !(rv == HSM_RV_DOWN || rv_is_session_fault(rv) || rv_is_token_fault(rv) ||
		      (rv == HSM_RV_NOT_FOUND && missing && !known_missing)))
			break;
		if (!recover(h, gen, what, fn, rv)) {
			if (rv != HSM_RV_DOWN)
				fn = "the token is unavailable";
			rv = HSM_RV_DOWN;
			break;
		}
		retried = 1;
	}
	if (rv == HSM_RV_NOT_FOUND && missing && retried && hsm_missing_add(h, missing)) {
		char id[37];
		key_id_text(missing, id);
		rs_err("hsm: key %s is not in token \"%s\", even after re-initialising the module",
		       id, h->label);
	} else if (rv == HSM_RV_DOWN || (rv == HSM_RV_NOT_FOUND && known_missing)) {
		rs_debug("hsm: %s: %s", what, fn); /* the state change was logged */
	} else if (rv != CKR_OK && !(rv == HSM_RV_NOT_FOUND && missing)) {
		hsm_log_rv(what, fn, rv);
	}
	return hsm_rc_from_rv(rv);
}

srv_hsm_rc hsm_run(srv_hsm *h, const char *what, hsm_op_fn op, void *ctx,
		   const unsigned char *missing)
{
	return run_call(h, what, op, ctx, missing, 0);
}

srv_hsm_rc hsm_run_write(srv_hsm *h, const char *what, hsm_op_fn op, void *ctx)
{
	return run_call(h, what, op, ctx, NULL, 1);
}

srv_hsm_rc hsm_ping(srv_hsm *h)
{
	CK_TOKEN_INFO ti;
	CK_RV rv = HSM_RV_UNAVAILABLE;
	const char *fn = "C_GetTokenInfo";

	for (int round = 0; round < 2; round++) {
		CK_FUNCTION_LIST *mod = NULL;
		CK_SLOT_ID slot = 0;
		unsigned long gen;

		pthread_mutex_lock(&h->lock);
		while (!h->closing && !h->down && !h->reiniting && !may_enter_inlock(h, 0))
			pthread_cond_wait(&h->cond, &h->lock);
		gen = h->gen;
		if (h->closing) {
			rv = HSM_RV_UNAVAILABLE;
		} else if (h->down || h->reiniting) {
			rv = HSM_RV_DOWN;
		} else {
			h->active++;
			mod = h->mod;
			slot = h->slot;
		}
		pthread_mutex_unlock(&h->lock);
		if (mod) {
			rv = mod->C_GetTokenInfo(slot, &ti);
			module_leave(h, NULL, 0);
		}
		if (rv == CKR_OK || round == 1 || !(rv == HSM_RV_DOWN || rv_is_token_fault(rv)))
			break;
		if (!recover(h, gen, "ping", fn, rv)) {
			rv = HSM_RV_DOWN;
			break;
		}
	}
	if (rv == HSM_RV_DOWN)
		rs_debug("hsm: ping: the token is unavailable");
	else if (rv != CKR_OK)
		hsm_log_rv("ping", fn, rv);
	return rv == CKR_OK ? SRV_HSM_OK : SRV_HSM_UNAVAILABLE;
}

void srv_hsm_sessions(srv_hsm *h, int *in_use, int *size)
{
	int n = 0;
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < h->nsess; i++)
		n += h->sess[i].busy != 0;
	*size = h->nsess;
	pthread_mutex_unlock(&h->lock);
	*in_use = n;
}
