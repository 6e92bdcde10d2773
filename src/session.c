#include "session.h"

#include <string.h>

#include "close_code.h"
#include "utf8.h"

static const char err_utf8[] = "invalid UTF-8 in a text message";
static const char err_oom[] = "out of memory";

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
    if (len > lim->max_message - s->msg_len) {
        fail(s, WS_CLOSE_TOO_BIG, out);
        return "message larger than --max-message";
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
            err = on_payload(s, &r, in, q, k);
            break;
        }
        if (err) {
            *error = err;
            return pos;
        }
    }
    return pos;
}
