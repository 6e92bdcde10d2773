#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "activation.h"
#include "conn.h"
#include "defaults.h"
#include "deflate.h"
#include "handshake.h"
#include "net.h"
#include "notify.h"

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Raises the descriptor limit as far as allowed and derives --max-connections 0 from it. */
static uint64_t connection_limit(struct server *srv)
{
    struct rlimit rl;
    uint64_t fds = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        fds = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
    }
    uint64_t fit = fds > 2 * FD_RESERVE ? fds - FD_RESERVE : fds / 2;
    uint64_t want = srv->opt.max_connections ? srv->opt.max_connections : fit;
    if (want > fit)
        log_warn(&srv->log, "--max-connections %llu is above what the descriptor limit %llu allows",
                 (unsigned long long)want, (unsigned long long)fds);
    return want;
}

/* The per-address table: room for every connection websock may hold, each from its own
 * address, plus addresses that only have rate history; a keyed hash with a random key. */
static int per_ip_init(struct server *srv)
{
    uint64_t seed[2] = { 0, 0 };
    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed[0] = (uint64_t)monotonic_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    uint64_t cap = srv->max_conns + IP_LIMIT_TABLE_SPARE;
    if (cap > IP_LIMIT_TABLE_MAX)
        cap = IP_LIMIT_TABLE_MAX;
    const struct options *o = &srv->opt;
    if (ip_limit_init(&srv->per_ip, (uint32_t)cap, o->max_connections_per_ip,
                      o->handshake_rate_per_ip, o->handshake_burst_per_ip, seed) < 0) {
        log_error(&srv->log, "out of memory for the per-address table");
        return -1;
    }
    return 0;
}

/* Tells systemd (Type=notify) that the listener accepts connections. */
static void announce_ready(struct server *srv)
{
    char state[64];
    snprintf(state, sizeof state, "READY=1\nMAINPID=%d", (int)getpid());
    if (notify_service_manager(state) < 0)
        log_warn(&srv->log, "cannot notify the service manager: %s", strerror(errno));
}

/* The sockets a service manager passed (socket activation), or our own on the address the
 * command line names. */
static int open_listener(struct server *srv, const struct options *opt)
{
    int fds[MAX_LISTEN_FDS];
    int n = activation_take(&srv->log, opt, fds, MAX_LISTEN_FDS);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++)
        srv->listeners[i].fd = fds[i];
    srv->listener_count = n;
    srv->activated = n > 0;
    if (n)
        return 0;
    char err[NET_ERR_LEN];
    if (!opt->unix_path && !opt->port)
        return 0; /* --port 0: TLS only */
    srv->listener_count = 1;
    if (opt->unix_path)
        srv->listeners[0].fd = net_listen_unix(opt->unix_path, err, sizeof err);
    else
        srv->listeners[0].fd = net_listen(opt->bind, opt->port, err, sizeof err);
    if (srv->listeners[0].fd < 0) {
        log_error(&srv->log, "%s", err);
        return errno == EADDRINUSE ? 1 : -1;
    }
    srv->owns_unix_path = opt->unix_path != NULL;
    return 0;
}

static void close_listeners(struct server *srv)
{
    for (int i = 0; i < srv->listener_count; i++) {
        if (srv->listeners[i].fd < 0)
            continue;
        loop_set(srv->loop, &srv->listeners[i], 0);
        close(srv->listeners[i].fd);
        srv->listeners[i].fd = -1;
    }
    if (srv->tls_listener.fd >= 0) {
        loop_set(srv->loop, &srv->tls_listener, 0);
        close(srv->tls_listener.fd);
        srv->tls_listener.fd = -1;
    }
}

/* The TLS context from --tls-cert and --tls-key: at start, and again on SIGHUP. On failure the
 * current one (if any) stays. */
