#include "pushgate/h2.h"
#include "pushgate/common.h"
#include "pushgate/conn.h"
#include "pushgate/digest.h"
#include "pushgate/headers.h"
#include "pushgate/learn.h"
#include "pushgate/link.h"
#include "pushgate/log.h"
#include "pushgate/push_policy.h"
#include "pushgate/upstream.h"
#include "pushgate/url.h"
#include "pushgate/worker.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

/* Request side: the stream window bounds what one upload buffers before the upstream takes it. */
#define STREAM_RECV_WINDOW (256 * 1024)
#define CONN_RECV_WINDOW (1024 * 1024)
#define MAX_HEADER_LIST_SIZE (64 * 1024)
#define MAX_REQUEST_FIELDS 128
/* Response side: above the high mark the upstream transfer is paused, below the low mark it
 * resumes. Together with the connection's output bound this caps memory per stream. */
#define RESPONSE_HIGH_WATER (128 * 1024)
#define RESPONSE_LOW_WATER (64 * 1024)
#define TLS_RECORD_PAYLOAD 16384 /* the most plaintext one TLS record carries */
#define SMALL_DATA_COPY 4096     /* smaller DATA payloads are copied, not moved (on_send_data) */
/* Response bytes wait in pieces of at most this many bytes, each in an evbuffer chain of its own
 * with 9 free bytes in front (see append_piece): 16 KiB per chain with libevent's chain header. */
#define PIECE_PAYLOAD (PG_UPSTREAM_READ_SIZE / 4)
/* Link values examined per field: bounds the work a hostile upstream can cause. */
#define MAX_LINKS_PER_FIELD 64
#define MAX_PUSH_PATH 2048
#define MAX_HINT_FIELDS 32 /* Link fields repeated in one 103 */

/* A request field kept as nghttp2's own reference-counted buffers: no copy. */
struct field_ref {
    nghttp2_rcbuf *name;
    nghttp2_rcbuf *value;
};

/* A promised request: pushgate made it up, so it owns its strings (no rcbufs exist). */
struct pushed_request {
    struct pg_lines strings; /* scheme, authority, path, then name, value, ... (NUL-separated) */
    struct pg_header fields[8];
    size_t count;
    struct pg_header scheme, authority, path; /* views into strings (name unused) */
};

/* A request stream (client-initiated, or promised by us). Created when a request's HEADERS
 * begin or when we submit a PUSH_PROMISE; freed in on_stream_close (or with the session).
 * Owns its field references (or pushed_request), body buffers and upstream exchange. */
struct pg_stream {
    struct pg_h2 *h2;
    int32_t id;
    nghttp2_rcbuf *method, *path, *scheme, *authority; /* pseudo-header fields, referenced;
                                                          nghttp2 NUL-terminates rcbufs */
    struct field_ref *fields;
    size_t field_count;
    size_t field_bytes;
    struct pushed_request *push; /* non-NULL for a promised stream */
    char *norm_path;             /* :path with dot-segments removed, when that changed it */
    size_t norm_path_len;
    bool push_counted;          /* counted in h2->running_pushes */
    bool too_large;             /* header list over our bounds: answered 431 */
    bool has_body;              /* HEADERS did not end the stream */
    bool req_end;               /* END_STREAM received */
    bool want_start;            /* request head complete, exchange not yet started */
    bool started;               /* the exchange was started (or answered locally) */
    struct evbuffer *req_body;  /* received DATA not yet handed to libcurl */
    size_t req_unconsumed;      /* bytes received but not yet acknowledged with WINDOW_UPDATE */
    struct pg_exchange *ex;     /* NULL before start and after the upstream finished */
    struct evbuffer *resp_body; /* response bytes waiting for the client's window */
    size_t piece_room;          /* free bytes in resp_body's last piece (0 when it is empty) */
    struct event *stall_ev;     /* while the upstream is paused for this client: its limit */
    struct event *request_ev;   /* while the request is incomplete: its silence limit */
    bool headers_done;          /* the request's header block is complete */
    bool resp_submitted;        /* final response HEADERS submitted */
    bool resp_eof;              /* no more response bytes will arrive */
    bool resp_deferred;         /* nghttp2 waits on our data source */
    bool pending;               /* on h2->pending */
    bool waiting;               /* on h2->waiting: at the per-connection upstream cap */
    unsigned pushes;            /* promises made for this response (all sources) */
    bool hinted;                /* we sent our own 103 for it */
    bool digest_loaded;         /* digest holds the client's pg_pushed cookie (or empty) */
    bool digest_changed;        /* pushes were added: send the cookie back */
    struct pg_digest digest;
    TAILQ_ENTRY(pg_stream) pending_link;
    TAILQ_ENTRY(pg_stream) link;
};

struct pg_h2 {
    struct pg_conn *conn;
    nghttp2_session *session;
    TAILQ_HEAD(, pg_stream) streams; /* every live stream */
    TAILQ_HEAD(, pg_stream) pending; /* streams with upstream work for the next flush */
    TAILQ_HEAD(, pg_stream) waiting; /* requests waiting for a free upstream slot */
    unsigned running_exchanges;      /* upstream transfers of this connection */
    bool client_ready;               /* the client's first SETTINGS arrived */
    bool settings_acked;             /* the client acknowledged our SETTINGS */
    double glitch_tokens;            /* abuse budget left (see spend_glitch) */
    uint64_t glitch_refill_ms;       /* when the budget was last refilled */
    bool calm;                       /* budget exhausted: GOAWAY(ENHANCE_YOUR_CALM) */
    struct pg_push_memory *pushed;   /* paths requested or pushed here; allocated with the first
                                      * path worth remembering (none while pushes are off) */
    unsigned running_pushes;         /* promised streams whose fetch is not over */
    bool client_goaway;              /* the client sent GOAWAY: no more promises */
};

static const struct pg_exchange_handler exchange_handler;

static struct pg_stream *stream_of(struct pg_h2 *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->session, id);
}

static void queue_work(struct pg_stream *st)
{
    if (!st->pending) {
        st->pending = true;
        TAILQ_INSERT_TAIL(&st->h2->pending, st, pending_link);
    }
    pg_conn_schedule_flush(st->h2->conn);
}

/* A slot under --max-upstream-per-connection freed: the longest-waiting request starts. */
static void exchange_ended(struct pg_h2 *h2)
{
    h2->running_exchanges--;
    struct pg_stream *next = TAILQ_FIRST(&h2->waiting);
    if (next) {
        TAILQ_REMOVE(&h2->waiting, next, pending_link);
        next->waiting = false;
        queue_work(next);
    }
}

