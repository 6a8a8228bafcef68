/*
 * libflaghook-pg against a real PostgreSQL server: the store conformance
 * suite (tests/support/store_suite.c) on a fresh schema per case, then what
 * only a shared store has: two owners racing on claims, leases running
 * out, FIFO across owners, connection loss, a server that goes away, wrong
 * passwords, schema versions.
 *
 * The server comes from FLAGHOOK_PG (a libpq conninfo; tests/run.sh starts
 * one with tests/support/pg.sh).  Without it every case here is skipped,
 * and says why.  One case starts a second throwaway server with pg.sh
 * (FLAGHOOK_PG_SH, default tests/support/pg.sh) to stop it under a store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "httpd.h"
#include "flaghook_pg.h"
#include "store_suite.h"

#if defined(__has_include)
#  if __has_include(<libpq-fe.h>)
#    include <libpq-fe.h>
#  else
#    include <postgresql/libpq-fe.h>   /* Debian, without pkg-config's -I */
#  endif
#else
#  include <libpq-fe.h>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000LL

static const char *pg_conninfo;     /* FLAGHOOK_PG */
static PGconn *admin;               /* the tests' own connection: DDL, kills, inspection */
static char pg_password[256];       /* FLAGHOOK_PG's password: must never show in a detail */

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Every case that needs the server starts with this. */
#define NEED_PG() do { \
		if (!admin) { \
			print_message("skipped: FLAGHOOK_PG is not set, so there is no PostgreSQL server" \
			              " (tests/run.sh starts one with tests/support/pg.sh)\n"); \
			skip(); \
		} \
	} while (0)

/* ---- schemas: one per case, all dropped at the end ---------------------- */

#define MAX_SCHEMAS 128
static char schemas[MAX_SCHEMAS][64];
static int nschemas;

static const char *new_schema(void)
{
	assert_true(nschemas < MAX_SCHEMAS);
	char *s = schemas[nschemas];
	snprintf(s, sizeof(schemas[0]), "fh_test_%ld_%d", (long)getpid(), nschemas);
	nschemas++;
	return s;
}

static PGresult *admin_exec(const char *sql)
{
	PGresult *r = PQexec(admin, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("admin: %s: %s", sql, PQerrorMessage(admin));
	return r;
}

static long admin_long(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	PGresult *r = admin_exec(sql);
	assert_int_equal(PQntuples(r), 1);
	long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static void admin_run(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	PQclear(admin_exec(sql));
}

static void drop_schemas(void)
{
	for (int i = 0; i < nschemas; i++) {
		char sql[sizeof(schemas[0]) + 64];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%.63s\" CASCADE", schemas[i]);
		PQclear(PQexec(admin, sql));
	}
	nschemas = 0;
}

/* ---- opening stores ------------------------------------------------------- */

typedef struct open_opts {
	const char *conninfo;       /* NULL: FLAGHOOK_PG */
	const char *schema;
	const char *owner;
	int64_t lease_ms;
	int32_t connections;
	int64_t prune_after_ms;
	int64_t connect_timeout_ms;
	const flaghook_allocator *allocator;
} open_opts;

static int open_store(flaghook_storage *out, const open_opts *o)
{
	flaghook_storage init = FLAGHOOK_STORAGE_INIT;
	*out = init;
	flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
	po.conninfo = o->conninfo ? o->conninfo : pg_conninfo;
	po.schema = o->schema;
	po.owner = o->owner;
	po.lease_ms = o->lease_ms;
	po.connections = o->connections;
	po.prune_after_ms = o->prune_after_ms;
	po.connect_timeout_ms = o->connect_timeout_ms;
	po.allocator = o->allocator;
	po.attempt_log_max = 5;
	po.response_max = 64;
	return flaghook_pg_open(out, &po);
}

static void close_store(flaghook_storage *s)
{
	if (s->destroy)
		s->destroy(s->user_data);
	s->destroy = NULL;
}

/* The conformance suite's open: a store on a schema nobody used yet. */
static int suite_open(flaghook_storage *out, void *ctx)
{
	(void)ctx;
	open_opts o = { 0 };
	o.schema = new_schema();
	return open_store(out, &o);
}

/* ---- building deliveries ---------------------------------------------------- */

static const char body_x[] = "{\"data\": {\"flag\": 1}, \"event_type\": \"FLAG_UPDATED\"}";

static void make(flaghook_delivery *d, uint64_t endpoint, int fifo)
{
	memset(d, 0, sizeof(*d));
	d->version = FLAGHOOK_DELIVERY_VERSION;
	d->event_id = "0b7c9f5e-8d1a-4c3b-9e2f-7a6d5c4b3a21";
	d->event_type = FLAGHOOK_EVENT_FLAG_UPDATED;
	d->endpoint_id = endpoint;
	d->body = body_x;
	d->body_len = sizeof(body_x) - 1;
	d->created_us = wall_us();
	d->next_attempt_us = wall_us() - SEC;
	d->fifo = fifo;
}

static uint64_t put1(flaghook_storage *s, uint64_t endpoint, int fifo, int *claimed)
{
	flaghook_delivery d;
	make(&d, endpoint, fifo);
	int rc = s->put(&d, 1, s->user_data);
	if (rc)
		fail_msg("put: %s (%s)", flaghook_strerror(rc), flaghook_last_error());
	if (claimed)
		*claimed = d.claimed;
	return d.id;
}

static int record(flaghook_storage *s, uint64_t id, int32_t number, int32_t outcome)
{
	flaghook_delivery d;
	make(&d, 0, 0);
	d.id = id;
	flaghook_attempt a;
	memset(&a, 0, sizeof(a));
	a.version = FLAGHOOK_ATTEMPT_VERSION;
	a.delivery_id = id;
	a.number = number;
	a.outcome = outcome;
	a.status = outcome == FLAGHOOK_OUTCOME_DELIVERED ? 200 : 503;
	a.started_us = wall_us();
	a.finished_us = a.started_us + 100;
	a.next_attempt_us = outcome == FLAGHOOK_OUTCOME_RETRY ? wall_us() - SEC : 0;
	a.error = "";
	return s->record(&d, &a, s->user_data);
}

typedef struct taken {
	size_t n;
	uint64_t ids[64];
} taken;

static int take_all(const flaghook_delivery *d, void *arg)
{
	taken *t = arg;
	if (t->n < 64)
		t->ids[t->n++] = d->id;
	return 0;
}

/* Claims what is due now from s; returns how many. */
static size_t claim(flaghook_storage *s, taken *t)
{
	memset(t, 0, sizeof(*t));
	int rc = s->claim(wall_us(), 0, 64, take_all, t, s->user_data);
	if (rc)
		fail_msg("claim: %s (%s)", flaghook_strerror(rc), flaghook_last_error());
	return t->n;
}

static uint64_t pending(flaghook_storage *s)
{
	uint64_t n = 0;
	assert_int_equal(s->pending(&n, s->user_data), 0);
	return n;
}

/* A detail must never quote a password. */
static void assert_no_secret(const char *detail, const char *secret)
{
	if (secret && *secret && strstr(detail, secret))
		fail_msg("the error detail quotes the password: \"%s\"", detail);
	if (pg_password[0] && strstr(detail, pg_password))
		fail_msg("the error detail quotes FLAGHOOK_PG's password: \"%s\"", detail);
	if (strstr(detail, "password="))
		fail_msg("the error detail quotes the conninfo: \"%s\"", detail);
}

/* FLAGHOOK_PG with one keyword replaced (or added). */
static void conninfo_with(char *buf, size_t size, const char *key, const char *value)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(pg_conninfo, &err);
	assert_non_null(opts);
	size_t len = 0;
	buf[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = strcmp(o->keyword, key) == 0 ? value : o->val;
		if (v && *v)
			len += (size_t)snprintf(buf + len, size - len, "%s%s='%s'", len ? " " : "",
			                        o->keyword, v);
	}
	PQconninfoFree(opts);
	assert_true(len < size);
}

