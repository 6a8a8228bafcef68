/*
 * Crash tests: real processes, real SIGKILLs, a real loopback receiver.
 *
 * The test binary is also the flag server: run as `test_crash child ...`
 * it opens a durable store, registers one endpoint under a fixed id, emits
 * events numbered FIRST..LAST-1 one after another and writes "A n" to its
 * stdout (a pipe to the test) after each emit returned 0, then flushes
 * until the store has nothing pending.  Each event carries its number in
 * changed_by ("crash-<n>"), so the receiver can tell which emit a request
 * belongs to whatever event id the library gave it.
 *
 * SQLite: one child at a time, killed with SIGKILL at random moments and
 * restarted, FLAGHOOK_CRASH_KILLS times (50 by default); a last child runs
 * to the end.  PostgreSQL: three children share one outbox, one is killed
 * mid-run, and the other two must finish its work once its lease runs out.
 *
 * Checked: every acknowledged emit arrived (answered 2xx) at least once;
 * nothing arrived that was not emitted; every request was signed with the
 * endpoint's secret over the bytes that arrived; an event id always came
 * with the same event.  Printed: kills, events, arrivals and duplicates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flaghook.h"
#include "flaghook_pg.h"
#include "flaghook_sqlite.h"
#include <libpq-fe.h>
#include "httpd.h"
#include "sample.h"

#define SECRET "crash-secret"
#define ENDPOINT_ID 7
#define MAX_EVENTS 20000
#define MAX_IDS 65536

static char self_path[4096];

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the child: a flag server with a durable store ---- */

static int child_main(int argc, char **argv)
{
	/* child KIND TARGET URL FIRST LAST TAG */
	if (argc != 8)
		return 2;
	const char *kind = argv[2], *target = argv[3], *url = argv[4], *tag = argv[7];
	int first = atoi(argv[5]), last = atoi(argv[6]);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	int rc;
	if (!strcmp(kind, "sqlite")) {
		flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
		so.path = target;
		rc = flaghook_sqlite_open(&st, &so);
	} else {
		flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
		po.conninfo = target;
		po.owner = tag;
		po.lease_ms = 2000; /* a dead process's work is taken over within 2 s */
		po.schema = getenv("FLAGHOOK_CRASH_SCHEMA");
		rc = flaghook_pg_open(&st, &po);
	}
	if (rc) {
		fprintf(stderr, "child %s: open: %s\n", tag, flaghook_last_error());
		return 3;
	}
	/* 500s are retried quickly so that retries are in flight at kills. */
	static const int64_t schedule[] = { 20, 50, 100 };
	flaghook_retry_policy rp = FLAGHOOK_RETRY_POLICY_INIT;
	rp.kind = FLAGHOOK_RETRY_STANDARD;
	rp.schedule_ms = schedule;
	rp.schedule_count = 3;
	rp.max_attempts = 50;
	rp.jitter_percent = -1;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.storage = &st;
	o.retry = &rp;
	o.poll_interval_ms = 100;
	o.user_agent = tag;
	o.shutdown_timeout_ms = 200;
	o.breaker_threshold = -1;
	flaghook_client *c = NULL;
	if (flaghook_client_new(&c, &o)) {
		fprintf(stderr, "child %s: client: %s\n", tag, flaghook_last_error());
		flaghook_storage_close(&st);
		return 3;
	}
	flaghook_endpoint_options eo = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	eo.scope_id = fh_sample_environment()->flag->new_state->environment.id;
	eo.url = url;
	eo.secret = SECRET;
	eo.secret_len = strlen(SECRET);
	eo.id = ENDPOINT_ID; /* the same in every run: stored deliveries name it */
	if (flaghook_endpoint_add(c, NULL, &eo)) {
		fprintf(stderr, "child %s: endpoint: %s\n", tag, flaghook_last_error());
		return 3;
	}
	flaghook_event ev = *fh_sample_environment();
	flaghook_flag_change fc = *ev.flag;
	ev.flag = &fc;
	char who[32];
	fc.changed_by = who;
	for (int n = first; n < last; n++) {
		snprintf(who, sizeof(who), "crash-%d", n);
		while ((rc = flaghook_emit(c, &ev)) != 0) {
			fprintf(stderr, "child %s: emit %d: %s (retrying)\n", tag, n, flaghook_last_error());
			sleep_ms(10);
		}
		char line[32];
		int len = snprintf(line, sizeof(line), "A %d\n", n);
		if (write(1, line, (size_t)len) != len)
			return 4;
	}
	rc = flaghook_flush(c, 60000);
	if (rc)
		fprintf(stderr, "child %s: flush: %s\n", tag, flaghook_last_error());
	flaghook_client_free(c);
	return rc ? 5 : 0;
}

