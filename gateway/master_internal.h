/*
 * master_internal.h - what the master's files share: its state and the
 * functions each file offers the others. master.c runs the loop, the
 * sessions' limits and children, signals and start-up; master_engines.c
 * starts, talks to, reaps and restarts the TLS engines;
 * master_generation.c holds configurations, their listening sockets and
 * the reload that switches between them (master_tickets.c, which knows
 * no engine, keeps the session ticket keys they are sent). Nothing
 * outside these files includes it.
 */
#ifndef MG_MASTER_INTERNAL_H
#define MG_MASTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "auth_process.h"
#include "chan.h"
#include "config.h"
#include "master_connlimit.h"
#include "master_tickets.h"
#include "engine.h"
#include "session_sandbox.h"

#define KILL_WAIT_MS 2000
#define ENGINE_YOUNG_MS 1000		/* an engine dying younger than this backs off */
#define RESTART_DELAY_MIN_MS 100
#define RESTART_DELAY_MAX_MS 10000
#define MSGS_PER_ROUND 256		/* per engine, so one busy engine cannot starve */
#define OUT_MSG_MAX 32

/* A bound listening socket; kept across reloads while a listener uses it. */
struct listen_socket {
	int fd;
	char address[INET6_ADDRSTRLEN];
	unsigned port;
	bool in_use;		/* by the current (or pending) generation */
};

/* One configuration and the engines that run it. */
struct generation {
	unsigned number;
	struct mg_config *cfg;
	struct engine_listen *listen;
	size_t n_listen;
	unsigned engines;	/* how many it should run */
	unsigned alive;		/* engine processes not yet reaped */
	struct session_sandbox sandbox;
	struct generation *next;
};

enum engine_state { ENGINE_STARTING, ENGINE_READY, ENGINE_RETIRING, ENGINE_STOPPING };

struct out_msg {
	size_t len;
	unsigned char data[OUT_MSG_MAX];
};

struct engine_proc {
	pid_t pid;		/* 0: the slot is free */
	int fd;
	unsigned group;		/* connlimit group: unique for the master's lifetime */
	unsigned index;
	struct generation *gen;
	enum engine_state state;
	bool stopped_accepting;	/* it confirmed RETIRE */
	long long started_ms;
	struct out_msg *out;	/* messages the engine was too busy to take */
	size_t n_out, cap_out;
	bool keys_due;		/* the ticket key set could not be sent yet */
};

/* Session children forked ahead (master_spares.c), kept at this many. */
#define SPARES_MAX 8
#define SPARES_LOW 4		/* under load, refilled (to SPARES_MAX) only at this many */
#define SPARES_TOPUP_MS 100	/* an idle master tops the pool up after this long */

struct spare {
	pid_t pid;
	int fd;			/* control socket: the session's channel arrives here */
};

/* A session request read from an engine, judged after every END of the round. */
struct request {
	struct engine_proc *engine;
	uint64_t id;
	unsigned listener;
	struct sockaddr_storage client;
	int link;
};

struct master {
	const char *config_path;
	struct authd authd;		/* the PAM auth process, when any login uses PAM */
	char authd_service[AUTHD_SERVICE_MAX + 1];	/* what it was started with */
	unsigned authd_workers;
	unsigned authd_timeout;
	long long authd_started_ms;
	long long authd_restart_at;	/* 0: no restart pending */
	unsigned authd_delay_ms;

	struct generation *current;
	struct generation *pending;	/* a reload waiting for its engines */
	struct generation *gens;	/* every generation still holding engines */
	unsigned next_generation;

	struct listen_socket *sockets;
	size_t n_sockets, cap_sockets;

	struct engine_proc *engines;
	size_t n_engines;
	unsigned next_group;
	unsigned restart_delay_ms;
	long long restart_at;		/* 0: no engine waits for a restart */
	bool reload_retiring;		/* reload: waiting for old engines to stop accepting */
	bool started;			/* the first generation was ready: start-up is over */
	struct certwatch *certwatch;	/* master_certwatch.c: reload on certificate changes */

