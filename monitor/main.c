/*
 * main.c - check_cleartext_login's entry point: arguments, the check, the
 * status line. Everything else is in monitor/libmonitor.a.
 */
#include <stdio.h>
#include <sys/prctl.h>

#include "plugin.h"
#include "options.h"
#include "report.h"
#include "state.h"
#include "transcript.h"

int main(int argc, char **argv)
{
	static struct mon_transcript transcript;	/* ~32 kB: not on the stack */
	static struct mon_report report;
	struct mon_options opt;
	char line[MON_STATUS_MAX], err[256];
	enum mon_state state;

	switch (mon_args_parse(argc, argv, &opt, err, sizeof(err))) {
	case MON_ARGS_RUN:
		break;
	/* As the Monitoring Plugins do, help and version exit UNKNOWN: no check ran. */
	case MON_ARGS_HELP:
		mon_print_help(stdout);
		return MON_UNKNOWN;
	case MON_ARGS_VERSION:
		mon_print_version(stdout);
		return MON_UNKNOWN;
	case MON_ARGS_ERROR:
		printf("CLEARTEXT UNKNOWN - %s\n", err);
		mon_print_usage(stdout);
		return MON_UNKNOWN;
	}
	/* The password is in this process's memory: never in a core file. */
	prctl(PR_SET_DUMPABLE, 0);
	transcript_init(&transcript, opt.verbose > 0);
	state = plugin_run(&opt, &report, &transcript);
	report_format(&report, line, sizeof(line));
	printf("%s\n", line);
	if (opt.verbose > 0)
		transcript_print(&transcript, stdout);
	return (int)state;
}
