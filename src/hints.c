#include "pushgate/hints.h"
#include "pushgate/common.h"
#include "pushgate/learn.h"
#include "pushgate/link.h"
#include "pushgate/log.h"
#include "pushgate/push.h"
#include "pushgate/url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static bool is_field(const struct pg_header *f, const char *lit)
{
    return f->name_len == strlen(lit) && memcmp(f->name, lit, f->name_len) == 0;
}

static bool view_is(struct pg_header h, const char *lit)
{
    return h.value_len == strlen(lit) && memcmp(h.value, lit, h.value_len) == 0;
}

static bool set_has_path(const struct pg_link_set *set, const char *path, size_t len)
{
    for (size_t i = 0; i < set->target_count; i++)
        if (set->targets[i].path_len == len &&
            memcmp(set->paths.data + set->path_offsets[i], path, len) == 0)
            return true;
    return false;
}

/* Resolves one link; adds it to the targets when it may be pushed. */
static void collect_link(struct pg_link_set *set, const struct pg_link *link, const char *scheme,
                         const char *authority, struct pg_header base)
{
    char path[PG_HINTS_MAX_PUSH_PATH];
    size_t len;
    enum pg_url_origin origin;
    if (link->nopush) {
        set->hint_only = true;
        return;
    }
    int r = pg_url_resolve_same_origin(scheme, authority, base.value, base.value_len, link->target,
                                       link->target_len, path, sizeof(path), &len, &origin);
    if (r == PG_OK && origin == PG_URL_OTHER_ORIGIN)
        set->hint_only = true;
    /* "//x" is a legal :path, but many HTTP/1.1 servers read it as a host: never push it. */
    if (r != PG_OK || origin != PG_URL_SAME_ORIGIN || (len > 1 && path[1] == '/') ||
        set_has_path(set, path, len) || set->target_count == PG_LEARN_MAX_TARGETS)
        return;
    size_t offset = set->paths.len;
    if (pg_lines_add(&set->paths, path, len, "", "", 0) != PG_OK)
        return;
    set->path_offsets[set->target_count] = offset;
    set->targets[set->target_count++] = (struct pg_learned_target){NULL, len, link->as};
}

void pg_hints_collect(struct pg_header scheme, struct pg_header authority, struct pg_header base,
                      const struct pg_header *fields, size_t count, struct pg_link_set *set)
{
    char scheme_z[8], authority_z[256];
    memset(set, 0, sizeof(*set));
    size_t f = 0;
    while (f < count && !is_field(&fields[f], "link"))
        f++;
    if (f == count) /* most responses: nothing to resolve */
        return;
    if (scheme.value_len >= sizeof(scheme_z) || authority.value_len >= sizeof(authority_z))
        return;
    snprintf(scheme_z, sizeof(scheme_z), "%.*s", (int)scheme.value_len, scheme.value);
    snprintf(authority_z, sizeof(authority_z), "%.*s", (int)authority.value_len, authority.value);
    for (; f < count; f++) {
        if (!is_field(&fields[f], "link"))
            continue;
        struct pg_link links[PG_HINTS_MAX_LINKS];
        size_t n = pg_link_parse(fields[f].value, fields[f].value_len, links, PG_ARRAY_LEN(links));
        bool preload = false;
        for (size_t i = 0; i < n; i++) {
            if (!links[i].preload)
                continue;
            preload = true;
            collect_link(set, &links[i], scheme_z, authority_z, base);
        }
        if (preload && set->hint_count < PG_HINTS_MAX_FIELDS) {
            set->hints[set->hint_count] = fields[f].value;
            set->hint_lens[set->hint_count++] = fields[f].value_len;
        }
    }
    for (size_t i = 0; i < set->target_count; i++) /* the buffer no longer moves */
        set->targets[i].path = set->paths.data + set->path_offsets[i];
}

void pg_link_set_free(struct pg_link_set *set)
{
    pg_lines_free(&set->paths);
}

