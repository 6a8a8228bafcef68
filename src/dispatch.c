/*
 * flaghook_emit: validate and render once per body shape, route, record each
 * delivery, then attempt each one: sign, send, classify, record, report.
 * The one place an attempt's outcome is decided.
 */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define EVENT_ID_BYTES 37 /* UUID text + NUL */
#define MAX_HEADERS 8

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

/* The body for one endpoint's shape: rendered once, shared by every
 * endpoint with the same profile and flags. */
typedef struct body {
	int32_t profile;
	uint32_t flags;
	flaghook_buf buf;
} body;

static const flaghook_buf *body_for(body *bodies, size_t n, const fh_endpoint *ep)
{
	for (size_t i = 0; i < n; i++)
		if (bodies[i].profile == ep->profile && bodies[i].flags == ep->render_flags)
			return &bodies[i].buf;
	return NULL;
}

typedef struct attempt_ctx {
	flaghook_client *c;
	const char *event_id;
	int32_t event_type;
	int64_t start_us;
	char *response_body;
} attempt_ctx;

/* One POST to one endpoint.  Returns the outcome; fills *res. */
static int attempt(attempt_ctx *a, const fh_endpoint *ep, flaghook_delivery *d, flaghook_result *res,
                   char *err, size_t err_size)
{
	flaghook_client *c = a->c;
	flaghook_header h[MAX_HEADERS];
	size_t nh = 0;
	char signature[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	char ts[24];
	char *standard = NULL;

	h[nh++] = (flaghook_header){ "Content-Type", "application/json" };
	h[nh++] = (flaghook_header){ "User-Agent", c->user_agent };
	err[0] = '\0';
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
		standard = flaghook__malloc(c->allocator, per * ep->standard_secret_count);
		if (!standard)
			rc = FLAGHOOK_ENOMEM;
		for (size_t i = 0; !rc && i < ep->standard_secret_count; i++) {
			char *at = standard + (i ? strlen(standard) : 0);
			if (i)
				*at++ = ' ';
			rc = flaghook_standard_sign(at, per, ep->standard_secrets[i], a->event_id,
			                            now_s, d->body, d->body_len);
		}
		h[nh++] = (flaghook_header){ "webhook-id", a->event_id };
		h[nh++] = (flaghook_header){ "webhook-timestamp", ts };
		h[nh++] = (flaghook_header){ "webhook-signature", standard };
	}

	flaghook_response resp;
	memset(&resp, 0, sizeof(resp));
	resp.version = FLAGHOOK_RESPONSE_VERSION;
	resp.error = err;
	resp.error_size = err_size;
	resp.body = a->response_body;
	resp.body_size = c->max_response_bytes;
	if (!rc) {
		flaghook_request req = { FLAGHOOK_REQUEST_VERSION, ep->url, h, nh, d->body, d->body_len,
		                         c->connect_timeout_ms, c->timeout_ms };
		rc = c->transport.send(&req, &resp, c->transport.user_data);
		if (rc && !err[0])
			snprintf(err, err_size, "transport failed: %s", flaghook_strerror(rc));
	} else {
		snprintf(err, err_size, "signing failed: %s", flaghook_strerror(rc));
	}
	flaghook__wipe(signature, sizeof(signature));
	if (standard) {
		flaghook__wipe(standard, flaghook_standard_signature_bytes() * ep->standard_secret_count);
		flaghook__free(c->allocator, standard);
	}

	d->attempts++;
	int outcome;
	if (rc) {
		outcome = FLAGHOOK_OUTCOME_GAVE_UP;
		resp.errclass = FLAGHOOK_ERRCLASS_OTHER;
	} else if (resp.status >= 200 && resp.status < 300) {
		outcome = FLAGHOOK_OUTCOME_DELIVERED;
		resp.errclass = FLAGHOOK_ERRCLASS_NONE;
	} else {
		/* Synchronous delivery tries once; the asynchronous engine retries. */
		outcome = FLAGHOOK_OUTCOME_GAVE_UP;
		if (resp.status) {
			resp.errclass = FLAGHOOK_ERRCLASS_HTTP;
			if (!err[0])
				snprintf(err, err_size, "HTTP status %d", (int)resp.status);
		} else if (resp.errclass == FLAGHOOK_ERRCLASS_NONE) {
			resp.errclass = FLAGHOOK_ERRCLASS_OTHER;
		}
	}
	memset(res, 0, sizeof(*res));
	res->version = FLAGHOOK_RESULT_VERSION;
	res->endpoint_id = ep->id;
	res->event_id = a->event_id;
	res->event_type = a->event_type;
	res->outcome = outcome;
	res->status = resp.status;
	res->errclass = resp.errclass;
	res->attempts = d->attempts;
	res->elapsed_us = flaghook__mono_us() - a->start_us;
	res->error = err;
	res->response = a->response_body;
	res->response_len = resp.body_len < resp.body_size ? resp.body_len : resp.body_size;
	return outcome;
}

