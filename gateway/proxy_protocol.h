/*
 * proxy_protocol.h - the HAProxy PROXY protocol, versions 1 (text) and 2
 * (binary), as specified in haproxy's doc/proxy-protocol.txt: parsing the
 * header a load balancer puts in front of a connection, and writing the
 * header mailgated puts in front of a backend connection.
 *
 * Pure functions over buffers: no I/O, no allocation.
 */
#ifndef MG_PROXY_PROTOCOL_H
#define MG_PROXY_PROTOCOL_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest header we accept: v1 is at most 107 bytes, v2 is bounded by us. */
#define PROXY_HEADER_MAX 536

/*
 * Version 2 on the wire: the 12-byte signature every v2 header starts with,
 * then version/command, family and a 16-bit big-endian length of what
 * follows, PROXY_V2_FIXED_LEN bytes in all. The one copy of the signature,
 * for the parser, the writer and the engine's header detection
 * (client_address.c).
 */
#define PROXY_V2_SIGNATURE_LEN 12
#define PROXY_V2_FIXED_LEN 16
extern const unsigned char proxy_v2_signature[PROXY_V2_SIGNATURE_LEN];

enum proxy_parse_result {
	PROXY_PARSE_OK,		/* *consumed bytes form a complete, valid header */
	PROXY_PARSE_INCOMPLETE,	/* a valid prefix: read more (up to PROXY_HEADER_MAX) */
	PROXY_PARSE_INVALID	/* not a PROXY header, or a malformed one */
};

struct proxy_info {
	/*
	 * true when the header carries addresses (v1 TCP4/TCP6, v2 PROXY command
	 * with AF_INET/AF_INET6 over STREAM); false for v1 UNKNOWN and v2 LOCAL
	 * (health checks): then the connection's own address stays in force.
	 */
	int has_addresses;
	struct sockaddr_storage source;
	struct sockaddr_storage destination;
};

/*
 * Look at buf[0..len) (the first bytes of a connection). v1: "PROXY TCP4 a b
 * p q\r\n" with strict syntax (single spaces, numeric addresses of the named
 * family, ports 0..65535 without leading zeros, CRLF within 107 bytes) or
 * "PROXY UNKNOWN[ printable text]\r\n"; v2: the 12-byte signature, version 2,
 * command LOCAL (address block discarded, family included, as the
 * specification requires) or PROXY with TCP over IPv4, TCP over IPv6 or UNSPEC,
 * a length that fits PROXY_HEADER_MAX; TLVs after the addresses must form a
 * well-formed chain filling the block, their contents are skipped.
 *
 * INCOMPLETE only while buf[0..len) can still become a valid header, never
 * for len >= PROXY_HEADER_MAX. On OK, *consumed is the header's length (bytes
 * after it belong to the client) and *info is filled; otherwise *consumed is 0
 * and *info zeroed. *error is a short static reason on INVALID and NULL
 * otherwise; error may be NULL.
 */
enum proxy_parse_result proxy_parse(const unsigned char *buf, size_t len, size_t *consumed,
				    struct proxy_info *info, const char **error);

/*
 * Write a header announcing source -> destination; version is 1 or 2. Both
 * IPv4 (or v4-mapped IPv6) are written as IPv4 (TCP4 / 0x11), anything else
 * as IPv6 (TCP6 / 0x21, an IPv4 address as ::ffff:a.b.c.d). When the
 * addresses cannot be expressed (NULL, or not AF_INET/AF_INET6), v1 writes
 * "PROXY UNKNOWN\r\n" and v2 a LOCAL header. Returns the length written (no
 * NUL terminator), or 0 for a bad version or when it does not fit in outsize;
 * nothing is written past outsize.
 */
size_t proxy_write(int version, const struct sockaddr *source, const struct sockaddr *destination,
		   unsigned char *out, size_t outsize);

#endif
