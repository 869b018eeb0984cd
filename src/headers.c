#include "pushgate/headers.h"
#include "pushgate/common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A lower-case name is exactly lit: compared by length, then bytes. */
#define IS_LIT(s, len, lit) ((len) == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)
#define NAME_IS(h, lit) IS_LIT((h)->name, (h)->name_len, lit)

void pg_lines_free(struct pg_lines *lines)
{
    free(lines->data);
    *lines = (struct pg_lines){0};
}

static int reserve(struct pg_lines *lines, size_t extra)
{
    if (lines->len + extra <= lines->cap)
        return PG_OK;
    size_t cap = lines->cap ? lines->cap : 512;
    while (cap < lines->len + extra)
        cap *= 2;
    char *data = realloc(lines->data, cap);
    if (!data)
        return PG_ERR_NOMEM;
    lines->data = data;
    lines->cap = cap;
    return PG_OK;
}

static void append(struct pg_lines *lines, const char *bytes, size_t len)
{
    memcpy(lines->data + lines->len, bytes, len);
    lines->len += len;
}

int pg_lines_add(struct pg_lines *lines, const char *name, size_t name_len, const char *sep,
                 const char *value, size_t value_len)
{
    size_t sep_len = strlen(sep);
    if (reserve(lines, name_len + sep_len + value_len + 1) != PG_OK)
        return PG_ERR_NOMEM;
    append(lines, name, name_len);
    append(lines, sep, sep_len);
    append(lines, value, value_len);
    lines->data[lines->len++] = '\0';
    lines->count++;
    return PG_OK;
}

static bool equals_ci(const char *a, size_t a_len, const char *lit)
{
    return a_len == strlen(lit) && strncasecmp(a, lit, a_len) == 0;
}

/* By length first: most names match no candidate's length, and each length has at most two.
 * Names are lower-case here (both frontends' and the response parser's). */
bool pg_headers_is_hop_by_hop(const char *name, size_t len)
{
    switch (len) {
    case 2:
        return IS_LIT(name, len, "te");
    case 7:
        return IS_LIT(name, len, "upgrade");
    case 10:
        return IS_LIT(name, len, "connection") || IS_LIT(name, len, "keep-alive");
    case 14:
        return IS_LIT(name, len, "http2-settings");
    case 16:
        return IS_LIT(name, len, "proxy-connection");
    case 17:
        return IS_LIT(name, len, "transfer-encoding");
    default:
        return false;
    }
}

/* Eight bytes at a time (field checks): whether a word holds a byte below n (n <= 0x80), or
 * the byte b. */
#define WORD_ONES 0x0101010101010101u
#define WORD_HIGHS 0x8080808080808080u

static bool word_has_below(uint64_t w, unsigned char n)
{
    return ((w - n * WORD_ONES) & ~w & WORD_HIGHS) != 0;
}

static bool word_has_byte(uint64_t w, unsigned char b)
{
    return word_has_below(w ^ (b * WORD_ONES), 1);
}

/* Bytes that could end or split an HTTP/1.1 header line. Every request field is checked, and
 * nearly none has one. */
static bool has_line_breaker(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof(w));
        if (word_has_byte(w, 0) || word_has_byte(w, '\r') || word_has_byte(w, '\n'))
            return true;
    }
    for (; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return true;
    return false;
}

static bool parse_content_length(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 18)
        return false;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Fields the request mapping never copies as they are: 0 for any other, else a bit; the
 * JOINED ones come back joined into one field (add_joined). */
enum replaced_field {
    REPLACED = 1,       /* dropped, or rewritten from elsewhere */
    JOINED_COOKIE = 2,  /* RFC 9113 §8.2.3: crumbs joined with "; " */
    JOINED_VIA = 4,     /* with ours appended */
    JOINED_FORWARD = 8, /* x-forwarded-for, with the client's address appended */
};

