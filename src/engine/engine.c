/* The engine's entry points: see engine.h. */
#include "engine/engine.h"
#include "engine/attempt.h"
#include "engine/claim.h"
#include "engine/finish.h"
#include "engine/run.h"
#include "engine/timers.h"
#include "io/loop.h"
#include "client/registry.h"
#include "plugins/plugins.h"

#include <string.h>
#include <time.h>

/* ---- start and stop ---- */

int flaghook__engine_init(flaghook_client *c)
{
	pthread_mutex_init(&c->engine_lock, NULL);
	pthread_mutex_init(&c->driver, NULL);
	pthread_mutex_init(&c->done_lock, NULL);
	pthread_mutex_init(&c->cache_lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->progress, &attr);
	pthread_condattr_destroy(&attr);
	c->engine_started = true;
	c->rng = (uint64_t)flaghook__now_us() | 1;
	c->wake_fd = c->timer_fd = -1;
	int rc = flaghook__loop_new(&c->loop, c->allocator);
	if (!rc)
		rc = flaghook__run_init(c);
	return rc;
}

int flaghook__engine_start(flaghook_client *c, int threads)
{
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return 0;
	if (!c->executor.submit) {
		if (c->timers == FLAGHOOK_TIMERS_TICK) {
			c->inline_executor = true; /* no thread of ours at all */
		} else {
			int rc = flaghook__pool_start(&c->pool, threads, c->allocator);
			if (rc)
				return rc;
			c->executor = (flaghook_executor){ FLAGHOOK_EXECUTOR_VERSION, flaghook__pool_submit, c->pool };
		}
	}
	if (c->timers == FLAGHOOK_TIMERS_THREAD)
		return flaghook__run_thread_start(c);
	return 0;
}

static bool nothing_running(flaghook_client *c, void *arg)
{
	(void)arg;
	return c->running == 0 && !c->polling && !c->poll_queued;
}

static bool not_polling(flaghook_client *c, void *arg)
{
	(void)arg;
	return !c->polling && !c->poll_queued;
}

/* Hands every job on the list back to a durable store in one call: a
 * backlog of thousands must not cost a commit each at shutdown.  false:
 * the caller records them one by one. */
static bool release_all(flaghook_client *c, fh_job_list *l)
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

static bool nothing_pending(flaghook_client *c, void *arg)
{
	(void)arg;
	return c->pending == 0;
}

/* After the deadline: everything not running is left; what runs is told
 * to stop (each transfer then ends, and is reported, as left). */
static void abandon(flaghook_client *c)
{
	pthread_mutex_lock(&c->engine_lock);
	atomic_store(&c->aborting, 1);
	fh_job_list gone = { 0 };
	fh_timer t;
	while (flaghook__timers_pop_due(c, INT64_MAX, &t))
		if (t.ep)
			flaghook__endpoint_release(c, t.ep);
	for (fh_job *j = c->all_jobs, *next; j; j = next) {
		next = j->all_next;
		if (j->state == FH_JOB_RUNNING)
			continue;
		j->ep->ready_head = j->ep->ready_tail = NULL;
		j->ep->queued--;
		flaghook__count_left(j->ep, flaghook__left_outcome(c));
		if (j->all_prev)
			j->all_prev->all_next = j->all_next;
		else
			c->all_jobs = j->all_next;
		if (j->all_next)
			j->all_next->all_prev = j->all_prev;
		flaghook__list_add(&gone, j);
	}
	pthread_mutex_unlock(&c->engine_lock);
	if (c->transport.cancel)
		c->transport.cancel(c->transport.user_data);
	size_t n = 0;
	bool released = c->durable && c->storage.release && release_all(c, &gone);
	for (fh_job *j = gone.head, *next; j; j = next, n++) {
		next = j->next;
		if (released)
			flaghook__report_left(c, j, FLAGHOOK_OUTCOME_RELEASED);
		else
			flaghook__finish_unattempted(c, j, flaghook__left_outcome(c));
		flaghook__job_free(c, j);
	}
	pthread_mutex_lock(&c->engine_lock);
	c->pending -= n;
	flaghook__progress(c);
	pthread_mutex_unlock(&c->engine_lock);
}

