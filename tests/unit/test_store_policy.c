/* Unit tests of the storage of policies, approval requests, decisions,
 * grants, grant-consuming history and the audit log
 * (server/store/store_sqlite_policy.c, _grant.c; store_pg_policy.c,
 * _grant.c), including the exactness of grant consumption under 32
 * concurrent callers over two store handles (two processes' worth of
 * connections), approvals bound to the policy in force, and audit entries
 * written with their change or not at all. The same body runs on SQLite
 * (files in a temporary directory removed at the end) and, run by
 * tests/lib/with-pg, on PostgreSQL (store_backend.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rsign/der.h"
#include "rsign/log.h"
#include "server/store/store.h"
#include "server/store/store_sqlite.h"
#include "store_backend.h"
#include "tap.h"

#define NOW ((time_t)1800000000)

static char tmpdir[] = "/tmp/rsign-test-store-policy.XXXXXX";
static char dbpath[1024]; /* the database's path or URI */

#define ID_ADMIN "00000000-0000-4000-8000-000000000001"
#define ID_ALICE "00000000-0000-4000-8000-000000000002"
#define ID_BOB "00000000-0000-4000-8000-000000000003"
#define ID_CAROL "00000000-0000-4000-8000-000000000004"
#define ID_CI "00000000-0000-4000-8000-000000000005"
#define ID_DAVE "00000000-0000-4000-8000-000000000006"
#define ID_ERIN "00000000-0000-4000-8000-000000000007"
#define ID_FRANK "00000000-0000-4000-8000-000000000008"
#define ID_GINA "00000000-0000-4000-8000-000000000009"
#define ID_GONE "00000000-0000-4000-8000-0000000000ff"
#define ID_KEY "00000000-0000-4000-8000-000000000101"
#define ID_CERT "00000000-0000-4000-8000-000000000201"
#define ID_S1 "00000000-0000-4000-8000-000000000301"
#define ID_S2 "00000000-0000-4000-8000-000000000302"
#define ID_S3 "00000000-0000-4000-8000-000000000303"
#define ID_S4 "00000000-0000-4000-8000-000000000304"
#define ID_S5 "00000000-0000-4000-8000-000000000305"
#define ID_S6 "00000000-0000-4000-8000-000000000306"
#define ID_S7 "00000000-0000-4000-8000-000000000307"
#define ID_POL "00000000-0000-4000-8000-000000000401"
#define ID_POL2 "00000000-0000-4000-8000-000000000402"
#define ID_POL3 "00000000-0000-4000-8000-000000000403"
#define ID_LAX "00000000-0000-4000-8000-000000000404"
#define ID_STRICT "00000000-0000-4000-8000-000000000405"
#define ID_TIGHT "00000000-0000-4000-8000-000000000406"
#define ID_COUNT "00000000-0000-4000-8000-000000000407"

/* The audit entry of the changes a test makes (the store refuses a change
 * without one); its created_at is the change's "now". */
static const srv_audit AUD = {.actor_id = ID_ADMIN,
			      .action = "test.change",
			      .object_type = "test",
			      .object_id = "fixture",
			      .created_at = NOW};

static const unsigned char spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce};

/* ---- raw peeks, on a second connection (store_backend.c) --------------- */

static long long sql_int(const char *sql)
{
	return tb_sql_int("rsign", sql);
}

