/*
 * engine.h - a TLS engine process: every socket of its connections, on
 * libevent.
 *
 * The master forks the engines (one per CPU by default). Each loads the
 * certificates while still root, drops to the configured user and serves
 * the listening sockets it inherited: it accepts, reads a PROXY header from a
 * trusted load balancer, asks the master whether the connection is within
 * the limits (the master forks a session child for it), runs the client TLS
 * (at once on implicit-TLS listeners, on the child's order after
 * STARTTLS/STLS), connects the backend and runs its TLS when the child asks,
 * and after login relays client <-> backend itself and writes the session's
 * closing log line. It never parses IMAP or POP3: everything it does to a
 * session's bytes is move them (engine_pipe.h).
 */
#ifndef MG_ENGINE_H
#define MG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct engine_listen {
	int fd;
	size_t listener;	/* index into cfg->listeners */
};

struct engine_params {
	const struct mg_config *cfg;
	unsigned generation;
	unsigned index;		/* 0-based within the generation, for the log */
	bool first_start;	/* the daemon's start: a broken default pair is fatal */
	int master_fd;		/* SOCK_SEQPACKET to the master (chan.h) */
	const struct engine_listen *listen;
	size_t n_listen;
};

/* Run an engine in a freshly forked process; never returns. */
_Noreturn void engine_main(const struct engine_params *params);

#endif
