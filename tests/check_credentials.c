/*
 * check_credentials.c - credentials_clean(): a name or password with NUL,
 * CR or LF anywhere is refused (a backend command would end early on
 * them), everything else - spaces, quotes, 8-bit bytes - is the user's.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "credentials.h"

static struct mg_credentials make(const char *user, size_t ulen, const char *pw, size_t plen)
{
	struct mg_credentials c;

	memset(&c, 0, sizeof(c));
	memcpy(c.user, user, ulen);
	c.user_len = ulen;
	memcpy(c.password, pw, plen);
	c.password_len = plen;
	return c;
}

START_TEST(clean_credentials_pass)
{
	struct mg_credentials c = make("alice@example.org", 17, "pa ss\"wo\\rd caf\xc3\xa9\t", 18);

	ck_assert(credentials_clean(&c));
	c = make("", 0, "", 0);
	ck_assert(credentials_clean(&c));
}
END_TEST

START_TEST(each_bad_byte_anywhere_refused)
{
	static const char bad[] = { '\0', '\r', '\n' };

	for (size_t b = 0; b < sizeof(bad); b++) {
		for (size_t at = 0; at < 5; at++) {
			char field[5] = { 'a', 'b', 'c', 'd', 'e' };
			struct mg_credentials c;

			field[at] = bad[b];
			c = make(field, sizeof(field), "secret", 6);
			ck_assert_msg(!credentials_clean(&c), "user, byte %zu at %zu", b, at);
			c = make("alice", 5, field, sizeof(field));
			ck_assert_msg(!credentials_clean(&c), "password, byte %zu at %zu", b, at);
		}
	}
}
END_TEST

/* Past the lengths, the buffers' zeroes do not count. */
START_TEST(only_the_lengths_count)
{
	struct mg_credentials c = make("alice", 5, "secret", 6);

	ck_assert_int_eq(c.user[5], '\0');
	ck_assert(credentials_clean(&c));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("credentials");
	TCase *tc = tcase_create("clean");

	tcase_add_test(tc, clean_credentials_pass);
	tcase_add_test(tc, each_bad_byte_anywhere_refused);
	tcase_add_test(tc, only_the_lengths_count);
	suite_add_tcase(s, tc);
	return check_run(s);
}
