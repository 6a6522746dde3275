/*
 * config_cidr.c - IPv4 and IPv6 networks in CIDR notation, for allow lists such as
 * the trusted PROXY protocol senders.
 *
 * Everything lives in the 16-byte struct mg_ipkey: an IPv4 network a.b.c.d/p
 * is stored as ::ffff:a.b.c.d/(96+p), so it matches IPv4 clients and the
 * v4-mapped clients of a dual-stack socket alike, and never a native IPv6
 * client. Parsing is strict (inet_pton for the address, our own decimal
 * prefix parser, host bits must be zero) because a lax allow list fails open.
 * No allocation, no I/O.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config_cidr.h"

#define V4_PREFIX_BASE 96	/* bits of ::ffff:0:0/96 in front of an IPv4 address */

/*
 * A prefix length: decimal digits only, no sign, no space, no leading zero
 * ("0" itself is fine), at most max. Returns 0 or -1.
 */
static int parse_prefix(const char *text, unsigned max, unsigned *out)
{
	unsigned value = 0;

	if (text[0] == '\0')
		return -1;
	if (text[0] == '0' && text[1] != '\0')
		return -1;
	for (size_t i = 0; text[i] != '\0'; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		/* value <= max <= 128 here, so this cannot overflow. */
		value = value * 10 + (unsigned)(text[i] - '0');
		if (value > max)
			return -1;
	}
	*out = value;
	return 0;
}

/* The mask of the first `bits` (1..7) bits of a byte. */
static unsigned char high_bits(unsigned bits)
{
	return (unsigned char)(0xffu << (8 - bits));
}

/* True when every bit of key after the first prefix bits is zero. */
static bool host_bits_clear(const struct mg_ipkey *key, unsigned prefix)
{
	size_t i = prefix / 8;

	if (prefix % 8 != 0) {
		if ((key->bytes[i] & (unsigned char)~high_bits(prefix % 8)) != 0)
			return false;
		i++;
	}
	for (; i < sizeof(key->bytes); i++)
		if (key->bytes[i] != 0)
			return false;
	return true;
}

int cidr_parse(const char *text, struct mg_cidr *out, const char **error)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash;
	size_t addrlen;
	struct mg_ipkey key;
	unsigned prefix;
	bool v6;

	if (text == NULL || text[0] == '\0') {
		*error = "empty network";
		return -1;
	}
	slash = strchr(text, '/');
	/* Raw pointer arithmetic: slash points into text, at or after its start. */
	addrlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (addrlen == 0) {
		*error = "missing address before '/'";
		return -1;
	}
	if (addrlen >= sizeof(addr)) {
		*error = "address too long";
		return -1;
	}
	memcpy(addr, text, addrlen);
	addr[addrlen] = '\0';

	v6 = memchr(addr, ':', addrlen) != NULL;
	memset(&key, 0, sizeof(key));
	if (v6) {
		if (inet_pton(AF_INET6, addr, key.bytes) != 1) {
			*error = "bad IPv6 address";
			return -1;
		}
	} else {
		memcpy(key.bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		/* Raw pointer arithmetic: the IPv4 address fills the key's last 4 bytes. */
		if (inet_pton(AF_INET, addr, key.bytes + sizeof(v4_mapped_prefix)) != 1) {
			*error = "bad IPv4 address";
			return -1;
		}
	}

	/* Raw pointer arithmetic: slash + 1 is at worst the terminating NUL. */
	if (slash == NULL) {
		prefix = v6 ? 128 : 32;
	} else if (parse_prefix(slash + 1, v6 ? 128 : 32, &prefix) < 0) {
		*error = v6 ? "bad prefix length (0..128 without leading zeros)"
			    : "bad prefix length (0..32 without leading zeros)";
		return -1;
	}
	if (!v6)
		prefix += V4_PREFIX_BASE;

	if (!host_bits_clear(&key, prefix)) {
		*error = "host bits set after the prefix length";
		return -1;
	}
	out->network = key;
	out->prefix = prefix;
	return 0;
}

bool cidr_match(const struct mg_cidr *net, const struct mg_ipkey *addr)
{
	size_t whole = net->prefix / 8;
	unsigned rest = net->prefix % 8;

	if (net->prefix > 128)
		return false;	/* not from cidr_parse: match nothing */
	if (memcmp(net->network.bytes, addr->bytes, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((net->network.bytes[whole] ^ addr->bytes[whole]) & high_bits(rest)) == 0;
}

bool cidr_match_any(const struct mg_cidr *nets, size_t n, const struct mg_ipkey *addr)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&nets[i], addr))
			return true;
	return false;
}

char *cidr_format(const struct mg_cidr *net, char *buf, size_t buflen)
{
	char host[INET6_ADDRSTRLEN];

	if (buflen == 0)
		return buf;
	if (net->prefix >= V4_PREFIX_BASE &&
	    memcmp(net->network.bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		/* Raw pointer arithmetic: the IPv4 address is the key's last 4 bytes. */
		inet_ntop(AF_INET, net->network.bytes + sizeof(v4_mapped_prefix), host, sizeof(host));
		snprintf(buf, buflen, "%s/%u", host, net->prefix - V4_PREFIX_BASE);
	} else {
		inet_ntop(AF_INET6, net->network.bytes, host, sizeof(host));
		snprintf(buf, buflen, "%s/%u", host, net->prefix);
	}
	return buf;
}
