/* The per-address table: the key a client is counted under (IPv4, IPv4-mapped IPv6, IPv6 by
 * its /64), the concurrent limit, the handshake rate (GCRA with a burst), and memory that stays
 * bounded however many addresses come. */
#include "split.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "ip_addr.h"
#include "ip_limit.h"

static const uint64_t seed[2] = { 0x0123456789abcdefull, 0xfedcba9876543210ull };

static struct ip_addr addr(const char *text)
{
    struct ip_addr a;
    if (!ip_addr_parse(text, strlen(text), &a))
        fail_msg("not an address: %s", text);
    return a;
}

static struct ip_addr key(const char *text)
{
    return ip_addr_limit_key(addr(text));
}

static void assert_same_addr(struct ip_addr a, struct ip_addr b)
{
    assert_true(a.hi == b.hi && a.lo == b.lo);
}

static void ipv4_and_ipv4_mapped_ipv6_are_one_client(void **state)
{
    (void)state;
    assert_same_addr(key("192.0.2.7"), key("::ffff:192.0.2.7"));
    assert_false(key("192.0.2.7").lo == key("192.0.2.8").lo);

    struct sockaddr_in in = { .sin_family = AF_INET };
    inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
    struct ip_addr a, b;
    assert_true(ip_addr_from_sockaddr(&in, sizeof in, &a));
    assert_true(ip_addr_from_sockaddr(&in6, sizeof in6, &b));
    assert_same_addr(a, b);
    assert_same_addr(a, addr("192.0.2.7"));
    struct sockaddr unix_like = { .sa_family = AF_UNIX };
    assert_false(ip_addr_from_sockaddr(&unix_like, sizeof unix_like, &a));
}

static void ipv6_is_keyed_by_its_64_prefix(void **state)
{
    (void)state;
    assert_same_addr(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    assert_false(key("2001:db8:1:2::1").hi == key("2001:db8:1:3::1").hi);
    /* ::1 (prefix 0) is not the IPv4 address 0.0.0.1 */
    assert_false(key("::1").lo == key("0.0.0.1").lo && key("::1").hi == key("0.0.0.1").hi);

    char text[IP_ADDR_TEXT_LEN];
    ip_addr_format(key("2001:db8:1:2::1"), true, text);
    assert_string_equal(text, "2001:db8:1:2::/64");
    ip_addr_format(key("::ffff:10.1.2.3"), true, text);
    assert_string_equal(text, "10.1.2.3");
    ip_addr_format(addr("2001:db8::1"), false, text);
    assert_string_equal(text, "2001:db8::1");
    ip_addr_format(key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), true, text);
    assert_string_equal(text, "ffff:ffff:ffff:ffff::/64");
}

static void bad_literals_are_refused(void **state)
{
    (void)state;
    const char *bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "[::1]", "::1%lo",
                          "fe80::1::2", "example.org", "1.2.3.4:80",
                          "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001" };
    struct ip_addr a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ip_addr_parse(bad[i], strlen(bad[i]), &a))
            fail_msg("accepted \"%s\"", bad[i]);
    /* A length that stops inside the text reads no further. */
    assert_true(ip_addr_parse((const char *)guard_copy("10.0.0.1", 8), 8, &a));
    assert_false(ip_addr_parse("10.0.0.1", 0, &a));
}

