/* Private to the HTTP/2 frontend files (h2_session.c, h2_output.c, h2_push.c).
 *
 * Ownership: a connection owns its pg_h2 (through the protocol table); pg_h2 owns its streams;
 * a stream owns its field references and its struct pg_request (which owns the upstream
 * exchange and the body buffers). Streams are created when a request's HEADERS begin or when
 * we submit a PUSH_PROMISE, and freed in on_stream_close (or with the session). Upstream work
 * runs only in h2_flush, after nghttp2_session_mem_recv returned, never inside a callback. */
#ifndef PUSHGATE_H2_INTERNAL_H
#define PUSHGATE_H2_INTERNAL_H

#include "pushgate/abuse.h"
#include "pushgate/h2.h"
#include "pushgate/proxy.h"
#include "pushgate/push.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* Request side: the stream window bounds what one upload buffers before the upstream takes it. */
#define H2_STREAM_RECV_WINDOW (256 * 1024)
#define H2_CONN_RECV_WINDOW (1024 * 1024)

#define H2_INLINE_FIELDS 8 /* regular request fields a stream holds without allocating */

/* A request stream (client-initiated, or promised by us). */
struct h2_stream {
    struct pg_request req; /* the core's request; its head views point into the rcbufs below */
    struct pg_h2 *h2;
    int32_t id;
    nghttp2_rcbuf *method, *path, *scheme, *authority; /* pseudo-header fields, referenced;
                                                          nghttp2 NUL-terminates rcbufs */
    nghttp2_rcbuf **refs;     /* name, value, name, value... of the regular fields */
    struct pg_header *fields; /* views of refs */
    size_t field_count;
    /* Where refs and fields point while a request has few fields (most do): no allocation
     * per request for them. More move to the heap (keep_field). */
    nghttp2_rcbuf *inline_refs[2 * H2_INLINE_FIELDS];
    struct pg_header inline_fields[H2_INLINE_FIELDS];
    size_t field_bytes;
    bool too_large;     /* header list over our bounds: answered 431 */
    bool resp_deferred; /* nghttp2 waits on our data source */
    TAILQ_ENTRY(h2_stream) link;
};

struct pg_h2 {
    struct pg_proxy_conn pc; /* the core's per-connection state */
    const struct pg_conn_env *env;
    nghttp2_session *session;
    TAILQ_HEAD(, h2_stream) streams; /* every live stream */
    bool client_ready;               /* the client's first SETTINGS arrived */
    bool settings_acked;             /* the client acknowledged our SETTINGS */
    struct pg_abuse_budget budget;   /* see abuse.h */
    bool calm;                       /* budget exhausted: GOAWAY(ENHANCE_YOUR_CALM) */
    bool client_goaway;              /* the client sent GOAWAY: no more promises */
    struct event *drain_ev;          /* draining: the final GOAWAY follows the notice */
};

static inline struct h2_stream *h2_stream_of_req(const struct pg_request *req)
{
    return (struct h2_stream *)req; /* req is the first member */
}

/* h2_stream.c */
struct h2_stream *h2_stream_new(struct pg_h2 *h2);
/* Frees the stream; with teardown (the session goes too) nothing is handed back to nghttp2
 * and a running exchange is cancelled rather than detached. */
void h2_stream_release(struct h2_stream *st, bool teardown);
void h2_stream_free(struct h2_stream *st);

/* h2_output.c: nghttp2's send side, and the core's frontend operations that answer. */
void h2_set_send_callbacks(nghttp2_session_callbacks *cbs);
int h2_submit_head(struct pg_request *req, const struct pg_response *resp);
int h2_submit_1xx(struct pg_request *req, int status, const struct pg_header *fields, size_t count);
void h2_body_ready(struct pg_request *req);
void h2_reset(struct pg_request *req, enum pg_reset_reason why);
void h2_consume(struct pg_request *req, size_t n);
void h2_wake(struct pg_request *req);

/* h2_push.c */
bool h2_push_allowed(const struct pg_request *req);
int h2_push(struct pg_request *parent, struct pg_pushed_request *pushed);

#define H2_NV(n, nlen, v, vlen)                                                                    \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), (nlen), (vlen), NGHTTP2_NV_FLAG_NONE                       \
    }

#endif
