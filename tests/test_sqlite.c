/*
 * libflaghook-sqlite: the store conformance suite on a fresh file per case,
 * then what only a file can show: surviving a reopen, the schema version,
 * WAL, group commit, a full disk, a missing directory, pruning.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook_sqlite.h"
#include "store_suite.h"
#include "stores/sqlite_testhooks.h"

#include <sqlite3.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000LL

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

/* $TMPDIR (default /tmp): where each test makes its directory. */
static const char *tmp_base(void)
{
	const char *t = getenv("TMPDIR");
	return t && t[0] && strlen(t) < 40 ? t : "/tmp";
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

/* Whether thread tid of this process is asleep in a futex wait: how a test
 * sees, without a hook in the store, that a thread inside a store call is
 * waiting on the store's queue (a mutex or condition variable) rather than
 * still on its way there.  The store takes no other lock before queueing,
 * and nothing holds its queue lock for long, so a thread seen asleep there
 * while the leader is held is a thread that has queued. */
static int thread_in_futex_wait(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", (long)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p || p[1] != ' ' || p[2] != 'S')
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%ld/syscall", (long)tid);
	f = fopen(path, "r");
	if (!f)
		return 1; /* asleep; which call is not readable here */
	long nr = -1;
	int got = fscanf(f, "%ld", &nr);
	fclose(f);
	return got != 1 || nr == SYS_futex;
}

/* Removes a directory of files (and its mount point, if any, once unmounted). */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			struct stat st;
			if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(p);
			else
				unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* ---- the conformance suite on SQLite ------------------------------------ */

typedef struct suite_ctx {
	char dir[96];
	int n;
} suite_ctx;

#define SUITE_LOG_MAX 5
#define SUITE_RESPONSE_MAX 64

static int open_fresh(flaghook_storage *out, void *arg)
{
	suite_ctx *c = arg;
	char path[128];
	snprintf(path, sizeof(path), "%s/case-%d.db", c->dir, ++c->n);
	flaghook_sqlite_options o = FLAGHOOK_SQLITE_OPTIONS_INIT;
	o.path = path;
	o.attempt_log_max = SUITE_LOG_MAX;
	o.response_max = SUITE_RESPONSE_MAX;
	return flaghook_sqlite_open(out, &o);
}

/* ---- fixtures for the SQLite-only cases ----------------------------------- */

typedef struct fx {
	char dir[96];
	char path[128];
	char mnt[128];              /* a tmpfs mounted by the test, "" when none */
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/flaghook-sqlite-XXXXXX", tmp_base());
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/outbox.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	if (f->mnt[0])
		umount2(f->mnt, MNT_DETACH);
	remove_tree(f->dir);
	free(f);
	return 0;
}

static flaghook_sqlite_options options(const char *path)
{
	flaghook_sqlite_options o = FLAGHOOK_SQLITE_OPTIONS_INIT;
	o.path = path;
	return o;
}

static void open_store(flaghook_storage *s, const flaghook_sqlite_options *o)
{
	flaghook_storage init = FLAGHOOK_STORAGE_INIT;
	*s = init;
	int rc = flaghook_sqlite_open(s, o);
	if (rc)
		fail_msg("flaghook_sqlite_open: %s (%s)", flaghook_strerror(rc), flaghook_last_error());
}

static void make(flaghook_delivery *d, uint64_t endpoint, const void *body, size_t len,
                 int64_t next_us)
{
	memset(d, 0, sizeof(*d));
	d->version = FLAGHOOK_DELIVERY_VERSION;
	d->event_id = "0b5c2d7e-8f9a-4b1c-9d2e-3f4a5b6c7d8e";
	d->event_type = FLAGHOOK_EVENT_FLAG_UPDATED;
	d->endpoint_id = endpoint;
	d->body = body;
	d->body_len = len;
	d->created_us = wall_us();
	d->next_attempt_us = next_us;
}

static uint64_t put1(flaghook_storage *s, uint64_t endpoint, int64_t next_us)
{
	static const char body[] = "{\"data\": {}, \"event_type\": \"FLAG_UPDATED\"}";
	flaghook_delivery d;
	make(&d, endpoint, body, sizeof(body) - 1, next_us);
	assert_int_equal(s->put(&d, 1, s->user_data), 0);
	return d.id;
}

static int record(flaghook_storage *s, uint64_t id, int32_t number, int32_t outcome,
                  int64_t next_us)
{
	flaghook_delivery d;
	make(&d, 0, "", 0, 0);
	d.id = id;
	flaghook_attempt a;
	memset(&a, 0, sizeof(a));
	a.version = FLAGHOOK_ATTEMPT_VERSION;
	a.delivery_id = id;
	a.number = number;
	a.outcome = outcome;
	a.status = outcome == FLAGHOOK_OUTCOME_DELIVERED ? 200 : 503;
	a.started_us = wall_us();
	a.finished_us = a.started_us + 10;
	a.next_attempt_us = next_us;
	a.error = "";
	a.response = "resp";
	a.response_len = 4;
	return s->record(&d, &a, s->user_data);
}

static uint64_t pending(flaghook_storage *s)
{
	uint64_t n = 0;
	assert_int_equal(s->pending(&n, s->user_data), 0);
	return n;
}

typedef struct taken {
	size_t n;
	flaghook_delivery d[16];
	unsigned char body[16][64];
} taken;

static int take_all(const flaghook_delivery *d, void *arg)
{
	taken *t = arg;
	if (t->n < 16) {
		t->d[t->n] = *d;
		memcpy(t->body[t->n], d->body, d->body_len < 64 ? d->body_len : 64);
		t->d[t->n].body = t->body[t->n];
		t->d[t->n].event_id = NULL;
	}
	t->n++;
	return 0;
}

static size_t claim_due(flaghook_storage *s, taken *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(s->claim(wall_us(), 0, 100, take_all, t, s->user_data), 0);
	return t->n;
}

static int count_rows(const flaghook_delivery *d, void *arg)
{
	(void)d;
	(*(int *)arg)++;
	return 0;
}

static int count_attempts(const flaghook_attempt *a, void *arg)
{
	(void)a;
	(*(int *)arg)++;
	return 0;
}

/* Looks into the file with the sqlite3 library directly. */
static int64_t sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	int64_t v = -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ---- options and opening -------------------------------------------------- */

static void test_options_and_arguments(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o;
	memset(&o, 0xff, sizeof(o));
	assert_int_equal(flaghook_sqlite_options_init(&o, FLAGHOOK_SQLITE_OPTIONS_VERSION), 0);
	assert_int_equal(o.version, FLAGHOOK_SQLITE_OPTIONS_VERSION);
	assert_null(o.path);
	assert_int_equal(o.synchronous, FLAGHOOK_SQLITE_SYNC_FULL);
	assert_int_equal(o.prune_after_ms, 0);
	assert_null(o.allocator);
	assert_int_equal(flaghook_sqlite_options_init(NULL, 1), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_sqlite_options_init(&o, 0), FLAGHOOK_EVERSION);
	assert_int_equal(flaghook_sqlite_options_init(&o, FLAGHOOK_SQLITE_OPTIONS_VERSION + 1),
	                 FLAGHOOK_EVERSION);

	flaghook_storage s = FLAGHOOK_STORAGE_INIT;
	o = options(f->path);
	assert_int_equal(flaghook_sqlite_open(NULL, &o), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_sqlite_open(&s, NULL), FLAGHOOK_EINVAL);
	o.path = NULL;
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "path"));
	o.path = "";
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_EINVAL);
	o = options(f->path);
	o.synchronous = 7;
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_EINVAL);
	o = options(f->path);
	o.version = 0;
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_EVERSION);
	o = options(f->path);
	o.attempt_log_max = -1;
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_EINVAL);
	/* None of those created the file. */
	assert_int_equal(access(f->path, F_OK), -1);

	o = options(f->path);
	open_store(&s, &o);
	assert_int_equal(s.version, FLAGHOOK_STORAGE_VERSION);
	assert_int_equal(s.flags, FLAGHOOK_STORAGE_DURABLE); /* durable, one process: not SHARED */
	assert_non_null(s.put);
	assert_non_null(s.claim);
	assert_non_null(s.record);
	assert_non_null(s.list);
	assert_non_null(s.attempts);
	assert_non_null(s.requeue);
	assert_non_null(s.pending);
	assert_non_null(s.destroy);
	s.destroy(s.user_data);
}

