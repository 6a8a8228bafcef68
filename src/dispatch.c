/*
 * flaghook_emit: validate and render once per body shape, route, then
 * either attempt each delivery now (SYNC) or hand them to the engine
 * (ASYNC).  Also the one attempt both paths share: sign and send.
 */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define EVENT_ID_BYTES 37 /* UUID text + NUL */
#define MAX_HEADERS 9

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

/* ---- one attempt ---- */

void flaghook__attempt(flaghook_client *c, const fh_endpoint *ep, const flaghook_delivery *d,
                       fh_attempt *at, char *response_buf)
{
	flaghook_header h[MAX_HEADERS];
	size_t nh = 0;
	char signature[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	char ts[24];
	char *standard = NULL;
	size_t standard_size = 0;

	memset(at, 0, sizeof(*at));
	at->started_us = flaghook__now_us();
	h[nh++] = (flaghook_header){ "Content-Type", "application/json" };
	h[nh++] = (flaghook_header){ "User-Agent", c->user_agent };
	/* The receiver's key for dropping duplicates: the same for every
	 * endpoint, retry and restart of this event. */
	h[nh++] = (flaghook_header){ "X-Flaghook-Event-Id", d->event_id };
	int rc = 0;
	if (ep->secret) {
		rc = flaghook_sign(signature, sizeof(signature), ep->secret, ep->secret_len, d->body, d->body_len);
		h[nh++] = (flaghook_header){ "X-Flagsmith-Signature", signature };
	}
	if (!rc && ep->standard_secret_count) {
		/* webhook-timestamp is per attempt; one signature per secret. */
		int64_t now_s = flaghook__now_us() / 1000000;
		snprintf(ts, sizeof(ts), "%lld", (long long)now_s);
		size_t per = flaghook_standard_signature_bytes();
		standard_size = per * ep->standard_secret_count;
		standard = flaghook__malloc(c->allocator, standard_size);
		if (!standard)
			rc = FLAGHOOK_ENOMEM;
		for (size_t i = 0; !rc && i < ep->standard_secret_count; i++) {
			char *p = standard + (i ? strlen(standard) : 0);
			if (i)
				*p++ = ' ';
			rc = flaghook_standard_sign(p, per, ep->standard_secrets[i], d->event_id, now_s,
			                            d->body, d->body_len);
		}
		h[nh++] = (flaghook_header){ "webhook-id", d->event_id };
		h[nh++] = (flaghook_header){ "webhook-timestamp", ts };
		h[nh++] = (flaghook_header){ "webhook-signature", standard };
	}

	flaghook_response resp;
	memset(&resp, 0, sizeof(resp));
	resp.version = FLAGHOOK_RESPONSE_VERSION;
	resp.error = at->error;
	resp.error_size = sizeof(at->error);
	resp.body = response_buf;
	resp.body_size = c->max_response_bytes;
	if (!rc) {
		flaghook_request req = { FLAGHOOK_REQUEST_VERSION, ep->url, h, nh, d->body, d->body_len,
		                         c->connect_timeout_ms, c->timeout_ms,
		                         c->mode == FLAGHOOK_MODE_ASYNC ? flaghook__cancelled : NULL, c };
		rc = c->transport.send(&req, &resp, c->transport.user_data);
		if (rc && !at->error[0])
			snprintf(at->error, sizeof(at->error), "transport failed: %s", flaghook_strerror(rc));
	} else {
		snprintf(at->error, sizeof(at->error), "signing failed: %s", flaghook_strerror(rc));
	}
	flaghook__wipe(signature, sizeof(signature));
	if (standard) {
		flaghook__wipe(standard, standard_size);
		flaghook__free(c->allocator, standard);
	}

	at->rc = rc;
	at->status = rc ? 0 : resp.status;
	at->errclass = rc ? FLAGHOOK_ERRCLASS_OTHER : resp.errclass;
	if (at->status >= 200 && at->status <= 299) {
		at->errclass = FLAGHOOK_ERRCLASS_NONE;
	} else if (at->status) {
		at->errclass = FLAGHOOK_ERRCLASS_HTTP;
		if (!at->error[0])
			snprintf(at->error, sizeof(at->error), "HTTP status %d", (int)at->status);
	} else if (at->errclass == FLAGHOOK_ERRCLASS_NONE) {
		at->errclass = FLAGHOOK_ERRCLASS_OTHER; /* no status and no class: still a failure */
	}
	memcpy(at->retry_after, resp.retry_after, sizeof(at->retry_after));
	at->retry_after[sizeof(at->retry_after) - 1] = '\0';
	at->response = response_buf;
	at->response_len = resp.body_len < resp.body_size ? resp.body_len : resp.body_size;
	at->finished_us = flaghook__now_us();
}

int flaghook__storage_put(flaghook_client *c, flaghook_delivery *ds, size_t n)
{
	flaghook__error_clear();
	int rc = c->storage.put(ds, n, c->storage.user_data);
	if (!rc)
		return 0;
	/* The store's own detail says what went wrong (the disk is full, the
	 * server went away); copy it before writing ours over it. */
	char detail[384];
	snprintf(detail, sizeof(detail), "%s", flaghook_last_error());
	if (rc != FLAGHOOK_ENOMEM)
		rc = FLAGHOOK_ESTORAGE;
	return flaghook__error(rc, "the store could not record the event, nothing was sent: %s",
	                       detail[0] ? detail : flaghook_strerror(rc));
}

int flaghook__record(flaghook_client *c, const flaghook_delivery *d, int outcome, const fh_attempt *at,
                     int32_t number, int64_t next_attempt_us)
{
	int64_t now = flaghook__now_us();
	flaghook_attempt a = {
		.version = FLAGHOOK_ATTEMPT_VERSION,
		.delivery_id = d->id,
		.endpoint_id = d->endpoint_id,
		.event_id = d->event_id,
		.number = number,
		.outcome = outcome,
		.status = at->status,
		.errclass = at->errclass,
		.started_us = at->started_us ? at->started_us : now,
		.finished_us = at->finished_us ? at->finished_us : now,
		.next_attempt_us = next_attempt_us,
		.error = at->error,
		.response = at->response,
		.response_len = at->response ? at->response_len : 0,
	};
	return c->storage.record(d, &a, c->storage.user_data);
}

void flaghook__result(flaghook_result *res, const fh_endpoint *ep, const flaghook_delivery *d,
                      int32_t event_type, int outcome, const fh_attempt *at, int64_t elapsed_us)
{
	memset(res, 0, sizeof(*res));
	res->version = FLAGHOOK_RESULT_VERSION;
	res->endpoint_id = ep->id;
	res->event_id = d->event_id;
	res->event_type = event_type;
	res->outcome = outcome;
	res->status = at->status;
	res->errclass = at->errclass;
	res->attempts = d->attempts;
	res->elapsed_us = elapsed_us;
	res->error = at->error;
	res->response = at->response ? at->response : "";
	res->response_len = at->response ? at->response_len : 0;
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

static int emit_sync(flaghook_client *c, fh_endpoint **eps, size_t n, fh_body **bodies,
                     flaghook_delivery *ds, int64_t start)
{
	int rc = flaghook__storage_put(c, ds, n);
	if (rc)
		return rc;
	char *response = flaghook__malloc(c->allocator, c->max_response_bytes);
	if (!response)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	int failed = 0, unrecorded = 0;
	char why[320] = ""; /* the first failure, said in the error */
	for (size_t i = 0; i < n; i++) {
		fh_attempt at;
		flaghook__attempt(c, eps[i], &ds[i], &at, response);
		ds[i].attempts++;
		/* Synchronous delivery tries once; the engine is what retries. */
		int outcome = at.status >= 200 && at.status <= 299 ? FLAGHOOK_OUTCOME_DELIVERED
		                                                     : FLAGHOOK_OUTCOME_GAVE_UP;
		unrecorded += flaghook__record(c, &ds[i], outcome, &at, ds[i].attempts, 0) != 0;
		if (outcome != FLAGHOOK_OUTCOME_DELIVERED && !failed++)
			snprintf(why, sizeof(why), "endpoint %llu: %s: %s", (unsigned long long)eps[i]->id,
			         flaghook_errclass_name(at.errclass), at.error[0] ? at.error : "failed");
		pthread_mutex_lock(&c->engine_lock);
		if (outcome == FLAGHOOK_OUTCOME_DELIVERED) {
			eps[i]->delivered++;
			eps[i]->consecutive_failures = 0;
		} else {
			eps[i]->gave_up++;
			eps[i]->consecutive_failures++;
		}
		pthread_mutex_unlock(&c->engine_lock);
		if (c->on_attempt || c->on_result) {
			flaghook_result res;
			flaghook__result(&res, eps[i], &ds[i], bodies[i]->event_type, outcome, &at,
			                 flaghook__mono_us() - start);
			if (c->on_attempt)
				c->on_attempt(&res, c->user_data);
			if (c->on_result)
				c->on_result(&res, c->user_data);
		}
	}
	flaghook__free(c->allocator, response);
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
