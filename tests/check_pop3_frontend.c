/*
 * check_pop3_frontend.c - the client-facing POP3 dialogue before login
 * (pop3_frontend.c), driven over a socketpair by a scripted client that is
 * also the engine on its leg (fake_backend.h): the greeting and CAPA before
 * and after TLS, USER, PASS, APOP and AUTH refused in the clear without a
 * continuation, STLS and the bytes pipelined behind it dropped, USER/PASS
 * order and the AUTH listing over TLS, the bad-command limit, over-long
 * lines, and EOF in every state. Every byte the front end writes is
 * checked, and the result, end reason and log lines that matter.
 */
#include <check.h>
#include "check_run.h"
#include "fake_backend.h"

#define GREETING "+OK mailgate ready.\r\n"
#define CAPA_HEAD EXPECT("+OK Capability list follows.\r\n"), EXPECT("TOP\r\n"), \
		  EXPECT("UIDL\r\n"), EXPECT("RESP-CODES\r\n"), EXPECT("AUTH-RESP-CODE\r\n"), \
		  EXPECT("PIPELINING\r\n")
#define CAPA_TAIL EXPECT("IMPLEMENTATION mailgate\r\n"), EXPECT(".\r\n")
#define CAPA_PLAIN CAPA_HEAD, EXPECT("STLS\r\n"), CAPA_TAIL
#define CAPA_TLS CAPA_HEAD, EXPECT("USER\r\n"), EXPECT("SASL PLAIN LOGIN\r\n"), CAPA_TAIL
#define CAPA_ALLOWED CAPA_HEAD, EXPECT("STLS\r\n"), EXPECT("USER\r\n"), \
		     EXPECT("SASL PLAIN LOGIN\r\n"), CAPA_TAIL
#define PRIVACY "-ERR [AUTH] Cleartext logins are disabled; use STLS first.\r\n"
#define GO_AHEAD "+OK Begin TLS negotiation now.\r\n"
#define TOO_MANY "-ERR Too many invalid commands.\r\n"
#define REFUSED_LOG(cmd) "info: cleartext login refused: rip=192.0.2.7 rport=40000 listener=test " \
			 "command=" cmd "\n"
#define TLS_LOG "debug: tls established client=192.0.2.7:40000 version=TLSv1.3 cipher=TEST_CIPHER sni=- set=-\n"

#define F_TLS FAKE_FE_TLS
#define F_ALLOWED FAKE_FE_ALLOWED
#define F_WIDE FAKE_FE_WIDE

