/* Unit tests of the SQLite storage of policies, approval requests,
 * decisions, grants, grant-consuming history and the audit log
 * (server/store/store_sqlite_policy.c), including the exactness of grant
 * consumption under 32 concurrent callers. Works in a temporary directory
 * removed at the end. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "rsign/log.h"
#include "server/store/store.h"
#include "server/store/store_sqlite.h"
#include "tap.h"

#define NOW ((time_t)1800000000)

static char tmpdir[] = "/tmp/rsign-test-store-policy.XXXXXX";
static char dbpath[256];

#define ID_ADMIN "00000000-0000-4000-8000-000000000001"
#define ID_ALICE "00000000-0000-4000-8000-000000000002"
#define ID_BOB "00000000-0000-4000-8000-000000000003"
#define ID_CAROL "00000000-0000-4000-8000-000000000004"
#define ID_CI "00000000-0000-4000-8000-000000000005"
#define ID_GONE "00000000-0000-4000-8000-0000000000ff"
#define ID_KEY "00000000-0000-4000-8000-000000000101"
#define ID_CERT "00000000-0000-4000-8000-000000000201"
#define ID_S1 "00000000-0000-4000-8000-000000000301"
#define ID_S2 "00000000-0000-4000-8000-000000000302"
#define ID_S3 "00000000-0000-4000-8000-000000000303"
#define ID_S4 "00000000-0000-4000-8000-000000000304"
#define ID_POL "00000000-0000-4000-8000-000000000401"
#define ID_POL2 "00000000-0000-4000-8000-000000000402"

static const unsigned char spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce};

/* ---- raw SQLite peeks and cleanup ----------------------------------------- */

