/* The client handle, its endpoints and the asynchronous engine's state,
 * shared by client.c, endpoint.c, dispatch.c and engine.c. */
#ifndef FLAGHOOK_CLIENT_H
#define FLAGHOOK_CLIENT_H

#include "internal.h"
#include "policy.h"

#include <pthread.h>
#include <stdatomic.h>

struct fh_job;
typedef struct fh_pool fh_pool;

typedef enum fh_breaker { FH_CLOSED, FH_OPEN, FH_HALF_OPEN } fh_breaker;

typedef struct fh_endpoint {
	uint64_t id;
	struct flaghook_client *client;
	int32_t scope;
	int64_t scope_id;
	uint32_t events;            /* resolved mask, never 0 */
	int32_t profile;
	uint32_t render_flags;
	char *url;
	char *secret;               /* NULL: no X-Flagsmith-Signature */
	size_t secret_len;
	char **standard_secrets;
	size_t standard_secret_count;
	atomic_int enabled;
	atomic_int refs;            /* the registry's, every job's and timer's */

	/* Asynchronous delivery; guarded by the client's engine lock. */
	fh_policy policy;
	bool fifo;
	int32_t max_in_flight;
	struct fh_job *ready_head, *ready_tail;
	int32_t in_flight;          /* attempts running now */
	bool fifo_busy;             /* FIFO: a delivery is running or awaits its retry */
	bool fifo_via_claim;        /* FIFO deliveries have come through claim: the
	                               successors of one that ends wait in the store */
	int32_t consecutive_failures;
	int64_t failing_since;      /* client clock; 0: not failing */
	fh_breaker breaker;
	int64_t breaker_until;
	int64_t cooldown_ms;
	bool probe_out;
	uint64_t queued, delivered, retried, gave_up, abandoned, released;
} fh_endpoint;

/* One rendered body, shared by every delivery of that shape. */
typedef struct fh_body {
	atomic_int refs;
	flaghook_buf buf;
	char event_id[37];
	int32_t event_type;
	int64_t emit_us;            /* client clock at emit */
} fh_body;

typedef enum fh_job_state { FH_JOB_READY, FH_JOB_WAITING, FH_JOB_RUNNING } fh_job_state;

typedef struct fh_job {
	struct fh_job *next;        /* ready list */
	struct fh_job *all_prev, *all_next; /* every pending job of the client */
	fh_endpoint *ep;            /* holds a reference */
	fh_body *body;              /* holds a reference */
	flaghook_delivery d;
	fh_job_state state;
	int64_t due;                /* client clock, while waiting */
	bool holds_slot;            /* FIFO: keeps the endpoint's slot while waiting */
	bool is_probe;              /* sent while the circuit was half-open */
	int32_t refusals;           /* executor refusals in a row */
	const char *finish_reason;  /* non-NULL: finish without an attempt, giving this */
	int32_t last_status, last_errclass;
	char *last_error;
} fh_job;

typedef struct fh_timer {
	int64_t due;
	fh_job *job;                /* a retry, or */
	fh_endpoint *ep;            /* a circuit to half-open (holds a reference) */
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
	flaghook_transport transport;
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

	/* ---- the asynchronous engine (engine.c) ---- */
	fh_policy policy;
	int32_t max_in_flight;
	int32_t breaker_threshold;
	int64_t breaker_cooldown_ms;
	int64_t disable_after_ms;
	int64_t shutdown_timeout_ms;
	size_t max_pending;
	int64_t emit_wait_ms;
	int32_t timers;
	int64_t (*clock)(void *);
	flaghook_executor executor;
	fh_pool *pool;

	pthread_mutex_t engine_lock;
	pthread_cond_t progress;    /* a delivery finished or a job returned */
	pthread_cond_t wake;        /* the timer heap changed */
	bool engine_started;
	fh_timer *heap;
	size_t heap_len, heap_cap;
	fh_job *all_jobs;
	size_t pending;             /* accepted, not finished */
	size_t running;             /* handed to the executor, not returned */
	bool closing;
	atomic_int aborting;
	bool stop_scheduler;
	bool has_scheduler;
	pthread_t scheduler;
	uint64_t rng;
	/* Claiming from the store (a store with claim, ASYNC mode). */
	bool durable;               /* the store keeps what shutdown leaves */
	int64_t poll_interval_ms;
	int64_t next_poll;          /* client clock */
	bool poll_soon;             /* poll at the next chance, not at next_poll */
	bool polling;               /* a claim is running (one at a time) */
	bool poll_blocked;          /* a poll stopped: max_pending was reached */
};

