#include "pushgate/proxy.h"
#include "pushgate/account.h"
#include "pushgate/common.h"
#include "pushgate/hints.h"
#include "pushgate/log.h"
#include "pushgate/push.h"
#include "pushgate/upstream.h"
#include "pushgate/url.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct pg_exchange_handler exchange_handler;

void pg_proxy_conn_init(struct pg_proxy_conn *pc, const struct pg_proxy_env *env,
                        const struct pg_frontend_ops *ops)
{
    memset(pc, 0, sizeof(*pc));
    pc->env = env;
    pc->ops = ops;
    TAILQ_INIT(&pc->pending);
    TAILQ_INIT(&pc->waiting);
}

void pg_proxy_conn_clear(struct pg_proxy_conn *pc)
{
    free(pc->pushed);
    pc->pushed = NULL;
}

static void queue_work(struct pg_request *req)
{
    if (!req->pending) {
        req->pending = true;
        TAILQ_INSERT_TAIL(&req->pc->pending, req, queue_link);
    }
    req->pc->ops->wake(req);
}

static void leave_queue(struct pg_request *req)
{
    if (!req->pending)
        return;
    req->pending = false;
    if (req->stage == PG_STAGE_QUEUED) {
        TAILQ_REMOVE(&req->pc->waiting, req, queue_link);
        req->stage = PG_STAGE_READY;
    } else {
        TAILQ_REMOVE(&req->pc->pending, req, queue_link);
    }
}

/* A slot under --max-upstream-per-connection freed: the longest-waiting request starts. */
static void exchange_ended(struct pg_request *req)
{
    struct pg_proxy_conn *pc = req->pc;
    req->ex = NULL;
    req->stage = PG_STAGE_ANSWERED;
    pc->running_exchanges--;
    if (req->push_counted) {
        req->push_counted = false;
        pc->running_pushes--;
    }
    struct pg_request *next = TAILQ_FIRST(&pc->waiting);
    if (next) {
        leave_queue(next);
        queue_work(next);
    }
}

int pg_request_init(struct pg_request *req, struct pg_proxy_conn *pc)
{
    memset(req, 0, sizeof(*req));
    req->pc = pc;
    req->upstream_time_us = -1;
    req->response_length = -1;
    req->req_body = evbuffer_new();
    req->resp_body = evbuffer_new();
    if (!req->req_body || !req->resp_body) {
        if (req->req_body)
            evbuffer_free(req->req_body);
        if (req->resp_body)
            evbuffer_free(req->resp_body);
        return PG_ERR_NOMEM;
    }
    return PG_OK;
}

void pg_request_clear(struct pg_request *req, bool cancel)
{
    if (!req->pc)
        return;              /* cleared already */
    pg_request_account(req); /* the access log line and the counters, once per request */
    if (req->ex) {
        if (cancel)
            pg_exchange_cancel(req->ex);
        else
            pg_exchange_detach(req->ex);
        exchange_ended(req);
    }
    leave_queue(req);
    if (req->push_counted)
        req->pc->running_pushes--;
    pg_pushed_request_free(req->push);
    free(req->norm_path);
    free(req->parent_path);
    if (req->stall_ev)
        event_free(req->stall_ev);
    if (req->request_ev)
        event_free(req->request_ev);
    evbuffer_free(req->req_body);
    evbuffer_free(req->resp_body);
    memset(req, 0, sizeof(*req));
}

/* ---- Responses: the upstream's, or our own. ---- */

static int submit_final(struct pg_request *req, int status, const struct pg_header *fields,
                        size_t count, const struct pg_header *extra, size_t extra_count)
{
    struct pg_response resp = {
        .status = status,
        .fields = fields,
        .count = count,
        .extra = extra,
        .extra_count = extra_count,
        .body = !pg_request_bodyless_response(&req->head, status),
    };
    if (req->output == PG_OUTPUT_NONE)
        req->output = PG_OUTPUT_BODY;
    req->status = status;
    return req->pc->ops->submit_head(req, &resp);
}

