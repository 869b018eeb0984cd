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

/* The upstream's response heads hold at most this many fields (upstream.c), as do ours. */
#define MAX_1XX_FIELDS 256

static bool set_has_path(const struct pg_link_set *set, const char *path, size_t len)
{
    for (size_t i = 0; i < set->target_count; i++)
        if (set->targets[i].path_len == len &&
            memcmp(set->paths.data + set->path_offsets[i], path, len) == 0)
            return true;
    return false;
}

/* A modulepreload is fetched as a script: its promised request asks for one. */
static enum pg_link_as push_as(const struct pg_link *link)
{
    if (link->as == PG_LINK_AS_NONE && !(link->rels & PG_LINK_REL_PRELOAD))
        return PG_LINK_AS_SCRIPT;
    return link->as;
}

/* Resolves a preload or modulepreload link; adds its target when it may be pushed. Returns
 * true when push cannot deliver it although a browser could use it (nopush, another origin). */
static bool collect_target(struct pg_link_set *set, const struct pg_link *link, const char *scheme,
                           const char *authority, struct pg_header base)
{
    char path[PG_HINTS_MAX_PUSH_PATH];
    size_t len;
    enum pg_url_origin origin;
    if (link->nopush)
        return true;
    int r = pg_url_resolve_same_origin(scheme, authority, base.value, base.value_len, link->target,
                                       link->target_len, path, sizeof(path), &len, &origin);
    if (r == PG_OK && origin == PG_URL_OTHER_ORIGIN)
        return true;
    /* "//x" is a legal :path, but many HTTP/1.1 servers read it as a host: never push it. */
    if (r != PG_OK || origin != PG_URL_SAME_ORIGIN || (len > 1 && path[1] == '/') ||
        set_has_path(set, path, len) || set->target_count == PG_LEARN_MAX_TARGETS)
        return false;
    size_t offset = set->paths.len;
    if (pg_lines_add(&set->paths, path, len, "", "", 0) != PG_OK)
        return false;
    set->path_offsets[set->target_count] = offset;
    set->targets[set->target_count++] = (struct pg_learned_target){NULL, len, push_as(link)};
    return false;
}

/* Keeps a hintable link-value for a 103 unless it is a repeat or does not fit. */
static void collect_hint(struct pg_link_set *set, const struct pg_link *link, bool hint_only)
{
    struct pg_learned_link l = {
        link->text, link->text_len, link->target, link->target_len, link->rels & PG_HINTS_RELS,
        link->as,   hint_only};
    if (set->link_count == PG_LEARN_MAX_LINKS ||
        set->link_bytes + l.text_len > PG_LEARN_MAX_HINT_BYTES)
        return;
    for (size_t i = 0; i < set->link_count; i++)
        if (pg_learn_same_link(&set->links[i], &l))
            return;
    set->links[set->link_count++] = l;
    set->link_bytes += l.text_len;
    set->hint_only = set->hint_only || hint_only;
}

static void collect_link(struct pg_link_set *set, const struct pg_link *link, const char *scheme,
                         const char *authority, struct pg_header base)
{
    /* A preconnect does what no push can: open a connection to another origin. */
    bool hint_only = (link->rels & PG_LINK_REL_PRECONNECT) != 0;
    if (link->rels & PG_HINTS_PUSH_RELS)
        hint_only = collect_target(set, link, scheme, authority, base) || hint_only;
    collect_hint(set, link, hint_only);
}

void pg_hints_collect(struct pg_header scheme, struct pg_header authority, struct pg_header base,
                      const struct pg_header *fields, size_t count, struct pg_link_set *set)
{
    char scheme_z[8], authority_z[256];
    /* The counts, not the arrays (kilobytes, read only below the counts): a response without
     * Link fields costs no memset. */
    set->paths = (struct pg_lines){0};
    set->target_count = set->link_count = set->link_bytes = 0;
    set->hint_only = false;
    size_t f = 0;
    while (f < count && !pg_header_name_is(&fields[f], "link"))
        f++;
    if (f == count) /* most responses: nothing to resolve */
        return;
    if (scheme.value_len >= sizeof(scheme_z) || authority.value_len >= sizeof(authority_z))
        return;
    snprintf(scheme_z, sizeof(scheme_z), "%.*s", (int)scheme.value_len, scheme.value);
    snprintf(authority_z, sizeof(authority_z), "%.*s", (int)authority.value_len, authority.value);
    for (; f < count; f++) {
        if (!pg_header_name_is(&fields[f], "link"))
            continue;
        struct pg_link links[PG_HINTS_MAX_LINKS];
        size_t n = pg_link_parse(fields[f].value, fields[f].value_len, links, PG_ARRAY_LEN(links));
        for (size_t i = 0; i < n; i++)
            if (links[i].rels & PG_HINTS_RELS)
                collect_link(set, &links[i], scheme_z, authority_z, base);
    }
    for (size_t i = 0; i < set->target_count; i++) /* the buffer no longer moves */
        set->targets[i].path = set->paths.data + set->path_offsets[i];
}

