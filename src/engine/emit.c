/*
 * flaghook_emit: validate and render once per body shape, route, then
 * either hand the deliveries to the engine (ASYNC) or attempt them all at
 * once and wait for the slowest (SYNC).
 */
#include "client/registry.h"
#include "engine/attempt.h"
#include "engine/engine.h"
#include "engine/notify.h"
#include "engine/run.h"
#include "engine/sched.h"
#include "payload/render.h"
#include "payload/sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define EVENT_ID_BYTES 37 /* UUID text + NUL */

/* A random (version 4) UUID names the event: stable across its deliveries
 * and attempts, and the webhook-id of Standard Webhooks. */
static int new_event_id(char out[EVENT_ID_BYTES])
{
	uint8_t b[16];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n <= 0)
			return flaghook__error(FLAGHOOK_ESYSTEM, "getrandom failed: no event id");
		got += (size_t)n;
	}
	b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
	char hex[33];
	flaghook__hex(hex, b, sizeof(b));
	snprintf(out, EVENT_ID_BYTES, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
	return 0;
}

/* ---- emit ---- */

static int render_shapes(flaghook_client *c, const flaghook_event *ev, fh_endpoint **eps, size_t n,
                         flaghook_buf *probe, fh_body **out_by_ep, fh_body **all, size_t *nall)
{
	/* Profiles and flags are small: index the shape as profile*2+compact. */
	fh_body *by_shape[8] = { 0 };
	*nall = 0;
	for (size_t i = 0; i < n; i++) {
		int key = eps[i]->profile * 2 + (eps[i]->render_flags & FLAGHOOK_RENDER_COMPACT ? 1 : 0);
		if (!by_shape[key]) {
			fh_body *b = flaghook__calloc(c->allocator, 1, sizeof(*b));
			if (!b)
				return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
			atomic_init(&b->refs, 1); /* emit's own, released when it returns */
			b->buf.allocator = c->allocator;
			b->event_type = ev->type;
			all[(*nall)++] = b;
			by_shape[key] = b;
			if (key == 0 && probe->ptr) {
				/* The validation render is the default shape: reuse it. */
				b->buf = *probe;
				*probe = (flaghook_buf)FLAGHOOK_BUF_INIT;
			} else {
				int rc = flaghook__render(&b->buf, ev, eps[i]->profile, eps[i]->render_flags,
				                          c->max_body_bytes);
				if (rc)
					return rc;
			}
		}
		out_by_ep[i] = by_shape[key];
	}
	return 0;
}

static void release_shapes(flaghook_client *c, fh_body **all, size_t n)
{
	for (size_t i = 0; i < n; i++)
		flaghook__body_release(c, all[i]);
}

/* SYNC: the attempts under way, counted down by their transports; each
 * holds one of the client's transfer slots (max_transfers, shared with
 * other threads emitting at once). */
typedef struct sync_wait {
	flaghook_client *c;
	size_t remaining;
	size_t waiting;             /* prepared attempts not started for want of a slot */
} sync_wait;

static void sync_done(void *ctx)
{
	sync_wait *w = ctx;
	pthread_mutex_lock(&w->c->engine_lock);
	w->remaining--;
	w->c->transfers--;
	flaghook__progress(w->c);
	pthread_mutex_unlock(&w->c->engine_lock);
}

/* All done, or a slot is free for one that waits. */
static bool sync_can_go_on(flaghook_client *c, void *arg)
{
	sync_wait *w = arg;
	return w->remaining == 0 || (w->waiting && c->transfers < c->max_transfers);
}

/* Every endpoint's attempt starts at once (up to max_transfers; the rest
 * as slots come free); emit returns when the slowest has finished.  A
 * blocking transport can only send them one by one. */
