#include "pushgate/worker.h"
#include "pushgate/access_log.h"
#include "pushgate/common.h"
#include "pushgate/conn.h"
#include "pushgate/log.h"
#include "pushgate/learn.h"
#include "pushgate/upstream.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

int pg_listen_socket(const char *flag, const char *host, const char *port, bool exclusive,
                     unsigned *bound_port, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "%s %s:%s: %s", flag, host, port, gai_strerror(rc));
        return -1;
    }
    /* SO_REUSEPORT would let us share a port with another running program: bind once without
     * it first, so "address in use" is reported instead. SO_REUSEADDR on the probe still
     * refuses a port another socket listens on, but not one our previous run left in
     * TIME_WAIT, so a restart works at once. */
    int fd =
        !exclusive || strcmp(port, "0") == 0 ? -2 : socket(res->ai_family, res->ai_socktype, 0);
    int reuse = 1;
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) != 0 ||
                    bind(fd, res->ai_addr, res->ai_addrlen) != 0)) {
        snprintf(err, err_len, "%s %s:%s: %s", flag, host, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, err_len, "%s %s:%s: %s", flag, host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void set_listening(struct pg_worker *w, bool on)
{
    if (w->listening == on)
        return;
    w->listening = on;
    for (size_t i = 0; i < w->listener_count; i++)
        if (on)
            evconnlistener_enable(w->listeners[i]);
        else
            evconnlistener_disable(w->listeners[i]);
}

void pg_worker_accept(struct pg_worker *w, evutil_socket_t fd, const struct sockaddr *addr)
{
    struct pg_conn *conn = pg_conn_new(&w->conn_owner, fd, addr);
    if (!conn)
        return;
    TAILQ_INSERT_TAIL(&w->conns, conn, link);
    w->conn_count++;
    /* At the limit further clients wait in the kernel's backlog, costing us nothing. */
    if (w->conn_count >= w->max_conns)
        set_listening(w, false);
    pg_conn_start(conn);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg)
{
    (void)listener;
    (void)len;
    pg_worker_accept(arg, fd, addr);
}

/* A connection is being freed: it leaves the list, and accepting may resume (or, draining,
 * the last one ends the loop). */
static void on_conn_closed(struct pg_conn *conn, void *arg)
{
    struct pg_worker *w = arg;
    TAILQ_REMOVE(&w->conns, conn, link);
    w->conn_count--;
    if (w->draining && w->conn_count == 0)
        event_base_loopexit(w->base, NULL);
    if (w->conn_count < w->max_conns && w->listener_count && !evtimer_pending(w->backoff_ev, NULL))
        set_listening(w, true);
}

static void on_backoff_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_worker *w = arg;
    if (w->conn_count < w->max_conns)
        set_listening(w, true);
}

static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    (void)listener;
    struct pg_worker *w = arg;
    int err = errno;
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return; /* the client went away before we accepted it: nothing to do */
    /* Out of descriptors or memory: a listener left on would spin on the pending
     * connection. Pause accepting; closing connections or the backoff timer resume it. */
    pg_log_warn("accept failed: %s; pausing new connections for 100ms", strerror(err));
    set_listening(w, false);
    struct timeval tv = {0, 100 * 1000};
    evtimer_add(w->backoff_ev, &tv);
}

static void close_listeners(struct pg_worker *w)
{
    for (size_t i = 0; i < w->listener_count; i++)
        evconnlistener_free(w->listeners[i]);
    w->listener_count = 0; /* closing connections must not re-enable them */
}

static void drain(struct pg_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    struct pg_conn *conn, *next;
    for (conn = TAILQ_FIRST(&w->conns); conn; conn = next) {
        next = TAILQ_NEXT(conn, link);
        pg_conn_drain(conn); /* may free conn (never another one) */
    }
    if (w->conn_count == 0)
        event_base_loopexit(w->base, NULL);
}

static void reopen_log(struct pg_worker *w)
{
    if (w->access_log)
        pg_access_log_reopen(w->access_log);
}

/* Connections accepted from now on use the new context; open ones keep theirs. */
static void reload_tls(struct pg_worker *w)
{
    SSL_CTX *ctx = pg_tls_store_get(w->tls);
    if (!ctx)
        return;
    SSL_CTX_free(w->conn_owner.ssl_ctx);
    w->conn_owner.ssl_ctx = ctx;
}

/* What main can ask of a worker: bits of pg_worker.asked. */
enum {
    ASK_STOP = 1u << 0,
    ASK_DRAIN = 1u << 1,
    ASK_REOPEN_LOG = 1u << 2,
    ASK_RELOAD_TLS = 1u << 3,
};

/* Thread-safe: the bit stays set until the loop takes it, and the eventfd stays readable, so
 * an ask made before the loop started is not lost. */
static void ask(struct pg_worker *w, unsigned what)
{
    atomic_fetch_or(&w->asked, what);
    eventfd_write(w->notify_fd, 1);
}

static void on_asked(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct pg_worker *w = arg;
    eventfd_t ignored;
    eventfd_read(fd, &ignored);
    unsigned asked = atomic_exchange(&w->asked, 0u);
    if (asked & ASK_RELOAD_TLS)
        reload_tls(w);
    if (asked & ASK_REOPEN_LOG)
        reopen_log(w);
    if (asked & ASK_DRAIN)
        drain(w);
    if (asked & ASK_STOP)
        event_base_loopbreak(w->base);
}

