/*
 * libflaghook-sqlite: the outbox in one SQLite file (store-contract.md).
 *
 * Connections.  One write connection, used only by the thread that is
 * committing (see group commit below), and a small pool of read
 * connections for claim, list, attempts and pending.  WAL mode lets the
 * readers run while a commit is in progress.  Every connection is opened
 * SQLITE_OPEN_NOMUTEX: each is used by one thread at a time, which our own
 * locks guarantee, so SQLite's per-connection mutex would be pure cost.
 *
 * Group commit.  Every write (put, record, requeue, claim's holds) is a
 * request on a queue.  A thread that finds nobody committing becomes the
 * leader: it takes the whole queue, runs it in one BEGIN IMMEDIATE ...
 * COMMIT with a SAVEPOINT per request (so one failing request, a bad row
 * or a full disk mid-way, does not take the others with it), records each
 * request's own result and wakes the waiters.  Threads that queued while it
 * was committing are the next batch, so N threads emitting at once pay
 * about one fsync per batch instead of one each.
 *
 * Holds.  A delivery is held by the store instance that puts or claims it
 * (column holder = that instance's random token).  One process uses a file
 * at a time, so a hold by any other token is a leftover of a process that
 * died or closed: claim treats it as released.  That is "opening releases
 * every hold" without a write at open, and without a second opener (the
 * flaghook command inspecting or re-queueing while a server runs) taking
 * away the server's holds.
 *
 * Nothing secret is stored: bodies (already rendered) and event ids; the
 * signing secrets never reach the store.
 *
 * SPDX-License-Identifier: MIT
 */
#include "flaghook_sqlite.h"
#include "util/clock.h"
#include "util/fail.h"
#include "util/version.h"
#ifdef FLAGHOOK_TESTHOOKS
#include "sqlite_testhooks.h"
#endif

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DEFAULT_PRUNE_AFTER_MS  (7LL * 24 * 3600 * 1000)
#define DEFAULT_ATTEMPT_LOG_MAX 20
#define DEFAULT_RESPONSE_MAX    1024
#define PRUNE_INTERVAL_US       (60LL * 1000 * 1000)
#define ERROR_TEXT_MAX          1024   /* an attempt's error detail, bytes */
#define CLAIM_PAGE              64     /* candidates read per query in claim */
#define READERS_IDLE_MAX        4      /* idle read connections kept open */
#define DEFAULT_FILE_MODE       0600   /* bodies and replies: the owner's alone */

/* flaghook_query filters, as bits selecting one cached statement. */
#define Q_STATE    1
#define Q_DELIVERY 2
#define Q_ENDPOINT 4
#define Q_SINCE    8
#define Q_VARIANTS 16

/* ------------------------------------------------------------------ */
/* Schema and migrations                                               */

/* migrations[i] takes a database from schema version i to i + 1.  Append,
 * never edit: a file written by an older library replays only the steps it
 * lacks, in one transaction. */
static const char *const migrations[FLAGHOOK_SQLITE_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE deliveries ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT," /* AUTOINCREMENT: pruning never lets an id come back */
	"  event_id TEXT NOT NULL,"
	"  event_type INTEGER NOT NULL,"
	"  endpoint_id INTEGER NOT NULL,"        /* a uint64 stored as its int64 bits */
	"  body BLOB NOT NULL,"
	"  attempts INTEGER NOT NULL,"
	"  created_us INTEGER NOT NULL,"
	"  next_attempt_us INTEGER NOT NULL,"
	"  fifo INTEGER NOT NULL,"
	"  state INTEGER NOT NULL DEFAULT 0,"    /* 0 pending, 1 delivered, 2 dead */
	"  last_status INTEGER NOT NULL DEFAULT 0,"
	"  updated_us INTEGER NOT NULL,"
	"  holder INTEGER,"                      /* the holding instance's token; NULL: nobody */
	"  lease_until_us INTEGER"               /* unused here: for a shared store's layout */
	");"
	/* claim: pending rows that are due. */
	"CREATE INDEX deliveries_due ON deliveries(state, next_attempt_us);"
	/* claim's FIFO test (is an older row of this endpoint pending?) seeks
	 * (endpoint, pending) directly instead of walking the endpoint's
	 * delivered history; list and requeue by endpoint use it too. */
	"CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, state, id);"
	"CREATE TABLE attempts ("
	"  seq INTEGER PRIMARY KEY,"             /* insertion order */
	"  delivery_id INTEGER NOT NULL,"
	"  endpoint_id INTEGER NOT NULL,"
	"  event_id TEXT NOT NULL,"
	"  number INTEGER NOT NULL,"
	"  outcome INTEGER NOT NULL,"
	"  status INTEGER NOT NULL,"
	"  errclass INTEGER NOT NULL,"
	"  started_us INTEGER NOT NULL,"
	"  finished_us INTEGER NOT NULL,"
	"  next_attempt_us INTEGER NOT NULL,"
	"  error TEXT NOT NULL,"
	"  response BLOB NOT NULL,"
	"  owner TEXT"                           /* unused here: a shared store's owner name */
	");"
	"CREATE INDEX attempts_delivery ON attempts(delivery_id, seq);"
	"CREATE INDEX attempts_endpoint ON attempts(endpoint_id, started_us);"
	"CREATE INDEX attempts_started ON attempts(started_us);",
};

#define DELIVERY_COLUMNS \
	"id, event_id, event_type, endpoint_id, body, attempts, created_us, next_attempt_us, " \
	"fifo, state, last_status, updated_us"

/* ------------------------------------------------------------------ */
/* The store                                                           */

/* One read connection and the statements prepared on it. */
typedef struct reader {
	sqlite3 *db;
	sqlite3_stmt *list[Q_VARIANTS];
	sqlite3_stmt *attempts[Q_VARIANTS];
	sqlite3_stmt *claim;
	sqlite3_stmt *pending;
	struct reader *next;
} reader;

enum { REQ_PUT, REQ_RECORD, REQ_HOLD, REQ_UNHOLD, REQ_REQUEUE, REQ_EXEC, REQ_PRUNE };

/* One write waiting for a commit.  It lives on the requesting thread's
 * stack; the leader fills rc and detail, and the requester reports them on
 * its own thread (flaghook_error_set is per thread). */
