/*
 * check_config_cidr.c - unit tests for config_cidr.c: parsing (IPv4, IPv6, v4-mapped,
 * single addresses, every edge prefix, a table of hostile input), matching
 * by whole bytes and the partial byte, and cidr_format round trips.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_cidr.h"
#include "netaddr.h"
#include "check_run.h"

/* A client address as the master would key it (IPv4 as ::ffff:a.b.c.d). */
static struct mg_ipkey key_of(const char *text)
{
	struct mg_ipkey key;

	memset(&key, 0, sizeof(key));
	if (strchr(text, ':') != NULL) {
		ck_assert_int_eq(inet_pton(AF_INET6, text, key.bytes), 1);
	} else {
		key.bytes[10] = 0xff;
		key.bytes[11] = 0xff;
		ck_assert_int_eq(inet_pton(AF_INET, text, key.bytes + 12), 1);
	}
	return key;
}

static struct mg_cidr net_of(const char *text)
{
	struct mg_cidr net;
	const char *error = NULL;

	ck_assert_msg(cidr_parse(text, &net, &error) == 0, "%s: %s", text, error);
	return net;
}

/* ---- good input ----------------------------------------------------------- */

struct good_case {
	const char *text;
	unsigned prefix;	/* over the 16-byte key */
	const char *formatted;
};

static const struct good_case good_cases[] = {
	{ "192.0.2.0/24", 120, "192.0.2.0/24" },
	{ "192.0.2.1", 128, "192.0.2.1/32" },
	{ "192.0.2.1/32", 128, "192.0.2.1/32" },
	{ "192.0.2.0/31", 127, "192.0.2.0/31" },
	{ "10.16.0.0/20", 116, "10.16.0.0/20" },
	{ "10.0.0.0/8", 104, "10.0.0.0/8" },
	{ "128.0.0.0/1", 97, "128.0.0.0/1" },
	{ "0.0.0.0/0", 96, "0.0.0.0/0" },
	{ "255.255.255.255/32", 128, "255.255.255.255/32" },
	{ "2001:db8::/32", 32, "2001:db8::/32" },
	{ "2001:db8::1", 128, "2001:db8::1/128" },
	{ "2001:db8::1/128", 128, "2001:db8::1/128" },
	{ "2001:db8::/127", 127, "2001:db8::/127" },
	{ "2001:db8:0:0:8000::/65", 65, "2001:db8:0:0:8000::/65" },
	{ "2001:DB8::/48", 48, "2001:db8::/48" },
	{ "2001:0db8:0000::/48", 48, "2001:db8::/48" },
	{ "fe80::/10", 10, "fe80::/10" },
	{ "::/0", 0, "::/0" },
	{ "::1", 128, "::1/128" },
	{ "::ffff:192.0.2.0/120", 120, "192.0.2.0/24" },
	{ "::ffff:0:0/96", 96, "0.0.0.0/0" },
	{ "::ffff:192.0.2.7", 128, "192.0.2.7/32" },
	{ "::192.0.2.0/120", 120, "::192.0.2.0/120" },	/* IPv4-compatible: not IPv4 */
};

START_TEST(parse_good)
{
	const struct good_case *c = &good_cases[_i];
	struct mg_cidr net = net_of(c->text);
	char buf[INET6_ADDRSTRLEN + 4];

	ck_assert_uint_eq(net.prefix, c->prefix);
	ck_assert_str_eq(cidr_format(&net, buf, sizeof(buf)), c->formatted);
}
END_TEST

/* Parse, format, parse again: the same network. */
START_TEST(format_round_trip)
{
	const struct good_case *c = &good_cases[_i];
	struct mg_cidr net = net_of(c->text), again;
	char buf[INET6_ADDRSTRLEN + 4];

	cidr_format(&net, buf, sizeof(buf));
	again = net_of(buf);
	ck_assert(netaddr_key_equal(&net.network, &again.network));
	ck_assert_uint_eq(net.prefix, again.prefix);
}
END_TEST

START_TEST(v4_mapped_network_is_v4_network)
{
	struct mg_cidr a = net_of("::ffff:192.0.2.0/120"), b = net_of("192.0.2.0/24");
	struct mg_cidr c = net_of("0.0.0.0/0"), d = net_of("::ffff:0.0.0.0/96");

	ck_assert(netaddr_key_equal(&a.network, &b.network));
	ck_assert_uint_eq(a.prefix, b.prefix);
	ck_assert(netaddr_key_equal(&c.network, &d.network));
	ck_assert_uint_eq(c.prefix, d.prefix);
}
END_TEST

START_TEST(format_small_buffers)
{
	struct mg_cidr net = net_of("192.0.2.0/24");
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	ck_assert_ptr_eq(cidr_format(&net, buf, 0), buf);
	ck_assert_int_eq(buf[0], 'x');
	ck_assert_str_eq(cidr_format(&net, buf, sizeof(buf)), "192.0.2");
	ck_assert_str_eq(cidr_format(&net, buf, 1), "");
}
END_TEST

/* ---- matching ------------------------------------------------------------- */

