/* SQLite storage of keys, certificates, signers (created, changed,
 * retired), their members, and reads of the signing history (see
 * store_sqlite.c for the connection and helpers; history inserts are
 * store_sqlite_history.c). The sign path runs signer_get and member_role
 * here. */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

#define K_COLS "k.id, k.name, k.alg, k.ckid, k.spki, k.created_at"
#define C_COLS                                                                                     \
	"c.id, c.key_id, k.alg, c.common_name, c.serial, c.not_before, c.not_after, "              \
	"c.cert_pem, c.chain_pem, c.created_at"
#define C_FROM " FROM certificates c JOIN keys k ON k.id = c.key_id"
/* A retired signer's name is in retired_name (its name column holds its id). */
#define S_NAME "coalesce(s.retired_name, s.name)"
#define S_COLS                                                                                     \
	"s.id, " S_NAME ", s.description, s.enabled, s.certificate_id, s.policy_id, "              \
	"s.created_at, s.last_signed_at, k.alg, c.key_id, c.not_before, c.not_after, "             \
	"s.retired_at"
#define S_FROM                                                                                     \
	" FROM signers s JOIN certificates c ON c.id = s.certificate_id JOIN keys k ON k.id = "    \
	"c.key_id"
/* ?1 visible_to (NULL = all), ?2 operators_only, ?3 search (NULL = any),
 * ?4 status (NULL = live). instr() rather than LIKE: no wildcards to escape
 * in the search text. */
#define S_WHERE                                                                                    \
	" WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM members m WHERE m.signer_id = s.id"           \
	" AND m.principal_id = ?1 AND (?2 = 0 OR m.role = 'operator')))"                           \
	" AND (?3 IS NULL OR instr(lower(" S_NAME "), lower(?3)) > 0)"                             \
	" AND (CASE ?4 WHEN 'any' THEN 1 WHEN 'retired' THEN s.retired_at > 0"                     \
	" WHEN 'enabled' THEN s.retired_at = 0 AND s.enabled = 1"                                  \
	" WHEN 'disabled' THEN s.retired_at = 0 AND s.enabled = 0 ELSE s.retired_at = 0 END)"
#define O_COLS                                                                                     \
	"id, signer_id, status, algorithm, data_hash, is_digest, actor_type, actor_id, "           \
	"actor_name, grant_id, client_metadata, source_ip, error_code, created_at, approval, oidc"
/* srv_list_filter, each part NULL = any */
#define OP_FILTER                                                                                  \
	" AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR actor_id = ?3 OR actor_name = ?3)"    \
	" AND (?4 IS NULL OR replace(algorithm, '_SHA_', '_SHA') = ?4)"                            \
	" AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)"

