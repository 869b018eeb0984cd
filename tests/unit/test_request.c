/* Table tests for the protocol-neutral request checks: validation, bodyless responses, field
 * lookup and reason phrases. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/request.h"

#include <stdbool.h>

#define MAX_FIELDS 4

struct field {
    const char *name;
    const char *value;
};

enum { GIVEN = 1, LARGE = 2, TLS = 4 }; /* authority_given, too_large, a TLS connection */

struct validate_case {
    const char *name;
    const char *method, *scheme, *authority, *path; /* NULL: absent */
    const char *host, *second_host;                 /* host fields, NULL: absent */
    unsigned flags;
    int expect_rc, expect_status;
};

/* A view of s; NULL gives an absent (empty) view. */
static struct pg_header view(const char *s)
{
    return (struct pg_header){NULL, 0, s, s ? strlen(s) : 0};
}

static size_t make_fields(const struct field *in, size_t n, struct pg_header *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] =
            (struct pg_header){in[i].name, strlen(in[i].name), in[i].value, strlen(in[i].value)};
    return n;
}

/* Every head also carries an accept and an x-host field before its host fields. */
static const struct validate_case validates[] = {
    {"valid GET over TLS", "GET", "https", "example.com", "/", NULL, NULL, GIVEN | TLS, PG_OK, 0},
    {"valid GET over cleartext", "GET", "http", "example.com", "/a?b=c", NULL, NULL, GIVEN, PG_OK,
     0},
    {"valid OPTIONS *", "OPTIONS", "https", "example.com", "*", NULL, NULL, GIVEN | TLS, PG_OK, 0},
    {"OPTIONS with a path", "OPTIONS", "https", "example.com", "/x", NULL, NULL, GIVEN | TLS, PG_OK,
     0},
    {"methods are case-sensitive: connect is not CONNECT", "connect", "https", "example.com", "/",
     NULL, NULL, GIVEN | TLS, PG_OK, 0},
    {"too large", "GET", "https", "example.com", "/", NULL, NULL, GIVEN | TLS | LARGE,
     PG_ERR_INVALID, 431},
    {"too large is checked first", "CONNECT", "ftp", NULL, NULL, "evil.example", NULL,
     GIVEN | TLS | LARGE, PG_ERR_INVALID, 431},
    {"missing method", NULL, "https", "example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"empty method", "", "https", "example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID, 400},
    {"missing path", "GET", "https", "example.com", NULL, NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"missing path comes before CONNECT", "CONNECT", "https", "example.com", NULL, NULL, NULL,
     GIVEN | TLS, PG_ERR_INVALID, 400},
    {"CONNECT", "CONNECT", "https", "example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     405},
    {"CONNECT authority-form", "CONNECT", "https", "example.com", "example.com:443", NULL, NULL,
     GIVEN | TLS, PG_ERR_INVALID, 405},
    {"* with GET", "GET", "https", "example.com", "*", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"* with HEAD", "HEAD", "https", "example.com", "*", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"*x is not *", "OPTIONS", "https", "example.com", "*x", NULL, NULL, GIVEN | TLS,
     PG_ERR_INVALID, 400},
    {"relative path", "GET", "https", "example.com", "a/b", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"absolute-form path", "GET", "https", "example.com", "https://example.com/", NULL, NULL,
     GIVEN | TLS, PG_ERR_INVALID, 400},
    {"fragment", "GET", "https", "example.com", "/a#frag", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"bare fragment mark", "GET", "https", "example.com", "/#", NULL, NULL, GIVEN | TLS,
     PG_ERR_INVALID, 400},
    {"fragment after the query", "GET", "https", "example.com", "/?q#f", NULL, NULL, GIVEN | TLS,
     PG_ERR_INVALID, 400},
    {"http over TLS", "GET", "http", "example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"https over cleartext", "GET", "https", "example.com", "/", NULL, NULL, GIVEN, PG_ERR_INVALID,
     400},
    {"scheme is case-sensitive", "GET", "HTTPS", "example.com", "/", NULL, NULL, GIVEN | TLS,
     PG_ERR_INVALID, 400},
    {"missing scheme", "GET", NULL, "example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"other scheme", "GET", "ftp", "example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"empty authority", "GET", "https", "", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID, 400},
    {"missing authority", "GET", "https", NULL, "/", NULL, NULL, TLS, PG_ERR_INVALID, 400},
    {"userinfo", "GET", "https", "user@example.com", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"trailing @", "GET", "https", "example.com@", "/", NULL, NULL, GIVEN | TLS, PG_ERR_INVALID,
     400},
    {"userinfo from Host", "GET", "http", "u:p@example.com", "/", "u:p@example.com", NULL, 0,
     PG_ERR_INVALID, 400},
    {"host equal to :authority", "GET", "https", "example.com", "/", "example.com", NULL,
     GIVEN | TLS, PG_OK, 0},
    {"host equal ignoring case", "GET", "https", "example.com", "/", "EXAMPLE.Com", NULL,
     GIVEN | TLS, PG_OK, 0},
    {"host contradicting :authority", "GET", "https", "example.com", "/", "evil.example", NULL,
     GIVEN | TLS, PG_ERR_INVALID, 400},
    {"host with a port :authority lacks", "GET", "https", "example.com", "/", "example.com:443",
     NULL, GIVEN | TLS, PG_ERR_INVALID, 400},
    {"host a prefix of :authority", "GET", "https", "example.com", "/", "example.co", NULL,
     GIVEN | TLS, PG_ERR_INVALID, 400},
    {"empty host", "GET", "https", "example.com", "/", "", NULL, GIVEN | TLS, PG_ERR_INVALID, 400},
    {"second host contradicting", "GET", "https", "example.com", "/", "example.com", "evil.example",
     GIVEN | TLS, PG_ERR_INVALID, 400},
    {"two agreeing hosts", "GET", "https", "example.com", "/", "example.com", "Example.com",
     GIVEN | TLS, PG_OK, 0},
    {"authority from Host: the field is not compared", "GET", "http", "example.com", "/",
     "evil.example", NULL, 0, PG_OK, 0},
};

static void test_validate(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(validates); i++) {
        const struct validate_case *c = &validates[i];
        /* A second host field only follows a first. */
        const struct field given[MAX_FIELDS] = {{"accept", "*/*"},
                                                {"x-host", "evil.example"},
                                                {"host", c->host},
                                                {"host", c->second_host}};
        size_t count = 2 + (c->host != NULL) + (c->host && c->second_host);
        struct pg_header fields[MAX_FIELDS];
        struct pg_request_head head = {
            .method = view(c->method),
            .scheme = view(c->scheme),
            .authority = view(c->authority),
            .path = view(c->path),
            .fields = fields,
            .count = make_fields(given, count, fields),
            .authority_given = c->flags & GIVEN,
            .too_large = c->flags & LARGE,
        };
        int status = -1;
        int rc = pg_request_validate(&head, c->flags & TLS, &status);
        CHECK(rc == c->expect_rc, "%s: rc %d want %d", c->name, rc, c->expect_rc);
        CHECK(status == c->expect_status, "%s: status %d want %d", c->name, status,
              c->expect_status);
    }
}

