/*
 * libflaghook: the client, its endpoints, and emitting: what a flag
 * server calls.  Include <flaghook.h>, not this file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_CLIENT_H
#define FLAGHOOK_CLIENT_H

#include "common.h"
#include "event.h"
#include "outbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TLS versions (flaghook_client_options.tls_min_version). */
#define FLAGHOOK_TLS_1_2 0x0303
#define FLAGHOOK_TLS_1_3 0x0304

/* ------------------------------------------------------------------ */
/* Client                                                              */

/* What happened to one delivery; valid only during the callback. */
#define FLAGHOOK_RESULT_VERSION 1
typedef struct flaghook_result {
	unsigned int version;       /* FLAGHOOK_RESULT_VERSION of the library */
	uint64_t endpoint_id;
	const char *event_id;
	int32_t event_type;
	int32_t outcome;            /* FLAGHOOK_OUTCOME_* */
	int32_t status;             /* last HTTP status, 0 when none */
	int32_t errclass;           /* FLAGHOOK_ERRCLASS_* of the last attempt */
	int32_t attempts;
	int64_t elapsed_us;         /* from emit to this result */
	const char *error;          /* detail, "" when none; never a secret */
	const char *response;       /* response excerpt (not NUL-safe: see response_len) */
	size_t response_len;
} flaghook_result;

#define FLAGHOOK_MODE_SYNC  0       /* emit tries every endpoint before it returns */
#define FLAGHOOK_MODE_ASYNC 1       /* emit queues and returns; retries on a timer */

/*
 * Who runs the library's I/O and timers.
 *
 * FLAGHOOK_TIMERS_THREAD (default): in ASYNC mode the library starts one
 * I/O thread, which moves every transfer of the default transport (one
 * libcurl multi handle) and runs the retry and circuit timers, and, unless
 * the caller hands in an executor, a built-in pool (`threads`).  In SYNC
 * mode it starts no thread: flaghook_emit drives the transfers it started.
 *
 * FLAGHOOK_TIMERS_TICK: the library starts no thread at all.  The host
 * watches one file descriptor (flaghook_fd) in its own event loop and
 * calls flaghook_tick() whenever it is readable (and when the time
 * flaghook_tick last returned in *next_ms has passed).  Signing, name
 * lookups, store writes and callbacks then run on the caller's executor,
 * or, with none, on the host's thread inside flaghook_emit and
 * flaghook_tick.
 *
 * Which thread runs what (ASYNC, default transport):
 *   flaghook_emit's thread  validate, render, route, storage put
 *   executor (pool) thread  sign, resolve and vet the address, start the
 *                           transfer; then classify the reply, decide,
 *                           storage record, on_attempt/on_result; storage
 *                           claim (polls)
 *   I/O thread (or tick)    sockets, TLS, HTTP; timers; hands finished
 *                           transfers to the executor in batches.  It
 *                           never calls the store or a callback (unless
 *                           the caller's executor runs jobs inline, or
 *                           still refuses them once flaghook_client_free's
 *                           shutdown_timeout_ms has passed).
 */
#define FLAGHOOK_TIMERS_THREAD 0
#define FLAGHOOK_TIMERS_TICK   1

/* Why an endpoint was disabled (on_endpoint_disabled). */
#define FLAGHOOK_DISABLED_GONE    1 /* it answered 410 Gone */
#define FLAGHOOK_DISABLED_FAILING 2 /* it failed for disable_after_ms without a success */

/* Retry policies. */
#define FLAGHOOK_RETRY_FLAGSMITH 0 /* 3 attempts, 2 s then 4 s, transport errors only */
#define FLAGHOOK_RETRY_STANDARD  1 /* 8 attempts over ~28 h with jitter; every
                                      failure without an HTTP reply (timeout,
                                      connect, DNS, TLS, reset), 408, 429, 5xx;
                                      Retry-After; 410 disables the endpoint */

