/* Counters for operators: per worker, written only by the worker's thread without locks (a
 * relaxed load and store, no locked instruction), summed by the metrics listener when it is
 * scraped; and their rendering in the Prometheus text format 0.0.4.
 *
 * Ownership: each worker owns one struct pg_counters (zeroed at start, never freed before the
 * metrics listener stops); the metrics listener only reads them. */
#ifndef PUSHGATE_METRICS_H
#define PUSHGATE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* The protocols connections and requests are counted by (label "protocol"). */
enum pg_metric_protocol {
    PG_METRIC_HTTP1 = 0, /* HTTP/1.0 and HTTP/1.1 */
    PG_METRIC_HTTP2,
    PG_METRIC_PROTOCOLS
};

/* Why a request did not get the upstream's answer (label "kind"). */
enum pg_upstream_error {
    PG_UPSTREAM_ERR_CONNECT = 0, /* refused, unreachable: 502 */
    PG_UPSTREAM_ERR_TIMEOUT,     /* 504, or a body that went silent */
    PG_UPSTREAM_ERR_RESET,       /* the upstream broke off mid-response */
    PG_UPSTREAM_ERR_MALFORMED,   /* an unusable response head: 502 */
    PG_UPSTREAM_ERR_SATURATED,   /* every connection busy and the queue full: 503 */
    PG_UPSTREAM_ERR_KINDS
};

enum pg_hint_source { PG_HINT_LEARNED = 0, PG_HINT_UPSTREAM, PG_HINT_SOURCES };
enum pg_lookup_result { PG_LOOKUP_HIT = 0, PG_LOOKUP_MISS, PG_LOOKUP_RESULTS };

/* Upper bounds of the duration histograms, in seconds; +Inf is implied. */
#define PG_METRIC_BUCKETS 12

typedef _Atomic uint64_t pg_counter;

struct pg_histogram {
    pg_counter buckets[PG_METRIC_BUCKETS + 1]; /* per bucket (not cumulative); the last: +Inf */
    pg_counter count;
    pg_counter sum_us;
};

struct pg_counters {
    pg_counter connections_total[PG_METRIC_PROTOCOLS];
    pg_counter connections_closed[PG_METRIC_PROTOCOLS]; /* open = total - closed */
    pg_counter requests[PG_METRIC_PROTOCOLS][5];        /* by status class 1xx..5xx */
    struct pg_histogram request_duration;               /* first byte of the request to its end */
    struct pg_histogram upstream_response;              /* exchange start to the final head */
    pg_counter upstream_errors[PG_UPSTREAM_ERR_KINDS];
    pg_counter pushes_promised;
    pg_counter pushes_completed;
    pg_counter pushes_cancelled; /* the client reset a promise: wasted */
    pg_counter pushed_bytes;
    pg_counter early_hints_sent[PG_HINT_SOURCES];
    pg_counter learned_lookups[PG_LOOKUP_RESULTS];
    pg_counter hinted_then_failed; /* our 103 went out, then the final status was not 2xx */
    pg_counter access_log_dropped; /* lines the access log could not write */
};

/* Adds n; only the owning worker's thread may call it. */
static inline void pg_count(pg_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t pg_counter_read(const pg_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void pg_histogram_observe(struct pg_histogram *h, uint64_t us);

/* Appends the exposition of the sum of counters[0..count) to out (text format 0.0.4: HELP,
 * TYPE, one sample per line). Returns 0 or PG_ERR_NOMEM. */
int pg_metrics_render(const struct pg_counters *const *counters, size_t count, bool draining,
                      struct evbuffer *out);

#endif
