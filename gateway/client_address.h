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
 * How many more bytes of a PROXY header buf[0..len) may be read without
 * reading past its end (what follows may be a TLS handshake): the rest of a
 * v2 header once its length is known, else one byte. Pure; the caller stops
 * at PROXY_HEADER_MAX and asks proxy_parse() after each read.
 */
size_t client_address_proxy_want(const unsigned char *buf, size_t len);

/*
 * The bytes to send first on a backend connection for the backend's
 * client_address setting (a PROXY header), or 0 bytes when the setting is
 * none or imap-id. Returns the length written to out.
 */
size_t client_address_preamble(enum mg_client_address mode, const struct sockaddr_storage *client,
			       const struct sockaddr_storage *local, unsigned char *out,
			       size_t outsize);

#endif
