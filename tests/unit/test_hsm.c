/* The HSM layer against a real SoftHSM2 token in a temporary directory:
 * token set-up, key generation, every signing algorithm verified with
 * OpenSSL, key protection and sign-only attributes, errors, concurrency,
 * recovery from lost sessions and from a broken token (its directory gone,
 * descriptors exhausted, many threads at once, a key deleted). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include "rsign/alg.h"
#include "rsign/ckr.h"
#include "rsign/log.h"
#include "server/hsm/hsm.h"
#include "tests/unit/softhsm_fixture.h"
#include "tests/unit/start_gate.h"
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
static CK_SLOT_ID raw_slot;

/* A logged-in session of a second module instance (read-write: rw). */
static int raw_open_rw(int rw)
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
			raw_slot = slots[i];
			if (raw->C_OpenSession(slots[i],
					       CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL,
					       NULL, &raw_s) != CKR_OK)
				return -1;
			rv = raw->C_Login(raw_s, CKU_USER, (CK_UTF8CHAR_PTR)FIXTURE_PIN,
					  strlen(FIXTURE_PIN));
			return rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN ? 0 : -1;
		}
	}
	return -1;
}

static int raw_open(void)
{
	return raw_open_rw(0);
}

static void raw_close(void)
{
	if (!raw)
		return;
	if (raw_s)
		raw->C_CloseSession(raw_s);
	raw_s = 0;
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

/* The row MAC key (hsm_mac.c): created, found by label, relabelled; an
 * HMAC-SHA-256 key that never leaves the token; its MACs verify with
 * CKM_SHA256_HMAC in a session of another module instance. */
static void test_mac_key(void)
{
	static const unsigned char m1[] = "principals:alice", m2[] = "principals:alicf";
	unsigned char a[SRV_HSM_MAC_LEN], b[SRV_HSM_MAC_LEN], c[SRV_HSM_MAC_LEN],
		d[SRV_HSM_MAC_LEN];
	int found = 1;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, "t-row-mac", 9}};
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	CK_BBOOL sens = 0, extr = 1, sign = 0, encr = 1, decr = 1, wrap = 1, unwrap = 1, der = 1;
	CK_ATTRIBUTE attrs[] = {
		{CKA_SENSITIVE, &sens, 1}, {CKA_EXTRACTABLE, &extr, 1}, {CKA_SIGN, &sign, 1},
		{CKA_ENCRYPT, &encr, 1},   {CKA_DECRYPT, &decr, 1},	{CKA_WRAP, &wrap, 1},
		{CKA_UNWRAP, &unwrap, 1},  {CKA_DERIVE, &der, 1},
	};
	unsigned char buf[64];
	CK_ATTRIBUTE value = {CKA_VALUE, buf, sizeof buf};
	CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};

	ok(srv_hsm_mac_key_find(hsm, "t-row-mac", &found) == SRV_HSM_OK && !found,
	   "mac_key_find_absent");
	ok(srv_hsm_mac_key_create(hsm, "t-row-mac-new") == SRV_HSM_OK &&
		   srv_hsm_mac_key_find(hsm, "t-row-mac-new", &found) == SRV_HSM_OK && found,
	   "mac_key_create_then_found");
	ok(srv_hsm_mac(hsm, "t-row-mac-new", m1, sizeof m1, a) == SRV_HSM_OK &&
		   srv_hsm_mac(hsm, "t-row-mac-new", m1, sizeof m1, b) == SRV_HSM_OK &&
		   srv_hsm_mac(hsm, "t-row-mac-new", m2, sizeof m2, c) == SRV_HSM_OK &&
		   !memcmp(a, b, sizeof a) && memcmp(a, c, sizeof a) != 0,
	   "mac_same_message_same_mac_one_byte_changes_it");
	ok(srv_hsm_mac(hsm, "t-row-mac-absent", m1, sizeof m1, b) == SRV_HSM_NOT_FOUND,
	   "mac_with_an_absent_key_not_found");
	ok(srv_hsm_mac_key_relabel(hsm, "t-row-mac-new", "t-row-mac") == SRV_HSM_OK &&
		   srv_hsm_mac_key_find(hsm, "t-row-mac-new", &found) == SRV_HSM_OK && !found &&
		   srv_hsm_mac(hsm, "t-row-mac", m1, sizeof m1, d) == SRV_HSM_OK &&
		   !memcmp(a, d, sizeof a),
	   "mac_key_relabelled_is_the_same_key");
	if (raw->C_FindObjectsInit(raw_s, t, 2) == CKR_OK) {
		raw->C_FindObjects(raw_s, &o, 1, &n);
		raw->C_FindObjectsFinal(raw_s);
	}
	ok(n == 1 && raw->C_GetAttributeValue(raw_s, o, attrs, TAP_COUNT(attrs)) == CKR_OK &&
		   sens && !extr && sign && !encr && !decr && !wrap && !unwrap && !der,
	   "mac_key_sensitive_not_extractable_sign_only");
	ok(n == 1 && raw->C_GetAttributeValue(raw_s, o, &value, 1) != CKR_OK,
	   "mac_key_value_unreadable");
	ok(n == 1 && raw->C_VerifyInit(raw_s, &mech, o) == CKR_OK &&
		   raw->C_Verify(raw_s, (CK_BYTE_PTR)m1, sizeof m1, a, sizeof a) == CKR_OK,
	   "mac_is_hmac_sha256_of_the_key");
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

