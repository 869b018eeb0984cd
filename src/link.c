/* RFC 8288 Link field parser: one forward pass over the field, views into it, no allocation. */
#include "pushgate/link.h"
#include "pushgate/headers.h"

#include <string.h>

struct scan {
    const char *s;
    size_t len;
    size_t i;
    size_t last_gt; /* index of the last '>', 0 when there is none */
};

/* A parameter value as written: the bytes between the quotes when quoted, escapes intact. */
struct pval {
    const char *p;
    size_t n;
    bool quoted;
};

struct seen {
    bool rel;
    bool as;
    bool anchor;
};

static const char *const as_names[] = {
    [PG_LINK_AS_NONE] = "",
    [PG_LINK_AS_STYLE] = "style",
    [PG_LINK_AS_SCRIPT] = "script",
    [PG_LINK_AS_IMAGE] = "image",
    [PG_LINK_AS_FONT] = "font",
    [PG_LINK_AS_FETCH] = "fetch",
    [PG_LINK_AS_DOCUMENT] = "document",
    [PG_LINK_AS_AUDIO] = "audio",
    [PG_LINK_AS_VIDEO] = "video",
    [PG_LINK_AS_TRACK] = "track",
    [PG_LINK_AS_WORKER] = "worker",
    [PG_LINK_AS_OTHER] = "other",
};

static bool is_ows(int c)
{
    return c == ' ' || c == '\t';
}

static bool is_ctl(int c)
{
    return c < 0x20 || c == 0x7f;
}

