/* permessage-deflate (RFC 7692) as wsload offers it, and a strict reading of the server's
 * answer. Pure: strings in, parameters out. */
#ifndef WSLOAD_PMD_H
#define WSLOAD_PMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What --deflate offers, exactly: no context takeover for our messages (what Autobahn and a
 * memory-conscious client ask), and a valueless client_max_window_bits as Chrome sends, so
 * the server may also choose our window. Nothing about the server's own side: it keeps its
 * default (context takeover, 15-bit window) unless it limits itself in the answer. */
#define PMD_OFFER "permessage-deflate; client_no_context_takeover; client_max_window_bits"

struct pmd_params {
    bool on;                  /* the server accepted the extension */
    bool server_no_takeover;  /* its messages are each compressed from an empty window */
    bool client_no_takeover;  /* ours may be (else we must keep our context) */
    uint8_t server_bits;      /* its window, 8..15 (15 when not answered) */
    uint8_t client_bits;      /* the window our messages may use, 8..15 */
};

/* Reads the value of the server's Sec-WebSocket-Extensions header: one permessage-deflate
 * with no parameter it may not send, none twice, window bits 8..15. 0 with p filled, or -1
 * with the reason in err (the client must then fail the connection, RFC 7692 section 5). */
int pmd_parse_response(const char *v, size_t len, struct pmd_params *p, char *err,
                       size_t errlen);

#endif
