#include "frontend_harness.h"
#include "pushgate/common.h"
#include "pushgate/config.h"
#include "pushgate/conn.h"
#include "pushgate/h1.h"
#include "pushgate/h2.h"
#include "pushgate/worker.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FUZZ_INPUT (64 * 1024) /* stays below a socketpair's buffer: one write suffices */

static struct pg_config cfg;
static struct pg_worker worker;
static int ready;

static int setup(void)
{
    static const struct pg_protocols protocols = {.h2 = &pg_h2_protocol, .http1 = &pg_h1_protocol};
    char *argv[] = {"pushgate",    "-u",    "http://127.0.0.1:1",
                    "--log-level", "error", "--upstream-connect-timeout",
                    "100ms",       NULL};
    char err[256];
    enum pg_config_action action;
    if (pg_config_parse(&cfg, 7, argv, &action, err, sizeof(err)) != PG_OK ||
        action != PG_CONFIG_RUN)
        return -1;
    return pg_worker_init(&worker, 0, &cfg, NULL, &protocols, NULL, 0);
}

static void spin(int rounds)
{
    for (int i = 0; i < rounds; i++)
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
}

void pg_fuzz_feed_connection(const char *prefix, size_t prefix_len, const uint8_t *data,
                             size_t size)
{
    if (!ready) {
        if (setup() != 0)
            abort();
        ready = 1;
    }
    if (size > MAX_FUZZ_INPUT)
        size = MAX_FUZZ_INPUT;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    pg_worker_accept(&worker, sv[0], (const struct sockaddr *)&peer);
    if ((prefix_len && write(sv[1], prefix, prefix_len) < 0) ||
        (size && write(sv[1], data, size) < 0))
        goto out;
    spin(8);
    shutdown(sv[1], SHUT_WR); /* the client is done: EOF reaches the connection */
    spin(4);
out:
    close(sv[1]);
    while (!TAILQ_EMPTY(&worker.conns))
        pg_conn_free(TAILQ_FIRST(&worker.conns));
    spin(2);
}
