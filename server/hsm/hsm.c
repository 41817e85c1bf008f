/* The HSM layer: loading the PKCS#11 module, initialising a token, opening
 * and closing the handle, the key handle cache and signing. The session pool
 * and recovery from a broken token live in hsm_pool.c, key generation in
 * hsm_keygen.c. No lock is ever held across a PKCS#11 call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "rsign/ckr.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/hsm/hsm_int.h"

#define HSM_SIG_MAX 1024 /* raw signature scratch: RSA-8192 or any EC curve */

/* ---- the one CK_RV -> srv_hsm_rc table (names: common/ckr.c) ---------- */

static const struct {
	CK_RV rv;
	srv_hsm_rc rc;
} rv_table[] = {
	{CKR_OK, SRV_HSM_OK},
	{CKR_HOST_MEMORY, SRV_HSM_FAILED},
	{CKR_SLOT_ID_INVALID, SRV_HSM_UNAVAILABLE},
	{CKR_GENERAL_ERROR, SRV_HSM_UNAVAILABLE}, /* a token fault: hsm_pool.c recovers */
	{CKR_FUNCTION_FAILED, SRV_HSM_FAILED},
	{CKR_ARGUMENTS_BAD, SRV_HSM_FAILED},
	{CKR_ATTRIBUTE_SENSITIVE, SRV_HSM_FAILED},
	{CKR_ATTRIBUTE_TYPE_INVALID, SRV_HSM_FAILED},
	{CKR_ATTRIBUTE_VALUE_INVALID, SRV_HSM_FAILED},
	{CKR_DATA_INVALID, SRV_HSM_INVALID},
	{CKR_DATA_LEN_RANGE, SRV_HSM_INVALID},
	{CKR_DEVICE_ERROR, SRV_HSM_UNAVAILABLE},
	{CKR_DEVICE_MEMORY, SRV_HSM_UNAVAILABLE},
	{CKR_DEVICE_REMOVED, SRV_HSM_UNAVAILABLE},
	{CKR_FUNCTION_NOT_SUPPORTED, SRV_HSM_FAILED},
	{CKR_KEY_HANDLE_INVALID, SRV_HSM_FAILED},
	{CKR_KEY_SIZE_RANGE, SRV_HSM_INVALID},
	{CKR_KEY_TYPE_INCONSISTENT, SRV_HSM_INVALID},
	{CKR_KEY_FUNCTION_NOT_PERMITTED, SRV_HSM_FAILED},
	{CKR_MECHANISM_INVALID, SRV_HSM_INVALID},
	{CKR_MECHANISM_PARAM_INVALID, SRV_HSM_INVALID},
	{CKR_OBJECT_HANDLE_INVALID, SRV_HSM_FAILED},
	{CKR_OPERATION_ACTIVE, SRV_HSM_UNAVAILABLE},
	{CKR_OPERATION_NOT_INITIALIZED, SRV_HSM_FAILED},
	{CKR_PIN_INCORRECT, SRV_HSM_UNAVAILABLE},
	{CKR_PIN_INVALID, SRV_HSM_INVALID},
	{CKR_PIN_LEN_RANGE, SRV_HSM_INVALID},
	{CKR_PIN_LOCKED, SRV_HSM_UNAVAILABLE},
	{CKR_SESSION_CLOSED, SRV_HSM_UNAVAILABLE},
	{CKR_SESSION_COUNT, SRV_HSM_UNAVAILABLE},
	{CKR_SESSION_HANDLE_INVALID, SRV_HSM_UNAVAILABLE},
	{CKR_SESSION_READ_ONLY, SRV_HSM_FAILED},
	{CKR_TEMPLATE_INCOMPLETE, SRV_HSM_FAILED},
	{CKR_TEMPLATE_INCONSISTENT, SRV_HSM_FAILED},
	{CKR_TOKEN_NOT_PRESENT, SRV_HSM_UNAVAILABLE},
	{CKR_TOKEN_NOT_RECOGNIZED, SRV_HSM_UNAVAILABLE},
	{CKR_USER_ALREADY_LOGGED_IN, SRV_HSM_FAILED},
	{CKR_USER_NOT_LOGGED_IN, SRV_HSM_UNAVAILABLE},
	{CKR_USER_PIN_NOT_INITIALIZED, SRV_HSM_UNAVAILABLE},
	{CKR_USER_TYPE_INVALID, SRV_HSM_FAILED},
	{CKR_BUFFER_TOO_SMALL, SRV_HSM_FAILED},
	{CKR_CRYPTOKI_NOT_INITIALIZED, SRV_HSM_UNAVAILABLE},
	{HSM_RV_NOT_FOUND, SRV_HSM_NOT_FOUND},
	{HSM_RV_INVALID, SRV_HSM_INVALID},
	{HSM_RV_FAILED, SRV_HSM_FAILED},
	{HSM_RV_UNAVAILABLE, SRV_HSM_UNAVAILABLE},
	{HSM_RV_DOWN, SRV_HSM_UNAVAILABLE},
};

