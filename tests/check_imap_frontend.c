/*
 * check_imap_frontend.c - the client-facing IMAP dialogue before login
 * (imap_frontend.c), driven over a socketpair by a scripted client that is
 * also the engine on its leg (fake_backend.h): the greeting and CAPABILITY
 * before and after TLS, LOGIN and AUTHENTICATE refused in the clear without
 * a continuation (quoted, with literals, LITERAL+, SASL-IR), STARTTLS and
 * the bytes pipelined behind it dropped, the bad-command limit over BAD,
 * refusals and oversized literals, empty literals everywhere, over-long
 * lines, and EOF in every state. Every byte the front end writes is
 * checked, and the result, end reason and log lines that matter.
 */
#include <check.h>
#include "check_run.h"
#include "fake_backend.h"

#define GREETING_PLAIN "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED] " \
		       "mailgate ready.\r\n"
#define GREETING_ALLOWED "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN " \
			 "AUTH=LOGIN] mailgate ready.\r\n"
#define GREETING_TLS "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN] " \
		     "mailgate ready.\r\n"
#define CAPS_PLAIN "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED\r\n"
#define CAPS_TLS "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN\r\n"
#define PRIVACY(tag) tag " NO [PRIVACYREQUIRED] Cleartext logins are disabled; use STARTTLS " \
			 "first.\r\n"
#define GO_AHEAD(tag) tag " OK Begin TLS negotiation now.\r\n"
#define UNKNOWN(tag) tag " BAD Unknown command or not allowed before login.\r\n"
#define TOO_MANY "* BYE Too many invalid commands.\r\n"
#define CONTINUE "+ Ready for literal data\r\n"
#define LOGOUT(tag) SEND(tag " LOGOUT\r\n"), EXPECT("* BYE Logging out.\r\n"), \
		    EXPECT(tag " OK Logout completed.\r\n")
#define REFUSED_LOG "info: cleartext login refused: rip=192.0.2.7 rport=40000 listener=test\n"
#define TLS_LOG "debug: tls established client=192.0.2.7:40000 version=TLSv1.3 cipher=TEST_CIPHER sni=- set=-\n"

#define F_TLS FAKE_FE_TLS
#define F_ALLOWED FAKE_FE_ALLOWED

