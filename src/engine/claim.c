/* Claiming from the store: see claim.h. */
#include "engine/claim.h"
#include "client/registry.h"
#include "engine/finish.h"
#include "engine/timers.h"

#include <stdio.h>
#include <string.h>

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
	j->due = d->next_attempt_us > x->now_wall ? flaghook__sat_add(x->now_clock, d->next_attempt_us - x->now_wall) : 0;
	x->jobs[x->n++] = j;
	return 0;
}

/* Asks the store for deliveries nobody holds and admits them.  One poll
 * runs at a time; a request that comes during one makes it go again. */
void flaghook__claim_poll(flaghook_client *c, fh_job_list *out)
{
	if (!c->storage.claim || c->mode != FLAGHOOK_MODE_ASYNC)
		return;
	pthread_mutex_lock(&c->engine_lock);
	c->poll_queued = false;
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
		c->next_poll = flaghook__sat_add(flaghook__clock(c), flaghook__ms_to_us(c->poll_interval_ms));
		size_t room = c->pending < c->max_pending ? c->max_pending - c->pending : 0;
		if (room > CLAIM_BATCH)
			room = CLAIM_BATCH;
		if (!room)
			c->poll_blocked = true; /* a finishing delivery asks again */
		if (!room || c->closing)
			break;
		/* Not reserved: an emit meanwhile must not find the queue full
		 * because of a poll.  Emits and a claim together may pass
		 * max_pending by at most one batch. */
		pthread_mutex_unlock(&c->engine_lock);

		claim_ctx x = { c, NULL, 0, 0, flaghook__now_us(), flaghook__clock(c) };
		int rc = c->storage.claim(x.now_wall, flaghook__ms_to_us(c->poll_interval_ms), room, take_claimed, &x,
		                          c->storage.user_data);
		if (rc) {
			/* The store rolled the claim back: nothing is held. */
			char detail[384];
			snprintf(detail, sizeof(detail), "%s", flaghook_last_error());
			flaghook__client_fail(c, flaghook__error(rc, "the store could not hand out deliveries: %s",
			                                          detail[0] ? detail : flaghook_strerror(rc)));
			for (size_t i = 0; i < x.n; i++)
				flaghook__job_free(c, x.jobs[i]);
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
			flaghook__admit(c, x.jobs, x.n, out);
		}
		flaghook__free(c->allocator, x.jobs);
		pthread_mutex_lock(&c->engine_lock);
		/* A full batch may mean more is waiting. */
		if (rc || (!c->poll_soon && x.n < room))
			break;
	}
	c->polling = false;
	flaghook__timers_arm(c);
	flaghook__progress(c); /* engine_stop and poll_now wait for it */
	pthread_mutex_unlock(&c->engine_lock);
}

bool flaghook__claim_due(flaghook_client *c)
{
	/* Only a durable store gains deliveries behind the client's back (an
	 * earlier run, another process); others are asked when told to. */
	return c->storage.claim && c->mode == FLAGHOOK_MODE_ASYNC && !c->polling && !c->poll_queued &&
	       !c->closing && (c->poll_soon || (c->durable && flaghook__clock(c) >= c->next_poll));
}
