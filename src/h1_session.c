/* The HTTP/1.x connection: http_parser callbacks that copy each request head, check what the
 * parser leaves to us (RFC 9112 framing rules, field syntax, bounds), hand requests to the core
 * in order, and the protocol table the connection calls. */
#include "h1_internal.h"
#include "pushgate/common.h"
#include "pushgate/lazy_timer.h"
#include "pushgate/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the last parser callback of a head delivered (values and names come in pieces). */
enum piece { PIECE_TARGET, PIECE_NAME, PIECE_VALUE };

static struct pg_h1 *h1_of(http_parser *p)
{
    return p->data;
}

/* Appends bytes to the stream's strings, as a new NUL-terminated string or onto the last. */
static int add_piece(struct h1_stream *st, const char *at, size_t len, bool continues)
{
    struct pg_lines *s = &st->strings;
    if (continues && s->len) {
        s->len--; /* reopen the last string: drop its NUL */
        s->count--;
    }
    return pg_lines_add(s, at, len, "", "", 0);
}

/* Stops parsing this connection's input: the request is answered with status by us. */
static void fail_request(struct pg_h1 *h1, int status)
{
    struct h1_stream *st = h1->parsing;
    h1->parsing = NULL;
    if (h1->state != H1_BROKEN)
        h1->state = H1_CLOSING;
    if (st && st->state == H1_ACTIVE && st->output == H1_OUT_NONE) {
        h1_refuse_active(st, status); /* its body broke before any answer: answer it */
    } else if (st && st->state == H1_ACTIVE) {
        h1->state = H1_BROKEN; /* an answer is under way: it cannot be completed */
    } else if (st) {
        if (!st->error)
            st->error = status;
        st->state = H1_PARKED;
    }
    h1->head_started_ms = 0;
}

static int refuse(struct pg_h1 *h1, int status)
{
    fail_request(h1, status);
    return -1; /* the parser stops with HPE_CB_* */
}

static struct h1_stream *stream_new(struct pg_h1 *h1)
{
    struct h1_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    if (pg_request_init(&st->req, &h1->pc) != PG_OK) {
        free(st);
        return NULL;
    }
    st->h1 = h1;
    st->req.protocol = "HTTP/1.1";
    TAILQ_INSERT_TAIL(&h1->streams, st, link);
    h1->stream_count++;
    return st;
}

static int on_message_begin(http_parser *p)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = stream_new(h1);
    if (!st)
        return refuse(h1, 503);
    h1->parsing = st;
    st->last_piece = PIECE_TARGET;
    /* A head that does not complete within --request-timeout ends the connection. */
    pg_lazy_timer_start(h1->head_timer, &h1->head_started_ms,
                        h1->env->proxy.cfg->request_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = h1->parsing;
    st->target_len += len;
    if (st->target_len > H1_MAX_TARGET)
        return refuse(h1, 414);
    if (add_piece(st, at, len, st->strings.count == 1) != PG_OK)
        return refuse(h1, 503);
    return 0;
}

static int count_field_bytes(struct pg_h1 *h1, size_t len)
{
    struct h1_stream *st = h1->parsing;
    st->head_bytes += len;
    if (st->head_bytes > PG_REQUEST_MAX_HEAD_BYTES)
        return refuse(h1, 431);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = h1->parsing;
    if (st->state != H1_PARSING)
        return 0; /* trailer fields (after a chunked body) are not forwarded */
    bool continues = st->last_piece == PIECE_NAME;
    if (!continues && ++st->count > PG_REQUEST_MAX_FIELDS)
        return refuse(h1, 431);
    if (count_field_bytes(h1, len + (continues ? 0 : 32)) != 0)
        return -1;
    if (!st->strings.count && add_piece(st, "", 0, false) != PG_OK) /* no target: cannot be */
        return refuse(h1, 400);
    st->last_piece = PIECE_NAME;
    return add_piece(st, at, len, continues) == PG_OK ? 0 : refuse(h1, 503);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = h1->parsing;
    if (st->state != H1_PARSING)
        return 0; /* a trailer field: the head's views must not move */
    bool continues = st->last_piece == PIECE_VALUE;
    /* http_parser joins obs-fold lines into the value; RFC 9112 §5.2 lets a server reject
     * them, and a proxy must not pass on a field the next hop may read differently. */
    char before = at > h1->piece_start ? at[-1] : h1->last_byte;
    if (continues && len && before == '\n')
        return refuse(h1, 400);
    if (count_field_bytes(h1, len) != 0)
        return -1;
    st->last_piece = PIECE_VALUE;
    return add_piece(st, at, len, continues) == PG_OK ? 0 : refuse(h1, 503);
}

