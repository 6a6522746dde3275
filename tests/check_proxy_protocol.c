/*
 * check_proxy_protocol.c - unit tests for proxy_protocol.c: good v1 lines and
 * v2 headers, every truncation of them (INCOMPLETE), a table of broken ones
 * each with the index of its first wrong byte (INCOMPLETE before it, INVALID
 * from it on), the length limits, and proxy_write for both versions and every
 * mix of address families, with write -> parse round trips.
 *
 * Every parse runs on an exact-size heap copy, so under ASan any read past
 * the bytes given is caught.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "netaddr.h"
#include "proxy_protocol.h"
#include "check_run.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static enum proxy_parse_result parse(const void *data, size_t len, size_t *consumed,
				     struct proxy_info *info, const char **error)
{
	unsigned char *copy = malloc(len > 0 ? len : 1);
	enum proxy_parse_result r;

	ck_assert_ptr_nonnull(copy);
	if (len > 0)
		memcpy(copy, data, len);
	r = proxy_parse(copy, len, consumed, info, error);
	free(copy);
	return r;
}

/* Only the result; checks what every non-OK answer promises. */
static enum proxy_parse_result result_of(const void *data, size_t len)
{
	struct proxy_info info;
	size_t consumed = 99;
	const char *error = "unset";
	enum proxy_parse_result r = parse(data, len, &consumed, &info, &error);

	if (r != PROXY_PARSE_OK) {
		ck_assert_uint_eq(consumed, 0);
		ck_assert_int_eq(info.has_addresses, 0);
	}
	if (r == PROXY_PARSE_INVALID) {
		ck_assert_ptr_nonnull(error);
		ck_assert(error[0] != '\0');
	} else {
		ck_assert_ptr_null(error);
	}
	if (r == PROXY_PARSE_INCOMPLETE)
		ck_assert_uint_lt(len, PROXY_HEADER_MAX);
	return r;
}

/* Every proper prefix of data[0..len) is INCOMPLETE. */
static void assert_truncations_incomplete(const void *data, size_t len)
{
	for (size_t k = 0; k < len; k++)
		ck_assert_msg(result_of(data, k) == PROXY_PARSE_INCOMPLETE,
			      "prefix of %zu bytes (of %zu) not INCOMPLETE", k, len);
}

/* data[bad_at] is the first wrong byte. */
static void assert_invalid_at(const void *data, size_t len, size_t bad_at)
{
	ck_assert_uint_lt(bad_at, len);
	assert_truncations_incomplete(data, bad_at + 1);
	ck_assert_msg(result_of(data, bad_at + 1) == PROXY_PARSE_INVALID,
		      "byte %zu not recognised as wrong", bad_at);
	for (size_t k = bad_at + 2; k <= len; k++)
		ck_assert_int_eq(result_of(data, k), PROXY_PARSE_INVALID);
}

static void assert_endpoint(const struct sockaddr_storage *ss, int family, const char *text,
			    unsigned port)
{
	unsigned char want[16], got[16];

	ck_assert_int_eq(ss->ss_family, family);
	ck_assert_int_eq(inet_pton(family, text, want), 1);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		memcpy(got, &sin->sin_addr, 4);
		ck_assert(memcmp(got, want, 4) == 0);
		ck_assert_uint_eq(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		memcpy(got, &sin6->sin6_addr, 16);
		ck_assert(memcmp(got, want, 16) == 0);
		ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
	}
}

/* ---- version 1 ------------------------------------------------------------ */

#define FF39 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

struct v1_good {
	const char *line;
	int family;		/* 0: UNKNOWN, no addresses */
	const char *src, *dst;
	unsigned sport, dport;
};

