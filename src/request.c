#include "pushgate/request.h"
#include "pushgate/common.h"

#include <string.h>
#include <strings.h>

static bool view_equals_ci(struct pg_header a, struct pg_header b)
{
    return a.value_len == b.value_len && strncasecmp(a.value, b.value, a.value_len) == 0;
}

const struct pg_header *pg_request_field(const struct pg_request_head *head, const char *name)
{
    for (size_t i = 0; i < head->count; i++)
        if (pg_header_name_is(&head->fields[i], name))
            return &head->fields[i];
    return NULL;
}

/* The request's origin must be the connection's: its scheme, an authority without userinfo,
 * and no host field contradicting it (request smuggling through a confused upstream). */
static bool origin_ok(const struct pg_request_head *head, bool tls)
{
    if (!pg_header_value_is(head->scheme, tls ? "https" : "http"))
        return false;
    struct pg_header authority = head->authority;
    if (!authority.value_len || memchr(authority.value, '@', authority.value_len))
        return false;
    for (size_t i = 0; head->authority_given && i < head->count; i++) {
        struct pg_header f = head->fields[i];
        if (pg_header_name_is(&f, "host") &&
            !view_equals_ci((struct pg_header){0, 0, f.value, f.value_len}, authority))
            return false;
    }
    return true;
}

static int refuse(int *status, int code)
{
    *status = code;
    return PG_ERR_INVALID;
}

int pg_request_validate(const struct pg_request_head *head, bool tls, int *status)
{
    *status = 0;
    if (head->too_large)
        return refuse(status, 431);
    struct pg_header method = head->method, path = head->path;
    if (!method.value_len || !path.value_len)
        return refuse(status, 400);
    if (pg_header_value_is(method, "CONNECT"))
        return refuse(status, 405);
    bool asterisk = pg_header_value_is(path, "*");
    if (asterisk ? !pg_header_value_is(method, "OPTIONS") : path.value[0] != '/')
        return refuse(status, 400);
    if (memchr(path.value, '#', path.value_len))
        return refuse(status, 400);
    if (!origin_ok(head, tls))
        return refuse(status, 400);
    return PG_OK;
}

const char *pg_request_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 103:
        return "Early Hints";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 400:
        return "Bad Request";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

bool pg_request_bodyless_response(const struct pg_request_head *head, int status)
{
    return pg_header_value_is(head->method, "HEAD") || status < 200 || status == 204 ||
           status == 304;
}

struct pg_header pg_request_path(const struct pg_request *req)
{
    if (req->norm_path)
        return (struct pg_header){NULL, 0, req->norm_path, strlen(req->norm_path)};
    return req->head.path;
}
