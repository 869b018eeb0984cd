/* What to push, decided from plain facts (pure: no nghttp2, libevent or curl types).
 *
 * The HTTP/2 layer gathers the facts about a parent response and each Link target; these
 * functions answer yes or no, so every rule of RFC 9113 §8.4 and of the product is
 * table-tested here rather than buried in I/O code. */
#ifndef PUSHGATE_PUSH_POLICY_H
#define PUSHGATE_PUSH_POLICY_H

#include "pushgate/link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Facts about a response whose Link fields might be pushed. */
struct pg_push_parent {
    bool push_configured;  /* not --no-push */
    bool client_allows;    /* the client's SETTINGS_ENABLE_PUSH is 1 */
    bool client_goaway;    /* the client sent GOAWAY */
    bool parent_is_pushed; /* the response belongs to a pushed stream */
    bool parent_is_get;    /* the request method is GET (HEAD and the rest never push) */
    int status;            /* the final status of the parent response */
};

enum pg_push_verdict {
    PG_PUSH_YES = 0,
    PG_PUSH_DISABLED, /* by the operator or the client */
    PG_PUSH_GOAWAY,
    PG_PUSH_FROM_PUSH, /* never push from a pushed response */
    PG_PUSH_NOT_GET,
    PG_PUSH_STATUS, /* not 2xx, or 3xx other than 304 */
};

/* May this response's links be pushed at all? */
enum pg_push_verdict pg_push_parent_verdict(const struct pg_push_parent *parent);

/* The accept field a pushed request carries for a link's as= value. */
const char *pg_push_accept_for(enum pg_link_as as);

/* A 64-bit hash of a push target (host case-insensitive), shared by the push memory and the
 * cache digest. */
uint64_t pg_push_target_hash(const char *authority, size_t authority_len, const char *path,
                             size_t path_len);

/* Per-connection memory of paths already requested or pushed, so one is pushed once.
 * Bounded: it remembers the last PG_PUSH_MEMORY_SIZE paths (a ring of 64-bit hashes); older
 * entries are forgotten, which can only cause a redundant push, never a missing response. */
#define PG_PUSH_MEMORY_SIZE 256

struct pg_push_memory {
    uint64_t hashes[PG_PUSH_MEMORY_SIZE];
    size_t count; /* entries used, up to PG_PUSH_MEMORY_SIZE */
    size_t next;  /* ring position of the next entry */
};

bool pg_push_memory_contains(const struct pg_push_memory *mem, const char *authority,
                             size_t authority_len, const char *path, size_t path_len);
void pg_push_memory_add(struct pg_push_memory *mem, const char *authority, size_t authority_len,
                        const char *path, size_t path_len);

#endif