static int sql_exec(const char *sql)
{
	return tb_sql_exec("rsign", sql);
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
	return st->ops->principal_insert(st, &p, NULL, &AUD);
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
	return st->ops->signer_insert(st, &s, &AUD);
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
	       add_principal(st, ID_DAVE, "user", "dave") == SRV_ST_OK &&
	       add_principal(st, ID_ERIN, "user", "erin") == SRV_ST_OK &&
	       add_principal(st, ID_FRANK, "user", "frank") == SRV_ST_OK &&
	       st->ops->key_insert(st, &k, &AUD) == SRV_ST_OK &&
	       st->ops->cert_insert(st, &c, &AUD) == SRV_ST_OK &&
	       add_signer(st, ID_S1, "alpha") == SRV_ST_OK &&
	       add_signer(st, ID_S2, "bravo") == SRV_ST_OK &&
	       add_signer(st, ID_S3, "charlie") == SRV_ST_OK &&
	       add_signer(st, ID_S4, "delta") == SRV_ST_OK &&
	       add_signer(st, ID_S5, "echo") == SRV_ST_OK &&
	       add_signer(st, ID_S6, "foxtrot") == SRV_ST_OK &&
	       add_signer(st, ID_S7, "golf") == SRV_ST_OK;
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

/* Inserts request "req-<n>" for signer by requester under the signer's
 * current policy, for signings and a 3600 s window, expiring at exp. */
static srv_st_rc add_request_by(srv_store *st, int n, const char *signer, const char *requester,
				long long signings, time_t exp)
{
	srv_request q;
	srv_signer s;

	memset(&q, 0, sizeof(q));
	memset(&s, 0, sizeof(s));
	if (st->ops->signer_get(st, signer, &s) != SRV_ST_OK)
		return SRV_ST_FAILED;
	snprintf(q.id, sizeof(q.id), "req-%04d", n);
	rs_strlcpy(q.signer_id, signer, sizeof(q.signer_id));
	rs_strlcpy(q.policy_id, s.policy_id[0] ? s.policy_id : ID_POL, sizeof(q.policy_id));
	srv_signer_clear(&s);
	rs_strlcpy(q.requester_id, requester, sizeof(q.requester_id));
	q.justification = "release 1.2.3";
	q.signings = signings;
	q.window = 3600;
	q.created_at = NOW;
	q.expires_at = exp;
	return st->ops->request_insert(st, &q, &AUD);
}

/* Request "req-<n>" for signer by CI for 5 signings, expiring at exp. */
static srv_st_rc add_request(srv_store *st, int n, const char *signer, time_t exp)
{
	return add_request_by(st, n, signer, ID_CI, 5, exp);
}

/* approver decides request "req-<n>" at now; an approval that completes it
 * creates grant "grant-<n>". *why: why a CONFLICT. */
static srv_st_rc decide_why(srv_store *st, int n, const char *approver, int approve, time_t now,
			    srv_request *after, srv_decide_why *why)
{
	srv_decision d;
	char gid[RS_UUID_LEN];
	srv_audit a = AUD;

	memset(&d, 0, sizeof(d));
	snprintf(d.request_id, sizeof(d.request_id), "req-%04d", n);
	rs_strlcpy(d.approver_id, approver, sizeof(d.approver_id));
	d.approve = approve;
	d.comment = approve ? "looks right" : "not this release";
	d.created_at = now;
	snprintf(gid, sizeof(gid), "grant-%04d", n);
	rs_strlcpy(a.action, approve ? "request.approve" : "request.reject", sizeof(a.action));
	rs_strlcpy(a.object_type, "request", sizeof(a.object_type));
	rs_strlcpy(a.object_id, d.request_id, sizeof(a.object_id));
	a.created_at = now;
	return st->ops->request_decide(st, &d, gid, now, after, why, &a);
}

static srv_st_rc decide(srv_store *st, int n, const char *approver, int approve, time_t now,
			srv_request *after)
{
	return decide_why(st, n, approver, approve, now, after, NULL);
}

/* Request n for signer (under ID_LAX-like policies: no limits, one
 * approval) for max signings and the window wstart..exp (0 = none),
 * approved by alice at wstart: grant "grant-<n>". */
static int make_grant(srv_store *st, int n, const char *signer, long long max, time_t wstart,
		      time_t exp)
{
	srv_request q, after;
	int ok_ = 0;

	memset(&q, 0, sizeof(q));
	memset(&after, 0, sizeof(after));
	snprintf(q.id, sizeof(q.id), "req-%04d", n);
	rs_strlcpy(q.signer_id, signer, sizeof(q.signer_id));
	rs_strlcpy(q.policy_id, ID_POL, sizeof(q.policy_id));
	rs_strlcpy(q.requester_id, ID_CI, sizeof(q.requester_id));
	q.justification = "grant fixture";
	q.signings = max;
	q.window = exp ? exp - wstart : 0;
	q.created_at = NOW;
	q.expires_at = wstart + 600;
	ok_ = st->ops->request_insert(st, &q, &AUD) == SRV_ST_OK &&
	      decide(st, n, ID_ALICE, 1, wstart, &after) == SRV_ST_OK &&
	      strcmp(after.status, "approved") == 0;
	srv_request_clear(&after);
	return ok_;
}

/* The signer's policy set to policy_id ("" = none), audited as a. */
static srv_st_rc set_signer_policy(srv_store *st, const char *signer, const char *policy_id,
				   const srv_audit *a)
{
	srv_signer s;
	srv_st_rc r;

	memset(&s, 0, sizeof(s));
	if ((r = st->ops->signer_get(st, signer, &s)) != SRV_ST_OK)
		return r;
	rs_strlcpy(s.policy_id, policy_id, sizeof(s.policy_id));
	r = st->ops->signer_update(st, &s, a);
	srv_signer_clear(&s);
	return r;
}

/* The number of audit entries with action on object id. */
static long long audited(const char *action, const char *id)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM audit WHERE action = '%s' AND object_id = '%s'", action, id);
	return sql_int(sql);
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
	if (tb_pg()) {
		ok(srv_pg_schema_version() >= 2 &&
			   sql_int("SELECT version FROM schema_version") == srv_pg_schema_version(),
		   "migrations_bring_schema_version_to_the_latest");
		ok(sql_int("SELECT count(*) FROM information_schema.columns WHERE table_name ="
			   " 'operations' AND column_name = 'approval'") == 1,
		   "migration_3_adds_operations_approval");
		ok(sql_int("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
			   "('policies','policy_approvers','requests','decisions','grants',"
			   "'audit')") == 6,
		   "migration_2_creates_policy_tables");
		ok(sql_int("SELECT count(*) FROM pg_indexes WHERE indexname IN "
			   "('requests_signer','requests_status','grants_signer_grantee',"
			   "'grants_grantee','policy_approvers_principal')") == 5,
		   "migration_2_creates_indexes");
		return;
	}
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
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK, "policy_insert_ok");
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
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_CONFLICT,
	   "policy_insert_duplicate_name_conflict");
	fill_policy(&p, ID_POL2, "nightly", bad, 1, 1);
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_NOT_FOUND &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_NOT_FOUND,
	   "policy_insert_unknown_approver_not_found_nothing_written");
	fill_policy(&p, ID_POL2, "nightly", NULL, 0, 0);
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_FAILED,
	   "policy_insert_zero_required_refused");
	fill_policy(&p, ID_POL2, "nightly", NULL, 0, 1);
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK, "policy_insert_without_approvers_ok");

	fill_policy(&p, ID_POL2, "nightly-builds", appr + 1, 1, 1);
	p.max_signings = 0;
	p.updated_at = NOW + 5;
	p.created_at = 1; /* ignored by update */
	ok(st->ops->policy_update(st, &p, &AUD) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_OK &&
		   strcmp(got.name, "nightly-builds") == 0 && got.n_approvers == 1 &&
		   strcmp(got.approvers[0], ID_ALICE) == 0 && got.max_signings == 0 &&
		   got.updated_at == NOW + 5 && got.created_at == NOW,
	   "policy_update_round_trip_replaces_approvers");
	srv_policy_clear(&got);
	p.name = "release";
	ok(st->ops->policy_update(st, &p, &AUD) == SRV_ST_CONFLICT,
	   "policy_update_duplicate_name_conflict");
	fill_policy(&p, ID_GONE, "ghost", NULL, 0, 1);
	ok(st->ops->policy_update(st, &p, &AUD) == SRV_ST_NOT_FOUND,
	   "policy_update_unknown_not_found");

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
	ok(st->ops->signer_update(st, &s, &AUD) == SRV_ST_OK &&
		   st->ops->policy_delete(st, ID_POL2, &AUD) == SRV_ST_CONFLICT &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_OK,
	   "policy_delete_refused_while_a_signer_uses_it");
	srv_policy_clear(&got);
	ok(st->ops->member_set(st, ID_S2, ID_CAROL, SRV_ROLE_AUDITOR, &AUD) == SRV_ST_OK &&
		   st->ops->policy_list(st, ID_CAROL, 0, 0, &list, &n, &total) == SRV_ST_OK &&
		   n == 1 && total == 1 && strcmp(list[0].id, ID_POL2) == 0,
	   "policy_list_visible_to_a_member_of_a_signer_it_governs");
	srv_policy_list_free(list, n);
	ok(st->ops->member_delete(st, ID_S2, ID_CAROL, &AUD) == SRV_ST_OK,
	   "member_fixture_removed");
	s.policy_id[0] = '\0';
	ok(st->ops->signer_update(st, &s, &AUD) == SRV_ST_OK &&
		   st->ops->policy_delete(st, ID_POL2, &AUD) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_POL2, &got) == SRV_ST_NOT_FOUND &&
		   sql_int("SELECT count(*) FROM policy_approvers WHERE policy_id = '" ID_POL2
			   "'") == 0,
	   "policy_delete_unused_removes_it_and_its_approvers");
	srv_signer_clear(&s);
	ok(st->ops->policy_delete(st, ID_POL2, &AUD) == SRV_ST_NOT_FOUND,
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
	ok(st->ops->request_list(st, NULL, NULL, ID_DAVE, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0 && total == 0,
	   "request_list_hidden_from_a_stranger");
	srv_request_list_free(v, n);
	ok(st->ops->request_list(st, NULL, NULL, ID_CAROL, NOW + 100, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 1 && total == 1 && strcmp(v[0].id, "req-0002") == 0,
	   "request_list_visible_to_an_approver_of_the_signer_policy_only");
	srv_request_list_free(v, n);
	ok(st->ops->member_set(st, ID_S2, ID_DAVE, SRV_ROLE_AUDITOR, &AUD) == SRV_ST_OK &&
		   st->ops->request_list(st, NULL, NULL, ID_DAVE, NOW + 100, 0, 0, &v, &n,
					 &total) == SRV_ST_OK &&
		   n == 1 && total == 1 && strcmp(v[0].id, "req-0002") == 0,
	   "request_list_visible_to_a_member_of_the_signer");
	srv_request_list_free(v, n);
	ok(st->ops->member_delete(st, ID_S2, ID_DAVE, &AUD) == SRV_ST_OK,
	   "member_fixture_removed_again");
}

/* After test_policies: "release" (ID_POL: bob, alice) becomes lax -- one
 * approval, no limits -- and governs alpha, charlie and delta;
 * "two-approvers" (alice, bob, carol; 2 of them; 10 signings, 1 h) governs
 * bravo. */
static void attach_policies(srv_store *st)
{
	srv_id two[3] = {ID_ALICE, ID_BOB, ID_CAROL};
	srv_policy p;

	memset(&p, 0, sizeof(p));
	int got = st->ops->policy_get(st, ID_POL, &p) == SRV_ST_OK;
	p.required_approvals = 1;
	p.max_signings = 0;
	p.max_window = 0;
	got = got && st->ops->policy_update(st, &p, &AUD) == SRV_ST_OK;
	srv_policy_clear(&p);
	fill_policy(&p, ID_POL3, "two-approvers", two, 3, 2);
	ok(got && st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S1, ID_POL, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S3, ID_POL, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S4, ID_POL, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S2, ID_POL3, &AUD) == SRV_ST_OK,
	   "policies_attached_to_the_signers");
}

static void test_decisions(srv_store *st)
{
	srv_request a;
	srv_decision *dv = NULL;
	srv_grant g;
	srv_decide_why why;
	size_t n = 0;

	ok(decide(st, 1, ID_ALICE, 1, NOW + 1, &a) == SRV_ST_OK &&
		   strcmp(a.status, "approved") == 0 && a.approvals == 1 &&
		   a.closed_at == NOW + 1 && strcmp(a.grant_id, "grant-0001") == 0,
	   "approve_with_required_1_closes_request_with_grant");
	srv_request_clear(&a);
	ok(grant_status(st, "grant-0001", NOW + 1, &g) == SRV_ST_OK &&
		   strcmp(g.status, "active") == 0 && strcmp(g.signer_id, ID_S1) == 0 &&
		   strcmp(g.grantee_id, ID_CI) == 0 && strcmp(g.request_id, "req-0001") == 0 &&
		   g.max_signings == 5 && g.used_signings == 0 && g.window_start == NOW + 1 &&
		   g.expires_at == NOW + 1 + 3600 && g.revoked_at == 0,
	   "approval_creates_active_grant_from_now_for_what_was_requested");
	ok(audited("request.approve", "req-0001") == 1 &&
		   audited("grant.create", "grant-0001") == 1,
	   "approval_and_grant_audited_once_each");
	ok(decide_why(st, 1, ID_BOB, 1, NOW + 2, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_CLOSED && a.requester_name == NULL,
	   "decision_on_approved_request_conflict");
	ok(decide_why(st, 3, ID_ALICE, 1, NOW + 200, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_CLOSED,
	   "decision_on_expired_request_conflict");
	ok(add_request(st, 4, ID_S2, NOW + 50) == SRV_ST_OK &&
		   decide(st, 4, ID_ALICE, 1, NOW + 50, &a) == SRV_ST_CONFLICT,
	   "decision_at_expires_at_conflict");
	ok(decide(st, 9999, ID_ALICE, 1, NOW, &a) == SRV_ST_NOT_FOUND,
	   "decision_on_unknown_request_not_found");

	/* bravo's policy needs two of alice, bob and carol */
	ok(add_request(st, 5, ID_S2, NOW + 600) == SRV_ST_OK &&
		   decide(st, 5, ID_ALICE, 1, NOW + 1, &a) == SRV_ST_OK &&
		   strcmp(a.status, "pending") == 0 && a.approvals == 1 && a.grant_id[0] == '\0' &&
		   grant_status(st, "grant-0005", NOW + 1, &g) == SRV_ST_NOT_FOUND,
	   "required_2_first_approval_keeps_request_pending");
	srv_request_clear(&a);
	ok(decide_why(st, 5, ID_ALICE, 1, NOW + 2, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_TWICE,
	   "same_approver_twice_conflict");
	ok(decide_why(st, 5, ID_ALICE, 0, NOW + 2, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_TWICE,
	   "same_approver_reject_after_approve_conflict");
	ok(decide_why(st, 5, ID_DAVE, 1, NOW + 2, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_NOT_APPROVER && audited("request.approve", "req-0005") == 1,
	   "unlisted_approver_refused_and_not_audited");
	ok(decide(st, 5, ID_BOB, 1, NOW + 3, &a) == SRV_ST_OK &&
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
		   decide(st, 6, ID_CAROL, 0, NOW + 4, &a) == SRV_ST_OK &&
		   strcmp(a.status, "rejected") == 0 && a.closed_at == NOW + 4 &&
		   a.grant_id[0] == '\0' && a.approvals == 0,
	   "reject_closes_request_without_grant");
	srv_request_clear(&a);
	ok(decide(st, 6, ID_ALICE, 1, NOW + 5, &a) == SRV_ST_CONFLICT,
	   "decision_on_rejected_request_conflict");
	ok(st->ops->decision_list(st, "req-0006", &dv, &n) == SRV_ST_OK && n == 1 &&
		   dv[0].approve == 0 && strcmp(dv[0].comment, "not this release") == 0,
	   "rejection_recorded");
	srv_decision_list_free(dv, n);
	ok(add_request_by(st, 8, ID_S2, ID_ALICE, 1, NOW + 600) == SRV_ST_OK &&
		   decide_why(st, 8, ID_ALICE, 1, NOW + 5, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_OWN,
	   "nobody_decides_their_own_request");

	/* close */
	ok(add_request(st, 7, ID_S2, NOW + 600) == SRV_ST_OK &&
		   st->ops->request_close(st, "req-0007", "cancelled", NOW + 6, &AUD) ==
			   SRV_ST_OK &&
		   st->ops->request_get(st, "req-0007", NOW + 6, &a) == SRV_ST_OK &&
		   strcmp(a.status, "cancelled") == 0 && a.closed_at == NOW + 6,
	   "request_close_pending_to_cancelled");
	srv_request_clear(&a);
	ok(st->ops->request_close(st, "req-0007", "cancelled", NOW + 7, &AUD) == SRV_ST_CONFLICT,
	   "request_close_twice_conflict");
	ok(st->ops->request_close(st, "req-0003", "cancelled", NOW + 7, &AUD) == SRV_ST_CONFLICT,
	   "request_close_expired_conflict");
	ok(st->ops->request_close(st, "req-9999", "cancelled", NOW, &AUD) == SRV_ST_NOT_FOUND,
	   "request_close_unknown_not_found");
	ok(st->ops->request_close(st, "req-0002", "approved", NOW, &AUD) == SRV_ST_FAILED,
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
	ok(st->ops->grant_revoke(st, "grant-0001", NOW + 30, &AUD) == SRV_ST_OK &&
		   grant_status(st, "grant-0001", NOW + 30, &g) == SRV_ST_OK &&
		   strcmp(g.status, "revoked") == 0 && g.revoked_at == NOW + 30,
	   "grant_revoke_marks_revoked");
	ok(st->ops->grant_find_active(st, ID_S1, ID_CI, NOW + 31, &g) == SRV_ST_NOT_FOUND &&
		   consume(st, "op-0002", ID_S1, NOW + 31, gid) == SRV_ST_NOT_FOUND &&
		   gid[0] == '\0' &&
		   sql_int("SELECT count(*) FROM operations WHERE id = 'op-0002'") == 0,
	   "revoked_grant_not_usable_nothing_written");
	ok(st->ops->grant_revoke(st, "grant-0001", NOW + 32, &AUD) == SRV_ST_CONFLICT,
	   "grant_revoke_twice_conflict");
	ok(st->ops->grant_revoke(st, "grant-9999", NOW, &AUD) == SRV_ST_NOT_FOUND,
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
	ok(st->ops->grant_revoke(st, "grant-0010", NOW + 300, &AUD) == SRV_ST_CONFLICT,
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
	ok(st->ops->grant_revoke(st, "grant-0013", NOW + 401, &AUD) == SRV_ST_OK &&
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
	ok(st->ops->grant_list(st, ID_S1, NULL, NULL, ID_CAROL, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 0 && total == 0,
	   "grant_list_hidden_from_a_non_approver_of_the_signer");
	srv_grant_list_free(v, n);
	ok(st->ops->grant_list(st, ID_S1, NULL, NULL, ID_BOB, NOW + 402, 0, 0, &v, &n, &total) ==
			   SRV_ST_OK &&
		   n == 5 && total == 5,
	   "grant_list_visible_to_an_approver_of_the_signer_current_policy");
	srv_grant_list_free(v, n);
	ok(st->ops->member_set(st, ID_S1, ID_CAROL, SRV_ROLE_OPERATOR, &AUD) == SRV_ST_OK &&
		   st->ops->grant_list(st, ID_S1, NULL, NULL, ID_CAROL, NOW + 402, 0, 1, &v, &n,
				       &total) == SRV_ST_OK &&
		   n == 1 && total == 5 &&
		   st->ops->member_delete(st, ID_S1, ID_CAROL, &AUD) == SRV_ST_OK,
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
 * grant "grant-<n>" (max RACE_MAX) on signer. With st1 == st2 one handle's
 * concurrency control decides (SQLite: the store's mutex; PostgreSQL: its
 * pool's connections racing); with two handles the database's must. */
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
	st2 = tb_open("rsign", err, sizeof(err));
	ok(st2 != NULL, "second_handle_opened");
	if (!st2)
		tap_bail("cannot open a second handle on %s: %s", dbpath, err);
	race_consume(st, st2, ID_S4, 21, "concurrent_consume_two_handles");
	st2->ops->close(st2);
}

static void test_principal_delete_leaves_policy(srv_store *st)
{
	srv_policy p;

	memset(&p, 0, sizeof(p));
	ok(st->ops->principal_delete(st, ID_BOB, &AUD) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_POL, &p) == SRV_ST_OK && p.n_approvers == 1 &&
		   strcmp(p.approvers[0], ID_ALICE) == 0,
	   "principal_delete_removes_it_from_approvers");
	srv_policy_clear(&p);
}

/* The policy in force, not the one a request was made under: the issue's
 * swap (lax -> strict) and tighten (500 per day -> 2 per minute). */
static void test_policy_in_force(srv_store *st)
{
	srv_id lax_appr[1] = {ID_ERIN}, strict_appr[2] = {ID_ERIN, ID_FRANK};
	srv_policy lax, strict, tight;
	srv_request a, q;
	srv_grant g;
	srv_decide_why why;
	srv_audit at10 = AUD, at20 = AUD;

	at10.created_at = NOW + 10;
	at20.created_at = NOW + 20;
	fill_policy(&lax, ID_LAX, "lax", lax_appr, 1, 1);
	lax.max_signings = 1000;
	lax.max_window = 86400;
	fill_policy(&strict, ID_STRICT, "strict", strict_appr, 2, 2);
	strict.max_signings = 1;
	strict.max_window = 60;
	fill_policy(&tight, ID_TIGHT, "tight", lax_appr, 1, 1);
	tight.max_signings = 500;
	tight.max_window = 86400;
	ok(st->ops->policy_insert(st, &lax, &AUD) == SRV_ST_OK &&
		   st->ops->policy_insert(st, &strict, &AUD) == SRV_ST_OK &&
		   st->ops->policy_insert(st, &tight, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S5, ID_LAX, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S6, ID_TIGHT, &AUD) == SRV_ST_OK,
	   "in_force_fixtures");

	/* swap: a grant and a pending request made under lax end with it */
	memset(&a, 0, sizeof(a));
	ok(add_request_by(st, 29, ID_S5, ID_CI, 1000, NOW + 600) == SRV_ST_OK &&
		   decide(st, 29, ID_ERIN, 1, NOW + 1, &a) == SRV_ST_OK &&
		   strcmp(a.status, "approved") == 0 &&
		   add_request_by(st, 30, ID_S5, ID_CI, 1000, NOW + 600) == SRV_ST_OK,
	   "lax_grant_and_pending_request");
	srv_request_clear(&a);
	memset(&q, 0, sizeof(q));
	ok(set_signer_policy(st, ID_S5, ID_STRICT, &at10) == SRV_ST_OK &&
		   st->ops->request_get(st, "req-0030", NOW + 10, &q) == SRV_ST_OK &&
		   strcmp(q.status, "cancelled") == 0 && q.closed_at == NOW + 10 &&
		   audited("request.cancel", "req-0030") == 1,
	   "policy_swap_cancels_pending_requests_audited");
	srv_request_clear(&q);
	ok(grant_status(st, "grant-0029", NOW + 11, &g) == SRV_ST_OK &&
		   strcmp(g.status, "revoked") == 0 && g.revoked_at == NOW + 10 &&
		   audited("grant.revoke", "grant-0029") == 1 &&
		   st->ops->grant_find_active(st, ID_S5, ID_CI, NOW + 11, &g) == SRV_ST_NOT_FOUND,
	   "policy_swap_revokes_active_grants_audited");
	ok(decide_why(st, 30, ID_ERIN, 1, NOW + 12, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_CLOSED &&
		   grant_status(st, "grant-0030", NOW + 12, &g) == SRV_ST_NOT_FOUND,
	   "approval_after_swap_refused_no_grant");
	/* a request still pending under a former policy (say, made before an
	 * upgrade): refused, whoever approves */
	memset(&q, 0, sizeof(q));
	rs_strlcpy(q.id, "req-0031", sizeof(q.id));
	rs_strlcpy(q.signer_id, ID_S5, sizeof(q.signer_id));
	rs_strlcpy(q.policy_id, ID_LAX, sizeof(q.policy_id));
	rs_strlcpy(q.requester_id, ID_CI, sizeof(q.requester_id));
	q.justification = "made under lax";
	q.signings = 1000;
	q.created_at = NOW;
	q.expires_at = NOW + 600;
	ok(st->ops->request_insert(st, &q, &AUD) == SRV_ST_OK &&
		   decide_why(st, 31, ID_ERIN, 1, NOW + 13, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_POLICY_CHANGED &&
		   grant_status(st, "grant-0031", NOW + 13, &g) == SRV_ST_NOT_FOUND &&
		   audited("request.approve", "req-0031") == 0,
	   "request_under_a_former_policy_refused");
	/* strict: two approvals, then a grant clamped to 1 signing and 60 s */
	ok(add_request_by(st, 32, ID_S5, ID_CI, 5, NOW + 600) == SRV_ST_OK &&
		   decide(st, 32, ID_ERIN, 1, NOW + 14, &a) == SRV_ST_OK &&
		   strcmp(a.status, "pending") == 0,
	   "strict_needs_a_second_approval");
	srv_request_clear(&a);
	ok(decide(st, 32, ID_FRANK, 1, NOW + 15, &a) == SRV_ST_OK &&
		   strcmp(a.status, "approved") == 0 &&
		   grant_status(st, "grant-0032", NOW + 15, &g) == SRV_ST_OK &&
		   g.max_signings == 1 && g.expires_at == NOW + 15 + 60,
	   "approval_clamps_the_grant_to_the_policy_limits");
	srv_request_clear(&a);

	/* tighten in place: 500 a day -> 2 a minute */
	ok(add_request_by(st, 33, ID_S6, ID_CI, 500, NOW + 600) == SRV_ST_OK &&
		   decide(st, 33, ID_ERIN, 1, NOW + 1, &a) == SRV_ST_OK &&
		   grant_status(st, "grant-0033", NOW + 1, &g) == SRV_ST_OK &&
		   g.max_signings == 500 && g.expires_at == NOW + 1 + 3600 &&
		   add_request_by(st, 34, ID_S6, ID_CI, 500, NOW + 600) == SRV_ST_OK,
	   "tight_grant_and_pending_request");
	srv_request_clear(&a);
	tight.max_signings = 2;
	tight.max_window = 60;
	ok(st->ops->policy_update(st, &tight, &at20) == SRV_ST_OK &&
		   st->ops->request_get(st, "req-0034", NOW + 20, &q) == SRV_ST_OK &&
		   strcmp(q.status, "cancelled") == 0 && audited("request.cancel", "req-0034") == 1,
	   "policy_tighten_cancels_pending_requests_audited");
	srv_request_clear(&q);
	ok(grant_status(st, "grant-0033", NOW + 20, &g) == SRV_ST_OK && g.max_signings == 2 &&
		   g.expires_at == NOW + 1 + 60 && strcmp(g.status, "active") == 0 &&
		   audited("grant.clamp", "grant-0033") == 1,
	   "policy_tighten_clamps_active_grants_audited");
	ok(grant_status(st, "grant-0033", NOW + 61, &g) == SRV_ST_OK &&
		   strcmp(g.status, "expired") == 0,
	   "clamped_grant_ends_at_its_new_end");
	ok(decide_why(st, 34, ID_ERIN, 1, NOW + 21, &a, &why) == SRV_ST_CONFLICT &&
		   why == SRV_DECIDE_CLOSED,
	   "approval_after_tighten_refused");
	tight.name = "tight-renamed";
	tight.request_ttl = 1200;
	ok(add_request_by(st, 35, ID_S6, ID_CI, 2, NOW + 600) == SRV_ST_OK &&
		   st->ops->policy_update(st, &tight, &at20) == SRV_ST_OK &&
		   st->ops->request_get(st, "req-0035", NOW + 20, &q) == SRV_ST_OK &&
		   strcmp(q.status, "pending") == 0,
	   "policy_rename_leaves_requests_pending");
	srv_request_clear(&q);
}

/* Approvals count while their approvers can still approve; an approver
 * the policy needs is neither disabled nor deleted. */
static void test_current_approvers(srv_store *st)
{
	srv_id count_appr[3] = {ID_ALICE, ID_CAROL, ID_DAVE};
	srv_policy p;
	srv_request a;
	long long before;

	fill_policy(&p, ID_COUNT, "count", count_appr, 3, 2);
	memset(&a, 0, sizeof(a));
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK &&
		   set_signer_policy(st, ID_S7, ID_COUNT, &AUD) == SRV_ST_OK &&
		   add_request(st, 36, ID_S7, NOW + 600) == SRV_ST_OK &&
		   decide(st, 36, ID_DAVE, 1, NOW + 1, &a) == SRV_ST_OK &&
		   strcmp(a.status, "pending") == 0,
	   "count_first_approval_pending");
	srv_request_clear(&a);
	ok(st->ops->principal_set_disabled(st, ID_DAVE, 1, &AUD) == SRV_ST_OK &&
		   decide(st, 36, ID_ALICE, 1, NOW + 2, &a) == SRV_ST_OK &&
		   strcmp(a.status, "pending") == 0,
	   "approvals_of_a_disabled_approver_no_longer_count");
	srv_request_clear(&a);
	ok(decide(st, 36, ID_CAROL, 1, NOW + 3, &a) == SRV_ST_OK &&
		   strcmp(a.status, "approved") == 0,
	   "two_usable_approvals_approve");
	srv_request_clear(&a);

	/* "two-approvers" (alice, carol once bob was deleted) needs both */
	before = sql_int("SELECT count(*) FROM audit");
	ok(st->ops->principal_set_disabled(st, ID_ALICE, 1, &AUD) == SRV_ST_CONFLICT &&
		   sql_int("SELECT disabled FROM principals WHERE id = '" ID_ALICE "'") == 0,
	   "disabling_a_needed_approver_refused");
	ok(st->ops->principal_delete(st, ID_CAROL, &AUD) == SRV_ST_CONFLICT &&
		   sql_int("SELECT count(*) FROM principals WHERE id = '" ID_CAROL "'") == 1,
	   "deleting_a_needed_approver_refused");
	ok(sql_int("SELECT count(*) FROM audit") == before, "refused_approver_changes_not_audited");
	ok(st->ops->principal_delete(st, ID_DAVE, &AUD) == SRV_ST_OK &&
		   st->ops->policy_get(st, ID_COUNT, &p) == SRV_ST_OK && p.n_approvers == 2,
	   "deleting_a_disabled_approver_allowed");
	srv_policy_clear(&p);
	ok(st->ops->principal_set_disabled(st, ID_FRANK, 0, &AUD) == SRV_ST_OK,
	   "enabling_is_always_allowed");
}

/* How many of all (the whole log) f selects, worked out here rather than
 * in SQL: the oracle of test_audit_filters. */
static size_t audit_expect(const srv_audit *all, size_t n, const srv_list_filter *f)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const char *name = all[i].actor_name ? all[i].actor_name : "";
		if (f->actor && strcmp(all[i].actor_id, f->actor) != 0 &&
		    strcmp(name, f->actor) != 0)
			continue;
		if (f->action && strcmp(all[i].action, f->action) != 0)
			continue;
		if ((f->has_from && all[i].created_at < f->from) ||
		    (f->has_to && all[i].created_at >= f->to))
			continue;
		k++;
	}
	return k;
}

/* audit_list's filters (issue 12): actor by id or recorded name, action,
 * the time range, combined, paged; totals checked against audit_expect. */
static void test_audit_filters(srv_store *st)
{
	srv_audit *all = NULL, *v = NULL;
	size_t nall = 0, tall = 0, n = 0, total = 0;
	const srv_list_filter cases[] = {
		{.actor = ID_ALICE},
		{.actor = "admin-at-the-time"},
		{.action = "member.set"},
		{.actor = ID_ADMIN, .action = "test.change"},
		{.has_from = 1, .from = NOW + 7},
		{.has_to = 1, .to = NOW + 7},
		{.has_from = 1, .from = NOW + 7, .has_to = 1, .to = NOW + 8, .actor = "alice"},
		{.actor = "nobody-at-all"},
	};
	int same = 1, nonempty = 0;

	ok(st->ops->audit_list(st, NULL, 0, 0, &all, &nall, &tall) == SRV_ST_OK && nall == tall,
	   "audit_filters_whole_log_read");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t want = audit_expect(all, nall, &cases[i]);
		v = NULL;
		if (st->ops->audit_list(st, &cases[i], 0, 0, &v, &n, &total) != SRV_ST_OK ||
		    total != want || n != want) {
			printf("# case %zu: %zu rows, total %zu, want %zu\n", i, n, total, want);
			same = 0;
		}
		for (size_t j = 0; j < n && same; j++)
			same = audit_expect(&v[j], 1, &cases[i]) == 1;
		nonempty += want > 0;
		srv_audit_list_free(v, n);
	}
	ok(same && nonempty >= 6, "audit_list_filters_match_the_log (%d cases with rows)",
	   nonempty);
	v = NULL;
	ok(st->ops->audit_list(st, &cases[6], 0, 0, &v, &n, &total) == SRV_ST_OK && n == 1 &&
		   strcmp(v[0].action, "principal.create") == 0 &&
		   strcmp(v[0].object_id, ID_GINA) == 0,
	   "audit_list_actor_name_and_range_pick_the_one_entry");
	srv_audit_list_free(v, n);
	v = NULL;
	size_t want = audit_expect(all, nall, &cases[3]);
	ok(want >= 2 && st->ops->audit_list(st, &cases[3], 1, 1, &v, &n, &total) == SRV_ST_OK &&
		   n == 1 && total == want,
	   "audit_list_filtered_paging_counts_the_filtered_set");
	srv_audit_list_free(v, n);
	srv_audit_list_free(all, nall);
}

/* Entries are written by the ops that change things, in the same
 * transaction, the entry before what the change brings about. */
static void test_audit(srv_store *st)
{
	srv_principal p;
	srv_audit a = AUD, b = AUD, *v = NULL;
	size_t n = 0, total = 0, total0 = 0;

	ok(st->ops->audit_list(st, NULL, 0, 1, &v, &n, &total0) == SRV_ST_OK && total0 > 0,
	   "audit_list_counts_the_entries_of_every_change");
	srv_audit_list_free(v, n);
	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, ID_GINA, sizeof(p.id));
	rs_strlcpy(p.type, "user", sizeof(p.type));
	p.name = "gina";
	p.created_at = NOW;
	rs_strlcpy(a.actor_id, ID_ALICE, sizeof(a.actor_id));
	rs_strlcpy(a.action, "principal.create", sizeof(a.action));
	rs_strlcpy(a.object_type, "principal", sizeof(a.object_type));
	rs_strlcpy(a.object_id, ID_GINA, sizeof(a.object_id));
	a.detail = "{\"name\":\"gina\"}";
	a.created_at = NOW + 7;
	b.actor_name = "admin-at-the-time";
	rs_strlcpy(b.action, "member.set", sizeof(b.action));
	rs_strlcpy(b.object_type, "signer", sizeof(b.object_type));
	rs_strlcpy(b.object_id, ID_S3, sizeof(b.object_id));
	ok(st->ops->principal_insert(st, &p, NULL, &a) == SRV_ST_OK &&
		   st->ops->member_set(st, ID_S3, ID_GINA, SRV_ROLE_AUDITOR, &b) == SRV_ST_OK,
	   "audited_changes_ok");
	ok(st->ops->audit_list(st, NULL, 0, 2, &v, &n, &total) == SRV_ST_OK &&
		   total == total0 + 2 && n == 2 && strcmp(v[0].action, "member.set") == 0 &&
		   strcmp(v[0].actor_name, "admin-at-the-time") == 0 &&
		   strcmp(v[0].detail, "{}") == 0 && strcmp(v[1].action, "principal.create") == 0 &&
		   strcmp(v[1].actor_name, "alice") == 0 &&
		   strcmp(v[1].detail, "{\"name\":\"gina\"}") == 0 && v[1].created_at == NOW + 7 &&
		   strcmp(v[1].object_id, ID_GINA) == 0 && v[0].seq > v[1].seq,
	   "audit_list_newest_first_name_joined_or_as_given");
	srv_audit_list_free(v, n);
	ok(st->ops->audit_list(st, NULL, 1, 1, &v, &n, &total) == SRV_ST_OK && n == 1 &&
		   total == total0 + 2 && strcmp(v[0].action, "principal.create") == 0,
	   "audit_list_pages_in_sql");
	srv_audit_list_free(v, n);
	ok(st->ops->audit_list(st, NULL, 0, 0, &v, &n, &total) == SRV_ST_OK && n == total,
	   "audit_list_limit_0_is_all");
	srv_audit_list_free(v, n);
	ok(sql_int("SELECT (SELECT seq FROM audit WHERE action = 'request.approve' AND object_id"
		   " = 'req-0001') < (SELECT seq FROM audit WHERE action = 'grant.create' AND"
		   " object_id = 'grant-0001')") == 1,
	   "audit_cause_precedes_what_it_brought_about");
	a.action[0] = '\0';
	rs_strlcpy(p.id, "00000000-0000-4000-8000-0000000000aa", sizeof(p.id));
	p.name = "no-action";
	ok(st->ops->principal_insert(st, &p, NULL, &a) == SRV_ST_FAILED &&
		   st->ops->principal_insert(st, &p, NULL, NULL) == SRV_ST_FAILED &&
		   sql_int("SELECT count(*) FROM principals WHERE name = 'no-action'") == 0,
	   "a_change_without_an_audit_entry_is_refused");
}

/* ---- atomicity: an entry the database refuses takes its change with it ---- */

static srv_st_rc at_principal(srv_store *st)
{
	srv_principal p;

	memset(&p, 0, sizeof(p));
	rs_strlcpy(p.id, "00000000-0000-4000-8000-0000000000ab", sizeof(p.id));
	rs_strlcpy(p.type, "user", sizeof(p.type));
	p.name = "atomic-user";
	return st->ops->principal_insert(st, &p, "00aa", &AUD);
}

static srv_st_rc at_policy(srv_store *st)
{
	srv_id appr[1] = {ID_ALICE};
	srv_policy p;

	fill_policy(&p, "00000000-0000-4000-8000-0000000004ab", "atomic-policy", appr, 1, 1);
	return st->ops->policy_insert(st, &p, &AUD);
}

static srv_st_rc at_request(srv_store *st)
{
	return add_request(st, 90, ID_S1, NOW + 600);
}

static srv_st_rc at_swap(srv_store *st)
{
	return set_signer_policy(st, ID_S1, ID_LAX, &AUD);
}

static srv_st_rc at_decide(srv_store *st)
{
	srv_request a;

	return decide(st, 35, ID_ERIN, 1, NOW + 30, &a);
}

static srv_st_rc at_revoke(srv_store *st)
{
	return st->ops->grant_revoke(st, "grant-0012", NOW + 500, &AUD);
}

static srv_st_rc at_member(srv_store *st)
{
	return st->ops->member_set(st, ID_S1, ID_FRANK, SRV_ROLE_AUDITOR, &AUD);
}

static srv_st_rc at_disable(srv_store *st)
{
	return st->ops->principal_set_disabled(st, ID_GINA, 1, &AUD);
}

static srv_st_rc at_retire(srv_store *st)
{
	return st->ops->signer_retire(st, ID_S6, &AUD);
}

static srv_st_rc at_tighten(srv_store *st)
{
	srv_policy p;
	srv_st_rc r;

	memset(&p, 0, sizeof(p));
	if ((r = st->ops->policy_get(st, ID_POL, &p)) != SRV_ST_OK)
		return r;
	p.max_signings = 1;
	r = st->ops->policy_update(st, &p, &AUD);
	srv_policy_clear(&p);
	return r;
}

/* Each change with the database refusing an audit entry: every entry
 * (when NULL), or only one the change writes about what it brought about,
 * so that part of the change has run when the refusal comes. */
static const struct {
	const char *name;
	srv_st_rc (*change)(srv_store *st);
	const char *when;      /* the trigger's condition on NEW.action, NULL = always */
	const char *unchanged; /* SQL that is 1 while the change is absent */
} atomic_cases[] = {
	{"principal_insert", at_principal, NULL,
	 "SELECT count(*) = 0 FROM principals WHERE name = 'atomic-user'"},
	{"policy_insert", at_policy, NULL,
	 "SELECT count(*) = 0 FROM policies WHERE name = 'atomic-policy'"},
	{"request_insert", at_request, NULL,
	 "SELECT count(*) = 0 FROM requests WHERE id = 'req-0090'"},
	{"grant_revoke", at_revoke, NULL,
	 "SELECT status = 'active' FROM grants WHERE id = 'grant-0012'"},
	{"member_set", at_member, NULL,
	 "SELECT count(*) = 0 FROM members WHERE principal_id = '" ID_FRANK "'"},
	{"principal_set_disabled", at_disable, NULL,
	 "SELECT disabled = 0 FROM principals WHERE id = '" ID_GINA "'"},
	{"signer_update_policy_swap", at_swap, "'grant.revoke'",
	 "SELECT (SELECT policy_id FROM signers WHERE id = '" ID_S1 "') = '" ID_POL "' AND"
	 " (SELECT status FROM grants WHERE id = 'grant-0012') = 'active'"},
	{"request_decide", at_decide, "'grant.create'",
	 "SELECT (SELECT status FROM requests WHERE id = 'req-0035') = 'pending' AND"
	 " (SELECT count(*) FROM decisions WHERE request_id = 'req-0035') = 0 AND"
	 " (SELECT count(*) FROM grants WHERE id = 'grant-0035') = 0"},
	{"signer_retire", at_retire, "'request.cancel'",
	 "SELECT (SELECT retired_at = 0 FROM signers WHERE id = '" ID_S6 "') AND"
	 " (SELECT status FROM requests WHERE id = 'req-0035') = 'pending'"},
	{"policy_update_tighten", at_tighten, "'grant.clamp'",
	 "SELECT (SELECT max_signings FROM policies WHERE id = '" ID_POL "') = 0 AND"
	 " (SELECT max_signings FROM grants WHERE id = 'grant-0012') = 0"},
};

static void test_audit_atomic(srv_store *st)
{
	long long before = sql_int("SELECT count(*) FROM audit");
	char sql[256];

	/* PostgreSQL's triggers run a function: the one that refuses */
	if (tb_pg() && sql_exec("CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql"
				" AS 'BEGIN RAISE EXCEPTION ''audit refused''; END'") != 0)
		printf("# cannot create the refusing function\n");

	for (size_t i = 0; i < TAP_COUNT(atomic_cases); i++) {
		const char *when = atomic_cases[i].when;
		if (tb_pg())
			snprintf(sql, sizeof(sql),
				 "CREATE TRIGGER audit_refused BEFORE INSERT ON audit FOR EACH ROW"
				 "%s%s%s EXECUTE FUNCTION audit_refuse()",
				 when ? " WHEN (NEW.action = " : "", when ? when : "",
				 when ? ")" : "");
		else
			snprintf(sql, sizeof(sql),
				 "CREATE TRIGGER audit_refused BEFORE INSERT ON audit%s%s"
				 " BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
				 when ? " WHEN NEW.action = " : "", when ? when : "");
		int armed = sql_exec(sql) == 0;
		srv_st_rc r = armed ? atomic_cases[i].change(st) : SRV_ST_OK;
		int dropped = sql_exec(tb_pg() ? "DROP TRIGGER audit_refused ON audit"
					       : "DROP TRIGGER audit_refused") == 0;
		ok(armed && dropped && r == SRV_ST_FAILED &&
			   sql_int(atomic_cases[i].unchanged) == 1,
		   "audit_refused_%s_leaves_neither (rc %d)", atomic_cases[i].name, (int)r);
	}
	ok(sql_int("SELECT count(*) FROM audit") == before, "audit_refused_wrote_no_entry");
	/* the same changes go through once the log takes entries again */
	ok(at_member(st) == SRV_ST_OK && audited("test.change", "fixture") > 0 &&
		   sql_int("SELECT count(*) FROM audit") == before + 1,
	   "audit_accepted_again_one_entry_per_change");
	/* refused changes write nothing either */
	srv_principal dup;
	memset(&dup, 0, sizeof(dup));
	rs_strlcpy(dup.id, "00000000-0000-4000-8000-0000000000ac", sizeof(dup.id));
	rs_strlcpy(dup.type, "user", sizeof(dup.type));
	dup.name = "alice";
	before = sql_int("SELECT count(*) FROM audit");
	ok(st->ops->principal_insert(st, &dup, NULL, &AUD) == SRV_ST_CONFLICT &&
		   st->ops->policy_delete(st, ID_POL, &AUD) == SRV_ST_CONFLICT &&
		   st->ops->member_delete(st, ID_S1, ID_ERIN, &AUD) == SRV_ST_NOT_FOUND &&
		   st->ops->grant_revoke(st, "grant-0001", NOW + 500, &AUD) == SRV_ST_CONFLICT &&
		   st->ops->signer_retire(st, "no-such-signer", &AUD) == SRV_ST_NOT_FOUND &&
		   sql_int("SELECT count(*) FROM audit") == before,
	   "refused_changes_write_no_entry");
}

/* ---- bypass_claims (migration 14) ------------------------------------------- */

#define ID_BP_OLD "00000000-0000-4000-8000-000000000501"
#define ID_BP_NEW "00000000-0000-4000-8000-000000000502"
#define ID_BP_SEAL "00000000-0000-4000-8000-000000000503"
#define BP_CLAIMS "{\"ref\":\"refs/tags/v*\"}"
#define BP_CLAIMS2 "{\"ref\":\"refs/tags/*\",\"repository\":\"org/app\"}"
#define BP_TESTS 14

/* One item of the encoding as store.h describes it: 4-byte length, bytes. */
static size_t put_item(unsigned char *out, size_t at, const char *s)
{
	size_t n = strlen(s);
	out[at] = (unsigned char)(n >> 24);
	out[at + 1] = (unsigned char)(n >> 16);
	out[at + 2] = (unsigned char)(n >> 8);
	out[at + 3] = (unsigned char)n;
	memcpy(out + at + 4, s, n);
	return at + 4 + n;
}

static void bp_policy(srv_policy *p, const char *id, const char *name, const char *claims)
{
	memset(p, 0, sizeof(*p));
	rs_strlcpy(p->id, id, sizeof(p->id));
	p->name = (char *)name;
	p->required_approvals = 1;
	p->request_ttl = 3600;
	p->bypass_identities = 1;
	p->bypass_claims = (char *)claims;
	p->created_at = p->updated_at = NOW;
}

/* got is the policy id with exactly these claims (NULL: none) */
static int bp_is(srv_store *st, const char *id, const char *claims)
{
	srv_policy got = {0};
	int ok_ = st->ops->policy_get(st, id, &got) == SRV_ST_OK &&
		  (claims ? got.bypass_claims && strcmp(got.bypass_claims, claims) == 0
			  : got.bypass_claims == NULL);
	srv_policy_clear(&got);
	return ok_;
}

static int bp_refused(srv_store *st, const char *id)
{
	srv_policy got = {0};
	srv_st_rc rc = st->ops->policy_get(st, id, &got);
	srv_policy_clear(&got);
	return rc == SRV_ST_NOT_FOUND;
}

/* The field round-trips, is covered by the row MAC only when set (the
 * encoding of a policy without it is the one of before migration 14, so
 * rows sealed before still verify), and seal_rows seals it; then a
 * database brought back to schema 13 with a sealed row migrates to 14 and
 * the row still verifies. In a database of its own ("bypass"). */
static void test_bypass_claims(void)
{
	unsigned char m[SRV_MAC_MSG_MAX], want[SRV_MAC_MSG_MAX], m2[SRV_MAC_MSG_MAX];
	char err[512] = "";
	size_t n = 0, sealed = 0;
	srv_policy p;

	bp_policy(&p, ID_BP_OLD, "old", NULL);
	static const char *const before14[] = {"policies", ID_BP_OLD, "old", "1", "0",
					       "0",	   "3600",    "1",   NULL};
	for (size_t i = 0; before14[i]; i++)
		n = put_item(want, n, before14[i]);
	size_t len = srv_mac_msg_policy(&p, m);
	p.bypass_claims = "";
	ok(len == n && memcmp(m, want, n) == 0 && srv_mac_msg_policy(&p, m2) == n &&
		   memcmp(m2, want, n) == 0,
	   "bypass_claims_unset_leaves_the_policy_encoding_of_schema_13");
	p.bypass_claims = BP_CLAIMS;
	len = srv_mac_msg_policy(&p, m);
	p.bypass_claims = BP_CLAIMS2;
	ok(len == n + 4 + 64 && memcmp(m, want, n) == 0 && srv_mac_msg_policy(&p, m2) == len &&
		   memcmp(m, m2, len) != 0,
	   "bypass_claims_set_is_appended_to_the_encoding_as_a_digest");

	srv_store *st = tb_open("bypass", err, sizeof(err));
	if (!st)
		tap_bail("open bypass: %s", err);
	bp_policy(&p, ID_BP_SEAL, "sealed-later", BP_CLAIMS);
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK &&
		   (st->ops->set_row_mac(st, tb_mac, NULL), 1) &&
		   st->ops->seal_rows(st, &sealed) == SRV_ST_OK && sealed == 1 &&
		   bp_is(st, ID_BP_SEAL, BP_CLAIMS),
	   "bypass_claims_written_before_the_mac_is_sealed_with_its_row");
	bp_policy(&p, ID_BP_OLD, "old", NULL);
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK && bp_is(st, ID_BP_OLD, NULL) &&
		   tb_sql_int("bypass", "SELECT count(*) FROM policies WHERE bypass_claims IS NULL"
					" AND id = '" ID_BP_OLD "'") == 1,
	   "bypass_claims_unset_is_stored_null");
	bp_policy(&p, ID_BP_NEW, "new", BP_CLAIMS);
	ok(st->ops->policy_insert(st, &p, &AUD) == SRV_ST_OK && bp_is(st, ID_BP_NEW, BP_CLAIMS),
	   "bypass_claims_insert_round_trip");
	p.bypass_claims = BP_CLAIMS2;
	ok(st->ops->policy_update(st, &p, &AUD) == SRV_ST_OK && bp_is(st, ID_BP_NEW, BP_CLAIMS2),
	   "bypass_claims_update_round_trip");
	srv_policy *list = NULL;
	size_t total = 0;
	ok(st->ops->policy_list(st, NULL, 0, 0, &list, &n, &total) == SRV_ST_OK && n == 3 &&
		   list[0].bypass_claims && strcmp(list[0].bypass_claims, BP_CLAIMS2) == 0 &&
		   !list[1].bypass_claims,
	   "bypass_claims_listed");
	srv_policy_list_free(list, n);
	ok(tb_sql_exec("bypass", "UPDATE policies SET bypass_claims = NULL WHERE id = '" ID_BP_NEW
				 "'") == 0 &&
		   bp_refused(st, ID_BP_NEW),
	   "bypass_claims_removed_in_sql_refused_by_the_mac");
	ok(tb_sql_exec("bypass", "UPDATE policies SET bypass_claims = '{\"ref\":\"*\"}'"
				 " WHERE id = '" ID_BP_NEW "'") == 0 &&
		   bp_refused(st, ID_BP_NEW),
	   "bypass_claims_widened_in_sql_refused_by_the_mac");
	ok(tb_sql_exec("bypass", "UPDATE policies SET bypass_claims = '" BP_CLAIMS
				 "' WHERE id = '" ID_BP_OLD "'") == 0 &&
		   bp_refused(st, ID_BP_OLD),
	   "bypass_claims_added_in_sql_refused_by_the_mac");
	p.bypass_claims = NULL;
	ok(tb_sql_exec("bypass", "UPDATE policies SET bypass_claims = NULL WHERE id = '" ID_BP_OLD
				 "'") == 0 &&
		   bp_is(st, ID_BP_OLD, NULL) &&
		   st->ops->policy_update(st, &p, &AUD) == SRV_ST_OK && bp_is(st, ID_BP_NEW, NULL),
	   "bypass_claims_cleared_by_update");
	st->ops->close(st);

	/* back to schema 13: the column gone, the rows sealed as they are */
	const char *back = tb_pg() ? "ALTER TABLE policies DROP COLUMN bypass_claims;"
				     "UPDATE schema_version SET version = 13"
				   : "ALTER TABLE policies DROP COLUMN bypass_claims; PRAGMA "
				     "user_version = 13";
	ok(tb_sql_exec("bypass", back) == 0 &&
		   tb_sql_int("bypass", tb_pg() ? "SELECT version FROM schema_version"
						: "PRAGMA user_version") == 13,
	   "bypass_database_brought_back_to_schema_13");
	st = tb_open("bypass", err, sizeof(err));
	if (!st)
		tap_bail("reopen bypass: %s", err);
	st->ops->set_row_mac(st, tb_mac, NULL);
	ok(tb_sql_int("bypass", tb_pg() ? "SELECT version FROM schema_version"
					: "PRAGMA user_version") == 14 &&
		   st->ops->seal_rows(st, &sealed) == SRV_ST_OK && sealed == 0 &&
		   bp_is(st, ID_BP_OLD, NULL) && bp_is(st, ID_BP_NEW, NULL),
	   "rows_sealed_at_schema_13_verify_after_migration_14");
	ok(bp_refused(st, ID_BP_SEAL), "a_row_whose_bypass_claims_were_dropped_is_refused");
	st->ops->close(st);
}

int main(void)
{
	char err[512] = "";
	srv_store *st;

	plan(133 + 4 + 2 * RACE_CHECKS + TAP_COUNT(atomic_cases) + BP_TESTS);
	rs_log_set_level(RS_LOG_WARN);
	tb_init(tmpdir);
	printf("# backend: %s\n", tb_backend());
	snprintf(dbpath, sizeof(dbpath), "%s", tb_target("rsign"));
	st = tb_open("rsign", err, sizeof(err));
	ok(st != NULL, "open_creates_database");
	if (!st)
		tap_bail("cannot create the database %s: %s", dbpath, err);
	test_schema();
	ok(setup_fixtures(st), "fixtures_created");
	test_policies(st);
	attach_policies(st);
	test_requests(st);
	test_decisions(st);
	test_grants(st);
	test_concurrent_consume(st);
	test_principal_delete_leaves_policy(st);
	test_policy_in_force(st);
	test_current_approvers(st);
	test_audit(st);
	test_audit_filters(st);
	test_audit_atomic(st);
	st->ops->close(st);
	test_bypass_claims();
	tb_done();
	return tap_done();
}
