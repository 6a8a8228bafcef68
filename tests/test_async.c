/*
 * Asynchronous delivery against loopback receivers that misbehave on
 * purpose.  Schedules are checked with an injected clock in TICK mode and an
 * inline executor, so hours of retries take no time and every step is
 * deterministic; the rest runs on the built-in pool in real time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "tick.h"
#include "client/policy.h"
#include "sample.h"
#include "vectors.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECRET "async-secret"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- what the callbacks saw ---- */

typedef struct seen {
	pthread_mutex_t lock;
	int results, delivered, gave_up, abandoned, attempts, retries;
	int last_status, last_errclass, last_attempts;
	int disabled_reason;
	uint64_t disabled_id;
	_Atomic int64_t now_us;     /* the fake clock */
} seen;

static void on_result(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->results++;
	s->delivered += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
	s->gave_up += r->outcome == FLAGHOOK_OUTCOME_GAVE_UP;
	s->abandoned += r->outcome == FLAGHOOK_OUTCOME_ABANDONED;
	s->last_status = r->status;
	s->last_errclass = r->errclass;
	s->last_attempts = r->attempts;
	assert_true(r->elapsed_us >= 0);
	assert_non_null(r->error);
	pthread_mutex_unlock(&s->lock);
}

static void on_attempt(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->attempts++;
	s->retries += r->outcome == FLAGHOOK_OUTCOME_RETRY;
	pthread_mutex_unlock(&s->lock);
}

static void on_disabled(uint64_t id, int32_t reason, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->disabled_id = id;
	s->disabled_reason = reason;
	pthread_mutex_unlock(&s->lock);
}

static int64_t fake_clock(void *ud) { return atomic_load(&((seen *)ud)->now_us); }
static void advance_ms(seen *s, int64_t ms) { atomic_fetch_add(&s->now_us, ms * 1000); }

static int inline_submit(void (*job)(void *), void *arg, void *ud)
{
	(void)ud;
	job(arg);
	return 0;
}

static seen *seen_new(void)
{
	seen *s = calloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	atomic_store(&s->now_us, 1000000);
	return s;
}

static void seen_free(seen *s)
{
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int snap(seen *s, int *field)
{
	pthread_mutex_lock(&s->lock);
	int v = *field;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static flaghook_client_options base_options(seen *s)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.on_result = on_result;
	o.on_attempt = on_attempt;
	o.on_endpoint_disabled = on_disabled;
	o.user_data = s;
	o.timeout_ms = 30000; /* cases that need a timeout to fire set their own */
	return o;
}

/* ---- per-case fixtures: torn down even when an assertion fails ---- */

/* A receiver's handler that holds the first `hold` requests (all, when
 * hold < 0) until latch_open: "the reply has not come yet", for as long as
 * the case needs, however slow the machine. */
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
	if (l->hold < 0 || l->seen < l->hold)
		while (!l->open)
			pthread_cond_wait(&l->cond, &l->lock);
	l->seen++;
	pthread_mutex_unlock(&l->lock);
}

static void latch_open(latch *l)
{
	pthread_mutex_lock(&l->lock);
	l->open = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static int latch_is_open(latch *l)
{
	pthread_mutex_lock(&l->lock);
	int open = l->open;
	pthread_mutex_unlock(&l->lock);
	return open;
}

typedef struct fx {
	seen *s;
	flaghook_client *c;
	th_server *srv[2];
	latch l;
	int refused_fd;             /* a socket bound and never listening, or -1 */
} fx;

static seen *seen_new(void);
static void seen_free(seen *s);

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->s = seen_new();
	pthread_mutex_init(&f->l.lock, NULL);
	pthread_cond_init(&f->l.cond, NULL);
	f->refused_fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	latch_open(&f->l);
	flaghook_client_free(f->c);
	for (int i = 0; i < 2; i++)
		th_stop(f->srv[i]);
	if (f->refused_fd >= 0)
		close(f->refused_fd);
	seen_free(f->s);
	pthread_mutex_destroy(&f->l.lock);
	pthread_cond_destroy(&f->l.cond);
	free(f);
	return 0;
}

/* Starts receiver k of the case (stopped by teardown). */
static th_server *srv_start(fx *f, int k, th_handler h, void *ud)
{
	assert_int_equal(th_start(&f->srv[k], h, ud), 0);
	return f->srv[k];
}

/* "http://127.0.0.1:<port>/": a port bound and never listening, held until
 * teardown, so a connection to it is refused (the guard allows loopback
 * here: allow_private). */
static const char *refused_url(fx *f)
{
	static char url[64];
	int port = th_refused_port(&f->refused_fd);
	assert_true(port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	return url;
}

/* Waits up to 60 s for `cond` (then the caller asserts it). */
#define WAIT_UNTIL(cond)                                                       \
	do {                                                                       \
		for (int64_t wu_end_ = mono_ms() + 60000; !(cond) && mono_ms() < wu_end_;) \
			usleep(2000);                                                      \
	} while (0)

/* TICK mode, fake clock, jobs run inline in emit and tick. */
static flaghook_client *tick_client(seen *s, const flaghook_retry_policy *p, flaghook_client_options *extra)
{
	static flaghook_executor inline_exec = { FLAGHOOK_EXECUTOR_VERSION, inline_submit, NULL };
	flaghook_client_options o = extra ? *extra : base_options(s);
	o.timers = FLAGHOOK_TIMERS_TICK;
	o.clock = fake_clock;
	o.executor = &inline_exec;
	o.retry = p;
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &o);
	if (rc)
		fail_msg("client_new: %s", flaghook_last_error());
	return c;
}

