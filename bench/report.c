#include "report.h"

#include "pmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *type_name(const struct bench *b)
{
    return b->opt.raw            ? "raw"
           : b->opt.json_payload ? "json text"
           : b->opt.text         ? "text"
                                 : "binary";
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void bench_abort(struct bench *b, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "wsload: %s\n", msg);
    if (b->opt.json) {
        fputs("{\"ok\": false, \"error\": ", stdout);
        json_string(stdout, msg);
        fputs("}\n", stdout);
    }
    fflush(NULL);
    exit(1);
}

/* --rate: later than this at p99, wsload's own delay shows in the latencies. */
#define LAG_WARN_US 100

/* In a closed loop, a generator that burns more CPU than the server is likely the bottleneck,
 * and the figures say more about wsload than about the server. */
static bool generator_bound(const struct bench *b, const struct results *r)
{
    return b->opt.rate <= 0 && !b->opt.idle && r->server_cpu_s >= 0 &&
           r->gen_cpu_s > r->server_cpu_s;
}

/* Under --rate the throughput is fixed; what matters is whether wsload kept to its schedule. */
static bool generator_late(const struct bench *b)
{
    return b->opt.rate > 0 && hist_percentile(&b->lag, 99) > LAG_WARN_US;
}

static double per_server_cpu(const struct results *r)
{
    return r->server_cpu_s > 0 ? (double)r->msgs / r->server_cpu_s : 0;
}

static double per_msg(uint64_t total, uint64_t msgs)
{
    return msgs ? (double)total / (double)msgs : 0;
}

/* Wire bytes per echoed message, each way, and the compression figures. */
static void json_wire(const struct bench *b, const struct results *r)
{
    printf("\"payload\": \"%s\", \"wire_bytes_per_msg\": {\"out\": %.1f, \"in\": %.1f, "
           "\"frame_headers\": \"included\"}, ",
           b->opt.json_payload ? "json" : "pattern", per_msg(b->wire_out, r->msgs),
           per_msg(b->wire_in, r->msgs));
    if (!b->opt.deflate) {
        printf("\"deflate\": null, ");
        return;
    }
    printf("\"deflate\": {\"offer\": ");
    json_string(stdout, PMD_OFFER);
    printf(", \"negotiated\": %u, \"declined\": %u, \"answer\": ", b->negotiated, b->declined);
    if (b->negotiated)
        json_string(stdout, b->ext_answer);
    else
        fputs("null", stdout);
    printf(", \"level\": %d, \"echoes_compressed\": %llu, ", b->opt.deflate_level,
           (unsigned long long)b->echoes_z);
    if (b->ref_msgs)
        printf("\"reference_bytes_per_msg\": %.1f, \"reference_msgs\": %llu}, ",
               per_msg(b->ref_bytes, b->ref_msgs), (unsigned long long)b->ref_msgs);
    else
        printf("\"reference_bytes_per_msg\": null, \"reference_msgs\": 0}, ");
}

static void text_wire(const struct bench *b, const struct results *r)
{
    if (b->opt.raw || !r->msgs)
        return;
    printf("wire         %.1f B/msg out, %.1f B/msg in (frame headers included, control frames "
           "not; payload %zu B)\n",
           per_msg(b->wire_out, r->msgs), per_msg(b->wire_in, r->msgs), b->opt.size);
    if (!b->opt.deflate)
        return;
    if (b->negotiated)
        printf("deflate      %s (%u of %u connections); %llu of %llu echoes compressed\n",
               b->ext_answer, b->negotiated, b->nconns, (unsigned long long)b->echoes_z,
               (unsigned long long)r->msgs);
    else
        printf("deflate      declined by the server on every connection: ran uncompressed\n");
    if (b->ref_msgs)
        printf("reference    %.1f B/msg from a 32 KiB-window zlib keeping its context (level 6, "
               "header included, %llu messages): the echoes are %.0f %% of it\n",
               per_msg(b->ref_bytes, b->ref_msgs), (unsigned long long)b->ref_msgs,
               100 * per_msg(b->wire_in, r->msgs) / per_msg(b->ref_bytes, b->ref_msgs));
}

