/*
 * libflaghook: the outbox's records (deliveries, attempts, their outcomes
 * and error classes) and how to inspect and replay them on any store.
 * Include <flaghook.h>, not this file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_OUTBOX_H
#define FLAGHOOK_OUTBOX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Deliveries and attempts: the outbox's records                     */

/* Error classes of a delivery attempt. */
#define FLAGHOOK_ERRCLASS_NONE     0  /* an HTTP response arrived */
#define FLAGHOOK_ERRCLASS_CONNECT  1  /* could not connect */
#define FLAGHOOK_ERRCLASS_TIMEOUT  2
#define FLAGHOOK_ERRCLASS_DNS      3
#define FLAGHOOK_ERRCLASS_TLS      4
#define FLAGHOOK_ERRCLASS_SEND     5
#define FLAGHOOK_ERRCLASS_RECV     6  /* reset or closed before a full reply */
#define FLAGHOOK_ERRCLASS_HTTP     7  /* a response that is not 2xx */
#define FLAGHOOK_ERRCLASS_OTHER    8
#define FLAGHOOK_ERRCLASS_REFUSED  9  /* the SSRF guard refused the address:
                                         final, never retried */

/* "none", "connect", "timeout", ...; "unknown" otherwise. */
FLAGHOOK_EXTERN const char *flaghook_errclass_name(int errclass);

/* Where a delivery stands in the store. */
#define FLAGHOOK_DELIVERY_PENDING   0   /* waiting, being sent, or waiting to retry */
#define FLAGHOOK_DELIVERY_DELIVERED 1
#define FLAGHOOK_DELIVERY_DEAD      2   /* given up: a dead letter, until re-queued */

/* A delivery as the storage plug-in sees it: the library fills it for put,
 * a store fills it for claim and list (its pointers valid only during that
 * call). */
#define FLAGHOOK_DELIVERY_VERSION 1
typedef struct flaghook_delivery {
	unsigned int version;       /* FLAGHOOK_DELIVERY_VERSION of whoever filled it */
	uint64_t id;                /* assigned by the store's put; never 0 */
	const char *event_id;       /* UUID text: the same for every endpoint, retry and restart */
	int32_t event_type;
	uint64_t endpoint_id;
	const void *body;
	size_t body_len;
	int32_t attempts;           /* attempts made so far */
	int64_t created_us;         /* wall clock at emit */
	int64_t next_attempt_us;    /* wall clock */
	int32_t fifo;               /* the endpoint takes its deliveries in order */
	/* put: the store sets 1 when this client holds the delivery now, 0 when
	 * it must come through claim (a shared store keeps FIFO deliveries for
	 * claim, which hands out only an endpoint's oldest). */
	int32_t claimed;
	int32_t state;              /* FLAGHOOK_DELIVERY_* (claim, list) */
	int32_t last_status;        /* list: the last attempt's HTTP status, 0 none */
	int64_t updated_us;         /* list: wall clock of the last change */
} flaghook_delivery;

/* Outcome of one attempt, for storage and callbacks. */
#define FLAGHOOK_OUTCOME_DELIVERED 0
#define FLAGHOOK_OUTCOME_RETRY     1  /* will be tried again */
#define FLAGHOOK_OUTCOME_GAVE_UP   2  /* final failure: a dead letter */
#define FLAGHOOK_OUTCOME_ABANDONED 3  /* not completed by flaghook_client_free's
                                         deadline, and the store does not keep it */
#define FLAGHOOK_OUTCOME_RELEASED  4  /* not completed by flaghook_client_free's
                                         deadline; a durable store keeps it pending
                                         and the next client to open it resumes it */

/* "delivered", "retry", "gave_up", "abandoned", "released"; "unknown"
 * otherwise (as the result queue's records and the metrics name them). */
FLAGHOOK_EXTERN const char *flaghook_outcome_name(int outcome);

/* One attempt (or the end of a delivery without one), as recorded. */
#define FLAGHOOK_ATTEMPT_VERSION 1
typedef struct flaghook_attempt {
	unsigned int version;       /* FLAGHOOK_ATTEMPT_VERSION of whoever filled it */
	uint64_t delivery_id;
	uint64_t endpoint_id;
	const char *event_id;
	int32_t number;             /* 1 for the first attempt; 0: none was made */
	int32_t outcome;            /* FLAGHOOK_OUTCOME_* */
	int32_t status;             /* HTTP status, 0 when none */
	int32_t errclass;           /* FLAGHOOK_ERRCLASS_* */
	int64_t started_us;         /* wall clock */
	int64_t finished_us;        /* wall clock */
	int64_t next_attempt_us;    /* RETRY: wall clock of the next attempt */
	const char *error;          /* detail, "" when none; never a secret */
	const void *response;       /* reply excerpt */
	size_t response_len;
} flaghook_attempt;

/* Which deliveries or attempts a list or re-queue means.  Unset members
 * match everything. */
#define FLAGHOOK_STATE_ANY -1
#define FLAGHOOK_QUERY_VERSION 1
typedef struct flaghook_query {
	unsigned int version;
	int32_t state;              /* FLAGHOOK_DELIVERY_*, or FLAGHOOK_STATE_ANY */
	uint64_t delivery_id;       /* 0: any */
	uint64_t endpoint_id;       /* 0: any */
	int64_t since_us;           /* deliveries created (attempts started) at or after; 0: any */
	size_t limit;               /* 0: no limit */
} flaghook_query;

#define FLAGHOOK_QUERY_INIT { FLAGHOOK_QUERY_VERSION, FLAGHOOK_STATE_ANY, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_query_init(flaghook_query *query, unsigned int version);

/*
 * Inspection and replay, on any store (a client's, through
 * flaghook_client_storage(), or one opened only to look):
 * flaghook_storage_list lists deliveries (dead letters: state
 * FLAGHOOK_DELIVERY_DEAD), flaghook_storage_attempts the attempt log, and
 * flaghook_storage_requeue sends again one delivery (delivery_id), every
 * dead letter of an endpoint (state DEAD, endpoint_id), or everything
 * created since a time (since_us); *count (may be NULL) gets how many.  A
 * running client with a durable store picks re-queued deliveries up at its
 * next poll; flaghook_client_requeue re-queues through a client and sends
 * at once (ASYNC mode; in TICK mode at the next flaghook_tick).  A SYNC
 * client never claims: it neither resumes nor sends re-queued deliveries.
 */
FLAGHOOK_EXTERN int flaghook_storage_list(const flaghook_storage *storage,
                                          const flaghook_query *query,
                                          int (*each)(const flaghook_delivery *delivery, void *arg),
                                          void *arg);
FLAGHOOK_EXTERN int flaghook_storage_attempts(const flaghook_storage *storage,
                                              const flaghook_query *query,
                                              int (*each)(const flaghook_attempt *attempt, void *arg),
                                              void *arg);
FLAGHOOK_EXTERN int flaghook_storage_requeue(const flaghook_storage *storage,
                                             const flaghook_query *query, uint64_t *count);
/* Releases a store opened only to look (calls its destroy); never one a
 * client owns. */
FLAGHOOK_EXTERN void flaghook_storage_close(flaghook_storage *storage);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_OUTBOX_H */
