/*
 * client_address.c - PROXY headers in and out.
 */
#include <stdbool.h>
#include <string.h>

#include "client_address.h"
#include "proxy_protocol.h"

size_t client_address_proxy_want(const unsigned char *buf, size_t len)
{
	/*
	 * Byte by byte through a v1 line (it ends at an unknown place), but all
	 * of a v2 header at once once its length field is in.
	 */
	bool v2 = len >= PROXY_V2_SIGNATURE_LEN &&
		  memcmp(buf, proxy_v2_signature, PROXY_V2_SIGNATURE_LEN) == 0;

	if (v2 && len >= PROXY_V2_FIXED_LEN) {
		/* Bytes 14 and 15: the big-endian length of what follows the fixed part. */
		size_t total = PROXY_V2_FIXED_LEN + ((size_t)buf[14] << 8 | buf[15]);

		return total > len ? total - len : 0;
	}
	if (v2)
		return PROXY_V2_FIXED_LEN - len;
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
