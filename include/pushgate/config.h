/* Command-line flags parsed into a read-only configuration.
 *
 * Ownership: main owns the one struct pg_config (static storage in main's frame); after
 * pg_config_parse returns it is never written again, so every worker reads it without locks.
 * The strings it holds are copies; nothing points into argv. */
#ifndef PUSHGATE_CONFIG_H
#define PUSHGATE_CONFIG_H

#include "pushgate/log.h"

#include <stdbool.h>
#include <stdio.h>

#define PG_MAX_LISTENERS 16
#define PG_MAX_WORKERS 64

struct pg_listen_addr {
    char host[256]; /* numeric or name, without IPv6 brackets */
    char port[8];   /* decimal; "0" asks the kernel for a free port */
};

struct pg_config {
    struct pg_listen_addr listen[PG_MAX_LISTENERS];
    size_t listen_count;
    char tls_cert[4096]; /* empty: cleartext listeners (HTTP/1.x and h2c) */
    char tls_key[4096];
    char upstream_origin[300]; /* "http://host:port", what libcurl connects to */
    char upstream_host[256];   /* without brackets */
    unsigned upstream_port;
    bool demo;        /* start the built-in demo upstream and proxy to it */
    unsigned workers; /* event-loop threads */
    unsigned upstream_connect_timeout_ms;
    unsigned upstream_timeout_ms; /* wait for the response head, and longest silence in a body */
    unsigned upstream_max_connections;    /* libcurl's pool bound for the upstream host */
    unsigned upstream_queue;              /* transfers that may wait for a connection, per worker */
    unsigned max_concurrent_streams;      /* advertised SETTINGS_MAX_CONCURRENT_STREAMS */
    unsigned max_connections;             /* client connections over all workers */
    unsigned max_upstream_per_connection; /* running upstream transfers per client connection */
    unsigned response_buffer_kib;         /* response bytes held per client connection, shared */
    unsigned idle_timeout_ms;             /* no open stream for this long: GOAWAY and close */
    unsigned handshake_timeout_ms;        /* TLS handshake + client preface */
    unsigned write_timeout_ms;            /* output pending without progress for this long */
    unsigned request_timeout_ms;          /* silence inside an incomplete request */
    unsigned abuse_budget;                /* glitch tokens per connection (see h2.c spend_glitch) */
    unsigned abuse_refill;                /* tokens returned per second */
    enum pg_log_level log_level;
    /* Server push (Link rel=preload). */
    bool push_enabled;
    bool push_copy_cookies; /* copy cookie/authorization into pushed requests */
    unsigned max_pushes_per_response;
    unsigned max_concurrent_pushes; /* running pushed fetches per connection */
    bool early_hints;               /* send our own 103 to clients that disabled push */
    bool early_hints_http1;         /* 103s to HTTP/1.1 clients too (off: they may mishandle 1xx) */
    bool push_learn;                /* remember each page's preload targets */
    unsigned push_learn_size;       /* pages remembered per worker */
    unsigned push_learn_ttl_ms;
    bool push_learn_private; /* learn from private responses / authorized requests too */
    bool push_cache_digest;  /* the pg_pushed cookie */
    unsigned push_cache_digest_max_age_ms;
    /* Operations. */
    unsigned shutdown_timeout_ms;         /* longest drain after SIGTERM/SIGINT */
    bool metrics_enabled;                 /* --metrics-listen given */
    struct pg_listen_addr metrics_listen; /* /metrics, /healthz, /readyz */
    char access_log[4096];                /* "" off, "-" stdout */
    bool access_log_json;                 /* json lines, else combined */
    bool check_only;                      /* --check: validate and exit */
};

enum pg_config_action {
    PG_CONFIG_RUN = 0,     /* configuration complete: start the proxy */
    PG_CONFIG_HELP = 1,    /* --help was given */
    PG_CONFIG_VERSION = 2, /* --version was given */
};

/* Parses argv into cfg (defaults first). Returns PG_OK with what to do next in *action, or
 * PG_ERR_INVALID with a one-line description of what is wrong written to err (*action is then
 * left alone). Uses getopt_long; resets its state, so it may be called repeatedly (unit tests
 * do). */
int pg_config_parse(struct pg_config *cfg, int argc, char **argv, enum pg_config_action *action,
                    char *err, size_t err_len);

/* Parses "250ms", "5s", "2m", "1h" or a bare number of seconds into milliseconds. */
bool pg_config_parse_duration(const char *text, unsigned *ms);

/* Writes the manual-style --help text. */
void pg_config_usage(FILE *out);

#define PG_VERSION "0.1.0"

#endif
