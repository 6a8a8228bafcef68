/*
 * libflaghook-pg: the outbox in PostgreSQL, shared by several processes.
 *
 * The semantics are those of notes/store-contract.md for a shared store.
 * How they are kept here:
 *
 *  - Who works a delivery: the row's holder (this store's owner name) and
 *    lease_until_us.  Leases are compared against the database's clock, not
 *    the caller's: processes on several machines must agree on when a lease
 *    ran out, and the server is the one clock they all see.  Every other
 *    time (created, next attempt, updated) is the caller's wall clock, as
 *    the contract says.
 *  - claim takes candidates with SELECT ... FOR UPDATE SKIP LOCKED inside
 *    one transaction, so two processes never take the same row.  A FIFO row
 *    is a candidate only when no pending row of its endpoint has a smaller
 *    id; for that test to mean "nothing older is pending", ids of an
 *    endpoint's FIFO rows must become visible in id order.  put therefore
 *    takes a transaction-scoped advisory lock per FIFO endpoint before it
 *    inserts: a put that got a smaller id has committed before the next one
 *    can draw its id, so no snapshot ever sees id n+1 of an endpoint without
 *    id n.  (Without it, under READ COMMITTED, a claim could see a later
 *    put's row while an earlier put's row was still uncommitted, hand the
 *    later one out, and then hand the earlier one out too.)
 *  - record changes a row only while this owner holds it (UPDATE ... WHERE
 *    holder = owner), so a process whose lease ran out learns it with
 *    FLAGHOOK_ESTATE instead of overwriting the new holder's work.
 *  - A small pool of connections lets threads put at once.  A command that
 *    fails on a broken connection is retried once on a new connection when
 *    nothing can have taken effect (no COMMIT sent, no take()/each()
 *    called); otherwise the caller gets FLAGHOOK_ESTORAGE.
 *  - Error details quote libpq's first line with any password cut out; the
 *    connection string is never quoted.
 *
 * SPDX-License-Identifier: MIT
 */
#include "flaghook_pg.h"
#include "util/clock.h"
#include "util/alloc.h"
#include "util/version.h"

#include <libpq-fe.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SCHEMA       "flaghook"
#define DEFAULT_LEASE_MS     30000
#define DEFAULT_CONNECTIONS  4
#define MAX_CONNECTIONS      256
#define DEFAULT_PRUNE_MS     (7LL * 24 * 3600 * 1000)
#define DEFAULT_LOG_MAX      20
#define DEFAULT_RESPONSE_MAX 1024
#define DEFAULT_CONNECT_MS   5000
#define PRUNE_EVERY_US       (60LL * 1000000)
#define PRUNE_BATCH          5000   /* rows per DELETE: no long lock on a big backlog */
#define CLAIM_BATCH          1000   /* candidate rows fetched per round trip */
#define LIST_BATCH           256    /* rows per round trip of list and attempts */
#define NAME_MAX_BYTES       63     /* PostgreSQL's NAMEDATALEN - 1: longer is cut silently */
#define DETAIL_MAX           480

/* The database's wall clock in microseconds (see the top: leases only). */
#define NOW_DB "((extract(epoch FROM statement_timestamp()) * 1000000)::int8)"

/* ---- SQL ----------------------------------------------------------------
 * "{s}" stands for the quoted schema name.  Integer parameters go as text,
 * bytea as binary; results come back binary (see col_int). */

#define DELIVERY_COLS \
	"id, event_id, event_type, endpoint_id, body, attempts, created_us, " \
	"next_attempt_us, fifo, state, last_status, updated_us"
enum { C_ID, C_EVENT_ID, C_EVENT_TYPE, C_ENDPOINT, C_BODY, C_ATTEMPTS, C_CREATED, C_NEXT,
       C_FIFO, C_STATE, C_LAST_STATUS, C_UPDATED };

#define ATTEMPT_COLS \
	"seq, delivery_id, endpoint_id, event_id, number, outcome, status, errclass, " \
	"started_us, finished_us, next_attempt_us, error, response"
enum { A_SEQ, A_DELIVERY, A_ENDPOINT, A_EVENT_ID, A_NUMBER, A_OUTCOME, A_STATUS, A_ERRCLASS,
       A_STARTED, A_FINISHED, A_NEXT, A_ERROR, A_RESPONSE };

/* Migrations, in order: entry v-1 takes the schema from version v-1 to v. */
static const char *const migrations[FLAGHOOK_PG_SCHEMA_VERSION] = {
	/* 1 */
	"CREATE TABLE {s}.deliveries ("
	" id bigserial PRIMARY KEY,"            /* a sequence: increasing, never reused */
	" event_id text NOT NULL,"
	" event_type int4 NOT NULL,"
	" endpoint_id int8 NOT NULL,"           /* the uint64 id's two's complement */
	" body bytea NOT NULL,"
	" attempts int4 NOT NULL,"
	" created_us int8 NOT NULL,"
	" next_attempt_us int8 NOT NULL,"
	" fifo int4 NOT NULL,"
	" state int4 NOT NULL DEFAULT 0,"       /* 0 pending, 1 delivered, 2 dead */
	" last_status int4 NOT NULL DEFAULT 0,"
	" updated_us int8 NOT NULL,"
	" holder text,"                         /* owner name; NULL: nobody */
	" lease_until_us int8);"                /* database clock */
	/* The FIFO test ("an older pending row of this endpoint?") and claim's scan. */
	"CREATE INDEX deliveries_pending ON {s}.deliveries (endpoint_id, id) WHERE state = 0;"
	/* Claim's candidates: the unheld, and the held whose lease ran out,
	 * without walking the rows live owners hold. */
	"CREATE INDEX deliveries_unheld ON {s}.deliveries (id) WHERE state = 0 AND holder IS NULL;"
	"CREATE INDEX deliveries_lease ON {s}.deliveries (lease_until_us) WHERE state = 0 AND holder IS NOT NULL;"
	/* Lease renewal touches only this owner's rows. */
	"CREATE INDEX deliveries_holder ON {s}.deliveries (holder) WHERE state = 0;"
	"CREATE INDEX deliveries_delivered ON {s}.deliveries (updated_us) WHERE state = 1;"
	"CREATE INDEX deliveries_created ON {s}.deliveries (created_us);"
	"CREATE TABLE {s}.attempts ("
	" seq bigserial PRIMARY KEY,"           /* insertion order */
	" delivery_id int8 NOT NULL REFERENCES {s}.deliveries (id) ON DELETE CASCADE,"
	" endpoint_id int8 NOT NULL,"
	" event_id text NOT NULL,"
	" number int4 NOT NULL,"
	" outcome int4 NOT NULL,"
	" status int4 NOT NULL,"
	" errclass int4 NOT NULL,"
	" started_us int8 NOT NULL,"
	" finished_us int8 NOT NULL,"
	" next_attempt_us int8 NOT NULL,"
	" error text NOT NULL,"
	" response bytea NOT NULL,"
	" owner text NOT NULL);"                /* which process made it */
	"CREATE INDEX attempts_delivery ON {s}.attempts (delivery_id, seq);"
	"CREATE INDEX attempts_started ON {s}.attempts (started_us, seq);"
	"CREATE INDEX attempts_endpoint ON {s}.attempts (endpoint_id, started_us);",
};

enum {
	S_LOCK, S_PUT, S_RENEW, S_CANDIDATES, S_TAKE, S_RECORD, S_WHO, S_LOG, S_TRIM,
	S_PENDING, S_PRUNE, S_RELEASE,
	S_PREPARED,     /* the ones above are prepared on every connection */
	S_LIST = S_PREPARED, S_ATTEMPTS, S_REQUEUE,
	S_COUNT
};

/* List, attempts and requeue filter on optional values ("$n IS NULL OR
 * ..."); they go through PQexecParams so each call is planned with its
 * values and the unused filters fold away. */
