/* Row MACs shared by every storage implementation: the canonical,
 * length-prefixed encoding of the rows that grant power (store.h documents
 * it), sealing and checking through the installed MAC function, and the
 * memory of rows already verified so that a row read again costs no token
 * call. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/store/store.h"

#define VERIFIED_SLOTS 4096 /* direct-mapped, by the first bytes of the hash */

struct srv_rowmac {
	pthread_mutex_t mu; /* guards fn, arg and verified */
	srv_row_mac_fn fn;
	void *arg;
	unsigned char (*verified)[32]; /* SHA-256 of encoding || MAC; zero = empty */
};

srv_rowmac *srv_rowmac_new(void)
{
	srv_rowmac *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	if (!(m->verified = calloc(VERIFIED_SLOTS, sizeof(*m->verified))) ||
	    pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m->verified);
		free(m);
		return NULL;
	}
	return m;
}

void srv_rowmac_free(srv_rowmac *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->verified);
	free(m);
}

void srv_rowmac_set(srv_rowmac *m, srv_row_mac_fn fn, void *arg)
{
	pthread_mutex_lock(&m->mu);
	m->fn = fn;
	m->arg = arg;
	memset(m->verified, 0, VERIFIED_SLOTS * sizeof(*m->verified));
	pthread_mutex_unlock(&m->mu);
}

int srv_rowmac_on(const srv_rowmac *m)
{
	return m && m->fn;
}

/* ---- the encoding ----------------------------------------------------- */

typedef struct {
	unsigned char *out;
	size_t len;
	int bad;
} enc;

static void put(enc *e, const void *p, size_t n)
{
	if (e->bad || n > 0xffffffffUL || n + 4 > SRV_MAC_MSG_MAX - e->len) {
		e->bad = 1;
		return;
	}
	e->out[e->len++] = (unsigned char)(n >> 24);
	e->out[e->len++] = (unsigned char)(n >> 16);
	e->out[e->len++] = (unsigned char)(n >> 8);
	e->out[e->len++] = (unsigned char)n;
	memcpy(e->out + e->len, p, n);
	e->len += n;
}

static void put_s(enc *e, const char *s)
{
	put(e, s ? s : "", s ? strlen(s) : 0);
}

static void put_i(enc *e, long long v)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%lld", v);
	put(e, t, (size_t)n);
}

/* An optional long text (an OIDC config or login): its SHA-256 hex when set,
 * nothing when NULL or "" -- rows sealed before it existed still pass. */
static void put_digest(enc *e, const char *s)
{
	unsigned char d[64];
	char hex[65];

	if (!s || !*s)
		return;
	if (rs_hash_compute(RS_HASH_SHA256, s, strlen(s), d) != 0) {
		e->bad = 1;
		return;
	}
	rs_hex_encode(d, 32, hex);
	put_s(e, hex);
}

static size_t done(const enc *e)
{
	return e->bad ? 0 : e->len;
}

size_t srv_mac_msg_principal(const srv_principal *p, unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "principals");
	put_s(&e, p->id);
	put_s(&e, p->type);
	put_s(&e, p->name);
	put_i(&e, p->admin ? 1 : 0);
	put_i(&e, p->disabled ? 1 : 0);
	put_s(&e, p->client_id);
	if (p->metrics) /* appended only when set: rows sealed before stay valid */
		put_i(&e, 1);
	put_digest(&e, p->oidc);
	return done(&e);
}

size_t srv_mac_msg_token(const char *id, const char *hash, const char *principal_id,
			 const char *kind, long long expires_at, const char *oidc,
			 unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "tokens");
	put_s(&e, id);
	put_s(&e, hash);
	put_s(&e, principal_id);
	put_s(&e, kind);
	put_i(&e, expires_at);
	put_digest(&e, oidc);
	return done(&e);
}

size_t srv_mac_msg_secret(const char *id, const char *client_id, const char *principal_id,
			  const char *hash, long long expires_at, unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "secrets");
	put_s(&e, id);
	put_s(&e, client_id);
	put_s(&e, principal_id);
	put_s(&e, hash);
	put_i(&e, expires_at);
	return done(&e);
}

size_t srv_mac_msg_member(const char *signer_id, const char *principal_id, const char *role,
			  unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "members");
	put_s(&e, signer_id);
	put_s(&e, principal_id);
	put_s(&e, role);
	return done(&e);
}

size_t srv_mac_msg_policy(const srv_policy *p, unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "policies");
	put_s(&e, p->id);
	put_s(&e, p->name);
	put_i(&e, p->required_approvals);
	put_i(&e, p->max_signings);
	put_i(&e, p->max_window);
	put_i(&e, p->request_ttl);
	put_i(&e, p->bypass_identities ? 1 : 0);
	put_digest(&e, p->bypass_claims);
	return done(&e);
}

size_t srv_mac_msg_tsa(const srv_tsa *t, unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "timestamp_authorities");
	put_s(&e, t->id);
	put_s(&e, t->name);
	put_s(&e, t->certificate_id);
	put_i(&e, t->require_auth ? 1 : 0);
	return done(&e);
}

size_t srv_mac_msg_approver(const char *policy_id, const char *principal_id, unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "policy_approvers");
	put_s(&e, policy_id);
	put_s(&e, principal_id);
	return done(&e);
}

size_t srv_mac_msg_session(const srv_session *s, unsigned char *out)
{
	enc e = {out, 0, 0};
	put_s(&e, "console_sessions");
	put_s(&e, s->hash);
	put_s(&e, s->principal_id);
	put_i(&e, (long long)s->expires_at);
	return done(&e);
}

