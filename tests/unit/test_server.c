/* Server logic without a network: the settings table, the error table, the
 * route table and its matcher, token hashing, the access rules that need no
 * storage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "server/http/auth.h"
#include "server/rsignd/config.h"
#include "server/http/errors.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/http/http.h"
#include "tap.h"

static char tmpdir[] = "/tmp/rsign-test-server-XXXXXX";

static const char *write_conf(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode) != 0)
		tap_bail("cannot write %s", path);
	return path;
}

/* PIN file modes that let group or others read or write it. */
static const mode_t pin_open_modes[] = {0640, 0604, 0620, 0602};

static void test_config(void)
{
	srv_config cfg;
	char err[512] = "";
	ok(srv_config_load(&cfg, NULL, err, sizeof(err)) == 0, "config_defaults_load");
	ok(strcmp(cfg.listen, "127.0.0.1:8443") == 0 && cfg.threads == 8 && cfg.max_body == 65536 &&
		   !cfg.insecure_http && cfg.access_token_ttl == 3600 &&
		   cfg.history_denied_retention == 0,
	   "config_defaults_have_documented_values");
	srv_config_free(&cfg);

	const char *p =
		write_conf("good.conf",
			   "# comment\nlisten = 0.0.0.0:9443\nthreads = 4\nlog_level = debug\n"
			   "insecure_http = no\ndatabase = \"/tmp/x y.db\"\n",
			   0600);
	ok(srv_config_load(&cfg, p, err, sizeof(err)) == 0 &&
		   strcmp(cfg.listen, "0.0.0.0:9443") == 0 && cfg.threads == 4 &&
		   strcmp(cfg.database, "/tmp/x y.db") == 0,
	   "config_file_overrides_defaults");
	srv_config_free(&cfg);

	p = write_conf("bad.conf", "listen = 127.0.0.1:1\n\nthreads = 999\n", 0600);
	err[0] = '\0';
	ok(srv_config_load(&cfg, p, err, sizeof(err)) != 0 && strstr(err, "bad.conf:3:") &&
		   strstr(err, "threads"),
	   "config_out_of_range_names_file_and_line");
	srv_config_free(&cfg);

	p = write_conf("retention.conf", "history_denied_retention = 604800\n", 0600);
	ok(srv_config_load(&cfg, p, err, sizeof(err)) == 0 &&
		   cfg.history_denied_retention == 604800,
	   "config_history_denied_retention_is_read");
	srv_config_free(&cfg);
	p = write_conf("retention-neg.conf", "history_denied_retention = -1\n", 0600);
	ok(srv_config_load(&cfg, p, err, sizeof(err)) != 0 &&
		   strstr(err, "retention-neg.conf:1:") && strstr(err, "history_denied_retention"),
	   "config_history_denied_retention_refuses_negative");
	srv_config_free(&cfg);

	p = write_conf("unknown.conf", "colour = blue\n", 0600);
	ok(srv_config_load(&cfg, p, err, sizeof(err)) != 0 && strstr(err, "unknown.conf:1:"),
	   "config_unknown_setting_is_an_error");
	srv_config_free(&cfg);

	p = write_conf("open.conf", "threads = 2\n", 0666);
	chmod(p, 0666);
	ok(srv_config_load(&cfg, p, err, sizeof(err)) != 0 && strstr(err, "writable"),
	   "config_writable_by_others_is_refused");
	srv_config_free(&cfg);

	/* the PIN comes from a file (newline stripped) or the environment */
	write_conf("pin", "1234\n", 0600);
	char pinpath[256];
	snprintf(pinpath, sizeof(pinpath), "%s/pin", tmpdir);
	ok(srv_config_load(&cfg, NULL, err, sizeof(err)) == 0, "config_defaults_load_again");
	cfg.pin_file = strdup(pinpath);
	char *pin = srv_config_pin(&cfg, err, sizeof(err));
	ok(pin && strcmp(pin, "1234") == 0, "pin_file_is_read_without_newline");
	free(pin);
	free(cfg.pin_file);
	cfg.pin_file = NULL;
	unsetenv("RSIGN_HSM_PIN");
	ok(srv_config_pin(&cfg, err, sizeof(err)) == NULL && strstr(err, "RSIGN_HSM_PIN"),
	   "missing_pin_names_the_environment_variable");
	setenv("RSIGN_HSM_PIN", "9876", 1);
	char *in_env = getenv("RSIGN_HSM_PIN"); /* "9876" where setenv put it */
	pin = srv_config_pin(&cfg, err, sizeof(err));
	ok(pin && strcmp(pin, "9876") == 0, "pin_from_environment");
	ok(getenv("RSIGN_HSM_PIN") == NULL && in_env && in_env[0] == '\0',
	   "pin_taken_out_of_the_environment_and_wiped");
	free(pin);
	srv_config_free(&cfg);

	/* a PIN file that group or others may read or write is refused */
	ok(srv_config_load(&cfg, NULL, err, sizeof(err)) == 0,
	   "config_defaults_load_for_pin_modes");
	cfg.pin_file = strdup(pinpath);
	for (size_t i = 0; i < TAP_COUNT(pin_open_modes); i++) {
		chmod(pinpath, pin_open_modes[i]);
		err[0] = '\0';
		pin = srv_config_pin(&cfg, err, sizeof(err));
		ok(!pin && strstr(err, pinpath) && strstr(err, "chmod 600"),
		   "pin_file_of_mode_%04o_is_refused", (unsigned)pin_open_modes[i]);
		free(pin);
	}
	chmod(pinpath, 0400);
	pin = srv_config_pin(&cfg, err, sizeof(err));
	ok(pin && strcmp(pin, "1234") == 0, "pin_file_of_mode_0400_is_read");
	free(pin);
	srv_config_free(&cfg);
}

