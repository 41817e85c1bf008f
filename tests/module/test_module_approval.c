/* approval = fail | wait (module/approval.c) against the fake rsignd, whose
 * ec-signer needs a grant: fail opens no request and says how to ask for
 * one; wait opens exactly one request per process and signer, says which
 * rsignctl command approves it, and on approval signs (the signature
 * verifies); rejection and expiry end the wait at once, approval_timeout
 * ends it after that many seconds; a request left pending is followed by
 * the next C_Sign instead of a new one. The lines go to stderr (captured
 * here) and to the log file.
 *
 * "At once" is checked by what the module did (no request, no further poll),
 * not by the clock. With --timing (the slow suite, tests/slow/) the elapsed
 * times are checked too, with generous bounds. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/tap.h"

#include "modtest.h"

/* Elapsed-time bounds, stretched under valgrind (MT_REQUEST_TIMEOUT > 1) and
 * still below the 60 s the wait would otherwise take; only with --timing,
 * when make check -j2 is not loading the machine. */
#define SLACK(ms) ((long long)(ms)*mt_request_timeout())
#define TIMED_CHECKS 9
#define timed_ok(...)                                                                              \
	do {                                                                                       \
		if (timing)                                                                        \
			ok(__VA_ARGS__);                                                           \
	} while (0)

static int timing;

/* For 5 s after a wait ended without approval, the host's retry fails at
 * once and quietly (QUIET_MS in module/approval.c). A retry that ends later
 * than that after the first call began may have missed the quiet time: its
 * check is skipped then, with that reason, rather than failed. */
#define QUIET_MS 5000
#define QUIET_MISSED "the retry ended over 5 s after the first call began (a busy machine)"

static fake_server *f;
static X509 *cec;
static const unsigned char msg[] = "approval, please";
static char errpath[256], logpath[256];
static int saved_err = -1;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	if (!buf)
		tap_bail("out of memory");
	if (fp) {
		n = fread(buf, 1, (1 << 16) - 1, fp);
		buf[n] = '\0';
		fclose(fp);
	}
	return buf;
}

/* Lines containing what. */
static int count_lines(const char *text, const char *what)
{
	const char *p = text, *nl;
	size_t len;
	char line[4096];
	int n = 0;

	while (*p) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		if (strstr(line, what))
			n++;
		p += len + (nl ? 1 : 0);
	}
	return n;
}

/* stderr into errpath (truncated) until capture_end. */
static void capture_start(void)
{
	int fd;

	fflush(stderr);
	fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved_err = dup(STDERR_FILENO);
	if (fd < 0 || saved_err < 0 || dup2(fd, STDERR_FILENO) < 0)
		tap_bail("cannot capture stderr in %s", errpath);
	close(fd);
}

static char *capture_end(void)
{
	fflush(stderr);
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);
	return read_file(errpath);
}

static CK_RV sign_once(int *verified)
{
	CK_SESSION_HANDLE s = mt_open(FAKE_EC);
	CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);
	CK_RV rv;

	if (s == CK_INVALID_HANDLE || k == CK_INVALID_HANDLE)
		return CKR_GENERAL_ERROR;
	rv = mt_sign(s, k, &m, msg, sizeof(msg), sig, &n);
	*verified = rv == CKR_OK && mt_verify(cec, &m, msg, sizeof(msg), sig, n);
	p11->C_CloseSession(s);
	return rv;
}

/* (Re)initialises the module with these extra configuration lines and a
 * fresh log file. */
static void reinit(const char *extra)
{
	char text[2048];

	if (p11)
		p11->C_Finalize(NULL);
	unlink(logpath);
	snprintf(text, sizeof(text), "log_file = %s\n%s", logpath, extra);
	if (mt_init(mt_conf(f, text, 0600)) != CKR_OK)
		tap_bail("C_Initialize failed with %s", extra);
}

/* A second party: once the server has seen want_reqs requests and
 * want_gets polls, it injects a fault on the poll or decides the request.
 * It gives up waiting only after DECIDER_PATIENCE_MS, to end a hung test. */