void flaghook__engine_stop(flaghook_client *c)
{
	if (!c->engine_started)
		return;
	if (c->mode == FLAGHOOK_MODE_ASYNC) {
		pthread_mutex_lock(&c->engine_lock);
		c->closing = true;
		flaghook__progress(c);
		pthread_mutex_unlock(&c->engine_lock);
		/* A claim under way brings deliveries in: let it finish (it stops
		 * at `closing`), so they are drained and reported like the rest. */
		flaghook__run_until(c, not_polling, NULL, INT64_MAX);
		int64_t deadline = flaghook__sat_add(flaghook__mono_us(), flaghook__ms_to_us(c->shutdown_timeout_ms));
		flaghook__run_until(c, nothing_pending, NULL, deadline);
		abandon(c);
		/* Transfers in flight were cancelled: each comes back and is
		 * reported as left. */
		flaghook__run_until(c, nothing_running, NULL, INT64_MAX);
		pthread_mutex_lock(&c->engine_lock);
		/* Nothing runs now; drop any circuit timer armed meanwhile. */
		fh_timer t;
		while (flaghook__timers_pop_due(c, INT64_MAX, &t))
			if (t.ep)
				flaghook__endpoint_release(c, t.ep);
		while (c->starved_head) {
			fh_endpoint *ep = c->starved_head;
			c->starved_head = ep->starved_next;
			ep->starved = false;
			flaghook__endpoint_release(c, ep);
		}
		c->starved_tail = NULL;
		pthread_mutex_unlock(&c->engine_lock);
		flaghook__run_thread_stop(c);
		flaghook__pool_stop(c->pool);
		c->pool = NULL;
	}
}

/* The loop outlives the transport's use of it: freed after the transport
 * is destroyed (client.c calls this last). */
void flaghook__engine_free(flaghook_client *c)
{
	if (!c->engine_started)
		return;
	flaghook__run_fini(c);
	flaghook__loop_free(c->loop);
	c->loop = NULL;
	flaghook__timers_free(c);
	flaghook__attempt_cache_free(c);
	pthread_mutex_destroy(&c->cache_lock);
	pthread_cond_destroy(&c->progress);
	pthread_mutex_destroy(&c->engine_lock);
	pthread_mutex_destroy(&c->driver);
	pthread_mutex_destroy(&c->done_lock);
	c->engine_started = false;
}

/* ---- accepting work ---- */

static bool room_for(flaghook_client *c, void *arg)
{
	return c->closing || c->pending + *(size_t *)arg <= c->max_pending;
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
	/* Full: wait for room up to emit_wait_ms.  Room that comes is taken
	 * under the lock, so another emitter woken with us may get it first:
	 * then wait again. */
	int64_t deadline = flaghook__sat_add(flaghook__mono_us(), flaghook__ms_to_us(c->emit_wait_ms));
	while (c->pending + n > c->max_pending) {
		if (c->emit_wait_ms <= 0 || flaghook__mono_us() >= deadline) {
			pthread_mutex_unlock(&c->engine_lock);
			return flaghook__error(FLAGHOOK_EFULL, "the delivery queue is full (%zu pending)", c->max_pending);
		}
		pthread_mutex_unlock(&c->engine_lock);
		flaghook__run_until(c, room_for, &n, deadline);
		pthread_mutex_lock(&c->engine_lock);
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
		flaghook__progress(c);
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
			flaghook__job_free(c, jobs[i]);
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
		flaghook__progress(c);
		pthread_mutex_unlock(&c->engine_lock);
	}
	fh_job_list out = { 0 };
	flaghook__admit(c, jobs, n, &out);
	if (unheld)
		flaghook__claim_poll(c, &out);
	flaghook__run_submit(c, &out);
	return 0;
}

/* ---- what the endpoint functions ask ---- */

void flaghook__engine_disable(flaghook_client *c, fh_endpoint *ep, const char *why)
{
	if (!c->engine_started || c->mode != FLAGHOOK_MODE_ASYNC) {
		atomic_store(&ep->enabled, 0);
		return;
	}
	fh_job_list gone = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	flaghook__sched_disable(c, ep, &gone);
	pthread_mutex_unlock(&c->engine_lock);
	size_t n = flaghook__report_gone(c, &gone, why);
	pthread_mutex_lock(&c->engine_lock);
	c->pending -= n;
	flaghook__progress(c);
	pthread_mutex_unlock(&c->engine_lock);
}

void flaghook__engine_enable(flaghook_client *c, fh_endpoint *ep)
{
	fh_job_list out = { 0 };
	pthread_mutex_lock(&c->engine_lock);
	flaghook__sched_enable(c, ep, &out);
	pthread_mutex_unlock(&c->engine_lock);
	flaghook__run_submit(c, &out);
}

void flaghook__engine_poll_soon(flaghook_client *c)
{
	if (!c->engine_started || c->mode != FLAGHOOK_MODE_ASYNC || !c->storage.claim)
		return;
	pthread_mutex_lock(&c->engine_lock);
	c->poll_soon = true;
	flaghook__timers_arm(c);
	pthread_mutex_unlock(&c->engine_lock);
}

