/* A client connection: the transport (socket or TLS bufferevent), its timers and lifetime,
 * and the protocol handler on top (HTTP/2 only for now).
 *
 * Ownership: the worker owns its connections (worker->conns). A connection owns its
 * bufferevent and its HTTP/2 session. It is freed only from its own top-level libevent
 * callbacks or by the worker at shutdown, never from inside nghttp2 or libcurl callbacks:
 * those call pg_conn_schedule_flush instead. */
#ifndef PUSHGATE_CONN_H
#define PUSHGATE_CONN_H

#include <event2/event_struct.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

struct pg_worker;
struct pg_h2;
struct bufferevent;
struct evbuffer;
struct sockaddr;

/* Above this many bytes queued for the client, nghttp2 stops producing frames and we stop
 * reading the client's requests. */
#define PG_CONN_OUTPUT_HIGH_WATER (64 * 1024)
#define PG_CONN_OUTPUT_LOW_WATER (16 * 1024)

struct pg_conn {
    struct pg_worker *worker;
    struct bufferevent *bev;
    struct event flush_ev; /* runs deferred protocol work outside library callbacks */
    struct event timer_ev; /* handshake deadline, then the idle timeout */
    bool ready;            /* TLS done and the client's preface (SETTINGS) received */
    bool lingering;        /* protocol over: discarding input until EOF or the linger timer */
    struct pg_h2 *h2;
    char client_addr[64]; /* textual peer address, for X-Forwarded-For */
    bool tls;
    TAILQ_ENTRY(pg_conn) link;
};

/* Takes ownership of fd. On failure the fd is closed and nothing is kept. */
void pg_conn_accept(struct pg_worker *w, evutil_socket_t fd, const struct sockaddr *addr);
/* Asks for pg_h2_flush to run soon from the event loop. Safe from any callback. */
void pg_conn_schedule_flush(struct pg_conn *conn);
struct evbuffer *pg_conn_output(struct pg_conn *conn);
void pg_conn_free(struct pg_conn *conn);

#endif