static void stream_free(struct pg_stream *st)
{
    struct pg_h2 *h2 = st->h2;
    if (st->ex) {
        pg_exchange_detach(st->ex);
        st->ex = NULL;
        exchange_ended(h2);
    }
    if (st->req_unconsumed)
        nghttp2_session_consume_connection(h2->session, st->req_unconsumed);
    if (st->pending)
        TAILQ_REMOVE(&h2->pending, st, pending_link);
    if (st->waiting)
        TAILQ_REMOVE(&h2->waiting, st, pending_link);
    TAILQ_REMOVE(&h2->streams, st, link);
    nghttp2_rcbuf *pseudo[] = {st->method, st->path, st->scheme, st->authority};
    for (size_t i = 0; i < PG_ARRAY_LEN(pseudo); i++)
        if (pseudo[i])
            nghttp2_rcbuf_decref(pseudo[i]);
    for (size_t i = 0; i < st->field_count; i++) {
        nghttp2_rcbuf_decref(st->fields[i].name);
        nghttp2_rcbuf_decref(st->fields[i].value);
    }
    free(st->fields);
    if (st->push_counted)
        h2->running_pushes--;
    if (st->push) {
        pg_lines_free(&st->push->strings);
        free(st->push);
    }
    free(st->norm_path);
    if (st->stall_ev)
        event_free(st->stall_ev);
    if (st->request_ev)
        event_free(st->request_ev);
    if (st->req_body)
        evbuffer_free(st->req_body);
    if (st->resp_body)
        evbuffer_free(st->resp_body);
    free(st);
}

static nghttp2_vec buf_of(nghttp2_rcbuf *rc)
{
    return nghttp2_rcbuf_get_buf(rc);
}

static bool rcbuf_is(nghttp2_rcbuf *rc, const char *lit)
{
    nghttp2_vec v = buf_of(rc);
    return v.len == strlen(lit) && memcmp(v.base, lit, v.len) == 0;
}

