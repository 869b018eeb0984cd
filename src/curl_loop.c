#include "pushgate/curl_loop.h"
#include "pushgate/common.h"

#include <event2/event.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Owned by its worker (curl_loop.h). */
struct pg_curl_loop {
    struct event_base *base;
    struct socket_watch **watches; /* by descriptor: every upstream socket we have an event for */
    size_t watches_len;
};

/* Whom a socket's readiness concerns. */
enum watch_state {
    WATCH_ACTIVE = 0, /* a transfer runs on it: readiness goes to libcurl */
    WATCH_PARKED,     /* its connection idles in libcurl's pool (CURL_POLL_REMOVE), but the
                       * read event stays registered, so that the next transfer on it costs no
                       * epoll_ctl; firing now means the upstream closed it (or sent junk) */
};

/* Libevent state for one upstream socket. Owned by the loop's table (by descriptor), from
 * libcurl's first interest in the socket until libcurl closes it (on_close_socket). */
struct socket_watch {
    struct event ev;
    struct pg_curl_multi *multi; /* whose libcurl the socket's readiness goes to */
    short events; /* what ev waits for (0: none): unchanged interest costs no epoll_ctl */
    enum watch_state state;
    uint64_t parked_ms; /* when it was parked (WATCH_PARKED) */
};

/* libcurl 7.88 asks poll(2) about a socket it is about to use even when our event loop knows
 * the answer: before reusing a pooled connection (is it still alive?), right after sending a
 * request (has the answer come?) and after each read of a body (is there more?). Each is a
 * poll with a zero timeout, two or more per request; no option turns them off (libcurl 8.10
 * and 8.15 dropped the last two, 8.22 skips the first for connections used within a second).
 * The executable's poll() answers them while libcurl runs on this worker: a socket whose read
 * event is registered (level-triggered) and has not fired since the last epoll_wait has
 * nothing to read yet, and what comes later is delivered by that event. A pooled socket is
 * taken for alive only within a second of its last transfer, as libcurl 8.22 does; past that,
 * or once its event fired (the upstream closed it), libcurl's own check runs. */
static __thread struct pg_curl_loop *driving; /* this thread's loop while libcurl runs */
#define ALIVE_WITHOUT_CHECK_MS 1000

extern int __poll(struct pollfd *fds, nfds_t nfds, int timeout);

/* The watch for fd, or NULL. */
static struct socket_watch *watch_at(const struct pg_curl_loop *loop, int fd)
{
    return fd >= 0 && (size_t)fd < loop->watches_len ? loop->watches[fd] : NULL;
}

static bool known_unreadable(const struct pg_curl_loop *loop, int fd)
{
    const struct socket_watch *watch = watch_at(loop, fd);
    if (!watch || !(watch->events & EV_READ))
        return false;
    return watch->state == WATCH_ACTIVE || pg_now_ms() - watch->parked_ms < ALIVE_WITHOUT_CHECK_MS;
}

/* glibc 2.36 declares poll's fds write-only, so GCC takes reading events for a read of
 * uninitialised memory; callers do fill it in. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    const struct pg_curl_loop *loop = driving;
    if (loop && nfds == 1 && timeout == 0 && (fds[0].events & POLLIN) &&
        !(fds[0].events & POLLOUT) && known_unreadable(loop, fds[0].fd)) {
        fds[0].revents = 0;
        return 0;
    }
    return __poll(fds, nfds, timeout);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static void drive(struct pg_curl_multi *m, curl_socket_t fd, int action)
{
    int running;
    driving = m->loop;
    curl_multi_socket_action(m->multi, fd, action, &running);
    driving = NULL;
    m->after(m->arg);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct socket_watch *watch = arg;
    struct pg_curl_multi *m = watch->multi; /* libcurl may close the socket and free watch */
    if (watch->state == WATCH_PARKED) {
        /* An idle pooled connection closed by the upstream: stop hearing about it; libcurl's
         * liveness check finds it dead before any reuse. */
        event_del(&watch->ev);
        watch->events = 0;
        return;
    }
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    drive(m, fd, action);
}

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void drop_watch(struct pg_curl_loop *loop, curl_socket_t fd)
{
    struct socket_watch *watch = watch_at(loop, fd);
    if (!watch)
        return;
    if (watch->events)
        event_del(&watch->ev);
    free(watch);
    loop->watches[fd] = NULL;
}

