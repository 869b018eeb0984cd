/* HTTP/2 output: frames into the connection's bounded output buffer, DATA framed from the core's
 * response pieces, and the frontend table through which the core answers on a stream. */
#include "h2_internal.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#define TLS_RECORD_PAYLOAD 16384 /* the most plaintext one TLS record carries */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    (void)session;
    (void)flags;
    struct pg_h2 *h2 = user_data;
    struct evbuffer *out = h2->env->output;
    if (evbuffer_get_length(out) >= PG_CONN_OUTPUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
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
    struct h2_stream *st = source->ptr;
    struct evbuffer *body = st->req.resp_body;
    struct evbuffer *out = h2->env->output;
    if (evbuffer_get_length(out) >= PG_CONN_OUTPUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    struct evbuffer_iovec first;
    if (length >= PG_SMALL_PIECE && evbuffer_peek(body, (ev_ssize_t)length, NULL, &first, 1) == 1 &&
        first.iov_len == length) {
        if (evbuffer_prepend(body, framehd, 9) != 0 ||
            evbuffer_remove_buffer(body, out, length + 9) != (int)(length + 9))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else if (evbuffer_add(out, framehd, 9) != 0 ||
               (length && evbuffer_remove_buffer(body, out, length) != (int)length)) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    pg_request_output_drained(&st->req);
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
    if (h2->env->proxy.tls && max_frame_size > TLS_RECORD_PAYLOAD - 9)
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
    struct h2_stream *st = source->ptr;
    struct evbuffer *body = st->req.resp_body;
    bool complete = st->req.output == PG_OUTPUT_COMPLETE;
    size_t buffered = evbuffer_get_length(body);
    if (buffered == 0) {
        if (complete) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->resp_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    /* One frame per piece, so that on_send_data can move it whole. */
    struct evbuffer_iovec first;
    size_t n = length;
    if (evbuffer_peek(body, 1, NULL, &first, 1) == 1 && first.iov_len)
        n = first.iov_len < n ? first.iov_len : n;
    else
        n = buffered < n ? buffered : n;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (complete && n == buffered)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

void h2_set_send_callbacks(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, data_frame_length);
}

/* ---- The frontend table: how the core answers on a stream. ---- */

void h2_wake(struct pg_request *req)
{
    const struct pg_conn_env *env = h2_stream_of_req(req)->h2->env;
    env->wake(env->conn);
}

static int submit_nv(struct h2_stream *st, int status, const struct pg_header *fields, size_t count,
                     const struct pg_header *extra, size_t extra_count,
                     const nghttp2_data_provider *body)
{
    nghttp2_nv nva[1 + 256 + 2];
    char status_text[3];
    size_t n = 0;
    if (count > 256 || extra_count > 2)
        return PG_ERR_TOO_LONG;
    if (!pg_status_digits(status, status_text))
        return PG_ERR_INVALID;
    nva[n++] = H2_NV(":status", 7, status_text, 3);
    for (size_t i = 0; i < count; i++)
        nva[n++] = H2_NV(fields[i].name, fields[i].name_len, fields[i].value, fields[i].value_len);
    for (size_t i = 0; i < extra_count; i++)
        nva[n++] = H2_NV(extra[i].name, extra[i].name_len, extra[i].value, extra[i].value_len);
    int rv;
    if (status < 200)
        rv = nghttp2_submit_headers(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NULL, nva, n, NULL);
    else
        rv = nghttp2_submit_response(st->h2->session, st->id, nva, n, body);
    h2_wake(&st->req);
    return rv == 0 ? PG_OK : PG_ERR_LIBRARY;
}

int h2_submit_head(struct pg_request *req, const struct pg_response *resp)
{
    struct h2_stream *st = h2_stream_of_req(req);
    nghttp2_data_provider provider = {.source.ptr = st, .read_callback = read_response_body};
    return submit_nv(st, resp->status, resp->fields, resp->count, resp->extra, resp->extra_count,
                     resp->body ? &provider : NULL);
}

int h2_submit_1xx(struct pg_request *req, int status, const struct pg_header *fields, size_t count)
{
    return submit_nv(h2_stream_of_req(req), status, fields, count, NULL, 0, NULL);
}

void h2_body_ready(struct pg_request *req)
{
    struct h2_stream *st = h2_stream_of_req(req);
    if (st->resp_deferred) {
        st->resp_deferred = false;
        nghttp2_session_resume_data(st->h2->session, st->id);
    }
    h2_wake(req);
}

void h2_reset(struct pg_request *req, enum pg_reset_reason why)
{
    struct h2_stream *st = h2_stream_of_req(req);
    if (why == PG_RESET_HEAD_TIMEOUT)
        nghttp2_session_terminate_session(st->h2->session, NGHTTP2_NO_ERROR);
    else
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  why == PG_RESET_CANCEL ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
    h2_wake(req);
}

void h2_consume(struct pg_request *req, size_t n)
{
    struct h2_stream *st = h2_stream_of_req(req);
    nghttp2_session_consume(st->h2->session, st->id, n);
    h2_wake(req);
}