static const char *const stmt_sql[S_COUNT] = {
	[S_LOCK] = "SELECT pg_advisory_xact_lock($1::int8)",
	[S_PUT] =
	"INSERT INTO {s}.deliveries (event_id, event_type, endpoint_id, body, attempts, created_us,"
	" next_attempt_us, fifo, updated_us, holder, lease_until_us)"
	" VALUES ($1::text, $2::int4, $3::int8, $4::bytea, $5::int4, $6::int8, $7::int8, $8::int4,"
	" $9::int8, $10::text, CASE WHEN $10::text IS NULL THEN NULL ELSE " NOW_DB " + $11::int8 END)"
	" RETURNING id",
	/* Only leases past half their time: a process that holds many rows
	 * (retries hours apart) would otherwise rewrite all of them at every
	 * poll.  What is skipped still has half a lease left, far more than the
	 * time to the next claim. */
	[S_RENEW] =
	"UPDATE {s}.deliveries SET lease_until_us = " NOW_DB " + $2::int8"
	" WHERE holder = $1::text AND state = 0 AND lease_until_us < " NOW_DB " + $2::int8 / 2",
	/* The IN list finds the candidates through the two partial indexes:
	 * without it the planner walks every pending row in id order, and
	 * with retries hours apart most of those are held by live owners.
	 * The outer conditions repeat the whole test, so a row that changed
	 * before it could be locked is checked again on its latest version. */
	[S_CANDIDATES] =
	"SELECT " DELIVERY_COLS " FROM {s}.deliveries d"
	" WHERE d.id IN (SELECT id FROM {s}.deliveries WHERE state = 0 AND holder IS NULL AND id > $2::int8"
	"  UNION ALL SELECT id FROM {s}.deliveries WHERE state = 0 AND holder IS NOT NULL"
	"  AND lease_until_us < " NOW_DB " AND id > $2::int8)"
	" AND state = 0 AND (holder IS NULL OR lease_until_us < " NOW_DB ")"
	" AND next_attempt_us <= $1::int8 AND id > $2::int8"
	" AND (fifo = 0 OR NOT EXISTS (SELECT 1 FROM {s}.deliveries o"
	"  WHERE o.endpoint_id = d.endpoint_id AND o.state = 0 AND o.id < d.id))"
	" ORDER BY id LIMIT $3::int8 FOR UPDATE OF d SKIP LOCKED",
	[S_TAKE] =
	"UPDATE {s}.deliveries SET holder = $1::text, lease_until_us = " NOW_DB " + $2::int8"
	" WHERE id = ANY ($3::int8[])",
	/* $4: 1 keeps it held (RETRY) and renews the lease; 0 lets it go. */
	[S_RECORD] =
	"UPDATE {s}.deliveries SET state = $3::int4,"
	" holder = CASE WHEN $4::int4 = 1 THEN holder END,"
	" lease_until_us = CASE WHEN $4::int4 = 1 THEN " NOW_DB " + $5::int8 END,"
	" next_attempt_us = coalesce($6::int8, next_attempt_us),"
	" attempts = coalesce($7::int4, attempts),"
	" last_status = coalesce($8::int4, last_status),"
	" updated_us = $9::int8"
	" WHERE id = $1::int8 AND holder = $2::text RETURNING id",
	[S_WHO] = "SELECT holder FROM {s}.deliveries WHERE id = $1::int8",
	/* Endpoint and event come from the row itself: the caller's copies are
	 * informational. */
	[S_LOG] =
	"INSERT INTO {s}.attempts (delivery_id, endpoint_id, event_id, number, outcome, status,"
	" errclass, started_us, finished_us, next_attempt_us, error, response, owner)"
	" SELECT id, endpoint_id, event_id, $2::int4, $3::int4, $4::int4, $5::int4, $6::int8,"
	" $7::int8, $8::int8, $9::text, $10::bytea, $11::text FROM {s}.deliveries WHERE id = $1::int8",
	[S_TRIM] =
	"DELETE FROM {s}.attempts WHERE delivery_id = $1::int8 AND seq <= (SELECT seq FROM {s}.attempts"
	" WHERE delivery_id = $1::int8 ORDER BY seq DESC OFFSET $2::int8 LIMIT 1)",
	[S_PENDING] = "SELECT count(*) FROM {s}.deliveries WHERE state = 0",
	/* Shutdown: this owner's deliveries go back at once, not when the
	 * lease runs out. */
	[S_RELEASE] =
	"UPDATE {s}.deliveries SET holder = NULL, lease_until_us = NULL, updated_us = $1::int8"
	" WHERE id = ANY ($2::int8[]) AND holder = $3::text AND state = 0",
	[S_PRUNE] =
	"DELETE FROM {s}.deliveries WHERE id IN (SELECT id FROM {s}.deliveries"
	" WHERE state = 1 AND updated_us < $1::int8 ORDER BY updated_us LIMIT $2::int8)",
	[S_LIST] =
	"SELECT " DELIVERY_COLS " FROM {s}.deliveries WHERE id > $1::int8"
	" AND ($2::int4 IS NULL OR state = $2::int4)"
	" AND ($3::int8 IS NULL OR id = $3::int8)"
	" AND ($4::int8 IS NULL OR endpoint_id = $4::int8)"
	" AND ($5::int8 IS NULL OR created_us >= $5::int8)"
	" ORDER BY id LIMIT $6::int8",
	[S_ATTEMPTS] =
	"SELECT " ATTEMPT_COLS " FROM {s}.attempts WHERE (started_us, seq) > ($1::int8, $2::int8)"
	" AND ($3::int8 IS NULL OR delivery_id = $3::int8)"
	" AND ($4::int8 IS NULL OR endpoint_id = $4::int8)"
	" AND ($5::int8 IS NULL OR started_us >= $5::int8)"
	" ORDER BY started_us, seq LIMIT $6::int8",
	/* The outer "state <> 0" is checked again on the row's latest version
	 * (READ COMMITTED), so a row delivered meanwhile is not touched twice. */
	[S_REQUEUE] =
	"UPDATE {s}.deliveries SET state = 0, attempts = 0, next_attempt_us = $1::int8,"
	" holder = NULL, lease_until_us = NULL, updated_us = $1::int8"
	" WHERE state <> 0 AND id IN (SELECT id FROM {s}.deliveries WHERE state <> 0"
	" AND ($2::int4 IS NULL OR state = $2::int4)"
	" AND ($3::int8 IS NULL OR id = $3::int8)"
	" AND ($4::int8 IS NULL OR endpoint_id = $4::int8)"
	" AND ($5::int8 IS NULL OR created_us >= $5::int8)"
	" ORDER BY id LIMIT $6::int8)",
};

/* ---- the store ---------------------------------------------------------- */

typedef struct pg_slot {
	PGconn *conn;               /* NULL: connect at next use */
	int busy;                   /* under pg_store.lock */
} pg_slot;

typedef struct pg_store {
	flaghook_allocator al;      /* a copy; .malloc NULL: libc */
	char *conninfo;             /* wiped before it is freed */
	char *secrets[2];           /* passwords to cut out of messages; wiped */
	char *schema;               /* as given */
	char *owner;
	char *app_name;             /* fallback_application_name: shows the owner in pg_stat_activity */
	char *sql[S_COUNT];         /* stmt_sql with the schema filled in */
	int64_t migrate_key;        /* advisory lock of the migrations */
	int64_t fifo_key;           /* mixed with an endpoint id for put's FIFO lock */
	int64_t lease_us, prune_after_us;
	int64_t log_max;
	size_t response_max;
	char connect_timeout[24];   /* seconds, for libpq */

	pthread_mutex_t lock;       /* slots[].busy, free_slots, next_prune_us */
	pthread_cond_t slot_freed;
	pg_slot *slots;
	int nslots, free_slots;
	int64_t next_prune_us;
	/* One claim at a time per store: two claims of the same owner renew
	 * the same rows and could deadlock on each other's row locks. */
	pthread_mutex_t claim_lock;
} pg_store;

/* One operation on one connection. */
typedef struct pg_call {
	pg_store *s;
	PGconn *conn;
	const char *what;           /* "put", "claim", ...: prefixes error details */
	int done_something;         /* a retry could repeat an effect: COMMIT sent,
	                               take() or each() called */
} pg_call;

/* ---- small helpers ---------------------------------------------------------- */

static void *xmalloc(const pg_store *s, size_t n)
{
	return s->al.malloc ? s->al.malloc(n ? n : 1, s->al.user_data) : malloc(n ? n : 1);
}

static void xfree(const pg_store *s, void *p)
{
	if (!p)
		return;
	if (s->al.free)
		s->al.free(p, s->al.user_data);
	else
		free(p);
}

static char *xstrdup(const pg_store *s, const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = xmalloc(s, n);
	if (p)
		memcpy(p, str, n);
	return p;
}

