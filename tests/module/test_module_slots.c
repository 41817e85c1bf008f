/* Slots, tokens and mechanisms: the signer list fetched lazily and paged,
 * slots sorted by name with IDs derived from the signer id (stable across
 * initialisations), resolution by name without listing when `signers` is
 * configured, refresh after refresh_interval, token and slot info,
 * mechanism lists and info per key type, sessions. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/sha.h>

#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;

static CK_SLOT_ID expected_id(const char *signer_id)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)signer_id, strlen(signer_id), md);
	return ((CK_SLOT_ID)md[0] << 24 | (CK_SLOT_ID)md[1] << 16 | (CK_SLOT_ID)md[2] << 8 |
		md[3]) &
	       0x7fffffffUL;
}

static void label_of(CK_SLOT_ID id, char out[33])
{
	CK_TOKEN_INFO ti;

	memset(out, 0, 33);
	if (p11->C_GetTokenInfo(id, &ti) == CKR_OK)
		memcpy(out, ti.label, 32);
}

static void test_listing(const char *conf)
{
	static CK_SLOT_ID ids[400], again[400];
	CK_ULONG n = 0, n2, one = 1, i;
	char prev[33], cur[33];
	int sorted = 1;

	ok(mt_init(conf) == CKR_OK && fake_count(f, CNT_LIST) == 0,
	   "signer_list_not_fetched_before_first_slot_list");
	ok(p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 152,
	   "slot_list_pages_through_all_signers");
	ok(fake_count(f, CNT_LIST) == 2, "signer_list_fetched_in_pages_of_100");
	n2 = n;
	ok(p11->C_GetSlotList(CK_TRUE, ids, &n2) == CKR_OK && n2 == n &&
		   fake_count(f, CNT_LIST) == 2,
	   "second_slot_list_call_uses_the_cache");
	ok(p11->C_GetSlotList(CK_TRUE, ids, &one) == CKR_BUFFER_TOO_SMALL && one == n,
	   "slot_list_short_buffer_is_buffer_too_small");
	label_of(ids[0], prev);
	for (i = 1; i < n; i++) {
		label_of(ids[i], cur);
		sorted = sorted && strcmp(prev, cur) < 0;
		memcpy(prev, cur, sizeof(cur));
	}
	ok(sorted, "slots_sorted_by_signer_name");
	ok(mt_slot(FAKE_RSA) == expected_id(fake_signer_id(f, FAKE_RSA)) &&
		   mt_slot(FAKE_EC) == expected_id(fake_signer_id(f, FAKE_EC)),
	   "slot_id_is_31_bits_of_sha256_of_the_signer_id");
	ok(p11->C_Finalize(NULL) == CKR_OK && mt_init(conf) == CKR_OK, "reinitialize");
	{
		/* Java's SunPKCS11 `slot =` opens a slot by its (stable) ID
		 * without listing first. */
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;

		ok(p11->C_GetSlotInfo(expected_id(fake_signer_id(f, FAKE_EC)), &si) == CKR_OK &&
			   (si.flags & CKF_TOKEN_PRESENT) &&
			   p11->C_GetTokenInfo(expected_id(fake_signer_id(f, FAKE_EC)), &ti) ==
				   CKR_OK &&
			   memcmp(ti.label, "ec-signer ", 10) == 0,
		   "slot_id_usable_before_the_first_slot_list");
	}
	n2 = 400;
	ok(p11->C_GetSlotList(CK_TRUE, again, &n2) == CKR_OK && n2 == n &&
		   memcmp(ids, again, n * sizeof(ids[0])) == 0,
	   "slot_ids_stable_across_initializations");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_listing");
}

