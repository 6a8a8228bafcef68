/*
 * The engine against stores at their edges: the reproductions of an
 * independent review of the durable-storage change, kept as regression
 * tests.  Each failed against the engine before its fix.
 *
 *  - a FIFO backlog at flaghook_client_free was dropped without a report;
 *  - disabling a FIFO endpoint left its waiting deliveries unreported;
 *  - re-queued deliveries stalled when max_pending was reached;
 *  - a FIFO successor was stranded when its wake-up came during a slow
 *    claim (lost wake-up);
 *  - a claim still running when client_free started used the freed client
 *    (caller's executor);
 *  - automatic endpoint ids wrapped to 0 after UINT64_MAX.
 *
 * The "slow" store below is a test double: it keeps FIFO deliveries for
 * claim as a shared store does, and its claim can be made slow, which no
 * real database does on demand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "sample.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- results ---- */

typedef struct tally {
	pthread_mutex_t lock;
	int results, outcome[5];
} tally;

static void on_result(const flaghook_result *r, void *ud)
{
	tally *t = ud;
	pthread_mutex_lock(&t->lock);
	t->results++;
	if (r->outcome >= 0 && r->outcome < 5)
		t->outcome[r->outcome]++;
	pthread_mutex_unlock(&t->lock);
}

static int count(tally *t, int outcome)
{
	pthread_mutex_lock(&t->lock);
	int n = outcome < 0 ? t->results : t->outcome[outcome];
	pthread_mutex_unlock(&t->lock);
	return n;
}

static flaghook_client_options async_opts(tally *t)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.on_result = on_result;
	o.user_data = t;
	o.timeout_ms = 30000; /* no case here needs a timeout to fire */
	return o;
}

/* ---- a receiver held on a latch ---- */

/* The receiver's handler holds the first `hold` requests until the test
 * calls latch_open (teardown does, so a failed case never leaves a
 * handler stuck). */
typedef struct latch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int open, hold, seen;
} latch;

