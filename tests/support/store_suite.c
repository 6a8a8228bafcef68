/*
 * The store conformance suite (store_suite.h): every case of
 * notes/store-contract.md that can be observed through flaghook_storage
 * alone.  It knows nothing of any store's insides.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store_suite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC 1000000LL

typedef struct fx {
	const store_suite_target *t;
	flaghook_storage s;
} fx;

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

static int setup(void **state)
{
	const store_suite_target *t = *state;
	fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->t = t;
	flaghook_storage init = FLAGHOOK_STORAGE_INIT;
	f->s = init;
	int rc = t->open(&f->s, t->ctx);
	if (rc) {
		fprintf(stderr, "%s: open failed: %s (%s)\n", t->name, flaghook_strerror(rc),
		        flaghook_last_error());
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	if (f->s.destroy)
		f->s.destroy(f->s.user_data);
	free(f);
	return 0;
}

/* ---- building and booking deliveries ---------------------------------- */

static const char body_a[] = "{\"data\": {\"x\": 1}, \"event_type\": \"FLAG_UPDATED\"}";

static void make(flaghook_delivery *d, uint64_t endpoint, int fifo, int64_t next_us)
{
	memset(d, 0, sizeof(*d));
	d->version = FLAGHOOK_DELIVERY_VERSION;
	d->event_id = "3f1e6a4c-0d55-4f6b-9a8e-5b2f4c1d9e70";
	d->event_type = FLAGHOOK_EVENT_FLAG_UPDATED;
	d->endpoint_id = endpoint;
	d->body = body_a;
	d->body_len = sizeof(body_a) - 1;
	d->created_us = wall_us();
	d->next_attempt_us = next_us;
	d->fifo = fifo;
}

/* Puts one delivery; returns its id, and whether the store holds it. */
static uint64_t put1(fx *f, uint64_t endpoint, int fifo, int64_t next_us, int *claimed)
{
	flaghook_delivery d;
	make(&d, endpoint, fifo, next_us);
	assert_int_equal(f->s.put(&d, 1, f->s.user_data), 0);
	assert_true(d.id != 0);
	if (claimed)
		*claimed = d.claimed;
	return d.id;
}

static void attempt_init(flaghook_attempt *a, uint64_t id, int32_t number, int32_t outcome)
{
	memset(a, 0, sizeof(*a));
	a->version = FLAGHOOK_ATTEMPT_VERSION;
	a->delivery_id = id;
	a->number = number;
	a->outcome = outcome;
	a->error = "";
}

static int record(fx *f, uint64_t id, int32_t number, int32_t outcome, int32_t status,
                  int64_t next_us)
{
	flaghook_delivery d;
	make(&d, 0, 0, 0);
	d.id = id;
	flaghook_attempt a;
	attempt_init(&a, id, number, outcome);
	a.status = status;
	a.started_us = wall_us();
	a.finished_us = a.started_us + 1000;
	a.next_attempt_us = next_us;
	return f->s.record(&d, &a, f->s.user_data);
}

/* Hands a held delivery back (RELEASED) so claim may take it; a shared
 * store's FIFO delivery is not held after put (claimed == 0) and needs
 * nothing. */
static void release(fx *f, uint64_t id, int claimed)
{
	if (claimed)
		assert_int_equal(record(f, id, 0, FLAGHOOK_OUTCOME_RELEASED, 0, 0), 0);
}

static uint64_t pending(fx *f)
{
	uint64_t n = 12345;
	assert_int_equal(f->s.pending(&n, f->s.user_data), 0);
	return n;
}

/* ---- claim ---------------------------------------------------------------- */

#define MAXSEEN 512

typedef struct seen_delivery {
	flaghook_delivery d;
	char event_id[64];
	unsigned char body[512];
} seen_delivery;

typedef struct claim_log {
	const int *script;          /* take()'s answers in turn; past the end (or NULL): 0 */
	size_t script_len;
	size_t calls;
	size_t taken;
	uint64_t taken_ids[MAXSEEN];
	seen_delivery seen[16];     /* the first deliveries offered, copied */
} claim_log;

static void copy_delivery(seen_delivery *out, const flaghook_delivery *d)
{
	out->d = *d;
	snprintf(out->event_id, sizeof(out->event_id), "%s", d->event_id ? d->event_id : "(null)");
	size_t n = d->body_len < sizeof(out->body) ? d->body_len : sizeof(out->body);
	if (n)
		memcpy(out->body, d->body, n);
	out->d.event_id = out->event_id;
	out->d.body = out->body;
}

static int take_cb(const flaghook_delivery *d, void *arg)
{
	claim_log *c = arg;
	if (c->calls < sizeof(c->seen) / sizeof(c->seen[0]))
		copy_delivery(&c->seen[c->calls], d);
	int verdict = c->script && c->calls < c->script_len ? c->script[c->calls] : 0;
	c->calls++;
	if (verdict == 0 && c->taken < MAXSEEN)
		c->taken_ids[c->taken++] = d->id;
	return verdict;
}

static void claim(fx *f, int64_t now, int64_t horizon, size_t max, claim_log *c)
{
	assert_int_equal(f->s.claim(now, horizon, max, take_cb, c, f->s.user_data), 0);
}

/* Claims everything due now and returns how many were taken; *ids gets them. */
static size_t claim_all(fx *f, int64_t horizon, uint64_t *ids, size_t cap)
{
	claim_log *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	claim(f, wall_us(), horizon, 1000, c);
	size_t n = c->taken;
	for (size_t i = 0; i < n && i < cap; i++)
		ids[i] = c->taken_ids[i];
	free(c);
	return n;
}

/* ---- list and attempts ------------------------------------------------------ */

typedef struct list_log {
	size_t calls;
	size_t stop_after;          /* 0: never stop */
	seen_delivery rows[32];
} list_log;

static int list_cb(const flaghook_delivery *d, void *arg)
{
	list_log *l = arg;
	if (l->calls < sizeof(l->rows) / sizeof(l->rows[0]))
		copy_delivery(&l->rows[l->calls], d);
	l->calls++;
	return l->stop_after && l->calls >= l->stop_after;
}

static list_log *list(fx *f, const flaghook_query *q)
{
	list_log *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	assert_int_equal(f->s.list(q, list_cb, l, f->s.user_data), 0);
	return l;
}

