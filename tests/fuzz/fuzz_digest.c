/* libFuzzer target: the pg_pushed cookie parser, which reads client-controlled bytes. */
#include "pushgate/digest.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *cookie = malloc(size ? size : 1); /* exact size: ASan sees any overread */
    if (!cookie)
        return 0;
    memcpy(cookie, data, size);
    struct pg_digest d;
    if (pg_digest_from_cookie(&d, cookie, size)) {
        /* What parses formats back to the same value, and stays usable. */
        char value[PG_DIGEST_VALUE_LEN + 1];
        pg_digest_format(&d, value);
        assert(strlen(value) == PG_DIGEST_VALUE_LEN);
        struct pg_digest again;
        char round[PG_DIGEST_VALUE_LEN + 16] = PG_DIGEST_COOKIE "=";
        strcat(round, value);
        assert(pg_digest_from_cookie(&again, round, strlen(round)));
        assert(memcmp(again.bits, d.bits, sizeof d.bits) == 0);
        pg_digest_add(&d, "h", 1, "/x", 2);
        assert(pg_digest_contains(&d, "h", 1, "/x", 2));
    }
    free(cookie);
    return 0;
}
