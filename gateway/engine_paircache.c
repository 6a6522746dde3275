/*
 * engine_paircache.c - parsed certificate pairs of the names served last
 * (see engine_paircache.h).
 *
 * A fixed array of entries on a doubly linked recency list (indices, not
 * pointers: half the size). A hit moves its entry to the front; a miss
 * takes a free entry, or the one at the back once all are taken. Owners
 * are told nothing on eviction: their hint is checked against the entry's
 * owner on the next lookup instead.
 */
#include <stdlib.h>

#include <openssl/err.h>

#include "engine_paircache.h"

#define NONE UINT16_MAX

struct pair_entry {
	const void *owner;
	struct parsed_pair pair;
	uint16_t newer, older;
};

struct pair_cache {
	struct pair_entry *entries;
	size_t capacity, used;
	uint16_t newest, oldest;
	uint64_t parses;
};

struct pair_cache *pair_cache_new(size_t capacity)
{
	struct pair_cache *pc;

	if (capacity == 0 || capacity >= NONE)
		return NULL;
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return NULL;
	pc->entries = calloc(capacity, sizeof(*pc->entries));
	if (pc->entries == NULL) {
		free(pc);
		return NULL;
	}
	pc->capacity = capacity;
	pc->newest = pc->oldest = NONE;
	return pc;
}

static void drop_pair(struct parsed_pair *p)
{
	X509_free(p->leaf);
	EVP_PKEY_free(p->key);
	p->leaf = NULL;
	p->key = NULL;
}

void pair_cache_free(struct pair_cache *pc)
{
	if (pc == NULL)
		return;
	for (size_t i = 0; i < pc->used; i++)
		drop_pair(&pc->entries[i].pair);
	free(pc->entries);
	free(pc);
}

static void unlink_entry(struct pair_cache *pc, uint16_t i)
{
	struct pair_entry *e = &pc->entries[i];

	if (e->newer != NONE)
		pc->entries[e->newer].older = e->older;
	else
		pc->newest = e->older;
	if (e->older != NONE)
		pc->entries[e->older].newer = e->newer;
	else
		pc->oldest = e->newer;
}

static void push_newest(struct pair_cache *pc, uint16_t i)
{
	struct pair_entry *e = &pc->entries[i];

	e->newer = NONE;
	e->older = pc->newest;
	if (pc->newest != NONE)
		pc->entries[pc->newest].newer = i;
	pc->newest = i;
	if (pc->oldest == NONE)
		pc->oldest = i;
}

const struct parsed_pair *pair_cache_get(struct pair_cache *pc, const void *owner,
					 uint32_t *hint, pair_parse_fn *parse, void *arg)
{
	struct parsed_pair fresh = { NULL, NULL };
	uint16_t i;

	if (*hint != 0 && *hint <= pc->used && pc->entries[*hint - 1].owner == owner) {
		i = (uint16_t)(*hint - 1);
		if (pc->newest != i) {
			unlink_entry(pc, i);
			push_newest(pc, i);
		}
		return &pc->entries[i].pair;
	}
	pc->parses++;
	if (parse(owner, &fresh, arg) < 0) {
		ERR_clear_error();
		return NULL;
	}
	if (pc->used < pc->capacity) {
		i = (uint16_t)pc->used++;
	} else {
		i = pc->oldest;
		unlink_entry(pc, i);
		drop_pair(&pc->entries[i].pair);
	}
	pc->entries[i].owner = owner;
	pc->entries[i].pair = fresh;
	push_newest(pc, i);
	*hint = (uint32_t)i + 1;
	return &pc->entries[i].pair;
}

uint64_t pair_cache_parses(const struct pair_cache *pc)
{
	return pc->parses;
}
