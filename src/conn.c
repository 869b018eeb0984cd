#include "pushgate/conn.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

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

static bool is_tls(const struct pg_conn *conn)
{
    return conn->owner->ssl_ctx != NULL;
}

void pg_conn_free(struct pg_conn *conn)
{
    if (conn->session)
        conn->proto->free(conn->session);
    if (conn->proto)
        pg_count(&conn->owner->counters->connections_closed[conn->proto->metric], 1);
    event_del(&conn->flush_ev);
    event_del(&conn->timer_ev);
    if (conn->bev) {
        if (is_tls(conn)) {
            SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
            /* A quiet close: no close_notify round trip on a connection we are dropping. */
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        }
        bufferevent_free(conn->bev);
    }
    const struct pg_conn_owner *owner = conn->owner;
    owner->closed(conn, owner->arg);
    free(conn);
}

static void wake(void *arg)
{
    struct pg_conn *conn = arg;
    event_active(&conn->flush_ev, EV_WRITE, 0);
}

static void arm_timer(struct pg_conn *conn, unsigned ms)
{
    struct timeval tv = pg_timeval_ms(ms);
    evtimer_add(&conn->timer_ev, &tv);
}

/* The idle clock runs while no request is open; traffic on no stream (PING, SETTINGS) does not
 * stop it, so a client cannot hold a connection with pings alone. */
static void update_idle_timer(struct pg_conn *conn)
{
    if (conn->state == PG_CONN_HANDSHAKE) {
        if (!conn->proto->ready(conn->session))
            return; /* the handshake deadline is running */
        conn->state = PG_CONN_OPEN;
        event_del(&conn->timer_ev);
    }
    bool idle = conn->proto->idle(conn->session);
    bool pending = evtimer_pending(&conn->timer_ev, NULL);
    if (idle && !pending)
        arm_timer(conn, conn->owner->cfg->idle_timeout_ms);
    else if (!idle && pending)
        event_del(&conn->timer_ev);
}

/* Reading stops while the client does not take what it asked for, and while the protocol
 * holds as many requests as it may (HTTP/1.1 pipelining). */
static void update_reading(struct pg_conn *conn)
{
    bool blocked = conn->proto->read_blocked && conn->proto->read_blocked(conn->session);
    bool want = !blocked && evbuffer_get_length(conn->env.output) < PG_CONN_OUTPUT_HIGH_WATER;
    bool reading = bufferevent_get_enabled(conn->bev) & EV_READ;
    if (want && !reading)
        bufferevent_enable(conn->bev, EV_READ);
    else if (!want && reading)
        bufferevent_disable(conn->bev, EV_READ);
}

/* An idle TLS connection gives back OpenSSL's 16 KiB record buffers (bufferevent_openssl stops
 * reading before OpenSSL would release them by itself) and the empty chain libevent's last
 * read reserved in the input buffer: draining an empty buffer frees nothing, so one byte is
 * added and drained with it. */
static void release_idle_buffers(struct pg_conn *conn)
{
    SSL_free_buffers(bufferevent_openssl_get_ssl(conn->bev));
    if (evbuffer_get_length(conn->env.input) == 0 && evbuffer_add(conn->env.input, "", 1) == 0)
        evbuffer_drain(conn->env.input, 1);
}

/* Runs the protocol's pending work and decides whether the connection is over.
 * Returns false when conn was freed or is closing. */
static bool flush_or_close(struct pg_conn *conn)
{
    if (conn->state == PG_CONN_LINGERING)
        return false; /* the protocol is over; only the linger timer or EOF remain */
    if (!conn->session)
        return true; /* the protocol is not chosen yet */
    if (conn->proto->flush(conn->session) != PG_OK) {
        pg_conn_free(conn);
        return false;
    }
    update_idle_timer(conn);
    if (conn->proto->finished(conn->session)) {
        if (evbuffer_get_length(conn->env.output) == 0)
            start_linger(conn);
        else
            close_when_drained(conn);
        return false;
    }
    update_reading(conn);
    /* An idle TLS connection need not keep OpenSSL's 16 KiB record buffers: bufferevent_openssl
     * stops reading before OpenSSL would release them by itself. HTTP/1.1 connections become
     * idle here, once their last response is written. */
    if (is_tls(conn) && conn->proto->idle(conn->session))
        release_idle_buffers(conn);
    return true;
}

static void shutdown_idle(struct pg_conn *conn)
{
    conn->proto->shutdown(conn->session);
    flush_or_close(conn);
}

void pg_conn_drain(struct pg_conn *conn)
{
    if (conn->state == PG_CONN_LINGERING)
        return; /* closing already */
    conn->draining = true;
    if (!conn->session)
        return; /* mid-handshake: the protocol drains as soon as it starts */
    conn->proto->drain(conn->session);
    flush_or_close(conn);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_conn *conn = arg;
    if (conn->state == PG_CONN_HANDSHAKE) {
        pg_log_debug("client %s: handshake timeout", conn->client_addr);
        pg_conn_free(conn);
        return;
    }
    pg_log_debug("client %s: idle timeout", conn->client_addr);
    shutdown_idle(conn); /* HTTP/2: GOAWAY(NO_ERROR); closes once it is written */
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_or_close(arg);
}

