/*
 * The asynchronous engine.  One lock guards every endpoint's ready list,
 * the timer heap and the counts.  Jobs move READY (in their endpoint's
 * list) -> RUNNING (handed to the executor) -> finished, or -> WAITING (in
 * the heap until their retry is due) -> READY.  The executor is only ever
 * called with the lock released, so it may run a job inline; no executor
 * thread ever sleeps for a retry.
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFUSAL_RETRY_MS 50
#define MAX_REFUSALS 200
#define MAX_COOLDOWN_FACTOR 16

/* Times are int64 microseconds; settings are milliseconds that a caller
 * may set as high as it likes ("never").  Convert and add saturating. */
#define US_MAX (INT64_MAX / 4)
static int64_t ms_to_us(int64_t ms)
{
	return ms <= 0 ? 0 : ms >= US_MAX / 1000 ? US_MAX : ms * 1000;
}
static int64_t sat_add(int64_t a, int64_t b)
{
	return b > US_MAX - a ? US_MAX : a + b;
}

/* A local list of jobs to act on once the lock is released. */
typedef struct job_list { fh_job *head, *tail; } job_list;

static void list_add(job_list *l, fh_job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static uint64_t next_random(flaghook_client *c)
{
	/* xorshift64*; only the jitter depends on it. */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ULL;
}

/* ---- bodies and jobs ---- */

void flaghook__body_release(flaghook_client *c, fh_body *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		flaghook_buf_free(&b->buf);
		flaghook__free(c->allocator, b);
	}
}

static void job_free(flaghook_client *c, fh_job *j)
{
	flaghook__body_release(c, j->body);
	flaghook__endpoint_release(c, j->ep);
	flaghook__free(c->allocator, j->last_error);
	flaghook__free(c->allocator, j);
}

static void all_unlink(flaghook_client *c, fh_job *j)
{
	if (j->all_prev)
		j->all_prev->all_next = j->all_next;
	else
		c->all_jobs = j->all_next;
	if (j->all_next)
		j->all_next->all_prev = j->all_prev;
	j->all_prev = j->all_next = NULL;
}

/* ---- the timer heap (min-heap on due) ---- */

static void sift_up(flaghook_client *c, size_t i)
{
	fh_timer t = c->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (c->heap[parent].due <= t.due)
			break;
		c->heap[i] = c->heap[parent];
		i = parent;
	}
	c->heap[i] = t;
}

static void sift_down(flaghook_client *c, size_t i)
{
	fh_timer t = c->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		int64_t best = t.due;
		if (l < c->heap_len && c->heap[l].due < best)
			m = l, best = c->heap[l].due;
		if (r < c->heap_len && c->heap[r].due < best)
			m = r;
		if (m == i)
			break;
		c->heap[i] = c->heap[m];
		i = m;
	}
	c->heap[i] = t;
}

static int heap_push(flaghook_client *c, fh_timer t)
{
	if (c->heap_len == c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
		fh_timer *h = flaghook__realloc(c->allocator, c->heap, cap * sizeof(*h));
		if (!h)
			return FLAGHOOK_ENOMEM;
		c->heap = h;
		c->heap_cap = cap;
	}
	c->heap[c->heap_len++] = t;
	sift_up(c, c->heap_len - 1);
	pthread_cond_signal(&c->wake);
	return 0;
}

static fh_timer heap_remove(flaghook_client *c, size_t i)
{
	fh_timer t = c->heap[i];
	c->heap_len--;
	if (i < c->heap_len) {
		c->heap[i] = c->heap[c->heap_len];
		sift_down(c, i);
		sift_up(c, i);
	}
	return t;
}

/* Restores the heap property over the whole array. */
static void heapify(flaghook_client *c)
{
	for (size_t i = c->heap_len / 2; i-- > 0;)
		sift_down(c, i);
}

/* ---- dispatching ---- */

/* Moves the endpoint's ready jobs that may go now onto `out` (RUNNING). */
static void pump(flaghook_client *c, fh_endpoint *ep, job_list *out)
{
	if (atomic_load(&c->aborting))
		return;
	while (ep->ready_head) {
		if (ep->breaker == FH_OPEN || (ep->breaker == FH_HALF_OPEN && ep->probe_out))
			return;
		if (ep->fifo ? ep->fifo_busy : ep->in_flight >= ep->max_in_flight)
			return;
		fh_job *j = ep->ready_head;
		ep->ready_head = j->next;
		if (!ep->ready_head)
			ep->ready_tail = NULL;
		ep->queued--;
		ep->in_flight++;
		ep->fifo_busy = ep->fifo;
		if (ep->breaker == FH_HALF_OPEN)
			ep->probe_out = j->is_probe = true;
		j->state = FH_JOB_RUNNING;
		c->running++;
		list_add(out, j);
	}
}

static void ready_append(fh_endpoint *ep, fh_job *j)
{
	j->state = FH_JOB_READY;
	j->next = NULL;
	if (ep->ready_tail)
		ep->ready_tail->next = j;
	else
		ep->ready_head = j;
	ep->ready_tail = j;
}

/* Puts a job on the heap for `delay_ms`; a failure to grow the heap gives
 * the job up rather than lose it silently (the caller reports it). */
static int wait_for(flaghook_client *c, fh_job *j, int64_t now, int64_t delay_ms)
{
	int64_t due = sat_add(now, ms_to_us(delay_ms));
	int rc = heap_push(c, (fh_timer){ due, j, NULL });
	if (rc)
		return rc; /* the job stays RUNNING: its caller finishes it */
	j->state = FH_JOB_WAITING;
	j->due = due;
	/* The stored time is wall clock; `now` is the client's clock. */
	j->d.next_attempt_us = sat_add(flaghook__now_us(), ms_to_us(delay_ms));
	return 0;
}

static void run_job(void *arg);
static void poll_store(flaghook_client *c);
static bool poll_due(flaghook_client *c);
static void admit(flaghook_client *c, fh_job **jobs, size_t n);
static int64_t run_due_locked(flaghook_client *c, job_list *out);

