/* HTTP/1.x responses: the status line and fields we write, the body framed by Content-Length,
 * chunked or to the close, responses in request order, and the frontend table through which
 * the core answers. */
#include "h1_internal.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h1_stream_free(struct h1_stream *st, bool teardown)
{
    struct pg_h1 *h1 = st->h1;
    if (h1->parsing == st)
        h1->parsing = NULL;
    pg_request_clear(&st->req, teardown);
    TAILQ_REMOVE(&h1->streams, st, link);
    h1->stream_count--;
    pg_lines_free(&st->strings);
    free(st->fields);
    free(st);
}

static void wake(struct pg_request *req)
{
    const struct pg_conn_env *env = h1_stream_of_req(req)->h1->env;
    env->wake(env->conn);
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LITERAL(p, lit) put(p, lit, sizeof(lit) - 1)

/* A response head: the status line, fields[count], extra[extra_count], then the fixed lines of
 * tail (with the blank line). Written into one reserved piece of out: an evbuffer_add per name,
 * separator and value cost more than copying the bytes. */
struct head_lines {
    int status;
    const struct pg_header *fields, *extra;
    size_t count, extra_count;
    const char *tail;
    size_t tail_len;
};

static int add_head(struct evbuffer *out, const struct head_lines *h)
{
    const char *reason = pg_request_reason(h->status);
    size_t reason_len = strlen(reason);
    size_t len = sizeof("HTTP/1.1 200 ") - 1 + reason_len + 2 + h->tail_len;
    for (size_t i = 0; i < h->count; i++)
        len += h->fields[i].name_len + 2 + h->fields[i].value_len + 2;
    for (size_t i = 0; i < h->extra_count; i++)
        len += h->extra[i].name_len + 2 + h->extra[i].value_len + 2;
    char digits[3];
    if (!pg_status_digits(h->status, digits))
        return PG_ERR_INVALID;
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, (ev_ssize_t)len, &vec, 1) != 1 || vec.iov_len < len)
        return PG_ERR_NOMEM;
    char *p = put(PUT_LITERAL((char *)vec.iov_base, "HTTP/1.1 "), digits, 3);
    p = PUT_LITERAL(put(PUT_LITERAL(p, " "), reason, reason_len), "\r\n");
    for (size_t k = 0; k < 2; k++) {
        const struct pg_header *f = k ? h->extra : h->fields;
        for (size_t i = 0, n = k ? h->extra_count : h->count; i < n; i++) {
            p = PUT_LITERAL(put(p, f[i].name, f[i].name_len), ": ");
            p = PUT_LITERAL(put(p, f[i].value, f[i].value_len), "\r\n");
        }
    }
    put(p, h->tail, h->tail_len);
    vec.iov_len = len;
    return evbuffer_commit_space(out, &vec, 1) == 0 ? PG_OK : PG_ERR_NOMEM;
}

/* A request refused before it reached the core (framing, syntax, bounds): a short text answer
 * and the connection closes, since what follows in the input cannot be trusted. */
static void write_error(struct h1_stream *st)
{
    struct evbuffer *out = st->h1->env->output;
    const char *reason = pg_request_reason(st->error);
    size_t len = strlen(reason);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %03d %s\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\nVia: 1.1 pushgate\r\n\r\n",
                        st->error, reason, len + 1);
    evbuffer_add(out, reason, len);
    evbuffer_add(out, "\n", 1);
    st->output = H1_OUT_DONE;
    st->keep_alive = false;
    st->req.status = st->error; /* counted and logged when the stream goes */
    st->req.body_bytes = len + 1;
}

void h1_refuse_active(struct h1_stream *st, int status)
{
    st->req.status = status;          /* its log line says what it got */
    pg_request_clear(&st->req, true); /* cancels an exchange it may have started */
    st->error = status;
    write_error(st);
    st->h1->env->wake(st->h1->env->conn);
}

