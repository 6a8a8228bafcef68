/* Running the engine: see run.h. */
#include "engine/run.h"
#include "engine/attempt.h"
#include "engine/claim.h"
#include "engine/finish.h"
#include "engine/timers.h"
#include "io/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Attempts per executor job: small enough that the pool's threads share
 * the signing of a burst, large enough to save most wake-ups. */
#define ATTEMPT_BATCH 16
#define FINISH_BATCH 32

/* An executor that runs jobs inline would nest one job inside another
 * (a callback emits, whose job runs inline, whose callback emits, ...).
 * Past a small depth the jobs are parked here and the outermost job on
 * this thread submits them, each through its own client (one thread may
 * run several clients' jobs), so the stack stays bounded whatever the
 * executor does. */
#define MAX_NESTING 8
static _Thread_local int nesting;
static _Thread_local fh_job_list parked;
static _Thread_local bool unparking;

/* The client whose loop this thread is running now: a transport done on
 * this thread needs no wake-up, the round drains the queue when it ends. */
static _Thread_local flaghook_client *driving;

static bool submit_list(flaghook_client *c, fh_job_list *l, bool finishing);
static int submit(flaghook_client *c, void (*fn)(void *), void *arg);
static void lookup_job(void *arg);

/* ---- on an executor thread ---- */

/* No memory for j's attempt: that is a transport failure of its own,
 * booked and reported like one (the policy may retry it).  Out of line:
 * the spare is large and seldom needed. */
static __attribute__((noinline)) void finish_without_attempt(flaghook_client *c, fh_job *j, fh_job_list *out)
{
	fh_attempt spare;
	flaghook__attempt_spare(&spare);
	j->at = &spare;
	flaghook__finish_job(c, j, out);
}

static void list_of_chain(fh_job_list *l, fh_job *head)
{
	l->head = l->tail = head;
	while (l->tail && l->tail->next)
		l->tail = l->tail->next;
}

/* Prepares and starts each job's attempt; those that end at once (a
 * blocking transport, a refused address, shutdown) are finished here, and
 * what that lets run is started here too.  A name to look up (a blocking
 * call) waits until the others have started, and then goes to a job of
 * its own: a slow resolver holds up its own endpoint's deliveries only,
 * and those wait for the one lookup under way without a thread. */
static void run_attempts(flaghook_client *c, fh_job_list *todo)
{
	fh_job_list lookups = { 0 };
	for (;;) {
		while (todo->head) {
			fh_job *j = todo->head;
			todo->head = j->next;
			if (!todo->head)
				todo->tail = NULL;
			fh_job_list out = { 0 };
			bool go = !j->finish_reason && !atomic_load(&c->aborting);
			if (!go && j->at) {
				/* Back from a lookup after shutdown began: no attempt. */
				flaghook__attempt_free(c, j->at);
				j->at = NULL;
			}
			if (go && !j->at) {
				fh_attempt *at = flaghook__attempt_new(c);
				if (!at) {
					finish_without_attempt(c, j, &out);
					flaghook__list_splice(todo, &out);
					continue;
				}
				j->at = at;
				int dns = flaghook__attempt_dns(c, j);
				if (dns == FH_DNS_WAIT)
					continue; /* the lookup under way hands it back */
				if (dns == FH_DNS_LOOKUP) {
					flaghook__list_add(&lookups, j);
					continue;
				}
			}
			if (go && flaghook__attempt_prepare(c, j->ep, &j->d, j->at, true) == 0 &&
			    !flaghook__attempt_run(c, j->at, flaghook__run_done, j))
				continue; /* in flight: j is the transport's until done */
			flaghook__finish_job(c, j, &out);
			flaghook__list_splice(todo, &out);
		}
		if (!lookups.head)
			return;
		fh_job *j = lookups.head;
		lookups.head = j->next;
		if (!lookups.head)
			lookups.tail = NULL;
		j->next = NULL;
		/* Nested too deep, no executor of the caller's (TICK), or refused:
		 * this thread looks it up, now that the rest has gone. */
		if (!c->inline_executor && nesting < MAX_NESTING && submit(c, lookup_job, j) == 0)
			continue;
		fh_job_list back;
		list_of_chain(&back, flaghook__attempt_lookup(c, j));
		flaghook__list_splice(todo, &back);
	}
}

