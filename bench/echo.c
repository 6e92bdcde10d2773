/* A connection's input: server frames parsed incrementally, and every echoed byte compared
 * with what was sent. A wrong echo ends the run; a protocol violation ends the connection. */
#include <stdio.h>
#include <string.h>

#include "conn.h"

/* Reads the id back from an echo that starts at p (digits least significant first), so a
 * stale or reordered echo can be named. False when p holds no whole id. */
static bool decode_id(const struct payload *pl, const uint8_t *p, size_t n, uint64_t *seq,
                      uint32_t *conn, bool *has_conn)
{
    size_t digits = pl->id_len < 16 ? pl->id_len : 16;
    if (digits == 0 || n < pl->id_len)
        return false;
    uint64_t v[2] = { 0, 0 };
    for (size_t i = pl->id_len; i-- > 0;) {
        const char *hex = "0123456789abcdef";
        const char *d = p[i] ? strchr(hex, p[i]) : NULL;
        if (!d)
            return false;
        v[i >= 16] = v[i >= 16] << 4 | (uint64_t)(d - hex);
    }
    *seq = v[0];
    *conn = (uint32_t)v[1];
    *has_conn = pl->id_len >= 24;
    return true;
}

/* Prints what was expected and what came back around the first wrong byte, then exits. */
static void mismatch(struct bench *b, struct conn *c, const struct msg *m, size_t off,
                     const uint8_t *got, size_t got_len, const char *what, const char *hint)
{
    char exp_hex[16 * 3 + 1] = "", got_hex[16 * 3 + 1] = "";
    for (size_t i = 0; i < 16 && off + i < b->pl.size; i++)
        snprintf(exp_hex + 3 * i, 4, " %02x", payload_expected(&b->pl, m, off + i));
    for (size_t i = 0; i < 16 && i < got_len; i++)
        snprintf(got_hex + 3 * i, 4, " %02x", got[i]);
    bench_abort(b,
                "echo mismatch on connection %u, message #%llu (%s, %zu bytes): %s%s\n"
                "  expected from offset %zu:%s\n"
                "  received from offset %zu:%s",
                c->id, (unsigned long long)m->seq,
                b->pl.raw ? "raw" : b->pl.opcode == OP_TEXT ? "text" : "binary", b->pl.size,
                what, hint, off, exp_hex, off, got_hex);
}

static void check_echo(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    struct msg *m = conn_slot(c, c->head);
    long bad = payload_check(&b->pl, m, c->msg_off, p, n);
    if (bad >= 0) {
        char what[64];
        size_t off = c->msg_off + (size_t)bad;
        snprintf(what, sizeof what, "byte %zu is 0x%02x, expected 0x%02x", off, p[bad],
                 payload_expected(&b->pl, m, off));
        char hint[96] = "";
        uint64_t seq;
        uint32_t conn;
        bool has_conn;
        size_t digits = b->pl.id_len < 16 ? b->pl.id_len : 16;
        uint64_t mask = digits == 16 ? UINT64_MAX : (1ULL << (4 * digits)) - 1;
        /* Only worth saying when the echo names another message or connection. */
        size_t io = b->pl.id_off;
        if (off >= io && off < io + b->pl.id_len && c->msg_off == 0 && n >= io &&
            decode_id(&b->pl, p + io, n - io, &seq, &conn, &has_conn) &&
            (seq != (m->seq & mask) || (has_conn && conn != c->id))) {
            if (has_conn)
                snprintf(hint, sizeof hint, "; it carries the id of message #%llu of connection %u",
                         (unsigned long long)seq, conn);
            else
                snprintf(hint, sizeof hint, "; it carries the id of message #%llu",
                         (unsigned long long)seq);
        }
        mismatch(b, c, m, off, p + bad, n - (size_t)bad, what, hint);
    }
    c->msg_off += n;
}