/* Sends a job through the executor to be finished without an attempt
 * (lock held): the one way out for a job met where it can no longer go,
 * so it is reported like any other. */
static void to_finish(flaghook_client *c, fh_job *j, const char *reason, job_list *out)
{
	j->finish_reason = reason;
	j->state = FH_JOB_RUNNING;
	j->ep->in_flight++;
	c->running++;
	list_add(out, j);
}

/* An executor that runs jobs inline would nest one run_job per queued
 * delivery (each finishing job submits the next).  Past a small depth the
 * jobs are parked here and the outermost run_job on this thread submits
 * them, so the stack stays bounded whatever the executor does. */
#define MAX_NESTING 8
static _Thread_local int nesting;
static _Thread_local job_list parked;

/* Hands RUNNING jobs to the executor.  Called without the lock. */
static void submit_all(flaghook_client *c, job_list *l)
{
	for (fh_job *j = l->head, *next; j; j = next) {
		next = j->next;
		if (nesting >= MAX_NESTING) {
			list_add(&parked, j);
			continue;
		}
		if (c->executor.submit(run_job, j, c->executor.user_data) == 0)
			continue;
		/* Refused: not an attempt.  Try again shortly; after many refusals
		 * in a row, or at shutdown, finish it here (the result says why). */
		pthread_mutex_lock(&c->engine_lock);
		fh_endpoint *ep = j->ep;
		bool again = !atomic_load(&c->aborting) && atomic_load(&ep->enabled) &&
		             ++j->refusals <= MAX_REFUSALS &&
		             wait_for(c, j, flaghook__clock(c), REFUSAL_RETRY_MS) == 0;
		if (again) {
			ep->in_flight--;
			if (ep->breaker == FH_HALF_OPEN)
				ep->probe_out = false;
			j->holds_slot = ep->fifo;
			ep->queued++;
			c->running--;
			pthread_cond_broadcast(&c->progress);
		}
		pthread_mutex_unlock(&c->engine_lock);
		if (!again) {
			j->finish_reason = atomic_load(&ep->enabled) ? "the executor refused the job"
			                                              : "endpoint disabled";
			j->last_errclass = FLAGHOOK_ERRCLASS_OTHER;
			run_job(j);
		}
	}
}

/* ---- finishing ---- */

/* A job's last attempt, for what ends it without one. */
static void stored_attempt(const fh_job *j, fh_attempt *out)
{
	memset(out, 0, sizeof(*out));
	out->status = j->last_status;
	out->errclass = j->last_errclass;
	snprintf(out->error, sizeof(out->error), "%s", j->last_error ? j->last_error : "");
}

/* What shutdown leaves: a durable store keeps it for the next run. */
static int left_outcome(const flaghook_client *c)
{
	return c->durable ? FLAGHOOK_OUTCOME_RELEASED : FLAGHOOK_OUTCOME_ABANDONED;
}
static void count_left(fh_endpoint *ep, int outcome)
{
	if (outcome == FLAGHOOK_OUTCOME_RELEASED)
		ep->released++;
	else
		ep->abandoned++;
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
	if (attempt_cb && c->on_attempt)
		c->on_attempt(&res, c->user_data);
	if (outcome != FLAGHOOK_OUTCOME_RETRY && c->on_result)
		c->on_result(&res, c->user_data);
}

/* Records and reports the end of a job without an attempt. */
static void finish_unattempted(flaghook_client *c, fh_job *j, int outcome)
{
	fh_attempt at;
	stored_attempt(j, &at);
	flaghook__record(c, &j->d, outcome, &at, 0, 0);
	report(c, j, outcome, &at, false);
}

/* A FIFO delivery ended.  When the endpoint's deliveries come through
 * claim (a shared store put them unheld, or a restart left them), the next
 * one waits in the store: ask for it.  Returns whether it asked (lock
 * held).  Otherwise the engine holds the successors and there is nothing
 * to ask the store for. */
static bool fifo_next(flaghook_client *c, fh_endpoint *ep)
{
	if (!ep->fifo || !ep->fifo_via_claim || !c->storage.claim)
		return false;
	c->poll_soon = true;
	pthread_cond_signal(&c->wake);
	return true;
}

/* Takes every waiting job of a disabled endpoint off the books (lock held). */
static void disable_locked(flaghook_client *c, fh_endpoint *ep, job_list *gone)
{
	atomic_store(&ep->enabled, 0);
	while (ep->ready_head) {
		fh_job *j = ep->ready_head;
		ep->ready_head = j->next;
		list_add(gone, j);
	}
	ep->ready_tail = NULL;
	/* Take its retries out of the heap in one pass and rebuild the heap:
	 * removing them one by one moves entries behind the scan. */
	size_t kept = 0;
	for (size_t i = 0; i < c->heap_len; i++) {
		fh_job *j = c->heap[i].job;
		if (j && j->ep == ep) {
			if (j->holds_slot)
				ep->fifo_busy = false;
			j->holds_slot = false;
			list_add(gone, j);
		} else {
			c->heap[kept++] = c->heap[i];
		}
	}
	c->heap_len = kept;
	heapify(c);
	for (fh_job *j = gone->head; j; j = j->next) {
		ep->queued--;
		ep->gave_up++;
		all_unlink(c, j);
	}
}

/* Reports and frees; returns how many (still counted in `pending`). */
static size_t report_gone(flaghook_client *c, job_list *gone, const char *why)
{
	size_t n = 0;
	for (fh_job *j = gone->head, *next; j; j = next, n++) {
		next = j->next;
		flaghook__free(c->allocator, j->last_error);
		j->last_error = flaghook__strdup(c->allocator, why);
		finish_unattempted(c, j, FLAGHOOK_OUTCOME_GAVE_UP);
		job_free(c, j);
	}
	return n;
}

void flaghook__engine_disable(flaghook_client *c, fh_endpoint *ep, const char *why)
{
	if (!c->engine_started || c->mode != FLAGHOOK_MODE_ASYNC) {
		atomic_store(&ep->enabled, 0);
		return;
	}
	job_list gone = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	disable_locked(c, ep, &gone);
	pthread_mutex_unlock(&c->engine_lock);
	size_t n = report_gone(c, &gone, why);
	pthread_mutex_lock(&c->engine_lock);
	c->pending -= n;
	pthread_cond_broadcast(&c->progress);
	pthread_mutex_unlock(&c->engine_lock);
}

