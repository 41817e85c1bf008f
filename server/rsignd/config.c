/* rsignd's settings table: name, type, default and bounds of every setting
 * in rsignd.conf. Parsing itself is common/conf.c. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/conf.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/http.h"
#include "server/rsignd/config.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

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
	STR(pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so"),
	STR(softhsm2_conf, NULL),
	STR(token_label, "rsign"),
	STR(pin_file, NULL),
	STR(pin_env, "RSIGN_HSM_PIN"),
	{"log_level", RS_CONF_ENUM, offsetof(srv_config, log_level), "info", 0, 0, log_levels},
	STR(log_file, NULL),
	INT(threads, "8", 1, 256),
	INT(hsm_sessions, "8", 1, 256),
	INT(max_body, "65536", 1024, 16777216),
	INT(access_token_ttl, "3600", 1, 31536000),
	STR(tls_priorities, SRV_TLS_PRIORITIES),
	INT(max_connections, "4096", 16, 1000000),
	INT(max_connections_per_ip, "256", 1, 1000000),
	INT(request_header_timeout, "10", 1, 3600),
	INT(max_auth_failures, "10", 0, 1000000),
	INT(max_auth_failures_per_ip, "100", 0, 1000000),
	INT(max_sign_rate, "0", 0, 1000000),
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

char *srv_config_pin(const srv_config *cfg, char *err, size_t errlen)
{
	char buf[256];
	if (cfg->pin_file) {
		FILE *f = fopen(cfg->pin_file, "re");
		if (!f) {
			snprintf(err, errlen, "%s: cannot read the PIN file", cfg->pin_file);
			return NULL;
		}
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		char *pin = strdup(buf);
		rs_wipe(buf, sizeof(buf));
		if (!pin || !*pin) {
			rs_free_secret(pin);
			snprintf(err, errlen, "%s: the PIN file is empty", cfg->pin_file);
			return NULL;
		}
		return pin;
	}
	const char *v = cfg->pin_env ? getenv(cfg->pin_env) : NULL;
	if (!v || !*v) {
		snprintf(err, errlen, "no HSM PIN: set pin_file, or the environment variable %s",
			 cfg->pin_env ? cfg->pin_env : "named by pin_env");
		return NULL;
	}
	return strdup(v);
}
