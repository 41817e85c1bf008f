/* PostgreSQL storage of keys, certificates, signers (created, changed,
 * retired), their members, and the signing history (see store_pg.c for the
 * pool and helpers). The statements are the SQLite store's
 * (store_sqlite_pki.c) in PostgreSQL's dialect. History records are written
 * one transaction each (PostgreSQL's own group commit batches the flushes of
 * concurrent commits); a record is committed before the op returns OK. */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "server/store/store_pg.h"

#define PURGE_MAX 512 /* "denied" records past their retention deleted per commit */

#define K_COLS "k.id, k.name, k.alg, k.ckid, k.spki, k.created_at"
#define C_COLS                                                                                     \
	"c.id, c.key_id, k.alg, c.common_name, c.serial, c.not_before, c.not_after, "              \
	"c.cert_pem, c.chain_pem, c.created_at"
#define C_FROM " FROM certificates c JOIN keys k ON k.id = c.key_id"
#define S_NAME "coalesce(s.retired_name, s.name)"
#define S_COLS                                                                                     \
	"s.id, " S_NAME ", s.description, s.enabled, s.certificate_id, s.policy_id, "              \
	"s.created_at, s.last_signed_at, k.alg, c.key_id, c.not_before, c.not_after, "             \
	"s.retired_at"
#define S_FROM                                                                                     \
	" FROM signers s JOIN certificates c ON c.id = s.certificate_id JOIN keys k ON k.id = "    \
	"c.key_id"
/* $1 visible_to (NULL = all), $2 operators_only, $3 search (NULL = any),
 * $4 status (NULL = live). strpos() rather than LIKE: no wildcards to
 * escape in the search text. */
#define S_WHERE                                                                                    \
	" WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM members m WHERE m.signer_id = s.id"     \
	" AND m.principal_id = $1::text AND ($2::integer = 0 OR m.role = 'operator')))"            \
	" AND ($3::text IS NULL OR strpos(lower(" S_NAME "), lower($3::text)) > 0)"                \
	" AND (CASE $4::text WHEN 'any' THEN true WHEN 'retired' THEN s.retired_at > 0"            \
	" WHEN 'enabled' THEN s.retired_at = 0 AND s.enabled = 1"                                  \
	" WHEN 'disabled' THEN s.retired_at = 0 AND s.enabled = 0 ELSE s.retired_at = 0 END)"
/* srv_list_filter, each part NULL = any */
#define OP_FILTER                                                                                  \
	" AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR actor_id = $3"            \
	" OR actor_name = $3)"                                                                     \
	" AND ($4::text IS NULL OR replace(algorithm, '_SHA_', '_SHA') = $4)"                      \
	" AND ($5::bigint IS NULL OR created_at >= $5)"                                            \
	" AND ($6::bigint IS NULL OR created_at < $6)"
#define O_COLS                                                                                     \
	"id, signer_id, status, algorithm, data_hash, is_digest, actor_type, actor_id, "           \
	"actor_name, grant_id, client_metadata, source_ip, error_code, created_at, approval, oidc"

/* a record as written: O_COLS and what an Idempotency-Key keeps */
#define O_INS_COLS                                                                                 \
	O_COLS ", idem_key, request_hash, signature, chain_seq, prev_hash, body_hash, hash, seq"
/* $20..$22: the link (pg_chain_args); the chain columns from the CTE h,
 * and the row's seq taken once h holds the head (PG_CHAIN_ROW) */
#define O_INS_VALS                                                                                 \
	" ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,"  \
	" (SELECT seq FROM h), (SELECT prev FROM h), $20, (SELECT hash FROM h), " PG_CHAIN_ROW(    \
		"operations") ")"
#define O_LINK PG_CHAIN_LINK("history", "$21", "$22")

