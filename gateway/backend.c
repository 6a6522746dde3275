/*
 * backend.c - the TCP (and implicit TLS) leg towards a backend server.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "netaddr.h"

static int connect_one(const struct addrinfo *ai, long long deadline, char *err, size_t errlen)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	int one = 1;

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Without it the first reply after a TLS 1.3 handshake waits for a delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		long long left;
		int rc;

		if (errno != EINPROGRESS) {
			snprintf(err, errlen, "connect: %s", strerror(errno));
			close(fd);
			return -1;
		}
		do {
			left = deadline - stream_now_ms();
			rc = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		} while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			snprintf(err, errlen, "connect: timed out");
			close(fd);
			return -1;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
			snprintf(err, errlen, "connect: %s", strerror(soerr != 0 ? soerr : errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

int backend_connect(const struct mg_backend_config *backend, enum mg_protocol protocol,
		    struct mg_tls_client *tls, unsigned timeout_s, size_t max_line,
		    const unsigned char *preamble, size_t preamble_len, struct mg_stream *stream,
		    char *addr, size_t addrlen, char *err, size_t errlen)
{
	unsigned port = protocol == MG_PROTO_POP3 ? backend->pop3_port : backend->imap_port;
	long long deadline = stream_now_ms() + (long long)timeout_s * 1000;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *list = NULL;
	char service[8];
	int fd = -1;
	int rc;

	stream_init(stream, -1, max_line);
	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(backend->host, service, &hints, &list);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", backend->host, gai_strerror(rc));
		return -1;
	}
	/* Try each address in turn, all within the one connect deadline. */
	for (const struct addrinfo *ai = list; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = connect_one(ai, deadline, err, errlen);
		if (fd >= 0)
			netaddr_format((const struct sockaddr *)ai->ai_addr, addr, addrlen);
	}
	freeaddrinfo(list);
	if (fd < 0)
		return -1;

	stream_init(stream, fd, max_line);
	if (preamble_len > 0 && stream_write_all(stream, preamble, preamble_len, deadline) < 0) {
		snprintf(err, errlen, "cannot send the client address header");
		stream_close(stream);
		return -1;
	}
	if (backend->tls == MG_BACKEND_TLS_IMPLICIT) {
		long long left = deadline - stream_now_ms();

		if (stream_start_tls_client(stream, tls, left > 0 ? (int)left : 1, err, errlen) < 0) {
			stream_close(stream);
			return -1;
		}
	}
	return 0;
}

long backend_read_line(struct mg_stream *stream, long long deadline, const char *who,
		       const char **line)
{
	long n = stream_read_line(stream, deadline);

	if (n < 0) {
		log_warning("%s error=%s", who,
			    n == MG_IO_TIMEOUT ? "timeout" : n == MG_IO_EOF ? "closed" :
			    n == MG_IO_TOO_LONG ? "line-too-long" : "read-error");
		return -1;
	}
	*line = stream->in;
	return (long)stream_strip_eol(stream->in, (size_t)n);
}

void backend_consume_line(struct mg_stream *stream)
{
	const char *lf = memchr(stream->in, '\n', stream->in_len);

	stream_consume(stream, lf != NULL ? (size_t)(lf - stream->in) + 1 : stream->in_len);
}

void backend_log_text(enum mg_log_level level, const char *who, const char *what,
		      const char *line, size_t len)
{
	char clean[160];

	log_msg(level, "%s %s=\"%s\"", who, what, log_sanitize(clean, sizeof(clean), line, len));
}

int backend_start_tls(struct mg_stream *stream, struct mg_tls_client *tls, long long deadline,
		      const char *who)
{
	long long left = deadline - stream_now_ms();
	char err[256] = "";

	/* As on the client side: nothing the server sent before TLS may count. */
	stream_discard_input(stream);
	if (tls == NULL || stream_start_tls_client(stream, tls, left > 0 ? (int)left : 1, err,
						   sizeof(err)) < 0) {
		log_warning("%s error=\"%s\"", who, tls == NULL ? "no TLS context" : err);
		return -1;
	}
	return 0;
}
