/* Links from upstream response heads, turned into pushes, 103 Early Hints and learned pages
 * (protocol-neutral). pg_hints_collect is pure and table-tested; the rest acts on a request
 * through the core (pushes via push.h, 103 via the frontend's submit_1xx).
 *
 * Ownership: a struct pg_link_set owns its resolved paths (pg_link_set_free); its hint values
 * are views into the response head it was collected from. */
#ifndef PUSHGATE_HINTS_H
#define PUSHGATE_HINTS_H

#include "pushgate/headers.h"
#include "pushgate/learn.h"
#include "pushgate/request.h"

#include <stdbool.h>
#include <stddef.h>

#define PG_HINTS_MAX_FIELDS 32      /* Link fields repeated in one 103 */
#define PG_HINTS_MAX_LINKS 64       /* link-values examined per field: bounds hostile input */
#define PG_HINTS_MAX_PUSH_PATH 2048 /* longer resolved targets are not pushed */

/* The preload links of one response head, resolved once: what to push, what to learn, what
 * to repeat in a 103. */
struct pg_link_set {
    struct pg_lines paths; /* resolved paths, NUL-separated */
    size_t path_offsets[PG_LEARN_MAX_TARGETS];
    struct pg_learned_target targets[PG_LEARN_MAX_TARGETS]; /* paths point into paths */
    size_t target_count;
    const char *hints[PG_HINTS_MAX_FIELDS]; /* views of the Link field values naming a preload */
    size_t hint_lens[PG_HINTS_MAX_FIELDS];
    size_t hint_count;
    bool hint_only; /* a preload link that cannot be pushed (nopush, other origin) */
};

/* Collects the preload links of fields (a response head) on the response to
 * scheme://authority + base (the request's path): same-origin targets, resolved and
 * deduplicated, at most PG_LEARN_MAX_TARGETS; the Link field values naming a preload, at most
 * PG_HINTS_MAX_FIELDS. Pure. Always initialises set. */
void pg_hints_collect(struct pg_header scheme, struct pg_header authority, struct pg_header base,
                      const struct pg_header *fields, size_t count, struct pg_link_set *set);
void pg_link_set_free(struct pg_link_set *set);

/* A request is about to go upstream: push or hint what was learned for its page. */
void pg_hints_on_request(struct pg_request *req);
/* An upstream head (103 or final) arrived: push its links, learn from a final one. */
void pg_hints_on_response(struct pg_request *req, const struct pg_response_head *head);

#endif
