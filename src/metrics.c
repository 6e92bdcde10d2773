#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>

/* Every error status websock answers with (see handshake.c), in the order of m->rejected. */
static const int statuses[METRICS_STATUS_COUNT] = { 400, 403, 404, 405, 426, 429, 431, 500, 503 };

void metrics_count_close(struct metrics *m, uint16_t code)
{
    if (code == 0)
        code = 1006; /* RFC 6455 §7.1.5: the connection closed without a Close frame */
    if (code >= 1000 && code < 1016) {
        m->closes[code - 1000]++;
        return;
    }
    for (size_t i = 0; i < METRICS_APP_CODES; i++) {
        if (m->app_code[i] == 0)
            m->app_code[i] = code;
        if (m->app_code[i] == code) {
            m->app_closes[i]++;
            return;
        }
    }
    m->other_closes++;
}

void metrics_count_rejection(struct metrics *m, int status)
{
    for (size_t i = 0; i < METRICS_STATUS_COUNT; i++) {
        if (statuses[i] == status) {
            m->rejected[i]++;
            return;
        }
    }
    metrics_count_rejection(m, 500); /* a status missing above is an internal error */
}

/* snprintf into a bounded buffer that keeps counting past its end. */
struct text {
    char *p;
    size_t cap;
    size_t len;
};

__attribute__((format(printf, 2, 3)))
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->cap ? t->cap - t->len : 0;
    int n = vsnprintf(room ? t->p + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void single(struct text *t, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    family(t, name, type, help);
    put(t, "%s %llu\n", name, (unsigned long long)value);
}

size_t metrics_format(const struct metrics *m, char *out, size_t cap)
{
    struct text t = { out, cap, 0 };
    if (cap)
        out[0] = '\0';
    single(&t, "websock_connections_open", "gauge",
           "WebSocket connections open now (upgraded, TCP not yet closed).", m->open);
    single(&t, "websock_connections_accepted_total", "counter",
           "TCP connections accepted, refused ones included.", m->accepted);
    single(&t, "websock_upgrades_total", "counter",
           "Opening handshakes answered with 101 Switching Protocols.", m->upgrades);
    single(&t, "websock_messages_received_total", "counter",
           "Data messages (text or binary) received whole and valid.", m->echo.messages_in);
    single(&t, "websock_messages_sent_total", "counter",
           "Data messages echoed (their final frame queued for sending).", m->echo.messages_out);
    single(&t, "websock_payload_received_bytes_total", "counter",
           "Payload bytes of data frames received on open connections (no headers, no control "
           "frames).", m->echo.bytes_in);
    single(&t, "websock_payload_sent_bytes_total", "counter",
           "Payload bytes of data frames queued for sending (no headers, no control frames).",
           m->echo.bytes_out);

    family(&t, "websock_closes_total", "counter",
           "WebSocket connections ended, by the code of the Close websock sent (the peer's code "
           "echoed, or its own 1001, 1002, 1007, 1009); 1006: it sent none.");
    for (int i = 0; i < 16; i++)
        if (m->closes[i])
            put(&t, "websock_closes_total{code=\"%d\"} %llu\n", 1000 + i,
                (unsigned long long)m->closes[i]);
    for (size_t i = 0; i < METRICS_APP_CODES && m->app_code[i]; i++)
        put(&t, "websock_closes_total{code=\"%u\"} %llu\n", m->app_code[i],
            (unsigned long long)m->app_closes[i]);
    if (m->other_closes)
        put(&t, "websock_closes_total{code=\"other\"} %llu\n",
            (unsigned long long)m->other_closes);

    family(&t, "websock_handshake_rejections_total", "counter",
           "HTTP requests answered with an error status instead of an upgrade or a page.");
    for (size_t i = 0; i < METRICS_STATUS_COUNT; i++)
        put(&t, "websock_handshake_rejections_total{status=\"%d\"} %llu\n", statuses[i],
            (unsigned long long)m->rejected[i]);

    family(&t, "websock_ip_limited_total", "counter",
           "Connections refused because their client address was over --max-connections-per-ip "
           "(reason=\"connections\") or --handshake-rate-per-ip (reason=\"rate\"), answered "
           "with 429 or, in a flood, closed at once.");
    put(&t, "websock_ip_limited_total{reason=\"connections\"} %llu\n",
        (unsigned long long)m->ip_limited[METRICS_IP_CONNECTIONS]);
    put(&t, "websock_ip_limited_total{reason=\"rate\"} %llu\n",
        (unsigned long long)m->ip_limited[METRICS_IP_RATE]);

    single(&t, "websock_deflate_negotiated_total", "counter",
           "Upgrades that agreed permessage-deflate.", m->deflate_negotiated);
    family(&t, "websock_deflate_bytes_total", "counter",
           "Payload bytes of compressed messages: on the wire (form=\"compressed\") and "
           "uncompressed (form=\"plain\"), received (direction=\"in\", inflated) or sent "
           "(direction=\"out\", before deflating).");
    const struct { const char *dir, *form; uint64_t v; } z[] = {
        { "in", "compressed", m->echo.z_wire_in },   { "in", "plain", m->echo.z_plain_in },
        { "out", "compressed", m->echo.z_wire_out }, { "out", "plain", m->echo.z_plain_out },
    };
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
        put(&t, "websock_deflate_bytes_total{direction=\"%s\",form=\"%s\"} %llu\n", z[i].dir,
            z[i].form, (unsigned long long)z[i].v);
    return t.len;
}
