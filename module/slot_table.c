/* The slot table: one slot per signer, fetched lazily on the first
 * C_GetSlotList and refreshed after refresh_interval seconds.
 *
 * With credentials configured the list comes from
 * GET /pki/signers?canSign=true (paged by 100 until totalCount), or, when
 * the config names `signers`, from GET /pki/signers/{name} for each name so
 * that no other signer is listed. Without credentials the slots are the
 * configured names (nothing may be asked before C_Login), and each is
 * resolved by name when C_Login brings a credential.
 *
 * Slot IDs: 31 bits of SHA-256 over the signer id, so the same signer has the
 * same slot in every process; a collision moves the later signer (in id
 * order) to the next free value. Without credentials the id is unknown until
 * login, so those slots hash the signer name instead. Slots are never freed
 * before C_Finalize; a signer that disappears leaves its slot without a token.
 * A failed refresh keeps the previous list and is retried after 5 seconds
 * (or refresh_interval, when shorter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/sha.h>

#include "rsign/base64.h"
#include "rsign/ckr.h"
#include "rsign/json.h"
#include "rsign/log.h"

#include "module.h"
#include "errors.h"

#define RETRY_SECONDS 5
#define PAGE 100
#define MAX_SIGNERS 10000

static struct {
	mod_slot **slots;
	size_t n, cap;
	int attempted, ok, refreshing, stale;
	long long list_time;
} st;

static CK_SLOT_ID hash_slot_id(const char *ident)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)ident, strlen(ident), md);
	return ((CK_SLOT_ID)md[0] << 24 | (CK_SLOT_ID)md[1] << 16 | (CK_SLOT_ID)md[2] << 8 |
		md[3]) &
	       0x7fffffffUL;
}

/* CKA_ID: the 16 bytes of a UUID signer id, else 16 bytes of its SHA-256. */
static void make_ckaid(const char *signer_id, unsigned char out[MOD_ID_LEN])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[33];
	size_t i, o = 0, len;

	for (i = 0; signer_id[i] && o < sizeof(hex) - 1; i++)
		if (signer_id[i] != '-')
			hex[o++] = signer_id[i];
	hex[o] = '\0';
	if (strlen(signer_id) == 36 && o == 32 && !signer_id[i] &&
	    rs_hex_decode(hex, out, MOD_ID_LEN, &len) == 0 && len == MOD_ID_LEN)
		return;
	SHA256((const unsigned char *)signer_id, strlen(signer_id), md);
	memcpy(out, md, MOD_ID_LEN);
}

mod_slot *mod_slot_get_inlock(CK_SLOT_ID id)
{
	size_t i;

	for (i = 0; i < st.n; i++)
		if (st.slots[i]->id == id)
			return st.slots[i];
	return NULL;
}

CK_RV mod_slot_enter(CK_SLOT_ID id, int need_token, mod_slot **slot)
{
	CK_RV rv;

	*slot = NULL;
	mod_slots_ensure();
	rv = mod_enter();
	if (rv != CKR_OK)
		return rv;
	*slot = mod_slot_get_inlock(id);
	if (!*slot)
		rv = CKR_SLOT_ID_INVALID;
	else if (need_token && !(*slot)->present)
		rv = CKR_TOKEN_NOT_PRESENT;
	if (rv != CKR_OK) {
		*slot = NULL;
		mod_unlock();
	}
	return rv;
}

static CK_SLOT_ID free_slot_id(const char *ident)
{
	CK_SLOT_ID id = hash_slot_id(ident);

	while (mod_slot_get_inlock(id))
		id = (id + 1) & 0x7fffffffUL;
	return id;
}

