/* Opening rsignd's SQLite database: file creation (mode 0600), the
 * connection pragmas, and the numbered schema migrations. The schema version
 * lives in PRAGMA user_version; migration i (1-based) takes it from i-1 to i
 * inside its own transaction. Never edit a released migration: append one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rsign/log.h"
#include "server/store/store_sqlite.h"

/* Times are INTEGER unix seconds. Optional ids are NULL when absent.
 * operations.signer_id has no foreign key: history outlives its signer. */
static const char migration_1[] =
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" value TEXT NOT NULL);"

	"CREATE TABLE principals ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" type TEXT NOT NULL CHECK (type IN ('user', 'identity')),"
	" name TEXT NOT NULL UNIQUE,"
	" admin INTEGER NOT NULL DEFAULT 0,"
	" client_id TEXT UNIQUE,"
	" created_at INTEGER NOT NULL);"

	"CREATE TABLE tokens ("
	" hash TEXT PRIMARY KEY NOT NULL,"
	" principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,"
	" kind TEXT NOT NULL CHECK (kind IN ('api', 'access')),"
	" expires_at INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL);"
	"CREATE INDEX tokens_principal ON tokens(principal_id);"

	"CREATE TABLE secrets ("
	" client_id TEXT PRIMARY KEY NOT NULL,"
	" principal_id TEXT NOT NULL UNIQUE REFERENCES principals(id) ON DELETE CASCADE,"
	" secret_hash TEXT NOT NULL);"

	"CREATE TABLE keys ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" name TEXT NOT NULL UNIQUE,"
	" alg TEXT NOT NULL,"
	" ckid BLOB NOT NULL,"
	" spki BLOB NOT NULL,"
	" created_at INTEGER NOT NULL);"

	"CREATE TABLE certificates ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" key_id TEXT NOT NULL REFERENCES keys(id),"
	" common_name TEXT NOT NULL,"
	" serial TEXT NOT NULL,"
	" not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" cert_pem TEXT NOT NULL,"
	" chain_pem TEXT,"
	" created_at INTEGER NOT NULL);"
	"CREATE INDEX certificates_key ON certificates(key_id);"

	"CREATE TABLE signers ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT,"
	" enabled INTEGER NOT NULL DEFAULT 1,"
	" certificate_id TEXT NOT NULL REFERENCES certificates(id),"
	" policy_id TEXT,"
	" created_at INTEGER NOT NULL,"
	" last_signed_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX signers_certificate ON signers(certificate_id);"

	"CREATE TABLE members ("
	" signer_id TEXT NOT NULL REFERENCES signers(id) ON DELETE CASCADE,"
	" principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,"
	" role TEXT NOT NULL CHECK (role IN ('operator', 'auditor')),"
	" PRIMARY KEY (signer_id, principal_id)) WITHOUT ROWID;"
	"CREATE INDEX members_principal ON members(principal_id);"

	/* seq is the rowid: increasing with every insert, so "newest first"
	 * is stable even within one second. */
	"CREATE TABLE operations ("
	" seq INTEGER PRIMARY KEY,"
	" id TEXT NOT NULL UNIQUE,"
	" signer_id TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('success', 'denied', 'failed')),"
	" algorithm TEXT NOT NULL DEFAULT '',"
	" data_hash TEXT NOT NULL DEFAULT '',"
	" is_digest INTEGER NOT NULL DEFAULT 0,"
	" actor_type TEXT NOT NULL,"
	" actor_id TEXT NOT NULL,"
	" actor_name TEXT NOT NULL,"
	" grant_id TEXT,"
	" client_metadata TEXT NOT NULL DEFAULT '{}',"
	" source_ip TEXT NOT NULL DEFAULT '',"
	" error_code TEXT NOT NULL DEFAULT '',"
	" created_at INTEGER NOT NULL);"
	"CREATE INDEX operations_signer ON operations(signer_id, seq DESC);"
	"CREATE INDEX operations_signer_status ON operations(signer_id, status, seq DESC);";

/* Signing policies, approval requests, decisions, grants and the audit log.
 * Approvers are a side table so an unknown principal fails the insert (a
 * foreign key) and a deleted one leaves every policy. Requests and grants
 * keep no foreign key to signers or principals: like the history, they
 * outlive what they name. seq orders "newest first" within one second. A
 * request's expiry and a grant's "expired" status are derived from the time
 * of each call (store_sqlite_policy.c). */
