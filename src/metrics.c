#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "defaults.h"
#include "deflate.h"
#include "handshake.h"
#include "proc_stats.h"

/* Every error status websock answers with (see handshake.c), in the order of m->rejected. */
static const int statuses[METRICS_STATUS_COUNT] = { 400, 403, 404, 405, 426, 429, 431, 500, 503 };

void metrics_count_close(struct metrics *m, uint16_t code)
{
    if (code == 0)
        code = 1006; /* RFC 6455 §7.1.5: the connection closed without a Close frame */
    if (code >= 1000 && code < 1016) {
        m->closes[code - 1000]++;
        return;
    }
    for (size_t i = 0; i < METRICS_APP_CODES; i++) {
        if (m->app_code[i] == 0)
            m->app_code[i] = code;
        if (m->app_code[i] == code) {
            m->app_closes[i]++;
            return;
        }
    }
    m->other_closes++;
}

void metrics_count_rejection(struct metrics *m, int status)
{
    for (size_t i = 0; i < METRICS_STATUS_COUNT; i++) {
        if (statuses[i] == status) {
            m->rejected[i]++;
            return;
        }
    }
    metrics_count_rejection(m, 500); /* a status missing above is an internal error */
}

struct metrics_shared *metrics_shared_map(int workers)
{
    int slots = workers > 1 ? workers : 1;
    size_t size = sizeof(struct metrics_shared) + (size_t)slots * sizeof(struct metrics_slot);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct metrics_shared *sh = p; /* mmap gives zeroed pages */
    sh->workers = workers > 1 ? workers : 0;
    sh->slots = slots;
    sh->main_pid = (int32_t)getpid();
    sh->start_seconds = proc_start_time(getpid());
    if (sh->start_seconds <= 0) { /* no /proc: now is close enough */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sh->start_seconds = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    return sh;
}

void metrics_shared_unmap(struct metrics_shared *sh)
{
    if (sh)
        munmap(sh, sizeof *sh + (size_t)sh->slots * sizeof(struct metrics_slot));
}

/* Another process's slot is read while its worker writes to it: each counter is read with one
 * relaxed atomic load, so it is read whole (one aligned 8-byte access on a 64-bit target, where
 * the worker's plain add stores it whole too), never torn.
 * Why the sums never go backwards: a counter only grows in its slot (one writer, the slot's
 * worker; the supervisor resets only the gauge, and only once that worker is dead; a restarted
 * worker carries on in the same slot), and memory coherence means that a load never returns a
 * value older than one an earlier load of the same location returned. Scrapes come one after
 * another (each is a request and a response through the kernel), so every counter in a later
 * scrape is at least what the earlier one read, and so is their sum, whichever worker answers. */
static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void load_counts(uint64_t *copy, const uint64_t *slot, size_t n)
{
    for (size_t i = 0; i < n; i++)
        copy[i] = load(&slot[i]);
}

/* A copy of one slot's counters, each read once: the totals and the worker's own figures are
 * then taken from the same values. */
static void load_slot(const struct metrics *m, struct metrics *c)
{
    const struct session_counts *e = &m->echo;
    c->echo = (struct session_counts){
        .messages_in = load(&e->messages_in), .messages_out = load(&e->messages_out),
        .bytes_in = load(&e->bytes_in),       .bytes_out = load(&e->bytes_out),
        .z_wire_in = load(&e->z_wire_in),     .z_plain_in = load(&e->z_plain_in),
        .z_wire_out = load(&e->z_wire_out),   .z_plain_out = load(&e->z_plain_out),
    };
    c->open = load(&m->open);
    c->accepted = load(&m->accepted);
    c->upgrades = load(&m->upgrades);
    load_counts(c->closes, m->closes, 16);
    c->other_closes = load(&m->other_closes);
    load_counts(c->rejected, m->rejected, METRICS_STATUS_COUNT);
    load_counts(c->ip_limited, m->ip_limited, 2);
    c->deflate_negotiated = load(&m->deflate_negotiated);
    c->tls_handshakes = load(&m->tls_handshakes);
    c->tls_failures = load(&m->tls_failures);
    c->tls_ktls = load(&m->tls_ktls);
    /* A code is stored before its first count, so a code read may still have 0 closes. */
    for (size_t i = 0; i < METRICS_APP_CODES; i++) {
        c->app_code[i] = __atomic_load_n(&m->app_code[i], __ATOMIC_RELAXED);
        c->app_closes[i] = c->app_code[i] ? load(&m->app_closes[i]) : 0;
        if (!c->app_code[i])
            break;
    }
}

static void add_counts(uint64_t *sum, const uint64_t *one, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum[i] += one[i];
}

/* Adds one slot's copy to the totals. Application codes are merged by code: the union of every
 * slot's codes, so a code once shown keeps its series (at most METRICS_APP_CODES per slot). */
static void add_slot(struct metrics_snapshot *s, const struct metrics *c)
{
    struct metrics *t = &s->total;
    t->echo.messages_in += c->echo.messages_in;
    t->echo.messages_out += c->echo.messages_out;
    t->echo.bytes_in += c->echo.bytes_in;
    t->echo.bytes_out += c->echo.bytes_out;
    t->echo.z_wire_in += c->echo.z_wire_in;
    t->echo.z_plain_in += c->echo.z_plain_in;
    t->echo.z_wire_out += c->echo.z_wire_out;
    t->echo.z_plain_out += c->echo.z_plain_out;
    t->open += c->open;
    t->accepted += c->accepted;
    t->upgrades += c->upgrades;
    add_counts(t->closes, c->closes, 16);
    t->other_closes += c->other_closes;
    add_counts(t->rejected, c->rejected, METRICS_STATUS_COUNT);
    add_counts(t->ip_limited, c->ip_limited, 2);
    t->deflate_negotiated += c->deflate_negotiated;
    t->tls_handshakes += c->tls_handshakes;
    t->tls_failures += c->tls_failures;
    t->tls_ktls += c->tls_ktls;
    for (size_t i = 0; i < METRICS_APP_CODES && c->app_code[i]; i++) {
        size_t k = 0;
        while (k < s->apps && s->app_code[k] != c->app_code[i])
            k++;
        if (k == s->apps)
            s->app_code[s->apps++] = c->app_code[i];
        s->app_closes[k] += c->app_closes[i];
    }
}

/* User and system time of the whole server: the main process's own, that of the workers it has
 * reaped (its children's times) and that of the live workers. A worker reaped between reading
 * the main process and reading the workers would be missed or counted twice, so then the
 * reading is done again (the children's time changed in between). */
static void read_processes(const struct metrics_shared *sh, struct metrics_process *out)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        struct metrics_process p = { 0 };
        struct proc_sample top, again, w;
        if (!proc_sample_read(sh->main_pid, &top))
            return;
        uint64_t ticks = top.cpu_self + top.cpu_children; /* summed whole, divided once */
        p.resident_bytes = top.resident_bytes;
        p.open_fds = top.open_fds;
        p.max_fds = top.max_fds;
        for (int i = 0; sh->workers && i < sh->slots; i++) {
            int32_t pid = __atomic_load_n(&sh->slot[i].pid, __ATOMIC_RELAXED);
            if (pid <= 0 || pid == sh->main_pid || !proc_sample_read(pid, &w))
                continue;
            ticks += w.cpu_self;
            p.resident_bytes += w.resident_bytes;
            p.open_fds += w.open_fds;
            p.max_fds += w.max_fds;
        }
        p.cpu_seconds = (double)ticks / proc_ticks_per_second();
        p.known = true;
        *out = p;
        if (!sh->workers || !proc_sample_read(sh->main_pid, &again) ||
            again.cpu_children == top.cpu_children)
            return;
    }
}