/* Answers a request ourselves (errors: 4xx, 502, 503, 504) with a short text body. */
static void respond_locally(struct pg_request *req, int status)
{
    static const struct pg_header fields[] = {
        {"content-type", 12, "text/plain; charset=utf-8", 25},
        {"retry-after", 11, "1", 1}, /* 503 only: the upstream queue is full for now */
    };
    leave_queue(req);
    req->stage = PG_STAGE_ANSWERED;
    if (req->push) {
        /* An error page must not be cached as the pushed resource. */
        req->pc->ops->reset(req, PG_RESET_INTERNAL);
        return;
    }
    evbuffer_drain(req->resp_body, evbuffer_get_length(req->resp_body));
    req->piece_room = 0;
    int n = evbuffer_add_printf(req->resp_body, "%s\n", pg_request_reason(status));
    req->body_bytes = n > 0 ? (uint64_t)n : 0;
    req->output = PG_OUTPUT_COMPLETE;
    if (submit_final(req, status, fields, status == 503 ? 2 : 1, NULL, 0) != PG_OK)
        req->pc->ops->reset(req, PG_RESET_INTERNAL);
}

/* ---- Per-stream timers. ---- */

/* (Re)arms one of a request's timers, creating it on first use (most never need one). */
static void arm_timer(struct pg_request *req, struct event **ev, event_callback_fn cb, unsigned ms)
{
    if (!*ev) {
        *ev = evtimer_new(req->pc->env->base, cb, req);
        if (!*ev)
            return;
    }
    struct timeval tv = pg_timeval_ms(ms);
    evtimer_add(*ev, &tv);
}

/* A stream whose client takes nothing (window closed, never updated) would hold its upstream
 * connection forever: after --write-timeout without progress it is reset. */
static void on_stall(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_request *req = arg;
    pg_log_debug("client %s took no data for the write timeout: reset", req->pc->env->client_addr);
    req->pc->ops->reset(req, PG_RESET_CANCEL);
}

static void watch_request(struct pg_request *req);

/* A client that stops in the middle of a request (slowloris) holds a stream and, for a body,
 * an upstream transfer: --request-timeout bounds each silence. An unfinished header block
 * blocks the whole connection (nothing else may interleave), so that ends the connection. */
static void on_request_silence(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_request *req = arg;
    if (evbuffer_get_length(req->req_body) > 0) {
        watch_request(req); /* we hold bytes the upstream has not taken: not the client's turn */
        return;
    }
    pg_log_debug("client %s: request incomplete after the request timeout",
                 req->pc->env->client_addr);
    req->pc->ops->reset(req, req->input == PG_INPUT_HEAD ? PG_RESET_HEAD_TIMEOUT : PG_RESET_CANCEL);
}

/* (Re)starts the request's silence clock, or stops it once the request is complete. */
static void watch_request(struct pg_request *req)
{
    if (req->input == PG_INPUT_DONE) {
        if (req->request_ev)
            evtimer_del(req->request_ev);
        return;
    }
    arm_timer(req, &req->request_ev, on_request_silence, req->pc->env->cfg->request_timeout_ms);
}

/* ---- Upstream exchange callbacks (run inside libcurl or from the loop). ---- */

static void on_upstream_head(void *ud, const struct pg_response_head *head)
{
    struct pg_request *req = ud;
    char cookie[256];
    struct pg_header extra[2] = {{"via", 3, "1.1 pushgate", 12}};
    size_t extra_count = 1;
    /* A 1xx is forwarded there, unless it is a 103 after ours that adds nothing. */
    pg_hints_on_response(req, head);
    if (head->status < 200)
        return;
    req->response_length = head->content_length;
    if (req->upstream_start_us) {
        req->upstream_time_us = (int64_t)(pg_now_us() - req->upstream_start_us);
        pg_histogram_observe(&req->pc->env->counters->upstream_response,
                             (uint64_t)req->upstream_time_us);
    }
    if (req->digest_changed) {
        pg_push_format_cookie(req, cookie, sizeof(cookie));
        extra[extra_count++] = (struct pg_header){"set-cookie", 10, cookie, strlen(cookie)};
    }
    if (submit_final(req, head->status, head->fields, head->count, extra, extra_count) != PG_OK) {
        pg_log_warn("cannot submit the upstream's response head");
        req->pc->ops->reset(req, PG_RESET_INTERNAL);
    }
}

