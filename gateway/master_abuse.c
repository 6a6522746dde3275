/*
 * master_abuse.c - the master's side of the login penalty: it answers the
 * engines' reports of failed logins with a delay (and bans), hears of
 * successful ones, and refuses banned addresses before a session starts.
 * The bookkeeping itself is master_penalty.c; this file is the messages
 * and the log lines.
 */
#include <netinet/in.h>
#include <string.h>

#include "chan.h"
#include "clock.h"
#include "log.h"
#include "master_internal.h"
#include "master_penalty.h"
#include "session_penalty.h"

/* Bounded whatever clients do: about 4 MB and 7 MB at most, touched as used. */
#define PENALTY_ADDRESSES 65536
#define PENALTY_USERS 65536

int abuse_start(struct master *m)
{
	if (session_penalty_key_init() < 0)
		return -1;
	m->penalty = penalty_new(PENALTY_ADDRESSES, PENALTY_USERS);
	if (m->penalty == NULL)
		return -1;
	abuse_limits(m);
	return 0;
}

void abuse_limits(struct master *m)
{
	const struct mg_config *cfg = m->current->cfg;
	struct penalty_limits limits = {
		.ban_after = cfg->ban_after,
		.ban_window_ms = (long long)cfg->ban_window * 1000,
		.ban_time_ms = (long long)cfg->ban_time * 1000,
	};

	penalty_set_limits(m->penalty, &limits);
}

static bool key_of(const struct master *m, const struct sockaddr_storage *sa,
		   struct mg_ipkey *key)
{
	return penalty_address((const struct sockaddr *)sa, m->current->cfg->ipv6_prefix, key) == 0;
}

bool abuse_banned(const struct master *m, const struct sockaddr_storage *client)
{
	struct mg_ipkey key;

	return m->penalty != NULL && key_of(m, client, &key) &&
	       penalty_banned(m->penalty, &key, mg_now_ms(), NULL);
}

int abuse_userip(struct master *m, struct engine_proc *e, struct chan_reader *r)
{
	struct sockaddr_storage client;
	struct mg_ipkey key;
	struct chan_msg msg;
	uint64_t id = chan_get_u64(r), user;
	bool ok = chan_get_sockaddr(r, &client);

	user = chan_get_u64(r);
	if (!ok || !chan_reader_done(r) || !key_of(m, &client, &key))
		return -1;
	chan_msg_init(&msg, CHAN_USERIP);
	chan_put_u64(&msg, id);
	chan_put_u8(&msg, connlimit_user_sessions(&m->sessions, &key, user) <
				  m->current->cfg->max_sessions_per_user_ip);
	send_engine(e, &msg);
	return 0;
}

int abuse_failed(struct master *m, struct engine_proc *e, struct chan_reader *r)
{
	struct sockaddr_storage client;
	struct penalty_verdict v;
	struct mg_ipkey key;
	struct chan_msg msg;
	uint64_t id = chan_get_u64(r), user, password;
	bool ok = chan_get_sockaddr(r, &client);
	char addr[INET6_ADDRSTRLEN + 8];
	unsigned port;

	user = chan_get_u64(r);
	password = chan_get_u64(r);
	if (!ok || !chan_reader_done(r) || m->penalty == NULL || !key_of(m, &client, &key))
		return -1;
	penalty_failed(m->penalty, &key, user, password, mg_now_ms(), &v);
	if (v.banned) {
		netaddr_host_port((const struct sockaddr *)&client, addr, sizeof(addr), &port);
		log_warning("address banned: rip=%s failures=%u window=%us ban_time=%us", addr,
			    v.address_failures, m->current->cfg->ban_window,
			    m->current->cfg->ban_time);
	}
	chan_msg_init(&msg, CHAN_PENALTY);
	chan_put_u64(&msg, id);
	chan_put_u32(&msg, m->current->cfg->login_penalty ? (uint32_t)v.delay_ms : 0);
	chan_put_u8(&msg, (uint8_t)((v.banned ? PENALTY_FLAG_BANNED : 0) |
				    (v.user_warning ? PENALTY_FLAG_USER_WARNING : 0)));
	send_engine(e, &msg);
	return 0;
}

int abuse_succeeded(struct master *m, struct engine_proc *e, struct chan_reader *r)
{
	struct sockaddr_storage client;
	struct mg_ipkey key;
	uint64_t id = chan_get_u64(r), user;
	bool ok = chan_get_sockaddr(r, &client);

	user = chan_get_u64(r);
	if (!ok || !chan_reader_done(r))
		return -1;
	/* No longer one of the address's connections before login; one of the user's now. */
	connlimit_logged_in(&m->sessions, e->group, id, user);
	if (m->penalty != NULL && key_of(m, &client, &key))
		penalty_succeeded(m->penalty, &key, mg_now_ms());
	return 0;
}