static const struct v1_good v1_good_cases[] = {
	{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n", AF_INET, "192.0.2.1", "198.51.100.2",
	  56324, 143 },
	{ "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", AF_INET, "0.0.0.0", "255.255.255.255",
	  0, 65535 },
	{ "PROXY TCP4 10.0.0.1 10.0.0.2 1 9\r\n", AF_INET, "10.0.0.1", "10.0.0.2", 1, 9 },
	{ "PROXY TCP6 2001:db8::1 2001:db8::2 56324 993\r\n", AF_INET6, "2001:db8::1",
	  "2001:db8::2", 56324, 993 },
	{ "PROXY TCP6 ::1 :: 65535 0\r\n", AF_INET6, "::1", "::", 65535, 0 },
	{ "PROXY TCP6 ::ffff:192.0.2.1 2001:DB8:0:0:0:0:0:2 1 2\r\n", AF_INET6, "::ffff:192.0.2.1",
	  "2001:db8::2", 1, 2 },
	{ "PROXY TCP6 1:2:3:4:5:6:7:: ::2:3:4:5:6:7:8 10 20\r\n", AF_INET6, "1:2:3:4:5:6:7::",
	  "0:2:3:4:5:6:7:8", 10, 20 },
	{ "PROXY TCP6 " FF39 " " FF39 " 65535 65535\r\n", AF_INET6, FF39, FF39, 65535, 65535 },
	{ "PROXY UNKNOWN\r\n", 0, NULL, NULL, 0, 0 },
	{ "PROXY UNKNOWN \r\n", 0, NULL, NULL, 0, 0 },
	{ "PROXY UNKNOWN whatever the sender likes ~!\r\n", 0, NULL, NULL, 0, 0 },
	/* The specification's worst case: exactly 107 bytes. */
	{ "PROXY UNKNOWN " FF39 " " FF39 " 65535 65535\r\n", 0, NULL, NULL, 0, 0 },
};

START_TEST(v1_good)
{
	const struct v1_good *c = &v1_good_cases[_i];
	size_t len = strlen(c->line);
	char with_data[256];
	struct proxy_info info;
	size_t consumed;
	const char *error = "unset";

	ck_assert_uint_le(len, 107);
	ck_assert_int_eq(parse(c->line, len, &consumed, &info, &error), PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, len);
	ck_assert_ptr_null(error);
	ck_assert_int_eq(info.has_addresses, c->family != 0);
	if (c->family != 0) {
		assert_endpoint(&info.source, c->family, c->src, c->sport);
		assert_endpoint(&info.destination, c->family, c->dst, c->dport);
	}
	assert_truncations_incomplete(c->line, len);

	/* What follows the header is the client's, and not looked at. */
	snprintf(with_data, sizeof(with_data), "%sA001 CAPABILITY\r\n", c->line);
	ck_assert_int_eq(parse(with_data, strlen(with_data), &consumed, &info, NULL),
			 PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, len);
	memcpy(with_data + len, "\0\xff\r\n", 4);
	ck_assert_int_eq(parse(with_data, len + 4, &consumed, &info, NULL), PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, len);
}
END_TEST

struct v1_bad {
	const char *prefix;	/* a valid prefix */
	const char *tail;	/* its first byte is the first wrong one */
	size_t tail_len;	/* 0: strlen(tail) */
};

