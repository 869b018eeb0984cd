/* pushgate: flags -> configuration, start the workers, wait for a signal, stop. */
#include "pushgate/admin.h"
#include "pushgate/common.h"
#include "pushgate/config.h"
#include "pushgate/demo.h"
#include "pushgate/h1.h"
#include "pushgate/handover.h"
#include "pushgate/h2.h"
#include "pushgate/log.h"
#include "pushgate/tls.h"
#include "pushgate/worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

static int usage_error(const char *what)
{
    fprintf(stderr, "pushgate: %s\nTry 'pushgate --help' for more information.\n", what);
    return EXIT_USAGE;
}

/* Binds every listen address once per worker; each worker gets its own SO_REUSEPORT socket.
 * Port 0 is resolved by the first bind and reused for the other workers. */
static int bind_all(struct pg_config *cfg, int fds[][PG_MAX_LISTENERS], char *err, size_t len)
{
    for (size_t a = 0; a < cfg->listen_count; a++) {
        for (unsigned w = 0; w < cfg->workers; w++) {
            unsigned port;
            /* Later workers join the first one's port, so they skip the exclusivity probe. */
            fds[w][a] = pg_listen_socket("--listen", cfg->listen[a].host, cfg->listen[a].port,
                                         w == 0, &port, err, len);
            if (fds[w][a] < 0)
                return PG_ERR_IO;
            snprintf(cfg->listen[a].port, sizeof(cfg->listen[a].port), "%u", port);
        }
    }
    return PG_OK;
}

/* Names the listen address of an inherited socket, for the announcement. */
static void describe_socket(int fd, struct pg_listen_addr *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(addr->host, sizeof(addr->host), "%s", host);
    snprintf(addr->port, sizeof(addr->port), "%s", port);
}

/* Sockets handed to us (systemd socket activation, or an upgrade from our previous process)
 * replace --listen: nothing is bound. Returns 0 with *adopted telling whether any were. */
static int adopt_inherited(struct pg_config *cfg, int fds[][PG_MAX_LISTENERS], bool *adopted,
                           char *err, size_t len)
{
    static int inherited[PG_HANDOVER_MAX_FDS];
    size_t n;
    bool per_worker;
    *adopted = false;
    if (pg_handover_inherited(inherited, PG_ARRAY_LEN(inherited), &n, &per_worker) != PG_OK) {
        snprintf(err, len, "LISTEN_FDS: the inherited descriptors are not listening sockets");
        return PG_ERR_INVALID;
    }
    if (n == 0)
        return PG_OK;
    size_t per = per_worker ? n / cfg->workers : n;
    if ((per_worker && n % cfg->workers) || per == 0 || per > PG_MAX_LISTENERS) {
        snprintf(err, len, "LISTEN_FDS: %zu sockets do not fit %u worker(s)", n, cfg->workers);
        return PG_ERR_INVALID;
    }
    for (unsigned w = 0; w < cfg->workers; w++) {
        for (size_t a = 0; a < per; a++) {
            /* Given one set, the workers share it: each a descriptor of its own. */
            int fd = per_worker ? inherited[w * per + a]
                     : w == 0   ? inherited[a]
                                : fcntl(inherited[a], F_DUPFD_CLOEXEC, 3);
            if (fd < 0) {
                snprintf(err, len, "LISTEN_FDS: %s", strerror(errno));
                return PG_ERR_IO;
            }
            fds[w][a] = fd;
        }
    }
    cfg->listen_count = per;
    for (size_t a = 0; a < per; a++)
        describe_socket(inherited[a], &cfg->listen[a]);
    *adopted = true;
    return PG_OK;
}

/* SIGUSR2: our binary again, with the same arguments and every listening socket. Returns true
 * once the new process serves: this one drains then. */
static bool upgrade(char **argv, struct pg_worker *workers, unsigned count)
{
    static int fds[PG_HANDOVER_MAX_FDS];
    size_t n = 0;
    for (unsigned i = 0; i < count; i++)
        n += pg_worker_listener_fds(&workers[i], fds + n, PG_ARRAY_LEN(fds) - n);
    pid_t child;
    int ready;
    if (pg_handover_exec(argv, fds, n, &child, &ready) != PG_OK) {
        pg_log_error("received SIGUSR2: cannot start the new process: %s", strerror(errno));
        return false;
    }
    pg_log_info("received SIGUSR2: pid %ld starts with %zu listening socket(s)", (long)child, n);
    if (!pg_handover_wait_ready(ready, child, 30000)) {
        pg_log_error("upgrade: pid %ld did not start serving; this process carries on",
                     (long)child);
        return false;
    }
    char state[64];
    snprintf(state, sizeof(state), "MAINPID=%ld\nREADY=1", (long)child);
    pg_notify(state);
    pg_log_info("upgraded: pid %ld serves; draining", (long)child);
    return true;
}

