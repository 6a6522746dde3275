/*
 * check_imap_token.c - hostile, table-driven tests for the IMAP tokenizer.
 *
 * Every input is parsed from an exact-size heap copy, so a read one byte past
 * the end shows up under AddressSanitizer instead of passing by luck.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_token.h"
#include "check_run.h"

/* A string literal with its exact length, so tables can hold NUL bytes. */
#define BYTES(lit) lit, sizeof(lit) - 1

struct parsed {
	char *buf;
	struct imap_command cmd;
	const char *error;
	int rc;
};

static void parse_bytes(struct parsed *p, const char *in, size_t len)
{
	p->buf = malloc(len > 0 ? len : 1);
	ck_assert_ptr_nonnull(p->buf);
	if (len > 0)
		memcpy(p->buf, in, len);
	p->rc = imap_command_parse(p->buf, len, &p->cmd, &p->error);
}

/*
 * Render the tokens as text for comparison with a table: "(" and ")" for
 * lists, a: atom, q: quoted string, l: literal; bytes outside "!".."~" are
 * written \xHH so spaces and NULs inside values stay visible.
 */
static void render(const struct imap_command *cmd, char *out, size_t outsize)
{
	size_t o = 0, i, j;

	out[0] = '\0';
	for (i = 0; i < cmd->nargs; i++) {
		const struct imap_token *t = &cmd->args[i];
		const char *prefix = "";

		switch (t->type) {
		case IMAP_TOKEN_LIST_BEGIN:
			prefix = "(";
			break;
		case IMAP_TOKEN_LIST_END:
			prefix = ")";
			break;
		case IMAP_TOKEN_ATOM:
			prefix = "a:";
			break;
		case IMAP_TOKEN_STRING:
			prefix = t->literal ? "l:" : "q:";
			break;
		}
		o += (size_t)snprintf(out + o, outsize - o, "%s%s", i > 0 ? " " : "", prefix);
		ck_assert_uint_lt(o, outsize);
		if (t->type != IMAP_TOKEN_ATOM && t->type != IMAP_TOKEN_STRING)
			continue;
		for (j = 0; j < t->len; j++) {
			unsigned char c = (unsigned char)t->value[j];

			if (c > ' ' && c < 0x7f)
				o += (size_t)snprintf(out + o, outsize - o, "%c", c);
			else
				o += (size_t)snprintf(out + o, outsize - o, "\\x%02x", c);
			ck_assert_uint_lt(o, outsize);
		}
	}
}

/* ---- good commands ------------------------------------------------------- */

struct good_case {
	const char *in;
	size_t len;
	const char *tag;
	const char *name;
	const char *tokens;
};