static void test_missing_directory(void **state)
{
	fx *f = *state;
	char path[192];
	snprintf(path, sizeof(path), "%s/no/such/dir/outbox.db", f->dir);
	flaghook_sqlite_options o = options(path);
	flaghook_storage s = FLAGHOOK_STORAGE_INIT;
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_ESTORAGE);
	const char *e = flaghook_last_error();
	assert_non_null(strstr(e, "sqlite: "));
	assert_non_null(strstr(e, "cannot create the database file: No such file or directory"));
	assert_non_null(strstr(e, "directory"));
	assert_null(s.user_data);

	/* Not a database at all. */
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite file. ", fp);
	fclose(fp);
	o = options(f->path);
	assert_int_equal(flaghook_sqlite_open(&s, &o), FLAGHOOK_ESTORAGE);
	assert_non_null(strstr(flaghook_last_error(), "file is not a database"));
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
	if (!p)
		return;
	pthread_mutex_lock(&c->lock);
	c->live--;
	pthread_mutex_unlock(&c->lock);
	free(p);
}

/* The store's own memory comes from the allocator given, and all goes back. */
static void test_allocator(void **state)
{
	fx *f = *state;
	counting c = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	flaghook_allocator a = FLAGHOOK_ALLOCATOR_INIT;
	a.malloc = c_malloc;
	a.realloc = c_realloc;
	a.free = c_free;
	a.user_data = &c;
	flaghook_sqlite_options o = options(f->path);
	o.allocator = &a;
	flaghook_storage s;
	open_store(&s, &o);
	uint64_t id = put1(&s, 1, wall_us() - SEC);
	assert_int_equal(record(&s, id, 0, FLAGHOOK_OUTCOME_RELEASED, 0), 0);
	taken t;
	assert_int_equal(claim_due(&s, &t), 1); /* claim allocates its list of ids */
	assert_true(c.total >= 3);
	s.destroy(s.user_data);
	assert_int_equal(c.live, 0);

	/* An open that fails gives everything back too. */
	char path[192];
	snprintf(path, sizeof(path), "%s/missing/x.db", f->dir);
	o.path = path;
	flaghook_storage s2 = FLAGHOOK_STORAGE_INIT;
	assert_int_equal(flaghook_sqlite_open(&s2, &o), FLAGHOOK_ESTORAGE);
	assert_int_equal(c.live, 0);
}

