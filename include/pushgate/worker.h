/* A worker: one thread with its own event loop, libcurl multi handle, listeners and
 * connections. Nothing in a worker is shared with another worker except the read-only
 * configuration and the TLS context.
 *
 * Ownership: main allocates the workers array and calls pg_worker_init/pg_worker_free; a worker
 * owns its event_base, its upstream, its listeners and every connection accepted on them. */
#ifndef PUSHGATE_WORKER_H
#define PUSHGATE_WORKER_H

#include "pushgate/config.h"
#include "pushgate/conn.h"
#include "pushgate/metrics.h"

#include "pushgate/tls.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <sys/queue.h>

struct event_base;
struct event;
struct evconnlistener;
struct evbuffer;
struct pg_upstream;
struct pg_learn;

struct pg_worker {
    unsigned index;
    const struct pg_config *cfg;
    struct pg_tls_store *tls; /* main's; NULL for cleartext */
    struct event_base *base;  /* lock-free: only this worker's thread touches it */
    /* How main asks the loop for something (stop, drain on SIGTERM, reopen the log on SIGUSR1,
     * reload the TLS context after SIGHUP): a bit in asked, then a write to the eventfd the
     * loop watches. Cross-thread event_active would need a locked base, and its lock costs
     * every event_add of every request. */
    atomic_uint asked;
    int notify_fd; /* eventfd; -1 before init */
    struct event *notify_ev;
    bool draining; /* listeners closed; the loop ends with the last connection */
    bool joined;   /* the thread was joined */
    struct pg_upstream *upstream;
    struct pg_learn *learn; /* links learned from this worker's responses; NULL when off */
    struct evconnlistener *listeners[PG_MAX_LISTENERS];
    size_t listener_count;
    TAILQ_HEAD(, pg_conn) conns; /* every open client connection */
    unsigned conn_count;
    unsigned max_conns;       /* this worker's share of --max-connections */
    bool listening;           /* listeners enabled (off at the limit or after EMFILE) */
    struct event *backoff_ev; /* re-enables accepting after a descriptor shortage */
    struct evbuffer *scratch; /* always empty between calls; proxy.c builds body pieces in it */
    struct pg_conn_owner conn_owner;  /* what every connection of this worker borrows */
    struct pg_counters counters;      /* this worker's; the metrics listener reads them */
    struct pg_access_log *access_log; /* NULL when --access-log is off */
    pthread_t thread;
};

/* Sets up the loop, the upstream and listeners serving protocols on the already bound sockets
 * fds[count] (the worker takes ownership of them). Returns 0 or a pg_err code. */
int pg_worker_init(struct pg_worker *w, unsigned index, const struct pg_config *cfg,
                   struct pg_tls_store *tls, const struct pg_protocols *protocols, const int *fds,
                   size_t count);
/* Runs the loop on a new thread until pg_worker_stop. Returns 0 or PG_ERR_LIBRARY. */
int pg_worker_start(struct pg_worker *w);
/* Thread-safe: asks the loop to end; then joins the thread (unless pg_worker_wait did). */
void pg_worker_stop(struct pg_worker *w);
/* Thread-safe: closes the listeners and lets every connection finish what it has in flight
 * (pg_conn_drain); the loop ends when the last connection is gone. */
void pg_worker_drain(struct pg_worker *w);
/* Writes the worker's listening descriptors (still owned by it) to fds[cap]; returns their
 * count. Only while the worker is not draining. */
size_t pg_worker_listener_fds(const struct pg_worker *w, int *fds, size_t cap);
/* Thread-safe: new connections use the store's current TLS context (SIGHUP). */
void pg_worker_reload_tls(struct pg_worker *w);
/* Thread-safe: the access log reopens its file (logrotate). */
void pg_worker_reopen_log(struct pg_worker *w);
/* Waits until the worker's loop ended or the monotonic deadline passed; true when it ended
 * (the thread is joined then). */
bool pg_worker_wait(struct pg_worker *w, const struct timespec *deadline);
/* Closes every connection and frees everything the worker owns. */
void pg_worker_free(struct pg_worker *w);

/* Takes a client connection (ownership of fd) into the worker's list and starts it. */
void pg_worker_accept(struct pg_worker *w, evutil_socket_t fd, const struct sockaddr *addr);

/* Binds a listening TCP socket (errors name flag, e.g. "--listen") (SO_REUSEADDR, SO_REUSEPORT,
 * non-blocking). With exclusive, first checks that no other socket holds the port. Writes the port
 * actually bound to *bound_port. Returns the fd, or -1 with errno-based text in err. */
int pg_listen_socket(const char *flag, const char *host, const char *port, bool exclusive,
                     unsigned *bound_port, char *err, size_t err_len);

#endif