static void free_secret(const pg_store *s, char *p)
{
	if (p) {
		flaghook__wipe(p, strlen(p));
		xfree(s, p);
	}
}

static uint64_t fnv1a(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const char *p = a; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	for (const char *p = b; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return h;
}

static int fail(int code, const char *detail)
{
	return flaghook_error_set(code, detail);
}

/* Appends src to dst[*len] (capacity cap) with every secret replaced by
 * "***".  Matching runs over the whole of src before anything is cut, so a
 * truncated detail cannot end in half a password. */
static void append_scrubbed(const pg_store *s, char *dst, size_t cap, size_t *len,
                            const char *src, size_t src_len)
{
	size_t i = 0;
	while (i < src_len) {
		size_t skip = 0;
		for (int k = 0; s && k < 2 && !skip; k++) {
			const char *sec = s->secrets[k];
			size_t sl = sec ? strlen(sec) : 0;
			if (sl && sl <= src_len - i && memcmp(src + i, sec, sl) == 0)
				skip = sl;
		}
		const char *piece = skip ? "***" : src + i;
		size_t piece_len = skip ? 3 : 1;
		for (size_t j = 0; j < piece_len && *len + 1 < cap; j++)
			dst[(*len)++] = piece[j];
		i += skip ? skip : 1;
	}
	dst[*len] = '\0';
}

/* "postgresql: <what>: <first line of msg>", secrets cut out. */
static int pg_fail_msg(const pg_store *s, const char *what, const char *msg)
{
	char buf[DETAIL_MAX];
	size_t len = 0;
	buf[0] = '\0';
	append_scrubbed(NULL, buf, sizeof(buf), &len, "postgresql: ", 12);
	if (what) {
		append_scrubbed(NULL, buf, sizeof(buf), &len, what, strlen(what));
		append_scrubbed(NULL, buf, sizeof(buf), &len, ": ", 2);
	}
	if (!msg || !*msg)
		msg = "unknown error";
	size_t n = strcspn(msg, "\r\n");
	while (n && (msg[n - 1] == ' ' || msg[n - 1] == '\t'))
		n--;
	append_scrubbed(s, buf, sizeof(buf), &len, msg, n);
	return fail(FLAGHOOK_ESTORAGE, buf);
}

/* The failure of a command: the server's primary message when there is
 * one (no "ERROR:" prefix, no context lines), else libpq's. */
static int call_fail(pg_call *c, const PGresult *r)
{
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg || !*msg)
		msg = r ? PQresultErrorMessage(r) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c->conn);
	return pg_fail_msg(c->s, c->what, msg);
}

/* Integers in a binary result are big-endian, 2, 4 or 8 bytes. */
static int64_t col_int(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	uint64_t v = 0;
	for (int i = 0; i < len && i < 8; i++)
		v = v << 8 | p[i];
	switch (len) {
	case 2: return (int16_t)(uint16_t)v;
	case 4: return (int32_t)(uint32_t)v;
	default: return (int64_t)v;
	}
}

/* ---- parameters ----------------------------------------------------------- */

#define MAX_PARAMS 13

typedef struct params {
	int n;
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][24];
} params;

static void p_i64(params *p, int64_t x)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, x);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_text(params *p, const char *t)
{
	p->v[p->n] = t;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_null(params *p)
{
	p_text(p, NULL);
}

/* Binary-safe: bytea goes as raw bytes.  n fits an int (checked by callers). */
static void p_bytes(params *p, const void *b, size_t n)
{
	p->v[p->n] = n ? (const char *)b : ""; /* a NULL value would mean SQL NULL */
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

/* Runs statement `st` (prepared, or by text for the unprepared ones); the
 * result when its status is `want`, else NULL with the error set. */
static PGresult *call_exec(pg_call *c, int st, const params *p, ExecStatusType want)
{
	PGresult *r;
	int n = p ? p->n : 0;
	const char *const *v = p ? p->v : NULL;
	const int *len = p ? p->len : NULL, *fmt = p ? p->fmt : NULL;
	if (st < S_PREPARED) {
		char name[24];
		snprintf(name, sizeof(name), "flaghook_%d", st);
		r = PQexecPrepared(c->conn, name, n, v, len, fmt, 1);
	} else {
		r = PQexecParams(c->conn, c->s->sql[st], n, NULL, v, len, fmt, 1);
	}
	if (r && PQresultStatus(r) == want)
		return r;
	call_fail(c, r);
	PQclear(r);
	return NULL;
}

/* Statements without parameters or results: BEGIN, COMMIT, ROLLBACK. */
static int call_simple(pg_call *c, const char *sql)
{
	PGresult *r = PQexec(c->conn, sql);
	int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : call_fail(c, r);
	PQclear(r);
	return rc;
}

static int call_commit(pg_call *c)
{
	/* From here a broken connection leaves it unknown whether the
	 * transaction committed: it must not be run again, and the caller
	 * is told so rather than "nothing happened". */
	c->done_something = 1;
	PGresult *r = PQexec(c->conn, "COMMIT");
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		if (PQstatus(c->conn) != CONNECTION_OK) {
			char what[96];
			snprintf(what, sizeof(what), "%s: connection lost during COMMIT, whether it took"
			         " effect is unknown", c->what);
			rc = pg_fail_msg(c->s, what, PQerrorMessage(c->conn));
		} else {
			rc = call_fail(c, r);
		}
	}
	PQclear(r);
	return rc;
}

/* ---- connections ---------------------------------------------------------- */

/* libpq prints NOTICEs (e.g. from DDL) to stderr by default; a library
 * must not write to its host's stderr. */
static void quiet_notices(void *arg, const char *message)
{
	(void)arg; (void)message;
}

/* Prepares the statements on a new connection (they live per session). */
static int prepare_all(pg_store *s, PGconn *conn, const char *what)
{
	for (int st = 0; st < S_PREPARED; st++) {
		char name[24];
		snprintf(name, sizeof(name), "flaghook_%d", st);
		PGresult *r = PQprepare(conn, name, s->sql[st], 0, NULL);
		if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_call c = { s, conn, what, 0 };
			int rc = call_fail(&c, r);
			PQclear(r);
			return rc;
		}
		PQclear(r);
	}
	return 0;
}

/* A new connection for slot, with the statements prepared.  At open the
 * tables may not exist yet; `prepare` 0 leaves that to the caller. */
static int pg_connect(pg_store *s, pg_slot *slot, const char *what, int prepare)
{
	/* Order matters: the caller's conninfo (expanded from "dbname")
	 * overrides the keepalive defaults before it and is overridden by
	 * what the store needs after it. */
	static const char *const keys[] = {
		"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "fallback_application_name",
		"dbname",
		"connect_timeout", "client_encoding",
		NULL
	};
	/* A server that stops answering (no RST: a dead host, a partition) is
	 * noticed within about a minute instead of hanging a thread for the
	 * kernel's default of hours. */
	const char *values[] = {
		"1", "15", "5", "3",
		"60000", s->app_name,
		s->conninfo,
		s->connect_timeout, "UTF8",
		NULL
	};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	if (!conn)
		return fail(FLAGHOOK_ENOMEM, "postgresql: out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		int rc = pg_fail_msg(s, what, PQerrorMessage(conn));
		PQfinish(conn);
		return rc;
	}
	PQsetNoticeProcessor(conn, quiet_notices, NULL);
	int rc = prepare ? prepare_all(s, conn, what) : 0;
	if (rc) {
		PQfinish(conn);
		return rc;
	}
	slot->conn = conn;
	return 0;
}

/* Waits (without spinning) for a free slot; connected ones first. */
static pg_slot *slot_acquire(pg_store *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->free_slots == 0)
		pthread_cond_wait(&s->slot_freed, &s->lock);
	pg_slot *pick = NULL;
	for (int i = 0; i < s->nslots; i++) {
		if (s->slots[i].busy)
			continue;
		if (!pick)
			pick = &s->slots[i];
		if (s->slots[i].conn) {
			pick = &s->slots[i];
			break;
		}
	}
	pick->busy = 1;
	s->free_slots--;
	pthread_mutex_unlock(&s->lock);
	return pick;
}

static void slot_release(pg_store *s, pg_slot *slot)
{
	pthread_mutex_lock(&s->lock);
	slot->busy = 0;
	s->free_slots++;
	pthread_cond_signal(&s->slot_freed);
	pthread_mutex_unlock(&s->lock);
}

