/* Faults: each outcome of a server call gives the CK_RV of the one table
 * (module/errors.c), chosen by status and reason and never by the message,
 * and the module keeps working afterwards; one log line per failure names
 * the signer, HTTP status, error word and reason and never a secret;
 * machine identities log in again after a 401. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static X509 *cec, *crsa;
static const unsigned char msg[] = "fault injection";

static CK_RV sign_with(const char *label, X509 *cert, int *verified)
{
	CK_SESSION_HANDLE s = mt_open(label);
	CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = {cert == crsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);
	CK_RV rv = mt_sign(s, k, &m, msg, sizeof(msg), sig, &n);

	*verified = rv == CKR_OK && mt_verify(cert, &m, msg, sizeof(msg), sig, n);
	if (rv != CKR_OK) {
		/* A failed C_Sign ends the operation. */
		CK_ULONG n2 = sizeof(sig);

		if (p11->C_Sign(s, (CK_BYTE_PTR)msg, 1, sig, &n2) != CKR_OPERATION_NOT_INITIALIZED)
			rv = CKR_GENERAL_ERROR;
	}
	p11->C_CloseSession(s);
	return rv;
}

static void check_fault(const char *name, fake_fault fault, CK_RV want, const char *label)
{
	X509 *cert = strcmp(label, FAKE_RSA) == 0 ? crsa : cec;
	int verified;
	CK_RV rv;

	fake_fault_set(f, fault, 1, "/sign");
	rv = sign_with(label, cert, &verified);
	ok(rv == want, "%s_gives_%s (got 0x%lx)", name, want == CKR_OK ? "ok" : "table_rv", rv);
	fake_fault_set(f, FAULT_NONE, 0, NULL);
	ok(sign_with(label, cert, &verified) == CKR_OK && verified, "module_keeps_signing_after_%s",
	   name);
}

/* Each fault on /sign, the CK_RV the one table gives it, the signer. */
static const struct fault_case {
	const char *name;
	fake_fault fault;
	CK_RV want;
	const char *label;
} fault_cases[] = {
	{"http_500", FAULT_500, CKR_DEVICE_ERROR, FAKE_EC},
	{"http_503", FAULT_503, CKR_DEVICE_ERROR, FAKE_EC},
	{"http_502_html_from_a_proxy", FAULT_NOT_JSON_ERROR, CKR_DEVICE_ERROR, FAKE_EC},
	{"timeout", FAULT_TIMEOUT, CKR_DEVICE_ERROR, FAKE_EC},
	{"truncated_json", FAULT_TRUNCATED_JSON, CKR_DEVICE_ERROR, FAKE_EC},
	{"invalid_json", FAULT_INVALID_JSON, CKR_DEVICE_ERROR, FAKE_EC},
	{"wrong_rsa_signature_length", FAULT_WRONG_SIG_LEN, CKR_DEVICE_ERROR, FAKE_RSA},
	{"ecdsa_signature_not_der", FAULT_WRONG_SIG_LEN, CKR_DEVICE_ERROR, FAKE_EC},
	{"base64_garbage", FAULT_BAD_BASE64, CKR_DEVICE_ERROR, FAKE_EC},
	{"response_over_1mib", FAULT_HUGE_BODY, CKR_DEVICE_ERROR, FAKE_EC},
	{"http_401_with_a_static_token", FAULT_401, CKR_USER_NOT_LOGGED_IN, FAKE_EC},
	{"http_403_approval_required", FAULT_403_APPROVAL, CKR_FUNCTION_REJECTED, FAKE_EC},
	{"http_403_permission_denied", FAULT_403_PERMISSION, CKR_FUNCTION_REJECTED, FAKE_RSA},
	{"http_404", FAULT_404, CKR_DEVICE_REMOVED, FAKE_EC},
	{"http_400_bad_request", FAULT_400_BAD, CKR_DATA_INVALID, FAKE_EC},
	{"http_400_digest_length", FAULT_400_LENGTH, CKR_DATA_LEN_RANGE, FAKE_EC},
	{"http_400_signer_disabled", FAULT_400_DISABLED, CKR_FUNCTION_REJECTED, FAKE_EC},
	{"http_400_certificate_expired", FAULT_400_EXPIRED, CKR_FUNCTION_REJECTED, FAKE_EC},
	{"http_400_certificate_not_yet_valid", FAULT_400_NOT_YET_VALID, CKR_FUNCTION_REJECTED,
	 FAKE_EC},
	{"http_404_no_endpoint", FAULT_404_NO_ENDPOINT, CKR_DEVICE_ERROR, FAKE_EC},
	{"http_409", FAULT_409, CKR_FUNCTION_FAILED, FAKE_EC},
	{"http_413", FAULT_413, CKR_DATA_LEN_RANGE, FAKE_EC},
	{"http_429", FAULT_429, CKR_FUNCTION_REJECTED, FAKE_EC},
};

