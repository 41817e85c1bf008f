/* The module's configuration: one table of keys (config.c), read once by
 * C_Initialize from pReserved, $RSIGN_PKCS11_CONF or /etc/rsign/pkcs11.conf. */
#ifndef MOD_CONFIG_H
#define MOD_CONFIG_H
#include <stddef.h>

#define MOD_CONF_DEFAULT_PATH "/etc/rsign/pkcs11.conf"
#define MOD_MAX_SIGNER_NAMES 64
#define MOD_MAX_URLS 8	 /* base URLs in `url`, tried in turn (http.c) */
#define MOD_URL_MAX 1024 /* characters of one of them */
enum { MOD_APPROVAL_FAIL = 0, MOD_APPROVAL_WAIT = 1 };

typedef struct mod_config {
	/* set from the file (see the table in config.c) */
	char *url;
	char *ca_file;
	char *token_file;
	char *client_id;
	char *client_secret_file;
	char *identity_id; /* OIDC login (oidc.c): the identity, and one of ... */
	char *oidc_token_file;
	char *oidc_token_env;
	int oidc_github;
	char *oidc_audience; /* oidc_github: the audience asked for */
	char *oidc_ca_file;  /* oidc_github: CAs of its endpoint; NULL: the system's */
	char *signers;
	long long connect_timeout;  /* seconds */
	long long request_timeout;  /* seconds */
	long long refresh_interval; /* seconds */
	int log_level;
	char *log_file;
	int approval;		    /* MOD_APPROVAL_FAIL or _WAIT (approval.c) */
	long long approval_timeout; /* seconds */
	char *justification;
	/* derived */
	char *path;	     /* the file read, NULL when none */
	char **signer_names; /* split from signers, NULL when all are shown */
	size_t n_signer_names;
	/* url split at spaces: the base URLs of replicas, each checked by
	 * include/rsign/url.h, without trailing slashes; plain[i] when urls[i]
	 * is http:// on loopback */
	char *urls[MOD_MAX_URLS];
	int plain[MOD_MAX_URLS];
	size_t n_urls;
} mod_config;

/* Reads the configuration named by path (NULL: $RSIGN_PKCS11_CONF, then the
 * default path). 0, or -1 after logging one line saying why. */
int mod_config_load(const char *path, mod_config *conf) __attribute__((warn_unused_result));
void mod_config_free(mod_config *conf);

#endif
