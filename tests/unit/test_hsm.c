/* The HSM layer against a real SoftHSM2 token in a temporary directory:
 * token set-up, key generation, every signing algorithm verified with
 * OpenSSL, key protection and sign-only attributes, errors, concurrency and
 * recovery from lost sessions. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include "rsign/alg.h"
#include "rsign/log.h"
#include "server/hsm/hsm.h"
#include "tests/unit/softhsm_fixture.h"
#include "tests/unit/tap.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const EVP_MD *md_of(rs_sign_alg a)
{
	switch (rs_sign_alg_hash(a)) {
	case RS_HASH_SHA256:
		return EVP_sha256();
	case RS_HASH_SHA384:
		return EVP_sha384();
	default:
		return EVP_sha512();
	}
}

/* OpenSSL's verdict on sig over dig with the SPKI the token gave us. */
static int verify(const unsigned char *spki, size_t spki_len, rs_sign_alg alg,
		  const unsigned char *dig, size_t dlen, const unsigned char *sig, size_t slen,
		  int salt)
{
	const unsigned char *p = spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_PKEY_CTX *ctx = pk ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
	int ok = ctx && EVP_PKEY_verify_init(ctx) > 0 &&
		 EVP_PKEY_CTX_set_signature_md(ctx, md_of(alg)) > 0;

	if (ok && rs_sign_alg_is_pss(alg))
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md_of(alg)) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) > 0;
	else if (ok && rs_sign_alg_is_rsa(alg))
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
	ok = ok && EVP_PKEY_verify(ctx, sig, slen, dig, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

typedef struct {
	unsigned char ckid[SRV_CKID_LEN];
	unsigned char *spki;
	size_t spki_len;
	int ok;
} test_key;

static test_key keys[RS_KEY_COUNT];
static srv_hsm *hsm;

/* ---- a raw session beside the pool, to look at the objects themselves --- */

static CK_FUNCTION_LIST *raw;
static CK_SESSION_HANDLE raw_s;

static int raw_open(void)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	unsigned char want[32];

	memset(want, ' ', 32);
	memcpy(want, FIXTURE_LABEL, strlen(FIXTURE_LABEL));
	raw = p11_kit_module_load(FIXTURE_MODULE, 0);
	if (!raw || p11_kit_module_initialize(raw) != CKR_OK)
		return -1;
	if (raw->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (raw->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !memcmp(ti.label, want, 32)) {
			CK_RV rv;
			if (raw->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &raw_s) !=
			    CKR_OK)
				return -1;
			rv = raw->C_Login(raw_s, CKU_USER, (CK_UTF8CHAR_PTR)FIXTURE_PIN,
					  strlen(FIXTURE_PIN));
			return rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN ? 0 : -1;
		}
	}
	return -1;
}

static void raw_close(void)
{
	if (!raw)
		return;
	if (raw_s)
		raw->C_CloseSession(raw_s);
	p11_kit_module_finalize(raw);
	p11_kit_module_release(raw);
	raw = NULL;
}