static uint64_t add(flaghook_client *c, const char *url, int fifo, const flaghook_retry_policy *p)
{
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = url;
	e.secret = SECRET;
	e.secret_len = strlen(SECRET);
	e.fifo = fifo;
	e.retry = p;
	uint64_t id = 0;
	if (flaghook_endpoint_add(c, &id, &e))
		fail_msg("endpoint_add: %s", flaghook_last_error());
	return id;
}

static void url_of(th_server *s, char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%d%s", th_port(s), path);
}

static flaghook_endpoint_stats stats(flaghook_client *c, uint64_t id)
{
	flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
	assert_int_equal(flaghook_endpoint_stats_get(c, id, &st), 0);
	return st;
}

/* A no-jitter STANDARD policy, on `schedule` (NULL: the standard one). */
static flaghook_retry_policy standard(const int64_t *schedule, size_t count)
{
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.schedule_ms = schedule;
	p.schedule_count = count;
	p.jitter_percent = -1;
	return p;
}

/* A loopback receiver whose first answer is `status`, then 200s. */
static th_server *failing_once(fx *f, int status)
{
	th_server *srv = srv_start(f, 0, NULL, NULL);
	th_reply no[] = { { TH_RESPOND, status, NULL, NULL, 0, 0 } };
	th_script(srv, no, 1);
	return srv;
}

/* ---- policy decisions, pure ---- */

