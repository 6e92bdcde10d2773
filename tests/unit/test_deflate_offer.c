/* permessage-deflate negotiation (RFC 7692 §5-§7, RFC 6455 §9.1): which offer is taken, the params
 * the codec gets and the exact answer, in each --deflate mode, for the offers real clients send and
 * for the malformed and invalid ones they should not. */
#include "split.h"

#include "deflate_offer.h"

#define PMD "permessage-deflate"
#define SNCT "; server_no_context_takeover"
#define CNCT "; client_no_context_takeover"
#define SB(n) "; server_max_window_bits=" #n
#define CB(n) "; client_max_window_bits=" #n

/* Autobahn TestSuite 25.10.1 (autobahn 0.10.9): PerMessageDeflateOffer().getExtensionString(),
 * the offer of cases 12.* and 13.1; 13.2-13.7 append the server_* requests. */
#define AB PMD "; client_no_context_takeover; client_max_window_bits"

struct want {
    bool on, server_no_takeover, client_no_takeover;
    uint8_t server_bits, client_bits;
    const char *resp;
};

/* values: the Sec-WebSocket-Extensions header lines, NULL-terminated. --deflate off always
 * declines, so each row is checked in all three modes. */
struct offer_case {
    const char *values[4];
    struct want on, takeover;
};

#define NO { false, false, false, 15, 15, "" }
#define NONE NO, NO
#define YES(snct, cnct, sbits, cbits, resp) { true, snct, cnct, sbits, cbits, resp }
/* The same answer in both modes: the offer has no client_max_window_bits. */
#define BOTH(snct, sbits, resp) YES(snct, 1, sbits, 15, resp), YES(snct, 1, sbits, 15, resp)

static const struct want declined = NO;

static void check_one(const struct offer_case *c, size_t row, const struct http_slice *v,
                      size_t n, enum deflate_mode mode)
{
    const struct want *w = mode == DEFLATE_OFF ? &declined
                           : mode == DEFLATE_ON ? &c->on
                                                : &c->takeover;
    struct deflate_params p;
    char resp[DEFLATE_RESPONSE_MAX];
    memset(&p, 0x5a, sizeof p);
    memset(resp, 0x5a, sizeof resp);
    bool ok = deflate_negotiate(v, n, mode, &p, resp);
    if (ok != w->on || p.on != w->on || p.server_no_takeover != w->server_no_takeover ||
        p.client_no_takeover != w->client_no_takeover || p.server_bits != w->server_bits ||
        p.client_bits != w->client_bits || memchr(resp, '\0', sizeof resp) == NULL ||
        strcmp(resp, w->resp) != 0)
        fail_msg("row %zu \"%s\"%s [%s]: got %d on=%d snct=%d cnct=%d sbits=%u cbits=%u \"%.*s\"\n"
                 "  want on=%d snct=%d cnct=%d sbits=%u cbits=%u \"%s\"",
                 row, c->values[0] ? c->values[0] : "(none)", n > 1 ? " ..." : "",
                 deflate_mode_name(mode), ok, p.on, p.server_no_takeover, p.client_no_takeover,
                 p.server_bits, p.client_bits, (int)sizeof resp, resp, w->on,
                 w->server_no_takeover, w->client_no_takeover, w->server_bits, w->client_bits,
                 w->resp);
}

/* Each value in its own exact-size copy (a single one right before a guard page), so reading
 * past a value's end crashes or trips ASan. */
static void run_cases(const struct offer_case *cases, size_t count)
{
    for (size_t row = 0; row < count; row++) {
        const struct offer_case *c = &cases[row];
        struct http_slice v[4];
        char *copies[4] = { NULL };
        size_t n = 0;
        while (n < 4 && c->values[n]) {
            size_t len = strlen(c->values[n]);
            if (c->values[1] == NULL) {
                v[n].p = (const char *)guard_copy(c->values[n], len);
            } else {
                copies[n] = malloc(len ? len : 1);
                memcpy(copies[n], c->values[n], len);
                v[n].p = copies[n];
            }
            v[n].len = len;
            n++;
        }
        check_one(c, row, v, n, DEFLATE_OFF);
        check_one(c, row, v, n, DEFLATE_ON);
        check_one(c, row, v, n, DEFLATE_TAKEOVER);
        for (size_t i = 0; i < n; i++)
            free(copies[i]);
    }
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])

