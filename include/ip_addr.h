/* Client addresses for the per-address limits: one 128-bit form for IPv4 and IPv6, the key a
 * client is counted under, and address ranges (CIDR) for --trust-proxy. Pure: no sockets. */
#ifndef WEBSOCK_IP_ADDR_H
#define WEBSOCK_IP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 128 bits in host order (hi: the first 8 bytes). IPv4 is held as ::ffff:a.b.c.d, so an IPv4
 * client that reaches a dual-stack socket and one that reaches an IPv4 socket are the same. */
struct ip_addr {
    uint64_t hi, lo;
};

struct ip_cidr {
    struct ip_addr net; /* bits beyond the prefix are zero */
    uint8_t bits;       /* prefix length in the 128-bit form (IPv4 /n is 96 + n) */
};

/* Room for the longest text form: a full IPv6 address (45) plus "/64" and the NUL. */
#define IP_ADDR_TEXT_LEN 52

/* Parses an IPv4 or IPv6 literal of len bytes (no brackets, no port, no zone). */
bool ip_addr_parse(const char *s, size_t len, struct ip_addr *out);

/* From a struct sockaddr_in or sockaddr_in6; false for any other family. */
bool ip_addr_from_sockaddr(const void *sa, size_t salen, struct ip_addr *out);

/* The key a client is limited under: an IPv4 address as it is, an IPv6 address by its /64
 * (one subscriber usually holds a whole /64, so counting single addresses would let one
 * client take 2^64 keys). */
struct ip_addr ip_addr_limit_key(struct ip_addr a);

/* Text for logs: "192.0.2.1", "2001:db8::1"; a key of a native IPv6 address gets "/64". */
void ip_addr_format(struct ip_addr a, bool is_key, char out[IP_ADDR_TEXT_LEN]);

/* "ADDR" or "ADDR/BITS" (BITS up to 32 for IPv4, 128 for IPv6). */
bool ip_cidr_parse(const char *s, size_t len, struct ip_cidr *out);

bool ip_cidr_contains(const struct ip_cidr *c, struct ip_addr a);

/* True if any of the n ranges contains a. */
bool ip_cidr_list_contains(const struct ip_cidr *list, size_t n, struct ip_addr a);

#endif
