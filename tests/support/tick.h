/*
 * Driving a TICK-mode client from a test, the way a host's event loop
 * does: poll flaghook_fd, call flaghook_tick.  Attempts run on the I/O
 * loop, so an emit or a tick only starts them; "settle" runs the loop
 * until every attempt under way has finished (retries waiting on the
 * client's clock are not under way), so that a test sees what that emit
 * or tick did.  Test support only.
 */
#ifndef TEST_TICK_H
#define TEST_TICK_H

#include "flaghook.h"

/* Runs c until no attempt is under way; fails the test after 30 s. */
void tick_settle(flaghook_client *c);
/* flaghook_tick, then settle, then flaghook_tick again for *next_ms. */
int tick_run(flaghook_client *c, int64_t *next_ms);
/* flaghook_emit, then settle. */
int tick_emit(flaghook_client *c, const flaghook_event *ev);

#endif