static int emit_sync(flaghook_client *c, fh_endpoint **eps, size_t n, fh_body **bodies,
                     flaghook_delivery *ds, int64_t start)
{
	/* Everything the attempts need is allocated before the store records
	 * the deliveries: once recorded, each must end with a result. */
	fh_attempt **ats = flaghook__calloc(c->allocator, n, sizeof(*ats));
	bool *ready = flaghook__calloc(c->allocator, n, sizeof(*ready));
	int rc = ats && ready ? 0 : flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++)
		if (!(ats[i] = flaghook__attempt_new(c)))
			rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	if (!rc)
		rc = flaghook__storage_put(c, ds, n);
	if (rc) {
		for (size_t i = 0; ats && i < n; i++)
			flaghook__attempt_free(c, ats[i]);
		flaghook__free(c->allocator, ats);
		flaghook__free(c->allocator, ready);
		return rc;
	}
	sync_wait w = { c, 0, 0 };
	/* Prepare (sign, vet) every attempt first; those that end there
	 * (refused, signing failed) take no slot. */
	for (size_t i = 0; i < n; i++)
		if ((ready[i] = flaghook__attempt_prepare(c, eps[i], &ds[i], ats[i], false) == 0))
			w.waiting++;
	size_t next = 0;
	pthread_mutex_lock(&c->engine_lock);
	while (w.waiting) {
		while (next < n && !ready[next])
			next++;
		if (c->transfers >= c->max_transfers && c->transport.start) {
			pthread_mutex_unlock(&c->engine_lock);
			flaghook__run_until(c, sync_can_go_on, &w, INT64_MAX);
			pthread_mutex_lock(&c->engine_lock);
			continue;
		}
		c->transfers++;
		w.remaining++;
		w.waiting--;
		pthread_mutex_unlock(&c->engine_lock);
		bool over = flaghook__attempt_run(c, ats[next++], sync_done, &w);
		pthread_mutex_lock(&c->engine_lock);
		if (over) {
			/* sent already (a blocking transport), or never started */
			w.remaining--;
			c->transfers--;
		}
	}
	pthread_mutex_unlock(&c->engine_lock);
	flaghook__free(c->allocator, ready);
	flaghook__run_until(c, sync_can_go_on, &w, INT64_MAX);

	int failed = 0, unrecorded = 0;
	char why[320] = ""; /* the first failure, said in the error */
	for (size_t i = 0; i < n; i++) {
		fh_attempt *at = ats[i];
		flaghook__attempt_conclude(at);
		ds[i].attempts++;
		/* Synchronous delivery tries once; the engine is what retries. */
		int outcome = at->status >= 200 && at->status <= 299 ? FLAGHOOK_OUTCOME_DELIVERED
		                                                       : FLAGHOOK_OUTCOME_GAVE_UP;
		unrecorded += flaghook__record(c, &ds[i], outcome, at, ds[i].attempts, 0) != 0;
		if (outcome != FLAGHOOK_OUTCOME_DELIVERED && !failed++)
			snprintf(why, sizeof(why), "endpoint %llu: %s: %s", (unsigned long long)eps[i]->id,
			         flaghook_errclass_name(at->errclass), at->error[0] ? at->error : "failed");
		pthread_mutex_lock(&c->engine_lock);
		if (at->ran)
			flaghook__observe_latency(eps[i], at->finished_us - at->started_us);
		if (outcome == FLAGHOOK_OUTCOME_DELIVERED) {
			eps[i]->delivered++;
			eps[i]->consecutive_failures = 0;
		} else {
			eps[i]->gave_up++;
			eps[i]->consecutive_failures++;
		}
		pthread_mutex_unlock(&c->engine_lock);
		flaghook_result res;
		flaghook__result(&res, eps[i], &ds[i], bodies[i]->event_type, outcome, at, flaghook__mono_us() - start);
		flaghook__notify_result(c, &res, true);
	}
	for (size_t i = 0; i < n; i++)
		flaghook__attempt_free(c, ats[i]);
	flaghook__free(c->allocator, ats);
	/* Every outcome reached on_result; the return value says what the
	 * caller most needs to act on. */
	if (failed)
		return flaghook__error(FLAGHOOK_EDELIVERY, "%d of %zu endpoints did not take event %s; %s%s",
		                       failed, n, ds[0].event_id, failed > 1 ? "the first, " : "", why);
	if (unrecorded)
		return flaghook__error(FLAGHOOK_ESTORAGE, "storage could not record %d outcomes of event %s",
		                       unrecorded, ds[0].event_id);
	return 0;
}

