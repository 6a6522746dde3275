/*
 * client_address.c - PROXY headers in and out.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client_address.h"
#include "proxy_protocol.h"
#include "stream.h"

/* The fixed part of a v2 header: signature, version/command, family, length. */
#define PROXY_V2_FIXED 16

static const unsigned char v2_signature[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
						0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* Read exactly want bytes more into buf[*len..], before the deadline. */
static int read_more(int fd, unsigned char *buf, size_t *len, size_t want, long long deadline)
{
	while (want > 0) {
		ssize_t n = read(fd, buf + *len, want);

		if (n > 0) {
			*len += (size_t)n;
			want -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		{
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			long long left = deadline - stream_now_ms();

			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
				return -2;
		}
	}
	return 0;
}

int client_address_read_proxy(int fd, long long deadline, struct sockaddr_storage *client,
			      struct sockaddr_storage *local, char *err, size_t errlen)
{
	unsigned char buf[PROXY_HEADER_MAX];
	struct proxy_info info;
	const char *error = "malformed";
	size_t len = 0, consumed = 0;

	for (;;) {
		enum proxy_parse_result r = proxy_parse(buf, len, &consumed, &info, &error);
		size_t want = 1;
		int rc;

		if (r == PROXY_PARSE_OK)
			break;
		if (r == PROXY_PARSE_INVALID) {
			snprintf(err, errlen, "invalid PROXY header: %s", error);
			return -1;
		}
		/*
		 * Byte by byte through a v1 line (it ends at an unknown place), but
		 * all of a v2 header at once once its length field is in.
		 */
		if (len >= PROXY_V2_FIXED && memcmp(buf, v2_signature, sizeof(v2_signature)) == 0) {
			size_t total = PROXY_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);

			if (total > sizeof(buf)) {
				snprintf(err, errlen, "invalid PROXY header: too long");
				return -1;
			}
			want = total - len;
		} else if (len < PROXY_V2_FIXED && len >= sizeof(v2_signature) &&
			   memcmp(buf, v2_signature, sizeof(v2_signature)) == 0) {
			want = PROXY_V2_FIXED - len;
		}
		if (len + want > sizeof(buf)) {
			snprintf(err, errlen, "invalid PROXY header: too long");
			return -1;
		}
		rc = read_more(fd, buf, &len, want, deadline);
		if (rc < 0) {
			snprintf(err, errlen, "no PROXY header: %s",
				 rc == -2 ? "timed out" : "connection closed");
			return -1;
		}
	}
	if (info.has_addresses) {
		*client = info.source;
		*local = info.destination;
	}
	return 0;
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
