/*
 * auth_worker.c - a PAM auth worker: one of the small fixed pool of
 * processes the supervisor (auth_supervisor.c) forks, each in its own
 * process group, each running as root and not dumpable.
 *
 * A worker blocks in recvmsg() on the one SOCK_SEQPACKET socket all workers
 * share, so each request datagram reaches exactly one idle worker. A request
 * is taken only with exactly one descriptor, an unnamed AF_UNIX
 * SOCK_SEQPACKET socket (the session's reply socket), and the sender's pid as
 * the kernel attaches it (SO_PASSCRED), which keys the per-process request
 * count (auth_quota.c). Each request is decoded strictly (auth_frame.c),
 * counted, checked by PAM (auth_pam.c) and answered on its own reply socket.
 *
 * Master-user logins: a request may name a backend of the master-login table
 * the supervisor was started with. Only when PAM has accepted the user does
 * the worker read that backend's master_user_file (every time, so a rotated
 * password is picked up at the next login) and put the password in the OK
 * answer. Every copy it made (the request, the file's contents, the answer
 * frame) is wiped before the next request.
 *
 * Every PAM call is bounded by alarm(): the handler ends the process, since a
 * module stuck in a call cannot be unwound; the supervisor then kills the
 * worker's process group (helpers a module forked) and restarts the slot.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_pam.h"
#include "auth_process_internal.h"
#include "auth_quota.h"
#include "credfile.h"
#include "log.h"

static volatile sig_atomic_t worker_stop, worker_busy;

static void worker_on_alarm(int sig)
{
	(void)sig;
	_exit(WORKER_EXIT_TIMEOUT);
}

/*
 * Idle: finish the loop and exit cleanly. Inside a PAM call: there is no
 * safe way back out of the module, so end now (the supervisor cleans up
 * the helpers) instead of making the supervisor wait for SIGKILL.
 */
static void worker_on_term(int sig)
{
	(void)sig;
	if (worker_busy)
		_exit(0);
	worker_stop = 1;
}

/*
 * A reply socket must be what the session makes: one end of an AF_UNIX
 * SOCK_SEQPACKET socketpair, so unnamed on both sides. A socket connected to
 * some named (or abstract) service is refused: the worker runs as root, and
 * a service that trusts SCM_CREDENTIALS must never get a datagram from it on
 * a session's behalf.
 */
static bool reply_fd_ok(int fd)
{
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct stat st;
	int value;
	socklen_t len = sizeof(value);

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) < 0 || value != SOCK_SEQPACKET)
		return false;
	len = sizeof(value);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) < 0 || value != AF_UNIX)
		return false;
	/* Unnamed: the address is just the family. */
	addrlen = sizeof(addr);
	if (getsockname(fd, (struct sockaddr *)&addr, &addrlen) < 0 ||
	    addrlen != sizeof(sa_family_t))
		return false;
	addrlen = sizeof(addr);
	if (getpeername(fd, (struct sockaddr *)&addr, &addrlen) < 0 ||
	    addrlen != sizeof(sa_family_t))
		return false;
	return true;
}

/*
 * Receive one request, exactly one descriptor and the sender's credentials
 * (the kernel's, SO_PASSCRED). Returns the datagram length, 0 for a datagram
 * to drop, -1 when the session side is gone for good (every holder closed
 * it), -2 when interrupted by a signal. *reply_fd is the attached descriptor
 * or -1; any extra descriptors are closed. *sender is the sending process's
 * pid (0 when the kernel could not name it in our pid namespace).
 */
static long receive_request(int fd, unsigned char *buf, size_t size, int *reply_fd,
			    pid_t *sender, bool *truncated)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.space,
		.msg_controllen = sizeof(ctl.space),
	};
	unsigned nfds = 0, ncreds = 0;
	bool bad_control = false;
	ssize_t n;

	*reply_fd = -1;
	*sender = 0;
	*truncated = false;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EINTR)
			return -2;
		log_error("auth worker recvmsg: %s", strerror(errno));
		return -1;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t count;

		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
			struct ucred cred;

			/* memcpy: CMSG_DATA is not necessarily aligned for the struct. */
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			if (ncreds++ == 0)
				*sender = cred.pid;
			continue;
		}
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad_control = true;
			continue;
		}
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int passed;

			/* memcpy: CMSG_DATA is not necessarily int-aligned. */
			memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds++ == 0)
				*reply_fd = passed;
			else
				close(passed);
		}
	}
	if (nfds != 1 || ncreds != 1 || bad_control || (mh.msg_flags & MSG_CTRUNC) != 0 ||
	    !reply_fd_ok(*reply_fd)) {
		if (*reply_fd >= 0)
			close(*reply_fd);
		*reply_fd = -1;
		if (n == 0 && nfds == 0) {
			/*
			 * A zero read is EOF or an empty datagram: only a hang-up
			 * on the socket says the sessions are really gone.
			 */
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLHUP) != 0)
				return -1;
		}
		log_warning("auth request dropped pid=%ld: descriptors=%u credentials=%u%s, "
			    "expected one unnamed AF_UNIX SOCK_SEQPACKET socket and the "
			    "sender's credentials", (long)*sender, nfds, ncreds,
			    bad_control ? " and foreign control data" : "");
		explicit_bzero(buf, size);
		return 0;
	}
	*truncated = (mh.msg_flags & MSG_TRUNC) != 0;
	return (long)n;
}

