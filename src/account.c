#include "pushgate/account.h"
#include "pushgate/access_log.h"
#include "pushgate/common.h"
#include "pushgate/metrics.h"

#include <event2/buffer.h>
#include <string.h>
#include <sys/time.h>

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pg_account_start(struct pg_request *req)
{
    req->start_us = pg_now_us();
    req->start_wall_ms = wall_ms();
}

void pg_account_upstream_error(struct pg_request *req, enum pg_exchange_result result)
{
    static const enum pg_upstream_error kinds[] = {
        [PG_EXCHANGE_CONNECT_FAILED] = PG_UPSTREAM_ERR_CONNECT,
        [PG_EXCHANGE_TIMEOUT] = PG_UPSTREAM_ERR_TIMEOUT,
        [PG_EXCHANGE_BAD_RESPONSE] = PG_UPSTREAM_ERR_MALFORMED,
        [PG_EXCHANGE_BROKEN] = PG_UPSTREAM_ERR_RESET,
    };
    if (result != PG_EXCHANGE_OK && (size_t)result < PG_ARRAY_LEN(kinds))
        pg_count(&req->pc->env->counters->upstream_errors[kinds[result]], 1);
}

static struct pg_header field_value(const struct pg_request *req, const char *name)
{
    const struct pg_header *f = pg_request_field(&req->head, name);
    return f ? (struct pg_header){NULL, 0, f->value, f->value_len} : (struct pg_header){0};
}

static void write_line(const struct pg_request *req, uint64_t elapsed_us)
{
    const struct pg_proxy_env *env = req->pc->env;
    struct pg_access_entry e = {
        .time_ms = req->start_wall_ms ? req->start_wall_ms : wall_ms(),
        .remote_addr = env->client_addr,
        .protocol = req->protocol ? req->protocol : "HTTP/2.0",
        .tls = env->tls,
        .method = req->head.method,
        .authority = req->head.authority,
        .path = pg_request_path(req),
        .referer = field_value(req, "referer"),
        .user_agent = field_value(req, "user-agent"),
        .status = req->status ? req->status : 499, /* nginx's "the client went away" */
        .bytes_sent = req->body_bytes,
        .request_time_us = elapsed_us,
        .upstream_time_us = req->upstream_time_us,
        .pushed = req->push != NULL,
        .parent_path = {NULL, 0, req->parent_path, req->parent_path ? strlen(req->parent_path) : 0},
        .hinted = req->hinted_links,
        .learned = req->learned,
    };
    pg_access_log_write(env->access_log, &e);
}

static void count_push(const struct pg_request *req, struct pg_counters *c)
{
    pg_count(&c->pushed_bytes, req->body_bytes);
    if (req->client_reset)
        pg_count(&c->pushes_cancelled, 1);
    else if (req->output == PG_OUTPUT_COMPLETE && evbuffer_get_length(req->resp_body) == 0)
        pg_count(&c->pushes_completed, 1);
}

void pg_request_account(const struct pg_request *req)
{
    struct pg_counters *c = req->pc->env->counters;
    if (!req->start_us && !req->status)
        return;
    uint64_t elapsed = req->start_us ? pg_now_us() - req->start_us : 0;
    if (req->status >= 100 && req->status < 600)
        pg_count(&c->requests[req->pc->env->protocol][req->status / 100 - 1], 1);
    pg_histogram_observe(&c->request_duration, elapsed);
    if (req->push)
        count_push(req, c);
    if (req->hinted_links) {
        pg_count(&c->early_hints_sent[PG_HINT_LEARNED], 1);
        /* 304 is still the page (the learned entry stays too): not a wasted hint. */
        if (req->status && (req->status < 200 || req->status >= 300) && req->status != 304)
            pg_count(&c->hinted_then_failed, 1);
    }
    if (req->pc->env->access_log)
        write_line(req, elapsed);
}
