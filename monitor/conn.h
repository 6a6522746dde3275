/*
 * conn.h - one connection of the plugin to the server under test: resolve
 * and connect (-4/-6) within the overall deadline, then line-oriented
 * exchanges on a gateway stream (lib/stream.h: bounded lines, a
 * deadline on every wait, optional TLS), each recorded in the transcript.
 */
#ifndef MON_CONN_H
#define MON_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "stream.h"
#include "tls.h"
#include "transcript.h"

#define MON_LINE_MAX 8192	/* longest server line accepted, CRLF included */

struct mon_conn {
	struct mg_stream stream;
	struct mon_transcript *transcript;
	long long started;		/* when the whole check started (ms), for messages */
	long long deadline;		/* the overall deadline (ms, mg_now_ms clock) */
	char peer[64];			/* "192.0.2.1:143" */
	char line[MON_LINE_MAX + 1];	/* last line read, without CRLF, NUL-terminated */
	size_t line_len;
};

/* Results of conn_open besides 0. */
#define MON_CONN_FAILED	 (-1)	/* refused, unreachable, no such host: err says */
#define MON_CONN_TIMEOUT (-2)	/* the deadline passed */

/*
 * Connect to host:port (family AF_UNSPEC, AF_INET or AF_INET6), trying each
 * address in turn until the deadline. *connect_s is the time the successful
 * TCP connect took. Returns 0 or a MON_CONN_* code with err.
 */
int conn_open(struct mon_conn *c, const char *host, unsigned port, int family, long long started,
	      long long deadline, struct mon_transcript *t, double *connect_s, char *err,
	      size_t errlen);

void conn_close(struct mon_conn *c);

/* Read one line into c->line. Returns 0 or an MG_IO_* code. */
int conn_read_line(struct mon_conn *c);

/*
 * Send wire[0..len) (one or more CRLF-terminated lines). The transcript
 * shows each line with every occurrence of secret replaced by ******.
 * Returns 0 or an MG_IO_* code.
 */
int conn_send(struct mon_conn *c, const char *wire, size_t len, const char *secret,
	      size_t secretlen);

/*
 * Send wire[0..len) without recording it: for a command whose wire form
 * cannot be masked line by line (an IMAP literal announces the password's
 * length); the caller records what it shows with transcript_add().
 */
int conn_send_unrecorded(struct mon_conn *c, const char *wire, size_t len);

/*
 * Forget all buffered input, then run the TLS handshake (sni as the server
 * name) within the deadline. Returns 0 or -1 with err.
 */
int conn_start_tls(struct mon_conn *c, struct mg_tls_probe *probe, const char *sni, char *err,
		   size_t errlen);

/* Describe an MG_IO_* result for a finding: "timed out after 3.0 s", ... */
const char *conn_io_text(const struct mon_conn *c, int rc, char *buf, size_t buflen);

/* True when the server has closed the connection (EOF waiting to be read). */
bool conn_peer_closed(const struct mon_conn *c);

/* Monotonic time in seconds with microseconds, for the performance data. */
double conn_now(void);

/* Seconds since the check started. */
double conn_elapsed(const struct mon_conn *c);

/* Milliseconds left before the deadline (0 when none). */
int conn_ms_left(const struct mon_conn *c);

#endif
