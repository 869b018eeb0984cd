/* libcurl multi handles driven by a worker's libevent loop through curl_multi_socket_action:
 * an event per upstream socket (kept by descriptor for every multi handle of the loop; a pooled
 * connection's read event stays registered, parked), libcurl's timer, and answers to libcurl's
 * zero-timeout polls of sockets the loop already watches (curl_loop.c says why).
 *
 * Ownership: a worker creates its struct pg_curl_loop (pg_curl_loop_new) and frees it
 * (pg_curl_loop_free) after the cleanup of every multi handle on it. A struct pg_curl_multi is
 * embedded in its owner (upstream.c's shards), set up by pg_curl_multi_init and torn down by
 * pg_curl_multi_cleanup. Everything runs on the worker's thread. */
#ifndef PUSHGATE_CURL_LOOP_H
#define PUSHGATE_CURL_LOOP_H

#include <curl/curl.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct pg_curl_loop;

/* One multi handle on a loop. after(arg) runs after every run of libcurl, outside libcurl: the
 * owner collects finished transfers there (curl_multi_info_read). */
struct pg_curl_multi {
    CURLM *multi;
    struct pg_curl_loop *loop;
    struct event timer;   /* libcurl's single timeout; may fire before libcurl's time */
    uint64_t timer_at_ms; /* when the pending timer fires (pg_now_ms) */
    void (*after)(void *arg);
    void *arg;
};

/* NULL when out of memory. */
struct pg_curl_loop *pg_curl_loop_new(struct event_base *base);
void pg_curl_loop_free(struct pg_curl_loop *loop);

/* Returns 0 or PG_ERR_LIBRARY (nothing to clean up then). */
int pg_curl_multi_init(struct pg_curl_multi *m, struct pg_curl_loop *loop, void (*after)(void *arg),
                       void *arg);
void pg_curl_multi_cleanup(struct pg_curl_multi *m);

/* Every easy handle run on the loop's multi handles needs this: a socket libcurl closes loses
 * its event first (CURLOPT_CLOSESOCKETFUNCTION). */
void pg_curl_loop_watch_closes(struct pg_curl_loop *loop, CURL *easy);

/* Whether libcurl runs on this thread now: its callbacks may not call into a multi handle. */
bool pg_curl_loop_running(void);

#endif