/* Submits what was parked on this thread, each client's jobs through that
 * client.  Only the outermost call does: the others return at once, and
 * what they would have submitted is taken by its loop. */
static void unpark(void)
{
	if (unparking)
		return;
	unparking = true;
	while (nesting == 0 && parked.head) {
		flaghook_client *c = parked.head->ep->client;
		fh_job_list mine = { 0 }, others = { 0 };
		for (fh_job *j = parked.head, *next; j; j = next) {
			next = j->next;
			flaghook__list_add(j->ep->client == c ? &mine : &others, j);
		}
		parked = others;
		submit_list(c, &mine, false);
	}
	unparking = false;
}

static void attempts_job(void *arg)
{
	fh_job *head = arg;
	flaghook_client *c = head->ep->client; /* a batch is one client's */
	fh_job_list l;
	list_of_chain(&l, head);
	nesting++;
	run_attempts(c, &l);
	nesting--;
	unpark();
}

static void lookup_job(void *arg)
{
	fh_job *j = arg;
	flaghook_client *c = j->ep->client;
	nesting++;
	fh_job_list l;
	list_of_chain(&l, flaghook__attempt_lookup(c, j));
	run_attempts(c, &l);
	nesting--;
	unpark();
}

static void finishes_job(void *arg)
{
	fh_job *head = arg;
	flaghook_client *c = head->ep->client;
	fh_job_list out = { 0 };
	nesting++;
	for (fh_job *j = head, *next; j; j = next) {
		next = j->next;
		flaghook__finish_job(c, j, &out);
	}
	run_attempts(c, &out);
	nesting--;
	unpark();
}

static void poll_job(void *arg)
{
	flaghook_client *c = arg;
	fh_job_list out = { 0 };
	nesting++;
	flaghook__claim_poll(c, &out);
	run_attempts(c, &out);
	nesting--;
	unpark();
}

/* ---- handing work to the executor ---- */

static int submit(flaghook_client *c, void (*fn)(void *), void *arg)
{
	if (c->inline_executor) {
		fn(arg);
		return 0;
	}
	return c->executor.submit(fn, arg, c->executor.user_data);
}

/* The executor would not take a batch of attempts: each goes back to wait
 * a little, or, refused too often or at shutdown, is finished here.  The
 * transfer slots they free may start other endpoints' jobs: those go onto
 * `more`, to be submitted in turn. */
static void refused(flaghook_client *c, fh_job *head, fh_job_list *more)
{
	for (fh_job *j = head, *next; j; j = next) {
		next = j->next;
		fh_job_list out = { 0 };
		pthread_mutex_lock(&c->engine_lock);
		bool again = flaghook__sched_refused(c, j, &out);
		if (again)
			flaghook__progress(c);
		pthread_mutex_unlock(&c->engine_lock);
		if (!again) {
			j->finish_reason = atomic_load(&j->ep->enabled) ? "the executor refused the job" : "endpoint disabled";
			j->last_errclass = FLAGHOOK_ERRCLASS_OTHER;
			flaghook__finish_job(c, j, &out);
		}
		flaghook__list_splice(more, &out);
	}
}

/* Puts finished attempts the executor would not take back at the front of
 * the done queue: the loop offers them again after FH_REFUSED_RETRY_MS. */
static void requeue_done(flaghook_client *c, fh_job_list *l)
{
	pthread_mutex_lock(&c->done_lock);
	l->tail->next = c->done_head;
	if (!c->done_head)
		c->done_tail = l->tail;
	c->done_head = l->head;
	pthread_mutex_unlock(&c->done_lock);
	l->head = l->tail = NULL;
}

