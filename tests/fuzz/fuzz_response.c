/* libFuzzer target: the HTTP/1.x response-head parser that sees every upstream head. */
#include "pushgate/common.h"
#include "pushgate/headers.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *block = malloc(size + 1);
    if (!block)
        return 0;
    memcpy(block, data, size);
    struct pg_header fields[32];
    struct pg_response_head head;
    if (pg_headers_parse_response(block, size, &head, fields, 32) == PG_OK) {
        assert(head.status >= 100 && head.status <= 999);
        for (size_t i = 0; i < head.count; i++) {
            const struct pg_header *h = &fields[i];
            assert(h->name >= block && h->name + h->name_len <= block + size);
            assert(h->value >= block && h->value + h->value_len <= block + size);
            assert(h->name_len > 0);
            for (size_t j = 0; j < h->name_len; j++)
                assert(h->name[j] > 0x20 && h->name[j] != ':' &&
                       !(h->name[j] >= 'A' && h->name[j] <= 'Z'));
            for (size_t j = 0; j < h->value_len; j++)
                assert(h->value[j] != '\r' && h->value[j] != '\n' && h->value[j] != '\0');
            assert(!pg_headers_is_hop_by_hop(h->name, h->name_len));
        }
    }
    free(block);
    return 0;
}
