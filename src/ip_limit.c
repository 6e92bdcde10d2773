#include "ip_limit.h"

#include <stdlib.h>
#include <string.h>

/* Indexes are stored + 1 so that 0 (calloc's value) means "none". */
struct ip_limit_entry {
    struct ip_addr key;
    int64_t tat_us;     /* GCRA: when the bucket is full again ("theoretical arrival time") */
    uint32_t next;      /* hash chain, or free list */
    uint32_t count;     /* connections open now */
    uint32_t idle_prev; /* idle list, while count is 0 */
    uint32_t idle_next;
};

static struct ip_limit_entry *at(const struct ip_limit *t, uint32_t ref)
{
    return &t->entries[ref - 1];
}

/* A keyed 128-to-64-bit mix (a multiply-fold, as in wyhash): different seeds scatter the same
 * addresses differently, so a client cannot pick addresses that share one chain. */
static uint32_t bucket_of(const struct ip_limit *t, struct ip_addr k)
{
    unsigned __int128 m = (unsigned __int128)(k.hi ^ t->seed[0]) * (k.lo ^ t->seed[1]);
    uint64_t h = (uint64_t)m ^ (uint64_t)(m >> 64);
    return (uint32_t)(h ^ h >> 32) & t->bucket_mask;
}

static bool same(struct ip_addr a, struct ip_addr b)
{
    return a.hi == b.hi && a.lo == b.lo;
}

int ip_limit_init(struct ip_limit *t, uint32_t capacity, uint32_t max_conns, uint32_t rate,
                  uint32_t burst, const uint64_t seed[2])
{
    memset(t, 0, sizeof *t);
    if (capacity < 1)
        capacity = 1;
    uint32_t buckets = 1;
    while (buckets < capacity && buckets < (1u << 31))
        buckets <<= 1;
    /* calloc of a large block maps fresh zero pages: only the entries and buckets actually
     * used cost resident memory. */
    t->entries = calloc(capacity, sizeof *t->entries);
    t->buckets = calloc(buckets, sizeof *t->buckets);
    if (!t->entries || !t->buckets) {
        ip_limit_destroy(t);
        return -1;
    }
    t->bucket_mask = buckets - 1;
    t->capacity = capacity;
    t->max_conns = max_conns;
    if (rate) {
        t->interval_us = 1000000 / rate > 0 ? 1000000 / rate : 1;
        t->tolerance_us = (int64_t)(burst ? burst - 1 : 0) * t->interval_us;
    }
    t->seed[0] = seed[0];
    t->seed[1] = seed[1] | 1; /* never 0: a zero factor would send every IPv4 key to one chain */
    return 0;
}

void ip_limit_destroy(struct ip_limit *t)
{
    free(t->entries);
    free(t->buckets);
    t->entries = NULL;
    t->buckets = NULL;
}

static void idle_unlink(struct ip_limit *t, uint32_t ref)
{
    struct ip_limit_entry *e = at(t, ref);
    if (e->idle_prev)
        at(t, e->idle_prev)->idle_next = e->idle_next;
    else
        t->idle_head = e->idle_next;
    if (e->idle_next)
        at(t, e->idle_next)->idle_prev = e->idle_prev;
    else
        t->idle_tail = e->idle_prev;
    e->idle_prev = e->idle_next = 0;
}

static void idle_append(struct ip_limit *t, uint32_t ref)
{
    struct ip_limit_entry *e = at(t, ref);
    e->idle_prev = t->idle_tail;
    e->idle_next = 0;
    if (t->idle_tail)
        at(t, t->idle_tail)->idle_next = ref;
    else
        t->idle_head = ref;
    t->idle_tail = ref;
}

/* Removes an idle entry from its chain and the idle list, and frees it. */
static void drop(struct ip_limit *t, uint32_t ref)
{
    struct ip_limit_entry *e = at(t, ref);
    uint32_t *link = &t->buckets[bucket_of(t, e->key)];
    while (*link != ref)
        link = &at(t, *link)->next;
    *link = e->next;
    idle_unlink(t, ref);
    memset(e, 0, sizeof *e);
    e->next = t->free_list;
    t->free_list = ref;
    t->live--;
}

/* An entry with no connection whose bucket is full again remembers nothing: free it. */
static bool forgettable(const struct ip_limit_entry *e, int64_t now_us)
{
    return e->count == 0 && e->tat_us <= now_us;
}

/* A fresh entry for key, or 0 when every entry holds live connections. */
static uint32_t take(struct ip_limit *t, struct ip_addr key, int64_t now_us)
{
    uint32_t ref;
    if (t->free_list) {
        ref = t->free_list;
        t->free_list = at(t, ref)->next;
    } else if (t->used < t->capacity) {
        ref = ++t->used;
    } else if (t->idle_head) {
        /* Full: reuse the entry idle longest, forgetting its rate history. */
        drop(t, t->idle_head);
        ref = t->free_list;
        t->free_list = at(t, ref)->next;
    } else {
        return 0;
    }
    struct ip_limit_entry *e = at(t, ref);
    uint32_t b = bucket_of(t, key);
    *e = (struct ip_limit_entry){ .key = key, .tat_us = now_us, .next = t->buckets[b] };
    t->buckets[b] = ref;
    t->live++;
    idle_append(t, ref); /* an entry with no connection is always on the idle list */
    return ref;
}

static uint32_t find(const struct ip_limit *t, struct ip_addr key)
{
    uint32_t ref = t->buckets[bucket_of(t, key)];
    while (ref && !same(at(t, ref)->key, key))
        ref = at(t, ref)->next;
    return ref;
}

enum ip_verdict ip_limit_admit(struct ip_limit *t, struct ip_addr key, int64_t now_ms,
                               uint32_t *handle, uint32_t *retry_after_s)
{
    int64_t now_us = now_ms * 1000;
    *handle = 0;
    *retry_after_s = 0;
    /* Keep the table tidy as we go: a couple of idle entries whose buckets refilled. */
    for (int i = 0; i < 2 && t->idle_head && forgettable(at(t, t->idle_head), now_us); i++)
        drop(t, t->idle_head);

    uint32_t ref = find(t, key);
    if (!ref && !(ref = take(t, key, now_us)))
        return IP_UNTRACKED;
    struct ip_limit_entry *e = at(t, ref);
    if (t->max_conns && e->count >= t->max_conns)
        return IP_OVER_CONNECTIONS;
    int64_t tat = e->tat_us > now_us ? e->tat_us : now_us;
    if (t->interval_us && tat - now_us > t->tolerance_us) {
        int64_t wait_us = tat - t->tolerance_us - now_us;
        *retry_after_s = (uint32_t)((wait_us + 999999) / 1000000);
        return IP_OVER_RATE;
    }
    e->tat_us = tat + t->interval_us;
    if (e->count++ == 0)
        idle_unlink(t, ref);
    t->open++;
    *handle = ref;
    return IP_ALLOWED;
}

void ip_limit_release(struct ip_limit *t, uint32_t handle, int64_t now_ms)
{
    if (!handle || handle > t->used)
        return;
    struct ip_limit_entry *e = at(t, handle);
    if (e->count == 0)
        return;
    t->open--;
    if (--e->count > 0)
        return;
    idle_append(t, handle);
    if (forgettable(e, now_ms * 1000))
        drop(t, handle);
}

uint32_t ip_limit_count(const struct ip_limit *t, struct ip_addr key)
{
    uint32_t ref = find(t, key);
    return ref ? at(t, ref)->count : 0;
}