static long long sql_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void rm_tree(const char *dir)
{
	char p[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
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

/* ---- fixtures --------------------------------------------------------------- */

static srv_st_rc add_principal(srv_store *st, const char *id, const char *type, const char *name)
{
	srv_principal p;

	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, id, sizeof(p.id));
	rs_strlcpy(p.type, type, sizeof(p.type));
	p.name = (char *)name;
	p.created_at = NOW;
	return st->ops->principal_insert(st, &p);
}

static srv_st_rc add_signer(srv_store *st, const char *id, const char *name)
{
	srv_signer s;

	memset(&s, 0, sizeof(s));
	rs_strlcpy(s.id, id, sizeof(s.id));
	s.name = (char *)name;
	s.description = "";
	s.enabled = 1;
	rs_strlcpy(s.certificate_id, ID_CERT, sizeof(s.certificate_id));
	s.created_at = NOW;
	return st->ops->signer_insert(st, &s);
}

static int setup_fixtures(srv_store *st)
{
	srv_key k;
	srv_cert c;

	memset(&k, 0, sizeof(k));
	rs_strlcpy(k.id, ID_KEY, sizeof(k.id));
	k.name = "release-key";
	k.alg = RS_KEY_EC_P256;
	k.spki = (unsigned char *)spki;
	k.spki_len = sizeof(spki);
	k.created_at = NOW;
	memset(&c, 0, sizeof(c));
	rs_strlcpy(c.id, ID_CERT, sizeof(c.id));
	rs_strlcpy(c.key_id, ID_KEY, sizeof(c.key_id));
	c.common_name = "Example Code Signing";
	c.serial = "01";
	c.not_before = NOW - 86400;
	c.not_after = NOW + 86400 * 365;
	c.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	c.created_at = NOW;
	return add_principal(st, ID_ADMIN, "user", "root-admin") == SRV_ST_OK &&
	       add_principal(st, ID_ALICE, "user", "alice") == SRV_ST_OK &&
	       add_principal(st, ID_BOB, "user", "bob") == SRV_ST_OK &&
	       add_principal(st, ID_CAROL, "user", "carol") == SRV_ST_OK &&
	       add_principal(st, ID_CI, "identity", "ci-build") == SRV_ST_OK &&
	       st->ops->key_insert(st, &k) == SRV_ST_OK &&
	       st->ops->cert_insert(st, &c) == SRV_ST_OK &&
	       add_signer(st, ID_S1, "alpha") == SRV_ST_OK &&
	       add_signer(st, ID_S2, "bravo") == SRV_ST_OK &&
	       add_signer(st, ID_S3, "charlie") == SRV_ST_OK &&
	       add_signer(st, ID_S4, "delta") == SRV_ST_OK;
}

static void fill_policy(srv_policy *p, const char *id, const char *name, srv_id *approvers,
			size_t n, int required)
{
	memset(p, 0, sizeof(*p));
	rs_strlcpy(p->id, id, sizeof(p->id));
	p->name = (char *)name;
	p->approvers = approvers;
	p->n_approvers = n;
	p->required_approvals = required;
	p->max_signings = 10;
	p->max_window = 3600;
	p->request_ttl = 600;
	p->created_at = NOW;
	p->updated_at = NOW;
}

/* Inserts request "req-<n>" for signer by CI, expiring at exp. */
static srv_st_rc add_request(srv_store *st, int n, const char *signer, time_t exp)
{
	srv_request q;

	memset(&q, 0, sizeof(q));
	snprintf(q.id, sizeof(q.id), "req-%04d", n);
	rs_strlcpy(q.signer_id, signer, sizeof(q.signer_id));
	rs_strlcpy(q.policy_id, ID_POL, sizeof(q.policy_id));
	rs_strlcpy(q.requester_id, ID_CI, sizeof(q.requester_id));
	q.justification = "release 1.2.3";
	q.signings = 5;
	q.window = 3600;
	q.created_at = NOW;
	q.expires_at = exp;
	return st->ops->request_insert(st, &q);
}

/* The signer a grant for request n is on: the request's, ID_S1 when none. */
static void request_signer(srv_store *st, const char *rid, time_t now, char out[RS_UUID_LEN])
{
	srv_request q;

	memset(&q, 0, sizeof(q));
	rs_strlcpy(out, ID_S1, RS_UUID_LEN);
	if (st->ops->request_get(st, rid, now, &q) == SRV_ST_OK)
		rs_strlcpy(out, q.signer_id, RS_UUID_LEN);
	srv_request_clear(&q);
}

/* approver decides request "req-<n>"; an approval that completes it
 * creates grant "grant-<n>" for CI with max, wstart and exp. */
static srv_st_rc decide(srv_store *st, int n, const char *approver, int approve, int required,
			long long max, time_t wstart, time_t exp, time_t now, srv_request *after)
{
	srv_decision d;
	srv_grant g;

	memset(&d, 0, sizeof(d));
	snprintf(d.request_id, sizeof(d.request_id), "req-%04d", n);
	rs_strlcpy(d.approver_id, approver, sizeof(d.approver_id));
	d.approve = approve;
	d.comment = approve ? "looks right" : "not this release";
	d.created_at = now;
	memset(&g, 0, sizeof(g));
	snprintf(g.id, sizeof(g.id), "grant-%04d", n);
	request_signer(st, d.request_id, now, g.signer_id);
	rs_strlcpy(g.grantee_id, ID_CI, sizeof(g.grantee_id));
	rs_strlcpy(g.request_id, d.request_id, sizeof(g.request_id));
	g.max_signings = max;
	g.window_start = wstart;
	g.expires_at = exp;
	g.created_at = now;
	return st->ops->request_decide(st, &d, required, &g, now, after);
}

/* Request n for signer, approved at once (required 1): grant "grant-<n>". */
static int make_grant(srv_store *st, int n, const char *signer, long long max, time_t wstart,
		      time_t exp)
{
	srv_request after;
	int ok_ = add_request(st, n, signer, NOW + 600) == SRV_ST_OK &&
		  decide(st, n, ID_ALICE, 1, 1, max, wstart, exp, NOW, &after) == SRV_ST_OK &&
		  strcmp(after.status, "approved") == 0;

	srv_request_clear(&after);
	return ok_;
}

static void fill_op(srv_operation *o, const char *id, const char *signer, time_t at)
{
	memset(o, 0, sizeof(*o));
	rs_strlcpy(o->id, id, sizeof(o->id));
	rs_strlcpy(o->signer_id, signer, sizeof(o->signer_id));
	rs_strlcpy(o->status, "success", sizeof(o->status));
	rs_strlcpy(o->algorithm, "ECDSA_SHA256", sizeof(o->algorithm));
	o->is_digest = 1;
	rs_strlcpy(o->actor_type, "identity", sizeof(o->actor_type));
	rs_strlcpy(o->actor_id, ID_CI, sizeof(o->actor_id));
	o->actor_name = "ci-build";
	rs_strlcpy(o->grant_id, "ignored-on-input", sizeof(o->grant_id));
	o->created_at = at;
}

static srv_st_rc consume(srv_store *st, const char *op_id, const char *signer, time_t at,
			 char gid[RS_UUID_LEN])
{
	srv_operation o;

	fill_op(&o, op_id, signer, at);
	return st->ops->operation_insert_consume(st, &o, gid);
}

static srv_st_rc grant_status(srv_store *st, const char *id, time_t now, srv_grant *g)
{
	memset(g, 0, sizeof(*g));
	return st->ops->grant_get(st, id, now, g);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_schema(void)
{
	ok(srv_sqlite_schema_version() >= 2 &&
		   sql_int("PRAGMA user_version") == srv_sqlite_schema_version(),
	   "migrations_bring_user_version_to_the_latest");
	ok(sql_int("SELECT count(*) FROM pragma_table_info('operations') WHERE name = "
		   "'approval'") == 1,
	   "migration_3_adds_operations_approval");
	ok(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
		   "('policies','policy_approvers','requests','decisions','grants','audit')") == 6,
	   "migration_2_creates_policy_tables");
	ok(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
		   "('requests_signer','requests_status','grants_signer_grantee',"
		   "'grants_grantee','policy_approvers_principal')") == 5,
	   "migration_2_creates_indexes");
}

