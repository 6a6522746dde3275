/*
 * check_monitor_classify.c - the plugin's reading of server answers
 * (monitor/classify.c, monitor/caps.c): every answer class of IMAP LOGIN
 * and POP3 USER/PASS with the real texts of Dovecot, mailgated, Cyrus,
 * Courier and others, greetings, tagged-line matching, the policy wording,
 * and capability parsing. Every input is copied to an exact-size heap
 * block so AddressSanitizer catches an over-read.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "classify.h"
#include "check_run.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

static char *copy(const char *s)
{
	size_t len = strlen(s);
	char *c = malloc(len > 0 ? len : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, s, len);
	return c;
}

/* ---- IMAP LOGIN ------------------------------------------------------------ */

struct imap_login_case {
	const char *status;	/* the tagged answer without its tag */
	bool logindisabled;
	enum mon_login_class want;
};

static const struct imap_login_case imap_login_cases[] = {
	/* Success, in every spelling. */
	{ "OK Logged in", false, MON_LOGIN_ACCEPTED },
	{ "OK [CAPABILITY IMAP4rev1 IDLE] Logged in", false, MON_LOGIN_ACCEPTED },
	{ "ok logged in", false, MON_LOGIN_ACCEPTED },
	{ "OK", false, MON_LOGIN_ACCEPTED },
	{ "OK Logged in", true, MON_LOGIN_ACCEPTED },	/* advertised it, then let us in */
	/* Refused by policy: Dovecot, mailgated, other wording. */
	{ "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) "
	  "connections.", true, MON_LOGIN_POLICY },
	{ "NO [PRIVACYREQUIRED] Cleartext logins are disabled; use STARTTLS first.", true,
	  MON_LOGIN_POLICY },
	{ "NO [PRIVACYREQUIRED]", false, MON_LOGIN_POLICY },
	{ "NO [privacyrequired] x", false, MON_LOGIN_POLICY },
	{ "NO Plaintext authentication disabled.", false, MON_LOGIN_POLICY },	/* old Dovecot */
	{ "NO Login only available under a layer", false, MON_LOGIN_POLICY },	/* Cyrus */
	{ "NO STARTTLS required", false, MON_LOGIN_POLICY },
	{ "NO [ALERT] Use TLS to log in", false, MON_LOGIN_POLICY },
	{ "NO Login on an insecure connection is not allowed", false, MON_LOGIN_POLICY },
	{ "NO Unencrypted connections are not allowed", false, MON_LOGIN_POLICY },
	{ "NO encryption required", false, MON_LOGIN_POLICY },
	/* BAD is the documented answer once LOGINDISABLED was advertised. */
	{ "BAD Command received in Invalid state.", true, MON_LOGIN_POLICY },	/* Exchange */
	{ "BAD LOGIN disabled", true, MON_LOGIN_POLICY },
	{ "BAD [CLIENTBUG] LOGINDISABLED", false, MON_LOGIN_POLICY },
	{ "BAD Plaintext login not allowed", false, MON_LOGIN_POLICY },
	/* Checked: the server looked at the password. */
	{ "NO [AUTHENTICATIONFAILED] Authentication failed.", false, MON_LOGIN_CHECKED },
	{ "NO [AUTHENTICATIONFAILED] Authentication failed.", true, MON_LOGIN_CHECKED },
	{ "NO [AUTHORIZATIONFAILED] No such authorization-ID", false, MON_LOGIN_CHECKED },
	{ "NO [EXPIRED] That password isn't valid any more", false, MON_LOGIN_CHECKED },
	{ "NO [CONTACTADMIN] Account locked", false, MON_LOGIN_CHECKED },
	{ "NO [UNAVAILABLE] Temporary authentication failure", false, MON_LOGIN_CHECKED },
	{ "NO Login failed.", false, MON_LOGIN_CHECKED },			/* plain wrong password */
	{ "NO LOGIN failed.", true, MON_LOGIN_CHECKED },			/* Exchange */
	{ "NO Invalid credentials", false, MON_LOGIN_CHECKED },
	{ "NO", false, MON_LOGIN_CHECKED },
	{ "NO [ALERT] Authentication failed", false, MON_LOGIN_CHECKED },
	/* A code that says "checked" wins over TLS words in the text. */
	{ "NO [AUTHENTICATIONFAILED] Authentication failed (and use TLS next time)", false,
	  MON_LOGIN_CHECKED },
	/* Words must start at a word: "settlsomething" is no TLS word. */
	{ "NO settlsomething wrong", false, MON_LOGIN_CHECKED },
	{ "NO Password mismatch for sslvpn user", false, MON_LOGIN_CHECKED },
	/* Unexpected. */
	{ "BAD Error in IMAP command LOGIN: Invalid arguments.", false, MON_LOGIN_UNEXPECTED },
	{ "BAD", false, MON_LOGIN_UNEXPECTED },
	{ "PREAUTH what", false, MON_LOGIN_UNEXPECTED },
	{ "NOPE", false, MON_LOGIN_UNEXPECTED },
	{ "OKAY", false, MON_LOGIN_UNEXPECTED },
	{ "", false, MON_LOGIN_UNEXPECTED },
	{ "BYE", false, MON_LOGIN_UNEXPECTED },
};