static unsigned replaced_request_field(const struct pg_header *h)
{
    switch (h->name_len) { /* by length first: most fields match none */
    case 3:
        return NAME_IS(h, "via") ? JOINED_VIA : 0;
    case 4:
        return NAME_IS(h, "host") ? REPLACED : 0;
    case 6:
        return NAME_IS(h, "expect") ? REPLACED : NAME_IS(h, "cookie") ? JOINED_COOKIE : 0;
    case 12:
        return NAME_IS(h, "x-http2-push") ? REPLACED : 0;
    case 14:
        return NAME_IS(h, "content-length") ? REPLACED : 0;
    case 15:
        return NAME_IS(h, "x-forwarded-for") ? JOINED_FORWARD : 0;
    case 17:
        return NAME_IS(h, "x-forwarded-proto") ? REPLACED : 0;
    default:
        return 0;
    }
}

/* The fields named name (present: the request has some) joined with sep, extra (NULL: none)
 * appended, written straight into out as one line; nothing when there is neither. */
static int add_joined(struct pg_lines *out, const struct pg_request_info *req, bool present,
                      const char *name, const char *sep, const char *extra)
{
    size_t n = strlen(name), extra_len = extra ? strlen(extra) : 0;
    if (!present) /* the usual case: no field to look for */
        return extra ? pg_lines_add(out, name, n, ": ", extra, extra_len) : PG_OK;
    size_t sep_len = strlen(sep), joined = 0;
    for (size_t i = 0; i < req->count; i++) {
        const struct pg_header *h = &req->fields[i];
        if (h->name_len == n && memcmp(h->name, name, n) == 0)
            joined += (joined ? sep_len : 0) + h->value_len;
    }
    if (extra)
        joined += (joined ? sep_len : 0) + extra_len;
    if (reserve(out, n + 2 + joined + 1) != PG_OK)
        return PG_ERR_NOMEM;
    append(out, name, n);
    append(out, joined ? ": " : ";", joined ? 2 : 1);
    size_t start = out->len;
    for (size_t i = 0; i < req->count; i++) {
        const struct pg_header *h = &req->fields[i];
        if (h->name_len != n || memcmp(h->name, name, n) != 0)
            continue;
        if (out->len > start)
            append(out, sep, sep_len);
        append(out, h->value, h->value_len);
    }
    if (extra) {
        if (out->len > start)
            append(out, sep, sep_len);
        append(out, extra, extra_len);
    }
    out->data[out->len++] = '\0';
    out->count++;
    return PG_OK;
}

/* Adds h unless it is dropped or replaced; *joined collects the JOINED bits of those left for
 * add_joined. */
static int add_request_field(struct pg_lines *out, const struct pg_header *h, long long *cl,
                             unsigned *joined)
{
    if (NAME_IS(h, "content-length")) {
        long long v;
        if (!parse_content_length(h->value, h->value_len, &v) || (*cl >= 0 && *cl != v))
            return PG_ERR_INVALID;
        *cl = v;
        return PG_OK;
    }
    if (NAME_IS(h, "te") && equals_ci(h->value, h->value_len, "trailers"))
        return pg_lines_add(out, h->name, h->name_len, ": ", h->value, h->value_len);
    /* Underscore names can alias dash names in CGI-style backends; drop them as nginx does. */
    if (memchr(h->name, '_', h->name_len) || pg_headers_is_hop_by_hop(h->name, h->name_len) ||
        (h->name_len && h->name[0] == ':'))
        return PG_OK;
    unsigned replaced = replaced_request_field(h);
    *joined |= replaced & ~(unsigned)REPLACED;
    if (replaced)
        return PG_OK;
    /* libcurl's syntax for "send this field with an empty value" is "Name;". */
    if (h->value_len == 0)
        return pg_lines_add(out, h->name, h->name_len, ";", "", 0);
    return pg_lines_add(out, h->name, h->name_len, ": ", h->value, h->value_len);
}