static void cidr_ranges_match_their_prefix(void **state)
{
    (void)state;
    struct ip_cidr c;
    assert_true(ip_cidr_parse("10.0.0.0/8", 10, &c));
    assert_true(ip_cidr_contains(&c, addr("10.255.1.2")));
    assert_true(ip_cidr_contains(&c, addr("::ffff:10.0.0.1")));
    assert_false(ip_cidr_contains(&c, addr("11.0.0.1")));
    assert_false(ip_cidr_contains(&c, addr("::a00:1"))); /* IPv4-compatible is not IPv4 */

    assert_true(ip_cidr_parse("127.0.0.1", 9, &c));
    assert_true(ip_cidr_contains(&c, addr("127.0.0.1")));
    assert_false(ip_cidr_contains(&c, addr("127.0.0.2")));

    assert_true(ip_cidr_parse("2001:db8::/32", 13, &c));
    assert_true(ip_cidr_contains(&c, addr("2001:db8:ffff::1")));
    assert_false(ip_cidr_contains(&c, addr("2001:db9::1")));
    assert_true(ip_cidr_parse("::/0", 4, &c));
    assert_true(ip_cidr_contains(&c, addr("1.2.3.4")));
    assert_true(ip_cidr_contains(&c, addr("fe80::1")));
    assert_true(ip_cidr_parse("0.0.0.0/0", 9, &c));
    assert_true(ip_cidr_contains(&c, addr("1.2.3.4")));
    assert_false(ip_cidr_contains(&c, addr("fe80::1")));
    assert_true(ip_cidr_parse("10.1.2.3/31", 11, &c)); /* host bits are ignored */
    assert_true(ip_cidr_contains(&c, addr("10.1.2.2")));

    const char *bad[] = { "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "/8",
                          "10.0.0.0/-1", "10.0.0.0/0008", "x/8" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ip_cidr_parse(bad[i], strlen(bad[i]), &c))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void concurrent_limit_counts_open_connections(void **state)
{
    (void)state;
    struct ip_limit t;
    assert_int_equal(ip_limit_init(&t, 64, 3, 0, 0, seed), 0);
    uint32_t h[4], retry;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 0, &h[i], &retry), IP_ALLOWED);
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 0, &h[3], &retry), IP_OVER_CONNECTIONS);
    assert_int_equal(h[3], 0);
    /* Another address is not affected, nor another /64 - but the same /64 is. */
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.2"), 0, &h[3], &retry), IP_ALLOWED);
    assert_int_equal(ip_limit_count(&t, key("10.0.0.1")), 3);
    assert_int_equal(ip_limit_count(&t, key("::ffff:10.0.0.1")), 3);
    /* One ends: one more may come. */
    ip_limit_release(&t, h[1], 0);
    assert_int_equal(ip_limit_count(&t, key("10.0.0.1")), 2);
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 0, &h[1], &retry), IP_ALLOWED);
    for (int i = 0; i < 3; i++)
        ip_limit_release(&t, h[i], 0);
    ip_limit_release(&t, h[3], 0);
    /* Nothing open and no rate history: every entry is freed. */
    assert_int_equal(t.live, 0);
    assert_int_equal(ip_limit_count(&t, key("10.0.0.1")), 0);
    ip_limit_destroy(&t);
}

static void handshake_rate_allows_a_burst_then_the_rate(void **state)
{
    (void)state;
    struct ip_limit t;
    /* 10 per second, burst 5: one every 100 ms after the first five. */
    assert_int_equal(ip_limit_init(&t, 64, 0, 10, 5, seed), 0);
    uint32_t h, retry;
    struct ip_addr k = key("2001:db8::1");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ip_limit_admit(&t, k, 1000, &h, &retry), IP_ALLOWED);
        ip_limit_release(&t, h, 1000);
    }
    assert_int_equal(ip_limit_admit(&t, k, 1000, &h, &retry), IP_OVER_RATE);
    assert_int_equal(retry, 1);
    /* The same /64 shares the bucket; another /64 has its own. */
    assert_int_equal(ip_limit_admit(&t, key("2001:db8::2"), 1050, &h, &retry), IP_OVER_RATE);
    assert_int_equal(ip_limit_admit(&t, key("2001:db8:0:1::1"), 1050, &h, &retry), IP_ALLOWED);
    ip_limit_release(&t, h, 1050);
    /* Refused attempts cost nothing: 100 ms after the burst, exactly one more passes. */
    assert_int_equal(ip_limit_admit(&t, k, 1099, &h, &retry), IP_OVER_RATE);
    assert_int_equal(ip_limit_admit(&t, k, 1100, &h, &retry), IP_ALLOWED);
    ip_limit_release(&t, h, 1100);
    assert_int_equal(ip_limit_admit(&t, k, 1100, &h, &retry), IP_OVER_RATE);
    /* Over a long run the rate holds: 10 per second. */
    int passed = 0;
    for (int64_t ms = 1101; ms < 11101; ms += 7) {
        if (ip_limit_admit(&t, k, ms, &h, &retry) == IP_ALLOWED) {
            passed++;
            ip_limit_release(&t, h, ms);
        } else {
            assert_true(retry >= 1);
        }
    }
    assert_in_range(passed, 99, 101);
    /* The other /64's entry was freed on the way, once its bucket had refilled. After a pause
     * of burst/rate k's bucket is full again too: the next admit frees it, and the new entry
     * stays only for the token it took. */
    assert_int_equal(t.live, 1);
    assert_int_equal(ip_limit_admit(&t, key("10.9.9.9"), 12000, &h, &retry), IP_ALLOWED);
    ip_limit_release(&t, h, 12000);
    assert_int_equal(t.live, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ip_limit_admit(&t, k, 12000, &h, &retry), IP_ALLOWED);
        ip_limit_release(&t, h, 12000);
    }
    ip_limit_destroy(&t);
}

