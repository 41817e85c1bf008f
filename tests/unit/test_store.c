/* Unit tests of the storage (server/store/store_sqlite*.c, store_pg*.c):
 * migrations, every op's round trip, visibility rules, cascades, retired
 * signers, history and the retention of its denied records, concurrency.
 * The same body runs on SQLite (files in a temporary directory removed at
 * the end) and, run by tests/lib/with-pg, on PostgreSQL (store_backend.c);
 * only opening and the schema checks differ. (Audit entries and their
 * atomicity: test_store_policy.c.) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <openssl/evp.h>
#include "rsign/buf.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/metrics.h"
#include "rsign/util.h"
#include "server/store/store.h"
#include "server/store/store_chain.h"
#define GENESIS_HEX "0000000000000000000000000000000000000000000000000000000000000000"
#include "server/store/store_pg.h"
#include "server/store/store_sqlite.h"
#include "store_backend.h"
#include "tap.h"

#define NOW ((time_t)1800000000)

static char tmpdir[] = "/tmp/rsign-test-store.XXXXXX";
static char dbpath[1024]; /* the main database's path or URI */

/* Ids are fixed so failures are readable. */
#define ID_ADMIN "00000000-0000-4000-8000-000000000001"
#define ID_ALICE "00000000-0000-4000-8000-000000000002"
#define ID_BOB "00000000-0000-4000-8000-000000000003"
#define ID_CI "00000000-0000-4000-8000-000000000004"
#define ID_METRICS "00000000-0000-4000-8000-000000000005"
#define ID_KEY1 "00000000-0000-4000-8000-000000000101"
#define ID_KEY2 "00000000-0000-4000-8000-000000000102"
#define ID_CERT1 "00000000-0000-4000-8000-000000000201"
#define ID_CERT2 "00000000-0000-4000-8000-000000000202"
#define ID_S_ALPHA "00000000-0000-4000-8000-000000000301"
#define ID_S_BRAVO "00000000-0000-4000-8000-000000000302"
#define ID_S_CHARLIE "00000000-0000-4000-8000-000000000303"
#define ID_S_DELTA "00000000-0000-4000-8000-000000000304"
#define ID_S_ECHO "00000000-0000-4000-8000-000000000305"
#define ID_S_PCT "00000000-0000-4000-8000-000000000306"

/* The audit entry of every change a test makes (the store refuses a change
 * without one); its created_at is the change's "now". */
static const srv_audit AUD = {.actor_id = ID_ADMIN,
			      .action = "test.change",
			      .object_type = "test",
			      .object_id = "fixture",
			      .created_at = NOW};

static const unsigned char spki1[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce};
static const unsigned char spki2[] = {0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a};

/* ---- raw peeks, on a second connection (store_backend.c) --------------- */

static long long sql_int(const char *sql)
{
	return tb_sql_int("rsign", sql);
}

static int wal_is_private(void)
{
	char p[1100];
	struct stat sb;

	snprintf(p, sizeof(p), "%s-wal", dbpath);
	return stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600;
}

/* The same on database db ("cred": tb_target names it per backend). */
static long long sql_int_on(const char *db, const char *sql)
{
	return tb_sql_int(db, sql);
}

static int sql_exec_on(const char *db, const char *sql)
{
	return tb_sql_exec(db, sql);
}

/* ---- record builders --------------------------------------------------- */

static srv_st_rc add_principal(srv_store *st, const char *id, const char *type, const char *name,
			       int admin, const char *client_id)
{
	srv_principal p;

	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, id, sizeof(p.id));
	rs_strlcpy(p.type, type, sizeof(p.type));
	p.name = (char *)name;
	p.admin = admin;
	rs_strlcpy(p.client_id, client_id ? client_id : "", sizeof(p.client_id));
	p.created_at = NOW;
	return st->ops->principal_insert(st, &p, NULL, &AUD);
}

static srv_st_rc add_key(srv_store *st, const char *id, const char *name, rs_key_alg alg,
			 const unsigned char *spki, size_t len, unsigned char ckid0)
{
	srv_key k;

	memset(&k, 0, sizeof(k));
	rs_strlcpy(k.id, id, sizeof(k.id));
	k.name = (char *)name;
	k.alg = alg;
	for (size_t i = 0; i < sizeof(k.ckid); i++)
		k.ckid[i] = (unsigned char)(ckid0 + i);
	k.spki = (unsigned char *)spki;
	k.spki_len = len;
	k.created_at = NOW;
	return st->ops->key_insert(st, &k, &AUD);
}

static srv_st_rc add_cert(srv_store *st, const char *id, const char *key_id, const char *chain,
			  time_t nb, time_t na)
{
	srv_cert c;

	memset(&c, 0, sizeof(c));
	rs_strlcpy(c.id, id, sizeof(c.id));
	rs_strlcpy(c.key_id, key_id, sizeof(c.key_id));
	c.common_name = "Example Code Signing";
	c.serial = "0a1b2c";
	c.not_before = nb;
	c.not_after = na;
	c.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	c.chain_pem = (char *)chain;
	c.created_at = NOW;
	return st->ops->cert_insert(st, &c, &AUD);
}

static srv_st_rc add_signer(srv_store *st, const char *id, const char *name, const char *desc,
			    const char *cert_id)
{
	srv_signer s;

	memset(&s, 0, sizeof(s));
	rs_strlcpy(s.id, id, sizeof(s.id));
	s.name = (char *)name;
	s.description = (char *)desc;
	s.enabled = 1;
	rs_strlcpy(s.certificate_id, cert_id, sizeof(s.certificate_id));
	s.created_at = NOW;
	return st->ops->signer_insert(st, &s, &AUD);
}

static void fill_op(srv_operation *o, const char *id, const char *signer_id, const char *status,
		    time_t at)
{
	memset(o, 0, sizeof(*o));
	rs_strlcpy(o->id, id, sizeof(o->id));
	rs_strlcpy(o->signer_id, signer_id, sizeof(o->signer_id));
	rs_strlcpy(o->status, status, sizeof(o->status));
	rs_strlcpy(o->algorithm, "ECDSA_SHA256", sizeof(o->algorithm));
	rs_strlcpy(o->data_hash, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		   sizeof(o->data_hash));
	o->is_digest = 1;
	rs_strlcpy(o->actor_type, "identity", sizeof(o->actor_type));
	rs_strlcpy(o->actor_id, ID_CI, sizeof(o->actor_id));
	o->actor_name = "ci-build";
	o->client_metadata = "{\"tool\":\"osslsigncode\"}";
	rs_strlcpy(o->source_ip, "192.0.2.7", sizeof(o->source_ip));
	if (strcmp(status, "success") != 0)
		rs_strlcpy(o->error_code, "PermissionDenied", sizeof(o->error_code));
	o->created_at = at;
}

/* Names of a signer list joined by ",", for compact assertions. */
static int names_are(const srv_signer *v, size_t n, const char *want)
{
	char got[512] = "";
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(got); i++)
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? "," : "",
					v[i].name);
	if (strcmp(got, want) != 0)
		printf("# got \"%s\", want \"%s\"\n", got, want);
	return strcmp(got, want) == 0;
}

/* ---- tests --------------------------------------------------------------- */

static void test_open_and_migrations_sqlite(void)
{
	char err[512] = "";
	struct stat sb;
	srv_store *st;

	st = srv_store_sqlite_open(dbpath, err, sizeof(err));
	ok(st != NULL, "open_creates_database");
	if (!st)
		tap_bail("cannot create the database %s: %s", dbpath, err);
	ok(stat(dbpath, &sb) == 0 && (sb.st_mode & 0777) == 0600, "database_file_is_mode_0600");
	ok(sql_int("PRAGMA user_version") == srv_sqlite_schema_version() &&
		   srv_sqlite_schema_version() >= 1,
	   "migrations_set_user_version");
	ok(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
		   "('meta','principals','tokens','secrets','keys','certificates','signers',"
		   "'members','operations')") == 9,
	   "migration_1_creates_every_table");
	ok(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
		   "('operations_signer','operations_signer_status')") == 2,
	   "migration_1_creates_history_indexes");
	ok(sql_int("SELECT count(*) FROM pragma_table_info('principals') WHERE name = 'disabled'"
		   " AND \"notnull\" = 1 AND dflt_value = '0'") == 1,
	   "migration_4_adds_principals_disabled_default_0");
	ok(sql_int("SELECT count(*) FROM pragma_table_info('signers') WHERE name IN"
		   " ('retired_at', 'retired_name')") == 2 &&
		   sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
			   " name = 'operations_denied'") == 1,
	   "migration_5_adds_signer_retirement_and_the_denied_index");
	ok(tb_sql_text_is("rsign", "PRAGMA journal_mode", "wal"), "database_is_in_wal_mode");
	ok(wal_is_private(), "wal_file_is_mode_0600");
	ok(st->ops->ping(st) == SRV_ST_OK, "ping_ok");
	st->ops->close(st);

	st = srv_store_sqlite_open(dbpath, err, sizeof(err));
	ok(st != NULL && sql_int("PRAGMA user_version") == srv_sqlite_schema_version(),
	   "reopen_is_noop_user_version_unchanged");
	ok(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
		   "'principals'") == 1,
	   "reopen_keeps_schema");
	if (st)
		st->ops->close(st);
}

static void test_open_refusals_sqlite(void)
{
	char path[300], err[512] = "";
	srv_store *st;

	snprintf(path, sizeof(path), "%s", tb_target("newer"));
	ok(tb_sql_exec("newer", "CREATE TABLE x (a); PRAGMA user_version = 999;") == 0,
	   "newer_schema_fixture_created");
	st = srv_store_sqlite_open(path, err, sizeof(err));
	ok(st == NULL && strstr(err, "newer") != NULL && strstr(err, "999") != NULL,
	   "newer_schema_refused_with_clear_error");
	if (st)
		st->ops->close(st);

	err[0] = '\0';
	snprintf(path, sizeof(path), "%s/no/such/dir/x.db", tmpdir);
	st = srv_store_sqlite_open(path, err, sizeof(err));
	ok(st == NULL && err[0] != '\0', "open_unwritable_path_fails_with_error");
	if (st)
		st->ops->close(st);
}

/* PostgreSQL: the same migrations in schema_version, taken once. */
#define STARTERS 4

static void *starter(void *arg)
{
	char err[512] = "";
	srv_store *st = srv_store_pg_open(arg, 1, err, sizeof(err));

	if (!st)
		printf("# a starter failed: %s\n", err);
	else
		st->ops->close(st);
	return st ? arg : NULL;
}

