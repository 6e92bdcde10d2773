#include "options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "defaults.h"
#include "handshake.h"
#include "log.h"

/* A default duration as the flags take it: "10s" rather than "10000". */
static const char *show_ms(int64_t ms, char *buf, size_t len)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return buf;
        }
    snprintf(buf, len, ms ? "%lldms" : "%lld", (long long)ms);
    return buf;
}

static void usage(FILE *f)
{
    char hs[16], cl[16], stop[16], snd[16], ping[16], idle[16];
    fprintf(f,
            "Usage: websock [options]\n"
            "A strictly conformant RFC 6455 WebSocket echo server.\n"
            "\n"
            "  --port N              TCP port to listen on (default %d); 0: none (TLS only)\n"
            "  --bind ADDR           IPv4 or IPv6 literal to bind (default: all addresses, on\n"
            "                        one dual-stack :: socket, or 0.0.0.0 without IPv6)\n"
            "  --path PATH           WebSocket endpoint path (default %s)\n"
            "  --max-message BYTES   largest message; larger ones close with 1009 (default %uM)\n"
            "  --coalesce-max BYTES  single-frame messages up to this size echo as one frame;\n"
            "                        larger ones stream back as fragments (default %uK)\n"
            "  --max-header-bytes N  request head limit; beyond it 431 (default %uK)\n"
            "  --output-high-water N stop reading a client while this much output is queued\n"
            "                        for it (default %uK)\n"
            "  --handshake-timeout T time to complete the HTTP upgrade (default %s)\n"
            "  --close-timeout T     wait for the peer's Close and FIN (default %s)\n"
            "  --shutdown-timeout T  on SIGTERM, drop the clients still open once none has\n"
            "                        finished its close for this long (default %s)\n"
            "  --send-timeout T      close a client that takes none of its pending output\n"
            "                        for this long, judged by the bytes it acknowledged\n"
            "                        (default %s)\n"
            "  --ping-interval T     ping a peer silent this long; 0 disables (default %s)\n"
            "  --idle-timeout T      close (1001) a peer silent this long, pongs count as\n"
            "                        traffic; 0 disables (default %s)\n"
            "  --max-connections N   beyond it new clients get 503; 0 = descriptor limit\n"
            "                        less %d (default 0)\n"
            "  --max-buffered BYTES  cap on bytes buffered across all connections; above it\n"
            "                        clients with output waiting are not read and partial\n"
            "                        frames stream back instead of being held (default %uM)\n"
            "  --max-connections-per-ip N  connections at once from one address (IPv6: one\n"
            "                        /64); beyond it 429; 0 disables (default %d)\n"
            "  --handshake-rate-per-ip N  new connections per second from one address; beyond\n"
            "                        it 429 with Retry-After; 0 disables (default %d)\n"
            "  --handshake-burst-per-ip N  that many may come at once (default %d)\n"
            "  --trust-proxy ADDR[/BITS]  a reverse proxy: its clients are limited by the\n"
            "                        address it names, not its own; repeatable or a comma list\n"
            "  --proxy-header NAME   the header those proxies set: x-forwarded-for (default)\n"
            "                        or forwarded (RFC 7239)\n"
            "  --per-ip-exempt ADDR[/BITS]  clients never limited per address; repeatable or\n"
            "                        a comma list; none: no exemption (default %s)\n"
            "  --deflate MODE        permessage-deflate: on (compressed messages are echoed\n"
            "                        compressed; clients reset their context per message),\n"
            "                        takeover (as on, but a client that offers\n"
            "                        client_max_window_bits keeps its context, window at most\n"
            "                        2^%d), or off (default on)\n"
            "  --log-level LEVEL     error, warn, info or debug (default info)\n"
            "  --log-format FORMAT   text (key=value fields) or json (one object per line)\n"
            "                        (default text); under journald lines carry the syslog\n"
            "                        priority and no timestamp\n"
            "  --access-log on|off   one info line per connection when it ends: id, client,\n"
            "                        path, status, duration, messages and bytes each way,\n"
            "                        close code and who sent it, reason (default on)\n"
            "  --no-page             do not serve the browser console at / (then 404)\n"
            "  --workers N           N > 1: N worker processes share the port (SO_REUSEPORT),\n"
            "                        restarted if they die (default %d: one process)\n"
            "  --unix PATH           listen on this Unix domain socket instead of TCP\n"
            "  --tls-port N          also serve wss:// on this TCP port (same --bind)\n"
            "  --tls-cert FILE       PEM certificate chain for --tls-port (leaf first)\n"
            "  --tls-key FILE        PEM private key of that certificate; SIGHUP re-reads both\n"
            "  --allow-origin LIST   browser origins that may connect besides the page's own:\n"
            "                        scheme://host[:port], comma-separated or repeated; null;\n"
            "                        * for any. Without Origin (not a browser) always allowed;\n"
            "                        others get 403 (default: same origin only)\n"
            "  -h, --help            show this help\n"
            "  -V, --version         show the version\n"
            "\n"
            "Sizes accept a K, M, G or T suffix (powers of 1024).\n"
            "Durations T accept ms, s, m or h (500ms, 10s, 2m, 1h); a bare number is ms.\n"
            "Under systemd socket activation (LISTEN_FDS, websock.socket) websock serves the\n"
            "sockets it is passed, and ignores --port, --bind and --unix.\n",
            DEFAULT_PORT, DEFAULT_PATH, DEFAULT_MAX_MESSAGE >> 20, DEFAULT_COALESCE_MAX >> 10,
            DEFAULT_MAX_HEADER_BYTES >> 10, DEFAULT_OUTPUT_HIGH_WATER >> 10,
            show_ms(DEFAULT_HANDSHAKE_TIMEOUT_MS, hs, sizeof hs),
            show_ms(DEFAULT_CLOSE_TIMEOUT_MS, cl, sizeof cl),
            show_ms(DEFAULT_SHUTDOWN_TIMEOUT_MS, stop, sizeof stop),
            show_ms(DEFAULT_SEND_TIMEOUT_MS, snd, sizeof snd),
            show_ms(DEFAULT_PING_INTERVAL_MS, ping, sizeof ping),
            show_ms(DEFAULT_IDLE_TIMEOUT_MS, idle, sizeof idle), FD_RESERVE,
            DEFAULT_MAX_BUFFERED >> 20, DEFAULT_MAX_CONNECTIONS_PER_IP,
            DEFAULT_HANDSHAKE_RATE_PER_IP, DEFAULT_HANDSHAKE_BURST_PER_IP, DEFAULT_PER_IP_EXEMPT,
            DEFLATE_TAKEOVER_BITS,
            DEFAULT_WORKERS);
}