static const char migration_2[] =
	"CREATE TABLE policies ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" name TEXT NOT NULL UNIQUE,"
	" required_approvals INTEGER NOT NULL CHECK (required_approvals >= 1),"
	" max_signings INTEGER NOT NULL DEFAULT 0 CHECK (max_signings >= 0),"
	" max_window INTEGER NOT NULL DEFAULT 0 CHECK (max_window >= 0),"
	" request_ttl INTEGER NOT NULL CHECK (request_ttl > 0),"
	" bypass_identities INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL);"

	/* pos keeps the order the approvers were given in */
	"CREATE TABLE policy_approvers ("
	" policy_id TEXT NOT NULL REFERENCES policies(id) ON DELETE CASCADE,"
	" principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL,"
	" PRIMARY KEY (policy_id, principal_id)) WITHOUT ROWID;"
	"CREATE INDEX policy_approvers_principal ON policy_approvers(principal_id);"

	"CREATE TABLE requests ("
	" seq INTEGER PRIMARY KEY,"
	" id TEXT NOT NULL UNIQUE,"
	" signer_id TEXT NOT NULL,"
	" policy_id TEXT NOT NULL,"
	" requester_id TEXT NOT NULL,"
	" requester_name TEXT NOT NULL,"
	" justification TEXT NOT NULL,"
	" signings INTEGER NOT NULL DEFAULT 0,"
	" window_secs INTEGER NOT NULL DEFAULT 0,"
	" status TEXT NOT NULL CHECK (status IN"
	" ('pending', 'approved', 'rejected', 'cancelled', 'expired')),"
	" created_at INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL,"
	" closed_at INTEGER NOT NULL DEFAULT 0,"
	" grant_id TEXT);"
	"CREATE INDEX requests_signer ON requests(signer_id, seq DESC);"
	"CREATE INDEX requests_status ON requests(status, expires_at);"

	"CREATE TABLE decisions ("
	" request_id TEXT NOT NULL REFERENCES requests(id) ON DELETE CASCADE,"
	" approver_id TEXT NOT NULL,"
	" approver_name TEXT NOT NULL,"
	" approve INTEGER NOT NULL CHECK (approve IN (0, 1)),"
	" comment TEXT NOT NULL DEFAULT '',"
	" created_at INTEGER NOT NULL,"
	" PRIMARY KEY (request_id, approver_id));"

	"CREATE TABLE grants ("
	" seq INTEGER PRIMARY KEY,"
	" id TEXT NOT NULL UNIQUE,"
	" signer_id TEXT NOT NULL,"
	" grantee_id TEXT NOT NULL,"
	" request_id TEXT UNIQUE,"
	" status TEXT NOT NULL CHECK (status IN ('active', 'expired', 'revoked')),"
	" max_signings INTEGER NOT NULL DEFAULT 0 CHECK (max_signings >= 0),"
	" used_signings INTEGER NOT NULL DEFAULT 0,"
	" window_start INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL,"
	" revoked_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX grants_signer_grantee ON grants(signer_id, grantee_id, status);"
	"CREATE INDEX grants_grantee ON grants(grantee_id);"

	/* AUTOINCREMENT: a seq is never reused, so readers may page by it */
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" actor_id TEXT NOT NULL,"
	" actor_name TEXT NOT NULL,"
	" action TEXT NOT NULL,"
	" object_type TEXT NOT NULL,"
	" object_id TEXT NOT NULL,"
	" detail TEXT NOT NULL DEFAULT '{}',"
	" created_at INTEGER NOT NULL);";

/* 3: how a signing was allowed: without a policy, by a grant, or by a
 * policy's bypass for machine identities. */
static const char migration_3[] =
	"ALTER TABLE operations ADD COLUMN approval TEXT NOT NULL DEFAULT 'none';";

/* 4: a principal an admin disabled: its tokens and its login are refused
 * until it is enabled again. */
static const char migration_4[] =
	"ALTER TABLE principals ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;";

/* 5: signers are retired, never erased, so their history stays readable.
 * A retired signer's name moves to retired_name and its name column takes
 * its id: migration 1's UNIQUE(name) then holds among live signers only,
 * and the name can be given to a new signer. The partial index is for
 * deleting "denied" history records past a retention, oldest first. */
static const char migration_5[] =
	"ALTER TABLE signers ADD COLUMN retired_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE signers ADD COLUMN retired_name TEXT;"
	"CREATE INDEX operations_denied ON operations(created_at) WHERE status = 'denied';";

