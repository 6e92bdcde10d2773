/* The phases of a run: open every connection, load them (closed loop or --rate), drain, close. */
#ifndef WSLOAD_RUN_H
#define WSLOAD_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "report.h"

/* Opens every connection, a batch at a time so the listen backlog never overflows.
 * 0, or -1 when one could not be opened (the reason has been printed). */
int run_connect(struct bench *b);

/* Runs the loop until `until` (monotonic ns), or sooner once done(b) holds. */
void run_until(struct bench *b, int64_t until, bool (*done)(const struct bench *));

/* Waits for every echo in flight; counts and reports the ones missing after timeout_ns. */
void run_drain(struct bench *b, int64_t timeout_ns, struct results *r);

/* Warm-up, then the measured window, in the closed-loop or --rate mode. */
void run_load(struct bench *b, struct results *r);

/* --idle: memory per idle upgraded connection, then one echo on each to prove it alive. */
void run_idle(struct bench *b, struct results *r);

/* Closes every open connection with the closing handshake. */
void run_close(struct bench *b);

#endif
