/* One attempt: see attempt.h. */
#include "engine/attempt.h"
#include "net/resolve.h"
#include "engine/notify.h"

#include <stdio.h>
#include <string.h>

/* How long a name's vetted addresses are used before it is looked up
 * again.  The transfer goes only to addresses vetted, whatever the
 * resolver says meanwhile. */
#define DNS_TTL_US (30LL * 1000 * 1000)
/* How long a name that did not resolve is not asked again: the attempts
 * queued behind it end at once as DNS failures (which the policy may
 * retry) instead of each waiting for a slow resolver in turn. */
#define DNS_FAIL_TTL_US (5LL * 1000 * 1000)

/* Blocks kept for reuse, at most this many. */
#define CACHE_MAX 256

fh_attempt *flaghook__attempt_new(flaghook_client *c)
{
	pthread_mutex_lock(&c->cache_lock);
	fh_attempt *at = c->attempt_cache;
	if (at) {
		c->attempt_cache = at->next_free;
		c->attempt_cached--;
	}
	pthread_mutex_unlock(&c->cache_lock);
	if (!at) {
		/* One block: the attempt and the reply excerpt after it. */
		at = flaghook__malloc(c->allocator, sizeof(fh_attempt) + c->max_response_bytes);
		if (!at)
			return NULL;
	}
	memset(at, 0, sizeof(*at));
	at->response = (char *)(at + 1);
	return at;
}

void flaghook__attempt_spare(fh_attempt *at)
{
	memset(at, 0, sizeof(*at)); /* no reply buffer: not attempt_new's */
	at->rc = FLAGHOOK_ENOMEM;
	at->errclass = FLAGHOOK_ERRCLASS_OTHER;
	snprintf(at->error, sizeof(at->error), "out of memory for the attempt");
	at->started_us = at->finished_us = flaghook__now_us();
}

void flaghook__attempt_free(flaghook_client *c, fh_attempt *at)
{
	if (!at)
		return;
	flaghook__wipe(at->signature, sizeof(at->signature));
	if (at->standard) {
		flaghook__wipe(at->standard, at->standard_size);
		flaghook__free(c->allocator, at->standard);
		at->standard = NULL;
	}
	if (!at->response)
		return; /* a spare, on its caller's stack */
	pthread_mutex_lock(&c->cache_lock);
	if (c->attempt_cached < CACHE_MAX) {
		at->next_free = c->attempt_cache;
		c->attempt_cache = at;
		c->attempt_cached++;
		at = NULL;
	}
	pthread_mutex_unlock(&c->cache_lock);
	flaghook__free(c->allocator, at);
}

void flaghook__attempt_cache_free(flaghook_client *c)
{
	while (c->attempt_cache) {
		fh_attempt *at = c->attempt_cache;
		c->attempt_cache = at->next_free;
		flaghook__free(c->allocator, at);
	}
	c->attempt_cached = 0;
}

static int cancelled(void *client)
{
	return atomic_load(&((flaghook_client *)client)->aborting);
}

/* Ends an attempt before it ran, the way `rc` (the thread's detail) says. */
static int over(fh_attempt *at, int rc, int32_t errclass, const char *what)
{
	at->rc = rc;
	at->status = 0;
	at->errclass = errclass;
	snprintf(at->error, sizeof(at->error), "%s%s", what, flaghook_last_error());
	at->finished_us = flaghook__now_us();
	return rc ? rc : FLAGHOOK_ETRANSPORT;
}

/* ---- the name lookup ---- */

#define DNS_RESOLVING (-1) /* ep->dns_until: a lookup is under way */

static bool answered(const fh_dns *a)
{
	return a->addrs.count || a->failed;
}

/* 0, or the failed lookup's code with its detail as the thread's error. */
static int answer_rc(const fh_dns *a)
{
	return a->failed ? flaghook__error(a->failed, "%s", a->why) : 0;
}

/* Asks the resolver and vets what it says: blocking, so no lock held. */
static void lookup(flaghook_client *c, fh_endpoint *ep, fh_dns *out)
{
	memset(out, 0, sizeof(*out));
	int rc = flaghook__resolve_vet(&c->guard, &ep->parsed, &out->addrs);
	if (!rc)
		return;
	out->addrs.count = 0;
	out->failed = rc == FLAGHOOK_EREFUSED ? rc : FLAGHOOK_ETRANSPORT;
	snprintf(out->why, sizeof(out->why), "%s", flaghook_last_error());
}

/* ep->dns_lock held from here on. */
static bool cache_fresh(const fh_endpoint *ep)
{
	return ep->dns_until > flaghook__mono_us() && answered(&ep->dns);
}

static void cache_store(fh_endpoint *ep, const fh_dns *a)
{
	ep->dns = *a;
	ep->dns_until = flaghook__mono_us() + (a->failed == FLAGHOOK_ETRANSPORT ? DNS_FAIL_TTL_US : DNS_TTL_US);
}

