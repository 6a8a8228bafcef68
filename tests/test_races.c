/*
 * Regression tests for engine races and overflows an independent review
 * reproduced (fixed in 00c4e60): a retry put back on the heap before it
 * was recorded, routing that counted and filled in two passes, a heap scan
 * that skipped entries, deliveries accepted during shutdown and never
 * reported, a circuit timer armed after shutdown emptied the heap,
 * millisecond settings that overflowed, and a FIFO delivery held behind a
 * circuit that enabling did not release.
 *
 * Every test runs against a custom transport (no HTTP is involved in any
 * of these defects) and a storage plug-in that keeps a ledger of every
 * delivery: what was put, each record, each on_result.  Where the schedule
 * allows, TICK timers, a fake clock and an inline executor make it
 * deterministic; the rest runs on the built-in pool, with waits on
 * conditions rather than guesses at timing.  The defects also show under
 * AddressSanitizer and ThreadSanitizer, which CI runs; the assertions catch
 * them without.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "sample.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Sanitizers slow everything down: the time-boxed tests do less there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define SANITIZED 1
#  endif
#endif
#ifndef SANITIZED
#  define SANITIZED 0
#endif

#define MAX_EPS 32

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Polls `cond` every millisecond for up to `ms` (then the caller asserts it). */
#define WAIT_UNTIL(cond, ms)                                                   \
	do {                                                                       \
		int64_t wu_end_ = mono_ms() + (ms);                                    \
		while (!(cond) && mono_ms() < wu_end_)                                 \
			sleep_ms(1);                                                       \
	} while (0)

/* ---- the ledger: every delivery as storage and callbacks saw it ---- */

typedef struct dl {
	int puts, finals, results, retries, retry_after_final;
	int final_outcome, result_outcome;
	uint64_t endpoint_id;
	char event_id[40];
} dl;

typedef struct rt rt;
struct rt {
	pthread_mutex_t lock;
	dl *d;                       /* by delivery id, 1 .. cap-1 */
	size_t cap;
	uint64_t *slots;             /* (event id, endpoint id) -> delivery id */
	size_t nslots;
	uint64_t max_id;
	uint64_t next_id;           /* ids this store assigned */
	int anomalies;               /* things that must never happen */
	char note[256];              /* the first of them */
	int puts, results, attempts, disabled_cbs;
	int outcomes[4];
	int sends[MAX_EPS];
	int sends_to_disabled;
	int is_disabled[MAX_EPS];    /* set by a test when it disables endpoint k */
	atomic_int retry_recording;  /* RETRY records begun */
	atomic_long live;            /* counting allocator: blocks outstanding */
	_Atomic int64_t now_us;      /* the fake clock */
	flaghook_client *c;
	/* per-test behaviour */
	int (*send)(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs);
	void (*on_put)(rt *t);
	void (*on_final)(rt *t, const flaghook_result *r);
	int (*submit)(rt *t, void (*job)(void *), void *arg);
	int retry_record_sleep_ms;
	void *extra;
};

static void anomaly_locked(rt *t, const char *fmt, ...)
{
	if (!t->anomalies++) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->note, sizeof(t->note), fmt, ap);
		va_end(ap);
	}
}

static rt *rt_new(size_t cap)
{
	rt *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	pthread_mutex_init(&t->lock, NULL);
	t->cap = cap;
	t->d = calloc(cap, sizeof(*t->d));
	t->nslots = 1;
	while (t->nslots < 2 * cap)
		t->nslots *= 2;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	assert_true(t->d && t->slots);
	return t;
}

static void rt_free(rt *t)
{
	pthread_mutex_destroy(&t->lock);
	free(t->d);
	free(t->slots);
	free(t);
}

static size_t slot_of(const rt *t, const char *event_id, uint64_t endpoint_id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = event_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h ^= endpoint_id * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h ^ (h >> 29)) & (t->nslots - 1);
}

static uint64_t find_locked(const rt *t, const char *event_id, uint64_t endpoint_id)
{
	for (size_t i = slot_of(t, event_id, endpoint_id);; i = (i + 1) & (t->nslots - 1)) {
		uint64_t id = t->slots[i];
		if (!id)
			return 0;
		if (t->d[id].endpoint_id == endpoint_id && !strcmp(t->d[id].event_id, event_id))
			return id;
	}
}

static int ep_index(const char *url)
{
	const char *p = strrchr(url, '/');
	int k = p && p[1] == 'e' ? atoi(p + 2) : -1;
	return k >= 0 && k < MAX_EPS ? k : 0;
}

static int st_put(flaghook_delivery *ds, size_t n, void *ud)
{
	rt *t = ud;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		flaghook_delivery *d = &ds[i];
		d->id = ++t->next_id; /* the store names deliveries */
		d->claimed = 1;
		if (!d->id || d->id >= t->cap) {
			anomaly_locked(t, "delivery id %llu outside the ledger", (unsigned long long)d->id);
			continue;
		}
		dl *e = &t->d[d->id];
		if (e->puts++) {
			anomaly_locked(t, "delivery %llu put twice", (unsigned long long)d->id);
			continue;
		}
		e->endpoint_id = d->endpoint_id;
		snprintf(e->event_id, sizeof(e->event_id), "%s", d->event_id);
		if (find_locked(t, e->event_id, e->endpoint_id))
			anomaly_locked(t, "two deliveries of event %s to endpoint %llu", e->event_id,
			               (unsigned long long)e->endpoint_id);
		size_t s = slot_of(t, e->event_id, e->endpoint_id);
		while (t->slots[s])
			s = (s + 1) & (t->nslots - 1);
		t->slots[s] = d->id;
		t->puts++;
		if (d->id > t->max_id)
			t->max_id = d->id;
	}
	pthread_mutex_unlock(&t->lock);
	if (t->on_put)
		t->on_put(t);
	return 0;
}

/* A record counts when it completes: a store that was still writing RETRY
 * when the final outcome was written would end up saying RETRY. */