static void test_table(void)
{
	int verified;

	for (size_t i = 0; i < TAP_COUNT(fault_cases); i++)
		check_fault(fault_cases[i].name, fault_cases[i].fault, fault_cases[i].want,
			    fault_cases[i].label);

	/* Connection refused: nothing listens; then the same port again. */
	{
		CK_SESSION_HANDLE s = mt_open(FAKE_EC);
		CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
		CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
		unsigned char sig[64];
		CK_ULONG n = sizeof(sig);

		fake_stop(f);
		ok(mt_sign(s, k, &m, msg, sizeof(msg), sig, &n) == CKR_DEVICE_ERROR,
		   "connection_refused_gives_device_error");
		ok(fake_start(f) == 0, "fake_server_restarts_on_the_same_port");
		p11->C_CloseSession(s);
		ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && verified,
		   "module_keeps_signing_after_connection_refused");
	}
}

/* The exact body given, answered to one sign. */
static void check_body(const char *name, int status, const char *body, CK_RV want)
{
	int verified;
	CK_RV rv;

	fake_replay(f, status, body, 1, "/sign");
	rv = sign_with(FAKE_EC, cec, &verified);
	ok(rv == want, "%s (0x%lx)", name, rv);
	fake_fault_set(f, FAULT_NONE, 0, NULL);
}

/* The reason decides, never the message; without a reason (a proxy, an
 * older rsignd) the status does. */
static void test_reasons(void)
{
	check_body("real_digest_length_body_gives_data_len_range", 400,
		   "{\"statusCode\":400,\"error\":\"BadRequest\",\"reason\":\"digestLength\","
		   "\"message\":\"a SHA256 digest is 32 bytes, data has 31\",\"reqId\":\"r1\"}",
		   CKR_DATA_LEN_RANGE);
	check_body("data_length_reason_gives_data_len_range", 400,
		   "{\"statusCode\":400,\"error\":\"BadRequest\",\"reason\":\"dataLength\","
		   "\"message\":\"data is empty\",\"reqId\":\"r2\"}",
		   CKR_DATA_LEN_RANGE);
	check_body("invalid_field_whose_message_says_length_gives_data_invalid", 400,
		   "{\"statusCode\":400,\"error\":\"BadRequest\",\"reason\":\"invalidField\","
		   "\"message\":\"digest length wrong for the algorithm\",\"reqId\":\"r3\"}",
		   CKR_DATA_INVALID);
	check_body("signer_disabled_word_without_reason_falls_back_on_400", 400,
		   "{\"statusCode\":400,\"error\":\"SignerDisabled\",\"message\":\"disabled\"}",
		   CKR_DATA_INVALID);
	check_body("certificate_not_yet_valid_reason_gives_function_rejected", 400,
		   "{\"statusCode\":400,\"error\":\"CertificateExpired\","
		   "\"reason\":\"certificateNotYetValid\",\"message\":\"not yet\"}",
		   CKR_FUNCTION_REJECTED);
	check_body("no_endpoint_reason_gives_device_error", 404,
		   "{\"statusCode\":404,\"error\":\"NotFound\",\"reason\":\"noEndpoint\","
		   "\"message\":\"no such endpoint: /pki/signers/x/sign\"}",
		   CKR_DEVICE_ERROR);
	check_body("404_without_reason_from_a_proxy_is_the_signer_gone", 404,
		   "<html>Not Found</html>", CKR_DEVICE_REMOVED);
	check_body("413_without_reason_gives_data_len_range", 413, "", CKR_DATA_LEN_RANGE);
	check_body("unknown_reason_on_400_gives_data_invalid", 400,
		   "{\"error\":\"BadRequest\",\"reason\":\"somethingNew\"}", CKR_DATA_INVALID);
	check_body("an_overlong_reason_matches_no_row", 400,
		   "{\"error\":\"BadRequest\",\"reason\":"
		   "\"digestLengthxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
		   CKR_DATA_INVALID);
}

