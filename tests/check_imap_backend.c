/*
 * check_imap_backend.c - the login to an IMAP backend: the step table
 * (imap_backend_step.h) over every state, reply class and option, the
 * classification of lines, and the driver end to end against a scripted
 * fake backend (fake_backend.h): every byte sent, the result, the answer
 * handed to the client and every log line, for greetings, STARTTLS, ID,
 * LOGIN with quoted strings and literals, the master-user login, untagged
 * and malformed lines, over-long lines and EOF in every state.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "fake_backend.h"
#include "imap_backend_step.h"

/* Log lines as the driver writes them for the default backend address. */
#define MOVE(from, to) "debug: backend_imap state=" from "->" to " backend=10.0.0.5:143\n"
#define WARN(state, text) "warning: backend_imap state=" state " backend=10.0.0.5:143 " text "\n"

#define GREETING "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"
#define GREETING_LITERAL_PLUS "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready\r\n"
#define LOGIN "M2 LOGIN \"alice\" \"secret\"\r\n"
#define ID "M0 ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"40000\" " \
	   "\"x-connected-ip\" \"127.0.0.1\" \"x-connected-port\" \"143\")\r\n"
/* The same with the name the client asked for in TLS; 253 characters fit too. */
#define ID_SNI "M0 ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"40000\" " \
	   "\"x-connected-ip\" \"127.0.0.1\" \"x-connected-port\" \"143\" " \
	   "\"x-connected-name\" \"imap.customer.example\")\r\n"
#define LABEL63 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"
#define LABEL61 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi"
#define NAME253 LABEL63 "." LABEL63 "." LABEL63 "." LABEL61
#define MASTER_BLOB "YWxpY2UAbWFzdGVyAG1wdw==\r\n"	/* alice NUL master NUL mpw */

/* ---- the step table ---------------------------------------------------------- */

#define S_GREETING IMAP_BACKEND_GREETING
#define S_STARTTLS IMAP_BACKEND_STARTTLS
#define S_ID IMAP_BACKEND_ID
#define S_LOGIN IMAP_BACKEND_LOGIN
#define S_DONE IMAP_BACKEND_DONE
#define S_COUNT IMAP_BACKEND_STATE_COUNT

/*
 * GO: to the state after this one, which the options choose (after_rows).
 * RD: read on. RR: read on, the line relayed to the client. MORE: send the
 * rest. U, F: end unavailable or failed; UL, FL: the same, with the line
 * logged as unexpected.
 */
#define GO { IMAP_BACKEND_GO, S_COUNT, OK, false, false }
#define RD { IMAP_BACKEND_READ_ON, S_GREETING, OK, false, false }
#define RR { IMAP_BACKEND_READ_ON, S_GREETING, OK, false, true }
#define MORE { IMAP_BACKEND_SEND_MORE, S_GREETING, OK, false, false }
#define U { IMAP_BACKEND_END, S_GREETING, UNAVAILABLE, false, false }
#define UL { IMAP_BACKEND_END, S_GREETING, UNAVAILABLE, true, false }
#define F { IMAP_BACKEND_END, S_GREETING, FAILED, false, false }
#define FL { IMAP_BACKEND_END, S_GREETING, FAILED, true, false }

/* Columns: the reply classes in enum order, then one out of range. */
struct next_row {
	enum imap_backend_state state;
	bool continuation;
	struct imap_backend_step steps[IMAP_BACKEND_REPLY_COUNT + 1];
};

static const struct next_row next_rows[] = {
	/*                                   OK  NO  UNAV TAGD UNTG CONT INVL COUNT */
	{ S_GREETING, false,               { GO, UL, UL,  UL,  UL,  UL,  UL,  UL } },
	{ S_GREETING, true,                { GO, UL, UL,  UL,  UL,  UL,  UL,  UL } },
	{ S_STARTTLS, false,               { GO, UL, UL,  UL,  RD,  UL,  UL,  UL } },
	{ S_STARTTLS, true,                { GO, UL, UL,  UL,  RD,  UL,  UL,  UL } },
	{ S_ID, false,                     { GO, GO, GO,  GO,  RD,  UL,  UL,  UL } },
	{ S_ID, true,                      { GO, GO, GO,  GO,  RD,  UL,  UL,  UL } },
	{ S_LOGIN, false,                  { GO, F,  UL,  FL,  RR,  UL,  UL,  UL } },
	{ S_LOGIN, true,                   { U,  U,  U,   U,   RR,  MORE, UL, UL } },
	{ S_DONE, false,                   { UL, UL, UL,  UL,  UL,  UL,  UL,  UL } },
	{ S_DONE, true,                    { UL, UL, UL,  UL,  UL,  UL,  UL,  UL } },
	{ S_COUNT, false,                  { UL, UL, UL,  UL,  UL,  UL,  UL,  UL } },
	{ (enum imap_backend_state)42, true, { UL, UL, UL, UL,  UL,  UL,  UL,  UL } },
};