static int st_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	int outcome = a->outcome;
	rt *t = ud;
	uint64_t id = d->id; /* read now: the delivery is the library's */
	if (outcome == FLAGHOOK_OUTCOME_RETRY && t->retry_record_sleep_ms) {
		atomic_fetch_add(&t->retry_recording, 1);
		sleep_ms(t->retry_record_sleep_ms);
	}
	pthread_mutex_lock(&t->lock);
	if (!id || id >= t->cap || !t->d[id].puts) {
		anomaly_locked(t, "record (outcome %d) for delivery %llu never put", outcome, (unsigned long long)id);
	} else if (outcome < 0 || outcome > FLAGHOOK_OUTCOME_ABANDONED) {
		anomaly_locked(t, "record of delivery %llu with outcome %d", (unsigned long long)id, outcome);
	} else if (outcome == FLAGHOOK_OUTCOME_RETRY) {
		dl *e = &t->d[id];
		e->retries++;
		if (e->finals) {
			e->retry_after_final++;
			anomaly_locked(t, "delivery %llu recorded RETRY after its final outcome %d",
			               (unsigned long long)id, e->final_outcome);
		}
	} else {
		dl *e = &t->d[id];
		if (e->finals++)
			anomaly_locked(t, "delivery %llu has a second final record (%d, then %d)",
			               (unsigned long long)id, e->final_outcome, outcome);
		e->final_outcome = outcome;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void cb_result(const flaghook_result *r, void *ud)
{
	rt *t = ud;
	pthread_mutex_lock(&t->lock);
	t->results++;
	if (r->outcome < 0 || r->outcome > FLAGHOOK_OUTCOME_ABANDONED || r->outcome == FLAGHOOK_OUTCOME_RETRY) {
		anomaly_locked(t, "on_result with outcome %d", r->outcome);
	} else {
		t->outcomes[r->outcome]++;
		uint64_t id = find_locked(t, r->event_id, r->endpoint_id);
		if (!id) {
			anomaly_locked(t, "on_result for event %s endpoint %llu, never put", r->event_id,
			               (unsigned long long)r->endpoint_id);
		} else {
			dl *e = &t->d[id];
			if (e->results++)
				anomaly_locked(t, "delivery %llu has a second on_result", (unsigned long long)id);
			e->result_outcome = r->outcome;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (t->on_final)
		t->on_final(t, r);
}

static void cb_attempt(const flaghook_result *r, void *ud)
{
	(void)r;
	rt *t = ud;
	pthread_mutex_lock(&t->lock);
	t->attempts++;
	pthread_mutex_unlock(&t->lock);
}

static void cb_disabled(uint64_t id, int32_t reason, void *ud)
{
	(void)id; (void)reason;
	rt *t = ud;
	pthread_mutex_lock(&t->lock);
	t->disabled_cbs++;
	pthread_mutex_unlock(&t->lock);
}

static int tr_send(const flaghook_request *rq, flaghook_response *rs, void *ud)
{
	rt *t = ud;
	int k = ep_index(rq->url);
	pthread_mutex_lock(&t->lock);
	int nth = ++t->sends[k];
	if (t->is_disabled[k]) {
		t->sends_to_disabled++;
		anomaly_locked(t, "sent to endpoint e%d after it was disabled", k);
	}
	pthread_mutex_unlock(&t->lock);
	if (t->send)
		return t->send(t, k, nth, rq, rs);
	rs->status = 200;
	return 0;
}

static int64_t fake_clock(void *ud) { return atomic_load(&((rt *)ud)->now_us); }
static void advance_ms(rt *t, int64_t ms) { atomic_fetch_add(&t->now_us, ms * 1000); }

static int inline_submit(void (*job)(void *), void *arg, void *ud)
{
	(void)ud;
	job(arg);
	return 0;
}

static int hook_submit(void (*job)(void *), void *arg, void *ud)
{
	rt *t = ud;
	return t->submit(t, job, arg);
}

static void *cnt_malloc(size_t n, void *ud)
{
	void *p = malloc(n);
	if (p)
		atomic_fetch_add(&((rt *)ud)->live, 1);
	return p;
}

static void *cnt_realloc(void *p, size_t n, void *ud)
{
	void *q = realloc(p, n);
	if (q && !p)
		atomic_fetch_add(&((rt *)ud)->live, 1);
	return q;
}

static void cnt_free(void *p, void *ud)
{
	if (p)
		atomic_fetch_sub(&((rt *)ud)->live, 1);
	free(p);
}

static int snap(rt *t, const int *field)
{
	pthread_mutex_lock(&t->lock);
	int v = *field;
	pthread_mutex_unlock(&t->lock);
	return v;
}

/* ASYNC, the test transport and storage, every callback into the ledger. */
static flaghook_client_options options(rt *t)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.on_result = cb_result;
	o.on_attempt = cb_attempt;
	o.on_endpoint_disabled = cb_disabled;
	o.user_data = t;
	return o;
}

static flaghook_client *client(rt *t, flaghook_client_options *o)
{
	flaghook_transport tr = FLAGHOOK_TRANSPORT_INIT;
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	tr.send = tr_send;
	tr.user_data = t;
	st.put = st_put;
	st.record = st_record;
	st.user_data = t;
	o->transport = &tr;
	o->storage = &st;
	flaghook_client *c = NULL;
	if (flaghook_client_new(&c, o))
		fail_msg("client_new: %s", flaghook_last_error());
	o->transport = NULL;
	o->storage = NULL;
	t->c = c;
	return c;
}

/* TICK timers on the fake clock, jobs run inline. */
static flaghook_client *tick_client(rt *t, flaghook_client_options *o)
{
	static const flaghook_executor inline_exec = { FLAGHOOK_EXECUTOR_VERSION, inline_submit, NULL };
	o->timers = FLAGHOOK_TIMERS_TICK;
	o->clock = fake_clock;
	if (!o->executor)
		o->executor = &inline_exec;
	return client(t, o);
}

static uint64_t add_ep(flaghook_client *c, int k, int64_t scope_id, int fifo)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:9/e%d", k);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = scope_id;
	e.url = url;
	e.fifo = fifo;
	uint64_t id = 0;
	if (flaghook_endpoint_add(c, &id, &e))
		fail_msg("endpoint_add: %s", flaghook_last_error());
	return id;
}

static flaghook_endpoint_stats stats(flaghook_client *c, uint64_t id)
{
	flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
	assert_int_equal(flaghook_endpoint_stats_get(c, id, &st), 0);
	return st;
}

static void disable(rt *t, int k, uint64_t id)
{
	pthread_mutex_lock(&t->lock);
	t->is_disabled[k] = 1;
	pthread_mutex_unlock(&t->lock);
	assert_int_equal(flaghook_endpoint_set_enabled(t->c, id, 0), 0);
}

static const flaghook_event *event_for(flaghook_event *ev, int64_t env)
{
	*ev = *fh_sample_environment();
	ev->environment_id = env;
	return ev;
}

/* Every delivery put once has exactly one final record and exactly one
 * on_result, with the same outcome, and no RETRY recorded after it; nothing
 * was recorded or reported that was not put.  Returns the deliveries. */
static int check_ledger(rt *t)
{
	pthread_mutex_lock(&t->lock);
	int n = 0, bad = 0;
	char why[256] = "";
	for (uint64_t id = 1; id <= t->max_id; id++) {
		dl *e = &t->d[id];
		if (!e->puts)
			continue;
		n++;
		if (e->finals != 1 || e->results != 1 || e->retry_after_final ||
		    e->final_outcome != e->result_outcome) {
			if (!bad++)
				snprintf(why, sizeof(why),
				         "delivery %llu (endpoint %llu): %d final records, %d results, "
				         "%d RETRY after final, record outcome %d, result outcome %d",
				         (unsigned long long)id, (unsigned long long)e->endpoint_id, e->finals,
				         e->results, e->retry_after_final, e->final_outcome, e->result_outcome);
		}
	}
	int anomalies = t->anomalies, puts = t->puts, results = t->results;
	char note[256];
	snprintf(note, sizeof(note), "%s", t->note);
	pthread_mutex_unlock(&t->lock);
	if (anomalies)
		fail_msg("%d anomalies; the first: %s", anomalies, note);
	if (bad)
		fail_msg("%d deliveries not one to one; the first: %s", bad, why);
	assert_int_equal(n, puts);
	assert_int_equal(results, puts);
	return n;
}

/* Runs fn(arg) on a thread; fails the test when it takes over `ms` (a
 * defect that hangs must fail, not stall `make check`).  The thread says
 * it is done on a condition variable timed on the monotonic clock (a step
 * of the wall clock neither cuts the wait short nor stretches it), then
 * is joined: a plain join, which ThreadSanitizer understands, unlike
 * pthread_clockjoin_np. */
typedef struct bounded {
	void *(*fn)(void *);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
} bounded;

static void *bounded_main(void *p)
{
	bounded *b = p;
	b->fn(b->arg);
	pthread_mutex_lock(&b->lock);
	b->done = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void run_bounded(void *(*fn)(void *), void *arg, int ms, const char *what)
{
	/* On the heap: a thread left running past a failure still owns it. */
	bounded *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	b->fn = fn;
	b->arg = arg;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bounded_main, b), 0);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	while (!b->done && pthread_cond_timedwait(&b->cond, &b->lock, &ts) != ETIMEDOUT)
		;
	bool done = b->done;
	pthread_mutex_unlock(&b->lock);
	if (!done) {
		pthread_detach(th);
		fail_msg("%s did not return within %d ms", what, ms);
	}
	pthread_join(th, NULL);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* ---- 1. a retry is recorded and reported before it goes back on the heap ---- */

static int fail_first(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)t; (void)ep; (void)rq;
	if (nth == 1) {
		rs->status = 0;
		rs->errclass = FLAGHOOK_ERRCLASS_CONNECT;
	} else {
		rs->status = 200;
	}
	return 0;
}