static const char *conninfo_get(const char *key, char *buf, size_t size)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(pg_conninfo, &err);
	assert_non_null(opts);
	buf[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, key) == 0 && o->val)
			snprintf(buf, size, "%s", o->val);
	PQconninfoFree(opts);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Options and open errors that need no server                              */

static void test_options(void **state)
{
	(void)state;
	flaghook_pg_options o;
	assert_int_equal(flaghook_pg_options_init(&o, FLAGHOOK_PG_OPTIONS_VERSION), 0);
	assert_int_equal(o.version, FLAGHOOK_PG_OPTIONS_VERSION);
	assert_null(o.conninfo);
	assert_int_equal(flaghook_pg_options_init(&o, 0), FLAGHOOK_EVERSION);
	assert_int_equal(flaghook_pg_options_init(&o, 99), FLAGHOOK_EVERSION);
	assert_int_equal(flaghook_pg_options_init(NULL, 1), FLAGHOOK_EINVAL);

	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EINVAL); /* no conninfo */
	assert_int_equal(flaghook_pg_open(NULL, &po), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_pg_open(&st, NULL), FLAGHOOK_EINVAL);
	po.conninfo = "host=127.0.0.1";
	po.schema = "a_schema_name_that_is_longer_than_the_sixty_three_bytes_postgres_keeps";
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EINVAL);
	po.schema = "";
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EINVAL);
	po.schema = NULL;
	po.connections = 100000;
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EINVAL);
	po.connections = 0;
	po.lease_ms = -1;
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EINVAL);
	po.lease_ms = 0;
	po.version = 2;
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EVERSION);
	po.version = FLAGHOOK_PG_OPTIONS_VERSION;

	/* A conninfo that does not parse: libpq's own message would quote the
	 * text next to the mistake, here the password. */
	po.conninfo = "host=127.0.0.1 password hunter2-secret";
	assert_int_equal(flaghook_pg_open(&st, &po), FLAGHOOK_EINVAL);
	assert_no_secret(flaghook_last_error(), "hunter2-secret");
	assert_non_null(strstr(flaghook_last_error(), "conninfo"));
	assert_null(st.user_data); /* nothing was filled in */
}

/* A port on which nothing listens: a socket bound to it and never
 * listening, which *fd keeps (nobody else can take the port while it is
 * open; a connection to it is refused).  The caller closes *fd. */
static int closed_port(int *fd)
{
	int port = th_refused_port(fd);
	assert_true(port > 0);
	return port;
}

static void test_open_closed_port(void **state)
{
	(void)state;
	char conninfo[256];
	int fd;
	snprintf(conninfo, sizeof(conninfo),
	         "host=127.0.0.1 port=%d dbname=x user=y password=Cl0sed-Port-Secret", closed_port(&fd));
	flaghook_storage st;
	open_opts o = { 0 };
	o.conninfo = conninfo;
	o.connect_timeout_ms = 2000;
	int64_t t0 = mono_us();
	int rc = open_store(&st, &o);
	int64_t took = mono_us() - t0;
	close(fd);
	assert_int_equal(rc, FLAGHOOK_ESTORAGE);
	assert_true(took < 30 * SEC); /* a hang bound: a refusal is immediate */
	const char *e = flaghook_last_error();
	assert_non_null(strstr(e, "postgresql: "));
	assert_non_null(strstr(e, "refused"));
	assert_no_secret(e, "Cl0sed-Port-Secret");
}

/* ------------------------------------------------------------------------ */
/* Open: passwords, schema versions, concurrent migrations                  */

static void test_wrong_password(void **state)
{
	(void)state;
	NEED_PG();
	static const char wrong[] = "Wr0ng-Passw0rd-Secret";
	char conninfo[1024];
	conninfo_with(conninfo, sizeof(conninfo), "password", wrong);
	flaghook_storage st;
	open_opts o = { 0 };
	o.conninfo = conninfo;
	o.schema = new_schema();
	int rc = open_store(&st, &o);
	if (rc == 0) {
		close_store(&st);
		print_message("skipped: this server accepts any password (trust auth), so a wrong one"
		              " cannot be refused\n");
		skip();
	}
	assert_int_equal(rc, FLAGHOOK_ESTORAGE);
	const char *e = flaghook_last_error();
	assert_non_null(strstr(e, "postgresql: "));
	assert_non_null(strstr(e, "password authentication failed"));
	assert_no_secret(e, wrong);

	/* libpq quotes the user name; when it equals the password, the
	 * detail shows "***" in its place. */
	size_t len = strlen(conninfo);
	snprintf(conninfo + len, sizeof(conninfo) - len, " user='%s'", wrong);
	assert_int_equal(open_store(&st, &o), FLAGHOOK_ESTORAGE);
	e = flaghook_last_error();
	assert_non_null(strstr(e, "for user \"***\""));
	assert_no_secret(e, wrong);

	/* The same as a URI, whose password libpq parses differently. */
	char host[128], port[16], user[64], db[64];
	snprintf(conninfo, sizeof(conninfo), "postgresql://%s:%s@%s:%s/%s?connect_timeout=5",
	         conninfo_get("user", user, sizeof(user)), wrong,
	         conninfo_get("host", host, sizeof(host)), conninfo_get("port", port, sizeof(port)),
	         conninfo_get("dbname", db, sizeof(db)));
	assert_int_equal(open_store(&st, &o), FLAGHOOK_ESTORAGE);
	assert_non_null(strstr(flaghook_last_error(), "password authentication failed"));
	assert_no_secret(flaghook_last_error(), wrong);
}