static int load_tls(struct server *srv)
{
    char err[512], serial[80];
    struct tls_ctx *ctx = tls_ctx_new(srv->opt.tls_cert, srv->opt.tls_key, err, sizeof err);
    if (!ctx) {
        if (srv->tls)
            log_error(&srv->log, "SIGHUP: TLS certificate not reloaded, keeping the current "
                      "one: %s", err);
        else
            log_error(&srv->log, "TLS: %s", err);
        return -1;
    }
    tls_ctx_describe(ctx, serial, sizeof serial);
    log_info(&srv->log, "%sTLS certificate %s %s (serial %s), key %s", srv->tls ? "SIGHUP: " : "",
             srv->tls ? "reloaded from" : "loaded from", srv->opt.tls_cert, serial,
             srv->opt.tls_key);
    tls_ctx_free(srv->tls); /* live connections keep their reference to the old one */
    srv->tls = ctx;
    return 0;
}

/* The --tls-port listener (a worker gets its own from the supervisor) and the context. */
static int open_tls(struct server *srv, const struct worker_ctx *worker)
{
    if (!srv->opt.tls_port)
        return 0;
    if (load_tls(srv) < 0)
        return -1;
    srv->tls_wbuf = malloc(TLS_RECORD_SIZE);
    if (!srv->tls_wbuf) {
        log_error(&srv->log, "out of memory for TLS");
        return -1;
    }
    if (worker) {
        srv->tls_listener.fd = worker->tls_fd;
    } else {
        char err[NET_ERR_LEN];
        srv->tls_listener.fd = net_listen(srv->opt.bind, srv->opt.tls_port, err, sizeof err);
        if (srv->tls_listener.fd < 0) {
            log_error(&srv->log, "%s", err);
            return errno == EADDRINUSE ? 1 : -1;
        }
    }
    if (!worker || worker->index == 1)
        log_info(&srv->log, "TLS: kTLS %s", tls_kernel_offers_ktls()
                 ? "offered by the kernel: used where the cipher allows (websock_tls_ktls_total)"
                 : "not offered by this kernel (no tls ULP): TLS runs in user space");
    return 0;
}

/* Which listener w is, or -1 for any other watch (a connection, the signals). */
static int listener_of(const struct server *srv, const struct io_watch *w)
{
    for (int i = 0; i < srv->listener_count; i++)
        if (w == &srv->listeners[i])
            return i;
    return -1;
}

/* "127.0.0.1:8888, [::1]:8888": where the passed sockets listen, for the start-up line. */
static const char *listener_addresses(const struct server *srv, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < srv->listener_count && n < len; i++) {
        char addr[ACTIVATION_ADDR_LEN];
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "",
                              activation_describe(srv->listeners[i].fd, addr, sizeof addr));
    }
    return out;
}

static void close_peers(struct server *srv)
{
    for (int i = 0; i < srv->peers; i++)
        close(srv->peer_fds[i]);
    srv->peers = srv->tls_peers = 0;
}

/* Takes the other workers' sockets from the supervisor, to serve what waits on them. */
static void watch_peers(struct server *srv, const struct worker_ctx *worker)
{
    srv->peer_fds = worker->peer_fds;
    srv->peers = worker->peers;
    srv->tls_peers = worker->tls_peers;
    srv->takeovers.interval_ms = LOG_RATE_INTERVAL_MS;
    if (!srv->peers)
        return;
    srv->peer_poll = calloc((size_t)srv->peers, sizeof *srv->peer_poll);
    srv->peer_waiting = calloc((size_t)srv->peers, sizeof *srv->peer_waiting);
    if (!srv->peer_poll || !srv->peer_waiting) {
        log_warn(&srv->log, "out of memory: not watching the other workers' sockets");
        close_peers(srv);
        return;
    }
    for (int i = 0; i < srv->peers; i++)
        srv->peer_poll[i] = (struct pollfd){ .fd = srv->peer_fds[i], .events = POLLIN };
    srv->peer_check_ms = srv->now_ms + PEER_CHECK_MS;
}

