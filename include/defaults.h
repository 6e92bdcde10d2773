/* Default limits and sizes, in one place so that --help, the README and the code agree. */
#ifndef WEBSOCK_DEFAULTS_H
#define WEBSOCK_DEFAULTS_H

#define WEBSOCK_VERSION "0.1.0"

#define DEFAULT_PORT 8888
#define DEFAULT_PATH "/ws"

/* Largest message accepted before failing with 1009. The Autobahn suite sends 16 MiB. */
#define DEFAULT_MAX_MESSAGE (64u * 1024 * 1024)

/* Single-frame messages up to this size are echoed as one frame; larger or client-fragmented
 * messages stream back as fragments, so memory never scales with message size. */
#define DEFAULT_COALESCE_MAX (64u * 1024)

/* Request line plus headers; beyond it the answer is 431. */
#define DEFAULT_MAX_HEADER_BYTES (8u * 1024)
#define MAX_HEADER_COUNT 64

/* Stop reading a connection while this much output is queued for it. */
#define DEFAULT_OUTPUT_HIGH_WATER (256u * 1024)

/* One read buffer shared by the whole loop. */
#define READ_BUFFER_SIZE (256u * 1024)

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_CLOSE_TIMEOUT_MS 2000     /* waiting for the peer's Close, then for its FIN */
#define DEFAULT_SHUTDOWN_TIMEOUT_MS 3000  /* graceful exit after SIGTERM */

#endif