/* Our own outcomes by what they mean; the token's by their CKR_ name. */
const char *hsm_rv_name(CK_RV rv)
{
	switch (rv) {
	case HSM_RV_NOT_FOUND:
		return "no such key";
	case HSM_RV_INVALID:
		return "refused";
	case HSM_RV_FAILED:
		return "failed";
	case HSM_RV_UNAVAILABLE:
		return "unavailable";
	case HSM_RV_DOWN:
		return "the token is unavailable";
	default:
		return rs_ckr_name(rv);
	}
}

srv_hsm_rc hsm_rc_from_rv(CK_RV rv)
{
	for (size_t i = 0; i < sizeof rv_table / sizeof rv_table[0]; i++)
		if (rv_table[i].rv == rv)
			return rv_table[i].rc;
	return SRV_HSM_FAILED;
}

void hsm_log_rv(const char *what, const char *fn, CK_RV rv)
{
	if (rv == HSM_RV_NOT_FOUND)
		rs_info("hsm: %s: no private key with that CKA_ID", what);
	else if (rv == HSM_RV_INVALID) /* the caller's arguments, not a fault */
		rs_warn("hsm: %s: %s", what, fn);
	else if (rv == HSM_RV_FAILED || rv == HSM_RV_UNAVAILABLE || rv == HSM_RV_DOWN)
		rs_err("hsm: %s: %s", what, fn);
	else
		rs_err("hsm: %s: %s failed: %s (0x%08lx)", what, fn, hsm_rv_name(rv),
		       (unsigned long)rv);
}

/* ---- module and slots ------------------------------------------------- */

CK_FUNCTION_LIST *hsm_module_load(const char *path, char *err, size_t errlen)
{
	/* err says what failed; the caller logs it (a re-init only once) */
	CK_FUNCTION_LIST *mod = p11_kit_module_load(path, 0);
	if (!mod) {
		const char *m = p11_kit_message();
		rs_errf(err, errlen, "cannot load the PKCS#11 module %s: %s", path,
			m ? m : "unknown error");
		return NULL;
	}
	CK_RV rv = p11_kit_module_initialize(mod);
	if (rv != CKR_OK) {
		rs_errf(err, errlen,
			"the PKCS#11 module %s failed to initialise (C_Initialize: %s)", path,
			hsm_rv_name(rv));
		p11_kit_module_release(mod);
		return NULL;
	}
	return mod;
}

/* hsm_module_load for set-up: a failure is logged and returned in err. */
static CK_FUNCTION_LIST *module_load_logged(const char *path, char *err, size_t errlen)
{
	char why[512] = "";
	CK_FUNCTION_LIST *mod = hsm_module_load(path, why, sizeof why);
	if (!mod) {
		rs_err("hsm: %s", why);
		rs_errf(err, errlen, "%s", why);
	}
	return mod;
}

void hsm_module_unload(CK_FUNCTION_LIST *mod)
{
	if (!mod)
		return;
	CK_RV rv = p11_kit_module_finalize(mod);
	if (rv != CKR_OK)
		rs_warn("hsm: C_Finalize failed: %s (0x%08lx)", hsm_rv_name(rv), (unsigned long)rv);
	p11_kit_module_release(mod);
}

