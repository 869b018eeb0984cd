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

struct evbuffer *pg_conn_output(struct pg_conn *conn)
{
    return bufferevent_get_output(conn->bev);
}

void pg_conn_free(struct pg_conn *conn)
{
    TAILQ_REMOVE(&conn->worker->conns, conn, link);
    pg_h2_free(conn->h2);
    event_del(&conn->flush_ev);
    if (conn->bev) {
        if (conn->tls) {
            SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
            /* A quiet close: no close_notify round trip on a connection we are dropping. */
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        }
        bufferevent_free(conn->bev);
    }
    free(conn);
}

void pg_conn_schedule_flush(struct pg_conn *conn)
{
    event_active(&conn->flush_ev, EV_WRITE, 0);
}

/* Runs the protocol's pending work and decides whether the connection is over.
 * Returns false when conn was freed. */
static bool flush_or_close(struct pg_conn *conn)
{
    if (pg_h2_flush(conn->h2) != PG_OK) {
        pg_conn_free(conn);
        return false;
    }
    struct evbuffer *out = pg_conn_output(conn);
    if (pg_h2_finished(conn->h2)) {
        if (evbuffer_get_length(out) == 0) {
            pg_conn_free(conn);
            return false;
        }
        close_when_drained(conn);
    }
    return true;
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

static void on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct pg_conn *conn = arg;
    if (evbuffer_get_length(pg_conn_output(conn)) == 0)
        pg_conn_free(conn);
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
    TAILQ_INSERT_TAIL(&w->conns, conn, link);
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
    bufferevent_setcb(conn->bev, on_read, on_write, on_event, conn);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    /* The server preface (SETTINGS) goes out at once, before the client speaks. */
    flush_or_close(conn);
}
