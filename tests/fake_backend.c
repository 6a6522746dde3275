/*
 * fake_backend.c - the scripted backend and engine of fake_backend.h.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "fake_backend.h"
#include "log.h"

#define FAKE_LINE_MAX 65536

void fake_login_init(struct fake_login *t)
{
	struct sockaddr_in *local = (struct sockaddr_in *)&t->session.local_sa;

	memset(t, 0, sizeof(*t));
	t->cfg.backend_timeout = 2;
	t->backend.name = "test";
	t->backend.tls = MG_BACKEND_TLS_NONE;
	t->backend.client_address = MG_CLIENT_ADDRESS_NONE;
	t->backend.login = MG_BACKEND_LOGIN_PASSTHROUGH;
	t->env.cfg = &t->cfg;
	t->env.link = -1;
	t->env.authd_fd = -1;
	t->session.env = &t->env;
	t->session.cfg = &t->cfg;
	t->session.backend_cfg = &t->backend;
	snprintf(t->session.backend_addr, sizeof(t->session.backend_addr), "10.0.0.5:143");
	snprintf(t->session.client_addr, sizeof(t->session.client_addr), "192.0.2.7");
	t->session.client_port = 40000;
	local->sin_family = AF_INET;
	local->sin_port = htons(143);
	local->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fake_login_set_credentials(t, "alice", 5, "secret", 6);
	t->max_line = 1024;
	t->replysize = sizeof(t->reply);
}

void fake_login_set_credentials(struct fake_login *t, const char *user, size_t user_len,
				const char *password, size_t password_len)
{
	ck_assert_uint_lt(user_len, sizeof(t->session.cred.user));
	ck_assert_uint_lt(password_len, sizeof(t->session.cred.password));
	memcpy(t->session.cred.user, user, user_len);
	t->session.cred.user_len = user_len;
	memcpy(t->session.cred.password, password, password_len);
	t->session.cred.password_len = password_len;
}

void fake_login_set_master(struct fake_login *t)
{
	t->backend.login = MG_BACKEND_LOGIN_MASTER;
	t->backend.master_user = "master";
	memcpy(t->session.master_password.value, "mpw", 3);
	t->session.master_password.len = 3;
}

/* ---- the fake's side (a child process: only _exit, never check's asserts) ---- */

static void fake_fail(int code, const char *what, const char *got, long len)
{
	fprintf(stderr, "fake backend: %s (got %ld bytes: \"%.*s\")\n", what, len,
		len > 0 ? (int)len : 0, got != NULL ? got : "");
	_exit(code);
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return;	/* the driver gave up first: what follows in the script says so */
		if (n <= 0)
			fake_fail(3, "write failed", NULL, 0);
		p += n;
		len -= (size_t)n;
	}
}

/* One line, LF included; 0 at EOF. */
static long read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len < size) {
		ssize_t n = read(fd, buf + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			break;	/* the driver closed without reading all we sent: EOF too */
		if (n < 0)
			fake_fail(3, "read failed", NULL, 0);
		if (n == 0 || buf[len++] == '\n')
			break;
	}
	return (long)len;
}