/* What list() returns for q as row numbers, "1,2,5": the position of each
 * id in ids[5] plus one, so expectations read as rows. */
static const char *list_rows_mapped(fx *f, const flaghook_query *q, const uint64_t ids[5],
                                    char *buf, size_t size)
{
	list_log *l = list(f, q);
	buf[0] = '\0';
	for (size_t i = 0; i < l->calls && i < 32; i++) {
		int row = 0;
		for (int k = 0; k < 5; k++)
			if (ids[k] == l->rows[i].d.id)
				row = k + 1;
		size_t len = strlen(buf);
		snprintf(buf + len, size - len, "%s%d", i ? "," : "", row);
	}
	free(l);
	return buf;
}

static seen_delivery find_one(fx *f, uint64_t id)
{
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.delivery_id = id;
	list_log *l = list(f, &q);
	assert_int_equal(l->calls, 1);
	seen_delivery out = l->rows[0];
	out.d.event_id = NULL; /* the copies' pointers point into l */
	out.d.body = NULL;
	free(l);
	return out;
}

typedef struct seen_attempt {
	flaghook_attempt a;
	char event_id[64];
	char error[128];
	unsigned char response[2048];
} seen_attempt;

typedef struct attempts_log {
	size_t calls;
	size_t stop_after;
	seen_attempt rows[40];
} attempts_log;

static int attempts_cb(const flaghook_attempt *a, void *arg)
{
	attempts_log *l = arg;
	if (l->calls < sizeof(l->rows) / sizeof(l->rows[0])) {
		seen_attempt *s = &l->rows[l->calls];
		s->a = *a;
		snprintf(s->event_id, sizeof(s->event_id), "%s", a->event_id ? a->event_id : "(null)");
		snprintf(s->error, sizeof(s->error), "%s", a->error ? a->error : "(null)");
		size_t n = a->response_len < sizeof(s->response) ? a->response_len : sizeof(s->response);
		if (n)
			memcpy(s->response, a->response, n);
		s->a.event_id = NULL;
		s->a.error = NULL;
		s->a.response = NULL;
	}
	l->calls++;
	return l->stop_after && l->calls >= l->stop_after;
}

static attempts_log *attempts(fx *f, const flaghook_query *q)
{
	attempts_log *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	assert_int_equal(f->s.attempts(q, attempts_cb, l, f->s.user_data), 0);
	return l;
}

#define NEED(op) do { if (!f->s.op) { skip(); return; } } while (0)

/* ------------------------------------------------------------------------ */
/* put                                                                      */

static void test_put_ids_and_claimed(void **state)
{
	fx *f = *state;
	NEED(list);
	NEED(pending);
	int64_t now = wall_us();
	flaghook_delivery d[3];
	make(&d[0], 1, 0, now);
	make(&d[1], 2, 1, now + SEC);
	make(&d[2], 3, 0, now + 2 * SEC);
	d[1].attempts = 2;
	d[1].event_type = FLAGHOOK_EVENT_FLAG_DELETED;
	d[1].created_us = 1234567;
	d[2].event_id = "9b0c8a2e-1111-4222-8333-944455556666";
	for (int i = 0; i < 3; i++)
		d[i].claimed = 99;
	assert_int_equal(f->s.put(d, 3, f->s.user_data), 0);
	assert_true(d[0].id != 0);
	assert_true(d[1].id > d[0].id);
	assert_true(d[2].id > d[1].id);
	/* claimed: a private store holds everything it puts; a shared one
	 * leaves FIFO deliveries for claim, which hands out an endpoint's
	 * oldest only, so order holds across processes. */
	assert_int_equal(d[0].claimed, 1);
	assert_int_equal(d[1].claimed, f->t->shared ? 0 : 1);
	assert_int_equal(d[2].claimed, 1);

	uint64_t later = put1(f, 1, 0, now, NULL);
	assert_true(later > d[2].id);
	assert_int_equal(pending(f), 4);

	/* Stored as given. */
	list_log *l = list(f, NULL);
	assert_int_equal(l->calls, 4);
	for (int i = 0; i < 3; i++) {
		const flaghook_delivery *r = &l->rows[i].d;
		assert_int_equal(r->version, FLAGHOOK_DELIVERY_VERSION);
		assert_int_equal(r->id, d[i].id);
		assert_string_equal(r->event_id, d[i].event_id);
		assert_int_equal(r->event_type, d[i].event_type);
		assert_int_equal(r->endpoint_id, d[i].endpoint_id);
		if (f->t->forgets_held_bodies && d[i].claimed) {
			assert_int_equal(r->body_len, 0);
		} else {
			assert_int_equal(r->body_len, d[i].body_len);
			assert_memory_equal(r->body, d[i].body, d[i].body_len);
		}
		assert_int_equal(r->attempts, d[i].attempts);
		assert_int_equal(r->created_us, d[i].created_us);
		assert_int_equal(r->next_attempt_us, d[i].next_attempt_us);
		assert_int_equal(r->fifo != 0, d[i].fifo != 0);
		assert_int_equal(r->state, FLAGHOOK_DELIVERY_PENDING);
		assert_int_equal(r->last_status, 0);
		assert_true(r->updated_us >= now && r->updated_us <= wall_us());
	}
	assert_int_equal(l->rows[3].d.id, later);
	free(l);
}

static void test_put_all_or_none(void **state)
{
	fx *f = *state;
	NEED(list);
	NEED(pending);
	int64_t now = wall_us();
	flaghook_delivery d[3];
	for (int i = 0; i < 3; i++)
		make(&d[i], (uint64_t)i + 1, 0, now);

	d[1].version = 0; /* one bad member: nothing of the three is stored */
	assert_int_equal(f->s.put(d, 3, f->s.user_data), FLAGHOOK_EVERSION);
	assert_true(flaghook_last_error()[0] != '\0');
	d[1].version = FLAGHOOK_DELIVERY_VERSION;
	d[2].event_id = NULL;
	assert_int_equal(f->s.put(d, 3, f->s.user_data), FLAGHOOK_EINVAL);
	d[2].event_id = "3f1e6a4c-0d55-4f6b-9a8e-5b2f4c1d9e70";
	d[0].body = NULL; /* with body_len > 0 */
	assert_int_equal(f->s.put(d, 3, f->s.user_data), FLAGHOOK_EINVAL);
	d[0].body = body_a;
	assert_int_equal(f->s.put(NULL, 1, f->s.user_data), FLAGHOOK_EINVAL);
	assert_int_equal(f->s.put(d, 0, f->s.user_data), 0);
	assert_int_equal(pending(f), 0);
	list_log *l = list(f, NULL);
	assert_int_equal(l->calls, 0);
	free(l);

	/* An empty body is a body. */
	d[0].body = NULL;
	d[0].body_len = 0;
	assert_int_equal(f->s.put(d, 3, f->s.user_data), 0);
	assert_int_equal(pending(f), 3);
	l = list(f, NULL);
	assert_int_equal(l->calls, 3);
	assert_int_equal(l->rows[0].d.body_len, 0);
	if (!f->t->forgets_held_bodies)
		assert_int_equal(l->rows[1].d.body_len, sizeof(body_a) - 1);
	free(l);
}

