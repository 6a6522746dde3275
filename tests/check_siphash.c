/*
 * check_siphash.c - SipHash-2-4 against the paper's test vectors (key
 * 00..0f, messages 00, 00 01, ... of every length from 0 to 15), and the
 * key mattering.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "siphash.h"

/* From the SipHash paper's appendix: the outputs for messages of length 0..15. */
static const uint64_t vectors[16] = {
	0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
	0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL,
	0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL,
	0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
	0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
	0xa129ca6149be45e5ULL,
};

START_TEST(paper_vectors)
{
	unsigned char key[SIPHASH_KEY_LEN], msg[16];

	for (int i = 0; i < 16; i++)
		key[i] = msg[i] = (unsigned char)i;
	ck_assert_msg(siphash24(key, msg, (size_t)_i) == vectors[_i], "length %d", _i);
}
END_TEST

START_TEST(key_matters)
{
	unsigned char a[SIPHASH_KEY_LEN] = { 0 }, b[SIPHASH_KEY_LEN] = { 0 };

	b[15] = 1;
	ck_assert(siphash24(a, "bob", 3) != siphash24(b, "bob", 3));
	ck_assert(siphash24(a, "bob", 3) == siphash24(a, "bob", 3));
	ck_assert(siphash24(a, "bob", 3) != siphash24(a, "boc", 3));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("siphash");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, paper_vectors, 0, 16);
	tcase_add_test(tc, key_matters);
	suite_add_tcase(s, tc);
	return check_run(s);
}