static void latch_handler(const th_request *req, th_reply *reply, void *ud)
{
	(void)req; (void)reply;
	latch *l = ud;
	pthread_mutex_lock(&l->lock);
	if (l->seen++ < l->hold)
		while (!l->open)
			pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

static void latch_open(latch *l)
{
	pthread_mutex_lock(&l->lock);
	l->open = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* ---- per-case fixtures: torn down even when an assertion fails ---- */

typedef struct fx {
	th_server *srv;
	flaghook_client *c;
	tally t;
	latch l;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	pthread_mutex_init(&f->t.lock, NULL);
	pthread_mutex_init(&f->l.lock, NULL);
	pthread_cond_init(&f->l.cond, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	latch_open(&f->l);
	flaghook_client_free(f->c);
	th_stop(f->srv);
	pthread_mutex_destroy(&f->t.lock);
	pthread_mutex_destroy(&f->l.lock);
	pthread_cond_destroy(&f->l.cond);
	free(f);
	return 0;
}

/* Waits up to 60 s for `cond` (then the caller asserts it). */
#define WAIT_UNTIL(cond)                                                       \
	do {                                                                       \
		for (int64_t wu_end_ = mono_ms() + 60000; !(cond) && mono_ms() < wu_end_;) \
			sleep_ms(5);                                                       \
	} while (0)

static uint64_t add_ep(flaghook_client *c, th_server *srv, int fifo)
{
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", th_port(srv));
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope = FLAGHOOK_SCOPE_ORGANISATION;
	e.scope_id = 1;
	e.url = url;
	e.fifo = fifo;
	uint64_t id = 0;
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), 0);
	return id;
}

/* ---- a store whose claim can be slow ---- */

#define SLOW_ROWS 256

typedef struct srow {
	uint64_t id, endpoint;
	int fifo, held, state, attempts, type;
	int64_t next, created;
	char event_id[40];
	char *body;
	size_t len;
} srow;

typedef struct slow {
	pthread_mutex_t lock;
	srow rows[SLOW_ROWS];
	size_t n;
	atomic_int delay_before_ms, delay_after_ms, record_delay_ms;
	atomic_int slow_claims;     /* claims begun with a delay_before_ms */
} slow;

static int s_put(flaghook_delivery *d, size_t n, void *ud)
{
	slow *s = ud;
	pthread_mutex_lock(&s->lock);
	if (s->n + n > SLOW_ROWS) {
		pthread_mutex_unlock(&s->lock);
		return flaghook_error_set(FLAGHOOK_ESTORAGE, "slow store: full");
	}
	for (size_t i = 0; i < n; i++) {
		srow *r = &s->rows[s->n];
		memset(r, 0, sizeof(*r));
		r->id = ++s->n;
		r->endpoint = d[i].endpoint_id;
		r->fifo = d[i].fifo != 0;
		r->held = !r->fifo; /* FIFO ones come out through claim */
		r->type = d[i].event_type;
		r->next = d[i].next_attempt_us;
		r->created = d[i].created_us;
		snprintf(r->event_id, sizeof(r->event_id), "%s", d[i].event_id);
		r->body = malloc(d[i].body_len + 1);
		assert_non_null(r->body);
		memcpy(r->body, d[i].body, d[i].body_len);
		r->len = d[i].body_len;
		d[i].id = r->id;
		d[i].claimed = r->held;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int s_claim(int64_t now, int64_t horizon, size_t max, int (*take)(const flaghook_delivery *, void *),
                   void *arg, void *ud)
{
	slow *s = ud;
	int before = atomic_load(&s->delay_before_ms);
	if (before)
		atomic_fetch_add(&s->slow_claims, 1);
	sleep_ms(before);
	pthread_mutex_lock(&s->lock);
	size_t taken = 0;
	for (size_t i = 0; i < s->n && taken < max; i++) {
		srow *r = &s->rows[i];
		if (r->state || r->held || r->next > now + horizon)
			continue;
		int older = 0;
		for (size_t k = 0; r->fifo && k < i; k++)
			older |= s->rows[k].endpoint == r->endpoint && s->rows[k].state == 0;
		if (older)
			continue;
		flaghook_delivery d = { .version = FLAGHOOK_DELIVERY_VERSION, .id = r->id, .event_id = r->event_id,
		                        .event_type = r->type, .endpoint_id = r->endpoint, .body = r->body,
		                        .body_len = r->len, .attempts = r->attempts, .created_us = r->created,
		                        .next_attempt_us = r->next, .fifo = r->fifo };
		int v = take(&d, arg);
		if (v < 0)
			break;
		if (v == 0)
			r->held = 1, taken++;
	}
	pthread_mutex_unlock(&s->lock);
	/* Slow after looking: the window in which a wake-up was once lost. */
	sleep_ms(atomic_load(&s->delay_after_ms));
	return 0;
}

static int s_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	slow *s = ud;
	sleep_ms(atomic_load(&s->record_delay_ms));
	pthread_mutex_lock(&s->lock);
	srow *r = d->id && d->id <= s->n ? &s->rows[d->id - 1] : NULL;
	if (r) {
		if (a->number > 0)
			r->attempts = a->number;
		if (a->outcome == FLAGHOOK_OUTCOME_RETRY)
			r->next = a->next_attempt_us;
		else if (a->outcome == FLAGHOOK_OUTCOME_RELEASED)
			r->held = 0;
		else
			r->state = a->outcome == FLAGHOOK_OUTCOME_DELIVERED ? 1 : 2, r->held = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return r ? 0 : flaghook_error_set(FLAGHOOK_ENOTFOUND, "slow store: no such delivery");
}

static int s_pending(uint64_t *n, void *ud)
{
	slow *s = ud;
	pthread_mutex_lock(&s->lock);
	*n = 0;
	for (size_t i = 0; i < s->n; i++)
		*n += s->rows[i].state == 0;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void s_destroy(void *ud)
{
	slow *s = ud;
	for (size_t i = 0; i < s->n; i++)
		free(s->rows[i].body);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static flaghook_storage slow_store(slow **out)
{
	slow *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	st.put = s_put;
	st.claim = s_claim;
	st.record = s_record;
	st.pending = s_pending;
	st.destroy = s_destroy;
	st.user_data = s;
	*out = s;
	return st;
}

/* ---- the cases ---- */

/* client_free drains a FIFO backlog and reports every delivery. */
static void test_fifo_backlog_at_free(void **state)
{
	fx *f = *state;
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_reply first = { .delay_ms = 200 };
	th_script(f->srv, &first, 1);
	flaghook_client_options o = async_opts(&f->t);
	o.shutdown_timeout_ms = 60000; /* drains it all; bounds only a hang */
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	add_ep(f->c, f->srv, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(flaghook_emit(f->c, fh_sample_organisation()), 0);
	flaghook_client_free(f->c);
	f->c = NULL;
	assert_int_equal(count(&f->t, -1), 5);
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_DELIVERED), 5);
	assert_int_equal(th_count(f->srv), 5);
}

/* Disabling a FIFO endpoint gives up what waits for it, each reported. */
static void test_fifo_disable_reports_backlog(void **state)
{
	fx *f = *state;
	f->l.hold = 1; /* the first request waits for the latch */
	assert_int_equal(th_start(&f->srv, latch_handler, &f->l), 0);
	flaghook_client_options o = async_opts(&f->t);
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	flaghook_client *c = f->c;
	uint64_t ep = add_ep(c, f->srv, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(flaghook_emit(c, fh_sample_organisation()), 0);
	/* The first is in flight: the receiver has it and holds its reply. */
	assert_int_equal(th_wait(f->srv, 1, 30000), 0);
	assert_int_equal(flaghook_endpoint_set_enabled(c, ep, 0), 0);
	/* The four behind it are given up, while it is still held. */
	WAIT_UNTIL(count(&f->t, FLAGHOOK_OUTCOME_GAVE_UP) >= 4);
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_GAVE_UP), 4);
	assert_int_equal(count(&f->t, -1), 4);
	latch_open(&f->l);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(count(&f->t, -1), 5);
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_GAVE_UP), 4);
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_DELIVERED), 1);
	/* Enabled again, nothing stale goes out: nothing is left to send. */
	assert_int_equal(flaghook_endpoint_set_enabled(c, ep, 1), 0);
	flaghook_client_stats cs = FLAGHOOK_CLIENT_STATS_INIT;
	assert_int_equal(flaghook_client_stats_get(c, &cs), 0);
	assert_int_equal(cs.pending, 0);
	sleep_ms(200); /* a stale send would show here (not a wait for anything) */
	assert_int_equal(th_count(f->srv), 1);
}

