/* The operators' listener (--metrics-listen): plain HTTP on its own thread and event loop,
 * serving GET /metrics (the workers' counters, summed), /healthz and /readyz, so that a busy
 * or draining proxy still answers its probes.
 *
 * Ownership: main creates it after the workers, passes it the bound listening socket (owned
 * from then on) and the counters (borrowed: they outlive it), and frees it after stopping it. */
#ifndef PUSHGATE_ADMIN_H
#define PUSHGATE_ADMIN_H

#include "pushgate/metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct pg_admin;

/* Starts serving on fd. draining: main sets it when the drain starts (/readyz answers 503
 * from then on). Returns NULL on failure (fd closed). */
struct pg_admin *pg_admin_start(int fd, const struct pg_counters *const *counters, size_t count,
                                const atomic_bool *draining);
/* Stops the thread and frees everything. NULL is ignored. */
void pg_admin_stop(struct pg_admin *admin);

#endif
