/*
 * check_netaddr.c - socket addresses as keys and as text (lib/netaddr.c): an
 * IPv4 client is the same key whether it came over IPv4 or as a v4-mapped
 * address on a dual-stack socket, and is shown as plain IPv4 either way;
 * other families are refused.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"
#include "check_run.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* The numeric address text and port as a socket address (AF_INET or AF_INET6). */
static struct sockaddr_storage address(const char *host, unsigned port)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	char service[8];

	snprintf(service, sizeof(service), "%u", port);
	ck_assert_msg(getaddrinfo(host, service, &hints, &ai) == 0, "bad test address %s", host);
	memset(&ss, 0, sizeof(ss));
	ck_assert_uint_le(ai->ai_addrlen, sizeof(ss));
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return ss;
}

struct addr_case {
	const char *host;
	unsigned port;
	const char *key;	/* the 16 key bytes as an IPv6 address */
	const char *shown;	/* netaddr_host_port() */
	const char *formatted;	/* netaddr_format() */
};

static const struct addr_case addr_cases[] = {
	{ "192.0.2.1", 143, "::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1:143" },
	{ "0.0.0.0", 0, "::ffff:0.0.0.0", "0.0.0.0", "0.0.0.0:0" },
	{ "255.255.255.255", 65535, "::ffff:255.255.255.255", "255.255.255.255",
	  "255.255.255.255:65535" },
	{ "2001:db8::1", 993, "2001:db8::1", "2001:db8::1", "[2001:db8::1]:993" },
	{ "::ffff:198.51.100.9", 110, "::ffff:198.51.100.9", "198.51.100.9", "198.51.100.9:110" },
	/* v4-compatible (deprecated) is not v4-mapped: it stays IPv6 */
	{ "::192.0.2.7", 1, "::192.0.2.7", "::192.0.2.7", "[::192.0.2.7]:1" },
	{ "::1", 995, "::1", "::1", "[::1]:995" },
	{ "::", 7, "::", "::", "[::]:7" },
};

START_TEST(test_addresses)
{
	const struct addr_case *c = &addr_cases[_i];
	struct sockaddr_storage ss = address(c->host, c->port);
	struct in6_addr want;
	struct mg_ipkey key;
	char host[INET6_ADDRSTRLEN], text[64];
	unsigned port = 12345;

	ck_assert_int_eq(inet_pton(AF_INET6, c->key, &want), 1);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&ss, &key), 0);
	ck_assert_msg(memcmp(key.bytes, &want, 16) == 0, "%s: wrong key", c->host);
	ck_assert_int_eq(netaddr_host_port((struct sockaddr *)&ss, host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, c->shown);
	ck_assert_uint_eq(port, c->port);
	ck_assert_str_eq(netaddr_format((struct sockaddr *)&ss, text, sizeof(text)), c->formatted);
}
END_TEST

/* An IPv4 client on a dual-stack socket is the same client as over IPv4. */
START_TEST(test_v4_mapped_equals_v4)
{
	struct sockaddr_storage plain = address("192.0.2.7", 1);
	struct sockaddr_storage mapped = address("::ffff:192.0.2.7", 2);
	struct sockaddr_storage compat = address("::192.0.2.7", 1);
	struct sockaddr_storage next = address("192.0.2.8", 1);
	struct mg_ipkey a, b, c, d;

	ck_assert_int_eq(netaddr_key((struct sockaddr *)&plain, &a), 0);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&mapped, &b), 0);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&compat, &c), 0);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&next, &d), 0);
	ck_assert(netaddr_key_equal(&a, &a));
	ck_assert(netaddr_key_equal(&a, &b));
	ck_assert(netaddr_key_equal(&b, &a));
	ck_assert(!netaddr_key_equal(&a, &c));
	ck_assert(!netaddr_key_equal(&a, &d));
}
END_TEST

/* Not an IP address: refused, and shown as "unknown" with port 0. */
START_TEST(test_other_family)
{
	struct sockaddr_storage ss;
	struct mg_ipkey key;
	char host[64], text[64];
	unsigned port = 12345;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&ss, &key), -1);
	ck_assert_int_eq(netaddr_host_port((struct sockaddr *)&ss, host, sizeof(host), &port), -1);
	ck_assert_str_eq(host, "unknown");
	ck_assert_uint_eq(port, 0);
	ck_assert_str_eq(netaddr_format((struct sockaddr *)&ss, text, sizeof(text)), "unknown:0");
}
END_TEST

/* A buffer too small for the text gets a cut, terminated string. */
START_TEST(test_format_truncates)
{
	struct sockaddr_storage ss = address("2001:db8::1", 993);
	char text[8];

	memset(text, 'x', sizeof(text));
	ck_assert_ptr_eq(netaddr_format((struct sockaddr *)&ss, text, sizeof(text)), text);
	ck_assert_str_eq(text, "[2001:d");
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("netaddr");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_addresses, 0, TABLE_LEN(addr_cases));
	tcase_add_test(tc, test_v4_mapped_equals_v4);
	tcase_add_test(tc, test_other_family);
	tcase_add_test(tc, test_format_truncates);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
