/* RFC 3986 §5 reference resolution into a caller buffer, and the proxy's same-origin test. */
#include "pushgate/url.h"

#include <stdbool.h>
#include <string.h>

struct span {
    const char *p;
    size_t n;
};

/* The five components of RFC 3986 Appendix B, each with whether it is defined at all, since
 * "http://a/b?" and "http://a/b" differ. */
struct uri {
    struct span scheme, auth, path, query, frag;
    bool has_scheme, has_auth, has_query, has_frag;
};

/* remove_dot_segments input: merge() yields two pieces, read in place instead of copied. */
struct pin {
    struct span a, b;
    size_t i;
};

/* Output that records overflow instead of truncating; one byte is always kept for the NUL.
 *
 * remove_dot_segments may need more room on the way than its result takes ("a/../b"), so while
 * it runs, segments that find no room are counted rather than failing at once: spill whole
 * segments past the stored bytes, after a last stored one cut short when `cut`. Pops remove
 * them first; only those still there at the end make the result too long. A segment that
 * survives to the end was written where it ends up, so when the result fits, it was stored. */
struct out {
    char *p;
    size_t cap, len;
    bool over;
    size_t spill;
    bool cut;
};

struct host {
    struct span name;
    long port; /* -1 when absent and the scheme has no default */
};

static const struct span empty = {"", 0};

static bool uri_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"<>\\^`{|}", c);
}

static bool clean(const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!uri_byte((unsigned char)s[k]))
            return false;
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool ieq(struct span a, struct span b)
{
    if (a.n != b.n)
        return false;
    for (size_t k = 0; k < a.n; k++)
        if (lower(a.p[k]) != lower(b.p[k]))
            return false;
    return true;
}

static struct span cstr(const char *s)
{
    return (struct span){s, strlen(s)};
}

static bool scheme_ok(struct span s)
{
    if (s.n == 0 || !is_alpha(s.p[0]))
        return false;
    for (size_t k = 1; k < s.n; k++)
        if (!is_alpha(s.p[k]) && !is_digit(s.p[k]) && !(s.p[k] && strchr("+-.", s.p[k])))
            return false;
    return true;
}

/* Index of the first byte at or after i that is in stops, or n. */
static size_t upto(const char *s, size_t n, size_t i, const char *stops)
{
    while (i < n && !strchr(stops, s[i]))
        i++;
    return i;
}

/* Splits as RFC 3986 Appendix B's regular expression does, but a ':' before any '/', '?' or
 * '#' must end a valid scheme: otherwise the reference is not a URI-reference at all. */
static bool split(const char *s, size_t n, struct uri *u)
{
    memset(u, 0, sizeof *u);
    size_t i = upto(s, n, 0, ":/?#"), j;
    if (i < n && s[i] == ':') {
        u->scheme = (struct span){s, i};
        if (!scheme_ok(u->scheme))
            return false;
        u->has_scheme = true;
        i++;
    } else {
        i = 0;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        j = upto(s, n, i + 2, "/?#");
        u->auth = (struct span){s + i + 2, j - i - 2};
        u->has_auth = true;
        i = j;
    }
    j = upto(s, n, i, "?#");
    u->path = (struct span){s + i, j - i};
    i = j;
    if (i < n && s[i] == '?') {
        j = upto(s, n, i + 1, "#");
        u->query = (struct span){s + i + 1, j - i - 1};
        u->has_query = true;
        i = j;
    }
    if (i < n) {
        u->frag = (struct span){s + i + 1, n - i - 1};
        u->has_frag = true;
    }
    return true;
}