START_TEST(test_imap_login)
{
	const struct imap_login_case *tc = &imap_login_cases[_i];
	char *s = copy(tc->status);
	enum mon_login_class got = classify_imap_login(s, strlen(tc->status), tc->logindisabled);

	ck_assert_msg(got == tc->want, "'%s' (logindisabled=%d): got %s, want %s", tc->status,
		      tc->logindisabled, classify_login_name(got), classify_login_name(tc->want));
	free(s);
}
END_TEST

START_TEST(test_imap_closed)
{
	ck_assert_int_eq(classify_imap_closed(NULL, 0), MON_LOGIN_UNEXPECTED);
	ck_assert_int_eq(classify_imap_closed("* BYE Logging out", 17), MON_LOGIN_UNEXPECTED);
	ck_assert_int_eq(classify_imap_closed("* BYE Plaintext logins are not allowed", 38),
			 MON_LOGIN_POLICY);
}
END_TEST

/* ---- POP3 USER and PASS ------------------------------------------------------ */

struct pop3_case {
	const char *line;
	enum mon_login_class want;
};

static const struct pop3_case pop3_user_cases[] = {
	{ "+OK", MON_LOGIN_USER_OK },
	{ "+OK send PASS", MON_LOGIN_USER_OK },
	{ "+ok", MON_LOGIN_USER_OK },
	{ "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
	  MON_LOGIN_POLICY },							/* Dovecot */
	{ "-ERR [AUTH] Cleartext logins are disabled; use STLS first.", MON_LOGIN_POLICY },
	{ "-ERR USER/PASS not allowed without STLS", MON_LOGIN_POLICY },
	{ "-ERR Use an encrypted connection", MON_LOGIN_POLICY },
	{ "-ERR [AUTH] Authentication failed.", MON_LOGIN_CHECKED },
	{ "-ERR [AUTH] No such user", MON_LOGIN_CHECKED },
	{ "-ERR Unknown command", MON_LOGIN_UNEXPECTED },
	{ "-ERR [SYS/TEMP] try later", MON_LOGIN_UNEXPECTED },
	{ "-ERR", MON_LOGIN_UNEXPECTED },
	{ "+OKAY", MON_LOGIN_UNEXPECTED },
	{ "", MON_LOGIN_UNEXPECTED },
	{ "* OK imap here", MON_LOGIN_UNEXPECTED },
};