static void test_infos(const char *conf)
{
	CK_SLOT_ID rsa, ec;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_TYPE mechs[32];
	CK_MECHANISM_INFO mi;
	CK_ULONG n;
	CK_SESSION_HANDLE s, s2;
	CK_SESSION_INFO sinfo;
	const char *id;
	char serial[17];
	size_t i, o = 0;

	ok(mt_init(conf) == CKR_OK, "initialize_for_infos");
	rsa = mt_slot(FAKE_RSA);
	ec = mt_slot(FAKE_EC);
	ok(p11->C_GetSlotInfo(rsa, &si) == CKR_OK && (si.flags & CKF_TOKEN_PRESENT) &&
		   memcmp(si.slotDescription, "rsign signer rsa-signer ", 24) == 0 &&
		   memcmp(si.manufacturerID, "rsign ", 6) == 0,
	   "slot_info_names_the_signer");
	id = fake_signer_id(f, FAKE_RSA);
	for (i = 0; id[i] && o < 16; i++)
		if (id[i] != '-')
			serial[o++] = id[i];
	ok(p11->C_GetTokenInfo(rsa, &ti) == CKR_OK && memcmp(ti.label, "rsa-signer ", 11) == 0 &&
		   memcmp(ti.model, "RSA_2048 ", 9) == 0 &&
		   memcmp(ti.serialNumber, serial, 16) == 0 &&
		   memcmp(ti.manufacturerID, "rsign ", 6) == 0,
	   "token_info_label_model_serial_manufacturer");
	ok(ti.flags == (CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED | CKF_USER_PIN_INITIALIZED),
	   "token_flags_without_login_required_when_credentials_are_configured");
	ok(p11->C_GetSlotInfo(12345, &si) == CKR_SLOT_ID_INVALID &&
		   p11->C_GetTokenInfo(12345, &ti) == CKR_SLOT_ID_INVALID,
	   "unknown_slot_is_slot_id_invalid");

	n = 32;
	ok(p11->C_GetMechanismList(rsa, mechs, &n) == CKR_OK && n == 8 + 3,
	   "rsa_token_lists_eight_signing_and_three_digest_mechanisms");
	n = 32;
	ok(p11->C_GetMechanismList(ec, mechs, &n) == CKR_OK && n == 4 + 3 &&
		   mechs[4] == CKM_SHA256 && mechs[5] == CKM_SHA384 && mechs[6] == CKM_SHA512,
	   "ec_token_lists_four_signing_and_three_digest_mechanisms");
	n = 1;
	ok(p11->C_GetMechanismList(ec, mechs, &n) == CKR_BUFFER_TOO_SMALL && n == 4 + 3,
	   "mechanism_list_short_buffer");
	ok(p11->C_GetMechanismInfo(ec, CKM_SHA384, &mi) == CKR_OK && mi.flags == CKF_DIGEST &&
		   p11->C_GetMechanismInfo(rsa, CKM_SHA512, &mi) == CKR_OK &&
		   p11->C_GetMechanismInfo(rsa, CKM_SHA_1, &mi) == CKR_MECHANISM_INVALID,
	   "digest_mechanism_info_is_digest_only");
	ok(p11->C_GetMechanismInfo(rsa, CKM_SHA256_RSA_PKCS_PSS, &mi) == CKR_OK &&
		   mi.ulMinKeySize == 2048 && mi.ulMaxKeySize == 2048 &&
		   mi.flags == (CKF_HW | CKF_SIGN | CKF_VERIFY),
	   "rsa_mechanism_info_in_bits_sign_hw");
	ok(p11->C_GetMechanismInfo(ec, CKM_ECDSA, &mi) == CKR_OK && mi.ulMinKeySize == 256 &&
		   (mi.flags & (CKF_HW | CKF_SIGN | CKF_EC_NAMEDCURVE)) ==
			   (CKF_HW | CKF_SIGN | CKF_EC_NAMEDCURVE),
	   "ec_mechanism_info_in_bits_sign_hw");
	ok(p11->C_GetMechanismInfo(rsa, CKM_ECDSA, &mi) == CKR_MECHANISM_INVALID &&
		   p11->C_GetMechanismInfo(ec, CKM_RSA_PKCS, &mi) == CKR_MECHANISM_INVALID &&
		   p11->C_GetMechanismInfo(rsa, CKM_SHA1_RSA_PKCS, &mi) == CKR_MECHANISM_INVALID,
	   "mechanisms_that_do_not_fit_the_key_are_invalid");
	ok(p11->C_WaitForSlotEvent(0, &rsa, NULL) == CKR_FUNCTION_NOT_SUPPORTED,
	   "wait_for_slot_event_is_not_supported");

	ok(p11->C_OpenSession(rsa, 0, NULL, NULL, &s) == CKR_SESSION_PARALLEL_NOT_SUPPORTED,
	   "session_without_serial_flag_refused");
	ok(p11->C_OpenSession(rsa, CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK &&
		   p11->C_OpenSession(rsa, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2) ==
			   CKR_OK,
	   "read_only_and_read_write_sessions_open");
	ok(p11->C_GetTokenInfo(rsa, &ti) == CKR_OK && ti.ulSessionCount == 2 &&
		   ti.ulRwSessionCount == 1,
	   "token_info_counts_sessions");
	ok(p11->C_GetSessionInfo(s, &sinfo) == CKR_OK && sinfo.slotID == rsa &&
		   sinfo.state == CKS_RO_PUBLIC_SESSION,
	   "session_info_read_only_public");
	{
		/* Local SHA-2 digests (SunPKCS11 needs them listed for RSASSA-PSS). */
		static const unsigned char abc256[32] = {
			0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
			0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
			0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
		CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0}, sha1 = {CKM_SHA_1, NULL, 0};
		unsigned char out[64], out2[64];
		CK_ULONG len = 0, len2 = sizeof(out2);

		ok(p11->C_DigestInit(s, &sha256) == CKR_OK &&
			   p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, NULL, &len) == CKR_OK &&
			   len == 32 && (len = 1) &&
			   p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len) ==
				   CKR_BUFFER_TOO_SMALL &&
			   len == 32 &&
			   p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len) == CKR_OK &&
			   memcmp(out, abc256, 32) == 0 &&
			   p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len) ==
				   CKR_OPERATION_NOT_INITIALIZED,
		   "digest_sha256_single_part_with_length_query");
		ok(p11->C_DigestInit(s, &sha256) == CKR_OK &&
			   p11->C_DigestInit(s, &sha256) == CKR_OPERATION_ACTIVE &&
			   p11->C_DigestUpdate(s, (CK_BYTE_PTR) "a", 1) == CKR_OK &&
			   p11->C_DigestUpdate(s, (CK_BYTE_PTR) "bc", 2) == CKR_OK &&
			   p11->C_DigestFinal(s, out2, &len2) == CKR_OK && len2 == 32 &&
			   memcmp(out2, abc256, 32) == 0,
		   "digest_sha256_multi_part");
		ok(p11->C_DigestInit(s, &sha1) == CKR_MECHANISM_INVALID &&
			   p11->C_DigestInit(s2, &sha256) == CKR_OK,
		   "digest_other_than_sha2_is_mechanism_invalid_open_digest_freed_on_close");
		ok(p11->C_GenerateRandom(s, out, 8) == CKR_RANDOM_NO_RNG &&
			   p11->C_SeedRandom(s, out, 8) == CKR_RANDOM_NO_RNG &&
			   p11->C_GenerateRandom(999999, out, 8) == CKR_SESSION_HANDLE_INVALID,
		   "no_rng_on_a_signing_token");
	}
	ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "any", 3) == CKR_OK &&
		   p11->C_GetSessionInfo(s2, &sinfo) == CKR_OK &&
		   sinfo.state == CKS_RW_USER_FUNCTIONS,
	   "login_applies_to_every_session_of_the_token");
	ok(p11->C_CloseAllSessions(rsa) == CKR_OK &&
		   p11->C_GetSessionInfo(s, &sinfo) == CKR_SESSION_HANDLE_INVALID,
	   "close_all_sessions_closes_them");
	ok(p11->C_CloseSession(s2) == CKR_SESSION_HANDLE_INVALID, "closed_session_is_invalid");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_infos");
}