/* The addresses a name's transfer may go to, when nobody looked them up
 * for this attempt (SYNC): vetted within the TTL, or now, on this thread. */
static int vetted_addresses(flaghook_client *c, fh_endpoint *ep, fh_dns *out)
{
	pthread_mutex_lock(&ep->dns_lock);
	bool fresh = cache_fresh(ep);
	if (fresh)
		*out = ep->dns;
	pthread_mutex_unlock(&ep->dns_lock);
	if (!fresh) {
		lookup(c, ep, out);
		pthread_mutex_lock(&ep->dns_lock);
		if (ep->dns_until != DNS_RESOLVING) /* else that lookup books its own */
			cache_store(ep, out);
		pthread_mutex_unlock(&ep->dns_lock);
	}
	return answer_rc(out);
}

int flaghook__attempt_dns(flaghook_client *c, fh_job *j)
{
	fh_endpoint *ep = j->ep;
	bool is_name = false;
	if (!c->guard.on || !c->own_transport || flaghook__guard_host(&c->guard, &ep->parsed, &is_name) || !is_name)
		return FH_DNS_READY; /* prepare judges the host as it is */
	int r = FH_DNS_READY;
	pthread_mutex_lock(&ep->dns_lock);
	if (cache_fresh(ep)) {
		j->at->dns = ep->dns;
	} else if (ep->dns_until == DNS_RESOLVING) {
		j->next = NULL;
		if (ep->dns_wait_tail)
			ep->dns_wait_tail->next = j;
		else
			ep->dns_wait_head = j;
		ep->dns_wait_tail = j;
		r = FH_DNS_WAIT;
	} else {
		ep->dns_until = DNS_RESOLVING;
		r = FH_DNS_LOOKUP;
	}
	pthread_mutex_unlock(&ep->dns_lock);
	return r;
}

fh_job *flaghook__attempt_lookup(flaghook_client *c, fh_job *j)
{
	fh_endpoint *ep = j->ep;
	fh_dns *got = &j->at->dns;
	lookup(c, ep, got);
	pthread_mutex_lock(&ep->dns_lock);
	fh_job *waiting = ep->dns_wait_head;
	ep->dns_wait_head = ep->dns_wait_tail = NULL;
	cache_store(ep, got);
	pthread_mutex_unlock(&ep->dns_lock);
	/* Those that waited take this answer, however long ago they came. */
	for (fh_job *x = waiting; x; x = x->next)
		x->at->dns = *got;
	j->next = waiting;
	return j;
}

static int sign(flaghook_client *c, const fh_endpoint *ep, const flaghook_delivery *d, fh_attempt *at,
                size_t *nh)
{
	int rc = 0;
	if (ep->secret) {
		rc = flaghook_sign(at->signature, sizeof(at->signature), ep->secret, ep->secret_len, d->body,
		                   d->body_len);
		at->h[(*nh)++] = (flaghook_header){ "X-Flagsmith-Signature", at->signature };
	}
	if (!rc && ep->standard_secret_count) {
		/* webhook-timestamp is per attempt; one signature per secret. */
		int64_t now_s = flaghook__now_us() / 1000000;
		snprintf(at->ts, sizeof(at->ts), "%lld", (long long)now_s);
		size_t per = flaghook_standard_signature_bytes();
		at->standard_size = per * ep->standard_secret_count;
		at->standard = flaghook__malloc(c->allocator, at->standard_size);
		if (!at->standard)
			return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
		size_t used = 0;
		for (size_t i = 0; !rc && i < ep->standard_secret_count; i++) {
			char *p = at->standard + used;
			if (i)
				*p++ = ' ';
			rc = flaghook_standard_sign(p, per, ep->standard_secrets[i], d->event_id, now_s, d->body,
			                            d->body_len);
			used = (size_t)(p - at->standard) + strlen(p);
		}
		at->h[(*nh)++] = (flaghook_header){ "webhook-id", d->event_id };
		at->h[(*nh)++] = (flaghook_header){ "webhook-timestamp", at->ts };
		at->h[(*nh)++] = (flaghook_header){ "webhook-signature", at->standard };
	}
	return rc;
}