/* ---- sealing and checking --------------------------------------------- */

static int compute(srv_rowmac *m, const unsigned char *msg, size_t len,
		   unsigned char mac[SRV_MAC_LEN])
{
	srv_row_mac_fn fn;
	void *arg;
	pthread_mutex_lock(&m->mu);
	fn = m->fn;
	arg = m->arg;
	pthread_mutex_unlock(&m->mu);
	return fn(arg, msg, len, mac);
}

srv_st_rc srv_rowmac_seal(srv_rowmac *m, const unsigned char *msg, size_t len,
			  char hex[SRV_MAC_HEX])
{
	unsigned char mac[SRV_MAC_LEN];
	hex[0] = '\0';
	if (!srv_rowmac_on(m))
		return SRV_ST_OK;
	if (len == 0) {
		rs_err("store: a row too long to authenticate");
		return SRV_ST_FAILED;
	}
	if (compute(m, msg, len, mac) != 0)
		return SRV_ST_UNAVAILABLE;
	rs_hex_encode(mac, sizeof(mac), hex);
	return SRV_ST_OK;
}

/* The fingerprint of a verified row: SHA-256 of the encoding, then the
 * stored hex MAC (a row changed in any way has another). */
static int fingerprint(const unsigned char *msg, size_t len, const char *hex, unsigned char fp[32])
{
	unsigned char buf[SRV_MAC_MSG_MAX + SRV_MAC_HEX];
	size_t hl = strlen(hex);
	if (len > SRV_MAC_MSG_MAX || hl >= SRV_MAC_HEX)
		return -1;
	memcpy(buf, msg, len);
	memcpy(buf + len, hex, hl);
	return rs_hash_compute(RS_HASH_SHA256, buf, len + hl, fp);
}

static unsigned char *slot(srv_rowmac *m, const unsigned char fp[32])
{
	size_t i = ((size_t)fp[0] << 8 | fp[1]) % VERIFIED_SLOTS;
	return m->verified[i];
}

static int ct_eq(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

srv_st_rc srv_rowmac_check(srv_rowmac *m, const char *table, const char *row,
			   const unsigned char *msg, size_t len, const char *hex)
{
	unsigned char fp[32], mac[SRV_MAC_LEN];
	char want[SRV_MAC_HEX];
	int have_fp, hit = 0;
	if (!srv_rowmac_on(m))
		return SRV_ST_OK;
	if (!hex)
		hex = "";
	if (len == 0 || strlen(hex) != 2 * SRV_MAC_LEN) {
		rs_err("store: %s row %s has %s: refused", table, row ? row : "?",
		       len == 0 ? "fields too long to authenticate" : "no valid MAC");
		return SRV_ST_NOT_FOUND;
	}
	have_fp = fingerprint(msg, len, hex, fp) == 0;
	if (have_fp) {
		pthread_mutex_lock(&m->mu);
		hit = memcmp(slot(m, fp), fp, sizeof(fp)) == 0;
		pthread_mutex_unlock(&m->mu);
	}
	if (hit)
		return SRV_ST_OK;
	if (compute(m, msg, len, mac) != 0)
		return SRV_ST_UNAVAILABLE;
	rs_hex_encode(mac, sizeof(mac), want);
	if (!ct_eq(want, hex, 2 * SRV_MAC_LEN)) {
		rs_err("store: %s row %s fails its MAC (changed outside rsignd?): refused", table,
		       row ? row : "?");
		return SRV_ST_NOT_FOUND;
	}
	if (have_fp) {
		pthread_mutex_lock(&m->mu);
		memcpy(slot(m, fp), fp, sizeof(fp));
		pthread_mutex_unlock(&m->mu);
	}
	return SRV_ST_OK;
}

int srv_policy_split_macs(const char *csv, srv_policy *p)
{
	const char *c = csv ? csv : "";

	if (!p->n_approvers)
		return 0;
	if (!(p->approver_macs = calloc(p->n_approvers, sizeof(*p->approver_macs))))
		return -1;
	for (size_t i = 0; i < p->n_approvers && *c; i++) {
		const char *e = strchr(c, ',');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		if (len < sizeof(p->approver_macs[i]))
			memcpy(p->approver_macs[i], c, len);
		if (!e)
			break;
		c = e + 1;
	}
	return 0;
}

srv_st_rc srv_policy_check_macs(srv_rowmac *mac, srv_policy *p)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_policy(p, m), kept = 0;
	srv_st_rc r = srv_rowmac_check(mac, "policies", p->id, m, n, p->mac);

	for (size_t i = 0; r == SRV_ST_OK && i < p->n_approvers; i++) {
		char row[2 * RS_UUID_LEN + 2];
		snprintf(row, sizeof(row), "%.36s/%.36s", p->id, p->approvers[i]);
		n = srv_mac_msg_approver(p->id, p->approvers[i], m);
		r = srv_rowmac_check(mac, "policy_approvers", row, m, n,
				     p->approver_macs ? p->approver_macs[i] : "");
		if (r == SRV_ST_NOT_FOUND) {
			r = SRV_ST_OK;
			continue;
		}
		if (kept != i) {
			memcpy(p->approvers[kept], p->approvers[i], sizeof(p->approvers[kept]));
			if (p->approver_macs)
				memcpy(p->approver_macs[kept], p->approver_macs[i],
				       sizeof(p->approver_macs[kept]));
		}
		kept++;
	}
	if (r == SRV_ST_OK)
		p->n_approvers = kept;
	return r;
}
