/*
 * Running the engine: what goes to the executor and what the I/O loop
 * does.  Jobs the scheduler lets run go to the executor in batches, which
 * prepares and starts their attempts; a transport that is done hands the
 * job back (from any thread) to a queue that the loop drains after each
 * round, giving the finished attempts to the executor, again in batches.
 * The loop also fires the engine's timers and asks for store polls.
 *
 * In the default mode the I/O thread runs the loop; in TICK mode
 * flaghook_tick (and flush and shutdown) run it on the host's thread; in
 * SYNC mode flaghook_emit runs it until its own attempts are done.
 */
#ifndef FLAGHOOK_ENGINE_RUN_H
#define FLAGHOOK_ENGINE_RUN_H

#include "engine/sched.h"

/* Hands RUNNING jobs to the executor, a batch at a time. */
void flaghook__run_submit(flaghook_client *c, fh_job_list *l);

/* A transport is done with job `ctx` (ASYNC).  Any thread. */
void flaghook__run_done(void *ctx);

/* One round of the loop: waits up to timeout_ms (0: not at all) for I/O,
 * runs it, then finishes what is done, fires due timers and asks for a
 * poll if one is due.  The caller holds c->driver, or is the I/O thread.
 * True: the executor refused finished attempts (or a store poll), which
 * wait for the next round: run one within FH_REFUSED_RETRY_MS. */
#define FH_REFUSED_RETRY_MS 20
bool flaghook__run_round(flaghook_client *c, int timeout_ms);

/* The engine's descriptors in the loop (ASYNC): created by init. */
int flaghook__run_init(flaghook_client *c);
void flaghook__run_fini(flaghook_client *c);

/* The I/O thread (ASYNC, TIMERS_THREAD). */
int flaghook__run_thread_start(flaghook_client *c);
void flaghook__run_thread_stop(flaghook_client *c);

/* Waits until done(arg) is true or the monotonic deadline passes,
 * running the loop meanwhile when no other thread does (TICK and SYNC
 * modes); done is called with the engine lock held. */
bool flaghook__run_until(flaghook_client *c, bool (*done)(flaghook_client *c, void *arg), void *arg,
                         int64_t deadline_us);

#endif
