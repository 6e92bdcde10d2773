/* close_code_is_valid: which codes a peer may put in a Close frame (RFC 6455 §7.4, design §3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "close_code.h"

struct code_case {
    uint32_t code;
    bool valid;
};

static void check_codes(const struct code_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (close_code_is_valid(cases[i].code) != cases[i].valid)
            fail_msg("close code %u: expected %s", cases[i].code,
                     cases[i].valid ? "valid" : "invalid");
}

#define CHECK_CODES(cases) check_codes(cases, sizeof cases / sizeof cases[0])

static void below_1000_invalid(void **state)
{
    (void)state;
    static const struct code_case cases[] = { { 0, false }, { 1, false }, { 999, false } };
    CHECK_CODES(cases);
}

static void defined_codes_1000_to_1003_valid(void **state)
{
    (void)state;
    static const struct code_case cases[] = {
        { 1000, true }, { 1001, true }, { 1002, true }, { 1003, true },
    };
    CHECK_CODES(cases);
}

/* 1004 is reserved; 1005 (no status) and 1006 (abnormal closure) must never be on the wire. */
static void reserved_1004_to_1006_invalid(void **state)
{
    (void)state;
    static const struct code_case cases[] = { { 1004, false }, { 1005, false }, { 1006, false } };
    CHECK_CODES(cases);
}

static void defined_codes_1007_to_1014_valid(void **state)
{
    (void)state;
    for (uint32_t code = 1007; code <= 1014; code++)
        if (!close_code_is_valid(code))
            fail_msg("close code %u should be valid", code);
}

/* 1015 (TLS failure) must never be sent; 1016..2999 are unassigned. */
static void tls_1015_and_unassigned_1016_to_2999_invalid(void **state)
{
    (void)state;
    static const struct code_case cases[] = {
        { 1015, false }, { 1016, false }, { 1100, false }, { 2000, false }, { 2999, false },
    };
    CHECK_CODES(cases);
}

static void registered_and_private_3000_to_4999_valid(void **state)
{
    (void)state;
    static const struct code_case cases[] = {
        { 3000, true }, { 3999, true }, { 4000, true }, { 4999, true },
    };
    CHECK_CODES(cases);
}

static void from_5000_up_invalid(void **state)
{
    (void)state;
    static const struct code_case cases[] = {
        { 5000, false }, { 65535, false }, { 65536 + 1000, false }, { UINT32_MAX, false },
    };
    CHECK_CODES(cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(below_1000_invalid),
        cmocka_unit_test(defined_codes_1000_to_1003_valid),
        cmocka_unit_test(reserved_1004_to_1006_invalid),
        cmocka_unit_test(defined_codes_1007_to_1014_valid),
        cmocka_unit_test(tls_1015_and_unassigned_1016_to_2999_invalid),
        cmocka_unit_test(registered_and_private_3000_to_4999_valid),
        cmocka_unit_test(from_5000_up_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