const char *const sq_pki_sql[P_COUNT] = {
	[P_KEY_INSERT] = "INSERT INTO keys (id, name, alg, ckid, spki, created_at)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[P_KEY_GET] = "SELECT " K_COLS " FROM keys k" SQ_BY_ID_OR_NAME("k"),
	[P_KEY_LIST] = "SELECT " K_COLS " FROM keys k ORDER BY k.name" SQ_PAGE,
	[P_KEY_COUNT] = "SELECT count(*) FROM keys",
	[P_KEY_SPKI] =
		"SELECT " K_COLS " FROM keys k WHERE k.spki = ?1 ORDER BY k.created_at LIMIT 1",
	[P_CERT_INSERT] = "INSERT INTO certificates (id, key_id, common_name, serial, not_before,"
			  " not_after, cert_pem, chain_pem, created_at)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[P_CERT_GET] = "SELECT " C_COLS C_FROM " WHERE c.id = ?1",
	[P_CERT_LIST] = "SELECT " C_COLS C_FROM " ORDER BY c.created_at, c.rowid" SQ_PAGE,
	[P_CERT_COUNT] = "SELECT count(*) FROM certificates",
	[P_SIGNER_INSERT] = "INSERT INTO signers (id, name, description, enabled, certificate_id,"
			    " policy_id, created_at, last_signed_at)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[P_SIGNER_GET] = "SELECT " S_COLS S_FROM SQ_BY_ID_OR_NAME("s"),
	[P_SIGNER_LIST] = "SELECT " S_COLS S_FROM S_WHERE " ORDER BY " S_NAME ", s.id" SQ_PAGE,
	[P_SIGNER_COUNT] = "SELECT count(*) FROM signers s" S_WHERE,
	[P_SIGNER_UPDATE] = "UPDATE signers SET name = ?2, description = ?3, enabled = ?4,"
			    " certificate_id = ?5, policy_id = ?6 WHERE id = ?1 AND retired_at = 0",
	[P_SIGNER_RETIRE] = "UPDATE signers SET retired_at = ?2, retired_name = name, name = id"
			    " WHERE id = ?1 AND retired_at = 0",
	[P_SIGNER_EXISTS] = "SELECT count(*) FROM signers WHERE id = ?1",
	[P_SIGNER_POLICY] = "SELECT coalesce(policy_id, ''), retired_at FROM signers WHERE id = ?1",
	[P_MEMBER_SET] =
		"INSERT INTO members (signer_id, principal_id, role, mac) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (signer_id, principal_id) DO UPDATE SET role = excluded.role,"
		" mac = excluded.mac",
	[P_MEMBER_DELETE] = "DELETE FROM members WHERE signer_id = ?1 AND principal_id = ?2",
	[P_MEMBER_ROLE] =
		"SELECT role, mac FROM members WHERE signer_id = ?1 AND principal_id = ?2",
	[P_MEMBER_LIST] = "SELECT " SQ_P_COLS ", m.role, m.mac FROM members m"
			  " JOIN principals p ON p.id = m.principal_id"
			  " WHERE m.signer_id = ?1 ORDER BY p.name",
	[P_OP_INSERT] = "INSERT INTO operations (" O_COLS ", chain_seq, prev_hash, body_hash, hash)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
			" ?16, ?17, ?18, ?19, ?20)",
	/* max(): concurrent signs may commit out of created_at order */
	[P_OP_LAST_SIGNED] =
		"UPDATE signers SET last_signed_at = max(last_signed_at, ?2) WHERE id = ?1",
	/* two statements each, so that both use their own index */
	[P_OP_LIST] = "SELECT " O_COLS " FROM operations WHERE signer_id = ?1"
		      " ORDER BY seq DESC" SQ_PAGE,
	[P_OP_COUNT] = "SELECT count(*) FROM operations WHERE signer_id = ?1",
	[P_OP_LIST_STATUS] = "SELECT " O_COLS " FROM operations WHERE signer_id = ?1"
			     " AND status = ?2 ORDER BY seq DESC" SQ_PAGE,
	[P_OP_COUNT_STATUS] =
		"SELECT count(*) FROM operations WHERE signer_id = ?1 AND status = ?2",
	/* any other filter: ?2..?6 NULL = any (operations_signer does the rest) */
	[P_OP_LIST_FILTER] = "SELECT " O_COLS " FROM operations WHERE signer_id = ?1" OP_FILTER
			     " ORDER BY seq DESC" SQ_PAGE,
	[P_OP_COUNT_FILTER] = "SELECT count(*) FROM operations WHERE signer_id = ?1" OP_FILTER,
	/* the oldest first, at most ?2 of them (operations_denied). A purged
	 * record stays as a tombstone of the history chain: its id, status,
	 * created_at and chain columns are kept, the rest cleared; with no
	 * signer it is in no signer's history. */
	[P_OP_PURGE_DENIED] = "UPDATE operations SET purged = 1, signer_id = '', algorithm = '',"
			      " data_hash = '', is_digest = 0, actor_type = '', actor_id = '',"
			      " actor_name = '', grant_id = NULL, client_metadata = '{}',"
			      " source_ip = '', error_code = '', approval = 'none', oidc = NULL"
			      " WHERE seq IN (SELECT seq FROM operations"
			      " WHERE status = 'denied' AND purged = 0 AND created_at < ?1"
			      " ORDER BY created_at LIMIT ?2)",
};

static int col_alg(sqlite3_stmt *st, int i, rs_key_alg *out)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? rs_key_alg_parse((const char *)t, out) : -1;
}

