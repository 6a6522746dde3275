/*
 * check_line_word.c - starts_with_word() (lib/line_word.c): the word alone
 * or before a space, never a longer word, under each case rule; lines cut
 * short, empty lines and empty words.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "line_word.h"
#include "check_run.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

struct word_case_row {
	const char *line;
	const char *word;
	bool exact;	/* expected under WORD_EXACT */
	bool any;	/* expected under WORD_ANY_CASE */
};

static const struct word_case_row rows[] = {
	{ "OK", "OK", true, true },
	{ "OK done", "OK", true, true },
	{ "OK ", "OK", true, true },
	{ "ok done", "OK", false, true },
	{ "Ok", "OK", false, true },
	{ "OKAY", "OK", false, false },
	{ "OK\tdone", "OK", false, false },
	{ "OK[x]", "OK", false, false },
	{ "O", "OK", false, false },
	{ "", "OK", false, false },
	{ " OK", "OK", false, false },
	{ "NO", "OK", false, false },
	{ "* OK ready", "* OK", true, true },
	{ "* ok ready", "* OK", false, true },
	{ "*  OK", "* OK", false, false },
	{ "+OK", "+OK", true, true },
	{ "+ok", "+OK", false, true },
	{ "+OKAY", "+OK", false, false },
	{ "-ERR [AUTH] no", "-ERR", true, true },
	{ "-err no", "-ERR", false, true },
	{ "-ERRx", "-ERR", false, false },
	/* only ASCII letters fold: "[" is not "{", 0xC9 is not 0xE9 */
	{ "[", "{", false, false },
	{ "\xc9", "\xe9", false, false },
	/* an empty word matches nothing */
	{ "OK", "", false, false },
	{ "", "", false, false },
};

START_TEST(test_rows)
{
	const struct word_case_row *r = &rows[_i];
	size_t len = strlen(r->line);
	/* An exact-size copy: a read past the line shows under AddressSanitizer. */
	char *line = malloc(len > 0 ? len : 1);

	ck_assert_ptr_nonnull(line);
	memcpy(line, r->line, len);
	ck_assert_msg(starts_with_word(line, len, r->word, WORD_EXACT) == r->exact,
		      "\"%s\" / \"%s\" exact", r->line, r->word);
	ck_assert_msg(starts_with_word(line, len, r->word, WORD_ANY_CASE) == r->any,
		      "\"%s\" / \"%s\" any case", r->line, r->word);
	free(line);
}
END_TEST

/* Only len counts: a line cut before the word's end does not match. */
START_TEST(test_length_bounds)
{
	ck_assert(!starts_with_word("OK done", 1, "OK", WORD_EXACT));
	ck_assert(starts_with_word("OK done", 2, "OK", WORD_EXACT));
	ck_assert(starts_with_word("OKAY", 2, "OK", WORD_ANY_CASE));
	ck_assert(!starts_with_word(NULL, 0, "OK", WORD_EXACT));
	ck_assert(!starts_with_word(NULL, 0, "", WORD_ANY_CASE));
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("line_word");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_rows, 0, TABLE_LEN(rows));
	tcase_add_test(tc, test_length_bounds);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