/* Appends len (at most PG_PIECE_PAYLOAD) bytes to body as a chain of its own with
 * PG_PIECE_ROOM free bytes in front, for the frontend's framing. The chain is built in the
 * worker's empty scratch buffer, where draining the bytes written first leaves them as free
 * room (libevent cannot do that in the middle of a buffer), and then moves to body. *room is
 * what more the piece can take. */
static bool append_piece(struct evbuffer *body, struct evbuffer *scratch, const char *data,
                         size_t len, size_t *room)
{
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(scratch, (ev_ssize_t)(len + PG_PIECE_ROOM), &vec, 1) != 1)
        return false;
    /* libevent rounds the chain up: the spare space counts, up to a whole piece. */
    size_t spare = vec.iov_len - PG_PIECE_ROOM;
    size_t capacity = spare < PG_PIECE_PAYLOAD ? spare : PG_PIECE_PAYLOAD;
    *room = capacity - len;
    memcpy((char *)vec.iov_base + PG_PIECE_ROOM, data, len);
    vec.iov_len = len + PG_PIECE_ROOM;
    bool ok = evbuffer_commit_space(scratch, &vec, 1) == 0 &&
              evbuffer_drain(scratch, PG_PIECE_ROOM) == 0 &&
              evbuffer_add_buffer(body, scratch) == 0;
    evbuffer_drain(scratch, evbuffer_get_length(scratch)); /* empty again, even on failure */
    return ok;
}

/* The stream's share of its connection's response budget (request.h). */
static size_t response_high_water(const struct pg_request *req)
{
    unsigned sharing = req->pc->running_exchanges ? req->pc->running_exchanges : 1;
    size_t share = (size_t)req->pc->env->cfg->response_buffer_kib * 1024 / sharing;
    if (share > PG_RESPONSE_HIGH_WATER)
        return PG_RESPONSE_HIGH_WATER;
    return share < PG_RESPONSE_MIN_HIGH_WATER ? PG_RESPONSE_MIN_HIGH_WATER : share;
}

static bool may_resume(const struct pg_request *req)
{
    return evbuffer_get_length(req->resp_body) < response_high_water(req) / 2;
}

/* Appends a body read in pieces with room in front (append_piece). */
static bool add_pieces(struct pg_request *req, const char *data, size_t len)
{
    /* Reads rarely end on a piece boundary: topping up the last piece first keeps frames full
     * (it fits, so libevent appends in place and leaves the room in front alone). */
    size_t off = len < req->piece_room ? len : req->piece_room;
    if (off && evbuffer_add(req->resp_body, data, off) != 0)
        return false;
    req->piece_room -= off;
    struct evbuffer *scratch = req->pc->env->scratch;
    for (size_t n; off < len; off += n) {
        n = len - off < PG_PIECE_PAYLOAD ? len - off : PG_PIECE_PAYLOAD;
        if (!append_piece(req->resp_body, scratch, data + off, n, &req->piece_room))
            return false; /* part of it is queued: it cannot be delivered again */
    }
    return true;
}

static enum pg_body_verdict on_upstream_body(void *ud, const char *data, size_t len)
{
    struct pg_request *req = ud;
    if (evbuffer_get_length(req->resp_body) >= response_high_water(req)) {
        /* paused until the client reads: not forever */
        arm_timer(req, &req->stall_ev, on_stall, req->pc->env->cfg->write_timeout_ms);
        return PG_BODY_LATER;
    }
    /* A body known to be small is copied out whole by the frontends (PG_SMALL_PIECE). */
    bool small = req->response_length >= 0 && req->response_length < PG_SMALL_PIECE;
    if (small ? evbuffer_add(req->resp_body, data, len) != 0 : !add_pieces(req, data, len))
        return PG_BODY_FAILED;
    req->body_bytes += len;
    req->pc->ops->body_ready(req);
    return PG_BODY_TAKEN;
}

static ssize_t on_upstream_read(void *ud, char *buf, size_t len)
{
    struct pg_request *req = ud;
    int n = evbuffer_remove(req->req_body, buf, len);
    if (n > 0) {
        /* The upstream took these bytes: only now may the client send more. */
        req->pc->ops->consume(req, (size_t)n);
        return n;
    }
    return req->input == PG_INPUT_DONE ? 0 : PG_EXCHANGE_READ_PAUSE;
}

