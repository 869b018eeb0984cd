/* The protocol-neutral request: the head every frontend (HTTP/2, HTTP/1.1) hands to the proxy core,
 * and the pure checks on it (plain data in, plain data out: table-tested in tests/unit).
 *
 * Ownership: a head is a set of borrowed views. The frontend that fills it keeps the bytes alive
 * (nghttp2 rcbufs, the HTTP/1.1 head copy, a pushed request's strings) for as long as the
 * request lives. */
#ifndef PUSHGATE_REQUEST_H
#define PUSHGATE_REQUEST_H

#include "pushgate/config.h"
#include "pushgate/digest.h"
#include "pushgate/headers.h"
#include "pushgate/metrics.h"
#include "pushgate/push_policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#define PG_REQUEST_MAX_FIELDS 128             /* more regular fields: 431 */
#define PG_REQUEST_MAX_HEAD_BYTES (64 * 1024) /* field bytes (HPACK-style, +32 each): 431 */

struct pg_request_head {
    struct pg_header method;        /* value view; NUL-terminated */
    struct pg_header scheme;        /* value view; "http" or "https" when valid */
    struct pg_header authority;     /* :authority, else the Host field */
    struct pg_header path;          /* origin-form, "*" (OPTIONS), NUL-terminated */
    const struct pg_header *fields; /* regular fields in arrival order, names lower-case */
    size_t count;
    bool authority_given; /* an :authority pseudo-field: a Host field must then agree with it */
    bool too_large;       /* the frontend dropped fields over the bounds above */
};

/* Checks that a request may be forwarded: method and path present, CONNECT refused, origin-form
 * path (or "*" for OPTIONS), no fragment, the connection's scheme (https when tls), an authority
 * without userinfo and no Host field contradicting :authority. Returns PG_OK, or PG_ERR_INVALID
 * with the status to answer (400, 405, 431) in *status. */
int pg_request_validate(const struct pg_request_head *head, bool tls, int *status);

/* The reason phrase of a status ("Bad Request"), for the statuses pushgate answers itself and
 * the common ones it relays in HTTP/1.1 status lines; "" when unknown. */
const char *pg_request_reason(int status) __attribute__((returns_nonnull));

/* True when this request's response carries no body whatever its fields say: HEAD, 1xx, 204,
 * 304 (RFC 9110 §6.4.1). */
bool pg_request_bodyless_response(const struct pg_request_head *head, int status);

/* The field called name (lower-case), or NULL. */
const struct pg_header *pg_request_field(const struct pg_request_head *head, const char *name);

/* ---- The request object the core and the frontends share (see proxy.h). ---- */

struct event;
struct event_base;
struct evbuffer;
struct pg_exchange;
struct pg_learn;
struct pg_upstream;
struct pg_access_log;

/* What the core borrows from the connection for the connection's whole life. */
struct pg_proxy_env {
    const struct pg_config *cfg;
    struct event_base *base;
    struct pg_upstream *upstream;
    struct pg_learn *learn;           /* the worker's learned pages; NULL when learning is off */
    struct evbuffer *scratch;         /* the worker's; always empty between calls */
    const char *client_addr;          /* textual peer address, for X-Forwarded-For */
    bool tls;                         /* the client connection is TLS */
    enum pg_metric_protocol protocol; /* how requests are counted */
    struct pg_counters *counters;     /* the worker's */
    struct pg_access_log *access_log; /* the worker's; NULL when off */
};

/* Above the high mark the upstream transfer is paused, below half of it it resumes. The mark
 * is a share of the connection's budget (--response-buffer-kib; one stream alone gets the most,
 * ten share it), so that memory follows connections, not streams: a client with many large
 * responses in flight cannot hold 128 KiB per stream. */
