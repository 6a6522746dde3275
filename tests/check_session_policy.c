/*
 * check_session_policy.c - the pre-login limits both front ends share
 * (gateway/session_policy.c): every bad command and failed login is
 * answered, the one at the limit is followed by the protocol's goodbye and
 * ends the session with its reason, and an answer that cannot be sent ends
 * it too. The front ends' dialogues are in check_imap_frontend.c and
 * check_pop3_frontend.c.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "session_policy.h"
#include "check_run.h"

struct policy_test {
	struct mg_config cfg;
	struct mg_session session;
	int peer;		/* the client's end */
};

static void setup(struct policy_test *t, const struct mg_protocol_ops *ops)
{
	int pair[2];

	memset(t, 0, sizeof(*t));
	signal(SIGPIPE, SIG_IGN);
	t->cfg.max_bad_commands = 3;
	t->cfg.max_commands_before_login = 50;
	t->cfg.max_auth_failures = 2;
	t->cfg.auth_failure_delay_ms = 0;
	t->session.cfg = &t->cfg;
	t->session.ops = ops;
	t->session.login_deadline = mg_now_ms() + 10000;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	ck_assert_int_eq(fcntl(pair[0], F_SETFL, O_NONBLOCK), 0);
	stream_init(&t->session.client, pair[0], 1024);
	t->peer = pair[1];
}

static void teardown(struct policy_test *t)
{
	stream_close(&t->session.client);
	if (t->peer >= 0)
		close(t->peer);
}

/* Everything the session wrote so far (it never blocks: a socketpair buffers it). */
static void expect_written(struct policy_test *t, const char *want)
{
	char got[1024];
	ssize_t n;

	ck_assert_int_eq(fcntl(t->peer, F_SETFL, O_NONBLOCK), 0);
	n = read(t->peer, got, sizeof(got) - 1);
	if (n < 0)
		n = 0;
	got[n] = '\0';
	ck_assert_str_eq(got, want);
}

/*
 * The session ended with reason: the lines before, then the protocol's
 * goodbye with text, were written; no bad command was counted for it.
 */
static void expect_ended(struct policy_test *t, const char *before, const char *text,
			 const char *reason)
{
	char want[256];

	snprintf(want, sizeof(want), "%s%s %s\r\n", before, t->session.ops->goodbye, text);
	expect_written(t, want);
	ck_assert_str_eq(t->session.end_reason, reason);
	ck_assert_uint_eq(t->session.bad_commands, 0);
}

START_TEST(test_bad_commands_imap)
{
	struct policy_test t;

	setup(&t, &imap_protocol);
	ck_assert_int_eq(session_bad_command(&t.session, "%s BAD %s", "a", "one"), 0);
	ck_assert_int_eq(session_bad_command(&t.session, "%s BAD %s", "b", "two"), 0);
	expect_written(&t, "a BAD one\r\nb BAD two\r\n");
	ck_assert_ptr_null(t.session.end_reason);
	ck_assert_int_eq(session_bad_command(&t.session, "c NO [TOOBIG] big"), -1);
	expect_written(&t, "c NO [TOOBIG] big\r\n* BYE Too many invalid commands.\r\n");
	ck_assert_str_eq(t.session.end_reason, "too-many-bad-commands");
	ck_assert_uint_eq(t.session.bad_commands, 3);
	teardown(&t);
}
END_TEST

START_TEST(test_bad_commands_pop3)
{
	struct policy_test t;

	setup(&t, &pop3_protocol);
	t.cfg.max_bad_commands = 1;
	ck_assert_int_eq(session_bad_command(&t.session, "-ERR %s", "Unknown command."), -1);
	expect_written(&t, "-ERR Unknown command.\r\n-ERR Too many invalid commands.\r\n");
	ck_assert_str_eq(t.session.end_reason, "too-many-bad-commands");
	teardown(&t);
}
END_TEST

/* session_login() counts failures; the policy answers and applies the limit. */
START_TEST(test_failed_logins)
{
	struct policy_test t;

	setup(&t, _i == 0 ? &imap_protocol : &pop3_protocol);
	t.session.auth_failures = 1;
	ck_assert_int_eq(session_login_failed(&t.session, "x NO failed"), 0);
	expect_written(&t, "x NO failed\r\n");
	ck_assert_ptr_null(t.session.end_reason);
	t.session.auth_failures = 2;
	ck_assert_int_eq(session_login_failed(&t.session, "y NO failed"), -1);
	/* Failed logins are not bad commands. */
	expect_ended(&t, "y NO failed\r\n", "Too many failed logins.", "too-many-auth-failures");
	teardown(&t);
}
END_TEST