static void print_json(const struct bench *b, const struct results *r)
{
    const struct options *o = &b->opt;
    const struct hist *h = &b->hist;
    double rate = r->window_s > 0 ? (double)r->msgs / r->window_s : 0;
    printf("{\"ok\": %s, \"mode\": \"%s\", \"transport\": \"%s\"",
           b->errors ? "false" : "true",
           o->idle ? "idle" : o->rate > 0 ? "rate" : o->churn ? "churn" : "closed",
           o->raw ? "tcp" : o->tls ? "websocket+tls" : "websocket");
    printf(", \"tls\": ");
    if (o->tls)
        json_string(stdout, b->tls_agreed);
    else
        printf("null");
    printf(", \"host\": ");
    json_string(stdout, o->host);
    printf(", \"port\": %d, \"path\": ", o->port);
    json_string(stdout, o->path);
    printf(", \"connections\": %u, \"size\": %zu, \"type\": \"%s\", \"depth\": %u, "
           "\"target_rate\": %.1f, \"warmup_s\": %.3f, \"connect_s\": %.3f, \"window_s\": %.3f, "
           "\"messages\": %llu, \"msgs_per_s\": %.1f, \"mb_per_s\": %.3f, ",
           b->nconns, o->size, type_name(b), o->depth, o->rate, o->idle ? 0 : o->warmup,
           r->connect_s, r->window_s, (unsigned long long)r->msgs, rate,
           rate * (double)o->size / 1e6);
    printf("\"latency_us\": {\"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"p99_9\": %llu, "
           "\"max\": %llu, \"min\": %llu, \"mean\": %.1f}, ",
           (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
           (unsigned long long)hist_percentile(h, 99), (unsigned long long)hist_percentile(h, 99.9),
           (unsigned long long)h->max, (unsigned long long)h->min, hist_mean(h));
    json_wire(b, r);
    if (r->server_cpu_s >= 0)
        printf("\"server_cpu_s\": %.3f, \"msgs_per_server_cpu_s\": %.1f, ", r->server_cpu_s,
               per_server_cpu(r));
    else
        printf("\"server_cpu_s\": null, \"msgs_per_server_cpu_s\": null, ");
    printf("\"generator_cpu_s\": %.3f, \"generator_bound\": %s, ", r->gen_cpu_s,
           generator_bound(b, r) ? "true" : "false");
    if (o->rate > 0)
        printf("\"send_lag_us\": {\"p50\": %llu, \"p99\": %llu, \"max\": %llu}, "
               "\"generator_late\": %s, ",
               (unsigned long long)hist_percentile(&b->lag, 50),
               (unsigned long long)hist_percentile(&b->lag, 99), (unsigned long long)b->lag.max,
               generator_late(b) ? "true" : "false");
    if (o->idle) {
        long per = r->rss_after >= 0 && r->rss_before >= 0
                       ? (r->rss_after - r->rss_before) * 1024 / (long)b->nconns
                       : 0;
        printf("\"server_rss_before_kib\": %ld, \"server_rss_after_kib\": %ld, "
               "\"server_rss_end_kib\": %ld, \"rss_per_conn_bytes\": %ld, \"alive\": %u, "
               "\"idle_echo\": %s, ",
               r->rss_before, r->rss_after, r->rss_end, per, r->alive,
               o->idle_echo ? "true" : "false");
        if (r->kernel_before >= 0 && r->kernel_after >= 0)
            printf("\"kernel_before_kib\": %ld, \"kernel_after_kib\": %ld, "
                   "\"kernel_source\": \"%s\", \"kernel_per_conn_both_ends_bytes\": %ld, ",
                   r->kernel_before, r->kernel_after, r->kernel_source,
                   (r->kernel_after - r->kernel_before) * 1024 / (long)b->nconns);
    }
    printf("\"lost\": %llu, \"retries\": %llu, \"errors\": %llu, \"first_error\": ",
           (unsigned long long)r->lost, (unsigned long long)b->retries,
           (unsigned long long)b->errors);
    if (b->first_error[0])
        json_string(stdout, b->first_error);
    else
        fputs("null", stdout);
    puts("}");
}

static void print_size(char *out, size_t cap, size_t n)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(out, cap, "%zu MiB", n >> 20);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(out, cap, "%zu KiB", n >> 10);
    else
        snprintf(out, cap, "%zu B", n);
}

