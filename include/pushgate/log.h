/* Leveled logging to stderr. The level is set once at start-up, before workers run. */
#ifndef PUSHGATE_LOG_H
#define PUSHGATE_LOG_H

#include <stdbool.h>

enum pg_log_level { PG_LOG_ERROR = 0, PG_LOG_WARN, PG_LOG_INFO, PG_LOG_DEBUG };

/* Sets the threshold; messages above it are dropped. Call before any thread starts. */
void pg_log_set_level(enum pg_log_level level);
/* Parses "error", "warn", "info" or "debug". Returns false for anything else. */
bool pg_log_level_parse(const char *name, enum pg_log_level *level);
bool pg_log_enabled(enum pg_log_level level);
void pg_log(enum pg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pg_log_error(...) pg_log(PG_LOG_ERROR, __VA_ARGS__)
#define pg_log_warn(...) pg_log(PG_LOG_WARN, __VA_ARGS__)
#define pg_log_info(...) pg_log(PG_LOG_INFO, __VA_ARGS__)
#define pg_log_debug(...)                                                                          \
    do {                                                                                           \
        if (pg_log_enabled(PG_LOG_DEBUG))                                                          \
            pg_log(PG_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
