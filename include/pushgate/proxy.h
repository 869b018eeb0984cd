/* The protocol-neutral proxy core: one request's life, written once for every frontend.
 *
 * A frontend (HTTP/2 session, HTTP/1.1 connection) embeds a struct pg_proxy_conn in its
 * connection state and a struct pg_request in each of its streams, fills the request head,
 * feeds request body bytes, and calls pg_proxy_run from its flush (never from inside a library
 * callback). The core validates the request, starts and drives its upstream exchange, answers
 * errors itself, keeps the per-stream timers, and calls the frontend back only through
 * struct pg_frontend_ops, as HAProxy's mux_ops and h2o's connection callbacks do.
 *
 * Ownership: the frontend allocates the struct holding a pg_request and frees it after
 * pg_request_clear; the request owns its body buffers, timers, upstream exchange and (for a
 * pushed request) its pushed-request strings. pg_proxy_conn owns the per-connection push
 * memory. Everything runs on the worker's thread. */
#ifndef PUSHGATE_PROXY_H
#define PUSHGATE_PROXY_H

#include "pushgate/request.h"

#include <stdbool.h>
#include <stddef.h>

void pg_proxy_conn_init(struct pg_proxy_conn *pc, const struct pg_proxy_env *env,
                        const struct pg_frontend_ops *ops);
/* Frees the push memory. Every request must have been cleared first. */
void pg_proxy_conn_clear(struct pg_proxy_conn *pc);
/* Runs the work queued by the last reads and callbacks: starts upstream exchanges (or answers
 * 4xx/503 locally) and resumes paused ones. Call from the frontend's flush only. */
void pg_proxy_run(struct pg_proxy_conn *pc);

/* Returns 0 or PG_ERR_NOMEM (nothing to clear then). */
int pg_request_init(struct pg_request *req, struct pg_proxy_conn *pc);
/* Releases everything the request owns (a second call does nothing). With cancel, a running
 * exchange is aborted at once (connection teardown); otherwise a bodyless finished response may
 * return its upstream connection to the pool. */
void pg_request_clear(struct pg_request *req, bool cancel);

/* A header block began but did not complete in the same read: its silence is timed. */
void pg_request_head_started(struct pg_request *req);
/* The head is complete (req->head filled); has_body: body bytes follow. */
void pg_request_head_received(struct pg_request *req, bool has_body);
/* Request body bytes. Returns 0 or PG_ERR_NOMEM. Bytes for a request already answered are
 * consumed at once. */
int pg_request_body_received(struct pg_request *req, const char *data, size_t len);
/* The request's last byte arrived. */
void pg_request_end_received(struct pg_request *req);
/* The frontend took bytes out of resp_body: the upstream may resume. */
void pg_request_output_drained(struct pg_request *req);
/* Takes ownership of pushed (see pg_frontend_ops.push), promised on parent's response, and
 * queues its upstream fetch. */
void pg_request_start_pushed(struct pg_request *req, struct pg_pushed_request *pushed,
                             const struct pg_request *parent);

#endif
