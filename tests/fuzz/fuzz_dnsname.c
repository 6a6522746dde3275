/*
 * fuzz_dnsname.c - libFuzzer target for host names as clients send them in
 * SNI (dnsname.h).
 *
 * Beyond "does not crash" on an exact-size copy, it checks what the engine,
 * the session child and the configuration rely on: an accepted name is at
 * most DNS_NAME_MAX characters of lower-case letters, digits, '-' and dots,
 * without an empty label or a final dot; accepting it again gives the same
 * name (so the child's re-check of the engine's name always passes); it
 * matches itself, and a wildcard made of its parent domain matches it when
 * it has a first label. The input is tried with every flag combination, and
 * split in two as a pattern and a name for the match.
 *
 * Build: clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *        -Ilib tests/fuzz/fuzz_dnsname.c lib/dnsname.c
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsname.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_normalized(const char *out, size_t n, unsigned flags)
{
	char again[DNS_NAME_MAX + 1], wild[DNS_NAME_MAX + 3];
	bool wildcard;
	const char *dot;

	CHECK(n > 0 && n <= DNS_NAME_MAX && strlen(out) == n);
	CHECK(out[0] != '.' && out[n - 1] != '.' && strstr(out, "..") == NULL);
	for (size_t i = 0; i < n; i++) {
		char c = out[i];

		CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      (c == '_' && (flags & DNS_NAME_UNDERSCORE) != 0));
	}
	CHECK(dns_name_normalize(out, n, again, flags & DNS_NAME_UNDERSCORE, &wildcard) == n);
	CHECK(!wildcard && memcmp(again, out, n + 1) == 0);
	CHECK(dns_name_match(out, out));
	dot = strchr(out, '.');
	if (dot != NULL) {
		wild[0] = '*';
		memcpy(wild + 1, dot, strlen(dot) + 1);
		CHECK(dns_name_match(wild, out));
		CHECK(!dns_name_match(wild, dot + 1));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size > 0 ? size : 1);
	char out[DNS_NAME_MAX + 1];
	size_t half = size / 2;
	char *a, *b;

	CHECK(copy != NULL);
	if (size > 0)
		memcpy(copy, data, size);
	for (unsigned flags = 0; flags < 4; flags++) {
		bool wildcard;
		size_t n = dns_name_normalize(copy, size, out, flags, &wildcard);

		if (n == 0) {
			CHECK(out[0] == '\0' && !wildcard);
			continue;
		}
		CHECK(!wildcard || (flags & DNS_NAME_WILDCARD) != 0);
		check_normalized(out, n, flags);
	}
	free(copy);

	/* The match over two terminated strings: never crashes, empty never matches. */
	a = malloc(half + 1);
	b = malloc(size - half + 1);
	CHECK(a != NULL && b != NULL);
	memcpy(a, data, half);
	a[half] = '\0';
	memcpy(b, data + half, size - half);
	b[size - half] = '\0';
	if (a[0] == '\0' || b[0] == '\0')
		CHECK(!dns_name_match(a, b));
	else
		(void)dns_name_match(a, b);
	free(a);
	free(b);
	return 0;
}
