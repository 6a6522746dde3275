/*
 * check_client_address.c - how much of a PROXY header the engine may read
 * at once (client_address_proxy_want): one byte at a time through a v1 line
 * or anything that is not yet a v2 signature, the rest of the fixed part
 * once the signature is in, the rest of the header once its length is in,
 * nothing once it is all there. The bytes are the specification's, written
 * out here, not taken from the code under test.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "client_address.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* A v2 PROXY header over TCP/IPv4: 16 fixed bytes and 12 of addresses and ports. */
static const unsigned char v2_tcp4[28] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
	0x21, 0x11, 0x00, 0x0C,
	192, 0, 2, 1, 198, 51, 100, 1, 0x30, 0x39, 0x00, 0x8F
};

static const char v1_line[] = "PROXY TCP4 192.0.2.1 198.51.100.1 12345 143\r\n";

struct want_row {
	const unsigned char *buf;
	size_t len;
	size_t want;
};

static const struct want_row rows[] = {
	{ v2_tcp4, 0, 1 },
	{ v2_tcp4, 1, 1 },
	{ v2_tcp4, 11, 1 },	/* not yet the whole signature */
	{ v2_tcp4, 12, 4 },	/* signature: the rest of the fixed part */
	{ v2_tcp4, 13, 3 },
	{ v2_tcp4, 15, 1 },
	{ v2_tcp4, 16, 12 },	/* length known: the rest of the header */
	{ v2_tcp4, 20, 8 },
	{ v2_tcp4, 28, 0 },	/* complete */
	{ (const unsigned char *)v1_line, 6, 1 },
	{ (const unsigned char *)v1_line, 20, 1 },
	{ (const unsigned char *)v1_line, sizeof(v1_line) - 1, 1 },
};

START_TEST(want_rows)
{
	const struct want_row *r = &rows[_i];

	ck_assert_uint_eq(client_address_proxy_want(r->buf, r->len), r->want);
}
END_TEST

/* A wrong byte anywhere in the signature: not v2, so one byte at a time. */
START_TEST(signature_every_byte_counts)
{
	unsigned char copy[sizeof(v2_tcp4)];

	for (size_t k = 0; k < 12; k++) {
		memcpy(copy, v2_tcp4, sizeof(copy));
		copy[k] ^= 0x01;
		ck_assert_uint_eq(client_address_proxy_want(copy, 12), 1);
		ck_assert_uint_eq(client_address_proxy_want(copy, 16), 1);
	}
}
END_TEST

/* The largest length field: the want is what is left of it, never wrapped. */
START_TEST(largest_declared_length)
{
	unsigned char hdr[16];

	memcpy(hdr, v2_tcp4, 16);
	hdr[14] = 0xff;
	hdr[15] = 0xff;
	ck_assert_uint_eq(client_address_proxy_want(hdr, 16), 0xffff);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("client_address");
	TCase *tc = tcase_create("proxy_want");

	tcase_add_loop_test(tc, want_rows, 0, TABLE_LEN(rows));
	tcase_add_test(tc, signature_every_byte_counts);
	tcase_add_test(tc, largest_declared_length);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
