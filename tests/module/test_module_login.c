/* Login, with and without configured credentials. With them: no
 * CKF_LOGIN_REQUIRED and C_Login accepts any PIN; a token_file is re-read
 * after a 401; a token_file or client_secret_file that group or others may
 * read is refused. Without them: CKF_LOGIN_REQUIRED, the slots are the
 * configured names (no request before login), the PIN carries an access
 * token or "clientId:clientSecret" and a wrong one is CKR_PIN_INCORRECT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/sha.h>

#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static const unsigned char msg[] = "login";

static int sign_in(CK_SESSION_HANDLE s, const char *label)
{
	X509 *cert = fake_signer_cert(f, label);
	CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = {strcmp(label, FAKE_RSA) == 0 ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256,
			  NULL, 0};
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);

	return mt_sign(s, k, &m, msg, sizeof(msg), sig, &n) == CKR_OK &&
	       mt_verify(cert, &m, msg, sizeof(msg), sig, n);
}

static void write_token(const char *path, const char *token, int mode)
{
	FILE *fp = fopen(path, "w");

	fprintf(fp, "%s\n", token);
	fclose(fp);
	chmod(path, (mode_t)mode);
}

static void test_with_credentials(void)
{
	CK_SESSION_HANDLE s;
	CK_TOKEN_INFO ti;

	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK, "initialize_with_token");
	s = mt_open(FAKE_EC);
	ok(p11->C_GetTokenInfo(mt_slot(FAKE_EC), &ti) == CKR_OK && !(ti.flags & CKF_LOGIN_REQUIRED),
	   "no_login_required_with_configured_credentials");
	ok(sign_in(s, FAKE_EC), "signs_without_login");
	ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "whatever", 8) == CKR_OK,
	   "login_accepts_any_pin");
	ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "x", 1) == CKR_USER_ALREADY_LOGGED_IN,
	   "second_login_is_user_already_logged_in");
	ok(p11->C_Logout(s) == CKR_OK && p11->C_Logout(s) == CKR_USER_NOT_LOGGED_IN,
	   "logout_then_user_not_logged_in");
	ok(p11->C_Login(s, CKU_USER, NULL, 0) == CKR_OK && p11->C_Logout(s) == CKR_OK,
	   "login_accepts_an_empty_pin");
	ok(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "x", 1) == CKR_USER_TYPE_INVALID,
	   "security_officer_login_is_user_type_invalid");
	ok(p11->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR) "x", 1) ==
		   CKR_OPERATION_NOT_INITIALIZED,
	   "context_specific_login_without_operation_is_not_initialized");
	ok(sign_in(s, FAKE_EC), "signs_after_logout");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_with_token");
	unsetenv("RSIGN_TOKEN");
}

/* Modes that let group or others read a credential file. */
static const int open_modes[] = {0640, 0604, 0644, 0660};

/* The module's log holds exactly one line, and it names path and the fix. */
static int one_line_naming(const char *log, const char *path)
{
	const char *nl = strchr(log, '\n');

	return nl && nl[1] == '\0' && strstr(log, path) && strstr(log, "chmod 600");
}

/* client_secret_file is a credential too. */
static void test_secret_file(void)
{
	char path[256], extra[512], log[4096];
	CK_RV rv;

	snprintf(path, sizeof(path), "%s/secret", mt_dir());
	snprintf(extra, sizeof(extra), "client_id = %s\nclient_secret_file = %s\n", FAKE_CLIENT_ID,
		 path);
	write_token(path, FAKE_CLIENT_SECRET, 0640);
	rv = mt_init_capture(mt_conf(f, extra, 0600), log, sizeof(log));
	if (rv == CKR_OK)
		p11->C_Finalize(NULL);
	ok(rv == CKR_GENERAL_ERROR && one_line_naming(log, path),
	   "group_readable_client_secret_file_refused_with_one_log_line");
	write_token(path, FAKE_CLIENT_SECRET, 0600);
	rv = mt_init(mt_conf(f, extra, 0600));
	ok(rv == CKR_OK && sign_in(mt_open(FAKE_EC), FAKE_EC) && p11->C_Finalize(NULL) == CKR_OK,
	   "client_secret_file_of_mode_0600_signs");
}

static void test_token_file(void)
{
	char path[256], extra[320];
	CK_SESSION_HANDLE s;

	snprintf(path, sizeof(path), "%s/token", mt_dir());
	snprintf(extra, sizeof(extra), "token_file = %s\n", path);
	write_token(path, FAKE_USER_TOKEN, 0620);
	ok(mt_init(mt_conf(f, extra, 0600)) == CKR_GENERAL_ERROR,
	   "group_writable_token_file_refused");
	for (size_t i = 0; i < TAP_COUNT(open_modes); i++) {
		char log[4096];
		CK_RV rv;

		write_token(path, FAKE_USER_TOKEN, open_modes[i]);
		rv = mt_init_capture(mt_conf(f, extra, 0600), log, sizeof(log));
		if (rv == CKR_OK)
			p11->C_Finalize(NULL);
		ok(rv == CKR_GENERAL_ERROR && one_line_naming(log, path),
		   "token_file_of_mode_%04o_refused_with_one_log_line", open_modes[i]);
	}
	write_token(path, FAKE_USER_TOKEN, 0600);
	ok(mt_init(mt_conf(f, extra, 0600)) == CKR_OK, "initialize_with_token_file");
	s = mt_open(FAKE_RSA);
	ok(sign_in(s, FAKE_RSA), "signs_with_token_file");
	fake_set_user_token(f, "rsu_renewed");
	ok(!sign_in(s, FAKE_RSA), "refused_token_without_renewal_fails");
	write_token(path, "rsu_renewed", 0644);
	ok(!sign_in(s, FAKE_RSA), "renewed_token_file_readable_by_others_not_used");
	write_token(path, "rsu_renewed", 0600);
	ok(sign_in(s, FAKE_RSA), "token_file_reread_after_401");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_token_file");
	fake_set_user_token(f, FAKE_USER_TOKEN);
}