static const struct good_case good_cases[] = {
	{ BYTES("a1 NOOP"), "a1", "NOOP", "" },
	{ BYTES("a1 noop"), "a1", "noop", "" },
	{ BYTES("A001 CAPABILITY"), "A001", "CAPABILITY", "" },
	{ BYTES("a]1 NOOP"), "a]1", "NOOP", "" },
	{ BYTES("a!#$&',-./:;<=>?@[]^_`|}~9 NOOP"), "a!#$&',-./:;<=>?@[]^_`|}~9", "NOOP", "" },
	{ BYTES("a1 LOGIN user pass"), "a1", "LOGIN", "a:user a:pass" },
	{ BYTES("a1 LOGIN USER p]ss}"), "a1", "LOGIN", "a:USER a:p]ss}" },
	{ BYTES("a1 X [a] <1.2> a}b"), "a1", "X", "a:[a] a:<1.2> a:a}b" },
	/* quoted strings, with the two legal escapes */
	{ BYTES("a1 LOGIN \"us er\" \"p\\\"a\\\\ss\""), "a1", "LOGIN", "q:us\\x20er q:p\"a\\ss" },
	{ BYTES("a1 LOGIN \"\" \"\""), "a1", "LOGIN", "q: q:" },
	{ BYTES("a1 X \"(\\\\)\" \"\\\"\""), "a1", "X", "q:(\\) q:\"" },
	{ BYTES("a1 X \"{5}\" \"a)b(\""), "a1", "X", "q:{5} q:a)b(" },
	{ BYTES("a1 X \"a\tb\""), "a1", "X", "q:a\\x09b" },
	{ BYTES("a1 LOGIN \"j\xc3\xb6rg\" x"), "a1", "LOGIN", "q:j\\xc3\\xb6rg a:x" },
	{ BYTES("a1 LOGIN \"caf\xe9\" x"), "a1", "LOGIN", "q:caf\\xe9 a:x" },
	/* literals, synchronising and LITERAL+ */
	{ BYTES("a1 LOGIN {4}\r\nuser {4+}\r\npass"), "a1", "LOGIN", "l:user l:pass" },
	{ BYTES("a1 LOGIN u {6}\r\na\r\n\0bc"), "a1", "LOGIN", "a:u l:a\\x0d\\x0a\\x00bc" },
	{ BYTES("a1 LOGIN {0}\r\n {0+}\r\n"), "a1", "LOGIN", "l: l:" },
	{ BYTES("a1 X {04}\r\nuser"), "a1", "X", "l:user" },
	{ BYTES("a1 X {2}\r\n{}"), "a1", "X", "l:{}" },
	{ BYTES("a1 X {3}\r\n\"\\  \"x\""), "a1", "X", "l:\"\\\\x20 q:x" },
	{ BYTES("a1 X ({1}\r\na)"), "a1", "X", "( l:a )" },
	{ BYTES("a1 X {7}\r\n{1}\r\nab"), "a1", "X", "l:{1}\\x0d\\x0aab" },
	/* empty literals in every argument position (the front end reads no bytes for them) */
	{ BYTES("a1 X {0}\r\n"), "a1", "X", "l:" },
	{ BYTES("a1 X {0+}\r\n"), "a1", "X", "l:" },
	{ BYTES("a1 X {00}\r\n"), "a1", "X", "l:" },
	{ BYTES("a1 X {0}\r\n a"), "a1", "X", "l: a:a" },
	{ BYTES("a1 X a {0+}\r\n b"), "a1", "X", "a:a l: a:b" },
	{ BYTES("a1 X ({0}\r\n)"), "a1", "X", "( l: )" },
	{ BYTES("a1 X ({0+}\r\n {0}\r\n)"), "a1", "X", "( l: l: )" },
	{ BYTES("a1 X (({0}\r\n))"), "a1", "X", "( ( l: ) )" },
	{ BYTES("a1 X ({0}\r\n) {0+}\r\n"), "a1", "X", "( l: ) l:" },
	{ BYTES("a1 X {0}\r\n {1}\r\n{"), "a1", "X", "l: l:{" },
	{ BYTES("a1 ID ({0}\r\n {0+}\r\n)"), "a1", "ID", "( l: l: )" },
	{ BYTES("a1 AUTHENTICATE PLAIN {0}\r\n"), "a1", "AUTHENTICATE", "a:PLAIN l:" },
	/* lists */
	{ BYTES("a1 ID (\"name\" \"x\" \"version\" NIL)"), "a1", "ID",
	  "( q:name q:x q:version a:NIL )" },
	{ BYTES("a1 ID NIL"), "a1", "ID", "a:NIL" },
	{ BYTES("a1 X ()"), "a1", "X", "( )" },
	{ BYTES("a1 X (() ())"), "a1", "X", "( ( ) ( ) )" },
	{ BYTES("a1 X ((a) (b (c)))"), "a1", "X", "( ( a:a ) ( a:b ( a:c ) ) )" },
	{ BYTES("a1 STORE 1 +FLAGS (\\Seen \\Deleted)"), "a1", "STORE",
	  "a:1 a:+FLAGS ( a:\\Seen a:\\Deleted )" },
	/* SASL-IR initial responses are atoms */
	{ BYTES("a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=="), "a1", "AUTHENTICATE",
	  "a:PLAIN a:AGFsaWNlAHNlY3JldA==" },
	{ BYTES("a1 AUTHENTICATE PLAIN ="), "a1", "AUTHENTICATE", "a:PLAIN a:=" },
	{ BYTES("a1 AUTHENTICATE PLAIN a+b/c="), "a1", "AUTHENTICATE", "a:PLAIN a:a+b/c=" },
};

START_TEST(test_good)
{
	const struct good_case *c = &good_cases[_i];
	struct parsed p;
	char rendered[1024];

	parse_bytes(&p, c->in, c->len);
	ck_assert_msg(p.rc == 0, "case %d: %s", _i, p.error);
	ck_assert_ptr_null(p.error);
	ck_assert_uint_eq(p.cmd.tag_len, strlen(c->tag));
	ck_assert(memcmp(p.cmd.tag, c->tag, p.cmd.tag_len) == 0);
	ck_assert(imap_word_equals(p.cmd.name, p.cmd.name_len, c->name));
	render(&p.cmd, rendered, sizeof(rendered));
	ck_assert_str_eq(rendered, c->tokens);
	free(p.buf);
}
END_TEST

/* ---- bad commands -------------------------------------------------------- */

struct bad_case {
	const char *in;
	size_t len;
	const char *tag;	/* expected tag, NULL when the tag itself is bad */
};

