/* How every C_ function of the module begins (mod_session_enter and
 * mod_slot_enter in module/session.c and module/slot_table.c): with valid
 * arguments, each function that takes a session answers
 * CKR_CRYPTOKI_NOT_INITIALIZED before C_Initialize and after C_Finalize and
 * CKR_SESSION_HANDLE_INVALID for a handle it never gave out; each that takes
 * a slot answers CKR_SLOT_ID_INVALID for an unknown slot; and every one of
 * those answers leaves the module's lock free, or the next call would never
 * return. Runs the built module (dlopen) against the fake rsignd. */
#include <stdlib.h>
#include <string.h>

#include "tests/module/modtest.h"
#include "tap.h"

static CK_OBJECT_HANDLE key; /* a private key handle valid on the fake's token */

/* Each session function called with arguments that pass its own checks. */
typedef CK_RV (*sess_call)(CK_SESSION_HANDLE h);

static CK_RV get_session_info(CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO i;

	return p11->C_GetSessionInfo(h, &i);
}

static CK_RV login(CK_SESSION_HANDLE h)
{
	return p11->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "pin", 3);
}

static CK_RV logout(CK_SESSION_HANDLE h)
{
	return p11->C_Logout(h);
}

static CK_RV close_session(CK_SESSION_HANDLE h)
{
	return p11->C_CloseSession(h);
}

static CK_RV get_attribute_value(CK_SESSION_HANDLE h)
{
	CK_ATTRIBUTE a = {CKA_CLASS, NULL, 0};

	return p11->C_GetAttributeValue(h, key, &a, 1);
}

static CK_RV get_object_size(CK_SESSION_HANDLE h)
{
	CK_ULONG n;

	return p11->C_GetObjectSize(h, key, &n);
}

static CK_RV find_objects_init(CK_SESSION_HANDLE h)
{
	return p11->C_FindObjectsInit(h, NULL, 0);
}

static CK_RV find_objects(CK_SESSION_HANDLE h)
{
	CK_OBJECT_HANDLE o[1];
	CK_ULONG n;

	return p11->C_FindObjects(h, o, 1, &n);
}

static CK_RV find_objects_final(CK_SESSION_HANDLE h)
{
	return p11->C_FindObjectsFinal(h);
}

static CK_RV create_object(CK_SESSION_HANDLE h)
{
	CK_OBJECT_HANDLE o;

	return p11->C_CreateObject(h, NULL, 0, &o);
}

static CK_RV copy_object(CK_SESSION_HANDLE h)
{
	CK_OBJECT_HANDLE o;

	return p11->C_CopyObject(h, key, NULL, 0, &o);
}

static CK_RV destroy_object(CK_SESSION_HANDLE h)
{
	return p11->C_DestroyObject(h, key);
}

static CK_RV set_attribute_value(CK_SESSION_HANDLE h)
{
	return p11->C_SetAttributeValue(h, key, NULL, 0);
}

static CK_MECHANISM sha256_rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
static CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
static CK_BYTE data[4] = {1, 2, 3, 4};
static CK_BYTE out[512];

static CK_RV sign_init(CK_SESSION_HANDLE h)
{
	return p11->C_SignInit(h, &sha256_rsa, key);
}

static CK_RV sign(CK_SESSION_HANDLE h)
{
	CK_ULONG n = sizeof(out);

	return p11->C_Sign(h, data, sizeof(data), out, &n);
}

static CK_RV sign_update(CK_SESSION_HANDLE h)
{
	return p11->C_SignUpdate(h, data, sizeof(data));
}

static CK_RV sign_final(CK_SESSION_HANDLE h)
{
	CK_ULONG n = sizeof(out);

	return p11->C_SignFinal(h, out, &n);
}

static CK_RV verify_init(CK_SESSION_HANDLE h)
{
	return p11->C_VerifyInit(h, &sha256_rsa, key);
}