void h1_activate(struct pg_h1 *h1)
{
    struct h1_stream *st = TAILQ_FIRST(&h1->streams);
    if (!st || st->state != H1_PARKED)
        return;
    st->state = H1_ACTIVE;
    if (st->error) {
        write_error(st);
        return;
    }
    if (st->expect_continue) /* RFC 9110 §10.1.1: the client waits for this before the body */
        evbuffer_add(h1->env->output, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (h1->parsing == st && st->has_body)
        h1->env->wake(h1->env->conn); /* its body may be read now */
    pg_request_head_received(&st->req, st->has_body);
    if (st->body_done && st->has_body)
        pg_request_end_received(&st->req);
}

/* Writes one piece (at most PG_PIECE_PAYLOAD bytes, the first chain of body) with its framing:
 * a chunk-size line goes into the room in front of the piece (with the previous chunk's CRLF
 * before it), so a large piece moves to the output whole; a small one is copied. */
static bool write_piece(struct h1_stream *st, struct evbuffer *body, struct evbuffer *out)
{
    struct evbuffer_iovec first;
    if (evbuffer_peek(body, -1, NULL, &first, 1) < 1 || first.iov_len == 0)
        return false;
    size_t n = first.iov_len;
    char prefix[PG_PIECE_ROOM + 1];
    int plen = 0;
    if (st->framing == H1_FRAME_CHUNKED) {
        plen = snprintf(prefix, sizeof(prefix), "%s%zx\r\n", st->chunk_open ? "\r\n" : "", n);
        st->chunk_open = true;
    }
    if (n >= PG_SMALL_PIECE && plen <= PG_PIECE_ROOM) {
        if (plen && evbuffer_prepend(body, prefix, (size_t)plen) != 0)
            return false;
        return evbuffer_remove_buffer(body, out, n + (size_t)plen) == (int)(n + (size_t)plen);
    }
    evbuffer_add(out, prefix, (size_t)plen);
    return evbuffer_remove_buffer(body, out, n) == (int)n;
}

static void write_body(struct h1_stream *st)
{
    struct evbuffer *body = st->req.resp_body, *out = st->h1->env->output;
    while (evbuffer_get_length(out) < PG_CONN_OUTPUT_HIGH_WATER && evbuffer_get_length(body))
        if (!write_piece(st, body, out))
            break;
    pg_request_output_drained(&st->req);
    if (st->req.output != PG_OUTPUT_COMPLETE || evbuffer_get_length(body))
        return;
    if (st->framing == H1_FRAME_CHUNKED)
        evbuffer_add(out, st->chunk_open ? "\r\n0\r\n\r\n" : "0\r\n\r\n", st->chunk_open ? 7 : 5);
    st->output = H1_OUT_DONE;
}

/* The response is out: the stream goes, and the connection serves the next one or closes. */
static void finish(struct h1_stream *st)
{
    struct pg_h1 *h1 = st->h1;
    bool reusable = st->keep_alive && st->framing != H1_FRAME_CLOSE && st->body_done;
    if (!reusable && h1->state != H1_BROKEN)
        h1->state = H1_CLOSING; /* an unread request body cannot be skipped safely */
    h1_stream_free(st, false);
}

bool h1_write_ready(struct pg_h1 *h1)
{
    bool progress = false;
    struct h1_stream *st;
    while ((st = TAILQ_FIRST(&h1->streams)) && h1->state != H1_BROKEN) {
        if (st->state == H1_PARKED) {
            h1_activate(h1);
            progress = true;
        }
        if (st->state != H1_ACTIVE)
            break;
        if (st->output == H1_OUT_BODY)
            write_body(st);
        if (st->output != H1_OUT_DONE)
            break;
        finish(st);
        progress = true;
    }
    return progress;
}

/* ---- The frontend table: how the core answers on the active stream. ---- */

static bool has_field(const struct pg_header *fields, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (pg_header_name_is(&fields[i], name))
            return true;
    return false;
}

static int submit_head(struct pg_request *req, const struct pg_response *resp)
{
    struct h1_stream *st = h1_stream_of_req(req);
    struct pg_h1 *h1 = st->h1;
    struct evbuffer *out = h1->env->output;
    if (!resp->body)
        st->framing = H1_FRAME_NONE;
    else if (has_field(resp->fields, resp->count, "content-length"))
        st->framing = H1_FRAME_LENGTH;
    else if (st->http_minor >= 1)
        st->framing = H1_FRAME_CHUNKED;
    else
        st->framing = H1_FRAME_CLOSE; /* HTTP/1.0 knows no chunks: the close ends the body */
    if (st->framing == H1_FRAME_CLOSE || h1->state != H1_OPEN)
        st->keep_alive = false; /* the last response of this connection says so */
    char tail[64], *t = tail;
    if (st->framing == H1_FRAME_CHUNKED)
        t = PUT_LITERAL(t, "Transfer-Encoding: chunked\r\n");
    if (!st->keep_alive)
        t = PUT_LITERAL(t, "Connection: close\r\n");
    else if (st->http_minor == 0)
        t = PUT_LITERAL(t, "Connection: keep-alive\r\n");
    t = PUT_LITERAL(t, "\r\n");
    int rv =
        add_head(out, &(struct head_lines){resp->status, resp->fields, resp->extra, resp->count,
                                           resp->extra_count, tail, (size_t)(t - tail)});
    if (rv != PG_OK)
        return rv;
    st->output = st->framing == H1_FRAME_NONE ? H1_OUT_DONE : H1_OUT_BODY;
    wake(req);
    return PG_OK;
}

/* 1xx only to HTTP/1.1 clients (RFC 9110 §15.2), and 103 only with --early-hints-http1: some
 * HTTP/1.1 clients mishandle informational responses, and browsers act on 103 only over
 * HTTP/2 and later. */
static int submit_1xx(struct pg_request *req, int status, const struct pg_header *fields,
                      size_t count)
{
    struct h1_stream *st = h1_stream_of_req(req);
    struct evbuffer *out = st->h1->env->output;
    if (st->http_minor < 1 || !st->h1->env->proxy.cfg->early_hints_http1 ||
        st->output != H1_OUT_NONE)
        return PG_ERR_INVALID; /* declined: nothing was sent */
    int rv = add_head(out, &(struct head_lines){status, fields, NULL, count, 0, "\r\n", 2});
    if (rv != PG_OK)
        return rv;
    wake(req);
    return PG_OK;
}

static void body_ready(struct pg_request *req)
{
    wake(req);
}

/* HTTP/1.1 has no stream reset: the connection closes once what is written drained, and the
 * client sees the response end early. */
static void reset(struct pg_request *req, enum pg_reset_reason why)
{
    struct h1_stream *st = h1_stream_of_req(req);
    pg_log_debug("client %s: response abandoned (%d)", st->h1->env->proxy.client_addr, (int)why);
    st->h1->state = H1_BROKEN;
    wake(req);
}

static void consume(struct pg_request *req, size_t n)
{
    (void)n;
    wake(req); /* the parser may take more body bytes now */
}

const struct pg_frontend_ops h1_frontend_ops = {
    .submit_head = submit_head,
    .submit_1xx = submit_1xx,
    .body_ready = body_ready,
    .reset = reset,
    .consume = consume,
    .wake = wake,
    .push_allowed = NULL,
    .push = NULL,
};
