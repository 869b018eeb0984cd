/* Table tests for the learned-links table: hits, updates, expiry, LRU bound, caps, and the
 * entry that merges a response's 103 links (staged) with its final links. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/learn.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_LINKS 6
#define MAX_STAGES 3

static struct pg_learned one_target(const char *path)
{
    static struct pg_learned_target t;
    t = (struct pg_learned_target){path, strlen(path), PG_LINK_AS_STYLE};
    return (struct pg_learned){.targets = &t, .target_count = 1};
}

#define STORE(t, a, p, l, now) pg_learn_store(t, a, strlen(a), p, strlen(p), l, 0, now)
#define STORE_STAGED(t, a, p, l, stamp, now)                                                       \
    pg_learn_store(t, a, strlen(a), p, strlen(p), l, stamp, now)
#define LOOKUP(t, a, p, now) pg_learn_lookup(t, a, strlen(a), p, strlen(p), now)

/* A learned set built from link-value texts the way hints.c builds one: each text parsed for
 * its target, rels and as; a preload of a "/" target is also a target unless nopush. */
struct built {
    struct pg_learned_link links[MAX_LINKS];
    struct pg_learned_target targets[MAX_LINKS];
    struct pg_learned set;
};

static void build(struct built *b, const char *const *texts)
{
    memset(b, 0, sizeof(*b));
    size_t n = 0, nt = 0;
    for (; n < MAX_LINKS && texts[n]; n++) {
        struct pg_link l;
        size_t got = pg_link_parse(texts[n], strlen(texts[n]), &l, 1);
        CHECK(got == 1, "test link '%s' parses", texts[n]);
        bool pushable = (l.rels & (PG_LINK_REL_PRELOAD | PG_LINK_REL_MODULEPRELOAD)) && !l.nopush &&
                        l.target[0] == '/';
        b->links[n] = (struct pg_learned_link){l.text, l.text_len, l.target, l.target_len,
                                               l.rels, l.as,       !pushable};
        if (pushable)
            b->targets[nt++] = (struct pg_learned_target){l.target, l.target_len, l.as};
    }
    b->set = (struct pg_learned){b->targets, nt, b->links, n, false, 0};
}

static bool has_text(const struct pg_learned *got, size_t i, const char *text)
{
    return i < got->link_count && got->links[i].text_len == strlen(text) &&
           strcmp(got->links[i].text, text) == 0;
}

struct merge_case {
    const char *name;
    const char *stages[MAX_STAGES][MAX_LINKS + 1]; /* one pg_learn_stage call per non-empty row */
    const char *final[MAX_LINKS + 1];
    const char *want[MAX_LINKS + 1]; /* the entry's links in order; none: the page is unknown */
    size_t want_targets;
    bool want_hint_only;
};

