/*
 * check_pop3_backend.c - the login to a POP3 backend: the step table
 * (pop3_backend_step.h) over every state, reply class and option, the
 * classification of status lines, and the driver end to end against a
 * scripted fake backend (fake_backend.h): every byte sent, the result, the
 * answer handed to the client and every log line, for greetings, STLS,
 * USER/PASS, the master-user login (AUTH PLAIN), RFC 2449/3206 response
 * codes, malformed lines, over-long lines and EOF in every state.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "fake_backend.h"
#include "pop3_backend_step.h"

/* Log lines as the driver writes them for the default backend address. */
#define MOVE(from, to) "debug: backend_pop3 state=" from "->" to " backend=10.0.0.5:143\n"
#define LOG(level, state, text) \
	level ": backend_pop3 state=" state " backend=10.0.0.5:143 " text "\n"
#define WARN(state, text) LOG("warning", state, text)
#define REFUSED(state, text) LOG("info", state, "refused=\"" text "\"")
#define NOT_LINE_SAFE \
	"error: backend_pop3 backend=10.0.0.5:143 error=\"credentials not line-safe\"\n"

#define GREETING "+OK Dovecot ready.\r\n"
#define USER "USER alice\r\n"
#define PASS "PASS secret\r\n"
#define MASTER_BLOB "YWxpY2UAbWFzdGVyAG1wdw==\r\n"	/* alice NUL master NUL mpw */

/* ---- the step table ---------------------------------------------------------- */

#define S_GREETING POP3_BACKEND_GREETING
#define S_STLS POP3_BACKEND_STLS
#define S_USER POP3_BACKEND_USER
#define S_PASS POP3_BACKEND_PASS
#define S_DONE POP3_BACKEND_DONE
#define S_COUNT POP3_BACKEND_STATE_COUNT

#define L_NONE POP3_BACKEND_LOG_NONE
#define L_UNEXPECTED POP3_BACKEND_LOG_UNEXPECTED
#define L_UNAVAILABLE POP3_BACKEND_LOG_UNAVAILABLE
#define L_REFUSED POP3_BACKEND_LOG_REFUSED

/*
 * GO: to the state after this one, which the options choose (after_rows).
 * MORE: send the credentials. ODD: end unavailable, the line logged as
 * unexpected. UR, UT: end unavailable, logged as refused or as
 * unavailable. FR: end failed, logged as refused.
 */
#define GO { POP3_BACKEND_GO, S_COUNT, OK, L_NONE }
#define MORE { POP3_BACKEND_SEND_MORE, S_GREETING, OK, L_NONE }
#define ODD { POP3_BACKEND_END, S_GREETING, UNAVAILABLE, L_UNEXPECTED }
#define UR { POP3_BACKEND_END, S_GREETING, UNAVAILABLE, L_REFUSED }
#define UT { POP3_BACKEND_END, S_GREETING, UNAVAILABLE, L_UNAVAILABLE }
#define FR { POP3_BACKEND_END, S_GREETING, FAILED, L_REFUSED }

/* Columns: the reply classes in enum order, then one out of range. */
struct next_row {
	enum pop3_backend_state state;
	bool continuation;
	struct pop3_backend_step steps[POP3_BACKEND_REPLY_COUNT + 1];
};

static const struct next_row next_rows[] = {
	/*                                     OK    ERR  TEMP CONT  INVL COUNT */
	{ S_GREETING, false,                 { GO,   UR,  UT,  ODD,  ODD, ODD } },
	{ S_GREETING, true,                  { GO,   UR,  UT,  ODD,  ODD, ODD } },
	{ S_STLS, false,                     { GO,   UR,  UT,  ODD,  ODD, ODD } },
	{ S_STLS, true,                      { GO,   UR,  UT,  ODD,  ODD, ODD } },
	{ S_USER, false,                     { GO,   FR,  UT,  ODD,  ODD, ODD } },
	{ S_USER, true,                      { GO,   FR,  UT,  ODD,  ODD, ODD } },
	{ S_PASS, false,                     { GO,   FR,  UT,  ODD,  ODD, ODD } },
	{ S_PASS, true,                      { MORE, ODD, ODD, MORE, ODD, ODD } },
	{ S_DONE, false,                     { ODD,  ODD, ODD, ODD,  ODD, ODD } },
	{ S_DONE, true,                      { ODD,  ODD, ODD, ODD,  ODD, ODD } },
	{ S_COUNT, false,                    { ODD,  ODD, ODD, ODD,  ODD, ODD } },
	{ (enum pop3_backend_state)42, true, { ODD,  ODD, ODD, ODD,  ODD, ODD } },
};