/* ---- the receiver ---- */

typedef struct arrival {
	int n;
	int ok;                     /* answered 2xx */
	int proc;                   /* index of the User-Agent tag, -1 unknown */
	char event_id[40];
} arrival;

typedef struct receiver {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	arrival *a;
	size_t count, cap;
	unsigned requests;
	int bad_signature, no_event_id, unparsable;
	int delay_ms;               /* per reply: lets a backlog build up */
	/* Requests from process crash-p<hold_proc> wait until `released`: the
	 * process keeps a backlog, however fast the machine (0: none held). */
	int hold_proc, released;
} receiver;

static int proc_of(const char *ua)
{
	if (ua && !strncmp(ua, "crash-p", 7))
		return atoi(ua + 7);
	return -1;
}

static void handle(const th_request *req, th_reply *reply, void *ud)
{
	receiver *r = ud;
	const char *sig = th_header(req, "X-Flagsmith-Signature");
	const char *id = th_header(req, "X-Flaghook-Event-Id");
	const char *p = strstr(req->body, "\"changed_by\": \"crash-");
	int good_sig = sig && flaghook_verify(SECRET, strlen(SECRET), req->body, req->body_len, sig, strlen(sig)) == 0;
	int proc = proc_of(th_header(req, "User-Agent"));
	pthread_mutex_lock(&r->lock);
	while (r->hold_proc && proc == r->hold_proc && !r->released)
		pthread_cond_wait(&r->cond, &r->lock);
	unsigned k = ++r->requests;
	/* Every seventh request fails: the retry goes through the store. */
	int ok = k % 7 != 0;
	reply->status = ok ? 200 : 500;
	reply->delay_ms = r->delay_ms;
	if (!good_sig)
		r->bad_signature++;
	if (!id || strlen(id) >= sizeof(r->a[0].event_id))
		r->no_event_id++;
	if (!p)
		r->unparsable++;
	if (p && id && r->count < r->cap) {
		arrival *x = &r->a[r->count++];
		x->n = atoi(p + strlen("\"changed_by\": \"crash-"));
		x->ok = ok;
		x->proc = proc;
		snprintf(x->event_id, sizeof(x->event_id), "%s", id);
	}
	pthread_mutex_unlock(&r->lock);
}

static receiver *receiver_new(void)
{
	receiver *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->cap = MAX_EVENTS * 4;
	r->a = calloc(r->cap, sizeof(*r->a));
	assert_non_null(r->a);
	return r;
}

static void receiver_release(receiver *r)
{
	pthread_mutex_lock(&r->lock);
	r->released = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void receiver_free(receiver *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->a);
	free(r);
}

/* ---- children ---- */

typedef struct child {
	pid_t pid;
	FILE *out;                  /* its stdout: one "A n" line per emit */
	int acks;
} child;

static child spawn(const char *kind, const char *target, const char *url, int first, int last, const char *tag)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	char a_first[16], a_last[16];
	snprintf(a_first, sizeof(a_first), "%d", first);
	snprintf(a_last, sizeof(a_last), "%d", last);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(self_path, self_path, "child", kind, target, url, a_first, a_last, tag, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	assert_non_null(f);
	return (child){ pid, f, 0 };
}

/* Reads the child's acknowledgements into acked[] until it has made
 * `until` of them in all, or to EOF (it has exited or been killed) when
 * until < 0; returns how many it has made. */
static int read_acks(child *ch, unsigned char *acked, int max_n, int until)
{
	int n;
	char line[64];
	while ((until < 0 || ch->acks < until) && fgets(line, sizeof(line), ch->out)) {
		if (sscanf(line, "A %d", &n) == 1 && n >= 0 && n < max_n) {
			acked[n] = 1;
			ch->acks++;
		}
	}
	return ch->acks;
}

static int collect(child *ch, unsigned char *acked, int max_n)
{
	read_acks(ch, acked, max_n, -1);
	fclose(ch->out);
	ch->out = NULL;
	return ch->acks;
}