/* A random lower-case UUID (version 4) in SQL, for rows made before ids. */
#define SQL_UUID                                                                                   \
	"(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||"                \
	" substr(lower(hex(randomblob(2))), 2) || '-' ||"                                          \
	" substr('89ab', 1 + (abs(random()) % 4), 1) ||"                                           \
	" substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"

/* 6: credentials (issue 10, item 8). A token gets a stable public id (never
 * its hash), an optional name and the time of its last use (written at most
 * once a minute). An identity may hold several client secrets while a
 * rotation overlaps: secrets are rebuilt with an id of their own, their
 * creation and expiry (0 = never), several per identity and client_id. */
static const char migration_6[] =
	"ALTER TABLE tokens ADD COLUMN id TEXT;"
	"ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;"
	"UPDATE tokens SET id = " SQL_UUID ";"
	"CREATE UNIQUE INDEX tokens_id ON tokens(id);"

	"CREATE TABLE secrets_v6 ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,"
	" client_id TEXT NOT NULL,"
	" secret_hash TEXT NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO secrets_v6 (id, principal_id, client_id, secret_hash, created_at)"
	" SELECT " SQL_UUID ", s.principal_id, s.client_id, s.secret_hash,"
	" coalesce((SELECT p.created_at FROM principals p WHERE p.id = s.principal_id), 0)"
	" FROM secrets s;"
	"DROP TABLE secrets;"
	"ALTER TABLE secrets_v6 RENAME TO secrets;"
	"CREATE INDEX secrets_client ON secrets(client_id);"
	"CREATE INDEX secrets_principal ON secrets(principal_id);";

/* 7: rows that grant power carry a MAC (issue 10, item 9; the encoding is
 * in store.h). The token holds the key, so no migration can compute them:
 * the rows of an older database stay NULL here, and the rsignd start that
 * creates the MAC key seals them before it serves (seal_rows, then
 * server/rsignd/rowmac.c). */
static const char migration_7[] = "ALTER TABLE principals ADD COLUMN mac TEXT;"
				  "ALTER TABLE tokens ADD COLUMN mac TEXT;"
				  "ALTER TABLE secrets ADD COLUMN mac TEXT;"
				  "ALTER TABLE members ADD COLUMN mac TEXT;"
				  "ALTER TABLE policies ADD COLUMN mac TEXT;"
				  "ALTER TABLE policy_approvers ADD COLUMN mac TEXT;";

/* 8: Idempotency-Key. A success made under a key keeps it with what was
 * asked (request_hash) and what was answered (signature), so a retry of
 * the same key by the same principal gets the first answer back; the
 * unique index makes the key one principal's once. Other records keep
 * NULLs. */
static const char migration_8[] =
	"ALTER TABLE operations ADD COLUMN idem_key TEXT;"
	"ALTER TABLE operations ADD COLUMN request_hash TEXT;"
	"ALTER TABLE operations ADD COLUMN signature BLOB;"
	"CREATE UNIQUE INDEX operations_idem ON operations(actor_id, idem_key)"
	" WHERE idem_key IS NOT NULL;";

/* 9: the metrics role: a principal that may read GET /metrics. The row
 * MAC covers it only when set (store.h), so older rows stay sealed. */
static const char migration_9[] =
	"ALTER TABLE principals ADD COLUMN metrics INTEGER NOT NULL DEFAULT 0;";

#define GENESIS "'0000000000000000000000000000000000000000000000000000000000000000'"

/* 10: the hash chains of the history and the audit log (issue 15 item 7;
 * store_chain.h). Every record gets chain_seq, prev_hash, body_hash and
 * hash; chain_heads holds each chain's head, read and written by the
 * transaction that inserts records; checkpoints holds the heads rsignd
 * signed with its log key. A "denied" record past its retention is no
 * longer deleted: it becomes a tombstone (purged = 1) that keeps its link,
 * and the partial index for the purge skips tombstones. The records made
 * before are chained by sq_chain_backfill, in this migration's transaction. */