struct match_case {
	const char *net;
	const char *addr;
	bool match;
};

static const struct match_case match_cases[] = {
	/* IPv4, also as v4-mapped clients of a dual-stack socket. */
	{ "192.0.2.0/24", "192.0.2.7", true },
	{ "192.0.2.0/24", "::ffff:192.0.2.7", true },
	{ "192.0.2.0/24", "192.0.2.255", true },
	{ "192.0.2.0/24", "192.0.3.0", false },
	{ "192.0.2.0/24", "::ffff:192.0.3.7", false },
	{ "192.0.2.0/24", "::192.0.2.7", false },	/* IPv4-compatible is IPv6 */
	{ "192.0.2.0/24", "2001:db8::c000:207", false },
	{ "::ffff:192.0.2.0/120", "192.0.2.7", true },
	/* /0 IPv4 is ::ffff:0:0/96: every IPv4 client, no IPv6 client. */
	{ "0.0.0.0/0", "192.0.2.1", true },
	{ "0.0.0.0/0", "0.0.0.0", true },
	{ "0.0.0.0/0", "255.255.255.255", true },
	{ "0.0.0.0/0", "::ffff:10.1.2.3", true },
	{ "0.0.0.0/0", "2001:db8::1", false },
	{ "0.0.0.0/0", "::1", false },
	{ "0.0.0.0/0", "::", false },
	{ "0.0.0.0/0", "::fffe:10.1.2.3", false },
	/* /0 IPv6 matches everything. */
	{ "::/0", "2001:db8::1", true },
	{ "::/0", "192.0.2.1", true },
	{ "::/0", "::", true },
	{ "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
	/* Host routes. */
	{ "192.0.2.1/32", "192.0.2.1", true },
	{ "192.0.2.1", "192.0.2.1", true },
	{ "192.0.2.1/32", "192.0.2.0", false },
	{ "192.0.2.1/32", "192.0.2.3", false },
	{ "2001:db8::1/128", "2001:db8::1", true },
	{ "2001:db8::1", "2001:db8::1", true },
	{ "2001:db8::1/128", "2001:db8::", false },
	{ "2001:db8::1/128", "2001:db8::3", false },
	/* One bit left. */
	{ "192.0.2.0/31", "192.0.2.0", true },
	{ "192.0.2.0/31", "192.0.2.1", true },
	{ "192.0.2.0/31", "192.0.2.2", false },
	{ "2001:db8::/127", "2001:db8::", true },
	{ "2001:db8::/127", "2001:db8::1", true },
	{ "2001:db8::/127", "2001:db8::2", false },
	/* Not byte aligned. */
	{ "10.16.0.0/20", "10.16.0.0", true },
	{ "10.16.0.0/20", "10.16.15.255", true },
	{ "10.16.0.0/20", "10.16.16.0", false },
	{ "10.16.0.0/20", "10.15.255.255", false },
	{ "10.16.0.0/20", "10.144.0.1", false },	/* differs in the masked byte's top bit */
	{ "128.0.0.0/1", "200.1.2.3", true },
	{ "128.0.0.0/1", "127.255.255.255", false },
	{ "2001:db8::/65", "2001:db8::1", true },
	{ "2001:db8::/65", "2001:db8::7fff:ffff:ffff:ffff", true },
	{ "2001:db8::/65", "2001:db8::8000:0:0:0", false },
	{ "2001:db8:0:0:8000::/65", "2001:db8::8000:0:0:1", true },
	{ "2001:db8:0:0:8000::/65", "2001:db8::ffff:ffff:ffff:ffff", true },
	{ "2001:db8:0:0:8000::/65", "2001:db8::1", false },
	{ "2001:db8::/32", "2001:db8:ffff::1", true },
	{ "2001:db8::/32", "2001:db9::1", false },
	{ "fe80::/10", "febf::1", true },
	{ "fe80::/10", "fec0::1", false },
};

START_TEST(match_table)
{
	const struct match_case *c = &match_cases[_i];
	struct mg_cidr net = net_of(c->net);
	struct mg_ipkey addr = key_of(c->addr);

	ck_assert_msg(cidr_match(&net, &addr) == c->match, "%s vs %s: expected %s", c->net,
		      c->addr, c->match ? "match" : "no match");
}
END_TEST

START_TEST(match_any)
{
	struct mg_cidr nets[3];
	struct mg_ipkey a = key_of("10.1.2.3"), b = key_of("2001:db8::5"), c = key_of("192.0.2.1");

	nets[0] = net_of("10.0.0.0/8");
	nets[1] = net_of("2001:db8::/64");
	nets[2] = net_of("172.16.0.0/12");
	ck_assert(cidr_match_any(nets, 3, &a));
	ck_assert(cidr_match_any(nets, 3, &b));
	ck_assert(!cidr_match_any(nets, 3, &c));
	ck_assert(!cidr_match_any(nets, 1, &b));
	ck_assert(!cidr_match_any(NULL, 0, &a));
}
END_TEST

/* A struct not made by cidr_parse with a prefix over 128 matches nothing. */
START_TEST(match_broken_prefix)
{
	struct mg_cidr net;
	struct mg_ipkey addr = key_of("::");

	memset(&net, 0, sizeof(net));
	net.prefix = 129;
	ck_assert(!cidr_match(&net, &addr));
}
END_TEST

/* ---- bad input ------------------------------------------------------------ */

static const char *const bad_cases[] = {
	"",
	"/",
	"/24",
	"1.2.3.4/",
	"1.2.3.4/33",
	"1.2.3.4/100",
	"1.2.3.4/4294967328",		/* 2^32 + 32: no wrap-around */
	"1.2.3.4/99999999999999999999",
	"::/129",
	"::/1000",
	"1.2.3.4/024",
	"1.2.3.4/00",
	"::/0128",
	"1.2.3.4/+4",
	"1.2.3.4/-4",
	"1.2.3.4/ 4",
	"1.2.3.4/4 ",
	"1.2.3.4/0x4",
	"1.2.3.4//32",
	"1.2.3.4/32/32",
	"1.2.3.4/3a",
	"192.0.2.1/24",			/* host bits */
	"192.0.2.128/24",
	"10.16.8.0/20",
	"192.0.2.1/31",
	"2001:db8::1/64",
	"2001:db8::/16",
	"2001:db8:0:0:c000::/65",
	"::ffff:192.0.2.1/120",
	"::ffff:0:0/80",		/* the ffff is host bits of a /80 */
	"1.0.0.0/0",
	"::1/0",
	"300.1.1.1",
	"256.0.0.0/8",
	"1.2.3",
	"1.2.3.4.5",
	"1.2.3.",
	"01.2.3.4",
	"1.2.3.04",
	"1.2.3.4x",
	"1.2.3.0/24x",
	"1.2.3.4 ",
	" 1.2.3.4",
	"1.2.3.4\n",
	"0x7f.0.0.1",
	"127.1",
	"localhost",
	"fe80::1%eth0",
	"fe80::%eth0/64",
	"[2001:db8::1]",
	"[2001:db8::]/32",
	"2001:db8:::1",
	"2001:db8::1::2",
	"12345::",
	"1:2:3:4:5:6:7:8:9",
	"1:2:3:4:5:6:7",
	":1",
	"1:",
	"g::",
	"2001:db8::/32 ",
	"2001:db8::1/-0",
	"2001:db8:0:0:0:0:0:0:0000:0000:0000:0000:0000:0000/32",	/* over INET6_ADDRSTRLEN */
};

START_TEST(parse_bad)
{
	const char *text = bad_cases[_i];
	struct mg_cidr net, before;
	const char *error = NULL;

	memset(&net, 0x5a, sizeof(net));
	before = net;
	ck_assert_msg(cidr_parse(text, &net, &error) == -1, "accepted \"%s\"", text);
	ck_assert_ptr_nonnull(error);
	ck_assert(error[0] != '\0');
	/* A failed parse leaves the output alone. */
	ck_assert(memcmp(&net, &before, sizeof(net)) == 0);
}
END_TEST

START_TEST(parse_null)
{
	struct mg_cidr net;
	const char *error = NULL;

	ck_assert_int_eq(cidr_parse(NULL, &net, &error), -1);
	ck_assert_ptr_nonnull(error);
}
END_TEST

/* Every prefix length of both families parses and matches its own network. */
START_TEST(every_prefix_length)
{
	char text[64];
	struct mg_ipkey all_ones_v4 = key_of("255.255.255.255");
	struct mg_ipkey all_ones_v6 = key_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

	for (unsigned p = 0; p <= 32; p++) {
		struct mg_cidr net;

		snprintf(text, sizeof(text), "0.0.0.0/%u", p);
		net = net_of(text);
		ck_assert_uint_eq(net.prefix, 96 + p);
		ck_assert(cidr_match(&net, &net.network));
		/* 255.255.255.255 is in 0.0.0.0/p only for p == 0. */
		ck_assert(cidr_match(&net, &all_ones_v4) == (p == 0));
	}
	for (unsigned p = 0; p <= 128; p++) {
		struct mg_cidr net;

		snprintf(text, sizeof(text), "::/%u", p);
		net = net_of(text);
		ck_assert_uint_eq(net.prefix, p);
		ck_assert(cidr_match(&net, &all_ones_v6) == (p == 0));
	}
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("cidr");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, parse_good, 0, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
	tcase_add_loop_test(tc, format_round_trip, 0,
			    (int)(sizeof(good_cases) / sizeof(good_cases[0])));
	tcase_add_test(tc, v4_mapped_network_is_v4_network);
	tcase_add_test(tc, format_small_buffers);
	tcase_add_loop_test(tc, match_table, 0, (int)(sizeof(match_cases) / sizeof(match_cases[0])));
	tcase_add_test(tc, match_any);
	tcase_add_test(tc, match_broken_prefix);
	tcase_add_loop_test(tc, parse_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, parse_null);
	tcase_add_test(tc, every_prefix_length);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