/* The driver ordered TLS: it stopped writing, then told the engine. */
static int engine_start_tls(int sock, int link, bool succeed)
{
	unsigned char msg[CHAN_MSG_MAX];
	char rest[256];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	long n = read_line(sock, rest, sizeof(rest));
	struct chan_msg m;
	int pair[2];

	if (n != 0)
		fake_fail(4, "bytes after the STARTTLS command", rest, n);
	struct pollfd pfd = { .fd = link, .events = POLLIN };

	/* chan_recv() never waits: the order may follow the EOF by a moment. */
	if (poll(&pfd, 1, -1) != 1)
		fake_fail(3, "poll failed", NULL, 0);
	n = chan_recv(link, msg, fds, &nfds);
	if (n < 1 || msg[0] != CHAN_BACKEND_START_TLS || nfds != 0)
		fake_fail(5, "no BACKEND_START_TLS on the link", NULL, n);
	close(sock);
	if (!succeed) {
		chan_msg_init(&m, CHAN_BACKEND_FAILED);
		chan_put_str(&m, "handshake failed");
		if (chan_send(link, &m, NULL, 0) < 0)
			fake_fail(3, "link send failed", NULL, 0);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
		fake_fail(3, "socketpair failed", NULL, 0);
	chan_msg_init(&m, CHAN_BACKEND_TLS_UP);
	if (chan_send(link, &m, &pair[1], 1) < 0)
		fake_fail(3, "link send failed", NULL, 0);
	close(pair[1]);
	return pair[0];
}

static void play(int sock, int link, const struct fake_step *script)
{
	static char line[FAKE_LINE_MAX];
	long n;

	for (int i = 0; script[i].op != FAKE_END; i++) {
		const struct fake_step *s = &script[i];
		size_t len = s->text == NULL ? 0 : s->len != 0 ? s->len : strlen(s->text);

		switch (s->op) {
		case FAKE_SEND:
			write_all(sock, s->text, len);
			break;
		case FAKE_SEND_LONG:
			len = strlen(s->text);
			write_all(sock, s->text, len);
			memset(line, 'x', s->len - len);
			memcpy(line + s->len - len, "\r\n", 2);
			write_all(sock, line, s->len - len + 2);
			break;
		case FAKE_EXPECT:
			n = read_line(sock, line, sizeof(line));
			if ((size_t)n != len || memcmp(line, s->text, len) != 0) {
				char what[256];

				snprintf(what, sizeof(what), "step %d: expected \"%.*s\"", i,
					 (int)(len < 200 ? len : 200), s->text);
				fake_fail(10 + i, what, line, n);
			}
			break;
		case FAKE_EOF:
			shutdown(sock, SHUT_WR);
			break;
		case FAKE_TLS:
		case FAKE_TLS_FAIL:
			sock = engine_start_tls(sock, link, s->op == FAKE_TLS);
			if (sock < 0)
				_exit(0);	/* nothing more can happen: the driver gave up */
			break;
		case FAKE_END:
			break;
		}
	}
	n = read_line(sock, line, sizeof(line));
	if (n != 0)
		fake_fail(2, "bytes after the end of the script", line, n);
	_exit(0);
}

/* ---- the test's side ---------------------------------------------------------- */

/* Keep "level: message" of each captured line: no time stamp, ident or pid. */
static void normalize_log(const char *raw, char *out, size_t size)
{
	size_t used = 0;

	for (const char *p = raw; *p != '\0';) {
		const char *eol = strchr(p, '\n');
		const char *start = strstr(p, "]: ");
		size_t len;

		if (eol == NULL)
			eol = p + strlen(p);
		start = start != NULL && start < eol ? start + 3 : p;
		len = (size_t)(eol - start);
		ck_assert_uint_lt(used + len + 1, size);
		memcpy(out + used, start, len);
		used += len;
		out[used++] = '\n';
		p = *eol == '\n' ? eol + 1 : eol;
	}
	out[used] = '\0';
}

void fake_login_run(struct fake_login *t, const struct fake_step *script, fake_login_fn login)
{
	char path[] = "/tmp/check_backend_log.XXXXXX";
	static char raw[sizeof(t->log)];
	struct mg_stream stream;
	int sock[2], link[2], logfd, saved, status;
	pid_t pid;
	ssize_t n;

	/* As in the session child: a peer that went away is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sock), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, link), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(sock[0]);
		close(link[0]);
		play(sock[1], link[1], script);
	}
	close(sock[1]);
	close(link[1]);
	ck_assert_int_eq(fcntl(sock[0], F_SETFL, O_NONBLOCK), 0);
	stream_init(&stream, sock[0], t->max_line);
	t->env.link = link[0];

	logfd = mkstemp(path);
	ck_assert_int_ge(logfd, 0);
	unlink(path);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	log_open("test", 1, MG_LOG_DEBUG);
	ck_assert_int_ge(dup2(logfd, STDERR_FILENO), 0);
	t->result = login(&t->session, &stream, t->reply, t->replysize);
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);

	/* The driver's end goes: the fake sees EOF and checks nothing more came. */
	stream_close(&stream);
	close(link[0]);
	t->env.link = -1;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	t->backend_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

	ck_assert_int_eq(lseek(logfd, 0, SEEK_SET), 0);
	n = read(logfd, raw, sizeof(raw) - 1);
	ck_assert_int_ge(n, 0);
	raw[n] = '\0';
	close(logfd);
	normalize_log(raw, t->log, sizeof(t->log));
}

void fake_login_check(const struct fake_login *t, const struct fake_case *c)
{
	ck_assert_msg(t->backend_status == 0, "%s: the fake backend's script failed (%d)",
		      c->name, t->backend_status);
	ck_assert_msg(t->result == c->result, "%s: result %d, expected %d", c->name, t->result,
		      c->result);
	if (c->result == MG_LOGIN_OK)
		ck_assert_msg(strcmp(t->reply, c->reply) == 0, "%s: reply \"%s\"", c->name,
			      t->reply);
	ck_assert_msg(strcmp(t->log, c->log) == 0, "%s: log\n%s\nexpected\n%s", c->name, t->log,
		      c->log);
}