const pg_sql pg_pki_sql[] = {
	{PK_KEY_INSERT, "INSERT INTO keys (id, name, alg, ckid, spki, created_at)"
			" VALUES ($1, $2, $3, $4, $5, $6)"},
	{PK_KEY_GET, "SELECT " K_COLS " FROM keys k" PG_BY_ID_OR_NAME("k")},
	{PK_KEY_LIST, "SELECT " K_COLS " FROM keys k ORDER BY k.name" PG_PAGE("$1", "$2")},
	{PK_KEY_COUNT, "SELECT count(*) FROM keys"},
	{PK_KEY_SPKI,
	 "SELECT " K_COLS " FROM keys k WHERE k.spki = $1 ORDER BY k.created_at LIMIT 1"},
	{PK_CERT_INSERT, "INSERT INTO certificates (id, key_id, common_name, serial, not_before,"
			 " not_after, cert_pem, chain_pem, created_at)"
			 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"},
	{PK_CERT_GET, "SELECT " C_COLS C_FROM " WHERE c.id = $1"},
	{PK_CERT_LIST, "SELECT " C_COLS C_FROM " ORDER BY c.created_at, c.seq" PG_PAGE("$1", "$2")},
	{PK_CERT_COUNT, "SELECT count(*) FROM certificates"},
	{PK_SIGNER_INSERT, "INSERT INTO signers (id, name, description, enabled, certificate_id,"
			   " policy_id, created_at, last_signed_at)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"},
	{PK_SIGNER_GET, "SELECT " S_COLS S_FROM PG_BY_ID_OR_NAME("s")},
	{PK_SIGNER_LIST,
	 "SELECT " S_COLS S_FROM S_WHERE " ORDER BY " S_NAME ", s.id" PG_PAGE("$5", "$6")},
	{PK_SIGNER_COUNT, "SELECT count(*) FROM signers s" S_WHERE},
	{PK_SIGNER_UPDATE, "UPDATE signers SET name = $2, description = $3, enabled = $4,"
			   " certificate_id = $5, policy_id = $6 WHERE id = $1 AND retired_at = 0"},
	{PK_SIGNER_RETIRE, "UPDATE signers SET retired_at = $2, retired_name = name, name = id"
			   " WHERE id = $1 AND retired_at = 0"},
	{PK_SIGNER_EXISTS, "SELECT count(*) FROM signers WHERE id = $1"},
	{PK_SIGNER_POLICY, "SELECT coalesce(policy_id, ''), retired_at FROM signers WHERE id = $1"},
	{PK_MEMBER_SET,
	 "INSERT INTO members (signer_id, principal_id, role, mac) VALUES ($1, $2, $3, $4)"
	 " ON CONFLICT (signer_id, principal_id) DO UPDATE SET role = excluded.role,"
	 " mac = excluded.mac"},
	{PK_MEMBER_DELETE, "DELETE FROM members WHERE signer_id = $1 AND principal_id = $2"},
	{PK_MEMBER_ROLE,
	 "SELECT role, mac FROM members WHERE signer_id = $1 AND principal_id = $2"},
	{PK_MEMBER_LIST, "SELECT " PG_P_COLS ", m.role, m.mac FROM members m"
			 " JOIN principals p ON p.id = m.principal_id"
			 " WHERE m.signer_id = $1 ORDER BY p.name"},
	{PK_OP_INSERT,
	 "WITH h AS (" O_LINK ") INSERT INTO operations (" O_INS_COLS ") VALUES" O_INS_VALS},
	/* the record, its link and last_signed_at in one statement: one round
	 * trip, and atomic without a transaction of its own */
	{PK_OP_INSERT_TOUCH, "WITH h AS (" O_LINK "), op AS (INSERT INTO operations (" O_INS_COLS
			     ") VALUES" O_INS_VALS " RETURNING signer_id, status, created_at)"
			     " UPDATE signers s SET last_signed_at = op.created_at FROM op"
			     " WHERE s.id = op.signer_id AND op.status = 'success'"
			     " AND s.last_signed_at < op.created_at"},
	/* concurrent signs may commit out of created_at order; the guard also
	 * spares the row lock (and the wait on it) when there is nothing to do */
	{PK_OP_LAST_SIGNED,
	 "UPDATE signers SET last_signed_at = $2 WHERE id = $1 AND last_signed_at < $2"},
	{PK_OP_LIST, "SELECT " O_COLS " FROM operations WHERE signer_id = $1"
		     " ORDER BY seq DESC" PG_PAGE("$2", "$3")},
	{PK_OP_COUNT, "SELECT count(*) FROM operations WHERE signer_id = $1"},
	{PK_OP_LIST_STATUS, "SELECT " O_COLS " FROM operations WHERE signer_id = $1"
			    " AND status = $2 ORDER BY seq DESC" PG_PAGE("$3", "$4")},
	{PK_OP_COUNT_STATUS,
	 "SELECT count(*) FROM operations WHERE signer_id = $1 AND status = $2"},
	/* any other filter, as on SQLite: $2..$6 NULL = any */
	{PK_OP_LIST_FILTER, "SELECT " O_COLS " FROM operations WHERE signer_id = $1" OP_FILTER
			    " ORDER BY seq DESC" PG_PAGE("$7", "$8")},
	{PK_OP_COUNT_FILTER, "SELECT count(*) FROM operations WHERE signer_id = $1" OP_FILTER},
	/* a tombstone of the history chain, as on SQLite (store_sqlite_pki.c) */
	{PK_OP_PURGE_DENIED, "UPDATE operations SET purged = 1, signer_id = '', algorithm = '',"
			     " data_hash = '', is_digest = 0, actor_type = '', actor_id = '',"
			     " actor_name = '', grant_id = NULL, client_metadata = '{}',"
			     " source_ip = '', error_code = '', approval = 'none', oidc = NULL"
			     " WHERE seq IN (SELECT seq FROM operations"
			     " WHERE status = 'denied' AND purged = 0 AND created_at < $1"
			     " ORDER BY created_at LIMIT $2)"},
	{PK_KEY_FIND, "SELECT id, signer_id, status, algorithm, actor_id, grant_id, created_at,"
		      " idem_key, request_hash, signature FROM operations"
		      " WHERE actor_id = $1 AND idem_key = $2"},
	{-1, NULL},
};

static int col_alg(const PGresult *res, int r, int i, rs_key_alg *out)
{
	return PQgetisnull(res, r, i) ? -1 : rs_key_alg_parse(PQgetvalue(res, r, i), out);
}

/* A bytea column (text format, hex) into a malloc'd buffer; NULL when none
 * or out of memory. */
static unsigned char *col_bytes(const PGresult *res, int r, int i, size_t *n)
{
	unsigned char *raw, *out = NULL;

	*n = 0;
	if (PQgetisnull(res, r, i))
		return NULL;
	if (!(raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, i), n)))
		return NULL;
	if (*n && (out = malloc(*n)) != NULL)
		memcpy(out, raw, *n);
	else
		*n = 0;
	PQfreemem(raw);
	return out;
}

