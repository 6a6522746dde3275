/*
 * check_session_link.c - the session child's side of its engine channel,
 * for the login penalty: link_login_failed() sends both hashes and takes
 * the delay and flags back, gives up at its deadline, and refuses a
 * malformed answer; an answer that comes after the child stopped waiting
 * is dropped by the next wait (here: the shutdown check) instead of being
 * taken for what that wait expects.
 */
#include <check.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "check_run.h"
#include "clock.h"
#include "session_link.h"

static int sp[2];	/* [0] the child's link, [1] the engine's end */

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sp), 0);
}

static void teardown(void)
{
	close(sp[0]);
	close(sp[1]);
}

static void engine_sends_penalty(uint32_t delay, uint8_t flags, bool extra_byte)
{
	struct chan_msg m;

	chan_msg_init(&m, CHAN_PENALTY);
	chan_put_u32(&m, delay);
	chan_put_u8(&m, flags);
	if (extra_byte)
		chan_put_u8(&m, 0);
	ck_assert_int_eq(chan_send(sp[1], &m, NULL, 0), 0);
}

START_TEST(report_and_answer)
{
	unsigned char buf[CHAN_MSG_MAX];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	struct chan_reader r;
	unsigned delay = 7, flags = 7;
	char err[128];
	long n;

	engine_sends_penalty(4000, 2, false);
	ck_assert_int_eq(link_login_failed(sp[0], 0x1122, 0x3344, mg_now_ms() + 2000, &delay,
					   &flags, err, sizeof(err)), 0);
	ck_assert_uint_eq(delay, 4000);
	ck_assert_uint_eq(flags, 2);
	/* what the engine got: the type and both hashes, nothing else */
	n = chan_recv(sp[1], buf, fds, &nfds);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(buf[0], CHAN_LOGIN_FAILED);
	chan_reader_init(&r, buf + 1, (size_t)n - 1);
	ck_assert(chan_get_u64(&r) == 0x1122);
	ck_assert(chan_get_u64(&r) == 0x3344);
	ck_assert(chan_reader_done(&r));
}
END_TEST

START_TEST(no_answer_by_the_deadline)
{
	unsigned delay = 7, flags = 7;
	long long t0 = mg_now_ms();
	char err[128];

	ck_assert_int_eq(link_login_failed(sp[0], 1, 2, t0 + 100, &delay, &flags, err,
					   sizeof(err)), -1);
	ck_assert_int_ge(mg_now_ms() - t0, 90);
	ck_assert_uint_eq(delay, 0);
	ck_assert_uint_eq(flags, 0);
	ck_assert_str_eq(err, "engine did not answer in time");
}
END_TEST

START_TEST(malformed_answer_refused)
{
	unsigned delay = 7, flags = 7;
	char err[128];

	engine_sends_penalty(4000, 1, true);
	ck_assert_int_eq(link_login_failed(sp[0], 1, 2, mg_now_ms() + 2000, &delay, &flags, err,
					   sizeof(err)), -1);
	ck_assert_uint_eq(delay, 0);
	ck_assert_uint_eq(flags, 0);
}
END_TEST

START_TEST(late_answer_dropped)
{
	struct chan_msg m;

	engine_sends_penalty(2000, 0, false);
	chan_msg_init(&m, CHAN_SHUTDOWN);
	ck_assert_int_eq(chan_send(sp[1], &m, NULL, 0), 0);
	ck_assert(link_shutdown_ordered(sp[0]));
	/* and nothing but a late answer is not a shutdown */
	engine_sends_penalty(2000, 0, false);
	ck_assert(!link_shutdown_ordered(sp[0]));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("session_link");
	TCase *tc = tcase_create("penalty");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, report_and_answer);
	tcase_add_test(tc, no_answer_by_the_deadline);
	tcase_add_test(tc, malformed_answer_refused);
	tcase_add_test(tc, late_answer_dropped);
	suite_add_tcase(s, tc);
	return check_run(s);
}