static const struct v1_bad v1_bad_cases[] = {
	/* Not a proxy at all. */
	{ "", "A001 CAPABILITY\r\n", 0 },
	{ "", "USER alice\r\n", 0 },
	{ "", "\x16\x03\x01\x02\x00", 0 },		/* TLS ClientHello */
	{ "", " PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "", "\0", 1 },
	{ "\r\n", "A001 NOOP\r\n", 0 },			/* starts like the v2 signature */
	/* Case. */
	{ "", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "P", "roxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY ", "tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP6", "x 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY ", "unknown\r\n", 0 },
	{ "PROXY TCP6 2001:db8::", "G 2001:db8::2 1 2\r\n", 0 },
	/* Spaces. */
	{ "PROXY", "\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY ", " TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 ", " 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 ", " 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 ", " 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 ", " 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " \r\n", 0 },
	{ "PROXY TCP4 1.2.3.4", "\t5.6.7.8 1 2\r\n", 0 },
	/* Protocol names. */
	{ "PROXY TCP", "5 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY U", "DP4 1.2.3.4 5.6.7.8 1 2\r\n", 0 },	/* U of UNKNOWN */
	{ "PROXY TCP4", "\r\n", 0 },
	{ "PROXY TCP4", "X 1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY UNKNOWN", "X\r\n", 0 },
	{ "PROXY UNKNOWN", "\n", 0 },
	{ "PROXY UNKNOWN\r", "\r\n", 0 },
	{ "PROXY UNKNOWN a", "\tb\r\n", 0 },
	{ "PROXY UNKNOWN ", "\n", 0 },
	{ "PROXY UNKNOWN ", "\xc3\xa9\r\n", 0 },
	{ "PROXY UNKNOWN x", "\0\r\n", 3 },
	/* Address of the wrong family, or no address. */
	{ "PROXY TCP6 1", ".2.3.4 5.6.7.8 1 2\r\n", 0 },	/* a quad needs six groups */
	{ "PROXY TCP4 ", ":: ::1 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 ", "::1 1 2\r\n", 0 },
	{ "PROXY TCP6 ::1 ::ffff:1.2.3.4", ".5 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.0", "4 5.6.7.8 1 2\r\n", 0 },	/* leading zero */
	{ "PROXY TCP4 0", "1.2.3.4 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 25", "6.1.1.1 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4", ".5 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3", " 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.", ". 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 ", "localhost 5.6.7.8 1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4", "\0 5.6.7.8 1 2\r\n", 15 },
	{ "PROXY TCP6 fe80::1", "%eth0 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 ", "[::1] ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 ::1 ::", ":1 1 2\r\n", 0 },
	{ "PROXY TCP6 1::2:", ":3 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1:2:3:4:5:6:7:8", ":9 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1:2:3:4:5:6:7", " ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1:2:3:4:5:6:7:8", "::1 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1::3:4:5:6:7:8", ":9 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1:2:3:4:5:1", ".2.3.4 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1:2:3:4:5:6:1234", ".1.2.3 ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 1234", "5:: ::1 1 2\r\n", 0 },
	{ "PROXY TCP6 :", "1 ::1 1 2\r\n", 0 },
	/* Ports. */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 6553", "6 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 6553", "6\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 9999", "9\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 0", "1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "0\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 ", "-1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 ", "+1 2\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "x10\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 ", "\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1", "\r\n", 0 },	/* a field missing */
	/* Extra fields and line ends. */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " 3\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "x\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "\n", 0 },	/* LF without CR */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "\r\n", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "x", 0 },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "\0", 1 },
};

START_TEST(v1_bad)
{
	const struct v1_bad *c = &v1_bad_cases[_i];
	size_t plen = strlen(c->prefix);
	size_t tlen = c->tail_len != 0 ? c->tail_len : strlen(c->tail);
	unsigned char line[256];

	ck_assert_uint_le(plen + tlen, sizeof(line));
	memcpy(line, c->prefix, plen);
	memcpy(line + plen, c->tail, tlen);
	assert_invalid_at(line, plen + tlen, plen);
}
END_TEST

/* Every byte of "PROXY " matters. */
START_TEST(v1_magic_bytes)
{
	const char *good = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
	size_t len = strlen(good);

	for (size_t k = 0; k < 6; k++) {
		unsigned char line[64];

		memcpy(line, good, len);
		line[k] ^= 0x20;
		assert_invalid_at(line, len, k);
	}
}
END_TEST

/* The CRLF must come within 107 bytes. */
START_TEST(v1_line_length)
{
	unsigned char line[200];
	size_t n = 0;
	struct proxy_info info;
	size_t consumed;

	/* 14 + 91 + 2 = 107 bytes: fine. */
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'a', 91);
	memcpy(line + 105, "\r\n", 2);
	ck_assert_int_eq(parse(line, 107, &consumed, &info, NULL), PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, 107);

	/* One more byte puts the LF at offset 107. */
	memset(line + 14, 'a', 92);
	memcpy(line + 106, "\r\n", 2);
	assert_invalid_at(line, 108, 106);

	/* No CRLF at all. */
	memset(line + 14, 'a', sizeof(line) - 14);
	assert_invalid_at(line, sizeof(line), 106);

	/* Longest addresses inet_pton takes: too long for one line. */
	n = (size_t)snprintf((char *)line, sizeof(line), "PROXY TCP6 %s %s 1 2\r\n",
			     "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
			     "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	ck_assert_uint_gt(n, 107);
	assert_invalid_at(line, n, 106);
}
END_TEST

