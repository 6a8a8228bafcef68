/*
 * Delivery on a real network: many endpoints on loopback, receivers that
 * are slow or never answer, and the threads the library starts.  Every
 * check is logical (who had answered when), never a wall-clock bound
 * tighter than a hang: a busy machine only makes the tests slower.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "sample.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <unistd.h>

#define DEADLINE_MS 30000   /* what "never" means here: a hang fails the test */
#define MANY 1000

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An absolute CLOCK_MONOTONIC time for pthread_cond_timedwait. */
static struct timespec abs_ms(int64_t at_ms)
{
	struct timespec ts = { (time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L };
	return ts;
}

static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

/* ---- threads of this process ---- */

static int task_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		fail_msg("opendir /proc/self/task");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A joined thread can linger in /proc for a moment after pthread_join:
 * wait until the count holds still (100 ms unchanged; 5 s at most). */
static int settled_task_count(void)
{
	int64_t end = mono_ms() + 5000;
	int n = task_count(), same = 0;
	while (same < 20 && mono_ms() < end) {
		usleep(5000);
		int m = task_count();
		same = m == n ? same + 1 : 0;
		n = m;
	}
	return n;
}

/* The count once it is `want` (or after 5 s, whatever it is then). */
static int task_count_becomes(int want)
{
	int64_t end = mono_ms() + 5000;
	int n;
	while ((n = task_count()) != want && mono_ms() < end)
		usleep(2000);
	return n;
}

/* ---- what on_result saw, per endpoint (ids 1..n) ---- */

typedef struct seen {
	pthread_mutex_t lock;
	size_t n;
	int results, delivered, abandoned;
	int *per_ep;                /* results per endpoint id */
	int *outcome;               /* the last outcome per endpoint id */
	pid_t host;                 /* TICK: the thread that must run the callbacks */
	int elsewhere;              /* callbacks on any other thread */
	int most_tasks;             /* TICK: threads alive, sampled in each callback */
} seen;

static void seen_init(seen *s, size_t n)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->n = n;
	s->per_ep = calloc(n + 1, sizeof(int));
	s->outcome = calloc(n + 1, sizeof(int));
	assert_non_null(s->per_ep);
	assert_non_null(s->outcome);
	for (size_t i = 0; i <= n; i++)
		s->outcome[i] = -1;
}

static void seen_fini(seen *s)
{
	free(s->per_ep);
	free(s->outcome);
	pthread_mutex_destroy(&s->lock);
}

static void on_result(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->results++;
	s->delivered += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
	s->abandoned += r->outcome == FLAGHOOK_OUTCOME_ABANDONED;
	if (s->host) {
		s->elsewhere += gettid() != s->host;
		int n = task_count();
		s->most_tasks = n > s->most_tasks ? n : s->most_tasks;
	}
	if (r->endpoint_id >= 1 && r->endpoint_id <= s->n) {
		s->per_ep[r->endpoint_id]++;
		s->outcome[r->endpoint_id] = r->outcome;
	}
	pthread_mutex_unlock(&s->lock);
}

static int snap(seen *s, const int *field)
{
	pthread_mutex_lock(&s->lock);
	int v = *field;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static flaghook_client_options options(seen *s, int32_t mode)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = mode;
	o.on_result = on_result;
	o.user_data = s;
	return o;
}

static flaghook_client *client(const flaghook_client_options *o)
{
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, o);
	if (rc)
		fail_msg("client_new: %d %s", rc, flaghook_last_error());
	return c;
}

/* Endpoint `id` (environment 1, the sample event's) at srv's path. */
static void add(flaghook_client *c, th_server *srv, uint64_t id, const char *path)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", th_port(srv), path);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = url;
	e.secret = "network-secret";
	e.secret_len = strlen(e.secret);
	e.id = id;
	int rc = flaghook_endpoint_add(c, NULL, &e);
	if (rc)
		fail_msg("endpoint_add %llu: %d %s", (unsigned long long)id, rc, flaghook_last_error());
}

static void add_many(flaghook_client *c, th_server *srv, size_t n)
{
	for (size_t i = 1; i <= n; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/ep/%zu", i);
		add(c, srv, i, path);
	}
}

