/* Table tests for RFC 3986 §5 resolution, the same-origin rule and request-path dot-segment
 * removal. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/url.h"

#define RFC_BASE "http://a/b/c/d;p?q"

struct resolve_case {
    const char *base;
    const char *ref;
    int rv;
    const char *want; /* NULL when rv is not PG_OK */
};

static const struct resolve_case resolve_cases[] = {
    /* RFC 3986 §5.4.1 normal examples. */
    {RFC_BASE, "g:h", PG_OK, "g:h"},
    {RFC_BASE, "g", PG_OK, "http://a/b/c/g"},
    {RFC_BASE, "./g", PG_OK, "http://a/b/c/g"},
    {RFC_BASE, "g/", PG_OK, "http://a/b/c/g/"},
    {RFC_BASE, "/g", PG_OK, "http://a/g"},
    {RFC_BASE, "//g", PG_OK, "http://g"},
    {RFC_BASE, "?y", PG_OK, "http://a/b/c/d;p?y"},
    {RFC_BASE, "g?y", PG_OK, "http://a/b/c/g?y"},
    {RFC_BASE, "#s", PG_OK, "http://a/b/c/d;p?q#s"},
    {RFC_BASE, "g#s", PG_OK, "http://a/b/c/g#s"},
    {RFC_BASE, "g?y#s", PG_OK, "http://a/b/c/g?y#s"},
    {RFC_BASE, ";x", PG_OK, "http://a/b/c/;x"},
    {RFC_BASE, "g;x", PG_OK, "http://a/b/c/g;x"},
    {RFC_BASE, "g;x?y#s", PG_OK, "http://a/b/c/g;x?y#s"},
    {RFC_BASE, "", PG_OK, "http://a/b/c/d;p?q"},
    {RFC_BASE, ".", PG_OK, "http://a/b/c/"},
    {RFC_BASE, "./", PG_OK, "http://a/b/c/"},
    {RFC_BASE, "..", PG_OK, "http://a/b/"},
    {RFC_BASE, "../", PG_OK, "http://a/b/"},
    {RFC_BASE, "../g", PG_OK, "http://a/b/g"},
    {RFC_BASE, "../..", PG_OK, "http://a/"},
    {RFC_BASE, "../../", PG_OK, "http://a/"},
    {RFC_BASE, "../../g", PG_OK, "http://a/g"},

    /* RFC 3986 §5.4.2 abnormal examples (strict parser: "http:g" stays). */
    {RFC_BASE, "../../../g", PG_OK, "http://a/g"},
    {RFC_BASE, "../../../../g", PG_OK, "http://a/g"},
    {RFC_BASE, "/./g", PG_OK, "http://a/g"},
    {RFC_BASE, "/../g", PG_OK, "http://a/g"},
    {RFC_BASE, "g.", PG_OK, "http://a/b/c/g."},
    {RFC_BASE, ".g", PG_OK, "http://a/b/c/.g"},
    {RFC_BASE, "g..", PG_OK, "http://a/b/c/g.."},
    {RFC_BASE, "..g", PG_OK, "http://a/b/c/..g"},
    {RFC_BASE, "./../g", PG_OK, "http://a/b/g"},
    {RFC_BASE, "./g/.", PG_OK, "http://a/b/c/g/"},
    {RFC_BASE, "g/./h", PG_OK, "http://a/b/c/g/h"},
    {RFC_BASE, "g/../h", PG_OK, "http://a/b/c/h"},
    {RFC_BASE, "g;x=1/./y", PG_OK, "http://a/b/c/g;x=1/y"},
    {RFC_BASE, "g;x=1/../y", PG_OK, "http://a/b/c/y"},
    {RFC_BASE, "g?y/./x", PG_OK, "http://a/b/c/g?y/./x"},
    {RFC_BASE, "g?y/../x", PG_OK, "http://a/b/c/g?y/../x"},
    {RFC_BASE, "g#s/./x", PG_OK, "http://a/b/c/g#s/./x"},
    {RFC_BASE, "g#s/../x", PG_OK, "http://a/b/c/g#s/../x"},
    {RFC_BASE, "http:g", PG_OK, "http:g"},

    /* More of §5.2: absolute refs get their dots removed, query and fragment edge cases. */
    {RFC_BASE, "http://x/y/../z/./w", PG_OK, "http://x/z/w"},
    {RFC_BASE, "https://x", PG_OK, "https://x"},
    {RFC_BASE, "?", PG_OK, "http://a/b/c/d;p?"},
    {RFC_BASE, "#", PG_OK, "http://a/b/c/d;p?q#"},
    {RFC_BASE, "g?", PG_OK, "http://a/b/c/g?"},
    {RFC_BASE, "//g/x/../y?z#f", PG_OK, "http://g/y?z#f"},
    {RFC_BASE, "mailto:x@y", PG_OK, "mailto:x@y"},
    {"http://a", "g", PG_OK, "http://a/g"},
    {"http://a", "?x", PG_OK, "http://a?x"},
    {"http://a/b/c/d;p?q#frag", "", PG_OK, "http://a/b/c/d;p?q"},
    {"http://a/b/c/d;p?q#frag", "#t", PG_OK, "http://a/b/c/d;p?q#t"},
    {"http://a/./b/../c", "", PG_OK, "http://a/./b/../c"},
    {"http://a/./b/../c", "?y", PG_OK, "http://a/./b/../c?y"},
    {"http://a/./b/../c", "g", PG_OK, "http://a/g"},
    {"http://a/b/./c/d", "g", PG_OK, "http://a/b/c/g"},
    {"mailto:u@h", "x", PG_OK, "mailto:x"},
    {"urn:a:b", "#f", PG_OK, "urn:a:b#f"},
    {"HTTP://A/b", "c", PG_OK, "HTTP://A/c"},
    {"http://a/b/", "%41", PG_OK, "http://a/b/%41"},
    {"http://[::1]:8080/a/b", "../c", PG_OK, "http://[::1]:8080/c"},

    /* Percent-encoded dots are dots (RFC 3986 §6.2.2.2), as in request paths; no other
     * spelling is ("%2e%2e%2e", "%2eg", "%2e%2f", a query, a fragment, a kept base path). */
    {RFC_BASE, "%2e/g", PG_OK, "http://a/b/c/g"},
    {RFC_BASE, "%2E%2E/g", PG_OK, "http://a/b/g"},
    {RFC_BASE, ".%2e/%2E./g", PG_OK, "http://a/g"},
    {RFC_BASE, "g/%2e%2e/h", PG_OK, "http://a/b/c/h"},
    {RFC_BASE, "g/%2E", PG_OK, "http://a/b/c/g/"},
    {RFC_BASE, "%2e", PG_OK, "http://a/b/c/"},
    {RFC_BASE, "%2e%2e", PG_OK, "http://a/b/"},
    {RFC_BASE, "/%2e%2e/g", PG_OK, "http://a/g"},
    {RFC_BASE, "/%2e/g", PG_OK, "http://a/g"},
    {RFC_BASE, "http://x/y/%2e%2e/z/%2e/w", PG_OK, "http://x/z/w"},
    {RFC_BASE, "g:%2e%2e/h", PG_OK, "g:h"},
    {RFC_BASE, "g%2e", PG_OK, "http://a/b/c/g%2e"},
    {RFC_BASE, "%2eg", PG_OK, "http://a/b/c/%2eg"},
    {RFC_BASE, "%2e%2e%2e/g", PG_OK, "http://a/b/c/%2e%2e%2e/g"},
    {RFC_BASE, "%2e%2f/g", PG_OK, "http://a/b/c/%2e%2f/g"},
    {RFC_BASE, "%252e/g", PG_OK, "http://a/b/c/%252e/g"},
    {RFC_BASE, "%2e%2", PG_OK, "http://a/b/c/%2e%2"},
    {RFC_BASE, "%2", PG_OK, "http://a/b/c/%2"},
    {RFC_BASE, "g?y/%2e%2e/x", PG_OK, "http://a/b/c/g?y/%2e%2e/x"},
    {RFC_BASE, "g#s/%2e%2e/x", PG_OK, "http://a/b/c/g#s/%2e%2e/x"},
    {"http://a/%2e/b/%2e%2e/c", "", PG_OK, "http://a/%2e/b/%2e%2e/c"},
    {"http://a/%2e/b/%2e%2e/c", "g", PG_OK, "http://a/g"},

    /* Invalid inputs. */
    {"/b/c", "g", PG_ERR_INVALID, NULL},
    {"", "g", PG_ERR_INVALID, NULL},
    {"1http://a/b", "g", PG_ERR_INVALID, NULL},
    {":a/b", "g", PG_ERR_INVALID, NULL},
    {RFC_BASE, "1g:h", PG_ERR_INVALID, NULL},
    {RFC_BASE, ":h", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g h", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g\"", PG_ERR_INVALID, NULL},
    {RFC_BASE, "<g>", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g\\h", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g^", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g`", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g{}", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g|", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g\t", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g\x7f", PG_ERR_INVALID, NULL},
    {RFC_BASE, "g\xc3\xa9", PG_ERR_INVALID, NULL},
    {"http://a/b c", "g", PG_ERR_INVALID, NULL},
    {"http://a/\x01", "g", PG_ERR_INVALID, NULL},
};

static void test_resolve(void)
{
    for (size_t k = 0; k < PG_ARRAY_LEN(resolve_cases); k++) {
        const struct resolve_case *c = &resolve_cases[k];
        char out[256];
        size_t len = 12345;
        memset(out, 'X', sizeof out);
        int rv =
            pg_url_resolve(c->base, strlen(c->base), c->ref, strlen(c->ref), out, sizeof out, &len);
        CHECK(rv == c->rv, "resolve %zu [%s] + [%s]: rv=%d want %d", k, c->base, c->ref, rv, c->rv);
        if (rv != PG_OK || c->rv != PG_OK) {
            CHECK(rv == PG_OK || out[0] == '\0', "resolve %zu: out not emptied", k);
            continue;
        }
        CHECK(strcmp(out, c->want) == 0, "resolve %zu [%s]: got '%s' want '%s'", k, c->ref, out,
              c->want);
        CHECK(len == strlen(out), "resolve %zu: len=%zu", k, len);
    }
}

/* pg_url_resolve_same_origin with its two results folded into one, as the tables below
 * expect: the verdict (an enum pg_url_origin, never negative) when it returns PG_OK, otherwise
 * the negative error, after checking that the error left *origin alone. */
static int resolve_origin(const char *scheme, const char *auth, const char *base, size_t base_len,
                          const char *ref, size_t ref_len, char *out, size_t out_cap,
                          size_t *out_len)
{
    const enum pg_url_origin unset = (enum pg_url_origin)77;
    enum pg_url_origin origin = unset;
    int rv = pg_url_resolve_same_origin(scheme, auth, base, base_len, ref, ref_len, out, out_cap,
                                        out_len, &origin);
    if (rv != PG_OK) {
        CHECK(rv == PG_ERR_INVALID || rv == PG_ERR_TOO_LONG, "[%.*s]: rv=%d", (int)ref_len, ref,
              rv);
        CHECK(origin == unset, "[%.*s]: rv=%d but verdict %d written", (int)ref_len, ref, rv,
              (int)origin);
        return rv;
    }
    CHECK(origin == PG_URL_SAME_ORIGIN || origin == PG_URL_OTHER_ORIGIN || origin == PG_URL_SELF,
          "[%.*s]: verdict %d", (int)ref_len, ref, (int)origin);
    return (int)origin;
}

/* Every same-origin case resolves against https://example.com/dir/sub/page?x=1 unless it
 * names its own scheme, authority or base path. */
struct origin_case {
    const char *ref;
    int rv; /* what resolve_origin returns: the verdict, or the error */
    const char *want;
    const char *scheme;    /* NULL: "https" */
    const char *authority; /* NULL: "example.com" */
    const char *base;      /* NULL: "/dir/sub/page?x=1" */
};

static const struct origin_case origin_cases[] = {
    /* Relative references. */
    {"a.js", PG_URL_SAME_ORIGIN, "/dir/sub/a.js", NULL, NULL, NULL},
    {"./a.js", PG_URL_SAME_ORIGIN, "/dir/sub/a.js", NULL, NULL, NULL},
    {"../a.js", PG_URL_SAME_ORIGIN, "/dir/a.js", NULL, NULL, NULL},
    {"../../a.js", PG_URL_SAME_ORIGIN, "/a.js", NULL, NULL, NULL},
    {"../../../../a.js", PG_URL_SAME_ORIGIN, "/a.js", NULL, NULL, NULL},
    {"/a.js", PG_URL_SAME_ORIGIN, "/a.js", NULL, NULL, NULL},
    {"/x/../a.js", PG_URL_SAME_ORIGIN, "/a.js", NULL, NULL, NULL},
    {"/x/./y/.././a.js", PG_URL_SAME_ORIGIN, "/x/a.js", NULL, NULL, NULL},
    {"a/b/../c/./d", PG_URL_SAME_ORIGIN, "/dir/sub/a/c/d", NULL, NULL, NULL},
    {".", PG_URL_SAME_ORIGIN, "/dir/sub/", NULL, NULL, NULL},
    {"./", PG_URL_SAME_ORIGIN, "/dir/sub/", NULL, NULL, NULL},
    {"..", PG_URL_SAME_ORIGIN, "/dir/", NULL, NULL, NULL},
    {"../", PG_URL_SAME_ORIGIN, "/dir/", NULL, NULL, NULL},
    {"../..", PG_URL_SAME_ORIGIN, "/", NULL, NULL, NULL},
    {"../../..", PG_URL_SAME_ORIGIN, "/", NULL, NULL, NULL},
    {"/", PG_URL_SAME_ORIGIN, "/", NULL, NULL, NULL},
    {"/..", PG_URL_SAME_ORIGIN, "/", NULL, NULL, NULL},
    {"a.js?v=1", PG_URL_SAME_ORIGIN, "/dir/sub/a.js?v=1", NULL, NULL, NULL},
    {"a.js?", PG_URL_SAME_ORIGIN, "/dir/sub/a.js?", NULL, NULL, NULL},
    {"a.js?v=/../x", PG_URL_SAME_ORIGIN, "/dir/sub/a.js?v=/../x", NULL, NULL, NULL},
    {"a.js#frag", PG_URL_SAME_ORIGIN, "/dir/sub/a.js", NULL, NULL, NULL},
    {"a.js?v=1#frag", PG_URL_SAME_ORIGIN, "/dir/sub/a.js?v=1", NULL, NULL, NULL},
    {"../up.js?v=1#f", PG_URL_SAME_ORIGIN, "/dir/up.js?v=1", NULL, NULL, NULL},
    {"%7Euser/a%20b", PG_URL_SAME_ORIGIN, "/dir/sub/%7Euser/a%20b", NULL, NULL, NULL},
    {"a:b", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"./a:b", PG_URL_SAME_ORIGIN, "/dir/sub/a:b", NULL, NULL, NULL},

    /* Percent-encoded dots in Link targets go as a request path's do (pg_url_remove_dot_segments):
     * a pushed path and the same path requested by a client name the same resource. */
    {"/a/%2e%2e/b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"/a/%2E%2E/b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"/a/%2e%2E/b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"/a/.%2e/b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"/a/%2E./b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"/a/%2e/b", PG_URL_SAME_ORIGIN, "/a/b", NULL, NULL, NULL},
    {"/a/%2E/b", PG_URL_SAME_ORIGIN, "/a/b", NULL, NULL, NULL},
    {"/a/%2e", PG_URL_SAME_ORIGIN, "/a/", NULL, NULL, NULL},
    {"/a/%2e%2e", PG_URL_SAME_ORIGIN, "/", NULL, NULL, NULL},
    {"/%2e%2e/%2e%2e/etc/passwd", PG_URL_SAME_ORIGIN, "/etc/passwd", NULL, NULL, NULL},
    {"%2e/a.js", PG_URL_SAME_ORIGIN, "/dir/sub/a.js", NULL, NULL, NULL},
    {"%2E%2E/a.js", PG_URL_SAME_ORIGIN, "/dir/a.js", NULL, NULL, NULL},
    {"%2e%2e/%2e%2e/%2e%2e/a.js", PG_URL_SAME_ORIGIN, "/a.js", NULL, NULL, NULL},
    {"%2e", PG_URL_SAME_ORIGIN, "/dir/sub/", NULL, NULL, NULL},
    {"%2e%2e", PG_URL_SAME_ORIGIN, "/dir/", NULL, NULL, NULL},
    {"//example.com/a/%2e%2e/b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"https://example.com/%2e%2e/x?q#f", PG_URL_SAME_ORIGIN, "/x?q", NULL, NULL, NULL},
    {"/a/%2e%2e%2e/b", PG_URL_SAME_ORIGIN, "/a/%2e%2e%2e/b", NULL, NULL, NULL},
    {"/a/%2e%2eb", PG_URL_SAME_ORIGIN, "/a/%2e%2eb", NULL, NULL, NULL},
    {"/a/%2e%2f/b", PG_URL_SAME_ORIGIN, "/a/%2e%2f/b", NULL, NULL, NULL},
    {"/a/%252e%252e/b", PG_URL_SAME_ORIGIN, "/a/%252e%252e/b", NULL, NULL, NULL},
    {"/a/%2/b", PG_URL_SAME_ORIGIN, "/a/%2/b", NULL, NULL, NULL},
    {"a.js?v=/%2e%2e/x", PG_URL_SAME_ORIGIN, "/dir/sub/a.js?v=/%2e%2e/x", NULL, NULL, NULL},
    {"a.js#/%2e%2e/x", PG_URL_SAME_ORIGIN, "/dir/sub/a.js", NULL, NULL, NULL},

    /* Query-only, fragment-only and empty references. */
    {"?a=b", PG_URL_SAME_ORIGIN, "/dir/sub/page?a=b", NULL, NULL, NULL},
    {"?", PG_URL_SAME_ORIGIN, "/dir/sub/page?", NULL, NULL, NULL},
    {"?a=b#f", PG_URL_SAME_ORIGIN, "/dir/sub/page?a=b", NULL, NULL, NULL},
    {"#f", PG_URL_SELF, NULL, NULL, NULL, NULL},
    {"#", PG_URL_SELF, NULL, NULL, NULL, NULL},
    {"", PG_URL_SELF, NULL, NULL, NULL, NULL},
    {"page?x=1", PG_URL_SAME_ORIGIN, "/dir/sub/page?x=1", NULL, NULL, NULL},

    /* Network-path and absolute references: same origin or not. */
    {"//example.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"//example.com", PG_URL_SAME_ORIGIN, "/", NULL, NULL, NULL},
    {"//example.com?q", PG_URL_SAME_ORIGIN, "/?q", NULL, NULL, NULL},
    {"//example.com/a/../b", PG_URL_SAME_ORIGIN, "/b", NULL, NULL, NULL},
    {"//other.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"//EXAMPLE.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"//example.com.evil/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"//example.co/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"https://example.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"https://example.com:443/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"https://example.com:0443/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"https://example.com:/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"https://example.com:8443/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"https://example.com:80/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"http://example.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"HTTPS://example.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, NULL, NULL},
    {"HtTpS://ExAmPlE.CoM/a?Q#F", PG_URL_SAME_ORIGIN, "/a?Q", NULL, NULL, NULL},
    {"https://user@example.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"https://user:pw@example.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"//@example.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"data:text/css,x", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"javascript:alert(1)", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"ftp://example.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"https:x", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https:/x", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https:", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"http:x", PG_ERR_INVALID, NULL, "http", NULL, NULL},
    {"http:x", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"https:///a", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"///a", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"//:443/a", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://:443/a", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"/.//x", PG_URL_SAME_ORIGIN, "//x", NULL, NULL, NULL},
    {"/a//b/../c", PG_URL_SAME_ORIGIN, "/a//c", NULL, NULL, NULL},
    {"https://example.com:99999x/", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://example.com:65536/", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://example.com:443x/", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://example.com:-1/", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://example.com:443:443/", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://example.com:99999999999999999999/", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"https://example.com:65535/", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"1https://example.com/a", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {":a", PG_ERR_INVALID, NULL, NULL, NULL, NULL},

    /* Bytes not allowed in a URI, in the reference. */
    {"a b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\"b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a<b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a>b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\\b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a^b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a`b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a{b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a|b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a}b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\tb", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\rb", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\nb", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\x1f", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\x7f", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a\x80", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"\xc3\xa9", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"\xff", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {" ", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"#a b", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a#b c", PG_ERR_INVALID, NULL, NULL, NULL, NULL},
    {"a?b c", PG_ERR_INVALID, NULL, NULL, NULL, NULL},

    /* Base paths. */
    {"g", PG_URL_SAME_ORIGIN, "/a/g", NULL, NULL, "/a/./b/../c"},
    {"?y", PG_URL_SAME_ORIGIN, "/a/c?y", NULL, NULL, "/a/./b/../c"},
    {"//example.com/z", PG_URL_SAME_ORIGIN, "/z", NULL, NULL, "/a/../../b"},
    {"g", PG_URL_SAME_ORIGIN, "/g", NULL, NULL, "/"},
    {"g", PG_URL_SAME_ORIGIN, "/g", NULL, NULL, "/?q"},
    {"?y", PG_URL_SAME_ORIGIN, "/?y", NULL, NULL, "/"},
    {"g", PG_URL_SAME_ORIGIN, "/dir/g", NULL, NULL, "/dir/?q=/x/y"},
    {"?y", PG_URL_SAME_ORIGIN, "/dir/?y", NULL, NULL, "/dir/?q=/x/y"},
    {"g", PG_URL_SAME_ORIGIN, "//x/g", NULL, NULL, "//x/y"},
    {"g", PG_URL_SAME_ORIGIN, "/g", NULL, NULL, "/x/../../f"},
    {"g", PG_URL_SAME_ORIGIN, "/a/g", NULL, NULL, "/a/%2e/b/%2E%2E/c"},
    {"?y", PG_URL_SAME_ORIGIN, "/a/c?y", NULL, NULL, "/a/%2e/b/%2e%2e/c"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "dir/page"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, ""},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "*"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "https://example.com/a"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "/a#f"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "/a?x#f"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "/a b"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "/a\x80"},
    {"g", PG_ERR_INVALID, NULL, NULL, NULL, "/a|b"},
    {"#f", PG_URL_SELF, NULL, NULL, NULL, "/a"},

    /* Authorities with a port, and http with its default port 80. */
    {"/a", PG_URL_SAME_ORIGIN, "/a", NULL, "example.com:8443", NULL},
    {"//example.com:8443/a", PG_URL_SAME_ORIGIN, "/a", NULL, "example.com:8443", NULL},
    {"https://example.com:8443/a", PG_URL_SAME_ORIGIN, "/a", NULL, "example.com:8443", NULL},
    {"//example.com/a", PG_URL_OTHER_ORIGIN, NULL, NULL, "example.com:8443", NULL},
    {"https://example.com:443/a", PG_URL_OTHER_ORIGIN, NULL, NULL, "example.com:8443", NULL},
    {"//example.com:443/a", PG_URL_SAME_ORIGIN, "/a", NULL, "example.com:443", NULL},
    {"//example.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, "example.com:443", NULL},
    {"//example.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, "EXAMPLE.COM", NULL},
    {"//example.com/a", PG_URL_SAME_ORIGIN, "/a", NULL, "example.com:", NULL},
    {"http://example.com/a", PG_URL_SAME_ORIGIN, "/a", "http", NULL, NULL},
    {"http://example.com:80/a", PG_URL_SAME_ORIGIN, "/a", "http", NULL, NULL},
    {"http://example.com:/a", PG_URL_SAME_ORIGIN, "/a", "http", NULL, NULL},
    {"http://example.com:443/a", PG_URL_OTHER_ORIGIN, NULL, "http", NULL, NULL},
    {"https://example.com/a", PG_URL_OTHER_ORIGIN, NULL, "http", NULL, NULL},
    {"//example.com:80/a", PG_URL_SAME_ORIGIN, "/a", "http", NULL, NULL},
    {"//example.com:80/a", PG_URL_OTHER_ORIGIN, NULL, NULL, NULL, NULL},
    {"http://example.com/a", PG_URL_SAME_ORIGIN, "/a", "HTTP", NULL, NULL},
    {"//example.com:8080/a", PG_URL_SAME_ORIGIN, "/a", "http", "example.com:8080", NULL},
    {"//[::1]/a", PG_URL_SAME_ORIGIN, "/a", NULL, "[::1]", NULL},
    {"//[::1]:443/a", PG_URL_SAME_ORIGIN, "/a", NULL, "[::1]", NULL},
    {"//[::2]/a", PG_URL_OTHER_ORIGIN, NULL, NULL, "[::1]", NULL},
    {"//[::1/a", PG_ERR_INVALID, NULL, NULL, "[::1]", NULL},
    {"//[::1]x/a", PG_ERR_INVALID, NULL, NULL, "[::1]", NULL},
};

static void test_same_origin(void)
{
    for (size_t k = 0; k < PG_ARRAY_LEN(origin_cases); k++) {
        const struct origin_case *c = &origin_cases[k];
        const char *scheme = c->scheme ? c->scheme : "https";
        const char *auth = c->authority ? c->authority : "example.com";
        const char *base = c->base ? c->base : "/dir/sub/page?x=1";
        char out[256];
        size_t len = 12345;
        memset(out, 'X', sizeof out);
        int rv = resolve_origin(scheme, auth, base, strlen(base), c->ref, strlen(c->ref), out,
                                sizeof out, &len);
        CHECK(rv == c->rv, "origin %zu [%s] on %s://%s%s: rv=%d want %d", k, c->ref, scheme, auth,
              base, rv, c->rv);
        if (rv != PG_URL_SAME_ORIGIN || c->rv != PG_URL_SAME_ORIGIN) {
            CHECK(rv == PG_URL_SAME_ORIGIN || out[0] == '\0', "origin %zu: out not emptied", k);
            continue;
        }
        CHECK(strcmp(out, c->want) == 0, "origin %zu [%s]: got '%s' want '%s'", k, c->ref, out,
              c->want);
        CHECK(len == strlen(out), "origin %zu: len=%zu", k, len);
    }
}

/* Calls resolve_origin on the default base with room for `cap` bytes, and checks
 * that nothing past them was written. */
static int origin_cap(const char *ref, size_t cap, char *out, size_t *out_len)
{
    char buf[300];
    const char *base = "/dir/sub/page?x=1";
    memset(buf, 'X', sizeof buf);
    int rv = resolve_origin("https", "example.com", base, strlen(base), ref, strlen(ref), buf, cap,
                            out_len);
    for (size_t k = cap; k < sizeof buf; k++)
        CHECK(buf[k] == 'X', "[%s] cap %zu: byte %zu written", ref, cap, k);
    memcpy(out, buf, cap < sizeof buf ? cap : sizeof buf);
    return rv;
}

struct cap_case {
    const char *ref;
    const char *want; /* the result when there is room */
};

static const struct cap_case cap_cases[] = {
    {"a.js", "/dir/sub/a.js"},
    {"a.js?v=1#f", "/dir/sub/a.js?v=1"},
    {"?a=b", "/dir/sub/page?a=b"},
    {"../../x", "/x"},
    {"/", "/"},
    {"//example.com", "/"},
    {"?", "/dir/sub/page?"},
    {"https://example.com/long/path/to/a/resource.css?version=12345",
     "/long/path/to/a/resource.css?version=12345"},
    {"verylongsegmentname/../x", "/dir/sub/x"},
    {"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/../b", "/b"},
    {"verylongsegmentname/%2e%2e/x", "/dir/sub/x"},
    {"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/%2E%2e/b/%2e", "/b/"},
};

/* out_cap == len + 1 fits exactly; anything less is TOO_LONG with out emptied. */
static void test_same_origin_cap(void)
{
    for (size_t k = 0; k < PG_ARRAY_LEN(cap_cases); k++) {
        const struct cap_case *c = &cap_cases[k];
        size_t want = strlen(c->want);
        char out[300];
        size_t len = 0;
        int rv = origin_cap(c->ref, want + 1, out, &len);
        CHECK(rv == PG_URL_SAME_ORIGIN && strcmp(out, c->want) == 0 && len == want,
              "cap %zu [%s] exact: rv=%d out='%s'", k, c->ref, rv,
              rv == PG_URL_SAME_ORIGIN ? out : "");
        rv = origin_cap(c->ref, want + 100, out, NULL);
        CHECK(rv == PG_URL_SAME_ORIGIN && strcmp(out, c->want) == 0, "cap %zu [%s] roomy: rv=%d", k,
              c->ref, rv);
        rv = origin_cap(c->ref, want, out, &len);
        CHECK(rv == PG_ERR_TOO_LONG && (want == 0 || out[0] == '\0'),
              "cap %zu [%s] one short: rv=%d", k, c->ref, rv);
        rv = origin_cap(c->ref, 1, out, &len);
        CHECK(rv == PG_ERR_TOO_LONG && out[0] == '\0', "cap %zu [%s] cap 1: rv=%d", k, c->ref, rv);
        rv = origin_cap(c->ref, 0, out, &len);
        CHECK(rv == PG_ERR_TOO_LONG, "cap %zu [%s] cap 0: rv=%d", k, c->ref, rv);
    }
}

static void test_resolve_cap(void)
{
    static const struct resolve_case cases[] = {
        {RFC_BASE, "g", PG_OK, "http://a/b/c/g"},
        {RFC_BASE, "", PG_OK, "http://a/b/c/d;p?q"},
        {RFC_BASE, "g:h", PG_OK, "g:h"},
        {RFC_BASE, "g?y#s", PG_OK, "http://a/b/c/g?y#s"},
        {RFC_BASE, "#s", PG_OK, "http://a/b/c/d;p?q#s"},
        {RFC_BASE, "../../g", PG_OK, "http://a/g"},
        {RFC_BASE, "g/../../../../../../../../../h", PG_OK, "http://a/h"},
    };
    for (size_t k = 0; k < PG_ARRAY_LEN(cases); k++) {
        const struct resolve_case *c = &cases[k];
        size_t want = strlen(c->want);
        char buf[300];
        size_t len = 0;
        for (size_t cap = 0; cap <= want + 2; cap++) {
            memset(buf, 'X', sizeof buf);
            int rv = pg_url_resolve(c->base, strlen(c->base), c->ref, strlen(c->ref), buf, cap,
                                    cap % 2 ? &len : NULL);
            for (size_t j = cap; j < sizeof buf; j++)
                CHECK(buf[j] == 'X', "resolve cap [%s] cap %zu: byte %zu written", c->ref, cap, j);
            if (cap > want) {
                CHECK(rv == PG_OK && strcmp(buf, c->want) == 0, "resolve cap [%s] cap %zu: rv=%d",
                      c->ref, cap, rv);
                CHECK(!(cap % 2) || len == want, "resolve cap [%s]: len=%zu", c->ref, len);
            } else {
                CHECK(rv == PG_ERR_TOO_LONG && (cap == 0 || buf[0] == '\0'),
                      "resolve cap [%s] cap %zu: rv=%d", c->ref, cap, rv);
            }
        }
    }
}

/* Lengths are honoured: nothing past ref_len or base_len is read. */
static void test_lengths(void)
{
    char out[64];
    size_t len = 0;
    const char *ref = "a.js?v=1 GARBAGE";
    const char *base = "/dir/page?x=1#GARBAGE";
    int rv = resolve_origin("https", "example.com", base, 11, ref, 8, out, sizeof out, &len);
    CHECK(rv == PG_URL_SAME_ORIGIN && strcmp(out, "/dir/a.js?v=1") == 0 && len == 13,
          "rv=%d out=%s", rv, out);
    rv = resolve_origin("https", "example.com", base, 11, ref, 0, out, sizeof out, &len);
    CHECK(rv == PG_URL_SELF, "empty by length: rv=%d", rv);
    rv =
        pg_url_resolve(RFC_BASE "#junk junk", strlen(RFC_BASE), "g junk", 1, out, sizeof out, NULL);
    CHECK(rv == PG_OK && strcmp(out, "http://a/b/c/g") == 0, "rv=%d out=%s", rv, out);

    /* No buffer at all is merely too small. */
    rv = resolve_origin("https", "example.com", "/", 1, "a/../b", 6, NULL, 0, NULL);
    CHECK(rv == PG_ERR_TOO_LONG, "NULL out: rv=%d", rv);
    rv = pg_url_resolve(RFC_BASE, strlen(RFC_BASE), "g/../h", 6, NULL, 0, NULL);
    CHECK(rv == PG_ERR_TOO_LONG, "NULL out: rv=%d", rv);
    rv = resolve_origin("https", "example.com", "/", 1, "#f", 2, NULL, 0, NULL);
    CHECK(rv == PG_URL_SELF, "NULL out, fragment: rv=%d", rv);

    /* A NUL is not a URI byte either. */
    rv = resolve_origin("https", "example.com", "/", 1, "a\0b", 3, out, sizeof out, &len);
    CHECK(rv == PG_ERR_INVALID, "NUL in ref: rv=%d", rv);
    rv = resolve_origin("https", "example.com", "/a\0b", 4, "g", 1, out, sizeof out, &len);
    CHECK(rv == PG_ERR_INVALID, "NUL in base: rv=%d", rv);
    rv = pg_url_resolve(RFC_BASE, strlen(RFC_BASE), "g\0", 2, out, sizeof out, &len);
    CHECK(rv == PG_ERR_INVALID, "NUL in resolve ref: rv=%d", rv);
}

/* A path far longer than any buffer, made of dot segments that cancel out. */
static void test_long_dots(void)
{
    static char ref[20000];
    size_t n = 0;
    while (n + 5 < sizeof ref) {
        memcpy(ref + n, "x/../", 5);
        n += 5;
    }
    memcpy(ref + n, "y", 1);
    n++;
    char out[64];
    size_t len = 0;
    int rv = resolve_origin("https", "example.com", "/d/p", 4, ref, n, out, sizeof out, &len);
    CHECK(rv == PG_URL_SAME_ORIGIN && strcmp(out, "/d/y") == 0 && len == 4, "rv=%d out=%s", rv,
          out);
    memset(ref, 'a', sizeof ref);
    ref[0] = '/';
    rv = resolve_origin("https", "example.com", "/d/p", 4, ref, sizeof ref, out, sizeof out, &len);
    CHECK(rv == PG_ERR_TOO_LONG && out[0] == '\0', "rv=%d", rv);
}

/* For generated references of dots and slashes, every out_cap gives either the result written
 * with room to spare or TOO_LONG exactly when the result does not fit: intermediate states of
 * remove_dot_segments may be longer than the result and must not matter. */
static void test_cap_sweep(void)
{
    static const char alphabet[] = "ab/./..?";
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        char ref[16];
        size_t n = 0;
        size_t want_n = 1 + (size_t)round % (sizeof ref - 1);
        while (n < want_n) {
            seed = seed * 1103515245u + 12345u;
            ref[n++] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        if (n >= 2 && ref[0] == '/' && ref[1] == '/')
            ref[0] = '.'; /* a network-path reference is another test's business */
        char full[128], out[128];
        size_t full_len = 0, len = 0;
        int rv = resolve_origin("https", "example.com", "/d/e/f", 6, ref, n, full, sizeof full,
                                &full_len);
        CHECK(rv == PG_URL_SAME_ORIGIN, "sweep [%.*s]: rv=%d", (int)n, ref, rv);
        for (size_t cap = 0; rv == PG_URL_SAME_ORIGIN && cap <= full_len + 1; cap++) {
            int r2 = resolve_origin("https", "example.com", "/d/e/f", 6, ref, n, out, cap, &len);
            if (cap > full_len)
                CHECK(r2 == PG_URL_SAME_ORIGIN && len == full_len && strcmp(out, full) == 0,
                      "sweep [%.*s] cap %zu: rv=%d", (int)n, ref, cap, r2);
            else
                CHECK(r2 == PG_ERR_TOO_LONG, "sweep [%.*s] cap %zu: rv=%d", (int)n, ref, cap, r2);
        }
        char base[] = "http://h/d/e/f";
        rv = pg_url_resolve(base, strlen(base), ref, n, full, sizeof full, &full_len);
        CHECK(rv == PG_OK, "sweep resolve [%.*s]: rv=%d", (int)n, ref, rv);
        for (size_t cap = 0; rv == PG_OK && cap <= full_len + 1; cap++) {
            int r2 = pg_url_resolve(base, strlen(base), ref, n, out, cap, &len);
            if (cap > full_len)
                CHECK(r2 == PG_OK && len == full_len && strcmp(out, full) == 0,
                      "sweep resolve [%.*s] cap %zu: rv=%d", (int)n, ref, cap, r2);
            else
                CHECK(r2 == PG_ERR_TOO_LONG, "sweep resolve [%.*s] cap %zu: rv=%d", (int)n, ref,
                      cap, r2);
        }
    }
}

struct path_case {
    const char *in, *want;
};

/* Request paths as the proxy forwards them. */
static const struct path_case path_cases[] = {
    {"/", "/"},
    {"/a/b", "/a/b"},
    {"/a/../b/./c%2F%41?q=1&x=%zz;p", "/b/c%2F%41?q=1&x=%zz;p"},
    {"/..", "/"},
    {"/../../etc/passwd", "/etc/passwd"},
    {"/a/..", "/"},
    {"/a/.", "/a/"},
    {"/a/./", "/a/"},
    {"/a/b/../../c", "/c"},
    {"/a//b/../c", "/a//c"},
    {"//x", "//x"},
    {"/%2e%2e/secret", "/secret"},
    {"/a/%2E/b", "/a/b"},
    {"/a/.%2e/b", "/b"},
    {"/a/...", "/a/..."},
    {"/a/..b/.c", "/a/..b/.c"},
    {"/a/%2e%2f/b", "/a/%2e%2f/b"},
    {"/p?x=/../y", "/p?x=/../y"},
    {"/a/../?q", "/?q"},
    {"/a?", "/a?"},
    {"/a/b/c/./../../g", "/a/g"},
    {"/mid/content=5/../6", "/mid/6"},
};

/* More request paths: bytes are not judged here (validation is the request's), "?" splits at
 * the first one, the encoded forms mix freely and nothing else counts as a dot. */
static const struct path_case more_path_cases[] = {
    {"/a b/%2e%2e/c\x80", "/c\x80"},
    {"/a#/../b", "/b"},
    {"/a/%2e%2E/b", "/b"},
    {"/a/%2E./b", "/b"},
    {"/a/%2e", "/a/"},
    {"/a/%2e%2e", "/"},
    {"/a/%2e%2e%2e/b", "/a/%2e%2e%2e/b"},
    {"/a/%2e%2eb", "/a/%2e%2eb"},
    {"/a/%252e/b", "/a/%252e/b"},
    {"/a/%2", "/a/%2"},
    {"/a/%2e%2", "/a/%2e%2"},
    {"/a?b?/../c", "/a?b?/../c"},
    {"/a/..?/../c", "/?/../c"},
    {"/a/%2e%2e?", "/?"},
    {"/./././", "/"},
    {"/../a/../../b/", "/b/"},
};

/* Runs pg_url_remove_dot_segments with room for `cap` bytes and checks that nothing past them
 * was written. */
static int remove_cap(const char *in, size_t len, size_t cap, char *out, size_t *out_len)
{
    char buf[300];
    memset(buf, 'X', sizeof buf);
    int rv = pg_url_remove_dot_segments(in, len, buf, cap, out_len);
    for (size_t k = cap; k < sizeof buf; k++)
        CHECK(buf[k] == 'X', "remove [%s] cap %zu: byte %zu written", in, cap, k);
    memcpy(out, buf, cap < sizeof buf ? cap : sizeof buf);
    return rv;
}

static void check_path_cases(const struct path_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *in = cases[i].in, *want = cases[i].want;
        size_t in_len = strlen(in), want_len = strlen(want);
        char out[300];
        size_t n = 12345;
        /* As the proxy calls it: room for the input, which is always enough. */
        int rv = remove_cap(in, in_len, in_len + 1, out, &n);
        CHECK(rv == PG_OK && n == want_len && strcmp(out, want) == 0, "%s -> %s (want %s) rv=%d",
              in, rv == PG_OK ? out : "", want, rv);
        rv = remove_cap(in, in_len, want_len + 1, out, NULL);
        CHECK(rv == PG_OK && strcmp(out, want) == 0, "%s exact: rv=%d", in, rv);
        n = 12345;
        rv = remove_cap(in, in_len, want_len, out, &n);
        CHECK(rv == PG_ERR_TOO_LONG && n == 12345 && (want_len == 0 || out[0] == '\0'),
              "%s one short: rv=%d", in, rv);
    }
}

static void test_remove_dot_segments(void)
{
    check_path_cases(path_cases, PG_ARRAY_LEN(path_cases));
    check_path_cases(more_path_cases, PG_ARRAY_LEN(more_path_cases));

    char out[64];
    size_t n = 12345;
    static const char *const invalid[] = {"", "a/b", "*", "?q", "%2e%2e/a", "../a"};
    for (size_t i = 0; i < PG_ARRAY_LEN(invalid); i++) {
        memset(out, 'X', sizeof out);
        int rv = pg_url_remove_dot_segments(invalid[i], strlen(invalid[i]), out, sizeof out, &n);
        CHECK(rv == PG_ERR_INVALID && out[0] == '\0' && n == 12345, "[%s]: rv=%d", invalid[i], rv);
    }
    CHECK(pg_url_remove_dot_segments("/a/../b", 7, NULL, 0, NULL) == PG_ERR_TOO_LONG, "NULL out");

    /* Lengths are honoured; a NUL is just a byte. */
    int rv = pg_url_remove_dot_segments("/a/../b?x GARBAGE", 9, out, sizeof out, &n);
    CHECK(rv == PG_OK && n == 4 && strcmp(out, "/b?x") == 0, "by length: rv=%d out=%s", rv, out);
    rv = pg_url_remove_dot_segments("/a\0/../b", 8, out, sizeof out, &n);
    CHECK(rv == PG_OK && n == 2 && strcmp(out, "/b") == 0, "NUL: rv=%d out=%s", rv, out);
    rv = pg_url_remove_dot_segments("/a/b\0c/..", 9, out, sizeof out, &n);
    CHECK(rv == PG_OK && n == 3 && memcmp(out, "/a/", 4) == 0, "NUL: rv=%d", rv);

    /* A path far longer than the buffer that cancels out fits. */
    static char in[20000];
    size_t len = 0;
    while (len + 11 < sizeof in) {
        memcpy(in + len, "/x/%2e%2e/.", 11);
        len += 11;
    }
    memcpy(in + len, "/y", 2);
    len += 2;
    rv = pg_url_remove_dot_segments(in, len, out, sizeof out, &n);
    CHECK(rv == PG_OK && n == 2 && strcmp(out, "/y") == 0, "long: rv=%d out=%s", rv, out);
}

/* Generated paths of letters, slashes, dots (plain and encoded) and '?': a request path and the
 * same text as a Link target come out alike, and every out_cap gives either the result or
 * TOO_LONG exactly when it does not fit. */
static void test_request_path_sweep(void)
{
    static const char *const tokens[] = {"a", "b", "/", "/", ".", "%2e", "%2E", "?"};
    unsigned seed = 54321;
    for (int round = 0; round < 3000; round++) {
        char ref[64];
        size_t n = 0;
        size_t count = 1 + (size_t)round % 12;
        for (size_t t = 0; t < count; t++) {
            seed = seed * 1103515245u + 12345u;
            const char *tok = tokens[(seed >> 16) % PG_ARRAY_LEN(tokens)];
            memcpy(ref + n, tok, strlen(tok));
            n += strlen(tok);
        }
        if (n >= 2 && ref[0] == '/' && ref[1] == '/')
            ref[0] = 'a'; /* a network-path reference is another test's business */
        /* The request path that names what ref names on the response to /d/e/f. */
        char path[80];
        const char *prefix = ref[0] == '/' ? "" : ref[0] == '?' ? "/d/e/f" : "/d/e/";
        size_t path_len = strlen(prefix) + n;
        memcpy(path, prefix, strlen(prefix));
        memcpy(path + strlen(prefix), ref, n);

        char want[128], out[128];
        size_t want_len = 0, len = 0;
        int rv = resolve_origin("https", "example.com", "/d/e/f", 6, ref, n, want, sizeof want,
                                &want_len);
        CHECK(rv == PG_URL_SAME_ORIGIN, "path sweep [%.*s]: rv=%d", (int)n, ref, rv);
        if (rv != PG_URL_SAME_ORIGIN)
            continue;
        rv = pg_url_remove_dot_segments(path, path_len, out, sizeof out, &len);
        CHECK(rv == PG_OK && len == want_len && strcmp(out, want) == 0,
              "path sweep [%.*s]: request '%s', Link target '%s'", (int)path_len, path,
              rv == PG_OK ? out : "", want);
        CHECK(len <= path_len, "path sweep [%.*s]: longer", (int)path_len, path);
        for (size_t cap = 0; cap <= want_len + 1; cap++) {
            int r2 = pg_url_remove_dot_segments(path, path_len, out, cap, &len);
            if (cap > want_len)
                CHECK(r2 == PG_OK && len == want_len && strcmp(out, want) == 0,
                      "path sweep [%.*s] cap %zu: rv=%d", (int)path_len, path, cap, r2);
            else
                CHECK(r2 == PG_ERR_TOO_LONG, "path sweep [%.*s] cap %zu: rv=%d", (int)path_len,
                      path, cap, r2);
            r2 = resolve_origin("https", "example.com", "/d/e/f", 6, ref, n, out, cap, &len);
            if (cap > want_len)
                CHECK(r2 == PG_URL_SAME_ORIGIN && len == want_len && strcmp(out, want) == 0,
                      "path sweep origin [%.*s] cap %zu: rv=%d", (int)n, ref, cap, r2);
            else
                CHECK(r2 == PG_ERR_TOO_LONG, "path sweep origin [%.*s] cap %zu: rv=%d", (int)n, ref,
                      cap, r2);
        }
    }
}

int main(void)
{
    test_resolve();
    test_same_origin();
    test_same_origin_cap();
    test_resolve_cap();
    test_lengths();
    test_long_dots();
    test_cap_sweep();
    test_remove_dot_segments();
    test_request_path_sweep();
    return check_report("url");
}
