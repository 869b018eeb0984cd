#include "pushgate/conn.h"
#include "pushgate/common.h"
#include "pushgate/lazy_timer.h"
#include "pushgate/log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Every idle connection pays its size class: above 768 bytes mimalloc's next is 896. */
_Static_assert(sizeof(struct pg_conn) <= 768, "struct pg_conn outgrew its allocation class");

/* Bytes read per readiness event before other connections get their turn. */
#define READ_BUDGET (64 * 1024)
/* Times one flush refills an output the socket took at once before yielding to the loop. */
#define REFILL_ROUNDS 4

static void close_when_drained(struct pg_conn *conn);
static void start_linger(struct pg_conn *conn);
static void read_and_serve(struct pg_conn *conn);

static bool is_tls(const struct pg_conn *conn)
{
    return conn->transport.ssl != NULL;
}

void pg_conn_free(struct pg_conn *conn)
{
    if (conn->session)
        conn->proto->free(conn->session);
    if (conn->proto)
        pg_count(&conn->owner->counters->connections_closed[conn->proto->metric], 1);
    event_del(&conn->flush_ev);
    event_del(&conn->timer_ev);
    event_del(&conn->read_ev);
    event_del(&conn->write_ev);
    pg_transport_close(&conn->transport);
    if (conn->input)
        evbuffer_free(conn->input);
    if (conn->output)
        evbuffer_free(conn->output);
    const struct pg_conn_owner *owner = conn->owner;
    owner->closed(conn, owner->arg);
    free(conn);
}

/* A request wakes its connection several times before the flush runs (its head, body, end). */
static void wake(void *arg)
{
    struct pg_conn *conn = arg;
    if (conn->flush_asked)
        return;
    conn->flush_asked = true;
    event_active(&conn->flush_ev, EV_WRITE, 0);
}

static void arm_timer(struct pg_conn *conn, unsigned ms)
{
    struct timeval tv = pg_timeval_ms(ms);
    evtimer_add(&conn->timer_ev, &tv);
}

static bool writing(const struct pg_conn *conn)
{
    return event_pending(&conn->write_ev, EV_WRITE, NULL);
}

static bool reading(const struct pg_conn *conn)
{
    return event_pending(&conn->read_ev, EV_READ, NULL);
}

/* Waits for the socket to take more. A client that takes none of its bytes for
 * --write-timeout is gone or hostile: the event's timeout closes the connection. */
static void await_writable(struct pg_conn *conn)
{
    if (writing(conn))
        return;
    struct timeval tv = pg_timeval_ms(conn->owner->cfg->write_timeout_ms);
    event_add(&conn->write_ev, &tv);
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
        conn->idle_since_ms = 0;
    }
    /* Busy, the timer lapses (lazy_timer.h: not moved per keep-alive request). */
    bool idle = conn->proto->idle(conn->session);
    if (!idle)
        conn->idle_since_ms = 0;
    else if (!conn->idle_since_ms)
        pg_lazy_timer_start(&conn->timer_ev, &conn->idle_since_ms,
                            conn->owner->cfg->idle_timeout_ms);
}

/* Reading stops while the client does not take what it asked for, and while the protocol
 * holds as many requests as it may (HTTP/1.1 pipelining). Bytes OpenSSL already holds raise
 * no readiness event, so resuming reads them at once. */
static void update_reading(struct pg_conn *conn)
{
    bool blocked = conn->proto->read_blocked && conn->proto->read_blocked(conn->session);
    bool want = !blocked && evbuffer_get_length(conn->output) < PG_CONN_OUTPUT_HIGH_WATER;
    if (want && !reading(conn)) {
        event_add(&conn->read_ev, NULL);
        if (pg_transport_has_pending(&conn->transport))
            event_active(&conn->read_ev, EV_READ, 0);
    } else if (!want && reading(conn)) {
        event_del(&conn->read_ev);
    }
}

/* Writes what the protocol queued, at once: most responses leave in the flush that made them,
 * without waiting for (and registering) a writability event. Returns false when conn was
 * freed. */