/* ------------------------------------------------------------------------ */
/* record                                                                   */

static void test_record_retry(void **state)
{
	fx *f = *state;
	NEED(list);
	NEED(claim);
	int64_t now = wall_us();
	uint64_t id = put1(f, 4, 0, now, NULL);
	assert_int_equal(record(f, id, 1, FLAGHOOK_OUTCOME_RETRY, 503, now + 3600 * SEC), 0);
	seen_delivery r = find_one(f, id);
	assert_int_equal(r.d.state, FLAGHOOK_DELIVERY_PENDING);
	assert_int_equal(r.d.attempts, 1);
	assert_int_equal(r.d.next_attempt_us, now + 3600 * SEC);
	assert_int_equal(r.d.last_status, 503);
	assert_true(r.d.updated_us >= now);
	if (f->s.pending)
		assert_int_equal(pending(f), 1);

	/* Held by this store: no claim hands it out, however far ahead. */
	uint64_t ids[4];
	assert_int_equal(claim_all(f, 24 * 3600 * SEC, ids, 4), 0);

	assert_int_equal(record(f, id, 2, FLAGHOOK_OUTCOME_RETRY, 0, now + 7200 * SEC), 0);
	r = find_one(f, id);
	assert_int_equal(r.d.attempts, 2);
	assert_int_equal(r.d.last_status, 0);
	assert_int_equal(r.d.next_attempt_us, now + 7200 * SEC);
	assert_int_equal(claim_all(f, 24 * 3600 * SEC, ids, 4), 0);
}

static void test_record_final_states(void **state)
{
	fx *f = *state;
	NEED(list);
	int64_t now = wall_us();
	uint64_t a = put1(f, 1, 0, now, NULL);
	uint64_t b = put1(f, 1, 0, now, NULL);
	uint64_t c = put1(f, 1, 0, now, NULL);
	assert_int_equal(record(f, a, 1, FLAGHOOK_OUTCOME_DELIVERED, 200, 0), 0);
	assert_int_equal(record(f, b, 3, FLAGHOOK_OUTCOME_GAVE_UP, 500, 0), 0);
	seen_delivery ra = find_one(f, a), rb = find_one(f, b), rc = find_one(f, c);
	assert_int_equal(ra.d.state, FLAGHOOK_DELIVERY_DELIVERED);
	assert_int_equal(ra.d.attempts, 1);
	assert_int_equal(ra.d.last_status, 200);
	assert_int_equal(rb.d.state, FLAGHOOK_DELIVERY_DEAD);
	assert_int_equal(rb.d.attempts, 3);
	assert_int_equal(rb.d.last_status, 500);
	assert_int_equal(rc.d.state, FLAGHOOK_DELIVERY_PENDING);
	if (f->s.pending)
		assert_int_equal(pending(f), 1);
	if (f->s.claim) {
		/* Delivered and dead rows are not pending: never claimed. */
		release(f, c, 1);
		uint64_t ids[4];
		assert_int_equal(claim_all(f, 24 * 3600 * SEC, ids, 4), 1);
		assert_int_equal(ids[0], c);
	}
	/* An id the store never gave out. */
	assert_int_equal(record(f, c + 1000, 1, FLAGHOOK_OUTCOME_DELIVERED, 200, 0),
	                 FLAGHOOK_ENOTFOUND);
	assert_true(flaghook_last_error()[0] != '\0');
}

static void test_released_claimable(void **state)
{
	fx *f = *state;
	NEED(claim);
	NEED(list);
	int64_t now = wall_us();
	unsigned char body[300];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (unsigned char)(i * 7); /* NULs and high bytes: a blob, not a string */
	flaghook_delivery d;
	make(&d, 42, 0, now - SEC);
	d.body = body;
	d.body_len = sizeof(body);
	d.event_type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED;
	d.created_us = now - 10 * SEC;
	assert_int_equal(f->s.put(&d, 1, f->s.user_data), 0);
	assert_int_equal(record(f, d.id, 1, FLAGHOOK_OUTCOME_RETRY, 502, now - 5000), 0);
	/* As the library does: the delivery it releases, whole. */
	flaghook_attempt rel;
	attempt_init(&rel, d.id, 0, FLAGHOOK_OUTCOME_RELEASED);
	assert_int_equal(f->s.record(&d, &rel, f->s.user_data), 0);

	seen_delivery r = find_one(f, d.id);
	assert_int_equal(r.d.state, FLAGHOOK_DELIVERY_PENDING);
	assert_int_equal(r.d.attempts, 1);
	assert_int_equal(r.d.next_attempt_us, now - 5000); /* RELEASED keeps it */
	assert_int_equal(r.d.last_status, 502);            /* no attempt: unchanged */

	claim_log *c = calloc(1, sizeof(*c));
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->taken, 1);
	const flaghook_delivery *g = &c->seen[0].d;
	assert_int_equal(g->version, FLAGHOOK_DELIVERY_VERSION);
	assert_int_equal(g->id, d.id);
	assert_string_equal(g->event_id, d.event_id);
	assert_int_equal(g->event_type, FLAGHOOK_EVENT_AUDIT_LOG_CREATED);
	assert_int_equal(g->endpoint_id, 42);
	assert_int_equal(g->body_len, sizeof(body));
	assert_memory_equal(g->body, body, sizeof(body));
	assert_int_equal(g->attempts, 1);
	assert_int_equal(g->next_attempt_us, now - 5000);
	assert_int_equal(g->created_us, now - 10 * SEC);
	assert_int_equal(g->fifo, 0);
	assert_int_equal(g->state, FLAGHOOK_DELIVERY_PENDING);

	/* Taken: held again, so not handed out twice. */
	memset(c, 0, sizeof(*c));
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->calls, 0);

	/* Released again, and left by take() (1): still nobody's. */
	assert_int_equal(record(f, d.id, 0, FLAGHOOK_OUTCOME_RELEASED, 0, 0), 0);
	static const int leave[] = { 1 };
	memset(c, 0, sizeof(*c));
	c->script = leave;
	c->script_len = 1;
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->taken, 0);
	memset(c, 0, sizeof(*c));
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->taken, 1);

	if (f->s.flags & FLAGHOOK_STORAGE_DURABLE) {
		/* A durable store keeps an ABANDONED delivery as it keeps a released one. */
		assert_int_equal(record(f, d.id, 0, FLAGHOOK_OUTCOME_ABANDONED, 0, 0), 0);
		memset(c, 0, sizeof(*c));
		claim(f, wall_us(), 0, 10, c);
		assert_int_equal(c->taken, 1);
		assert_int_equal(c->seen[0].d.attempts, 1);
		assert_int_equal(c->seen[0].d.next_attempt_us, now - 5000);
	}
	free(c);
}

