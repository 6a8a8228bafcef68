/*
 * libflaghook: the layout-free API for other languages' bindings: JSON
 * in, JSON out, results from a queue, constants by name.  Include
 * <flaghook.h>, not this file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_BINDINGS_H
#define FLAGHOOK_BINDINGS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* For bindings: JSON in, JSON out, no struct layouts                  */
/*                                                                     */
/* Everything above is reachable without copying a struct: events and  */
/* options as JSON, results from a queue a host's event loop watches,  */
/* constants by name.  Strings the library returns here are malloc'd   */
/* and released with flaghook_free.  Functions that take `error` write */
/* the detail of a failure there (NUL-terminated, truncated to         */
/* error_size; "" on success), whichever thread they ran on; NULL      */
/* error or 0 error_size: none.                                        */

/* Releases a string these functions returned; NULL is a no-op. */
FLAGHOOK_EXTERN void flaghook_free(void *ptr);

/*
 * Renders the event given as JSON: the payload's own shape as Flagsmith
 * sends it today, {"event_type": "FLAG_UPDATED", "data": {...}} (the
 * FLAGSMITH profile's shape, whatever profile renders it), plus the
 * routing ids "environment_id" and "organisation_id" where the event
 * needs them.  Integers are exact over all of int64.  Unknown keys,
 * duplicate keys, invalid UTF-8, a NUL byte and a \u0000 in a string are
 * errors.  options_json (NULL:
 * defaults): {"profile": "flagsmith"|"flagsmith_2020"|"bullet_train",
 * "compact": false, "max_body_bytes": 0}.  The body is the same bytes
 * flaghook_render writes from the structs.  An error names the JSON path:
 * "$.data.new_state.feature.name: invalid UTF-8 at byte 3".
 */
FLAGHOOK_EXTERN int flaghook_render_json(char **out, size_t *out_len,
                                         const char *event_json, size_t event_len,
                                         const char *options_json,
                                         char *error, size_t error_size);

/* flaghook_client_new with the options as JSON: the members of
 * flaghook_client_options by name ("mode": "async", "retry": {...}),
 * every unknown key an error.  Callbacks, plug-ins and the allocator have
 * no JSON form: take results from the queue ("result_queue": true). */
FLAGHOOK_EXTERN int flaghook_client_new_json(flaghook_client **out, const char *options_json,
                                             char *error, size_t error_size);

/* flaghook_endpoint_add with the options as JSON ("url", "secret" as a
 * string (its UTF-8 bytes) or "secret_hex" (the same bytes in hex, for a
 * binding that holds bytes), "events": ["FLAG_UPDATED", ...], "scope":
 * "environment", ...).  The secret is checked as flaghook_endpoint_add
 * checks it. */
FLAGHOOK_EXTERN int flaghook_endpoint_add_json(flaghook_client *client, uint64_t *out_id,
                                               const char *options_json,
                                               char *error, size_t error_size);

/* flaghook_emit with the event as JSON (see flaghook_render_json). */
FLAGHOOK_EXTERN int flaghook_emit_json(flaghook_client *client,
                                       const char *event_json, size_t event_len,
                                       char *error, size_t error_size);

/*
 * The result queue (client option result_queue).  flaghook_results_fd
 * gives a descriptor that is readable exactly while the queue holds a
 * record: watch it with asyncio's add_reader or libuv; do not read or
 * close it.  flaghook_result_next takes the oldest record as one line of
 * compact JSON with sorted keys (no newline), waiting up to timeout_ms
 * for one (0: not at all; <0: until one comes: never while
 * flaghook_client_free may run); FLAGHOOK_ETIMEOUT when none came.
 * Records:
 *   {"attempts":1,"elapsed_us":1234,"endpoint_id":1,"errclass":"none",
 *    "error":"","event_id":"...","event_type":"FLAG_UPDATED",
 *    "kind":"result","outcome":"delivered","response":"...","status":200}
 *   {"endpoint_id":1,"kind":"disabled","reason":"gone"|"failing"}
 *   {"kind":"log","level":"warn","message":"..."}
 * Results are never dropped; log records beyond 10000 waiting are (the
 * stats and metrics count them).  In SYNC mode a result is queued before
 * flaghook_emit returns.  What flaghook_client_free abandons or releases
 * is queued as it frees the queue: flush and read the queue before it.
 */
FLAGHOOK_EXTERN int flaghook_results_fd(flaghook_client *client, int *out_fd);
FLAGHOOK_EXTERN int flaghook_result_next(flaghook_client *client, int64_t timeout_ms,
                                         char **out, size_t *out_len);

/* The client's counters and every endpoint's as JSON:
 * {"client": {"logs_dropped": 0, "pending": 0, ...}, "endpoints": [{"id":
 * 1, "delivered": 3, "attempts": 3, ...}]}: flaghook_client_stats and
 * flaghook_endpoint_stats by name, and the attempts made. */
FLAGHOOK_EXTERN int flaghook_stats_json(flaghook_client *client, char **out, size_t *out_len);

/*
 * Metrics in the Prometheus text exposition format (version 0.0.4), for a
 * server's /metrics: per endpoint (label endpoint="<id>") the deliveries
 * by outcome, attempts, retries, what is queued and in flight, whether it
 * is disabled or its circuit open, and a histogram of attempt latency in
 * seconds; per client what is pending and running.  Names start with
 * "flaghook_".  Never a URL or a secret.
 */
FLAGHOOK_EXTERN int flaghook_metrics(flaghook_client *client, char **out, size_t *out_len);

/* The value of a public constant by its name ("FLAGHOOK_EINVAL",
 * "FLAGHOOK_EVENT_FLAG_UPDATED", "FLAGHOOK_CLIENT_OPTIONS_VERSION"):
 * 0, or FLAGHOOK_ENOTFOUND for a name that is not one. */
FLAGHOOK_EXTERN int flaghook_constant(const char *name, int64_t *out);
/* Every public constant, as a JSON object {"FLAGHOOK_EINVAL": -1, ...}
 * (static; do not free): generated from this header at build time. */
FLAGHOOK_EXTERN const char *flaghook_constants_json(void);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_BINDINGS_H */
