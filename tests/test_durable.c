/*
 * The engine with a store behind it: endpoint ids, FIFO through claim,
 * dead letters and re-queueing, a restart that resumes a retry where the
 * last run left it, a full disk, and a PostgreSQL server that goes away.
 * Real loopback receivers (tests/support/httpd.c), real SQLite files, a
 * real PostgreSQL server of the test's own (tests/support/pg.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "flaghook_pg.h"
#include "flaghook_sqlite.h"
#include "httpd.h"
#include "sample.h"
#include "stores/sqlite_testhooks.h"

#include <sqlite3.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "durable-secret"

static char tmpdir[64];

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- what the callbacks saw ---- */

typedef struct seen {
	pthread_mutex_t lock;
	int outcomes[5];
	int attempts_cb;
	char last_event_id[40];
} seen;

static void on_result(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	if (r->outcome >= 0 && r->outcome < 5)
		s->outcomes[r->outcome]++;
	snprintf(s->last_event_id, sizeof(s->last_event_id), "%s", r->event_id);
	pthread_mutex_unlock(&s->lock);
}

static int outcome_count(seen *s, int outcome)
{
	pthread_mutex_lock(&s->lock);
	int n = s->outcomes[outcome];
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- per-case fixtures: torn down even when an assertion fails ---- */

/* What a case sets up, on the heap: the callbacks' state outlives a failed
 * assertion until teardown has freed the client. */
typedef struct fx {
	th_server *srv;
	flaghook_client *c;
	seen s[2];                  /* what each of up to two clients reported */
	void *rx;                   /* the receiver's state, freed after th_stop */
	int refused_fd;             /* a socket bound and never listening, or -1 */
	char pgdir[128];            /* a server of the case's own, "" when none */
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	for (int i = 0; i < 2; i++)
		pthread_mutex_init(&f->s[i].lock, NULL);
	f->refused_fd = -1;
	*state = f;
	return 0;
}

static int sh(const char *cmd, char *out, size_t out_size);

static int teardown(void **state)
{
	fx *f = *state;
	flaghook_client_free(f->c);
	th_stop(f->srv);
	free(f->rx);
	if (f->refused_fd >= 0)
		close(f->refused_fd);
	if (f->pgdir[0]) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "sh tests/support/pg.sh stop '%s' >/dev/null 2>&1", f->pgdir);
		sh(cmd, NULL, 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_mutex_destroy(&f->s[i].lock);
	free(f);
	return 0;
}

/* The receiver's state: zeroed, its first member a mutex. */
static void *rx_new(fx *f, size_t size)
{
	f->rx = calloc(1, size);
	assert_non_null(f->rx);
	pthread_mutex_init((pthread_mutex_t *)f->rx, NULL);
	return f->rx;
}

/* "http://127.0.0.1:<port>/refused": a port bound and never listening,
 * held by f until teardown, so a connection to it is refused. */
static void refused_url(fx *f, char *url, size_t n)
{
	int port = th_refused_port(&f->refused_fd);
	assert_true(port > 0);
	snprintf(url, n, "http://127.0.0.1:%d/refused", port);
}

static flaghook_client *client_with(flaghook_storage *st, seen *s, const flaghook_retry_policy *rp)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.storage = st;
	o.retry = rp;
	o.on_result = on_result;
	o.user_data = s;
	o.poll_interval_ms = 50;
	o.shutdown_timeout_ms = 100;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	return c;
}

static uint64_t add_ep(flaghook_client *c, uint64_t id, const char *url, int fifo)
{
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = fh_sample_environment()->flag->new_state->environment.id;
	e.url = url;
	e.secret = SECRET;
	e.secret_len = strlen(SECRET);
	e.fifo = fifo;
	e.id = id;
	uint64_t got = 0;
	assert_int_equal(flaghook_endpoint_add(c, &got, &e), 0);
	if (id)
		assert_int_equal(got, id);
	return got;
}

/* An event whose changed_by says which one it is. */
typedef struct numbered {
	flaghook_event ev;
	flaghook_flag_change fc;
	char who[32];
} numbered;

static const flaghook_event *event_n(numbered *x, int n)
{
	x->ev = *fh_sample_environment();
	x->fc = *x->ev.flag;
	snprintf(x->who, sizeof(x->who), "n-%d", n);
	x->fc.changed_by = x->who;
	x->ev.flag = &x->fc;
	return &x->ev;
}

