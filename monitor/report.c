/*
 * report.c - collecting findings and formatting the plugin's status line
 * with performance data, as the Monitoring Plugins guidelines describe:
 *
 *	CLEARTEXT OK - text; text | 'label'=value[UOM];[warn];[crit];[min];[max] ...
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

#define STATUS_PREFIX "CLEARTEXT"

void report_init(struct mon_report *r, int warn_days, int crit_days)
{
	memset(r, 0, sizeof(*r));
	r->warn_days = warn_days;
	r->crit_days = crit_days;
}

static struct mon_finding *slot_for(struct mon_report *r, enum mon_state state)
{
	struct mon_finding *least = NULL;

	if (r->nfindings < MON_MAX_FINDINGS)
		return &r->findings[r->nfindings++];
	for (size_t i = 0; i < r->nfindings; i++)
		if (least == NULL || mon_state_rank(r->findings[i].state) < mon_state_rank(least->state))
			least = &r->findings[i];
	r->dropped++;
	return mon_state_rank(least->state) < mon_state_rank(state) ? least : NULL;
}

void report_add(struct mon_report *r, enum mon_state state, const char *fmt, ...)
{
	struct mon_finding *f = slot_for(r, state);
	va_list ap;
	int n;

	if (f == NULL)
		return;
	f->state = state;
	va_start(ap, fmt);
	n = vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
	if (n < 0)
		f->text[0] = '\0';
	else if ((size_t)n >= sizeof(f->text))
		memcpy(f->text + sizeof(f->text) - 4, "...", 4);
	/* Server text reaches findings: no control bytes, and no '|' to fake perfdata. */
	for (char *p = f->text; *p != '\0'; p++) {
		if (*p == '|')
			*p = '/';
		else if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
			*p = '?';
	}
}

enum mon_state report_state(const struct mon_report *r)
{
	enum mon_state state = MON_OK;

	if (r->nfindings == 0)
		return MON_UNKNOWN;
	for (size_t i = 0; i < r->nfindings; i++)
		state = mon_state_worse(state, r->findings[i].state);
	return state;
}

/* Append to buf[*len..cap) without ever overrunning; returns -1 when cut. */
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= cap)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= cap - *len) {
		*len = cap - 1;
		return -1;
	}
	*len += (size_t)n;
	return 0;
}

static size_t format_perfdata(const struct mon_report *r, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	if (r->have_connect_time)
		append(buf, cap, &len, "connect_time=%.6fs;;;0 ", r->connect_time);
	append(buf, cap, &len, "time=%.6fs;;;0", r->total_time);
	/* "N:" is the guidelines' range for "alert below N". */
	if (r->have_cert_days)
		append(buf, cap, &len, " cert_days=%ld;%d:;%d:", r->cert_days, r->warn_days,
		       r->crit_days);
	return len;
}

size_t report_format(const struct mon_report *r, char *buf, size_t buflen)
{
	char perf[256];
	size_t perflen = format_perfdata(r, perf, sizeof(perf));
	size_t len = 0, textcap;
	bool first = true;

	if (buflen == 0)
		return 0;
	buf[0] = '\0';
	/* Reserve room for " | perfdata" so a long text can never push it out. */
	textcap = buflen > perflen + 3 ? buflen - perflen - 3 : 1;
	append(buf, textcap, &len, "%s %s - ", STATUS_PREFIX, mon_state_name(report_state(r)));
	if (r->subject[0] != '\0')
		append(buf, textcap, &len, "%s: ", r->subject);
	if (r->nfindings == 0)
		append(buf, textcap, &len, "no result");
	/* Worst first; within one state, in the order they were found. */
	for (int sev = 3; sev >= 0; sev--) {
		for (size_t i = 0; i < r->nfindings; i++) {
			if (mon_state_rank(r->findings[i].state) != sev)
				continue;
			if (append(buf, textcap, &len, "%s%s", first ? "" : "; ",
				   r->findings[i].text) < 0 &&
			    textcap > 4) {
				memcpy(buf + textcap - 4, "...", 4);
				len = textcap - 1;
				goto perf;
			}
			first = false;
		}
	}
	if (r->dropped > 0)
		append(buf, textcap, &len, "; (%zu more)", r->dropped);
perf:
	append(buf, buflen, &len, " | %s", perf);
	return len;
}