static void test_open_and_migrations_pg(void)
{
	char err[512] = "", uri[1024];
	pthread_t th[STARTERS];
	void *res;
	int started = 0, opened = 0;
	srv_store *st;

	st = tb_open("rsign", err, sizeof(err));
	ok(st != NULL, "open_creates_database");
	if (!st)
		tap_bail("cannot open the database %s: %s", dbpath, err);
	ok(sql_int("SELECT count(*) FROM schema_version") == 1 &&
		   sql_int("SELECT version FROM schema_version") == srv_pg_schema_version() &&
		   srv_pg_schema_version() == srv_sqlite_schema_version(),
	   "migrations_set_schema_version_as_sqlite_does");
	ok(sql_int("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
		   " AND table_name IN ('meta','principals','tokens','secrets','keys',"
		   "'certificates','signers','members','operations')") == 9,
	   "migration_1_creates_every_table");
	ok(sql_int("SELECT count(*) FROM pg_indexes WHERE indexname IN "
		   "('operations_signer','operations_signer_status')") == 2,
	   "migration_1_creates_history_indexes");
	ok(sql_int("SELECT count(*) FROM information_schema.columns WHERE table_name ="
		   " 'principals' AND column_name = 'disabled' AND is_nullable = 'NO'"
		   " AND column_default = '0'") == 1,
	   "migration_4_adds_principals_disabled_default_0");
	ok(sql_int("SELECT count(*) FROM information_schema.columns WHERE table_name = 'signers'"
		   " AND column_name IN ('retired_at', 'retired_name')") == 2 &&
		   sql_int("SELECT count(*) FROM pg_indexes WHERE indexname ="
			   " 'operations_denied'") == 1,
	   "migration_5_adds_signer_retirement_and_the_denied_index");
	ok(st->ops->ping(st) == SRV_ST_OK, "ping_ok");
	st->ops->close(st);

	st = tb_open("rsign", err, sizeof(err));
	ok(st != NULL && sql_int("SELECT count(*) FROM schema_version") == 1 &&
		   sql_int("SELECT version FROM schema_version") == srv_pg_schema_version(),
	   "reopen_is_noop_schema_version_unchanged");
	ok(sql_int("SELECT count(*) FROM information_schema.tables WHERE table_name ="
		   " 'principals'") == 1,
	   "reopen_keeps_schema");
	if (st)
		st->ops->close(st);

	/* several replicas starting at once on an empty database */
	ok(tb_sql_exec("rsign", "CREATE DATABASE starters") == 0, "starters_database_created");
	snprintf(uri, sizeof(uri), "%s", tb_target("starters"));
	for (int i = 0; i < STARTERS; i++) {
		if (pthread_create(&th[i], NULL, starter, uri) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		if (pthread_join(th[i], &res) == 0 && res)
			opened++;
	ok(started == STARTERS && opened == STARTERS &&
		   tb_sql_int("starters", "SELECT count(*) FROM schema_version") == 1 &&
		   tb_sql_int("starters", "SELECT version FROM schema_version") ==
			   srv_pg_schema_version(),
	   "concurrent_starters_migrate_once (%d of %d opened)", opened, STARTERS);
}

static void test_open_refusals_pg(void)
{
	char err[512] = "", uri[1024];
	srv_store *st;

	ok(tb_sql_exec("rsign", "CREATE DATABASE newer") == 0 &&
		   tb_sql_exec("newer", "CREATE TABLE schema_version (version INTEGER NOT NULL);"
					" INSERT INTO schema_version VALUES (999)") == 0,
	   "newer_schema_fixture_created");
	snprintf(uri, sizeof(uri), "%s", tb_target("newer"));
	st = srv_store_pg_open(uri, 2, err, sizeof(err));
	ok(st == NULL && strstr(err, "newer") != NULL && strstr(err, "999") != NULL,
	   "newer_schema_refused_with_clear_error");
	if (st)
		st->ops->close(st);
	ok(tb_sql_int("newer", "SELECT count(*) FROM information_schema.tables WHERE"
			       " table_name = 'principals'") == 0,
	   "newer_schema_left_as_found");

	err[0] = '\0';
	st = srv_store_pg_open("postgresql://rsign@/rsign?host=/nonexistent/dir&port=5432", 2, err,
			       sizeof(err));
	ok(st == NULL && strstr(err, "cannot connect") != NULL,
	   "open_unreachable_database_fails_with_error");
	if (st)
		st->ops->close(st);
}

static void test_meta(srv_store *st)
{
	char *v = NULL;

	ok(st->ops->meta_get(st, "ca_key_id", &v) == SRV_ST_NOT_FOUND && v == NULL,
	   "meta_get_missing_not_found");
	ok(st->ops->meta_set(st, "ca_key_id", "k1") == SRV_ST_OK, "meta_set_ok");
	ok(st->ops->meta_get(st, "ca_key_id", &v) == SRV_ST_OK && v && strcmp(v, "k1") == 0,
	   "meta_get_round_trip");
	free(v);
	v = NULL;
	ok(st->ops->meta_set(st, "ca_key_id", "k2") == SRV_ST_OK &&
		   st->ops->meta_get(st, "ca_key_id", &v) == SRV_ST_OK && v && strcmp(v, "k2") == 0,
	   "meta_set_overwrites");
	free(v);
	v = NULL;
	ok(st->ops->meta_add(st, "log_key", "first") == SRV_ST_OK, "meta_add_sets_an_absent_key");
	ok(st->ops->meta_add(st, "log_key", "second") == SRV_ST_CONFLICT,
	   "meta_add_conflicts_when_set");
	ok(st->ops->meta_get(st, "log_key", &v) == SRV_ST_OK && v && strcmp(v, "first") == 0,
	   "meta_add_keeps_the_first_value");
	free(v);
}

static void test_principals(srv_store *st)
{
	srv_principal p, *list = NULL;
	size_t n = 0, total = 0;

	ok(add_principal(st, ID_ADMIN, "user", "root-admin", 1, NULL) == SRV_ST_OK &&
		   add_principal(st, ID_ALICE, "user", "alice", 0, NULL) == SRV_ST_OK &&
		   add_principal(st, ID_BOB, "user", "bob", 0, NULL) == SRV_ST_OK &&
		   add_principal(st, ID_CI, "identity", "ci-build", 0, "cid-1") == SRV_ST_OK,
	   "principal_insert_ok");
	ok(add_principal(st, "00000000-0000-4000-8000-0000000000ff", "user", "alice", 0, NULL) ==
		   SRV_ST_CONFLICT,
	   "principal_insert_duplicate_name_conflict");
	ok(add_principal(st, ID_ALICE, "user", "alice2", 0, NULL) == SRV_ST_CONFLICT,
	   "principal_insert_duplicate_id_conflict");

	memset(&p, 0, sizeof(p));
	ok(st->ops->principal_get(st, ID_CI, &p) == SRV_ST_OK && strcmp(p.id, ID_CI) == 0 &&
		   strcmp(p.name, "ci-build") == 0 && strcmp(p.type, "identity") == 0 &&
		   strcmp(p.client_id, "cid-1") == 0 && !p.admin && p.created_at == NOW,
	   "principal_get_by_id_round_trip");
	srv_principal_clear(&p);
	ok(st->ops->principal_get(st, "root-admin", &p) == SRV_ST_OK &&
		   strcmp(p.id, ID_ADMIN) == 0 && p.admin == 1 && p.client_id[0] == '\0',
	   "principal_get_by_name");
	srv_principal_clear(&p);
	ok(st->ops->principal_get(st, "nobody", &p) == SRV_ST_NOT_FOUND,
	   "principal_get_unknown_not_found");

	ok(st->ops->principal_list(st, 0, 0, &list, &n, &total) == SRV_ST_OK && n == 4 &&
		   total == 4 && strcmp(list[0].name, "alice") == 0 &&
		   strcmp(list[3].name, "root-admin") == 0 && !list[0].disabled,
	   "principal_list_sorted_by_name");
	srv_principal_list_free(list, n);
	ok(st->ops->principal_list(st, 1, 2, &list, &n, &total) == SRV_ST_OK && n == 2 &&
		   total == 4 && strcmp(list[0].name, "bob") == 0 &&
		   strcmp(list[1].name, "ci-build") == 0,
	   "principal_list_pages_in_sql");
	srv_principal_list_free(list, n);
	ok(st->ops->principal_list(st, 4, 2, &list, &n, &total) == SRV_ST_OK && n == 0 &&
		   list == NULL && total == 4,
	   "principal_list_past_the_end_is_empty_with_total");
	srv_principal_list_free(list, n);
}

static void test_tokens_and_secrets(srv_store *st)
{
	srv_principal p;
	const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
	const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
	const char *h3 = "3333333333333333333333333333333333333333333333333333333333333333";
	const char *sh = "4444444444444444444444444444444444444444444444444444444444444444";
	const char *sh2 = "5555555555555555555555555555555555555555555555555555555555555555";

	memset(&p, 0, sizeof(p));
	ok(st->ops->token_insert(st, h1, ID_ALICE, "api", 0, NULL, NULL) == SRV_ST_OK &&
		   st->ops->token_insert(st, h2, ID_CI, "access", NOW + 3600, NULL, NULL) ==
			   SRV_ST_OK &&
		   st->ops->token_insert(st, h3, ID_BOB, "api", 0, NULL, NULL) == SRV_ST_OK,
	   "token_insert_ok");
	ok(st->ops->token_insert(st, h1, ID_BOB, "api", 0, NULL, NULL) == SRV_ST_CONFLICT,
	   "token_insert_duplicate_hash_conflict");
	ok(st->ops->token_insert(st, "ff", "no-such-principal", "api", 0, NULL, NULL) ==
		   SRV_ST_NOT_FOUND,
	   "token_insert_unknown_principal_not_found");
	ok(st->ops->token_lookup(st, h1, NOW, &p, NULL) == SRV_ST_OK &&
		   strcmp(p.id, ID_ALICE) == 0 && strcmp(p.name, "alice") == 0,
	   "token_lookup_never_expiring");
	srv_principal_clear(&p);
	ok(st->ops->token_lookup(st, h2, NOW + 3599, &p, NULL) == SRV_ST_OK &&
		   strcmp(p.id, ID_CI) == 0,
	   "token_lookup_before_expiry");
	srv_principal_clear(&p);
	ok(st->ops->token_lookup(st, h2, NOW + 3600, &p, NULL) == SRV_ST_NOT_FOUND,
	   "token_lookup_ignores_expired_token");
	ok(st->ops->token_lookup(st, "abcd", NOW, &p, NULL) == SRV_ST_NOT_FOUND,
	   "token_lookup_unknown_not_found");
	{
		size_t purged = 99;
		ok(st->ops->token_purge(st, NOW + 3599, &purged) == SRV_ST_OK && purged == 0 &&
			   st->ops->token_lookup(st, h2, NOW + 3599, &p, NULL) == SRV_ST_OK,
		   "token_purge_keeps_unexpired_tokens");
		srv_principal_clear(&p);
		ok(st->ops->token_purge(st, NOW + 3600, &purged) == SRV_ST_OK && purged == 1 &&
			   st->ops->token_lookup(st, h2, NOW, &p, NULL) == SRV_ST_NOT_FOUND &&
			   st->ops->token_lookup(st, h1, NOW + 999999, &p, NULL) == SRV_ST_OK,
		   "token_purge_deletes_expired_and_keeps_never_expiring");
		srv_principal_clear(&p);
	}

	ok(st->ops->secret_set(st, ID_CI, "cid-1", sh, &AUD) == SRV_ST_OK, "secret_set_ok");
	ok(st->ops->secret_lookup(st, "cid-1", sh, NOW, &p) == SRV_ST_OK &&
		   strcmp(p.id, ID_CI) == 0 && strcmp(p.client_id, "cid-1") == 0,
	   "secret_lookup_round_trip");
	srv_principal_clear(&p);
	ok(st->ops->secret_lookup(st, "cid-1", sh2, NOW, &p) == SRV_ST_NOT_FOUND,
	   "secret_lookup_wrong_secret_not_found");
	ok(st->ops->secret_lookup(st, "cid-x", sh, NOW, &p) == SRV_ST_NOT_FOUND,
	   "secret_lookup_unknown_client_not_found");
	ok(st->ops->secret_set(st, ID_CI, "cid-1", sh2, &AUD) == SRV_ST_OK &&
		   st->ops->secret_lookup(st, "cid-1", sh, NOW, &p) == SRV_ST_NOT_FOUND,
	   "secret_set_rotation_invalidates_old_secret");
	ok(st->ops->secret_lookup(st, "cid-1", sh2, NOW, &p) == SRV_ST_OK,
	   "secret_set_rotation_new_secret");
	srv_principal_clear(&p);
	ok(st->ops->secret_set(st, ID_ALICE, "cid-2", sh, &AUD) == SRV_ST_NOT_FOUND,
	   "secret_set_on_user_not_found");
	ok(st->ops->secret_set(st, "no-such-principal", "cid-3", sh, &AUD) == SRV_ST_NOT_FOUND,
	   "secret_set_unknown_principal_not_found");

	/* a disabled principal's credentials still resolve, flagged, so the
	 * API can answer principalDisabled rather than tokenInvalid */
	ok(st->ops->principal_set_disabled(st, ID_CI, 1, &AUD) == SRV_ST_OK &&
		   st->ops->secret_lookup(st, "cid-1", sh2, NOW, &p) == SRV_ST_OK &&
		   p.disabled == 1,
	   "principal_set_disabled_flags_secret_lookup");
	srv_principal_clear(&p);
	ok(st->ops->principal_set_disabled(st, ID_ALICE, 1, &AUD) == SRV_ST_OK &&
		   st->ops->token_lookup(st, h1, NOW, &p, NULL) == SRV_ST_OK && p.disabled == 1,
	   "principal_set_disabled_flags_token_lookup");
	srv_principal_clear(&p);
	ok(st->ops->principal_set_disabled(st, ID_ALICE, 0, &AUD) == SRV_ST_OK &&
		   st->ops->principal_set_disabled(st, ID_CI, 0, &AUD) == SRV_ST_OK &&
		   st->ops->principal_get(st, ID_ALICE, &p) == SRV_ST_OK && p.disabled == 0,
	   "principal_set_disabled_0_enables_again");
	srv_principal_clear(&p);
	ok(st->ops->principal_set_disabled(st, "no-such-principal", 1, &AUD) == SRV_ST_NOT_FOUND,
	   "principal_set_disabled_unknown_not_found");
}

static void test_keys_and_certs(srv_store *st)
{
	srv_key k, *keys = NULL;
	srv_cert c, *certs = NULL;
	size_t n = 0, total = 0;
	int ckid_ok = 1;

	ok(add_key(st, ID_KEY1, "key-ec", RS_KEY_EC_P256, spki1, sizeof(spki1), 1) == SRV_ST_OK &&
		   add_key(st, ID_KEY2, "key-rsa", RS_KEY_RSA_3072, spki2, sizeof(spki2), 100) ==
			   SRV_ST_OK,
	   "key_insert_ok");
	ok(add_key(st, "00000000-0000-4000-8000-0000000001ff", "key-ec", RS_KEY_EC_P384, spki2,
		   sizeof(spki2), 9) == SRV_ST_CONFLICT,
	   "key_insert_duplicate_name_conflict");

	memset(&k, 0, sizeof(k));
	ok(st->ops->key_get(st, ID_KEY1, &k) == SRV_ST_OK, "key_get_by_id");
	for (size_t i = 0; i < sizeof(k.ckid); i++)
		ckid_ok &= (size_t)k.ckid[i] == 1 + i;
	ok(strcmp(k.name ? k.name : "", "key-ec") == 0 && k.alg == RS_KEY_EC_P256 && ckid_ok &&
		   k.spki_len == sizeof(spki1) && k.spki &&
		   memcmp(k.spki, spki1, sizeof(spki1)) == 0 && k.created_at == NOW,
	   "key_round_trip_alg_ckid_spki");
	srv_key_clear(&k);
	ok(st->ops->key_get(st, "key-rsa", &k) == SRV_ST_OK && strcmp(k.id, ID_KEY2) == 0 &&
		   k.alg == RS_KEY_RSA_3072,
	   "key_get_by_name");
	srv_key_clear(&k);
	ok(st->ops->key_get(st, "key-none", &k) == SRV_ST_NOT_FOUND, "key_get_unknown_not_found");
	ok(st->ops->key_find_spki(st, spki2, sizeof(spki2), &k) == SRV_ST_OK &&
		   strcmp(k.id, ID_KEY2) == 0,
	   "key_find_spki_exact_match");
	srv_key_clear(&k);
	ok(st->ops->key_find_spki(st, spki2, sizeof(spki2) - 1, &k) == SRV_ST_NOT_FOUND,
	   "key_find_spki_prefix_not_found");
	ok(st->ops->key_list(st, 0, 0, &keys, &n, &total) == SRV_ST_OK && n == 2 && total == 2 &&
		   strcmp(keys[0].name, "key-ec") == 0 && strcmp(keys[1].name, "key-rsa") == 0,
	   "key_list_all");
	srv_key_list_free(keys, n);
	ok(st->ops->key_list(st, 1, 1, &keys, &n, &total) == SRV_ST_OK && n == 1 && total == 2 &&
		   strcmp(keys[0].name, "key-rsa") == 0,
	   "key_list_pages_in_sql");
	srv_key_list_free(keys, n);

	ok(add_cert(st, ID_CERT1, ID_KEY1, NULL, NOW - 86400, NOW + 86400) == SRV_ST_OK &&
		   add_cert(st, ID_CERT2, ID_KEY2, "-----BEGIN CERTIFICATE-----\nCA\n", NOW - 10,
			    NOW + 10) == SRV_ST_OK,
	   "cert_insert_ok");
	ok(add_cert(st, ID_CERT1, ID_KEY1, NULL, 0, 0) == SRV_ST_CONFLICT,
	   "cert_insert_duplicate_id_conflict");
	ok(add_cert(st, "00000000-0000-4000-8000-0000000002ff", "no-such-key", NULL, 0, 0) ==
		   SRV_ST_NOT_FOUND,
	   "cert_insert_unknown_key_not_found");
	memset(&c, 0, sizeof(c));
	ok(st->ops->cert_get(st, ID_CERT1, &c) == SRV_ST_OK && strcmp(c.key_id, ID_KEY1) == 0 &&
		   c.key_alg == RS_KEY_EC_P256 &&
		   strcmp(c.common_name, "Example Code Signing") == 0 &&
		   strcmp(c.serial, "0a1b2c") == 0 && c.not_before == NOW - 86400 &&
		   c.not_after == NOW + 86400 && strstr(c.cert_pem, "BEGIN CERTIFICATE") &&
		   c.chain_pem && c.chain_pem[0] == '\0',
	   "cert_round_trip_joined_alg_empty_chain");
	srv_cert_clear(&c);
	ok(st->ops->cert_get(st, ID_CERT2, &c) == SRV_ST_OK && c.key_alg == RS_KEY_RSA_3072 &&
		   strcmp(c.chain_pem, "-----BEGIN CERTIFICATE-----\nCA\n") == 0,
	   "cert_round_trip_chain");
	srv_cert_clear(&c);
	ok(st->ops->cert_get(st, "no-such-cert", &c) == SRV_ST_NOT_FOUND,
	   "cert_get_unknown_not_found");
	ok(st->ops->cert_list(st, 0, 0, &certs, &n, &total) == SRV_ST_OK && n == 2 && total == 2,
	   "cert_list_all");
	srv_cert_list_free(certs, n);
	ok(st->ops->cert_list(st, 1, 5, &certs, &n, &total) == SRV_ST_OK && n == 1 && total == 2 &&
		   strcmp(certs[0].id, ID_CERT2) == 0,
	   "cert_list_pages_in_sql");
	srv_cert_list_free(certs, n);
}

static void test_signers(srv_store *st)
{
	srv_signer s, upd;

	ok(add_signer(st, ID_S_ALPHA, "alpha", NULL, ID_CERT1) == SRV_ST_OK &&
		   add_signer(st, ID_S_BRAVO, "bravo", "Release builds", ID_CERT2) == SRV_ST_OK &&
		   add_signer(st, ID_S_CHARLIE, "charlie", "", ID_CERT1) == SRV_ST_OK &&
		   add_signer(st, ID_S_DELTA, "delta", NULL, ID_CERT1) == SRV_ST_OK &&
		   add_signer(st, ID_S_ECHO, "echo", NULL, ID_CERT2) == SRV_ST_OK &&
		   add_signer(st, ID_S_PCT, "x-100pct", NULL, ID_CERT2) == SRV_ST_OK,
	   "signer_insert_ok");
	ok(add_signer(st, "00000000-0000-4000-8000-0000000003ff", "alpha", NULL, ID_CERT2) ==
		   SRV_ST_CONFLICT,
	   "signer_insert_duplicate_name_conflict");
	ok(add_signer(st, "00000000-0000-4000-8000-0000000003fe", "zulu", NULL, "no-such-cert") ==
		   SRV_ST_NOT_FOUND,
	   "signer_insert_unknown_certificate_not_found");

	memset(&s, 0, sizeof(s));
	ok(st->ops->signer_get(st, ID_S_BRAVO, &s) == SRV_ST_OK && strcmp(s.name, "bravo") == 0 &&
		   strcmp(s.description, "Release builds") == 0 && s.enabled == 1 &&
		   strcmp(s.certificate_id, ID_CERT2) == 0 && s.policy_id[0] == '\0' &&
		   s.created_at == NOW && s.last_signed_at == 0,
	   "signer_get_by_id_round_trip");
	ok(s.key_alg == RS_KEY_RSA_3072 && strcmp(s.key_id, ID_KEY2) == 0 &&
		   s.cert_not_before == NOW - 10 && s.cert_not_after == NOW + 10,
	   "signer_get_joins_certificate_and_key");
	srv_signer_clear(&s);
	ok(st->ops->signer_get(st, "alpha", &s) == SRV_ST_OK && strcmp(s.id, ID_S_ALPHA) == 0 &&
		   s.description && s.description[0] == '\0' && s.key_alg == RS_KEY_EC_P256,
	   "signer_get_by_name_null_description_is_empty");
	srv_signer_clear(&s);
	ok(st->ops->signer_get(st, "nope", &s) == SRV_ST_NOT_FOUND, "signer_get_unknown_not_found");
	/* bytes that are not UTF-8 (a URL path may hold them) name nothing:
	 * PostgreSQL refuses to compare them, SQLite finds no row */
	srv_principal np;
	srv_signer *nv = NULL;
	size_t nn = 0, nt = 1;
	memset(&np, 0, sizeof(np));
	ok(st->ops->signer_get(st, "caf\xe9\xff", &s) == SRV_ST_NOT_FOUND &&
		   st->ops->principal_get(st, "caf\xe9", &np) == SRV_ST_NOT_FOUND &&
		   st->ops->signer_list(st, NULL, 0, "\xff", NULL, 0, 10, &nv, &nn, &nt) ==
			   SRV_ST_OK &&
		   nn == 0 && nt == 0,
	   "lookups_by_bytes_that_are_not_utf8_find_nothing");
	srv_signer_list_free(nv, nn);

	/* a signer named like another signer's id: the id wins */
	ok(add_signer(st, "00000000-0000-4000-8000-0000000003fd", ID_S_ALPHA, NULL, ID_CERT1) ==
			   SRV_ST_OK &&
		   st->ops->signer_get(st, ID_S_ALPHA, &s) == SRV_ST_OK &&
		   strcmp(s.name, "alpha") == 0,
	   "signer_get_matches_id_before_name");
	srv_signer_clear(&s);
	ok(st->ops->signer_retire(st, "00000000-0000-4000-8000-0000000003fd", &AUD) == SRV_ST_OK,
	   "signer_retire_ok");
	ok(st->ops->signer_retire(st, "00000000-0000-4000-8000-0000000003fd", &AUD) ==
		   SRV_ST_CONFLICT,
	   "signer_retire_twice_conflict");
	ok(st->ops->signer_retire(st, "00000000-0000-4000-8000-0000000003fc", &AUD) ==
		   SRV_ST_NOT_FOUND,
	   "signer_retire_unknown_not_found");

	memset(&upd, 0, sizeof(upd));
	rs_strlcpy(upd.id, ID_S_DELTA, sizeof(upd.id));
	upd.name = "delta2";
	upd.description = "renamed";
	upd.enabled = 0;
	rs_strlcpy(upd.certificate_id, ID_CERT2, sizeof(upd.certificate_id));
	rs_strlcpy(upd.policy_id, "00000000-0000-4000-8000-000000000901", sizeof(upd.policy_id));
	ok(st->ops->signer_update(st, &upd, &AUD) == SRV_ST_OK, "signer_update_ok");
	ok(st->ops->signer_get(st, "delta2", &s) == SRV_ST_OK && strcmp(s.id, ID_S_DELTA) == 0 &&
		   strcmp(s.description, "renamed") == 0 && s.enabled == 0 &&
		   strcmp(s.certificate_id, ID_CERT2) == 0 && s.key_alg == RS_KEY_RSA_3072 &&
		   strcmp(s.policy_id, "00000000-0000-4000-8000-000000000901") == 0,
	   "signer_update_round_trip");
	srv_signer_clear(&s);
	upd.name = "delta";
	upd.policy_id[0] = '\0';
	upd.enabled = 1;
	ok(st->ops->signer_update(st, &upd, &AUD) == SRV_ST_OK &&
		   st->ops->signer_get(st, "delta", &s) == SRV_ST_OK && s.policy_id[0] == '\0' &&
		   s.enabled == 1,
	   "signer_update_clears_policy");
	srv_signer_clear(&s);
	upd.name = "alpha";
	ok(st->ops->signer_update(st, &upd, &AUD) == SRV_ST_CONFLICT,
	   "signer_update_name_taken_conflict");
	rs_strlcpy(upd.id, "no-such-signer", sizeof(upd.id));
	upd.name = "zulu";
	ok(st->ops->signer_update(st, &upd, &AUD) == SRV_ST_NOT_FOUND,
	   "signer_update_unknown_not_found");
	rs_strlcpy(upd.id, "00000000-0000-4000-8000-0000000003fd", sizeof(upd.id));
	ok(st->ops->signer_update(st, &upd, &AUD) == SRV_ST_NOT_FOUND,
	   "signer_update_retired_not_found");
}

static void test_members(srv_store *st)
{
	srv_principal *ps = NULL;
	srv_role *roles = NULL, r = SRV_ROLE_AUDITOR;
	size_t n = 0;

	ok(st->ops->member_set(st, ID_S_BRAVO, ID_ALICE, SRV_ROLE_AUDITOR, &AUD) == SRV_ST_OK &&
		   st->ops->member_set(st, ID_S_CHARLIE, ID_ALICE, SRV_ROLE_OPERATOR, &AUD) ==
			   SRV_ST_OK &&
		   st->ops->member_set(st, ID_S_ECHO, ID_ALICE, SRV_ROLE_OPERATOR, &AUD) ==
			   SRV_ST_OK &&
		   st->ops->member_set(st, ID_S_CHARLIE, ID_CI, SRV_ROLE_AUDITOR, &AUD) ==
			   SRV_ST_OK,
	   "member_set_ok");
	ok(st->ops->member_role(st, ID_S_CHARLIE, ID_ALICE, &r) == SRV_ST_OK &&
		   r == SRV_ROLE_OPERATOR,
	   "member_role_operator");
	ok(st->ops->member_role(st, ID_S_ALPHA, ID_ALICE, &r) == SRV_ST_OK && r == SRV_ROLE_NONE,
	   "member_role_non_member_is_none_ok");
	ok(st->ops->member_set(st, ID_S_CHARLIE, ID_CI, SRV_ROLE_OPERATOR, &AUD) == SRV_ST_OK &&
		   st->ops->member_role(st, ID_S_CHARLIE, ID_CI, &r) == SRV_ST_OK &&
		   r == SRV_ROLE_OPERATOR,
	   "member_set_changes_role");
	ok(st->ops->member_set(st, "no-such-signer", ID_ALICE, SRV_ROLE_OPERATOR, &AUD) ==
		   SRV_ST_NOT_FOUND,
	   "member_set_unknown_signer_not_found");
	ok(st->ops->member_set(st, ID_S_ALPHA, "no-such-principal", SRV_ROLE_OPERATOR, &AUD) ==
		   SRV_ST_NOT_FOUND,
	   "member_set_unknown_principal_not_found");
	ok(st->ops->member_list(st, ID_S_CHARLIE, &ps, &roles, &n) == SRV_ST_OK && n == 2 &&
		   strcmp(ps[0].name, "alice") == 0 && roles[0] == SRV_ROLE_OPERATOR &&
		   strcmp(ps[1].name, "ci-build") == 0 && strcmp(ps[1].id, ID_CI) == 0 &&
		   roles[1] == SRV_ROLE_OPERATOR,
	   "member_list_names_and_roles");
	srv_principal_list_free(ps, n);
	free(roles);
	ok(st->ops->member_list(st, ID_S_ALPHA, &ps, &roles, &n) == SRV_ST_OK && n == 0,
	   "member_list_empty");
	srv_principal_list_free(ps, n);
	free(roles);
	ok(st->ops->member_set(st, ID_S_ALPHA, ID_BOB, SRV_ROLE_AUDITOR, &AUD) == SRV_ST_OK &&
		   st->ops->member_delete(st, ID_S_ALPHA, ID_BOB, &AUD) == SRV_ST_OK &&
		   st->ops->member_role(st, ID_S_ALPHA, ID_BOB, &r) == SRV_ST_OK &&
		   r == SRV_ROLE_NONE,
	   "member_delete_removes_membership");
	ok(st->ops->member_delete(st, ID_S_ALPHA, ID_BOB, &AUD) == SRV_ST_NOT_FOUND,
	   "member_delete_non_member_not_found");
}

static void test_signer_list(srv_store *st)
{
	srv_signer *v = NULL;
	size_t n = 0, total = 0;

	ok(st->ops->signer_list(st, NULL, 0, NULL, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 6 && names_are(v, n, "alpha,bravo,charlie,delta,echo,x-100pct"),
	   "signer_list_admin_sees_all_by_name");
	ok(n > 2 && v[2].key_alg == RS_KEY_EC_P256 && strcmp(v[2].key_id, ID_KEY1) == 0 &&
		   v[2].cert_not_after == NOW + 86400,
	   "signer_list_joins_certificate_and_key");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 1, NULL, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 6,
	   "signer_list_operators_only_ignored_without_principal");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, ID_ALICE, 0, NULL, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 3 && names_are(v, n, "bravo,charlie,echo"),
	   "signer_list_member_sees_own_signers");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, ID_ALICE, 1, NULL, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 2 && names_are(v, n, "charlie,echo"),
	   "signer_list_operators_only");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, ID_BOB, 0, NULL, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 0 && n == 0 && v == NULL,
	   "signer_list_non_member_sees_none");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, "ar", NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 1 && names_are(v, n, "charlie"),
	   "signer_list_search_substring");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, "HO", NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   names_are(v, n, "echo"),
	   "signer_list_search_ignores_case");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, "%", NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 0 && n == 0,
	   "signer_list_search_percent_is_literal");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, "_", NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 0,
	   "signer_list_search_underscore_is_literal");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, ID_ALICE, 0, "a", NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 2 && names_are(v, n, "bravo,charlie"),
	   "signer_list_search_within_visibility");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, "", NULL, 2, 3, &v, &n, &total) == SRV_ST_OK &&
		   total == 6 && names_are(v, n, "charlie,delta,echo"),
	   "signer_list_offset_limit_total");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, NULL, NULL, 5, 3, &v, &n, &total) == SRV_ST_OK &&
		   total == 6 && names_are(v, n, "x-100pct"),
	   "signer_list_last_page");
	srv_signer_list_free(v, n);
	ok(st->ops->signer_list(st, NULL, 0, NULL, NULL, 10, 3, &v, &n, &total) == SRV_ST_OK &&
		   total == 6 && n == 0,
	   "signer_list_offset_past_end_keeps_total");
	srv_signer_list_free(v, n);
}

