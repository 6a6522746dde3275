/*
 * net_connect.c - a non-blocking connect with a deadline (see net_connect.h).
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "clock.h"
#include "net_connect.h"

/* close() without losing the errno that explains why. */
static void close_keep_errno(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
}

int net_connect_start(const struct sockaddr *sa, socklen_t salen, int *fd_out)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, sa, salen) == 0) {
		*fd_out = fd;
		return 0;
	}
	/* EINTR: the connect goes on in the background, as with EINPROGRESS. */
	if (errno == EINPROGRESS || errno == EINTR) {
		*fd_out = fd;
		return 1;
	}
	close_keep_errno(fd);
	return -1;
}

int net_connect_result(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return errno != 0 ? errno : EIO;
	return soerr;
}

int net_connect(const struct sockaddr *sa, socklen_t salen, long long deadline, int *fd_out)
{
	int fd = -1;
	int rc = net_connect_start(sa, salen, &fd);
	int soerr;

	if (rc <= 0) {
		if (rc == 0)
			*fd_out = fd;
		return rc;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int left = mg_ms_left(deadline);
		int n;

		if (left == 0) {
			close(fd);
			errno = ETIMEDOUT;
			return NET_CONNECT_TIMEOUT;
		}
		n = poll(&pfd, 1, left);
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			close_keep_errno(fd);
			return -1;
		}
	}
	soerr = net_connect_result(fd);
	if (soerr != 0) {
		close(fd);
		errno = soerr;
		return -1;
	}
	*fd_out = fd;
	return 0;
}
