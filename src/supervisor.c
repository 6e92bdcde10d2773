#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "activation.h"
#include "defaults.h"
#include "log.h"
#include "net.h"
#include "notify.h"
#include "tls.h"

struct worker_slot {
    pid_t pid;              /* 0: not running */
    int listen_fd;          /* the worker's own SO_REUSEPORT socket; -1 with shared ones */
    int tls_fd;             /* its own --tls-port socket, or -1 */
    int64_t started_ms;
    int64_t restart_at_ms;  /* while not running (and not stopping): when to fork it again */
    unsigned quick_exits;   /* deaths in a row, each soon after its start */
    bool killed;            /* stopping: SIGKILLed for a stalled stop, waited for now */
};

struct supervisor {
    const struct options *opt;
    struct logger log;
    pid_t pid;
    struct worker_slot *slots;
    int n;
    struct metrics_shared *shared; /* every worker's counters, mapped before the first fork */
    sigset_t signals;       /* the handled ones and CHLD: blocked, taken with sigtimedwait */
    bool stopping;
    int64_t bound_ms;       /* stopping: a worker whose closes did not move for this long is
                               killed (its --shutdown-timeout, plus a grace) */
    bool unclean;           /* a worker did not exit with status 0 after the stop */
    int forced_by;          /* a second stop signal: the workers drop their clients */
    bool owns_unix_path;
    /* Sockets every worker accepts on: the Unix socket, or those the service manager passed. */
    int shared_fds[MAX_LISTEN_FDS];
    int shared_count;     /* how many of shared_fds are open */
    bool activated;         /* shared_fds came from the service manager (LISTEN_FDS) */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_listeners(struct supervisor *sv)
{
    char err[NET_ERR_LEN];
    const struct options *opt = sv->opt;
    int n = activation_take(&sv->log, opt, sv->shared_fds, MAX_LISTEN_FDS);
    if (n < 0)
        return -1;
    sv->shared_count = n;
    sv->activated = n > 0;
    if (n) {
        return 0;
    } else if (opt->unix_path) {
        int fd = net_listen_unix(opt->unix_path, err, sizeof err);
        sv->shared_fds[0] = fd;
        sv->shared_count = fd >= 0;
        sv->owns_unix_path = fd >= 0;
        if (fd >= 0)
            return 0;
    } else if (opt->port) {
        int *fds = malloc((size_t)sv->n * sizeof *fds);
        int rc = fds ? net_listen_shared(opt->bind, opt->port, sv->n, fds, err, sizeof err) : -1;
        if (!fds)
            snprintf(err, sizeof err, "out of memory");
        for (int i = 0; rc == 0 && i < sv->n; i++)
            sv->slots[i].listen_fd = fds[i];
        free(fds);
        if (rc == 0)
            return 0;
    } else {
        return 0; /* --port 0: TLS only */
    }
    log_error(&sv->log, "%s", err);
    return -1;
}

/* --tls-port: one SO_REUSEPORT socket per worker, like the plain port's. The certificate is
 * checked here once, so that a bad one stops the start instead of every worker. */
static int open_tls_listeners(struct supervisor *sv)
{
    const struct options *opt = sv->opt;
    if (!opt->tls_port)
        return 0;
    char err[NET_ERR_LEN];
    struct tls_ctx *check = tls_ctx_new(opt->tls_cert, opt->tls_key, err, sizeof err);
    if (!check) {
        log_error(&sv->log, "TLS: %s", err);
        return -1;
    }
    tls_ctx_free(check);
    int *fds = malloc((size_t)sv->n * sizeof *fds);
    int rc = fds ? net_listen_shared(opt->bind, opt->tls_port, sv->n, fds, err, sizeof err) : -1;
    if (!fds)
        snprintf(err, sizeof err, "out of memory");
    for (int i = 0; rc == 0 && i < sv->n; i++)
        sv->slots[i].tls_fd = fds[i];
    free(fds);
    if (rc < 0)
        log_error(&sv->log, "%s", err);
    return rc;
}

/* The supervisor's copies; worker keep (-1: none) keeps its own socket and the shared ones
 * until it stops. */
static void close_listeners(struct supervisor *sv, int keep)
{
    for (int i = 0; i < sv->n; i++) {
        if (sv->slots[i].listen_fd >= 0 && i != keep)
            close(sv->slots[i].listen_fd);
        if (sv->slots[i].tls_fd >= 0 && i != keep)
            close(sv->slots[i].tls_fd);
        if (i != keep)
            sv->slots[i].listen_fd = sv->slots[i].tls_fd = -1;
    }
    if (keep >= 0)
        return;
    for (int i = 0; i < sv->shared_count; i++)
        close(sv->shared_fds[i]);
    sv->shared_count = 0;
}

/* In the child after fork: shed the supervisor's state and become worker i. */
static void become_worker(struct supervisor *sv, int i, struct worker_ctx *worker)
{
    /* If the supervisor dies (even by SIGKILL), the worker drains and exits instead of
     * serving on unsupervised. Checked after setting it, in case that already happened. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sv->pid)
        raise(SIGTERM);
    /* Its own process group: a Ctrl-C at the terminal reaches the supervisor alone, which
     * passes one SIGTERM on (a second signal would make the worker drop its clients). */
    setpgid(0, 0);
    /* Only the main process talks to the service manager. */
    unsetenv("NOTIFY_SOCKET");
    /* The handled signals stay blocked: the server's signalfd picks up any already pending. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    if (sv->shared_count) {
        memcpy(worker->listen_fds, sv->shared_fds, (size_t)sv->shared_count * sizeof(int));
        worker->listeners = sv->shared_count;
    } else {
        worker->listen_fds[0] = sv->slots[i].listen_fd;
        worker->listeners = sv->slots[i].listen_fd >= 0;
    }
    worker->tls_fd = sv->slots[i].tls_fd;
    worker->activated = sv->activated;
    worker->index = i + 1;
    worker->shared = sv->shared;
    __atomic_store_n(&sv->shared->slot[i].pid, (int32_t)getpid(), __ATOMIC_RELAXED);
    /* The other workers' sockets stay open here: the worker serves what waits on them while
     * their worker is down or stuck (shared sockets need no such help): the plain ones, then
     * the --tls-port ones (check_peers accepts TLS connections from those). */
    worker->peers = worker->tls_peers = 0;
    worker->peer_fds = malloc(2 * (size_t)sv->n * sizeof *worker->peer_fds);
    for (int j = 0; worker->peer_fds && j < sv->n; j++)
        if (sv->slots[j].listen_fd >= 0 && j != i)
            worker->peer_fds[worker->peers++] = sv->slots[j].listen_fd;
    for (int j = 0; worker->peer_fds && j < sv->n; j++)
        if (sv->slots[j].tls_fd >= 0 && j != i) {
            worker->peer_fds[worker->peers++] = sv->slots[j].tls_fd;
            worker->tls_peers++;
        }
    if (!worker->peer_fds)
        close_listeners(sv, i);
    free(sv->slots);
    sv->slots = NULL;
}

static int start_worker(struct supervisor *sv, int i, int64_t now, struct worker_ctx *worker)
{
    struct worker_slot *w = &sv->slots[i];
    pid_t pid = fork();
    if (pid == 0) {
        become_worker(sv, i, worker);
        return SUPERVISOR_IN_WORKER;
    }
    if (pid < 0) {
        log_error(&sv->log, "cannot fork worker %d: %s; retrying in %d ms", i + 1,
                  strerror(errno), WORKER_BACKOFF_MAX_MS);
        w->restart_at_ms = now + WORKER_BACKOFF_MAX_MS;
        return 0;
    }
    w->pid = pid;
    w->started_ms = now;
    __atomic_store_n(&sv->shared->slot[i].pid, (int32_t)pid, __ATOMIC_RELAXED);
    log_info(&sv->log, "worker %d started (pid %d)", i + 1, (int)pid);
    return 0;
}

static void describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(out, len, "ended with wait status %#x", (unsigned)status);
}

