/* The metrics registry of rsign/metrics.h: a fixed table of series under
 * one mutex, rendered in the Prometheus text format 0.0.4. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "rsign/metrics.h"

typedef struct {
	const rs_metric_family *f;
	char labels[RS_METRICS_LABELS_MAX];		    /* rendered, "" = none */
	double value;					    /* counter, gauge; histogram: sum */
	unsigned long long count;			    /* histogram observations */
	unsigned long long buckets[RS_METRICS_MAX_BUCKETS]; /* per bucket, not cumulative */
} series;

static const double seconds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				 0.1,	 0.25,	0.5,	1,     2.5,  5,	    10};
static const double batch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

const rs_metric_family rs_m_sign_total = {
	"rsign_sign_total", "Sign attempts recorded in the signing history, by outcome.",
	RS_METRIC_COUNTER, NULL, 0};
const rs_metric_family rs_m_sign_duration = {
	"rsign_sign_duration_seconds",
	"Time of a sign call: total (the handler), token (C_Sign), commit (the history record).",
	RS_METRIC_HISTOGRAM, seconds, sizeof(seconds) / sizeof(seconds[0])};
const rs_metric_family rs_m_commit_batch = {
	"rsign_history_commit_batch_size",
	"Signing-history records per commit (SQLite group commit; 1 on PostgreSQL).",
	RS_METRIC_HISTOGRAM, batch, sizeof(batch) / sizeof(batch[0])};
const rs_metric_family rs_m_http_requests = {
	"rsign_http_requests_total",
	"HTTP requests answered, by route pattern (or unmatched) and status code.",
	RS_METRIC_COUNTER, NULL, 0};

const rs_metric_family rs_m_timestamp_total = {
	"rsign_timestamp_total",
	"Timestamp requests a time-stamp authority answered, by protocol and outcome.",
	RS_METRIC_COUNTER, NULL, 0};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static series table[RS_METRICS_MAX_SERIES];
static size_t nseries;
static const rs_metric_family *families[RS_METRICS_MAX_FAMILIES];
static size_t nfamilies;
static unsigned long long dropped;

static void escape(const char *s, int quote, char *out, size_t outlen, size_t *n)
{
	for (; *s && *n + 2 < outlen; s++) {
		if (*s == '\\' || *s == '\n' || (quote && *s == '"')) {
			out[(*n)++] = '\\';
			out[(*n)++] = *s == '\n' ? 'n' : *s;
		} else {
			out[(*n)++] = *s;
		}
	}
	if (*s)
		*n = outlen; /* did not fit */
}

int rs_metrics_labels(const char *const *labels, char *out, size_t outlen)
{
	size_t n = 0;
	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (!labels || !labels[0])
		return 0;
	for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
		int w = snprintf(out + n, outlen - n, "%s%s=\"", i ? "," : "{", labels[i]);
		if (w < 0 || (size_t)w >= outlen - n)
			return -1;
		n += (size_t)w;
		escape(labels[i + 1], 1, out, outlen, &n);
		if (n + 3 > outlen)
			return -1;
		out[n++] = '"';
	}
	out[n++] = '}';
	out[n] = '\0';
	return 0;
}

static void declare_inlock(const rs_metric_family *f)
{
	for (size_t i = 0; i < nfamilies; i++)
		if (families[i] == f)
			return;
	if (nfamilies < RS_METRICS_MAX_FAMILIES)
		families[nfamilies++] = f;
}

void rs_metric_declare(const rs_metric_family *f)
{
	pthread_mutex_lock(&mu);
	declare_inlock(f);
	pthread_mutex_unlock(&mu);
}

/* The series of f with these labels, made when new; NULL when the table
 * is full or the labels too long (counted as dropped). Under mu. */
static series *find_inlock(const rs_metric_family *f, const char *const *labels)
{
	char l[RS_METRICS_LABELS_MAX];
	declare_inlock(f);
	if (rs_metrics_labels(labels, l, sizeof(l)) != 0) {
		dropped++;
		return NULL;
	}
	for (size_t i = 0; i < nseries; i++)
		if (table[i].f == f && strcmp(table[i].labels, l) == 0)
			return &table[i];
	if (nseries == RS_METRICS_MAX_SERIES) {
		dropped++;
		return NULL;
	}
	series *s = &table[nseries++];
	memset(s, 0, sizeof(*s));
	s->f = f;
	memcpy(s->labels, l, sizeof(l));
	return s;
}

