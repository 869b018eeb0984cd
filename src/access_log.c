#include "pushgate/access_log.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_MS 100
#define BUFFER_MAX (1024 * 1024) /* buffered while the output is slow; beyond: dropped */
#define LINE_MAX_BYTES 16384     /* a longer line (huge paths) is cut, not dropped */

/* ---- Formatting (pure). ---- */

/* Written once per request, so no printf: vsnprintf and gmtime_r were most of a line's cost. */

/* Output that records overflow instead of writing past cap. */
struct line {
    char *p;
    size_t cap, len;
    bool over;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->len + n >= l->cap) {
        l->over = true;
        return;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void put_u64(struct line *l, uint64_t v)
{
    char digits[24];
    size_t n = sizeof(digits);
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(l, digits + n, sizeof(digits) - n);
}

static void put_int(struct line *l, int v)
{
    if (v < 0) {
        put(l, "-", 1);
        v = -v;
    }
    put_u64(l, (uint64_t)v);
}

/* v zero-padded to width digits. */
static void put_padded(struct line *l, unsigned v, int width)
{
    char digits[8];
    for (int i = width - 1; i >= 0; i--, v /= 10)
        digits[i] = (char)('0' + v % 10);
    put(l, digits, (size_t)width);
}

/* thousandths as "W.FFF" (milliseconds from microseconds, seconds from milliseconds). */
static void put_fixed3(struct line *l, uint64_t thousandths)
{
    put_u64(l, thousandths / 1000);
    put(l, ".", 1);
    put_padded(l, (unsigned)(thousandths % 1000), 3);
}

/* prefix and the byte's two hex digits ("\\u00ff" for JSON, "\\xFF" as nginx writes). */
static void put_hex_escape(struct line *l, const char *prefix, unsigned char c, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char out[2] = {digits[c >> 4], digits[c & 15]};
    put_str(l, prefix);
    put(l, out, 2);
}

/* UTC civil time of a Unix day count (Howard Hinnant's days_to_civil). */
struct civil {
    unsigned year, month, day, hour, minute, second;
};

static struct civil civil_of(int64_t secs)
{
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = (int64_t)yoe + era * 400 + (month <= 2);
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    return (struct civil){
        (unsigned)year,      month, day, (unsigned)(rem / 3600), (unsigned)(rem % 3600 / 60),
        (unsigned)(rem % 60)};
}

/* "HH:MM:SS", as both formats write the time of day. */
static void put_clock(struct line *l, const struct civil *t)
{
    put_padded(l, t->hour, 2);
    put(l, ":", 1);
    put_padded(l, t->minute, 2);
    put(l, ":", 1);
    put_padded(l, t->second, 2);
}

/* A JSON string (or null for a missing value). */
static void put_json(struct line *l, const char *s, size_t n, bool null_if_empty)
{
    if (!s || (null_if_empty && n == 0)) {
        put(l, "null", 4);
        return;
    }
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            put_hex_escape(l, "\\u00", c, false); /* bytes, not text: a path need not be UTF-8 */
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

/* A quoted field of the combined format, escaped as nginx does ("-" when empty). */
static void put_quoted(struct line *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    if (!s || n == 0)
        put(l, "-", 1);
    for (size_t i = 0; s && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f)
            put_hex_escape(l, "\\x", c, true);
        else
            put(l, (const char *)&c, 1);
    }
    put(l, "\"", 1);
}

static void put_token(struct line *l, struct pg_header v)
{
    if (!v.value || !v.value_len)
        put(l, "-", 1);
    for (size_t i = 0; v.value && i < v.value_len; i++) {
        unsigned char c = (unsigned char)v.value[i];
        if (c == '"' || c == '\\' || c <= 0x20 || c >= 0x7f)
            put_hex_escape(l, "\\x", c, true);
        else
            put(l, (const char *)&c, 1);
    }
}

static void put_bool(struct line *l, bool b)
{
    put_str(l, b ? "true" : "false");
}

static void format_json(struct line *l, const struct pg_access_entry *e, const struct civil *t,
                        unsigned ms)
{
    put_str(l, "{\"time\":\"");
    put_padded(l, t->year, 4);
    put(l, "-", 1);
    put_padded(l, t->month, 2);
    put(l, "-", 1);
    put_padded(l, t->day, 2);
    put(l, "T", 1);
    put_clock(l, t);
    put(l, ".", 1);
    put_padded(l, ms, 3);
    put_str(l, "Z\",\"remote_addr\":");
    put_json(l, e->remote_addr, e->remote_addr ? strlen(e->remote_addr) : 0, false);
    put_str(l, ",\"protocol\":");
    put_json(l, e->protocol, strlen(e->protocol), false);
    put_str(l, ",\"tls\":");
    put_bool(l, e->tls);
    put_str(l, ",\"method\":");
    put_json(l, e->method.value, e->method.value_len, true);
    put_str(l, ",\"authority\":");
    put_json(l, e->authority.value, e->authority.value_len, true);
    put_str(l, ",\"path\":");
    put_json(l, e->path.value, e->path.value_len, true);
    put_str(l, ",\"status\":");
    put_int(l, e->status);
    put_str(l, ",\"bytes_sent\":");
    put_u64(l, e->bytes_sent);
    put_str(l, ",\"request_time_ms\":");
    put_fixed3(l, e->request_time_us);
    put_str(l, ",\"upstream_time_ms\":");
    if (e->upstream_time_us < 0)
        put_str(l, "null");
    else
        put_fixed3(l, (uint64_t)e->upstream_time_us);
    put_str(l, ",\"pushed\":");
    put_bool(l, e->pushed);
    put_str(l, ",\"parent_path\":");
    put_json(l, e->parent_path.value, e->parent_path.value_len, true);
    put_str(l, ",\"hinted\":");
    put_u64(l, e->hinted);
    put_str(l, ",\"learned\":");
    put_bool(l, e->learned);
    put_str(l, "}\n");
}

static void format_combined(struct line *l, const struct pg_access_entry *e, const struct civil *t)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    put_str(l, e->remote_addr ? e->remote_addr : "-");
    put_str(l, " - - [");
    put_padded(l, t->day, 2);
    put(l, "/", 1);
    put(l, months[t->month - 1], 3);
    put(l, "/", 1);
    put_padded(l, t->year, 4);
    put(l, ":", 1);
    put_clock(l, t);
    put_str(l, " +0000] \"");
    put_token(l, e->method);
    put(l, " ", 1);
    put_token(l, e->path);
    put(l, " ", 1);
    put_str(l, e->protocol);
    put(l, "\" ", 2);
    put_int(l, e->status);
    put(l, " ", 1);
    put_u64(l, e->bytes_sent);
    put(l, " ", 1);
    put_quoted(l, e->referer.value, e->referer.value_len);
    put(l, " ", 1);
    put_quoted(l, e->user_agent.value, e->user_agent.value_len);
    put_str(l, " rt=");
    put_fixed3(l, e->request_time_us / 1000);
    put_str(l, " urt=");
    if (e->upstream_time_us < 0)
        put(l, "-", 1);
    else
        put_fixed3(l, (uint64_t)e->upstream_time_us / 1000);
    if (e->pushed) {
        put_str(l, " pushed=");
        put_quoted(l, e->parent_path.value, e->parent_path.value_len);
    }
    if (e->hinted || e->learned) {
        put_str(l, " hinted=");
        put_u64(l, e->hinted);
        put_str(l, " learned=");
        put(l, e->learned ? "1" : "0", 1);
    }
    put(l, "\n", 1);
}