/* One line on stderr, whatever the value holds: control bytes are shown as \xNN. */
static int bad_value(const char *flag, const char *value, const char *expected)
{
    fprintf(stderr, "websock: --%s: expected %s, got '", flag, expected);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    fputs("'\n", stderr);
    return OPTIONS_EXIT_USAGE;
}

/* An unsigned decimal integer with an optional K/M/G/T suffix, within [min, max]. Only digits
 * may come first: strtoull would also take leading whitespace and a sign. */
static int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    if (*end) {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (!u || end[1])
            return -1;
        shift = 10 * (unsigned)(u - units + 1);
    }
    if (v > (max >> shift))
        return -1;
    v <<= shift;
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

/* A plain count (port, milliseconds, processes): digits only, no size suffix. */
static int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return parse_size(s, min, max, out);
}

/* A duration: digits, then ms, s, m or h; bare digits are milliseconds (as before units
 * existed). Within [min_ms, max_ms]; no sign, spaces, fractions or other units. */
static int parse_duration(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = { { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
    const char *end = s;
    while (isdigit((unsigned char)*end))
        end++;
    uint64_t scale = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].name) == 0)
            scale = units[i].ms;
    if (end == s || !scale)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v > max_ms / scale || v * scale < min_ms)
        return -1;
    *out = v * scale;
    return 0;
}