#define DECIDER_PATIENCE_MS 120000
typedef struct decider {
	int want_reqs, want_gets;
	fake_fault fault;
	const char *status;
	int line_was_there; /* the pending line was on stderr before deciding */
	pthread_t t;
} decider;

static void *decider_run(void *arg)
{
	decider *d = arg;
	long long until = now_ms() + DECIDER_PATIENCE_MS;
	char rid[64], *text;

	while ((fake_request_total(f) < d->want_reqs ||
		fake_count(f, CNT_REQUEST_GET) < d->want_gets) &&
	       now_ms() < until)
		usleep(10000);
	free(fake_last_request(f, rid, sizeof(rid)));
	text = read_file(errpath);
	d->line_was_there = rid[0] && strstr(text, rid) && strstr(text, "is pending");
	free(text);
	if (d->fault != FAULT_NONE)
		fake_fault_set(f, d->fault, 1, rid);
	if (d->status)
		fake_decide_last(f, d->status);
	return NULL;
}

static void decider_start(decider *d)
{
	if (pthread_create(&d->t, NULL, decider_run, d) != 0)
		tap_bail("pthread_create");
}

static void test_fail_mode(void)
{
	int verified;
	long long start, t0;
	char *err, *log;
	CK_RV rv;

	reinit("");
	fake_reset_counts(f);
	capture_start();
	start = t0 = now_ms();
	rv = sign_once(&verified);
	t0 = now_ms() - t0;
	err = capture_end();
	log = read_file(logpath);
	ok(rv == CKR_FUNCTION_REJECTED, "fail_mode_returns_function_rejected (0x%lx)", rv);
	ok(fake_count(f, CNT_REQUEST_CREATE) == 0 && fake_request_total(f) == 0 &&
		   fake_count(f, CNT_REQUEST_GET) == 0,
	   "fail_mode_opens_no_request_and_waits_for_none");
	timed_ok(t0 < SLACK(15000), "fail_mode_returns_at_once (%lld ms)", t0);
	ok(count_lines(err, "rsign: ") == 1 &&
		   strstr(err, "rsign: signer ec-signer needs approval; request it with: "
			       "rsignctl request create ec-signer --justification"),
	   "fail_mode_writes_one_stderr_line_naming_signer_and_command");
	ok(strstr(log, "signer ec-signer needs approval; request it with: rsignctl request "
		       "create ec-signer") != NULL,
	   "fail_mode_line_is_in_the_log_file");
	free(err);
	free(log);

	/* what a host does: retry the signature at once */
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	if (now_ms() - start < QUIET_MS)
		ok(rv == CKR_FUNCTION_REJECTED && count_lines(err, "rsign: ") == 0 &&
			   fake_request_total(f) == 0,
		   "fail_mode_immediate_retry_rejected_without_a_second_line");
	else
		skip(QUIET_MISSED, "fail_mode_immediate_retry_rejected_without_a_second_line");
	free(err);
}

/* The reason approvalRequired sends a sign to approval.c; the error word
 * ApprovalRequired does so only from an older rsignd that sends no reason. */
static void test_reason_decides(void)
{
	int verified;
	char *err;
	CK_RV rv;

	reinit("");
	fake_replay(f, 403,
		    "{\"statusCode\":403,\"error\":\"ApprovalRequired\",\"message\":\"no grant\"}",
		    1, "/sign");
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	ok(rv == CKR_FUNCTION_REJECTED && count_lines(err, "needs approval; request it with") == 1,
	   "approval_required_word_without_a_reason_is_still_approval");
	free(err);

	reinit("");
	fake_reset_counts(f);
	fake_replay(
		f, 403,
		"{\"statusCode\":403,\"error\":\"ApprovalRequired\",\"reason\":\"roleRequired\","
		"\"message\":\"ci may not sign with this signer\"}",
		1, "/sign");
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	ok(rv == CKR_FUNCTION_REJECTED && count_lines(err, "rsign: ") == 0 &&
		   fake_count(f, CNT_REQUEST_CREATE) == 0,
	   "a_reason_other_than_approval_required_is_no_approval");
	free(err);

	reinit("approval = wait\napproval_timeout = 30\n");
	fake_reset_counts(f);
	fake_replay(f, 403,
		    "{\"statusCode\":403,\"error\":\"PermissionDenied\","
		    "\"reason\":\"approvalRequired\",\"message\":\"no grant\"}",
		    1, "/sign");
	fake_set_auto_decision(f, "rejected", 1);
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	ok(rv == CKR_FUNCTION_REJECTED && fake_count(f, CNT_REQUEST_CREATE) == 1,
	   "the_reason_approval_required_opens_a_request_whatever_the_error_word");
	fake_set_auto_decision(f, NULL, 0);
	free(err);
}