static void test_operations(srv_store *st)
{
	srv_operation o, *v = NULL;
	srv_signer s;
	size_t n = 0, total = 0;
	char id[RS_UUID_LEN];

	memset(&s, 0, sizeof(s));
	fill_op(&o, "op-denied-0", ID_S_BRAVO, "denied", NOW + 5);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK &&
		   st->ops->signer_get(st, ID_S_BRAVO, &s) == SRV_ST_OK && s.last_signed_at == 0,
	   "operation_insert_denied_leaves_last_signed_at");
	srv_signer_clear(&s);
	fill_op(&o, "op-success-1", ID_S_BRAVO, "success", NOW + 10);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK &&
		   st->ops->signer_get(st, ID_S_BRAVO, &s) == SRV_ST_OK &&
		   s.last_signed_at == NOW + 10,
	   "operation_insert_success_sets_last_signed_at");
	srv_signer_clear(&s);
	fill_op(&o, "op-failed-2", ID_S_BRAVO, "failed", NOW + 20);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK &&
		   st->ops->signer_get(st, ID_S_BRAVO, &s) == SRV_ST_OK &&
		   s.last_signed_at == NOW + 10,
	   "operation_insert_failed_leaves_last_signed_at");
	srv_signer_clear(&s);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_CONFLICT,
	   "operation_insert_duplicate_id_conflict");
	/* same second as the last: order must still follow insertion */
	int inserted = 1;
	for (int i = 3; i < 10; i++) {
		snprintf(id, sizeof(id), "op-%s-%d", i % 2 ? "success" : "denied", i);
		fill_op(&o, id, ID_S_BRAVO, i % 2 ? "success" : "denied", NOW + 20);
		if (i == 4) {
			o.client_metadata = NULL;
			o.grant_id[0] = '\0';
		} else {
			rs_strlcpy(o.grant_id, "00000000-0000-4000-8000-000000000a01",
				   sizeof(o.grant_id));
		}
		inserted &= st->ops->operation_insert(st, &o) == SRV_ST_OK;
	}
	fill_op(&o, "op-other-signer", ID_S_ECHO, "success", NOW + 30);
	ok(inserted && st->ops->operation_insert(st, &o) == SRV_ST_OK, "operation_insert_more_ok");

	ok(st->ops->operation_list(st, ID_S_BRAVO, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 10 && n == 10 && strcmp(v[0].id, "op-success-9") == 0 &&
		   strcmp(v[1].id, "op-denied-8") == 0 && strcmp(v[9].id, "op-denied-0") == 0,
	   "operation_list_newest_first");
	ok(n == 10 && strcmp(v[0].signer_id, ID_S_BRAVO) == 0 &&
		   strcmp(v[0].status, "success") == 0 &&
		   strcmp(v[0].algorithm, "ECDSA_SHA256") == 0 && strlen(v[0].data_hash) == 64 &&
		   v[0].is_digest == 1 && strcmp(v[0].actor_type, "identity") == 0 &&
		   strcmp(v[0].actor_id, ID_CI) == 0 && strcmp(v[0].actor_name, "ci-build") == 0 &&
		   strcmp(v[0].grant_id, "00000000-0000-4000-8000-000000000a01") == 0 &&
		   strcmp(v[0].client_metadata, "{\"tool\":\"osslsigncode\"}") == 0 &&
		   strcmp(v[0].source_ip, "192.0.2.7") == 0 && v[0].error_code[0] == '\0' &&
		   v[0].created_at == NOW + 20,
	   "operation_round_trip");
	ok(n == 10 && strcmp(v[5].id, "op-denied-4") == 0 &&
		   strcmp(v[5].client_metadata, "{}") == 0 && v[5].grant_id[0] == '\0' &&
		   strcmp(v[5].error_code, "PermissionDenied") == 0,
	   "operation_round_trip_defaults");
	srv_operation_list_free(v, n);

	ok(st->ops->operation_list(st, ID_S_BRAVO, &(srv_list_filter){.status = "success"}, 0, 20,
				   &v, &n, &total) == SRV_ST_OK &&
		   total == 5 && n == 5 && strcmp(v[0].id, "op-success-9") == 0 &&
		   strcmp(v[4].id, "op-success-1") == 0,
	   "operation_list_status_filter");
	srv_operation_list_free(v, n);
	ok(st->ops->operation_list(st, ID_S_BRAVO, &(srv_list_filter){.status = "denied"}, 1, 2, &v,
				   &n, &total) == SRV_ST_OK &&
		   total == 4 && n == 2 && strcmp(v[0].id, "op-denied-6") == 0 &&
		   strcmp(v[1].id, "op-denied-4") == 0,
	   "operation_list_status_paging");
	srv_operation_list_free(v, n);
	ok(st->ops->operation_list(st, ID_S_BRAVO, &(srv_list_filter){.status = ""}, 8, 5, &v, &n,
				   &total) == SRV_ST_OK &&
		   total == 10 && n == 2 && strcmp(v[1].id, "op-denied-0") == 0,
	   "operation_list_paging");
	srv_operation_list_free(v, n);
	ok(st->ops->operation_list(st, ID_S_ALPHA, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 0 && n == 0,
	   "operation_list_empty");
	srv_operation_list_free(v, n);
}

/* Ids of a history page joined by ",", for compact assertions. */
static const char *op_ids(const srv_operation *v, size_t n)
{
	static char buf[512];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(buf); i++) {
		int w = snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "", v[i].id);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return buf;
}

/* operation_list's filters (issue 12's history filters): each one alone,
 * combined, the time range's ends, the alias spelling of an algorithm and
 * the total counting the filtered set. */
static void test_operation_filters(srv_store *st)
{
	static const struct {
		const char *id, *status, *alg, *actor_id, *actor_name;
		int at;
	} ops[] = {
		{"f1", "success", "ECDSA_SHA256", ID_CI, "ci-build", 100},
		{"f2", "denied", "ECDSA_SHA384", ID_ALICE, "alice", 200},
		{"f3", "success", "ECDSA_SHA_384", ID_CI, "ci-build", 300}, /* alias spelling */
		{"f4", "failed", "ECDSA_SHA256", ID_ALICE, "alice", 400},
		{"f5", "success", "ECDSA_SHA256", ID_ALICE, "alice", 500},
	};
	srv_operation o, *v = NULL;
	size_t n = 0, total = 0;
	int inserted = 1;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		fill_op(&o, ops[i].id, ID_S_PCT, ops[i].status, NOW + ops[i].at);
		rs_strlcpy(o.algorithm, ops[i].alg, sizeof(o.algorithm));
		rs_strlcpy(o.actor_id, ops[i].actor_id, sizeof(o.actor_id));
		o.actor_name = (char *)ops[i].actor_name;
		inserted &= st->ops->operation_insert(st, &o) == SRV_ST_OK;
	}
	ok(inserted, "operation_filters_records_inserted");
