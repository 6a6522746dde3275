/*
 * check_net_connect.c - the connect with a deadline (lib/net_connect.c), on
 * loopback only: a listening socket is reached; a bound port nobody listens
 * on is refused (the test holds the port, so no one else can take it); a
 * listener whose accept queue is full is a timeout at the deadline, not
 * before and not much after, and at once when the deadline has already
 * passed, leaving no socket either way; an address family no socket exists
 * for fails at once; the two steps an event loop uses (start, then result)
 * tell a refusal the same way.
 *
 * The full queue: a listener with backlog 0 holds one connection nobody
 * accepts (poll() on it reports the queued connection, so the test knows it
 * is there without sleeping); Linux then drops every further SYN, and the
 * client's connect stays in progress (the first retransmission comes after
 * a second, later than the test's deadline).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "clock.h"
#include "net_connect.h"

#define DEADLINE_MS	300	/* for the timeout case */
#define SLACK_MS	2000	/* how much later than the deadline a loaded machine may return */

/* A TCP socket bound to an ephemeral port on 127.0.0.1; its address in *addr. */
static int bound_socket(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/*
 * A listener whose accept queue is full: backlog 0 and one connection that
 * nobody accepts. poll() reports the queued connection, so it is there
 * before the caller goes on. Returns the listener; *first is that connection.
 */
static int full_listener(struct sockaddr_in *addr, int *first)
{
	int listener = bound_socket(addr);
	struct pollfd pfd = { .fd = listener, .events = POLLIN };

	ck_assert_int_eq(listen(listener, 0), 0);
	ck_assert_int_eq(net_connect((struct sockaddr *)addr, sizeof(*addr), mg_now_ms() + 10000,
				     first), 0);
	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	return listener;
}

START_TEST(listening_socket_connects)
{
	struct sockaddr_in addr;
	int listener = bound_socket(&addr);
	int fd = -1, peer;

	ck_assert_int_eq(listen(listener, 4), 0);
	ck_assert_int_eq(net_connect((struct sockaddr *)&addr, sizeof(addr), mg_now_ms() + 10000,
				     &fd), 0);
	ck_assert_int_ge(fd, 0);
	/* Left non-blocking and close-on-exec, as promised. */
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(net_connect_result(fd), 0);
	/* And it is really connected to the listener: a byte gets across. */
	peer = accept(listener, NULL, NULL);
	ck_assert_int_ge(peer, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	{
		char c = 0;

		ck_assert_int_eq(read(peer, &c, 1), 1);
		ck_assert_int_eq(c, 'x');
	}
	close(peer);
	close(fd);
	close(listener);
}
END_TEST

START_TEST(closed_port_refused)
{
	struct sockaddr_in addr;
	int holder = bound_socket(&addr);	/* bound, never listening */
	int fd = -1234;
	int before = open_fds();

	errno = 0;
	ck_assert_int_eq(net_connect((struct sockaddr *)&addr, sizeof(addr), mg_now_ms() + 10000,
				     &fd), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	ck_assert_int_eq(fd, -1234);	/* untouched on failure */
	ck_assert_int_eq(open_fds(), before);
	close(holder);
}
END_TEST

START_TEST(full_backlog_times_out_at_deadline)
{
	struct sockaddr_in addr;
	int first = -1, fd = -1234;
	int listener = full_listener(&addr, &first);
	int before = open_fds();
	long long start, took;

	start = mg_now_ms();
	errno = 0;
	ck_assert_int_eq(net_connect((struct sockaddr *)&addr, sizeof(addr), start + DEADLINE_MS,
				     &fd), NET_CONNECT_TIMEOUT);
	took = mg_now_ms() - start;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_int_ge(took, DEADLINE_MS);
	ck_assert_int_lt(took, DEADLINE_MS + SLACK_MS);
	ck_assert_int_eq(fd, -1234);
	ck_assert_int_eq(open_fds(), before);
	/* A deadline passed before the call: a timeout at once, no socket left either. */
	ck_assert_int_eq(net_connect((struct sockaddr *)&addr, sizeof(addr), mg_now_ms() - 1, &fd),
			 NET_CONNECT_TIMEOUT);
	ck_assert_int_eq(fd, -1234);
	ck_assert_int_eq(open_fds(), before);
	close(first);
	close(listener);
}
END_TEST

START_TEST(unsupported_family_fails_at_once)
{
	struct sockaddr sa;
	int fd = -1234;

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_MAX + 1;	/* no such family */
	errno = 0;
	ck_assert_int_eq(net_connect(&sa, sizeof(sa), mg_now_ms() + 10000, &fd), -1);
	ck_assert_int_eq(errno, EAFNOSUPPORT);
	ck_assert_int_eq(fd, -1234);
}
END_TEST

START_TEST(start_and_result_in_two_steps)
{
	struct sockaddr_in addr;
	int holder = bound_socket(&addr);	/* bound, never listening: refused */
	struct pollfd pfd = { .events = POLLOUT };
	int fd = -1;
	int rc = net_connect_start((struct sockaddr *)&addr, sizeof(addr), &fd);

	if (rc == -1) {
		/* Refused within connect() itself: allowed, and said by errno. */
		ck_assert_int_eq(errno, ECONNREFUSED);
	} else {
		ck_assert_int_eq(rc, 1);
		pfd.fd = fd;
		ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
		ck_assert_int_eq(net_connect_result(fd), ECONNREFUSED);
		close(fd);
	}
	/* A descriptor that is not a socket: the error getsockopt gives. */
	ck_assert_int_eq(net_connect_result(-1), EBADF);
	close(holder);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("net_connect");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, listening_socket_connects);
	tcase_add_test(tc, closed_port_refused);
	tcase_add_test(tc, full_backlog_times_out_at_deadline);
	tcase_add_test(tc, unsupported_family_fails_at_once);
	tcase_add_test(tc, start_and_result_in_two_steps);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