static flaghook_client_stats client_stats(flaghook_client *c)
{
	flaghook_client_stats st = FLAGHOOK_CLIENT_STATS_INIT;
	assert_int_equal(flaghook_client_stats_get(c, &st), 0);
	return st;
}

/* Replies that come `delay_ms` late, from the server's timers (no thread). */
static void script_delayed(th_server *srv, size_t n, th_action action, int delay_ms)
{
	th_reply *r = calloc(n, sizeof(*r));
	assert_non_null(r);
	for (size_t i = 0; i < n; i++)
		r[i] = (th_reply){ action, 200, NULL, NULL, delay_ms, 0 };
	th_script(srv, r, n);
	free(r);
}

/* ---- a receiver that holds every request until the test opens it ---- */

typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int active, peak;           /* handlers running at once */
	int64_t give_up_ms;         /* a handler never waits past this */
	int delay_ms;               /* then each answers this late */
} gate;

static void gate_init(gate *g, int delay_ms)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	cond_init_mono(&g->cv);
	g->give_up_ms = mono_ms() + 2 * DEADLINE_MS;
	g->delay_ms = delay_ms;
}

/* Lets every handler go; returns how many were running at once. */
static int gate_open(gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	int peak = g->peak;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return peak;
}

static void gate_fini(gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

static void gate_handler(const th_request *req, th_reply *reply, void *ud)
{
	(void)req;
	gate *g = ud;
	pthread_mutex_lock(&g->mu);
	if (++g->active > g->peak)
		g->peak = g->active;
	struct timespec until = abs_ms(g->give_up_ms);
	while (!g->open && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
		;
	g->active--;
	pthread_mutex_unlock(&g->mu);
	reply->delay_ms = g->delay_ms;
}

/*
 * 1. A thousand endpoints at once.  The receiver holds every request until
 * the test opens it (then answers 100 ms late): the server records a
 * request before its handler runs, so th_count reaching 1 000 while nothing
 * has been answered proves 1 000 transfers were on the wire together.  The
 * old engine (4 threads, one blocking send each) would stop at 4 and fail
 * after DEADLINE_MS.  (Counting handlers running at once cannot show it:
 * the test server runs at most 256 handlers, the rest queue.)
 */
static void test_thousand_endpoints_at_once(void **state)
{
	(void)state;
	assert_int_equal(th_raise_nofile(4096), 0);
	gate g;
	gate_init(&g, 100);
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, gate_handler, &g), 0);
	seen s;
	seen_init(&s, MANY);
	flaghook_client_options o = options(&s, FLAGHOOK_MODE_ASYNC);
	/* Default threads, max_transfers (1 000) and max_in_flight; only the
	 * request timeout is raised, so a busy machine cannot time a held
	 * request out before the last one arrives. */
	o.timeout_ms = DEADLINE_MS;
	flaghook_client *c = client(&o);
	add_many(c, srv, MANY);

	int64_t t0 = mono_ms();
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	int arrived = th_wait(srv, MANY, DEADLINE_MS);
	int64_t held_ms = mono_ms() - t0;
	size_t count_held = th_count(srv);
	int results_held = snap(&s, &s.results);
	flaghook_client_stats held = client_stats(c);
	int peak = gate_open(&g); /* before any assertion: a failure must not leave it shut */
	print_message("%zu requests held after %lld ms (handlers at once: %d); client: %llu transfers, "
	              "%llu pending\n", count_held, (long long)held_ms, peak,
	              (unsigned long long)held.transfers, (unsigned long long)held.pending);
	assert_int_equal(arrived, 0);
	assert_int_equal(results_held, 0);
	/* max_transfers: never more than 1 000 on the wire, of 2 000 pending. */
	assert_int_equal(count_held, MANY);
	assert_int_equal(held.transfers, MANY);
	assert_int_equal(held.pending, 2 * MANY);

	assert_int_equal(flaghook_flush(c, DEADLINE_MS), 0);
	print_message("2 000 deliveries in %lld ms\n", (long long)(mono_ms() - t0));
	assert_int_equal(snap(&s, &s.results), 2 * MANY);
	assert_int_equal(snap(&s, &s.delivered), 2 * MANY);
	for (size_t i = 1; i <= MANY; i++)
		assert_int_equal(s.per_ep[i], 2);
	assert_int_equal(th_count(srv), 2 * MANY);
	flaghook_client_stats st = client_stats(c);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.transfers, 0);
	flaghook_client_free(c);
	th_stop(srv);
	gate_fini(&g);
	seen_fini(&s);
}