void pg_link_set_free(struct pg_link_set *set)
{
    pg_lines_free(&set->paths);
}

/* A field value compared as a token, surrounding whitespace aside. */
static bool value_is_token(const struct pg_header *f, const char *lit)
{
    const char *v = f->value;
    size_t n = f->value_len;
    while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == strlen(lit) && memcmp(v, lit, n) == 0;
}

bool pg_hints_navigation(const struct pg_request_head *head)
{
    for (size_t i = 0; i < head->count; i++) {
        const struct pg_header *f = &head->fields[i];
        if (pg_header_name_is(f, "sec-fetch-mode") && !value_is_token(f, "navigate"))
            return false;
        if (pg_header_name_is(f, "sec-fetch-dest") && !value_is_token(f, "document"))
            return false;
    }
    return true;
}

/* Our own 103 (RFC 8297): once per request, never on a pushed stream or after the final
 * response; one link field per link-value, as the upstream wrote it. */
static void send_hints(struct pg_request *req, const struct pg_learned *learned)
{
    struct pg_header fields[PG_LEARN_MAX_LINKS];
    size_t n = 0, bytes = 0;
    if (req->hinted || req->push || req->output != PG_OUTPUT_NONE || learned->link_count == 0)
        return;
    for (size_t i = 0; i < learned->link_count && n < PG_ARRAY_LEN(fields); i++) {
        const struct pg_learned_link *l = &learned->links[i];
        if (bytes + l->text_len > PG_LEARN_MAX_HINT_BYTES)
            break; /* the table keeps within this already */
        fields[n++] = (struct pg_header){"link", 4, l->text, l->text_len};
        bytes += l->text_len;
    }
    req->hinted = true; /* once per request, sent or declined */
    if (req->pc->ops->submit_1xx(req, 103, fields, n) != PG_OK) {
        pg_log_debug("103 not sent (declined by the protocol, or refused)");
        return;
    }
    req->hinted_links = (unsigned)n; /* sent: for the access log and the counters */
}

static const struct pg_learned *lookup_page(const struct pg_request *req)
{
    struct pg_header authority = req->head.authority, path = pg_request_path(req);
    return pg_learn_lookup(req->pc->env->learn, authority.value, authority.value_len, path.value,
                           path.value_len, pg_now_ms());
}

