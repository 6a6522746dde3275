/*
 * relay.h - copy bytes both ways between client and backend after login.
 */
#ifndef MG_RELAY_H
#define MG_RELAY_H

#include <stdint.h>

#include "stream.h"

struct mg_relay_result {
	uint64_t client_to_backend;
	uint64_t backend_to_client;
	const char *end_reason;		/* "client-closed", "backend-closed", "idle-timeout", ... */
};

/*
 * Relay until either side closes, an error, or idle_timeout_s seconds pass
 * with no byte in either direction. Bytes already buffered in either stream
 * are forwarded first.
 */
void relay_run(struct mg_stream *client, struct mg_stream *backend, unsigned idle_timeout_s,
	       struct mg_relay_result *result);

#endif