/* A worker ended: while running, schedule its restart, backing off if it keeps dying right
 * after start (a broken set-up must not turn into a fork loop). */
static void on_worker_exit(struct supervisor *sv, struct worker_slot *w, int status, int64_t now)
{
    int index = (int)(w - sv->slots) + 1;
    int pid = (int)w->pid;
    char how[96];
    describe_status(status, how, sizeof how);
    w->pid = 0;
    /* Its connections died with it: the gauge drops to 0, the counters stay for its successor
     * (nobody writes to the slot now, so plain stores would do; atomic for the readers). */
    struct metrics_slot *m = &sv->shared->slot[index - 1];
    __atomic_store_n(&m->pid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->m.open, 0, __ATOMIC_RELAXED);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (sv->stopping) {
        if (!clean)
            sv->unclean = true;
        log_at(&sv->log, clean ? LOG_INFO : LOG_WARN, "worker %d (pid %d) %s", index, pid, how);
        return;
    }
    if (now - w->started_ms < WORKER_QUICK_EXIT_MS)
        w->quick_exits++;
    else
        w->quick_exits = 0;
    /* One early death may be bad luck and is restarted at once; a second in a row is not. */
    int64_t delay = 0;
    if (w->quick_exits > 1) {
        unsigned shift = w->quick_exits - 2 < 16 ? w->quick_exits - 2 : 16;
        delay = (int64_t)WORKER_BACKOFF_MIN_MS << shift;
        if (delay > WORKER_BACKOFF_MAX_MS)
            delay = WORKER_BACKOFF_MAX_MS;
    }
    w->restart_at_ms = now + delay;
    __atomic_store_n(&m->restarts, m->restarts + 1, __ATOMIC_RELAXED);
    log_warn(&sv->log, "worker %d (pid %d) %s; restarting it in %lld ms", index, pid, how,
             (long long)delay);
}

