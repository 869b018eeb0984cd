/* h2client: a frame-level HTTP/2 test client on libnghttp2 for pushgate's integration tests.
 *
 * One connection (h2c prior knowledge or TLS with ALPN h2), a non-blocking nghttp2 client session
 * driven by nghttp2_session_mem_recv / nghttp2_session_mem_send and a poll() loop, and one JSON
 * object per line on stdout for every event, in the order the events happen. The socket is put in
 * non-blocking mode after connect() so that no read or write can outlive --timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define RBUF_SIZE 65536
#define OUT_HIGH_WATER 65536

static const char usage_text[] =
    "usage: h2client [options] HOST PORT PATH [PATH...]\n"
    "  --tls                   TLS with ALPN h2, no certificate verification\n"
    "                          (default: cleartext h2c with prior knowledge)\n"
    "  --authority A           :authority (default HOST:PORT)\n"
    "  --scheme S              :scheme (default http, or https with --tls)\n"
    "  --method M              :method of every request (default GET)\n"
    "  -H, --header 'name: value'\n"
    "                          extra request header (repeatable); the name is lower-cased;\n"
    "                          ':method: X' style names replace that pseudo-header\n"
    "  --raw-header 'name: value'\n"
    "                          extra header sent as given: no lower-casing, no validation\n"
    "  --data-size N           send a request body of N bytes (bytes 0..255 repeating)\n"
    "  --content-length        add content-length: N for that body (default: none)\n"
    "  --no-push               send SETTINGS_ENABLE_PUSH=0 (default: 1)\n"
    "  --max-concurrent N      our SETTINGS_MAX_CONCURRENT_STREAMS (default: not sent)\n"
    "  --window N              our SETTINGS_INITIAL_WINDOW_SIZE and connection window\n"
    "                          (default: 65535)\n"
    "  --concurrency N         requests in flight at once (default: all at once)\n"
    "  --repeat K              request the PATH list K times (default 1)\n"
    "  --rst-after BYTES       RST_STREAM(CANCEL) each request stream once BYTES of its body\n"
    "                          have arrived\n"
    "  --rst-promised          RST_STREAM(CANCEL) every promised stream on its PUSH_PROMISE\n"
    "  --pause-after BYTES     once BYTES of DATA have arrived on the connection, stop reading\n"
    "                          the socket, print {\"ev\":\"paused\"} and wait for a line on stdin\n"
    "  --read-rate BPS         read the socket at about BPS bytes per second\n"
    "  --goaway-after-headers  send GOAWAY(NO_ERROR) after the first response HEADERS\n"
    "  --timeout SEC           overall deadline (default 30): {\"ev\":\"timeout\"}, exit 3\n"
    "  --print-data            print a \"data\" event for every DATA frame\n"
    "  --quiet-data            do not print \"data\" events (the default)\n"
    "  --fetch-links           act like a browser on Link hints: when a 1xx (e.g. 103) or\n"
    "                          final response HEADERS on one of our streams carries link\n"
    "                          fields, GET every rel=preload target that is an origin-form\n"
    "                          path (\"/...\", not \"//...\") on this connection, unless that\n"
    "                          path was already requested or promised on it (\"fetch\" events)\n"
    "  -h, --help              this text\n"
    "Output: one JSON object per line (settings, headers, push_promise, data, rst_recv,\n"
    "rst_sent, goaway, close, not_sent, lib_error, paused, fetch, then done, error or\n"
    "timeout). Every event has \"t\": milliseconds since the client started; done also has\n"
    "\"last_close_t\", the t of the last stream close (null if none closed).\n"
    "Exit: 0 once every stream opened or promised is closed (after a GOAWAY, requests not\n"
    "yet sent are abandoned as not_sent); 1 on a connection error (socket or TLS error, EOF\n"
    "with streams open, a GOAWAY with an error code sent or received); 2 on a usage error;\n"
    "3 on timeout.\n";

/* ---- options ---- */

struct xheader {
    char *name;
    char *value;
    bool raw;
};

static struct {
    bool tls;
    const char *host, *port, *authority, *scheme, *method;
    struct xheader *hdrs;
    size_t nhdrs;
    long long data_size; /* -1: no body */
    bool content_length;
    bool no_push;
    long long max_concurrent; /* -1: not sent */
    long long window;         /* -1: library default */
    long long concurrency;    /* 0: all at once */
    long long repeat;
    long long rst_after; /* -1: off */
    bool rst_promised;
    long long pause_after; /* -1: off */
    long long read_rate;   /* 0: unlimited */
    bool goaway_after_headers;
    double timeout;
    bool print_data;
    bool fetch_links;
    char **paths;
    size_t npaths;
} opt = {
    .data_size = -1,
    .max_concurrent = -1,
    .window = -1,
    .repeat = 1,
    .rst_after = -1,
    .pause_after = -1,
    .timeout = 30,
};

/* ---- JSON lines ---- */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void oom(void)
{
    fputs("h2client: out of memory\n", stderr);
    abort();
}

static void sb_reserve(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        oom();
    b->p = p;
    b->cap = cap;
}