static bool not_claiming(flaghook_client *c, void *arg)
{
	(void)arg;
	return !c->polling || c->closing;
}

void flaghook__engine_poll_now(flaghook_client *c)
{
	if (!c->engine_started || c->mode != FLAGHOOK_MODE_ASYNC || !c->storage.claim)
		return;
	/* A poll already running may have started before the caller's change
	 * (a new endpoint) and passed over its deliveries: wait it out. */
	flaghook__run_until(c, not_claiming, NULL, INT64_MAX);
	fh_job_list out = { 0 };
	flaghook__claim_poll(c, &out);
	flaghook__run_submit(c, &out);
}

/* ---- flush, tick, fd ---- */

typedef struct drain_ctx {
	bool whole_store;
	uint64_t stored;
	int64_t next_look;
} drain_ctx;

/* Nothing pending here, and (whole_store) nothing pending in the store:
 * what waits there unheld (FIFO successors, re-queued deliveries, a shared
 * store's other work) is polled for meanwhile. */
static bool drained(flaghook_client *c, void *arg)
{
	drain_ctx *x = arg;
	if (c->pending)
		return false;
	if (!x->whole_store)
		return true;
	int64_t now = flaghook__mono_us();
	if (now < x->next_look)
		return false;
	x->next_look = now + 20000;
	pthread_mutex_unlock(&c->engine_lock);
	uint64_t stored = 0;
	int rc = c->storage.pending(&stored, c->storage.user_data);
	pthread_mutex_lock(&c->engine_lock);
	x->stored = rc ? 0 : stored; /* cannot tell: what this client holds is done */
	if (c->pending)
		return false; /* a poll started meanwhile */
	if (!x->stored)
		return true;
	c->poll_soon = true;
	flaghook__timers_arm(c);
	return false;
}

int flaghook_flush(flaghook_client *c, int64_t timeout_ms)
{
	flaghook__error_clear();
	if (!c || timeout_ms < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL or timeout_ms negative");
	if (c->mode != FLAGHOOK_MODE_ASYNC)
		return 0;
	drain_ctx x = { c->storage.claim && c->storage.pending, 0, 0 };
	int64_t deadline = flaghook__sat_add(flaghook__mono_us(), flaghook__ms_to_us(timeout_ms));
	if (!flaghook__run_until(c, drained, &x, deadline)) {
		pthread_mutex_lock(&c->engine_lock);
		size_t left = c->pending ? c->pending : (size_t)x.stored;
		pthread_mutex_unlock(&c->engine_lock);
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_ETIMEOUT, "%zu deliveries still pending", left));
	}
	return 0;
}

int flaghook_tick(flaghook_client *c, int64_t *next_ms)
{
	flaghook__error_clear();
	if (!c)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	if (c->mode != FLAGHOOK_MODE_ASYNC || c->timers != FLAGHOOK_TIMERS_TICK)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL,
		                                                "flaghook_tick needs ASYNC mode with TICK timers"));
	pthread_mutex_lock(&c->driver);
	bool again = flaghook__run_round(c, 0);
	pthread_mutex_unlock(&c->driver);
	if (next_ms) {
		pthread_mutex_lock(&c->engine_lock);
		int64_t next = flaghook__timers_next(c);
		if (c->durable && c->storage.claim && !c->closing && c->next_poll < next)
			next = c->next_poll;
		int64_t d = next == INT64_MAX ? -1 : next - flaghook__clock(c);
		pthread_mutex_unlock(&c->engine_lock);
		/* Rounded up, without overflowing at "never". */
		*next_ms = d < 0 ? (next == INT64_MAX ? -1 : 0) : d / 1000 + (d % 1000 != 0);
		/* Finished attempts the executor refused are offered again soon. */
		if (again && (*next_ms < 0 || *next_ms > FH_REFUSED_RETRY_MS))
			*next_ms = FH_REFUSED_RETRY_MS;
	}
	return 0;
}

int flaghook_fd(flaghook_client *c, int *out_fd)
{
	flaghook__error_clear();
	if (!c || !out_fd)
		return flaghook__error(FLAGHOOK_EINVAL, "client or out_fd is NULL");
	if (c->timers != FLAGHOOK_TIMERS_TICK || !c->loop)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL,
		                                                "flaghook_fd needs TICK timers: in the default mode "
		                                                "the library's own I/O thread watches it"));
	*out_fd = flaghook__loop_fd(c->loop);
	return 0;
}
