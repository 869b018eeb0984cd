/* Links learned from earlier responses, so the proxy can push or hint while the upstream is
 * still generating a page (pure: plain data in, plain data out; time is passed in).
 *
 * Ownership: each worker owns one table (no locks: workers never share it) and frees it with
 * pg_learn_free. The table copies everything it stores. A pointer returned by pg_learn_lookup
 * stays valid until the next pg_learn_store or pg_learn_forget on the same table. */
#ifndef PUSHGATE_LEARN_H
#define PUSHGATE_LEARN_H

#include "pushgate/link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_LEARN_MAX_TARGETS 64       /* pushable targets remembered per page */
#define PG_LEARN_MAX_HINT_BYTES 16384 /* Link field bytes remembered per page for a 103 */
#define PG_LEARN_MAX_KEY 4096         /* authority + path; longer pages are not learned */

/* A same-origin preload target: the resolved origin-form path and its destination. */
struct pg_learned_target {
    const char *path; /* NUL-terminated */
    size_t path_len;
    enum pg_link_as as;
};

/* What a page's last 2xx response said: the targets to push and the Link field values to
 * repeat in a 103. */
struct pg_learned {
    const struct pg_learned_target *targets;
    size_t target_count;
    const char *const *hints; /* Link field values, NUL-terminated */
    const size_t *hint_lens;
    size_t hint_count;
    bool hint_only; /* some preload links cannot be pushed (nopush, other origin): hint them */
};

struct pg_learn;

/* A table of at most capacity pages, each remembered for ttl_ms after it was stored.
 * Returns NULL on allocation failure or a zero capacity. */
struct pg_learn *pg_learn_new(size_t capacity, uint64_t ttl_ms);
void pg_learn_free(struct pg_learn *table);

/* The links learned for (authority, path), or NULL when unknown or expired (an expired
 * entry is dropped). A hit becomes the most recently used entry. */
const struct pg_learned *pg_learn_lookup(struct pg_learn *table, const char *authority,
                                         size_t authority_len, const char *path, size_t path_len,
                                         uint64_t now_ms);

/* Replaces what is known for (authority, path) with learned (copied; counts above the caps
 * are cut, hints over PG_LEARN_MAX_HINT_BYTES dropped). A learned set with neither targets nor
 * hints forgets the page. Evicts the least recently used page when full. Returns 0,
 * PG_ERR_TOO_LONG (key too long: nothing stored, the old entry is forgotten) or
 * PG_ERR_NOMEM. */
int pg_learn_store(struct pg_learn *table, const char *authority, size_t authority_len,
                   const char *path, size_t path_len, const struct pg_learned *learned,
                   uint64_t now_ms);

void pg_learn_forget(struct pg_learn *table, const char *authority, size_t authority_len,
                     const char *path, size_t path_len);

size_t pg_learn_count(const struct pg_learn *table);

#endif
