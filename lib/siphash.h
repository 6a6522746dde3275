/*
 * siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit
 * hash that nobody without the key can steer. The login penalty hashes user
 * names and wrong passwords with it in every session child, where an
 * OpenSSL HMAC would cost a provider fetch in each fresh process.
 */
#ifndef MG_SIPHASH_H
#define MG_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

uint64_t siphash24(const unsigned char key[SIPHASH_KEY_LEN], const void *data, size_t len);

#endif
