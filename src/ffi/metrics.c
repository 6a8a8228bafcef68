/*
 * Counters for hosts: flaghook_stats_json (every counter of the client and
 * its endpoints, by name) and flaghook_metrics (the same, and the attempt
 * latency histogram, in Prometheus's text exposition format 0.0.4).
 * Endpoints are named by id only: a URL may carry credentials.
 */
#include "ffi/ffi.h"
#include "client/registry.h"
#include "engine/notify.h"
#include "payload/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency bucket bounds in seconds, as Prometheus writes them; they match
 * the microsecond bounds in engine/notify.c. */
static const char *const latency_le[FH_LATENCY_BUCKETS] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

typedef struct snapshot {
	flaghook_client_stats client;
	uint64_t logs_dropped;
	fh_counters *eps;
	size_t n;
} snapshot;

static int take(flaghook_client *c, snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->client.version = FLAGHOOK_CLIENT_STATS_VERSION;
	int rc = flaghook_client_stats_get(c, &s->client);
	s->logs_dropped = flaghook__logs_dropped(c);
	fh_endpoint **all = NULL;
	size_t n = 0;
	if (!rc)
		rc = flaghook__endpoints_all(c, &all, &n);
	if (rc)
		return rc;
	s->eps = n ? calloc(n, sizeof(*s->eps)) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (s->eps)
			flaghook__endpoint_counters(c, all[i], &s->eps[i]);
		flaghook__endpoint_release(c, all[i]);
	}
	flaghook__free(c->allocator, all);
	if (n && !s->eps)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	s->n = n;
	return 0;
}

static void counter(fh_json *w, const char *key, uint64_t v)
{
	flaghook__json_key(w, key);
	flaghook__json_uint(w, v);
}

int flaghook_stats_json(flaghook_client *c, char **out, size_t *out_len)
{
	flaghook__error_clear();
	if (!c || !out || !out_len)
		return flaghook__error(FLAGHOOK_EINVAL, "client, out or out_len is NULL");
	*out = NULL;
	*out_len = 0;
	snapshot s;
	int rc = take(c, &s);
	if (rc)
		return flaghook__client_fail(c, rc);
	flaghook_buf b = FLAGHOOK_BUF_INIT;
	fh_json w;
	flaghook__json_init(&w, &b, 0, false);
	flaghook__json_object_begin(&w);
	flaghook__json_key(&w, "client");
	flaghook__json_object_begin(&w);
	counter(&w, "logs_dropped", s.logs_dropped);
	counter(&w, "pending", s.client.pending);
	counter(&w, "running", s.client.running);
	counter(&w, "transfers", s.client.transfers);
	counter(&w, "waiting", s.client.waiting);
	flaghook__json_object_end(&w);
	flaghook__json_key(&w, "endpoints");
	flaghook__json_array_begin(&w);
	for (size_t i = 0; i < s.n; i++) {
		const fh_counters *k = &s.eps[i];
		flaghook__json_object_begin(&w);
		counter(&w, "abandoned", k->abandoned);
		counter(&w, "attempts", k->attempts);
		flaghook__json_key(&w, "breaker_open");
		flaghook__json_bool(&w, k->breaker_open);
		counter(&w, "consecutive_failures", (uint64_t)k->consecutive_failures);
		counter(&w, "delivered", k->delivered);
		flaghook__json_key(&w, "disabled");
		flaghook__json_bool(&w, k->disabled);
		counter(&w, "gave_up", k->gave_up);
		counter(&w, "id", k->id);
		counter(&w, "in_flight", k->in_flight);
		counter(&w, "queued", k->queued);
		counter(&w, "released", k->released);
		counter(&w, "retried", k->retried);
		flaghook__json_object_end(&w);
	}
	flaghook__json_array_end(&w);
	flaghook__json_object_end(&w);
	flaghook__json_finish(&w);
	free(s.eps);
	if (w.err) {
		flaghook_buf_free(&b);
		return flaghook__client_fail(c, flaghook__error(w.err, "stats: out of memory"));
	}
	*out = b.ptr;
	*out_len = b.size;
	return 0;
}

/* ---- Prometheus ---- */

typedef struct text {
	char *p;
	size_t len, cap;
	bool failed;
} text;

static void put(text *t, const char *fmt, ...) FH_PRINTF(2, 3);
static void put(text *t, const char *fmt, ...)
{
	for (int round = 0; round < 2 && !t->failed; round++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap : 4096;
		while (cap <= t->len + (size_t)n)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

/* One family: HELP, TYPE and a sample per endpoint. */
static void family(text *t, const snapshot *s, const char *name, const char *type, const char *help,
                   size_t offset, const char *extra_label)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < s->n; i++) {
		uint64_t v;
		memcpy(&v, (const char *)&s->eps[i] + offset, sizeof(v));
		put(t, "%s{endpoint=\"%" PRIu64 "\"%s} %" PRIu64 "\n", name, s->eps[i].id, extra_label ? extra_label : "",
		    v);
	}
}

