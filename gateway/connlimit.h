/*
 * connlimit.h - the master's table of live children and their client
 * addresses, for the global and per-address connection limits.
 */
#ifndef MG_CONNLIMIT_H
#define MG_CONNLIMIT_H

#include <stddef.h>
#include <sys/types.h>

#include "netaddr.h"

enum connlimit_verdict {
	CONNLIMIT_OK,
	CONNLIMIT_TOTAL,	/* max_connections reached */
	CONNLIMIT_PER_IP	/* max_connections_per_ip reached for this address */
};

struct connlimit_entry {
	pid_t pid;
	struct mg_ipkey addr;
};

struct connlimit {
	struct connlimit_entry *entries;
	size_t count;
	size_t capacity;
};

void connlimit_init(struct connlimit *table);
void connlimit_free(struct connlimit *table);

enum connlimit_verdict connlimit_check(const struct connlimit *table, const struct mg_ipkey *addr,
				       unsigned max_total, unsigned max_per_ip);
/* Record a child. Returns 0, or -1 when out of memory. */
int connlimit_add(struct connlimit *table, pid_t pid, const struct mg_ipkey *addr);
/* Forget a child; returns 0, or -1 when the pid was not recorded. */
int connlimit_remove(struct connlimit *table, pid_t pid);

#endif
