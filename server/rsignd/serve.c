/* The serving loop shared by `rsignd serve` and `rsignd dev`: TLS files,
 * connection and rate limits, the HTTP daemon, and a main thread that
 * waits for SIGTERM/SIGINT with sigwait so that workers never see signals. */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/http/jwks.h"
#include "server/console/console.h"
#include "server/http/ratelimit.h"
#include "server/http/tls.h"
#include "server/rsignd/checkpoint.h"
#include "server/rsignd/notify.h"
#include "server/rsignd/setup.h"

/* The web console's files at their paths (server/console/). */
static int console_page(const char *path, srv_page *out)
{
	const srv_console_asset *a = srv_console_find(path);
	if (!a)
		return 0;
	*out = (srv_page){a->data, a->len, a->content_type, a->etag};
	return 1;
}

/* Keys each rate limiter holds at most (ratelimit.h). */
#define LIMITER_SLOTS 4096

/* How many connections may be open at once: max_connections, lowered so
 * that they leave descriptors for what else rsignd opens. A token that
 * cannot open its files fails every signature (SoftHSM2 hit EMFILE), so
 * connections must run out first. Kept: 64, plus 8 for each worker thread
 * (its wake-up descriptors, the database's connection with its WAL and
 * shared memory) and 8 for each token session. -1 when too few
 * are left to serve. */
static long long connections_that_fit(const srv_config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return cfg->max_connections;
	long long kept = 64 + 8 * cfg->threads + 8 * cfg->hsm_sessions;
	long long fit = (long long)rl.rlim_cur - kept;
	if (fit < 16) {
		rs_err("the file-descriptor limit %llu leaves room for %lld connections; raise it "
		       "(ulimit -n, systemd's LimitNOFILE=) to at least %lld",
		       (unsigned long long)rl.rlim_cur, fit < 0 ? 0 : fit, kept + 16);
		return -1;
	}
	if (fit < cfg->max_connections) {
		rs_warn("max_connections %lld lowered to %lld: the file-descriptor limit is %llu",
			cfg->max_connections, fit, (unsigned long long)rl.rlim_cur);
		return fit;
	}
	return cfg->max_connections;
}

static int limits_start(srv_ctx *ctx, const srv_config *cfg)
{
	ctx->max_auth_failures = cfg->max_auth_failures;
	ctx->max_auth_failures_per_ip = cfg->max_auth_failures_per_ip;
	ctx->max_sign_rate = cfg->max_sign_rate;
	ctx->tsa_require_synced_clock = cfg->tsa_require_synced_clock;
	ctx->auth_limit = srv_ratelimit_new(LIMITER_SLOTS);
	ctx->sign_limit = cfg->max_sign_rate > 0 ? srv_ratelimit_new(LIMITER_SLOTS) : NULL;
	if (!ctx->auth_limit || (cfg->max_sign_rate > 0 && !ctx->sign_limit)) {
		rs_err("out of memory for the rate limiters");
		return -1;
	}
	return 0;
}

/* The OIDC issuers' key-set cache; libcurl is set up here, before any
 * thread starts. */
static int oidc_start(srv_ctx *ctx, const srv_config *cfg)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    !(ctx->jwks = srv_jwks_cache_new(cfg->oidc_ca_file, (long)cfg->oidc_jwks_max_age))) {
		rs_err("cannot set up the OIDC key-set cache (libcurl or memory)");
		return -1;
	}
	return 0;
}

static void oidc_stop(srv_ctx *ctx)
{
	srv_jwks_cache_free(ctx->jwks);
	ctx->jwks = NULL;
}