/* Signs a random digest with key on handle h; 1 when OpenSSL verifies it. */
static int sign_verify_on(srv_hsm *h, const test_key *key, int k, rs_sign_alg a, long salt)
{
	unsigned char dig[64], sig[1024];
	size_t dlen = rs_hash_len(rs_sign_alg_hash(a)), slen = 0;
	int vsalt = salt == -1 ? (int)dlen : (int)salt;

	if (RAND_bytes(dig, sizeof dig) != 1)
		return 0;
	if (srv_hsm_sign(h, key->ckid, a, dig, dlen, salt, sig, sizeof sig, &slen) != SRV_HSM_OK)
		return 0;
	if (rs_sign_alg_is_rsa(a) && slen != (size_t)rs_key_alg_bits(k) / 8)
		return 0;
	return verify(key->spki, key->spki_len, a, dig, dlen, sig, slen, vsalt);
}

static int sign_verify(int k, rs_sign_alg a, long salt)
{
	return sign_verify_on(hsm, &keys[k], k, a, salt);
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

/* Many threads on the one handle at once, six times as many as its pool of
 * two sessions, released together: every key type signing (PKCS#1, PSS,
 * ECDSA), key look-ups and pings between signatures, and keys generated
 * while the others sign. scripts/check-sanitizers runs it under
 * ThreadSanitizer for the pool, the key handle cache and the token's
 * locking. */
#define STORM_THREADS 12
#define STORM_GENERATORS 2 /* of STORM_THREADS: generate a key, then sign with it */
#define STORM_ROUNDS 8
#define STORM_CHECKS 4

typedef struct {
	srv_hsm *h;
	int id;
	int verified;  /* signatures OpenSSL verifies */
	int looked_up; /* key_exists and ping answers that were right */
	int generated; /* 1 when this generator's key was made and found */
	test_key own;  /* a generator's key */
} storm_worker;

static start_gate storm_gate = START_GATE_INIT;

static rs_sign_alg storm_alg(int k, int round)
{
	if (!rs_key_alg_is_rsa(k))
		return k == RS_KEY_EC_P256   ? RS_ALG_ECDSA_SHA256
		       : k == RS_KEY_EC_P384 ? RS_ALG_ECDSA_SHA384
					     : RS_ALG_ECDSA_SHA512;
	return round % 2 ? RS_ALG_RSA_PSS_SHA256 : RS_ALG_RSA_PKCS1_SHA256;
}

static void *storm_thread(void *arg)
{
	storm_worker *w = arg;

	start_gate_wait(&storm_gate);
	if (w->id < STORM_GENERATORS) {
		char label[32];
		snprintf(label, sizeof label, "storm-%d", w->id);
		w->generated = RAND_bytes(w->own.ckid, SRV_CKID_LEN) == 1 &&
			       srv_hsm_generate(w->h, RS_KEY_EC_P256, w->own.ckid, label,
						&w->own.spki, &w->own.spki_len) == SRV_HSM_OK &&
			       srv_hsm_key_exists(w->h, w->own.ckid) == SRV_HSM_OK;
	}
	for (int i = 0; i < STORM_ROUNDS; i++) {
		int k = (w->id + i) % RS_KEY_COUNT;
		const test_key *key = &keys[k];

		if (w->id < STORM_GENERATORS) {
			k = RS_KEY_EC_P256;
			key = &w->own;
		}
		w->verified += w->id >= STORM_GENERATORS || w->generated
				       ? sign_verify_on(w->h, key, k, storm_alg(k, i), -1)
				       : 0;
		w->looked_up += i % 2 ? srv_hsm_key_exists(w->h, key->ckid) == SRV_HSM_OK
				      : srv_hsm_ping(w->h) == SRV_HSM_OK;
	}
	return NULL;
}

static void test_many_threads(void)
{
	pthread_t t[STORM_THREADS];
	storm_worker w[STORM_THREADS];
	int started = 0, verified = 0, looked_up = 0, generated = 0, keys_ok = 1;
	double t0 = now_s();

	for (int k = 0; k < RS_KEY_COUNT; k++)
		keys_ok &= keys[k].ok;
	memset(w, 0, sizeof w);
	for (int i = 0; i < STORM_THREADS; i++) {
		w[i].h = hsm;
		w[i].id = i;
		if (pthread_create(&t[i], NULL, storm_thread, &w[i]) != 0)
			break;
		started++;
	}
	start_gate_open(&storm_gate, started);
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		verified += w[i].verified;
		looked_up += w[i].looked_up;
		generated += w[i].generated;
	}
	ok(started == STORM_THREADS, "storm_%d_threads_share_one_handle_with_a_pool_of_2",
	   STORM_THREADS);
	ok(keys_ok && verified == STORM_THREADS * STORM_ROUNDS,
	   "storm_every_signature_verifies (%d/%d in %.2fs)", verified,
	   STORM_THREADS * STORM_ROUNDS, now_s() - t0);
	ok(looked_up == STORM_THREADS * STORM_ROUNDS,
	   "storm_key_lookups_and_pings_between_signatures_answer (%d/%d)", looked_up,
	   STORM_THREADS * STORM_ROUNDS);
	ok(generated == STORM_GENERATORS,
	   "storm_keys_generated_while_others_sign_are_found (%d/%d)", generated, STORM_GENERATORS);
	for (int i = 0; i < STORM_GENERATORS; i++)
		free(w[i].own.spki);
}

