/*
 * master_connlimit.h - the master's table of live sessions and their client
 * addresses, for the global and per-address connection limits. A session is
 * known by its engine (group) and the engine's id for it; when an engine
 * dies, its whole group goes.
 *
 * Per address, what counts is what Dovecot counts: the connections that have
 * not logged in yet (a guesser's or a flood's), not the logged-in sessions
 * of an office of thirty behind one NAT address with five connections each.
 * Addresses are keys cut to the prefix that counts as one client
 * (penalty_address(): IPv6 per /64 by default).
 */
#ifndef MG_MASTER_CONNLIMIT_H
#define MG_MASTER_CONNLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

enum connlimit_verdict {
	CONNLIMIT_OK,
	CONNLIMIT_TOTAL,	/* max_connections reached */
	CONNLIMIT_PER_IP,	/* max_connections_per_ip reached for this address */
	CONNLIMIT_PRELOGIN_PER_IP,	/* max_prelogin_per_ip: too many not logged in yet */
	CONNLIMIT_BANNED	/* the address is banned (master_penalty.h): closed unanswered */
};

struct connlimit_entry {
	unsigned group;
	uint64_t id;
	struct mg_ipkey addr;
	bool logged_in;
	uint64_t user;			/* the user's hash (session_penalty.h), once logged in */
};

struct connlimit {
	struct connlimit_entry *entries;
	size_t count;
	size_t capacity;
};

void connlimit_init(struct connlimit *table);
void connlimit_free(struct connlimit *table);

/* The limits a new session from addr must keep; max_per_ip 0: no limit on all sessions. */
struct connlimit_limits {
	unsigned max_total;
	unsigned max_per_ip;
	unsigned max_prelogin_per_ip;
};

enum connlimit_verdict connlimit_check(const struct connlimit *table, const struct mg_ipkey *addr,
				       const struct connlimit_limits *limits);
/* The session logged in as user: it no longer counts against max_prelogin_per_ip. */
int connlimit_logged_in(struct connlimit *table, unsigned group, uint64_t id, uint64_t user);
/* Logged-in sessions of user from addr. */
unsigned connlimit_user_sessions(const struct connlimit *table, const struct mg_ipkey *addr,
				 uint64_t user);
/* Record a session. Returns 0, or -1 when out of memory. */
int connlimit_add(struct connlimit *table, unsigned group, uint64_t id,
		  const struct mg_ipkey *addr);
/* Forget a session; returns 0, or -1 when it was not recorded. */
int connlimit_remove(struct connlimit *table, unsigned group, uint64_t id);
/* Forget every session of a group; returns how many there were. */
size_t connlimit_remove_group(struct connlimit *table, unsigned group);

#endif
