/*
 * master_penalty.c - failed logins as the master remembers them (see
 * master_penalty.h).
 *
 * Two fixed tables, one of addresses and one of users, with the same shape:
 * open addressing over a keyed hash (the key is random per start, so
 * nobody can choose addresses or names that pile up in one place), looked
 * up over a short run of slots. Each entry keeps a streak (failures since
 * the last success or since it went quiet, for the delay) and a window
 * count for bans: the failures in the current window plus the previous
 * window's, weighted by how much of it still overlaps the last ban_window
 * (a sliding window in two counters instead of a timestamp per failure).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "master_penalty.h"

#define PROBE 16			/* slots looked at per lookup */
#define DEFAULT_WINDOW_MS (10 * 60 * 1000LL)

/* What both tables keep per key. */
struct failures {
	unsigned streak;
	long long last_failure;
	long long window_start;
	unsigned in_window, in_previous;
};

struct address_entry {
	bool used;
	struct mg_ipkey key;
	struct failures f;
	long long banned_until;		/* 0: not banned */
};

struct user_entry {
	bool used;
	uint64_t key;
	struct failures f;
	long long warned_window;	/* the window a warning was given in; -1: none */
	uint64_t creds[PENALTY_CREDS_KEPT];
	unsigned n_creds, next_cred;
};

struct penalty {
	struct address_entry *addresses;
	size_t n_addresses;
	struct user_entry *users;
	size_t n_users;
	uint64_t seed;
	struct penalty_limits limits;
};

static uint64_t mix(uint64_t x)
{
	/* splitmix64's finaliser: every input bit reaches every output bit. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t hash_address(const struct penalty *p, const struct mg_ipkey *key)
{
	uint64_t a, b;

	memcpy(&a, key->bytes, sizeof(a));
	memcpy(&b, key->bytes + sizeof(a), sizeof(b));
	return mix(mix(a ^ p->seed) ^ b);
}

static uint64_t hash_user(const struct penalty *p, uint64_t key)
{
	return mix(key ^ p->seed);
}

struct penalty *penalty_new(size_t max_addresses, size_t max_users)
{
	struct penalty *p;

	if (max_addresses == 0 || max_users == 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->addresses = calloc(max_addresses, sizeof(*p->addresses));
	p->users = calloc(max_users, sizeof(*p->users));
	if (p->addresses == NULL || p->users == NULL) {
		penalty_free(p);
		return NULL;
	}
	p->n_addresses = max_addresses;
	p->n_users = max_users;
	if (getrandom(&p->seed, sizeof(p->seed), 0) != sizeof(p->seed))
		p->seed = mix((uint64_t)(uintptr_t)p ^ (uint64_t)time(NULL));
	p->limits = (struct penalty_limits){ .ban_after = 0, .ban_window_ms = DEFAULT_WINDOW_MS };
	return p;
}

void penalty_free(struct penalty *p)
{
	if (p == NULL)
		return;
	free(p->addresses);
	/* The users' entries hold hashes of wrong passwords: not left in freed memory. */
	if (p->users != NULL)
		explicit_bzero(p->users, p->n_users * sizeof(*p->users));
	free(p->users);
	free(p);
}

void penalty_set_limits(struct penalty *p, const struct penalty_limits *limits)
{
	p->limits = *limits;
	if (p->limits.ban_window_ms <= 0)
		p->limits.ban_window_ms = DEFAULT_WINDOW_MS;
}