/*
 * 2. A receiver that never answers beside four fast ones: every delivery to
 * the fast ones lands while the hanging one's are still in flight (they
 * reached it, and have no result); freeing the client reports them.
 */
static void test_hang_beside_fast(void **state)
{
	(void)state;
	enum { EVENTS = 5, FAST = 4 };
	th_server *hang = NULL, *fast = NULL;
	assert_int_equal(th_start(&hang, NULL, NULL), 0);
	assert_int_equal(th_start(&fast, NULL, NULL), 0);
	script_delayed(hang, EVENTS, TH_HANG, 0);
	seen s;
	seen_init(&s, 1 + FAST);
	flaghook_client_options o = options(&s, FLAGHOOK_MODE_ASYNC);
	o.timeout_ms = 2 * DEADLINE_MS;   /* only the shutdown may end A's */
	o.shutdown_timeout_ms = 200;
	flaghook_client *c = client(&o);
	add(c, hang, 1, "/a");
	add(c, fast, 2, "/b");
	add(c, fast, 3, "/c");
	add(c, fast, 4, "/d");
	add(c, fast, 5, "/e");
	for (int i = 0; i < EVENTS; i++)
		assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);

	/* A's requests are at its receiver, unanswered, and B..E are done. */
	assert_int_equal(th_wait(hang, EVENTS, DEADLINE_MS), 0);
	int64_t end = mono_ms() + DEADLINE_MS;
	while (snap(&s, &s.delivered) < FAST * EVENTS && mono_ms() < end)
		usleep(2000);
	pthread_mutex_lock(&s.lock);
	int delivered = s.delivered, results = s.results, a_results = s.per_ep[1];
	int fast_each[FAST];
	for (int i = 0; i < FAST; i++)
		fast_each[i] = s.per_ep[2 + i];
	pthread_mutex_unlock(&s.lock);
	flaghook_endpoint_stats a = FLAGHOOK_ENDPOINT_STATS_INIT;
	assert_int_equal(flaghook_endpoint_stats_get(c, 1, &a), 0);
	assert_int_equal(delivered, FAST * EVENTS);
	assert_int_equal(results, FAST * EVENTS);
	for (int i = 0; i < FAST; i++)
		assert_int_equal(fast_each[i], EVENTS);
	assert_int_equal(a_results, 0);
	assert_int_equal(a.in_flight, EVENTS);
	assert_int_equal(a.delivered, 0);
	assert_int_equal(th_count(fast), FAST * EVENTS);

	/* Shutdown reports every one of A's, once, as left. */
	int64_t t0 = mono_ms();
	flaghook_client_free(c);
	int64_t took = mono_ms() - t0;
	print_message("free with %d hanging deliveries took %lld ms\n", EVENTS, (long long)took);
	assert_int_equal(s.results, (1 + FAST) * EVENTS);
	assert_int_equal(s.per_ep[1], EVENTS);
	assert_int_equal(s.outcome[1], FLAGHOOK_OUTCOME_ABANDONED);
	assert_int_equal(s.abandoned, EVENTS);
	assert_true(took < 20000);
	th_stop(hang);
	th_stop(fast);
	seen_fini(&s);
}

/* ---- a receiver that counts handlers at once, each staying >= 100 ms ---- */

typedef struct barrier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int want;                   /* let them go once this many are in */
	int active, peak;
	int64_t give_up_ms;         /* set by the first: it waits 5 s at most */
} barrier;