static CK_SLOT_ID name_slot(const char *name)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)name, strlen(name), md);
	return ((CK_SLOT_ID)md[0] << 24 | (CK_SLOT_ID)md[1] << 16 | (CK_SLOT_ID)md[2] << 8 |
		md[3]) &
	       0x7fffffffUL;
}

static void test_pin_mode(void)
{
	static const char pin_pair[] = FAKE_CLIENT_ID ":" FAKE_CLIENT_SECRET;
	CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t = {CKA_CLASS, &priv, sizeof(priv)};
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_SESSION_HANDLE s, s2;
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0;
	int logins;

	fake_reset_counts(f);
	ok(mt_init(mt_conf(f, "signers = rsa-signer, ec-signer\n", 0600)) == CKR_OK,
	   "initialize_without_credentials");
	ok(p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 2 &&
		   fake_count(f, CNT_REQUESTS) == 0,
	   "configured_names_are_slots_without_a_request");
	ok(mt_slot(FAKE_RSA) == name_slot(FAKE_RSA), "slot_id_from_the_name_before_login");
	ok(p11->C_GetTokenInfo(mt_slot(FAKE_RSA), &ti) == CKR_OK &&
		   (ti.flags & CKF_LOGIN_REQUIRED) && ti.ulMinPinLen == 1,
	   "login_required_without_credentials");
	s = mt_open(FAKE_RSA);
	ok(mt_find_count(s, NULL, 0) == 0 && fake_count(f, CNT_REQUESTS) == 0,
	   "no_objects_and_no_request_before_login");
	ok(p11->C_SignInit(s, &m, 0x103 /* fixed handle of the private key */) ==
		   CKR_USER_NOT_LOGGED_IN,
	   "sign_before_login_is_user_not_logged_in");
	ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "rsu_wrong", 9) == CKR_PIN_INCORRECT,
	   "wrong_token_pin_is_pin_incorrect");
	ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)FAKE_CLIENT_ID ":rss_bad",
			strlen(FAKE_CLIENT_ID ":rss_bad")) == CKR_PIN_INCORRECT,
	   "wrong_client_secret_pin_is_pin_incorrect");
	ok(p11->C_Login(s, CKU_USER, NULL, 0) == CKR_PIN_INCORRECT, "empty_pin_is_pin_incorrect");
	ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)FAKE_USER_TOKEN, strlen(FAKE_USER_TOKEN)) ==
		   CKR_OK,
	   "access_token_pin_logs_in");
	ok(p11->C_GetSessionInfo(s, &si) == CKR_OK && si.state == CKS_RO_USER_FUNCTIONS,
	   "session_in_user_state_after_login");
	ok(p11->C_GetTokenInfo(mt_slot(FAKE_RSA), &ti) == CKR_OK &&
		   memcmp(ti.model, "RSA_2048", 8) == 0,
	   "token_knows_its_key_after_login");
	ok(mt_find_count(s, NULL, 0) == 4, "objects_visible_after_login");
	ok(sign_in(s, FAKE_RSA), "signs_with_the_pin_token");
	s2 = mt_open(FAKE_EC);
	ok(p11->C_SignInit(s2, &m, 0x203) == CKR_USER_NOT_LOGGED_IN,
	   "login_on_one_token_does_not_log_in_another");
	ok(p11->C_Logout(s) == CKR_OK && mt_find_count(s, &t, 1) == 0,
	   "private_key_hidden_after_logout");
	ok(!sign_in(s, FAKE_RSA), "sign_after_logout_fails");

	logins = fake_count(f, CNT_LOGIN);
	ok(p11->C_Login(s2, CKU_USER, (CK_UTF8CHAR_PTR)pin_pair, strlen(pin_pair)) == CKR_OK &&
		   fake_count(f, CNT_LOGIN) == logins + 1,
	   "client_id_and_secret_pin_logs_in");
	ok(sign_in(s2, FAKE_EC), "signs_with_the_client_credentials_pin");
	fake_expire_tokens(f);
	ok(sign_in(s2, FAKE_EC) && fake_count(f, CNT_LOGIN) == logins + 2,
	   "pin_client_credentials_log_in_again_after_401");
	ok(p11->C_CloseSession(s2) == CKR_OK, "close_last_session_of_the_token");
	s2 = mt_open(FAKE_EC);
	ok(p11->C_GetSessionInfo(s2, &si) == CKR_OK && si.state == CKS_RO_PUBLIC_SESSION,
	   "closing_the_last_session_logs_out");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_pin_mode");

	n = 7;
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK &&
		   p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 0 &&
		   p11->C_Finalize(NULL) == CKR_OK,
	   "no_credentials_and_no_signers_gives_no_slots");
}

int main(void)
{
	plan(11 + 7 + TAP_COUNT(open_modes) + 2 + 24);
	mt_clear_env();
	f = mt_fake(0);
	mt_load();
	test_with_credentials();
	test_token_file();
	test_secret_file();
	test_pin_mode();
	mt_unload();
	fake_free(f);
	return tap_done();
}
