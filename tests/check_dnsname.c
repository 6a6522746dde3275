/*
 * check_dnsname.c - host names as clients send them in SNI and as the
 * configuration spells them: a table of good and hostile names for the
 * check and lower-casing, and one of patterns and names for the match.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "dnsname.h"

#define LABEL63 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"
#define LABEL61 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi"
#define NAME253 LABEL63 "." LABEL63 "." LABEL63 "." LABEL61
_Static_assert(sizeof(NAME253) == 254, "a name of 253 characters");

struct name_case {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	unsigned flags;
	const char *want;	/* normalized, NULL when refused */
	bool wildcard;
};

#define W DNS_NAME_WILDCARD
#define U DNS_NAME_UNDERSCORE

static const struct name_case names[] = {
	{ "imap.customer.example", 0, 0, "imap.customer.example", false },
	{ "IMAP.Customer.EXAMPLE", 0, 0, "imap.customer.example", false },
	{ "imap.customer.example.", 0, 0, "imap.customer.example", false },
	{ "localhost", 0, 0, "localhost", false },
	{ "xn--bcher-kva.example", 0, 0, "xn--bcher-kva.example", false },
	{ "a-1.b2.c", 0, 0, "a-1.b2.c", false },
	{ NAME253, 0, 0, NAME253, false },
	{ NAME253 ".", 0, 0, NAME253, false },
	{ NAME253 "x", 0, 0, NULL, false },			/* 254 characters */
	{ LABEL63 "x.example", 0, 0, NULL, false },		/* a label of 64 */
	{ LABEL63 ".example", 0, 0, LABEL63 ".example", false },
	{ "", 0, 0, NULL, false },
	{ ".", 0, 0, NULL, false },
	{ "..", 0, 0, NULL, false },
	{ ".example", 0, 0, NULL, false },
	{ "a..example", 0, 0, NULL, false },
	{ "a.example..", 0, 0, NULL, false },
	{ "a b.example", 0, 0, NULL, false },
	{ "a\tb.example", 0, 0, NULL, false },
	{ "a\"b.example", 0, 0, NULL, false },
	{ "a\\b.example", 0, 0, NULL, false },
	{ "a%b.example", 0, 0, NULL, false },
	{ "a\r\nb.example", 0, 0, NULL, false },
	{ "a\0b.example", 11, 0, NULL, false },
	{ "b\xc3\xbc" "cher.example", 0, 0, NULL, false },
	{ "192.0.2.1", 0, 0, "192.0.2.1", false },		/* digits are LDH too */
	{ "[2001:db8::1]", 0, 0, NULL, false },
	{ "_imap.example", 0, 0, NULL, false },
	{ "_imap.example", 0, U, "_imap.example", false },
	{ "*.customer.example", 0, 0, NULL, false },
	{ "*.Customer.Example", 0, W, "customer.example", true },
	{ "*.customer.example.", 0, W, "customer.example", true },
	{ "*", 0, W, NULL, false },
	{ "*.", 0, W, NULL, false },
	{ "*.*.example", 0, W, NULL, false },
	{ "a.*.example", 0, W, NULL, false },
	{ "*a.example", 0, W, NULL, false },
	{ "**.example", 0, W, NULL, false },
	{ "*." NAME253, 0, W, NAME253, true },
};

START_TEST(normalize_table)
{
	const struct name_case *c = &names[_i];
	char out[DNS_NAME_MAX + 1];
	bool wildcard = !c->wildcard;
	size_t len = c->len != 0 ? c->len : strlen(c->in);
	size_t n;

	memset(out, 'Z', sizeof(out));
	n = dns_name_normalize(c->in, len, out, c->flags, &wildcard);
	if (c->want == NULL) {
		ck_assert_msg(n == 0, "'%s' accepted as '%s'", c->in, out);
		ck_assert_str_eq(out, "");
		ck_assert(!wildcard);
		return;
	}
	ck_assert_msg(n == strlen(c->want), "'%s': length %zu", c->in, n);
	ck_assert_str_eq(out, c->want);
	ck_assert_int_eq(wildcard, c->wildcard);
}
END_TEST

/* Only len bytes are read: a name need not be terminated. */
START_TEST(normalize_reads_only_len)
{
	char out[DNS_NAME_MAX + 1];
	bool wildcard;

	ck_assert_uint_eq(dns_name_normalize("mail.example!!!", 12, out, 0, &wildcard), 12);
	ck_assert_str_eq(out, "mail.example");
	ck_assert_uint_eq(dns_name_normalize("mail.example", 0, out, 0, &wildcard), 0);
}
END_TEST

struct match_case {
	const char *pattern, *name;
	bool match;
};

static const struct match_case matches[] = {
	{ "imap.customer.example", "imap.customer.example", true },
	{ "imap.customer.example", "IMAP.customer.example", true },
	{ "IMAP.Customer.Example", "imap.customer.example", true },
	{ "imap.customer.example", "imap.customer.example.org", false },
	{ "imap.customer.example", "pop.customer.example", false },
	{ "*.customer.example", "imap.customer.example", true },
	{ "*.customer.example", "x.CUSTOMER.example", true },
	{ "*.customer.example", "customer.example", false },
	{ "*.customer.example", ".customer.example", false },
	{ "*.customer.example", "a.b.customer.example", false },
	{ "*.customer.example", "xcustomer.example", false },
	{ "*.customer.example", "imap.customer.example.org", false },
	{ "*.customer.example", "*.customer.example", true },	/* "*" is a label to the match */
	{ "*.example", "customer.example", true },
	{ "imap.customer.example", "", false },
	{ "imap.customer.example", NULL, false },
	{ "", "", false },
	{ NULL, "imap.customer.example", false },
	{ "*.", "x.", false },
};

START_TEST(match_table)
{
	const struct match_case *c = &matches[_i];

	ck_assert_msg(dns_name_match(c->pattern, c->name) == c->match, "'%s' ~ '%s': want %d",
		      c->pattern != NULL ? c->pattern : "(null)",
		      c->name != NULL ? c->name : "(null)", c->match);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("dnsname");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, normalize_table, 0, sizeof(names) / sizeof(names[0]));
	tcase_add_test(tc, normalize_reads_only_len);
	tcase_add_loop_test(tc, match_table, 0, sizeof(matches) / sizeof(matches[0]));
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
