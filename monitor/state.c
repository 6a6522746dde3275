/*
 * state.c - plugin states: names, ordering and the expiry thresholds.
 */
#include "state.h"

const char *mon_state_name(enum mon_state state)
{
	switch (state) {
	case MON_OK:
		return "OK";
	case MON_WARNING:
		return "WARNING";
	case MON_CRITICAL:
		return "CRITICAL";
	case MON_UNKNOWN:
		return "UNKNOWN";
	}
	return "UNKNOWN";
}

int mon_state_rank(enum mon_state state)
{
	switch (state) {
	case MON_OK:
		return 0;
	case MON_UNKNOWN:
		return 1;
	case MON_WARNING:
		return 2;
	case MON_CRITICAL:
		return 3;
	}
	return 1;
}

enum mon_state mon_state_worse(enum mon_state a, enum mon_state b)
{
	return mon_state_rank(a) >= mon_state_rank(b) ? a : b;
}

enum mon_state mon_days_state(long days_left, int warn_days, int crit_days)
{
	if (days_left < 0 || days_left < crit_days)
		return MON_CRITICAL;
	if (days_left < warn_days)
		return MON_WARNING;
	return MON_OK;
}