typedef int (*pg_op)(pg_call *c, void *arg);

/*
 * Runs op on a pooled connection.  When it fails because the connection
 * broke (a restarted server, a killed backend, a dropped TCP connection),
 * the connection is dropped, and the op runs once more on a new one if it
 * cannot have had an effect yet.  The retry is what lets the first command
 * after a server restart succeed: an idle connection learns it is dead only
 * when it is used.
 */
static int run(pg_store *s, const char *what, pg_op op, void *arg)
{
	pg_slot *slot = slot_acquire(s);
	int rc;
	for (int attempt = 0;; attempt++) {
		if (!slot->conn && (rc = pg_connect(s, slot, what, 1)) != 0)
			break;
		pg_call c = { s, slot->conn, what, 0 };
		rc = op(&c, arg);
		if (PQstatus(slot->conn) == CONNECTION_OK) {
			/* An op that failed mid-transaction: end it here, so the
			 * connection goes back clean.  If even that fails, drop it. */
			if (PQtransactionStatus(slot->conn) != PQTRANS_IDLE) {
				PGresult *r = PQexec(slot->conn, "ROLLBACK");
				if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
					PQfinish(slot->conn);
					slot->conn = NULL;
				}
				PQclear(r);
			}
			break;
		}
		PQfinish(slot->conn);
		slot->conn = NULL;
		if (rc == 0 || c.done_something || attempt > 0)
			break;
	}
	slot_release(s, slot);
	return rc;
}

/* ---- checks shared by the operations ---------------------------------------- */

static int check_query(const flaghook_query *q, flaghook_query *out)
{
	static const flaghook_query all = FLAGHOOK_QUERY_INIT;
	if (!q) {
		*out = all;
		return 0;
	}
	if (q->version == 0 || q->version > FLAGHOOK_QUERY_VERSION)
		return fail(FLAGHOOK_EVERSION, "postgresql: query version not supported");
	*out = *q;
	if (out->state != FLAGHOOK_STATE_ANY && (out->state < FLAGHOOK_DELIVERY_PENDING ||
	                                         out->state > FLAGHOOK_DELIVERY_DEAD))
		return fail(FLAGHOOK_EINVAL, "postgresql: query state is not a FLAGHOOK_DELIVERY_* value");
	return 0;
}

/* The filters of list and requeue: $2 state, $3 id, $4 endpoint, $5 since. */
static void p_filters(params *p, const flaghook_query *q)
{
	if (q->state == FLAGHOOK_STATE_ANY) p_null(p); else p_i64(p, q->state);
	if (q->delivery_id) p_i64(p, (int64_t)q->delivery_id); else p_null(p);
	if (q->endpoint_id) p_i64(p, (int64_t)q->endpoint_id); else p_null(p);
	if (q->since_us) p_i64(p, q->since_us); else p_null(p);
}

/* ---- put ------------------------------------------------------------------ */

typedef struct put_arg {
	flaghook_delivery *d;
	size_t n;
	const int64_t *keys;        /* FIFO endpoint locks, sorted, distinct */
	size_t nkeys;
	int64_t now_us;
} put_arg;

static int put_op(pg_call *c, void *v)
{
	put_arg *a = v;
	pg_store *s = c->s;
	int rc = call_simple(c, "BEGIN");
	/* Sorted, so two puts that share endpoints cannot deadlock. */
	for (size_t k = 0; !rc && k < a->nkeys; k++) {
		params p = { 0 };
		p_i64(&p, a->keys[k]);
		PGresult *r = call_exec(c, S_LOCK, &p, PGRES_TUPLES_OK);
		rc = r ? 0 : FLAGHOOK_ESTORAGE;
		PQclear(r);
	}
	for (size_t i = 0; !rc && i < a->n; i++) {
		flaghook_delivery *d = &a->d[i];
		params p = { 0 };
		p_text(&p, d->event_id);
		p_i64(&p, d->event_type);
		p_i64(&p, (int64_t)d->endpoint_id);
		p_bytes(&p, d->body, d->body_len);
		p_i64(&p, d->attempts);
		p_i64(&p, d->created_us);
		p_i64(&p, d->next_attempt_us);
		p_i64(&p, d->fifo ? 1 : 0);
		p_i64(&p, a->now_us);
		/* FIFO rows go in unheld: claim hands them out in order. */
		if (d->fifo) p_null(&p); else p_text(&p, s->owner);
		p_i64(&p, s->lease_us);
		PGresult *r = call_exec(c, S_PUT, &p, PGRES_TUPLES_OK);
		if (!r) {
			rc = FLAGHOOK_ESTORAGE;
			break;
		}
		d->id = (uint64_t)col_int(r, 0, 0);
		d->claimed = d->fifo ? 0 : 1;
		PQclear(r);
	}
	return rc ? rc : call_commit(c);
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

static int pg_put(flaghook_delivery *d, size_t n, void *ud)
{
	pg_store *s = ud;
	if (!s || (!d && n))
		return fail(FLAGHOOK_EINVAL, "postgresql: put: NULL deliveries");
	if (n == 0)
		return 0;
	size_t nfifo = 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i].version == 0 || d[i].version > FLAGHOOK_DELIVERY_VERSION)
			return fail(FLAGHOOK_EVERSION, "postgresql: put: delivery version not supported");
		if (!d[i].event_id || (!d[i].body && d[i].body_len))
			return fail(FLAGHOOK_EINVAL, "postgresql: put: delivery without event_id or body");
		if (d[i].body_len > (size_t)INT_MAX)
			return fail(FLAGHOOK_ETOOBIG, "postgresql: put: body over 2 GiB");
		nfifo += d[i].fifo != 0;
	}
	int64_t *keys = NULL;
	size_t nkeys = 0;
	if (nfifo) {
		keys = xmalloc(s, nfifo * sizeof(*keys));
		if (!keys)
			return fail(FLAGHOOK_ENOMEM, "postgresql: put: out of memory");
		for (size_t i = 0; i < n; i++)
			if (d[i].fifo)
				keys[nkeys++] = (int64_t)((uint64_t)s->fifo_key ^
				                          (d[i].endpoint_id * 0x9E3779B97F4A7C15ULL));
		qsort(keys, nkeys, sizeof(*keys), cmp_i64);
		size_t w = 0;
		for (size_t i = 0; i < nkeys; i++)
			if (w == 0 || keys[w - 1] != keys[i])
				keys[w++] = keys[i];
		nkeys = w;
	}
	put_arg a = { d, n, keys, nkeys, flaghook__now_us() };
	int rc = run(s, "put", put_op, &a);
	xfree(s, keys);
	if (rc)  /* nothing was stored: take back the ids handed out */
		for (size_t i = 0; i < n; i++)
			d[i].id = 0, d[i].claimed = 0;
	return rc;
}

/* ---- claim ---------------------------------------------------------------- */

typedef struct claim_arg {
	int64_t due_us;             /* now + horizon */
	size_t max;
	int (*take)(const flaghook_delivery *d, void *arg);
	void *take_arg;
	char *ids;                  /* "{1,2,...}": one batch's taken rows */
	size_t ids_cap;
} claim_arg;

/* Marks one batch's taken rows as this owner's. */
static int claim_mark(pg_call *c, const char *ids)
{
	params p = { 0 };
	p_text(&p, c->s->owner);
	p_i64(&p, c->s->lease_us);
	p_text(&p, ids);
	PGresult *r = call_exec(c, S_TAKE, &p, PGRES_COMMAND_OK);
	PQclear(r);
	return r ? 0 : FLAGHOOK_ESTORAGE;
}

static void row_delivery(const PGresult *r, int i, flaghook_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->version = FLAGHOOK_DELIVERY_VERSION;
	d->id = (uint64_t)col_int(r, i, C_ID);
	d->event_id = PQgetvalue(r, i, C_EVENT_ID); /* NUL-terminated even in binary */
	d->event_type = (int32_t)col_int(r, i, C_EVENT_TYPE);
	d->endpoint_id = (uint64_t)col_int(r, i, C_ENDPOINT);
	d->body = PQgetvalue(r, i, C_BODY);
	d->body_len = (size_t)PQgetlength(r, i, C_BODY);
	d->attempts = (int32_t)col_int(r, i, C_ATTEMPTS);
	d->created_us = col_int(r, i, C_CREATED);
	d->next_attempt_us = col_int(r, i, C_NEXT);
	d->fifo = (int32_t)col_int(r, i, C_FIFO);
	d->state = (int32_t)col_int(r, i, C_STATE);
	d->last_status = (int32_t)col_int(r, i, C_LAST_STATUS);
	d->updated_us = col_int(r, i, C_UPDATED);
}