void pg_hints_on_request(struct pg_request *req)
{
    const struct pg_proxy_env *env = req->pc->env;
    if (!env->learn || req->push || !pg_header_value_is(req->head.method, "GET"))
        return;
    const struct pg_learned *learned = lookup_page(req);
    pg_count(&env->counters->learned_lookups[learned ? PG_LOOKUP_HIT : PG_LOOKUP_MISS], 1);
    if (!learned) {
        req->learn_absent_mark = pg_learn_mark(env->learn) + 1;
        return;
    }
    bool push = pg_push_may(req, 200); /* the status is not known yet: assume success */
    bool covered = push && pg_push_targets(req, learned->targets, learned->target_count);
    /* What pushes do not cover (limits, nopush, other origins, preconnect), a 103 still
     * announces: to navigations only, the one request browsers act on a 103 for. */
    if (env->cfg->early_hints && (!covered || learned->hint_only) &&
        pg_hints_navigation(&req->head))
        send_hints(req, learned);
    if (req->hinted)
        req->hint_version = learned->version;
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

/* Only a client's GET has a page to learn, hint or forget. */
static bool is_page_request(const struct pg_request *req)
{
    return req->pc->env->learn && !req->push && pg_header_value_is(req->head.method, "GET");
}

/* What one user sees is not replayed to another: authorized requests and private responses
 * (head NULL: not known yet) are not learned from unless the operator says so. */
static bool may_learn(const struct pg_request *req, const struct pg_response_head *head)
{
    if (req->pc->env->cfg->push_learn_private)
        return true;
    if (pg_request_field(&req->head, "authorization"))
        return false;
    for (size_t i = 0; head && i < head->count; i++)
        if (pg_header_name_is(&head->fields[i], "cache-control") &&
            (has_directive(&head->fields[i], "private") ||
             has_directive(&head->fields[i], "no-store")))
            return false;
    return true;
}

static struct pg_learned learned_of(const struct pg_link_set *set)
{
    return (struct pg_learned){set->targets,    set->target_count, set->links,
                               set->link_count, set->hint_only,    0};
}

/* The upstream's own 103: its links join what is learned from this response's final head. */
static void stage_links(struct pg_request *req, const struct pg_link_set *set)
{
    if (!is_page_request(req) || !may_learn(req, NULL) || set->link_count + set->target_count == 0)
        return;
    struct pg_learned links = learned_of(set);
    if (pg_learn_stage(req->pc->env->learn, &req->learn_stamp, &links, pg_now_ms()) != PG_OK)
        pg_log_debug("cannot stage the upstream's 103 links");
}

/* The final head decides what the page's entry becomes: this response's 103 links and final
 * links (2xx), unchanged (304: the client has the page; private), or nothing (any other status:
 * a redirect, an error page or a login form is not the page the hints were for). */
static void learn_final(struct pg_request *req, const struct pg_response_head *head,
                        const struct pg_link_set *set)
{
    if (!is_page_request(req))
        return;
    struct pg_learn *table = req->pc->env->learn;
    /* Most responses name no link for a page never learned: when nothing was staged either and
     * no entry was added since the request's lookup missed, there is nothing to store, replace
     * or forget, and the page's key need not be made and hashed again. */
    if (set->link_count + set->target_count == 0 && !req->learn_stamp &&
        req->learn_absent_mark == pg_learn_mark(table) + 1)
        return;
    struct pg_header authority = req->head.authority, path = pg_request_path(req);
    bool success = head->status >= 200 && head->status < 300;
    if (success && may_learn(req, head)) {
        struct pg_learned learned = learned_of(set);
        pg_learn_store(table, authority.value, authority.value_len, path.value, path.value_len,
                       &learned, req->learn_stamp, pg_now_ms());
    } else {
        if (!success && head->status != 304)
            pg_learn_forget(table, authority.value, authority.value_len, path.value,
                            path.value_len);
        pg_learn_unstage(table, req->learn_stamp);
    }
    req->learn_stamp = 0;
}

/* Browsers act on the first 103 only, which was ours: a later one is worth sending only for
 * a link ours did not name (push-enabled clients were pushed those already). When the entry
 * ours came from has been replaced since, what ours named is no longer known: forward. */
static bool names_new_links(const struct pg_request *req, const struct pg_link_set *set)
{
    const struct pg_learned *ours = lookup_page(req);
    if (!ours || ours->version != req->hint_version)
        return true;
    for (size_t i = 0; i < set->link_count; i++) {
        bool known = false;
        for (size_t k = 0; k < ours->link_count && !known; k++)
            known = pg_learn_same_link(&ours->links[k], &set->links[i]);
        if (!known)
            return true;
    }
    return false;
}

/* Forwards an upstream 1xx without the fields no 1xx may carry (the response parser dropped
 * hop-by-hop fields already; a content-length of 0 it lets through). */
static void forward_1xx(struct pg_request *req, const struct pg_response_head *head,
                        const struct pg_link_set *set)
{
    struct pg_header fields[MAX_1XX_FIELDS];
    size_t n = 0;
    if (head->status == 103 && req->hinted && req->hint_version && !names_new_links(req, set)) {
        pg_log_debug("the upstream's 103 names no link ours did not: not forwarded");
        return;
    }
    for (size_t i = 0; i < head->count && n < PG_ARRAY_LEN(fields); i++) {
        const struct pg_header *f = &head->fields[i];
        if (!pg_header_name_is(f, "content-length") &&
            !pg_headers_is_hop_by_hop(f->name, f->name_len))
            fields[n++] = *f;
    }
    if (req->pc->ops->submit_1xx(req, head->status, fields, n) != PG_OK)
        pg_log_debug("the upstream's %d not forwarded (declined or refused)", head->status);
    else if (head->status == 103)
        pg_count(&req->pc->env->counters->early_hints_sent[PG_HINT_UPSTREAM], 1);
}

void pg_hints_on_response(struct pg_request *req, const struct pg_response_head *head)
{
    struct pg_link_set set;
    pg_hints_collect(req->head.scheme, req->head.authority, pg_request_path(req), head->fields,
                     head->count, &set);
    bool informational = head->status < 200;
    if (set.target_count && pg_push_may(req, informational ? 200 : head->status))
        pg_push_targets(req, set.targets, set.target_count);
    if (informational) {
        stage_links(req, &set);
        forward_1xx(req, head, &set);
    } else {
        learn_final(req, head, &set);
    }
    pg_link_set_free(&set);
}
