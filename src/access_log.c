#include "pushgate/access_log.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
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

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = l->len < l->cap ? l->cap - l->len : 0;
    int n = vsnprintf(l->p + l->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        l->over = true;
    else
        l->len += (size_t)n;
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
            putf(l, "\\u%04x", c); /* bytes, not text: a path need not be UTF-8 */
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
            putf(l, "\\x%02X", c);
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
            putf(l, "\\x%02X", c);
        else
            put(l, (const char *)&c, 1);
    }
}

static void format_json(struct line *l, const struct pg_access_entry *e, const struct tm *t, int ms)
{
    putf(l, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"remote_addr\":", t->tm_year + 1900,
         t->tm_mon + 1, t->tm_mday, t->tm_hour, t->tm_min, t->tm_sec, ms);
    put_json(l, e->remote_addr, e->remote_addr ? strlen(e->remote_addr) : 0, false);
    put(l, ",\"protocol\":", 12);
    put_json(l, e->protocol, strlen(e->protocol), false);
    putf(l, ",\"tls\":%s,\"method\":", e->tls ? "true" : "false");
    put_json(l, e->method.value, e->method.value_len, true);
    put(l, ",\"authority\":", 13);
    put_json(l, e->authority.value, e->authority.value_len, true);
    put(l, ",\"path\":", 8);
    put_json(l, e->path.value, e->path.value_len, true);
    putf(l, ",\"status\":%d,\"bytes_sent\":%" PRIu64 ",\"request_time_ms\":%.3f", e->status,
         e->bytes_sent, (double)e->request_time_us / 1000.0);
    if (e->upstream_time_us < 0)
        put(l, ",\"upstream_time_ms\":null", 24);
    else
        putf(l, ",\"upstream_time_ms\":%.3f", (double)e->upstream_time_us / 1000.0);
    putf(l, ",\"pushed\":%s,\"parent_path\":", e->pushed ? "true" : "false");
    put_json(l, e->parent_path.value, e->parent_path.value_len, true);
    putf(l, ",\"hinted\":%u,\"learned\":%s}\n", e->hinted, e->learned ? "true" : "false");
}

static void format_combined(struct line *l, const struct pg_access_entry *e, const struct tm *t)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    putf(l, "%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"", e->remote_addr ? e->remote_addr : "-",
         t->tm_mday, months[t->tm_mon], t->tm_year + 1900, t->tm_hour, t->tm_min, t->tm_sec);
    put_token(l, e->method);
    put(l, " ", 1);
    put_token(l, e->path);
    putf(l, " %s\" %d %" PRIu64 " ", e->protocol, e->status, e->bytes_sent);
    put_quoted(l, e->referer.value, e->referer.value_len);
    put(l, " ", 1);
    put_quoted(l, e->user_agent.value, e->user_agent.value_len);
    putf(l, " rt=%.3f urt=", (double)e->request_time_us / 1e6);
    if (e->upstream_time_us < 0)
        put(l, "-", 1);
    else
        putf(l, "%.3f", (double)e->upstream_time_us / 1e6);
    if (e->pushed) {
        put(l, " pushed=", 8);
        put_quoted(l, e->parent_path.value, e->parent_path.value_len);
    }
    if (e->hinted || e->learned)
        putf(l, " hinted=%u learned=%d", e->hinted, e->learned);
    put(l, "\n", 1);
}

int pg_access_log_format(const struct pg_access_entry *entry, bool json, char *out, size_t cap,
                         size_t *len)
{
    struct line l = {out, cap, 0, false};
    time_t secs = (time_t)(entry->time_ms / 1000);
    struct tm t;
    gmtime_r(&secs, &t);
    if (json)
        format_json(&l, entry, &t, (int)(entry->time_ms % 1000));
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