static const struct merge_case merges[] = {
    {"the final response alone",
     {{NULL}},
     {"</a.css>; rel=preload; as=style", "</b.js>; rel=preload; as=script", NULL},
     {"</a.css>; rel=preload; as=style", "</b.js>; rel=preload; as=script", NULL},
     2,
     false},
    {"a 103 alone, the final head without links",
     {{"</s.css>; rel=preload; as=style", NULL}},
     {NULL},
     {"</s.css>; rel=preload; as=style", NULL},
     1,
     false},
    {"103 links first, then the final's",
     {{"</s.css>; rel=preload; as=style", NULL}},
     {"</f.js>; rel=preload; as=script", NULL},
     {"</s.css>; rel=preload; as=style", "</f.js>; rel=preload; as=script", NULL},
     2,
     false},
    {"a link in both is kept once, as the 103 wrote it",
     {{"</a.css>; rel=preload; as=style", "</s.css>; rel=preload; as=style", NULL}},
     {"</a.css>;rel=preload;as=style;crossorigin", "</f.js>; rel=preload; as=script", NULL},
     {"</a.css>; rel=preload; as=style", "</s.css>; rel=preload; as=style",
      "</f.js>; rel=preload; as=script", NULL},
     3,
     false},
    {"two 103s and a final",
     {{"</a>; rel=preload", NULL}, {"</b>; rel=preload", "</a>; rel=preload", NULL}},
     {"</c>; rel=preload", NULL},
     {"</a>; rel=preload", "</b>; rel=preload", "</c>; rel=preload", NULL},
     3,
     false},
    {"same target, another relation: two links",
     {{"</m.js>; rel=preload; as=script", NULL}},
     {"</m.js>; rel=modulepreload", NULL},
     {"</m.js>; rel=preload; as=script", "</m.js>; rel=modulepreload", NULL},
     1,
     false},
    {"same target, another as=: two links, one target",
     {{"</x>; rel=preload; as=fetch", NULL}},
     {"</x>; rel=preload; as=style", NULL},
     {"</x>; rel=preload; as=fetch", "</x>; rel=preload; as=style", NULL},
     1,
     false},
    {"a cross-origin preconnect from the 103 makes the entry hint-only",
     {{"<https://cdn.example>; rel=preconnect; crossorigin", NULL}},
     {"</a.css>; rel=preload; as=style", NULL},
     {"<https://cdn.example>; rel=preconnect; crossorigin", "</a.css>; rel=preload; as=style",
      NULL},
     1,
     true},
    {"a nopush link in the final head makes it hint-only",
     {{"</a.css>; rel=preload; as=style", NULL}},
     {"</n.js>; rel=preload; as=script; nopush", NULL},
     {"</a.css>; rel=preload; as=style", "</n.js>; rel=preload; as=script; nopush", NULL},
     1,
     true},
    {"neither 103 nor final links: the page is forgotten", {{NULL}}, {NULL}, {NULL}, 0, false},
};

static void test_merge(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(merges); i++) {
        const struct merge_case *c = &merges[i];
        struct pg_learn *t = pg_learn_new(8, 100000);
        struct pg_learned old = one_target("/old.css");
        STORE(t, "h", "/", &old, 0); /* a previous response's entry is replaced whole */
        uint64_t stamp = 0;
        for (size_t s = 0; s < MAX_STAGES && c->stages[s][0]; s++) {
            struct built b;
            build(&b, c->stages[s]);
            CHECK(pg_learn_stage(t, &stamp, &b.set, 1) == PG_OK && stamp != 0, "%s: stage %zu",
                  c->name, s);
        }
        struct built f;
        build(&f, c->final);
        CHECK(STORE_STAGED(t, "h", "/", &f.set, stamp, 2) == PG_OK, "%s: store", c->name);
        CHECK(pg_learn_staged_count(t) == 0, "%s: the staged set is claimed", c->name);
        const struct pg_learned *got = LOOKUP(t, "h", "/", 3);
        size_t want = 0;
        while (want < MAX_LINKS && c->want[want])
            want++;
        if (want == 0) {
            CHECK(got == NULL, "%s: unknown page", c->name);
            pg_learn_free(t);
            continue;
        }
        CHECK(got && got->link_count == want, "%s: %zu links want %zu", c->name,
              got ? got->link_count : 0, want);
        for (size_t k = 0; got && k < want; k++) {
            CHECK(has_text(got, k, c->want[k]), "%s: link %zu is '%s'", c->name, k, c->want[k]);
            const struct pg_learned_link *l = &got->links[k];
            CHECK(k >= got->link_count ||
                      (l->target >= l->text && l->target + l->target_len <= l->text + l->text_len),
                  "%s: link %zu target points into the stored copy", c->name, k);
        }
        CHECK(got && got->target_count == c->want_targets, "%s: %zu targets want %zu", c->name,
              got ? got->target_count : 0, c->want_targets);
        CHECK(got && got->hint_only == c->want_hint_only, "%s: hint_only", c->name);
        for (size_t k = 0; got && k < got->target_count; k++)
            CHECK(strcmp(got->targets[k].path, "/old.css") != 0, "%s: old target gone", c->name);
        pg_learn_free(t);
    }
}