void flaghook__engine_enable(flaghook_client *c, fh_endpoint *ep)
{
	job_list out = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	/* A fresh start: the failures that disabled it are history, and what
	 * waited behind its circuit may go now. */
	ep->consecutive_failures = 0;
	ep->failing_since = 0;
	ep->breaker = FH_CLOSED;
	ep->cooldown_ms = c->breaker_cooldown_ms;
	ep->probe_out = false;
	atomic_store(&ep->enabled, 1);
	if (c->mode == FLAGHOOK_MODE_ASYNC) {
		/* A FIFO delivery held behind the circuit is due now. */
		int64_t now = flaghook__clock(c);
		bool moved = false;
		for (size_t i = 0; i < c->heap_len; i++) {
			fh_job *j = c->heap[i].job;
			if (j && j->ep == ep && j->holds_slot && c->heap[i].due > now) {
				c->heap[i].due = j->due = now;
				moved = true;
			}
		}
		if (moved) {
			heapify(c);
			run_due_locked(c, &out);
		}
		pump(c, ep, &out);
	}
	pthread_mutex_unlock(&c->engine_lock);
	submit_all(c, &out);
}

/* Books a failed attempt against the endpoint: breaker and disabling
 * (lock held).  Returns a FLAGHOOK_DISABLED_* reason, or 0. */
static int failed_attempt(flaghook_client *c, fh_endpoint *ep, int64_t now, bool probe)
{
	ep->consecutive_failures++;
	if (!ep->failing_since)
		ep->failing_since = now ? now : 1;
	/* Half-open: only the probe's answer decides; an older attempt still in
	 * flight when the circuit opened must not re-open it. */
	bool trip = (ep->breaker == FH_HALF_OPEN && probe) ||
	            (ep->breaker == FH_CLOSED && c->breaker_threshold > 0 &&
	             ep->consecutive_failures >= c->breaker_threshold);
	if (trip) {
		/* A failed probe waits longer next time, up to a bound. */
		if (ep->breaker == FH_HALF_OPEN && ep->cooldown_ms < c->breaker_cooldown_ms * MAX_COOLDOWN_FACTOR)
			ep->cooldown_ms *= 2;
		ep->breaker = FH_OPEN;
		ep->breaker_until = now + ms_to_us(ep->cooldown_ms);
		atomic_fetch_add(&ep->refs, 1);
		if (heap_push(c, (fh_timer){ ep->breaker_until, NULL, ep })) {
			/* No room for the timer: stay half-open (probe by probe). */
			atomic_fetch_sub(&ep->refs, 1);
			ep->breaker = FH_HALF_OPEN;
		}
	}
	if (c->disable_after_ms > 0 && now - ep->failing_since >= ms_to_us(c->disable_after_ms))
		return FLAGHOOK_DISABLED_FAILING;
	return 0;
}

/* Puts a reported retry on the heap, or, if shutdown or disabling came
 * meanwhile, finishes it (recorded and reported here).  Returns the final
 * outcome, or FLAGHOOK_OUTCOME_RETRY when it is waiting. */
static int publish_retry(flaghook_client *c, fh_job *j, int64_t wait_ms, bool lost, job_list *submit)
{
	fh_endpoint *ep = j->ep;
	int outcome = FLAGHOOK_OUTCOME_RETRY;
	const char *why = NULL;
	pthread_mutex_lock(&c->engine_lock);
	if (lost) {
		/* The store says another process holds it now (our lease ran out
		 * while it was ours): that process finishes it. */
		outcome = FLAGHOOK_OUTCOME_RELEASED;
		why = "another process holds this delivery now";
		ep->released++;
	} else if (atomic_load(&c->aborting)) {
		outcome = left_outcome(c);
		count_left(ep, outcome);
	} else if (!atomic_load(&ep->enabled)) {
		outcome = FLAGHOOK_OUTCOME_GAVE_UP;
		why = "endpoint disabled";
		ep->gave_up++;
	} else {
		j->holds_slot = ep->fifo;
		if (wait_for(c, j, flaghook__clock(c), wait_ms) == 0) {
			ep->queued++;
		} else {
			j->holds_slot = false;
			outcome = FLAGHOOK_OUTCOME_GAVE_UP;
			why = "out of memory for the retry timer";
			ep->gave_up++;
		}
	}
	if (outcome != FLAGHOOK_OUTCOME_RETRY) {
		if (ep->fifo)
			ep->fifo_busy = false;
		fifo_next(c, ep);
		all_unlink(c, j);
		pump(c, ep, submit);
	}
	pthread_mutex_unlock(&c->engine_lock);
	if (outcome != FLAGHOOK_OUTCOME_RETRY) {
		if (why) {
			flaghook__free(c->allocator, j->last_error);
			j->last_error = flaghook__strdup(c->allocator, why);
		}
		if (lost) {
			report(c, j, outcome, NULL, false); /* not ours to record */
		} else {
			finish_unattempted(c, j, outcome);
		}
	}
	return outcome;
}

/* An executor thread: one attempt, then the decision. */
static void run_one(fh_job *j);

static void run_job(void *arg)
{
	nesting++;
	run_one(arg);
	nesting--;
	/* Outermost on this thread: submit what deeper levels parked. */
	while (nesting == 0 && parked.head) {
		fh_job *j = parked.head;
		parked.head = j->next;
		if (!parked.head)
			parked.tail = NULL;
		job_list one = { 0 };
		list_add(&one, j);
		submit_all(j->ep->client, &one);
	}
}

