/* The store unit tests' backend switch: SQLite files, or the PostgreSQL
 * database of RSIGN_TEST_PG_URI (see store_backend.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include "rsign/der.h"
#include "rsign/util.h"
#include "store_backend.h"

#define PG_POOL 4

static const char *pg_uri;
static char *dir;
static char target[1024];

void tb_init(char *tmpl)
{
	const char *u = getenv("RSIGN_TEST_PG_URI");

	pg_uri = u && *u ? u : NULL;
	if (!pg_uri && !mkdtemp(tmpl)) {
		fprintf(stderr, "Bail out! mkdtemp %s\n", tmpl);
		exit(1);
	}
	dir = tmpl;
}

int tb_pg(void)
{
	return pg_uri != NULL;
}

const char *tb_backend(void)
{
	return pg_uri ? "postgresql" : "sqlite";
}

/* The URI of database db in pg_uri's cluster: its host, port and user. */
static const char *pg_target(const char *db)
{
	PQconninfoOption *o = PQconninfoParse(pg_uri, NULL), *x;
	const char *host = "", *port = "", *user = "";

	for (x = o; x && x->keyword; x++) {
		if (!x->val)
			continue;
		if (strcmp(x->keyword, "host") == 0)
			host = x->val;
		else if (strcmp(x->keyword, "port") == 0)
			port = x->val;
		else if (strcmp(x->keyword, "user") == 0)
			user = x->val;
	}
	snprintf(target, sizeof(target), "postgresql://%s@/%s?host=%s&port=%s", user, db, host,
		 port);
	PQconninfoFree(o);
	return target;
}

const char *tb_target(const char *db)
{
	if (pg_uri)
		return pg_target(db);
	snprintf(target, sizeof(target), "%s/%s.db", dir, db);
	return target;
}

static PGconn *pg_connect(const char *db)
{
	PGconn *c = PQconnectdb(pg_target(db));

	if (PQstatus(c) != CONNECTION_OK) {
		printf("# cannot connect to %s: %s", db, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* CREATE DATABASE db, once (42P04: it exists). */
static int pg_create(const char *db)
{
	char sql[256];
	PGconn *c = pg_connect("rsign");
	PGresult *res;
	int ok;

	if (!c)
		return -1;
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", db);
	res = PQexec(c, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	     (PQresultErrorField(res, PG_DIAG_SQLSTATE) &&
	      strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42P04") == 0);
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

srv_store *tb_open(const char *db, char *err, size_t errlen)
{
	if (!pg_uri)
		return srv_store_sqlite_open(tb_target(db), err, errlen);
	if (pg_create(db) != 0) {
		snprintf(err, errlen, "cannot create database %s", db);
		return NULL;
	}
	return srv_store_pg_open(pg_target(db), PG_POOL, err, errlen);
}

/* One row's first column as text (malloc'd), NULL on error or no row. */
static char *first_value(const char *db, const char *sql)
{
	char *v = NULL;

	if (pg_uri) {
		PGconn *c = pg_connect(db);
		PGresult *res = c ? PQexec(c, sql) : NULL;

		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
		    !PQgetisnull(res, 0, 0))
			v = strdup(PQgetvalue(res, 0, 0));
		else if (res)
			printf("# %s: %s", sql, PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(c);
		return v;
	}
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(tb_target(db), &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

long long tb_sql_int(const char *db, const char *sql)
{
	char *v = first_value(db, sql);
	long long n = -1;

	if (v)
		n = strcmp(v, "t") == 0 ? 1 : strcmp(v, "f") == 0 ? 0 : strtoll(v, NULL, 10);
	free(v);
	return n;
}

int tb_sql_text_is(const char *db, const char *sql, const char *want)
{
	char *v = first_value(db, sql);
	int r = v && strcmp(v, want) == 0;

	free(v);
	return r;
}

int tb_sql_exec(const char *db, const char *sql)
{
	int rc = -1;

	if (pg_uri) {
		PGconn *c = pg_connect(db);
		PGresult *res = c ? PQexec(c, sql) : NULL;

		if (res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
			    PQresultStatus(res) == PGRES_TUPLES_OK))
			rc = 0;
		else if (res)
			printf("# %s: %s", sql, PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(c);
		return rc;
	}
	sqlite3 *h = NULL;
	if (sqlite3_open(tb_target(db), &h) == SQLITE_OK &&
	    sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK)
		rc = 0;
	sqlite3_close(h);
	return rc;
}

void tb_done(void)
{
	char p[1024];
	struct dirent *e;
	DIR *d;

	if (pg_uri || !(d = opendir(dir)))
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (unlink(p) != 0)
			fprintf(stderr, "# cannot remove %s\n", p);
	}
	closedir(d);
	if (rmdir(dir) != 0)
		fprintf(stderr, "# cannot remove %s\n", dir);
}

int tb_mac(void *arg, const unsigned char *msg, size_t len, unsigned char out[SRV_MAC_LEN])
{
	unsigned char buf[16 + SRV_MAC_MSG_MAX];

	(void)arg;
	if (len > SRV_MAC_MSG_MAX)
		return -1;
	memcpy(buf, "test-row-mac-key", 16);
	memcpy(buf + 16, msg, len);
	return rs_hash_compute(RS_HASH_SHA256, buf, 16 + len, out);
}