/* ---- Sending: frames go into the connection's bounded output buffer. ---- */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    (void)session;
    (void)flags;
    struct pg_h2 *h2 = user_data;
    struct evbuffer *out = pg_conn_output(h2->conn);
    if (evbuffer_get_length(out) >= PG_CONN_OUTPUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static void maybe_resume_upstream(struct pg_stream *st)
{
    if (st->ex && pg_exchange_response_paused(st->ex) &&
        evbuffer_get_length(st->resp_body) < RESPONSE_LOW_WATER)
        queue_work(st);
}

/* A DATA frame goes out as one contiguous chain, header and payload together: each output chain
 * becomes its own SSL_write, hence its own TLS record and write(2). When the payload is a whole
 * large piece (the usual case: read_response_body sizes frames by pieces), the header goes into
 * the room in front of it and the chain moves to the output: the body is copied once on its way
 * through, from libcurl's buffer into the piece. Anything else is copied next to its header, so
 * that the small frames of many responses share one record and one write. */
static int on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)frame;
    struct pg_h2 *h2 = user_data;
    struct pg_stream *st = source->ptr;
    struct evbuffer *out = pg_conn_output(h2->conn);
    if (evbuffer_get_length(out) >= PG_CONN_OUTPUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    struct evbuffer_iovec first;
    if (length >= SMALL_DATA_COPY &&
        evbuffer_peek(st->resp_body, (ev_ssize_t)length, NULL, &first, 1) == 1 &&
        first.iov_len == length) {
        if (evbuffer_prepend(st->resp_body, framehd, 9) != 0 ||
            evbuffer_remove_buffer(st->resp_body, out, length + 9) != (int)(length + 9))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else {
        struct evbuffer_iovec vec;
        if (evbuffer_reserve_space(out, (ev_ssize_t)(length + 9), &vec, 1) != 1)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        memcpy(vec.iov_base, framehd, 9);
        if (length &&
            evbuffer_remove(st->resp_body, (char *)vec.iov_base + 9, length) != (int)length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        vec.iov_len = length + 9;
        if (evbuffer_commit_space(out, &vec, 1) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (evbuffer_get_length(st->resp_body) == 0)
        st->piece_room = 0; /* the last piece left with this frame */
    maybe_resume_upstream(st);
    return 0;
}

/* Over TLS a DATA frame's header and payload fill one 16 KiB record exactly; a full-size
 * frame would spill 9 bytes into a second record (and a second write). */
static ssize_t data_frame_length(nghttp2_session *session, uint8_t frame_type, int32_t stream_id,
                                 int32_t session_window, int32_t stream_window,
                                 uint32_t max_frame_size, void *user_data)
{
    (void)session;
    (void)frame_type;
    (void)stream_id;
    (void)session_window;
    (void)stream_window;
    const struct pg_h2 *h2 = user_data;
    if (h2->conn->tls && max_frame_size > TLS_RECORD_PAYLOAD - 9)
        return TLS_RECORD_PAYLOAD - 9;
    return (ssize_t)max_frame_size;
}

static ssize_t read_response_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                  size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                  void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)buf;
    (void)user_data;
    struct pg_stream *st = source->ptr;
    size_t buffered = evbuffer_get_length(st->resp_body);
    if (buffered == 0) {
        if (st->resp_eof) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->resp_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    /* One frame per piece, so that on_send_data can move it whole. */
    struct evbuffer_iovec first;
    size_t n = length;
    if (evbuffer_peek(st->resp_body, 1, NULL, &first, 1) == 1 && first.iov_len)
        n = first.iov_len < n ? first.iov_len : n;
    else
        n = buffered < n ? buffered : n;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->resp_eof && n == buffered)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void wake_data(struct pg_stream *st)
{
    if (st->resp_deferred) {
        st->resp_deferred = false;
        nghttp2_session_resume_data(st->h2->session, st->id);
    }
    pg_conn_schedule_flush(st->h2->conn);
}

static bool status_has_body(const struct pg_stream *st, int status)
{
    bool head = st->method && rcbuf_is(st->method, "HEAD"); /* a pushed request is a GET */
    return !head && status != 204 && status != 304 && status >= 200;
}

#define MAKE_NV(n, nlen, v, vlen)                                                                  \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), (nlen), (vlen), NGHTTP2_NV_FLAG_NONE                       \
    }

/* Submits a response (or a 1xx) whose fields nghttp2 copies before returning; extra fields
 * (ours: via, set-cookie) follow the given ones. */
static int submit_head_extra(struct pg_stream *st, int status, const struct pg_header *fields,
                             size_t count, const struct pg_header *extra, size_t extra_count)
{
    nghttp2_nv nva[1 + 256 + 2];
    char status_text[4];
    size_t n = 0;
    if (count > 256 || extra_count > 2)
        return PG_ERR_TOO_LONG;
    snprintf(status_text, sizeof(status_text), "%03d", status);
    nva[n++] = MAKE_NV(":status", 7, status_text, 3);
    for (size_t i = 0; i < count; i++)
        nva[n++] =
            MAKE_NV(fields[i].name, fields[i].name_len, fields[i].value, fields[i].value_len);
    for (size_t i = 0; i < extra_count; i++)
        nva[n++] = MAKE_NV(extra[i].name, extra[i].name_len, extra[i].value, extra[i].value_len);
    int rv;
    if (status < 200) {
        rv = nghttp2_submit_headers(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NULL, nva, n, NULL);
    } else {
        nghttp2_data_provider provider = {.source.ptr = st, .read_callback = read_response_body};
        bool body = status_has_body(st, status);
        st->resp_submitted = true;
        rv = nghttp2_submit_response(st->h2->session, st->id, nva, n, body ? &provider : NULL);
    }
    pg_conn_schedule_flush(st->h2->conn);
    return rv == 0 ? PG_OK : PG_ERR_LIBRARY;
}

static int submit_head(struct pg_stream *st, int status, const struct pg_header *fields,
                       size_t count)
{
    return submit_head_extra(st, status, fields, count, NULL, 0);
}

/* Answers a request ourselves (errors: 4xx, 502, 504) with a short text body. */
static void respond_locally(struct pg_stream *st, int status, const char *text)
{
    static const struct pg_header fields[] = {
        {"content-type", 12, "text/plain; charset=utf-8", 25},
        {"retry-after", 11, "1", 1}, /* 503 only: the upstream queue is full for now */
    };
    st->started = true;
    if (st->push) {
        /* An error page must not be cached as the pushed resource. */
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
        pg_conn_schedule_flush(st->h2->conn);
        return;
    }
    st->want_start = false;
    evbuffer_drain(st->resp_body, evbuffer_get_length(st->resp_body));
    st->piece_room = 0;
    evbuffer_add_printf(st->resp_body, "%s\n", text);
    st->resp_eof = true;
    if (submit_head(st, status, fields, status == 503 ? 2 : 1) != PG_OK)
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
}

/* ---- Upstream exchange callbacks (run inside libcurl or from the loop). ---- */

static void handle_links(struct pg_stream *st, const struct pg_response_head *head);
static void format_digest_cookie(struct pg_stream *st, char *out, size_t cap);

static void on_upstream_head(void *ud, const struct pg_response_head *head)
{
    struct pg_stream *st = ud;
    char cookie[256];
    struct pg_header extra[2] = {{"via", 3, "1.1 pushgate", 12}};
    size_t extra_count = 0;
    handle_links(st, head);
    if (head->status >= 200) {
        extra_count = 1;
        if (st->digest_changed) {
            format_digest_cookie(st, cookie, sizeof(cookie));
            extra[extra_count++] = (struct pg_header){"set-cookie", 10, cookie, strlen(cookie)};
        }
    }
    if (submit_head_extra(st, head->status, head->fields, head->count, extra, extra_count) !=
        PG_OK) {
        pg_log_warn("stream %d: cannot submit the upstream's response head", st->id);
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
}

/* A stream whose client takes nothing (window closed, never updated) would hold its upstream
 * connection forever: after --write-timeout without progress it is reset. */
static void on_stall(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_stream *st = arg;
    pg_log_debug("stream %d: client took no data for the write timeout: reset", st->id);
    nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    pg_conn_schedule_flush(st->h2->conn);
}

/* (Re)arms one of a stream's timers, creating it on first use (most streams never need one). */
static void arm_stream_timer(struct pg_stream *st, struct event **ev, event_callback_fn cb,
                             unsigned ms)
{
    if (!*ev) {
        *ev = evtimer_new(st->h2->conn->worker->base, cb, st);
        if (!*ev)
            return;
    }
    struct timeval tv = pg_timeval_ms(ms);
    evtimer_add(*ev, &tv);
}

static void arm_stall_timer(struct pg_stream *st)
{
    arm_stream_timer(st, &st->stall_ev, on_stall, st->h2->conn->worker->cfg->write_timeout_ms);
}

static void watch_request(struct pg_stream *st);

/* A client that stops in the middle of a request (slowloris) holds a stream and, for a body,
 * an upstream transfer: --request-timeout bounds each silence. An unfinished header block
 * blocks the whole connection (nothing else may interleave), so that ends the connection. */
static void on_request_silence(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_stream *st = arg;
    if (st->req_unconsumed > 0) {
        watch_request(st); /* we hold bytes the upstream has not taken: not the client's turn */
        return;
    }
    pg_log_debug("stream %d: request incomplete after the request timeout", st->id);
    if (!st->headers_done)
        nghttp2_session_terminate_session(st->h2->session, NGHTTP2_NO_ERROR);
    else
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    pg_conn_schedule_flush(st->h2->conn);
}

/* (Re)starts the request's silence clock, or stops it once the request is complete. */
static void watch_request(struct pg_stream *st)
{
    if (st->req_end) {
        if (st->request_ev)
            evtimer_del(st->request_ev);
        return;
    }
    arm_stream_timer(st, &st->request_ev, on_request_silence,
                     st->h2->conn->worker->cfg->request_timeout_ms);
}

/* Appends len (at most PIECE_PAYLOAD) bytes to body as a chain of its own with 9 free bytes in
 * front, for the DATA frame header. The chain is built in the worker's empty scratch buffer,
 * where draining the 9 bytes written first leaves them as free room (libevent cannot do that in
 * the middle of a buffer), and then moves to body. *room is what more the piece can take. */
static bool append_piece(struct evbuffer *body, struct evbuffer *scratch, const char *data,
                         size_t len, size_t *room)
{
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(scratch, (ev_ssize_t)(len + 9), &vec, 1) != 1)
        return false;
    /* libevent rounds the chain up: the spare space counts, up to a whole piece. */
    size_t capacity = vec.iov_len - 9 < PIECE_PAYLOAD ? vec.iov_len - 9 : PIECE_PAYLOAD;
    *room = capacity - len;
    memcpy((char *)vec.iov_base + 9, data, len);
    vec.iov_len = len + 9;
    bool ok = evbuffer_commit_space(scratch, &vec, 1) == 0 && evbuffer_drain(scratch, 9) == 0 &&
              evbuffer_add_buffer(body, scratch) == 0;
    evbuffer_drain(scratch, evbuffer_get_length(scratch)); /* empty again, even on failure */
    return ok;
}

static enum pg_body_verdict on_upstream_body(void *ud, const char *data, size_t len)
{
    struct pg_stream *st = ud;
    if (evbuffer_get_length(st->resp_body) >= RESPONSE_HIGH_WATER) {
        arm_stall_timer(st); /* paused until the client reads: not forever */
        return PG_BODY_LATER;
    }
    /* Reads rarely end on a piece boundary: topping up the last piece first keeps frames full
     * (it fits, so libevent appends in place and leaves the room in front alone). */
    size_t off = len < st->piece_room ? len : st->piece_room;
    if (off && evbuffer_add(st->resp_body, data, off) != 0)
        return PG_BODY_FAILED;
    st->piece_room -= off;
    struct evbuffer *scratch = st->h2->conn->worker->scratch;
    for (size_t n; off < len; off += n) {
        n = len - off < PIECE_PAYLOAD ? len - off : PIECE_PAYLOAD;
        if (!append_piece(st->resp_body, scratch, data + off, n, &st->piece_room))
            return PG_BODY_FAILED; /* part of it is queued: it cannot be delivered again */
    }
    wake_data(st);
    return PG_BODY_TAKEN;
}

static ssize_t on_upstream_read(void *ud, char *buf, size_t len)
{
    struct pg_stream *st = ud;
    int n = evbuffer_remove(st->req_body, buf, len);
    if (n > 0) {
        /* The upstream took these bytes: only now may the client send more. */
        nghttp2_session_consume(st->h2->session, st->id, (size_t)n);
        st->req_unconsumed -= (size_t)n;
        pg_conn_schedule_flush(st->h2->conn);
        return n;
    }
    return st->req_end ? 0 : PG_EXCHANGE_READ_PAUSE;
}

static void on_upstream_done(void *ud, enum pg_exchange_result result)
{
    struct pg_stream *st = ud;
    st->ex = NULL;
    exchange_ended(st->h2);
    if (st->push_counted) {
        st->push_counted = false;
        st->h2->running_pushes--;
    }
    if (st->req_unconsumed) {
        /* The upstream answered without reading the whole body: reopen the window so the
         * client can finish its request and the stream can close. */
        nghttp2_session_consume(st->h2->session, st->id, st->req_unconsumed);
        evbuffer_drain(st->req_body, st->req_unconsumed);
        st->req_unconsumed = 0;
    }
    if (result == PG_EXCHANGE_OK) {
        st->resp_eof = true;
        wake_data(st);
        return;
    }
    if (!st->resp_submitted) {
        bool timeout = result == PG_EXCHANGE_TIMEOUT;
        respond_locally(st, timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway");
        return;
    }
    /* Headers are out: only a reset tells the client the body is incomplete. */
    nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    pg_conn_schedule_flush(st->h2->conn);
}

static const struct pg_exchange_handler exchange_handler = {
    .on_head = on_upstream_head,
    .on_body = on_upstream_body,
    .read_body = on_upstream_read,
    .on_done = on_upstream_done,
};

/* ---- The request as views, for client and promised streams alike. ---- */

static struct pg_header rc_view(nghttp2_rcbuf *rc)
{
    if (!rc)
        return (struct pg_header){0};
    nghttp2_vec v = buf_of(rc);
    return (struct pg_header){NULL, 0, (const char *)v.base, v.len};
}

static bool view_is(struct pg_header h, const char *lit)
{
    return h.value_len == strlen(lit) && memcmp(h.value, lit, h.value_len) == 0;
}

static struct pg_header method_of(const struct pg_stream *st)
{
    return st->push ? (struct pg_header){NULL, 0, "GET", 3} : rc_view(st->method);
}

static struct pg_header path_of(const struct pg_stream *st)
{
    if (st->norm_path)
        return (struct pg_header){NULL, 0, st->norm_path, st->norm_path_len};
    return st->push ? st->push->path : rc_view(st->path);
}

static struct pg_header scheme_of(const struct pg_stream *st)
{
    return st->push ? st->push->scheme : rc_view(st->scheme);
}

static struct pg_header authority_of(const struct pg_stream *st)
{
    if (st->push)
        return st->push->authority;
    if (st->authority)
        return rc_view(st->authority);
    for (size_t i = 0; i < st->field_count; i++)
        if (rcbuf_is(st->fields[i].name, "host"))
            return rc_view(st->fields[i].value);
    return (struct pg_header){0};
}

/* Writes the regular request fields to out[MAX_REQUEST_FIELDS]; returns their count. */
static size_t fields_of(const struct pg_stream *st, struct pg_header *out)
{
    if (st->push) {
        memcpy(out, st->push->fields, st->push->count * sizeof(*out));
        return st->push->count;
    }
    for (size_t i = 0; i < st->field_count; i++) {
        nghttp2_vec n = buf_of(st->fields[i].name), v = buf_of(st->fields[i].value);
        out[i] = (struct pg_header){(const char *)n.base, n.len, (const char *)v.base, v.len};
    }
    return st->field_count;
}

/* ---- Server push: promises submitted before the parent's HEADERS (RFC 9113 §8.4). ---- */

static int add_string(struct pg_lines *strings, const char *s, size_t len)
{
    return pg_lines_add(strings, s, len, "", "", 0);
}

/* The fields a promised request carries: an accept fitting the link's as=, a few of the
 * parent's fields that shape the representation, and credentials only if configured. */
static int build_pushed_request(struct pushed_request *req, const struct pg_stream *parent,
                                const char *path, enum pg_link_as as)
{
    static const char *const copied[] = {"accept-encoding", "accept-language", "user-agent",
                                         "cache-control",   "cookie",          "authorization"};
    bool credentials = parent->h2->conn->worker->cfg->push_copy_cookies;
    struct pg_header scheme = scheme_of(parent), authority = authority_of(parent);
    const char *accept = pg_push_accept_for(as);
    int rv = add_string(&req->strings, scheme.value, scheme.value_len);
    rv = rv ? rv : add_string(&req->strings, authority.value, authority.value_len);
    rv = rv ? rv : add_string(&req->strings, path, strlen(path));
    rv = rv ? rv : pg_lines_add(&req->strings, "accept", 6, "", "", 0);
    rv = rv ? rv : add_string(&req->strings, accept, strlen(accept));
    size_t wanted = 1;
    for (size_t i = 0; i < parent->field_count && rv == PG_OK && wanted < 8; i++) {
        for (size_t c = 0; c < PG_ARRAY_LEN(copied); c++) {
            if (!rcbuf_is(parent->fields[i].name, copied[c]) || (c >= 4 && !credentials))
                continue;
            nghttp2_vec v = buf_of(parent->fields[i].value);
            rv = add_string(&req->strings, copied[c], strlen(copied[c]));
            rv = rv ? rv : add_string(&req->strings, (const char *)v.base, v.len);
            wanted++;
        }
    }
    if (rv != PG_OK)
        return rv;
    /* The strings buffer no longer grows: views into it stay valid. */
    const char *p = req->strings.data;
    struct pg_header *views[] = {&req->scheme, &req->authority, &req->path};
    for (size_t i = 0; i < PG_ARRAY_LEN(views); i++, p += strlen(p) + 1)
        *views[i] = (struct pg_header){NULL, 0, p, strlen(p)};
    for (req->count = 0; req->count < wanted; req->count++) {
        const char *name = p;
        p += strlen(p) + 1;
        req->fields[req->count] = (struct pg_header){name, strlen(name), p, strlen(p)};
        p += strlen(p) + 1;
    }
    return PG_OK;
}

static int submit_promise(struct pg_stream *parent, struct pg_stream *pushed)
{
    struct pushed_request *req = pushed->push;
    nghttp2_nv nva[4 + PG_ARRAY_LEN(req->fields)];
    size_t n = 0;
    nva[n++] = MAKE_NV(":method", 7, "GET", 3);
    nva[n++] = MAKE_NV(":scheme", 7, req->scheme.value, req->scheme.value_len);
    nva[n++] = MAKE_NV(":authority", 10, req->authority.value, req->authority.value_len);
    nva[n++] = MAKE_NV(":path", 5, req->path.value, req->path.value_len);
    for (size_t i = 0; i < req->count; i++)
        nva[n++] = MAKE_NV(req->fields[i].name, req->fields[i].name_len, req->fields[i].value,
                           req->fields[i].value_len);
    return nghttp2_submit_push_promise(parent->h2->session, NGHTTP2_FLAG_NONE, parent->id, nva, n,
                                       pushed);
}

/* Promises path on parent's connection and queues its upstream fetch. */
static bool promise(struct pg_stream *parent, const char *path, enum pg_link_as as)
{
    struct pg_h2 *h2 = parent->h2;
    struct pg_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return false;
    st->h2 = h2;
    st->push = calloc(1, sizeof(*st->push));
    st->req_body = evbuffer_new();
    st->resp_body = evbuffer_new();
    TAILQ_INSERT_TAIL(&h2->streams, st, link);
    if (!st->push || !st->req_body || !st->resp_body ||
        build_pushed_request(st->push, parent, path, as) != PG_OK ||
        (st->id = submit_promise(parent, st)) < 0) {
        stream_free(st);
        return false;
    }
    st->req_end = true;
    st->want_start = true;
    st->push_counted = true;
    h2->running_pushes++;
    queue_work(st);
    return true;
}

/* Remembers a path requested or pushed on the connection, so it is not pushed (again). Only
 * while a push could still happen: a browser refuses push, so its connections keep no memory. */
static bool remember_path(struct pg_h2 *h2, struct pg_header authority, const char *path,
                          size_t len)
{
    if (!h2->conn->worker->cfg->push_enabled ||
        nghttp2_session_get_remote_settings(h2->session, NGHTTP2_SETTINGS_ENABLE_PUSH) != 1)
        return true;
    if (!h2->pushed && !(h2->pushed = calloc(1, sizeof(*h2->pushed))))
        return false;
    pg_push_memory_add(h2->pushed, authority.value, authority.value_len, path, len);
    return true;
}

static bool may_push(const struct pg_stream *st, int status)
{
    struct pg_h2 *h2 = st->h2;
    struct pg_push_parent parent = {
        .push_configured = h2->conn->worker->cfg->push_enabled,
        .client_allows =
            nghttp2_session_get_remote_settings(h2->session, NGHTTP2_SETTINGS_ENABLE_PUSH) == 1,
        .client_goaway = h2->client_goaway,
        .parent_is_pushed = st->push != NULL,
        .parent_is_get = view_is(method_of(st), "GET"),
        .status = status,
    };
    return pg_push_parent_verdict(&parent) == PG_PUSH_YES;
}

/* The preload links of one response head, resolved once: what to push, what to learn, what
 * to repeat in a 103. Owns the resolved paths (targets point into paths after finish). */
struct link_set {
    struct pg_lines paths; /* resolved paths, NUL-separated */
    size_t path_offsets[PG_LEARN_MAX_TARGETS];
    struct pg_learned_target targets[PG_LEARN_MAX_TARGETS];
    size_t target_count;
    const char *hints[MAX_HINT_FIELDS]; /* views of the Link field values naming a preload */
    size_t hint_lens[MAX_HINT_FIELDS];
    size_t hint_count;
    bool hint_only; /* a preload link that cannot be pushed (nopush, other origin) */
};

static bool is_field(const struct pg_header *f, const char *lit)
{
    return f->name_len == strlen(lit) && memcmp(f->name, lit, f->name_len) == 0;
}

static bool set_has_path(const struct link_set *set, const char *path, size_t len)
{
    for (size_t i = 0; i < set->target_count; i++)
        if (set->targets[i].path_len == len &&
            memcmp(set->paths.data + set->path_offsets[i], path, len) == 0)
            return true;
    return false;
}

/* Resolves one link; adds it to the targets when it may be pushed. */
static void collect_link(struct link_set *set, const struct pg_link *link, const char *scheme,
                         const char *authority, struct pg_header base)
{
    char path[MAX_PUSH_PATH];
    size_t len;
    if (link->nopush) {
        set->hint_only = true;
        return;
    }
    int r = pg_url_resolve_same_origin(scheme, authority, base.value, base.value_len, link->target,
                                       link->target_len, path, sizeof(path), &len);
    if (r == PG_URL_CROSS_ORIGIN)
        set->hint_only = true;
    /* "//x" is a legal :path, but many HTTP/1.1 servers read it as a host: never push it. */
    if (r != PG_URL_OK || (len > 1 && path[1] == '/') || set_has_path(set, path, len) ||
        set->target_count == PG_LEARN_MAX_TARGETS)
        return;
    size_t offset = set->paths.len;
    if (pg_lines_add(&set->paths, path, len, "", "", 0) != PG_OK)
        return;
    set->path_offsets[set->target_count] = offset;
    set->targets[set->target_count++] = (struct pg_learned_target){NULL, len, link->as};
}

static void collect_links(struct pg_stream *st, const struct pg_header *fields, size_t count,
                          struct link_set *set)
{
    struct pg_header scheme = scheme_of(st), authority = authority_of(st), base = path_of(st);
    char scheme_z[8], authority_z[256];
    memset(set, 0, sizeof(*set));
    size_t f = 0;
    while (f < count && !is_field(&fields[f], "link"))
        f++;
    if (f == count) /* most responses: nothing to resolve */
        return;
    if (scheme.value_len >= sizeof(scheme_z) || authority.value_len >= sizeof(authority_z))
        return;
    snprintf(scheme_z, sizeof(scheme_z), "%.*s", (int)scheme.value_len, scheme.value);
    snprintf(authority_z, sizeof(authority_z), "%.*s", (int)authority.value_len, authority.value);
    for (; f < count; f++) {
        if (!is_field(&fields[f], "link"))
            continue;
        struct pg_link links[MAX_LINKS_PER_FIELD];
        size_t n = pg_link_parse(fields[f].value, fields[f].value_len, links, PG_ARRAY_LEN(links));
        bool preload = false;
        for (size_t i = 0; i < n; i++) {
            if (!links[i].preload)
                continue;
            preload = true;
            collect_link(set, &links[i], scheme_z, authority_z, base);
        }
        if (preload && set->hint_count < MAX_HINT_FIELDS) {
            set->hints[set->hint_count] = fields[f].value;
            set->hint_lens[set->hint_count++] = fields[f].value_len;
        }
    }
    for (size_t i = 0; i < set->target_count; i++) /* the buffer no longer moves */
        set->targets[i].path = set->paths.data + set->path_offsets[i];
}

static void load_digest(struct pg_stream *st)
{
    st->digest_loaded = true;
    for (size_t i = 0; i < st->field_count; i++) {
        if (!rcbuf_is(st->fields[i].name, "cookie"))
            continue;
        nghttp2_vec v = buf_of(st->fields[i].value);
        if (pg_digest_from_cookie(&st->digest, (const char *)v.base, v.len))
            return;
    }
}

/* Pushes targets from parent's connection, within the per-response, per-connection and
 * digest rules. Returns true when every target was pushed now or before (none was left out
 * by a limit). */
static bool push_targets(struct pg_stream *st, const struct pg_learned_target *targets,
                         size_t count)
{
    struct pg_h2 *h2 = st->h2;
    const struct pg_config *cfg = h2->conn->worker->cfg;
    struct pg_header authority = authority_of(st);
    if (cfg->push_cache_digest && !st->digest_loaded)
        load_digest(st);
    size_t i = 0;
    for (; i < count && st->pushes < cfg->max_pushes_per_response; i++) {
        const char *path = targets[i].path;
        size_t len = targets[i].path_len;
        if (h2->pushed &&
            pg_push_memory_contains(h2->pushed, authority.value, authority.value_len, path, len))
            continue;
        if (cfg->push_cache_digest &&
            pg_digest_contains(&st->digest, authority.value, authority.value_len, path, len))
            continue;
        if (h2->running_pushes >= cfg->max_concurrent_pushes)
            return false;
        if (!remember_path(h2, authority, path, len) || !promise(st, path, targets[i].as))
            return false;
        st->pushes++;
        if (cfg->push_cache_digest) {
            pg_digest_add(&st->digest, authority.value, authority.value_len, path, len);
            st->digest_changed = true;
        }
    }
    return i == count;
}

/* Our own 103 (RFC 8297): once per request, never on a pushed stream or after the final
 * response. */
static void send_hints(struct pg_stream *st, const char *const *hints, const size_t *lens,
                       size_t count)
{
    struct pg_header fields[MAX_HINT_FIELDS];
    if (st->hinted || st->push || st->resp_submitted || count == 0)
        return;
    if (count > MAX_HINT_FIELDS)
        count = MAX_HINT_FIELDS;
    for (size_t i = 0; i < count; i++)
        fields[i] = (struct pg_header){"link", 4, hints[i], lens[i]};
    st->hinted = true;
    if (submit_head(st, 103, fields, count) != PG_OK)
        pg_log_debug("stream %d: cannot submit a 103", st->id);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A request for a page whose links we learned: push or hint them before the upstream
 * answers (called when the request starts). */
static void act_on_learned(struct pg_stream *st)
{
    struct pg_worker *w = st->h2->conn->worker;
    if (!w->learn || st->push || !view_is(method_of(st), "GET"))
        return;
    struct pg_header authority = authority_of(st), path = path_of(st);
    const struct pg_learned *learned = pg_learn_lookup(
        w->learn, authority.value, authority.value_len, path.value, path.value_len, now_ms());
    if (!learned)
        return;
    bool push = may_push(st, 200); /* the status is not known yet: assume success */
    bool covered = push && push_targets(st, learned->targets, learned->target_count);
    /* What pushes do not cover (limits, nopush, other origins), a 103 still announces. */
    if (w->cfg->early_hints && (!covered || learned->hint_only))
        send_hints(st, learned->hints, learned->hint_lens, learned->hint_count);
}

static bool has_directive(const struct pg_header *f, const char *directive)
{
    size_t n = strlen(directive);
    for (size_t i = 0; i + n <= f->value_len; i++) {
        bool start = i == 0 || f->value[i - 1] == ',' || f->value[i - 1] == ' ';
        bool end = i + n == f->value_len || (f->value[i + n] && strchr(",; =", f->value[i + n]));
        if (start && end && strncasecmp(f->value + i, directive, n) == 0)
            return true;
    }
    return false;
}

/* What one user sees is not replayed to another: private responses and authorized requests
 * are not learned from unless the operator says so. */
static bool may_learn(const struct pg_stream *st, const struct pg_response_head *head)
{
    if (st->push || !view_is(method_of(st), "GET") || head->status < 200 || head->status >= 300)
        return false;
    if (st->h2->conn->worker->cfg->push_learn_private)
        return true;
    for (size_t i = 0; i < st->field_count; i++)
        if (rcbuf_is(st->fields[i].name, "authorization"))
            return false;
    for (size_t i = 0; i < head->count; i++)
        if (is_field(&head->fields[i], "cache-control") &&
            (has_directive(&head->fields[i], "private") ||
             has_directive(&head->fields[i], "no-store")))
            return false;
    return true;
}

static void learn_links(struct pg_stream *st, const struct pg_response_head *head,
                        const struct link_set *set)
{
    struct pg_learn *table = st->h2->conn->worker->learn;
    if (!table || !may_learn(st, head))
        return;
    struct pg_header authority = authority_of(st), path = path_of(st);
    struct pg_learned learned = {set->targets,   set->target_count, set->hints,
                                 set->hint_lens, set->hint_count,   set->hint_only};
    pg_learn_store(table, authority.value, authority.value_len, path.value, path.value_len,
                   &learned, now_ms());
}

static void format_digest_cookie(struct pg_stream *st, char *out, size_t cap)
{
    char value[PG_DIGEST_VALUE_LEN + 1];
    pg_digest_format(&st->digest, value);
    snprintf(out, cap, PG_DIGEST_COOKIE "=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Lax%s", value,
             st->h2->conn->worker->cfg->push_cache_digest_max_age_ms / 1000,
             st->h2->conn->tls ? "; Secure" : "");
}

/* A response head from the upstream (103 or final): push its links, learn from it. */
static void handle_links(struct pg_stream *st, const struct pg_response_head *head)
{
    struct link_set set;
    collect_links(st, head->fields, head->count, &set);
    bool informational = head->status < 200;
    if (set.target_count && may_push(st, informational ? 200 : head->status))
        push_targets(st, set.targets, set.target_count);
    if (!informational)
        learn_links(st, head, &set);
    pg_lines_free(&set.paths);
}

/* ---- Starting a request upstream (from pg_h2_flush only). ---- */

static bool view_equals_ci(struct pg_header a, struct pg_header b)
{
    return a.value_len == b.value_len && strncasecmp(a.value, b.value, a.value_len) == 0;
}

/* The request's origin must be the connection's: its scheme, an authority without userinfo,
 * and no host field contradicting it (request smuggling through a confused upstream). */
static int validate_origin(const struct pg_stream *st)
{
    struct pg_header scheme = scheme_of(st), authority = authority_of(st);
    if (!view_is(scheme, st->h2->conn->tls ? "https" : "http"))
        return 400;
    if (!authority.value_len || memchr(authority.value, '@', authority.value_len))
        return 400;
    for (size_t i = 0; st->authority && i < st->field_count; i++)
        if (rcbuf_is(st->fields[i].name, "host") &&
            !view_equals_ci(rc_view(st->fields[i].value), authority))
            return 400;
    return 0;
}

/* Returns 0 when the request may go upstream, else the status to answer with. */
static int validate_request(const struct pg_stream *st)
{
    if (st->push)
        return 0; /* made by us from a resolved same-origin path */
    if (st->too_large)
        return 431;
    struct pg_header method = method_of(st), path = path_of(st);
    if (!method.value_len || !path.value_len)
        return 400;
    if (view_is(method, "CONNECT"))
        return 405;
    bool asterisk = view_is(path, "*");
    if (asterisk ? !view_is(method, "OPTIONS") : path.value[0] != '/')
        return 400;
    if (memchr(path.value, '#', path.value_len))
        return 400;
    return validate_origin(st);
}

static int build_lines(const struct pg_stream *st, struct pg_lines *lines, long long *cl)
{
    struct pg_header fields[MAX_REQUEST_FIELDS];
    struct pg_header authority = authority_of(st);
    struct pg_request_info info = {
        .authority = authority.value,
        .authority_len = authority.value_len,
        .fields = fields,
        .count = fields_of(st, fields),
        .client_addr = st->h2->conn->client_addr,
        .tls = st->h2->conn->tls,
        .push = st->push != NULL,
    };
    return pg_headers_build_upstream(&info, lines, cl);
}

/* The upstream and we must agree on the resource: "/a/../b" is sent as "/b" (also with
 * percent-encoded dots); every other byte of :path goes out as the client sent it. */
static void normalize_path(struct pg_stream *st)
{
    struct pg_header path = path_of(st);
    if (st->push || !path.value || !path.value_len || path.value[0] != '/')
        return;
    if (!memmem(path.value, path.value_len, "/.", 2) &&
        !memmem(path.value, path.value_len, "%2e", 3) &&
        !memmem(path.value, path.value_len, "%2E", 3))
        return;
    char *out = malloc(path.value_len + 1);
    if (!out)
        return; /* validation still applies; the path goes out unchanged */
    size_t n = pg_headers_normalize_path(path.value, path.value_len, out);
    if (n == path.value_len && memcmp(out, path.value, n) == 0) {
        free(out);
        return;
    }
    st->norm_path = out;
    st->norm_path_len = n;
}

static void start_upstream(struct pg_stream *st)
{
    st->want_start = false;
    st->started = true;
    normalize_path(st);
    int status = validate_request(st);
    if (status) {
        respond_locally(st, status,
                        status == 431   ? "Request Header Fields Too Large"
                        : status == 405 ? "Method Not Allowed"
                                        : "Bad Request");
        return;
    }
    struct pg_lines lines = {0};
    long long content_length;
    if (build_lines(st, &lines, &content_length) != PG_OK) {
        pg_lines_free(&lines);
        respond_locally(st, 400, "Bad Request");
        return;
    }
    struct pg_header path = path_of(st), authority = authority_of(st);
    if (!st->push)
        remember_path(st->h2, authority, path.value, path.value_len); /* a hint: may fail */
    if (pg_upstream_saturated(st->h2->conn->worker->upstream)) {
        pg_lines_free(&lines);
        respond_locally(st, 503, "Service Unavailable");
        return;
    }
    act_on_learned(st);
    struct pg_exchange_request req = {
        .method = method_of(st).value, /* NUL-terminated: rcbuf or our own string */
        .target = path.value,
        .lines = &lines,
        .has_body = st->has_body || content_length > 0,
        .content_length = content_length,
    };
    st->ex = pg_exchange_start(st->h2->conn->worker->upstream, &req, &exchange_handler, st);
    pg_lines_free(&lines);
    if (st->ex)
        st->h2->running_exchanges++;
    else
        respond_locally(st, 502, "Bad Gateway");
}

static void do_stream_work(struct pg_stream *st)
{
    struct pg_h2 *h2 = st->h2;
    if (st->want_start) {
        if (h2->running_exchanges >= h2->conn->worker->cfg->max_upstream_per_connection) {
            /* Closing streams fast (Rapid Reset) must not multiply upstream work either. */
            st->waiting = true;
            TAILQ_INSERT_TAIL(&h2->waiting, st, pending_link);
            return;
        }
        start_upstream(st);
        return;
    }
    if (!st->ex)
        return;
    if (pg_exchange_request_paused(st->ex) &&
        (evbuffer_get_length(st->req_body) > 0 || st->req_end))
        pg_exchange_resume_request(st->ex);
    /* Completion is only reported from the multi handle's loop callbacks, never from inside
     * curl_easy_pause, so st->ex is still valid here. */
    if (st->ex && pg_exchange_response_paused(st->ex) &&
        evbuffer_get_length(st->resp_body) < RESPONSE_LOW_WATER) {
        if (st->stall_ev)
            evtimer_del(st->stall_ev);
        pg_exchange_resume_response(st->ex);
    }
}

/* ---- nghttp2 receive callbacks: record facts, queue work, never call upstream. ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct pg_h2 *h2 = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct pg_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->h2 = h2;
    st->id = frame->hd.stream_id;
    st->req_body = evbuffer_new();
    st->resp_body = evbuffer_new();
    TAILQ_INSERT_TAIL(&h2->streams, st, link);
    if (!st->req_body || !st->resp_body) {
        stream_free(st);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    nghttp2_session_set_stream_user_data(session, st->id, st);
    /* A header block split over CONTINUATION frames may stall: time it. A block in one frame
     * (nearly every request) completes in this same read, so no timer is made for it. */
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_HEADERS))
        watch_request(st);
    return 0;
}

static void keep_pseudo(nghttp2_rcbuf **slot, nghttp2_rcbuf *value)
{
    if (!*slot) {
        nghttp2_rcbuf_incref(value);
        *slot = value;
    }
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    (void)session;
    (void)flags;
    struct pg_stream *st = stream_of(user_data, frame->hd.stream_id);
    if (!st || frame->headers.cat != NGHTTP2_HCAT_REQUEST || st->too_large)
        return 0; /* trailers are not forwarded */
    nghttp2_vec n = buf_of(name), v = buf_of(value);
    if (n.len && n.base[0] == ':') {
        if (rcbuf_is(name, ":method"))
            keep_pseudo(&st->method, value);
        else if (rcbuf_is(name, ":path"))
            keep_pseudo(&st->path, value);
        else if (rcbuf_is(name, ":scheme"))
            keep_pseudo(&st->scheme, value);
        else if (rcbuf_is(name, ":authority"))
            keep_pseudo(&st->authority, value);
        return 0;
    }
    st->field_bytes += n.len + v.len + 32;
    if (st->field_count == MAX_REQUEST_FIELDS || st->field_bytes > MAX_HEADER_LIST_SIZE) {
        st->too_large = true;
        return 0;
    }
    if (st->field_count % 16 == 0) {
        struct field_ref *grown = realloc(st->fields, (st->field_count + 16) * sizeof(*st->fields));
        if (!grown)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->fields = grown;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    st->fields[st->field_count++] = (struct field_ref){name, value};
    return 0;
}

/* The abuse budget: frames that cost us work without doing the client any good (resets,
 * pings, settings, priority, empty data, tiny window updates, malformed requests the
 * library resets) each spend a token; tokens come back at --abuse-refill per second up to
 * --abuse-budget. An empty budget ends the connection with ENHANCE_YOUR_CALM, which stops
 * Rapid Reset, MadeYouReset and control-frame floods whatever their pacing. */

static void spend_glitch(struct pg_h2 *h2, unsigned cost)
{
    const struct pg_config *cfg = h2->conn->worker->cfg;
    uint64_t now = now_ms();
    h2->glitch_tokens += (double)(now - h2->glitch_refill_ms) * cfg->abuse_refill / 1000.0;
    if (h2->glitch_tokens > cfg->abuse_budget)
        h2->glitch_tokens = cfg->abuse_budget;
    h2->glitch_refill_ms = now;
    h2->glitch_tokens -= cost;
    if (h2->glitch_tokens < 0 && !h2->calm) {
        h2->calm = true;
        pg_log_info("client %s exceeded the abuse budget: GOAWAY(ENHANCE_YOUR_CALM)",
                    h2->conn->client_addr);
    }
}

/* Tokens a received frame costs: 0 for useful frames, 2 for a reset (Rapid Reset is the
 * costliest glitch), 1 for the other frames that do the client no good. */
static unsigned glitch_cost(const struct pg_h2 *h2, const nghttp2_frame *frame)
{
    switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
        return 2;
    case NGHTTP2_PRIORITY:
        return 1;
    case NGHTTP2_PING:
        return !(frame->hd.flags & NGHTTP2_FLAG_ACK);
    case NGHTTP2_SETTINGS:
        return !(frame->hd.flags & NGHTTP2_FLAG_ACK) && h2->client_ready;
    case NGHTTP2_WINDOW_UPDATE:
        return frame->window_update.window_size_increment < 1024;
    case NGHTTP2_DATA:
        return frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    default:
        return 0;
    }
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame, int error,
                            void *user_data)
{
    (void)session;
    (void)frame;
    (void)error;
    spend_glitch(user_data, 1); /* a stream the library resets: MadeYouReset spends too */
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    struct pg_h2 *h2 = user_data;
    unsigned cost = glitch_cost(h2, frame);
    if (cost)
        spend_glitch(h2, cost);
    if (frame->hd.type == NGHTTP2_SETTINGS) {
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            h2->settings_acked = true;
        else
            h2->client_ready = true;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY)
        h2->client_goaway = true;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct pg_stream *st = stream_of(h2, frame->hd.stream_id);
    if (!st)
        return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        st->has_body = !end;
        st->want_start = true;
        st->headers_done = true;
    }
    if (end)
        st->req_end = true;
    watch_request(st);
    if (st->want_start || end)
        queue_work(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    struct pg_stream *st = stream_of(user_data, stream_id);
    if (!st)
        return 0;
    if (st->started && !st->ex) {
        /* Answered already (locally or by the upstream): nobody will read these bytes. */
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    if (evbuffer_add(st->req_body, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->req_unconsumed += len;
    if (st->ex && pg_exchange_request_paused(st->ex))
        queue_work(st);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)user_data;
    struct pg_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st)
        return 0;
    if (error_code != NGHTTP2_NO_ERROR)
        pg_log_debug("stream %d closed with error %u", stream_id, error_code);
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(st);
    return 0;
}

/* ---- Session lifecycle. ---- */

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, data_frame_length);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    return cbs;
}

