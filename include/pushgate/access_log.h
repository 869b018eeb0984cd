/* The access log: one line per request and per pushed stream, in the combined format or as
 * JSON, written by each worker from its own buffer without ever blocking the event loop.
 *
 * pg_access_log_format is pure (plain data in, a line out) and table-tested. A struct
 * pg_access_log belongs to one worker: created at start, written to on the worker's thread
 * only, flushed every 100 ms by a timer and at free; when its file or pipe cannot take more, the
 * buffer is bounded and lines are dropped and counted, never waited for. Every worker opens the
 * file itself (O_APPEND), so reopening after logrotate is done worker by worker. */
#ifndef PUSHGATE_ACCESS_LOG_H
#define PUSHGATE_ACCESS_LOG_H

#include "pushgate/headers.h"
#include "pushgate/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct pg_access_log;

/* What one line says. Views are borrowed for the call. */
struct pg_access_entry {
    int64_t time_ms;         /* wall clock (Unix ms) when the request head arrived */
    const char *remote_addr; /* textual peer address */
    const char *protocol;    /* "HTTP/1.0", "HTTP/1.1", "HTTP/2.0" */
    bool tls;
    struct pg_header method, authority, path; /* values; empty when the request had none */
    struct pg_header referer, user_agent;     /* values, for the combined format */
    int status;                               /* the final status sent; 499: none (the client
                                                 went away first) */
    uint64_t bytes_sent;                      /* response body bytes */
    uint64_t request_time_us;
    int64_t upstream_time_us;     /* to the upstream's final head; -1: no upstream answer */
    bool pushed;                  /* a pushed stream */
    struct pg_header parent_path; /* for pushed streams: the page that pushed it */
    unsigned hinted;              /* links in our 103 (0: none) */
    bool learned;                 /* the learned table acted on this request */
};

/* The line for entry, with its newline, into out[cap]: JSON (RFC 8259, bytes outside
 * printable ASCII escaped as \u00XX) or combined (Apache's, with rt= and urt= appended, the
 * quoted fields escaped as nginx does). Writes the length to *len. Returns 0 or
 * PG_ERR_TOO_LONG (nothing usable written). */
int pg_access_log_format(const struct pg_access_entry *entry, bool json, char *out, size_t cap,
                         size_t *len);

/* Opens path ("-": this process's standard output) for appending. Returns NULL with errno set
 * on failure. dropped is the worker's counter. */
struct pg_access_log *pg_access_log_open(const char *path, bool json, struct event_base *base,
                                         pg_counter *dropped);
/* Flushes what it can (without blocking), closes and frees. NULL is ignored. */
void pg_access_log_free(struct pg_access_log *log);
/* Buffers one line; drops and counts it when the buffer is full. */
void pg_access_log_write(struct pg_access_log *log, const struct pg_access_entry *entry);
/* Flushes to the old file, then opens the path again (logrotate renamed the old file). */
void pg_access_log_reopen(struct pg_access_log *log);

#endif