typedef struct request {
	int kind;
	int prune;                      /* also prune in this transaction */
	int64_t now_us;
	flaghook_delivery *put;         /* REQ_PUT */
	size_t count;
	const flaghook_delivery *delivery; /* REQ_RECORD */
	const flaghook_attempt *attempt;
	const uint64_t *ids;            /* REQ_HOLD, REQ_UNHOLD */
	const flaghook_query *query;    /* REQ_REQUEUE */
	uint64_t changed;
	const char *sql;                /* REQ_EXEC */
	int rc;
	int settled;                    /* failed on its own: not applied again */
	int done;
	char detail[160];
	struct request *next;
} request;

typedef struct store {
	flaghook_allocator alloc;       /* a copy: the options need not outlive the store */
	char *path;
	int64_t token;                  /* this instance's holder value */
	int synchronous;
	mode_t file_mode;               /* a new database file's permissions */
	int busy_timeout_ms;
	int64_t prune_after_us;         /* <0: never */
	int64_t attempt_log_max;
	size_t response_max;

	/* group commit */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	request *q_head, *q_tail;
	int committing;
	uint64_t commits;
	uint64_t batches;               /* leader turns, committed or not */
	int64_t last_prune_us;

	/* the write connection: only the leader touches it and these */
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback, *savepoint, *release, *rollback_to;
	sqlite3_stmt *insert, *record, *attempt_insert, *attempt_trim, *hold, *unhold;
	sqlite3_stmt *prune_attempts, *prune_deliveries;
	sqlite3_stmt *requeue[Q_VARIANTS];

	/* claim hands a row to one caller only: claims run one at a time */
	pthread_mutex_t claim_lock;

	pthread_mutex_t pool_lock;
	reader *idle;
	int idle_count;
} store;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void *mem_alloc(const store *s, size_t n)
{
	if (s->alloc.malloc)
		return s->alloc.malloc(n, s->alloc.user_data);
	return malloc(n);
}

static void mem_free(const store *s, void *p)
{
	if (!p)
		return;
	if (s->alloc.free)
		s->alloc.free(p, s->alloc.user_data);
	else
		free(p);
}

/* A token no other instance will plausibly have: the holder value. */
static int64_t make_token(const void *salt)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
	             ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt;
	/* splitmix64 finaliser */
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return (int64_t)(x >> 1); /* positive, for readability in the sqlite3 shell */
}

/* The options' size at each version (util/version.h). */
static const size_t options_sizes[] = {
	0,
	FH_SIZE_BEFORE(flaghook_sqlite_options, file_mode), /* 1 */
	sizeof(flaghook_sqlite_options),                     /* 2: file_mode */
};

static int einval(const char *what)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "sqlite: %s", what);
	return flaghook_error_set(FLAGHOOK_EINVAL, msg);
}

/* The FLAGHOOK_E* code for an SQLite result code: only running out of
 * memory is not a storage failure. */
static int map_code(int sqlite_rc)
{
	return (sqlite_rc & 0xff) == SQLITE_NOMEM ? FLAGHOOK_ENOMEM : FLAGHOOK_ESTORAGE;
}

/* "sqlite: database or disk is full: put".  sqlite3_errstr, not errmsg:
 * the generic text never carries a file name. */
static int format_error(char *buf, size_t size, int sqlite_rc, const char *what)
{
	snprintf(buf, size, "sqlite: %s: %s", sqlite3_errstr(sqlite_rc & 0xff), what);
	return map_code(sqlite_rc);
}

static int report(int sqlite_rc, const char *what)
{
	char msg[192];
	int code = format_error(msg, sizeof(msg), sqlite_rc, what);
	return flaghook_error_set(code, msg);
}

/* Steps a statement that returns no rows and resets it: SQLITE_DONE or
 * the error. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
	return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

static int query_state_ok(int32_t state)
{
	return state == FLAGHOOK_STATE_ANY || state == FLAGHOOK_DELIVERY_PENDING ||
	       state == FLAGHOOK_DELIVERY_DELIVERED || state == FLAGHOOK_DELIVERY_DEAD;
}

/* Checks a query (NULL: everything) and returns its filter bits. */
static int query_mask(const flaghook_query *q, int *mask)
{
	*mask = 0;
	if (!q)
		return 0;
	int rc = flaghook__check_version(q->version, FLAGHOOK_QUERY_VERSION, "sqlite: flaghook_query");
	if (rc)
		return rc;
	if (!query_state_ok(q->state))
		return einval("query state is not a FLAGHOOK_DELIVERY_* or FLAGHOOK_STATE_ANY");
	*mask = (q->state != FLAGHOOK_STATE_ANY ? Q_STATE : 0) | (q->delivery_id ? Q_DELIVERY : 0) |
	        (q->endpoint_id ? Q_ENDPOINT : 0) | (q->since_us ? Q_SINCE : 0);
	return 0;
}

/* Binds ?1 state, ?2 delivery, ?3 endpoint, ?4 since, ?5 limit.  Every
 * variant's SQL names ?5, so all five indexes exist even when unused. */
static void bind_query(sqlite3_stmt *st, const flaghook_query *q)
{
	static const flaghook_query all = FLAGHOOK_QUERY_INIT;
	if (!q)
		q = &all;
	sqlite3_bind_int(st, 1, q->state);
	sqlite3_bind_int64(st, 2, (int64_t)q->delivery_id);
	sqlite3_bind_int64(st, 3, (int64_t)q->endpoint_id);
	sqlite3_bind_int64(st, 4, q->since_us);
	sqlite3_bind_int64(st, 5, q->limit == 0 || q->limit > (size_t)INT64_MAX ? -1 : (int64_t)q->limit);
}

/* " AND state = ?1 AND ..." for the filters in mask.  `time_col` is the
 * column `since` compares with. */
static void where_clause(char *buf, size_t size, int mask, const char *time_col, int states)
{
	snprintf(buf, size, "%s%s%s%s%s%s",
	         states && (mask & Q_STATE) ? " AND state = ?1" : "",
	         mask & Q_DELIVERY ? (states ? " AND id = ?2" : " AND delivery_id = ?2") : "",
	         mask & Q_ENDPOINT ? " AND endpoint_id = ?3" : "",
	         mask & Q_SINCE ? " AND " : "", mask & Q_SINCE ? time_col : "",
	         mask & Q_SINCE ? " >= ?4" : "");
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

/* A new outbox file is created here, with the store's mode (0600 unless
 * the caller chose), before SQLite sees it: SQLite would create it 0644
 * less the umask, and it makes the -wal and -shm files with the mode of
 * the database file, so those follow.  An existing file keeps its mode. */
static int create_file(const store *s)
{
	int fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, s->file_mode);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	char msg[160];
	snprintf(msg, sizeof(msg), "sqlite: cannot create the database file: %s (does its directory "
	         "exist, and may this process write there?)", strerror(errno));
	return flaghook_error_set(FLAGHOOK_ESTORAGE, msg);
}