/* Copies the thread's last error into the client; returns rc. */
int flaghook__client_fail(flaghook_client *c, int rc);
int64_t flaghook__clock(flaghook_client *c);

void flaghook__endpoint_release(flaghook_client *c, fh_endpoint *ep);
/* The registered endpoint with this id, with a reference taken; NULL if none. */
fh_endpoint *flaghook__endpoint_find(flaghook_client *c, uint64_t id);
/* Takes a reference on every enabled endpoint that should get an event of
 * this type and scope.  *out is allocated; count in *n. */
int flaghook__route(flaghook_client *c, int type, int64_t env_id, int64_t org_id,
                    fh_endpoint ***out, size_t *n);
void flaghook__endpoints_free(flaghook_client *c);

/* One attempt of one delivery (dispatch.c): sign, send, no decision. */
typedef struct fh_attempt {
	int rc;                     /* the transport could not run: a negative code */
	int32_t status;
	int32_t errclass;
	char error[256];
	char retry_after[64];
	char *response;             /* excerpt, response_len bytes */
	size_t response_len;
	int64_t started_us, finished_us; /* wall clock */
} fh_attempt;
/* storage.put, with the store's detail in the error; ESTORAGE or ENOMEM. */
int flaghook__storage_put(flaghook_client *c, flaghook_delivery *ds, size_t n);
/* Books an attempt (or, number 0, an end without one) in the store. */
int flaghook__record(flaghook_client *c, const flaghook_delivery *d, int outcome, const fh_attempt *at,
                     int32_t number, int64_t next_attempt_us);
void flaghook__attempt(flaghook_client *c, const fh_endpoint *ep, const flaghook_delivery *d,
                       fh_attempt *out, char *response_buf);
void flaghook__result(flaghook_result *res, const fh_endpoint *ep, const flaghook_delivery *d,
                      int32_t event_type, int outcome, const fh_attempt *at, int64_t elapsed_us);

/* The engine (engine.c). */
int flaghook__engine_start(flaghook_client *c, int threads);
int flaghook__cancelled(void *client);
void flaghook__engine_stop(flaghook_client *c);
/* Hands n new jobs to the engine; on failure frees none of them. */
int flaghook__engine_accept(flaghook_client *c, fh_job **jobs, size_t n);
void flaghook__body_release(flaghook_client *c, fh_body *b);
/* Enables ep afresh (failures and circuit reset) and sends what waited. */
void flaghook__engine_enable(flaghook_client *c, fh_endpoint *ep);
/* Asks the store for unheld deliveries at the next chance (new endpoint,
 * a FIFO delivery finished, a re-queue). */
void flaghook__engine_poll_soon(flaghook_client *c);
/* Polls in the caller's thread, after any poll under way (a new endpoint:
 * what waits for it is queued before the caller's next emit). */
void flaghook__engine_poll_now(flaghook_client *c);
/* Disables ep and gives up its waiting deliveries, reporting each. */
void flaghook__engine_disable(flaghook_client *c, fh_endpoint *ep, const char *why);

/* The built-in pool (executor_pool.c). */
int flaghook__pool_start(fh_pool **out, int threads, const flaghook_allocator *a);
int flaghook__pool_submit(void (*job)(void *), void *arg, void *user_data);
void flaghook__pool_stop(fh_pool *p);

#endif
