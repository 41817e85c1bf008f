/* `rsignd migrate --from PATH.db --to URI`: copies a SQLite deployment into
 * an empty PostgreSQL database, every table and every row, the history and
 * the audit log included, in one PostgreSQL transaction that commits only
 * when every table's row count matches its source's. Both schemas are at
 * the same migration (opening each brings it there); columns are copied by
 * name, values as they are (blobs as bytea), seq values kept, and the
 * identity sequences moved past them. */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "server/store/store_pg.h"
#include "server/store/store_sqlite.h"

/* Parents before children (foreign keys); every table of migrations 1..13
 * (6-8 add columns, copied by name: token ids and names, secrets' ids and
 * expiry, the row MACs as they are -- the same encoding under the same
 * token key -- and Idempotency-Keys with their signatures). order: the
 * source order, which is also the order of the target's own seq where the
 * target has one the source lacks (tokens, secrets, certificates,
 * decisions: SQLite's rowid). seq: the target's
 * identity column whose values are copied, NULL when none is copied. */
static const struct {
	const char *table, *order, *seq;
	int seeded; /* migrations fill it: the target's rows are replaced */
} tables[] = {
	{"meta", "key", NULL, 0},
	{"principals", "rowid", NULL, 0},
	{"tokens", "rowid", NULL, 0},
	{"secrets", "rowid", NULL, 0},
	{"keys", "rowid", NULL, 0},
	{"certificates", "rowid", NULL, 0},
	{"signers", "rowid", NULL, 0},
	{"members", "signer_id, principal_id", NULL, 0},
	{"operations", "seq", "seq", 0},
	{"policies", "rowid", NULL, 0},
	{"policy_approvers", "policy_id, pos", NULL, 0},
	{"requests", "seq", "seq", 0},
	{"decisions", "rowid", NULL, 0},
	{"grants", "seq", "seq", 0},
	{"audit", "seq", "seq", 0},
	/* the heads of the hash chains, which migration 10 creates */
	{"chain_heads", "chain", NULL, 1},
	{"checkpoints", "chain, seq", NULL, 0},
	/* the time-stamp authorities and their timestamps (migration 11) */
	{"timestamp_authorities", "rowid", NULL, 0},
	{"timestamps", "seq", "seq", 0},
	/* console sessions (migration 13) */
	{"console_sessions", "rowid", NULL, 0},
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))
#define MAX_COLS 48 /* operations has 25 (schema 13) */

