#include "pushgate/demo.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pg_demo {
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev; /* activated by pg_demo_stop: survives until the loop runs */
    pthread_t thread;
};

struct demo_file {
    const char *path;
    const char *type;
    const char *body;
    const char *links; /* Link field value, or NULL */
};

static const struct demo_file files[] = {
    {"/", "text/html; charset=utf-8",
     "<!doctype html>\n<html><head><title>pushgate demo</title>\n"
     "<link rel=\"stylesheet\" href=\"/demo/style.css\">\n"
     "<script src=\"/demo/app.js\" defer></script></head>\n"
     "<body><h1>pushgate demo</h1><img src=\"/demo/logo.svg\" alt=\"logo\">\n"
     "<p>This page's response carries Link: rel=preload headers; pushgate pushed its\n"
     "stylesheet, script and logo before you asked for them.</p></body></html>\n",
     "</demo/style.css>; rel=preload; as=style, </demo/app.js>; rel=preload; as=script, "
     "</demo/logo.svg>; rel=preload; as=image"},
    {"/demo/style.css", "text/css", "body { font-family: sans-serif; margin: 3em; }\n", NULL},
    {"/demo/app.js", "text/javascript",
     "document.body.insertAdjacentHTML('beforeend', '<p>app.js ran.</p>');\n", NULL},
    {"/demo/logo.svg", "image/svg+xml",
     "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\">"
     "<circle cx=\"32\" cy=\"32\" r=\"30\" fill=\"#2a7\"/></svg>\n",
     NULL},
};

static void serve(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    size_t path_len = strcspn(uri, "?");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strlen(files[i].path) != path_len || memcmp(files[i].path, uri, path_len) != 0)
            continue;
        struct evbuffer *body = evbuffer_new();
        evbuffer_add(body, files[i].body, strlen(files[i].body));
        evhttp_add_header(out, "Content-Type", files[i].type);
        evhttp_add_header(out, "Cache-Control", "max-age=60");
        if (files[i].links)
            evhttp_add_header(out, "Link", files[i].links);
        evhttp_send_reply(req, 200, "OK", body);
        evbuffer_free(body);
        return;
    }
    evhttp_send_error(req, 404, "Not Found");
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *run(void *arg)
{
    struct pg_demo *demo = arg;
    event_base_dispatch(demo->base);
    return NULL;
}

struct pg_demo *pg_demo_start(unsigned *port)
{
    struct pg_demo *demo = calloc(1, sizeof(*demo));
    if (!demo || !(demo->base = event_base_new()) || !(demo->http = evhttp_new(demo->base)))
        goto fail;
    if (!(demo->stop_ev = event_new(demo->base, -1, 0, on_stop, demo->base)))
        goto fail;
    evhttp_set_gencb(demo->http, serve, NULL);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(demo->http, "127.0.0.1", 0);
    if (!sock)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (pthread_create(&demo->thread, NULL, run, demo) != 0)
        goto fail;
    return demo;
fail:
    if (demo && demo->stop_ev)
        event_free(demo->stop_ev);
    if (demo && demo->http)
        evhttp_free(demo->http);
    if (demo && demo->base)
        event_base_free(demo->base);
    free(demo);
    return NULL;
}

void pg_demo_stop(struct pg_demo *demo)
{
    if (!demo)
        return;
    event_active(demo->stop_ev, EV_READ, 0);
    pthread_join(demo->thread, NULL);
    event_free(demo->stop_ev);
    evhttp_free(demo->http);
    event_base_free(demo->base);
    free(demo);
}
