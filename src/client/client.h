/*
 * The model every layer above the plug-ins shares: the client handle, its
 * endpoints, rendered bodies, deliveries (jobs) and the attempt in flight.
 * Only data and the few helpers that every layer needs live here; each
 * module's functions are in its own header (engine/sched.h, ...).
 *
 * Locks: `lock` (rwlock) guards the endpoint registry; `engine_lock`
 * guards every job's state, every endpoint's queue and counters, the timer
 * heap and the counts below it.  A thread never holds both, and never
 * calls a plug-in or a callback holding either.
 */
#ifndef FLAGHOOK_CLIENT_CLIENT_H
#define FLAGHOOK_CLIENT_CLIENT_H

#include "internal.h"
#include "client/policy.h"
#include "net/resolve.h"
#include "net/url.h"

#include <pthread.h>
#include <stdatomic.h>

struct fh_job;
struct fh_loop;
struct fh_watch;

typedef enum fh_breaker { FH_CLOSED, FH_OPEN, FH_HALF_OPEN } fh_breaker;

/* A name's answer, as the guard's lookup left it: its vetted addresses,
 * or why there are none.  Empty (no address, failed 0): not asked yet. */
typedef struct fh_dns {
	fh_addrs addrs;
	int32_t failed;             /* FLAGHOOK_ETRANSPORT (no address) or _EREFUSED */
	char why[192];
} fh_dns;

#define FH_LATENCY_BUCKETS 11

typedef struct fh_endpoint {
	uint64_t id;
	struct flaghook_client *client;
	int32_t scope;
	int64_t scope_id;
	uint32_t events;            /* resolved mask, never 0 */
	int32_t profile;
	uint32_t render_flags;
	char *url;                  /* wiped when freed: it may carry credentials */
	fh_url parsed;              /* host, port, scheme */
	char *secret;               /* NULL: no X-Flagsmith-Signature */
	size_t secret_len;
	char **standard_secrets;
	size_t standard_secret_count;
	char *ca_file, *ca_path, *client_cert, *client_key, *client_key_password;
	atomic_int enabled;
	atomic_int refs;            /* the registry's, every job's and timer's */

	/* The guard's name cache (resolve.c), under its own lock. */
	pthread_mutex_t dns_lock;
	fh_dns dns;
	int64_t dns_until;          /* monotonic; 0: not resolved; -1: a lookup runs */
	struct fh_job *dns_wait_head, *dns_wait_tail; /* jobs waiting for that lookup */

	/* Asynchronous delivery; guarded by the client's engine lock. */
	fh_policy policy;
	bool fifo;
	int32_t max_in_flight;
	struct fh_job *ready_head, *ready_tail;
	int32_t in_flight;          /* attempts running now */
	bool fifo_busy;             /* FIFO: a delivery is running or awaits its retry */
	bool fifo_via_claim;        /* FIFO deliveries have come through claim: the
	                               successors of one that ends wait in the store */
	bool starved;               /* waits in the client's list for a transfer slot */
	struct fh_endpoint *starved_next;
	int32_t consecutive_failures;
	int64_t failing_since;      /* client clock; 0: not failing */
	fh_breaker breaker;
	int64_t breaker_until;
	int64_t cooldown_ms;
	bool probe_out;
	uint64_t queued, delivered, retried, gave_up, abandoned, released;
	/* Attempts and how long they took, for flaghook_metrics: a count per
	 * latency bucket (engine/notify.c; not cumulative), the last +Inf. */
	uint64_t attempts;
	uint64_t latency[FH_LATENCY_BUCKETS + 1];
	int64_t latency_sum_us;
} fh_endpoint;

/* One rendered body, shared by every delivery of that shape. */
typedef struct fh_body {
	atomic_int refs;
	flaghook_buf buf;
	char event_id[37];
	int32_t event_type;
	int64_t emit_us;            /* client clock at emit */
} fh_body;

#define FH_MAX_HEADERS 9

/*
 * One attempt: the request handed to the transport and what comes back.
 * Everything the transport sees lives here until its done is called.
 */