static void test_errors(void)
{
	static const struct {
		srv_err e;
		int status;
		const char *word;
		const char *history;
	} want[] = {
		{SRV_E_BAD_REQUEST, 400, "BadRequest", "failed"},
		{SRV_E_SIGNER_DISABLED, 400, "SignerDisabled", "failed"},
		{SRV_E_CERT_EXPIRED, 400, "CertificateExpired", "failed"},
		{SRV_E_UNAUTHORIZED, 401, "Unauthorized", "failed"},
		{SRV_E_PERMISSION, 403, "PermissionDenied", "denied"},
		{SRV_E_APPROVAL, 403, "ApprovalRequired", "denied"},
		{SRV_E_NOT_FOUND, 404, "NotFound", "failed"},
		{SRV_E_CONFLICT, 409, "Conflict", "failed"},
		{SRV_E_TOO_LARGE, 413, "PayloadTooLarge", "failed"},
		{SRV_E_RATE_LIMIT, 429, "RateLimitExceeded", "denied"},
		{SRV_E_INTERNAL, 500, "InternalError", "failed"},
		{SRV_E_UNAVAILABLE, 503, "Unavailable", "failed"},
	};
	int good = 1;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (srv_err_status(want[i].e) != want[i].status ||
		    strcmp(srv_err_word(want[i].e), want[i].word) != 0 ||
		    strcmp(srv_err_history_status(want[i].e), want[i].history) != 0)
			good = 0;
	ok(good, "error_table_matches_the_api_contract");
	ok(strcmp(srv_err_history_status(SRV_OK), "success") == 0, "ok_is_recorded_as_success");
	ok(srv_reason_from_store(SRV_ST_CONFLICT) == SRV_R_STATE_CONFLICT &&
		   srv_reason_from_store(SRV_ST_NOT_FOUND) == SRV_R_NOT_FOUND &&
		   srv_reason_from_store(SRV_ST_UNAVAILABLE) == SRV_R_DATABASE_UNAVAILABLE &&
		   srv_reason_from_store(SRV_ST_FAILED) == SRV_R_INTERNAL,
	   "storage_outcomes_map_to_reasons");
	ok(srv_reason_from_hsm(SRV_HSM_UNAVAILABLE) == SRV_R_TOKEN_UNAVAILABLE &&
		   srv_reason_from_hsm(SRV_HSM_INVALID) == SRV_R_TOKEN_REJECTED &&
		   srv_reason_from_hsm(SRV_HSM_FAILED) == SRV_R_INTERNAL,
	   "hsm_outcomes_map_to_reasons");
	/* every reason: a camelCase name of its own and a class that is an
	 * error; every class has a default reason of that class */
	int named = 1, unique = 1;
	for (int i = SRV_R_NONE + 1; i < SRV_R_COUNT; i++) {
		const char *n = srv_reason_name((srv_reason)i);
		srv_err c = srv_reason_class((srv_reason)i);
		if (!n || !(n[0] >= 'a' && n[0] <= 'z') || strchr(n, '_') || c <= SRV_OK ||
		    c >= SRV_E_COUNT)
			named = 0;
		for (int k = SRV_R_NONE + 1; k < i; k++)
			if (strcmp(n, srv_reason_name((srv_reason)k)) == 0)
				unique = 0;
	}
	ok(named, "every_reason_has_a_camel_case_name_and_an_error_class");
	ok(unique, "reason_names_are_unique");
	int defaults = 1;
	for (int e = SRV_OK + 1; e < SRV_E_COUNT; e++)
		if (srv_reason_class(srv_reason_default((srv_err)e)) != (srv_err)e)
			defaults = 0;
	ok(defaults, "every_error_class_has_a_default_reason_of_its_own_class");
	ok(strcmp(srv_reason_name(SRV_R_DIGEST_LENGTH), "digestLength") == 0 &&
		   srv_reason_class(SRV_R_DIGEST_LENGTH) == SRV_E_BAD_REQUEST &&
		   srv_reason_class(SRV_R_SIGNER_DISABLED) == SRV_E_SIGNER_DISABLED &&
		   srv_reason_class(SRV_R_CERTIFICATE_EXPIRED) == SRV_E_CERT_EXPIRED &&
		   strcmp(srv_reason_name(SRV_R_COUNT), "internal") == 0 &&
		   strcmp(srv_reason_name(SRV_R_APPROVER_IN_USE), "approverInUse") == 0 &&
		   srv_reason_class(SRV_R_APPROVER_IN_USE) == SRV_E_CONFLICT,
	   "reasons_name_and_classify_as_documented");
}