static void sb_add(sbuf *b, const void *data, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A JSON string: quote and backslash escaped, control characters, DEL and every byte >= 0x80 as
 * \u00XX of the byte, so any byte sequence round-trips through a JSON parser as code points. */
static void sb_json(sbuf *b, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_reserve(b, n + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        char esc[6];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_add(b, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            sb_add(b, esc, 6);
        } else {
            sb_reserve(b, 1);
            b->p[b->len++] = (char)c;
        }
    }
    sb_add(b, "\"", 1);
}

static void sb_jsonz(sbuf *b, const char *s)
{
    sb_json(b, (const uint8_t *)s, strlen(s));
}

static sbuf line;

static void emit(void)
{
    sb_add(&line, "}\n", 2);
    fwrite(line.p, 1, line.len, stdout);
    fflush(stdout);
    line.len = 0;
}

static double t_start; /* CLOCK_MONOTONIC seconds when main() started */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds since the client started: the "t" of every event. */
static double t_ms(void)
{
    return (mono_s() - t_start) * 1000.0;
}

static void ev_begin(const char *ev)
{
    line.len = 0;
    sb_puts(&line, "{\"ev\":");
    sb_jsonz(&line, ev);
    sb_printf(&line, ",\"t\":%.1f", t_ms());
}

/* ---- connection state ---- */

struct stream {
    int32_t id;
    int32_t parent;
    bool promised, announced, closed, rst_sent, final_seen;
    int status;       /* final (>= 200) status, 0 until one arrives */
    int block_status; /* :status of the header block being received */
    uint64_t bytes;
    uint64_t body_off;
    EVP_MD_CTX *md;
    char *path;
    sbuf block;   /* ,["name","value"] fragments of the header block being received */
    char **links; /* --fetch-links: preload targets of the header block being received */
    size_t nlinks;
    struct stream *next;
};

static struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    nghttp2_session *s;
    bool read_wants_write, write_wants_read, eof;
    uint8_t *out;
    size_t outoff, outlen, outcap;
    struct stream *all;
    nghttp2_nv *nva;
    size_t nnva;
    size_t next_req, total_req, in_flight;
    bool stop_submitting;
    uint64_t opened, completed, reset, pushed, open_pushed, bytes, not_sent;
    bool goaway_recv, goaway_submitted, local_error;
    uint32_t goaway_recv_code, local_error_code;
    char goaway_recv_debug[256], local_error_debug[256];
    bool conn_reset;
    bool pause_pending, paused_done;
    char lib_err[512];
    double deadline, rate_start;
    uint64_t read_total;
    double last_close_t; /* t of the last stream close, < 0 until one closes */
    uint64_t fetched;    /* --fetch-links: requests made for Link targets */
    char **seen;         /* --fetch-links: paths requested or promised on this connection */
    size_t nseen, capseen;
} g = {.fd = -1, .last_close_t = -1};

static double now_s(void)
{
    return mono_s();
}

static int ms_left(void)
{
    double left = g.deadline - now_s();
    if (left <= 0)
        return 0;
    if (left > 3600)
        return 3600 * 1000;
    return (int)(left * 1000) + 1;
}

static void close_conn(void)
{
    if (g.ssl)
        SSL_free(g.ssl);
    g.ssl = NULL;
    if (g.ctx)
        SSL_CTX_free(g.ctx);
    g.ctx = NULL;
    if (g.fd >= 0)
        close(g.fd);
    g.fd = -1;
}

__attribute__((noreturn)) static void timeout_exit(void)
{
    ev_begin("timeout");
    emit();
    close_conn();
    exit(3);
}

__attribute__((noreturn, format(printf, 1, 2))) static void fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ev_begin("error");
    sb_puts(&line, ",\"msg\":");
    sb_jsonz(&line, msg);
    emit();
    close_conn();
    exit(1);
}

__attribute__((noreturn, format(printf, 1, 2))) static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("h2client: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    exit(2);
}

static const char *ssl_error_string(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (e == 0)
        return errno ? strerror(errno) : "unexpected EOF";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/* ---- streams ---- */

static struct stream *stream_new(void)
{
    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        oom();
    st->md = EVP_MD_CTX_new();
    if (!st->md || !EVP_DigestInit_ex(st->md, EVP_sha256(), NULL))
        oom();
    st->next = g.all;
    g.all = st;
    return st;
}

static struct stream *stream_get(int32_t id)
{
    return g.s ? nghttp2_session_get_stream_user_data(g.s, id) : NULL;
}

static bool all_done(void)
{
    return (g.stop_submitting || g.next_req >= g.total_req) && g.in_flight == 0 &&
           g.open_pushed == 0;
}

static void send_rst(struct stream *st)
{
    if (st->rst_sent || st->closed)
        return;
    st->rst_sent = true;
    int rv = nghttp2_submit_rst_stream(g.s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    if (rv != 0)
        fatal("nghttp2_submit_rst_stream: %s", nghttp2_strerror(rv));
}

static void print_not_sent(int32_t id, const char *path, const char *msg)
{
    ev_begin("not_sent");
    sb_printf(&line, ",\"stream\":%" PRId32 ",\"path\":", id);
    sb_jsonz(&line, path);
    sb_puts(&line, ",\"msg\":");
    sb_jsonz(&line, msg);
    emit();
    g.not_sent++;
}

/* After a GOAWAY in either direction no new stream can start: the queue is abandoned. */
static void stop_submitting(const char *why)
{
    if (g.stop_submitting)
        return;
    g.stop_submitting = true;
    for (; g.next_req < g.total_req; g.next_req++)
        print_not_sent(0, opt.paths[g.next_req % opt.npaths], why);
}

/* ---- request body: bytes(range(256)) repeating from offset 0 ---- */

static uint8_t pattern[16384 + 256];

static ssize_t body_read(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)s;
    (void)stream_id;
    (void)user_data;
    struct stream *st = source->ptr;
    uint64_t left = (uint64_t)opt.data_size - st->body_off;
    size_t n = length < left ? length : (size_t)left;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < 16384 ? n - done : 16384;
        memcpy(buf + done, pattern + ((st->body_off + done) & 255), chunk);
        done += chunk;
    }
    st->body_off += n;
    if (st->body_off == (uint64_t)opt.data_size)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- --fetch-links: what a browser does with Link: rel=preload (and 103 Early Hints) ---- */

static bool seen_path(const char *path)
{
    for (size_t i = 0; i < g.nseen; i++)
        if (strcmp(g.seen[i], path) == 0)
            return true;
    return false;
}

/* Remembers a path requested or promised on this connection (only with --fetch-links). */
static void remember_path(const char *path)
{
    if (!opt.fetch_links || !path || seen_path(path))
        return;
    if (g.nseen == g.capseen) {
        size_t cap = g.capseen ? g.capseen * 2 : 64;
        char **p = realloc(g.seen, cap * sizeof *p);
        if (!p)
            oom();
        g.seen = p;
        g.capseen = cap;
    }
    g.seen[g.nseen] = strdup(path);
    if (!g.seen[g.nseen])
        oom();
    g.nseen++;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* A space-separated relation list containing "preload" (case-insensitive). */
static bool rel_has_preload(const char *v)
{
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t')
            e++;
        if (e - p == 7 && strncasecmp(p, "preload", 7) == 0)
            return true;
        p = e;
    }
    return false;
}

static void add_link_target(struct stream *st, const uint8_t *t, size_t n)
{
    /* origin-form only: "/..." but not "//..." (network-path reference); no spaces or controls */
    if (n == 0 || n > 4096 || t[0] != '/' || (n > 1 && t[1] == '/'))
        return;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7f)
            return;
    char **p = realloc(st->links, (st->nlinks + 1) * sizeof *p);
    if (!p)
        oom();
    st->links = p;
    st->links[st->nlinks] = strndup((const char *)t, n);
    if (!st->links[st->nlinks])
        oom();
    st->nlinks++;
}