/* The first attempt fails and its RETRY record is slow; the retry is due at
 * once.  Before the fix another pool thread ran and freed the job while the
 * first still recorded it (use after free), and the store got RETRY after
 * DELIVERED. */
static void test_retry_recorded_before_requeue(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	t->send = fail_first;
	t->retry_record_sleep_ms = 100;
	static const int64_t now[] = { 0 };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.schedule_ms = now;
	p.schedule_count = 1;
	flaghook_client_options o = options(t);
	o.retry = &p;
	o.threads = 8; /* idle threads to run the retry at once */
	flaghook_client *c = client(t, &o);
	enum { N = 4 };
	uint64_t id[N];
	for (int k = 0; k < N; k++)
		id[k] = add_ep(c, k, 1, 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(check_ledger(t), N);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_DELIVERED], N);
	assert_int_equal(snap(t, &t->attempts), 2 * N);
	for (int k = 0; k < N; k++) {
		assert_int_equal(t->sends[k], 2);
		flaghook_endpoint_stats st = stats(c, id[k]);
		assert_int_equal(st.delivered, 1);
		assert_int_equal(st.retried, 1);
		assert_int_equal(st.queued + st.in_flight, 0);
	}
	flaghook_client_free(c);
	check_ledger(t); /* nothing more came after flush returned */
	assert_int_equal(snap(t, &t->attempts), 2 * N);
	rt_free(t);
}

/* ---- 2. disabling while retries are being recorded ---- */

static int always_refused(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)t; (void)ep; (void)nth; (void)rq;
	rs->status = 0;
	rs->errclass = FLAGHOOK_ERRCLASS_CONNECT;
	return 0;
}

/* Each delivery's first attempt fails; the endpoint is disabled while the
 * RETRY is being recorded.  Every delivery ends once, given up, and nothing
 * more is sent.  Before the fix the disable gave up a job the attempt
 * thread still used (use after free; RETRY recorded after GAVE_UP). */
static void test_disable_during_retry(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	t->send = always_refused;
	t->retry_record_sleep_ms = 150;
	/* Flagsmith's policy, with its retry an hour away instead of 2 s: it
	 * must not come due before the disable below, however slow the
	 * machine. */
	static const int64_t hour[] = { 3600 * 1000 };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_FLAGSMITH;
	p.schedule_ms = hour;
	p.schedule_count = 1;
	flaghook_client_options o = options(t);
	o.retry = &p;
	o.threads = 8;
	o.max_in_flight = 4;
	flaghook_client *c = client(t, &o);
	uint64_t id = add_ep(c, 0, 1, 0);
	enum { N = 3 };
	for (int i = 0; i < N; i++)
		assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	/* All three first attempts are done and their RETRYs being recorded. */
	WAIT_UNTIL(atomic_load(&t->retry_recording) == N, 60000);
	assert_int_equal(atomic_load(&t->retry_recording), N);
	disable(t, 0, id);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(snap(t, &t->attempts), N); /* flush returns after every callback */
	assert_int_equal(check_ledger(t), N);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_GAVE_UP], N);
	assert_int_equal(t->sends_to_disabled, 0);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.disabled, 1);
	assert_int_equal(st.gave_up, N);
	assert_int_equal(st.queued + st.in_flight, 0);
	flaghook_client_free(c);
	assert_int_equal(check_ledger(t), N); /* nothing more came after flush returned */
	assert_int_equal(t->sends_to_disabled, 0);
	rt_free(t);
}