static void test_newer_schema_refused(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	admin_run("CREATE SCHEMA \"%s\"", schema);
	admin_run("CREATE TABLE \"%s\".schema_version (version int4 NOT NULL)", schema);
	admin_run("INSERT INTO \"%s\".schema_version VALUES (%d)", schema, FLAGHOOK_PG_SCHEMA_VERSION + 1);
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = schema;
	assert_int_equal(open_store(&st, &o), FLAGHOOK_ESTORAGE);
	const char *e = flaghook_last_error();
	assert_non_null(strstr(e, "newer than this library"));
	assert_no_secret(e, NULL);
	/* Refused without touching it. */
	assert_int_equal(admin_long("SELECT version FROM \"%s\".schema_version", schema),
	                 FLAGHOOK_PG_SCHEMA_VERSION + 1);
	assert_int_equal(admin_long("SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", schema), 1);
}

typedef struct opener {
	const char *schema;
	int rc;
	char error[256];
	pthread_barrier_t *go;
} opener;

static void *open_worker(void *arg)
{
	opener *w = arg;
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = w->schema;
	o.connections = 1;
	pthread_barrier_wait(w->go);
	w->rc = open_store(&st, &o);
	if (w->rc)
		snprintf(w->error, sizeof(w->error), "%s", flaghook_last_error());
	else
		close_store(&st);
	return NULL;
}

/* Processes starting together migrate one at a time (the advisory lock):
 * without it, CREATE SCHEMA/TABLE race on the catalog and some fail. */
static void test_concurrent_open_migrates_once(void **state)
{
	(void)state;
	NEED_PG();
	enum { N = 6 };
	const char *schema = new_schema();
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, N);
	opener w[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		w[i] = (opener){ schema, -1, "", &go };
		assert_int_equal(pthread_create(&th[i], NULL, open_worker, &w[i]), 0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < N; i++)
		if (w[i].rc)
			fail_msg("open %d: %s (%s)", i, flaghook_strerror(w[i].rc), w[i].error);
	assert_int_equal(admin_long("SELECT version FROM \"%s\".schema_version", schema),
	                 FLAGHOOK_PG_SCHEMA_VERSION);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".schema_version", schema), 1);
}

/* ------------------------------------------------------------------------ */
/* Two owners                                                               */

/* One owner takes a row at a time, however the claims interleave. */
enum { H_FIFO_EPS = 20, H_FIFO_PER = 8, H_PLAIN = 100,
       H_ROWS = H_FIFO_EPS * H_FIFO_PER + H_PLAIN, H_THREADS = 4 };

typedef struct hammer {
	pthread_mutex_t lock;
	uint64_t ids[H_ROWS];       /* sorted, for bsearch */
	int taken_by[H_ROWS];       /* -1: not yet */
	int inflight[H_FIFO_EPS];
	uint64_t last_done[H_FIFO_EPS];
	int doubles, fifo_overlap, fifo_order, errors, done;
	char error[256];
} hammer;

typedef struct hammer_thread {
	hammer *h;
	flaghook_storage *st;
	int who;
	taken t;
} hammer_thread;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int hammer_take(const flaghook_delivery *d, void *arg)
{
	hammer_thread *ht = arg;
	hammer *h = ht->h;
	pthread_mutex_lock(&h->lock);
	uint64_t *at = bsearch(&d->id, h->ids, H_ROWS, sizeof(uint64_t), cmp_u64);
	if (at) {
		size_t i = (size_t)(at - h->ids);
		if (h->taken_by[i] != -1)
			h->doubles++;
		h->taken_by[i] = ht->who;
		if (d->fifo) {
			size_t ep = (size_t)d->endpoint_id - 1;
			if (h->inflight[ep])
				h->fifo_overlap++;
			if (d->id < h->last_done[ep])
				h->fifo_order++;
			h->inflight[ep] = 1;
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (ht->t.n < 64)
		ht->t.ids[ht->t.n++] = d->id;
	return 0;
}

static void hammer_error(hammer *h, const char *what, int rc)
{
	pthread_mutex_lock(&h->lock);
	if (!h->errors++)
		snprintf(h->error, sizeof(h->error), "%s: %s (%s)", what, flaghook_strerror(rc),
		         flaghook_last_error());
	pthread_mutex_unlock(&h->lock);
}

static void *hammer_worker(void *arg)
{
	hammer_thread *ht = arg;
	hammer *h = ht->h;
	int64_t deadline = mono_us() + 120 * SEC;
	for (;;) {
		pthread_mutex_lock(&h->lock);
		int stop = h->done == H_ROWS || h->errors;
		pthread_mutex_unlock(&h->lock);
		if (stop || mono_us() > deadline)
			break;
		ht->t.n = 0;
		int rc = ht->st->claim(wall_us(), 0, 3, hammer_take, ht, ht->st->user_data);
		if (rc) {
			hammer_error(h, "claim", rc);
			break;
		}
		if (ht->t.n == 0) {
			sleep_ms(1); /* the rest are held by the other owner for now */
			continue;
		}
		for (size_t k = 0; k < ht->t.n; k++) {
			uint64_t id = ht->t.ids[k];
			pthread_mutex_lock(&h->lock);
			uint64_t *at = bsearch(&id, h->ids, H_ROWS, sizeof(uint64_t), cmp_u64);
			size_t i = at ? (size_t)(at - h->ids) : 0;
			/* FIFO rows are the first H_FIFO_EPS * H_FIFO_PER ids, put
			 * round-robin over the endpoints: index i is endpoint
			 * 1 + i % H_FIFO_EPS. */
			if (at && i < H_FIFO_EPS * H_FIFO_PER) {
				size_t ep = i % H_FIFO_EPS;
				h->inflight[ep] = 0; /* before the commit that lets the next one go */
				h->last_done[ep] = id;
			}
			pthread_mutex_unlock(&h->lock);
			rc = record(ht->st, id, 1, FLAGHOOK_OUTCOME_DELIVERED);
			if (rc) {
				hammer_error(h, "record", rc);
				break;
			}
			pthread_mutex_lock(&h->lock);
			h->done++;
			pthread_mutex_unlock(&h->lock);
		}
	}
	return NULL;
}

static void test_two_owners_never_share_a_row(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	flaghook_storage seed, a, b;
	open_opts o = { 0 };
	o.schema = schema;
	o.owner = "seed";
	assert_int_equal(open_store(&seed, &o), 0);
	o.owner = "owner-A";
	assert_int_equal(open_store(&a, &o), 0);
	o.owner = "owner-B";
	assert_int_equal(open_store(&b, &o), 0);

	hammer *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	pthread_mutex_init(&h->lock, NULL);
	/* FIFO rows: endpoints 1..20, 8 each, unheld after put. */
	size_t n = 0;
	for (int k = 0; k < H_FIFO_PER; k++)
		for (int ep = 1; ep <= H_FIFO_EPS; ep++)
			h->ids[n++] = put1(&seed, (uint64_t)ep, 1, NULL);
	/* Plain rows, handed back by the seeding owner so anyone may claim them. */
	for (int i = 0; i < H_PLAIN; i++) {
		int claimed;
		h->ids[n] = put1(&seed, 1000 + (uint64_t)i, 0, &claimed);
		assert_int_equal(claimed, 1);
		assert_int_equal(record(&seed, h->ids[n++], 0, FLAGHOOK_OUTCOME_RELEASED), 0);
	}
	/* ids are increasing, so the FIFO rows (put first) sort first. */
	for (size_t i = 0; i < H_ROWS; i++)
		h->taken_by[i] = -1;

	hammer_thread ht[H_THREADS];
	pthread_t th[H_THREADS];
	for (int i = 0; i < H_THREADS; i++) {
		memset(&ht[i], 0, sizeof(ht[i]));
		ht[i].h = h;
		ht[i].st = i % 2 ? &b : &a;
		ht[i].who = i % 2;
		assert_int_equal(pthread_create(&th[i], NULL, hammer_worker, &ht[i]), 0);
	}
	for (int i = 0; i < H_THREADS; i++)
		pthread_join(th[i], NULL);

	if (h->errors)
		fail_msg("%d store errors, the first: %s", h->errors, h->error);
	assert_int_equal(h->doubles, 0);
	assert_int_equal(h->fifo_overlap, 0);
	assert_int_equal(h->fifo_order, 0);
	assert_int_equal(h->done, H_ROWS);
	assert_int_equal(pending(&a), 0);

	/* The attempt log agrees: one attempt per delivery, each by A or B. */
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".attempts", schema), H_ROWS);
	assert_int_equal(admin_long("SELECT count(DISTINCT delivery_id) FROM \"%s\".attempts", schema),
	                 H_ROWS);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".attempts"
	                            " WHERE owner NOT IN ('owner-A', 'owner-B')", schema), 0);
	/* A row B finished is not A's to record. */
	for (size_t i = 0; i < H_ROWS; i++) {
		if (h->taken_by[i] == 1) {
			assert_int_equal(record(&a, h->ids[i], 2, FLAGHOOK_OUTCOME_RETRY), FLAGHOOK_ESTATE);
			break;
		}
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
	close_store(&seed);
	close_store(&a);
	close_store(&b);
}

