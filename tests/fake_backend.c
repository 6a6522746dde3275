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
#include "clock.h"
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

/*
 * The driver ordered TLS: it stopped writing, then told the engine. Returns
 * the order's length (type in msg[0]) after checking it is want.
 */
static long engine_order(int sock, int link, enum chan_type want, unsigned char *msg)
{
	char rest[256];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	long n = read_line(sock, rest, sizeof(rest));
	struct pollfd pfd = { .fd = link, .events = POLLIN };

	if (n != 0)
		fake_fail(4, "bytes after the STARTTLS command", rest, n);
	/* chan_recv() never waits: the order may follow the EOF by a moment. */
	if (poll(&pfd, 1, -1) != 1)
		fake_fail(3, "poll failed", NULL, 0);
	n = chan_recv(link, msg, fds, &nfds);
	if (n < 1 || msg[0] != want || nfds != 0)
		fake_fail(5, want == CHAN_START_TLS ? "no START_TLS on the link"
						    : "no BACKEND_START_TLS on the link", NULL, n);
	close(sock);
	return n;
}

/* A new channel for the driver, sent with m; returns our end of it. */
static int hand_over_channel(int link, struct chan_msg *m)
{
	int pair[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
		fake_fail(3, "socketpair failed", NULL, 0);
	if (chan_send(link, m, &pair[1], 1) < 0)
		fake_fail(3, "link send failed", NULL, 0);
	close(pair[1]);
	return pair[0];
}

static int engine_start_tls(int sock, int link, bool succeed)
{
	unsigned char msg[CHAN_MSG_MAX];
	struct chan_msg m;

	engine_order(sock, link, CHAN_BACKEND_START_TLS, msg);
	if (!succeed) {
		chan_msg_init(&m, CHAN_BACKEND_FAILED);
		chan_put_str(&m, "handshake failed");
		if (chan_send(link, &m, NULL, 0) < 0)
			fake_fail(3, "link send failed", NULL, 0);
		return -1;
	}
	chan_msg_init(&m, CHAN_BACKEND_TLS_UP);
	return hand_over_channel(link, &m);
}

/*
 * As the engine on the client leg: the order carries the go-ahead line the
 * engine writes in the clear before the handshake; it must be expect. A
 * failed handshake closes the link (the engine ends the session).
 */
static int engine_client_tls(int sock, int link, const char *expect, size_t len, bool succeed)
{
	unsigned char msg[CHAN_MSG_MAX];
	long n = engine_order(sock, link, CHAN_START_TLS, msg);
	struct chan_reader r;
	const unsigned char *reply;
	size_t reply_len;
	struct chan_msg m;

	chan_reader_init(&r, msg + 1, (size_t)n - 1);
	chan_get_bytes(&r, &reply, &reply_len, CHAN_REPLY_MAX);
	if (!chan_reader_done(&r) || reply == NULL || reply_len != len ||
	    memcmp(reply, expect, len) != 0)
		fake_fail(6, "START_TLS with another go-ahead line", (const char *)reply,
			  (long)reply_len);
	if (!succeed) {
		close(link);
		return -1;
	}
	chan_msg_init(&m, CHAN_TLS_UP);
	chan_put_str(&m, "TLSv1.3");
	chan_put_str(&m, "TEST_CIPHER");
	chan_put_str(&m, "");	/* no SNI name, as for a client that sent none */
	return hand_over_channel(link, &m);
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
		case FAKE_CLIENT_TLS:
		case FAKE_CLIENT_TLS_FAIL:
			sock = engine_client_tls(sock, link, s->text, len, s->op == FAKE_CLIENT_TLS);
			if (sock < 0)
				_exit(0);
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

/* The fake's process, and the test's ends of the stream and the link. */
struct fake_run {
	pid_t pid;
	int sock;
	int link;
	int logfd;
	int saved_stderr;
};

/* Fork the fake on its script, then capture the log (stderr, debug level). */
static void fake_start(struct fake_run *run, const struct fake_step *script)
{
	char path[] = "/tmp/check_fake_log.XXXXXX";
	int sock[2], link[2];

	/* As in the session child: a peer that went away is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sock), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, link), 0);
	run->pid = fork();
	ck_assert_int_ge(run->pid, 0);
	if (run->pid == 0) {
		close(sock[0]);
		close(link[0]);
		play(sock[1], link[1], script);
	}
	close(sock[1]);
	close(link[1]);
	ck_assert_int_eq(fcntl(sock[0], F_SETFL, O_NONBLOCK), 0);
	run->sock = sock[0];
	run->link = link[0];

	run->logfd = mkstemp(path);
	ck_assert_int_ge(run->logfd, 0);
	unlink(path);
	run->saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(run->saved_stderr, 0);
	log_open("test", 1, MG_LOG_DEBUG);
	ck_assert_int_ge(dup2(run->logfd, STDERR_FILENO), 0);
}

/*
 * The driver is done (it has closed its stream): stop capturing, close the
 * link so the fake sees EOF, and collect its status and the log.
 */
static int fake_finish(struct fake_run *run, char *log, size_t logsize)
{
	static char raw[16384];
	int status;
	ssize_t n;

	ck_assert_int_ge(dup2(run->saved_stderr, STDERR_FILENO), 0);
	close(run->saved_stderr);
	close(run->link);
	ck_assert_int_eq(waitpid(run->pid, &status, 0), run->pid);

	ck_assert_int_eq(lseek(run->logfd, 0, SEEK_SET), 0);
	n = read(run->logfd, raw, sizeof(raw) - 1);
	ck_assert_int_ge(n, 0);
	raw[n] = '\0';
	close(run->logfd);
	normalize_log(raw, log, logsize);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void fake_login_run(struct fake_login *t, const struct fake_step *script, fake_login_fn login)
{
	struct fake_run run;
	struct mg_stream stream;

	fake_start(&run, script);
	stream_init(&stream, run.sock, t->max_line);
	t->env.link = run.link;
	t->result = login(&t->session, &stream, t->reply, t->replysize);
	/* The driver's end goes: the fake sees EOF and checks nothing more came. */
	stream_close(&stream);
	t->env.link = -1;
	t->backend_status = fake_finish(&run, t->log, sizeof(t->log));
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

/* ---- the front ends ------------------------------------------------------------ */

void fake_frontend_init(struct fake_frontend *t, const struct mg_protocol_ops *ops)
{
	memset(t, 0, sizeof(*t));
	t->cfg.max_line_length = 256;
	t->cfg.max_literal_size = 64;
	t->cfg.max_bad_commands = 3;
	t->cfg.max_commands_before_login = 50;
	t->cfg.max_auth_failures = 2;
	t->cfg.auth_failure_delay_ms = 0;
	t->cfg.login_timeout = 10;
	t->cfg.backend_timeout = 2;
	t->listener.name = "test";
	t->listener.protocol = ops->protocol;
	t->listener.tls = MG_LISTEN_STARTTLS;
	t->env.cfg = &t->cfg;
	t->env.link = -1;
	t->env.authd_fd = -1;
	t->session.env = &t->env;
	t->session.cfg = &t->cfg;
	t->session.listener = &t->listener;
	t->session.ops = ops;
	snprintf(t->session.client_addr, sizeof(t->session.client_addr), "192.0.2.7");
	t->session.client_port = 40000;
	snprintf(t->session.log_head, sizeof(t->session.log_head),
		 "rip=192.0.2.7 rport=40000 listener=test");
}

void fake_frontend_run(struct fake_frontend *t, const struct fake_step *script)
{
	struct fake_run run;

	fake_start(&run, script);
	stream_init(&t->session.client, run.sock, t->cfg.max_line_length);
	stream_init(&t->session.backend, -1, 1024);
	t->env.link = run.link;
	t->session.login_deadline = mg_now_ms() + (long long)t->cfg.login_timeout * 1000;
	t->result = t->session.ops->frontend(&t->session);
	/* As session_run() does: the child's end goes, and the fake sees EOF. */
	stream_close(&t->session.client);
	stream_close(&t->session.backend);
	t->env.link = -1;
	t->client_status = fake_finish(&run, t->log, sizeof(t->log));
}

void fake_frontend_case_run(const struct mg_protocol_ops *ops, const struct fake_frontend_case *c)
{
	struct fake_frontend t;

	fake_frontend_init(&t, ops);
	t.session.client_tls = t.session.secure = (c->flags & FAKE_FE_TLS) != 0;
	t.session.cleartext_allowed = (c->flags & FAKE_FE_ALLOWED) != 0;
	if (c->flags & FAKE_FE_WIDE)
		t.cfg.max_line_length = 1024;
	fake_frontend_run(&t, c->script);
	ck_assert_msg(t.client_status == 0, "%s: the client's script failed (%d)", c->name,
		      t.client_status);
	ck_assert_msg(t.result == MG_FRONTEND_CLOSE, "%s: not closed", c->name);
	ck_assert_msg(t.session.end_reason != NULL && strcmp(t.session.end_reason, c->end_reason) == 0,
		      "%s: end reason %s", c->name, t.session.end_reason);
	if (c->log != NULL)
		ck_assert_msg(strstr(t.log, c->log) != NULL, "%s: log\n%s\nlacks %s", c->name, t.log,
			      c->log);
	/* No credential survives a session that never logged in. */
	ck_assert_uint_eq(t.session.cred.user_len, 0);
	ck_assert_uint_eq(t.session.cred.password_len, 0);
}