static void label_pad(const char *label, unsigned char out[32])
{
	size_t n = strlen(label);
	memset(out, ' ', 32);
	memcpy(out, label, n > 32 ? 32 : n);
}

/* Visits every slot with a token present. */
CK_RV hsm_slot_find(CK_FUNCTION_LIST *mod, const char *label, CK_SLOT_ID *slot, int *found,
		    const char **fn)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_RV rv;
	unsigned char want[32];

	*found = 0;
	if (label)
		label_pad(label, want);
	*fn = "C_GetSlotList";
	rv = mod->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK || n == 0)
		return rv;
	slots = calloc(n, sizeof *slots);
	if (!slots)
		return CKR_HOST_MEMORY;
	rv = mod->C_GetSlotList(CK_TRUE, slots, &n);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n && !*found; i++) {
		CK_TOKEN_INFO ti;
		CK_RV r = mod->C_GetTokenInfo(slots[i], &ti);
		if (r != CKR_OK)
			continue; /* a broken slot must not hide the others */
		if (label ? (ti.flags & CKF_TOKEN_INITIALIZED) && !memcmp(ti.label, want, 32)
			  : !(ti.flags & CKF_TOKEN_INITIALIZED)) {
			*slot = slots[i];
			*found = 1;
		}
	}
	free(slots);
	return rv;
}

static int label_ok(const char *label)
{
	return label && *label && strlen(label) <= 32;
}

srv_hsm_rc srv_hsm_init_token(const char *module_path, const char *label, const char *so_pin,
			      const char *user_pin, char *err, size_t errlen)
{
	CK_FUNCTION_LIST *mod;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_SLOT_ID slot = 0;
	unsigned char lab[32];
	const char *fn = "";
	int found = 0, so_in = 0;
	CK_RV rv;

	if (!module_path || !label_ok(label) || !so_pin || !*so_pin || !user_pin || !*user_pin) {
		rs_errf(err, errlen,
			"module, token label (1-32 bytes), SO PIN and user PIN are required");
		return SRV_HSM_INVALID;
	}
	mod = module_load_logged(module_path, err, errlen);
	if (!mod)
		return SRV_HSM_UNAVAILABLE;

	rv = hsm_slot_find(mod, label, &slot, &found, &fn);
	if (rv != CKR_OK)
		goto out;
	if (found) {
		rs_info("hsm: a token labelled \"%s\" already exists; leaving it as it is", label);
		goto out;
	}
	rv = hsm_slot_find(mod, NULL, &slot, &found, &fn);
	if (rv != CKR_OK)
		goto out;
	if (!found) {
		fn = "no slot holds an uninitialised token";
		rv = HSM_RV_UNAVAILABLE;
		goto out;
	}
	label_pad(label, lab);
	fn = "C_InitToken";
	rv = mod->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), lab);
	if (rv != CKR_OK)
		goto out;
	/* SoftHSM2 gives an initialised token a new slot ID: look it up again. */
	rv = hsm_slot_find(mod, label, &slot, &found, &fn);
	if (rv == CKR_OK && !found) {
		fn = "finding the token just initialised";
		rv = HSM_RV_FAILED;
	}
	if (rv != CKR_OK)
		goto out;
	fn = "C_OpenSession";
	rv = mod->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		goto out;
	fn = "C_Login(CKU_SO)";
	rv = mod->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
	if (rv != CKR_OK)
		goto out;
	so_in = 1;
	fn = "C_InitPIN";
	rv = mod->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
	if (rv == CKR_OK)
		rs_info("hsm: initialised token \"%s\"", label);
out:
	if (so_in)
		(void)mod->C_Logout(s);
	if (s != CK_INVALID_HANDLE)
		(void)mod->C_CloseSession(s);
	if (rv != CKR_OK) {
		hsm_log_rv("init token", fn, rv);
		if (rv >= CKR_VENDOR_DEFINED)
			rs_errf(err, errlen, "%s", fn);
		else
			rs_errf(err, errlen, "%s failed: %s", fn, hsm_rv_name(rv));
	}
	hsm_module_unload(mod);
	return hsm_rc_from_rv(rv);
}

