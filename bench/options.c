#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsongen.h"
#include "pmd.h"

#define MAX_SIZE (64ULL << 20)   /* websock's default --max-message */
#define MAX_DEPTH 4096

static const char USAGE[] =
    "usage: wsload [options]\n"
    "  --host ADDR         server address (127.0.0.1)\n"
    "  --port N            server port (8888)\n"
    "  --path PATH         WebSocket path (/ws)\n"
    "  --connections N     connections (1)\n"
    "  --size BYTES        message payload size, K/M suffix allowed (20)\n"
    "  --text | --binary   message type (binary)\n"
    "  --payload KIND      pattern (default: printable ASCII for --text, every byte value for\n"
    "                      --binary) or json (JSON-like text with varying values, implies\n"
    "                      --text, --size of at least 64)\n"
    "  --deflate           offer permessage-deflate (" PMD_OFFER ")\n"
    "                      and send every message compressed; exit 1 if the server declines\n"
    "  --deflate-optional  the same, but run uncompressed when the server declines\n"
    "  --deflate-level N   zlib level of our messages, 0 to 9 (6, zlib's default, as browsers)\n"
    "  --depth D           messages in flight per connection (1)\n"
    "  --duration S        measured seconds (10)\n"
    "  --warmup S          unmeasured seconds before that (2)\n"
    "  --rate R            open loop: R messages/s in total, spread over the connections,\n"
    "                      latency counted from each message's scheduled time (depth 1)\n"
    "  --raw               plain TCP echo, no WebSocket\n"
    "  --idle N --hold S   hold N upgraded connections idle for S seconds (10) and report\n"
    "                      the server's resident memory per connection (needs --server-pid)\n"
    "  --idle-echo         with --idle: echo one message on every connection before the\n"
    "                      memory is read (what a used, then idle, connection keeps)\n"
    "  --server-pid PID    report the server's CPU time (and RSS with --idle); PID,PID2:\n"
    "                      add PID2's CPU time (a TLS proxy in front of the server)\n"
    "  --json              print one JSON object instead of text\n"
    "  --tls               wss://: TLS 1.3 (X25519), no certificate verification, no\n"
    "                      session reuse (every handshake a full one)\n"
    "  --tls-suites LIST   TLS 1.3 ciphersuites to offer (OpenSSL's default), for example\n"
    "                      TLS_AES_128_GCM_SHA256\n"
    "  --churn             each connection closes as soon as it is upgraded and opens again:\n"
    "                      counts full handshakes (TCP, TLS with --tls, upgrade, Close)\n"
    "  --help\n";

