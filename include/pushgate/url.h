/* RFC 3986 §5 reference resolution, the same-origin test the proxy applies to Link targets, and
 * dot-segment removal for request paths. One remove_dot_segments (§5.2.4) serves all three, so
 * a pushed path and the same path requested by a client always name the same resource.
 *
 * Allocation-free: results are written into a caller buffer, and every function reports
 * PG_ERR_TOO_LONG instead of truncating, so a cut-off path is never pushed. Every function
 * returns 0 or a negative enum pg_err; the same-origin verdict goes through an out-parameter.
 *
 * Everywhere, a "." or ".." segment also counts when its dots are percent-encoded ("%2e",
 * "%2E", RFC 3986 §6.2.2.2); every other byte and percent-encoding is kept as it is. */
#ifndef PUSHGATE_URL_H
#define PUSHGATE_URL_H

#include "pushgate/common.h"

#include <stddef.h>

/* What a Link target is to the response it came on (see pg_url_resolve_same_origin). */
enum pg_url_origin {
    PG_URL_SAME_ORIGIN,  /* our scheme and authority: its origin-form path was written to out */
    PG_URL_OTHER_ORIGIN, /* another origin (or userinfo): it may be hinted, never pushed */
    PG_URL_SELF,         /* empty or fragment-only: the response itself */
};

/* RFC 3986 §5.2 (strict) resolution of ref against the absolute URI base (lengths given, not
 * NUL-terminated); writes the NUL-terminated target URI (fragment of ref kept) to out and its
 * length, without the NUL, to *out_len (which may be NULL). Returns PG_OK, PG_ERR_INVALID
 * (base without a scheme, an unparsable scheme, or a byte not allowed in a URI in either
 * input) or PG_ERR_TOO_LONG; on an error out is emptied (when out_cap > 0) and *out_len left
 * alone. As the RFC says, a base path is used as is when ref has no path. */
int pg_url_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len, char *out,
                   size_t out_cap, size_t *out_len);

/* The proxy's question: ref is a Link target on the response to scheme://authority + base_path
 * (scheme and authority NUL-terminated; base_path = the request's :path, origin-form, starts
 * with '/', may have a query). Returns PG_OK with the verdict in *origin (which must not be
 * NULL), or an error with *origin left alone. Only for PG_URL_SAME_ORIGIN does it write the
 * resolved origin-form path ("/path" + optional "?query", dot-segments removed, fragment
 * dropped) NUL-terminated to out and its length to *out_len (may be NULL); in every other case
 * out is emptied (when out_cap > 0) and *out_len left alone.
 *
 * PG_URL_SELF for an empty reference or one that is only a fragment (a ref that merely
 * resolves to the base path is PG_URL_SAME_ORIGIN: the caller decides). PG_URL_OTHER_ORIGIN
 * when scheme or authority differs (scheme and host case-insensitive; an explicit default port
 * 80 for http or 443 for https, or an empty port, equals none; userinfo in the target makes it
 * cross-origin; a scheme other than ours, e.g. "data:", too). Neither needs room in out.
 * PG_ERR_INVALID for unparsable refs, an http(s) ref without authority ("http:x"), an empty
 * host, a bad port, a base_path not starting with '/' or containing '#', and bytes not allowed
 * in a URI (CTL, space, '"', '<', '>', '\\', '^', '`', '{', '|', '}', non-ASCII) in ref or
 * base_path. PG_ERR_TOO_LONG when out_cap is too small for a same-origin path. Dot-segments are
 * removed from the base path too when ref keeps it. */
int pg_url_resolve_same_origin(const char *scheme, const char *authority, const char *base_path,
                               size_t base_path_len, const char *ref, size_t ref_len, char *out,
                               size_t out_cap, size_t *out_len, enum pg_url_origin *origin);

/* Removes dot-segments (RFC 3986 §5.2.4) from the path of an origin-form request target (path
 * and len, not NUL-terminated; "/path" with an optional "?query"), so the proxy and the upstream
 * cannot disagree about which resource "/a/../b" or "/a/%2e%2e/b" names. The query and every
 * byte that is not part of a dot-segment are copied as they are; bytes are not validated (that
 * is pg_request_validate's job). Writes the NUL-terminated result, never longer than the input
 * (out_cap = len + 1 always suffices), to out, which must not overlap path, and its length
 * without the NUL to *out_len (may be NULL). Returns PG_OK, PG_ERR_INVALID (path empty or not
 * starting with '/') or PG_ERR_TOO_LONG; on an error out is emptied (when out_cap > 0) and
 * *out_len left alone. */
int pg_url_remove_dot_segments(const char *path, size_t len, char *out, size_t out_cap,
                               size_t *out_len);

#endif