int pg_headers_build_upstream(const struct pg_request_info *req, struct pg_lines *out,
                              long long *content_length)
{
    int result = PG_OK;
    bool has_accept = false;
    unsigned joined = 0;
    *content_length = -1;
    if (req->authority_len == 0 || has_line_breaker(req->authority, req->authority_len))
        return PG_ERR_INVALID;
    for (size_t i = 0; i < req->count; i++) {
        const struct pg_header *h = &req->fields[i];
        if (has_line_breaker(h->name, h->name_len) || has_line_breaker(h->value, h->value_len))
            return PG_ERR_INVALID;
    }
    result = pg_lines_add(out, "Host", 4, ": ", req->authority, req->authority_len);
    for (size_t i = 0; i < req->count && result == PG_OK; i++) {
        has_accept |= NAME_IS(&req->fields[i], "accept");
        result = add_request_field(out, &req->fields[i], content_length, &joined);
    }
    if (result != PG_OK)
        return result;
    /* RFC 9113 §8.2.3: cookie crumbs are joined with "; " for HTTP/1.1. */
    if ((result = add_joined(out, req, joined & JOINED_COOKIE, "cookie", "; ", NULL)) != PG_OK)
        return result;
    if ((result = add_joined(out, req, joined & JOINED_VIA, "via", ", ", "2 pushgate")) != PG_OK)
        return result;
    if ((result = add_joined(out, req, joined & JOINED_FORWARD, "x-forwarded-for", ", ",
                             req->client_addr)) != PG_OK)
        return result;
    const char *proto = req->tls ? "https" : "http";
    if ((result = pg_lines_add(out, "X-Forwarded-Proto", 17, ": ", proto, strlen(proto))))
        return result;
    if (req->push && (result = pg_lines_add(out, "X-Http2-Push", 12, ": ", "1", 1)))
        return result;
    /* Suppress what libcurl would add on its own: the client did not send it. */
    if (!has_accept && (result = pg_lines_add(out, "Accept", 6, ":", "", 0)))
        return result;
    return pg_lines_add(out, "Expect", 6, ":", "", 0);
}

/* RFC 9110 tchar, lower-cased; 0 for any other byte: a field name is checked and lower-cased
 * in one lookup per byte. */
static const unsigned char name_byte[256] = {
    ['!'] = '!', ['#'] = '#', ['$'] = '$', ['%'] = '%', ['&'] = '&', ['\''] = '\'', ['*'] = '*',
    ['+'] = '+', ['-'] = '-', ['.'] = '.', ['^'] = '^', ['_'] = '_', ['`'] = '`',   ['|'] = '|',
    ['~'] = '~', ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4',   ['5'] = '5',
    ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9', ['A'] = 'a', ['B'] = 'b',   ['C'] = 'c',
    ['D'] = 'd', ['E'] = 'e', ['F'] = 'f', ['G'] = 'g', ['H'] = 'h', ['I'] = 'i',   ['J'] = 'j',
    ['K'] = 'k', ['L'] = 'l', ['M'] = 'm', ['N'] = 'n', ['O'] = 'o', ['P'] = 'p',   ['Q'] = 'q',
    ['R'] = 'r', ['S'] = 's', ['T'] = 't', ['U'] = 'u', ['V'] = 'v', ['W'] = 'w',   ['X'] = 'x',
    ['Y'] = 'y', ['Z'] = 'z', ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd',   ['e'] = 'e',
    ['f'] = 'f', ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k',   ['l'] = 'l',
    ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r',   ['s'] = 's',
    ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y',   ['z'] = 'z',
};

bool pg_headers_is_tchar(unsigned char c)
{
    return name_byte[c] != 0;
}

bool pg_headers_is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!name_byte[(unsigned char)s[i]])
            return false;
    return len > 0;
}