static CK_OBJECT_HANDLE raw_find(CK_OBJECT_CLASS cls, const unsigned char *ckid)
{
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, (void *)ckid, SRV_CKID_LEN}};
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	if (raw->C_FindObjectsInit(raw_s, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	raw->C_FindObjects(raw_s, &o, 1, &n);
	raw->C_FindObjectsFinal(raw_s);
	return n == 1 ? o : CK_INVALID_HANDLE;
}

static void test_key_protection(void)
{
	for (int k = 0; k < RS_KEY_COUNT; k++) {
		CK_BBOOL sens = 0, extr = 1, sign = 0, decr = 1, tok = 0, priv = 0;
		CK_ATTRIBUTE a[] = {
			{CKA_SENSITIVE, &sens, 1}, {CKA_EXTRACTABLE, &extr, 1},
			{CKA_SIGN, &sign, 1},	   {CKA_DECRYPT, &decr, 1},
			{CKA_TOKEN, &tok, 1},	   {CKA_PRIVATE, &priv, 1},
		};
		unsigned char buf[1024];
		CK_ATTRIBUTE secret = {rs_key_alg_is_rsa(k) ? CKA_PRIVATE_EXPONENT : CKA_VALUE, buf,
				       sizeof buf};
		CK_OBJECT_HANDLE o = raw_find(CKO_PRIVATE_KEY, keys[k].ckid);
		int found = keys[k].ok && o != CK_INVALID_HANDLE;
		CK_RV rv;

		rv = found ? raw->C_GetAttributeValue(raw_s, o, a, 6) : CKR_OBJECT_HANDLE_INVALID;
		ok(found && rv == CKR_OK && sens && !extr && sign && !decr && tok && priv,
		   "private_key_sensitive_not_extractable_sign_only_%s", rs_key_alg_name(k));
		secret.ulValueLen = sizeof buf;
		rv = found ? raw->C_GetAttributeValue(raw_s, o, &secret, 1) : CKR_OK;
		ok(found && rv != CKR_OK && secret.ulValueLen == CK_UNAVAILABLE_INFORMATION,
		   "private_key_value_unreadable_%s", rs_key_alg_name(k));
		ok(raw_find(CKO_PUBLIC_KEY, keys[k].ckid) != CK_INVALID_HANDLE,
		   "public_key_object_shares_ckid_%s", rs_key_alg_name(k));
	}
}

/* Sign-only keys: the private key can neither decrypt, unwrap, derive nor
 * sign-recover (a raw RSA decryption in disguise); the public key can only
 * verify. Each attribute is read back from the token. */
static void test_key_usage(void)
{
	for (int k = 0; k < RS_KEY_COUNT; k++) {
		CK_BBOOL sign = 0, decr = 1, unwrap = 1, derive = 1, srec = 1;
		CK_BBOOL verify = 0, encr = 1, wrap = 1, vrec = 1;
		CK_ATTRIBUTE pa[] = {
			{CKA_SIGN, &sign, 1},	      {CKA_DECRYPT, &decr, 1},
			{CKA_UNWRAP, &unwrap, 1},     {CKA_DERIVE, &derive, 1},
			{CKA_SIGN_RECOVER, &srec, 1},
		};
		CK_ATTRIBUTE qa[] = {
			{CKA_VERIFY, &verify, 1},
			{CKA_ENCRYPT, &encr, 1},
			{CKA_WRAP, &wrap, 1},
			{CKA_VERIFY_RECOVER, &vrec, 1},
		};
		CK_OBJECT_HANDLE priv =
			keys[k].ok ? raw_find(CKO_PRIVATE_KEY, keys[k].ckid) : CK_INVALID_HANDLE;
		CK_OBJECT_HANDLE pub =
			keys[k].ok ? raw_find(CKO_PUBLIC_KEY, keys[k].ckid) : CK_INVALID_HANDLE;
		CK_RV rp = priv != CK_INVALID_HANDLE
				   ? raw->C_GetAttributeValue(raw_s, priv, pa, TAP_COUNT(pa))
				   : CKR_OBJECT_HANDLE_INVALID;
		CK_RV rq = pub != CK_INVALID_HANDLE
				   ? raw->C_GetAttributeValue(raw_s, pub, qa, TAP_COUNT(qa))
				   : CKR_OBJECT_HANDLE_INVALID;

		ok(rp == CKR_OK && sign && !decr && !unwrap && !derive && !srec,
		   "private_key_signs_only_no_decrypt_unwrap_derive_or_recover_%s "
		   "(rv 0x%lx sign %d decrypt %d unwrap %d derive %d sign_recover %d)",
		   rs_key_alg_name(k), (unsigned long)rp, sign, decr, unwrap, derive, srec);
		ok(rq == CKR_OK && verify && !encr && !wrap && !vrec,
		   "public_key_verifies_only_no_encrypt_wrap_or_recover_%s "
		   "(rv 0x%lx verify %d encrypt %d wrap %d verify_recover %d)",
		   rs_key_alg_name(k), (unsigned long)rq, verify, encr, wrap, vrec);
	}
}

/* ---- token set-up and key generation ------------------------------------ */

static void test_open(void)
{
	char err[256] = "";
	srv_hsm *h = NULL;

	ok(srv_hsm_init_token(FIXTURE_MODULE, FIXTURE_LABEL, FIXTURE_SO_PIN, FIXTURE_PIN, err,
			      sizeof err) == SRV_HSM_OK,
	   "init_token_initialises_a_fresh_token");
	ok(srv_hsm_init_token(FIXTURE_MODULE, FIXTURE_LABEL, "other-so", "other-pin", err,
			      sizeof err) == SRV_HSM_OK,
	   "init_token_leaves_an_existing_token_alone");
	ok(srv_hsm_init_token(FIXTURE_MODULE, "", FIXTURE_SO_PIN, FIXTURE_PIN, err, sizeof err) ==
		   SRV_HSM_INVALID,
	   "init_token_rejects_an_empty_label");
	ok(srv_hsm_open(FIXTURE_MODULE, "no-such-token", FIXTURE_PIN, 2, &h, err, sizeof err) ==
			   SRV_HSM_UNAVAILABLE &&
		   !h && strstr(err, "no-such-token"),
	   "open_reports_an_unknown_token_label");
	ok(srv_hsm_open(FIXTURE_MODULE, FIXTURE_LABEL, "wrong-pin", 2, &h, err, sizeof err) ==
			   SRV_HSM_UNAVAILABLE &&
		   !h && strstr(err, "CKR_PIN_INCORRECT") && !strstr(err, "wrong-pin"),
	   "open_refuses_a_wrong_pin_without_echoing_it");
	ok(srv_hsm_open("/nonexistent/module.so", FIXTURE_LABEL, FIXTURE_PIN, 2, &h, err,
			sizeof err) == SRV_HSM_UNAVAILABLE,
	   "open_reports_a_missing_module");
	ok(srv_hsm_open(FIXTURE_MODULE, FIXTURE_LABEL, FIXTURE_PIN, 0, &h, err, sizeof err) ==
		   SRV_HSM_INVALID,
	   "open_rejects_an_empty_pool");
	ok(srv_hsm_open(FIXTURE_MODULE, FIXTURE_LABEL, FIXTURE_PIN, 2, &hsm, err, sizeof err) ==
			   SRV_HSM_OK &&
		   hsm,
	   "open_logs_in_a_pool_of_two");
	ok(hsm && srv_hsm_ping(hsm) == SRV_HSM_OK, "ping_answers_for_a_live_token");
	srv_hsm_close(NULL);
	ok(hsm && srv_hsm_ping(hsm) == SRV_HSM_OK, "close_of_null_leaves_the_open_pool_alone");
}

static void test_generate(void)
{
	for (int k = 0; k < RS_KEY_COUNT; k++) {
		const unsigned char *p;
		EVP_PKEY *pk = NULL;
		char label[64];
		double t0 = now_s();
		srv_hsm_rc rc;

		if (RAND_bytes(keys[k].ckid, SRV_CKID_LEN) != 1)
			abort();
		snprintf(label, sizeof label, "test-%s", rs_key_alg_name(k));
		rc = srv_hsm_generate(hsm, k, keys[k].ckid, label, &keys[k].spki,
				      &keys[k].spki_len);
		ok(rc == SRV_HSM_OK && keys[k].spki, "generate_%s (%.2fs)", rs_key_alg_name(k),
		   now_s() - t0);
		p = keys[k].spki;
		if (rc == SRV_HSM_OK)
			pk = d2i_PUBKEY(NULL, &p, (long)keys[k].spki_len);
		ok(pk && p == keys[k].spki + keys[k].spki_len &&
			   EVP_PKEY_get_bits(pk) == rs_key_alg_bits(k) &&
			   EVP_PKEY_get_base_id(pk) ==
				   (rs_key_alg_is_rsa(k) ? EVP_PKEY_RSA : EVP_PKEY_EC),
		   "generate_returns_a_parsable_spki_%s", rs_key_alg_name(k));
		keys[k].ok = pk != NULL;
		EVP_PKEY_free(pk);
		ok(srv_hsm_key_exists(hsm, keys[k].ckid) == SRV_HSM_OK,
		   "key_exists_after_generate_%s", rs_key_alg_name(k));
	}
	{
		unsigned char *spki = NULL;
		size_t len = 0;
		ok(srv_hsm_generate(hsm, RS_KEY_EC_P256, keys[RS_KEY_EC_P256].ckid, "dup", &spki,
				    &len) == SRV_HSM_INVALID &&
			   !spki,
		   "generate_refuses_a_ckid_already_in_use");
	}
}

/* ---- signing ---------------------------------------------------------------- */

static int sign_verify(int k, rs_sign_alg a, long salt)
{
	unsigned char dig[64], sig[1024];
	size_t dlen = rs_hash_len(rs_sign_alg_hash(a)), slen = 0;
	int vsalt = salt == -1 ? (int)dlen : (int)salt;

	if (RAND_bytes(dig, sizeof dig) != 1)
		return 0;
	if (srv_hsm_sign(hsm, keys[k].ckid, a, dig, dlen, salt, sig, sizeof sig, &slen) !=
	    SRV_HSM_OK)
		return 0;
	if (rs_sign_alg_is_rsa(a) && slen != (size_t)rs_key_alg_bits(k) / 8)
		return 0;
	return verify(keys[k].spki, keys[k].spki_len, a, dig, dlen, sig, slen, vsalt);
}

/* The checks test_sign makes for every key and algorithm that fit: one
 * signature, and two more salt lengths for PSS. */
static int sign_checks(int k, int a)
{
	return !rs_alg_fits_key(a, k) ? 0 : rs_sign_alg_is_pss(a) ? 3 : 1;
}

static size_t sign_checks_total(void)
{
	size_t n = 0;

	for (int k = 0; k < RS_KEY_COUNT; k++)
		for (int a = 0; a < RS_ALG_COUNT; a++)
			n += (size_t)sign_checks(k, a);
	return n;
}

static void test_sign(void)
{
	for (int k = 0; k < RS_KEY_COUNT; k++) {
		for (int a = 0; a < RS_ALG_COUNT; a++) {
			if (!sign_checks(k, a))
				continue;
			ok(keys[k].ok && sign_verify(k, a, -1), "sign_verifies_%s_%s",
			   rs_sign_alg_name(a), rs_key_alg_name(k));
			if (rs_sign_alg_is_pss(a)) {
				ok(keys[k].ok && sign_verify(k, a, 0),
				   "sign_pss_salt_0_verifies_%s_%s", rs_sign_alg_name(a),
				   rs_key_alg_name(k));
				ok(keys[k].ok && sign_verify(k, a, 20),
				   "sign_pss_salt_20_verifies_%s_%s", rs_sign_alg_name(a),
				   rs_key_alg_name(k));
			}
		}
	}
	{
		int k = RS_KEY_RSA_2048;
		long max = 256 - 64 - 2;
		unsigned char dig[64] = {1}, sig[1024];
		size_t slen;
		ok(sign_verify(k, RS_ALG_RSA_PSS_SHA512, max), "sign_pss_accepts_the_largest_salt");
		ok(srv_hsm_sign(hsm, keys[k].ckid, RS_ALG_RSA_PSS_SHA512, dig, 64, max + 1, sig,
				sizeof sig, &slen) == SRV_HSM_INVALID,
		   "sign_pss_refuses_a_salt_too_large_for_the_key");
		ok(srv_hsm_sign(hsm, keys[k].ckid, RS_ALG_RSA_PSS_SHA256, dig, 32, -2, sig,
				sizeof sig, &slen) == SRV_HSM_INVALID,
		   "sign_pss_refuses_a_negative_salt");
		ok(srv_hsm_sign(hsm, keys[k].ckid, RS_ALG_RSA_PKCS1_SHA256, dig, 48, -1, sig,
				sizeof sig, &slen) == SRV_HSM_INVALID,
		   "sign_refuses_a_digest_of_the_wrong_length");
		ok(srv_hsm_sign(hsm, keys[k].ckid, RS_ALG_ECDSA_SHA256, dig, 32, -1, sig,
				sizeof sig, &slen) == SRV_HSM_INVALID,
		   "sign_refuses_ecdsa_with_an_rsa_key");
		ok(srv_hsm_sign(hsm, keys[RS_KEY_EC_P256].ckid, RS_ALG_RSA_PKCS1_SHA256, dig, 32,
				-1, sig, sizeof sig, &slen) == SRV_HSM_INVALID,
		   "sign_refuses_pkcs1_with_an_ec_key");
	}
	{
		unsigned char ckid[SRV_CKID_LEN] = {0}, dig[32] = {0}, sig[1024];
		size_t slen;
		ok(srv_hsm_sign(hsm, ckid, RS_ALG_ECDSA_SHA256, dig, 32, -1, sig, sizeof sig,
				&slen) == SRV_HSM_NOT_FOUND,
		   "sign_reports_an_unknown_ckid_as_not_found");
		ok(srv_hsm_key_exists(hsm, ckid) == SRV_HSM_NOT_FOUND,
		   "key_exists_reports_an_unknown_ckid");
	}
}

/* ---- concurrency and recovery -------------------------------------------- */

#define THREADS 4
#define PER_THREAD 12

static void *signer_thread(void *arg)
{
	long id = (long)arg, good = 0;
	for (int i = 0; i < PER_THREAD; i++) {
		int k = (id + i) % 2 ? RS_KEY_EC_P256 : RS_KEY_RSA_2048;
		rs_sign_alg a = k == RS_KEY_EC_P256
					? RS_ALG_ECDSA_SHA256
					: (i % 3 ? RS_ALG_RSA_PSS_SHA256 : RS_ALG_RSA_PKCS1_SHA256);
		good += sign_verify(k, a, -1);
	}
	return (void *)good;
}

static void test_concurrency(void)
{
	pthread_t t[THREADS];
	long total = 0;
	double t0 = now_s();

	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, signer_thread, (void *)i);
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (long)r;
	}
	ok(total == THREADS * PER_THREAD,
	   "concurrent_signing_4_threads_pool_2_all_verify "
	   "(%ld/%d in %.2fs)",
	   total, THREADS * PER_THREAD, now_s() - t0);
}