#define LIST(...)                                                                                  \
	(srv_operation_list_free(v, n), v = NULL, n = total = 0,                                   \
	 st->ops->operation_list(st, ID_S_PCT, &(srv_list_filter){__VA_ARGS__}, 0, 20, &v, &n,     \
				 &total) == SRV_ST_OK)
	ok(LIST(.actor = ID_ALICE) && total == 3 && strcmp(op_ids(v, n), "f5,f4,f2") == 0,
	   "operation_list_actor_by_id (%s)", op_ids(v, n));
	ok(LIST(.actor = "ci-build") && total == 2 && strcmp(op_ids(v, n), "f3,f1") == 0,
	   "operation_list_actor_by_name (%s)", op_ids(v, n));
	ok(LIST(.algorithm = "ECDSA_SHA384") && total == 2 && strcmp(op_ids(v, n), "f3,f2") == 0,
	   "operation_list_algorithm_matches_the_alias_spelling (%s)", op_ids(v, n));
	ok(LIST(.has_from = 1, .from = NOW + 200, .has_to = 1, .to = NOW + 400) && total == 2 &&
		   strcmp(op_ids(v, n), "f3,f2") == 0,
	   "operation_list_from_inclusive_to_exclusive (%s)", op_ids(v, n));
	ok(LIST(.has_from = 1, .from = NOW + 401) && total == 1 && strcmp(op_ids(v, n), "f5") == 0,
	   "operation_list_from_only (%s)", op_ids(v, n));
	ok(LIST(.has_to = 1, .to = NOW + 101) && total == 1 && strcmp(op_ids(v, n), "f1") == 0,
	   "operation_list_to_only (%s)", op_ids(v, n));
	ok(LIST(.status = "success", .actor = "alice", .algorithm = "ECDSA_SHA256") && total == 1 &&
		   strcmp(op_ids(v, n), "f5") == 0,
	   "operation_list_filters_combine (%s)", op_ids(v, n));
	ok(LIST(.actor = "nobody") && total == 0 && n == 0, "operation_list_unknown_actor_empty");
	ok(LIST(.status = "success", .actor = "alice") && total == 1 &&
		   LIST(.status = "denied", .has_from = 1, .from = NOW + 300) && total == 0,
	   "operation_list_status_with_another_filter");
#undef LIST
	srv_operation_list_free(v, n);
	v = NULL;
	ok(st->ops->operation_list(st, ID_S_PCT, &(srv_list_filter){.actor = ID_ALICE}, 1, 1, &v,
				   &n, &total) == SRV_ST_OK &&
		   total == 3 && n == 1 && strcmp(v[0].id, "f4") == 0,
	   "operation_list_filtered_paging_counts_the_filtered_set");
	srv_operation_list_free(v, n);
}

static void test_retire_and_deletes(srv_store *st)
{
	srv_principal p, *ps = NULL;
	srv_operation *v = NULL;
	srv_signer s, *sv = NULL;
	srv_role *roles = NULL, r = SRV_ROLE_AUDITOR;
	size_t n = 0, total = 0;
	const char *h3 = "3333333333333333333333333333333333333333333333333333333333333333";
	srv_audit at = AUD;

	memset(&p, 0, sizeof(p));
	memset(&s, 0, sizeof(s));
	at.created_at = NOW + 40;
	ok(st->ops->signer_retire(st, ID_S_ECHO, &at) == SRV_ST_OK &&
		   st->ops->signer_get(st, ID_S_ECHO, &s) == SRV_ST_OK &&
		   s.retired_at == NOW + 40 && strcmp(s.name, "echo") == 0,
	   "retired_signer_is_read_by_id_with_its_name");
	srv_signer_clear(&s);
	ok(st->ops->signer_get(st, "echo", &s) == SRV_ST_NOT_FOUND,
	   "retired_signer_is_not_found_by_name");
	ok(st->ops->member_role(st, ID_S_ECHO, ID_ALICE, &r) == SRV_ST_OK && r == SRV_ROLE_OPERATOR,
	   "retired_signer_keeps_its_members");
	ok(st->ops->operation_list(st, ID_S_ECHO, NULL, 0, 20, &v, &n, &total) == SRV_ST_OK &&
		   total == 1 && n == 1 && strcmp(v[0].id, "op-other-signer") == 0,
	   "retired_signer_keeps_its_history");
	srv_operation_list_free(v, n);
	ok(add_signer(st, "00000000-0000-4000-8000-0000000003e0", "echo", "the new one",
		      ID_CERT1) == SRV_ST_OK &&
		   st->ops->signer_get(st, "echo", &s) == SRV_ST_OK &&
		   strcmp(s.id, "00000000-0000-4000-8000-0000000003e0") == 0 && !s.retired_at,
	   "a_retired_signer_name_can_be_reused");
	srv_signer_clear(&s);
	ok(st->ops->signer_list(st, NULL, 0, "echo", NULL, 0, 20, &sv, &n, &total) == SRV_ST_OK &&
		   total == 1 && strcmp(sv[0].id, "00000000-0000-4000-8000-0000000003e0") == 0,
	   "signer_list_leaves_retired_signers_out");
	srv_signer_list_free(sv, n);
	ok(st->ops->signer_list(st, NULL, 0, NULL, "retired", 0, 20, &sv, &n, &total) ==
			   SRV_ST_OK &&
		   total == 2 && names_are(sv, n, ID_S_ALPHA ",echo") &&
		   sv[1].retired_at == NOW + 40,
	   "signer_list_status_retired");
	srv_signer_list_free(sv, n);
	ok(st->ops->signer_list(st, ID_ALICE, 1, "echo", "any", 0, 20, &sv, &n, &total) ==
			   SRV_ST_OK &&
		   total == 1 && strcmp(sv[0].id, ID_S_ECHO) == 0,
	   "signer_list_status_any_keeps_visibility");
	srv_signer_list_free(sv, n);
	ok(st->ops->signer_list(st, NULL, 0, NULL, "disabled", 0, 20, &sv, &n, &total) ==
			   SRV_ST_OK &&
		   total == 0 &&
		   st->ops->signer_list(st, NULL, 0, NULL, "enabled", 0, 20, &sv, &n, &total) ==
			   SRV_ST_OK &&
		   total == 6 &&
		   st->ops->signer_list(st, NULL, 0, NULL, "bogus", 0, 20, &sv, &n, &total) ==
			   SRV_ST_FAILED,
	   "signer_list_status_enabled_disabled_and_refusal");
	srv_signer_list_free(sv, n);

	ok(st->ops->member_set(st, ID_S_ALPHA, ID_BOB, SRV_ROLE_OPERATOR, &AUD) == SRV_ST_OK &&
		   st->ops->principal_delete(st, ID_BOB, &AUD) == SRV_ST_OK,
	   "principal_delete_ok");
	ok(st->ops->principal_get(st, ID_BOB, &p) == SRV_ST_NOT_FOUND,
	   "principal_delete_removes_principal");
	ok(st->ops->token_lookup(st, h3, NOW, &p, NULL) == SRV_ST_NOT_FOUND &&
		   sql_int("SELECT count(*) FROM tokens WHERE principal_id = '" ID_BOB "'") == 0,
	   "principal_delete_cascades_tokens");
	ok(st->ops->member_role(st, ID_S_ALPHA, ID_BOB, &r) == SRV_ST_OK && r == SRV_ROLE_NONE &&
		   st->ops->member_list(st, ID_S_ALPHA, &ps, &roles, &n) == SRV_ST_OK && n == 0,
	   "principal_delete_cascades_memberships");
	srv_principal_list_free(ps, n);
	free(roles);
	ok(st->ops->principal_delete(st, ID_CI, &AUD) == SRV_ST_OK &&
		   sql_int("SELECT count(*) FROM secrets") == 0 &&
		   st->ops->secret_lookup(
			   st, "cid-1",
			   "5555555555555555555555555555555555555555555555555555555555555555", NOW,
			   &p) == SRV_ST_NOT_FOUND,
	   "principal_delete_cascades_secrets");
	ok(st->ops->principal_delete(st, ID_BOB, &AUD) == SRV_ST_NOT_FOUND,
	   "principal_delete_unknown_not_found");
}

/* The number of history records with status created before t. */
static long long records(const char *status, time_t t)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM operations WHERE status = '%s' AND created_at < %lld"
		 " AND purged = 0",
		 status, (long long)t);
	return tb_sql_int("retention", sql);
}

/* history_denied_retention, on a database of its own (the purge spans every
 * signer): denied records older than it go as records are written, at
 * most 512 a commit; successes and failures stay. */
static void test_retention(void)
{
	const time_t t0 = NOW + 10000;
	char sql[512], err[512] = "";
	srv_operation o;
	srv_store *st;

	if (!(st = tb_open("retention", err, sizeof(err))))
		tap_bail("cannot create the retention database: %s", err);

	/* 600 denied records from long ago, written past the store */
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 600)"
		 " INSERT INTO operations (id, signer_id, status, actor_type, actor_id, actor_name,"
		 " created_at, oidc) SELECT 'old-denied-' || i, '%s', 'denied', 'user', '%s',"
		 " 'alice', %lld, '{\"issuer\":\"https://ci.example\"}' FROM k",
		 ID_S_DELTA, ID_ALICE, (long long)(t0 - 1000));
	fill_op(&o, "old-success", ID_S_DELTA, "success", t0 - 1000);
	int fixtures = tb_sql_exec("retention", sql) == 0 &&
		       st->ops->operation_insert(st, &o) == SRV_ST_OK;
	fill_op(&o, "old-failed", ID_S_DELTA, "failed", t0 - 1000);
	fixtures = fixtures && st->ops->operation_insert(st, &o) == SRV_ST_OK;
	fill_op(&o, "young-denied", ID_S_DELTA, "denied", t0 - 50);
	fixtures = fixtures && st->ops->operation_insert(st, &o) == SRV_ST_OK;
	ok(fixtures && records("denied", t0) == 601, "retention_fixtures");

	fill_op(&o, "kept-for-ever", ID_S_DELTA, "denied", t0);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK && records("denied", t0) == 601,
	   "retention_0_keeps_denied_records");
	st->ops->history_set_retention(st, 100);
	fill_op(&o, "new-success", ID_S_DELTA, "success", t0 + 1);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK &&
		   records("denied", t0 - 100) == 600 - 512,
	   "retention_purges_at_most_512_a_commit");
	fill_op(&o, "new-denied", ID_S_DELTA, "denied", t0 + 2);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK && records("denied", t0 - 100) == 0,
	   "retention_purges_the_rest_at_the_next_commit");
	ok(records("denied", t0 + 3) == 3 && records("success", t0 - 100) == 1 &&
		   records("failed", t0 - 100) == 1 &&
		   tb_sql_int("retention",
			      "SELECT count(*) FROM operations WHERE id = 'young-denied'") == 1,
	   "retention_keeps_young_denied_and_every_success_and_failure");
	/* a purged record is a tombstone of the history chain (migration 10):
	 * its id, status and chain columns stay, its body is cleared */
	ok(tb_sql_int("retention",
		      "SELECT count(*) FROM operations WHERE purged = 1 AND"
		      " status = 'denied' AND signer_id = '' AND actor_id = ''"
		      " AND actor_name = '' AND oidc IS NULL AND id LIKE 'old-denied-%'") == 600,
	   "retention_leaves_tombstones_of_the_purged_records");
	st->ops->close(st);
}

/* ---- concurrency -------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 200

typedef struct {
	srv_store *st;
	int t;
	int errors;
} worker;

static void *insert_worker(void *arg)
{
	worker *w = arg;
	srv_operation o;
	char id[RS_UUID_LEN];

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof(id), "thread-%d-op-%d", w->t, i);
		fill_op(&o, id, ID_S_ALPHA, i % 3 ? "success" : "denied", NOW + 100 + i);
		if (w->st->ops->operation_insert(w->st, &o) != SRV_ST_OK)
			w->errors++;
	}
	return NULL;
}

/* A sample of rsign_history_commit_batch_size (suffix "_sum" or "_count")
 * as /metrics renders it; -1 when absent. */
static double batch_metric(const char *suffix)
{
	rs_buf b;
	char name[64];
	double v = -1;

	rs_buf_init(&b, 1 << 20);
	rs_metrics_render(&b);
	snprintf(name, sizeof(name), "\nrsign_history_commit_batch_size%s ", suffix);
	const char *p = strstr(rs_buf_str(&b), name);
	if (p)
		v = strtod(p + strlen(name), NULL);
	rs_buf_free(&b);
	return v;
}

