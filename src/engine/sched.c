/* The scheduler: see sched.h.  Every function but the first few runs with
 * the engine lock held. */
#include "engine/sched.h"
#include "client/registry.h"
#include "engine/breaker.h"
#include "engine/timers.h"

#include <stdio.h>
#include <string.h>

#define REFUSAL_RETRY_MS 50
#define MAX_REFUSALS 200

void flaghook__list_add(fh_job_list *l, fh_job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

void flaghook__list_splice(fh_job_list *into, fh_job_list *l)
{
	if (!l->head)
		return;
	if (into->tail)
		into->tail->next = l->head;
	else
		into->head = l->head;
	into->tail = l->tail;
	l->head = l->tail = NULL;
}

/* ---- bodies and jobs (no lock) ---- */

void flaghook__body_release(flaghook_client *c, fh_body *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		flaghook_buf_free(&b->buf);
		flaghook__free(c->allocator, b);
	}
}

void flaghook__job_free(flaghook_client *c, fh_job *j)
{
	flaghook__body_release(c, j->body);
	flaghook__endpoint_release(c, j->ep);
	flaghook__free(c->allocator, j->last_error);
	flaghook__free(c->allocator, j);
}

/* ---- with the engine lock ---- */

static uint64_t next_random(flaghook_client *c)
{
	/* xorshift64*; only the jitter depends on it. */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ULL;
}

