#include "pushgate/config.h"
#include "pushgate/common.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum long_only_option {
    OPT_TLS_CERT = 256,
    OPT_TLS_KEY,
    OPT_WORKERS,
    OPT_UPSTREAM_CONNECT_TIMEOUT,
    OPT_UPSTREAM_TIMEOUT,
    OPT_UPSTREAM_MAX_CONNECTIONS,
    OPT_MAX_CONCURRENT_STREAMS,
    OPT_LOG_LEVEL,
    OPT_DEMO,
    OPT_NO_PUSH,
    OPT_PUSH_COPY_COOKIES,
    OPT_MAX_PUSHES_PER_RESPONSE,
    OPT_MAX_CONCURRENT_PUSHES,
    OPT_EARLY_HINTS,
    OPT_NO_EARLY_HINTS,
    OPT_EARLY_HINTS_HTTP1,
    OPT_PUSH_LEARN,
    OPT_NO_PUSH_LEARN,
    OPT_PUSH_LEARN_SIZE,
    OPT_PUSH_LEARN_TTL,
    OPT_PUSH_LEARN_PRIVATE,
    OPT_PUSH_CACHE_DIGEST,
    OPT_PUSH_CACHE_DIGEST_MAX_AGE,
    OPT_MAX_CONNECTIONS,
    OPT_IDLE_TIMEOUT,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_WRITE_TIMEOUT,
    OPT_REQUEST_TIMEOUT,
    OPT_UPSTREAM_QUEUE,
    OPT_ABUSE_BUDGET,
    OPT_ABUSE_REFILL,
    OPT_MAX_UPSTREAM_PER_CONNECTION,
    OPT_RESPONSE_BUFFER_KIB,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_METRICS_LISTEN,
    OPT_ACCESS_LOG,
    OPT_ACCESS_LOG_FORMAT,
    OPT_CHECK,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"upstream", required_argument, NULL, 'u'},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"upstream-connect-timeout", required_argument, NULL, OPT_UPSTREAM_CONNECT_TIMEOUT},
    {"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
    {"upstream-max-connections", required_argument, NULL, OPT_UPSTREAM_MAX_CONNECTIONS},
    {"max-concurrent-streams", required_argument, NULL, OPT_MAX_CONCURRENT_STREAMS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"demo", no_argument, NULL, OPT_DEMO},
    {"no-push", no_argument, NULL, OPT_NO_PUSH},
    {"push-copy-cookies", no_argument, NULL, OPT_PUSH_COPY_COOKIES},
    {"max-pushes-per-response", required_argument, NULL, OPT_MAX_PUSHES_PER_RESPONSE},
    {"max-concurrent-pushes", required_argument, NULL, OPT_MAX_CONCURRENT_PUSHES},
    {"early-hints", no_argument, NULL, OPT_EARLY_HINTS},
    {"no-early-hints", no_argument, NULL, OPT_NO_EARLY_HINTS},
    {"early-hints-http1", no_argument, NULL, OPT_EARLY_HINTS_HTTP1},
    {"push-learn", no_argument, NULL, OPT_PUSH_LEARN},
    {"no-push-learn", no_argument, NULL, OPT_NO_PUSH_LEARN},
    {"push-learn-size", required_argument, NULL, OPT_PUSH_LEARN_SIZE},
    {"push-learn-ttl", required_argument, NULL, OPT_PUSH_LEARN_TTL},
    {"push-learn-private", no_argument, NULL, OPT_PUSH_LEARN_PRIVATE},
    {"push-cache-digest", no_argument, NULL, OPT_PUSH_CACHE_DIGEST},
    {"push-cache-digest-max-age", required_argument, NULL, OPT_PUSH_CACHE_DIGEST_MAX_AGE},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"upstream-queue", required_argument, NULL, OPT_UPSTREAM_QUEUE},
    {"abuse-budget", required_argument, NULL, OPT_ABUSE_BUDGET},
    {"abuse-refill", required_argument, NULL, OPT_ABUSE_REFILL},
    {"max-upstream-per-connection", required_argument, NULL, OPT_MAX_UPSTREAM_PER_CONNECTION},
    {"response-buffer-kib", required_argument, NULL, OPT_RESPONSE_BUFFER_KIB},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"access-log-format", required_argument, NULL, OPT_ACCESS_LOG_FORMAT},
    {"check", no_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void set_defaults(struct pg_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = 1;
    cfg->upstream_connect_timeout_ms = 5000;
    cfg->upstream_timeout_ms = 60000;
    cfg->upstream_max_connections = 256;
    cfg->upstream_queue = 1024;
    cfg->abuse_budget = 1000;
    cfg->abuse_refill = 100;
    cfg->max_concurrent_streams = 100;
    cfg->log_level = PG_LOG_INFO;
    cfg->push_enabled = true;
    cfg->max_pushes_per_response = 16;
    cfg->max_concurrent_pushes = 32;
    cfg->early_hints = true;
    cfg->max_connections = 10000;
    cfg->idle_timeout_ms = 60 * 1000;
    cfg->handshake_timeout_ms = 10 * 1000;
    cfg->write_timeout_ms = 60 * 1000;
    cfg->request_timeout_ms = 60 * 1000;
    cfg->max_upstream_per_connection = 100;
    cfg->response_buffer_kib = 256;
    cfg->push_learn = true;
    cfg->push_learn_size = 1024;
    cfg->push_learn_ttl_ms = 10 * 60 * 1000;
    cfg->push_cache_digest_max_age_ms = 7 * 24 * 3600 * 1000U;
    cfg->shutdown_timeout_ms = 30 * 1000;
}

static int fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return PG_ERR_INVALID;
}