static int claim_op(pg_call *c, void *v)
{
	claim_arg *a = v;
	pg_store *s = c->s;
	size_t taken = 0;
	int rc = call_simple(c, "BEGIN");
	if (!rc) {
		/* Renew first: a lease about to run out must not be lost to the
		 * very claim that runs while we are still working the row. */
		params p = { 0 };
		p_text(&p, s->owner);
		p_i64(&p, s->lease_us);
		PGresult *r = call_exec(c, S_RENEW, &p, PGRES_COMMAND_OK);
		rc = r ? 0 : FLAGHOOK_ESTORAGE;
		PQclear(r);
	}
	int64_t after = 0;
	int more = !rc && a->max > 0;
	while (more) {
		size_t want = a->max - taken < CLAIM_BATCH ? a->max - taken : CLAIM_BATCH;
		params p = { 0 };
		p_i64(&p, a->due_us);
		p_i64(&p, after);
		p_i64(&p, (int64_t)want);
		PGresult *r = call_exec(c, S_CANDIDATES, &p, PGRES_TUPLES_OK);
		if (!r) {
			rc = FLAGHOOK_ESTORAGE;
			break;
		}
		int rows = PQntuples(r);
		size_t len = 0, in_batch = 0;
		/* A full batch may have more behind it: rows left (take() said 1)
		 * do not count towards max. */
		more = (size_t)rows == want;
		a->ids[len++] = '{';
		for (int i = 0; i < rows; i++) {
			flaghook_delivery d;
			row_delivery(r, i, &d);
			after = (int64_t)d.id;
			c->done_something = 1; /* the client now knows of it: no retry */
			int t = a->take(&d, a->take_arg);
			if (t < 0) {
				more = 0;
				break;
			}
			if (t == 0) {
				len += (size_t)snprintf(a->ids + len, a->ids_cap - len, "%s%" PRIu64,
				                        in_batch++ ? "," : "", d.id);
				if (++taken == a->max) {
					more = 0;
					break;
				}
			}
		}
		a->ids[len++] = '}';
		a->ids[len] = '\0';
		PQclear(r);
		if (in_batch && (rc = claim_mark(c, a->ids)) != 0)
			break;
	}
	return rc ? rc : call_commit(c);
}

typedef struct prune_arg {
	int64_t before_us;
} prune_arg;

static int prune_op(pg_call *c, void *v)
{
	prune_arg *a = v;
	for (;;) { /* batches, each its own short transaction */
		params p = { 0 };
		p_i64(&p, a->before_us);
		p_i64(&p, PRUNE_BATCH);
		c->done_something = 1;
		PGresult *r = call_exec(c, S_PRUNE, &p, PGRES_COMMAND_OK);
		if (!r)
			return FLAGHOOK_ESTORAGE;
		long n = strtol(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		if (n < PRUNE_BATCH)
			return 0;
	}
}

/* At most once a minute per store, on the thread that claims. */
static void maybe_prune(pg_store *s)
{
	if (s->prune_after_us < 0)
		return;
	int64_t now = flaghook__now_us();
	pthread_mutex_lock(&s->lock);
	int due = now >= s->next_prune_us;
	if (due)
		s->next_prune_us = now + PRUNE_EVERY_US;
	pthread_mutex_unlock(&s->lock);
	if (!due)
		return;
	prune_arg a = { flaghook__sat_add(now, -s->prune_after_us) };
	/* A failed prune costs nothing but disk until the next one; claim's
	 * own result does not depend on it. */
	(void)run(s, "prune", prune_op, &a);
}

static int pg_claim(int64_t now_us, int64_t horizon_us, size_t max,
                    int (*take)(const flaghook_delivery *d, void *arg), void *arg, void *ud)
{
	pg_store *s = ud;
	if (!s || !take)
		return fail(FLAGHOOK_EINVAL, "postgresql: claim: NULL take");
	claim_arg a = { flaghook__sat_add(now_us, horizon_us), max, take, arg, NULL, 0 };
	/* Room for one batch: "{" id ("," id)* "}", ids at most 20 digits. */
	a.ids_cap = (max < CLAIM_BATCH ? max : CLAIM_BATCH) * 21 + 8;
	a.ids = xmalloc(s, a.ids_cap);
	if (!a.ids)
		return fail(FLAGHOOK_ENOMEM, "postgresql: claim: out of memory");
	pthread_mutex_lock(&s->claim_lock);
	int rc = run(s, "claim", claim_op, &a);
	pthread_mutex_unlock(&s->claim_lock);
	xfree(s, a.ids);
	if (!rc)
		maybe_prune(s);
	return rc;
}

/* ---- record --------------------------------------------------------------- */

typedef struct record_arg {
	const flaghook_delivery *d;
	const flaghook_attempt *a;
	const char *error;          /* a->error, valid UTF-8 */
	int64_t now_us;
} record_arg;

static int record_op(pg_call *c, void *v)
{
	record_arg *ra = v;
	const flaghook_attempt *a = ra->a;
	pg_store *s = c->s;
	int rc = call_simple(c, "BEGIN");
	if (rc)
		return rc;

	int state = FLAGHOOK_DELIVERY_PENDING, keep = 0;
	switch (a->outcome) {
	case FLAGHOOK_OUTCOME_RETRY: keep = 1; break;
	case FLAGHOOK_OUTCOME_DELIVERED: state = FLAGHOOK_DELIVERY_DELIVERED; break;
	case FLAGHOOK_OUTCOME_GAVE_UP: state = FLAGHOOK_DELIVERY_DEAD; break;
	default: break; /* RELEASED, ABANDONED: pending, nobody's */
	}
	params p = { 0 };
	p_i64(&p, (int64_t)ra->d->id);
	p_text(&p, s->owner);
	p_i64(&p, state);
	p_i64(&p, keep);
	p_i64(&p, s->lease_us);
	if (keep) p_i64(&p, a->next_attempt_us); else p_null(&p);
	if (a->number > 0) p_i64(&p, a->number); else p_null(&p);
	if (a->number > 0) p_i64(&p, a->status); else p_null(&p);
	p_i64(&p, ra->now_us);
	PGresult *r = call_exec(c, S_RECORD, &p, PGRES_TUPLES_OK);
	if (!r)
		return FLAGHOOK_ESTORAGE;
	int mine = PQntuples(r) == 1;
	PQclear(r);

	if (!mine) { /* unknown, or someone else's: say which */
		params w = { 0 };
		p_i64(&w, (int64_t)ra->d->id);
		r = call_exec(c, S_WHO, &w, PGRES_TUPLES_OK);
		if (!r)
			return FLAGHOOK_ESTORAGE;
		char buf[128];
		if (PQntuples(r) == 0) {
			snprintf(buf, sizeof(buf), "postgresql: record: no delivery %" PRIu64, ra->d->id);
			rc = fail(FLAGHOOK_ENOTFOUND, buf);
		} else if (!PQgetisnull(r, 0, 0)) {
			snprintf(buf, sizeof(buf), "postgresql: record: delivery %" PRIu64
			         " is held by another process", ra->d->id);
			rc = fail(FLAGHOOK_ESTATE, buf);
		} else {
			snprintf(buf, sizeof(buf), "postgresql: record: delivery %" PRIu64
			         " is not held by this process (its lease ran out, or it is finished)",
			         ra->d->id);
			rc = fail(FLAGHOOK_ESTATE, buf);
		}
		PQclear(r);
		return rc; /* run() rolls back */
	}

	if (a->number > 0) {
		size_t resp_len = a->response_len < s->response_max ? a->response_len : s->response_max;
		params l = { 0 };
		p_i64(&l, (int64_t)ra->d->id);
		p_i64(&l, a->number);
		p_i64(&l, a->outcome);
		p_i64(&l, a->status);
		p_i64(&l, a->errclass);
		p_i64(&l, a->started_us);
		p_i64(&l, a->finished_us);
		p_i64(&l, a->next_attempt_us);
		p_text(&l, ra->error);
		p_bytes(&l, a->response, a->response ? resp_len : 0);
		p_text(&l, s->owner);
		r = call_exec(c, S_LOG, &l, PGRES_COMMAND_OK);
		if (!r)
			return FLAGHOOK_ESTORAGE;
		PQclear(r);
		params t = { 0 };
		p_i64(&t, (int64_t)ra->d->id);
		p_i64(&t, s->log_max);
		r = call_exec(c, S_TRIM, &t, PGRES_COMMAND_OK);
		if (!r)
			return FLAGHOOK_ESTORAGE;
		PQclear(r);
	}
	return call_commit(c);
}

/* Length of the longest prefix of s that is valid UTF-8, or SIZE_MAX when
 * all of it is.  Error texts can quote bytes from the network; PostgreSQL
 * rejects a text value that is not valid in its encoding. */
static size_t utf8_valid_prefix(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	size_t i = 0;
	while (p[i]) {
		unsigned char b = p[i];
		size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3
		         : (b & 0xF8) == 0xF0 ? 4 : 0;
		if (!n || (n == 2 && b < 0xC2) || (n == 4 && b > 0xF4))
			return i;
		uint32_t cp = n == 1 ? b : b & (0x7F >> n);
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return i;
			cp = cp << 6 | (p[i + k] & 0x3F);
		}
		if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
			return i;
		i += n;
	}
	return SIZE_MAX;
}