/* Appends to st->links the rel=preload targets of one link field value. Lenient (in the spirit
 * of RFC 8288 Appendix B): each link-value is <target> then ;-separated parameters up to the next
 * comma outside quotes; the first rel parameter counts, as a token or a quoted string holding a
 * space-separated list of relation types. */
static void extract_preloads(struct stream *st, const uint8_t *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && v[i] != '<')
            i++;
        if (i >= n)
            return;
        size_t ts = ++i;
        while (i < n && v[i] != '>')
            i++;
        if (i >= n)
            return;
        size_t te = i++;
        bool rel_seen = false, preload = false;
        while (i < n && v[i] != ',') {
            if (v[i] != ';') {
                i++;
                continue;
            }
            i++;
            while (i < n && is_ows(v[i]))
                i++;
            size_t ns = i;
            while (i < n && v[i] != '=' && v[i] != ';' && v[i] != ',' && !is_ows(v[i]))
                i++;
            size_t ne = i;
            while (i < n && is_ows(v[i]))
                i++;
            char val[512];
            size_t vl = 0;
            if (i < n && v[i] == '=') {
                i++;
                while (i < n && is_ows(v[i]))
                    i++;
                if (i < n && v[i] == '"') {
                    for (i++; i < n && v[i] != '"'; i++) {
                        if (v[i] == '\\' && i + 1 < n)
                            i++;
                        if (vl < sizeof val - 1)
                            val[vl++] = (char)v[i];
                    }
                    if (i < n)
                        i++; /* closing quote */
                } else {
                    while (i < n && v[i] != ';' && v[i] != ',' && !is_ows(v[i])) {
                        if (vl < sizeof val - 1)
                            val[vl++] = (char)v[i];
                        i++;
                    }
                }
            }
            val[vl] = '\0';
            if (ne - ns == 3 && strncasecmp((const char *)v + ns, "rel", 3) == 0 && !rel_seen) {
                rel_seen = true;
                preload = rel_has_preload(val);
            }
        }
        if (preload)
            add_link_target(st, v + ts, te - ts);
        if (i < n)
            i++; /* the comma */
    }
}

static void free_links(struct stream *st)
{
    for (size_t i = 0; i < st->nlinks; i++)
        free(st->links[i]);
    free(st->links);
    st->links = NULL;
    st->nlinks = 0;
}

/* A GET for a Link target: the shared header list with :method GET and no content-length. */
static void submit_fetch(struct stream *parent, const char *path)
{
    struct stream *st = stream_new();
    st->path = strdup(path);
    if (!st->path)
        oom();
    nghttp2_nv *nva = malloc(g.nnva * sizeof *nva);
    if (!nva)
        oom();
    size_t k = 0;
    for (size_t i = 0; i < g.nnva; i++) {
        nghttp2_nv nv = g.nva[i];
        if (i == 0) {
            nv.value = (uint8_t *)"GET";
            nv.valuelen = 3;
        } else if (i == 3) {
            nv.value = (uint8_t *)st->path;
            nv.valuelen = strlen(st->path);
        } else if (nv.namelen == 14 && memcmp(nv.name, "content-length", 14) == 0) {
            continue;
        }
        nva[k++] = nv;
    }
    int32_t id = nghttp2_submit_request(g.s, NULL, nva, k, NULL, st);
    free(nva);
    if (id < 0)
        fatal("nghttp2_submit_request: %s", nghttp2_strerror(id));
    st->id = id;
    g.in_flight++;
    g.fetched++;
    remember_path(st->path);
    ev_begin("fetch");
    sb_printf(&line, ",\"stream\":%" PRId32 ",\"parent\":%" PRId32 ",\"path\":", id, parent->id);
    sb_jsonz(&line, st->path);
    emit();
}

/* Requests the preload targets of the header block just received on parent, once each. */
static void fetch_links(struct stream *parent)
{
    for (size_t i = 0; i < parent->nlinks; i++)
        if (!g.stop_submitting && !seen_path(parent->links[i]))
            submit_fetch(parent, parent->links[i]);
    free_links(parent);
}

static void submit_request(const char *path)
{
    struct stream *st = stream_new();
    st->path = strdup(path);
    if (!st->path)
        oom();
    g.nva[3].value = (uint8_t *)st->path;
    g.nva[3].valuelen = strlen(st->path);
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = body_read};
    int32_t id =
        nghttp2_submit_request(g.s, NULL, g.nva, g.nnva, opt.data_size >= 0 ? &dp : NULL, st);
    if (id < 0)
        fatal("nghttp2_submit_request: %s", nghttp2_strerror(id));
    st->id = id;
    g.in_flight++;
    remember_path(st->path);
}

static void submit_more(void)
{
    while (!g.stop_submitting && g.next_req < g.total_req &&
           (opt.concurrency == 0 || g.in_flight < (size_t)opt.concurrency)) {
        submit_request(opt.paths[g.next_req % opt.npaths]);
        g.next_req++;
    }
}

/* ---- nghttp2 callbacks ---- */

