/* The HTTP/2 protocol handler of a client connection: the nghttp2 server session, its
 * streams, and the glue to their upstream exchanges.
 *
 * Ownership: a connection owns its pg_h2; pg_h2 owns its streams; a stream owns its upstream
 * exchange and its body buffers. Upstream work (starting, resuming) is only done in
 * pg_h2_flush, after nghttp2_session_mem_recv returned, never inside an nghttp2 callback. */
#ifndef PUSHGATE_H2_H
#define PUSHGATE_H2_H

#include <stdbool.h>

struct pg_conn;
struct pg_h2;
struct evbuffer;

/* Returns NULL on failure. Queues the server's SETTINGS. */
struct pg_h2 *pg_h2_new(struct pg_conn *conn);
/* Cancels every stream's upstream exchange and frees the session. */
void pg_h2_free(struct pg_h2 *h2);
/* Feeds the client's bytes to nghttp2 and drains them from input. Returns 0, or a pg_err
 * code when the connection must be dropped at once. */
int pg_h2_recv(struct pg_h2 *h2, struct evbuffer *input);
/* Starts and resumes upstream work queued by the last reads and callbacks, then lets nghttp2
 * write frames into the connection's output. Returns 0 or a pg_err code (drop the
 * connection). */
int pg_h2_flush(struct pg_h2 *h2);
/* True once the client's connection preface (its first SETTINGS) arrived and it acknowledged
 * ours. */
bool pg_h2_client_ready(const struct pg_h2 *h2);
/* True when no stream is open (the idle clock may run). */
bool pg_h2_idle(const struct pg_h2 *h2);
/* Graceful end: GOAWAY(NO_ERROR) with the last stream id; open streams finish. Not for use
 * inside nghttp2 callbacks. */
void pg_h2_shutdown(struct pg_h2 *h2);
/* True when the session neither wants to read nor to write: close after the output drains. */
bool pg_h2_finished(const struct pg_h2 *h2);

#endif
