#include "pushgate/log.h"
#include "pushgate/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Written once by main before threads start; read-only afterwards. */
static enum pg_log_level threshold = PG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void pg_log_set_level(enum pg_log_level level)
{
    threshold = level;
}

bool pg_log_level_parse(const char *name, enum pg_log_level *level)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *level = (enum pg_log_level)i;
            return true;
        }
    }
    return false;
}

bool pg_log_enabled(enum pg_log_level level)
{
    return level <= threshold;
}

void pg_log(enum pg_log_level level, const char *fmt, ...)
{
    if (!pg_log_enabled(level))
        return;
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines from different workers whole. */
    size_t len = strlen(line);
    if (len == sizeof(line) - 1)
        line[len - 1] = '\n';
    else
        line[len++] = '\n', line[len] = '\0';
    fputs(line, stderr);
}

const char *pg_strerror(int code)
{
    switch (code) {
    case PG_OK:
        return "success";
    case PG_ERR_NOMEM:
        return "out of memory";
    case PG_ERR_INVALID:
        return "invalid input";
    case PG_ERR_TOO_LONG:
        return "input too long";
    case PG_ERR_IO:
        return "I/O error";
    case PG_ERR_LIBRARY:
        return "library call failed";
    }
    return "unknown error";
}
