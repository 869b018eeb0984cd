#include "pushgate/learn.h"
#include "pushgate/common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* One remembered page, or one staged set of 103 links (then key is NULL and stamp names it).
 * Owns every byte its view points to (strings, arrays). */
struct entry {
    TAILQ_ENTRY(entry) lru; /* most recently used (or staged) first */
    struct entry *next;     /* hash chain (pages only) */
    uint64_t hash;
    uint64_t expires_ms;
    uint64_t stamp; /* staged sets only */
    char *key;      /* lower-cased authority, NUL, path */
    size_t key_len;
    char *strings; /* target paths and link texts, each NUL-terminated */
    struct pg_learned_target *targets;
    struct pg_learned_link *links;
    struct pg_learned view; /* what lookups hand out, pointing into the above */
};

TAILQ_HEAD(entry_list, entry);

struct pg_learn {
    struct entry **buckets;
    size_t mask; /* bucket count - 1 (a power of two) */
    size_t count;
    size_t capacity;
    uint64_t ttl_ms;
    uint64_t last_id; /* the last version or stamp handed out: both come from it, never 0 */
    struct entry_list lru;
    struct entry_list staged; /* most recently staged first, at most PG_LEARN_MAX_STAGED */
    size_t staged_count;
};

/* The key is "authority NUL path" with the host part lower-cased, so Example.com and
 * example.com share what they learned. */
static size_t make_key(char *out, const char *authority, size_t authority_len, const char *path,
                       size_t path_len)
{
    for (size_t i = 0; i < authority_len; i++)
        out[i] = pg_ascii_lower(authority[i]);
    out[authority_len] = '\0';
    memcpy(out + authority_len + 1, path, path_len);
    return authority_len + 1 + path_len;
}

static uint64_t hash_key(const char *key, size_t len)
{
    return pg_hash_bytes(PG_HASH_SEED, key, len);
}

struct pg_learn *pg_learn_new(size_t capacity, uint64_t ttl_ms)
{
    if (capacity == 0 || capacity > (SIZE_MAX / 4) / sizeof(struct entry *))
        return NULL;
    struct pg_learn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    size_t buckets = 16;
    while (buckets < capacity * 2)
        buckets *= 2;
    t->buckets = calloc(buckets, sizeof(*t->buckets));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->mask = buckets - 1;
    t->capacity = capacity;
    t->ttl_ms = ttl_ms;
    TAILQ_INIT(&t->lru);
    TAILQ_INIT(&t->staged);
    return t;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e->strings);
    free(e->targets);
    free(e->links);
    free(e);
}

static void drop_staged(struct pg_learn *t, struct entry *e)
{
    TAILQ_REMOVE(&t->staged, e, lru);
    t->staged_count--;
    entry_free(e);
}

static struct entry **slot_of(struct pg_learn *t, const char *key, size_t key_len, uint64_t hash)
{
    struct entry **slot = &t->buckets[hash & t->mask];
    while (*slot && !((*slot)->hash == hash && (*slot)->key_len == key_len &&
                      memcmp((*slot)->key, key, key_len) == 0))
        slot = &(*slot)->next;
    return slot;
}

static void unlink_entry(struct pg_learn *t, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->next;
    TAILQ_REMOVE(&t->lru, e, lru);
    t->count--;
    entry_free(e);
}

void pg_learn_free(struct pg_learn *t)
{
    if (!t)
        return;
    while (!TAILQ_EMPTY(&t->lru)) {
        struct entry *e = TAILQ_FIRST(&t->lru);
        unlink_entry(t, slot_of(t, e->key, e->key_len, e->hash));
    }
    while (!TAILQ_EMPTY(&t->staged))
        drop_staged(t, TAILQ_FIRST(&t->staged));
    free(t->buckets);
    free(t);
}

const struct pg_learned *pg_learn_lookup(struct pg_learn *t, const char *authority,
                                         size_t authority_len, const char *path, size_t path_len,
                                         uint64_t now_ms)
{
    char key[PG_LEARN_MAX_KEY];
    if (authority_len + 1 + path_len > sizeof(key))
        return NULL;
    size_t key_len = make_key(key, authority, authority_len, path, path_len);
    struct entry **slot = slot_of(t, key, key_len, hash_key(key, key_len));
    struct entry *e = *slot;
    if (!e)
        return NULL;
    if (now_ms >= e->expires_ms) {
        unlink_entry(t, slot);
        return NULL;
    }
    TAILQ_REMOVE(&t->lru, e, lru);
    TAILQ_INSERT_HEAD(&t->lru, e, lru);
    return &e->view;
}