static void on_upstream_done(void *ud, enum pg_exchange_result result)
{
    struct pg_request *req = ud;
    exchange_ended(req);
    size_t unread = evbuffer_get_length(req->req_body);
    if (unread) {
        /* The upstream answered without reading the whole body: let the client finish its
         * request so the stream can close. */
        evbuffer_drain(req->req_body, unread);
        req->pc->ops->consume(req, unread);
    }
    if (result == PG_EXCHANGE_OK) {
        req->output = PG_OUTPUT_COMPLETE;
        req->pc->ops->body_ready(req);
        return;
    }
    pg_account_upstream_error(req, result);
    if (req->output == PG_OUTPUT_NONE) {
        respond_locally(req, result == PG_EXCHANGE_TIMEOUT ? 504 : 502);
        return;
    }
    /* Headers are out: only a reset tells the client the body is incomplete. */
    req->pc->ops->reset(req, PG_RESET_INTERNAL);
}

static const struct pg_exchange_handler exchange_handler = {
    .on_head = on_upstream_head,
    .on_body = on_upstream_body,
    .read_body = on_upstream_read,
    .on_done = on_upstream_done,
};

/* ---- Starting a request upstream (from pg_proxy_run only). ---- */

/* Whether a path holds "/." or a percent-encoded dot: one pass, and most paths have neither
 * (a dot is usually an extension's, a percent sign rare). */
static bool may_have_dot_segment(const char *p, size_t len)
{
    for (size_t i = 1; i < len; i++) {
        if (p[i] == '.' && p[i - 1] == '/')
            return true;
        if (p[i] == '%' && i + 2 < len && p[i + 1] == '2' && (p[i + 2] | 0x20) == 'e')
            return true;
    }
    return false;
}

/* The upstream and we must agree on the resource: "/a/../b" is sent as "/b" (also with
 * percent-encoded dots); every other byte of the path goes out as the client sent it. */
static void normalize_path(struct pg_request *req)
{
    struct pg_header path = req->head.path;
    if (req->push || !path.value || !path.value_len || path.value[0] != '/')
        return;
    if (!may_have_dot_segment(path.value, path.value_len))
        return;
    char *out = malloc(path.value_len + 1);
    if (!out)
        return; /* validation still applies; the path goes out unchanged */
    size_t n = 0;
    int rv = pg_url_remove_dot_segments(path.value, path.value_len, out, path.value_len + 1, &n);
    if (rv != PG_OK || (n == path.value_len && memcmp(out, path.value, n) == 0)) {
        free(out);
        return;
    }
    req->norm_path = out;
}

static int build_lines(const struct pg_request *req, struct pg_lines *lines, long long *cl)
{
    struct pg_request_info info = {
        .authority = req->head.authority.value,
        .authority_len = req->head.authority.value_len,
        .fields = req->head.fields,
        .count = req->head.count,
        .client_addr = req->pc->env->client_addr,
        .tls = req->pc->env->tls,
        .push = req->push != NULL,
    };
    return pg_headers_build_upstream(&info, lines, cl);
}

static void start_upstream(struct pg_request *req)
{
    const struct pg_proxy_env *env = req->pc->env;
    int status = 0;
    normalize_path(req);
    if (!req->push && pg_request_validate(&req->head, env->tls, &status) != PG_OK) {
        respond_locally(req, status);
        return;
    }
    struct pg_lines lines = {0};
    long long content_length;
    if (build_lines(req, &lines, &content_length) != PG_OK) {
        pg_lines_free(&lines);
        respond_locally(req, 400);
        return;
    }
    struct pg_header path = pg_request_path(req);
    if (!req->push) /* a hint: may fail */
        pg_push_remember(req, req->head.authority, path.value, path.value_len);
    if (pg_upstream_saturated(env->upstream)) {
        pg_lines_free(&lines);
        pg_count(&env->counters->upstream_errors[PG_UPSTREAM_ERR_SATURATED], 1);
        respond_locally(req, 503);
        return;
    }
    pg_hints_on_request(req);
    /* Before the upstream answers, a 103 or a promise can only come from the learned table. */
    req->learned = req->hinted_links > 0 || req->pushes > 0;
    struct pg_exchange_request xreq = {
        .method = req->head.method.value, /* NUL-terminated (request.h) */
        .target = path.value,
        .lines = &lines,
        .has_body = req->has_body || content_length > 0,
        .content_length = content_length,
        .read_size =
            req->pc->running_exchanges >= PG_SHARED_READ_AFTER ? PG_UPSTREAM_READ_SIZE_SHARED : 0,
    };
    req->ex = pg_exchange_start(env->upstream, &xreq, &exchange_handler, req);
    pg_lines_free(&lines);
    if (!req->ex) {
        respond_locally(req, 502);
        return;
    }
    req->stage = PG_STAGE_UPSTREAM;
    req->upstream_start_us = pg_now_us();
    req->pc->running_exchanges++;
}