/* FIFO rows put concurrently by several processes to one endpoint go out
 * in id order, one at a time: put's advisory lock keeps a later id from
 * becoming visible before an earlier one. */
enum { F_PUTTERS = 3, F_EACH = 60, F_ROWS = F_PUTTERS * F_EACH };

typedef struct fifo_race {
	pthread_mutex_t lock;
	uint64_t last_taken;
	int inflight, overlap, order, errors, done, puts_done;
	char error[256];
	flaghook_storage *stores[2];
} fifo_race;

typedef struct fifo_thread {
	fifo_race *f;
	flaghook_storage *st;
	taken t;
} fifo_thread;

static void fifo_error(fifo_race *f, const char *what, int rc)
{
	pthread_mutex_lock(&f->lock);
	if (!f->errors++)
		snprintf(f->error, sizeof(f->error), "%s: %s (%s)", what, flaghook_strerror(rc),
		         flaghook_last_error());
	pthread_mutex_unlock(&f->lock);
}

static void *fifo_putter(void *arg)
{
	fifo_thread *ft = arg;
	for (int i = 0; i < F_EACH; i++) {
		flaghook_delivery d;
		make(&d, 5, 1);
		int rc = ft->st->put(&d, 1, ft->st->user_data);
		if (rc) {
			fifo_error(ft->f, "put", rc);
			break;
		}
	}
	pthread_mutex_lock(&ft->f->lock);
	ft->f->puts_done++;
	pthread_mutex_unlock(&ft->f->lock);
	return NULL;
}

static int fifo_take(const flaghook_delivery *d, void *arg)
{
	fifo_thread *ft = arg;
	fifo_race *f = ft->f;
	pthread_mutex_lock(&f->lock);
	if (f->inflight)
		f->overlap++;
	if (d->id <= f->last_taken)
		f->order++;
	f->inflight = 1;
	f->last_taken = d->id;
	pthread_mutex_unlock(&f->lock);
	if (ft->t.n < 64)
		ft->t.ids[ft->t.n++] = d->id;
	return 0;
}

static void *fifo_claimer(void *arg)
{
	fifo_thread *ft = arg;
	fifo_race *f = ft->f;
	int64_t deadline = mono_us() + 120 * SEC;
	for (;;) {
		pthread_mutex_lock(&f->lock);
		int stop = f->done == F_ROWS || f->errors;
		pthread_mutex_unlock(&f->lock);
		if (stop || mono_us() > deadline)
			break;
		ft->t.n = 0;
		int rc = ft->st->claim(wall_us(), 0, 4, fifo_take, ft, ft->st->user_data);
		if (rc) {
			fifo_error(f, "claim", rc);
			break;
		}
		if (ft->t.n == 0) {
			sleep_ms(1);
			continue;
		}
		for (size_t k = 0; k < ft->t.n; k++) {
			pthread_mutex_lock(&f->lock);
			f->inflight = 0;
			pthread_mutex_unlock(&f->lock);
			rc = record(ft->st, ft->t.ids[k], 1, FLAGHOOK_OUTCOME_DELIVERED);
			if (rc) {
				fifo_error(f, "record", rc);
				break;
			}
			pthread_mutex_lock(&f->lock);
			f->done++;
			pthread_mutex_unlock(&f->lock);
		}
	}
	return NULL;
}

static void test_fifo_order_with_concurrent_puts(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	flaghook_storage a, b;
	open_opts o = { 0 };
	o.schema = schema;
	o.owner = "fifo-A";
	assert_int_equal(open_store(&a, &o), 0);
	o.owner = "fifo-B";
	assert_int_equal(open_store(&b, &o), 0);
	fifo_race *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	fifo_thread put_t[F_PUTTERS], claim_t[2];
	pthread_t put_th[F_PUTTERS], claim_th[2];
	for (int i = 0; i < 2; i++) {
		claim_t[i] = (fifo_thread){ f, i ? &b : &a, { 0, { 0 } } };
		assert_int_equal(pthread_create(&claim_th[i], NULL, fifo_claimer, &claim_t[i]), 0);
	}
	for (int i = 0; i < F_PUTTERS; i++) {
		put_t[i] = (fifo_thread){ f, i % 2 ? &b : &a, { 0, { 0 } } };
		assert_int_equal(pthread_create(&put_th[i], NULL, fifo_putter, &put_t[i]), 0);
	}
	for (int i = 0; i < F_PUTTERS; i++)
		pthread_join(put_th[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(claim_th[i], NULL);
	if (f->errors)
		fail_msg("%d store errors, the first: %s", f->errors, f->error);
	assert_int_equal(f->overlap, 0);
	assert_int_equal(f->order, 0);
	assert_int_equal(f->done, F_ROWS);
	pthread_mutex_destroy(&f->lock);
	free(f);
	close_store(&a);
	close_store(&b);
}

/* ---- holding a store's statement on a lock of the tests' own ---------------- */

/* An advisory lock (the two-int4 key space, which the stores' int8 locks
 * never share) held by a connection of the tests' own until lock_release:
 * a trigger that takes the same lock holds a store's statement exactly as
 * long as the test wants, however loaded the machine. */
static PGconn *lock_hold(int key)
{
	PGconn *c = PQconnectdb(pg_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		char e[256];
		snprintf(e, sizeof(e), "%s", PQerrorMessage(c));
		PQfinish(c);
		fail_msg("lock connection: %s", e);
	}
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%ld, %d)", (long)getpid(), key);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(c);
		fail_msg("pg_advisory_lock failed");
	}
	return c;
}