enum { MAX_DURATION_MS = 24 * 3600 * 1000 };
#define DURATION_FORMS "a duration such as 500ms, 10s, 2m or 1h, a bare number being milliseconds"

/* Edit distance counting a swap of two neighbours as one edit ("prot" is 1 from "port");
 * a and b at most 63 bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b), d[64][64];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

/* The line for a flag getopt did not take: what the user most likely meant, if anything is
 * close (a typo of a few letters, a prefix of several options, one dash for two). */
static int unknown_option(const char *word, const struct option *longopts)
{
    const char *name = word;
    while (*name == '-')
        name++;
    size_t len = strcspn(name, "=");
    char typed[64];
    if (len >= sizeof typed)
        len = 0; /* far too long to be a typo of any of ours */
    memcpy(typed, name, len);
    typed[len] = '\0';
    const char *best = NULL, *prefixed[3] = { 0 };
    size_t best_d = (size_t)-1, n_prefixed = 0;
    for (const struct option *lo = longopts; len && lo->name; lo++) {
        if (strncmp(lo->name, typed, len) == 0 && n_prefixed < 3)
            prefixed[n_prefixed++] = lo->name;
        size_t d = edit_distance(typed, lo->name);
        if (d < best_d) {
            best_d = d;
            best = lo->name;
        }
    }
    /* One edit in four letters, at least one: "--prot", not "--frobnicate" for "--port". */
    size_t close_enough = 1 + len / 4;
    int shown = (int)strcspn(word, "="); /* the flag without a value given with = */
    if (n_prefixed > 1)
        fprintf(stderr, "websock: ambiguous option %.*s; did you mean --%s or --%s%s? "
                "(see websock --help)\n", shown, word, prefixed[0], prefixed[1],
                n_prefixed > 2 ? " or another" : "");
    else if (best && best_d <= close_enough)
        fprintf(stderr, "websock: unknown option %.*s; did you mean --%s? (see websock --help)\n",
                shown, word, best);
    else
        fprintf(stderr, "websock: unknown option %.*s (see websock --help)\n", shown, word);
    return OPTIONS_EXIT_USAGE;
}

/* The word of argv that holds an unknown short option: getopt has moved past it unless more
 * letters follow ("-port": still at it, so it can be suggested as --port). */
static const char *short_option_word(int argc, char **argv, int opt)
{
    if (!opt)
        return argv[optind - 1];
    if (optind < argc && argv[optind][0] == '-' && argv[optind][1] == opt &&
        !(argv[optind - 1][0] == '-' && argv[optind - 1][1] == opt && !argv[optind - 1][2]))
        return argv[optind];
    return argv[optind - 1];
}