static int send_settings(struct pg_h2 *h2)
{
    const struct pg_config *cfg = h2->conn->worker->cfg;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_RECV_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_SIZE},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, /* a server never accepts pushes */
    };
    if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings, PG_ARRAY_LEN(settings)))
        return PG_ERR_LIBRARY;
    if (nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0, CONN_RECV_WINDOW))
        return PG_ERR_LIBRARY;
    return PG_OK;
}

struct pg_h2 *pg_h2_new(struct pg_conn *conn)
{
    struct pg_h2 *h2 = calloc(1, sizeof(*h2));
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt = NULL;
    if (!h2 || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail;
    h2->conn = conn;
    TAILQ_INIT(&h2->streams);
    TAILQ_INIT(&h2->pending);
    TAILQ_INIT(&h2->waiting);
    h2->glitch_tokens = conn->worker->cfg->abuse_budget;
    h2->glitch_refill_ms = now_ms();
    /* Window updates only once the upstream took the bytes: request-body back-pressure. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_server_new2(&h2->session, cbs, h2, opt) != 0)
        goto fail;
    if (send_settings(h2) != PG_OK)
        goto fail;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return h2;
fail:
    if (opt)
        nghttp2_option_del(opt);
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    if (h2 && h2->session)
        nghttp2_session_del(h2->session);
    free(h2);
    return NULL;
}

void pg_h2_free(struct pg_h2 *h2)
{
    if (!h2)
        return;
    /* Deleting the session does not call on_stream_close: free the streams ourselves. */
    while (!TAILQ_EMPTY(&h2->streams)) {
        struct pg_stream *st = TAILQ_FIRST(&h2->streams);
        if (st->ex) {
            pg_exchange_cancel(st->ex);
            st->ex = NULL;
        }
        st->req_unconsumed = 0;
        stream_free(st);
    }
    nghttp2_session_del(h2->session);
    free(h2->pushed);
    free(h2);
}

int pg_h2_recv(struct pg_h2 *h2, struct evbuffer *input)
{
    size_t len;
    while ((len = evbuffer_get_contiguous_space(input)) > 0) {
        const unsigned char *data = evbuffer_pullup(input, (ssize_t)len);
        ssize_t n = nghttp2_session_mem_recv(h2->session, data, len);
        if (n < 0) {
            pg_log_debug("dropping client %s: %s", h2->conn->client_addr, nghttp2_strerror((int)n));
            return PG_ERR_INVALID;
        }
        evbuffer_drain(input, (size_t)n);
        if (h2->calm) {
            /* Outside the callbacks now: terminating is allowed. Nothing more is read. */
            nghttp2_session_terminate_session(h2->session, NGHTTP2_ENHANCE_YOUR_CALM);
            evbuffer_drain(input, evbuffer_get_length(input));
            break;
        }
    }
    return PG_OK;
}

int pg_h2_flush(struct pg_h2 *h2)
{
    int rv = nghttp2_session_send(h2->session);
    /* Upstream work starts after the frames of this read are out (MadeYouReset: the library
     * may have reset some of these streams while sending). */
    while (rv == 0 && !TAILQ_EMPTY(&h2->pending)) {
        struct pg_stream *st = TAILQ_FIRST(&h2->pending);
        TAILQ_REMOVE(&h2->pending, st, pending_link);
        st->pending = false;
        do_stream_work(st);
    }
    if (rv == 0)
        rv = nghttp2_session_send(h2->session);
    if (rv != 0) {
        pg_log_debug("dropping client %s: %s", h2->conn->client_addr, nghttp2_strerror(rv));
        return PG_ERR_LIBRARY;
    }
    return PG_OK;
}

bool pg_h2_client_ready(const struct pg_h2 *h2)
{
    /* RFC 9113 §6.5.3: a peer that never acknowledges our SETTINGS is not speaking HTTP/2 with
     * us; the handshake deadline covers that too. */
    return h2->client_ready && h2->settings_acked;
}

bool pg_h2_idle(const struct pg_h2 *h2)
{
    return TAILQ_EMPTY(&h2->streams);
}

void pg_h2_shutdown(struct pg_h2 *h2)
{
    nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
}

bool pg_h2_finished(const struct pg_h2 *h2)
{
    return !nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session);
}
