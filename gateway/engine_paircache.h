/*
 * engine_paircache.h - parsed certificate pairs of the names served last.
 *
 * A pair in a certificate set (engine_certs.c) keeps its leaf and its key
 * as DER only: parsed, a P-256 leaf costs about 4.6 kB and its key 2.4 kB,
 * against 0.5 kB for both as DER - too much for 10,000 names in every
 * engine. But parsing a leaf costs more than the rest of a handshake's
 * certificate work: OpenSSL 3.0 builds a decoder for its public key each
 * time, about 120 us on this kind of machine (the key, through a decoder
 * kept for the set, about 35 us). So the pairs of the names in use stay
 * parsed here, up to a fixed number, the least recently used one going
 * first: a name served again within a while costs one lookup, and the
 * memory is bounded (PAIR_CACHE_DEFAULT pairs, about 7 MB at most per
 * engine) however many names clients ask for.
 *
 * An engine is one thread; a cache belongs to one certificate set.
 */
#ifndef MG_ENGINE_PAIRCACHE_H
#define MG_ENGINE_PAIRCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define PAIR_CACHE_DEFAULT 1024

struct pair_cache;

/* A pair ready for SSL_use_cert_and_key(). */
struct parsed_pair {
	X509 *leaf;
	EVP_PKEY *key;
};

/* Parse owner's pair into *out; 0, or -1 (nothing to free in *out). */
typedef int pair_parse_fn(const void *owner, struct parsed_pair *out, void *arg);

/* capacity: pairs kept parsed, 1..65534. NULL when out of memory. */
struct pair_cache *pair_cache_new(size_t capacity);
void pair_cache_free(struct pair_cache *pc);

/*
 * The parsed pair of owner, from parse(owner, arg) on a miss. hint is the
 * owner's own word, 0 before its first use: where its pair was put last
 * (checked, so a pair since evicted is never taken for it). The pair stays
 * the cache's: a caller that keeps its parts takes references
 * (SSL_use_cert_and_key does). NULL when parse fails.
 */
const struct parsed_pair *pair_cache_get(struct pair_cache *pc, const void *owner,
					 uint32_t *hint, pair_parse_fn *parse, void *arg);

/* Pairs parsed so far (misses), for tests. */
uint64_t pair_cache_parses(const struct pair_cache *pc);

#endif
