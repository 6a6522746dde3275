/*
 * check_master_penalty.c - the master's memory of failed logins: the delay
 * (2 s doubling to 15 s after the first failure, per address and per user),
 * the same wrong password not counted again, a success clearing the
 * address's streak, a quiet address starting again, bans over a sliding
 * window and their end, one warning per user per window, IPv6 counted per
 * prefix, lifting and listing bans, and tables that stay bounded (a ban
 * outlasting a flood of other addresses).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "check_sockaddr.h"
#include "master_penalty.h"

#define MIN (60 * 1000LL)
#define WINDOW (10 * MIN)
#define HOUR (60 * MIN)

static struct mg_ipkey addr(const char *text)
{
	struct sockaddr_storage ss;
	struct mg_ipkey key;

	sockaddr_from_text(text, &ss);
	ck_assert_int_eq(penalty_address((struct sockaddr *)&ss, 64, &key), 0);
	return key;
}

static struct penalty *table(unsigned ban_after)
{
	struct penalty *p = penalty_new(1024, 1024);
	struct penalty_limits l = { .ban_after = ban_after, .ban_window_ms = WINDOW,
				    .ban_time_ms = HOUR };

	ck_assert_ptr_nonnull(p);
	penalty_set_limits(p, &l);
	return p;
}

/* A failure with a user and a password of its own each time (counted, no user streak). */
static struct penalty_verdict failed_login(struct penalty *p, const char *address, long long now)
{
	static uint64_t n = 1000;
	struct mg_ipkey a = addr(address);
	struct penalty_verdict v;

	n++;
	penalty_failed(p, &a, n, n, now, &v);
	return v;
}

START_TEST(delay_doubles_to_its_cap)
{
	struct penalty *p = table(0);
	const long long want[] = { 0, 2000, 4000, 8000, 15000, 15000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct penalty_verdict v = failed_login(p, "192.0.2.1", 1000 + (long long)i);

		ck_assert(v.counted);
		ck_assert_int_eq(v.delay_ms, want[i]);
		ck_assert(!v.banned);
	}
	/* another address is not slowed */
	ck_assert_int_eq(failed_login(p, "192.0.2.2", 2000).delay_ms, 0);
	penalty_free(p);
}
END_TEST

START_TEST(user_slowed_from_any_address)
{
	struct penalty *p = table(0);
	const char *from[] = { "198.51.100.1", "198.51.100.2", "198.51.100.3" };
	const long long want[] = { 0, 2000, 4000 };
	struct penalty_verdict v;

	for (int i = 0; i < 3; i++) {
		struct mg_ipkey a = addr(from[i]);

		penalty_failed(p, &a, 42, 100 + (uint64_t)i, 5000 + i, &v);
		ck_assert_int_eq(v.delay_ms, want[i]);
		ck_assert_uint_eq(v.user_failures, (unsigned)i + 1);
		ck_assert_uint_eq(v.address_failures, 1);
	}
	penalty_free(p);
}
END_TEST

START_TEST(same_wrong_password_counts_once)
{
	struct penalty *p = table(3);
	struct mg_ipkey a = addr("203.0.113.9");
	struct penalty_verdict v;

	penalty_failed(p, &a, 7, 77, 1000, &v);
	ck_assert(v.counted);
	for (int i = 1; i < 10; i++) {
		penalty_failed(p, &a, 7, 77, 1000 + i * MIN / 2, &v);
		ck_assert(!v.counted);
		ck_assert_int_eq(v.delay_ms, 0);
		ck_assert(!v.banned);
	}
	ck_assert(!penalty_banned(p, &a, 1000 + 5 * MIN, NULL));
	/* another password for the same user counts */
	penalty_failed(p, &a, 7, 78, 1000 + 5 * MIN, &v);
	ck_assert(v.counted);
	ck_assert_int_eq(v.delay_ms, 2000);
	/* the same password for another user counts too */
	penalty_failed(p, &a, 8, 77, 1000 + 5 * MIN, &v);
	ck_assert(v.counted);
	penalty_free(p);
}
END_TEST

