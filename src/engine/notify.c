/* What the library tells its host: see notify.h. */
#include "engine/notify.h"
#include "io/loop.h"
#include "payload/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One record waiting in the queue: a line of JSON (malloc'd, so that
 * flaghook_result_next can hand it over as it is). */
typedef struct fh_record {
	struct fh_record *next;
	bool is_log;
	flaghook_buf buf;
} fh_record;

/* Log records wait at most this many at once: a host that never reads
 * must not grow the process without bound.  Results are never dropped
 * (a delivery is never lost without a word); they are bounded by what
 * the host emits. */
#define MAX_QUEUED_LOGS 10000

/* Upper bounds of the latency buckets, microseconds (Prometheus's
 * default buckets, in seconds: .005 ... 10). */
static const int64_t latency_bounds_us[FH_LATENCY_BUCKETS] = {
	5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

const char *flaghook__log_level_name(int32_t level)
{
	switch (level) {
	case FLAGHOOK_LOG_ERROR: return "error";
	case FLAGHOOK_LOG_WARN: return "warn";
	case FLAGHOOK_LOG_INFO: return "info";
	case FLAGHOOK_LOG_DEBUG: return "debug";
	default: return "unknown";
	}
}

void flaghook__observe_latency(fh_endpoint *ep, int64_t us)
{
	if (us < 0)
		us = 0;
	size_t b = 0;
	while (b < FH_LATENCY_BUCKETS && us > latency_bounds_us[b])
		b++;
	ep->latency[b]++;
	ep->latency_sum_us = flaghook__sat_add(ep->latency_sum_us, us);
	ep->attempts++;
}

/* ---- the queue ---- */

int flaghook__queue_init(flaghook_client *c)
{
	c->queue_fd = -1;
	pthread_mutex_init(&c->queue_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->queue_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!c->result_queue)
		return 0;
	c->queue_fd = flaghook__eventfd_new();
	if (c->queue_fd < 0) {
		int e = errno;
		pthread_cond_destroy(&c->queue_cond);
		pthread_mutex_destroy(&c->queue_lock);
		return flaghook__error(FLAGHOOK_ESYSTEM, "eventfd for the result queue: %s", strerror(e));
	}
	return 0;
}

void flaghook__queue_free(flaghook_client *c)
{
	for (fh_record *r = c->queue_head, *next; r; r = next) {
		next = r->next;
		flaghook_buf_free(&r->buf);
		free(r);
	}
	c->queue_head = c->queue_tail = NULL;
	if (c->queue_fd >= 0)
		close(c->queue_fd);
	c->queue_fd = -1;
	pthread_cond_destroy(&c->queue_cond);
	pthread_mutex_destroy(&c->queue_lock);
}

static void queue_push(flaghook_client *c, fh_record *r)
{
	pthread_mutex_lock(&c->queue_lock);
	if (r->is_log && c->queue_logs >= MAX_QUEUED_LOGS) {
		c->logs_dropped++;
		pthread_mutex_unlock(&c->queue_lock);
		flaghook_buf_free(&r->buf);
		free(r);
		return;
	}
	c->queue_logs += r->is_log;
	bool was_empty = !c->queue_head;
	if (c->queue_tail)
		c->queue_tail->next = r;
	else
		c->queue_head = r;
	c->queue_tail = r;
	if (was_empty) {
		flaghook__eventfd_signal(c->queue_fd);
		pthread_cond_broadcast(&c->queue_cond);
	}
	pthread_mutex_unlock(&c->queue_lock);
}

int flaghook__queue_pop(flaghook_client *c, int64_t timeout_ms, char **out, size_t *out_len)
{
	struct timespec until;
	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		int64_t ns = flaghook__sat_add(until.tv_nsec, flaghook__sat_mul(timeout_ms % 1000, 1000000));
		until.tv_sec += (time_t)(timeout_ms / 1000 + ns / 1000000000);
		until.tv_nsec = (long)(ns % 1000000000);
	}
	pthread_mutex_lock(&c->queue_lock);
	while (!c->queue_head && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&c->queue_cond, &c->queue_lock);
		else if (pthread_cond_timedwait(&c->queue_cond, &c->queue_lock, &until) == ETIMEDOUT)
			break;
	}
	fh_record *r = c->queue_head;
	if (r) {
		c->queue_head = r->next;
		if (!c->queue_head) {
			c->queue_tail = NULL;
			flaghook__eventfd_clear(c->queue_fd);
		}
		c->queue_logs -= r->is_log;
	}
	pthread_mutex_unlock(&c->queue_lock);
	if (!r)
		return flaghook__error(FLAGHOOK_ETIMEOUT, "no result within %lld ms", (long long)timeout_ms);
	*out = r->buf.ptr; /* malloc'd (the buf has no allocator): flaghook_free */
	*out_len = r->buf.size;
	free(r);
	return 0;
}

