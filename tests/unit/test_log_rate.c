/* log_rate: a repeated warning is logged once, then counted and summarised per interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"

static void first_occurrence_is_logged_at_once(void **state)
{
    (void)state;
    struct log_rate r = { .interval_ms = 1000 };
    assert_true(log_rate_hit(&r, 5000, 1));
    assert_int_equal(log_rate_wait_ms(&r, 5000), -1); /* nothing held: no summary to wait for */
    assert_int_equal(log_rate_due(&r, 9000), 0);
}

static void repeats_within_the_interval_are_counted_then_summarised(void **state)
{
    (void)state;
    struct log_rate r = { .interval_ms = 1000 };
    assert_true(log_rate_hit(&r, 0, 1));
    for (int i = 0; i < 142; i++)
        assert_false(log_rate_hit(&r, 10 + i, 1));
    assert_int_equal(log_rate_wait_ms(&r, 400), 600);
    assert_int_equal(log_rate_due(&r, 999), 0);
    assert_int_equal(log_rate_due(&r, 1000), 142);
    assert_int_equal(log_rate_due(&r, 1001), 0); /* given once */
}

static void after_a_summary_the_next_interval_holds_too(void **state)
{
    (void)state;
    struct log_rate r = { .interval_ms = 1000 };
    assert_true(log_rate_hit(&r, 0, 1));
    assert_false(log_rate_hit(&r, 500, 1));
    assert_int_equal(log_rate_due(&r, 1000), 1);
    /* A flood that goes on produces one summary per interval, never one line each. */
    assert_false(log_rate_hit(&r, 1200, 1));
    assert_int_equal(log_rate_due(&r, 1500), 0);
    assert_int_equal(log_rate_due(&r, 2000), 1);
}

static void a_quiet_interval_makes_the_next_occurrence_immediate(void **state)
{
    (void)state;
    struct log_rate r = { .interval_ms = 1000 };
    assert_true(log_rate_hit(&r, 0, 1));
    assert_false(log_rate_hit(&r, 100, 1));
    assert_int_equal(log_rate_due(&r, 1000), 1);
    assert_true(log_rate_hit(&r, 2500, 1)); /* nothing held and the interval is over */
}

static void occurrences_after_the_interval_wait_for_the_summary(void **state)
{
    (void)state;
    struct log_rate r = { .interval_ms = 1000 };
    assert_true(log_rate_hit(&r, 0, 1));
    assert_false(log_rate_hit(&r, 10, 1));
    /* The interval is over, but the held count has not been given yet: this one joins it. */
    assert_false(log_rate_hit(&r, 1500, 1));
    assert_int_equal(log_rate_wait_ms(&r, 1500), 0);
    assert_int_equal(log_rate_due(&r, 1500), 2);
}

static void a_batch_counts_as_many_occurrences(void **state)
{
    (void)state;
    struct log_rate r = { .interval_ms = 1000 };
    assert_true(log_rate_hit(&r, 0, 3));
    assert_false(log_rate_hit(&r, 10, 5));
    assert_false(log_rate_hit(&r, 20, 2));
    assert_int_equal(log_rate_due(&r, 1000), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_occurrence_is_logged_at_once),
        cmocka_unit_test(repeats_within_the_interval_are_counted_then_summarised),
        cmocka_unit_test(after_a_summary_the_next_interval_holds_too),
        cmocka_unit_test(a_quiet_interval_makes_the_next_occurrence_immediate),
        cmocka_unit_test(occurrences_after_the_interval_wait_for_the_summary),
        cmocka_unit_test(a_batch_counts_as_many_occurrences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