/* Keys generated by several threads at once, on a handle with a pool of
 * GEN_THREADS sessions, while others sign. SoftHSM2's file object store
 * is not safe for objects created (or read) while another thread creates
 * one: without the layer's write lock some generations failed with
 * CKR_GENERAL_ERROR (seen by rsignd dev setting up four signers at once). */
#define GEN_THREADS 4
#define GEN_ROUNDS 10
#define GEN_SIGNERS 2

typedef struct {
	srv_hsm *h;
	int id;
	int made;     /* keys generated and found */
	int verified; /* signatures by a GEN_SIGNERS thread */
} gen_worker;

static start_gate gen_gate = START_GATE_INIT;

static void *gen_thread(void *arg)
{
	gen_worker *w = arg;
	static const rs_key_alg algs[] = {RS_KEY_EC_P521, RS_KEY_EC_P384, RS_KEY_EC_P256};

	start_gate_wait(&gen_gate);
	for (int i = 0; i < GEN_ROUNDS; i++) {
		if (w->id >= GEN_THREADS) {
			w->verified += sign_verify_on(w->h, &keys[RS_KEY_EC_P256], RS_KEY_EC_P256,
						      RS_ALG_ECDSA_SHA256, -1);
			continue;
		}
		test_key k;
		char label[32];
		memset(&k, 0, sizeof k);
		snprintf(label, sizeof label, "parallel-%d-%d", w->id, i);
		w->made += RAND_bytes(k.ckid, SRV_CKID_LEN) == 1 &&
			   srv_hsm_generate(w->h, algs[(w->id + i) % 3], k.ckid, label, &k.spki,
					    &k.spki_len) == SRV_HSM_OK &&
			   srv_hsm_key_exists(w->h, k.ckid) == SRV_HSM_OK;
		free(k.spki);
	}
	return NULL;
}

