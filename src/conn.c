#include "pushgate/conn.h"
#include "pushgate/common.h"
#include "pushgate/h2.h"
#include "pushgate/log.h"
#include "pushgate/worker.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void close_when_drained(struct pg_conn *conn);
static void start_linger(struct pg_conn *conn);
static void on_event(struct bufferevent *bev, short events, void *arg);

struct evbuffer *pg_conn_output(struct pg_conn *conn)
{
    return bufferevent_get_output(conn->bev);
}

void pg_conn_free(struct pg_conn *conn)
{
    struct pg_worker *w = conn->worker;
    TAILQ_REMOVE(&w->conns, conn, link);
    w->conn_count--;
    pg_h2_free(conn->h2);
    event_del(&conn->flush_ev);
    event_del(&conn->timer_ev);
    if (conn->bev) {
        if (conn->tls) {
            SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
            /* A quiet close: no close_notify round trip on a connection we are dropping. */
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        }
        bufferevent_free(conn->bev);
    }
    free(conn);
    pg_worker_conn_closed(w);
}

void pg_conn_schedule_flush(struct pg_conn *conn)
{
    event_active(&conn->flush_ev, EV_WRITE, 0);
}

static void arm_timer(struct pg_conn *conn, unsigned ms)
{
    struct timeval tv = pg_timeval_ms(ms);
    evtimer_add(&conn->timer_ev, &tv);
}

/* The idle clock runs while no stream is open; traffic on no stream (PING, SETTINGS) does not
 * stop it, so a client cannot hold a connection with pings alone. */
static void update_idle_timer(struct pg_conn *conn)
{
    if (!conn->ready) {
        if (!pg_h2_client_ready(conn->h2))
            return; /* the handshake deadline is running */
        conn->ready = true;
        event_del(&conn->timer_ev);
    }
    bool idle = pg_h2_idle(conn->h2);
    bool pending = evtimer_pending(&conn->timer_ev, NULL);
    if (idle && !pending)
        arm_timer(conn, conn->worker->cfg->idle_timeout_ms);
    else if (!idle && pending)
        event_del(&conn->timer_ev);
}

/* Runs the protocol's pending work and decides whether the connection is over.
 * Returns false when conn was freed. */
static bool flush_or_close(struct pg_conn *conn)
{
    if (conn->lingering)
        return false; /* the protocol is over; only the linger timer or EOF remain */
    if (pg_h2_flush(conn->h2) != PG_OK) {
        pg_conn_free(conn);
        return false;
    }
    update_idle_timer(conn);
    struct evbuffer *out = pg_conn_output(conn);
    if (pg_h2_finished(conn->h2)) {
        if (evbuffer_get_length(out) == 0) {
            start_linger(conn);
            return false;
        }
        close_when_drained(conn);
    }
    return true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_conn *conn = arg;
    if (!conn->ready) {
        pg_log_debug("client %s: handshake timeout", conn->client_addr);
        pg_conn_free(conn);
        return;
    }
    pg_log_debug("client %s: idle timeout", conn->client_addr);
    pg_h2_shutdown(conn->h2); /* GOAWAY(NO_ERROR); closes once it is written */
    flush_or_close(conn);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_or_close(arg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct pg_conn *conn = arg;
    if (pg_h2_recv(conn->h2, bufferevent_get_input(bev)) != PG_OK) {
        pg_conn_free(conn);
        return;
    }
    if (!flush_or_close(conn))
        return;
    /* An idle TLS connection need not keep OpenSSL's 16 KiB record buffer: bufferevent_openssl
     * stops reading before OpenSSL would release it by itself. */
    if (conn->tls && pg_h2_idle(conn->h2))
        SSL_free_buffers(bufferevent_openssl_get_ssl(bev));
    /* A client that does not read what it asked for gets no more of its requests read. */
    if (evbuffer_get_length(pg_conn_output(conn)) >= PG_CONN_OUTPUT_HIGH_WATER)
        bufferevent_disable(bev, EV_READ);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct pg_conn *conn = arg;
    if (!flush_or_close(conn))
        return;
    if (!pg_h2_finished(conn->h2))
        bufferevent_enable(bev, EV_READ);
}

/* Lingering close: closing a socket with unread input makes the kernel send RST, which can
 * destroy our GOAWAY in the client's receive queue before it is read. So after the last byte
 * is out we stop sending (FIN) and read and discard for a bounded time, until the client
 * closes too. */
#define LINGER_MS 2000

static void on_linger_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_linger_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pg_conn_free(arg);
}