static int wait_exit(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- per-case fixtures: torn down even when an assertion fails ---- */

typedef struct fx {
	th_server *srv;
	receiver *r;
	pid_t pids[3];              /* children still to reap, 0 when none */
	char dir[64];               /* a temporary directory, "" when none */
	char schema[64];            /* a PostgreSQL schema to drop, "" when none */
} fx;

/* Drops a schema of FLAGHOOK_PG's server. */
static void pg_drop_schema(const char *schema)
{
	const char *conninfo = getenv("FLAGHOOK_PG");
	if (!conninfo || !*conninfo)
		return;
	PGconn *db = PQconnectdb(conninfo);
	if (PQstatus(db) == CONNECTION_OK) {
		char sql[160];
		snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
		         " DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
		PQclear(PQexec(db, sql));
	}
	PQfinish(db);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	for (int i = 0; i < 3; i++)
		if (f->pids[i] > 0) {
			kill(f->pids[i], SIGKILL);
			wait_exit(f->pids[i]);
		}
	if (f->r)
		receiver_release(f->r);
	th_stop(f->srv);
	if (f->r)
		receiver_free(f->r);
	if (f->dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", f->dir);
	}
	if (f->schema[0])
		pg_drop_schema(f->schema);
	free(f);
	return 0;
}

/* ---- checking what arrived ---- */

typedef struct tally {
	int acked, arrived_ok, missing, unexpected, duplicates, mismatched, requests;
} tally;

static int by_event_id(const void *x, const void *y)
{
	const arrival *a = x, *b = y;
	int c = strcmp(a->event_id, b->event_id);
	return c ? c : (a->ok != b->ok ? b->ok - a->ok : 0);
}

/* `emitted[n]`: an emit for n was at least started. */
static tally check_arrivals(receiver *r, const unsigned char *acked, const unsigned char *emitted, int max_n)
{
	tally t = { 0 };
	unsigned char *ok = calloc((size_t)max_n, 1);
	assert_non_null(ok);
	pthread_mutex_lock(&r->lock);
	t.requests = (int)r->count;
	for (size_t i = 0; i < r->count; i++) {
		arrival *x = &r->a[i];
		if (x->n < 0 || x->n >= max_n || !emitted[x->n]) {
			t.unexpected++;
			continue;
		}
		if (x->ok)
			ok[x->n] = 1;
	}
	/* Duplicates: an event id answered 2xx more than once.  The same id
	 * must always carry the same event. */
	qsort(r->a, r->count, sizeof(*r->a), by_event_id);
	for (size_t i = 1; i < r->count; i++) {
		arrival *x = &r->a[i - 1], *y = &r->a[i];
		if (strcmp(x->event_id, y->event_id))
			continue;
		if (x->n != y->n)
			t.mismatched++;
		if (x->ok && y->ok)
			t.duplicates++;
	}
	pthread_mutex_unlock(&r->lock);
	for (int n = 0; n < max_n; n++) {
		t.acked += acked[n];
		t.arrived_ok += ok[n];
		if (acked[n] && !ok[n])
			t.missing++;
	}
	free(ok);
	return t;
}

/* One owner at a time, from the outbox's own attempt log: no two
 * attempts of one delivery overlap in time, whoever made them.  Returns
 * the number of overlaps; *attempts and *owners_of_one count what was
 * looked at (attempts, deliveries attempted by more than one process). */
static int attempt_overlaps(const char *conninfo, const char *schema, int *attempts, int *multi_owner)
{
	PGconn *db = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(db), CONNECTION_OK);
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT delivery_id, owner, started_us, finished_us FROM %s.attempts"
	         " ORDER BY delivery_id, started_us", schema);
	PGresult *res = PQexec(db, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	int n = PQntuples(res), overlaps = 0;
	*attempts = n;
	*multi_owner = 0;
	for (int i = 1; i < n; i++) {
		if (strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i - 1, 0)))
			continue;
		long long prev_end = atoll(PQgetvalue(res, i - 1, 3)), start = atoll(PQgetvalue(res, i, 2));
		if (start < prev_end) {
			overlaps++;
			printf("crash-pg: delivery %s: attempt by %s started before the one by %s ended\n",
			       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i - 1, 1));
		}
		*multi_owner += strcmp(PQgetvalue(res, i, 1), PQgetvalue(res, i - 1, 1)) != 0;
	}
	PQclear(res);
	PQfinish(db);
	return overlaps;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && atoi(v) > 0 ? atoi(v) : dflt;
}

/* ---- SQLite: one process, killed again and again ---- */