static void test_parallel_generation(void)
{
	pthread_t t[GEN_THREADS + GEN_SIGNERS];
	gen_worker w[GEN_THREADS + GEN_SIGNERS];
	srv_hsm *h = NULL;
	char err[256] = "";
	int started = 0, made = 0, verified = 0;

	if (srv_hsm_open(FIXTURE_MODULE, FIXTURE_LABEL, FIXTURE_PIN, GEN_THREADS + GEN_SIGNERS, &h,
			 err, sizeof err) != SRV_HSM_OK) {
		ok(0, "parallel_generation_handle_opens: %s", err);
		ok(0, "parallel_generation_signs_meanwhile");
		return;
	}
	memset(w, 0, sizeof w);
	for (int i = 0; i < GEN_THREADS + GEN_SIGNERS; i++) {
		w[i].h = h;
		w[i].id = i;
		if (pthread_create(&t[i], NULL, gen_thread, &w[i]) != 0)
			break;
		started++;
	}
	start_gate_open(&gen_gate, started);
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		made += w[i].made;
		verified += w[i].verified;
	}
	srv_hsm_close(h);
	ok(made == GEN_THREADS * GEN_ROUNDS, "parallel_generation_every_key_made_and_found (%d/%d)",
	   made, GEN_THREADS * GEN_ROUNDS);
	ok(verified == GEN_SIGNERS * GEN_ROUNDS, "parallel_generation_signs_meanwhile (%d/%d)",
	   verified, GEN_SIGNERS * GEN_ROUNDS);
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

/* ---- a broken token ------------------------------------------------------ */

#define RECOVERY_WAIT_S 120.0 /* gives up on a recovery that never comes */

static char tokens_dir[256], tokens_away[256], log_path[256];

/* The layer's log goes to log_path (warnings and errors) while a check
 * counts its lines; NULL sends it back to stderr. */
static void log_to_file(int on)
{
	if (on) {
		unlink(log_path);
		if (rs_log_set_file(log_path) != 0)
			tap_bail("cannot open %s", log_path);
		rs_log_set_level(RS_LOG_WARN);
	} else {
		(void)rs_log_set_file(NULL);
		rs_log_set_level(getenv("RSIGN_TEST_LOG")
					 ? rs_log_level_parse(getenv("RSIGN_TEST_LOG"))
					 : RS_LOG_ERROR);
	}
}

