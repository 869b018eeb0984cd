/* The Prometheus exposition: sums over workers, gauges from totals, cumulative histograms. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/metrics.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static char *render(const struct pg_counters *const *c, size_t n, bool draining)
{
    struct evbuffer *out = evbuffer_new();
    CHECK(pg_metrics_render(c, n, draining, out) == PG_OK, "render");
    size_t len = evbuffer_get_length(out);
    char *text = malloc(len + 1);
    evbuffer_remove(out, text, len);
    text[len] = '\0';
    evbuffer_free(out);
    return text;
}

struct expect {
    const char *line; /* a whole sample line */
};

static const struct expect expected[] = {
    {"pushgate_connections_open{protocol=\"http/1.1\"} 3\n"},
    {"pushgate_connections_open{protocol=\"h2\"} 0\n"},
    {"pushgate_connections_total{protocol=\"http/1.1\"} 5\n"},
    {"pushgate_requests_total{protocol=\"h2\",code=\"2xx\"} 7\n"},
    {"pushgate_requests_total{protocol=\"http/1.1\",code=\"5xx\"} 1\n"},
    {"pushgate_request_duration_seconds_bucket{le=\"0.001\"} 1\n"},
    {"pushgate_request_duration_seconds_bucket{le=\"0.5\"} 2\n"},
    {"pushgate_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"},
    {"pushgate_request_duration_seconds_sum 20.300500\n"},
    {"pushgate_request_duration_seconds_count 3\n"},
    {"pushgate_upstream_errors_total{kind=\"saturated\"} 4\n"},
    {"pushgate_upstream_errors_total{kind=\"connect\"} 0\n"},
    {"pushgate_pushes_promised_total 9\n"},
    {"pushgate_pushes_cancelled_total 2\n"},
    {"pushgate_early_hints_sent_total{source=\"upstream\"} 1\n"},
    {"pushgate_learned_lookups_total{result=\"miss\"} 6\n"},
    {"pushgate_access_log_dropped_total 11\n"},
    {"pushgate_draining 1\n"},
    {"# TYPE pushgate_request_duration_seconds histogram\n"},
    {"# TYPE pushgate_connections_open gauge\n"},
    {"# TYPE pushgate_pushes_promised_total counter\n"},
};

/* A value on a bucket's bound is in that bucket (le: at most), a microsecond more is in the
 * next: the bounds observed against (microseconds) are the ones rendered (seconds). */
static void test_bucket_bounds(void)
{
    static const char *const le[PG_METRIC_BUCKETS + 1] = {
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
        "0.25",  "0.5",    "1",     "2.5",  "10",    "+Inf"};
    static const uint64_t bound_us[PG_METRIC_BUCKETS] = {
        1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};
    for (size_t i = 0; i < PG_METRIC_BUCKETS; i++) {
        static struct pg_counters c;
        memset(&c, 0, sizeof(c));
        pg_histogram_observe(&c.request_duration, bound_us[i]);
        pg_histogram_observe(&c.request_duration, bound_us[i] + 1);
        const struct pg_counters *one[] = {&c};
        char *text = render(one, 1, false);
        char at[96], next[96];
        snprintf(at, sizeof(at), "pushgate_request_duration_seconds_bucket{le=\"%s\"} 1\n", le[i]);
        snprintf(next, sizeof(next), "pushgate_request_duration_seconds_bucket{le=\"%s\"} 2\n",
                 le[i + 1]);
        CHECK(strstr(text, at) && strstr(text, next), "%s s: on the bound, and just past it",
              le[i]);
        free(text);
    }
}

int main(void)
{
    test_bucket_bounds();
    static struct pg_counters a, b; /* zeroed */
    pg_count(&a.connections_total[PG_METRIC_HTTP1], 2);
    pg_count(&b.connections_total[PG_METRIC_HTTP1], 3);
    pg_count(&b.connections_closed[PG_METRIC_HTTP1], 2);
    pg_count(&a.requests[PG_METRIC_HTTP2][1], 4);
    pg_count(&b.requests[PG_METRIC_HTTP2][1], 3);
    pg_count(&b.requests[PG_METRIC_HTTP1][4], 1);
    pg_histogram_observe(&a.request_duration, 500);      /* 0.5 ms: first bucket */
    pg_histogram_observe(&b.request_duration, 300000);   /* 0.3 s */
    pg_histogram_observe(&b.request_duration, 20000000); /* 20 s: only +Inf */
    pg_count(&a.upstream_errors[PG_UPSTREAM_ERR_SATURATED], 4);
    pg_count(&a.pushes_promised, 4);
    pg_count(&b.pushes_promised, 5);
    pg_count(&b.pushes_cancelled, 2);
    pg_count(&a.early_hints_sent[PG_HINT_UPSTREAM], 1);
    pg_count(&b.learned_lookups[PG_LOOKUP_MISS], 6);
    pg_count(&a.access_log_dropped, 11);
    const struct pg_counters *both[] = {&a, &b};
    char *text = render(both, 2, true);
    for (size_t i = 0; i < PG_ARRAY_LEN(expected); i++)
        CHECK(strstr(text, expected[i].line), "missing: %s", expected[i].line);
    /* Every family has HELP and TYPE once; no sample without a family. */
    size_t helps = 0, types = 0;
    for (const char *p = text; (p = strstr(p, "# HELP ")); p++)
        helps++;
    for (const char *p = text; (p = strstr(p, "# TYPE ")); p++)
        types++;
    CHECK(helps == types && helps == 15, "%zu HELP, %zu TYPE", helps, types);
    free(text);
    const struct pg_counters *none[] = {&a};
    text = render(none, 0, false);
    CHECK(strstr(text, "pushgate_draining 0\n"), "no workers, not draining");
    CHECK(strstr(text, "pushgate_pushes_promised_total 0\n"), "zero sums");
    free(text);
    return check_report("test_metrics");
}