typedef struct fh_attempt {
	struct fh_attempt *next_free; /* in the client's cache */
	flaghook_request req;
	flaghook_response resp;
	flaghook_header h[FH_MAX_HEADERS];
	const char *addr_ptr[FH_MAX_ADDRS];
	fh_dns dns;                 /* the name's answer for this attempt */
	char signature[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	char ts[24];
	char *standard;             /* webhook-signature value (allocated) */
	size_t standard_size;
	char *response;             /* max_response_bytes, allocated */
	/* The outcome, once finished. */
	bool ran;                   /* handed to the transport (else prepare ended it) */
	int rc;                     /* the transport could not run: a negative code */
	int32_t status;
	int32_t errclass;
	char error[256];
	char retry_after[64];
	size_t response_len;
	int64_t started_us, finished_us; /* wall clock */
} fh_attempt;

typedef enum fh_job_state { FH_JOB_READY, FH_JOB_WAITING, FH_JOB_RUNNING } fh_job_state;

typedef struct fh_job {
	struct fh_job *next;        /* ready list, or a batch */
	struct fh_job *all_prev, *all_next; /* every pending job of the client */
	fh_endpoint *ep;            /* holds a reference */
	fh_body *body;              /* holds a reference */
	flaghook_delivery d;
	fh_job_state state;
	int64_t due;                /* client clock, while waiting */
	bool holds_slot;            /* FIFO: keeps the endpoint's slot while waiting */
	bool is_probe;              /* sent while the circuit was half-open */
	bool holds_transfer;        /* counted in the client's transfers */
	int32_t refusals;           /* executor refusals in a row */
	const char *finish_reason;  /* non-NULL: finish without an attempt, giving this */
	int32_t last_status, last_errclass;
	char *last_error;
	fh_attempt *at;             /* the attempt in flight, while RUNNING */
} fh_job;

/* A job on the timer heap: a retry, or a circuit to half-open. */
typedef struct fh_timer {
	int64_t due;
	fh_job *job;
	fh_endpoint *ep;            /* holds a reference */
} fh_timer;

struct flaghook_client {
	flaghook_allocator allocator_copy;
	const flaghook_allocator *allocator; /* NULL or &allocator_copy */
	int32_t mode;
	int64_t connect_timeout_ms;
	int64_t timeout_ms;
	size_t max_body_bytes;
	size_t max_response_bytes;
	char *user_agent;
	char *ca_file, *ca_path, *proxy;
	fh_proxy proxy_parts;       /* the proxy without, and its credentials */
	int32_t tls_min_version;
	fh_guard guard;
	flaghook_transport transport;
	bool own_transport;         /* the default: it runs on our loop */
	flaghook_storage storage;
	void (*on_result)(const flaghook_result *, void *);
	void (*on_attempt)(const flaghook_result *, void *);
	void (*on_endpoint_disabled)(uint64_t, int32_t, void *);
	void *user_data;

	pthread_rwlock_t lock;      /* guards the endpoint list */
	fh_endpoint **endpoints;
	size_t endpoint_count, endpoint_cap;
	uint64_t next_endpoint_id;

	pthread_mutex_t error_lock;
	char last_error[512];

	/* ---- what the host is told (engine/notify.c) ---- */
	void (*on_log)(int32_t, const char *, void *);
	int32_t log_level;
	bool result_queue;
	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	struct fh_record *queue_head, *queue_tail;
	size_t queue_logs;          /* log records waiting: bounded, results are not */
	int queue_fd;               /* eventfd: readable exactly while any wait; -1 */
	uint64_t logs_dropped;

	/* ---- the I/O loop (engine/run.c) ---- */
	struct fh_loop *loop;
	pthread_mutex_t driver;     /* whoever runs the loop holds it */
	int wake_fd;                /* eventfd: finished transfers, stop */
	int timer_fd;               /* timerfd: the heap's next due time */
	struct fh_watch *wake_w, *timer_w;
	bool has_io_thread;
	pthread_t io_thread;
	atomic_int stop_io;
	/* Finished transfers waiting to be finished (any thread appends). */
	pthread_mutex_t done_lock;
	fh_job *done_head, *done_tail;
	bool done_signalled;

	/* Attempt blocks (an attempt and its reply buffer) kept for reuse:
	 * allocating and freeing 64 KiB per attempt costs page faults and
	 * heap trims. */
	pthread_mutex_t cache_lock;
	struct fh_attempt *attempt_cache;
	size_t attempt_cached;
	/* Threads waiting on `progress` (run_until): only then is it signalled. */
	int waiters;

	/* ---- the asynchronous engine ---- */
	fh_policy policy;
	int32_t max_in_flight;
	int32_t max_transfers;
	int32_t breaker_threshold;
	int64_t breaker_cooldown_ms;
	int64_t disable_after_ms;
	int64_t shutdown_timeout_ms;
	size_t max_pending;
	int64_t emit_wait_ms;
	int32_t timers;
	int64_t (*clock)(void *);
	flaghook_executor executor;
	bool inline_executor;       /* TICK mode without an executor: the host's thread */
	struct fh_pool *pool;       /* plugins/executor_pool.c */

	pthread_mutex_t engine_lock;
	pthread_cond_t progress;    /* a delivery finished or a job returned */
	bool engine_started;
	fh_timer *heap;
	size_t heap_len, heap_cap;
	int64_t armed;              /* the due time timer_fd is armed for (client clock) */
	fh_job *all_jobs;
	size_t pending;             /* accepted, not finished */
	size_t running;             /* jobs RUNNING: handed out, not finished */
	int32_t transfers;          /* attempts in flight, every endpoint */
	fh_endpoint *starved_head, *starved_tail; /* waiting for a transfer slot */
	bool closing;
	atomic_int aborting;
	uint64_t rng;
	/* Claiming from the store (a store with claim, ASYNC mode). */
	bool durable;               /* the store keeps what shutdown leaves */
	int64_t poll_interval_ms;
	int64_t next_poll;          /* client clock */
	bool poll_soon;             /* poll at the next chance, not at next_poll */
	bool polling;               /* a claim is running (one at a time) */
	bool poll_queued;           /* a poll job was handed to the executor */
	bool poll_blocked;          /* a poll stopped: max_pending was reached */
};

/* Something changed that a waiter may be waiting for (engine lock held):
 * wakes the threads in run_until, if any. */
static inline void flaghook__progress(flaghook_client *c)
{
	if (c->waiters)
		pthread_cond_broadcast(&c->progress);
}

/* Copies the thread's last error into the client; returns rc. */
int flaghook__client_fail(flaghook_client *c, int rc);
/* The client's clock (the caller's, or CLOCK_MONOTONIC), microseconds. */
int64_t flaghook__clock(flaghook_client *c);

#endif