static int log_count(const char *needle)
{
	char line[2048];
	int n = 0;
	FILE *f = fopen(log_path, "r");
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* The log as TAP diagnostics, for a failed count. */
static void log_diag(void)
{
	char line[2048];
	FILE *f = fopen(log_path, "r");
	while (f && fgets(line, sizeof line, f))
		printf("# log: %s", line);
	if (f)
		fclose(f);
}

/* Signs with key k until a signature verifies: the event a recovery
 * brings. The number of tries, or 0 when it never came. */
static int sign_until_verified(int k, rs_sign_alg a)
{
	double t0 = now_s();
	for (int tries = 1; now_s() - t0 < RECOVERY_WAIT_S; tries++) {
		if (sign_verify(k, a, -1))
			return tries;
		usleep(20 * 1000);
	}
	return 0;
}

static srv_hsm_rc sign_rc(int k, rs_sign_alg a)
{
	unsigned char dig[64] = {7}, sig[1024];
	size_t slen = 0;
	return srv_hsm_sign(hsm, keys[k].ckid, a, dig, rs_hash_len(rs_sign_alg_hash(a)), -1, sig,
			    sizeof sig, &slen);
}

/* The token's directory disappears under a running pool (SoftHSM2 then
 * answers CKR_GENERAL_ERROR and finds no object until it is initialised
 * again), and comes back: the same handle recovers by itself, logging one
 * line per change of state however many calls fail meanwhile. */
static void test_token_lost(void)
{
	unsigned long gen0 = srv_hsm_generation(hsm);
	srv_hsm_rc s1, s2, s3, p1, e1;
	int tries, moved, n_down, n_stays, n_up, n_all;

	log_to_file(1);
	moved = rename(tokens_dir, tokens_away) == 0;
	s1 = sign_rc(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256);
	p1 = srv_hsm_ping(hsm);
	s2 = sign_rc(RS_KEY_RSA_2048, RS_ALG_RSA_PKCS1_SHA256);
	e1 = srv_hsm_key_exists(hsm, keys[RS_KEY_EC_P256].ckid);
	s3 = sign_rc(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256);
	ok(moved && s1 == SRV_HSM_UNAVAILABLE && s2 == SRV_HSM_UNAVAILABLE &&
		   s3 == SRV_HSM_UNAVAILABLE,
	   "sign_fails_unavailable_while_the_token_is_gone (rc %d %d %d)", s1, s2, s3);
	ok(moved && p1 == SRV_HSM_UNAVAILABLE && e1 == SRV_HSM_UNAVAILABLE,
	   "ping_and_key_lookup_fail_unavailable_while_the_token_is_gone (rc %d %d)", p1, e1);
	ok(moved && rename(tokens_away, tokens_dir) == 0, "token_directory_restored");
	tries = sign_until_verified(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256);
	ok(tries > 0, "sign_recovers_by_itself_once_the_token_is_back (%d tries)", tries);
	ok(sign_verify(RS_KEY_RSA_3072, RS_ALG_RSA_PSS_SHA384, -1) &&
		   srv_hsm_ping(hsm) == SRV_HSM_OK &&
		   srv_hsm_key_exists(hsm, keys[RS_KEY_EC_P384].ckid) == SRV_HSM_OK,
	   "every_key_signs_and_ping_answers_after_recovery");
	ok(srv_hsm_generation(hsm) == gen0 + 1,
	   "recovery_re_initialised_the_module_once (generation %lu -> %lu)", gen0,
	   srv_hsm_generation(hsm));
	/* down, perhaps one failed attempt (the backoff decides), up again */
	n_down = log_count("re-initialising the PKCS#11 module");
	n_stays = log_count("stays unavailable");
	n_up = log_count("is available again");
	n_all = log_count("hsm: ");
	ok(n_down == 1 && n_stays <= 1 && n_up == 1 && n_all == n_down + n_stays + n_up,
	   "one_log_line_per_state_change_not_per_call (%d calls failed; down %d, attempt failed "
	   "%d, up %d, lines %d)",
	   5 + tries - 1, n_down, n_stays, n_up, n_all);
	if (n_all != n_down + n_stays + n_up || n_down != 1 || n_up != 1 || n_stays > 1)
		log_diag();
	log_to_file(0);
}

/* The reproduction: every descriptor in use while a sign runs
 * (SoftHSM2 cannot open its object files: EMFILE), then free again. */
static void test_descriptors_exhausted(void)
{
	struct rlimit old, low;
	int fds[256], n = 0, tries;
	srv_hsm_rc rc;

	if (getrlimit(RLIMIT_NOFILE, &old) != 0)
		tap_bail("getrlimit: %s", strerror(errno));
	low = old;
	low.rlim_cur = 64 < old.rlim_cur ? 64 : old.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &low) != 0)
		tap_bail("setrlimit: %s", strerror(errno));
	while (n < (int)TAP_COUNT(fds) && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
		n++;
	rc = sign_rc(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256);
	while (n > 0)
		close(fds[--n]);
	if (setrlimit(RLIMIT_NOFILE, &old) != 0)
		tap_bail("setrlimit: %s", strerror(errno));
	ok(rc == SRV_HSM_UNAVAILABLE, "sign_fails_unavailable_without_descriptors (rc %d)", rc);
	tries = sign_until_verified(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256);
	ok(tries > 0 && sign_verify(RS_KEY_RSA_2048, RS_ALG_RSA_PSS_SHA256, -1),
	   "sign_recovers_once_descriptors_are_free (%d tries)", tries);
}