int pg_worker_init(struct pg_worker *w, unsigned index, const struct pg_config *cfg,
                   struct pg_tls_store *tls, const struct pg_protocols *protocols, const int *fds,
                   size_t count)
{
    memset(w, 0, sizeof(*w));
    w->notify_fd = -1;
    atomic_init(&w->asked, 0u);
    w->index = index;
    w->cfg = cfg;
    w->tls = tls;
    TAILQ_INIT(&w->conns);
    /* The changelist folds the interest changes of one loop pass (libcurl flips a socket
     * between reading and writing for every request) into at most one epoll_ctl per fd. */
    struct event_config *ev_cfg = event_config_new();
    if (!ev_cfg)
        return PG_ERR_NOMEM;
    event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ev_cfg);
    event_config_free(ev_cfg);
    if (!w->base)
        return PG_ERR_LIBRARY;
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0)
        return PG_ERR_IO;
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, on_asked, w);
    w->backoff_ev = evtimer_new(w->base, on_backoff_over, w);
    w->scratch = evbuffer_new();
    if (!w->notify_ev || event_add(w->notify_ev, NULL) != 0 || !w->backoff_ev || !w->scratch)
        return PG_ERR_LIBRARY;
    w->max_conns = (cfg->max_connections + cfg->workers - 1) / cfg->workers;
    w->listening = true;
    w->upstream = pg_upstream_new(w->base, cfg);
    if (!w->upstream)
        return PG_ERR_LIBRARY;
    if (cfg->push_learn) {
        w->learn = pg_learn_new(cfg->push_learn_size, cfg->push_learn_ttl_ms);
        if (!w->learn)
            return PG_ERR_NOMEM;
    }
    if (*cfg->access_log &&
        !(w->access_log = pg_access_log_open(cfg->access_log, cfg->access_log_json, w->base,
                                             &w->counters.access_log_dropped))) {
        pg_log_error("--access-log %s: %s", cfg->access_log, strerror(errno));
        return PG_ERR_IO;
    }
    w->conn_owner = (struct pg_conn_owner){
        .cfg = cfg,
        .base = w->base,
        .ssl_ctx = tls ? pg_tls_store_get(tls) : NULL,
        .protocols = protocols,
        .upstream = w->upstream,
        .learn = w->learn,
        .scratch = w->scratch,
        .counters = &w->counters,
        .access_log = w->access_log,
        .closed = on_conn_closed,
        .arg = w,
    };
    for (size_t i = 0; i < count; i++) {
        struct evconnlistener *l = evconnlistener_new(
            w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
        if (!l) {
            close(fds[i]);
            return PG_ERR_LIBRARY;
        }
        evconnlistener_set_error_cb(l, on_accept_error);
        w->listeners[w->listener_count++] = l;
    }
    return PG_OK;
}

static void *run(void *arg)
{
    struct pg_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int pg_worker_start(struct pg_worker *w)
{
    return pthread_create(&w->thread, NULL, run, w) == 0 ? PG_OK : PG_ERR_LIBRARY;
}

void pg_worker_stop(struct pg_worker *w)
{
    if (w->joined)
        return;
    /* A loopbreak issued before the thread entered its loop would be forgotten; an ask is not. */
    ask(w, ASK_STOP);
    pthread_join(w->thread, NULL);
    w->joined = true;
}

size_t pg_worker_listener_fds(const struct pg_worker *w, int *fds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < w->listener_count && n < cap; i++)
        fds[n++] = evconnlistener_get_fd(w->listeners[i]);
    return n;
}

void pg_worker_reload_tls(struct pg_worker *w)
{
    if (w->tls)
        ask(w, ASK_RELOAD_TLS);
}

void pg_worker_reopen_log(struct pg_worker *w)
{
    ask(w, ASK_REOPEN_LOG);
}

void pg_worker_drain(struct pg_worker *w)
{
    ask(w, ASK_DRAIN);
}

bool pg_worker_wait(struct pg_worker *w, const struct timespec *deadline)
{
    if (w->joined)
        return true;
    /* pthread_timedjoin_np measures against CLOCK_REALTIME: convert the monotonic deadline. */
    struct timespec now_mono, now_real;
    clock_gettime(CLOCK_MONOTONIC, &now_mono);
    clock_gettime(CLOCK_REALTIME, &now_real);
    long long left_ns = (deadline->tv_sec - now_mono.tv_sec) * 1000000000LL +
                        (deadline->tv_nsec - now_mono.tv_nsec);
    if (left_ns < 0)
        left_ns = 0;
    long long abs_ns = now_real.tv_sec * 1000000000LL + now_real.tv_nsec + left_ns;
    struct timespec until = {(time_t)(abs_ns / 1000000000LL), (long)(abs_ns % 1000000000LL)};
    if (pthread_timedjoin_np(w->thread, NULL, &until) != 0)
        return false;
    w->joined = true;
    return true;
}

void pg_worker_free(struct pg_worker *w)
{
    close_listeners(w);
    while (!TAILQ_EMPTY(&w->conns))
        pg_conn_free(TAILQ_FIRST(&w->conns));
    /* Callbacks already made active (libcurl's, the upstream's timers) run once, without
     * blocking, before what they touch is freed. */
    if (w->base)
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    pg_access_log_free(w->access_log); /* after the connections: their last lines are in */
    pg_upstream_free(w->upstream);
    pg_learn_free(w->learn);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    SSL_CTX_free(w->conn_owner.ssl_ctx); /* after the connections: they hold their own */
    if (w->backoff_ev)
        event_free(w->backoff_ev);
    if (w->scratch)
        evbuffer_free(w->scratch);
    if (w->base)
        event_base_free(w->base);
    memset(w, 0, sizeof(*w));
}
