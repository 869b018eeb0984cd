#include "pushgate/push_policy.h"
#include "pushgate/common.h"

enum pg_push_verdict pg_push_parent_verdict(const struct pg_push_parent *parent)
{
    if (!parent->push_configured || !parent->client_allows)
        return PG_PUSH_DISABLED;
    if (parent->client_goaway)
        return PG_PUSH_GOAWAY;
    if (parent->parent_is_pushed)
        return PG_PUSH_FROM_PUSH;
    if (!parent->parent_is_get)
        return PG_PUSH_NOT_GET;
    bool ok_2xx = parent->status >= 200 && parent->status < 300;
    bool ok_3xx = parent->status >= 300 && parent->status < 400 && parent->status != 304;
    if (!ok_2xx && !ok_3xx)
        return PG_PUSH_STATUS;
    return PG_PUSH_YES;
}

const char *pg_push_accept_for(enum pg_link_as as)
{
    switch (as) {
    case PG_LINK_AS_STYLE:
        return "text/css,*/*;q=0.1";
    case PG_LINK_AS_SCRIPT:
    case PG_LINK_AS_WORKER:
        return "*/*";
    case PG_LINK_AS_IMAGE:
        return "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    case PG_LINK_AS_FONT:
        return "font/woff2,font/woff,font/ttf,*/*;q=0.1";
    case PG_LINK_AS_DOCUMENT:
        return "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    case PG_LINK_AS_AUDIO:
        return "audio/*,*/*;q=0.1";
    case PG_LINK_AS_VIDEO:
        return "video/*,*/*;q=0.1";
    case PG_LINK_AS_TRACK:
        return "text/vtt,*/*;q=0.1";
    case PG_LINK_AS_FETCH:
    case PG_LINK_AS_NONE:
    case PG_LINK_AS_OTHER:
        break;
    }
    return "*/*";
}

/* FNV-1a over the lower-cased authority, a separator and the path. */
uint64_t pg_push_target_hash(const char *authority, size_t authority_len, const char *path,
                             size_t path_len)
{
    uint64_t h = PG_HASH_SEED;
    for (size_t i = 0; i < authority_len; i++)
        h = pg_hash_byte(h, (unsigned char)pg_ascii_lower(authority[i]));
    h = pg_hash_byte(h, 0xff);
    return pg_hash_bytes(h, path, path_len);
}

bool pg_push_memory_contains(const struct pg_push_memory *mem, const char *authority,
                             size_t authority_len, const char *path, size_t path_len)
{
    uint64_t h = pg_push_target_hash(authority, authority_len, path, path_len);
    for (size_t i = 0; i < mem->count; i++)
        if (mem->hashes[i] == h)
            return true;
    return false;
}

void pg_push_memory_add(struct pg_push_memory *mem, const char *authority, size_t authority_len,
                        const char *path, size_t path_len)
{
    if (pg_push_memory_contains(mem, authority, authority_len, path, path_len))
        return;
    mem->hashes[mem->next] = pg_push_target_hash(authority, authority_len, path, path_len);
    mem->next = (mem->next + 1) % PG_PUSH_MEMORY_SIZE;
    if (mem->count < PG_PUSH_MEMORY_SIZE)
        mem->count++;
}