int server_init(struct server *srv, const struct options *opt, const struct worker_ctx *worker)
{
    memset(srv, 0, sizeof *srv);
    srv->opt = *opt;
    log_setup(&srv->log, opt->log_level, opt->log_format, opt->access_log);
    srv->worker = worker ? worker->index : 1;
    srv->limits.max_message = opt->max_message;
    srv->limits.coalesce_max = opt->coalesce_max;
    srv->limits.inflate_turn = DEFLATE_TURN;
    srv->signals.fd = srv->spare_fd = -1;
    for (int i = 0; i < MAX_LISTEN_FDS; i++)
        srv->listeners[i].fd = -1;
    srv->tls_listener.fd = -1;
    timer_list_init(&srv->handshaking, opt->handshake_timeout_ms);
    int64_t ping = opt->ping_interval_ms, idle = opt->idle_timeout_ms;
    timer_list_init(&srv->open, ping && (!idle || ping < idle) ? ping : idle);
    int64_t check = opt->send_timeout_ms / SEND_CHECKS;
    timer_list_init(&srv->sending, opt->send_timeout_ms && !check ? 1 : check);
    timer_list_init(&srv->closing, opt->close_timeout_ms);
    srv->now_ms = monotonic_ms();
    srv->fd_refusals.interval_ms = LOG_RATE_INTERVAL_MS;
    srv->close_timeouts.interval_ms = LOG_RATE_INTERVAL_MS;

    if (worker)
        srv->log.pid = (int)getpid();
    /* Counters live in a shared region: the supervisor's, one slot per worker, or a region of
     * one slot of its own. */
    srv->shared = worker ? worker->shared : metrics_shared_map(0);
    if (!srv->shared) {
        log_error(&srv->log, "cannot map the metrics region: %s", strerror(errno));
        return -1;
    }
    srv->metrics = &srv->shared->slot[worker ? worker->index - 1 : 0].m;
    srv->limits.counts = &srv->metrics->echo;

    srv->max_conns = connection_limit(srv);
    srv->per_ip_on = opt->max_connections_per_ip || opt->handshake_rate_per_ip;
    if (srv->per_ip_on && per_ip_init(srv) < 0)
        return -1;
    if (worker) {
        for (int i = 0; i < worker->listeners; i++)
            srv->listeners[i].fd = worker->listen_fds[i];
        srv->listener_count = worker->listeners;
        srv->activated = worker->activated;
        watch_peers(srv, worker);
    } else {
        int rc = open_listener(srv, opt);
        if (rc)
            return rc;
    }
    int trc = open_tls(srv, worker);
    if (trc)
        return trc;
    srv->signals.fd = net_signalfd();
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv->loop = loop_create();
    /* Page-aligned: the kernel's copy into it (rep movsb) runs measurably slower into a
     * destination that is not cache-line aligned, and malloc gives 16 bytes. */
    srv->rbuf = aligned_alloc(4096, READ_BUFFER_SIZE);
    /* zlib streams of messages in flight may take half of the buffer cap. */
    srv->limits.zpool = zpool_new(opt->max_buffered / 2);
    srv->limits.inflate_buf = malloc(DEFLATE_CHUNK);
    bool watching = srv->loop != NULL;
    for (int i = 0; watching && i < srv->listener_count; i++)
        watching = loop_set(srv->loop, &srv->listeners[i], IO_READ) == 0;
    if (watching && srv->tls_listener.fd >= 0)
        watching = loop_set(srv->loop, &srv->tls_listener, IO_READ) == 0;
    if (srv->signals.fd < 0 || srv->spare_fd < 0 || !watching || !srv->rbuf ||
        !srv->limits.zpool || !srv->limits.inflate_buf ||
        loop_set(srv->loop, &srv->signals, IO_READ) < 0) {
        log_error(&srv->log, "cannot set up the event loop: %s", strerror(errno));
        return -1;
    }
    /* libcrypto sets up its SHA-1 provider on first use (about 2 MiB); do it now, so that cost
     * shows in the idle footprint instead of surprising the first client. */
    char warm[WS_ACCEPT_LEN + 1];
    ws_accept_key("warm-up", 7, warm);
    char addrs[512];
    if (srv->activated)
        log_info(&srv->log, "websock %s listening on %s (from the service manager), path %s",
                 WEBSOCK_VERSION, listener_addresses(srv, addrs, sizeof addrs), opt->path);
    else if (opt->unix_path)
        log_info(&srv->log, "websock %s listening on Unix socket %s, path %s", WEBSOCK_VERSION,
                 opt->unix_path, opt->path);
    else {
        char urls[512];
        options_listen_urls(opt, urls, sizeof urls);
        log_info(&srv->log, "websock %s listening on %s", WEBSOCK_VERSION, urls);
    }
    if (worker)
        log_info(&srv->log, "worker %d of %d running", worker->index, opt->workers);
    else
        announce_ready(srv);
    return 0;
}