/* Every allocation of the store failing in turn: ENOMEM, never a crash or
 * a leak, and the store (when open) still works afterwards. */
typedef struct failing {
	long count, fail_at, live;
} failing;

static void *f_malloc(size_t n, void *ud)
{
	failing *c = ud;
	if (c->count++ == c->fail_at)
		return NULL;
	c->live++;
	return malloc(n);
}

static void f_free(void *p, void *ud)
{
	failing *c = ud;
	if (p)
		c->live--;
	free(p);
}

static void test_allocation_failures(void **state)
{
	fx *f = *state;
	int completed = 0;
	for (long at = 0; at < 50 && !completed; at++) {
		failing c = { 0, at, 0 };
		flaghook_allocator a = FLAGHOOK_ALLOCATOR_INIT;
		a.malloc = f_malloc;
		a.realloc = c_realloc;
		a.free = f_free;
		a.user_data = &c;
		char path[160];
		snprintf(path, sizeof(path), "%s/alloc-%ld.db", f->dir, at); /* fresh each time */
		flaghook_sqlite_options o = options(path);
		o.allocator = &a;
		flaghook_storage s = FLAGHOOK_STORAGE_INIT;
		int rc = flaghook_sqlite_open(&s, &o);
		if (rc) {
			assert_int_equal(rc, FLAGHOOK_ENOMEM);
			assert_int_equal(c.live, 0);
			continue;
		}
		uint64_t id = put1(&s, 1, wall_us() - SEC);
		assert_int_equal(record(&s, id, 0, FLAGHOOK_OUTCOME_RELEASED, 0), 0);
		taken t;
		memset(&t, 0, sizeof(t));
		rc = s.claim(wall_us(), 0, 100, take_all, &t, s.user_data);
		if (rc == 0) {
			assert_int_equal(t.n, 1);
			completed = c.count <= at; /* nothing failed: every point was tried */
		} else {
			assert_int_equal(rc, FLAGHOOK_ENOMEM);
			assert_int_equal(claim_due(&s, &t), 1); /* nothing was held: it comes again */
		}
		s.destroy(s.user_data);
		assert_int_equal(c.live, 0);
	}
	assert_true(completed);
}

/* ---- durability across instances ------------------------------------------- */

static void test_survives_reopen(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s;
	open_store(&s, &o);
	int64_t now = wall_us();
	unsigned char body[40];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (unsigned char)(255 - i);
	flaghook_delivery d;
	make(&d, 3, body, sizeof(body), now - SEC);
	assert_int_equal(s.put(&d, 1, s.user_data), 0);
	uint64_t a = d.id;
	uint64_t b = put1(&s, 4, now + 3600 * SEC); /* held, not due */
	uint64_t done = put1(&s, 4, now);
	assert_int_equal(record(&s, a, 2, FLAGHOOK_OUTCOME_RETRY, now - 1000), 0);
	assert_int_equal(record(&s, done, 1, FLAGHOOK_OUTCOME_DELIVERED, 0), 0);
	taken t;
	assert_int_equal(claim_due(&s, &t), 0); /* all held by this instance */
	/* The process "dies" holding a and b: no RELEASED recorded. */
	s.destroy(s.user_data);

	open_store(&s, &o);
	assert_int_equal(pending(&s), 2);
	assert_int_equal(claim_due(&s, &t), 1); /* a: due, and its holder is gone */
	assert_int_equal(t.d[0].id, a);
	assert_int_equal(t.d[0].attempts, 2);
	assert_int_equal(t.d[0].next_attempt_us, now - 1000);
	assert_int_equal(t.d[0].body_len, sizeof(body));
	assert_memory_equal(t.d[0].body, body, sizeof(body));
	memset(&t, 0, sizeof(t));
	assert_int_equal(s.claim(now, 7200 * SEC, 10, take_all, &t, s.user_data), 0);
	assert_int_equal(t.n, 1); /* b, within the horizon */
	assert_int_equal(t.d[0].id, b);
	int n = 0;
	assert_int_equal(s.attempts(NULL, count_attempts, &n, s.user_data), 0);
	assert_int_equal(n, 2); /* the log survived too */
	/* New ids continue after the old ones. */
	assert_true(put1(&s, 5, now) > done);
	s.destroy(s.user_data);
}