/* ---- version 2 ------------------------------------------------------------ */

static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* Signature, ver/cmd, family, a declared length and body bytes. */
static size_t v2_build(unsigned char *out, size_t outsize, unsigned char ver_cmd,
		       unsigned char fam, size_t declared, const unsigned char *body,
		       size_t body_len)
{
	ck_assert_uint_le(16 + body_len, outsize);
	memcpy(out, v2_sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(declared >> 8);
	out[15] = (unsigned char)(declared & 0xff);
	if (body_len > 0)
		memcpy(out + 16, body, body_len);
	return 16 + body_len;
}

/* 192.0.2.1:56324 -> 198.51.100.2:143 */
#define BODY_V4 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x8f
/* [2001:db8::1]:56324 -> [2001:db8::2]:993 */
#define BODY_V6 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, \
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, \
		0xdc, 0x04, 0x03, 0xe1
/* ALPN "imap", NOOP, AUTHORITY "mail.example" */
#define TLVS 0x01, 0x00, 0x04, 'i', 'm', 'a', 'p', 0x04, 0x00, 0x00, \
	     0x02, 0x00, 0x0c, 'm', 'a', 'i', 'l', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'

static const unsigned char body_v4[] = { BODY_V4 };
static const unsigned char body_v4_tlv[] = { BODY_V4, TLVS };
static const unsigned char body_v6[] = { BODY_V6 };
static const unsigned char body_v6_tlv[] = { BODY_V6, TLVS };
static const unsigned char body_v6_mapped[] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	0x00, 0x00, 0xff, 0xff
};
static const unsigned char body_junk[] = { 1, 2, 3, 4, 5 };

struct v2_good {
	const char *name;
	unsigned char ver_cmd, fam;
	const unsigned char *body;
	size_t body_len;
	int family;		/* 0: no addresses */
	const char *src, *dst;
	unsigned sport, dport;
};

static const struct v2_good v2_good_cases[] = {
	{ "PROXY v4", 0x21, 0x11, body_v4, sizeof(body_v4), AF_INET, "192.0.2.1", "198.51.100.2",
	  56324, 143 },
	{ "PROXY v4 TLVs", 0x21, 0x11, body_v4_tlv, sizeof(body_v4_tlv), AF_INET, "192.0.2.1",
	  "198.51.100.2", 56324, 143 },
	{ "PROXY v6", 0x21, 0x21, body_v6, sizeof(body_v6), AF_INET6, "2001:db8::1", "2001:db8::2",
	  56324, 993 },
	{ "PROXY v6 TLVs", 0x21, 0x21, body_v6_tlv, sizeof(body_v6_tlv), AF_INET6, "2001:db8::1",
	  "2001:db8::2", 56324, 993 },
	{ "PROXY v6 mapped", 0x21, 0x21, body_v6_mapped, sizeof(body_v6_mapped), AF_INET6,
	  "::ffff:192.0.2.1", "2001:db8::2", 0, 65535 },
	{ "LOCAL", 0x20, 0x00, NULL, 0, 0, NULL, NULL, 0, 0 },
	/* LOCAL: the block is discarded, family included (the specification). */
	{ "LOCAL v4 block", 0x20, 0x11, body_v4, sizeof(body_v4), 0, NULL, NULL, 0, 0 },
	{ "LOCAL short block", 0x20, 0x21, body_junk, sizeof(body_junk), 0, NULL, NULL, 0, 0 },
	{ "LOCAL odd family", 0x20, 0x31, body_junk, sizeof(body_junk), 0, NULL, NULL, 0, 0 },
	{ "PROXY UNSPEC", 0x21, 0x00, NULL, 0, 0, NULL, NULL, 0, 0 },
	{ "PROXY UNSPEC block", 0x21, 0x00, body_junk, sizeof(body_junk), 0, NULL, NULL, 0, 0 },
};