/* Hands l's jobs to the executor in batches.  Attempts nested too deep
 * are parked; refused ones wait a little (refused()).  Finished attempts
 * are never run by the loop's thread, which would then record, report and
 * start attempts itself: a refused batch and the rest go back to the done
 * queue (true returned: come back soon), except after shutdown's deadline,
 * which cannot wait. */
static bool submit_list(flaghook_client *c, fh_job_list *l, bool finishing)
{
	size_t batch = finishing ? FINISH_BATCH : ATTEMPT_BATCH;
	while (l->head) {
		if (!finishing && nesting >= MAX_NESTING) {
			flaghook__list_splice(&parked, l);
			return false;
		}
		fh_job *head = l->head, *tail = head;
		for (size_t n = 1; tail->next && n < batch; n++)
			tail = tail->next;
		l->head = tail->next;
		if (!l->head)
			l->tail = NULL;
		tail->next = NULL;
		if (submit(c, finishing ? finishes_job : attempts_job, head) == 0)
			continue;
		if (!finishing) {
			refused(c, head, l);
		} else if (atomic_load(&c->aborting)) {
			finishes_job(head);
		} else {
			tail->next = l->head;
			l->head = head;
			if (!l->tail)
				l->tail = tail;
			requeue_done(c, l);
			return true;
		}
	}
	return false;
}

void flaghook__run_submit(flaghook_client *c, fh_job_list *l)
{
	submit_list(c, l, false);
}

/* ---- the transport's side ---- */

void flaghook__run_done(void *ctx)
{
	fh_job *j = ctx;
	flaghook_client *c = j->ep->client;
	j->next = NULL;
	pthread_mutex_lock(&c->done_lock);
	if (c->done_tail)
		c->done_tail->next = j;
	else
		c->done_head = j;
	c->done_tail = j;
	/* The wake-up is written under the lock: once the lock is released
	 * the loop may finish j, and the client may be freed and its
	 * descriptor closed (run_fini takes the lock first). */
	if (!c->done_signalled && driving != c) {
		c->done_signalled = true;
		flaghook__eventfd_signal(c->wake_fd);
	}
	pthread_mutex_unlock(&c->done_lock);
}

/* ---- the loop ---- */

static void on_wake(void *arg, uint32_t events)
{
	(void)events;
	flaghook_client *c = arg;
	flaghook__eventfd_clear(c->wake_fd);
}

static void on_timer(void *arg, uint32_t events)
{
	(void)events;
	flaghook_client *c = arg;
	flaghook__timerfd_clear(c->timer_fd);
}

/* After a round: finish what the transport is done with, fire timers, ask
 * for a poll.  True: the executor turned finished attempts or a poll
 * away, to be offered again after FH_REFUSED_RETRY_MS. */
static bool after_round(flaghook_client *c)
{
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return false;
	pthread_mutex_lock(&c->done_lock);
	fh_job_list done = { c->done_head, c->done_tail };
	c->done_head = c->done_tail = NULL;
	c->done_signalled = false;
	pthread_mutex_unlock(&c->done_lock);
	bool again = submit_list(c, &done, true);

	fh_job_list out = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	flaghook__sched_run_due(c, &out);
	bool poll = flaghook__claim_due(c);
	if (poll)
		c->poll_queued = true;
	flaghook__timers_arm(c);
	pthread_mutex_unlock(&c->engine_lock);
	submit_list(c, &out, false);
	if (poll && submit(c, poll_job, c) != 0) {
		/* Not on this thread either: asked for again next time. */
		pthread_mutex_lock(&c->engine_lock);
		c->poll_queued = false;
		c->poll_soon = true;
		flaghook__progress(c);
		pthread_mutex_unlock(&c->engine_lock);
		again = true;
	}
	return again;
}

bool flaghook__run_round(flaghook_client *c, int timeout_ms)
{
	if (c->loop) {
		flaghook_client *outer = driving;
		driving = c;
		flaghook__loop_run(c->loop, timeout_ms);
		driving = outer;
	}
	return after_round(c);
}