#define REINIT_THREADS 8

static pthread_mutex_t reinit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reinit_cond = PTHREAD_COND_INITIALIZER;
static int reinit_first_failed, reinit_reported;

/* One sign while the token is gone (reported to the main thread, which
 * restores it once every thread has failed), then signs until verified. */
static void *reinit_thread(void *arg)
{
	int k = (long)arg % 2 ? RS_KEY_EC_P256 : RS_KEY_RSA_2048;
	rs_sign_alg a = k == RS_KEY_EC_P256 ? RS_ALG_ECDSA_SHA256 : RS_ALG_RSA_PKCS1_SHA256;
	srv_hsm_rc rc = sign_rc(k, a);

	pthread_mutex_lock(&reinit_lock);
	reinit_first_failed += rc == SRV_HSM_UNAVAILABLE;
	reinit_reported++;
	pthread_cond_broadcast(&reinit_cond);
	pthread_mutex_unlock(&reinit_lock);
	return (void *)(long)sign_until_verified(k, a);
}

/* Many threads sign while the token is gone: every one fails with
 * SRV_HSM_UNAVAILABLE, then (token back) gets a verified signature, and
 * exactly one re-initialisation brought the token back. */
static void test_concurrent_reinit(void)
{
	pthread_t t[REINIT_THREADS];
	unsigned long gen0 = srv_hsm_generation(hsm);
	int done = 0, moved = rename(tokens_dir, tokens_away) == 0;

	for (long i = 0; i < REINIT_THREADS; i++)
		pthread_create(&t[i], NULL, reinit_thread, (void *)i);
	pthread_mutex_lock(&reinit_lock);
	while (reinit_reported < REINIT_THREADS)
		pthread_cond_wait(&reinit_cond, &reinit_lock);
	pthread_mutex_unlock(&reinit_lock);
	if (moved && rename(tokens_away, tokens_dir) != 0)
		tap_bail("cannot put %s back: %s", tokens_dir, strerror(errno));
	for (int i = 0; i < REINIT_THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		done += (long)r > 0;
	}
	ok(moved && reinit_first_failed == REINIT_THREADS,
	   "every_thread_fails_unavailable_while_the_token_is_gone (%d/%d)", reinit_first_failed,
	   REINIT_THREADS);
	ok(done == REINIT_THREADS, "every_thread_signs_after_the_token_recovers (%d/%d)", done,
	   REINIT_THREADS);
	ok(srv_hsm_generation(hsm) == gen0 + 1,
	   "exactly_one_re_initialisation_brought_it_back (generation %lu -> %lu)", gen0,
	   srv_hsm_generation(hsm));
}

/* A key deleted from a token that is otherwise fine: one re-init (the
 * first call that may make one: until then, SRV_HSM_UNAVAILABLE), then
 * SRV_HSM_NOT_FOUND with one log line naming the key, and no re-init loop. */