void server_destroy(struct server *srv)
{
    conn_free_closed(srv);
    for (int i = 0; i < srv->listener_count; i++)
        if (srv->listeners[i].fd >= 0)
            close(srv->listeners[i].fd);
    loop_destroy(srv->loop);
    if (srv->tls_listener.fd >= 0)
        close(srv->tls_listener.fd);
    tls_ctx_free(srv->tls);
    free(srv->tls_wbuf);
    if (srv->owns_unix_path)
        unlink(srv->opt.unix_path);
    if (srv->signals.fd >= 0)
        close(srv->signals.fd);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    close_peers(srv);
    free(srv->peer_fds);
    free(srv->peer_poll);
    free(srv->peer_waiting);
    free(srv->rbuf);
    zpool_free(srv->limits.zpool);
    free(srv->limits.inflate_buf);
    buf_free(&srv->scratch.bytes);
    ip_limit_destroy(&srv->per_ip);
    metrics_shared_unmap(srv->shared);
}

/* Out of descriptors: the spare one lets us accept the client and close it at once, instead
 * of leaving it queued and the listener spinning. Returns false once nothing is queued. */
static bool refuse_one(struct server *srv, int listen_fd)
{
    close(srv->spare_fd);
    struct ip_addr peer;
    bool has_peer;
    int fd = net_accept(listen_fd, &peer, &has_peer);
    int e = errno;
    if (fd >= 0)
        close(fd);
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* accept reports EMFILE before it looks at the queue, so this is how a drained
         * queue shows: nothing to refuse, nothing to log. */
        if (e != EAGAIN && e != EWOULDBLOCK && e != ECONNABORTED && e != EINTR)
            log_warn(&srv->log, "accept: %s", strerror(e));
        return false;
    }
    srv->metrics->accepted++;
    /* One line at once, then one per interval with the count: a flood must not flood the log. */
    if (log_rate_hit(&srv->fd_refusals, srv->now_ms, 1))
        log_warn(&srv->log, "out of file descriptors: refusing connections (%llu open); "
                 "further refusals are counted", (unsigned long long)srv->conn_count);
    return true;
}

static void log_counts_due(struct server *srv)
{
    uint64_t n = log_rate_due(&srv->fd_refusals, srv->now_ms);
    if (n)
        log_warn(&srv->log, "out of file descriptors: refused %llu more connection(s) in the "
                 "last %lld ms", (unsigned long long)n, (long long)srv->fd_refusals.interval_ms);
    n = log_rate_due(&srv->takeovers, srv->now_ms);
    if (n)
        log_info(&srv->log, "took over %llu more connection(s) from other workers' sockets in "
                 "the last %lld ms", (unsigned long long)n, (long long)srv->takeovers.interval_ms);
    n = log_rate_due(&srv->close_timeouts, srv->now_ms);
    if (n)
        log_info(&srv->log, "no Close from %llu more peer(s) within %lld ms, in the last %lld ms",
                 (unsigned long long)n, (long long)srv->opt.close_timeout_ms,
                 (long long)srv->close_timeouts.interval_ms);
}