/* Ends the session, which lets its lock go. */
static void lock_release(PGconn **c)
{
	if (*c)
		PQfinish(*c);
	*c = NULL;
}

/* A BEFORE INSERT trigger on schema's deliveries that waits for lock `key`
 * when the new row's event_id is `event_id`. */
static void trigger_waits_on_lock(const char *schema, const char *event_id, int key)
{
	admin_run("CREATE FUNCTION \"%s\".held() RETURNS trigger LANGUAGE plpgsql AS $$"
	          " BEGIN IF NEW.event_id = '%s' THEN PERFORM pg_advisory_xact_lock(%ld, %d); END IF;"
	          " RETURN NEW; END $$", schema, event_id, (long)getpid(), key);
	admin_run("CREATE TRIGGER held BEFORE INSERT ON \"%s\".deliveries"
	          " FOR EACH ROW EXECUTE FUNCTION \"%s\".held()", schema, schema);
}

/* Waits up to 30 s until a backend of the store owned by `owner` waits on a
 * lock (1), or *done becomes non-zero first (0); -1 when neither came. */
static int wait_lock_waiter(const char *owner, const atomic_int *done)
{
	for (int64_t end = mono_us() + 30 * SEC; mono_us() < end;) {
		if (admin_long("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flaghook %s'"
		               " AND wait_event_type = 'Lock'", owner) > 0)
			return 1;
		if (done && atomic_load(done))
			return 0;
		sleep_ms(5);
	}
	return -1;
}

typedef struct slow_put {
	flaghook_storage *st;
	const char *event_id;
	uint64_t id;
	int rc;
	atomic_int done;
} slow_put;

static void *slow_put_worker(void *arg)
{
	slow_put *w = arg;
	flaghook_delivery d;
	make(&d, 9, 1);
	d.event_id = w->event_id;
	w->rc = w->st->put(&d, 1, w->st->user_data);
	w->id = d.id;
	atomic_store(&w->done, 1);
	return NULL;
}

/* The race put's advisory lock closes, made deterministic: a trigger (the
 * test's, not the store's) holds A's put, after it drew its id and before
 * it commits, on a lock the test holds.  B's put to the same FIFO endpoint
 * must wait for it; were it to commit first, a claim would see B's row
 * with A's older one invisible and hand out B's first. */
static void test_fifo_put_waits_for_older_put(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	char own_a[64], own_b[64];
	snprintf(own_a, sizeof(own_a), "slow-A-%ld", (long)getpid());
	snprintf(own_b, sizeof(own_b), "slow-B-%ld", (long)getpid());
	flaghook_storage a, b, c;
	open_opts o = { 0 };
	o.schema = schema;
	o.owner = own_a;
	assert_int_equal(open_store(&a, &o), 0);
	o.owner = own_b;
	assert_int_equal(open_store(&b, &o), 0);
	o.owner = "slow-C";
	assert_int_equal(open_store(&c, &o), 0);
	trigger_waits_on_lock(schema, "slow", 1);
	PGconn *lock = lock_hold(1);

	slow_put *wa = calloc(1, sizeof(*wa)), *wb = calloc(1, sizeof(*wb));
	assert_true(wa && wb);
	wa->st = &a;
	wa->event_id = "slow";
	wa->rc = -1;
	wb->st = &b;
	wb->event_id = "0b7c9f5e-8d1a-4c3b-9e2f-7a6d5c4b3a21";
	wb->rc = -1;
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, slow_put_worker, wa), 0);
	/* A is inside its insert, its trigger waiting for our lock. */
	int a_waits = wait_lock_waiter(own_a, &wa->done);
	int b_waits = -2;
	size_t early = 0;
	uint64_t early_id = 0;
	int claim_rc = 0;
	if (a_waits == 1) {
		assert_int_equal(pthread_create(&tb, NULL, slow_put_worker, wb), 0);
		/* B waits for A's put (the store's lock), or -- the defect -- has
		 * committed its row already. */
		b_waits = wait_lock_waiter(own_b, &wb->done);
		/* No fail_msg until the lock is let go: A and B would stay stuck. */
		taken t;
		memset(&t, 0, sizeof(t));
		claim_rc = c.claim(wall_us(), 0, 64, take_all, &t, c.user_data);
		early = t.n;
		early_id = early ? t.ids[0] : 0;
	}
	lock_release(&lock);               /* A's put goes on, then B's */
	pthread_join(ta, NULL);
	if (a_waits == 1)
		pthread_join(tb, NULL);
	if (a_waits != 1)
		fail_msg("A's put %s", a_waits ? "never reached its trigger in 30 s"
		                               : "returned without waiting in its trigger");
	if (b_waits < 0)
		fail_msg("B's put neither finished nor waited on a lock in 30 s");
	assert_int_equal(claim_rc, 0);
	assert_int_equal(wa->rc, 0);
	assert_int_equal(wb->rc, 0);
	assert_true(wa->id < wb->id);     /* A drew its id first */
	if (early)
		fail_msg("claimed delivery %llu while the older %llu was not yet committed",
		         (unsigned long long)early_id, (unsigned long long)wa->id);
	assert_int_equal(b_waits, 1);      /* B waited for A */
	taken t;
	assert_int_equal(claim(&c, &t), 1);
	assert_int_equal(t.ids[0], wa->id);
	assert_int_equal(record(&c, wa->id, 1, FLAGHOOK_OUTCOME_DELIVERED), 0);
	assert_int_equal(claim(&c, &t), 1);
	assert_int_equal(t.ids[0], wb->id);
	free(wa);
	free(wb);
	close_store(&a);
	close_store(&b);
	close_store(&c);
}