static void run_one(fh_job *j)
{
	fh_endpoint *ep = j->ep;
	flaghook_client *c = ep->client;
	uint64_t ep_id = ep->id; /* ep may go with the job's reference */
	bool fetch_next = false;    /* a FIFO successor waits in the store */
	fh_attempt at;
	memset(&at, 0, sizeof(at));
	bool refused = j->finish_reason != NULL;
	if (refused) {
		flaghook__free(c->allocator, j->last_error);
		j->last_error = flaghook__strdup(c->allocator, j->finish_reason);
	} else {
		j->refusals = 0; /* "in a row": it ran */
	}
	bool abandon = atomic_load(&c->aborting) != 0;
	bool attempted = false;
	/* The reply excerpt: on the stack for the usual size, no allocation. */
	char stack_response[4096];
	char *response = NULL;
	if (!abandon && !refused) {
		response = c->max_response_bytes <= sizeof(stack_response)
		               ? stack_response : flaghook__malloc(c->allocator, c->max_response_bytes);
		if (response) {
			flaghook__attempt(c, ep, &j->d, &at, response);
		} else {
			at.errclass = FLAGHOOK_ERRCLASS_OTHER;
			snprintf(at.error, sizeof(at.error), "out of memory for the reply");
		}
		j->d.attempts++;
		attempted = true;
		/* Cut short by shutdown: abandoned, not failed. */
		abandon = at.status == 0 && atomic_load(&c->aborting);
	}

	job_list submit = { 0 }, gone = { 0 };
	int disabled = 0;
	int outcome;
	pthread_mutex_lock(&c->engine_lock);
	int64_t now = flaghook__clock(c);
	int64_t wait_ms = 0;
	fh_decision dec = FH_GIVE_UP;
	if (attempted && !abandon)
		dec = flaghook__policy_decide(&ep->policy, j->d.attempts, at.status, at.errclass, at.retry_after,
		                              flaghook__now_us() / 1000000, next_random(c), &wait_ms);
	ep->in_flight--;
	bool probe = j->is_probe;
	j->is_probe = false;
	if (probe)
		ep->probe_out = false;
	/* After abort nothing is booked against the endpoint: no timer may be
	 * armed on a heap that shutdown has already emptied. */
	if (attempted && !abandon && !atomic_load(&c->aborting)) {
		if (dec == FH_DELIVERED) {
			ep->consecutive_failures = 0;
			ep->failing_since = 0;
			ep->breaker = FH_CLOSED;
			ep->cooldown_ms = c->breaker_cooldown_ms;
		} else {
			disabled = failed_attempt(c, ep, now, probe);
		}
		if (dec == FH_GONE) {
			disabled = FLAGHOOK_DISABLED_GONE;
			dec = FH_GIVE_UP;
		}
	}
	if (disabled && !atomic_load(&ep->enabled))
		disabled = 0; /* already disabled: report that once */
	if (dec == FH_RETRY && atomic_load(&c->aborting)) {
		abandon = true; /* nobody will read the heap again */
		dec = FH_GIVE_UP;
	}
	if (dec == FH_RETRY && (!atomic_load(&ep->enabled) || disabled))
		dec = FH_GIVE_UP;
	/* A retry is recorded and reported before the job goes on the heap:
	 * once there, another thread may run and finish it, and its final
	 * record must be the last the store sees.  Until then it stays RUNNING
	 * and ours (the FIFO slot too). */
	if (dec == FH_RETRY) {
		j->last_status = at.status;
		j->last_errclass = at.errclass;
		flaghook__free(c->allocator, j->last_error);
		j->last_error = flaghook__strdup(c->allocator, at.error);
		ep->retried++;
	}
	if (dec == FH_RETRY) {
		outcome = FLAGHOOK_OUTCOME_RETRY;
	} else {
		if (abandon) {
			outcome = left_outcome(c);
			count_left(ep, outcome);
		} else if (dec == FH_DELIVERED) {
			outcome = FLAGHOOK_OUTCOME_DELIVERED;
			ep->delivered++;
		} else {
			outcome = FLAGHOOK_OUTCOME_GAVE_UP;
			ep->gave_up++;
		}
		if (ep->fifo)
			ep->fifo_busy = false;
		fetch_next = fifo_next(c, ep);
		all_unlink(c, j);
	}
	if (disabled)
		disable_locked(c, ep, &gone);
	pump(c, ep, &submit);
	pthread_mutex_unlock(&c->engine_lock);

	bool lost = false;
	if (attempted) {
		int64_t next_us = outcome == FLAGHOOK_OUTCOME_RETRY ? sat_add(flaghook__now_us(), ms_to_us(wait_ms)) : 0;
		int rrc = flaghook__record(c, &j->d, outcome, &at, j->d.attempts, next_us);
		lost = outcome == FLAGHOOK_OUTCOME_RETRY && rrc == FLAGHOOK_ESTATE;
		report(c, j, outcome, &at, true);
	} else {
		finish_unattempted(c, j, outcome);
	}
	if (response != stack_response)
		flaghook__free(c->allocator, response);
	if (outcome == FLAGHOOK_OUTCOME_RETRY)
		outcome = publish_retry(c, j, wait_ms, lost, &submit);
	size_t finished = outcome != FLAGHOOK_OUTCOME_RETRY;
	if (finished)
		job_free(c, j);
	if (disabled) {
		finished += report_gone(c, &gone, disabled == FLAGHOOK_DISABLED_GONE
		                                      ? "endpoint answered 410 Gone and was disabled"
		                                      : "endpoint failed too long and was disabled");
		if (c->on_endpoint_disabled)
			c->on_endpoint_disabled(ep_id, disabled, c->user_data);
	}
	submit_all(c, &submit);

	/* Last: a delivery counts as pending until its result was reported, so
	 * flaghook_flush returning means every callback has run; and once
	 * running reaches 0, flaghook_client_free may proceed. */
	/* A shared store keeps the endpoint's next FIFO delivery unheld:
	 * fetch it here rather than wait for a poll.  Before `running` drops,
	 * so that client_free cannot free the client under it. */
	if (fetch_next)
		poll_store(c);
	pthread_mutex_lock(&c->engine_lock);
	c->pending -= finished;
	c->running--;
	if (finished && c->poll_blocked) {
		/* A poll stopped for want of room; there is some now. */
		c->poll_blocked = false;
		c->poll_soon = true;
		pthread_cond_signal(&c->wake);
	}
	pthread_cond_broadcast(&c->progress);
	pthread_mutex_unlock(&c->engine_lock);
}

