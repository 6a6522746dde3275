/*
 * master_penalty.h - failed logins as the master remembers them: a delay
 * per client address and per user, and bans of addresses that keep failing.
 *
 * Password guessers are slowed the way Dovecot slows them: after the first
 * failed login, each further failure from the same address, or for the
 * same user from anywhere, is answered only after a delay of 2 s, doubling
 * up to 15 s; a successful login from the address clears the address's
 * count. The same wrong password again (a phone with an old password
 * retrying every few minutes) does not count again, so it cannot lock its
 * owner out: the caller passes a keyed hash of the credentials (the key is
 * made at start and never leaves memory), and the last few of each user
 * are remembered. An address with ban_after counted failures within
 * ban_window is banned for ban_time: the caller refuses its connections
 * before any TLS work.
 *
 * Addresses are keys as netaddr_key() makes them, already cut to the
 * prefix that counts as one client (IPv6 /64: penalty_address()); users
 * are 64-bit keyed hashes of their names, so the table keeps no name.
 *
 * Memory is bounded: each table has a fixed number of entries; when one is
 * full, the entry least recently failed in a short probe run gives way,
 * a banned one last. Times are the caller's monotonic milliseconds.
 */
#ifndef MG_MASTER_PENALTY_H
#define MG_MASTER_PENALTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netaddr.h"

#define PENALTY_FIRST_MS	2000
#define PENALTY_MAX_MS		15000
#define PENALTY_CREDS_KEPT	4	/* wrong passwords remembered per user */

struct penalty_limits {
	unsigned ban_after;		/* counted failures in the window; 0: never ban */
	long long ban_window_ms;
	long long ban_time_ms;
};

struct penalty;

/* Tables of at most max_addresses and max_users entries (each >= 1). NULL: out of memory. */
struct penalty *penalty_new(size_t max_addresses, size_t max_users);
void penalty_free(struct penalty *p);
void penalty_set_limits(struct penalty *p, const struct penalty_limits *limits);

/* The key of sa's client as one penalty counts it: IPv6 cut to v6_prefix bits (1..128). */
int penalty_address(const struct sockaddr *sa, unsigned v6_prefix, struct mg_ipkey *key);

/* What one failed login earned. */
struct penalty_verdict {
	long long delay_ms;		/* before the failure is answered */
	bool counted;			/* false: a password already tried, not counted again */
	bool banned;			/* this failure banned the address */
	long long banned_until;
	bool user_warning;		/* first time in a window that the user's failures reach ban_after */
	unsigned address_failures;	/* counted in the window (estimated), for the log */
	unsigned user_failures;
};

void penalty_failed(struct penalty *p, const struct mg_ipkey *address, uint64_t user,
		    uint64_t credentials, long long now_ms, struct penalty_verdict *out);

/* A successful login from address: its count starts again (a ban stays). */
void penalty_succeeded(struct penalty *p, const struct mg_ipkey *address, long long now_ms);

/* Is address banned at now_ms? *until (unless NULL) when it is. */
bool penalty_banned(const struct penalty *p, const struct mg_ipkey *address, long long now_ms,
		    long long *until);

/* Each address banned at now_ms, for a control tool; returns how many. */
size_t penalty_each_ban(const struct penalty *p, long long now_ms,
			void (*fn)(const struct mg_ipkey *address, long long until, void *arg),
			void *arg);

/* Lift a ban (and forget the address's failures). Returns whether it was banned. */
bool penalty_lift(struct penalty *p, const struct mg_ipkey *address, long long now_ms);

#endif