/* --trust-proxy, --per-ip-exempt: one range or a comma list of them, added to list. */
static int add_ranges(struct ip_cidr *list, size_t *count, size_t max, const char *text)
{
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*count == max || !ip_cidr_parse(p, len, &list[*count]))
            return -1;
        ++*count;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int options_parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .bind = NULL,
        .port = DEFAULT_PORT,
        .path = DEFAULT_PATH,
        .max_message = DEFAULT_MAX_MESSAGE,
        .coalesce_max = DEFAULT_COALESCE_MAX,
        .max_header_bytes = DEFAULT_MAX_HEADER_BYTES,
        .output_high_water = DEFAULT_OUTPUT_HIGH_WATER,
        .handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS,
        .close_timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS,
        .shutdown_timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS,
        .send_timeout_ms = DEFAULT_SEND_TIMEOUT_MS,
        .ping_interval_ms = DEFAULT_PING_INTERVAL_MS,
        .idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS,
        .max_buffered = DEFAULT_MAX_BUFFERED,
        .max_connections = DEFAULT_MAX_CONNECTIONS,
        .log_level = LOG_INFO,
        .log_format = LOG_FORMAT_TEXT,
        .access_log = true,
        .console = true,
        .deflate = DEFLATE_ON,
        .workers = DEFAULT_WORKERS,
        .max_connections_per_ip = DEFAULT_MAX_CONNECTIONS_PER_IP,
        .handshake_rate_per_ip = DEFAULT_HANDSHAKE_RATE_PER_IP,
        .handshake_burst_per_ip = DEFAULT_HANDSHAKE_BURST_PER_IP,
        .proxy_header = PROXY_HEADER_X_FORWARDED_FOR,
    };
    enum { O_PORT = 256, O_BIND, O_PATH, O_MAX_MESSAGE, O_COALESCE, O_MAX_HEADER, O_HIGH_WATER,
           O_HS_TIMEOUT, O_CLOSE_TIMEOUT, O_SEND_TIMEOUT, O_PING_INTERVAL, O_IDLE_TIMEOUT,
           O_MAX_CONNECTIONS, O_MAX_BUFFERED, O_LOG_LEVEL, O_HELP, O_VERSION, O_NO_PAGE,
           O_WORKERS, O_UNIX, O_ALLOW_ORIGIN, O_PER_IP, O_RATE_PER_IP, O_BURST_PER_IP,
           O_TRUST_PROXY, O_PROXY_HEADER, O_PER_IP_EXEMPT, O_DEFLATE, O_LOG_FORMAT, O_ACCESS_LOG,
           O_SHUTDOWN_TIMEOUT, O_TLS_PORT, O_TLS_CERT, O_TLS_KEY };
    static const struct option longopts[] = {
        { "port", required_argument, NULL, O_PORT },
        { "bind", required_argument, NULL, O_BIND },
        { "path", required_argument, NULL, O_PATH },
        { "max-message", required_argument, NULL, O_MAX_MESSAGE },
        { "coalesce-max", required_argument, NULL, O_COALESCE },
        { "max-header-bytes", required_argument, NULL, O_MAX_HEADER },
        { "output-high-water", required_argument, NULL, O_HIGH_WATER },
        { "handshake-timeout", required_argument, NULL, O_HS_TIMEOUT },
        { "close-timeout", required_argument, NULL, O_CLOSE_TIMEOUT },
        { "shutdown-timeout", required_argument, NULL, O_SHUTDOWN_TIMEOUT },
        { "send-timeout", required_argument, NULL, O_SEND_TIMEOUT },
        { "ping-interval", required_argument, NULL, O_PING_INTERVAL },
        { "idle-timeout", required_argument, NULL, O_IDLE_TIMEOUT },
        { "max-connections", required_argument, NULL, O_MAX_CONNECTIONS },
        { "max-buffered", required_argument, NULL, O_MAX_BUFFERED },
        { "log-level", required_argument, NULL, O_LOG_LEVEL },
        { "help", no_argument, NULL, O_HELP },
        { "version", no_argument, NULL, O_VERSION },
        { "no-page", no_argument, NULL, O_NO_PAGE },
        { "workers", required_argument, NULL, O_WORKERS },
        { "unix", required_argument, NULL, O_UNIX },
        { "allow-origin", required_argument, NULL, O_ALLOW_ORIGIN },
        { "max-connections-per-ip", required_argument, NULL, O_PER_IP },
        { "handshake-rate-per-ip", required_argument, NULL, O_RATE_PER_IP },
        { "handshake-burst-per-ip", required_argument, NULL, O_BURST_PER_IP },
        { "trust-proxy", required_argument, NULL, O_TRUST_PROXY },
        { "proxy-header", required_argument, NULL, O_PROXY_HEADER },
        { "per-ip-exempt", required_argument, NULL, O_PER_IP_EXEMPT },
        { "deflate", required_argument, NULL, O_DEFLATE },
        { "log-format", required_argument, NULL, O_LOG_FORMAT },
        { "access-log", required_argument, NULL, O_ACCESS_LOG },
        { "tls-port", required_argument, NULL, O_TLS_PORT },
        { "tls-cert", required_argument, NULL, O_TLS_CERT },
        { "tls-key", required_argument, NULL, O_TLS_KEY },
        { 0 },
    };
    opterr = 0;
    optind = 1;
    int c;
    uint64_t v;
    const char *tcp_flag = NULL; /* --port or --bind, which --unix excludes */
    bool exempt_given = false;
    add_ranges(o->per_ip_exempt, &o->per_ip_exempt_count, MAX_PER_IP_EXEMPT,
               DEFAULT_PER_IP_EXEMPT);
    while ((c = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
        const char *name = "";
        for (const struct option *lo = longopts; lo->name; lo++)
            if (lo->val == c)
                name = lo->name;
        switch (c) {
        case O_PORT:
            if (parse_count(optarg, 0, 65535, &v))
                return bad_value(name, optarg, "a port number (0 to 65535; 0: TLS only, with --tls-port)");
            o->port = (int)v;
            tcp_flag = "port";
            break;
        case O_TLS_PORT:
            if (parse_count(optarg, 1, 65535, &v))
                return bad_value(name, optarg, "a port number (1 to 65535)");
            o->tls_port = (int)v;
            tcp_flag = "tls-port";
            break;
        case O_TLS_CERT:
            o->tls_cert = optarg;
            break;
        case O_TLS_KEY:
            o->tls_key = optarg;
            break;
        case O_BIND: {
            unsigned char addr[sizeof(struct in6_addr)];
            if (inet_pton(AF_INET, optarg, addr) != 1 && inet_pton(AF_INET6, optarg, addr) != 1)
                return bad_value(name, optarg, "an IPv4 or IPv6 address such as 127.0.0.1 or ::1");
            o->bind = optarg;
            tcp_flag = "bind";
            break;
        }
        case O_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, "? \t\r\n"))
                return bad_value(name, optarg, "an absolute path such as /ws");
            o->path = optarg;
            break;
        case O_MAX_MESSAGE:
            if (parse_size(optarg, 1, (uint64_t)1 << 40, &v))
                return bad_value(name, optarg, "a size in bytes (1 to 1T)");
            o->max_message = v;
            break;
        case O_COALESCE:
            if (parse_size(optarg, 0, 16u << 20, &v))
                return bad_value(name, optarg, "a size in bytes (0 to 16M)");
            o->coalesce_max = (uint32_t)v;
            break;
        case O_MAX_HEADER:
            if (parse_size(optarg, 256, 1u << 20, &v))
                return bad_value(name, optarg, "a size in bytes (256 to 1M)");
            o->max_header_bytes = (uint32_t)v;
            break;
        case O_HIGH_WATER:
            if (parse_size(optarg, 1024, 1u << 30, &v))
                return bad_value(name, optarg, "a size in bytes (1K to 1G)");
            o->output_high_water = (uint32_t)v;
            break;
        case O_HS_TIMEOUT:
        case O_CLOSE_TIMEOUT:
            if (parse_duration(optarg, 1, MAX_DURATION_MS, &v))
                return bad_value(name, optarg, DURATION_FORMS " (1ms to 24h)");
            *(c == O_HS_TIMEOUT ? &o->handshake_timeout_ms : &o->close_timeout_ms) = (int64_t)v;
            break;
        case O_SHUTDOWN_TIMEOUT:
            if (parse_duration(optarg, 1, MAX_DURATION_MS, &v))
                return bad_value(name, optarg, DURATION_FORMS " (1ms to 24h)");
            o->shutdown_timeout_ms = (int64_t)v;
            break;
        case O_SEND_TIMEOUT:
            if (parse_duration(optarg, 1, MAX_DURATION_MS, &v))
                return bad_value(name, optarg, DURATION_FORMS " (1ms to 24h)");
            o->send_timeout_ms = (int64_t)v;
            break;
        case O_PING_INTERVAL:
        case O_IDLE_TIMEOUT:
            if (parse_duration(optarg, 0, MAX_DURATION_MS, &v))
                return bad_value(name, optarg, DURATION_FORMS " (0 to 24h; 0 disables)");
            *(c == O_PING_INTERVAL ? &o->ping_interval_ms : &o->idle_timeout_ms) = (int64_t)v;
            break;
        case O_MAX_CONNECTIONS:
            if (parse_count(optarg, 0, 10000000, &v))
                return bad_value(name, optarg, "a number of connections (0 to 10000000)");
            o->max_connections = v;
            break;
        case O_MAX_BUFFERED:
            if (parse_size(optarg, 64 * 1024, (uint64_t)1 << 40, &v))
                return bad_value(name, optarg, "a size in bytes (64K to 1T)");
            o->max_buffered = v;
            break;
        case O_LOG_LEVEL:
            if ((o->log_level = log_level_parse(optarg)) < 0)
                return bad_value(name, optarg, "error, warn, info or debug");
            break;
        case O_LOG_FORMAT:
            if ((o->log_format = log_format_parse(optarg)) < 0)
                return bad_value(name, optarg, "text or json");
            break;
        case O_ACCESS_LOG:
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                return bad_value(name, optarg, "on or off");
            o->access_log = strcmp(optarg, "on") == 0;
            break;
        case O_NO_PAGE:
            o->console = false;
            break;
        case O_DEFLATE:
            if (!deflate_mode_parse(optarg, &o->deflate))
                return bad_value(name, optarg, "on, off or takeover");
            break;
        case O_WORKERS:
            if (parse_count(optarg, 1, MAX_WORKERS, &v))
                return bad_value(name, optarg, "a number of worker processes (1 to 1024)");
            o->workers = (int)v;
            break;
        case O_UNIX:
            if (!optarg[0] || strlen(optarg) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return bad_value(name, optarg, "a socket path of 1 to 107 bytes");
            o->unix_path = optarg;
            break;
        case O_ALLOW_ORIGIN:
            if (!origin_list_is_valid(optarg))
                return bad_value(name, optarg,
                                 "origins such as https://example.org:8443 (scheme://host[:port], "
                                 "comma-separated), null or *");
            if (o->allow_origin_count == MAX_ALLOW_ORIGIN_FLAGS)
                return bad_value(name, optarg, "at most 64 of these flags (list origins with commas)");
            o->allow_origin[o->allow_origin_count++] = optarg;
            break;
        case O_PER_IP:
        case O_RATE_PER_IP:
            if (parse_count(optarg, 0, 1000000, &v))
                return bad_value(name, optarg, "a number (0 to 1000000; 0 disables)");
            *(c == O_PER_IP ? &o->max_connections_per_ip : &o->handshake_rate_per_ip) =
                (uint32_t)v;
            break;
        case O_BURST_PER_IP:
            if (parse_count(optarg, 1, 1000000, &v))
                return bad_value(name, optarg, "a number of handshakes (1 to 1000000)");
            o->handshake_burst_per_ip = (uint32_t)v;
            break;
        case O_TRUST_PROXY:
            if (add_ranges(o->trusted_proxies, &o->trusted_proxy_count, MAX_TRUSTED_PROXIES,
                           optarg) < 0)
                return bad_value(name, optarg, "IPv4 or IPv6 addresses or ranges such as "
                                               "127.0.0.1, 10.0.0.0/8 or ::1 (at most 32)");
            break;
        case O_PROXY_HEADER:
            if (strcasecmp(optarg, "x-forwarded-for") == 0)
                o->proxy_header = PROXY_HEADER_X_FORWARDED_FOR;
            else if (strcasecmp(optarg, "forwarded") == 0)
                o->proxy_header = PROXY_HEADER_FORWARDED;
            else
                return bad_value(name, optarg, "x-forwarded-for or forwarded");
            break;
        case O_PER_IP_EXEMPT:
            if (!exempt_given) /* the first one replaces the default list */
                o->per_ip_exempt_count = 0;
            exempt_given = true;
            if (strcmp(optarg, "none") != 0 &&
                add_ranges(o->per_ip_exempt, &o->per_ip_exempt_count, MAX_PER_IP_EXEMPT,
                           optarg) < 0)
                return bad_value(name, optarg, "none, or IPv4 or IPv6 addresses or ranges such "
                                               "as 127.0.0.0/8 or ::1 (at most 32)");
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return OPTIONS_EXIT_OK;
        case 'V':
        case O_VERSION:
            printf("websock %s\n", WEBSOCK_VERSION);
            return OPTIONS_EXIT_OK;
        case ':':
            fprintf(stderr, "websock: %s: missing value\n", argv[optind - 1]);
            return OPTIONS_EXIT_USAGE;
        default:
            if (optopt >= 256) { /* a long option that takes no value was given one */
                fprintf(stderr, "websock: %.*s: takes no value (see websock --help)\n",
                        (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
                return OPTIONS_EXIT_USAGE;
            }
            return unknown_option(short_option_word(argc, argv, optopt), longopts);
        }
    }
    if (o->unix_path && tcp_flag) {
        fprintf(stderr, "websock: --unix: cannot be combined with --%s (it replaces TCP)\n",
                tcp_flag);
        return OPTIONS_EXIT_USAGE;
    }
    if (o->tls_port && (!o->tls_cert || !o->tls_key)) {
        fprintf(stderr, "websock: --tls-port: needs --tls-cert FILE and --tls-key FILE\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (!o->tls_port && (o->tls_cert || o->tls_key)) {
        fprintf(stderr, "websock: --%s: needs --tls-port N\n", o->tls_cert ? "tls-cert" : "tls-key");
        return OPTIONS_EXIT_USAGE;
    }
    if (!o->port && !o->tls_port) {
        fprintf(stderr, "websock: --port 0: no plain listener needs --tls-port N (TLS only)\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (o->tls_port && o->tls_port == o->port) {
        fprintf(stderr, "websock: --tls-port %d: the same port as --port\n", o->tls_port);
        return OPTIONS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "websock: unexpected argument '%s' (see --help)\n", argv[optind]);
        return OPTIONS_EXIT_USAGE;
    }
    return OPTIONS_RUN;
}

/* A host a browser on this machine can reach the listener at: the loopback address for a
 * wildcard, the bind address otherwise (bracketed if IPv6). */
static const char *url_host(const struct options *o, char *buf, size_t len)
{
    if (!o->bind || strcmp(o->bind, "0.0.0.0") == 0)
        return "127.0.0.1"; /* the default dual-stack :: socket takes IPv4 too */
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET6, o->bind, addr) != 1)
        return o->bind;
    static const unsigned char any[sizeof(struct in6_addr)];
    snprintf(buf, len, "[%s]", memcmp(addr, any, sizeof any) == 0 ? "::1" : o->bind);
    return buf;
}

void options_listen_urls(const struct options *o, char *out, size_t len)
{
    char host_buf[INET6_ADDRSTRLEN + 2];
    const char *host = url_host(o, host_buf, sizeof host_buf);
    const char *where = o->bind ? o->bind : "all addresses";
    if (o->bind && (strcmp(o->bind, "0.0.0.0") == 0 || strcmp(o->bind, "::") == 0))
        where = strcmp(o->bind, "::") == 0 ? "all addresses (::)" : "all addresses (0.0.0.0)";
    char console[INET6_ADDRSTRLEN + 40] = "";
    if (o->console)
        snprintf(console, sizeof console, "console http://%s:%d/, ", host, o->port);
    int n = 0;
    out[0] = '\0';
    if (o->port)
        n = snprintf(out, len, "%s port %d: %sWebSocket ws://%s:%d%s", where, o->port, console,
                     host, o->port, o->path);
    if (o->tls_port && n >= 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, "%s%sTLS port %d: WebSocket wss://%s:%d%s",
                 n ? "; " : where, n ? "" : " ", o->tls_port, host, o->tls_port, o->path);
}
