/* Server push, protocol-neutral: which targets a response pushes (within the per-response,
 * per-connection and cache-digest rules), the request a promise carries, and the per-connection
 * memory of what was requested or pushed. A frontend that can push only submits the promise
 * (pg_frontend_ops.push); everything else is decided here.
 *
 * Ownership: a struct pg_pushed_request is made by pg_push_targets and handed to the frontend;
 * once the frontend passes it to pg_request_start_pushed the request owns it. */
#ifndef PUSHGATE_PUSH_H
#define PUSHGATE_PUSH_H

#include "pushgate/headers.h"
#include "pushgate/learn.h"
#include "pushgate/request.h"

#include <stdbool.h>
#include <stddef.h>

#define PG_PUSH_MAX_FIELDS 8

/* A promised request: pushgate made it up, so it owns its strings. */
struct pg_pushed_request {
    struct pg_lines strings; /* scheme, authority, path, then name, value, ... (NUL-separated) */
    struct pg_header fields[PG_PUSH_MAX_FIELDS]; /* views into strings */
    size_t count;
    struct pg_header scheme, authority, path; /* views into strings (name unused) */
};

void pg_pushed_request_free(struct pg_pushed_request *pushed);

/* May this request's response (status, or 200 before it is known) push at all? */
bool pg_push_may(const struct pg_request *req, int status);

/* Pushes targets on req's connection. Returns true when every target was pushed now or before
 * (none was left out by a limit). */
bool pg_push_targets(struct pg_request *req, const struct pg_learned_target *targets, size_t count);

/* Remembers a path requested or pushed on the connection so it is not pushed (again); only
 * while a push could still happen. Returns false when out of memory. */
bool pg_push_remember(struct pg_request *req, struct pg_header authority, const char *path,
                      size_t len);

/* The Set-Cookie value carrying req's cache digest. */
void pg_push_format_cookie(const struct pg_request *req, char *out, size_t cap);

#endif