static void complete(struct bench *b, struct conn *c, int64_t now)
{
    struct msg *m = conn_slot(c, c->head);
    if (c->head == c->sent)
        bench_abort(b, "connection %u: message #%llu was echoed in full before it was sent in full",
                    c->id, (unsigned long long)m->seq);
    if (b->recording) {
        int64_t d = now - m->t_sched;
        hist_record(&b->hist, d > 0 ? (uint64_t)(d + 500) / 1000 : 0);
        b->msgs++;
        b->wire_out += m->wire_out;
        b->wire_in += c->rx_wire;
        b->echoes_z += c->rx_compressed;
        if (m->ref_len) {
            b->ref_bytes += m->ref_len;
            b->ref_msgs++;
        }
    }
    c->rx_wire = 0;
    c->rx_compressed = false;
    c->head++;
    c->msg_off = 0;
    b->inflight--;
    if (b->on_echo)
        b->on_echo(b, c, now);
}

static const char *type_name(int opcode)
{
    return opcode == OP_TEXT ? "text" : opcode == OP_BINARY ? "binary" : "control";
}

static bool frame_begin(struct bench *b, struct conn *c)
{
    const char *why;
    if (frame_server_header(c->hdr, c->ext.on, &c->frame, &why) < 0) {
        char hex[FRAME_HDR_MAX * 3 + 1] = "";
        for (unsigned i = 0; i < c->hdr_len; i++)
            snprintf(hex + 3 * i, 4, " %02x", c->hdr[i]);
        conn_fail(b, c, "bad frame from the server: %s (header%s)", why, hex);
        return false;
    }
    size_t hdr_len = c->hdr_len;
    c->hdr_len = 0;
    c->in_frame = true;
    c->remaining = c->frame.len;
    int op = c->frame.opcode;
    if (op >= OP_CLOSE) {
        c->ctl_len = 0;
        return true;
    }
    c->rx_wire += hdr_len + c->frame.len;
    if (c->close_received) {
        conn_fail(b, c, "data frame after the server's Close");
        return false;
    }
    if (op == OP_CONT && !c->in_msg) {
        conn_fail(b, c, "continuation frame with no message started");
        return false;
    }
    if (op != OP_CONT) {
        if (c->in_msg) {
            conn_fail(b, c, "new %s message while the previous one is unfinished (%zu of %zu)",
                      type_name(op), c->msg_off, b->pl.size);
            return false;
        }
        if (conn_inflight(c) == 0)
            bench_abort(b, "connection %u: a %s message of %llu bytes arrived, none was in flight",
                        c->id, type_name(op), (unsigned long long)c->frame.len);
        if (op != b->pl.opcode)
            bench_abort(b, "connection %u: message #%llu was sent as %s and came back as %s",
                        c->id, (unsigned long long)conn_slot(c, c->head)->seq,
                        type_name(b->pl.opcode), type_name(op));
        c->in_msg = true;
        c->rx_compressed = c->frame.rsv1;
        if (c->rx_compressed) {
            c->rx_z = zcodec_inflate_begin(b->z, c->ext.server_bits,
                                           c->ext.server_no_takeover ? NULL : &c->rx_hist);
            if (!c->rx_z)
                bench_abort(b, "out of memory for an inflater");
        }
    }
    /* A compressed frame may be longer than what it inflates to; its bytes are counted
     * as they inflate. */
    if (!c->rx_compressed && c->frame.len > b->pl.size - c->msg_off)
        bench_abort(b,
                    "connection %u: the echo of message #%llu is longer than the %zu bytes sent "
                    "(a frame of %llu bytes at offset %zu)",
                    c->id, (unsigned long long)conn_slot(c, c->head)->seq, b->pl.size,
                    (unsigned long long)c->frame.len, c->msg_off);
    return true;
}

struct inflating {
    struct bench *b;
    struct conn *c;
};

static void inflated(void *ctx, const uint8_t *p, size_t n)
{
    struct inflating *in = ctx;
    struct bench *b = in->b;
    struct conn *c = in->c;
    if (n > b->pl.size - c->msg_off)
        bench_abort(b, "connection %u: the echo of message #%llu inflates to more than the %zu "
                       "bytes sent",
                    c->id, (unsigned long long)conn_slot(c, c->head)->seq, b->pl.size);
    check_echo(b, c, p, n);
}