/* Where GO leads: columns (starttls, client_id) = (no, no), (no, yes), (yes, no), (yes, yes). */
static const struct {
	enum imap_backend_state state;
	enum imap_backend_state after[4];
} after_rows[] = {
	{ S_GREETING, { S_LOGIN, S_ID, S_STARTTLS, S_STARTTLS } },
	{ S_STARTTLS, { S_LOGIN, S_ID, S_LOGIN, S_ID } },
	{ S_ID, { S_LOGIN, S_LOGIN, S_LOGIN, S_LOGIN } },
	{ S_LOGIN, { S_DONE, S_DONE, S_DONE, S_DONE } },
};

static enum imap_backend_state after(enum imap_backend_state state, unsigned column)
{
	for (int i = 0; i < TABLE_LEN(after_rows); i++)
		if (after_rows[i].state == state)
			return after_rows[i].after[column];
	ck_abort_msg("no GO expected from state %d", state);
	return S_COUNT;
}

START_TEST(test_next)
{
	const struct next_row *row = &next_rows[_i];

	for (unsigned reply = 0; reply <= IMAP_BACKEND_REPLY_COUNT; reply++) {
		const struct imap_backend_step *want = &row->steps[reply];

		for (unsigned column = 0; column < 4; column++) {
			struct imap_backend_options options = {
				.starttls = column >= 2,
				.client_id = column % 2 == 1,
				.continuation = row->continuation,
			};
			struct imap_backend_step got =
				imap_backend_next(row->state, (enum imap_backend_reply)reply, &options);

			ck_assert_msg(got.move == want->move,
				      "state %s, reply %s, options %u: move %s, expected %s",
				      imap_backend_state_name(row->state),
				      imap_backend_reply_name((enum imap_backend_reply)reply), column,
				      imap_backend_move_name(got.move),
				      imap_backend_move_name(want->move));
			if (got.move == IMAP_BACKEND_GO)
				ck_assert_msg(got.next == after(row->state, column),
					      "state %s, options %u: next %s",
					      imap_backend_state_name(row->state), column,
					      imap_backend_state_name(got.next));
			if (got.move == IMAP_BACKEND_END)
				ck_assert_msg(got.result == want->result,
					      "state %s, reply %s: result %d",
					      imap_backend_state_name(row->state),
					      imap_backend_reply_name((enum imap_backend_reply)reply),
					      got.result);
			ck_assert_msg(got.unexpected == want->unexpected,
				      "state %s, reply %s: unexpected %d",
				      imap_backend_state_name(row->state),
				      imap_backend_reply_name((enum imap_backend_reply)reply),
				      got.unexpected);
			ck_assert_msg(got.relay == want->relay, "state %s, reply %s: relay %d",
				      imap_backend_state_name(row->state),
				      imap_backend_reply_name((enum imap_backend_reply)reply),
				      got.relay);
		}
	}
}
END_TEST

START_TEST(test_next_covers_every_state)
{
	/* Every state (and one past the end) has rows with and without a continuation. */
	for (unsigned state = 0; state <= IMAP_BACKEND_STATE_COUNT; state++) {
		unsigned rows = 0;

		for (int i = 0; i < TABLE_LEN(next_rows); i++)
			rows += next_rows[i].state == (enum imap_backend_state)state;
		ck_assert_msg(rows >= 1, "state %u has no row", state);
	}
}
END_TEST

#define C_OK IMAP_BACKEND_REPLY_OK
#define C_NO IMAP_BACKEND_REPLY_NO
#define C_UNAVAILABLE IMAP_BACKEND_REPLY_UNAVAILABLE
#define C_TAGGED IMAP_BACKEND_REPLY_TAGGED
#define C_UNTAGGED IMAP_BACKEND_REPLY_UNTAGGED
#define C_CONT IMAP_BACKEND_REPLY_CONTINUATION
#define C_INVALID IMAP_BACKEND_REPLY_INVALID

