/* rsignd's configuration: the table of settings in conf/rsignd.conf. */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H
#include <stddef.h>

typedef struct {
	char *listen;	     /* "127.0.0.1:8443" or "[::1]:8443" */
	char *tls_cert;	     /* PEM server certificate (+ chain) */
	char *tls_key;	     /* PEM server key */
	int insecure_http;   /* plain HTTP, only accepted on loopback */
	char *database;	     /* SQLite path, or a postgresql:// URI */
	char *pkcs11_module; /* any PKCS#11 module */
	char *softhsm2_conf; /* exported as SOFTHSM2_CONF before loading, when set */
	char *token_label;
	char *pin_file; /* user PIN: a file (mode 0600, else refused) ... */
	char *pin_env;	/* ... or an environment variable (unset once read) */
	int log_level;
	char *log_file;
	int log_format;		  /* RS_LOG_TEXT or RS_LOG_JSON */
	long long db_connections; /* PostgreSQL: the store's connection pool */
	long long threads;
	long long hsm_sessions;
	int hsm_exclusive_writes; /* key generation runs alone in the token */
	long long max_body;
	long long access_token_ttl;
	long long console_session_idle;	    /* seconds a console session lives unused */
	long long max_tokens_per_principal; /* unexpired API tokens one principal holds */
	long long history_denied_retention; /* seconds a "denied" history record is kept; 0 = for
					       ever */
	long long checkpoint_every;	    /* records of a chain between signed checkpoints */
	long long checkpoint_interval;	    /* seconds between checkpoints of a chain that moved */
	char *tls_priorities;		    /* GnuTLS priority string */
	long long max_connections;	    /* open at once, lowered below the fd limit */
	long long max_connections_per_ip;   /* from one address */
	long long request_header_timeout;   /* seconds from accept to a full request head */
	long long max_auth_failures;	    /* failed logins per clientId a minute; 0 = off */
	long long max_auth_failures_per_ip; /* failed logins + bad tokens per address */
	long long max_sign_rate;	    /* signatures per second per principal; 0 = off */
	char *metrics_listen;	     /* GET /metrics over plain HTTP, no token; NULL/"" = off */
	char *oidc_ca_file;	     /* CAs for fetching OIDC key sets; NULL = the system's */
	long long oidc_jwks_max_age; /* seconds a fetched key set is used */
	char *tsa_listen; /* POST /tsa/{name} over plain HTTP, nothing else; NULL/"" = off */
	int tsa_require_synced_clock; /* no timestamps while adjtimex says unsynchronised */
} srv_config;

#define SRV_DEFAULT_CONFIG "/etc/rsign/rsignd.conf"

/* Defaults, then path (when not NULL). 0 or -1 with "file:line: ..." in err. */
int srv_config_load(srv_config *cfg, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void srv_config_free(srv_config *cfg);
/* Reads the PIN from pin_file (refused when group or others may read or
 * write it) or from the environment variable pin_env, which is then taken
 * out of the environment, bytes wiped: read it once per process.
 * malloc'd, wipe with rs_free_secret; NULL + err. */
char *srv_config_pin(const srv_config *cfg, char *err, size_t errlen);

#endif
