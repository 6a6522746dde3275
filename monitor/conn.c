/*
 * conn.c - connecting and line I/O for the plugin's probes.
 *
 * Every wait is bounded by the one overall deadline that -t sets, so a
 * server that accepts and never speaks costs at most -t seconds in all.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "conn.h"
#include "net_connect.h"
#include "netaddr.h"

double conn_now(void)
{
	return (double)mg_now_us() / 1e6;
}

double conn_elapsed(const struct mon_conn *c)
{
	return (double)(mg_now_ms() - c->started) / 1000.0;
}

int conn_ms_left(const struct mon_conn *c)
{
	return mg_ms_left(c->deadline);
}

/* One address within the deadline: 0, -1 (errno) or MON_CONN_TIMEOUT. */
static int connect_one(const struct addrinfo *ai, long long deadline, int *fd_out)
{
	int one = 1;
	int rc = net_connect(ai->ai_addr, ai->ai_addrlen, deadline, fd_out);

	if (rc == NET_CONNECT_TIMEOUT)
		return MON_CONN_TIMEOUT;
	if (rc < 0)
		return -1;
	/* Small commands must not wait for a delayed ACK (see DESIGN.md). */
	setsockopt(*fd_out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

int conn_open(struct mon_conn *c, const char *host, unsigned port, int family, long long started,
	      long long deadline, struct mon_transcript *t, double *connect_s, char *err,
	      size_t errlen)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char service[8], addr[64] = "";
	int rc, fd = -1, last_errno = 0;

	memset(c, 0, sizeof(*c));
	stream_init(&c->stream, -1, MON_LINE_MAX);
	c->transcript = t;
	c->started = started;
	c->deadline = deadline;
	snprintf(service, sizeof(service), "%u", port);
	/* getaddrinfo cannot be given a deadline; the alarm set in main bounds it. */
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return MON_CONN_FAILED;
	}
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		double t0 = conn_now();

		netaddr_format(ai->ai_addr, addr, sizeof(addr));
		transcript_note(t, "connecting to %s", addr);
		rc = connect_one(ai, deadline, &fd);
		if (rc == 0) {
			*connect_s = conn_now() - t0;
			snprintf(c->peer, sizeof(c->peer), "%s", addr);
			break;
		}
		if (rc == MON_CONN_TIMEOUT) {
			freeaddrinfo(res);
			snprintf(err, errlen, "connect to %s timed out after %.1f s", addr,
				 conn_elapsed(c));
			return MON_CONN_TIMEOUT;
		}
		last_errno = errno;
		transcript_note(t, "connect to %s: %s", addr, strerror(last_errno));
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (addr[0] == '\0')
			snprintf(err, errlen, "no %s address for %s",
				 family == AF_INET ? "IPv4" : family == AF_INET6 ? "IPv6" : "usable", host);
		else
			snprintf(err, errlen, "cannot connect to %s: %s", addr, strerror(last_errno));
		return MON_CONN_FAILED;
	}
	c->stream.fd = fd;
	return 0;
}

void conn_close(struct mon_conn *c)
{
	stream_close(&c->stream);
	explicit_bzero(c->line, sizeof(c->line));
	c->line_len = 0;
}

int conn_read_line(struct mon_conn *c)
{
	long n = stream_read_line(&c->stream, c->deadline);
	size_t len;

	c->line_len = 0;
	c->line[0] = '\0';
	if (n < 0) {
		if (n == MG_IO_TOO_LONG)
			transcript_note(c->transcript, "line longer than %d bytes", MON_LINE_MAX);
		return (int)n;
	}
	len = stream_strip_eol(c->stream.in, (size_t)n);
	memcpy(c->line, c->stream.in, len);
	c->line[len] = '\0';
	c->line_len = len;
	stream_consume(&c->stream, (size_t)n);
	transcript_add(c->transcript, "S: ", c->line, c->line_len);
	return 0;
}

int conn_send(struct mon_conn *c, const char *wire, size_t len, const char *secret,
	      size_t secretlen)
{
	size_t pos = 0;

	/* One transcript line per protocol line. */
	while (pos < len) {
		const char *lf = memchr(wire + pos, '\n', len - pos);
		size_t end = lf != NULL ? (size_t)(lf - wire) + 1 : len;

		transcript_add_masked(c->transcript, "C: ", wire + pos,
				      stream_strip_eol(wire + pos, end - pos), secret, secretlen);
		pos = end;
	}
	return stream_write_all(&c->stream, wire, len, c->deadline);
}

int conn_send_unrecorded(struct mon_conn *c, const char *wire, size_t len)
{
	return stream_write_all(&c->stream, wire, len, c->deadline);
}

int conn_start_tls(struct mon_conn *c, struct mg_tls_probe *probe, const char *sni, char *err,
		   size_t errlen)
{
	int left = conn_ms_left(c);

	/* Nothing the server sent in the clear may be read as if it came inside TLS. */
	stream_discard_input(&c->stream);
	if (left <= 0) {
		snprintf(err, errlen, "TLS handshake: timed out");
		return -1;
	}
	/* The stream's own start function takes a backend context; a probe sets tls directly. */
	if (tls_probe_connect(probe, c->stream.fd, sni, left, &c->stream.tls, err, errlen) < 0)
		return -1;
	transcript_note(c->transcript, "TLS established: %s, %s", tls_version(c->stream.tls),
			tls_cipher(c->stream.tls));
	return 0;
}

bool conn_peer_closed(const struct mon_conn *c)
{
	char byte;
	ssize_t n;

	if (c->stream.fd < 0)
		return false;
	/* After a failed handshake the socket may still say why: EOF or RST is a hang-up. */
	n = recv(c->stream.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

const char *conn_io_text(const struct mon_conn *c, int rc, char *buf, size_t buflen)
{
	switch (rc) {
	case MG_IO_TIMEOUT:
		snprintf(buf, buflen, "timed out after %.1f s", conn_elapsed(c));
		break;
	case MG_IO_EOF:
		snprintf(buf, buflen, "connection closed by the server");
		break;
	case MG_IO_TOO_LONG:
		snprintf(buf, buflen, "line longer than %d bytes", MON_LINE_MAX);
		break;
	default:
		snprintf(buf, buflen, "read or write error");
		break;
	}
	return buf;
}