static const struct bad_case bad_cases[] = {
	/* bad tags: no tag can be answered */
	{ BYTES(""), NULL },
	{ BYTES(" NOOP"), NULL },
	{ BYTES("+ NOOP"), NULL },
	{ BYTES("a+1 NOOP"), NULL },
	{ BYTES("* NOOP"), NULL },
	{ BYTES("a*1 NOOP"), NULL },
	{ BYTES("a%1 NOOP"), NULL },
	{ BYTES("a\"1 NOOP"), NULL },
	{ BYTES("a\\1 NOOP"), NULL },
	{ BYTES("a(1 NOOP"), NULL },
	{ BYTES("a)1 NOOP"), NULL },
	{ BYTES("a{1 NOOP"), NULL },
	{ BYTES("a\x01 NOOP"), NULL },
	{ BYTES("a\x7f NOOP"), NULL },
	{ BYTES("\xc3\xa9 NOOP"), NULL },
	{ BYTES("a\0 NOOP"), NULL },
	{ BYTES("\0"), NULL },
	{ BYTES("\r\n"), NULL },
	{ BYTES("a1\tNOOP"), NULL },
	{ BYTES("a1\r\nNOOP"), NULL },
	/* good tag, bad command name or separators */
	{ BYTES("a1"), "a1" },
	{ BYTES("a1 "), "a1" },
	{ BYTES("a1  NOOP"), "a1" },
	{ BYTES("a1 NOOP "), "a1" },
	{ BYTES("a1 LOGIN  user pass"), "a1" },
	{ BYTES("a1 LOGIN user pass "), "a1" },
	{ BYTES("a1 NOOP\r\n"), "a1" },
	{ BYTES("a1 NOOP\0"), "a1" },
	{ BYTES("a1 NO\0OP"), "a1" },
	{ BYTES("a1 (NOOP)"), "a1" },
	{ BYTES("a1 \"NOOP\""), "a1" },
	{ BYTES("a1 {4}\r\nNOOP"), "a1" },
	{ BYTES("a1 \\NOOP"), "a1" },
	{ BYTES("a1 NO]OP"), "a1" },
	{ BYTES("a1 NOOP)"), "a1" },
	{ BYTES("a1 \xc3\xa9"), "a1" },
	/* NUL outside literals */
	{ BYTES("a1 LOGIN us\0er pass"), "a1" },
	{ BYTES("a1 LOGIN \"us\0er\" pass"), "a1" },
	{ BYTES("a1 LOGIN user \0"), "a1" },
	/* atoms */
	{ BYTES("a1 LOGIN us%er p"), "a1" },
	{ BYTES("a1 X a*"), "a1" },
	{ BYTES("a1 X *"), "a1" },
	{ BYTES("a1 X \\"), "a1" },
	{ BYTES("a1 X a\\b"), "a1" },
	{ BYTES("a1 X \\\\Seen"), "a1" },
	{ BYTES("a1 X a\x7f"), "a1" },
	{ BYTES("a1 X a\x01z"), "a1" },
	{ BYTES("a1 X a\tb"), "a1" },
	{ BYTES("a1 LOGIN j\xc3\xb6rg p"), "a1" },
	{ BYTES("a1 X a\"b\""), "a1" },
	/* quoted strings */
	{ BYTES("a1 LOGIN \"user"), "a1" },
	{ BYTES("a1 LOGIN \"us\\ner\" p"), "a1" },
	{ BYTES("a1 LOGIN \"us\\aer\" p"), "a1" },
	{ BYTES("a1 LOGIN \"us\\\x01\" p"), "a1" },
	{ BYTES("a1 LOGIN \"abc\\"), "a1" },
	{ BYTES("a1 LOGIN \"abc\\\""), "a1" },
	{ BYTES("a1 LOGIN \"u\rs\" p"), "a1" },
	{ BYTES("a1 LOGIN \"u\ns\" p"), "a1" },
	{ BYTES("a1 LOGIN \"u\r\ns\" p"), "a1" },
	{ BYTES("a1 LOGIN \"a\"b c"), "a1" },
	{ BYTES("a1 LOGIN \"a\"\"b\""), "a1" },
	/* literals */
	{ BYTES("a1 LOGIN {5}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {3}\r\nabcde"), "a1" },
	{ BYTES("a1 LOGIN {3}\r\n"), "a1" },
	{ BYTES("a1 LOGIN {3}abc"), "a1" },
	{ BYTES("a1 LOGIN {3}\rabc"), "a1" },
	{ BYTES("a1 LOGIN {3}\nabc"), "a1" },
	{ BYTES("a1 LOGIN {3}\n\rabc"), "a1" },
	{ BYTES("a1 LOGIN {3}"), "a1" },
	{ BYTES("a1 LOGIN {3"), "a1" },
	{ BYTES("a1 LOGIN {"), "a1" },
	{ BYTES("a1 LOGIN {}\r\n"), "a1" },
	{ BYTES("a1 LOGIN {abc}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {3 }\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN { 3}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {-1}\r\n"), "a1" },
	{ BYTES("a1 LOGIN {+3}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {3++}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {3+}\r\nab"), "a1" },
	{ BYTES("a1 LOGIN {99999999999}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {4294967296}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {18446744073709551617}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {1}\r\nab c"), "a1" },
	{ BYTES("a1 LOGIN x{1}\r\na"), "a1" },
	{ BYTES("a1 LOGIN ~{3}\r\nabc"), "a1" },
	{ BYTES("a1 LOGIN {1}\r\na{1}\r\nb"), "a1" },
	/* empty literals where no literal may stand, or malformed around them */
	{ BYTES("{0}\r\n NOOP"), NULL },
	{ BYTES("{0+}\r\n"), NULL },
	{ BYTES("{0}\r\n"), NULL },
	{ BYTES("a1 {0}\r\n"), "a1" },
	{ BYTES("a1 {0+}\r\n NOOP"), "a1" },
	{ BYTES("a1 X {0}\r\n{0}\r\n"), "a1" },
	{ BYTES("a1 X {0}\r\na"), "a1" },
	{ BYTES("a1 X {0}\r\n "), "a1" },
	{ BYTES("a1 X {0}\r\n)"), "a1" },
	{ BYTES("a1 X ({0}\r\n"), "a1" },
	{ BYTES("a1 X ({0}\r\n )"), "a1" },
	{ BYTES("a1 X x{0}\r\n"), "a1" },
	{ BYTES("a1 X {0}"), "a1" },
	{ BYTES("a1 X {0}\r"), "a1" },
	{ BYTES("a1 X {0}\n"), "a1" },
	{ BYTES("a1 X {0++}\r\n"), "a1" },
	{ BYTES("a1 X {+0}\r\n"), "a1" },
	{ BYTES("a1 X {0}\r\n\r\n"), "a1" },
	/* lists */
	{ BYTES("a1 X (a"), "a1" },
	{ BYTES("a1 X ("), "a1" },
	{ BYTES("a1 X a)"), "a1" },
	{ BYTES("a1 X )"), "a1" },
	{ BYTES("a1 X )("), "a1" },
	{ BYTES("a1 X ( a)"), "a1" },
	{ BYTES("a1 X (a )"), "a1" },
	{ BYTES("a1 X ( )"), "a1" },
	{ BYTES("a1 X (a)(b)"), "a1" },
	{ BYTES("a1 X (a)b"), "a1" },
	{ BYTES("a1 X ((a)"), "a1" },
	{ BYTES("a1 X (a))"), "a1" },
	{ BYTES("a1 X (a) "), "a1" },
	{ BYTES("a1 X ()  a"), "a1" },
	{ BYTES("a1 X (\"a\""), "a1" },
};

