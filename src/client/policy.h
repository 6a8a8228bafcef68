/* Retry policies: the one place a retry is decided. */
#ifndef FLAGHOOK_CLIENT_POLICY_H
#define FLAGHOOK_CLIENT_POLICY_H

#include "internal.h"

typedef struct fh_policy {
	int32_t kind;
	int64_t *schedule_ms;       /* owned */
	size_t schedule_count;
	int32_t max_attempts;
	int32_t jitter_percent;     /* 0: none */
	int64_t retry_after_cap_ms;
} fh_policy;

typedef enum fh_decision {
	FH_DELIVERED,
	FH_RETRY,                   /* *wait_ms says when */
	FH_GIVE_UP,
	FH_GONE,                    /* give up and disable the endpoint */
} fh_decision;

/* Resolves defaults and copies the schedule (NULL in: flagsmith). */
int flaghook__policy_make(fh_policy *out, const flaghook_retry_policy *in, const flaghook_allocator *a);
int flaghook__policy_copy(fh_policy *out, const fh_policy *in, const flaghook_allocator *a);
void flaghook__policy_free(fh_policy *p, const flaghook_allocator *a);

/*
 * After attempt number `attempts` (1-based) ended with HTTP `status` (0
 * when none) and `errclass`, what next?  `retry_after` is the reply's
 * Retry-After header ("" when none), `now_s` the wall clock for HTTP
 * dates, `random` any 64 random bits for the jitter.
 */
fh_decision flaghook__policy_decide(const fh_policy *p, int32_t attempts, int32_t status,
                                    int32_t errclass, const char *retry_after, int64_t now_s,
                                    uint64_t random, int64_t *wait_ms);

/* Retry-After as milliseconds from now: delta-seconds or an HTTP date;
 * -1 when absent or unreadable. */
int64_t flaghook__retry_after_ms(const char *value, int64_t now_s);

#endif