/* Text from outside (a reply, a transport's message) as valid UTF-8: each
 * byte that does not start a valid sequence becomes U+FFFD, as Python's
 * errors="replace" does.  The result is malloc'd, or NULL. */
static char *lossy_utf8(const char *s, size_t len, size_t *out_len)
{
	char *o = malloc(len * 3 + 1);
	if (!o)
		return NULL;
	size_t n = 0, i = 0;
	while (i < len) {
		size_t bad = flaghook__utf8_invalid_at(s + i, len - i);
		size_t good = bad == (size_t)-1 ? len - i : bad;
		memcpy(o + n, s + i, good);
		n += good;
		i += good;
		if (i < len) {
			memcpy(o + n, "\xEF\xBF\xBD", 3);
			n += 3;
			i++;
		}
	}
	o[n] = '\0';
	*out_len = n;
	return o;
}

static void json_lossy(fh_json *w, const char *key, const char *s, size_t len)
{
	size_t n = 0;
	char *v = lossy_utf8(s, len, &n);
	flaghook__json_key(w, key);
	if (v)
		flaghook__json_string(w, v, n);
	else
		w->err = FLAGHOOK_ENOMEM;
	free(v);
}

/* Starts a record; false when out of memory (the caller has nothing to free). */
static fh_record *record_new(bool is_log)
{
	fh_record *r = calloc(1, sizeof(*r));
	if (r)
		r->is_log = is_log;
	return r;
}

/* Finishes and queues a record; on a writer failure nothing is queued. */
static void record_push(flaghook_client *c, fh_record *r, fh_json *w)
{
	flaghook__json_finish(w);
	if (w->err) {
		flaghook_buf_free(&r->buf);
		free(r);
		return;
	}
	queue_push(c, r);
}

static void queue_result(flaghook_client *c, const flaghook_result *res)
{
	fh_record *r = record_new(false);
	if (!r)
		return; /* on_result and the store still have it */
	fh_json w;
	flaghook__json_init(&w, &r->buf, 0, true);
	flaghook__json_object_begin(&w);
	flaghook__json_key(&w, "attempts");
	flaghook__json_int(&w, res->attempts);
	flaghook__json_key(&w, "elapsed_us");
	flaghook__json_int(&w, res->elapsed_us);
	flaghook__json_key(&w, "endpoint_id");
	flaghook__json_uint(&w, res->endpoint_id);
	flaghook__json_key(&w, "errclass");
	flaghook__json_cstring(&w, flaghook_errclass_name(res->errclass));
	json_lossy(&w, "error", res->error ? res->error : "", res->error ? strlen(res->error) : 0);
	flaghook__json_key(&w, "event_id");
	flaghook__json_cstring(&w, res->event_id ? res->event_id : "");
	flaghook__json_key(&w, "event_type");
	flaghook__json_cstring(&w, flaghook_event_type_name(res->event_type));
	flaghook__json_key(&w, "kind");
	flaghook__json_cstring(&w, "result");
	flaghook__json_key(&w, "outcome");
	flaghook__json_cstring(&w, flaghook_outcome_name(res->outcome));
	json_lossy(&w, "response", res->response ? res->response : "", res->response ? res->response_len : 0);
	flaghook__json_key(&w, "status");
	flaghook__json_int(&w, res->status);
	flaghook__json_object_end(&w);
	record_push(c, r, &w);
}

/* The log line of a delivery's attempt or end, at the level it deserves:
 * a final failure is a warning, a retry news, success detail. */