static void test_concurrency(srv_store *st)
{
	pthread_t th[THREADS];
	worker w[THREADS];
	srv_operation *v = NULL;
	srv_signer s;
	size_t n = 0, total = 0;
	int started = 0, errors = 0;

	rs_metric_declare(&rs_m_commit_batch);
	double recs0 = batch_metric("_sum"), commits0 = batch_metric("_count");
	if (recs0 < 0 || commits0 < 0)
		recs0 = commits0 = 0; /* no commit observed yet */
	for (int i = 0; i < THREADS; i++) {
		w[i].st = st;
		w[i].t = i;
		w[i].errors = 0;
		if (pthread_create(&th[i], NULL, insert_worker, &w[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		if (pthread_join(th[i], NULL) != 0)
			errors++;
		errors += w[i].errors;
	}
	ok(started == THREADS && errors == 0, "concurrent_operation_inserts_no_errors");
	/* the group commit groups: with 8 writers at once some commit holds
	 * more than one record (PostgreSQL committed each alone before) */
	double recs = batch_metric("_sum") - recs0, commits = batch_metric("_count") - commits0;
	ok(recs >= THREADS * PER_THREAD && commits > 0 && commits < recs,
	   "concurrent_inserts_share_commits (%.0f records in %.0f commits)", recs, commits);
	ok(st->ops->operation_list(st, ID_S_ALPHA, NULL, 0, 10, &v, &n, &total) == SRV_ST_OK &&
		   total == THREADS * PER_THREAD && n == 10,
	   "concurrent_operation_inserts_all_recorded");
	srv_operation_list_free(v, n);
	memset(&s, 0, sizeof(s));
	ok(st->ops->signer_get(st, ID_S_ALPHA, &s) == SRV_ST_OK &&
		   s.last_signed_at == NOW + 100 + PER_THREAD - 1,
	   "concurrent_inserts_last_signed_at_is_newest_success");
	srv_signer_clear(&s);
}

/* Idempotency-Key (migration 8): a key is its actor's once, checked in the
 * insert's transaction; the record comes back with its request hash and
 * signature; another actor's key never matches. */
typedef struct {
	srv_store *st;
	int t;
	srv_st_rc rc;
} idem_worker;

static void fill_keyed(srv_operation *o, const char *id, const char *actor, const char *key)
{
	fill_op(o, id, ID_S_ALPHA, "success", NOW + 500);
	rs_strlcpy(o->actor_id, actor, sizeof(o->actor_id));
	rs_strlcpy(o->idem_key, key, sizeof(o->idem_key));
	rs_strlcpy(o->request_hash, id, sizeof(o->request_hash));
	o->signature_len = 72;
	memset(o->signature, id[strlen(id) - 1], o->signature_len);
}

static void *idem_insert_worker(void *arg)
{
	idem_worker *w = arg;
	srv_operation o;
	char id[RS_UUID_LEN];

	snprintf(id, sizeof(id), "op-race-%d", w->t);
	fill_keyed(&o, id, ID_CI, "race-key");
	w->rc = w->st->ops->operation_insert(w->st, &o);
	return NULL;
}

static void test_idempotency_keys(void)
{
	char err[512] = "";
	srv_store *st = tb_open("rsign", err, sizeof(err));
	srv_operation o, got;
	pthread_t th[THREADS];
	idem_worker w[THREADS];
	int started = 0, oks = 0, conflicts = 0;

	if (!st)
		tap_bail("cannot reopen %s: %s", dbpath, err);
	ok(sql_int(tb_pg() ? "SELECT count(*) FROM pg_indexes WHERE indexname = 'operations_idem'"
			   : "SELECT count(*) FROM sqlite_master WHERE name = 'operations_idem'") ==
		   1,
	   "migration_8_adds_the_idempotency_index");
	fill_keyed(&o, "op-key-1", ID_CI, "key-1");
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK, "keyed_insert_ok");
	memset(&got, 0, sizeof(got));
	ok(st->ops->operation_find_key(st, ID_CI, "key-1", &got) == SRV_ST_OK &&
		   strcmp(got.id, "op-key-1") == 0 && strcmp(got.request_hash, "op-key-1") == 0 &&
		   got.signature_len == 72 && got.signature[71] == '1' &&
		   strcmp(got.idem_key, "key-1") == 0 && strcmp(got.signer_id, ID_S_ALPHA) == 0,
	   "find_key_returns_the_record_hash_and_signature");
	fill_keyed(&o, "op-key-2", ID_CI, "key-1");
	ok(st->ops->operation_insert(st, &o) == SRV_ST_CONFLICT &&
		   sql_int("SELECT count(*) FROM operations WHERE id = 'op-key-2'") == 0,
	   "same_actor_same_key_conflict_nothing_written");
	ok(st->ops->operation_find_key(st, ID_ALICE, "key-1", &got) == SRV_ST_NOT_FOUND,
	   "another_actor_does_not_find_the_key");
	fill_keyed(&o, "op-key-3", ID_ALICE, "key-1");
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK, "another_actor_may_use_the_same_key");
	fill_op(&o, "op-key-4", ID_S_ALPHA, "denied", NOW + 501);
	rs_strlcpy(o.idem_key, "key-4", sizeof(o.idem_key));
	ok(st->ops->operation_insert(st, &o) != SRV_ST_OK &&
		   sql_int("SELECT count(*) FROM operations WHERE id = 'op-key-4'") == 0,
	   "only_a_success_keeps_a_key");
	for (int i = 0; i < THREADS; i++) {
		w[i] = (idem_worker){.st = st, .t = i};
		if (pthread_create(&th[i], NULL, idem_insert_worker, &w[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		oks += w[i].rc == SRV_ST_OK;
		conflicts += w[i].rc == SRV_ST_CONFLICT;
	}
	ok(started == THREADS && oks == 1 && conflicts == THREADS - 1 &&
		   sql_int("SELECT count(*) FROM operations WHERE idem_key = 'race-key'") == 1,
	   "concurrent_inserts_of_one_key_one_record (ok %d, conflict %d of %d)", oks, conflicts,
	   started);
	st->ops->close(st);
}

static void test_reopen_keeps_data(void)
{
	char err[512] = "";
	srv_store *st = tb_open("rsign", err, sizeof(err));
	srv_signer s;
	size_t n = 0, total = 0;
	srv_operation *v = NULL;

	memset(&s, 0, sizeof(s));
	ok(st && st->ops->signer_get(st, "bravo", &s) == SRV_ST_OK &&
		   s.last_signed_at == NOW + 20 &&
		   st->ops->operation_list(st, ID_S_BRAVO, NULL, 0, 1, &v, &n, &total) ==
			   SRV_ST_OK &&
		   total == 10,
	   "reopen_keeps_data");
	srv_signer_clear(&s);
	srv_operation_list_free(v, n);
	if (st)
		st->ops->close(st);
}

/* ---- credentials (issue 10, item 8) and row MACs (item 9) ---------------- */

#define H_T1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H_T2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H_T3 "3333333333333333333333333333333333333333333333333333333333333333"
#define H_T4 "4444444444444444444444444444444444444444444444444444444444444444"
#define H_S1 "5151515151515151515151515151515151515151515151515151515151515151"
#define H_S2 "5252525252525252525252525252525252525252525252525252525252525252"
#define H_S3 "5353535353535353535353535353535353535353535353535353535353535353"
#define TID(n) "00000000-0000-4000-8000-00000000070" #n

/* The tests' row MAC (tb_mac), counted in mac_calls; fails while mac_down
 * is set. */
static int mac_down;
static unsigned long mac_calls;

static int test_mac(void *arg, const unsigned char *msg, size_t len, unsigned char out[SRV_MAC_LEN])
{
	if (mac_down || len > SRV_MAC_MSG_MAX)
		return -1;
	mac_calls++;
	return tb_mac(arg, msg, len, out);
}

static srv_token mk_token(const char *id, const char *principal_id, const char *kind,
			  const char *name, time_t created, time_t expires)
{
	srv_token t;

	memset(&t, 0, sizeof(t));
	rs_strlcpy(t.id, id, sizeof(t.id));
	rs_strlcpy(t.principal_id, principal_id, sizeof(t.principal_id));
	rs_strlcpy(t.kind, kind, sizeof(t.kind));
	rs_strlcpy(t.name, name, sizeof(t.name));
	t.created_at = created;
	t.expires_at = expires;
	return t;
}

static void test_credentials(const char *path)
{
	char err[512] = "";
	srv_store *st = tb_open(path, err, sizeof(err));
	srv_principal p = {0};
	srv_token t1, t2, t3, ta, got, *v = NULL;
	srv_secret s2, s3, *sv = NULL;
	size_t n = 0, total = 0;

	if (!st)
		tap_bail("open %s: %s", path, err);
	ok(add_principal(st, ID_ALICE, "user", "alice", 0, NULL) == SRV_ST_OK &&
		   add_principal(st, ID_CI, "identity", "ci", 0, "cid-c") == SRV_ST_OK &&
		   st->ops->secret_set(st, ID_CI, "cid-c", H_S1, &AUD) == SRV_ST_OK,
	   "cred_fixtures");
	t1 = mk_token(TID(1), ID_ALICE, "api", "laptop", NOW, 0);
	t2 = mk_token(TID(2), ID_ALICE, "api", "", NOW + 1, NOW + 100);
	t3 = mk_token(TID(3), ID_ALICE, "api", "third", NOW + 2, 0);
	ta = mk_token(TID(4), ID_ALICE, "access", "", NOW + 3, NOW + 3600);
	ok(st->ops->token_create(st, &t1, H_T1, 2, &AUD) == SRV_ST_OK &&
		   st->ops->token_create(st, &t2, H_T2, 2, &AUD) == SRV_ST_OK,
	   "token_create_up_to_the_cap");
	ok(st->ops->token_create(st, &t3, H_T3, 2, &AUD) == SRV_ST_CONFLICT &&
		   sql_int_on(path, "SELECT count(*) FROM tokens WHERE id = '" TID(3) "'") == 0,
	   "token_create_past_the_cap_conflict_nothing_written");
	ok(st->ops->token_create(st, &ta, H_T4, 2, &AUD) == SRV_ST_OK,
	   "token_create_access_tokens_not_counted_by_the_cap");
	t3.created_at = NOW + 200; /* t2 has expired by then: 1 of 2 */
	ok(st->ops->token_create(st, &t3, H_T3, 2, &AUD) == SRV_ST_OK,
	   "token_create_expired_tokens_not_counted_by_the_cap");
	ok(st->ops->token_create(st, &t1, H_T1, 0, &AUD) == SRV_ST_CONFLICT,
	   "token_create_same_hash_conflict");
	ok(st->ops->token_list(st, ID_ALICE, NOW + 50, 0, 0, &v, &n, &total) == SRV_ST_OK &&
		   n == 4 && total == 4 && strcmp(v[0].id, TID(1)) == 0 &&
		   strcmp(v[0].name, "laptop") == 0 && strcmp(v[0].kind, "api") == 0 &&
		   v[0].created_at == NOW && v[0].expires_at == 0 && v[0].last_used_at == 0 &&
		   strcmp(v[1].id, TID(2)) == 0 && v[1].expires_at == NOW + 100 &&
		   strcmp(v[2].id, TID(4)) == 0 && strcmp(v[2].kind, "access") == 0 &&
		   strcmp(v[3].id, TID(3)) == 0,
	   "token_list_oldest_first_with_metadata");
	srv_token_list_free(v, n);
	ok(st->ops->token_list(st, ID_ALICE, NOW + 150, 1, 1, &v, &n, &total) == SRV_ST_OK &&
		   n == 1 && total == 3 && strcmp(v[0].id, TID(4)) == 0,
	   "token_list_pages_and_leaves_out_expired");
	srv_token_list_free(v, n);
	ok(st->ops->token_lookup(st, H_T1, NOW, &p, &got) == SRV_ST_OK &&
		   strcmp(p.id, ID_ALICE) == 0 && strcmp(got.id, TID(1)) == 0 &&
		   strcmp(got.name, "laptop") == 0,
	   "token_lookup_returns_the_token_metadata");
	srv_principal_clear(&p);
	ok(st->ops->token_touch(st, TID(1), NOW + 10) == SRV_ST_OK &&
		   sql_int_on(path, "SELECT last_used_at FROM tokens WHERE id = '" TID(1) "'") ==
			   NOW + 10,
	   "token_touch_records_the_use");
	ok(st->ops->token_touch(st, TID(1), NOW + 10 + SRV_TOKEN_TOUCH_SECS - 1) == SRV_ST_OK &&
		   sql_int_on(path, "SELECT last_used_at FROM tokens WHERE id = '" TID(1) "'") ==
			   NOW + 10,
	   "token_touch_writes_at_most_once_a_minute");
	ok(st->ops->token_touch(st, TID(1), NOW + 10 + SRV_TOKEN_TOUCH_SECS) == SRV_ST_OK &&
		   sql_int_on(path, "SELECT last_used_at FROM tokens WHERE id = '" TID(1) "'") ==
			   NOW + 10 + SRV_TOKEN_TOUCH_SECS,
	   "token_touch_after_a_minute_writes_again");
	ok(st->ops->token_revoke(st, ID_CI, TID(1), &AUD) == SRV_ST_NOT_FOUND &&
		   st->ops->token_lookup(st, H_T1, NOW, &p, NULL) == SRV_ST_OK,
	   "token_revoke_under_another_principal_not_found");
	srv_principal_clear(&p);
	ok(st->ops->token_revoke(st, ID_ALICE, TID(1), &AUD) == SRV_ST_OK &&
		   st->ops->token_lookup(st, H_T1, NOW, &p, NULL) == SRV_ST_NOT_FOUND &&
		   st->ops->token_revoke(st, ID_ALICE, TID(1), &AUD) == SRV_ST_NOT_FOUND,
	   "token_revoke_removes_the_token");

	/* rotation */
	memset(&s2, 0, sizeof(s2));
	rs_strlcpy(s2.id, TID(5), sizeof(s2.id));
	rs_strlcpy(s2.principal_id, ID_CI, sizeof(s2.principal_id));
	s2.created_at = NOW;
	ok(st->ops->secret_rotate(st, &s2, H_S2, NOW + 600, &AUD) == SRV_ST_OK &&
		   st->ops->secret_lookup(st, "cid-c", H_S1, NOW + 599, &p) == SRV_ST_OK,
	   "secret_rotate_old_secret_works_during_the_overlap");
	srv_principal_clear(&p);
	ok(st->ops->secret_lookup(st, "cid-c", H_S1, NOW + 600, &p) == SRV_ST_NOT_FOUND &&
		   st->ops->secret_lookup(st, "cid-c", H_S2, NOW + 600, &p) == SRV_ST_OK &&
		   strcmp(p.id, ID_CI) == 0,
	   "secret_rotate_old_secret_ends_with_the_overlap");
	srv_principal_clear(&p);
	ok(st->ops->secret_list(st, ID_CI, NOW + 1, &sv, &n) == SRV_ST_OK && n == 2 &&
		   sv[0].expires_at == NOW + 600 && strcmp(sv[1].id, TID(5)) == 0 &&
		   sv[1].expires_at == 0 && strcmp(sv[1].client_id, "cid-c") == 0,
	   "secret_list_shows_both_with_expiry");
	srv_secret_list_free(sv, n);
	s3 = s2;
	rs_strlcpy(s3.id, TID(6), sizeof(s3.id));
	s3.created_at = NOW + 2;
	ok(st->ops->secret_rotate(st, &s3, H_S3, NOW + 2, &AUD) == SRV_ST_OK &&
		   st->ops->secret_lookup(st, "cid-c", H_S1, NOW + 3, &p) == SRV_ST_NOT_FOUND &&
		   st->ops->secret_lookup(st, "cid-c", H_S2, NOW + 3, &p) == SRV_ST_NOT_FOUND &&
		   sql_int_on(path, "SELECT count(*) FROM secrets") == 1,
	   "secret_rotate_without_overlap_deletes_the_others");
	ok(st->ops->secret_lookup(st, "cid-c", H_S3, NOW + 3, &p) == SRV_ST_OK,
	   "secret_rotate_new_secret_works");
	srv_principal_clear(&p);
	rs_strlcpy(s3.principal_id, ID_ALICE, sizeof(s3.principal_id));
	rs_strlcpy(s3.id, TID(7), sizeof(s3.id));
	ok(st->ops->secret_rotate(st, &s3, H_S1, NOW, &AUD) == SRV_ST_NOT_FOUND,
	   "secret_rotate_of_a_user_not_found");
	st->ops->close(st);
}

/* The rows written without a MAC function: none has a MAC. */
static void test_row_mac_encoding(void)
{
	unsigned char a[SRV_MAC_MSG_MAX], b[SRV_MAC_MSG_MAX], ma[SRV_MAC_LEN], mb[SRV_MAC_LEN];
	size_t la = srv_mac_msg_member("s1", "pa", "operator", a);
	size_t lb = srv_mac_msg_member("s1p", "a", "operator", b);
	char big[SRV_MAC_MSG_MAX];
	srv_principal p;

	ok(la > 0 && lb > 0 && (la != lb || memcmp(a, b, la) != 0) &&
		   test_mac(NULL, a, la, ma) == 0 && test_mac(NULL, b, lb, mb) == 0 &&
		   memcmp(ma, mb, sizeof(ma)) != 0,
	   "mac_encoding_a_field_boundary_shift_changes_the_mac");
	ok(la == 4 + 7 + 4 + 2 + 4 + 2 + 4 + 8 && memcmp(a, "\0\0\0\7members\0\0\0\2s1", 17) == 0,
	   "mac_encoding_is_length_prefixed_big_endian");
	la = srv_mac_msg_approver("p1", "u1", a);
	lb = srv_mac_msg_member("p1", "u1", "", b);
	ok(la > 0 && lb > 0 && (la != lb || memcmp(a, b, la) != 0), "mac_encoding_names_the_table");
	memset(&p, 0, sizeof(p));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	p.name = big;
	ok(srv_mac_msg_principal(&p, a) == 0, "mac_encoding_refuses_a_row_that_does_not_fit");
	memset(&p, 0, sizeof(p));
	p.name = "n";
	la = srv_mac_msg_principal(&p, a);
	p.admin = 1;
	lb = srv_mac_msg_principal(&p, b);
	ok(la > 0 && la == lb && memcmp(a, b, la) != 0, "mac_encoding_covers_the_admin_flag");
	/* the metrics role (schema 9): a row without it encodes exactly as
	 * before, so rows sealed earlier still pass; with it, one more field */
	memset(&p, 0, sizeof(p));
	p.name = "n";
	rs_strlcpy(p.type, "user", sizeof(p.type));
	static const unsigned char before9[] = "\0\0\0\12principals\0\0\0\0\0\0\0\4user"
					       "\0\0\0\1n\0\0\0\1"
					       "0\0\0\0\1"
					       "0\0\0\0\0";
	la = srv_mac_msg_principal(&p, a);
	ok(la == sizeof(before9) - 1 && memcmp(a, before9, la) == 0,
	   "mac_encoding_of_a_principal_without_metrics_is_unchanged");
	p.metrics = 1;
	lb = srv_mac_msg_principal(&p, b);
	ok(lb == la + 5 && memcmp(a, b, la) == 0 &&
		   memcmp(b + la,
			  "\0\0\0\1"
			  "1",
			  5) == 0,
	   "mac_encoding_appends_the_metrics_role_when_set");
}

/* An identity's OIDC config (migration 12): stored and read on both
 * backends, changed and removed, refused for users, and covered by the
 * row's MAC only when set, so rows sealed before it existed still pass. */
static void test_principal_oidc(const char *path)
{
	static const char cfg[] = "{\"issuer\":\"https://ci.example\",\"audiences\":[\"a\"]}";
	static const char cfg2[] = "{\"issuer\":\"https://ci.example\",\"audiences\":[\"b\"]}";
	unsigned char a[SRV_MAC_MSG_MAX], b[SRV_MAC_MSG_MAX];
	char err[512] = "";
	srv_principal p, got = {0};
	size_t la, lb;

	memset(&p, 0, sizeof(p));
	p.name = "n";
	la = srv_mac_msg_principal(&p, a);
	p.oidc = "";
	lb = srv_mac_msg_principal(&p, b);
	ok(la > 0 && la == lb && memcmp(a, b, la) == 0,
	   "oidc_unset_leaves_the_principal_encoding_as_before");
	p.oidc = (char *)cfg;
	lb = srv_mac_msg_principal(&p, b);
	p.oidc = (char *)cfg2;
	size_t lc = srv_mac_msg_principal(&p, a + SRV_MAC_MSG_MAX / 2);
	ok(lb == la + 4 + 64 && lc == lb && memcmp(b, a + SRV_MAC_MSG_MAX / 2, lb) != 0,
	   "oidc_set_is_covered_by_the_encoding");

	srv_store *st = tb_open(path, err, sizeof(err));
	if (!st)
		tap_bail("open %s: %s", path, err);
	/* written before a MAC function, then sealed: the config and an
	 * access token's login sealed with their rows */
	size_t sealed = 0;
	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, ID_ADMIN, sizeof(p.id));
	rs_strlcpy(p.type, "identity", sizeof(p.type));
	rs_strlcpy(p.client_id, "cid-early", sizeof(p.client_id));
	p.name = "ci-early";
	p.oidc = (char *)cfg;
	/* and a principal with the metrics role, also written before */
	srv_principal pm;
	memset(&pm, 0, sizeof(pm));
	rs_strlcpy(pm.id, ID_METRICS, sizeof(pm.id));
	rs_strlcpy(pm.type, "user", sizeof(pm.type));
	pm.name = "scraper-early";
	pm.metrics = 1;
	ok(st->ops->principal_insert(st, &p, NULL, &AUD) == SRV_ST_OK &&
		   st->ops->principal_insert(st, &pm, NULL, &AUD) == SRV_ST_OK &&
		   st->ops->token_insert(st, "33", ID_ADMIN, "access", NOW + 3600, cfg2, NULL) ==
			   SRV_ST_OK &&
		   (st->ops->set_row_mac(st, test_mac, NULL), 1) &&
		   st->ops->seal_rows(st, &sealed) == SRV_ST_OK && sealed == 3 &&
		   st->ops->token_lookup(st, "33", NOW, &got, NULL) == SRV_ST_OK && got.oidc &&
		   strcmp(got.oidc, cfg) == 0 && got.login && strcmp(got.login, cfg2) == 0,
	   "oidc_rows_from_before_the_mac_are_sealed_with_it");
	srv_principal_clear(&got);
	ok(st->ops->principal_get(st, ID_METRICS, &got) == SRV_ST_OK && got.metrics == 1,
	   "a_metrics_principal_from_before_the_mac_is_sealed_with_its_role");
	srv_principal_clear(&got);
	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, ID_CI, sizeof(p.id));
	rs_strlcpy(p.type, "identity", sizeof(p.type));
	rs_strlcpy(p.client_id, "cid-oidc", sizeof(p.client_id));
	p.name = "ci-oidc";
	p.oidc = (char *)cfg;
	ok(st->ops->principal_insert(st, &p, NULL, &AUD) == SRV_ST_OK &&
		   st->ops->principal_get(st, ID_CI, &got) == SRV_ST_OK && got.oidc &&
		   strcmp(got.oidc, cfg) == 0,
	   "oidc_stored_and_read");
	srv_principal_clear(&got);
	ok(st->ops->principal_set_oidc(st, ID_CI, cfg2, &AUD) == SRV_ST_OK &&
		   st->ops->principal_get(st, ID_CI, &got) == SRV_ST_OK && got.oidc &&
		   strcmp(got.oidc, cfg2) == 0,
	   "oidc_changed");
	srv_principal_clear(&got);
	ok(sql_exec_on(path, "UPDATE principals SET oidc = replace(oidc, '\"b\"', '\"evil\"')") ==
			   0 &&
		   st->ops->principal_get(st, ID_CI, &got) == SRV_ST_NOT_FOUND,
	   "oidc_tampered_row_refused");
	ok(sql_exec_on(path, "UPDATE principals SET oidc = replace(oidc, '\"evil\"', '\"b\"')") ==
			   0 &&
		   st->ops->principal_set_oidc(st, ID_CI, NULL, &AUD) == SRV_ST_OK &&
		   st->ops->principal_get(st, ID_CI, &got) == SRV_ST_OK && got.oidc == NULL &&
		   sql_int_on(path, "SELECT count(*) FROM principals WHERE oidc IS NULL") >= 1,
	   "oidc_removed");
	srv_principal_clear(&got);
	ok(add_principal(st, ID_BOB, "user", "bob-oidc", 0, NULL) == SRV_ST_OK &&
		   st->ops->principal_set_oidc(st, ID_BOB, cfg, &AUD) == SRV_ST_NOT_FOUND &&
		   st->ops->principal_set_oidc(st, ID_ALICE, cfg, &AUD) == SRV_ST_NOT_FOUND,
	   "oidc_only_for_an_existing_identity");

	/* an access token's login: read back by token_lookup, MAC-covered */
	static const char login[] = "{\"issuer\":\"https://ci.example\",\"subject\":\"s\"}";
	static const char h_login[] =
		"1111111111111111111111111111111111111111111111111111111111111111";
	static const char h_plain[] =
		"2222222222222222222222222222222222222222222222222222222222222222";
	ok(st->ops->token_insert(st, h_login, ID_CI, "access", NOW + 3600, login, NULL) ==
			   SRV_ST_OK &&
		   st->ops->token_lookup(st, h_login, NOW, &got, NULL) == SRV_ST_OK && got.login &&
		   strcmp(got.login, login) == 0,
	   "oidc_login_of_an_access_token_read_back");
	srv_principal_clear(&got);
	ok(st->ops->token_insert(st, h_plain, ID_CI, "access", NOW + 3600, NULL, NULL) ==
			   SRV_ST_OK &&
		   st->ops->token_lookup(st, h_plain, NOW, &got, NULL) == SRV_ST_OK && !got.login,
	   "oidc_no_login_without_one");
	srv_principal_clear(&got);
	ok(sql_exec_on(path, "UPDATE tokens SET oidc = replace(oidc, '\"s\"', '\"t\"')") == 0 &&
		   st->ops->token_lookup(st, h_login, NOW, &got, NULL) == SRV_ST_NOT_FOUND &&
		   sql_exec_on(path, "UPDATE tokens SET oidc = '"
				     "{}"
				     "' WHERE hash = '2222222222222222"
				     "222222222222222222222222222222222222222222222222'") == 0 &&
		   st->ops->token_lookup(st, h_plain, NOW, &got, NULL) == SRV_ST_NOT_FOUND,
	   "oidc_login_changed_or_added_outside_refused");
	srv_principal_clear(&got);
	unsigned char m1[SRV_MAC_MSG_MAX], m2[SRV_MAC_MSG_MAX];
	ok(srv_mac_msg_token("i", "h", "p", "access", 5, NULL, m1) ==
			   srv_mac_msg_token("i", "h", "p", "access", 5, "", m2) &&
		   srv_mac_msg_token("i", "h", "p", "access", 5, login, m2) >
			   srv_mac_msg_token("i", "h", "p", "access", 5, NULL, m1),
	   "oidc_login_in_the_token_encoding_only_when_set");
	st->ops->close(st);
}

static void test_row_macs(const char *path)
{
	char err[512] = "";
	srv_store *st = tb_open(path, err, sizeof(err));
	srv_principal p = {0}, *pv = NULL;
	srv_role role = SRV_ROLE_NONE, *roles = NULL;
	srv_policy pol, got;
	srv_id appr[2];
	size_t n = 0, total = 0, sealed = 0;
	srv_token t;

	if (!st)
		tap_bail("open %s: %s", path, err);
	/* written before any MAC function: the rows of a database from
	 * before schema 7 */
	ok(add_principal(st, ID_ADMIN, "user", "admin", 1, NULL) == SRV_ST_OK &&
		   add_principal(st, ID_BOB, "user", "bob", 0, NULL) == SRV_ST_OK &&
		   sql_int_on(path, "SELECT count(*) FROM principals WHERE mac IS NULL") == 2,
	   "mac_none_without_a_function");
	st->ops->set_row_mac(st, test_mac, NULL);
	ok(st->ops->principal_get(st, ID_ADMIN, &p) == SRV_ST_NOT_FOUND,
	   "mac_unsealed_row_refused_once_a_function_is_set");
	ok(st->ops->seal_rows(st, &sealed) == SRV_ST_OK && sealed == 2 &&
		   st->ops->principal_get(st, ID_ADMIN, &p) == SRV_ST_OK && p.admin == 1,
	   "mac_seal_rows_seals_the_old_rows");
	srv_principal_clear(&p);
	ok(st->ops->seal_rows(st, &sealed) == SRV_ST_OK && sealed == 0,
	   "mac_seal_rows_again_seals_nothing");

	/* a token of bob, tampered with in every way that grants power */
	t = mk_token(TID(1), ID_BOB, "api", "", NOW, 0);
	ok(st->ops->token_create(st, &t, H_T1, 0, &AUD) == SRV_ST_OK &&
		   st->ops->token_lookup(st, H_T1, NOW, &p, NULL) == SRV_ST_OK &&
		   strcmp(p.id, ID_BOB) == 0,
	   "mac_sealed_token_passes");
	srv_principal_clear(&p);
	ok(sql_exec_on(path, "UPDATE tokens SET principal_id = '" ID_ADMIN
			     "' WHERE id = '" TID(1) "'") == 0 &&
		   st->ops->token_lookup(st, H_T1, NOW, &p, NULL) == SRV_ST_NOT_FOUND,
	   "mac_token_moved_to_another_principal_refused");
	ok(sql_exec_on(path, "UPDATE tokens SET principal_id = '" ID_BOB
			     "' WHERE id = '" TID(1) "'") == 0 &&
		   st->ops->token_lookup(st, H_T1, NOW, &p, NULL) == SRV_ST_OK,
	   "mac_token_put_back_passes");
	srv_principal_clear(&p);
	ok(sql_exec_on(path, "INSERT INTO tokens (hash, principal_id, kind, created_at, id)"
			     " VALUES ('" H_T2 "', '" ID_ADMIN "', 'api', 0, '" TID(2) "')") == 0 &&
		   st->ops->token_lookup(st, H_T2, NOW, &p, NULL) == SRV_ST_NOT_FOUND &&
		   st->ops->token_list(st, ID_ADMIN, NOW, 0, 0, &(srv_token *){NULL}, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0,
	   "mac_inserted_token_refused_and_not_listed");
	ok(sql_exec_on(path, "UPDATE principals SET admin = 1 WHERE id = '" ID_BOB "'") == 0 &&
		   st->ops->token_lookup(st, H_T1, NOW, &p, NULL) == SRV_ST_NOT_FOUND &&
		   st->ops->principal_get(st, "bob", &p) == SRV_ST_NOT_FOUND,
	   "mac_principal_flipped_to_admin_refused");
	ok(st->ops->principal_list(st, 0, 0, &pv, &n, &total) == SRV_ST_OK && n == 1 &&
		   strcmp(pv[0].id, ID_ADMIN) == 0,
	   "mac_principal_list_leaves_the_tampered_row_out");
	srv_principal_list_free(pv, n);
	ok(st->ops->principal_set_disabled(st, ID_BOB, 1, &AUD) == SRV_ST_NOT_FOUND &&
		   sql_int_on(path, "SELECT disabled FROM principals WHERE id = '" ID_BOB "'") == 0,
	   "mac_a_tampered_row_is_never_sealed_again");
	ok(sql_exec_on(path, "UPDATE principals SET admin = 0 WHERE id = '" ID_BOB "'") == 0 &&
		   st->ops->principal_set_disabled(st, ID_BOB, 1, &AUD) == SRV_ST_OK &&
		   st->ops->principal_get(st, ID_BOB, &p) == SRV_ST_OK && p.disabled == 1,
	   "mac_an_update_seals_the_new_row");
	srv_principal_clear(&p);

	/* memberships */
	ok(add_key(st, ID_KEY1, "k1", RS_KEY_EC_P256, spki1, sizeof(spki1), 1) == SRV_ST_OK &&
		   add_cert(st, ID_CERT1, ID_KEY1, "", NOW - 10, NOW + 86400) == SRV_ST_OK &&
		   add_signer(st, ID_S_ALPHA, "alpha", "", ID_CERT1) == SRV_ST_OK &&
		   st->ops->member_set(st, ID_S_ALPHA, ID_ADMIN, SRV_ROLE_AUDITOR, &AUD) ==
			   SRV_ST_OK &&
		   st->ops->member_role(st, ID_S_ALPHA, ID_ADMIN, &role) == SRV_ST_OK &&
		   role == SRV_ROLE_AUDITOR,
	   "mac_sealed_membership_passes");
	ok(sql_exec_on(path, "UPDATE members SET role = 'operator'") == 0 &&
		   st->ops->member_role(st, ID_S_ALPHA, ID_ADMIN, &role) == SRV_ST_OK &&
		   role == SRV_ROLE_NONE,
	   "mac_membership_role_changed_gives_no_role");
	ok(sql_exec_on(path,
		       "INSERT INTO members (signer_id, principal_id, role) VALUES ('" ID_S_ALPHA
		       "', '" ID_BOB "', 'operator')") == 0 &&
		   st->ops->member_role(st, ID_S_ALPHA, ID_BOB, &role) == SRV_ST_OK &&
		   role == SRV_ROLE_NONE &&
		   st->ops->member_list(st, ID_S_ALPHA, &pv, &roles, &n) == SRV_ST_OK && n == 0,
	   "mac_inserted_membership_gives_no_role_and_is_not_listed");
	srv_principal_list_free(pv, n);
	free(roles);

	/* policies and their approvers */
	memset(&pol, 0, sizeof(pol));
	rs_strlcpy(pol.id, ID_S_PCT, sizeof(pol.id));
	pol.name = "pol";
	rs_strlcpy(appr[0], ID_ADMIN, sizeof(appr[0]));
	pol.approvers = appr;
	pol.n_approvers = 1;
	pol.required_approvals = 1;
	pol.request_ttl = 3600;
	ok(st->ops->policy_insert(st, &pol, &AUD) == SRV_ST_OK &&
		   sql_exec_on(path, "INSERT INTO policy_approvers (policy_id, principal_id, pos)"
				     " VALUES ('" ID_S_PCT "', '" ID_BOB "', 1)") == 0 &&
		   st->ops->policy_get(st, ID_S_PCT, &got) == SRV_ST_OK && got.n_approvers == 1 &&
		   strcmp(got.approvers[0], ID_ADMIN) == 0,
	   "mac_inserted_approver_dropped_from_the_policy");
	srv_policy_clear(&got);
	ok(sql_exec_on(path, "UPDATE policies SET max_signings = 99") == 0 &&
		   st->ops->policy_get(st, ID_S_PCT, &got) == SRV_ST_NOT_FOUND &&
		   st->ops->policy_list(st, NULL, 0, 0, &(srv_policy *){NULL}, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0,
	   "mac_changed_policy_refused_and_not_listed");

	/* the token down: a row verified before still passes, a new one waits */
	ok(st->ops->member_set(st, ID_S_ALPHA, ID_ADMIN, SRV_ROLE_AUDITOR, &AUD) == SRV_ST_OK &&
		   st->ops->principal_get(st, ID_ADMIN, &p) == SRV_ST_OK,
	   "mac_rows_verified_while_up");
	srv_principal_clear(&p);
	mac_down = 1;
	unsigned long calls = mac_calls;
	ok(st->ops->principal_get(st, ID_ADMIN, &p) == SRV_ST_OK && mac_calls == calls,
	   "mac_verified_row_passes_without_the_token");
	srv_principal_clear(&p);
	ok(st->ops->member_set(st, ID_S_ALPHA, ID_ADMIN, SRV_ROLE_OPERATOR, &AUD) ==
		   SRV_ST_UNAVAILABLE,
	   "mac_write_while_the_token_is_down_unavailable");
	mac_down = 0;
	st->ops->close(st);
}
/* ---- the hash chains (store_chain.h) ------------------------------------ */

static EVP_PKEY *cp_key; /* the checkpoint key of these tests */

/* the verify callback of srv_chain_verify: ECDSA P-256 over the message */
static int cp_verify(void *arg, const srv_checkpoint *c)
{
	unsigned char msg[256];
	size_t n = srv_checkpoint_msg(c, msg, sizeof(msg));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int v = -1;

	(void)arg;
	if (n && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, cp_key) == 1)
		v = EVP_DigestVerify(md, c->sig, c->sig_len, msg, n) == 1 ? 0 : 1;
	EVP_MD_CTX_free(md);
	return v;
}

/* Signs the head of chain c of st as a checkpoint (what rsignd does with
 * the token's key). */
static int checkpoint_now(srv_store *st, srv_chain c)
{
	srv_checkpoint cp = {.chain = c, .created_at = NOW};
	unsigned char msg[256];
	size_t n, siglen = sizeof(cp.sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = -1;

	if (st->ops->chain_head(st, c, &cp.seq, cp.hash) != SRV_ST_OK ||
	    !(n = srv_checkpoint_msg(&cp, msg, sizeof(msg))))
		goto out;
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, cp_key) == 1 &&
	    EVP_DigestSign(md, cp.sig, &siglen, msg, n) == 1) {
		cp.sig_len = siglen;
		rs_strlcpy(cp.replica, "test", sizeof(cp.replica));
		rc = st->ops->checkpoint_insert(st, &cp) == SRV_ST_OK ? 0 : -1;
	}
out:
	EVP_MD_CTX_free(md);
	return rc;
}

/* A log with 6 history records (successes, denials, a failure, one under an
 * Idempotency-Key) and 6 audit entries, checkpointed after record 4 of the
 * history and entry 4 of the audit log, then 2 more of each. */
static srv_store *chain_fixture(const char *db)
{
	char err[512] = "", id[40];
	srv_operation o;
	srv_store *st = tb_open(db, err, sizeof(err));
	int good = st != NULL;

	if (!st)
		tap_bail("cannot create %s: %s", db, err);
	good = good && add_principal(st, ID_ADMIN, "user", "root-admin", 1, NULL) == SRV_ST_OK &&
	       add_principal(st, ID_ALICE, "user", "alice", 0, NULL) == SRV_ST_OK &&
	       add_principal(st, ID_CI, "identity", "ci-build", 0, "cid-1") == SRV_ST_OK &&
	       add_principal(st, ID_BOB, "user", "bob", 0, NULL) == SRV_ST_OK;
	static const char *const status[6] = {"success", "denied", "success",
					      "failed",	 "denied", "success"};
	for (int i = 0; i < 6 && good; i++) {
		snprintf(id, sizeof(id), "chain-op-%d", i + 1);
		fill_op(&o, id, ID_S_ALPHA, status[i], NOW + i);
		if (i == 2) {
			rs_strlcpy(o.idem_key, "key-1", sizeof(o.idem_key));
			rs_strlcpy(o.request_hash, "ab", sizeof(o.request_hash));
			memcpy(o.signature, "\x30\x01\x00", 3);
			o.signature_len = 3;
		}
		good = st->ops->operation_insert(st, &o) == SRV_ST_OK;
		if (i == 3)
			good = good && checkpoint_now(st, SRV_CHAIN_HISTORY) == 0 &&
			       st->ops->principal_set_disabled(st, ID_BOB, 1, &AUD) == SRV_ST_OK &&
			       checkpoint_now(st, SRV_CHAIN_AUDIT) == 0;
	}
	good = good && st->ops->principal_set_disabled(st, ID_BOB, 0, &AUD) == SRV_ST_OK &&
	       st->ops->principal_delete(st, ID_BOB, &AUD) == SRV_ST_OK;
	if (!good)
		tap_bail("cannot fill %s", db);
	return st;
}

/* Runs a walk; "ok" or "<kind> <seq> <id>" into out. */
static const char *walk(srv_store *st, srv_chain c, int with_cps, char *out, size_t n)
{
	srv_chain_report rep;

	if (srv_chain_verify(st, c, with_cps ? cp_verify : NULL, NULL, &rep) != SRV_ST_OK)
		snprintf(out, n, "error");
	else if (rep.bad == SRV_CHAIN_GOOD)
		snprintf(out, n, "ok %lld/%lld/%lld", rep.records, rep.tombstones, rep.checkpoints);
	else
		snprintf(out, n, "%s %lld %s", srv_chain_bad_name(rep.bad), rep.seq, rep.id);
	return out;
}

typedef struct {
	const char *name; /* the test's name */
	const char *sql;  /* the tampering, run on a fresh fixture */
	srv_chain c;
	const char *want; /* what the walk says */
} tamper_case;

/* Writes past rsignd, as someone with the database would. {H}/{A}: the table
 * seq of the record with that chain_seq (history / audit). */
static const tamper_case tampers[] = {
	{"history_edit_is_changed",
	 "UPDATE operations SET actor_name = 'mallory' WHERE chain_seq = 3", SRV_CHAIN_HISTORY,
	 "changed 3 chain-op-3"},
	{"history_delete_is_removed", "DELETE FROM operations WHERE chain_seq = 3",
	 SRV_CHAIN_HISTORY, "removed 3 chain-op-4"},
	{"history_insert_is_inserted",
	 "INSERT INTO operations (id, signer_id, status, actor_type, actor_id, actor_name,"
	 " created_at) VALUES ('forged', '" ID_S_ALPHA "', 'success', 'user', '" ID_ALICE
	 "', 'alice', 1)",
	 SRV_CHAIN_HISTORY, "inserted 7 forged"},
	{"history_reorder_is_reordered",
	 "UPDATE operations SET seq = -seq WHERE chain_seq IN (2, 3);"
	 "UPDATE operations SET seq = (SELECT -seq FROM operations WHERE chain_seq = 3)"
	 " WHERE chain_seq = 2 AND seq < 0;"
	 "UPDATE operations SET seq = (SELECT seq FROM operations WHERE chain_seq = 2) - 1"
	 " WHERE chain_seq = 3",
	 SRV_CHAIN_HISTORY, "reordered 2 chain-op-3"},
	{"history_last_delete_is_removed", "DELETE FROM operations WHERE chain_seq = 6",
	 SRV_CHAIN_HISTORY, "removed 6 "},
	{"history_success_made_tombstone_is_changed",
	 "UPDATE operations SET purged = 1, status = 'denied', signer_id = '' WHERE chain_seq = 3",
	 SRV_CHAIN_HISTORY, "changed 3 chain-op-3"},
	{"history_tombstone_of_a_success_is_changed",
	 "UPDATE operations SET purged = 1, signer_id = '' WHERE chain_seq = 3", SRV_CHAIN_HISTORY,
	 "changed 3 chain-op-3"},
	{"audit_edit_is_changed", "UPDATE audit SET detail = '{\"x\":1}' WHERE chain_seq = 5",
	 SRV_CHAIN_AUDIT, "changed 5 5"},
	{"audit_delete_is_removed", "DELETE FROM audit WHERE chain_seq = 2", SRV_CHAIN_AUDIT,
	 "removed 2 3"},
	{"audit_insert_is_inserted",
	 "INSERT INTO audit (actor_id, actor_name, action, object_type, object_id, created_at)"
	 " VALUES ('" ID_ALICE "', 'alice', 'grant.create', 'grant', 'g-x', 1)",
	 SRV_CHAIN_AUDIT, "inserted 8 8"},
	{"audit_reorder_is_reordered",
	 "UPDATE audit SET seq = seq + 100 WHERE chain_seq = 2;"
	 "UPDATE audit SET seq = 2 WHERE chain_seq = 3;"
	 "UPDATE audit SET seq = 3 WHERE chain_seq = 2",
	 SRV_CHAIN_AUDIT, "reordered 2 2"},
	{"forged_checkpoint_is_a_bad_checkpoint",
	 "UPDATE checkpoints SET hash = (SELECT hash FROM operations WHERE chain_seq = 3)"
	 " WHERE chain = 'history'",
	 SRV_CHAIN_HISTORY, "bad checkpoint 4 chain-op-4"},
};
#define N_TAMPERS (sizeof(tampers) / sizeof(tampers[0]))

/* The attacker rewrites the history from record 2 on: edits it, then
 * recomputes every hash after it and the head -- all but a checkpoint,
 * which needs the key. */
static int rewrite_history(srv_store *st, const char *db)
{
	srv_chain_row rows[16];
	unsigned char prev[SRV_CHAIN_LEN], h[SRV_CHAIN_LEN];
	char ph[SRV_CHAIN_HEX], bh[SRV_CHAIN_HEX], hh[SRV_CHAIN_HEX], sql[512];
	size_t n = 0;

	if (tb_sql_exec(db, "UPDATE operations SET actor_name = 'mallory' WHERE chain_seq = 2") !=
		    0 ||
	    st->ops->chain_rows(st, SRV_CHAIN_HISTORY, 0, 16, rows, &n) != SRV_ST_OK || n != 6 ||
	    srv_chain_unhex(rows[0].hash, prev) != 0)
		return -1;
	for (size_t i = 1; i < n; i++) {
		if (srv_chain_link(prev, SRV_CHAIN_HISTORY, rows[i].chain_seq, rows[i].kind,
				   rows[i].body, h) != 0)
			return -1;
		srv_chain_hex(prev, ph);
		srv_chain_hex(rows[i].body, bh);
		srv_chain_hex(h, hh);
		snprintf(sql, sizeof(sql),
			 "UPDATE operations SET prev_hash = '%s', body_hash = '%s', hash = '%s'"
			 " WHERE chain_seq = %lld",
			 ph, bh, hh, rows[i].chain_seq);
		if (tb_sql_exec(db, sql) != 0)
			return -1;
		memcpy(prev, h, sizeof(prev));
	}
	snprintf(sql, sizeof(sql), "UPDATE chain_heads SET hash = '%s' WHERE chain = 'history'",
		 hh);
	return tb_sql_exec(db, sql);
}

static void test_chains(void)
{
	char got[160], db[32];
	srv_store *st;

	cp_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!cp_key)
		tap_bail("cannot make the checkpoint key");
	st = chain_fixture("chain");
	/* 4 principal.create, disable, enable, delete = 7 audit entries */
	ok(strcmp(walk(st, SRV_CHAIN_HISTORY, 1, got, sizeof(got)), "ok 6/0/1") == 0,
	   "chain_history_untouched_verifies (%s)", got);
	ok(strcmp(walk(st, SRV_CHAIN_AUDIT, 1, got, sizeof(got)), "ok 7/0/1") == 0,
	   "chain_audit_untouched_verifies (%s)", got);
	ok(tb_sql_int("chain", "SELECT count(*) FROM operations WHERE chain_seq IS NULL") == 0 &&
		   tb_sql_int("chain", "SELECT max(chain_seq) FROM operations") == 6 &&
		   tb_sql_int("chain", "SELECT seq FROM chain_heads WHERE chain = 'audit'") == 7,
	   "chain_seqs_have_no_gap_and_the_head_follows");
	/* another replica's checkpoint of the same head keeps the first */
	ok(checkpoint_now(st, SRV_CHAIN_HISTORY) == 0 &&
		   checkpoint_now(st, SRV_CHAIN_HISTORY) == 0 &&
		   tb_sql_int("chain", "SELECT count(*) FROM checkpoints") == 3,
	   "checkpoint_of_the_same_head_twice_keeps_one");
	st->ops->close(st);

	for (size_t i = 0; i < N_TAMPERS; i++) {
		snprintf(db, sizeof(db), "tamper%zu", i);
		st = chain_fixture(db);
		int done = tb_sql_exec(db, tampers[i].sql) == 0;
		walk(st, tampers[i].c, 1, got, sizeof(got));
		ok(done && strcmp(got, tampers[i].want) == 0, "tamper_%s (%s)", tampers[i].name,
		   got);
		st->ops->close(st);
	}

	st = chain_fixture("rewrite");
	int rewritten = rewrite_history(st, "rewrite") == 0;
	ok(rewritten && strcmp(walk(st, SRV_CHAIN_HISTORY, 0, got, sizeof(got)), "ok 6/0/0") == 0,
	   "tamper_rewritten_history_passes_the_links (%s)", got);
	ok(rewritten && strcmp(walk(st, SRV_CHAIN_HISTORY, 1, got, sizeof(got)),
			       "bad checkpoint 4 chain-op-4") == 0,
	   "tamper_rewritten_history_fails_its_checkpoint (%s)", got);
	st->ops->close(st);

	/* denied records past their retention become tombstones that keep
	 * the chain whole */
	st = chain_fixture("tomb");
	srv_operation o;
	st->ops->history_set_retention(st, 100);
	fill_op(&o, "chain-op-late", ID_S_ALPHA, "success", NOW + 1000);
	ok(st->ops->operation_insert(st, &o) == SRV_ST_OK &&
		   strcmp(walk(st, SRV_CHAIN_HISTORY, 1, got, sizeof(got)), "ok 7/2/1") == 0,
	   "chain_with_tombstones_verifies (%s)", got);
	st->ops->close(st);
	EVP_PKEY_free(cp_key);
}

/* History records and audit entries of a database from before migration
 * 10 (the fixtures below): migration 10 chains them. */
#define OLD_RECORDS                                                                                \
	"INSERT INTO operations (id, signer_id, status, actor_type, actor_id, actor_name,"         \
	" grant_id, created_at) VALUES"                                                            \
	" ('op-1', 's-1', 'success', 'user', '" ID_ALICE "', 'alice', NULL, 1700000010),"          \
	" ('op-2', 's-1', 'denied', 'user', '" ID_ALICE "', 'alice', NULL, 1700000011),"           \
	" ('op-3', 's-1', 'success', 'user', '" ID_ALICE "', 'alice', 'g-1', 1700000012);"         \
	"INSERT INTO audit (actor_id, actor_name, action, object_type, object_id, created_at)"     \
	" VALUES ('" ID_ALICE "', 'alice', 'signer.create', 'signer', 's-1', 1700000005),"         \
	" ('" ID_ALICE "', 'alice', 'member.set', 'signer', 's-1', 1700000006);"

/* Migration 10 chained the records of OLD_RECORDS in seq order: seqs
 * 1..n, each linked to the one before, the head on the last, and op-3's
 * body hash the one the insert path computes for the same record. */
static void check_old_records_chained(void)
{
	static const char *const linked[2] = {
		"SELECT count(*) FROM operations o WHERE o.chain_seq = (SELECT count(*) FROM"
		" operations x WHERE x.seq <= o.seq) AND o.prev_hash = coalesce((SELECT p.hash FROM"
		" operations p WHERE p.chain_seq = o.chain_seq - 1), '" GENESIS_HEX "')"
		" AND length(o.hash) = 64",
		"SELECT count(*) FROM audit o WHERE o.chain_seq = (SELECT count(*) FROM"
		" audit x WHERE x.seq <= o.seq) AND o.prev_hash = coalesce((SELECT p.hash FROM"
		" audit p WHERE p.chain_seq = o.chain_seq - 1), '" GENESIS_HEX "')"
		" AND length(o.hash) = 64"};
	unsigned char body[SRV_CHAIN_LEN];
	char hex[SRV_CHAIN_HEX], sql[256];
	srv_operation o;

	memset(&o, 0, sizeof(o));
	rs_strlcpy(o.id, "op-3", sizeof(o.id));
	rs_strlcpy(o.signer_id, "s-1", sizeof(o.signer_id));
	rs_strlcpy(o.status, "success", sizeof(o.status));
	rs_strlcpy(o.actor_type, "user", sizeof(o.actor_type));
	rs_strlcpy(o.actor_id, ID_ALICE, sizeof(o.actor_id));
	o.actor_name = "alice";
	rs_strlcpy(o.grant_id, "g-1", sizeof(o.grant_id));
	o.created_at = 1700000012;
	ok(srv_chain_body_operation(&o, body) == 0, "chain_body_of_a_record");
	srv_chain_hex(body, hex);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM operations WHERE id = 'op-3' AND"
		 " body_hash = '%s'",
		 hex);
	ok(sql_int_on("v5", linked[0]) == 3 && sql_int_on("v5", linked[1]) == 2 &&
		   sql_int_on("v5", "SELECT count(*) FROM chain_heads h WHERE (chain = 'history'"
				    " AND seq = 3 AND hash = (SELECT hash FROM operations WHERE"
				    " chain_seq = 3)) OR (chain = 'audit' AND seq = 2 AND hash ="
				    " (SELECT hash FROM audit WHERE chain_seq = 2))") == 2,
	   "migration_10_chains_the_records_made_before_it");
	ok(sql_int_on("v5", sql) == 1, "migration_10_hashes_a_record_as_the_insert_path_does");
}

