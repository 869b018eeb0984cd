/* Table tests for the early-hints flow of hints.c with a recording frontend: requests start
 * (our 103 from the learned entry, navigations only), upstream 103s arrive (forwarded only for
 * links ours did not name, staged for learning), final heads arrive (2xx learns the 103 and
 * final links together, any other status but 304 forgets the page). Two requests can interleave, as
 * on a busy worker. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/hints.h"
#include "pushgate/learn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 4
#define MAX_STEPS 10
#define MAX_SENT 8

enum step_kind {
    END = 0,
    START, /* values: request fields "name: value"; want: our 103's links (none: no 103) */
    EARLY, /* values: the upstream 103's links; want: what reached the client (none: nothing) */
    FINAL, /* values: the final head's links, status, header: one more field or NULL */
};

struct step {
    int req; /* 0 or 1 */
    enum step_kind kind;
    const char *values[MAX_VALUES];
    const char *want[MAX_VALUES];
    int status;
    const char *header;
};

struct flow_case {
    const char *name;
    struct step steps[MAX_STEPS];
};

#define S "</s.css>; rel=preload; as=style"
#define F "</f.js>; rel=preload; as=script"
#define N "</n.js>; rel=modulepreload"
#define C "<https://cdn.example>; rel=preconnect"

static const struct flow_case flows[] = {
    {"one complete first 103",
     {{0, START, {NULL}, {NULL}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {S, F}, 0, NULL},
      {0, EARLY, {S}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {S, F}, 0, NULL},
      {0, EARLY, {S, N}, {S, N}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {S, N, F}, 0, NULL}}},
    {"a later 103 naming only what ours did, in another order and spelling",
     {{0, FINAL, {S, F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {S, F}, 0, NULL},
      {0, EARLY, {"</f.js>;rel=preload;as=script", S}, {NULL}, 0, NULL}}},
    {"a later 103 naming only links no browser acts on is not forwarded",
     {{0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL},
      {0, EARLY, {"<https://cdn.example>; rel=dns-prefetch"}, {NULL}, 0, NULL}}},
    {"no 103 of ours: the upstream's are forwarded, every one",
     {{0, START, {NULL}, {NULL}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 200, NULL},
      {0, START, {NULL}, {S}, 0, NULL}}},
    {"the entry ours came from was replaced meanwhile: forwarded",
     {{0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL},
      {1, START, {NULL}, {F}, 0, NULL},
      {1, FINAL, {F, C}, {NULL}, 200, NULL},
      {0, EARLY, {F}, {F}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {1, START, {NULL}, {F}, 0, NULL}}},
    {"interleaved responses learn their own 103 links",
     {{0, START, {NULL}, {NULL}, 0, NULL},
      {1, START, {NULL}, {NULL}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {1, EARLY, {N}, {N}, 0, NULL},
      {1, FINAL, {F}, {NULL}, 200, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {1, START, {NULL}, {S, F}, 0, NULL}}},
    {"navigations only",
     {{0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {"sec-fetch-mode: cors", "sec-fetch-dest: empty"}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {"sec-fetch-mode: navigate", "sec-fetch-dest: iframe"}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {"sec-fetch-mode: navigate", "sec-fetch-dest: document"}, {F}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL}}},
    {"a non-navigation still gets the upstream's 103 and teaches its links",
     {{0, START, {"sec-fetch-mode: cors"}, {NULL}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {"sec-fetch-mode: navigate"}, {S, F}, 0, NULL}}},
    {"a redirect forgets the page",
     {{0, FINAL, {F, C}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F, C}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 302, NULL},
      {0, START, {NULL}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL}}},
    {"a 304 keeps the page",
     {{0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 304, NULL},
      {0, START, {NULL}, {F}, 0, NULL}}},
    {"errors forget the page, hinted or not",
     {{0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 404, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {"sec-fetch-mode: cors"}, {NULL}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 500, NULL},
      {0, START, {NULL}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 503, NULL}}},
    {"a non-2xx after an upstream 103 drops what it staged",
     {{0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 401, NULL},
      {0, START, {NULL}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL}}},
    {"a final 2xx without links keeps its 103's",
     {{0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 204, NULL},
      {0, START, {NULL}, {S}, 0, NULL}}},
    {"a private final response: its 103 links are not learned either",
     {{0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, "cache-control: private, max-age=60"},
      {0, START, {NULL}, {NULL}, 0, NULL}}},
    {"a response naming no link forgets what another taught while it was on its way",
     {{0, START, {NULL}, {NULL}, 0, NULL},
      {1, START, {NULL}, {NULL}, 0, NULL},
      {1, FINAL, {F}, {NULL}, 200, NULL},
      {0, FINAL, {NULL}, {NULL}, 200, NULL},
      {0, START, {NULL}, {NULL}, 0, NULL}}},
    {"a page unknown when asked for and answered without links stays unknown",
     {{0, START, {NULL}, {NULL}, 0, NULL},
      {0, FINAL, {NULL}, {NULL}, 200, NULL},
      {0, START, {NULL}, {NULL}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {F}, 0, NULL}}},
    {"an authorized request: its 103 links are not learned",
     {{0, START, {"authorization: Bearer x"}, {NULL}, 0, NULL},
      {0, EARLY, {S}, {S}, 0, NULL},
      {0, FINAL, {F}, {NULL}, 200, NULL},
      {0, START, {NULL}, {NULL}, 0, NULL}}},
};

/* ---- A frontend that records what reaches the client. ---- */

struct sent {
    int status;
    size_t count; /* link fields */
    size_t fields;
    bool content_length;
    char links[MAX_VALUES][128];
};

static struct sent sent[MAX_SENT];
static size_t sent_count;

static int record_1xx(struct pg_request *req, int status, const struct pg_header *fields,
                      size_t count)
{
    (void)req;
    if (sent_count == MAX_SENT)
        return PG_OK;
    struct sent *s = &sent[sent_count++];
    s->status = status;
    s->count = 0;
    s->fields = count;
    s->content_length = false;
    for (size_t i = 0; i < count; i++)
        s->content_length =
            s->content_length ||
            (fields[i].name_len == 14 && memcmp(fields[i].name, "content-length", 14) == 0);
    for (size_t i = 0; i < count && s->count < MAX_VALUES; i++)
        if (fields[i].name_len == 4 && memcmp(fields[i].name, "link", 4) == 0)
            snprintf(s->links[s->count++], sizeof s->links[0], "%.*s", (int)fields[i].value_len,
                     fields[i].value);
    return PG_OK;
}

static const struct pg_frontend_ops ops = {.submit_1xx = record_1xx};

struct client_request {
    struct pg_request req;
    struct pg_header fields[MAX_VALUES];
    char names[MAX_VALUES][32];
};

static void start(struct client_request *c, struct pg_proxy_conn *pc, const char *const *values)
{
    memset(c, 0, sizeof(*c));
    c->req.pc = pc;
    size_t n = 0;
    for (; n < MAX_VALUES && values[n]; n++) {
        const char *colon = strchr(values[n], ':');
        snprintf(c->names[n], sizeof c->names[n], "%.*s", (int)(colon - values[n]), values[n]);
        c->fields[n] =
            (struct pg_header){c->names[n], strlen(c->names[n]), colon + 2, strlen(colon + 2)};
    }
    c->req.head = (struct pg_request_head){
        .method = {NULL, 0, "GET", 3},
        .scheme = {NULL, 0, "https", 5},
        .authority = {NULL, 0, "example.com", 11},
        .path = {NULL, 0, "/page", 5},
        .fields = c->fields,
        .count = n,
    };
    pg_hints_on_request(&c->req);
}

static void respond(struct client_request *c, const struct step *st)
{
    struct pg_header fields[MAX_VALUES + 1];
    size_t n = 0;
    for (; n < MAX_VALUES && st->values[n]; n++)
        fields[n] = (struct pg_header){"link", 4, st->values[n], strlen(st->values[n])};
    char name[32];
    if (st->header) {
        const char *colon = strchr(st->header, ':');
        snprintf(name, sizeof name, "%.*s", (int)(colon - st->header), st->header);
        fields[n++] = (struct pg_header){name, strlen(name), colon + 2, strlen(colon + 2)};
    }
    struct pg_response_head head = {st->kind == EARLY ? 103 : st->status, fields, n};
    pg_hints_on_response(&c->req, &head);
}

/* The links of what reached the client since mark: nothing, or one 103 holding want. */
static void check_sent(const char *name, size_t step, size_t mark, const char *const *want)
{
    size_t n = 0;
    while (n < MAX_VALUES && want[n])
        n++;
    size_t got = sent_count - mark;
    CHECK(got == (n ? 1u : 0u), "%s, step %zu: %zu 103s reached the client, want %d", name, step,
          got, n ? 1 : 0);
    if (got != 1 || n == 0)
        return;
    const struct sent *s = &sent[mark];
    CHECK(s->status == 103 && s->count == n, "%s, step %zu: a 103 with %zu links, want %zu", name,
          step, s->count, n);
    for (size_t i = 0; i < n && i < s->count; i++)
        CHECK(strcmp(s->links[i], want[i]) == 0, "%s, step %zu: link %zu is '%s' want '%s'", name,
              step, i, s->links[i], want[i]);
}

static void test_flows(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(flows); i++) {
        const struct flow_case *c = &flows[i];
        struct pg_config cfg = {.early_hints = true, .push_learn = true};
        static struct pg_counters counters; /* the worker's, in the proxy */
        struct pg_proxy_env env = {
            .cfg = &cfg, .learn = pg_learn_new(16, 100000), .counters = &counters};
        struct pg_proxy_conn pc = {.env = &env, .ops = &ops};
        struct client_request reqs[2];
        memset(reqs, 0, sizeof reqs);
        sent_count = 0;
        for (size_t k = 0; k < MAX_STEPS && c->steps[k].kind != END; k++) {
            const struct step *st = &c->steps[k];
            struct client_request *r = &reqs[st->req];
            size_t mark = sent_count;
            if (st->kind == START) {
                start(r, &pc, st->values);
            } else {
                if (!r->req.pc) /* a response for a request the table did not start */
                    start(r, &pc, (const char *const[]){NULL});
                mark = sent_count; /* what its START sent is not this step's */
                respond(r, st);
                if (st->kind == FINAL)
                    memset(r, 0, sizeof(*r));
            }
            if (st->kind != FINAL)
                check_sent(c->name, k, mark, st->want);
            if (st->kind == START) {
                size_t n = 0;
                while (n < MAX_VALUES && st->want[n])
                    n++;
                CHECK(r->req.hinted_links == n && r->req.hinted == (n > 0),
                      "%s, step %zu: the request says its 103 named %u links", c->name, k,
                      r->req.hinted_links);
            }
        }
        pg_learn_free(env.learn);
    }
}

/* A forwarded 1xx never carries content-length (the response parser keeps a "0" on a 1xx),
 * with learning off too. */
static void test_forwarded_fields(void)
{
    struct pg_config cfg = {.early_hints = true};
    static struct pg_counters counters;
    struct pg_proxy_env env = {.cfg = &cfg, .counters = &counters};
    struct pg_proxy_conn pc = {.env = &env, .ops = &ops};
    struct client_request c;
    start(&c, &pc, (const char *const[]){NULL});
    struct pg_header fields[] = {
        {"link", 4, S, strlen(S)}, {"content-length", 14, "0", 1}, {"x-other", 7, "kept", 4}};
    struct pg_response_head head = {103, fields, PG_ARRAY_LEN(fields)};
    sent_count = 0;
    pg_hints_on_response(&c.req, &head);
    CHECK(sent_count == 1 && sent[0].status == 103 && sent[0].count == 1 && sent[0].fields == 2 &&
              !sent[0].content_length,
          "the 103 is forwarded without content-length");
    head.status = 102;
    pg_hints_on_response(&c.req, &head);
    CHECK(sent_count == 2 && sent[1].status == 102 && !sent[1].content_length,
          "other 1xx are forwarded the same way");
}

int main(void)
{
    test_flows();
    test_forwarded_fields();
    return check_report("hints_flow");
}
