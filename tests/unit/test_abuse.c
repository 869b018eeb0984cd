/* Table tests for the abuse budget: what each frame costs, and how tokens are spent and come
 * back over time. */
#include "check.h"
#include "pushgate/abuse.h"
#include "pushgate/common.h"

#include <stdbool.h>
#include <stdint.h>

enum { ACK = 0x1, END_STREAM = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY_FLAG = 0x20 };

struct cost_case {
    const char *name;
    struct pg_abuse_frame frame;
    unsigned expect;
};

static const struct cost_case costs[] = {
    {"DATA empty", {.type = 0x0}, 1},
    {"DATA empty, END_STREAM", {.type = 0x0, .flags = END_STREAM}, 0},
    {"DATA empty, PADDED flag only", {.type = 0x0, .flags = PADDED}, 1},
    {"DATA non-empty", {.type = 0x0, .length = 1}, 0},
    {"DATA non-empty, END_STREAM", {.type = 0x0, .flags = END_STREAM, .length = 100}, 0},
    {"DATA only padding (length counts it)", {.type = 0x0, .flags = PADDED, .length = 10}, 0},
    {"HEADERS", {.type = 0x1, .flags = END_HEADERS, .length = 20}, 0},
    {"HEADERS empty, END_STREAM", {.type = 0x1, .flags = END_STREAM | END_HEADERS}, 0},
    {"PRIORITY", {.type = 0x2, .length = 5}, 1},
    {"PRIORITY, any flags", {.type = 0x2, .flags = 0xff, .length = 5}, 1},
    {"RST_STREAM", {.type = 0x3, .length = 4}, 2},
    {"RST_STREAM before the preface", {.type = 0x3, .length = 4, .preface_done = false}, 2},
    {"SETTINGS after the preface", {.type = 0x4, .length = 6, .preface_done = true}, 1},
    {"SETTINGS empty after the preface", {.type = 0x4, .preface_done = true}, 1},
    {"SETTINGS ACK after the preface", {.type = 0x4, .flags = ACK, .preface_done = true}, 0},
    {"SETTINGS, the preface itself", {.type = 0x4, .length = 6}, 0},
    {"SETTINGS ACK before the preface", {.type = 0x4, .flags = ACK}, 0},
    {"PUSH_PROMISE", {.type = 0x5, .length = 8}, 0},
    {"PING", {.type = 0x6, .length = 8}, 1},
    {"PING after the preface", {.type = 0x6, .length = 8, .preface_done = true}, 1},
    {"PING ACK", {.type = 0x6, .flags = ACK, .length = 8}, 0},
    {"GOAWAY", {.type = 0x7, .length = 8}, 0},
    {"WINDOW_UPDATE 0", {.type = 0x8, .length = 4, .window_increment = 0}, 1},
    {"WINDOW_UPDATE 1", {.type = 0x8, .length = 4, .window_increment = 1}, 1},
    {"WINDOW_UPDATE 1023", {.type = 0x8, .length = 4, .window_increment = 1023}, 1},
    {"WINDOW_UPDATE 1024", {.type = 0x8, .length = 4, .window_increment = 1024}, 0},
    {"WINDOW_UPDATE max", {.type = 0x8, .length = 4, .window_increment = 0x7fffffff}, 0},
    {"CONTINUATION", {.type = 0x9, .flags = END_HEADERS, .length = 10}, 0},
    {"CONTINUATION empty", {.type = 0x9}, 0},
    {"unknown 0xa", {.type = 0xa, .length = 3}, 0},
    {"unknown 0xa empty", {.type = 0xa}, 0},
    {"unknown 0x10 (PRIORITY_UPDATE)", {.type = 0x10, .length = 5}, 0},
    {"unknown 0xff, all flags", {.type = 0xff, .flags = 0xff}, 0},
    {"WINDOW_UPDATE-sized increment on another type", {.type = 0x7, .window_increment = 1}, 0},
};

static void test_frame_cost(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(costs); i++) {
        unsigned got = pg_abuse_frame_cost(&costs[i].frame);
        CHECK(got == costs[i].expect, "%s: got %u want %u", costs[i].name, got, costs[i].expect);
    }
}

