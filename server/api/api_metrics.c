/* GET /metrics: the Prometheus text format 0.0.4. What rsignd counts as it
 * runs comes from the registry (rsign/metrics.h); what is read at scrape
 * time is written here: the token pool's sessions in use, the pending
 * approval requests and the enabled signers' certificate expiry (both from
 * the store), and the process metrics of /proc/self. Who may read it:
 * srv_may_read_metrics (access.c), or anyone on metrics_listen. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "rsign/metrics.h"
#include "server/api/api.h"

#define METRICS_MAX (4 * 1024 * 1024)
#define CONTENT_TYPE "text/plain; version=0.0.4"

static void gauge(rs_buf *b, const char *name, const char *help, double v)
{
	rs_metrics_write_header(b, name, help, RS_METRIC_GAUGE);
	rs_metrics_write_sample(b, name, NULL, v);
}

static srv_err store_metrics(srv_req *r, rs_buf *b)
{
	srv_store *st = r->ctx->store;
	srv_request *q = NULL;
	srv_signer *v = NULL;
	size_t n = 0, total = 0;
	srv_st_rc rc =
		st->ops->request_list(st, NULL, "pending", NULL, time(NULL), 0, 1, &q, &n, &total);
	srv_request_list_free(q, n);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot count the pending requests");
	gauge(b, "rsign_approval_requests_pending", "Signing requests waiting for approval.",
	      (double)total);
	rc = st->ops->signer_list(st, NULL, 0, NULL, "enabled", 0, 0, &v, &n, &total);
	if (rc != SRV_ST_OK)
		return srv_fail(r, srv_reason_from_store(rc), "cannot list the signers");
	rs_metrics_write_header(b, "rsign_certificate_expiry_timestamp_seconds",
				"The notAfter of each enabled signer's certificate, Unix time.",
				RS_METRIC_GAUGE);
	for (size_t i = 0; i < n; i++) {
		const char *labels[] = {"signer", v[i].name, NULL};
		if (v[i].cert_not_after)
			rs_metrics_write_sample(b, "rsign_certificate_expiry_timestamp_seconds",
						labels, (double)v[i].cert_not_after);
	}
	srv_signer_list_free(v, n);
	return SRV_OK;
}

/* The fields of /proc/self/stat past the command name (field 3 on). */
static int proc_stat(unsigned long long *ticks, unsigned long long *start,
		     unsigned long long *vsize, long long *rss)
{
	char line[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return -1;
	size_t len = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[len] = '\0';
	char *p = strrchr(line, ')'); /* the name may hold spaces and parentheses */
	unsigned long long ut, stt;
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			 "%*d %*d %llu %llu %lld",
			 &ut, &stt, start, vsize, rss) != 5)
		return -1;
	*ticks = ut + stt;
	return 0;
}

static long long boot_time(void)
{
	char line[256];
	long long bt = -1;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void process_metrics(rs_buf *b)
{
	unsigned long long ticks, start, vsize;
	long long rss, bt = boot_time();
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
	struct rlimit rl;
	if (hz > 0 && page > 0 && proc_stat(&ticks, &start, &vsize, &rss) == 0) {
		rs_metrics_write_header(b, "process_cpu_seconds_total",
					"User and system CPU time spent, seconds.",
					RS_METRIC_COUNTER);
		rs_metrics_write_sample(b, "process_cpu_seconds_total", NULL,
					(double)ticks / (double)hz);
		gauge(b, "process_resident_memory_bytes", "Resident memory size, bytes.",
		      (double)rss * (double)page);
		gauge(b, "process_virtual_memory_bytes", "Virtual memory size, bytes.",
		      (double)vsize);
		if (bt >= 0)
			gauge(b, "process_start_time_seconds",
			      "Start time of the process since the epoch, seconds.",
			      (double)bt + (double)start / (double)hz);
	}
	if (fds >= 0)
		gauge(b, "process_open_fds", "Open file descriptors.", (double)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		gauge(b, "process_max_fds", "The limit of open file descriptors.",
		      (double)rl.rlim_cur);
}

srv_err api_metrics(srv_req *r, cJSON **out)
{
	rs_buf b;
	int in_use = 0, size = 0;
	(void)out;
	rs_buf_init(&b, METRICS_MAX);
	/* listed from the first scrape on, before their first sample */
	rs_metric_declare(&rs_m_sign_total);
	rs_metric_declare(&rs_m_sign_duration);
	rs_metric_declare(&rs_m_commit_batch);
	rs_metric_declare(&rs_m_http_requests);
	rs_metric_declare(&rs_m_timestamp_total);
	if (store_metrics(r, &b) != SRV_OK) {
		rs_buf_free(&b);
		return r->err;
	}
	srv_hsm_sessions(r->ctx->hsm, &in_use, &size);
	gauge(&b, "rsign_hsm_sessions_in_use", "Token sessions taken by a call now.",
	      (double)in_use);
	gauge(&b, "rsign_hsm_sessions", "Token sessions in the pool (hsm_sessions).", (double)size);
	process_metrics(&b);
	rs_metrics_render(&b);
	if (!rs_buf_ok(&b)) {
		rs_buf_free(&b);
		return srv_fail(r, SRV_R_INTERNAL, "the metrics do not fit in %d bytes",
				METRICS_MAX);
	}
	size_t len;
	r->text = (char *)rs_buf_steal(&b, &len);
	r->content_type = CONTENT_TYPE;
	if (!r->text)
		return srv_fail(r, SRV_R_INTERNAL, "out of memory");
	return SRV_OK;
}