static void test_policies(srv_store *st)
{
	srv_id appr[3] = {ID_BOB, ID_ALICE, ID_BOB};
	srv_id bad[1] = {ID_GONE};
	srv_policy p, got, *list = NULL;
	srv_signer s;
	size_t n = 0, total = 0;

	fill_policy(&p, ID_POL, "release", appr, 3, 2);
	p.bypass_identities = 1;
	ok(st->ops->policy_insert(st, &p) == SRV_ST_OK, "policy_insert_ok");
	memset(&got, 0, sizeof(got));
	ok(st->ops->policy_get(st, ID_POL, &got) == SRV_ST_OK && strcmp(got.name, "release") == 0 &&
		   got.n_approvers == 2 && strcmp(got.approvers[0], ID_BOB) == 0 &&
		   strcmp(got.approvers[1], ID_ALICE) == 0 && got.required_approvals == 2 &&
		   got.max_signings == 10 && got.max_window == 3600 && got.request_ttl == 600 &&
		   got.bypass_identities == 1 && got.created_at == NOW && got.updated_at == NOW,
	   "policy_get_by_id_round_trip_approvers_in_order_without_repeats");
	srv_policy_clear(&got);
	ok(st->ops->policy_get(st, "release", &got) == SRV_ST_OK && strcmp(got.id, ID_POL) == 0,
	   "policy_get_by_name");
	srv_policy_clear(&got);
	ok(st->ops->policy_get(st, "nope", &got) == SRV_ST_NOT_FOUND,
	   "policy_get_unknown_not_found");

	fill_policy(&p, ID_POL2, "release", NULL, 0, 1);
	ok(st->ops->policy_insert(st, &p) == SRV_ST_CONFLICT,
	   "policy_insert_duplicate_name_conflict");
	fill_policy(&p, ID_POL2, "nightly", bad, 1, 1);
	ok(st->ops->policy_insert(st, &p) == SRV_ST_NOT_FOUND &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_NOT_FOUND,
	   "policy_insert_unknown_approver_not_found_nothing_written");
	fill_policy(&p, ID_POL2, "nightly", NULL, 0, 0);
	ok(st->ops->policy_insert(st, &p) == SRV_ST_FAILED, "policy_insert_zero_required_refused");
	fill_policy(&p, ID_POL2, "nightly", NULL, 0, 1);
	ok(st->ops->policy_insert(st, &p) == SRV_ST_OK, "policy_insert_without_approvers_ok");

	fill_policy(&p, ID_POL2, "nightly-builds", appr + 1, 1, 1);
	p.max_signings = 0;
	p.updated_at = NOW + 5;
	p.created_at = 1; /* ignored by update */
	ok(st->ops->policy_update(st, &p) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_OK &&
		   strcmp(got.name, "nightly-builds") == 0 && got.n_approvers == 1 &&
		   strcmp(got.approvers[0], ID_ALICE) == 0 && got.max_signings == 0 &&
		   got.updated_at == NOW + 5 && got.created_at == NOW,
	   "policy_update_round_trip_replaces_approvers");
	srv_policy_clear(&got);
	p.name = "release";
	ok(st->ops->policy_update(st, &p) == SRV_ST_CONFLICT,
	   "policy_update_duplicate_name_conflict");
	fill_policy(&p, ID_GONE, "ghost", NULL, 0, 1);
	ok(st->ops->policy_update(st, &p) == SRV_ST_NOT_FOUND, "policy_update_unknown_not_found");

	ok(st->ops->policy_list(st, NULL, 0, 0, &list, &n, &total) == SRV_ST_OK && n == 2 &&
		   total == 2 && strcmp(list[0].name, "nightly-builds") == 0 &&
		   strcmp(list[1].name, "release") == 0 && list[1].n_approvers == 2,
	   "policy_list_sorted_by_name_with_approvers");
	srv_policy_list_free(list, n);
	ok(st->ops->policy_list(st, NULL, 1, 1, &list, &n, &total) == SRV_ST_OK && n == 1 &&
		   total == 2 && strcmp(list[0].name, "release") == 0,
	   "policy_list_pages_in_sql");
	srv_policy_list_free(list, n);
	/* visible_to: release has approvers bob and alice, nightly-builds
	 * alice; carol approves neither and is no member yet */
	ok(st->ops->policy_list(st, ID_BOB, 0, 0, &list, &n, &total) == SRV_ST_OK && n == 1 &&
		   total == 1 && strcmp(list[0].name, "release") == 0,
	   "policy_list_visible_to_an_approver");
	srv_policy_list_free(list, n);
	ok(st->ops->policy_list(st, ID_CAROL, 0, 0, &list, &n, &total) == SRV_ST_OK && n == 0 &&
		   total == 0,
	   "policy_list_visible_to_a_stranger_is_empty");
	srv_policy_list_free(list, n);
	ok(st->ops->policy_list(st, "", 0, 0, &list, &n, &total) == SRV_ST_FAILED,
	   "policy_list_visible_to_empty_is_refused");

	memset(&s, 0, sizeof(s));
	ok(st->ops->signer_get(st, ID_S2, &s) == SRV_ST_OK, "signer_fixture_read");
	rs_strlcpy(s.policy_id, ID_POL2, sizeof(s.policy_id));
	ok(st->ops->signer_update(st, &s) == SRV_ST_OK &&
		   st->ops->policy_delete(st, ID_POL2) == SRV_ST_CONFLICT &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_OK,
	   "policy_delete_refused_while_a_signer_uses_it");
	srv_policy_clear(&got);
	ok(st->ops->member_set(st, ID_S2, ID_CAROL, SRV_ROLE_AUDITOR) == SRV_ST_OK &&
		   st->ops->policy_list(st, ID_CAROL, 0, 0, &list, &n, &total) == SRV_ST_OK &&
		   n == 1 && total == 1 && strcmp(list[0].id, ID_POL2) == 0,
	   "policy_list_visible_to_a_member_of_a_signer_it_governs");
	srv_policy_list_free(list, n);
	ok(st->ops->member_delete(st, ID_S2, ID_CAROL) == SRV_ST_OK, "member_fixture_removed");
	s.policy_id[0] = '\0';
	ok(st->ops->signer_update(st, &s) == SRV_ST_OK &&
		   st->ops->policy_delete(st, ID_POL2) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_NOT_FOUND &&
		   sql_int("SELECT count(*) FROM policy_approvers WHERE policy_id = '" ID_POL2
			   "'") == 0,
	   "policy_delete_unused_removes_it_and_its_approvers");
	srv_signer_clear(&s);
	ok(st->ops->policy_delete(st, ID_POL2) == SRV_ST_NOT_FOUND,
	   "policy_delete_unknown_not_found");
}