/* A second opener (the flaghook command inspecting the file) does not make
 * the first hand out again what it is working on. */
static void test_second_opener_keeps_holds(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s1, s2;
	open_store(&s1, &o);
	uint64_t id = put1(&s1, 1, wall_us() - SEC);
	open_store(&s2, &o);
	int n = 0;
	assert_int_equal(s2.list(NULL, count_rows, &n, s2.user_data), 0);
	assert_int_equal(n, 1);
	s2.destroy(s2.user_data);
	taken t;
	assert_int_equal(claim_due(&s1, &t), 0);
	assert_int_equal(record(&s1, id, 1, FLAGHOOK_OUTCOME_DELIVERED, 0), 0);
	s1.destroy(s1.user_data);
}

/* ---- the file itself -------------------------------------------------------- */

static void test_schema_and_wal(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s;
	open_store(&s, &o);
	/* While open: WAL, the schema version, the indexes claim needs. */
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), FLAGHOOK_SQLITE_SCHEMA_VERSION);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
	                                  "AND name IN ('deliveries_due', 'deliveries_endpoint', "
	                                  "'attempts_delivery')"), 3);
	uint64_t id = put1(&s, 1, wall_us());
	s.destroy(s.user_data);

	/* Reopening a current file migrates nothing and keeps the data. */
	open_store(&s, &o);
	int n = 0;
	assert_int_equal(s.list(NULL, count_rows, &n, s.user_data), 0);
	assert_int_equal(n, 1);
	assert_int_equal(record(&s, id, 1, FLAGHOOK_OUTCOME_DELIVERED, 0), 0);
	s.destroy(s.user_data);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), FLAGHOOK_SQLITE_SCHEMA_VERSION);

	/* A file from a newer library is refused, and left as it was. */
	sql_exec(f->path, "PRAGMA user_version = 7");
	flaghook_storage s2 = FLAGHOOK_STORAGE_INIT;
	assert_int_equal(flaghook_sqlite_open(&s2, &o), FLAGHOOK_ESTORAGE);
	assert_non_null(strstr(flaghook_last_error(), "schema version 7 is newer than this library (1)"));
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 7);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deliveries"), 1);
}

static int mode_of(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	return (int)(sb.st_mode & 0777);
}

/* Review defect 10: the outbox holds flag bodies and receivers' replies;
 * under the usual umask 022 it and its -wal and -shm files are the
 * owner's alone, unless the caller asks for another mode. */
static void test_file_modes(void **state)
{
	fx *f = *state;
	mode_t old = umask(022);
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s;
	open_store(&s, &o);
	put1(&s, 1, wall_us()); /* a write: the WAL and its index exist now */
	char wal[200], shm[200];
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	snprintf(shm, sizeof(shm), "%s-shm", f->path);
	assert_int_equal(mode_of(f->path), 0600);
	assert_int_equal(mode_of(wal), 0600);
	assert_int_equal(mode_of(shm), 0600);
	s.destroy(s.user_data);

	/* A file that exists keeps the mode its owner gave it. */
	assert_int_equal(chmod(f->path, 0640), 0);
	open_store(&s, &o);
	assert_int_equal(mode_of(f->path), 0640);
	s.destroy(s.user_data);

	/* Asked for, a group-readable outbox; still less the umask. */
	char other[160];
	snprintf(other, sizeof(other), "%s/shared.db", f->dir);
	o = options(other);
	o.file_mode = 0660;
	open_store(&s, &o);
	put1(&s, 1, wall_us());
	assert_int_equal(mode_of(other), 0640);
	snprintf(wal, sizeof(wal), "%s-wal", other);
	assert_int_equal(mode_of(wal), 0640);
	s.destroy(s.user_data);
	umask(old);

	o.file_mode = 01777;
	flaghook_storage bad = FLAGHOOK_STORAGE_INIT;
	assert_int_equal(flaghook_sqlite_open(&bad, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "file_mode"));
}

/* A file made by an older library (version 0: an empty database that other
 * code may already use) is migrated in place. */
static void test_migrates_version_0(void **state)
{
	fx *f = *state;
	sql_exec(f->path, "CREATE TABLE host_table (x INTEGER); INSERT INTO host_table VALUES (5)");
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s;
	open_store(&s, &o);
	put1(&s, 1, wall_us());
	s.destroy(s.user_data);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 1);
	assert_int_equal(sql_int(f->path, "SELECT x FROM host_table"), 5);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deliveries"), 1);
}

/* ---- group commit -------------------------------------------------------------- */

/* A disk whose fsync takes SLOW_SYNC_US: the default VFS with xSync
 * delayed, so group commit is measured the same on a fast SSD, a tmpfs
 * (where fsync is free and there is nothing to share) or a loaded CI disk.
 * Files are opened by the real VFS into the same memory; only their method
 * table is swapped for a copy whose xSync sleeps first. */
