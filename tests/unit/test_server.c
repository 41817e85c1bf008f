/* Server logic without a network: the settings table, the error table, the
 * route table and its matcher, token hashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "server/http/auth.h"
#include "server/rsignd/config.h"
#include "server/http/errors.h"
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

static void test_config(void)
{
	srv_config cfg;
	char err[512] = "";
	ok(srv_config_load(&cfg, NULL, err, sizeof(err)) == 0, "config_defaults_load");
	ok(strcmp(cfg.listen, "127.0.0.1:8443") == 0 && cfg.threads == 8 && cfg.max_body == 65536 &&
		   !cfg.insecure_http && cfg.access_token_ttl == 3600,
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
	pin = srv_config_pin(&cfg, err, sizeof(err));
	ok(pin && strcmp(pin, "9876") == 0, "pin_from_environment");
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
		{SRV_E_RATE_LIMIT, 429, "RateLimitExceeded", "failed"},
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
	ok(srv_err_from_store(SRV_ST_CONFLICT) == SRV_E_CONFLICT &&
		   srv_err_from_store(SRV_ST_NOT_FOUND) == SRV_E_NOT_FOUND &&
		   srv_err_from_store(SRV_ST_UNAVAILABLE) == SRV_E_UNAVAILABLE &&
		   srv_err_from_store(SRV_ST_FAILED) == SRV_E_INTERNAL,
	   "storage_outcomes_map_to_http_errors");
	ok(srv_err_from_hsm(SRV_HSM_UNAVAILABLE) == SRV_E_UNAVAILABLE &&
		   srv_err_from_hsm(SRV_HSM_INVALID) == SRV_E_BAD_REQUEST &&
		   srv_err_from_hsm(SRV_HSM_FAILED) == SRV_E_INTERNAL,
	   "hsm_outcomes_map_to_http_errors");
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
	plan(24);
	if (!mkdtemp(tmpdir))
		tap_bail("mkdtemp %s", tmpdir);
	test_config();
	test_errors();
	test_routes();
	test_auth();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return tap_done();
}