static void test_sqlite_kill_loop(void **state)
{
	fx *f = *state;
	int kills = env_int("FLAGHOOK_CRASH_KILLS", 50);
	int total = env_int("FLAGHOOK_CRASH_EVENTS", 1500);
	if (total > MAX_EVENTS)
		total = MAX_EVENTS;
	snprintf(f->dir, sizeof(f->dir), "/tmp/flaghook-crash-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		fail_msg("mkdtemp failed");
	}
	char db[256];
	snprintf(db, sizeof(db), "%s/outbox.db", f->dir);
	receiver *r = f->r = receiver_new();
	assert_int_equal(th_start(&f->srv, handle, r), 0);
	th_server *srv = f->srv;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", th_port(srv));

	unsigned char *acked = calloc((size_t)total, 1), *emitted = calloc((size_t)total, 1);
	assert_non_null(acked);
	assert_non_null(emitted);
	unsigned seed = (unsigned)time(NULL);
	if (getenv("FLAGHOOK_SEED"))
		seed = (unsigned)atoi(getenv("FLAGHOOK_SEED"));
	srand(seed);
	int next = 0, done_kills = 0, kills_emitting = 0;
	int64_t t0 = mono_ms();
	for (; done_kills < kills; done_kills++) {
		child ch = spawn("sqlite", db, url, next, total, "crash-p0");
		f->pids[0] = ch.pid;
		/* Die anywhere: opening, emitting, delivering, flushing. */
		sleep_ms(20 + rand() % 130);
		kill(ch.pid, SIGKILL);
		wait_exit(ch.pid);
		f->pids[0] = 0;
		collect(&ch, acked, total);
		while (next < total && acked[next])
			next++;
		kills_emitting += next < total; /* it died with emits still to make */
		/* The emit in progress at the kill may have been stored. */
		if (next < total)
			emitted[next] = 1;
	}
	/* The last run goes to the end: emits what is left and drains the
	 * store, including what every killed run left behind. */
	child last = spawn("sqlite", db, url, next, total, "crash-p0");
	f->pids[0] = last.pid;
	collect(&last, acked, total);
	int rc = wait_exit(last.pid);
	f->pids[0] = 0;
	for (int n = 0; n < total; n++)
		emitted[n] |= acked[n];
	int64_t elapsed = mono_ms() - t0;
	th_stop(srv);
	f->srv = NULL;
	tally t = check_arrivals(r, acked, emitted, total);
	printf("crash-sqlite: %d kills (%d while emitting, the rest while delivering), %d events "
	       "acknowledged, %d arrived (2xx), %d requests, %d duplicates, %d missing, %d unexpected, "
	       "%d bad signatures, seed %u, %.1f s\n",
	       done_kills, kills_emitting, t.acked, t.arrived_ok, t.requests, t.duplicates, t.missing,
	       t.unexpected, r->bad_signature, seed, elapsed / 1000.0);
	assert_int_equal(rc, 0);
	assert_true(done_kills >= kills);
	assert_int_equal(t.acked, total);
	assert_int_equal(t.missing, 0);
	assert_int_equal(t.unexpected, 0);
	assert_int_equal(t.mismatched, 0);
	assert_int_equal(r->bad_signature, 0);
	assert_int_equal(r->no_event_id, 0);
	assert_int_equal(r->unparsable, 0);
	/* The outbox is empty and kept nothing it should not have. */
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	uint64_t pending = 99;
	assert_int_equal(st.pending(&pending, st.user_data), 0);
	assert_int_equal(pending, 0);
	flaghook_storage_close(&st);
	free(acked);
	free(emitted);
}

/* ---- PostgreSQL: three processes, one killed ---- */