static const struct fake_frontend_case cases[] = {
	{ "greeting and QUIT", 0,
	  { EXPECT(GREETING), SEND("QUIT\r\n"), EXPECT("+OK Logging out.\r\n"), END }, "logout",
	  NULL },
	{ "CAPA before TLS", 0,
	  { EXPECT(GREETING), SEND("CAPA\r\n"), CAPA_PLAIN, SEND_EOF, END }, "client-closed",
	  NULL },
	{ "CAPA where cleartext is allowed", F_ALLOWED,
	  { EXPECT(GREETING), SEND("capa\r\n"), CAPA_ALLOWED, SEND_EOF, END }, "client-closed",
	  NULL },
	{ "CAPA over implicit TLS", F_TLS,
	  { EXPECT(GREETING), SEND("CAPA\r\n"), CAPA_TLS, SEND("STLS\r\n"),
	    EXPECT("-ERR TLS is already active.\r\n"), SEND("QUIT\r\n"),
	    EXPECT("+OK Logging out.\r\n"), END }, "logout", NULL },

	/* no password is ever solicited or looked at in the clear */
	{ "USER refused before TLS", 0,
	  { EXPECT(GREETING), SEND("USER alice\r\n"), EXPECT(PRIVACY), SEND_EOF, END },
	  "client-closed", REFUSED_LOG("USER") },
	{ "PASS refused before TLS", 0,
	  { EXPECT(GREETING), SEND("PASS secret\r\n"), EXPECT(PRIVACY), SEND_EOF, END },
	  "client-closed", REFUSED_LOG("PASS") },
	{ "APOP refused before TLS", 0,
	  { EXPECT(GREETING), SEND("APOP alice 0123456789abcdef\r\n"), EXPECT(PRIVACY), SEND_EOF,
	    END }, "client-closed", REFUSED_LOG("APOP") },
	{ "AUTH refused before TLS without a continuation", 0,
	  { EXPECT(GREETING), SEND("AUTH PLAIN\r\n"), EXPECT(PRIVACY), SEND("NOOP\r\n"),
	    EXPECT("-ERR Command not allowed before login.\r\n"), SEND_EOF, END },
	  "client-closed", REFUSED_LOG("AUTH") },
	{ "refusals count to the limit", 0,
	  { EXPECT(GREETING), SEND("AUTH\r\n"), EXPECT(PRIVACY), SEND("user alice\r\n"),
	    EXPECT(PRIVACY), SEND("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"), EXPECT(PRIVACY),
	    EXPECT(TOO_MANY), END }, "too-many-bad-commands", NULL },

	/* STLS */
	{ "STLS drops what was pipelined behind it", 0,
	  { EXPECT(GREETING), SEND("STLS\r\nCAPA\r\n"), CLIENT_TLS(GO_AHEAD), SEND("CAPA\r\n"),
	    CAPA_TLS, SEND("STLS\r\n"), EXPECT("-ERR TLS is already active.\r\n"),
	    SEND("QUIT\r\n"), EXPECT("+OK Logging out.\r\n"), END }, "logout", TLS_LOG },
	{ "answers before STLS come first", 0,
	  { EXPECT(GREETING), SEND("NOOP\r\nSTLS\r\n"),
	    EXPECT("-ERR Command not allowed before login.\r\n"), CLIENT_TLS(GO_AHEAD), SEND_EOF,
	    END }, "client-closed", NULL },
	{ "STLS with arguments", 0,
	  { EXPECT(GREETING), SEND("STLS now\r\n"), EXPECT("-ERR STLS takes no arguments.\r\n"),
	    SEND_EOF, END }, "client-closed", NULL },
	{ "failed handshake", 0,
	  { EXPECT(GREETING), SEND("STLS\r\n"), CLIENT_TLS_FAIL(GO_AHEAD), END }, "tls-failed",
	  NULL },
	{ "a USER given in the clear does not survive STLS", F_ALLOWED,
	  { EXPECT(GREETING), SEND("USER alice\r\n"), EXPECT("+OK\r\n"), SEND("STLS\r\n"),
	    CLIENT_TLS(GO_AHEAD), SEND("PASS secret\r\n"),
	    EXPECT("-ERR No user name given; send USER first.\r\n"), SEND_EOF, END },
	  "client-closed", NULL },

	/* over TLS, short of a login */
	{ "AUTH listing, PASS before USER", F_TLS,
	  { EXPECT(GREETING), SEND("AUTH\r\n"), EXPECT("+OK\r\n"), EXPECT("PLAIN\r\n"),
	    EXPECT("LOGIN\r\n"), EXPECT(".\r\n"), SEND("PASS secret\r\n"),
	    EXPECT("-ERR No user name given; send USER first.\r\n"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "AUTH cancelled, and an unknown mechanism", F_TLS,
	  { EXPECT(GREETING), SEND("AUTH PLAIN\r\n"), EXPECT("+ \r\n"), SEND("*\r\n"),
	    EXPECT("-ERR Authentication cancelled.\r\n"), SEND("AUTH X-UNKNOWN\r\n"),
	    EXPECT("-ERR Unsupported authentication mechanism.\r\n"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "USER without a name, APOP over TLS", F_TLS,
	  { EXPECT(GREETING), SEND("USER\r\n"), EXPECT("-ERR USER expects a user name.\r\n"),
	    SEND("APOP alice 0123\r\n"),
	    EXPECT("-ERR APOP is not supported; use USER/PASS or AUTH.\r\n"), SEND_EOF, END },
	  "client-closed", NULL },

	/* limits */
	{ "bad-command limit", 0,
	  { EXPECT(GREETING), SEND("FROB\r\n"), EXPECT("-ERR Unknown command.\r\n"),
	    SEND("STAT\r\n"), EXPECT("-ERR Command not allowed before login.\r\n"),
	    SEND("QUIT now\r\n"), EXPECT("-ERR QUIT takes no arguments.\r\n"), EXPECT(TOO_MANY),
	    END }, "too-many-bad-commands", NULL },
	{ "over-long line", 0,
	  { EXPECT(GREETING), SEND_LONG("CAPA "), EXPECT("-ERR Line too long.\r\n"), END },
	  "line-too-long", NULL },
	{ "a line longer than RFC 2449 allows", F_WIDE,
	  { EXPECT(GREETING),
	    SEND("NOOP 1234567890123456789012345678901234567890123456789012345678901234567890"
		 "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
		 "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
		 "123456789012345678901234567890\r\n"),
	    EXPECT("-ERR Command line too long.\r\n"), SEND_EOF, END }, "client-closed", NULL },

	/* EOF in every state */
	{ "EOF after the greeting", 0,
	  { EXPECT(GREETING), SEND_EOF, END }, "client-closed", NULL },
	{ "EOF inside a line", 0,
	  { EXPECT(GREETING), SEND("CAP"), SEND_EOF, END }, "client-closed", NULL },
	{ "EOF after USER", F_TLS,
	  { EXPECT(GREETING), SEND("USER alice\r\n"), EXPECT("+OK\r\n"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "EOF at the AUTH continuation", F_TLS,
	  { EXPECT(GREETING), SEND("AUTH PLAIN\r\n"), EXPECT("+ \r\n"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "EOF after STLS", 0,
	  { EXPECT(GREETING), SEND("STLS\r\n"), CLIENT_TLS(GO_AHEAD), SEND_EOF, END },
	  "client-closed", TLS_LOG },
};

START_TEST(test_dialogue)
{
	fake_frontend_case_run(&pop3_protocol, &cases[_i]);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("pop3_frontend");
	TCase *tc = tcase_create("dialogue");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_dialogue, 0, TABLE_LEN(cases));
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