/* ---- 3. disabling takes every waiting retry out of the heap ---- */

typedef struct heapscan { int call; } heapscan;

static int retry_after_script(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)ep; (void)nth; (void)rq;
	static const char *const ra[] = { "1", "50", "5", "60", "70", "6" };
	heapscan *h = t->extra;
	if (h->call < 6) {
		rs->status = 503;
		snprintf(rs->retry_after, sizeof(rs->retry_after), "%s", ra[h->call++]);
	} else {
		rs->status = 200;
	}
	return 0;
}

/* Six retries in the heap (due 1, 50, 5, 60, 70, 6 s), two of them for A.
 * Removing A's one by one moved the last entry behind the scan: before the
 * fix one of A's stayed queued and was later sent to the disabled A. */
static void test_disable_heap_scan(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	heapscan h = { 0 };
	t->extra = &h;
	t->send = retry_after_script;
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.jitter_percent = -1;
	flaghook_client_options o = options(t);
	o.retry = &p;
	o.breaker_threshold = -1;
	flaghook_client *c = tick_client(t, &o);
	uint64_t ido = add_ep(c, 0, 1, 0);
	uint64_t ida = add_ep(c, 1, 2, 0);
	flaghook_event ev;
	static const int64_t envs[] = { 1, 1, 1, 2, 1, 2 };
	for (int i = 0; i < 6; i++)
		assert_int_equal(flaghook_emit(c, event_for(&ev, envs[i])), 0);
	assert_int_equal(stats(c, ida).queued, 2);
	assert_int_equal(stats(c, ido).queued, 4);
	disable(t, 1, ida);
	flaghook_endpoint_stats sa = stats(c, ida);
	assert_int_equal(sa.queued, 0);
	assert_int_equal(sa.gave_up, 2);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_GAVE_UP], 2);
	atomic_store(&t->now_us, 100 * 1000000LL);
	assert_int_equal(flaghook_tick(c, NULL), 0);
	assert_int_equal(flaghook_flush(c, 30000), 0);
	assert_int_equal(t->sends_to_disabled, 0);
	assert_int_equal(t->sends[1], 2);
	assert_int_equal(t->sends[0], 8);
	assert_int_equal(check_ledger(t), 6);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_DELIVERED], 4);
	assert_int_equal(stats(c, ido).delivered, 4);
	assert_int_equal(stats(c, ida).delivered, 0);
	flaghook_client_free(c);
	rt_free(t);
}

/* ---- 4. deliveries routed just before a disable are not sent ---- */

static int disable_in_put_once;

static void disable_during_put(rt *t)
{
	if (disable_in_put_once) {
		disable_in_put_once = 0;
		uint64_t *id = t->extra;
		disable(t, 0, *id);
	}
}

static int refuse_and_disable(rt *t, void (*job)(void *), void *arg)
{
	uint64_t *id = t->extra;
	if (id[1]) { /* the first submission: disable, then refuse */
		id[1] = 0;
		disable(t, 0, id[0]);
		return -1;
	}
	job(arg);
	return 0;
}

/* The endpoint is disabled between routing and queueing (here: while
 * storage records the new delivery), or while the executor refuses the
 * job.  Before the fix the delivery was queued anyway and sent to the
 * disabled endpoint; now it is given up through the one finishing path. */
static void test_disabled_between_route_and_send(void **state)
{
	(void)state;
	/* Disabled while storage puts it. */
	rt *t = rt_new(64);
	uint64_t id;
	t->extra = &id;
	t->on_put = disable_during_put;
	flaghook_client_options o = options(t);
	flaghook_client *c = tick_client(t, &o);
	id = add_ep(c, 0, 1, 0);
	disable_in_put_once = 1;
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_flush(c, 30000), 0);
	assert_int_equal(t->sends[0], 0);
	assert_int_equal(check_ledger(t), 1);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_GAVE_UP], 1);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.gave_up, 1);
	assert_int_equal(st.queued + st.in_flight, 0);
	flaghook_client_free(c);
	rt_free(t);

	/* Disabled while the executor refuses it. */
	t = rt_new(64);
	uint64_t ids[2] = { 0, 1 };
	t->extra = ids;
	t->submit = refuse_and_disable;
	flaghook_executor x = FLAGHOOK_EXECUTOR_INIT;
	x.submit = hook_submit;
	x.user_data = t;
	o = options(t);
	o.executor = &x;
	c = tick_client(t, &o);
	ids[0] = add_ep(c, 0, 1, 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	advance_ms(t, 1000);
	assert_int_equal(flaghook_tick(c, NULL), 0);
	assert_int_equal(flaghook_flush(c, 30000), 0);
	assert_int_equal(t->sends[0], 0);
	assert_int_equal(check_ledger(t), 1);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_GAVE_UP], 1);
	st = stats(c, ids[0]);
	assert_int_equal(st.gave_up, 1);
	assert_int_equal(st.queued + st.in_flight, 0);
	flaghook_client_free(c);
	rt_free(t);
}

/* ---- 5. no circuit timer is armed after shutdown emptied the heap ---- */

static int fail_after_cancel(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)ep; (void)nth;
	atomic_int *in_send = t->extra;
	atomic_store(in_send, 1);
	if (!rq->cancelled) {
		pthread_mutex_lock(&t->lock);
		anomaly_locked(t, "an ASYNC request without a cancel poll");
		pthread_mutex_unlock(&t->lock);
	}
	/* The reply arrives after shutdown began: an HTTP failure. */
	for (int64_t end = mono_ms() + 60000; rq->cancelled && !rq->cancelled(rq->cancel_ctx) && mono_ms() < end;)
		sleep_ms(1);
	rs->status = 500;
	return 0;
}

