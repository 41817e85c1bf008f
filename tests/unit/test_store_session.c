/* Unit tests of the console sessions of the store (migration 13:
 * store_sqlite_session.c, store_pg_session.c): insert, lookup within the
 * idle limit and the absolute cap (at explicit times, so the boundaries are
 * exact), touch, delete, purge, the row MAC (a tampered row, a row without
 * one, a session moved to another principal are refused) and the principal
 * deleted with its sessions. The same body runs on SQLite and, run by
 * tests/unit/run-store-session-pg (tests/lib/with-pg), on PostgreSQL. */
#include <stdio.h>
#include <string.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/store/store.h"
#include "store_backend.h"
#include "tap.h"

#define NOW ((time_t)1800000000)
#define IDLE 600
#define ID_ADMIN "00000000-0000-4000-8000-000000000001"
#define ID_ANN "00000000-0000-4000-8000-000000000002"
#define H1 "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define H2 "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
#define H3 "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"

static char tmpdir[] = "/tmp/rsign-test-store-session.XXXXXX";

static const srv_audit AUD = {.actor_id = ID_ADMIN,
			      .action = "test.change",
			      .object_type = "test",
			      .object_id = "fixture",
			      .created_at = NOW};

static srv_st_rc add_user(srv_store *st, const char *id, const char *name)
{
	srv_principal p;
	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, id, sizeof(p.id));
	rs_strlcpy(p.type, "user", sizeof(p.type));
	p.name = (char *)name;
	p.created_at = NOW;
	return st->ops->principal_insert(st, &p, NULL, &AUD);
}

static srv_session mk(const char *hash, const char *pid, time_t created, time_t expires)
{
	srv_session s;
	memset(&s, 0, sizeof(s));
	rs_strlcpy(s.hash, hash, sizeof(s.hash));
	rs_strlcpy(s.principal_id, pid, sizeof(s.principal_id));
	s.created_at = s.last_seen_at = created;
	s.expires_at = expires;
	return s;
}

/* lookup at now: 1 when found for principal name (and *seen set). */
static int found(srv_store *st, const char *hash, time_t now, const char *name, time_t *seen)
{
	srv_principal p = {0};
	srv_session s = {0};
	srv_st_rc r = st->ops->session_lookup(st, hash, now, IDLE, &p, &s);
	int hit =
		r == SRV_ST_OK && p.name && strcmp(p.name, name) == 0 && strcmp(s.hash, hash) == 0;
	if (seen)
		*seen = s.last_seen_at;
	srv_principal_clear(&p);
	return hit;
}

static srv_st_rc lookup_rc(srv_store *st, const char *hash, time_t now)
{
	srv_principal p = {0};
	srv_st_rc r = st->ops->session_lookup(st, hash, now, IDLE, &p, NULL);
	srv_principal_clear(&p);
	return r;
}