/* ---- opening and closing ------------------------------------------------ */

srv_hsm_rc srv_hsm_open(const char *module_path, const char *token_label, const char *pin,
			int pool_size, srv_hsm **out, char *err, size_t errlen)
{
	srv_hsm *h;
	const char *fn = "";
	int found = 0;
	CK_RV rv;

	if (!out)
		return SRV_HSM_FAILED;
	*out = NULL;
	if (!module_path || !label_ok(token_label) || !pin || !*pin || pool_size < 1 ||
	    pool_size > HSM_POOL_MAX) {
		rs_errf(err, errlen,
			"module, token label (1-32 bytes), PIN and a pool size of 1-%d "
			"are required",
			HSM_POOL_MAX);
		return SRV_HSM_INVALID;
	}
	h = calloc(1, sizeof *h);
	if (!h)
		return SRV_HSM_FAILED;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	pthread_mutex_init(&h->cache_lock, NULL);
	h->pin = strdup(pin);
	h->path = strdup(module_path);
	h->label = strdup(token_label);
	h->sess = calloc((size_t)pool_size, sizeof *h->sess);
	h->cache = calloc(HSM_CACHE_SIZE, sizeof *h->cache);
	h->missing = calloc(HSM_MISSING_SIZE, sizeof *h->missing);
	h->backoff = HSM_BACKOFF_MIN;
	if (!h->pin || !h->path || !h->label || !h->sess || !h->cache || !h->missing) {
		srv_hsm_close(h);
		return SRV_HSM_FAILED;
	}
	h->nsess = pool_size;
	for (int i = 0; i < h->nsess; i++)
		h->sess[i].h = CK_INVALID_HANDLE;
	h->mod = module_load_logged(module_path, err, errlen);
	if (!h->mod) {
		srv_hsm_close(h);
		return SRV_HSM_UNAVAILABLE;
	}
	rv = hsm_slot_find(h->mod, token_label, &h->slot, &found, &fn);
	if (rv == CKR_OK && !found) {
		rs_err("hsm: no token labelled \"%s\" in %s", token_label, module_path);
		rs_errf(err, errlen, "no token labelled \"%s\" in %s", token_label, module_path);
		srv_hsm_close(h);
		return SRV_HSM_UNAVAILABLE;
	}
	/* Open every session now so a wrong PIN stops the server at start. */
	for (int i = 0; rv == CKR_OK && i < h->nsess; i++)
		rv = hsm_sess_ready(h, &h->sess[i], &fn);
	if (rv != CKR_OK) {
		hsm_log_rv("open", fn, rv);
		rs_errf(err, errlen, "%s failed on token \"%s\": %s", fn, token_label,
			hsm_rv_name(rv));
		srv_hsm_close(h);
		return hsm_rc_from_rv(rv);
	}
	rs_info("hsm: token \"%s\" open with %d sessions", token_label, h->nsess);
	*out = h;
	return SRV_HSM_OK;
}

void srv_hsm_set_shared_writes(srv_hsm *h, int on)
{
	if (h)
		h->shared_writes = on != 0;
}

void srv_hsm_close(srv_hsm *h)
{
	if (!h)
		return;
	/* Let calls in flight and a re-init finish; new ones see closing. */
	pthread_mutex_lock(&h->lock);
	h->closing = 1;
	while (h->active > 0 || h->reiniting)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);

	hsm_sessions_drop_all(h);
	rs_free_secret(h->pin);
	free(h->path);
	free(h->label);
	free(h->sess);
	free(h->cache);
	free(h->missing);
	pthread_mutex_destroy(&h->cache_lock);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* ---- key handle cache --------------------------------------------------- */

static size_t cache_slot(const unsigned char ckid[SRV_CKID_LEN])
{
	uint32_t x = 2166136261u; /* FNV-1a */
	for (int i = 0; i < SRV_CKID_LEN; i++)
		x = (x ^ ckid[i]) * 16777619u;
	return x & (HSM_CACHE_SIZE - 1);
}