static const struct fake_frontend_case cases[] = {
	{ "greeting and logout", 0,
	  { EXPECT(GREETING_PLAIN), LOGOUT("a"), END }, "logout", NULL },
	{ "capability before TLS", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a CAPABILITY\r\n"), EXPECT(CAPS_PLAIN),
	    EXPECT("a OK Capability completed.\r\n"), SEND("b NOOP\r\n"),
	    EXPECT("b OK NOOP completed.\r\n"), SEND("c ID NIL\r\n"),
	    EXPECT("* ID (\"name\" \"mailgate\")\r\n"), EXPECT("c OK ID completed.\r\n"),
	    SEND_EOF, END }, "client-closed", NULL },
	{ "capability where cleartext is allowed", F_ALLOWED,
	  { EXPECT(GREETING_ALLOWED), SEND_EOF, END }, "client-closed", NULL },
	{ "capability over implicit TLS", F_TLS,
	  { EXPECT(GREETING_TLS), SEND("a CAPABILITY\r\n"), EXPECT(CAPS_TLS),
	    EXPECT("a OK Capability completed.\r\n"), SEND("b STARTTLS\r\n"),
	    EXPECT("b BAD TLS is already active.\r\n"), LOGOUT("c"), END }, "logout", NULL },

	/* no password is ever solicited or looked at in the clear */
	{ "LOGIN refused before TLS", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a LOGIN alice secret\r\n"), EXPECT(PRIVACY("a")),
	    SEND("b login \"alice\" \"secret\"\r\n"), EXPECT(PRIVACY("b")), SEND_EOF, END },
	  "client-closed", REFUSED_LOG },
	{ "malformed LOGIN refused the same", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a LOGIN (((\r\n"), EXPECT(PRIVACY("a")), SEND_EOF,
	    END }, "client-closed", REFUSED_LOG },
	{ "LOGIN literal refused without a continuation", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a LOGIN {5}\r\n"), EXPECT(PRIVACY("a")),
	    SEND("b NOOP\r\n"), EXPECT("b OK NOOP completed.\r\n"), SEND_EOF, END },
	  "client-closed", REFUSED_LOG },
	{ "LOGIN with LITERAL+ consumed whole, then refused", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\nb NOOP\r\n"),
	    EXPECT(PRIVACY("a")), EXPECT("b OK NOOP completed.\r\n"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "AUTHENTICATE refused without a continuation", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a AUTHENTICATE PLAIN\r\n"), EXPECT(PRIVACY("a")),
	    SEND("b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"), EXPECT(PRIVACY("b")), SEND_EOF,
	    END }, "client-closed", REFUSED_LOG },
	{ "empty literals everywhere", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a LOGIN {0+}\r\n {0+}\r\n\r\n"), EXPECT(PRIVACY("a")),
	    SEND("b ID ({0+}\r\n {0+}\r\n)\r\n"), EXPECT("* ID (\"name\" \"mailgate\")\r\n"),
	    EXPECT("b OK ID completed.\r\n"), SEND("c NOOP {0}\r\n"), EXPECT(CONTINUE),
	    SEND("\r\n"), EXPECT("c BAD NOOP takes no arguments.\r\n"), SEND("{0}\r\n"),
	    EXPECT("* BAD Invalid tag.\r\n"), EXPECT(TOO_MANY), END }, "too-many-bad-commands",
	  NULL },
	{ "empty literals over TLS", F_TLS,
	  { EXPECT(GREETING_TLS), SEND("a LOGIN {0}\r\n"), EXPECT(CONTINUE), SEND(" {0}\r\n"),
	    EXPECT(CONTINUE), SEND("\r\n"), EXPECT("a BAD Invalid user name or password.\r\n"),
	    SEND("b AUTHENTICATE {0+}\r\n\r\n"),
	    EXPECT("b BAD AUTHENTICATE expects a mechanism and an optional response.\r\n"),
	    SEND_EOF, END }, "client-closed", NULL },

	/* STARTTLS */
	{ "STARTTLS drops what was pipelined behind it", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a STARTTLS\r\nb CAPABILITY\r\n"),
	    CLIENT_TLS(GO_AHEAD("a")), SEND("c CAPABILITY\r\n"), EXPECT(CAPS_TLS),
	    EXPECT("c OK Capability completed.\r\n"), SEND("d STARTTLS\r\n"),
	    EXPECT("d BAD TLS is already active.\r\n"), LOGOUT("e"), END }, "logout", TLS_LOG },
	{ "answers before STARTTLS come first", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a NOOP\r\nb STARTTLS\r\n"),
	    EXPECT("a OK NOOP completed.\r\n"), CLIENT_TLS(GO_AHEAD("b")), SEND_EOF, END },
	  "client-closed", NULL },
	{ "STARTTLS with arguments", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a STARTTLS now\r\n"),
	    EXPECT("a BAD STARTTLS takes no arguments.\r\n"), SEND_EOF, END }, "client-closed",
	  NULL },
	{ "failed handshake", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a STARTTLS\r\n"), CLIENT_TLS_FAIL(GO_AHEAD("a")), END },
	  "tls-failed", NULL },

	/* limits */
	{ "bad-command limit", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a FROB\r\n"), EXPECT(UNKNOWN("a")),
	    SEND("b SELECT INBOX\r\n"), EXPECT(UNKNOWN("b")), SEND("c FROB\r\n"),
	    EXPECT(UNKNOWN("c")), EXPECT(TOO_MANY), END }, "too-many-bad-commands", NULL },
	{ "refusals and oversized literals count as bad commands", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a LOGIN x y\r\n"), EXPECT(PRIVACY("a")),
	    SEND("b NOOP x\r\n"), EXPECT("b BAD NOOP takes no arguments.\r\n"),
	    SEND("c ID {65}\r\n"), EXPECT("c NO [TOOBIG] Literal too large.\r\n"),
	    EXPECT(TOO_MANY), END }, "too-many-bad-commands", NULL },
	{ "oversized LITERAL+ ends the session", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a ID {65+}\r\n"), EXPECT("* BYE Literal too large.\r\n"),
	    END }, "literal-too-large", NULL },
	{ "literals add up to the limit", F_TLS,
	  { EXPECT(GREETING_TLS),
	    SEND("a ID ({40+}\r\n0123456789012345678901234567890123456789 {40+}\r\n"),
	    EXPECT("* BYE Literal too large.\r\n"), END },
	  "literal-too-large", NULL },
	{ "over-long line", 0,
	  { EXPECT(GREETING_PLAIN), SEND_LONG("a NOOP "), EXPECT("* BYE Line too long.\r\n"), END },
	  "line-too-long", NULL },
	{ "empty lines are ignored", 0,
	  { EXPECT(GREETING_PLAIN), SEND("\r\n\r\na NOOP\r\n"), EXPECT("a OK NOOP completed.\r\n"),
	    SEND_EOF, END }, "client-closed", NULL },

	/* EOF in every state */
	{ "EOF after the greeting", 0,
	  { EXPECT(GREETING_PLAIN), SEND_EOF, END }, "client-closed", NULL },
	{ "EOF inside a line", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a NOO"), SEND_EOF, END }, "client-closed", NULL },
	{ "EOF inside a literal", F_TLS,
	  { EXPECT(GREETING_TLS), SEND("a LOGIN {5}\r\n"), EXPECT(CONTINUE), SEND("ali"), SEND_EOF,
	    END }, "client-closed", NULL },
	{ "EOF after a literal", F_TLS,
	  { EXPECT(GREETING_TLS), SEND("a LOGIN {5+}\r\nalice"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "EOF at the AUTHENTICATE continuation", F_TLS,
	  { EXPECT(GREETING_TLS), SEND("a AUTHENTICATE PLAIN\r\n"), EXPECT("+ \r\n"), SEND_EOF,
	    END }, "client-closed", NULL },
	{ "AUTHENTICATE cancelled, and an unknown mechanism", F_TLS,
	  { EXPECT(GREETING_TLS), SEND("a AUTHENTICATE PLAIN\r\n"), EXPECT("+ \r\n"),
	    SEND("*\r\n"), EXPECT("a BAD Authentication cancelled.\r\n"),
	    SEND("b AUTHENTICATE X-UNKNOWN\r\n"),
	    EXPECT("b NO Unsupported authentication mechanism.\r\n"), SEND_EOF, END },
	  "client-closed", NULL },
	{ "EOF after STARTTLS", 0,
	  { EXPECT(GREETING_PLAIN), SEND("a STARTTLS\r\n"), CLIENT_TLS(GO_AHEAD("a")), SEND_EOF,
	    END }, "client-closed", TLS_LOG },
};

START_TEST(test_dialogue)
{
	fake_frontend_case_run(&imap_protocol, &cases[_i]);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("imap_frontend");
	TCase *tc = tcase_create("dialogue");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_dialogue, 0, TABLE_LEN(cases));
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