static int pg_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	pg_store *s = ud;
	if (!s || !d || !a)
		return fail(FLAGHOOK_EINVAL, "postgresql: record: NULL delivery or attempt");
	if (d->version == 0 || d->version > FLAGHOOK_DELIVERY_VERSION ||
	    a->version == 0 || a->version > FLAGHOOK_ATTEMPT_VERSION)
		return fail(FLAGHOOK_EVERSION, "postgresql: record: delivery or attempt version not supported");
	if (a->outcome < FLAGHOOK_OUTCOME_DELIVERED || a->outcome > FLAGHOOK_OUTCOME_RELEASED)
		return fail(FLAGHOOK_EINVAL, "postgresql: record: unknown outcome");
	if (a->response_len && !a->response)
		return fail(FLAGHOOK_EINVAL, "postgresql: record: response_len without response");
	record_arg ra = { d, a, a->error ? a->error : "", flaghook__now_us() };
	/* A detail that is not valid UTF-8 is kept up to its first bad byte
	 * (the rest would make the whole record fail). */
	char *copy = NULL;
	size_t ok = utf8_valid_prefix(ra.error);
	if (ok != SIZE_MAX) {
		copy = xmalloc(s, ok + 1);
		if (!copy)
			return fail(FLAGHOOK_ENOMEM, "postgresql: record: out of memory");
		memcpy(copy, ra.error, ok);
		copy[ok] = '\0';
		ra.error = copy;
	}
	int rc = run(s, "record", record_op, &ra);
	xfree(s, copy);
	return rc;
}

/* ---- list and attempts --------------------------------------------------------
 * Fetched in batches by key, each on a connection taken only for that
 * batch: memory stays bounded on a large outbox, and each() may call the
 * store again (the connection is back in the pool while it runs). */

typedef struct list_arg {
	int st;
	params p;
	PGresult *res;
} list_arg;

static int fetch_op(pg_call *c, void *v)
{
	list_arg *a = v;
	a->res = call_exec(c, a->st, &a->p, PGRES_TUPLES_OK);
	return a->res ? 0 : FLAGHOOK_ESTORAGE;
}

static int pg_list(const flaghook_query *query,
                   int (*each)(const flaghook_delivery *d, void *arg), void *arg, void *ud)
{
	pg_store *s = ud;
	flaghook_query q;
	if (!s || !each)
		return fail(FLAGHOOK_EINVAL, "postgresql: list: NULL each");
	int rc = check_query(query, &q);
	if (rc)
		return rc;
	int64_t after = 0;
	size_t seen = 0;
	for (;;) {
		size_t want = LIST_BATCH;
		if (q.limit && q.limit - seen < want)
			want = q.limit - seen;
		list_arg a = { S_LIST, { 0 }, NULL };
		p_i64(&a.p, after);
		p_filters(&a.p, &q);
		p_i64(&a.p, (int64_t)want);
		if ((rc = run(s, "list", fetch_op, &a)) != 0)
			return rc;
		int rows = PQntuples(a.res), stop = 0;
		for (int i = 0; i < rows && !stop; i++) {
			flaghook_delivery d;
			row_delivery(a.res, i, &d);
			after = (int64_t)d.id;
			stop = each(&d, arg) != 0;
		}
		PQclear(a.res);
		seen += (size_t)rows;
		if (stop || (size_t)rows < want || (q.limit && seen >= q.limit))
			return 0;
	}
}

static int pg_attempts(const flaghook_query *query,
                       int (*each)(const flaghook_attempt *a, void *arg), void *arg, void *ud)
{
	pg_store *s = ud;
	flaghook_query q;
	if (!s || !each)
		return fail(FLAGHOOK_EINVAL, "postgresql: attempts: NULL each");
	int rc = check_query(query, &q);
	if (rc)
		return rc;
	int64_t after_started = INT64_MIN, after_seq = 0;
	size_t seen = 0;
	for (;;) {
		size_t want = LIST_BATCH;
		if (q.limit && q.limit - seen < want)
			want = q.limit - seen;
		list_arg a = { S_ATTEMPTS, { 0 }, NULL };
		p_i64(&a.p, after_started);
		p_i64(&a.p, after_seq);
		if (q.delivery_id) p_i64(&a.p, (int64_t)q.delivery_id); else p_null(&a.p);
		if (q.endpoint_id) p_i64(&a.p, (int64_t)q.endpoint_id); else p_null(&a.p);
		if (q.since_us) p_i64(&a.p, q.since_us); else p_null(&a.p);
		p_i64(&a.p, (int64_t)want);
		if ((rc = run(s, "attempts", fetch_op, &a)) != 0)
			return rc;
		int rows = PQntuples(a.res), stop = 0;
		for (int i = 0; i < rows && !stop; i++) {
			const PGresult *r = a.res;
			flaghook_attempt at;
			memset(&at, 0, sizeof(at));
			at.version = FLAGHOOK_ATTEMPT_VERSION;
			at.delivery_id = (uint64_t)col_int(r, i, A_DELIVERY);
			at.endpoint_id = (uint64_t)col_int(r, i, A_ENDPOINT);
			at.event_id = PQgetvalue(r, i, A_EVENT_ID);
			at.number = (int32_t)col_int(r, i, A_NUMBER);
			at.outcome = (int32_t)col_int(r, i, A_OUTCOME);
			at.status = (int32_t)col_int(r, i, A_STATUS);
			at.errclass = (int32_t)col_int(r, i, A_ERRCLASS);
			at.started_us = col_int(r, i, A_STARTED);
			at.finished_us = col_int(r, i, A_FINISHED);
			at.next_attempt_us = col_int(r, i, A_NEXT);
			at.error = PQgetvalue(r, i, A_ERROR);
			at.response = PQgetvalue(r, i, A_RESPONSE);
			at.response_len = (size_t)PQgetlength(r, i, A_RESPONSE);
			after_started = at.started_us;
			after_seq = col_int(r, i, A_SEQ);
			stop = each(&at, arg) != 0;
		}
		PQclear(a.res);
		seen += (size_t)rows;
		if (stop || (size_t)rows < want || (q.limit && seen >= q.limit))
			return 0;
	}
}

/* ---- requeue and pending -------------------------------------------------------- */

typedef struct count_arg {
	int st;
	params p;
	uint64_t count;
} count_arg;

