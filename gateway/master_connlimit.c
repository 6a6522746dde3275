/*
 * master_connlimit.c - counting sessions per client address.
 *
 * A flat array scanned linearly: max_connections is at most a few thousand,
 * so a scan per accept costs microseconds and needs no hashing to get right.
 */
#include <stdlib.h>
#include <string.h>

#include "master_connlimit.h"

void connlimit_init(struct connlimit *table)
{
	memset(table, 0, sizeof(*table));
}

void connlimit_free(struct connlimit *table)
{
	free(table->entries);
	connlimit_init(table);
}

enum connlimit_verdict connlimit_check(const struct connlimit *table, const struct mg_ipkey *addr,
				       const struct connlimit_limits *limits)
{
	unsigned same = 0, prelogin = 0;

	if (table->count >= limits->max_total)
		return CONNLIMIT_TOTAL;
	for (size_t i = 0; i < table->count; i++) {
		if (netaddr_key_equal(&table->entries[i].addr, addr)) {
			same++;
			prelogin += !table->entries[i].logged_in;
		}
	}
	if (limits->max_per_ip > 0 && same >= limits->max_per_ip)
		return CONNLIMIT_PER_IP;
	return prelogin >= limits->max_prelogin_per_ip ? CONNLIMIT_PRELOGIN_PER_IP : CONNLIMIT_OK;
}

int connlimit_logged_in(struct connlimit *table, unsigned group, uint64_t id, uint64_t user)
{
	for (size_t i = 0; i < table->count; i++) {
		if (table->entries[i].group == group && table->entries[i].id == id) {
			table->entries[i].logged_in = true;
			table->entries[i].user = user;
			return 0;
		}
	}
	return -1;
}

unsigned connlimit_user_sessions(const struct connlimit *table, const struct mg_ipkey *addr,
				 uint64_t user)
{
	unsigned n = 0;

	for (size_t i = 0; i < table->count; i++) {
		const struct connlimit_entry *e = &table->entries[i];

		n += e->logged_in && e->user == user && netaddr_key_equal(&e->addr, addr);
	}
	return n;
}

int connlimit_add(struct connlimit *table, unsigned group, uint64_t id,
		  const struct mg_ipkey *addr)
{
	if (table->count == table->capacity) {
		size_t capacity = table->capacity == 0 ? 64 : table->capacity * 2;
		struct connlimit_entry *grown = realloc(table->entries, capacity * sizeof(*grown));

		if (grown == NULL)
			return -1;
		table->entries = grown;
		table->capacity = capacity;
	}
	table->entries[table->count].group = group;
	table->entries[table->count].id = id;
	table->entries[table->count].addr = *addr;
	table->entries[table->count].logged_in = false;
	table->count++;
	return 0;
}

int connlimit_remove(struct connlimit *table, unsigned group, uint64_t id)
{
	for (size_t i = 0; i < table->count; i++) {
		if (table->entries[i].group == group && table->entries[i].id == id) {
			/* Order does not matter: move the last entry into the hole. */
			table->entries[i] = table->entries[table->count - 1];
			table->count--;
			return 0;
		}
	}
	return -1;
}

size_t connlimit_remove_group(struct connlimit *table, unsigned group)
{
	size_t removed = 0;

	for (size_t i = 0; i < table->count;) {
		if (table->entries[i].group == group) {
			table->entries[i] = table->entries[table->count - 1];
			table->count--;
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}
