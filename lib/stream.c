/*
 * stream.c - bounded, deadline-driven I/O on one socket, with or without TLS.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"

#define STREAM_MIN_CAP 1024

void stream_init(struct mg_stream *s, int fd, size_t max_line)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->max_line = max_line;
}

static void release_input(struct mg_stream *s)
{
	if (s->in != NULL) {
		/* The buffer may have held a password on its way through. */
		explicit_bzero(s->in, s->in_cap);
		free(s->in);
	}
	s->in = NULL;
	s->in_len = 0;
	s->in_cap = 0;
}

void stream_close(struct mg_stream *s)
{
	release_input(s);
	if (s->tls != NULL) {
		tls_close(s->tls);
		s->tls = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static int ensure_capacity(struct mg_stream *s, size_t need)
{
	size_t cap = s->in_cap < STREAM_MIN_CAP ? STREAM_MIN_CAP : s->in_cap;
	char *grown;

	if (need <= s->in_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	grown = malloc(cap);
	if (grown == NULL)
		return -1;
	/* Copy and wipe rather than realloc, so no stray copy of a secret survives. */
	if (s->in != NULL) {
		memcpy(grown, s->in, s->in_len);
		explicit_bzero(s->in, s->in_cap);
		free(s->in);
	}
	s->in = grown;
	s->in_cap = cap;
	return 0;
}

/*
 * A TLS call's result as an MG_IO_* code, noting the poll events it waits
 * for (a TLS read may need to write, and the other way round); byte counts
 * pass through unchanged.
 */
static ssize_t from_tls(struct mg_stream *s, ssize_t n, ssize_t on_eof)
{
	switch (n) {
	case MG_TLS_EOF:
		return on_eof;
	case MG_TLS_ERROR:
		return MG_IO_ERROR;
	case MG_TLS_WANT_READ:
		s->want = POLLIN;
		return MG_IO_AGAIN;
	case MG_TLS_WANT_WRITE:
		s->want = POLLOUT;
		return MG_IO_AGAIN;
	default:
		return n;
	}
}

static long raw_read(struct mg_stream *s, void *buf, size_t len)
{
	ssize_t n;

	if (s->tls != NULL) {
		n = from_tls(s, tls_read(s->tls, buf, len), MG_IO_EOF);
		if (n < 0)
			return (long)n;
	} else {
		n = read(s->fd, buf, len);
		if (n == 0)
			return MG_IO_EOF;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				s->want = POLLIN;
				return MG_IO_AGAIN;
			}
			return errno == ECONNRESET ? MG_IO_EOF : MG_IO_ERROR;
		}
	}
	s->bytes_in += (uint64_t)n;
	return (long)n;
}

long stream_write_some(struct mg_stream *s, const void *buf, size_t len)
{
	ssize_t n;

	if (s->tls != NULL) {
		/* A peer that closed while we write is an error for the writer. */
		n = from_tls(s, tls_write(s->tls, buf, len), MG_IO_ERROR);
		if (n < 0)
			return (long)n;
	} else {
		n = send(s->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				s->want = POLLOUT;
				return MG_IO_AGAIN;
			}
			return MG_IO_ERROR;
		}
	}
	s->bytes_out += (uint64_t)n;
	return (long)n;
}

/* Wait for the fd to become ready for what the last call wanted. */
static int wait_ready(struct mg_stream *s, short events, long long deadline)
{
	struct pollfd pfd = { .fd = s->fd, .events = events };

	for (;;) {
		long long left = deadline - mg_now_ms();
		int rc;

		if (left <= 0)
			return MG_IO_TIMEOUT;
		rc = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return MG_IO_ERROR;
	}
}

/* Read more into the buffer, up to limit bytes buffered in all. */
static int fill(struct mg_stream *s, size_t limit, long long deadline)
{
	for (;;) {
		size_t room;
		long n;

		if (s->in_len >= limit)
			return MG_IO_TOO_LONG;
		if (ensure_capacity(s, s->in_len + STREAM_MIN_CAP > limit ? limit
									   : s->in_len + STREAM_MIN_CAP) < 0)
			return MG_IO_ERROR;
		room = s->in_cap - s->in_len;
		if (room > limit - s->in_len)
			room = limit - s->in_len;
		n = raw_read(s, s->in + s->in_len, room);
		if (n > 0) {
			s->in_len += (size_t)n;
			return 0;
		}
		if (n != MG_IO_AGAIN)
			return (int)n;
		n = wait_ready(s, s->tls != NULL ? (short)s->want : POLLIN, deadline);
		if (n < 0)
			return (int)n;
	}
}

long stream_read_line(struct mg_stream *s, long long deadline)
{
	size_t scanned = 0;

	for (;;) {
		const char *lf = s->in_len > scanned ? memchr(s->in + scanned, '\n', s->in_len - scanned)
						     : NULL;
		int rc;

		if (lf != NULL) {
			size_t len = (size_t)(lf - s->in) + 1;

			return len > s->max_line ? MG_IO_TOO_LONG : (long)len;
		}
		scanned = s->in_len;
		if (s->in_len >= s->max_line)
			return MG_IO_TOO_LONG;
		rc = fill(s, s->max_line, deadline);
		if (rc < 0)
			return rc;
	}
}

long stream_read_exact(struct mg_stream *s, size_t n, size_t limit, long long deadline)
{
	while (s->in_len < n) {
		int rc = fill(s, limit, deadline);

		if (rc < 0)
			return rc;
	}
	return (long)n;
}

size_t stream_strip_eol(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

void stream_consume(struct mg_stream *s, size_t n)
{
	if (n >= s->in_len) {
		release_input(s);
		return;
	}
	memmove(s->in, s->in + n, s->in_len - n);
	/* Wipe the tail the move left behind: it may hold a consumed password. */
	explicit_bzero(s->in + s->in_len - n, n);
	s->in_len -= n;
}

void stream_discard_input(struct mg_stream *s)
{
	release_input(s);
}

long stream_read_some(struct mg_stream *s, void *buf, size_t len)
{
	if (s->in_len > 0) {
		size_t n = s->in_len < len ? s->in_len : len;

		memcpy(buf, s->in, n);
		stream_consume(s, n);
		return (long)n;
	}
	return raw_read(s, buf, len);
}

int stream_write_all(struct mg_stream *s, const void *buf, size_t len, long long deadline)
{
	const char *p = buf;

	while (len > 0) {
		long n = stream_write_some(s, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n != MG_IO_AGAIN)
			return (int)n;
		n = wait_ready(s, s->tls != NULL ? (short)s->want : POLLOUT, deadline);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

int stream_printf(struct mg_stream *s, long long deadline, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line))
		return MG_IO_ERROR;
	return stream_write_all(s, line, (size_t)len, deadline);
}
