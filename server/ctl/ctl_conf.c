/* rsignctl's configuration: the file (table-driven through rs_conf), the
 * environment and the flags, and the token file. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "rsign/buf.h"
#include "rsign/conf.h"
#include "rsign/util.h"
#include "server/ctl/ctl_cmds.h"
#include "server/ctl/ctl_conf.h"

#define TOKEN_FILE_MAX 4096

static const rs_conf_item conf_items[] = {
	{"url", RS_CONF_STR, offsetof(ctl_conf_file, url), NULL, 0, 2048, NULL},
	{"ca_file", RS_CONF_STR, offsetof(ctl_conf_file, ca_file), NULL, 0, 4096, NULL},
	{"token_file", RS_CONF_STR, offsetof(ctl_conf_file, token_file), NULL, 0, 4096, NULL},
	{NULL, 0, 0, NULL, 0, 0, NULL},
};

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static const char *first_set(const char *a, const char *b, const char *c)
{
	return a ? a : b ? b : c;
}

static int oom(void)
{
	fprintf(stderr, "rsignctl: out of memory\n");
	return CTL_EXIT_SOFTWARE;
}

static char *join_path(const char *dir, size_t dirlen, const char *name)
{
	rs_buf b;

	rs_buf_init(&b, 8192);
	(void)rs_buf_append(&b, dir, dirlen);
	(void)rs_buf_printf(&b, "/%s", name);
	return (char *)rs_buf_steal(&b, NULL);
}

/* --config, else $RSIGN_CTL_CONF, else the per-user file when it exists. */
static int config_path(const char *flag, char **out)
{
	const char *base, *v = flag ? flag : env("RSIGN_CTL_CONF");
	struct stat st;
	char *p;

	*out = NULL;
	if (v) {
		*out = strdup(v);
		return *out ? CTL_EXIT_OK : oom();
	}
	if (!(base = env("HOME")))
		return CTL_EXIT_OK;
	p = join_path(base, strlen(base), ".config/rsign/rsignctl.conf");
	if (!p)
		return oom();
	if (stat(p, &st) == 0)
		*out = p;
	else
		free(p);
	return CTL_EXIT_OK;
}

/* A relative path in the configuration file is taken from the file's
 * directory, so the file works from any working directory. */
static int anchor(const ctl_conf *cf, char **field)
{
	const char *slash = cf->path ? strrchr(cf->path, '/') : NULL;
	char *p;

	if (!*field || (*field)[0] == '/' || !slash)
		return CTL_EXIT_OK;
	if (!(p = join_path(cf->path, (size_t)(slash - cf->path), *field)))
		return oom();
	free(*field);
	*field = p;
	return CTL_EXIT_OK;
}

/* The token file's content without trailing newlines; refused when group or
 * others may read or write it: the token is a credential. */
static int read_token_file(const char *path, char **out)
{
	struct stat st;
	rs_buf b;
	int rc;

	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		fprintf(stderr,
			"rsignctl: refusing %s: group or others may read or write it (mode %04o); "
			"chmod 600 it\n",
			path, (unsigned)(st.st_mode & 07777));
		return CTL_EXIT_CONFIG;
	}
	rc = ctl_read_file(path, TOKEN_FILE_MAX, &b);
	if (rc == CTL_EXIT_OK) {
		while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
			b.data[--b.len] = '\0';
		if (b.len == 0) {
			fprintf(stderr, "rsignctl: %s is empty\n", path);
			rc = CTL_EXIT_CONFIG;
		} else if (!(*out = (char *)rs_buf_steal(&b, NULL))) {
			rc = oom();
		}
	} else if (rc == CTL_EXIT_NOINPUT || rc == CTL_EXIT_DATAERR) {
		rc = CTL_EXIT_CONFIG;
	}
	rs_buf_wipe(&b);
	return rc;
}

int ctl_conf_load(ctl_conf *cf, const char *config_flag, const char *url_flag, const char *ca_flag,
		  int need_token)
{
	char err[RS_CONF_ERRLEN];
	const char *t;
	int rc;

	rc = config_path(config_flag, &cf->path);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (rs_conf_defaults(conf_items, &cf->file, err, sizeof(err)) != 0 ||
	    (cf->path && rs_conf_load(cf->path, 0, conf_items, &cf->file, err, sizeof(err)) != 0)) {
		fprintf(stderr, "rsignctl: %s\n", err);
		return CTL_EXIT_CONFIG;
	}
	if ((rc = anchor(cf, &cf->file.ca_file)) != CTL_EXIT_OK ||
	    (rc = anchor(cf, &cf->file.token_file)) != CTL_EXIT_OK)
		return rc;
	cf->url = first_set(url_flag, env("RSIGN_URL"), cf->file.url);
	cf->ca_file = first_set(ca_flag, env("RSIGN_CA_FILE"), cf->file.ca_file);
	if (!cf->url) {
		fprintf(stderr, "rsignctl: no server URL: set RSIGN_URL, url in the "
				"configuration file, or --url\n");
		return CTL_EXIT_CONFIG;
	}
	if (!need_token)
		return CTL_EXIT_OK;
	if ((t = env("RSIGN_TOKEN"))) {
		cf->token = strdup(t);
		return cf->token ? CTL_EXIT_OK : oom();
	}
	if (cf->file.token_file)
		return read_token_file(cf->file.token_file, &cf->token);
	fprintf(stderr, "rsignctl: no token: set RSIGN_TOKEN or token_file in the "
			"configuration file\n");
	return CTL_EXIT_CONFIG;
}

void ctl_conf_free(ctl_conf *cf)
{
	rs_free_secret(cf->token);
	rs_conf_free(conf_items, &cf->file);
	free(cf->path);
}
