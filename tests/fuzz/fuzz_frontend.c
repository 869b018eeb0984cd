/* libFuzzer target: the HTTP/2 frontend byte stream. Each input is what a client sends after
 * the connection preface, fed through a socketpair into a real connection (pg_conn + pg_h2 +
 * upstream exchanges) of a worker whose upstream refuses connections, so requests do reach
 * the upstream code and fail there. The worker's loop is driven here, not by its thread. */
#include "pushgate/config.h"
#include "pushgate/conn.h"
#include "pushgate/h2.h"
#include "pushgate/worker.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FUZZ_INPUT (64 * 1024) /* stays below a socketpair's buffer: one write suffices */

/* The harness's one worker, built on first use and kept for the whole run (libFuzzer calls
 * the target many times in one process). */
static struct pg_config cfg;
static struct pg_worker worker;
static int ready;

static int setup(void)
{
    char *argv[] = {"pushgate",    "-u",    "http://127.0.0.1:1",
                    "--log-level", "error", "--upstream-connect-timeout",
                    "100ms",       NULL};
    char err[256];
    if (pg_config_parse(&cfg, 7, argv, err, sizeof(err)) != 0)
        return -1;
    static const struct pg_protocols protocols = {.h2 = &pg_h2_protocol};
    return pg_worker_init(&worker, 0, &cfg, NULL, &protocols, NULL, 0);
}

static void spin(int rounds)
{
    for (int i = 0; i < rounds; i++)
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (!ready) {
        if (setup() != 0)
            abort();
        ready = 1;
    }
    if (size > MAX_FUZZ_INPUT)
        size = MAX_FUZZ_INPUT;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    pg_worker_accept(&worker, sv[0], (const struct sockaddr *)&peer);
    if (write(sv[1], preface, sizeof(preface) - 1) < 0 || (size && write(sv[1], data, size) < 0))
        goto out;
    spin(8);
    shutdown(sv[1], SHUT_WR); /* the client is done: EOF reaches the connection */
    spin(4);
out:
    close(sv[1]);
    while (!TAILQ_EMPTY(&worker.conns))
        pg_conn_free(TAILQ_FIRST(&worker.conns));
    spin(2);
    return 0;
}