static void test_wait_approved(void)
{
	decider d = {.want_reqs = 1, .want_gets = 1, .status = "approved"};
	char rid[64], want[512], *err, *log, *body;
	int verified = 0;
	CK_RV rv;

	reinit("approval = wait\napproval_timeout = 30\njustification = nightly build 42\n");
	fake_reset_counts(f);
	capture_start();
	decider_start(&d);
	rv = sign_once(&verified);
	pthread_join(d.t, NULL);
	err = capture_end();
	log = read_file(logpath);
	body = fake_last_request(f, rid, sizeof(rid));
	ok(rv == CKR_OK && verified, "wait_approved_signs_and_the_signature_verifies (0x%lx)", rv);
	ok(fake_request_total(f) == 1 && fake_count(f, CNT_REQUEST_CREATE) == 1,
	   "wait_opens_exactly_one_request");
	snprintf(want, sizeof(want),
		 "rsign: signer ec-signer needs approval: request %s is pending; approve it at "
		 "https://127.0.0.1:%u/requests/%s or with: rsignctl request approve %s\n",
		 rid, fake_port(f), rid, rid);
	ok(strstr(err, want) != NULL && count_lines(err, "rsign: ") == 1,
	   "wait_writes_one_stderr_line_with_request_id_console_link_and_approve_command");
	ok(d.line_was_there, "the_line_is_written_before_the_approval");
	ok(strstr(log, want + 7) != NULL, "the_line_is_in_the_log_file");
	ok(body && strstr(body, "\"justification\":\"nightly build 42\"") &&
		   !strstr(body, "requestedSignings") && !strstr(body, "requestedWindowDuration"),
	   "justification_from_config_and_no_requested_signings");
	ok(fake_count(f, CNT_SIGN) == 2, "approved_sign_is_retried_once");
	fake_set_auto_decision(f, "rejected", 1);
	capture_start();
	rv = sign_once(&verified);
	free(capture_end());
	fake_set_auto_decision(f, NULL, 0);
	ok(rv == CKR_FUNCTION_REJECTED && fake_request_total(f) == 2,
	   "grant_used_up_next_sign_opens_a_new_request");
	free(err);
	free(log);
	free(body);
}

static void test_justification_env(void)
{
	char *body;
	int verified;

	reinit("approval = wait\napproval_timeout = 30\njustification = from the file\n");
	setenv("RSIGN_JUSTIFICATION", "release 1.2.3\tby CI", 1);
	fake_set_auto_decision(f, "approved", 1);
	capture_start();
	ok(sign_once(&verified) == CKR_OK && verified, "env_justification_sign_ok");
	free(capture_end());
	body = fake_last_request(f, NULL, 0);
	ok(body && strstr(body, "\"justification\":\"release 1.2.3 by CI\""),
	   "RSIGN_JUSTIFICATION_wins_over_the_file_control_characters_blanked");
	free(body);
	unsetenv("RSIGN_JUSTIFICATION");

	reinit("approval = wait\napproval_timeout = 30\n");
	capture_start();
	ok(sign_once(&verified) == CKR_OK && verified, "default_justification_sign_ok");
	free(capture_end());
	body = fake_last_request(f, NULL, 0);
	ok(body && strstr(body, "is waiting to sign (rsign-pkcs11, approval = wait)") &&
		   strstr(body, "test_module_approval"),
	   "default_justification_names_the_program");
	free(body);
	fake_set_auto_decision(f, NULL, 0);
}

/* The statuses that close a request without a grant. */
static const char *const closed_statuses[] = {"rejected", "expired", "cancelled"};
#define CLOSED_CHECKS 5