/* Tests and operators wait for these lines: they mean requests will be served. */
static void announce_listeners(const struct pg_config *cfg)
{
    for (size_t a = 0; a < cfg->listen_count; a++) {
        bool v6 = strchr(cfg->listen[a].host, ':') != NULL;
        pg_log_info("listening on %s%s%s:%s (%s)", v6 ? "[" : "", cfg->listen[a].host,
                    v6 ? "]" : "", cfg->listen[a].port,
                    *cfg->tls_cert ? "TLS, h2 and http/1.1" : "HTTP/1.x and h2c");
    }
}

static void handled_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR2);
}

/* SIGHUP: the certificate and key are read again for new connections; open ones keep theirs.
 * A pair that does not load is logged and the current one kept. */
static void reload_tls(const struct pg_config *cfg, struct pg_tls_store *tls,
                       struct pg_worker *workers, unsigned count)
{
    char err[512];
    if (!*cfg->tls_cert) {
        pg_log_info("received SIGHUP: no certificate to reload (cleartext listeners)");
        return;
    }
    SSL_CTX *ctx = pg_tls_context_new(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
    if (!ctx) {
        pg_log_warn("received SIGHUP: keeping the current certificate: %s", err);
        return;
    }
    pg_tls_store_set(tls, ctx);
    for (unsigned i = 0; i < count; i++)
        pg_worker_reload_tls(&workers[i]);
    pg_log_info("received SIGHUP: certificate and key reloaded for new connections");
}

/* Waits for SIGTERM or SIGINT, serving the other signals meanwhile; returns the one that
 * ends the run. */
static int wait_for_signal(char **argv, const struct pg_config *cfg, struct pg_tls_store *tls,
                           struct pg_worker *workers, unsigned count)
{
    sigset_t set;
    int sig;
    handled_signals(&set);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            pg_log_info("received SIGUSR1: reopening the access log");
            for (unsigned i = 0; i < count; i++)
                pg_worker_reopen_log(&workers[i]);
            continue;
        }
        if (sig == SIGHUP) {
            pg_notify("RELOADING=1");
            reload_tls(cfg, tls, workers, count);
            pg_notify("READY=1");
            continue;
        }
        if (sig == SIGUSR2) {
            if (upgrade(argv, workers, count))
                return sig;
            continue;
        }
        return sig;
    }
}

/* The operators' listener, bound before anything starts so a busy port is a usage error. */
static int bind_metrics(struct pg_config *cfg, bool exclusive, int *fd, char *err, size_t len)
{
    *fd = -1;
    if (!cfg->metrics_enabled)
        return PG_OK;
    unsigned port;
    *fd = pg_listen_socket("--metrics-listen", cfg->metrics_listen.host, cfg->metrics_listen.port,
                           exclusive, &port, err, len);
    if (*fd < 0)
        return PG_ERR_IO;
    snprintf(cfg->metrics_listen.port, sizeof(cfg->metrics_listen.port), "%u", port);
    return PG_OK;
}

static void block_signals(void)
{
    sigset_t set;
    handled_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by workers: only main takes them */
    signal(SIGPIPE, SIG_IGN);
}

/* Drains every worker (listeners close, connections finish what is in flight) and waits for
 * them until --shutdown-timeout; the rest are closed by pg_worker_stop. */
static void drain(const struct pg_config *cfg, struct pg_worker *workers, unsigned count)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += cfg->shutdown_timeout_ms / 1000;
    deadline.tv_nsec += (long)(cfg->shutdown_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (unsigned i = 0; i < count; i++)
        pg_worker_drain(&workers[i]);
    unsigned late = 0;
    for (unsigned i = 0; i < count; i++)
        late += !pg_worker_wait(&workers[i], &deadline);
    if (late)
        pg_log_warn("shutdown timeout (%ums): closing what %u worker(s) still had open",
                    cfg->shutdown_timeout_ms, late);
}

/* --check: what start-up would refuse, without binding or starting anything. */
static int check_config(const struct pg_config *cfg, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    for (size_t a = 0; a <= cfg->listen_count; a++) {
        const struct pg_listen_addr *l = a < cfg->listen_count  ? &cfg->listen[a]
                                         : cfg->metrics_enabled ? &cfg->metrics_listen
                                                                : NULL;
        if (!l)
            break;
        int rc = getaddrinfo(l->host, l->port, &hints, &res);
        if (rc != 0) {
            snprintf(err, err_len, "%s %s:%s: %s",
                     a < cfg->listen_count ? "--listen" : "--metrics-listen", l->host, l->port,
                     gai_strerror(rc));
            return PG_ERR_INVALID;
        }
        freeaddrinfo(res);
    }
    if (!cfg->demo) {
        char port[8];
        snprintf(port, sizeof(port), "%u", cfg->upstream_port);
        hints.ai_flags = AI_NUMERICSERV;
        int rc = getaddrinfo(cfg->upstream_host, port, &hints, &res);
        if (rc != 0) {
            snprintf(err, err_len, "--upstream %s: %s", cfg->upstream_origin, gai_strerror(rc));
            return PG_ERR_INVALID;
        }
        freeaddrinfo(res);
    }
    return PG_OK;
}