static srv_st_rc rd_key(const PGresult *res, int r, int c, void *out)
{
	srv_key *k = out;
	unsigned char *ckid;
	size_t n;

	memset(k, 0, sizeof(*k));
	pg_col_copy(res, r, c, k->id, sizeof(k->id));
	if ((ckid = col_bytes(res, r, c + 3, &n)) != NULL)
		memcpy(k->ckid, ckid, n < sizeof(k->ckid) ? n : sizeof(k->ckid));
	free(ckid);
	k->spki = col_bytes(res, r, c + 4, &k->spki_len);
	k->created_at = (time_t)pg_col_ll(res, r, c + 5);
	k->name = pg_col_dup(res, r, c + 1, "");
	if (!k->name || !k->spki || col_alg(res, r, c + 2, &k->alg) != 0) {
		srv_key_clear(k);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_cert(const PGresult *res, int r, int c, void *out)
{
	srv_cert *x = out;

	memset(x, 0, sizeof(*x));
	pg_col_copy(res, r, c, x->id, sizeof(x->id));
	pg_col_copy(res, r, c + 1, x->key_id, sizeof(x->key_id));
	x->not_before = (time_t)pg_col_ll(res, r, c + 5);
	x->not_after = (time_t)pg_col_ll(res, r, c + 6);
	x->created_at = (time_t)pg_col_ll(res, r, c + 9);
	x->common_name = pg_col_dup(res, r, c + 3, "");
	x->serial = pg_col_dup(res, r, c + 4, "");
	x->cert_pem = pg_col_dup(res, r, c + 7, "");
	x->chain_pem = pg_col_dup(res, r, c + 8, "");
	if (!x->common_name || !x->serial || !x->cert_pem || !x->chain_pem ||
	    col_alg(res, r, c + 2, &x->key_alg) != 0) {
		srv_cert_clear(x);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_signer(const PGresult *res, int r, int c, void *out)
{
	srv_signer *x = out;

	memset(x, 0, sizeof(*x));
	pg_col_copy(res, r, c, x->id, sizeof(x->id));
	x->enabled = pg_col_ll(res, r, c + 3) != 0;
	pg_col_copy(res, r, c + 4, x->certificate_id, sizeof(x->certificate_id));
	pg_col_copy(res, r, c + 5, x->policy_id, sizeof(x->policy_id));
	x->created_at = (time_t)pg_col_ll(res, r, c + 6);
	x->last_signed_at = (time_t)pg_col_ll(res, r, c + 7);
	pg_col_copy(res, r, c + 9, x->key_id, sizeof(x->key_id));
	x->cert_not_before = (time_t)pg_col_ll(res, r, c + 10);
	x->cert_not_after = (time_t)pg_col_ll(res, r, c + 11);
	x->retired_at = (time_t)pg_col_ll(res, r, c + 12);
	x->name = pg_col_dup(res, r, c + 1, "");
	x->description = pg_col_dup(res, r, c + 2, "");
	if (!x->name || !x->description || col_alg(res, r, c + 8, &x->key_alg) != 0) {
		srv_signer_clear(x);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_operation(const PGresult *res, int r, int c, void *out)
{
	srv_operation *o = out;

	memset(o, 0, sizeof(*o));
	pg_col_copy(res, r, c, o->id, sizeof(o->id));
	pg_col_copy(res, r, c + 1, o->signer_id, sizeof(o->signer_id));
	pg_col_copy(res, r, c + 2, o->status, sizeof(o->status));
	pg_col_copy(res, r, c + 3, o->algorithm, sizeof(o->algorithm));
	pg_col_copy(res, r, c + 4, o->data_hash, sizeof(o->data_hash));
	o->is_digest = pg_col_ll(res, r, c + 5) != 0;
	pg_col_copy(res, r, c + 6, o->actor_type, sizeof(o->actor_type));
	pg_col_copy(res, r, c + 7, o->actor_id, sizeof(o->actor_id));
	pg_col_copy(res, r, c + 9, o->grant_id, sizeof(o->grant_id));
	pg_col_copy(res, r, c + 11, o->source_ip, sizeof(o->source_ip));
	pg_col_copy(res, r, c + 12, o->error_code, sizeof(o->error_code));
	o->created_at = (time_t)pg_col_ll(res, r, c + 13);
	pg_col_copy(res, r, c + 14, o->approval, sizeof(o->approval));
	o->actor_name = pg_col_dup(res, r, c + 8, "");
	o->client_metadata = pg_col_dup(res, r, c + 10, "{}");
	if (!PQgetisnull(res, r, c + 15))
		o->oidc = pg_col_dup(res, r, c + 15, "");
	if (!o->actor_name || !o->client_metadata || (!PQgetisnull(res, r, c + 15) && !o->oidc)) {
		srv_operation_clear(o);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

typedef struct {
	srv_principal p;
	srv_role role;
	char mac[SRV_MAC_HEX];
	srv_id signer_id; /* set after reading, for the MAC check */
} member_row;

static srv_st_rc rd_member(const PGresult *res, int r, int c, void *out)
{
	member_row *m = out;

	if (pg_rd_principal(res, r, c, &m->p) != SRV_ST_OK)
		return SRV_ST_FAILED;
	if (PQgetisnull(res, r, c + PG_P_NCOLS) ||
	    srv_role_parse(PQgetvalue(res, r, c + PG_P_NCOLS), &m->role) != 0) {
		srv_principal_clear(&m->p);
		return SRV_ST_FAILED;
	}
	pg_col_copy(res, r, c + PG_P_NCOLS + 1, m->mac, sizeof(m->mac));
	return SRV_ST_OK;
}

/* A membership row (signer_id, principal_id, role) against its MAC. */
static srv_st_rc check_member(pg_store *s, const char *signer_id, const char *principal_id,
			      const char *role, const char *mac)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	char row[2 * RS_UUID_LEN + 2];
	size_t n = srv_mac_msg_member(signer_id, principal_id, role, m);

	snprintf(row, sizeof(row), "%.36s/%.36s", signer_id, principal_id);
	return srv_rowmac_check(s->mac, "members", row, m, n, mac);
}

/* Both the membership and the member's principal row. */
static srv_st_rc check_member_rec(pg_store *s, const void *rec)
{
	const member_row *m = rec;
	srv_st_rc r = pg_check_principal(s, &m->p);

	if (r != SRV_ST_OK)
		return r;
	return check_member(s, m->signer_id, m->p.id, srv_role_name(m->role), m->mac);
}

PG_CLEARER(clr_key, srv_key_clear)

PG_CLEARER(clr_cert, srv_cert_clear)

PG_CLEARER(clr_signer, srv_signer_clear)

PG_CLEARER(clr_operation, srv_operation_clear)

static void clr_member(void *p)
{
	srv_principal_clear(&((member_row *)p)->p);
}

static srv_st_rc do_key_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
			       const srv_audit *au)
{
	const srv_key *k = arg;
	pg_args a = {0};

	(void)au;
	a_text(&a, 1, k->id);
	a_text(&a, 2, k->name);
	a_text(&a, 3, rs_key_alg_name(k->alg));
	a_blob(&a, 4, k->ckid, sizeof(k->ckid));
	a_blob(&a, 5, k->spki, k->spki_len);
	a_int(&a, 6, k->created_at);
	return pg_run(s, pc, op, PK_KEY_INSERT, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_key_insert(srv_store *st, const srv_key *k, const srv_audit *a)
{
	const char *alg = NULL;

	if (!st || !k || !k->id[0] || !k->name || !k->name[0] || !k->spki || !k->spki_len ||
	    !(alg = rs_key_alg_name(k->alg)) || !*alg)
		return pg_bad_arg("key_insert");
	return pg_audited(PGS(st), "key_insert", do_key_insert, k, a);
}

srv_st_rc pg_key_get(srv_store *st, const char *id_or_name, srv_key *out)
{
	pg_args a = {0};

	if (!st || !id_or_name)
		return pg_bad_arg("key_get");
	a_text(&a, 1, id_or_name);
	return pg_get(PGS(st), "key_get", PK_KEY_GET, &a, rd_key, out);
}

srv_st_rc pg_key_list(srv_store *st, size_t offset, size_t limit, srv_key **out, size_t *n,
		      size_t *total)
{
	pg_pager pg = {.count = PK_KEY_COUNT,
		       .list = PK_KEY_LIST,
		       .rd = rd_key,
		       .size = sizeof(**out),
		       .clr = clr_key};

	return pg_page(PGS(st), "key_list", &pg, offset, limit, (void **)out, n, total);
}

srv_st_rc pg_key_find_spki(srv_store *st, const unsigned char *spki, size_t len, srv_key *out)
{
	pg_args a = {0};

	if (!st || !spki || !len || !out)
		return pg_bad_arg("key_find_spki");
	a_blob(&a, 1, spki, len);
	return pg_get(PGS(st), "key_find_spki", PK_KEY_SPKI, &a, rd_key, out);
}

static srv_st_rc do_cert_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				const srv_audit *au)
{
	const srv_cert *c = arg;
	pg_args a = {0};

	(void)au;
	a_text(&a, 1, c->id);
	a_text(&a, 2, c->key_id);
	a_text(&a, 3, c->common_name);
	a_text(&a, 4, c->serial);
	a_int(&a, 5, c->not_before);
	a_int(&a, 6, c->not_after);
	a_text(&a, 7, c->cert_pem);
	a_opt(&a, 8, c->chain_pem);
	a_int(&a, 9, c->created_at);
	return pg_run(s, pc, op, PK_CERT_INSERT, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_cert_insert(srv_store *st, const srv_cert *c, const srv_audit *a)
{
	if (!st || !c || !c->id[0] || !c->key_id[0] || !c->cert_pem || !c->cert_pem[0])
		return pg_bad_arg("cert_insert");
	return pg_audited(PGS(st), "cert_insert", do_cert_insert, c, a);
}

srv_st_rc pg_cert_get(srv_store *st, const char *id, srv_cert *out)
{
	pg_args a = {0};

	if (!st || !id)
		return pg_bad_arg("cert_get");
	a_text(&a, 1, id);
	return pg_get(PGS(st), "cert_get", PK_CERT_GET, &a, rd_cert, out);
}

srv_st_rc pg_cert_list(srv_store *st, size_t offset, size_t limit, srv_cert **out, size_t *n,
		       size_t *total)
{
	pg_pager pg = {.count = PK_CERT_COUNT,
		       .list = PK_CERT_LIST,
		       .rd = rd_cert,
		       .size = sizeof(**out),
		       .clr = clr_cert};

	return pg_page(PGS(st), "cert_list", &pg, offset, limit, (void **)out, n, total);
}

/* $1 id, $2 name, $3 description, $4 enabled, $5 certificate_id, $6 policy_id */
static void a_signer(pg_args *a, const srv_signer *x)
{
	a_text(a, 1, x->id);
	a_text(a, 2, x->name);
	a_opt(a, 3, x->description);
	a_int(a, 4, x->enabled ? 1 : 0);
	a_text(a, 5, x->certificate_id);
	a_opt(a, 6, x->policy_id);
}

static srv_st_rc do_signer_insert(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	const srv_signer *x = arg;
	pg_args a = {0};

	(void)au;
	a_signer(&a, x);
	a_int(&a, 7, x->created_at);
	a_int(&a, 8, x->last_signed_at);
	return pg_run(s, pc, op, PK_SIGNER_INSERT, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_signer_insert(srv_store *st, const srv_signer *x, const srv_audit *a)
{
	if (!st || !x || !x->id[0] || !x->name || !x->name[0] || !x->certificate_id[0])
		return pg_bad_arg("signer_insert");
	return pg_audited(PGS(st), "signer_insert", do_signer_insert, x, a);
}

srv_st_rc pg_signer_get(srv_store *st, const char *id_or_name, srv_signer *out)
{
	pg_args a = {0};

	if (!st || !id_or_name)
		return pg_bad_arg("signer_get");
	a_text(&a, 1, id_or_name);
	return pg_get(PGS(st), "signer_get", PK_SIGNER_GET, &a, rd_signer, out);
}

static int signer_status_ok(const char *v)
{
	static const char *const known[] = {"enabled", "disabled", "retired", "any"};

	for (size_t i = 0; v && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(v, known[i]) == 0)
			return 1;
	return !v;
}

srv_st_rc pg_signer_list(srv_store *st, const char *visible_to, int operators_only,
			 const char *search, const char *status, size_t offset, size_t limit,
			 srv_signer **out, size_t *n, size_t *total)
{
	pg_args a = {0};

	/* visible_to "" would match no member; treat it as a bug, not "all" */
	if (!st || (visible_to && !*visible_to) || !signer_status_ok(status))
		return pg_bad_arg("signer_list");
	a_opt(&a, 1, visible_to);
	a_int(&a, 2, operators_only ? 1 : 0);
	a_opt(&a, 3, search);
	a_opt(&a, 4, status);
	pg_pager pg = {.count = PK_SIGNER_COUNT,
		       .list = PK_SIGNER_LIST,
		       .args = &a,
		       .nfilter = 4,
		       .rd = rd_signer,
		       .size = sizeof(**out),
		       .clr = clr_signer};
	return pg_page(PGS(st), "signer_list", &pg, offset, limit, (void **)out, n, total);
}

typedef struct {
	srv_id policy_id;
	time_t retired_at;
} signer_state;

static srv_st_rc rd_signer_state(const PGresult *res, int r, int c, void *out)
{
	signer_state *x = out;

	pg_col_copy(res, r, c, x->policy_id, sizeof(x->policy_id));
	x->retired_at = (time_t)pg_col_ll(res, r, c + 1);
	return SRV_ST_OK;
}

srv_st_rc pg_signer_state(pg_store *s, pg_conn *pc, const char *op, const char *id,
			  char policy_id[RS_UUID_LEN], time_t *retired_at)
{
	signer_state x;
	pg_args a = {0};
	srv_st_rc r;

	memset(&x, 0, sizeof(x));
	a_text(&a, 1, id);
	r = pg_one(s, pc, op, PK_SIGNER_POLICY, &a, rd_signer_state, &x);
	rs_strlcpy(policy_id, x.policy_id, RS_UUID_LEN);
	*retired_at = x.retired_at;
	return r;
}

static srv_st_rc do_signer_update(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	const srv_signer *x = arg;
	char before[RS_UUID_LEN];
	time_t retired = 0;
	pg_args a = {0};
	srv_st_rc r;

	if ((r = pg_signer_state(s, pc, op, x->id, before, &retired)) != SRV_ST_OK)
		return r;
	a_signer(&a, x);
	if ((r = pg_run(s, pc, op, PK_SIGNER_UPDATE, &a, PGRUN_MUST_CHANGE, NULL)) != SRV_ST_OK)
		return r; /* NOT_FOUND: retired */
	if (strcmp(before, x->policy_id) == 0)
		return SRV_ST_OK;
	return pg_end_signer_approvals(s, pc, op, x->id, "policyChanged", au);
}

srv_st_rc pg_signer_update(srv_store *st, const srv_signer *x, const srv_audit *a)
{
	if (!st || !x || !x->id[0] || !x->name || !x->name[0] || !x->certificate_id[0])
		return pg_bad_arg("signer_update");
	return pg_audited(PGS(st), "signer_update", do_signer_update, x, a);
}

static srv_st_rc do_signer_retire(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	const char *id = arg;
	pg_args a = {0};
	srv_st_rc r;

	a_text(&a, 1, id);
	a_int(&a, 2, au->created_at);
	r = pg_run(s, pc, op, PK_SIGNER_RETIRE, &a, PGRUN_MUST_CHANGE, NULL);
	if (r == SRV_ST_NOT_FOUND)
		r = pg_absent_or_conflict(s, pc, op, PK_SIGNER_EXISTS, id);
	if (r != SRV_ST_OK)
		return r;
	return pg_end_signer_approvals(s, pc, op, id, "signerRetired", au);
}

srv_st_rc pg_signer_retire(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id || !*id || !a)
		return pg_bad_arg("signer_retire");
	return pg_audited(PGS(st), "signer_retire", do_signer_retire, id, a);
}

typedef struct {
	const char *signer_id, *principal_id;
	srv_role role;
} member_arg;

static srv_st_rc do_member_set(pg_store *s, pg_conn *pc, const char *op, const void *arg,
			       const srv_audit *au)
{
	const member_arg *x = arg;
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	pg_args a = {0};
	srv_st_rc r;

	(void)au;
	size_t n = srv_mac_msg_member(x->signer_id, x->principal_id, srv_role_name(x->role), m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	a_text(&a, 1, x->signer_id);
	a_text(&a, 2, x->principal_id);
	a_text(&a, 3, srv_role_name(x->role));
	a_opt(&a, 4, mac);
	return pg_run(s, pc, op, PK_MEMBER_SET, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_member_set(srv_store *st, const char *signer_id, const char *principal_id,
			srv_role role, const srv_audit *a)
{
	if (!st || !signer_id || !principal_id ||
	    (role != SRV_ROLE_OPERATOR && role != SRV_ROLE_AUDITOR))
		return pg_bad_arg("member_set");
	member_arg x = {signer_id, principal_id, role};
	return pg_audited(PGS(st), "member_set", do_member_set, &x, a);
}

static srv_st_rc do_member_delete(pg_store *s, pg_conn *pc, const char *op, const void *arg,
				  const srv_audit *au)
{
	const member_arg *x = arg;
	pg_args a = {0};

	(void)au;
	a_text(&a, 1, x->signer_id);
	a_text(&a, 2, x->principal_id);
	return pg_run(s, pc, op, PK_MEMBER_DELETE, &a, PGRUN_MUST_CHANGE | PGRUN_DELETE, NULL);
}

srv_st_rc pg_member_delete(srv_store *st, const char *signer_id, const char *principal_id,
			   const srv_audit *a)
{
	if (!st || !signer_id || !principal_id)
		return pg_bad_arg("member_delete");
	member_arg x = {signer_id, principal_id, SRV_ROLE_NONE};
	return pg_audited(PGS(st), "member_delete", do_member_delete, &x, a);
}

typedef struct {
	char role[16];
	char mac[SRV_MAC_HEX];
} role_row;

static srv_st_rc rd_role(const PGresult *res, int r, int c, void *out)
{
	role_row *x = out;

	pg_col_copy(res, r, c, x->role, sizeof(x->role));
	pg_col_copy(res, r, c + 1, x->mac, sizeof(x->mac));
	return SRV_ST_OK;
}

srv_st_rc pg_member_role(srv_store *st, const char *signer_id, const char *principal_id,
			 srv_role *out)
{
	pg_args a = {0};
	role_row x;
	srv_st_rc r;

	if (!st || !signer_id || !principal_id || !out)
		return pg_bad_arg("member_role");
	*out = SRV_ROLE_NONE;
	a_text(&a, 1, signer_id);
	a_text(&a, 2, principal_id);
	r = pg_get(PGS(st), "member_role", PK_MEMBER_ROLE, &a, rd_role, &x);
	if (r == SRV_ST_OK)
		r = check_member(PGS(st), signer_id, principal_id, x.role, x.mac);
	if (r == SRV_ST_NOT_FOUND) {
		r = SRV_ST_OK; /* not a member, or a membership that fails its MAC */
	} else if (r == SRV_ST_OK && srv_role_parse(x.role, out) != 0) {
		rs_err("store: member_role: unknown role in the database");
		r = SRV_ST_FAILED;
	}
	return r;
}

srv_st_rc pg_member_list(srv_store *st, const char *signer_id, srv_principal **principals,
			 srv_role **roles, size_t *n)
{
	member_row *rows = NULL;
	size_t cnt = 0;
	pg_args a = {0};
	srv_st_rc r;

	if (!st || !signer_id || !principals || !roles || !n)
		return pg_bad_arg("member_list");
	*principals = NULL;
	*roles = NULL;
	*n = 0;
	a_text(&a, 1, signer_id);
	r = pg_get_list(PGS(st), "member_list", PK_MEMBER_LIST, &a, rd_member, sizeof(*rows),
			clr_member, (void **)&rows, &cnt);
	for (size_t i = 0; r == SRV_ST_OK && i < cnt; i++)
		rs_strlcpy(rows[i].signer_id, signer_id, sizeof(rows[i].signer_id));
	if (r == SRV_ST_OK && (r = pg_filter(PGS(st), rows, &cnt, sizeof(*rows), check_member_rec,
					     clr_member)) != SRV_ST_OK) {
		for (size_t i = 0; i < cnt; i++)
			srv_principal_clear(&rows[i].p);
	}
	if (r != SRV_ST_OK || cnt == 0) {
		free(rows);
		return r;
	}
	*principals = malloc(cnt * sizeof(**principals));
	*roles = malloc(cnt * sizeof(**roles));
	if (!*principals || !*roles) {
		rs_err("store: member_list: out of memory");
		for (size_t i = 0; i < cnt; i++)
			srv_principal_clear(&rows[i].p);
		free(*principals);
		free(*roles);
		*principals = NULL;
		*roles = NULL;
		r = SRV_ST_FAILED;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		(*principals)[i] = rows[i].p; /* moves the name */
		(*roles)[i] = rows[i].role;
	}
	*n = cnt;
out:
	free(rows);
	return r;
}

srv_st_rc pg_op_apply(pg_store *s, pg_conn *pc, const char *op, const srv_operation *o,
		      const char *grant_id)
{
	pg_chain_buf buf;
	pg_args a = {0};

	if (pg_a_operation(&a, o, grant_id, &buf) != SRV_ST_OK)
		return SRV_ST_FAILED;
	return pg_run(s, pc, op, PK_OP_INSERT, &a, PGRUN_PLAIN, NULL);
}

srv_st_rc pg_a_operation(pg_args *a, const srv_operation *o, const char *grant_id,
			 pg_chain_buf *buf)
{
	unsigned char body[SRV_CHAIN_LEN];
	srv_operation rec = *o; /* as written: with the grant used */

	rs_strlcpy(rec.grant_id, grant_id ? grant_id : "", sizeof(rec.grant_id));
	if (srv_chain_body_operation(&rec, body) != 0 ||
	    pg_chain_args(a, 20, SRV_CHAIN_HISTORY, o->status, body, buf) != 0) {
		rs_err("store: operation_insert: cannot hash the record");
		return SRV_ST_FAILED;
	}
	a_text(a, 1, o->id);
	a_text(a, 2, o->signer_id);
	a_text(a, 3, o->status);
	a_text(a, 4, o->algorithm);
	a_text(a, 5, o->data_hash);
	a_int(a, 6, o->is_digest ? 1 : 0);
	a_text(a, 7, o->actor_type);
	a_text(a, 8, o->actor_id);
	a_text(a, 9, o->actor_name);
	a_opt(a, 10, grant_id);
	a_text(a, 11, o->client_metadata && *o->client_metadata ? o->client_metadata : "{}");
	a_text(a, 12, o->source_ip);
	a_text(a, 13, o->error_code);
	a_int(a, 14, o->created_at);
	a_text(a, 15, o->approval[0] ? o->approval : "none");
	a_opt(a, 16, o->oidc);
	/* the unique index operations_idem makes a second record of one
	 * actor's key fail (CONFLICT), over every connection */
	a_opt(a, 17, o->idem_key);
	a_opt(a, 18, o->idem_key[0] ? o->request_hash : NULL);
	if (o->idem_key[0])
		a_blob(a, 19, o->signature, o->signature_len);
	else
		a_opt(a, 19, NULL);
	return SRV_ST_OK;
}

static srv_st_rc rd_keyed(const PGresult *res, int r, int c, void *out)
{
	srv_operation *o = out;
	unsigned char *sig;
	size_t n = 0;

	memset(o, 0, sizeof(*o));
	pg_col_copy(res, r, c, o->id, sizeof(o->id));
	pg_col_copy(res, r, c + 1, o->signer_id, sizeof(o->signer_id));
	pg_col_copy(res, r, c + 2, o->status, sizeof(o->status));
	pg_col_copy(res, r, c + 3, o->algorithm, sizeof(o->algorithm));
	pg_col_copy(res, r, c + 4, o->actor_id, sizeof(o->actor_id));
	pg_col_copy(res, r, c + 5, o->grant_id, sizeof(o->grant_id));
	o->created_at = (time_t)pg_col_ll(res, r, c + 6);
	pg_col_copy(res, r, c + 7, o->idem_key, sizeof(o->idem_key));
	pg_col_copy(res, r, c + 8, o->request_hash, sizeof(o->request_hash));
	sig = col_bytes(res, r, c + 9, &n);
	if (n > sizeof(o->signature)) {
		free(sig);
		return SRV_ST_FAILED;
	}
	if (sig && n)
		memcpy(o->signature, sig, n);
	o->signature_len = sig ? n : 0;
	free(sig);
	return SRV_ST_OK;
}

srv_st_rc pg_operation_find_key(srv_store *st, const char *actor_id, const char *key,
				srv_operation *out)
{
	pg_args a = {0};

	if (!st || !actor_id || !key || !*key || !out)
		return pg_bad_arg("operation_find_key");
	a_text(&a, 1, actor_id);
	a_text(&a, 2, key);
	return pg_get(PGS(st), "operation_find_key", PK_KEY_FIND, &a, rd_keyed, out);
}

srv_st_rc pg_key_unused(pg_store *s, pg_conn *pc, const char *op, const srv_operation *o)
{
	srv_operation seen;
	pg_args a = {0};
	srv_st_rc r;

	if (!o->idem_key[0])
		return SRV_ST_OK;
	a_text(&a, 1, o->actor_id);
	a_text(&a, 2, o->idem_key);
	r = pg_one(s, pc, op, PK_KEY_FIND, &a, rd_keyed, &seen);
	if (r == SRV_ST_OK) {
		rs_info("store: %s: the Idempotency-Key was used already", op);
		return SRV_ST_CONFLICT;
	}
	return r == SRV_ST_NOT_FOUND ? SRV_ST_OK : r;
}

/* last_signed_at for a success; with a retention, up to PURGE_MAX "denied"
 * records older than this one by more than the retention go (as on SQLite,
 * where the batch's newest record is the reference). */
srv_st_rc pg_op_after(pg_store *s, pg_conn *pc, const char *op, const srv_operation *o)
{
	long long keep;
	size_t n = 0;
	srv_st_rc r;

	if (strcmp(o->status, "success") == 0) {
		pg_args a = {0};

		a_text(&a, 1, o->signer_id);
		a_int(&a, 2, o->created_at);
		if ((r = pg_run(s, pc, op, PK_OP_LAST_SIGNED, &a, PGRUN_PLAIN, NULL)) != SRV_ST_OK)
			return r;
	}
	pthread_mutex_lock(&s->mu);
	keep = s->denied_retention;
	pthread_mutex_unlock(&s->mu);
	if (!keep)
		return SRV_ST_OK;
	pg_args a = {0};
	a_int(&a, 1, o->created_at - (time_t)keep);
	a_int(&a, 2, PURGE_MAX);
	r = pg_run(s, pc, op, PK_OP_PURGE_DENIED, &a, PGRUN_PLAIN, &n);
	if (r == SRV_ST_OK && n)
		rs_debug("store: %zu denied history records past their retention deleted", n);
	return r;
}

void pg_history_set_retention(srv_store *st, long long denied_seconds)
{
	pg_store *s = PGS(st);

	if (!s || denied_seconds < 0)
		return;
	pthread_mutex_lock(&s->mu);
	s->denied_retention = denied_seconds;
	pthread_mutex_unlock(&s->mu);
}

srv_st_rc pg_operation_insert(srv_store *st, const srv_operation *o)
{
	static const char op[] = "operation_insert";
	pg_store *s = PGS(st);
	pg_conn *pc;
	srv_st_rc r;

	if (!s || !o || !o->id[0] || !o->signer_id[0] ||
	    (o->idem_key[0] && strcmp(o->status, "success") != 0))
		return pg_bad_arg(op);
	pthread_mutex_lock(&s->mu);
	long long keep = s->denied_retention;
	pthread_mutex_unlock(&s->mu);
	if (!keep) /* the common case: the group commit (store_pg_history.c) */
		return pg_history_submit(s, o);
	if ((r = pg_acquire(s, op, &pc)) != SRV_ST_OK)
		return r;
	if ((r = pg_begin(s, pc, op)) != SRV_ST_OK)
		goto out;
	if ((r = pg_op_apply(s, pc, op, o, o->grant_id)) != SRV_ST_OK ||
	    (r = pg_op_after(s, pc, op, o)) != SRV_ST_OK) {
		pg_rollback(s, pc, op);
		goto out;
	}
	r = pg_commit(s, pc, op); /* durable once OK: synchronous_commit stays on */
out:
	if (r == SRV_ST_OK) /* with a retention, each record commits alone */
		rs_metric_observe(&rs_m_commit_batch, 1, NULL);
	pg_release(s, pc);
	return r;
}

srv_st_rc pg_operation_list(srv_store *st, const char *signer_id, const srv_list_filter *f,
			    size_t offset, size_t limit, srv_operation **out, size_t *n,
			    size_t *total)
{
	int by_status = f && f->status && *f->status;
	int all = f && ((f->actor && *f->actor) || (f->algorithm && *f->algorithm) || f->has_from ||
			f->has_to);
	pg_args a = {0};

	if (!st || !signer_id)
		return pg_bad_arg("operation_list");
	a_text(&a, 1, signer_id);
	if (all) {
		a_opt(&a, 2, f->status);
		a_opt(&a, 3, f->actor);
		a_opt(&a, 4, f->algorithm);
		pg_a_range(&a, 5, f);
	} else if (by_status) {
		a_text(&a, 2, f->status);
	}
	pg_pager pg = {.count = all	    ? PK_OP_COUNT_FILTER
				: by_status ? PK_OP_COUNT_STATUS
					    : PK_OP_COUNT,
		       .list = all	   ? PK_OP_LIST_FILTER
			       : by_status ? PK_OP_LIST_STATUS
					   : PK_OP_LIST,
		       .args = &a,
		       .nfilter = all	      ? 6
				  : by_status ? 2
					      : 1,
		       .rd = rd_operation,
		       .size = sizeof(**out),
		       .clr = clr_operation};
	return pg_page(PGS(st), "operation_list", &pg, offset, limit, (void **)out, n, total);
}