static const struct {
	enum imap_backend_state state;
	const char *line;
	enum imap_backend_reply reply;
	size_t text;
} classify_rows[] = {
	{ S_GREETING, "* OK", C_OK, 0 },
	{ S_GREETING, "* OK [CAPABILITY IMAP4rev1] hi", C_OK, 0 },
	{ S_GREETING, "* ok hi", C_OK, 0 },
	{ S_GREETING, "* OKAY", C_UNTAGGED, 0 },
	{ S_GREETING, "* BYE go away", C_UNTAGGED, 0 },
	{ S_GREETING, "* PREAUTH hi", C_UNTAGGED, 0 },
	{ S_GREETING, "* ", C_UNTAGGED, 0 },
	{ S_GREETING, "*", C_INVALID, 0 },
	{ S_GREETING, "", C_INVALID, 0 },
	{ S_GREETING, "+ hi", C_CONT, 0 },
	{ S_GREETING, "M2 OK", C_INVALID, 0 },
	{ S_STARTTLS, "M1 OK Begin TLS", C_OK, 3 },
	{ S_STARTTLS, "M1 ok", C_OK, 3 },
	{ S_STARTTLS, "M1 OKAY", C_TAGGED, 3 },
	{ S_STARTTLS, "M1 NO not now", C_NO, 3 },
	{ S_STARTTLS, "M1 NOPE", C_TAGGED, 3 },
	{ S_STARTTLS, "M1 BAD what", C_TAGGED, 3 },
	{ S_STARTTLS, "M1 ", C_TAGGED, 3 },
	{ S_STARTTLS, "M1", C_INVALID, 0 },
	{ S_STARTTLS, "M1OK", C_INVALID, 0 },
	{ S_STARTTLS, "m1 OK", C_INVALID, 0 },
	{ S_STARTTLS, "M2 OK", C_INVALID, 0 },
	{ S_STARTTLS, "* OK", C_UNTAGGED, 0 },
	{ S_STARTTLS, "+", C_CONT, 0 },
	{ S_STARTTLS, "M1 NO [UNAVAILABLE] later", C_UNAVAILABLE, 3 },
	{ S_STARTTLS, "M1 BAD [UNAVAILABLE]", C_UNAVAILABLE, 3 },
	{ S_STARTTLS, "M1 [UNAVAILABLE]", C_TAGGED, 3 },	/* too short to count */
	{ S_STARTTLS, "M1 OK [UNAVAILABLE] odd", C_OK, 3 },
	{ S_ID, "M0 OK ID completed", C_OK, 3 },
	{ S_ID, "M2 OK", C_INVALID, 0 },
	{ S_LOGIN, "M2 NO [AUTHENTICATIONFAILED] no", C_NO, 3 },
	{ S_LOGIN, "M2 OK [CAPABILITY IMAP4rev1] in", C_OK, 3 },
	{ S_LOGIN, "M0 OK", C_INVALID, 0 },
	{ S_DONE, "M2 OK", C_INVALID, 0 },
	{ S_DONE, "* OK", C_UNTAGGED, 0 },
	{ S_COUNT, "M2 OK", C_INVALID, 0 },
};

START_TEST(test_classify)
{
	size_t text = 99;
	enum imap_backend_reply got = imap_backend_classify(
		classify_rows[_i].state, classify_rows[_i].line, strlen(classify_rows[_i].line),
		&text);

	ck_assert_msg(got == classify_rows[_i].reply, "\"%s\" in %s: %s",
		      classify_rows[_i].line, imap_backend_state_name(classify_rows[_i].state),
		      imap_backend_reply_name(got));
	ck_assert_uint_eq(text, classify_rows[_i].text);
}
END_TEST

START_TEST(test_classify_nul)
{
	size_t text;

	/* Lengths are explicit: a NUL is a byte like any other, never an end. */
	ck_assert_int_eq(imap_backend_classify(S_GREETING, "* OK\0x", 6, &text), C_UNTAGGED);
	ck_assert_int_eq(imap_backend_classify(S_LOGIN, "M2 OK\0x", 7, &text), C_TAGGED);
	ck_assert_int_eq(imap_backend_classify(S_LOGIN, "M2\0OK", 5, &text), C_INVALID);
}
END_TEST

