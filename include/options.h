/* Command line: every limit is a flag with the default from defaults.h. */
#ifndef WEBSOCK_OPTIONS_H
#define WEBSOCK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "deflate_offer.h"
#include "forwarded.h"
#include "ip_addr.h"

struct options {
    const char *bind;          /* NULL: all interfaces, IPv6 and IPv4 */
    int port;                  /* 0: no plain listener (TLS only) */
    int tls_port;              /* 0: no TLS listener */
    const char *tls_cert;      /* PEM chain and key for tls_port; SIGHUP re-reads them */
    const char *tls_key;
    const char *path;
    uint64_t max_message;
    uint32_t coalesce_max;
    uint32_t max_header_bytes;
    uint32_t output_high_water;
    int64_t handshake_timeout_ms;
    int64_t close_timeout_ms;
    int64_t shutdown_timeout_ms; /* a stop gives up once no connection finished for this long */
    int64_t send_timeout_ms;
    int64_t ping_interval_ms;  /* 0: no keep-alive pings */
    int64_t idle_timeout_ms;   /* 0: never close a silent peer */
    uint64_t max_buffered;
    uint64_t max_connections;  /* 0: from the descriptor limit */
    int log_level;
    int log_format;            /* enum log_format: text or json */
    bool access_log;           /* one line per connection at info (--access-log on) */
    bool console;              /* serve the browser console at / */
    enum deflate_mode deflate; /* permessage-deflate: off, on, takeover */
    int workers;               /* 1: one process, no fork; N > 1: a supervisor and N workers */
    const char *unix_path;     /* non-NULL: listen on this Unix socket instead of TCP */
    /* --allow-origin values, each a comma-separated list of origins, "null" or "*" */
    const char *allow_origin[MAX_ALLOW_ORIGIN_FLAGS];
    size_t allow_origin_count;
    uint32_t max_connections_per_ip; /* 0: no limit */
    uint32_t handshake_rate_per_ip;  /* per second; 0: no limit */
    uint32_t handshake_burst_per_ip;
    size_t trusted_proxy_count;
    struct ip_cidr trusted_proxies[MAX_TRUSTED_PROXIES]; /* --trust-proxy */
    enum proxy_header proxy_header;  /* which header those proxies maintain */
    size_t per_ip_exempt_count;
    struct ip_cidr per_ip_exempt[MAX_PER_IP_EXEMPT]; /* clients never limited per address */
};

enum { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_EXIT_USAGE };

/* Parses argv; prints --help/--version or a one-line error itself. */
int options_parse(int argc, char **argv, struct options *o);

/* Where a TCP listener is and the URLs to open, for the start-up line: "all addresses port
 * 8888: console http://127.0.0.1:8888/, WebSocket ws://127.0.0.1:8888/ws" (a wildcard shows
 * a loopback URL; no console URL with --no-page). */
void options_listen_urls(const struct options *o, char *out, size_t len);

#endif