/* A puts e1, B puts e2, same FIFO endpoint: e2 waits for e1 whoever holds it. */
static void test_fifo_across_owners(void **state)
{
	(void)state;
	NEED_PG();
	flaghook_storage a, b;
	open_opts o = { 0 };
	o.schema = new_schema();
	o.owner = "A";
	assert_int_equal(open_store(&a, &o), 0);
	o.owner = "B";
	assert_int_equal(open_store(&b, &o), 0);
	taken t;

	int claimed = -1;
	uint64_t e1 = put1(&a, 77, 1, &claimed);
	assert_int_equal(claimed, 0); /* shared store: FIFO rows come through claim */
	assert_int_equal(claim(&a, &t), 1);
	assert_int_equal(t.ids[0], e1);
	uint64_t e2 = put1(&b, 77, 1, &claimed);
	assert_int_equal(claimed, 0);
	assert_int_equal(claim(&b, &t), 0);           /* e1 is still pending */
	assert_int_equal(record(&a, e1, 1, FLAGHOOK_OUTCOME_RETRY), 0);
	assert_int_equal(claim(&b, &t), 0);           /* retrying is still pending */
	assert_int_equal(claim(&a, &t), 0);           /* and A holds e1 already */
	assert_int_equal(record(&a, e1, 2, FLAGHOOK_OUTCOME_DELIVERED), 0);
	assert_int_equal(claim(&b, &t), 1);
	assert_int_equal(t.ids[0], e2);

	/* B claims before A did: B gets the head (e3), not its own e4. */
	uint64_t e3 = put1(&a, 78, 1, NULL);
	uint64_t e4 = put1(&b, 78, 1, NULL);
	assert_int_equal(claim(&b, &t), 1);
	assert_int_equal(t.ids[0], e3);
	assert_int_equal(claim(&a, &t), 0);
	assert_int_equal(record(&b, e3, 1, FLAGHOOK_OUTCOME_GAVE_UP), 0);
	assert_int_equal(claim(&a, &t), 1);
	assert_int_equal(t.ids[0], e4);
	close_store(&a);
	close_store(&b);
}

/* The database's clock in microseconds, as the store's leases read it. */
#define DB_NOW_US "((extract(epoch FROM statement_timestamp()) * 1000000)::int8)"

static long lease_of(const char *schema, uint64_t id)
{
	return admin_long("SELECT lease_until_us FROM \"%s\".deliveries WHERE id = %llu", schema,
	                  (unsigned long long)id);
}

/* A lease that runs out lets the other owner take the row; the first
 * owner's late record is then refused.  A claim renews the leases.  The
 * lease is long (10 s) so nothing runs out by itself however slow the
 * machine; the test moves lease_until_us on the database instead. */
static void test_lease_expiry(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	flaghook_storage a, b;
	open_opts o = { 0 };
	o.schema = schema;
	o.lease_ms = 10000;
	o.owner = "lease-A";
	assert_int_equal(open_store(&a, &o), 0);
	o.owner = "lease-B";
	assert_int_equal(open_store(&b, &o), 0);
	taken t;

	int claimed = 0;
	uint64_t id = put1(&a, 3, 0, &claimed);
	assert_int_equal(claimed, 1);
	assert_int_equal(claim(&b, &t), 0);           /* A's lease holds */

	/* A's lease is past half its time (2 s left of 10): A's claim renews it. */
	admin_run("UPDATE \"%s\".deliveries SET lease_until_us = " DB_NOW_US " + 2000000"
	          " WHERE id = %llu", schema, (unsigned long long)id);
	long before = lease_of(schema, id);
	assert_int_equal(claim(&a, &t), 0);           /* renews A's lease */
	long after = lease_of(schema, id);
	assert_true(after > before);
	assert_true(after >= before + 7 * SEC);       /* a whole new lease: now + 10 s */
	assert_int_equal(claim(&b, &t), 0);           /* still A's */

	/* A stopped renewing and its lease ran out. */
	admin_run("UPDATE \"%s\".deliveries SET lease_until_us = " DB_NOW_US " - 1"
	          " WHERE id = %llu", schema, (unsigned long long)id);
	assert_int_equal(claim(&b, &t), 1);
	assert_int_equal(t.ids[0], id);
	assert_true(lease_of(schema, id) > admin_long("SELECT " DB_NOW_US)); /* B's now */

	flaghook_error_set(0, NULL);
	assert_int_equal(record(&a, id, 1, FLAGHOOK_OUTCOME_DELIVERED), FLAGHOOK_ESTATE);
	assert_non_null(strstr(flaghook_last_error(), "held by another process"));
	assert_int_equal(record(&b, id, 1, FLAGHOOK_OUTCOME_DELIVERED), 0);
	/* Finished: nobody holds it, and A still may not touch it. */
	assert_int_equal(record(&a, id, 2, FLAGHOOK_OUTCOME_RETRY), FLAGHOOK_ESTATE);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".attempts WHERE owner = 'lease-B'",
	                            schema), 1);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".attempts WHERE owner = 'lease-A'",
	                            schema), 0);
	assert_int_equal(admin_long("SELECT state FROM \"%s\".deliveries WHERE id = %llu", schema,
	                            (unsigned long long)id), FLAGHOOK_DELIVERY_DELIVERED);
	close_store(&a);
	close_store(&b);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */

static long backends_of(const char *owner)
{
	return admin_long("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flaghook %s'",
	                  owner);
}

/* The store's backends are killed under it: the next put reconnects and
 * succeeds (nothing had been sent, so it is safe to run again). */
static void test_connection_loss_survived(void **state)
{
	(void)state;
	NEED_PG();
	char owner[64];
	snprintf(owner, sizeof(owner), "kill-%ld", (long)getpid());
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = new_schema();
	o.owner = owner;
	o.connections = 2;
	assert_int_equal(open_store(&st, &o), 0);
	put1(&st, 1, 0, NULL);
	assert_true(backends_of(owner) >= 1);

	for (int round = 0; round < 2; round++) {
		assert_true(admin_long("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
		                       " WHERE application_name = 'flaghook %s'", owner) >= 1);
		for (int64_t end = mono_us() + 60 * SEC; backends_of(owner) > 0 && mono_us() < end;)
			sleep_ms(10);
		assert_int_equal(backends_of(owner), 0);
		int claimed = 0;
		uint64_t id = put1(&st, 1, 0, &claimed);      /* fails the test if it fails */
		assert_true(id != 0);
		assert_int_equal(claimed, 1);
	}
	assert_int_equal(pending(&st), 3);
	assert_true(backends_of(owner) >= 1);
	close_store(&st);
	/* destroy closed them (a backend exits just after its client left) */
	for (int64_t end = mono_us() + 60 * SEC; backends_of(owner) > 0 && mono_us() < end;)
		sleep_ms(10);
	assert_int_equal(backends_of(owner), 0);
}

/* Dropping the tables under a store: a database error, quoted without
 * secrets, and no retry loop. */
