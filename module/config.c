/* The module's configuration table and where the file comes from.
 *
 * Path: C_Initialize's pReserved (a char * path) when given, then
 * $RSIGN_PKCS11_CONF, then /etc/rsign/pkcs11.conf. A file writable by group
 * or others is refused: it names the server and the credentials to send it,
 * so whoever can edit it can redirect every signature request. An explicitly
 * named file that is missing is an error; a missing default file is not (the
 * module then shows no slots unless $RSIGN_URL is set), so that a module
 * registered with p11-kit but not yet configured does not break p11-kit.
 * The file itself holds no secret (credentials are in token_file or
 * client_secret_file, checked by auth.c), so it may be readable by all. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rsign/conf.h"
#include "rsign/log.h"
#include "rsign/url.h"
#include "rsign/util.h"

#include "config.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const approval_modes[] = {"fail", "wait", NULL}; /* MOD_APPROVAL_* */

#define F(field) offsetof(mod_config, field)
static const rs_conf_item conf_table[] = {
	/* name                type          offset                  default  min  max */
	{"url", RS_CONF_STR, F(url), NULL, 0, 8192, NULL},
	{"ca_file", RS_CONF_STR, F(ca_file), NULL, 0, 4096, NULL},
	{"token_file", RS_CONF_STR, F(token_file), NULL, 0, 4096, NULL},
	{"client_id", RS_CONF_STR, F(client_id), NULL, 0, 256, NULL},
	{"client_secret_file", RS_CONF_STR, F(client_secret_file), NULL, 0, 4096, NULL},
	{"identity_id", RS_CONF_STR, F(identity_id), NULL, 0, 64, NULL},
	{"oidc_token_file", RS_CONF_STR, F(oidc_token_file), NULL, 0, 4096, NULL},
	{"oidc_token_env", RS_CONF_STR, F(oidc_token_env), NULL, 0, 256, NULL},
	{"oidc_github", RS_CONF_BOOL, F(oidc_github), "false", 0, 0, NULL},
	{"oidc_audience", RS_CONF_STR, F(oidc_audience), NULL, 0, 256, NULL},
	{"oidc_ca_file", RS_CONF_STR, F(oidc_ca_file), NULL, 0, 4096, NULL},
	{"signers", RS_CONF_STR, F(signers), NULL, 0, 8192, NULL},
	{"connect_timeout", RS_CONF_INT, F(connect_timeout), "10", 1, 300, NULL},
	{"request_timeout", RS_CONF_INT, F(request_timeout), "60", 1, 3600, NULL},
	{"refresh_interval", RS_CONF_INT, F(refresh_interval), "300", 0, 86400, NULL},
	{"log_level", RS_CONF_ENUM, F(log_level), "warn", 0, 0, log_levels},
	{"log_file", RS_CONF_STR, F(log_file), NULL, 0, 4096, NULL},
	{"approval", RS_CONF_ENUM, F(approval), "fail", 0, 0, approval_modes},
	{"approval_timeout", RS_CONF_INT, F(approval_timeout), "300", 1, 86400, NULL},
	{"justification", RS_CONF_STR, F(justification), NULL, 0, 1024, NULL},
	{NULL, 0, 0, NULL, 0, 0, NULL},
};
#undef F

/* url: one or more base URLs separated by spaces (replicas, tried in
 * turn by http.c), each by the rule of include/rsign/url.h (shared with
 * rsignctl). */