static void test_wait_closed(const char *status)
{
	char want[128], *err;
	int verified, before, gets;
	long long start, t0;
	CK_RV rv;

	reinit("approval = wait\napproval_timeout = 60\n");
	fake_set_auto_decision(f, status, 1);
	fake_reset_counts(f);
	before = fake_request_total(f);
	capture_start();
	start = t0 = now_ms();
	rv = sign_once(&verified);
	t0 = now_ms() - t0;
	err = capture_end();
	gets = fake_count(f, CNT_REQUEST_GET);
	ok(rv == CKR_FUNCTION_REJECTED, "%s_request_gives_function_rejected (0x%lx)", status, rv);
	ok(gets == 1, "%s_request_ends_the_wait_at_the_poll_that_saw_it (%d polls, timeout 60 s)",
	   status, gets);
	timed_ok(t0 < SLACK(15000), "%s_request_ends_the_wait_at_once (%lld ms, timeout 60 s)",
		 status, t0);
	ok(fake_request_total(f) == before + 1, "%s_one_request_opened", status);
	snprintf(want, sizeof(want), "was %s; not signing", status);
	ok(strstr(err, want) && count_lines(err, "rsign: ") == 2,
	   "%s_line_says_so_after_the_pending_line", status);
	free(err);

	/* the host's immediate retry: refused at once, nothing opened, polled
	 * or said */
	capture_start();
	t0 = now_ms();
	rv = sign_once(&verified);
	t0 = now_ms() - t0;
	err = capture_end();
	if (now_ms() - start < QUIET_MS)
		ok(rv == CKR_FUNCTION_REJECTED && fake_count(f, CNT_REQUEST_GET) == gets &&
			   fake_request_total(f) == before + 1 && count_lines(err, "rsign: ") == 0,
		   "%s_immediate_retry_fails_quietly_without_a_request_or_a_poll", status);
	else
		skip(QUIET_MISSED, "%s_immediate_retry_fails_quietly_without_a_request_or_a_poll",
		     status);
	timed_ok(t0 < SLACK(10000), "%s_immediate_retry_fails_at_once (%lld ms)", status, t0);
	fake_set_auto_decision(f, NULL, 0);
	free(err);
}

static void test_wait_timeout(void)
{
	decider d = {0};
	char *err;
	int verified, before, gets;
	long long start, t0;
	CK_RV rv;

	reinit("approval = wait\napproval_timeout = 2\n");
	before = fake_request_total(f);
	capture_start();
	start = t0 = now_ms();
	rv = sign_once(&verified);
	t0 = now_ms() - t0;
	err = capture_end();
	ok(rv == CKR_FUNCTION_REJECTED, "timeout_gives_function_rejected (0x%lx)", rv);
	ok(t0 >= 1900, "timeout_not_before_approval_timeout (%lld ms of 2000)", t0);
	timed_ok(t0 < 2000 + SLACK(10000), "timeout_soon_after_approval_timeout (%lld ms of 2000)",
		 t0);
	ok(strstr(err, "was not approved within 2 s") && count_lines(err, "rsign: ") == 2,
	   "timeout_line_says_so");
	free(err);

	/* The host's immediate retry fails at once; after the quiet time (5 s,
	 * QUIET_MS in module/approval.c: a lower bound, waited in full) the
	 * request, still pending, is followed by the next C_Sign. */
	gets = fake_count(f, CNT_REQUEST_GET);
	t0 = now_ms();
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	t0 = now_ms() - t0;
	if (now_ms() - start < QUIET_MS)
		ok(rv == CKR_FUNCTION_REJECTED && fake_count(f, CNT_REQUEST_GET) == gets &&
			   fake_request_total(f) == before + 1 && count_lines(err, "rsign: ") == 0,
		   "timeout_immediate_retry_fails_quietly_without_a_request_or_a_poll");
	else
		skip(QUIET_MISSED,
		     "timeout_immediate_retry_fails_quietly_without_a_request_or_a_poll");
	timed_ok(t0 < SLACK(10000), "timeout_immediate_retry_fails_at_once (%lld ms)", t0);
	free(err);
	sleep(QUIET_MS / 1000);
	fake_reset_counts(f);
	d.want_reqs = before + 1;
	d.want_gets = 2; /* the immediate check, then one regular poll */
	d.status = "approved";
	capture_start();
	decider_start(&d);
	rv = sign_once(&verified);
	pthread_join(d.t, NULL);
	err = capture_end();
	ok(rv == CKR_OK && verified, "pending_request_followed_by_the_next_sign_and_approved");
	ok(fake_request_total(f) == before + 1 && fake_count(f, CNT_REQUEST_CREATE) == 0,
	   "no_second_request_while_one_is_pending");
	ok(strstr(err, "is still pending; approve it at https://") != NULL &&
		   strstr(err, "/requests/") != NULL &&
		   strstr(err, " or with: rsignctl request approve") != NULL,
	   "still_pending_line_with_console_link");
	free(err);
}

