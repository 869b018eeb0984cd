/* Table tests for collecting the preload links of a response head: resolution, deduplication,
 * same-origin and nopush rules, caps, and the Link field values kept for a 103. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/hints.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_FIELDS 4
#define MAX_TARGETS 4

struct field {
    const char *name; /* NULL: end */
    const char *value;
};

struct want_target {
    const char *path; /* NULL: end */
    enum pg_link_as as;
};

struct collect_case {
    const char *name;
    struct field fields[MAX_FIELDS];
    struct want_target targets[MAX_TARGETS];
    unsigned hint_fields; /* bit i: fields[i] is a hint (hints keep the fields' order) */
    bool hint_only;
};

static const struct pg_header scheme = {NULL, 0, "https", 5};
static const struct pg_header authority = {NULL, 0, "example.com", 11};
static const struct pg_header base = {NULL, 0, "/dir/page?q", 11};

static const struct collect_case collects[] = {
    {"no fields", {{NULL, NULL}}, {{NULL, PG_LINK_AS_NONE}}, 0, false},
    {"no link field",
     {{"content-type", "text/html"}, {"cache-control", "no-store"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"one preload",
     {{"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     0x1,
     false},
    {"link after other fields",
     {{"content-type", "text/html"}, {"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     0x2,
     false},
    {"relative to the base directory",
     {{"link", "<b.js>; rel=preload; as=script"}},
     {{"/dir/b.js", PG_LINK_AS_SCRIPT}},
     0x1,
     false},
    {"dot-segments removed",
     {{"link", "<../x>; rel=preload, <./y>; rel=preload; as=image"}},
     {{"/x", PG_LINK_AS_NONE}, {"/dir/y", PG_LINK_AS_IMAGE}},
     0x1,
     false},
    {"dot-segments inside an absolute path",
     {{"link", "</a/./b/../c>; rel=preload; as=font"}},
     {{"/a/c", PG_LINK_AS_FONT}},
     0x1,
     false},
    {"dot-segments above the root",
     {{"link", "<../../../z>; rel=preload"}},
     {{"/z", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"query kept, fragment dropped",
     {{"link", "</q.js?v=1>; rel=preload, </f.js#top>; rel=preload"}},
     {{"/q.js?v=1", PG_LINK_AS_NONE}, {"/f.js", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"query-only reference keeps the base path",
     {{"link", "<?z>; rel=preload"}},
     {{"/dir/page?z", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"the page itself is a target (the caller decides)",
     {{"link", "</dir/page?q>; rel=preload"}},
     {{"/dir/page?q", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"unknown as is OTHER",
     {{"link", "</w.bin>; rel=preload; as=banana"}},
     {{"/w.bin", PG_LINK_AS_OTHER}},
     0x1,
     false},
    {"duplicate in one field",
     {{"link", "</a.css>; rel=preload; as=style, </a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     0x1,
     false},
    {"duplicate in two fields",
     {{"link", "</a.css>; rel=preload; as=style"}, {"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     0x3,
     false},
    {"duplicate after resolution: the first as wins",
     {{"link", "<a.css>; rel=preload; as=style"}, {"link", "</dir/a.css>; rel=preload; as=fetch"}},
     {{"/dir/a.css", PG_LINK_AS_STYLE}},
     0x3,
     false},
    {"rel=stylesheet is not a preload",
     {{"link", "</s.css>; rel=stylesheet"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"no rel at all", {{"link", "</s.css>; as=style"}}, {{NULL, PG_LINK_AS_NONE}}, 0, false},
    {"only the preload field is a hint",
     {{"link", "</s.css>; rel=stylesheet"}, {"link", "</p.css>; rel=preload; as=style"}},
     {{"/p.css", PG_LINK_AS_STYLE}},
     0x2,
     false},
    {"preload among other rels",
     {{"link", "</p.css>; rel=\"stylesheet preload\"; as=style"}},
     {{"/p.css", PG_LINK_AS_STYLE}},
     0x1,
     false},
    {"a field mixing rels is kept whole",
     {{"link", "</s.css>; rel=stylesheet, </p.js>; rel=preload"}},
     {{"/p.js", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"nopush",
     {{"link", "</n.js>; rel=preload; as=script; nopush"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"nopush beside a pushable link",
     {{"link", "</n.js>; rel=preload; nopush, </p.js>; rel=preload; as=script"}},
     {{"/p.js", PG_LINK_AS_SCRIPT}},
     0x1,
     true},
    {"nopush without preload is nothing",
     {{"link", "</n.js>; rel=next; nopush"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"cross-origin",
     {{"link", "<https://other.example/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"other scheme is cross-origin",
     {{"link", "<http://example.com/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"other port is cross-origin",
     {{"link", "<https://example.com:8443/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"userinfo is cross-origin",
     {{"link", "<https://u@example.com/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"same origin spelled absolutely",
     {{"link", "<https://EXAMPLE.com:443/abs.js>; rel=preload"}},
     {{"/abs.js", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"cross-origin beside same-origin",
     {{"link", "<https://cdn.example/f.woff2>; rel=preload; as=font"},
      {"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     0x3,
     true},
    {"network-path //x names another host",
     {{"link", "<//x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"a path resolving to //x is never a target",
     {{"link", "</.//x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     false},
    {"an absolute same-origin //y path is never a target",
     {{"link", "<https://example.com//y>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     false},
    {"a //z beside a good target",
     {{"link", "</.//z>; rel=preload, </ok.js>; rel=preload"}},
     {{"/ok.js", PG_LINK_AS_NONE}},
     0x1,
     false},
    {"empty target refers to the page",
     {{"link", "<>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     false},
    {"fragment-only target refers to the page",
     {{"link", "<#f>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     false},
    {"http(s) target without authority is invalid",
     {{"link", "<https:x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     false},
    {"data: is another origin",
     {{"link", "<data:,x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0x1,
     true},
    {"a target with a space is skipped by the parser",
     {{"link", "</a b>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"an anchored link is skipped by the parser",
     {{"link", "</a.css>; rel=preload; anchor=\"/other\""}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"other field names are ignored",
     {{"x-link", "</a.css>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"names are lower-case views: Link is not link",
     {{"Link", "</a.css>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
    {"a name with link as a prefix",
     {{"links", "</a.css>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     0,
     false},
};

static size_t make_fields(const struct field *in, struct pg_header *out)
{
    size_t n = 0;
    for (; n < MAX_FIELDS && in[n].name; n++)
        out[n] =
            (struct pg_header){in[n].name, strlen(in[n].name), in[n].value, strlen(in[n].value)};
    return n;
}

static void check_targets_wellformed(const char *name, const struct pg_link_set *set)
{
    for (size_t t = 0; t < set->target_count; t++)
        CHECK(set->targets[t].path && strlen(set->targets[t].path) == set->targets[t].path_len,
              "%s: target %zu is a NUL-terminated path of its length", name, t);
}

static void test_collect(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(collects); i++) {
        const struct collect_case *c = &collects[i];
        struct pg_header fields[MAX_FIELDS];
        size_t count = make_fields(c->fields, fields);
        struct pg_link_set set;
        pg_hints_collect(scheme, authority, base, fields, count, &set);
        size_t want_targets = 0;
        while (want_targets < MAX_TARGETS && c->targets[want_targets].path)
            want_targets++;
        CHECK(set.target_count == want_targets, "%s: %zu targets want %zu", c->name,
              set.target_count, want_targets);
        check_targets_wellformed(c->name, &set);
        for (size_t t = 0; t < set.target_count && t < want_targets; t++) {
            CHECK(strcmp(set.targets[t].path, c->targets[t].path) == 0,
                  "%s: target %zu is \"%s\" want \"%s\"", c->name, t, set.targets[t].path,
                  c->targets[t].path);
            CHECK(set.targets[t].as == c->targets[t].as, "%s: target %zu as %d want %d", c->name, t,
                  set.targets[t].as, c->targets[t].as);
        }
        size_t h = 0;
        for (size_t f = 0; f < count; f++) {
            if (!(c->hint_fields & (1u << f)))
                continue;
            CHECK(h < set.hint_count && set.hints[h] == fields[f].value &&
                      set.hint_lens[h] == fields[f].value_len,
                  "%s: hint %zu is field %zu's value, not a copy", c->name, h, f);
            h++;
        }
        CHECK(set.hint_count == h, "%s: %zu hints want %zu", c->name, set.hint_count, h);
        CHECK(set.hint_only == c->hint_only, "%s: hint_only %d want %d", c->name, set.hint_only,
              c->hint_only);
        pg_link_set_free(&set);
    }
}

/* n link fields; field i holds per_field preload links </p{i}-{k}>. */
static struct pg_header *many_fields(size_t n, size_t per_field, char **storage)
{
    size_t cap = per_field * 32 + 1;
    struct pg_header *fields = calloc(n, sizeof(*fields));
    *storage = calloc(n, cap);
    for (size_t i = 0; i < n; i++) {
        char *v = *storage + i * cap;
        size_t len = 0;
        for (size_t k = 0; k < per_field; k++)
            len += (size_t)snprintf(v + len, cap - len, "%s</p%zu-%zu>; rel=preload", k ? ", " : "",
                                    i, k);
        fields[i] = (struct pg_header){"link", 4, v, len};
    }
    return fields;
}

struct cap_case {
    const char *name;
    size_t fields, per_field;
    size_t expect_targets, expect_hints;
};

static const struct cap_case caps[] = {
    {"targets at the cap", 1, PG_LEARN_MAX_TARGETS, PG_LEARN_MAX_TARGETS, 1},
    {"targets over the cap in two fields", 2, PG_LEARN_MAX_TARGETS / 2 + 8, PG_LEARN_MAX_TARGETS,
     2},
    {"links per field are bounded", 1, PG_HINTS_MAX_LINKS + 10,
     PG_HINTS_MAX_LINKS < PG_LEARN_MAX_TARGETS ? PG_HINTS_MAX_LINKS : PG_LEARN_MAX_TARGETS, 1},
    {"fields at the cap", PG_HINTS_MAX_FIELDS, 1, PG_HINTS_MAX_FIELDS, PG_HINTS_MAX_FIELDS},
    {"fields over the cap", PG_HINTS_MAX_FIELDS + 8, 1, PG_HINTS_MAX_FIELDS + 8,
     PG_HINTS_MAX_FIELDS},
    {"both caps", PG_HINTS_MAX_FIELDS + 8, 4, PG_LEARN_MAX_TARGETS, PG_HINTS_MAX_FIELDS},
};

static void test_caps(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(caps); i++) {
        const struct cap_case *c = &caps[i];
        char *storage;
        struct pg_header *fields = many_fields(c->fields, c->per_field, &storage);
        struct pg_link_set set;
        pg_hints_collect(scheme, authority, base, fields, c->fields, &set);
        CHECK(set.target_count == c->expect_targets, "%s: %zu targets want %zu", c->name,
              set.target_count, c->expect_targets);
        CHECK(set.hint_count == c->expect_hints, "%s: %zu hints want %zu", c->name, set.hint_count,
              c->expect_hints);
        CHECK(!set.hint_only, "%s: dropping targets over the cap is not hint_only", c->name);
        check_targets_wellformed(c->name, &set);
        /* The first targets in order are kept, the first fields are the hints. */
        CHECK(set.target_count == 0 || strcmp(set.targets[0].path, "/p0-0") == 0,
              "%s: first target", c->name);
        for (size_t h = 0; h < set.hint_count; h++)
            CHECK(set.hints[h] == fields[h].value && set.hint_lens[h] == fields[h].value_len,
                  "%s: hint %zu is field %zu", c->name, h, h);
        pg_link_set_free(&set);
        free(fields);
        free(storage);
    }
}

/* One link field after per_field links that are not preloads: the preload is past the bound. */
static void test_preload_past_link_bound(void)
{
    size_t n = PG_HINTS_MAX_LINKS;
    char *v = malloc(n * 32 + 64);
    size_t len = 0;
    for (size_t k = 0; k < n; k++)
        len += (size_t)sprintf(v + len, "</s%zu>; rel=next, ", k);
    len += (size_t)sprintf(v + len, "</late.js>; rel=preload");
    struct pg_header field = {"link", 4, v, len};
    struct pg_link_set set;
    pg_hints_collect(scheme, authority, base, &field, 1, &set);
    CHECK(set.target_count == 0 && set.hint_count == 0,
          "a preload after PG_HINTS_MAX_LINKS links is not examined: %zu targets %zu hints",
          set.target_count, set.hint_count);
    pg_link_set_free(&set);
    free(v);
}

struct bound_case {
    const char *name;
    const char *scheme, *authority, *base;
    const char *value;
    size_t expect_targets, expect_hints;
};

static const struct bound_case bounds[] = {
    {"http origin", "http", "example.com", "/", "</a>; rel=preload", 1, 1},
    {"base without a query", "https", "example.com", "/dir/", "<b>; rel=preload", 1, 1},
    {"invalid base path: no targets, still a hint", "https", "example.com", "dir",
     "</a>; rel=preload", 0, 1},
    {"an over-long scheme: nothing collected", "httpsxxxx", "example.com", "/", "</a>; rel=preload",
     0, 0},
};

static void test_bounds(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(bounds); i++) {
        const struct bound_case *c = &bounds[i];
        struct pg_header field = {"link", 4, c->value, strlen(c->value)};
        struct pg_link_set set;
        pg_hints_collect((struct pg_header){NULL, 0, c->scheme, strlen(c->scheme)},
                         (struct pg_header){NULL, 0, c->authority, strlen(c->authority)},
                         (struct pg_header){NULL, 0, c->base, strlen(c->base)}, &field, 1, &set);
        CHECK(set.target_count == c->expect_targets && set.hint_count == c->expect_hints,
              "%s: %zu targets %zu hints, want %zu %zu", c->name, set.target_count, set.hint_count,
              c->expect_targets, c->expect_hints);
        pg_link_set_free(&set);
    }

    /* An authority of 256 bytes or more is not resolved against: the head is ignored whole. */
    char long_authority[300];
    memset(long_authority, 'a', sizeof(long_authority));
    struct pg_header field = {"link", 4, "</a>; rel=preload", 17};
    struct pg_link_set set;
    pg_hints_collect(scheme, (struct pg_header){NULL, 0, long_authority, 255}, base, &field, 1,
                     &set);
    CHECK(set.target_count == 1 && set.hint_count == 1, "255-byte authority: %zu %zu",
          set.target_count, set.hint_count);
    pg_link_set_free(&set);
    pg_hints_collect(scheme, (struct pg_header){NULL, 0, long_authority, 256}, base, &field, 1,
                     &set);
    CHECK(set.target_count == 0 && set.hint_count == 0 && !set.hint_only,
          "256-byte authority: %zu %zu", set.target_count, set.hint_count);
    pg_link_set_free(&set);

    /* A resolved path that does not fit PG_HINTS_MAX_PUSH_PATH is not pushed. */
    size_t sizes[] = {PG_HINTS_MAX_PUSH_PATH - 1, PG_HINTS_MAX_PUSH_PATH};
    for (size_t i = 0; i < PG_ARRAY_LEN(sizes); i++) {
        char *v = malloc(sizes[i] + 32);
        v[0] = '<';
        memset(v + 1, 'x', sizes[i]);
        v[1] = '/';
        int len = sprintf(v + 1 + sizes[i], ">; rel=preload") + 1 + (int)sizes[i];
        struct pg_header big = {"link", 4, v, (size_t)len};
        pg_hints_collect(scheme, authority, base, &big, 1, &set);
        size_t want = sizes[i] < PG_HINTS_MAX_PUSH_PATH ? 1 : 0;
        CHECK(set.target_count == want && set.hint_count == 1 && !set.hint_only,
              "path of %zu bytes: %zu targets want %zu", sizes[i], set.target_count, want);
        pg_link_set_free(&set);
        free(v);
    }
}

int main(void)
{
    test_collect();
    test_caps();
    test_preload_past_link_bound();
    test_bounds();
    return check_report("test_hints");
}