START_TEST(v2_good)
{
	const struct v2_good *c = &v2_good_cases[_i];
	unsigned char hdr[PROXY_HEADER_MAX + 32];
	size_t len = v2_build(hdr, sizeof(hdr), c->ver_cmd, c->fam, c->body_len, c->body,
			      c->body_len);
	struct proxy_info info;
	size_t consumed;
	const char *error = "unset";

	ck_assert_msg(parse(hdr, len, &consumed, &info, &error) == PROXY_PARSE_OK, "%s: %s",
		      c->name, error);
	ck_assert_uint_eq(consumed, len);
	ck_assert_int_eq(info.has_addresses, c->family != 0);
	if (c->family != 0) {
		assert_endpoint(&info.source, c->family, c->src, c->sport);
		assert_endpoint(&info.destination, c->family, c->dst, c->dport);
	}
	assert_truncations_incomplete(hdr, len);

	/* Client bytes after the header are not part of it. */
	memcpy(hdr + len, "A001 NOOP\r\n", 11);
	ck_assert_int_eq(parse(hdr, len + 11, &consumed, &info, NULL), PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, len);
}
END_TEST

/* The largest header we accept: 16 + 520 bytes. */
START_TEST(v2_max_length)
{
	unsigned char body[PROXY_HEADER_MAX - 16];
	unsigned char hdr[PROXY_HEADER_MAX + 1];
	size_t len, consumed;
	struct proxy_info info;

	memcpy(body, body_v4, 12);
	body[12] = 0x04;	/* NOOP filling the rest */
	body[13] = (unsigned char)((sizeof(body) - 15) >> 8);
	body[14] = (unsigned char)((sizeof(body) - 15) & 0xff);
	memset(body + 15, 0, sizeof(body) - 15);
	len = v2_build(hdr, sizeof(hdr), 0x21, 0x11, sizeof(body), body, sizeof(body));
	ck_assert_uint_eq(len, PROXY_HEADER_MAX);
	ck_assert_int_eq(parse(hdr, len, &consumed, &info, NULL), PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, PROXY_HEADER_MAX);
	assert_endpoint(&info.source, AF_INET, "192.0.2.1", 56324);
	assert_truncations_incomplete(hdr, len);

	/* One more byte of declared length is one too many. */
	len = v2_build(hdr, sizeof(hdr), 0x21, 0x00, sizeof(body) + 1, body, sizeof(body));
	assert_invalid_at(hdr, len, 15);
}
END_TEST

struct v2_bad {
	const char *name;
	unsigned char ver_cmd, fam;
	size_t declared;
	const unsigned char *body;
	size_t body_len;
	size_t bad_at;
};

static const unsigned char tlv_overrun[] = { BODY_V4, 0x01, 0x00, 0x06, 'i', 'm', 'a', 'p', 's' };
static const unsigned char tlv_huge[] = { BODY_V4, 0x01, 0xff, 0xff, 'i', 'm', 'a', 'p', 's' };
static const unsigned char tlv_stub[] = { BODY_V4, 0x01, 0x00 };
static const unsigned char tlv_second_overrun[] = { BODY_V4, 0x04, 0x00, 0x00, 0x01, 0x00, 0x02, 'x' };

