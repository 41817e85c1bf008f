/* Failover and idempotent signing: `url` lists several base URLs (the two
 * listeners of one fake rsignd, which share its state as replicas share a
 * database, and a port where nothing listens); a connection failure, a
 * timeout or a 502/503/504 moves a request to the next URL, each tried once,
 * starting from the one that last worked, with one log line per switch;
 * other answers do not. Every C_Sign carries a fresh Idempotency-Key, the
 * same on each URL it tries, so a signing whose answer was lost is answered
 * again from the first result, not signed twice. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static X509 *cec;
static char logpath[256];
static const unsigned char msg[] = "failover";

/* A port where nothing listens: bound, never listening, so a connect is
 * refused for as long as the test runs. */
static unsigned short dead_port(int *fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(0x7f000001);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(*fd, (struct sockaddr *)&sa, &len) < 0)
		tap_bail("cannot reserve a dead port");
	return ntohs(sa.sin_port);
}

/* A configuration with these URLs, logging at info into logpath. */
static const char *conf_urls(const char *urls)
{
	static char path[256];
	static int seq;
	char ca[200], text[4096];

	snprintf(ca, sizeof(ca), "%s/tls-ca.pem", mt_dir());
	mt_write_file(ca, fake_tls_pem(f), 0644);
	snprintf(path, sizeof(path), "%s/failover-%d.conf", mt_dir(), ++seq);
	snprintf(logpath, sizeof(logpath), "%s/failover-%d.log", mt_dir(), seq);
	snprintf(text, sizeof(text),
		 "url = %s\nca_file = %s\nconnect_timeout = %d\nrequest_timeout = %d\n"
		 "log_level = info\nlog_file = %s\n",
		 urls, ca, mt_request_timeout() + 1, mt_request_timeout(), logpath);
	mt_write_file(path, text, 0600);
	return path;
}

static char *read_log(void)
{
	return mt_read_file(logpath);
}

static int count_in(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static CK_RV sign_ec(int *verified)
{
	CK_SESSION_HANDLE s = mt_open(FAKE_EC);
	CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[256];
	CK_ULONG n = sizeof(sig);
	CK_RV rv = mt_sign(s, k, &m, msg, sizeof(msg), sig, &n);

	*verified = rv == CKR_OK && mt_verify(cec, &m, msg, sizeof(msg), sig, n);
	p11->C_CloseSession(s);
	return rv;
}

/* The listener and key of sign request i (counted from the fake's start). */
static int seen(int i, char key[80])
{
	key[0] = '\0';
	return fake_sign_seen_at(f, i, key, 80);
}

/* The module's Idempotency-Keys are time-ordered UUIDs (version 7, the
 * RFC 9562 variant), so rsignd's index of them grows at its end. */
static int is_uuid(const char *k)
{
	static const char shape[] = "xxxxxxxx-xxxx-7xxx-vxxx-xxxxxxxxxxxx";

	if (strlen(k) != sizeof(shape) - 1)
		return 0;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'x'   ? !strchr("0123456789abcdef", k[i])
		    : shape[i] == 'v' ? !strchr("89ab", k[i])
				      : k[i] != shape[i])
			return 0;
	return 1;
}

static void test_config(unsigned short p1, unsigned short p2)
{
	char urls[1200];
	CK_RV rv;

	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u/ \t https://127.0.0.1:%u", p1, p2);
	ok(mt_init(conf_urls(urls)) == CKR_OK, "two_urls_separated_by_spaces_accepted");
	p11->C_Finalize(NULL);
	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u http://example.com", p1);
	rv = mt_init(conf_urls(urls));
	ok(rv == CKR_GENERAL_ERROR && strstr(read_log(), "URL 2 (http://example.com)") &&
		   strstr(read_log(), "plain http is allowed only to a loopback host"),
	   "each_url_is_judged_by_the_url_rule_and_named (rv 0x%lx)", rv);
	if (rv == CKR_OK)
		p11->C_Finalize(NULL);
	urls[0] = '\0';
	for (int i = 0; i < 9; i++)
		snprintf(urls + strlen(urls), sizeof(urls) - strlen(urls), "https://127.0.0.1:%u ",
			 p1);
	rv = mt_init(conf_urls(urls));
	ok(rv == CKR_GENERAL_ERROR && strstr(read_log(), "more than 8 URLs"),
	   "more_than_8_urls_refused (rv 0x%lx)", rv);
	if (rv == CKR_OK)
		p11->C_Finalize(NULL);
	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u https://127.0.0.1:%u/", p1, p2);
	memset(urls + strlen(urls), 'a', 1100 - strlen(urls));
	urls[1100] = '\0';
	rv = mt_init(conf_urls(urls));
	ok(rv == CKR_GENERAL_ERROR && strstr(read_log(), "longer than 1023 characters"),
	   "a_url_over_1023_characters_refused (rv 0x%lx)", rv);
	if (rv == CKR_OK)
		p11->C_Finalize(NULL);
}