/* Stamps keep concurrent responses apart; staged sets are bounded and age out. */
static void test_staging(void)
{
    struct pg_learn *t = pg_learn_new(8, 1000);
    struct built a, b, none;
    build(&a, (const char *const[]){"</a>; rel=preload", NULL});
    build(&b, (const char *const[]){"</b>; rel=preload", NULL});
    build(&none, (const char *const[]){NULL});
    uint64_t s1 = 0, s2 = 0, s0 = 0;
    pg_learn_stage(t, &s1, &a.set, 0);
    pg_learn_stage(t, &s2, &b.set, 0);
    CHECK(s1 && s2 && s1 != s2, "distinct stamps %llu %llu", (unsigned long long)s1,
          (unsigned long long)s2);
    CHECK(pg_learn_stage(t, &s0, &none.set, 0) == PG_OK && s0 == 0 && pg_learn_staged_count(t) == 2,
          "nothing to stage: no stamp, no set");
    STORE_STAGED(t, "h", "/2", &none.set, s2, 1);
    const struct pg_learned *got = LOOKUP(t, "h", "/2", 1);
    CHECK(got && got->link_count == 1 && has_text(got, 0, "</b>; rel=preload"),
          "a response claims its own stamp only");
    CHECK(pg_learn_staged_count(t) == 1, "the other stays staged");
    pg_learn_unstage(t, s1);
    pg_learn_unstage(t, 0);
    pg_learn_unstage(t, 12345);
    CHECK(pg_learn_staged_count(t) == 0, "unstaged");
    STORE_STAGED(t, "h", "/1", &none.set, s1, 2);
    CHECK(LOOKUP(t, "h", "/1", 2) == NULL, "an unstaged set is not claimed");

    /* A stamp whose response died (no final head) is retired by the cap... */
    uint64_t stamps[PG_LEARN_MAX_STAGED + 1] = {0};
    for (size_t i = 0; i < PG_ARRAY_LEN(stamps); i++)
        pg_learn_stage(t, &stamps[i], &a.set, 10);
    CHECK(pg_learn_staged_count(t) == PG_LEARN_MAX_STAGED, "bounded: %zu",
          pg_learn_staged_count(t));
    STORE_STAGED(t, "h", "/first", &b.set, stamps[0], 11);
    got = LOOKUP(t, "h", "/first", 11);
    CHECK(got && got->link_count == 1 && has_text(got, 0, "</b>; rel=preload"),
          "the least recently staged set made room");
    /* ... staging again refreshes a set ... */
    pg_learn_stage(t, &stamps[1], &b.set, 12);
    uint64_t extra = 0;
    pg_learn_stage(t, &extra, &a.set, 12);
    pg_learn_stage(t, &extra, &a.set, 12);
    STORE_STAGED(t, "h", "/second", &none.set, stamps[1], 13);
    got = LOOKUP(t, "h", "/second", 13);
    CHECK(got && got->link_count == 2 && has_text(got, 0, "</a>; rel=preload") &&
              has_text(got, 1, "</b>; rel=preload"),
          "a set staged twice holds both, once each");
    /* ... and so does age. */
    pg_learn_stage(t, &extra, &a.set, 5000);
    CHECK(pg_learn_staged_count(t) == 1, "expired sets dropped: %zu", pg_learn_staged_count(t));
    pg_learn_free(t);
}

/* Every store makes a new, non-zero version: what a request's 103 came from is recognisable. */
static void test_versions(void)
{
    struct pg_learn *t = pg_learn_new(8, 100000);
    struct pg_learned l = one_target("/a.css");
    STORE(t, "h", "/", &l, 0);
    uint64_t v1 = LOOKUP(t, "h", "/", 0)->version;
    CHECK(LOOKUP(t, "h", "/", 1)->version == v1, "a lookup keeps the version");
    STORE(t, "h", "/", &l, 2);
    uint64_t v2 = LOOKUP(t, "h", "/", 2)->version;
    CHECK(v1 != 0 && v2 != 0 && v1 != v2, "versions %llu %llu", (unsigned long long)v1,
          (unsigned long long)v2);
    STORE(t, "h", "/other", &l, 2);
    CHECK(LOOKUP(t, "h", "/other", 2)->version != v2, "per store, not per page");
    pg_learn_free(t);
}

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