static int number_of(const th_request *r)
{
	const char *p = strstr(r->body, "\"changed_by\": \"n-");
	return p ? atoi(p + strlen("\"changed_by\": \"n-")) : -1;
}

static void url_of(th_server *s, char *out, size_t n)
{
	snprintf(out, n, "http://127.0.0.1:%d/hook", th_port(s));
}

/* ---- endpoint ids ---- */

static void test_endpoint_ids(void **state)
{
	fx *f = *state;
	assert_int_equal(flaghook_client_new(&f->c, NULL), 0);
	flaghook_client *c = f->c;
	assert_int_equal(add_ep(c, 40, "http://hooks.invalid/a", 0), 40);
	/* The library's own ids go above every id in use. */
	assert_int_equal(add_ep(c, 0, "http://hooks.invalid/b", 0), 41);
	assert_int_equal(add_ep(c, 7, "http://hooks.invalid/c", 0), 7);
	assert_int_equal(add_ep(c, 0, "http://hooks.invalid/d", 0), 42);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = "http://hooks.invalid/e";
	e.id = 7;
	uint64_t id = 99;
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "7 is already registered"));
	assert_int_equal(id, 99); /* untouched */
	assert_int_equal(flaghook_endpoint_remove(c, 7), 0);
	assert_int_equal(flaghook_endpoint_add(c, NULL, &e), 0); /* free again; out_id may be NULL */
	flaghook_client_free(c);
	f->c = NULL;

	/* A durable store: the library's own ids would change with the order
	 * of registration, so an id must be given. */
	char db[128];
	snprintf(db, sizeof(db), "%s/ids.db", tmpdir);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.storage = &st;
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	c = f->c;
	e.id = 0;
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "stable id"));
	e.id = 12;
	assert_int_equal(flaghook_endpoint_add(c, &id, &e), 0);
	assert_int_equal(id, 12);
}

/* ---- FIFO: every delivery of a FIFO endpoint comes out of the store in
 * order, one at a time, a failed one holding up the rest ---- */

typedef struct order {
	pthread_mutex_t lock;
	int got[64];
	int n;
	int in_flight, max_in_flight;
} order;

static void fifo_handler(const th_request *req, th_reply *reply, void *ud)
{
	order *o = ud;
	pthread_mutex_lock(&o->lock);
	int k = o->n < 64 ? o->n : 63;
	o->got[k] = number_of(req);
	o->n++;
	o->in_flight++;
	if (o->in_flight > o->max_in_flight)
		o->max_in_flight = o->in_flight;
	/* The third request fails: its retry must still come before the next. */
	reply->status = o->n == 3 ? 503 : 200;
	pthread_mutex_unlock(&o->lock);
	sleep_ms(2);
	pthread_mutex_lock(&o->lock);
	o->in_flight--;
	pthread_mutex_unlock(&o->lock);
}