#define MAX_STEPS 8

/* One pg_abuse_spend call and what it must leave. */
struct step {
    uint64_t now_ms;
    unsigned cost;
    bool exhausted;
    double tokens;
};

struct budget_case {
    const char *name;
    unsigned capacity, refill;
    uint64_t start_ms;
    struct step steps[MAX_STEPS]; /* up to the first with now_ms 0 (clocks start above 0) */
};

static const struct budget_case budgets[] = {
    {"starts full: capacity at once is not exhausted, one more is",
     10,
     1,
     1000,
     {{1000, 10, false, 0}, {1000, 1, true, -1}}},
    {"one spend over capacity", 10, 1, 1000, {{1000, 11, true, -1}}},
    {"nothing spent: stays full", 5, 100, 1000, {{1000, 0, false, 5}, {1001, 0, false, 5}}},
    {"full never grows past capacity", 5, 100, 1000, {{6000, 0, false, 5}, {6000, 6, true, -1}}},
    {"refill per second",
     10,
     2,
     1000,
     {{1000, 10, false, 0},
      {2000, 0, false, 2},
      {2000, 2, false, 0},
      {2000, 1, true, -1},
      {2500, 0, false, 0},
      {2500, 1, true, -1}}},
    {"fractional refill",
     1,
     1,
     1000,
     {{1000, 1, false, 0}, {1500, 1, true, -0.5}, {2000, 0, false, 0}}},
    {"refill capped at capacity",
     5,
     100,
     1000,
     {{1000, 5, false, 0}, {11000, 0, false, 5}, {11000, 6, true, -1}}},
    {"exhausted until refilled to zero",
     2,
     1,
     1000,
     {{1000, 2, false, 0}, {1000, 2, true, -2}, {2000, 0, true, -1}, {3000, 0, false, 0}}},
    {"standing still adds nothing",
     4,
     1000,
     7,
     {{7, 4, false, 0}, {7, 0, false, 0}, {7, 0, false, 0}, {7, 1, true, -1}}},
    {"time going backwards adds nothing",
     10,
     10,
     5000,
     {{5000, 10, false, 0}, {4000, 0, false, 0}, {1000, 1, true, -1}}},
    /* Current behaviour: the clock read after a step backwards becomes the reference, so the
     * same interval is credited again once time returns (harmless with CLOCK_MONOTONIC). */
    {"back then forward again credits from the earlier time",
     10,
     1,
     5000,
     {{5000, 10, false, 0}, {3000, 0, false, 0}, {5000, 0, false, 2}}},
    {"zero refill never recovers",
     1,
     0,
     1000,
     {{1000, 1, false, 0}, {1001000, 1, true, -1}, {2001000, 0, true, -1}}},
    {"zero capacity: any cost exhausts", 0, 1000, 1000, {{1000, 0, false, 0}, {2000, 1, true, -1}}},
    {"a large clock",
     3,
     1,
     UINT64_C(1) << 50,
     {{UINT64_C(1) << 50, 4, true, -1}, {(UINT64_C(1) << 50) + 1000, 0, false, 0}}},
};

static void test_spend(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(budgets); i++) {
        const struct budget_case *c = &budgets[i];
        struct pg_abuse_budget b;
        pg_abuse_init(&b, c->capacity, c->refill, c->start_ms);
        CHECK(b.tokens == c->capacity && b.capacity == c->capacity && b.refill == c->refill &&
                  b.refill_ms == c->start_ms,
              "%s: init", c->name);
        for (size_t s = 0; s < MAX_STEPS && c->steps[s].now_ms; s++) {
            const struct step *st = &c->steps[s];
            bool got = pg_abuse_spend(&b, st->cost, st->now_ms);
            CHECK(got == st->exhausted, "%s: step %zu exhausted %d want %d", c->name, s, got,
                  st->exhausted);
            CHECK(b.tokens == st->tokens, "%s: step %zu tokens %g want %g", c->name, s, b.tokens,
                  st->tokens);
        }
    }
}

int main(void)
{
    test_frame_cost();
    test_spend();
    return check_report("test_abuse");
}
