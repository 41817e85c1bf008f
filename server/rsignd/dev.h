/* `rsignd dev`: a throw-away rsignd in one directory, with demo signers. */
#ifndef SRV_DEV_H
#define SRV_DEV_H

typedef struct {
	const char *dir;
	const char *database; /* NULL: DIR/rsign.db; else a postgresql:// URI */
	int port;	      /* 0 = any free loopback port */
	long access_token_ttl;
	long console_session_idle; /* 0: the setting's default */
	int threads;
} srv_dev_opts;

/* Initialises dir, serves in the foreground until SIGTERM; exit code. */
int srv_dev_main(const srv_dev_opts *o);

#endif
