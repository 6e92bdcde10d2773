/* Which close codes a peer may send (RFC 6455 §7.4, IANA registry). */
#ifndef WEBSOCK_CLOSE_CODE_H
#define WEBSOCK_CLOSE_CODE_H

#include <stdbool.h>
#include <stdint.h>

enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011,
};

/* True for codes a Close frame may carry: 1000-1003, 1007-1014 and 3000-4999. 1004-1006 and 1015
 * are reserved or must never be sent; 1016-2999 are unassigned; 5000 and up do not exist. */
static inline bool close_code_is_valid(uint32_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

#endif
