/* How operations end: C_SessionCancel and a NULL mechanism to C_SignInit,
 * C_VerifyInit or C_DigestInit (PKCS#11 3.0) end the active operation; an
 * error from C_Sign, C_SignFinal, C_Verify, C_VerifyFinal, C_Digest or
 * C_DigestFinal ends it too, while the length query and
 * CKR_BUFFER_TOO_SMALL keep it. After an end, the next call without an Init
 * is CKR_OPERATION_NOT_INITIALIZED and a new Init succeeds. Against the fake
 * rsignd. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static CK_FUNCTION_LIST_3_0 *p3;
static CK_SESSION_HANDLE s;
static CK_OBJECT_HANDLE key, pub;
static X509 *cert;
static CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
static CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
static const unsigned char msg[] = "cancel";

static void load_3_0(void)
{
	CK_C_GetInterface get = (CK_C_GetInterface)dlsym(mt_dl, "C_GetInterface");
	CK_VERSION v30 = {3, 0};
	CK_INTERFACE *it = NULL;

	if (!get || get((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &it, 0) != CKR_OK)
		tap_bail("the module offers no PKCS#11 3.0 interface");
	p3 = it->pFunctionList;
}

/* Each check starts on a session of its own, so that what one leaves does
 * not decide the next. */
static void fresh(void)
{
	if (s)
		p11->C_CloseSession(s);
	s = mt_open(FAKE_EC);
}

/* The next calls without an Init find no operation. */
static int sign_ended(void)
{
	unsigned char sig[128];
	CK_ULONG n = sizeof(sig);

	return p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) ==
		       CKR_OPERATION_NOT_INITIALIZED &&
	       p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 1) == CKR_OPERATION_NOT_INITIALIZED;
}

static int verify_ended(void)
{
	unsigned char sig[64] = {0};

	return p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, sizeof(sig)) ==
	       CKR_OPERATION_NOT_INITIALIZED;
}

static int digest_ended(void)
{
	unsigned char out[64];
	CK_ULONG n = sizeof(out);

	return p11->C_Digest(s, (CK_BYTE_PTR)msg, sizeof(msg), out, &n) ==
	       CKR_OPERATION_NOT_INITIALIZED;
}

static int find_ended(void)
{
	CK_OBJECT_HANDLE h;
	CK_ULONG n;

	return p11->C_FindObjects(s, &h, 1, &n) == CKR_OPERATION_NOT_INITIALIZED;
}

/* A whole signature after the end: a new operation starts and verifies. */
static int signs_again(void)
{
	unsigned char sig[128];
	CK_ULONG n = sizeof(sig);

	return mt_sign(s, key, &ecdsa, msg, sizeof(msg), sig, &n) == CKR_OK &&
	       mt_verify(cert, &ecdsa, msg, sizeof(msg), sig, n);
}

static void test_null_mechanism(void)
{
	unsigned char out[64];
	CK_ULONG n = sizeof(out);

	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK && p11->C_SignInit(s, NULL, 0) == CKR_OK &&
		   sign_ended() && signs_again(),
	   "sign_init_with_null_mechanism_ends_the_operation");
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_SignInit(s, NULL, 0) == CKR_OK && sign_ended() && signs_again(),
	   "sign_init_with_null_mechanism_ends_a_multipart_operation");
	fresh();
	ok(p11->C_SignInit(s, NULL, 0) == CKR_OK && signs_again(),
	   "sign_init_with_null_mechanism_without_operation_is_ok");
	fresh();
	ok(p11->C_VerifyInit(s, &ecdsa, pub) == CKR_OK && p11->C_VerifyInit(s, NULL, 0) == CKR_OK &&
		   verify_ended() && p11->C_VerifyInit(s, &ecdsa, pub) == CKR_OK &&
		   p11->C_VerifyInit(s, NULL, 0) == CKR_OK,
	   "verify_init_with_null_mechanism_ends_the_operation");
	fresh();
	ok(p11->C_DigestInit(s, &sha256) == CKR_OK && p11->C_DigestInit(s, NULL) == CKR_OK &&
		   digest_ended() && p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p11->C_Digest(s, (CK_BYTE_PTR)msg, sizeof(msg), out, &n) == CKR_OK && n == 32,
	   "digest_init_with_null_mechanism_ends_the_operation");
}

static CK_RV busy_rv;

static void *sign_slowly(void *arg)
{
	unsigned char sig[128];
	CK_ULONG n = sizeof(sig);

	(void)arg;
	busy_rv = p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n);
	return NULL;
}

/* While another thread waits for the server, its operation cannot be
 * cancelled: CKR_OPERATION_CANCEL_FAILED; that thread's error then ends it. */
static void test_cancel_busy(void)
{
	int before = fake_count(f, CNT_REQUESTS), waited = 0;
	CK_RV rv = CKR_GENERAL_ERROR;
	pthread_t t;

	fresh();
	fake_set_timeout_ms(f, (mt_request_timeout() + 1) * 1000);
	fake_fault_set(f, FAULT_TIMEOUT, 1, "/sign");
	if (p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
	    pthread_create(&t, NULL, sign_slowly, NULL) == 0) {
		/* the request has reached the fake: the operation is out of its
		 * session until the module's request times out */
		while (fake_count(f, CNT_REQUESTS) == before && waited++ < 60000)
			usleep(1000);
		rv = p3->C_SessionCancel(s, CKF_SIGN);
		pthread_join(t, NULL);
	}
	ok(rv == CKR_OPERATION_CANCEL_FAILED && busy_rv != CKR_OK && sign_ended() && signs_again(),
	   "session_cancel_of_a_sign_waiting_for_the_server_is_cancel_failed");
}