static int open_connection(const store *s, int create, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(s->path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(db); /* a handle comes back even on failure */
		*out = NULL;
		if ((rc & 0xff) == SQLITE_NOMEM)
			return report(rc, "open the database");
		return report(rc, "open the database (does its directory exist, and may this "
		                  "process write there?)");
	}
	sqlite3_busy_timeout(db, s->busy_timeout_ms);
	*out = db;
	return 0;
}

static void reader_close(reader *r)
{
	for (int i = 0; i < Q_VARIANTS; i++) {
		sqlite3_finalize(r->list[i]);
		sqlite3_finalize(r->attempts[i]);
	}
	sqlite3_finalize(r->claim);
	sqlite3_finalize(r->pending);
	sqlite3_close(r->db);
}

/* Borrows a read connection (opening one when none is idle), so list and
 * attempts may run from several threads, or from inside each other's
 * callbacks, without waiting for each other. */
static int reader_get(store *s, reader **out)
{
	pthread_mutex_lock(&s->pool_lock);
	reader *r = s->idle;
	if (r) {
		s->idle = r->next;
		s->idle_count--;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (r) {
		*out = r;
		return 0;
	}
	r = mem_alloc(s, sizeof(*r));
	if (!r)
		return flaghook_error_set(FLAGHOOK_ENOMEM, "sqlite: out of memory");
	memset(r, 0, sizeof(*r));
	int rc = open_connection(s, 0, &r->db);
	if (rc) {
		mem_free(s, r);
		return rc;
	}
	/* A guard: nothing on a read connection may write. */
	sqlite3_exec(r->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
	*out = r;
	return 0;
}

static void reader_put(store *s, reader *r)
{
	pthread_mutex_lock(&s->pool_lock);
	if (s->idle_count < READERS_IDLE_MAX) {
		r->next = s->idle;
		s->idle = r;
		s->idle_count++;
		r = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (r) {
		reader_close(r);
		mem_free(s, r);
	}
}

/* ------------------------------------------------------------------ */
/* The write requests, as the leader applies them                      */

static int req_fail(request *r, int sqlite_rc, const char *what)
{
	return format_error(r->detail, sizeof(r->detail), sqlite_rc, what);
}

static int apply_put(store *s, request *r)
{
	sqlite3_stmt *st = s->insert;
	for (size_t i = 0; i < r->count; i++) {
		const flaghook_delivery *d = &r->put[i];
		sqlite3_bind_text(st, 1, d->event_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, d->event_type);
		sqlite3_bind_int64(st, 3, (int64_t)d->endpoint_id);
		/* an empty body is "" (a NULL pointer would bind SQL NULL) */
		sqlite3_bind_blob64(st, 4, d->body_len ? d->body : "", d->body_len, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, d->attempts);
		sqlite3_bind_int64(st, 6, d->created_us);
		sqlite3_bind_int64(st, 7, d->next_attempt_us);
		sqlite3_bind_int(st, 8, d->fifo != 0);
		sqlite3_bind_int64(st, 9, r->now_us);
		/* Held by this instance, FIFO ones too: one process per file, so
		 * the client keeps their order itself. */
		sqlite3_bind_int64(st, 10, s->token);
		int rc = run(st);
		sqlite3_clear_bindings(st); /* the bound pointers are the caller's */
		if (rc != SQLITE_DONE)
			return req_fail(r, rc, "put");
		/* Written into the caller's array while it waits; cleared again by
		 * the caller if the transaction fails after all. */
		r->put[i].id = (uint64_t)sqlite3_last_insert_rowid(s->db);
	}
	return 0;
}

static int apply_record(store *s, request *r)
{
	const flaghook_delivery *d = r->delivery;
	const flaghook_attempt *a = r->attempt;
	int32_t state = FLAGHOOK_DELIVERY_PENDING;
	int held = 0, next_from_attempt = 0;
	switch (a->outcome) {
	case FLAGHOOK_OUTCOME_RETRY: held = 1; next_from_attempt = 1; break;
	case FLAGHOOK_OUTCOME_DELIVERED: state = FLAGHOOK_DELIVERY_DELIVERED; break;
	case FLAGHOOK_OUTCOME_GAVE_UP: state = FLAGHOOK_DELIVERY_DEAD; break;
	default: break; /* RELEASED, ABANDONED: pending, held by nobody */
	}
	sqlite3_stmt *st = s->record;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int(st, 2, a->number);
	sqlite3_bind_int(st, 3, a->status);
	if (next_from_attempt)
		sqlite3_bind_int64(st, 4, a->next_attempt_us);
	if (held)
		sqlite3_bind_int64(st, 5, s->token);
	sqlite3_bind_int(st, 6, held);
	sqlite3_bind_int64(st, 7, r->now_us);
	sqlite3_bind_int64(st, 8, (int64_t)d->id);
	int rc = run(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return req_fail(r, rc, "record");
	if (sqlite3_changes(s->db) == 0) {
		snprintf(r->detail, sizeof(r->detail), "sqlite: no delivery %llu",
		         (unsigned long long)d->id);
		return FLAGHOOK_ENOTFOUND;
	}
	if (a->number <= 0)
		return 0;

	size_t rlen = a->response ? a->response_len : 0;
	if (rlen > s->response_max)
		rlen = s->response_max;
	const char *err = a->error ? a->error : "";
	size_t elen = strlen(err);
	if (elen > ERROR_TEXT_MAX) {
		elen = ERROR_TEXT_MAX;
		while (elen > 0 && ((unsigned char)err[elen] & 0xC0) == 0x80)
			elen--; /* cut on a UTF-8 character boundary */
	}
	st = s->attempt_insert;
	sqlite3_bind_int(st, 1, a->number);
	sqlite3_bind_int(st, 2, a->outcome);
	sqlite3_bind_int(st, 3, a->status);
	sqlite3_bind_int(st, 4, a->errclass);
	sqlite3_bind_int64(st, 5, a->started_us);
	sqlite3_bind_int64(st, 6, a->finished_us);
	sqlite3_bind_int64(st, 7, a->next_attempt_us);
	sqlite3_bind_text64(st, 8, err, elen, SQLITE_STATIC, SQLITE_UTF8);
	sqlite3_bind_blob64(st, 9, rlen ? a->response : "", rlen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (int64_t)d->id);
	rc = run(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return req_fail(r, rc, "record an attempt");

	/* Keep the latest attempt_log_max of this delivery. */
	st = s->attempt_trim;
	sqlite3_bind_int64(st, 1, (int64_t)d->id);
	sqlite3_bind_int64(st, 2, s->attempt_log_max);
	rc = run(st);
	if (rc != SQLITE_DONE)
		return req_fail(r, rc, "trim the attempt log");
	return 0;
}

static int apply_hold(store *s, request *r)
{
	for (size_t i = 0; i < r->count; i++) {
		sqlite3_bind_int64(s->hold, 1, s->token);
		sqlite3_bind_int64(s->hold, 2, (int64_t)r->ids[i]);
		int rc = run(s->hold);
		if (rc != SQLITE_DONE)
			return req_fail(r, rc, "claim");
	}
	return 0;
}

/* Shutdown: what this instance holds goes back, one transaction for all. */
static int apply_unhold(store *s, request *r)
{
	for (size_t i = 0; i < r->count; i++) {
		sqlite3_bind_int64(s->unhold, 1, s->token);
		sqlite3_bind_int64(s->unhold, 2, (int64_t)r->ids[i]);
		sqlite3_bind_int64(s->unhold, 3, r->now_us);
		int rc = run(s->unhold);
		if (rc != SQLITE_DONE)
			return req_fail(r, rc, "release");
	}
	return 0;
}

static int apply_requeue(store *s, request *r)
{
	int mask;
	if (query_mask(r->query, &mask)) /* checked by the caller already */
		return FLAGHOOK_EINVAL;
	if (!s->requeue[mask]) {
		char where[160], sql[512];
		where_clause(where, sizeof(where), mask, "created_us", 1);
		snprintf(sql, sizeof(sql),
		         "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_us = ?6, "
		         "holder = NULL, updated_us = ?6 WHERE id IN (SELECT id FROM deliveries "
		         "WHERE state <> 0%s ORDER BY id LIMIT ?5)", where);
		int rc = prepare(s->db, sql, &s->requeue[mask]);
		if (rc != SQLITE_OK)
			return req_fail(r, rc, "requeue");
	}
	sqlite3_stmt *st = s->requeue[mask];
	bind_query(st, r->query);
	sqlite3_bind_int64(st, 6, r->now_us);
	int rc = run(st);
	if (rc != SQLITE_DONE)
		return req_fail(r, rc, "requeue");
	r->changed = (uint64_t)sqlite3_changes64(s->db);
	return 0;
}

static int apply_prune(store *s, request *r)
{
	int64_t before = flaghook__sat_add(r->now_us, -s->prune_after_us);
	sqlite3_bind_int64(s->prune_attempts, 1, before);
	int rc = run(s->prune_attempts);
	if (rc == SQLITE_DONE) {
		sqlite3_bind_int64(s->prune_deliveries, 1, before);
		rc = run(s->prune_deliveries);
	}
	return rc == SQLITE_DONE ? 0 : req_fail(r, rc, "prune");
}

static int apply(store *s, request *r)
{
	switch (r->kind) {
	case REQ_PUT: return apply_put(s, r);
	case REQ_RECORD: return apply_record(s, r);
	case REQ_HOLD: return apply_hold(s, r);
	case REQ_UNHOLD: return apply_unhold(s, r);
	case REQ_REQUEUE: return apply_requeue(s, r);
	case REQ_PRUNE: return apply_prune(s, r);
#ifdef FLAGHOOK_TESTHOOKS
	case REQ_EXEC: {
		int rc = sqlite3_exec(s->db, r->sql, NULL, NULL, NULL);
		return rc == SQLITE_OK ? 0 : req_fail(r, rc, "exec");
	}
#endif
	default: return req_fail(r, SQLITE_MISUSE, "unknown request");
	}
}

/* Every request of the batch still open fails with the same error (the
 * transaction as a whole did not happen). */
static void fail_batch(request *batch, int sqlite_rc, const char *what)
{
	for (request *r = batch; r; r = r->next)
		if (!r->settled)
			r->rc = req_fail(r, sqlite_rc, what);
}

/* The leader's work: one transaction for the whole batch, a savepoint per
 * request.  A request that fails alone is rolled back to its savepoint and
 * the rest commit.  Some errors (a full disk, I/O, no memory) make SQLite
 * roll back the whole transaction instead: the request that caused it is
 * failed and the others run again in a new transaction, so each attempt
 * settles at least one request and the loop ends.  Returns the number of
 * transactions committed. */
static int run_batch(store *s, request *batch)
{
	for (;;) {
		int rc = run(s->begin);
		if (rc != SQLITE_DONE) {
			fail_batch(batch, rc, "begin a transaction");
			return 0;
		}
		request *culprit = NULL;
		for (request *r = batch; r && !culprit; r = r->next) {
			if (r->settled)
				continue;
			if ((rc = run(s->savepoint)) != SQLITE_DONE)
				goto abort;
			r->rc = apply(s, r);
			if (r->rc == 0) {
				if ((rc = run(s->release)) != SQLITE_DONE)
					goto abort;
			} else if (sqlite3_get_autocommit(s->db)) {
				culprit = r; /* the transaction is gone */
			} else {
				r->settled = 1; /* its own failure stands; the rest goes on */
				rc = run(s->rollback_to);
				if (rc == SQLITE_DONE)
					rc = run(s->release);
				if (rc != SQLITE_DONE)
					goto abort;
			}
		}
		if (culprit) {
			culprit->settled = 1;
			for (request *r = batch; r; r = r->next)
				if (!r->settled)
					r->rc = 0;
			continue;
		}
		rc = run(s->commit);
		if (rc == SQLITE_DONE)
			return 1;
		if (!sqlite3_get_autocommit(s->db))
			run(s->rollback);
		fail_batch(batch, rc, "commit");
		return 0;
abort:
		if (!sqlite3_get_autocommit(s->db))
			run(s->rollback);
		fail_batch(batch, rc, "transaction");
		return 0;
	}
}

/* Queues r and returns when a commit has decided it: as the leader of a
 * batch, or after waiting for one.  Reports r's error on this thread. */
static int submit(store *s, request *r)
{
	r->rc = 0;
	r->settled = 0;
	r->done = 0;
	r->detail[0] = '\0';
	r->next = NULL;
	pthread_mutex_lock(&s->q_lock);
	if (s->q_tail)
		s->q_tail->next = r;
	else
		s->q_head = r;
	s->q_tail = r;
	while (!r->done) {
		if (s->committing) {
			pthread_cond_wait(&s->q_cond, &s->q_lock);
			continue;
		}
		/* Lead: take everything queued so far.  While this commits,
		 * other threads queue the next batch. */
		request *batch = s->q_head;
		s->q_head = s->q_tail = NULL;
		s->committing = 1;
		int64_t now = flaghook__now_us();
		request prune = { 0 };
		for (request *q = batch; q; q = q->next) {
			if (q->prune && s->last_prune_us <= now - PRUNE_INTERVAL_US) {
				s->last_prune_us = now;
				prune.kind = REQ_PRUNE;
				prune.now_us = now;
			}
		}
		pthread_mutex_unlock(&s->q_lock);

		request *last = batch;
		while (last->next)
			last = last->next;
		if (prune.kind == REQ_PRUNE)
			last->next = &prune; /* in the same transaction, after the others */
		int committed = run_batch(s, batch);
		last->next = NULL;

		pthread_mutex_lock(&s->q_lock);
		s->commits += (uint64_t)committed;
		s->batches++;
		for (request *q = batch, *next; q; q = next) {
			next = q->next; /* q may be gone once done is set and the lock dropped */
			q->done = 1;
		}
		s->committing = 0;
		pthread_cond_broadcast(&s->q_cond);
	}
	pthread_mutex_unlock(&s->q_lock);
	if (r->rc)
		flaghook_error_set(r->rc, r->detail);
	return r->rc;
}

/* Whether this claim or record should ask for a prune (at most once a
 * minute; run_batch's leader decides for good under the lock). */
static int prune_wanted(store *s)
{
	if (s->prune_after_us < 0)
		return 0;
	pthread_mutex_lock(&s->q_lock);
	int due = s->last_prune_us <= flaghook__now_us() - PRUNE_INTERVAL_US;
	pthread_mutex_unlock(&s->q_lock);
	return due;
}

/* ------------------------------------------------------------------ */
/* The storage functions                                               */

static int sq_put(flaghook_delivery *d, size_t n, void *ud)
{
	store *s = ud;
	if (n == 0)
		return 0;
	if (!d)
		return einval("put: deliveries is NULL");
	for (size_t i = 0; i < n; i++) {
		int rc = flaghook__check_version(d[i].version, FLAGHOOK_DELIVERY_VERSION, "sqlite: flaghook_delivery");
		if (rc)
			return rc;
		if (!d[i].event_id)
			return einval("put: event_id is NULL");
		if (!d[i].body && d[i].body_len)
			return einval("put: body is NULL");
	}
	request r = { .kind = REQ_PUT, .put = d, .count = n, .now_us = flaghook__now_us() };
	int rc = submit(s, &r);
	for (size_t i = 0; i < n; i++) {
		if (rc)
			d[i].id = 0; /* nothing was stored */
		d[i].claimed = rc == 0;
	}
	return rc;
}

typedef struct taken_ids {
	uint64_t *ids;
	size_t count, cap;
} taken_ids;

/* A deliveries row (the columns every SELECT of them lists, in order) as
 * the table hands it out; its pointers live until the next step. */
static void row_to_delivery(sqlite3_stmt *st, flaghook_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->version = FLAGHOOK_DELIVERY_VERSION;
	d->id = (uint64_t)sqlite3_column_int64(st, 0);
	d->event_id = (const char *)sqlite3_column_text(st, 1);
	d->event_type = sqlite3_column_int(st, 2);
	d->endpoint_id = (uint64_t)sqlite3_column_int64(st, 3);
	d->body = sqlite3_column_blob(st, 4);
	d->body_len = (size_t)sqlite3_column_bytes(st, 4);
	if (!d->body)
		d->body = ""; /* SQLite returns NULL for an empty blob */
	if (!d->event_id)
		d->event_id = "";
	d->attempts = sqlite3_column_int(st, 5);
	d->created_us = sqlite3_column_int64(st, 6);
	d->next_attempt_us = sqlite3_column_int64(st, 7);
	d->fifo = sqlite3_column_int(st, 8);
	d->state = sqlite3_column_int(st, 9);
	d->last_status = sqlite3_column_int(st, 10);
	d->updated_us = sqlite3_column_int64(st, 11);
}

static int sq_claim(int64_t now, int64_t horizon_us, size_t max,
                    int (*take)(const flaghook_delivery *d, void *arg), void *arg, void *ud)
{
	store *s = ud;
	if (!take)
		return einval("claim: take is NULL");
	int want_prune = prune_wanted(s);
	if (max == 0 && !want_prune)
		return 0;

	pthread_mutex_lock(&s->claim_lock);
	reader *rd = NULL;
	taken_ids t = { 0 };
	int rc = reader_get(s, &rd);
	if (rc)
		goto out;
	if (!rd->claim) {
		int src = prepare(rd->db,
		                  "SELECT " DELIVERY_COLUMNS " FROM deliveries AS d"
		                  " WHERE state = 0 AND next_attempt_us <= ?1 AND id > ?2"
		                  " AND (holder IS NULL OR holder <> ?3)"
		                  " AND (fifo = 0 OR NOT EXISTS (SELECT 1 FROM deliveries AS o"
		                  "  WHERE o.endpoint_id = d.endpoint_id AND o.state = 0 AND o.id < d.id))"
		                  " ORDER BY id LIMIT ?4",
		                  &rd->claim);
		if (src != SQLITE_OK) {
			rc = report(src, "claim");
			goto out;
		}
	}
	sqlite3_stmt *st = rd->claim;
	int64_t after = 0;
	int stop = 0;
	/* A page at a time: LIMIT keeps SQLite's sort to the top rows however
	 * large the backlog, and take() may leave rows, so more may follow. */
	while (!stop && t.count < max) {
		sqlite3_bind_int64(st, 1, flaghook__sat_add(now, horizon_us));
		sqlite3_bind_int64(st, 2, after);
		sqlite3_bind_int64(st, 3, s->token);
		sqlite3_bind_int(st, 4, CLAIM_PAGE);
		int rows = 0, src;
		while (!stop && (src = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			flaghook_delivery d;
			row_to_delivery(st, &d);
			after = (int64_t)d.id;
			int verdict = take(&d, arg);
			if (verdict < 0) {
				stop = 1;
			} else if (verdict == 0) {
				if (t.count == t.cap) {
					size_t cap = t.cap ? t.cap * 2 : 16;
					uint64_t *ids = mem_alloc(s, cap * sizeof(*ids));
					if (!ids) {
						sqlite3_reset(st);
						rc = flaghook_error_set(FLAGHOOK_ENOMEM, "sqlite: out of memory: claim");
						goto out;
					}
					if (t.count)
						memcpy(ids, t.ids, t.count * sizeof(*ids));
					mem_free(s, t.ids);
					t.ids = ids;
					t.cap = cap;
				}
				t.ids[t.count++] = d.id;
				if (t.count == max)
					stop = 1;
			}
		}
		if (!stop && src != SQLITE_DONE) {
			sqlite3_reset(st);
			rc = report(src, "claim");
			goto out;
		}
		sqlite3_reset(st);
		if (rows < CLAIM_PAGE)
			break;
	}
	reader_put(s, rd);
	rd = NULL;
	if (t.count || want_prune) {
		request r = { .kind = REQ_HOLD, .ids = t.ids, .count = t.count,
		              .prune = want_prune, .now_us = flaghook__now_us() };
		rc = submit(s, &r);
	}
out:
	if (rd)
		reader_put(s, rd);
	mem_free(s, t.ids);
	pthread_mutex_unlock(&s->claim_lock);
	return rc;
}

static int sq_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	store *s = ud;
	if (!d || !a)
		return einval(!d ? "record: delivery is NULL" : "record: attempt is NULL");
	int rc = flaghook__check_version(d->version, FLAGHOOK_DELIVERY_VERSION, "sqlite: flaghook_delivery");
	if (!rc)
		rc = flaghook__check_version(a->version, FLAGHOOK_ATTEMPT_VERSION, "sqlite: flaghook_attempt");
	if (rc)
		return rc;
	if (a->outcome < FLAGHOOK_OUTCOME_DELIVERED || a->outcome > FLAGHOOK_OUTCOME_RELEASED)
		return einval("record: outcome is not a FLAGHOOK_OUTCOME_*");
	request r = { .kind = REQ_RECORD, .delivery = d, .attempt = a, .now_us = flaghook__now_us(),
	              .prune = prune_wanted(s) };
	return submit(s, &r);
}

static int sq_requeue(const flaghook_query *q, uint64_t *count, void *ud)
{
	store *s = ud;
	int mask;
	int rc = query_mask(q, &mask);
	if (rc)
		return rc;
	request r = { .kind = REQ_REQUEUE, .query = q, .now_us = flaghook__now_us() };
	rc = submit(s, &r);
	if (count)
		*count = rc ? 0 : r.changed;
	return rc;
}

/* Prepares (once per connection) the list or attempts statement for mask. */
static int reader_stmt(reader *rd, int deliveries, int mask, sqlite3_stmt **out)
{
	sqlite3_stmt **slot = deliveries ? &rd->list[mask] : &rd->attempts[mask];
	if (!*slot) {
		char where[160], sql[512];
		if (deliveries) {
			where_clause(where, sizeof(where), mask, "created_us", 1);
			snprintf(sql, sizeof(sql),
			         "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE 1%s ORDER BY id LIMIT ?5",
			         where);
		} else {
			/* q->state does not apply to attempts */
			where_clause(where, sizeof(where), mask & ~Q_STATE, "started_us", 0);
			snprintf(sql, sizeof(sql),
			         "SELECT delivery_id, endpoint_id, event_id, number, outcome, status, "
			         "errclass, started_us, finished_us, next_attempt_us, error, response "
			         "FROM attempts WHERE 1%s ORDER BY started_us, seq LIMIT ?5",
			         where);
		}
		int rc = prepare(rd->db, sql, slot);
		if (rc != SQLITE_OK)
			return rc;
	}
	*out = *slot;
	return SQLITE_OK;
}

static int sq_list(const flaghook_query *q, int (*each)(const flaghook_delivery *d, void *arg),
                   void *arg, void *ud)
{
	store *s = ud;
	int mask;
	int rc = query_mask(q, &mask);
	if (rc)
		return rc;
	if (!each)
		return einval("list: each is NULL");
	reader *rd;
	if ((rc = reader_get(s, &rd)))
		return rc;
	sqlite3_stmt *st;
	int src = reader_stmt(rd, 1, mask, &st);
	if (src == SQLITE_OK) {
		bind_query(st, q);
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			flaghook_delivery d;
			row_to_delivery(st, &d);
			if (each(&d, arg)) {
				src = SQLITE_DONE;
				break;
			}
		}
		sqlite3_reset(st);
	}
	reader_put(s, rd);
	return src == SQLITE_DONE ? 0 : report(src, "list");
}

static int sq_attempts(const flaghook_query *q, int (*each)(const flaghook_attempt *a, void *arg),
                       void *arg, void *ud)
{
	store *s = ud;
	int mask;
	int rc = query_mask(q, &mask);
	if (rc)
		return rc;
	if (!each)
		return einval("attempts: each is NULL");
	reader *rd;
	if ((rc = reader_get(s, &rd)))
		return rc;
	sqlite3_stmt *st;
	int src = reader_stmt(rd, 0, mask & ~Q_STATE, &st);
	if (src == SQLITE_OK) {
		bind_query(st, q);
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			flaghook_attempt a;
			memset(&a, 0, sizeof(a));
			a.version = FLAGHOOK_ATTEMPT_VERSION;
			a.delivery_id = (uint64_t)sqlite3_column_int64(st, 0);
			a.endpoint_id = (uint64_t)sqlite3_column_int64(st, 1);
			a.event_id = (const char *)sqlite3_column_text(st, 2);
			a.number = sqlite3_column_int(st, 3);
			a.outcome = sqlite3_column_int(st, 4);
			a.status = sqlite3_column_int(st, 5);
			a.errclass = sqlite3_column_int(st, 6);
			a.started_us = sqlite3_column_int64(st, 7);
			a.finished_us = sqlite3_column_int64(st, 8);
			a.next_attempt_us = sqlite3_column_int64(st, 9);
			a.error = (const char *)sqlite3_column_text(st, 10);
			a.response = sqlite3_column_blob(st, 11);
			a.response_len = (size_t)sqlite3_column_bytes(st, 11);
			if (!a.event_id)
				a.event_id = "";
			if (!a.error)
				a.error = "";
			if (!a.response)
				a.response = "";
			if (each(&a, arg)) {
				src = SQLITE_DONE;
				break;
			}
		}
		sqlite3_reset(st);
	}
	reader_put(s, rd);
	return src == SQLITE_DONE ? 0 : report(src, "attempts");
}

static int sq_pending(uint64_t *count, void *ud)
{
	store *s = ud;
	if (!count)
		return einval("pending: count is NULL");
	reader *rd;
	int rc = reader_get(s, &rd);
	if (rc)
		return rc;
	int src = SQLITE_OK;
	if (!rd->pending)
		src = prepare(rd->db, "SELECT count(*) FROM deliveries WHERE state = 0", &rd->pending);
	if (src == SQLITE_OK) {
		src = sqlite3_step(rd->pending);
		if (src == SQLITE_ROW)
			*count = (uint64_t)sqlite3_column_int64(rd->pending, 0);
		sqlite3_reset(rd->pending);
	}
	reader_put(s, rd);
	return src == SQLITE_ROW ? 0 : report(src, "pending");
}

static int sq_release(const uint64_t *ids, size_t n, void *ud)
{
	store *s = ud;
	if (!ids && n)
		return einval("release: ids is NULL");
	if (!n)
		return 0;
	request r = { .kind = REQ_UNHOLD, .ids = ids, .count = n, .now_us = flaghook__now_us() };
	return submit(s, &r);
}

static void sq_destroy(void *ud)
{
	store *s = ud;
	if (!s)
		return;
	while (s->idle) {
		reader *r = s->idle;
		s->idle = r->next;
		reader_close(r);
		mem_free(s, r);
	}
	sqlite3_stmt *stmts[] = { s->begin, s->commit, s->rollback, s->savepoint, s->release,
	                          s->rollback_to, s->insert, s->record, s->attempt_insert,
	                          s->attempt_trim, s->hold, s->unhold, s->prune_attempts,
	                          s->prune_deliveries };
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
		sqlite3_finalize(stmts[i]);
	for (int i = 0; i < Q_VARIANTS; i++)
		sqlite3_finalize(s->requeue[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->q_lock);
	pthread_cond_destroy(&s->q_cond);
	pthread_mutex_destroy(&s->claim_lock);
	pthread_mutex_destroy(&s->pool_lock);
	mem_free(s, s->path);
	mem_free(s, s);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

static int user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int newer_schema(int version)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "sqlite: schema version %d is newer than this library (%d)",
	         version, FLAGHOOK_SQLITE_SCHEMA_VERSION);
	return flaghook_error_set(FLAGHOOK_ESTORAGE, msg);
}

/* Brings the schema to FLAGHOOK_SQLITE_SCHEMA_VERSION in one transaction,
 * so a crash mid-way leaves the file as it was. */
static int migrate(sqlite3 *db)
{
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return report(rc, "begin the schema migration");
	int version = 0;
	rc = user_version(db, &version);
	if (rc != SQLITE_OK) {
		rc = report(rc, "read the schema version");
		goto fail;
	}
	if (version > FLAGHOOK_SQLITE_SCHEMA_VERSION || version < 0) {
		rc = newer_schema(version);
		goto fail;
	}
	for (int v = version; v < FLAGHOOK_SQLITE_SCHEMA_VERSION; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		int src = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
		if (src == SQLITE_OK)
			src = sqlite3_exec(db, pragma, NULL, NULL, NULL);
		if (src != SQLITE_OK) {
			char what[64];
			snprintf(what, sizeof(what), "migrate the schema to version %d", v + 1);
			rc = report(src, what);
			goto fail;
		}
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = report(rc, "commit the schema migration");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int setup_writer(store *s)
{
	int rc = create_file(s);
	if (!rc)
		rc = open_connection(s, 1, &s->db);
	if (rc)
		return rc;
	/* Refuse a newer schema before changing anything in the file. */
	int version = 0;
	int src = user_version(s->db, &version);
	if (src != SQLITE_OK)
		return report(src, "read the schema version");
	if (version > FLAGHOOK_SQLITE_SCHEMA_VERSION)
		return newer_schema(version);

	sqlite3_stmt *st;
	char mode[16] = "";
	src = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (src == SQLITE_OK) {
		src = sqlite3_step(st);
		if (src == SQLITE_ROW) {
			const char *m = (const char *)sqlite3_column_text(st, 0);
			snprintf(mode, sizeof(mode), "%s", m ? m : "");
			src = SQLITE_OK;
		}
		sqlite3_finalize(st);
	}
	if (src != SQLITE_OK)
		return report(src, "switch to WAL mode");
	if (strcmp(mode, "wal") != 0) {
		/* e.g. ":memory:", or a file system without shared memory */
		char msg[128];
		snprintf(msg, sizeof(msg), "sqlite: this database cannot use WAL mode (journal mode "
		         "stays '%s')", mode);
		return flaghook_error_set(FLAGHOOK_ESTORAGE, msg);
	}
	src = sqlite3_exec(s->db,
	                   s->synchronous == FLAGHOOK_SQLITE_SYNC_NORMAL
	                       ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	                   NULL, NULL, NULL);
	/* The WAL file is reused after a checkpoint; cap what it keeps. */
	if (src == SQLITE_OK)
		src = sqlite3_exec(s->db, "PRAGMA journal_size_limit = 67108864", NULL, NULL, NULL);
	if (src != SQLITE_OK)
		return report(src, "configure the database");
	if ((rc = migrate(s->db)))
		return rc;

	struct { sqlite3_stmt **st; const char *sql; } stmts[] = {
		{ &s->begin, "BEGIN IMMEDIATE" },
		{ &s->commit, "COMMIT" },
		{ &s->rollback, "ROLLBACK" },
		{ &s->savepoint, "SAVEPOINT request" },
		{ &s->release, "RELEASE request" },
		{ &s->rollback_to, "ROLLBACK TO request" },
		{ &s->insert,
		  "INSERT INTO deliveries (event_id, event_type, endpoint_id, body, attempts, created_us,"
		  " next_attempt_us, fifo, state, last_status, updated_us, holder)"
		  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, ?9, ?10)" },
		/* ?2 > 0: an attempt was made; ?4 NULL: next_attempt unchanged;
		 * ?6: held by ?5, else by nobody. */
		{ &s->record,
		  "UPDATE deliveries SET state = ?1,"
		  " attempts = CASE WHEN ?2 > 0 THEN ?2 ELSE attempts END,"
		  " last_status = CASE WHEN ?2 > 0 THEN ?3 ELSE last_status END,"
		  " next_attempt_us = coalesce(?4, next_attempt_us),"
		  " holder = CASE WHEN ?6 THEN ?5 ELSE NULL END, updated_us = ?7 WHERE id = ?8" },
		{ &s->attempt_insert,
		  "INSERT INTO attempts (delivery_id, endpoint_id, event_id, number, outcome, status,"
		  " errclass, started_us, finished_us, next_attempt_us, error, response)"
		  " SELECT id, endpoint_id, event_id, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9"
		  " FROM deliveries WHERE id = ?10" },
		{ &s->attempt_trim,
		  "DELETE FROM attempts WHERE delivery_id = ?1 AND seq <= (SELECT seq FROM attempts"
		  " WHERE delivery_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)" },
		{ &s->hold, "UPDATE deliveries SET holder = ?1 WHERE id = ?2 AND state = 0" },
		{ &s->unhold,
		  "UPDATE deliveries SET holder = NULL, updated_us = ?3"
		  " WHERE id = ?2 AND state = 0 AND holder = ?1" },
		{ &s->prune_attempts,
		  "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries"
		  " WHERE state = 1 AND updated_us < ?1)" },
		{ &s->prune_deliveries, "DELETE FROM deliveries WHERE state = 1 AND updated_us < ?1" },
	};
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		src = prepare(s->db, stmts[i].sql, stmts[i].st);
		if (src != SQLITE_OK)
			return report(src, "prepare a statement");
	}
	return 0;
}

FLAGHOOK_EXTERN int flaghook_sqlite_options_init(flaghook_sqlite_options *opts,
                                                 unsigned int version)
{
	return flaghook__struct_init(opts, version, options_sizes, FH_COUNT(options_sizes),
	                             "sqlite: flaghook_sqlite_options");
}

FLAGHOOK_EXTERN int flaghook_sqlite_open(flaghook_storage *out,
                                         const flaghook_sqlite_options *caller_opts)
{
	if (!out || !caller_opts)
		return einval(!out ? "flaghook_sqlite_open: out is NULL"
		                   : "flaghook_sqlite_open: options are NULL");
	/* The caller's options at its version, widened to ours. */
	flaghook_sqlite_options copy;
	int rc = flaghook__struct_read(&copy, caller_opts, options_sizes, FH_COUNT(options_sizes),
	                               "sqlite: flaghook_sqlite_options");
	if (rc)
		return rc;
	const flaghook_sqlite_options *opts = &copy;
	if (opts->file_mode & ~0777)
		return einval("options.file_mode has bits beyond 0777");
	if (!opts->path || !opts->path[0])
		return einval("options.path is not set");
	if (opts->synchronous != FLAGHOOK_SQLITE_SYNC_FULL &&
	    opts->synchronous != FLAGHOOK_SQLITE_SYNC_NORMAL)
		return einval("options.synchronous is not a FLAGHOOK_SQLITE_SYNC_*");
	if (opts->busy_timeout_ms < 0 || opts->attempt_log_max < 0)
		return einval("options.busy_timeout_ms and attempt_log_max may not be negative");
	if (opts->allocator && (!opts->allocator->malloc || !opts->allocator->free))
		return einval("options.allocator needs malloc and free");

	flaghook_allocator alloc = FLAGHOOK_ALLOCATOR_INIT;
	if (opts->allocator)
		alloc = *opts->allocator;
	store *s = alloc.malloc ? alloc.malloc(sizeof(*s), alloc.user_data) : malloc(sizeof(*s));
	if (!s)
		return flaghook_error_set(FLAGHOOK_ENOMEM, "sqlite: out of memory");
	memset(s, 0, sizeof(*s));
	s->alloc = alloc;
	s->synchronous = opts->synchronous;
	s->file_mode = opts->file_mode ? (mode_t)opts->file_mode : DEFAULT_FILE_MODE;
	s->busy_timeout_ms = opts->busy_timeout_ms == 0 ? DEFAULT_BUSY_TIMEOUT_MS
	                     : opts->busy_timeout_ms > INT_MAX ? INT_MAX : (int)opts->busy_timeout_ms;
	int64_t prune_ms = opts->prune_after_ms == 0 ? DEFAULT_PRUNE_AFTER_MS : opts->prune_after_ms;
	s->prune_after_us = prune_ms < 0 ? -1 : prune_ms > INT64_MAX / 1000 ? INT64_MAX : prune_ms * 1000;
	s->attempt_log_max = opts->attempt_log_max ? opts->attempt_log_max : DEFAULT_ATTEMPT_LOG_MAX;
	s->response_max = opts->response_max ? opts->response_max : DEFAULT_RESPONSE_MAX;
	s->token = make_token(s);
	pthread_mutex_init(&s->q_lock, NULL);
	pthread_cond_init(&s->q_cond, NULL);
	pthread_mutex_init(&s->claim_lock, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);

	size_t plen = strlen(opts->path) + 1;
	s->path = mem_alloc(s, plen);
	if (!s->path) {
		rc = flaghook_error_set(FLAGHOOK_ENOMEM, "sqlite: out of memory");
		goto fail;
	}
	memcpy(s->path, opts->path, plen);
	if ((rc = setup_writer(s)))
		goto fail;
	/* One read connection now: a file readers cannot open fails here,
	 * not at the first list. */
	reader *rd;
	if ((rc = reader_get(s, &rd)))
		goto fail;
	reader_put(s, rd);

	out->version = FLAGHOOK_STORAGE_VERSION;
	out->flags = FLAGHOOK_STORAGE_DURABLE;
	out->put = sq_put;
	out->claim = sq_claim;
	out->record = sq_record;
	out->list = sq_list;
	out->attempts = sq_attempts;
	out->requeue = sq_requeue;
	out->pending = sq_pending;
	out->release = sq_release;
	out->destroy = sq_destroy;
	out->user_data = s;
	return 0;
fail:
	sq_destroy(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Test hooks: compiled only into the tests' own copy of the store      */
/* (-DFLAGHOOK_TESTHOOKS); no installed library has them.               */

#ifdef FLAGHOOK_TESTHOOKS

uint64_t flaghook__sqlite_commits(void *user_data)
{
	store *s = user_data;
	pthread_mutex_lock(&s->q_lock);
	uint64_t n = s->commits;
	pthread_mutex_unlock(&s->q_lock);
	return n;
}

uint64_t flaghook__sqlite_batches(void *user_data)
{
	store *s = user_data;
	pthread_mutex_lock(&s->q_lock);
	uint64_t n = s->batches;
	pthread_mutex_unlock(&s->q_lock);
	return n;
}

int flaghook__sqlite_exec(void *user_data, const char *sql)
{
	request r = { .kind = REQ_EXEC, .sql = sql, .now_us = flaghook__now_us() };
	return submit(user_data, &r);
}
#endif /* FLAGHOOK_TESTHOOKS */