static void add(struct out *o, const char *s, size_t n)
{
    if (n == 0 || o->over)
        return;
    if (n >= o->cap - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void addc(struct out *o, char c)
{
    add(o, &c, 1);
}

static int fail(struct out *o, int rv)
{
    if (o->cap > 0)
        o->p[0] = '\0';
    return rv;
}

static int finish(struct out *o, size_t *out_len)
{
    if (o->over || o->len >= o->cap)
        return fail(o, PG_ERR_TOO_LONG);
    o->p[o->len] = '\0';
    if (out_len)
        *out_len = o->len;
    return PG_OK;
}

static size_t left(const struct pin *in)
{
    return in->a.n + in->b.n - in->i;
}

static int peek(const struct pin *in, size_t k)
{
    size_t j = in->i + k;
    if (j < in->a.n)
        return (unsigned char)in->a.p[j];
    j -= in->a.n;
    return j < in->b.n ? (unsigned char)in->b.p[j] : -1;
}

/* Length of the dot at offset k of the input: 1 for ".", 3 for "%2e" or "%2E" (RFC 3986
 * §2.3, §6.2.2.2: a percent-encoded unreserved character is that character), else 0. */
static size_t dot_at(const struct pin *in, size_t k)
{
    if (peek(in, k) == '.')
        return 1;
    if (peek(in, k) == '%' && peek(in, k + 1) == '2' &&
        (peek(in, k + 2) == 'e' || peek(in, k + 2) == 'E'))
        return 3;
    return 0;
}

/* Whether the input starts with pat, where each '.' of pat also matches "%2e" or "%2E"; when it
 * does, *bytes is the length of the input matched. */
static bool starts(const struct pin *in, const char *pat, size_t *bytes)
{
    size_t k = 0;
    for (size_t j = 0; pat[j]; j++) {
        size_t d = 1;
        if (pat[j] == '.')
            d = dot_at(in, k);
        else if (peek(in, k) != (unsigned char)pat[j])
            d = 0;
        if (d == 0)
            return false;
        k += d;
    }
    *bytes = k;
    return true;
}

/* Drops the output's last segment and the '/' before it; never below start. */
static void pop(struct out *o, size_t start)
{
    if (o->spill > 0) {
        o->spill--;
        return;
    }
    o->cut = false;
    while (o->len > start && o->p[--o->len] != '/')
        ;
}

/* Moves one segment to the output, or as much of it as fits (see struct out). */
static void segment(struct out *o, struct pin *in)
{
    bool stored = !o->over && o->spill == 0 && !o->cut && o->len + 1 < o->cap;
    if (!stored)
        o->spill++;
    do {
        if (stored && o->len + 1 < o->cap)
            o->p[o->len++] = (char)peek(in, 0);
        else if (stored)
            o->cut = true;
        in->i++;
    } while (left(in) > 0 && peek(in, 0) != '/');
}

static void slash(struct out *o)
{
    struct pin in = {{"/", 1}, empty, 0};
    segment(o, &in);
}

/* RFC 3986 §5.2.4, step by step; the output buffer is the algorithm's output buffer. A dot
 * may be percent-encoded (see dot_at), so that a Link target and a request path spelling the
 * same resource both come out as the same path. */
static void remove_dots(struct out *o, struct pin *in)
{
    size_t start = o->len;
    while (left(in) > 0) {
        size_t n = left(in), k;
        if (starts(in, "../", &k) || starts(in, "./", &k)) {
            in->i += k;
        } else if (starts(in, "/./", &k)) {
            in->i += k - 1;
        } else if (starts(in, "/.", &k) && k == n) {
            slash(o);
            break;
        } else if (starts(in, "/../", &k)) {
            in->i += k - 1;
            pop(o, start);
        } else if (starts(in, "/..", &k) && k == n) {
            pop(o, start);
            slash(o);
            break;
        } else if ((starts(in, ".", &k) && k == n) || (starts(in, "..", &k) && k == n)) {
            break;
        } else {
            segment(o, in);
        }
    }
    if (o->spill > 0 || o->cut)
        o->over = true;
    o->spill = 0;
    o->cut = false;
}

/* RFC 3986 §5.2.3: everything of the base path up to its last '/', then the reference path. */
static void merge(const struct uri *b, const struct uri *r, struct pin *in)
{
    size_t k = b->path.n;
    while (k > 0 && b->path.p[k - 1] != '/')
        k--;
    in->a = b->has_auth && b->path.n == 0 ? (struct span){"/", 1} : (struct span){b->path.p, k};
    in->b = r->path;
}

/* RFC 3986 §5.2.2 (strict) into t, except the path, which is left in `in` as the input of
 * remove_dot_segments. Returns false when the RFC keeps the base path as is. */
static bool transform(const struct uri *b, const struct uri *r, struct uri *t, struct pin *in)
{
    *in = (struct pin){empty, empty, 0};
    *t = *r;
    if (r->has_scheme) {
        in->b = r->path;
        return true;
    }
    t->scheme = b->scheme;
    t->has_scheme = b->has_scheme;
    if (r->has_auth) {
        in->b = r->path;
        return true;
    }
    t->auth = b->auth;
    t->has_auth = b->has_auth;
    if (r->path.n == 0) {
        in->b = b->path;
        if (!r->has_query) {
            t->query = b->query;
            t->has_query = b->has_query;
        }
        return false;
    }
    if (r->path.p[0] == '/')
        in->b = r->path;
    else
        merge(b, r, in);
    return true;
}

static void put_path(struct out *o, struct pin *in, bool dots)
{
    if (dots) {
        remove_dots(o, in);
    } else {
        add(o, in->a.p, in->a.n);
        add(o, in->b.p, in->b.n);
    }
}

/* RFC 3986 §5.3 component recomposition. */
static void compose(struct out *o, const struct uri *t, struct pin *in, bool dots)
{
    add(o, t->scheme.p, t->scheme.n);
    addc(o, ':');
    if (t->has_auth) {
        add(o, "//", 2);
        add(o, t->auth.p, t->auth.n);
    }
    put_path(o, in, dots);
    if (t->has_query) {
        addc(o, '?');
        add(o, t->query.p, t->query.n);
    }
    if (t->has_frag) {
        addc(o, '#');
        add(o, t->frag.p, t->frag.n);
    }
}

int pg_url_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len, char *out,
                   size_t out_cap, size_t *out_len)
{
    struct out o = {out, out_cap, 0, false, 0, false};
    struct uri b, r, t;
    struct pin in;
    if (!clean(base, base_len) || !clean(ref, ref_len))
        return fail(&o, PG_ERR_INVALID);
    if (!split(base, base_len, &b) || !b.has_scheme || !split(ref, ref_len, &r))
        return fail(&o, PG_ERR_INVALID);
    bool dots = transform(&b, &r, &t, &in);
    compose(&o, &t, &in, dots);
    return finish(&o, out_len);
}

int pg_url_remove_dot_segments(const char *path, size_t len, char *out, size_t out_cap,
                               size_t *out_len)
{
    struct out o = {out, out_cap, 0, false, 0, false};
    if (len == 0 || path[0] != '/')
        return fail(&o, PG_ERR_INVALID);
    const char *query = memchr(path, '?', len);
    size_t path_len = query ? (size_t)(query - path) : len;
    struct pin in = {{path, path_len}, empty, 0};
    /* Input starting with '/' leaves output starting with '/': never empty, never longer. */
    remove_dots(&o, &in);
    add(&o, path + path_len, len - path_len);
    return finish(&o, out_len);
}

static long default_port(const char *scheme)
{
    if (ieq(cstr(scheme), cstr("http")))
        return 80;
    if (ieq(cstr(scheme), cstr("https")))
        return 443;
    return -1;
}

/* An empty port means the default (RFC 3986 §6.2.3); leading zeros do not change the number. */
static int parse_port(struct span s, long *port)
{
    if (s.n == 0)
        return PG_OK;
    long v = 0;
    for (size_t k = 0; k < s.n; k++) {
        if (!is_digit(s.p[k]))
            return PG_ERR_INVALID;
        v = v * 10 + (s.p[k] - '0');
        if (v > 65535)
            return PG_ERR_INVALID;
    }
    *port = v;
    return PG_OK;
}

static bool has_userinfo(struct span a)
{
    return memchr(a.p, '@', a.n) != NULL;
}

/* An authority with userinfo has no host we compare (see same_origin). */
static int parse_host(struct span a, long dflt, struct host *h)
{
    if (has_userinfo(a))
        return PG_ERR_INVALID;
    size_t end = a.n;
    if (a.n > 0 && a.p[0] == '[') {
        const char *rb = memchr(a.p, ']', a.n);
        if (!rb)
            return PG_ERR_INVALID;
        end = (size_t)(rb - a.p) + 1;
    } else {
        end = upto(a.p, a.n, 0, ":");
    }
    if (end == 0 || (end < a.n && a.p[end] != ':'))
        return PG_ERR_INVALID;
    h->name = (struct span){a.p, end};
    h->port = dflt;
    return end < a.n ? parse_port((struct span){a.p + end + 1, a.n - end - 1}, &h->port) : PG_OK;
}

/* Writes the verdict on r to *origin on PG_OK. Userinfo makes a target cross-origin outright:
 * pushing with someone's credentials in the authority is never what the origin server asked
 * for. */
static int same_origin(const char *scheme, const char *authority, const struct uri *r,
                       enum pg_url_origin *origin)
{
    if (r->has_scheme && !ieq(r->scheme, cstr(scheme))) {
        *origin = PG_URL_OTHER_ORIGIN;
        return PG_OK;
    }
    if (!r->has_auth) {
        if (r->has_scheme)
            return PG_ERR_INVALID;
        *origin = PG_URL_SAME_ORIGIN;
        return PG_OK;
    }
    if (has_userinfo(r->auth)) {
        *origin = PG_URL_OTHER_ORIGIN;
        return PG_OK;
    }
    long dflt = default_port(scheme);
    struct host ours, theirs;
    if (parse_host(r->auth, dflt, &theirs) != PG_OK ||
        parse_host(cstr(authority), dflt, &ours) != PG_OK)
        return PG_ERR_INVALID;
    *origin = ieq(ours.name, theirs.name) && ours.port == theirs.port ? PG_URL_SAME_ORIGIN
                                                                      : PG_URL_OTHER_ORIGIN;
    return PG_OK;
}

/* The base path is split by hand: a :path of "//x" is a path, not an authority. */
static bool base_uri(const char *p, size_t n, struct uri *b)
{
    if (n == 0 || p[0] != '/' || !clean(p, n) || memchr(p, '#', n))
        return false;
    memset(b, 0, sizeof *b);
    size_t q = upto(p, n, 0, "?");
    b->path = (struct span){p, q};
    b->has_auth = true;
    if (q < n) {
        b->query = (struct span){p + q + 1, n - q - 1};
        b->has_query = true;
    }
    return true;
}

/* A verdict without a path: out is emptied all the same, so it never holds a stale one. */
static int verdict(struct out *o, enum pg_url_origin *origin, enum pg_url_origin v)
{
    *origin = v;
    return fail(o, PG_OK);
}

int pg_url_resolve_same_origin(const char *scheme, const char *authority, const char *base_path,
                               size_t base_path_len, const char *ref, size_t ref_len, char *out,
                               size_t out_cap, size_t *out_len, enum pg_url_origin *origin)
{
    struct out o = {out, out_cap, 0, false, 0, false};
    struct uri b, r, t;
    struct pin in;
    enum pg_url_origin v;
    if (!clean(ref, ref_len))
        return fail(&o, PG_ERR_INVALID);
    if (ref_len == 0 || ref[0] == '#')
        return verdict(&o, origin, PG_URL_SELF);
    if (!scheme || !authority || !base_uri(base_path, base_path_len, &b))
        return fail(&o, PG_ERR_INVALID);
    if (!split(ref, ref_len, &r))
        return fail(&o, PG_ERR_INVALID);
    int rv = same_origin(scheme, authority, &r, &v);
    if (rv != PG_OK)
        return fail(&o, rv);
    if (v != PG_URL_SAME_ORIGIN)
        return verdict(&o, origin, v);
    transform(&b, &r, &t, &in);
    /* Unlike §5.2.2, dots go from a kept base path too: the client's :path may carry them. */
    remove_dots(&o, &in);
    if (o.len == 0)
        addc(&o, '/');
    if (t.has_query) {
        addc(&o, '?');
        add(&o, t.query.p, t.query.n);
    }
    rv = finish(&o, out_len);
    if (rv == PG_OK)
        *origin = PG_URL_SAME_ORIGIN;
    return rv;
}