static void do_request_work(struct pg_request *req)
{
    struct pg_proxy_conn *pc = req->pc;
    if (req->stage == PG_STAGE_READY) {
        if (pc->running_exchanges >= pc->env->cfg->max_upstream_per_connection) {
            /* Closing streams fast (Rapid Reset) must not multiply upstream work either. */
            req->stage = PG_STAGE_QUEUED;
            req->pending = true;
            TAILQ_INSERT_TAIL(&pc->waiting, req, queue_link);
            return;
        }
        start_upstream(req);
        return;
    }
    if (!req->ex)
        return;
    if (pg_exchange_request_paused(req->ex) &&
        (evbuffer_get_length(req->req_body) > 0 || req->input == PG_INPUT_DONE))
        pg_exchange_resume_request(req->ex);
    /* Completion is only reported from the multi handle's loop callbacks, never from inside
     * curl_easy_pause, so req->ex is still valid here. */
    if (req->ex && pg_exchange_response_paused(req->ex) && may_resume(req)) {
        if (req->stall_ev)
            evtimer_del(req->stall_ev);
        pg_exchange_resume_response(req->ex);
    }
}

void pg_proxy_run(struct pg_proxy_conn *pc)
{
    while (!TAILQ_EMPTY(&pc->pending)) {
        struct pg_request *req = TAILQ_FIRST(&pc->pending);
        TAILQ_REMOVE(&pc->pending, req, queue_link);
        req->pending = false;
        do_request_work(req);
    }
}

/* ---- What the frontend reports. ---- */

void pg_request_head_started(struct pg_request *req)
{
    watch_request(req);
}

void pg_request_head_received(struct pg_request *req, bool has_body)
{
    pg_account_start(req);
    req->has_body = has_body;
    req->input = has_body ? PG_INPUT_BODY : PG_INPUT_DONE;
    req->stage = PG_STAGE_READY;
    watch_request(req);
    queue_work(req);
}

int pg_request_body_received(struct pg_request *req, const char *data, size_t len)
{
    if (req->stage == PG_STAGE_ANSWERED) {
        /* Answered already (locally or by the upstream): nobody will read these bytes. */
        req->pc->ops->consume(req, len);
        return PG_OK;
    }
    if (evbuffer_add(req->req_body, data, len) != 0)
        return PG_ERR_NOMEM;
    watch_request(req);
    if (req->ex && pg_exchange_request_paused(req->ex))
        queue_work(req);
    return PG_OK;
}

void pg_request_end_received(struct pg_request *req)
{
    req->input = PG_INPUT_DONE;
    watch_request(req);
    if (req->ex)
        queue_work(req);
}

void pg_request_output_drained(struct pg_request *req)
{
    if (evbuffer_get_length(req->resp_body) == 0)
        req->piece_room = 0; /* the last piece left */
    if (req->ex && pg_exchange_response_paused(req->ex) && may_resume(req))
        queue_work(req);
}

void pg_request_start_pushed(struct pg_request *req, struct pg_pushed_request *pushed,
                             const struct pg_request *parent)
{
    struct pg_header parent_path = pg_request_path(parent);
    req->parent_path = strndup(parent_path.value, parent_path.value_len); /* may be NULL */
    req->push = pushed;
    req->head = (struct pg_request_head){
        .method = {NULL, 0, "GET", 3},
        .scheme = pushed->scheme,
        .authority = pushed->authority,
        .path = pushed->path,
        .fields = pushed->fields,
        .count = pushed->count,
    };
    req->input = PG_INPUT_DONE;
    req->stage = PG_STAGE_READY;
    req->push_counted = true;
    req->pc->running_pushes++;
    pg_account_start(req);
    pg_count(&req->pc->env->counters->pushes_promised, 1);
    queue_work(req);
}