START_TEST(test_bad)
{
	const struct bad_case *c = &bad_cases[_i];
	struct parsed p;

	parse_bytes(&p, c->in, c->len);
	ck_assert_msg(p.rc == -1, "case %d unexpectedly parsed", _i);
	ck_assert_ptr_nonnull(p.error);
	if (c->tag == NULL) {
		ck_assert_msg(p.cmd.tag == NULL, "case %d: tag set", _i);
		ck_assert_uint_eq(p.cmd.tag_len, 0);
	} else {
		ck_assert_msg(p.cmd.tag != NULL, "case %d: tag not set (%s)", _i, p.error);
		ck_assert_uint_eq(p.cmd.tag_len, strlen(c->tag));
		ck_assert(memcmp(p.cmd.tag, c->tag, p.cmd.tag_len) == 0);
	}
	/* Nothing half-parsed is left for a caller to act on. */
	ck_assert_ptr_null(p.cmd.name);
	ck_assert_uint_eq(p.cmd.name_len, 0);
	ck_assert_uint_eq(p.cmd.nargs, 0);
	free(p.buf);
}
END_TEST

/* ---- limits ---------------------------------------------------------------- */

/* "a1 X " followed by n atoms "a" separated by spaces. */
static size_t make_args(char *out, size_t outsize, size_t n)
{
	size_t o = (size_t)snprintf(out, outsize, "a1 X");
	size_t i;

	for (i = 0; i < n; i++) {
		ck_assert_uint_lt(o + 2, outsize);
		out[o++] = ' ';
		out[o++] = 'a';
	}
	return o;
}

START_TEST(test_max_args)
{
	char in[512];
	struct parsed p;
	size_t len;

	len = make_args(in, sizeof(in), IMAP_MAX_ARGS);
	parse_bytes(&p, in, len);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_uint_eq(p.cmd.nargs, IMAP_MAX_ARGS);
	free(p.buf);

	len = make_args(in, sizeof(in), IMAP_MAX_ARGS + 1);
	parse_bytes(&p, in, len);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_ptr_nonnull(p.cmd.tag);
	ck_assert_uint_eq(p.cmd.nargs, 0);
	free(p.buf);
}
END_TEST

