/* The HTTP/2 session (nghttp2 server): receive callbacks that record facts and hand complete
 * requests to the core, the abuse budget, and the protocol table the connection calls. */
#include "h2_internal.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static struct h2_stream *stream_of(struct pg_h2 *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->session, id);
}

static struct pg_header rc_view(nghttp2_rcbuf *rc)
{
    if (!rc)
        return (struct pg_header){0};
    nghttp2_vec v = nghttp2_rcbuf_get_buf(rc);
    return (struct pg_header){NULL, 0, (const char *)v.base, v.len};
}

static bool rcbuf_is(nghttp2_rcbuf *rc, const char *lit)
{
    nghttp2_vec v = nghttp2_rcbuf_get_buf(rc);
    return v.len == strlen(lit) && memcmp(v.base, lit, v.len) == 0;
}

/* The core's view of the request, once its header block is complete. */
static void fill_head(struct h2_stream *st)
{
    struct pg_request_head *head = &st->req.head;
    *head = (struct pg_request_head){
        .method = rc_view(st->method),
        .scheme = rc_view(st->scheme),
        .authority = rc_view(st->authority),
        .path = rc_view(st->path),
        .fields = st->fields,
        .count = st->field_count,
        .authority_given = st->authority != NULL,
        .too_large = st->too_large,
    };
    if (!st->authority) {
        const struct pg_header *host = pg_request_field(head, "host");
        if (host)
            head->authority = (struct pg_header){NULL, 0, host->value, host->value_len};
    }
}

/* ---- nghttp2 receive callbacks: record facts, queue work, never call upstream. ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct pg_h2 *h2 = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = h2_stream_new(h2);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    /* A header block split over CONTINUATION frames may stall: time it. A block in one frame
     * (nearly every request) completes in this same read, so no timer is made for it. */
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_HEADERS))
        pg_request_head_started(&st->req);
    return 0;
}

static void keep_pseudo(nghttp2_rcbuf **slot, nghttp2_rcbuf *value)
{
    if (!*slot) {
        nghttp2_rcbuf_incref(value);
        *slot = value;
    }
}

/* Room for one more field: the stream's own arrays first, then the heap in steps of 16. */
static int make_room(struct h2_stream *st)
{
    size_t count = st->field_count;
    if (count == 0) {
        st->refs = st->inline_refs;
        st->fields = st->inline_fields;
        return 0;
    }
    if (count < H2_INLINE_FIELDS || (count > H2_INLINE_FIELDS && count % 16 != 0))
        return 0;
    size_t n = count + 16;
    bool moving = st->refs == st->inline_refs;
    nghttp2_rcbuf **refs = realloc(moving ? NULL : st->refs, 2 * n * sizeof(*refs));
    if (!refs)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (moving)
        memcpy(refs, st->inline_refs, 2 * count * sizeof(*refs));
    st->refs = refs;
    struct pg_header *fields = realloc(moving ? NULL : st->fields, n * sizeof(*fields));
    if (!fields)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* refs is the stream's: freed with it */
    if (moving)
        memcpy(fields, st->inline_fields, count * sizeof(*fields));
    st->fields = fields;
    return 0;
}