void pg_learn_forget(struct pg_learn *t, const char *authority, size_t authority_len,
                     const char *path, size_t path_len)
{
    char key[PG_LEARN_MAX_KEY];
    if (authority_len + 1 + path_len > sizeof(key))
        return;
    size_t key_len = make_key(key, authority, authority_len, path, path_len);
    struct entry **slot = slot_of(t, key, key_len, hash_key(key, key_len));
    if (*slot)
        unlink_entry(t, slot);
}

bool pg_learn_same_link(const struct pg_learned_link *a, const struct pg_learned_link *b)
{
    return a->rels == b->rels && a->as == b->as && a->target_len == b->target_len &&
           memcmp(a->target, b->target, a->target_len) == 0;
}

static bool has_target(const struct pg_learned_target *const *kept, size_t n,
                       const struct pg_learned_target *t)
{
    for (size_t i = 0; i < n; i++)
        if (kept[i]->path_len == t->path_len && memcmp(kept[i]->path, t->path, t->path_len) == 0)
            return true;
    return false;
}

static bool has_link(const struct pg_learned_link *const *kept, size_t n,
                     const struct pg_learned_link *l)
{
    for (size_t i = 0; i < n; i++)
        if (pg_learn_same_link(kept[i], l))
            return true;
    return false;
}

/* A link whose target view is not inside its text cannot be copied as one piece. */
static bool link_wellformed(const struct pg_learned_link *l)
{
    return l->text && l->target && l->target >= l->text &&
           (size_t)(l->target - l->text) + l->target_len <= l->text_len;
}

/* Copies the merge of in[0..n) into e: in order, without repeats, within the caps. Returns 0
 * or PG_ERR_NOMEM. */
static int fill_entry(struct entry *e, const struct pg_learned *const *in, size_t n)
{
    const struct pg_learned_target *targets[PG_LEARN_MAX_TARGETS];
    const struct pg_learned_link *links[PG_LEARN_MAX_LINKS];
    size_t nt = 0, nl = 0, bytes = 0, link_bytes = 0;
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < in[s]->target_count && nt < PG_LEARN_MAX_TARGETS; i++) {
            const struct pg_learned_target *t = &in[s]->targets[i];
            if (has_target(targets, nt, t))
                continue;
            targets[nt++] = t;
            bytes += t->path_len + 1;
        }
        for (size_t i = 0; i < in[s]->link_count && nl < PG_LEARN_MAX_LINKS; i++) {
            const struct pg_learned_link *l = &in[s]->links[i];
            if (!link_wellformed(l) || link_bytes + l->text_len > PG_LEARN_MAX_HINT_BYTES ||
                has_link(links, nl, l))
                continue;
            links[nl++] = l;
            link_bytes += l->text_len;
            bytes += l->text_len + 1;
        }
    }
    e->strings = malloc(bytes ? bytes : 1);
    e->targets = calloc(nt ? nt : 1, sizeof(*e->targets));
    e->links = calloc(nl ? nl : 1, sizeof(*e->links));
    if (!e->strings || !e->targets || !e->links)
        return PG_ERR_NOMEM;
    char *p = e->strings;
    for (size_t i = 0; i < nt; i++) {
        memcpy(p, targets[i]->path, targets[i]->path_len);
        p[targets[i]->path_len] = '\0';
        e->targets[i] = (struct pg_learned_target){p, targets[i]->path_len, targets[i]->as};
        p += targets[i]->path_len + 1;
    }
    bool hint_only = false;
    for (size_t i = 0; i < nl; i++) {
        const struct pg_learned_link *l = links[i];
        memcpy(p, l->text, l->text_len);
        p[l->text_len] = '\0';
        e->links[i] = *l;
        e->links[i].text = p;
        e->links[i].target = p + (l->target - l->text);
        hint_only = hint_only || l->hint_only;
        p += l->text_len + 1;
    }
    e->view = (struct pg_learned){e->targets, nt, e->links, nl, hint_only, 0};
    return PG_OK;
}