static int bad(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "wsload: %s '%s': %s\n", flag, value, why);
    return OPTIONS_EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned long long mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1ULL << 10;
    else if (*end == 'm' || *end == 'M')
        mult = 1ULL << 20;
    else if (*end == 'g' || *end == 'G')
        mult = 1ULL << 30;
    if (mult > 1) {
        end++;
        if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0)
            end += strlen(end);
    }
    if (*end || v > max / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static int parse_real(const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    return parse_real(s, 86400, out);
}

int options_parse(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){ .host = "127.0.0.1", .port = 8888, .path = "/ws", .connections = 1,
                             .size = 20, .depth = 1, .duration = 10, .warmup = 2, .hold = 10,
                             .deflate_level = 6 };
    enum { O_HOST = 256, O_PORT, O_PATH, O_CONNS, O_SIZE, O_TEXT, O_BINARY, O_DEPTH, O_DURATION,
           O_WARMUP, O_RAW, O_RATE, O_IDLE, O_HOLD, O_PID, O_JSON, O_HELP, O_PAYLOAD, O_DEFLATE,
           O_DEFLATE_OPT, O_DEFLATE_LEVEL, O_IDLE_ECHO, O_TLS, O_TLS_SUITES, O_CHURN };
    static const struct option longs[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "path", required_argument, NULL, O_PATH },
        { "connections", required_argument, NULL, O_CONNS },
        { "size", required_argument, NULL, O_SIZE },
        { "text", no_argument, NULL, O_TEXT },
        { "binary", no_argument, NULL, O_BINARY },
        { "depth", required_argument, NULL, O_DEPTH },
        { "duration", required_argument, NULL, O_DURATION },
        { "warmup", required_argument, NULL, O_WARMUP },
        { "raw", no_argument, NULL, O_RAW },
        { "rate", required_argument, NULL, O_RATE },
        { "idle", required_argument, NULL, O_IDLE },
        { "hold", required_argument, NULL, O_HOLD },
        { "server-pid", required_argument, NULL, O_PID },
        { "json", no_argument, NULL, O_JSON },
        { "help", no_argument, NULL, O_HELP },
        { "payload", required_argument, NULL, O_PAYLOAD },
        { "deflate", no_argument, NULL, O_DEFLATE },
        { "deflate-optional", no_argument, NULL, O_DEFLATE_OPT },
        { "deflate-level", required_argument, NULL, O_DEFLATE_LEVEL },
        { "idle-echo", no_argument, NULL, O_IDLE_ECHO },
        { "tls", no_argument, NULL, O_TLS },
        { "tls-suites", required_argument, NULL, O_TLS_SUITES },
        { "churn", no_argument, NULL, O_CHURN },
        { 0 },
    };
    bool depth_given = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        unsigned long long v = 0;
        const char *flag = argv[optind - 1];
        switch (c) {
        case O_HOST:
            opt->host = optarg;
            break;
        case O_PORT:
            if (parse_uint(optarg, 65535, &v) || v == 0)
                return bad("--port", optarg, "not a port number");
            opt->port = (int)v;
            break;
        case O_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n"))
                return bad("--path", optarg, "must start with '/' and hold no spaces");
            opt->path = optarg;
            break;
        case O_CONNS:
            if (parse_uint(optarg, 1000000, &v) || v == 0)
                return bad("--connections", optarg, "expected 1 to 1000000");
            opt->connections = (unsigned)v;
            break;
        case O_SIZE:
            if (parse_uint(optarg, MAX_SIZE, &v))
                return bad("--size", optarg, "expected 0 to 64M bytes");
            opt->size = (size_t)v;
            break;
        case O_TEXT:
        case O_BINARY:
            opt->text = c == O_TEXT;
            break;
        case O_DEPTH:
            if (parse_uint(optarg, MAX_DEPTH, &v) || v == 0)
                return bad("--depth", optarg, "expected 1 to 4096");
            opt->depth = (unsigned)v;
            depth_given = true;
            break;
        case O_DURATION:
            if (parse_seconds(optarg, &opt->duration) || opt->duration <= 0)
                return bad("--duration", optarg, "expected seconds above 0");
            break;
        case O_WARMUP:
            if (parse_seconds(optarg, &opt->warmup))
                return bad("--warmup", optarg, "expected seconds");
            break;
        case O_RAW:
            opt->raw = true;
            break;
        case O_RATE:
            if (parse_real(optarg, 1e8, &opt->rate) || opt->rate <= 0)
                return bad("--rate", optarg, "expected messages per second above 0");
            break;
        case O_IDLE:
            if (parse_uint(optarg, 1000000, &v) || v == 0)
                return bad("--idle", optarg, "expected 1 to 1000000 connections");
            opt->idle = (unsigned)v;
            break;
        case O_HOLD:
            if (parse_seconds(optarg, &opt->hold))
                return bad("--hold", optarg, "expected seconds");
            break;
        case O_PID:
        {
            char first[16];
            const char *comma = strchr(optarg, ',');
            size_t len = comma ? (size_t)(comma - optarg) : strlen(optarg);
            snprintf(first, sizeof first, "%.*s", (int)(len < 15 ? len : 15), optarg);
            if (len > 15 || parse_uint(first, 0x7FFFFFFF, &v) || v == 0)
                return bad("--server-pid", optarg, "not a process id (or two, comma-separated)");
            opt->server_pid = (pid_t)v;
            if (comma) {
                if (parse_uint(comma + 1, 0x7FFFFFFF, &v) || v == 0)
                    return bad("--server-pid", optarg, "not two process ids");
                opt->proxy_pid = (pid_t)v;
            }
        }
            break;
        case O_JSON:
            opt->json = true;
            break;
        case O_PAYLOAD:
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "pattern") != 0)
                return bad("--payload", optarg, "expected pattern or json");
            opt->json_payload = strcmp(optarg, "json") == 0;
            break;
        case O_DEFLATE:
        case O_DEFLATE_OPT:
            opt->deflate = true;
            opt->deflate_optional |= c == O_DEFLATE_OPT;
            break;
        case O_DEFLATE_LEVEL:
            if (parse_uint(optarg, 9, &v))
                return bad("--deflate-level", optarg, "expected 0 to 9");
            opt->deflate_level = (int)v;
            break;
        case O_IDLE_ECHO:
            opt->idle_echo = true;
            break;
        case O_TLS:
            opt->tls = true;
            break;
        case O_TLS_SUITES:
            opt->tls_suites = optarg;
            opt->tls = true;
            break;
        case O_CHURN:
            opt->churn = true;
            break;
        case O_HELP:
            fputs(USAGE, stdout);
            return OPTIONS_EXIT_OK;
        default:
            fprintf(stderr, "wsload: unknown or incomplete option '%s' (see --help)\n", flag);
            return OPTIONS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wsload: unexpected argument '%s'\n", argv[optind]);
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->rate > 0 && depth_given && opt->depth != 1) {
        fprintf(stderr,
                "wsload: --rate keeps one message in flight per connection; drop --depth\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->idle && !opt->server_pid) {
        fprintf(stderr, "wsload: --idle measures the server's memory: it needs --server-pid\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->idle && opt->rate > 0) {
        fprintf(stderr, "wsload: --idle and --rate are different runs; pick one\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->raw && opt->size == 0) {
        fprintf(stderr, "wsload: --raw needs --size of at least 1 byte\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->json_payload && opt->size < JSON_MIN_SIZE) {
        fprintf(stderr, "wsload: --payload json needs --size of at least %d bytes\n",
                JSON_MIN_SIZE);
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->json_payload)
        opt->text = true;
    if (opt->deflate && opt->raw) {
        fprintf(stderr, "wsload: --deflate is a WebSocket extension; --raw has none\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->idle_echo && !opt->idle) {
        fprintf(stderr, "wsload: --idle-echo goes with --idle\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->tls && opt->raw) {
        fprintf(stderr, "wsload: --tls carries WebSocket frames; --raw has none\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->churn && (opt->idle || opt->rate > 0 || opt->raw)) {
        fprintf(stderr, "wsload: --churn is a closed loop of handshakes: not with --idle, "
                        "--rate or --raw\n");
        return OPTIONS_EXIT_USAGE;
    }
    if (opt->idle)
        opt->connections = opt->idle;
    return OPTIONS_RUN;
}