/* A 500 that arrives after shutdown started used to trip the breaker and
 * push a timer (holding an endpoint reference) onto the emptied heap: the
 * endpoint leaked.  A counting allocator sees every block come back. */
static void test_no_breaker_timer_after_abort(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	atomic_int in_send = 0;
	t->extra = &in_send;
	t->send = fail_after_cancel;
	flaghook_allocator a = FLAGHOOK_ALLOCATOR_INIT;
	a.malloc = cnt_malloc;
	a.realloc = cnt_realloc;
	a.free = cnt_free;
	a.user_data = t;
	flaghook_client_options o = options(t);
	o.allocator = &a;
	o.breaker_threshold = 1;
	o.shutdown_timeout_ms = -1;
	flaghook_client *c = client(t, &o);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = "http://127.0.0.1:9/e0";
	e.secret = "topsecret";
	e.secret_len = 9;
	uint64_t id;
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	WAIT_UNTIL(atomic_load(&in_send), 60000);
	assert_true(atomic_load(&in_send));
	flaghook_client_free(c);
	assert_int_equal(atomic_load(&t->live), 0);
	assert_int_equal(check_ledger(t), 1);
	rt_free(t);
}

/* ---- 6. an emit from on_result while shutdown abandons ---- */

typedef struct cbemit {
	uint64_t ida;
	atomic_int state;          /* 0, 1: on_result is emitting, 2: its put began */
	atomic_int abandoned_seen;
	int rc;
	flaghook_event ev;
} cbemit;

static int a_ok_b_refused(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)t; (void)nth; (void)rq;
	if (ep == 1) {
		rs->status = 0;
		rs->errclass = FLAGHOOK_ERRCLASS_CONNECT;
	} else {
		rs->status = 200;
	}
	return 0;
}

static void emit_from_result(rt *t, const flaghook_result *r)
{
	cbemit *x = t->extra;
	if (r->outcome == FLAGHOOK_OUTCOME_ABANDONED)
		atomic_store(&x->abandoned_seen, 1);
	int zero = 0;
	if (r->endpoint_id == x->ida && r->outcome == FLAGHOOK_OUTCOME_DELIVERED &&
	    atomic_compare_exchange_strong(&x->state, &zero, 1))
		x->rc = flaghook_emit(t->c, event_for(&x->ev, 1));
}

/* The callback's emit is in storage.put when shutdown abandons everything:
 * it waits until shutdown reports the waiting retry as abandoned. */
static void put_waits_for_abandon(rt *t)
{
	cbemit *x = t->extra;
	int one = 1;
	if (atomic_compare_exchange_strong(&x->state, &one, 2))
		WAIT_UNTIL(atomic_load(&x->abandoned_seen), 60000);
}

/* on_result may emit.  One that passed the closing check before
 * flaghook_client_free began, and reached the queue after shutdown had
 * abandoned everything, was never run nor reported (and leaked). */
static void test_emit_from_result_during_shutdown(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	cbemit x;
	memset(&x, 0, sizeof(x));
	x.rc = -99;
	t->extra = &x;
	t->send = a_ok_b_refused;
	t->on_final = emit_from_result;
	t->on_put = put_waits_for_abandon;
	static const int64_t hour[] = { 3600 * 1000 };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.schedule_ms = hour;
	p.schedule_count = 1;
	p.jitter_percent = -1;
	flaghook_client_options o = options(t);
	o.retry = &p;
	o.shutdown_timeout_ms = -1;
	flaghook_client *c = client(t, &o);
	x.ida = add_ep(c, 0, 1, 0);
	uint64_t idb = add_ep(c, 1, 2, 0);
	flaghook_event ev;
	/* B's delivery fails and waits an hour: shutdown will abandon it. */
	assert_int_equal(flaghook_emit(c, event_for(&ev, 2)), 0);
	WAIT_UNTIL(stats(c, idb).queued == 1 && stats(c, idb).in_flight == 0, 60000);
	assert_int_equal(stats(c, idb).queued, 1);
	/* A's is delivered; its on_result emits again, and that emit's put
	 * is still running when client_free starts. */
	assert_int_equal(flaghook_emit(c, event_for(&ev, 1)), 0);
	WAIT_UNTIL(atomic_load(&x.state) == 2, 60000);
	assert_int_equal(atomic_load(&x.state), 2);
	flaghook_client_free(c);
	assert_int_equal(x.rc, 0);
	assert_int_equal(check_ledger(t), 3);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_DELIVERED], 1);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_ABANDONED], 2);
	rt_free(t);
}

/* ---- 7. flaghook_flush(c, INT64_MAX) waits ---- */

static int slow_ok(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)ep; (void)nth; (void)rq;
	sleep_ms(*(int *)t->extra);
	rs->status = 200;
	return 0;
}

typedef struct flush_job { flaghook_client *c; int rc; int64_t ms; } flush_job;

static void *flush_forever(void *arg)
{
	flush_job *f = arg;
	int64_t t0 = mono_ms();
	f->rc = flaghook_flush(f->c, INT64_MAX);
	f->ms = mono_ms() - t0;
	return NULL;
}

/* INT64_MAX ms overflowed into a deadline in the past: ETIMEOUT at once. */
static void test_flush_int64_max_waits(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	int delay = 150;
	t->extra = &delay;
	t->send = slow_ok;
	flaghook_client_options o = options(t);
	flaghook_client *c = client(t, &o);
	add_ep(c, 0, 1, 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	flush_job f = { c, -99, 0 };
	run_bounded(flush_forever, &f, 60000, "flaghook_flush(INT64_MAX)");
	assert_int_equal(f.rc, 0);
	assert_true(f.ms >= 50);
	assert_int_equal(check_ledger(t), 1);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_DELIVERED], 1);
	/* Nothing pending: at once. */
	run_bounded(flush_forever, &f, 60000, "flaghook_flush(INT64_MAX)");
	assert_int_equal(f.rc, 0);
	flaghook_client_free(c);
	rt_free(t);
}

/* ---- 8. huge millisecond settings mean "never" ---- */