static void test_mark(void)
{
    struct pg_learn *t = pg_learn_new(8, 1000);
    struct pg_learned l = one_target("/a.css"), empty = {0};
    uint64_t m = pg_learn_mark(t);
    CHECK(LOOKUP(t, "h", "/", 0) == NULL && pg_learn_mark(t) == m, "a miss keeps the mark");
    STORE(t, "h", "/", &empty, 0);
    CHECK(pg_learn_mark(t) == m, "storing nothing adds nothing");
    STORE(t, "h", "/", &l, 0);
    CHECK(pg_learn_mark(t) != m, "an added entry moves the mark");
    m = pg_learn_mark(t);
    pg_learn_forget(t, "h", 1, "/", 1);
    CHECK(LOOKUP(t, "h", "/", 0) == NULL, "forgotten");
    STORE(t, "h", "/", &l, 0);
    CHECK(pg_learn_mark(t) != m, "so does adding it again");
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

/* n links "<https://cdn/N>; rel=preconnect" padded with a parameter to len bytes each. */
static struct pg_learned_link *padded_links(size_t n, size_t len, char **storage)
{
    struct pg_learned_link *links = calloc(n, sizeof(*links));
    *storage = calloc(n, len + 1);
    for (size_t i = 0; i < n; i++) {
        char *p = *storage + i * (len + 1);
        int head = snprintf(p, len + 1, "<https://cdn/%zu>; rel=preconnect; x=", i);
        memset(p + head, 'y', len - (size_t)head);
        links[i] = (struct pg_learned_link){p,
                                            len,
                                            p + 1,
                                            (size_t)(strchr(p, '>') - p - 1),
                                            PG_LINK_REL_PRECONNECT,
                                            PG_LINK_AS_NONE,
                                            true};
    }
    return links;
}

struct cap_case {
    const char *name;
    size_t count, len;  /* links offered, bytes each */
    size_t small_after; /* then this many 40-byte links */
    size_t want_links;  /* kept */
};

static const struct cap_case link_caps[] = {
    {"links at the cap", PG_LEARN_MAX_LINKS, 40, 0, PG_LEARN_MAX_LINKS},
    {"links over the cap", PG_LEARN_MAX_LINKS + 5, 40, 0, PG_LEARN_MAX_LINKS},
    {"bytes at the cap", 4, PG_LEARN_MAX_HINT_BYTES / 4, 0, 4},
    {"bytes over the cap: the link that does not fit is skipped", 5, PG_LEARN_MAX_HINT_BYTES / 4, 0,
     4},
    {"smaller links after the skipped one still fit", 5, 4000, 2, 6},
    {"one link larger than the cap", 1, PG_LEARN_MAX_HINT_BYTES + 1, 1, 1},
};

static void test_link_caps(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(link_caps); i++) {
        const struct cap_case *c = &link_caps[i];
        struct pg_learn *t = pg_learn_new(4, 100000);
        char *big_store, *small_store;
        struct pg_learned_link *big = padded_links(c->count, c->len, &big_store);
        struct pg_learned_link *small = padded_links(c->small_after + 1, 40, &small_store);
        struct pg_learned_link *all = calloc(c->count + c->small_after, sizeof(*all));
        memcpy(all, big, c->count * sizeof(*all));
        for (size_t k = 0; k < c->small_after; k++) {
            all[c->count + k] = small[k];
            all[c->count + k].as = PG_LINK_AS_FETCH; /* distinct from the big ones */
        }
        struct pg_learned l = {NULL, 0, all, c->count + c->small_after, true, 0};
        CHECK(STORE(t, "h", "/", &l, 0) == PG_OK, "%s: store", c->name);
        const struct pg_learned *got = LOOKUP(t, "h", "/", 1);
        size_t bytes = 0;
        for (size_t k = 0; got && k < got->link_count; k++)
            bytes += got->links[k].text_len;
        CHECK(got && got->link_count == c->want_links && bytes <= PG_LEARN_MAX_HINT_BYTES,
              "%s: %zu links (%zu bytes) want %zu", c->name, got ? got->link_count : 0, bytes,
              c->want_links);
        pg_learn_free(t);
        free(all);
        free(big);
        free(big_store);
        free(small);
        free(small_store);
    }
}