static void all_link(flaghook_client *c, fh_job *j)
{
	j->all_prev = NULL;
	j->all_next = c->all_jobs;
	if (c->all_jobs)
		c->all_jobs->all_prev = j;
	c->all_jobs = j;
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

int flaghook__left_outcome(const flaghook_client *c)
{
	return c->durable ? FLAGHOOK_OUTCOME_RELEASED : FLAGHOOK_OUTCOME_ABANDONED;
}

void flaghook__count_left(fh_endpoint *ep, int outcome)
{
	if (outcome == FLAGHOOK_OUTCOME_RELEASED)
		ep->released++;
	else
		ep->abandoned++;
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

static void ready_prepend(fh_endpoint *ep, fh_job *j)
{
	j->state = FH_JOB_READY;
	j->next = ep->ready_head;
	ep->ready_head = j;
	if (!ep->ready_tail)
		ep->ready_tail = j;
}

/* The endpoint waits for one of the client's transfer slots. */
static void starve(flaghook_client *c, fh_endpoint *ep)
{
	if (ep->starved)
		return;
	ep->starved = true;
	ep->starved_next = NULL;
	atomic_fetch_add(&ep->refs, 1); /* the list's */
	if (c->starved_tail)
		c->starved_tail->starved_next = ep;
	else
		c->starved_head = ep;
	c->starved_tail = ep;
}

/* A job starts running: an attempt, holding a transfer slot. */
static void start(flaghook_client *c, fh_endpoint *ep, fh_job *j, fh_job_list *out)
{
	ep->in_flight++;
	flaghook__breaker_started(ep, j);
	j->state = FH_JOB_RUNNING;
	j->holds_transfer = true;
	c->transfers++;
	c->running++;
	flaghook__list_add(out, j);
}

void flaghook__sched_pump(flaghook_client *c, fh_endpoint *ep, fh_job_list *out)
{
	if (atomic_load(&c->aborting))
		return;
	while (ep->ready_head) {
		if (!flaghook__breaker_allows(ep))
			return;
		if (ep->fifo ? ep->fifo_busy : ep->in_flight >= ep->max_in_flight)
			return;
		if (c->transfers >= c->max_transfers) {
			starve(c, ep);
			return;
		}
		fh_job *j = ep->ready_head;
		ep->ready_head = j->next;
		if (!ep->ready_head)
			ep->ready_tail = NULL;
		ep->queued--;
		ep->fifo_busy = ep->fifo;
		start(c, ep, j, out);
	}
}

/* A transfer slot came free: endpoints that waited for one go first. */
static void transfer_done(flaghook_client *c, fh_job *j, fh_job_list *out)
{
	if (!j->holds_transfer)
		return;
	j->holds_transfer = false;
	c->transfers--;
	while (c->starved_head && c->transfers < c->max_transfers) {
		fh_endpoint *ep = c->starved_head;
		c->starved_head = ep->starved_next;
		if (!c->starved_head)
			c->starved_tail = NULL;
		ep->starved = false;
		flaghook__sched_pump(c, ep, out);
		flaghook__endpoint_release(c, ep); /* the list's */
	}
}

int flaghook__sched_wait(flaghook_client *c, fh_job *j, int64_t now, int64_t delay_ms)
{
	int64_t due = flaghook__sat_add(now, flaghook__ms_to_us(delay_ms));
	int rc = flaghook__timers_push(c, (fh_timer){ due, j, NULL });
	if (rc)
		return rc;
	j->state = FH_JOB_WAITING;
	j->due = due;
	/* The stored time is wall clock; `now` is the client's clock. */
	j->d.next_attempt_us = flaghook__sat_add(flaghook__now_us(), flaghook__ms_to_us(delay_ms));
	return 0;
}

void flaghook__sched_to_finish(flaghook_client *c, fh_job *j, const char *reason, fh_job_list *out)
{
	j->finish_reason = reason;
	j->state = FH_JOB_RUNNING;
	j->ep->in_flight++;
	c->running++;
	flaghook__list_add(out, j);
}

void flaghook__sched_admit(flaghook_client *c, fh_job **jobs, size_t n, fh_job_list *out, fh_job_list *late)
{
	int64_t now = flaghook__clock(c);
	for (size_t i = 0; i < n; i++) {
		fh_job *j = jobs[i];
		if (!j)
			continue;
		if (atomic_load(&c->aborting)) {
			/* Shutdown left everything while storage recorded these (an
			 * emit from a callback): the caller finishes them. */
			flaghook__count_left(j->ep, flaghook__left_outcome(c));
			flaghook__list_add(late, j);
			continue;
		}
		all_link(c, j);
		if (!atomic_load(&j->ep->enabled)) {
			/* Disabled between routing and now. */
			flaghook__sched_to_finish(c, j, "endpoint disabled", out);
			continue;
		}
		j->ep->queued++;
		if (j->due > now && flaghook__timers_push(c, (fh_timer){ j->due, j, NULL }) == 0) {
			j->state = FH_JOB_WAITING; /* a resumed retry: its time is stored */
			continue;
		}
		ready_append(j->ep, j);
		flaghook__sched_pump(c, j->ep, out);
	}
}

int64_t flaghook__sched_run_due(flaghook_client *c, fh_job_list *out)
{
	int64_t now = flaghook__clock(c);
	fh_timer t;
	while (flaghook__timers_pop_due(c, now, &t)) {
		if (!t.job) {
			if (flaghook__breaker_half_open(t.ep, now))
				flaghook__sched_pump(c, t.ep, out);
			flaghook__endpoint_release(c, t.ep); /* the timer's reference */
			continue;
		}
		fh_job *j = t.job;
		fh_endpoint *ep = j->ep;
		if (!atomic_load(&ep->enabled)) {
			j->holds_slot = false;
			ep->queued--;
			if (ep->fifo)
				ep->fifo_busy = true; /* finish clears it */
			flaghook__sched_to_finish(c, j, "endpoint disabled", out);
			continue;
		}
		if (j->holds_slot && ep->breaker == FH_OPEN) {
			/* FIFO behind an open circuit: keep the slot, wait for the
			 * half-open (just after it, so that timer goes first). */
			j->due = flaghook__sat_add(ep->breaker_until, 1);
			j->d.next_attempt_us = flaghook__sat_add(flaghook__now_us(), j->due - now);
			if (flaghook__timers_push(c, (fh_timer){ j->due, j, NULL }) == 0)
				continue;
		}
		if (j->holds_slot) {
			/* FIFO: the slot is still its own.  Without a transfer slot it
			 * goes back to the front of its queue and waits for one. */
			j->holds_slot = false;
			if (c->transfers >= c->max_transfers) {
				ep->fifo_busy = false;
				ready_prepend(ep, j);
				starve(c, ep);
				continue;
			}
			ep->queued--;
			start(c, ep, j, out);
		} else {
			ready_append(ep, j);
			flaghook__sched_pump(c, ep, out);
		}
	}
	return flaghook__timers_next(c);
}

typedef struct drop_ctx {
	fh_endpoint *ep;
	fh_job_list *to;
} drop_ctx;

static bool not_of_endpoint(const fh_timer *t, void *arg)
{
	return !t->job || t->job->ep != ((drop_ctx *)arg)->ep;
}

static void drop_timer(fh_timer *t, void *arg)
{
	drop_ctx *x = arg;
	fh_job *j = t->job;
	if (j->holds_slot)
		x->ep->fifo_busy = false;
	j->holds_slot = false;
	flaghook__list_add(x->to, j);
}

void flaghook__sched_disable(flaghook_client *c, fh_endpoint *ep, fh_job_list *gone)
{
	atomic_store(&ep->enabled, 0);
	fh_job_list taken = { 0 };
	while (ep->ready_head) {
		fh_job *j = ep->ready_head;
		ep->ready_head = j->next;
		flaghook__list_add(&taken, j);
	}
	ep->ready_tail = NULL;
	drop_ctx x = { ep, &taken };
	flaghook__timers_filter(c, not_of_endpoint, drop_timer, &x);
	for (fh_job *j = taken.head; j; j = j->next) {
		ep->queued--;
		ep->gave_up++;
		all_unlink(c, j);
	}
	flaghook__list_splice(gone, &taken);
}

void flaghook__sched_enable(flaghook_client *c, fh_endpoint *ep, fh_job_list *out)
{
	/* A fresh start: the failures that disabled it are history, and what
	 * waited behind its circuit may go now. */
	flaghook__breaker_reset(c, ep);
	atomic_store(&ep->enabled, 1);
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return;
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
		flaghook__timers_reorder(c);
		flaghook__sched_run_due(c, out);
	}
	flaghook__sched_pump(c, ep, out);
}

bool flaghook__sched_refused(flaghook_client *c, fh_job *j, fh_job_list *out)
{
	fh_endpoint *ep = j->ep;
	if (atomic_load(&c->aborting) || !atomic_load(&ep->enabled) || ++j->refusals > MAX_REFUSALS ||
	    flaghook__sched_wait(c, j, flaghook__clock(c), REFUSAL_RETRY_MS) != 0)
		return false;
	ep->in_flight--;
	if (j->is_probe)
		ep->probe_out = false;
	j->is_probe = false;
	j->holds_slot = ep->fifo;
	ep->queued++;
	c->running--;
	/* The transfer slot goes back the way a finished attempt's does: an
	 * endpoint that waited for one starts now.  (Left to the retry's
	 * pump, it could wait behind a free slot for good: this endpoint may
	 * be disabled, or its circuit open, before that pumps anything.) */
	transfer_done(c, j, out);
	return true;
}

/* A FIFO delivery ended.  When the endpoint's deliveries come through
 * claim (a shared store put them unheld, or a restart left them), the next
 * one waits in the store: the caller asks for it once the end is recorded
 * (before, the store would not hand it out yet). */
static bool fifo_next(flaghook_client *c, fh_endpoint *ep)
{
	return ep->fifo && ep->fifo_via_claim && c->storage.claim;
}

/* The breaker opened: a timer half-opens it after its cooldown. */
static void arm_breaker(flaghook_client *c, fh_endpoint *ep)
{
	atomic_fetch_add(&ep->refs, 1);
	if (flaghook__timers_push(c, (fh_timer){ ep->breaker_until, NULL, ep })) {
		/* No room for the timer: stay half-open (probe by probe). */
		atomic_fetch_sub(&ep->refs, 1);
		ep->breaker = FH_HALF_OPEN;
	}
}

void flaghook__sched_finish(flaghook_client *c, fh_job *j, fh_end *e, fh_job_list *gone, fh_job_list *out)
{
	fh_endpoint *ep = j->ep;
	int64_t now = flaghook__clock(c);
	int64_t wait_ms = 0;
	fh_decision dec = FH_GIVE_UP;
	bool aborting = atomic_load(&c->aborting) != 0;
	if (e->attempted && !e->cut_short)
		dec = flaghook__policy_decide(&ep->policy, j->d.attempts, e->status, e->errclass, e->retry_after,
		                              flaghook__now_us() / 1000000, next_random(c), &wait_ms);
	ep->in_flight--;
	transfer_done(c, j, out);
	bool probe = j->is_probe;
	j->is_probe = false;
	if (probe)
		ep->probe_out = false;
	int disabled = 0;
	/* After abort nothing is booked against the endpoint: no timer may be
	 * armed on a heap that shutdown has already emptied. */
	if (e->attempted && !e->cut_short && !aborting) {
		if (dec == FH_DELIVERED) {
			flaghook__breaker_success(c, ep);
		} else if (flaghook__breaker_failure(c, ep, now, probe, &disabled)) {
			arm_breaker(c, ep);
		}
		if (dec == FH_GONE) {
			disabled = FLAGHOOK_DISABLED_GONE;
			dec = FH_GIVE_UP;
		}
	}
	if (dec == FH_GONE)
		dec = FH_GIVE_UP;
	if (disabled && !atomic_load(&ep->enabled))
		disabled = 0; /* already disabled: report that once */
	if (dec == FH_RETRY && aborting) {
		e->cut_short = true; /* nobody will read the heap again */
		dec = FH_GIVE_UP;
	}
	if (dec == FH_RETRY && (!atomic_load(&ep->enabled) || disabled))
		dec = FH_GIVE_UP;
	e->wait_ms = wait_ms;
	if (dec == FH_RETRY) {
		/* Still RUNNING and ours (the FIFO slot too) until the caller has
		 * recorded and reported it and publishes the retry. */
		e->outcome = FLAGHOOK_OUTCOME_RETRY;
		ep->retried++;
	} else {
		if (e->cut_short) {
			e->outcome = flaghook__left_outcome(c);
			flaghook__count_left(ep, e->outcome);
		} else if (dec == FH_DELIVERED) {
			e->outcome = FLAGHOOK_OUTCOME_DELIVERED;
			ep->delivered++;
		} else {
			e->outcome = FLAGHOOK_OUTCOME_GAVE_UP;
			ep->gave_up++;
		}
		if (ep->fifo)
			ep->fifo_busy = false;
		e->fetch_next = fifo_next(c, ep);
		all_unlink(c, j);
	}
	e->disabled = disabled;
	if (disabled)
		flaghook__sched_disable(c, ep, gone);
	flaghook__sched_pump(c, ep, out);
}

int flaghook__sched_publish_retry(flaghook_client *c, fh_job *j, int64_t wait_ms, bool lost, const char **why,
                                  bool *fetch_next, fh_job_list *out)
{
	fh_endpoint *ep = j->ep;
	int outcome = FLAGHOOK_OUTCOME_RETRY;
	*why = NULL;
	if (lost) {
		/* The store says another process holds it now (our lease ran out
		 * while it was ours): that process finishes it. */
		outcome = FLAGHOOK_OUTCOME_RELEASED;
		*why = "another process holds this delivery now";
		ep->released++;
	} else if (atomic_load(&c->aborting)) {
		outcome = flaghook__left_outcome(c);
		flaghook__count_left(ep, outcome);
	} else if (!atomic_load(&ep->enabled)) {
		outcome = FLAGHOOK_OUTCOME_GAVE_UP;
		*why = "endpoint disabled";
		ep->gave_up++;
	} else {
		j->holds_slot = ep->fifo;
		if (flaghook__sched_wait(c, j, flaghook__clock(c), wait_ms) == 0) {
			ep->queued++;
		} else {
			j->holds_slot = false;
			outcome = FLAGHOOK_OUTCOME_GAVE_UP;
			*why = "out of memory for the retry timer";
			ep->gave_up++;
		}
	}
	if (outcome != FLAGHOOK_OUTCOME_RETRY) {
		if (ep->fifo)
			ep->fifo_busy = false;
		*fetch_next = fifo_next(c, ep);
		all_unlink(c, j);
		flaghook__sched_pump(c, ep, out);
	}
	return outcome;
}