/* A database of schema 5 (only the tables migrations 6 and 7 change) with
 * a user, its token, an identity and its secret: migrating keeps them all,
 * gives the token an id, rebuilds the secret with one, and adds MAC columns
 * left NULL (rsignd seals them at start). */
/* Time-stamp authorities (migration 11): sealed rows, a name unique, a
 * certificate that exists; timestamps whose serial is never taken twice,
 * kept after their TSA is deleted. 10 tests. */
static void test_timestamps(const char *path)
{
	char err[512] = "";
	srv_store *st = tb_open(path, err, sizeof(err));
	srv_tsa t, got, *v = NULL;
	srv_timestamp ts, *sv = NULL;
	size_t n = 0, total = 0;

	if (!st)
		tap_bail("open %s: %s", path, err);
	st->ops->set_row_mac(st, test_mac, NULL);
	ok(add_key(st, ID_KEY1, "key-ec", RS_KEY_EC_P256, spki1, sizeof(spki1), 1) == SRV_ST_OK &&
		   add_cert(st, ID_CERT1, ID_KEY1, "", NOW - 10, NOW + 1000) == SRV_ST_OK,
	   "tsa_fixture_key_and_cert");
	memset(&t, 0, sizeof(t));
	rs_strlcpy(t.id, "00000000-0000-4000-8000-000000000901", sizeof(t.id));
	t.name = "tsa-one";
	rs_strlcpy(t.certificate_id, ID_CERT1, sizeof(t.certificate_id));
	rs_strlcpy(t.policy_oid, "2.999.1", sizeof(t.policy_oid));
	t.accuracy_seconds = 2;
	t.created_at = NOW;
	ok(st->ops->tsa_insert(st, &t, &AUD) == SRV_ST_OK, "tsa_insert_ok");
	srv_tsa dup = t;
	rs_strlcpy(dup.id, "00000000-0000-4000-8000-000000000902", sizeof(dup.id));
	srv_tsa nocert = dup;
	nocert.name = "tsa-two";
	rs_strlcpy(nocert.certificate_id, ID_CERT2, sizeof(nocert.certificate_id));
	ok(st->ops->tsa_insert(st, &dup, &AUD) == SRV_ST_CONFLICT &&
		   st->ops->tsa_insert(st, &nocert, &AUD) == SRV_ST_NOT_FOUND,
	   "tsa_insert_name_taken_conflict_unknown_certificate_not_found");
	t.require_auth = 1;
	memset(&got, 0, sizeof(got));
	ok(st->ops->tsa_update(st, &t, &AUD) == SRV_ST_OK &&
		   st->ops->tsa_get(st, "tsa-one", &got) == SRV_ST_OK && got.require_auth == 1 &&
		   got.accuracy_seconds == 2 && strcmp(got.policy_oid, "2.999.1") == 0 &&
		   strcmp(got.certificate_id, ID_CERT1) == 0 && got.created_at == NOW,
	   "tsa_update_then_get_by_name_round_trips");
	srv_tsa_clear(&got);
	/* requireAuth turned off behind the store's back: the row's MAC fails */
	ok(tb_sql_exec(path, "UPDATE timestamp_authorities SET require_auth = 0") == 0 &&
		   st->ops->tsa_get(st, t.id, &got) == SRV_ST_NOT_FOUND &&
		   st->ops->tsa_list(st, 0, 0, &v, &n, &total) == SRV_ST_OK && n == 0,
	   "tsa_row_changed_outside_the_store_is_refused");
	srv_tsa_list_free(v, n);
	memset(&ts, 0, sizeof(ts));
	rs_strlcpy(ts.tsa_id, t.id, sizeof(ts.tsa_id));
	rs_strlcpy(ts.serial, "4A00000000000000000000000000000A", sizeof(ts.serial));
	rs_strlcpy(ts.imprint_alg, "SHA256", sizeof(ts.imprint_alg));
	rs_strlcpy(ts.imprint, "AB", sizeof(ts.imprint));
	rs_strlcpy(ts.protocol, "rfc3161", sizeof(ts.protocol));
	ts.created_at = NOW;
	ok(st->ops->timestamp_insert(st, &ts) == SRV_ST_OK, "timestamp_insert_ok");
	srv_timestamp other = ts;
	rs_strlcpy(other.tsa_id, dup.id, sizeof(other.tsa_id)); /* another TSA, same serial */
	ok(st->ops->timestamp_insert(st, &other) == SRV_ST_CONFLICT,
	   "timestamp_serial_taken_twice_conflict");
	rs_strlcpy(ts.serial, "4A00000000000000000000000000000B", sizeof(ts.serial));
	ts.created_at = NOW + 1;
	ok(st->ops->timestamp_insert(st, &ts) == SRV_ST_OK &&
		   st->ops->timestamp_list(st, t.id, 0, 1, &sv, &n, &total) == SRV_ST_OK &&
		   n == 1 && total == 2 && strcmp(sv[0].serial, ts.serial) == 0,
	   "timestamp_list_newest_first_paged");
	free(sv);
	sv = NULL;
	ok(tb_sql_exec(path, "UPDATE timestamp_authorities SET require_auth = 1") == 0 &&
		   st->ops->tsa_delete(st, t.id, &AUD) == SRV_ST_OK &&
		   st->ops->tsa_get(st, t.id, &got) == SRV_ST_NOT_FOUND,
	   "tsa_delete_ok");
	ok(st->ops->timestamp_list(st, t.id, 0, 0, &sv, &n, &total) == SRV_ST_OK && n == 2 &&
		   total == 2,
	   "timestamps_outlive_their_tsa");
	free(sv);
	st->ops->close(st);
}

