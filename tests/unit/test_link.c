/* Table tests for the RFC 8288 Link parser (§3 syntax, lenient per Appendix B). */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/link.h"

#include <stdbool.h>
#include <stdlib.h>

#define MAX_WANT 4

struct want {
    const char *target;
    unsigned rels;
    bool nopush;
    enum pg_link_as as;
};

struct link_case {
    const char *in;
    size_t len; /* 0: strlen(in); set for inputs with embedded NULs */
    size_t n;
    struct want w[MAX_WANT];
};

/* Shorthands keep the table one line per case. */
/* clang-format off */
#define PRE(t, as) {t, PG_LINK_REL_PRELOAD, false, PG_LINK_AS_##as}
#define PLAIN(t) {t, 0, false, PG_LINK_AS_NONE}
#define W(t, pre, nop, as) {t, (pre) ? PG_LINK_REL_PRELOAD : 0u, nop, PG_LINK_AS_##as}
#define REL(t, rels) {t, rels, false, PG_LINK_AS_NONE}
/* clang-format on */

static const struct link_case link_cases[] = {
    /* The basics. */
    {"</style.css>; rel=preload; as=style", 0, 1, {PRE("/style.css", STYLE)}},
    {"</a.js>", 0, 1, {PLAIN("/a.js")}},
    {"", 0, 0, {{0}}},
    {"   ", 0, 0, {{0}}},
    {"<https://e.com/x?y=1#f>; rel=preload", 0, 1, {PRE("https://e.com/x?y=1#f", NONE)}},
    {"\t</a>\t;\trel=preload\t", 0, 1, {PRE("/a", NONE)}},

    /* Several link-values, top-level commas only. */
    {"</a>; rel=preload, </b>; rel=preload", 0, 2, {PRE("/a", NONE), PRE("/b", NONE)}},
    {"</a>,</b>,</c>", 0, 3, {PLAIN("/a"), PLAIN("/b"), PLAIN("/c")}},
    {"</a> , </b> ,</c>", 0, 3, {PLAIN("/a"), PLAIN("/b"), PLAIN("/c")}},
    {"</a,b>; rel=preload", 0, 1, {PRE("/a,b", NONE)}},
    {"</a;b>; rel=preload", 0, 1, {PRE("/a;b", NONE)}},
    {"</a>; title=\"x, y\"; rel=preload, </b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>; title=\"x; rel=preload\", </b>", 0, 2, {PLAIN("/a"), PLAIN("/b")}},
    {"</a>; title=\"x\\\", y\"; rel=preload, </b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>;rel=preload;as=script, </b>;rel=preload;as=image, </c>;rel=preload;as=font",
     0,
     3,
     {PRE("/a", SCRIPT), PRE("/b", IMAGE), PRE("/c", FONT)}},

    /* Parameter syntax: tokens, quoted strings, escapes, BWS around '=', case. */
    {"</a>; rel=\"preload\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel = preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>;rel=preload;as=style", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; rel =\t\"preload\" ; as= style", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; REL=PRELOAD; AS=STYLE", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; Rel=PreLoad; As=\"Script\"", 0, 1, {PRE("/a", SCRIPT)}},
    {"</a>; rel=\"pre\\load\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"\\p\\r\\e\\l\\o\\a\\d\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; as=\"st\\yle\"", 0, 1, {W("/a", false, false, STYLE)}},
    {"</a>; rel=preload; as=\"st\\yle\"", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; rel=pre\\load", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=preload   ; as=style   ", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; rel=\"preload\"junk; as=style", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; rel=\"preload\" junk, </b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>; foo; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; foo bar; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; title*=UTF-8'de'n%c3%a4chstes; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel*=preload", 0, 1, {PLAIN("/a")}},

    {"</a> ; rel=preload ,</b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>; rel preload; as=font", 0, 1, {W("/a", false, false, FONT)}},
    {"</a>; rel=\"pre\"load; as=font", 0, 1, {W("/a", false, false, FONT)}},
    {"</a>; as=\"font\" ; rel=preload", 0, 1, {PRE("/a", FONT)}},
    {"</a>; x=\"\\\\\"; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; x=\"a\\\"b\"; rel=preload, </b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>; x=<y,z>; rel=preload, </b>", 0, 2, {PLAIN("/a"), PLAIN("/b")}},

    /* rel is a space-separated list; only "preload" itself counts; only the first rel. */
    {"</a>; rel=\"preload stylesheet\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"stylesheet preload\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"alternate  preload  next\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"stylesheet\tPRELOAD\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"  preload  \"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=prefetch", 0, 1, {REL("/a", PG_LINK_REL_PREFETCH)}},
    {"</a>; rel=preloaded", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"preloaded stylesheet\"", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"xpreload\"", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=preloa", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"preloadpreload\"", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"prel oad\"", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"\"", 0, 1, {PLAIN("/a")}},
    {"</a>; rel", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=stylesheet; rel=preload", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=preload; rel=stylesheet", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel; rel=preload", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=preload stylesheet", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"https://example.com/rel/preload\"", 0, 1, {PLAIN("/a")}},

    /* The other relation types told apart, each a whole word, any case, any combination. */
    {"</m.js>; rel=modulepreload", 0, 1, {REL("/m.js", PG_LINK_REL_MODULEPRELOAD)}},
    {"</m.js>; rel=ModulePreload", 0, 1, {REL("/m.js", PG_LINK_REL_MODULEPRELOAD)}},
    {"<https://cdn>; rel=preconnect", 0, 1, {REL("https://cdn", PG_LINK_REL_PRECONNECT)}},
    {"<https://cdn>; rel=\"preconnect\"; crossorigin",
     0,
     1,
     {REL("https://cdn", PG_LINK_REL_PRECONNECT)}},
    {"<//cdn>; rel=dns-prefetch", 0, 1, {REL("//cdn", PG_LINK_REL_DNS_PREFETCH)}},
    {"<//cdn>; rel=\"dns-prefetch preconnect\"",
     0,
     1,
     {REL("//cdn", PG_LINK_REL_DNS_PREFETCH | PG_LINK_REL_PRECONNECT)}},
    {"</a>; rel=\"preload modulepreload prefetch\"",
     0,
     1,
     {REL("/a", PG_LINK_REL_PRELOAD | PG_LINK_REL_MODULEPRELOAD | PG_LINK_REL_PREFETCH)}},
    {"</a>; rel=modulepreloadx", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=module-preload", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=pre-connect", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=dnsprefetch", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"modulepreloadmodulepreload preload\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"xxxxxxxxxxxxxxxxxxxxxpreload\"", 0, 1, {PLAIN("/a")}},
    {"</a>; rel=\"m\\odulepreload\"", 0, 1, {REL("/a", PG_LINK_REL_MODULEPRELOAD)}},
    {"</a>; rel=preconnect; rel=preload", 0, 1, {REL("/a", PG_LINK_REL_PRECONNECT)}},

    /* anchor: a non-empty one drops the link; only the first counts. */
    {"</a>; rel=preload; anchor=\"#foo\"", 0, 0, {{0}}},
    {"</a>; anchor=\"/other\"; rel=preload, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a>; anchor=x; rel=preload", 0, 0, {{0}}},
    {"</a>; ANCHOR=\"x\"", 0, 0, {{0}}},
    {"</a>; anchor=\"\"; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; anchor=; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; anchor; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; anchor=\"\"; anchor=\"x\"; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; anchor=\"x\"; anchor=\"\"; rel=preload", 0, 0, {{0}}},
    {"</a>; anchors=\"x\"; rel=preload", 0, 1, {PRE("/a", NONE)}},

    /* nopush, with or without a value, any case, anywhere. */
    {"</a>; rel=preload; nopush", 0, 1, {W("/a", true, true, NONE)}},
    {"</a>; nopush; rel=preload", 0, 1, {W("/a", true, true, NONE)}},
    {"</a>; rel=preload; nopush=1", 0, 1, {W("/a", true, true, NONE)}},
    {"</a>; rel=preload; nopush=\"\"", 0, 1, {W("/a", true, true, NONE)}},
    {"</a>; rel=preload; NoPush", 0, 1, {W("/a", true, true, NONE)}},
    {"</a>; rel=preload; nopush ; as=style", 0, 1, {W("/a", true, true, STYLE)}},
    {"</a>; nopush", 0, 1, {W("/a", false, true, NONE)}},
    {"</a>; rel=preload; nopushx", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=preload; title=nopush", 0, 1, {PRE("/a", NONE)}},
    {"</a>;rel=preload;nopush, </b>;rel=preload",
     0,
     2,
     {W("/a", true, true, NONE), PRE("/b", NONE)}},

    /* as= keywords. */
    {"</a>; rel=preload; as=style", 0, 1, {PRE("/a", STYLE)}},
    {"</a>; rel=preload; as=script", 0, 1, {PRE("/a", SCRIPT)}},
    {"</a>; rel=preload; as=image", 0, 1, {PRE("/a", IMAGE)}},
    {"</a>; rel=preload; as=font", 0, 1, {PRE("/a", FONT)}},
    {"</a>; rel=preload; as=fetch", 0, 1, {PRE("/a", FETCH)}},
    {"</a>; rel=preload; as=document", 0, 1, {PRE("/a", DOCUMENT)}},
    {"</a>; rel=preload; as=audio", 0, 1, {PRE("/a", AUDIO)}},
    {"</a>; rel=preload; as=video", 0, 1, {PRE("/a", VIDEO)}},
    {"</a>; rel=preload; as=track", 0, 1, {PRE("/a", TRACK)}},
    {"</a>; rel=preload; as=worker", 0, 1, {PRE("/a", WORKER)}},
    {"</a>; rel=preload; as=embed", 0, 1, {PRE("/a", OTHER)}},
    {"</a>; rel=preload; as=styles", 0, 1, {PRE("/a", OTHER)}},
    {"</a>; rel=preload; as=styl", 0, 1, {PRE("/a", OTHER)}},
    {"</a>; rel=preload; as=other", 0, 1, {PRE("/a", OTHER)}},
    {"</a>; rel=preload; as=\"style script\"", 0, 1, {PRE("/a", OTHER)}},
    {"</a>; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=preload; as=FONT", 0, 1, {PRE("/a", FONT)}},
    {"</a>; rel=preload; as=\"Image\"", 0, 1, {PRE("/a", IMAGE)}},
    {"</a>; rel=preload; as=\"worker\"", 0, 1, {PRE("/a", WORKER)}},
    {"</a>; rel=preload; as=script; as=style", 0, 1, {PRE("/a", SCRIPT)}},
    {"</a>; rel=preload; as=bogus; as=style", 0, 1, {PRE("/a", OTHER)}},
    {"</a>; as=style", 0, 1, {W("/a", false, false, STYLE)}},

    /* Malformed link-values cost only themselves. */
    {"</a; rel=preload, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"/a>; rel=preload, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"junk, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a> junk; rel=preload, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a>; rel=preload junk, </b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>; =x, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a>; \"q\"=x, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a>; rel=preload;, </b>", 0, 2, {PRE("/a", NONE), PLAIN("/b")}},
    {"</a>; rel=preload;", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=preload; ;; as=font", 0, 1, {PRE("/a", FONT)}},
    {"</a>; as=; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; as=\"\"; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; title=; rel=preload", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=", 0, 1, {PLAIN("/a")}},
    {",,</a>,,,</b>,,", 0, 2, {PLAIN("/a"), PLAIN("/b")}},
    {",", 0, 0, {{0}}},
    {" , , ", 0, 0, {{0}}},
    {"</a>; rel=\"preload, </b>; rel=preload", 0, 0, {{0}}},
    {"</a>; rel=\"preload\\", 0, 0, {{0}}},
    {"</a", 0, 0, {{0}}},
    {"<", 0, 0, {{0}}},
    {">", 0, 0, {{0}}},
    {"</a></b>, </c>", 0, 1, {PLAIN("/c")}},
    {"junk \"with, comma\", </b>", 0, 1, {PLAIN("/b")}},
    {"junk <with,comma>, </b>", 0, 1, {PLAIN("/b")}},
    {"junk \"unterminated, </b>", 0, 0, {{0}}},
    {"</a>; x=\"y\" z, </b>; rel=preload", 0, 2, {PLAIN("/a"), PRE("/b", NONE)}},

    /* Targets: CTL, SP and '<' invalidate; "<>" is a link. */
    {"<>; rel=preload", 0, 1, {PRE("", NONE)}},
    {"<>", 0, 1, {PLAIN("")}},
    {"</a b>; rel=preload, </c>; rel=preload", 0, 1, {PRE("/c", NONE)}},
    {"</a\tb>; rel=preload, </c>", 0, 1, {PLAIN("/c")}},
    {"</a\x7f>; rel=preload, </c>", 0, 1, {PLAIN("/c")}},
    {"</a\x01>, </c>", 0, 1, {PLAIN("/c")}},
    {"</a\0b>, </c>", sizeof "</a\0b>, </c>" - 1, 1, {PLAIN("/c")}},
    {"</a<b>; rel=preload, </c>; rel=preload", 0, 1, {PRE("/c", NONE)}},
    {"</a, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a\xc3\xa9>; rel=preload", 0, 1, {PRE("/a\xc3\xa9", NONE)}},
    {"</a\"b>; rel=preload", 0, 1, {PRE("/a\"b", NONE)}},
    {"< /a>, </b>", 0, 1, {PLAIN("/b")}},
    {"</a>; rel=preload\0, </b>",
     sizeof "</a>; rel=preload\0, </b>" - 1,
     2,
     {PLAIN("/a"), PLAIN("/b")}},
};

static void test_table(void)
{
    for (size_t k = 0; k < PG_ARRAY_LEN(link_cases); k++) {
        const struct link_case *c = &link_cases[k];
        size_t len = c->len ? c->len : strlen(c->in);
        struct pg_link got[MAX_WANT + 2];
        memset(got, 0, sizeof got);
        size_t n = pg_link_parse(c->in, len, got, PG_ARRAY_LEN(got));
        CHECK(n == c->n, "case %zu [%s]: n=%zu want %zu", k, c->in, n, c->n);
        for (size_t j = 0; j < n && j < c->n; j++) {
            const struct want *w = &c->w[j];
            const struct pg_link *l = &got[j];
            CHECK(l->target_len == strlen(w->target) &&
                      memcmp(l->target, w->target, l->target_len) == 0,
                  "case %zu [%s] link %zu: target '%.*s' want '%s'", k, c->in, j,
                  (int)l->target_len, l->target, w->target);
            CHECK(l->target >= c->in && l->target + l->target_len <= c->in + len,
                  "case %zu link %zu: target is not a view into the value", k, j);
            CHECK(l->rels == w->rels, "case %zu [%s] link %zu: rels=%#x want %#x", k, c->in, j,
                  l->rels, w->rels);
            CHECK(l->text && l->text >= c->in && l->text + l->text_len <= c->in + len &&
                      l->text[0] == '<' && l->target == l->text + 1 &&
                      l->target + l->target_len < l->text + l->text_len,
                  "case %zu [%s] link %zu: text is a view holding the target", k, c->in, j);
            CHECK(l->nopush == w->nopush, "case %zu [%s] link %zu: nopush=%d", k, c->in, j,
                  l->nopush);
            CHECK(l->as == w->as, "case %zu [%s] link %zu: as=%d want %d", k, c->in, j, l->as,
                  w->as);
        }
    }
}

/* Fewer slots than links: the first `cap` links are written and nothing past them. */
static void test_cap(void)
{
    static const struct {
        const char *in;
        size_t cap;
        size_t n;
        const char *last; /* target of the last link written */
    } cases[] = {
        {"</a>, </b>, </c>", 0, 0, NULL},
        {"</a>, </b>, </c>", 1, 1, "/a"},
        {"</a>, </b>, </c>", 2, 2, "/b"},
        {"</a>, </b>, </c>", 3, 3, "/c"},
        {"</a>, </b>, </c>", 4, 3, "/c"},
        {"</a>; anchor=x, </b>, </c>", 1, 1, "/b"},
        {"</a>; anchor=x, </b>; anchor=y, </c>", 1, 1, "/c"},
        {"junk, </b>, </c>", 1, 1, "/b"},
        {"</a; , </b>, </c>", 2, 2, "/c"},
    };
    for (size_t k = 0; k < PG_ARRAY_LEN(cases); k++) {
        struct pg_link got[6];
        memset(got, 0xa5, sizeof got);
        size_t n = pg_link_parse(cases[k].in, strlen(cases[k].in), got, cases[k].cap);
        CHECK(n == cases[k].n, "cap case %zu: n=%zu", k, n);
        if (n > 0 && cases[k].last)
            CHECK(got[n - 1].target_len == strlen(cases[k].last) &&
                      memcmp(got[n - 1].target, cases[k].last, got[n - 1].target_len) == 0,
                  "cap case %zu: last target", k);
        const unsigned char *rest = (const unsigned char *)&got[cases[k].cap];
        for (size_t j = 0; j < sizeof got - cases[k].cap * sizeof got[0]; j++)
            CHECK(rest[j] == 0xa5, "cap case %zu: byte %zu past cap written", k, j);
    }
    CHECK(pg_link_parse("</a>", 4, NULL, 0) == 0, "NULL out, cap 0");
    CHECK(pg_link_parse(NULL, 0, NULL, 0) == 0, "NULL value");
    struct pg_link one;
    CHECK(pg_link_parse(NULL, 4, &one, 1) == 0, "NULL value with a length");
    CHECK(pg_link_parse("</a>", 0, &one, 1) == 0, "zero length");
}

/* The length given is the end: nothing past it is read, even a closing '>' or quote. */
static void test_length_bound(void)
{
    static const struct {
        const char *in;
        size_t len;
        size_t n;
        const char *target;
        bool preload;
        size_t text_len;
    } cases[] = {
        {"</a>; rel=preload", 4, 1, "/a", false, 4},
        {"</a>; rel=preload", 14, 1, "/a", false, 14},
        {"</a>; rel=preload", 17, 1, "/a", true, 17},
        {"</a>; rel=\"preload\"", 18, 0, NULL, false, 0},
        {"</a>; rel=\"preload\"", 19, 1, "/a", true, 19},
        {"</a>", 3, 0, NULL, false, 0},
        {"</a>, </b>", 6, 1, "/a", false, 4},
        {"</a>, </b>", 9, 1, "/a", false, 4},
    };
    for (size_t k = 0; k < PG_ARRAY_LEN(cases); k++) {
        /* A heap copy of exactly len bytes lets the sanitizer catch any read past the end. */
        char *v = malloc(cases[k].len);
        if (!v)
            return;
        memcpy(v, cases[k].in, cases[k].len);
        struct pg_link got[2];
        size_t n = pg_link_parse(v, cases[k].len, got, 2);
        CHECK(n == cases[k].n, "length case %zu: n=%zu", k, n);
        if (n > 0 && cases[k].target)
            CHECK(got[0].target_len == strlen(cases[k].target) &&
                      memcmp(got[0].target, cases[k].target, got[0].target_len) == 0 &&
                      (got[0].rels == PG_LINK_REL_PRELOAD) == cases[k].preload &&
                      got[0].text_len == cases[k].text_len,
                  "length case %zu: link", k);
        free(v);
    }
}

static void test_max_len(void)
{
    static char v[PG_LINK_MAX_FIELD_LEN + 2];
    memset(v, ' ', sizeof v);
    memcpy(v, "</a>; rel=preload,", 18);
    struct pg_link l[2];
    size_t n = pg_link_parse(v, PG_LINK_MAX_FIELD_LEN, l, 2);
    CHECK(n == 1 && l[0].rels == PG_LINK_REL_PRELOAD, "at the limit: n=%zu", n);
    n = pg_link_parse(v, PG_LINK_MAX_FIELD_LEN + 1, l, 2);
    CHECK(n == 0, "one past the limit: n=%zu", n);
    memcpy(v + PG_LINK_MAX_FIELD_LEN - 4, "</b>", 4);
    n = pg_link_parse(v, PG_LINK_MAX_FIELD_LEN, l, 2);
    CHECK(n == 2 && l[1].target_len == 2 && l[1].target[1] == 'b', "link at the end: n=%zu", n);
}

/* Appends s to buf at *n if it fits. */
static void append(char *buf, size_t cap, size_t *n, const char *s)
{
    size_t k = strlen(s);
    if (*n + k <= cap) {
        memcpy(buf + *n, s, k);
        *n += k;
    }
}

/* Many links, and hostile shapes that a quadratic rescan would choke on; linear work is what
 * the header promises, so these simply have to finish. */
static void test_many(void)
{
    static char v[PG_LINK_MAX_FIELD_LEN];
    static struct pg_link l[10001];
    size_t n = 0;
    for (int k = 0; k < 10000; k++)
        append(v, sizeof v, &n, "<>,");
    size_t got = pg_link_parse(v, n, l, PG_ARRAY_LEN(l));
    CHECK(got == 10000, "10000 links: %zu", got);

    n = 0;
    for (int k = 0; k < 6000; k++)
        append(v, sizeof v, &n, "</x>;rel=preload,");
    got = pg_link_parse(v, n, l, PG_ARRAY_LEN(l));
    CHECK(got == n / 17 && l[got - 1].rels == PG_LINK_REL_PRELOAD, "preload links: %zu", got);

    static const char *const shapes[] = {"<",        "<a,", "< ",           "\"", ";",    "<a>;",
                                         "<a>;x=\"", "<<>", "<a>;rel=\"\\", ",<", "<a ,", "x<y>"};
    for (size_t s = 0; s < PG_ARRAY_LEN(shapes); s++) {
        n = 0;
        while (n + strlen(shapes[s]) <= sizeof v)
            append(v, sizeof v, &n, shapes[s]);
        got = pg_link_parse(v, n, l, PG_ARRAY_LEN(l));
        CHECK(got <= PG_ARRAY_LEN(l), "shape %zu: %zu", s, got);
    }
    n = 0;
    for (int k = 0; k < 10000; k++)
        append(v, sizeof v, &n, "<a");
    append(v, sizeof v, &n, ">");
    got = pg_link_parse(v, n, l, PG_ARRAY_LEN(l));
    CHECK(got == 0, "'<a' run then '>': %zu", got);
}

/* Each link-value's own text, byte for byte: what a 103 repeats of it. */
static void test_text(void)
{
    static const struct {
        const char *in;
        size_t n;
        const char *texts[3];
    } cases[] = {
        {"</a>", 1, {"</a>"}},
        {"</a>; rel=preload; as=style", 1, {"</a>; rel=preload; as=style"}},
        {"  </a>;rel=preload  ,  </b>  ", 2, {"</a>;rel=preload", "</b>"}},
        {"</a>; rel=preload; as=style; crossorigin, <https://cdn.example>; rel=preconnect",
         2,
         {"</a>; rel=preload; as=style; crossorigin", "<https://cdn.example>; rel=preconnect"}},
        {"</i.png>; rel=preload; as=image; imagesrcset=\"/i1.png 1x, /i2.png 2x\"; "
         "fetchpriority=high; media=\"(min-width: 600px)\"",
         1,
         {"</i.png>; rel=preload; as=image; imagesrcset=\"/i1.png 1x, /i2.png 2x\"; "
          "fetchpriority=high; media=\"(min-width: 600px)\""}},
        {"</m.js>; rel=modulepreload; type=\"module\"\t, </b>",
         2,
         {"</m.js>; rel=modulepreload; type=\"module\"", "</b>"}},
        {"</a>; rel=preload;, </b>;;", 2, {"</a>; rel=preload;", "</b>;;"}},
        {"junk, </b>; x=\"y\" z", 1, {"</b>; x=\"y\" z"}},
        {"</a>; anchor=\"x\", </b>; rel=preload", 1, {"</b>; rel=preload"}},
    };
    for (size_t k = 0; k < PG_ARRAY_LEN(cases); k++) {
        struct pg_link got[4];
        size_t n = pg_link_parse(cases[k].in, strlen(cases[k].in), got, PG_ARRAY_LEN(got));
        CHECK(n == cases[k].n, "text case %zu: n=%zu want %zu", k, n, cases[k].n);
        for (size_t j = 0; j < n && j < cases[k].n; j++)
            CHECK(got[j].text_len == strlen(cases[k].texts[j]) &&
                      memcmp(got[j].text, cases[k].texts[j], got[j].text_len) == 0,
                  "text case %zu link %zu: '%.*s' want '%s'", k, j, (int)got[j].text_len,
                  got[j].text, cases[k].texts[j]);
    }
}

static void test_as_name(void)
{
    static const struct {
        enum pg_link_as as;
        const char *name;
    } cases[] = {
        {PG_LINK_AS_NONE, ""},
        {PG_LINK_AS_STYLE, "style"},
        {PG_LINK_AS_SCRIPT, "script"},
        {PG_LINK_AS_IMAGE, "image"},
        {PG_LINK_AS_FONT, "font"},
        {PG_LINK_AS_FETCH, "fetch"},
        {PG_LINK_AS_DOCUMENT, "document"},
        {PG_LINK_AS_AUDIO, "audio"},
        {PG_LINK_AS_VIDEO, "video"},
        {PG_LINK_AS_TRACK, "track"},
        {PG_LINK_AS_WORKER, "worker"},
        {PG_LINK_AS_OTHER, "other"},
        {(enum pg_link_as)99, "other"},
        {(enum pg_link_as) - 1, "other"},
    };
    for (size_t k = 0; k < PG_ARRAY_LEN(cases); k++) {
        const char *name = pg_link_as_name(cases[k].as);
        CHECK(name && strcmp(name, cases[k].name) == 0, "as %d: '%s'", (int)cases[k].as,
              name ? name : "(null)");
    }
    /* Every keyword name parses back to its value. */
    for (int a = PG_LINK_AS_STYLE; a < PG_LINK_AS_OTHER; a++) {
        char v[64];
        int len = snprintf(v, sizeof v, "<x>; as=%s", pg_link_as_name((enum pg_link_as)a));
        struct pg_link l;
        size_t n = pg_link_parse(v, (size_t)len, &l, 1);
        CHECK(n == 1 && l.as == (enum pg_link_as)a, "round trip %d", a);
    }
}

int main(void)
{
    test_table();
    test_cap();
    test_length_bound();
    test_max_len();
    test_many();
    test_text();
    test_as_name();
    return check_report("link");
}