static const struct pop3_case pop3_pass_cases[] = {
	{ "+OK Logged in.", MON_LOGIN_ACCEPTED },
	{ "+OK", MON_LOGIN_ACCEPTED },
	/* RFC 2449/3206: these come only after the credentials passed. */
	{ "-ERR [IN-USE] Mailbox locked by another session", MON_LOGIN_ACCEPTED },
	{ "-ERR [LOGIN-DELAY] Wait 10 minutes", MON_LOGIN_ACCEPTED },
	{ "-ERR [AUTH] Authentication failed.", MON_LOGIN_CHECKED },		/* Dovecot, allowed */
	{ "-ERR [AUTH] Invalid password", MON_LOGIN_CHECKED },
	{ "-ERR Authentication failed", MON_LOGIN_CHECKED },
	{ "-ERR invalid user or password", MON_LOGIN_CHECKED },
	{ "-ERR [SYS/TEMP] Temporary authentication failure", MON_LOGIN_CHECKED },
	{ "-ERR", MON_LOGIN_CHECKED },
	{ "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
	  MON_LOGIN_POLICY },
	{ "-ERR [AUTH] Cleartext logins are disabled; use STLS first.", MON_LOGIN_POLICY },
	{ "-ERR Secure connection required", MON_LOGIN_POLICY },
	{ "-ERR Please use STLS", MON_LOGIN_POLICY },
	{ "", MON_LOGIN_UNEXPECTED },
	{ "OK", MON_LOGIN_UNEXPECTED },
	{ "-ERRno", MON_LOGIN_UNEXPECTED },
};

START_TEST(test_pop3_user)
{
	const struct pop3_case *tc = &pop3_user_cases[_i];
	char *s = copy(tc->line);
	enum mon_login_class got = classify_pop3_user(s, strlen(tc->line));

	ck_assert_msg(got == tc->want, "USER '%s': got %s, want %s", tc->line,
		      classify_login_name(got), classify_login_name(tc->want));
	free(s);
}
END_TEST

START_TEST(test_pop3_pass)
{
	const struct pop3_case *tc = &pop3_pass_cases[_i];
	char *s = copy(tc->line);
	enum mon_login_class got = classify_pop3_pass(s, strlen(tc->line));

	ck_assert_msg(got == tc->want, "PASS '%s': got %s, want %s", tc->line,
		      classify_login_name(got), classify_login_name(tc->want));
	free(s);
}
END_TEST

START_TEST(test_login_states)
{
	ck_assert_int_eq(classify_login_state(MON_LOGIN_ACCEPTED), MON_CRITICAL);
	ck_assert_int_eq(classify_login_state(MON_LOGIN_CHECKED), MON_CRITICAL);
	ck_assert_int_eq(classify_login_state(MON_LOGIN_POLICY), MON_OK);
	ck_assert_int_eq(classify_login_state(MON_LOGIN_UNEXPECTED), MON_WARNING);
	for (int c = 0; c < MON_LOGIN_CLASS_COUNT; c++)
		ck_assert_str_ne(classify_login_name((enum mon_login_class)c), "?");
}
END_TEST

/* ---- greetings and tagged lines ------------------------------------------------ */

struct greeting_case {
	const char *line;
	bool imap;
	enum mon_greeting_class want;
};

static const struct greeting_case greeting_cases[] = {
	{ "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.", true,
	  MON_GREETING_OK },
	{ "* OK", true, MON_GREETING_OK },
	{ "* ok hi", true, MON_GREETING_OK },
	{ "* PREAUTH welcome", true, MON_GREETING_PREAUTH },
	{ "* BYE Too many connections", true, MON_GREETING_REFUSED },
	{ "* OKAY", true, MON_GREETING_MALFORMED },
	{ "*OK", true, MON_GREETING_MALFORMED },
	{ "+OK POP3 ready", true, MON_GREETING_MALFORMED },	/* a POP3 server on the IMAP port */
	{ "SSH-2.0-OpenSSH_9.2", true, MON_GREETING_MALFORMED },
	{ "", true, MON_GREETING_MALFORMED },
	{ "*", true, MON_GREETING_MALFORMED },
	{ "+OK Dovecot (Debian) ready.", false, MON_GREETING_OK },
	{ "+OK", false, MON_GREETING_OK },
	{ "+OK <1896.697170952@dbc.mtview.ca.us>", false, MON_GREETING_OK },
	{ "-ERR [SYS/TEMP] too busy", false, MON_GREETING_REFUSED },
	{ "* OK IMAP4rev1", false, MON_GREETING_MALFORMED },	/* an IMAP server on the POP3 port */
	{ "+OKAY", false, MON_GREETING_MALFORMED },
	{ "", false, MON_GREETING_MALFORMED },
};

