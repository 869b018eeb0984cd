/* HTTP/2 streams: what a stream holds beside its core request, and how it goes. */
#include "h2_internal.h"
#include "pushgate/common.h"

#include <event2/buffer.h>
#include <stdlib.h>

struct h2_stream *h2_stream_new(struct pg_h2 *h2)
{
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    if (pg_request_init(&st->req, &h2->pc) != PG_OK) {
        free(st);
        return NULL;
    }
    st->h2 = h2;
    st->req.protocol = "HTTP/2.0";
    TAILQ_INSERT_TAIL(&h2->streams, st, link);
    return st;
}

/* Frees the stream; with teardown (the session goes too) nothing is handed back to nghttp2. */
void h2_stream_release(struct h2_stream *st, bool teardown)
{
    struct pg_h2 *h2 = st->h2;
    size_t held = evbuffer_get_length(st->req.req_body);
    if (held && !teardown)
        nghttp2_session_consume_connection(h2->session, held);
    pg_request_clear(&st->req, teardown);
    TAILQ_REMOVE(&h2->streams, st, link);
    nghttp2_rcbuf *pseudo[] = {st->method, st->path, st->scheme, st->authority};
    for (size_t i = 0; i < PG_ARRAY_LEN(pseudo); i++)
        if (pseudo[i])
            nghttp2_rcbuf_decref(pseudo[i]);
    for (size_t i = 0; i < 2 * st->field_count; i++)
        nghttp2_rcbuf_decref(st->refs[i]);
    if (st->refs != st->inline_refs)
        free(st->refs);
    if (st->fields != st->inline_fields)
        free(st->fields);
    free(st);
}

void h2_stream_free(struct h2_stream *st)
{
    h2_stream_release(st, false);
}