static void print_latency(const struct hist *h)
{
    printf("latency      p50 %llu us  p90 %llu us  p99 %llu us  p99.9 %llu us  max %llu us"
           "  (mean %.1f us)\n",
           (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
           (unsigned long long)hist_percentile(h, 99), (unsigned long long)hist_percentile(h, 99.9),
           (unsigned long long)h->max, hist_mean(h));
}

static void print_text(const struct bench *b, const struct results *r)
{
    const struct options *o = &b->opt;
    char size[32];
    print_size(size, sizeof size, o->size);
    printf("wsload       %s://%s%s  %u connection%s x %s %s\n",
           o->raw ? "tcp" : o->tls ? "wss" : "ws",
           b->host_header, o->raw ? "" : o->path, b->nconns, b->nconns == 1 ? "" : "s", size,
           type_name(b));
    if (!r->connected) {
        /* Nothing was measured; the reason has been printed above. */
    } else if (o->idle) {
        printf("opened       %u connections in %.2f s, held idle %.1f s\n", b->nconns,
               r->connect_s, o->hold);
        if (r->rss_before >= 0 && r->rss_after >= 0) {
            long delta = r->rss_after - r->rss_before;
            printf("server RSS   %ld KiB idle -> %ld KiB with %u connections%s (%ld KiB after the "
                   "hold)\n",
                   r->rss_before, r->rss_after, b->nconns,
                   o->idle_echo ? ", after one echo on each" : "", r->rss_end);
            printf("per conn     %ld bytes of server RSS\n", delta * 1024 / (long)b->nconns);
            if (r->kernel_before >= 0 && r->kernel_after >= 0)
                printf("kernel       %ld bytes per conn, both ends (socket slab from /proc/%s "
                       "and TCP buffers, machine-wide: not in any RSS)\n",
                       (r->kernel_after - r->kernel_before) * 1024 / (long)b->nconns,
                       r->kernel_source);
            if (delta <= 0)
                printf("warning      the server's RSS did not grow: it reused memory freed by an "
                       "earlier run; measure against a freshly started server\n");
        }
        printf("alive        %u of %u echoed one message after the hold (all sent at once, last "
               "echo after %.1f ms)\n",
               r->alive, b->nconns, (double)b->hist.max / 1000);
        text_wire(b, r);
    } else {
        double rate = r->window_s > 0 ? (double)r->msgs / r->window_s : 0;
        if (o->tls)
            printf("tls          %s (no certificate verification, full handshakes)\n",
                   b->tls_agreed);
        if (o->churn)
            printf("mode         churn: each connection closes once upgraded and opens again; "
                   "a message is a whole connection, its latency connect to 101\n");
        else if (o->rate > 0)
            printf("mode         open loop at %.0f msg/s (latency from each scheduled send)\n",
                   o->rate);
        else
            printf("mode         closed loop, %u in flight per connection\n", o->depth);
        printf("window       %.2f s measured after %.1f s warm-up\n", r->window_s, o->warmup);
        if (o->churn) {
            printf("handshakes   %llu connections opened, upgraded and closed, %.0f/s\n",
                   (unsigned long long)r->msgs, rate);
        } else {
            printf("messages     %llu echoed and verified, %.0f msg/s\n",
                   (unsigned long long)r->msgs, rate);
            printf("payload      %.2f MB/s each way\n", rate * (double)o->size / 1e6);
        }
        print_latency(&b->hist);
        if (r->server_cpu_s >= 0)
            printf("server CPU   %.2f s (%.0f %% of a core), %.0f %s per server CPU-second\n",
                   r->server_cpu_s, 100 * r->server_cpu_s / r->window_s, per_server_cpu(r),
                   o->churn ? "connections" : "msg");
        printf("wsload CPU   %.2f s (%.0f %% of a core)\n", r->gen_cpu_s,
               100 * r->gen_cpu_s / r->window_s);
        if (!o->churn)
            text_wire(b, r);
        if (o->rate > 0)
            printf("send lag     p50 %llu us  p99 %llu us  max %llu us (wsload against its "
                   "schedule)\n",
                   (unsigned long long)hist_percentile(&b->lag, 50),
                   (unsigned long long)hist_percentile(&b->lag, 99),
                   (unsigned long long)b->lag.max);
    }
    if (r->lost)
        printf("lost         %llu messages never echoed\n", (unsigned long long)r->lost);
    printf("errors       %llu%s%s\n", (unsigned long long)b->errors, b->errors ? ", first: " : "",
           b->first_error);
    if (generator_late(b))
        printf("warning      wsload sent late (p99 %llu us behind schedule): its own delay is in "
               "the latencies, which are an upper bound\n",
               (unsigned long long)hist_percentile(&b->lag, 99));
    if (generator_bound(b, r))
        printf("warning      generator-bound: wsload used more CPU (%.2f s) than the server "
               "(%.2f s); figures are a lower bound\n",
               r->gen_cpu_s, r->server_cpu_s);
}

void report_print(const struct bench *b, const struct results *r)
{
    if (b->opt.json)
        print_json(b, r);
    else
        print_text(b, r);
    fflush(stdout);
}