static CK_RV verify(CK_SESSION_HANDLE h)
{
	return p11->C_Verify(h, data, sizeof(data), out, 256);
}

static CK_RV verify_update(CK_SESSION_HANDLE h)
{
	return p11->C_VerifyUpdate(h, data, sizeof(data));
}

static CK_RV verify_final(CK_SESSION_HANDLE h)
{
	return p11->C_VerifyFinal(h, out, 256);
}

static CK_RV digest_init(CK_SESSION_HANDLE h)
{
	return p11->C_DigestInit(h, &sha256);
}

static CK_RV digest(CK_SESSION_HANDLE h)
{
	CK_ULONG n = sizeof(out);

	return p11->C_Digest(h, data, sizeof(data), out, &n);
}

static CK_RV digest_update(CK_SESSION_HANDLE h)
{
	return p11->C_DigestUpdate(h, data, sizeof(data));
}

static CK_RV digest_final(CK_SESSION_HANDLE h)
{
	CK_ULONG n = sizeof(out);

	return p11->C_DigestFinal(h, out, &n);
}

static CK_RV seed_random(CK_SESSION_HANDLE h)
{
	return p11->C_SeedRandom(h, data, sizeof(data));
}

static CK_RV generate_random(CK_SESSION_HANDLE h)
{
	return p11->C_GenerateRandom(h, out, 8);
}

static const struct {
	const char *name;
	sess_call call;
} sess_calls[] = {
	{"C_GetSessionInfo", get_session_info},
	{"C_Login", login},
	{"C_Logout", logout},
	{"C_CloseSession", close_session},
	{"C_GetAttributeValue", get_attribute_value},
	{"C_GetObjectSize", get_object_size},
	{"C_FindObjectsInit", find_objects_init},
	{"C_FindObjects", find_objects},
	{"C_FindObjectsFinal", find_objects_final},
	{"C_CreateObject", create_object},
	{"C_CopyObject", copy_object},
	{"C_DestroyObject", destroy_object},
	{"C_SetAttributeValue", set_attribute_value},
	{"C_SignInit", sign_init},
	{"C_Sign", sign},
	{"C_SignUpdate", sign_update},
	{"C_SignFinal", sign_final},
	{"C_VerifyInit", verify_init},
	{"C_Verify", verify},
	{"C_VerifyUpdate", verify_update},
	{"C_VerifyFinal", verify_final},
	{"C_DigestInit", digest_init},
	{"C_Digest", digest},
	{"C_DigestUpdate", digest_update},
	{"C_DigestFinal", digest_final},
	{"C_SeedRandom", seed_random},
	{"C_GenerateRandom", generate_random},
};

#define N_SESS (sizeof(sess_calls) / sizeof(sess_calls[0]))

/* Each slot function called with arguments that pass its own checks. */
typedef CK_RV (*slot_call)(CK_SLOT_ID id);

static CK_RV get_slot_info(CK_SLOT_ID id)
{
	CK_SLOT_INFO i;

	return p11->C_GetSlotInfo(id, &i);
}

static CK_RV get_token_info(CK_SLOT_ID id)
{
	CK_TOKEN_INFO i;

	return p11->C_GetTokenInfo(id, &i);
}

static CK_RV get_mechanism_list(CK_SLOT_ID id)
{
	CK_ULONG n;

	return p11->C_GetMechanismList(id, NULL, &n);
}

static CK_RV get_mechanism_info(CK_SLOT_ID id)
{
	CK_MECHANISM_INFO i;

	return p11->C_GetMechanismInfo(id, CKM_SHA256_RSA_PKCS, &i);
}

static CK_RV open_session(CK_SLOT_ID id)
{
	CK_SESSION_HANDLE h;

	return p11->C_OpenSession(id, CKF_SERIAL_SESSION, NULL, NULL, &h);
}