	struct connlimit sessions;
	pid_t *children;		/* session children (spares too), for reaping */
	size_t n_children, cap_children;
	struct spare spares[SPARES_MAX];
	size_t n_spares;
	unsigned spares_generation;	/* whose configuration and sandbox they run */
	long long spares_authd;		/* the auth process they hold (its start time) */
	long long spares_topup_at;	/* 0, or when a pool that is not full is topped up */

	struct request *requests;
	size_t n_requests, cap_requests;
	bool stopping;
	/*
	 * Session ticket keys for every engine, in a page the kernel zeroes in
	 * every child: engines get them over their channel, session children
	 * and the auth process never have them.
	 */
	struct master_tickets tickets;
	/* Failed logins by address and user: delays and bans, kept across reloads. */
	struct penalty *penalty;
};

/* master.c */
void remember_child(struct master *m, pid_t pid);
void queue_request(struct master *m, struct engine_proc *e, struct chan_reader *rd, int link);
void log_warning_cb(const char *msg, void *arg);

/* master_spares.c */
/* Refill the pool: at once when low, else when quiet (a poll that timed out) past the top-up time. */
void spares_fill(struct master *m, bool quiet);
/* A spare of generation g takes the session on link: its pid, or 0 if none is left. */
pid_t spares_take(struct master *m, const struct generation *g, int link);
bool spares_forget(struct master *m, pid_t pid);
void spares_drop(struct master *m);

/* master_engines.c */
unsigned engine_count(const struct mg_config *cfg);
int spawn_engine(struct master *m, struct generation *g, unsigned index);
int spawn_generation(struct master *m, struct generation *g);
void send_engine(struct engine_proc *e, const struct chan_msg *msg);

/* master_abuse.c: the login penalty's messages. abuse_start before the first fork. */
int abuse_start(struct master *m);
void abuse_limits(struct master *m);	/* the current generation's ban settings */
bool abuse_banned(const struct master *m, const struct sockaddr_storage *client);
int abuse_failed(struct master *m, struct engine_proc *e, struct chan_reader *r);
int abuse_userip(struct master *m, struct engine_proc *e, struct chan_reader *r);
int abuse_succeeded(struct master *m, struct engine_proc *e, struct chan_reader *r);
void flush_engine(struct engine_proc *e);
void tell_engine(struct engine_proc *e, enum chan_type type, unsigned grace);
void engine_gone(struct master *m, struct engine_proc *e);
void retire_generation(struct master *m, struct generation *g);
bool generation_ready(const struct master *m, const struct generation *g);
bool old_engines_accepting(const struct master *m);
void kill_generation(struct master *m, struct generation *g);
void read_engine(struct master *m, struct engine_proc *e);
void engine_reaped(struct master *m, struct engine_proc *e, int status);
void restart_missing_engines(struct master *m);
/* The ticket key set to e (now, or when its channel has room: keys_due). */
void send_ticket_keys(struct master *m, struct engine_proc *e);
/* ... to every engine of every generation. */
void broadcast_ticket_keys(struct master *m);
/* Rotate the made keys and tell every engine. */
void rotate_ticket_keys(struct master *m);

/* master_certwatch.c: a certificate file changed, reload (no reload runs). */
long long master_certwatch_due(const struct master *m);	/* when (stream ms), or 0 */
void master_certwatch_step(struct master *m, bool readable);

/* master_generation.c */
void close_all_sockets(struct master *m);
void generation_free(struct generation *g);
struct generation *generation_new(struct master *m, struct mg_config *cfg, char *err, size_t errlen);
void log_listeners(const struct generation *g);
void reload_failed(struct master *m, const char *why);
void reload(struct master *m);
void reload_switch(struct master *m);
void reload_finish(struct master *m);

#endif