/* Our own 103 (RFC 8297): once per request, never on a pushed stream or after the final
 * response. */
static void send_hints(struct pg_request *req, const char *const *hints, const size_t *lens,
                       size_t count)
{
    struct pg_header fields[PG_HINTS_MAX_FIELDS];
    if (req->hinted || req->push || req->output != PG_OUTPUT_NONE || count == 0)
        return;
    if (count > PG_HINTS_MAX_FIELDS)
        count = PG_HINTS_MAX_FIELDS;
    for (size_t i = 0; i < count; i++)
        fields[i] = (struct pg_header){"link", 4, hints[i], lens[i]};
    req->hinted = true;
    if (req->pc->ops->submit_1xx(req, 103, fields, count) != PG_OK)
        pg_log_debug("cannot submit a 103");
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pg_hints_on_request(struct pg_request *req)
{
    const struct pg_proxy_env *env = req->pc->env;
    if (!env->learn || req->push || !view_is(req->head.method, "GET"))
        return;
    struct pg_header authority = req->head.authority, path = pg_request_path(req);
    const struct pg_learned *learned = pg_learn_lookup(
        env->learn, authority.value, authority.value_len, path.value, path.value_len, now_ms());
    if (!learned)
        return;
    bool push = pg_push_may(req, 200); /* the status is not known yet: assume success */
    bool covered = push && pg_push_targets(req, learned->targets, learned->target_count);
    /* What pushes do not cover (limits, nopush, other origins), a 103 still announces. */
    if (env->cfg->early_hints && (!covered || learned->hint_only))
        send_hints(req, learned->hints, learned->hint_lens, learned->hint_count);
}

static bool has_directive(const struct pg_header *f, const char *directive)
{
    size_t n = strlen(directive);
    for (size_t i = 0; i + n <= f->value_len; i++) {
        bool start = i == 0 || f->value[i - 1] == ',' || f->value[i - 1] == ' ';
        bool end = i + n == f->value_len || (f->value[i + n] && strchr(",; =", f->value[i + n]));
        if (start && end && strncasecmp(f->value + i, directive, n) == 0)
            return true;
    }
    return false;
}

/* What one user sees is not replayed to another: private responses and authorized requests
 * are not learned from unless the operator says so. */
static bool may_learn(const struct pg_request *req, const struct pg_response_head *head)
{
    if (req->push || !view_is(req->head.method, "GET") || head->status < 200 || head->status >= 300)
        return false;
    if (req->pc->env->cfg->push_learn_private)
        return true;
    if (pg_request_field(&req->head, "authorization"))
        return false;
    for (size_t i = 0; i < head->count; i++)
        if (is_field(&head->fields[i], "cache-control") &&
            (has_directive(&head->fields[i], "private") ||
             has_directive(&head->fields[i], "no-store")))
            return false;
    return true;
}

static void learn_links(struct pg_request *req, const struct pg_response_head *head,
                        const struct pg_link_set *set)
{
    struct pg_learn *table = req->pc->env->learn;
    if (!table || !may_learn(req, head))
        return;
    struct pg_header authority = req->head.authority, path = pg_request_path(req);
    struct pg_learned learned = {set->targets,   set->target_count, set->hints,
                                 set->hint_lens, set->hint_count,   set->hint_only};
    pg_learn_store(table, authority.value, authority.value_len, path.value, path.value_len,
                   &learned, now_ms());
}

void pg_hints_on_response(struct pg_request *req, const struct pg_response_head *head)
{
    struct pg_link_set set;
    pg_hints_collect(req->head.scheme, req->head.authority, pg_request_path(req), head->fields,
                     head->count, &set);
    bool informational = head->status < 200;
    if (set.target_count && pg_push_may(req, informational ? 200 : head->status))
        pg_push_targets(req, set.targets, set.target_count);
    if (!informational)
        learn_links(req, head, &set);
    pg_link_set_free(&set);
}
