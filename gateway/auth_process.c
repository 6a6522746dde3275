/*
 * auth_process.c - the PAM auth process: supervisor and workers (the session's
 * side of the exchange is auth_client.c).
 *
 * Process tree (forked by the master before it drops root):
 *
 *	master (drops root later)
 *	 `- supervisor (keeps root, reads no client byte, restarts workers)
 *	     `- worker x N (each its own process group; runs PAM)
 *
 * Descriptors:
 *  - one SOCK_SEQPACKET socketpair. The master keeps the session end and
 *    every session child inherits it; all workers share the other end and
 *    block in recvmsg() on it, so each request datagram reaches exactly one
 *    idle worker. No queue of our own, no dispatcher to stall.
 *  - per request, a fresh socketpair made by the session: one end travels
 *    with the request (SCM_RIGHTS) and the session closes its copy at once.
 *    The worker's copy is then the only one: if the worker dies, the session
 *    reads EOF immediately.
 *  - a lifeline pipe from the master; EOF on it stops the supervisor.
 *  - SO_PASSCRED on the workers' end: the kernel attaches the sending
 *    process's pid to every request, which the session cannot choose. It
 *    keys the per-process request count (auth_quota.c), which lives in
 *    shared memory the supervisor maps before it forks the workers.
 *
 * Master-user logins: the supervisor keeps its own copy of the backend ->
 * master_user_file table it was started with. A request may name such a
 * backend; only when PAM has accepted the user does the worker read that
 * file (every time, so a rotated password is picked up at the next login)
 * and put the password in the OK answer. Every copy it made (the request,
 * the file's contents, the answer frame) is wiped before the next request.
 *
 * Workers bound every PAM call with alarm(); the handler ends the process
 * (a module stuck in a call cannot be unwound) and the supervisor kills the
 * worker's process group (helpers a module forked), then restarts the slot,
 * backing off when a slot keeps dying young. Supervisor and workers are not
 * dumpable, so a password never reaches a core file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "auth_pam.h"
#include "auth_quota.h"
#include "auth_process.h"
#include "chan.h"
#include "config.h"
#include "credfile.h"
#include "log.h"
#include "stream.h"

#define WORKER_EXIT_ERROR	1
#define WORKER_EXIT_TIMEOUT	3	/* a PAM call outlived its alarm */

#define STOP_WAIT_MS		2000	/* workers' grace after SIGTERM */
#define MASTER_STOP_WAIT_MS	(STOP_WAIT_MS + 1000)
#define YOUNG_DEATH_MS		1000	/* a worker dying younger than this backs off */
#define RESTART_DELAY_MIN_MS	100
#define RESTART_DELAY_MAX_MS	10000


/* ======================================================================
 * Shared by supervisor and workers
 * ====================================================================== */