static void log_result(flaghook_client *c, const flaghook_result *res)
{
	int32_t level = res->outcome == FLAGHOOK_OUTCOME_DELIVERED ? FLAGHOOK_LOG_DEBUG
	                : res->outcome == FLAGHOOK_OUTCOME_RETRY || res->outcome == FLAGHOOK_OUTCOME_RELEASED
	                    ? FLAGHOOK_LOG_INFO
	                    : FLAGHOOK_LOG_WARN;
	if (!flaghook__log_wanted(c, level))
		return;
	const char *what = res->outcome == FLAGHOOK_OUTCOME_DELIVERED ? "delivered"
	                   : res->outcome == FLAGHOOK_OUTCOME_RETRY   ? "failed, will retry"
	                   : res->outcome == FLAGHOOK_OUTCOME_GAVE_UP ? "gave up"
	                   : res->outcome == FLAGHOOK_OUTCOME_ABANDONED ? "abandoned at shutdown"
	                                                                : "released to the store at shutdown";
	char detail[320] = "";
	size_t n = 0;
	if (res->status)
		n += (size_t)snprintf(detail + n, sizeof(detail) - n, " HTTP %d", (int)res->status);
	if (res->errclass && res->errclass != FLAGHOOK_ERRCLASS_HTTP && n < sizeof(detail))
		n += (size_t)snprintf(detail + n, sizeof(detail) - n, " (%s)", flaghook_errclass_name(res->errclass));
	if (res->error && res->error[0] && n < sizeof(detail))
		snprintf(detail + n, sizeof(detail) - n, ": %s", res->error);
	flaghook__log(c, level, "endpoint %llu: %s %s %s after %d attempt%s%s", (unsigned long long)res->endpoint_id,
	              flaghook_event_type_name(res->event_type), res->event_id ? res->event_id : "", what,
	              (int)res->attempts, res->attempts == 1 ? "" : "s", detail);
}

void flaghook__notify_result(flaghook_client *c, const flaghook_result *res, bool attempt)
{
	if (attempt && c->on_attempt)
		c->on_attempt(res, c->user_data);
	bool final = res->outcome != FLAGHOOK_OUTCOME_RETRY;
	if (final && c->on_result)
		c->on_result(res, c->user_data);
	if (final && c->result_queue)
		queue_result(c, res);
	if (attempt || final)
		log_result(c, res);
}

void flaghook__notify_disabled(flaghook_client *c, uint64_t endpoint_id, int32_t reason)
{
	if (c->on_endpoint_disabled)
		c->on_endpoint_disabled(endpoint_id, reason, c->user_data);
	if (c->result_queue) {
		fh_record *r = record_new(false);
		if (r) {
			fh_json w;
			flaghook__json_init(&w, &r->buf, 0, true);
			flaghook__json_object_begin(&w);
			flaghook__json_key(&w, "endpoint_id");
			flaghook__json_uint(&w, endpoint_id);
			flaghook__json_key(&w, "kind");
			flaghook__json_cstring(&w, "disabled");
			flaghook__json_key(&w, "reason");
			flaghook__json_cstring(&w, reason == FLAGHOOK_DISABLED_GONE ? "gone" : "failing");
			flaghook__json_object_end(&w);
			record_push(c, r, &w);
		}
	}
	flaghook__log(c, FLAGHOOK_LOG_WARN, "endpoint %llu: disabled: %s", (unsigned long long)endpoint_id,
	              reason == FLAGHOOK_DISABLED_GONE ? "it answered 410 Gone"
	                                               : "it failed for disable_after_ms without a success");
}

/* ---- logs ---- */

bool flaghook__log_wanted(const flaghook_client *c, int32_t level)
{
	return (c->on_log || c->result_queue) && level <= c->log_level;
}

void flaghook__log(flaghook_client *c, int32_t level, const char *fmt, ...)
{
	if (!flaghook__log_wanted(c, level))
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(msg)) {
		/* Cut before a character the limit split, not inside it. */
		size_t len = sizeof(msg) - 1, start = len - 1;
		while (start > 0 && ((unsigned char)msg[start] & 0xC0) == 0x80)
			start--;
		unsigned char lead = (unsigned char)msg[start];
		size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
		if (start + need > len)
			msg[start] = '\0';
	}
	if (c->on_log)
		c->on_log(level, msg, c->user_data);
	if (!c->result_queue)
		return;
	fh_record *r = record_new(true);
	if (!r)
		return;
	fh_json w;
	flaghook__json_init(&w, &r->buf, 0, true);
	flaghook__json_object_begin(&w);
	flaghook__json_key(&w, "kind");
	flaghook__json_cstring(&w, "log");
	flaghook__json_key(&w, "level");
	flaghook__json_cstring(&w, flaghook__log_level_name(level));
	json_lossy(&w, "message", msg, strlen(msg));
	flaghook__json_object_end(&w);
	record_push(c, r, &w);
}

uint64_t flaghook__logs_dropped(flaghook_client *c)
{
	pthread_mutex_lock(&c->queue_lock);
	uint64_t n = c->logs_dropped;
	pthread_mutex_unlock(&c->queue_lock);
	return n;
}