int hsm_cache_get(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], hsm_key *out)
{
	int hit;
	size_t i = cache_slot(ckid);
	pthread_mutex_lock(&h->cache_lock);
	hit = h->cache[i].used && h->cache[i].gen == h->gen &&
	      !memcmp(h->cache[i].ckid, ckid, SRV_CKID_LEN);
	if (hit)
		*out = h->cache[i];
	pthread_mutex_unlock(&h->cache_lock);
	return hit;
}

void hsm_cache_put(srv_hsm *h, const hsm_key *k)
{
	size_t i = cache_slot(k->ckid);
	pthread_mutex_lock(&h->cache_lock);
	h->cache[i] = *k; /* a colliding key is evicted: the cache stays bounded */
	h->cache[i].used = 1;
	h->cache[i].gen = h->gen;
	pthread_mutex_unlock(&h->cache_lock);
}

void hsm_cache_drop(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], CK_OBJECT_HANDLE obj)
{
	size_t i = cache_slot(ckid);
	pthread_mutex_lock(&h->cache_lock);
	/* Only the stale entry: another thread may have cached a fresh handle. */
	if (h->cache[i].used && h->cache[i].gen == h->gen && h->cache[i].obj == obj &&
	    !memcmp(h->cache[i].ckid, ckid, SRV_CKID_LEN))
		h->cache[i].used = 0;
	pthread_mutex_unlock(&h->cache_lock);
}

/* The same hash places a CKA_ID in the table of missing keys. */
static size_t missing_slot(const unsigned char ckid[SRV_CKID_LEN])
{
	return cache_slot(ckid) & (HSM_MISSING_SIZE - 1);
}

int hsm_missing_has(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN])
{
	int has;
	size_t i = missing_slot(ckid);
	pthread_mutex_lock(&h->cache_lock);
	has = h->missing[i][0] && !memcmp(h->missing[i] + 1, ckid, SRV_CKID_LEN);
	pthread_mutex_unlock(&h->cache_lock);
	return has;
}

int hsm_missing_add(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN])
{
	int added;
	size_t i = missing_slot(ckid);
	pthread_mutex_lock(&h->cache_lock);
	added = !h->missing[i][0] || memcmp(h->missing[i] + 1, ckid, SRV_CKID_LEN) != 0;
	h->missing[i][0] = 1; /* a colliding key is evicted: at worst one more re-init */
	memcpy(h->missing[i] + 1, ckid, SRV_CKID_LEN);
	pthread_mutex_unlock(&h->cache_lock);
	return added;
}

void hsm_missing_forget(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN])
{
	size_t i = missing_slot(ckid);
	pthread_mutex_lock(&h->cache_lock);
	if (h->missing[i][0] && !memcmp(h->missing[i] + 1, ckid, SRV_CKID_LEN))
		h->missing[i][0] = 0;
	pthread_mutex_unlock(&h->cache_lock);
}

CK_RV hsm_find(srv_hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
	       CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *n, const char **fn)
{
	CK_RV rv, rv2;

	*n = 0;
	*fn = "C_FindObjectsInit";
	rv = h->mod->C_FindObjectsInit(s, tmpl, ntmpl);
	if (rv != CKR_OK)
		return rv;
	*fn = "C_FindObjects";
	rv = h->mod->C_FindObjects(s, objs, max, n);
	rv2 = h->mod->C_FindObjectsFinal(s);
	if (rv == CKR_OK && rv2 != CKR_OK) {
		*fn = "C_FindObjectsFinal";
		rv = rv2;
	}
	return rv;
}

