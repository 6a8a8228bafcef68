/*
 * Ending an attempt, on the executor (or the host's thread in TICK mode):
 * book it with the scheduler, record it in the store, report it to the
 * callbacks, and put a retry on the timer heap only once all of that is
 * done, so that the store always sees a delivery's records in order.
 * Also the end of deliveries that never get an attempt (disabled
 * endpoints, shutdown).
 */
#ifndef FLAGHOOK_ENGINE_FINISH_H
#define FLAGHOOK_ENGINE_FINISH_H

#include "engine/sched.h"

/* Finishes a RUNNING job: its attempt (j->at) is over, or it had none
 * (j->at NULL: finish_reason or shutdown).  Jobs now free to run go to
 * `out`.  Counts it out of running (and pending, when finished) last, so
 * that flaghook_flush returning means every callback has run. */
void flaghook__finish_job(flaghook_client *c, fh_job *j, fh_job_list *out);

/* Puts jobs that are stored and counted in `pending` into the engine
 * (flaghook__sched_admit); those that came after shutdown began are
 * finished here as left.  NULL entries are skipped; jobs to run go to
 * `out`. */
void flaghook__admit(flaghook_client *c, fh_job **jobs, size_t n, fh_job_list *out);

/* Records and reports the end of a job without an attempt. */
void flaghook__finish_unattempted(flaghook_client *c, fh_job *j, int outcome);
/* Reports, without recording, a job the caller owns, from its last
 * attempt (the store has it already: released in one go at shutdown). */
void flaghook__report_left(flaghook_client *c, fh_job *j, int outcome);
/* Gives up every job of `gone` (an endpoint was disabled), reporting each
 * with `why`, and frees them.  Returns how many (still in `pending`). */
size_t flaghook__report_gone(flaghook_client *c, fh_job_list *gone, const char *why);

#endif