static void set_handler(int sig, void (*handler)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

_Static_assert(MG_MASTER_BACKENDS_MAX <= AUTHD_MASTER_LOGINS_MAX,
	       "config.c allows no more master-login backends than authd takes");
_Static_assert(MG_MASTER_BACKENDS_MAX * (AUTH_BACKEND_MAX + 1 + MG_MASTER_USER_FILE_MAX + 1) <=
	       AUTHD_LOGIN_TABLE_MAX, "every master-login table config.c allows fits");

struct worker_slot {
	pid_t pid;		/* 0: not running */
	long long started_ms;
	long long restart_at;	/* when pid is 0: the earliest time to start it again */
	unsigned young_deaths;	/* consecutive deaths before YOUNG_DEATH_MS */
};

/* The supervisor's state; its workers inherit it (read-only to them). */
struct supervisor {
	char service[AUTHD_SERVICE_MAX + 1];
	unsigned timeout_s;
	unsigned n_workers;
	unsigned max_requests;
	int worker_fd;
	int lifeline_fd;
	pid_t self;
	struct auth_quota *quota;	/* shared with every worker */
	size_t login_table_len;
	char login_table[AUTHD_LOGIN_TABLE_MAX];	/* "backend\0file\0"... */
	struct worker_slot slots[AUTHD_WORKERS_MAX];
};

/*
 * The master_user_file of backend (len bytes), in a "backend\0file\0"
 * table, or NULL. The table was built by authd_start(), so every entry is
 * two NUL-terminated strings inside it.
 */
static const char *login_table_file(const char *table, size_t table_len, const char *backend,
				    size_t len)
{
	size_t pos = 0;

	while (pos < table_len) {
		const char *name = table + pos;
		size_t name_len = strlen(name);
		const char *file = name + name_len + 1;

		if (name_len == len && memcmp(name, backend, len) == 0)
			return file;
		pos += name_len + 1 + strlen(file) + 1;
	}
	return NULL;
}

/* ======================================================================
 * Worker
 * ====================================================================== */

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
	log_sanitize(user, sizeof(user), req.user, req.user_len);
	/* Printable already (auth_frame.c); sanitized all the same, like every name we log. */
	log_sanitize(backend, sizeof(backend), req.master_backend, req.master_backend_len);
	if (!within_quota(s, sender, user, reply_fd)) {
		auth_request_wipe(&req);
		return;
	}
	if (req.master_backend_len > 0) {
		master_file = login_table_file(s->login_table, s->login_table_len,
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

static _Noreturn void worker_main(const struct supervisor *s)
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
	set_handler(SIGALRM, worker_on_alarm, 0);
	/* No SA_RESTART: SIGTERM must interrupt the blocking recvmsg(). */
	set_handler(SIGTERM, worker_on_term, 0);
	set_handler(SIGINT, worker_on_term, 0);
	set_handler(SIGHUP, SIG_DFL, 0);
	/* pam_exec and friends waitpid() for their helpers: SIGCHLD must be default. */
	set_handler(SIGCHLD, SIG_DFL, 0);
	set_handler(SIGPIPE, SIG_IGN, 0);
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

/* ======================================================================
 * Supervisor
 * ====================================================================== */

static int sup_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sup_got_term, sup_got_chld;

static void sup_on_signal(int sig)
{
	int saved = errno;
	char byte = (char)sig;

	if (sig == SIGCHLD)
		sup_got_chld = 1;
	else
		sup_got_term = 1;
	if (write(sup_pipe[1], &byte, 1) < 0) {
		/* Full pipe: the loop is awake already. */
	}
	errno = saved;
}

static void sup_drain(void)
{
	char buf[64];

	while (read(sup_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void spawn_worker(struct supervisor *s, unsigned slot)
{
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* The worker needs the request socket and the log, nothing else. */
		close(s->lifeline_fd);
		close(sup_pipe[0]);
		close(sup_pipe[1]);
		worker_main(s);
	}
	if (pid > 0)
		setpgid(pid, pid);	/* also here: no window where the group is unset */
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("auth worker fork slot=%u: %s", slot, strerror(errno));
		s->slots[slot].restart_at = stream_now_ms() + RESTART_DELAY_MAX_MS;
		return;
	}
	s->slots[slot].pid = pid;
	s->slots[slot].started_ms = stream_now_ms();
	log_debug("auth worker started slot=%u pid=%ld", slot, (long)pid);
}

static int slot_of(const struct supervisor *s, pid_t pid)
{
	for (unsigned i = 0; i < s->n_workers; i++) {
		if (s->slots[i].pid == pid)
			return (int)i;
	}
	return -1;
}

static void log_worker_end(unsigned slot, pid_t pid, int status, unsigned timeout_s)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_TIMEOUT)
		log_warning("auth worker timed out in a PAM call slot=%u pid=%ld timeout=%us",
			    slot, (long)pid, timeout_s);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("auth worker exited slot=%u pid=%ld", slot, (long)pid);
	else if (WIFEXITED(status))
		log_error("auth worker exited slot=%u pid=%ld status=%d", slot, (long)pid,
			  WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_error("auth worker died slot=%u pid=%ld signal=%d", slot, (long)pid,
			  WTERMSIG(status));
}

/*
 * Kill every child of the supervisor that is not a current worker. The
 * supervisor is a child subreaper, so helpers that PAM modules forked are
 * reparented to it when their worker dies, and pam_exec starts them in a
 * session of their own, out of reach of the worker's process group. Found
 * by scanning /proc: /proc/<pid>/task/<tid>/children is not always built in.
 */
static void kill_orphans(const struct supervisor *s)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[64], buf[512];
		const char *paren;
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		int ppid;
		ssize_t n;
		int fd;

		if (*end != '\0' || pid <= 0 || pid == (long)s->self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* The command name may hold anything: the fields start after the last ')'. */
		paren = strrchr(buf, ')');
		if (paren == NULL || sscanf(paren + 1, " %*c %d", &ppid) != 1 ||
		    ppid != (int)s->self || slot_of(s, (pid_t)pid) >= 0)
			continue;
		log_warning("auth helper left by a dead worker killed pid=%ld", pid);
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
	}
	closedir(d);
}

/*
 * Reap every dead child. Each is first looked at without reaping (WNOWAIT),
 * so its pid cannot be reused while its process group is killed: helpers a
 * PAM module forked must not outlive the worker.
 */
static void reap_workers(struct supervisor *s, bool stopping)
{
	for (;;) {
		siginfo_t si;
		int status;
		int slot;
		pid_t pid;

		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			return;
		pid = si.si_pid;
		kill(-pid, SIGKILL);
		if (waitpid(pid, &status, 0) < 0)
			continue;
		slot = slot_of(s, pid);
		if (slot < 0)
			continue;
		log_worker_end((unsigned)slot, pid, status, s->timeout_s);
		s->slots[slot].pid = 0;
		kill_orphans(s);
		if (stopping)
			continue;
		/* Bounded restart rate: a slot that keeps dying young backs off. */
		if (stream_now_ms() - s->slots[slot].started_ms < YOUNG_DEATH_MS) {
			struct worker_slot *w = &s->slots[slot];
			unsigned shift = w->young_deaths < 7 ? w->young_deaths : 7;
			long long delay = (long long)RESTART_DELAY_MIN_MS << shift;

			w->young_deaths++;
			if (delay > RESTART_DELAY_MAX_MS)
				delay = RESTART_DELAY_MAX_MS;
			w->restart_at = stream_now_ms() + delay;
			log_warning("auth worker restart delayed slot=%d delay=%lldms", slot,
				    delay);
		} else {
			s->slots[slot].young_deaths = 0;
			s->slots[slot].restart_at = stream_now_ms();
		}
	}
}

static unsigned running_workers(const struct supervisor *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->n_workers; i++)
		n += s->slots[i].pid != 0;
	return n;
}

static void signal_workers(const struct supervisor *s, int sig)
{
	for (unsigned i = 0; i < s->n_workers; i++) {
		if (s->slots[i].pid != 0) {
			kill(-s->slots[i].pid, sig);
			kill(s->slots[i].pid, sig);
		}
	}
}

static _Noreturn void supervisor_stop(struct supervisor *s, const char *why)
{
	long long deadline = stream_now_ms() + STOP_WAIT_MS;

	log_info("auth supervisor stopping reason=%s workers=%u", why, running_workers(s));
	close(s->worker_fd);
	signal_workers(s, SIGTERM);
	while (running_workers(s) > 0 && stream_ms_left(deadline) > 0) {
		struct pollfd pfd = { .fd = sup_pipe[0], .events = POLLIN };

		reap_workers(s, true);
		if (running_workers(s) == 0)
			break;
		poll(&pfd, 1, stream_ms_left(deadline));
		sup_drain();
	}
	if (running_workers(s) > 0) {
		log_warning("auth workers still running after %dms, killing them", STOP_WAIT_MS);
		signal_workers(s, SIGKILL);
		for (unsigned i = 0; i < s->n_workers; i++) {
			if (s->slots[i].pid != 0 && waitpid(s->slots[i].pid, NULL, 0) >= 0)
				s->slots[i].pid = 0;
		}
	}
	reap_workers(s, true);
	kill_orphans(s);
	/* Reap the helpers just killed, briefly: init takes any straggler. */
	deadline = stream_now_ms() + 500;
	for (;;) {
		struct timespec pause = { .tv_sec = 0, .tv_nsec = 5 * 1000 * 1000 };
		pid_t rc = waitpid(-1, NULL, WNOHANG);

		if (rc < 0 && errno != EINTR)
			break;
		if (rc == 0 && stream_ms_left(deadline) == 0)
			break;
		if (rc == 0)
			nanosleep(&pause, NULL);
	}
	_exit(0);
}

static _Noreturn void supervisor_loop(struct supervisor *s)
{
	for (unsigned i = 0; i < s->n_workers; i++)
		spawn_worker(s, i);
	log_info("auth supervisor ready pid=%ld service=%s workers=%u timeout=%us "
		 "requests_per_session=%u", (long)s->self, s->service, s->n_workers, s->timeout_s,
		 s->max_requests);

	for (;;) {
		struct pollfd pfds[2] = {
			{ .fd = s->lifeline_fd, .events = POLLIN },
			{ .fd = sup_pipe[0], .events = POLLIN },
		};
		long long now = stream_now_ms();
		int timeout = -1;

		for (unsigned i = 0; i < s->n_workers; i++) {
			struct worker_slot *slot = &s->slots[i];

			if (slot->pid != 0)
				continue;
			if (slot->restart_at <= now) {
				spawn_worker(s, i);
				if (slot->pid != 0)
					log_info("auth worker restarted slot=%u pid=%ld", i,
						 (long)slot->pid);
			}
			if (slot->pid == 0) {
				int wait = stream_ms_left(slot->restart_at);

				if (timeout < 0 || wait < timeout)
					timeout = wait;
			}
		}
		if (poll(pfds, 2, timeout) < 0 && errno != EINTR)
			supervisor_stop(s, "poll-error");
		if (pfds[1].revents != 0)
			sup_drain();
		if (sup_got_term)
			supervisor_stop(s, "signal");
		if (pfds[0].revents != 0) {
			char byte;
			ssize_t n = read(s->lifeline_fd, &byte, 1);

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				supervisor_stop(s, "master-gone");
		}
		if (sup_got_chld) {
			sup_got_chld = 0;
			reap_workers(s, false);
		}
	}
}

static _Noreturn void supervisor_main(const struct authd_options *opt,
				      const struct authd *started, int worker_fd, int lifeline_fd,
				      pid_t master)
{
	static struct supervisor s;
	int keep[2] = { worker_fd, lifeline_fd };
	char err[256];
	sigset_t none;

	memset(&s, 0, sizeof(s));
	snprintf(s.service, sizeof(s.service), "%s", opt->service);
	s.timeout_s = opt->timeout_s;
	s.n_workers = opt->workers;
	s.max_requests = started->max_requests;
	/* Our own copy: nothing of the master's configuration is used after this. */
	memcpy(s.login_table, started->login_table, started->login_table_len);
	s.login_table_len = started->login_table_len;
	s.worker_fd = worker_fd;
	s.lifeline_fd = lifeline_fd;
	s.self = getpid();

	/* The master's handlers write to its own pipe: none of them may run here. */
	set_handler(SIGTERM, sup_on_signal, SA_RESTART);
	set_handler(SIGINT, sup_on_signal, SA_RESTART);
	set_handler(SIGCHLD, sup_on_signal, SA_RESTART | SA_NOCLDSTOP);
	set_handler(SIGHUP, SIG_IGN, 0);	/* reloading is the master's business */
	set_handler(SIGPIPE, SIG_IGN, 0);
	set_handler(SIGALRM, SIG_DFL, 0);
	set_handler(SIGUSR1, SIG_DFL, 0);
	set_handler(SIGUSR2, SIG_DFL, 0);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NAME, "mailgated-authd");
	/* Orphans of dead workers come to us, so kill_orphans() can find them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* Belt and braces with the lifeline: a master killed outright stops us too. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(0);
	chan_close_all_but(keep, 2);
	log_set_prefix("authd");
	if (pipe2(sup_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("auth supervisor pipe: %s", strerror(errno));
		_exit(1);
	}
	/* Before any worker: they all share this one table, and it stays across restarts. */
	s.quota = auth_quota_create(AUTHD_QUOTA_SLOTS, s.max_requests, err, sizeof(err));
	if (s.quota == NULL) {
		log_error("auth supervisor: %s", err);
		_exit(1);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	supervisor_loop(&s);
}

/* ======================================================================
 * Master side
 * ====================================================================== */

/* A PAM service names a file under /etc/pam.d, a backend a config section. */
static bool name_ok(const char *name, size_t max)
{
	size_t len = name != NULL ? strnlen(name, max + 1) : 0;

	if (len == 0 || len > max)
		return false;
	/* No '/', nothing odd. */
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Serialise the master-login table into out's own storage. */
static int build_login_table(const struct authd_options *opt, struct authd *out, char *err,
			     size_t errlen)
{
	size_t used = 0;

	if (opt->n_master_logins > AUTHD_MASTER_LOGINS_MAX ||
	    (opt->n_master_logins > 0 && opt->master_logins == NULL)) {
		snprintf(err, errlen, "master-login backends %zu over %d", opt->n_master_logins,
			 AUTHD_MASTER_LOGINS_MAX);
		return -1;
	}
	for (size_t i = 0; i < opt->n_master_logins; i++) {
		const struct authd_master_login *m = &opt->master_logins[i];
		size_t name_len, file_len;

		if (!name_ok(m->backend, AUTH_BACKEND_MAX)) {
			snprintf(err, errlen, "master-login backend name must be 1..%d letters, "
				 "digits, '.', '_' or '-'", AUTH_BACKEND_MAX);
			return -1;
		}
		if (login_table_file(out->login_table, used, m->backend, strlen(m->backend)) !=
		    NULL) {
			snprintf(err, errlen, "master-login backend %s given twice", m->backend);
			return -1;
		}
		name_len = strlen(m->backend);
		file_len = m->file != NULL ? strlen(m->file) : 0;
		if (file_len == 0) {
			snprintf(err, errlen, "master-login backend %s has no master_user_file",
				 m->backend);
			return -1;
		}
		if (AUTHD_LOGIN_TABLE_MAX - used < name_len + 1 + file_len + 1) {
			snprintf(err, errlen, "master-login table over %d bytes",
				 AUTHD_LOGIN_TABLE_MAX);
			return -1;
		}
		memcpy(out->login_table + used, m->backend, name_len + 1);
		used += name_len + 1;
		memcpy(out->login_table + used, m->file, file_len + 1);
		used += file_len + 1;
	}
	out->login_table_len = used;
	return 0;
}

int authd_start(const struct authd_options *opt, struct authd *out, char *err, size_t errlen)
{
	int sp[2], lifeline[2];
	int one = 1;
	sigset_t all, old;
	pid_t master = getpid();
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->request_fd = -1;
	out->lifeline_fd = -1;
	if (!name_ok(opt->service, AUTHD_SERVICE_MAX) || opt->service[0] == '.') {
		snprintf(err, errlen, "PAM service name must be 1..%d letters, digits, '.', '_' "
			 "or '-'", AUTHD_SERVICE_MAX);
		return -1;
	}
	if (opt->workers < 1 || opt->workers > AUTHD_WORKERS_MAX) {
		snprintf(err, errlen, "auth workers %u outside 1..%d", opt->workers,
			 AUTHD_WORKERS_MAX);
		return -1;
	}
	if (opt->timeout_s < 1 || opt->timeout_s > AUTHD_TIMEOUT_MAX) {
		snprintf(err, errlen, "auth timeout %us outside 1..%d", opt->timeout_s,
			 AUTHD_TIMEOUT_MAX);
		return -1;
	}
	/* 0 is refused, not read as "unlimited". */
	if (opt->max_requests_per_session < 1 ||
	    opt->max_requests_per_session > AUTHD_REQUESTS_MAX) {
		snprintf(err, errlen, "auth requests per session %u outside 1..%d",
			 opt->max_requests_per_session, AUTHD_REQUESTS_MAX);
		return -1;
	}
	if (build_login_table(opt, out, err, errlen) < 0) {
		memset(out->login_table, 0, sizeof(out->login_table));
		out->login_table_len = 0;
		return -1;
	}
	out->max_requests = opt->max_requests_per_session;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		snprintf(err, errlen, "auth socketpair: %s", strerror(errno));
		return -1;
	}
	/* Every request then arrives with its sender's pid, as the kernel knows it. */
	if (setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "auth socket SO_PASSCRED: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pipe2(lifeline, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "auth lifeline pipe: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	/* Unwritten stdio output would otherwise be written again by the children. */
	fflush(NULL);
	/* No handler of the master may run in the child before it installs its own. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		supervisor_main(opt, out, sp[1], lifeline[0], master);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sp[1]);
	close(lifeline[0]);
	if (pid < 0) {
		snprintf(err, errlen, "auth supervisor fork: %s", strerror(errno));
		close(sp[0]);
		close(lifeline[1]);
		return -1;
	}
	out->running = true;
	out->request_fd = sp[0];
	out->lifeline_fd = lifeline[1];
	out->supervisor = pid;
	return 0;
}

int authd_options_from_config(const struct mg_config *cfg, struct authd_options *opt,
			      struct authd_master_login *table, char *err, size_t errlen)
{
	size_t n = 0;

	memset(opt, 0, sizeof(*opt));
	opt->service = cfg->pam_service;
	opt->workers = cfg->auth_workers;
	opt->timeout_s = cfg->auth_timeout;
	/* A session makes at most max_auth_failures failed logins, then closes. */
	opt->max_requests_per_session = cfg->max_auth_failures;
	for (size_t i = 0; i < cfg->n_backends; i++) {
		const struct mg_backend_config *b = &cfg->backends[i];

		if (b->login != MG_BACKEND_LOGIN_MASTER)
			continue;
		if (n == AUTHD_MASTER_LOGINS_MAX) {
			snprintf(err, errlen, "more than %d backends with backend_login = master",
				 AUTHD_MASTER_LOGINS_MAX);
			return -1;
		}
		table[n].backend = b->name;
		table[n].file = b->master_user_file;
		n++;
	}
	opt->master_logins = table;
	opt->n_master_logins = n;
	return 0;
}

bool authd_same_limits(const struct authd *authd, const struct authd_options *opt)
{
	size_t entries = 0;

	if (authd->max_requests != opt->max_requests_per_session)
		return false;
	for (size_t pos = 0; pos < authd->login_table_len; entries++) {
		const char *name = authd->login_table + pos;
		const char *file = name + strlen(name) + 1;

		pos += strlen(name) + 1 + strlen(file) + 1;
	}
	if (entries != opt->n_master_logins)
		return false;
	for (size_t i = 0; i < opt->n_master_logins; i++) {
		const struct authd_master_login *m = &opt->master_logins[i];
		const char *file;

		if (m->backend == NULL || m->file == NULL)
			return false;
		/* A name twice could stand in for one that is missing. */
		for (size_t k = 0; k < i; k++) {
			if (strcmp(opt->master_logins[k].backend, m->backend) == 0)
				return false;
		}
		file = login_table_file(authd->login_table, authd->login_table_len, m->backend,
					strlen(m->backend));
		if (file == NULL || strcmp(file, m->file) != 0)
			return false;
	}
	return true;
}

void authd_session_init(struct authd *authd)
{
	if (!authd->running || authd->lifeline_fd < 0)
		return;
	close(authd->lifeline_fd);
	authd->lifeline_fd = -1;
}

void authd_stop(struct authd *authd)
{
	long long deadline = stream_now_ms() + MASTER_STOP_WAIT_MS;
	pid_t pid = authd->supervisor;

	if (!authd->running)
		return;
	authd->running = false;
	if (authd->request_fd >= 0)
		close(authd->request_fd);
	if (authd->lifeline_fd >= 0)
		close(authd->lifeline_fd);
	authd->request_fd = -1;
	authd->lifeline_fd = -1;
	authd->supervisor = 0;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (;;) {
		int status;
		pid_t rc = waitpid(pid, &status, WNOHANG);
		struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };

		/* ECHILD: the caller's own SIGCHLD handling reaped it already. */
		if (rc == pid || (rc < 0 && errno != EINTR))
			return;
		if (stream_ms_left(deadline) == 0)
			break;
		nanosleep(&pause, NULL);
	}
	log_warning("auth supervisor pid=%ld did not stop, killing it", (long)pid);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