typedef struct flaghook_retry_policy {
	unsigned int version;
	int32_t kind;               /* FLAGHOOK_RETRY_* */
	/* Waits before the 2nd, 3rd, ... attempt, in ms; the last repeats.
	 * NULL: the kind's (flagsmith: 2000, 4000; standard: 5 s, 5 min,
	 * 30 min, 2 h, 5 h, 10 h, 10 h).  Copied by the client; at most
	 * FLAGHOOK_SCHEDULE_MAX entries. */
	const int64_t *schedule_ms;
	size_t schedule_count;
	int32_t max_attempts;       /* 0: the kind's (3; 8) */
	int32_t jitter_percent;     /* each wait +-this %; 0: the kind's (0; 20); <0: none */
	int64_t retry_after_cap_ms; /* longest Retry-After honoured; 0: 1 hour (standard only) */
	/* schedule_ms and schedule_count are set together or not at all. */
} flaghook_retry_policy;

#define FLAGHOOK_SCHEDULE_MAX 256
#define FLAGHOOK_RETRY_POLICY_VERSION 1
#define FLAGHOOK_RETRY_POLICY_INIT { FLAGHOOK_RETRY_POLICY_VERSION, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_retry_policy_init(flaghook_retry_policy *policy,
                                               unsigned int version);

