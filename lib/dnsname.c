/*
 * dnsname.c - checking, lower-casing and matching DNS host names.
 */
#include <string.h>
#include <strings.h>

#include "dnsname.h"

static bool label_char(unsigned char c, unsigned flags)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       (c == '_' && (flags & DNS_NAME_UNDERSCORE) != 0);
}

size_t dns_name_normalize(const char *name, size_t len, char *out, unsigned flags,
			  bool *wildcard)
{
	size_t n = 0, label = 0;

	*wildcard = false;
	out[0] = '\0';
	if (len > 0 && name[len - 1] == '.')
		len--;
	if ((flags & DNS_NAME_WILDCARD) != 0 && len > 2 && name[0] == '*' && name[1] == '.') {
		*wildcard = true;
		name += 2;
		len -= 2;
	}
	if (len == 0 || len > DNS_NAME_MAX) {
		*wildcard = false;
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				break;
			label = 0;
		} else if (!label_char(c, flags) || ++label > 63) {
			break;
		}
		out[n++] = (char)c;
	}
	if (n != len || label == 0) {
		out[0] = '\0';
		*wildcard = false;
		return 0;
	}
	out[n] = '\0';
	return n;
}

bool dns_name_match(const char *pattern, const char *name)
{
	const char *dot;

	if (pattern == NULL || name == NULL || pattern[0] == '\0' || name[0] == '\0')
		return false;
	if (pattern[0] != '*' || pattern[1] != '.')
		return strcasecmp(pattern, name) == 0;
	/* The wildcard stands for exactly one whole, non-empty label. */
	dot = strchr(name, '.');
	return pattern[2] != '\0' && dot != NULL && dot != name &&
	       strcasecmp(dot + 1, pattern + 2) == 0;
}