/* ---- timers ---- */

/* Moves what is due off the heap (lock held); returns the next due time or
 * -1.  Jobs to send go onto `out`. */
static int64_t run_due_locked(flaghook_client *c, job_list *out)
{
	int64_t now = flaghook__clock(c);
	while (c->heap_len && c->heap[0].due <= now) {
		fh_timer t = heap_remove(c, 0);
		if (t.job) {
			fh_job *j = t.job;
			fh_endpoint *ep = j->ep;
			if (!atomic_load(&ep->enabled)) {
				j->holds_slot = false;
				ep->queued--;
				if (ep->fifo)
					ep->fifo_busy = true; /* run_one clears it */
				to_finish(c, j, "endpoint disabled", out);
				continue;
			}
			if (j->holds_slot && ep->breaker == FH_OPEN) {
				/* FIFO behind an open circuit: keep the slot, wait for the
				 * half-open (just after it, so that timer goes first). */
				j->due = ep->breaker_until + 1;
				j->d.next_attempt_us = flaghook__now_us() + (j->due - now);
				if (heap_push(c, (fh_timer){ j->due, j, NULL }) == 0)
					continue;
			}
			if (j->holds_slot) {
				/* FIFO: the slot is still its own; straight out. */
				j->holds_slot = false;
				ep->queued--;
				ep->in_flight++;
				if (ep->breaker == FH_HALF_OPEN)
					ep->probe_out = j->is_probe = true;
				j->state = FH_JOB_RUNNING;
				c->running++;
				list_add(out, j);
			} else {
				ready_append(ep, j);
				pump(c, ep, out);
			}
		} else {
			fh_endpoint *ep = t.ep;
			if (ep->breaker == FH_OPEN && now >= ep->breaker_until) {
				ep->breaker = FH_HALF_OPEN;
				ep->probe_out = false;
				pump(c, ep, out);
			}
			flaghook__endpoint_release(c, ep); /* the timer's reference */
		}
	}
	return c->heap_len ? c->heap[0].due : -1;
}

static int64_t run_due(flaghook_client *c)
{
	job_list out = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	int64_t next = run_due_locked(c, &out);
	pthread_mutex_unlock(&c->engine_lock);
	submit_all(c, &out);
	return next;
}

static void deadline_in(struct timespec *ts, int64_t us)
{
	if (us < 0)
		us = 0;
	if (us > 100LL * 365 * 24 * 3600 * 1000000) /* a century is "never" */
		us = 100LL * 365 * 24 * 3600 * 1000000;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += us / 1000000;
	ts->tv_nsec += (long)(us % 1000000) * 1000;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *scheduler(void *arg)
{
	flaghook_client *c = arg;
	pthread_mutex_lock(&c->engine_lock);
	while (!c->stop_scheduler) {
		job_list out = { 0 };
		int64_t next = run_due_locked(c, &out);
		if (out.head) {
			pthread_mutex_unlock(&c->engine_lock);
			submit_all(c, &out);
			pthread_mutex_lock(&c->engine_lock);
			continue;
		}
		if (poll_due(c)) {
			pthread_mutex_unlock(&c->engine_lock);
			poll_store(c);
			pthread_mutex_lock(&c->engine_lock);
			continue;
		}
		if (c->durable && c->storage.claim && !c->closing && (next < 0 || c->next_poll < next))
			next = c->next_poll;
		if (next < 0) {
			pthread_cond_wait(&c->wake, &c->engine_lock);
		} else {
			/* A custom clock may run at any speed: never sleep past a
			 * second without looking again. */
			int64_t us = next - flaghook__clock(c);
			struct timespec ts;
			deadline_in(&ts, us < 0 ? 0 : us > 1000000 ? 1000000 : us);
			pthread_cond_timedwait(&c->wake, &c->engine_lock, &ts);
		}
	}
	pthread_mutex_unlock(&c->engine_lock);
	return NULL;
}

int flaghook_tick(flaghook_client *c, int64_t *next_ms)
{
	flaghook__error_clear();
	if (!c)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	if (c->mode != FLAGHOOK_MODE_ASYNC || c->timers != FLAGHOOK_TIMERS_TICK)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL,
		                                                "flaghook_tick needs ASYNC mode with TICK timers"));
	run_due(c);
	pthread_mutex_lock(&c->engine_lock);
	bool poll = poll_due(c);
	pthread_mutex_unlock(&c->engine_lock);
	if (poll)
		poll_store(c);
	/* The attempts it ran inline may have set new timers. */
	pthread_mutex_lock(&c->engine_lock);
	int64_t next = c->heap_len ? c->heap[0].due : -1;
	if (c->durable && c->storage.claim && !c->closing && (next < 0 || c->next_poll < next))
		next = c->next_poll;
	pthread_mutex_unlock(&c->engine_lock);
	if (next_ms) {
		if (next < 0) {
			*next_ms = -1;
		} else {
			int64_t d = next - flaghook__clock(c);
			*next_ms = d <= 0 ? 0 : (d + 999) / 1000;
		}
	}
	return 0;
}

/* ---- accepting work ---- */

/* Puts jobs that are stored and counted in `pending` into the engine:
 * ready, waiting for their time, or, when shutdown came meanwhile, left
 * (recorded and reported here).  NULL entries are skipped. */
