#include "pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"

/* src/console.html, assembled into the binary as it is (the path is relative to the directory
 * the build runs in, the repository root). */
__asm__(".pushsection .rodata\n"
        ".globl websock_console_html\n"
        ".hidden websock_console_html\n"
        "websock_console_html:\n"
        ".incbin \"src/console.html\"\n"
        ".globl websock_console_html_end\n"
        ".hidden websock_console_html_end\n"
        "websock_console_html_end:\n"
        ".popsection\n");
extern const char websock_console_html[] __attribute__((visibility("hidden")));
extern const char websock_console_html_end[] __attribute__((visibility("hidden")));

/* Where the console reads the WebSocket path from; replaced by the HTML-escaped --path. */
static const char path_slot[] = "{{WEBSOCKET_PATH}}";

enum page page_route(const struct http_request *req, const char *ws_path, bool console)
{
    if (http_target_is(req->target, ws_path))
        return PAGE_NONE;
    if (console && http_target_is(req->target, "/"))
        return PAGE_CONSOLE;
    if (http_target_is(req->target, "/healthz"))
        return PAGE_HEALTHZ;
    if (http_target_is(req->target, "/metrics"))
        return PAGE_METRICS;
    return PAGE_NONE;
}

static const char *html_entity(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return NULL;
    }
}

/* Writes s HTML-escaped for an attribute value to out (if not NULL); returns its length. */
static size_t put_escaped(char *out, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *e = html_entity(*s);
        size_t len = e ? strlen(e) : 1;
        if (out)
            memcpy(out + n, e ? e : s, len);
        n += len;
    }
    return n;
}

/* The console with the path in its slot, written to out if not NULL; returns its length. */
static size_t put_console(char *out, const char *ws_path)
{
    const char *html = websock_console_html;
    size_t len = (size_t)(websock_console_html_end - html);
    size_t slot_len = sizeof path_slot - 1;
    const char *slot = memmem(html, len, path_slot, slot_len);
    if (!slot) { /* a console without the slot is served as it is */
        slot = html + len;
        slot_len = 0;
    }
    size_t before = (size_t)(slot - html), after = len - before - slot_len;
    size_t path = put_escaped(out ? out + before : NULL, ws_path);
    if (out) {
        memcpy(out, html, before);
        memcpy(out + before + path, slot + slot_len, after);
    }
    return before + path + after;
}

static bool method_is(const struct http_request *req, const char *method)
{
    return req->method.len == strlen(method) && memcmp(req->method.p, method, req->method.len) == 0;
}

#define HEAD_MAX 320

int page_respond(enum page page, const struct http_request *req, const char *ws_path,
                 const struct metrics_shared *m, struct buf *out)
{
    static const char healthy[] = "ok\n", not_allowed[] = "method not allowed\n";
    bool head = method_is(req, "HEAD");
    int status = head || method_is(req, "GET") ? 200 : 405;
    const char *type = "text/plain; charset=utf-8";
    struct metrics_snapshot *snap = NULL;
    size_t len = sizeof healthy - 1;
    if (status == 405) {
        len = sizeof not_allowed - 1;
    } else if (page == PAGE_CONSOLE) {
        len = put_console(NULL, ws_path);
        type = "text/html; charset=utf-8";
    } else if (page == PAGE_METRICS) {
        /* Read once, then measured and written: the other workers count on meanwhile. */
        if (!(snap = metrics_snapshot_take(m)))
            return -1;
        len = metrics_format(snap, NULL, 0);
        type = "text/plain; version=0.0.4; charset=utf-8";
    }

    char *dst = (char *)buf_reserve(out, HEAD_MAX + len + 1);
    if (!dst) {
        free(snap);
        return -1;
    }
    int h = snprintf(dst, HEAD_MAX,
                     "HTTP/1.1 %d %s\r\n"
                     "Server: websock/" WEBSOCK_VERSION "\r\n"
                     "%s"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Method Not Allowed",
                     status == 405 ? "Allow: GET, HEAD\r\n" : "", type, len);
    if (h < 0 || h >= HEAD_MAX) {
        free(snap);
        return -1; /* cannot happen: the longest head is about 250 bytes */
    }
    char *body = dst + h;
    if (head)
        len = 0;
    else if (status == 405)
        memcpy(body, not_allowed, len);
    else if (page == PAGE_CONSOLE)
        put_console(body, ws_path);
    else if (page == PAGE_METRICS)
        metrics_format(snap, body, len + 1);
    else
        memcpy(body, healthy, len);
    buf_commit(out, (size_t)h + len);
    free(snap);
    return status;
}
