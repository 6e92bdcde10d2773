/* libFuzzer target: permessage-deflate negotiation. The input is split at '\n' into header values.
 * In every mode the answer must be well formed and agree with the params; an answer read back as
 * an offer must be accepted unchanged; on and takeover must agree on whether an offer is taken;
 * the values joined into one header line, and the same values in a parsed request, must give the
 * same answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deflate_offer.h"

#define MAX_VALUES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool params_equal(const struct deflate_params *a, const struct deflate_params *b)
{
    return a->on == b->on && a->server_no_takeover == b->server_no_takeover &&
           a->client_no_takeover == b->client_no_takeover && a->server_bits == b->server_bits &&
           a->client_bits == b->client_bits;
}

static bool has(const char *resp, const char *param)
{
    return strstr(resp, param) != NULL;
}

/* One negotiation, with every invariant that does not need a second call. */
static bool negotiate(const struct http_slice *v, size_t n, enum deflate_mode mode,
                      struct deflate_params *p, char resp[DEFLATE_RESPONSE_MAX])
{
    memset(resp, 0xAA, DEFLATE_RESPONSE_MAX);
    memset(p, 0xAA, sizeof *p);
    bool ok = deflate_negotiate(v, n, mode, p, resp);
    check(ok == p->on);
    check(memchr(resp, '\0', DEFLATE_RESPONSE_MAX) != NULL);
    if (!ok) {
        check(resp[0] == '\0' && !p->server_no_takeover && !p->client_no_takeover);
        check(p->server_bits == 15 && p->client_bits == 15);
        return false;
    }
    check(mode == DEFLATE_ON || mode == DEFLATE_TAKEOVER);
    check(strncmp(resp, "permessage-deflate", 18) == 0);
    check(resp[18] == '\0' || resp[18] == ';');
    check(p->server_bits >= 8 && p->server_bits <= 15);
    check(p->client_bits >= 8 && p->client_bits <= 15);
    /* The server keeps a client's inflate context only if it is at most the takeover window. */
    if (!p->client_no_takeover)
        check(mode == DEFLATE_TAKEOVER && p->client_bits <= DEFLATE_TAKEOVER_BITS);
    if (mode == DEFLATE_ON)
        check(p->client_no_takeover && p->client_bits == 15);
    else
        check(p->client_bits == 15 || p->client_bits <= DEFLATE_TAKEOVER_BITS);
    check(has(resp, "; server_no_context_takeover") == p->server_no_takeover);
    check(has(resp, "; client_no_context_takeover") == p->client_no_takeover);
    check(has(resp, "; client_max_window_bits=") == (p->client_bits != 15));
    if (!has(resp, "; server_max_window_bits="))
        check(p->server_bits == 15);
    return true;
}

static void run(const struct http_slice *v, size_t n, bool joinable)
{
    struct deflate_params p[3], again;
    char resp[3][DEFLATE_RESPONSE_MAX], resp_again[DEFLATE_RESPONSE_MAX];
    static const enum deflate_mode modes[3] = { DEFLATE_OFF, DEFLATE_ON, DEFLATE_TAKEOVER };
    for (int m = 0; m < 3; m++) {
        bool ok = negotiate(v, n, modes[m], &p[m], resp[m]);
        check(!(modes[m] == DEFLATE_OFF && ok));
        if (ok) {
            /* Our answer is itself a valid offer, and a fixed point. */
            struct http_slice s = { resp[m], strlen(resp[m]) };
            check(negotiate(&s, 1, modes[m], &again, resp_again));
            check(params_equal(&p[m], &again) && strcmp(resp[m], resp_again) == 0);
        }
    }
    check(p[1].on == p[2].on);
    check(p[1].server_no_takeover == p[2].server_no_takeover);
    check(p[1].server_bits == p[2].server_bits);
    check(!deflate_negotiate(v, n, (enum deflate_mode)3, &again, resp_again));

    /* Repeated header lines are one comma-separated list (RFC 9110 §5.3), unless a quote in one
     * value could pair with a quote in another. */
    if (joinable && n > 1) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += v[i].len + 2;
        char *joined = malloc(len);
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            if (i) {
                memcpy(joined + at, ", ", 2);
                at += 2;
            }
            memcpy(joined + at, v[i].p, v[i].len);
            at += v[i].len;
        }
        struct http_slice one = { joined, at };
        for (int m = 1; m < 3; m++) {
            negotiate(&one, 1, modes[m], &again, resp_again);
            check(params_equal(&p[m], &again) && strcmp(resp[m], resp_again) == 0);
        }
        free(joined);
    }

    /* The request form picks the Sec-WebSocket-Extensions values out of other headers. */
    struct http_request req = { .header_count = 0 };
    static const char *const names[] = { "Sec-WebSocket-Extensions", "sec-websocket-extensions",
                                         "SEC-WEBSOCKET-EXTENSIONS" };
    for (size_t i = 0; i < n; i++) {
        req.headers[req.header_count++] = (struct http_header){
            { names[i % 3], strlen(names[i % 3]) }, v[i] };
        req.headers[req.header_count++] = (struct http_header){
            { "Sec-WebSocket-Extension", 23 }, { "permessage-deflate", 18 } };
    }
    for (int m = 0; m < 3; m++) {
        memset(resp_again, 0xAA, sizeof resp_again);
        bool ok = deflate_negotiate_request(&req, modes[m], &again, resp_again);
        check(ok == p[m].on && params_equal(&p[m], &again) && strcmp(resp[m], resp_again) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        run(NULL, 0, true);
        return 0;
    }
    /* Each value in an exact-size copy so ASan catches any read past its end. */
    struct http_slice v[MAX_VALUES];
    char *copies[MAX_VALUES];
    size_t n = 0, start = 0;
    bool joinable = memchr(data, '"', size) == NULL;
    while (n < MAX_VALUES) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl && n + 1 < MAX_VALUES ? (size_t)(nl - data) : size;
        size_t len = end - start;
        copies[n] = malloc(len ? len : 1);
        memcpy(copies[n], data + start, len);
        v[n] = (struct http_slice){ copies[n], len };
        n++;
        if (end == size)
            break;
        start = end + 1;
    }
    run(v, n, joinable);
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return 0;
}
