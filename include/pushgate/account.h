/* Accounting for one request, protocol-neutral: the access-log line and the per-worker
 * counters, written once, when the request ends (pg_request_clear), from the request object.
 * Runs on the worker's thread; keeps nothing. */
#ifndef PUSHGATE_ACCOUNT_H
#define PUSHGATE_ACCOUNT_H

#include "pushgate/request.h"
#include "pushgate/upstream.h"

/* The request's head arrived (or the promise was made): its clock starts. */
void pg_account_start(struct pg_request *req);
/* The upstream did not answer (counted by kind). */
void pg_account_upstream_error(struct pg_request *req, enum pg_exchange_result result);
/* The request ends: its line and its counters. A request that never got a head or a status
 * (a stream reset while its header block was arriving) is not counted. */
void pg_request_account(const struct pg_request *req);

#endif