static void test_404_refreshes_list(void)
{
	CK_ULONG n = 0;
	int before;
	int verified;

	fake_fault_set(f, FAULT_404, 1, "/sign");
	sign_with(FAKE_EC, cec, &verified);
	before = fake_count(f, CNT_LIST);
	p11->C_GetSlotList(CK_TRUE, NULL, &n);
	ok(fake_count(f, CNT_LIST) == before + 1 && n == 2,
	   "signer_gone_makes_the_next_slot_list_refresh");
}

static void test_object_fetch_faults(void)
{
	CK_SESSION_HANDLE s = mt_open(FAKE_RSA);
	CK_OBJECT_CLASS c = CKO_CERTIFICATE;
	CK_ATTRIBUTE t = {CKA_CLASS, &c, sizeof(c)};

	/* run first: this token's objects have not been fetched yet */
	ok(s != CK_INVALID_HANDLE, "session_for_object_faults");
	fake_fault_set(f, FAULT_INVALID_JSON, 1, "/certificate");
	ok(p11->C_FindObjectsInit(s, &t, 1) == CKR_DEVICE_ERROR,
	   "certificate_fetch_with_invalid_json_is_device_error");
	fake_fault_set(f, FAULT_NONE, 0, NULL);
	ok(mt_find_count(s, &t, 1) == 2, "certificate_fetch_works_after_the_fault");
	p11->C_CloseSession(s);
}

static void test_log(const char *log)
{
	char *text;
	int verified;

	fake_fault_set(f, FAULT_403_APPROVAL, 1, "/sign");
	sign_with(FAKE_EC, cec, &verified);
	text = mt_read_file(log);
	ok(strstr(text, "sign signer=ec-signer: HTTP 403 ApprovalRequired "
			"reason=approvalRequired (reqId ") != NULL &&
		   strstr(text, "CKR_FUNCTION_REJECTED") != NULL,
	   "failure_log_line_names_signer_status_error_word_reason_and_rv");
	ok(strstr(text, "reason=noEndpoint") && strstr(text, "does not point at rsignd's API"),
	   "no_endpoint_log_line_says_the_url_is_not_rsignds_api");
	ok(strstr(text, "HTTP 404 - reason=-") != NULL,
	   "a_proxy_answer_is_logged_without_error_word_or_reason");
	ok(strstr(text, "no response from rsignd") != NULL,
	   "transport_failure_is_logged_as_no_response");
	ok(!strstr(text, FAKE_USER_TOKEN) && !strstr(text, FAKE_CLIENT_SECRET) &&
		   !strstr(text, "rsa_"),
	   "log_never_contains_a_token_or_secret");
}