static int requeue_op(pg_call *c, void *v)
{
	count_arg *a = v;
	/* One statement is its own transaction: once sent, whether it
	 * committed is unknown if the connection breaks, so no retry. */
	c->done_something = 1;
	PGresult *r = call_exec(c, S_REQUEUE, &a->p, PGRES_COMMAND_OK);
	if (!r)
		return FLAGHOOK_ESTORAGE;
	a->count = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

static int pg_requeue(const flaghook_query *query, uint64_t *count, void *ud)
{
	pg_store *s = ud;
	flaghook_query q;
	if (!s)
		return fail(FLAGHOOK_EINVAL, "postgresql: requeue: NULL store");
	int rc = check_query(query, &q);
	if (rc)
		return rc;
	count_arg a = { S_REQUEUE, { 0 }, 0 };
	p_i64(&a.p, flaghook__now_us());
	p_filters(&a.p, &q);
	if (q.limit) p_i64(&a.p, q.limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)q.limit);
	else p_null(&a.p); /* LIMIT NULL: no limit */
	rc = run(s, "requeue", requeue_op, &a);
	if (!rc && count)
		*count = a.count;
	return rc;
}

static int pending_op(pg_call *c, void *v)
{
	count_arg *a = v;
	PGresult *r = call_exec(c, S_PENDING, NULL, PGRES_TUPLES_OK);
	if (!r)
		return FLAGHOOK_ESTORAGE;
	a->count = (uint64_t)col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

typedef struct release_arg {
	int64_t now_us;
	const char *ids;            /* "{1,2,...}" */
} release_arg;

/* One statement, idempotent: safe to run again after a lost connection. */
static int release_op(pg_call *c, void *v)
{
	release_arg *a = v;
	params p = { 0 };
	p_i64(&p, a->now_us);
	p_text(&p, a->ids);
	p_text(&p, c->s->owner);
	PGresult *r = call_exec(c, S_RELEASE, &p, PGRES_COMMAND_OK);
	PQclear(r);
	return r ? 0 : FLAGHOOK_ESTORAGE;
}

static int pg_release(const uint64_t *ids, size_t n, void *ud)
{
	pg_store *s = ud;
	if (!s || (!ids && n))
		return fail(FLAGHOOK_EINVAL, "postgresql: release: NULL ids");
	if (!n)
		return 0;
	/* "{" id ("," id)* "}": at most 21 bytes an id. */
	if (n > (SIZE_MAX - 3) / 21)
		return fail(FLAGHOOK_EINVAL, "postgresql: release: too many ids");
	size_t cap = n * 21 + 3, len = 0;
	char *text = xmalloc(s, cap);
	if (!text)
		return fail(FLAGHOOK_ENOMEM, "postgresql: release: out of memory");
	text[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
	text[len++] = '}';
	text[len] = '\0';
	release_arg a = { flaghook__now_us(), text };
	int rc = run(s, "release", release_op, &a);
	xfree(s, text);
	return rc;
}

static int pg_pending(uint64_t *count, void *ud)
{
	pg_store *s = ud;
	if (!s || !count)
		return fail(FLAGHOOK_EINVAL, "postgresql: pending: NULL count");
	count_arg a = { S_PENDING, { 0 }, 0 };
	int rc = run(s, "pending", pending_op, &a);
	if (!rc)
		*count = a.count;
	return rc;
}

/* ---- open, migrate, destroy ---------------------------------------------------- */

static void store_free(pg_store *s)
{
	if (!s)
		return;
	for (int i = 0; s->slots && i < s->nslots; i++)
		if (s->slots[i].conn)
			PQfinish(s->slots[i].conn);
	xfree(s, s->slots);
	for (int i = 0; i < S_COUNT; i++)
		xfree(s, s->sql[i]);
	free_secret(s, s->conninfo);
	free_secret(s, s->secrets[0]);
	free_secret(s, s->secrets[1]);
	xfree(s, s->schema);
	xfree(s, s->owner);
	xfree(s, s->app_name);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->claim_lock);
	pthread_cond_destroy(&s->slot_freed);
	flaghook_allocator al = s->al;
	if (al.free)
		al.free(s, al.user_data);
	else
		free(s);
}

static void pg_destroy(void *ud)
{
	store_free(ud);
}

/* tmpl with every "{s}" replaced by the quoted schema. */
static char *expand(const pg_store *s, const char *tmpl)
{
	size_t qlen = 2;
	for (const char *p = s->schema; *p; p++)
		qlen += *p == '"' ? 2 : 1;
	size_t n = 1;
	for (const char *p = tmpl; *p; p++)
		n += strncmp(p, "{s}", 3) == 0 ? (p += 2, qlen) : 1;
	char *out = xmalloc(s, n), *w = out;
	if (!out)
		return NULL;
	for (const char *p = tmpl; *p; p++) {
		if (strncmp(p, "{s}", 3) != 0) {
			*w++ = *p;
			continue;
		}
		*w++ = '"';
		for (const char *q = s->schema; *q; q++) {
			if (*q == '"')
				*w++ = '"';
			*w++ = *q;
		}
		*w++ = '"';
		p += 2;
	}
	*w = '\0';
	return out;
}

static int text_query(pg_call *c, const char *sql, const char *param, PGresult **out)
{
	const char *v[1] = { param };
	PGresult *r = PQexecParams(c->conn, sql, param ? 1 : 0, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		int rc = call_fail(c, r);
		PQclear(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int exec_sql(pg_call *c, const pg_store *s, const char *tmpl)
{
	char *sql = expand(s, tmpl);
	if (!sql)
		return fail(FLAGHOOK_ENOMEM, "postgresql: out of memory");
	int rc = call_simple(c, sql);
	xfree(s, sql);
	return rc;
}

/*
 * Brings the schema to FLAGHOOK_PG_SCHEMA_VERSION, under an advisory lock
 * so processes opening at once take turns (CREATE ... IF NOT EXISTS alone
 * still races on the catalog).  Nothing is created when the schema is
 * current already, so a role without CREATE rights can use a schema an
 * administrator made.
 */
static int migrate(pg_call *c)
{
	pg_store *s = c->s;
	PGresult *r = NULL;
	char num[24], buf[200];
	int rc = call_simple(c, "BEGIN");
	if (rc)
		return rc;
	snprintf(num, sizeof(num), "%" PRId64, s->migrate_key);
	if ((rc = text_query(c, "SELECT pg_advisory_xact_lock($1::int8)", num, &r)) != 0)
		return rc;
	PQclear(r);
	if ((rc = text_query(c, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text),"
	                        " to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL",
	                     s->schema, &r)) != 0)
		return rc;
	int have_schema = PQgetvalue(r, 0, 0)[0] == 't';
	int have_version = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	long version = 0;
	if (have_version) {
		char *sql = expand(s, "SELECT coalesce(max(version), 0) FROM {s}.schema_version");
		if (!sql)
			return fail(FLAGHOOK_ENOMEM, "postgresql: out of memory");
		rc = text_query(c, sql, NULL, &r);
		xfree(s, sql);
		if (rc)
			return rc;
		version = strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	if (version > FLAGHOOK_PG_SCHEMA_VERSION) {
		snprintf(buf, sizeof(buf), "postgresql: open: schema \"%s\" is at version %ld, newer than"
		         " this library's %d; use a newer libflaghook-pg", s->schema, version,
		         FLAGHOOK_PG_SCHEMA_VERSION);
		return fail(FLAGHOOK_ESTORAGE, buf);
	}
	if (version == FLAGHOOK_PG_SCHEMA_VERSION)
		return call_commit(c);
	if (!have_schema && (rc = exec_sql(c, s, "CREATE SCHEMA {s}")) != 0)
		return rc;
	if (!have_version &&
	    (rc = exec_sql(c, s, "CREATE TABLE {s}.schema_version (version int4 NOT NULL);"
	                         "INSERT INTO {s}.schema_version VALUES (0)")) != 0)
		return rc;
	for (long v = version; v < FLAGHOOK_PG_SCHEMA_VERSION; v++)
		if ((rc = exec_sql(c, s, migrations[v])) != 0)
			return rc;
	snprintf(buf, sizeof(buf), "UPDATE {s}.schema_version SET version = %d",
	         FLAGHOOK_PG_SCHEMA_VERSION);
	if ((rc = exec_sql(c, s, buf)) != 0)
		return rc;
	return call_commit(c);
}

static int open_first(pg_store *s)
{
	pg_slot *slot = &s->slots[0];
	int rc = pg_connect(s, slot, "open", 0);
	if (rc)
		return rc;
	pg_call c = { s, slot->conn, "open", 0 };
	rc = migrate(&c);
	if (!rc)
		rc = prepare_all(s, slot->conn, "open");
	if (rc) { /* closing it also rolls back a migration cut short */
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	return rc;
}

/* "<hostname>:<pid>:<random>": unique among processes that share the
 * outbox, even across containers that all see pid 1. */
static char *default_owner(const pg_store *s)
{
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		/* Early boot without entropy: uniqueness is what matters here. */
		uint64_t t = (uint64_t)flaghook__now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rnd;
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)(t >> (8 * i));
	}
	char buf[320];
	int n = snprintf(buf, sizeof(buf), "%s:%ld:", host, (long)getpid());
	for (size_t i = 0; i < sizeof(rnd) && n > 0 && (size_t)n + 3 < sizeof(buf); i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%02x", rnd[i]);
	return xstrdup(s, buf);
}

/* The password in a conninfo (keyword=value or URI), to keep it out of
 * messages; "" when there is none.  NULL when the conninfo does not parse. */
static int conninfo_password(const pg_store *s, const char *conninfo, char **out)
{
	*out = NULL;
	int structured = strchr(conninfo, '=') || strncmp(conninfo, "postgresql://", 13) == 0 ||
	                 strncmp(conninfo, "postgres://", 11) == 0;
	if (!structured) /* a bare database name, as libpq reads it */
		return 0;
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (!opts) {
		/* libpq's message quotes the text around the mistake, which may be
		 * the password: say only that it does not parse. */
		PQfreemem(err);
		return fail(FLAGHOOK_EINVAL, "postgresql: open: conninfo does not parse"
		                             " (not shown: it may hold a password)");
	}
	int rc = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0]) {
			*out = xstrdup(s, o->val);
			if (!*out)
				rc = fail(FLAGHOOK_ENOMEM, "postgresql: open: out of memory");
			flaghook__wipe(o->val, strlen(o->val));
		}
	}
	PQconninfoFree(opts);
	return rc;
}

/* The options' size at each version (util/version.h). */
static const size_t options_sizes[] = { 0, sizeof(flaghook_pg_options) };

int flaghook_pg_options_init(flaghook_pg_options *opts, unsigned int version)
{
	return flaghook__struct_init(opts, version, options_sizes, FH_COUNT(options_sizes),
	                             "postgresql: flaghook_pg_options");
}

static int check_options(const flaghook_pg_options *o)
{
	if (!o->conninfo)
		return fail(FLAGHOOK_EINVAL, "postgresql: open: no conninfo");
	if (o->schema && (!o->schema[0] || strlen(o->schema) > NAME_MAX_BYTES))
		return fail(FLAGHOOK_EINVAL, "postgresql: open: schema name must be 1 to 63 bytes");
	if (o->owner && !o->owner[0])
		return fail(FLAGHOOK_EINVAL, "postgresql: open: empty owner name");
	if (o->lease_ms < 0 || o->connect_timeout_ms < 0 || o->attempt_log_max < 0)
		return fail(FLAGHOOK_EINVAL, "postgresql: open: negative lease_ms, connect_timeout_ms"
		                             " or attempt_log_max");
	if (o->lease_ms > INT64_MAX / 1000 || o->prune_after_ms > INT64_MAX / 1000 ||
	    o->prune_after_ms < INT64_MIN / 1000)
		return fail(FLAGHOOK_EINVAL, "postgresql: open: lease_ms or prune_after_ms out of range");
	if (o->connections < 0 || o->connections > MAX_CONNECTIONS)
		return fail(FLAGHOOK_EINVAL, "postgresql: open: connections must be 0 to 256");
	if (o->response_max > (size_t)INT_MAX)
		return fail(FLAGHOOK_EINVAL, "postgresql: open: response_max over 2 GiB");
	if (o->allocator && (o->allocator->version == 0 ||
	                     o->allocator->version > FLAGHOOK_ALLOCATOR_VERSION))
		return fail(FLAGHOOK_EVERSION, "postgresql: open: allocator version is not supported");
	if (o->allocator && (!o->allocator->malloc || !o->allocator->free))
		return fail(FLAGHOOK_EINVAL, "postgresql: open: allocator without malloc or free");
	return 0;
}

int flaghook_pg_open(flaghook_storage *out, const flaghook_pg_options *caller_opts)
{
	if (!out || !caller_opts)
		return fail(FLAGHOOK_EINVAL, "postgresql: open: NULL storage or options");
	if (out->version == 0 || out->version > FLAGHOOK_STORAGE_VERSION)
		return fail(FLAGHOOK_EVERSION, "postgresql: open: storage version is not supported");
	/* The caller's options at its version, widened to ours. */
	flaghook_pg_options copy;
	int rc = flaghook__struct_read(&copy, caller_opts, options_sizes, FH_COUNT(options_sizes),
	                               "postgresql: flaghook_pg_options");
	if (rc)
		return rc;
	const flaghook_pg_options *o = &copy;
	rc = check_options(o);
	if (rc)
		return rc;

	flaghook_allocator al = { FLAGHOOK_ALLOCATOR_VERSION, NULL, NULL, NULL, NULL };
	if (o->allocator)
		al = *o->allocator;
	pg_store *s = al.malloc ? al.malloc(sizeof(*s), al.user_data) : malloc(sizeof(*s));
	if (!s)
		return fail(FLAGHOOK_ENOMEM, "postgresql: open: out of memory");
	memset(s, 0, sizeof(*s));
	s->al = al;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->claim_lock, NULL);
	pthread_cond_init(&s->slot_freed, NULL);

	s->lease_us = (o->lease_ms ? o->lease_ms : DEFAULT_LEASE_MS) * 1000;
	s->prune_after_us = o->prune_after_ms < 0 ? -1
	                  : (o->prune_after_ms ? o->prune_after_ms : DEFAULT_PRUNE_MS) * 1000;
	s->log_max = o->attempt_log_max ? o->attempt_log_max : DEFAULT_LOG_MAX;
	s->response_max = o->response_max ? o->response_max : DEFAULT_RESPONSE_MAX;
	int64_t cms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
	/* libpq counts whole seconds (and reads 1 as 2): round up. */
	snprintf(s->connect_timeout, sizeof(s->connect_timeout), "%" PRId64,
	         cms / 1000 + (cms % 1000 != 0));
	s->nslots = s->free_slots = o->connections ? o->connections : DEFAULT_CONNECTIONS;

	s->conninfo = xstrdup(s, o->conninfo);
	s->schema = xstrdup(s, o->schema ? o->schema : DEFAULT_SCHEMA);
	s->owner = o->owner ? xstrdup(s, o->owner) : default_owner(s);
	s->slots = xmalloc(s, (size_t)s->nslots * sizeof(*s->slots));
	if (!s->conninfo || !s->schema || !s->owner || !s->slots) {
		store_free(s);
		return fail(FLAGHOOK_ENOMEM, "postgresql: open: out of memory");
	}
	memset(s->slots, 0, (size_t)s->nslots * sizeof(*s->slots));
	if ((rc = conninfo_password(s, s->conninfo, &s->secrets[0])) != 0) {
		store_free(s);
		return rc;
	}
	const char *envpw = getenv("PGPASSWORD");
	size_t app_len = strlen(s->owner) + 16;
	s->app_name = xmalloc(s, app_len);
	if ((envpw && *envpw && !(s->secrets[1] = xstrdup(s, envpw))) || !s->app_name) {
		store_free(s);
		return fail(FLAGHOOK_ENOMEM, "postgresql: open: out of memory");
	}
	snprintf(s->app_name, app_len, "flaghook %s", s->owner);
	s->migrate_key = (int64_t)fnv1a("flaghook-pg migrate:", s->schema);
	s->fifo_key = (int64_t)fnv1a("flaghook-pg fifo:", s->schema);
	for (int i = 0; i < S_COUNT; i++) {
		if (!(s->sql[i] = expand(s, stmt_sql[i]))) {
			store_free(s);
			return fail(FLAGHOOK_ENOMEM, "postgresql: open: out of memory");
		}
	}

	if ((rc = open_first(s)) != 0) {
		store_free(s);
		return rc;
	}

	out->flags = FLAGHOOK_STORAGE_DURABLE | FLAGHOOK_STORAGE_SHARED;
	out->put = pg_put;
	out->claim = pg_claim;
	out->record = pg_record;
	out->list = pg_list;
	out->attempts = pg_attempts;
	out->requeue = pg_requeue;
	out->pending = pg_pending;
	out->release = pg_release;
	out->destroy = pg_destroy;
	out->user_data = s;
	return 0;
}
