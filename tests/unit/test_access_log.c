/* The access-log line formats (pure): every field, escaping, nulls, and the bound. */
#include "check.h"
#include "pushgate/access_log.h"
#include "pushgate/common.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#define V(s) ((struct pg_header){NULL, 0, (s), sizeof(s) - 1})

static struct pg_access_entry base_entry(void)
{
    return (struct pg_access_entry){
        .time_ms = 1764626682123LL, /* 2025-12-01T22:04:42.123Z */
        .remote_addr = "192.0.2.7",
        .protocol = "HTTP/2.0",
        .tls = true,
        .method = V("GET"),
        .authority = V("example.com"),
        .path = V("/a?b=1"),
        .referer = V("https://example.com/"),
        .user_agent = V("agent/1"),
        .status = 200,
        .bytes_sent = 1234,
        .request_time_us = 12345,
        .upstream_time_us = 10000,
    };
}

struct json_case {
    const char *name;
    void (*change)(struct pg_access_entry *e);
    const char *expect;
};

static void nothing(struct pg_access_entry *e)
{
    (void)e;
}

static void pushed(struct pg_access_entry *e)
{
    e->pushed = true;
    e->parent_path = V("/page");
    e->upstream_time_us = -1;
    e->status = 499;
    e->tls = false;
    e->protocol = "HTTP/1.1";
}

static void hostile(struct pg_access_entry *e)
{
    e->path = V("/\"q\\\x01\xff");
    e->method = (struct pg_header){0};
    e->hinted = 3;
    e->learned = true;
}

static const struct json_case json_cases[] = {
    {"plain", nothing,
     "{\"time\":\"2025-12-01T22:04:42.123Z\",\"remote_addr\":\"192.0.2.7\",\"protocol\":"
     "\"HTTP/2.0\",\"tls\":true,\"method\":\"GET\",\"authority\":\"example.com\",\"path\":"
     "\"/a?b=1\",\"status\":200,\"bytes_sent\":1234,\"request_time_ms\":12.345,"
     "\"upstream_time_ms\":10.000,\"pushed\":false,\"parent_path\":null,\"hinted\":0,"
     "\"learned\":false}\n"},
    {"pushed, no upstream answer", pushed,
     "{\"time\":\"2025-12-01T22:04:42.123Z\",\"remote_addr\":\"192.0.2.7\",\"protocol\":"
     "\"HTTP/1.1\",\"tls\":false,\"method\":\"GET\",\"authority\":\"example.com\",\"path\":"
     "\"/a?b=1\",\"status\":499,\"bytes_sent\":1234,\"request_time_ms\":12.345,"
     "\"upstream_time_ms\":null,\"pushed\":true,\"parent_path\":\"/page\",\"hinted\":0,"
     "\"learned\":false}\n"},
    {"escapes, missing method", hostile,
     "{\"time\":\"2025-12-01T22:04:42.123Z\",\"remote_addr\":\"192.0.2.7\",\"protocol\":"
     "\"HTTP/2.0\",\"tls\":true,\"method\":null,\"authority\":\"example.com\",\"path\":"
     "\"/\\\"q\\\\\\u0001\\u00ff\",\"status\":200,\"bytes_sent\":1234,\"request_time_ms\":"
     "12.345,\"upstream_time_ms\":10.000,\"pushed\":false,\"parent_path\":null,\"hinted\":3,"
     "\"learned\":true}\n"},
};

static void test_json(void)
{
    char out[2048];
    for (size_t i = 0; i < PG_ARRAY_LEN(json_cases); i++) {
        struct pg_access_entry e = base_entry();
        json_cases[i].change(&e);
        size_t len = 0;
        int rv = pg_access_log_format(&e, true, out, sizeof(out), &len);
        CHECK(rv == PG_OK, "%s: rv %d", json_cases[i].name, rv);
        CHECK(len == strlen(json_cases[i].expect) && memcmp(out, json_cases[i].expect, len) == 0,
              "%s:\n got  %.*s want %s", json_cases[i].name, (int)len, out, json_cases[i].expect);
    }
}

static void test_combined(void)
{
    char out[2048];
    size_t len = 0;
    struct pg_access_entry e = base_entry();
    CHECK(pg_access_log_format(&e, false, out, sizeof(out), &len) == PG_OK, "combined");
    const char *want = "192.0.2.7 - - [01/Dec/2025:22:04:42 +0000] \"GET /a?b=1 HTTP/2.0\" 200 "
                       "1234 \"https://example.com/\" \"agent/1\" rt=0.012 urt=0.010\n";
    CHECK(len == strlen(want) && memcmp(out, want, len) == 0, "got %.*s", (int)len, out);
    pushed(&e);
    e.referer = (struct pg_header){0};
    e.user_agent = V("a \"quoted\" agent");
    e.path = V("/sp ace");
    CHECK(pg_access_log_format(&e, false, out, sizeof(out), &len) == PG_OK, "pushed");
    want = "192.0.2.7 - - [01/Dec/2025:22:04:42 +0000] \"GET /sp\\x20ace HTTP/1.1\" 499 1234 "
           "\"-\" \"a \\x22quoted\\x22 agent\" rt=0.012 urt=- pushed=\"/page\"\n";
    CHECK(len == strlen(want) && memcmp(out, want, len) == 0, "got %.*s", (int)len, out);
}

static void test_bound(void)
{
    struct pg_access_entry e = base_entry();
    char out[2048];
    size_t full;
    CHECK(pg_access_log_format(&e, true, out, sizeof(out), &full) == PG_OK, "full");
    size_t len = 12345;
    for (size_t cap = 0; cap <= full; cap++) { /* one byte more than the line is needed */
        int rv = pg_access_log_format(&e, true, out, cap, &len);
        CHECK(rv == PG_ERR_TOO_LONG, "cap %zu: rv %d", cap, rv);
    }
    CHECK(len == 12345, "len untouched on failure");
    CHECK(pg_access_log_format(&e, true, out, full + 1, &len) == PG_OK && len == full,
          "fits in %zu", full + 1);
}

/* The civil date arithmetic against the C library's, across leap days and centuries. */
static void test_dates(void)
{
    static const int64_t fixed[] = {0,          951782400,     951868800, 4107542400LL,
                                    1709164800, 253402300799LL};
    char out[2048], want[64];
    uint64_t seed = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        int64_t secs;
        if (i < (int)PG_ARRAY_LEN(fixed)) {
            secs = fixed[i];
        } else {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            secs = (int64_t)(seed % 4102444800ULL); /* up to 2100 */
        }
        struct pg_access_entry e = base_entry();
        e.time_ms = secs * 1000 + 7;
        size_t len;
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "{\"time\":\"%Y-%m-%dT%H:%M:%S.007Z\"", &tm);
        CHECK(pg_access_log_format(&e, true, out, sizeof(out), &len) == PG_OK &&
                  strncmp(out, want, strlen(want)) == 0,
              "%lld: got %.40s want %s", (long long)secs, out, want);
    }
}

int main(void)
{
    test_dates();
    test_json();
    test_combined();
    test_bound();
    return check_report("test_access_log");
}