static bool parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

#define MAX_DURATION_MS (30ULL * 24 * 3600 * 1000)

bool pg_config_parse_duration(const char *text, unsigned *ms)
{
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    unsigned long long scale;
    if (errno)
        return false;
    if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else if (strcmp(end, "h") == 0)
        scale = 3600000;
    else
        return false;
    if (v == 0 || v > MAX_DURATION_MS / scale)
        return false; /* zero would disable a timeout; beyond 30 days is a typo */
    *ms = (unsigned)(v * scale);
    return true;
}

/* Splits "host:port", "[v6]:port" or "*:port" into its parts. */
static bool split_host_port(const char *text, char *host, size_t host_len, char *port,
                            size_t port_len)
{
    const char *colon;
    const char *host_start = text;
    size_t n;
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return false;
        host_start = text + 1;
        n = (size_t)(close - host_start);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return false; /* an IPv6 address needs brackets */
        n = (size_t)(colon - text);
    }
    if (n == 0 || n >= host_len || strlen(colon + 1) >= port_len)
        return false;
    unsigned port_value;
    if (!parse_uint(colon + 1, 0, 65535, &port_value))
        return false;
    memcpy(host, host_start, n);
    host[n] = '\0';
    if (strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    snprintf(port, port_len, "%u", port_value);
    return true;
}

static int parse_upstream(struct pg_config *cfg, const char *url, char *err, size_t err_len)
{
    static const char prefix[] = "http://";
    if (strncasecmp(url, prefix, sizeof(prefix) - 1) != 0)
        return fail(err, err_len, "--upstream '%s': only http://HOST[:PORT] is supported", url);
    const char *authority = url + sizeof(prefix) - 1;
    char buf[300];
    size_t len = strlen(authority);
    if (len && authority[len - 1] == '/')
        len--; /* "http://host:port/" names the same origin */
    if (len == 0 || len >= sizeof(buf) - 4 || memchr(authority, '/', len) ||
        memchr(authority, '@', len) || memchr(authority, '?', len) || memchr(authority, '#', len))
        return fail(err, err_len, "--upstream '%s': expected http://HOST[:PORT] with no path", url);
    memcpy(buf, authority, len);
    buf[len] = '\0';
    bool has_port =
        buf[len - 1] != ']' && strrchr(buf, ':') && (buf[0] != '[' || strstr(buf, "]:"));
    if (!has_port)
        strcat(buf, ":80");
    char port[8];
    if (!split_host_port(buf, cfg->upstream_host, sizeof(cfg->upstream_host), port, sizeof(port)) ||
        !parse_uint(port, 1, 65535, &cfg->upstream_port))
        return fail(err, err_len, "--upstream '%s': cannot parse host and port", url);
    bool v6 = strchr(cfg->upstream_host, ':') != NULL;
    snprintf(cfg->upstream_origin, sizeof(cfg->upstream_origin), "http://%s%s%s:%u", v6 ? "[" : "",
             cfg->upstream_host, v6 ? "]" : "", cfg->upstream_port);
    return PG_OK;
}

