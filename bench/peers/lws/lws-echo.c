/*
 * Benchmark peer: WebSocket echo server on libwebsockets (Debian's libwebsockets-dev).
 *
 *     lws-echo PORT [--ev] [--deflate]     or     lws-echo --port PORT [--ev] [--deflate]
 *
 * One lws context with one service thread; listens on 127.0.0.1 and upgrades only /ws.
 * Without --ev lws uses its default poll() loop; --ev puts it on libev (epoll), through the
 * event-library plugin Debian ships with the package.
 *
 * Echo: the fragments of each message are collected into one buffer (up to 64 MiB; larger
 * closes with 1009), and a finished message is queued. The WRITEABLE callback sends queued
 * messages in order with the type they came with, cutting large ones into continuation
 * frames, and stops as soon as lws had to keep part of a write back (lws_partial_buffered),
 * asking for another callback. When too many bytes wait to be sent, reading from that
 * connection pauses (lws_rx_flow_control) until the queue drains, so a client that pipelines
 * cannot grow the queue without bound. Text is checked for UTF-8 by lws
 * (LWS_SERVER_OPTION_VALIDATE_UTF8). No extensions unless --deflate, which registers lws's own
 * permessage-deflate (lws_extension_callback_pm_deflate) with its defaults: zlib level 1,
 * memLevel 8, 15-bit windows, context takeover on each side unless the offer asks otherwise,
 * 1 KiB inflate and deflate buffers per connection.
 */
#include <libwebsockets.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MESSAGE    ((size_t)64 << 20) /* largest message accepted */
#define WRITE_CHUNK    ((size_t)256 << 10) /* most payload put in one frame / lws_write */
#define WRITE_BUDGET   ((size_t)256 << 10) /* most payload sent in one WRITEABLE callback */
#define RX_PAUSE_AT    ((size_t)8 << 20) /* queued bytes at which reading pauses ... */
#define RX_RESUME_AT   ((size_t)1 << 20) /* ... and at which it resumes */
#define RX_BUFFER_SIZE 65536             /* lws read chunk for this protocol */

struct msg {
    struct msg *next;
    size_t len;
    size_t cap;
    int binary;
    unsigned char *buf; /* LWS_PRE bytes of headroom, then cap bytes of payload */
};

/* Per connection; lws zeroes it when the connection is created and never touches it. */
struct session {
    struct msg *rx;           /* message being assembled, NULL between messages */
    struct msg *head, *tail;  /* finished messages, oldest first */
    size_t head_sent;         /* payload bytes of head already handed to lws_write */
    size_t queued;            /* payload bytes in the queue not yet sent */
    int rx_paused;
};

static struct lws_context *context;
static volatile sig_atomic_t stopping;

static unsigned char *payload(struct msg *m)
{
    return m->buf + LWS_PRE;
}

static void msg_free(struct msg *m)
{
    if (m) {
        free(m->buf);
        free(m);
    }
}

static struct msg *msg_new(size_t cap, int binary)
{
    struct msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->buf = malloc(LWS_PRE + (cap ? cap : 1));
    if (!m->buf) {
        free(m);
        return NULL;
    }
    m->cap = cap;
    m->binary = binary;
    return m;
}

/* Room for `need` payload bytes in total; grows geometrically, never past MAX_MESSAGE. */
static int msg_reserve(struct msg *m, size_t need)
{
    size_t cap;
    unsigned char *nb;

    if (need <= m->cap)
        return 0;
    cap = m->cap < 4096 ? 4096 : m->cap;
    while (cap < need)
        cap = cap > MAX_MESSAGE / 2 ? MAX_MESSAGE : cap * 2;
    nb = realloc(m->buf, LWS_PRE + cap);
    if (!nb)
        return -1;
    m->buf = nb;
    m->cap = cap;
    return 0;
}

static void session_free(struct session *s)
{
    struct msg *m = s->head;

    while (m) {
        struct msg *next = m->next;
        msg_free(m);
        m = next;
    }
    msg_free(s->rx);
    memset(s, 0, sizeof *s);
}

/* A chunk of a data frame arrived; returns -1 to close the connection. */
static int on_receive(struct lws *wsi, struct session *s, const void *in, size_t len)
{
    if (!s->rx) {
        /* first chunk of a new message: size the buffer for the whole current frame */
        size_t frame = len + lws_remaining_packet_payload(wsi);
        if (frame > MAX_MESSAGE)
            goto too_big;
        s->rx = msg_new(frame, lws_frame_is_binary(wsi));
        if (!s->rx)
            goto no_memory;
    }
    if (len > MAX_MESSAGE - s->rx->len)
        goto too_big;
    if (msg_reserve(s->rx, s->rx->len + len))
        goto no_memory;
    if (len)
        memcpy(payload(s->rx) + s->rx->len, in, len);
    s->rx->len += len;

    if (!lws_is_final_fragment(wsi))
        return 0;

    /* message complete: queue it and ask to be told when the socket takes data */
    if (s->tail)
        s->tail->next = s->rx;
    else
        s->head = s->rx;
    s->tail = s->rx;
    s->queued += s->rx->len;
    s->rx = NULL;
    if (!s->rx_paused && s->queued >= RX_PAUSE_AT) {
        lws_rx_flow_control(wsi, 0);
        s->rx_paused = 1;
    }
    lws_callback_on_writable(wsi);
    return 0;

too_big:
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
    return -1;
no_memory:
    lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, NULL, 0);
    return -1;
}