/* The client is gone: the answer cannot be sent, and the session ends at once. */
START_TEST(test_answer_not_sent)
{
	struct policy_test t;

	setup(&t, &imap_protocol);
	close(t.peer);
	t.peer = -1;
	ck_assert_int_eq(session_bad_command(&t.session, "a BAD x"), -1);
	ck_assert_str_eq(t.session.end_reason, "write-error");
	ck_assert_uint_eq(t.session.bad_commands, 0);
	t.session.end_reason = NULL;
	ck_assert_int_eq(session_login_failed(&t.session, "a NO x"), -1);
	ck_assert_str_eq(t.session.end_reason, "write-error");
	teardown(&t);
}
END_TEST

/* The failure delay is waited before the answer (between half and 1.5 times the base). */
START_TEST(test_failure_delay)
{
	struct policy_test t;
	long long start;

	setup(&t, &pop3_protocol);
	t.cfg.auth_failure_delay_ms = 200;
	t.session.auth_failures = 1;
	start = mg_now_ms();
	ck_assert_int_eq(session_login_failed(&t.session, "-ERR [AUTH] failed"), 0);
	ck_assert_int_ge(mg_now_ms() - start, 100);
	expect_written(&t, "-ERR [AUTH] failed\r\n");
	teardown(&t);
}
END_TEST

/* Every command counts, valid or not: the one past the limit gets the goodbye, not an answer. */
START_TEST(test_commands_counted)
{
	struct policy_test t;

	setup(&t, _i == 0 ? &imap_protocol : &pop3_protocol);
	t.cfg.max_commands_before_login = 3;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(session_command_allowed(&t.session), 0);
	expect_written(&t, "");
	ck_assert_ptr_null(t.session.end_reason);
	ck_assert_int_eq(session_command_allowed(&t.session), -1);
	/* They are not bad commands. */
	expect_ended(&t, "", "Too many commands before login.", "too-many-commands");
	teardown(&t);
}
END_TEST

/* A command read after the deadline (it was pipelined: no read waited) is not run. */
START_TEST(test_command_after_deadline)
{
	struct policy_test t;

	setup(&t, _i == 0 ? &imap_protocol : &pop3_protocol);
	ck_assert_int_eq(session_within_deadline(&t.session), 0);
	t.session.login_deadline = mg_now_ms() - 1;
	ck_assert_int_eq(session_command_allowed(&t.session), -1);
	expect_ended(&t, "", "Disconnected for inactivity.", "login-timeout");
	ck_assert_uint_eq(t.session.commands, 0);
	t.session.end_reason = NULL;
	ck_assert_int_eq(session_within_deadline(&t.session), -1);
	ck_assert_str_eq(t.session.end_reason, "login-timeout");
	teardown(&t);
}
END_TEST

/*
 * A client that does not read: before login an answer waits no longer than
 * the login deadline; after login a fresh write deadline applies.
 */
START_TEST(test_write_bounded_by_deadline)
{
	struct policy_test t;
	char block[4096];
	long long start;

	setup(&t, &imap_protocol);
	memset(block, 'x', sizeof(block));
	while (send(t.session.client.fd, block, sizeof(block), MSG_DONTWAIT) > 0)
		;
	start = mg_now_ms();
	t.session.login_deadline = start + 300;
	ck_assert_int_eq(session_reply(&t.session, "a OK NOOP completed."), -1);
	ck_assert_int_ge(mg_now_ms() - start, 250);
	ck_assert_int_lt(mg_now_ms() - start, 5000);
	ck_assert_str_eq(t.session.end_reason, "login-timeout");
	t.session.logged_in = true;
	ck_assert_int_gt(session_write_deadline(&t.session), mg_now_ms() + 10000);
	teardown(&t);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("session_policy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_bad_commands_imap);
	tcase_add_test(tc, test_bad_commands_pop3);
	tcase_add_loop_test(tc, test_failed_logins, 0, 2);
	tcase_add_test(tc, test_answer_not_sent);
	tcase_add_test(tc, test_failure_delay);
	tcase_add_loop_test(tc, test_commands_counted, 0, 2);
	tcase_add_loop_test(tc, test_command_after_deadline, 0, 2);
	tcase_add_test(tc, test_write_bounded_by_deadline);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