static bool equals_ci(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && strncasecmp(s, lit, len) == 0;
}

/* RFC 9112 §6.3: a request whose last transfer coding is not chunked has no knowable length
 * (400); one with codings before chunked ("gzip, chunked") is framed, but pushgate would have
 * to decode them to re-frame the body for the upstream (501, RFC 9112 §6.1). */
static bool last_coding_chunked(const struct pg_header *f)
{
    const char *end = f->value + f->value_len;
    const char *start = end;
    while (start > f->value && start[-1] != ',')
        start--;
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    return equals_ci(start, (size_t)(end - start), "chunked");
}

/* A request we answer ourselves: the status goes out through *status. */
static int answer(int *status, int code)
{
    *status = code;
    return code == 503 ? PG_ERR_NOMEM : PG_ERR_INVALID;
}

/* Builds the field views over the copied head: names lower-cased, values trimmed, every name
 * a token and every value clean. Returns 0, or a pg_err code with the status to answer. */
static int build_fields(struct h1_stream *st, int *status)
{
    if (st->count && !(st->fields = calloc(st->count, sizeof(*st->fields))))
        return answer(status, 503);
    char *p = st->strings.data + strlen(st->strings.data) + 1; /* after the target */
    for (size_t i = 0; i < st->count; i++) {
        char *name = p;
        size_t name_len = strlen(name);
        char *value = name + name_len + 1;
        size_t value_len = strlen(value);
        p = value + value_len + 1;
        while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
            value_len--;
        /* Names must be tokens (no whitespace before the colon); values free of controls
         * (http_parser lets NUL through). */
        if (!pg_headers_is_token(name, name_len) || !pg_headers_value_ok(value, value_len))
            return answer(status, 400);
        for (size_t c = 0; c < name_len; c++)
            name[c] = pg_ascii_lower(name[c]);
        st->fields[i] = (struct pg_header){name, name_len, value, value_len};
    }
    return 0;
}

/* Fields the core must not see: hop-by-hop ones named in Connection, and Host when the target
 * carries the authority (RFC 9112 §3.2.2: it is then ignored). */
static void drop_connection_fields(struct h1_stream *st, bool drop_host)
{
    size_t kept = 0;
    for (size_t i = 0; i < st->count; i++) {
        const struct pg_header *f = &st->fields[i];
        bool drop = drop_host && pg_header_name_is(f, "host");
        for (size_t j = 0; j < st->count && !drop; j++)
            if (pg_header_name_is(&st->fields[j], "connection"))
                drop = pg_headers_list_has(st->fields[j].value, st->fields[j].value_len, f->name,
                                           f->name_len);
        if (!drop)
            st->fields[kept++] = *f;
    }
    st->count = kept;
}

/* The request-target: origin-form, "*", or absolute-form (whose authority replaces Host).
 * Returns 0, or a pg_err code with the status to answer. */