static void barrier_handler(const th_request *req, th_reply *reply, void *ud)
{
	(void)req;
	(void)reply;
	barrier *b = ud;
	int64_t entered = mono_ms();
	pthread_mutex_lock(&b->mu);
	if (!b->give_up_ms)
		b->give_up_ms = entered + 5000;
	if (++b->active > b->peak)
		b->peak = b->active;
	pthread_cond_broadcast(&b->cv);
	struct timespec until = abs_ms(b->give_up_ms);
	while (b->peak < b->want && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
		;
	pthread_mutex_unlock(&b->mu);
	int64_t left = entered + 100 - mono_ms();
	if (left > 0)
		usleep((useconds_t)left * 1000);
	pthread_mutex_lock(&b->mu);
	b->active--;
	pthread_mutex_unlock(&b->mu);
}

/*
 * 3. SYNC: one emit to ten endpoints whose receiver answers 100 ms late.
 * Each handler stays until all ten are in (or 5 s): the peak is 10 only
 * if every request was in flight at once; one at a time would peak at 1.
 */
static void test_sync_all_at_once(void **state)
{
	(void)state;
	enum { N = 10 };
	barrier b;
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	cond_init_mono(&b.cv);
	b.want = N;
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, barrier_handler, &b), 0);
	seen s;
	seen_init(&s, N);
	flaghook_client_options o = options(&s, FLAGHOOK_MODE_SYNC);
	flaghook_client *c = client(&o);
	add_many(c, srv, N);
	int64_t t0 = mono_ms();
	int rc = flaghook_emit(c, fh_sample_environment());
	print_message("SYNC emit to %d endpoints: %lld ms, peak %d at once\n", N,
	              (long long)(mono_ms() - t0), b.peak);
	assert_int_equal(rc, 0);
	assert_int_equal(b.peak, N);
	assert_int_equal(s.results, N);
	assert_int_equal(s.delivered, N);
	for (int i = 1; i <= N; i++)
		assert_int_equal(s.per_ep[i], 1);
	assert_int_equal(th_count(srv), N);
	flaghook_client_free(c);
	th_stop(srv);
	pthread_cond_destroy(&b.cv);
	pthread_mutex_destroy(&b.mu);
	seen_fini(&s);
}

/*
 * 3b. SYNC honours max_transfers: ten endpoints, three slots.  The
 * receiver holds each request until three are in (or 5 s): the peak is
 * exactly 3, and every delivery still arrives.
 */
static void test_sync_max_transfers(void **state)
{
	(void)state;
	enum { N = 10, SLOTS = 3 };
	barrier b;
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	cond_init_mono(&b.cv);
	b.want = SLOTS;
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, barrier_handler, &b), 0);
	seen s;
	seen_init(&s, N);
	flaghook_client_options o = options(&s, FLAGHOOK_MODE_SYNC);
	o.max_transfers = SLOTS;
	flaghook_client *c = client(&o);
	add_many(c, srv, N);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(b.peak, SLOTS);
	assert_int_equal(s.delivered, N);
	assert_int_equal(th_count(srv), N);
	flaghook_client_free(c);
	th_stop(srv);
	pthread_cond_destroy(&b.cv);
	pthread_mutex_destroy(&b.mu);
	seen_fini(&s);
}

/*
 * 4. Shutdown with 1 000 transfers in flight: each is reported exactly
 * once, as abandoned, and free returns long before the requests would
 * have timed out.
 */
static void test_shutdown_thousand_in_flight(void **state)
{
	(void)state;
	assert_int_equal(th_raise_nofile(4096), 0);
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	script_delayed(srv, MANY, TH_HANG, 0);
	seen s;
	seen_init(&s, MANY);
	flaghook_client_options o = options(&s, FLAGHOOK_MODE_ASYNC);
	o.timeout_ms = 2 * DEADLINE_MS;   /* only the shutdown may end them */
	o.shutdown_timeout_ms = 200;
	flaghook_client *c = client(&o);
	add_many(c, srv, MANY);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	int arrived = th_wait(srv, MANY, DEADLINE_MS);
	flaghook_client_stats st = client_stats(c);
	print_message("%zu requests hanging; client: %llu transfers, %llu pending\n", th_count(srv),
	              (unsigned long long)st.transfers, (unsigned long long)st.pending);
	int64_t t0 = mono_ms();
	flaghook_client_free(c);
	int64_t took = mono_ms() - t0;
	th_stop(srv);
	print_message("free with %d transfers in flight took %lld ms\n", MANY, (long long)took);
	assert_int_equal(arrived, 0);
	assert_int_equal(st.transfers, MANY);
	assert_int_equal(st.pending, MANY);
	assert_int_equal(s.results, MANY);
	assert_int_equal(s.abandoned, MANY);
	for (size_t i = 1; i <= MANY; i++) {
		if (s.per_ep[i] != 1 || s.outcome[i] != FLAGHOOK_OUTCOME_ABANDONED)
			fail_msg("endpoint %zu: %d results, outcome %d", i, s.per_ep[i], s.outcome[i]);
	}
	assert_true(took < 20000);
	seen_fini(&s);
}