struct bodyless_case {
    const char *name;
    const char *method;
    int status;
    bool expect;
};

static const struct bodyless_case bodyless[] = {
    {"HEAD 200", "HEAD", 200, true},
    {"HEAD 404", "HEAD", 404, true},
    {"HEAD 500", "HEAD", 500, true},
    {"GET 100", "GET", 100, true},
    {"GET 103", "GET", 103, true},
    {"GET 199", "GET", 199, true},
    {"GET 204", "GET", 204, true},
    {"POST 204", "POST", 204, true},
    {"GET 304", "GET", 304, true},
    {"GET 200", "GET", 200, false},
    {"GET 404", "GET", 404, false},
    {"GET 205", "GET", 205, false},
    {"GET 500", "GET", 500, false},
    {"POST 200", "POST", 200, false},
    {"head is not HEAD", "head", 200, false},
};

static void test_bodyless(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(bodyless); i++) {
        const struct bodyless_case *c = &bodyless[i];
        struct pg_request_head head = {.method = view(c->method)};
        bool got = pg_request_bodyless_response(&head, c->status);
        CHECK(got == c->expect, "%s: got %d want %d", c->name, got, c->expect);
    }
}

struct field_case {
    const char *name;
    const char *lookup;
    int expect; /* index into the head's fields, -1: NULL */
};

static const struct field c_fields[] = {
    {"accept", "*/*"}, {"host", "a.example"}, {"host", "b.example"}};

static const struct field_case field_cases[] = {
    {"present", "accept", 0},
    {"first of two", "host", 1},
    {"names are compared exactly", "HOST", -1},
    {"a prefix is not a match", "hos", -1},
    {"a longer name is not a match", "hostx", -1},
    {"absent", "cookie", -1},
    {"empty name", "", -1},
};

static void test_field(void)
{
    struct pg_header fields[MAX_FIELDS];
    struct pg_request_head head = {.fields = fields,
                                   .count = make_fields(c_fields, PG_ARRAY_LEN(c_fields), fields)};
    for (size_t i = 0; i < PG_ARRAY_LEN(field_cases); i++) {
        const struct field_case *c = &field_cases[i];
        const struct pg_header *got = pg_request_field(&head, c->lookup);
        const struct pg_header *want = c->expect < 0 ? NULL : &fields[c->expect];
        CHECK(got == want, "%s: got field %td want %d", c->name, got ? got - fields : -1,
              c->expect);
    }
    struct pg_request_head empty = {0};
    CHECK(pg_request_field(&empty, "host") == NULL, "no fields");
}

struct reason_case {
    int status;
    const char *expect;
};

static const struct reason_case reasons[] = {
    {100, "Continue"},
    {103, "Early Hints"},
    {200, "OK"},
    {400, "Bad Request"},
    {405, "Method Not Allowed"},
    {413, "Content Too Large"},
    {431, "Request Header Fields Too Large"},
    {502, "Bad Gateway"},
    {504, "Gateway Timeout"},
    {404, "Not Found"}, /* HTTP/1.1 status lines carry the upstream's status with a phrase */
    {204, "No Content"},
    {304, "Not Modified"},
    {505, "HTTP Version Not Supported"},
    {299, ""},
    {0, ""},
    {-1, ""},
    {1000, ""},
};

static void test_reason(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(reasons); i++) {
        const char *got = pg_request_reason(reasons[i].status);
        CHECK(got && strcmp(got, reasons[i].expect) == 0, "%d: got \"%s\" want \"%s\"",
              reasons[i].status, got ? got : "(null)", reasons[i].expect);
    }
}

int main(void)
{
    test_validate();
    test_bodyless();
    test_field();
    test_reason();
    return check_report("test_request");
}
