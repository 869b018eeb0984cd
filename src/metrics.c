#include "pushgate/metrics.h"
#include "pushgate/common.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>

/* Seconds; chosen around what a proxy's requests take: a cached page in milliseconds, a
 * backend's think time in tenths, a download in seconds. */
/* In microseconds, what is observed (compared without conversions); rendered in seconds. */
static const uint64_t bucket_bounds_us[PG_METRIC_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};

static const char *const protocol_labels[PG_METRIC_PROTOCOLS] = {"http/1.1", "h2"};
static const char *const error_labels[PG_UPSTREAM_ERR_KINDS] = {"connect", "timeout", "reset",
                                                                "malformed", "saturated"};
static const char *const hint_labels[PG_HINT_SOURCES] = {"learned", "upstream"};
static const char *const lookup_labels[PG_LOOKUP_RESULTS] = {"hit", "miss"};

void pg_histogram_observe(struct pg_histogram *h, uint64_t us)
{
    size_t b = 0;
    while (b < PG_METRIC_BUCKETS && us > bucket_bounds_us[b])
        b++;
    pg_count(&h->buckets[b], 1);
    pg_count(&h->count, 1);
    pg_count(&h->sum_us, us);
}

/* Sums one counter over the workers; offset is its place in struct pg_counters. */
static uint64_t sum(const struct pg_counters *const *counters, size_t count, size_t offset)
{
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += pg_counter_read((const pg_counter *)((const char *)counters[i] + offset));
    return total;
}

#define SUM(field) sum(counters, count, offsetof(struct pg_counters, field))

static int head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0
               ? PG_ERR_NOMEM
               : PG_OK;
}

static int sample(struct evbuffer *out, const char *name, const char *labels, uint64_t value)
{
    return evbuffer_add_printf(out, "%s%s %" PRIu64 "\n", name, labels, value) < 0 ? PG_ERR_NOMEM
                                                                                   : PG_OK;
}

/* A counter family with one label taking the given values; field_at gives each offset. */
static int labelled(struct evbuffer *out, const char *name, const char *type, const char *help,
                    const char *label, const char *const *values, size_t n, size_t first_offset,
                    const struct pg_counters *const *counters, size_t count)
{
    int rv = head(out, name, type, help);
    for (size_t v = 0; v < n && rv == PG_OK; v++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "{%s=\"%s\"}", label, values[v]);
        rv = sample(out, name, labels, sum(counters, count, first_offset + v * sizeof(pg_counter)));
    }
    return rv;
}

static int histogram(struct evbuffer *out, const char *name, const char *help, size_t offset,
                     const struct pg_counters *const *counters, size_t count)
{
    int rv = head(out, name, "histogram", help);
    uint64_t cumulative = 0;
    size_t buckets = offset + offsetof(struct pg_histogram, buckets);
    for (size_t b = 0; b <= PG_METRIC_BUCKETS && rv == PG_OK; b++) {
        cumulative += sum(counters, count, buckets + b * sizeof(pg_counter));
        char labels[48];
        if (b < PG_METRIC_BUCKETS)
            snprintf(labels, sizeof(labels), "{le=\"%g\"}", (double)bucket_bounds_us[b] / 1e6);
        else
            snprintf(labels, sizeof(labels), "{le=\"+Inf\"}");
        char bucket_name[128];
        snprintf(bucket_name, sizeof(bucket_name), "%s_bucket", name);
        rv = sample(out, bucket_name, labels, cumulative);
    }
    uint64_t sum_us = sum(counters, count, offset + offsetof(struct pg_histogram, sum_us));
    if (rv == PG_OK &&
        evbuffer_add_printf(
            out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, (double)sum_us / 1e6, name,
            sum(counters, count, offset + offsetof(struct pg_histogram, count))) < 0)
        rv = PG_ERR_NOMEM;
    return rv;
}

