/*
 * main.c - mailgated's command line. Everything else is in the library.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "config.h"
#include "engine_privdrop.h"
#include "session_sandbox.h"
#include "log.h"
#include "master.h"

#define DEFAULT_CONFIG SYSCONFDIR "/mailgate/mailgate.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mailgated [-c FILE] [-f] [-t] [-V] [-h]\n"
		"  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -f       stay in the foreground and log to stderr\n"
		"  -t       check the configuration and exit\n"
		"  -V       print the version and exit\n"
		"  -h       this help\n");
}

static void print_warning(const char *msg, void *arg)
{
	fprintf(stderr, "mailgated: warning: %s\n", msg);
}

static void print_note(bool warning, const char *msg, void *arg)
{
	if (warning)
		print_warning(msg, arg);
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	bool foreground = false, check_only = false;
	struct mg_config *cfg = NULL;
	char *absolute;
	char err[512];
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("mailgated %s\n", MG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Passwords pass through this process: never into a core file. */
	prctl(PR_SET_DUMPABLE, 0);

	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailgated: %s\n", err);
		return 1;
	}
	if (check_only) {
		int warnings = config_warnings(cfg, print_warning, NULL);

		/* The start would fail at the privilege drop: so does the check. */
		if (privdrop_check(cfg->user, cfg->group, err, sizeof(err)) < 0 ||
		    session_sandbox_user(cfg, err, sizeof(err)) == NULL) {
			fprintf(stderr, "mailgated: %s: %s\n", path, err);
			config_free(cfg);
			return 1;
		}
		if (master_check(cfg, print_note, NULL, err, sizeof(err)) < 0) {
			fprintf(stderr, "mailgated: %s: %s\n", path, err);
			return 1;
		}
		printf("mailgated: %s: configuration ok%s\n", path,
		       warnings > 0 ? " (with warnings)" : "");
		return 0;
	}
	/* SIGHUP re-reads the file after the daemon has changed to "/". */
	absolute = realpath(path, NULL);
	if (absolute == NULL) {
		fprintf(stderr, "mailgated: %s: %s\n", path, strerror(errno));
		config_free(cfg);
		return 1;
	}
	log_open("mailgated", foreground, cfg->log_level);
	rc = master_run(cfg, absolute, foreground) == 0 ? 0 : 1;
	free(absolute);
	return rc;
}