static void test_migrations_6_and_7(void)
{
	static const char v5[] =
		"CREATE TABLE principals (id TEXT PRIMARY KEY NOT NULL, type TEXT NOT NULL,"
		" name TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL DEFAULT 0, client_id TEXT "
		"UNIQUE,"
		" created_at INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE tokens (hash TEXT PRIMARY KEY NOT NULL, principal_id TEXT NOT NULL"
		" REFERENCES principals(id) ON DELETE CASCADE, kind TEXT NOT NULL,"
		" expires_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
		"CREATE TABLE secrets (client_id TEXT PRIMARY KEY NOT NULL, principal_id TEXT NOT"
		" NULL UNIQUE REFERENCES principals(id) ON DELETE CASCADE, secret_hash TEXT NOT "
		"NULL);"
		"CREATE TABLE members (signer_id TEXT NOT NULL, principal_id TEXT NOT NULL,"
		" role TEXT NOT NULL, PRIMARY KEY (signer_id, principal_id)) WITHOUT ROWID;"
		"CREATE TABLE policies (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE);"
		/* what migration 11 refers to (its id column only) */
		"CREATE TABLE certificates (id TEXT PRIMARY KEY NOT NULL);"
		"CREATE TABLE policy_approvers (policy_id TEXT NOT NULL, principal_id TEXT NOT "
		"NULL,"
		" pos INTEGER NOT NULL, PRIMARY KEY (policy_id, principal_id)) WITHOUT ROWID;"
		/* the history and the audit log as schema 5 has them (migrations 8
		 * and 10 change them), with records that migration 10 chains */
		"CREATE TABLE operations (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
		" signer_id TEXT NOT NULL, status TEXT NOT NULL, algorithm TEXT NOT NULL DEFAULT "
		"'',"
		" data_hash TEXT NOT NULL DEFAULT '', is_digest INTEGER NOT NULL DEFAULT 0,"
		" actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_name TEXT NOT NULL,"
		" grant_id TEXT, client_metadata TEXT NOT NULL DEFAULT '{}',"
		" source_ip TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '',"
		" created_at INTEGER NOT NULL, approval TEXT NOT NULL DEFAULT 'none');"
		"CREATE INDEX operations_denied ON operations(created_at) WHERE status = 'denied';"
		"CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, actor_id TEXT NOT NULL,"
		" actor_name TEXT NOT NULL, action TEXT NOT NULL, object_type TEXT NOT NULL,"
		" object_id TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}',"
		" created_at INTEGER NOT NULL);" OLD_RECORDS
		"INSERT INTO principals (id, type, name, created_at) VALUES"
		" ('" ID_ALICE "', 'user', 'alice', 1700000000);"
		"INSERT INTO principals (id, type, name, client_id, created_at) VALUES"
		" ('" ID_CI "', 'identity', 'ci', 'cid-old', 1700000001);"
		"INSERT INTO tokens VALUES ('" H_T1 "', '" ID_ALICE "', 'api', 0, 1700000002),"
		" ('" H_T2 "', '" ID_ALICE "', 'access', 1800000000, 1700000003);"
		"INSERT INTO secrets VALUES ('cid-old', '" ID_CI "', '" H_S1 "');"
		"PRAGMA user_version = 5;";
	char path[300], err[512] = "";
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s", tb_target("v5"));
	ok(sqlite3_open(path, &db) == SQLITE_OK &&
		   sqlite3_exec(db, v5, NULL, NULL, NULL) == SQLITE_OK,
	   "migration_6_fixture_schema_5");
	sqlite3_close(db);
	db = srv_sqlite_db_open(path, err, sizeof(err));
	ok(db != NULL && sql_int_on("v5", "PRAGMA user_version") ==
				 srv_sqlite_schema_version(), /* the newest */
	   "migrations_6_and_later_apply_to_a_schema_5_database");
	if (db)
		sqlite3_close(db);
	ok(sql_int_on("v5", "SELECT count(DISTINCT id) FROM tokens WHERE length(id) = 36"
			    " AND substr(id, 15, 1) = '4' AND id <> hash") == 2 &&
		   sql_int_on("v5", "SELECT count(*) FROM tokens WHERE name = '' AND"
				    " last_used_at = 0") == 2,
	   "migration_6_gives_every_token_an_id");
	ok(sql_int_on("v5", "SELECT count(*) FROM secrets WHERE client_id = 'cid-old' AND"
			    " principal_id = '" ID_CI "' AND secret_hash = '" H_S1 "' AND"
			    " created_at = 1700000001 AND expires_at = 0 AND length(id) = 36") == 1,
	   "migration_6_keeps_the_secret_with_an_id");
	ok(sql_int_on("v5", "SELECT (SELECT count(*) FROM principals WHERE mac IS NULL) +"
			    " (SELECT count(*) FROM tokens WHERE mac IS NULL) +"
			    " (SELECT count(*) FROM secrets WHERE mac IS NULL)") == 5 &&
		   sql_int_on("v5", "SELECT count(*) FROM pragma_table_info('members')"
				    " WHERE name = 'mac'") == 1 &&
		   sql_int_on("v5", "SELECT count(*) FROM pragma_table_info('policy_approvers')"
				    " WHERE name = 'mac'") == 1,
	   "migration_7_adds_mac_columns_left_unsealed");
	check_old_records_chained();
}

