#include "pushgate/upstream.h"
#include "pushgate/common.h"
#include "pushgate/curl_loop.h"
#include "pushgate/lazy_timer.h"
#include "pushgate/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define HEAD_MAX_BYTES (64 * 1024) /* an upstream head larger than this is refused (502) */
#define HEAD_MAX_FIELDS 256
/* Idle handles kept for reuse: re-creating one costs more than the request. libcurl 7.88
 * frees a handle's receive buffer (PG_UPSTREAM_READ_SIZE) as each transfer ends (multi_done),
 * so a pooled handle keeps only its own state, about 7 KiB. */
#define EASY_POOL_MAX 256

/* libcurl 7.88 looks for a reusable connection by walking every connection to the host, once
 * per request: with 300 requests in flight that walk was a tenth of our instructions per
 * request. Each shard is a multi handle of its own with a share of the connection limit, so
 * each walk covers a share of the connections. */
#define UPSTREAM_SHARDS 8

/* One multi handle and its connections. Owned by its pg_upstream. */
struct upstream_shard {
    struct pg_upstream *up;
    struct pg_curl_multi m; /* driven by up->loop */
    size_t running_count;   /* exchanges on this multi handle */
    size_t limit;           /* its share of --upstream-max-connections: at most so many run */
};

/* Owned by the worker; touched only on its thread. */
struct pg_upstream {
    struct event_base *base;
    const struct pg_config *cfg;
    struct upstream_shard shards[UPSTREAM_SHARDS];
    size_t shard_count;                /* min(UPSTREAM_SHARDS, --upstream-max-connections) */
    TAILQ_HEAD(, pg_exchange) running; /* every live exchange, for shutdown */
    TAILQ_HEAD(, pg_exchange) timed;   /* those --upstream-timeout counts for, oldest first */
    TAILQ_HEAD(, pg_exchange) waiting; /* EXCHANGE_WAITING ones, oldest first */
    size_t waiting_count;
    struct event timeout_ev;        /* pending while timed is not empty (arm_timeout) */
    CURL *easy_pool[EASY_POOL_MAX]; /* idle handles, shared options kept (release_easy) */
    size_t easy_pool_len;
    CURLU *origin;             /* the upstream URL, parsed once (CURLOPT_CURLU) */
    bool origin_is_address;    /* its host is an IP address: nothing to look up, ever */
    struct pg_curl_loop *loop; /* the shards' sockets and timers on base */
};

/* Where an exchange is. Every connection busy, libcurl would queue a transfer itself, but
 * only after looking for a connection (its Curl_connect, about 9k instructions, done again
 * when one frees): held here instead, a transfer is given to libcurl when it can run. */
enum exchange_place {
    EXCHANGE_WAITING, /* in up->waiting: every shard runs as many as its connections */
    EXCHANGE_RUNNING, /* on shard's multi handle */
};

/* Created by pg_exchange_start; freed by finish() or cancel. */
struct pg_exchange {
    struct pg_upstream *up;
    enum exchange_place place;
    struct upstream_shard *shard; /* EXCHANGE_RUNNING: the one it runs on */
    CURL *easy;
    struct curl_slist *header_list;            /* make_header_list's, one allocation */
    const struct pg_exchange_handler *handler; /* NULL once detached */
    void *ud;
    uint64_t alive_at_ms; /* its last sign of life (pg_now_ms); 0 while not timed (paused) */
    char *head;           /* response head being collected */
    size_t head_len;
    size_t head_cap;
    bool head_done;    /* the final head was delivered */
    bool bodyless;     /* HEAD, 204 or 304: no body will follow */
    bool is_head;      /* the request method is HEAD */
    bool bad_response; /* we aborted the transfer over its head */
    bool recv_paused;
    bool send_paused;
    TAILQ_ENTRY(pg_exchange) link;
    TAILQ_ENTRY(pg_exchange) timed_link; /* in up->timed while alive_at_ms is set */
    TAILQ_ENTRY(pg_exchange) wait_link;  /* in up->waiting while EXCHANGE_WAITING */
};

static void check_done(void *shard);
static void on_timeout(evutil_socket_t fd, short what, void *arg);

/* --upstream-timeout counts from the last sign of life (a header line, a body piece). Every
 * exchange has the same limit, so the order of their last signs of life is the order of their
 * deadlines: a queue, oldest first, and one timer for its head replace a timer per exchange, and
 * a sign of life moves the exchange to the back instead of updating libevent's timer heap. The
 * timer is pending whenever the queue is not empty; it may fire early (its head left), and
 * then it is set again for the new head (lazy_timer.h). */