static void reap(struct supervisor *sv, int64_t now)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < sv->n; i++)
            if (sv->slots[i].pid == pid)
                on_worker_exit(sv, &sv->slots[i], status, now);
}

static int running(const struct supervisor *sv)
{
    int k = 0;
    for (int i = 0; i < sv->n; i++)
        k += sv->slots[i].pid != 0;
    return k;
}

static void signal_workers(struct supervisor *sv, int sig)
{
    for (int i = 0; i < sv->n; i++)
        if (sv->slots[i].pid)
            kill(sv->slots[i].pid, sig);
}

static void on_stop_signal(struct supervisor *sv, int sig, int64_t now)
{
    if (sv->stopping) {
        log_warn(&sv->log, "second signal (%s): telling the workers to drop their clients "
                 "and exit now", net_signal_name(sig));
        sv->forced_by = sig;
    } else {
        log_info(&sv->log, "%s: stopping %d worker(s)", net_signal_name(sig), running(sv));
        sv->stopping = true;
        notify_service_manager("STOPPING=1");
        /* The port stops taking connections once the workers close their copies too (sockets
         * passed by a service manager stay open there and keep queueing for the next start). */
        close_listeners(sv, -1);
        sv->bound_ms = sv->opt->shutdown_timeout_ms + WORKER_STOP_GRACE_MS;
        for (int i = 0; i < sv->n; i++)
            __atomic_store_n(&sv->shared->slot[i].stop_progress_ms, now, __ATOMIC_RELAXED);
    }
    signal_workers(sv, SIGTERM);
}

/* SIGUSR1: the whole server's counters (each worker then logs its own status line). */
static void log_totals(struct supervisor *sv)
{
    struct metrics_snapshot *s = metrics_snapshot_take(sv->shared);
    if (!s)
        return;
    const struct metrics *m = &s->total;
    log_info(&sv->log, "SIGUSR1: server totals: %llu WebSocket(s) open, %llu accepted, "
             "%llu upgraded, %llu message(s) echoed, %d of %d worker(s) running",
             (unsigned long long)m->open, (unsigned long long)m->accepted,
             (unsigned long long)m->upgrades, (unsigned long long)m->echo.messages_out,
             running(sv), sv->n);
    free(s);
}

/* HUP and USR1 concern what the workers hold (reload, status), so they get them too;
 * USR2 and ALRM have no meaning and are only noted. */
static void on_other_signal(struct supervisor *sv, int sig)
{
    if (sig == SIGUSR1)
        log_totals(sv);
    if (sig == SIGHUP || sig == SIGUSR1) {
        log_info(&sv->log, "%s: passing it on to %d worker(s)", net_signal_name(sig),
                 running(sv));
        signal_workers(sv, sig);
    } else {
        log_info(&sv->log, "%s: ignored", net_signal_name(sig));
    }
}

/* Milliseconds until the next restart or the stop bound; -1: nothing to wait for. */
/* Stopping: when worker i is to be killed unless its closes move before then. */
static int64_t kill_at(const struct supervisor *sv, int i)
{
    return __atomic_load_n(&sv->shared->slot[i].stop_progress_ms, __ATOMIC_RELAXED) +
           sv->bound_ms;
}

static int64_t next_deadline(const struct supervisor *sv, int64_t now)
{
    if (sv->stopping) {
        int64_t best = -1;
        for (int i = 0; i < sv->n; i++)
            if (sv->slots[i].pid && !sv->slots[i].killed) {
                int64_t wait = kill_at(sv, i) > now ? kill_at(sv, i) - now : 0;
                if (best < 0 || wait < best)
                    best = wait;
            }
        return best;
    }
    int64_t best = -1;
    for (int i = 0; i < sv->n; i++) {
        const struct worker_slot *w = &sv->slots[i];
        if (w->pid)
            continue;
        int64_t wait = w->restart_at_ms > now ? w->restart_at_ms - now : 0;
        if (best < 0 || wait < best)
            best = wait;
    }
    return best;
}