static void test_routes(void)
{
	char buf[512];
	const char *params[SRV_MAX_PARAMS];
	ok(srv_route_match("/pki/signers/*/sign", "/pki/signers/demo-ec/sign", buf, sizeof(buf),
			   params) &&
		   strcmp(params[0], "demo-ec") == 0,
	   "route_captures_the_signer_segment");
	ok(srv_route_match("/pki/signers/*/members/*", "/pki/signers/a/members/b", buf, sizeof(buf),
			   params) &&
		   strcmp(params[0], "a") == 0 && strcmp(params[1], "b") == 0,
	   "route_captures_two_segments");
	ok(!srv_route_match("/pki/signers/*", "/pki/signers/", buf, sizeof(buf), params),
	   "route_star_needs_a_non_empty_segment");
	ok(!srv_route_match("/pki/signers/*", "/pki/signers/a/sign", buf, sizeof(buf), params),
	   "route_does_not_match_a_longer_path");
	ok(!srv_route_match("/pki/signers/*/sign", "/pki/signers/a", buf, sizeof(buf), params),
	   "route_does_not_match_a_shorter_path");
	ok(!srv_route_match("/pki/keys", "/pki/keys/", buf, sizeof(buf), params),
	   "route_trailing_slash_does_not_match");
	ok(!srv_route_match("/health", "/healthz", buf, sizeof(buf), params),
	   "route_literal_segments_match_exactly");

	int good = 1, n = 0;
	for (const srv_route *a = srv_routes; a->pattern; a++, n++) {
		if (!a->handler || a->pattern[0] != '/')
			good = 0;
		for (const srv_route *b = a + 1; b->pattern; b++)
			if (strcmp(a->method, b->method) == 0 &&
			    strcmp(a->pattern, b->pattern) == 0)
				good = 0;
	}
	ok(good && n >= 28, "route_table_has_handlers_and_no_duplicates");
}

/* gate_of's answer for a route the table does not have */
static srv_reason no_such_route(const srv_req *r)
{
	(void)r;
	return SRV_R_NO_ENDPOINT;
}

static srv_gate gate_of(const char *method, const char *pattern)
{
	for (const srv_route *a = srv_routes; a->pattern; a++)
		if (strcmp(a->method, method) == 0 && strcmp(a->pattern, pattern) == 0)
			return a->gate;
	return no_such_route;
}