START_TEST(success_clears_the_streak)
{
	struct penalty *p = table(0);
	struct mg_ipkey a = addr("192.0.2.50");

	failed_login(p, "192.0.2.50", 1000);
	failed_login(p, "192.0.2.50", 1001);
	ck_assert_int_eq(failed_login(p, "192.0.2.50", 1002).delay_ms, 4000);
	penalty_succeeded(p, &a, 1003);
	ck_assert_int_eq(failed_login(p, "192.0.2.50", 1004).delay_ms, 0);
	ck_assert_int_eq(failed_login(p, "192.0.2.50", 1005).delay_ms, 2000);
	/* a success from an address never seen changes nothing */
	a = addr("192.0.2.51");
	penalty_succeeded(p, &a, 1006);
	ck_assert(!penalty_banned(p, &a, 1006, NULL));
	penalty_free(p);
}
END_TEST

START_TEST(quiet_address_starts_again)
{
	struct penalty *p = table(0);

	failed_login(p, "192.0.2.60", 1000);
	ck_assert_int_eq(failed_login(p, "192.0.2.60", 2000).delay_ms, 2000);
	ck_assert_int_eq(failed_login(p, "192.0.2.60", 2000 + WINDOW).delay_ms, 0);
	penalty_free(p);
}
END_TEST

START_TEST(ban_after_failures_in_the_window)
{
	struct penalty *p = table(5);
	struct mg_ipkey a = addr("192.0.2.70");
	long long until = 0;
	struct penalty_verdict v;

	for (int i = 0; i < 4; i++)
		ck_assert(!failed_login(p, "192.0.2.70", 1000 + i).banned);
	v = failed_login(p, "192.0.2.70", 1004);
	ck_assert(v.banned);
	ck_assert_int_eq(v.banned_until, 1004 + HOUR);
	ck_assert(penalty_banned(p, &a, 1005, &until));
	ck_assert_int_eq(until, 1004 + HOUR);
	/* further failures while banned do not ban again */
	ck_assert(!failed_login(p, "192.0.2.70", 1006).banned);
	ck_assert(penalty_banned(p, &a, 1004 + HOUR - 1, NULL));
	ck_assert(!penalty_banned(p, &a, 1004 + HOUR, NULL));
	/* others are not banned */
	a = addr("192.0.2.71");
	ck_assert(!penalty_banned(p, &a, 1005, NULL));
	penalty_free(p);
}
END_TEST

START_TEST(window_slides)
{
	struct penalty *p = table(5);
	struct mg_ipkey a = addr("192.0.2.80");
	long long t = 1000;

	/* 3 failures, then 3 more just after the window turned: 6 within ten minutes */
	for (int i = 0; i < 3; i++)
		ck_assert(!failed_login(p, "192.0.2.80", t + i).banned);
	t += WINDOW + 1000;
	ck_assert(!failed_login(p, "192.0.2.80", t).banned);
	ck_assert(!failed_login(p, "192.0.2.80", t + 1).banned);
	ck_assert(failed_login(p, "192.0.2.80", t + 2).banned);
	ck_assert(penalty_banned(p, &a, t + 3, NULL));
	/* 4 failures spread over an hour never ban */
	for (int i = 0; i < 8; i++)
		ck_assert(!failed_login(p, "192.0.2.81", 1000 + i * (WINDOW - 1000)).banned);
	penalty_free(p);
}
END_TEST

START_TEST(one_user_warning_per_window)
{
	struct penalty *p = table(3);
	struct penalty_verdict v;
	char from[32];
	int warnings = 0;

	for (int i = 0; i < 6; i++) {
		struct mg_ipkey a;

		snprintf(from, sizeof(from), "10.0.%d.1", i);
		a = addr(from);
		penalty_failed(p, &a, 99, 500 + (uint64_t)i, 1000 + i, &v);
		warnings += v.user_warning;
		if (i == 2)
			ck_assert(v.user_warning);
		ck_assert(!v.banned);	/* one failure per address */
	}
	ck_assert_int_eq(warnings, 1);
	/* two windows later: a new distributed run warns again */
	for (int i = 0; i < 3; i++) {
		struct mg_ipkey a;

		snprintf(from, sizeof(from), "10.1.%d.1", i);
		a = addr(from);
		penalty_failed(p, &a, 99, 900 + (uint64_t)i, 1000 + 3 * WINDOW + i, &v);
		warnings += v.user_warning;
	}
	ck_assert_int_eq(warnings, 2);
	penalty_free(p);
}
END_TEST