/* Signs with approval = wait while the request's first poll gets fault
 * and the polls after it approve. stderr in *err (malloc'd). */
static CK_RV sign_with_poll_fault(fake_fault fault, int *verified, char **err)
{
	decider d = {0};
	CK_RV rv;

	reinit("approval = wait\napproval_timeout = 30\n");
	fake_reset_counts(f);
	d.want_reqs = fake_request_total(f) + 1;
	d.fault = fault;
	fake_set_auto_decision(f, "approved", 1);
	capture_start();
	decider_start(&d);
	rv = sign_once(verified);
	pthread_join(d.t, NULL);
	*err = capture_end();
	fake_set_auto_decision(f, NULL, 0);
	return rv;
}

static void test_poll_failure_retried(void)
{
	char *err;
	int verified;
	CK_RV rv = sign_with_poll_fault(FAULT_503, &verified, &err);

	ok(rv == CKR_OK && verified && fake_count(f, CNT_REQUEST_GET) >= 2,
	   "a_503_while_polling_is_retried (0x%lx, %d polls)", rv, fake_count(f, CNT_REQUEST_GET));
	free(err);
}

/* A poll answered 404 noEndpoint (CKR_DEVICE_ERROR, as no answer at all)
 * is not retried: no later poll finds the endpoint. */
static void test_poll_no_endpoint_ends_the_wait(void)
{
	char *err;
	int verified;
	CK_RV rv = sign_with_poll_fault(FAULT_404_NO_ENDPOINT, &verified, &err);

	ok(rv == CKR_FUNCTION_REJECTED && fake_count(f, CNT_REQUEST_GET) == 1 &&
		   strstr(err, "cannot follow request") && strstr(err, "noEndpoint"),
	   "a_no_endpoint_poll_ends_the_wait (0x%lx, %d polls)", rv,
	   fake_count(f, CNT_REQUEST_GET));
	free(err);
}

static void test_open_refused(void)
{
	char *err;
	int verified, before = fake_request_total(f);
	CK_RV rv;

	reinit("approval = wait\napproval_timeout = 30\n");
	fake_fault_set(f, FAULT_403_PERMISSION, 1, "/requests");
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	ok(rv == CKR_FUNCTION_REJECTED && fake_request_total(f) == before,
	   "request_refused_gives_function_rejected");
	ok(strstr(err, "needs approval, but no request could be opened: HTTP 403 "
		       "PermissionDenied") != NULL &&
		   count_lines(err, "rsign: ") == 1,
	   "request_refused_line_names_the_answer");
	fake_fault_set(f, FAULT_NONE, 0, NULL);
	free(err);
}

static void test_grant_gone(void)
{
	char *err;
	int verified;
	CK_RV rv;

	reinit("approval = wait\napproval_timeout = 30\n");
	fake_set_approval(f, FAKE_EC, 1, 0); /* an approval that grants nothing */
	fake_set_auto_decision(f, "approved", 1);
	capture_start();
	rv = sign_once(&verified);
	err = capture_end();
	ok(rv == CKR_FUNCTION_REJECTED &&
		   strstr(err, "was approved, but its grant is already used up") != NULL,
	   "approved_but_no_grant_left_is_function_rejected_with_a_line");
	fake_set_auto_decision(f, NULL, 0);
	fake_set_approval(f, FAKE_EC, 1, 1);
	free(err);
}