static void retry_after_covers_the_wait(void **state)
{
    (void)state;
    struct ip_limit t;
    /* One per second, no burst: the next attempt passes exactly 1 s after the first. */
    assert_int_equal(ip_limit_init(&t, 8, 0, 1, 1, seed), 0);
    uint32_t h, retry;
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 0, &h, &retry), IP_ALLOWED);
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 1, &h, &retry), IP_OVER_RATE);
    assert_int_equal(retry, 1);
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 999, &h, &retry), IP_OVER_RATE);
    assert_int_equal(ip_limit_admit(&t, key("10.0.0.1"), 1000, &h, &retry), IP_ALLOWED);
    ip_limit_destroy(&t);
}

static void memory_stays_bounded_under_many_addresses(void **state)
{
    (void)state;
    struct ip_limit t;
    assert_int_equal(ip_limit_init(&t, 16, 2, 1, 1, seed), 0);
    uint32_t h[16], hh, retry;
    /* 16 addresses with an open connection each fill the table. */
    for (uint32_t i = 0; i < 16; i++) {
        struct ip_addr k = { 0, 0x0000ffff0a000000ull | i };
        assert_int_equal(ip_limit_admit(&t, k, 0, &h[i], &retry), IP_ALLOWED);
    }
    /* A 17th is let in untracked: never refused for lack of room. */
    struct ip_addr k17 = { 0, 0x0000ffff0b000000ull };
    assert_int_equal(ip_limit_admit(&t, k17, 0, &hh, &retry), IP_UNTRACKED);
    assert_int_equal(hh, 0);
    ip_limit_release(&t, 0, 0); /* an untracked connection's release is harmless */
    /* Limits still hold for the tracked ones. */
    struct ip_addr k0 = { 0, 0x0000ffff0a000000ull };
    assert_int_equal(ip_limit_admit(&t, k0, 0, &hh, &retry), IP_OVER_RATE);
    /* Connections end before their buckets refill: the entries stay (rate history) ... */
    for (uint32_t i = 0; i < 16; i++)
        ip_limit_release(&t, h[i], 10);
    assert_int_equal(t.live, 16);
    /* ... but a million new addresses reuse them, oldest idle first. */
    for (uint32_t i = 0; i < 1000000; i++) {
        struct ip_addr k = { 0x20010db800000000ull | i, 0 };
        assert_int_equal(ip_limit_admit(&t, k, 20, &hh, &retry), IP_ALLOWED);
        ip_limit_release(&t, hh, 20);
    }
    assert_true(t.live <= 16);
    assert_int_equal(t.used, 16);
    ip_limit_destroy(&t);
}

/* A model check: random admits and releases over a few addresses agree with plain counters. */
static void random_traffic_matches_a_model(void **state)
{
    (void)state;
    struct ip_limit t;
    assert_int_equal(ip_limit_init(&t, 8, 4, 0, 0, seed), 0);
    enum { ADDRS = 12, SLOTS = 64 };
    uint32_t open[SLOTS] = { 0 }, who[SLOTS] = { 0 }, tracked[ADDRS] = { 0 };
    uint32_t rng = 12345, retry;
    for (int step = 0; step < 200000; step++) {
        rng = rng * 1103515245 + 12345;
        uint32_t slot = (rng >> 8) % SLOTS, a = (rng >> 20) % ADDRS;
        if (open[slot]) {
            ip_limit_release(&t, open[slot], step);
            tracked[who[slot]]--;
            open[slot] = 0;
            continue;
        }
        struct ip_addr k = { 0, 0x0000ffff0a000000ull | a };
        uint32_t h;
        enum ip_verdict v = ip_limit_admit(&t, k, step, &h, &retry);
        if (v == IP_OVER_CONNECTIONS)
            assert_true(tracked[a] >= 4);
        if (v == IP_ALLOWED) {
            assert_true(tracked[a] < 4);
            open[slot] = h;
            who[slot] = a;
            tracked[a]++;
        }
        assert_true(t.live <= 8);
    }
    uint32_t total = 0;
    for (uint32_t a = 0; a < ADDRS; a++)
        total += tracked[a];
    assert_int_equal(t.open, total);
    for (uint32_t a = 0; a < ADDRS; a++) {
        struct ip_addr k = { 0, 0x0000ffff0a000000ull | a };
        assert_int_equal(ip_limit_count(&t, k), tracked[a]);
    }
    ip_limit_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_and_ipv4_mapped_ipv6_are_one_client),
        cmocka_unit_test(ipv6_is_keyed_by_its_64_prefix),
        cmocka_unit_test(bad_literals_are_refused),
        cmocka_unit_test(cidr_ranges_match_their_prefix),
        cmocka_unit_test(concurrent_limit_counts_open_connections),
        cmocka_unit_test(handshake_rate_allows_a_burst_then_the_rate),
        cmocka_unit_test(retry_after_covers_the_wait),
        cmocka_unit_test(memory_stays_bounded_under_many_addresses),
        cmocka_unit_test(random_traffic_matches_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
