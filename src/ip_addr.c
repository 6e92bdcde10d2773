#include "ip_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define V4_MAPPED_HI 0
#define V4_MAPPED_LO_TAG 0x0000ffff00000000ull

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static struct ip_addr from_v4(const uint8_t b[4])
{
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return (struct ip_addr){ V4_MAPPED_HI, V4_MAPPED_LO_TAG | v };
}

static struct ip_addr from_v6(const uint8_t b[16])
{
    return (struct ip_addr){ load_be64(b), load_be64(b + 8) };
}

static bool is_v4(struct ip_addr a)
{
    return a.hi == V4_MAPPED_HI && (a.lo >> 32) == (V4_MAPPED_LO_TAG >> 32);
}

bool ip_addr_parse(const char *s, size_t len, struct ip_addr *out)
{
    char text[IP_ADDR_TEXT_LEN];
    if (len == 0 || len >= sizeof text || memchr(s, '\0', len))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    uint8_t b[16];
    if (inet_pton(AF_INET, text, b) == 1) {
        *out = from_v4(b);
        return true;
    }
    if (inet_pton(AF_INET6, text, b) == 1) {
        *out = from_v6(b);
        return true;
    }
    return false;
}

bool ip_addr_from_sockaddr(const void *sa, size_t salen, struct ip_addr *out)
{
    sa_family_t family;
    if (salen < sizeof family)
        return false;
    memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof family);
    if (family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        *out = from_v4((const uint8_t *)&in.sin_addr);
        return true;
    }
    if (family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        *out = from_v6(in6.sin6_addr.s6_addr);
        return true;
    }
    return false;
}

struct ip_addr ip_addr_limit_key(struct ip_addr a)
{
    if (!is_v4(a))
        a.lo = 0;
    return a;
}

void ip_addr_format(struct ip_addr a, bool is_key, char out[IP_ADDR_TEXT_LEN])
{
    uint8_t b[16];
    store_be64(b, a.hi);
    store_be64(b + 8, a.lo);
    bool v4 = is_v4(a);
    if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? b + 12 : b, out, IP_ADDR_TEXT_LEN))
        snprintf(out, IP_ADDR_TEXT_LEN, "?");
    if (is_key && !v4)
        strncat(out, "/64", IP_ADDR_TEXT_LEN - strlen(out) - 1);
}

/* The 128-bit mask of a prefix length. */
static struct ip_addr prefix_mask(unsigned bits)
{
    struct ip_addr m = { 0, 0 };
    if (bits >= 64) {
        m.hi = ~0ull;
        m.lo = bits >= 128 ? ~0ull : ~0ull << (128 - bits);
    } else if (bits > 0) {
        m.hi = ~0ull << (64 - bits);
    }
    return m;
}

bool ip_cidr_parse(const char *s, size_t len, struct ip_cidr *out)
{
    const char *slash = memchr(s, '/', len);
    size_t addr_len = slash ? (size_t)(slash - s) : len;
    struct ip_addr a;
    if (!ip_addr_parse(s, addr_len, &a))
        return false;
    unsigned max = is_v4(a) ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3)
            return false;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return false;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return false;
    }
    if (is_v4(a))
        bits += 96;
    struct ip_addr m = prefix_mask(bits);
    out->net = (struct ip_addr){ a.hi & m.hi, a.lo & m.lo };
    out->bits = (uint8_t)bits;
    return true;
}

bool ip_cidr_contains(const struct ip_cidr *c, struct ip_addr a)
{
    struct ip_addr m = prefix_mask(c->bits);
    return (a.hi & m.hi) == c->net.hi && (a.lo & m.lo) == c->net.lo;
}

bool ip_cidr_list_contains(const struct ip_cidr *list, size_t n, struct ip_addr a)
{
    for (size_t i = 0; i < n; i++)
        if (ip_cidr_contains(&list[i], a))
            return true;
    return false;
}