/* ------------------------------------------------------------------------ */
/* claim                                                                    */

static void test_claim_horizon_and_max(void **state)
{
	fx *f = *state;
	NEED(claim);
	int64_t now = wall_us();
	const int64_t next[5] = { now - 20 * SEC, now - 10 * SEC, now + 10 * SEC, now + 100 * SEC,
	                          now + 1000 * SEC };
	uint64_t id[5];
	for (int i = 0; i < 5; i++) {
		int claimed;
		id[i] = put1(f, (uint64_t)i + 1, 0, next[i], &claimed);
		release(f, id[i], claimed);
	}
	claim_log *c = calloc(1, sizeof(*c));
	claim(f, now, 0, 10, c); /* due by now: the first two, oldest first */
	assert_int_equal(c->taken, 2);
	assert_int_equal(c->taken_ids[0], id[0]);
	assert_int_equal(c->taken_ids[1], id[1]);

	memset(c, 0, sizeof(*c));
	claim(f, now, 50 * SEC, 10, c); /* the horizon reaches the third */
	assert_int_equal(c->taken, 1);
	assert_int_equal(c->taken_ids[0], id[2]);

	memset(c, 0, sizeof(*c));
	claim(f, now, 5000 * SEC, 1, c); /* at most max */
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->taken_ids[0], id[3]);

	memset(c, 0, sizeof(*c));
	claim(f, now, 5000 * SEC, 0, c); /* max 0: nothing */
	assert_int_equal(c->calls, 0);

	memset(c, 0, sizeof(*c));
	claim(f, now, 5000 * SEC, 10, c);
	assert_int_equal(c->taken, 1);
	assert_int_equal(c->taken_ids[0], id[4]);

	memset(c, 0, sizeof(*c));
	claim(f, now, 5000 * SEC, 10, c);
	assert_int_equal(c->calls, 0);
	free(c);
}

static void test_claim_take_verdicts(void **state)
{
	fx *f = *state;
	NEED(claim);
	int64_t now = wall_us();
	uint64_t id[4];
	for (int i = 0; i < 4; i++) {
		int claimed;
		id[i] = put1(f, 9, 0, now - SEC, &claimed);
		release(f, id[i], claimed);
	}
	/* leave, take, stop: take() sees exactly three, only the second is
	 * held, the stop is not an error. */
	static const int script[] = { 1, 0, -1 };
	claim_log *c = calloc(1, sizeof(*c));
	c->script = script;
	c->script_len = 3;
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->calls, 3);
	assert_int_equal(c->seen[0].d.id, id[0]);
	assert_int_equal(c->seen[1].d.id, id[1]);
	assert_int_equal(c->seen[2].d.id, id[2]);
	assert_int_equal(c->taken, 1);

	memset(c, 0, sizeof(*c));
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->taken, 3);
	assert_int_equal(c->taken_ids[0], id[0]);
	assert_int_equal(c->taken_ids[1], id[2]);
	assert_int_equal(c->taken_ids[2], id[3]);

	/* A left delivery does not count against max. */
	release(f, id[0], 1);
	release(f, id[3], 1);
	static const int leave_first[] = { 1 };
	memset(c, 0, sizeof(*c));
	c->script = leave_first;
	c->script_len = 1;
	claim(f, wall_us(), 0, 1, c);
	assert_int_equal(c->calls, 2);
	assert_int_equal(c->taken, 1);
	assert_int_equal(c->taken_ids[0], id[3]);
	memset(c, 0, sizeof(*c));
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->taken, 1);
	assert_int_equal(c->taken_ids[0], id[0]);
	free(c);
}

static void test_claim_fifo(void **state)
{
	fx *f = *state;
	NEED(claim);
	int64_t now = wall_us() - SEC;
	int ca, cb, cc, cd, ce;
	uint64_t a = put1(f, 7, 1, now, &ca);
	uint64_t b = put1(f, 7, 1, now, &cb);
	uint64_t c7 = put1(f, 7, 1, now, &cc);
	uint64_t d = put1(f, 8, 1, now, &cd);
	uint64_t e = put1(f, 7, 0, now, &ce); /* not FIFO: never waits */
	release(f, a, ca);
	release(f, b, cb);
	release(f, c7, cc);
	release(f, d, cd);
	release(f, e, ce);

	uint64_t ids[8];
	assert_int_equal(claim_all(f, 0, ids, 8), 3);
	assert_int_equal(ids[0], a);
	assert_int_equal(ids[1], d);
	assert_int_equal(ids[2], e);
	/* a is held and still pending: b and c wait behind it. */
	assert_int_equal(claim_all(f, 0, ids, 8), 0);

	assert_int_equal(record(f, a, 1, FLAGHOOK_OUTCOME_DELIVERED, 200, 0), 0);
	assert_int_equal(claim_all(f, 0, ids, 8), 1);
	assert_int_equal(ids[0], b);
	/* b retries: still pending, so c still waits. */
	assert_int_equal(record(f, b, 1, FLAGHOOK_OUTCOME_RETRY, 503, now), 0);
	assert_int_equal(claim_all(f, 0, ids, 8), 0);
	/* b released: it (the oldest) comes back, c does not. */
	assert_int_equal(record(f, b, 0, FLAGHOOK_OUTCOME_RELEASED, 0, 0), 0);
	assert_int_equal(claim_all(f, 0, ids, 8), 1);
	assert_int_equal(ids[0], b);
	/* b dead: not pending, so c is next. */
	assert_int_equal(record(f, b, 2, FLAGHOOK_OUTCOME_GAVE_UP, 500, 0), 0);
	assert_int_equal(claim_all(f, 0, ids, 8), 1);
	assert_int_equal(ids[0], c7);
}