static mod_slot *slot_add_inlock(const char *ident, const char *name)
{
	mod_slot *s;

	if (st.n == st.cap) {
		size_t cap = st.cap ? st.cap * 2 : 8;
		mod_slot **p = realloc(st.slots, cap * sizeof(*p));

		if (!p)
			return NULL;
		st.slots = p;
		st.cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = free_slot_id(ident);
	s->index = st.n;
	rs_strlcpy(s->name, name, sizeof(s->name));
	s->present = 1;
	st.slots[st.n++] = s;
	return s;
}

void mod_slot_apply_inlock(mod_slot *slot, const mod_signer_rec *rec)
{
	if (strcmp(slot->signer_id, rec->id) != 0) {
		rs_strlcpy(slot->signer_id, rec->id, sizeof(slot->signer_id));
		make_ckaid(rec->id, slot->ckaid);
	}
	rs_strlcpy(slot->name, rec->name, sizeof(slot->name));
	if (slot->resolved && slot->key_alg != rec->key_alg) {
		/* A new key: the cached objects describe the old one. */
		mod_objects_free(slot->objects, slot->n_objects);
		slot->objects = NULL;
		slot->n_objects = 0;
	}
	slot->key_alg = rec->key_alg;
	slot->enabled = rec->enabled;
	slot->resolved = 1;
	slot->present = 1;
}

int mod_slots_init_inlock(void)
{
	const mod_config *conf = mod_conf();
	size_t i;

	memset(&st, 0, sizeof(st));
	if (!conf->url) {
		st.attempted = st.ok = 1; /* nothing to fetch from */
		return 0;
	}
	if (!mod_login_required())
		return 0;
	/* Without credentials: the configured names, resolved at C_Login. */
	st.attempted = st.ok = 1;
	if (!conf->n_signer_names)
		rs_warn("no credentials configured and no signers listed: no slots (set "
			"token_file, RSIGN_TOKEN or RSIGN_CLIENT_ID/SECRET, or signers)");
	for (i = 0; i < conf->n_signer_names; i++)
		if (!slot_add_inlock(conf->signer_names[i], conf->signer_names[i]))
			return -1;
	return 0;
}

void mod_slots_free_inlock(void)
{
	size_t i;

	for (i = 0; i < st.n; i++) {
		mod_objects_free(st.slots[i]->objects, st.slots[i]->n_objects);
		mod_cred_clear(&st.slots[i]->pin_cred);
		free(st.slots[i]);
	}
	free(st.slots);
	memset(&st, 0, sizeof(st));
}

void mod_slots_mark_stale_inlock(void)
{
	st.stale = 1;
}

mod_cred *mod_slot_cred_inlock(mod_slot *slot)
{
	mod_cred *c = mod_configured_cred();

	return c ? c : &slot->pin_cred;
}

/* ---- fetching ------------------------------------------------------------ */

static int parse_signer(const cJSON *obj, mod_signer_rec *rec)
{
	const char *id = NULL, *name = NULL, *status = NULL, *alg = NULL;

	memset(rec, 0, sizeof(*rec));
	if (!cJSON_IsObject(obj) ||
	    rs_json_str(obj, "id", 1, MOD_SIGNER_ID_MAX, &id) != RS_JSON_OK || !*id ||
	    rs_json_str(obj, "name", 1, MOD_NAME_MAX, &name) != RS_JSON_OK || !*name ||
	    rs_json_str(obj, "status", 0, 32, &status) != RS_JSON_OK ||
	    rs_json_str(obj, "keyAlgorithm", 1, 32, &alg) != RS_JSON_OK)
		return -1;
	rs_strlcpy(rec->id, id, sizeof(rec->id));
	rs_strlcpy(rec->name, name, sizeof(rec->name));
	rec->enabled = !status || strcmp(status, "disabled") != 0;
	if (rs_key_alg_parse(alg, &rec->key_alg) < 0) {
		rs_warn("signer %s: key algorithm %.32s is not supported; not shown", rec->name,
			alg);
		return 1;
	}
	return 0;
}

static CK_RV fetch_one(mod_cred *cred, int shared, unsigned long gen, const char *name,
		       int in_login, mod_signer_rec *rec)
{
	char seg[3 * MOD_NAME_MAX + 1], path[sizeof(seg) + 32];
	mod_call call = {0};
	cJSON *obj = NULL;
	CK_RV rv;

	if (mod_http_escape(name, seg, sizeof(seg)) < 0)
		return CKR_ARGUMENTS_BAD;
	snprintf(path, sizeof(path), "/pki/signers/%s", seg);
	call.what = "resolve signer";
	call.signer = name;
	call.method = "GET";
	call.path = path;
	call.in_login = in_login;
	rv = shared ? mod_api_call(cred, gen, &call) : mod_cred_call(cred, &call);
	if (rv != CKR_OK)
		goto out;
	obj = rs_json_parse((const char *)call.resp.body.data, call.resp.body.len,
			    RS_JSON_MAX_DEPTH);
	if (!obj || parse_signer(obj, rec) != 0)
		rv = mod_err_response(&call, "not a signer object with a supported key");
out:
	cJSON_Delete(obj);
	mod_call_done(&call);
	return rv;
}

CK_RV mod_slot_fetch_signer(mod_cred *cred, const char *name, int in_login, mod_signer_rec *rec)
{
	return fetch_one(cred, 0, 0, name, in_login, rec);
}

typedef struct recs {
	mod_signer_rec *v;
	size_t n, cap;
} recs;

static int recs_push(recs *r, const mod_signer_rec *rec)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		mod_signer_rec *p = realloc(r->v, cap * sizeof(*p));

		if (!p)
			return -1;
		r->v = p;
		r->cap = cap;
	}
	r->v[r->n++] = *rec;
	return 0;
}