static void test_policy_decisions(void **state)
{
	(void)state;
	fh_policy fs, st;
	assert_int_equal(flaghook__policy_make(&fs, NULL, NULL), 0);
	flaghook_retry_policy sp = FLAGHOOK_RETRY_POLICY_INIT;
	sp.kind = FLAGHOOK_RETRY_STANDARD;
	sp.jitter_percent = -1;
	assert_int_equal(flaghook__policy_make(&st, &sp, NULL), 0);
	int64_t w;
	/* flagsmith: 3 attempts, 2 s then 4 s, transport errors only. */
	assert_int_equal(flaghook__policy_decide(&fs, 1, 0, FLAGHOOK_ERRCLASS_CONNECT, "", 0, 0, &w), FH_RETRY);
	assert_int_equal(w, 2000);
	assert_int_equal(flaghook__policy_decide(&fs, 2, 0, FLAGHOOK_ERRCLASS_TIMEOUT, "", 0, 0, &w), FH_RETRY);
	assert_int_equal(w, 4000);
	assert_int_equal(flaghook__policy_decide(&fs, 3, 0, FLAGHOOK_ERRCLASS_TIMEOUT, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&fs, 1, 500, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&fs, 1, 410, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&fs, 1, 204, 0, "", 0, 0, &w), FH_DELIVERED);
	/* standard: the schedule, what it retries, 410, 3xx. */
	static const int64_t want[] = { 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000 };
	for (int a = 1; a <= 7; a++) {
		assert_int_equal(flaghook__policy_decide(&st, a, 503, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_RETRY);
		assert_int_equal(w, want[a - 1]);
	}
	assert_int_equal(flaghook__policy_decide(&st, 8, 503, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&st, 1, 408, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_RETRY);
	assert_int_equal(flaghook__policy_decide(&st, 1, 429, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_RETRY);
	assert_int_equal(flaghook__policy_decide(&st, 1, 0, FLAGHOOK_ERRCLASS_RECV, "", 0, 0, &w), FH_RETRY);
	assert_int_equal(flaghook__policy_decide(&st, 1, 400, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&st, 1, 301, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&st, 1, 410, FLAGHOOK_ERRCLASS_HTTP, "", 0, 0, &w), FH_GONE);
	/* The guard's refusal is final under every policy. */
	assert_int_equal(flaghook__policy_decide(&st, 1, 0, FLAGHOOK_ERRCLASS_REFUSED, "", 0, 0, &w), FH_GIVE_UP);
	assert_int_equal(flaghook__policy_decide(&fs, 1, 0, FLAGHOOK_ERRCLASS_REFUSED, "", 0, 0, &w), FH_GIVE_UP);
	/* Retry-After: seconds, an HTTP date, capped, junk ignored. */
	assert_int_equal(flaghook__policy_decide(&st, 1, 429, FLAGHOOK_ERRCLASS_HTTP, "120", 0, 0, &w), FH_RETRY);
	assert_int_equal(w, 120000);
	assert_int_equal(flaghook__policy_decide(&st, 1, 429, FLAGHOOK_ERRCLASS_HTTP, "86400", 0, 0, &w), FH_RETRY);
	assert_int_equal(w, 3600000);
	int64_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
	assert_int_equal(flaghook__retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
	assert_int_equal(flaghook__retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
	assert_int_equal(flaghook__retry_after_ms("soon", now), -1);
	/* A date millions of years ahead (found by the fuzzer): no overflow
	 * (UBSan checks), the longest wait there is, which the cap then bounds. */
	int64_t far = flaghook__retry_after_ms("W1Oct0777777777", now);
	assert_true(far == -1 || far == INT64_MAX);
	assert_int_equal(flaghook__retry_after_ms("-5", now), -1);
	assert_int_equal(flaghook__retry_after_ms("", now), -1);
	assert_int_equal(flaghook__policy_decide(&st, 1, 503, FLAGHOOK_ERRCLASS_HTTP, "junk", 0, 0, &w), FH_RETRY);
	assert_int_equal(w, 5000);
	flaghook__policy_free(&st, NULL);
	/* Jitter stays within its band and actually varies. */
	sp.jitter_percent = 20;
	assert_int_equal(flaghook__policy_make(&st, &sp, NULL), 0);
	int64_t lo = INT64_MAX, hi = 0;
	for (uint64_t r = 0; r < 1000; r++) {
		flaghook__policy_decide(&st, 2, 500, FLAGHOOK_ERRCLASS_HTTP, "", 0, r * 2654435761u, &w);
		lo = w < lo ? w : lo;
		hi = w > hi ? w : hi;
	}
	assert_true(lo >= 240000 && hi <= 360000 && hi - lo > 60000);
	flaghook__policy_free(&st, NULL);
	flaghook__policy_free(&fs, NULL);
	/* Bad policies are refused with a reason. */
	flaghook_retry_policy bad = FLAGHOOK_RETRY_POLICY_INIT;
	bad.kind = 9;
	assert_int_equal(flaghook__policy_make(&st, &bad, NULL), FLAGHOOK_EINVAL);
	bad.kind = 0;
	bad.schedule_count = 2;
	assert_int_equal(flaghook__policy_make(&st, &bad, NULL), FLAGHOOK_EINVAL);
	int64_t neg[] = { 5, -1 };
	bad.schedule_ms = neg;
	assert_int_equal(flaghook__policy_make(&st, &bad, NULL), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "schedule_ms[1]"));
}

/* Review defects 3 and 5: a wait of INT64_MAX ms with 100 % jitter, and
 * a schedule count that would wrap n * sizeof; UBSan watches in CI. */
static void test_policy_edges(void **state)
{
	(void)state;
	static const int64_t huge[] = { INT64_MAX };
	flaghook_retry_policy sp = FLAGHOOK_RETRY_POLICY_INIT;
	sp.kind = FLAGHOOK_RETRY_STANDARD;
	sp.schedule_ms = huge;
	sp.schedule_count = 1;
	sp.jitter_percent = 100;
	fh_policy p;
	assert_int_equal(flaghook__policy_make(&p, &sp, NULL), 0);
	int64_t lo = INT64_MAX, hi = 0, w;
	static const uint64_t randoms[] = { 0, 1, UINT64_MAX, UINT64_MAX / 2, 0x9E3779B97F4A7C15ULL };
	for (size_t i = 0; i < sizeof(randoms) / sizeof(randoms[0]); i++) {
		assert_int_equal(flaghook__policy_decide(&p, 1, 503, FLAGHOOK_ERRCLASS_HTTP, "", 0, randoms[i], &w),
		                 FH_RETRY);
		assert_true(w >= 0);
		lo = w < lo ? w : lo;
		hi = w > hi ? w : hi;
	}
	assert_true(lo < INT64_MAX / 2 && hi == INT64_MAX); /* jittered down, saturated up */
	flaghook__policy_free(&p, NULL);
	sp.schedule_count = SIZE_MAX;
	assert_int_equal(flaghook__policy_make(&p, &sp, NULL), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "schedule_count"));
	sp.schedule_count = FLAGHOOK_SCHEDULE_MAX + 1;
	assert_int_equal(flaghook__policy_make(&p, &sp, NULL), FLAGHOOK_EINVAL);
}

/* ---- real time, built-in pool ---- */

static void test_emit_returns_at_once(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	f->l.hold = 1; /* the receiver holds its reply until the latch opens */
	th_server *srv = srv_start(f, 0, latch_handler, &f->l);
	flaghook_client_options o = base_options(s);
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char url[96];
	url_of(srv, url, sizeof(url), "/a");
	uint64_t id = add(c, url, 0, NULL);
	int64_t t0 = mono_ms();
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	int64_t took = mono_ms() - t0;
	/* It returned while the reply was still held: it did not wait for it. */
	assert_int_equal(snap(s, &s->results), 0);
	assert_true(took < 15000); /* a hang bound */
	latch_open(&f->l);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(snap(s, &s->delivered), 1);
	th_request r;
	assert_int_equal(th_get(srv, 0, &r), 0);
	size_t len;
	char *want = read_whole(test_path("golden/sample_environment.json"), &len);
	assert_int_equal(r.body_len, len);
	assert_memory_equal(r.body, want, len);
	char sig[65];
	flaghook_sign(sig, sizeof(sig), SECRET, strlen(SECRET), want, len);
	assert_string_equal(th_header(&r, "X-Flagsmith-Signature"), sig);
	th_request_free(&r);
	free(want);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.in_flight, 0);
}

/* 500, 500, then 200: the standard policy retries until it lands. */
static void test_500s_then_success(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	th_reply script[] = { { TH_RESPOND, 500, NULL, "no", 0, 0 }, { TH_RESPOND, 503, NULL, "no", 0, 0 } };
	th_script(srv, script, 2);
	static const int64_t quick[] = { 20, 20 };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.schedule_ms = quick;
	p.schedule_count = 2;
	flaghook_client_options o = base_options(s);
	o.retry = &p;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char url[96];
	url_of(srv, url, sizeof(url), "/x");
	uint64_t id = add(c, url, 0, NULL);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(snap(s, &s->delivered), 1);
	assert_int_equal(snap(s, &s->attempts), 3);
	assert_int_equal(snap(s, &s->retries), 2);
	assert_int_equal(snap(s, &s->last_attempts), 3);
	assert_int_equal(th_count(srv), 3);
	/* Every attempt carries the same bytes and a valid signature. */
	for (size_t i = 0; i < 3; i++) {
		th_request r;
		th_get(srv, i, &r);
		assert_int_equal(flaghook_verify(SECRET, strlen(SECRET), r.body, r.body_len,
		                                 th_header(&r, "X-Flagsmith-Signature"), 64), 0);
		th_request_free(&r);
	}
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.retried, 2);
}

/* A slow receiver holds at most its in-flight limit of attempts; the fast
 * one beside it does not wait.  The slow one holds every reply until the
 * fast one has all eight delivered. */
static void test_slow_beside_fast(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	f->l.hold = -1; /* every request to the slow receiver waits for the latch */
	th_server *slow = srv_start(f, 0, latch_handler, &f->l);
	th_server *fast = srv_start(f, 1, NULL, NULL);
	flaghook_client_options o = base_options(s);
	o.threads = 4;
	o.max_in_flight = 2;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char u1[96], u2[96];
	url_of(slow, u1, sizeof(u1), "/slow");
	url_of(fast, u2, sizeof(u2), "/fast");
	uint64_t slow_id = add(c, u1, 0, NULL);
	uint64_t fast_id = add(c, u2, 0, NULL);
	int64_t t0 = mono_ms();
	for (int i = 0; i < 8; i++)
		assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_wait(fast, 8, 30000), 0);
	WAIT_UNTIL(stats(c, fast_id).delivered == 8);
	int64_t fast_ms = mono_ms() - t0;
	assert_int_equal(stats(c, fast_id).delivered, 8);
	/* Meanwhile the slow one got its in-flight limit and nothing more. */
	assert_int_equal(th_wait(slow, 2, 30000), 0);
	flaghook_endpoint_stats st = stats(c, slow_id);
	assert_true(st.in_flight <= 2);
	assert_int_equal(st.delivered, 0);
	assert_int_equal(th_count(slow), 2);
	print_message("fast receiver done in %lld ms while the slow one had %llu delivered\n",
	              (long long)fast_ms, (unsigned long long)st.delivered);
	latch_open(&f->l);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(snap(s, &s->delivered), 16);
}