static int split_urls(mod_config *conf, const char *where)
{
	char why[256], *copy, *tok, *save = NULL;
	size_t n;
	int rc = -1;

	copy = strdup(conf->url);
	if (!copy) {
		rs_err("%s: out of memory", where);
		return -1;
	}
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (conf->n_urls == MOD_MAX_URLS) {
			rs_err("%s: url refused: more than %d URLs", where, MOD_MAX_URLS);
			goto out;
		}
		if (strlen(tok) >= MOD_URL_MAX) {
			rs_err("%s: url refused: a URL is longer than %d characters", where,
			       MOD_URL_MAX - 1);
			goto out;
		}
		if (rs_url_check(tok, &conf->plain[conf->n_urls], why, sizeof(why)) < 0) {
			if (strchr(conf->url, ' ') || strchr(conf->url, '\t'))
				rs_err("%s: url refused: URL %zu (%s): %s", where, conf->n_urls + 1,
				       tok, why);
			else
				rs_err("%s: url refused: %s", where, why);
			goto out;
		}
		/* The API paths are appended as "/api/v1/...". */
		n = strlen(tok);
		while (n > 8 && tok[n - 1] == '/')
			tok[--n] = '\0';
		conf->urls[conf->n_urls] = strdup(tok);
		if (!conf->urls[conf->n_urls++]) {
			rs_err("%s: out of memory", where);
			goto out;
		}
	}
	if (conf->n_urls == 0) {
		rs_err("%s: url refused: no URL given", where);
		goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static int split_signers(mod_config *conf, const char *where)
{
	char *copy, *tok, *save = NULL;
	size_t n = 0;

	if (!conf->signers)
		return 0;
	copy = strdup(conf->signers);
	conf->signer_names = calloc(MOD_MAX_SIGNER_NAMES, sizeof(char *));
	if (!copy || !conf->signer_names) {
		free(copy);
		rs_err("%s: out of memory", where);
		return -1;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (!rs_is_slug(tok)) {
			rs_err("%s: signers: \"%s\" is not a signer name", where, tok);
			goto fail;
		}
		if (n == MOD_MAX_SIGNER_NAMES) {
			rs_err("%s: signers: more than %d names", where, MOD_MAX_SIGNER_NAMES);
			goto fail;
		}
		conf->signer_names[n] = strdup(tok);
		if (!conf->signer_names[n++]) {
			rs_err("%s: out of memory", where);
			goto fail;
		}
	}
	conf->n_signer_names = n;
	free(copy);
	return 0;
fail:
	free(copy);
	conf->n_signer_names = n;
	return -1;
}

/* The log settings apply as soon as the file is read so that the rest of
 * C_Initialize already logs where the operator asked. */
static int apply_logging(const mod_config *conf, const char *where)
{
	rs_log_set_level(conf->log_level);
	if (conf->log_file && rs_log_set_file(conf->log_file) < 0) {
		rs_err("%s: log_file %s cannot be opened: %s", where, conf->log_file,
		       strerror(errno));
		return -1;
	}
	return 0;
}

int mod_config_load(const char *path, mod_config *conf)
{
	char err[RS_CONF_ERRLEN];
	const char *env, *where;
	int explicit_path = 1;
	struct stat st;

	memset(conf, 0, sizeof(*conf));
	rs_log_set_ident("rsign-pkcs11");
	if (rs_conf_defaults(conf_table, conf, err, sizeof(err)) < 0) {
		rs_err("configuration defaults: %s", err);
		return -1;
	}
	if (!path || !*path) {
		env = getenv("RSIGN_PKCS11_CONF");
		path = env && *env ? env : NULL;
	}
	if (!path) {
		path = MOD_CONF_DEFAULT_PATH;
		explicit_path = 0;
	}

	if (stat(path, &st) < 0 && errno == ENOENT && !explicit_path) {
		rs_debug("no configuration file %s; using the environment", path);
	} else {
		conf->path = strdup(path);
		if (!conf->path) {
			rs_err("%s: out of memory", path);
			goto fail;
		}
		if (rs_conf_load(path, 1, conf_table, conf, err, sizeof(err)) < 0) {
			/* err names the file and line, or says the file is
			 * writable by group or others. */
			rs_err("configuration refused: %s", err);
			goto fail;
		}
	}
	where = conf->path ? conf->path : "environment";
	if (apply_logging(conf, where) < 0)
		goto fail;

	if (!conf->url) {
		env = getenv("RSIGN_URL");
		if (env && *env) {
			conf->url = strdup(env);
			if (!conf->url)
				goto fail;
			where = "RSIGN_URL";
		}
	}
	if (conf->url && split_urls(conf, where) < 0)
		goto fail;
	if (split_signers(conf, where) < 0)
		goto fail;
	if (!conf->url)
		rs_info("%s: no url configured; the module shows no slots", where);
	return 0;
fail:
	mod_config_free(conf);
	return -1;
}

void mod_config_free(mod_config *conf)
{
	size_t i;

	if (!conf)
		return;
	rs_conf_free(conf_table, conf);
	for (i = 0; conf->signer_names && i < conf->n_signer_names; i++)
		free(conf->signer_names[i]);
	for (i = 0; i < conf->n_urls; i++)
		free(conf->urls[i]);
	free(conf->signer_names);
	free(conf->path);
	memset(conf, 0, sizeof(*conf));
}
