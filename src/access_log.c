#include "access_log.h"

#include <stdio.h>
#include <string.h>

/* A proxy entry as configured: an address, or a range with its prefix length (the address we
 * kept for the peer is then the range's, not the proxy's own). */
static void proxy_text(const struct ip_cidr *p, char *out, size_t len)
{
    ip_addr_format(p->net, false, out);
    unsigned full = strchr(out, ':') ? 128 : 32, bits = full == 128 ? p->bits : p->bits - 96u;
    if (bits != full)
        snprintf(out + strlen(out), len - strlen(out), "/%u", bits);
}

static void int_or_null(struct log_line *l, const char *key, bool known, long long v)
{
    if (known)
        log_line_int(l, key, v);
    else
        log_line_null(l, key);
}

void access_line(struct log_line *l, const struct logger *lg, const struct access_entry *e)
{
    char text[IP_ADDR_TEXT_LEN + 8];
    log_line_begin(l, lg, LOG_INFO, "access");
    snprintf(text, sizeof text, "%d-%u", e->worker, e->id);
    log_line_cstr(l, "id", text);
    if (e->client)
        ip_addr_format(*e->client, false, text);
    log_line_cstr(l, "client", e->client ? text : "unix");
    if (e->proxy) {
        proxy_text(e->proxy, text, sizeof text);
        log_line_cstr(l, "proxy", text);
    }
    int_or_null(l, "port", e->port, e->port);
    if (e->path)
        log_line_str(l, "path", e->path, e->path_len);
    else
        log_line_null(l, "path");
    int_or_null(l, "status", e->status, e->status);
    log_line_int(l, "duration_ms", e->duration_ms);
    log_line_int(l, "msgs_in", e->msgs_in);
    log_line_int(l, "msgs_out", e->msgs_out);
    int_or_null(l, "bytes_in", e->bytes_known, (long long)e->bytes_in);
    int_or_null(l, "bytes_out", e->bytes_known, (long long)e->bytes_out);
    int_or_null(l, "close", e->close, e->close);
    if (e->close && e->close_by)
        log_line_cstr(l, "close_by", e->close_by);
    else
        log_line_null(l, "close_by");
    if (e->reason)
        log_line_cstr(l, "reason", e->reason);
    if (e->detail)
        log_line_str(l, "detail", e->detail, e->detail_len);
}