typedef struct flaghook_client_options {
	unsigned int version;
	int32_t mode;               /* FLAGHOOK_MODE_* */
	int64_t connect_timeout_ms; /* 0: 10000 */
	int64_t timeout_ms;         /* 0: 10000 (whole request) */
	size_t max_body_bytes;      /* 0: 1 MiB; larger bodies are FLAGHOOK_ETOOBIG */
	size_t max_response_bytes;  /* 0: 64 KiB read from a reply, the rest dropped */
	const char *user_agent;     /* NULL: "libflaghook/<version>" */
	const char *ca_file;        /* NULL: the system CAs (default transport) */
	const flaghook_transport *transport; /* NULL: libcurl */
	const flaghook_executor *executor;   /* NULL: built-in */
	const flaghook_storage *storage;     /* NULL: memory */
	const flaghook_allocator *allocator; /* NULL: malloc */
	/* Called once per delivery with its final result.  In SYNC mode, on the
	 * thread that called flaghook_emit, before it returns.  In ASYNC mode,
	 * on the executor thread that finished the last attempt, or on the
	 * thread of the library call that ended the delivery without one
	 * (disabling an endpoint, shutdown, an executor that keeps refusing).
	 * The library is done with every callback and user_data once
	 * flaghook_client_free has returned. */
	void (*on_result)(const flaghook_result *result, void *user_data);
	void *user_data;
	/* Callbacks may call flaghook_emit and the endpoint functions, but not
	 * flaghook_flush or flaghook_client_free: those wait for the very
	 * callback that would be calling them.  A callback's own delivery is
	 * still pending while it runs, so an emit from it on a full queue
	 * waits (up to emit_wait_ms) like any other. */

	/* ---- asynchronous delivery (FLAGHOOK_MODE_ASYNC) ---- */
	int32_t threads;            /* built-in pool size when executor is NULL; 0: 4 */
	size_t max_pending;         /* deliveries accepted and not finished; 0: 100000
	                               (deliveries claimed from a store count too; a
	                               claim racing emits may pass it by one batch,
	                               at most 256) */
	int64_t emit_wait_ms;       /* when full: 0 returns FLAGHOOK_EFULL at once */
	const flaghook_retry_policy *retry;   /* NULL: FLAGHOOK_RETRY_FLAGSMITH */
	int32_t max_in_flight;      /* attempts in flight per endpoint; 0: 16 */
	int32_t breaker_threshold;  /* consecutive failed attempts that open the
	                               circuit; 0: 5; <0: no breaker */
	int64_t breaker_cooldown_ms;/* open this long, then one probe; 0: 30000 */
	int64_t disable_after_ms;   /* failing this long with no success disables
	                               the endpoint; 0: never */
	int64_t shutdown_timeout_ms;/* flaghook_client_free drains this long;
	                               0: 5000; <0: no drain, abandon at once */
	int32_t timers;             /* FLAGHOOK_TIMERS_THREAD or FLAGHOOK_TIMERS_TICK */
	/* Monotonic clock in microseconds for retry and breaker times; NULL:
	 * CLOCK_MONOTONIC.  Tests drive schedules with it and flaghook_tick(). */
	int64_t (*clock)(void *user_data);
	/* Called after every attempt (outcome RETRY, DELIVERED, GAVE_UP, or
	 * ABANDONED when shutdown cut it short): the hook for "webhook failed"
	 * mail.  On the thread that ran the attempt.  A transport that returns
	 * a negative code counts as a transport failure. */
	void (*on_attempt)(const flaghook_result *attempt, void *user_data);
	/* An endpoint was disabled (FLAGHOOK_DISABLED_*); its waiting
	 * deliveries are given up (on_result says so for each). */
	void (*on_endpoint_disabled)(uint64_t endpoint_id, int32_t reason, void *user_data);
	/* A store with claim (every store here): how often the client asks it
	 * for deliveries nobody holds (from a restart, a re-queue, or a dead
	 * process's expired lease); 0: 1000.  Adding an endpoint asks at once. */
	int64_t poll_interval_ms;

	/* ---- version 2: the network ---- */
	/* The SSRF guard.  Every address the default transport is about to
	 * connect to is vetted, and a host name is resolved and vetted before
	 * the transfer starts (the transfer then goes only to the addresses
	 * vetted, so DNS rebinding cannot redirect it).  Refused unless allowed
	 * here: loopback and "localhost", unspecified, private (10/8,
	 * 172.16/12, 192.168/16), carrier-grade NAT (100.64/10), link-local
	 * (169.254/16, fe80::/10: cloud metadata), unique-local (fc00::/7),
	 * multicast, documentation, benchmarking and reserved ranges, and the
	 * IPv6 forms that embed such an IPv4 address (mapped, compatible,
	 * NAT64, 6to4).  A refusal is final (FLAGHOOK_ERRCLASS_REFUSED); an IP
	 * literal in a refused range is refused already by
	 * flaghook_endpoint_add (FLAGHOOK_EREFUSED). */
	int32_t allow_private;      /* 1: allow every class but unspecified and
	                               multicast (intranet receivers, tests) */
	const char *const *allow_cidrs; /* always allowed: "10.1.0.0/16", "fd00::/8", ... */
	size_t allow_cidr_count;
	/* A proxy for every request ("http://proxy:3128"; http, https, socks4,
	 * socks4a, socks5 or socks5h; user:password@ allowed and never shown in
	 * a message); NULL: none.  http_proxy, https_proxy and no_proxy from
	 * the environment are ignored: no host goes around the proxy.  With a
	 * proxy the guard does not vet addresses: the proxy connects, so it
	 * must do the egress filtering (as Stripe's smokescreen does). */
	const char *proxy;
	int32_t tls_min_version;    /* 0: FLAGHOOK_TLS_1_2; or FLAGHOOK_TLS_1_3 */
	const char *ca_path;        /* a directory of CA certificates (c_rehash'd) */
	int32_t max_transfers;      /* attempts in flight at once, every endpoint
	                               together; 0: 1000 */
	int32_t max_host_connections; /* connections open to one host; 0: no limit */
	int32_t http_version;       /* FLAGHOOK_HTTP_* */

	/* ---- version 3: for bindings and operators ---- */
	/* 1: every final result, endpoint disabled and log record (at
	 * log_level) is also queued as one line of JSON for
	 * flaghook_result_next(), and the descriptor from flaghook_results_fd()
	 * is readable while any waits: for hosts that cannot take callbacks on
	 * library threads (Python, Node).  The callbacks above still run. */
	int32_t result_queue;
	/* Log records at log_level and more severe, on whichever thread the
	 * event happened (user_data as above).  Never a secret or a URL's
	 * credentials: endpoints are named by id.  NULL: none. */
	void (*on_log)(int32_t level, const char *message, void *user_data);
	int32_t log_level;          /* FLAGHOOK_LOG_*; 0: FLAGHOOK_LOG_WARN */
	/* The library is done with every callback here and user_data once
	 * flaghook_client_free has returned: a binding may release them then
	 * and not before. */
} flaghook_client_options;