int flaghook__run_init(flaghook_client *c)
{
	c->wake_fd = c->timer_fd = -1;
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return 0;
	c->wake_fd = flaghook__eventfd_new();
	c->timer_fd = flaghook__timerfd_new();
	if (c->wake_fd < 0 || c->timer_fd < 0)
		return flaghook__error(FLAGHOOK_ESYSTEM, "could not make the engine's event descriptors: %s",
		                       strerror(errno));
	int rc = flaghook__loop_watch(c->loop, c->wake_fd, EPOLLIN, on_wake, c, &c->wake_w);
	if (!rc)
		rc = flaghook__loop_watch(c->loop, c->timer_fd, EPOLLIN, on_timer, c, &c->timer_w);
	return rc;
}

void flaghook__run_fini(flaghook_client *c)
{
	if (c->loop) {
		flaghook__loop_unwatch(c->loop, c->wake_w);
		flaghook__loop_unwatch(c->loop, c->timer_w);
	}
	c->wake_w = c->timer_w = NULL;
	/* A transport's done on another thread may still be writing the
	 * wake-up: it does so holding done_lock, so wait it out. */
	pthread_mutex_lock(&c->done_lock);
	pthread_mutex_unlock(&c->done_lock);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	c->wake_fd = c->timer_fd = -1;
}

static void *io_main(void *arg)
{
	flaghook_client *c = arg;
	bool again = false;
	while (!atomic_load(&c->stop_io))
		again = flaghook__run_round(c, again ? FH_REFUSED_RETRY_MS : -1);
	return NULL;
}

int flaghook__run_thread_start(flaghook_client *c)
{
	if (pthread_create(&c->io_thread, NULL, io_main, c))
		return flaghook__error(FLAGHOOK_ESYSTEM, "could not start the I/O thread");
	c->has_io_thread = true;
	return 0;
}

void flaghook__run_thread_stop(flaghook_client *c)
{
	if (!c->has_io_thread)
		return;
	atomic_store(&c->stop_io, 1);
	flaghook__eventfd_signal(c->wake_fd);
	pthread_join(c->io_thread, NULL);
	c->has_io_thread = false;
}

static void deadline_in(struct timespec *ts, int64_t us)
{
	if (us < 0)
		us = 0;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += us / 1000000;
	ts->tv_nsec += (long)(us % 1000000) * 1000;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

bool flaghook__run_until(flaghook_client *c, bool (*done)(flaghook_client *c, void *arg), void *arg,
                         int64_t deadline_us)
{
	pthread_mutex_lock(&c->engine_lock);
	for (;;) {
		if (done(c, arg))
			break;
		int64_t left = deadline_us - flaghook__mono_us();
		if (left <= 0) {
			pthread_mutex_unlock(&c->engine_lock);
			return false;
		}
		/* Without an I/O thread somebody must run the loop: whoever gets
		 * the driver's lock; the others wait to be told of progress. */
		/* (A transport of the caller's reports a SYNC attempt's end straight
		 * to the waiter: nothing to drive then.) */
		if (c->loop && !c->has_io_thread && driving != c && (c->mode == FLAGHOOK_MODE_ASYNC || c->own_transport)) {
			pthread_mutex_unlock(&c->engine_lock);
			if (pthread_mutex_trylock(&c->driver) == 0) {
				int64_t ms = left / 1000;
				flaghook__run_round(c, ms > 50 ? 50 : ms < 1 ? 1 : (int)ms);
				pthread_mutex_unlock(&c->driver);
				pthread_mutex_lock(&c->engine_lock);
				continue;
			}
			pthread_mutex_lock(&c->engine_lock);
			left = left > 5000 ? 5000 : left;
		} else if (left > 20000) {
			left = 20000; /* look again: not every change is signalled */
		}
		struct timespec ts;
		deadline_in(&ts, left);
		c->waiters++;
		pthread_cond_timedwait(&c->progress, &c->engine_lock, &ts);
		c->waiters--;
	}
	pthread_mutex_unlock(&c->engine_lock);
	return true;
}