/* Re-queued deliveries go out even when they are more than max_pending. */
static void test_requeue_beyond_max_pending(void **state)
{
	fx *f = *state;
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_reply bad[10];
	for (int i = 0; i < 10; i++)
		bad[i] = (th_reply){ .status = 400 };
	th_script(f->srv, bad, 10);
	flaghook_client_options o = async_opts(&f->t);
	o.max_pending = 2;
	o.emit_wait_ms = 60000; /* waits for room; bounds only a hang */
	o.breaker_threshold = -1;
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	flaghook_client *c = f->c;
	add_ep(c, f->srv, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(flaghook_emit(c, fh_sample_organisation()), 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_GAVE_UP), 10);
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.state = FLAGHOOK_DELIVERY_DEAD;
	uint64_t n = 0;
	assert_int_equal(flaghook_client_requeue(c, &q, &n), 0);
	assert_int_equal(n, 10);
	/* No flush: the engine must keep claiming as room frees up. */
	assert_int_equal(th_wait(f->srv, 20, 60000), 0);
	WAIT_UNTIL(count(&f->t, FLAGHOOK_OUTCOME_DELIVERED) >= 10);
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_DELIVERED), 10);
}

/* A FIFO successor whose wake-up comes while a slow claim is under way is
 * still fetched, without a flush to push it. */