int penalty_address(const struct sockaddr *sa, unsigned v6_prefix, struct mg_ipkey *key)
{
	if (netaddr_key(sa, key) < 0 || v6_prefix == 0 || v6_prefix > 128)
		return -1;
	/* IPv4 arrives v4-mapped (::ffff:a.b.c.d) and counts whole. */
	if (sa->sa_family == AF_INET6 &&
	    memcmp(key->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) != 0) {
		for (unsigned bit = v6_prefix; bit < 128; bit++)
			key->bytes[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	}
	return 0;
}

/* ---- the window and the streak ----------------------------------------------- */

static void roll(struct failures *f, long long now, long long window)
{
	long long passed;

	if (f->window_start == 0 || now < f->window_start) {
		f->window_start = now;
		f->in_window = f->in_previous = 0;
		return;
	}
	passed = (now - f->window_start) / window;
	if (passed == 0)
		return;
	f->in_previous = passed == 1 ? f->in_window : 0;
	f->in_window = 0;
	f->window_start += passed * window;
}

/* Failures within the last window, estimated. */
static unsigned in_last_window(struct failures *f, long long now, long long window)
{
	long long into;

	roll(f, now, window);
	into = now - f->window_start;
	return f->in_window + (unsigned)((long long)f->in_previous * (window - into) / window);
}

static long long delay_for(unsigned streak)
{
	long long ms = PENALTY_FIRST_MS;

	if (streak <= 1)
		return 0;
	for (unsigned i = 2; i < streak && ms < PENALTY_MAX_MS; i++)
		ms *= 2;
	return ms < PENALTY_MAX_MS ? ms : PENALTY_MAX_MS;
}

/* A quiet address or user starts again: the streak lasts one window. */
static void forget_if_quiet(struct failures *f, long long now, long long window)
{
	if (f->streak > 0 && now - f->last_failure >= window)
		f->streak = 0;
}

static bool quiet(const struct failures *f, long long now, long long window)
{
	return now - f->last_failure >= 2 * window;
}

/* ---- the tables ---------------------------------------------------------------- */

/*
 * The entry for key, or where it would go: a free slot of
 * the run, else one gone quiet, else the least recently failed one (a
 * banned one only when the whole run is banned, the ban nearest its end).
 * create false: NULL when key is not there.
 */
static struct address_entry *address_slot(struct penalty *p, const struct mg_ipkey *key,
					  long long now, bool create)
{
	size_t start = (size_t)(hash_address(p, key) % p->n_addresses);
	struct address_entry *spare = NULL;
	int spare_rank = 4;

	for (size_t i = 0; i < PROBE && i < p->n_addresses; i++) {
		struct address_entry *e = &p->addresses[(start + i) % p->n_addresses];
		int rank;

		if (e->used && netaddr_key_equal(&e->key, key))
			return e;
		if (!e->used)
			rank = 0;
		else if (e->banned_until <= now && quiet(&e->f, now, p->limits.ban_window_ms))
			rank = 1;
		else
			rank = e->banned_until <= now ? 2 : 3;
		if (rank < spare_rank ||
		    (rank == spare_rank && rank == 2 && e->f.last_failure < spare->f.last_failure) ||
		    (rank == spare_rank && rank == 3 && e->banned_until < spare->banned_until)) {
			spare = e;
			spare_rank = rank;
		}
	}
	if (!create || spare == NULL)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	spare->used = true;
	spare->key = *key;
	return spare;
}

static struct user_entry *user_slot(struct penalty *p, uint64_t key)
{
	size_t start = (size_t)(hash_user(p, key) % p->n_users);
	struct user_entry *spare = &p->users[start];	/* tables have one entry at least */

	for (size_t i = 0; i < PROBE && i < p->n_users; i++) {
		struct user_entry *e = &p->users[(start + i) % p->n_users];

		if (e->used && e->key == key)
			return e;
		if (spare->used && (!e->used || e->f.last_failure < spare->f.last_failure))
			spare = e;
	}
	explicit_bzero(spare, sizeof(*spare));
	spare->used = true;
	spare->key = key;
	spare->warned_window = -1;
	return spare;
}

static bool tried_before(struct user_entry *u, uint64_t credentials)
{
	for (unsigned i = 0; i < u->n_creds; i++)
		if (u->creds[i] == credentials)
			return true;
	u->creds[u->next_cred] = credentials;
	u->next_cred = (u->next_cred + 1) % PENALTY_CREDS_KEPT;
	if (u->n_creds < PENALTY_CREDS_KEPT)
		u->n_creds++;
	return false;
}

static void count(struct failures *f, long long now, long long window)
{
	forget_if_quiet(f, now, window);
	roll(f, now, window);
	f->streak++;
	f->in_window++;
	f->last_failure = now;
}

void penalty_failed(struct penalty *p, const struct mg_ipkey *address, uint64_t user,
		    uint64_t credentials, long long now_ms, struct penalty_verdict *out)
{
	long long window = p->limits.ban_window_ms;
	struct address_entry *a = address_slot(p, address, now_ms, true);
	struct user_entry *u = user_slot(p, user);
	long long delay;

	memset(out, 0, sizeof(*out));
	if (a == NULL)
		return;		/* not reached: tables have one entry at least */
	forget_if_quiet(&a->f, now_ms, window);
	forget_if_quiet(&u->f, now_ms, window);
	out->counted = !tried_before(u, credentials);
	if (out->counted) {
		count(&a->f, now_ms, window);
		count(&u->f, now_ms, window);
	}
	out->address_failures = in_last_window(&a->f, now_ms, window);
	out->user_failures = in_last_window(&u->f, now_ms, window);
	delay = delay_for(a->f.streak);
	out->delay_ms = delay_for(u->f.streak) > delay ? delay_for(u->f.streak) : delay;
	if (!out->counted || p->limits.ban_after == 0)
		return;
	if (a->banned_until <= now_ms && out->address_failures >= p->limits.ban_after) {
		a->banned_until = now_ms + p->limits.ban_time_ms;
		out->banned = true;
		out->banned_until = a->banned_until;
	}
	if (out->user_failures >= p->limits.ban_after && u->warned_window != u->f.window_start) {
		u->warned_window = u->f.window_start;
		out->user_warning = true;
	}
}

void penalty_succeeded(struct penalty *p, const struct mg_ipkey *address, long long now_ms)
{
	struct address_entry *a = address_slot(p, address, now_ms, false);

	if (a != NULL)
		a->f.streak = 0;
}

bool penalty_banned(const struct penalty *p, const struct mg_ipkey *address, long long now_ms,
		    long long *until)
{
	/* A lookup only: address_slot() with create false changes nothing. */
	struct address_entry *a = address_slot((struct penalty *)p, address, now_ms, false);

	if (a == NULL || a->banned_until <= now_ms)
		return false;
	if (until != NULL)
		*until = a->banned_until;
	return true;
}

size_t penalty_each_ban(const struct penalty *p, long long now_ms,
			void (*fn)(const struct mg_ipkey *address, long long until, void *arg),
			void *arg)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_addresses; i++) {
		const struct address_entry *e = &p->addresses[i];

		if (e->used && e->banned_until > now_ms) {
			fn(&e->key, e->banned_until, arg);
			n++;
		}
	}
	return n;
}

bool penalty_lift(struct penalty *p, const struct mg_ipkey *address, long long now_ms)
{
	struct address_entry *a = address_slot(p, address, now_ms, false);
	bool was = a != NULL && a->banned_until > now_ms;

	if (a != NULL)
		memset(a, 0, sizeof(*a));
	return was;
}