/* Where GO leads: columns (stls, master) = (no, no), (no, yes), (yes, no), (yes, yes). */
static const struct {
	enum pop3_backend_state state;
	enum pop3_backend_state after[4];
} after_rows[] = {
	{ S_GREETING, { S_USER, S_PASS, S_STLS, S_STLS } },
	{ S_STLS, { S_USER, S_PASS, S_USER, S_PASS } },
	{ S_USER, { S_PASS, S_PASS, S_PASS, S_PASS } },
	{ S_PASS, { S_DONE, S_DONE, S_DONE, S_DONE } },
};

static enum pop3_backend_state after(enum pop3_backend_state state, unsigned column)
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

	for (unsigned reply = 0; reply <= POP3_BACKEND_REPLY_COUNT; reply++) {
		const struct pop3_backend_step *want = &row->steps[reply];

		for (unsigned column = 0; column < 4; column++) {
			struct pop3_backend_options options = {
				.stls = column >= 2,
				.master = column % 2 == 1,
				.continuation = row->continuation,
			};
			struct pop3_backend_step got =
				pop3_backend_next(row->state, (enum pop3_backend_reply)reply, &options);

			ck_assert_msg(got.move == want->move,
				      "state %s, reply %s, options %u: move %s, expected %s",
				      pop3_backend_state_name(row->state),
				      pop3_backend_reply_name((enum pop3_backend_reply)reply), column,
				      pop3_backend_move_name(got.move),
				      pop3_backend_move_name(want->move));
			if (got.move == POP3_BACKEND_GO)
				ck_assert_msg(got.next == after(row->state, column),
					      "state %s, options %u: next %s",
					      pop3_backend_state_name(row->state), column,
					      pop3_backend_state_name(got.next));
			if (got.move == POP3_BACKEND_END)
				ck_assert_msg(got.result == want->result,
					      "state %s, reply %s: result %d",
					      pop3_backend_state_name(row->state),
					      pop3_backend_reply_name((enum pop3_backend_reply)reply),
					      got.result);
			ck_assert_msg(got.log == want->log, "state %s, reply %s: log %d",
				      pop3_backend_state_name(row->state),
				      pop3_backend_reply_name((enum pop3_backend_reply)reply), got.log);
		}
	}
}
END_TEST

START_TEST(test_next_covers_every_state)
{
	for (unsigned state = 0; state <= POP3_BACKEND_STATE_COUNT; state++) {
		unsigned rows = 0;

		for (int i = 0; i < TABLE_LEN(next_rows); i++)
			rows += next_rows[i].state == (enum pop3_backend_state)state;
		ck_assert_msg(rows >= 1, "state %u has no row", state);
	}
}
END_TEST

#define C_OK POP3_BACKEND_REPLY_OK
#define C_ERR POP3_BACKEND_REPLY_ERR
#define C_TEMP POP3_BACKEND_REPLY_ERR_TEMP
#define C_CONT POP3_BACKEND_REPLY_CONTINUATION
#define C_INVALID POP3_BACKEND_REPLY_INVALID

static const struct {
	const char *line;
	enum pop3_backend_reply reply;
} classify_rows[] = {
	{ "+OK", C_OK },
	{ "+OK Dovecot ready.", C_OK },
	{ "+OK [XX] hi", C_OK },
	{ "+OKAY", C_CONT },
	{ "+ok", C_CONT },
	{ "+ ", C_CONT },
	{ "+", C_CONT },
	{ "-ERR", C_ERR },
	{ "-ERR ", C_ERR },
	{ "-ERR no such user", C_ERR },
	{ "-ERR [AUTH] Authentication failed.", C_ERR },
	{ "-ERRx", C_INVALID },
	{ "-err no", C_INVALID },
	{ "-ERR [SYS/TEMP]", C_TEMP },
	{ "-ERR [SYS/TEMP] busy", C_TEMP },
	{ "-ERR [SYS/TEMP/DISK] full", C_TEMP },
	{ "-ERR [SYS/TEMPX] busy", C_ERR },
	{ "-ERR [SYS/TEMP", C_ERR },
	{ "-ERR [SYS/PERM] no", C_ERR },
	{ "-ERR  [SYS/TEMP] two spaces", C_ERR },
	{ "-ERR busy [SYS/TEMP]", C_ERR },
	{ "-ERR [IN-USE] locked", C_TEMP },
	{ "-ERR [LOGIN-DELAY] wait", C_TEMP },
	{ "-ERR [LOGIN-DELAY/X] wait", C_TEMP },
	{ "-ERR [in-use] locked", C_ERR },
	{ "", C_INVALID },
	{ "* OK IMAP", C_INVALID },
	{ "OK", C_INVALID },
};

