/* Private to the HTTP/1.x frontend files (h1_session.c: parsing; h1_output.c: responses).
 *
 * Requests are parsed with http_parser and answered strictly in order: only the oldest request
 * (the head of the pipeline) is handed to the core; later ones wait parked with their heads
 * parsed, at most H1_PIPELINE_DEPTH of them, after which the client is read no further until
 * answers drain. A request with a problem of framing or syntax is answered by the frontend
 * itself (400, 414, 431, 501, ...) once it is the head, and the connection then closes.
 *
 * Ownership: a connection owns its pg_h1 (through the protocol table); pg_h1 owns its streams;
 * a stream owns its head copy and its struct pg_request. */
#ifndef PUSHGATE_H1_INTERNAL_H
#define PUSHGATE_H1_INTERNAL_H

#include "pushgate/h1.h"
#include "pushgate/proxy.h"

#include <event2/event_struct.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#define H1_PIPELINE_DEPTH 16            /* requests read ahead of the one being answered */
#define H1_MAX_TARGET 8192              /* a longer request-target: 414 */
#define H1_BODY_HIGH_WATER (256 * 1024) /* request body bytes held before reading pauses */
#define H1_BODY_LOW_WATER (64 * 1024)

/* Where a stream stands. */
enum h1_stream_state {
    H1_PARSING = 0, /* its head (and maybe body) is being parsed */
    H1_PARKED,      /* head complete; waits behind older requests */
    H1_ACTIVE,      /* the head of the pipeline: handed to the core (or answered by us) */
};

/* Where the active stream's response stands. */
enum h1_output {
    H1_OUT_NONE = 0, /* nothing written yet */
    H1_OUT_BODY,     /* head written; body bytes follow */
    H1_OUT_DONE,     /* the whole response is in the output */
};

/* How the response body is framed on the wire. */
enum h1_framing {
    H1_FRAME_NONE = 0, /* no body (HEAD, 1xx, 204, 304) */
    H1_FRAME_LENGTH,   /* the upstream's Content-Length */
    H1_FRAME_CHUNKED,  /* chunked, for HTTP/1.1 clients */
    H1_FRAME_CLOSE,    /* to the end of the connection, for HTTP/1.0 clients */
};

struct h1_stream {
    struct pg_request req; /* the core's request; its head views point into strings */
    struct pg_h1 *h1;
    enum h1_stream_state state;
    enum h1_output output;
    enum h1_framing framing;
    struct pg_lines strings;  /* target, then name, value, ... (NUL-separated) */
    size_t target_len;        /* while parsing: bytes of the request-target so far */
    int last_piece;           /* while parsing: what the last callback delivered (h1_session.c) */
    struct pg_header *fields; /* views into strings, built once the head is complete */
    size_t count;
    size_t head_bytes;    /* field bytes so far (+32 each), against PG_REQUEST_MAX_HEAD_BYTES */
    int error;            /* non-zero: answer this status ourselves, then close */
    unsigned http_minor;  /* 0 for HTTP/1.0 */
    bool keep_alive;      /* the connection may serve another request after this one */
    bool has_body;        /* the request has a body (Content-Length > 0 or chunked) */
    bool body_done;       /* the parser reached the end of the request */
    bool expect_continue; /* Expect: 100-continue on an HTTP/1.1 request with a body */
    bool chunk_open;      /* chunked: a chunk's data went out without its closing CRLF */
    TAILQ_ENTRY(h1_stream) link;
};

/* Where the connection stands. */
enum h1_conn_state {
    H1_OPEN = 0, /* reading and answering requests */
    H1_LAST,     /* the request being read is the last (Connection: close, shutdown) */
    H1_CLOSING,  /* answer what was read, then close; nothing more is read */
    H1_BROKEN,   /* a response cannot be completed: close once the output drained */
};

struct pg_h1 {
    struct pg_proxy_conn pc; /* the core's per-connection state */
    const struct pg_conn_env *env;
    http_parser parser;
    enum h1_conn_state state;
    TAILQ_HEAD(, h1_stream) streams; /* arrival order: the first is answered */
    unsigned stream_count;
    struct h1_stream *parsing; /* the stream the parser is filling, or NULL between requests */
    const char *piece_start;   /* the input piece being parsed (obs-fold, chunk CRLF checks) */
    const char *piece_end;
    char last_byte;           /* the last byte of the previous piece */
    unsigned crlf_due;        /* bytes of a chunk's closing CRLF still to check (next piece) */
    struct event *head_timer; /* --request-timeout for the head being parsed; may fire early */
    uint64_t head_started_ms; /* when that head began (pg_now_ms); 0: no head is being read */
};

static inline struct h1_stream *h1_stream_of_req(const struct pg_request *req)
{
    return (struct h1_stream *)req; /* req is the first member */
}

/* h1_output.c: responses, and the core's frontend operations. */
extern const struct pg_frontend_ops h1_frontend_ops;
/* Makes the oldest stream active once its head is complete: hands it to the core, or answers
 * it ourselves when it was refused. */
void h1_activate(struct pg_h1 *h1);
/* Writes what the active stream has, finishes it when its response is complete, and moves on
 * to the next. Returns true when a stream finished or started (more work may follow). */
bool h1_write_ready(struct pg_h1 *h1);
void h1_stream_free(struct h1_stream *st, bool teardown);
/* Answers the active stream with status ourselves (its request went wrong before any response
 * began): the core lets go of it first. */
void h1_refuse_active(struct h1_stream *st, int status);

#endif