#define WORKERS 4
#define WORKER_PUTS 50          /* of two deliveries each */

typedef struct worker {
	fx *f;
	int index;
	uint64_t ids[WORKERS * WORKER_PUTS * 2]; /* a claimer may get them all */
	size_t count;
	int rc;
} worker;

static void *put_worker(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < WORKER_PUTS && !w->rc; i++) {
		flaghook_delivery d[2];
		make(&d[0], (uint64_t)w->index + 1, 0, wall_us() - SEC);
		make(&d[1], (uint64_t)w->index + 100, 0, wall_us() - SEC);
		w->rc = w->f->s.put(d, 2, w->f->s.user_data);
		for (int k = 0; k < 2 && !w->rc; k++) {
			w->ids[w->count++] = d[k].id;
			if (d[k].claimed)
				w->rc = record(w->f, d[k].id, 0, FLAGHOOK_OUTCOME_RELEASED, 0, 0);
		}
	}
	return NULL;
}

static void *claim_worker(void *arg)
{
	worker *w = arg;
	claim_log *c = calloc(1, sizeof(*c));
	for (;;) {
		memset(c, 0, sizeof(*c));
		w->rc = w->f->s.claim(wall_us(), 0, 7, take_cb, c, w->f->s.user_data);
		if (w->rc || c->taken == 0)
			break;
		for (size_t i = 0; i < c->taken && w->count < sizeof(w->ids) / sizeof(w->ids[0]); i++)
			w->ids[w->count++] = c->taken_ids[i];
	}
	free(c);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Puts and claims from several threads: every id once, no id twice. */
static void test_threads_put_then_claim(void **state)
{
	fx *f = *state;
	NEED(claim);
	enum { N = WORKERS };
	static worker w[N];
	pthread_t th[N];
	memset(w, 0, sizeof(w));
	for (int i = 0; i < N; i++) {
		w[i].f = f;
		w[i].index = i;
		assert_int_equal(pthread_create(&th[i], NULL, put_worker, &w[i]), 0);
	}
	static uint64_t all[N * WORKER_PUTS * 2];
	size_t n = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
		assert_int_equal(w[i].count, WORKER_PUTS * 2);
		memcpy(all + n, w[i].ids, w[i].count * sizeof(uint64_t));
		n += w[i].count;
	}
	qsort(all, n, sizeof(all[0]), cmp_u64);
	for (size_t i = 1; i < n; i++)
		assert_true(all[i] > all[i - 1]); /* distinct */

	memset(w, 0, sizeof(w));
	for (int i = 0; i < N; i++) {
		w[i].f = f;
		assert_int_equal(pthread_create(&th[i], NULL, claim_worker, &w[i]), 0);
	}
	static uint64_t got[N * WORKER_PUTS * 2];
	size_t m = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
		memcpy(got + m, w[i].ids, w[i].count * sizeof(uint64_t));
		m += w[i].count;
	}
	assert_int_equal(m, n);
	qsort(got, m, sizeof(got[0]), cmp_u64);
	assert_memory_equal(got, all, n * sizeof(uint64_t));
}

/* ------------------------------------------------------------------------ */
/* list                                                                     */

static void test_list_filters(void **state)
{
	fx *f = *state;
	NEED(list);
	int64_t now = wall_us();
	const uint64_t ep[5] = { 1, 1, 2, 2, 1 };
	uint64_t id[5];
	for (int i = 0; i < 5; i++) {
		flaghook_delivery d;
		make(&d, ep[i], 0, now);
		d.created_us = (i + 1) * 1000;
		assert_int_equal(f->s.put(&d, 1, f->s.user_data), 0);
		id[i] = d.id;
	}
	assert_int_equal(record(f, id[1], 1, FLAGHOOK_OUTCOME_DELIVERED, 200, 0), 0);
	assert_int_equal(record(f, id[3], 4, FLAGHOOK_OUTCOME_GAVE_UP, 500, 0), 0);

	for (int i = 1; i < 5; i++)
		assert_true(id[i] > id[i - 1]);
	char buf[128];
	flaghook_query q = FLAGHOOK_QUERY_INIT;
#define ROWS(query) list_rows_mapped(f, (query), id, buf, sizeof(buf))
	assert_string_equal(ROWS(NULL), "1,2,3,4,5");
	assert_string_equal(ROWS(&q), "1,2,3,4,5");
	q.state = FLAGHOOK_DELIVERY_DELIVERED;
	assert_string_equal(ROWS(&q), "2");
	q.state = FLAGHOOK_DELIVERY_DEAD;
	assert_string_equal(ROWS(&q), "4");
	q.state = FLAGHOOK_DELIVERY_PENDING;
	assert_string_equal(ROWS(&q), "1,3,5");
	q.endpoint_id = 2;
	assert_string_equal(ROWS(&q), "3");
	q.state = FLAGHOOK_STATE_ANY;
	q.endpoint_id = 1;
	assert_string_equal(ROWS(&q), "1,2,5");
	q.limit = 2;
	assert_string_equal(ROWS(&q), "1,2");
	q.endpoint_id = 0;
	q.since_us = 3000;
	assert_string_equal(ROWS(&q), "3,4");
	q.limit = 0;
	assert_string_equal(ROWS(&q), "3,4,5");
	q.since_us = 0;
	q.delivery_id = id[2];
	assert_string_equal(ROWS(&q), "3");
	q.delivery_id = id[4] + 1000;
	assert_string_equal(ROWS(&q), "");
#undef ROWS

	/* each() returning non-zero stops the listing; that is not an error. */
	list_log *l = calloc(1, sizeof(*l));
	l->stop_after = 2;
	assert_int_equal(f->s.list(NULL, list_cb, l, f->s.user_data), 0);
	assert_int_equal(l->calls, 2);
	free(l);

	seen_delivery r = find_one(f, id[1]);
	assert_int_equal(r.d.state, FLAGHOOK_DELIVERY_DELIVERED);
	assert_int_equal(r.d.last_status, 200);
	assert_int_equal(r.d.attempts, 1);
	assert_int_equal(r.d.created_us, 2000);
	assert_true(r.d.updated_us >= now);
	assert_int_equal(r.d.body_len, sizeof(body_a) - 1);
	assert_memory_equal(r.body, body_a, sizeof(body_a) - 1);
}