/* websock_build_info's compiler label, e.g. "gcc 12.2.0" (from the numbers: __VERSION__ may
 * carry a vendor suffix or a trailing space). */
#define STR_(x) #x
#define STR(x) STR_(x)
#if defined(__clang__)
#define COMPILER \
    "clang " STR(__clang_major__) "." STR(__clang_minor__) "." STR(__clang_patchlevel__)
#elif defined(__GNUC__)
#define COMPILER "gcc " STR(__GNUC__) "." STR(__GNUC_MINOR__) "." STR(__GNUC_PATCHLEVEL__)
#else
#define COMPILER "unknown"
#endif

static void build_info(struct metrics_snapshot *s)
{
    s->version = WEBSOCK_VERSION;
    s->compiler = COMPILER;
    s->openssl = ws_crypto_version();
    s->zlib = deflate_zlib_version();
}

struct metrics_snapshot *metrics_snapshot_take(const struct metrics_shared *sh)
{
    int slots = sh ? sh->slots : 0, workers = sh ? sh->workers : 0;
    size_t apps = (size_t)slots * METRICS_APP_CODES;
    size_t size = sizeof(struct metrics_snapshot) +
                  (size_t)workers * sizeof(struct metrics_worker) +
                  apps * (sizeof(uint64_t) + sizeof(uint16_t));
    struct metrics_snapshot *s = calloc(1, size); /* then the arrays, widest first */
    if (!s)
        return NULL;
    s->worker = (struct metrics_worker *)(s + 1);
    s->app_closes = (uint64_t *)(s->worker + workers);
    s->app_code = (uint16_t *)(s->app_closes + apps);
    s->workers = workers;
    build_info(s);
    if (!sh)
        return s;
    for (int i = 0; i < slots; i++) {
        struct metrics one = { 0 };
        load_slot(&sh->slot[i].m, &one);
        add_slot(s, &one);
        if (workers)
            s->worker[i] = (struct metrics_worker){ one.open, one.accepted,
                                                    load(&sh->slot[i].restarts) };
    }
    read_processes(sh, &s->process);
    s->start_seconds = sh->start_seconds;
    return s;
}