static int copy_path(char *dst, size_t dst_len, const char *src, const char *flag, char *err,
                     size_t err_len)
{
    if (!*src || strlen(src) >= dst_len)
        return fail(err, err_len, "%s: path is empty or too long", flag);
    strcpy(dst, src);
    return PG_OK;
}

static int parse_timeout(const char *arg, const char *flag, unsigned *ms, char *err, size_t err_len)
{
    if (!pg_config_parse_duration(arg, ms))
        return fail(err, err_len, "%s '%s': expected a duration such as 500ms, 30s or 2m", flag,
                    arg);
    return PG_OK;
}

/* Flags that take a whole number within bounds; the value goes into the named field. */
struct count_flag {
    int opt;
    const char *name;
    unsigned min, max;
    size_t offset; /* of an unsigned in struct pg_config */
};

static const struct count_flag count_flags[] = {
    {OPT_WORKERS, "--workers", 1, PG_MAX_WORKERS, offsetof(struct pg_config, workers)},
    {OPT_UPSTREAM_MAX_CONNECTIONS, "--upstream-max-connections", 1, 65536,
     offsetof(struct pg_config, upstream_max_connections)},
    {OPT_ABUSE_BUDGET, "--abuse-budget", 10, 1000000, offsetof(struct pg_config, abuse_budget)},
    {OPT_ABUSE_REFILL, "--abuse-refill", 0, 1000000, offsetof(struct pg_config, abuse_refill)},
    {OPT_UPSTREAM_QUEUE, "--upstream-queue", 0, 1000000,
     offsetof(struct pg_config, upstream_queue)},
    {OPT_MAX_CONCURRENT_STREAMS, "--max-concurrent-streams", 1, 65536,
     offsetof(struct pg_config, max_concurrent_streams)},
    {OPT_MAX_PUSHES_PER_RESPONSE, "--max-pushes-per-response", 0, 1000,
     offsetof(struct pg_config, max_pushes_per_response)},
    {OPT_MAX_CONCURRENT_PUSHES, "--max-concurrent-pushes", 1, 1000,
     offsetof(struct pg_config, max_concurrent_pushes)},
    {OPT_MAX_CONNECTIONS, "--max-connections", 1, 1000000,
     offsetof(struct pg_config, max_connections)},
    {OPT_MAX_UPSTREAM_PER_CONNECTION, "--max-upstream-per-connection", 1, 65536,
     offsetof(struct pg_config, max_upstream_per_connection)},
    {OPT_RESPONSE_BUFFER_KIB, "--response-buffer-kib", 16, 1048576,
     offsetof(struct pg_config, response_buffer_kib)},
    {OPT_PUSH_LEARN_SIZE, "--push-learn-size", 1, 1000000,
     offsetof(struct pg_config, push_learn_size)},
};

static const struct count_flag *find_count_flag(int opt)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(count_flags); i++)
        if (count_flags[i].opt == opt)
            return &count_flags[i];
    return NULL;
}