static void admit(flaghook_client *c, fh_job **jobs, size_t n)
{
	job_list out = { 0 }, late = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	int64_t now = flaghook__clock(c);
	for (size_t i = 0; i < n; i++) {
		fh_job *j = jobs[i];
		if (!j)
			continue;
		if (atomic_load(&c->aborting)) {
			/* Shutdown left everything while storage recorded these (an
			 * emit from a callback): finish them here. */
			count_left(j->ep, left_outcome(c));
			list_add(&late, j);
			continue;
		}
		j->all_next = c->all_jobs;
		if (c->all_jobs)
			c->all_jobs->all_prev = j;
		c->all_jobs = j;
		if (!atomic_load(&j->ep->enabled)) {
			/* Disabled between routing and now. */
			to_finish(c, j, "endpoint disabled", &out);
			continue;
		}
		j->ep->queued++;
		if (j->due > now && heap_push(c, (fh_timer){ j->due, j, NULL }) == 0) {
			j->state = FH_JOB_WAITING; /* a resumed retry: its time is stored */
			continue;
		}
		ready_append(j->ep, j);
		pump(c, j->ep, &out);
	}
	pthread_mutex_unlock(&c->engine_lock);
	size_t left = 0;
	for (fh_job *j = late.head, *next; j; j = next, left++) {
		next = j->next;
		finish_unattempted(c, j, left_outcome(c));
		job_free(c, j);
	}
	if (left) {
		pthread_mutex_lock(&c->engine_lock);
		c->pending -= left;
		pthread_cond_broadcast(&c->progress);
		pthread_mutex_unlock(&c->engine_lock);
	}
	submit_all(c, &out);
}

/* ---- claiming from the store ---- */

#define CLAIM_BATCH 256

typedef struct claim_ctx {
	flaghook_client *c;
	fh_job **jobs;
	size_t n, cap;
	int64_t now_wall, now_clock;
} claim_ctx;

/* The store hands one delivery over: copy it into a job.  0 takes it, 1
 * leaves it (an endpoint this client does not have or has disabled), -1
 * stops (out of memory). */
static int take_claimed(const flaghook_delivery *d, void *arg)
{
	claim_ctx *x = arg;
	flaghook_client *c = x->c;
	if (!d || d->version < 1 || !d->event_id || strlen(d->event_id) >= sizeof(((fh_body *)0)->event_id) ||
	    (!d->body && d->body_len))
		return 1;
	fh_endpoint *ep = flaghook__endpoint_find(c, d->endpoint_id);
	if (!ep)
		return 1;
	if (!atomic_load(&ep->enabled)) {
		flaghook__endpoint_release(c, ep);
		return 1;
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		fh_job **grown = flaghook__realloc(c->allocator, x->jobs, cap * sizeof(*grown));
		if (!grown) {
			flaghook__endpoint_release(c, ep);
			return -1;
		}
		x->jobs = grown;
		x->cap = cap;
	}
	fh_body *b = flaghook__calloc(c->allocator, 1, sizeof(*b));
	fh_job *j = flaghook__calloc(c->allocator, 1, sizeof(*j));
	if (b)
		b->buf.allocator = c->allocator;
	if (!b || !j || flaghook__buf_reserve(&b->buf, d->body_len + 1, 0)) {
		if (b)
			flaghook_buf_free(&b->buf);
		flaghook__free(c->allocator, b);
		flaghook__free(c->allocator, j);
		flaghook__endpoint_release(c, ep);
		return -1;
	}
	if (d->body_len)
		memcpy(b->buf.ptr, d->body, d->body_len);
	b->buf.size = d->body_len;
	b->buf.ptr[d->body_len] = '\0';
	atomic_init(&b->refs, 1); /* the job's */
	snprintf(b->event_id, sizeof(b->event_id), "%s", d->event_id);
	b->event_type = d->event_type;
	/* Times in the store are wall clock; the engine runs on the client's. */
	int64_t age = x->now_wall > d->created_us ? x->now_wall - d->created_us : 0;
	b->emit_us = x->now_clock - (age < x->now_clock ? age : 0);
	j->ep = ep;
	j->body = b;
	j->d = *d;
	j->d.version = FLAGHOOK_DELIVERY_VERSION;
	j->d.body = b->buf.ptr;
	j->d.event_id = b->event_id;
	j->d.claimed = 1;
	j->due = d->next_attempt_us > x->now_wall ? sat_add(x->now_clock, d->next_attempt_us - x->now_wall) : 0;
	x->jobs[x->n++] = j;
	return 0;
}

/* Asks the store for deliveries nobody holds and starts them.  One poll
 * runs at a time; a request that comes during one makes it go again. */
static void poll_store(flaghook_client *c)
{
	if (!c->storage.claim || c->mode != FLAGHOOK_MODE_ASYNC)
		return;
	pthread_mutex_lock(&c->engine_lock);
	if (c->polling || c->closing) {
		/* The running poll goes round again for this request. */
		if (c->polling && !c->closing)
			c->poll_soon = true;
		pthread_mutex_unlock(&c->engine_lock);
		return;
	}
	c->polling = true;
	for (;;) {
		c->poll_soon = false;
		c->next_poll = sat_add(flaghook__clock(c), ms_to_us(c->poll_interval_ms));
		size_t room = c->pending < c->max_pending ? c->max_pending - c->pending : 0;
		if (room > CLAIM_BATCH)
			room = CLAIM_BATCH;
		if (!room)
			c->poll_blocked = true; /* run_one asks again when one finishes */
		if (!room || c->closing)
			break;
		/* Not reserved: an emit meanwhile must not find the queue full
		 * because of a poll.  Emits and a claim together may pass
		 * max_pending by at most one batch. */
		pthread_mutex_unlock(&c->engine_lock);

		claim_ctx x = { c, NULL, 0, 0, flaghook__now_us(), flaghook__clock(c) };
		int rc = c->storage.claim(x.now_wall, ms_to_us(c->poll_interval_ms), room, take_claimed, &x,
		                          c->storage.user_data);
		if (rc) {
			/* The store rolled the claim back: nothing is held. */
			char detail[384];
			snprintf(detail, sizeof(detail), "%s", flaghook_last_error());
			flaghook__client_fail(c, flaghook__error(rc, "the store could not hand out deliveries: %s",
			                                          detail[0] ? detail : flaghook_strerror(rc)));
			for (size_t i = 0; i < x.n; i++)
				job_free(c, x.jobs[i]);
			x.n = 0;
		}
		if (x.n) {
			pthread_mutex_lock(&c->engine_lock);
			c->pending += x.n;
			/* A FIFO delivery that came through claim (a restart left it,
			 * or another process emitted it) has its successors there too. */
			for (size_t i = 0; i < x.n; i++)
				if (x.jobs[i]->ep->fifo)
					x.jobs[i]->ep->fifo_via_claim = true;
			pthread_mutex_unlock(&c->engine_lock);
			admit(c, x.jobs, x.n);
		}
		flaghook__free(c->allocator, x.jobs);
		pthread_mutex_lock(&c->engine_lock);
		/* A full batch may mean more is waiting. */
		if (rc || (!c->poll_soon && x.n < room))
			break;
	}
	c->polling = false;
	pthread_cond_broadcast(&c->progress); /* engine_stop and poll_now wait for it */
	pthread_mutex_unlock(&c->engine_lock);
}

