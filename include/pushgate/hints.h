/* Links from upstream response heads, turned into pushes, 103 Early Hints and learned pages
 * (protocol-neutral). pg_hints_collect and pg_hints_navigation are pure and table-tested; the
 * rest acts on a request through the core (pushes via push.h, 103s via the frontend's
 * submit_1xx).
 *
 * Browsers act only on the first 103 of a navigation, and only on preload, modulepreload and
 * preconnect links in it: our 103 names all of those the page's last 2xx response named (in
 * its 103s and in its final head), byte for byte, so it is complete by itself.
 *
 * Ownership: a struct pg_link_set owns its resolved paths (pg_link_set_free); its link texts
 * are views into the response head it was collected from. */
#ifndef PUSHGATE_HINTS_H
#define PUSHGATE_HINTS_H

#include "pushgate/headers.h"
#include "pushgate/learn.h"
#include "pushgate/request.h"

#include <stdbool.h>
#include <stddef.h>

#define PG_HINTS_MAX_LINKS 64       /* link-values examined per field: bounds hostile input */
#define PG_HINTS_MAX_PUSH_PATH 2048 /* longer resolved targets are not pushed */

/* The relations a 103 of ours carries (browsers act on no other in a 103: not dns-prefetch,
 * not prefetch), and the ones that may be pushed (same-origin targets only). */
#define PG_HINTS_RELS (PG_LINK_REL_PRELOAD | PG_LINK_REL_MODULEPRELOAD | PG_LINK_REL_PRECONNECT)
#define PG_HINTS_PUSH_RELS (PG_LINK_REL_PRELOAD | PG_LINK_REL_MODULEPRELOAD)

/* The hintable links of one response head, resolved once: what to push, what to learn, what
 * to repeat in a 103. */
struct pg_link_set {
    struct pg_lines paths; /* resolved paths, NUL-separated */
    size_t path_offsets[PG_LEARN_MAX_TARGETS];
    struct pg_learned_target targets[PG_LEARN_MAX_TARGETS]; /* paths point into paths */
    size_t target_count;
    struct pg_learned_link links[PG_LEARN_MAX_LINKS]; /* texts are views into the head */
    size_t link_count;
    size_t link_bytes; /* their text, summed (at most PG_LEARN_MAX_HINT_BYTES) */
    bool hint_only;    /* some link cannot be pushed (nopush, other origin, preconnect) */
};

/* Collects the hintable links (PG_HINTS_RELS) of fields (a response head) on the response to
 * scheme://authority + base (the request's path). Targets: the same-origin preload and
 * modulepreload links without nopush, resolved and deduplicated by path, at most
 * PG_LEARN_MAX_TARGETS (a modulepreload without as= is a script). Links: every hintable
 * link-value once (pg_learn_same_link), in order, at most PG_LEARN_MAX_LINKS and
 * PG_LEARN_MAX_HINT_BYTES of text (one that does not fit is skipped). Pure. Always initialises
 * set's counts and paths (its arrays only below the counts). */
void pg_hints_collect(struct pg_header scheme, struct pg_header authority, struct pg_header base,
                      const struct pg_header *fields, size_t count, struct pg_link_set *set);
void pg_link_set_free(struct pg_link_set *set);

/* May a 103 of ours go to this request? Browsers act on a 103 only for a top-level
 * navigation: false when a Sec-Fetch-Mode field is not "navigate" or a Sec-Fetch-Dest field is
 * not "document"; true without these fields (clients that are not browsers). Pure. */
bool pg_hints_navigation(const struct pg_request_head *head);

/* A request is about to go upstream: push or hint what was learned for its page. */
void pg_hints_on_request(struct pg_request *req);

/* An upstream head (1xx or final) arrived: push its links; stage a 103's links for learning,
 * learn from a final 2xx, forget the page on any other final status but 304. A 1xx is also
 * forwarded here (without content-length), unless it is a 103 coming after ours that names
 * no link ours did not. */
void pg_hints_on_response(struct pg_request *req, const struct pg_response_head *head);

#endif
