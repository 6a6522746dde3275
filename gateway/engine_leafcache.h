/*
 * engine_leafcache.h - parsed certificate leaves of the pairs used last.
 *
 * A pair keeps its leaf as DER only (engine_certs.c): parsed, a P-256 leaf
 * costs about 4.6 kB against the DER's 0.4 kB, too much for 10,000 names in
 * every engine. But parsing it again costs more than the rest of a
 * handshake's certificate work: OpenSSL 3.0 builds a decoder for its public
 * key each time, about 120 us on this kind of machine. So the leaves of the
 * pairs in use stay parsed here, up to a fixed number, the least recently
 * used one going first: a name served again within a while costs one lookup,
 * and the memory is bounded (LEAF_CACHE_DEFAULT leaves, about 4.7 MB at
 * most per engine) however many names clients ask for.
 *
 * An engine is one thread; a cache belongs to one certificate set.
 */
#ifndef MG_ENGINE_LEAFCACHE_H
#define MG_ENGINE_LEAFCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define LEAF_CACHE_DEFAULT 1024

struct leaf_cache;

/* capacity: leaves kept parsed, 1..65535. NULL when out of memory. */
struct leaf_cache *leaf_cache_new(size_t capacity);
void leaf_cache_free(struct leaf_cache *lc);

/*
 * The parsed leaf of owner (a pair), from der[0..len) on a miss. hint is
 * the owner's own word, 0 before its first use: where its leaf was put
 * last (checked, so a leaf since evicted is never taken for it). The leaf
 * stays the cache's: a caller that keeps it takes a reference
 * (SSL_use_cert_and_key does). NULL when der does not parse.
 */
X509 *leaf_cache_get(struct leaf_cache *lc, const void *owner, uint32_t *hint,
		     const unsigned char *der, int len);

/* Leaves parsed so far (misses), for tests and the benchmark's reasoning. */
uint64_t leaf_cache_parses(const struct leaf_cache *lc);

#endif