static int keep_field(struct h2_stream *st, nghttp2_rcbuf *name, nghttp2_rcbuf *value)
{
    if (make_room(st) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    st->refs[2 * st->field_count] = name;
    st->refs[2 * st->field_count + 1] = value;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    st->fields[st->field_count++] =
        (struct pg_header){(const char *)n.base, n.len, (const char *)v.base, v.len};
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    (void)session;
    (void)flags;
    struct h2_stream *st = stream_of(user_data, frame->hd.stream_id);
    if (!st || frame->headers.cat != NGHTTP2_HCAT_REQUEST || st->too_large)
        return 0; /* trailers are not forwarded */
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
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
    if (st->field_count == PG_REQUEST_MAX_FIELDS || st->field_bytes > PG_REQUEST_MAX_HEAD_BYTES) {
        st->too_large = true;
        return 0;
    }
    return keep_field(st, name, value);
}

/* The client is abusive (why: for the log): h2_recv ends the session with
 * GOAWAY(ENHANCE_YOUR_CALM) once outside the library's callbacks. */
static void calm_down(struct pg_h2 *h2, const char *why)
{
    if (h2->calm)
        return;
    h2->calm = true;
    pg_log_info("client %s %s: GOAWAY(ENHANCE_YOUR_CALM)", h2->env->proxy.client_addr, why);
}

static void spend(struct pg_h2 *h2, unsigned cost)
{
    if (pg_abuse_spend(&h2->budget, cost, pg_now_ms()))
        calm_down(h2, "exceeded the abuse budget");
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame, int error,
                            void *user_data)
{
    (void)session;
    (void)frame;
    (void)error;
    spend(user_data, 1); /* a stream the library resets: MadeYouReset spends too */
    return 0;
}

static void on_request_frame(struct h2_stream *st, const nghttp2_frame *frame)
{
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        fill_head(st);
        pg_request_head_received(&st->req, !end);
    } else if (end) {
        pg_request_end_received(&st->req);
    }
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    struct pg_h2 *h2 = user_data;
    struct pg_abuse_frame facts = {
        .type = frame->hd.type,
        .flags = frame->hd.flags,
        .length = (uint32_t)frame->hd.length,
        .window_increment = frame->hd.type == NGHTTP2_WINDOW_UPDATE
                                ? (uint32_t)frame->window_update.window_size_increment
                                : 0,
        .preface_done = h2->client_ready,
    };
    unsigned cost = pg_abuse_frame_cost(&facts);
    if (cost)
        spend(h2, cost);
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
    struct h2_stream *st = stream_of(h2, frame->hd.stream_id);
    if (st)
        on_request_frame(st, frame);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    (void)session;
    (void)flags;
    struct h2_stream *st = stream_of(user_data, stream_id);
    if (!st)
        return 0;
    if (pg_request_body_received(&st->req, (const char *)data, len) != PG_OK)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)user_data;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st)
        return 0;
    if (error_code != NGHTTP2_NO_ERROR) {
        pg_log_debug("stream %d closed with error %u", stream_id, error_code);
        st->req.client_reset = error_code == NGHTTP2_CANCEL || error_code == NGHTTP2_REFUSED_STREAM;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    h2_stream_free(st);
    return 0;
}

/* ---- Session lifecycle: the protocol table. ---- */

/* How the core answers on this protocol's streams. */
static const struct pg_frontend_ops frontend_ops = {
    .submit_head = h2_submit_head,
    .submit_1xx = h2_submit_1xx,
    .body_ready = h2_body_ready,
    .reset = h2_reset,
    .consume = h2_consume,
    .wake = h2_wake,
    .push_allowed = h2_push_allowed,
    .push = h2_push,
};

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    h2_set_send_callbacks(cbs);
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
    const struct pg_config *cfg = h2->env->proxy.cfg;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_RECV_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, PG_REQUEST_MAX_HEAD_BYTES},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, /* a server never accepts pushes */
    };
    if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings, PG_ARRAY_LEN(settings)))
        return PG_ERR_LIBRARY;
    if (nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0,
                                              H2_CONN_RECV_WINDOW))
        return PG_ERR_LIBRARY;
    return PG_OK;
}

