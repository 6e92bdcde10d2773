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
    if (op != WS_OP_CONT) {
        s->msg_opcode = op;
        s->msg_len = 0;
        s->utf8_state = UTF8_ACCEPT;
        s->streamed = false;
        s->held_len = 0;
    }
    if (len > lim->max_message - s->msg_len) {
        fail(s, WS_CLOSE_TOO_BIG, out);
        return "message larger than --max-message";
    }
    s->msg_len += len;
    s->whole = op != WS_OP_CONT && s->dec.fin && len <= lim->coalesce_max;
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

/* Appends one frame straight from the received chunk: the held bytes of an incomplete code point
 * first, then the chunk, unmasked and validated on its way into the output. A streamed text
 * fragment holds back a trailing incomplete code point, so every text fragment we send ends on
 * a code-point boundary. Returns an error reason (nothing appended), or NULL. */
static const char *echo_chunk(struct session *s, const struct frame_result *r, bool fin,
                              bool stream, struct buf *out, struct session_counts *k)
{
    size_t total = s->held_len + r->len;
    size_t h = total < 126 ? 2 : total <= 0xFFFF ? 4 : 10;
    uint8_t *dst = buf_reserve(out, h + total);
    if (!dst)
        return err_oom;
    uint8_t *payload = dst + h;
    memcpy(payload, s->held, s->held_len);
    if (!take_payload(s, payload + s->held_len, r) || (fin && s->utf8_state != UTF8_ACCEPT))
        return err_utf8;
    size_t keep = 0;
    if (stream && s->utf8_state != UTF8_ACCEPT) {
        size_t t = total < 3 ? total : 3;
        keep = utf8_incomplete_len(payload + total - t, t, s->utf8_state);
    }
    size_t len = total - keep;
    uint8_t rest[3];
    memcpy(rest, payload + len, keep);
    if (len > 0 || fin) {
        uint8_t hdr[WS_MAX_SERVER_HEADER];
        uint8_t op = s->streamed ? WS_OP_CONT : s->msg_opcode;
        size_t h2 = frame_header_encode(hdr, fin, op, len);
        if (h2 != h) /* holding bytes back crossed a length-encoding boundary */
            memmove(dst + h2, payload, len);
        memcpy(dst, hdr, h2);
        buf_commit(out, h2 + len);
        s->streamed = stream;
        k->bytes_out += len;
        k->messages_out += fin;
    }
    memcpy(s->held, rest, keep);
    s->held_len = (uint8_t)keep;
    return NULL;
}

/* A whole frame with enough of its header in front of it in this chunk: unmask it where it lies,
 * write our header (4 bytes shorter than the client's: no mask key) over the end of the client's,
 * and send it from there. Returns an error reason (nothing queued), or NULL. */
static const char *echo_in_place(struct session *s, const struct frame_result *r, struct outq *q,
                                 struct session_counts *k)
{
    if (!take_payload(s, r->data, r) || s->utf8_state != UTF8_ACCEPT)
        return err_utf8;
    uint8_t hdr[WS_MAX_SERVER_HEADER];
    size_t h = frame_header_encode(hdr, true, s->msg_opcode, r->len);
    memcpy(r->data - h, hdr, h);
    outq_ref(q, r->data - h, h + r->len);
    k->bytes_out += r->len;
    k->messages_out++;
    return NULL;
}

static bool can_echo_in_place(const struct frame_result *r, const uint8_t *base,
                              const struct outq *q)
{
    size_t h = r->len <= 0xFFFF ? 4 : 10;
    return r->len >= OUTQ_REF_MIN && (size_t)(r->data - base) >= h && q->nref < OUTQ_MAX_REFS;
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
        err = can_echo_in_place(r, base, q) ? echo_in_place(s, r, q, k)
                                            : echo_chunk(s, r, true, false, out, k);
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
        err = echo_chunk(s, r, last, true, out, k);
    }
    if (err == err_utf8)
        fail(s, WS_CLOSE_INVALID_DATA, out);
    else if (err)
        s->state = SESSION_DONE; /* out of memory: nothing more can be queued */
    if (err)
        return err;
    if (last) {
        s->msg_opcode = 0;
        k->messages_in++;
    }
    return NULL;
oom:
    s->state = SESSION_DONE;
    return err_oom;
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
