#include "pushgate/admin.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pg_admin {
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    const struct pg_counters *const *counters; /* borrowed, one per worker */
    size_t count;
    const atomic_bool *draining;
    pthread_t thread;
    bool running;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(body, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, body);
    evbuffer_free(body);
}

static void serve_metrics(struct pg_admin *admin, struct evhttp_request *req)
{
    struct evbuffer *body = evbuffer_new();
    bool draining = atomic_load(admin->draining);
    if (!body || pg_metrics_render(admin->counters, admin->count, draining, body) != PG_OK) {
        if (body)
            evbuffer_free(body);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct pg_admin *admin = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        reply_text(req, 405, "Method Not Allowed", "GET only\n");
        return;
    }
    if (path && strcmp(path, "/metrics") == 0)
        serve_metrics(admin, req);
    else if (path && strcmp(path, "/healthz") == 0)
        reply_text(req, 200, "OK", "ok\n");
    else if (path && strcmp(path, "/readyz") == 0)
        atomic_load(admin->draining) ? reply_text(req, 503, "Service Unavailable", "draining\n")
                                     : reply_text(req, 200, "OK", "ready\n");
    else
        reply_text(req, 404, "Not Found", "/metrics, /healthz or /readyz\n");
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *run(void *arg)
{
    struct pg_admin *admin = arg;
    event_base_dispatch(admin->base);
    return NULL;
}

static void admin_free(struct pg_admin *admin)
{
    if (admin->http)
        evhttp_free(admin->http);
    if (admin->stop_ev)
        event_free(admin->stop_ev);
    if (admin->base)
        event_base_free(admin->base);
    free(admin);
}

struct pg_admin *pg_admin_start(int fd, const struct pg_counters *const *counters, size_t count,
                                const atomic_bool *draining)
{
    struct pg_admin *admin = calloc(1, sizeof(*admin));
    if (!admin) {
        close(fd);
        return NULL;
    }
    admin->counters = counters;
    admin->count = count;
    admin->draining = draining;
    if (!(admin->base = event_base_new()) || !(admin->http = evhttp_new(admin->base)) ||
        !(admin->stop_ev = event_new(admin->base, -1, 0, on_stop, admin->base))) {
        close(fd);
        goto fail;
    }
    evhttp_set_gencb(admin->http, serve, admin);
    evhttp_set_timeout(admin->http, 10); /* a probe that stalls is dropped */
    if (!evhttp_accept_socket_with_handle(admin->http, fd)) {
        close(fd);
        goto fail;
    }
    if (pthread_create(&admin->thread, NULL, run, admin) != 0)
        goto fail;
    admin->running = true;
    return admin;
fail:
    admin_free(admin);
    return NULL;
}

void pg_admin_stop(struct pg_admin *admin)
{
    if (!admin)
        return;
    if (admin->running) {
        event_active(admin->stop_ev, EV_READ, 0);
        pthread_join(admin->thread, NULL);
    }
    admin_free(admin);
}
