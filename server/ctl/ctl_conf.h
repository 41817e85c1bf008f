/* rsignctl's configuration: the server URL, the CA file and the token, from
 * the configuration file, overridden by the environment, overridden by the
 * flags. */
#ifndef RSIGN_CTL_CONF_H
#define RSIGN_CTL_CONF_H

typedef struct {
	char *url;
	char *ca_file;
	char *token_file;
} ctl_conf_file;

typedef struct {
	char *path;	    /* the configuration file read, or NULL */
	ctl_conf_file file; /* its settings */
	const char *url;    /* the winner of flag, environment and file */
	const char *ca_file;
	char *token; /* NULL unless asked for; wiped by ctl_conf_free */
} ctl_conf;

/* Fills cf from the file (config_flag, else $RSIGN_CTL_CONF, else the
 * per-user file when present), the environment and the flags (any may be
 * NULL). Reads the token only when need_token. Prints the reason and
 * returns an exit code on failure; cf needs ctl_conf_free either way. */
int ctl_conf_load(ctl_conf *cf, const char *config_flag, const char *url_flag, const char *ca_flag,
		  int need_token) __attribute__((warn_unused_result));
void ctl_conf_free(ctl_conf *cf);

#endif
