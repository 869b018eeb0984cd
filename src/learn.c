#include "pushgate/learn.h"
#include "pushgate/common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* One remembered page. Owns every byte its view points to (strings, arrays). */
struct entry {
    TAILQ_ENTRY(entry) lru; /* most recently used first */
    struct entry *next;     /* hash chain */
    uint64_t hash;
    uint64_t expires_ms;
    char *key; /* lower-cased authority, NUL, path */
    size_t key_len;
    char *strings; /* target paths and hint values, each NUL-terminated */
    struct pg_learned_target *targets;
    const char **hints;
    size_t *hint_lens;
    struct pg_learned view; /* what lookups hand out, pointing into the above */
};

struct pg_learn {
    struct entry **buckets;
    size_t mask; /* bucket count - 1 (a power of two) */
    size_t count;
    size_t capacity;
    uint64_t ttl_ms;
    TAILQ_HEAD(entry_list, entry) lru;
};

/* The key is "authority NUL path" with the host part lower-cased, so Example.com and
 * example.com share what they learned. */
static size_t make_key(char *out, const char *authority, size_t authority_len, const char *path,
                       size_t path_len)
{
    for (size_t i = 0; i < authority_len; i++)
        out[i] = (char)tolower((unsigned char)authority[i]);
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
    return t;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e->strings);
    free(e->targets);
    free(e->hints);
    free(e->hint_lens);
    free(e);
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

/* Copies the learned set into e (bounded by the caps). Returns 0 or PG_ERR_NOMEM. */
static int fill_entry(struct entry *e, const struct pg_learned *in)
{
    size_t targets =
        in->target_count < PG_LEARN_MAX_TARGETS ? in->target_count : PG_LEARN_MAX_TARGETS;
    size_t hint_bytes = 0, hints = in->hint_count;
    for (size_t i = 0; i < in->hint_count; i++)
        hint_bytes += in->hint_lens[i] + 1;
    if (hint_bytes > PG_LEARN_MAX_HINT_BYTES)
        hints = hint_bytes = 0;
    size_t bytes = hint_bytes;
    for (size_t i = 0; i < targets; i++)
        bytes += in->targets[i].path_len + 1;
    e->strings = malloc(bytes ? bytes : 1);
    e->targets = calloc(targets ? targets : 1, sizeof(*e->targets));
    e->hints = calloc(hints ? hints : 1, sizeof(*e->hints));
    e->hint_lens = calloc(hints ? hints : 1, sizeof(*e->hint_lens));
    if (!e->strings || !e->targets || !e->hints || !e->hint_lens)
        return PG_ERR_NOMEM;
    char *p = e->strings;
    for (size_t i = 0; i < targets; i++) {
        memcpy(p, in->targets[i].path, in->targets[i].path_len);
        p[in->targets[i].path_len] = '\0';
        e->targets[i] = (struct pg_learned_target){p, in->targets[i].path_len, in->targets[i].as};
        p += in->targets[i].path_len + 1;
    }
    for (size_t i = 0; i < hints; i++) {
        memcpy(p, in->hints[i], in->hint_lens[i]);
        p[in->hint_lens[i]] = '\0';
        e->hints[i] = p;
        e->hint_lens[i] = in->hint_lens[i];
        p += in->hint_lens[i] + 1;
    }
    e->view = (struct pg_learned){e->targets,   targets, e->hints,
                                  e->hint_lens, hints,   in->hint_only && hints > 0};
    return PG_OK;
}

int pg_learn_store(struct pg_learn *t, const char *authority, size_t authority_len,
                   const char *path, size_t path_len, const struct pg_learned *learned,
                   uint64_t now_ms)
{
    char key[PG_LEARN_MAX_KEY];
    if (authority_len + 1 + path_len > sizeof(key))
        return PG_ERR_TOO_LONG;
    size_t key_len = make_key(key, authority, authority_len, path, path_len);
    uint64_t hash = hash_key(key, key_len);
    struct entry **slot = slot_of(t, key, key_len, hash);
    if (*slot)
        unlink_entry(t, slot);
    if (learned->target_count == 0 && learned->hint_count == 0)
        return PG_OK;
    if (t->count == t->capacity) {
        struct entry *oldest = TAILQ_LAST(&t->lru, entry_list);
        unlink_entry(t, slot_of(t, oldest->key, oldest->key_len, oldest->hash));
    }
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return PG_ERR_NOMEM;
    e->key = malloc(key_len);
    if (!e->key || fill_entry(e, learned) != PG_OK) {
        entry_free(e);
        return PG_ERR_NOMEM;
    }
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->hash = hash;
    e->expires_ms = now_ms + t->ttl_ms;
    slot = slot_of(t, key, key_len, hash); /* eviction may have changed the chain */
    e->next = *slot;
    *slot = e;
    TAILQ_INSERT_HEAD(&t->lru, e, lru);
    t->count++;
    return PG_OK;
}

size_t pg_learn_count(const struct pg_learn *t)
{
    return t->count;
}