static CK_RV fetch_page(mod_cred *cred, unsigned long gen, size_t offset, recs *out,
			long long *total, size_t *got)
{
	char path[96];
	mod_call call = {0};
	mod_signer_rec rec;
	cJSON *obj = NULL, *arr, *it;
	CK_RV rv;

	*got = 0;
	snprintf(path, sizeof(path), "/pki/signers?canSign=true&limit=%d&offset=%zu", PAGE, offset);
	call.what = "list signers";
	call.method = "GET";
	call.path = path;
	rv = mod_api_call(cred, gen, &call);
	if (rv != CKR_OK)
		goto out;
	obj = rs_json_parse((const char *)call.resp.body.data, call.resp.body.len,
			    RS_JSON_MAX_DEPTH);
	arr = obj ? cJSON_GetObjectItemCaseSensitive(obj, "signers") : NULL;
	if (!cJSON_IsArray(arr) ||
	    rs_json_int(obj, "totalCount", 1, 0, MAX_SIGNERS, total) != RS_JSON_OK) {
		rv = mod_err_response(&call, "no signers array or totalCount");
		goto out;
	}
	cJSON_ArrayForEach (it, arr) {
		int r = parse_signer(it, &rec);

		(*got)++;
		if (r < 0) {
			rv = mod_err_response(&call, "a signer without id, name or keyAlgorithm");
			goto out;
		}
		if (r == 0 && recs_push(out, &rec) < 0) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
out:
	cJSON_Delete(obj);
	mod_call_done(&call);
	return rv;
}

static CK_RV fetch_all(mod_cred *cred, unsigned long gen, const mod_config *conf, recs *out)
{
	mod_signer_rec rec;
	long long total = 0;
	size_t offset = 0, got, i;
	CK_RV rv;

	if (conf->n_signer_names) {
		for (i = 0; i < conf->n_signer_names; i++) {
			rv = fetch_one(cred, 1, gen, conf->signer_names[i], 0, &rec);
			if (rv == CKR_DEVICE_REMOVED)
				continue; /* no such signer (logged): no slot */
			if (rv != CKR_OK)
				return rv;
			if (recs_push(out, &rec) < 0)
				return CKR_HOST_MEMORY;
		}
		return CKR_OK;
	}
	do {
		rv = fetch_page(cred, gen, offset, out, &total, &got);
		if (rv != CKR_OK)
			return rv;
		offset += got;
	} while (got > 0 && offset < (size_t)total && offset < MAX_SIGNERS);
	return CKR_OK;
}

static int rec_by_id(const void *a, const void *b)
{
	return strcmp(((const mod_signer_rec *)a)->id, ((const mod_signer_rec *)b)->id);
}

static mod_slot *slot_by_signer_inlock(const char *signer_id)
{
	size_t i;

	for (i = 0; i < st.n; i++)
		if (strcmp(st.slots[i]->signer_id, signer_id) == 0)
			return st.slots[i];
	return NULL;
}

/* Known signers keep their slot; new ones are added in id order so that
 * collisions resolve the same way everywhere; missing ones lose the token. */
static int apply_list_inlock(recs *r)
{
	size_t i;

	if (r->n > 1) /* an empty list has no array: qsort's base may not be NULL */
		qsort(r->v, r->n, sizeof(r->v[0]), rec_by_id);
	for (i = 0; i < st.n; i++)
		st.slots[i]->present = 0;
	for (i = 0; i < r->n; i++) {
		mod_slot *s = slot_by_signer_inlock(r->v[i].id);

		if (i > 0 && strcmp(r->v[i].id, r->v[i - 1].id) == 0)
			continue;
		if (!s)
			s = slot_add_inlock(r->v[i].id, r->v[i].name);
		if (!s)
			return -1;
		mod_slot_apply_inlock(s, &r->v[i]);
	}
	return 0;
}

static int refresh_due_inlock(const mod_config *conf)
{
	long long age = mod_now() - st.list_time;

	if (!st.attempted || st.stale)
		return 1;
	if (!st.ok)
		return age >=
		       1000 * (conf->refresh_interval > 0 && conf->refresh_interval < RETRY_SECONDS
				       ? conf->refresh_interval
				       : RETRY_SECONDS);
	return conf->refresh_interval > 0 && age >= 1000 * conf->refresh_interval;
}

/* The first list: when another thread is already fetching it, wait for
 * that fetch instead of answering with no slots because we came second. */
static void wait_first_inlock(void)
{
	if (st.attempted || !st.refreshing)
		return;
	const mod_config *conf = mod_conf();
	unsigned long gen = mod_generation_inlock();
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long deadline = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 +
			     1000 * (conf->connect_timeout + conf->request_timeout + 1);
	while (st.refreshing && !st.attempted && mod_generation_inlock() == gen)
		if (mod_wait_inlock(deadline) != 0)
			break;
}

void mod_slots_refresh(void)
{
	const mod_config *conf = mod_conf();
	recs r = {0};
	mod_cred *cred;
	unsigned long gen;
	CK_RV rv;

	if (mod_enter() != CKR_OK)
		return;
	cred = mod_configured_cred();
	wait_first_inlock();
	if (!cred || !conf->url || st.refreshing || !refresh_due_inlock(conf)) {
		mod_unlock();
		return;
	}
	st.refreshing = 1;
	gen = mod_generation_inlock();
	mod_unlock();

	rv = fetch_all(cred, gen, conf, &r);

	if (mod_reenter(gen) == CKR_OK) {
		st.refreshing = 0;
		mod_broadcast_inlock();
		st.attempted = 1;
		st.list_time = mod_now();
		if (rv == CKR_OK && apply_list_inlock(&r) < 0)
			rv = CKR_HOST_MEMORY;
		st.ok = rv == CKR_OK;
		if (st.ok)
			st.stale = 0;
		else
			rs_warn("signer list not refreshed (%s); %zu slot(s) from before kept",
				rs_ckr_name(rv), st.n);
	}
	mod_unlock();
	free(r.v);
}

void mod_slots_ensure(void)
{
	int never;

	if (mod_enter() != CKR_OK)
		return;
	wait_first_inlock();
	never = !st.attempted;
	mod_unlock();
	if (never)
		mod_slots_refresh();
}

static int slot_by_name(const void *a, const void *b)
{
	const mod_slot *x = *(mod_slot *const *)a, *y = *(mod_slot *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

size_t mod_slots_list_inlock(int present_only, CK_SLOT_ID *list, size_t max)
{
	mod_slot **sorted;
	size_t i, n = 0;

	if (!st.n)
		return 0;
	sorted = malloc(st.n * sizeof(*sorted));
	if (!sorted) {
		/* Unsorted rather than none. */
		for (i = 0; i < st.n; i++)
			if (!present_only || st.slots[i]->present) {
				if (list && n < max)
					list[n] = st.slots[i]->id;
				n++;
			}
		return n;
	}
	for (i = 0; i < st.n; i++)
		if (!present_only || st.slots[i]->present)
			sorted[n++] = st.slots[i];
	qsort(sorted, n, sizeof(*sorted), slot_by_name);
	for (i = 0; list && i < n && i < max; i++)
		list[i] = sorted[i]->id;
	free(sorted);
	return n;
}
