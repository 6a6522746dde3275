/*
 * check_pop3_backend.c - the login to a POP3 backend, end to end against a
 * scripted fake backend (fake_backend.h): every byte sent, the result, the
 * answer handed to the client and every log line, for greetings, STLS,
 * USER/PASS, the master-user login (AUTH PLAIN), RFC 2449/3206 response
 * codes, malformed lines, over-long lines and EOF in every state.
 */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "fake_backend.h"

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
	TCase *tc = tcase_create("driver");

	tcase_add_loop_test(tc, test_driver, 0, TABLE_LEN(driver_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(pop3_backend_suite());
}