void rs_metric_add(const rs_metric_family *f, double v, const char *const *labels)
{
	pthread_mutex_lock(&mu);
	series *s = find_inlock(f, labels);
	if (s)
		s->value += v;
	pthread_mutex_unlock(&mu);
}

void rs_metric_set(const rs_metric_family *f, double v, const char *const *labels)
{
	pthread_mutex_lock(&mu);
	series *s = find_inlock(f, labels);
	if (s)
		s->value = v;
	pthread_mutex_unlock(&mu);
}

void rs_metric_observe(const rs_metric_family *f, double v, const char *const *labels)
{
	pthread_mutex_lock(&mu);
	series *s = find_inlock(f, labels);
	if (s) {
		size_t b = 0;
		while (b < f->nbounds && b < RS_METRICS_MAX_BUCKETS && v > f->bounds[b])
			b++;
		if (b < f->nbounds && b < RS_METRICS_MAX_BUCKETS)
			s->buckets[b]++;
		s->count++;
		s->value += v;
	}
	pthread_mutex_unlock(&mu);
}

static void number(rs_buf *out, double v)
{
	if (isnan(v))
		rs_buf_append_str(out, "NaN");
	else if (isinf(v))
		rs_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
	else
		rs_buf_printf(out, "%.17g", v);
}

void rs_metrics_write_header(rs_buf *out, const char *name, const char *help, rs_metric_type type)
{
	char h[512];
	size_t n = 0;
	escape(help, 0, h, sizeof(h), &n);
	h[n < sizeof(h) ? n : sizeof(h) - 1] = '\0';
	rs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, h, name,
		      type == RS_METRIC_COUNTER ? "counter"
		      : type == RS_METRIC_GAUGE ? "gauge"
						: "histogram");
}

void rs_metrics_write_sample(rs_buf *out, const char *name, const char *const *labels, double v)
{
	char l[RS_METRICS_LABELS_MAX];
	if (rs_metrics_labels(labels, l, sizeof(l)) != 0)
		return;
	rs_buf_printf(out, "%s%s ", name, l);
	number(out, v);
	rs_buf_append_str(out, "\n");
}

/* name_bucket{<labels>,le="b"}: the series' labels with le added. */
static void bucket_line(rs_buf *out, const series *s, const char *le, unsigned long long n)
{
	size_t ll = strlen(s->labels);
	if (ll)
		rs_buf_printf(out, "%s_bucket%.*s,le=\"%s\"} %llu\n", s->f->name, (int)(ll - 1),
			      s->labels, le, n);
	else
		rs_buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", s->f->name, le, n);
}

static void render_series(rs_buf *out, const series *s)
{
	if (s->f->type != RS_METRIC_HISTOGRAM) {
		rs_buf_printf(out, "%s%s ", s->f->name, s->labels);
		number(out, s->value);
		rs_buf_append_str(out, "\n");
		return;
	}
	unsigned long long cum = 0;
	for (size_t b = 0; b < s->f->nbounds && b < RS_METRICS_MAX_BUCKETS; b++) {
		char le[32];
		cum += s->buckets[b];
		/* 15 digits: the bound as written (0.0025, not 0.0025000000000000001),
		 * so that a selector le="0.0025" finds it */
		snprintf(le, sizeof(le), "%.15g", s->f->bounds[b]);
		bucket_line(out, s, le, cum);
	}
	bucket_line(out, s, "+Inf", s->count);
	rs_buf_printf(out, "%s_sum%s ", s->f->name, s->labels);
	number(out, s->value);
	rs_buf_printf(out, "\n%s_count%s %llu\n", s->f->name, s->labels, s->count);
}

void rs_metrics_render(rs_buf *out)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nfamilies; i++) {
		const rs_metric_family *f = families[i];
		rs_metrics_write_header(out, f->name, f->help, f->type);
		for (size_t j = 0; j < nseries; j++)
			if (table[j].f == f)
				render_series(out, &table[j]);
	}
	rs_metrics_write_header(out, "rsign_metrics_series_dropped_total",
				"Metric updates dropped: label set too long or series table full.",
				RS_METRIC_COUNTER);
	rs_buf_printf(out, "rsign_metrics_series_dropped_total %llu\n", dropped);
	pthread_mutex_unlock(&mu);
}

void rs_metrics_reset(void)
{
	pthread_mutex_lock(&mu);
	nseries = 0;
	nfamilies = 0;
	dropped = 0;
	pthread_mutex_unlock(&mu);
}
