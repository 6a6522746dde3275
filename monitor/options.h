/*
 * options.h - check_cleartext_login's command line: what the user asked
 * for, parsed strictly (args.c) into a plain structure the probes read.
 */
#ifndef MON_OPTIONS_H
#define MON_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define MON_HOST_MAX	       255
#define MON_DEFAULT_TIMEOUT    10	/* seconds, as the Monitoring Plugins use */
#define MON_MAX_TIMEOUT	       3600
#define MON_DEFAULT_WARN_DAYS  30
#define MON_DEFAULT_CRIT_DAYS  14
#define MON_MAX_DAYS	       36500

enum mon_protocol {
	MON_PROTO_IMAP,
	MON_PROTO_POP3
};

struct mon_options {
	char host[MON_HOST_MAX + 1];	/* -H, without [] around an IPv6 literal */
	unsigned port;			/* -p, or the protocol's default */
	enum mon_protocol protocol;	/* -P */
	const char *authfile;		/* -a, NULL: dummy credentials */
	int warn_days;			/* -w */
	int crit_days;			/* -c */
	unsigned timeout_s;		/* -t */
	int family;			/* AF_UNSPEC, or AF_INET (-4) / AF_INET6 (-6) */
	bool implicit_tls;		/* -S: TLS from the first byte (993/995) */
	const char *sni;		/* --sni: TLS server name and the name to check */
	const char *ca_file;		/* --ca-file, NULL: the system store */
	bool injection;			/* --injection */
	int verbose;			/* -v, counted */
};

enum mon_args_result {
	MON_ARGS_RUN,		/* options filled: run the check */
	MON_ARGS_HELP,		/* -h */
	MON_ARGS_VERSION,	/* -V */
	MON_ARGS_ERROR		/* err says why */
};

/*
 * Parse argv. Pointers in opt point into argv. Resets getopt's state first,
 * so it can be called more than once (the unit tests do).
 */
enum mon_args_result mon_args_parse(int argc, char **argv, struct mon_options *opt, char *err,
				    size_t errlen);

/* The port used when -p is not given. */
unsigned mon_default_port(enum mon_protocol protocol, bool implicit_tls);

const char *mon_protocol_name(enum mon_protocol protocol);

void mon_print_usage(FILE *out);
void mon_print_help(FILE *out);
void mon_print_version(FILE *out);

#endif
