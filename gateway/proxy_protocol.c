/*
 * proxy_protocol.c - the HAProxy PROXY protocol (haproxy doc/proxy-protocol.txt)
 * as pure functions over buffers: proxy_parse() recognises the header a load
 * balancer puts in front of a client connection, proxy_write() produces the
 * one mailgated puts in front of a backend connection.
 *
 * The parser is strict and incremental. It answers INCOMPLETE only while the
 * bytes seen so far can still become a valid header, so a client that is not
 * a proxy is refused at its first byte that fits neither signature, and a
 * broken proxy at its first wrong byte, never after a read that waits for
 * bytes that cannot help. It never answers INCOMPLETE for PROXY_HEADER_MAX or
 * more bytes. Every index into buf is checked against len before use.
 *
 * Version 1: "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN...\r\n",
 * single spaces, addresses as inet_pton() accepts them for the named family,
 * ports 0..65535 in decimal without leading zeros, at most 107 bytes.
 * Version 2: the 12-byte signature, version 2, command LOCAL (addresses
 * discarded, as the specification requires) or PROXY over TCP/IPv4, TCP/IPv6
 * or UNSPEC, a length that keeps the header within PROXY_HEADER_MAX, and for
 * TCP a well-formed chain of TLVs (type, 16-bit length, value) filling the
 * rest of the block; their contents are skipped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"
#include "proxy_protocol.h"

#define V1_LINE_MAX 107		/* CRLF included, from the specification */
#define V1_ADDR4_MAX 15		/* "255.255.255.255" */
#define V1_ADDR6_MAX 45		/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21
#define V2_ADDR_LEN_TCP4 12	/* 4 + 4 + 2 + 2 */
#define V2_ADDR_LEN_TCP6 36	/* 16 + 16 + 2 + 2 */
#define V2_TLV_HEADER_LEN 3	/* type, 16-bit length */

static const unsigned char v1_magic[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };

/* "\r\n\r\n\0\r\nQUIT\n", from the specification. */
const unsigned char proxy_v2_signature[PROXY_V2_SIGNATURE_LEN] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static enum proxy_parse_result invalid(const char **error, const char *reason)
{
	if (error != NULL)
		*error = reason;
	return PROXY_PARSE_INVALID;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- address text: "can this still become an address?" ------------------ */

/*
 * True when s[0..n) is a prefix of some dotted quad that inet_pton(AF_INET)
 * accepts: at most four octets of one to three digits, each at most 255 and
 * without a leading zero (glibc refuses "01").
 */
static bool v4_text_prefix_ok(const unsigned char *s, size_t n)
{
	unsigned octets = 0, digits = 0, value = 0;

	for (size_t i = 0; i < n; i++) {
		if (is_digit(s[i])) {
			if (digits == 0 && ++octets > 4)
				return false;
			if (digits > 0 && value == 0)
				return false;	/* leading zero */
			value = value * 10 + (unsigned)(s[i] - '0');
			if (value > 255)
				return false;
			digits++;
		} else if (s[i] == '.') {
			if (digits == 0 || octets == 4)
				return false;
			digits = 0;
			value = 0;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * True when s[0..n) is a prefix of some text that inet_pton(AF_INET6)
 * accepts. It follows the grammar inet_pton implements: groups of one to
 * four hex digits separated by ':', at most one "::" standing for at least
 * one zero group, an optional dotted quad as the last 32 bits, 128 bits in
 * all. A prefix stays possible while what it has used leaves room for what
 * it still needs.
 */
static bool v6_text_prefix_ok(const unsigned char *s, size_t n)
{
	unsigned groups = 0;	/* 16-bit groups finished by a ':' */
	unsigned digits = 0;	/* hex digits of the group in progress */
	unsigned gap = 0;	/* 1 once "::" was seen: it needs a group of room */
	size_t i = 0, token = 0;

	if (n == 0)
		return true;
	if (s[0] == ':') {
		/* A leading ':' must be the start of "::". */
		if (n == 1)
			return true;
		if (s[1] != ':')
			return false;
		i = 1;		/* the second ':' opens the gap below */
	}
	for (; i < n; i++) {
		if (is_hex(s[i])) {
			if (++digits > 4)
				return false;
			continue;
		}
		if (s[i] == ':') {
			token = i + 1;
			if (digits == 0) {
				/* "::": only once, with room for the zeros it stands for. */
				if (gap || groups + 1 > 8)
					return false;
				gap = 1;
				continue;
			}
			groups++;
			digits = 0;
			/* A single ':' must be followed by one more group. */
			if (groups + gap + 1 > 8)
				return false;
			continue;
		}
		if (s[i] == '.') {
			/*
			 * The token so far starts a dotted quad: the last two
			 * groups, so nothing can be added before it any more.
			 */
			if (gap ? groups + 2 + 1 > 8 : groups + 2 != 8)
				return false;
			/* Raw pointer arithmetic: token <= i < n. */
			return v4_text_prefix_ok(s + token, n - token);
		}
		return false;
	}
	return digits == 0 || groups + gap + 1 <= 8;
}

/* ---- version 1 ------------------------------------------------------------ */

/*
 * Length of the field at buf[start..end) that ends at term (or at end).
 * *whole says whether term was found.
 */
static size_t v1_field(const unsigned char *buf, size_t end, size_t start, unsigned char term,
		       bool *whole)
{
	size_t i = start;

	while (i < end && buf[i] != term)
		i++;
	*whole = i < end;
	return i - start;
}

/* An address of family followed by a space; *pos moves past the space. */
static enum proxy_parse_result v1_address(const unsigned char *buf, size_t end, size_t *pos,
					  int family, struct sockaddr_storage *ss, const char **error)
{
	char text[INET6_ADDRSTRLEN];
	bool whole;
	size_t start = *pos;
	size_t n = v1_field(buf, end, start, ' ', &whole);
	bool v4 = family == AF_INET;

	/*
	 * Checking the prefix grammar on a whole field too refuses bytes that
	 * inet_pton would never see, such as a NUL that would end its string.
	 * Raw pointer arithmetic: buf + start .. + n lies within buf[0..end).
	 */
	if (n > (v4 ? V1_ADDR4_MAX : V1_ADDR6_MAX) ||
	    !(v4 ? v4_text_prefix_ok(buf + start, n) : v6_text_prefix_ok(buf + start, n)))
		return invalid(error, v4 ? "bad TCP4 address" : "bad TCP6 address");
	if (!whole)
		return PROXY_PARSE_INCOMPLETE;
	if (n == 0)
		return invalid(error, "empty field (two spaces?)");
	memcpy(text, buf + start, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (v4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return invalid(error, "bad TCP4 address");
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			return invalid(error, "bad TCP6 address");
	}
	*pos = start + n + 1;
	return PROXY_PARSE_OK;
}

/* A port 0..65535 without leading zeros, ended by term; *pos moves past term. */
static enum proxy_parse_result v1_port(const unsigned char *buf, size_t end, size_t *pos,
				       unsigned char term, unsigned *port, const char **error)
{
	unsigned value = 0;
	size_t i = *pos;

	for (; i < end && buf[i] != term; i++) {
		if (!is_digit(buf[i]))
			return invalid(error, "bad port");
		if (i > *pos && value == 0)
			return invalid(error, "port with a leading zero");
		/* value <= 65535 here, so this cannot overflow. */
		value = value * 10 + (unsigned)(buf[i] - '0');
		if (value > 65535)
			return invalid(error, "port out of range");
	}
	if (i == end)
		return PROXY_PARSE_INCOMPLETE;
	if (i == *pos)
		return invalid(error, "empty port");
	*port = value;
	*pos = i + 1;
	return PROXY_PARSE_OK;
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
}

/* After "PROXY UNKNOWN": "\r\n", or a space, printable bytes, "\r\n". */
static enum proxy_parse_result v1_unknown_rest(const unsigned char *buf, size_t end, size_t *pos,
					       const char **error)
{
	size_t i = *pos;

	if (i < end && buf[i] == ' ') {
		for (i++; i < end && buf[i] != '\r'; i++)
			if (buf[i] < 0x20 || buf[i] > 0x7e)
				return invalid(error, "control byte in PROXY UNKNOWN line");
	}
	if (i == end)
		return PROXY_PARSE_INCOMPLETE;
	if (buf[i] != '\r')
		return invalid(error, "garbage after UNKNOWN");
	*pos = i + 1;
	return PROXY_PARSE_OK;
}

static bool token_is(const unsigned char *tok, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(tok, name, n) == 0;
}

static bool token_starts(const unsigned char *tok, size_t n, const char *name)
{
	return n <= strlen(name) && memcmp(tok, name, n) == 0;
}

/* Everything after "PROXY " up to and including the CR; *pos moves past it. */
static enum proxy_parse_result v1_body(const unsigned char *buf, size_t end, size_t *pos,
				       struct proxy_info *info, const char **error)
{
	enum proxy_parse_result r;
	const unsigned char *tok = buf + *pos;	/* raw pointer arithmetic: *pos <= end */
	size_t n = 0;
	unsigned sport, dport;
	int family;

	/* The protocol name ends at a space, or at the CR for UNKNOWN. */
	while (*pos + n < end && buf[*pos + n] != ' ' && buf[*pos + n] != '\r')
		n++;
	if (*pos + n == end) {
		if (token_starts(tok, n, "TCP4") || token_starts(tok, n, "TCP6") ||
		    token_starts(tok, n, "UNKNOWN"))
			return PROXY_PARSE_INCOMPLETE;
		return invalid(error, "unknown PROXY protocol (TCP4, TCP6 or UNKNOWN)");
	}
	if (token_is(tok, n, "UNKNOWN")) {
		*pos += n;
		return v1_unknown_rest(buf, end, pos, error);
	}
	if (token_is(tok, n, "TCP4"))
		family = AF_INET;
	else if (token_is(tok, n, "TCP6"))
		family = AF_INET6;
	else
		return invalid(error, "unknown PROXY protocol (TCP4, TCP6 or UNKNOWN)");
	if (buf[*pos + n] != ' ')
		return invalid(error, "missing addresses");
	*pos += n + 1;

	if ((r = v1_address(buf, end, pos, family, &info->source, error)) != PROXY_PARSE_OK)
		return r;
	if ((r = v1_address(buf, end, pos, family, &info->destination, error)) != PROXY_PARSE_OK)
		return r;
	if ((r = v1_port(buf, end, pos, ' ', &sport, error)) != PROXY_PARSE_OK)
		return r;
	if ((r = v1_port(buf, end, pos, '\r', &dport, error)) != PROXY_PARSE_OK)
		return r;
	set_port(&info->source, sport);
	set_port(&info->destination, dport);
	info->has_addresses = 1;
	return PROXY_PARSE_OK;
}

static enum proxy_parse_result parse_v1(const unsigned char *buf, size_t len, size_t *consumed,
					struct proxy_info *info, const char **error)
{
	/* Never look past 107 bytes: a line that needs more is invalid. */
	size_t end = len < V1_LINE_MAX ? len : V1_LINE_MAX;
	size_t n = end < sizeof(v1_magic) ? end : sizeof(v1_magic);
	size_t pos = sizeof(v1_magic);
	enum proxy_parse_result r;

	if (memcmp(buf, v1_magic, n) != 0)
		return invalid(error, "not a PROXY protocol header");
	if (end < sizeof(v1_magic))
		return PROXY_PARSE_INCOMPLETE;
	r = v1_body(buf, end, &pos, info, error);
	if (r == PROXY_PARSE_OK) {
		/* v1_body stopped after the CR. */
		if (pos == end)
			r = PROXY_PARSE_INCOMPLETE;
		else if (buf[pos] != '\n')
			r = invalid(error, "CR not followed by LF");
	}
	if (r == PROXY_PARSE_INCOMPLETE && end == V1_LINE_MAX)
		r = invalid(error, "no CRLF within 107 bytes");
	if (r != PROXY_PARSE_OK) {
		memset(info, 0, sizeof(*info));
		return r;
	}
	*consumed = pos + 1;
	return PROXY_PARSE_OK;
}

/* ---- version 2 ------------------------------------------------------------ */

/*
 * The TLV chain in buf[start..total), as far as the len bytes received show
 * it: every TLV must fit the block exactly.
 */
static enum proxy_parse_result v2_tlvs(const unsigned char *buf, size_t len, size_t start,
				       size_t total, const char **error)
{
	size_t pos = start;

	while (pos < total) {
		size_t vlen;

		/* pos < total <= PROXY_HEADER_MAX: these sums cannot overflow. */
		if (total - pos < V2_TLV_HEADER_LEN)
			return invalid(error, "truncated TLV");
		/* The high length byte alone can already be too much. */
		if (len == pos + 2 && ((size_t)buf[pos + 1] << 8) > total - pos - V2_TLV_HEADER_LEN)
			return invalid(error, "TLV longer than the header");
		if (len < pos + V2_TLV_HEADER_LEN)
			return PROXY_PARSE_INCOMPLETE;
		vlen = (size_t)buf[pos + 1] << 8 | buf[pos + 2];
		if (vlen > total - pos - V2_TLV_HEADER_LEN)
			return invalid(error, "TLV longer than the header");
		pos += V2_TLV_HEADER_LEN + vlen;
	}
	return PROXY_PARSE_OK;
}

/* Raw pointer arithmetic: addr and port point into a complete v2 header. */
static void v2_set_inet(struct sockaddr_storage *ss, const unsigned char *addr,
			const unsigned char *port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	memcpy(&sin->sin_port, port, 2);	/* both in network byte order */
}

static void v2_set_inet6(struct sockaddr_storage *ss, const unsigned char *addr,
			 const unsigned char *port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	memcpy(&sin6->sin6_port, port, 2);
}

static enum proxy_parse_result parse_v2(const unsigned char *buf, size_t len, size_t *consumed,
					struct proxy_info *info, const char **error)
{
	size_t n = len < sizeof(proxy_v2_signature) ? len : sizeof(proxy_v2_signature);
	size_t body, total, addr_len;
	unsigned command, family;
	enum proxy_parse_result r;

	if (memcmp(buf, proxy_v2_signature, n) != 0)
		return invalid(error, "not a PROXY protocol header");
	if (len < 13)
		return PROXY_PARSE_INCOMPLETE;
	if ((buf[12] >> 4) != 2)
		return invalid(error, "PROXY v2 header with a version other than 2");
	command = buf[12] & 0x0f;
	if (command != V2_CMD_LOCAL && command != V2_CMD_PROXY)
		return invalid(error, "PROXY v2 command neither LOCAL nor PROXY");
	if (len < 14)
		return PROXY_PARSE_INCOMPLETE;
	family = buf[13];
	/* LOCAL: the receiver must discard the address block, family included. */
	if (command == V2_CMD_PROXY && family != V2_FAM_UNSPEC && family != V2_FAM_TCP4 &&
	    family != V2_FAM_TCP6)
		return invalid(error, "PROXY v2 family other than TCP over IPv4/IPv6 or UNSPEC");
	/* The high length byte alone can already be too much. */
	if (len == 15 && ((size_t)buf[14] << 8) > PROXY_HEADER_MAX - PROXY_V2_FIXED_LEN)
		return invalid(error, "PROXY v2 header longer than we accept");
	if (len < PROXY_V2_FIXED_LEN)
		return PROXY_PARSE_INCOMPLETE;
	body = (size_t)buf[14] << 8 | buf[15];
	if (body > PROXY_HEADER_MAX - PROXY_V2_FIXED_LEN)
		return invalid(error, "PROXY v2 header longer than we accept");
	total = PROXY_V2_FIXED_LEN + body;

	addr_len = 0;
	if (command == V2_CMD_PROXY && family == V2_FAM_TCP4)
		addr_len = V2_ADDR_LEN_TCP4;
	else if (command == V2_CMD_PROXY && family == V2_FAM_TCP6)
		addr_len = V2_ADDR_LEN_TCP6;
	if (body < addr_len)
		return invalid(error, "PROXY v2 length too small for the addresses");
	if (addr_len > 0) {
		r = v2_tlvs(buf, len, PROXY_V2_FIXED_LEN + addr_len, total, error);
		if (r != PROXY_PARSE_OK)
			return r;
	}
	if (len < total)
		return PROXY_PARSE_INCOMPLETE;

	/* Raw pointer arithmetic below: every offset is < total <= len. */
	if (addr_len == V2_ADDR_LEN_TCP4) {
		v2_set_inet(&info->source, buf + 16, buf + 24);
		v2_set_inet(&info->destination, buf + 20, buf + 26);
		info->has_addresses = 1;
	} else if (addr_len == V2_ADDR_LEN_TCP6) {
		v2_set_inet6(&info->source, buf + 16, buf + 48);
		v2_set_inet6(&info->destination, buf + 32, buf + 50);
		info->has_addresses = 1;
	}
	*consumed = total;
	return PROXY_PARSE_OK;
}

enum proxy_parse_result proxy_parse(const unsigned char *buf, size_t len, size_t *consumed,
				    struct proxy_info *info, const char **error)
{
	*consumed = 0;
	memset(info, 0, sizeof(*info));
	if (error != NULL)
		*error = NULL;
	if (len == 0)
		return PROXY_PARSE_INCOMPLETE;
	if (buf[0] == v1_magic[0])
		return parse_v1(buf, len, consumed, info, error);
	if (buf[0] == proxy_v2_signature[0])
		return parse_v2(buf, len, consumed, info, error);
	return invalid(error, "not a PROXY protocol header");
}

/* ---- writing -------------------------------------------------------------- */

/* The two endpoints in one family: AF_INET, AF_INET6 or AF_UNSPEC. */
struct endpoints {
	int family;
	unsigned char src[16], dst[16];	/* 4 or 16 bytes used */
	unsigned char sport[2], dport[2];	/* network byte order */
};

static int port_bytes(const struct sockaddr *sa, unsigned char out[2])
{
	if (sa->sa_family == AF_INET)
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_port, 2);
	else if (sa->sa_family == AF_INET6)
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_port, 2);
	else
		return -1;
	return 0;
}

/*
 * Both addresses as IPv4 when both are IPv4 or v4-mapped IPv6, otherwise both
 * as IPv6 (an IPv4 one as ::ffff:a.b.c.d); AF_UNSPEC when either is missing
 * or not IP.
 */
static void choose_endpoints(const struct sockaddr *source, const struct sockaddr *destination,
			     struct endpoints *ep)
{
	struct mg_ipkey s, d;

	memset(ep, 0, sizeof(*ep));
	ep->family = AF_UNSPEC;
	if (source == NULL || destination == NULL || netaddr_key(source, &s) < 0 ||
	    netaddr_key(destination, &d) < 0 || port_bytes(source, ep->sport) < 0 ||
	    port_bytes(destination, ep->dport) < 0)
		return;
	if (memcmp(s.bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0 &&
	    memcmp(d.bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		ep->family = AF_INET;
		/* Raw pointer arithmetic: the IPv4 address is the key's last 4 bytes. */
		memcpy(ep->src, s.bytes + 12, 4);
		memcpy(ep->dst, d.bytes + 12, 4);
	} else {
		ep->family = AF_INET6;
		memcpy(ep->src, s.bytes, 16);
		memcpy(ep->dst, d.bytes, 16);
	}
}

static unsigned port_value(const unsigned char port[2])
{
	return (unsigned)port[0] << 8 | port[1];
}

static size_t write_v1(const struct endpoints *ep, unsigned char *out, size_t outsize)
{
	char line[V1_LINE_MAX + 1];
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int n;

	if (ep->family == AF_UNSPEC) {
		n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
	} else {
		if (inet_ntop(ep->family, ep->src, src, sizeof(src)) == NULL ||
		    inet_ntop(ep->family, ep->dst, dst, sizeof(dst)) == NULL)
			return 0;
		n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
			     ep->family == AF_INET ? "TCP4" : "TCP6", src, dst,
			     port_value(ep->sport), port_value(ep->dport));
	}
	if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > outsize)
		return 0;
	memcpy(out, line, (size_t)n);
	return (size_t)n;
}

static size_t write_v2(const struct endpoints *ep, unsigned char *out, size_t outsize)
{
	size_t alen = ep->family == AF_INET ? 4 : 16;
	size_t body = ep->family == AF_INET ? V2_ADDR_LEN_TCP4
		    : ep->family == AF_INET6 ? V2_ADDR_LEN_TCP6 : 0;
	size_t total = PROXY_V2_FIXED_LEN + body;

	if (outsize < total)
		return 0;
	memcpy(out, proxy_v2_signature, sizeof(proxy_v2_signature));
	out[12] = (unsigned char)(0x20 | (ep->family == AF_UNSPEC ? V2_CMD_LOCAL : V2_CMD_PROXY));
	out[13] = ep->family == AF_INET ? V2_FAM_TCP4
		: ep->family == AF_INET6 ? V2_FAM_TCP6 : V2_FAM_UNSPEC;
	out[14] = (unsigned char)(body >> 8);
	out[15] = (unsigned char)(body & 0xff);
	if (body > 0) {
		/* Raw pointer arithmetic: src, dst, sport, dport after the fixed part. */
		unsigned char *p = out + PROXY_V2_FIXED_LEN;

		memcpy(p, ep->src, alen);
		memcpy(p + alen, ep->dst, alen);
		memcpy(p + 2 * alen, ep->sport, 2);
		memcpy(p + 2 * alen + 2, ep->dport, 2);
	}
	return total;
}

size_t proxy_write(int version, const struct sockaddr *source, const struct sockaddr *destination,
		   unsigned char *out, size_t outsize)
{
	struct endpoints ep;

	choose_endpoints(source, destination, &ep);
	if (version == 1)
		return write_v1(&ep, out, outsize);
	if (version == 2)
		return write_v2(&ep, out, outsize);
	return 0;
}
