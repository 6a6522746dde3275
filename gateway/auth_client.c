/*
 * auth_client.c - the session's side of a PAM check: one request datagram
 * with a fresh reply socket attached, one strictly decoded answer, all
 * within the session's deadline. A worker that dies closes the only other
 * copy of the reply socket, so the session sees EOF at once, never a hang.
 * An answer may carry the master-user password the session asked for: it is
 * checked against the question, copied once into the caller's buffer, and
 * every other copy (the datagram, the decoded answer) is wiped.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth_process.h"
#include "clock.h"
#include "log.h"

static void copy_reason(char *reason, size_t reasonlen, const char *text)
{
	if (reasonlen > 0)
		snprintf(reason, reasonlen, "%s", text);
}

/*
 * Send one datagram with one descriptor attached, waiting for room until the
 * deadline (the shared socket's buffer fills when every worker is busy).
 * Returns 0, -1 on a socket error, -2 on timeout.
 */
static int send_with_fd(int fd, const void *buf, size_t len, int passfd, long long deadline)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.space,
		.msg_controllen = sizeof(ctl.space),
	};
	struct cmsghdr *cmsg;

	memset(&ctl, 0, sizeof(ctl));
	cmsg = CMSG_FIRSTHDR(&mh);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &passfd, sizeof(int));

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int rc;

		/* MSG_DONTWAIT: the shared socket must stay blocking for the workers. */
		if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
			return -1;
		rc = poll(&pfd, 1, mg_ms_left(deadline));
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc == 0)
			return -2;
	}
}

/* Returns bytes read (0 on EOF), -1 on error, -2 on timeout; *truncated on oversize. */
static long recv_reply(int fd, unsigned char *buf, size_t size, long long deadline,
		       bool *truncated)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct iovec iov = { .iov_base = buf, .iov_len = size };
		/* No control buffer: any descriptor a peer attached is closed by the kernel. */
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;
		int rc = poll(&pfd, 1, mg_ms_left(deadline));

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (rc == 0)
			return -2;
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			/* ECONNRESET: the worker went away. */
			return errno == ECONNRESET ? 0 : -1;
		}
		*truncated = (mh.msg_flags & MSG_TRUNC) != 0;
		return (long)n;
	}
}

/* The answer's master password, checked against what was asked, into *out. */
static enum auth_status take_answer(struct auth_response *response, bool asked,
				    struct auth_secret *out, char *reason, size_t reasonlen)
{
	enum auth_status status = response->status;

	copy_reason(reason, reasonlen, response->reason);
	if (status == AUTH_STATUS_OK && asked && response->master_password.len == 0) {
		log_error("auth response refused: OK without the master password asked for");
		copy_reason(reason, reasonlen, "auth-no-master-password");
		status = AUTH_STATUS_TEMP_FAILURE;
	} else if (!asked && response->master_password.len > 0) {
		log_error("auth response refused: a master password nobody asked for");
		copy_reason(reason, reasonlen, "auth-bad-response");
		status = AUTH_STATUS_TEMP_FAILURE;
	} else if (status == AUTH_STATUS_OK && asked) {
		memcpy(out->value, response->master_password.value,
		       response->master_password.len + 1);
		out->len = response->master_password.len;
	}
	auth_response_wipe(response);
	return status;
}

enum auth_status authd_check(int request_fd, const struct mg_credentials *cred,
			     const char *rhost, const char *master_backend,
			     struct auth_secret *master_password, int timeout_ms, char *reason,
			     size_t reasonlen)
{
	unsigned char frame[AUTH_REQUEST_MAX];
	unsigned char answer[AUTH_RESPONSE_MAX + 1];
	struct auth_response response;
	long long deadline = mg_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t rhost_len = rhost != NULL ? strnlen(rhost, AUTH_RHOST_MAX + 1) : 0;
	size_t backend_len = master_backend != NULL ? strnlen(master_backend,
							      AUTH_BACKEND_MAX + 1) : 0;
	size_t len = 0;
	bool truncated = false;
	enum auth_status status;
	char err[160];
	int pair[2];
	int saved_errno;
	long n;
	int rc;

	if (master_password != NULL)
		auth_secret_wipe(master_password);
	if (backend_len > 0 && master_password == NULL) {
		log_error("auth request not sent: a master backend without room for its password");
		copy_reason(reason, reasonlen, "auth-bad-request");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	if (request_fd < 0) {
		copy_reason(reason, reasonlen, "auth-unavailable");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	/* What PAM cannot represent is the client's problem, not a fault. */
	if (cred->user_len == 0 || cred->user_len > MG_USER_MAX ||
	    cred->password_len > MG_PASSWORD_MAX ||
	    !auth_frame_secret_ok(cred->user, cred->user_len) ||
	    !auth_frame_secret_ok(cred->password, cred->password_len)) {
		copy_reason(reason, reasonlen, "unusable-credentials");
		return AUTH_STATUS_AUTH_FAILED;
	}
	if (auth_request_encode(cred->user, cred->user_len, cred->password, cred->password_len,
				rhost, rhost_len, master_backend, backend_len, frame,
				sizeof(frame), &len, err, sizeof(err)) < 0) {
		log_error("auth request not encoded: %s", err);
		copy_reason(reason, reasonlen, "auth-bad-request");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		explicit_bzero(frame, sizeof(frame));
		log_error("auth reply socket: %s", strerror(errno));
		copy_reason(reason, reasonlen, "auth-no-socket");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	rc = send_with_fd(request_fd, frame, len, pair[1], deadline);
	saved_errno = errno;
	explicit_bzero(frame, sizeof(frame));
	/* From here the worker holds the only other end of pair[0]. */
	close(pair[1]);
	if (rc < 0) {
		close(pair[0]);
		if (rc == -2) {
			copy_reason(reason, reasonlen, "auth-timeout");
		} else {
			log_error("auth request not sent: %s", strerror(saved_errno));
			copy_reason(reason, reasonlen, "auth-unavailable");
		}
		return AUTH_STATUS_TEMP_FAILURE;
	}
	n = recv_reply(pair[0], answer, sizeof(answer), deadline, &truncated);
	close(pair[0]);
	if (n == -2) {
		copy_reason(reason, reasonlen, "auth-timeout");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	if (n <= 0) {
		copy_reason(reason, reasonlen, n == 0 ? "auth-worker-died" : "auth-read-error");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	if (truncated || auth_response_decode(answer, (size_t)n, &response, err, sizeof(err)) < 0) {
		explicit_bzero(answer, sizeof(answer));
		log_error("auth response refused: %s", truncated ? "oversized" : err);
		copy_reason(reason, reasonlen, "auth-bad-response");
		return AUTH_STATUS_TEMP_FAILURE;
	}
	/* The answer may hold the master password: one copy is enough. */
	explicit_bzero(answer, sizeof(answer));
	status = take_answer(&response, backend_len > 0, master_password, reason, reasonlen);
	return status;
}
