/*
 * engine_leafcache.c - parsed certificate leaves of the pairs used last
 * (see engine_leafcache.h).
 *
 * A fixed array of entries on a doubly linked recency list (indices, not
 * pointers: half the size). A hit moves its entry to the front; a miss
 * takes a free entry, or the one at the back once all are taken. Owners
 * are told nothing on eviction: their hint is checked against the entry's
 * owner on the next lookup instead.
 */
#include <stdlib.h>

#include <openssl/err.h>

#include "engine_leafcache.h"

#define NONE UINT16_MAX

struct leaf_entry {
	const void *owner;
	X509 *leaf;
	uint16_t newer, older;
};

struct leaf_cache {
	struct leaf_entry *entries;
	size_t capacity, used;
	uint16_t newest, oldest;
	uint64_t parses;
};

struct leaf_cache *leaf_cache_new(size_t capacity)
{
	struct leaf_cache *lc;

	if (capacity == 0 || capacity >= NONE)
		return NULL;
	lc = calloc(1, sizeof(*lc));
	if (lc == NULL)
		return NULL;
	lc->entries = calloc(capacity, sizeof(*lc->entries));
	if (lc->entries == NULL) {
		free(lc);
		return NULL;
	}
	lc->capacity = capacity;
	lc->newest = lc->oldest = NONE;
	return lc;
}

void leaf_cache_free(struct leaf_cache *lc)
{
	if (lc == NULL)
		return;
	for (size_t i = 0; i < lc->used; i++)
		X509_free(lc->entries[i].leaf);
	free(lc->entries);
	free(lc);
}

static void unlink_entry(struct leaf_cache *lc, uint16_t i)
{
	struct leaf_entry *e = &lc->entries[i];

	if (e->newer != NONE)
		lc->entries[e->newer].older = e->older;
	else
		lc->newest = e->older;
	if (e->older != NONE)
		lc->entries[e->older].newer = e->newer;
	else
		lc->oldest = e->newer;
}

static void push_newest(struct leaf_cache *lc, uint16_t i)
{
	struct leaf_entry *e = &lc->entries[i];

	e->newer = NONE;
	e->older = lc->newest;
	if (lc->newest != NONE)
		lc->entries[lc->newest].newer = i;
	lc->newest = i;
	if (lc->oldest == NONE)
		lc->oldest = i;
}

X509 *leaf_cache_get(struct leaf_cache *lc, const void *owner, uint32_t *hint,
		     const unsigned char *der, int len)
{
	const unsigned char *p = der;
	X509 *leaf;
	uint16_t i;

	if (*hint != 0 && *hint <= lc->used && lc->entries[*hint - 1].owner == owner) {
		i = (uint16_t)(*hint - 1);
		if (lc->newest != i) {
			unlink_entry(lc, i);
			push_newest(lc, i);
		}
		return lc->entries[i].leaf;
	}
	leaf = d2i_X509(NULL, &p, len);
	lc->parses++;
	if (leaf == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (lc->used < lc->capacity) {
		i = (uint16_t)lc->used++;
	} else {
		i = lc->oldest;
		unlink_entry(lc, i);
		X509_free(lc->entries[i].leaf);
	}
	lc->entries[i].owner = owner;
	lc->entries[i].leaf = leaf;
	push_newest(lc, i);
	*hint = (uint32_t)i + 1;
	return leaf;
}

uint64_t leaf_cache_parses(const struct leaf_cache *lc)
{
	return lc->parses;
}