START_TEST(test_classify)
{
	const char *line = classify_rows[_i].line;
	enum pop3_backend_reply got = pop3_backend_classify(line, strlen(line));

	ck_assert_msg(got == classify_rows[_i].reply, "\"%s\": %s", line,
		      pop3_backend_reply_name(got));
}
END_TEST

START_TEST(test_classify_nul)
{
	/* Lengths are explicit: a NUL is a byte like any other, never an end. */
	ck_assert_int_eq(pop3_backend_classify("+OK\0x", 5), C_CONT);
	ck_assert_int_eq(pop3_backend_classify("-ERR\0x", 6), C_INVALID);
	ck_assert_int_eq(pop3_backend_classify("-ERR [IN-USE\0] x", 16), C_ERR);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(pop3_backend_state_name(S_GREETING), "greeting");
	ck_assert_str_eq(pop3_backend_state_name(S_STLS), "stls");
	ck_assert_str_eq(pop3_backend_state_name(S_USER), "user");
	ck_assert_str_eq(pop3_backend_state_name(S_PASS), "pass");
	ck_assert_str_eq(pop3_backend_state_name(S_DONE), "done");
	ck_assert_str_eq(pop3_backend_state_name(S_COUNT), "invalid");
	/* Distinct names; the class INVALID and values out of range share "invalid". */
	for (unsigned r = 0; r < POP3_BACKEND_REPLY_COUNT; r++)
		for (unsigned q = 0; q < r; q++)
			ck_assert_str_ne(pop3_backend_reply_name((enum pop3_backend_reply)r),
					 pop3_backend_reply_name((enum pop3_backend_reply)q));
	ck_assert_str_eq(pop3_backend_reply_name(C_INVALID), "invalid");
	ck_assert_str_eq(pop3_backend_reply_name(POP3_BACKEND_REPLY_COUNT), "invalid");
	for (unsigned m = 0; m < POP3_BACKEND_MOVE_COUNT; m++)
		ck_assert_str_ne(pop3_backend_move_name((enum pop3_backend_move)m), "invalid");
	ck_assert_str_eq(pop3_backend_move_name(POP3_BACKEND_MOVE_COUNT), "invalid");
}
END_TEST

/* ---- the driver ---------------------------------------------------------------- */

enum {
	F_STLS = 1 << 0,	/* tls = starttls */
	F_MASTER = 1 << 1,	/* login = master */
	F_NO_TIME = 1 << 2,	/* backend_timeout = 0: every wait times out at once */
	F_CR_USER = 1 << 3,	/* user "al\rice": would split the command line */
	F_EMPTY_PASSWORD = 1 << 4,
	F_SHORT_REPLY = 1 << 5	/* 16 bytes for the backend's answer */
};

