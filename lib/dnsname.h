/*
 * dnsname.h - DNS host names as clients send them (TLS SNI) and as the
 * configuration and certificates spell them: checked, lower-cased, and
 * matched with one-label wildcards ("*.example.org" matches
 * "imap.example.org", neither "example.org" nor "a.b.example.org"), the
 * rule of certificates (RFC 6125) that client sets share. Pure functions
 * over a buffer, so the engines, the session children and the
 * configuration all agree on what a name is.
 */
#ifndef MG_DNSNAME_H
#define MG_DNSNAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name (RFC 1035: 253 characters without the final dot). */
#define DNS_NAME_MAX 253

enum dns_name_flags {
	DNS_NAME_WILDCARD = 1,		/* a first label of exactly "*" is allowed */
	DNS_NAME_UNDERSCORE = 2,	/* '_' in labels (some certificates carry one) */
};

/*
 * Lower-case name[0..len) into out (DNS_NAME_MAX + 1 bytes, terminated)
 * without a final dot, checking it is a host name: dot-separated labels of
 * 1..63 letters, digits and '-' (and '_' with DNS_NAME_UNDERSCORE). With
 * DNS_NAME_WILDCARD a leading "*." is accepted and *wildcard set; out then
 * holds the rest, without the "*.". Returns the length written, or 0 when
 * the name is not valid (out then holds "" and *wildcard is false).
 */
size_t dns_name_normalize(const char *name, size_t len, char *out, unsigned flags,
			  bool *wildcard);

/*
 * Does name match pattern: equal, or pattern "*.REST" and name one label
 * followed by ".REST"? Both are compared case-insensitively and should be
 * normalized; NULL or "" matches nothing.
 */
bool dns_name_match(const char *pattern, const char *name);

#endif