CK_RV hsm_key_find(srv_hsm *h, CK_SESSION_HANDLE s, const unsigned char ckid[SRV_CKID_LEN],
		   hsm_key *out, const char **fn)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_ID, (void *)ckid, SRV_CKID_LEN},
	};
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG n = 0;
	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE ta = {CKA_KEY_TYPE, &kt, sizeof kt};
	CK_ATTRIBUTE ma = {CKA_MODULUS, NULL, 0}; /* length only: public, and not needed */
	CK_RV rv;

	rv = hsm_find(h, s, tmpl, 2, objs, 2, &n, fn);
	if (rv != CKR_OK)
		return rv;
	if (n == 0)
		return HSM_RV_NOT_FOUND;
	if (n > 1)
		rs_warn("hsm: several private keys share one CKA_ID; using the first");
	*fn = "C_GetAttributeValue(CKA_KEY_TYPE)";
	rv = h->mod->C_GetAttributeValue(s, objs[0], &ta, 1);
	if (rv == CKR_OK && kt == CKK_RSA) {
		*fn = "C_GetAttributeValue(CKA_MODULUS)";
		rv = h->mod->C_GetAttributeValue(s, objs[0], &ma, 1);
	}
	if (rv != CKR_OK)
		return rv;
	memset(out, 0, sizeof *out);
	memcpy(out->ckid, ckid, SRV_CKID_LEN);
	out->obj = objs[0];
	out->type = kt;
	out->mod_len = kt == CKK_RSA ? ma.ulValueLen : 0;
	hsm_cache_put(h, out);
	hsm_missing_forget(h, ckid);
	return CKR_OK;
}

/* Cached handle first; the caller retries with a fresh lookup when the token
 * calls a cached handle invalid. */
static CK_RV key_resolve(srv_hsm *h, CK_SESSION_HANDLE s, const unsigned char *ckid, hsm_key *k,
			 int *cached, const char **fn)
{
	*cached = hsm_cache_get(h, ckid, k);
	return *cached ? CKR_OK : hsm_key_find(h, s, ckid, k, fn);
}

static int rv_is_handle_fault(CK_RV rv)
{
	return rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

/* ---- signing ------------------------------------------------------------ */

typedef struct {
	const unsigned char *ckid;
	rs_sign_alg alg;
	const unsigned char *digest;
	size_t digest_len;
	long salt_len;
	unsigned char di[RS_DIGESTINFO_MAX]; /* PKCS#1 v1.5 input; wiped after use */
	size_t di_len;
	unsigned char raw[HSM_SIG_MAX];
	CK_ULONG raw_len;
} sign_ctx;

static CK_RV sign_once(srv_hsm *h, CK_SESSION_HANDLE s, sign_ctx *c, const hsm_key *k,
		       const char **fn)
{
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
	const unsigned char *in = c->digest;
	CK_ULONG inlen = c->digest_len;
	rs_hash hash = rs_sign_alg_hash(c->alg);
	CK_RV rv;

	if (!!rs_sign_alg_is_rsa(c->alg) != (k->type == CKK_RSA) ||
	    (rs_sign_alg_is_ecdsa(c->alg) && k->type != CKK_EC)) {
		*fn = "the signing algorithm does not fit the key type";
		return HSM_RV_INVALID;
	}
	if (rs_sign_alg_is_pss(c->alg)) {
		static const CK_MECHANISM_TYPE hm[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512};
		static const CK_RSA_PKCS_MGF_TYPE mgf[] = {CKG_MGF1_SHA256, CKG_MGF1_SHA384,
							   CKG_MGF1_SHA512};
		size_t hl = rs_hash_len(hash);
		long salt = c->salt_len == -1 ? (long)hl : c->salt_len;
		if (salt < 0 || (k->mod_len && (size_t)salt + hl + 2 > k->mod_len)) {
			*fn = "the PSS salt length is out of range for the key";
			return HSM_RV_INVALID;
		}
		pss.hashAlg = hm[hash];
		pss.mgf = mgf[hash];
		pss.sLen = (CK_ULONG)salt;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof pss;
	} else if (rs_sign_alg_is_ecdsa(c->alg)) {
		mech.mechanism = CKM_ECDSA;
	} else {
		in = c->di;
		inlen = c->di_len;
	}
	*fn = "C_SignInit";
	rv = h->mod->C_SignInit(s, &mech, k->obj);
	if (rv != CKR_OK)
		return rv;
	*fn = "C_Sign";
	c->raw_len = sizeof c->raw;
	return h->mod->C_Sign(s, (CK_BYTE_PTR)in, inlen, c->raw, &c->raw_len);
}

static CK_RV sign_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	sign_ctx *c = vctx;
	hsm_key k;
	int cached;
	CK_RV rv = key_resolve(h, s, c->ckid, &k, &cached, fn);

	if (rv != CKR_OK)
		return rv;
	rv = sign_once(h, s, c, &k, fn);
	if (cached && rv_is_handle_fault(rv)) {
		rs_debug("hsm: sign: cached key handle is stale (%s); looking the key up again",
			 hsm_rv_name(rv));
		hsm_cache_drop(h, c->ckid, k.obj);
		rv = hsm_key_find(h, s, c->ckid, &k, fn);
		if (rv == CKR_OK)
			rv = sign_once(h, s, c, &k, fn);
	}
	return rv;
}