static int parse_target(struct h1_stream *st, bool *absolute, int *status)
{
    struct pg_request_head *head = &st->req.head;
    const char *target = st->strings.data;
    size_t len = strlen(target);
    *absolute = false;
    if ((len == 1 && target[0] == '*') || (len && target[0] == '/')) {
        head->path = (struct pg_header){NULL, 0, target, len};
        return 0;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(target, len, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST)) || (u.field_set & (1 << UF_USERINFO)))
        return answer(status, 400);
    const char *scheme = target + u.field_data[UF_SCHEMA].off;
    if (!equals_ci(scheme, u.field_data[UF_SCHEMA].len, "http") &&
        !equals_ci(scheme, u.field_data[UF_SCHEMA].len, "https"))
        return answer(status, 400);
    size_t host_off = u.field_data[UF_HOST].off;
    size_t host_end = (u.field_set & (1 << UF_PORT))
                          ? (size_t)(u.field_data[UF_PORT].off + u.field_data[UF_PORT].len)
                          : (size_t)(host_off + u.field_data[UF_HOST].len);
    if (host_off && target[host_off - 1] == '[') /* an IPv6 literal keeps its brackets */
        host_off--, host_end += target[host_end] == ']';
    head->authority = (struct pg_header){NULL, 0, target + host_off, host_end - host_off};
    /* The path (and query) as origin-form, NUL-terminated, after the fields' strings. */
    size_t path_off = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].off : host_end;
    size_t path_len = len - path_off;
    const char *rest = target + path_off;
    if (memchr(rest, '#', path_len))
        path_len = (size_t)((const char *)memchr(rest, '#', path_len) - rest);
    size_t at = st->strings.len;
    bool slash = path_len == 0 || rest[0] != '/';
    char *copy = malloc(path_len + 1); /* rest points into the buffer that may move */
    if (!copy)
        return answer(status, 503);
    memcpy(copy, rest, path_len);
    int added = pg_lines_add(&st->strings, "/", slash, "", copy, path_len);
    free(copy);
    if (added != PG_OK)
        return answer(status, 503);
    target = st->strings.data; /* may have moved: views are built after this */
    head->authority.value = target + host_off;
    head->path = (struct pg_header){NULL, 0, target + at, path_len + slash};
    *absolute = true;
    return 0;
}

/* The checks http_parser leaves to us, and the core's view of the request. Returns 0, or a
 * pg_err code with the status to answer. */
static int prepare_head(struct pg_h1 *h1, struct h1_stream *st, http_parser *p, int *status)
{
    struct pg_request_head *head = &st->req.head;
    if (p->http_major != 1)
        return answer(status, 505);
    if (p->method == HTTP_CONNECT)
        return answer(status, 405);
    st->http_minor = p->http_minor;
    st->req.protocol = p->http_minor ? "HTTP/1.1" : "HTTP/1.0";
    bool absolute;
    if (parse_target(st, &absolute, status) != PG_OK || build_fields(st, status) != PG_OK)
        return PG_ERR_INVALID;
    size_t hosts = 0;
    const struct pg_header *host = NULL;
    for (size_t i = 0; i < st->count; i++) {
        const struct pg_header *f = &st->fields[i];
        if (pg_header_name_is(f, "host"))
            hosts++, host = f;
        if (pg_header_name_is(f, "transfer-encoding") &&
            !equals_ci(f->value, f->value_len, "chunked"))
            return answer(status, last_coding_chunked(f) ? 501 : 400);
        if (pg_header_name_is(f, "upgrade") && !equals_ci(f->value, f->value_len, "h2c"))
            return answer(status, 501); /* WebSocket and other upgrades are not proxied */
        if (pg_header_name_is(f, "expect")) {
            if (!equals_ci(f->value, f->value_len, "100-continue"))
                return answer(status, 417);
            st->expect_continue = st->http_minor >= 1;
        }
    }
    if (hosts > 1 || (hosts == 0 && st->http_minor >= 1))
        return answer(status, 400);
    drop_connection_fields(st, absolute);
    head->method =
        (struct pg_header){NULL, 0, http_method_str(p->method), strlen(http_method_str(p->method))};
    head->scheme = h1->env->proxy.tls ? (struct pg_header){NULL, 0, "https", 5}
                                      : (struct pg_header){NULL, 0, "http", 4};
    if (!absolute && host)
        head->authority = (struct pg_header){NULL, 0, host->value, host->value_len};
    else if (!absolute) /* HTTP/1.0 without Host: the upstream's own name */
        head->authority = (struct pg_header){NULL, 0, h1->env->proxy.cfg->upstream_host,
                                             strlen(h1->env->proxy.cfg->upstream_host)};
    head->fields = st->fields;
    head->count = st->count;
    st->has_body =
        (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != UINT64_MAX);
    st->expect_continue = st->expect_continue && st->has_body;
    st->keep_alive = http_should_keep_alive(p);
    return PG_OK;
}

static int on_headers_complete(http_parser *p)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = h1->parsing;
    h1->head_started_ms = 0;                  /* the pending timer, if any, lapses */
    if (add_piece(st, "", 0, false) != PG_OK) /* ends a trailing name without value */
        return refuse(h1, 503);
    int status = 0;
    if (prepare_head(h1, st, p, &status) != PG_OK)
        return refuse(h1, status);
    st->state = H1_PARKED;
    if (!st->keep_alive)
        h1->state = H1_LAST; /* read this request's body, then nothing more */
    /* A parked request's body is read once it is answered: the parser waits here. */
    if (st->has_body && TAILQ_FIRST(&h1->streams) != st)
        http_parser_pause(p, 1);
    h1_activate(h1);
    return 0;
}

