/* Unit tests for the metrics registry of common/metrics.c: label escaping
 * per the text format 0.0.4, counters by label set, cumulative histogram
 * buckets with +Inf == _count, and the bound on the number of series. */
#include <stdio.h>
#include <string.h>

#include "rsign/metrics.h"
#include "tap.h"

static const double bounds[] = {1, 2, 4};
static const rs_metric_family hist = {"t_batch", "a histogram", RS_METRIC_HISTOGRAM, bounds, 3};
static const double fractions[] = {0.0005, 0.0025, 0.1};
static const rs_metric_family secs = {"t_seconds", "seconds", RS_METRIC_HISTOGRAM, fractions, 3};
static const rs_metric_family cnt = {"t_total", "a counter\nwith \\ in help", RS_METRIC_COUNTER,
				     NULL, 0};

static const char *render(rs_buf *b)
{
	rs_buf_free(b);
	rs_buf_init(b, 1 << 20);
	rs_metrics_render(b);
	return rs_buf_str(b);
}

static void labels_are_escaped(void)
{
	char out[128];
	const char *l[] = {"signer", "a\"b\\c\nd", "code", "200", NULL};
	ok(rs_metrics_labels(l, out, sizeof(out)) == 0 &&
		   strcmp(out, "{signer=\"a\\\"b\\\\c\\nd\",code=\"200\"}") == 0,
	   "label_values_escape_quote_backslash_newline");
	ok(rs_metrics_labels(NULL, out, sizeof(out)) == 0 && out[0] == '\0',
	   "no_labels_render_as_nothing");
	ok(rs_metrics_labels(l, out, 12) == -1, "labels_too_long_for_the_buffer_are_refused");
}

static void counters_and_help(void)
{
	rs_buf b = {0};
	const char *a[] = {"route", "/x", NULL}, *c[] = {"route", "unmatched", NULL};
	rs_metrics_reset();
	rs_metric_add(&cnt, 1, a);
	rs_metric_add(&cnt, 2, a);
	rs_metric_add(&cnt, 1, c);
	const char *s = render(&b);
	ok(strstr(s, "t_total{route=\"/x\"} 3\n") && strstr(s, "t_total{route=\"unmatched\"} 1\n"),
	   "counters_add_per_label_set");
	ok(strstr(s, "# HELP t_total a counter\\nwith \\\\ in help\n# TYPE t_total counter\n") !=
		   NULL,
	   "help_escapes_newline_and_backslash_then_type");
	rs_buf_free(&b);
}

static void histogram_is_cumulative(void)
{
	rs_buf b = {0};
	const char *l[] = {"phase", "total", NULL};
	rs_metrics_reset();
	rs_metric_observe(&hist, 1, l);	  /* le 1 (bounds are inclusive) */
	rs_metric_observe(&hist, 3, l);	  /* le 4 */
	rs_metric_observe(&hist, 100, l); /* +Inf only */
	rs_metric_observe(&hist, 0.5, NULL);
	const char *s = render(&b);
	ok(strstr(s, "t_batch_bucket{phase=\"total\",le=\"1\"} 1\n"
		     "t_batch_bucket{phase=\"total\",le=\"2\"} 1\n"
		     "t_batch_bucket{phase=\"total\",le=\"4\"} 2\n"
		     "t_batch_bucket{phase=\"total\",le=\"+Inf\"} 3\n"
		     "t_batch_sum{phase=\"total\"} 104\n"
		     "t_batch_count{phase=\"total\"} 3\n") != NULL,
	   "histogram_buckets_cumulative_inf_equals_count");
	ok(strstr(s, "t_batch_bucket{le=\"1\"} 1\n") && strstr(s, "t_batch_count 1\n"),
	   "histogram_without_labels_has_le_alone");
	rs_buf_free(&b);
}

static void bucket_bounds_as_written(void)
{
	rs_buf b = {0};
	rs_metrics_reset();
	rs_metric_observe(&secs, 0.001, NULL);
	const char *s = render(&b);
	ok(strstr(s, "t_seconds_bucket{le=\"0.0005\"} 0\n"
		     "t_seconds_bucket{le=\"0.0025\"} 1\n"
		     "t_seconds_bucket{le=\"0.1\"} 1\n") != NULL,
	   "bucket_bounds_print_as_written_for_le_selectors");
	rs_buf_free(&b);
}

static void series_are_bounded(void)
{
	rs_buf b = {0};
	char v[16];
	rs_metrics_reset();
	for (int i = 0; i < RS_METRICS_MAX_SERIES + 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		const char *l[] = {"n", v, NULL};
		rs_metric_add(&cnt, 1, l);
	}
	const char *s = render(&b);
	ok(strstr(s, "rsign_metrics_series_dropped_total 5\n") != NULL,
	   "series_past_the_bound_are_dropped_and_counted");
	rs_buf_free(&b);
}

static void declared_family_listed_before_samples(void)
{
	rs_buf b = {0};
	rs_metrics_reset();
	rs_metric_declare(&hist);
	const char *s = render(&b);
	ok(strstr(s, "# TYPE t_batch histogram\n") && !strstr(s, "t_batch_count"),
	   "declared_family_has_help_and_type_without_samples");
	rs_buf_free(&b);
}

int main(void)
{
	plan(10);
	labels_are_escaped();
	counters_and_help();
	histogram_is_cumulative();
	bucket_bounds_as_written();
	series_are_bounded();
	declared_family_listed_before_samples();
	return tap_done();
}
