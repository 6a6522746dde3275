/*
 * config_cidr.h - IPv4 and IPv6 networks in CIDR notation, matched against client
 * addresses. IPv4 networks and IPv4 clients (also v4-mapped IPv6 clients of a
 * dual-stack socket) meet in the ::ffff:0:0/96 space of struct mg_ipkey, so
 * "192.0.2.0/24" matches 192.0.2.7 however it arrived.
 */
#ifndef MG_CONFIG_CIDR_H
#define MG_CONFIG_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

struct mg_cidr {
	struct mg_ipkey network;	/* host bits cleared */
	unsigned prefix;		/* 0..128, over the 16-byte key */
};

/*
 * Parse "192.0.2.0/24", "2001:db8::/32", "::ffff:192.0.2.0/120" or a single
 * address ("192.0.2.1" = /32, "2001:db8::1" = /128). Strict: decimal prefix
 * without sign or leading zeros, within 0..32 (IPv4) or 0..128 (IPv6), host
 * bits must be zero ("192.0.2.1/24" is an error: it is almost always a typo).
 * Returns 0, or -1 with *error set to a short static reason.
 */
int cidr_parse(const char *text, struct mg_cidr *out, const char **error);

bool cidr_match(const struct mg_cidr *net, const struct mg_ipkey *addr);

/* True when any of nets[0..n) matches. */
bool cidr_match_any(const struct mg_cidr *nets, size_t n, const struct mg_ipkey *addr);

/*
 * "192.0.2.0/24" or "2001:db8::/32" (IPv4 networks shown as IPv4); returns
 * buf. INET6_ADDRSTRLEN + 4 bytes always suffice; a smaller buf is truncated.
 */
char *cidr_format(const struct mg_cidr *net, char *buf, size_t buflen);

#endif
