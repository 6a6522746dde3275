/*
 * check_config_options.c - unit tests for config_options.c, the table of
 * every typed option (numbers, words, booleans): each entry is consistent
 * (its default is a value it accepts, its range fits its field), each is
 * found under its own section and name, and config_option_parse() accepts
 * each bound and word and refuses just past each bound with "FILE:LINE:".
 * That a load puts each value into the right field is in check_config.c.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "check_config_table.h"
#include "check_run.h"

#define PATH "t.conf"
#define LINE 7

static int is_number(const struct config_option *o)
{
	return o->type == CONFIG_UNSIGNED || o->type == CONFIG_SIZE;
}

static int is_word_value(const struct config_option *o, long value)
{
	for (size_t i = 0; i < o->n_words; i++)
		if (o->words[i].value == value)
			return 1;
	return 0;
}

/* Parse text for o at LINE; returns what config_option_parse returned, err filled. */
static int parse(const struct config_option *o, const char *text, long *out, char *err, size_t errlen)
{
	struct load_ctx ctx = { .path = PATH, .err = err, .errlen = errlen };

	err[0] = '\0';
	return config_option_parse(&ctx, LINE, o, text, out);
}

/* Every default is a value the option itself would accept from the file. */
START_TEST(test_entry_is_consistent)
{
	const struct config_table *t = NULL;
	const struct config_option *o = typed_option((size_t)_i, &t);

	ck_assert_ptr_nonnull(o);
	ck_assert_msg(o->name != NULL && o->name[0] != '\0', "%s: entry %d has no name",
		      t->section, _i);
	switch (o->type) {
	case CONFIG_UNSIGNED:
	case CONFIG_SIZE:
		ck_assert_msg(o->min <= o->max, "%s: min > max", o->name);
		/* Parsed values travel as long, and are stored as unsigned or size_t. */
		ck_assert_msg(o->max <= LONG_MAX && o->max <= UINT_MAX, "%s: max too large", o->name);
		ck_assert_msg(o->no_default || is_word_value(o, o->def) ||
			      ((unsigned long)o->def >= o->min && (unsigned long)o->def <= o->max),
			      "%s: default %ld is outside %lu..%lu", o->name, o->def, o->min, o->max);
		break;
	case CONFIG_ENUM:
		ck_assert_msg(o->n_words > 0, "%s: an enum without words", o->name);
		/* fall through: a range means nothing for words */
	case CONFIG_BOOL:
		ck_assert_msg(o->min == 0 && o->max == 0, "%s: a range on words", o->name);
		if (o->n_words > 0)
			ck_assert_msg(o->no_default || is_word_value(o, o->def),
				      "%s: default %ld is none of its words", o->name, o->def);
		else
			ck_assert_msg(o->def == 0 || o->def == 1, "%s: boolean default %ld",
				      o->name, o->def);
		break;
	}
	/* Words are distinct, so a word means one thing. */
	for (size_t i = 0; i < o->n_words; i++)
		for (size_t j = i + 1; j < o->n_words; j++)
			ck_assert_msg(strcmp(o->words[i].word, o->words[j].word) != 0,
				      "%s: word '%s' twice", o->name, o->words[i].word);
}
END_TEST

/* The lookup libconfuse's callback uses finds each entry, and only it. */
START_TEST(test_entry_found_by_section_and_name)
{
	const struct config_table *t = NULL;
	const struct config_option *o = typed_option((size_t)_i, &t);

	ck_assert_ptr_eq(config_table(t->section), t);
	ck_assert_ptr_eq(config_option_find(t, o->name), o);
}
END_TEST

START_TEST(test_lookup_misses)
{
	ck_assert_ptr_null(config_table("nope"));
	ck_assert_ptr_null(config_table(NULL));
	ck_assert_ptr_null(config_option_find(NULL, "port"));
	ck_assert_ptr_null(config_option_find(config_table("root"), "port"));
	ck_assert_ptr_null(config_option_find(config_table("listen"), NULL));
	/* The same name in two sections is two entries: "tls" takes other words there. */
	ck_assert_ptr_ne(config_option_find(config_table("backend"), "tls"),
			 config_option_find(config_table("listen"), "tls"));
}
END_TEST

/* Each bound is accepted; one past each is refused with FILE:LINE and the range. */
START_TEST(test_number_bounds)
{
	const struct config_table *t = NULL;
	const struct config_option *o = typed_option((size_t)_i, &t);
	char text[32], err[256], want[256];
	long v = -1;

	if (!is_number(o))
		return;
	snprintf(text, sizeof(text), "%lu", o->min);
	ck_assert_msg(parse(o, text, &v, err, sizeof(err)) == 0, "%s: %s", o->name, err);
	ck_assert_int_eq(v, (long)o->min);
	snprintf(text, sizeof(text), "%lu", o->max);
	ck_assert_msg(parse(o, text, &v, err, sizeof(err)) == 0, "%s: %s", o->name, err);
	ck_assert_int_eq(v, (long)o->max);

	snprintf(text, sizeof(text), "%lu", o->max + 1);
	ck_assert_int_eq(parse(o, text, &v, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), PATH ":%d: %s = %s is out of range (%lu..%lu)", LINE,
		 o->name, text, o->min, o->max);
	ck_assert_str_eq(err, want);
	if (o->min > 0) {
		snprintf(text, sizeof(text), "%lu", o->min - 1);
		ck_assert_int_eq(parse(o, text, &v, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), PATH ":%d: %s = %s is out of range (%lu..%lu)", LINE,
			 o->name, text, o->min, o->max);
		ck_assert_str_eq(err, want);
	}
}
END_TEST