int flaghook_emit(flaghook_client *c, const flaghook_event *ev)
{
	flaghook__error_clear();
	if (!c)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	int64_t start = flaghook__mono_us();
	body *bodies = NULL;
	size_t nbodies = 0;
	fh_endpoint **eps = NULL;
	size_t neps = 0;
	flaghook_delivery *ds = NULL;
	char *response = NULL;
	int rc = 0;

	/* Validate first: a bad event is an error even when no one listens. */
	flaghook_buf probe = FLAGHOOK_BUF_INIT;
	probe.allocator = c->allocator;
	int64_t env_id = 0, org_id = 0;
	if ((rc = flaghook__render(&probe, ev, FLAGHOOK_PROFILE_FLAGSMITH, 0, c->max_body_bytes)))
		goto out;
	flaghook__event_scope(ev, &env_id, &org_id);
	if ((rc = flaghook__route(c, ev->type, env_id, org_id, &eps, &neps)) || neps == 0)
		goto out;

	/* One body per distinct shape among the endpoints. */
	bodies = flaghook__calloc(c->allocator, neps, sizeof(*bodies));
	ds = flaghook__calloc(c->allocator, neps, sizeof(*ds));
	response = flaghook__malloc(c->allocator, c->max_response_bytes);
	if (!bodies || !ds || !response) {
		rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
		goto out;
	}
	bodies[nbodies].profile = FLAGHOOK_PROFILE_FLAGSMITH;
	bodies[nbodies++].buf = probe;
	probe = (flaghook_buf)FLAGHOOK_BUF_INIT;
	for (size_t i = 0; i < neps; i++) {
		if (body_for(bodies, nbodies, eps[i]))
			continue;
		body *b = &bodies[nbodies++];
		b->profile = eps[i]->profile;
		b->flags = eps[i]->render_flags;
		b->buf.allocator = c->allocator;
		if ((rc = flaghook__render(&b->buf, ev, b->profile, b->flags, c->max_body_bytes)))
			goto out;
	}

	char event_id[EVENT_ID_BYTES];
	if ((rc = new_event_id(event_id)))
		goto out;
	int64_t now = flaghook__now_us();
	for (size_t i = 0; i < neps; i++) {
		const flaghook_buf *b = body_for(bodies, nbodies, eps[i]);
		ds[i] = (flaghook_delivery){ FLAGHOOK_DELIVERY_VERSION, atomic_fetch_add(&c->next_delivery_id, 1), event_id, ev->type,
		                             eps[i]->id, b->ptr, b->size, 0, now, now };
	}
	/* The outbox holds every delivery before the first attempt. */
	if ((rc = c->storage.put(ds, neps, c->storage.user_data))) {
		rc = flaghook__error(rc == FLAGHOOK_ENOMEM ? FLAGHOOK_ENOMEM : FLAGHOOK_ESTORAGE,
		                     "storage put failed, nothing sent: %s", flaghook_strerror(rc));
		goto out;
	}

	attempt_ctx a = { c, event_id, ev->type, start, response };
	int failed = 0, unrecorded = 0;
	for (size_t i = 0; i < neps; i++) {
		flaghook_result res;
		char err[256];
		int outcome = attempt(&a, eps[i], &ds[i], &res, err, sizeof(err));
		unrecorded += c->storage.record(&ds[i], outcome, res.status, res.errclass, c->storage.user_data) != 0;
		if (outcome != FLAGHOOK_OUTCOME_DELIVERED)
			failed++;
		if (c->on_result)
			c->on_result(&res, c->user_data);
	}
	/* Every outcome reached on_result; the return value says what the
	 * caller most needs to act on. */
	if (failed)
		rc = flaghook__error(FLAGHOOK_EDELIVERY, "%d of %zu endpoints did not take event %s",
		                     failed, neps, event_id);
	else if (unrecorded)
		rc = flaghook__error(FLAGHOOK_ESTORAGE, "storage could not record %d outcomes of event %s",
		                     unrecorded, event_id);
out:
	flaghook_buf_free(&probe);
	for (size_t i = 0; i < nbodies; i++)
		flaghook_buf_free(&bodies[i].buf);
	flaghook__free(c->allocator, bodies);
	flaghook__free(c->allocator, ds);
	flaghook__free(c->allocator, response);
	for (size_t i = 0; i < neps; i++)
		flaghook__endpoint_release(c, eps[i]);
	flaghook__free(c->allocator, eps);
	return flaghook__client_fail(c, rc);
}
