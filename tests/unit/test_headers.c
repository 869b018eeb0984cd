/* Table tests for the HTTP/2 <-> HTTP/1.1 header mapping. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/headers.h"

#include <stdlib.h>

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }
#define MAX_FIELDS 12
#define MAX_LINES 16

struct request_case {
    const char *name;
    struct pg_header fields[MAX_FIELDS];
    size_t count;
    bool tls;
    bool push;
    int expect_rv;
    long long expect_cl;
    const char *expect[MAX_LINES]; /* every line, in order */
};

static const struct request_case request_cases[] = {
    {"plain GET",
     {H("user-agent", "t/1"), H("accept", "*/*")},
     2,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "user-agent: t/1", "accept: */*", "via: 2 pushgate",
      "x-forwarded-for: 192.0.2.7", "X-Forwarded-Proto: http", "Expect:"}},
    {"no accept suppresses libcurl's",
     {H("x-a", "1")},
     1,
     true,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "x-a: 1", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: https", "Accept:", "Expect:"}},
    {"cookie crumbs joined",
     {H("cookie", "a=1"), H("accept", "x"), H("cookie", "b=2"), H("cookie", "c=3")},
     4,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: x", "cookie: a=1; b=2; c=3", "via: 2 pushgate",
      "x-forwarded-for: 192.0.2.7", "X-Forwarded-Proto: http", "Expect:"}},
    {"an empty crumb adds no separator",
     {H("cookie", ""), H("cookie", "a=1"), H("accept", "x")},
     3,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: x", "cookie: a=1", "via: 2 pushgate",
      "x-forwarded-for: 192.0.2.7", "X-Forwarded-Proto: http", "Expect:"}},
    {"only empty crumbs: an empty cookie",
     {H("cookie", ""), H("accept", "x")},
     2,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: x", "cookie;", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: http", "Expect:"}},
    {"the client's via and x-forwarded-for come before ours",
     {H("via", "1.1 edge"), H("x-forwarded-for", "203.0.113.9"), H("accept", "x")},
     3,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: x", "via: 1.1 edge, 2 pushgate",
      "x-forwarded-for: 203.0.113.9, 192.0.2.7", "X-Forwarded-Proto: http", "Expect:"}},
    {"hop-by-hop removed",
     {H("connection", "close"), H("keep-alive", "5"), H("proxy-connection", "x"),
      H("transfer-encoding", "chunked"), H("upgrade", "h2c"), H("te", "gzip"), H("accept", "a"),
      H("http2-settings", "AAA")},
     8,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: a", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: http", "Expect:"}},
    {"te trailers kept",
     {H("te", "trailers"), H("accept", "a")},
     2,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "te: trailers", "accept: a", "via: 2 pushgate",
      "x-forwarded-for: 192.0.2.7", "X-Forwarded-Proto: http", "Expect:"}},
    {"forwarding fields merged",
     {H("x-forwarded-for", "10.0.0.1"), H("via", "1.1 cdn"), H("x-forwarded-proto", "gopher"),
      H("accept", "a")},
     4,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: a", "via: 1.1 cdn, 2 pushgate",
      "x-forwarded-for: 10.0.0.1, 192.0.2.7", "X-Forwarded-Proto: http", "Expect:"}},
    {"client push marker removed, ours added",
     {H("x-http2-push", "1"), H("accept", "a")},
     2,
     false,
     true,
     PG_OK,
     -1,
     {"Host: example.com", "accept: a", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: http", "X-Http2-Push: 1", "Expect:"}},
    {"content-length parsed, never copied",
     {H("content-length", "42"), H("accept", "a")},
     2,
     false,
     false,
     PG_OK,
     42,
     {"Host: example.com", "accept: a", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: http", "Expect:"}},
    {"empty value kept as empty",
     {H("x-empty", ""), H("accept", "a")},
     2,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "x-empty;", "accept: a", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: http", "Expect:"}},
    {"underscore names dropped, host and expect replaced",
     {H("x_user", "admin"), H("host", "evil"), H("expect", "100-continue"), H("accept", "a")},
     4,
     false,
     false,
     PG_OK,
     -1,
     {"Host: example.com", "accept: a", "via: 2 pushgate", "x-forwarded-for: 192.0.2.7",
      "X-Forwarded-Proto: http", "Expect:"}},
    {"CR in a value rejected",
     {H("x-a", "1\r\nX-Injected: 1")},
     1,
     false,
     false,
     PG_ERR_INVALID,
     -1,
     {NULL}},
    {"bad content-length rejected",
     {H("content-length", "1e3")},
     1,
     false,
     false,
     PG_ERR_INVALID,
     -1,
     {NULL}},
    {"conflicting content-lengths rejected",
     {H("content-length", "1"), H("content-length", "2")},
     2,
     false,
     false,
     PG_ERR_INVALID,
     -1,
     {NULL}},
};

static void test_request_mapping(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(request_cases); i++) {
        const struct request_case *c = &request_cases[i];
        struct pg_request_info info = {"example.com", 11,     c->fields, c->count,
                                       "192.0.2.7",   c->tls, c->push};
        struct pg_lines lines = {0};
        long long cl = -7;
        int rv = pg_headers_build_upstream(&info, &lines, &cl);
        CHECK(rv == c->expect_rv, "%s: rv %d", c->name, rv);
        if (rv != PG_OK || c->expect_rv != PG_OK) {
            pg_lines_free(&lines);
            continue;
        }
        CHECK(cl == c->expect_cl, "%s: content-length %lld", c->name, cl);
        size_t n = 0;
        for (size_t off = 0; off < lines.len; off += strlen(lines.data + off) + 1, n++) {
            const char *want = n < MAX_LINES ? c->expect[n] : NULL;
            CHECK(want && strcmp(lines.data + off, want) == 0, "%s: line %zu is '%s', want '%s'",
                  c->name, n, lines.data + off, want ? want : "(none)");
        }
        CHECK(n < MAX_LINES && c->expect[n] == NULL, "%s: %zu lines, expected more", c->name, n);
        CHECK(n == lines.count, "%s: count %zu vs %zu", c->name, lines.count, n);
        pg_lines_free(&lines);
    }
}

struct response_case {
    const char *name;
    const char *block;
    int expect_rv;
    int status;
    const char *expect[MAX_LINES]; /* "name: value" of every kept field */
    size_t len;                    /* block length when it holds a NUL; 0: strlen */
};

static const struct response_case response_cases[] = {
    {"simple",
     "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n",
     PG_OK,
     200,
     {"content-type: text/html", "content-length: 5"}},
    {"no reason phrase, LF only", "HTTP/1.0 404\nX-A:  padded  \n\n", PG_OK, 404, {"x-a: padded"}},
    {"three set-cookies kept apart",
     "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nSet-Cookie: c=3\r\n\r\n",
     PG_OK,
     200,
     {"set-cookie: a=1", "set-cookie: b=2", "set-cookie: c=3"}},
    {"hop-by-hop and connection-named dropped",
     "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nKeep-Alive: 5\r\nX-Secret: s\r\n"
     "Transfer-Encoding: chunked\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nX-Kept: k\r\n\r\n",
     PG_OK,
     200,
     {"x-kept: k"}},
    {"103",
     "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
     PG_OK,
     103,
     {"link: </a.css>; rel=preload"}},
    {"identical content-lengths folded",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
     "Content-Length: 3\r\n\r\n",
     PG_OK,
     200,
     {"content-length: 3"}},
    {"empty value", "HTTP/1.1 200 OK\r\nX-Empty:\r\n\r\n", PG_OK, 200, {"x-empty: "}},
    {"obs-fold rejected",
     "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n",
     PG_ERR_INVALID,
     0,
     {NULL}},
    {"bare CR rejected", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n", PG_ERR_INVALID, 0, {NULL}},
    {"NUL rejected", "HTTP/1.1 200 OK\r\nX-A: 1\0002\r\n\r\n", PG_ERR_INVALID, 0, {NULL}, 29},
    /* Found by fuzz_response: is_tchar took NUL for a token character. */
    {"NUL in a name rejected",
     "HTTP/1.1 200 OK\r\nX-\000A: 1\r\n\r\n",
     PG_ERR_INVALID,
     0,
     {NULL},
     28},
    {"bad name rejected", "HTTP/1.1 200 OK\r\nX A: 1\r\n\r\n", PG_ERR_INVALID, 0, {NULL}},
    {"two content-lengths rejected",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
     "Content-Length: 4\r\n\r\n",
     PG_ERR_INVALID,
     0,
     {NULL}},
    {"CL with TE rejected",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     PG_ERR_INVALID,
     0,
     {NULL}},
    {"HTTP/2 status line rejected", "HTTP/2 200\r\n\r\n", PG_ERR_INVALID, 0, {NULL}},
    {"204 with a body length rejected",
     "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
     PG_ERR_INVALID,
     0,
     {NULL}},
    {"204 chunked rejected",
     "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
     PG_ERR_INVALID,
     0,
     {NULL}},
    {"204 with Content-Length: 0 kept",
     "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
     PG_OK,
     204,
     {"content-length: 0"}},
    {"304 may state the representation's length",
     "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
     PG_OK,
     304,
     {"content-length: 5"}},
    {"garbage rejected", "<html>hello</html>\r\n\r\n", PG_ERR_INVALID, 0, {NULL}},
    {"short status rejected", "HTTP/1.1 20 OK\r\n\r\n", PG_ERR_INVALID, 0, {NULL}},
    {"empty", "", PG_ERR_INVALID, 0, {NULL}},
};

static void test_response_parsing(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(response_cases); i++) {
        const struct response_case *c = &response_cases[i];
        size_t len = c->len ? c->len : strlen(c->block);
        char *block = malloc(len + 1);
        memcpy(block, c->block, len + 1);
        struct pg_header fields[8];
        struct pg_response_head head;
        int rv = pg_headers_parse_response(block, len, &head, fields, 8);
        CHECK(rv == c->expect_rv, "%s: rv %d", c->name, rv);
        if (rv == PG_OK) {
            CHECK(head.status == c->status, "%s: status %d", c->name, head.status);
            size_t n = 0;
            for (; n < head.count; n++) {
                char got[256];
                snprintf(got, sizeof(got), "%.*s: %.*s", (int)fields[n].name_len, fields[n].name,
                         (int)fields[n].value_len, fields[n].value);
                CHECK(c->expect[n] && strcmp(got, c->expect[n]) == 0, "%s: field %zu '%s'", c->name,
                      n, got);
            }
            CHECK(c->expect[n] == NULL, "%s: %zu fields, expected more", c->name, n);
        }
        free(block);
    }
}

static void test_too_many_fields(void)
{
    char block[] = "HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
    struct pg_header fields[2];
    struct pg_response_head head;
    CHECK(pg_headers_parse_response(block, strlen(block), &head, fields, 2) == PG_ERR_TOO_LONG,
          "cap of 2 fields");
}

/* The value check reads eight bytes at a time: every forbidden byte, at every offset of values
 * of every length up to 40, is still found; tabs, spaces and bytes from 0x80 are not. */
static void test_value_bytes_at_every_offset(void)
{
    char value[40];
    for (size_t len = 1; len <= sizeof(value); len++) {
        for (size_t at = 0; at < len; at++) {
            for (int byte = 0; byte < 256; byte++) {
                memset(value, 'v', sizeof(value));
                value[at] = (char)byte;
                bool forbidden = (byte < 0x20 && byte != '\t') || byte == 0x7f;
                if (pg_headers_value_ok(value, len) == forbidden)
                    CHECK(false, "byte 0x%02x at %zu of %zu: %s", byte, at, len,
                          forbidden ? "accepted" : "rejected");
            }
        }
    }
    /* a tab early on, then a forbidden byte past the next word */
    CHECK(!pg_headers_value_ok("a\tbcdefghijklmnop\x01q", 20), "control after a tab");
    CHECK(pg_headers_value_ok("\x80\xff\xfe\x81 \t~!\x80\x80\x80\x80\x80\x80\x80\x80", 16),
          "high bytes, tab, space");
}

/* Up to eight Connection fields are indexed; more are still all honoured. */
static void test_many_connection_fields(void)
{
    char block[1024];
    size_t len = (size_t)snprintf(block, sizeof(block), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 10; i++)
        len += (size_t)snprintf(block + len, sizeof(block) - len, "Connection: x-%d\r\n", i);
    for (int i = 0; i < 10; i++)
        len += (size_t)snprintf(block + len, sizeof(block) - len, "X-%d: v\r\n", i);
    len += (size_t)snprintf(block + len, sizeof(block) - len, "X-Kept: k\r\n\r\n");
    struct pg_header fields[32];
    struct pg_response_head head;
    CHECK(pg_headers_parse_response(block, len, &head, fields, 32) == PG_OK, "parsed");
    CHECK(head.count == 1 && fields[0].name_len == 6 && memcmp(fields[0].name, "x-kept", 6) == 0,
          "%zu fields kept, the first '%.*s'", head.count, (int)fields[0].name_len, fields[0].name);
}

/* Line breakers are looked for eight bytes at a time: CR, LF or NUL at every offset of names
 * and values of every length up to 24 is found; other bytes pass. */
static void test_line_breakers_at_every_offset(void)
{
    const char breakers[] = {'\r', '\n', '\0'};
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t b = 0; b < sizeof(breakers) + 1; b++) {
                char value[24], name[24];
                memset(value, 'v', sizeof(value));
                memset(name, 'n', sizeof(name));
                bool bad = b < sizeof(breakers);
                char byte = bad ? breakers[b] : (char)0xff;
                for (int in_name = 0; in_name < 2; in_name++) {
                    (in_name ? name : value)[at] = byte;
                    struct pg_header f = {name, len, value, len};
                    struct pg_request_info info = {"example.com", 11,    &f,   1,
                                                   "192.0.2.7",   false, false};
                    struct pg_lines lines = {0};
                    long long cl;
                    int rv = pg_headers_build_upstream(&info, &lines, &cl);
                    CHECK((rv == PG_ERR_INVALID) == bad, "0x%02x at %zu of %zu in the %s: rv %d",
                          (unsigned char)byte, at, len, in_name ? "name" : "value", rv);
                    pg_lines_free(&lines);
                    (in_name ? name : value)[at] = in_name ? 'n' : 'v';
                }
            }
        }
    }
}

