/*
 * state.h - the four Monitoring Plugins states, which of two is worse, and
 * the certificate-expiry thresholds.
 */
#ifndef MON_STATE_H
#define MON_STATE_H

/* The values are the plugin's exit codes. */
enum mon_state {
	MON_OK = 0,
	MON_WARNING = 1,
	MON_CRITICAL = 2,
	MON_UNKNOWN = 3
};

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *mon_state_name(enum mon_state state);

/*
 * The worse of two states: CRITICAL > WARNING > UNKNOWN > OK (the order of
 * the Monitoring Plugins' max_state_alt), so a finding that could not be
 * evaluated still outranks a clean one but never hides a real problem.
 */
enum mon_state mon_state_worse(enum mon_state a, enum mon_state b);

/* Severity for ordering: OK 0, UNKNOWN 1, WARNING 2, CRITICAL 3 (higher is worse). */
int mon_state_rank(enum mon_state state);

/*
 * A certificate with days_left whole days to go: CRITICAL below crit_days,
 * WARNING below warn_days, else OK. An expired certificate (negative days)
 * is CRITICAL whatever the thresholds.
 */
enum mon_state mon_days_state(long days_left, int warn_days, int crit_days);

#endif