/* Bytes a field value may not contain (RFC 9110 §5.5): controls other than HTAB, and DEL. */
static const bool value_forbidden[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
    [0x08] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1, [0x10] = 1,
    [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1,
    [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [0x7f] = 1,
};

/* Eight bytes at a time while no byte is below 0x20 or is 0x7f (nearly every value: a tab or
 * a forbidden byte sends the rest through the table). */
bool pg_headers_value_ok(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof(w));
        if (word_has_below(w, 0x20) || word_has_byte(w, 0x7f))
            break;
    }
    for (; i < len; i++)
        if (value_forbidden[(unsigned char)s[i]])
            return false;
    return true;
}

static bool parse_status_line(const char *line, size_t len, int *status)
{
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
        return false;
    for (int i = 9; i < 12; i++)
        if (line[i] < '0' || line[i] > '9')
            return false;
    if (len > 12 && line[12] != ' ')
        return false;
    for (size_t i = 12; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            return false;
    *status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    return *status >= 100;
}

/* Splits "name: value" in place; lower-cases the name. */
static bool parse_field_line(char *line, size_t len, struct pg_header *h)
{
    char *colon = memchr(line, ':', len);
    if (!colon || colon == line)
        return false;
    for (char *p = line; p < colon; p++) {
        unsigned char c = name_byte[(unsigned char)*p];
        if (!c)
            return false; /* also rejects obs-fold: a line starting with whitespace */
        *p = (char)c;
    }
    char *value = colon + 1;
    char *end = line + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (!pg_headers_value_ok(value, (size_t)(end - value)))
        return false; /* bare CR, NUL and other controls */
    *h = (struct pg_header){line, (size_t)(colon - line), value, (size_t)(end - value)};
    return true;
}

/* The next element of a comma-separated list at *p (before end), whitespace aside: its start
 * and length (0 once the list is over); *p moves past it. */
static size_t next_list_token(const char **p, const char *end, const char **start)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == ','))
        (*p)++;
    *start = *p;
    while (*p < end && **p != ',' && **p != ' ' && **p != '\t')
        (*p)++;
    return (size_t)(*p - *start);
}

bool pg_headers_list_has(const char *value, size_t len, const char *token, size_t token_len)
{
    const char *p = value, *end = value + len, *start;
    for (size_t n; (n = next_list_token(&p, end, &start)) > 0;)
        if (n == token_len && strncasecmp(start, token, token_len) == 0)
            return true;
    return false;
}

/* What the filter does with a response field; names are lower-case already. */
enum response_field {
    FIELD_OTHER,
    FIELD_CONNECTION,
    FIELD_CONTENT_LENGTH,
    FIELD_TRANSFER_ENCODING,
    FIELD_HOP_BY_HOP, /* any other hop-by-hop name */
};

static enum response_field classify(const struct pg_header *h)
{
    switch (h->name_len) {
    case 10:
        if (NAME_IS(h, "connection"))
            return FIELD_CONNECTION;
        break;
    case 14:
        if (NAME_IS(h, "content-length"))
            return FIELD_CONTENT_LENGTH;
        break;
    case 17:
        if (NAME_IS(h, "transfer-encoding"))
            return FIELD_TRANSFER_ENCODING;
        break;
    default:
        break;
    }
    return pg_headers_is_hop_by_hop(h->name, h->name_len) ? FIELD_HOP_BY_HOP : FIELD_OTHER;
}

/* The names the Connection fields list (usually one: keep-alive or close), split once so that
 * each field is compared with them by length first. */
#define CONNECTION_TOKENS 16
struct connection_tokens {
    struct pg_header at[CONNECTION_TOKENS]; /* only name and name_len */
    size_t count;
    bool overflow; /* more than that: every Connection field is searched for every name */
};

static void add_connection_tokens(struct connection_tokens *tokens, const struct pg_header *c)
{
    const char *p = c->value, *end = c->value + c->value_len, *start;
    for (size_t n; !tokens->overflow && (n = next_list_token(&p, end, &start)) > 0;) {
        if (tokens->count == CONNECTION_TOKENS)
            tokens->overflow = true;
        else
            tokens->at[tokens->count++] = (struct pg_header){start, n, NULL, 0};
    }
}