/* The same on PostgreSQL: a database at schema 5 (only the tables
 * migrations 6 to 8 change, with the columns they had) brought to the
 * newest by pg_migrate, as a replica that starts on it would. */
static void test_migrations_6_to_8_pg(void)
{
	static const char v5[] =
		"CREATE TABLE schema_version (version INTEGER NOT NULL);"
		"INSERT INTO schema_version VALUES (5);"
		"CREATE TABLE principals (id TEXT PRIMARY KEY NOT NULL, type TEXT NOT NULL,"
		" name TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL DEFAULT 0, client_id TEXT "
		"UNIQUE,"
		" created_at BIGINT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE tokens (hash TEXT PRIMARY KEY NOT NULL, principal_id TEXT NOT NULL"
		" REFERENCES principals(id) ON DELETE CASCADE, kind TEXT NOT NULL,"
		" expires_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);"
		"CREATE TABLE secrets (client_id TEXT PRIMARY KEY NOT NULL, principal_id TEXT NOT"
		" NULL UNIQUE REFERENCES principals(id) ON DELETE CASCADE, secret_hash TEXT NOT "
		"NULL);"
		"CREATE TABLE members (signer_id TEXT NOT NULL, principal_id TEXT NOT NULL,"
		" role TEXT NOT NULL, PRIMARY KEY (signer_id, principal_id));"
		"CREATE TABLE policies (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE);"
		/* what migration 11 refers to (its id column only) */
		"CREATE TABLE certificates (id TEXT PRIMARY KEY NOT NULL);"
		"CREATE TABLE policy_approvers (policy_id TEXT NOT NULL, principal_id TEXT NOT "
		"NULL,"
		" pos INTEGER NOT NULL, PRIMARY KEY (policy_id, principal_id));"
		"CREATE TABLE operations (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
		" id TEXT NOT NULL UNIQUE,"
		" signer_id TEXT NOT NULL, status TEXT NOT NULL, algorithm TEXT NOT NULL DEFAULT "
		"'',"
		" data_hash TEXT NOT NULL DEFAULT '', is_digest INTEGER NOT NULL DEFAULT 0,"
		" actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_name TEXT NOT NULL,"
		" grant_id TEXT, client_metadata TEXT NOT NULL DEFAULT '{}',"
		" source_ip TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '',"
		" created_at BIGINT NOT NULL, approval TEXT NOT NULL DEFAULT 'none');"
		"CREATE INDEX operations_denied ON operations(created_at) WHERE status = 'denied';"
		"CREATE TABLE audit (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
		" actor_id TEXT NOT NULL, actor_name TEXT NOT NULL, action TEXT NOT NULL,"
		" object_type TEXT NOT NULL, object_id TEXT NOT NULL,"
		" detail TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL);" OLD_RECORDS
		"INSERT INTO principals (id, type, name, created_at) VALUES"
		" ('" ID_ALICE "', 'user', 'alice', 1700000000);"
		"INSERT INTO principals (id, type, name, client_id, created_at) VALUES"
		" ('" ID_CI "', 'identity', 'ci', 'cid-old', 1700000001);"
		"INSERT INTO tokens VALUES ('" H_T1 "', '" ID_ALICE "', 'api', 0, 1700000002),"
		" ('" H_T2 "', '" ID_ALICE "', 'access', 1800000000, 1700000003);"
		"INSERT INTO secrets VALUES ('cid-old', '" ID_CI "', '" H_S1 "');";
	char err[512] = "";
	PGconn *c = NULL;

	ok(tb_sql_exec("rsign", "CREATE DATABASE v5") == 0 && tb_sql_exec("v5", v5) == 0,
	   "migration_6_fixture_schema_5");
	c = PQconnectdb(tb_target("v5"));
	ok(PQstatus(c) == CONNECTION_OK && pg_migrate(c, err, sizeof(err)) == 0 &&
		   sql_int_on("v5", "SELECT version FROM schema_version") ==
			   srv_pg_schema_version(), /* the newest */
	   "migrations_6_and_later_apply_to_a_schema_5_database %s", err);
	PQfinish(c);
	ok(sql_int_on("v5", "SELECT count(DISTINCT id) FROM tokens WHERE length(id) = 36"
			    " AND substr(id, 15, 1) = '4' AND id <> hash") == 2 &&
		   sql_int_on("v5", "SELECT count(*) FROM tokens WHERE name = '' AND"
				    " last_used_at = 0") == 2,
	   "migration_6_gives_every_token_an_id");
	ok(sql_int_on("v5", "SELECT count(*) FROM secrets WHERE client_id = 'cid-old' AND"
			    " principal_id = '" ID_CI "' AND secret_hash = '" H_S1 "' AND"
			    " created_at = 1700000001 AND expires_at = 0 AND length(id) = 36") == 1,
	   "migration_6_keeps_the_secret_with_an_id");
	ok(sql_int_on("v5", "SELECT (SELECT count(*) FROM principals WHERE mac IS NULL) +"
			    " (SELECT count(*) FROM tokens WHERE mac IS NULL) +"
			    " (SELECT count(*) FROM secrets WHERE mac IS NULL)") == 5 &&
		   sql_int_on("v5", "SELECT count(*) FROM information_schema.columns WHERE"
				    " column_name = 'mac' AND table_name IN ('members',"
				    " 'policies', 'policy_approvers')") == 3 &&
		   sql_int_on("v5", "SELECT count(*) FROM information_schema.columns WHERE"
				    " table_name = 'operations' AND column_name IN ('idem_key',"
				    " 'request_hash', 'signature')") == 3,
	   "migrations_7_and_8_add_mac_and_key_columns_left_unsealed");
	check_old_records_chained();
}

int main(void)
{
	char err[512] = "";
	srv_store *st;

	/* the schema checks differ by backend; each backend makes as many */
	plan(147 + 20 + 5 + 20 + 5 + (154 - 146) + 2 + 12 + 1 + 10 + 4 + 4 + 12 + 2 + 1 + 1 + 3 +
	     11 + 1);
	rs_log_set_level(RS_LOG_WARN);
	tb_init(tmpdir);
	printf("# backend: %s\n", tb_backend());
	snprintf(dbpath, sizeof(dbpath), "%s", tb_target("rsign"));

	if (tb_pg()) {
		test_open_and_migrations_pg();
		test_open_refusals_pg();
	} else {
		test_open_and_migrations_sqlite();
		test_open_refusals_sqlite();
	}

	st = tb_open("rsign", err, sizeof(err));
	ok(st != NULL, "open_existing_database");
	if (!st)
		tap_bail("cannot reopen %s: %s", dbpath, err);
	test_meta(st);
	test_principals(st);
	test_tokens_and_secrets(st);
	test_keys_and_certs(st);
	test_signers(st);
	test_members(st);
	test_signer_list(st);
	test_operations(st);
	test_operation_filters(st);
	test_retire_and_deletes(st);
	test_concurrency(st);
	{
		srv_chain_report rep;
		ok(srv_chain_verify(st, SRV_CHAIN_HISTORY, NULL, NULL, &rep) == SRV_ST_OK &&
			   rep.bad == SRV_CHAIN_GOOD && rep.records > THREADS * PER_THREAD,
		   "chain_of_concurrent_inserts_verifies (%s at %lld: %s)",
		   srv_chain_bad_name(rep.bad), rep.seq, rep.detail);
	}
	st->ops->close(NULL); /* NULL-safe */
	ok(st->ops->ping(st) == SRV_ST_OK, "close_of_null_leaves_the_open_store_alone");
	st->ops->close(st);
	test_reopen_keeps_data();
	test_idempotency_keys();
	test_retention();
	test_chains();
	test_credentials("cred");
	test_row_mac_encoding();
	test_row_macs("mac");
	test_principal_oidc("oidc");
	test_timestamps("tsa");
	if (tb_pg())
		test_migrations_6_to_8_pg();
	else
		test_migrations_6_and_7();

	tb_done();
	return tap_done();
}