typedef struct emit_job {
	flaghook_client *c;
	latch *l;
	atomic_int started;
	int rc, latch_was_open;
	int64_t waited_ms;
} emit_job;

static void *emit_when_full(void *arg)
{
	emit_job *j = arg;
	int64_t t0 = mono_ms();
	atomic_store(&j->started, 1);
	j->rc = flaghook_emit(j->c, fh_sample_environment());
	j->latch_was_open = latch_is_open(j->l);
	j->waited_ms = mono_ms() - t0;
	return NULL;
}

static void test_queue_full(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	f->l.hold = -1; /* replies wait for the latch: the queue stays full */
	th_server *srv = srv_start(f, 0, latch_handler, &f->l);
	flaghook_client_options o = base_options(s);
	o.max_pending = 2;
	o.max_in_flight = 2;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char url[96];
	url_of(srv, url, sizeof(url), "/full");
	add(c, url, 0, NULL);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	int64_t t0 = mono_ms();
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), FLAGHOOK_EFULL);
	/* At once: no slot could have freed, every reply is still held. */
	assert_int_equal(snap(s, &s->results), 0);
	assert_true(mono_ms() - t0 < 15000); /* a hang bound */
	assert_non_null(strstr(flaghook_last_error(), "full"));
	latch_open(&f->l);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	flaghook_client_free(c);
	f->c = NULL;
	assert_int_equal(snap(s, &s->delivered), 2);

	/* With a wait: emit blocks until a slot frees, then goes through. */
	pthread_mutex_lock(&f->l.lock);
	f->l.open = 0;
	f->l.seen = 0;
	pthread_mutex_unlock(&f->l.lock);
	o.emit_wait_ms = 60000; /* bounds only a hang */
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	add(c, url, 0, NULL);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_wait(srv, 4, 30000), 0); /* both in flight, held */
	emit_job *j = calloc(1, sizeof(*j));
	assert_non_null(j);
	j->c = c;
	j->l = &f->l;
	j->rc = -99;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, emit_when_full, j), 0);
	WAIT_UNTIL(atomic_load(&j->started));
	usleep(300 * 1000); /* time to return early, were it to */
	latch_open(&f->l);
	pthread_join(th, NULL);
	int rc = j->rc, was_open = j->latch_was_open;
	int64_t waited = j->waited_ms;
	free(j);
	assert_int_equal(rc, 0);
	assert_true(was_open);          /* it returned only once a reply freed a slot */
	assert_true(waited >= 300);
	assert_true(waited < 60000);    /* a hang bound */
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(snap(s, &s->delivered), 2 + 3);
}

/* Freeing with deliveries pending: a hung attempt is cut short, waiting
 * retries are abandoned, and every one is reported. */