/* Whether a Connection field names h. */
static bool named_by_connection(const struct pg_response_head *out, const struct pg_header *h,
                                const struct connection_tokens *tokens)
{
    if (tokens->overflow) {
        for (size_t j = 0; j < out->count; j++) {
            const struct pg_header *c = &out->fields[j];
            if (NAME_IS(c, "connection") &&
                pg_headers_list_has(c->value, c->value_len, h->name, h->name_len))
                return true;
        }
        return false;
    }
    for (size_t j = 0; j < tokens->count; j++)
        if (tokens->at[j].name_len == h->name_len &&
            strncasecmp(tokens->at[j].name, h->name, h->name_len) == 0)
            return true;
    return false;
}

/* Drops hop-by-hop fields and those the Connection fields name; checks framing fields. Each
 * field is classified once per pass, and only the Connection fields are searched for names. */
static int filter_response_fields(struct pg_response_head *out)
{
    bool has_te = false;
    const char *cl = NULL;
    size_t cl_len = 0;
    struct connection_tokens tokens = {.count = 0, .overflow = false};
    for (size_t i = 0; i < out->count; i++) {
        struct pg_header *h = &out->fields[i];
        enum response_field kind = classify(h);
        if (kind == FIELD_TRANSFER_ENCODING)
            has_te = true;
        if (kind == FIELD_CONNECTION)
            add_connection_tokens(&tokens, h);
        if (kind == FIELD_CONTENT_LENGTH) {
            long long v;
            if (!parse_content_length(h->value, h->value_len, &v) ||
                (cl && (cl_len != h->value_len || memcmp(cl, h->value, cl_len) != 0)))
                return PG_ERR_INVALID;
            if (cl)
                continue; /* an identical repeat is harmless; send one */
            out->content_length = v;
            cl = h->value;
            cl_len = h->value_len;
        }
    }
    if (has_te && cl)
        return PG_ERR_INVALID; /* RFC 9112 §6.3: a smuggling signal, not a message */
    /* RFC 9110 §8.6, RFC 9112 §6.1: a 1xx or 204 announcing a body is lying about framing;
     * whatever follows would be read as the next response on that connection. */
    bool never_body = out->status < 200 || out->status == 204;
    if (never_body && (has_te || (cl && !(cl_len == 1 && cl[0] == '0'))))
        return PG_ERR_INVALID;
    size_t kept = 0;
    for (size_t i = 0; i < out->count; i++) {
        struct pg_header *h = &out->fields[i];
        enum response_field kind = classify(h);
        bool drop = (kind != FIELD_OTHER && kind != FIELD_CONTENT_LENGTH) ||
                    (kind == FIELD_CONTENT_LENGTH && h->value != cl) ||
                    named_by_connection(out, h, &tokens);
        if (!drop)
            out->fields[kept++] = *h;
    }
    out->count = kept;
    return PG_OK;
}

int pg_headers_parse_response(char *block, size_t len, struct pg_response_head *out,
                              struct pg_header *fields, size_t cap)
{
    out->fields = fields;
    out->count = 0;
    out->content_length = -1;
    char *p = block;
    char *end = block + len;
    bool first = true;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        size_t line_len = (size_t)(line_end - p);
        if (line_len && p[line_len - 1] == '\r')
            line_len--;
        if (first) {
            if (!parse_status_line(p, line_len, &out->status))
                return PG_ERR_INVALID;
            first = false;
        } else if (line_len == 0) {
            break; /* the blank line ending the head */
        } else {
            if (out->count == cap)
                return PG_ERR_TOO_LONG;
            if (!parse_field_line(p, line_len, &fields[out->count]))
                return PG_ERR_INVALID;
            out->count++;
        }
        p = nl ? nl + 1 : end;
    }
    if (first)
        return PG_ERR_INVALID;
    return filter_response_fields(out);
}