/* List brackets are tokens too and count against the same limit. */
START_TEST(test_max_args_lists)
{
	char in[512];
	struct parsed p;
	size_t o, i;

	o = (size_t)snprintf(in, sizeof(in), "a1 X ()");
	for (i = 1; i < IMAP_MAX_ARGS / 2; i++)
		o += (size_t)snprintf(in + o, sizeof(in) - o, " ()");
	parse_bytes(&p, in, o);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_uint_eq(p.cmd.nargs, IMAP_MAX_ARGS);
	free(p.buf);

	o += (size_t)snprintf(in + o, sizeof(in) - o, " (");
	parse_bytes(&p, in, o);
	ck_assert_int_eq(p.rc, -1);
	free(p.buf);
}
END_TEST

/* Flooding with far more tokens than allowed stops at the limit. */
START_TEST(test_overlong_args)
{
	size_t n = 100000, len;
	char *in = malloc(2 * n + 8);
	struct parsed p;

	ck_assert_ptr_nonnull(in);
	len = make_args(in, 2 * n + 8, n);
	parse_bytes(&p, in, len);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_str_eq(p.error, "too many arguments");
	free(p.buf);
	free(in);
}
END_TEST

/* The tokenizer has no length limit of its own (the reader has): long values work. */
START_TEST(test_long_values)
{
	size_t n = 65536, o;
	char *in = malloc(3 * n + 64);
	struct parsed p;
	size_t i;

	ck_assert_ptr_nonnull(in);
	o = (size_t)snprintf(in, 64, "a1 LOGIN ");
	memset(in + o, 'u', n);
	o += n;
	o += (size_t)snprintf(in + o, 64, " \"");
	for (i = 0; i < n / 2; i++) {
		in[o++] = '\\';
		in[o++] = '"';
	}
	in[o++] = '"';
	parse_bytes(&p, in, o);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_uint_eq(p.cmd.nargs, 2);
	ck_assert_uint_eq(p.cmd.args[0].len, n);
	ck_assert_uint_eq(p.cmd.args[1].len, n / 2);
	for (i = 0; i < n / 2; i++)
		ck_assert_int_eq(p.cmd.args[1].value[i], '"');
	free(p.buf);
	free(in);
}
END_TEST

static size_t make_nested(char *out, size_t outsize, size_t depth)
{
	size_t o = (size_t)snprintf(out, outsize, "a1 X ");
	size_t i;

	ck_assert_uint_lt(o + 2 * depth + 1, outsize);
	for (i = 0; i < depth; i++)
		out[o++] = '(';
	out[o++] = 'a';
	for (i = 0; i < depth; i++)
		out[o++] = ')';
	return o;
}

START_TEST(test_depth)
{
	char in[128];
	struct parsed p;
	size_t len;

	len = make_nested(in, sizeof(in), IMAP_MAX_DEPTH);
	parse_bytes(&p, in, len);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_uint_eq(p.cmd.nargs, 2 * IMAP_MAX_DEPTH + 1);
	free(p.buf);

	len = make_nested(in, sizeof(in), IMAP_MAX_DEPTH + 1);
	parse_bytes(&p, in, len);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_ptr_nonnull(p.cmd.tag);
	free(p.buf);
}
END_TEST

/* Depth is about nesting, not about how many lists there are. */
START_TEST(test_depth_siblings)
{
	char in[256];
	struct parsed p;
	size_t o, i;

	o = (size_t)snprintf(in, sizeof(in), "a1 X ");
	for (i = 0; i < IMAP_MAX_DEPTH + 4; i++)
		o += (size_t)snprintf(in + o, sizeof(in) - o, "%s(a)", i > 0 ? " " : "");
	parse_bytes(&p, in, o);
	ck_assert_int_eq(p.rc, 0);
	free(p.buf);
}
END_TEST

/*
 * A NUL in place of any byte outside the literal's data makes the command
 * invalid; inside the data it is just a byte.
 */
START_TEST(test_nul_everywhere)
{
	static const char cmd[] = "a1 LOGIN \"us\\\"er\" (x {3}\r\nabc \\Seen)";
	size_t len = sizeof(cmd) - 1;
	size_t data = (size_t)(strstr(cmd, "abc") - cmd);
	size_t i;

	for (i = 0; i < len; i++) {
		char in[sizeof(cmd)];
		struct parsed p;

		memcpy(in, cmd, len);
		in[i] = '\0';
		parse_bytes(&p, in, len);
		if (i >= data && i < data + 3)
			ck_assert_msg(p.rc == 0, "NUL at %zu in literal refused", i);
		else
			ck_assert_msg(p.rc == -1, "NUL at %zu accepted", i);
		free(p.buf);
	}
}
END_TEST

/* Every truncation of a valid command either parses or fails cleanly. */
START_TEST(test_truncated)
{
	static const char cmd[] = "a1 LOGIN \"us\\\"er\" (x {3}\r\nabc \\Seen) {2+}\r\nzz";
	size_t len = sizeof(cmd) - 1;
	size_t i;

	for (i = 0; i < len; i++) {
		struct parsed p;

		parse_bytes(&p, cmd, i);
		if (p.rc == 0)
			ck_assert_ptr_null(p.error);
		else
			ck_assert_ptr_nonnull(p.error);
		free(p.buf);
	}
}
END_TEST