static bool empty(const struct pg_learned *l)
{
    return l->target_count == 0 && l->link_count == 0;
}

static struct entry *find_staged(struct pg_learn *t, uint64_t stamp)
{
    struct entry *e;
    if (stamp == 0)
        return NULL;
    for (e = TAILQ_FIRST(&t->staged); e; e = TAILQ_NEXT(e, lru))
        if (e->stamp == stamp)
            return e;
    return NULL;
}

/* Sets staged for responses that ended without a final head (a reset stream) are never
 * claimed: age and the cap retire them. */
static void expire_staged(struct pg_learn *t, uint64_t now_ms)
{
    while (!TAILQ_EMPTY(&t->staged) && now_ms >= TAILQ_LAST(&t->staged, entry_list)->expires_ms)
        drop_staged(t, TAILQ_LAST(&t->staged, entry_list));
}

int pg_learn_stage(struct pg_learn *t, uint64_t *stamp, const struct pg_learned *links,
                   uint64_t now_ms)
{
    expire_staged(t, now_ms);
    if (empty(links))
        return PG_OK;
    if (*stamp == 0)
        *stamp = ++t->last_id;
    struct entry *old = find_staged(t, *stamp);
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return PG_ERR_NOMEM;
    const struct pg_learned *in[2] = {old ? &old->view : NULL, links};
    if (fill_entry(e, old ? in : in + 1, old ? 2 : 1) != PG_OK) {
        entry_free(e);
        return PG_ERR_NOMEM;
    }
    e->stamp = *stamp;
    e->expires_ms = now_ms + t->ttl_ms;
    if (old)
        drop_staged(t, old);
    else if (t->staged_count == PG_LEARN_MAX_STAGED)
        drop_staged(t, TAILQ_LAST(&t->staged, entry_list));
    TAILQ_INSERT_HEAD(&t->staged, e, lru);
    t->staged_count++;
    return PG_OK;
}

void pg_learn_unstage(struct pg_learn *t, uint64_t stamp)
{
    struct entry *e = find_staged(t, stamp);
    if (e)
        drop_staged(t, e);
}

int pg_learn_store(struct pg_learn *t, const char *authority, size_t authority_len,
                   const char *path, size_t path_len, const struct pg_learned *learned,
                   uint64_t stamp, uint64_t now_ms)
{
    char key[PG_LEARN_MAX_KEY];
    int rv = PG_OK;
    struct entry *staged = find_staged(t, stamp);
    if (authority_len + 1 + path_len > sizeof(key)) {
        rv = PG_ERR_TOO_LONG;
        goto out;
    }
    size_t key_len = make_key(key, authority, authority_len, path, path_len);
    uint64_t hash = hash_key(key, key_len);
    struct entry **slot = slot_of(t, key, key_len, hash);
    if (*slot)
        unlink_entry(t, slot);
    if (empty(learned) && (!staged || empty(&staged->view)))
        goto out;
    if (t->count == t->capacity) {
        struct entry *oldest = TAILQ_LAST(&t->lru, entry_list);
        unlink_entry(t, slot_of(t, oldest->key, oldest->key_len, oldest->hash));
    }
    struct entry *e = calloc(1, sizeof(*e));
    if (!e) {
        rv = PG_ERR_NOMEM;
        goto out;
    }
    const struct pg_learned *in[2] = {staged ? &staged->view : NULL, learned};
    e->key = malloc(key_len);
    if (!e->key || fill_entry(e, staged ? in : in + 1, staged ? 2 : 1) != PG_OK) {
        entry_free(e);
        rv = PG_ERR_NOMEM;
        goto out;
    }
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->hash = hash;
    e->expires_ms = now_ms + t->ttl_ms;
    e->view.version = ++t->last_id;
    slot = slot_of(t, key, key_len, hash); /* eviction may have changed the chain */
    e->next = *slot;
    *slot = e;
    TAILQ_INSERT_HEAD(&t->lru, e, lru);
    t->count++;
out:
    if (staged)
        drop_staged(t, staged);
    return rv;
}

size_t pg_learn_staged_count(const struct pg_learn *t)
{
    return t->staged_count;
}

uint64_t pg_learn_mark(const struct pg_learn *t)
{
    return t->last_id; /* every added entry takes a new version from it */
}

size_t pg_learn_count(const struct pg_learn *t)
{
    return t->count;
}