static void test_fifo_wakeup_during_slow_claim(void **state)
{
	fx *f = *state;
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_reply first = { .delay_ms = 100 };
	th_script(f->srv, &first, 1);
	slow *s = NULL;
	flaghook_storage st = slow_store(&s);
	flaghook_client_options o = async_opts(&f->t);
	o.storage = &st;
	/* No periodic poll within the test: only the wake-up can fetch the
	 * second delivery. */
	o.poll_interval_ms = 3600 * 1000;
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	flaghook_client *c = f->c;
	add_ep(c, f->srv, 1);
	/* The scheduler's poll, woken when the first finishes, looks while
	 * that delivery is still being recorded (so the second is not yet
	 * free to go) and takes its time; the poll asked for after the record
	 * must not be lost meanwhile. */
	atomic_store(&s->record_delay_ms, 50);
	atomic_store(&s->delay_after_ms, 100);
	assert_int_equal(flaghook_emit(c, fh_sample_organisation()), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_organisation()), 0);
	assert_int_equal(th_wait(f->srv, 2, 30000), 0);
	atomic_store(&s->record_delay_ms, 0);
	atomic_store(&s->delay_after_ms, 0);
	flaghook_client_free(c);
	f->c = NULL;
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_DELIVERED), 2);
}

/* A caller's executor: one thread per job, which client_free must not
 * outlive while it still uses the client (a claim after the attempt). */
static void *job_thread(void *p)
{
	void **a = p;
	void (*job)(void *) = (void (*)(void *))a[0];
	job(a[1]);
	free(a);
	return NULL;
}

static int thread_submit(void (*job)(void *), void *arg, void *ud)
{
	(void)ud;
	void **a = malloc(2 * sizeof(*a));
	if (!a)
		return -1;
	a[0] = (void *)job;
	a[1] = arg;
	pthread_t th;
	if (pthread_create(&th, NULL, job_thread, a)) {
		free(a);
		return -1;
	}
	pthread_detach(th);
	return 0;
}

static void test_claim_under_way_at_free(void **state)
{
	fx *f = *state;
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_reply replies[2] = { { .delay_ms = 200 }, { .delay_ms = 200 } };
	th_script(f->srv, replies, 2);
	slow *s = NULL;
	flaghook_storage st = slow_store(&s);
	flaghook_executor ex = FLAGHOOK_EXECUTOR_INIT;
	ex.submit = thread_submit;
	flaghook_client_options o = async_opts(&f->t);
	o.storage = &st;
	o.executor = &ex;
	o.timers = FLAGHOOK_TIMERS_TICK;
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	flaghook_client *c = f->c;
	add_ep(c, f->srv, 1);
	assert_int_equal(flaghook_emit(c, fh_sample_organisation()), 0); /* in flight 200 ms */
	assert_int_equal(flaghook_emit(c, fh_sample_organisation()), 0); /* waits unheld */
	atomic_store(&s->delay_before_ms, 400); /* the claim after the first is slow */
	/* The host's loop runs until the first is delivered and the claim for
	 * the second has started on a job thread: it is under way at free. */
	int fd = -1;
	assert_int_equal(flaghook_fd(c, &fd), 0);
	for (int64_t end = mono_ms() + 60000; mono_ms() < end;) {
		if (count(&f->t, FLAGHOOK_OUTCOME_DELIVERED) >= 1 && atomic_load(&s->slow_claims) >= 1)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 10);
		assert_int_equal(flaghook_tick(c, NULL), 0);
	}
	assert_int_equal(count(&f->t, FLAGHOOK_OUTCOME_DELIVERED), 1);
	assert_true(atomic_load(&s->slow_claims) >= 1);
	flaghook_client_free(c); /* ASan saw the claim use the freed client */
	f->c = NULL;
	assert_int_equal(count(&f->t, -1), 2);
	sleep_ms(500); /* a job thread that outlived free would touch freed memory now */
}

static void test_endpoint_ids_do_not_wrap(void **state)
{
	(void)state;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, NULL), 0);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = "http://hooks.invalid/";
	e.id = UINT64_MAX;
	assert_int_equal(flaghook_endpoint_add(c, NULL, &e), 0);
	e.id = 0;
	uint64_t id = 5;
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), FLAGHOOK_EINVAL);
	assert_int_equal(id, 5);
	e.id = 17; /* a given id still works */
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), 0);
	assert_int_equal(id, 17);
	flaghook_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fifo_backlog_at_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_disable_reports_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requeue_beyond_max_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_wakeup_during_slow_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_under_way_at_free, setup, teardown),
		cmocka_unit_test(test_endpoint_ids_do_not_wrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
