#include "session.h"

#include <string.h>

#include "close_code.h"
#include "utf8.h"

/* Appends one server frame; payload may be split in two parts (held bytes + new bytes). */
static bool emit(struct buf *out, bool fin, uint8_t opcode, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    uint8_t *dst = buf_reserve(out, WS_MAX_SERVER_HEADER + alen + blen);
    if (!dst)
        return false;
    size_t h = frame_header_encode(dst, fin, opcode, alen + blen);
    if (alen)
        memcpy(dst + h, a, alen);
    if (blen)
        memcpy(dst + h + alen, b, blen);
    buf_commit(out, h + alen + blen);
    return true;
}

static void send_close(struct session *s, uint16_t code, struct buf *out)
{
    uint8_t payload[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    s->close_code = code;
    emit(out, true, WS_OP_CLOSE, payload, sizeof payload, NULL, 0);
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
        emit(out, true, WS_OP_PING, payload, sizeof payload - 1, NULL, 0);
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
        if (s->state == SESSION_OPEN && !emit(out, true, WS_OP_PONG, p, n, NULL, 0))
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
    return "out of memory";
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

/* Byte i of the held bytes followed by p. */
static uint8_t held_then(const struct session *s, const uint8_t *p, size_t i)
{
    return i < s->held_len ? s->held[i] : p[i - s->held_len];
}

/* Streams validated bytes out as one fragment, holding back an incomplete trailing code point so
 * every text fragment we send ends on a code-point boundary. */
static bool stream_out(struct session *s, const uint8_t *p, size_t n, bool last, struct buf *out)
{
    size_t total = s->held_len + n;
    size_t keep = 0;
    if (s->msg_opcode == WS_OP_TEXT && s->utf8_state != UTF8_ACCEPT) {
        uint8_t tail[3];
        size_t t = total < 3 ? total : 3;
        for (size_t k = 0; k < t; k++)
            tail[k] = held_then(s, p, total - t + k);
        keep = utf8_incomplete_len(tail, t, s->utf8_state);
    }
    size_t send = total - keep;
    if (send > 0 || last) {
        size_t from_held = send < s->held_len ? send : s->held_len;
        uint8_t op = s->streamed ? WS_OP_CONT : s->msg_opcode;
        if (!emit(out, last, op, s->held, from_held, p, send - from_held))
            return false;
        s->streamed = true;
    }
    uint8_t rest[3];
    for (size_t k = 0; k < keep; k++)
        rest[k] = held_then(s, p, send + k);
    memcpy(s->held, rest, keep);
    s->held_len = (uint8_t)keep;
    return true;
}

/* Payload bytes of the current frame. Returns an error reason, or NULL. */
static const char *on_payload(struct session *s, const struct frame_result *r, struct buf *out)
{
    uint8_t op = s->dec.opcode;
    if (ws_opcode_is_control(op)) {
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

    bool last = r->end && s->dec.fin;
    if (s->msg_opcode == WS_OP_TEXT) {
        /* Validate as bytes arrive, even mid-frame: invalid text fails at once. */
        s->utf8_state = utf8_validate(s->utf8_state, r->data, r->len);
        if (s->utf8_state == UTF8_REJECT || (last && s->utf8_state != UTF8_ACCEPT)) {
            buf_free(&s->hold);
            fail(s, WS_CLOSE_INVALID_DATA, out);
            return "invalid UTF-8 in a text message";
        }
    }

    if (s->whole) {
        if (r->end && buf_len(&s->hold) == 0) {
            if (!emit(out, true, s->msg_opcode, r->data, r->len, NULL, 0))
                goto oom;
        } else {
            if (!buf_append(&s->hold, r->data, r->len))
                goto oom;
            if (r->end) {
                bool ok = emit(out, true, s->msg_opcode, buf_head(&s->hold), buf_len(&s->hold),
                               NULL, 0);
                buf_free(&s->hold);
                if (!ok)
                    goto oom;
            }
        }
    } else if (r->len > 0 || last) {
        if (!stream_out(s, r->data, r->len, last, out))
            goto oom;
    }
    if (last)
        s->msg_opcode = 0;
    return NULL;
oom:
    s->state = SESSION_DONE;
    return "out of memory";
}

size_t session_feed(struct session *s, const struct session_limits *lim, uint8_t *in, size_t n,
                    struct buf *out, const char **error)
{
    size_t pos = 0;
    *error = NULL;
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
            err = on_payload(s, &r, out);
            break;
        }
        if (err) {
            *error = err;
            return pos;
        }
    }
    return pos;
}