int pg_access_log_format(const struct pg_access_entry *entry, bool json, char *out, size_t cap,
                         size_t *len)
{
    struct line l = {out, cap, 0, false};
    int64_t ms = entry->time_ms;
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    struct civil t = civil_of(secs);
    if (json)
        format_json(&l, entry, &t, (unsigned)(ms - secs * 1000));
    else
        format_combined(&l, entry, &t);
    if (l.over)
        return PG_ERR_TOO_LONG;
    *len = l.len;
    return PG_OK;
}

/* ---- The worker's log. ---- */

struct pg_access_log {
    char *path;
    bool json;
    int fd;
    bool fifo;                /* a pipe: writes of whole lines up to PIPE_BUF, never interleaved */
    struct evbuffer *pending; /* lines not yet written */
    struct event *timer;
    pg_counter *dropped;
    char line[LINE_MAX_BYTES];
};

static int open_output(const char *path, bool *fifo)
{
    int flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC;
    int fd;
    if (strcmp(path, "-") == 0) {
        /* A description of our own: O_NONBLOCK must not reach whoever else writes to it. */
        fd = open("/proc/self/fd/1", flags);
        if (fd < 0)
            fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    } else {
        fd = open(path, flags | O_CREAT, 0644);
    }
    struct stat st;
    *fifo = fd >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
    return fd;
}

