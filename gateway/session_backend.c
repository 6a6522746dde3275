/*
 * session_backend.c - the steps the backend login drivers share: reading the
 * backend's lines, logging its text, and STARTTLS towards it (ordered from
 * the engine, which owns the backend socket and its TLS).
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

#include "session_backend.h"
#include "log.h"
#include "netaddr.h"
#include "session_link.h"

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

int backend_start_tls(struct mg_stream *stream, int link, long long deadline, const char *who)
{
	char err[256] = "";

	if (link_backend_start_tls(link, deadline, stream, err, sizeof(err)) < 0) {
		log_warning("%s error=\"%s\"", who, err);
		return -1;
	}
	return 0;
}
