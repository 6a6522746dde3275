/*
 * backend.h - open a connection to a backend: resolve, connect within the
 * configured timeout, TCP_NODELAY, and implicit TLS when configured.
 * Protocol-level steps (greeting, STARTTLS, login) are in backend_<proto>.c.
 */
#ifndef MG_BACKEND_H
#define MG_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "stream.h"
#include "tls.h"

/*
 * Connect to backend for protocol into *stream (initialised here). tls is
 * the backend's client context (NULL for tls = none). addr receives
 * "host:port" of the address actually connected. Returns 0 or -1 with err.
 */
int backend_connect(const struct mg_backend_config *backend, enum mg_protocol protocol,
		    struct mg_tls_client *tls, unsigned timeout_s, size_t max_line,
		    struct mg_stream *stream, char *addr, size_t addrlen, char *err, size_t errlen);

#endif