static void test_shutdown_with_pending(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	th_reply script[] = { { TH_HANG, 0, NULL, NULL, 0, 0 },
	                      { TH_RESPOND, 503, NULL, NULL, 0, 0 },
	                      { TH_RESPOND, 503, NULL, NULL, 0, 0 } };
	th_script(srv, script, 3);
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD; /* the next try is 5 s away */
	static const int64_t hour[] = { 3600 * 1000 };
	p.schedule_ms = hour;             /* ... an hour: never within the case */
	p.schedule_count = 1;
	flaghook_client_options o = base_options(s);
	o.retry = &p;
	o.timeout_ms = 120000;            /* only shutdown can end the hung one */
	o.shutdown_timeout_ms = 300;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char url[96];
	url_of(srv, url, sizeof(url), "/pending");
	add(c, url, 0, NULL);
	for (int i = 0; i < 6; i++)
		assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	/* Every attempt but the hung one has concluded: two 503s waiting for
	 * their retry, three delivered. */
	assert_int_equal(th_wait(srv, 6, 30000), 0);
	WAIT_UNTIL(snap(s, &s->attempts) >= 5);
	assert_int_equal(snap(s, &s->attempts), 5);
	assert_int_equal(snap(s, &s->retries), 2);
	assert_int_equal(snap(s, &s->delivered), 3);
	int64_t t0 = mono_ms();
	flaghook_client_free(c);
	f->c = NULL;
	int64_t took = mono_ms() - t0;
	/* Returned long before the hung attempt's own timeout: cut short. */
	assert_true(took < 60000);
	/* 6 accepted, 6 reported: the hung one and both retries abandoned. */
	assert_int_equal(snap(s, &s->results), 6);
	assert_int_equal(snap(s, &s->abandoned), 3);
	assert_int_equal(snap(s, &s->abandoned) + snap(s, &s->delivered) + snap(s, &s->gave_up), 6);
}

/* ---- fake clock, TICK mode, inline executor ---- */

/* Flagsmith's policy against a refused port: attempts at 0, +2 s, +6 s. */
static void test_flagsmith_schedule_refused(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	flaghook_client *c = f->c = tick_client(s, NULL, NULL);
	add(c, refused_url(f), 0, NULL); /* refused */
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(snap(s, &s->attempts), 1);
	int64_t next;
	assert_int_equal(tick_run(c, &next), 0);
	assert_int_equal(next, 2000);
	advance_ms(s, 1999);
	tick_run(c, &next);
	assert_int_equal(snap(s, &s->attempts), 1);
	assert_int_equal(next, 1);
	advance_ms(s, 1);
	tick_run(c, &next);
	assert_int_equal(snap(s, &s->attempts), 2);
	assert_int_equal(next, 4000);
	advance_ms(s, 4000);
	tick_run(c, &next);
	assert_int_equal(snap(s, &s->attempts), 3);
	assert_int_equal(next, -1);
	assert_int_equal(snap(s, &s->gave_up), 1);
	assert_int_equal(snap(s, &s->last_errclass), FLAGHOOK_ERRCLASS_CONNECT);
	assert_int_equal(snap(s, &s->last_attempts), 3);
	flaghook_client_free(c);
	f->c = NULL;
}

/* Flagsmith's policy: an HTTP error status is final at once. */
static void test_flagsmith_http_error_final(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = failing_once(f, 500);
	flaghook_client *c = f->c = tick_client(s, NULL, NULL);
	char url[96];
	url_of(srv, url, sizeof(url), "/e");
	add(c, url, 0, NULL);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(snap(s, &s->gave_up), 1);
	assert_int_equal(snap(s, &s->last_status), 500);
	assert_int_equal(th_count(srv), 1);
	flaghook_client_free(c);
	f->c = NULL;
}

/* 429 with Retry-After, reset mid-reply and a timeout: retried on time. */
static void test_retry_after_reset_timeout(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	th_reply script[] = { { TH_RESPOND, 429, "Retry-After: 120\r\n", NULL, 0, 0 },
	                      { TH_RESET, 200, NULL, "cut short", 0, 0 },
	                      { TH_HANG, 0, NULL, NULL, 0, 0 } };
	th_script(srv, script, 3);
	flaghook_retry_policy p = standard(NULL, 0);
	flaghook_client_options o = base_options(s);
	/* The hung attempt must time out; the others must answer within it,
	 * however loaded the machine. */
	o.timeout_ms = 3000;
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	char url[96];
	url_of(srv, url, sizeof(url), "/r");
	uint64_t id = add(c, url, 0, NULL);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	int64_t next;
	tick_run(c, &next);
	assert_int_equal(next, 120000); /* Retry-After, not the schedule's 5 s */
	advance_ms(s, 119999);
	tick_run(c, NULL);
	assert_int_equal(th_count(srv), 1);
	advance_ms(s, 1);
	tick_run(c, &next); /* attempt 2: reset */
	assert_int_equal(th_count(srv), 2);
	assert_int_equal(next, 300000);
	advance_ms(s, 300000);
	tick_run(c, &next); /* attempt 3: the receiver never answers */
	assert_int_equal(th_count(srv), 3);
	assert_int_equal(next, 1800000);
	advance_ms(s, 1800000);
	tick_run(c, &next); /* attempt 4: 200 */
	assert_int_equal(snap(s, &s->delivered), 1);
	assert_int_equal(snap(s, &s->attempts), 4);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.retried, 3);
	assert_int_equal(st.delivered, 1);
	flaghook_client_free(c);
	f->c = NULL;
}

