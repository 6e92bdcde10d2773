/* libFuzzer target: the frame decoder. The same bytes fed whole and in chunks (sizes taken from
 * the input itself) must give the same frames, payload bytes and error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
    uint8_t *bytes; /* headers and payload as decoded, in order */
    size_t len;
    const char *error;
};

static void put(struct trace *t, const void *p, size_t n)
{
    memcpy(t->bytes + t->len, p, n);
    t->len += n;
}

/* Decodes buf in chunks: chunk sizes cycle through `sizes` (0 means the rest at once). */
static void run(uint8_t *buf, size_t n, const uint8_t *sizes, size_t nsizes, struct trace *t)
{
    struct frame_decoder d = { 0 };
    size_t pos = 0, k = 0;
    while (pos < n && !t->error) {
        size_t chunk = nsizes ? sizes[k++ % nsizes] : 0;
        if (chunk == 0 || chunk > n - pos)
            chunk = n - pos;
        size_t used = 0;
        for (;;) {
            struct frame_result r;
            used += frame_decode(&d, buf + pos + used, chunk - used, &r);
            if (r.event == FRAME_NEED_MORE)
                break;
            if (r.event == FRAME_ERROR) {
                t->error = r.reason;
                break;
            }
            if (r.event == FRAME_HEADER) {
                uint8_t h[3] = { d.opcode, d.fin, (uint8_t)r.len };
                put(t, h, sizeof h);
                if (ws_opcode_is_control(d.opcode) && r.len > WS_MAX_CONTROL_PAYLOAD)
                    abort();
            } else {
                put(t, r.data, r.len);
                if (r.end)
                    put(t, "|", 1);
            }
        }
        pos += chunk;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nsizes = data[0] % 8;
    if (nsizes + 1 > size)
        return 0;
    const uint8_t *sizes = data + 1;
    size_t n = size - 1 - nsizes;
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
    memcpy(a, data + 1 + nsizes, n);
    memcpy(b, data + 1 + nsizes, n);
    /* Each header adds at most 3 trace bytes per 2 input bytes, payload one per byte. */
    struct trace ta = { malloc(2 * n + 8), 0, NULL }, tb = { malloc(2 * n + 8), 0, NULL };
    run(a, n, NULL, 0, &ta);
    run(b, n, sizes, nsizes, &tb);
    /* The chunked run may stop earlier only by having seen less of a final partial frame. */
    if ((ta.error == NULL) != (tb.error == NULL) || (ta.error && strcmp(ta.error, tb.error)))
        abort();
    if (ta.len != tb.len || memcmp(ta.bytes, tb.bytes, ta.len))
        abort();
    free(a);
    free(b);
    free(ta.bytes);
    free(tb.bytes);
    return 0;
}
