/*
 * Claiming from the store: deliveries nobody holds (left by an earlier
 * run, re-queued, FIFO successors a shared store keeps back, or a dead
 * process's whose lease ran out) are asked for every poll_interval_ms
 * and when told to, and admitted like new ones.  A poll calls the store
 * and may block on it: it runs on the executor, never on the I/O thread.
 */
#ifndef FLAGHOOK_ENGINE_CLAIM_H
#define FLAGHOOK_ENGINE_CLAIM_H

#include "engine/sched.h"

/* Polls the store once (or again, while it hands out full batches); the
 * jobs to run go to `out`.  One poll runs at a time. */
void flaghook__claim_poll(flaghook_client *c, fh_job_list *out);
/* Whether a poll is due now (engine lock held). */
bool flaghook__claim_due(flaghook_client *c);

#endif
