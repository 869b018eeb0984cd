#include "pushgate/h2.h"
#include "pushgate/common.h"
#include "pushgate/conn.h"
#include "pushgate/headers.h"
#include "pushgate/log.h"
#include "pushgate/upstream.h"
#include "pushgate/worker.h"

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* Request side: the stream window bounds what one upload buffers before the upstream takes it. */
#define STREAM_RECV_WINDOW (256 * 1024)
#define CONN_RECV_WINDOW (1024 * 1024)
#define MAX_HEADER_LIST_SIZE (64 * 1024)
#define MAX_REQUEST_FIELDS 128
/* Response side: above the high mark the upstream transfer is paused, below the low mark it
 * resumes. Together with the connection's output bound this caps memory per stream. */
#define RESPONSE_HIGH_WATER (128 * 1024)
#define RESPONSE_LOW_WATER (64 * 1024)

/* A request field kept as nghttp2's own reference-counted buffers: no copy. */
struct field_ref {
    nghttp2_rcbuf *name;
    nghttp2_rcbuf *value;
};

/* Created when a request's HEADERS begin; freed in on_stream_close (or with the session).
 * Owns its field references, body buffers and upstream exchange. */
struct pg_stream {
    struct pg_h2 *h2;
    int32_t id;
    nghttp2_rcbuf *method, *path, *scheme, *authority; /* pseudo-header fields, referenced */
    struct field_ref *fields;
    size_t field_count;
    size_t field_bytes;
    bool too_large;             /* header list over our bounds: answered 431 */
    bool has_body;              /* HEADERS did not end the stream */
    bool req_end;               /* END_STREAM received */
    bool want_start;            /* request head complete, exchange not yet started */
    bool started;               /* the exchange was started (or answered locally) */
    struct evbuffer *req_body;  /* received DATA not yet handed to libcurl */
    size_t req_unconsumed;      /* bytes received but not yet acknowledged with WINDOW_UPDATE */
    struct pg_exchange *ex;     /* NULL before start and after the upstream finished */
    struct evbuffer *resp_body; /* response bytes waiting for the client's window */
    bool resp_submitted;        /* final response HEADERS submitted */
    bool resp_eof;              /* no more response bytes will arrive */
    bool resp_deferred;         /* nghttp2 waits on our data source */
    bool pending;               /* on h2->pending */
    TAILQ_ENTRY(pg_stream) pending_link;
    TAILQ_ENTRY(pg_stream) link;
};

struct pg_h2 {
    struct pg_conn *conn;
    nghttp2_session *session;
    TAILQ_HEAD(, pg_stream) streams; /* every live stream */
    TAILQ_HEAD(, pg_stream) pending; /* streams with upstream work for the next flush */
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

static void stream_free(struct pg_stream *st)
{
    struct pg_h2 *h2 = st->h2;
    if (st->ex) {
        pg_exchange_detach(st->ex);
        st->ex = NULL;
    }
    if (st->req_unconsumed)
        nghttp2_session_consume_connection(h2->session, st->req_unconsumed);
    if (st->pending)
        TAILQ_REMOVE(&h2->pending, st, pending_link);
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

/* DATA payloads move from the stream's buffer to the output by reference: no copy. */
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
    if (evbuffer_add(out, framehd, 9) != 0 ||
        evbuffer_remove_buffer(st->resp_body, out, length) != (int)length)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    maybe_resume_upstream(st);
    return 0;
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
    size_t n = buffered < length ? buffered : length;
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
    bool head = st->method && rcbuf_is(st->method, "HEAD");
    return !head && status != 204 && status != 304 && status >= 200;
}

#define MAKE_NV(n, nlen, v, vlen)                                                                  \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), (nlen), (vlen), NGHTTP2_NV_FLAG_NONE                       \
    }