/* URL 1 refuses connections: the first request of the module moves to URL
 * 2 and stays there. */
static void test_dead_first(unsigned short dead, unsigned short p1)
{
	char urls[256], key[80];
	int verified = 0, n0;
	CK_RV rv;

	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u https://127.0.0.1:%u", dead, p1);
	ok(mt_init(conf_urls(urls)) == CKR_OK, "dead_first_url_initialize");
	n0 = fake_sign_seen(f);
	rv = sign_ec(&verified);
	ok(rv == CKR_OK && verified, "dead_first_url_c_sign_succeeds_and_verifies (rv 0x%lx)", rv);
	ok(fake_sign_seen(f) == n0 + 1 && seen(n0, key) == 0 && is_uuid(key),
	   "dead_first_url_sign_reached_the_second_with_a_uuid_key");
	rv = sign_ec(&verified);
	ok(rv == CKR_OK && verified, "dead_first_url_second_c_sign_ok");
	ok(count_in(read_log(), "switched to") == 1 && strstr(read_log(), "connect") != NULL,
	   "dead_first_url_one_switch_logged_with_why");
	p11->C_Finalize(NULL);
}

/* Both listeners up: a 503/502/timeout on the current URL moves the call
 * to the other with the same key; the other becomes the current one. */
static void test_moves(unsigned short p1, unsigned short p2)
{
	char urls[256], k1[80], k2[80];
	int verified = 0, n0, l1, l2;
	CK_RV rv;

	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u https://127.0.0.1:%u", p1, p2);
	ok(mt_init(conf_urls(urls)) == CKR_OK, "replicas_initialize");

	n0 = fake_sign_seen(f);
	fake_fault_set_at(f, 0, FAULT_503, 1, "/sign");
	rv = sign_ec(&verified);
	l1 = seen(n0, k1);
	l2 = seen(n0 + 1, k2);
	ok(rv == CKR_OK && verified, "503_on_url_1_c_sign_succeeds_and_verifies (rv 0x%lx)", rv);
	ok(fake_sign_seen(f) == n0 + 2 && l1 == 0 && l2 == 1,
	   "503_on_url_1_retried_on_url_2 (listeners %d, %d)", l1, l2);
	ok(is_uuid(k1) && strcmp(k1, k2) == 0,
	   "503_retry_carries_the_same_idempotency_key (%s, %s)", k1, k2);
	ok(count_in(read_log(), "switched to") == 1 &&
		   count_in(read_log(), "tokenUnavailable") >= 1,
	   "503_switch_logged_once_with_the_reason");

	/* the next call starts at URL 2, with a key of its own */
	rv = sign_ec(&verified);
	l1 = seen(n0 + 2, k2);
	ok(rv == CKR_OK && verified && fake_sign_seen(f) == n0 + 3 && l1 == 1,
	   "next_call_starts_at_the_url_that_last_worked (listener %d)", l1);
	ok(is_uuid(k2) && strcmp(k1, k2) != 0, "each_operation_has_a_fresh_key");

	/* a 502 from a proxy in front of URL 2 moves back to URL 1 */
	n0 = fake_sign_seen(f);
	fake_fault_set_at(f, 1, FAULT_NOT_JSON_ERROR, 1, "/sign");
	rv = sign_ec(&verified);
	ok(rv == CKR_OK && verified && fake_sign_seen(f) == n0 + 2 && seen(n0 + 1, k1) == 0,
	   "502_on_the_current_url_moves_to_the_next");

	/* a timeout on URL 1 moves to URL 2 */
	n0 = fake_sign_seen(f);
	fake_fault_set_at(f, 0, FAULT_TIMEOUT, 1, "/sign");
	rv = sign_ec(&verified);
	ok(rv == CKR_OK && verified && fake_sign_seen(f) == n0 + 2 && seen(n0 + 1, k1) == 1,
	   "timeout_on_the_current_url_moves_to_the_next (rv 0x%lx)", rv);
	ok(count_in(read_log(), "switched to") == 3, "every_switch_logged_once (%d)",
	   count_in(read_log(), "switched to"));

	/* an answer that is not a failure of the replica stays */
	n0 = fake_sign_seen(f);
	fake_fault_set_at(f, 1, FAULT_403_PERMISSION, 1, "/sign");
	rv = sign_ec(&verified);
	ok(rv == CKR_FUNCTION_REJECTED && fake_sign_seen(f) == n0 + 1,
	   "403_is_not_retried_on_another_url (rv 0x%lx)", rv);
	n0 = fake_sign_seen(f);
	fake_fault_set_at(f, 1, FAULT_500, 1, "/sign");
	rv = sign_ec(&verified);
	ok(rv == CKR_DEVICE_ERROR && fake_sign_seen(f) == n0 + 1,
	   "500_is_not_retried_on_another_url (rv 0x%lx)", rv);

	/* every URL failing: each tried once, then the table's CK_RV */
	n0 = fake_sign_seen(f);
	fake_fault_set(f, FAULT_503, 2, "/sign");
	rv = sign_ec(&verified);
	ok(rv == CKR_DEVICE_ERROR && fake_sign_seen(f) == n0 + 2,
	   "all_urls_failing_tries_each_once_then_device_error (rv 0x%lx, %d tries)", rv,
	   fake_sign_seen(f) - n0);
	fake_fault_set(f, FAULT_NONE, 0, NULL);

	/* URL 2 signs but its answer is lost on the way (a proxy's 502): the
	 * retry on URL 1 gets the same signing back, not a second one */
	int kept = fake_keyed_total(f);
	n0 = fake_sign_seen(f);
	fake_fault_set_at(f, 1, FAULT_LOST_ANSWER, 1, "/sign");
	rv = sign_ec(&verified);
	ok(rv == CKR_OK && verified && fake_sign_seen(f) == n0 + 2,
	   "lost_answer_retried_on_the_other_url_verifies (rv 0x%lx)", rv);
	ok(fake_keyed_total(f) == kept + 1, "lost_answer_signed_once (%d new signings)",
	   fake_keyed_total(f) - kept);
	p11->C_Finalize(NULL);
}