static void test_relogin(void)
{
	int verified, logins, unauth;

	mt_clear_env();
	setenv("RSIGN_CLIENT_ID", FAKE_CLIENT_ID, 1);
	setenv("RSIGN_CLIENT_SECRET", FAKE_CLIENT_SECRET, 1);
	fake_reset_counts(f);
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK, "initialize_with_client_credentials");
	ok(fake_count(f, CNT_LOGIN) == 0, "initialize_does_not_log_in");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && verified &&
		   fake_count(f, CNT_LOGIN) == 1,
	   "first_call_logs_in_once");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && fake_count(f, CNT_LOGIN) == 1,
	   "access_token_is_cached");
	fake_expire_tokens(f);
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && verified &&
		   fake_count(f, CNT_LOGIN) == 2,
	   "expired_token_401_then_success_after_relogin");
	fake_fault_set(f, FAULT_401, 1, "/sign");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && verified &&
		   fake_count(f, CNT_LOGIN) == 3,
	   "injected_401_then_success_after_relogin");
	fake_fault_set(f, FAULT_401, 2, "/sign");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_USER_NOT_LOGGED_IN,
	   "401_after_relogin_is_user_not_logged_in");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && verified,
	   "module_keeps_signing_after_repeated_401");
	fake_fault_set(f, FAULT_503, 1, "/login");
	fake_expire_tokens(f);
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_DEVICE_ERROR, "login_503_is_device_error");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK, "module_keeps_signing_after_login_503");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_client_credentials");

	/* expiresIn honoured: renewed before use, without a 401 */
	fake_set_expires_in(f, 1);
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK, "initialize_short_lived_tokens");
	sign_with(FAKE_EC, cec, &verified);
	logins = fake_count(f, CNT_LOGIN);
	unauth = fake_count(f, CNT_UNAUTHORIZED);
	usleep(1100 * 1000);
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && fake_count(f, CNT_LOGIN) == logins + 1 &&
		   fake_count(f, CNT_UNAUTHORIZED) == unauth,
	   "access_token_renewed_at_expires_in_without_a_401");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_short_lived_tokens");
	fake_set_expires_in(f, 3600);

	/* a wrong secret: the login's 401 */
	setenv("RSIGN_CLIENT_SECRET", "rss_wrong", 1);
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK, "initialize_with_wrong_secret_succeeds");
	{
		CK_ULONG n = 0;

		ok(p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 0,
		   "slot_list_with_wrong_secret_is_empty_not_an_error");
	}
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_wrong_secret");
	mt_clear_env();
}

static void test_server_down_at_start(void)
{
	CK_ULONG n = 5;
	int verified;

	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	fake_stop(f);
	ok(mt_init(mt_conf(f, "refresh_interval = 1\n", 0600)) == CKR_OK,
	   "initialize_succeeds_with_the_server_down");
	ok(p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 0,
	   "slot_list_with_the_server_down_is_empty_not_an_error");
	ok(fake_start(f) == 0, "fake_server_back");
	usleep(1100 * 1000);
	ok(p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 2,
	   "slot_list_retried_once_the_server_is_back");
	ok(sign_with(FAKE_EC, cec, &verified) == CKR_OK && verified,
	   "signing_works_once_the_server_is_back");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_server_down");
}

/* Verification is always on: a server whose certificate the configured CA
 * did not issue gets no request. */
static void test_tls_verification(void)
{
	char ca[256], path[256], text[1024];
	CK_ULONG n = 9;

	snprintf(ca, sizeof(ca), "%s/other-ca.pem", mt_dir());
	mt_write_file(ca, fake_ca_pem(f), 0644); /* the signers' CA, not the TLS certificate */
	snprintf(path, sizeof(path), "%s/wrong-ca.conf", mt_dir());
	snprintf(text, sizeof(text),
		 "url = https://127.0.0.1:%u\nca_file = %s\nlog_level = error\n", fake_port(f), ca);
	mt_write_file(path, text, 0600);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	fake_reset_counts(f);
	ok(mt_init(path) == CKR_OK && p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 0,
	   "server_certificate_from_an_unknown_ca_gives_no_slots");
	ok(fake_count(f, CNT_REQUESTS) == 0, "no_request_reaches_an_unverified_server");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_wrong_ca");
}

int main(void)
{
	char log[256], extra[300];

	plan(1 + 3 + (2 * TAP_COUNT(fault_cases) + 3) + 10 + 1 + 5 + 1 + 17 + 6 + 3);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	cec = fake_signer_cert(f, FAKE_EC);
	crsa = fake_signer_cert(f, FAKE_RSA);
	fake_set_timeout_ms(f, mt_request_timeout() * 1000 + 500);
	mt_load();
	snprintf(log, sizeof(log), "%s/module.log", mt_dir());
	snprintf(extra, sizeof(extra), "log_file = %s\n", log);
	ok(mt_init(mt_conf(f, extra, 0600)) == CKR_OK, "initialize_with_log_file");
	test_object_fetch_faults();
	test_table();
	test_reasons();
	test_404_refreshes_list();
	test_log(log);
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize");

	test_relogin();
	test_server_down_at_start();
	test_tls_verification();
	mt_unload();
	fake_free(f);
	return tap_done();
}