int main(int argc, char **argv)
{
    static struct pg_config cfg;
    static int fds[PG_MAX_WORKERS][PG_MAX_LISTENERS];
    static struct pg_worker workers[PG_MAX_WORKERS];
    static const struct pg_protocols protocols = {.h2 = &pg_h2_protocol, .http1 = &pg_h1_protocol};
    char err[512];
    int status = EXIT_FAILURE;
    struct pg_demo *demo = NULL;
    SSL_CTX *ssl_ctx = NULL;
    unsigned started = 0;
    struct pg_admin *admin = NULL;
    static atomic_bool draining;
    static struct pg_tls_store tls; /* owns the context from here on (SIGHUP replaces it) */

    block_signals();
    enum pg_config_action action;
    if (pg_config_parse(&cfg, argc, argv, &action, err, sizeof(err)) != PG_OK)
        return usage_error(err);
    if (action == PG_CONFIG_HELP) {
        pg_config_usage(stdout);
        return 0;
    }
    if (action == PG_CONFIG_VERSION) {
        printf("pushgate %s (nghttp2 %s, %s)\n", PG_VERSION, NGHTTP2_VERSION, curl_version());
        return 0;
    }
    pg_log_set_level(cfg.log_level);
    if (*cfg.tls_cert &&
        !(ssl_ctx = pg_tls_context_new(cfg.tls_cert, cfg.tls_key, err, sizeof(err))))
        return usage_error(err);
    if (cfg.check_only) {
        SSL_CTX_free(ssl_ctx);
        if (check_config(&cfg, err, sizeof(err)) != PG_OK)
            return usage_error(err);
        printf("pushgate: configuration OK\n");
        return 0;
    }
    int metrics_fd;
    bool adopted;
    if (adopt_inherited(&cfg, fds, &adopted, err, sizeof(err)) != PG_OK ||
        (!adopted && bind_all(&cfg, fds, err, sizeof(err)) != PG_OK) ||
        /* After an upgrade our previous process still holds the metrics port (SO_REUSEPORT)
         * until it drains: no exclusivity probe then. */
        bind_metrics(&cfg, !adopted, &metrics_fd, err, sizeof(err)) != PG_OK) {
        SSL_CTX_free(ssl_ctx);
        return usage_error(err);
    }
    pg_tls_store_init(&tls, ssl_ctx);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || evthread_use_pthreads() != 0) {
        pg_log_error("cannot initialise libcurl or libevent threading");
        goto out;
    }
    if (cfg.demo) {
        unsigned port;
        if (!(demo = pg_demo_start(&port))) {
            pg_log_error("cannot start the demo upstream");
            goto out;
        }
        snprintf(cfg.upstream_origin, sizeof(cfg.upstream_origin), "http://127.0.0.1:%u", port);
        pg_log_info("demo upstream on %s", cfg.upstream_origin);
    }
    pg_log_info("pushgate %s: %u worker(s), upstream %s, push %s", PG_VERSION, cfg.workers,
                cfg.upstream_origin, cfg.push_enabled ? "on" : "off");
    for (; started < cfg.workers; started++) {
        if (pg_worker_init(&workers[started], started, &cfg, ssl_ctx ? &tls : NULL, &protocols,
                           fds[started], cfg.listen_count) != PG_OK ||
            pg_worker_start(&workers[started]) != PG_OK) {
            pg_log_error("cannot start worker %u", started);
            pg_worker_free(&workers[started]);
            goto out;
        }
    }
    if (metrics_fd >= 0) {
        static const struct pg_counters *counters[PG_MAX_WORKERS];
        for (unsigned i = 0; i < started; i++)
            counters[i] = &workers[i].counters;
        admin = pg_admin_start(metrics_fd, counters, started, &draining);
        metrics_fd = -1; /* the admin owns it now, even on failure */
        if (!admin) {
            pg_log_error("cannot start the metrics listener");
            goto out;
        }
        pg_log_info("metrics on %s:%s (/metrics, /healthz, /readyz)", cfg.metrics_listen.host,
                    cfg.metrics_listen.port);
    }
    announce_listeners(&cfg);
    pg_handover_ready();
    int sig = wait_for_signal(argv, &cfg, &tls, workers, started);
    if (sig == SIGUSR2) {
        pg_admin_stop(admin); /* probes go to the new process from now on */
        admin = NULL;
    } else {
        pg_notify("STOPPING=1");
        pg_log_info("received %s: draining (at most %ums)", sig == SIGINT ? "SIGINT" : "SIGTERM",
                    cfg.shutdown_timeout_ms);
    }
    atomic_store(&draining, true);
    drain(&cfg, workers, started);
    status = EXIT_SUCCESS;
out:
    pg_admin_stop(admin); /* before the workers: it reads their counters */
    if (metrics_fd >= 0)
        close(metrics_fd);
    for (unsigned i = 0; i < started; i++) {
        pg_worker_stop(&workers[i]);
        pg_worker_free(&workers[i]);
    }
    pg_demo_stop(demo);
    pg_tls_store_clear(&tls);
    curl_global_cleanup();
    return status;
}
