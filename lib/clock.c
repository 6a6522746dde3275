/*
 * clock.c - readings of the monotonic clock (see clock.h).
 */
#include <limits.h>
#include <time.h>

#include "clock.h"

/* CLOCK_MONOTONIC with a valid timespec cannot fail on Linux. */
static struct timespec reading(void)
{
	struct timespec ts = { 0, 0 };

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

long long mg_now_ms(void)
{
	struct timespec ts = reading();

	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long mg_now_us(void)
{
	struct timespec ts = reading();

	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int mg_ms_left(long long deadline)
{
	long long left = deadline - mg_now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}
