/* C_Sign on 403 ApprovalRequired (reason approvalRequired): `approval =
 * fail` or `approval = wait`.
 *
 * fail (the default): no request is opened; one line names the signer and
 * the rsignctl command that asks for approval; CKR_FUNCTION_REJECTED.
 *
 * wait: POST /pki/signers/{id}/requests {justification} -- from
 * $RSIGN_JUSTIFICATION, else the configuration's `justification`, else a
 * sentence naming the program and the host; signings and window are left to
 * the policy's defaults -- then one line naming the request, its page in
 * the web console (the first url + /requests/{id}) and the rsignctl command
 * that approves it, then GET /pki/signing-requests/{rid}
 * after 1 s, 1.5 s, 2.25 s ... (at most 5 s apart) until
 *   approved                      -> the sign call is made once more and its
 *                                    result returned
 *   rejected, cancelled, expired  -> a line; CKR_FUNCTION_REJECTED at once
 *   approval_timeout seconds      -> a line; CKR_FUNCTION_REJECTED. The
 *                                    request is left pending: approved later,
 *                                    its grant serves a re-run.
 * A poll that gets no answer (network, 5xx, 429) is retried until the
 * timeout; any other failure ends the wait.
 *
 * One request per signer and credential at a time in a process: threads
 * that meet ApprovalRequired while one is being opened or pending join it,
 * and only the thread that opened it writes its lines; a C_Sign after
 * everyone timed out follows the request left pending. Hosts retry a failed
 * signature at once (OpenSSL via libp11 does): for 5 s after a wait ended
 * without approval (or approval = fail said its line), ApprovalRequired for
 * that signer fails at once and quietly, opening nothing. The table of these
 * requests is guarded by the global lock, never held across HTTP or a sleep.
 *
 * "A line" is "rsign: ..." written to stderr in a single write, and also to
 * the log when log_file is set (without log_file the log is stderr already).
 * It never contains a token, a secret or signed data. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rsign/ckr.h"
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"

#include "module.h"
#include "approval.h"
#include "errors.h"
#include "http.h"

#define RID_MAX 64
#define JUSTIFICATION_MAX 1024 /* bytes, the server's limit */
#define POLL_FIRST_MS 1000
#define POLL_MAX_MS 5000
#define JOIN_STEP_MS 50
#define STATUS_MAX 16
#define QUIET_MS 5000 /* a host's retry after a refusal fails at once */

enum { REQ_OPENING, REQ_PENDING, REQ_CLOSED };

typedef struct open_req {
	struct open_req *next;
	unsigned long gen;    /* module initialisation */
	const mod_cred *cred; /* requests are per principal */
	unsigned long cred_gen;
	char signer_id[MOD_SIGNER_ID_MAX + 1];
	char rid[RID_MAX + 1]; /* set once PENDING */
	int state;
	char outcome[STATUS_MAX]; /* CLOSED: approved, rejected, ..., "failed" */
	int refs;		  /* threads using the entry */
	long long quiet_until;	  /* mod_now(): see JOIN_QUIET */
} open_req;

static open_req *open_reqs; /* guarded by the global lock */

typedef struct settings {
	int mode;
	long long timeout_ms;
	int log_to_file;
	char justification[JUSTIFICATION_MAX + 1];
	char console[MOD_URL_MAX + 1]; /* the first base URL: the console's */
} settings;

/* The reason approvalRequired; from a server that sends no reason (an
 * older rsignd), the error word ApprovalRequired. */
int mod_approval_needed(const mod_call *call)
{
	const mod_http_resp *r = &call->resp;

	if (r->transport_failed || r->status != 403)
		return 0;
	if (r->reason[0])
		return strcmp(r->reason, "approvalRequired") == 0;
	return strcmp(r->error, "ApprovalRequired") == 0;
}

/* ---- the line ------------------------------------------------------------ */

