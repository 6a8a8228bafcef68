/*
 * What the library tells its host (notify.c): the result callbacks, the
 * result queue a binding's event loop reads (flaghook_result_next), log
 * records, and the latency histogram behind flaghook_metrics.  Every
 * report of a delivery passes here, so each way of hearing about it says
 * the same thing.  Never called with a lock held.
 */
#ifndef FLAGHOOK_ENGINE_NOTIFY_H
#define FLAGHOOK_ENGINE_NOTIFY_H

#include "client/client.h"

/* One attempt's or one delivery's end.  `attempt`: an attempt just ran
 * (on_attempt hears of it); outcome RETRY is not final (on_result and the
 * queue do not). */
void flaghook__notify_result(flaghook_client *c, const flaghook_result *res, bool attempt);
void flaghook__notify_disabled(flaghook_client *c, uint64_t endpoint_id, int32_t reason);

/* A log record at `level` (FLAGHOOK_LOG_*), if anybody listens at that
 * level.  Never pass a secret or a URL. */
bool flaghook__log_wanted(const flaghook_client *c, int32_t level);
void flaghook__log(flaghook_client *c, int32_t level, const char *fmt, ...) FH_PRINTF(3, 4);

/* An attempt of `us` microseconds (engine lock held). */
void flaghook__observe_latency(fh_endpoint *ep, int64_t us);

/* The queue: set up (client_new) and torn down (client_free). */
int flaghook__queue_init(flaghook_client *c);
void flaghook__queue_free(flaghook_client *c);
/* The oldest record, malloc'd (flaghook_free); FLAGHOOK_ETIMEOUT when none
 * came within timeout_ms (<0: wait for one). */
int flaghook__queue_pop(flaghook_client *c, int64_t timeout_ms, char **out, size_t *out_len);
/* Log records the full queue turned away. */
uint64_t flaghook__logs_dropped(flaghook_client *c);

/* The name of a log level, for the records. */
const char *flaghook__log_level_name(int32_t level);

#endif