static const char migration_10[] =
	"ALTER TABLE operations ADD COLUMN chain_seq INTEGER;"
	"ALTER TABLE operations ADD COLUMN prev_hash TEXT;"
	"ALTER TABLE operations ADD COLUMN body_hash TEXT;"
	"ALTER TABLE operations ADD COLUMN hash TEXT;"
	"ALTER TABLE operations ADD COLUMN purged INTEGER NOT NULL DEFAULT 0;"
	"CREATE UNIQUE INDEX operations_chain ON operations(chain_seq);"
	"DROP INDEX operations_denied;"
	"CREATE INDEX operations_denied ON operations(created_at)"
	" WHERE status = 'denied' AND purged = 0;"
	"ALTER TABLE audit ADD COLUMN chain_seq INTEGER;"
	"ALTER TABLE audit ADD COLUMN prev_hash TEXT;"
	"ALTER TABLE audit ADD COLUMN body_hash TEXT;"
	"ALTER TABLE audit ADD COLUMN hash TEXT;"
	"CREATE UNIQUE INDEX audit_chain ON audit(chain_seq);"
	"CREATE TABLE chain_heads ("
	" chain TEXT PRIMARY KEY NOT NULL CHECK (chain IN ('history', 'audit')),"
	" seq INTEGER NOT NULL,"
	" hash TEXT NOT NULL);"
	"INSERT INTO chain_heads VALUES ('history', 0, " GENESIS "), ('audit', 0, " GENESIS ");"
	"CREATE TABLE checkpoints ("
	" chain TEXT NOT NULL CHECK (chain IN ('history', 'audit')),"
	" seq INTEGER NOT NULL,"
	" hash TEXT NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" signature BLOB NOT NULL,"
	" replica TEXT NOT NULL DEFAULT '',"
	" PRIMARY KEY (chain, seq));";
#define MIGRATION_CHAIN 10

/* 11: time-stamp authorities (RFC 3161) and every timestamp they issued.
 * A TSA row carries a MAC (require_auth decides who may use it). The
 * timestamps outlive their TSA (no foreign key), and serial is UNIQUE over
 * all of them: a serial is never issued twice, whatever the process,
 * replica or restart (the insert is refused and a new serial drawn). */
static const char migration_11[] = "CREATE TABLE timestamp_authorities ("
				   " id TEXT PRIMARY KEY NOT NULL,"
				   " name TEXT NOT NULL UNIQUE,"
				   " certificate_id TEXT NOT NULL REFERENCES certificates(id),"
				   " policy_oid TEXT NOT NULL,"
				   " accuracy_seconds BIGINT NOT NULL,"
				   " require_auth INTEGER NOT NULL DEFAULT 0,"
				   " created_at BIGINT NOT NULL,"
				   " mac TEXT);"
				   "CREATE TABLE timestamps ("
				   " seq INTEGER PRIMARY KEY,"
				   " tsa_id TEXT NOT NULL,"
				   " serial TEXT NOT NULL UNIQUE,"
				   " imprint_alg TEXT NOT NULL,"
				   " imprint TEXT NOT NULL,"
				   " protocol TEXT NOT NULL,"
				   " actor_name TEXT NOT NULL,"
				   " source_ip TEXT NOT NULL,"
				   " created_at BIGINT NOT NULL);"
				   "CREATE INDEX timestamps_tsa ON timestamps(tsa_id, seq DESC);";

/* 12: OIDC login for machine identities: an identity's config (canonical
 * JSON, server/api/api_oidc.c), covered by the row's MAC when set; the
 * login an access token came from (MAC-covered too) and the one a history
 * record was made under. */
static const char migration_12[] = "ALTER TABLE principals ADD COLUMN oidc TEXT;"
				   "ALTER TABLE tokens ADD COLUMN oidc TEXT;"
				   "ALTER TABLE operations ADD COLUMN oidc TEXT;";

/* 13: console sessions (server/http/auth.c). A session is kept by the
 * SHA-256 hex of its random id only; expires_at is its absolute cap,
 * last_seen_at (moved by use) its idle expiry. The MAC covers hash,
 * principal_id and expires_at (store.h). Deleting the principal ends its
 * sessions. */
static const char migration_13[] =
	"CREATE TABLE console_sessions ("
	" hash TEXT PRIMARY KEY NOT NULL,"
	" principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,"
	" created_at INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL,"
	" last_seen_at INTEGER NOT NULL,"
	" mac TEXT);"
	"CREATE INDEX console_sessions_principal ON console_sessions(principal_id);";

/* 14: a signing policy's bypassClaims: the patterns the recorded claims of
 * an identity's OIDC login must match for the policy's bypass (canonical
 * JSON, server/api/api_policies.c); covered by the row's MAC when set. */
static const char migration_14[] = "ALTER TABLE policies ADD COLUMN bypass_claims TEXT;";