static const struct {
	const char *line;
	const char *cap;
	bool has;
} capability_rows[] = {
	{ "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] hi", "LITERAL+", true },
	{ "* OK [CAPABILITY IMAP4rev1 literal+] hi", "LITERAL+", true },
	{ "* OK [CAPABILITY LITERAL+]", "LITERAL+", true },
	{ "* OK [CAPABILITY IMAP4rev1 LITERAL-] hi", "LITERAL+", false },
	{ "* OK [CAPABILITY IMAP4rev1 LITERAL+X] hi", "LITERAL+", false },
	{ "* OK [CAPABILITY IMAP4rev1] LITERAL+", "LITERAL+", false },
	{ "* OK [CAPABILITY IMAP4rev1 LITERAL+", "LITERAL+", false },
	{ "* OK LITERAL+", "LITERAL+", false },
	{ "* OK [CAPABILITY ]", "LITERAL+", false },
	{ "", "LITERAL+", false },
};

START_TEST(test_has_capability)
{
	const char *line = capability_rows[_i].line;

	ck_assert_msg(imap_backend_has_capability(line, strlen(line), capability_rows[_i].cap) ==
			      capability_rows[_i].has,
		      "\"%s\"", line);
}
END_TEST

START_TEST(test_names_and_tags)
{
	ck_assert_str_eq(imap_backend_state_name(S_GREETING), "greeting");
	ck_assert_str_eq(imap_backend_state_name(S_STARTTLS), "starttls");
	ck_assert_str_eq(imap_backend_state_name(S_ID), "id");
	ck_assert_str_eq(imap_backend_state_name(S_LOGIN), "login");
	ck_assert_str_eq(imap_backend_state_name(S_DONE), "done");
	ck_assert_str_eq(imap_backend_state_name(S_COUNT), "invalid");
	/* Distinct names; the class INVALID and values out of range share "invalid". */
	for (unsigned r = 0; r < IMAP_BACKEND_REPLY_COUNT; r++)
		for (unsigned q = 0; q < r; q++)
			ck_assert_str_ne(imap_backend_reply_name((enum imap_backend_reply)r),
					 imap_backend_reply_name((enum imap_backend_reply)q));
	ck_assert_str_eq(imap_backend_reply_name(C_INVALID), "invalid");
	ck_assert_str_eq(imap_backend_reply_name(IMAP_BACKEND_REPLY_COUNT), "invalid");
	for (unsigned m = 0; m < IMAP_BACKEND_MOVE_COUNT; m++)
		ck_assert_str_ne(imap_backend_move_name((enum imap_backend_move)m), "invalid");
	ck_assert_str_eq(imap_backend_move_name(IMAP_BACKEND_MOVE_COUNT), "invalid");
	ck_assert_ptr_null(imap_backend_tag(S_GREETING));
	ck_assert_str_eq(imap_backend_tag(S_STARTTLS), "M1");
	ck_assert_str_eq(imap_backend_tag(S_ID), "M0");
	ck_assert_str_eq(imap_backend_tag(S_LOGIN), "M2");
	ck_assert_ptr_null(imap_backend_tag(S_DONE));
	ck_assert_ptr_null(imap_backend_tag(S_COUNT));
}
END_TEST

/* ---- the driver ---------------------------------------------------------------- */

enum {
	F_STARTTLS = 1 << 0,	/* tls = starttls */
	F_ID = 1 << 1,		/* client_address = imap-id */
	F_MASTER = 1 << 2,	/* login = master */
	F_NO_TIME = 1 << 3,	/* backend_timeout = 0: every wait times out at once */
	F_8BIT_PASSWORD = 1 << 4,	/* password "s\xe9cret": only a literal carries it */
	F_8BIT_USER = 1 << 5,	/* user "\xe4lice" */
	F_SHORT_REPLY = 1 << 6,	/* 16 bytes for the backend's answer */
	F_SNI = 1 << 7,		/* the client asked for imap.customer.example */
	F_SNI_LONG = 1 << 8	/* the client asked for a name of 253 characters */
};

