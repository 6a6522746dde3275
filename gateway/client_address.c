/*
 * client_address.c - PROXY headers in and out.
 */
#include <string.h>

#include "client_address.h"
#include "proxy_protocol.h"

/* The fixed part of a v2 header: signature, version/command, family, length. */
#define PROXY_V2_FIXED 16

static const unsigned char v2_signature[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
						0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

size_t client_address_proxy_want(const unsigned char *buf, size_t len)
{
	/*
	 * Byte by byte through a v1 line (it ends at an unknown place), but all
	 * of a v2 header at once once its length field is in.
	 */
	if (len >= PROXY_V2_FIXED && memcmp(buf, v2_signature, sizeof(v2_signature)) == 0) {
		size_t total = PROXY_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);

		return total > len ? total - len : 0;
	}
	if (len >= sizeof(v2_signature) && memcmp(buf, v2_signature, sizeof(v2_signature)) == 0)
		return PROXY_V2_FIXED - len;
	return 1;
}

size_t client_address_preamble(enum mg_client_address mode, const struct sockaddr_storage *client,
			       const struct sockaddr_storage *local, unsigned char *out,
			       size_t outsize)
{
	switch (mode) {
	case MG_CLIENT_ADDRESS_PROXY_V1:
		return proxy_write(1, (const struct sockaddr *)client, (const struct sockaddr *)local,
				   out, outsize);
	case MG_CLIENT_ADDRESS_PROXY_V2:
		return proxy_write(2, (const struct sockaddr *)client, (const struct sockaddr *)local,
				   out, outsize);
	case MG_CLIENT_ADDRESS_NONE:
	case MG_CLIENT_ADDRESS_IMAP_ID:
		break;
	}
	return 0;
}
