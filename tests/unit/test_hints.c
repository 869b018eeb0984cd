/* Table tests for collecting the hintable links of a response head: resolution, deduplication,
 * same-origin and nopush rules, relation filtering, caps, the link-values kept for a 103; and
 * the navigation rule that decides whether a request may get a 103 of ours. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/hints.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_FIELDS 4
#define MAX_TARGETS 4
#define MAX_HINTS 6

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
    const char *hints[MAX_HINTS]; /* the link-values kept for a 103, in order; NULL ends */
    bool hint_only;
};

static const struct pg_header scheme = {NULL, 0, "https", 5};
static const struct pg_header authority = {NULL, 0, "example.com", 11};
static const struct pg_header base = {NULL, 0, "/dir/page?q", 11};

static const struct collect_case collects[] = {
    {"no fields", {{NULL, NULL}}, {{NULL, PG_LINK_AS_NONE}}, {NULL}, false},
    {"no link field",
     {{"content-type", "text/html"}, {"cache-control", "no-store"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"one preload",
     {{"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     {"</a.css>; rel=preload; as=style"},
     false},
    {"link after other fields",
     {{"content-type", "text/html"}, {"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     {"</a.css>; rel=preload; as=style"},
     false},
    {"relative to the base directory",
     {{"link", "<b.js>; rel=preload; as=script"}},
     {{"/dir/b.js", PG_LINK_AS_SCRIPT}},
     {"<b.js>; rel=preload; as=script"},
     false},
    {"dot-segments removed",
     {{"link", "<../x>; rel=preload, <./y>; rel=preload; as=image"}},
     {{"/x", PG_LINK_AS_NONE}, {"/dir/y", PG_LINK_AS_IMAGE}},
     {"<../x>; rel=preload", "<./y>; rel=preload; as=image"},
     false},
    {"dot-segments inside an absolute path",
     {{"link", "</a/./b/../c>; rel=preload; as=font"}},
     {{"/a/c", PG_LINK_AS_FONT}},
     {"</a/./b/../c>; rel=preload; as=font"},
     false},
    {"dot-segments above the root",
     {{"link", "<../../../z>; rel=preload"}},
     {{"/z", PG_LINK_AS_NONE}},
     {"<../../../z>; rel=preload"},
     false},
    {"query kept, fragment dropped",
     {{"link", "</q.js?v=1>; rel=preload, </f.js#top>; rel=preload"}},
     {{"/q.js?v=1", PG_LINK_AS_NONE}, {"/f.js", PG_LINK_AS_NONE}},
     {"</q.js?v=1>; rel=preload", "</f.js#top>; rel=preload"},
     false},
    {"query-only reference keeps the base path",
     {{"link", "<?z>; rel=preload"}},
     {{"/dir/page?z", PG_LINK_AS_NONE}},
     {"<?z>; rel=preload"},
     false},
    {"the page itself is a target (the caller decides)",
     {{"link", "</dir/page?q>; rel=preload"}},
     {{"/dir/page?q", PG_LINK_AS_NONE}},
     {"</dir/page?q>; rel=preload"},
     false},
    {"unknown as is OTHER",
     {{"link", "</w.bin>; rel=preload; as=banana"}},
     {{"/w.bin", PG_LINK_AS_OTHER}},
     {"</w.bin>; rel=preload; as=banana"},
     false},
    {"duplicate in one field",
     {{"link", "</a.css>; rel=preload; as=style, </a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     {"</a.css>; rel=preload; as=style"},
     false},
    {"duplicate in two fields: hinted once",
     {{"link", "</a.css>; rel=preload; as=style"}, {"link", "</a.css>;rel=preload;as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     {"</a.css>; rel=preload; as=style"},
     false},
    {"duplicate after resolution: the first as wins, both texts hinted",
     {{"link", "<a.css>; rel=preload; as=style"}, {"link", "</dir/a.css>; rel=preload; as=fetch"}},
     {{"/dir/a.css", PG_LINK_AS_STYLE}},
     {"<a.css>; rel=preload; as=style", "</dir/a.css>; rel=preload; as=fetch"},
     false},
    {"rel=stylesheet is not a hint",
     {{"link", "</s.css>; rel=stylesheet"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"no rel at all", {{"link", "</s.css>; as=style"}}, {{NULL, PG_LINK_AS_NONE}}, {NULL}, false},
    {"only the preload field is a hint",
     {{"link", "</s.css>; rel=stylesheet"}, {"link", "</p.css>; rel=preload; as=style"}},
     {{"/p.css", PG_LINK_AS_STYLE}},
     {"</p.css>; rel=preload; as=style"},
     false},
    {"preload among other rels",
     {{"link", "</p.css>; rel=\"stylesheet preload\"; as=style"}},
     {{"/p.css", PG_LINK_AS_STYLE}},
     {"</p.css>; rel=\"stylesheet preload\"; as=style"},
     false},
    {"a field mixing rels: only its hintable link-values",
     {{"link", "</s.css>; rel=stylesheet, </p.js>; rel=preload"}},
     {{"/p.js", PG_LINK_AS_NONE}},
     {"</p.js>; rel=preload"},
     false},
    {"nopush",
     {{"link", "</n.js>; rel=preload; as=script; nopush"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"</n.js>; rel=preload; as=script; nopush"},
     true},
    {"nopush beside a pushable link",
     {{"link", "</n.js>; rel=preload; nopush, </p.js>; rel=preload; as=script"}},
     {{"/p.js", PG_LINK_AS_SCRIPT}},
     {"</n.js>; rel=preload; nopush", "</p.js>; rel=preload; as=script"},
     true},
    {"nopush without preload is nothing",
     {{"link", "</n.js>; rel=next; nopush"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"cross-origin",
     {{"link", "<https://other.example/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://other.example/x.js>; rel=preload"},
     true},
    {"other scheme is cross-origin",
     {{"link", "<http://example.com/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<http://example.com/x.js>; rel=preload"},
     true},
    {"other port is cross-origin",
     {{"link", "<https://example.com:8443/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://example.com:8443/x.js>; rel=preload"},
     true},
    {"userinfo is cross-origin",
     {{"link", "<https://u@example.com/x.js>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://u@example.com/x.js>; rel=preload"},
     true},
    {"same origin spelled absolutely",
     {{"link", "<https://EXAMPLE.com:443/abs.js>; rel=preload"}},
     {{"/abs.js", PG_LINK_AS_NONE}},
     {"<https://EXAMPLE.com:443/abs.js>; rel=preload"},
     false},
    {"cross-origin beside same-origin",
     {{"link", "<https://cdn.example/f.woff2>; rel=preload; as=font"},
      {"link", "</a.css>; rel=preload; as=style"}},
     {{"/a.css", PG_LINK_AS_STYLE}},
     {"<https://cdn.example/f.woff2>; rel=preload; as=font", "</a.css>; rel=preload; as=style"},
     true},
    {"network-path //x names another host",
     {{"link", "<//x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<//x>; rel=preload"},
     true},
    {"a path resolving to //x is never a target",
     {{"link", "</.//x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"</.//x>; rel=preload"},
     false},
    {"an absolute same-origin //y path is never a target",
     {{"link", "<https://example.com//y>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://example.com//y>; rel=preload"},
     false},
    {"a //z beside a good target",
     {{"link", "</.//z>; rel=preload, </ok.js>; rel=preload"}},
     {{"/ok.js", PG_LINK_AS_NONE}},
     {"</.//z>; rel=preload", "</ok.js>; rel=preload"},
     false},
    {"empty target refers to the page",
     {{"link", "<>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<>; rel=preload"},
     false},
    {"fragment-only target refers to the page",
     {{"link", "<#f>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<#f>; rel=preload"},
     false},
    {"http(s) target without authority is invalid",
     {{"link", "<https:x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https:x>; rel=preload"},
     false},
    {"data: is another origin",
     {{"link", "<data:,x>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<data:,x>; rel=preload"},
     true},
    {"a target with a space is skipped by the parser",
     {{"link", "</a b>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"an anchored link is skipped by the parser",
     {{"link", "</a.css>; rel=preload; anchor=\"/other\""}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"other field names are ignored",
     {{"x-link", "</a.css>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"names are lower-case views: Link is not link",
     {{"Link", "</a.css>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"a name with link as a prefix",
     {{"links", "</a.css>; rel=preload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},

    /* Relations: preload, modulepreload and preconnect are hinted; only the first two pushed. */
    {"modulepreload is pushed as a script",
     {{"link", "</m.js>; rel=modulepreload"}},
     {{"/m.js", PG_LINK_AS_SCRIPT}},
     {"</m.js>; rel=modulepreload"},
     false},
    {"modulepreload keeps its own as=",
     {{"link", "</w.js>; rel=modulepreload; as=worker"}},
     {{"/w.js", PG_LINK_AS_WORKER}},
     {"</w.js>; rel=modulepreload; as=worker"},
     false},
    {"cross-origin modulepreload is hinted only",
     {{"link", "<https://cdn.example/m.js>; rel=modulepreload"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://cdn.example/m.js>; rel=modulepreload"},
     true},
    {"modulepreload with nopush",
     {{"link", "</m.js>; rel=modulepreload; nopush"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"</m.js>; rel=modulepreload; nopush"},
     true},
    {"cross-origin preconnect: hinted, never pushed",
     {{"link", "<https://cdn.example>; rel=preconnect; crossorigin"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://cdn.example>; rel=preconnect; crossorigin"},
     true},
    {"same-origin preconnect is not a push target either",
     {{"link", "</>; rel=preconnect"}},
     {{NULL, PG_LINK_AS_NONE}},
     {"</>; rel=preconnect"},
     true},
    {"dns-prefetch is not hinted",
     {{"link", "<https://cdn.example>; rel=dns-prefetch"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"prefetch is not hinted or pushed",
     {{"link", "</next.html>; rel=prefetch; as=document"}},
     {{NULL, PG_LINK_AS_NONE}},
     {NULL},
     false},
    {"dns-prefetch with preconnect in one rel list: hinted as written",
     {{"link", "<https://cdn.example>; rel=\"dns-prefetch preconnect\""}},
     {{NULL, PG_LINK_AS_NONE}},
     {"<https://cdn.example>; rel=\"dns-prefetch preconnect\""},
     true},
    {"preload with prefetch in one rel list",
     {{"link", "</p.js>; rel=\"prefetch preload\"; as=script"}},
     {{"/p.js", PG_LINK_AS_SCRIPT}},
     {"</p.js>; rel=\"prefetch preload\"; as=script"},
     false},
    {"one field of every relation: only the hintable ones",
     {{"link", "</a.css>; rel=preload; as=style, <https://d.example>; rel=dns-prefetch, "
               "</n.html>; rel=prefetch, <https://cdn.example>; rel=preconnect, "
               "</m.js>; rel=modulepreload, </s.css>; rel=stylesheet"}},
     {{"/a.css", PG_LINK_AS_STYLE}, {"/m.js", PG_LINK_AS_SCRIPT}},
     {"</a.css>; rel=preload; as=style", "<https://cdn.example>; rel=preconnect",
      "</m.js>; rel=modulepreload"},
     true},
    {"same target as preload and modulepreload: two hints, one target",
     {{"link", "</m.js>; rel=preload; as=script, </m.js>; rel=modulepreload"}},
     {{"/m.js", PG_LINK_AS_SCRIPT}},
     {"</m.js>; rel=preload; as=script", "</m.js>; rel=modulepreload"},
     false},
    {"attributes survive byte for byte",
     {{"link", "</i.png>; rel=preload; as=image; imagesrcset=\"/i1.png 1x, /i2.png 2x\"; "
               "imagesizes=\"50vw\"; fetchpriority=high; media=\"(min-width: 600px)\""},
      {"link", "<https://fonts.example/f.woff2>; rel=preload; as=font; type=\"font/woff2\"; "
               "crossorigin=anonymous"}},
     {{"/i.png", PG_LINK_AS_IMAGE}},
     {"</i.png>; rel=preload; as=image; imagesrcset=\"/i1.png 1x, /i2.png 2x\"; "
      "imagesizes=\"50vw\"; fetchpriority=high; media=\"(min-width: 600px)\"",
      "<https://fonts.example/f.woff2>; rel=preload; as=font; type=\"font/woff2\"; "
      "crossorigin=anonymous"},
     true},
};

static size_t make_fields(const struct field *in, struct pg_header *out)
{
    size_t n = 0;
    for (; n < MAX_FIELDS && in[n].name; n++)
        out[n] =
            (struct pg_header){in[n].name, strlen(in[n].name), in[n].value, strlen(in[n].value)};
    return n;
}

static bool in_fields(const char *p, size_t len, const struct pg_header *fields, size_t count)
{
    for (size_t f = 0; f < count; f++)
        if (p >= fields[f].value && p + len <= fields[f].value + fields[f].value_len)
            return true;
    return false;
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
        for (; h < MAX_HINTS && c->hints[h]; h++) {
            const struct pg_learned_link *l = &set.links[h];
            CHECK(h < set.link_count && l->text_len == strlen(c->hints[h]) &&
                      memcmp(l->text, c->hints[h], l->text_len) == 0,
                  "%s: hint %zu is '%.*s' want '%s'", c->name, h,
                  h < set.link_count ? (int)l->text_len : 0, h < set.link_count ? l->text : "",
                  c->hints[h]);
            CHECK(h >= set.link_count || in_fields(l->text, l->text_len, fields, count),
                  "%s: hint %zu is a view into a field value, not a copy", c->name, h);
            CHECK(h >= set.link_count || (l->rels & ~PG_HINTS_RELS) == 0,
                  "%s: hint %zu carries only the hinted relations", c->name, h);
        }
        CHECK(set.link_count == h, "%s: %zu hints want %zu", c->name, set.link_count, h);
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
    size_t expect_targets, expect_links;
};

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static const struct cap_case caps[] = {
    {"targets at the cap", 1, PG_LEARN_MAX_TARGETS, PG_LEARN_MAX_TARGETS, PG_LEARN_MAX_TARGETS},
    {"targets over the cap in two fields", 2, PG_LEARN_MAX_TARGETS / 2 + 8, PG_LEARN_MAX_TARGETS,
     PG_LEARN_MAX_LINKS},
    {"links per field are bounded", 1, PG_HINTS_MAX_LINKS + 10,
     MIN(PG_HINTS_MAX_LINKS, PG_LEARN_MAX_TARGETS), MIN(PG_HINTS_MAX_LINKS, PG_LEARN_MAX_LINKS)},
    {"one link in each of many fields", 40, 1, 40, 40},
    {"both caps", 40, 4, PG_LEARN_MAX_TARGETS, PG_LEARN_MAX_LINKS},
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
        CHECK(set.link_count == c->expect_links, "%s: %zu links want %zu", c->name, set.link_count,
              c->expect_links);
        CHECK(!set.hint_only, "%s: dropping links over the cap is not hint_only", c->name);
        check_targets_wellformed(c->name, &set);
        /* The first targets and links in order are kept. */
        CHECK(set.target_count == 0 || strcmp(set.targets[0].path, "/p0-0") == 0,
              "%s: first target", c->name);
        CHECK(set.link_count == 0 || (set.links[0].text == fields[0].value &&
                                      strncmp(set.links[0].text, "</p0-0>", 7) == 0),
              "%s: first link", c->name);
        pg_link_set_free(&set);
        free(fields);
        free(storage);
    }
}

/* Our 103 holds at most PG_LEARN_MAX_HINT_BYTES of link text: a link that would cross it is
 * left out (still pushed), a shorter one after it still fits. */
static void test_link_bytes(void)
{
    enum { BIG = 4000, COUNT = 5 };
    char *values[COUNT + 1];
    struct pg_header fields[COUNT + 1];
    for (size_t i = 0; i <= COUNT; i++) {
        size_t len = i < COUNT ? BIG : 40;
        values[i] = malloc(len + 1);
        int head = snprintf(values[i], len + 1, "</b%zu>; rel=preload; x=", i);
        memset(values[i] + head, 'y', len - (size_t)head);
        values[i][len] = '\0';
        fields[i] = (struct pg_header){"link", 4, values[i], len};
    }
    struct pg_link_set set;
    pg_hints_collect(scheme, authority, base, fields, COUNT + 1, &set);
    CHECK(set.link_count == 5 && set.link_bytes == 4 * BIG + 40 &&
              set.links[4].text == values[COUNT],
          "link bytes capped: %zu links, %zu bytes", set.link_count, set.link_bytes);
    CHECK(set.target_count == COUNT + 1 && !set.hint_only,
          "every target is still pushable: %zu targets", set.target_count);
    pg_link_set_free(&set);
    for (size_t i = 0; i <= COUNT; i++)
        free(values[i]);
}

/* Which requests may get a 103 of ours: top-level navigations, and clients that send no
 * Sec-Fetch fields at all. */
struct nav_case {
    const char *name;
    struct field fields[MAX_FIELDS];
    bool hint;
};

static const struct nav_case navs[] = {
    {"no fields (curl, h2load, a bot)", {{NULL, NULL}}, true},
    {"unrelated fields", {{"accept", "text/html"}, {"sec-fetch-site", "none"}}, true},
    {"a navigation", {{"sec-fetch-mode", "navigate"}, {"sec-fetch-dest", "document"}}, true},
    {"a navigation with the other Sec-Fetch fields",
     {{"sec-fetch-site", "cross-site"},
      {"sec-fetch-mode", "navigate"},
      {"sec-fetch-user", "?1"},
      {"sec-fetch-dest", "document"}},
     true},
    {"mode navigate, no dest", {{"sec-fetch-mode", "navigate"}}, true},
    {"dest document, no mode", {{"sec-fetch-dest", "document"}}, true},
    {"surrounding whitespace", {{"sec-fetch-mode", " navigate\t"}}, true},
    {"a fetch()", {{"sec-fetch-mode", "cors"}, {"sec-fetch-dest", "empty"}}, false},
    {"mode cors alone", {{"sec-fetch-mode", "cors"}}, false},
    {"a script", {{"sec-fetch-mode", "no-cors"}, {"sec-fetch-dest", "script"}}, false},
    {"same-origin mode", {{"sec-fetch-mode", "same-origin"}}, false},
    {"a websocket", {{"sec-fetch-mode", "websocket"}, {"sec-fetch-dest", "websocket"}}, false},
    {"an iframe navigation", {{"sec-fetch-mode", "navigate"}, {"sec-fetch-dest", "iframe"}}, false},
    {"a frame navigation", {{"sec-fetch-mode", "navigate"}, {"sec-fetch-dest", "frame"}}, false},
    {"a navigation with an empty dest",
     {{"sec-fetch-mode", "navigate"}, {"sec-fetch-dest", ""}},
     false},
    {"dest image alone", {{"sec-fetch-dest", "image"}}, false},
    {"an empty mode", {{"sec-fetch-mode", ""}}, false},
    {"tokens are lower-case", {{"sec-fetch-mode", "Navigate"}}, false},
    {"two modes, one not navigate",
     {{"sec-fetch-mode", "navigate"}, {"sec-fetch-mode", "cors"}},
     false},
    {"two dests, one not document",
     {{"sec-fetch-dest", "document"}, {"sec-fetch-dest", "iframe"}},
     false},
    {"a prefix is not the token", {{"sec-fetch-mode", "navigatex"}}, false},
    {"names are lower-case views", {{"Sec-Fetch-Mode", "cors"}}, true},
};

static void test_navigation(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(navs); i++) {
        struct pg_header fields[MAX_FIELDS];
        size_t count = make_fields(navs[i].fields, fields);
        struct pg_request_head head = {.fields = fields, .count = count};
        CHECK(pg_hints_navigation(&head) == navs[i].hint, "%s: %d want %d", navs[i].name,
              pg_hints_navigation(&head), navs[i].hint);
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
    CHECK(set.target_count == 0 && set.link_count == 0,
          "a preload after PG_HINTS_MAX_LINKS links is not examined: %zu targets %zu links",
          set.target_count, set.link_count);
    pg_link_set_free(&set);
    free(v);
}

struct bound_case {
    const char *name;
    const char *scheme, *authority, *base;
    const char *value;
    size_t expect_targets, expect_links;
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
        CHECK(set.target_count == c->expect_targets && set.link_count == c->expect_links,
              "%s: %zu targets %zu links, want %zu %zu", c->name, set.target_count, set.link_count,
              c->expect_targets, c->expect_links);
        pg_link_set_free(&set);
    }

    /* An authority of 256 bytes or more is not resolved against: the head is ignored whole. */
    char long_authority[300];
    memset(long_authority, 'a', sizeof(long_authority));
    struct pg_header field = {"link", 4, "</a>; rel=preload", 17};
    struct pg_link_set set;
    pg_hints_collect(scheme, (struct pg_header){NULL, 0, long_authority, 255}, base, &field, 1,
                     &set);
    CHECK(set.target_count == 1 && set.link_count == 1, "255-byte authority: %zu %zu",
          set.target_count, set.link_count);
    pg_link_set_free(&set);
    pg_hints_collect(scheme, (struct pg_header){NULL, 0, long_authority, 256}, base, &field, 1,
                     &set);
    CHECK(set.target_count == 0 && set.link_count == 0 && !set.hint_only,
          "256-byte authority: %zu %zu", set.target_count, set.link_count);
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
        CHECK(set.target_count == want && set.link_count == 1 && !set.hint_only,
              "path of %zu bytes: %zu targets want %zu", sizes[i], set.target_count, want);
        pg_link_set_free(&set);
        free(v);
    }
}

int main(void)
{
    test_collect();
    test_caps();
    test_link_bytes();
    test_preload_past_link_bound();
    test_bounds();
    test_navigation();
    return check_report("test_hints");
}