/* Starts the chosen protocol. Returns false when conn was freed. */
static bool start_protocol(struct pg_conn *conn, const struct pg_protocol *proto)
{
    conn->proto = proto;
    conn->env.proxy.protocol = proto->metric;
    pg_count(&conn->owner->counters->connections_total[proto->metric], 1);
    conn->session = proto->create(&conn->env);
    if (!conn->session) {
        pg_conn_free(conn);
        return false;
    }
    /* Accepted just before a drain: it learns at once that nothing more is taken (HTTP/2:
     * GOAWAY, so the client sends its requests elsewhere). */
    if (conn->draining)
        conn->proto->drain(conn->session);
    return true;
}

/* TLS: the protocol the client chose with ALPN. Returns false when conn was freed. */
static bool choose_by_alpn(struct pg_conn *conn)
{
    const unsigned char *alpn = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(conn->bev), &alpn, &len);
    const struct pg_protocol *proto = pg_protocol_for_alpn(conn->owner->protocols, alpn, len);
    if (!proto) {
        pg_log_debug("client %s negotiated no protocol we speak", conn->client_addr);
        pg_conn_free(conn);
        return false;
    }
    return start_protocol(conn, proto);
}

/* Cleartext: the first bytes tell h2c (the preface) from HTTP/1.x. Returns false when conn was
 * freed or more bytes are needed. */
static bool choose_by_sniffing(struct pg_conn *conn, struct evbuffer *input)
{
    size_t len = evbuffer_get_length(input);
    size_t peek = len < 24 ? len : 24;
    const unsigned char *data = evbuffer_pullup(input, (ev_ssize_t)peek);
    const struct pg_protocol *proto;
    if (!data || !pg_protocol_sniff(conn->owner->protocols, data, peek, &proto))
        return false;
    if (!proto) {
        pg_conn_free(conn);
        return false;
    }
    return start_protocol(conn, proto);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct pg_conn *conn = arg;
    struct evbuffer *input = bufferevent_get_input(bev);
    if (!conn->session && !(is_tls(conn) ? choose_by_alpn(conn) : choose_by_sniffing(conn, input)))
        return;
    if (conn->proto->recv(conn->session, input) != PG_OK) {
        pg_conn_free(conn);
        return;
    }
    flush_or_close(conn);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    flush_or_close(arg);
}

/* Lingering close: closing a socket with unread input makes the kernel send RST, which can
 * destroy our last response or GOAWAY in the client's receive queue before it is read. So after
 * the last byte is out we stop sending (FIN) and read and discard for a bounded time, until the
 * client closes too. */
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
    conn->state = PG_CONN_LINGERING;
    conn->proto->free(conn->session); /* cancels what upstream work remains */
    conn->session = NULL;
    event_del(&conn->timer_ev);
    evtimer_assign(&conn->timer_ev, conn->owner->base, on_linger_over, conn);
    arm_timer(conn, LINGER_MS);
    if (!is_tls(conn)) /* TLS: the peer reads our close_notify-less EOF when we close */
        shutdown(bufferevent_getfd(conn->bev), SHUT_WR);
    bufferevent_setcb(conn->bev, on_linger_read, NULL, on_event, conn);
    bufferevent_enable(conn->bev, EV_READ);
}

static void on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct pg_conn *conn = arg;
    if (evbuffer_get_length(conn->env.output) == 0)
        start_linger(conn);
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    struct pg_conn *conn = arg;
    if (events & BEV_EVENT_CONNECTED) {
        if (!conn->session && choose_by_alpn(conn))
            flush_or_close(conn); /* HTTP/2: the server preface goes out at once */
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

static struct bufferevent *make_transport(const struct pg_conn_owner *owner, evutil_socket_t fd)
{
    int options = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (!owner->ssl_ctx)
        return bufferevent_socket_new(owner->base, fd, options);
    SSL *ssl = SSL_new(owner->ssl_ctx);
    if (!ssl)
        return NULL;
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(owner->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, options);
    if (!bev)
        SSL_free(ssl);
    return bev;
}

struct pg_conn *pg_conn_new(const struct pg_conn_owner *owner, evutil_socket_t fd,
                            const struct sockaddr *addr)
{
    struct pg_conn *conn = calloc(1, sizeof(*conn));
    struct bufferevent *bev = conn ? make_transport(owner, fd) : NULL;
    if (!bev) {
        free(conn);
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn->owner = owner;
    conn->bev = bev;
    describe_peer(addr, conn->client_addr, sizeof(conn->client_addr));
    event_assign(&conn->flush_ev, owner->base, -1, 0, on_flush, conn);
    evtimer_assign(&conn->timer_ev, owner->base, on_timer, conn);
    conn->env = (struct pg_conn_env){
        .proxy = {.cfg = owner->cfg,
                  .base = owner->base,
                  .upstream = owner->upstream,
                  .learn = owner->learn,
                  .scratch = owner->scratch,
                  .client_addr = conn->client_addr,
                  .tls = owner->ssl_ctx != NULL,
                  .counters = owner->counters,
                  .access_log = owner->access_log},
        .input = bufferevent_get_input(bev),
        .output = bufferevent_get_output(bev),
        .wake = wake,
        .conn = conn,
    };
    bufferevent_setwatermark(bev, EV_WRITE, PG_CONN_OUTPUT_LOW_WATER, 0);
    /* A client that takes none of its bytes for this long is gone or hostile. */
    struct timeval write_timeout = pg_timeval_ms(owner->cfg->write_timeout_ms);
    bufferevent_set_timeouts(bev, NULL, &write_timeout);
    bufferevent_setcb(bev, on_read, on_write, on_event, conn);
    return conn;
}

void pg_conn_start(struct pg_conn *conn)
{
    arm_timer(conn, conn->owner->cfg->handshake_timeout_ms);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}