static void start_linger(struct pg_conn *conn)
{
    conn->lingering = true;
    pg_h2_free(conn->h2); /* cancels what upstream work remains */
    conn->h2 = NULL;
    event_del(&conn->timer_ev);
    evtimer_assign(&conn->timer_ev, conn->worker->base, on_linger_over, conn);
    arm_timer(conn, LINGER_MS);
    if (!conn->tls) /* TLS: the peer reads our close_notify-less EOF when we close */
        shutdown(bufferevent_getfd(conn->bev), SHUT_WR);
    bufferevent_setcb(conn->bev, on_linger_read, NULL, on_event, conn);
    bufferevent_enable(conn->bev, EV_READ);
}

static void on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct pg_conn *conn = arg;
    if (evbuffer_get_length(pg_conn_output(conn)) == 0)
        start_linger(conn);
}

static bool alpn_is_h2(struct pg_conn *conn)
{
    const unsigned char *proto = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(conn->bev), &proto, &len);
    return len == 2 && memcmp(proto, "h2", 2) == 0;
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    struct pg_conn *conn = arg;
    if (events & BEV_EVENT_CONNECTED) {
        if (!alpn_is_h2(conn)) {
            pg_log_debug("client %s did not negotiate h2 with ALPN", conn->client_addr);
            pg_conn_free(conn);
        }
        return;
    }
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        pg_conn_free(conn);
}

static void close_when_drained(struct pg_conn *conn)
{
    bufferevent_disable(conn->bev, EV_READ);
    bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(conn->bev, NULL, on_drained, on_event, conn);
}

static void describe_peer(const struct sockaddr *addr, char *out, size_t len)
{
    const void *ip = addr->sa_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)addr)->sin_addr;
    if (!inet_ntop(addr->sa_family, ip, out, (socklen_t)len))
        snprintf(out, len, "unknown");
}

static struct bufferevent *make_transport(struct pg_worker *w, evutil_socket_t fd)
{
    int options = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (!w->ssl_ctx)
        return bufferevent_socket_new(w->base, fd, options);
    SSL *ssl = SSL_new(w->ssl_ctx);
    if (!ssl)
        return NULL;
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, options);
    if (!bev)
        SSL_free(ssl);
    return bev;
}

void pg_conn_accept(struct pg_worker *w, evutil_socket_t fd, const struct sockaddr *addr)
{
    struct pg_conn *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn->worker = w;
    conn->tls = w->ssl_ctx != NULL;
    describe_peer(addr, conn->client_addr, sizeof(conn->client_addr));
    event_assign(&conn->flush_ev, w->base, -1, 0, on_flush, conn);
    evtimer_assign(&conn->timer_ev, w->base, on_timer, conn);
    TAILQ_INSERT_TAIL(&w->conns, conn, link);
    w->conn_count++;
    arm_timer(conn, w->cfg->handshake_timeout_ms);
    conn->bev = make_transport(w, fd);
    if (!conn->bev) {
        close(fd);
        pg_conn_free(conn);
        return;
    }
    conn->h2 = pg_h2_new(conn);
    if (!conn->h2) {
        pg_conn_free(conn);
        return;
    }
    bufferevent_setwatermark(conn->bev, EV_WRITE, PG_CONN_OUTPUT_LOW_WATER, 0);
    /* A client that takes none of its bytes for this long is gone or hostile. */
    struct timeval write_timeout = pg_timeval_ms(w->cfg->write_timeout_ms);
    bufferevent_set_timeouts(conn->bev, NULL, &write_timeout);
    bufferevent_setcb(conn->bev, on_read, on_write, on_event, conn);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    /* The server preface (SETTINGS) goes out at once, before the client speaks. */
    flush_or_close(conn);
}