static void test_session_cancel(void)
{
	CK_ULONG n = 0;

	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_VerifyInit(s, &ecdsa, pub) == CKR_OK &&
		   p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p11->C_FindObjectsInit(s, NULL, 0) == CKR_OK &&
		   p3->C_SessionCancel(s, CKF_SIGN | CKF_VERIFY | CKF_DIGEST | CKF_FIND_OBJECTS) ==
			   CKR_OK &&
		   sign_ended() && verify_ended() && digest_ended() && find_ended(),
	   "session_cancel_ends_sign_verify_digest_and_find");
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK && p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p3->C_SessionCancel(s, CKF_DIGEST) == CKR_OK && digest_ended() &&
		   p11->C_SignInit(s, &ecdsa, key) == CKR_OPERATION_ACTIVE &&
		   p3->C_SessionCancel(s, CKF_SIGN) == CKR_OK && sign_ended(),
	   "session_cancel_ends_only_what_its_flags_name");
	fresh();
	ok(p3->C_SessionCancel(s, CKF_SIGN | CKF_ENCRYPT | CKF_DECRYPT) == CKR_OK && signs_again(),
	   "session_cancel_with_nothing_active_is_ok");
	fresh();
	ok(p3->C_SessionCancel(s + 1000, CKF_SIGN) == CKR_SESSION_HANDLE_INVALID &&
		   p11->C_GetSlotList(CK_FALSE, NULL, &n) == CKR_OK,
	   "session_cancel_of_an_unknown_session_is_handle_invalid");
}

/* An error ends the operation; the length query and a short buffer do not. */
static void test_errors_end(void)
{
	unsigned char sig[128], out[64];
	CK_ULONG n;

	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, NULL) == CKR_ARGUMENTS_BAD &&
		   sign_ended(),
	   "c_sign_arguments_bad_ends_the_operation");
	n = sizeof(sig);
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) == CKR_OPERATION_ACTIVE &&
		   sign_ended() && signs_again(),
	   "c_sign_on_a_multipart_operation_ends_it");
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_SignFinal(s, sig, NULL) == CKR_ARGUMENTS_BAD && sign_ended(),
	   "c_sign_final_arguments_bad_ends_the_operation");
	fake_fault_set(f, FAULT_500, 1, "/sign");
	n = sizeof(sig);
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) != CKR_OK && sign_ended(),
	   "c_sign_server_error_ends_the_operation");
	fake_fault_set(f, FAULT_500, 1, "/sign");
	n = sizeof(sig);
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_SignFinal(s, sig, &n) != CKR_OK && sign_ended(),
	   "c_sign_final_server_error_ends_the_operation");
	n = 0;
	fresh();
	ok(p11->C_SignInit(s, &ecdsa, key) == CKR_OK &&
		   p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &n) == CKR_OK && n == 64 &&
		   (n = 1, p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n)) ==
			   CKR_BUFFER_TOO_SMALL &&
		   (n = sizeof(sig), p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n)) ==
			   CKR_OK &&
		   mt_verify(cert, &ecdsa, msg, sizeof(msg), sig, n) && sign_ended(),
	   "length_query_and_short_buffer_keep_the_operation_success_ends_it");

	fresh();
	ok(p11->C_VerifyInit(s, &ecdsa, pub) == CKR_OK &&
		   p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), NULL, 64) == CKR_ARGUMENTS_BAD &&
		   verify_ended(),
	   "c_verify_arguments_bad_ends_the_operation");
	fresh();
	ok(p11->C_VerifyInit(s, &ecdsa, pub) == CKR_OK &&
		   p11->C_VerifyUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, 64) ==
			   CKR_OPERATION_ACTIVE &&
		   verify_ended(),
	   "c_verify_on_a_multipart_operation_ends_it");

	fresh();
	ok(p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p11->C_Digest(s, (CK_BYTE_PTR)msg, sizeof(msg), out, NULL) ==
			   CKR_ARGUMENTS_BAD &&
		   digest_ended(),
	   "c_digest_arguments_bad_ends_the_operation");
	n = sizeof(out);
	fresh();
	ok(p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p11->C_DigestUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_Digest(s, (CK_BYTE_PTR)msg, sizeof(msg), out, &n) ==
			   CKR_OPERATION_ACTIVE &&
		   digest_ended(),
	   "c_digest_on_a_multipart_operation_ends_it");
	fresh();
	ok(p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p11->C_DigestUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_DigestFinal(s, out, NULL) == CKR_ARGUMENTS_BAD && digest_ended(),
	   "c_digest_final_arguments_bad_ends_the_operation");
	n = 0;
	fresh();
	ok(p11->C_DigestInit(s, &sha256) == CKR_OK &&
		   p11->C_DigestUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
		   p11->C_DigestFinal(s, NULL, &n) == CKR_OK && n == 32 &&
		   (n = 4, p11->C_DigestFinal(s, out, &n)) == CKR_BUFFER_TOO_SMALL && n == 32 &&
		   (n = sizeof(out), p11->C_DigestFinal(s, out, &n)) == CKR_OK && digest_ended(),
	   "digest_length_query_and_short_buffer_keep_the_operation");
}

int main(void)
{
	plan(5 + 4 + 1 + 12);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	cert = fake_signer_cert(f, FAKE_EC);
	mt_load();
	load_3_0();
	if (mt_init(mt_conf(f, NULL, 0600)) != CKR_OK)
		tap_bail("C_Initialize failed");
	fresh();
	key = mt_find(s, CKO_PRIVATE_KEY);
	pub = mt_find(s, CKO_PUBLIC_KEY);
	test_null_mechanism();
	test_session_cancel();
	test_cancel_busy();
	test_errors_end();
	p11->C_CloseSession(s);
	p11->C_Finalize(NULL);
	mt_unload();
	fake_free(f);
	return tap_done();
}