static int always_500(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)t; (void)ep; (void)nth; (void)rq;
	rs->status = 500;
	return 0;
}

/* disable_after_ms * 1000 overflowed negative: the first failure disabled
 * the endpoint. */
static void test_huge_disable_after_means_never(void **state)
{
	(void)state;
	static const int64_t values[] = { INT64_MAX / 1000 + 1, INT64_MAX };
	for (size_t v = 0; v < 2; v++) {
		rt *t = rt_new(64);
		t->send = always_500;
		static const int64_t minute[] = { 60 * 1000 };
		flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
		p.kind = FLAGHOOK_RETRY_STANDARD;
		p.schedule_ms = minute;
		p.schedule_count = 1;
		p.max_attempts = 100;
		p.jitter_percent = -1;
		flaghook_client_options o = options(t);
		o.retry = &p;
		o.disable_after_ms = values[v];
		o.breaker_threshold = -1;
		o.shutdown_timeout_ms = -1;
		flaghook_client *c = tick_client(t, &o);
		uint64_t id = add_ep(c, 0, 1, 0);
		assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
		for (int i = 0; i < 10; i++) {
			advance_ms(t, 3600 * 1000); /* ten hours of failing */
			assert_int_equal(flaghook_tick(c, NULL), 0);
		}
		assert_int_equal(snap(t, &t->disabled_cbs), 0);
		flaghook_endpoint_stats st = stats(c, id);
		assert_int_equal(st.disabled, 0);
		assert_int_equal(st.consecutive_failures, 11);
		assert_int_equal(st.queued, 1);
		assert_int_equal(t->sends[0], 11);
		flaghook_client_free(c);
		assert_int_equal(check_ledger(t), 1);
		assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_ABANDONED], 1);
		rt_free(t);
	}
}

/* A retry wait and a breaker cooldown of INT64_MAX ms overflowed into
 * "due already": the retry and a probe went out on the next tick. */
static void test_huge_waits_mean_never(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	t->send = always_500;
	static const int64_t forever[] = { INT64_MAX };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.schedule_ms = forever;
	p.schedule_count = 1;
	p.jitter_percent = -1;
	flaghook_client_options o = options(t);
	o.retry = &p;
	o.breaker_threshold = 1;
	o.breaker_cooldown_ms = INT64_MAX;
	o.shutdown_timeout_ms = -1;
	flaghook_client *c = tick_client(t, &o);
	uint64_t id = add_ep(c, 0, 1, 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0); /* behind the open circuit */
	assert_int_equal(t->sends[0], 1);
	int64_t next = 0;
	assert_int_equal(flaghook_tick(c, &next), 0);
	assert_true(next > 100LL * 365 * 24 * 3600 * 1000); /* more than a century */
	for (int i = 0; i < 10; i++) {
		advance_ms(t, 10LL * 365 * 24 * 3600 * 1000); /* a decade */
		assert_int_equal(flaghook_tick(c, NULL), 0);
	}
	assert_int_equal(t->sends[0], 1);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.breaker_open, 1);
	assert_int_equal(st.queued, 2);
	flaghook_client_free(c);
	assert_int_equal(check_ledger(t), 2);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_ABANDONED], 2);
	rt_free(t);
}

/* ---- 9. emit_wait_ms huge with a full queue waits, without spinning ---- */

typedef struct waiter {
	flaghook_client *c;
	int rc[4];
	int64_t wall_us, cpu_us;
} waiter;

static void *emit_four(void *arg)
{
	waiter *w = arg;
	int64_t t0 = mono_ms() * 1000, c0 = thread_cpu_us();
	for (int i = 0; i < 4; i++)
		w->rc[i] = flaghook_emit(w->c, fh_sample_environment());
	w->cpu_us = thread_cpu_us() - c0;
	w->wall_us = mono_ms() * 1000 - t0;
	return NULL;
}

/* emit_wait_ms of 1e16 overflowed when converted: emit returned EFULL at
 * once, or spun holding the engine lock. */
static void test_emit_wait_huge_blocks(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	int delay = 60;
	t->extra = &delay;
	t->send = slow_ok;
	flaghook_client_options o = options(t);
	o.max_pending = 1;
	o.emit_wait_ms = 10000000000000000LL;
	flaghook_client *c = client(t, &o);
	add_ep(c, 0, 1, 0);
	waiter w = { c, { -99, -99, -99, -99 }, 0, 0 };
	run_bounded(emit_four, &w, 60000, "four emits into a queue of one");
	for (int i = 0; i < 4; i++)
		assert_int_equal(w.rc[i], 0);
	print_message("four emits: %lld ms waiting, %lld ms on the CPU\n",
	              (long long)(w.wall_us / 1000), (long long)(w.cpu_us / 1000));
	assert_true(w.wall_us >= 3 * 40 * 1000); /* each waited for a slot */
	assert_true(w.cpu_us < w.wall_us / 2);    /* asleep, not spinning */
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(check_ledger(t), 4);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_DELIVERED], 4);
	flaghook_client_free(c);
	rt_free(t);
}

/* ---- 10. routing while endpoints are enabled and disabled ---- */

typedef struct route {
	flaghook_client *c;
	uint64_t ids[MAX_EPS];
	atomic_int stop;
	uint32_t seen;              /* endpoints reported by the current emit */
	int per_emit, max_per_emit, bad_endpoint, twice, bad_rc, results;
} route;

static int route_send(const flaghook_request *rq, flaghook_response *rs, void *ud)
{
	(void)rq; (void)ud;
	rs->status = 200;
	return 0;
}

static int null_put(flaghook_delivery *d, size_t n, void *ud)
{
	(void)ud;
	for (size_t i = 0; i < n; i++)
		d[i].id = i + 1, d[i].claimed = 1;
	return 0;
}
static int null_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	(void)d; (void)a; (void)ud;
	return 0;
}

/* SYNC mode: on the emitting thread, before emit returns. */
static void route_result(const flaghook_result *r, void *ud)
{
	route *x = ud;
	x->results++;
	int k = -1;
	for (int i = 0; i < MAX_EPS; i++)
		if (x->ids[i] == r->endpoint_id)
			k = i;
	if (k < 0) {
		x->bad_endpoint++;
		return;
	}
	if (x->seen & (1u << k))
		x->twice++;
	x->seen |= 1u << k;
	x->per_emit++;
}