static void arm_timeout(struct pg_exchange *ex)
{
    struct pg_upstream *up = ex->up;
    bool was_empty = TAILQ_EMPTY(&up->timed);
    if (ex->alive_at_ms)
        TAILQ_REMOVE(&up->timed, ex, timed_link);
    TAILQ_INSERT_TAIL(&up->timed, ex, timed_link);
    if (was_empty)
        pg_lazy_timer_start(&up->timeout_ev, &ex->alive_at_ms, up->cfg->upstream_timeout_ms);
    else
        ex->alive_at_ms = pg_now_ms();
}

static void stop_timeout(struct pg_exchange *ex)
{
    if (!ex->alive_at_ms)
        return;
    TAILQ_REMOVE(&ex->up->timed, ex, timed_link);
    ex->alive_at_ms = 0;
}

/* The shards split the connection limit so that together they hold exactly that many. */
static bool init_shard(struct pg_upstream *up, size_t i)
{
    struct upstream_shard *shard = &up->shards[i];
    long limit = (long)(up->cfg->upstream_max_connections / up->shard_count +
                        (i < up->cfg->upstream_max_connections % up->shard_count));
    shard->up = up;
    shard->limit = (size_t)limit;
    if (pg_curl_multi_init(&shard->m, up->loop, check_done, shard) != PG_OK)
        return false;
    curl_multi_setopt(shard->m.multi, CURLMOPT_MAX_HOST_CONNECTIONS, limit);
    curl_multi_setopt(shard->m.multi, CURLMOPT_MAXCONNECTS, limit);
    return true;
}

