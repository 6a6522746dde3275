/*
 * session_link.c - the session child's side of the engine channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "clock.h"
#include "log.h"
#include "proxy_protocol.h"
#include "session_link.h"


/*
 * Wait for the next message. Returns its length with the type in buf[0], or
 * -1 with err (timeout, EOF: the engine ended the session, or garbage).
 */
static long wait_msg(int link, long long deadline, unsigned char *buf, int *fds, size_t *nfds,
		     char *err, size_t errlen)
{
	for (;;) {
		struct pollfd pfd = { .fd = link, .events = POLLIN };
		long n = chan_recv(link, buf, fds, nfds);

		if (n > 0)
			return n;
		if (n == 0) {
			snprintf(err, errlen, "engine closed the channel");
			return -1;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(err, errlen, "engine channel: %s", strerror(errno));
			return -1;
		}
		if (poll(&pfd, 1, mg_ms_left(deadline)) == 0) {
			snprintf(err, errlen, "engine did not answer in time");
			return -1;
		}
	}
}

/*
 * A penalty answer that came after the child stopped waiting for it
 * (link_login_failed's deadline): it went on without, and drops it.
 */
static bool late_penalty(long n, const unsigned char *buf, size_t nfds)
{
	return n > 0 && buf[0] == CHAN_PENALTY && nfds == 0;
}

bool link_shutdown_ordered(int link)
{
	unsigned char buf[CHAN_MSG_MAX];
	int fds[CHAN_MAX_FDS];
	size_t nfds;
	long n;

	do {
		nfds = 0;
		n = link >= 0 ? chan_recv(link, buf, fds, &nfds) : -1;
		chan_close_fds(fds, nfds);
	} while (late_penalty(n, buf, nfds));
	return n == 1 && nfds == 0 && buf[0] == CHAN_SHUTDOWN;
}

/* One message of the expected type carrying exactly want_fds descriptors. */
static int expect(int link, long long deadline, enum chan_type type, size_t want_fds,
		  unsigned char *buf, struct chan_reader *r, int *fds, char *err, size_t errlen)
{
	size_t nfds = 0;
	long n = wait_msg(link, deadline, buf, fds, &nfds, err, errlen);

	while (type != CHAN_PENALTY && late_penalty(n, buf, nfds)) {
		nfds = 0;
		n = wait_msg(link, deadline, buf, fds, &nfds, err, errlen);
	}
	if (n < 0)
		return -1;
	if (buf[0] != type || nfds != want_fds) {
		if (buf[0] == CHAN_BACKEND_FAILED && type != CHAN_BACKEND_FAILED) {
			chan_reader_init(r, buf + 1, (size_t)n - 1);
			chan_get_str(r, err, errlen);
		} else {
			snprintf(err, errlen, "unexpected message %u from the engine", buf[0]);
		}
		chan_close_fds(fds, nfds);
		return -1;
	}
	chan_reader_init(r, buf + 1, (size_t)n - 1);
	return 0;
}

int link_wait_hello(int link, long long deadline, struct session_hello *out, char *err,
		    size_t errlen)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct chan_reader r;
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	long n = wait_msg(link, deadline, buf, fds, &nfds, err, errlen);
	unsigned has_fd;

	if (n < 0)
		return -1;
	chan_reader_init(&r, buf + 1, (size_t)n - 1);
	out->listener = chan_get_u16(&r);
	chan_get_sockaddr(&r, &out->client);
	chan_get_sockaddr(&r, &out->local);
	has_fd = chan_get_u8(&r);
	if (buf[0] != CHAN_HELLO || !chan_reader_done(&r) || has_fd > 1 || nfds != has_fd) {
		chan_close_fds(fds, nfds);
		snprintf(err, errlen, "malformed hello from the engine");
		return -1;
	}
	out->client_fd = has_fd ? fds[0] : -1;
	return 0;
}

/* The new channel replaces whatever the stream had (and its buffered bytes). */
static void adopt(struct mg_stream *stream, int fd)
{
	size_t max_line = stream->max_line;

	stream_close(stream);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	stream_init(stream, fd, max_line);
}

/* Our last writes on this channel are done: the engine reads them up to EOF. */
static void finish_writing(struct mg_stream *stream)
{
	if (stream->fd >= 0)
		shutdown(stream->fd, SHUT_WR);
}

/*
 * The engine checked the SNI name; a child trusts no message blindly, so a
 * name that is not one (or not in the engine's lower-case form) makes the
 * message malformed rather than a route or a log line.
 */
