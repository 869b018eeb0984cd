/* Tests for the push cache digest: membership, cookie round trip, bounded false positives. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/digest.h"

#include <stdio.h>

#define ADD(d, p) pg_digest_add(d, "example.com", 11, p, strlen(p))
#define HAS(d, p) pg_digest_contains(d, "example.com", 11, p, strlen(p))

static void test_membership_and_round_trip(void)
{
    struct pg_digest d = {0};
    CHECK(!HAS(&d, "/a.css"), "empty");
    ADD(&d, "/a.css");
    ADD(&d, "/b.js");
    CHECK(HAS(&d, "/a.css") && HAS(&d, "/b.js"), "added");
    CHECK(pg_digest_contains(&d, "EXAMPLE.COM", 11, "/a.css", 6), "host case-insensitive");
    CHECK(!pg_digest_contains(&d, "other.com", 9, "/a.css", 6), "other authority");
    char value[PG_DIGEST_VALUE_LEN + 1];
    pg_digest_format(&d, value);
    CHECK(strlen(value) == PG_DIGEST_VALUE_LEN, "length %zu", strlen(value));
    char cookie[256];
    snprintf(cookie, sizeof cookie, "a=1; %s=%s; b=2", PG_DIGEST_COOKIE, value);
    struct pg_digest back;
    CHECK(pg_digest_from_cookie(&back, cookie, strlen(cookie)), "parsed: %s", cookie);
    CHECK(memcmp(back.bits, d.bits, sizeof d.bits) == 0, "round trip");
    snprintf(cookie, sizeof cookie, "%s=%s", PG_DIGEST_COOKIE, value);
    CHECK(pg_digest_from_cookie(&back, cookie, strlen(cookie)) && HAS(&back, "/b.js"), "alone");
}

static void test_malformed_cookies(void)
{
    const char *bad[] = {
        "",
        "pg_pushed=",
        "pg_pushed=a",
        "pg_pushed=zzzz",
        "xpg_pushed=a" /* wrong name */,
        "pg_pushed=b"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "pg_pushed=a"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!A",
    };
    for (size_t i = 0; i < PG_ARRAY_LEN(bad); i++) {
        struct pg_digest d;
        memset(&d, 0xff, sizeof d);
        CHECK(!pg_digest_from_cookie(&d, bad[i], strlen(bad[i])), "accepted: %s", bad[i]);
        CHECK(!HAS(&d, "/a.css"), "left empty: %s", bad[i]);
    }
}

static void test_false_positive_rate_is_bounded(void)
{
    struct pg_digest d = {0};
    char path[32];
    for (int i = 0; i < 2000; i++) { /* many more than fit: the filter restarts */
        snprintf(path, sizeof path, "/asset/%d.js", i);
        ADD(&d, path);
        CHECK(HAS(&d, path), "just added %s", path);
    }
    int fp = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(path, sizeof path, "/never/%d.css", i);
        fp += HAS(&d, path);
    }
    printf("false positives: %d in 10000\n", fp);
    CHECK(fp < 1500, "false-positive rate %d/10000 above 15%%", fp);
}

int main(void)
{
    test_membership_and_round_trip();
    test_malformed_cookies();
    test_false_positive_rate_is_bounded();
    return check_report("digest");
}
