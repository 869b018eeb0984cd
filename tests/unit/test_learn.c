/* Table tests for the learned-links table: hits, updates, expiry, LRU bound, caps. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/learn.h"

#include <stdio.h>
#include <stdlib.h>

static struct pg_learned one_target(const char *path)
{
    static struct pg_learned_target t;
    t = (struct pg_learned_target){path, strlen(path), PG_LINK_AS_STYLE};
    return (struct pg_learned){.targets = &t, .target_count = 1};
}

#define STORE(t, a, p, l, now) pg_learn_store(t, a, strlen(a), p, strlen(p), l, now)
#define LOOKUP(t, a, p, now) pg_learn_lookup(t, a, strlen(a), p, strlen(p), now)

static void test_hit_update_forget(void)
{
    struct pg_learn *t = pg_learn_new(8, 1000);
    struct pg_learned l = one_target("/a.css");
    CHECK(LOOKUP(t, "example.com", "/", 0) == NULL, "empty table");
    CHECK(STORE(t, "example.com", "/", &l, 0) == PG_OK, "store");
    const struct pg_learned *got = LOOKUP(t, "EXAMPLE.com", "/", 10);
    CHECK(got && got->target_count == 1 && strcmp(got->targets[0].path, "/a.css") == 0 &&
              got->targets[0].as == PG_LINK_AS_STYLE,
          "hit, host case-insensitive");
    CHECK(LOOKUP(t, "example.com", "/?q", 10) == NULL, "query is part of the key");
    CHECK(LOOKUP(t, "other.com", "/", 10) == NULL, "authority is part of the key");
    struct pg_learned l2 = one_target("/b.css");
    STORE(t, "example.com", "/", &l2, 20);
    got = LOOKUP(t, "example.com", "/", 30);
    CHECK(got && got->target_count == 1 && strcmp(got->targets[0].path, "/b.css") == 0,
          "the newest response is the truth");
    CHECK(pg_learn_count(t) == 1, "replaced, not added");
    struct pg_learned empty = {0};
    STORE(t, "example.com", "/", &empty, 40);
    CHECK(LOOKUP(t, "example.com", "/", 50) == NULL, "no links: forgotten");
    STORE(t, "example.com", "/x", &l, 60);
    pg_learn_forget(t, "example.com", 11, "/x", 2);
    CHECK(pg_learn_count(t) == 0, "forget");
    pg_learn_free(t);
}

static void test_expiry(void)
{
    struct pg_learn *t = pg_learn_new(8, 1000);
    struct pg_learned l = one_target("/a.css");
    STORE(t, "h", "/", &l, 5000);
    CHECK(LOOKUP(t, "h", "/", 5999) != NULL, "before the ttl");
    CHECK(LOOKUP(t, "h", "/", 6000) == NULL, "at the ttl");
    CHECK(pg_learn_count(t) == 0, "an expired entry is dropped");
    pg_learn_free(t);
}

static void test_lru_bound(void)
{
    struct pg_learn *t = pg_learn_new(3, 100000);
    struct pg_learned l = one_target("/a.css");
    STORE(t, "h", "/1", &l, 0);
    STORE(t, "h", "/2", &l, 0);
    STORE(t, "h", "/3", &l, 0);
    CHECK(LOOKUP(t, "h", "/1", 1) != NULL, "touch /1");
    STORE(t, "h", "/4", &l, 2);
    CHECK(pg_learn_count(t) == 3, "bounded: %zu", pg_learn_count(t));
    CHECK(LOOKUP(t, "h", "/2", 3) == NULL, "least recently used evicted");
    CHECK(LOOKUP(t, "h", "/1", 3) != NULL && LOOKUP(t, "h", "/3", 3) != NULL &&
              LOOKUP(t, "h", "/4", 3) != NULL,
          "the others stay");
    for (int i = 0; i < 10000; i++) {
        char path[32];
        snprintf(path, sizeof path, "/p%d", i);
        STORE(t, "h", path, &l, 4);
    }
    CHECK(pg_learn_count(t) == 3, "still bounded after churn");
    pg_learn_free(t);
}

static void test_caps_and_hints(void)
{
    struct pg_learn *t = pg_learn_new(4, 100000);
    struct pg_learned_target many[PG_LEARN_MAX_TARGETS + 10];
    char paths[PG_LEARN_MAX_TARGETS + 10][16];
    for (size_t i = 0; i < PG_ARRAY_LEN(many); i++) {
        snprintf(paths[i], sizeof paths[i], "/t%zu", i);
        many[i] = (struct pg_learned_target){paths[i], strlen(paths[i]), PG_LINK_AS_SCRIPT};
    }
    const char *hints[] = {"</t0>; rel=preload", "<https://cdn/x.woff2>; rel=preload; as=font"};
    size_t hint_lens[] = {strlen(hints[0]), strlen(hints[1])};
    struct pg_learned l = {many, PG_ARRAY_LEN(many), hints, hint_lens, 2, true};
    CHECK(STORE(t, "h", "/", &l, 0) == PG_OK, "store");
    const struct pg_learned *got = LOOKUP(t, "h", "/", 1);
    CHECK(got && got->target_count == PG_LEARN_MAX_TARGETS, "targets capped");
    CHECK(got && got->hint_count == 2 && got->hint_only && strcmp(got->hints[1], hints[1]) == 0 &&
              got->hint_lens[1] == hint_lens[1],
          "hints kept");
    char *big = malloc(PG_LEARN_MAX_HINT_BYTES + 1);
    memset(big, 'x', PG_LEARN_MAX_HINT_BYTES);
    big[PG_LEARN_MAX_HINT_BYTES] = '\0';
    const char *big_hints[] = {big};
    size_t big_len[] = {PG_LEARN_MAX_HINT_BYTES};
    struct pg_learned l2 = {many, 1, big_hints, big_len, 1, true};
    STORE(t, "h", "/big", &l2, 0);
    got = LOOKUP(t, "h", "/big", 1);
    CHECK(got && got->target_count == 1 && got->hint_count == 0 && !got->hint_only,
          "oversized hints dropped, targets kept");
    char *long_path = malloc(PG_LEARN_MAX_KEY + 1);
    memset(long_path, 'a', PG_LEARN_MAX_KEY);
    long_path[PG_LEARN_MAX_KEY] = '\0';
    CHECK(STORE(t, "h", long_path, &l, 0) == PG_ERR_TOO_LONG, "long key refused");
    CHECK(LOOKUP(t, "h", long_path, 0) == NULL, "long key never found");
    free(long_path);
    free(big);
    pg_learn_free(t);
    CHECK(pg_learn_new(0, 1) == NULL, "zero capacity refused");
}

int main(void)
{
    test_hit_update_forget();
    test_expiry();
    test_lru_bound();
    test_caps_and_hints();
    return check_report("learn");
}