static void test_fifo_through_claim(void **state)
{
	fx *f = *state;
	order *o = rx_new(f, sizeof(*o));
	assert_int_equal(th_start(&f->srv, fifo_handler, o), 0);
	char url[96];
	url_of(f->srv, url, sizeof(url));
	static const int64_t quick[] = { 30 };
	flaghook_retry_policy rp = FLAGHOOK_RETRY_POLICY_INIT;
	rp.kind = FLAGHOOK_RETRY_STANDARD;
	rp.schedule_ms = quick;
	rp.schedule_count = 1;
	rp.jitter_percent = -1;
	flaghook_client *c = f->c = client_with(NULL, &f->s[0], &rp);
	add_ep(c, 5, url, 1);
	numbered x;
	for (int i = 0; i < 20; i++)
		assert_int_equal(flaghook_emit(c, event_n(&x, i)), 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(outcome_count(&f->s[0], FLAGHOOK_OUTCOME_DELIVERED), 20);
	pthread_mutex_lock(&o->lock);
	int n = o->n, max_in_flight = o->max_in_flight, got[21];
	memcpy(got, o->got, sizeof(got));
	pthread_mutex_unlock(&o->lock);
	assert_int_equal(n, 21); /* one retry */
	assert_int_equal(max_in_flight, 1);
	/* 0 1 2(503) 2 3 4 ... 19 */
	int want = 0;
	for (int i = 0; i < n; i++) {
		if (i == 3)
			want--; /* the retry of 2 */
		assert_int_equal(got[i], want);
		want++;
	}
}

/* ---- dead letters: listed with their attempts, re-queued, delivered ---- */

typedef struct dead_rx {
	pthread_mutex_t lock;
	int status;
	int n;
	char ids[4][40];
} dead_rx;

static void dead_handler(const th_request *req, th_reply *reply, void *ud)
{
	dead_rx *d = ud;
	pthread_mutex_lock(&d->lock);
	const char *id = th_header(req, "X-Flaghook-Event-Id");
	if (d->n < 4)
		snprintf(d->ids[d->n], sizeof(d->ids[0]), "%s", id ? id : "");
	d->n++;
	reply->status = d->status;
	reply->body = d->status == 200 ? "ok" : "{\"detail\": \"try later\"}";
	pthread_mutex_unlock(&d->lock);
}

typedef struct listed {
	int n;
	flaghook_delivery d;
	char event_id[40];
	flaghook_attempt a;
	char error[128];
	char response[64];
} listed;

static int list_one(const flaghook_delivery *d, void *arg)
{
	listed *l = arg;
	l->d = *d;
	snprintf(l->event_id, sizeof(l->event_id), "%s", d->event_id);
	l->d.event_id = l->event_id;
	l->d.body = NULL;
	l->n++;
	return 0;
}

static int attempt_one(const flaghook_attempt *a, void *arg)
{
	listed *l = arg;
	l->a = *a;
	snprintf(l->error, sizeof(l->error), "%s", a->error);
	snprintf(l->response, sizeof(l->response), "%.*s", (int)a->response_len, (const char *)a->response);
	l->n++;
	return 0;
}

static void dead_letter_cycle(fx *f, flaghook_storage *st, const char *name)
{
	dead_rx *dd = rx_new(f, sizeof(*dd));
	dd->status = 500;
	assert_int_equal(th_start(&f->srv, dead_handler, dd), 0);
	char url[96];
	url_of(f->srv, url, sizeof(url));
	/* Flagsmith's policy: an HTTP error is final, a dead letter at once. */
	flaghook_client *c = f->c = client_with(st, &f->s[0], NULL);
	add_ep(c, 11, url, 0);
	numbered x;
	assert_int_equal(flaghook_emit(c, event_n(&x, 1)), 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(outcome_count(&f->s[0], FLAGHOOK_OUTCOME_GAVE_UP), 1);

	const flaghook_storage *cs = NULL;
	assert_int_equal(flaghook_client_storage(c, &cs), 0);
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.state = FLAGHOOK_DELIVERY_DEAD;
	q.endpoint_id = 11;
	listed l = { 0 };
	assert_int_equal(flaghook_storage_list(cs, &q, list_one, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.d.state, FLAGHOOK_DELIVERY_DEAD);
	assert_int_equal(l.d.last_status, 500);
	assert_int_equal(l.d.attempts, 1);
	assert_int_equal(l.d.endpoint_id, 11);
	assert_string_equal(l.event_id, dd->ids[0]);
	uint64_t dead_id = l.d.id;

	flaghook_query qa = FLAGHOOK_QUERY_INIT;
	qa.delivery_id = dead_id;
	listed la = { 0 };
	assert_int_equal(flaghook_storage_attempts(cs, &qa, attempt_one, &la), 0);
	assert_int_equal(la.n, 1);
	assert_int_equal(la.a.number, 1);
	assert_int_equal(la.a.outcome, FLAGHOOK_OUTCOME_GAVE_UP);
	assert_int_equal(la.a.status, 500);
	assert_int_equal(la.a.errclass, FLAGHOOK_ERRCLASS_HTTP);
	assert_string_equal(la.error, "HTTP status 500");
	assert_string_equal(la.response, "{\"detail\": \"try later\"}");
	assert_true(la.a.finished_us >= la.a.started_us && la.a.started_us > 0);

	/* The receiver is fixed; the operator re-queues the dead letter. */
	pthread_mutex_lock(&dd->lock);
	dd->status = 200;
	pthread_mutex_unlock(&dd->lock);
	flaghook_query qr = FLAGHOOK_QUERY_INIT;
	qr.delivery_id = dead_id;
	uint64_t count = 0;
	assert_int_equal(flaghook_client_requeue(c, &qr, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(outcome_count(&f->s[0], FLAGHOOK_OUTCOME_DELIVERED), 1);
	pthread_mutex_lock(&dd->lock);
	int n = dd->n;
	char ids[2][40];
	memcpy(ids, dd->ids, sizeof(ids));
	pthread_mutex_unlock(&dd->lock);
	assert_int_equal(n, 2);
	/* The same event: a receiver that saw it fail knows it again. */
	assert_string_equal(ids[1], ids[0]);
	/* Re-queueing it again finds nothing dead. */
	q.state = FLAGHOOK_DELIVERY_DEAD;
	assert_int_equal(flaghook_client_requeue(c, &q, &count), 0);
	assert_int_equal(count, 0);
	/* Bad queries are refused with a reason. */
	flaghook_query bad = FLAGHOOK_QUERY_INIT;
	bad.state = 9;
	assert_int_equal(flaghook_storage_list(cs, &bad, list_one, &l), FLAGHOOK_EINVAL);
	bad = (flaghook_query)FLAGHOOK_QUERY_INIT;
	bad.version = 99;
	assert_int_equal(flaghook_storage_requeue(cs, &bad, NULL), FLAGHOOK_EVERSION);
	assert_int_equal(flaghook_storage_list(cs, NULL, NULL, NULL), FLAGHOOK_EINVAL);
	printf("%s: dead letter listed, its attempt logged, re-queued and delivered\n", name);
}

static void test_dead_letters_memory(void **state)
{
	dead_letter_cycle(*state, NULL, "memory");
}

static void test_dead_letters_sqlite(void **state)
{
	char db[128];
	snprintf(db, sizeof(db), "%s/dead.db", tmpdir);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	dead_letter_cycle(*state, &st, "sqlite");
}

/* ---- a restart resumes a retry with its count and time ---- */

typedef struct resume_rx {
	pthread_mutex_t lock;
	int n;
	int status;
	char ids[4][40];
	int64_t at_ms[4];
} resume_rx;

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void resume_handler(const th_request *req, th_reply *reply, void *ud)
{
	resume_rx *r = ud;
	pthread_mutex_lock(&r->lock);
	if (r->n < 4) {
		const char *id = th_header(req, "X-Flaghook-Event-Id");
		snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", id ? id : "");
		r->at_ms[r->n] = wall_ms();
	}
	r->n++;
	reply->status = r->status;
	pthread_mutex_unlock(&r->lock);
}

static void test_sqlite_restart_resumes(void **state)
{
	fx *f = *state;
	char db[128];
	snprintf(db, sizeof(db), "%s/resume.db", tmpdir);
	resume_rx *r = rx_new(f, sizeof(*r));
	r->status = 503;
	assert_int_equal(th_start(&f->srv, resume_handler, r), 0);
	char url[96];
	url_of(f->srv, url, sizeof(url));
	/* Far enough that run 1 shuts down before the retry is due, however
	 * slow the machine. */
	enum { WAIT_MS = 5000 };
	static const int64_t wait_ms[] = { WAIT_MS };
	flaghook_retry_policy rp = FLAGHOOK_RETRY_POLICY_INIT;
	rp.kind = FLAGHOOK_RETRY_STANDARD;
	rp.schedule_ms = wait_ms;
	rp.schedule_count = 1;
	rp.jitter_percent = -1;

	/* Run 1: the first attempt fails; the retry is 5 s away when the
	 * client shuts down.  Nothing is abandoned: it is released. */
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	flaghook_client *c = f->c = client_with(&st, &f->s[0], &rp);
	uint64_t ep = add_ep(c, 3, url, 0);
	numbered x;
	assert_int_equal(flaghook_emit(c, event_n(&x, 1)), 0);
	assert_int_equal(th_wait(f->srv, 1, 30000), 0);
	/* The failed attempt is recorded and its retry scheduled. */
	flaghook_endpoint_stats es = FLAGHOOK_ENDPOINT_STATS_INIT;
	for (int64_t end = mono_ms() + 30000; mono_ms() < end; sleep_ms(5)) {
		assert_int_equal(flaghook_endpoint_stats_get(c, ep, &es), 0);
		if (es.retried >= 1)
			break;
	}
	assert_int_equal(es.retried, 1);
	flaghook_client_free(c);
	f->c = NULL;
	pthread_mutex_lock(&r->lock);
	int n1 = r->n;
	int64_t first_ms = r->at_ms[0];
	pthread_mutex_unlock(&r->lock);
	assert_int_equal(n1, 1); /* the retry did not come before shutdown */
	assert_int_equal(f->s[0].outcomes[FLAGHOOK_OUTCOME_RELEASED], 1);
	assert_int_equal(f->s[0].outcomes[FLAGHOOK_OUTCOME_ABANDONED], 0);

	/* Run 2: the receiver works now.  The delivery resumes as attempt 2,
	 * at the stored time, with the same event id. */
	pthread_mutex_lock(&r->lock);
	r->status = 200;
	pthread_mutex_unlock(&r->lock);
	flaghook_storage st2 = FLAGHOOK_STORAGE_INIT;
	assert_int_equal(flaghook_sqlite_open(&st2, &so), 0);
	c = f->c = client_with(&st2, &f->s[1], &rp);
	add_ep(c, 3, url, 0);
	assert_int_equal(flaghook_flush(c, 60000), 0);
	assert_int_equal(outcome_count(&f->s[1], FLAGHOOK_OUTCOME_DELIVERED), 1);
	pthread_mutex_lock(&r->lock);
	int n2 = r->n;
	int same = strcmp(r->ids[1], r->ids[0]) == 0;
	int64_t gap = r->at_ms[1] - first_ms;
	pthread_mutex_unlock(&r->lock);
	assert_int_equal(n2, 2);
	assert_true(same);
	/* Not before its time: 5 s after the first attempt (timer slack aside). */
	assert_true(gap >= WAIT_MS - 100);
	const flaghook_storage *cs = NULL;
	assert_int_equal(flaghook_client_storage(c, &cs), 0);
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.endpoint_id = 3;
	listed l = { 0 };
	assert_int_equal(flaghook_storage_attempts(cs, &q, attempt_one, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.a.number, 2); /* the last one listed */
	assert_int_equal(l.a.outcome, FLAGHOOK_OUTCOME_DELIVERED);
	printf("restart: retry resumed %lld ms after the first attempt, as attempt 2, same event id\n",
	       (long long)gap);
}

/* ---- shutdown hands a whole backlog back in one go ---- */

static long sql_count(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	long n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

static void test_shutdown_releases_backlog(void **state)
{
	fx *f = *state;
	char url[96];
	refused_url(f, url, sizeof(url));
	char db[128];
	snprintf(db, sizeof(db), "%s/backlog.db", tmpdir);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	static const int64_t later[] = { 3600000 };
	flaghook_retry_policy rp = FLAGHOOK_RETRY_POLICY_INIT;
	rp.kind = FLAGHOOK_RETRY_STANDARD;
	rp.schedule_ms = later;
	rp.schedule_count = 1;
	flaghook_client *c = f->c = client_with(&st, &f->s[0], &rp);
	add_ep(c, 2, url, 0); /* refused: every attempt fails, its retry an hour away */
	numbered x;
	enum { N = 300 };
	for (int i = 0; i < N; i++)
		assert_int_equal(flaghook_emit(c, event_n(&x, i)), 0);
	flaghook_client_free(c);
	f->c = NULL;
	assert_int_equal(f->s[0].outcomes[FLAGHOOK_OUTCOME_RELEASED], N);
	/* Every one is pending and held by nobody: the next run takes it. */
	assert_int_equal(sql_count(db, "SELECT count(*) FROM deliveries WHERE state = 0"), N);
	assert_int_equal(sql_count(db, "SELECT count(*) FROM deliveries WHERE holder IS NOT NULL"), 0);
}

/* ---- the disk fills up mid-run ---- */

static void test_sqlite_disk_full(void **state)
{
	fx *f = *state;
	char db[128];
	snprintf(db, sizeof(db), "%s/full.db", tmpdir);
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_server *srv = f->srv;
	char url[96];
	url_of(srv, url, sizeof(url));
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	flaghook_client *c = f->c = client_with(&st, &f->s[0], NULL);
	add_ep(c, 1, url, 0);
	const flaghook_storage *cs = NULL;
	assert_int_equal(flaghook_client_storage(c, &cs), 0);
	numbered x;
	int accepted = 0, rc = 0;
	for (; accepted < 5; accepted++)
		assert_int_equal(flaghook_emit(c, event_n(&x, accepted)), 0);
	/* No more room: the database may not grow by another page. */
	assert_int_equal(flaghook__sqlite_exec(cs->user_data, "PRAGMA max_page_count = 1"), 0);
	for (int i = 0; i < 200 && rc == 0; i++) {
		rc = flaghook_emit(c, event_n(&x, 100 + i));
		accepted += rc == 0;
	}
	assert_int_equal(rc, FLAGHOOK_ESTORAGE);
	assert_non_null(strstr(flaghook_last_error(), "nothing was sent"));
	assert_non_null(strstr(flaghook_last_error(), "sqlite"));
	printf("disk full: emit said \"%s\"\n", flaghook_last_error());
	/* The process goes on, and what was accepted before is delivered. */
	assert_int_equal(th_wait(srv, (size_t)accepted, 60000), 0);
	sleep_ms(100); /* a refused event sent anyway would show here (not a wait for anything) */
	assert_int_equal(th_count(srv), (size_t)accepted);
	/* Room again: emits work again. */
	assert_int_equal(flaghook__sqlite_exec(cs->user_data, "PRAGMA max_page_count = 1073741823"), 0);
	assert_int_equal(flaghook_emit(c, event_n(&x, 999)), 0);
	assert_int_equal(th_wait(srv, (size_t)accepted + 1, 60000), 0);
}

/* ---- a PostgreSQL server that goes away and comes back ---- */

static int sh(const char *cmd, char *out, size_t out_size)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = out ? fread(out, 1, out_size - 1, p) : 0;
	if (out) {
		out[n] = '\0';
		while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			out[--n] = '\0';
	}
	return pclose(p);
}

static void test_pg_server_goes_away(void **state)
{
	fx *f = *state;
	const char *env = getenv("FLAGHOOK_PG");
	if (!env || !*env) {
		printf("pg: skipped: no PostgreSQL server could be started for the tests"
		       " (FLAGHOOK_PG unset or empty)\n");
		skip();
	}
	/* A server of this test's own: it is halted mid-run; teardown stops it. */
	char dir[128], cmd[512], conninfo[512];
	snprintf(dir, sizeof(dir), "%s/pg", tmpdir);
	snprintf(cmd, sizeof(cmd), "sh tests/support/pg.sh start '%s' 2>&1", dir);
	int started = sh(cmd, conninfo, sizeof(conninfo));
	snprintf(f->pgdir, sizeof(f->pgdir), "%s", dir); /* stop even a half-started one */
	if (started != 0) {
		printf("pg: skipped: could not start a second server: %s\n", conninfo);
		skip();
	}
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_server *srv = f->srv;
	char url[96];
	url_of(srv, url, sizeof(url));
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
	po.conninfo = conninfo;
	po.connect_timeout_ms = 2000;
	assert_int_equal(flaghook_pg_open(&st, &po), 0);
	flaghook_client *c = f->c = client_with(&st, &f->s[0], NULL);
	add_ep(c, 1, url, 0);
	numbered x;
	for (int i = 0; i < 5; i++)
		assert_int_equal(flaghook_emit(c, event_n(&x, i)), 0);
	assert_int_equal(th_wait(srv, 5, 60000), 0);

	snprintf(cmd, sizeof(cmd), "sh tests/support/pg.sh halt '%s' >/dev/null 2>&1", dir);
	assert_int_equal(sh(cmd, NULL, 0), 0);
	int rc = flaghook_emit(c, event_n(&x, 50));
	assert_int_equal(rc, FLAGHOOK_ESTORAGE);
	printf("pg gone: emit said \"%s\"\n", flaghook_last_error());
	assert_null(strstr(flaghook_last_error(), "password="));
	/* Nothing of the refused event went out (a send would show by now;
	 * not a wait for anything). */
	sleep_ms(200);
	assert_int_equal(th_count(srv), 5);

	snprintf(cmd, sizeof(cmd), "sh tests/support/pg.sh resume '%s' >/dev/null 2>&1", dir);
	assert_int_equal(sh(cmd, NULL, 0), 0);
	/* The store reconnects: the next emit is recorded and delivered. */
	rc = flaghook_emit(c, event_n(&x, 51));
	if (rc)
		rc = flaghook_emit(c, event_n(&x, 51)); /* one reconnect may be spent on a dead socket */
	assert_int_equal(rc, 0);
	assert_int_equal(th_wait(srv, 6, 60000), 0);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/flaghook-durable-XXXXXX");
	/* Searchable by the postgres user the test's own server runs as. */
	return mkdtemp(tmpdir) && chmod(tmpdir, 0755) == 0 ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_endpoint_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_through_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_letters_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_letters_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_restart_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_releases_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_server_goes_away, setup, teardown),
	};
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
