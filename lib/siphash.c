/*
 * siphash.c - SipHash-2-4 (see siphash.h), written from the paper's
 * description: four 64-bit words of state, two rounds per 8-byte block of
 * little-endian input, the length in the last block's top byte, four
 * rounds to finish.
 */
#include "siphash.h"

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void rounds(uint64_t v[4], int n)
{
	while (n-- > 0) {
		v[0] += v[1];
		v[1] = rotl(v[1], 13) ^ v[0];
		v[0] = rotl(v[0], 32);
		v[2] += v[3];
		v[3] = rotl(v[3], 16) ^ v[2];
		v[0] += v[3];
		v[3] = rotl(v[3], 21) ^ v[0];
		v[2] += v[1];
		v[1] = rotl(v[1], 17) ^ v[2];
		v[2] = rotl(v[2], 32);
	}
}

uint64_t siphash24(const unsigned char key[SIPHASH_KEY_LEN], const void *data, size_t len)
{
	const unsigned char *in = data;
	uint64_t k0 = le64(key), k1 = le64(key + 8), last = (uint64_t)len << 56;
	/* "somepseudorandomlygeneratedbytes" */
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
			  k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
	size_t whole = len - len % 8;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = le64(in + i);

		v[3] ^= m;
		rounds(v, 2);
		v[0] ^= m;
	}
	for (size_t i = whole; i < len; i++)
		last |= (uint64_t)in[i] << (8 * (i - whole));
	v[3] ^= last;
	rounds(v, 2);
	v[0] ^= last;
	v[2] ^= 0xff;
	rounds(v, 4);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
