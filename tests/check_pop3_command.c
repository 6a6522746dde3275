/*
 * check_pop3_command.c - hostile, table-driven tests for the POP3 command splitter
 * and the front end's decision table (gateway/pop3_command.c): good and bad
 * lines, NUL and every control byte, overlong lines, every command in every
 * state with and without TLS, and the rule that USER, PASS, APOP and AUTH
 * (with or without an initial response, well-formed or not) are refused
 * before TLS from their name alone.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_command.h"
#include "check_run.h"

#define BYTES(lit) lit, sizeof(lit) - 1
#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* Exact-size heap copy so over-reads are caught by AddressSanitizer. */
static char *copy(const char *s, size_t len)
{
	char *c = malloc(len > 0 ? len : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, s, len);
	return c;
}

/* Raw pointer arithmetic: is [p, p+n) inside [buf, buf+size]? */
static bool inside(const char *buf, size_t size, const char *p, size_t n)
{
	return p >= buf && (size_t)(p - buf) <= size && n <= size - (size_t)(p - buf);
}

/* ---- parsing: good lines ---------------------------------------------------- */

struct good_case {
	const char *line;
	size_t len;
	enum pop3_command_id id;
	size_t name_len;
	const char *args;
	size_t args_len;
};

static const struct good_case good_cases[] = {
	{ BYTES("CAPA"), POP3_CMD_CAPA, 4, BYTES("") },
	{ BYTES("capa"), POP3_CMD_CAPA, 4, BYTES("") },
	{ BYTES("CaPa"), POP3_CMD_CAPA, 4, BYTES("") },
	{ BYTES("STLS"), POP3_CMD_STLS, 4, BYTES("") },
	{ BYTES("stls"), POP3_CMD_STLS, 4, BYTES("") },
	{ BYTES("QUIT"), POP3_CMD_QUIT, 4, BYTES("") },
	{ BYTES("USER alice"), POP3_CMD_USER, 4, BYTES("alice") },
	{ BYTES("user alice@example.org"), POP3_CMD_USER, 4, BYTES("alice@example.org") },
	{ BYTES("USER "), POP3_CMD_USER, 4, BYTES("") },
	{ BYTES("USER a b"), POP3_CMD_USER, 4, BYTES("a b") },
	{ BYTES("USER p\xc3\xa4ul"), POP3_CMD_USER, 4, BYTES("p\xc3\xa4ul") },
	{ BYTES("PASS secret"), POP3_CMD_PASS, 4, BYTES("secret") },
	/* RFC 1939 section 7: spaces belong to the password. */
	{ BYTES("PASS  two  spaces "), POP3_CMD_PASS, 4, BYTES(" two  spaces ") },
	{ BYTES("PASS \xff\xfe\x80"), POP3_CMD_PASS, 4, BYTES("\xff\xfe\x80") },
	{ BYTES("APOP alice c4c9334bac560ecc979e58001b3e22fb"), POP3_CMD_APOP, 4,
	  BYTES("alice c4c9334bac560ecc979e58001b3e22fb") },
	{ BYTES("AUTH"), POP3_CMD_AUTH, 4, BYTES("") },
	{ BYTES("AUTH PLAIN"), POP3_CMD_AUTH, 4, BYTES("PLAIN") },
	{ BYTES("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), POP3_CMD_AUTH, 4,
	  BYTES("PLAIN AGFsaWNlAHNlY3JldA==") },
	{ BYTES("auth login YWxpY2U="), POP3_CMD_AUTH, 4, BYTES("login YWxpY2U=") },
	{ BYTES("NOOP"), POP3_CMD_NOOP, 4, BYTES("") },
	{ BYTES("STAT"), POP3_CMD_STAT, 4, BYTES("") },
	{ BYTES("LIST 1"), POP3_CMD_LIST, 4, BYTES("1") },
	{ BYTES("RETR 1"), POP3_CMD_RETR, 4, BYTES("1") },
	{ BYTES("DELE 1"), POP3_CMD_DELE, 4, BYTES("1") },
	{ BYTES("RSET"), POP3_CMD_RSET, 4, BYTES("") },
	{ BYTES("TOP 1 10"), POP3_CMD_TOP, 3, BYTES("1 10") },
	{ BYTES("top 1 10"), POP3_CMD_TOP, 3, BYTES("1 10") },
	{ BYTES("UIDL"), POP3_CMD_UIDL, 4, BYTES("") },
	/* Well-formed names that are not commands we know. */
	{ BYTES("X"), POP3_CMD_UNKNOWN, 1, BYTES("") },
	{ BYTES("XY z"), POP3_CMD_UNKNOWN, 2, BYTES("z") },
	{ BYTES("LAST"), POP3_CMD_UNKNOWN, 4, BYTES("") },
	{ BYTES("LANG en"), POP3_CMD_UNKNOWN, 4, BYTES("en") },
	{ BYTES("TOPS"), POP3_CMD_UNKNOWN, 4, BYTES("") },
	{ BYTES("CAP"), POP3_CMD_UNKNOWN, 3, BYTES("") },
	{ BYTES("USE alice"), POP3_CMD_UNKNOWN, 3, BYTES("alice") },
	{ BYTES("GET / HTTP/1.1"), POP3_CMD_UNKNOWN, 3, BYTES("/ HTTP/1.1") },
	/* Printable punctuation and tilde in arguments. */
	{ BYTES("PASS !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), POP3_CMD_PASS, 4,
	  BYTES("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") },
};

START_TEST(test_good)
{
	const struct good_case *c = &good_cases[_i];
	char *line = copy(c->line, c->len);
	struct pop3_command cmd;
	const char *error = NULL;

	ck_assert_msg(pop3_command_parse(line, c->len, &cmd, &error) == POP3_PARSE_OK,
		      "case %d: %s", _i, error);
	ck_assert_ptr_eq(cmd.name, line);
	ck_assert_uint_eq(cmd.name_len, c->name_len);
	ck_assert_int_eq(cmd.id, c->id);
	ck_assert_uint_eq(cmd.args_len, c->args_len);
	ck_assert(inside(line, c->len, cmd.args, cmd.args_len));
	ck_assert(memcmp(cmd.args, c->args, c->args_len) == 0);
	free(line);
}
END_TEST

/* ---- parsing: bad lines ----------------------------------------------------- */

struct bad_case {
	const char *line;
	size_t len;
	enum pop3_parse_result result;
	enum pop3_command_id id;	/* for BAD_LINE: the name still decided */
};

static const struct bad_case bad_cases[] = {
	/* No usable name. */
	{ BYTES(""), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES(" "), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES(" CAPA"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("\tCAPA"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("CAPAB"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("CAPABILITY"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("USERS alice"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("UTF8"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("1234"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("US3R alice"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("USER\talice"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("USER\0alice"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("\0USER alice"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("CA\0PA"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("CAPA\r"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("CAPA\n"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("\xc3\x9cSER alice"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("US\xc3\x89R"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("*"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	{ BYTES("a1 LOGIN alice secret"), POP3_PARSE_BAD_NAME, POP3_CMD_UNKNOWN },
	/* A valid name, then bytes that may not be in a command. */
	{ BYTES("USER a\0b"), POP3_PARSE_BAD_LINE, POP3_CMD_USER },
	{ BYTES("USER \0"), POP3_PARSE_BAD_LINE, POP3_CMD_USER },
	{ BYTES("PASS a\x01"), POP3_PARSE_BAD_LINE, POP3_CMD_PASS },
	{ BYTES("PASS a\x7f"), POP3_PARSE_BAD_LINE, POP3_CMD_PASS },
	{ BYTES("PASS a\rb"), POP3_PARSE_BAD_LINE, POP3_CMD_PASS },
	{ BYTES("PASS a\nb"), POP3_PARSE_BAD_LINE, POP3_CMD_PASS },
	{ BYTES("PASS \t"), POP3_PARSE_BAD_LINE, POP3_CMD_PASS },
	{ BYTES("AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA=="), POP3_PARSE_BAD_LINE, POP3_CMD_AUTH },
	{ BYTES("APOP a\x1b[2Jb"), POP3_PARSE_BAD_LINE, POP3_CMD_APOP },
	{ BYTES("CAPA \0"), POP3_PARSE_BAD_LINE, POP3_CMD_CAPA },
	{ BYTES("XYZ \x01"), POP3_PARSE_BAD_LINE, POP3_CMD_UNKNOWN },
};

START_TEST(test_bad)
{
	const struct bad_case *c = &bad_cases[_i];
	char *line = copy(c->line, c->len);
	struct pop3_command cmd;
	const char *error = NULL;
	enum pop3_parse_result r = pop3_command_parse(line, c->len, &cmd, &error);

	ck_assert_msg(r == c->result, "case %d: got %d", _i, r);
	ck_assert_ptr_nonnull(error);
	ck_assert(error[0] != '\0');
	ck_assert_int_eq(cmd.id, c->id);
	if (r == POP3_PARSE_BAD_NAME) {
		ck_assert_ptr_null(cmd.name);
	} else {
		ck_assert_ptr_eq(cmd.name, line);
		ck_assert(cmd.name_len >= 1 && cmd.name_len <= POP3_NAME_MAX);
	}
	free(line);
}
END_TEST

/* A NUL anywhere in a command line: never accepted. */
START_TEST(test_nul_everywhere)
{
	static const char *const lines[] = {
		"USER alice", "PASS secret", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "CAPA", "STLS",
		"APOP alice c4c9334bac560ecc979e58001b3e22fb", "QUIT",
	};

	for (size_t l = 0; l < sizeof(lines) / sizeof(lines[0]); l++) {
		size_t len = strlen(lines[l]);

		for (size_t i = 0; i < len; i++) {
			char *line = copy(lines[l], len);
			struct pop3_command cmd;
			const char *error = NULL;
			enum pop3_parse_result r;

			line[i] = '\0';
			r = pop3_command_parse(line, len, &cmd, &error);
			ck_assert_msg(r != POP3_PARSE_OK, "%s with NUL at %zu", lines[l], i);
			/* Past the name's separator the name still stands. */
			if (i > 4)
				ck_assert_int_eq(r, POP3_PARSE_BAD_LINE);
			free(line);
		}
		/* A NUL appended after the whole line. */
		{
			char *line = copy(lines[l], len + 1);
			struct pop3_command cmd;
			const char *error = NULL;

			line[len] = '\0';
			ck_assert(pop3_command_parse(line, len + 1, &cmd, &error) != POP3_PARSE_OK);
			free(line);
		}
	}
}
END_TEST

/* Every byte value as an argument byte: only printable ASCII and 8-bit pass. */
START_TEST(test_every_byte_in_argument)
{
	char text[] = "PASS a?b";
	char *line;
	struct pop3_command cmd;
	const char *error = NULL;
	unsigned char c = (unsigned char)_i;
	bool ok = c >= 0x20 && c != 0x7f;

	text[6] = (char)c;
	line = copy(text, sizeof(text) - 1);
	ck_assert_int_eq(pop3_command_parse(line, sizeof(text) - 1, &cmd, &error),
			 ok ? POP3_PARSE_OK : POP3_PARSE_BAD_LINE);
	ck_assert_int_eq(cmd.id, POP3_CMD_PASS);
	free(line);
}
END_TEST

/* Every byte value as the first byte of a name: only letters pass. */
START_TEST(test_every_byte_in_name)
{
	char text[] = "?APA";
	char *line;
	struct pop3_command cmd;
	const char *error = NULL;
	unsigned char c = (unsigned char)_i;
	bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');

	text[0] = (char)c;
	line = copy(text, sizeof(text) - 1);
	ck_assert_int_eq(pop3_command_parse(line, sizeof(text) - 1, &cmd, &error),
			 letter ? POP3_PARSE_OK : POP3_PARSE_BAD_NAME);
	ck_assert_int_eq(cmd.id, c == 'C' || c == 'c' ? POP3_CMD_CAPA : POP3_CMD_UNKNOWN);
	free(line);
}
END_TEST

/* RFC 2449: 255 octets with CRLF, so 253 without; one more is too long. */
START_TEST(test_overlong)
{
	static const size_t lengths[] = { 4, 5, 100, 252, 253, 254, 255, 256, 1000, 8192, 65536 };

	for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
		static const char *const names[] = { "PASS", "AUTH", "USER", "CAPA", "XYZW" };
		size_t len = lengths[k];

		for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
			char *line = malloc(len);
			struct pop3_command cmd;
			const char *error = NULL;
			enum pop3_parse_result r;

			ck_assert_ptr_nonnull(line);
			memset(line, 'x', len);
			memcpy(line, names[n], 4);
			if (len > 4)
				line[4] = ' ';
			r = pop3_command_parse(line, len, &cmd, &error);
			if (len <= POP3_COMMAND_TEXT_MAX) {
				ck_assert_int_eq(r, POP3_PARSE_OK);
			} else {
				ck_assert_int_eq(r, POP3_PARSE_BAD_LINE);
				ck_assert_str_eq(error, "Command line too long.");
			}
			/* Whatever the length, the name is known for the decision. */
			ck_assert_ptr_eq(cmd.name, line);
			ck_assert_uint_eq(cmd.name_len, 4);
			free(line);
		}
	}
}
END_TEST

/* A long run of letters is a bad name at once, and is not read past. */
START_TEST(test_long_name)
{
	size_t len = 100000;
	char *line = malloc(len);
	struct pop3_command cmd;
	const char *error = NULL;

	ck_assert_ptr_nonnull(line);
	memset(line, 'A', len);
	ck_assert_int_eq(pop3_command_parse(line, len, &cmd, &error), POP3_PARSE_BAD_NAME);
	free(line);
}
END_TEST

/* Every known name, in both cases, parses to its id and back. */
START_TEST(test_names_round_trip)
{
	enum pop3_command_id id = (enum pop3_command_id)(_i + 1);
	const char *name = pop3_command_name(id);
	size_t len = strlen(name);
	char *line = copy(name, len);
	struct pop3_command cmd;
	const char *error = NULL;

	ck_assert(len >= 3 && len <= POP3_NAME_MAX);
	ck_assert_int_eq(pop3_command_parse(line, len, &cmd, &error), POP3_PARSE_OK);
	ck_assert_int_eq(cmd.id, id);
	for (size_t i = 0; i < len; i++)
		line[i] = (char)(line[i] - 'A' + 'a');
	ck_assert_int_eq(pop3_command_parse(line, len, &cmd, &error), POP3_PARSE_OK);
	ck_assert_int_eq(cmd.id, id);
	free(line);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(pop3_command_name(POP3_CMD_UNKNOWN), "");
	ck_assert_str_eq(pop3_command_name(POP3_CMD_COUNT), "");
	ck_assert_str_eq(pop3_command_name((enum pop3_command_id)-1), "");
	for (int s = 0; s < POP3_STATE_COUNT; s++) {
		ck_assert_ptr_nonnull(pop3_state_name((enum pop3_state)s));
		for (int t = 0; t < s; t++)
			ck_assert_str_ne(pop3_state_name((enum pop3_state)s),
					 pop3_state_name((enum pop3_state)t));
	}
	ck_assert_str_eq(pop3_state_name(POP3_STATE_COUNT), "invalid");
	ck_assert_str_eq(pop3_action_name(POP3_ACTION_REFUSE_CLEARTEXT), "refuse-cleartext");
	ck_assert_str_eq(pop3_action_name((enum pop3_action)99), "invalid");
}
END_TEST

/* ---- splitting arguments ---------------------------------------------------- */

struct split_case {
	const char *args;
	size_t len;
	int n;
	const char *first;
	const char *second;
};

static const struct split_case split_cases[] = {
	{ BYTES(""), 0, NULL, NULL },
	{ BYTES("PLAIN"), 1, "PLAIN", NULL },
	{ BYTES("PLAIN AGFsaWNlAHNlY3JldA=="), 2, "PLAIN", "AGFsaWNlAHNlY3JldA==" },
	{ BYTES("LOGIN ="), 2, "LOGIN", "=" },
	{ BYTES("a b c"), -1, NULL, NULL },
	{ BYTES(" PLAIN"), -1, NULL, NULL },
	{ BYTES("PLAIN "), -1, NULL, NULL },
	{ BYTES("PLAIN  x"), -1, NULL, NULL },
	{ BYTES(" "), -1, NULL, NULL },
	{ BYTES("  "), -1, NULL, NULL },
};

START_TEST(test_split)
{
	const struct split_case *c = &split_cases[_i];
	char *args = copy(c->args, c->len);
	struct pop3_arg argv[POP3_MAX_ARGS + 1];
	int n;

	memset(argv, 0, sizeof(argv));
	n = pop3_split_args(args, c->len, argv, POP3_MAX_ARGS);
	ck_assert_msg(n == c->n, "case %d: got %d", _i, n);
	if (n >= 1) {
		ck_assert_uint_eq(argv[0].len, strlen(c->first));
		ck_assert(memcmp(argv[0].value, c->first, argv[0].len) == 0);
		ck_assert(inside(args, c->len, argv[0].value, argv[0].len));
	}
	if (n >= 2) {
		ck_assert_uint_eq(argv[1].len, strlen(c->second));
		ck_assert(memcmp(argv[1].value, c->second, argv[1].len) == 0);
		ck_assert(inside(args, c->len, argv[1].value, argv[1].len));
	}
	/* Never more words written than allowed. */
	ck_assert_ptr_null(argv[POP3_MAX_ARGS].value);
	free(args);
}
END_TEST

START_TEST(test_split_max)
{
	struct pop3_arg argv[1] = { { NULL, 0 } };

	ck_assert_int_eq(pop3_split_args("a", 1, argv, 0), -1);
	ck_assert_int_eq(pop3_split_args("", 0, argv, 0), 0);
	ck_assert_int_eq(pop3_split_args("a", 1, argv, 1), 1);
	ck_assert_int_eq(pop3_split_args("a b", 3, argv, 1), -1);
}
END_TEST

/* ---- the decision table ----------------------------------------------------- */

#define R POP3_ACTION_RUN
#define C POP3_ACTION_REFUSE_CLEARTEXT
#define N POP3_ACTION_NOT_IN_STATE
#define U POP3_ACTION_UNKNOWN

/*
 * Written out by hand from the issue and RFC 1939, not derived from the
 * code. Columns: (tls, credentials allowed) = plain/refused, plain/allowed
 * (a cleartext client set), TLS (the normal case), and TLS without
 * permission (cannot happen today; the credential rule must still hold).
 */
struct decide_row {
	enum pop3_command_id id;
	enum pop3_action authorization[4];
	enum pop3_action user[4];
};

static const struct decide_row decide_rows[] = {
	{ POP3_CMD_UNKNOWN, { U, U, U, U }, { U, U, U, U } },
	{ POP3_CMD_CAPA, { R, R, R, R }, { R, R, R, R } },
	{ POP3_CMD_STLS, { R, R, N, N }, { R, R, N, N } },
	{ POP3_CMD_USER, { C, R, R, C }, { C, R, R, C } },
	{ POP3_CMD_PASS, { C, N, N, C }, { C, R, R, C } },
	{ POP3_CMD_APOP, { C, R, R, C }, { C, R, R, C } },
	{ POP3_CMD_AUTH, { C, R, R, C }, { C, R, R, C } },
	{ POP3_CMD_QUIT, { R, R, R, R }, { R, R, R, R } },
	{ POP3_CMD_NOOP, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_STAT, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_LIST, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_RETR, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_DELE, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_RSET, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_TOP, { N, N, N, N }, { N, N, N, N } },
	{ POP3_CMD_UIDL, { N, N, N, N }, { N, N, N, N } },
};
_Static_assert(sizeof(decide_rows) / sizeof(decide_rows[0]) == POP3_CMD_COUNT,
	       "the decision test covers every command");

static const struct {
	bool tls;
	bool allowed;
} columns[4] = { { false, false }, { false, true }, { true, true }, { true, false } };

START_TEST(test_decide_row)
{
	const struct decide_row *row = &decide_rows[_i];

	ck_assert_int_eq(row->id, _i);
	for (int c = 0; c < 4; c++) {
		enum pop3_action a = pop3_decide(POP3_STATE_AUTHORIZATION, columns[c].tls,
						 columns[c].allowed, row->id);
		enum pop3_action u = pop3_decide(POP3_STATE_USER, columns[c].tls,
						 columns[c].allowed, row->id);

		ck_assert_msg(a == row->authorization[c], "%s authorization col %d: %s",
			      pop3_command_name(row->id), c, pop3_action_name(a));
		ck_assert_msg(u == row->user[c], "%s user col %d: %s", pop3_command_name(row->id),
			      c, pop3_action_name(u));
	}
}
END_TEST

/* After login the front end reads no commands: nothing runs, nothing is refused. */
START_TEST(test_decide_after_login)
{
	static const enum pop3_state states[] = { POP3_STATE_TRANSACTION, POP3_STATE_QUIT,
						   POP3_STATE_COUNT };

	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
		for (int id = 0; id < POP3_CMD_COUNT; id++) {
			for (int c = 0; c < 4; c++) {
				enum pop3_action a = pop3_decide(states[s], columns[c].tls,
								 columns[c].allowed,
								 (enum pop3_command_id)id);

				ck_assert_int_eq(a, id == POP3_CMD_UNKNOWN ? U : N);
			}
		}
	}
}
END_TEST

/* Out-of-range ids are unknown, never run. */
START_TEST(test_decide_bad_id)
{
	for (int s = 0; s <= POP3_STATE_COUNT; s++) {
		ck_assert_int_eq(pop3_decide((enum pop3_state)s, true, true, POP3_CMD_COUNT), U);
		ck_assert_int_eq(pop3_decide((enum pop3_state)s, false, false,
					     (enum pop3_command_id)-1), U);
	}
}
END_TEST

/* Whatever the state, no credential command ever runs without permission. */
START_TEST(test_decide_invariant)
{
	for (int s = 0; s <= POP3_STATE_COUNT; s++) {
		for (int id = 0; id < POP3_CMD_COUNT; id++) {
			bool creds = pop3_takes_credentials((enum pop3_command_id)id);

			for (int tls = 0; tls < 2; tls++) {
				enum pop3_action a = pop3_decide((enum pop3_state)s, tls != 0, false,
								 (enum pop3_command_id)id);

				if (creds)
					ck_assert_int_ne(a, POP3_ACTION_RUN);
			}
		}
	}
	ck_assert(pop3_takes_credentials(POP3_CMD_USER));
	ck_assert(pop3_takes_credentials(POP3_CMD_PASS));
	ck_assert(pop3_takes_credentials(POP3_CMD_APOP));
	ck_assert(pop3_takes_credentials(POP3_CMD_AUTH));
	ck_assert(!pop3_takes_credentials(POP3_CMD_STLS));
	ck_assert(!pop3_takes_credentials(POP3_CMD_CAPA));
	ck_assert(!pop3_takes_credentials(POP3_CMD_COUNT));
}
END_TEST

#undef R
#undef C
#undef N
#undef U

/* ---- the refuse-before-TLS rule, from whole lines --------------------------- */

struct cleartext_case {
	const char *line;
	size_t len;
};

/*
 * Lines a client may send with credentials before STLS. The front end parses
 * the name, then decides; every one of these must come out REFUSE_CLEARTEXT
 * in both pre-login states, even the malformed ones, so no "+ " continuation
 * is ever sent and no argument is ever used.
 */
static const struct cleartext_case cleartext_cases[] = {
	{ BYTES("USER alice") },
	{ BYTES("user alice") },
	{ BYTES("USER") },
	{ BYTES("USER ") },
	{ BYTES("PASS secret") },
	{ BYTES("pass secret with spaces") },
	{ BYTES("PASS") },
	{ BYTES("APOP alice c4c9334bac560ecc979e58001b3e22fb") },
	{ BYTES("APOP") },
	{ BYTES("AUTH") },
	{ BYTES("AUTH PLAIN") },
	{ BYTES("AUTH PLAIN AGFsaWNlAHNlY3JldA==") },
	{ BYTES("AUTH PLAIN =") },
	{ BYTES("AUTH LOGIN") },
	{ BYTES("AUTH LOGIN YWxpY2U=") },
	{ BYTES("auth login") },
	{ BYTES("AUTH CRAM-MD5") },
	{ BYTES("AUTH XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB4AQE=") },
	{ BYTES("AUTH PLAIN  AGFsaWNlAHNlY3JldA== extra") },
	/* Malformed after the name: still refused by name, not reported as syntax. */
	{ BYTES("PASS sec\0ret") },
	{ BYTES("PASS sec\x01ret") },
	{ BYTES("USER al\rice") },
	{ BYTES("AUTH PLAIN AGFs\0aWNl") },
};

START_TEST(test_refuse_before_tls)
{
	const struct cleartext_case *c = &cleartext_cases[_i];
	char *line = copy(c->line, c->len);
	struct pop3_command cmd;
	const char *error = NULL;
	enum pop3_parse_result r = pop3_command_parse(line, c->len, &cmd, &error);

	ck_assert_int_ne(r, POP3_PARSE_BAD_NAME);
	ck_assert(pop3_takes_credentials(cmd.id));
	ck_assert_int_eq(pop3_decide(POP3_STATE_AUTHORIZATION, false, false, cmd.id),
			 POP3_ACTION_REFUSE_CLEARTEXT);
	ck_assert_int_eq(pop3_decide(POP3_STATE_USER, false, false, cmd.id),
			 POP3_ACTION_REFUSE_CLEARTEXT);
	free(line);
}
END_TEST

/* The same credential lines, padded past 255 octets: still refused by name. */
START_TEST(test_refuse_before_tls_overlong)
{
	const struct cleartext_case *c = &cleartext_cases[_i];
	size_t len = c->len + 300;
	char *line = malloc(len);
	struct pop3_command cmd;
	const char *error = NULL;

	ck_assert_ptr_nonnull(line);
	memcpy(line, c->line, c->len);
	memset(line + c->len, 'A', len - c->len);
	if (c->len == 4)
		line[4] = ' ';
	ck_assert_int_eq(pop3_command_parse(line, len, &cmd, &error), POP3_PARSE_BAD_LINE);
	ck_assert_int_eq(pop3_decide(POP3_STATE_AUTHORIZATION, false, false, cmd.id),
			 POP3_ACTION_REFUSE_CLEARTEXT);
	free(line);
}
END_TEST

/* After TLS the same names are let through to their handlers (PASS after USER). */
START_TEST(test_allowed_after_tls)
{
	const struct cleartext_case *c = &cleartext_cases[_i];
	struct pop3_command cmd;
	const char *error = NULL;
	char *line = copy(c->line, c->len);

	ck_assert_int_ne(pop3_command_parse(line, c->len, &cmd, &error), POP3_PARSE_BAD_NAME);
	ck_assert_int_eq(pop3_decide(POP3_STATE_USER, true, true, cmd.id), POP3_ACTION_RUN);
	free(line);
}
END_TEST

static Suite *pop3_suite(void)
{
	Suite *s = suite_create("pop3");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_good, 0, TABLE_LEN(good_cases));
	tcase_add_loop_test(tc, test_bad, 0, TABLE_LEN(bad_cases));
	tcase_add_test(tc, test_nul_everywhere);
	tcase_add_loop_test(tc, test_every_byte_in_argument, 0, 256);
	tcase_add_loop_test(tc, test_every_byte_in_name, 0, 256);
	tcase_add_test(tc, test_overlong);
	tcase_add_test(tc, test_long_name);
	tcase_add_loop_test(tc, test_names_round_trip, 0, POP3_CMD_COUNT - 1);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("split");
	tcase_add_loop_test(tc, test_split, 0, TABLE_LEN(split_cases));
	tcase_add_test(tc, test_split_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("decide");
	tcase_add_loop_test(tc, test_decide_row, 0, TABLE_LEN(decide_rows));
	tcase_add_test(tc, test_decide_after_login);
	tcase_add_test(tc, test_decide_bad_id);
	tcase_add_test(tc, test_decide_invariant);
	suite_add_tcase(s, tc);

	tc = tcase_create("cleartext");
	tcase_add_loop_test(tc, test_refuse_before_tls, 0, TABLE_LEN(cleartext_cases));
	tcase_add_loop_test(tc, test_refuse_before_tls_overlong, 0, TABLE_LEN(cleartext_cases));
	tcase_add_loop_test(tc, test_allowed_after_tls, 0, TABLE_LEN(cleartext_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(pop3_suite());
}