static void *h2_create(const struct pg_conn_env *env)
{
    struct pg_h2 *h2 = calloc(1, sizeof(*h2));
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt = NULL;
    if (!h2 || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail;
    h2->env = env;
    pg_proxy_conn_init(&h2->pc, &env->proxy, &frontend_ops);
    TAILQ_INIT(&h2->streams);
    pg_abuse_init(&h2->budget, env->proxy.cfg->abuse_budget, env->proxy.cfg->abuse_refill,
                  pg_now_ms());
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

static void h2_free(void *session)
{
    struct pg_h2 *h2 = session;
    if (!h2)
        return;
    /* Deleting the session does not call on_stream_close: free the streams ourselves. */
    while (!TAILQ_EMPTY(&h2->streams))
        h2_stream_release(TAILQ_FIRST(&h2->streams), true);
    nghttp2_session_del(h2->session);
    if (h2->drain_ev)
        event_free(h2->drain_ev);
    pg_proxy_conn_clear(&h2->pc);
    free(h2);
}

static int h2_recv(void *session, struct evbuffer *input)
{
    struct pg_h2 *h2 = session;
    size_t len;
    while ((len = evbuffer_get_contiguous_space(input)) > 0) {
        const unsigned char *data = evbuffer_pullup(input, (ssize_t)len);
        ssize_t n = nghttp2_session_mem_recv(h2->session, data, len);
        if (n == NGHTTP2_ERR_FLOODED) {
            /* More acknowledgements queued than a reading client leaves (a PING or SETTINGS
             * flood that does not read): the same answer as an exhausted abuse budget. */
            calm_down(h2, "flooded control frames");
            n = (ssize_t)len;
        }
        if (n < 0) {
            pg_log_debug("dropping client %s: %s", h2->env->proxy.client_addr,
                         nghttp2_strerror((int)n));
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

static int h2_flush(void *session)
{
    struct pg_h2 *h2 = session;
    int rv = nghttp2_session_send(h2->session);
    /* Upstream work starts after the frames of this read are out (MadeYouReset: the library
     * may have reset some of these streams while sending). */
    if (rv == 0 && !TAILQ_EMPTY(&h2->pc.pending)) {
        pg_proxy_run(&h2->pc);
        rv = nghttp2_session_send(h2->session);
    }
    if (rv != 0) {
        pg_log_debug("dropping client %s: %s", h2->env->proxy.client_addr, nghttp2_strerror(rv));
        return PG_ERR_LIBRARY;
    }
    return PG_OK;
}

static bool h2_ready(const void *session)
{
    /* RFC 9113 §6.5.3: a peer that never acknowledges our SETTINGS is not speaking HTTP/2 with
     * us; the handshake deadline covers that too. */
    const struct pg_h2 *h2 = session;
    return h2->client_ready && h2->settings_acked;
}

static bool h2_idle(const void *session)
{
    const struct pg_h2 *h2 = session;
    return TAILQ_EMPTY(&h2->streams);
}

static void h2_shutdown(void *session)
{
    struct pg_h2 *h2 = session;
    nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
}

/* The notice's GOAWAY (last stream id 2^31-1) had a round trip to arrive: requests the client
 * sent before reading it are already here; the final GOAWAY names the last one we take, and
 * the connection closes once every stream has finished. */
#define DRAIN_NOTICE_MS 1000

static void on_drain_notice_sent(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_h2 *h2 = arg;
    nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    h2->env->wake(h2->env->conn);
}

static void h2_drain(void *session)
{
    struct pg_h2 *h2 = session;
    if (h2->drain_ev)
        return;
    if (TAILQ_EMPTY(&h2->streams) ||
        !(h2->drain_ev = evtimer_new(h2->env->proxy.base, on_drain_notice_sent, h2))) {
        h2_shutdown(h2); /* nothing in flight (or no timer): one GOAWAY ends it */
        return;
    }
    nghttp2_submit_shutdown_notice(h2->session);
    struct timeval tv = pg_timeval_ms(DRAIN_NOTICE_MS);
    evtimer_add(h2->drain_ev, &tv);
}

static bool h2_finished(const void *session)
{
    const struct pg_h2 *h2 = session;
    return !nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session);
}

const struct pg_protocol pg_h2_protocol = {
    .name = "h2",
    .metric = PG_METRIC_HTTP2,
    .create = h2_create,
    .recv = h2_recv,
    .flush = h2_flush,
    .ready = h2_ready,
    .idle = h2_idle,
    .shutdown = h2_shutdown,
    .drain = h2_drain,
    .finished = h2_finished,
    .free = h2_free,
    .read_blocked = NULL,
};