static long long pg_count_rows(PGconn *c, const char *table, char *err, size_t errlen)
{
	char sql[128];
	PGresult *res;
	long long n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	res = PQexec(c, sql);
	if (pg_res_ok(res, table, err, errlen) == 0)
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

static long long sq_count_rows(sqlite3 *db, const char *table, char *err, size_t errlen)
{
	char sql[128];
	sqlite3_stmt *st = NULL;
	long long n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		snprintf(err, errlen, "%s: %s", table, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return n;
}

/* Copies one table: SELECT * from the source, one prepared INSERT of the
 * same columns into the target. *rows = rows copied. */
static int copy_table(sqlite3 *db, PGconn *c, int t, long long *rows, char *err, size_t errlen)
{
	char sql[1024], ins[1200], name[32];
	const char *vals[MAX_COLS];
	int lens[MAX_COLS], fmts[MAX_COLS], ncol, rc = -1;
	size_t len = 0;
	sqlite3_stmt *st = NULL;
	PGresult *res;

	*rows = 0;
	snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY %s", tables[t].table,
		 tables[t].order);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", tables[t].table, sqlite3_errmsg(db));
		return -1;
	}
	ncol = sqlite3_column_count(st);
	if (ncol < 1 || ncol > MAX_COLS) {
		snprintf(err, errlen, "%s: %d columns", tables[t].table, ncol);
		goto out;
	}
	len = (size_t)snprintf(ins, sizeof(ins), "INSERT INTO %s (", tables[t].table);
	for (int i = 0; i < ncol && len < sizeof(ins); i++)
		len += (size_t)snprintf(ins + len, sizeof(ins) - len, "%s%s", i ? ", " : "",
					sqlite3_column_name(st, i));
	if (len < sizeof(ins))
		len += (size_t)snprintf(ins + len, sizeof(ins) - len, ") VALUES (");
	for (int i = 0; i < ncol && len < sizeof(ins); i++)
		len += (size_t)snprintf(ins + len, sizeof(ins) - len, "%s$%d", i ? ", " : "",
					i + 1);
	if (len < sizeof(ins))
		len += (size_t)snprintf(ins + len, sizeof(ins) - len, ")");
	if (len >= sizeof(ins)) {
		snprintf(err, errlen, "%s: too many columns", tables[t].table);
		goto out;
	}
	snprintf(name, sizeof(name), "import_%d", t);
	res = PQprepare(c, name, ins, 0, NULL);
	if (pg_res_ok(res, tables[t].table, err, errlen) != 0) {
		PQclear(res);
		goto out;
	}
	PQclear(res);
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < ncol; i++) {
			int type = sqlite3_column_type(st, i);

			fmts[i] = type == SQLITE_BLOB;
			if (type == SQLITE_BLOB) {
				vals[i] = sqlite3_column_blob(st, i);
				lens[i] = sqlite3_column_bytes(st, i);
				if (!vals[i])
					vals[i] = "";
			} else {
				vals[i] = (const char *)sqlite3_column_text(st, i); /* NULL: NULL */
				lens[i] = 0;
			}
		}
		res = PQexecPrepared(c, name, ncol, vals, lens, fmts, 0);
		if (pg_res_ok(res, tables[t].table, err, errlen) != 0) {
			PQclear(res);
			goto out;
		}
		PQclear(res);
		(*rows)++;
	}
	if (step != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", tables[t].table, sqlite3_errmsg(db));
		goto out;
	}
	if (tables[t].seq) {
		snprintf(sql, sizeof(sql),
			 "SELECT setval(pg_get_serial_sequence('%s', '%s'),"
			 " coalesce(max(%s), 0) + 1, false) FROM %s",
			 tables[t].table, tables[t].seq, tables[t].seq, tables[t].table);
		res = PQexec(c, sql);
		rc = pg_res_ok(res, tables[t].table, err, errlen);
		PQclear(res);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int srv_store_pg_import_sqlite(const char *path, const char *uri, FILE *report, char *err,
			       size_t errlen)
{
	sqlite3 *db = NULL;
	srv_store *st = NULL;
	PGconn *c = NULL;
	PGresult *res;
	long long copied[N_TABLES];
	int rc = -1;

	/* the source and the target, each at the latest migration */
	if (!(db = srv_sqlite_db_open(path, err, errlen)))
		return -1;
	if (!(st = srv_store_pg_open(uri, 1, err, errlen)))
		goto out;
	c = PGS(st)->conns[0].c; /* idle: this thread is the store's only user */
	res = PQexec(c, "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK_KEY ")");
	if (pg_res_ok(res, "BEGIN", err, errlen) != 0) {
		PQclear(res);
		goto out;
	}
	PQclear(res);
	for (size_t t = 0; t < N_TABLES; t++) {
		long long n = pg_count_rows(c, tables[t].table, err, errlen);

		if (n < 0)
			goto rollback;
		if (tables[t].seeded) {
			char sql[64];
			snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[t].table);
			res = PQexec(c, sql);
			int bad = pg_res_ok(res, tables[t].table, err, errlen);
			PQclear(res);
			if (bad)
				goto rollback;
			continue;
		}
		if (n > 0) {
			snprintf(err, errlen,
				 "the target database is not empty (%s holds %lld rows): migrate "
				 "only into an empty database",
				 tables[t].table, n);
			goto rollback;
		}
	}
	for (size_t t = 0; t < N_TABLES; t++)
		if (copy_table(db, c, (int)t, &copied[t], err, errlen) != 0)
			goto rollback;
	/* every table, counted on both sides before the commit */
	for (size_t t = 0; t < N_TABLES; t++) {
		long long from = sq_count_rows(db, tables[t].table, err, errlen);
		long long to = pg_count_rows(c, tables[t].table, err, errlen);

		if (from < 0 || to < 0)
			goto rollback;
		if (from != to || to != copied[t]) {
			snprintf(err, errlen, "%s: %lld rows in the source, %lld in the target",
				 tables[t].table, from, to);
			goto rollback;
		}
		if (report)
			fprintf(report, "%-17s %lld rows\n", tables[t].table, to);
	}
	res = PQexec(c, "COMMIT");
	rc = pg_res_ok(res, "COMMIT", err, errlen);
	if (rc == 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		snprintf(err, errlen, "the commit was rolled back");
		rc = -1;
	}
	PQclear(res);
	goto out;
rollback:
	res = PQexec(c, "ROLLBACK");
	PQclear(res);
out:
	if (st)
		st->ops->close(st);
	if (db)
		sqlite3_close(db);
	return rc;
}
