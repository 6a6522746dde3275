/*
 * fuzz_proxy_protocol.c - libFuzzer target for the PROXY protocol parser and
 * writer.
 *
 * Not only "does not crash" on an exact-size copy: it checks the promises the
 * session code relies on. consumed <= len and is 0 unless OK; INVALID comes
 * with a reason; INCOMPLETE never for PROXY_HEADER_MAX bytes or more. The
 * answer is consistent across prefixes: an OK header is INCOMPLETE at every
 * shorter length and OK with the same length at every longer one, and once
 * INVALID, more bytes never help. A parsed header with addresses, written
 * again with proxy_write (v1 and v2) and parsed back, names the same
 * endpoints.
 *
 * Build: clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *        -Ilib -Igateway tests/fuzz/fuzz_proxy_protocol.c gateway/proxy_protocol.c \
 *        lib/netaddr.c
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "proxy_protocol.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse data[0..len) from an exact-size heap copy, so overreads are caught. */
static enum proxy_parse_result parse_copy(const uint8_t *data, size_t len, size_t *consumed,
					  struct proxy_info *info)
{
	unsigned char *copy = malloc(len > 0 ? len : 1);
	const char *error = "unset";
	enum proxy_parse_result r;

	CHECK(copy != NULL);
	if (len > 0)
		memcpy(copy, data, len);
	r = proxy_parse(copy, len, consumed, info, &error);
	free(copy);

	CHECK(r == PROXY_PARSE_OK || r == PROXY_PARSE_INCOMPLETE || r == PROXY_PARSE_INVALID);
	CHECK(*consumed <= len);
	if (r == PROXY_PARSE_OK) {
		CHECK(*consumed > 0 && *consumed <= PROXY_HEADER_MAX);
		CHECK(error == NULL);
		CHECK(info->has_addresses == 0 || info->has_addresses == 1);
		if (info->has_addresses) {
			CHECK(info->source.ss_family == AF_INET ||
			      info->source.ss_family == AF_INET6);
			CHECK(info->destination.ss_family == info->source.ss_family);
		}
	} else {
		CHECK(*consumed == 0);
		CHECK(info->has_addresses == 0);
		if (r == PROXY_PARSE_INVALID)
			CHECK(error != NULL && error[0] != '\0');
		else
			CHECK(error == NULL && len < PROXY_HEADER_MAX);
	}
	return r;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void check_same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct mg_ipkey ka, kb;

	CHECK(netaddr_key((const struct sockaddr *)a, &ka) == 0);
	CHECK(netaddr_key((const struct sockaddr *)b, &kb) == 0);
	CHECK(netaddr_key_equal(&ka, &kb));
	CHECK(port_of(a) == port_of(b));
}

static void check_rewrite(const struct proxy_info *info)
{
	for (int version = 1; version <= 2; version++) {
		unsigned char out[PROXY_HEADER_MAX];
		struct proxy_info again;
		size_t n, consumed;

		n = proxy_write(version, (const struct sockaddr *)&info->source,
				(const struct sockaddr *)&info->destination, out, sizeof(out));
		CHECK(n > 0 && n <= sizeof(out));
		CHECK(parse_copy(out, n, &consumed, &again) == PROXY_PARSE_OK);
		CHECK(consumed == n);
		CHECK(again.has_addresses == info->has_addresses);
		if (info->has_addresses) {
			check_same_endpoint(&info->source, &again.source);
			check_same_endpoint(&info->destination, &again.destination);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info info, other;
	size_t consumed, other_consumed;
	/* Past PROXY_HEADER_MAX + 1 bytes nothing can change the answer. */
	size_t limit = size < PROXY_HEADER_MAX + 1 ? size : PROXY_HEADER_MAX + 1;
	enum proxy_parse_result r = parse_copy(data, size, &consumed, &info);
	bool seen_invalid = false;

	/* Every shorter prefix agrees with the whole. */
	for (size_t k = 0; k < limit; k++) {
		enum proxy_parse_result rk = parse_copy(data, k, &other_consumed, &other);

		if (rk == PROXY_PARSE_INVALID)
			seen_invalid = true;
		/* Once INVALID, always INVALID. */
		CHECK(!seen_invalid || rk == PROXY_PARSE_INVALID);
		if (r == PROXY_PARSE_INVALID)
			continue;
		if (r == PROXY_PARSE_INCOMPLETE) {
			CHECK(rk == PROXY_PARSE_INCOMPLETE);
		} else if (k < consumed) {
			CHECK(rk == PROXY_PARSE_INCOMPLETE);
		} else {
			CHECK(rk == PROXY_PARSE_OK && other_consumed == consumed);
			CHECK(memcmp(&other, &info, sizeof(info)) == 0);
		}
	}
	CHECK(!seen_invalid || r == PROXY_PARSE_INVALID);

	if (r == PROXY_PARSE_OK)
		check_rewrite(&info);
	return 0;
}