static bool write_output(struct pg_conn *conn)
{
    enum pg_io io = PG_IO_DONE;
    if (evbuffer_get_length(conn->output) > 0)
        io = pg_transport_write(&conn->transport, conn->output);
    switch (io) {
    case PG_IO_DONE:
        if (writing(conn))
            event_del(&conn->write_ev);
        return true;
    case PG_IO_WANT_WRITE:
        await_writable(conn);
        return true;
    case PG_IO_WANT_READ:
        /* OpenSSL wants the client's bytes first (not reached with renegotiation off): the
         * next read event writes again. */
        if (!reading(conn))
            event_add(&conn->read_ev, NULL);
        return true;
    case PG_IO_EOF:
    case PG_IO_ERROR:
        break;
    }
    pg_log_debug("client %s: write failed", conn->client_addr);
    pg_conn_free(conn);
    return false;
}

/* Runs the protocol's pending work, writes it and decides whether the connection is over.
 * A socket that takes a full output at once gets it refilled a few times before the loop
 * turns. Returns false when conn was freed or is closing. */
static bool flush_or_close(struct pg_conn *conn)
{
    if (conn->state == PG_CONN_LINGERING || conn->state == PG_CONN_CLOSING)
        return false; /* the protocol is over; only the last bytes, EOF or a timer remain */
    if (!conn->session)
        return true; /* the protocol is not chosen yet */
    for (int round = 0;; round++) {
        if (conn->proto->flush(conn->session) != PG_OK) {
            pg_conn_free(conn);
            return false;
        }
        size_t queued = evbuffer_get_length(conn->output);
        if (!write_output(conn))
            return false;
        if (queued < PG_CONN_OUTPUT_HIGH_WATER ||
            evbuffer_get_length(conn->output) > PG_CONN_OUTPUT_LOW_WATER)
            break; /* the protocol had no more, or the socket is full */
        if (round == REFILL_ROUNDS) {
            wake(conn);
            break;
        }
    }
    update_idle_timer(conn);
    if (conn->proto->finished(conn->session)) {
        if (evbuffer_get_length(conn->output) == 0)
            start_linger(conn);
        else
            close_when_drained(conn);
        return false;
    }
    update_reading(conn);
    return true;
}

static void shutdown_idle(struct pg_conn *conn)
{
    conn->proto->shutdown(conn->session);
    flush_or_close(conn);
}

void pg_conn_drain(struct pg_conn *conn)
{
    if (conn->state == PG_CONN_LINGERING || conn->state == PG_CONN_CLOSING)
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
    if (!conn->idle_since_ms ||
        !pg_lazy_timer_due(&conn->timer_ev, conn->idle_since_ms, conn->owner->cfg->idle_timeout_ms))
        return; /* busy since the timer was set (set again when idle), or idle for less */
    pg_log_debug("client %s: idle timeout", conn->client_addr);
    shutdown_idle(conn); /* HTTP/2: GOAWAY(NO_ERROR); closes once it is written */
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_conn *conn = arg;
    conn->flush_asked = false;
    flush_or_close(conn);
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
    SSL_get0_alpn_selected(conn->transport.ssl, &alpn, &len);
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

/* TLS: one step of the handshake; once it is done, the protocol ALPN chose starts (HTTP/2:
 * its SETTINGS go out at once). */
static void shake_hands(struct pg_conn *conn)
{
    switch (pg_transport_handshake(&conn->transport)) {
    case PG_IO_DONE:
        break;
    case PG_IO_WANT_READ:
        return; /* reading is on */
    case PG_IO_WANT_WRITE:
        await_writable(conn);
        return;
    case PG_IO_EOF:
    case PG_IO_ERROR:
        pg_log_debug("client %s: TLS handshake failed", conn->client_addr);
        pg_conn_free(conn);
        return;
    }
    if (!choose_by_alpn(conn))
        return;
    /* The client's first request may have come with its Finished: OpenSSL holds it already. */
    if (pg_transport_has_pending(&conn->transport))
        read_and_serve(conn);
    else
        flush_or_close(conn);
}

/* Reads what the client sent, hands it to the protocol and writes what that produced. */
static void read_and_serve(struct pg_conn *conn)
{
    size_t before = evbuffer_get_length(conn->input);
    enum pg_io io = pg_transport_read(&conn->transport, conn->input, READ_BUDGET);
    if (io == PG_IO_EOF || io == PG_IO_ERROR) {
        pg_conn_free(conn);
        return;
    }
    if (io == PG_IO_WANT_WRITE) {
        conn->read_wants_write = true; /* a TLS key update's answer waits for room */
        await_writable(conn);
    }
    if (evbuffer_get_length(conn->input) > before) {
        if (!conn->session &&
            !(is_tls(conn) ? choose_by_alpn(conn) : choose_by_sniffing(conn, conn->input)))
            return;
        if (conn->proto->recv(conn->session, conn->input) != PG_OK) {
            pg_conn_free(conn);
            return;
        }
    }
    if (!flush_or_close(conn))
        return;
    if (io == PG_IO_DONE && reading(conn))
        event_active(&conn->read_ev, EV_READ, 0); /* the budget ran out: more on the next turn */
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pg_conn *conn = arg;
    switch (conn->state) {
    case PG_CONN_LINGERING: {
        enum pg_io io = pg_transport_discard(&conn->transport);
        if (io == PG_IO_EOF || io == PG_IO_ERROR)
            pg_conn_free(conn);
        return;
    }
    case PG_CONN_CLOSING:
        return; /* nothing more is read */
    case PG_CONN_HANDSHAKE:
        if (is_tls(conn) && !conn->session) {
            shake_hands(conn);
            return;
        }
        break;
    case PG_CONN_OPEN:
        break;
    }
    read_and_serve(conn);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct pg_conn *conn = arg;
    if (what & EV_TIMEOUT) {
        pg_log_debug("client %s: write timeout", conn->client_addr);
        pg_conn_free(conn);
        return;
    }
    if (conn->state == PG_CONN_HANDSHAKE && is_tls(conn) && !conn->session) {
        shake_hands(conn);
        return;
    }
    if (conn->read_wants_write) {
        conn->read_wants_write = false;
        read_and_serve(conn); /* writes what is queued too */
        return;
    }
    if (!write_output(conn))
        return;
    if (conn->state == PG_CONN_CLOSING) {
        if (evbuffer_get_length(conn->output) == 0)
            start_linger(conn);
        return;
    }
    if (evbuffer_get_length(conn->output) <= PG_CONN_OUTPUT_LOW_WATER)
        flush_or_close(conn); /* the protocol refills what the client took */
}

/* Lingering close: closing a socket with unread input makes the kernel send RST, which can
 * destroy our last response or GOAWAY in the client's receive queue before it is read. So after
 * the last byte is out we stop sending (FIN) and read and discard for a bounded time, until the
 * client closes too. */
#define LINGER_MS 2000

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
    event_del(&conn->write_ev);
    evtimer_assign(&conn->timer_ev, conn->owner->base, on_linger_over, conn);
    arm_timer(conn, LINGER_MS);
    if (!is_tls(conn)) /* TLS: the peer reads our close_notify-less EOF when we close */
        shutdown(conn->transport.fd, SHUT_WR);
    if (!reading(conn))
        event_add(&conn->read_ev, NULL);
}