static const char *setting_name(int32_t id, char *buf, size_t n)
{
    switch (id) {
    case NGHTTP2_SETTINGS_HEADER_TABLE_SIZE:
        return "header_table_size";
    case NGHTTP2_SETTINGS_ENABLE_PUSH:
        return "enable_push";
    case NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS:
        return "max_concurrent_streams";
    case NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE:
        return "initial_window_size";
    case NGHTTP2_SETTINGS_MAX_FRAME_SIZE:
        return "max_frame_size";
    case NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE:
        return "max_header_list_size";
    case 8:
        return "enable_connect_protocol";
    case 9:
        return "no_rfc7540_priorities";
    default:
        snprintf(buf, n, "setting_%" PRId32, id);
        return buf;
    }
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS) {
        struct stream *st = stream_get(f->hd.stream_id);
        if (st) {
            st->block.len = 0;
            st->block_status = 0;
            free_links(st);
        }
    } else if (f->hd.type == NGHTTP2_PUSH_PROMISE) {
        struct stream *st = stream_new();
        st->promised = true;
        st->id = f->push_promise.promised_stream_id;
        st->parent = f->hd.stream_id;
        nghttp2_session_set_stream_user_data(s, st->id, st);
    }
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    (void)ud;
    struct stream *st;
    if (f->hd.type == NGHTTP2_HEADERS) {
        st = stream_get(f->hd.stream_id);
        if (!st)
            return 0;
        if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
            int status = 0;
            for (size_t i = 0; i < valuelen && i < 4 && isdigit(value[i]); i++)
                status = status * 10 + (value[i] - '0');
            st->block_status = status;
            return 0;
        }
        if (namelen > 0 && name[0] == ':')
            return 0;
        if (opt.fetch_links && !st->promised && namelen == 4 &&
            strncasecmp((const char *)name, "link", 4) == 0)
            extract_preloads(st, value, valuelen);
    } else if (f->hd.type == NGHTTP2_PUSH_PROMISE) {
        st = stream_get(f->push_promise.promised_stream_id);
        if (!st)
            return 0;
        if (namelen == 5 && memcmp(name, ":path", 5) == 0 && !st->path) {
            st->path = strndup((const char *)value, valuelen);
            if (!st->path)
                oom();
        }
    } else {
        return 0;
    }
    sb_add(&st->block, ",[", 2);
    sb_json(&st->block, name, namelen);
    sb_add(&st->block, ",", 1);
    sb_json(&st->block, value, valuelen);
    sb_add(&st->block, "]", 1);
    return 0;
}

static void add_block(struct stream *st)
{
    sb_puts(&line, ",\"headers\":[");
    if (st->block.len > 1)
        sb_add(&line, st->block.p + 1, st->block.len - 1);
    sb_puts(&line, "]");
    st->block.len = 0;
}

static void on_headers_frame(nghttp2_session *s, const nghttp2_frame *f)
{
    struct stream *st = stream_get(f->hd.stream_id);
    if (!st)
        return;
    const char *cat;
    if (st->final_seen)
        cat = "trailers";
    else if (st->promised)
        cat = "push_response";
    else if (st->block_status > 0)
        cat = "response";
    else
        cat = "headers";
    ev_begin("headers");
    sb_printf(&line, ",\"stream\":%" PRId32 ",\"cat\":\"%s\"", st->id, cat);
    if (st->block_status > 0)
        sb_printf(&line, ",\"status\":%d", st->block_status);
    add_block(st);
    emit();
    /* --fetch-links acts on a 1xx (103 Early Hints) or the final response of our own streams */
    bool fetch = opt.fetch_links && !st->promised && !st->final_seen;
    if (!st->final_seen && st->block_status >= 200) {
        st->final_seen = true;
        st->status = st->block_status;
        if (opt.rst_after == 0 && !st->promised && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            send_rst(st);
    }
    if (opt.goaway_after_headers && !g.goaway_submitted && strcmp(cat, "response") == 0) {
        g.goaway_submitted = true;
        int rv =
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s),
                                  NGHTTP2_NO_ERROR, NULL, 0);
        if (rv != 0)
            fatal("nghttp2_submit_goaway: %s", nghttp2_strerror(rv));
        stop_submitting("GOAWAY sent");
    }
    if (fetch)
        fetch_links(st);
    else
        free_links(st);
}

/* GOAWAY debug data as a C string for error messages (NUL and control bytes become '?'). */
static void copy_debug(char *dst, size_t n, const nghttp2_goaway *ga)
{
    size_t len = ga->opaque_data_len < n - 1 ? ga->opaque_data_len : n - 1;
    for (size_t i = 0; i < len; i++)
        dst[i] = ga->opaque_data[i] < 0x20 ? '?' : (char)ga->opaque_data[i];
    dst[len] = '\0';
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            break;
        ev_begin("settings");
        for (size_t i = 0; i < f->settings.niv; i++) {
            char buf[32];
            sb_printf(&line, ",\"%s\":%" PRIu32,
                      setting_name(f->settings.iv[i].settings_id, buf, sizeof buf),
                      f->settings.iv[i].value);
        }
        emit();
        break;
    case NGHTTP2_HEADERS:
        on_headers_frame(s, f);
        break;
    case NGHTTP2_PUSH_PROMISE: {
        struct stream *st = stream_get(f->push_promise.promised_stream_id);
        if (!st)
            break;
        ev_begin("push_promise");
        sb_printf(&line, ",\"parent\":%" PRId32 ",\"promised\":%" PRId32, f->hd.stream_id, st->id);
        add_block(st);
        emit();
        remember_path(st->path);
        st->announced = true;
        g.pushed++;
        g.open_pushed++;
        if (opt.rst_promised)
            send_rst(st);
        break;
    }
    case NGHTTP2_DATA:
        if (opt.print_data) {
            ev_begin("data");
            sb_printf(&line, ",\"stream\":%" PRId32 ",\"len\":%zu,\"end_stream\":%s",
                      f->hd.stream_id, f->hd.length - f->data.padlen,
                      (f->hd.flags & NGHTTP2_FLAG_END_STREAM) ? "true" : "false");
            emit();
        }
        break;
    case NGHTTP2_RST_STREAM:
        ev_begin("rst_recv");
        sb_printf(&line, ",\"stream\":%" PRId32 ",\"error_code\":%" PRIu32, f->hd.stream_id,
                  f->rst_stream.error_code);
        emit();
        break;
    case NGHTTP2_GOAWAY:
        ev_begin("goaway");
        sb_printf(&line, ",\"last_stream_id\":%" PRId32 ",\"error_code\":%" PRIu32 ",\"debug\":",
                  f->goaway.last_stream_id, f->goaway.error_code);
        sb_json(&line, f->goaway.opaque_data, f->goaway.opaque_data_len);
        emit();
        g.goaway_recv = true;
        g.goaway_recv_code = f->goaway.error_code;
        copy_debug(g.goaway_recv_debug, sizeof g.goaway_recv_debug, &f->goaway);
        stop_submitting("GOAWAY received");
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    (void)flags;
    (void)ud;
    g.bytes += len;
    struct stream *st = stream_get(stream_id);
    if (st) {
        st->bytes += len;
        if (st->md)
            EVP_DigestUpdate(st->md, data, len);
        if (opt.rst_after >= 0 && !st->promised && st->bytes >= (uint64_t)opt.rst_after)
            send_rst(st);
    }
    if (opt.pause_after >= 0 && !g.paused_done && g.bytes >= (uint64_t)opt.pause_after)
        g.pause_pending = true;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    (void)s;
    (void)ud;
    struct stream *st = stream_get(stream_id);
    if (!st || st->closed)
        return 0;
    st->closed = true;
    g.last_close_t = t_ms();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(st->md, md, &mdlen);
    EVP_MD_CTX_free(st->md);
    st->md = NULL;
    ev_begin("close");
    sb_printf(&line,
              ",\"stream\":%" PRId32 ",\"promised\":%s,\"status\":%d,\"bytes\":%" PRIu64
              ",\"sha256\":\"",
              stream_id, st->promised ? "true" : "false", st->status, st->bytes);
    for (unsigned int i = 0; i < mdlen; i++)
        sb_printf(&line, "%02x", md[i]);
    sb_printf(&line, "\",\"error_code\":%" PRIu32 ",\"path\":", error_code);
    sb_jsonz(&line, st->path ? st->path : "");
    emit();
    if (error_code == NGHTTP2_NO_ERROR)
        g.completed++;
    else
        g.reset++;
    if (!st->promised)
        g.in_flight--;
    else if (st->announced)
        g.open_pushed--;
    free(st->block.p);
    st->block = (sbuf){0};
    free_links(st);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        g.opened++;
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
        ev_begin("rst_sent");
        sb_printf(&line, ",\"stream\":%" PRId32 ",\"error_code\":%" PRIu32, f->hd.stream_id,
                  f->rst_stream.error_code);
        emit();
    } else if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
        g.local_error = true;
        g.local_error_code = f->goaway.error_code;
        copy_debug(g.local_error_debug, sizeof g.local_error_debug, &f->goaway);
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *f, int lib_error_code,
                             void *ud)
{
    (void)s;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    for (struct stream *st = g.all; st; st = st->next) {
        if (st->promised || st->id != f->hd.stream_id || st->closed)
            continue;
        st->closed = true;
        g.in_flight--;
        print_not_sent(st->id, st->path, nghttp2_strerror(lib_error_code));
        break;
    }
    return 0;
}