START_TEST(ipv6_counts_per_prefix)
{
	struct penalty *p = table(3);
	struct mg_ipkey a = addr("2001:db8:1:2::5"), b = addr("2001:db8:1:2:ffff::9");
	struct mg_ipkey c = addr("2001:db8:1:3::5");
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct mg_ipkey k;

	ck_assert(netaddr_key_equal(&a, &b));
	ck_assert(!netaddr_key_equal(&a, &c));
	failed_login(p, "2001:db8:1:2::1", 1000);
	failed_login(p, "2001:db8:1:2::2", 1001);
	ck_assert(failed_login(p, "2001:db8:1:2:abcd::3", 1002).banned);
	ck_assert(penalty_banned(p, &a, 1003, NULL));
	ck_assert(!penalty_banned(p, &c, 1003, NULL));
	/* IPv4, also v4-mapped, is one address whatever the prefix */
	ck_assert(!netaddr_key_equal((struct mg_ipkey[]){ addr("192.0.2.1") },
				     (struct mg_ipkey[]){ addr("192.0.2.2") }));
	ck_assert(!netaddr_key_equal((struct mg_ipkey[]){ addr("::ffff:192.0.2.1") },
				     (struct mg_ipkey[]){ addr("::ffff:192.0.2.2") }));
	ck_assert_int_eq(penalty_address((struct sockaddr *)&s6, 0, &k), -1);
	ck_assert_int_eq(penalty_address((struct sockaddr *)&s6, 129, &k), -1);
	ck_assert_int_eq(penalty_address((struct sockaddr *)&s6, 128, &k), 0);
	penalty_free(p);
}
END_TEST

static void collect(const struct mg_ipkey *address, long long until, void *arg)
{
	int *n = arg;

	(void)address;
	ck_assert_int_gt(until, 0);
	(*n)++;
}

START_TEST(lift_and_list)
{
	struct penalty *p = table(1);
	struct mg_ipkey a = addr("192.0.2.90");
	int seen = 0;

	ck_assert(failed_login(p, "192.0.2.90", 1000).banned);
	ck_assert(failed_login(p, "192.0.2.91", 1000).banned);
	ck_assert_uint_eq(penalty_each_ban(p, 1001, collect, &seen), 2);
	ck_assert_int_eq(seen, 2);
	ck_assert(penalty_lift(p, &a, 1002));
	ck_assert(!penalty_banned(p, &a, 1002, NULL));
	ck_assert(!penalty_lift(p, &a, 1003));
	/* its failures went with the ban: the next one is a first one */
	ck_assert_int_eq(failed_login(p, "192.0.2.90", 1004).delay_ms, 0);
	ck_assert_uint_eq(penalty_each_ban(p, 1004 + HOUR, collect, &seen), 0);
	penalty_free(p);
}
END_TEST

START_TEST(tables_stay_bounded)
{
	struct penalty *p = penalty_new(4, 4);
	struct penalty_limits l = { .ban_after = 1, .ban_window_ms = WINDOW, .ban_time_ms = HOUR };
	struct mg_ipkey banned = addr("192.0.2.100");
	char from[32];

	ck_assert_ptr_nonnull(p);
	penalty_set_limits(p, &l);
	ck_assert(failed_login(p, "192.0.2.100", 1000).banned);
	l.ban_after = 0;		/* the flood below bans nobody else */
	penalty_set_limits(p, &l);
	for (int i = 0; i < 500; i++) {
		snprintf(from, sizeof(from), "10.9.%d.%d", i / 250, i % 250 + 1);
		failed_login(p, from, 2000 + i);
	}
	ck_assert(penalty_banned(p, &banned, 3000, NULL));
	penalty_free(p);
	ck_assert_ptr_null(penalty_new(0, 4));
	ck_assert_ptr_null(penalty_new(4, 0));
	penalty_free(NULL);
}
END_TEST

static Suite *penalty_suite(void)
{
	Suite *s = suite_create("master_penalty");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, delay_doubles_to_its_cap);
	tcase_add_test(tc, user_slowed_from_any_address);
	tcase_add_test(tc, same_wrong_password_counts_once);
	tcase_add_test(tc, success_clears_the_streak);
	tcase_add_test(tc, quiet_address_starts_again);
	tcase_add_test(tc, ban_after_failures_in_the_window);
	tcase_add_test(tc, window_slides);
	tcase_add_test(tc, one_user_warning_per_window);
	tcase_add_test(tc, ipv6_counts_per_prefix);
	tcase_add_test(tc, lift_and_list);
	tcase_add_test(tc, tables_stay_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(penalty_suite());
}
