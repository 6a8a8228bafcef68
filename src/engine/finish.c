/* Ending an attempt: see finish.h. */
#include "engine/finish.h"
#include "engine/attempt.h"
#include "engine/notify.h"
#include "engine/timers.h"

#include <stdio.h>
#include <string.h>

/* The job's last attempt, for what ends it without one. */
static void stored_attempt(const fh_job *j, fh_attempt *out)
{
	memset(out, 0, sizeof(*out));
	out->status = j->last_status;
	out->errclass = j->last_errclass;
	snprintf(out->error, sizeof(out->error), "%s", j->last_error ? j->last_error : "");
}

/* Reports a job the caller owns; NULL `at`: from its last attempt. */
static void report(flaghook_client *c, fh_job *j, int outcome, const fh_attempt *at, bool attempt_cb)
{
	fh_attempt stored;
	if (!at) {
		stored_attempt(j, &stored);
		at = &stored;
	}
	flaghook_result res;
	flaghook__result(&res, j->ep, &j->d, j->body->event_type, outcome, at,
	                 flaghook__clock(c) - j->body->emit_us);
	flaghook__notify_result(c, &res, attempt_cb);
}

void flaghook__report_left(flaghook_client *c, fh_job *j, int outcome)
{
	report(c, j, outcome, NULL, false);
}

void flaghook__finish_unattempted(flaghook_client *c, fh_job *j, int outcome)
{
	fh_attempt at;
	stored_attempt(j, &at);
	flaghook__record(c, &j->d, outcome, &at, 0, 0);
	report(c, j, outcome, &at, false);
}

static void set_last_error(flaghook_client *c, fh_job *j, const char *why)
{
	flaghook__free(c->allocator, j->last_error);
	j->last_error = flaghook__strdup(c->allocator, why);
}

size_t flaghook__report_gone(flaghook_client *c, fh_job_list *gone, const char *why)
{
	size_t n = 0;
	for (fh_job *j = gone->head, *next; j; j = next, n++) {
		next = j->next;
		set_last_error(c, j, why);
		flaghook__finish_unattempted(c, j, FLAGHOOK_OUTCOME_GAVE_UP);
		flaghook__job_free(c, j);
	}
	gone->head = gone->tail = NULL;
	return n;
}

void flaghook__finish_job(flaghook_client *c, fh_job *j, fh_job_list *out)
{
	fh_endpoint *ep = j->ep;
	uint64_t ep_id = ep->id; /* ep may go with the job's reference */
	fh_attempt *at = j->at;
	j->at = NULL;
	if (j->finish_reason)
		set_last_error(c, j, j->finish_reason);
	else if (at)
		j->refusals = 0; /* "in a row": it ran */

	fh_end e;
	memset(&e, 0, sizeof(e));
	if (at) {
		flaghook__attempt_conclude(at);
		j->d.attempts++;
		e.attempted = true;
		e.status = at->status;
		e.errclass = at->errclass;
		e.retry_after = at->retry_after;
		/* Cut short by shutdown: left, not failed. */
		e.cut_short = at->status == 0 && atomic_load(&c->aborting);
	} else {
		e.cut_short = atomic_load(&c->aborting);
	}
	fh_job_list gone = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	if (at && at->ran)
		flaghook__observe_latency(ep, at->finished_us - at->started_us);
	flaghook__sched_finish(c, j, &e, &gone, out);
	pthread_mutex_unlock(&c->engine_lock);

	int outcome = e.outcome;
	if (outcome == FLAGHOOK_OUTCOME_RETRY) {
		j->last_status = at->status;
		j->last_errclass = at->errclass;
		set_last_error(c, j, at->error);
	}
	/* A retry is recorded and reported before it goes on the heap: once
	 * there, another thread may run and finish it, and its final record
	 * must be the last the store sees. */
	bool lost = false;
	if (at) {
		int64_t next_us = outcome == FLAGHOOK_OUTCOME_RETRY
		                      ? flaghook__sat_add(flaghook__now_us(), flaghook__ms_to_us(e.wait_ms)) : 0;
		int rrc = flaghook__record(c, &j->d, outcome, at, j->d.attempts, next_us);
		lost = outcome == FLAGHOOK_OUTCOME_RETRY && rrc == FLAGHOOK_ESTATE;
		report(c, j, outcome, at, true);
		flaghook__attempt_free(c, at);
	} else {
		flaghook__finish_unattempted(c, j, outcome);
	}
	if (outcome == FLAGHOOK_OUTCOME_RETRY) {
		const char *why;
		pthread_mutex_lock(&c->engine_lock);
		outcome = flaghook__sched_publish_retry(c, j, e.wait_ms, lost, &why, &e.fetch_next, out);
		pthread_mutex_unlock(&c->engine_lock);
		if (outcome != FLAGHOOK_OUTCOME_RETRY) {
			if (why)
				set_last_error(c, j, why);
			if (lost)
				report(c, j, outcome, NULL, false); /* not ours to record */
			else
				flaghook__finish_unattempted(c, j, outcome);
		}
	}
	size_t finished = outcome != FLAGHOOK_OUTCOME_RETRY;
	if (finished)
		flaghook__job_free(c, j);
	if (e.disabled) {
		finished += flaghook__report_gone(c, &gone, e.disabled == FLAGHOOK_DISABLED_GONE
		                                                ? "endpoint answered 410 Gone and was disabled"
		                                                : "endpoint failed too long and was disabled");
		flaghook__notify_disabled(c, ep_id, e.disabled);
	}
	/* Last: a delivery counts as pending until its result was reported, so
	 * flaghook_flush returning means every callback has run; and once
	 * running reaches 0, flaghook_client_free may proceed. */
	pthread_mutex_lock(&c->engine_lock);
	c->pending -= finished;
	c->running--;
	if (e.fetch_next) {
		/* The end is recorded: the store hands out the FIFO successor now. */
		c->poll_soon = true;
		flaghook__timers_arm(c);
	}
	if (finished && c->poll_blocked) {
		/* A poll stopped for want of room; there is some now. */
		c->poll_blocked = false;
		c->poll_soon = true;
		flaghook__timers_arm(c);
	}
	flaghook__progress(c);
	pthread_mutex_unlock(&c->engine_lock);
}

void flaghook__admit(flaghook_client *c, fh_job **jobs, size_t n, fh_job_list *out)
{
	fh_job_list late = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	flaghook__sched_admit(c, jobs, n, out, &late);
	pthread_mutex_unlock(&c->engine_lock);
	size_t left = 0;
	for (fh_job *j = late.head, *next; j; j = next, left++) {
		next = j->next;
		flaghook__finish_unattempted(c, j, flaghook__left_outcome(c));
		flaghook__job_free(c, j);
	}
	if (left) {
		pthread_mutex_lock(&c->engine_lock);
		c->pending -= left;
		flaghook__progress(c);
		pthread_mutex_unlock(&c->engine_lock);
	}
}