static void test_by_name(void)
{
	CK_ULONG n = 0;

	fake_reset_counts(f);
	ok(mt_init(mt_conf(f, "signers = rsa-signer, no-such-signer\n", 0600)) == CKR_OK,
	   "initialize_with_signers_list");
	ok(p11->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 1,
	   "only_configured_signers_that_exist_are_slots");
	ok(fake_count(f, CNT_LIST) == 0 && fake_count(f, CNT_GET_SIGNER) == 2,
	   "configured_signers_resolved_by_name_without_listing");
	ok(mt_slot(FAKE_RSA) == expected_id(fake_signer_id(f, FAKE_RSA)),
	   "slot_id_by_name_equals_slot_id_by_listing");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_by_name");
}

static void test_refresh(void)
{
	CK_SLOT_ID rsa_before, id, ids[400];
	CK_ULONG n = 0, n_all = 0, i;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	int found = 0;

	ok(mt_init(mt_conf(f, "refresh_interval = 1\n", 0600)) == CKR_OK,
	   "initialize_with_refresh_interval");
	p11->C_GetSlotList(CK_TRUE, NULL, &n);
	rsa_before = mt_slot(FAKE_RSA);
	fake_add_signer(f, "new-signer", RS_KEY_EC_P256);
	ok(mt_slot("new-signer") == (CK_SLOT_ID)-1, "new_signer_not_seen_before_the_interval");
	usleep(1100 * 1000);
	id = mt_slot("new-signer");
	ok(id == expected_id(fake_signer_id(f, "new-signer")), "new_signer_appears_after_refresh");
	ok(mt_slot(FAKE_RSA) == rsa_before, "known_slots_keep_their_ids_across_refresh");

	fake_set_role(f, "new-signer", FAKE_ROLE_AUDITOR);
	usleep(1100 * 1000);
	n = 400;
	p11->C_GetSlotList(CK_TRUE, ids, &n);
	for (i = 0; i < n; i++)
		found |= ids[i] == id;
	n_all = 400;
	p11->C_GetSlotList(CK_FALSE, ids, &n_all);
	ok(!found && n_all == n + 1, "signer_gone_leaves_a_slot_without_token");
	ok(p11->C_GetTokenInfo(id, &ti) == CKR_TOKEN_NOT_PRESENT &&
		   p11->C_OpenSession(id, CKF_SERIAL_SESSION, NULL, NULL, &s) ==
			   CKR_TOKEN_NOT_PRESENT,
	   "slot_without_token_is_token_not_present");
	fake_set_role(f, "new-signer", FAKE_ROLE_OPERATOR);
	usleep(1100 * 1000);
	ok(mt_slot("new-signer") == id, "returning_signer_gets_its_slot_back");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_refresh");
}