/* 410 Gone disables the endpoint and gives up what waits for it. */
static void test_gone_disables(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	th_reply script[] = { { TH_RESPOND, 503, NULL, NULL, 0, 0 }, { TH_RESPOND, 410, NULL, NULL, 0, 0 } };
	th_script(srv, script, 2);
	flaghook_retry_policy p = standard(NULL, 0);
	flaghook_client_options o = base_options(s);
	o.max_in_flight = 1;
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	char url[96];
	url_of(srv, url, sizeof(url), "/gone");
	uint64_t id = add(c, url, 0, NULL);
	/* First: 503, waits 5 s.  Second: 410, disables. */
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(snap(s, &s->disabled_reason), FLAGHOOK_DISABLED_GONE);
	assert_int_equal(s->disabled_id, id);
	assert_int_equal(snap(s, &s->gave_up), 2); /* the 410 and the one waiting */
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.disabled, 1);
	assert_int_equal(st.queued, 0);
	int64_t next;
	tick_run(c, &next);
	assert_int_equal(next, -1);
	/* Nothing more is routed to it. */
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(srv), 2);
	flaghook_client_free(c);
	f->c = NULL;
}

/* The caller disabling an endpoint gives up what waits for it. */
static void test_caller_disables(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	flaghook_client *c = f->c = tick_client(s, NULL, NULL);
	uint64_t id = add(c, refused_url(f), 0, NULL); /* refused */
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(stats(c, id).queued, 2); /* both wait for their retry */
	assert_int_equal(flaghook_endpoint_set_enabled(c, id, 0), 0);
	assert_int_equal(snap(s, &s->gave_up), 2);
	assert_int_equal(stats(c, id).queued, 0);
	assert_int_equal(flaghook_flush(c, 30000), 0);
	assert_int_equal(flaghook_endpoint_set_enabled(c, id, 1), 0);
	assert_int_equal(stats(c, id).disabled, 0);
	flaghook_client_free(c);
	f->c = NULL;
}

/* Enabling an endpoint closes its circuit and sends what waited behind it. */
static void test_enable_releases_queue(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = failing_once(f, 503);
	flaghook_retry_policy p = standard(NULL, 0);
	flaghook_client_options o = base_options(s);
	o.breaker_threshold = 1;
	o.breaker_cooldown_ms = 3600 * 1000;
	o.shutdown_timeout_ms = -1;
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	char url[96];
	url_of(srv, url, sizeof(url), "/en");
	uint64_t id = add(c, url, 0, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(srv), 1);
	assert_int_equal(stats(c, id).breaker_open, 1);
	assert_int_equal(flaghook_endpoint_set_enabled(c, id, 1), 0);
	tick_settle(c);
	assert_int_equal(th_count(srv), 3);
	assert_int_equal(snap(s, &s->delivered), 2);
	assert_int_equal(stats(c, id).breaker_open, 0);
	flaghook_client_free(c);
	f->c = NULL;
}

/* FIFO: one in flight, emit order kept even across retries. */
static void order_handler(const th_request *req, th_reply *reply, void *ud)
{
	(void)req; (void)ud;
	reply->status = 200;
}

static void test_fifo_order(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, order_handler, NULL);
	th_reply script[] = { { TH_RESPOND, 500, NULL, NULL, 0, 0 }, { TH_RESPOND, 500, NULL, NULL, 0, 0 } };
	th_script(srv, script, 2);
	flaghook_retry_policy p = standard(NULL, 0);
	flaghook_client *c = f->c = tick_client(s, &p, NULL);
	char url[96];
	url_of(srv, url, sizeof(url), "/fifo");
	add(c, url, 1, NULL);
	/* Five events, told apart by their timestamps. */
	flaghook_flag_change fc[5];
	flaghook_event ev[5];
	for (int i = 0; i < 5; i++) {
		fc[i] = *fh_sample_environment()->flag;
		fc[i].timestamp_us = 1700000000000000LL + i;
		ev[i] = *fh_sample_environment();
		ev[i].flag = &fc[i];
		assert_int_equal(tick_emit(c, &ev[i]), 0);
	}
	/* The first failed; nothing else may pass it. */
	assert_int_equal(th_count(srv), 1);
	for (int k = 0; k < 3; k++) {
		advance_ms(s, 3600 * 1000);
		tick_run(c, NULL);
	}
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(th_count(srv), 7);
	int last = -1;
	for (size_t i = 0; i < 7; i++) {
		th_request r;
		th_get(srv, i, &r);
		const char *t = strstr(r.body, "\"timestamp\": \"2023-11-14T22:13:20.00000");
		assert_non_null(t);
		int n = t[strlen("\"timestamp\": \"2023-11-14T22:13:20.00000")] - '0';
		assert_true(n >= last); /* never out of order */
		last = n;
		th_request_free(&r);
	}
	assert_int_equal(last, 4);
	assert_int_equal(snap(s, &s->delivered), 5);
	flaghook_client_free(c);
	f->c = NULL;
}