static const struct v2_bad v2_bad_cases[] = {
	{ "version 1", 0x11, 0x11, 12, body_v4, sizeof(body_v4), 12 },
	{ "version 3", 0x31, 0x11, 12, body_v4, sizeof(body_v4), 12 },
	{ "version 0", 0x01, 0x11, 12, body_v4, sizeof(body_v4), 12 },
	{ "version 15", 0xf1, 0x11, 12, body_v4, sizeof(body_v4), 12 },
	{ "command 2", 0x22, 0x11, 12, body_v4, sizeof(body_v4), 12 },
	{ "command 15", 0x2f, 0x11, 12, body_v4, sizeof(body_v4), 12 },
	{ "UDP4", 0x21, 0x12, 12, body_v4, sizeof(body_v4), 13 },
	{ "UDP6", 0x21, 0x22, 36, body_v6, sizeof(body_v6), 13 },
	{ "UNIX stream", 0x21, 0x31, 12, body_v4, sizeof(body_v4), 13 },
	{ "UNIX dgram", 0x21, 0x32, 12, body_v4, sizeof(body_v4), 13 },
	{ "AF_INET unspec proto", 0x21, 0x10, 12, body_v4, sizeof(body_v4), 13 },
	{ "unspec af stream", 0x21, 0x01, 12, body_v4, sizeof(body_v4), 13 },
	{ "family 0xff", 0x21, 0xff, 12, body_v4, sizeof(body_v4), 13 },
	{ "length 521", 0x21, 0x00, 521, NULL, 0, 15 },
	{ "length 768", 0x21, 0x11, 768, body_v4, sizeof(body_v4), 14 },
	{ "length 0xffff", 0x21, 0x11, 0xffff, body_v4, sizeof(body_v4), 14 },
	{ "LOCAL length 0xffff", 0x20, 0x00, 0xffff, NULL, 0, 14 },
	{ "v4 length 11", 0x21, 0x11, 11, body_v4, 11, 15 },
	{ "v4 length 0", 0x21, 0x11, 0, NULL, 0, 15 },
	{ "v6 length 35", 0x21, 0x21, 35, body_v6, 35, 15 },
	{ "v6 length of v4", 0x21, 0x21, 12, body_v4, sizeof(body_v4), 15 },
	{ "2 bytes after v4", 0x21, 0x11, 14, tlv_stub, sizeof(tlv_stub), 15 },
	{ "TLV overrun", 0x21, 0x11, sizeof(tlv_overrun), tlv_overrun, sizeof(tlv_overrun), 30 },
	{ "TLV huge", 0x21, 0x11, sizeof(tlv_huge), tlv_huge, sizeof(tlv_huge), 29 },
	{ "second TLV overrun", 0x21, 0x11, sizeof(tlv_second_overrun), tlv_second_overrun,
	  sizeof(tlv_second_overrun), 33 },
};

START_TEST(v2_bad)
{
	const struct v2_bad *c = &v2_bad_cases[_i];
	unsigned char hdr[PROXY_HEADER_MAX + 32];
	size_t len = v2_build(hdr, sizeof(hdr), c->ver_cmd, c->fam, c->declared, c->body,
			      c->body_len);

	/* Enough bytes to show the error however much the header declares. */
	memset(hdr + len, 0, sizeof(hdr) - len);
	len = sizeof(hdr);
	assert_invalid_at(hdr, len, c->bad_at);
}
END_TEST

/* Every byte of the signature matters. */
START_TEST(v2_signature_bytes)
{
	unsigned char hdr[64];
	size_t len = v2_build(hdr, sizeof(hdr), 0x21, 0x11, 12, body_v4, sizeof(body_v4));

	for (size_t k = 0; k < 12; k++) {
		unsigned char copy[64];

		memcpy(copy, hdr, len);
		copy[k] ^= 0x01;
		assert_invalid_at(copy, len, k);
	}
}
END_TEST

START_TEST(empty_input)
{
	ck_assert_int_eq(result_of("", 0), PROXY_PARSE_INCOMPLETE);
}
END_TEST

/* ---- proxy_write ---------------------------------------------------------- */

static struct sockaddr_storage sa_of(const char *text, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		ck_assert_int_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		ck_assert_int_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	}
	return ss;
}

struct write_case {
	const char *src;
	unsigned sport;
	const char *dst;
	unsigned dport;
	const char *v1;			/* the expected line */
	unsigned char v2_fam;		/* the expected v2 family */
	const unsigned char *v2_body;	/* and body (12 or 36 bytes) */
};