/* Eight threads asking for the very first slot list at once all get the
 * full list: the ones that come second wait for the fetch in flight. */
static pthread_barrier_t first_barrier;

static void *first_list(void *arg)
{
	CK_ULONG *n = arg;
	pthread_barrier_wait(&first_barrier);
	if (p11->C_GetSlotList(CK_TRUE, NULL, n) != CKR_OK)
		*n = 0;
	return NULL;
}

static void test_concurrent_first_list(const char *conf)
{
	pthread_t t[8];
	CK_ULONG n[8] = {0}, want = 0;
	int same = 1;

	ok(mt_init(conf) == CKR_OK, "initialize_for_concurrent_first_list");
	pthread_barrier_init(&first_barrier, NULL, 8);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, first_list, &n[i]);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&first_barrier);
	p11->C_GetSlotList(CK_TRUE, NULL, &want);
	for (int i = 0; i < 8; i++)
		same &= n[i] == want;
	ok(want > 2 && same, "concurrent_first_slot_lists_all_see_every_slot");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_concurrent_first_list");
}

int main(void)
{
	const char *conf;

	plan(11 + 25 + 5 + 8 + 3);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(150);
	mt_load();
	conf = strdup(mt_conf(f, NULL, 0600));
	test_listing(conf);
	test_infos(conf);
	test_by_name();
	test_refresh();
	test_concurrent_first_list(conf);
	mt_unload();
	fake_free(f);
	free((void *)conf);
	return tap_done();
}
