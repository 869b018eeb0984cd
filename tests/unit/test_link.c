/* Table tests for the RFC 8288 Link parser (§3 syntax, lenient per Appendix B). */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/link.h"

#include <stdbool.h>
#include <stdlib.h>

#define MAX_WANT 4

struct want {
    const char *target;
    bool preload;
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
#define PRE(t, as) {t, true, false, PG_LINK_AS_##as}
#define PLAIN(t) {t, false, false, PG_LINK_AS_NONE}
#define W(t, pre, nop, as) {t, pre, nop, PG_LINK_AS_##as}

static const struct link_case cases[] = {
    /* The basics. */
    {"</style.css>; rel=preload; as=style", 0, 1, {PRE("/style.css", STYLE)}},
    {"</a.js>", 0, 1, {PLAIN("/a.js")}},
    {"", 0, 0, {{0}}},
    {"   ", 0, 0, {{0}}},
    {"<https://example.com/x?y=1#f>; rel=preload", 0, 1, {PRE("https://example.com/x?y=1#f", NONE)}},
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
    {"</a>; rel=preload; as=script, </b>; rel=preload; as=image, </c>; rel=preload; as=font", 0, 3,
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

    /* rel is a space-separated list; only "preload" itself counts; only the first rel. */
    {"</a>; rel=\"preload stylesheet\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"stylesheet preload\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"alternate  preload  next\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"stylesheet\tPRELOAD\"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=\"  preload  \"", 0, 1, {PRE("/a", NONE)}},
    {"</a>; rel=prefetch", 0, 1, {PLAIN("/a")}},
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
    {"</a>; rel=preload; nopush, </b>; rel=preload", 0, 2,
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
    {"</a\x7f" "b>; rel=preload, </c>", 0, 1, {PLAIN("/c")}},
    {"</a\x01>, </c>", 0, 1, {PLAIN("/c")}},
    {"</a\0b>, </c>", sizeof "</a\0b>, </c>" - 1, 1, {PLAIN("/c")}},
    {"</a<b>; rel=preload, </c>; rel=preload", 0, 1, {PRE("/c", NONE)}},
    {"</a, </b>; rel=preload", 0, 1, {PRE("/b", NONE)}},
    {"</a\xc3\xa9>; rel=preload", 0, 1, {PRE("/a\xc3\xa9", NONE)}},
    {"</a\"b>; rel=preload", 0, 1, {PRE("/a\"b", NONE)}},
    {"< /a>, </b>", 0, 1, {PLAIN("/b")}},
    {"</a>; rel=preload\0, </b>", sizeof "</a>; rel=preload\0, </b>" - 1, 2, {PLAIN("/a"), PLAIN("/b")}},
};

static void test_table(void)
{
    for (size_t k = 0; k < PG_ARRAY_LEN(cases); k++) {
        const struct link_case *c = &cases[k];
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
            CHECK(l->preload == w->preload, "case %zu [%s] link %zu: preload=%d", k, c->in, j,
                  l->preload);
            CHECK(l->nopush == w->nopush, "case %zu [%s] link %zu: nopush=%d", k, c->in, j,
                  l->nopush);
            CHECK(l->as == w->as, "case %zu [%s] link %zu: as=%d want %d", k, c->in, j, l->as,
                  w->as);
        }
    }
}

int main(void)
{
    test_table();
    return check_report("link");
}
