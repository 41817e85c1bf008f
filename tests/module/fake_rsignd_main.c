/* Runs the fake rsignd on its own, for trying the module by hand and for
 * tests/contract:
 *   tests/module/fake-rsignd DIR [EXTRA_SIGNERS]
 *   tests/module/fake-rsignd dev --dir DIR      (as `rsignd dev` is started)
 * writes DIR/pkcs11.conf and DIR/tls-ca.pem, prints the exports to use with
 * pkcs11-tool (as `rsignd dev` does: RSIGN_URL, RSIGN_TOKEN, RSIGN_CA_FILE,
 * RSIGN_PKCS11_CONF), and serves until SIGINT or SIGTERM.
 *
 * It also serves a control interface no rsignd has, without authentication:
 *   POST   /_fake/signers {name, keyAlgorithm?, role?, status?, notBefore?,
 *                          notAfter?, approvalRequired?, signings?}
 *          adds the signer (EC_P256 unless keyAlgorithm says otherwise) when
 *          the name is new, then sets what the body names: the caller's role
 *          ("operator", "auditor", "none"), "enabled"/"disabled", a new
 *          certificate valid from notBefore to notAfter (RFC 3339, both),
 *          and the approval stand-in; answers {id, name}
 *   DELETE /_fake/signers/{name}            the signer is gone (404 from now)
 *   POST   /_fake/replay {status, body, match?, count?}
 *          the next count (1) requests whose path ends with match (any) are
 *          answered with exactly this status and body */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rsign/json.h"
#include "rsign/util.h"

#include "fake_rsignd.h"

static char *ctl_answer(const char *error, const char *id, const char *name)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (error)
		cJSON_AddStringToObject(o, "error", error);
	if (id)
		cJSON_AddStringToObject(o, "id", id);
	if (name)
		cJSON_AddStringToObject(o, "name", name);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static int role_of(const char *s, fake_role *out)
{
	static const char *const names[] = {"none", "auditor", "operator"};
	int i;

	for (i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (fake_role)i;
			return 0;
		}
	return -1;
}

/* Applies the body's settings to the signer `name`. NULL or the problem. */
static const char *ctl_apply(fake_server *f, const cJSON *j, const char *name)
{
	const char *alg_s = NULL, *role_s = NULL, *status = NULL, *nb_s = NULL, *na_s = NULL;
	long long signings = 1;
	int approval = -1;
	time_t nb = 0, na = 0;
	rs_key_alg alg = RS_KEY_EC_P256;
	fake_role role = FAKE_ROLE_NONE;

	if (rs_json_str(j, "keyAlgorithm", 0, 16, &alg_s) != RS_JSON_OK ||
	    (alg_s && rs_key_alg_parse(alg_s, &alg) < 0))
		return "keyAlgorithm is not a key algorithm of the API";
	if (rs_json_str(j, "role", 0, 16, &role_s) != RS_JSON_OK ||
	    (role_s && role_of(role_s, &role) < 0))
		return "role is operator, auditor or none";
	if (rs_json_str(j, "status", 0, 16, &status) != RS_JSON_OK ||
	    (status && strcmp(status, "enabled") != 0 && strcmp(status, "disabled") != 0))
		return "status is enabled or disabled";
	if (rs_json_str(j, "notBefore", 0, 40, &nb_s) != RS_JSON_OK ||
	    rs_json_str(j, "notAfter", 0, 40, &na_s) != RS_JSON_OK || !nb_s != !na_s ||
	    (nb_s && (rs_time_parse(nb_s, &nb) != 0 || rs_time_parse(na_s, &na) != 0)))
		return "notBefore and notAfter are RFC 3339 times, both or neither";
	if (rs_json_bool(j, "approvalRequired", 0, &approval) != RS_JSON_OK ||
	    rs_json_int(j, "signings", 0, 0, 1000, &signings) != RS_JSON_OK)
		return "approvalRequired is a boolean, signings 0 to 1000";
	if (!fake_signer_id(f, name) && fake_add_signer(f, name, alg) < 0)
		return "cannot add the signer";
	if (role_s)
		fake_set_role(f, name, role);
	if (status)
		fake_set_enabled(f, name, strcmp(status, "enabled") == 0);
	if (nb_s && fake_set_validity(f, name, nb, na) < 0)
		return "cannot issue the certificate";
	if (approval >= 0)
		fake_set_approval(f, name, approval, (int)signings);
	return NULL;
}