static int emit_async(flaghook_client *c, fh_endpoint **eps, size_t n, fh_body **bodies,
                      const flaghook_delivery *ds)
{
	fh_job *stack[16];
	fh_job **jobs = n <= 16 ? stack : flaghook__calloc(c->allocator, n, sizeof(*jobs));
	if (!jobs)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	size_t made = 0;
	int rc = 0;
	for (; made < n; made++) {
		fh_job *j = flaghook__calloc(c->allocator, 1, sizeof(*j));
		if (!j) {
			rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
			break;
		}
		j->ep = eps[made];
		j->body = bodies[made];
		j->d = ds[made];
		jobs[made] = j;
	}
	/* Each job holds a body reference from before the engine sees it: the
	 * first may finish before engine_accept returns. */
	for (size_t i = 0; !rc && i < n; i++)
		atomic_fetch_add(&bodies[i]->refs, 1);
	if (!rc) {
		rc = flaghook__engine_accept(c, jobs, n);
		if (rc)
			for (size_t i = 0; i < n; i++)
				atomic_fetch_sub(&bodies[i]->refs, 1);
	}
	if (rc) {
		for (size_t i = 0; i < made; i++)
			flaghook__free(c->allocator, jobs[i]);
	} else {
		/* The jobs own the endpoint references route() took. */
		for (size_t i = 0; i < n; i++)
			eps[i] = NULL;
	}
	if (jobs != stack)
		flaghook__free(c->allocator, jobs);
	return rc;
}

int flaghook_emit(flaghook_client *c, const flaghook_event *ev)
{
	flaghook__error_clear();
	if (!c)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	int64_t start = flaghook__mono_us();
	fh_endpoint **eps = NULL;
	size_t neps = 0, nshapes = 0;
	fh_body **by_ep = NULL, *shapes_all[8] = { 0 };
	flaghook_delivery *ds = NULL;
	int rc;

	/* Validate first: a bad event is an error even when no one listens. */
	flaghook_buf probe = FLAGHOOK_BUF_INIT;
	probe.allocator = c->allocator;
	int64_t env_id = 0, org_id = 0;
	if ((rc = flaghook__render(&probe, ev, FLAGHOOK_PROFILE_FLAGSMITH, 0, c->max_body_bytes)))
		goto out;
	flaghook__event_scope(ev, &env_id, &org_id);
	if ((rc = flaghook__route(c, ev->type, env_id, org_id, &eps, &neps)) || neps == 0)
		goto out;

	by_ep = flaghook__calloc(c->allocator, neps, sizeof(*by_ep));
	ds = flaghook__calloc(c->allocator, neps, sizeof(*ds));
	if (!by_ep || !ds) {
		rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = render_shapes(c, ev, eps, neps, &probe, by_ep, shapes_all, &nshapes)))
		goto out;
	char event_id[EVENT_ID_BYTES];
	if ((rc = new_event_id(event_id)))
		goto out;
	int64_t now = flaghook__now_us();
	int64_t emit_clock = c->mode == FLAGHOOK_MODE_ASYNC ? flaghook__clock(c) : start;
	for (size_t i = 0; i < nshapes; i++) {
		memcpy(shapes_all[i]->event_id, event_id, sizeof(event_id));
		shapes_all[i]->emit_us = emit_clock;
		if (c->mode == FLAGHOOK_MODE_ASYNC)
			flaghook__buf_shrink(&shapes_all[i]->buf);
	}
	/* The store assigns ids.  FIFO matters only to the engine: a
	 * synchronous emit is its own order. */
	for (size_t i = 0; i < neps; i++)
		ds[i] = (flaghook_delivery){ .version = FLAGHOOK_DELIVERY_VERSION,
		                             .event_id = by_ep[i]->event_id,
		                             .event_type = ev->type,
		                             .endpoint_id = eps[i]->id,
		                             .body = by_ep[i]->buf.ptr,
		                             .body_len = by_ep[i]->buf.size,
		                             .created_us = now,
		                             .next_attempt_us = now,
		                             .fifo = c->mode == FLAGHOOK_MODE_ASYNC && eps[i]->fifo };
	if (c->mode == FLAGHOOK_MODE_ASYNC)
		rc = emit_async(c, eps, neps, by_ep, ds);
	else
		rc = emit_sync(c, eps, neps, by_ep, ds, start);
out:
	flaghook_buf_free(&probe);
	release_shapes(c, shapes_all, nshapes);
	flaghook__free(c->allocator, by_ep);
	flaghook__free(c->allocator, ds);
	for (size_t i = 0; i < neps; i++)
		if (eps[i])
			flaghook__endpoint_release(c, eps[i]);
	flaghook__free(c->allocator, eps);
	return flaghook__client_fail(c, rc);
}