static void *toggle_all(void *arg)
{
	route *x = arg;
	unsigned n = 0;
	while (!atomic_load(&x->stop)) {
		n++;
		flaghook_endpoint_set_enabled(x->c, x->ids[n % MAX_EPS], (n / MAX_EPS) & 1);
	}
	return NULL;
}

/* Routing counted the enabled endpoints, allocated, then matched again:
 * an endpoint enabled in between overflowed the list, one disabled left a
 * NULL in it.  Now each emit reports only registered endpoints, each once. */
static void test_route_while_toggling(void **state)
{
	(void)state;
	route *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	flaghook_transport tr = FLAGHOOK_TRANSPORT_INIT;
	tr.send = route_send;
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	st.put = null_put;
	st.record = null_record;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */ /* SYNC */
	o.transport = &tr;
	o.storage = &st;
	o.on_result = route_result;
	o.user_data = x;
	assert_int_equal(flaghook_client_new(&x->c, &o), 0);
	for (int i = 0; i < MAX_EPS; i++)
		x->ids[i] = add_ep(x->c, i, 1, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, toggle_all, x), 0);
	int64_t end = mono_ms() + (SANITIZED ? 800 : 1000);
	long emits = 0;
	while (emits < 200000 && (emits % 256 || mono_ms() < end)) {
		x->seen = 0;
		x->per_emit = 0;
		if (flaghook_emit(x->c, fh_sample_environment()))
			x->bad_rc++;
		if (x->per_emit > x->max_per_emit)
			x->max_per_emit = x->per_emit;
		emits++;
	}
	atomic_store(&x->stop, 1);
	pthread_join(th, NULL);
	print_message("%ld emits, %d results while toggling\n", emits, x->results);
	assert_int_equal(x->bad_endpoint, 0);
	assert_int_equal(x->twice, 0);
	assert_int_equal(x->bad_rc, 0);
	assert_true(x->max_per_emit <= MAX_EPS);
	assert_true(x->results > 0);
	flaghook_client_free(x->c);
	free(x);
}

/* ---- 11. enabling releases a FIFO delivery held behind the circuit ---- */

static int fail_once_503(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)t; (void)ep; (void)rq;
	rs->status = nth == 1 ? 503 : 200;
	return 0;
}

/* The FIFO retry, due before the circuit's cooldown ended, was held until
 * just after it (a fake 1000 s away); enabling closed the circuit but left
 * the delivery waiting there. */
static void test_fifo_enable_releases_held(void **state)
{
	(void)state;
	rt *t = rt_new(64);
	atomic_store(&t->now_us, 0);
	t->send = fail_once_503;
	static const int64_t ms1[] = { 1 };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.jitter_percent = -1;
	p.schedule_ms = ms1;
	p.schedule_count = 1;
	flaghook_client_options o = options(t);
	o.retry = &p;
	o.breaker_threshold = 1;
	o.breaker_cooldown_ms = 1000000;
	flaghook_client *c = tick_client(t, &o);
	uint64_t id = add_ep(c, 0, 1, 1);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.breaker_open, 1);
	assert_int_equal(st.queued, 1);
	int64_t next;
	advance_ms(t, 2);
	assert_int_equal(flaghook_tick(c, &next), 0);
	assert_int_equal(t->sends[0], 1); /* held behind the open circuit */
	assert_true(next > 900000);
	assert_int_equal(flaghook_endpoint_set_enabled(c, id, 1), 0);
	assert_int_equal(flaghook_tick(c, &next), 0);
	assert_int_equal(t->sends[0], 2);
	st = stats(c, id);
	assert_int_equal(st.breaker_open, 0);
	assert_int_equal(st.queued + st.in_flight, 0);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(check_ledger(t), 1);
	assert_int_equal(t->outcomes[FLAGHOOK_OUTCOME_DELIVERED], 1);
	flaghook_client_free(c);
	rt_free(t);
}

/* ---- 12. a bounded randomized stress ---- */

enum { POOL, INLINE, REFUSING };

typedef struct stress {
	rt *t;
	flaghook_client *c;
	uint64_t eps[3];
	int executor;
	int64_t end_ms;
	atomic_int stop, emits;
	int max_emits;
	int other_rc;
} stress;

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static _Thread_local unsigned thread_seed;

static unsigned trnd(void)
{
	if (!thread_seed)
		thread_seed = (unsigned)(uintptr_t)&thread_seed | 1u;
	return rnd(&thread_seed);
}

static int random_reply(rt *t, int ep, int nth, const flaghook_request *rq, flaghook_response *rs)
{
	(void)ep; (void)nth; (void)rq;
	stress *s = t->extra;
	unsigned r = trnd() % 100;
	if (s->executor == POOL && trnd() % 4 == 0)
		usleep(trnd() % 2000);
	if (r < 40) {
		rs->status = 200;
	} else if (r < 60) {
		rs->status = 0;
		rs->errclass = FLAGHOOK_ERRCLASS_CONNECT;
	} else if (r < 80) {
		rs->status = 503;
		if (r < 65)
			snprintf(rs->retry_after, sizeof(rs->retry_after), "0");
	} else if (r < 82) {
		rs->status = 410;
	} else {
		rs->status = 500;
	}
	return 0;
}

/* Refuses half the jobs while the emitters and the toggler run; a refused
 * job waits 50 ms, so the drain afterwards (FIFO, one at a time) takes
 * them all. */
static int maybe_refuse(rt *t, void (*job)(void *), void *arg)
{
	stress *s = t->extra;
	if (!atomic_load(&s->stop) && trnd() % 2)
		return -1;
	job(arg);
	return 0;
}

static void *stress_emitter(void *arg)
{
	stress *s = arg;
	while (mono_ms() < s->end_ms && atomic_fetch_add(&s->emits, 1) < s->max_emits) {
		int rc = flaghook_emit(s->c, fh_sample_environment());
		if (rc && rc != FLAGHOOK_EFULL) {
			pthread_mutex_lock(&s->t->lock);
			s->other_rc = rc;
			pthread_mutex_unlock(&s->t->lock);
		}
		usleep(200); /* spread over the budget, while attempts run */
	}
	return NULL;
}