/* Closes every session of the application behind the pool's back (SoftHSM2
 * then logs the token out and forgets private object handles): the pool must
 * reopen, log in again and look the key up again. */
static void test_recovery(void)
{
	CK_SESSION_INFO si;
	int closed = 0;

	for (CK_SESSION_HANDLE s = 1; s < 64; s++)
		if (s != raw_s && raw->C_GetSessionInfo(s, &si) == CKR_OK &&
		    raw->C_CloseSession(s) == CKR_OK)
			closed++;
	if (closed < 2) {
		skip("the module does not let one instance close another's sessions",
		     "sign_recovers_after_sessions_are_lost");
		skip("the module does not let one instance close another's sessions",
		     "sign_after_recovery_finds_keys_again");
		return;
	}
	raw->C_CloseSession(raw_s);
	raw_s = 0;
	ok(sign_verify(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256, -1) &&
		   sign_verify(RS_KEY_RSA_2048, RS_ALG_RSA_PKCS1_SHA256, -1),
	   "sign_recovers_after_sessions_are_lost (%d closed)", closed);
	ok(sign_verify(RS_KEY_RSA_3072, RS_ALG_RSA_PSS_SHA384, -1),
	   "sign_after_recovery_finds_keys_again");
}

int main(void)
{
	double t0 = now_s();
	char err[256] = "";

	plan(10 + (3 * RS_KEY_COUNT + 1) + (sign_checks_total() + 8) + 1 + 3 * RS_KEY_COUNT +
	     2 * RS_KEY_COUNT + 1 + 2 + 1);
	/* RSIGN_TEST_LOG=debug shows the layer's warnings (session reopens). */
	rs_log_set_level(getenv("RSIGN_TEST_LOG") ? rs_log_level_parse(getenv("RSIGN_TEST_LOG"))
						  : RS_LOG_ERROR);
	if (fixture_softhsm_setup("hsm", err, sizeof err) != 0)
		tap_bail("cannot create the SoftHSM2 fixture: %s", err);
	test_open();
	if (!hsm)
		tap_bail("no logged-in pool on the fixture's token: nothing else can run");
	test_generate();
	test_sign();
	ok(raw_open() == 0, "raw_session_beside_the_pool_opens");
	if (!raw_s)
		tap_bail("no raw session on the fixture's token");
	test_key_protection();
	test_key_usage();
	test_concurrency();
	test_recovery();
	srv_hsm_close(hsm);
	raw_close();
	for (int k = 0; k < RS_KEY_COUNT; k++)
		free(keys[k].spki);
	ok(fixture_softhsm_teardown() == 0, "fixture_directory_removed");
	printf("# total %.2fs\n", now_s() - t0);
	return tap_done();
}
