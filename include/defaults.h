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

/* permessage-deflate. Whole messages up to DEFLATE_SMALL bytes are compressed at zlib's default
 * level with memLevel 4 (a 4 KiB hash, which every message's reset clears); larger ones at
 * level 3 with memLevel 8: measured on 16 KiB JSON, level 3 is 1.4x as fast as level 6 for 14%
 * more bytes. One inflate step writes DEFLATE_CHUNK bytes; one session_feed call inflates at
 * most DEFLATE_TURN bytes (the rest waits for the other connections' turn). Echoes under
 * DEFLATE_MIN_SIZE bytes go out plain: a deflate block costs more than it could save. The send
 * history (our last compressed bytes, which the client still holds) primes the next message:
 * 4 KiB brings 200 B JSON messages within 10% of a zlib stream that keeps a 32 KiB window
 * (1 KiB: 126%). */
#define DEFLATE_LEVEL 6
#define DEFLATE_LARGE_LEVEL 3
#define DEFLATE_MEM_LEVEL 8
#define DEFLATE_SMALL (4u * 1024)
#define DEFLATE_SMALL_MEM_LEVEL 4
#define DEFLATE_CHUNK (64u * 1024)
#define DEFLATE_TURN (256u * 1024)
#define DEFLATE_MIN_SIZE 32
#define DEFLATE_PROBE 1024          /* a streamed echo is judged on a first step this long */
#define DEFLATE_SEND_HISTORY 4096
#define ZPOOL_KEEP 8

/* Request line plus headers; beyond it the answer is 431. */
#define DEFAULT_MAX_HEADER_BYTES (8u * 1024)
#define MAX_HEADER_COUNT 64

/* Stop reading a connection while this much output is queued for it. */
#define DEFAULT_OUTPUT_HIGH_WATER (256u * 1024)

/* One read buffer shared by the whole loop. */
#define READ_BUFFER_SIZE (256u * 1024)

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_CLOSE_TIMEOUT_MS 2000     /* waiting for the peer's Close, then for its FIN */
/* After SIGTERM: the remaining clients are dropped once none has finished its close for this
 * long (so a stop of a million connections takes as long as their closes, no more). */
#define DEFAULT_SHUTDOWN_TIMEOUT_MS 3000
#define DEFAULT_SEND_TIMEOUT_MS 30000     /* a client that takes none of its pending output */
/* Progress checks per send timeout while output is pending: a stalled client is closed within
 * 1/SEND_CHECKS of a timeout after the full timeout passed. */
#define SEND_CHECKS 4
/* Keep-alive: after this much silence from the peer, send a Ping (pongs count as traffic), so
 * proxies with read timeouts (nginx: 60 s) keep idle clients. */
#define DEFAULT_PING_INTERVAL_MS 30000
/* A peer silent this long (no data, no pong) is closed with 1001: dead peers are detected. */
#define DEFAULT_IDLE_TIMEOUT_MS 120000

/* Bytes held in connection buffers across the whole process; above it, connections that hold
 * buffers stop being read until the total drops. */
#define DEFAULT_MAX_BUFFERED (256u * 1024 * 1024)
/* 0 means: as many as the descriptor limit allows, less a reserve. */
#define DEFAULT_MAX_CONNECTIONS 0
#define FD_RESERVE 32
/* A warning that can repeat per connection (out of descriptors) is logged once, then at most
 * once per this interval with the count. */
#define LOG_RATE_INTERVAL_MS 5000

/* How many times --allow-origin may be given (each may list several origins). */
#define MAX_ALLOW_ORIGIN_FLAGS 64
/* Per client address (IPv4, or an IPv6 /64); 0 disables each. One browser page opens one or a
 * few WebSockets, and a user with dozens of tabs, or a small office behind one NAT address,
 * stays well under 64 at once; a single host trying to hold the default --max-connections
 * (tens of thousands) open needs a thousand addresses instead of one. Peers pick 10 to 128. */
#define DEFAULT_MAX_CONNECTIONS_PER_IP 64
/* Handshake attempts (new connections, or requests through a trusted proxy) per second and
 * address, with a burst: a page reload storm or a client reconnecting its few sockets fits in
 * the burst of 40, a reconnect loop or a flood (thousands per second) is cut to 20 per second. */
#define DEFAULT_HANDSHAKE_RATE_PER_IP 20
#define DEFAULT_HANDSHAKE_BURST_PER_IP 40
#define MAX_TRUSTED_PROXIES 32
/* Clients on the same host are not limited by default: conformance suites (Autobahn's wstest
 * runs some 200 handshakes a second), load generators and health checks run there, and a
 * local process has easier ways to exhaust the server than connecting. --per-ip-exempt none
 * limits them too. */
#define DEFAULT_PER_IP_EXEMPT "127.0.0.0/8,::1"
#define MAX_PER_IP_EXEMPT 32
/* A refused client is logged at most once per interval, with the count refused since. */
#define IP_LIMIT_LOG_INTERVAL_MS 5000
/* Entries of the per-address table: --max-connections plus room for addresses that only have
 * rate history, at most this many (40 bytes each, touched only when used). */
#define IP_LIMIT_TABLE_SPARE 4096
#define IP_LIMIT_TABLE_MAX (1u << 20)

/* --workers: the supervisor restarts a worker that dies; one that dies within
 * WORKER_QUICK_EXIT_MS of its start again and again is restarted after a doubling delay. */
#define DEFAULT_WORKERS 1
#define MAX_WORKERS 1024
#define WORKER_QUICK_EXIT_MS 1000
#define WORKER_BACKOFF_MIN_MS 100
#define WORKER_BACKOFF_MAX_MS 10000
/* Each worker looks at the other workers' sockets this often; connections waiting on one at
 * two checks in a row are taken over, so a dead or stopped worker delays a new client by at
 * most about twice this. */
#define PEER_CHECK_MS 100
/* Listening sockets a service manager may pass (one per ListenStream= line of the socket unit). */
#define MAX_LISTEN_FDS 16
/* After SIGTERM, a worker whose open connections did not drop for --shutdown-timeout and this
 * long (it is past its own bound, or hung) is killed. */
#define WORKER_STOP_GRACE_MS 2000

/* TLS handshake steps (an SSL_read before the handshake is done: a ClientHello costs a
 * signature and a key exchange, ~0.2 ms) per loop turn; past it a connection waits for the
 * next turn, so a handshake flood cannot freeze the echoes of open connections. */
#define TLS_HANDSHAKES_PER_TURN 16
/* Output spans of one event are gathered into records of up to this size (TLS's maximum). */
#define TLS_RECORD_SIZE 16384

#endif