static bool is_tchar(int c)
{
    return c >= 0 && c < 256 && pg_headers_is_tchar((unsigned char)c);
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int cur(const struct scan *sc)
{
    return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

static void ows(struct scan *sc)
{
    while (is_ows(cur(sc)))
        sc->i++;
}

/* Appendix B consumes a parameter's leftovers up to the next ';' or ',' without judging them. */
static void rest(struct scan *sc)
{
    while (sc->i < sc->len && sc->s[sc->i] != ';' && sc->s[sc->i] != ',')
        sc->i++;
}

/* Consumes a quoted string from its opening quote; false when unterminated (then at the end). */
static bool quoted(struct scan *sc, struct pval *v)
{
    size_t start = ++sc->i;
    while (sc->i < sc->len) {
        char c = sc->s[sc->i];
        if (c == '"') {
            *v = (struct pval){sc->s + start, sc->i - start, true};
            sc->i++;
            return true;
        }
        sc->i += c == '\\' ? 2 : 1;
    }
    sc->i = sc->len;
    return false;
}

/* Skips past the next comma outside quotes and brackets. A '<' only opens a bracket when a '>'
 * follows somewhere, so no byte is scanned twice looking for one. */
static void resync(struct scan *sc)
{
    struct pval ignored;
    while (sc->i < sc->len) {
        char c = sc->s[sc->i];
        if (c == ',') {
            sc->i++;
            return;
        }
        if (c == '"' && !quoted(sc, &ignored))
            return;
        if (c == '<' && sc->i < sc->last_gt) {
            const char *gt = memchr(sc->s + sc->i, '>', sc->len - sc->i);
            sc->i = (size_t)(gt - sc->s) + 1;
        } else if (c != '"') {
            sc->i++;
        }
    }
}

/* Consumes "<target>". A bad byte in the target most likely means its '>' is missing, so the
 * link is dropped and parsing resumes at the first comma after its '<' when there is one; the
 * region re-read holds no '<', so nothing is re-read twice. */
static bool target(struct scan *sc, struct pg_link *l)
{
    size_t lt = sc->i++;
    for (; sc->i < sc->len; sc->i++) {
        int c = (unsigned char)sc->s[sc->i];
        if (c == '>') {
            l->target = sc->s + lt + 1;
            l->target_len = sc->i++ - lt - 1;
            return true;
        }
        if (c == '<' || c == ' ' || is_ctl(c))
            break;
    }
    const char *comma = memchr(sc->s + lt + 1, ',', sc->i - lt - 1);
    if (comma)
        sc->i = (size_t)(comma - sc->s) + 1;
    else
        resync(sc);
    return false;
}

/* An unquoted value runs to the next ';' or ',' as in Appendix B, trailing whitespace dropped. */
static bool value(struct scan *sc, struct pval *v)
{
    if (cur(sc) == '"') {
        if (!quoted(sc, v))
            return false;
        rest(sc);
        return true;
    }
    size_t start = sc->i;
    rest(sc);
    size_t end = sc->i;
    while (end > start && is_ows(sc->s[end - 1]))
        end--;
    *v = (struct pval){sc->s + start, end - start, false};
    return true;
}

/* The next byte of v with quoted-pair escapes undone, or -1 at its end. */
static int vnext(const struct pval *v, size_t *k)
{
    if (*k >= v->n)
        return -1;
    if (v->quoted && v->p[*k] == '\\' && *k + 1 < v->n)
        (*k)++;
    return (unsigned char)v->p[(*k)++];
}

static bool veq(const struct pval *v, const char *lit)
{
    size_t k = 0;
    for (; *lit; lit++)
        if (lower(vnext(v, &k)) != *lit)
            return false;
    return vnext(v, &k) < 0;
}

static const struct {
    const char *name;
    unsigned bit;
} rel_names[] = {
    {"preload", PG_LINK_REL_PRELOAD},       {"modulepreload", PG_LINK_REL_MODULEPRELOAD},
    {"preconnect", PG_LINK_REL_PRECONNECT}, {"dns-prefetch", PG_LINK_REL_DNS_PREFETCH},
    {"prefetch", PG_LINK_REL_PREFETCH},
};

#define REL_WORD_MAX 16 /* longer than every name above: such a word matches none */

static unsigned rel_bit(const char *word, size_t n)
{
    for (size_t r = 0; r < sizeof rel_names / sizeof rel_names[0]; r++)
        if (strlen(rel_names[r].name) == n && memcmp(rel_names[r].name, word, n) == 0)
            return rel_names[r].bit;
    return 0;
}

/* Streams over the relation types, one word at a time, so a long rel list needs no copy of its
 * own and each byte is looked at once. */
static unsigned rels_of(const struct pval *v)
{
    char word[REL_WORD_MAX];
    size_t k = 0, at = 0;
    bool fits = true;
    unsigned rels = 0;
    for (;;) {
        int c = vnext(v, &k);
        if (c < 0 || is_ows(c)) {
            if (fits && at > 0)
                rels |= rel_bit(word, at);
            if (c < 0)
                return rels;
            at = 0;
            fits = true;
        } else if (at < sizeof word) {
            word[at++] = (char)lower(c);
        } else {
            fits = false;
        }
    }
}

static enum pg_link_as as_of(const struct pval *v)
{
    if (v->n == 0)
        return PG_LINK_AS_NONE;
    for (int a = PG_LINK_AS_STYLE; a < PG_LINK_AS_OTHER; a++)
        if (veq(v, as_names[a]))
            return (enum pg_link_as)a;
    return PG_LINK_AS_OTHER;
}

static bool name_is(const char *name, size_t n, const char *lit)
{
    size_t k = 0;
    while (k < n && lit[k] && lower((unsigned char)name[k]) == lit[k])
        k++;
    return k == n && !lit[k];
}

static void apply(struct pg_link *l, const char *name, size_t n, const struct pval *v,
                  struct seen *seen, bool *anchored)
{
    if (name_is(name, n, "rel") && !seen->rel) {
        seen->rel = true;
        l->rels = rels_of(v);
    } else if (name_is(name, n, "as") && !seen->as) {
        seen->as = true;
        l->as = as_of(v);
    } else if (name_is(name, n, "anchor") && !seen->anchor) {
        seen->anchor = true;
        *anchored = v->n > 0;
    } else if (name_is(name, n, "nopush")) {
        l->nopush = true;
    }
}

/* Parses one parameter after its ';'; false when what follows is not a parameter. */
static bool param(struct scan *sc, struct pg_link *l, struct seen *seen, bool *anchored)
{
    size_t start = sc->i;
    while (is_tchar(cur(sc)))
        sc->i++;
    if (sc->i == start)
        return false;
    size_t n = sc->i - start;
    struct pval v = {sc->s + sc->i, 0, false};
    ows(sc);
    if (cur(sc) == '=') {
        sc->i++;
        ows(sc);
        if (!value(sc, &v))
            return false;
    } else {
        rest(sc);
    }
    apply(l, sc->s + start, n, &v, seen, anchored);
    return true;
}

/* Consumes the parameters and the comma ending the link-value; false when malformed. *end is
 * where the link-value's text ends (before trailing whitespace and the comma). */
static bool params(struct scan *sc, struct pg_link *l, bool *anchored, size_t *end)
{
    struct seen seen = {false, false, false};
    for (;;) {
        *end = sc->i;
        ows(sc);
        int c = cur(sc);
        if (c < 0)
            return true;
        if (c == ',') {
            sc->i++;
            return true;
        }
        if (c != ';')
            return false;
        sc->i++;
        ows(sc);
        c = cur(sc);
        /* Empty parameters (";;", a trailing ';') are tolerated. */
        if (c < 0 || c == ',' || c == ';')
            continue;
        if (!param(sc, l, &seen, anchored))
            return false;
    }
}

/* Consumes one list element; true when it is a link to return. */
static bool element(struct scan *sc, struct pg_link *l)
{
    *l = (struct pg_link){NULL, 0, NULL, 0, 0, false, PG_LINK_AS_NONE};
    ows(sc);
    size_t start = sc->i;
    int c = cur(sc);
    if (c == ',')
        sc->i++;
    if (c != '<') {
        if (c >= 0 && c != ',')
            resync(sc);
        return false;
    }
    if (!target(sc, l))
        return false;
    bool anchored = false;
    size_t end;
    if (!params(sc, l, &anchored, &end)) {
        resync(sc);
        return false;
    }
    while (end > start && is_ows(sc->s[end - 1]))
        end--;
    l->text = sc->s + start;
    l->text_len = end - start;
    return !anchored;
}

static size_t find_last_gt(const char *s, size_t len)
{
    for (size_t k = len; k > 0; k--)
        if (s[k - 1] == '>')
            return k - 1;
    return 0;
}

size_t pg_link_parse(const char *value, size_t len, struct pg_link *out, size_t cap)
{
    if (!value || len > PG_LINK_MAX_FIELD_LEN)
        return 0;
    struct scan sc = {value, len, 0, find_last_gt(value, len)};
    size_t n = 0;
    while (n < cap && sc.i < len) {
        struct pg_link l;
        if (element(&sc, &l))
            out[n++] = l;
    }
    return n;
}

const char *pg_link_as_name(enum pg_link_as as)
{
    if ((unsigned)as > PG_LINK_AS_OTHER)
        return "other";
    return as_names[as];
}