static int apply_option(struct pg_config *cfg, int opt, const char *arg, char *err, size_t err_len)
{
    enum pg_log_level level;
    const struct count_flag *count = find_count_flag(opt);
    if (count) {
        unsigned *field = (unsigned *)((char *)cfg + count->offset);
        if (!parse_uint(arg, count->min, count->max, field))
            return fail(err, err_len, "%s '%s': expected %u..%u", count->name, arg, count->min,
                        count->max);
        return PG_OK;
    }
    switch (opt) {
    case 'l':
        if (cfg->listen_count == PG_MAX_LISTENERS)
            return fail(err, err_len, "--listen: at most %d addresses", PG_MAX_LISTENERS);
        if (!split_host_port(arg, cfg->listen[cfg->listen_count].host, sizeof(cfg->listen[0].host),
                             cfg->listen[cfg->listen_count].port, sizeof(cfg->listen[0].port)))
            return fail(err, err_len, "--listen '%s': expected HOST:PORT or [IPV6]:PORT", arg);
        cfg->listen_count++;
        return PG_OK;
    case OPT_TLS_CERT:
        return copy_path(cfg->tls_cert, sizeof(cfg->tls_cert), arg, "--tls-cert", err, err_len);
    case OPT_TLS_KEY:
        return copy_path(cfg->tls_key, sizeof(cfg->tls_key), arg, "--tls-key", err, err_len);
    case 'u':
        return parse_upstream(cfg, arg, err, err_len);
    case OPT_UPSTREAM_CONNECT_TIMEOUT:
        if (!pg_config_parse_duration(arg, &cfg->upstream_connect_timeout_ms))
            return fail(err, err_len,
                        "--upstream-connect-timeout '%s': expected a duration "
                        "such as 500ms, 5s or 1m",
                        arg);
        return PG_OK;
    case OPT_UPSTREAM_TIMEOUT:
        return parse_timeout(arg, "--upstream-timeout", &cfg->upstream_timeout_ms, err, err_len);
    case OPT_LOG_LEVEL:
        if (!pg_log_level_parse(arg, &level))
            return fail(err, err_len, "--log-level '%s': expected error, warn, info or debug", arg);
        cfg->log_level = level;
        return PG_OK;
    case OPT_DEMO:
        cfg->demo = true;
        return PG_OK;
    case OPT_NO_PUSH:
        cfg->push_enabled = false;
        return PG_OK;
    case OPT_PUSH_COPY_COOKIES:
        cfg->push_copy_cookies = true;
        return PG_OK;
    case OPT_IDLE_TIMEOUT:
        return parse_timeout(arg, "--idle-timeout", &cfg->idle_timeout_ms, err, err_len);
    case OPT_HANDSHAKE_TIMEOUT:
        return parse_timeout(arg, "--handshake-timeout", &cfg->handshake_timeout_ms, err, err_len);
    case OPT_WRITE_TIMEOUT:
        return parse_timeout(arg, "--write-timeout", &cfg->write_timeout_ms, err, err_len);
    case OPT_REQUEST_TIMEOUT:
        return parse_timeout(arg, "--request-timeout", &cfg->request_timeout_ms, err, err_len);
    case OPT_EARLY_HINTS:
    case OPT_NO_EARLY_HINTS:
        cfg->early_hints = opt == OPT_EARLY_HINTS;
        return PG_OK;
    case OPT_EARLY_HINTS_HTTP1:
        cfg->early_hints_http1 = true;
        return PG_OK;
    case OPT_SHUTDOWN_TIMEOUT:
        return parse_timeout(arg, "--shutdown-timeout", &cfg->shutdown_timeout_ms, err, err_len);
    case OPT_METRICS_LISTEN:
        if (!split_host_port(arg, cfg->metrics_listen.host, sizeof(cfg->metrics_listen.host),
                             cfg->metrics_listen.port, sizeof(cfg->metrics_listen.port)))
            return fail(err, err_len, "--metrics-listen '%s': expected HOST:PORT or [IPV6]:PORT",
                        arg);
        cfg->metrics_enabled = true;
        return PG_OK;
    case OPT_ACCESS_LOG:
        return copy_path(cfg->access_log, sizeof(cfg->access_log), arg, "--access-log", err,
                         err_len);
    case OPT_ACCESS_LOG_FORMAT:
        if (strcmp(arg, "combined") != 0 && strcmp(arg, "json") != 0)
            return fail(err, err_len, "--access-log-format '%s': expected combined or json", arg);
        cfg->access_log_json = strcmp(arg, "json") == 0;
        return PG_OK;
    case OPT_CHECK:
        cfg->check_only = true;
        return PG_OK;
    case OPT_PUSH_LEARN:
    case OPT_NO_PUSH_LEARN:
        cfg->push_learn = opt == OPT_PUSH_LEARN;
        return PG_OK;
    case OPT_PUSH_LEARN_TTL:
        if (!pg_config_parse_duration(arg, &cfg->push_learn_ttl_ms) || !cfg->push_learn_ttl_ms)
            return fail(err, err_len,
                        "--push-learn-ttl '%s': expected a duration such as 30s, 10m or 1h", arg);
        return PG_OK;
    case OPT_PUSH_LEARN_PRIVATE:
        cfg->push_learn_private = true;
        return PG_OK;
    case OPT_PUSH_CACHE_DIGEST:
        cfg->push_cache_digest = true;
        return PG_OK;
    case OPT_PUSH_CACHE_DIGEST_MAX_AGE:
        if (!pg_config_parse_duration(arg, &cfg->push_cache_digest_max_age_ms) ||
            cfg->push_cache_digest_max_age_ms < 1000)
            return fail(err, err_len,
                        "--push-cache-digest-max-age '%s': expected a duration of at least 1s, "
                        "such as 1h or 168h",
                        arg);
        return PG_OK;
    }
    return fail(err, err_len, "unknown option");
}