#define PG_RESPONSE_HIGH_WATER (128 * 1024)    /* the most one stream may have waiting */
#define PG_RESPONSE_MIN_HIGH_WATER (16 * 1024) /* the least, however many share */
/* A transfer starting beside this many others of its connection reads in single pieces. */
#define PG_SHARED_READ_AFTER 1
/* Response bytes wait in pieces of at most this many bytes, each in a buffer chain of its own
 * with PG_PIECE_ROOM free bytes in front, where a frontend writes its framing (an HTTP/2 DATA
 * frame header, an HTTP/1.1 chunk-size line) without copying the piece. */
#define PG_PIECE_PAYLOAD (16384 - 128 - 9)
#define PG_PIECE_ROOM 9
/* Smaller pieces are copied next to their framing by both frontends, not moved: a body known
 * to be smaller than this is appended as it comes, with no room kept in front. */
#define PG_SMALL_PIECE 4096

/* Why the core gives up on a stream. */
enum pg_reset_reason {
    PG_RESET_INTERNAL,     /* the response cannot be completed (upstream broke, no memory) */
    PG_RESET_CANCEL,       /* the client took nothing, or went silent mid-request */
    PG_RESET_HEAD_TIMEOUT, /* the header block did not complete in time: end the connection */
};

/* Where the request's bytes from the client stand. */
enum pg_request_input {
    PG_INPUT_HEAD = 0, /* the header block is arriving */
    PG_INPUT_BODY,     /* head complete; body bytes may still arrive */
    PG_INPUT_DONE,     /* the whole request was received */
};

/* Where the request stands with the upstream. */
enum pg_request_stage {
    PG_STAGE_NEW = 0,  /* head incomplete: nothing to do yet */
    PG_STAGE_READY,    /* head complete: starts at the next pg_proxy_run */
    PG_STAGE_QUEUED,   /* waiting for a slot under --max-upstream-per-connection */
    PG_STAGE_UPSTREAM, /* the exchange runs (ex is set) */
    PG_STAGE_ANSWERED, /* answered locally, or the upstream finished: no exchange */
};

/* Where the response to the client stands. */
enum pg_response_output {
    PG_OUTPUT_NONE = 0, /* no final head yet (a 1xx may have gone) */
    PG_OUTPUT_BODY,     /* final head submitted; body bytes may still come */
    PG_OUTPUT_COMPLETE, /* final head submitted; every body byte is in resp_body */
};

/* A final response head as the frontend submits it. */
struct pg_response {
    int status;
    const struct pg_header *fields; /* the upstream's (hop-by-hop removed), or ours */
    size_t count;
    const struct pg_header *extra; /* ours, after fields: via, set-cookie, retry-after */
    size_t extra_count;
    bool body; /* a body follows (resp_body, until output is PG_OUTPUT_COMPLETE) */
};

struct pg_request;
struct pg_pushed_request;

/* The frontend's side, one static table per protocol. Every call comes from the core on the
 * worker's thread, possibly from inside libcurl: none may free the request. */
struct pg_frontend_ops {
    /* Submits the final response head. Returns 0 or a pg_err code (the core then resets). */
    int (*submit_head)(struct pg_request *req, const struct pg_response *resp);
    /* Submits an informational (1xx, in practice 103) head. Returns 0 when it goes out, or a
     * pg_err code: PG_ERR_INVALID when the frontend declines it (HTTP/1.0 clients, 103 to
     * HTTP/1.1 clients off), others when it cannot. */
    int (*submit_1xx)(struct pg_request *req, int status, const struct pg_header *fields,
                      size_t count);
    /* More bytes are in resp_body, or output became PG_OUTPUT_COMPLETE. */
    void (*body_ready)(struct pg_request *req);
    /* The stream cannot be completed: abort it (HTTP/2 RST_STREAM, HTTP/1.1 close). */
    void (*reset)(struct pg_request *req, enum pg_reset_reason why);
    /* The upstream took n request body bytes: the client may send that many more. */
    void (*consume)(struct pg_request *req, size_t n);
    /* The core queued work for pg_proxy_run: flush soon (from the event loop). */
    void (*wake)(struct pg_request *req);
    /* Optional (NULL when the protocol cannot push). Whether the client accepts promises now
     * (SETTINGS_ENABLE_PUSH, no GOAWAY). */
    bool (*push_allowed)(const struct pg_request *req);
    /* Optional. Promises pushed on parent's connection. On success the frontend made a stream
     * and handed pushed to pg_request_start_pushed; on failure pushed stays the caller's. */
    int (*push)(struct pg_request *parent, struct pg_pushed_request *pushed);
};