static int on_error(nghttp2_session *s, int lib_error_code, const char *msg, size_t len, void *ud)
{
    (void)s;
    (void)ud;
    snprintf(g.lib_err, sizeof g.lib_err, "%.*s", (int)len, msg);
    ev_begin("lib_error");
    sb_printf(&line, ",\"code\":%d,\"msg\":", lib_error_code);
    sb_json(&line, (const uint8_t *)msg, len);
    emit();
    return 0;
}

/* ---- socket I/O (non-blocking; -1: would block, -2: error) ---- */

static ssize_t conn_read(uint8_t *buf, size_t n)
{
    if (g.ssl) {
        ERR_clear_error();
        int r = SSL_read(g.ssl, buf, (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(g.ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return -1;
        if (e == SSL_ERROR_WANT_WRITE) {
            g.read_wants_write = true;
            return -1;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        fatal("TLS read: %s", ssl_error_string());
    }
    ssize_t r = recv(g.fd, buf, n, 0);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    if (errno == ECONNRESET) {
        g.conn_reset = true;
        return 0;
    }
    fatal("read: %s", strerror(errno));
}

static ssize_t conn_write(const uint8_t *buf, size_t n, bool quiet)
{
    if (g.ssl) {
        ERR_clear_error();
        int r = SSL_write(g.ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (r > 0)
            return r;
        int e = SSL_get_error(g.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE)
            return -1;
        if (e == SSL_ERROR_WANT_READ) {
            g.write_wants_read = true;
            return -1;
        }
        if (quiet)
            return -2;
        fatal("TLS write: %s", ssl_error_string());
    }
    ssize_t r = send(g.fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    if (quiet)
        return -2;
    fatal("write: %s", strerror(errno));
}

static size_t out_pending(void)
{
    return g.outlen - g.outoff;
}

/* Moves what nghttp2 has to send into our buffer, up to a high-water mark. */
static void fill_out(void)
{
    while (out_pending() < OUT_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(g.s, &data);
        if (n < 0)
            fatal("nghttp2_session_mem_send: %s", nghttp2_strerror((int)n));
        if (n == 0)
            break;
        if (g.outoff > 0) {
            memmove(g.out, g.out + g.outoff, out_pending());
            g.outlen -= g.outoff;
            g.outoff = 0;
        }
        if (g.outlen + (size_t)n > g.outcap) {
            size_t cap = g.outcap ? g.outcap : OUT_HIGH_WATER;
            while (cap < g.outlen + (size_t)n)
                cap *= 2;
            uint8_t *p = realloc(g.out, cap);
            if (!p)
                oom();
            g.out = p;
            g.outcap = cap;
        }
        memcpy(g.out + g.outlen, data, (size_t)n);
        g.outlen += (size_t)n;
    }
}

/* Returns bytes written, 0 if the socket is full or there is nothing to write, -2 on error. */
static ssize_t write_some(bool quiet)
{
    if (!out_pending())
        return 0;
    g.read_wants_write = false;
    ssize_t n = conn_write(g.out + g.outoff, out_pending(), quiet);
    if (n < 0)
        return n == -1 ? 0 : -2;
    g.outoff += (size_t)n;
    if (g.outoff == g.outlen)
        g.outoff = g.outlen = 0;
    return n;
}

static void flush_some(void)
{
    for (int i = 0; i < 16; i++) {
        fill_out();
        if (!out_pending() || write_some(false) <= 0)
            break;
    }
}

/* ---- ending ---- */

static void print_done(void)
{
    ev_begin("done");
    sb_printf(&line,
              ",\"streams\":%" PRIu64 ",\"completed\":%" PRIu64 ",\"reset\":%" PRIu64
              ",\"pushed\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"not_sent\":%" PRIu64,
              g.opened, g.completed, g.reset, g.pushed, g.bytes, g.not_sent);
    if (g.last_close_t >= 0)
        sb_printf(&line, ",\"last_close_t\":%.1f", g.last_close_t);
    else
        sb_puts(&line, ",\"last_close_t\":null");
    if (opt.fetch_links)
        sb_printf(&line, ",\"fetched\":%" PRIu64, g.fetched);
    emit();
}

static void cleanup(void)
{
    if (g.s)
        nghttp2_session_del(g.s);
    g.s = NULL;
    close_conn();
    while (g.all) {
        struct stream *st = g.all;
        g.all = st->next;
        if (st->md)
            EVP_MD_CTX_free(st->md);
        free(st->path);
        free(st->block.p);
        free_links(st);
        free(st);
    }
    for (size_t i = 0; i < g.nseen; i++)
        free(g.seen[i]);
    free(g.seen);
    free(g.out);
    free(g.nva);
    free(line.p);
    for (size_t i = 0; i < opt.nhdrs; i++) {
        free(opt.hdrs[i].name);
        free(opt.hdrs[i].value);
    }
    free(opt.hdrs);
}

/* Success: say goodbye with GOAWAY(NO_ERROR) (best effort, at most ~200 ms), then exit 0. */
__attribute__((noreturn)) static void finish_ok(bool goodbye)
{
    print_done();
    if (goodbye && !g.eof && nghttp2_session_terminate_session(g.s, NGHTTP2_NO_ERROR) == 0) {
        double end = now_s() + 0.2;
        if (end > g.deadline)
            end = g.deadline;
        for (;;) {
            fill_out();
            if (!out_pending() || write_some(true) < 0 || now_s() >= end)
                break;
            if (out_pending()) {
                struct pollfd p = {g.fd, POLLOUT, 0};
                poll(&p, 1, 10);
            }
        }
        if (g.ssl)
            SSL_shutdown(g.ssl);
    }
    cleanup();
    exit(0);
}

static size_t open_streams(void)
{
    return g.in_flight + (size_t)g.open_pushed;
}

/* A GOAWAY with an error code, sent or received, makes the run a connection error. */
static void check_connection_errors(const char *how)
{
    if (g.local_error)
        fatal("%s: we sent GOAWAY(%s) \"%s\"%s%s", how, nghttp2_http2_strerror(g.local_error_code),
              g.local_error_debug, g.lib_err[0] ? ": " : "", g.lib_err);
    if (g.goaway_recv && g.goaway_recv_code != NGHTTP2_NO_ERROR)
        fatal("%s: the peer sent GOAWAY(%s) \"%s\"", how,
              nghttp2_http2_strerror(g.goaway_recv_code), g.goaway_recv_debug);
}

__attribute__((noreturn)) static void connection_ended(const char *how)
{
    check_connection_errors(how);
    if (all_done())
        finish_ok(false);
    fatal("%s with %zu stream(s) open%s", how, open_streams(),
          g.goaway_recv ? " (after GOAWAY(NO_ERROR))" : "");
}

/* ---- --pause-after ---- */

static void wait_stdin_line(void)
{
    for (;;) {
        int ms = ms_left();
        if (ms <= 0)
            timeout_exit();
        struct pollfd p = {0, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (r == 0)
            continue;
        char c;
        ssize_t n = read(0, &c, 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0 || c == '\n')
            return;
    }
}

static void maybe_pause(void)
{
    if (!g.pause_pending || g.paused_done)
        return;
    g.paused_done = true;
    flush_some();
    ev_begin("paused");
    sb_printf(&line, ",\"bytes\":%" PRIu64, g.bytes);
    emit();
    wait_stdin_line();
    g.rate_start = now_s() - (opt.read_rate > 0 ? (double)g.read_total / opt.read_rate : 0);
}

/* ---- setup ---- */

static void wait_fd(short events)
{
    for (;;) {
        int ms = ms_left();
        if (ms <= 0)
            timeout_exit();
        struct pollfd p = {g.fd, events, 0};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return;
        if (r < 0 && errno != EINTR)
            fatal("poll: %s", strerror(errno));
    }
}

static void connect_tcp(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &res);
    if (rc != 0)
        fatal("resolve %s: %s", opt.host, gai_strerror(rc));
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        g.fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (g.fd < 0) {
            err = errno;
            continue;
        }
        if (connect(g.fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            err = 0;
        } else if (errno == EINPROGRESS) {
            wait_fd(POLLOUT);
            socklen_t len = sizeof err;
            if (getsockopt(g.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        } else {
            err = errno;
        }
        if (err == 0)
            break;
        close(g.fd);
        g.fd = -1;
    }
    freeaddrinfo(res);
    if (g.fd < 0)
        fatal("connect %s port %s: %s", opt.host, opt.port, strerror(err));
    int one = 1;
    setsockopt(g.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void tls_handshake(void)
{
    g.ctx = SSL_CTX_new(TLS_client_method());
    if (!g.ctx)
        fatal("SSL_CTX_new: %s", ssl_error_string());
    SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(g.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(g.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = "\x02h2";
    if (SSL_CTX_set_alpn_protos(g.ctx, alpn, sizeof alpn - 1) != 0)
        fatal("SSL_CTX_set_alpn_protos failed");
    g.ssl = SSL_new(g.ctx);
    if (!g.ssl || !SSL_set_fd(g.ssl, g.fd))
        fatal("SSL_new: %s", ssl_error_string());
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, opt.host, addr) != 1 && inet_pton(AF_INET6, opt.host, addr) != 1)
        SSL_set_tlsext_host_name(g.ssl, opt.host);
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(g.ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(g.ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            wait_fd(POLLIN);
        else if (e == SSL_ERROR_WANT_WRITE)
            wait_fd(POLLOUT);
        else
            fatal("TLS handshake: %s", ssl_error_string());
    }
    const unsigned char *proto = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(g.ssl, &proto, &len);
    if (len != 2 || memcmp(proto, "h2", 2) != 0)
        fatal("the server did not select h2 with ALPN");
}

static void add_nv(const char *name, const char *value, uint8_t flags)
{
    g.nva = realloc(g.nva, (g.nnva + 1) * sizeof *g.nva);
    if (!g.nva)
        oom();
    g.nva[g.nnva++] =
        (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), flags};
}

/* The request header list shared by every request; entry 3 (:path) is filled per request. */
static void build_nva(void)
{
    static char authority[512], clen[32];
    const char *pseudo[4][2] = {{":method", opt.method},
                                {":scheme", opt.scheme},
                                {":authority", opt.authority},
                                {":path", ""}};
    if (!pseudo[2][1]) {
        bool v6 = strchr(opt.host, ':') != NULL;
        snprintf(authority, sizeof authority, "%s%s%s:%s", v6 ? "[" : "", opt.host, v6 ? "]" : "",
                 opt.port);
        pseudo[2][1] = authority;
    }
    for (size_t i = 0; i < opt.nhdrs; i++)
        for (int k = 0; k < 4; k++)
            if (!opt.hdrs[i].raw && strcmp(opt.hdrs[i].name, pseudo[k][0]) == 0)
                pseudo[k][1] = opt.hdrs[i].value;
    for (int k = 0; k < 4; k++)
        add_nv(pseudo[k][0], pseudo[k][1], NGHTTP2_NV_FLAG_NONE);
    /* --raw-header names are passed with NO_COPY_NAME: nghttp2 lower-cases the names it copies.
     * They stay allocated until cleanup(), after the session is gone. */
    for (size_t i = 0; i < opt.nhdrs; i++) {
        struct xheader *h = &opt.hdrs[i];
        bool known_pseudo = false;
        for (int k = 0; k < 4; k++)
            known_pseudo |= !h->raw && strcmp(h->name, pseudo[k][0]) == 0;
        if (!known_pseudo)
            add_nv(h->name, h->value,
                   h->raw ? NGHTTP2_NV_FLAG_NO_INDEX | NGHTTP2_NV_FLAG_NO_COPY_NAME
                          : NGHTTP2_NV_FLAG_NONE);
    }
    if (opt.content_length && opt.data_size >= 0) {
        snprintf(clen, sizeof clen, "%lld", opt.data_size);
        add_nv("content-length", clen, NGHTTP2_NV_FLAG_NONE);
    }
}

static void session_setup(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        oom();
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    int rv = nghttp2_session_client_new(&g.s, cb, NULL);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        fatal("nghttp2_session_client_new: %s", nghttp2_strerror(rv));

    nghttp2_settings_entry iv[3];
    size_t niv = 0;
    iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, opt.no_push ? 0 : 1};
    if (opt.max_concurrent >= 0)
        iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                             (uint32_t)opt.max_concurrent};
    if (opt.window >= 0)
        iv[niv++] =
            (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)opt.window};
    rv = nghttp2_submit_settings(g.s, NGHTTP2_FLAG_NONE, iv, niv);
    if (rv != 0)
        fatal("nghttp2_submit_settings: %s", nghttp2_strerror(rv));
    if (opt.window >= 0) {
        rv = nghttp2_session_set_local_window_size(g.s, NGHTTP2_FLAG_NONE, 0, (int32_t)opt.window);
        if (rv != 0)
            fatal("nghttp2_session_set_local_window_size: %s", nghttp2_strerror(rv));
    }
}

/* ---- command line ---- */

static long long parse_num(const char *arg, const char *what, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max)
        usage_error("bad value for %s", what);
    return v;
}

static void add_header_arg(const char *arg, bool raw)
{
    const char *colon = strchr(arg + (arg[0] == ':'), ':');
    if (!colon && !raw)
        usage_error("header '%s' is not 'name: value'", arg);
    size_t nlen = colon ? (size_t)(colon - arg) : strlen(arg);
    const char *v = colon ? colon + 1 : "";
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    if (!raw) {
        while (nlen > 0 && (arg[nlen - 1] == ' ' || arg[nlen - 1] == '\t'))
            nlen--;
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (nlen == 0)
            usage_error("header '%s' has an empty name", arg);
    }
    struct xheader h = {strndup(arg, nlen), strndup(v, vlen), raw};
    if (!h.name || !h.value)
        oom();
    if (!raw)
        for (char *p = h.name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    opt.hdrs = realloc(opt.hdrs, (opt.nhdrs + 1) * sizeof *opt.hdrs);
    if (!opt.hdrs)
        oom();
    opt.hdrs[opt.nhdrs++] = h;
}

enum {
    O_TLS = 256,
    O_AUTHORITY,
    O_SCHEME,
    O_METHOD,
    O_RAW_HEADER,
    O_DATA_SIZE,
    O_CONTENT_LENGTH,
    O_NO_PUSH,
    O_MAX_CONCURRENT,
    O_WINDOW,
    O_CONCURRENCY,
    O_REPEAT,
    O_RST_AFTER,
    O_RST_PROMISED,
    O_PAUSE_AFTER,
    O_READ_RATE,
    O_GOAWAY_AFTER_HEADERS,
    O_TIMEOUT,
    O_QUIET_DATA,
    O_PRINT_DATA,
    O_FETCH_LINKS,
};

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tls", no_argument, NULL, O_TLS},
        {"authority", required_argument, NULL, O_AUTHORITY},
        {"scheme", required_argument, NULL, O_SCHEME},
        {"method", required_argument, NULL, O_METHOD},
        {"header", required_argument, NULL, 'H'},
        {"raw-header", required_argument, NULL, O_RAW_HEADER},
        {"data-size", required_argument, NULL, O_DATA_SIZE},
        {"content-length", no_argument, NULL, O_CONTENT_LENGTH},
        {"no-push", no_argument, NULL, O_NO_PUSH},
        {"max-concurrent", required_argument, NULL, O_MAX_CONCURRENT},
        {"window", required_argument, NULL, O_WINDOW},
        {"concurrency", required_argument, NULL, O_CONCURRENCY},
        {"repeat", required_argument, NULL, O_REPEAT},
        {"rst-after", required_argument, NULL, O_RST_AFTER},
        {"rst-promised", no_argument, NULL, O_RST_PROMISED},
        {"pause-after", required_argument, NULL, O_PAUSE_AFTER},
        {"read-rate", required_argument, NULL, O_READ_RATE},
        {"goaway-after-headers", no_argument, NULL, O_GOAWAY_AFTER_HEADERS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"quiet-data", no_argument, NULL, O_QUIET_DATA},
        {"print-data", no_argument, NULL, O_PRINT_DATA},
        {"fetch-links", no_argument, NULL, O_FETCH_LINKS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "H:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_TLS:
            opt.tls = true;
            break;
        case O_AUTHORITY:
            opt.authority = optarg;
            break;
        case O_SCHEME:
            opt.scheme = optarg;
            break;
        case O_METHOD:
            opt.method = optarg;
            break;
        case 'H':
            add_header_arg(optarg, false);
            break;
        case O_RAW_HEADER:
            add_header_arg(optarg, true);
            break;
        case O_DATA_SIZE:
            opt.data_size = parse_num(optarg, "--data-size", 0, INT64_MAX);
            break;
        case O_CONTENT_LENGTH:
            opt.content_length = true;
            break;
        case O_NO_PUSH:
            opt.no_push = true;
            break;
        case O_MAX_CONCURRENT:
            opt.max_concurrent = parse_num(optarg, "--max-concurrent", 0, UINT32_MAX);
            break;
        case O_WINDOW:
            opt.window = parse_num(optarg, "--window", 0, NGHTTP2_MAX_WINDOW_SIZE);
            break;
        case O_CONCURRENCY:
            opt.concurrency = parse_num(optarg, "--concurrency", 1, INT32_MAX);
            break;
        case O_REPEAT:
            opt.repeat = parse_num(optarg, "--repeat", 1, INT32_MAX);
            break;
        case O_RST_AFTER:
            opt.rst_after = parse_num(optarg, "--rst-after", 0, INT64_MAX);
            break;
        case O_RST_PROMISED:
            opt.rst_promised = true;
            break;
        case O_PAUSE_AFTER:
            opt.pause_after = parse_num(optarg, "--pause-after", 0, INT64_MAX);
            break;
        case O_READ_RATE:
            opt.read_rate = parse_num(optarg, "--read-rate", 1, INT64_MAX);
            break;
        case O_GOAWAY_AFTER_HEADERS:
            opt.goaway_after_headers = true;
            break;
        case O_TIMEOUT: {
            char *end;
            opt.timeout = strtod(optarg, &end);
            if (end == optarg || *end || !(opt.timeout > 0) || opt.timeout > 1e7)
                usage_error("bad value for %s", "--timeout");
            break;
        }
        case O_QUIET_DATA:
            opt.print_data = false;
            break;
        case O_PRINT_DATA:
            opt.print_data = true;
            break;
        case O_FETCH_LINKS:
            opt.fetch_links = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            fputs(usage_text, stderr);
            exit(2);
        }
    }
    if (argc - optind < 3)
        usage_error("%s", "HOST, PORT and at least one PATH are required");
    opt.host = argv[optind];
    opt.port = argv[optind + 1];
    opt.paths = argv + optind + 2;
    opt.npaths = (size_t)(argc - optind - 2);
    if (!opt.method)
        opt.method = "GET";
    if (!opt.scheme)
        opt.scheme = opt.tls ? "https" : "http";
}

/* ---- main loop ---- */

int main(int argc, char **argv)
{
    t_start = mono_s();
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    g.deadline = now_s() + opt.timeout;
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)i;
    g.total_req = opt.npaths * (size_t)opt.repeat;
    build_nva();

    connect_tcp();
    if (opt.tls)
        tls_handshake();
    session_setup();
    g.rate_start = now_s();

    static uint8_t rbuf[RBUF_SIZE];
    size_t chunk = RBUF_SIZE;
    if (opt.read_rate > 0) {
        long long c = opt.read_rate / 20;
        chunk = c < 1 ? 1 : c > RBUF_SIZE ? RBUF_SIZE : (size_t)c;
    }
    for (;;) {
        maybe_pause();
        submit_more();
        flush_some();
        if (all_done()) {
            check_connection_errors("connection error");
            finish_ok(true);
        }
        if (g.eof)
            connection_ended(g.conn_reset ? "connection reset by the peer"
                                          : "connection closed by the peer");
        if (!nghttp2_session_want_read(g.s) && !nghttp2_session_want_write(g.s) && !out_pending())
            connection_ended("session over");

        int timeout_ms = ms_left();
        if (timeout_ms <= 0)
            timeout_exit();
        bool rate_wait = false;
        if (opt.read_rate > 0) {
            double at = g.rate_start + (double)g.read_total / (double)opt.read_rate;
            double wait = at - now_s();
            if (wait > 0) {
                rate_wait = true;
                int ms = (int)(wait * 1000) + 1;
                if (ms < timeout_ms)
                    timeout_ms = ms;
            }
        }
        bool want_read = !rate_wait && nghttp2_session_want_read(g.s);
        struct pollfd p = {g.fd, 0, 0};
        if (want_read || g.write_wants_read)
            p.events |= POLLIN;
        if (out_pending() || g.read_wants_write)
            p.events |= POLLOUT;
        bool tls_buffered = want_read && g.ssl && SSL_pending(g.ssl) > 0;
        int r = poll(&p, 1, tls_buffered ? 0 : timeout_ms);
        if (r < 0 && errno != EINTR)
            fatal("poll: %s", strerror(errno));
        if (r <= 0 && !tls_buffered)
            continue;
        if (p.revents & (POLLOUT | POLLIN))
            g.write_wants_read = false;
        if (out_pending() && (p.revents & (POLLOUT | POLLIN | POLLERR | POLLHUP)))
            if (write_some(false) < 0)
                fatal("write failed");
        if (tls_buffered || (want_read && (p.revents & (POLLIN | POLLERR | POLLHUP))) ||
            (g.read_wants_write && (p.revents & POLLOUT))) {
            g.read_wants_write = false;
            ssize_t n = conn_read(rbuf, chunk);
            if (n == 0) {
                g.eof = true;
            } else if (n > 0) {
                g.read_total += (uint64_t)n;
                ssize_t rv = nghttp2_session_mem_recv(g.s, rbuf, (size_t)n);
                if (rv < 0)
                    fatal("nghttp2_session_mem_recv: %s%s%s", nghttp2_strerror((int)rv),
                          g.lib_err[0] ? ": " : "", g.lib_err);
            }
        }
    }
}
