/*
 * client_address.h - where the client really is. A load balancer in front
 * of mailgated tells it with a PROXY header (accepted only from the
 * listener's proxy_networks); mailgated tells a backend the same way, or
 * with IMAP ID, as the backend's client_address option says.
 */
#ifndef MG_CLIENT_ADDRESS_H
#define MG_CLIENT_ADDRESS_H

#include <stddef.h>
#include <sys/socket.h>

#include "config.h"

/*
 * Read a PROXY v1 or v2 header from the non-blocking socket fd before the
 * deadline, without reading a byte past it (what follows may be a TLS
 * handshake that OpenSSL reads from the socket itself). On success returns 0
 * and, when the header carries addresses, replaces *client (and *local). On
 * a missing or malformed header returns -1 with err.
 */
int client_address_read_proxy(int fd, long long deadline, struct sockaddr_storage *client,
			      struct sockaddr_storage *local, char *err, size_t errlen);

/*
 * The bytes to send first on a backend connection for the backend's
 * client_address setting (a PROXY header), or 0 bytes when the setting is
 * none or imap-id. Returns the length written to out.
 */
size_t client_address_preamble(enum mg_client_address mode, const struct sockaddr_storage *client,
			       const struct sockaddr_storage *local, unsigned char *out,
			       size_t outsize);

#endif