/* The core's per-connection state, embedded in the frontend's connection. */
struct pg_proxy_conn {
    const struct pg_proxy_env *env;
    const struct pg_frontend_ops *ops;
    TAILQ_HEAD(, pg_request) pending; /* requests with upstream work for the next run */
    TAILQ_HEAD(, pg_request) waiting; /* requests waiting for a free upstream slot */
    unsigned running_exchanges;       /* upstream transfers of this connection */
    unsigned running_pushes;          /* pushed requests whose fetch is not over */
    struct pg_push_memory *pushed;    /* paths requested or pushed here; allocated with the first
                                       * path worth remembering (none while pushes are off) */
};

/* One request (a client's, or one we promised), embedded in the frontend's stream. */
struct pg_request {
    struct pg_proxy_conn *pc;
    struct pg_request_head head;    /* filled by the frontend before pg_request_head_received */
    struct pg_pushed_request *push; /* non-NULL for a request we promised: owns its strings */
    char *norm_path;                /* path with dot-segments removed, when that changed it */
    enum pg_request_input input;
    enum pg_request_stage stage;
    enum pg_response_output output;
    bool has_body;              /* the client announced a body */
    bool push_counted;          /* counted in pc->running_pushes */
    bool pending;               /* on pc->pending or pc->waiting */
    bool hinted;                /* we sent our own 103 for it */
    bool digest_loaded;         /* digest holds the client's pg_pushed cookie (or is empty) */
    bool digest_changed;        /* pushes were added: send the cookie back */
    unsigned pushes;            /* promises made for this response (all sources) */
    uint64_t hint_version;      /* the learned entry (pg_learned.version) our 103 came from;
                                 * 0: none */
    uint64_t learn_stamp;       /* the upstream's 103 links are staged under it (0: none) */
    uint64_t learn_absent_mark; /* pg_learn_mark + 1 when the page's lookup missed (else 0) */
    struct evbuffer *req_body;  /* received body bytes the upstream has not taken */
    struct pg_exchange *ex;     /* set in PG_STAGE_UPSTREAM only */
    struct evbuffer *resp_body; /* response bytes waiting for the client */
    size_t piece_room;          /* free bytes in resp_body's last piece (0 when empty) */
    struct event *stall_ev;     /* while the upstream is paused for this client: its limit */
    struct event *request_ev;   /* while the request is incomplete: its silence limit */
    /* What the access log and the metrics report (proxy.c fills them; the frontend sets
     * protocol, and client_reset when the client reset the stream). */
    const char *protocol;       /* "HTTP/1.0", "HTTP/1.1" or "HTTP/2.0" */
    int status;                 /* the final status submitted; 0: none */
    uint64_t start_us;          /* monotonic: the head arrived, or the promise was made */
    int64_t start_wall_ms;      /* the same moment, wall clock */
    uint64_t upstream_start_us; /* the exchange started; 0: never */
    int64_t upstream_time_us;   /* exchange start to the final head; -1: none */
    uint64_t body_bytes;        /* response body bytes handed to the frontend */
    long long response_length;  /* the final head's content-length; -1: none or not yet */
    unsigned hinted_links;      /* link-values in our 103; 0: none sent */
    bool learned;               /* the learned table acted on this request */
    bool client_reset;          /* the client reset the stream (a cancelled push) */
    char *parent_path;          /* a pushed request: the path of the page that pushed it */
    struct pg_digest digest;
    TAILQ_ENTRY(pg_request) queue_link;
};

/* The path forwarded upstream (dot-segments removed). */
struct pg_header pg_request_path(const struct pg_request *req);

#endif