/* Log levels (on_log, log_level). */
#define FLAGHOOK_LOG_ERROR 1
#define FLAGHOOK_LOG_WARN  2
#define FLAGHOOK_LOG_INFO  3
#define FLAGHOOK_LOG_DEBUG 4

/* HTTP versions (flaghook_client_options.http_version). */
#define FLAGHOOK_HTTP_DEFAULT 0  /* HTTP/2 over TLS when the receiver offers it */
#define FLAGHOOK_HTTP_1_1     1  /* HTTP/1.1 only */

#define FLAGHOOK_CLIENT_OPTIONS_VERSION 3
#define FLAGHOOK_CLIENT_OPTIONS_INIT \
	{ FLAGHOOK_CLIENT_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
	  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
	  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_client_options_init(flaghook_client_options *opts,
                                                 unsigned int version);

/* NULL opts: every default.  The client copies what it needs from opts.
 * On success the client owns the transport's and storage's user_data and
 * calls their destroy in flaghook_client_free(); on failure it calls
 * neither, and they stay the caller's. */
FLAGHOOK_EXTERN int flaghook_client_new(flaghook_client **out,
                                        const flaghook_client_options *opts);
/* NULL is a no-op.  Secrets are zeroed before their memory is released. */
FLAGHOOK_EXTERN void flaghook_client_free(flaghook_client *client);

/*
 * Copies the detail of the client's most recent failure (from any thread)
 * into buf, NUL-terminated and truncated to buf_size.  Returns the length of
 * the full message.
 */
FLAGHOOK_EXTERN size_t flaghook_client_last_error(const flaghook_client *client,
                                                  char *buf, size_t buf_size);

/* The client's store (its own table; the client still owns it), for
 * flaghook_storage_list, _attempts and _requeue. */
FLAGHOOK_EXTERN int flaghook_client_storage(flaghook_client *client,
                                            const flaghook_storage **out);
/* flaghook_storage_requeue on the client's store, then sends what it
 * re-queued without waiting for a poll. */
FLAGHOOK_EXTERN int flaghook_client_requeue(flaghook_client *client, const flaghook_query *query,
                                            uint64_t *count);

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */

#define FLAGHOOK_SCOPE_ENVIRONMENT  1
#define FLAGHOOK_SCOPE_ORGANISATION 2

/* Event mask bit for an event type. */
#define FLAGHOOK_EVENT_BIT(type) (1u << (type))
/* Environment default: FLAG_UPDATED, FLAG_DELETED, NEW_VERSION_PUBLISHED.
 * Organisation default: AUDIT_LOG_CREATED, FLAG_UPDATED, FLAG_DELETED. */
#define FLAGHOOK_EVENTS_DEFAULT 0u

typedef struct flaghook_endpoint_options {
	unsigned int version;
	int32_t scope;              /* FLAGHOOK_SCOPE_* */
	int64_t scope_id;           /* the environment or organisation id */
	const char *url;            /* http:// or https:// */
	const char *secret;         /* nullable: no X-Flagsmith-Signature */
	size_t secret_len;
	uint32_t events;            /* FLAGHOOK_EVENT_BIT()s, or FLAGHOOK_EVENTS_DEFAULT */
	int32_t disabled;           /* registered but not sent to */
	int32_t profile;            /* FLAGHOOK_PROFILE_* */
	uint32_t render_flags;      /* FLAGHOOK_RENDER_* */
	/* Standard Webhooks: "whsec_..." secrets; several during a rotation
	 * (at most FLAGHOOK_STANDARD_SECRETS_MAX).  With any given,
	 * webhook-id/-timestamp/-signature headers are sent. */
	const char *const *standard_secrets;
	size_t standard_secret_count;
	/* Asynchronous delivery. */
	int32_t fifo;               /* one in flight, in emit order, retries included */
	int32_t max_in_flight;      /* 0: the client's */
	const flaghook_retry_policy *retry; /* NULL: the client's */
	/* The endpoint's id, unique in the client; 0: the library picks the
	 * next free one.  A durable store needs one given (FLAGHOOK_EINVAL
	 * otherwise), the same in every run (its row's key, say): stored
	 * deliveries name their endpoint by id, and a restarted client resumes
	 * them for the endpoint registered under it. */
	uint64_t id;

	/* ---- version 2: TLS, checked by flaghook_endpoint_add ---- */
	const char *ca_file;        /* NULL: the client's */
	const char *ca_path;        /* NULL: the client's */
	/* Mutual TLS: a PEM certificate and its key (both or neither); the key
	 * may be encrypted with client_key_password (copied, wiped on free). */
	const char *client_cert;
	const char *client_key;
	const char *client_key_password;
} flaghook_endpoint_options;

#define FLAGHOOK_STANDARD_SECRETS_MAX 8
#define FLAGHOOK_ENDPOINT_OPTIONS_VERSION 2
#define FLAGHOOK_ENDPOINT_OPTIONS_INIT \
	{ FLAGHOOK_ENDPOINT_OPTIONS_VERSION, FLAGHOOK_SCOPE_ENVIRONMENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
	  0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_endpoint_options_init(flaghook_endpoint_options *opts,
                                                   unsigned int version);

/* Registers an endpoint; its id goes to *out_id (may be NULL).  An id
 * already registered is FLAGHOOK_EINVAL; a URL whose host is an IP literal
 * the client's guard refuses is FLAGHOOK_EREFUSED; TLS files that do not
 * load (or a key that does not match its certificate) FLAGHOOK_EINVAL. */
FLAGHOOK_EXTERN int flaghook_endpoint_add(flaghook_client *client, uint64_t *out_id,
                                          const flaghook_endpoint_options *opts);
FLAGHOOK_EXTERN int flaghook_endpoint_remove(flaghook_client *client, uint64_t id);
/* A disabled endpoint gets no new events; in ASYNC mode the deliveries
 * still waiting for it in this client are given up (on_result says so for
 * each).  With a shared store, FIFO deliveries waiting unheld in the store
 * stay there for a process that still sends to the endpoint. */
FLAGHOOK_EXTERN int flaghook_endpoint_set_enabled(flaghook_client *client, uint64_t id,
                                                  int enabled);

/* Counters of one endpoint, readable at any time. */
typedef struct flaghook_endpoint_stats {
	unsigned int version;
	uint64_t queued;            /* accepted, waiting to be sent or for a retry */
	uint64_t in_flight;         /* being sent now */
	uint64_t delivered;
	uint64_t retried;           /* failed attempts that were scheduled again */
	uint64_t gave_up;
	uint64_t abandoned;         /* left at shutdown */
	int32_t disabled;           /* 1 when disabled (by the caller or the library) */
	int32_t breaker_open;       /* 1 while the circuit is open */
	int32_t consecutive_failures;
	uint64_t released;          /* left pending in a durable store at shutdown */
} flaghook_endpoint_stats;

#define FLAGHOOK_ENDPOINT_STATS_VERSION 1
#define FLAGHOOK_ENDPOINT_STATS_INIT { FLAGHOOK_ENDPOINT_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
/* Fills *out (whose version the caller sets) for endpoint id. */
FLAGHOOK_EXTERN int flaghook_endpoint_stats_get(flaghook_client *client, uint64_t id,
                                                flaghook_endpoint_stats *out);

/* Counters of the whole client, readable at any time. */
typedef struct flaghook_client_stats {
	unsigned int version;
	uint64_t pending;           /* accepted, not finished (ASYNC) */
	uint64_t running;           /* attempts under way, or being reported */
	uint64_t transfers;         /* of those, requests on the wire */
	uint64_t waiting;           /* on a timer: retries and circuits */
} flaghook_client_stats;

#define FLAGHOOK_CLIENT_STATS_VERSION 1
#define FLAGHOOK_CLIENT_STATS_INIT { FLAGHOOK_CLIENT_STATS_VERSION, 0, 0, 0, 0 }
/* Fills *out (whose version the caller sets). */
FLAGHOOK_EXTERN int flaghook_client_stats_get(flaghook_client *client, flaghook_client_stats *out);

/* ------------------------------------------------------------------ */
/* Emitting                                                            */

/*
 * Validates and renders `event`, then delivers it to every enabled endpoint
 * whose scope and event mask match.  In SYNC mode it returns after each has
 * been tried once: 0 when every one answered 2xx (or none matched),
 * FLAGHOOK_EDELIVERY when any did not; on_result tells which.  Invalid input
 * returns its code and nothing is sent.  Safe from many threads at once.
 *
 * Every delivery is recorded in the store before its first attempt; with a
 * durable store emit returns only once they are durable, and a store
 * failure (FLAGHOOK_ESTORAGE: the database went away, the disk is full)
 * means nothing of the event was recorded or sent.  Each request carries
 * the event's id in X-Flaghook-Event-Id (and webhook-id with Standard
 * Webhooks): the same across endpoints, retries and restarts, so a
 * receiver can drop the duplicates at-least-once delivery allows.
 */
FLAGHOOK_EXTERN int flaghook_emit(flaghook_client *client, const flaghook_event *event);

/*
 * ASYNC mode: waits until every accepted delivery has finished (delivered
 * or given up) or timeout_ms has passed (FLAGHOOK_ETIMEOUT).  In TICK mode
 * it runs the timers itself while it waits.  SYNC mode: returns 0.
 */
FLAGHOOK_EXTERN int flaghook_flush(flaghook_client *client, int64_t timeout_ms);

/*
 * TICK mode: runs what waits: transfers' I/O, finished transfers, retries
 * whose time has come, circuits whose cooldown is over, store polls.  It
 * never waits for a transfer.  Without an executor of the caller's, the
 * work one would run runs here and in flaghook_emit, and that includes
 * the SSRF guard's name lookup (a blocking getaddrinfo) for an endpoint
 * whose URL names a host, when its cached answer has expired (an answer
 * is kept 30 s, a name that does not resolve 5 s); hand in an executor to
 * keep lookups off the host's thread.  *next_ms (may be NULL) gets how long until
 * it should be called again at the latest, -1 when nothing waits on a
 * timer; the descriptor from flaghook_fd becomes readable sooner when
 * there is more to do.
 */
FLAGHOOK_EXTERN int flaghook_tick(flaghook_client *client, int64_t *next_ms);

/*
 * TICK mode (ASYNC or SYNC): the one file descriptor a host's event loop
 * watches for reading (poll, epoll, libuv, asyncio's add_reader); when it
 * is readable, call flaghook_tick().  It stays the same for the client's
 * life; do not read it or close it.  Other modes: FLAGHOOK_EINVAL.
 */
FLAGHOOK_EXTERN int flaghook_fd(flaghook_client *client, int *out_fd);

/*
 * What the SSRF guard would say about a URL, without sending anything: for
 * a server's "save webhook" form.  Parses it as flaghook_endpoint_add does,
 * then resolves its host (a blocking name lookup) and vets every address
 * with the client's guard settings (NULL client: the defaults, which allow
 * no private address).  0: it may be sent to; FLAGHOOK_EURL: not an
 * acceptable URL; FLAGHOOK_EREFUSED: it names or resolves to a refused
 * address (the detail says which class, never the URL); FLAGHOOK_ETRANSPORT:
 * the name does not resolve.  Later deliveries are vetted again when they
 * connect: a name's addresses can change.
 */
FLAGHOOK_EXTERN int flaghook_url_check(const flaghook_client *client, const char *url);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_CLIENT_H */