static size_t count_lines(struct evbuffer *buf)
{
    size_t lines = 0;
    struct evbuffer_ptr pos = evbuffer_search(buf, "\n", 1, NULL);
    while (pos.pos >= 0) {
        lines++;
        if (evbuffer_ptr_set(buf, &pos, 1, EVBUFFER_PTR_ADD) < 0)
            break;
        pos = evbuffer_search(buf, "\n", 1, &pos);
    }
    return lines;
}

/* Writes what the output takes now; never waits. On a hard error (full disk) the buffered
 * lines are dropped and counted. */
static void flush(struct pg_access_log *log)
{
    while (evbuffer_get_length(log->pending) > 0) {
        ssize_t n;
        if (log->fifo) {
            size_t take = evbuffer_get_length(log->pending);
            take = take < PIPE_BUF ? take : PIPE_BUF;
            const char *p = (const char *)evbuffer_pullup(log->pending, (ev_ssize_t)take);
            const char *end = p ? memrchr(p, '\n', take) : NULL;
            if (!end)
                break;
            n = write(log->fd, p, (size_t)(end - p + 1));
            if (n > 0)
                evbuffer_drain(log->pending, (size_t)n);
        } else {
            n = evbuffer_write(log->pending, log->fd);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break; /* a slow reader: keep what is buffered, up to BUFFER_MAX */
        if (n <= 0) {
            size_t lost = count_lines(log->pending);
            pg_count(log->dropped, lost ? lost : 1);
            evbuffer_drain(log->pending, evbuffer_get_length(log->pending));
            break;
        }
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

struct pg_access_log *pg_access_log_open(const char *path, bool json, struct event_base *base,
                                         pg_counter *dropped)
{
    struct pg_access_log *log = calloc(1, sizeof(*log));
    if (!log)
        return NULL;
    log->json = json;
    log->dropped = dropped;
    log->fd = -1;
    if (!(log->path = strdup(path)) || !(log->pending = evbuffer_new()) ||
        !(log->timer = event_new(base, -1, EV_PERSIST, on_timer, log)))
        goto fail;
    if ((log->fd = open_output(path, &log->fifo)) < 0)
        goto fail;
    struct timeval tv = pg_timeval_ms(FLUSH_MS);
    event_add(log->timer, &tv);
    return log;
fail:;
    int saved = errno;
    pg_access_log_free(log);
    errno = saved;
    return NULL;
}

void pg_access_log_free(struct pg_access_log *log)
{
    if (!log)
        return;
    if (log->fd >= 0 && log->pending)
        flush(log);
    if (log->fd >= 0)
        close(log->fd);
    if (log->timer)
        event_free(log->timer);
    if (log->pending)
        evbuffer_free(log->pending);
    free(log->path);
    free(log);
}

void pg_access_log_write(struct pg_access_log *log, const struct pg_access_entry *entry)
{
    size_t len;
    if (evbuffer_get_length(log->pending) >= BUFFER_MAX ||
        pg_access_log_format(entry, log->json, log->line, sizeof(log->line), &len) != PG_OK ||
        evbuffer_add(log->pending, log->line, len) != 0)
        pg_count(log->dropped, 1);
}

void pg_access_log_reopen(struct pg_access_log *log)
{
    flush(log);
    bool fifo;
    int fd = open_output(log->path, &fifo);
    if (fd < 0) {
        pg_log_warn("--access-log %s: cannot reopen (%s); writing on to the old file", log->path,
                    strerror(errno));
        return;
    }
    close(log->fd);
    log->fd = fd;
    log->fifo = fifo;
}