static void test_target_caps_and_keys(void)
{
    struct pg_learn *t = pg_learn_new(4, 100000);
    struct pg_learned_target many[PG_LEARN_MAX_TARGETS + 10];
    char paths[PG_LEARN_MAX_TARGETS + 10][16];
    for (size_t i = 0; i < PG_ARRAY_LEN(many); i++) {
        snprintf(paths[i], sizeof paths[i], "/t%zu", i);
        many[i] = (struct pg_learned_target){paths[i], strlen(paths[i]), PG_LINK_AS_SCRIPT};
    }
    struct pg_learned l = {many, PG_ARRAY_LEN(many), NULL, 0, false, 0};
    CHECK(STORE(t, "h", "/", &l, 0) == PG_OK, "store");
    const struct pg_learned *got = LOOKUP(t, "h", "/", 1);
    CHECK(got && got->target_count == PG_LEARN_MAX_TARGETS && got->link_count == 0,
          "targets capped");
    /* A 103 and a final head naming the same path: one target, the first as kept. */
    struct pg_learned_target first = {"/d", 2, PG_LINK_AS_STYLE},
                             again = {"/d", 2, PG_LINK_AS_FETCH};
    struct pg_learned staged = {&first, 1, NULL, 0, false, 0},
                      final = {&again, 1, NULL, 0, false, 0};
    uint64_t stamp = 0;
    pg_learn_stage(t, &stamp, &staged, 2);
    STORE_STAGED(t, "h", "/d", &final, stamp, 2);
    got = LOOKUP(t, "h", "/d", 2);
    CHECK(got && got->target_count == 1 && got->targets[0].as == PG_LINK_AS_STYLE,
          "targets deduplicated by path");
    char *long_path = malloc(PG_LEARN_MAX_KEY + 1);
    memset(long_path, 'a', PG_LEARN_MAX_KEY);
    long_path[PG_LEARN_MAX_KEY] = '\0';
    stamp = 0;
    pg_learn_stage(t, &stamp, &staged, 3);
    CHECK(STORE_STAGED(t, "h", long_path, &l, stamp, 3) == PG_ERR_TOO_LONG, "long key refused");
    CHECK(LOOKUP(t, "h", long_path, 3) == NULL, "long key never found");
    CHECK(pg_learn_staged_count(t) == 0, "its staged set is dropped all the same");
    free(long_path);
    pg_learn_free(t);
    CHECK(pg_learn_new(0, 1) == NULL, "zero capacity refused");
}

static void test_same_link(void)
{
    static const struct {
        const char *a, *b;
        bool same;
    } cases[] = {
        {"</a>; rel=preload; as=style", "</a>;rel=preload;as=style", true},
        {"</a>; rel=preload; as=style", "</a>; rel=preload; as=style; crossorigin", true},
        {"</a>; rel=preload; as=style", "</a>; rel=preload; as=font", false},
        {"</a>; rel=preload", "</a>; rel=modulepreload", false},
        {"</a>; rel=preload", "</A>; rel=preload", false},
        {"</a>; rel=preload", "<a>; rel=preload", false},
        {"<https://cdn>; rel=preconnect", "<https://cdn>; rel=preconnect; crossorigin", true},
    };
    for (size_t i = 0; i < PG_ARRAY_LEN(cases); i++) {
        struct built a, b;
        build(&a, (const char *const[]){cases[i].a, NULL});
        build(&b, (const char *const[]){cases[i].b, NULL});
        CHECK(pg_learn_same_link(&a.links[0], &b.links[0]) == cases[i].same, "'%s' vs '%s'",
              cases[i].a, cases[i].b);
    }
}

int main(void)
{
    test_merge();
    test_staging();
    test_versions();
    test_hit_update_forget();
    test_mark();
    test_expiry();
    test_lru_bound();
    test_link_caps();
    test_target_caps_and_keys();
    test_same_link();
    return check_report("learn");
}