static void test_requests(srv_store *st)
{
	srv_request q, *v = NULL;
	size_t n = 0, total = 0;

	ok(add_request(st, 1, ID_S1, NOW + 600) == SRV_ST_OK &&
		   add_request(st, 2, ID_S2, NOW + 600) == SRV_ST_OK &&
		   add_request(st, 3, ID_S1, NOW + 100) == SRV_ST_OK,
	   "request_insert_ok");
	ok(add_request(st, 1, ID_S1, NOW + 600) == SRV_ST_CONFLICT,
	   "request_insert_duplicate_id_conflict");
	memset(&q, 0, sizeof(q));
	ok(st->ops->request_get(st, "req-0001", NOW, &q) == SRV_ST_OK &&
		   strcmp(q.signer_id, ID_S1) == 0 && strcmp(q.policy_id, ID_POL) == 0 &&
		   strcmp(q.requester_id, ID_CI) == 0 &&
		   strcmp(q.requester_name, "ci-build") == 0 &&
		   strcmp(q.justification, "release 1.2.3") == 0 && q.signings == 5 &&
		   q.window == 3600 && strcmp(q.status, "pending") == 0 && q.approvals == 0 &&
		   q.created_at == NOW && q.expires_at == NOW + 600 && q.closed_at == 0 &&
		   q.grant_id[0] == '\0',
	   "request_get_round_trip_pending_name_joined");
	srv_request_clear(&q);
	ok(st->ops->request_get(st, "req-9999", NOW, &q) == SRV_ST_NOT_FOUND,
	   "request_get_unknown_not_found");

	ok(st->ops->request_list(st, NULL, NULL, NULL, NOW, 0, 0, &v, &n, &total) == SRV_ST_OK &&
		   n == 3 && strcmp(v[0].id, "req-0003") == 0 && strcmp(v[2].id, "req-0001") == 0,
	   "request_list_all_newest_first");
	srv_request_list_free(v, n);
	ok(st->ops->request_list(st, ID_S2, NULL, NULL, NOW, 0, 0, &v, &n, &total) == SRV_ST_OK &&
		   n == 1 && strcmp(v[0].id, "req-0002") == 0,
	   "request_list_filters_by_signer");
	srv_request_list_free(v, n);

	ok(st->ops->request_get(st, "req-0003", NOW + 99, &q) == SRV_ST_OK &&
		   strcmp(q.status, "pending") == 0,
	   "request_pending_before_expires_at");
	srv_request_clear(&q);
	ok(st->ops->request_get(st, "req-0003", NOW + 100, &q) == SRV_ST_OK &&
		   strcmp(q.status, "expired") == 0 && q.closed_at == NOW + 100,
	   "request_expired_at_expires_at_closed_then");
	srv_request_clear(&q);
	ok(sql_int("SELECT count(*) FROM requests WHERE id = 'req-0003' AND status = 'expired'") ==
		   1,
	   "request_expiry_is_persisted");
	ok(st->ops->request_list(st, ID_S1, "expired", NULL, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 1 && strcmp(v[0].id, "req-0003") == 0,
	   "request_list_filters_by_signer_and_status");
	srv_request_list_free(v, n);
	ok(st->ops->request_list(st, NULL, "pending", NULL, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 2,
	   "request_list_filters_by_status");
	srv_request_list_free(v, n);

	/* paging and visible_to (the rule of access.c srv_may_see_request) */
	ok(st->ops->request_list(st, NULL, NULL, NULL, NOW + 100, 1, 1, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 1 && total == 3 && strcmp(v[0].id, "req-0002") == 0,
	   "request_list_pages_in_sql_total_counts_all");
	srv_request_list_free(v, n);
	ok(st->ops->request_list(st, NULL, NULL, ID_CI, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 3 && total == 3,
	   "request_list_visible_to_the_requester");
	srv_request_list_free(v, n);
	ok(st->ops->request_list(st, NULL, NULL, ID_BOB, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 3 && total == 3,
	   "request_list_visible_to_an_approver_of_the_request_policy");
	srv_request_list_free(v, n);
	ok(st->ops->request_list(st, NULL, NULL, ID_CAROL, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0 && total == 0,
	   "request_list_hidden_from_a_stranger");
	srv_request_list_free(v, n);
	ok(st->ops->member_set(st, ID_S2, ID_CAROL, SRV_ROLE_AUDITOR) == SRV_ST_OK &&
		   st->ops->request_list(st, NULL, NULL, ID_CAROL, NOW + 100, 0, 0, &v, &n,
					 &total) == SRV_ST_OK &&
		   n == 1 && total == 1 && strcmp(v[0].id, "req-0002") == 0,
	   "request_list_visible_to_a_member_of_the_signer");
	srv_request_list_free(v, n);
	ok(st->ops->member_delete(st, ID_S2, ID_CAROL) == SRV_ST_OK,
	   "member_fixture_removed_again");
}

static void test_decisions(srv_store *st)
{
	srv_request a;
	srv_decision *dv = NULL;
	srv_grant g;
	size_t n = 0;

	ok(decide(st, 1, ID_ALICE, 1, 1, 5, NOW, NOW + 3600, NOW + 1, &a) == SRV_ST_OK &&
		   strcmp(a.status, "approved") == 0 && a.approvals == 1 &&
		   a.closed_at == NOW + 1 && strcmp(a.grant_id, "grant-0001") == 0,
	   "approve_with_required_1_closes_request_with_grant");
	srv_request_clear(&a);
	ok(grant_status(st, "grant-0001", NOW + 1, &g) == SRV_ST_OK &&
		   strcmp(g.status, "active") == 0 && strcmp(g.signer_id, ID_S1) == 0 &&
		   strcmp(g.grantee_id, ID_CI) == 0 && strcmp(g.request_id, "req-0001") == 0 &&
		   g.max_signings == 5 && g.used_signings == 0 && g.window_start == NOW &&
		   g.expires_at == NOW + 3600 && g.revoked_at == 0,
	   "approval_creates_active_grant");
	ok(decide(st, 1, ID_BOB, 1, 1, 5, NOW, 0, NOW + 2, &a) == SRV_ST_CONFLICT &&
		   a.requester_name == NULL,
	   "decision_on_approved_request_conflict");
	ok(decide(st, 3, ID_ALICE, 1, 1, 5, NOW, 0, NOW + 200, &a) == SRV_ST_CONFLICT,
	   "decision_on_expired_request_conflict");
	ok(add_request(st, 4, ID_S2, NOW + 50) == SRV_ST_OK &&
		   decide(st, 4, ID_ALICE, 1, 1, 5, NOW, 0, NOW + 50, &a) == SRV_ST_CONFLICT,
	   "decision_at_expires_at_conflict");
	ok(decide(st, 9999, ID_ALICE, 1, 1, 5, NOW, 0, NOW, &a) == SRV_ST_NOT_FOUND,
	   "decision_on_unknown_request_not_found");

	/* required 2 */
	ok(add_request(st, 5, ID_S2, NOW + 600) == SRV_ST_OK &&
		   decide(st, 5, ID_ALICE, 1, 2, 3, NOW, 0, NOW + 1, &a) == SRV_ST_OK &&
		   strcmp(a.status, "pending") == 0 && a.approvals == 1 && a.grant_id[0] == '\0' &&
		   grant_status(st, "grant-0005", NOW + 1, &g) == SRV_ST_NOT_FOUND,
	   "required_2_first_approval_keeps_request_pending");
	srv_request_clear(&a);
	ok(decide(st, 5, ID_ALICE, 1, 2, 3, NOW, 0, NOW + 2, &a) == SRV_ST_CONFLICT,
	   "same_approver_twice_conflict");
	ok(decide(st, 5, ID_ALICE, 0, 2, 3, NOW, 0, NOW + 2, &a) == SRV_ST_CONFLICT,
	   "same_approver_reject_after_approve_conflict");
	ok(decide(st, 5, ID_BOB, 1, 2, 3, NOW, 0, NOW + 3, &a) == SRV_ST_OK &&
		   strcmp(a.status, "approved") == 0 && a.approvals == 2 &&
		   strcmp(a.grant_id, "grant-0005") == 0 && a.closed_at == NOW + 3,
	   "required_2_second_approver_approves");
	srv_request_clear(&a);
	ok(st->ops->decision_list(st, "req-0005", &dv, &n) == SRV_ST_OK && n == 2 &&
		   strcmp(dv[0].approver_id, ID_ALICE) == 0 &&
		   strcmp(dv[0].approver_name, "alice") == 0 && dv[0].approve == 1 &&
		   strcmp(dv[0].comment, "looks right") == 0 && dv[0].created_at == NOW + 1 &&
		   strcmp(dv[1].approver_id, ID_BOB) == 0,
	   "decision_list_oldest_first");
	srv_decision_list_free(dv, n);

	/* rejection */
	ok(add_request(st, 6, ID_S2, NOW + 600) == SRV_ST_OK &&
		   decide(st, 6, ID_CAROL, 0, 1, 3, NOW, 0, NOW + 4, &a) == SRV_ST_OK &&
		   strcmp(a.status, "rejected") == 0 && a.closed_at == NOW + 4 &&
		   a.grant_id[0] == '\0' && a.approvals == 0,
	   "reject_closes_request_without_grant");
	srv_request_clear(&a);
	ok(decide(st, 6, ID_ALICE, 1, 1, 3, NOW, 0, NOW + 5, &a) == SRV_ST_CONFLICT,
	   "decision_on_rejected_request_conflict");
	ok(st->ops->decision_list(st, "req-0006", &dv, &n) == SRV_ST_OK && n == 1 &&
		   dv[0].approve == 0 && strcmp(dv[0].comment, "not this release") == 0,
	   "rejection_recorded");
	srv_decision_list_free(dv, n);

	/* close */
	ok(add_request(st, 7, ID_S2, NOW + 600) == SRV_ST_OK &&
		   st->ops->request_close(st, "req-0007", "cancelled", NOW + 6) == SRV_ST_OK &&
		   st->ops->request_get(st, "req-0007", NOW + 6, &a) == SRV_ST_OK &&
		   strcmp(a.status, "cancelled") == 0 && a.closed_at == NOW + 6,
	   "request_close_pending_to_cancelled");
	srv_request_clear(&a);
	ok(st->ops->request_close(st, "req-0007", "cancelled", NOW + 7) == SRV_ST_CONFLICT,
	   "request_close_twice_conflict");
	ok(st->ops->request_close(st, "req-0003", "cancelled", NOW + 7) == SRV_ST_CONFLICT,
	   "request_close_expired_conflict");
	ok(st->ops->request_close(st, "req-9999", "cancelled", NOW) == SRV_ST_NOT_FOUND,
	   "request_close_unknown_not_found");
	ok(st->ops->request_close(st, "req-0002", "approved", NOW) == SRV_ST_FAILED,
	   "request_close_to_approved_refused");
}

static void test_grants(srv_store *st)
{
	char gid[RS_UUID_LEN];
	srv_grant g, *v = NULL;
	srv_operation *ops = NULL;
	srv_signer s;
	size_t n = 0, total = 0;

	memset(&g, 0, sizeof(g));
	ok(st->ops->grant_find_active(st, ID_S1, ID_CI, NOW + 10, &g) == SRV_ST_OK &&
		   strcmp(g.id, "grant-0001") == 0 && strcmp(g.status, "active") == 0,
	   "grant_find_active_finds_usable_grant");
	ok(st->ops->grant_find_active(st, ID_S1, ID_ALICE, NOW + 10, &g) == SRV_ST_NOT_FOUND,
	   "grant_find_active_other_grantee_not_found");

	/* consume sets grant_id on the stored operation */
	ok(consume(st, "op-0001", ID_S1, NOW + 20, gid) == SRV_ST_OK &&
		   strcmp(gid, "grant-0001") == 0,
	   "consume_returns_grant_used");
	ok(st->ops->operation_list(st, ID_S1, NULL, 0, 10, &ops, &n, &total) == SRV_ST_OK &&
		   total == 1 && strcmp(ops[0].id, "op-0001") == 0 &&
		   strcmp(ops[0].grant_id, "grant-0001") == 0 &&
		   strcmp(ops[0].status, "success") == 0,
	   "consume_records_operation_with_grant_id");
	srv_operation_list_free(ops, n);
	memset(&s, 0, sizeof(s));
	ok(grant_status(st, "grant-0001", NOW + 20, &g) == SRV_ST_OK && g.used_signings == 1 &&
		   st->ops->signer_get(st, ID_S1, &s) == SRV_ST_OK && s.last_signed_at == NOW + 20,
	   "consume_increments_used_and_sets_last_signed_at");
	srv_signer_clear(&s);

	/* revoke */
	ok(st->ops->grant_revoke(st, "grant-0001", NOW + 30) == SRV_ST_OK &&
		   grant_status(st, "grant-0001", NOW + 30, &g) == SRV_ST_OK &&
		   strcmp(g.status, "revoked") == 0 && g.revoked_at == NOW + 30,
	   "grant_revoke_marks_revoked");
	ok(st->ops->grant_find_active(st, ID_S1, ID_CI, NOW + 31, &g) == SRV_ST_NOT_FOUND &&
		   consume(st, "op-0002", ID_S1, NOW + 31, gid) == SRV_ST_NOT_FOUND &&
		   gid[0] == '\0' &&
		   sql_int("SELECT count(*) FROM operations WHERE id = 'op-0002'") == 0,
	   "revoked_grant_not_usable_nothing_written");
	ok(st->ops->grant_revoke(st, "grant-0001", NOW + 32) == SRV_ST_CONFLICT,
	   "grant_revoke_twice_conflict");
	ok(st->ops->grant_revoke(st, "grant-9999", NOW) == SRV_ST_NOT_FOUND,
	   "grant_revoke_unknown_not_found");

	/* window */
	ok(make_grant(st, 10, ID_S1, 0, NOW + 100, NOW + 200), "window_grant_created");
	ok(st->ops->grant_find_active(st, ID_S1, ID_CI, NOW + 99, &g) == SRV_ST_NOT_FOUND,
	   "window_grant_not_usable_before_window_start");
	ok(st->ops->grant_find_active(st, ID_S1, ID_CI, NOW + 199, &g) == SRV_ST_OK &&
		   strcmp(g.id, "grant-0010") == 0,
	   "window_grant_usable_inside_window");
	ok(st->ops->grant_find_active(st, ID_S1, ID_CI, NOW + 200, &g) == SRV_ST_NOT_FOUND &&
		   consume(st, "op-0003", ID_S1, NOW + 200, gid) == SRV_ST_NOT_FOUND,
	   "window_grant_not_usable_at_expires_at");
	ok(grant_status(st, "grant-0010", NOW + 200, &g) == SRV_ST_OK &&
		   strcmp(g.status, "expired") == 0 &&
		   grant_status(st, "grant-0010", NOW + 150, &g) == SRV_ST_OK &&
		   strcmp(g.status, "active") == 0,
	   "window_grant_reported_expired_from_expires_at");
	ok(st->ops->grant_revoke(st, "grant-0010", NOW + 300) == SRV_ST_CONFLICT,
	   "grant_revoke_expired_conflict");

	/* count */
	ok(make_grant(st, 11, ID_S1, 2, NOW, 0), "count_grant_created");
	ok(consume(st, "op-0004", ID_S1, NOW + 300, gid) == SRV_ST_OK &&
		   consume(st, "op-0005", ID_S1, NOW + 301, gid) == SRV_ST_OK &&
		   strcmp(gid, "grant-0011") == 0,
	   "count_grant_consumed_up_to_max");
	ok(consume(st, "op-0006", ID_S1, NOW + 302, gid) == SRV_ST_NOT_FOUND,
	   "count_grant_exhausted_not_found");
	ok(grant_status(st, "grant-0011", NOW + 302, &g) == SRV_ST_OK &&
		   strcmp(g.status, "expired") == 0 && g.used_signings == 2,
	   "exhausted_grant_reported_expired");

	/* the grant ending first is spent first */
	ok(make_grant(st, 12, ID_S1, 0, NOW, 0) && make_grant(st, 13, ID_S1, 0, NOW, NOW + 5000) &&
		   consume(st, "op-0007", ID_S1, NOW + 400, gid) == SRV_ST_OK &&
		   strcmp(gid, "grant-0013") == 0,
	   "consume_prefers_grant_expiring_first");
	ok(st->ops->grant_revoke(st, "grant-0013", NOW + 401) == SRV_ST_OK &&
		   consume(st, "op-0008", ID_S1, NOW + 402, gid) == SRV_ST_OK &&
		   strcmp(gid, "grant-0012") == 0,
	   "consume_falls_back_to_open_ended_grant");

	/* lists */
	ok(st->ops->grant_list(st, ID_S1, NULL, NULL, NULL, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 5 && strcmp(v[0].id, "grant-0013") == 0 &&
		   strcmp(v[4].id, "grant-0001") == 0,
	   "grant_list_by_signer_newest_first");
	srv_grant_list_free(v, n);
	ok(st->ops->grant_list(st, NULL, "expired", NULL, NULL, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 2 && strcmp(v[0].id, "grant-0011") == 0 &&
		   strcmp(v[1].id, "grant-0010") == 0,
	   "grant_list_expired_is_derived");
	srv_grant_list_free(v, n);
	ok(st->ops->grant_list(st, NULL, "active", ID_CI, NULL, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 2 && strcmp(v[0].id, "grant-0012") == 0 &&
		   strcmp(v[1].id, "grant-0005") == 0,
	   "grant_list_active_by_grantee");
	srv_grant_list_free(v, n);
	ok(st->ops->grant_list(st, NULL, NULL, ID_ALICE, NULL, NOW, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0 && v == NULL,
	   "grant_list_empty");
	srv_grant_list_free(v, n);

	/* paging and visible_to (the rule of access.c srv_may_see_grant) */
	ok(st->ops->grant_list(st, ID_S1, NULL, NULL, NULL, NOW + 402, 1, 2, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 2 && total == 5 && strcmp(v[0].id, "grant-0012") == 0,
	   "grant_list_pages_in_sql_total_counts_all");
	srv_grant_list_free(v, n);
	ok(st->ops->grant_list(st, ID_S1, NULL, NULL, ID_CI, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 5 && total == 5,
	   "grant_list_visible_to_the_grantee");
	srv_grant_list_free(v, n);
	ok(st->ops->grant_list(st, ID_S1, NULL, NULL, ID_BOB, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0 && total == 0,
	   "grant_list_hidden_from_a_non_approver_of_the_signer");
	srv_grant_list_free(v, n);
	memset(&s, 0, sizeof(s));
	ok(st->ops->signer_get(st, ID_S1, &s) == SRV_ST_OK, "signer_fixture_read_for_grants");
	rs_strlcpy(s.policy_id, ID_POL, sizeof(s.policy_id));
	ok(st->ops->signer_update(st, &s) == SRV_ST_OK &&
		   st->ops->grant_list(st, ID_S1, NULL, NULL, ID_BOB, NOW + 402, 0, 0, &v, &n,
				       &total) == SRV_ST_OK &&
		   n == 5 && total == 5,
	   "grant_list_visible_to_an_approver_of_the_signer_current_policy");
	srv_grant_list_free(v, n);
	s.policy_id[0] = '\0';
	ok(st->ops->signer_update(st, &s) == SRV_ST_OK, "signer_fixture_policy_removed");
	srv_signer_clear(&s);
	ok(st->ops->member_set(st, ID_S1, ID_CAROL, SRV_ROLE_OPERATOR) == SRV_ST_OK &&
		   st->ops->grant_list(st, NULL, NULL, NULL, ID_CAROL, NOW + 402, 0, 1, &v, &n,
				       &total) == SRV_ST_OK &&
		   n == 1 && total == 5 && st->ops->member_delete(st, ID_S1, ID_CAROL) == SRV_ST_OK,
	   "grant_list_visible_to_a_member_of_the_signer");
	srv_grant_list_free(v, n);
}

/* ---- concurrency: exactly max_signings of 32 concurrent callers succeed ---- */

#define RACERS 32
#define RACE_MAX 5

typedef struct {
	srv_store *st;
	const char *signer;
	int i;
	srv_st_rc r;
	char gid[RS_UUID_LEN];
} racer;

/* The racers wait for go so they start together. */
static pthread_mutex_t race_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t race_cv = PTHREAD_COND_INITIALIZER;
static int race_go;

static void race_release(int go)
{
	pthread_mutex_lock(&race_mu);
	race_go = go;
	pthread_cond_broadcast(&race_cv);
	pthread_mutex_unlock(&race_mu);
}

static void *race(void *arg)
{
	racer *x = arg;
	char id[RS_UUID_LEN];

	snprintf(id, sizeof(id), "race-%.8s-op-%02d", x->signer + 28, x->i);
	pthread_mutex_lock(&race_mu);
	while (!race_go)
		pthread_cond_wait(&race_cv, &race_mu);
	pthread_mutex_unlock(&race_mu);
	x->r = consume(x->st, id, x->signer, NOW + 500 + x->i, x->gid);
	return NULL;
}

#define RACE_CHECKS 6 /* the checks race_consume makes */

/* RACERS threads, alternating between st1 and st2, each consume once from
 * grant "grant-<n>" (max RACE_MAX) on signer. With st1 == st2 the store's
 * mutex serialises them; with two handles SQLite's write lock must. */
static void race_consume(srv_store *st1, srv_store *st2, const char *signer, int n,
			 const char *what)
{
	char want[RS_UUID_LEN], sql[256];
	pthread_t th[RACERS];
	racer x[RACERS];
	srv_grant g;
	int started = 0, okc = 0, nf = 0, other = 0, same = 1;

	snprintf(want, sizeof(want), "grant-%04d", n);
	ok(make_grant(st1, n, signer, RACE_MAX, NOW, 0), "%s_grant_created", what);
	race_release(0);
	for (int i = 0; i < RACERS; i++) {
		memset(&x[i], 0, sizeof(x[i]));
		x[i].st = i % 2 ? st2 : st1;
		x[i].signer = signer;
		x[i].i = i;
		if (pthread_create(&th[i], NULL, race, &x[i]) != 0)
			break;
		started++;
	}
	race_release(1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < started; i++) {
		if (x[i].r == SRV_ST_OK) {
			okc++;
			same &= strcmp(x[i].gid, want) == 0;
		} else if (x[i].r == SRV_ST_NOT_FOUND) {
			nf++;
		} else {
			other++;
		}
	}
	ok(started == RACERS, "%s_all_threads_started", what);
	ok(okc == RACE_MAX && nf == RACERS - RACE_MAX && other == 0 && same,
	   "%s_exactly_max_succeed (ok %d, not found %d, other %d)", what, okc, nf, other);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM operations WHERE signer_id = '%s' AND grant_id = '%s'",
		 signer, want);
	ok(sql_int(sql) == RACE_MAX, "%s_exactly_max_operation_rows", what);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM operations WHERE signer_id = '%s'",
		 signer);
	ok(sql_int(sql) == RACE_MAX, "%s_no_operation_rows_for_losers", what);
	ok(grant_status(st1, want, NOW + 600, &g) == SRV_ST_OK && g.used_signings == RACE_MAX &&
		   strcmp(g.status, "expired") == 0,
	   "%s_grant_used_equals_max", what);
}

static void test_concurrent_consume(srv_store *st)
{
	char err[512] = "";
	srv_store *st2;

	race_consume(st, st, ID_S3, 20, "concurrent_consume_one_handle");
	st2 = srv_store_sqlite_open(dbpath, err, sizeof(err));
	ok(st2 != NULL, "second_handle_opened");
	if (!st2)
		tap_bail("cannot open a second handle on %s: %s", dbpath, err);
	race_consume(st, st2, ID_S4, 21, "concurrent_consume_two_handles");
	st2->ops->close(st2);
}

static void test_audit(srv_store *st)
{
	static const char *const actions[] = {"policy.create", "request.create", "request.approve",
					      "grant.create", "grant.revoke"};
	srv_audit a, *v = NULL;
	size_t n = 0, total = 0;
	int ins = 1;

	for (int i = 0; i < 5; i++) {
		memset(&a, 0, sizeof(a));
		rs_strlcpy(a.actor_id, i == 4 ? ID_ADMIN : ID_ALICE, sizeof(a.actor_id));
		a.actor_name = i == 0 ? "alice-at-the-time" : NULL;
		rs_strlcpy(a.action, actions[i], sizeof(a.action));
		rs_strlcpy(a.object_type,
			   strncmp(actions[i], "grant", 5) == 0 ? "grant" : "request",
			   sizeof(a.object_type));
		snprintf(a.object_id, sizeof(a.object_id), "obj-%d", i);
		a.detail = i == 2 ? "{\"comment\":\"ok\"}" : NULL;
		a.created_at = NOW + i;
		ins &= st->ops->audit_insert(st, &a) == SRV_ST_OK;
	}
	ok(ins, "audit_insert_ok");
	memset(&a, 0, sizeof(a));
	ok(st->ops->audit_insert(st, &a) == SRV_ST_FAILED, "audit_insert_without_action_refused");

	ok(st->ops->audit_list(st, 0, 2, &v, &n, &total) == SRV_ST_OK && total == 5 && n == 2 &&
		   strcmp(v[0].action, "grant.revoke") == 0 &&
		   strcmp(v[0].actor_name, "root-admin") == 0 && v[0].created_at == NOW + 4 &&
		   strcmp(v[0].detail, "{}") == 0 && strcmp(v[1].action, "grant.create") == 0 &&
		   v[0].seq > v[1].seq,
	   "audit_list_first_page_newest_first_name_joined");
	srv_audit_list_free(v, n);
	ok(st->ops->audit_list(st, 2, 2, &v, &n, &total) == SRV_ST_OK && total == 5 && n == 2 &&
		   strcmp(v[0].action, "request.approve") == 0 &&
		   strcmp(v[0].detail, "{\"comment\":\"ok\"}") == 0 &&
		   strcmp(v[1].object_id, "obj-1") == 0,
	   "audit_list_second_page");
	srv_audit_list_free(v, n);
	ok(st->ops->audit_list(st, 4, 10, &v, &n, &total) == SRV_ST_OK && total == 5 && n == 1 &&
		   strcmp(v[0].actor_name, "alice-at-the-time") == 0 &&
		   strcmp(v[0].actor_id, ID_ALICE) == 0,
	   "audit_list_last_page_keeps_given_name");
	srv_audit_list_free(v, n);
	ok(st->ops->audit_list(st, 0, 0, &v, &n, &total) == SRV_ST_OK && n == 5,
	   "audit_list_limit_0_is_all");
	srv_audit_list_free(v, n);
}

static void test_principal_delete_leaves_policy(srv_store *st)
{
	srv_policy p;

	memset(&p, 0, sizeof(p));
	ok(st->ops->principal_delete(st, ID_BOB) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_POL, &p) == SRV_ST_OK && p.n_approvers == 1 &&
		   strcmp(p.approvers[0], ID_ALICE) == 0,
	   "principal_delete_removes_it_from_approvers");
	srv_policy_clear(&p);
}

int main(void)
{
	char err[512] = "";
	srv_store *st;

	plan(104 + 2 * RACE_CHECKS);
	rs_log_set_level(RS_LOG_WARN);
	if (!mkdtemp(tmpdir))
		tap_bail("mkdtemp %s", tmpdir);
	snprintf(dbpath, sizeof(dbpath), "%s/rsign.db", tmpdir);
	st = srv_store_sqlite_open(dbpath, err, sizeof(err));
	ok(st != NULL, "open_creates_database");
	if (!st)
		tap_bail("cannot create the database %s: %s", dbpath, err);
	test_schema();
	ok(setup_fixtures(st), "fixtures_created");
	test_policies(st);
	test_requests(st);
	test_decisions(st);
	test_grants(st);
	test_concurrent_consume(st);
	test_audit(st);
	test_principal_delete_leaves_policy(st);
	st->ops->close(st);
	rm_tree(tmpdir);
	return tap_done();
}
