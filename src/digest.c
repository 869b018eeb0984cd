#include "pushgate/digest.h"
#include "pushgate/push_policy.h"

#include <string.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
#define VERSION 'a'

/* The shared target hash, finished with a 64-bit avalanche: FNV's low bits mix poorly for
 * short inputs and the probes take 16-bit slices. */
static uint64_t hash_target(const char *authority, size_t authority_len, const char *path,
                            size_t path_len)
{
    uint64_t h = pg_push_target_hash(authority, authority_len, path, path_len);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static unsigned probe(uint64_t h, int i)
{
    return (unsigned)(h >> (i * 16)) % PG_DIGEST_BITS;
}

bool pg_digest_contains(const struct pg_digest *d, const char *authority, size_t authority_len,
                        const char *path, size_t path_len)
{
    uint64_t h = hash_target(authority, authority_len, path, path_len);
    for (int i = 0; i < 3; i++) {
        unsigned bit = probe(h, i);
        if (!(d->bits[bit / 8] & (1u << (bit % 8))))
            return false;
    }
    return true;
}

static unsigned population(const struct pg_digest *d)
{
    unsigned n = 0;
    for (size_t i = 0; i < sizeof(d->bits); i++)
        n += (unsigned)__builtin_popcount(d->bits[i]);
    return n;
}

void pg_digest_add(struct pg_digest *d, const char *authority, size_t authority_len,
                   const char *path, size_t path_len)
{
    if (population(d) >= PG_DIGEST_BITS / 2)
        memset(d->bits, 0, sizeof(d->bits));
    uint64_t h = hash_target(authority, authority_len, path, path_len);
    for (int i = 0; i < 3; i++) {
        unsigned bit = probe(h, i);
        d->bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
}

void pg_digest_format(const struct pg_digest *d, char *out)
{
    size_t o = 0;
    out[o++] = VERSION;
    uint32_t acc = 0;
    int acc_bits = 0;
    for (size_t i = 0; i < sizeof(d->bits); i++) {
        acc = (acc << 8) | d->bits[i];
        acc_bits += 8;
        while (acc_bits >= 6) {
            acc_bits -= 6;
            out[o++] = b64url[(acc >> acc_bits) & 63];
        }
    }
    if (acc_bits > 0)
        out[o++] = b64url[(acc << (6 - acc_bits)) & 63];
    out[o] = '\0';
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

static bool parse_value(struct pg_digest *d, const char *v, size_t len)
{
    if (len != PG_DIGEST_VALUE_LEN || v[0] != VERSION)
        return false;
    struct pg_digest tmp = {0};
    uint32_t acc = 0;
    int acc_bits = 0;
    size_t o = 0;
    for (size_t i = 1; i < len; i++) {
        int x = b64_value(v[i]);
        if (x < 0)
            return false;
        acc = (acc << 6) | (uint32_t)x;
        acc_bits += 6;
        if (acc_bits >= 8) {
            acc_bits -= 8;
            if (o < sizeof(tmp.bits))
                tmp.bits[o++] = (uint8_t)(acc >> acc_bits);
        }
    }
    if (o != sizeof(tmp.bits))
        return false;
    *d = tmp;
    return true;
}

bool pg_digest_from_cookie(struct pg_digest *d, const char *cookie, size_t len)
{
    static const char name[] = PG_DIGEST_COOKIE "=";
    const size_t name_len = sizeof(name) - 1;
    memset(d, 0, sizeof(*d));
    size_t i = 0;
    while (i < len) {
        while (i < len && (cookie[i] == ' ' || cookie[i] == ';'))
            i++;
        size_t end = i;
        while (end < len && cookie[end] != ';')
            end++;
        if (end - i > name_len && memcmp(cookie + i, name, name_len) == 0) {
            size_t vend = end;
            while (vend > i + name_len && cookie[vend - 1] == ' ')
                vend--;
            return parse_value(d, cookie + i + name_len, vend - i - name_len);
        }
        i = end;
    }
    return false;
}