/* ------------------------------------------------------------------------ */
/* attempts                                                                 */

static void book(fx *f, uint64_t id, int32_t number, int32_t outcome, int32_t status,
                 int32_t errclass, int64_t started, int64_t next, const char *error,
                 const void *response, size_t response_len)
{
	flaghook_delivery d;
	make(&d, 0, 0, 0);
	d.id = id;
	flaghook_attempt a;
	attempt_init(&a, id, number, outcome);
	a.status = status;
	a.errclass = errclass;
	a.started_us = started;
	a.finished_us = started + 500;
	a.next_attempt_us = next;
	a.error = error;
	a.response = response;
	a.response_len = response_len;
	assert_int_equal(f->s.record(&d, &a, f->s.user_data), 0);
}

static void test_attempts_log(void **state)
{
	fx *f = *state;
	NEED(attempts);
	int64_t now = wall_us();
	flaghook_delivery d;
	make(&d, 11, 0, now);
	d.event_id = "aaaaaaaa-1111-4222-8333-444444444444";
	assert_int_equal(f->s.put(&d, 1, f->s.user_data), 0);
	uint64_t one = d.id;
	uint64_t two = put1(f, 12, 0, now, NULL);

	book(f, one, 1, FLAGHOOK_OUTCOME_RETRY, 503, FLAGHOOK_ERRCLASS_HTTP, 1000, 5000,
	     "HTTP 503", "busy", 4);
	book(f, two, 1, FLAGHOOK_OUTCOME_GAVE_UP, 410, FLAGHOOK_ERRCLASS_HTTP, 2000, 0,
	     "HTTP 410", "gone", 4);
	book(f, one, 2, FLAGHOOK_OUTCOME_RETRY, 0, FLAGHOOK_ERRCLASS_TIMEOUT, 6000, 9000,
	     "timed out after 10000 ms", NULL, 0);
	book(f, one, 3, FLAGHOOK_OUTCOME_DELIVERED, 200, FLAGHOOK_ERRCLASS_NONE, 10000, 0, "",
	     "o\0k", 3);
	/* number 0: the end of a delivery without an attempt is not logged */
	uint64_t three = put1(f, 12, 0, now, NULL);
	book(f, three, 0, FLAGHOOK_OUTCOME_RELEASED, 0, 0, 20000, 0, "", NULL, 0);

	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.delivery_id = one;
	attempts_log *l = attempts(f, &q);
	assert_int_equal(l->calls, 3);
	const seen_attempt *a = l->rows;
	assert_int_equal(a[0].a.version, FLAGHOOK_ATTEMPT_VERSION);
	assert_int_equal(a[0].a.delivery_id, one);
	assert_int_equal(a[0].a.endpoint_id, 11);
	assert_string_equal(a[0].event_id, "aaaaaaaa-1111-4222-8333-444444444444");
	assert_int_equal(a[0].a.number, 1);
	assert_int_equal(a[0].a.outcome, FLAGHOOK_OUTCOME_RETRY);
	assert_int_equal(a[0].a.status, 503);
	assert_int_equal(a[0].a.errclass, FLAGHOOK_ERRCLASS_HTTP);
	assert_int_equal(a[0].a.started_us, 1000);
	assert_int_equal(a[0].a.finished_us, 1500);
	assert_int_equal(a[0].a.next_attempt_us, 5000);
	assert_string_equal(a[0].error, "HTTP 503");
	assert_int_equal(a[0].a.response_len, 4);
	assert_memory_equal(a[0].response, "busy", 4);
	assert_int_equal(a[1].a.number, 2);
	assert_int_equal(a[1].a.errclass, FLAGHOOK_ERRCLASS_TIMEOUT);
	assert_int_equal(a[1].a.status, 0);
	assert_string_equal(a[1].error, "timed out after 10000 ms");
	assert_int_equal(a[1].a.response_len, 0);
	assert_int_equal(a[2].a.number, 3);
	assert_int_equal(a[2].a.outcome, FLAGHOOK_OUTCOME_DELIVERED);
	assert_string_equal(a[2].error, "");
	assert_int_equal(a[2].a.response_len, 3);
	assert_memory_equal(a[2].response, "o\0k", 3); /* bytes, not a string */
	free(l);

	/* q->state is ignored for attempts. */
	q.state = FLAGHOOK_DELIVERY_DEAD;
	l = attempts(f, &q);
	assert_int_equal(l->calls, 3);
	free(l);

	flaghook_query e = FLAGHOOK_QUERY_INIT;
	e.endpoint_id = 12;
	l = attempts(f, &e);
	assert_int_equal(l->calls, 1);
	assert_int_equal(l->rows[0].a.delivery_id, two);
	assert_int_equal(l->rows[0].a.status, 410);
	free(l);

	/* Everything, ordered by start time. */
	l = attempts(f, NULL);
	assert_int_equal(l->calls, 4);
	assert_int_equal(l->rows[0].a.started_us, 1000);
	assert_int_equal(l->rows[1].a.started_us, 2000);
	assert_int_equal(l->rows[2].a.started_us, 6000);
	assert_int_equal(l->rows[3].a.started_us, 10000);
	free(l);

	flaghook_query s = FLAGHOOK_QUERY_INIT;
	s.since_us = 6000;
	l = attempts(f, &s);
	assert_int_equal(l->calls, 2);
	free(l);
	s.limit = 1;
	l = attempts(f, &s);
	assert_int_equal(l->calls, 1);
	assert_int_equal(l->rows[0].a.started_us, 6000);
	free(l);

	l = calloc(1, sizeof(*l));
	l->stop_after = 1;
	assert_int_equal(f->s.attempts(NULL, attempts_cb, l, f->s.user_data), 0);
	assert_int_equal(l->calls, 1);
	free(l);
}

