/* Table tests for the push rules. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/push_policy.h"

struct verdict_case {
    const char *name;
    struct pg_push_parent parent;
    enum pg_push_verdict expect;
};

#define OK_PARENT .push_configured = true, .client_allows = true, .parent_is_get = true

static const struct verdict_case verdicts[] = {
    {"200 GET", {OK_PARENT, .status = 200}, PG_PUSH_YES},
    {"204 GET", {OK_PARENT, .status = 204}, PG_PUSH_YES},
    {"301 GET", {OK_PARENT, .status = 301}, PG_PUSH_YES},
    {"304 GET", {OK_PARENT, .status = 304}, PG_PUSH_STATUS},
    {"404 GET", {OK_PARENT, .status = 404}, PG_PUSH_STATUS},
    {"500 GET", {OK_PARENT, .status = 500}, PG_PUSH_STATUS},
    {"103 is not final", {OK_PARENT, .status = 103}, PG_PUSH_STATUS},
    {"--no-push", {.client_allows = true, .parent_is_get = true, .status = 200}, PG_PUSH_DISABLED},
    {"ENABLE_PUSH=0",
     {.push_configured = true, .parent_is_get = true, .status = 200},
     PG_PUSH_DISABLED},
    {"client GOAWAY", {OK_PARENT, .client_goaway = true, .status = 200}, PG_PUSH_GOAWAY},
    {"pushed parent", {OK_PARENT, .parent_is_pushed = true, .status = 200}, PG_PUSH_FROM_PUSH},
    {"POST", {.push_configured = true, .client_allows = true, .status = 200}, PG_PUSH_NOT_GET},
};

static void test_verdicts(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(verdicts); i++) {
        enum pg_push_verdict got = pg_push_parent_verdict(&verdicts[i].parent);
        CHECK(got == verdicts[i].expect, "%s: got %d want %d", verdicts[i].name, got,
              verdicts[i].expect);
    }
}

static void test_accept(void)
{
    CHECK(strcmp(pg_push_accept_for(PG_LINK_AS_STYLE), "text/css,*/*;q=0.1") == 0, "style");
    CHECK(strncmp(pg_push_accept_for(PG_LINK_AS_IMAGE), "image/", 6) == 0, "image");
    CHECK(strcmp(pg_push_accept_for(PG_LINK_AS_NONE), "*/*") == 0, "none");
    CHECK(strcmp(pg_push_accept_for(PG_LINK_AS_OTHER), "*/*") == 0, "other");
}

static void test_memory(void)
{
    static struct pg_push_memory mem;
    CHECK(!pg_push_memory_contains(&mem, "a", 1, "/x", 2), "empty");
    pg_push_memory_add(&mem, "a", 1, "/x", 2);
    CHECK(pg_push_memory_contains(&mem, "a", 1, "/x", 2), "added");
    CHECK(pg_push_memory_contains(&mem, "A", 1, "/x", 2), "authority case-insensitive");
    CHECK(!pg_push_memory_contains(&mem, "a", 1, "/X", 2), "path case-sensitive");
    CHECK(!pg_push_memory_contains(&mem, "b", 1, "/x", 2), "other authority");
    CHECK(!pg_push_memory_contains(&mem, "a/", 2, "x", 1), "separator keeps parts apart");
    pg_push_memory_add(&mem, "a", 1, "/x", 2);
    CHECK(mem.count == 1, "no duplicate entries: %zu", mem.count);
    char path[16];
    for (int i = 0; i < PG_PUSH_MEMORY_SIZE; i++) {
        int n = snprintf(path, sizeof(path), "/p%d", i);
        pg_push_memory_add(&mem, "a", 1, path, (size_t)n);
    }
    CHECK(mem.count == PG_PUSH_MEMORY_SIZE, "bounded: %zu", mem.count);
    CHECK(!pg_push_memory_contains(&mem, "a", 1, "/x", 2), "oldest forgotten");
    CHECK(pg_push_memory_contains(&mem, "a", 1, "/p255", 5), "newest kept");
}

int main(void)
{
    test_verdicts();
    test_accept();
    test_memory();
    return check_report("test_push_policy");
}
