/* HTTP/2 <-> HTTP/1.1 header mapping (pure: plain data in, plain data out).
 *
 * Request side: the client's HTTP/2 fields become the header lines libcurl sends upstream, with
 * hop-by-hop fields removed and forwarding fields added. Response side: an HTTP/1.x response
 * head collected from libcurl is parsed and validated in place into fields for HTTP/2. */
#ifndef PUSHGATE_HEADERS_H
#define PUSHGATE_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A borrowed name/value view; neither is NUL-terminated. */
struct pg_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The value is exactly lit (case-sensitive): methods, schemes, fixed field values. */
static inline bool pg_header_value_is(struct pg_header h, const char *lit)
{
    size_t n = strlen(lit);
    return h.value_len == n && memcmp(h.value, lit, n) == 0;
}

/* The three digits of a status code (100-999) into out[0..2], without printf (once per
 * response); false for any other number. */
static inline bool pg_status_digits(int status, char *out)
{
    if (status < 100 || status > 999)
        return false;
    out[0] = (char)('0' + status / 100);
    out[1] = (char)('0' + status / 10 % 10);
    out[2] = (char)('0' + status % 10);
    return true;
}

/* The (lower-case) name is exactly lit. */
static inline bool pg_header_name_is(const struct pg_header *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && memcmp(h->name, lit, n) == 0;
}

/* NUL-separated header lines in one growable buffer. Owner calls pg_lines_free. */
struct pg_lines {
    char *data;
    size_t len;
    size_t cap;
    size_t count; /* number of lines */
};

void pg_lines_free(struct pg_lines *lines);
/* Appends name + sep + value + NUL. Returns 0 or PG_ERR_NOMEM. */
int pg_lines_add(struct pg_lines *lines, const char *name, size_t name_len, const char *sep,
                 const char *value, size_t value_len);

struct pg_request_info {
    const char *authority; /* :authority (or host) of the request; required */
    size_t authority_len;
    const struct pg_header *fields; /* regular fields in arrival order, names lower-case */
    size_t count;
    const char *client_addr; /* textual peer address, for X-Forwarded-For */
    bool tls;                /* the client connection is TLS (X-Forwarded-Proto) */
    bool push;               /* a pushed request: add X-Http2-Push: 1 */
};

/* Builds the upstream header lines (libcurl CURLOPT_HTTPHEADER syntax: "Name: value", an empty
 * value as "Name;", a bare "Name:" suppresses a header libcurl would add). Writes the client's
 * content-length (or -1) to *content_length; it is never copied as a field. Returns 0,
 * PG_ERR_INVALID (a byte that cannot appear in an HTTP/1.1 field, or an unparsable or
 * conflicting content-length) or PG_ERR_NOMEM. */
int pg_headers_build_upstream(const struct pg_request_info *req, struct pg_lines *out,
                              long long *content_length);

/* RFC 9110 §5.6.2 tchar: the one token table every parser of ours uses. */
bool pg_headers_is_tchar(unsigned char c);
/* A non-empty token (a field name, a method). */
bool pg_headers_is_token(const char *s, size_t len);
/* RFC 9110 §5.5: a field value holds no control byte other than HTAB, and no DEL. */
bool pg_headers_value_ok(const char *s, size_t len);
/* True when the list value (as Connection carries: tokens separated by commas or whitespace)
 * names token, case-insensitively. */
bool pg_headers_list_has(const char *value, size_t len, const char *token, size_t token_len);

/* True for the fields HTTP/2 forbids and HTTP/1.1 uses hop-by-hop (lower-case name). */
bool pg_headers_is_hop_by_hop(const char *name, size_t len);

struct pg_response_head {
    int status;
    struct pg_header *fields; /* views into the parsed block */
    size_t count;
    long long content_length; /* its content-length field's value; -1 without one */
};

/* Parses an HTTP/1.x response head ("HTTP/1.1 200 OK\r\nName: value\r\n...") in place: names
 * are lower-cased in the block, values trimmed; hop-by-hop fields and fields named in
 * Connection are dropped. fields[cap] is the caller's storage. Returns 0, PG_ERR_INVALID
 * (malformed status line or field, obs-fold, bare CR, NUL, conflicting Content-Length, or
 * Content-Length with Transfer-Encoding) or PG_ERR_TOO_LONG (more than cap fields). */
int pg_headers_parse_response(char *block, size_t len, struct pg_response_head *out,
                              struct pg_header *fields, size_t cap);

#endif