/* Every byte in a field name: accepted exactly when it is a tchar, and lower-cased. */
static void test_every_name_byte(void)
{
    for (int byte = 1; byte < 256; byte++) {
        char block[64];
        int len = snprintf(block, sizeof(block), "HTTP/1.1 200 OK\r\nX%cY: v\r\n\r\n", byte);
        struct pg_header fields[4];
        struct pg_response_head head;
        int rv = pg_headers_parse_response(block, (size_t)len, &head, fields, 4);
        bool token = pg_headers_is_tchar((unsigned char)byte) && byte != ':';
        if (byte == ':') /* "X:Y: v" is the field x with the value "Y: v" */
            continue;
        CHECK((rv == PG_OK) == token, "byte 0x%02x: rv %d", byte, rv);
        if (rv == PG_OK && token) {
            char lower = (char)(byte >= 'A' && byte <= 'Z' ? byte - 'A' + 'a' : byte);
            CHECK(head.count == 1 && fields[0].name_len == 3 && fields[0].name[0] == 'x' &&
                      fields[0].name[1] == lower && fields[0].name[2] == 'y',
                  "byte 0x%02x: name '%.*s'", byte, (int)fields[0].name_len, fields[0].name);
        }
    }
}

/* Every byte at every offset of names of every length up to 24 is accepted exactly when it is
 * a tchar, the name comes out lower-cased, and the value after it is left as it was (a faster
 * name check, eight bytes at a time, was tried against this and cost more than the table). */
