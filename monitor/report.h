/*
 * report.h - what the check found, and the one status line that says it:
 *
 *	CLEARTEXT CRITICAL - finding; finding; ... | perfdata
 *
 * Findings are collected with a state each; the worst state is the plugin's
 * exit code and its findings come first, so the text names what caused it.
 */
#ifndef MON_REPORT_H
#define MON_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"

#define MON_MAX_FINDINGS 24
#define MON_FINDING_MAX	 240
#define MON_STATUS_MAX	 4096	/* the status line, perfdata included */

struct mon_finding {
	enum mon_state state;
	char text[MON_FINDING_MAX];
};

struct mon_report {
	char subject[320];		/* "IMAP host:143": printed before the findings */
	struct mon_finding findings[MON_MAX_FINDINGS];
	size_t nfindings;
	size_t dropped;			/* findings that did not fit */
	bool have_connect_time;
	double connect_time;		/* seconds, first TCP connect */
	double total_time;		/* seconds, the whole check */
	bool have_cert_days;
	long cert_days;
	int warn_days;
	int crit_days;
};

void report_init(struct mon_report *r, int warn_days, int crit_days);

/*
 * Add a finding. The text is made printable and '|' (which would start the
 * performance data) becomes '/'. When the table is full a finding replaces
 * a less severe one, so the worst ones always survive.
 */
void report_add(struct mon_report *r, enum mon_state state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The worst state of all findings; UNKNOWN when there are none. */
enum mon_state report_state(const struct mon_report *r);

/*
 * Format the status line (no newline) into buf. Returns its length; a text
 * too long for buf is cut with "..." but the performance data is kept.
 */
size_t report_format(const struct mon_report *r, char *buf, size_t buflen);

#endif
