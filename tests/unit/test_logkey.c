/* The log key at start (server/rsignd/checkpoint.c, srv_logkey_start) when
 * replicas start together on a database that has none yet: each makes a key
 * in the token, and exactly one is recorded; every replica then signs
 * checkpoints with the recorded one. The race is made deterministic with a
 * store wrapper: the first replica's reads see no key until it writes, and
 * a second replica starts completely in between. Also: a restart finds the
 * key, and the record from before the log_key meta (the log_key_ckid /
 * log_key_spki pair) is still read. SQLite + a real SoftHSM2 token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/rsignd/checkpoint.h"
#include "server/store/store.h"
#include "softhsm_fixture.h"
#include "tap.h"

/* the wrapper: a store whose meta reads say "none" until the first write,
 * and whose first read lets the competing replica start */
typedef struct {
	srv_store base;
	srv_store *real;
	srv_ctx *competitor;
	int wrote, competed, competitor_rc;
} racing_store;

static srv_store_ops racing_ops;

static srv_st_rc racing_meta_get(srv_store *st, const char *key, char **value)
{
	racing_store *r = (racing_store *)st;
	char err[256];

	if (!r->competed) {
		r->competed = 1;
		r->competitor_rc = srv_logkey_start(r->competitor, err, sizeof err);
		if (r->competitor_rc != 0)
			printf("# the competing replica: %s\n", err);
	}
	if (!r->wrote) {
		*value = NULL;
		return SRV_ST_NOT_FOUND;
	}
	return r->real->ops->meta_get(r->real, key, value);
}

static srv_st_rc racing_meta_set(srv_store *st, const char *key, const char *value)
{
	racing_store *r = (racing_store *)st;

	r->wrote = 1;
	return r->real->ops->meta_set(r->real, key, value);
}

static srv_st_rc racing_meta_add(srv_store *st, const char *key, const char *value)
{
	racing_store *r = (racing_store *)st;

	r->wrote = 1;
	return r->real->ops->meta_add(r->real, key, value);
}

static int same_key(const srv_ctx *a, const srv_ctx *b)
{
	return a->log_spki && b->log_spki && memcmp(a->log_ckid, b->log_ckid, SRV_CKID_LEN) == 0 &&
	       a->log_spki_len == b->log_spki_len &&
	       memcmp(a->log_spki, b->log_spki, a->log_spki_len) == 0;
}

static void ctx_free(srv_ctx *c)
{
	free(c->log_spki);
	c->log_spki = NULL;
}

int main(void)
{
	char err[256], db[512];
	srv_hsm *hsm;
	srv_store *st;

	plan(7);
	if (fixture_softhsm_setup("logkey", err, sizeof err) != 0 ||
	    !(hsm = fixture_softhsm_token(4, err, sizeof err)))
		tap_bail("token: %s", err);
	snprintf(db, sizeof db, "%s/rsign.db", fixture_softhsm_dir());
	if (!(st = srv_store_sqlite_open(db, err, sizeof err)))
		tap_bail("store: %s", err);

	/* two replicas, the second starting between the first's read and write */
	srv_ctx first = {.hsm = hsm}, second = {.hsm = hsm, .store = st},
		later = {.hsm = hsm, .store = st};
	racing_store race = {.real = st, .competitor = &second};
	racing_ops = *st->ops;
	racing_ops.meta_get = racing_meta_get;
	racing_ops.meta_set = racing_meta_set;
	racing_ops.meta_add = racing_meta_add;
	race.base.ops = &racing_ops;
	first.store = &race.base;

	int rc = srv_logkey_start(&first, err, sizeof err);
	ok(rc == 0, "the first replica starts%s%s", rc ? ": " : "", rc ? err : "");
	ok(race.competed && race.competitor_rc == 0, "the second replica started in between");
	ok(same_key(&first, &second), "both replicas use one log key, the one recorded first");
	/* what a third start (a restart) finds is that key too */
	rc = srv_logkey_start(&later, err, sizeof err);
	ok(rc == 0 && same_key(&later, &second), "a later start reads the same key%s%s",
	   rc ? ": " : "", rc ? err : "");
	char *v = NULL;
	ok(st->ops->meta_get(st, "log_key", &v) == SRV_ST_OK && v && strchr(v, ':'),
	   "the key is recorded once, as log_key");
	free(v);
	ctx_free(&first);
	ctx_free(&second);
	ctx_free(&later);

	/* a database from before log_key: the pair is read, and kept */
	srv_store *st2;
	char *ck = NULL, *colon;
	snprintf(db, sizeof db, "%s/old.db", fixture_softhsm_dir());
	if (!(st2 = srv_store_sqlite_open(db, err, sizeof err)))
		tap_bail("store 2: %s", err);
	v = NULL;
	ok(st->ops->meta_get(st, "log_key", &ck) == SRV_ST_OK && (colon = strchr(ck, ':')) &&
		   (*colon = '\0', st2->ops->meta_set(st2, "log_key_ckid", ck) == SRV_ST_OK) &&
		   st2->ops->meta_set(st2, "log_key_spki", colon + 1) == SRV_ST_OK,
	   "a database holding only the old pair");
	free(ck);
	srv_ctx old = {.hsm = hsm, .store = st2};
	rc = srv_logkey_start(&old, err, sizeof err);
	ok(rc == 0 && st2->ops->meta_get(st2, "log_key", &v) == SRV_ST_NOT_FOUND,
	   "the old pair is read and no second key is made%s%s", rc ? ": " : "", rc ? err : "");
	free(v);
	ctx_free(&old);
	st2->ops->close(st2);
	st->ops->close(st);
	srv_hsm_close(hsm);
	fixture_softhsm_teardown();
	return tap_done();
}