int flaghook__attempt_prepare(flaghook_client *c, fh_endpoint *ep, const flaghook_delivery *d, fh_attempt *at,
                              bool cancellable)
{
	at->started_us = flaghook__now_us();
	size_t nh = 0;
	at->h[nh++] = (flaghook_header){ "Content-Type", "application/json" };
	at->h[nh++] = (flaghook_header){ "User-Agent", c->user_agent };
	/* The receiver's key for dropping duplicates: the same for every
	 * endpoint, retry and restart of this event. */
	at->h[nh++] = (flaghook_header){ "X-Flaghook-Event-Id", d->event_id };
	int rc = sign(c, ep, d, at, &nh);
	if (rc) {
		char what[64];
		snprintf(what, sizeof(what), "signing failed: %s: ", flaghook_strerror(rc));
		return over(at, rc, FLAGHOOK_ERRCLASS_OTHER, what);
	}
	size_t naddr = 0;
	bool is_name = false;
	if (c->guard.on && c->own_transport) {
		/* The URL's host was judged when the endpoint was added; a name is
		 * judged by what it resolves to now.  (A transport of the caller's
		 * connects its own way: it vets what it connects to.) */
		rc = flaghook__guard_host(&c->guard, &ep->parsed, &is_name);
		if (!rc && is_name)
			rc = answered(&at->dns) ? answer_rc(&at->dns) : vetted_addresses(c, ep, &at->dns);
		if (rc == FLAGHOOK_EREFUSED)
			return over(at, 0, FLAGHOOK_ERRCLASS_REFUSED, "refused: ");
		if (rc)
			return over(at, 0, FLAGHOOK_ERRCLASS_DNS, "");
		naddr = is_name ? at->dns.addrs.count : 0;
		for (size_t i = 0; i < naddr; i++)
			at->addr_ptr[i] = at->dns.addrs.text[i];
	}
	memset(&at->resp, 0, sizeof(at->resp));
	at->resp.version = FLAGHOOK_RESPONSE_VERSION;
	at->resp.error = at->error;
	at->resp.error_size = sizeof(at->error);
	at->resp.body = at->response;
	at->resp.body_size = c->max_response_bytes;
	at->req = (flaghook_request){
		.version = FLAGHOOK_REQUEST_VERSION,
		.url = ep->url,
		.headers = at->h,
		.header_count = nh,
		.body = d->body,
		.body_len = d->body_len,
		.connect_timeout_ms = c->connect_timeout_ms,
		.timeout_ms = c->timeout_ms,
		.cancelled = cancellable ? cancelled : NULL,
		.cancel_ctx = c,
		.addresses = naddr ? at->addr_ptr : NULL,
		.address_count = naddr,
		.port = ep->parsed.port,
		.tls_min_version = c->tls_min_version,
		.ca_file = ep->ca_file ? ep->ca_file : c->ca_file,
		.ca_path = ep->ca_path ? ep->ca_path : c->ca_path,
		.client_cert = ep->client_cert,
		.client_key = ep->client_key,
		.client_key_password = ep->client_key_password,
		.proxy = c->proxy,
	};
	return 0;
}

bool flaghook__attempt_run(flaghook_client *c, fh_attempt *at, void (*done)(void *ctx), void *ctx)
{
	int rc;
	at->ran = true;
	if (c->transport.start) {
		rc = c->transport.start(&at->req, &at->resp, done, ctx, c->transport.user_data);
		if (!rc)
			return false;
	} else {
		rc = c->transport.send(&at->req, &at->resp, c->transport.user_data);
	}
	at->rc = rc;
	if (rc && !at->error[0])
		snprintf(at->error, sizeof(at->error), "transport failed: %s", flaghook_strerror(rc));
	return true;
}

void flaghook__attempt_conclude(fh_attempt *at)
{
	if (!at->ran)
		return; /* over before it ran: prepare said how */
	int rc = at->rc;
	at->status = rc ? 0 : at->resp.status;
	at->errclass = rc ? FLAGHOOK_ERRCLASS_OTHER : at->resp.errclass;
	if (at->status >= 200 && at->status <= 299) {
		at->errclass = FLAGHOOK_ERRCLASS_NONE;
	} else if (at->status) {
		at->errclass = FLAGHOOK_ERRCLASS_HTTP;
		if (!at->error[0])
			snprintf(at->error, sizeof(at->error), "HTTP status %d", (int)at->status);
	} else if (at->errclass == FLAGHOOK_ERRCLASS_NONE) {
		at->errclass = FLAGHOOK_ERRCLASS_OTHER; /* no status and no class: still a failure */
	}
	at->error[sizeof(at->error) - 1] = '\0';
	memcpy(at->retry_after, at->resp.retry_after, sizeof(at->retry_after));
	at->retry_after[sizeof(at->retry_after) - 1] = '\0';
	at->response_len = at->resp.body_len < at->resp.body_size ? at->resp.body_len : at->resp.body_size;
	at->finished_us = flaghook__now_us();
	flaghook__wipe(at->signature, sizeof(at->signature));
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
	flaghook__error_clear();
	int rc = c->storage.record(d, &a, c->storage.user_data);
	if (rc && rc != FLAGHOOK_ESTATE)
		flaghook__log(c, FLAGHOOK_LOG_ERROR, "endpoint %llu: the store could not record attempt %d of event %s: "
		              "%s: %s", (unsigned long long)d->endpoint_id, (int)number, d->event_id,
		              flaghook_strerror(rc), flaghook_last_error());
	return rc;
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