int flaghook_metrics(flaghook_client *c, char **out, size_t *out_len)
{
	flaghook__error_clear();
	if (!c || !out || !out_len)
		return flaghook__error(FLAGHOOK_EINVAL, "client, out or out_len is NULL");
	*out = NULL;
	*out_len = 0;
	snapshot s;
	int rc = take(c, &s);
	if (rc)
		return flaghook__client_fail(c, rc);
	text t = { 0 };
	put(&t, "# HELP flaghook_deliveries_total Deliveries ended, by outcome.\n"
	        "# TYPE flaghook_deliveries_total counter\n");
	static const struct { const char *outcome; size_t offset; } outcomes[] = {
		{ "delivered", offsetof(fh_counters, delivered) },
		{ "gave_up", offsetof(fh_counters, gave_up) },
		{ "abandoned", offsetof(fh_counters, abandoned) },
		{ "released", offsetof(fh_counters, released) },
	};
	for (size_t i = 0; i < s.n; i++)
		for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++) {
			uint64_t v;
			memcpy(&v, (const char *)&s.eps[i] + outcomes[k].offset, sizeof(v));
			put(&t, "flaghook_deliveries_total{endpoint=\"%" PRIu64 "\",outcome=\"%s\"} %" PRIu64 "\n",
			    s.eps[i].id, outcomes[k].outcome, v);
		}
	family(&t, &s, "flaghook_retries_total", "counter", "Failed attempts scheduled again.",
	       offsetof(fh_counters, retried), NULL);
	family(&t, &s, "flaghook_queued", "gauge", "Deliveries accepted, waiting to be sent or for a retry.",
	       offsetof(fh_counters, queued), NULL);
	family(&t, &s, "flaghook_in_flight", "gauge", "Attempts being sent now.", offsetof(fh_counters, in_flight),
	       NULL);
	put(&t, "# HELP flaghook_endpoint_disabled 1 while the endpoint is disabled.\n"
	        "# TYPE flaghook_endpoint_disabled gauge\n");
	for (size_t i = 0; i < s.n; i++)
		put(&t, "flaghook_endpoint_disabled{endpoint=\"%" PRIu64 "\"} %d\n", s.eps[i].id, (int)s.eps[i].disabled);
	put(&t, "# HELP flaghook_breaker_open 1 while the endpoint's circuit is open.\n"
	        "# TYPE flaghook_breaker_open gauge\n");
	for (size_t i = 0; i < s.n; i++)
		put(&t, "flaghook_breaker_open{endpoint=\"%" PRIu64 "\"} %d\n", s.eps[i].id, (int)s.eps[i].breaker_open);
	put(&t, "# HELP flaghook_attempt_duration_seconds How long attempts took, from start to reply.\n"
	        "# TYPE flaghook_attempt_duration_seconds histogram\n");
	for (size_t i = 0; i < s.n; i++) {
		const fh_counters *k = &s.eps[i];
		uint64_t cum = 0;
		for (size_t b = 0; b < FH_LATENCY_BUCKETS; b++) {
			cum += k->latency[b];
			put(&t, "flaghook_attempt_duration_seconds_bucket{endpoint=\"%" PRIu64 "\",le=\"%s\"} %" PRIu64 "\n",
			    k->id, latency_le[b], cum);
		}
		cum += k->latency[FH_LATENCY_BUCKETS];
		put(&t, "flaghook_attempt_duration_seconds_bucket{endpoint=\"%" PRIu64 "\",le=\"+Inf\"} %" PRIu64 "\n",
		    k->id, cum);
		put(&t, "flaghook_attempt_duration_seconds_sum{endpoint=\"%" PRIu64 "\"} %" PRId64 ".%06" PRId64 "\n", k->id,
		    k->latency_sum_us / 1000000, k->latency_sum_us % 1000000);
		put(&t, "flaghook_attempt_duration_seconds_count{endpoint=\"%" PRIu64 "\"} %" PRIu64 "\n", k->id, cum);
	}
	static const struct { const char *name, *help; size_t offset; } client[] = {
		{ "flaghook_pending", "Deliveries accepted and not finished.", offsetof(flaghook_client_stats, pending) },
		{ "flaghook_running", "Attempts under way or being reported.", offsetof(flaghook_client_stats, running) },
		{ "flaghook_transfers", "Requests on the wire.", offsetof(flaghook_client_stats, transfers) },
		{ "flaghook_waiting", "Deliveries waiting on a timer: retries and circuits.",
		  offsetof(flaghook_client_stats, waiting) },
	};
	put(&t, "# HELP flaghook_logs_dropped_total Log records the full result queue turned away.\n"
	        "# TYPE flaghook_logs_dropped_total counter\nflaghook_logs_dropped_total %" PRIu64 "\n", s.logs_dropped);
	for (size_t k = 0; k < sizeof(client) / sizeof(client[0]); k++) {
		uint64_t v;
		memcpy(&v, (const char *)&s.client + client[k].offset, sizeof(v));
		put(&t, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", client[k].name, client[k].help, client[k].name,
		    client[k].name, v);
	}
	free(s.eps);
	if (t.failed) {
		free(t.p);
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_ENOMEM, "metrics: out of memory"));
	}
	*out = t.p;
	*out_len = t.len;
	return 0;
}