static void say(const settings *st, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(const settings *st, int level, const char *fmt, ...)
{
	static const char prefix[] = "rsign: ";
	char line[2048];
	size_t p = sizeof(prefix) - 1, len, i;
	va_list ap;
	int n;

	memcpy(line, prefix, p);
	va_start(ap, fmt);
	n = vsnprintf(line + p, sizeof(line) - p - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len = p + ((size_t)n < sizeof(line) - p - 2 ? (size_t)n : sizeof(line) - p - 2);
	for (i = p; i < len; i++) /* server text must not forge lines */
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (st->log_to_file)
		rs_log(level, "%.*s", (int)(len - p), line + p);
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0) {
		/* nowhere better to say it */
	}
}

/* ---- settings -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, 0 when invalid. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++) /* stops at the terminating NUL */
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, surrogate, beyond U+10FFFF */
	return n;
}

/* A justification the server accepts: valid UTF-8 (invalid bytes become
 * '?'), no control characters, at most outlen - 1 bytes, trimmed. */
static void clean_text(char *out, size_t outlen, const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, n;

	while (*s == ' ' || *s == '\t')
		s++;
	while (*s) {
		n = utf8_seq(s);
		if (o + (n ? n : 1) >= outlen)
			break;
		if (!n) {
			out[o++] = '?';
			s++;
		} else if (n == 1 && (*s < 0x20 || *s == 0x7f)) {
			out[o++] = ' ';
			s++;
		} else {
			memcpy(out + o, s, n);
			o += n;
			s += n;
		}
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static CK_RV load_settings(unsigned long gen, settings *st)
{
	const char *env = getenv("RSIGN_JUSTIFICATION"), *j;
	const mod_config *c;
	char dflt[512];
	CK_RV rv;

	memset(st, 0, sizeof(*st));
	rv = mod_reenter(gen);
	if (rv == CKR_OK) {
		c = mod_conf();
		st->mode = c->approval;
		st->timeout_ms = c->approval_timeout * 1000;
		st->log_to_file = c->log_file != NULL;
		if (c->n_urls)
			rs_strlcpy(st->console, c->urls[0], sizeof(st->console));
		j = env && *env ? env : c->justification;
		if (j)
			clean_text(st->justification, sizeof(st->justification), j);
	}
	mod_unlock();
	if (rv == CKR_OK && !st->justification[0]) {
		snprintf(dflt, sizeof(dflt),
			 "%s on %s is waiting to sign (rsign-pkcs11, approval = wait)",
			 mod_http_tool(), mod_http_hostname());
		clean_text(st->justification, sizeof(st->justification), dflt);
	}
	return rv;
}

/* ---- the table of requests -------------------------------------------------- */

enum { JOIN_OPEN, JOIN_ACTIVE, JOIN_PARKED, JOIN_QUIET };

static int entry_matches(const open_req *r, unsigned long gen, const mod_cred *cred,
			 const char *signer_id)
{
	return r->gen == gen && r->cred == cred && r->cred_gen == cred->gen &&
	       strcmp(r->signer_id, signer_id) == 0;
}

/* What to do about a new ApprovalRequired for the signer and credential:
 * JOIN_ACTIVE   a request is being opened or waited for: *out joined;
 * JOIN_PARKED   a request was left pending (everyone timed out): *out joined;
 * JOIN_QUIET    the last wait for this signer ended in refusal moments ago
 *               (or approval = fail said its line): the host retrying its
 *               C_Sign, which fails at once, quietly, without a request;
 * JOIN_OPEN     none of these: *out is a new entry for the caller to open;
 * -1            no memory.
 * Entries nobody uses that belong to another initialisation or credential,
 * or are closed and past their quiet time, are dropped on the way. */
static int join_inlock(unsigned long gen, const mod_cred *cred, const char *signer_id, int add,
		       open_req **out)
{
	open_req *r, **pp, *found = NULL;
	long long now = mod_now();

	*out = NULL;
	for (pp = &open_reqs; (r = *pp) != NULL;) {
		if (r->refs == 0 && (r->gen != gen || r->cred->gen != r->cred_gen ||
				     (r->state == REQ_CLOSED && now >= r->quiet_until))) {
			*pp = r->next;
			free(r);
			continue;
		}
		if (entry_matches(r, gen, cred, signer_id) &&
		    (!found || (found->state == REQ_CLOSED && r->state != REQ_CLOSED)))
			found = r; /* an open entry before a closed one */
		pp = &r->next;
	}
	if (found && found->state != REQ_CLOSED && found->refs > 0) {
		found->refs++;
		*out = found;
		return JOIN_ACTIVE;
	}
	if (found && found->refs == 0 && now < found->quiet_until)
		return JOIN_QUIET;
	if (found && found->state == REQ_PENDING) {
		found->refs++;
		*out = found;
		return JOIN_PARKED;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->gen = gen;
	r->cred = cred;
	r->cred_gen = cred->gen;
	rs_strlcpy(r->signer_id, signer_id, sizeof(r->signer_id));
	r->state = add ? REQ_OPENING : REQ_CLOSED;
	r->refs = add ? 1 : 0;
	if (!add) {
		rs_strlcpy(r->outcome, "fail", sizeof(r->outcome));
		r->quiet_until = now + QUIET_MS;
	}
	r->next = open_reqs;
	open_reqs = r;
	*out = r;
	return JOIN_OPEN;
}

/* C_Finalize (and a forked child's re-initialisation): the entries nobody
 * uses go with the initialisation; one a thread still waits on is dropped
 * by the next join_inlock once that thread lets go (its gen is old). */
void mod_approval_free_inlock(void)
{
	open_req *r, **pp;

	for (pp = &open_reqs; (r = *pp) != NULL;) {
		if (r->refs == 0) {
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

/* Drops the caller's use. The last user of a request that was not approved
 * starts its quiet time; an approved one goes, a pending one stays (parked)
 * so that a later C_Sign follows it instead of opening another. 1 when the
 * caller was the last user. */
static int release(open_req *r)
{
	open_req **pp;
	int last;

	mod_lock();
	last = --r->refs == 0;
	if (last && r->state == REQ_CLOSED && strcmp(r->outcome, "approved") == 0) {
		for (pp = &open_reqs; *pp; pp = &(*pp)->next) {
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		}
		free(r);
	} else if (last) {
		r->quiet_until = mod_now() + QUIET_MS;
	}
	mod_unlock();
	return last;
}

/* Closes the entry with outcome. 1 when the caller closed it (and so is
 * the one to write the closing line). */
static int close_entry(open_req *r, const char *outcome)
{
	int closed_now = 0;

	mod_lock();
	if (r->state != REQ_CLOSED) {
		r->state = REQ_CLOSED;
		rs_strlcpy(r->outcome, outcome, sizeof(r->outcome));
		closed_now = 1;
	}
	mod_unlock();
	return closed_now;
}

/* ---- the server calls ------------------------------------------------------ */

static int id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
		      (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-'))
			return 0;
	return i > 0 && i <= RID_MAX;
}

/* A request from a 2xx body: its status, and its id when rid is given. */
static int parse_request(const mod_call *call, char *rid, char status[STATUS_MAX])
{
	const char *id = NULL, *s = NULL;
	cJSON *o;
	int ok;

	o = rs_json_parse((const char *)call->resp.body.data, call->resp.body.len,
			  RS_JSON_MAX_DEPTH);
	ok = o && rs_json_str(o, "status", 1, STATUS_MAX - 1, &s) == RS_JSON_OK &&
	     (!rid || (rs_json_str(o, "id", 1, RID_MAX, &id) == RS_JSON_OK && id_ok(id)));
	if (ok) {
		rs_strlcpy(status, s, STATUS_MAX);
		if (rid)
			rs_strlcpy(rid, id, RID_MAX + 1);
	}
	cJSON_Delete(o);
	return ok ? 0 : -1;
}

/* Why a call failed, for a line. */
static void describe(const mod_call *call, CK_RV rv, char *why, size_t n)
{
	const mod_http_resp *r = &call->resp;

	if (r->transport_failed)
		snprintf(why, n, "no response from rsignd (%s)", r->transport_error);
	else if (r->status >= 300)
		snprintf(why, n, "HTTP %ld %s (%s): %s", r->status, r->error[0] ? r->error : "-",
			 r->reason[0] ? r->reason : "no reason", r->message);
	else if (rv != CKR_OK)
		snprintf(why, n, "%s", rs_ckr_name(rv));
	else
		snprintf(why, n, "HTTP %ld with an unusable answer", r->status);
}

static CK_RV open_request(mod_cred *cred, unsigned long gen, const char *signer_id,
			  const char *signer_name, const settings *st, char rid[RID_MAX + 1],
			  char status[STATUS_MAX], char *why, size_t whylen)
{
	char seg[3 * MOD_SIGNER_ID_MAX + 1], path[sizeof(seg) + 32];
	mod_call call = {0};
	cJSON *req = cJSON_CreateObject();
	char *body = NULL;
	CK_RV rv;

	if (mod_http_escape(signer_id, seg, sizeof(seg)) < 0) {
		cJSON_Delete(req);
		snprintf(why, whylen, "bad signer id");
		return CKR_GENERAL_ERROR;
	}
	snprintf(path, sizeof(path), "/pki/signers/%s/requests", seg);
	if (!req || !cJSON_AddStringToObject(req, "justification", st->justification) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		cJSON_Delete(req);
		snprintf(why, whylen, "out of memory");
		return CKR_HOST_MEMORY;
	}
	cJSON_Delete(req);
	call.what = "approval request";
	call.signer = signer_name;
	call.method = "POST";
	call.path = path;
	call.body = body;
	rv = mod_api_call(cred, gen, &call);
	if (rv == CKR_OK && parse_request(&call, rid, status) < 0)
		rv = mod_err_response(&call, "no request id and status");
	if (rv != CKR_OK)
		describe(&call, rv, why, whylen);
	mod_call_done(&call);
	free(body);
	return rv;
}

/* GET the request's status. No answer, a 5xx or a 429 is worth another
 * poll: *transient = 1. (Not every CKR_DEVICE_ERROR: a 404 noEndpoint is
 * one too, and no later poll will find the endpoint.) */
static CK_RV poll_request(mod_cred *cred, unsigned long gen, const char *signer_name,
			  const char *rid, char status[STATUS_MAX], int *transient, char *why,
			  size_t whylen)
{
	char path[RID_MAX + 40];
	mod_call call = {0};
	CK_RV rv;

	*transient = 0;
	snprintf(path, sizeof(path), "/pki/signing-requests/%s", rid); /* id_ok: no escaping */
	call.what = "approval status";
	call.signer = signer_name;
	call.method = "GET";
	call.path = path;
	rv = mod_api_call(cred, gen, &call);
	if (rv == CKR_OK && parse_request(&call, NULL, status) < 0)
		rv = mod_err_response(&call, "no request status");
	if (rv != CKR_OK) {
		*transient = call.resp.transport_failed || call.resp.status >= 500 ||
			     call.resp.status == 429;
		describe(&call, rv, why, whylen);
	}
	mod_call_done(&call);
	return rv;
}

static void sleep_ms(long long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0)
		;
}

static int is_closed_status(const char *s)
{
	return strcmp(s, "rejected") == 0 || strcmp(s, "cancelled") == 0 ||
	       strcmp(s, "expired") == 0;
}

/* ---- waiting ----------------------------------------------------------------- */

/* Waits while another thread opens the entry. CKR_OK with rid set once it
 * is pending; CKR_FUNCTION_REJECTED when opening failed or it closed. */
static CK_RV await_opened(open_req *r, long long deadline, char rid[RID_MAX + 1],
			  char outcome[STATUS_MAX])
{
	int state;

	for (;;) {
		mod_lock();
		state = r->state;
		rs_strlcpy(rid, r->rid, RID_MAX + 1);
		rs_strlcpy(outcome, r->outcome, STATUS_MAX);
		mod_unlock();
		if (state == REQ_PENDING ||
		    (state == REQ_CLOSED && strcmp(outcome, "approved") == 0))
			return CKR_OK;
		if (state == REQ_CLOSED)
			return CKR_FUNCTION_REJECTED;
		if (mod_now() >= deadline) {
			outcome[0] = '\0';
			return CKR_FUNCTION_REJECTED;
		}
		sleep_ms(JOIN_STEP_MS);
	}
}

/* Polls until a decision, the deadline, or a failure. Returns the outcome
 * in outcome: "approved", "rejected", "cancelled", "expired", "timeout",
 * or "failed" (why says what; rv is the call's CK_RV). */
static CK_RV await_decision(mod_cred *cred, unsigned long gen, const char *signer_name, open_req *r,
			    const char *rid, long long deadline, char outcome[STATUS_MAX],
			    char *why, size_t whylen)
{
	long long interval = POLL_FIRST_MS, now;
	char status[STATUS_MAX];
	int transient, state;
	CK_RV rv;

	for (;;) {
		/* another thread may have seen the decision already */
		mod_lock();
		state = r->state;
		rs_strlcpy(status, r->outcome, sizeof(status));
		mod_unlock();
		if (state == REQ_CLOSED && status[0]) {
			rs_strlcpy(outcome, status, STATUS_MAX);
			return CKR_OK;
		}
		now = mod_now();
		if (now >= deadline) {
			rs_strlcpy(outcome, "timeout", STATUS_MAX);
			return CKR_OK;
		}
		sleep_ms(interval < deadline - now ? interval : deadline - now);
		interval = interval * 3 / 2 < POLL_MAX_MS ? interval * 3 / 2 : POLL_MAX_MS;

		rv = poll_request(cred, gen, signer_name, rid, status, &transient, why, whylen);
		if (rv == CKR_OK && strcmp(status, "approved") == 0) {
			rs_strlcpy(outcome, status, STATUS_MAX);
			return CKR_OK;
		}
		if (rv == CKR_OK && is_closed_status(status)) {
			rs_strlcpy(outcome, status, STATUS_MAX);
			return CKR_OK;
		}
		if (rv == CKR_OK && strcmp(status, "pending") != 0)
			rs_debug("request %s: status %s, still waiting", rid, status);
		if (rv != CKR_OK && !transient) {
			rs_strlcpy(outcome, "failed", STATUS_MAX);
			return rv;
		}
	}
}

/* Opens the request (the caller added the entry) and says so. */
static CK_RV open_and_say(mod_cred *cred, unsigned long gen, const char *signer_id,
			  const char *name, const settings *st, open_req *r, char rid[RID_MAX + 1])
{
	char status[STATUS_MAX] = "", why[512] = "";
	CK_RV rv;

	rv = open_request(cred, gen, signer_id, name, st, rid, status, why, sizeof(why));
	if (rv != CKR_OK) {
		close_entry(r, "failed");
		if (rv != CKR_CRYPTOKI_NOT_INITIALIZED)
			say(st, RS_LOG_ERROR,
			    "signer %s needs approval, but no request could be opened: %s", name,
			    why);
		return rv == CKR_CRYPTOKI_NOT_INITIALIZED ? rv : CKR_FUNCTION_REJECTED;
	}
	mod_lock();
	rs_strlcpy(r->rid, rid, sizeof(r->rid));
	r->state = REQ_PENDING;
	mod_unlock();
	say(st, RS_LOG_WARN,
	    "signer %s needs approval: request %s is pending; approve it at %s/requests/%s or "
	    "with: rsignctl request approve %s",
	    name, rid, st->console, rid, rid);
	if (strcmp(status, "approved") == 0 || is_closed_status(status))
		close_entry(r, status); /* await_decision picks it up */
	return CKR_OK;
}

/* A parked request (pending when everyone stopped waiting): asked about
 * at once. CKR_OK when it is still pending (and says so again); otherwise
 * it is closed quietly and CKR_FUNCTION_FAILED tells the caller to open a
 * new one: the ApprovalRequired just seen means its grant, if any, is gone. */
static CK_RV resume_parked(mod_cred *cred, unsigned long gen, const char *name, const settings *st,
			   open_req *r, char rid[RID_MAX + 1])
{
	char status[STATUS_MAX] = "", why[512] = "";
	int transient;
	CK_RV rv;

	mod_lock();
	rs_strlcpy(rid, r->rid, RID_MAX + 1);
	mod_unlock();
	rv = poll_request(cred, gen, name, rid, status, &transient, why, sizeof(why));
	if (rv == CKR_CRYPTOKI_NOT_INITIALIZED)
		return rv;
	if ((rv == CKR_OK && strcmp(status, "pending") == 0) || (rv != CKR_OK && transient)) {
		say(st, RS_LOG_WARN,
		    "signer %s needs approval: request %s is still pending; approve it at "
		    "%s/requests/%s or with: rsignctl request approve %s",
		    name, rid, st->console, rid, rid);
		return CKR_OK;
	}
	close_entry(r, rv == CKR_OK ? status : "failed");
	return CKR_FUNCTION_FAILED;
}

CK_RV mod_approval_sign(mod_cred *cred, unsigned long gen, const char *signer_id, mod_call *call)
{
	char rid[RID_MAX + 1] = "", outcome[STATUS_MAX] = "", why[512] = "";
	const char *name = call->signer ? call->signer : signer_id;
	long long start = mod_now(), deadline;
	int how = JOIN_OPEN, attempt, wait;
	open_req *r = NULL;
	settings st;
	CK_RV rv;

	rv = load_settings(gen, &st);
	if (rv != CKR_OK)
		return rv;
	wait = st.mode == MOD_APPROVAL_WAIT;
	deadline = start + st.timeout_ms;

	/* Join the request this process has open, or open one; a parked one
	 * that turns out closed makes a second attempt open a new one. */
	for (attempt = 0; attempt < 2; attempt++) {
		rv = mod_reenter(gen);
		if (rv == CKR_OK) {
			how = join_inlock(gen, cred, signer_id, wait, &r);
			if (how < 0)
				rv = CKR_HOST_MEMORY;
		}
		mod_unlock();
		if (rv != CKR_OK)
			return rv;
		if (how == JOIN_QUIET) {
			rs_debug("signer %s: approval was refused moments ago; not asking again",
				 name);
			return CKR_FUNCTION_REJECTED;
		}
		if (!wait) {
			if (how != JOIN_OPEN)
				release(r);
			say(&st, RS_LOG_ERROR,
			    "signer %s needs approval; request it with: rsignctl request create %s "
			    "--justification TEXT (or set approval = wait in the module "
			    "configuration)",
			    name, name);
			return CKR_FUNCTION_REJECTED;
		}
		if (how == JOIN_OPEN)
			rv = open_and_say(cred, gen, signer_id, name, &st, r, rid);
		else if (how == JOIN_PARKED)
			rv = resume_parked(cred, gen, name, &st, r, rid);
		else /* the opener says why when opening fails */
			rv = await_opened(r, deadline, rid, outcome);
		if (rv == CKR_OK)
			break;
		release(r);
		if (rv != CKR_FUNCTION_FAILED || how != JOIN_PARKED)
			return rv;
	}
	if (rv != CKR_OK)
		return CKR_FUNCTION_REJECTED;
	if (how != JOIN_OPEN)
		rs_debug("signer %s: following request %s", name, rid);

	rv = await_decision(cred, gen, name, r, rid, deadline, outcome, why, sizeof(why));
	if (strcmp(outcome, "approved") == 0) {
		close_entry(r, "approved");
		release(r);
		rs_info("signer %s: request %s approved after %lld s; signing", name, rid,
			(mod_now() - start) / 1000);
		mod_call_done(call);
		rv = mod_api_call(cred, gen, call);
		if (mod_approval_needed(call)) {
			say(&st, RS_LOG_ERROR,
			    "signer %s: request %s was approved, but its grant is already used up, "
			    "expired or revoked; open a new request",
			    name, rid);
			rv = CKR_FUNCTION_REJECTED;
		}
		return rv;
	}
	if (rv == CKR_CRYPTOKI_NOT_INITIALIZED) {
		release(r);
		return rv;
	}
	if (strcmp(outcome, "timeout") == 0) {
		/* Left pending; the last thread to give up says so. */
		if (release(r))
			say(&st, RS_LOG_ERROR,
			    "signer %s: request %s was not approved within %lld s; giving up "
			    "(approved later, it grants the signing to a re-run)",
			    name, rid, st.timeout_ms / 1000);
		return CKR_FUNCTION_REJECTED;
	}
	if (strcmp(outcome, "failed") == 0) {
		if (close_entry(r, "failed"))
			say(&st, RS_LOG_ERROR, "signer %s: cannot follow request %s: %s", name, rid,
			    why);
	} else if (close_entry(r, outcome)) {
		say(&st, RS_LOG_ERROR, "signer %s: request %s was %s; not signing", name, rid,
		    outcome);
	}
	release(r);
	return CKR_FUNCTION_REJECTED;
}
