/* RFC 8288 Link field parsing, allocation-free: links come back as views into the field value.
 *
 * The parser is lenient in the manner of RFC 8288 Appendix B, because upstream applications
 * write Link fields by hand: a malformed link-value costs only itself, and parsing resumes at
 * the next top-level comma where one can be found. Work is linear in the field length, so a
 * hostile upstream cannot make the proxy spin. */
#ifndef PUSHGATE_LINK_H
#define PUSHGATE_LINK_H

#include <stdbool.h>
#include <stddef.h>

/* The request destinations a preload link names with as= (the Fetch keywords); else OTHER. */
enum pg_link_as {
    PG_LINK_AS_NONE = 0,
    PG_LINK_AS_STYLE,
    PG_LINK_AS_SCRIPT,
    PG_LINK_AS_IMAGE,
    PG_LINK_AS_FONT,
    PG_LINK_AS_FETCH,
    PG_LINK_AS_DOCUMENT,
    PG_LINK_AS_AUDIO,
    PG_LINK_AS_VIDEO,
    PG_LINK_AS_TRACK,
    PG_LINK_AS_WORKER,
    PG_LINK_AS_OTHER
};

/* The relation types pushgate tells apart (bits of pg_link.rels); other types are ignored.
 * Browsers act on the first three in a 103; the last two are recognised only so that callers
 * can say they are not hinted. */
enum pg_link_rel {
    PG_LINK_REL_PRELOAD = 1u << 0,
    PG_LINK_REL_MODULEPRELOAD = 1u << 1,
    PG_LINK_REL_PRECONNECT = 1u << 2,
    PG_LINK_REL_DNS_PREFETCH = 1u << 3,
    PG_LINK_REL_PREFETCH = 1u << 4,
};

#define PG_LINK_MAX_FIELD_LEN 65536 /* a longer field value is ignored whole (0 links) */

/* One link-value; text and target are views borrowed from the parsed field value. */
struct pg_link {
    const char *text; /* the whole link-value as written: from its '<' to the end of its last
                       * parameter (the separating comma and trailing whitespace excluded) */
    size_t text_len;
    const char *target; /* the URI-reference between '<' and '>' (exclusive), not NUL-terminated */
    size_t target_len;
    unsigned rels;      /* enum pg_link_rel bits named by the first rel parameter's list */
    bool nopush;        /* a nopush parameter is present, with or without a value */
    enum pg_link_as as; /* first "as" parameter, case-insensitive; unknown -> OTHER */
};

/* Parses one Link field value (RFC 8288 §3, lenient per Appendix B). Appends at most `cap` links
 * to `out` in order (out may be NULL when cap is 0); links with a non-empty anchor parameter are
 * not returned. Never reads past value+len. Returns the number of links written.
 *
 * Details: a target containing a CTL, SP or '<' is invalid and its link skipped; `<>` is
 * returned. Parameter names must be tokens; an unquoted value runs to the next ';' or ','
 * (trailing whitespace dropped), and text after a quoted value up to the next ';' or ',' is
 * ignored, both as in Appendix B. Only the first rel, as and anchor parameters count; relation
 * types are matched case-insensitively, each a whole space-separated word of that list. */
size_t pg_link_parse(const char *value, size_t len, struct pg_link *out, size_t cap);

/* The lowercase as= keyword: "style", "script", ...; "" for NONE and "other" for OTHER. */
const char *pg_link_as_name(enum pg_link_as as);

#endif