#define SLOW_SYNC_US 1000

static sqlite3_vfs *real_vfs;
static sqlite3_vfs slow_vfs;
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { const sqlite3_io_methods *real; sqlite3_io_methods slow; } slow_methods[4];

/* The group-commit test's threads.  While `on`, a sync (the leader's, in
 * its commit) also waits until every other thread of the test that still
 * has puts to make is asleep in the store's queue: the overlap group
 * commit exists for, made certain instead of left to the scheduler of a
 * loaded machine.  Without group commit every thread would still be
 * queued, each for a commit of its own. */
#define GC_THREADS 8
static struct {
	atomic_int on;
	atomic_int tid[GC_THREADS];
	atomic_int done[GC_THREADS];
} gc_gate;

static void gc_gate_wait(void)
{
	if (!atomic_load(&gc_gate.on))
		return;
	int self = (int)syscall(SYS_gettid);
	/* A hang bound only: normally the others queue within microseconds. */
	for (int64_t end = mono_us() + 10 * SEC; mono_us() < end;) {
		int all = 1;
		for (int i = 0; i < GC_THREADS && all; i++) {
			int tid = atomic_load(&gc_gate.tid[i]);
			if (tid && tid != self && !atomic_load(&gc_gate.done[i]) && !thread_in_futex_wait(tid))
				all = 0;
		}
		if (all)
			return;
		struct timespec ts = { 0, 50 * 1000L };
		nanosleep(&ts, NULL);
	}
}

static int slow_sync(sqlite3_file *file, int flags)
{
	gc_gate_wait();
	const sqlite3_io_methods *real = NULL;
	pthread_mutex_lock(&slow_lock);
	for (int i = 0; i < 4; i++)
		if (file->pMethods == &slow_methods[i].slow)
			real = slow_methods[i].real;
	pthread_mutex_unlock(&slow_lock);
	struct timespec ts = { 0, SLOW_SYNC_US * 1000L };
	nanosleep(&ts, NULL);
	return real->xSync(file, flags);
}

static int slow_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out)
{
	(void)vfs;
	int rc = real_vfs->xOpen(real_vfs, name, file, flags, out);
	if (rc != SQLITE_OK || !file->pMethods)
		return rc;
	pthread_mutex_lock(&slow_lock);
	for (int i = 0; i < 4; i++) {
		if (!slow_methods[i].real) {
			slow_methods[i].real = file->pMethods;
			slow_methods[i].slow = *file->pMethods;
			slow_methods[i].slow.xSync = slow_sync;
		}
		if (slow_methods[i].real == file->pMethods) {
			file->pMethods = &slow_methods[i].slow;
			break;
		}
	}
	pthread_mutex_unlock(&slow_lock);
	return rc;
}

/* Makes the slow VFS the default for connections opened from now on. */
static void slow_sync_begin(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	slow_vfs = *real_vfs;
	slow_vfs.zName = "flaghook-test-slow-sync";
	slow_vfs.pNext = NULL;
	slow_vfs.xOpen = slow_open;
	assert_int_equal(sqlite3_vfs_register(&slow_vfs, 1), SQLITE_OK);
}

static void slow_sync_end(void)
{
	sqlite3_vfs_unregister(&slow_vfs);
	sqlite3_vfs_register(real_vfs, 1); /* the default again */
}

#define GC_PUTS 250

typedef struct gc_worker {
	flaghook_storage *s;
	pthread_barrier_t *go;
	int index;
	uint64_t ids[GC_PUTS];
	int failures;
} gc_worker;