/* A login follows the URLs too (a machine identity). */
static void test_login_moves(unsigned short p1, unsigned short p2)
{
	char urls[256];
	int verified = 0, logins;
	CK_RV rv;

	unsetenv("RSIGN_TOKEN");
	setenv("RSIGN_CLIENT_ID", FAKE_CLIENT_ID, 1);
	setenv("RSIGN_CLIENT_SECRET", FAKE_CLIENT_SECRET, 1);
	snprintf(urls, sizeof(urls), "https://127.0.0.1:%u https://127.0.0.1:%u", p1, p2);
	ok(mt_init(conf_urls(urls)) == CKR_OK, "identity_initialize");
	logins = fake_count(f, CNT_LOGIN);
	fake_fault_set_at(f, 0, FAULT_503, 1, "/login");
	fake_expire_tokens(f);
	rv = sign_ec(&verified);
	ok(rv == CKR_OK && verified && fake_count(f, CNT_LOGIN) > logins,
	   "login_503_on_url_1_logs_in_on_url_2_and_signs (rv 0x%lx)", rv);
	p11->C_Finalize(NULL);
	unsetenv("RSIGN_CLIENT_ID");
	unsetenv("RSIGN_CLIENT_SECRET");
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
}

int main(void)
{
	unsigned short p1, p2, dead;
	int dead_fd;

	plan(4 + 5 + 15 + 2);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	if (fake_start_replica(f) != 0)
		tap_bail("cannot start the fake's second listener");
	cec = fake_signer_cert(f, FAKE_EC);
	fake_set_timeout_ms(f, mt_request_timeout() * 1000 + 500);
	p1 = fake_port(f);
	p2 = fake_replica_port(f);
	dead = dead_port(&dead_fd);
	mt_load();
	test_config(p1, p2);
	test_dead_first(dead, p1);
	test_moves(p1, p2);
	test_login_moves(p1, p2);
	mt_unload();
	close(dead_fd);
	fake_free(f);
	return tap_done();
}