static void test_attempts_bounded(void **state)
{
	fx *f = *state;
	NEED(attempts);
	const store_suite_target *t = f->t;
	if (t->attempt_log_max <= 0 || t->response_max == 0 || t->attempt_log_max > 30 ||
	    t->response_max > 1500) {
		skip(); /* the target did not say (or the bounds are too big to check here) */
		return;
	}
	int64_t now = wall_us();
	uint64_t id = put1(f, 5, 0, now, NULL);
	size_t rlen = t->response_max + 100;
	char *response = malloc(rlen);
	for (size_t i = 0; i < rlen; i++)
		response[i] = (char)('a' + i % 26);
	int32_t total = t->attempt_log_max + 3;
	for (int32_t n = 1; n <= total; n++)
		book(f, id, n, FLAGHOOK_OUTCOME_RETRY, 500, FLAGHOOK_ERRCLASS_HTTP, now + n, now + n + 1,
		     "HTTP 500", response, rlen);
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.delivery_id = id;
	attempts_log *l = attempts(f, &q);
	/* The latest attempt_log_max are kept. */
	assert_int_equal(l->calls, (size_t)t->attempt_log_max);
	for (size_t i = 0; i < l->calls; i++) {
		assert_int_equal(l->rows[i].a.number, 4 + (int32_t)i);
		assert_int_equal(l->rows[i].a.response_len, t->response_max);
		assert_memory_equal(l->rows[i].response, response, t->response_max);
	}
	free(l);
	free(response);
	if (f->s.list)
		assert_int_equal(find_one(f, id).d.attempts, total);
}

/* ------------------------------------------------------------------------ */
/* requeue and pending                                                      */

static void test_requeue(void **state)
{
	fx *f = *state;
	NEED(requeue);
	NEED(list);
	int64_t now = wall_us();
	const uint64_t ep[5] = { 1, 1, 2, 1, 1 };
	uint64_t id[5];
	for (int i = 0; i < 5; i++) {
		flaghook_delivery d;
		make(&d, ep[i], 0, now + 3600 * SEC);
		d.created_us = (i + 1) * 1000;
		assert_int_equal(f->s.put(&d, 1, f->s.user_data), 0);
		id[i] = d.id;
	}
	assert_int_equal(record(f, id[0], 3, FLAGHOOK_OUTCOME_GAVE_UP, 500, 0), 0);
	assert_int_equal(record(f, id[1], 2, FLAGHOOK_OUTCOME_GAVE_UP, 500, 0), 0);
	assert_int_equal(record(f, id[2], 1, FLAGHOOK_OUTCOME_GAVE_UP, 404, 0), 0);
	assert_int_equal(record(f, id[3], 1, FLAGHOOK_OUTCOME_DELIVERED, 200, 0), 0);
	/* id[4] stays pending (and held) */

	/* One delivery. */
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.delivery_id = id[0];
	uint64_t count = 99;
	int64_t before = wall_us();
	assert_int_equal(f->s.requeue(&q, &count, f->s.user_data), 0);
	int64_t after = wall_us();
	assert_int_equal(count, 1);
	seen_delivery r = find_one(f, id[0]);
	assert_int_equal(r.d.state, FLAGHOOK_DELIVERY_PENDING);
	assert_int_equal(r.d.attempts, 0);
	assert_true(r.d.next_attempt_us >= before && r.d.next_attempt_us <= after);
	assert_true(r.d.updated_us >= before && r.d.updated_us <= after);
	if (f->s.claim) { /* held by nobody, due now */
		uint64_t ids[4];
		assert_int_equal(claim_all(f, 0, ids, 4), 1);
		assert_int_equal(ids[0], id[0]);
	}
	/* Again: it is pending now, so untouched and not counted. */
	assert_int_equal(f->s.requeue(&q, &count, f->s.user_data), 0);
	assert_int_equal(count, 0);

	/* The dead letters of endpoint 1: not its delivered one, not endpoint 2's. */
	flaghook_query dead = FLAGHOOK_QUERY_INIT;
	dead.state = FLAGHOOK_DELIVERY_DEAD;
	dead.endpoint_id = 1;
	assert_int_equal(f->s.requeue(&dead, &count, f->s.user_data), 0);
	assert_int_equal(count, 1);
	assert_int_equal(find_one(f, id[1]).d.state, FLAGHOOK_DELIVERY_PENDING);
	assert_int_equal(find_one(f, id[2]).d.state, FLAGHOOK_DELIVERY_DEAD);
	assert_int_equal(find_one(f, id[3]).d.state, FLAGHOOK_DELIVERY_DELIVERED);

	/* Everything since T that is not pending: the dead and the delivered. */
	flaghook_query since = FLAGHOOK_QUERY_INIT;
	since.since_us = 3000;
	assert_int_equal(f->s.requeue(&since, &count, f->s.user_data), 0);
	assert_int_equal(count, 2);
	assert_int_equal(find_one(f, id[2]).d.state, FLAGHOOK_DELIVERY_PENDING);
	assert_int_equal(find_one(f, id[3]).d.state, FLAGHOOK_DELIVERY_PENDING);
	r = find_one(f, id[4]); /* was pending all along: untouched */
	assert_int_equal(r.d.next_attempt_us, now + 3600 * SEC);

	assert_int_equal(f->s.requeue(NULL, NULL, f->s.user_data), 0); /* count may be NULL */
	assert_int_equal(f->s.requeue(NULL, &count, f->s.user_data), 0);
	assert_int_equal(count, 0);
	if (f->s.pending)
		assert_int_equal(pending(f), 5);
}

static void test_pending_count(void **state)
{
	fx *f = *state;
	NEED(pending);
	assert_int_equal(pending(f), 0);
	int64_t now = wall_us();
	uint64_t a = put1(f, 1, 0, now, NULL);
	uint64_t b = put1(f, 1, 0, now, NULL);
	uint64_t c = put1(f, 2, 1, now, NULL);
	assert_int_equal(pending(f), 3);
	assert_int_equal(record(f, a, 1, FLAGHOOK_OUTCOME_DELIVERED, 204, 0), 0);
	assert_int_equal(pending(f), 2);
	assert_int_equal(record(f, b, 1, FLAGHOOK_OUTCOME_GAVE_UP, 400, 0), 0);
	assert_int_equal(pending(f), 1);
	if (!f->t->shared) /* a shared store's FIFO delivery is nobody's yet */
		assert_int_equal(record(f, c, 1, FLAGHOOK_OUTCOME_RETRY, 503, now + SEC), 0);
	assert_int_equal(pending(f), 1);
}

