/* The store the store unit tests (test_store.c, test_store_policy.c) run
 * against: SQLite files in a temporary directory by default, or PostgreSQL
 * when RSIGN_TEST_PG_URI names a database (tests/lib/with-pg starts a
 * cluster of the test's own and sets it). The same test bodies run on both;
 * raw peeks at the tables go through tb_sql_* on a second connection.
 * Databases are named ("rsign", "retention", ...): a file each on SQLite,
 * a database each in the cluster on PostgreSQL. */
#ifndef RSIGN_TEST_STORE_BACKEND_H
#define RSIGN_TEST_STORE_BACKEND_H
#include <stddef.h>
#include "server/store/store.h"

/* Picks the backend; tmpl is the mkdtemp template of the SQLite files. */
void tb_init(char *tmpl);
int tb_pg(void);
const char *tb_backend(void); /* "sqlite" | "postgresql" */
/* The path or URI of database db (static storage, valid until the next call). */
const char *tb_target(const char *db);
/* Opens db (created when absent); connections: the pool on PostgreSQL. */
srv_store *tb_open(const char *db, char *err, size_t errlen);
/* The first column of the first row as an integer (booleans 1/0), -1 on error. */
long long tb_sql_int(const char *db, const char *sql);
int tb_sql_text_is(const char *db, const char *sql, const char *want);
int tb_sql_exec(const char *db, const char *sql); /* 0 or -1 */
/* The row MAC of the store tests (set_row_mac): SHA-256 over a fixed test
 * key and msg, standing in for the token's HMAC. 0, or -1 when msg is
 * longer than SRV_MAC_MSG_MAX. */
int tb_mac(void *arg, const unsigned char *msg, size_t len, unsigned char out[SRV_MAC_LEN]);
/* Removes the SQLite files (the PostgreSQL cluster is with-pg's). */
void tb_done(void);

#endif
