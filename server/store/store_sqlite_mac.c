/* Row MACs in the SQLite store: sealing and checking a principal, dropping
 * the records of a list that fail their MACs, and seal_rows, which fills
 * the MAC of every row of the authenticated tables that has none (the
 * rsignd start that creates the MAC key; the encoding is in store.h). */
#include <stdio.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

srv_st_rc sq_mac_principal(sq_store *s, const srv_principal *p, char hex[SRV_MAC_HEX])
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_principal(p, m);
	return srv_rowmac_seal(s->mac, m, n, hex);
}

srv_st_rc sq_check_principal(sq_store *s, const srv_principal *p)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_principal(p, m);
	return srv_rowmac_check(s->mac, "principals", p->id, m, n, p->mac);
}

srv_st_rc sq_filter(sq_store *s, void *v, size_t *n, size_t size,
		    srv_st_rc (*check)(sq_store *s, const void *rec), void (*clr)(void *))
{
	unsigned char *b = v;
	size_t kept = 0;

	for (size_t i = 0; i < *n; i++) {
		srv_st_rc r = check(s, b + i * size);
		if (r == SRV_ST_NOT_FOUND) {
			clr(b + i * size);
			continue;
		}
		if (r != SRV_ST_OK) {
			/* the caller frees the first *n: move the rest down first */
			memmove(b + kept * size, b + i * size, (*n - i) * size);
			*n = kept + (*n - i);
			return r;
		}
		if (kept != i)
			memcpy(b + kept * size, b + i * size, size);
		kept++;
	}
	*n = kept;
	return SRV_ST_OK;
}

/* One table to seal: the rows without a MAC (their encoding's columns in
 * the order of its encoder), and the update that stores one by key. */
typedef struct {
	const char *table;
	const char *select; /* the key columns first, then what enc needs */
	const char *update; /* ?1 mac, ?2.. the key columns */
	int nkeys;
	size_t (*enc)(sqlite3_stmt *q, unsigned char *out);
} seal_table;

static const char *txt(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	return t ? (const char *)t : "";
}

static size_t enc_principal(sqlite3_stmt *q, unsigned char *out)
{
	srv_principal p;
	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, txt(q, 0), sizeof(p.id));
	rs_strlcpy(p.type, txt(q, 1), sizeof(p.type));
	p.name = (char *)txt(q, 2);
	p.admin = sqlite3_column_int(q, 3) != 0;
	p.disabled = sqlite3_column_int(q, 4) != 0;
	rs_strlcpy(p.client_id, txt(q, 5), sizeof(p.client_id));
	p.oidc = (char *)txt(q, 6);
	if (strlen(txt(q, 0)) >= sizeof(p.id) || strlen(txt(q, 5)) >= sizeof(p.client_id))
		return 0;
	p.metrics = sqlite3_column_int(q, 7) != 0;
	return srv_mac_msg_principal(&p, out);
}

static size_t enc_token(sqlite3_stmt *q, unsigned char *out)
{
	return srv_mac_msg_token(txt(q, 0), txt(q, 1), txt(q, 2), txt(q, 3),
				 sqlite3_column_int64(q, 4), txt(q, 5), out);
}

static size_t enc_secret(sqlite3_stmt *q, unsigned char *out)
{
	return srv_mac_msg_secret(txt(q, 0), txt(q, 1), txt(q, 2), txt(q, 3),
				  sqlite3_column_int64(q, 4), out);
}

static size_t enc_member(sqlite3_stmt *q, unsigned char *out)
{
	return srv_mac_msg_member(txt(q, 0), txt(q, 1), txt(q, 2), out);
}

static size_t enc_policy(sqlite3_stmt *q, unsigned char *out)
{
	srv_policy p;
	memset(&p, 0, sizeof(p));
	if (strlen(txt(q, 0)) >= sizeof(p.id))
		return 0;
	rs_strlcpy(p.id, txt(q, 0), sizeof(p.id));
	p.name = (char *)txt(q, 1);
	p.required_approvals = sqlite3_column_int(q, 2);
	p.max_signings = sqlite3_column_int64(q, 3);
	p.max_window = sqlite3_column_int64(q, 4);
	p.request_ttl = sqlite3_column_int64(q, 5);
	p.bypass_identities = sqlite3_column_int(q, 6) != 0;
	p.bypass_claims = (char *)txt(q, 7);
	return srv_mac_msg_policy(&p, out);
}