static void test_pg_three_processes(void **state)
{
	fx *f = *state;
	const char *conninfo = getenv("FLAGHOOK_PG");
	if (!conninfo || !*conninfo) {
		printf("crash-pg: skipped: FLAGHOOK_PG is not set (tests/run.sh sets it when it can start a "
		       "PostgreSQL server)\n");
		skip();
	}
	/* A schema of its own (the store creates it), so that earlier runs
	 * and other tests do not count; the children inherit the name. */
	char schema[64];
	snprintf(schema, sizeof(schema), "crash_%ld", (long)getpid());
	pg_drop_schema(schema);             /* a run with this pid may have left it */
	snprintf(f->schema, sizeof(f->schema), "%s", schema); /* teardown drops it */
	setenv("FLAGHOOK_CRASH_SCHEMA", schema, 1);
	int per = env_int("FLAGHOOK_CRASH_PG_EVENTS", 300);
	int total = per * 3;
	receiver *r = f->r = receiver_new();
	r->delay_ms = 10;
	/* p2's requests wait until it has been killed: it dies holding a
	 * backlog (at most its in-flight limit can be on the wire, the rest of
	 * its acknowledged emits are in the store), which the others must
	 * take over once its lease runs out. */
	r->hold_proc = 2;
	assert_int_equal(th_start(&f->srv, handle, r), 0);
	th_server *srv = f->srv;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", th_port(srv));
	unsigned char *acked = calloc((size_t)total, 1), *emitted = calloc((size_t)total, 1);
	assert_non_null(acked);
	assert_non_null(emitted);

	int64_t t0 = mono_ms();
	child p[3];
	char tag[3][16];
	for (int i = 0; i < 3; i++) {
		snprintf(tag[i], sizeof(tag[i]), "crash-p%d", i + 1);
		p[i] = spawn("pg", conninfo, url, i * per, (i + 1) * per, tag[i]);
		f->pids[i] = p[i].pid;
	}
	/* Kill p2 mid-run: after a third of its emits, with its backlog held. */
	alarm(900); /* a hang bound: a child that stalls must not hang the test */
	read_acks(&p[1], acked, total, per / 3);
	kill(p[1].pid, SIGKILL);
	int rc2 = wait_exit(p[1].pid);
	f->pids[1] = 0;
	receiver_release(r);
	int p2_acked = collect(&p[1], acked, total);
	collect(&p[0], acked, total);
	collect(&p[2], acked, total);
	int rc1 = wait_exit(p[0].pid), rc3 = wait_exit(p[2].pid);
	f->pids[0] = f->pids[2] = 0;
	alarm(0);
	int64_t elapsed = mono_ms() - t0;
	th_stop(srv);
	f->srv = NULL;
	for (int n = 0; n < total; n++)
		emitted[n] = 1; /* every child was asked for its whole range */
	tally t = check_arrivals(r, acked, emitted, total);

	/* One owner at a time: only what the killed process held may arrive
	 * from two processes; the survivors never both sent an event. */
	int shared_by_survivors = 0, taken_over = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->count;) {
		size_t j = i;
		int from[4] = { 0 };
		while (j < r->count && !strcmp(r->a[j].event_id, r->a[i].event_id)) {
			if (r->a[j].proc >= 1 && r->a[j].proc <= 3)
				from[r->a[j].proc] = 1;
			j++;
		}
		shared_by_survivors += from[1] && from[3];
		taken_over += from[2] && (from[1] || from[3]);
		i = j;
	}
	int p2_events_delivered_by_others = 0;
	for (size_t i = 0; i < r->count; i++)
		p2_events_delivered_by_others += r->a[i].ok && r->a[i].n >= per && r->a[i].n < 2 * per &&
		                                 r->a[i].proc != 2;
	pthread_mutex_unlock(&r->lock);
	int logged = 0, multi_owner = 0;
	int overlaps = attempt_overlaps(conninfo, schema, &logged, &multi_owner);
	printf("crash-pg: 3 processes, 1 killed after %d acknowledged emits; %d events acknowledged, "
	       "%d arrived (2xx), %d requests, %d duplicates (%d taken over from the killed one, %d "
	       "sent by both survivors), %d of its deliveries finished by the others, %d missing, "
	       "%d unexpected; attempt log: %d attempts, %d overlapping, %.1f s\n",
	       p2_acked, t.acked, t.arrived_ok, t.requests, t.duplicates, taken_over, shared_by_survivors,
	       p2_events_delivered_by_others, t.missing, t.unexpected, logged, overlaps, elapsed / 1000.0);
	assert_int_equal(rc2, 128 + SIGKILL);
	assert_int_equal(rc1, 0);
	assert_int_equal(rc3, 0);
	assert_int_equal(t.acked, 2 * per + p2_acked);
	assert_int_equal(t.missing, 0);
	assert_int_equal(t.unexpected, 0);
	assert_int_equal(t.mismatched, 0);
	/* Two processes may both send an event only when one lost its lease
	 * (at-least-once); never at the same time. */
	assert_int_equal(overlaps, 0);
	assert_true(logged > 0);
	assert_true(p2_acked >= per / 3);
	/* Its lease ran out and the others took over what it held. */
	assert_true(p2_events_delivered_by_others > 0);
	assert_int_equal(r->bad_signature, 0);
	assert_int_equal(r->no_event_id, 0);
	/* The survivors drained the shared outbox, the killed one's part too. */
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
	po.conninfo = conninfo;
	po.schema = schema;
	assert_int_equal(flaghook_pg_open(&st, &po), 0);
	uint64_t pending = 99;
	assert_int_equal(st.pending(&pending, st.user_data), 0);
	assert_int_equal(pending, 0);
	flaghook_storage_close(&st);
	free(acked);
	free(emitted);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "child"))
		return child_main(argc, argv);
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0)
		return 1;
	self_path[n] = '\0';
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sqlite_kill_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_three_processes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