/* Accepts what waits on listen_fd, in a bounded batch (so a connection storm cannot starve
 * open clients); returns how many connections it took (refused ones included). */
static int accept_from(struct server *srv, int listen_fd, bool tls)
{
    int taken = 0;
    for (; taken < 64; taken++) {
        struct ip_addr peer;
        bool has_peer;
        int fd = net_accept(listen_fd, &peer, &has_peer);
        if (fd >= 0) {
            srv->metrics->accepted++;
            conn_accept(srv, fd, has_peer ? &peer : NULL, tls);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            if (refuse_one(srv, listen_fd))
                continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
                   errno != EINTR) {
            log_warn(&srv->log, "accept: %s", strerror(errno));
        }
        break;
    }
    return taken;
}

/* Every PEER_CHECK_MS: a peer socket with connections waiting now and at the last check has
 * nobody accepting on it (its worker is dead, in its restart back-off, stopped or hung), or
 * one too busy to keep up; either way this worker takes them. One poll per check, so an idle
 * server stays cheap, and a healthy worker's own socket is never raced for a fresh client. */
static void check_peers(struct server *srv)
{
    if (!srv->peers || srv->now_ms < srv->peer_check_ms)
        return;
    srv->peer_check_ms = srv->now_ms + PEER_CHECK_MS;
    int ready = poll(srv->peer_poll, (nfds_t)srv->peers, 0);
    int taken = 0;
    for (int i = 0; i < srv->peers; i++) {
        bool waiting = ready > 0 && (srv->peer_poll[i].revents & POLLIN);
        if (waiting && srv->peer_waiting[i])
            taken += accept_from(srv, srv->peer_fds[i], i >= srv->peers - srv->tls_peers);
        srv->peer_waiting[i] = waiting;
    }
    if (taken && log_rate_hit(&srv->takeovers, srv->now_ms, (uint64_t)taken))
        log_info(&srv->log, "took over %d connection(s) left waiting on another worker's socket "
                 "(that worker is down, stopped or overloaded)", taken);
}

/* Applies fn to every connection of list l; fn must move the connection out of l. */
static void for_each_leaving(struct server *srv, struct timer_list *l,
                             void (*fn)(struct server *, struct timer_link *))
{
    while (l->head.next != &l->head)
        fn(srv, l->head.next);
}

void server_stop_moved(struct server *srv)
{
    /* The clock now, not the round's: on a machine with more busy processes than cores one
     * round of the loop can take seconds, and the supervisor must not take that for a stall. */
    srv->stop_progress_ms = monotonic_ms();
    __atomic_store_n(&srv->shared->slot[srv->worker - 1].stop_progress_ms, srv->stop_progress_ms,
                     __ATOMIC_RELAXED);
}

/* Close 1001 goes out in batches, and the worker reads replies between them: with 18,000
 * clients per worker and dozens of workers on two cores, writing every Close first took
 * seconds of a worker's turns before it read the first reply (and showed no progress). */
#define STOP_BATCH 512

static bool stop_pending(const struct server *srv)
{
    return srv->stopping &&
           (srv->open.head.next != &srv->open.head || srv->sending.head.next != &srv->sending.head);
}

static void stop_batch(struct server *srv)
{
    int n = 0;
    struct timer_list *lists[] = { &srv->open, &srv->sending };
    for (size_t i = 0; i < 2; i++)
        while (n < STOP_BATCH && lists[i]->head.next != &lists[i]->head) {
            conn_begin_shutdown(srv, lists[i]->head.next); /* moves it to closing */
            n++;
        }
    if (n)
        server_stop_moved(srv); /* Closes sent: the stop is moving */
}