static const struct write_case write_cases[] = {
	{ "192.0.2.1", 56324, "198.51.100.2", 143,
	  "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n", 0x11, body_v4 },
	{ "2001:db8::1", 56324, "2001:db8::2", 993,
	  "PROXY TCP6 2001:db8::1 2001:db8::2 56324 993\r\n", 0x21, body_v6 },
	/* Mixed: both as IPv6. */
	{ "192.0.2.1", 0, "2001:db8::2", 65535,
	  "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 0 65535\r\n", 0x21, body_v6_mapped },
	{ "::ffff:192.0.2.1", 0, "2001:db8::2", 65535,
	  "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 0 65535\r\n", 0x21, body_v6_mapped },
	/* v4-mapped on both sides, or with IPv4: as IPv4. */
	{ "::ffff:192.0.2.1", 56324, "::ffff:198.51.100.2", 143,
	  "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n", 0x11, body_v4 },
	{ "::ffff:192.0.2.1", 56324, "198.51.100.2", 143,
	  "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n", 0x11, body_v4 },
	{ "192.0.2.1", 56324, "::ffff:198.51.100.2", 143,
	  "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n", 0x11, body_v4 },
};

static size_t expected_v2(const struct write_case *c, unsigned char *out, size_t outsize)
{
	size_t body_len = c->v2_fam == 0x11 ? 12 : 36;

	return v2_build(out, outsize, 0x21, c->v2_fam, body_len, c->v2_body, body_len);
}

/* Exact output at the exact size, 0 and no byte written for anything less. */
static void assert_writes(int version, const struct sockaddr *src, const struct sockaddr *dst,
			  const unsigned char *want, size_t want_len)
{
	unsigned char out[PROXY_HEADER_MAX + 8];

	for (size_t size = 0; size < want_len; size++) {
		memset(out, 0xaa, sizeof(out));
		ck_assert_uint_eq(proxy_write(version, src, dst, out, size), 0);
		for (size_t i = 0; i < sizeof(out); i++)
			ck_assert_uint_eq(out[i], 0xaa);
	}
	memset(out, 0xaa, sizeof(out));
	ck_assert_uint_eq(proxy_write(version, src, dst, out, want_len), want_len);
	ck_assert(memcmp(out, want, want_len) == 0);
	ck_assert_uint_eq(out[want_len], 0xaa);
	ck_assert_uint_eq(proxy_write(version, src, dst, out, sizeof(out)), want_len);
	ck_assert(memcmp(out, want, want_len) == 0);
}

START_TEST(write_v1)
{
	const struct write_case *c = &write_cases[_i];
	struct sockaddr_storage src = sa_of(c->src, c->sport), dst = sa_of(c->dst, c->dport);

	assert_writes(1, (struct sockaddr *)&src, (struct sockaddr *)&dst,
		      (const unsigned char *)c->v1, strlen(c->v1));
}
END_TEST

START_TEST(write_v2)
{
	const struct write_case *c = &write_cases[_i];
	struct sockaddr_storage src = sa_of(c->src, c->sport), dst = sa_of(c->dst, c->dport);
	unsigned char want[64];
	size_t want_len = expected_v2(c, want, sizeof(want));

	assert_writes(2, (struct sockaddr *)&src, (struct sockaddr *)&dst, want, want_len);
}
END_TEST

/* Write, parse back: the same endpoints (compared as keys, v4-mapped = IPv4). */
START_TEST(write_parse_round_trip)
{
	const struct write_case *c = &write_cases[_i / 2];
	int version = _i % 2 + 1;
	struct sockaddr_storage src = sa_of(c->src, c->sport), dst = sa_of(c->dst, c->dport);
	unsigned char out[PROXY_HEADER_MAX];
	struct mg_ipkey want, got;
	struct proxy_info info;
	size_t n, consumed;
	char host[64];
	unsigned port;

	n = proxy_write(version, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, sizeof(out));
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(parse(out, n, &consumed, &info, NULL), PROXY_PARSE_OK);
	ck_assert_uint_eq(consumed, n);
	ck_assert_int_eq(info.has_addresses, 1);

	ck_assert_int_eq(netaddr_key((struct sockaddr *)&src, &want), 0);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&info.source, &got), 0);
	ck_assert(netaddr_key_equal(&want, &got));
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&dst, &want), 0);
	ck_assert_int_eq(netaddr_key((struct sockaddr *)&info.destination, &got), 0);
	ck_assert(netaddr_key_equal(&want, &got));
	ck_assert_int_eq(netaddr_host_port((struct sockaddr *)&info.source, host, sizeof(host),
					   &port), 0);
	ck_assert_uint_eq(port, c->sport);
	ck_assert_int_eq(netaddr_host_port((struct sockaddr *)&info.destination, host,
					   sizeof(host), &port), 0);
	ck_assert_uint_eq(port, c->dport);
}
END_TEST