START_TEST(test_greeting)
{
	const struct greeting_case *tc = &greeting_cases[_i];
	char *s = copy(tc->line);
	size_t len = strlen(tc->line);
	enum mon_greeting_class got =
		tc->imap ? classify_imap_greeting(s, len) : classify_pop3_greeting(s, len);

	ck_assert_msg(got == tc->want, "'%s' (%s): got %d, want %d", tc->line,
		      tc->imap ? "imap" : "pop3", got, tc->want);
	free(s);
}
END_TEST

START_TEST(test_tagged)
{
	const char *status = NULL;
	size_t len = 0;

	ck_assert(classify_imap_tagged("CCL1 OK done", 12, "CCL1", &status, &len));
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(memcmp(status, "OK done", 7), 0);
	ck_assert(!classify_imap_tagged("CCL12 OK done", 13, "CCL1", &status, &len));
	ck_assert(!classify_imap_tagged("CCL1", 4, "CCL1", &status, &len));
	ck_assert(!classify_imap_tagged("ccl1 OK", 7, "CCL1", &status, &len));
	ck_assert(!classify_imap_tagged("* OK", 4, "CCL1", &status, &len));
	ck_assert(!classify_imap_tagged("x", 1, "", &status, &len));
	ck_assert(classify_imap_ok("OK", 2));
	ck_assert(classify_imap_ok("ok [X] y", 8));
	ck_assert(!classify_imap_ok("OKAY", 4));
	ck_assert(!classify_imap_ok("NO", 2));
	ck_assert(classify_pop3_ok("+OK", 3));
	ck_assert(classify_pop3_ok("+OK Begin TLS", 13));
	ck_assert(!classify_pop3_ok("-ERR", 4));
	ck_assert(!classify_pop3_ok("+", 1));
}
END_TEST

/* ---- policy wording --------------------------------------------------------------- */

struct wording_case {
	const char *text;
	bool want;
};

static const struct wording_case wording_cases[] = {
	{ "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.", true },
	{ "Cleartext logins are disabled; use STARTTLS first.", true },
	{ "use STLS first", true },
	{ "TLS required", true },
	{ "(tls)", true },
	{ "ssl", true },
	{ "clear text passwords are off", true },
	{ "plain text login refused", true },
	{ "Encryption required", true },
	{ "not encrypted", true },
	{ "non-secure connection", true },
	{ "insecure connection", true },
	{ "privacy required", true },
	{ "LOGINDISABLED", true },
	{ "Login only available under a layer", true },
	{ "Authentication failed.", false },
	{ "Invalid password", false },
	{ "", false },
	{ "settlsomething", false },		/* not at a word start */
	{ "tlsx", false },			/* short words must end too */
	{ "sslvpn", false },
	{ "xstarttls", false },
	{ "security", false },
	{ "[AUTH]", false },
};

START_TEST(test_wording)
{
	const struct wording_case *tc = &wording_cases[_i];
	char *s = copy(tc->text);

	ck_assert_msg(classify_policy_wording(s, strlen(tc->text)) == tc->want, "'%s': want %d",
		      tc->text, tc->want);
	free(s);
}
END_TEST

/* ---- capabilities ------------------------------------------------------------------- */

struct imap_caps_case {
	const char *line;
	bool untagged;		/* "* CAPABILITY" rather than a [CAPABILITY] code */
	bool found, starttls, logindisabled, password_mech, literal_plus;
};

static const struct imap_caps_case imap_caps_cases[] = {
	/* Dovecot seen from another address, with disable_plaintext_auth = yes. */
	{ "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
	  "LOGINDISABLED] Dovecot (Debian) ready.",
	  false, true, true, true, false, true },
	/* The same Dovecot with plaintext allowed. */
	{ "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
	  "AUTH=PLAIN AUTH=LOGIN",
	  true, true, true, false, true, true },
	{ "* CAPABILITY IMAP4rev1 starttls logindisabled auth=login", true, true, true, true, true,
	  false },
	{ "* CAPABILITY IMAP4rev1 AUTH=CRAM-MD5 AUTH=SCRAM-SHA-256", true, true, false, false, false,
	  false },
	{ "* CAPABILITY IMAP4rev1 STARTTLSX XLOGINDISABLED AUTH=PLAINX", true, true, false, false,
	  false, false },
	{ "* CAPABILITY", true, true, false, false, false, false },
	{ "* CAPABILITYX STARTTLS", true, false, false, false, false, false },
	{ "* OK ready", false, false, false, false, false, false },
	/* Words after the code's "]" are not capabilities. */
	{ "* OK [CAPABILITY IMAP4rev1] STARTTLS LOGINDISABLED", false, true, false, false, false,
	  false },
	{ "CCL1 OK [CAPABILITY IMAP4rev1 STARTTLS] done", false, true, true, false, false, false },
};