/* The circuit opens after consecutive failures, then probes. */
static void test_circuit_breaker(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	th_reply fail[4];
	for (int i = 0; i < 4; i++)
		fail[i] = (th_reply){ TH_RESPOND, 503, NULL, NULL, 0, 0 };
	th_script(srv, fail, 4);
	static const int64_t hour[] = { 3600 * 1000 };
	flaghook_retry_policy p = standard(hour, 1);
	flaghook_client_options o = base_options(s);
	o.breaker_threshold = 3;
	o.breaker_cooldown_ms = 10000;
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	char url[96];
	url_of(srv, url, sizeof(url), "/cb");
	uint64_t id = add(c, url, 0, NULL);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	/* Three failures open it: the other two wait without an attempt. */
	assert_int_equal(th_count(srv), 3);
	flaghook_endpoint_stats st = stats(c, id);
	assert_int_equal(st.breaker_open, 1);
	assert_int_equal(st.consecutive_failures, 3);
	int64_t next;
	tick_run(c, &next);
	assert_int_equal(next, 10000);
	advance_ms(s, 10000);
	tick_run(c, NULL); /* half-open: one probe, which fails */
	assert_int_equal(th_count(srv), 4);
	assert_int_equal(stats(c, id).breaker_open, 1);
	advance_ms(s, 20000 - 1); /* the cooldown doubled */
	tick_run(c, NULL);
	assert_int_equal(th_count(srv), 4);
	advance_ms(s, 1);
	tick_run(c, NULL); /* the probe succeeds: closed again */
	assert_int_equal(th_count(srv), 5);
	assert_int_equal(stats(c, id).breaker_open, 0);
	assert_int_equal(snap(s, &s->delivered), 1);
	/* The four that failed come back on their own schedule, an hour on. */
	advance_ms(s, 3600 * 1000);
	tick_run(c, NULL);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(snap(s, &s->delivered), 5);
	assert_int_equal(th_count(srv), 9);
	flaghook_client_free(c);
	f->c = NULL;
}

/* FIFO behind an open circuit: the held delivery waits for the half-open. */
static void test_fifo_waits_for_breaker(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = failing_once(f, 503);
	static const int64_t second[] = { 1000 };
	flaghook_retry_policy p = standard(second, 1);
	flaghook_client_options o = base_options(s);
	o.breaker_threshold = 1;
	o.breaker_cooldown_ms = 10000;
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	char url[96];
	url_of(srv, url, sizeof(url), "/fb");
	add(c, url, 1, NULL);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	advance_ms(s, 1000);
	tick_run(c, NULL); /* its retry is due, but the circuit is open */
	assert_int_equal(th_count(srv), 1);
	advance_ms(s, 9000);
	tick_run(c, NULL); /* half-open; the held delivery is due just after */
	advance_ms(s, 1);
	tick_run(c, NULL);
	assert_int_equal(th_count(srv), 2);
	assert_int_equal(snap(s, &s->delivered), 1);
	flaghook_client_free(c);
	f->c = NULL;
}

typedef struct flush_arg { flaghook_client *c; int rc; } flush_arg;
static void *flush_thread(void *arg)
{
	flush_arg *f = arg;
	f->rc = flaghook_flush(f->c, 60000);
	return NULL;
}

/* Thousands of deliveries released at once through an inline executor do
 * not nest one call per delivery on the stack: they are run from a thread
 * with a 2 MiB stack, which that nesting (about 1 KiB a level) overflows
 * while the bounded nesting leaves room even for ThreadSanitizer. */
static void test_inline_executor_stack(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = failing_once(f, 503);
	static const int64_t second[] = { 1000 };
	flaghook_retry_policy p = standard(second, 1);
	flaghook_client_options o = base_options(s);
	o.breaker_threshold = 1;
	o.breaker_cooldown_ms = 1000;
	o.max_pending = 5000;
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	char url[96];
	url_of(srv, url, sizeof(url), "/deep");
	add(c, url, 0, NULL);
	enum { N = 3000 };
	for (int i = 0; i < N; i++)
		assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(srv), 1); /* the rest wait behind the open circuit */
	advance_ms(s, 1000);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 2048 * 1024);
	pthread_t th;
	flush_arg fa = { c, -1 };
	assert_int_equal(pthread_create(&th, &attr, flush_thread, &fa), 0);
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	assert_int_equal(fa.rc, 0);
	assert_int_equal(snap(s, &s->delivered), N);
	flaghook_client_free(c);
	f->c = NULL;
}

/* Failing without a success for disable_after_ms disables the endpoint. */
static void test_auto_disable(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	static const int64_t minute[] = { 60 * 1000 };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	p.schedule_ms = minute;
	p.schedule_count = 1;
	p.max_attempts = 100;
	p.jitter_percent = -1;
	flaghook_client_options o = base_options(s);
	o.disable_after_ms = 5 * 60 * 1000;
	o.breaker_threshold = -1;
	o.shutdown_timeout_ms = -1; /* the last retry is a fake minute away: abandon it */
	flaghook_client *c = f->c = tick_client(s, &p, &o);
	uint64_t id = add(c, refused_url(f), 0, NULL); /* refused */
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	for (int i = 0; i < 4; i++) {
		advance_ms(s, 60 * 1000);
		tick_run(c, NULL);
		assert_int_equal(snap(s, &s->disabled_reason), 0);
	}
	advance_ms(s, 60 * 1000);
	tick_run(c, NULL);
	assert_int_equal(snap(s, &s->disabled_reason), FLAGHOOK_DISABLED_FAILING);
	assert_int_equal(snap(s, &s->gave_up), 1);
	assert_int_equal(snap(s, &s->attempts), 6);
	assert_int_equal(stats(c, id).disabled, 1);
	/* Re-enabled, it starts afresh: one failure does not disable it again. */
	assert_int_equal(flaghook_endpoint_set_enabled(c, id, 1), 0);
	pthread_mutex_lock(&s->lock);
	s->disabled_reason = 0;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(snap(s, &s->disabled_reason), 0);
	assert_int_equal(stats(c, id).disabled, 0);
	assert_int_equal(stats(c, id).consecutive_failures, 1);
	flaghook_client_free(c);
	f->c = NULL;
	assert_int_equal(snap(s, &s->abandoned), 1);
}

