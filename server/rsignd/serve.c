/* The serving loop shared by `rsignd serve` and `rsignd dev`: TLS files,
 * the HTTP daemon, and a main thread that waits for SIGTERM/SIGINT with
 * sigwait so that workers never see signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/rsignd/setup.h"

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
	srv_http_opts opts = {.listen = cfg->listen,
			      .insecure_http = cfg->insecure_http,
			      .threads = cfg->threads,
			      .tls_cert_pem = cert,
			      .tls_key_pem = key};
	srv_http *h = srv_http_start(ctx, srv_routes, &opts, &port, err, sizeof(err));
	if (!h) {
		rs_err("%s", err);
		goto out;
	}
	rs_info("rsignd %s serving %s on %s port %d", RSIGN_VERSION,
		cfg->insecure_http ? "plain HTTP" : "HTTPS", cfg->listen, port);
	if (ready)
		ready(arg, port);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			rs_info("SIGHUP ignored: restart rsignd to reload its configuration");
			continue;
		}
		rs_info("signal %d: finishing in-flight requests and stopping", sig);
		break;
	}
	srv_http_stop(h);
	rs_info("stopped");
	ret = 0;
out:
	if (key)
		rs_wipe(key, strlen(key));
	free(key);
	free(cert);
	return ret;
}