static size_t enc_approver(sqlite3_stmt *q, unsigned char *out)
{
	return srv_mac_msg_approver(txt(q, 0), txt(q, 1), out);
}

static const seal_table seal_tables[] = {
	{"principals",
	 "SELECT id, type, name, admin, disabled, client_id, oidc, metrics FROM principals"
	 " WHERE mac IS "
	 "NULL",
	 "UPDATE principals SET mac = ?1 WHERE id = ?2", 1, enc_principal},
	{"tokens",
	 "SELECT id, hash, principal_id, kind, expires_at, oidc FROM tokens WHERE mac IS NULL",
	 "UPDATE tokens SET mac = ?1 WHERE id = ?2", 1, enc_token},
	{"secrets",
	 "SELECT id, client_id, principal_id, secret_hash, expires_at FROM secrets"
	 " WHERE mac IS NULL",
	 "UPDATE secrets SET mac = ?1 WHERE id = ?2", 1, enc_secret},
	{"members", "SELECT signer_id, principal_id, role FROM members WHERE mac IS NULL",
	 "UPDATE members SET mac = ?1 WHERE signer_id = ?2 AND principal_id = ?3", 2, enc_member},
	{"policies",
	 "SELECT id, name, required_approvals, max_signings, max_window, request_ttl,"
	 " bypass_identities, bypass_claims FROM policies WHERE mac IS NULL",
	 "UPDATE policies SET mac = ?1 WHERE id = ?2", 1, enc_policy},
	{"policy_approvers",
	 "SELECT policy_id, principal_id FROM policy_approvers WHERE mac IS NULL",
	 "UPDATE policy_approvers SET mac = ?1 WHERE policy_id = ?2 AND principal_id = ?3", 2,
	 enc_approver},
};

static srv_st_rc seal_one(sq_store *s, const seal_table *t, size_t *n)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	srv_st_rc r = SRV_ST_OK;
	int rc;

	if ((rc = sqlite3_prepare_v2(s->db, t->select, -1, &sel, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, t->update, -1, &upd, NULL)) != SQLITE_OK) {
		r = sq_fail(s, "seal_rows", rc, SRV_ST_FAILED);
		goto out;
	}
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		unsigned char m[SRV_MAC_MSG_MAX];
		char mac[SRV_MAC_HEX];
		int brc = SQLITE_OK;
		size_t len = t->enc(sel, m);

		if (len == 0) {
			rs_err("store: seal_rows: a %s row too long to authenticate: left unsealed "
			       "(it will be refused)",
			       t->table);
			continue;
		}
		if ((r = srv_rowmac_seal(s->mac, m, len, mac)) != SRV_ST_OK)
			goto out;
		b_text(upd, 1, mac, &brc);
		for (int k = 0; k < t->nkeys; k++)
			b_text(upd, 2 + k, txt(sel, k), &brc);
		/* the key texts are bound SQLITE_STATIC: step before sel moves */
		if ((r = sq_run(s, "seal_rows", upd, brc, RUN_MUST_CHANGE)) != SRV_ST_OK)
			goto out;
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		r = sq_fail(s, "seal_rows", rc, SRV_ST_FAILED);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return r;
}

srv_st_rc sq_seal_rows(srv_store *st, size_t *n)
{
	sq_store *s = SQ(st);
	srv_st_rc r;

	if (!s || !n || !srv_rowmac_on(s->mac))
		return sq_bad_arg("seal_rows");
	*n = 0;
	sq_lock(s);
	if ((r = sq_begin(s, "seal_rows")) != SRV_ST_OK)
		goto out;
	for (size_t i = 0; i < sizeof(seal_tables) / sizeof(seal_tables[0]); i++)
		if ((r = seal_one(s, &seal_tables[i], n)) != SRV_ST_OK) {
			sq_rollback(s, "seal_rows");
			goto out;
		}
	r = sq_commit(s, "seal_rows");
out:
	sq_unlock(s);
	return r;
}