/* An executor that refuses loses nothing: the job comes back. */
static atomic_int refusals_left;
static int refusing_submit(void (*job)(void *), void *arg, void *ud)
{
	(void)ud;
	if (atomic_fetch_sub(&refusals_left, 1) > 0)
		return -1;
	job(arg);
	return 0;
}

static void test_executor_refuses(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	flaghook_executor x = FLAGHOOK_EXECUTOR_INIT;
	x.submit = refusing_submit;
	flaghook_client_options o = base_options(s);
	o.executor = &x;
	o.timers = FLAGHOOK_TIMERS_TICK;
	o.clock = fake_clock;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char url[96];
	url_of(srv, url, sizeof(url), "/refuse");
	add(c, url, 0, NULL);
	atomic_store(&refusals_left, 3);
	assert_int_equal(tick_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(srv), 0);
	for (int i = 0; i < 3; i++) {
		advance_ms(s, 50);
		tick_run(c, NULL);
	}
	assert_int_equal(th_count(srv), 1);
	assert_int_equal(snap(s, &s->delivered), 1);
	assert_int_equal(snap(s, &s->last_attempts), 1); /* refusals are not attempts */
	flaghook_client_free(c);
	f->c = NULL;
}

/* ---- many threads emitting at once (run under ThreadSanitizer in CI) ---- */

typedef struct emitter { flaghook_client *c; int n, failures; } emitter;

static void *emit_many(void *arg)
{
	emitter *e = arg;
	for (int i = 0; i < e->n; i++)
		e->failures += flaghook_emit(e->c, i % 3 ? fh_sample_environment() : fh_sample_organisation()) != 0;
	return NULL;
}

static void test_many_threads(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	th_server *srv = srv_start(f, 0, NULL, NULL);
	flaghook_client_options o = base_options(s);
	o.emit_wait_ms = 60000; /* bounds only a hang */
	o.max_pending = 64;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	f->c = c;
	char url[96];
	url_of(srv, url, sizeof(url), "/many");
	uint64_t env = add(c, url, 0, NULL);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope = FLAGHOOK_SCOPE_ORGANISATION;
	e.scope_id = 1;
	e.url = url;
	e.fifo = 1;
	uint64_t org;
	assert_int_equal(flaghook_endpoint_add(c, &org, &e), 0);
	pthread_t th[4];
	emitter em[4];
	for (int i = 0; i < 4; i++) {
		em[i] = (emitter){ c, 60, 0 };
		pthread_create(&th[i], NULL, emit_many, &em[i]);
	}
	for (int i = 0; i < 4; i++) {
		flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
		flaghook_endpoint_stats_get(c, env, &st); /* read while it moves */
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(em[i].failures, 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	/* Per thread: 40 flag events (env + org endpoints) and 20 audit logs (org). */
	int want = 4 * (40 * 2 + 20);
	assert_int_equal(snap(s, &s->delivered), want);
	assert_int_equal((int)th_count(srv), want);
	assert_int_equal(stats(c, env).delivered + stats(c, org).delivered, (uint64_t)want);
	flaghook_client_free(c);
	f->c = NULL;
}

static void test_async_bad_input(void **state)
{
	fx *f = *state;
	seen *s = f->s;
	flaghook_client *c = tick_client(s, NULL, NULL);
	assert_int_equal(flaghook_flush(NULL, 1), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_tick(NULL, NULL), FLAGHOOK_EINVAL);
	flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
	assert_int_equal(flaghook_endpoint_stats_get(c, 42, &st), FLAGHOOK_ENOTFOUND);
	st.version = 9;
	assert_int_equal(flaghook_endpoint_stats_get(c, 42, &st), FLAGHOOK_EVERSION);
	flaghook_client_free(c);
	flaghook_client_options o = base_options(s);
	o.timers = 7;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	o.timers = 0;
	o.threads = -2;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	/* tick on a client with a timer thread is a mistake, said clearly. */
	o.threads = 1;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	assert_int_equal(tick_run(c, NULL), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "TICK"));
	flaghook_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_decisions),
		cmocka_unit_test(test_policy_edges),
		cmocka_unit_test_setup_teardown(test_emit_returns_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_500s_then_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_beside_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flagsmith_schedule_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flagsmith_http_error_final, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_reset_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_disables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caller_disables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enable_releases_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_circuit_breaker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_waits_for_breaker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inline_executor_stack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_disable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_executor_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_bad_input, setup, teardown),
	};
	return cmocka_run_group_tests_name("async", tests, NULL, NULL);
}