static int supervise(struct supervisor *sv, struct worker_ctx *worker)
{
    for (int i = 0; i < sv->n; i++)
        if (start_worker(sv, i, monotonic_ms(), worker) == SUPERVISOR_IN_WORKER)
            return SUPERVISOR_IN_WORKER;
    /* The listeners were open before the first fork: connections queue from now on. */
    char state[64];
    snprintf(state, sizeof state, "READY=1\nMAINPID=%d", (int)sv->pid);
    if (notify_service_manager(state) < 0)
        log_warn(&sv->log, "cannot notify the service manager: %s", strerror(errno));

    while (!sv->stopping || running(sv)) {
        int64_t now = monotonic_ms();
        int64_t wait = next_deadline(sv, now);
        siginfo_t si;
        int sig;
        if (wait < 0) {
            sig = sigwaitinfo(&sv->signals, &si);
        } else {
            struct timespec ts = { .tv_sec = wait / 1000, .tv_nsec = wait % 1000 * 1000000 };
            sig = sigtimedwait(&sv->signals, &si, &ts);
        }
        now = monotonic_ms();
        if (sig == SIGCHLD)
            reap(sv, now);
        else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
            on_stop_signal(sv, sig, now);
        else if (sig > 0)
            on_other_signal(sv, sig);
        else if (sig < 0 && errno != EAGAIN && errno != EINTR)
            log_error(&sv->log, "sigtimedwait: %s", strerror(errno));
        /* A stop of many connections takes as long as their closes: a worker is killed
         * only once they stopped moving, past its own bound. */
        for (int i = 0; sv->stopping && i < sv->n; i++) {
            struct worker_slot *w = &sv->slots[i];
            if (!w->pid || w->killed || now < kill_at(sv, i))
                continue;
            log_warn(&sv->log, "worker %d (pid %d) still running, no close moved for %lld ms "
                     "after the stop: killing it", i + 1, (int)w->pid, (long long)sv->bound_ms);
            kill(w->pid, SIGKILL);
            w->killed = true;
            sv->unclean = true;
        }
        for (int i = 0; i < sv->n && !sv->stopping; i++)
            if (!sv->slots[i].pid && now >= sv->slots[i].restart_at_ms &&
                start_worker(sv, i, now, worker) == SUPERVISOR_IN_WORKER)
                return SUPERVISOR_IN_WORKER;
    }
    if (sv->forced_by && sv->unclean) {
        log_warn(&sv->log, "every worker has stopped; clients were dropped (forced by a second "
                 "%s)", net_signal_name(sv->forced_by));
        return 128 + sv->forced_by;
    }
    log_info(&sv->log, "every worker has stopped");
    return sv->unclean ? 1 : 0;
}

int supervisor_run(const struct options *opt, struct worker_ctx *worker)
{
    struct supervisor sv = {
        .opt = opt,
        .pid = getpid(),
        .n = opt->workers,
    };
    log_setup(&sv.log, opt->log_level, opt->log_format, opt->access_log);
    sv.log.pid = (int)sv.pid;
    sv.slots = calloc((size_t)sv.n, sizeof *sv.slots);
    if (!sv.slots) {
        log_error(&sv.log, "out of memory");
        return 1;
    }
    sv.shared = metrics_shared_map(sv.n);
    if (!sv.shared) {
        log_error(&sv.log, "cannot map the metrics region: %s", strerror(errno));
        free(sv.slots);
        return 1;
    }
    for (int i = 0; i < sv.n; i++)
        sv.slots[i].listen_fd = sv.slots[i].tls_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would reap workers behind our back */
    net_handled_signals(&sv.signals);
    sigaddset(&sv.signals, SIGCHLD);
    sigprocmask(SIG_BLOCK, &sv.signals, NULL);

    int rc = 1;
    if (open_listeners(&sv) == 0 && open_tls_listeners(&sv) == 0) {
        if (sv.activated)
            log_info(&sv.log, "supervisor: %d workers sharing the %d socket(s) from the service "
                     "manager", sv.n, sv.shared_count);
        else if (opt->unix_path)
            log_info(&sv.log, "supervisor: %d workers on Unix socket %s", sv.n, opt->unix_path);
        else {
            char urls[512];
            options_listen_urls(opt, urls, sizeof urls);
            log_info(&sv.log, "supervisor: %d workers on %s", sv.n, urls);
        }
        rc = supervise(&sv, worker);
        if (rc == SUPERVISOR_IN_WORKER)
            return rc;
    }
    close_listeners(&sv, -1);
    if (sv.owns_unix_path)
        unlink(opt->unix_path);
    free(sv.slots);
    metrics_shared_unmap(sv.shared);
    return rc;
}