static void *gc_run(void *arg)
{
	gc_worker *w = arg;
	static const char body[] = "{\"data\": {\"flag\": \"on\"}, \"event_type\": \"FLAG_UPDATED\"}";
	atomic_store(&gc_gate.tid[w->index], (int)syscall(SYS_gettid));
	pthread_barrier_wait(w->go);
	for (int i = 0; i < GC_PUTS; i++) {
		flaghook_delivery d;
		make(&d, (uint64_t)i % 3 + 1, body, sizeof(body) - 1, wall_us());
		if (w->s->put(&d, 1, w->s->user_data) != 0 || !d.claimed)
			w->failures++;
		w->ids[i] = d.id;
	}
	atomic_store(&gc_gate.done[w->index], 1);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_group_commit(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	o.synchronous = FLAGHOOK_SQLITE_SYNC_FULL;
	flaghook_storage s;
	slow_sync_begin();
	open_store(&s, &o);
	slow_sync_end(); /* the store's connections keep it */
	uint64_t before = flaghook__sqlite_commits(s.user_data);

	static gc_worker w[GC_THREADS];
	pthread_t th[GC_THREADS];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, GC_THREADS);
	for (int i = 0; i < GC_THREADS; i++) {
		atomic_store(&gc_gate.tid[i], 0);
		atomic_store(&gc_gate.done[i], 0);
	}
	atomic_store(&gc_gate.on, 1);
	int64_t t0 = mono_us();
	for (int i = 0; i < GC_THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = &s;
		w[i].go = &go;
		w[i].index = i;
		assert_int_equal(pthread_create(&th[i], NULL, gc_run, &w[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++)
		pthread_join(th[i], NULL);
	int64_t elapsed = mono_us() - t0;
	atomic_store(&gc_gate.on, 0);
	pthread_barrier_destroy(&go);
	uint64_t commits = flaghook__sqlite_commits(s.user_data) - before;

	static uint64_t all[GC_THREADS * GC_PUTS];
	size_t n = 0;
	for (int i = 0; i < GC_THREADS; i++) {
		assert_int_equal(w[i].failures, 0);
		memcpy(all + n, w[i].ids, sizeof(w[i].ids));
		n += GC_PUTS;
	}
	qsort(all, n, sizeof(all[0]), cmp_u64);
	for (size_t i = 1; i < n; i++)
		assert_true(all[i] > all[i - 1]);
	assert_true(all[0] > 0);
	assert_int_equal(pending(&s), (uint64_t)n);
	printf("[ INFO     ] group commit: %zu puts from %d threads in %llu commits "
	       "(%.1f puts per fsync of %d us), %.0f ms\n", n, GC_THREADS, (unsigned long long)commits,
	       commits ? (double)n / (double)commits : 0.0, SLOW_SYNC_US, (double)elapsed / 1000.0);
	/* Without group commit every put is its own commit (commits == n).
	 * With it, the threads settle into two groups that take turns: one
	 * commits while the other, just woken, queues its next puts; and since
	 * each commit's sync waits until every other thread has queued (the
	 * gate above), two consecutive batches hold every thread: about
	 * n / (threads / 2) commits.  Half of that leaves a margin and still
	 * fails if batching stops working. */
	assert_true(commits > 0);
	assert_true(commits * 2 <= n);

	/* One thread alone: one commit per put (there is nobody to share with). */
	before = flaghook__sqlite_commits(s.user_data);
	put1(&s, 1, wall_us());
	put1(&s, 1, wall_us());
	assert_int_equal(flaghook__sqlite_commits(s.user_data) - before, 2);
	s.destroy(s.user_data);
}

/* ---- a full disk ------------------------------------------------------------- */

static int contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* The database may not grow (max_page_count): put fails with ESTORAGE and
 * nothing of it is stored; once it may grow again, put works. */
static void test_database_full(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s;
	open_store(&s, &o);
	uint64_t first = put1(&s, 1, wall_us());
	/* A limit below the current size is raised to it: no room left. */
	assert_int_equal(flaghook__sqlite_exec(s.user_data, "PRAGMA max_page_count = 1"), 0);

	static unsigned char big[64 * 1024];
	memset(big, 'x', sizeof(big));
	flaghook_delivery d[3];
	make(&d[0], 2, "{}", 2, wall_us());
	make(&d[1], 2, big, sizeof(big), wall_us());
	make(&d[2], 2, "{}", 2, wall_us());
	assert_int_equal(s.put(d, 3, s.user_data), FLAGHOOK_ESTORAGE);
	const char *e = flaghook_last_error();
	assert_true(contains(e, "sqlite: "));
	assert_true(contains(e, "full"));
	assert_false(contains(e, f->dir)); /* no path in the detail */
	assert_int_equal(d[0].id, 0);
	assert_int_equal(d[0].claimed, 0);
	assert_int_equal(pending(&s), 1); /* all or none */

	/* Still usable: reads work; the put keeps failing while the file is full. */
	int n = 0;
	assert_int_equal(s.list(NULL, count_rows, &n, s.user_data), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s.put(d, 3, s.user_data), FLAGHOOK_ESTORAGE);

	/* Space comes back: the same put succeeds. */
	assert_int_equal(flaghook__sqlite_exec(s.user_data, "PRAGMA max_page_count = 1073741823"), 0);
	assert_int_equal(s.put(d, 3, s.user_data), 0);
	assert_true(d[0].id > first);
	assert_int_equal(pending(&s), 4);
	s.destroy(s.user_data);
}

/* One request that fails inside a shared transaction (a put too big for
 * the file) does not take the other requests of its batch down with it.
 * To get both into one batch for certain, a statement of the test's holds
 * the leader's role until both have queued: a SQL function (registered on
 * the store's connections through sqlite3_auto_extension) that blocks
 * until the test lets it go. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int entered, released;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

static void gate_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc; (void)argv;
	pthread_mutex_lock(&gate.lock);
	gate.entered = 1;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.released)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	sqlite3_result_int(ctx, 1);
}

static int gate_register(sqlite3 *db, char **err, const void *api)
{
	(void)err; (void)api;
	return sqlite3_create_function(db, "fh_test_gate", 0, SQLITE_UTF8, NULL, gate_fn, NULL, NULL);
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.released = 1;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Waits up to 60 s for the gate's function to be running; 1 when it is. */
static int gate_wait_entered(void)
{
	int64_t end = mono_us() + 60 * SEC;
	pthread_mutex_lock(&gate.lock);
	while (!gate.entered && mono_us() < end) {
		pthread_mutex_unlock(&gate.lock);
		sleep_ms(1);
		pthread_mutex_lock(&gate.lock);
	}
	int in = gate.entered;
	pthread_mutex_unlock(&gate.lock);
	return in;
}

typedef struct batch_job {
	flaghook_storage *s;
	const char *sql;            /* through the test hook, else a put */
	size_t body_len;
	int rc;
	uint64_t id;
	atomic_int tid;             /* the thread's id, once it runs */
} batch_job;

static void *batch_run(void *arg)
{
	batch_job *j = arg;
	atomic_store(&j->tid, (int)syscall(SYS_gettid));
	if (j->sql) {
		j->rc = flaghook__sqlite_exec(j->s->user_data, j->sql);
		return NULL;
	}
	static unsigned char body[64 * 1024];
	flaghook_delivery d;
	make(&d, 1, body, j->body_len, wall_us());
	j->rc = j->s->put(&d, 1, j->s->user_data);
	j->id = d.id;
	return NULL;
}

/* Waits up to 60 s until j's thread is asleep in the store's queue. */
static int queued(batch_job *j)
{
	for (int64_t end = mono_us() + 60 * SEC; mono_us() < end; sleep_ms(1)) {
		int tid = atomic_load(&j->tid);
		/* Seen twice in a row, 5 ms apart: not a passing wait. */
		if (tid && thread_in_futex_wait(tid)) {
			sleep_ms(5);
			if (thread_in_futex_wait(tid))
				return 1;
		}
	}
	return 0;
}

static void test_batch_isolation(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	flaghook_storage s;
	gate.entered = gate.released = 0;
	assert_int_equal(sqlite3_auto_extension((void (*)(void))gate_register), SQLITE_OK);
	flaghook_storage init = FLAGHOOK_STORAGE_INIT;
	s = init;
	int orc = flaghook_sqlite_open(&s, &o);
	sqlite3_cancel_auto_extension((void (*)(void))gate_register);
	if (orc)
		fail_msg("flaghook_sqlite_open: %s (%s)", flaghook_strerror(orc), flaghook_last_error());
	put1(&s, 1, wall_us());
	/* Room for a few small rows, not for a 64 KiB body. */
	char sql[96];
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
	         (long long)sql_int(f->path, "PRAGMA page_count") + 4);
	assert_int_equal(flaghook__sqlite_exec(s.user_data, sql), 0);
	uint64_t before = flaghook__sqlite_commits(s.user_data);
	uint64_t batches = flaghook__sqlite_batches(s.user_data);

	/* The leader's statement waits for the gate. */
	batch_job *slow = calloc(3, sizeof(*slow)), *small = slow + 1, *big = slow + 2;
	assert_non_null(slow);
	slow->s = small->s = big->s = &s;
	slow->sql = "SELECT fh_test_gate()";
	small->body_len = 100;
	big->body_len = 64 * 1024;
	slow->rc = small->rc = big->rc = -99;
	pthread_t t_slow, t_small, t_big;
	assert_int_equal(pthread_create(&t_slow, NULL, batch_run, slow), 0);
	int leading = gate_wait_entered();
	int both_queued = 0;
	if (leading) {
		assert_int_equal(pthread_create(&t_big, NULL, batch_run, big), 0);
		assert_int_equal(pthread_create(&t_small, NULL, batch_run, small), 0);
		both_queued = queued(big) && queued(small);
	}
	gate_release(); /* before any assertion: the threads must not stay stuck */
	pthread_join(t_slow, NULL);
	if (leading) {
		pthread_join(t_big, NULL);
		pthread_join(t_small, NULL);
	}
	assert_true(leading);
	assert_true(both_queued);

	assert_int_equal(slow->rc, 0);
	assert_int_equal(big->rc, FLAGHOOK_ESTORAGE);
	assert_int_equal(big->id, 0);
	assert_int_equal(small->rc, 0);
	assert_true(small->id > 0);
	/* Two batches: the held one, then the big and the small put together
	 * (the big one's failure rolled that transaction back; the small one
	 * was committed again without it). */
	assert_int_equal(flaghook__sqlite_batches(s.user_data) - batches, 2);
	assert_int_equal(flaghook__sqlite_commits(s.user_data) - before, 2);
	assert_int_equal(pending(&s), 2);
	free(slow);
	s.destroy(s.user_data);
}

/* A real full file system: a 1 MiB tmpfs filled by another file.  Needs
 * permission to mount; skipped without it (test_database_full covers the
 * same paths through SQLite's page limit). */
static void test_disk_full_tmpfs(void **state)
{
	fx *f = *state;
	char mnt[128];
	snprintf(mnt, sizeof(mnt), "%s/mnt", f->dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") != 0) {
		printf("[ SKIPPED  ] cannot mount a tmpfs here (%s): no real full-disk test\n",
		       strerror(errno));
		skip();
		return;
	}
	snprintf(f->mnt, sizeof(f->mnt), "%s", mnt);
	char path[192], filler[192];
	snprintf(path, sizeof(path), "%s/outbox.db", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);

	flaghook_sqlite_options o = options(path);
	flaghook_storage s;
	open_store(&s, &o);
	uint64_t first = put1(&s, 1, wall_us());

	/* Fill the file system to the last byte. */
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	static char chunk[4096];
	while (write(fd, chunk, sizeof(chunk)) > 0)
		;
	while (write(fd, chunk, 1) > 0)
		;
	close(fd);

	static unsigned char big[32 * 1024];
	memset(big, 'y', sizeof(big));
	flaghook_delivery d;
	make(&d, 2, big, sizeof(big), wall_us());
	int rc = s.put(&d, 1, s.user_data);
	assert_int_equal(rc, FLAGHOOK_ESTORAGE);
	const char *e = flaghook_last_error();
	assert_true(contains(e, "sqlite: "));
	assert_true(contains(e, "full") || contains(e, "I/O"));
	assert_false(contains(e, f->dir));
	assert_int_equal(pending(&s), 1);

	/* The operator frees space: the same process, the same store, works. */
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(s.put(&d, 1, s.user_data), 0);
	assert_true(d.id > first);
	assert_int_equal(pending(&s), 2);
	assert_int_equal(record(&s, first, 1, FLAGHOOK_OUTCOME_DELIVERED, 0), 0);
	s.destroy(s.user_data);

	/* And what it said it stored is there after a reopen. */
	open_store(&s, &o);
	assert_int_equal(pending(&s), 1);
	s.destroy(s.user_data);
}

/* ---- pruning ------------------------------------------------------------------ */

static void test_prune(void **state)
{
	fx *f = *state;
	flaghook_sqlite_options o = options(f->path);
	o.prune_after_ms = -1; /* never */
	flaghook_storage s;
	open_store(&s, &o);
	int64_t now = wall_us();
	uint64_t delivered = put1(&s, 1, now);
	uint64_t dead = put1(&s, 1, now);
	uint64_t waiting = put1(&s, 1, now);
	assert_int_equal(record(&s, delivered, 1, FLAGHOOK_OUTCOME_DELIVERED, 0), 0);
	assert_int_equal(record(&s, dead, 1, FLAGHOOK_OUTCOME_GAVE_UP, 0), 0);
	sleep_ms(30);
	taken t;
	assert_int_equal(claim_due(&s, &t), 0);
	assert_int_equal(record(&s, waiting, 1, FLAGHOOK_OUTCOME_RETRY, now), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deliveries"), 3);
	s.destroy(s.user_data);

	/* 10 ms: everything delivered above is old enough.  The first claim
	 * prunes; the dead letter and the pending delivery stay. */
	o.prune_after_ms = 10;
	open_store(&s, &o);
	assert_int_equal(claim_due(&s, &t), 1); /* waiting: its holder is gone */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deliveries"), 2);
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM deliveries WHERE id = %llu",
	         (unsigned long long)delivered);
	assert_int_equal(sql_int(f->path, sql), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM attempts WHERE delivery_id = %llu",
	         (unsigned long long)delivered);
	assert_int_equal(sql_int(f->path, sql), 0); /* its attempt log went with it */
	snprintf(sql, sizeof(sql), "SELECT state FROM deliveries WHERE id = %llu",
	         (unsigned long long)dead);
	assert_int_equal(sql_int(f->path, sql), FLAGHOOK_DELIVERY_DEAD);

	/* At most once a minute: a delivery that ages now stays until then. */
	assert_int_equal(record(&s, waiting, 2, FLAGHOOK_OUTCOME_DELIVERED, 0), 0);
	sleep_ms(30);
	assert_int_equal(claim_due(&s, &t), 0);
	assert_int_equal(record(&s, dead, 2, FLAGHOOK_OUTCOME_GAVE_UP, 0), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM deliveries"), 2);
	/* Pruned ids are never reused. */
	assert_true(put1(&s, 1, now) > waiting);
	s.destroy(s.user_data);
}

/* ------------------------------------------------------------------------------ */

int main(void)
{
	suite_ctx ctx = { "", 0 };
	snprintf(ctx.dir, sizeof(ctx.dir), "%s/flaghook-sqlite-suite-XXXXXX", tmp_base());
	if (!mkdtemp(ctx.dir)) {
		perror("mkdtemp");
		return 1;
	}
	store_suite_target target = { open_fresh, &ctx, "store/sqlite", 0, SUITE_LOG_MAX,
	                              SUITE_RESPONSE_MAX, 0 };
	int failed = store_suite_run(&target);
	remove_tree(ctx.dir);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_options_and_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_opener_keeps_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_and_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrates_version_0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_isolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_tmpfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
	};
	failed += cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
	return failed ? 1 : 0;
}
