/*
 * netaddr.c - formatting and comparing IP socket addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

const unsigned char v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int netaddr_key(const struct sockaddr *sa, struct mg_ipkey *key)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		memcpy(key->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(key->bytes + 12, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		memcpy(key->bytes, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

bool netaddr_key_equal(const struct mg_ipkey *a, const struct mg_ipkey *b)
{
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

int netaddr_host_port(const struct sockaddr *sa, char *host, size_t hostlen, unsigned *port)
{
	struct mg_ipkey key;

	if (netaddr_key(sa, &key) < 0) {
		snprintf(host, hostlen, "unknown");
		*port = 0;
		return -1;
	}
	/* Show IPv4 clients of a dual-stack socket as the IPv4 address they are. */
	if (memcmp(key.bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0)
		inet_ntop(AF_INET, key.bytes + 12, host, (socklen_t)hostlen);
	else
		inet_ntop(AF_INET6, key.bytes, host, (socklen_t)hostlen);
	*port = ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
					       : ((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

char *netaddr_format(const struct sockaddr *sa, char *buf, size_t buflen)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	netaddr_host_port(sa, host, sizeof(host), &port);
	if (strchr(host, ':') != NULL)
		snprintf(buf, buflen, "[%s]:%u", host, port);
	else
		snprintf(buf, buflen, "%s:%u", host, port);
	return buf;
}
