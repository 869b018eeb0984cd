#include "pushgate/push.h"
#include "pushgate/common.h"
#include "pushgate/digest.h"
#include "pushgate/push_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pg_pushed_request_free(struct pg_pushed_request *pushed)
{
    if (!pushed)
        return;
    pg_lines_free(&pushed->strings);
    free(pushed);
}

static bool client_accepts_push(const struct pg_request *req)
{
    const struct pg_frontend_ops *ops = req->pc->ops;
    return ops->push && ops->push_allowed && ops->push_allowed(req);
}

bool pg_push_may(const struct pg_request *req, int status)
{
    struct pg_push_parent parent = {
        .push_configured = req->pc->env->cfg->push_enabled,
        .client_allows = client_accepts_push(req),
        .client_goaway = false, /* push_allowed answers for the client's GOAWAY too */
        .parent_is_pushed = req->push != NULL,
        .parent_is_get = pg_header_value_is(req->head.method, "GET"),
        .status = status,
    };
    return pg_push_parent_verdict(&parent) == PG_PUSH_YES;
}

bool pg_push_remember(struct pg_request *req, struct pg_header authority, const char *path,
                      size_t len)
{
    struct pg_proxy_conn *pc = req->pc;
    if (!pc->env->cfg->push_enabled || !client_accepts_push(req))
        return true;
    if (!pc->pushed && !(pc->pushed = calloc(1, sizeof(*pc->pushed))))
        return false;
    pg_push_memory_add(pc->pushed, authority.value, authority.value_len, path, len);
    return true;
}

static int add_string(struct pg_lines *strings, const char *s, size_t len)
{
    return pg_lines_add(strings, s, len, "", "", 0);
}

/* The fields a promised request carries: an accept fitting the link's as=, a few of the
 * parent's fields that shape the representation, and credentials only if configured. */
static int build_pushed_request(struct pg_pushed_request *req, const struct pg_request *parent,
                                const char *path, enum pg_link_as as)
{
    static const char *const copied[] = {"accept-encoding", "accept-language", "user-agent",
                                         "cache-control",   "cookie",          "authorization"};
    bool credentials = parent->pc->env->cfg->push_copy_cookies;
    const struct pg_request_head *head = &parent->head;
    const char *accept = pg_push_accept_for(as);
    int rv = add_string(&req->strings, head->scheme.value, head->scheme.value_len);
    rv = rv ? rv : add_string(&req->strings, head->authority.value, head->authority.value_len);
    rv = rv ? rv : add_string(&req->strings, path, strlen(path));
    rv = rv ? rv : pg_lines_add(&req->strings, "accept", 6, "", "", 0);
    rv = rv ? rv : add_string(&req->strings, accept, strlen(accept));
    size_t wanted = 1;
    for (size_t i = 0; i < head->count && rv == PG_OK && wanted < PG_PUSH_MAX_FIELDS; i++) {
        const struct pg_header *f = &head->fields[i];
        for (size_t c = 0; c < PG_ARRAY_LEN(copied); c++) {
            if (f->name_len != strlen(copied[c]) || memcmp(f->name, copied[c], f->name_len) ||
                (c >= 4 && !credentials))
                continue;
            rv = add_string(&req->strings, copied[c], strlen(copied[c]));
            rv = rv ? rv : add_string(&req->strings, f->value, f->value_len);
            wanted++;
        }
    }
    if (rv != PG_OK)
        return rv;
    /* The strings buffer no longer grows: views into it stay valid. */
    const char *p = req->strings.data;
    struct pg_header *views[] = {&req->scheme, &req->authority, &req->path};
    for (size_t i = 0; i < PG_ARRAY_LEN(views); i++, p += strlen(p) + 1)
        *views[i] = (struct pg_header){NULL, 0, p, strlen(p)};
    for (req->count = 0; req->count < wanted; req->count++) {
        const char *name = p;
        p += strlen(p) + 1;
        req->fields[req->count] = (struct pg_header){name, strlen(name), p, strlen(p)};
        p += strlen(p) + 1;
    }
    return PG_OK;
}

/* Promises path on parent's connection; the frontend queues its upstream fetch. */
static bool promise(struct pg_request *parent, const char *path, enum pg_link_as as)
{
    struct pg_pushed_request *pushed = calloc(1, sizeof(*pushed));
    if (!pushed)
        return false;
    if (build_pushed_request(pushed, parent, path, as) != PG_OK ||
        parent->pc->ops->push(parent, pushed) != PG_OK) {
        pg_pushed_request_free(pushed);
        return false;
    }
    return true;
}

static void load_digest(struct pg_request *req)
{
    req->digest_loaded = true;
    for (size_t i = 0; i < req->head.count; i++) {
        const struct pg_header *f = &req->head.fields[i];
        if (f->name_len == 6 && memcmp(f->name, "cookie", 6) == 0 &&
            pg_digest_from_cookie(&req->digest, f->value, f->value_len))
            return;
    }
}

bool pg_push_targets(struct pg_request *req, const struct pg_learned_target *targets, size_t count)
{
    struct pg_proxy_conn *pc = req->pc;
    const struct pg_config *cfg = pc->env->cfg;
    struct pg_header authority = req->head.authority;
    if (cfg->push_cache_digest && !req->digest_loaded)
        load_digest(req);
    size_t i = 0;
    for (; i < count && req->pushes < cfg->max_pushes_per_response; i++) {
        const char *path = targets[i].path;
        size_t len = targets[i].path_len;
        if (pc->pushed &&
            pg_push_memory_contains(pc->pushed, authority.value, authority.value_len, path, len))
            continue;
        if (cfg->push_cache_digest &&
            pg_digest_contains(&req->digest, authority.value, authority.value_len, path, len))
            continue;
        if (pc->running_pushes >= cfg->max_concurrent_pushes)
            return false;
        if (!pg_push_remember(req, authority, path, len) || !promise(req, path, targets[i].as))
            return false;
        req->pushes++;
        if (cfg->push_cache_digest) {
            pg_digest_add(&req->digest, authority.value, authority.value_len, path, len);
            req->digest_changed = true;
        }
    }
    return i == count;
}

void pg_push_format_cookie(const struct pg_request *req, char *out, size_t cap)
{
    char value[PG_DIGEST_VALUE_LEN + 1];
    pg_digest_format(&req->digest, value);
    snprintf(out, cap, PG_DIGEST_COOKIE "=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Lax%s", value,
             req->pc->env->cfg->push_cache_digest_max_age_ms / 1000,
             req->pc->env->tls ? "; Secure" : "");
}
