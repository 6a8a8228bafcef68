/*
 * The scheduler: where every delivery of an ASYNC client stands, and the
 * one place it moves.  A job is READY (in its endpoint's queue), RUNNING
 * (an attempt under way, or its end being reported), or WAITING (on the
 * timer heap for a retry).  pump() lets ready jobs run as far as the
 * circuit, FIFO order, the endpoint's max_in_flight and the client's
 * max_transfers allow; finish() books an attempt's end and says what
 * follows.  Everything here runs with the engine lock held and never
 * calls out: what to run is handed back in lists.
 */
#ifndef FLAGHOOK_ENGINE_SCHED_H
#define FLAGHOOK_ENGINE_SCHED_H

#include "client/client.h"

typedef struct fh_job_list {
	fh_job *head, *tail;
} fh_job_list;

void flaghook__list_add(fh_job_list *l, fh_job *j);
/* Moves l's jobs to the end of into. */
void flaghook__list_splice(fh_job_list *into, fh_job_list *l);

/* ---- without the lock ---- */
void flaghook__body_release(flaghook_client *c, fh_body *b);
/* Releases the job's body and endpoint and frees it. */
void flaghook__job_free(flaghook_client *c, fh_job *j);

/* ---- with the engine lock held ---- */

/* What shutdown leaves: RELEASED with a durable store, else ABANDONED;
 * count_left books it on the endpoint. */
int flaghook__left_outcome(const flaghook_client *c);
void flaghook__count_left(fh_endpoint *ep, int outcome);

/* Puts jobs that are stored and counted in `pending` into the engine:
 * ready, waiting for their time (a resumed retry), or, disabled meanwhile,
 * to be finished without an attempt.  After shutdown has begun they go to
 * `late` (the caller finishes them as left).  Jobs to run go to `out`. */
void flaghook__sched_admit(flaghook_client *c, fh_job **jobs, size_t n, fh_job_list *out, fh_job_list *late);
/* Moves the endpoint's ready jobs that may start now onto `out`. */
void flaghook__sched_pump(flaghook_client *c, fh_endpoint *ep, fh_job_list *out);
/* Puts a job on the heap for delay_ms; 0, or ENOMEM (the job stays
 * RUNNING: the caller finishes it). */
int flaghook__sched_wait(flaghook_client *c, fh_job *j, int64_t now, int64_t delay_ms);
/* Hands a job out to be finished without an attempt, giving `reason`. */
void flaghook__sched_to_finish(flaghook_client *c, fh_job *j, const char *reason, fh_job_list *out);
/* Moves what is due on the heap: retries onto `out` (or their queues),
 * circuits to half-open.  Returns the next due time or INT64_MAX. */
int64_t flaghook__sched_run_due(flaghook_client *c, fh_job_list *out);
/* Disables ep: its waiting jobs go to `gone` (counted as given up). */
void flaghook__sched_disable(flaghook_client *c, fh_endpoint *ep, fh_job_list *gone);
/* Enables ep afresh (failures and circuit reset); what may go now goes
 * onto `out`. */
void flaghook__sched_enable(flaghook_client *c, fh_endpoint *ep, fh_job_list *out);
/* An executor refused a job: back to waiting a little, or false when it
 * must be finished now (shutdown, disabled, refused too often).  The
 * transfer slot it gives back may start jobs of endpoints that waited for
 * one: those go to `out`. */
bool flaghook__sched_refused(flaghook_client *c, fh_job *j, fh_job_list *out);

/* How an attempt (or the lack of one) ended, as finish() books it. */
typedef struct fh_end {
	bool attempted;             /* an attempt was made (else finish_reason) */
	bool cut_short;             /* shutdown stopped it before a reply */
	int32_t status, errclass;
	const char *retry_after;
	/* out */
	int outcome;                /* FLAGHOOK_OUTCOME_*; RETRY: wait_ms */
	int64_t wait_ms;
	int disabled;               /* FLAGHOOK_DISABLED_*: the endpoint was disabled */
	bool fetch_next;            /* a FIFO successor waits in the store: poll once
	                               this end is recorded */
} fh_end;
/* Books the end of j's attempt: counters, circuit, FIFO slot, the retry
 * decision.  A job to retry stays RUNNING and ours until published with
 * flaghook__sched_publish_retry; a finished one leaves the job list.  Jobs
 * now free to run go to `out`, those of an endpoint it disabled to
 * `gone`. */
void flaghook__sched_finish(flaghook_client *c, fh_job *j, fh_end *e, fh_job_list *gone, fh_job_list *out);
/* Puts a job finish() kept for a retry on the heap; or, shutdown or a
 * disable having come meanwhile, ends it: returns the final outcome
 * (*why the reason), else FLAGHOOK_OUTCOME_RETRY.  `lost`: the store says
 * another process holds it now. */
int flaghook__sched_publish_retry(flaghook_client *c, fh_job *j, int64_t wait_ms, bool lost, const char **why,
                                  bool *fetch_next, fh_job_list *out);

#endif
