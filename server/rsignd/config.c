/* rsignd's settings table: name, type, default and bounds of every setting
 * in rsignd.conf (parsing itself is common/conf.c), and reading the token's
 * PIN from its file or the environment. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rsign/conf.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/http.h"
#include "server/rsignd/config.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
/* in the order of RS_LOG_TEXT, RS_LOG_JSON */
static const char *const log_formats[] = {"text", "json", NULL};

#define STR(n, d)                                                                                  \
	{                                                                                          \
#n, RS_CONF_STR, offsetof(srv_config, n), d, 0, 4096, NULL                         \
	}
#define INT(n, d, lo, hi)                                                                          \
	{                                                                                          \
#n, RS_CONF_INT, offsetof(srv_config, n), d, lo, hi, NULL                          \
	}
#define BOOL(n, d)                                                                                 \
	{                                                                                          \
#n, RS_CONF_BOOL, offsetof(srv_config, n), d, 0, 0, NULL                           \
	}

static const rs_conf_item settings[] = {
	STR(listen, "127.0.0.1:8443"),
	STR(tls_cert, NULL),
	STR(tls_key, NULL),
	BOOL(insecure_http, "false"),
	STR(database, "/var/lib/rsign/rsign.db"),
	INT(db_connections, "8", 1, 1024),
	STR(pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so"),
	STR(softhsm2_conf, NULL),
	STR(token_label, "rsign"),
	STR(pin_file, NULL),
	STR(pin_env, "RSIGN_HSM_PIN"),
	{"log_level", RS_CONF_ENUM, offsetof(srv_config, log_level), "info", 0, 0, log_levels},
	STR(log_file, NULL),
	{"log_format", RS_CONF_ENUM, offsetof(srv_config, log_format), "text", 0, 0, log_formats},
	INT(threads, "8", 1, 256),
	INT(hsm_sessions, "8", 1, 256),
	BOOL(hsm_exclusive_writes, "true"),
	INT(max_body, "65536", 1024, 16777216),
	INT(access_token_ttl, "3600", 1, 31536000),
	INT(console_session_idle, "43200", 1, 604800),
	INT(max_tokens_per_principal, "50", 1, 100000),
	INT(history_denied_retention, "0", 0, 315360000),
	INT(checkpoint_every, "1000", 1, 1000000000),
	INT(checkpoint_interval, "600", 1, 31536000),
	STR(tls_priorities, SRV_TLS_PRIORITIES),
	INT(max_connections, "4096", 16, 1000000),
	INT(max_connections_per_ip, "256", 1, 1000000),
	INT(request_header_timeout, "10", 1, 3600),
	INT(max_auth_failures, "10", 0, 1000000),
	INT(max_auth_failures_per_ip, "100", 0, 1000000),
	INT(max_sign_rate, "0", 0, 1000000),
	STR(metrics_listen, NULL),
	STR(oidc_ca_file, NULL),
	INT(oidc_jwks_max_age, "300", 1, 86400),
	STR(tsa_listen, NULL),
	BOOL(tsa_require_synced_clock, "true"),
	{NULL, 0, 0, NULL, 0, 0, NULL},
};

int srv_config_load(srv_config *cfg, const char *path, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (rs_conf_defaults(settings, cfg, err, errlen) != 0)
		return -1;
	if (path && rs_conf_load(path, 1, settings, cfg, err, errlen) != 0)
		return -1;
	return 0;
}

void srv_config_free(srv_config *cfg)
{
	rs_conf_free(settings, cfg);
}

/* Reads the PIN file, refusing one that group or others may read or write:
 * the PIN opens every key in the token. NULL + err. */
static char *pin_from_file(const char *path, char *err, size_t errlen)
{
	char buf[256];
	struct stat st;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot read the PIN file: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: the PIN file is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
			 "%s: refusing a PIN file that group or others may read or write (mode "
			 "%04o); chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *pin = buf[0] ? strdup(buf) : NULL;
	rs_wipe(buf, sizeof(buf));
	if (!pin)
		snprintf(err, errlen, "%s: the PIN file is empty", path);
	return pin;
}

/* Takes name out of the environment: unsetenv drops the pointers, and the
 * "name=value" bytes are wiped where they lie, because /proc/PID/environ
 * shows the block the process was started with, not environ. */
static void env_scrub(const char *name)
{
	char *found[8];
	size_t k = 0, len = strlen(name);
	for (char **e = environ; e && *e && k < sizeof(found) / sizeof(found[0]); e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			found[k++] = *e;
	unsetenv(name);
	for (size_t i = 0; i < k; i++)
		rs_wipe(found[i], strlen(found[i]));
}

char *srv_config_pin(const srv_config *cfg, char *err, size_t errlen)
{
	if (cfg->pin_file)
		return pin_from_file(cfg->pin_file, err, errlen);
	const char *v = cfg->pin_env ? getenv(cfg->pin_env) : NULL;
	if (!v || !*v) {
		snprintf(err, errlen, "no HSM PIN: set pin_file, or the environment variable %s",
			 cfg->pin_env ? cfg->pin_env : "named by pin_env");
		return NULL;
	}
	char *pin = strdup(v);
	env_scrub(cfg->pin_env);
	if (!pin)
		snprintf(err, errlen, "out of memory");
	return pin;
}
