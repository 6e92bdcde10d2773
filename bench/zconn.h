/* permessage-deflate on a connection (zconn.c): set-up, negotiation outcome, compressed
 * messages out; echo.c inflates the echoes. */
#ifndef WSLOAD_ZCONN_H
#define WSLOAD_ZCONN_H

#include "bench.h"

struct conn;
struct msg;

/* The shared codec and buffers, under --deflate. 0, or -1 when out of memory. */
int zconn_setup(struct bench *b);
void zconn_teardown(struct bench *b);

/* After the upgrade: counts the answer; a decline ends the run unless --deflate-optional. */
void zconn_opened(struct bench *b, struct conn *c);

/* Turns message m (as payload_build() left it) into a compressed, masked RSV1 frame. */
void zconn_build(struct bench *b, struct conn *c, struct msg *m);

/* The connection is gone: its inflater back to the pool, its contexts forgotten. */
void zconn_drop(struct bench *b, struct conn *c);
void zconn_free(struct conn *c);

#endif