/* The socket can take data: send from the queue; returns -1 to close the connection. */
static int on_writeable(struct lws *wsi, struct session *s)
{
    size_t budget = WRITE_BUDGET;

    while (s->head && budget) {
        struct msg *m = s->head;
        size_t left = m->len - s->head_sent;
        size_t n = left < WRITE_CHUNK ? left : WRITE_CHUNK;
        int first = s->head_sent == 0;
        int last = n == left;
        int flags = lws_write_ws_flags(m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT,
                                       first, last);

        /*
         * lws puts the frame header in the LWS_PRE bytes just before the payload pointer.
         * For a later chunk those bytes are payload already sent (or already copied by lws
         * into its own buffer), so overwriting them is harmless.
         */
        if (lws_write(wsi, payload(m) + s->head_sent, n, (enum lws_write_protocol)flags) < 0)
            return -1;
        s->queued -= n;
        budget = n < budget ? budget - n : 0;
        if (last) {
            s->head = m->next;
            if (!s->head)
                s->tail = NULL;
            s->head_sent = 0;
            msg_free(m);
        } else {
            s->head_sent += n;
        }
        if (lws_partial_buffered(wsi))
            break; /* lws kept some back: wait for the next WRITEABLE */
    }

    if (s->rx_paused && s->queued <= RX_RESUME_AT) {
        lws_rx_flow_control(wsi, 1);
        s->rx_paused = 0;
    }
    if (s->head)
        lws_callback_on_writable(wsi);
    return 0;
}

/* Upgrade only GET /ws; for any other path lws drops the connection without a response. */
static int path_is_ws(struct lws *wsi)
{
    char uri[64];
    int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);

    return n > 0 && strcmp(uri, "/ws") == 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *s = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return path_is_ws(wsi) ? 0 : 1;
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, s, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, s);
    case LWS_CALLBACK_CLOSED:
        session_free(s);
        return 0;
    default:
        /* plain HTTP and housekeeping: lws's default handling (404 for any page) */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {
        .name = "echo",
        .callback = callback,
        .per_session_data_size = sizeof(struct session),
        .rx_buffer_size = RX_BUFFER_SIZE,
    },
    {0} /* terminator */
};

static const struct lws_extension extensions[] = {
    { "permessage-deflate", lws_extension_callback_pm_deflate,
      "permessage-deflate; client_no_context_takeover; client_max_window_bits" },
    { NULL, NULL, NULL } /* terminator */
};

static void on_signal_evlib(void *handle, int signum)
{
    (void)handle;
    (void)signum;
    stopping = 1;
    lws_context_destroy(context);
}

/* With --ev, lws's libev plugin catches SIGINT only; SIGTERM just ends the process cleanly. */
static void on_sigterm_evlib(int signum)
{
    (void)signum;
    _exit(0);
}

static void on_signal(int signum)
{
    (void)signum;
    stopping = 1;
    lws_cancel_service(context);
}

static int parse_port(const char *text)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

static void usage(void)
{
    fprintf(stderr, "usage: lws-echo PORT [--ev] [--deflate] | lws-echo --port PORT [--ev] "
                    "[--deflate]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    const char *port_text = NULL;
    int use_ev = 0, deflate = 0, port, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ev") == 0)
            use_ev = 1;
        else if (strcmp(argv[i], "--deflate") == 0)
            deflate = 1;
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc && !port_text)
            port_text = argv[++i];
        else if (argv[i][0] != '-' && !port_text)
            port_text = argv[i];
        else
            usage();
    }
    if (!port_text)
        usage();
    port = parse_port(port_text);
    if (port < 0) {
        fprintf(stderr, "bad port: %s\n", port_text);
        return 2;
    }

    /* errors only: lws warns once per refused upgrade, and nothing per connection is wanted */
    lws_set_log_level(LLL_ERR, NULL);

    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.count_threads = 1;
    info.pt_serv_buf_size = RX_BUFFER_SIZE;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    if (deflate)
        info.extensions = extensions;
    if (use_ev) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.signal_cb = on_signal_evlib; /* lws hooks SIGINT into the ev loop */
        signal(SIGTERM, on_sigterm_evlib);
    } else {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
    signal(SIGPIPE, SIG_IGN);

    context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws-echo: could not listen on 127.0.0.1:%d%s\n", port,
                use_ev ? " (or the libev plugin is missing)" : "");
        return 1;
    }
    while (!stopping && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    return 0;
}
