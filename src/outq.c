#include "outq.h"

bool outq_ref(struct outq *q, const uint8_t *p, size_t len)
{
    if (q->nref == OUTQ_MAX_REFS)
        return false;
    q->ref[q->nref++] = (struct out_ref){ .at = (uint32_t)buf_len(&q->bytes), .len = (uint32_t)len,
                                          .p = p };
    return true;
}

size_t outq_len(const struct outq *q)
{
    size_t n = buf_len(&q->bytes);
    for (unsigned i = 0; i < q->nref; i++)
        n += q->ref[i].len;
    return n;
}

int outq_iov(const struct outq *q, struct iovec *iov)
{
    /* No byte buffer yet (references only): NULL + 0 would be undefined behaviour. */
    const uint8_t *bytes = q->bytes.data ? buf_head(&q->bytes) : NULL;
    size_t done = 0; /* bytes already placed */
    int n = 0;
    for (unsigned i = 0; i < q->nref; i++) {
        const struct out_ref *r = &q->ref[i];
        if (r->at > done)
            iov[n++] = (struct iovec){ (void *)(bytes + done), r->at - done };
        iov[n++] = (struct iovec){ (void *)r->p, r->len };
        done = r->at;
    }
    if (buf_len(&q->bytes) > done)
        iov[n++] = (struct iovec){ (void *)(bytes + done), buf_len(&q->bytes) - done };
    return n;
}

bool outq_move(struct outq *q, size_t skip, struct buf *dst)
{
    struct iovec iov[OUTQ_MAX_IOV];
    int n = outq_iov(q, iov);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        size_t drop = skip < iov[i].iov_len ? skip : iov[i].iov_len;
        skip -= drop;
        ok = buf_append(dst, (const uint8_t *)iov[i].iov_base + drop, iov[i].iov_len - drop);
    }
    outq_clear(q);
    return ok;
}

void outq_clear(struct outq *q)
{
    buf_clear(&q->bytes);
    q->nref = 0;
}