/* Submits a response (or a 1xx) whose fields nghttp2 copies before returning. */
static int submit_head(struct pg_stream *st, int status, const struct pg_header *fields,
                       size_t count, bool with_via)
{
    nghttp2_nv nva[2 + 256];
    char status_text[4];
    size_t n = 0;
    if (count > 256)
        return PG_ERR_TOO_LONG;
    snprintf(status_text, sizeof(status_text), "%03d", status);
    nva[n++] = MAKE_NV(":status", 7, status_text, 3);
    for (size_t i = 0; i < count; i++)
        nva[n++] =
            MAKE_NV(fields[i].name, fields[i].name_len, fields[i].value, fields[i].value_len);
    if (with_via)
        nva[n++] = MAKE_NV("via", 3, "1.1 pushgate", 12);
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

/* Answers a request ourselves (errors: 4xx, 502, 504) with a short text body. */
static void respond_locally(struct pg_stream *st, int status, const char *text)
{
    static const struct pg_header type = {"content-type", 12, "text/plain; charset=utf-8", 25};
    st->started = true;
    st->want_start = false;
    evbuffer_drain(st->resp_body, evbuffer_get_length(st->resp_body));
    evbuffer_add_printf(st->resp_body, "%s\n", text);
    st->resp_eof = true;
    if (submit_head(st, status, &type, 1, false) != PG_OK)
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
}

/* ---- Upstream exchange callbacks (run inside libcurl or from the loop). ---- */

static void on_upstream_head(void *ud, const struct pg_response_head *head)
{
    struct pg_stream *st = ud;
    if (submit_head(st, head->status, head->fields, head->count, head->status >= 200) != PG_OK) {
        pg_log_warn("stream %d: cannot submit the upstream's response head", st->id);
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
}

static bool on_upstream_body(void *ud, const char *data, size_t len)
{
    struct pg_stream *st = ud;
    if (evbuffer_get_length(st->resp_body) >= RESPONSE_HIGH_WATER)
        return false;
    if (evbuffer_add(st->resp_body, data, len) != 0)
        return false;
    wake_data(st);
    return true;
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

/* ---- Starting a request upstream (from pg_h2_flush only). ---- */

/* Returns 0 when the request may go upstream, else the status to answer with. */
static int validate_request(const struct pg_stream *st)
{
    if (st->too_large)
        return 431;
    if (!st->method || !st->path)
        return 400;
    if (rcbuf_is(st->method, "CONNECT"))
        return 405;
    nghttp2_vec path = buf_of(st->path);
    bool asterisk = path.len == 1 && path.base[0] == '*';
    if (asterisk ? !rcbuf_is(st->method, "OPTIONS") : path.base[0] != '/')
        return 400;
    if (memchr(path.base, '#', path.len))
        return 400;
    return 0;
}

static nghttp2_vec authority_of(const struct pg_stream *st)
{
    if (st->authority)
        return buf_of(st->authority);
    for (size_t i = 0; i < st->field_count; i++)
        if (rcbuf_is(st->fields[i].name, "host"))
            return buf_of(st->fields[i].value);
    return (nghttp2_vec){NULL, 0};
}

static int build_lines(const struct pg_stream *st, struct pg_lines *lines, long long *cl)
{
    struct pg_header fields[MAX_REQUEST_FIELDS];
    for (size_t i = 0; i < st->field_count; i++) {
        nghttp2_vec n = buf_of(st->fields[i].name), v = buf_of(st->fields[i].value);
        fields[i] = (struct pg_header){(const char *)n.base, n.len, (const char *)v.base, v.len};
    }
    nghttp2_vec authority = authority_of(st);
    struct pg_request_info info = {
        .authority = (const char *)authority.base,
        .authority_len = authority.len,
        .fields = fields,
        .count = st->field_count,
        .client_addr = st->h2->conn->client_addr,
        .tls = st->h2->conn->tls,
    };
    return pg_headers_build_upstream(&info, lines, cl);
}

static void start_upstream(struct pg_stream *st)
{
    st->want_start = false;
    st->started = true;
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
    struct pg_exchange_request req = {
        .method = (const char *)buf_of(st->method).base,
        .target = (const char *)buf_of(st->path).base,
        .lines = &lines,
        .has_body = st->has_body || content_length > 0,
        .content_length = content_length,
    };
    st->ex = pg_exchange_start(st->h2->conn->worker->upstream, &req, &exchange_handler, st);
    pg_lines_free(&lines);
    if (!st->ex)
        respond_locally(st, 502, "Bad Gateway");
}

static void do_stream_work(struct pg_stream *st)
{
    if (st->want_start) {
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
        evbuffer_get_length(st->resp_body) < RESPONSE_LOW_WATER)
        pg_exchange_resume_response(st->ex);
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

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    struct pg_h2 *h2 = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct pg_stream *st = stream_of(h2, frame->hd.stream_id);
    if (!st)
        return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        st->has_body = !end;
        st->want_start = true;
    }
    if (end)
        st->req_end = true;
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
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
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

bool pg_h2_finished(const struct pg_h2 *h2)
{
    return !nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session);
}