/* Debian builds http_parser without HTTP_PARSER_STRICT, which skips the two bytes after chunk
 * data without looking at them: "3\r\nabcXY0\r\n\r\n" would pass as "abc". They must be CRLF
 * (RFC 9112 §7.1). The parser reports a chunk's last data when it reaches the byte after it, or
 * at the end of the piece; what lies beyond this piece is checked before the next one. */
static int check_chunk_end(struct pg_h1 *h1, const char *after)
{
    static const char crlf[] = "\r\n";
    for (unsigned i = 0; i < 2; i++) {
        if (after + i >= h1->piece_end) {
            h1->crlf_due = 2 - i;
            return 0;
        }
        if (after[i] != crlf[i])
            return refuse(h1, 400);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = h1->parsing;
    if (pg_request_body_received(&st->req, at, len) != PG_OK)
        return refuse(h1, 503);
    if ((p->flags & F_CHUNKED) && p->content_length == 0 && check_chunk_end(h1, at + len) != 0)
        return -1;
    if (evbuffer_get_length(st->req.req_body) >= H1_BODY_HIGH_WATER)
        http_parser_pause(p, 1); /* back-pressure: read on once the upstream took some */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct pg_h1 *h1 = h1_of(p);
    struct h1_stream *st = h1->parsing;
    h1->parsing = NULL;
    st->body_done = true;
    if (st->state == H1_ACTIVE)
        pg_request_end_received(&st->req);
    if (h1->stream_count > H1_PIPELINE_DEPTH || h1->state != H1_OPEN)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Whether the parser may take more of the client's bytes now. */
static bool parse_blocked(const struct pg_h1 *h1)
{
    const struct h1_stream *st = h1->parsing;
    if (h1->state == H1_CLOSING || h1->state == H1_BROKEN)
        return true;
    if (!st)
        return h1->state == H1_LAST || h1->stream_count > H1_PIPELINE_DEPTH;
    if (st->state == H1_PARKED && st->has_body)
        return true; /* its body waits until it is answered */
    return evbuffer_get_length(st->req.req_body) >= H1_BODY_HIGH_WATER;
}

static int status_for(enum http_errno err)
{
    return err == HPE_HEADER_OVERFLOW ? 431 : 400;
}

/* The rest of a chunk's closing CRLF, at the start of the next piece. */
static bool chunk_end_continues(struct pg_h1 *h1, const char *data, size_t len)
{
    static const char crlf[] = "\r\n";
    for (size_t i = 0; h1->crlf_due && i < len; i++, h1->crlf_due--) {
        if (data[i] != crlf[2 - h1->crlf_due]) {
            h1->crlf_due = 0;
            fail_request(h1, 400);
            return false;
        }
    }
    return true;
}

/* Feeds buffered input to the parser while it may take it. */
static void parse_input(struct pg_h1 *h1)
{
    struct evbuffer *input = h1->env->input;
    size_t len;
    while (!parse_blocked(h1) && (len = evbuffer_get_contiguous_space(input)) > 0) {
        const char *data = (const char *)evbuffer_pullup(input, (ev_ssize_t)len);
        if (h1->crlf_due && !chunk_end_continues(h1, data, len))
            break;
        h1->piece_start = data;
        h1->piece_end = data + len;
        size_t n = http_parser_execute(&h1->parser, &parser_settings, data, len);
        if (n > 0)
            h1->last_byte = data[n - 1];
        evbuffer_drain(input, n);
        enum http_errno err = HTTP_PARSER_ERRNO(&h1->parser);
        if (err == HPE_PAUSED) {
            http_parser_pause(&h1->parser, 0);
        } else if (err != HPE_OK) {
            if (h1->state != H1_CLOSING && h1->state != H1_BROKEN) {
                pg_log_debug("client %s: bad HTTP/1.x request: %s", h1->env->proxy.client_addr,
                             http_errno_name(err));
                if (!h1->parsing)
                    h1->parsing = stream_new(h1);
                fail_request(h1, status_for(err));
            }
        } else if (h1->parser.upgrade && !h1->parsing) {
            /* Only "Upgrade: h2c" gets here (others were refused): it is ignored and the
             * connection stays HTTP/1.1, so the parser starts afresh. */
            http_parser_init(&h1->parser, HTTP_REQUEST);
            h1->parser.data = h1;
        }
    }
    if (h1->state == H1_CLOSING || h1->state == H1_BROKEN)
        evbuffer_drain(input, evbuffer_get_length(input)); /* nothing more is read */
}

/* The head of a request did not complete within --request-timeout. */
static void on_head_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_h1 *h1 = arg;
    if (!h1->head_started_ms || !pg_lazy_timer_due(h1->head_timer, h1->head_started_ms,
                                                   h1->env->proxy.cfg->request_timeout_ms))
        return; /* no head is being read, or this one began later than the timer was set */
    pg_log_debug("client %s: request head incomplete after the request timeout",
                 h1->env->proxy.client_addr);
    fail_request(h1, 408);
    h1->env->wake(h1->env->conn);
}

/* ---- The protocol table. ---- */

static void *h1_create(const struct pg_conn_env *env)
{
    struct pg_h1 *h1 = calloc(1, sizeof(*h1));
    if (!h1)
        return NULL;
    h1->env = env;
    h1->head_timer = evtimer_new(env->proxy.base, on_head_timeout, h1);
    if (!h1->head_timer) {
        free(h1);
        return NULL;
    }
    pg_proxy_conn_init(&h1->pc, &env->proxy, &h1_frontend_ops);
    TAILQ_INIT(&h1->streams);
    http_parser_init(&h1->parser, HTTP_REQUEST);
    h1->parser.data = h1;
    return h1;
}

static void h1_free(void *session)
{
    struct pg_h1 *h1 = session;
    while (!TAILQ_EMPTY(&h1->streams))
        h1_stream_free(TAILQ_FIRST(&h1->streams), true);
    event_free(h1->head_timer);
    pg_proxy_conn_clear(&h1->pc);
    free(h1);
}

static int h1_recv(void *session, struct evbuffer *input)
{
    (void)input; /* the same buffer as env->input */
    parse_input(session);
    return PG_OK;
}

static int h1_flush(void *session)
{
    struct pg_h1 *h1 = session;
    if (h1->state == H1_BROKEN)
        return PG_OK; /* nothing more is started or written: the connection closes */
    /* Finishing a response may let a parked request start or more input be parsed. */
    for (int round = 0; round < 4; round++) {
        parse_input(h1);
        pg_proxy_run(&h1->pc);
        if (!h1_write_ready(h1) && TAILQ_EMPTY(&h1->pc.pending))
            break;
    }
    return PG_OK;
}

static bool h1_ready(const void *session)
{
    (void)session;
    return true; /* HTTP/1.x has no handshake of its own */
}

static bool h1_idle(const void *session)
{
    const struct pg_h1 *h1 = session;
    return TAILQ_EMPTY(&h1->streams) && evbuffer_get_length(h1->env->input) == 0;
}

static void h1_shutdown(void *session)
{
    struct pg_h1 *h1 = session;
    if (h1->state != H1_OPEN)
        return;
    /* A request being read is finished first; then nothing more is read. */
    h1->state = h1->parsing ? H1_LAST : H1_CLOSING;
    if (h1->state == H1_CLOSING && TAILQ_EMPTY(&h1->streams))
        evtimer_del(h1->head_timer);
}

static bool h1_finished(const void *session)
{
    const struct pg_h1 *h1 = session;
    if (h1->state == H1_BROKEN)
        return true;
    return h1->state != H1_OPEN && TAILQ_EMPTY(&h1->streams) && !h1->parsing;
}

static bool h1_read_blocked(const void *session)
{
    return parse_blocked(session);
}

const struct pg_protocol pg_h1_protocol = {
    .name = "http/1.1",
    .metric = PG_METRIC_HTTP1,
    .create = h1_create,
    .recv = h1_recv,
    .flush = h1_flush,
    .ready = h1_ready,
    .idle = h1_idle,
    .shutdown = h1_shutdown,
    .drain = h1_shutdown, /* both: finish the request being answered, then close */
    .finished = h1_finished,
    .free = h1_free,
    .read_blocked = h1_read_blocked,
};