static void limits_stop(srv_ctx *ctx)
{
	srv_ratelimit_free(ctx->auth_limit);
	srv_ratelimit_free(ctx->sign_limit);
	ctx->auth_limit = ctx->sign_limit = NULL;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf && n == 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* SIGHUP: the log file is opened again (after a rotation) and the TLS pair
 * read again; connections stay open. Nothing else of the configuration
 * changes without a restart. */
static void reload(const srv_config *cfg)
{
	if (cfg->log_file && rs_log_set_file(cfg->log_file) != 0)
		rs_err("SIGHUP: cannot open log_file %s again; logging on to the old file",
		       cfg->log_file);
	if (cfg->insecure_http) {
		rs_info("SIGHUP: %s (plain HTTP: no TLS pair to reload)",
			cfg->log_file ? "log file reopened" : "nothing to reopen");
		return;
	}
	char certp[4096], keyp[4096], err[512] = "";
	srv_setup_tls_paths(cfg, certp, keyp, sizeof(certp));
	char *cert = read_file(certp), *key = read_file(keyp);
	if (!cert || !key)
		rs_err("SIGHUP: cannot read the TLS files %s and %s; the old pair stays", certp,
		       keyp);
	else if (srv_tls_reload(cert, key, err, sizeof(err)) != 0)
		rs_err("SIGHUP: TLS files not reloaded, the old pair stays: %s", err);
	else
		rs_info("SIGHUP: TLS certificate %s reloaded%s", certp,
			cfg->log_file ? ", log file reopened" : "");
	if (key)
		rs_wipe(key, strlen(key));
	free(key);
	free(cert);
}

int srv_run(srv_ctx *ctx, const srv_config *cfg, void (*ready)(void *arg, int port), void *arg)
{
	char err[512] = "", certp[4096], keyp[4096];
	char *cert = NULL, *key = NULL;
	int ret = 1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* blocked before any thread starts, so every worker inherits the mask */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!cfg->insecure_http) {
		srv_setup_tls_paths(cfg, certp, keyp, sizeof(certp));
		cert = read_file(certp);
		key = read_file(keyp);
		if (!cert || !key) {
			rs_err("cannot read the TLS files %s and %s (rsignd init creates them)",
			       certp, keyp);
			goto out;
		}
	}
	int port = 0;
	srv_http *mh = NULL, *th = NULL;
	long long max_conns = connections_that_fit(cfg);
	if (max_conns < 0 || limits_start(ctx, cfg) != 0 || oidc_start(ctx, cfg) != 0)
		goto out;
	srv_http_opts opts = {.listen = cfg->listen,
			      .insecure_http = cfg->insecure_http,
			      .threads = cfg->threads,
			      .tls_cert_pem = cert,
			      .tls_key_pem = key,
			      .tls_priorities = cfg->tls_priorities,
			      .max_connections = max_conns,
			      .max_connections_per_ip = cfg->max_connections_per_ip,
			      .request_header_timeout = cfg->request_header_timeout,
			      .pages = console_page};
	srv_http *h = srv_http_start(ctx, srv_routes, &opts, &port, err, sizeof(err));
	if (!h) {
		rs_err("%s", err);
		goto out;
	}
	if (cfg->metrics_listen && cfg->metrics_listen[0]) {
		/* plain HTTP, no token: refused unless on a loopback address */
		srv_http_opts mopts = {.listen = cfg->metrics_listen,
				       .insecure_http = 1,
				       .threads = 1,
				       .max_connections = 16,
				       .request_header_timeout = cfg->request_header_timeout};
		int mport = 0;
		mh = srv_http_start(ctx, srv_metrics_routes, &mopts, &mport, err, sizeof(err));
		if (!mh) {
			rs_err("metrics_listen: %s", err);
			srv_http_stop(h);
			goto out;
		}
		rs_info("metrics on plain HTTP %s port %d (GET /metrics, no token)",
			cfg->metrics_listen, mport);
	}
	srv_checkpointer *cps = srv_checkpointer_start(ctx, cfg->checkpoint_every,
						       cfg->checkpoint_interval, err, sizeof(err));
	if (!cps) {
		rs_err("%s", err);
		srv_http_stop(mh);
		srv_http_stop(h);
		goto out;
	}
	if (cfg->tsa_listen && cfg->tsa_listen[0]) {
		/* plain HTTP on any address: RFC 3161 replies are signed */
		srv_http_opts topts = {.listen = cfg->tsa_listen,
				       .insecure_http = 1,
				       .plain_public = 1,
				       .threads = cfg->threads,
				       .max_connections = max_conns,
				       .max_connections_per_ip = cfg->max_connections_per_ip,
				       .request_header_timeout = cfg->request_header_timeout};
		int tport = 0;
		th = srv_http_start(ctx, srv_tsa_routes, &topts, &tport, err, sizeof(err));
		if (!th) {
			rs_err("tsa_listen: %s", err);
			srv_http_stop(mh);
			srv_http_stop(h);
			goto out;
		}
		rs_info("time-stamping on plain HTTP %s port %d (POST /tsa/NAME only)",
			cfg->tsa_listen, tport);
	}
	if (!cfg->tsa_require_synced_clock)
		rs_warn("tsa_require_synced_clock = false: timestamps are given whatever the "
			"clock's synchronisation");
	rs_info("connections: at most %lld, %lld from one address; a request head within "
		"%lld s",
		max_conns, cfg->max_connections_per_ip, cfg->request_header_timeout);
	rs_info("rsignd %s serving %s on %s port %d", RSIGN_VERSION,
		cfg->insecure_http ? "plain HTTP" : "HTTPS", cfg->listen, port);
	if (ready)
		ready(arg, port);
	char state[160];
	snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld\nSTATUS=serving %s on port %d",
		 (long)getpid(), cfg->insecure_http ? "plain HTTP" : "HTTPS", port);
	srv_notify(state);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			srv_notify("RELOADING=1");
			reload(cfg);
			srv_notify(state);
			continue;
		}
		rs_info("signal %d: finishing in-flight requests and stopping", sig);
		break;
	}
	srv_notify("STOPPING=1");
	srv_http_stop(th);
	srv_http_stop(mh);
	srv_http_stop(h);
	srv_checkpointer_stop(cps); /* after the last request: its head is signed */
	rs_info("stopped");
	ret = 0;
out:
	limits_stop(ctx);
	oidc_stop(ctx);
	if (key)
		rs_wipe(key, strlen(key));
	free(key);
	free(cert);
	return ret;
}