/* Whether the URL's host is an IPv4 or (bracketed) IPv6 address. */
static bool host_is_address(CURLU *url)
{
    char *host = NULL;
    if (curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        return false;
    unsigned char addr[sizeof(struct in6_addr)];
    size_t len = strlen(host);
    bool v6 = len > 2 && host[0] == '[' && host[len - 1] == ']';
    if (v6)
        host[len - 1] = '\0';
    bool is_address =
        v6 ? inet_pton(AF_INET6, host + 1, addr) == 1 : inet_pton(AF_INET, host, addr) == 1;
    curl_free(host);
    return is_address;
}

struct pg_upstream *pg_upstream_new(struct event_base *base, const struct pg_config *cfg)
{
    struct pg_upstream *up = calloc(1, sizeof(*up));
    if (!up)
        return NULL;
    up->base = base;
    up->cfg = cfg;
    TAILQ_INIT(&up->running);
    TAILQ_INIT(&up->timed);
    TAILQ_INIT(&up->waiting);
    evtimer_assign(&up->timeout_ev, base, on_timeout, up);
    up->shard_count = cfg->upstream_max_connections < UPSTREAM_SHARDS
                          ? cfg->upstream_max_connections
                          : UPSTREAM_SHARDS;
    if (!(up->loop = pg_curl_loop_new(base)))
        goto fail;
    for (size_t i = 0; i < up->shard_count; i++)
        if (!init_shard(up, i))
            goto fail;
    up->origin = curl_url();
    if (!up->origin ||
        curl_url_set(up->origin, CURLUPART_URL, cfg->upstream_origin, 0) != CURLUE_OK)
        goto fail;
    up->origin_is_address = host_is_address(up->origin);
    return up;
fail:
    pg_upstream_free(up);
    return NULL;
}

/* The shard with the most room; ties go to the lowest index, so that requests one after
 * another keep reusing the same connection. */
static struct upstream_shard *pick_shard(struct pg_upstream *up)
{
    struct upstream_shard *best = &up->shards[0];
    for (size_t i = 1; i < up->shard_count; i++)
        if (up->shards[i].running_count < best->running_count)
            best = &up->shards[i];
    return best;
}

/* A pooled handle keeps the options every request shares (set_shared_options); those that
 * differ are set again by set_request_options, which costs less than curl_easy_reset. */
static void release_easy(struct pg_upstream *up, CURL *easy)
{
    if (up->easy_pool_len < EASY_POOL_MAX) {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL); /* the list dies with its exchange */
        up->easy_pool[up->easy_pool_len++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* Hands ex to shard's multi handle; false when libcurl refuses it. */
static bool run_on(struct pg_exchange *ex, struct upstream_shard *shard)
{
    if (curl_multi_add_handle(shard->m.multi, ex->easy) != CURLM_OK)
        return false;
    ex->place = EXCHANGE_RUNNING;
    ex->shard = shard;
    shard->running_count++;
    return true;
}

/* Gives waiting exchanges, oldest first, to the shards with room. Not while libcurl runs on
 * this thread (its callbacks may end exchanges): check_done follows every run. */
static void start_waiting(struct pg_upstream *up)
{
    struct pg_exchange *ex;
    while (!pg_curl_loop_running() && (ex = TAILQ_FIRST(&up->waiting))) {
        struct upstream_shard *shard = pick_shard(up);
        if (shard->running_count >= shard->limit || !run_on(ex, shard))
            return; /* a failed add is tried again later; the upstream timeout bounds it */
        TAILQ_REMOVE(&up->waiting, ex, wait_link);
        up->waiting_count--;
    }
}

static void free_exchange(struct pg_exchange *ex)
{
    struct pg_upstream *up = ex->up;
    TAILQ_REMOVE(&up->running, ex, link);
    stop_timeout(ex);
    if (ex->place == EXCHANGE_WAITING) {
        TAILQ_REMOVE(&up->waiting, ex, wait_link);
        up->waiting_count--;
    } else {
        ex->shard->running_count--;
        curl_multi_remove_handle(ex->shard->m.multi, ex->easy);
    }
    release_easy(up, ex->easy);
    free(ex->header_list);
    free(ex->head);
    free(ex);
    start_waiting(up);
}

void pg_upstream_free(struct pg_upstream *up)
{
    if (!up)
        return;
    while (!TAILQ_EMPTY(&up->waiting)) /* first, so that none is started as others end */
        free_exchange(TAILQ_FIRST(&up->waiting));
    while (!TAILQ_EMPTY(&up->running))
        free_exchange(TAILQ_FIRST(&up->running));
    evtimer_del(&up->timeout_ev);
    for (size_t i = 0; i < up->easy_pool_len; i++)
        curl_easy_cleanup(up->easy_pool[i]);
    for (size_t i = 0; i < up->shard_count; i++)
        pg_curl_multi_cleanup(&up->shards[i].m);
    pg_curl_loop_free(up->loop); /* after the multi handles: they close pooled sockets */
    curl_url_cleanup(up->origin);
    free(up);
}

static void finish(struct pg_exchange *ex, enum pg_exchange_result result)
{
    if (ex->handler)
        ex->handler->on_done(ex->ud, result);
    free_exchange(ex);
}

static enum pg_exchange_result map_result(const struct pg_exchange *ex, CURLcode code)
{
    if (code == CURLE_OK)
        return ex->head_done ? PG_EXCHANGE_OK : PG_EXCHANGE_BAD_RESPONSE;
    if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
        return PG_EXCHANGE_CONNECT_FAILED;
    if (code == CURLE_OPERATION_TIMEDOUT)
        return PG_EXCHANGE_TIMEOUT;
    if (ex->bad_response || !ex->head_done)
        return PG_EXCHANGE_BAD_RESPONSE;
    return PG_EXCHANGE_BROKEN;
}

/* After every run of libcurl on a shard (curl_loop.h's after): its finished transfers end. */
static void check_done(void *arg)
{
    struct upstream_shard *shard = arg;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(shard->m.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct pg_exchange *ex;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&ex);
        CURLcode code = msg->data.result;
        if (code != CURLE_OK)
            pg_log_debug("upstream transfer failed: %s", curl_easy_strerror(code));
        finish(ex, map_result(ex, code));
    }
    start_waiting(shard->up); /* for exchanges ended while libcurl ran */
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_upstream *up = arg;
    unsigned limit_ms = up->cfg->upstream_timeout_ms;
    struct pg_exchange *ex;
    while ((ex = TAILQ_FIRST(&up->timed)) &&
           pg_lazy_timer_due(&up->timeout_ev, ex->alive_at_ms, limit_ms)) {
        pg_log_debug("upstream timeout after %ums", limit_ms);
        finish(ex, PG_EXCHANGE_TIMEOUT); /* takes it off the queue */
    }
}

/* A complete head block (1xx or final) was collected. Returns false to abort. */
static bool deliver_head(struct pg_exchange *ex)
{
    struct pg_header fields[HEAD_MAX_FIELDS];
    struct pg_response_head head;
    int result =
        pg_headers_parse_response(ex->head, ex->head_len, &head, fields, PG_ARRAY_LEN(fields));
    ex->head_len = 0;
    if (result != PG_OK || head.status == 101 || head.status > 999) {
        pg_log_warn("upstream sent an unusable response head (%s)",
                    result == PG_OK ? "unexpected 101" : pg_strerror(result));
        return false;
    }
    if (head.status < 200) {
        /* 100 is libcurl's business; 103 carries hints worth forwarding; others are dropped. */
        if (head.status == 103 && ex->handler)
            ex->handler->on_head(ex->ud, &head);
        return true;
    }
    ex->head_done = true;
    ex->bodyless = ex->is_head || head.status == 204 || head.status == 304;
    if (ex->handler)
        ex->handler->on_head(ex->ud, &head);
    return true;
}

static size_t on_header_line(char *data, size_t size, size_t count, void *userp)
{
    struct pg_exchange *ex = userp;
    size_t len = size * count;
    if (ex->head_done)
        return len; /* trailer fields: not forwarded yet */
    if (ex->head_len + len > HEAD_MAX_BYTES)
        goto bad;
    if (ex->head_len + len > ex->head_cap) {
        size_t cap = ex->head_cap ? ex->head_cap * 2 : 1024;
        while (cap < ex->head_len + len)
            cap *= 2;
        char *head = realloc(ex->head, cap);
        if (!head)
            goto bad;
        ex->head = head;
        ex->head_cap = cap;
    }
    memcpy(ex->head + ex->head_len, data, len);
    ex->head_len += len;
    bool blank = (len == 2 && data[0] == '\r' && data[1] == '\n') || (len == 1 && data[0] == '\n');
    if (blank && !deliver_head(ex))
        goto bad;
    /* The timer bounds the wait for the whole head; it restarts once the head is complete
     * (re-arming it per line cost more than parsing the line). */
    if (blank)
        arm_timeout(ex);
    return len;
bad:
    ex->bad_response = true;
    return 0; /* libcurl aborts the transfer with CURLE_WRITE_ERROR */
}

static size_t on_body_bytes(char *data, size_t size, size_t count, void *userp)
{
    struct pg_exchange *ex = userp;
    size_t len = size * count;
    if (!ex->handler)
        return len;
    enum pg_body_verdict verdict = ex->handler->on_body(ex->ud, data, len);
    if (verdict == PG_BODY_FAILED)
        return 0; /* libcurl ends the transfer (CURLE_WRITE_ERROR): broken */
    if (verdict == PG_BODY_LATER) {
        ex->recv_paused = true;
        stop_timeout(ex); /* a slow client is not the upstream's fault */
        return CURL_WRITEFUNC_PAUSE;
    }
    arm_timeout(ex);
    return len;
}

static size_t on_body_request(char *buf, size_t size, size_t count, void *userp)
{
    struct pg_exchange *ex = userp;
    if (!ex->handler)
        return CURL_READFUNC_ABORT;
    ssize_t n = ex->handler->read_body(ex->ud, buf, size * count);
    if (n == PG_EXCHANGE_READ_PAUSE) {
        ex->send_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    arm_timeout(ex);
    return (size_t)n;
}

static void set_shared_options(struct pg_upstream *up, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_CURLU, up->origin); /* parsed once, not per request */
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* the environment never redirects upstream traffic */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* ...so libcurl need not read no_proxy either */
    /* libcurl caches an address too, and prunes its cache at the end of every transfer (a walk
     * of the cache and time(2)): an address never changes, so its entry never expires. A name
     * keeps libcurl's 60 s, so that its upstream may move. */
    if (up->origin_is_address)
        curl_easy_setopt(h, CURLOPT_DNS_CACHE_TIMEOUT, -1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)up->cfg->upstream_connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_bytes);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_body_request);
    pg_curl_loop_watch_closes(up->loop, h);
}