/*
 * 5. TICK mode without an executor: the host's thread does everything
 * through flaghook_fd, poll and flaghook_tick, and the library starts no
 * thread.  The receiver answers from its timers, so it starts none either
 * after th_start.
 */
static void test_tick_no_thread(void **state)
{
	(void)state;
	enum { N = 100 };
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	script_delayed(srv, N, TH_RESPOND, 100);
	seen s;
	seen_init(&s, N);
	int before = settled_task_count();
	s.host = gettid();
	flaghook_client_options o = options(&s, FLAGHOOK_MODE_ASYNC);
	o.timers = FLAGHOOK_TIMERS_TICK;
	flaghook_client *c = client(&o);
	assert_int_equal(task_count(), before);
	add_many(c, srv, N);
	int fd = -1;
	assert_int_equal(flaghook_fd(c, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);

	int most = task_count(), rounds = 0;
	int64_t end = mono_ms() + DEADLINE_MS;
	for (;;) {
		int64_t next = -1;
		assert_int_equal(flaghook_tick(c, &next), 0);
		rounds++;
		int n = task_count();
		most = n > most ? n : most;
		if (client_stats(c).pending == 0 || mono_ms() >= end)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, next < 0 || next > 100 ? 100 : (int)next);
	}
	print_message("%d ticks; threads %d before, at most %d during (%d in callbacks)\n", rounds, before,
	              most, s.most_tasks);
	assert_int_equal(flaghook_flush(c, 0), 0);
	assert_int_equal(s.results, N);
	assert_int_equal(s.delivered, N);
	assert_int_equal(th_count(srv), N);
	assert_int_equal(most, before);
	assert_int_equal(s.most_tasks, before);
	assert_int_equal(s.elsewhere, 0); /* every callback ran inside our ticks */
	flaghook_client_free(c);
	assert_int_equal(task_count_becomes(before), before);
	th_stop(srv);
	seen_fini(&s);
}

/* 6. The default modes' threads: SYNC none; ASYNC the pool's 4 and one
 * I/O thread; all gone after free. */
static void test_thread_counts(void **state)
{
	(void)state;
	seen s;
	seen_init(&s, 0);
	int base = settled_task_count();

	flaghook_client_options o = options(&s, FLAGHOOK_MODE_SYNC);
	flaghook_client *c = client(&o);
	assert_int_equal(task_count(), base);
	flaghook_client_free(c);
	assert_int_equal(task_count_becomes(base), base);

	o = options(&s, FLAGHOOK_MODE_ASYNC);
	c = client(&o);
	int with = task_count();
	flaghook_client_free(c);
	int after = task_count_becomes(base);
	print_message("threads: %d, ASYNC client %d, after free %d\n", base, with, after);
	assert_int_equal(with, base + 4 + 1);
	assert_int_equal(after, base);
	seen_fini(&s);
}

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	/* A sanitizer may start a helper thread with the first thread anyone
	 * creates: let that happen before any count is taken. */
	pthread_t t;
	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);
	/* Thread counts first: a failed test may leave threads behind. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_counts),
		cmocka_unit_test(test_tick_no_thread),
		cmocka_unit_test(test_sync_all_at_once),
		cmocka_unit_test(test_sync_max_transfers),
		cmocka_unit_test(test_hang_beside_fast),
		cmocka_unit_test(test_thousand_endpoints_at_once),
		cmocka_unit_test(test_shutdown_thousand_in_flight),
	};
	return cmocka_run_group_tests_name("network", tests, NULL, NULL);
}