/*
 * Answer on the request's own reply socket. master_password (NULL or empty
 * but with OK) goes into the frame, which is wiped after sending.
 */
static void send_response(int reply_fd, enum auth_status status, const char *reason,
			  const struct mg_credentials *master)
{
	unsigned char frame[AUTH_RESPONSE_MAX];
	char clean[AUTH_REASON_MAX + 1];
	char err[128];
	size_t len;

	/* PAM texts may be localised: keep the frame printable whatever they hold. */
	log_sanitize(clean, sizeof(clean), reason, strlen(reason));
	if (auth_response_encode(status, clean, strlen(clean),
				 master != NULL ? master->password : NULL,
				 master != NULL ? master->password_len : 0, frame, sizeof(frame),
				 &len, err, sizeof(err)) < 0) {
		explicit_bzero(frame, sizeof(frame));
		log_error("auth response not encoded: %s", err);
		return;		/* closing the reply socket gives the session EOF */
	}
	if (send(reply_fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len &&
	    errno != EPIPE && errno != ECONNRESET)
		log_warning("auth response not sent: %s", strerror(errno));
	explicit_bzero(frame, sizeof(frame));
}

/* Whether the session that sent this request has already given up on it. */
static bool session_gone(int reply_fd)
{
	struct pollfd pfd = { .fd = reply_fd, .events = POLLOUT };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

/*
 * Count the request against its sender's allowance. Returns true when it may
 * go on; otherwise answers (or drops) it.
 */
static bool within_quota(const struct supervisor *s, pid_t sender, const char *user,
			 int reply_fd)
{
	unsigned count = 0;
	enum auth_quota_result result = auth_quota_take(s->quota, sender, &count);

	switch (result) {
	case AUTH_QUOTA_OK:
		return true;
	case AUTH_QUOTA_OVER:
		log_warning("auth request refused pid=%ld user=%s reason=request-limit limit=%u",
			    (long)sender, user, s->max_requests);
		send_response(reply_fd, AUTH_STATUS_TEMP_FAILURE, "request-limit", NULL);
		return false;
	case AUTH_QUOTA_FULL:
		log_warning("auth request refused pid=%ld user=%s reason=request-table-full "
			    "slots=%d", (long)sender, user, AUTHD_QUOTA_SLOTS);
		send_response(reply_fd, AUTH_STATUS_TEMP_FAILURE, "request-table-full", NULL);
		return false;
	case AUTH_QUOTA_GONE:
		/* Ended before we got to it, or from outside our pid namespace. */
		log_warning("auth request refused pid=%ld user=%s reason=sender-unknown",
			    (long)sender, user);
		send_response(reply_fd, AUTH_STATUS_TEMP_FAILURE, "sender-unknown", NULL);
		return false;
	case AUTH_QUOTA_ERROR:
	case AUTH_QUOTA_RESULT_COUNT:
		break;
	}
	send_response(reply_fd, AUTH_STATUS_TEMP_FAILURE, "request-table-error", NULL);
	return false;
}

static void handle_request(const struct supervisor *s, unsigned char *buf, size_t bufsize,
			   long n, bool truncated, int reply_fd, pid_t sender)
{
	struct auth_request req;
	struct mg_credentials master;
	const char *master_file = NULL;
	char user[96], backend[AUTH_BACKEND_MAX + 1];
	char reason[AUTH_REASON_MAX + 1];
	char err[512];
	enum auth_status status;

	if (truncated || auth_request_decode(buf, (size_t)n, &req, err, sizeof(err)) < 0) {
		explicit_bzero(buf, bufsize);
		log_warning("auth request refused pid=%ld: %s", (long)sender,
			    truncated ? "oversized" : err);
		send_response(reply_fd, AUTH_STATUS_TEMP_FAILURE, "malformed-request", NULL);
		return;
	}
	explicit_bzero(buf, bufsize);
	/* Quoted and escaped: a user name cannot end its field or add one. */
	log_quote(user, sizeof(user), req.user, req.user_len);
	/* Printable already (auth_frame.c); sanitized all the same, like every name we log. */
	log_sanitize(backend, sizeof(backend), req.master_backend, req.master_backend_len);
	if (!within_quota(s, sender, user, reply_fd)) {
		auth_request_wipe(&req);
		return;
	}
	if (req.master_backend_len > 0) {
		master_file = authd_login_table_file(s->login_table, s->login_table_len,
						     req.master_backend, req.master_backend_len);
		if (master_file == NULL) {
			log_warning("auth request refused pid=%ld user=%s master_backend=%s "
				    "reason=unknown-master-backend", (long)sender, user, backend);
			auth_request_wipe(&req);
			send_response(reply_fd, AUTH_STATUS_TEMP_FAILURE, "unknown-master-backend",
				      NULL);
			return;
		}
	}
	if (session_gone(reply_fd)) {
		/* Timed out while queued: asking PAM now would only count a failure. */
		auth_request_wipe(&req);
		log_info("auth request dropped pid=%ld user=%s reason=session-gone", (long)sender,
			 user);
		return;
	}
	worker_busy = 1;
	status = auth_pam_check(s->service, req.user, req.user_len, req.password,
				req.password_len, req.rhost, s->timeout_s, reason, sizeof(reason));
	worker_busy = 0;
	credentials_wipe(&master);
	if (status == AUTH_STATUS_OK && master_file != NULL &&
	    credfile_read(master_file, &master, err, sizeof(err)) < 0) {
		/* err names the file and what is wrong with it, never the password. */
		log_error("master user file unreadable backend=%s: %s", backend, err);
		status = AUTH_STATUS_TEMP_FAILURE;
		snprintf(reason, sizeof(reason), "master-user-file");
	}
	log_info("auth check pid=%ld user=%s rhost=%s service=%s%s%s result=%s reason=%s",
		 (long)sender, user, req.rhost_len > 0 ? req.rhost : "-", s->service,
		 master_file != NULL ? " master_backend=" : "", master_file != NULL ? backend : "",
		 auth_status_name(status), reason);
	auth_request_wipe(&req);
	send_response(reply_fd, status, reason,
		      status == AUTH_STATUS_OK && master_file != NULL ? &master : NULL);
	credentials_wipe(&master);
}

_Noreturn void authd_worker_main(const struct supervisor *s)
{
	/* One byte more than the largest request, so oversize shows as MSG_TRUNC. */
	static unsigned char buf[AUTH_REQUEST_MAX + 1];
	sigset_t none;

	/*
	 * Its own process group, so the supervisor can kill it together with
	 * helpers that stayed in the group; helpers that start a session of
	 * their own (pam_exec does) are found by kill_orphans().
	 */
	setpgid(0, 0);
	authd_set_handler(SIGALRM, worker_on_alarm, 0);
	/* No SA_RESTART: SIGTERM must interrupt the blocking recvmsg(). */
	authd_set_handler(SIGTERM, worker_on_term, 0);
	authd_set_handler(SIGINT, worker_on_term, 0);
	authd_set_handler(SIGHUP, SIG_DFL, 0);
	/* pam_exec and friends waitpid() for their helpers: SIGCHLD must be default. */
	authd_set_handler(SIGCHLD, SIG_DFL, 0);
	authd_set_handler(SIGPIPE, SIG_IGN, 0);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* So ps(1) and the operator tell the root auth processes from sessions. */
	prctl(PR_SET_NAME, "mailgated-authw");
	if (getppid() != s->self)
		_exit(WORKER_EXIT_ERROR);	/* the supervisor died before the line above */
	log_set_prefix("authd-worker");
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	while (!worker_stop) {
		int reply_fd;
		pid_t sender;
		bool truncated;
		long n = receive_request(s->worker_fd, buf, sizeof(buf), &reply_fd, &sender,
					 &truncated);

		if (n == -2)
			continue;
		if (n == -1) {
			log_info("auth worker stopping: request socket closed");
			break;
		}
		if (reply_fd < 0)
			continue;
		handle_request(s, buf, sizeof(buf), n, truncated, reply_fd, sender);
		close(reply_fd);
	}
	explicit_bzero(buf, sizeof(buf));
	/*
	 * exit(), not _exit(): on an orderly stop, let the destructors of PAM
	 * modules (and of pam_wrapper in the tests) run. Every abnormal end
	 * uses _exit().
	 */
	exit(0);
}