int main(void)
{
	char err[512] = "";
	time_t seen = 0;
	size_t n = 0;

	plan(17);
	rs_log_set_level(RS_LOG_WARN);
	tb_init(tmpdir);
	printf("# backend: %s\n", tb_backend());
	srv_store *st = tb_open("rsign", err, sizeof(err));
	if (!st)
		tap_bail("open: %s", err);
	st->ops->set_row_mac(st, tb_mac, NULL);
	if (add_user(st, ID_ADMIN, "admin") != SRV_ST_OK ||
	    add_user(st, ID_ANN, "ann") != SRV_ST_OK)
		tap_bail("cannot add the principals");

	srv_session s1 = mk(H1, ID_ANN, NOW, NOW + 7 * 86400);
	ok(st->ops->session_insert(st, &s1) == SRV_ST_OK, "insert");
	ok(st->ops->session_insert(st, &s1) != SRV_ST_OK, "insert_same_hash_twice_refused");
	ok(tb_sql_int("rsign", "SELECT count(*) FROM console_sessions WHERE mac IS NOT NULL"
			       " AND length(mac) = 64") == 1,
	   "insert_seals_the_row_with_a_mac");
	ok(found(st, H1, NOW, "ann", &seen) && seen == NOW, "lookup_returns_principal_and_row");
	ok(found(st, H1, NOW + IDLE - 1, "ann", NULL), "lookup_within_idle_limit");
	ok(lookup_rc(st, H1, NOW + IDLE) == SRV_ST_NOT_FOUND, "lookup_idle_limit_reached_refused");

	/* a use moves the idle expiry on; an earlier threshold writes nothing */
	ok(st->ops->session_touch(st, H1, NOW + 300, NOW + 240) == SRV_ST_OK &&
		   found(st, H1, NOW + 300 + IDLE - 1, "ann", &seen) && seen == NOW + 300,
	   "touch_moves_the_idle_expiry");
	ok(st->ops->session_touch(st, H1, NOW + 320, NOW + 260) == SRV_ST_OK &&
		   found(st, H1, NOW + 320, "ann", &seen) && seen == NOW + 300,
	   "touch_within_the_step_writes_nothing");

	/* the absolute cap holds whatever the use */
	srv_session s2 = mk(H2, ID_ANN, NOW, NOW + 100);
	ok(st->ops->session_insert(st, &s2) == SRV_ST_OK && found(st, H2, NOW + 99, "ann", NULL) &&
		   lookup_rc(st, H2, NOW + 100) == SRV_ST_NOT_FOUND,
	   "absolute_cap_ends_a_session_in_use");

	ok(lookup_rc(st, H3, NOW) == SRV_ST_NOT_FOUND, "unknown_hash_not_found");

	/* the MAC: moving a session to another principal, or stretching its
	 * cap, or dropping its MAC, makes the row count for nothing */
	ok(tb_sql_exec("rsign", "UPDATE console_sessions SET principal_id = '" ID_ADMIN
				"' WHERE hash = '" H1 "'") == 0 &&
		   lookup_rc(st, H1, NOW + 300) == SRV_ST_NOT_FOUND,
	   "mac_session_moved_to_another_principal_refused");
	ok(tb_sql_exec("rsign", "UPDATE console_sessions SET principal_id = '" ID_ANN
				"', expires_at = expires_at + 1000 WHERE hash = '" H2 "'") == 0 &&
		   lookup_rc(st, H2, NOW + 10) == SRV_ST_NOT_FOUND,
	   "mac_stretched_cap_refused");
	ok(tb_sql_exec("rsign", "UPDATE console_sessions SET expires_at = expires_at - 1000,"
				" mac = NULL WHERE hash = '" H2 "'") == 0 &&
		   lookup_rc(st, H2, NOW + 10) == SRV_ST_NOT_FOUND,
	   "mac_missing_refused");

	/* delete, purge, and the principal's deletion */
	srv_session s3 = mk(H3, ID_ANN, NOW, NOW + 7 * 86400);
	ok(st->ops->session_insert(st, &s3) == SRV_ST_OK &&
		   st->ops->session_delete(st, H3) == SRV_ST_OK &&
		   lookup_rc(st, H3, NOW) == SRV_ST_NOT_FOUND &&
		   st->ops->session_delete(st, H3) == SRV_ST_NOT_FOUND,
	   "delete_ends_it_once");
	ok(tb_sql_exec("rsign", "DELETE FROM console_sessions") == 0 &&
		   st->ops->session_insert(st, &s1) == SRV_ST_OK &&
		   st->ops->session_insert(st, &s2) == SRV_ST_OK &&
		   st->ops->session_purge(st, NOW + 200, IDLE, &n) == SRV_ST_OK && n == 1 &&
		   found(st, H1, NOW + 200, "ann", NULL) &&
		   lookup_rc(st, H2, NOW + 50) == SRV_ST_NOT_FOUND,
	   "purge_deletes_only_ended_sessions");
	ok(st->ops->session_purge(st, NOW + IDLE, IDLE, &n) == SRV_ST_OK && n == 1 &&
		   tb_sql_int("rsign", "SELECT count(*) FROM console_sessions") == 0,
	   "purge_deletes_idle_sessions");
	ok(st->ops->session_insert(st, &s3) == SRV_ST_OK &&
		   st->ops->principal_delete(st, ID_ANN, &AUD) == SRV_ST_OK &&
		   tb_sql_int("rsign", "SELECT count(*) FROM console_sessions") == 0,
	   "deleting_the_principal_ends_its_sessions");
	st->ops->close(st);
	tb_done();
	return tap_done();
}
