/* The abuse budget (pure: time is passed in): frames that cost the proxy work without doing the
 * client any good (resets, pings, settings, priority, empty data, tiny window updates, malformed
 * requests the library resets) each spend tokens; tokens come back at --abuse-refill per second
 * up to --abuse-budget. An empty budget ends the connection with ENHANCE_YOUR_CALM, which stops
 * Rapid Reset, MadeYouReset and control-frame floods whatever their pacing. */
#ifndef PUSHGATE_ABUSE_H
#define PUSHGATE_ABUSE_H

#include <stdbool.h>
#include <stdint.h>

struct pg_abuse_budget {
    double tokens;      /* left; below zero: exhausted */
    uint64_t refill_ms; /* when it was last refilled */
    unsigned capacity;  /* --abuse-budget */
    unsigned refill;    /* --abuse-refill: tokens per second */
};

/* The facts about a received HTTP/2 frame that decide its cost. */
struct pg_abuse_frame {
    uint8_t type;              /* RFC 9113 frame type */
    uint8_t flags;             /* ACK (0x1) / END_STREAM (0x1) as the type defines */
    uint32_t length;           /* payload length */
    uint32_t window_increment; /* WINDOW_UPDATE only */
    bool preface_done;         /* the client's first SETTINGS was received before this one */
};

void pg_abuse_init(struct pg_abuse_budget *b, unsigned capacity, unsigned refill, uint64_t now_ms);

/* Tokens a frame costs: 0 for useful frames, 2 for a reset (Rapid Reset is the costliest
 * glitch), 1 for the other frames that do the client no good. */
unsigned pg_abuse_frame_cost(const struct pg_abuse_frame *frame);

/* Refills for the time since the last call, then spends cost. Returns true when the budget is
 * exhausted (it stays so until refilled above zero). */
bool pg_abuse_spend(struct pg_abuse_budget *b, unsigned cost, uint64_t now_ms);

#endif
