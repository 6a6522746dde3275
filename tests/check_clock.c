/*
 * check_clock.c - the one clock (lib/clock.c): readings never go back, the
 * millisecond and microsecond readings are the same clock, and mg_ms_left()
 * is 0 for a deadline passed or due now, the distance for one ahead, and
 * INT_MAX at most, so poll() never gets a negative or wrapped timeout.
 */
#include <check.h>
#include <limits.h>

#include "check_run.h"
#include "clock.h"

START_TEST(readings_never_go_back)
{
	long long prev_ms = mg_now_ms(), prev_us = mg_now_us();

	for (int i = 0; i < 10000; i++) {
		long long ms = mg_now_ms(), us = mg_now_us();

		ck_assert_int_ge(ms, prev_ms);
		ck_assert_int_ge(us, prev_us);
		prev_ms = ms;
		prev_us = us;
	}
}
END_TEST

START_TEST(ms_and_us_are_one_clock)
{
	long long ms_before = mg_now_ms();
	long long us = mg_now_us();
	long long ms_after = mg_now_ms();

	/* Truncation puts us / 1000 between the two millisecond readings. */
	ck_assert_int_ge(us / 1000, ms_before);
	ck_assert_int_le(us / 1000, ms_after);
}
END_TEST

START_TEST(ms_left_bounds)
{
	long long now = mg_now_ms();
	int left;

	ck_assert_int_eq(mg_ms_left(now - 1), 0);
	ck_assert_int_eq(mg_ms_left(now - 1000000), 0);
	ck_assert_int_eq(mg_ms_left(LLONG_MIN / 2), 0);
	left = mg_ms_left(mg_now_ms() + 60000);
	ck_assert_int_gt(left, 59000);
	ck_assert_int_le(left, 60000);
	/* A deadline beyond what poll() takes is capped, never wrapped. */
	ck_assert_int_eq(mg_ms_left(mg_now_ms() + (long long)INT_MAX * 4), INT_MAX);
	ck_assert_int_eq(mg_ms_left(LLONG_MAX / 2), INT_MAX);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("clock");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, readings_never_go_back);
	tcase_add_test(tc, ms_and_us_are_one_clock);
	tcase_add_test(tc, ms_left_bounds);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