/* Each word parses to its value; a number option's words are its only non-digits. */
START_TEST(test_words)
{
	const struct config_table *t = NULL;
	const struct config_option *o = typed_option((size_t)_i, &t);
	char err[256], want[256];
	long v;

	for (size_t i = 0; i < o->n_words; i++) {
		v = -1;
		ck_assert_msg(parse(o, o->words[i].word, &v, err, sizeof(err)) == 0, "%s", err);
		ck_assert_int_eq(v, o->words[i].value);
	}
	ck_assert_int_eq(parse(o, "x-unknown", &v, err, sizeof(err)), -1);
	if (is_number(o))
		snprintf(want, sizeof(want), PATH ":%d: %s: 'x-unknown' is not a decimal number",
			 LINE, o->name);
	else
		snprintf(want, sizeof(want), PATH ":%d: %s: unknown value 'x-unknown' (expected ",
			 LINE, o->name);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got '%s', want '%s'", err, want);
}
END_TEST

/* The expected words are listed from the table, as the messages always read. */
START_TEST(test_word_list_message)
{
	const struct config_option *o = config_option_find(config_table("backend"),
							   "client_address");
	char err[256];
	long v;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(parse(o, "proxy", &v, err, sizeof(err)), -1);
	ck_assert_str_eq(err, PATH ":7: client_address: unknown value 'proxy' "
			 "(expected none, proxy-v1, proxy-v2 or imap-id)");
	o = config_option_find(config_table("tls_profile"), "forward_secrecy");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(parse(o, "maybe", &v, err, sizeof(err)), -1);
	ck_assert_str_eq(err, PATH ":7: forward_secrecy: unknown value 'maybe' "
			 "(expected required or allowed)");
	ck_assert_int_eq(parse(o, NULL, &v, err, sizeof(err)), -1);
	ck_assert_str_eq(err, PATH ":7: forward_secrecy: unknown value '' "
			 "(expected required or allowed)");
}
END_TEST

START_TEST(test_not_decimal)
{
	static const char *const bad[] = { "", " 1", "1 ", "0x10", "-1", "+1", "1e3", "12abc" };
	const struct config_option *o = config_option_find(config_table("root"),
							   "max_connections");
	char err[256], want[256];
	long v;

	ck_assert_ptr_nonnull(o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse(o, bad[i], &v, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), PATH ":7: max_connections: '%s' is not a decimal number",
			 bad[i]);
		ck_assert_str_eq(err, want);
	}
	ck_assert_int_eq(parse(o, NULL, &v, err, sizeof(err)), -1);
	ck_assert_str_eq(err, PATH ":7: max_connections: '' is not a decimal number");
	/* Leading zeros are decimal, not octal; overflow is out of range. */
	ck_assert_int_eq(parse(o, "010", &v, err, sizeof(err)), 0);
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(parse(o, "99999999999999999999999999", &v, err, sizeof(err)), -1);
	ck_assert_str_eq(err, PATH ":7: max_connections = 99999999999999999999999999 is out of "
			 "range (1..1000000)");
}
END_TEST

/* Each type writes exactly its field's bytes and nothing next to it. */
START_TEST(test_store_types)
{
	struct probe {
		unsigned char before[8];
		union { unsigned u; size_t z; int e; bool b; } field;
		unsigned char after[8];
	} p;
	static const struct { enum config_type type; long value; size_t size; } cases[] = {
		{ CONFIG_UNSIGNED, 65535, sizeof(unsigned) },
		{ CONFIG_SIZE, 65536, sizeof(size_t) },
		{ CONFIG_ENUM, 3, sizeof(int) },
		{ CONFIG_BOOL, 5, sizeof(bool) },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_option o = { .name = "x", .type = cases[i].type,
					   .offset = offsetof(struct probe, field) };
		unsigned char tail[sizeof(p.field)];

		memset(&p, 0xa5, sizeof(p));
		config_option_store(&o, &p, cases[i].value);
		switch (cases[i].type) {
		case CONFIG_UNSIGNED:
			ck_assert_uint_eq(p.field.u, 65535);
			break;
		case CONFIG_SIZE:
			ck_assert_uint_eq(p.field.z, 65536);
			break;
		case CONFIG_ENUM:
			ck_assert_int_eq(p.field.e, 3);
			break;
		case CONFIG_BOOL:
			ck_assert(p.field.b);	/* any non-zero is true, stored as 1 */
			ck_assert_uint_eq(*(unsigned char *)&p.field, 1);
			break;
		}
		memset(tail, 0xa5, sizeof(tail));
		ck_assert(memcmp((unsigned char *)&p.field + cases[i].size, tail,
				 sizeof(p.field) - cases[i].size) == 0);
		for (size_t k = 0; k < sizeof(p.before); k++) {
			ck_assert_uint_eq(p.before[k], 0xa5);
			ck_assert_uint_eq(p.after[k], 0xa5);
		}
	}
}
END_TEST

static Suite *config_options_suite(void)
{
	Suite *s = suite_create("config_options");
	TCase *tc = tcase_create("table");

	tcase_add_loop_test(tc, test_entry_is_consistent, 0, n_typed_options());
	tcase_add_loop_test(tc, test_entry_found_by_section_and_name, 0, n_typed_options());
	tcase_add_test(tc, test_lookup_misses);
	tcase_add_loop_test(tc, test_number_bounds, 0, n_typed_options());
	tcase_add_loop_test(tc, test_words, 0, n_typed_options());
	tcase_add_test(tc, test_word_list_message);
	tcase_add_test(tc, test_not_decimal);
	tcase_add_test(tc, test_store_types);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(config_options_suite());
}
