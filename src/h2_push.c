/* HTTP/2 server push: the PUSH_PROMISE for a request the core decided to push (RFC 9113 §8.4),
 * submitted before the parent's HEADERS, and the promised stream that fetches it. */
#include "h2_internal.h"
#include "pushgate/common.h"

bool h2_push_allowed(const struct pg_request *req)
{
    const struct pg_h2 *h2 = h2_stream_of_req(req)->h2;
    return !h2->client_goaway &&
           nghttp2_session_get_remote_settings(h2->session, NGHTTP2_SETTINGS_ENABLE_PUSH) == 1;
}

static int32_t submit_promise(struct h2_stream *parent, const struct pg_pushed_request *req,
                              struct h2_stream *pushed)
{
    nghttp2_nv nva[4 + PG_ARRAY_LEN(req->fields)];
    size_t n = 0;
    nva[n++] = H2_NV(":method", 7, "GET", 3);
    nva[n++] = H2_NV(":scheme", 7, req->scheme.value, req->scheme.value_len);
    nva[n++] = H2_NV(":authority", 10, req->authority.value, req->authority.value_len);
    nva[n++] = H2_NV(":path", 5, req->path.value, req->path.value_len);
    for (size_t i = 0; i < req->count; i++)
        nva[n++] = H2_NV(req->fields[i].name, req->fields[i].name_len, req->fields[i].value,
                         req->fields[i].value_len);
    return nghttp2_submit_push_promise(parent->h2->session, NGHTTP2_FLAG_NONE, parent->id, nva, n,
                                       pushed);
}

int h2_push(struct pg_request *parent_req, struct pg_pushed_request *pushed)
{
    struct h2_stream *parent = h2_stream_of_req(parent_req);
    struct h2_stream *st = h2_stream_new(parent->h2);
    if (!st)
        return PG_ERR_NOMEM;
    st->id = submit_promise(parent, pushed, st);
    if (st->id < 0) {
        h2_stream_free(st);
        return PG_ERR_LIBRARY;
    }
    pg_request_start_pushed(&st->req, pushed, parent_req);
    return PG_OK;
}
