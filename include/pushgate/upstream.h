/* The HTTP/1.1 upstream: one libcurl multi handle per worker, driven by the worker's libevent
 * loop through curl_multi_socket_action, and exchanges (one request/response each) on it.
 *
 * Ownership: the worker creates and frees its struct pg_upstream. An exchange is created by
 * pg_exchange_start and freed by the upstream right after its on_done callback returns, or by
 * pg_exchange_cancel/pg_exchange_detach; the caller must drop its pointer at those moments.
 * All callbacks run on the worker's thread, from inside libcurl (on_head, on_body, read_body)
 * or from the loop (on_done); none of them may cancel their own exchange. */
#ifndef PUSHGATE_UPSTREAM_H
#define PUSHGATE_UPSTREAM_H

#include "pushgate/config.h"
#include "pushgate/headers.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct pg_upstream;
struct pg_exchange;

enum pg_exchange_result {
    PG_EXCHANGE_OK = 0,         /* complete response received */
    PG_EXCHANGE_CONNECT_FAILED, /* refused, unreachable, DNS: 502 */
    PG_EXCHANGE_TIMEOUT,        /* connect or response timeout: 504 */
    PG_EXCHANGE_BAD_RESPONSE,   /* unparsable or forbidden response head: 502 */
    PG_EXCHANGE_BROKEN,         /* reset or truncated mid-response */
};

enum pg_body_verdict {
    PG_BODY_TAKEN, /* the bytes are the handler's now */
    PG_BODY_LATER, /* refused for now: delivered again after pg_exchange_resume_response */
    PG_BODY_FAILED /* cannot keep them (out of memory): the transfer ends as broken */
};

/* Bytes per recv(2) from the upstream, so the most one on_body call delivers. libcurl polls the
 * socket after every read: its default of 16 KiB meant about 130 syscalls per MiB. Four times
 * the DATA payload that h2.c keeps per 16 KiB chain, so that a full read becomes four full
 * frames. */
#define PG_UPSTREAM_READ_SIZE (4 * (16384 - 128 - 9))
/* ...and one piece, for a transfer that shares its client connection with many others: 320
 * transfers in flight would otherwise hold 20 MiB of receive buffers. */
#define PG_UPSTREAM_READ_SIZE_SHARED (16384 - 128 - 9)

/* Returned by read_body when no request bytes are buffered yet. */
#define PG_EXCHANGE_READ_PAUSE ((ssize_t)-1)

struct pg_exchange_handler {
    /* A complete response head: 1xx (103 only) or final. Views are valid during the call. */
    void (*on_head)(void *ud, const struct pg_response_head *head);
    /* Body bytes of the final response. */
    enum pg_body_verdict (*on_body)(void *ud, const char *data, size_t len);
    /* Copies up to len request body bytes into buf. Returns the count, 0 at the end of the
     * body, or PG_EXCHANGE_READ_PAUSE (then call pg_exchange_resume_request when more came). */
    ssize_t (*read_body)(void *ud, char *buf, size_t len);
    /* The exchange ended; it is freed when this returns. */
    void (*on_done)(void *ud, enum pg_exchange_result result);
};

struct pg_exchange_request {
    const char *method;           /* NUL-terminated */
    const char *target;           /* request-target, sent exactly as is */
    const struct pg_lines *lines; /* from pg_headers_build_upstream: the Host line at least */
    bool has_body;
    long long content_length; /* -1: unknown, sent chunked */
    size_t read_size;         /* libcurl's receive buffer for it; 0: PG_UPSTREAM_READ_SIZE */
};

/* Returns NULL on failure. */
struct pg_upstream *pg_upstream_new(struct event_base *base, const struct pg_config *cfg);
/* Cancels every remaining exchange (without callbacks) and frees everything. */
void pg_upstream_free(struct pg_upstream *up);

/* True when every upstream connection is busy and the wait queue is full: answer 503 rather
 * than queue without bound. */
bool pg_upstream_saturated(const struct pg_upstream *up);

/* Starts a transfer. Returns NULL when libcurl refuses (no callbacks then). The header lines
 * are copied; req need not outlive the call. */
struct pg_exchange *pg_exchange_start(struct pg_upstream *up, const struct pg_exchange_request *req,
                                      const struct pg_exchange_handler *handler, void *ud);
/* Aborts at once: the upstream connection is closed, not reused. No callback follows. */
void pg_exchange_cancel(struct pg_exchange *ex);
/* Lets a response that carries no body finish so its connection returns to the pool;
 * no callback follows. Cancels instead when a body may still come. */
void pg_exchange_detach(struct pg_exchange *ex);
void pg_exchange_resume_response(struct pg_exchange *ex);
void pg_exchange_resume_request(struct pg_exchange *ex);
bool pg_exchange_response_paused(const struct pg_exchange *ex);
bool pg_exchange_request_paused(const struct pg_exchange *ex);

#endif
