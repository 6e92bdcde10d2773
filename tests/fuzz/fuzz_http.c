/* libFuzzer target: the HTTP request parser and the handshake decision on arbitrary bytes.
 * Every prefix must be either incomplete or give the same verdict as the whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan catches any read past the end. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    struct http_request req;
    int whole = http_parse_request(buf, size, &req);
    if (whole > 0) {
        struct handshake hs;
        handshake_evaluate(&req, "/ws", &hs);
        static const char *const allow[] = { "https://a.test:8443, null", "http://[::1]" };
        handshake_check_origin(&req, allow, 2, &hs);
        char out[512];
        size_t n = handshake_response(&hs, out, sizeof out);
        if (n == 0 || n >= sizeof out)
            abort();
    }
    /* Incremental use: a prefix may not complete earlier or fail where the whole did not. */
    for (size_t cut = 0; cut < size; cut += 1 + cut / 8) {
        int rc = http_parse_request(buf, cut, &req);
        if (rc > 0 && rc != whole)
            abort();
        if (rc == HTTP_BAD && whole != HTTP_BAD)
            abort();
    }
    free(buf);
    return 0;
}