static void test_name_bytes_at_every_offset(void)
{
    static const char base[] = "Ab-9ZqR0-xYz";
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int byte = 1; byte < 256; byte++) {
                if (byte == ':' || byte == '\n')
                    continue; /* it would end the name, or the line, there */
                char name[25], want[25], block[96];
                for (size_t i = 0; i < len; i++)
                    name[i] = i == at ? (char)byte : base[i % (sizeof(base) - 1)];
                for (size_t i = 0; i < len; i++) {
                    unsigned char c = (unsigned char)name[i];
                    want[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                }
                int n = snprintf(block, sizeof(block), "HTTP/1.1 200 OK\r\n%.*s: VaLuE\r\n\r\n",
                                 (int)len, name);
                struct pg_header fields[2];
                struct pg_response_head head;
                int rv = pg_headers_parse_response(block, (size_t)n, &head, fields, 2);
                bool token = pg_headers_is_tchar((unsigned char)byte);
                CHECK((rv == PG_OK) == token, "length %zu, byte 0x%02x at %zu: rv %d", len, byte,
                      at, rv);
                if (rv != PG_OK || !token)
                    continue;
                bool hop = pg_headers_is_hop_by_hop(want, len);
                CHECK(hop || (head.count == 1 && fields[0].name_len == len &&
                              memcmp(fields[0].name, want, len) == 0 && fields[0].value_len == 5 &&
                              memcmp(fields[0].value, "VaLuE", 5) == 0),
                      "length %zu, byte 0x%02x at %zu: '%.*s: %.*s'", len, byte, at,
                      (int)(head.count ? fields[0].name_len : 0), head.count ? fields[0].name : "",
                      (int)(head.count ? fields[0].value_len : 0),
                      head.count ? fields[0].value : "");
            }
        }
    }
}

