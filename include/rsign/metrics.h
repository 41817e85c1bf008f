/* A small in-process metrics registry for the Prometheus text format
 * 0.0.4: counters, gauges and fixed-bucket histograms, each a family
 * declared once as a static rs_metric_family, with label sets bounded by
 * RS_METRICS_MAX_SERIES (past that, updates to new series are dropped and
 * counted in rsign_metrics_series_dropped_total). One mutex guards it all;
 * updates are a lookup and an add. It lives in common/ so that every server
 * part (the store's group commit, the token pool, the HTTP layer) may feed
 * it without calling upwards. */
#ifndef RSIGN_METRICS_H
#define RSIGN_METRICS_H
#include <stddef.h>
#include "rsign/buf.h"

#define RS_METRICS_MAX_SERIES 1024
#define RS_METRICS_MAX_BUCKETS 16
#define RS_METRICS_MAX_FAMILIES 32
#define RS_METRICS_LABELS_MAX 320 /* rendered {a="x",...} of one series */

typedef enum { RS_METRIC_COUNTER, RS_METRIC_GAUGE, RS_METRIC_HISTOGRAM } rs_metric_type;

typedef struct {
	const char *name;
	const char *help;
	rs_metric_type type;
	const double *bounds; /* histograms: ascending upper bounds, without +Inf */
	size_t nbounds;	      /* at most RS_METRICS_MAX_BUCKETS */
} rs_metric_family;

/* The families rsignd feeds as it runs, in one place (metrics.c); the
 * values read at scrape time are written by server/api/api_metrics.c.
 *   rsign_sign_total{signer,algorithm,status}       counter
 *   rsign_sign_duration_seconds{phase}              histogram, total|token|commit
 *   rsign_history_commit_batch_size                 histogram, records per commit
 *   rsign_http_requests_total{route,code}           counter */
extern const rs_metric_family rs_m_sign_total, rs_m_sign_duration, rs_m_commit_batch,
	rs_m_http_requests, rs_m_timestamp_total;

/* Lists the family in every rendering, even before its first sample. */
void rs_metric_declare(const rs_metric_family *f);
/* labels: name, value pairs ended by NULL (NULL itself = no labels).
 * Counters add v, gauges are set to v, histograms observe v. */
void rs_metric_add(const rs_metric_family *f, double v, const char *const *labels);
void rs_metric_set(const rs_metric_family *f, double v, const char *const *labels);
void rs_metric_observe(const rs_metric_family *f, double v, const char *const *labels);

/* Appends every declared family, HELP and TYPE first, then its series. */
void rs_metrics_render(rs_buf *out);
/* For values read at scrape time: the HELP/TYPE lines, and one sample. */
void rs_metrics_write_header(rs_buf *out, const char *name, const char *help, rs_metric_type type);
void rs_metrics_write_sample(rs_buf *out, const char *name, const char *const *labels, double v);
/* {a="x",b="y"} with values escaped per the format (\\, \", \n); "" for
 * no labels. -1 when it does not fit in outlen. */
int rs_metrics_labels(const char *const *labels, char *out, size_t outlen);
/* Forgets every series (tests). */
void rs_metrics_reset(void);

#endif