static int connections(struct evbuffer *out, const struct pg_counters *const *counters,
                       size_t count)
{
    int rv = head(out, "pushgate_connections_open", "gauge", "Client connections open now.");
    for (size_t p = 0; p < PG_METRIC_PROTOCOLS && rv == PG_OK; p++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "{protocol=\"%s\"}", protocol_labels[p]);
        uint64_t total = SUM(connections_total[p]), closed = SUM(connections_closed[p]);
        rv = sample(out, "pushgate_connections_open", labels, total - closed);
    }
    if (rv == PG_OK)
        rv = labelled(out, "pushgate_connections_total", "counter",
                      "Client connections accepted, by the protocol they chose.", "protocol",
                      protocol_labels, PG_METRIC_PROTOCOLS,
                      offsetof(struct pg_counters, connections_total), counters, count);
    return rv;
}

static int requests(struct evbuffer *out, const struct pg_counters *const *counters, size_t count)
{
    int rv = head(out, "pushgate_requests_total", "counter",
                  "Requests answered (pushed streams included), by protocol and status class.");
    for (size_t p = 0; p < PG_METRIC_PROTOCOLS && rv == PG_OK; p++) {
        for (size_t c = 0; c < 5 && rv == PG_OK; c++) {
            char labels[64];
            snprintf(labels, sizeof(labels), "{protocol=\"%s\",code=\"%zuxx\"}", protocol_labels[p],
                     c + 1);
            rv = sample(out, "pushgate_requests_total", labels, SUM(requests[p][c]));
        }
    }
    return rv;
}

struct plain_counter {
    const char *name, *help;
    size_t offset;
};

static const struct plain_counter plain[] = {
    {"pushgate_pushes_promised_total", "PUSH_PROMISEs sent.",
     offsetof(struct pg_counters, pushes_promised)},
    {"pushgate_pushes_completed_total", "Pushed responses delivered whole.",
     offsetof(struct pg_counters, pushes_completed)},
    {"pushgate_pushes_cancelled_total", "Pushed streams the client reset: wasted pushes.",
     offsetof(struct pg_counters, pushes_cancelled)},
    {"pushgate_pushed_bytes_total", "Body bytes of pushed responses.",
     offsetof(struct pg_counters, pushed_bytes)},
    {"pushgate_hinted_then_failed_total",
     "Requests that got our 103, then a final status other than 2xx or 304: wasted hints.",
     offsetof(struct pg_counters, hinted_then_failed)},
    {"pushgate_access_log_dropped_total", "Access-log lines dropped (slow or full output).",
     offsetof(struct pg_counters, access_log_dropped)},
};

int pg_metrics_render(const struct pg_counters *const *counters, size_t count, bool draining,
                      struct evbuffer *out)
{
    int rv = connections(out, counters, count);
    rv = rv ? rv : requests(out, counters, count);
    rv = rv ? rv
            : histogram(out, "pushgate_request_duration_seconds",
                        "From a request's head to the end of its response.",
                        offsetof(struct pg_counters, request_duration), counters, count);
    rv = rv ? rv
            : histogram(out, "pushgate_upstream_response_seconds",
                        "From the start of the upstream exchange to the upstream's final head.",
                        offsetof(struct pg_counters, upstream_response), counters, count);
    rv = rv ? rv
            : labelled(out, "pushgate_upstream_errors_total", "counter",
                       "Requests the upstream did not answer, by why.", "kind", error_labels,
                       PG_UPSTREAM_ERR_KINDS, offsetof(struct pg_counters, upstream_errors),
                       counters, count);
    rv = rv ? rv
            : labelled(out, "pushgate_early_hints_sent_total", "counter",
                       "103 Early Hints sent: ours from the learned table, or the upstream's.",
                       "source", hint_labels, PG_HINT_SOURCES,
                       offsetof(struct pg_counters, early_hints_sent), counters, count);
    rv = rv ? rv
            : labelled(out, "pushgate_learned_lookups_total", "counter",
                       "Learned-table lookups for requests that may be pushed or hinted.", "result",
                       lookup_labels, PG_LOOKUP_RESULTS,
                       offsetof(struct pg_counters, learned_lookups), counters, count);
    for (size_t i = 0; i < PG_ARRAY_LEN(plain) && rv == PG_OK; i++) {
        rv = head(out, plain[i].name, "counter", plain[i].help);
        rv = rv ? rv : sample(out, plain[i].name, "", sum(counters, count, plain[i].offset));
    }
    rv = rv ? rv : head(out, "pushgate_draining", "gauge", "1 once SIGTERM started the drain.");
    return rv ? rv : sample(out, "pushgate_draining", "", draining);
}
