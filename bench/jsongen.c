#include "jsongen.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

static const char *const EVENTS[] = { "click", "view", "scroll", "purchase",
                                      "login", "logout", "search", "share" };
static const char *const PAGES[] = { "products", "cart", "search", "home", "account", "help" };
static const char *const REFS[] = { "https://www.example.com/", "https://news.example.org/today",
                                    "", "https://shop.example.net/cart?item=42",
                                    "https://m.example.com/feed" };
#define NFIELDS 10

static uint32_t pick(uint64_t *rng, uint32_t n)
{
    return (uint32_t)(rng_next(rng) % n);
}

/* Field k of a record, with fresh values. */
static int field(char *out, size_t cap, int k, uint64_t *rng)
{
    switch (k) {
    case 0:
        return snprintf(out, cap, "\"user\":\"u%u\"", pick(rng, 100000));
    case 1:
        return snprintf(out, cap, "\"event\":\"%s\"", EVENTS[pick(rng, 8)]);
    case 2:
        return snprintf(out, cap, "\"ts\":%llu",
                        1718000000000ULL + (unsigned long long)pick(rng, 1000000000));
    case 3:
        return snprintf(out, cap, "\"page\":\"/%s/%u\"", PAGES[pick(rng, 6)], pick(rng, 10000));
    case 4:
        return snprintf(out, cap, "\"x\":%u,\"y\":%u", pick(rng, 1920), pick(rng, 1080));
    case 5:
        return snprintf(out, cap, "\"price\":%u.%02u", pick(rng, 500), pick(rng, 100));
    case 6:
        return snprintf(out, cap, "\"session\":\"%08x\"", (unsigned)rng_next(rng));
    case 7:
        return snprintf(out, cap, "\"ok\":%s", pick(rng, 4) ? "true" : "false");
    case 8:
        return snprintf(out, cap, "\"ref\":\"%s\"", REFS[pick(rng, 5)]);
    default:
        return snprintf(out, cap, "\"qty\":%u", 1 + pick(rng, 9));
    }
}

void json_fill(uint8_t *out, size_t size, size_t id_len, uint64_t *rng)
{
    static const char END[] = "]}";
    char *o = (char *)out;
    size_t n = 0;
    memcpy(o, "{\"id\":\"", JSON_ID_OFF);
    n = JSON_ID_OFF;
    memset(o + n, '0', id_len);
    n += id_len;
    memcpy(o + n, "\",\"events\":[", 12);
    n += 12;
    /* Records field by field while they fit with room for "}" and the closing "]}". */
    for (bool first_record = true;; first_record = false) {
        size_t rec = n;
        size_t fields = 0;
        char f[96];
        if (!first_record)
            o[n++] = ',';
        o[n++] = '{';
        for (int k = 0; k < NFIELDS; k++) {
            int len = field(f, sizeof f, k, rng);
            size_t need = (fields ? 1 : 0) + (size_t)len + 1 + sizeof END - 1;
            if (n + need > size)
                continue; /* a shorter field further on may still fit: an optional field */
            if (fields)
                o[n++] = ',';
            memcpy(o + n, f, (size_t)len);
            n += (size_t)len;
            fields++;
        }
        if (!fields) {
            n = rec; /* not even one field fits: this record is not written */
            break;
        }
        o[n++] = '}';
        if (fields < NFIELDS)
            break;
    }
    memset(o + n, ' ', size - n - 2);
    memcpy(o + size - 2, END, 2);
}
