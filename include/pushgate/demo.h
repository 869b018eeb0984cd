/* The built-in demo upstream: a tiny HTTP/1.1 server (libevent's evhttp on its own thread)
 * whose page carries Link: rel=preload headers, so a newcomer sees pushes at once.
 * Ownership: main starts it before the workers and stops it after them. */
#ifndef PUSHGATE_DEMO_H
#define PUSHGATE_DEMO_H

struct pg_demo;

/* Listens on 127.0.0.1 on a free port, written to *port. Returns NULL on failure. */
struct pg_demo *pg_demo_start(unsigned *port);
void pg_demo_stop(struct pg_demo *demo);

#endif
