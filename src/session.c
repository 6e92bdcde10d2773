#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "close_code.h"
#include "defaults.h"
#include "deflate.h"
#include "utf8.h"

static const char err_utf8[] = "invalid UTF-8 in a text message";
static const char err_oom[] = "out of memory";
static const char err_inflate[] = "invalid deflate data in a compressed message";
static const char err_too_big[] = "message larger than --max-message";

/* The last bytes of one side's compressed messages, which that side's next message may refer
 * to: grown as messages come, up to a window, so a connection that sent one small message holds
 * little. */
struct history {
    uint8_t *p;
    uint16_t len, cap, max;
};

/* A connection's permessage-deflate state, made at its first compressed message and kept: the
 * streams of the message in flight, and each side's history. */
struct session_z {
    struct zpool *pool;
    struct zstream *in;   /* inflating the message in flight */
    struct zstream *out;  /* deflating its echo, once that is streamed */
    struct history sent;  /* our messages, which the client holds: the next one's dictionary */
    struct history got;   /* the client's, when it keeps its context (--deflate takeover) */
};

static unsigned server_bits(const struct session *s) { return s->pmd_bits >> 4; }
static unsigned client_bits(const struct session *s) { return s->pmd_bits & 15; }

void session_use_deflate(struct session *s, bool server_no_takeover, bool client_no_takeover,
                         unsigned server_window_bits, unsigned client_window_bits)
{
    s->pmd = PMD_ON | (server_no_takeover ? PMD_SERVER_NO_TAKEOVER : 0) |
             (client_no_takeover ? PMD_CLIENT_NO_TAKEOVER : 0);
    s->pmd_bits = (uint8_t)(server_window_bits << 4 | client_window_bits);
    s->dec.rsv1_ok = true;
}

bool session_holds_streams(const struct session *s) { return s->z && (s->z->in || s->z->out); }

uint64_t session_memory(const struct session *s)
{
    uint64_t n = s->hold.cap;
    if (s->z)
        n += sizeof *s->z + s->z->sent.cap + s->z->got.cap;
    return n;
}

/* The state for a connection's first compressed message. */
static struct session_z *z_state(struct session *s, struct zpool *pool)
{
    if (s->z)
        return s->z;
    /* History: only what the other side keeps. zlib's matches reach 2^wbits - 262 bytes back
     * at most, so a send history longer than the window would never be used. */
    unsigned sb = server_bits(s) < 9 ? 9 : server_bits(s);
    size_t sent = s->pmd & PMD_SERVER_NO_TAKEOVER ? 0
                  : DEFLATE_SEND_HISTORY < (1u << sb) ? DEFLATE_SEND_HISTORY : (1u << sb);
    size_t got = s->pmd & PMD_CLIENT_NO_TAKEOVER ? 0 : (size_t)1 << client_bits(s);
    struct session_z *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->pool = pool;
    z->sent.max = (uint16_t)sent;
    z->got.max = (uint16_t)got;
    return s->z = z;
}

/* Keeps the last h->max bytes of what was kept plus p[0..n). Out of memory, it forgets: an
 * empty history is always correct, only less compact. */
static void history_push(struct history *h, const uint8_t *p, size_t n)
{
    if (!h->max || !n)
        return;
    if (n >= h->max)
        p += n - h->max, n = h->max;
    size_t want = h->len + n < h->max ? h->len + n : h->max;
    if (want > h->cap) { /* grows to the window in a few steps, then stays */
        size_t cap = h->cap ? 2u * h->cap : 256;
        cap = cap < want ? want : cap > h->max ? h->max : cap;
        uint8_t *q = realloc(h->p, cap);
        if (!q) {
            h->len = 0;
            return;
        }
        h->p = q;
        h->cap = (uint16_t)cap;
    }
    size_t keep = want - n;
    memmove(h->p, h->p + h->len - keep, keep);
    memcpy(h->p + keep, p, n);
    h->len = (uint16_t)want;
}