/* ------------------------------------------------------------------------ */
/* arguments                                                                */

static int count_each(const flaghook_delivery *d, void *arg) { (void)d; (void)arg; return 0; }
static int count_attempt(const flaghook_attempt *a, void *arg) { (void)a; (void)arg; return 0; }

#define EXPECT_ERR(code, call) do { \
		flaghook_error_set(0, NULL); \
		assert_int_equal((call), (code)); \
		assert_true(flaghook_last_error()[0] != '\0'); /* says why */ \
	} while (0)

static void test_argument_errors(void **state)
{
	fx *f = *state;
	void *ud = f->s.user_data;
	uint64_t id = put1(f, 1, 0, wall_us(), NULL);
	flaghook_delivery d;
	make(&d, 1, 0, 0);
	d.id = id;
	flaghook_attempt a;
	attempt_init(&a, id, 1, FLAGHOOK_OUTCOME_RETRY);

	EXPECT_ERR(FLAGHOOK_EINVAL, f->s.record(NULL, &a, ud));
	EXPECT_ERR(FLAGHOOK_EINVAL, f->s.record(&d, NULL, ud));
	a.version = 0;
	EXPECT_ERR(FLAGHOOK_EVERSION, f->s.record(&d, &a, ud));
	a.version = FLAGHOOK_ATTEMPT_VERSION;
	a.outcome = 99;
	EXPECT_ERR(FLAGHOOK_EINVAL, f->s.record(&d, &a, ud));

	flaghook_query q = FLAGHOOK_QUERY_INIT;
	flaghook_query v0 = q, v99 = q, bad_state = q;
	v0.version = 0;
	v99.version = 99;
	bad_state.state = 17;
	if (f->s.claim)
		EXPECT_ERR(FLAGHOOK_EINVAL, f->s.claim(wall_us(), 0, 10, NULL, NULL, ud));
	if (f->s.pending)
		EXPECT_ERR(FLAGHOOK_EINVAL, f->s.pending(NULL, ud));
	if (f->s.list) {
		EXPECT_ERR(FLAGHOOK_EINVAL, f->s.list(&q, NULL, NULL, ud));
		EXPECT_ERR(FLAGHOOK_EVERSION, f->s.list(&v0, count_each, NULL, ud));
		EXPECT_ERR(FLAGHOOK_EVERSION, f->s.list(&v99, count_each, NULL, ud));
		EXPECT_ERR(FLAGHOOK_EINVAL, f->s.list(&bad_state, count_each, NULL, ud));
	}
	if (f->s.attempts) {
		EXPECT_ERR(FLAGHOOK_EINVAL, f->s.attempts(&q, NULL, NULL, ud));
		EXPECT_ERR(FLAGHOOK_EVERSION, f->s.attempts(&v0, count_attempt, NULL, ud));
	}
	if (f->s.requeue) {
		uint64_t n;
		EXPECT_ERR(FLAGHOOK_EVERSION, f->s.requeue(&v0, &n, ud));
		EXPECT_ERR(FLAGHOOK_EVERSION, f->s.requeue(&v99, &n, ud));
	}
	/* None of it changed the delivery. */
	if (f->s.list) {
		seen_delivery r = find_one(f, id);
		assert_int_equal(r.d.attempts, 0);
		assert_int_equal(r.d.state, FLAGHOOK_DELIVERY_PENDING);
	}
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* release                                                                  */

/* What a client shutting down hands back, in one call: claimable again
 * with attempts and next-attempt time kept; what it did not name stays
 * held. */
static void test_release_batch(void **state)
{
	fx *f = *state;
	NEED(release);
	NEED(claim);
	int64_t now = wall_us();
	uint64_t id[3];
	for (int i = 0; i < 3; i++)
		id[i] = put1(f, 30 + (uint64_t)i, 0, now - SEC, NULL);
	assert_int_equal(record(f, id[0], 2, FLAGHOOK_OUTCOME_RETRY, 503, now - 2000), 0);
	uint64_t ids[4];
	assert_int_equal(claim_all(f, 0, ids, 4), 0); /* all held */
	uint64_t back[2] = { id[0], id[2] };
	assert_int_equal(f->s.release(back, 2, f->s.user_data), 0);
	assert_int_equal(f->s.release(back, 0, f->s.user_data), 0);
	claim_log *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	claim(f, wall_us(), 0, 10, c);
	assert_int_equal(c->taken, 2);
	assert_int_equal(c->taken_ids[0], id[0]);
	assert_int_equal(c->taken_ids[1], id[2]);
	assert_int_equal(c->seen[0].d.attempts, 2);
	assert_int_equal(c->seen[0].d.next_attempt_us, now - 2000);
	free(c);
	if (f->s.pending) {
		uint64_t n = 0;
		assert_int_equal(f->s.pending(&n, f->s.user_data), 0);
		assert_int_equal(n, 3); /* released is still pending */
	}
	assert_int_equal(f->s.release(NULL, 1, f->s.user_data), FLAGHOOK_EINVAL);
}

int store_suite_run(const store_suite_target *t)
{
	void *target = (void *)t;
#define CASE(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, target)
	const struct CMUnitTest tests[] = {
		CASE(test_put_ids_and_claimed),
		CASE(test_put_all_or_none),
		CASE(test_record_retry),
		CASE(test_record_final_states),
		CASE(test_released_claimable),
		CASE(test_claim_horizon_and_max),
		CASE(test_claim_take_verdicts),
		CASE(test_claim_fifo),
		CASE(test_threads_put_then_claim),
		CASE(test_list_filters),
		CASE(test_attempts_log),
		CASE(test_attempts_bounded),
		CASE(test_requeue),
		CASE(test_pending_count),
		CASE(test_release_batch),
		CASE(test_argument_errors),
	};
#undef CASE
	return cmocka_run_group_tests_name(t->name, tests, NULL, NULL);
}
