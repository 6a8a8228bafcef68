/* Driving a TICK-mode client: see tick.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tick.h"

#include <poll.h>
#include <time.h>

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tick_settle(flaghook_client *c)
{
	int fd = -1;
	if (flaghook_fd(c, &fd))
		fail_msg("flaghook_fd: %s", flaghook_last_error());
	int64_t deadline = mono_ms() + 30000;
	for (;;) {
		if (flaghook_tick(c, NULL))
			fail_msg("flaghook_tick: %s", flaghook_last_error());
		flaghook_client_stats st = FLAGHOOK_CLIENT_STATS_INIT;
		if (flaghook_client_stats_get(c, &st))
			fail_msg("client stats: %s", flaghook_last_error());
		if (st.running == 0)
			return;
		if (mono_ms() > deadline)
			fail_msg("attempts still under way after 30 s: %llu", (unsigned long long)st.running);
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 20);
	}
}

int tick_run(flaghook_client *c, int64_t *next_ms)
{
	int rc = flaghook_tick(c, NULL);
	if (rc)
		return rc;
	tick_settle(c);
	return flaghook_tick(c, next_ms);
}

int tick_emit(flaghook_client *c, const flaghook_event *ev)
{
	int rc = flaghook_emit(c, ev);
	tick_settle(c);
	return rc;
}
