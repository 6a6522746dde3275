/*
 * stream.h - one side of a session: a non-blocking socket, optionally with
 * TLS, and a bounded input buffer for line-oriented protocol reads.
 *
 * Every wait has a deadline; every line has a maximum length. The input
 * buffer is released whenever it runs empty, so an idle session holds no
 * buffer memory.
 */
#ifndef MG_STREAM_H
#define MG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "tls.h"

/* Results of the stream functions (besides lengths >= 0). */
#define MG_IO_EOF	   (-1)	/* the peer closed */
#define MG_IO_ERROR	   (-2)	/* socket or TLS error */
#define MG_IO_TIMEOUT	   (-3)	/* the deadline passed */
#define MG_IO_TOO_LONG	   (-4)	/* no line end within max_line bytes */
#define MG_IO_AGAIN	   (-5)	/* non-blocking: nothing to do right now */

struct mg_stream {
	int fd;
	struct mg_tls *tls;		/* NULL while cleartext */
	char *in;			/* buffered input, NULL when empty */
	size_t in_len;
	size_t in_cap;
	size_t max_line;		/* longest line accepted, CRLF included */
	uint64_t bytes_in;
	uint64_t bytes_out;
	int want;			/* last poll events a TLS call asked for */
};

void stream_init(struct mg_stream *s, int fd, size_t max_line);
/* Frees buffers and TLS, closes the fd. Safe on a zeroed or closed stream. */
void stream_close(struct mg_stream *s);

/*
 * Wait until the buffer holds a complete line. Returns its length including
 * the LF (the line is s->in[0..len)), or an MG_IO_* code. A line longer than
 * max_line is MG_IO_TOO_LONG. Accepts LF alone as well as CRLF.
 */
long stream_read_line(struct mg_stream *s, long long deadline);
/* Wait until the buffer holds at least n bytes (n <= max_line + limit). */
long stream_read_exact(struct mg_stream *s, size_t n, size_t limit, long long deadline);
/* Length of line[0..len) without its LF or CRLF. */
size_t stream_strip_eol(const char *line, size_t len);
/* Drop the first n buffered bytes. */
void stream_consume(struct mg_stream *s, size_t n);
/* Drop everything buffered (after STARTTLS: nothing sent before TLS may count). */
void stream_discard_input(struct mg_stream *s);

/* Write all of buf before the deadline. Returns 0 or an MG_IO_* code. */
int stream_write_all(struct mg_stream *s, const void *buf, size_t len, long long deadline);
int stream_printf(struct mg_stream *s, long long deadline, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One non-blocking read or write: bytes, MG_IO_AGAIN, MG_IO_EOF or MG_IO_ERROR. */
long stream_read_some(struct mg_stream *s, void *buf, size_t len);
long stream_write_some(struct mg_stream *s, const void *buf, size_t len);


#endif