/* What access.c decides from the caller and the object alone. */
static void test_access(void)
{
	srv_req r;
	memset(&r, 0, sizeof(r));
	rs_strlcpy(r.actor.id, "me", sizeof(r.actor.id));
	rs_strlcpy(r.actor.type, "user", sizeof(r.actor.type));
	r.actor.name = "me";
	ok(srv_may_manage(&r) == SRV_R_ADMIN_REQUIRED && srv_visible_to(&r) == r.actor.id,
	   "access_non_admin_manages_nothing_and_lists_filtered");
	r.actor.admin = 1;
	ok(srv_may_manage(&r) == SRV_R_NONE && srv_visible_to(&r) == NULL,
	   "access_admin_manages_and_lists_everything");
	ok(gate_of("GET", "/audit-log") == srv_may_manage &&
		   gate_of("PATCH", "/principals/*") == srv_may_manage &&
		   gate_of("POST", "/pki/signers/*/members") == srv_may_manage &&
		   gate_of("GET", "/pki/signers/*/members") == NULL &&
		   gate_of("GET", "/pki/signing-policies") == NULL,
	   "access_admin_routes_are_gated_by_srv_may_manage");

	srv_principal self = {.name = "me"}, other = {.name = "other"};
	rs_strlcpy(self.id, "me", sizeof(self.id));
	rs_strlcpy(other.id, "other", sizeof(other.id));
	ok(srv_may_delete_principal(&r, &self) == SRV_R_SELF_DELETE &&
		   srv_may_disable_principal(&r, &self) == SRV_R_SELF_DISABLE &&
		   srv_may_disable_principal(&r, &other) == SRV_R_NONE,
	   "access_admin_neither_deletes_nor_disables_itself");
	ok(srv_may_read_principal(&r, &other) == SRV_R_NONE, "access_admin_reads_any_principal");
	r.actor.admin = 0;
	ok(srv_may_read_principal(&r, &self) == SRV_R_NONE &&
		   srv_may_read_principal(&r, &other) == SRV_R_NOT_FOUND &&
		   srv_may_disable_principal(&r, &other) == SRV_R_ADMIN_REQUIRED,
	   "access_others_are_not_found_for_a_non_admin");
	other.disabled = 1;
	ok(srv_may_log_in(&self) == SRV_R_NONE &&
		   srv_may_log_in(&other) == SRV_R_PRINCIPAL_DISABLED,
	   "access_disabled_principal_does_not_log_in");

	srv_id approvers[2] = {"someone", "me"};
	srv_policy p = {.approvers = approvers, .n_approvers = 2};
	srv_request q;
	memset(&q, 0, sizeof(q));
	rs_strlcpy(q.requester_id, "other", sizeof(q.requester_id));
	ok(srv_may_decide(&r, &q, &p) == SRV_R_NONE, "access_listed_user_decides");
	rs_strlcpy(q.requester_id, "me", sizeof(q.requester_id));
	ok(srv_may_decide(&r, &q, &p) == SRV_R_OWN_REQUEST, "access_nobody_decides_own_request");
	ok(srv_may_cancel(&r, &q) == SRV_R_NONE, "access_requester_cancels");
	rs_strlcpy(q.requester_id, "other", sizeof(q.requester_id));
	ok(srv_may_cancel(&r, &q) == SRV_R_NOT_REQUESTER, "access_others_do_not_cancel");
	rs_strlcpy(r.actor.type, "identity", sizeof(r.actor.type));
	ok(srv_may_decide(&r, &q, &p) == SRV_R_NOT_APPROVER, "access_identities_never_decide");
	rs_strlcpy(r.actor.type, "user", sizeof(r.actor.type));
	r.actor.admin = 1;
	p.n_approvers = 1;
	ok(srv_may_decide(&r, &q, &p) == SRV_R_NOT_APPROVER && srv_may_cancel(&r, &q) == SRV_R_NONE,
	   "access_unlisted_admin_cancels_but_does_not_decide");
	/* approvers' ids: admins and the approvers themselves */
	p.n_approvers = 2;
	ok(srv_may_see_approvers(&r, &p) == SRV_R_NONE, "access_admin_sees_approvers");
	r.actor.admin = 0;
	ok(srv_may_see_approvers(&r, &p) == SRV_R_NONE, "access_approver_sees_approvers");
	p.n_approvers = 1;
	ok(srv_may_see_approvers(&r, &p) == SRV_R_NOT_APPROVER,
	   "access_others_do_not_see_approvers");
}

static void test_auth(void)
{
	char h[65];
	srv_auth_hash("abc", h);
	ok(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	   "token_hash_is_sha256_hex");
	char a[SRV_TOKEN_LEN], b[SRV_TOKEN_LEN];
	ok(srv_auth_new_secret("rsu_", a) == 0 && srv_auth_new_secret("rsu_", b) == 0 &&
		   strlen(a) == 68 && strncmp(a, "rsu_", 4) == 0 && strcmp(a, b) != 0,
	   "new_tokens_are_prefixed_random_and_distinct");
}

int main(void)
{
	plan(46 + 3 + TAP_COUNT(pin_open_modes));
	if (!mkdtemp(tmpdir))
		tap_bail("mkdtemp %s", tmpdir);
	test_config();
	test_errors();
	test_routes();
	test_auth();
	test_access();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return tap_done();
}
