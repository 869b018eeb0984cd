/* libFuzzer target: the Link field parser and the same-origin resolver behind it, fed exactly as
 * the proxy feeds them (one field value; each target resolved against a fixed request). */
#include "pushgate/link.h"
#include "pushgate/url.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan catches any read past the end of the field. */
    char *value = malloc(size ? size : 1);
    if (!value)
        return 0;
    memcpy(value, data, size);
    struct pg_link links[64];
    size_t n = pg_link_parse(value, size, links, 64);
    assert(n <= 64);
    for (size_t i = 0; i < n; i++) {
        const struct pg_link *l = &links[i];
        assert(l->target >= value && l->target + l->target_len <= value + size);
        /* The link-value's text is what a 103 repeats: a view holding its own target. */
        assert(l->text >= value && l->text + l->text_len <= value + size);
        assert(l->text[0] == '<' && l->target == l->text + 1);
        assert(l->target + l->target_len < l->text + l->text_len &&
               l->target[l->target_len] == '>');
        assert(l->text[l->text_len - 1] != ' ' && l->text[l->text_len - 1] != '\t');
        assert(i == 0 || l->text >= links[i - 1].text + links[i - 1].text_len);
        assert((l->rels & ~(unsigned)(PG_LINK_REL_PRELOAD | PG_LINK_REL_MODULEPRELOAD |
                                      PG_LINK_REL_PRECONNECT | PG_LINK_REL_DNS_PREFETCH |
                                      PG_LINK_REL_PREFETCH)) == 0);
        assert(pg_link_as_name(l->as) != NULL);
        char out[2048];
        size_t out_len = 0;
        enum pg_url_origin origin;
        int r = pg_url_resolve_same_origin("https", "example.com", "/dir/page?q=1", 13, l->target,
                                           l->target_len, out, sizeof out, &out_len, &origin);
        assert(r == PG_OK || r == PG_ERR_INVALID || r == PG_ERR_TOO_LONG);
        if (r == PG_OK && origin == PG_URL_SAME_ORIGIN) {
            assert(out_len < sizeof out && out[out_len] == '\0' && out[0] == '/');
            assert(strchr(out, '#') == NULL);
            char *query = strchr(out, '?');
            if (query)
                *query = '\0'; /* dot-segments are only special in the path */
            assert(strstr(out, "/../") == NULL && strstr(out, "/./") == NULL);
            /* The same rule as a request path's: pushing the result never changes it. */
            char again[sizeof out];
            size_t again_len = 0;
            r = pg_url_remove_dot_segments(out, strlen(out), again, sizeof again, &again_len);
            assert(r == PG_OK && again_len == strlen(out) && memcmp(again, out, again_len) == 0);
        }
    }
    assert(pg_link_parse(value, size, NULL, 0) == 0);
    free(value);
    return 0;
}