static void control(fake_server *f, const char *method, const char *path, const char *body,
		    size_t len, unsigned *status, char **out)
{
	const char *name = NULL, *match = NULL, *text = NULL, *err = "no such control";
	long long code = 0, count = 1;
	cJSON *j = NULL;

	*status = 400;
	if (strcmp(method, "DELETE") == 0 && strncmp(path, "/_fake/signers/", 15) == 0) {
		*status = fake_remove_signer(f, path + 15) == 0 ? 200 : 404;
		*out = ctl_answer(*status == 200 ? NULL : "no such signer", NULL, path + 15);
		return;
	}
	j = strcmp(method, "POST") == 0 ? rs_json_parse(body, len, RS_JSON_MAX_DEPTH) : NULL;
	if (j && strcmp(path, "/_fake/signers") == 0) {
		if (rs_json_str(j, "name", 1, 64, &name) != RS_JSON_OK || !*name)
			err = "name is required";
		else
			err = ctl_apply(f, j, name);
	} else if (j && strcmp(path, "/_fake/replay") == 0) {
		if (rs_json_int(j, "status", 1, 100, 599, &code) != RS_JSON_OK ||
		    rs_json_str(j, "body", 1, 65536, &text) != RS_JSON_OK ||
		    rs_json_str(j, "match", 0, 63, &match) != RS_JSON_OK ||
		    rs_json_int(j, "count", 0, 1, 1000, &count) != RS_JSON_OK) {
			err = "status (100-599) and body are required; match, count optional";
		} else {
			fake_replay(f, (int)code, text, (int)count, match);
			err = NULL;
		}
	}
	if (!err)
		*status = 200;
	*out = ctl_answer(err, name ? fake_signer_id(f, name) : NULL, name);
	cJSON_Delete(j);
}

static int write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (!fp)
		return -1;
	fputs(text, fp);
	if (fclose(fp) != 0)
		return -1;
	return chmod(path, 0600);
}

int main(int argc, char **argv)
{
	char ca[512], conf[512], text[1200];
	const char *dir = argv[1];
	int sig, extra = argc == 3 ? atoi(argv[2]) : 0;
	sigset_t stop;
	fake_server *f;

	if (argc == 4 && strcmp(argv[1], "dev") == 0 && strcmp(argv[2], "--dir") == 0) {
		dir = argv[3];
		extra = 0;
	} else if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s DIR [EXTRA_SIGNERS] | dev --dir DIR\n", argv[0]);
		return 2;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL); /* the server's threads inherit it */
	f = fake_new(extra);
	if (f)
		fake_set_control(f, control);
	if (!f || fake_start(f) < 0) {
		fprintf(stderr, "fake rsignd did not start\n");
		fake_free(f);
		return 1;
	}
	snprintf(ca, sizeof(ca), "%s/tls-ca.pem", dir);
	snprintf(conf, sizeof(conf), "%s/pkcs11.conf", dir);
	snprintf(text, sizeof(text), "url = https://127.0.0.1:%u\nca_file = %s\nlog_level = info\n",
		 fake_port(f), ca);
	if (write_file(ca, fake_tls_pem(f)) < 0 || write_file(conf, text) < 0) {
		perror(dir);
		fake_free(f);
		return 1;
	}
	printf("export RSIGN_URL='https://127.0.0.1:%u'\n", fake_port(f));
	printf("export RSIGN_CA_FILE='%s'\n", ca);
	printf("export RSIGN_TOKEN='%s'\n", FAKE_USER_TOKEN);
	printf("export RSIGN_PKCS11_CONF='%s'\n", conf);
	printf("# or: export RSIGN_CLIENT_ID=%s RSIGN_CLIENT_SECRET=%s\n", FAKE_CLIENT_ID,
	       FAKE_CLIENT_SECRET);
	fflush(stdout);
	sigwait(&stop, &sig);
	fake_free(f);
	return 0;
}