static CURL *take_easy(struct pg_upstream *up)
{
    if (up->easy_pool_len)
        return up->easy_pool[--up->easy_pool_len];
    CURL *h = curl_easy_init();
    if (h)
        set_shared_options(up, h);
    return h;
}

/* libcurl only reads CURLOPT_HTTPHEADER's list (struct curl_slist is public): one allocation
 * holds the nodes and a copy of the lines, where curl_slist_append makes two per line (a node
 * and a copy of its text). lines holds the Host line at least (pg_headers_build_upstream).
 * Returns NULL when out of memory; free() frees it all. */
static struct curl_slist *make_header_list(const struct pg_lines *lines, bool chunked)
{
    static char chunked_line[] = "Transfer-Encoding: chunked";
    size_t count = lines->count + (chunked ? 1 : 0);
    struct curl_slist *nodes = malloc(count * sizeof(*nodes) + lines->len);
    if (!nodes)
        return NULL;
    char *text = memcpy(nodes + count, lines->data, lines->len);
    size_t i = 0;
    for (size_t off = 0; off < lines->len; off += strlen(text + off) + 1, i++)
        nodes[i] = (struct curl_slist){text + off, &nodes[i + 1]};
    if (chunked)
        nodes[i++] = (struct curl_slist){chunked_line, NULL};
    nodes[i - 1].next = NULL;
    return nodes;
}