static int check_complete(struct pg_config *cfg, char *err, size_t err_len)
{
    if (!*cfg->tls_cert != !*cfg->tls_key)
        return fail(err, err_len, "--tls-cert and --tls-key must be given together");
    if (cfg->demo && *cfg->upstream_origin)
        return fail(err, err_len, "--demo and --upstream exclude each other");
    if (!cfg->demo && !*cfg->upstream_origin)
        return fail(err, err_len, "no upstream: give --upstream http://HOST:PORT (or --demo)");
    if (cfg->listen_count == 0) {
        strcpy(cfg->listen[0].host, "127.0.0.1");
        strcpy(cfg->listen[0].port, *cfg->tls_cert ? "8443" : "8080");
        cfg->listen_count = 1;
    }
    return PG_OK;
}

int pg_config_parse(struct pg_config *cfg, int argc, char **argv, enum pg_config_action *action,
                    char *err, size_t err_len)
{
    set_defaults(cfg);
    optind = 0; /* GNU getopt: full re-initialisation, so repeated calls work */
    opterr = 0; /* we word the errors ourselves, on one line */
    int opt;
    while ((opt = getopt_long(argc, argv, ":l:u:hV", long_options, NULL)) != -1) {
        if (opt == 'h' || opt == 'V') {
            *action = opt == 'h' ? PG_CONFIG_HELP : PG_CONFIG_VERSION;
            return PG_OK;
        }
        if (opt == '?')
            return fail(err, err_len, "unknown option '%s'", argv[optind - 1]);
        if (opt == ':')
            return fail(err, err_len, "option '%s' needs a value", argv[optind - 1]);
        int result = apply_option(cfg, opt, optarg, err, err_len);
        if (result != PG_OK)
            return result;
    }
    if (optind < argc)
        return fail(err, err_len, "unexpected argument '%s'", argv[optind]);
    int result = check_complete(cfg, err, err_len);
    if (result == PG_OK)
        *action = PG_CONFIG_RUN;
    return result;
}

