/*
 * backend.h - open a connection to a backend: resolve, connect within the
 * configured timeout, TCP_NODELAY, and implicit TLS when configured.
 * Protocol-level steps (greeting, STARTTLS, login) are in backend_<proto>.c.
 */
#ifndef MG_BACKEND_H
#define MG_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "log.h"
#include "stream.h"
#include "tls.h"

/*
 * Connect to backend for protocol into *stream (initialised here). tls is
 * the backend's client context (NULL for tls = none). preamble[0..len) is
 * sent first, before any TLS (a PROXY header). addr receives "host:port" of
 * the address actually connected. Returns 0 or -1 with err.
 */
int backend_connect(const struct mg_backend_config *backend, enum mg_protocol protocol,
		    struct mg_tls_client *tls, unsigned timeout_s, size_t max_line,
		    const unsigned char *preamble, size_t preamble_len, struct mg_stream *stream,
		    char *addr, size_t addrlen, char *err, size_t errlen);

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
 * clear, then handshake before the deadline. Returns 0, or -1 (logged).
 */
int backend_start_tls(struct mg_stream *stream, struct mg_tls_client *tls, long long deadline,
		      const char *who);

#endif
