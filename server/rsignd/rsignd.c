/* rsignd: `init`, `serve`, `dev`, `migrate` and `backup`. Signals are handled by the main thread
 * with sigwait so that workers never see them; SIGTERM and SIGINT stop
 * accepting, let in-flight requests finish, then close. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rsign/conf.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/rsignd/dev.h"
#include "server/api/api.h"
#include "server/rsignd/setup.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rsignd [serve] [-c FILE] [--listen HOST:PORT] [--insecure-http]\n"
		"                                      serve the API (default config %s);\n"
		"                                      --listen: this process's address instead "
		"of\n"
		"                                      the file's (another replica of the same\n"
		"                                      configuration); --insecure-http: plain "
		"HTTP,\n"
		"                                      loopback only\n"
		"       rsignd init [-c FILE]          create database, token, CA, TLS "
		"certificate, first admin\n"
		"       rsignd dev --dir DIR [--port N] [--access-token-ttl SECONDS] [--threads "
		"N]\n"
		"                  [--database postgresql://...] [--console-session-idle SECONDS]\n"
		"                                      a throw-away server with demo signers\n"
		"       rsignd migrate --from PATH.db --to postgresql://...\n"
		"                                      copy a SQLite database into an empty "
		"PostgreSQL one\n"
		"       rsignd backup [-c FILE] --out PATH\n"
		"                                      copy the SQLite database while it serves, "
		"checked\n"
		"       rsignd verify-log [-c FILE]      check the history's and audit log's "
		"hash chains\n"
		"                                      and checkpoints in the database (exit 1: "
		"tampered)\n"
		"       rsignd --version\n",
		SRV_DEFAULT_CONFIG);
}

static int load_config(srv_config *cfg, const char *path)
{
	char err[RS_CONF_ERRLEN] = "";
	int explicit = path != NULL;
	if (!path)
		path = SRV_DEFAULT_CONFIG;
	if (!explicit && access(path, F_OK) != 0)
		path = NULL; /* no file: built-in defaults */
	if (srv_config_load(cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "rsignd: %s\n", err);
		return -1;
	}
	rs_log_set_level(cfg->log_level);
	rs_log_set_format(cfg->log_format);
	if (cfg->log_file && rs_log_set_file(cfg->log_file) != 0) {
		fprintf(stderr, "rsignd: cannot open log_file %s\n", cfg->log_file);
		return -1;
	}
	return 0;
}

/* `listen` overrides the file's address: each replica of one configuration
 * (one database, one token) runs `rsignd serve -c FILE --listen HOST:PORT`. */
static int cmd_serve(const char *conf, const char *listen, int insecure)
{
	srv_config cfg;
	srv_ctx ctx;
	char err[512] = "";
	if (load_config(&cfg, conf) != 0)
		return 1;
	if (listen) {
		char *copy = strdup(listen);
		if (!copy) {
			srv_config_free(&cfg);
			return 1;
		}
		free(cfg.listen);
		cfg.listen = copy;
	}
	if (insecure)
		cfg.insecure_http = 1; /* still refused unless listen is loopback */
	int ret = 1;
	if (srv_setup_open(&ctx, &cfg, err, sizeof(err)) != 0) {
		rs_err("%s", err);
		goto out;
	}
	ret = srv_run(&ctx, &cfg, NULL, NULL);
	srv_setup_close(&ctx);
out:
	srv_config_free(&cfg);
	return ret;
}

/* The first admin's token goes to stdout, flushed: once this returns 0, init
 * counts it as delivered. */
