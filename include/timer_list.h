/* Deadlines without a scan: every timer in one list has the same duration, so appending at the
 * tail keeps the list ordered and only the head can be due. Activity moves a link to the tail. */
#ifndef WEBSOCK_TIMER_LIST_H
#define WEBSOCK_TIMER_LIST_H

#include <stddef.h>
#include <stdint.h>

struct timer_link {
    struct timer_link *prev, *next;
    int64_t deadline_ms;
};

struct timer_list {
    struct timer_link head; /* sentinel: head.next is the earliest deadline */
    int64_t duration_ms;    /* 0: timers in this list never expire */
};

static inline void timer_list_init(struct timer_list *l, int64_t duration_ms)
{
    l->head.prev = l->head.next = &l->head;
    l->duration_ms = duration_ms;
}

static inline void timer_unlink(struct timer_link *t)
{
    if (t->next) {
        t->prev->next = t->next;
        t->next->prev = t->prev;
        t->prev = t->next = NULL;
    }
}

/* (Re)arms t in list l with a deadline of now + the list's duration. */
static inline void timer_arm(struct timer_list *l, struct timer_link *t, int64_t now_ms)
{
    timer_unlink(t);
    t->deadline_ms = now_ms + l->duration_ms;
    t->prev = l->head.prev;
    t->next = &l->head;
    l->head.prev->next = t;
    l->head.prev = t;
}

/* The first timer of l that is due at now_ms, or NULL. */
static inline struct timer_link *timer_due(struct timer_list *l, int64_t now_ms)
{
    struct timer_link *t = l->head.next;
    if (t == &l->head || l->duration_ms == 0 || t->deadline_ms > now_ms)
        return NULL;
    return t;
}

/* Milliseconds until the first deadline of l (0 if overdue), or -1 if none. */
static inline int64_t timer_wait_ms(const struct timer_list *l, int64_t now_ms)
{
    const struct timer_link *t = l->head.next;
    if (t == &l->head || l->duration_ms == 0)
        return -1;
    return t->deadline_ms > now_ms ? t->deadline_ms - now_ms : 0;
}

#endif