void flaghook__engine_poll_now(flaghook_client *c)
{
	if (!c->engine_started || c->mode != FLAGHOOK_MODE_ASYNC || !c->storage.claim)
		return;
	/* A poll already running may have started before the caller's change
	 * (a new endpoint) and passed over its deliveries: wait it out. */
	pthread_mutex_lock(&c->engine_lock);
	while (c->polling && !c->closing)
		pthread_cond_wait(&c->progress, &c->engine_lock);
	pthread_mutex_unlock(&c->engine_lock);
	poll_store(c);
}

/* Whether a poll is due (lock held). */
static bool poll_due(flaghook_client *c)
{
	/* Only a durable store gains deliveries behind the client's back (an
	 * earlier run, another process); others are asked when told to. */
	return c->storage.claim && !c->polling && !c->closing &&
	       (c->poll_soon || (c->durable && flaghook__clock(c) >= c->next_poll));
}

void flaghook__engine_poll_soon(flaghook_client *c)
{
	if (!c->engine_started || c->mode != FLAGHOOK_MODE_ASYNC || !c->storage.claim)
		return;
	pthread_mutex_lock(&c->engine_lock);
	c->poll_soon = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->engine_lock);
}

int flaghook__engine_accept(flaghook_client *c, fh_job **jobs, size_t n)
{
	pthread_mutex_lock(&c->engine_lock);
	if (c->closing) {
		pthread_mutex_unlock(&c->engine_lock);
		return flaghook__error(FLAGHOOK_ESTATE, "the client is shutting down");
	}
	if (n > c->max_pending) {
		pthread_mutex_unlock(&c->engine_lock);
		return flaghook__error(FLAGHOOK_EFULL, "the event has %zu deliveries, more than max_pending %zu",
		                       n, c->max_pending);
	}
	if (c->pending + n > c->max_pending) {
		struct timespec ts;
		deadline_in(&ts, ms_to_us(c->emit_wait_ms));
		while (c->pending + n > c->max_pending && !c->closing) {
			if (c->emit_wait_ms <= 0 ||
			    pthread_cond_timedwait(&c->progress, &c->engine_lock, &ts) != 0) {
				if (c->pending + n <= c->max_pending)
					break;
				pthread_mutex_unlock(&c->engine_lock);
				return flaghook__error(FLAGHOOK_EFULL, "the delivery queue is full (%zu pending)",
				                       c->max_pending);
			}
		}
		if (c->closing) {
			pthread_mutex_unlock(&c->engine_lock);
			return flaghook__error(FLAGHOOK_ESTATE, "the client is shutting down");
		}
	}
	c->pending += n;
	pthread_mutex_unlock(&c->engine_lock);

	/* The outbox records them before anything is sent; it names them. */
	flaghook_delivery stack[16];
	flaghook_delivery *ds = n <= 16 ? stack : flaghook__calloc(c->allocator, n, sizeof(*ds));
	int rc = ds ? 0 : flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	if (ds) {
		for (size_t i = 0; i < n; i++)
			ds[i] = jobs[i]->d;
		rc = flaghook__storage_put(c, ds, n);
	}
	if (rc) {
		if (ds != stack)
			flaghook__free(c->allocator, ds);
		pthread_mutex_lock(&c->engine_lock);
		c->pending -= n;
		pthread_cond_broadcast(&c->progress);
		pthread_mutex_unlock(&c->engine_lock);
		return rc;
	}
	/* What the store keeps unheld (FIFO deliveries) comes back through
	 * claim, an endpoint's oldest first, so order holds across restarts
	 * and processes. */
	size_t unheld = 0;
	for (size_t i = 0; i < n; i++) {
		jobs[i]->d.id = ds[i].id;
		if (!ds[i].claimed) {
			if (jobs[i]->ep->fifo) {
				pthread_mutex_lock(&c->engine_lock);
				jobs[i]->ep->fifo_via_claim = true;
				pthread_mutex_unlock(&c->engine_lock);
			}
			job_free(c, jobs[i]);
			jobs[i] = NULL;
			unheld++;
		}
	}
	if (ds != stack)
		flaghook__free(c->allocator, ds);
	if (unheld) {
		pthread_mutex_lock(&c->engine_lock);
		c->pending -= unheld;
		c->poll_soon = true;
		pthread_cond_broadcast(&c->progress);
		pthread_mutex_unlock(&c->engine_lock);
	}
	admit(c, jobs, n);
	if (unheld)
		poll_store(c);
	return 0;
}

/* Waits (lock not held) until nothing is pending or the monotonic deadline
 * passes; in TICK mode it runs the timers itself, since the host's thread
 * is the one waiting.  With `whole_store` it also waits until the store
 * has nothing pending (what waits there unheld: FIFO successors, re-queued
 * deliveries, a shared store's other work).  Returns what is still
 * pending. */