static void begin_stop(struct server *srv)
{
    log_info(&srv->log, "shutting down: closing %llu connection(s) with 1001",
             (unsigned long long)srv->conn_count);
    srv->stopping = true;
    /* systemd then knows the exit that follows is not a crash. */
    notify_service_manager("STOPPING=1");
    server_stop_moved(srv);
    /* Not one more accept: what is queued stays in the kernel. Sockets passed by a service
     * manager stay open there, so it keeps queueing for the next process; others close once
     * no process holds them. */
    close_listeners(srv);
    close_peers(srv);
    /* Connections still in their handshake are not dropped: each gets its answer (a 101,
     * then Close 1001 at once), within the shutdown bound. */
    stop_batch(srv); /* the rest in the following rounds of the loop */
}

static void abort_all(struct server *srv)
{
    for_each_leaving(srv, &srv->handshaking, conn_abort);
    for_each_leaving(srv, &srv->open, conn_abort);
    for_each_leaving(srv, &srv->sending, conn_abort);
    for_each_leaving(srv, &srv->closing, conn_abort);
}

/* SIGUSR1: one line an operator can ask for without scraping /metrics. */
static void log_status(struct server *srv)
{
    const struct metrics *m = srv->metrics;
    log_info(&srv->log, "SIGUSR1: status: %llu connection(s), %llu WebSocket(s) open, "
             "%llu accepted, %llu upgraded, %llu message(s) echoed%s",
             (unsigned long long)srv->conn_count, (unsigned long long)m->open,
             (unsigned long long)m->accepted, (unsigned long long)m->upgrades,
             (unsigned long long)m->echo.messages_out, srv->stopping ? ", stopping" : "");
}

/* Every signal websock blocks arrives here; none of them may end the process unannounced. */
static void on_signal(struct server *srv)
{
    struct signalfd_siginfo si;
    while (read(srv->signals.fd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        switch (sig) {
        case SIGHUP:
            /* The conventional "reload": the TLS certificate and key are read anew. */
            if (srv->opt.tls_port)
                load_tls(srv);
            else
                log_info(&srv->log, "SIGHUP: nothing to reload: the log is stderr (no file to "
                         "reopen) and there is no certificate; still running");
            break;
        case SIGUSR1:
            log_status(srv);
            break;
        case SIGUSR2:
        case SIGALRM:
            log_info(&srv->log, "%s: ignored", net_signal_name(sig));
            break;
        default: /* TERM, INT, QUIT: a graceful stop; a second one aborts */
            if (srv->stopping && srv->conn_count) {
                /* Not a clean exit: the status says so, as a shell expects after Ctrl-C. */
                srv->forced_by = sig;
                log_warn(&srv->log, "second signal (%s): dropping %llu connection(s) without "
                         "waiting for their Close; exit status %d", net_signal_name(sig),
                         (unsigned long long)srv->conn_count, 128 + sig);
                abort_all(srv);
            } else if (srv->stopping) {
                log_info(&srv->log, "second signal (%s): nothing left to drop",
                         net_signal_name(sig));
            } else {
                log_info(&srv->log, "%s: stopping", net_signal_name(sig));
                begin_stop(srv);
            }
        }
    }
}

/* The buffer total dropped: connections paused by the cap may be read again. A scan of the
 * open connections, but only after the cap was hit and the total then fell. */
static void resume_paused(struct server *srv)
{
    srv->resume_scan = false;
    struct timer_list *lists[] = { &srv->open, &srv->sending };
    for (size_t i = 0; i < 2 && srv->paused_by_cap; i++) {
        struct timer_link *t = lists[i]->head.next;
        while (t != &lists[i]->head && srv->paused_by_cap) {
            struct timer_link *next = t->next;
            conn_resume(srv, t);
            t = next;
        }
    }
}

/* While a stop moves (some connection finished within the close timeout), Close replies not
 * read yet are not given up on: with many connections a busy worker reads them seconds after
 * it sent its Close 1001, and closing first would answer each late reply with an RST. */
static bool closes_on_hold(const struct server *srv)
{
    return srv->stopping && srv->now_ms - srv->stop_progress_ms < srv->opt.close_timeout_ms;
}

static int next_timeout_ms(struct server *srv)
{
    int64_t best = -1;
    struct timer_list *lists[] = { &srv->handshaking, &srv->open, &srv->sending, &srv->closing };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        int64_t w = timer_wait_ms(lists[i], srv->now_ms);
        int64_t hold = srv->stop_progress_ms + srv->opt.close_timeout_ms - srv->now_ms;
        if (w >= 0 && lists[i] == &srv->closing && closes_on_hold(srv) && w < hold)
            w = hold;
        if (w >= 0 && (best < 0 || w < best))
            best = w;
    }
    int64_t waits[] = {
        log_rate_wait_ms(&srv->fd_refusals, srv->now_ms),
        log_rate_wait_ms(&srv->takeovers, srv->now_ms),
        log_rate_wait_ms(&srv->close_timeouts, srv->now_ms),
        srv->peers ? (srv->peer_check_ms > srv->now_ms ? srv->peer_check_ms - srv->now_ms : 0)
                   : -1,
    };
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++)
        if (waits[i] >= 0 && (best < 0 || waits[i] < best))
            best = waits[i];
    if (srv->backlog || stop_pending(srv))
        return 0; /* input or Closes are waiting: look at events, do not wait for them */
    int64_t w;
    if (srv->stopping) {
        int64_t bound = srv->stop_progress_ms + srv->opt.shutdown_timeout_ms;
        w = bound > srv->now_ms ? bound - srv->now_ms : 0;
        if (best < 0 || w < best)
            best = w;
    }
    return best > 60000 ? 60000 : (int)best;
}

