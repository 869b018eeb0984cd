#include "pushgate/abuse.h"

enum {
    FRAME_DATA = 0x0,
    FRAME_PRIORITY = 0x2,
    FRAME_RST_STREAM = 0x3,
    FRAME_SETTINGS = 0x4,
    FRAME_PING = 0x6,
    FRAME_WINDOW_UPDATE = 0x8
};
enum { FLAG_ACK = 0x1, FLAG_END_STREAM = 0x1 };

void pg_abuse_init(struct pg_abuse_budget *b, unsigned capacity, unsigned refill, uint64_t now_ms)
{
    b->tokens = capacity;
    b->refill_ms = now_ms;
    b->capacity = capacity;
    b->refill = refill;
}

unsigned pg_abuse_frame_cost(const struct pg_abuse_frame *frame)
{
    switch (frame->type) {
    case FRAME_RST_STREAM:
        return 2;
    case FRAME_PRIORITY:
        return 1;
    case FRAME_PING:
        return !(frame->flags & FLAG_ACK);
    case FRAME_SETTINGS:
        return !(frame->flags & FLAG_ACK) && frame->preface_done;
    case FRAME_WINDOW_UPDATE:
        return frame->window_increment < 1024;
    case FRAME_DATA:
        return frame->length == 0 && !(frame->flags & FLAG_END_STREAM);
    default:
        return 0;
    }
}

bool pg_abuse_spend(struct pg_abuse_budget *b, unsigned cost, uint64_t now_ms)
{
    if (now_ms > b->refill_ms)
        b->tokens += (double)(now_ms - b->refill_ms) * b->refill / 1000.0;
    if (b->tokens > b->capacity)
        b->tokens = b->capacity;
    b->refill_ms = now_ms;
    b->tokens -= cost;
    return b->tokens < 0;
}