static const char *const migrations[] = {
	migration_1,  migration_2,  migration_3,  migration_4,	migration_5,
	migration_6,  migration_7,  migration_8,  migration_9,	migration_10,
	migration_11, migration_12, migration_13, migration_14,
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int srv_sqlite_schema_version(void)
{
	return N_MIGRATIONS;
}

/* Runs one statement returning a single row; its first column as text. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		goto out;
	t = sqlite3_column_text(st, 0);
	snprintf(out, outlen, "%s", t ? (const char *)t : "");
	rc = SQLITE_OK;
out:
	sqlite3_finalize(st);
	return rc;
}

static int user_version(sqlite3 *db, int *v)
{
	char buf[32];
	int rc = query_text(db, "PRAGMA user_version", buf, sizeof(buf));

	if (rc == SQLITE_OK)
		*v = atoi(buf);
	return rc;
}

static void rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db) &&
	    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		rs_err("store: rollback of a migration failed: %s", sqlite3_errmsg(db));
}

static void newer_error(const char *path, int v, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "%s: database schema version %d is newer than this rsignd supports (%d); "
		 "upgrade rsignd or restore a matching backup",
		 path, v, N_MIGRATIONS);
}

/* Before any pragma: a database from a newer rsignd is left exactly as found. */
static int check_not_newer(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int v;

	if (user_version(db, &v) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot read the schema version: %s", path,
			 sqlite3_errmsg(db));
		return -1;
	}
	if (v < 0 || v > N_MIGRATIONS) {
		newer_error(path, v, err, errlen);
		return -1;
	}
	return 0;
}

/* Applies every pending migration, one transaction each. BEGIN IMMEDIATE
 * takes the write lock before reading the version, so two processes opening
 * the same file at once never apply a migration twice. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int v;

	if (user_version(db, &v) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot read the schema version: %s", path,
			 sqlite3_errmsg(db));
		return -1;
	}
	if (v == N_MIGRATIONS)
		return 0; /* up to date: touch nothing */
	for (;;) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: cannot lock the database to migrate it: %s",
				 path, sqlite3_errmsg(db));
			return -1;
		}
		if (user_version(db, &v) != SQLITE_OK) {
			snprintf(err, errlen, "%s: cannot read the schema version: %s", path,
				 sqlite3_errmsg(db));
			goto fail;
		}
		if (v < 0 || v > N_MIGRATIONS) {
			newer_error(path, v, err, errlen);
			goto fail;
		}
		if (v == N_MIGRATIONS)
			break;
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: schema migration %d failed: %s", path, v + 1,
				 sqlite3_errmsg(db));
			goto fail;
		}
		if (v + 1 == MIGRATION_CHAIN) {
			char why[256];
			if (sq_chain_backfill(db, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s: schema migration %d failed: %s", path,
					 v + 1, why);
				goto fail;
			}
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: cannot record schema version %d: %s", path,
				 v + 1, sqlite3_errmsg(db));
			goto fail;
		}
		rs_info("store: %s: schema migrated to version %d", path, v + 1);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	return 0;
fail:
	rollback(db);
	return -1;
}

/* SQLite creates files with 0644 & ~umask; create it ourselves first so the
 * database (and the -wal/-shm files, which copy its mode) are private. */
static int create_private(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	if (strcmp(path, ":memory:") == 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
		rs_warn("store: %s is readable or writable by group or others; chmod 600 it", path);
	if (close(fd) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int set_pragmas(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char mode[16];

	if (query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode)) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot enable WAL: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if (strcasecmp(mode, "wal") != 0 && strcmp(path, ":memory:") != 0) {
		snprintf(err, errlen, "%s: WAL journal mode refused (got \"%s\")", path, mode);
		return -1;
	}
	/* FULL: a history record is on disk before the response is sent. */
	if (sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	/* A build without foreign keys would ignore the pragma silently, and
	 * deleting a principal would leave its tokens valid. */
	if (query_text(db, "PRAGMA foreign_keys", mode, sizeof(mode)) != SQLITE_OK ||
	    strcmp(mode, "1") != 0) {
		snprintf(err, errlen, "%s: this SQLite does not enforce foreign keys", path);
		return -1;
	}
	return 0;
}

sqlite3 *srv_sqlite_db_open(const char *path, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc;

	if (!path || !*path) {
		snprintf(err, errlen, "no database path");
		return NULL;
	}
	if (create_private(path, err, errlen) != 0)
		return NULL;
	rc = sqlite3_open_v2(path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	if (sqlite3_extended_result_codes(db, 1) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 5000) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (check_not_newer(db, path, err, errlen) != 0 ||
	    set_pragmas(db, path, err, errlen) != 0 || migrate(db, path, err, errlen) != 0)
		goto fail;
	return db;
fail:
	if (db && sqlite3_close(db) != SQLITE_OK)
		rs_err("store: %s: close failed", path);
	return NULL;
}