/*
 * "{0}" or "{0+}" in place of each argument of a command with nested lists:
 * it parses, and the empty token points into the buffer (never NULL), so a
 * caller may copy it without a null pointer reaching memcpy.
 */
START_TEST(test_empty_literal_everywhere)
{
	/* What goes before and after the empty literal. */
	static const struct {
		const char *before, *after;
	} slots[] = { { "", "" },	  { "x ", "" },		{ "(", ")" },
		      { "(x ", ")" },	  { "(", " x)" },	{ "((", "))" },
		      { "(x (", ") x)" }, { "", " x" },		{ "() ", "" } };
	const char *empty = _i % 2 == 0 ? "{0}\r\n" : "{0+}\r\n";
	char in[128];
	struct parsed p;
	int n;

	for (size_t s = 0; s < sizeof(slots) / sizeof(slots[0]); s++) {
		size_t i, literals = 0;

		n = snprintf(in, sizeof(in), "t%d X %s%s%s", _i, slots[s].before, empty,
			     slots[s].after);
		ck_assert(n > 0 && (size_t)n < sizeof(in));
		parse_bytes(&p, in, (size_t)n);
		ck_assert_msg(p.rc == 0, "slot \"%s\": %s", in, p.error);
		for (i = 0; i < p.cmd.nargs; i++) {
			const struct imap_token *t = &p.cmd.args[i];

			if (t->type != IMAP_TOKEN_STRING)
				continue;
			literals++;
			ck_assert(t->literal);
			ck_assert_uint_eq(t->len, 0);
			ck_assert_ptr_nonnull(t->value);
			ck_assert(t->value >= p.buf && t->value <= p.buf + n);
		}
		ck_assert_uint_eq(literals, 1);
		free(p.buf);
	}
}
END_TEST

/* Every truncation of a command of empty literals fails cleanly or parses. */
START_TEST(test_truncated_empty_literals)
{
	static const char cmd[] = "a1 LOGIN {0}\r\n ({0+}\r\n ({0}\r\n)) {0}\r\n";
	size_t len = sizeof(cmd) - 1;

	for (size_t i = 0; i <= len; i++) {
		struct parsed p;

		parse_bytes(&p, cmd, i);
		if (i == len)
			ck_assert_msg(p.rc == 0, "whole command: %s", p.error);
		if (p.rc == 0)
			ck_assert_ptr_null(p.error);
		else
			ck_assert_ptr_nonnull(p.error);
		free(p.buf);
	}
}
END_TEST

/* ---- imap_line_literal --------------------------------------------------- */

struct literal_case {
	const char *line;
	size_t len;
	enum imap_literal_result result;
	uint64_t size;
};