static void set_request_options(struct pg_exchange *ex, const struct pg_exchange_request *req)
{
    CURL *h = ex->easy;
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE,
                     (long)(req->read_size ? req->read_size : PG_UPSTREAM_READ_SIZE));
    curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, req->target);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, ex->header_list);
    curl_easy_setopt(h, CURLOPT_PRIVATE, ex);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, ex);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ex);
    curl_easy_setopt(h, CURLOPT_READDATA, ex);
    /* The method of the handle's previous request must not carry over. */
    bool custom = strcmp(req->method, "GET") != 0 && !ex->is_head;
    curl_easy_setopt(h, CURLOPT_UPLOAD, req->has_body ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_NOBODY, ex->is_head ? 1L : 0L);
    /* UPLOAD streams from the read callback; CUSTOMREQUEST keeps the client's method. */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, custom || req->has_body ? req->method : NULL);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                     (curl_off_t)(req->has_body ? req->content_length : -1));
}

bool pg_upstream_saturated(const struct pg_upstream *up)
{
    size_t running = up->waiting_count;
    for (size_t i = 0; i < up->shard_count; i++)
        running += up->shards[i].running_count;
    return running >= (size_t)up->cfg->upstream_max_connections + up->cfg->upstream_queue;
}

struct pg_exchange *pg_exchange_start(struct pg_upstream *up, const struct pg_exchange_request *req,
                                      const struct pg_exchange_handler *handler, void *ud)
{
    struct pg_exchange *ex = calloc(1, sizeof(*ex));
    if (!ex)
        return NULL;
    ex->up = up;
    ex->handler = handler;
    ex->ud = ud;
    ex->is_head = strcmp(req->method, "HEAD") == 0;
    ex->header_list = make_header_list(req->lines, req->has_body && req->content_length < 0);
    ex->easy = take_easy(up);
    if (!ex->header_list || !ex->easy)
        goto fail;
    set_request_options(ex, req);
    struct upstream_shard *shard = pick_shard(up);
    if (shard->running_count < shard->limit && TAILQ_EMPTY(&up->waiting)) {
        if (!run_on(ex, shard))
            goto fail;
    } else {
        ex->place = EXCHANGE_WAITING;
        TAILQ_INSERT_TAIL(&up->waiting, ex, wait_link);
        up->waiting_count++;
    }
    TAILQ_INSERT_TAIL(&up->running, ex, link);
    arm_timeout(ex);
    return ex;
fail:
    if (ex->easy)
        release_easy(up, ex->easy);
    free(ex->header_list);
    free(ex);
    return NULL;
}

void pg_exchange_cancel(struct pg_exchange *ex)
{
    free_exchange(ex);
}

void pg_exchange_detach(struct pg_exchange *ex)
{
    if (!(ex->head_done && ex->bodyless) || ex->send_paused) {
        pg_exchange_cancel(ex);
        return;
    }
    ex->handler = NULL;
    ex->ud = NULL;
}

static void apply_pause(struct pg_exchange *ex)
{
    int mask = (ex->recv_paused ? CURLPAUSE_RECV : 0) | (ex->send_paused ? CURLPAUSE_SEND : 0);
    curl_easy_pause(ex->easy, mask);
}

void pg_exchange_resume_response(struct pg_exchange *ex)
{
    if (!ex->recv_paused)
        return;
    ex->recv_paused = false;
    arm_timeout(ex);
    /* May deliver the held bytes through on_body before it returns. */
    apply_pause(ex);
}

void pg_exchange_resume_request(struct pg_exchange *ex)
{
    if (!ex->send_paused)
        return;
    ex->send_paused = false;
    apply_pause(ex);
}

bool pg_exchange_response_paused(const struct pg_exchange *ex)
{
    return ex->recv_paused;
}

bool pg_exchange_request_paused(const struct pg_exchange *ex)
{
    return ex->send_paused;
}
