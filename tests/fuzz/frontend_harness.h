/* The harness the frontend fuzz targets share: one worker (built on first use, kept for the
 * whole run) whose upstream refuses connections, so requests reach the upstream code and fail
 * there; each input is fed through a socketpair into a real connection, and the worker's loop
 * is driven here, not by its thread. */
#ifndef PG_FUZZ_FRONTEND_HARNESS_H
#define PG_FUZZ_FRONTEND_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Writes prefix (may be empty) and then data to a new connection, lets the worker run, sends
 * EOF, lets it run again, and closes everything. */
void pg_fuzz_feed_connection(const char *prefix, size_t prefix_len, const uint8_t *data,
                             size_t size);

#endif