static const struct fake_case driver_cases[] = {
	/* ---- greeting ---- */
	{ "login ok, answer with capabilities", 0,
	  { SEND(GREETING), EXPECT(LOGIN),
	    SEND("M2 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"), END },
	  OK, "OK [CAPABILITY IMAP4rev1 IDLE] Logged in",
	  MOVE("greeting", "login") MOVE("login", "done") },
	{ "login ok, untagged lines first: the client gets them, LF-only ends made CRLF", 0,
	  { SEND("* OK ready\r\n"), EXPECT(LOGIN),
	    SEND("* CAPABILITY IMAP4rev1\r\n* OK [ALERT] note\nM2 OK Logged in\r\n"), END },
	  OK, "* CAPABILITY IMAP4rev1\r\n* OK [ALERT] note\r\nOK Logged in",
	  MOVE("greeting", "login") MOVE("login", "done") },
	{ "untagged lines of the greeting, STARTTLS and ID are not the client's",
	  F_STARTTLS | F_ID,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("* OK clear\r\nM1 OK go\r\n"), TLS,
	    EXPECT(ID), SEND("* ID NIL\r\nM0 OK\r\n"), EXPECT(LOGIN),
	    SEND("* OK [ALERT] mine\r\nM2 OK in\r\n"), END },
	  OK, "* OK [ALERT] mine\r\nOK in",
	  MOVE("greeting", "starttls") MOVE("starttls", "id") MOVE("id", "login")
	  MOVE("login", "done") },
	{ "untagged lines of a refused login go nowhere", 0,
	  { SEND(GREETING), EXPECT(LOGIN),
	    SEND("* OK [ALERT] locked\r\nM2 NO [AUTHENTICATIONFAILED] no\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "login") },
	{ "untagged lines beyond half the reply buffer are dropped, logged", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("* OK a\r\n* OK bc\r\nM2 OK in\r\n"), END },
	  OK, "* OK a\r\nOK in",
	  MOVE("greeting", "login") WARN("login", "not-relayed=\"* OK bc\"")
	  MOVE("login", "done") },
	{ "an untagged line with a NUL or a CR is dropped, logged", 0,
	  { SEND(GREETING), EXPECT(LOGIN),
	    { FAKE_SEND, "* OK a\0b\r\n* OK c\rd\r\nM2 OK in\r\n", 30 }, END },
	  OK, "OK in",
	  MOVE("greeting", "login") WARN("login", "not-relayed=\"* OK a?b\"")
	  WARN("login", "not-relayed=\"* OK c?d\"") MOVE("login", "done") },
	{ "greeting in lower case, answer in lower case", 0,
	  { SEND("* ok hi\r\n"), EXPECT(LOGIN), SEND("M2 ok fine\r\n"), END },
	  OK, "ok fine", MOVE("greeting", "login") MOVE("login", "done") },
	{ "greeting OK alone, LF only", 0,
	  { SEND("* OK\n"), EXPECT(LOGIN), SEND("M2 OK\n"), END },
	  OK, "OK", MOVE("greeting", "login") MOVE("login", "done") },
	{ "greeting refused with BYE", 0,
	  { SEND("* BYE go away\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"* BYE go away\"") },
	{ "greeting PREAUTH", 0,
	  { SEND("* PREAUTH welcome\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"* PREAUTH welcome\"") },
	{ "greeting OKAY is no OK", 0,
	  { SEND("* OKAY\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"* OKAY\"") },
	{ "greeting continuation", 0,
	  { SEND("+ hello\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"+ hello\"") },
	{ "greeting empty line", 0,
	  { SEND("\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"\"") },
	{ "greeting tagged", 0,
	  { SEND("M2 OK hello\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"M2 OK hello\"") },
	{ "greeting with NUL and control bytes", 0,
	  { { FAKE_SEND, "* OK\0x\x1b\r\n", 9 }, END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"* OK?x?\"") },
	{ "EOF before the greeting", 0,
	  { SEND_EOF, END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=closed") },
	{ "EOF inside the greeting", 0,
	  { SEND("* OK no end"), SEND_EOF, END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=closed") },
	{ "no greeting before the deadline", F_NO_TIME,
	  { END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=timeout") },
	{ "over-long greeting", 0,
	  { SEND_LONG("* OK "), END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=line-too-long") },

	/* ---- STARTTLS ---- */
	{ "STARTTLS, then login", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"),
	    SEND("* OK still here\r\nM1 OK Begin TLS negotiation now.\r\n"), TLS, EXPECT(LOGIN),
	    SEND("M2 OK [CAPABILITY IMAP4rev1] Logged in\r\n"), END },
	  OK, "OK [CAPABILITY IMAP4rev1] Logged in",
	  MOVE("greeting", "starttls") MOVE("starttls", "login") MOVE("login", "done") },
	{ "STARTTLS: what came in the clear after OK never counts", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"),
	    SEND("M1 OK go\r\nM2 OK injected\r\n"), TLS, EXPECT(LOGIN),
	    SEND("M2 OK real\r\n"), END },
	  OK, "OK real",
	  MOVE("greeting", "starttls") MOVE("starttls", "login") MOVE("login", "done") },
	{ "STARTTLS: LITERAL+ from the cleartext greeting is forgotten", F_STARTTLS | F_8BIT_PASSWORD,
	  { SEND(GREETING_LITERAL_PLUS), EXPECT("M1 STARTTLS\r\n"), SEND("M1 OK go\r\n"), TLS,
	    EXPECT("M2 LOGIN \"alice\" {6}\r\n"), SEND("+ go ahead\r\n"), EXPECT("s\xe9" "cret\r\n"),
	    SEND("M2 OK in\r\n"), END },
	  OK, "OK in",
	  MOVE("greeting", "starttls") MOVE("starttls", "login") MOVE("login", "done") },
	{ "STARTTLS refused", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 NO not now\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"NO not now\"") },
	{ "STARTTLS answered BAD", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 BAD what\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"BAD what\"") },
	{ "STARTTLS answered with an empty tagged line", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 \r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"\"") },
	{ "STARTTLS answered with a continuation", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("+ go\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"+ go\"") },
	{ "STARTTLS answered with another tag", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M9 OK\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"M9 OK\"") },
	{ "STARTTLS answered with the tag alone", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"M1\"") },
	{ "STARTTLS answered with a lone star", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("*\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "unexpected=\"*\"") },
	{ "EOF after STARTTLS", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("* OK wait\r\n"), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "starttls") WARN("starttls", "error=closed") },
	{ "STARTTLS: the handshake fails", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 OK go\r\n"), TLS_FAIL, END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "starttls") WARN("starttls", "error=\"handshake failed\"") },
	{ "STARTTLS: EOF on the new channel", F_STARTTLS,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 OK go\r\n"), TLS, EXPECT(LOGIN),
	    SEND_EOF, END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "starttls") MOVE("starttls", "login") WARN("login", "error=closed") },

	/* ---- ID ---- */
	{ "ID, then login", F_ID,
	  { SEND(GREETING), EXPECT(ID), SEND("* ID NIL\r\nM0 OK ID completed.\r\n"), EXPECT(LOGIN),
	    SEND("M2 OK in\r\n"), END },
	  OK, "OK in", MOVE("greeting", "id") MOVE("id", "login") MOVE("login", "done") },
	{ "ID refused: login all the same", F_ID,
	  { SEND(GREETING), EXPECT(ID), SEND("M0 NO no ID here\r\n"), EXPECT(LOGIN),
	    SEND("M2 OK in\r\n"), END },
	  OK, "OK in", MOVE("greeting", "id") MOVE("id", "login") MOVE("login", "done") },
	{ "ID answered BAD [UNAVAILABLE]: login all the same", F_ID,
	  { SEND(GREETING), EXPECT(ID), SEND("M0 BAD [UNAVAILABLE] hmm\r\n"), EXPECT(LOGIN),
	    SEND("M2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "id") MOVE("id", "login") },
	{ "STARTTLS and ID", F_STARTTLS | F_ID,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 OK go\r\n"), TLS, EXPECT(ID),
	    SEND("M0 OK\r\n"), EXPECT(LOGIN), SEND("M2 OK in\r\n"), END },
	  OK, "OK in",
	  MOVE("greeting", "starttls") MOVE("starttls", "id") MOVE("id", "login")
	  MOVE("login", "done") },
	{ "ID with the SNI name", F_ID | F_SNI,
	  { SEND(GREETING), EXPECT(ID_SNI), SEND("M0 OK\r\n"), EXPECT(LOGIN), SEND("M2 OK in\r\n"),
	    END },
	  OK, "OK in", MOVE("greeting", "id") MOVE("id", "login") MOVE("login", "done") },
	{ "ID with the longest SNI name", F_ID | F_SNI_LONG,
	  { SEND(GREETING),
	    EXPECT("M0 ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"40000\" "
		   "\"x-connected-ip\" \"127.0.0.1\" \"x-connected-port\" \"143\" "
		   "\"x-connected-name\" \"" NAME253 "\")\r\n"),
	    SEND("M0 OK\r\n"), EXPECT(LOGIN), SEND("M2 OK in\r\n"), END },
	  OK, "OK in", MOVE("greeting", "id") MOVE("id", "login") MOVE("login", "done") },
	{ "no ID without imap-id, SNI or not", F_SNI,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 OK in\r\n"), END },
	  OK, "OK in", MOVE("greeting", "login") MOVE("login", "done") },
	{ "ID answered with junk", F_ID,
	  { SEND(GREETING), EXPECT(ID), SEND("garbage\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "id") WARN("id", "unexpected=\"garbage\"") },
	{ "ID answered with a continuation", F_ID,
	  { SEND(GREETING), EXPECT(ID), SEND("+\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "id") WARN("id", "unexpected=\"+\"") },
	{ "EOF after ID", F_ID,
	  { SEND(GREETING), EXPECT(ID), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "id") WARN("id", "error=closed") },

	/* ---- LOGIN ---- */
	{ "login refused", 0,
	  { SEND(GREETING), EXPECT(LOGIN),
	    SEND("M2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "login") },
	{ "login answered BAD", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 BAD what\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "login") WARN("login", "unexpected=\"BAD what\"") },
	{ "login: backend unavailable", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 NO [UNAVAILABLE] try later\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "login") WARN("login", "unexpected=\"NO [UNAVAILABLE] try later\"") },
	{ "login: [UNAVAILABLE] in a text too short to count", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 [UNAVAILABLE]\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "login") WARN("login", "unexpected=\"[UNAVAILABLE]\"") },
	{ "login OK [UNAVAILABLE] is an OK", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 OK [UNAVAILABLE] odd\r\n"), END },
	  OK, "OK [UNAVAILABLE] odd", MOVE("greeting", "login") MOVE("login", "done") },
	{ "login answer longer than the reply buffer", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 OK this is a long answer\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "login") WARN("login", "unexpected=\"OK this is a long answer\"") },
	{ "login answer as long as the reply buffer: no room for its end", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 OK fifteen chars\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "login") WARN("login", "unexpected=\"OK fifteen chars\"") },
	{ "login answer one byte shorter than the reply buffer", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("M2 OK fifteen char\r\n"), END },
	  OK, "OK fifteen char", MOVE("greeting", "login") MOVE("login", "done") },
	{ "login answered with a continuation", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("+ more\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "unexpected=\"+ more\"") },
	{ "login answered with a tag in lower case", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("m2 OK\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "unexpected=\"m2 OK\"") },
	{ "EOF after LOGIN", 0,
	  { SEND(GREETING), EXPECT(LOGIN), SEND("* OK wait\r\n"), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "error=closed") },
	{ "over-long line after LOGIN", 0,
	  { SEND(GREETING), EXPECT(LOGIN),
	    SEND_LONG("* "), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "error=line-too-long") },
	{ "login with a synchronising literal (an untagged line before + is relayed)",
	  F_8BIT_PASSWORD,
	  { SEND(GREETING), EXPECT("M2 LOGIN \"alice\" {6}\r\n"),
	    SEND("* OK wait\r\n+ go ahead\r\n"), EXPECT("s\xe9" "cret\r\n"), SEND("M2 OK in\r\n"),
	    END },
	  OK, "* OK wait\r\nOK in", MOVE("greeting", "login") MOVE("login", "done") },
	{ "login with two synchronising literals", F_8BIT_USER | F_8BIT_PASSWORD,
	  { SEND(GREETING), EXPECT("M2 LOGIN {5}\r\n"), SEND("+\r\n"),
	    EXPECT("\xe4lice {6}\r\n"), SEND("+ more\r\n"), EXPECT("s\xe9" "cret\r\n"),
	    SEND("M2 NO [AUTHENTICATIONFAILED] no\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "login") },
	{ "login with a LITERAL+ literal", F_8BIT_PASSWORD,
	  { SEND(GREETING_LITERAL_PLUS), EXPECT("M2 LOGIN \"alice\" {6+}\r\n"),
	    EXPECT("s\xe9" "cret\r\n"), SEND("M2 OK in\r\n"), END },
	  OK, "OK in", MOVE("greeting", "login") MOVE("login", "done") },
	{ "literal refused instead of a continuation", F_8BIT_PASSWORD,
	  { SEND(GREETING), EXPECT("M2 LOGIN \"alice\" {6}\r\n"), SEND("M2 NO no literals\r\n"),
	    END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") },
	{ "junk instead of a continuation", F_8BIT_PASSWORD,
	  { SEND(GREETING), EXPECT("M2 LOGIN \"alice\" {6}\r\n"), SEND("junk\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "unexpected=\"junk\"") },
	{ "EOF instead of a continuation", F_8BIT_PASSWORD,
	  { SEND(GREETING), EXPECT("M2 LOGIN \"alice\" {6}\r\n"), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "error=closed") },

	/* ---- master-user login ---- */
	{ "master login", F_MASTER,
	  { SEND(GREETING), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND("+ \r\n"),
	    EXPECT(MASTER_BLOB), SEND("M2 OK [CAPABILITY IMAP4rev1] Logged in\r\n"), END },
	  OK, "OK [CAPABILITY IMAP4rev1] Logged in",
	  MOVE("greeting", "login") MOVE("login", "done") },
	{ "master login after STARTTLS and ID", F_MASTER | F_STARTTLS | F_ID,
	  { SEND(GREETING), EXPECT("M1 STARTTLS\r\n"), SEND("M1 OK go\r\n"), TLS, EXPECT(ID),
	    SEND("M0 OK\r\n"), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND("* OK hmm\r\n+\r\n"),
	    EXPECT(MASTER_BLOB), SEND("M2 OK in\r\n"), END },
	  OK, "* OK hmm\r\nOK in",
	  MOVE("greeting", "starttls") MOVE("starttls", "id") MOVE("id", "login")
	  MOVE("login", "done") },
	{ "master login: mechanism refused", F_MASTER,
	  { SEND(GREETING), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND("M2 NO unsupported\r\n"),
	    END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") },
	{ "master login refused", F_MASTER,
	  { SEND(GREETING), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND("+ \r\n"),
	    EXPECT(MASTER_BLOB), SEND("M2 NO [AUTHENTICATIONFAILED] no\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "login") },
	{ "master login: a second continuation", F_MASTER,
	  { SEND(GREETING), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND("+ \r\n"),
	    EXPECT(MASTER_BLOB), SEND("+ more?\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "unexpected=\"+ more?\"") },
	{ "master login: EOF before the continuation", F_MASTER,
	  { SEND(GREETING), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "error=closed") },
	{ "master login: EOF after the credentials", F_MASTER,
	  { SEND(GREETING), EXPECT("M2 AUTHENTICATE PLAIN\r\n"), SEND("+ \r\n"),
	    EXPECT(MASTER_BLOB), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "login") WARN("login", "error=closed") },
};

START_TEST(test_driver)
{
	const struct fake_case *c = &driver_cases[_i];
	struct fake_login t;

	fake_login_init(&t);
	if (c->flags & F_STARTTLS)
		t.backend.tls = MG_BACKEND_TLS_STARTTLS;
	if (c->flags & F_ID)
		t.backend.client_address = MG_CLIENT_ADDRESS_IMAP_ID;
	if (c->flags & F_MASTER)
		fake_login_set_master(&t);
	if (c->flags & F_NO_TIME)
		t.cfg.backend_timeout = 0;
	if (c->flags & (F_8BIT_USER | F_8BIT_PASSWORD))
		fake_login_set_credentials(&t, c->flags & F_8BIT_USER ? "\xe4lice" : "alice", 5,
					   c->flags & F_8BIT_PASSWORD ? "s\xe9" "cret" : "secret", 6);
	if (c->flags & F_SHORT_REPLY)
		t.replysize = 16;
	if (c->flags & F_SNI)
		snprintf(t.session.sni, sizeof(t.session.sni), "imap.customer.example");
	_Static_assert(sizeof(NAME253) == 254, "a name of 253 characters");
	if (c->flags & F_SNI_LONG)
		snprintf(t.session.sni, sizeof(t.session.sni), "%s", NAME253);
	fake_login_run(&t, c->script, backend_imap_login);
	fake_login_check(&t, c);
}
END_TEST

static Suite *imap_backend_suite(void)
{
	Suite *s = suite_create("imap_backend");
	TCase *tc = tcase_create("step");

	tcase_add_loop_test(tc, test_next, 0, TABLE_LEN(next_rows));
	tcase_add_test(tc, test_next_covers_every_state);
	tcase_add_loop_test(tc, test_classify, 0, TABLE_LEN(classify_rows));
	tcase_add_test(tc, test_classify_nul);
	tcase_add_loop_test(tc, test_has_capability, 0, TABLE_LEN(capability_rows));
	tcase_add_test(tc, test_names_and_tags);
	suite_add_tcase(s, tc);
	tc = tcase_create("driver");
	tcase_add_loop_test(tc, test_driver, 0, TABLE_LEN(driver_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(imap_backend_suite());
}
