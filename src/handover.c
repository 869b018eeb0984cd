#include "pushgate/handover.h"
#include "pushgate/common.h"
#include "pushgate/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define READY_ENV "PUSHGATE_READY_FD"        /* the pipe an upgraded process reports ready on */
#define PER_WORKER_ENV "PUSHGATE_PER_WORKER" /* the sockets come one set per worker */

extern char **environ;

int pg_handover_inherited(int *fds, size_t cap, size_t *count, bool *per_worker)
{
    *count = 0;
    const char *pw = getenv(PER_WORKER_ENV);
    *per_worker = pw && strcmp(pw, "1") == 0;
    unsetenv(PER_WORKER_ENV);
    int n = sd_listen_fds(1); /* unsets LISTEN_PID and LISTEN_FDS: children get none */
    if (n <= 0)
        return PG_OK;
    if ((size_t)n > cap)
        return PG_ERR_INVALID;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
            return PG_ERR_INVALID;
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return PG_ERR_INVALID;
        fds[i] = fd;
    }
    *count = (size_t)n;
    return PG_OK;
}

/* Writes v in decimal at out (async-signal-safe: used between fork and exec). */
static void put_decimal(char *out, long v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *out++ = digits[--n];
    *out = '\0';
}

/* The child's environment, built before fork (malloc is not allowed after it): ours without
 * the variables we set, then LISTEN_FDS, the ready pipe, and a LISTEN_PID slot the child
 * fills in with its own pid. */
struct child_env {
    char **envp;
    char pid_var[48];
    char fds_var[48];
    char ready_var[48];
};

static bool build_env(struct child_env *e, size_t count)
{
    size_t n = 0;
    while (environ[n])
        n++;
    e->envp = calloc(n + 5, sizeof(*e->envp));
    if (!e->envp)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LISTEN_", 7) != 0 && strncmp(environ[i], READY_ENV "=", 18) != 0 &&
            strncmp(environ[i], PER_WORKER_ENV "=", 20) != 0)
            e->envp[k++] = environ[i];
    snprintf(e->fds_var, sizeof(e->fds_var), "LISTEN_FDS=%zu", count);
    snprintf(e->ready_var, sizeof(e->ready_var), READY_ENV "=%zu", SD_LISTEN_FDS_START + count);
    strcpy(e->pid_var, "LISTEN_PID=");
    e->envp[k++] = e->fds_var;
    e->envp[k++] = e->ready_var;
    e->envp[k++] = e->pid_var;
    e->envp[k++] = PER_WORKER_ENV "=1";
    e->envp[k] = NULL;
    return true;
}

/* In the child: every socket (and the ready pipe last) to 3, 4, ...; without close-on-exec. */
static void place_fds(const int *fds, size_t count, int ready, int *moved)
{
    int floor = SD_LISTEN_FDS_START + (int)count + 1;
    for (size_t i = 0; i <= count; i++) /* out of the way of the targets first */
        moved[i] = fcntl(i < count ? fds[i] : ready, F_DUPFD, floor);
    for (size_t i = 0; i <= count; i++)
        dup2(moved[i], SD_LISTEN_FDS_START + (int)i); /* dup2 clears close-on-exec */
}

int pg_handover_exec(char *const *argv, const int *fds, size_t count, pid_t *child, int *ready_fd)
{
    static int moved[PG_HANDOVER_MAX_FDS + 1];
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    int pipefd[2];
    struct child_env env;
    if (count > PG_HANDOVER_MAX_FDS || len <= 0)
        return PG_ERR_IO;
    exe[len] = '\0';
    /* A binary replaced on disk shows as "path (deleted)": the new one is at path. */
    char *deleted = strstr(exe, " (deleted)");
    if (deleted && deleted[10] == '\0')
        *deleted = '\0';
    if (!build_env(&env, count))
        return PG_ERR_IO;
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        free(env.envp);
        return PG_ERR_IO;
    }
    pid_t pid = fork();
    if (pid == 0) {
        put_decimal(env.pid_var + 11, (long)getpid());
        place_fds(fds, count, pipefd[1], moved);
        execve(exe, argv, env.envp);
        _exit(127);
    }
    free(env.envp);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return PG_ERR_IO;
    }
    *child = pid;
    *ready_fd = pipefd[0];
    return PG_OK;
}

bool pg_handover_wait_ready(int ready_fd, pid_t child, unsigned timeout_ms)
{
    struct pollfd p = {.fd = ready_fd, .events = POLLIN};
    char byte;
    bool ready = poll(&p, 1, (int)timeout_ms) == 1 && read(ready_fd, &byte, 1) == 1;
    close(ready_fd);
    if (!ready) {
        kill(child, SIGTERM); /* too slow or failed: it must not serve beside us */
        waitpid(child, NULL, 0);
    }
    return ready;
}

void pg_handover_ready(void)
{
    const char *ready = getenv(READY_ENV);
    if (ready) {
        int fd = atoi(ready);
        if (fd > 2 && write(fd, "R", 1) == 1)
            pg_log_info("serving: the previous process drains now");
        if (fd > 2)
            close(fd);
        unsetenv(READY_ENV);
        return;
    }
    sd_notify(0, "READY=1");
}

void pg_notify(const char *state)
{
    sd_notify(0, state);
}
