/* The HTTP/2 frontend (nghttp2): a protocol table over the proxy core.
 * The session and its streams live in src/h2_*.c (private header src/h2_internal.h). */
#ifndef PUSHGATE_H2_H
#define PUSHGATE_H2_H

#include "pushgate/protocol.h"

extern const struct pg_protocol pg_h2_protocol;

#endif
