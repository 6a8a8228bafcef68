/*
 * The timer heap: retries waiting for their time and circuits waiting to
 * half-open, ordered by due time (client clock).  A min-heap; the caller
 * holds the engine lock.  What to do with a timer that is due is the
 * scheduler's business (sched.c).
 */
#ifndef FLAGHOOK_ENGINE_TIMERS_H
#define FLAGHOOK_ENGINE_TIMERS_H

#include "client/client.h"

/* Adds a timer; FLAGHOOK_ENOMEM when the heap cannot grow. */
int flaghook__timers_push(flaghook_client *c, fh_timer t);
/* The earliest due time, or INT64_MAX when empty. */
int64_t flaghook__timers_next(const flaghook_client *c);
/* Takes the earliest timer if it is due by `now`; false when none is. */
bool flaghook__timers_pop_due(flaghook_client *c, int64_t now, fh_timer *out);
/* Takes every timer that `keep` returns false for, appending their jobs
 * through `drop` (in heap order), and rebuilds the heap. */
void flaghook__timers_filter(flaghook_client *c, bool (*keep)(const fh_timer *t, void *arg),
                             void (*drop)(fh_timer *t, void *arg), void *arg);
/* Restores the heap after due times were changed in place. */
void flaghook__timers_reorder(flaghook_client *c);
void flaghook__timers_free(flaghook_client *c);
/* Arms the client's timer descriptor for the earliest of the heap and the
 * next store poll (in real time: a custom clock is looked at again at
 * least every second).  No descriptor (SYNC mode): nothing. */
void flaghook__timers_arm(flaghook_client *c);

#endif