void pg_config_usage(FILE *out)
{
    fputs("NAME\n"
          "    pushgate - HTTP/2 and HTTP/1.1 reverse proxy that turns Link: rel=preload into\n"
          "    server push and 103 Early Hints\n"
          "\n"
          "SYNOPSIS\n"
          "    pushgate --upstream http://HOST:PORT [OPTIONS]\n"
          "    pushgate --demo --tls-cert FILE --tls-key FILE [OPTIONS]\n"
          "\n"
          "DESCRIPTION\n"
          "    Accepts HTTP/2 clients (TLS with ALPN h2, or cleartext h2c with prior knowledge)\n"
          "    and HTTP/1.0 and HTTP/1.1 clients on the same listeners (ALPN http/1.1 or no\n"
          "    ALPN; in cleartext, anything that does not start with the HTTP/2 preface), and\n"
          "    forwards each request over HTTP/1.1 to one upstream, streaming bodies both ways\n"
          "    with back-pressure. Responses carrying Link: <...>; rel=preload have their\n"
          "    same-origin targets pushed to HTTP/2 clients that accept push. HTTP/1.1 clients\n"
          "    get keep-alive and pipelining (answered in order, 16 requests read ahead at\n"
          "    most); protocol upgrades (WebSocket) are answered 501.\n"
          "\n"
          "OPTIONS\n"
          "    -l, --listen HOST:PORT\n"
          "        Address to accept clients on; repeatable. IPv6 as [::1]:8443, all IPv4\n"
          "        interfaces as *:PORT. Default 127.0.0.1:8443 with TLS, 127.0.0.1:8080 without.\n"
          "    --tls-cert FILE, --tls-key FILE\n"
          "        PEM certificate chain and private key. With both, listeners speak TLS 1.2+\n"
          "        with ALPN h2 and http/1.1 (h2 preferred); without them, cleartext HTTP/1.x\n"
          "        and HTTP/2 (h2c with prior knowledge).\n"
          "    -u, --upstream http://HOST[:PORT]\n"
          "        The HTTP/1.1 server requests are forwarded to. Connections are kept alive.\n"
          "    --demo\n"
          "        Start the built-in demo upstream on a loopback port and proxy to it.\n"
          "    --workers N\n"
          "        Event-loop threads, each with its own listeners (SO_REUSEPORT). Default 1.\n"
          "    --upstream-connect-timeout DURATION\n"
          "        Give up connecting to the upstream after DURATION (504). Default 5s.\n"
          "    --upstream-timeout DURATION\n"
          "        Longest wait for the response head and longest silence inside a response\n"
          "        body while the client is reading (504 before the head, stream reset after).\n"
          "        Default 60s.\n"
          "    --upstream-max-connections N\n"
          "        Connections to the upstream per worker; further requests wait. Default 256.\n"
          "    --upstream-queue N\n"
          "        Requests per worker that may wait for an upstream connection; beyond it\n"
          "        they are answered 503 at once (with Retry-After). Default 1024.\n"
          "    --max-concurrent-streams N\n"
          "        SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients. Default 100.\n"
          "    --max-connections N\n"
          "        Client connections open at once, over all workers; beyond it new\n"
          "        connections wait in the kernel's backlog. Default 10000.\n"
          "    --max-upstream-per-connection N\n"
          "        Upstream transfers (requests and pushes) one client connection may have\n"
          "        running; further requests wait for one to finish. Default 100.\n"
          "    --response-buffer-kib N\n"
          "        Upstream response bytes (KiB) one client connection holds for a client that\n"
          "        has not taken them, shared by its streams: a stream alone holds at most 128,\n"
          "        each of many at least 16. Default 256.\n"
          "    --handshake-timeout DURATION\n"
          "        Time for the TLS handshake and the client's connection preface. Default 10s.\n"
          "    --idle-timeout DURATION\n"
          "        Close a connection without open streams (an idle HTTP/1.1 keep-alive\n"
          "        connection) after DURATION (HTTP/2: GOAWAY); PING and SETTINGS do not count\n"
          "        as activity. Default 60s.\n"
          "    --write-timeout DURATION\n"
          "        Close a connection that accepts none of the bytes waiting for it for\n"
          "        DURATION (a client that stopped reading), and reset a stream whose\n"
          "        upstream transfer waited that long on the client's flow-control window.\n"
          "        Default 60s.\n"
          "    --abuse-budget N, --abuse-refill N\n"
          "        Per connection, frames that cost work without doing the client any good\n"
          "        (resets count twice; pings, settings, priority, empty data, tiny window\n"
          "        updates, malformed requests) spend tokens from a budget of N that refills\n"
          "        at N per second. An empty budget ends the connection with\n"
          "        GOAWAY(ENHANCE_YOUR_CALM). Defaults 1000 and 100.\n"
          "    --request-timeout DURATION\n"
          "        Longest silence inside a request that is not complete yet: a header block\n"
          "        left unfinished ends the connection (HTTP/2 GOAWAY, HTTP/1.1 408 and close),\n"
          "        a body that stops coming resets the stream (HTTP/1.1: closes the\n"
          "        connection) and cancels its upstream transfer. Default 60s.\n"
          "    --no-push\n"
          "        Never push; Link headers are forwarded untouched.\n"
          "    --max-pushes-per-response N\n"
          "        Push at most N targets per response. Default 16.\n"
          "    --max-concurrent-pushes N\n"
          "        Pushed fetches running at once per connection; further targets are not\n"
          "        pushed. Default 32.\n"
          "    --push-copy-cookies\n"
          "        Copy the parent request's cookie and authorization headers into pushed\n"
          "        requests (off by default: a push must not act with the user's credentials\n"
          "        unless the operator says so).\n"
          "    --no-early-hints\n"
          "        Do not send 103 Early Hints of our own. By default a client that disabled\n"
          "        push gets one 103 carrying the page's preload Link fields as soon as they\n"
          "        are known (learned), before the upstream answers. An upstream's own 103 is\n"
          "        always forwarded (and its preload links pushed to clients that accept push).\n"
          "    --early-hints-http1\n"
          "        Also send 103 Early Hints (ours and the upstream's) to HTTP/1.1 clients. Off\n"
          "        by default: some HTTP/1.1 clients mishandle informational responses, and\n"
          "        browsers act on 103 only over HTTP/2. HTTP/1.0 clients never get a 1xx.\n"
          "    --no-push-learn\n"
          "        Do not learn links. By default the same-origin preload targets of each 2xx\n"
          "        response to a GET are remembered per (authority, path); the next request for\n"
          "        that page is pushed (or hinted) at once, while the upstream is still thinking.\n"
          "        The newest response is the truth: the table follows what it lists.\n"
          "    --push-learn-size N\n"
          "        Pages remembered per worker (least recently used go first). Default 1024.\n"
          "    --push-learn-ttl DURATION\n"
          "        How long a learned page is trusted. Default 10m.\n"
          "    --push-learn-private\n"
          "        Also learn from responses marked Cache-Control: private or no-store and from\n"
          "        requests carrying Authorization (off: what one user sees is not replayed to\n"
          "        another).\n"
          "    --push-cache-digest\n"
          "        Remember in a cookie (pg_pushed, a 512-bit Bloom filter) what was pushed to\n"
          "        this browser, and do not push it again on later connections. Off by default.\n"
          "    --push-cache-digest-max-age DURATION\n"
          "        Lifetime of that cookie. Default 168h.\n"
          "    --access-log PATH\n"
          "        One line per request and per pushed stream, written by each worker from a\n"
          "        buffer flushed every 100ms and at exit, never blocking traffic: when the\n"
          "        file or pipe cannot take more, lines are dropped and counted. '-' is stdout.\n"
          "        SIGUSR1 reopens PATH (after logrotate renamed it). Off by default.\n"
          "    --access-log-format combined|json\n"
          "        combined: the Apache/nginx combined format with request and upstream times\n"
          "        appended; json: one object per line (see docs/operations.md). Default\n"
          "        combined.\n"
          "    --metrics-listen HOST:PORT\n"
          "        A separate plain-HTTP listener for operators: GET /metrics (Prometheus text\n"
          "        format 0.0.4), /healthz (200 while the process runs) and /readyz (200 while\n"
          "        accepting clients, 503 once draining). Off by default.\n"
          "    --shutdown-timeout DURATION\n"
          "        On SIGTERM or SIGINT pushgate drains: listeners close, HTTP/2 clients get\n"
          "        GOAWAY, HTTP/1.1 connections close after their current response, requests\n"
          "        and pushes in flight finish; it exits when the last one ends or after\n"
          "        DURATION, whichever comes first. Default 30s.\n"
          "    --check\n"
          "        Validate the flags, read the certificate and key, resolve the listen\n"
          "        addresses and the upstream, print 'pushgate: configuration OK' and exit 0\n"
          "        (or the usual one-line error and exit 2). Nothing is bound or started.\n"
          "    --log-level error|warn|info|debug\n"
          "        Default info.\n"
          "    -h, --help\n"
          "        This text.\n"
          "    -V, --version\n"
          "        Print the version and exit.\n"
          "\n"
          "DURATIONS\n"
          "    A number with a unit: 250ms, 5s, 2m, 1h; a bare number means seconds.\n"
          "\n"
          "SIGNALS\n"
          "    SIGTERM, SIGINT  drain (see --shutdown-timeout), then exit 0.\n"
          "    SIGHUP           reload the certificate and key for new connections; a pair\n"
          "                     that does not load is logged and the current one kept.\n"
          "    SIGUSR1          reopen the access log (after logrotate renamed it).\n"
          "    SIGUSR2          upgrade: start this binary again on the same listening\n"
          "                     sockets (inherited, not re-bound), then drain this process.\n"
          "    With LISTEN_FDS (systemd socket activation) the inherited sockets replace the\n"
          "    addresses of --listen; with NOTIFY_SOCKET systemd is told READY, RELOADING and\n"
          "    STOPPING.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 after a clean shutdown (SIGINT or SIGTERM); 1 on a runtime failure; 2 when a\n"
          "    flag, certificate, key or address is unusable (one line on stderr says which).\n",
          out);
}