void metrics_snapshot_of(const struct metrics *m, struct metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->total = *m;
    for (s->apps = 0; s->apps < METRICS_APP_CODES && m->app_code[s->apps]; s->apps++)
        ;
    s->app_code = s->total.app_code;
    s->app_closes = s->total.app_closes;
    build_info(s);
}

/* snprintf into a bounded buffer that keeps counting past its end. */
struct text {
    char *p;
    size_t cap;
    size_t len;
};

__attribute__((format(printf, 2, 3)))
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->cap ? t->cap - t->len : 0;
    int n = vsnprintf(room ? t->p + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void single(struct text *t, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    family(t, name, type, help);
    put(t, "%s %llu\n", name, (unsigned long long)value);
}

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void put_label(struct text *t, const char *name, const char *value, bool last)
{
    put(t, "%s=\"", name);
    for (const char *c = value ? value : ""; *c; c++) {
        if (*c == '\\' || *c == '"')
            put(t, "\\%c", *c);
        else if (*c == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *c);
    }
    put(t, "\"%s", last ? "" : ",");
}

/* --workers N: what each worker holds and did, labelled worker="1".."N" (separate families, so
 * that summing websock_connections_open never counts a connection twice). */
static void per_worker(struct text *t, const struct metrics_snapshot *s)
{
    if (!s->workers)
        return;
    static const struct { const char *name, *type, *help; } fams[] = {
        { "websock_worker_connections_open", "gauge",
          "WebSocket connections open now in each worker process (0 while it is down)." },
        { "websock_worker_connections_accepted_total", "counter",
          "TCP connections accepted by each worker process, its earlier runs included." },
        { "websock_worker_restarts_total", "counter",
          "Times each worker process died and was started again by the supervisor." },
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        family(t, fams[f].name, fams[f].type, fams[f].help);
        for (int i = 0; i < s->workers; i++) {
            const struct metrics_worker *w = &s->worker[i];
            uint64_t v = f == 0 ? w->open : f == 1 ? w->accepted : w->restarts;
            put(t, "%s{worker=\"%d\"} %llu\n", fams[f].name, i + 1, (unsigned long long)v);
        }
    }
}

/* The usual process_* families, over the whole server, and the build. */
static void process(struct text *t, const struct metrics_snapshot *s)
{
    const struct metrics_process *p = &s->process;
    if (p->known) {
        family(t, "process_cpu_seconds_total", "counter",
               "User and system CPU time of the server: the main process and every worker, "
               "exited ones included, in seconds.");
        put(t, "process_cpu_seconds_total %.2f\n", p->cpu_seconds);
        single(t, "process_resident_memory_bytes", "gauge",
               "Resident memory of the main process and every worker, summed (pages they "
               "share are counted in each).", p->resident_bytes);
        single(t, "process_open_fds", "gauge",
               "Open file descriptors of the main process and every worker, summed.",
               p->open_fds);
        single(t, "process_max_fds", "gauge",
               "Descriptor limits (soft) of the main process and every worker, summed.",
               p->max_fds);
        family(t, "process_start_time_seconds", "gauge",
               "Start time of the server's main process, seconds since the Unix epoch.");
        put(t, "process_start_time_seconds %.3f\n", s->start_seconds);
    }
    family(t, "websock_build_info", "gauge",
           "Always 1; the labels say which websock this is and what it was built with.");
    put(t, "websock_build_info{");
    put_label(t, "version", s->version, false);
    put_label(t, "compiler", s->compiler, false);
    put_label(t, "openssl", s->openssl, false);
    put_label(t, "zlib", s->zlib, true);
    put(t, "} 1\n");
}

size_t metrics_format(const struct metrics_snapshot *s, char *out, size_t cap)
{
    const struct metrics *m = &s->total;
    struct text t = { out, cap, 0 };
    if (cap)
        out[0] = '\0';
    single(&t, "websock_connections_open", "gauge",
           "WebSocket connections open now (upgraded, TCP not yet closed).", m->open);
    single(&t, "websock_connections_accepted_total", "counter",
           "TCP connections accepted, refused ones included.", m->accepted);
    single(&t, "websock_upgrades_total", "counter",
           "Opening handshakes answered with 101 Switching Protocols.", m->upgrades);
    single(&t, "websock_messages_received_total", "counter",
           "Data messages (text or binary) received whole and valid.", m->echo.messages_in);
    single(&t, "websock_messages_sent_total", "counter",
           "Data messages echoed (their final frame queued for sending).", m->echo.messages_out);
    single(&t, "websock_payload_received_bytes_total", "counter",
           "Payload bytes of data frames received on open connections (no headers, no control "
           "frames).", m->echo.bytes_in);
    single(&t, "websock_payload_sent_bytes_total", "counter",
           "Payload bytes of data frames queued for sending (no headers, no control frames).",
           m->echo.bytes_out);

    family(&t, "websock_closes_total", "counter",
           "WebSocket connections ended, by the code of the Close websock sent (the peer's code "
           "echoed, or its own 1001, 1002, 1007, 1009); 1006: it sent none.");
    for (int i = 0; i < 16; i++)
        if (m->closes[i])
            put(&t, "websock_closes_total{code=\"%d\"} %llu\n", 1000 + i,
                (unsigned long long)m->closes[i]);
    for (size_t i = 0; i < s->apps; i++)
        put(&t, "websock_closes_total{code=\"%u\"} %llu\n", s->app_code[i],
            (unsigned long long)s->app_closes[i]);
    if (m->other_closes)
        put(&t, "websock_closes_total{code=\"other\"} %llu\n",
            (unsigned long long)m->other_closes);

    family(&t, "websock_handshake_rejections_total", "counter",
           "HTTP requests answered with an error status instead of an upgrade or a page.");
    for (size_t i = 0; i < METRICS_STATUS_COUNT; i++)
        put(&t, "websock_handshake_rejections_total{status=\"%d\"} %llu\n", statuses[i],
            (unsigned long long)m->rejected[i]);

    family(&t, "websock_ip_limited_total", "counter",
           "Connections refused because their client address was over --max-connections-per-ip "
           "(reason=\"connections\") or --handshake-rate-per-ip (reason=\"rate\"), answered "
           "with 429 or, in a flood, closed at once.");
    put(&t, "websock_ip_limited_total{reason=\"connections\"} %llu\n",
        (unsigned long long)m->ip_limited[METRICS_IP_CONNECTIONS]);
    put(&t, "websock_ip_limited_total{reason=\"rate\"} %llu\n",
        (unsigned long long)m->ip_limited[METRICS_IP_RATE]);

    single(&t, "websock_deflate_negotiated_total", "counter",
           "Upgrades that agreed permessage-deflate.", m->deflate_negotiated);
    family(&t, "websock_deflate_bytes_total", "counter",
           "Payload bytes of compressed messages: on the wire (form=\"compressed\") and "
           "uncompressed (form=\"plain\"), received (direction=\"in\", inflated) or sent "
           "(direction=\"out\", before deflating).");
    const struct { const char *dir, *form; uint64_t v; } z[] = {
        { "in", "compressed", m->echo.z_wire_in },   { "in", "plain", m->echo.z_plain_in },
        { "out", "compressed", m->echo.z_wire_out }, { "out", "plain", m->echo.z_plain_out },
    };
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
        put(&t, "websock_deflate_bytes_total{direction=\"%s\",form=\"%s\"} %llu\n", z[i].dir,
            z[i].form, (unsigned long long)z[i].v);
    single(&t, "websock_tls_handshakes_total", "counter",
           "TLS handshakes completed on --tls-port.", m->tls_handshakes);
    single(&t, "websock_tls_handshake_failures_total", "counter",
           "TLS connections that ended before their handshake completed (bad input, an old "
           "protocol, no common cipher, the handshake timeout).", m->tls_failures);
    single(&t, "websock_tls_ktls_total", "counter",
           "TLS handshakes after which kernel TLS (kTLS) does the sending: 0 where the kernel "
           "offers no tls ULP.", m->tls_ktls);
    per_worker(&t, s);
    process(&t, s);
    return t.len;
}
