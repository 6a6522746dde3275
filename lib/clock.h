/*
 * clock.h - the one clock of both programs: CLOCK_MONOTONIC, which no
 * settimeofday(), NTP step or leap second moves. Every deadline is an
 * absolute value of mg_now_ms(); every duration is a difference of two
 * readings of the same function.
 */
#ifndef MG_CLOCK_H
#define MG_CLOCK_H

/* Milliseconds on the monotonic clock (an arbitrary origin; only differences mean anything). */
long long mg_now_ms(void);

/* Microseconds on the same clock, for durations reported with sub-millisecond precision. */
long long mg_now_us(void);

/* Milliseconds until deadline, for poll(): 0 when passed, at most INT_MAX. */
int mg_ms_left(long long deadline);

#endif