/* The protocol is over but its last bytes are still queued: they go out (the write timeout
 * still bounds a client that takes nothing), then the lingering close. */
static void close_when_drained(struct pg_conn *conn)
{
    conn->state = PG_CONN_CLOSING;
    event_del(&conn->read_ev);
    event_del(&conn->timer_ev);
    await_writable(conn);
}

static void describe_peer(const struct sockaddr *addr, char *out, size_t len)
{
    const void *ip = addr->sa_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)addr)->sin_addr;
    if (!inet_ntop(addr->sa_family, ip, out, (socklen_t)len))
        snprintf(out, len, "unknown");
}

struct pg_conn *pg_conn_new(const struct pg_conn_owner *owner, evutil_socket_t fd,
                            const struct sockaddr *addr)
{
    struct pg_conn *conn = calloc(1, sizeof(*conn));
    if (!conn || pg_transport_init(&conn->transport, fd, owner->ssl_ctx) != PG_OK) {
        free(conn);
        close(fd);
        return NULL;
    }
    conn->owner = owner;
    conn->input = evbuffer_new();
    conn->output = evbuffer_new();
    if (!conn->input || !conn->output) {
        if (conn->input)
            evbuffer_free(conn->input);
        if (conn->output)
            evbuffer_free(conn->output);
        pg_transport_close(&conn->transport);
        free(conn);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    describe_peer(addr, conn->client_addr, sizeof(conn->client_addr));
    event_assign(&conn->read_ev, owner->base, fd, EV_READ | EV_PERSIST, on_readable, conn);
    event_assign(&conn->write_ev, owner->base, fd, EV_WRITE | EV_PERSIST, on_writable, conn);
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
        .input = conn->input,
        .output = conn->output,
        .wake = wake,
        .conn = conn,
    };
    return conn;
}

void pg_conn_start(struct pg_conn *conn)
{
    arm_timer(conn, conn->owner->cfg->handshake_timeout_ms);
    event_add(&conn->read_ev, NULL);
}
