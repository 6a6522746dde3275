/*
 * env_period.c - a period in seconds from the environment (see env_period.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "env_period.h"

int env_period(const char *name, const char *value, unsigned max_s, unsigned *period_s,
	       char *err, size_t errlen)
{
	unsigned long v;
	char *end;

	*period_s = max_s;
	if (value == NULL)
		return 0;
	errno = 0;
	/* strtoul would take " 5", "+5" and "-5" (as a huge number): digits only. */
	v = value[0] >= '0' && value[0] <= '9' ? strtoul(value, &end, 10) : 0;
	if (v == 0 || errno != 0 || *end != '\0' || v > max_s) {
		snprintf(err, errlen, "%s must be a number of seconds from 1 to %u", name, max_s);
		return -1;
	}
	*period_s = (unsigned)v;
	return 0;
}
