/* Row MACs in the PostgreSQL store: sealing and checking a principal,
 * dropping the records of a list that fail their MACs, and seal_rows, which
 * fills the MAC of every row of the authenticated tables that has none (the
 * rsignd start that creates the MAC key). The rule and the encoding are
 * store.h's, as in store_sqlite_mac.c. */
#include <stdio.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"

srv_st_rc pg_mac_principal(pg_store *s, const srv_principal *p, char hex[SRV_MAC_HEX])
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_principal(p, m);
	return srv_rowmac_seal(s->mac, m, n, hex);
}

srv_st_rc pg_check_principal(pg_store *s, const srv_principal *p)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	size_t n = srv_mac_msg_principal(p, m);
	return srv_rowmac_check(s->mac, "principals", p->id, m, n, p->mac);
}

srv_st_rc pg_filter(pg_store *s, void *v, size_t *n, size_t size,
		    srv_st_rc (*check)(pg_store *s, const void *rec), void (*clr)(void *))
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

void pg_set_row_mac(srv_store *st, srv_row_mac_fn fn, void *arg)
{
	if (st && PGS(st)->mac)
		srv_rowmac_set(PGS(st)->mac, fn, arg);
}

/* One table to seal: the rows without a MAC (their encoding's columns in
 * the order of its encoder), and the update that stores one by key. */
typedef struct {
	const char *table;
	const char *select; /* the key columns first, then what enc needs */
	const char *update; /* $1 mac, $2.. the key columns */
	int nkeys;
	size_t (*enc)(const PGresult *q, int r, unsigned char *out);
} seal_table;

static const char *txt(const PGresult *q, int r, int i)
{
	return PQgetisnull(q, r, i) ? "" : PQgetvalue(q, r, i);
}

static size_t enc_principal(const PGresult *q, int r, unsigned char *out)
{
	srv_principal p;
	memset(&p, 0, sizeof(p));
	if (strlen(txt(q, r, 0)) >= sizeof(p.id) || strlen(txt(q, r, 5)) >= sizeof(p.client_id))
		return 0;
	rs_strlcpy(p.id, txt(q, r, 0), sizeof(p.id));
	rs_strlcpy(p.type, txt(q, r, 1), sizeof(p.type));
	p.name = (char *)txt(q, r, 2);
	p.admin = pg_col_ll(q, r, 3) != 0;
	p.disabled = pg_col_ll(q, r, 4) != 0;
	rs_strlcpy(p.client_id, txt(q, r, 5), sizeof(p.client_id));
	p.oidc = (char *)txt(q, r, 6);
	p.metrics = pg_col_ll(q, r, 7) != 0;
	return srv_mac_msg_principal(&p, out);
}

static size_t enc_token(const PGresult *q, int r, unsigned char *out)
{
	return srv_mac_msg_token(txt(q, r, 0), txt(q, r, 1), txt(q, r, 2), txt(q, r, 3),
				 pg_col_ll(q, r, 4), txt(q, r, 5), out);
}

static size_t enc_secret(const PGresult *q, int r, unsigned char *out)
{
	return srv_mac_msg_secret(txt(q, r, 0), txt(q, r, 1), txt(q, r, 2), txt(q, r, 3),
				  pg_col_ll(q, r, 4), out);
}

static size_t enc_member(const PGresult *q, int r, unsigned char *out)
{
	return srv_mac_msg_member(txt(q, r, 0), txt(q, r, 1), txt(q, r, 2), out);
}

static size_t enc_policy(const PGresult *q, int r, unsigned char *out)
{
	srv_policy p;
	memset(&p, 0, sizeof(p));
	if (strlen(txt(q, r, 0)) >= sizeof(p.id))
		return 0;
	rs_strlcpy(p.id, txt(q, r, 0), sizeof(p.id));
	p.name = (char *)txt(q, r, 1);
	p.required_approvals = (int)pg_col_ll(q, r, 2);
	p.max_signings = pg_col_ll(q, r, 3);
	p.max_window = pg_col_ll(q, r, 4);
	p.request_ttl = pg_col_ll(q, r, 5);
	p.bypass_identities = pg_col_ll(q, r, 6) != 0;
	p.bypass_claims = (char *)txt(q, r, 7);
	return srv_mac_msg_policy(&p, out);
}

static size_t enc_approver(const PGresult *q, int r, unsigned char *out)
{
	return srv_mac_msg_approver(txt(q, r, 0), txt(q, r, 1), out);
}

