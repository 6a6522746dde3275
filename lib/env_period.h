/*
 * env_period.h - a period in seconds from the environment, for the few
 * timers a test must be able to shorten (ticket rotation, the daily
 * certificate expiry check). Documented in mailgated(8).
 */
#ifndef MG_ENV_PERIOD_H
#define MG_ENV_PERIOD_H

#include <stddef.h>

/*
 * value: the variable name's value (getenv(name)); NULL leaves max_s.
 * Otherwise it must be a decimal number of seconds from 1 to max_s.
 * Returns 0, or -1 with err naming the variable.
 */
int env_period(const char *name, const char *value, unsigned max_s, unsigned *period_s,
	       char *err, size_t errlen);

#endif
