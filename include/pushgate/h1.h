/* The HTTP/1.x frontend (http_parser): a protocol table over the proxy core.
 * The connection and its requests live in src/h1_*.c (private header src/h1_internal.h). */
#ifndef PUSHGATE_H1_H
#define PUSHGATE_H1_H

#include "pushgate/protocol.h"

extern const struct pg_protocol pg_h1_protocol;

#endif