static void test_database_error_detail(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = schema;
	assert_int_equal(open_store(&st, &o), 0);
	put1(&st, 1, 0, NULL);
	admin_run("DROP TABLE \"%s\".deliveries CASCADE", schema);
	flaghook_delivery d;
	make(&d, 1, 0);
	assert_int_equal(st.put(&d, 1, st.user_data), FLAGHOOK_ESTORAGE);
	assert_int_equal(d.id, 0);
	const char *e = flaghook_last_error();
	assert_non_null(strstr(e, "postgresql: put: "));
	assert_non_null(strstr(e, "does not exist"));
	assert_no_secret(e, NULL);
	uint64_t n;
	assert_int_equal(st.pending(&n, st.user_data), FLAGHOOK_ESTORAGE);
	close_store(&st);
}

/* Runs tests/support/pg.sh; its stdout's first line into out (may be NULL). */
static int pg_sh(const char *cmd, const char *dir, char *out, size_t size)
{
	const char *script = getenv("FLAGHOOK_PG_SH");
	if (!script)
		script = "tests/support/pg.sh";
	char line[512];
	snprintf(line, sizeof(line), "sh '%s' %s '%s'", script, cmd, dir);
	FILE *p = popen(line, "r");
	if (!p)
		return -1;
	char buf[1024] = "";
	if (!fgets(buf, sizeof(buf), p))
		buf[0] = '\0';
	int rc = pclose(p);
	buf[strcspn(buf, "\n")] = '\0';
	if (out)
		snprintf(out, size, "%s", buf);
	return rc;
}

/* The server goes away under an open store: put fails fast with
 * FLAGHOOK_ESTORAGE and a detail without the password, records nothing,
 * and works again once the server is back.  A server of its own, so the
 * other cases' server is not disturbed. */
static void test_server_gone_and_back(void **state)
{
	(void)state;
	NEED_PG();
	const char *script = getenv("FLAGHOOK_PG_SH") ? getenv("FLAGHOOK_PG_SH") : "tests/support/pg.sh";
	if (access(script, R_OK) != 0) {
		print_message("skipped: %s not found (run from the source tree, or set FLAGHOOK_PG_SH)\n",
		              script);
		skip();
	}
	char dir[128], conninfo[512];
	snprintf(dir, sizeof(dir), "/tmp/flaghook-pg2-%ld", (long)getpid());
	if (pg_sh("start", dir, conninfo, sizeof(conninfo)) != 0 || !conninfo[0]) {
		print_message("skipped: a second server could not be started (sh %s start %s)\n",
		              script, dir);
		skip();
	}
	char password[128] = "";
	const char *pw = strstr(conninfo, "password=");
	if (pw)
		snprintf(password, sizeof(password), "%s", pw + 9);

	flaghook_storage st;
	open_opts o = { 0 };
	o.conninfo = conninfo;
	o.schema = "flaghook";
	o.connections = 2;
	o.connect_timeout_ms = 2000;
	int rc = open_store(&st, &o);
	if (rc) {
		pg_sh("stop", dir, NULL, 0);
		fail_msg("open on the second server: %s", flaghook_last_error());
	}
	put1(&st, 1, 0, NULL);

	assert_int_equal(pg_sh("halt", dir, NULL, 0), 0);
	flaghook_delivery d[2];
	make(&d[0], 1, 0);
	make(&d[1], 2, 1);
	int64_t t0 = mono_us();
	rc = st.put(d, 2, st.user_data);
	int64_t took = mono_us() - t0;
	char detail[512];
	snprintf(detail, sizeof(detail), "%s", flaghook_last_error());
	uint64_t n;
	int pending_rc = st.pending(&n, st.user_data);

	int back = pg_sh("resume", dir, NULL, 0);
	uint64_t after = back == 0 ? put1(&st, 1, 0, NULL) : 0; /* usable again */
	uint64_t count = 0;
	int count_rc = back == 0 ? st.pending(&count, st.user_data) : -1;
	close_store(&st);
	pg_sh("stop", dir, NULL, 0);

	assert_int_equal(rc, FLAGHOOK_ESTORAGE);
	assert_int_equal(d[0].id, 0);
	assert_true(took < 30 * SEC); /* fails, not hangs */
	assert_non_null(strstr(detail, "postgresql: put: "));
	assert_no_secret(detail, password);
	assert_int_equal(pending_rc, FLAGHOOK_ESTORAGE);
	assert_int_equal(back, 0);
	assert_true(after != 0);
	assert_int_equal(count_rc, 0);
	assert_int_equal(count, 2); /* the failed put stored nothing */
}

/* ------------------------------------------------------------------------ */
/* Pool, pruning, allocator                                                 */

typedef struct putter {
	flaghook_storage *st;
	pthread_barrier_t *go;      /* all start together */
	int rc;
	char error[256];
	uint64_t ids[50];
} putter;

static void *put_worker(void *arg)
{
	putter *p = arg;
	pthread_barrier_wait(p->go);
	for (int i = 0; i < 25 && !p->rc; i++) {
		flaghook_delivery d[2];
		make(&d[0], 1, 0);
		make(&d[1], 2, 0);
		p->rc = p->st->put(d, 2, p->st->user_data);
		if (p->rc)
			snprintf(p->error, sizeof(p->error), "%s", flaghook_last_error());
		p->ids[2 * i] = d[0].id;
		p->ids[2 * i + 1] = d[1].id;
	}
	return NULL;
}

typedef struct held_put {
	flaghook_storage *st;
	int rc;
	atomic_int done;
} held_put;

static void *held_put_worker(void *arg)
{
	held_put *w = arg;
	flaghook_delivery d;
	make(&d, 3, 0);
	d.event_id = "hold";
	w->rc = w->st->put(&d, 1, w->st->user_data);
	atomic_store(&w->done, 1);
	return NULL;
}

/* Puts from many threads share the pool.  One put is held inside its
 * insert (a trigger waiting on the test's lock) while the others run, so
 * they must use another of the pool's connections: at least two, however
 * the threads are scheduled, and never more than configured. */