/* The head carries its content-length's value (proxy.c copies small bodies as they come). */
static void test_content_length_value(void)
{
    static const struct {
        const char *head;
        long long want;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n", 1024},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -1},
        {"HTTP/1.1 200 OK\r\nX: y\r\n\r\n", -1},
    };
    for (size_t i = 0; i < PG_ARRAY_LEN(cases); i++) {
        char block[128];
        size_t len = (size_t)snprintf(block, sizeof(block), "%s", cases[i].head);
        struct pg_header fields[4];
        struct pg_response_head head;
        CHECK(pg_headers_parse_response(block, len, &head, fields, 4) == PG_OK &&
                  head.content_length == cases[i].want,
              "case %zu: content-length %lld", i, head.content_length);
    }
}

/* One Connection field listing more names than are split out at once: all still dropped. */
static void test_long_connection_list(void)
{
    char block[2048];
    size_t len =
        (size_t)snprintf(block, sizeof(block), "HTTP/1.1 200 OK\r\nConnection: keep-alive");
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(block + len, sizeof(block) - len, ", X-%d", i);
    len += (size_t)snprintf(block + len, sizeof(block) - len, "\r\n");
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(block + len, sizeof(block) - len, "x-%d: v\r\n", i);
    len += (size_t)snprintf(block + len, sizeof(block) - len, "X-Kept: k\r\n\r\n");
    struct pg_header fields[32];
    struct pg_response_head head;
    CHECK(pg_headers_parse_response(block, len, &head, fields, 32) == PG_OK, "parsed");
    CHECK(head.count == 1 && fields[0].name_len == 6 && memcmp(fields[0].name, "x-kept", 6) == 0,
          "%zu fields kept", head.count);
}

int main(void)
{
    test_every_name_byte();
    test_name_bytes_at_every_offset();
    test_content_length_value();
    test_line_breakers_at_every_offset();
    test_long_connection_list();
    test_request_mapping();
    test_response_parsing();
    test_too_many_fields();
    test_value_bytes_at_every_offset();
    test_many_connection_fields();
    return check_report("test_headers");
}