static int print_admin_token(void *arg, const char *token)
{
	*(int *)arg = 1;
	printf("The first admin is \"admin\". Its API token is shown this once:\n\n"
	       "  %s\n\n"
	       "Keep it in a file only you can read, e.g. RSIGN_TOKEN for rsignctl.\n",
	       token);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

static int cmd_init(const char *conf)
{
	srv_config cfg;
	char err[512] = "";
	int printed = 0;
	srv_setup_admin adm = {.deliver = print_admin_token, .arg = &printed};
	if (load_config(&cfg, conf) != 0)
		return 1;
	int ret = 1;
	if (srv_setup_init(&cfg, &adm, err, sizeof(err)) != 0) {
		rs_err("init: %s", err);
		goto out;
	}
	if (!printed)
		printf("rsignd is initialised (an admin existed already; no token printed).\n");
	ret = 0;
out:
	srv_config_free(&cfg);
	return ret;
}

/* `rsignd migrate`: the store's import, with a line per table on stdout. */
static int cmd_migrate(const char *from, const char *to)
{
	char err[1024] = "";
	if (!from || !to || !srv_store_is_pg_uri(to) || srv_store_is_pg_uri(from)) {
		fprintf(stderr, "rsignd migrate: --from PATH.db (SQLite) and --to postgresql://... "
				"are required\n");
		return 64;
	}
	if (access(from, R_OK) != 0) {
		fprintf(stderr, "rsignd migrate: %s: %s\n", from, strerror(errno));
		return 1;
	}
	if (srv_store_pg_import_sqlite(from, to, stdout, err, sizeof(err)) != 0) {
		rs_err("migrate: %s", err);
		return 1;
	}
	printf("migrated %s into the PostgreSQL database: every row count matches\n", from);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* `rsignd backup`: the store's online copy of the configured SQLite
 * database, a line per table on stdout. PostgreSQL has its own tools. */
static int cmd_backup(const char *conf, const char *out)
{
	srv_config cfg;
	char err[1024] = "";
	if (!out) {
		fprintf(stderr, "rsignd backup: --out PATH is required\n");
		return 64;
	}
	if (load_config(&cfg, conf) != 0)
		return 1;
	int ret = 1;
	if (srv_store_is_pg_uri(cfg.database)) {
		fprintf(stderr, "rsignd backup: the database is PostgreSQL: back it up with "
				"pg_dump or a base backup (docs/operations.md, Backups)\n");
		ret = 64;
	} else if (srv_store_sqlite_backup(cfg.database, out, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, "rsignd backup: %s\n", err);
	} else {
		printf("backed up %s to %s: integrity, foreign keys and schema version checked\n",
		       cfg.database, out);
		ret = fflush(stdout) == 0 ? 0 : 1;
	}
	srv_config_free(&cfg);
	return ret;
}

/* `rsignd verify-log -c FILE`: the hash chains and checkpoints of the
 * configured database checked directly, without a server, with the log key
 * the token holds (checked against the database's record of it). Exit 0
 * when both chains are whole, 1 at the first bad record, 2 when the log
 * cannot be checked. */
static int cmd_verify_log(const char *conf)
{
	srv_config cfg;
	srv_ctx ctx;
	char err[512] = "";
	int ret = 2;

	if (load_config(&cfg, conf) != 0)
		return 2;
	if (srv_setup_open(&ctx, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "rsignd verify-log: %s\n", err);
		goto out;
	}
	ret = 0;
	for (int c = 0; c < SRV_CHAIN_COUNT; c++) {
		srv_chain_report rep;
		const char *name = srv_chain_name((srv_chain)c);
		if (srv_chain_verify(ctx.store, (srv_chain)c, api_log_verify_sig, &ctx, &rep) !=
		    SRV_ST_OK) {
			fprintf(stderr, "rsignd verify-log: cannot read the %s chain\n", name);
			ret = 2;
			break;
		}
		if (rep.bad == SRV_CHAIN_GOOD) {
			printf("%s: ok (%lld records, %lld tombstones, %lld checkpoints)\n", name,
			       rep.records, rep.tombstones, rep.checkpoints);
			continue;
		}
		printf("%s: BAD: %s at seq %lld, record %s: %s\n", name,
		       srv_chain_bad_name(rep.bad), rep.seq, rep.id[0] ? rep.id : "-", rep.detail);
		ret = 1;
	}
	srv_setup_close(&ctx);
out:
	srv_config_free(&cfg);
	if (fflush(stdout) != 0)
		ret = 2;
	return ret;
}

/* Every descriptor the hard limit allows: connections, the token and the
 * database share them (serve.c keeps connections below the limit). */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fprintf(stderr, "rsignd: cannot raise the file-descriptor limit to %llu\n",
			(unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"dir", required_argument, NULL, 'd'},
		{"port", required_argument, NULL, 'p'},
		{"access-token-ttl", required_argument, NULL, 't'},
		{"threads", required_argument, NULL, 'T'},
		{"console-session-idle", required_argument, NULL, 'S'},
		{"database", required_argument, NULL, 'D'},
		{"from", required_argument, NULL, 'F'},
		{"to", required_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"insecure-http", no_argument, NULL, 'I'},
		{"listen", required_argument, NULL, 'L'},
		{"out", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	rs_log_set_ident("rsignd");
	raise_nofile();
	const char *cmd = "serve";
	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	const char *conf = NULL, *from = NULL, *to = NULL, *listen = NULL, *out = NULL;
	int insecure = 0;
	srv_dev_opts dev = {.port = 0, .access_token_ttl = 3600, .threads = 8};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			dev.dir = optarg;
			break;
		case 'p':
			dev.port = (int)strtol(optarg, &end, 10);
			if (*end || dev.port < 0 || dev.port > 65535) {
				fprintf(stderr, "rsignd: --port takes 0..65535\n");
				return 64;
			}
			break;
		case 't':
			dev.access_token_ttl = strtol(optarg, &end, 10);
			if (*end || dev.access_token_ttl < 1) {
				fprintf(stderr, "rsignd: --access-token-ttl takes seconds >= 1\n");
				return 64;
			}
			break;
		case 'D':
			if (!srv_store_is_pg_uri(optarg)) {
				fprintf(stderr, "rsignd: --database takes a postgresql:// URI\n");
				return 64;
			}
			dev.database = optarg;
			break;
		case 'F':
			from = optarg;
			break;
		case 'O':
			to = optarg;
			break;
		case 'S':
			dev.console_session_idle = strtol(optarg, &end, 10);
			if (*end || dev.console_session_idle < 1 ||
			    dev.console_session_idle > 604800) {
				fprintf(stderr,
					"rsignd: --console-session-idle takes 1..604800 seconds\n");
				return 64;
			}
			break;
		case 'T':
			dev.threads = (int)strtol(optarg, &end, 10);
			if (*end || dev.threads < 1 || dev.threads > 256) {
				fprintf(stderr, "rsignd: --threads takes 1..256\n");
				return 64;
			}
			break;
		case 'I':
			insecure = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case 'L':
			if (!*optarg || strlen(optarg) > 255) {
				fprintf(stderr, "rsignd: --listen takes HOST:PORT\n");
				return 64;
			}
			listen = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("rsignd %s\n", RSIGN_VERSION);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}
	if (listen && strcmp(cmd, "serve") != 0) {
		fprintf(stderr, "rsignd: --listen is for serve (dev takes --port)\n");
		return 64;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(conf, listen, insecure);
	if (strcmp(cmd, "init") == 0)
		return cmd_init(conf);
	if (out && strcmp(cmd, "backup") != 0) {
		fprintf(stderr, "rsignd: --out is for backup\n");
		return 64;
	}
	if (strcmp(cmd, "backup") == 0)
		return cmd_backup(conf, out);
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(from, to);
	if (strcmp(cmd, "verify-log") == 0)
		return cmd_verify_log(conf);
	if (strcmp(cmd, "dev") == 0) {
		if (!dev.dir) {
			fprintf(stderr, "rsignd dev: --dir DIR is required\n");
			return 64;
		}
		return srv_dev_main(&dev);
	}
	fprintf(stderr, "rsignd: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 64;
}
