/* A timeout counted from a moment that moves often (the last sign of life, the start of the
 * current wait), without moving the libevent timer each time: that is a heap update, and these
 * moments move on every request. The timer keeps the expiry it was given while pending; when it
 * fires, pg_lazy_timer_due sets it again for what is left of the limit, or says it is due.
 * Callers keep the moment themselves (0: nothing is being timed) and start the timer with a
 * non-persistent event of their own. Header-only: three loops use it on their hot paths. */
#ifndef PUSHGATE_LAZY_TIMER_H
#define PUSHGATE_LAZY_TIMER_H

#include "pushgate/common.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

/* The timed wait (re)starts now: *since_ms becomes now, and the timer is added for limit_ms
 * unless it is already pending (then it fires early and pg_lazy_timer_due sets it again). */
static inline void pg_lazy_timer_start(struct event *timer, uint64_t *since_ms, unsigned limit_ms)
{
    *since_ms = pg_now_ms();
    if (!evtimer_pending(timer, NULL)) {
        struct timeval tv = pg_timeval_ms(limit_ms);
        evtimer_add(timer, &tv);
    }
}

/* From the timer's callback: true when limit_ms have passed since since_ms; otherwise the
 * timer is set again for the rest and false is returned. */
static inline bool pg_lazy_timer_due(struct event *timer, uint64_t since_ms, unsigned limit_ms)
{
    uint64_t waited_ms = pg_now_ms() - since_ms;
    if (waited_ms >= limit_ms)
        return true;
    struct timeval tv = pg_timeval_ms((unsigned)(limit_ms - waited_ms));
    evtimer_add(timer, &tv);
    return false;
}

#endif