/* Addresses that are not IP: v1 UNKNOWN, v2 LOCAL; both parse as "no addresses". */
START_TEST(write_unknown)
{
	static const unsigned char local[16] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
		0x20, 0x00, 0x00, 0x00
	};
	struct sockaddr_storage ip = sa_of("192.0.2.1", 1);
	struct sockaddr_un unix_sa;
	struct sockaddr *u = (struct sockaddr *)&unix_sa, *i = (struct sockaddr *)&ip;
	unsigned char out[64];
	struct proxy_info info;
	size_t consumed;

	memset(&unix_sa, 0, sizeof(unix_sa));
	unix_sa.sun_family = AF_UNIX;
	assert_writes(1, u, i, (const unsigned char *)"PROXY UNKNOWN\r\n", 15);
	assert_writes(1, i, u, (const unsigned char *)"PROXY UNKNOWN\r\n", 15);
	assert_writes(1, NULL, i, (const unsigned char *)"PROXY UNKNOWN\r\n", 15);
	assert_writes(1, i, NULL, (const unsigned char *)"PROXY UNKNOWN\r\n", 15);
	assert_writes(2, u, i, local, sizeof(local));
	assert_writes(2, i, u, local, sizeof(local));
	assert_writes(2, NULL, NULL, local, sizeof(local));

	for (int version = 1; version <= 2; version++) {
		size_t n = proxy_write(version, u, i, out, sizeof(out));

		ck_assert_int_eq(parse(out, n, &consumed, &info, NULL), PROXY_PARSE_OK);
		ck_assert_uint_eq(consumed, n);
		ck_assert_int_eq(info.has_addresses, 0);
	}
}
END_TEST

START_TEST(write_bad_version)
{
	struct sockaddr_storage src = sa_of("192.0.2.1", 1), dst = sa_of("192.0.2.2", 2);
	unsigned char out[PROXY_HEADER_MAX];
	static const int versions[] = { 0, 3, -1, 'P' };

	for (size_t k = 0; k < N_ELEMENTS(versions); k++) {
		memset(out, 0xaa, sizeof(out));
		ck_assert_uint_eq(proxy_write(versions[k], (struct sockaddr *)&src,
					      (struct sockaddr *)&dst, out, sizeof(out)), 0);
		ck_assert_uint_eq(out[0], 0xaa);
	}
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("proxy_protocol");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, v1_good, 0, (int)N_ELEMENTS(v1_good_cases));
	tcase_add_loop_test(tc, v1_bad, 0, (int)N_ELEMENTS(v1_bad_cases));
	tcase_add_test(tc, v1_magic_bytes);
	tcase_add_test(tc, v1_line_length);
	tcase_add_loop_test(tc, v2_good, 0, (int)N_ELEMENTS(v2_good_cases));
	tcase_add_test(tc, v2_max_length);
	tcase_add_loop_test(tc, v2_bad, 0, (int)N_ELEMENTS(v2_bad_cases));
	tcase_add_test(tc, v2_signature_bytes);
	tcase_add_test(tc, empty_input);
	tcase_add_loop_test(tc, write_v1, 0, (int)N_ELEMENTS(write_cases));
	tcase_add_loop_test(tc, write_v2, 0, (int)N_ELEMENTS(write_cases));
	tcase_add_loop_test(tc, write_parse_round_trip, 0, (int)(2 * N_ELEMENTS(write_cases)));
	tcase_add_test(tc, write_unknown);
	tcase_add_test(tc, write_bad_version);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
