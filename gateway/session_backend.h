/*
 * session_backend.h - what the backend login drivers (backend_<proto>.c) share. The
 * engine connects the backend and runs its TLS; the session child reads and
 * writes the cleartext over its channel.
 */
#ifndef MG_SESSION_BACKEND_H
#define MG_SESSION_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "log.h"
#include "stream.h"

/*
 * Shared steps of the backend_<protocol>.c state machines. who names the
 * module, state and backend address for the log ("backend_imap
 * state=greeting backend=10.0.0.5:143").
 */

/*
 * Wait for one line from the backend. Returns its length without CRLF and
 * points *line at it inside the stream buffer (valid until
 * backend_consume_line), or -1 after logging why.
 */
long backend_read_line(struct mg_stream *stream, long long deadline, const char *who,
		       const char **line);
void backend_consume_line(struct mg_stream *stream);

/* Log backend text, sanitized and truncated, as what="...". */
void backend_log_text(enum mg_log_level level, const char *who, const char *what,
		      const char *line, size_t len);

/*
 * After the backend accepted STARTTLS/STLS: forget whatever it sent in the
 * clear, and have the engine handshake before the deadline. Returns 0, or -1
 * (logged).
 */
int backend_start_tls(struct mg_stream *stream, int link, long long deadline, const char *who);

#endif