static size_t case_count;
#define COUNT(cases) (case_count += sizeof cases / sizeof cases[0])

/* ---- RFC 7692 and real clients -------------------------------------------------------------- */

static const struct offer_case rfc7692[] = {
    /* §7: the parameters one at a time. */
    { { PMD }, BOTH(0, 15, PMD CNCT) },
    { { PMD "; server_no_context_takeover" }, BOTH(1, 15, PMD SNCT CNCT) },
    { { PMD "; client_no_context_takeover" }, BOTH(0, 15, PMD CNCT) },
    { { PMD "; server_max_window_bits=10" }, BOTH(0, 10, PMD CNCT SB(10)) },
    { { PMD "; client_max_window_bits" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
    { { PMD "; client_max_window_bits=9" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 9, PMD CB(9)) },
    /* §5.1's example: two offers, the first taken. */
    { { PMD "; client_max_window_bits; server_max_window_bits=10, " PMD
            "; client_max_window_bits" },
      YES(0, 1, 10, 15, PMD CNCT SB(10)), YES(0, 0, 10, 10, PMD SB(10) CB(10)) },
    /* §7.1.2.1: a server_max_window_bits the server cannot meet is declined there; we meet all. */
    { { PMD "; server_max_window_bits=8" }, BOTH(0, 8, PMD CNCT SB(8)) },
    { { PMD "; server_max_window_bits=15" }, BOTH(0, 15, PMD CNCT SB(15)) },
    /* §7.1.2.2: the server may answer a smaller client window than offered, never a larger one. */
    { { PMD "; client_max_window_bits=8" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 8, PMD CB(8)) },
    { { PMD "; client_max_window_bits=10" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
    { { PMD "; client_max_window_bits=11" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
    { { PMD "; client_max_window_bits=15" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
    /* Everything at once: the longest answer there is. */
    { { PMD "; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=11;"
            " server_max_window_bits=14" },
      YES(1, 1, 14, 15, PMD SNCT CNCT SB(14)), YES(1, 1, 14, 10, PMD SNCT CNCT SB(14) CB(10)) },
    { { PMD "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15;"
            " client_max_window_bits=10" },
      YES(1, 1, 15, 15, PMD SNCT CNCT SB(15)), YES(1, 1, 15, 10, PMD SNCT CNCT SB(15) CB(10)) },
};

static const struct offer_case autobahn[] = {
    /* 12.* and 13.1 */
    { { AB }, YES(0, 1, 15, 15, PMD CNCT), YES(0, 1, 15, 10, PMD CNCT CB(10)) },
    /* 13.2 */
    { { AB "; server_no_context_takeover" },
      YES(1, 1, 15, 15, PMD SNCT CNCT), YES(1, 1, 15, 10, PMD SNCT CNCT CB(10)) },
    /* 13.3 */
    { { AB "; server_max_window_bits=8" },
      YES(0, 1, 8, 15, PMD CNCT SB(8)), YES(0, 1, 8, 10, PMD CNCT SB(8) CB(10)) },
    /* 13.4 */
    { { AB "; server_max_window_bits=15" },
      YES(0, 1, 15, 15, PMD CNCT SB(15)), YES(0, 1, 15, 10, PMD CNCT SB(15) CB(10)) },
    /* 13.5 */
    { { AB "; server_no_context_takeover; server_max_window_bits=8" },
      YES(1, 1, 8, 15, PMD SNCT CNCT SB(8)), YES(1, 1, 8, 10, PMD SNCT CNCT SB(8) CB(10)) },
    /* 13.6 */
    { { AB "; server_no_context_takeover; server_max_window_bits=15" },
      YES(1, 1, 15, 15, PMD SNCT CNCT SB(15)), YES(1, 1, 15, 10, PMD SNCT CNCT SB(15) CB(10)) },
    /* 13.7: three offers, ", "-joined; the first is taken. */
    { { AB "; server_no_context_takeover; server_max_window_bits=8, " AB
           "; server_no_context_takeover, " AB },
      YES(1, 1, 8, 15, PMD SNCT CNCT SB(8)), YES(1, 1, 8, 10, PMD SNCT CNCT SB(8) CB(10)) },
    /* Multi-offer headers of the same parameters with other values of N. */
    { { PMD "; client_max_window_bits=8; server_max_window_bits=9, " PMD
            "; client_max_window_bits=9" },
      YES(0, 1, 9, 15, PMD CNCT SB(9)), YES(0, 0, 9, 8, PMD SB(9) CB(8)) },
    { { PMD "; server_max_window_bits=16, " PMD "; client_max_window_bits=12;"
            " server_no_context_takeover, " PMD },
      YES(1, 1, 15, 15, PMD SNCT CNCT), YES(1, 0, 15, 10, PMD SNCT CB(10)) },
    { { PMD "; client_max_window_bits=7, " PMD "; client_max_window_bits=9;"
            " server_max_window_bits=8" },
      YES(0, 1, 8, 15, PMD CNCT SB(8)), YES(0, 0, 8, 9, PMD SB(8) CB(9)) },
    { { PMD "; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=13;"
            " server_max_window_bits=12, " PMD "; client_no_context_takeover" },
      YES(1, 1, 12, 15, PMD SNCT CNCT SB(12)), YES(1, 1, 12, 10, PMD SNCT CNCT SB(12) CB(10)) },
    { { PMD "; server_max_window_bits=11; server_max_window_bits=11, " PMD
            "; server_max_window_bits=13; client_max_window_bits=14, " AB },
      YES(0, 1, 13, 15, PMD CNCT SB(13)), YES(0, 0, 13, 10, PMD SB(13) CB(10)) },
    { { AB "; server_max_window_bits=0, " AB "; server_max_window_bits=10" },
      YES(0, 1, 10, 15, PMD CNCT SB(10)), YES(0, 1, 10, 10, PMD CNCT SB(10) CB(10)) },
};

static const struct offer_case browsers[] = {
    /* Firefox */
    { { PMD }, BOTH(0, 15, PMD CNCT) },
    /* Chrome, Node ws, Python websockets */
    { { PMD "; client_max_window_bits" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
    /* Old Safari's draft extension only */
    { { "x-webkit-deflate-frame" }, NONE },
    { { "x-webkit-deflate-frame, " PMD "; client_max_window_bits" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
};

static void rfc7692_parameters_and_examples(void **state)
{
    (void)state;
    RUN(rfc7692);
}

static void autobahn_12_and_13_offers(void **state)
{
    (void)state;
    RUN(autobahn);
}

static void browser_offers(void **state)
{
    (void)state;
    RUN(browsers);
}

/* ---- values ---------------------------------------------------------------------------------- */

/* An invalid offer is skipped for the next one; a malformed header declines everything. So each
 * bad offer is followed by a good one, and which way it went shows. */
#define NEXT ", " PMD "; server_max_window_bits=13"
#define TOOK_NEXT BOTH(0, 13, PMD CNCT SB(13))

static const struct offer_case values[] = {
    { { PMD "; server_max_window_bits=09" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bits=09" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=010" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=16" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bits=16" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=7" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bits=7" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=0" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=+9" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bits=-9" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=1e1" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=8.0" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=ten" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=100000000000000000010" NEXT }, TOOK_NEXT },
    /* server_max_window_bits needs a value (§7.1.2.1). */
    { { PMD "; server_max_window_bits" NEXT }, TOOK_NEXT },
    /* The no_context_takeover parameters take none (§7.1.1). */
    { { PMD "; server_no_context_takeover=1" NEXT }, TOOK_NEXT },
    { { PMD "; client_no_context_takeover=true" NEXT }, TOOK_NEXT },
    { { PMD "; server_no_context_takeover=\"x\"" NEXT }, TOOK_NEXT },
    /* "=" with nothing after it is not a token: malformed. */
    { { PMD "; server_max_window_bits=" NEXT }, NONE },
    { { PMD "; client_max_window_bits =" NEXT }, NONE },
    { { PMD "; server_max_window_bits=1 0" NEXT }, NONE },
    { { PMD "; server_max_window_bits=10=10" NEXT }, NONE },
    /* A lone single offer with a bad value: nothing. */
    { { PMD "; server_max_window_bits=16" }, NONE },
    { { PMD "; client_max_window_bits=7" }, NONE },
};

static const struct offer_case quoted[] = {
    { { PMD "; server_max_window_bits=\"10\"" }, BOTH(0, 10, PMD CNCT SB(10)) },
    { { PMD "; client_max_window_bits=\"8\"" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 8, PMD CB(8)) },
    /* quoted-pair: "1\2" is 12 */
    { { PMD "; server_max_window_bits=\"1\\2\"" }, BOTH(0, 12, PMD CNCT SB(12)) },
    { { PMD "; server_max_window_bits=\"\\1\\5\"" }, BOTH(0, 15, PMD CNCT SB(15)) },
    /* Unquoted tokens that are bad values: skipped. */
    { { PMD "; server_max_window_bits=\"09\"" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=\"16\"" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits='10'" NEXT }, TOOK_NEXT },
    { { PMD "; client_no_context_takeover=\"1\"" NEXT }, TOOK_NEXT },
    /* Unquoted text that is not a token (§9.1), an unterminated or empty string: malformed. */
    { { PMD "; server_max_window_bits=\"1 0\"" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\" 10\"" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\"\"" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\"10" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\"10\\\"" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\"1\\\"0\"" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\"10\"x" NEXT }, NONE },
    { { PMD "; server_max_window_bits=\"1,0\"" NEXT }, NONE },
    { { PMD "; \"server_no_context_takeover\"" NEXT }, NONE },
    { { "\"" PMD "\"" }, NONE },
    /* The rule holds for other extensions' parameters too. */
    { { "mux; quota=\"2 0\", " PMD }, NONE },
    { { "mux; quota=\"20\", " PMD }, BOTH(0, 15, PMD CNCT) },
};

static void window_bits_and_valueless_parameters(void **state)
{
    (void)state;
    RUN(values);
}

static void quoted_values_are_unquoted_tokens(void **state)
{
    (void)state;
    RUN(quoted);
}

/* ---- parameters ------------------------------------------------------------------------------ */

static const struct offer_case params[] = {
    { { PMD "; server_no_context_takeover; server_no_context_takeover" NEXT }, TOOK_NEXT },
    { { PMD "; client_no_context_takeover; client_no_context_takeover" NEXT }, TOOK_NEXT },
    { { PMD "; server_max_window_bits=10; server_max_window_bits=10" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bits; client_max_window_bits=10" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bits; client_max_window_bits" NEXT }, TOOK_NEXT },
    { { PMD "; server_no_context_takeover; SERVER_NO_CONTEXT_TAKEOVER" NEXT }, TOOK_NEXT },
    { { PMD "; foo" NEXT }, TOOK_NEXT },
    { { PMD "; mem_level=8" NEXT }, TOOK_NEXT },
    { { PMD "; client_max_window_bit" NEXT }, TOOK_NEXT },
    { { PMD "; no_context_takeover" NEXT }, TOOK_NEXT },
    { { PMD "; server_no_context_takeover; x=1" NEXT }, TOOK_NEXT },
    { { PMD "; foo" }, NONE },
    /* Names in any case. */
    { { "PERMESSAGE-DEFLATE; SERVER_NO_CONTEXT_TAKEOVER; Client_Max_Window_Bits=9" },
      YES(1, 1, 15, 15, PMD SNCT CNCT), YES(1, 0, 15, 9, PMD SNCT CB(9)) },
    { { "Permessage-Deflate; Server_Max_Window_Bits=11" }, BOTH(0, 11, PMD CNCT SB(11)) },
    { { PMD "; CLIENT_NO_CONTEXT_TAKEOVER; client_MAX_window_BITS" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 1, 15, 10, PMD CNCT CB(10)) },
    /* Only the exact extension name is ours. */
    { { PMD "-x; server_no_context_takeover, " PMD }, BOTH(0, 15, PMD CNCT) },
    { { "x-" PMD "; server_max_window_bits=9" }, NONE },
    /* Order of the parameters does not matter; of the answer it does. */
    { { PMD "; server_max_window_bits=12; client_max_window_bits=8; server_no_context_takeover;"
            " client_no_context_takeover" },
      YES(1, 1, 12, 15, PMD SNCT CNCT SB(12)), YES(1, 1, 12, 8, PMD SNCT CNCT SB(12) CB(8)) },
};

static void duplicate_unknown_and_case_insensitive_parameters(void **state)
{
    (void)state;
    RUN(params);
}

/* ---- list syntax ----------------------------------------------------------------------------- */

static const struct offer_case syntax[] = {
    /* OWS (spaces and tabs) around ; , = */
    { { PMD " ;client_max_window_bits" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 10, PMD CB(10)) },
    { { PMD "\t;\tclient_max_window_bits\t=\t9\t" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 9, PMD CB(9)) },
    { { "  " PMD " ; server_max_window_bits = 11 " }, BOTH(0, 11, PMD CNCT SB(11)) },
    { { PMD ";server_no_context_takeover;client_no_context_takeover" },
      BOTH(1, 15, PMD SNCT CNCT) },
    { { "foo \t,\t " PMD }, BOTH(0, 15, PMD CNCT) },
    /* Whitespace inside a name or value, or any other separator */
    { { PMD "; server_ no_context_takeover" }, NONE },
    { { "permessage deflate" }, NONE },
    { { PMD "; server_no_context_takeover\r\n" }, NONE },
    { { PMD "\r\n ; server_no_context_takeover" }, NONE },
    { { PMD "@" }, NONE },
    { { PMD "; server_max_window_bits:10" }, NONE },
    { { PMD "; server_max_window_bits==10" }, NONE },
    { { PMD "=1" }, NONE },
    { { PMD "; server_max_window_bits=1\x7f" }, NONE },
    { { PMD "\xff" }, NONE },
    { { "perm\xc3\xa9ssage-deflate, " PMD }, NONE },
    { { "=" }, NONE },
    { { ";" }, NONE },
    { { "\"" }, NONE },
    /* Empty list elements are allowed (RFC 9110 §5.6.1) */
    { { ", " PMD }, BOTH(0, 15, PMD CNCT) },
    { { PMD "," }, BOTH(0, 15, PMD CNCT) },
    { { ", ,\t," PMD ",, ,", }, BOTH(0, 15, PMD CNCT) },
    { { ",,," }, NONE },
    { { "" }, NONE },
    { { " \t " }, NONE },
    /* ... empty parameters are not */
    { { PMD ";" }, NONE },
    { { PMD "; " }, NONE },
    { { PMD ";;" }, NONE },
    { { PMD "; ; client_max_window_bits" }, NONE },
    { { PMD "; server_no_context_takeover;" }, NONE },
    { { PMD "; server_no_context_takeover; , " PMD }, NONE },
    { { "foo;, " PMD }, NONE },
    /* A malformed element after the taken offer still declines everything. */
    { { PMD ", foo=bar" }, NONE },
    { { PMD "; server_no_context_takeover, permessage-deflate;" }, NONE },
};

static void ows_empty_elements_and_malformed_lists(void **state)
{
    (void)state;
    RUN(syntax);
}

/* ---- several extensions and header lines ---------------------------------------------------- */

static const struct offer_case lists[] = {
    /* Other extensions before and after, with parameters of their own */
    { { "foo; bar=baz; qux, " PMD }, BOTH(0, 15, PMD CNCT) },
    { { PMD "; server_max_window_bits=10, x-webkit-deflate-frame" },
      BOTH(0, 10, PMD CNCT SB(10)) },
    { { "deflate-frame; max_window_bits=10, " PMD "; client_max_window_bits=8, mux" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 8, PMD CB(8)) },
    { { "foo, bar; baz=\"q\", quux" }, NONE },
    /* The first offer is taken even when a later one asks for more. */
    { { PMD ", " PMD "; client_max_window_bits=10" }, BOTH(0, 15, PMD CNCT) },
    /* Repeated header lines are one list, in order. */
    { { "x-foo", PMD "; server_max_window_bits=12" }, BOTH(0, 12, PMD CNCT SB(12)) },
    { { PMD "; foo", PMD "; client_max_window_bits=9" },
      YES(0, 1, 15, 15, PMD CNCT), YES(0, 0, 15, 9, PMD CB(9)) },
    { { PMD "; server_no_context_takeover", PMD }, BOTH(1, 15, PMD SNCT CNCT) },
    { { PMD "; server_max_window_bits=99", "foo", PMD "; server_max_window_bits=13" },
      TOOK_NEXT },
    { { "", PMD }, BOTH(0, 15, PMD CNCT) },
    { { PMD, "" }, BOTH(0, 15, PMD CNCT) },
    { { "x-foo", "x-bar" }, NONE },
    /* A malformed line anywhere declines the offers of every line. */
    { { PMD, PMD ";" }, NONE },
    { { "foo=", PMD }, NONE },
    { { "garbage\x01", PMD, PMD }, NONE },
};

static void other_extensions_and_repeated_header_lines(void **state)
{
    (void)state;
    RUN(lists);
}

/* ---- the rest of the API --------------------------------------------------------------------- */

/* Bytes a C string cannot hold: a NUL is not OWS, so the value is malformed. */
static void nul_byte_is_malformed(void **state)
{
    (void)state;
    static const char v[] = PMD "\0; server_no_context_takeover";
    struct http_slice s = { (const char *)guard_copy(v, sizeof v - 1), sizeof v - 1 };
    struct deflate_params p;
    char resp[DEFLATE_RESPONSE_MAX];
    assert_false(deflate_negotiate(&s, 1, DEFLATE_ON, &p, resp));
    assert_false(p.on);
    assert_string_equal(resp, "");
    /* Only len bytes are read: the same bytes cut before the NUL are a valid offer. */
    s.len = strlen(PMD);
    assert_true(deflate_negotiate(&s, 1, DEFLATE_ON, &p, resp));
    assert_string_equal(resp, PMD CNCT);
}

static void no_header_declines(void **state)
{
    (void)state;
    struct deflate_params p;
    char resp[DEFLATE_RESPONSE_MAX] = "x";
    memset(&p, 0x5a, sizeof p);
    assert_false(deflate_negotiate(NULL, 0, DEFLATE_TAKEOVER, &p, resp));
    assert_false(p.on);
    assert_false(p.server_no_takeover);
    assert_false(p.client_no_takeover);
    assert_int_equal(p.server_bits, 15);
    assert_int_equal(p.client_bits, 15);
    assert_string_equal(resp, "");
}

static void a_mode_outside_the_enum_declines(void **state)
{
    (void)state;
    struct http_slice s = { PMD, strlen(PMD) };
    struct deflate_params p;
    char resp[DEFLATE_RESPONSE_MAX];
    assert_false(deflate_negotiate(&s, 1, (enum deflate_mode)3, &p, resp));
    assert_false(p.on);
    assert_string_equal(resp, "");
}

/* The longest answer fits with its NUL. */
static void longest_response_fits(void **state)
{
    (void)state;
    static const char v[] = PMD "; server_no_context_takeover; client_no_context_takeover;"
                                " server_max_window_bits=15; client_max_window_bits=15";
    struct http_slice s = { v, sizeof v - 1 };
    struct deflate_params p;
    char resp[DEFLATE_RESPONSE_MAX];
    memset(resp, 0x5a, sizeof resp);
    assert_true(deflate_negotiate(&s, 1, DEFLATE_TAKEOVER, &p, resp));
    assert_string_equal(resp, PMD SNCT CNCT SB(15) CB(10));
    assert_int_equal(strlen(resp), 128);
    assert_true(strlen(resp) < DEFLATE_RESPONSE_MAX);
}

#define REQUEST_HEAD                                                                            \
    "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"    \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

static bool negotiate_request(const char *head, enum deflate_mode mode, struct deflate_params *p,
                              char resp[DEFLATE_RESPONSE_MAX])
{
    struct http_request req;
    size_t n = strlen(head);
    const char *buf = (const char *)guard_copy(head, n);
    assert_int_equal(http_parse_request(buf, n, &req), (int)n);
    return deflate_negotiate_request(&req, mode, p, resp);
}

/* Every Sec-WebSocket-Extensions line, in any case, in order, and nothing else. */
static void request_collects_every_extensions_header(void **state)
{
    (void)state;
    struct deflate_params p;
    char resp[DEFLATE_RESPONSE_MAX];
    assert_true(negotiate_request(REQUEST_HEAD
                                  "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
                                  "Sec-WebSocket-Protocol: " PMD "\r\n"
                                  "sec-websocket-extensions: " PMD "; foo\r\n"
                                  "X-Extensions: " PMD "\r\n"
                                  "SEC-WEBSOCKET-EXTENSIONS:  " PMD
                                  "; client_max_window_bits=9  \r\n"
                                  "Sec-WebSocket-Extensions: " PMD "\r\n\r\n",
                                  DEFLATE_TAKEOVER, &p, resp));
    assert_true(p.on);
    assert_false(p.client_no_takeover);
    assert_int_equal(p.client_bits, 9);
    assert_int_equal(p.server_bits, 15);
    assert_string_equal(resp, PMD CB(9));

    assert_false(negotiate_request(REQUEST_HEAD "Sec-WebSocket-Protocol: " PMD "\r\n\r\n",
                                   DEFLATE_ON, &p, resp));
    assert_false(p.on);
    assert_false(negotiate_request(REQUEST_HEAD "Sec-WebSocket-Extensions: " PMD "\r\n"
                                   "Sec-WebSocket-Extensions: " PMD "; \r\n\r\n",
                                   DEFLATE_ON, &p, resp));
    assert_false(negotiate_request(REQUEST_HEAD "Sec-WebSocket-Extensions: " PMD "\r\n\r\n",
                                   DEFLATE_OFF, &p, resp));
    assert_true(negotiate_request(REQUEST_HEAD "Sec-WebSocket-Extensions: " PMD "\r\n\r\n",
                                  DEFLATE_ON, &p, resp));
    assert_string_equal(resp, PMD CNCT);
}

static void mode_names_round_trip(void **state)
{
    (void)state;
    static const enum deflate_mode modes[] = { DEFLATE_OFF, DEFLATE_ON, DEFLATE_TAKEOVER };
    static const char *const names[] = { "off", "on", "takeover" };
    for (size_t i = 0; i < 3; i++) {
        enum deflate_mode m = (enum deflate_mode)9;
        assert_string_equal(deflate_mode_name(modes[i]), names[i]);
        assert_true(deflate_mode_parse(names[i], &m));
        assert_int_equal(m, modes[i]);
    }
    assert_string_equal(deflate_mode_name((enum deflate_mode)7), "?");
    static const char *const bad[] = { "", "ON", "Off", "no", "yes", "1", "true", "takeover ",
                                       " on", "of", "onn", "take" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum deflate_mode m = DEFLATE_TAKEOVER;
        if (deflate_mode_parse(bad[i], &m))
            fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(m, DEFLATE_TAKEOVER);
    }
}

int main(void)
{
    COUNT(rfc7692);
    COUNT(autobahn);
    COUNT(browsers);
    COUNT(values);
    COUNT(quoted);
    COUNT(params);
    COUNT(syntax);
    COUNT(lists);
    print_message("%zu header cases, each in 3 modes\n", case_count);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc7692_parameters_and_examples),
        cmocka_unit_test(autobahn_12_and_13_offers),
        cmocka_unit_test(browser_offers),
        cmocka_unit_test(window_bits_and_valueless_parameters),
        cmocka_unit_test(quoted_values_are_unquoted_tokens),
        cmocka_unit_test(duplicate_unknown_and_case_insensitive_parameters),
        cmocka_unit_test(ows_empty_elements_and_malformed_lists),
        cmocka_unit_test(other_extensions_and_repeated_header_lines),
        cmocka_unit_test(nul_byte_is_malformed),
        cmocka_unit_test(no_header_declines),
        cmocka_unit_test(a_mode_outside_the_enum_declines),
        cmocka_unit_test(longest_response_fits),
        cmocka_unit_test(request_collects_every_extensions_header),
        cmocka_unit_test(mode_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
