/* pushgate: flags -> configuration, start the workers, wait for a signal, stop. */
#include "pushgate/common.h"
#include "pushgate/config.h"
#include "pushgate/demo.h"
#include "pushgate/h1.h"
#include "pushgate/h2.h"
#include "pushgate/log.h"
#include "pushgate/tls.h"
#include "pushgate/worker.h"

#include <curl/curl.h>
#include <nghttp2/nghttp2.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
            fds[w][a] =
                pg_listen_socket(cfg->listen[a].host, cfg->listen[a].port, w == 0, &port, err, len);
            if (fds[w][a] < 0)
                return PG_ERR_IO;
            snprintf(cfg->listen[a].port, sizeof(cfg->listen[a].port), "%u", port);
        }
    }
    return PG_OK;
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

static void wait_for_signal(void)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    pg_log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by workers: only main takes them */
    signal(SIGPIPE, SIG_IGN);
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
    if (bind_all(&cfg, fds, err, sizeof(err)) != PG_OK) {
        SSL_CTX_free(ssl_ctx);
        return usage_error(err);
    }
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
        if (pg_worker_init(&workers[started], started, &cfg, ssl_ctx, &protocols, fds[started],
                           cfg.listen_count) != PG_OK ||
            pg_worker_start(&workers[started]) != PG_OK) {
            pg_log_error("cannot start worker %u", started);
            pg_worker_free(&workers[started]);
            goto out;
        }
    }
    announce_listeners(&cfg);
    wait_for_signal();
    status = EXIT_SUCCESS;
out:
    for (unsigned i = 0; i < started; i++) {
        pg_worker_stop(&workers[i]);
        pg_worker_free(&workers[i]);
    }
    pg_demo_stop(demo);
    SSL_CTX_free(ssl_ctx);
    curl_global_cleanup();
    return status;
}
