/*
 * check_master_connlimit.c - the master's connection counting per client
 * address and in all (master_connlimit.c); the address keys themselves are
 * check_netaddr.c's.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "master_connlimit.h"
#include "netaddr.h"
#include "check_run.h"
#include "check_sockaddr.h"

static struct mg_ipkey key_of(const char *text)
{
	struct sockaddr_storage ss;
	struct mg_ipkey key;

	sockaddr_from_text(text, &ss);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&ss, &key), 0);
	return key;
}

/* max_total and max_per_ip as given; the pre-login limit out of the way. */
static enum connlimit_verdict check(const struct connlimit *table, const struct mg_ipkey *addr,
				    unsigned max_total, unsigned max_per_ip)
{
	const struct connlimit_limits limits = { max_total, max_per_ip, 1000000 };

	return connlimit_check(table, addr, &limits);
}

START_TEST(per_ip_limit)
{
	struct connlimit table;
	struct mg_ipkey a = key_of("192.0.2.1"), b = key_of("192.0.2.2");

	connlimit_init(&table);
	ck_assert_int_eq(check(&table, &a, 10, 2), CONNLIMIT_OK);
	ck_assert_int_eq(connlimit_add(&table, 7, 100, &a), 0);
	ck_assert_int_eq(connlimit_add(&table, 7, 101, &a), 0);
	ck_assert_int_eq(check(&table, &a, 10, 2), CONNLIMIT_PER_IP);
	ck_assert_int_eq(check(&table, &b, 10, 2), CONNLIMIT_OK);
	ck_assert_int_eq(connlimit_remove(&table, 7, 100), 0);
	ck_assert_int_eq(check(&table, &a, 10, 2), CONNLIMIT_OK);
	connlimit_free(&table);
}
END_TEST

START_TEST(total_limit)
{
	struct connlimit table;
	struct mg_ipkey a = key_of("192.0.2.1"), b = key_of("2001:db8::1");

	connlimit_init(&table);
	ck_assert_int_eq(connlimit_add(&table, 7, 1, &a), 0);
	ck_assert_int_eq(connlimit_add(&table, 7, 2, &b), 0);
	ck_assert_int_eq(check(&table, &b, 2, 100), CONNLIMIT_TOTAL);
	ck_assert_int_eq(check(&table, &b, 3, 100), CONNLIMIT_OK);
	connlimit_free(&table);
}
END_TEST

START_TEST(remove_unknown_pid)
{
	struct connlimit table;
	struct mg_ipkey a = key_of("192.0.2.1");

	connlimit_init(&table);
	ck_assert_int_eq(connlimit_remove(&table, 7, 42), -1);
	ck_assert_int_eq(connlimit_add(&table, 7, 42, &a), 0);
	ck_assert_int_eq(connlimit_remove(&table, 7, 42), 0);
	ck_assert_int_eq(connlimit_remove(&table, 7, 42), -1);
	ck_assert_uint_eq(table.count, 0);
	connlimit_free(&table);
}
END_TEST

/* An engine that dies takes exactly its own sessions out of the count. */
START_TEST(remove_group_forgets_one_engine)
{
	struct connlimit table;
	struct mg_ipkey a = key_of("192.0.2.1");

	connlimit_init(&table);
	ck_assert_int_eq(connlimit_add(&table, 1, 5, &a), 0);
	ck_assert_int_eq(connlimit_add(&table, 2, 5, &a), 0);
	ck_assert_int_eq(connlimit_add(&table, 1, 6, &a), 0);
	ck_assert_int_eq(connlimit_add(&table, 2, 7, &a), 0);
	ck_assert_uint_eq(connlimit_remove_group(&table, 1), 2);
	ck_assert_uint_eq(table.count, 2);
	ck_assert_int_eq(connlimit_remove(&table, 1, 5), -1);
	ck_assert_int_eq(connlimit_remove(&table, 2, 5), 0);
	ck_assert_uint_eq(connlimit_remove_group(&table, 1), 0);
	ck_assert_uint_eq(connlimit_remove_group(&table, 2), 1);
	ck_assert_uint_eq(table.count, 0);
	connlimit_free(&table);
}
END_TEST

START_TEST(grows_past_initial_capacity)
{
	struct connlimit table;
	struct mg_ipkey a = key_of("192.0.2.1");

	connlimit_init(&table);
	for (int pid = 1; pid <= 1000; pid++)
		ck_assert_int_eq(connlimit_add(&table, 7, pid, &a), 0);
	ck_assert_uint_eq(table.count, 1000);
	ck_assert_int_eq(check(&table, &a, 2000, 1000), CONNLIMIT_PER_IP);
	ck_assert_int_eq(check(&table, &a, 2000, 1001), CONNLIMIT_OK);
	for (int pid = 1000; pid >= 1; pid--)
		ck_assert_int_eq(connlimit_remove(&table, 7, pid), 0);
	ck_assert_uint_eq(table.count, 0);
	connlimit_free(&table);
}
END_TEST

/* Not logged in yet is what max_prelogin_per_ip counts; logged in, a session counts only in total. */
START_TEST(prelogin_limit)
{
	const struct connlimit_limits limits = { .max_total = 100, .max_per_ip = 0,
						 .max_prelogin_per_ip = 2 };
	struct connlimit table;
	struct mg_ipkey a = key_of("192.0.2.1"), b = key_of("192.0.2.2");

	connlimit_init(&table);
	ck_assert_int_eq(connlimit_add(&table, 7, 1, &a), 0);
	ck_assert_int_eq(connlimit_add(&table, 7, 2, &a), 0);
	ck_assert_int_eq(connlimit_check(&table, &a, &limits), CONNLIMIT_PRELOGIN_PER_IP);
	ck_assert_int_eq(connlimit_check(&table, &b, &limits), CONNLIMIT_OK);
	ck_assert_int_eq(connlimit_logged_in(&table, 7, 1, 42), 0);
	ck_assert_int_eq(connlimit_check(&table, &a, &limits), CONNLIMIT_OK);
	/* an office behind one address: many logged in, no limit per address by default */
	for (uint64_t id = 10; id < 60; id++) {
		ck_assert_int_eq(connlimit_add(&table, 7, id, &a), 0);
		ck_assert_int_eq(connlimit_logged_in(&table, 7, id, 43), 0);
	}
	ck_assert_int_eq(connlimit_check(&table, &a, &limits), CONNLIMIT_OK);
	ck_assert_int_eq(connlimit_logged_in(&table, 7, 999, 42), -1);
	ck_assert_int_eq(connlimit_logged_in(&table, 8, 1, 42), -1);
	/* by user and address: 42 once, 43 fifty times, from a; nobody from b */
	ck_assert_uint_eq(connlimit_user_sessions(&table, &a, 42), 1);
	ck_assert_uint_eq(connlimit_user_sessions(&table, &a, 43), 50);
	ck_assert_uint_eq(connlimit_user_sessions(&table, &b, 43), 0);
	ck_assert_uint_eq(connlimit_user_sessions(&table, &a, 44), 0);
	connlimit_free(&table);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("connlimit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, per_ip_limit);
	tcase_add_test(tc, total_limit);
	tcase_add_test(tc, prelogin_limit);
	tcase_add_test(tc, remove_unknown_pid);
	tcase_add_test(tc, grows_past_initial_capacity);
	tcase_add_test(tc, remove_group_forgets_one_engine);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
