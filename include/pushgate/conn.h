/* A client connection: the transport (socket, or TLS on it), its events, timers and lifetime, and
 * the protocol session on top, picked by ALPN (TLS) or by the first bytes (cleartext) and
 * driven only through struct pg_protocol.
 *
 * Ownership: the worker owns its connections and their list; a connection owns its transport,
 * its two buffers and its protocol session. It is freed only from its own top-level libevent
 * callbacks or by pg_conn_free at shutdown, never from inside nghttp2 or libcurl callbacks (those
 * wake the connection's flush instead); as it is freed it calls its owner's closed callback. */
#ifndef PUSHGATE_CONN_H
#define PUSHGATE_CONN_H

#include "pushgate/config.h"
#include "pushgate/protocol.h"
#include "pushgate/transport.h"

#include <event2/event_struct.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

struct sockaddr;
struct pg_conn;

/* What a connection borrows from its worker for its whole life. */
struct pg_conn_owner {
    const struct pg_config *cfg;
    struct event_base *base;
    SSL_CTX *ssl_ctx; /* NULL: cleartext */
    const struct pg_protocols *protocols;
    struct pg_upstream *upstream;
    struct pg_learn *learn;
    struct evbuffer *scratch;
    struct pg_counters *counters;                    /* the worker's */
    struct pg_access_log *access_log;                /* the worker's; NULL when off */
    void (*closed)(struct pg_conn *conn, void *arg); /* called as the connection is freed */
    void *arg;
};

/* Where the connection stands. */
enum pg_conn_state {
    PG_CONN_HANDSHAKE = 0, /* TLS handshake, protocol choice, client preface: deadline runs */
    PG_CONN_OPEN,          /* serving requests: the idle clock runs while none is open */
    PG_CONN_CLOSING,       /* protocol over: its last bytes go out, nothing more is read */
    PG_CONN_LINGERING,     /* last byte out: discarding input until EOF or the linger timer */
};

/* 768 bytes or less: mimalloc's size class above is 896, and every idle connection pays it. */
struct pg_conn {
    const struct pg_conn_owner *owner;
    struct pg_transport transport;
    struct evbuffer *input;  /* the client's bytes the protocol has not consumed */
    struct evbuffer *output; /* bytes for the client the socket has not taken yet */
    struct event read_ev;    /* the socket is readable (off while reading is held back) */
    struct event write_ev;   /* the socket is writable: on only while output waits for room */
    struct event flush_ev;   /* runs deferred protocol work outside library callbacks */
    struct event timer_ev;   /* handshake deadline, then the idle timeout, then the linger */
    uint64_t idle_since_ms;  /* open: when the protocol last became idle; 0 while it is busy */
    enum pg_conn_state state;
    bool draining;                   /* pg_conn_drain was called (maybe before the protocol) */
    bool read_wants_write;           /* TLS: a read stopped until the socket takes bytes */
    bool flush_asked;                /* flush_ev is active: a wake needs no second activation */
    const struct pg_protocol *proto; /* NULL until chosen */
    void *session;                   /* proto's */
    struct pg_conn_env env;          /* what the session borrows */
    char client_addr[48];      /* textual peer address, for X-Forwarded-For (INET6_ADDRSTRLEN 46) */
    TAILQ_ENTRY(pg_conn) link; /* in the worker's list */
};

/* Takes ownership of fd; returns NULL (fd closed) on failure. Nothing runs until
 * pg_conn_start, so the owner can list the connection first. */
struct pg_conn *pg_conn_new(const struct pg_conn_owner *owner, evutil_socket_t fd,
                            const struct sockaddr *addr);
/* Starts reading (and the handshake deadline). May free conn (calling closed). */
void pg_conn_start(struct pg_conn *conn);
/* Graceful end (drain): requests in flight finish, then the connection closes; a connection
 * still in its handshake closes at once. May free conn. */
void pg_conn_drain(struct pg_conn *conn);
void pg_conn_free(struct pg_conn *conn);

#endif