/* The watch for fd, created (with no events) if there is none. */
static struct socket_watch *find_watch(struct pg_curl_loop *loop, curl_socket_t fd)
{
    if ((size_t)fd >= loop->watches_len) {
        size_t len = loop->watches_len ? loop->watches_len : 64;
        while (len <= (size_t)fd)
            len *= 2;
        struct socket_watch **grown = realloc(loop->watches, len * sizeof(*grown));
        if (!grown)
            return NULL;
        memset(grown + loop->watches_len, 0, (len - loop->watches_len) * sizeof(*grown));
        loop->watches = grown;
        loop->watches_len = len;
    }
    if (!loop->watches[fd])
        loop->watches[fd] = calloc(1, sizeof(struct socket_watch));
    return loop->watches[fd];
}

/* libcurl's interest in a socket. A connection that goes back to the pool keeps its read
 * event (parked): in steady state a request costs no epoll_ctl. socketp is what libcurl
 * holds for fd (curl_multi_assign): NULL for a socket new to it, or one it stopped watching. */
static int on_socket_change(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct pg_curl_multi *m = userp;
    struct pg_curl_loop *loop = m->loop;
    short read_only = EV_PERSIST | EV_READ;
    if (what == CURL_POLL_REMOVE) {
        struct socket_watch *watch = socketp;
        if (watch && watch->events == read_only) {
            watch->state = WATCH_PARKED;
            watch->parked_ms = pg_now_ms();
        } else if (watch)
            drop_watch(loop, fd);
        return 0;
    }
    struct socket_watch *watch = find_watch(loop, fd);
    if (!watch)
        return -1;
    /* Active but unknown to libcurl: a socket it closed without telling us (a losing
     * happy-eyeballs attempt) whose descriptor came back; its event is stale. */
    if (!socketp && watch->state == WATCH_ACTIVE && watch->events) {
        event_del(&watch->ev);
        watch->events = 0;
    }
    watch->state = WATCH_ACTIVE;
    watch->multi = m;
    curl_multi_assign(m->multi, fd, watch);
    short events = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (watch->events == events)
        return 0;
    if (watch->events)
        event_del(&watch->ev);
    watch->events = events;
    event_assign(&watch->ev, loop->base, fd, events, on_socket_event, watch);
    event_add(&watch->ev, NULL);
    return 0;
}

/* Every upstream socket libcurl closes, pooled or not: its watch goes first. */
static int on_close_socket(void *clientp, curl_socket_t fd)
{
    drop_watch(clientp, fd);
    return close(fd);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct pg_curl_multi *m = userp;
    if (timeout_ms < 0) {
        evtimer_del(&m->timer);
        return 0;
    }
    unsigned ms = timeout_ms > UINT_MAX ? UINT_MAX : (unsigned)timeout_ms;
    uint64_t at = pg_now_ms() + ms;
    /* A pending timer that fires no later is kept: firing early costs libcurl one look at its
     * expiries, after which it sets the timer again (a timeout run makes it forget what it
     * last asked for); moving it costs a heap update per call, and libcurl asks for its 5 s
     * expiry again on every request, and for "now" on every handle added in one batch. */
    if (evtimer_pending(&m->timer, NULL) && m->timer_at_ms <= at)
        return 0;
    struct timeval tv = pg_timeval_ms(ms);
    evtimer_add(&m->timer, &tv);
    m->timer_at_ms = at;
    return 0;
}

struct pg_curl_loop *pg_curl_loop_new(struct event_base *base)
{
    struct pg_curl_loop *loop = calloc(1, sizeof(*loop));
    if (loop)
        loop->base = base;
    return loop;
}

void pg_curl_loop_free(struct pg_curl_loop *loop)
{
    if (!loop)
        return;
    for (size_t fd = 0; fd < loop->watches_len; fd++)
        drop_watch(loop, (curl_socket_t)fd);
    free(loop->watches);
    free(loop);
}

int pg_curl_multi_init(struct pg_curl_multi *m, struct pg_curl_loop *loop, void (*after)(void *arg),
                       void *arg)
{
    *m = (struct pg_curl_multi){
        .multi = curl_multi_init(), .loop = loop, .after = after, .arg = arg};
    if (!m->multi)
        return PG_ERR_LIBRARY;
    evtimer_assign(&m->timer, loop->base, on_curl_timer, m);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket_change);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return PG_OK;
}

void pg_curl_multi_cleanup(struct pg_curl_multi *m)
{
    if (!m->multi)
        return;
    evtimer_del(&m->timer);
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
}

void pg_curl_loop_watch_closes(struct pg_curl_loop *loop, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, loop);
}

bool pg_curl_loop_running(void)
{
    return driving != NULL;
}