START_TEST(test_imap_caps)
{
	const struct imap_caps_case *tc = &imap_caps_cases[_i];
	struct mon_caps caps = { 0 };
	char *s = copy(tc->line);
	size_t len = strlen(tc->line);
	bool found = tc->untagged ? caps_imap_untagged(s, len, &caps)
				  : caps_imap_response_code(s, len, &caps);

	ck_assert_msg(found == tc->found, "%s: found", tc->line);
	ck_assert_msg(caps.known == tc->found, "%s: known", tc->line);
	ck_assert_msg(caps.starttls == tc->starttls, "%s: starttls", tc->line);
	ck_assert_msg(caps.logindisabled == tc->logindisabled, "%s: logindisabled", tc->line);
	ck_assert_msg(caps.password_mech == tc->password_mech, "%s: password_mech", tc->line);
	ck_assert_msg(caps.literal_plus == tc->literal_plus, "%s: literal_plus", tc->line);
	free(s);
}
END_TEST

struct pop3_caps_case {
	const char *lines[10];
	bool starttls, user, password_mech;
};

static const struct pop3_caps_case pop3_caps_cases[] = {
	/* Dovecot from another address, disable_plaintext_auth = yes: "SASL" with no mechanisms. */
	{ { "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "SASL" },
	  true, false, false },
	/* Dovecot with plaintext allowed. */
	{ { "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "USER",
	    "SASL PLAIN LOGIN" },
	  true, true, true },
	{ { "stls", "user" }, true, true, false },
	{ { "SASL CRAM-MD5 SCRAM-SHA-1" }, false, false, false },
	{ { "SASL SCRAM-SHA-1 login" }, false, false, true },
	{ { "STLSX", "USERX", "SASLX PLAIN" }, false, false, false },
	{ { "IMPLEMENTATION STLS USER SASL PLAIN" }, false, false, false },	/* words in an argument */
};

START_TEST(test_pop3_caps)
{
	const struct pop3_caps_case *tc = &pop3_caps_cases[_i];
	struct mon_caps caps = { 0 };

	for (size_t i = 0; i < 10 && tc->lines[i] != NULL; i++) {
		char *s = copy(tc->lines[i]);

		caps_parse_pop3_line(s, strlen(tc->lines[i]), &caps);
		free(s);
	}
	ck_assert(caps.known);
	ck_assert_int_eq(caps.starttls, tc->starttls);
	ck_assert_int_eq(caps.user, tc->user);
	ck_assert_int_eq(caps.password_mech, tc->password_mech);
}
END_TEST

static Suite *classify_suite(void)
{
	Suite *s = suite_create("monitor_classify");
	TCase *tc = tcase_create("classify");

	tcase_add_loop_test(tc, test_imap_login, 0, TABLE_LEN(imap_login_cases));
	tcase_add_test(tc, test_imap_closed);
	tcase_add_loop_test(tc, test_pop3_user, 0, TABLE_LEN(pop3_user_cases));
	tcase_add_loop_test(tc, test_pop3_pass, 0, TABLE_LEN(pop3_pass_cases));
	tcase_add_test(tc, test_login_states);
	tcase_add_loop_test(tc, test_greeting, 0, TABLE_LEN(greeting_cases));
	tcase_add_test(tc, test_tagged);
	tcase_add_loop_test(tc, test_wording, 0, TABLE_LEN(wording_cases));
	tcase_add_loop_test(tc, test_imap_caps, 0, TABLE_LEN(imap_caps_cases));
	tcase_add_loop_test(tc, test_pop3_caps, 0, TABLE_LEN(pop3_caps_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(classify_suite());
}
