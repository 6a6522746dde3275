/*
 * netaddr.h - socket addresses as text and as compact keys.
 * Shared by the daemon and the monitor.
 */
#ifndef MG_NETADDR_H
#define MG_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * ::ffff:0:0/96, the first 12 bytes of an IPv4 address written as IPv6 (RFC
 * 4291 2.5.5.2): how an IPv4 address sits in a struct mg_ipkey, a v4-mapped
 * client of a dual-stack socket, and an IPv4 network in a CIDR list. The one
 * copy, in netaddr.c.
 */
extern const unsigned char v4_mapped_prefix[12];

/* An IP address in 16 bytes; IPv4 (and v4-mapped IPv6) as ::ffff:a.b.c.d. */
struct mg_ipkey {
	unsigned char bytes[16];
};

/* "192.0.2.1:143" or "[2001:db8::1]:143" into buf; returns buf. */
char *netaddr_format(const struct sockaddr *sa, char *buf, size_t buflen);

/*
 * The numeric host (v4-mapped IPv6 shown as plain IPv4) and the port.
 * Returns 0, or -1 for an address family that is not IP.
 */
int netaddr_host_port(const struct sockaddr *sa, char *host, size_t hostlen, unsigned *port);

/* Returns 0 and fills key, or -1 when sa is not an IP address. */
int netaddr_key(const struct sockaddr *sa, struct mg_ipkey *key);

bool netaddr_key_equal(const struct mg_ipkey *a, const struct mg_ipkey *b);

#endif