static const seal_table seal_tables[] = {
	{"principals",
	 "SELECT id, type, name, admin, disabled, client_id, oidc, metrics FROM principals"
	 " WHERE mac IS "
	 "NULL",
	 "UPDATE principals SET mac = $1 WHERE id = $2", 1, enc_principal},
	{"tokens",
	 "SELECT id, hash, principal_id, kind, expires_at, oidc FROM tokens WHERE mac IS NULL",
	 "UPDATE tokens SET mac = $1 WHERE id = $2", 1, enc_token},
	{"secrets",
	 "SELECT id, client_id, principal_id, secret_hash, expires_at FROM secrets"
	 " WHERE mac IS NULL",
	 "UPDATE secrets SET mac = $1 WHERE id = $2", 1, enc_secret},
	{"members", "SELECT signer_id, principal_id, role FROM members WHERE mac IS NULL",
	 "UPDATE members SET mac = $1 WHERE signer_id = $2 AND principal_id = $3", 2, enc_member},
	{"policies",
	 "SELECT id, name, required_approvals, max_signings, max_window, request_ttl,"
	 " bypass_identities, bypass_claims FROM policies WHERE mac IS NULL",
	 "UPDATE policies SET mac = $1 WHERE id = $2", 1, enc_policy},
	{"policy_approvers",
	 "SELECT policy_id, principal_id FROM policy_approvers WHERE mac IS NULL",
	 "UPDATE policy_approvers SET mac = $1 WHERE policy_id = $2 AND principal_id = $3", 2,
	 enc_approver},
};

static srv_st_rc sql_failed(PGconn *c, const PGresult *res, const char *table)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	rs_err("store: seal_rows: %s: %s", table,
	       res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(c));
	if (PQstatus(c) != CONNECTION_OK || (state && strncmp(state, "08", 2) == 0))
		return SRV_ST_UNAVAILABLE;
	return SRV_ST_FAILED;
}

static srv_st_rc seal_one(pg_store *s, PGconn *c, const seal_table *t, size_t *n)
{
	PGresult *sel = PQexec(c, t->select);
	srv_st_rc r = SRV_ST_OK;

	if (PQresultStatus(sel) != PGRES_TUPLES_OK) {
		r = sql_failed(c, sel, t->table);
		PQclear(sel);
		return r;
	}
	for (int row = 0; row < PQntuples(sel); row++) {
		unsigned char m[SRV_MAC_MSG_MAX];
		char mac[SRV_MAC_HEX];
		const char *v[3];
		size_t len = t->enc(sel, row, m);
		PGresult *upd;

		if (len == 0) {
			rs_err("store: seal_rows: a %s row too long to authenticate: left unsealed "
			       "(it will be refused)",
			       t->table);
			continue;
		}
		if ((r = srv_rowmac_seal(s->mac, m, len, mac)) != SRV_ST_OK)
			break;
		v[0] = mac;
		for (int k = 0; k < t->nkeys; k++)
			v[1 + k] = txt(sel, row, k);
		upd = PQexecParams(c, t->update, 1 + t->nkeys, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(upd) != PGRES_COMMAND_OK ||
		    strtoull(PQcmdTuples(upd), NULL, 10) == 0) {
			r = PQresultStatus(upd) != PGRES_COMMAND_OK ? sql_failed(c, upd, t->table)
								    : SRV_ST_FAILED;
			PQclear(upd);
			break;
		}
		PQclear(upd);
		(*n)++;
	}
	PQclear(sel);
	return r;
}

/* One transaction, under the store-wide write lock: no audited change runs
 * between the reads and the updates. */
srv_st_rc pg_seal_rows(srv_store *st, size_t *n)
{
	static const char op[] = "seal_rows";
	pg_store *s = PGS(st);
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !n || !srv_rowmac_on(s->mac))
		return pg_bad_arg(op);
	*n = 0;
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	if ((r = pg_begin(s, pc, op)) != SRV_ST_OK)
		goto out;
	if ((r = pg_run(s, pc, op, G_WRITE_LOCK, NULL, PGRUN_PLAIN, NULL)) != SRV_ST_OK)
		goto fail;
	for (size_t i = 0; i < sizeof(seal_tables) / sizeof(seal_tables[0]); i++)
		if ((r = seal_one(s, pc->c, &seal_tables[i], n)) != SRV_ST_OK)
			goto fail;
	r = pg_commit(s, pc, op);
	goto out;
fail:
	*n = 0;
	pg_rollback(s, pc, op);
out:
	pg_release(s, pc);
	return r;
}