static const struct {
	const char *name;
	slot_call call;
} slot_calls[] = {
	{"C_GetSlotInfo", get_slot_info},
	{"C_GetTokenInfo", get_token_info},
	{"C_GetMechanismList", get_mechanism_list},
	{"C_GetMechanismInfo", get_mechanism_info},
	{"C_OpenSession", open_session},
};

#define N_SLOT (sizeof(slot_calls) / sizeof(slot_calls[0]))

/* Every session function on h answers want; names the ones that do not. */
static int sessions_answer(CK_SESSION_HANDLE h, CK_RV want)
{
	size_t i;
	int good = 1;

	for (i = 0; i < N_SESS; i++) {
		CK_RV rv = sess_calls[i].call(h);

		if (rv != want) {
			printf("# %s: 0x%lx, want 0x%lx\n", sess_calls[i].name, (unsigned long)rv,
			       (unsigned long)want);
			good = 0;
		}
	}
	return good;
}

static int slots_answer(CK_SLOT_ID id, CK_RV want)
{
	size_t i;
	int good = 1;

	for (i = 0; i < N_SLOT; i++) {
		CK_RV rv = slot_calls[i].call(id);

		if (rv != want) {
			printf("# %s: 0x%lx, want 0x%lx\n", slot_calls[i].name, (unsigned long)rv,
			       (unsigned long)want);
			good = 0;
		}
	}
	return good;
}

int main(void)
{
	CK_SESSION_HANDLE s;
	fake_server *f;
	const char *conf;
	CK_INFO info;

	plan(13);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	mt_load();
	conf = mt_conf(f, NULL, 0600);

	ok(sessions_answer(1, CKR_CRYPTOKI_NOT_INITIALIZED),
	   "every_session_function_before_initialize_is_not_initialized");
	ok(slots_answer(1, CKR_CRYPTOKI_NOT_INITIALIZED),
	   "every_slot_function_before_initialize_is_not_initialized");

	ok(mt_init(conf) == CKR_OK, "initialize");
	s = mt_open(FAKE_RSA);
	key = mt_find(s, CKO_PRIVATE_KEY);
	ok(s != CK_INVALID_HANDLE && key != CK_INVALID_HANDLE, "session_and_key_for_the_checks");
	ok(sessions_answer(s + 1000, CKR_SESSION_HANDLE_INVALID),
	   "every_session_function_with_an_unknown_handle_is_handle_invalid");
	ok(slots_answer(0x7fffffffUL, CKR_SLOT_ID_INVALID),
	   "every_slot_function_with_an_unknown_slot_is_slot_id_invalid");
	ok(create_object(s) == CKR_TOKEN_WRITE_PROTECTED &&
		   copy_object(s) == CKR_TOKEN_WRITE_PROTECTED &&
		   destroy_object(s) == CKR_TOKEN_WRITE_PROTECTED &&
		   set_attribute_value(s) == CKR_TOKEN_WRITE_PROTECTED,
	   "object_writes_on_a_valid_session_are_write_protected");
	ok(seed_random(s) == CKR_RANDOM_NO_RNG && generate_random(s) == CKR_RANDOM_NO_RNG,
	   "random_on_a_valid_session_is_no_rng");
	ok(close_session(s) == CKR_OK && get_session_info(s) == CKR_SESSION_HANDLE_INVALID,
	   "closed_session_is_handle_invalid");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize");

	ok(sessions_answer(s, CKR_CRYPTOKI_NOT_INITIALIZED),
	   "every_session_function_after_finalize_is_not_initialized");
	ok(slots_answer(1, CKR_CRYPTOKI_NOT_INITIALIZED),
	   "every_slot_function_after_finalize_is_not_initialized");
	/* Reaching here means no answer above kept the lock. */
	ok(mt_init(conf) == CKR_OK && p11->C_GetInfo(&info) == CKR_OK &&
		   p11->C_Finalize(NULL) == CKR_OK,
	   "module_still_answers_after_every_refusal");
	mt_unload();
	fake_free(f);
	return tap_done();
}