static bool sni_valid(const char *sni)
{
	char norm[DNS_NAME_MAX + 1];
	bool wildcard;
	size_t len = strlen(sni);

	return len == 0 || (dns_name_normalize(sni, len, norm, 0, &wildcard) == len &&
			    memcmp(norm, sni, len) == 0);
}

static int wait_tls_up(int link, long long deadline, struct mg_stream *client,
		       struct link_tls *tls)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct chan_reader r;
	char err[128];
	int fds[CHAN_MAX_FDS];

	if (expect(link, deadline, CHAN_TLS_UP, 1, buf, &r, fds, err, sizeof(err)) < 0) {
		log_debug("tls not started: %s", err);
		return -1;
	}
	chan_get_str(&r, tls->version, sizeof(tls->version));
	chan_get_str(&r, tls->cipher, sizeof(tls->cipher));
	chan_get_str(&r, tls->sni, sizeof(tls->sni));
	if (!chan_reader_done(&r) || !sni_valid(tls->sni)) {
		close(fds[0]);
		log_error("malformed TLS_UP from the engine");
		return -1;
	}
	adopt(client, fds[0]);
	return 0;
}

int link_start_tls(int link, const char *reply, size_t len, long long deadline,
		   struct mg_stream *client, struct link_tls *tls)
{
	struct chan_msg m;

	if (len > CHAN_REPLY_MAX)
		return -1;
	finish_writing(client);
	chan_msg_init(&m, CHAN_START_TLS);
	chan_put_bytes(&m, reply, len);
	if (chan_send(link, &m, NULL, 0) < 0)
		return -1;
	/* Whatever the client pipelined behind the command dies with this channel. */
	stream_close(client);
	return wait_tls_up(link, deadline, client, tls);
}

int link_wait_tls(int link, long long deadline, struct mg_stream *client, struct link_tls *tls)
{
	return wait_tls_up(link, deadline, client, tls);
}

int link_backend_connect(int link, unsigned backend, enum mg_protocol protocol,
			 const unsigned char *preamble, size_t len, long long deadline,
			 struct mg_stream *stream, size_t max_line, char *addr, size_t addrlen,
			 char *err, size_t errlen)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct chan_reader r;
	struct chan_msg m;
	int fds[CHAN_MAX_FDS];

	stream_init(stream, -1, max_line);
	if (len > PROXY_HEADER_MAX) {
		snprintf(err, errlen, "preamble too long");
		return -1;
	}
	chan_msg_init(&m, CHAN_BACKEND_CONNECT);
	chan_put_u16(&m, (uint16_t)backend);
	chan_put_u8(&m, (uint8_t)protocol);
	chan_put_bytes(&m, preamble, len);
	if (chan_send(link, &m, NULL, 0) < 0) {
		snprintf(err, errlen, "engine channel: %s", strerror(errno));
		return -1;
	}
	if (expect(link, deadline, CHAN_BACKEND_UP, 1, buf, &r, fds, err, errlen) < 0)
		return -1;
	chan_get_str(&r, addr, addrlen);
	if (!chan_reader_done(&r)) {
		close(fds[0]);
		snprintf(err, errlen, "malformed BACKEND_UP from the engine");
		return -1;
	}
	adopt(stream, fds[0]);
	return 0;
}

int link_login_failed(int link, uint64_t user, uint64_t password, long long deadline,
		      unsigned *delay_ms, unsigned *flags, char *err, size_t errlen)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct chan_reader r;
	struct chan_msg m;
	int fds[CHAN_MAX_FDS];

	*delay_ms = 0;
	*flags = 0;
	chan_msg_init(&m, CHAN_LOGIN_FAILED);
	chan_put_u64(&m, user);
	chan_put_u64(&m, password);
	if (chan_send(link, &m, NULL, 0) < 0) {
		snprintf(err, errlen, "engine channel: %s", strerror(errno));
		return -1;
	}
	if (expect(link, deadline, CHAN_PENALTY, 0, buf, &r, fds, err, errlen) < 0)
		return -1;
	*delay_ms = chan_get_u32(&r);
	*flags = chan_get_u8(&r);
	if (!chan_reader_done(&r)) {
		*delay_ms = *flags = 0;
		snprintf(err, errlen, "malformed PENALTY from the engine");
		return -1;
	}
	return 0;
}

int link_userip_check(int link, uint64_t user, long long deadline, char *err, size_t errlen)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct chan_reader r;
	struct chan_msg m;
	int fds[CHAN_MAX_FDS];
	unsigned allowed;

	chan_msg_init(&m, CHAN_USERIP_CHECK);
	chan_put_u64(&m, user);
	if (chan_send(link, &m, NULL, 0) < 0) {
		snprintf(err, errlen, "engine channel: %s", strerror(errno));
		return -1;
	}
	if (expect(link, deadline, CHAN_USERIP, 0, buf, &r, fds, err, errlen) < 0)
		return -1;
	allowed = chan_get_u8(&r);
	if (!chan_reader_done(&r)) {
		snprintf(err, errlen, "malformed USERIP from the engine");
		return -1;
	}
	return allowed != 0;
}