#define THREADS 4
static CK_RV thread_rv[THREADS];
static int thread_ok[THREADS];

static void *signing_thread(void *arg)
{
	long i = (long)arg;

	thread_rv[i] = sign_once(&thread_ok[i]);
	return NULL;
}

static void test_threads_share_one_request(void)
{
	pthread_t t[THREADS];
	char *err;
	long i;
	int all = 1, before;

	reinit("approval = wait\napproval_timeout = 30\n");
	fake_set_approval(f, FAKE_EC, 1, THREADS);
	fake_set_auto_decision(f, "approved", 2);
	before = fake_request_total(f);
	fake_reset_counts(f);
	if (mt_slot(FAKE_EC) == (CK_SLOT_ID)-1) /* the signer list, fetched once */
		tap_bail("no slot for %s", FAKE_EC);
	capture_start();
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, signing_thread, (void *)i) != 0)
			tap_bail("pthread_create");
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	err = capture_end();
	for (i = 0; i < THREADS; i++)
		all = all && thread_rv[i] == CKR_OK && thread_ok[i];
	ok(all, "%d_threads_all_sign_after_one_approval", THREADS);
	for (i = 0; !all && i < THREADS; i++)
		printf("#   thread %ld: 0x%lx verified %d\n", i, thread_rv[i], thread_ok[i]);
	ok(fake_request_total(f) == before + 1 && fake_count(f, CNT_REQUEST_CREATE) == 1,
	   "%d_threads_open_exactly_one_request (%d)", THREADS, fake_request_total(f) - before);
	ok(count_lines(err, "is pending; approve it at") == 1, "%d_threads_write_one_line",
	   THREADS);
	fake_set_auto_decision(f, NULL, 0);
	fake_set_approval(f, FAKE_EC, 1, 1);
	free(err);
}

static void test_line_once_without_log_file(void)
{
	char *err;
	int verified;

	p11->C_Finalize(NULL);
	if (mt_init(mt_conf(f, "approval = wait\napproval_timeout = 30\n", 0600)) != CKR_OK)
		tap_bail("C_Initialize failed without a log file");
	fake_set_auto_decision(f, "approved", 1);
	capture_start();
	ok(sign_once(&verified) == CKR_OK && verified, "without_log_file_sign_ok");
	err = capture_end();
	ok(count_lines(err, "needs approval: request") == 1,
	   "without_log_file_the_line_is_on_stderr_once");
	fake_set_auto_decision(f, NULL, 0);
	free(err);
}

int main(int argc, char **argv)
{
	timing = argc == 2 && strcmp(argv[1], "--timing") == 0;
	if (argc > 1 && !timing) {
		fprintf(stderr, "usage: %s [--timing]\n", argv[0]);
		return 2;
	}
	/* one term per test below, in order */
	plan(5 + 8 + 4 + CLOSED_CHECKS * TAP_COUNT(closed_statuses) + 7 + 1 + 2 + 1 + 3 + 2 + 3 +
	     1 + 1 + (timing ? TIMED_CHECKS : 0));
	mt_clear_env();
	unsetenv("RSIGN_JUSTIFICATION");
	setenv("MT_LOG_LEVEL", "warn", 1); /* the pending line is a warning */
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	cec = fake_signer_cert(f, FAKE_EC);
	fake_set_approval(f, FAKE_EC, 1, 1);
	snprintf(errpath, sizeof(errpath), "%s/stderr.txt", mt_dir());
	snprintf(logpath, sizeof(logpath), "%s/module.log", mt_dir());
	mt_load();

	test_fail_mode();
	test_wait_approved();
	test_justification_env();
	for (size_t i = 0; i < TAP_COUNT(closed_statuses); i++)
		test_wait_closed(closed_statuses[i]);
	test_wait_timeout();
	test_poll_failure_retried();
	test_open_refused();
	test_grant_gone();
	test_threads_share_one_request();
	test_line_once_without_log_file();
	test_reason_decides(); /* last: these open requests of their own */
	test_poll_no_endpoint_ends_the_wait();

	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize");
	mt_unload();
	fake_free(f);
	return tap_done();
}