static void test_key_missing(void)
{
	int k = RS_KEY_EC_P384;
	char id[40];
	const unsigned char *c = keys[k].ckid;
	CK_OBJECT_HANDLE o;
	int destroyed = 0;
	unsigned long gen0, gen1, gen2;
	srv_hsm_rc r1, r2, r3;
	double t0;

	snprintf(id, sizeof id,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", c[0], c[1],
		 c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14],
		 c[15]);
	if (raw_open_rw(1) != 0)
		tap_bail("no raw read-write session on the fixture's token");
	o = raw_find(CKO_PRIVATE_KEY, c);
	destroyed = o != CK_INVALID_HANDLE && raw->C_DestroyObject(raw_s, o) == CKR_OK;
	raw_close();
	log_to_file(1);
	gen0 = srv_hsm_generation(hsm);
	t0 = now_s();
	do /* the backoff of the re-inits before may defer this one */
		r1 = sign_rc(k, RS_ALG_ECDSA_SHA384);
	while (r1 == SRV_HSM_UNAVAILABLE && now_s() - t0 < RECOVERY_WAIT_S && !usleep(20 * 1000));
	gen1 = srv_hsm_generation(hsm);
	r2 = sign_rc(k, RS_ALG_ECDSA_SHA384);
	r3 = srv_hsm_key_exists(hsm, c);
	gen2 = srv_hsm_generation(hsm);
	ok(destroyed && r1 == SRV_HSM_NOT_FOUND && gen1 == gen0 + 1,
	   "a_deleted_key_is_not_found_after_one_re_init (rc %d, generation %lu -> %lu)", r1, gen0,
	   gen1);
	ok(r2 == SRV_HSM_NOT_FOUND && r3 == SRV_HSM_NOT_FOUND && gen2 == gen1,
	   "a_key_known_missing_triggers_no_further_re_init (rc %d %d, generation %lu)", r2, r3,
	   gen2);
	ok(log_count(id) == 1 && log_count("even after re-initialising") == 1,
	   "one_log_line_names_the_missing_key %s (%d)", id, log_count(id));
	ok(sign_verify(RS_KEY_EC_P256, RS_ALG_ECDSA_SHA256, -1) && srv_hsm_ping(hsm) == SRV_HSM_OK,
	   "the_other_keys_still_sign");
	if (r1 != SRV_HSM_NOT_FOUND || log_count(id) != 1)
		log_diag();
	log_to_file(0);
}

int main(void)
{
	double t0 = now_s();
	char err[256] = "";

	plan(10 + (3 * RS_KEY_COUNT + 1) + (sign_checks_total() + 8) + 1 + 3 * RS_KEY_COUNT +
	     2 * RS_KEY_COUNT + 1 + STORM_CHECKS + 2 + 2 + 7 + 2 + 3 + 4 + 1 + 8);
	/* RSIGN_TEST_LOG=debug shows the layer's warnings (session reopens). */
	rs_log_set_level(getenv("RSIGN_TEST_LOG") ? rs_log_level_parse(getenv("RSIGN_TEST_LOG"))
						  : RS_LOG_ERROR);
	if (fixture_softhsm_setup("hsm", err, sizeof err) != 0)
		tap_bail("cannot create the SoftHSM2 fixture: %s", err);
	snprintf(tokens_dir, sizeof tokens_dir, "%s/tokens", fixture_softhsm_dir());
	snprintf(tokens_away, sizeof tokens_away, "%s/tokens.away", fixture_softhsm_dir());
	snprintf(log_path, sizeof log_path, "%s/hsm.log", fixture_softhsm_dir());
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
	test_mac_key();
	test_concurrency();
	test_many_threads();
	test_parallel_generation();
	test_recovery();
	raw_close(); /* from here on, finalizing the pool's module finalizes SoftHSM2 */
	test_token_lost();
	test_descriptors_exhausted();
	test_concurrent_reinit();
	test_key_missing();
	srv_hsm_close(hsm);
	for (int k = 0; k < RS_KEY_COUNT; k++)
		free(keys[k].spki);
	ok(fixture_softhsm_teardown() == 0, "fixture_directory_removed");
	printf("# total %.2fs\n", now_s() - t0);
	return tap_done();
}
