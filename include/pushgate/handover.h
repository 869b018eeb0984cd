/* Listening sockets that outlive a process, and what systemd is told.
 *
 * Socket activation: systemd passes listening sockets (LISTEN_FDS); pushgate serves on them
 * instead of binding. Upgrade (SIGUSR2): the running process executes its own binary again with
 * the same arguments and hands it every listening socket the same way (inherited descriptors,
 * never re-bound, so no connection waiting in an accept queue is lost); the new process reports
 * ready over a pipe, and only then does the old one drain. systemd is told READY, RELOADING,
 * STOPPING and the new MAINPID through Debian's libsystemd (sd_notify).
 *
 * Ownership: inherited descriptors become the caller's; nothing here keeps state. */
#ifndef PUSHGATE_HANDOVER_H
#define PUSHGATE_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PG_HANDOVER_MAX_FDS 1024

/* The listening sockets this process was given (socket activation or an upgrade), made
 * non-blocking and close-on-exec. per_worker: they come from an upgrade, one set per worker
 * in worker order; otherwise every worker serves on every socket. Returns 0 (*count 0: none
 * given) or PG_ERR_INVALID when LISTEN_FDS names descriptors that are not listening TCP
 * sockets. */
int pg_handover_inherited(int *fds, size_t cap, size_t *count, bool *per_worker);

/* Starts argv again with fds[0..count) as its listening sockets. On success *child is its pid
 * and *ready_fd a pipe that becomes readable (one byte) when it serves. Returns 0 or
 * PG_ERR_IO. */
int pg_handover_exec(char *const *argv, const int *fds, size_t count, pid_t *child, int *ready_fd);

/* Waits for the child's ready byte up to timeout_ms (false: it failed or was too slow). */
bool pg_handover_wait_ready(int ready_fd, pid_t child, unsigned timeout_ms);

/* This process serves now: tells whoever started it (the old process, or systemd). */
void pg_handover_ready(void);

/* Tells systemd (when it started us): "STOPPING=1", "RELOADING=1", "READY=1" and so on. */
void pg_notify(const char *state);

#endif