/* Appends one server frame with an already plain payload. */
static bool emit(struct buf *out, bool fin, uint8_t opcode, const uint8_t *p, size_t n)
{
    uint8_t *dst = buf_reserve(out, WS_MAX_SERVER_HEADER + n);
    if (!dst)
        return false;
    size_t h = frame_header_encode(dst, fin, opcode, n);
    if (n)
        memcpy(dst + h, p, n);
    buf_commit(out, h + n);
    return true;
}

static void send_close(struct session *s, uint16_t code, struct buf *out)
{
    uint8_t payload[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    s->close_code = code;
    emit(out, true, WS_OP_CLOSE, payload, sizeof payload);
}

/* Failing the connection: queue a Close with the code and stop reading application data. */
static void fail(struct session *s, uint16_t code, struct buf *out)
{
    if (s->state == SESSION_OPEN) /* one Close per connection: ours may be out already */
        send_close(s, code, out);
    s->state = SESSION_DONE;
}

void session_close(struct session *s, uint16_t code, struct buf *out)
{
    if (s->state != SESSION_OPEN)
        return;
    send_close(s, code, out);
    s->state = SESSION_CLOSE_SENT;
}

void session_ping(struct session *s, struct buf *out)
{
    static const uint8_t payload[] = "websock";
    if (s->state == SESSION_OPEN)
        emit(out, true, WS_OP_PING, payload, sizeof payload - 1);
}

void session_free(struct session *s)
{
    buf_free(&s->hold);
    if (s->z) {
        zstream_give(s->z->pool, s->z->in);
        zstream_give(s->z->pool, s->z->out);
        free(s->z->sent.p);
        free(s->z->got.p);
        free(s->z);
        s->z = NULL;
    }
}

/* A complete control frame. Returns an error reason, or NULL. */
static const char *on_control(struct session *s, uint8_t op, const uint8_t *p, size_t n,
                              struct buf *out)
{
    if (op == WS_OP_PING) {
        if (s->state == SESSION_OPEN && !emit(out, true, WS_OP_PONG, p, n))
            goto oom;
        return NULL;
    }
    if (op == WS_OP_PONG)
        return NULL; /* unsolicited pongs are allowed and ignored */

    /* Close: validate, answer (unless we already sent ours), and we are done. */
    uint16_t code = WS_CLOSE_NORMAL;
    if (n == 1) {
        fail(s, WS_CLOSE_PROTOCOL_ERROR, out);
        return "close frame with a 1-byte payload";
    }
    if (n >= 2) {
        code = (uint16_t)(p[0] << 8 | p[1]);
        if (!close_code_is_valid(code)) {
            fail(s, WS_CLOSE_PROTOCOL_ERROR, out);
            return "close frame with an invalid code";
        }
        if (utf8_validate(UTF8_ACCEPT, p + 2, n - 2) != UTF8_ACCEPT) {
            fail(s, WS_CLOSE_INVALID_DATA, out);
            return "close reason is not valid UTF-8";
        }
    }
    if (s->state == SESSION_OPEN)
        send_close(s, code, out);
    s->state = SESSION_DONE;
    return NULL;
oom:
    s->state = SESSION_DONE;
    return err_oom;
}

/* A new data message: its opcode, and its length and text state from zero. */
static void begin_message(struct session *s, uint8_t op)
{
    s->msg_opcode = op;
    s->msg_len = 0;
    s->utf8_state = UTF8_ACCEPT;
    s->streamed = false;
    s->held_len = 0;
    s->z_msg = s->dec.rsv1;
    s->z_more = s->z_last = s->z_echoing = s->z_plain_echo = false;
}

/* A new frame header. Returns an error reason (with the Close queued), or NULL. */
static const char *on_header(struct session *s, const struct session_limits *lim, uint64_t len,
                             struct buf *out)
{
    uint8_t op = s->dec.opcode;
    if (ws_opcode_is_control(op))
        return NULL;
    if (op == WS_OP_CONT && !s->msg_opcode) {
        fail(s, WS_CLOSE_PROTOCOL_ERROR, out);
        return "continuation frame without a message to continue";
    }
    if (op != WS_OP_CONT && s->msg_opcode) {
        fail(s, WS_CLOSE_PROTOCOL_ERROR, out);
        return "new data frame while a fragmented message is open";
    }
    if (op != WS_OP_CONT)
        begin_message(s, op);
    if (s->z_msg) { /* its size is counted inflated */
        s->whole = false;
        if (!z_state(s, lim->zpool)) {
            s->state = SESSION_DONE;
            return err_oom;
        }
        return NULL;
    }
    if (len > lim->max_message - s->msg_len) {
        fail(s, WS_CLOSE_TOO_BIG, out);
        return err_too_big;
    }
    s->msg_len += len;
    s->whole = op != WS_OP_CONT && s->dec.fin && len <= lim->coalesce_max && len <= lim->hold_budget;
    return NULL;
}

/* Unmasks n payload bytes of the current frame from src into dst (one pass) and, for text,
 * validates them there. Returns false when they are not valid UTF-8. */
static bool take_payload(struct session *s, uint8_t *dst, const struct frame_result *r)
{
    bool non_ascii;
    ws_unmask_copy(dst, r->data, r->len, s->dec.mask, r->mask_pos, &non_ascii);
    if (s->msg_opcode == WS_OP_TEXT && (non_ascii || s->utf8_state != UTF8_ACCEPT))
        s->utf8_state = utf8_validate(s->utf8_state, dst, r->len);
    return s->utf8_state != UTF8_REJECT;
}

/* Bytes at the end of a streamed text piece that start a code point the next read completes:
 * they are held back, so every text fragment we send ends on a code-point boundary. */
static size_t incomplete_tail(const struct session *s, const uint8_t *p, size_t n, bool stream)
{
    if (!stream || s->utf8_state == UTF8_ACCEPT)
        return 0;
    size_t t = n < 3 ? n : 3;
    return utf8_incomplete_len(p + n - t, t, s->utf8_state);
}

/* A piece of the message went out as one frame of len payload bytes; keep bytes are held. */
static void piece_sent(struct session *s, const uint8_t *kept, size_t keep, size_t len, bool fin,
                       bool stream, struct session_counts *k)
{
    if (keep) /* rare: a code point cut by the end of a read */
        memmove(s->held, kept, keep);
    s->held_len = (uint8_t)keep;
    s->streamed = stream;
    k->bytes_out += len;
    k->messages_out += fin;
}

/* A large piece: unmasked where it lies and queued by reference, not copied. Our header (4 bytes
 * shorter than the client's: no mask key) goes over the end of the client's when that is in
 * front of the piece; else it goes into the byte buffer, followed by any bytes of a code point
 * held back from the previous read. */
static const char *echo_by_reference(struct session *s, const struct frame_result *r,
                                     const uint8_t *base, bool fin, bool stream, struct outq *q,
                                     struct session_counts *k)
{
    if (!take_payload(s, r->data, r) || (fin && s->utf8_state != UTF8_ACCEPT))
        return err_utf8;
    size_t keep = incomplete_tail(s, r->data, r->len, stream);
    size_t len = s->held_len + r->len - keep;
    uint8_t op = s->streamed ? WS_OP_CONT : s->msg_opcode;
    size_t h = frame_header_len(len);
    if (!s->held_len && (size_t)(r->data - base) >= h) {
        frame_header_encode(r->data - h, fin, op, len);
        outq_ref(q, r->data - h, h + r->len - keep);
    } else {
        uint8_t hdr[WS_MAX_SERVER_HEADER + sizeof s->held];
        frame_header_encode(hdr, fin, op, len);
        memcpy(hdr + h, s->held, s->held_len);
        if (!buf_append(&q->bytes, hdr, h + s->held_len))
            return err_oom;
        outq_ref(q, r->data, r->len - keep);
    }
    piece_sent(s, r->data + r->len - keep, keep, len, fin, stream, k);
    return NULL;
}

/* Appends one frame straight from the received chunk: the held bytes of an incomplete code point
 * first, then the chunk, unmasked and validated on its way into the output (or, when large,
 * referenced where it lies). Returns an error reason (nothing appended), or NULL. */
static const char *echo_chunk(struct session *s, const struct frame_result *r, const uint8_t *base,
                              bool fin, bool stream, struct outq *q, struct session_counts *k)
{
    if (r->len >= OUTQ_REF_MIN && q->nref < OUTQ_MAX_REFS)
        return echo_by_reference(s, r, base, fin, stream, q, k);
    struct buf *out = &q->bytes;
    size_t total = s->held_len + r->len;
    size_t h = frame_header_len(total);
    uint8_t *dst = buf_reserve(out, h + total);
    if (!dst)
        return err_oom;
    uint8_t *payload = dst + h;
    if (s->held_len)
        memcpy(payload, s->held, s->held_len);
    if (!take_payload(s, payload + s->held_len, r) || (fin && s->utf8_state != UTF8_ACCEPT))
        return err_utf8;
    size_t keep = incomplete_tail(s, payload, total, stream);
    size_t len = total - keep;
    if (len == 0 && !fin) { /* all of it held back */
        piece_sent(s, payload, keep, 0, false, s->streamed, k);
        return NULL;
    }
    size_t h2 = frame_header_len(len);
    if (h2 != h) /* holding bytes back crossed a length-encoding boundary; the held bytes after
                    payload + len stay where they are */
        memmove(dst + h2, payload, len);
    frame_header_encode(dst, fin, s->streamed ? WS_OP_CONT : s->msg_opcode, len);
    buf_commit(out, h2 + len);
    piece_sent(s, payload + len, keep, len, fin, stream, k);
    return NULL;
}

/* An echo step failed: invalid text fails the connection with 1007; out of memory ends it, as
 * nothing more can be queued. Returns err. */
static const char *echo_failed(struct session *s, const char *err, struct buf *out)
{
    if (err == err_utf8)
        fail(s, WS_CLOSE_INVALID_DATA, out);
    else
        s->state = SESSION_DONE;
    return err;
}

/* ---- permessage-deflate ------------------------------------------------------------------ */

/* Ends a compressed frame whose payload the deflater wrote at dst + WS_MAX_SERVER_HEADER: the
 * payload moves up behind its header. RSV1 goes on the first frame of the message only. */
static void commit_compressed(struct buf *out, uint8_t *dst, size_t len, bool fin, uint8_t op)
{
    size_t h = frame_header_len(len);
    memmove(dst + h, dst + WS_MAX_SERVER_HEADER, len);
    frame_header_encode(dst, fin, op, len);
    buf_commit(out, h + len);
}

/* The echo of a compressed message that inflated whole in one step: one frame, compressed if
 * that makes it smaller, else plain. */
static const char *echo_whole_z(struct session *s, const uint8_t *p, size_t n, struct outq *q,
                                struct session_counts *k)
{
    struct session_z *z = s->z;
    struct zstream *d = NULL;
    if (n >= DEFLATE_MIN_SIZE)
        d = zout_begin(z->pool, server_bits(s), n <= DEFLATE_SMALL, z->sent.p, z->sent.len);
    if (d) {
        size_t cap = n + 3; /* output and its 4-byte tail: full means no smaller than n */
        uint8_t *dst = buf_reserve(&q->bytes, WS_MAX_SERVER_HEADER + cap);
        size_t used, len = 0;
        bool full = true;
        if (dst)
            len = zout_run(d, p, n, &used, true, dst + WS_MAX_SERVER_HEADER, cap, &full);
        zstream_give(z->pool, d);
        if (!dst)
            return err_oom;
        if (!full) {
            commit_compressed(&q->bytes, dst, len, true, s->msg_opcode | WS_RSV1);
            history_push(&z->sent, p, n);
            k->z_wire_out += len;
            k->z_plain_out += n;
            k->bytes_out += len;
            k->messages_out++;
            return NULL;
        }
    }
    if (!emit(&q->bytes, true, s->msg_opcode, p, n))
        return err_oom;
    k->bytes_out += n;
    k->messages_out++;
    return NULL;
}

/* A step of a larger compressed message: through its own deflater, out as compressed
 * fragments as the deflater produces them (fin: the message's last step). The first step is
 * flushed, to see whether compressing shrinks it: if not (random or already compressed data),
 * the whole message goes back plain. */
static const char *echo_stream_z(struct session *s, const uint8_t *p, size_t n, bool fin,
                                 struct outq *q, struct session_counts *k)
{
    struct session_z *z = s->z;
    if (s->z_plain_echo) {
        if (!emit(&q->bytes, fin, s->z_echoing ? WS_OP_CONT : s->msg_opcode, p, n))
            return err_oom;
        s->z_echoing = true;
        k->bytes_out += n;
        k->messages_out += fin;
        return NULL;
    }
    bool first = !z->out;
    if (first && !(z->out = zout_begin(z->pool, server_bits(s), false, z->sent.p, z->sent.len)))
        return err_oom;
    const uint8_t *plain = p;
    size_t plain_len = n;
    bool full;
    do {
        size_t cap = n + n / 16 + 64, used;
        uint8_t *dst = buf_reserve(&q->bytes, WS_MAX_SERVER_HEADER + cap);
        if (!dst)
            return err_oom;
        size_t len = zout_run(z->out, p, n, &used, fin || first, dst + WS_MAX_SERVER_HEADER,
                              cap, &full);
        if (first && (full || len + 4 >= n)) { /* no smaller: this message goes back plain */
            zstream_give(z->pool, z->out);
            z->out = NULL;
            s->z_plain_echo = true;
            return echo_stream_z(s, p, n, fin, q, k);
        }
        first = false;
        p += used;
        n -= used;
        bool end = fin && !full;
        if (len || end) {
            commit_compressed(&q->bytes, dst, len, end,
                              s->z_echoing ? WS_OP_CONT : s->msg_opcode | WS_RSV1);
            s->z_echoing = true;
            k->z_wire_out += len;
            k->bytes_out += len;
            k->messages_out += end;
        }
    } while (full);
    history_push(&z->sent, plain, plain_len); /* the deflater's dictionary is set already */
    k->z_plain_out += plain_len;
    if (fin) {
        zstream_give(z->pool, z->out);
        z->out = NULL;
    }
    return NULL;
}

/* Inflates the current compressed message's input *in[0..*n) (last: it ends the message),
 * checks what comes out and echoes it, DEFLATE_CHUNK bytes per step, until the input is taken
 * or this call's budget is used (*n is then what is left for the next call). Returns an error
 * reason (with the Close queued), or NULL. */
static const char *inflate_message(struct session *s, const struct session_limits *lim,
                                   const uint8_t **in, size_t *n, bool last, struct outq *q,
                                   struct session_counts *k)
{
    struct session_z *z = s->z;
    if (!z->in && !(z->in = zin_begin(z->pool, z->got.p, z->got.len))) {
        s->state = SESSION_DONE;
        return err_oom;
    }
    for (;;) {
        if (lim->inflate_turn && s->z_turn >= lim->inflate_turn) { /* the others' turn */
            s->z_more = true;
            s->z_last = last && *n == 0;
            return NULL;
        }
        uint64_t left = lim->max_message - s->msg_len;
        size_t got = left < DEFLATE_CHUNK ? (size_t)left + 1 : DEFLATE_CHUNK, before = *n;
        enum zin_status st = zin_run(z->in, in, n, last, lim->inflate_buf, &got);
        k->z_wire_in += before - *n;
        if (st == ZIN_ERROR) {
            fail(s, WS_CLOSE_INVALID_DATA, &q->bytes);
            return err_inflate;
        }
        k->z_plain_in += got;
        if (got > left) { /* one byte over is enough to know */
            fail(s, WS_CLOSE_TOO_BIG, &q->bytes);
            return err_too_big;
        }
        s->msg_len += got;
        s->z_turn += (uint32_t)got;
        bool done = st == ZIN_DONE;
        const uint8_t *p = lim->inflate_buf;
        if (s->msg_opcode == WS_OP_TEXT) {
            s->utf8_state = utf8_validate(s->utf8_state, p, got);
            if (s->utf8_state == UTF8_REJECT || (done && s->utf8_state != UTF8_ACCEPT))
                return echo_failed(s, err_utf8, &q->bytes);
        }
        if (got || done) {
            history_push(&z->got, p, got);
            const char *err = !s->streamed && done ? echo_whole_z(s, p, got, q, k)
                                                   : echo_stream_z(s, p, got, done, q, k);
            s->streamed = true;
            if (err)
                return echo_failed(s, err, &q->bytes);
        }
        if (done) {
            zstream_give(z->pool, z->in);
            z->in = NULL;
            s->z_more = false;
            s->msg_opcode = 0;
            k->messages_in++;
            return NULL;
        }
        if (st == ZIN_NEED_INPUT) {
            s->z_more = false;
            return NULL;
        }
    }
}

/* Payload of a compressed message (unmasked here; the decoder left it masked). What this
 * call's budget did not take is masked again and given back to the decoder; *left says how
 * much, for session_feed to return to the caller. */
static const char *on_compressed_payload(struct session *s, const struct session_limits *lim,
                                         const struct frame_result *r, struct outq *q,
                                         struct session_counts *k, size_t *left)
{
    ws_unmask(r->data, r->len, s->dec.mask, r->mask_pos);
    const uint8_t *in = r->data;
    size_t n = r->len;
    const char *err = inflate_message(s, lim, &in, &n, r->end && s->dec.fin, q, k);
    k->bytes_in += r->len - n;
    *left = err ? 0 : n;
    if (*left) {
        ws_unmask(r->data + r->len - n, n, s->dec.mask, (unsigned)(r->mask_pos + r->len - n) & 3);
        frame_unconsume(&s->dec, n);
    }
    return err;
}

/* Payload bytes of the current frame (base: the start of the chunk they are in). Returns an error
 * reason, or NULL. */
static const char *on_payload(struct session *s, const struct frame_result *r, const uint8_t *base,
                              struct outq *q, struct session_counts *k)
{
    struct buf *out = &q->bytes;
    uint8_t op = s->dec.opcode;
    if (ws_opcode_is_control(op)) {
        ws_unmask(r->data, r->len, s->dec.mask, r->mask_pos);
        if (r->end && buf_len(&s->hold) == 0)
            return on_control(s, op, r->data, r->len, out); /* whole frame in this read */
        if (!buf_append(&s->hold, r->data, r->len))
            goto oom;
        if (!r->end)
            return NULL;
        const char *err = on_control(s, op, buf_head(&s->hold), buf_len(&s->hold), out);
        buf_free(&s->hold);
        return err;
    }

    if (s->state != SESSION_OPEN) {
        buf_free(&s->hold); /* after our Close, data is read and dropped, held bytes too */
        return NULL;
    }

    k->bytes_in += r->len;
    /* Text is validated as bytes arrive, even mid-frame: invalid text fails at once. */
    bool last = r->end && s->dec.fin;
    const char *err = NULL;
    if (s->whole && r->end && buf_len(&s->hold) == 0) { /* the common case: the whole frame */
        err = echo_chunk(s, r, base, true, false, q, k);
    } else if (s->whole) {
        uint8_t *dst = buf_reserve(&s->hold, r->len);
        if (!dst)
            goto oom;
        if (!take_payload(s, dst, r) || (r->end && s->utf8_state != UTF8_ACCEPT)) {
            err = err_utf8;
        } else {
            buf_commit(&s->hold, r->len);
            if (r->end && !emit(out, true, s->msg_opcode, buf_head(&s->hold), buf_len(&s->hold))) {
                err = err_oom;
            } else if (r->end) {
                k->bytes_out += buf_len(&s->hold);
                k->messages_out++;
            }
        }
        if (r->end || err)
            buf_free(&s->hold);
    } else if (r->len > 0 || last) {
        err = echo_chunk(s, r, base, last, true, q, k);
    }
    if (err)
        return echo_failed(s, err, out);
    if (last) {
        s->msg_opcode = 0;
        k->messages_in++;
    }
    return NULL;
oom:
    s->state = SESSION_DONE;
    return err_oom;
}

/* The common case in one step: at a frame boundary with no message open, a whole final text or
 * binary frame that is echoed as one frame. It skips the decoder's three events (header,
 * payload, need-more); anything else returns 0 for the general path. Returns the bytes
 * consumed; *err as for on_payload. */
static size_t echo_whole_frame(struct session *s, const struct session_limits *lim, uint8_t *in,
                               size_t n, const uint8_t *base, struct outq *q,
                               struct session_counts *k, const char **err)
{
    struct frame_whole w;
    size_t used;
    if (s->msg_opcode || s->state != SESSION_OPEN ||
        !(used = frame_peek_whole(&s->dec, in, n, &w)) || !w.fin || (w.opcode != WS_OP_TEXT && w.opcode != WS_OP_BINARY) ||
        w.len > lim->coalesce_max || w.len > lim->max_message)
        return 0;
    memcpy(s->dec.mask, w.mask, 4);
    begin_message(s, w.opcode);
    struct frame_result r = { .event = FRAME_PAYLOAD, .end = true, .data = w.data, .len = w.len };
    k->bytes_in += w.len;
    if ((*err = echo_chunk(s, &r, base, true, false, q, k)))
        echo_failed(s, *err, &q->bytes);
    else
        k->messages_in++;
    s->msg_opcode = 0;
    return used;
}

size_t session_feed(struct session *s, const struct session_limits *lim, uint8_t *in, size_t n,
                    struct outq *q, const char **error)
{
    struct buf *out = &q->bytes;
    size_t pos = 0;
    struct session_counts uncounted = { 0 };
    struct session_counts *k = lim->counts ? lim->counts : &uncounted;
    *error = NULL;
    s->dec.keep_masked = true; /* payload is unmasked where it goes, in one pass */
    s->z_turn = 0;
    if (s->z_more && s->state == SESSION_OPEN) { /* output the last call had no budget for */
        const uint8_t *none = in;
        size_t zero = 0;
        *error = inflate_message(s, lim, &none, &zero, s->z_last, q, k);
        if (*error || s->z_more)
            return 0;
    }
    while (s->state != SESSION_DONE) {
        size_t whole = echo_whole_frame(s, lim, in + pos, n - pos, in, q, k, error);
        if (*error)
            return pos + whole;
        if (whole) {
            pos += whole;
            if (pos == n)
                return pos;
            continue;
        }
        struct frame_result r;
        pos += frame_decode(&s->dec, in + pos, n - pos, &r);
        const char *err = NULL;
        switch (r.event) {
        case FRAME_NEED_MORE:
            return pos;
        case FRAME_ERROR:
            fail(s, WS_CLOSE_PROTOCOL_ERROR, out);
            err = r.reason;
            break;
        case FRAME_HEADER:
            if (s->state == SESSION_OPEN)
                err = on_header(s, lim, r.len, out);
            break;
        case FRAME_PAYLOAD:
            if (s->z_msg && s->state == SESSION_OPEN && !ws_opcode_is_control(s->dec.opcode)) {
                size_t left;
                err = on_compressed_payload(s, lim, &r, q, k, &left);
                if (left || s->z_more)
                    return pos - left; /* the inflate budget is used: the rest waits */
            } else {
                err = on_payload(s, &r, in, q, k);
            }
            break;
        }
        if (err) {
            *error = err;
            return pos;
        }
    }
    return pos;
}
