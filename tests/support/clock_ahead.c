/*
 * A preload that moves the wall clock (CLOCK_REALTIME, time(),
 * gettimeofday()) ahead by FLAGHOOK_CLOCK_AHEAD_S seconds (default: 365
 * days) and leaves every other clock alone: `make check-future` runs the
 * tests under it, to show that none depends on today's date.  Unlike
 * faketime, it does not wrap pthread_cond_timedwait: a wait on a
 * CLOCK_REALTIME condition variable would then sleep a year, so it shows
 * every such wait as the defect it is.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long ahead(void)
{
	const char *s = getenv("FLAGHOOK_CLOCK_AHEAD_S");
	return s && *s ? atoll(s) : 365LL * 86400;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	int rc = real(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += (time_t)ahead();
	return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	(void)tz;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
	return 0;
}

time_t time(time_t *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