static void expire_timers(struct server *srv)
{
    struct timer_list *lists[] = { &srv->handshaking, &srv->open, &srv->sending, &srv->closing };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        struct timer_link *t;
        if (lists[i] == &srv->closing && closes_on_hold(srv))
            continue;
        while ((t = timer_due(lists[i], srv->now_ms)))
            conn_on_timeout(srv, t);
    }
    log_counts_due(srv);
    if (srv->stopping && srv->now_ms - srv->stop_progress_ms >= srv->opt.shutdown_timeout_ms &&
        srv->conn_count) {
        log_warn(&srv->log, "shutdown bound passed: no connection finished its close for %lld ms "
                 "(--shutdown-timeout): dropping %llu connection(s)",
                 (long long)srv->opt.shutdown_timeout_ms, (unsigned long long)srv->conn_count);
        abort_all(srv);
    }
}

int server_run(struct server *srv)
{
    struct io_event events[256];
    while (!(srv->stopping && srv->conn_count == 0)) {
        int n = loop_wait(srv->loop, events, 256, next_timeout_ms(srv));
        if (n < 0) {
            log_error(&srv->log, "epoll_wait: %s", strerror(errno));
            return 1;
        }
        srv->now_ms = monotonic_ms();
        srv->tls_turn = TLS_HANDSHAKES_PER_TURN;
        for (int i = 0; i < n; i++) {
            struct io_watch *w = events[i].watch;
            int l = listener_of(srv, w);
            if (l >= 0) {
                if (srv->listeners[l].fd >= 0)
                    accept_from(srv, srv->listeners[l].fd, false);
            } else if (w == &srv->tls_listener) {
                if (w->fd >= 0)
                    accept_from(srv, w->fd, true);
            } else if (w == &srv->signals) {
                on_signal(srv);
            } else {
                conn_on_event(srv, w, events[i].events);
            }
        }
        if (stop_pending(srv))
            stop_batch(srv);
        expire_timers(srv);
        check_peers(srv);
        if (srv->resume_scan)
            resume_paused(srv);
        conn_run_backlog(srv);
        conn_free_closed(srv);
    }
    if (srv->forced_by) {
        log_warn(&srv->log, "stopped: clients were dropped (forced by a second %s)",
                 net_signal_name(srv->forced_by));
        return 128 + srv->forced_by;
    }
    log_info(&srv->log, "stopped");
    return 0;
}
