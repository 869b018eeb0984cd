/* Which protocol a connection speaks, chosen among those main registered. */
#include "pushgate/protocol.h"

#include <string.h>

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const struct pg_protocol *pg_protocol_for_alpn(const struct pg_protocols *protocols,
                                               const unsigned char *alpn, unsigned len)
{
    if (len == 2 && memcmp(alpn, "h2", 2) == 0)
        return protocols->h2;
    if (len == 0 || (len == 8 && memcmp(alpn, "http/1.1", 8) == 0))
        return protocols->http1;
    return NULL;
}

bool pg_protocol_sniff(const struct pg_protocols *protocols, const unsigned char *data, size_t len,
                       const struct pg_protocol **proto)
{
    size_t want = sizeof(preface) - 1;
    size_t n = len < want ? len : want;
    if (memcmp(data, preface, n) != 0) {
        *proto = protocols->http1 ? protocols->http1 : protocols->h2;
        return true; /* not the preface: HTTP/1.x (or, without it, HTTP/2's own error) */
    }
    if (n < want)
        return false;
    *proto = protocols->h2;
    return true;
}
