/* The table every client protocol (HTTP/2, HTTP/1.1; HTTP/3 later) implements for the
 * connection layer, and how a connection picks one (ALPN, or the first bytes in cleartext).
 * The connection layer calls a protocol only through this table, as HAProxy's mux_ops.
 *
 * Ownership: the connection creates its protocol session with create() once it knows which,
 * and frees it with free(); the session borrows the env (owned by the connection, which
 * outlives it). */
#ifndef PUSHGATE_PROTOCOL_H
#define PUSHGATE_PROTOCOL_H

#include "pushgate/request.h"

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* Above this many bytes queued for the client, protocols stop producing output and the
 * connection stops reading the client's requests. */
#define PG_CONN_OUTPUT_HIGH_WATER (64 * 1024)
#define PG_CONN_OUTPUT_LOW_WATER (16 * 1024)

/* What a protocol session borrows from its connection. */
struct pg_conn_env {
    struct pg_proxy_env proxy; /* what the request core needs */
    struct evbuffer *input;    /* the client's bytes not yet consumed */
    struct evbuffer *output;   /* the connection's bounded output buffer */
    void (*wake)(void *conn);  /* asks for flush() to run soon from the loop; safe anywhere */
    void *conn;
};

struct pg_protocol {
    const char *name;               /* for logs: "h2", "http/1.1" */
    enum pg_metric_protocol metric; /* how its connections and requests are counted */
    /* Returns a session, or NULL on failure. May queue output (HTTP/2 SETTINGS). */
    void *(*create)(const struct pg_conn_env *env);
    /* Consumes the client's bytes from input. Returns 0, or a pg_err code: drop at once. */
    int (*recv)(void *session, struct evbuffer *input);
    /* Runs pending work and writes what may be written. Returns 0 or a pg_err code. */
    int (*flush)(void *session);
    /* The protocol's own handshake is complete (HTTP/2: the client's SETTINGS and its ack). */
    bool (*ready)(const void *session);
    /* No request is open: the idle clock may run. */
    bool (*idle)(const void *session);
    /* Idle end (the idle timeout): nothing is open; tell the client and close. */
    void (*shutdown)(void *session);
    /* Graceful end (drain): requests in flight finish, no new one is accepted (HTTP/2: the
     * two-step GOAWAY of RFC 9113 §6.8; HTTP/1.1: close after the current response). */
    void (*drain)(void *session);
    /* Neither wants to read nor to write: close once the output drained. */
    bool (*finished)(const void *session);
    /* Cancels every upstream exchange and frees the session. */
    void (*free)(void *session);
    /* The client may not be read further for now (HTTP/1.1 pipelining bound); NULL: never. */
    bool (*read_blocked)(const void *session);
};

/* The protocols a listener serves, registered by main (the connection layer names none). */
struct pg_protocols {
    const struct pg_protocol *h2;
    const struct pg_protocol *http1; /* HTTP/1.0 and HTTP/1.1; NULL: not served */
};

/* The protocol a TLS client chose with ALPN (alpn NULL or len 0: none offered, HTTP/1.1).
 * Returns NULL when pushgate does not speak it. */
const struct pg_protocol *pg_protocol_for_alpn(const struct pg_protocols *protocols,
                                               const unsigned char *alpn, unsigned len);

/* Cleartext: decides from the first bytes whether the client speaks h2c (the HTTP/2 preface)
 * or HTTP/1.x. Returns true with *proto set once decided (NULL: a protocol not served); false
 * when more bytes are needed. */
bool pg_protocol_sniff(const struct pg_protocols *protocols, const unsigned char *data, size_t len,
                       const struct pg_protocol **proto);

#endif
