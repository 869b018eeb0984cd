/* A client socket's bytes, moved between the kernel and the connection's evbuffers: cleartext
 * with recv(2)/writev(2), TLS with SSL_read/SSL_write on the socket itself (as nghttpx does).
 * No bufferevent, BIO pair or buffer of ours sits between OpenSSL and the socket, so a request
 * costs no extra copy, no extra epoll registration for writing and, idle, no memory beyond the
 * SSL object and its BIO (OpenSSL releases its record buffers: SSL_MODE_RELEASE_BUFFERS).
 * The BIO is ours: recv(2), and send(2) with MSG_MORE for all records of a flush but the last.
 *
 * Ownership: a transport owns its socket and its SSL (both closed by pg_transport_close); the
 * caller owns the evbuffers it passes and drives the transport from its own events. */
#ifndef PUSHGATE_TRANSPORT_H
#define PUSHGATE_TRANSPORT_H

#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* How one transport step ended. */
enum pg_io {
    PG_IO_DONE = 0,   /* read: the budget is read, more may wait; write: the output is empty */
    PG_IO_WANT_READ,  /* blocked until the socket is readable (read: drained, the usual end) */
    PG_IO_WANT_WRITE, /* blocked until the socket is writable */
    PG_IO_EOF,        /* the peer closed */
    PG_IO_ERROR,      /* the connection is broken */
};

/* Its address is OpenSSL's write BIO's data: a transport does not move once initialised. */
struct pg_transport {
    SSL *ssl; /* NULL: cleartext */
    evutil_socket_t fd;
    bool more; /* TLS: the record being written is not the flush's last (MSG_MORE) */
};

/* ssl_ctx NULL: cleartext. Returns 0, or PG_ERR_LIBRARY (fd is then still the caller's). */
int pg_transport_init(struct pg_transport *t, evutil_socket_t fd, SSL_CTX *ssl_ctx);
/* Closes quietly (no close_notify: the connection is over either way). */
void pg_transport_close(struct pg_transport *t);

/* TLS: one step of the server handshake; PG_IO_DONE once it is complete. */
enum pg_io pg_transport_handshake(struct pg_transport *t);
/* Appends the client's bytes to in until the socket is drained or budget bytes were read. */
enum pg_io pg_transport_read(struct pg_transport *t, struct evbuffer *in, size_t budget);
/* Writes out until it is empty or the socket is full; small chains share a TLS record. */
enum pg_io pg_transport_write(struct pg_transport *t, struct evbuffer *out);
/* Reads and drops what the client sends (lingering close); raw bytes, never decrypted. */
enum pg_io pg_transport_discard(struct pg_transport *t);
/* TLS: OpenSSL holds bytes already read from the socket that the next read returns, so no
 * readiness event will announce them. */
bool pg_transport_has_pending(const struct pg_transport *t);

#endif
