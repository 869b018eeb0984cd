/* Links learned from earlier responses, so the proxy can push or hint while the upstream is
 * still generating a page (pure: plain data in, plain data out; time is passed in).
 *
 * A page's entry is what its last 2xx response named, in its own 103s and in its final head
 * together: the upstream's 103 links are staged under a stamp while the response is under way
 * and merged into the entry when the final 2xx is stored.
 *
 * Ownership: each worker owns one table (no locks: workers never share it) and frees it with
 * pg_learn_free. The table copies everything it stores or stages. A pointer returned by
 * pg_learn_lookup stays valid until the next pg_learn_store or pg_learn_forget on the same
 * table. */
#ifndef PUSHGATE_LEARN_H
#define PUSHGATE_LEARN_H

#include "pushgate/link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_LEARN_MAX_TARGETS 64       /* pushable targets remembered per page */
#define PG_LEARN_MAX_LINKS 64         /* link-values remembered per page: our 103's bound */
#define PG_LEARN_MAX_HINT_BYTES 16384 /* their text, summed: our 103's field bytes */
#define PG_LEARN_MAX_KEY 4096         /* authority + path; longer pages are not learned */
#define PG_LEARN_MAX_STAGED 64        /* responses whose 103 links wait for their final head */

/* A same-origin preload target: the resolved origin-form path and its destination. */
struct pg_learned_target {
    const char *path; /* NUL-terminated */
    size_t path_len;
    enum pg_link_as as;
};

/* One link-value to repeat in a 103, as the upstream wrote it. Two links are the same link
 * when target (as written), rels and as are equal (pg_learn_same_link). */
struct pg_learned_link {
    const char *text; /* the link-value's bytes (pg_link.text); NUL-terminated when stored */
    size_t text_len;
    const char *target; /* inside text */
    size_t target_len;
    unsigned rels; /* enum pg_link_rel bits it is hinted for */
    enum pg_link_as as;
    bool hint_only; /* push cannot deliver it (nopush, another origin, preconnect) */
};

/* What a page's last 2xx response said: the targets to push and the links to repeat in a
 * 103. */
struct pg_learned {
    const struct pg_learned_target *targets;
    size_t target_count;
    const struct pg_learned_link *links;
    size_t link_count;
    bool hint_only;   /* some link is hint_only: a push-enabled client needs a 103 too */
    uint64_t version; /* set by the table, never 0; a new one each time the page is stored */
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

/* Stages links (an upstream 103's; copied, deduplicated, within the caps) under *stamp for the
 * pg_learn_store of the same response. A *stamp of 0 asks for a new stamp, written back. The
 * least recently staged set makes room when PG_LEARN_MAX_STAGED are held; sets expire after the
 * table's ttl. Returns 0 or PG_ERR_NOMEM (nothing staged; *stamp may be set). */
int pg_learn_stage(struct pg_learn *table, uint64_t *stamp, const struct pg_learned *links,
                   uint64_t now_ms);

/* Drops what is staged under stamp (0 or unknown: nothing). */
void pg_learn_unstage(struct pg_learn *table, uint64_t stamp);

/* Replaces what is known for (authority, path) with what is staged under stamp (0: nothing)
 * followed by learned, merged: a target already present (same path) or a link already present
 * (pg_learn_same_link) is not added twice, the first one kept; at most PG_LEARN_MAX_TARGETS
 * targets and PG_LEARN_MAX_LINKS links of at most PG_LEARN_MAX_HINT_BYTES together, taken in
 * order (a link that does not fit is skipped). The staged set is dropped. A merge with neither
 * targets nor links forgets the page. Evicts the least recently used page when full. Returns
 * 0, PG_ERR_TOO_LONG (key too long: nothing stored, the old entry is forgotten) or
 * PG_ERR_NOMEM. */
int pg_learn_store(struct pg_learn *table, const char *authority, size_t authority_len,
                   const char *path, size_t path_len, const struct pg_learned *learned,
                   uint64_t stamp, uint64_t now_ms);

void pg_learn_forget(struct pg_learn *table, const char *authority, size_t authority_len,
                     const char *path, size_t path_len);

/* True when a and b name the same link: same target bytes, rels and as. */
bool pg_learn_same_link(const struct pg_learned_link *a, const struct pg_learned_link *b);

/* Changes whenever an entry is added (and at other times too): a page pg_learn_lookup did not
 * find while the mark was m is still unknown while the mark is m. */
uint64_t pg_learn_mark(const struct pg_learn *table);

size_t pg_learn_count(const struct pg_learn *table);
size_t pg_learn_staged_count(const struct pg_learn *table);

#endif