static void test_pool_parallel_puts(void **state)
{
	(void)state;
	NEED_PG();
	enum { N = 8 };
	char owner[64];
	snprintf(owner, sizeof(owner), "pool-%ld", (long)getpid());
	const char *schema = new_schema();
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = schema;
	o.owner = owner;
	o.connections = 4;
	assert_int_equal(open_store(&st, &o), 0);
	trigger_waits_on_lock(schema, "hold", 2);
	PGconn *lock = lock_hold(2);
	held_put *held = calloc(1, sizeof(*held));
	assert_non_null(held);
	held->st = &st;
	held->rc = -1;
	pthread_t hth;
	assert_int_equal(pthread_create(&hth, NULL, held_put_worker, held), 0);
	int holding = wait_lock_waiter(owner, &held->done);

	putter *p = calloc(N, sizeof(*p));
	assert_non_null(p);
	pthread_t th[N];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; holding == 1 && i < N; i++) {
		p[i].st = &st;
		p[i].go = &go;
		assert_int_equal(pthread_create(&th[i], NULL, put_worker, &p[i]), 0);
	}
	uint64_t all[N * 50];
	for (int i = 0; holding == 1 && i < N; i++) {
		pthread_join(th[i], NULL);
		memcpy(all + i * 50, p[i].ids, sizeof(p[i].ids));
	}
	pthread_barrier_destroy(&go);
	/* Counted while the held put still has its connection. */
	long conns = holding == 1 ? backends_of(owner) : 0;
	lock_release(&lock);
	pthread_join(hth, NULL);
	if (holding != 1)
		fail_msg("the held put %s", holding ? "never reached its trigger in 30 s"
		                                    : "returned without waiting in its trigger");
	assert_int_equal(held->rc, 0);
	for (int i = 0; i < N; i++)
		if (p[i].rc)
			fail_msg("put: %s", p[i].error);
	qsort(all, N * 50, sizeof(all[0]), cmp_u64);
	for (int i = 1; i < N * 50; i++)
		assert_true(all[i] > all[i - 1]);
	assert_int_equal(pending(&st), N * 50 + 1);
	/* Several connections were used, and no more than configured. */
	assert_true(conns >= 2 && conns <= 4);
	free(p);
	free(held);
	close_store(&st);
}

static void test_prune_delivered(void **state)
{
	(void)state;
	NEED_PG();
	const char *schema = new_schema();
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = schema;
	o.prune_after_ms = 1;
	assert_int_equal(open_store(&st, &o), 0);
	uint64_t done = put1(&st, 1, 0, NULL);
	uint64_t dead = put1(&st, 1, 0, NULL);
	uint64_t open_one = put1(&st, 1, 0, NULL);
	assert_int_equal(record(&st, done, 1, FLAGHOOK_OUTCOME_DELIVERED), 0);
	assert_int_equal(record(&st, dead, 1, FLAGHOOK_OUTCOME_GAVE_UP), 0);
	sleep_ms(5);
	taken t;
	claim(&st, &t);                 /* the first claim prunes */
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".deliveries WHERE id = %llu", schema,
	                            (unsigned long long)done), 0);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".attempts WHERE delivery_id = %llu",
	                            schema, (unsigned long long)done), 0);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".deliveries WHERE id IN (%llu, %llu)",
	                            schema, (unsigned long long)dead, (unsigned long long)open_one), 2);
	/* At most once a minute: the next delivered row stays for now. */
	uint64_t done2 = put1(&st, 1, 0, NULL);
	assert_int_equal(record(&st, done2, 1, FLAGHOOK_OUTCOME_DELIVERED), 0);
	sleep_ms(5);
	claim(&st, &t);
	assert_int_equal(admin_long("SELECT count(*) FROM \"%s\".deliveries WHERE id = %llu", schema,
	                            (unsigned long long)done2), 1);
	close_store(&st);
}

typedef struct counting {
	pthread_mutex_t lock;
	long live, total;
} counting;

static void *c_malloc(size_t n, void *ud)
{
	counting *c = ud;
	pthread_mutex_lock(&c->lock);
	c->live++;
	c->total++;
	pthread_mutex_unlock(&c->lock);
	return malloc(n);
}

static void *c_realloc(void *p, size_t n, void *ud)
{
	(void)ud;
	return realloc(p, n);
}

static void c_free(void *p, void *ud)
{
	counting *c = ud;
	if (p) {
		pthread_mutex_lock(&c->lock);
		c->live--;
		pthread_mutex_unlock(&c->lock);
	}
	free(p);
}

static void test_allocator_used_and_balanced(void **state)
{
	(void)state;
	NEED_PG();
	counting c = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	flaghook_allocator al = FLAGHOOK_ALLOCATOR_INIT;
	al.malloc = c_malloc;
	al.realloc = c_realloc;
	al.free = c_free;
	al.user_data = &c;
	flaghook_storage st;
	open_opts o = { 0 };
	o.schema = new_schema();
	o.allocator = &al;
	assert_int_equal(open_store(&st, &o), 0);
	uint64_t id = put1(&st, 1, 1, NULL);
	taken t;
	assert_int_equal(claim(&st, &t), 1);
	assert_int_equal(record(&st, id, 1, FLAGHOOK_OUTCOME_DELIVERED), 0);
	close_store(&st);
	assert_true(c.total > 5);
	assert_int_equal(c.live, 0);
}

/* ------------------------------------------------------------------------ */

static int pg_group_teardown(void **state)
{
	(void)state;
	if (admin)
		drop_schemas();
	return 0;
}

int main(void)
{
	const char *env = getenv("FLAGHOOK_PG");
	if (env && *env) {
		pg_conninfo = env;
		admin = PQconnectdb(env);
		if (PQstatus(admin) != CONNECTION_OK) {
			/* Not a skip: FLAGHOOK_PG names a server, and it cannot be reached. */
			fprintf(stderr, "test_pg: FLAGHOOK_PG is set but the server cannot be reached: %s",
			        PQerrorMessage(admin));
			PQfinish(admin);
			return 1;
		}
		PQclear(PQexec(admin, "SET client_min_messages = warning"));
		const char *pw = PQpass(admin);
		if (pw)
			snprintf(pg_password, sizeof(pg_password), "%s", pw);
	} else {
		printf("test_pg: FLAGHOOK_PG is not set: no PostgreSQL server, so the PostgreSQL cases"
		       " are skipped (tests/run.sh starts one with tests/support/pg.sh)\n");
	}

	int failed = 0;
	if (admin) {
		store_suite_target t = { suite_open, NULL, "store/pg", 1, 5, 64, 0 };
		failed += store_suite_run(&t);
		drop_schemas();
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_open_closed_port),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_concurrent_open_migrates_once),
		cmocka_unit_test(test_two_owners_never_share_a_row),
		cmocka_unit_test(test_fifo_order_with_concurrent_puts),
		cmocka_unit_test(test_fifo_put_waits_for_older_put),
		cmocka_unit_test(test_fifo_across_owners),
		cmocka_unit_test(test_lease_expiry),
		cmocka_unit_test(test_connection_loss_survived),
		cmocka_unit_test(test_database_error_detail),
		cmocka_unit_test(test_server_gone_and_back),
		cmocka_unit_test(test_pool_parallel_puts),
		cmocka_unit_test(test_prune_delivered),
		cmocka_unit_test(test_allocator_used_and_balanced),
	};
	failed += cmocka_run_group_tests_name("pg", tests, NULL, pg_group_teardown);
	if (admin)
		PQfinish(admin);
	return failed ? 1 : 0;
}