/* Compressed payload bytes of the echo being read; `last` ends the message. */
static void inflate_echo(struct bench *b, struct conn *c, const uint8_t *p, size_t n, bool last)
{
    struct inflating ctx = { b, c };
    const char *why;
    if (zcodec_inflate(b->z, c->rx_z, p, n, last, inflated, &ctx, &why) < 0)
        bench_abort(b, "connection %u: the compressed echo of message #%llu does not inflate: %s",
                    c->id, (unsigned long long)conn_slot(c, c->head)->seq, why);
    if (last) {
        zcodec_inflate_end(b->z, c->rx_z, c->ext.server_no_takeover ? NULL : &c->rx_hist);
        c->rx_z = NULL;
    }
}

static bool close_frame(struct bench *b, struct conn *c)
{
    unsigned code = c->ctl_len >= 2 ? (unsigned)c->ctl[0] << 8 | c->ctl[1] : 1005;
    if (c->state == CS_CLOSING) {
        c->close_received = true;
        if (code != 1000) {
            conn_fail(b, c, "server answered our Close 1000 with Close %u", code);
            return false;
        }
        return true; /* the server closes TCP next */
    }
    int rlen = c->ctl_len > 2 ? c->ctl_len - 2 : 0;
    conn_fail(b, c, "server sent Close %u '%.*s' (in flight: %u)", code, rlen,
              (const char *)c->ctl + 2, conn_inflight(c));
    return false;
}

static bool frame_end(struct bench *b, struct conn *c, int64_t now)
{
    c->in_frame = false;
    switch (c->frame.opcode) {
    case OP_PING:
        if (c->state == CS_OPEN) /* nothing may follow our Close */
            conn_queue_control(b, c, OP_PONG, c->ctl, c->ctl_len);
        return true;
    case OP_PONG:
        return true;
    case OP_CLOSE:
        return close_frame(b, c);
    default:
        break;
    }
    if (!c->frame.fin)
        return true;
    if (c->rx_compressed)
        inflate_echo(b, c, NULL, 0, true);
    if (c->msg_off != b->pl.size)
        bench_abort(b, "connection %u: the echo of message #%llu ended after %zu of %zu bytes",
                    c->id, (unsigned long long)conn_slot(c, c->head)->seq, c->msg_off, b->pl.size);
    c->in_msg = false;
    complete(b, c, now);
    return conn_alive(c);
}

void conn_ws_input(struct bench *b, struct conn *c, const uint8_t *p, size_t n, int64_t now)
{
    while (n > 0) {
        if (!c->in_frame) {
            /* Collect the header first: two bytes say how long the rest of it is. */
            size_t need = c->hdr_len < 2 ? 2 : frame_header_size(c->hdr[1]);
            size_t take = need - c->hdr_len < n ? need - c->hdr_len : n;
            memcpy(c->hdr + c->hdr_len, p, take);
            c->hdr_len = (uint8_t)(c->hdr_len + take);
            p += take;
            n -= take;
            if (c->hdr_len < 2 || c->hdr_len < frame_header_size(c->hdr[1]))
                continue;
            if (!frame_begin(b, c))
                return;
        } else {
            size_t take = c->remaining < n ? (size_t)c->remaining : n;
            if (c->frame.opcode >= OP_CLOSE) {
                memcpy(c->ctl + c->ctl_len, p, take);
                c->ctl_len = (uint8_t)(c->ctl_len + take);
            } else if (c->rx_compressed) {
                inflate_echo(b, c, p, take, false);
            } else {
                check_echo(b, c, p, take);
            }
            p += take;
            n -= take;
            c->remaining -= take;
        }
        if (c->remaining == 0 && !frame_end(b, c, now))
            return;
    }
}

void conn_raw_input(struct bench *b, struct conn *c, const uint8_t *p, size_t n, int64_t now)
{
    while (n > 0) {
        if (conn_inflight(c) == 0)
            bench_abort(b, "connection %u: %zu bytes arrived with no message in flight", c->id, n);
        size_t take = b->pl.size - c->msg_off < n ? b->pl.size - c->msg_off : n;
        check_echo(b, c, p, take);
        p += take;
        n -= take;
        if (c->msg_off == b->pl.size) {
            complete(b, c, now);
            if (!conn_alive(c))
                return;
        }
    }
}