static const struct fake_case driver_cases[] = {
	/* ---- greeting ---- */
	{ "login ok", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS),
	    SEND("+OK Logged in.\r\n"), END },
	  OK, "+OK Logged in.", MOVE("greeting", "user") MOVE("user", "pass") MOVE("pass", "done") },
	{ "login ok, bare +OK lines with LF only", 0,
	  { SEND("+OK\n"), EXPECT(USER), SEND("+OK\n"), EXPECT(PASS), SEND("+OK\n"), END },
	  OK, "+OK", MOVE("greeting", "user") MOVE("user", "pass") MOVE("pass", "done") },
	{ "greeting refused", 0,
	  { SEND("-ERR go away\r\n"), END },
	  UNAVAILABLE, NULL, REFUSED("greeting", "-ERR go away") },
	{ "greeting -ERR alone", 0,
	  { SEND("-ERR\r\n"), END },
	  UNAVAILABLE, NULL, REFUSED("greeting", "-ERR") },
	{ "greeting [SYS/TEMP]", 0,
	  { SEND("-ERR [SYS/TEMP] busy\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unavailable=\"-ERR [SYS/TEMP] busy\"") },
	{ "greeting [SYS/TEMPX] is no [SYS/TEMP]", 0,
	  { SEND("-ERR [SYS/TEMPX] busy\r\n"), END },
	  UNAVAILABLE, NULL, REFUSED("greeting", "-ERR [SYS/TEMPX] busy") },
	{ "greeting with an unterminated code", 0,
	  { SEND("-ERR [SYS/TEMP\r\n"), END },
	  UNAVAILABLE, NULL, REFUSED("greeting", "-ERR [SYS/TEMP") },
	{ "greeting +OKAY", 0,
	  { SEND("+OKAY\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"+OKAY\"") },
	{ "greeting +ok in lower case", 0,
	  { SEND("+ok hi\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"+ok hi\"") },
	{ "greeting from IMAP", 0,
	  { SEND("* OK IMAP ready\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"* OK IMAP ready\"") },
	{ "greeting empty line", 0,
	  { SEND("\r\n"), END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"\"") },
	{ "greeting with NUL and control bytes", 0,
	  { { FAKE_SEND, "+OK\0x\x1b\r\n", 8 }, END },
	  UNAVAILABLE, NULL, WARN("greeting", "unexpected=\"+OK?x?\"") },
	{ "EOF before the greeting", 0,
	  { SEND_EOF, END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=closed") },
	{ "no greeting before the deadline", F_NO_TIME,
	  { END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=timeout") },
	{ "over-long greeting", 0,
	  { SEND_LONG("-ERR "), END },
	  UNAVAILABLE, NULL, WARN("greeting", "error=line-too-long") },

	/* ---- STLS ---- */
	{ "STLS, then login", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("+OK Begin TLS\r\n+OK injected\r\n"), TLS,
	    EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS), SEND("+OK in\r\n"), END },
	  OK, "+OK in",
	  MOVE("greeting", "stls") MOVE("stls", "user") MOVE("user", "pass") MOVE("pass", "done") },
	{ "STLS refused", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("-ERR no TLS\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "stls") REFUSED("stls", "-ERR no TLS") },
	{ "STLS: [SYS/TEMP]", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("-ERR [SYS/TEMP/TLS] later\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "stls") WARN("stls", "unavailable=\"-ERR [SYS/TEMP/TLS] later\"") },
	{ "STLS answered with junk", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("+ go\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "stls") WARN("stls", "unexpected=\"+ go\"") },
	{ "EOF after STLS", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "stls") WARN("stls", "error=closed") },
	{ "STLS: the handshake fails", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("+OK go\r\n"), TLS_FAIL, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "stls") WARN("stls", "error=\"handshake failed\"") },
	{ "STLS: EOF on the new channel", F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("+OK go\r\n"), TLS, EXPECT(USER), SEND_EOF,
	    END },
	  UNAVAILABLE, NULL, MOVE("greeting", "stls") MOVE("stls", "user") WARN("user", "error=closed") },

	/* ---- USER and PASS ---- */
	{ "USER refused", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("-ERR no such user\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "user") REFUSED("user", "-ERR no such user") },
	{ "USER: mailbox in use", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("-ERR [IN-USE] locked\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "user") WARN("user", "unavailable=\"-ERR [IN-USE] locked\"") },
	{ "USER answered with junk", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("what\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "user") WARN("user", "unexpected=\"what\"") },
	{ "EOF after USER", 0,
	  { SEND(GREETING), EXPECT(USER), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "user") WARN("user", "error=closed") },
	{ "PASS refused", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS),
	    SEND("-ERR [AUTH] Authentication failed.\r\n"), END },
	  FAILED, NULL,
	  MOVE("greeting", "user") MOVE("user", "pass")
	  REFUSED("pass", "-ERR [AUTH] Authentication failed.") },
	{ "PASS: login delay", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS),
	    SEND("-ERR [LOGIN-DELAY] wait\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "user") MOVE("user", "pass")
	  WARN("pass", "unavailable=\"-ERR [LOGIN-DELAY] wait\"") },
	{ "PASS answer longer than the reply buffer", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS),
	    SEND("+OK sixteen chars\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "user") MOVE("user", "pass")
	  WARN("pass", "overlong=\"+OK sixteen chars\"") },
	{ "PASS answer as long as the reply buffer: no room for its end", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS),
	    SEND("+OK fifteen char\r\n"), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "user") MOVE("user", "pass")
	  WARN("pass", "overlong=\"+OK fifteen char\"") },
	{ "PASS answer one byte shorter than the reply buffer", F_SHORT_REPLY,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS),
	    SEND("+OK fifteen chr\r\n"), END },
	  OK, "+OK fifteen chr",
	  MOVE("greeting", "user") MOVE("user", "pass") MOVE("pass", "done") },
	{ "EOF after PASS", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "user") MOVE("user", "pass") WARN("pass", "error=closed") },
	{ "over-long line after PASS", 0,
	  { SEND(GREETING), EXPECT(USER), SEND("+OK\r\n"), EXPECT(PASS), SEND_LONG("-ERR "), END },
	  UNAVAILABLE, NULL,
	  MOVE("greeting", "user") MOVE("user", "pass") WARN("pass", "error=line-too-long") },
	{ "a user name with CR is never sent", F_CR_USER,
	  { SEND(GREETING), END },
	  FAILED, NULL, NOT_LINE_SAFE },
	{ "an empty password is never sent, even after STLS", F_STLS | F_EMPTY_PASSWORD,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("+OK go\r\n"), TLS, END },
	  FAILED, NULL, MOVE("greeting", "stls") NOT_LINE_SAFE },
	{ "the master login checks the user's credentials too", F_MASTER | F_CR_USER,
	  { SEND(GREETING), END },
	  FAILED, NULL, NOT_LINE_SAFE },

	/* ---- master-user login ---- */
	{ "master login", F_MASTER,
	  { SEND(GREETING), EXPECT("AUTH PLAIN\r\n"), SEND("+ \r\n"), EXPECT(MASTER_BLOB),
	    SEND("+OK Logged in.\r\n"), END },
	  OK, "+OK Logged in.", MOVE("greeting", "pass") MOVE("pass", "done") },
	{ "master login after STLS, +OK taken as the continuation", F_MASTER | F_STLS,
	  { SEND(GREETING), EXPECT("STLS\r\n"), SEND("+OK go\r\n"), TLS, EXPECT("AUTH PLAIN\r\n"),
	    SEND("+OK\r\n"), EXPECT(MASTER_BLOB), SEND("+OK in\r\n"), END },
	  OK, "+OK in", MOVE("greeting", "stls") MOVE("stls", "pass") MOVE("pass", "done") },
	{ "master login: mechanism refused", F_MASTER,
	  { SEND(GREETING), EXPECT("AUTH PLAIN\r\n"), SEND("-ERR no\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "pass") WARN("pass", "unexpected=\"-ERR no\"") },
	{ "master login: empty line instead of the continuation", F_MASTER,
	  { SEND(GREETING), EXPECT("AUTH PLAIN\r\n"), SEND("\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "pass") WARN("pass", "unexpected=\"\"") },
	{ "master login: EOF before the continuation", F_MASTER,
	  { SEND(GREETING), EXPECT("AUTH PLAIN\r\n"), SEND_EOF, END },
	  UNAVAILABLE, NULL, MOVE("greeting", "pass") WARN("pass", "error=closed") },
	{ "master login refused", F_MASTER,
	  { SEND(GREETING), EXPECT("AUTH PLAIN\r\n"), SEND("+ \r\n"), EXPECT(MASTER_BLOB),
	    SEND("-ERR [AUTH] no\r\n"), END },
	  FAILED, NULL, MOVE("greeting", "pass") REFUSED("pass", "-ERR [AUTH] no") },
	{ "master login: a second continuation", F_MASTER,
	  { SEND(GREETING), EXPECT("AUTH PLAIN\r\n"), SEND("+ \r\n"), EXPECT(MASTER_BLOB),
	    SEND("+ more\r\n"), END },
	  UNAVAILABLE, NULL, MOVE("greeting", "pass") WARN("pass", "unexpected=\"+ more\"") },
};

START_TEST(test_driver)
{
	const struct fake_case *c = &driver_cases[_i];
	struct fake_login t;

	fake_login_init(&t);
	if (c->flags & F_STLS)
		t.backend.tls = MG_BACKEND_TLS_STARTTLS;
	if (c->flags & F_MASTER)
		fake_login_set_master(&t);
	if (c->flags & F_NO_TIME)
		t.cfg.backend_timeout = 0;
	if (c->flags & F_CR_USER)
		fake_login_set_credentials(&t, "al\rice", 6, "secret", 6);
	if (c->flags & F_EMPTY_PASSWORD)
		fake_login_set_credentials(&t, "alice", 5, "", 0);
	if (c->flags & F_SHORT_REPLY)
		t.replysize = 16;
	fake_login_run(&t, c->script, backend_pop3_login);
	fake_login_check(&t, c);
}
END_TEST

static Suite *pop3_backend_suite(void)
{
	Suite *s = suite_create("pop3_backend");
	TCase *tc = tcase_create("step");

	tcase_add_loop_test(tc, test_next, 0, TABLE_LEN(next_rows));
	tcase_add_test(tc, test_next_covers_every_state);
	tcase_add_loop_test(tc, test_classify, 0, TABLE_LEN(classify_rows));
	tcase_add_test(tc, test_classify_nul);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("driver");
	tcase_add_loop_test(tc, test_driver, 0, TABLE_LEN(driver_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(pop3_backend_suite());
}