static srv_st_rc rd_key(sqlite3_stmt *st, int c, void *out)
{
	srv_key *k = out;
	const void *blob;
	size_t n;

	memset(k, 0, sizeof(*k));
	col_copy(st, c, k->id, sizeof(k->id));
	blob = sqlite3_column_blob(st, c + 3); /* blob before bytes, per the SQLite docs */
	n = (size_t)sqlite3_column_bytes(st, c + 3);
	if (blob)
		memcpy(k->ckid, blob, n < sizeof(k->ckid) ? n : sizeof(k->ckid));
	blob = sqlite3_column_blob(st, c + 4);
	n = (size_t)sqlite3_column_bytes(st, c + 4);
	k->created_at = (time_t)sqlite3_column_int64(st, c + 5);
	k->name = col_dup(st, c + 1, "");
	if (blob && n && (k->spki = malloc(n)) != NULL) {
		memcpy(k->spki, blob, n);
		k->spki_len = n;
	}
	if (!k->name || !k->spki || col_alg(st, c + 2, &k->alg) != 0) {
		srv_key_clear(k);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_cert(sqlite3_stmt *st, int c, void *out)
{
	srv_cert *x = out;

	memset(x, 0, sizeof(*x));
	col_copy(st, c, x->id, sizeof(x->id));
	col_copy(st, c + 1, x->key_id, sizeof(x->key_id));
	x->not_before = (time_t)sqlite3_column_int64(st, c + 5);
	x->not_after = (time_t)sqlite3_column_int64(st, c + 6);
	x->created_at = (time_t)sqlite3_column_int64(st, c + 9);
	x->common_name = col_dup(st, c + 3, "");
	x->serial = col_dup(st, c + 4, "");
	x->cert_pem = col_dup(st, c + 7, "");
	x->chain_pem = col_dup(st, c + 8, "");
	if (!x->common_name || !x->serial || !x->cert_pem || !x->chain_pem ||
	    col_alg(st, c + 2, &x->key_alg) != 0) {
		srv_cert_clear(x);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_signer(sqlite3_stmt *st, int c, void *out)
{
	srv_signer *x = out;

	memset(x, 0, sizeof(*x));
	col_copy(st, c, x->id, sizeof(x->id));
	x->enabled = sqlite3_column_int(st, c + 3) != 0;
	col_copy(st, c + 4, x->certificate_id, sizeof(x->certificate_id));
	col_copy(st, c + 5, x->policy_id, sizeof(x->policy_id));
	x->created_at = (time_t)sqlite3_column_int64(st, c + 6);
	x->last_signed_at = (time_t)sqlite3_column_int64(st, c + 7);
	col_copy(st, c + 9, x->key_id, sizeof(x->key_id));
	x->cert_not_before = (time_t)sqlite3_column_int64(st, c + 10);
	x->cert_not_after = (time_t)sqlite3_column_int64(st, c + 11);
	x->retired_at = (time_t)sqlite3_column_int64(st, c + 12);
	x->name = col_dup(st, c + 1, "");
	x->description = col_dup(st, c + 2, "");
	if (!x->name || !x->description || col_alg(st, c + 8, &x->key_alg) != 0) {
		srv_signer_clear(x);
		return SRV_ST_FAILED;
	}
	return SRV_ST_OK;
}

static srv_st_rc rd_operation(sqlite3_stmt *st, int c, void *out)
{
	srv_operation *o = out;

	memset(o, 0, sizeof(*o));
	col_copy(st, c, o->id, sizeof(o->id));
	col_copy(st, c + 1, o->signer_id, sizeof(o->signer_id));
	col_copy(st, c + 2, o->status, sizeof(o->status));
	col_copy(st, c + 3, o->algorithm, sizeof(o->algorithm));
	col_copy(st, c + 4, o->data_hash, sizeof(o->data_hash));
	o->is_digest = sqlite3_column_int(st, c + 5) != 0;
	col_copy(st, c + 6, o->actor_type, sizeof(o->actor_type));
	col_copy(st, c + 7, o->actor_id, sizeof(o->actor_id));
	col_copy(st, c + 9, o->grant_id, sizeof(o->grant_id));
	col_copy(st, c + 11, o->source_ip, sizeof(o->source_ip));
	col_copy(st, c + 12, o->error_code, sizeof(o->error_code));
	o->created_at = (time_t)sqlite3_column_int64(st, c + 13);
	col_copy(st, c + 14, o->approval, sizeof(o->approval));
	o->actor_name = col_dup(st, c + 8, "");
	o->client_metadata = col_dup(st, c + 10, "{}");
	if (sqlite3_column_type(st, c + 15) != SQLITE_NULL)
		o->oidc = col_dup(st, c + 15, "");
	if (!o->actor_name || !o->client_metadata ||
	    (sqlite3_column_type(st, c + 15) != SQLITE_NULL && !o->oidc)) {
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

static srv_st_rc rd_member(sqlite3_stmt *st, int c, void *out)
{
	member_row *m = out;
	const unsigned char *t = sqlite3_column_text(st, c + SQ_P_NCOLS);

	if (sq_rd_principal(st, c, &m->p) != SRV_ST_OK)
		return SRV_ST_FAILED;
	if (!t || srv_role_parse((const char *)t, &m->role) != 0) {
		srv_principal_clear(&m->p);
		return SRV_ST_FAILED;
	}
	col_copy(st, c + SQ_P_NCOLS + 1, m->mac, sizeof(m->mac));
	return SRV_ST_OK;
}

/* A membership row (signer_id, principal_id, role) against its MAC. */
static srv_st_rc check_member(sq_store *s, const char *signer_id, const char *principal_id,
			      const char *role, const char *mac)
{
	unsigned char m[SRV_MAC_MSG_MAX];
	char row[2 * RS_UUID_LEN + 2];
	size_t n = srv_mac_msg_member(signer_id, principal_id, role, m);

	snprintf(row, sizeof(row), "%.36s/%.36s", signer_id, principal_id);
	return srv_rowmac_check(s->mac, "members", row, m, n, mac);
}

/* Both the membership and the member's principal row. */
static srv_st_rc check_member_rec(sq_store *s, const void *rec);

SQ_CLEARER(clr_key, srv_key_clear)

SQ_CLEARER(clr_cert, srv_cert_clear)

SQ_CLEARER(clr_signer, srv_signer_clear)

SQ_CLEARER(clr_operation, srv_operation_clear)

static void clr_member(void *p)
{
	srv_principal_clear(&((member_row *)p)->p);
}

static srv_st_rc do_key_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const srv_key *k = arg;
	sqlite3_stmt *q = s->p[P_KEY_INSERT];
	int brc = SQLITE_OK;

	(void)a;
	b_text(q, 1, k->id, &brc);
	b_text(q, 2, k->name, &brc);
	b_text(q, 3, rs_key_alg_name(k->alg), &brc);
	b_blob(q, 4, k->ckid, sizeof(k->ckid), &brc);
	b_blob(q, 5, k->spki, k->spki_len, &brc);
	b_int(q, 6, k->created_at, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

srv_st_rc sq_key_insert(srv_store *st, const srv_key *k, const srv_audit *a)
{
	const char *alg = NULL;

	if (!st || !k || !k->id[0] || !k->name || !k->name[0] || !k->spki || !k->spki_len ||
	    !(alg = rs_key_alg_name(k->alg)) || !*alg)
		return sq_bad_arg("key_insert");
	return sq_audited(SQ(st), "key_insert", do_key_insert, k, a);
}

srv_st_rc sq_key_get(srv_store *st, const char *id_or_name, srv_key *out)
{
	if (!st)
		return sq_bad_arg("key_get");
	return sq_get(SQ(st), "key_get", SQ(st)->p[P_KEY_GET], id_or_name, rd_key, out);
}

srv_st_rc sq_key_list(srv_store *st, size_t offset, size_t limit, srv_key **out, size_t *n,
		      size_t *total)
{
	if (!st)
		return sq_bad_arg("key_list");
	sq_pager pg = {.count = SQ(st)->p[P_KEY_COUNT],
		       .list = SQ(st)->p[P_KEY_LIST],
		       .rd = rd_key,
		       .size = sizeof(**out),
		       .clr = clr_key};
	return sq_page(SQ(st), "key_list", &pg, offset, limit, (void **)out, n, total);
}

srv_st_rc sq_key_find_spki(srv_store *st, const unsigned char *spki, size_t len, srv_key *out)
{
	sq_store *s = SQ(st);
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !spki || !len || !out)
		return sq_bad_arg("key_find_spki");
	sq_lock(s);
	b_blob(s->p[P_KEY_SPKI], 1, spki, len, &brc);
	r = sq_one(s, "key_find_spki", s->p[P_KEY_SPKI], brc, rd_key, out);
	sq_unlock(s);
	return r;
}

static srv_st_rc do_cert_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const srv_cert *c = arg;
	sqlite3_stmt *q = s->p[P_CERT_INSERT];
	int brc = SQLITE_OK;

	(void)a;
	b_text(q, 1, c->id, &brc);
	b_text(q, 2, c->key_id, &brc);
	b_text(q, 3, c->common_name, &brc);
	b_text(q, 4, c->serial, &brc);
	b_int(q, 5, c->not_before, &brc);
	b_int(q, 6, c->not_after, &brc);
	b_text(q, 7, c->cert_pem, &brc);
	b_opt(q, 8, c->chain_pem, &brc);
	b_int(q, 9, c->created_at, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

/* c->key_alg is ignored: it is joined from the key on reads. */
srv_st_rc sq_cert_insert(srv_store *st, const srv_cert *c, const srv_audit *a)
{
	if (!st || !c || !c->id[0] || !c->key_id[0] || !c->cert_pem || !c->cert_pem[0])
		return sq_bad_arg("cert_insert");
	return sq_audited(SQ(st), "cert_insert", do_cert_insert, c, a);
}

srv_st_rc sq_cert_get(srv_store *st, const char *id, srv_cert *out)
{
	if (!st)
		return sq_bad_arg("cert_get");
	return sq_get(SQ(st), "cert_get", SQ(st)->p[P_CERT_GET], id, rd_cert, out);
}

srv_st_rc sq_cert_list(srv_store *st, size_t offset, size_t limit, srv_cert **out, size_t *n,
		       size_t *total)
{
	if (!st)
		return sq_bad_arg("cert_list");
	sq_pager pg = {.count = SQ(st)->p[P_CERT_COUNT],
		       .list = SQ(st)->p[P_CERT_LIST],
		       .rd = rd_cert,
		       .size = sizeof(**out),
		       .clr = clr_cert};
	return sq_page(SQ(st), "cert_list", &pg, offset, limit, (void **)out, n, total);
}

/* Binds the columns signer_insert and signer_update share: ?1 id, ?2 name,
 * ?3 description, ?4 enabled, ?5 certificate_id, ?6 policy_id. */
static void b_signer(sqlite3_stmt *q, const srv_signer *x, int *brc)
{
	b_text(q, 1, x->id, brc);
	b_text(q, 2, x->name, brc);
	b_opt(q, 3, x->description, brc);
	b_int(q, 4, x->enabled ? 1 : 0, brc);
	b_text(q, 5, x->certificate_id, brc);
	b_opt(q, 6, x->policy_id, brc);
}

static srv_st_rc do_signer_insert(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const srv_signer *x = arg;
	sqlite3_stmt *q = s->p[P_SIGNER_INSERT];
	int brc = SQLITE_OK;

	(void)a;
	b_signer(q, x, &brc);
	b_int(q, 7, x->created_at, &brc);
	b_int(q, 8, x->last_signed_at, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

srv_st_rc sq_signer_insert(srv_store *st, const srv_signer *x, const srv_audit *a)
{
	if (!st || !x || !x->id[0] || !x->name || !x->name[0] || !x->certificate_id[0])
		return sq_bad_arg("signer_insert");
	return sq_audited(SQ(st), "signer_insert", do_signer_insert, x, a);
}

srv_st_rc sq_signer_get(srv_store *st, const char *id_or_name, srv_signer *out)
{
	if (!st)
		return sq_bad_arg("signer_get");
	return sq_get(SQ(st), "signer_get", SQ(st)->p[P_SIGNER_GET], id_or_name, rd_signer, out);
}

typedef struct {
	const char *visible_to, *search, *status;
	int operators_only;
} signer_filter;

static void b_signer_filter(sqlite3_stmt *q, const void *filter, int *brc)
{
	const signer_filter *f = filter;

	b_opt(q, 1, f->visible_to, brc);
	b_int(q, 2, f->operators_only ? 1 : 0, brc);
	b_opt(q, 3, f->search, brc);
	b_opt(q, 4, f->status, brc);
}

static int signer_status_ok(const char *v)
{
	static const char *const known[] = {"enabled", "disabled", "retired", "any"};

	for (size_t i = 0; v && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(v, known[i]) == 0)
			return 1;
	return !v;
}

srv_st_rc sq_signer_list(srv_store *st, const char *visible_to, int operators_only,
			 const char *search, const char *status, size_t offset, size_t limit,
			 srv_signer **out, size_t *n, size_t *total)
{
	/* visible_to "" would match no member; treat it as a bug, not "all" */
	if (!st || (visible_to && !*visible_to) || !signer_status_ok(status))
		return sq_bad_arg("signer_list");
	signer_filter f = {visible_to, search, status, operators_only};
	sq_pager pg = {.count = SQ(st)->p[P_SIGNER_COUNT],
		       .list = SQ(st)->p[P_SIGNER_LIST],
		       .bind = b_signer_filter,
		       .filter = &f,
		       .rd = rd_signer,
		       .size = sizeof(**out),
		       .clr = clr_signer};
	return sq_page(SQ(st), "signer_list", &pg, offset, limit, (void **)out, n, total);
}

typedef struct {
	srv_id policy_id; /* "" = none */
	time_t retired_at;
} signer_state;

static srv_st_rc rd_signer_state(sqlite3_stmt *st, int c, void *out)
{
	signer_state *x = out;

	col_copy(st, c, x->policy_id, sizeof(x->policy_id));
	x->retired_at = (time_t)sqlite3_column_int64(st, c + 1);
	return SRV_ST_OK;
}

/* The signer's policy and retirement, inside the caller's transaction:
 * NOT_FOUND when there is no such signer. */
srv_st_rc sq_signer_state(sq_store *s, const char *op, const char *id, char policy_id[RS_UUID_LEN],
			  time_t *retired_at)
{
	signer_state x;
	int brc = SQLITE_OK;
	srv_st_rc r;

	memset(&x, 0, sizeof(x));
	b_text(s->p[P_SIGNER_POLICY], 1, id, &brc);
	r = sq_one(s, op, s->p[P_SIGNER_POLICY], brc, rd_signer_state, &x);
	rs_strlcpy(policy_id, x.policy_id, RS_UUID_LEN);
	*retired_at = x.retired_at;
	return r;
}

/* A new policy (or none) ends what approvals under the old one gave. */
static srv_st_rc do_signer_update(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const srv_signer *x = arg;
	char before[RS_UUID_LEN];
	time_t retired = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if ((r = sq_signer_state(s, op, x->id, before, &retired)) != SRV_ST_OK)
		return r;
	b_signer(s->p[P_SIGNER_UPDATE], x, &brc);
	if ((r = sq_run(s, op, s->p[P_SIGNER_UPDATE], brc, RUN_MUST_CHANGE)) != SRV_ST_OK)
		return r; /* NOT_FOUND: retired */
	if (strcmp(before, x->policy_id) == 0)
		return SRV_ST_OK;
	return sq_end_signer_approvals(s, op, x->id, "policyChanged", a);
}

srv_st_rc sq_signer_update(srv_store *st, const srv_signer *x, const srv_audit *a)
{
	if (!st || !x || !x->id[0] || !x->name || !x->name[0] || !x->certificate_id[0])
		return sq_bad_arg("signer_update");
	return sq_audited(SQ(st), "signer_update", do_signer_update, x, a);
}

/* memberships, history and certificate stay: its auditors still read them */
static srv_st_rc do_signer_retire(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const char *id = arg;
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_text(s->p[P_SIGNER_RETIRE], 1, id, &brc);
	b_int(s->p[P_SIGNER_RETIRE], 2, a->created_at, &brc);
	r = sq_run(s, op, s->p[P_SIGNER_RETIRE], brc, RUN_MUST_CHANGE);
	if (r == SRV_ST_NOT_FOUND)
		r = sq_absent_or_conflict(s, op, s->p[P_SIGNER_EXISTS], id);
	if (r != SRV_ST_OK)
		return r;
	return sq_end_signer_approvals(s, op, id, "signerRetired", a);
}

srv_st_rc sq_signer_retire(srv_store *st, const char *id, const srv_audit *a)
{
	if (!st || !id || !*id || !a)
		return sq_bad_arg("signer_retire");
	return sq_audited(SQ(st), "signer_retire", do_signer_retire, id, a);
}

typedef struct {
	const char *signer_id, *principal_id;
	srv_role role;
} member_arg;

/* Adds or changes a membership. NOT_FOUND when the signer or principal is gone. */
static srv_st_rc do_member_set(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const member_arg *x = arg;
	sqlite3_stmt *q = s->p[P_MEMBER_SET];
	unsigned char m[SRV_MAC_MSG_MAX];
	char mac[SRV_MAC_HEX];
	int brc = SQLITE_OK;
	srv_st_rc r;

	(void)a;
	size_t n = srv_mac_msg_member(x->signer_id, x->principal_id, srv_role_name(x->role), m);
	if ((r = srv_rowmac_seal(s->mac, m, n, mac)) != SRV_ST_OK)
		return r;
	b_text(q, 1, x->signer_id, &brc);
	b_text(q, 2, x->principal_id, &brc);
	b_text(q, 3, srv_role_name(x->role), &brc);
	b_opt(q, 4, mac, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

srv_st_rc sq_member_set(srv_store *st, const char *signer_id, const char *principal_id,
			srv_role role, const srv_audit *a)
{
	if (!st || !signer_id || !principal_id ||
	    (role != SRV_ROLE_OPERATOR && role != SRV_ROLE_AUDITOR))
		return sq_bad_arg("member_set");
	member_arg x = {signer_id, principal_id, role};
	return sq_audited(SQ(st), "member_set", do_member_set, &x, a);
}

static srv_st_rc do_member_delete(sq_store *s, const char *op, const void *arg, const srv_audit *a)
{
	const member_arg *x = arg;
	sqlite3_stmt *q = s->p[P_MEMBER_DELETE];
	int brc = SQLITE_OK;

	(void)a;
	b_text(q, 1, x->signer_id, &brc);
	b_text(q, 2, x->principal_id, &brc);
	return sq_run(s, op, q, brc, RUN_MUST_CHANGE | RUN_DELETE);
}

srv_st_rc sq_member_delete(srv_store *st, const char *signer_id, const char *principal_id,
			   const srv_audit *a)
{
	if (!st || !signer_id || !principal_id)
		return sq_bad_arg("member_delete");
	member_arg x = {signer_id, principal_id, SRV_ROLE_NONE};
	return sq_audited(SQ(st), "member_delete", do_member_delete, &x, a);
}

typedef struct {
	char role[16];
	char mac[SRV_MAC_HEX];
} role_row;

static srv_st_rc rd_role(sqlite3_stmt *st, int c, void *out)
{
	role_row *x = out;

	col_copy(st, c, x->role, sizeof(x->role));
	col_copy(st, c + 1, x->mac, sizeof(x->mac));
	return SRV_ST_OK;
}

static srv_st_rc check_member_rec(sq_store *s, const void *rec)
{
	const member_row *m = rec;
	srv_st_rc r = sq_check_principal(s, &m->p);

	if (r != SRV_ST_OK)
		return r;
	return check_member(s, m->signer_id, m->p.id, srv_role_name(m->role), m->mac);
}

srv_st_rc sq_member_role(srv_store *st, const char *signer_id, const char *principal_id,
			 srv_role *out)
{
	sq_store *s = SQ(st);
	sqlite3_stmt *q;
	role_row x;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !signer_id || !principal_id || !out)
		return sq_bad_arg("member_role");
	*out = SRV_ROLE_NONE;
	sq_lock(s);
	q = s->p[P_MEMBER_ROLE];
	b_text(q, 1, signer_id, &brc);
	b_text(q, 2, principal_id, &brc);
	r = sq_one(s, "member_role", q, brc, rd_role, &x);
	sq_unlock(s);
	if (r == SRV_ST_OK)
		r = check_member(s, signer_id, principal_id, x.role, x.mac);
	if (r == SRV_ST_NOT_FOUND) {
		r = SRV_ST_OK; /* not a member, or a membership that fails its MAC */
	} else if (r == SRV_ST_OK && srv_role_parse(x.role, out) != 0) {
		rs_err("store: member_role: unknown role in the database");
		r = SRV_ST_FAILED;
	}
	return r;
}

srv_st_rc sq_member_list(srv_store *st, const char *signer_id, srv_principal **principals,
			 srv_role **roles, size_t *n)
{
	sq_store *s = SQ(st);
	member_row *rows = NULL;
	size_t cnt = 0;
	int brc = SQLITE_OK;
	srv_st_rc r;

	if (!s || !signer_id || !principals || !roles || !n)
		return sq_bad_arg("member_list");
	*principals = NULL;
	*roles = NULL;
	*n = 0;
	sq_lock(s);
	b_text(s->p[P_MEMBER_LIST], 1, signer_id, &brc);
	r = sq_list(s, "member_list", s->p[P_MEMBER_LIST], brc, rd_member, sizeof(*rows),
		    clr_member, (void **)&rows, &cnt);
	sq_unlock(s);
	for (size_t i = 0; r == SRV_ST_OK && i < cnt; i++)
		rs_strlcpy(rows[i].signer_id, signer_id, sizeof(rows[i].signer_id));
	if (r == SRV_ST_OK && (r = sq_filter(s, rows, &cnt, sizeof(*rows), check_member_rec,
					     clr_member)) != SRV_ST_OK) {
		for (size_t i = 0; i < cnt; i++)
			srv_principal_clear(&rows[i].p);
		free(rows);
		return r;
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

/* Binds every column of the history insert (P_OP_INSERT) for o, with
 * grant_id in place of o->grant_id. */
static void sq_bind_operation(sqlite3_stmt *q, const srv_operation *o, const char *grant_id,
			      int *brc)
{
	b_text(q, 1, o->id, brc);
	b_text(q, 2, o->signer_id, brc);
	b_text(q, 3, o->status, brc);
	b_text(q, 4, o->algorithm, brc);
	b_text(q, 5, o->data_hash, brc);
	b_int(q, 6, o->is_digest ? 1 : 0, brc);
	b_text(q, 7, o->actor_type, brc);
	b_text(q, 8, o->actor_id, brc);
	b_text(q, 9, o->actor_name, brc);
	b_opt(q, 10, grant_id, brc);
	b_text(q, 11, o->client_metadata && *o->client_metadata ? o->client_metadata : "{}", brc);
	b_text(q, 12, o->source_ip, brc);
	b_text(q, 13, o->error_code, brc);
	b_int(q, 14, o->created_at, brc);
	b_text(q, 15, o->approval[0] ? o->approval : "none", brc);
	b_opt(q, 16, o->oidc, brc);
}

/* The row of one history record, inside the caller's transaction
 * (store_sqlite_history.c commits, and sets last_signed_at once per signer
 * and batch with sq_op_touch_signer), linked to the history chain at
 * s->hchain (which the batch began). */
srv_st_rc sq_op_apply(sq_store *s, const char *op, const srv_operation *o, const char *grant_id)
{
	sqlite3_stmt *q = s->p[P_OP_INSERT];
	unsigned char body[SRV_CHAIN_LEN];
	sq_chain_cur before = s->hchain;
	sq_chain_link l;
	srv_operation rec = *o; /* as written: with the grant used */
	int brc = SQLITE_OK;
	srv_st_rc r;

	rs_strlcpy(rec.grant_id, grant_id ? grant_id : "", sizeof(rec.grant_id));
	if (srv_chain_body_operation(&rec, body) != 0 ||
	    sq_chain_next(&s->hchain, o->status, body, &l) != SRV_ST_OK) {
		rs_err("store: %s: cannot hash the record", op);
		return SRV_ST_FAILED;
	}
	sq_bind_operation(q, o, grant_id, &brc);
	b_int(q, 17, l.seq, &brc);
	b_text(q, 18, l.prev, &brc);
	b_text(q, 19, l.body, &brc);
	b_text(q, 20, l.hash, &brc);
	if ((r = sq_run(s, op, q, brc, RUN_PLAIN)) != SRV_ST_OK)
		s->hchain = before; /* no record, no link */
	return r;
}

srv_st_rc sq_op_purge_denied(sq_store *s, const char *op, time_t before, int max, size_t *n)
{
	sqlite3_stmt *q = s->p[P_OP_PURGE_DENIED];
	int brc = SQLITE_OK;
	srv_st_rc r;

	b_int(q, 1, before, &brc);
	b_int(q, 2, max, &brc);
	r = sq_run(s, op, q, brc, RUN_PLAIN);
	*n = r == SRV_ST_OK ? (size_t)sqlite3_changes(s->db) : 0;
	return r;
}

srv_st_rc sq_op_touch_signer(sq_store *s, const char *op, const char *signer_id, time_t t)
{
	sqlite3_stmt *q = s->p[P_OP_LAST_SIGNED];
	int brc = SQLITE_OK;

	b_text(q, 1, signer_id, &brc);
	b_int(q, 2, t, &brc);
	return sq_run(s, op, q, brc, RUN_PLAIN);
}

typedef struct {
	const char *signer_id;
	const srv_list_filter *f; /* NULL: P_OP_LIST; f->status only: *_STATUS */
	int all;		  /* P_OP_*_FILTER */
} op_filter;

static void b_op_filter(sqlite3_stmt *q, const void *filter, int *brc)
{
	const op_filter *f = filter;

	b_text(q, 1, f->signer_id, brc);
	if (f->all) {
		b_opt(q, 2, f->f->status, brc);
		b_opt(q, 3, f->f->actor, brc);
		b_opt(q, 4, f->f->algorithm, brc);
		b_range(q, 5, f->f, brc);
	} else if (f->f) {
		b_text(q, 2, f->f->status, brc);
	}
}

srv_st_rc sq_operation_list(srv_store *st, const char *signer_id, const srv_list_filter *lf,
			    size_t offset, size_t limit, srv_operation **out, size_t *n,
			    size_t *total)
{
	sq_store *s = SQ(st);
	int by_status = lf && lf->status && *lf->status;
	int all = lf && ((lf->actor && *lf->actor) || (lf->algorithm && *lf->algorithm) ||
			 lf->has_from || lf->has_to);

	if (!s || !signer_id)
		return sq_bad_arg("operation_list");
	op_filter f = {signer_id, by_status || all ? lf : NULL, all};
	int count = all ? P_OP_COUNT_FILTER : by_status ? P_OP_COUNT_STATUS : P_OP_COUNT;
	int list = all ? P_OP_LIST_FILTER : by_status ? P_OP_LIST_STATUS : P_OP_LIST;
	sq_pager pg = {.count = s->p[count],
		       .list = s->p[list],
		       .bind = b_op_filter,
		       .filter = &f,
		       .rd = rd_operation,
		       .size = sizeof(**out),
		       .clr = clr_operation};
	return sq_page(s, "operation_list", &pg, offset, limit, (void **)out, n, total);
}