static size_t drain(flaghook_client *c, int64_t deadline_us, bool whole_store)
{
	whole_store = whole_store && c->storage.claim && c->storage.pending;
	uint64_t stored = 0;
	pthread_mutex_lock(&c->engine_lock);
	for (;;) {
		stored = 0;
		if (!c->pending) {
			if (!whole_store)
				break;
			pthread_mutex_unlock(&c->engine_lock);
			int rc = c->storage.pending(&stored, c->storage.user_data);
			pthread_mutex_lock(&c->engine_lock);
			if (rc)
				stored = 0; /* cannot tell: what this client holds is done */
			if (c->pending)
				continue; /* a poll started meanwhile */
			if (!stored)
				break;
			c->poll_soon = true;
			pthread_cond_signal(&c->wake);
		}
		int64_t left = deadline_us - flaghook__mono_us();
		if (left <= 0)
			break;
		if (c->timers == FLAGHOOK_TIMERS_TICK) {
			pthread_mutex_unlock(&c->engine_lock);
			run_due(c);
			pthread_mutex_lock(&c->engine_lock);
			bool poll = poll_due(c);
			pthread_mutex_unlock(&c->engine_lock);
			if (poll)
				poll_store(c);
			pthread_mutex_lock(&c->engine_lock);
			left = left > 10000 ? 10000 : left;
		} else if (stored) {
			left = left > 20000 ? 20000 : left; /* the store has no condition to wait on */
		}
		struct timespec ts;
		deadline_in(&ts, left);
		int rc = pthread_cond_timedwait(&c->progress, &c->engine_lock, &ts);
		if (rc && rc != ETIMEDOUT)
			break;
	}
	size_t pending = c->pending ? c->pending : (size_t)stored;
	pthread_mutex_unlock(&c->engine_lock);
	return pending;
}

int flaghook_flush(flaghook_client *c, int64_t timeout_ms)
{
	flaghook__error_clear();
	if (!c || timeout_ms < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL or timeout_ms negative");
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return 0;
	size_t left = drain(c, sat_add(flaghook__mono_us(), ms_to_us(timeout_ms)), true);
	if (left)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_ETIMEOUT, "%zu deliveries still pending", left));
	return 0;
}

/* ---- start and stop ---- */

int flaghook__engine_start(flaghook_client *c, int threads)
{
	pthread_mutex_init(&c->engine_lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->progress, &attr);
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
	c->engine_started = true;
	c->rng = (uint64_t)flaghook__now_us() | 1;
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return 0;
	if (!c->executor.submit) {
		int rc = flaghook__pool_start(&c->pool, threads, c->allocator);
		if (rc)
			return rc;
		c->executor = (flaghook_executor){ FLAGHOOK_EXECUTOR_VERSION, flaghook__pool_submit, c->pool };
	}
	if (c->timers == FLAGHOOK_TIMERS_THREAD) {
		if (pthread_create(&c->scheduler, NULL, scheduler, c))
			return flaghook__error(FLAGHOOK_ESYSTEM, "could not start the scheduler thread");
		c->has_scheduler = true;
	}
	return 0;
}

/* Hands every job on the list back to a durable store in one call: a
 * backlog of thousands must not cost a commit each at shutdown.  false:
 * the caller records them one by one. */
static bool release_all(flaghook_client *c, job_list *l)
{
	size_t n = 0;
	for (fh_job *j = l->head; j; j = j->next)
		n++;
	if (!n)
		return true;
	uint64_t *ids = flaghook__calloc(c->allocator, n, sizeof(*ids));
	if (!ids)
		return false;
	size_t k = 0;
	for (fh_job *j = l->head; j; j = j->next)
		ids[k++] = j->d.id;
	int rc = c->storage.release(ids, n, c->storage.user_data);
	flaghook__free(c->allocator, ids);
	return rc == 0;
}

/* Drains until the deadline, then abandons what is left, reporting each
 * delivery, and stops the threads. */
void flaghook__engine_stop(flaghook_client *c)
{
	if (!c->engine_started)
		return;
	if (c->mode == FLAGHOOK_MODE_ASYNC) {
		pthread_mutex_lock(&c->engine_lock);
		c->closing = true;
		pthread_cond_broadcast(&c->progress);
		/* A claim under way brings deliveries in: let it finish (it stops
		 * at `closing`), so they are drained and reported like the rest. */
		while (c->polling)
			pthread_cond_wait(&c->progress, &c->engine_lock);
		pthread_mutex_unlock(&c->engine_lock);
		drain(c, sat_add(flaghook__mono_us(), ms_to_us(c->shutdown_timeout_ms)), false);
		pthread_mutex_lock(&c->engine_lock);
		atomic_store(&c->aborting, 1);
		/* Everything not running now is abandoned. */
		job_list gone = { 0 };
		while (c->heap_len) {
			fh_timer t = heap_remove(c, c->heap_len - 1);
			if (t.ep)
				flaghook__endpoint_release(c, t.ep);
		}
		for (fh_job *j = c->all_jobs, *next; j; j = next) {
			next = j->all_next;
			if (j->state == FH_JOB_RUNNING)
				continue;
			j->ep->ready_head = j->ep->ready_tail = NULL;
			j->ep->queued--;
			count_left(j->ep, left_outcome(c));
			all_unlink(c, j);
			list_add(&gone, j);
		}
		pthread_mutex_unlock(&c->engine_lock);
		size_t n = 0;
		bool released = c->durable && c->storage.release && release_all(c, &gone);
		for (fh_job *j = gone.head, *next; j; j = next, n++) {
			next = j->next;
			if (released)
				report(c, j, FLAGHOOK_OUTCOME_RELEASED, NULL, false);
			else
				finish_unattempted(c, j, left_outcome(c));
			job_free(c, j);
		}
		/* Attempts in flight see `aborting` and stop; wait for them. */
		pthread_mutex_lock(&c->engine_lock);
		c->pending -= n;
		while (c->running)
			pthread_cond_wait(&c->progress, &c->engine_lock);
		/* Nothing runs now; drop any circuit timer armed meanwhile. */
		while (c->heap_len) {
			fh_timer t = heap_remove(c, c->heap_len - 1);
			if (t.ep)
				flaghook__endpoint_release(c, t.ep);
		}
		c->stop_scheduler = true;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->engine_lock);
		if (c->has_scheduler)
			pthread_join(c->scheduler, NULL);
		flaghook__pool_stop(c->pool);
		c->pool = NULL;
	}
	flaghook__free(c->allocator, c->heap);
	c->heap = NULL;
	pthread_cond_destroy(&c->progress);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->engine_lock);
	c->engine_started = false;
}

/* Used by the attempt to poll for shutdown. */
int flaghook__cancelled(void *ctx)
{
	return atomic_load(&((flaghook_client *)ctx)->aborting);
}
