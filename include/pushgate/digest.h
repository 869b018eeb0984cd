/* The cache digest: a compact probabilistic set of what was pushed to one browser, carried in
 * a cookie, so a returning client is not pushed what it probably has in its cache (in the
 * spirit of h2o's CASPer). Pure: plain data in, plain data out.
 *
 * A Bloom filter of PG_DIGEST_BITS bits with three probes per (authority, path). False
 * positives only cost a push (the client fetches the resource itself); the filter is started
 * afresh when half its bits are set, which bounds the false-positive rate near 1/8. */
#ifndef PUSHGATE_DIGEST_H
#define PUSHGATE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_DIGEST_COOKIE "pg_pushed"
#define PG_DIGEST_BITS 512
/* The cookie value: a version letter and the bits in base64url (no padding). */
#define PG_DIGEST_VALUE_LEN (1 + (PG_DIGEST_BITS / 8 * 4 + 2) / 3)

struct pg_digest {
    uint8_t bits[PG_DIGEST_BITS / 8];
};

/* Reads the digest out of one Cookie field value ("a=1; pg_pushed=...; b=2"). Returns true
 * when a well-formed digest cookie was found; otherwise leaves *d empty. */
bool pg_digest_from_cookie(struct pg_digest *d, const char *cookie, size_t len);

bool pg_digest_contains(const struct pg_digest *d, const char *authority, size_t authority_len,
                        const char *path, size_t path_len);

/* Adds a target; restarts the filter first when it is half full. */
void pg_digest_add(struct pg_digest *d, const char *authority, size_t authority_len,
                   const char *path, size_t path_len);

/* Writes the cookie value (PG_DIGEST_VALUE_LEN chars + NUL) to out[PG_DIGEST_VALUE_LEN + 1]. */
void pg_digest_format(const struct pg_digest *d, char *out);

#endif