static const struct literal_case literal_cases[] = {
	{ BYTES("a LOGIN {5}"), IMAP_LITERAL_SYNC, 5 },
	{ BYTES("a LOGIN {5+}"), IMAP_LITERAL_NONSYNC, 5 },
	{ BYTES("a LOGIN {0}"), IMAP_LITERAL_SYNC, 0 },
	{ BYTES("a LOGIN {00005}"), IMAP_LITERAL_SYNC, 5 },
	{ BYTES("a LOGIN {0+}"), IMAP_LITERAL_NONSYNC, 0 },
	{ BYTES("a LOGIN {00}"), IMAP_LITERAL_SYNC, 0 },
	{ BYTES("a X ({0}"), IMAP_LITERAL_SYNC, 0 },
	{ BYTES("a X ({0+}"), IMAP_LITERAL_NONSYNC, 0 },
	{ BYTES(" {0}"), IMAP_LITERAL_SYNC, 0 },
	{ BYTES(" {0+}"), IMAP_LITERAL_NONSYNC, 0 },
	{ BYTES("a {0}"), IMAP_LITERAL_SYNC, 0 },	/* a literal name: the parser refuses it */
	{ BYTES("{0}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("{0+}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a X x{0}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a X {0-}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a X ({12+}"), IMAP_LITERAL_NONSYNC, 12 },
	{ BYTES(" {7}"), IMAP_LITERAL_SYNC, 7 },
	{ BYTES("a X {4294967295}"), IMAP_LITERAL_SYNC, 4294967295u },
	{ BYTES("a LOGIN {}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {+}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {abc}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {5a}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {+5}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {5++}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {5}}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {99999999999}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {4294967296}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {18446744073709551616}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN x{5}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN \"x\"{5}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("{5}"), IMAP_LITERAL_INVALID, 0 },
	{ BYTES("a LOGIN {5} x"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a LOGIN {5}\r"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a LOGIN {5}\0"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a LOGIN \"{5}\""), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a LOGIN user pass}"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a LOGIN user }"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a LOGIN { 5}"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("a NOOP"), IMAP_LITERAL_NONE, 0 },
	{ BYTES("}"), IMAP_LITERAL_NONE, 0 },
	{ BYTES(""), IMAP_LITERAL_NONE, 0 },
};

START_TEST(test_line_literal)
{
	const struct literal_case *c = &literal_cases[_i];
	char *line = malloc(c->len > 0 ? c->len : 1);
	uint64_t size = 12345;

	ck_assert_ptr_nonnull(line);
	memcpy(line, c->line, c->len);
	ck_assert_msg(imap_line_literal(line, c->len, &size) == c->result, "case %d", _i);
	ck_assert_uint_eq(size, c->size);
	free(line);
}
END_TEST

/* ---- imap_word_equals ---------------------------------------------------- */

struct word_case {
	const char *s;
	size_t len;
	const char *word;
	bool equal;
};

static const struct word_case word_cases[] = {
	{ BYTES("NOOP"), "NOOP", true },
	{ BYTES("noop"), "NOOP", true },
	{ BYTES("nOoP"), "noop", true },
	{ BYTES(""), "", true },
	{ BYTES("NOOPX"), "NOOP", false },
	{ BYTES("NOO"), "NOOP", false },
	{ BYTES("NOOP"), "", false },
	{ BYTES("NO\0P"), "NOOP", false },
	{ BYTES("NOOP\0"), "NOOP", false },
	{ BYTES("LOGIN"), "LOGIM", false },
	/* no folding beyond ASCII letters */
	{ BYTES("@"), "`", false },
	{ BYTES("["), "{", false },
	{ BYTES("\xc9"), "\xe9", false },
	{ "NOOPX", 4, "NOOP", true },
};

START_TEST(test_word_equals)
{
	const struct word_case *c = &word_cases[_i];

	ck_assert_msg(imap_word_equals(c->s, c->len, c->word) == c->equal, "case %d", _i);
}
END_TEST

START_TEST(test_word_equals_null)
{
	ck_assert(!imap_word_equals(NULL, 0, ""));
	ck_assert(!imap_word_equals(NULL, 0, "NOOP"));
}
END_TEST

/* ---- imap_quote ------------------------------------------------------------ */

struct quote_case {
	const char *s;
	size_t len;
	bool nonsync;
	const char *out;
	size_t outlen;
	bool sync;
};

static const struct quote_case quote_cases[] = {
	{ BYTES("user"), false, BYTES("\"user\""), false },
	{ BYTES(""), false, BYTES("\"\""), false },
	{ BYTES("a b"), true, BYTES("\"a b\""), false },
	{ BYTES("a\"b\\c"), false, BYTES("\"a\\\"b\\\\c\""), false },
	{ BYTES("{5}~()%*"), false, BYTES("\"{5}~()%*\""), false },
	{ BYTES("caf\xc3\xa9"), false, BYTES("{5}\r\ncaf\xc3\xa9"), true },
	{ BYTES("caf\xc3\xa9"), true, BYTES("{5+}\r\ncaf\xc3\xa9"), false },
	{ BYTES("a\r\nb"), false, BYTES("{4}\r\na\r\nb"), true },
	{ BYTES("a\0b"), true, BYTES("{3+}\r\na\0b"), false },
	{ BYTES("a\tb"), false, BYTES("{3}\r\na\tb"), true },
	{ BYTES("\x7f"), false, BYTES("{1}\r\n\x7f"), true },
};

START_TEST(test_quote)
{
	const struct quote_case *c = &quote_cases[_i];
	char out[64];
	bool sync = !c->sync;
	size_t n;

	n = imap_quote(c->s, c->len, c->nonsync, out, sizeof(out), &sync);
	ck_assert_uint_eq(n, c->outlen);
	ck_assert(memcmp(out, c->out, n) == 0);
	ck_assert(sync == c->sync);
}
END_TEST

/* Exactly enough room works; one byte less is refused with nothing promised. */
START_TEST(test_quote_fit)
{
	const struct quote_case *c = &quote_cases[_i];
	char *out = malloc(c->outlen);
	bool sync;

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(imap_quote(c->s, c->len, c->nonsync, out, c->outlen, &sync), c->outlen);
	ck_assert(memcmp(out, c->out, c->outlen) == 0);
	ck_assert_uint_eq(imap_quote(c->s, c->len, c->nonsync, out, c->outlen - 1, &sync), 0);
	ck_assert(!sync);
	free(out);
}
END_TEST

/* A value of quotes and backslashes that fits only as a literal goes as one. */
START_TEST(test_quote_falls_back_to_literal)
{
	char value[40], out[48];
	bool sync;

	for (size_t i = 0; i < sizeof(value); i++)
		value[i] = i % 2 ? '\\' : '"';
	/* quoted: 82 bytes; literal: "{40}\r\n" and the 40 */
	ck_assert_uint_eq(imap_quote(value, sizeof(value), false, out, sizeof(out), &sync), 46);
	ck_assert(memcmp(out, "{40}\r\n", 6) == 0);
	ck_assert(memcmp(out + 6, value, sizeof(value)) == 0);
	ck_assert(sync);
	ck_assert_uint_eq(imap_quote(value, sizeof(value), true, out, sizeof(out), &sync), 47);
	ck_assert(memcmp(out, "{40+}\r\n", 7) == 0);
	ck_assert(!sync);
	/* with room, the quoted form, as before */
	{
		char big[128];

		ck_assert_uint_eq(imap_quote(value, sizeof(value), false, big, sizeof(big), &sync),
				  82);
		ck_assert_int_eq(big[0], '"');
		ck_assert(!sync);
	}
}
END_TEST

/* Quote a value twice into "t LOGIN <q> <q>" and parse it back. */
static void check_round_trip(const char *value, size_t len, bool nonsync)
{
	char in[2048];
	size_t o, n;
	bool sync;
	struct parsed p;
	int k;

	o = (size_t)snprintf(in, sizeof(in), "t LOGIN ");
	n = imap_quote(value, len, nonsync, in + o, sizeof(in) - o, &sync);
	ck_assert_uint_gt(n, 0);
	o += n;
	in[o++] = ' ';
	n = imap_quote(value, len, nonsync, in + o, sizeof(in) - o, &sync);
	ck_assert_uint_gt(n, 0);
	o += n;

	parse_bytes(&p, in, o);
	ck_assert_msg(p.rc == 0, "round trip failed: %s", p.error);
	ck_assert_uint_eq(p.cmd.nargs, 2);
	for (k = 0; k < 2; k++) {
		ck_assert_int_eq(p.cmd.args[k].type, IMAP_TOKEN_STRING);
		ck_assert(p.cmd.args[k].literal == (in[o - n] == '{'));
		ck_assert_uint_eq(p.cmd.args[k].len, len);
		ck_assert(memcmp(p.cmd.args[k].value, value, len) == 0);
	}
	free(p.buf);
}

START_TEST(test_quote_round_trip_bytes)
{
	char one = (char)_i;
	char three[3] = { '"', (char)_i, '\\' };

	check_round_trip(&one, 1, false);
	check_round_trip(&one, 1, true);
	check_round_trip(three, 3, false);
	check_round_trip(three, 3, true);
}
END_TEST

START_TEST(test_quote_round_trip_values)
{
	static const struct {
		const char *s;
		size_t len;
	} values[] = {
		{ BYTES("") },
		{ BYTES("\"") },
		{ BYTES("\\") },
		{ BYTES("\\\"\\\"") },
		{ BYTES("a b  c ") },
		{ BYTES("{5}") },
		{ BYTES("{5}\r\nabcde") },
		{ BYTES("\r\n") },
		{ BYTES("\0\0\0") },
		{ BYTES("p\xc3\xa4ss w\xc3\xb6rd") },
		{ BYTES("(a) \"b\" {c}") },
	};
	char all[256];
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		check_round_trip(values[i].s, values[i].len, false);
		check_round_trip(values[i].s, values[i].len, true);
	}
	for (i = 0; i < sizeof(all); i++)
		all[i] = (char)i;
	check_round_trip(all, sizeof(all), false);
	check_round_trip(all + 32, 95, true);	/* all printable: quoted */
}
END_TEST

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

static Suite *imap_token_suite(void)
{
	Suite *s = suite_create("imap_token");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_good, 0, TABLE_LEN(good_cases));
	tcase_add_loop_test(tc, test_bad, 0, TABLE_LEN(bad_cases));
	tcase_add_test(tc, test_nul_everywhere);
	tcase_add_test(tc, test_truncated);
	tcase_add_loop_test(tc, test_empty_literal_everywhere, 0, 2);
	tcase_add_test(tc, test_truncated_empty_literals);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_max_args);
	tcase_add_test(tc, test_max_args_lists);
	tcase_add_test(tc, test_overlong_args);
	tcase_add_test(tc, test_long_values);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_depth_siblings);
	suite_add_tcase(s, tc);

	tc = tcase_create("line_literal");
	tcase_add_loop_test(tc, test_line_literal, 0, TABLE_LEN(literal_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("word_equals");
	tcase_add_loop_test(tc, test_word_equals, 0, TABLE_LEN(word_cases));
	tcase_add_test(tc, test_word_equals_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("quote");
	tcase_add_loop_test(tc, test_quote, 0, TABLE_LEN(quote_cases));
	tcase_add_loop_test(tc, test_quote_fit, 0, TABLE_LEN(quote_cases));
	tcase_add_test(tc, test_quote_falls_back_to_literal);
	tcase_add_loop_test(tc, test_quote_round_trip_bytes, 0, 256);
	tcase_add_test(tc, test_quote_round_trip_values);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(imap_token_suite());
}
