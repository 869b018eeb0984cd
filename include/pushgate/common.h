/* Shared conventions: the error enum every module returns, and borrowed byte views. */
#ifndef PUSHGATE_COMMON_H
#define PUSHGATE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define PG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Every int-returning function returns 0 on success or one of these negative codes. */
enum pg_err {
    PG_OK = 0,
    PG_ERR_NOMEM = -1,    /* an allocation failed */
    PG_ERR_INVALID = -2,  /* malformed input: a flag, a header, a frame */
    PG_ERR_TOO_LONG = -3, /* input exceeds a configured or built-in bound */
    PG_ERR_IO = -4,       /* a socket, file or TLS operation failed */
    PG_ERR_LIBRARY = -5,  /* nghttp2, libcurl, libevent or OpenSSL refused a call */
};

/* ASCII lower case, no locale: host names and field names are ASCII by their grammars. */
static inline char pg_ascii_lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* Milliseconds (every duration flag) as the struct timeval libevent's timers take. */
static inline struct timeval pg_timeval_ms(unsigned ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* Monotonic microseconds, for durations. */
static inline uint64_t pg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t pg_now_ms(void)
{
    return pg_now_us() / 1000u;
}

/* FNV-1a, the one hash of the project (learned pages, push memory, cache digest): start from
 * PG_HASH_SEED and fold in bytes. */
#define PG_HASH_SEED 0xcbf29ce484222325ULL

static inline uint64_t pg_hash_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL;
}

static inline uint64_t pg_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = pg_hash_byte(h, p[i]);
    return h;
}

/* Returns a static English description of code (never NULL). */
const char *pg_strerror(int code);

#endif