srv_hsm_rc srv_hsm_sign(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN], rs_sign_alg alg,
			const unsigned char *digest, size_t digest_len, long salt_len,
			unsigned char *sig, size_t sigmax, size_t *siglen)
{
	sign_ctx c;
	srv_hsm_rc rc;

	if (!h || !ckid || !digest || !sig || !siglen || (int)alg < 0 || alg >= RS_ALG_COUNT)
		return SRV_HSM_INVALID;
	*siglen = 0;
	if (digest_len != rs_hash_len(rs_sign_alg_hash(alg))) {
		rs_warn("hsm: sign: a %zu-byte digest does not fit %s", digest_len,
			rs_sign_alg_name(alg));
		return SRV_HSM_INVALID;
	}
	memset(&c, 0, sizeof c);
	c.ckid = ckid;
	c.alg = alg;
	c.digest = digest;
	c.digest_len = digest_len;
	c.salt_len = salt_len;
	if (rs_sign_alg_is_rsa(alg) && !rs_sign_alg_is_pss(alg) &&
	    rs_der_digestinfo_build(rs_sign_alg_hash(alg), digest, digest_len, c.di, sizeof c.di,
				    &c.di_len) != 0) {
		rs_err("hsm: sign: cannot build the DigestInfo");
		return SRV_HSM_FAILED;
	}
	rc = hsm_run(h, "sign", sign_op, &c, ckid);
	OPENSSL_cleanse(c.di, sizeof c.di);
	if (rc != SRV_HSM_OK)
		return rc;
	if (rs_sign_alg_is_ecdsa(alg)) {
		if (rs_der_ecdsa_from_raw(c.raw, c.raw_len, sig, sigmax, siglen) != 0) {
			rs_err("hsm: sign: cannot encode a %lu-byte ECDSA signature as DER",
			       (unsigned long)c.raw_len);
			return SRV_HSM_FAILED;
		}
	} else {
		if (c.raw_len > sigmax) {
			rs_err("hsm: sign: a %lu-byte signature does not fit the buffer",
			       (unsigned long)c.raw_len);
			return SRV_HSM_FAILED;
		}
		memcpy(sig, c.raw, c.raw_len);
		*siglen = c.raw_len;
	}
	return SRV_HSM_OK;
}

/* ---- lookups and health -------------------------------------------------- */

typedef struct {
	const unsigned char *ckid;
} exists_ctx;

static CK_RV exists_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	exists_ctx *c = vctx;
	hsm_key k;
	return hsm_key_find(h, s, c->ckid, &k, fn); /* always asks the token */
}

srv_hsm_rc srv_hsm_key_exists(srv_hsm *h, const unsigned char ckid[SRV_CKID_LEN])
{
	exists_ctx c = {ckid};
	if (!h || !ckid)
		return SRV_HSM_INVALID;
	return hsm_run(h, "key lookup", exists_op, &c, ckid);
}

srv_hsm_rc srv_hsm_ping(srv_hsm *h)
{
	return h ? hsm_ping(h) : SRV_HSM_UNAVAILABLE;
}

unsigned long srv_hsm_generation(srv_hsm *h)
{
	unsigned long gen;
	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	gen = h->gen;
	pthread_mutex_unlock(&h->lock);
	return gen;
}