static void *stress_toggler(void *arg)
{
	stress *s = arg;
	unsigned seed = 7;
	while (!atomic_load(&s->stop)) {
		int k = (int)(rnd(&seed) % 3);
		flaghook_endpoint_set_enabled(s->c, s->eps[k], rnd(&seed) % 4 != 0);
		flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
		flaghook_endpoint_stats_get(s->c, s->eps[k], &st);
		usleep(1000);
	}
	return NULL;
}

/* Four emitters and a toggler against three endpoints (FIFO, parallel,
 * flagsmith policy) that answer at random: 200, connect failures, 503 with
 * and without Retry-After, 410, 500.  Afterwards every delivery has one
 * final record and one on_result that agree, no RETRY after its final, one
 * on_attempt per send, and the counters add up. */
static void run_stress(int executor, int shutdown, int budget_ms)
{
	stress s;
	memset(&s, 0, sizeof(s));
	s.executor = executor;
	s.max_emits = 12000;
	s.t = rt_new(3 * (size_t)s.max_emits + 64);
	rt *t = s.t;
	t->extra = &s;
	t->send = random_reply;
	t->submit = maybe_refuse;
	static const int64_t sched[] = { 0, 1, 3 };
	flaghook_retry_policy rp = FLAGHOOK_RETRY_POLICY_INIT;
	rp.kind = FLAGHOOK_RETRY_STANDARD;
	rp.schedule_ms = sched;
	rp.schedule_count = 3;
	rp.max_attempts = 4;
	rp.jitter_percent = -1;
	flaghook_retry_policy rf = rp;
	rf.kind = FLAGHOOK_RETRY_FLAGSMITH;
	flaghook_executor inl = { FLAGHOOK_EXECUTOR_VERSION, inline_submit, NULL };
	flaghook_executor ref = { FLAGHOOK_EXECUTOR_VERSION, hook_submit, t };
	flaghook_client_options o = options(t);
	o.retry = &rp;
	o.breaker_threshold = 2;
	o.breaker_cooldown_ms = 5;
	o.max_pending = 400;
	o.emit_wait_ms = 1000;
	o.shutdown_timeout_ms = shutdown ? 20 : 0;
	o.executor = executor == INLINE ? &inl : executor == REFUSING ? &ref : NULL;
	s.c = client(t, &o);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	const char *urls[] = { "http://127.0.0.1:9/e0", "http://127.0.0.1:9/e1", "http://127.0.0.1:9/e2" };
	for (int k = 0; k < 3; k++) {
		e.url = urls[k];
		e.fifo = k == 0;
		e.max_in_flight = k ? 3 : 0;
		e.retry = k == 2 ? &rf : NULL;
		assert_int_equal(flaghook_endpoint_add(s.c, &s.eps[k], &e), 0);
	}
	int64_t t0 = mono_ms();
	s.end_ms = t0 + budget_ms;
	pthread_t th[5];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, stress_emitter, &s), 0);
	assert_int_equal(pthread_create(&th[4], NULL, stress_toggler, &s), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	atomic_store(&s.stop, 1);
	pthread_join(th[4], NULL);
	for (int k = 0; k < 3; k++)
		assert_int_equal(flaghook_endpoint_set_enabled(s.c, s.eps[k], 1), 0);
	int64_t t1 = mono_ms();
	if (shutdown) {
		flaghook_client_free(s.c);
		s.c = NULL;
	} else {
		assert_int_equal(flaghook_flush(s.c, 30000), 0);
	}
	int n = check_ledger(t);
	assert_int_equal(s.other_rc, 0);
	assert_true(n > 0);
	int sends = t->sends[0] + t->sends[1] + t->sends[2];
	assert_int_equal(snap(t, &t->attempts), sends);
	if (!shutdown) {
		/* Per endpoint, the final outcomes in the ledger are its counters. */
		for (int k = 0; k < 3; k++) {
			int fin = 0;
			pthread_mutex_lock(&t->lock);
			for (uint64_t id = 1; id <= t->max_id; id++)
				fin += t->d[id].puts && t->d[id].endpoint_id == s.eps[k];
			pthread_mutex_unlock(&t->lock);
			flaghook_endpoint_stats st = stats(s.c, s.eps[k]);
			assert_int_equal(st.queued + st.in_flight, 0);
			assert_int_equal(st.delivered + st.gave_up + st.abandoned, (uint64_t)fin);
		}
		flaghook_client_free(s.c);
		check_ledger(t);
	}
	static const char *const names[] = { "pool", "inline", "refusing" };
	print_message("%s%s: %d deliveries (%d delivered, %d gave up, %d abandoned), %d sends, "
	              "%d disables, %lld ms emitting, %lld ms draining\n", names[executor],
	              shutdown ? " + shutdown" : "", n, t->outcomes[0], t->outcomes[2], t->outcomes[3], sends,
	              t->disabled_cbs, (long long)(t1 - t0), (long long)(mono_ms() - t1));
	rt_free(t);
}

static void test_stress_bounded(void **state)
{
	(void)state;
	int budget = SANITIZED ? 400 : 500;
	run_stress(POOL, 0, budget);
	run_stress(INLINE, 0, budget);
	run_stress(REFUSING, 0, budget);
	run_stress(POOL, 1, budget);
	run_stress(INLINE, 1, budget);
}

/* An argument runs only the tests whose names match it ("test_fifo*"). */
int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_recorded_before_requeue),
		cmocka_unit_test(test_disable_during_retry),
		cmocka_unit_test(test_disable_heap_scan),
		cmocka_unit_test(test_disabled_between_route_and_send),
		cmocka_unit_test(test_no_breaker_timer_after_abort),
		cmocka_unit_test(test_emit_from_result_during_shutdown),
		cmocka_unit_test(test_flush_int64_max_waits),
		cmocka_unit_test(test_huge_disable_after_means_never),
		cmocka_unit_test(test_huge_waits_mean_never),
		cmocka_unit_test(test_emit_wait_huge_blocks),
		cmocka_unit_test(test_route_while_toggling),
		cmocka_unit_test(test_fifo_enable_releases_held),
		cmocka_unit_test(test_stress_bounded),
	};
	return cmocka_run_group_tests_name("races", tests, NULL, NULL);
}