int link_backend_start_tls(int link, long long deadline, struct mg_stream *stream, char *err,
			   size_t errlen)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct chan_reader r;
	struct chan_msg m;
	int fds[CHAN_MAX_FDS];

	finish_writing(stream);
	chan_msg_init(&m, CHAN_BACKEND_START_TLS);
	if (chan_send(link, &m, NULL, 0) < 0) {
		snprintf(err, errlen, "engine channel: %s", strerror(errno));
		return -1;
	}
	/* As on the client side: nothing the server sent before TLS may count. */
	stream_close(stream);
	if (expect(link, deadline, CHAN_BACKEND_TLS_UP, 1, buf, &r, fds, err, errlen) < 0)
		return -1;
	if (!chan_reader_done(&r)) {
		close(fds[0]);
		snprintf(err, errlen, "malformed BACKEND_TLS_UP from the engine");
		return -1;
	}
	adopt(stream, fds[0]);
	return 0;
}

static void put_facts(struct chan_msg *m, const struct session_facts *f)
{
	chan_put_str(m, f->user);
	chan_put_str(m, f->route);
	chan_put_u16(m, f->backend >= 0 ? (uint16_t)f->backend : UINT16_MAX);
}

/* Send bytes as TAIL chunks; false when the channel failed. */
static bool send_tail(int link, enum chan_type type, const char *p, size_t len)
{
	while (len > 0) {
		size_t n = len < CHAN_CHUNK_MAX ? len : CHAN_CHUNK_MAX;
		struct chan_msg m;
		struct pollfd pfd = { .fd = link, .events = POLLOUT };

		chan_msg_init(&m, type);
		chan_put_bytes(&m, p, n);
		while (chan_send(link, &m, NULL, 0) < 0) {
			if ((errno != EAGAIN && errno != EWOULDBLOCK) || poll(&pfd, 1, 5000) <= 0)
				return false;
		}
		p += n;
		len -= n;
	}
	return true;
}

/*
 * What the stream buffered, then everything the engine had already written
 * to the channel: it shut its side down on HANDOFF, so EOF ends the drain.
 */
static bool drain_tail(int link, enum chan_type type, struct mg_stream *stream,
		       long long deadline)
{
	char chunk[CHAN_CHUNK_MAX];

	if (stream->fd < 0)
		return true;
	if (!send_tail(link, type, stream->in, stream->in_len))
		return false;
	stream_discard_input(stream);
	for (;;) {
		long n = stream_read_some(stream, chunk, sizeof(chunk));
		struct pollfd pfd = { .fd = stream->fd, .events = POLLIN };
		bool sent;

		if (n == MG_IO_EOF)
			return true;
		if (n == MG_IO_AGAIN) {
			if (poll(&pfd, 1, mg_ms_left(deadline)) <= 0)
				return false;
			continue;
		}
		if (n < 0)
			return false;
		sent = send_tail(link, type, chunk, (size_t)n);
		/* A pipelined command after the login may hold anything. */
		explicit_bzero(chunk, (size_t)n);
		if (!sent)
			return false;
	}
}

int link_handoff(int link, const struct session_facts *facts, struct mg_stream *client,
		 struct mg_stream *backend, long long deadline)
{
	struct chan_msg m;
	int rc = -1;

	finish_writing(client);
	finish_writing(backend);
	chan_msg_init(&m, CHAN_HANDOFF);
	put_facts(&m, facts);
	chan_put_u64(&m, facts->user_key);
	if (chan_send(link, &m, NULL, 0) == 0 &&
	    drain_tail(link, CHAN_TAIL_CLIENT, client, deadline) &&
	    drain_tail(link, CHAN_TAIL_BACKEND, backend, deadline)) {
		chan_msg_init(&m, CHAN_TAIL_END);
		rc = chan_send(link, &m, NULL, 0);
	}
	stream_close(client);
	stream_close(backend);
	return rc;
}

void link_close(int link, const struct session_facts *facts, struct mg_stream *client)
{
	struct chan_msg m;

	finish_writing(client);
	chan_msg_init(&m, CHAN_CLOSE);
	put_facts(&m, facts);
	chan_put_str(&m, facts->end_reason);
	if (chan_send(link, &m, NULL, 0) < 0)
		log_debug("engine channel: %s", strerror(errno));
}
