/*
 * Retry policies.  "flagsmith" does what the Flagsmith server's webhook
 * task does as this project specifies it: three attempts, 2 s then 4 s
 * apart, and only a transport failure is retried.  "standard" follows the
 * Standard Webhooks schedule: eight attempts over about 28 hours with
 * jitter, retrying every failure without an HTTP reply (timeout, connect,
 * DNS, TLS, reset), 408, 429 and 5xx, honouring
 * Retry-After, and treating 410 Gone as "stop sending here".
 */
#include "client/policy.h"

#include <curl/curl.h>

#include <stdlib.h>
#include <string.h>

static const int64_t flagsmith_schedule[] = { 2000, 4000 };
static const int64_t standard_schedule[] = {
	5 * 1000LL, 5 * 60 * 1000LL, 30 * 60 * 1000LL, 2 * 3600 * 1000LL,
	5 * 3600 * 1000LL, 10 * 3600 * 1000LL, 10 * 3600 * 1000LL,
};

#define DEFAULT_RETRY_AFTER_CAP_MS (3600 * 1000LL)

static const size_t policy_sizes[] = { 0, sizeof(flaghook_retry_policy) };

int flaghook_retry_policy_init(flaghook_retry_policy *p, unsigned int version)
{
	return flaghook__struct_init(p, version, policy_sizes, FH_COUNT(policy_sizes), "retry policy");
}

int flaghook__policy_make(fh_policy *out, const flaghook_retry_policy *in, const flaghook_allocator *a)
{
	flaghook_retry_policy copy;
	int rc = in ? flaghook__struct_read(&copy, in, policy_sizes, FH_COUNT(policy_sizes), "retry policy")
	            : flaghook_retry_policy_init(&copy, FLAGHOOK_RETRY_POLICY_VERSION);
	if (rc)
		return rc;
	in = &copy;
	if (in->kind != FLAGHOOK_RETRY_FLAGSMITH && in->kind != FLAGHOOK_RETRY_STANDARD)
		return flaghook__error(FLAGHOOK_EINVAL, "retry policy kind %d is not a policy", (int)in->kind);
	if (!in->schedule_count != !in->schedule_ms || in->max_attempts < 0 || in->jitter_percent > 100 ||
	    in->retry_after_cap_ms < 0)
		return flaghook__error(FLAGHOOK_EINVAL,
		                       "retry policy: schedule_ms and schedule_count must be set together; no negative or out-of-range values");
	if (in->schedule_count > FLAGHOOK_SCHEDULE_MAX)
		return flaghook__error(FLAGHOOK_EINVAL, "retry policy: schedule_count %zu is over %d (the last wait repeats)",
		                       in->schedule_count, FLAGHOOK_SCHEDULE_MAX);
	bool standard = in->kind == FLAGHOOK_RETRY_STANDARD;
	const int64_t *sched = in->schedule_ms;
	size_t n = in->schedule_count;
	if (!sched) {
		sched = standard ? standard_schedule : flagsmith_schedule;
		n = standard ? sizeof(standard_schedule) / sizeof(standard_schedule[0])
		             : sizeof(flagsmith_schedule) / sizeof(flagsmith_schedule[0]);
	}
	for (size_t i = 0; i < n; i++)
		if (sched[i] < 0)
			return flaghook__error(FLAGHOOK_EINVAL, "retry policy: schedule_ms[%zu] is negative", i);
	memset(out, 0, sizeof(*out));
	out->kind = in->kind;
	out->schedule_count = n;
	if (n) {
		out->schedule_ms = flaghook__memdup(a, sched, n * sizeof(*sched));
		if (!out->schedule_ms)
			return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	out->max_attempts = in->max_attempts ? in->max_attempts : (standard ? 8 : 3);
	out->jitter_percent = in->jitter_percent < 0 ? 0 : in->jitter_percent ? in->jitter_percent : (standard ? 20 : 0);
	out->retry_after_cap_ms = in->retry_after_cap_ms ? in->retry_after_cap_ms : DEFAULT_RETRY_AFTER_CAP_MS;
	return 0;
}

int flaghook__policy_copy(fh_policy *out, const fh_policy *in, const flaghook_allocator *a)
{
	*out = *in;
	if (in->schedule_count) {
		out->schedule_ms = flaghook__memdup(a, in->schedule_ms, in->schedule_count * sizeof(int64_t));
		if (!out->schedule_ms)
			return FLAGHOOK_ENOMEM;
	}
	return 0;
}

void flaghook__policy_free(fh_policy *p, const flaghook_allocator *a)
{
	flaghook__free(a, p->schedule_ms);
	p->schedule_ms = NULL;
	p->schedule_count = 0;
}

int64_t flaghook__retry_after_ms(const char *v, int64_t now_s)
{
	if (!v || !*v)
		return -1;
	if (*v >= '0' && *v <= '9') {
		char *end;
		long long secs = strtoll(v, &end, 10);
		if (*end || secs < 0 || secs > INT64_MAX / 1000)
			return -1;
		return (int64_t)secs * 1000;
	}
	time_t when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	if (when <= now_s)
		return 0;
	/* A date far in the future (a year like 0777777777) must not
	 * overflow: it is capped by retry_after_cap_ms anyway. */
	int64_t ahead = (int64_t)when - now_s;
	return ahead > INT64_MAX / 1000 ? INT64_MAX : ahead * 1000;
}

static bool retryable(const fh_policy *p, int32_t status, int32_t errclass)
{
	/* The guard refused the address: asking again changes nothing (a
	 * name that resolved to it may resolve elsewhere later, but a retry
	 * that waits for a rebinding is what the guard is there to stop). */
	if (errclass == FLAGHOOK_ERRCLASS_REFUSED)
		return false;
	if (status == 0)
		return errclass != FLAGHOOK_ERRCLASS_NONE; /* a transport failure */
	if (p->kind == FLAGHOOK_RETRY_FLAGSMITH)
		return false; /* an HTTP answer is final there */
	return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

fh_decision flaghook__policy_decide(const fh_policy *p, int32_t attempts, int32_t status,
                                    int32_t errclass, const char *retry_after, int64_t now_s,
                                    uint64_t random, int64_t *wait_ms)
{
	*wait_ms = 0;
	if (status >= 200 && status <= 299)
		return FH_DELIVERED;
	if (status == 410 && p->kind == FLAGHOOK_RETRY_STANDARD)
		return FH_GONE;
	if (!retryable(p, status, errclass) || attempts >= p->max_attempts)
		return FH_GIVE_UP;
	size_t i = (size_t)(attempts - 1);
	int64_t wait = p->schedule_count ? p->schedule_ms[i < p->schedule_count ? i : p->schedule_count - 1] : 0;
	if (p->jitter_percent && wait > 0) {
		/* Uniform in [wait - j, wait + j]: receivers coming back up do not
		 * get every sender's retries at the same instant.  j <= wait, so
		 * 2j + 1 fits in 64 unsigned bits; the sum saturates. */
		int64_t j = wait / 100 * p->jitter_percent + (wait % 100) * p->jitter_percent / 100;
		if (j > 0) {
			uint64_t r = random % (2 * (uint64_t)j + 1);
			uint64_t low = (uint64_t)(wait - j);
			wait = r > (uint64_t)INT64_MAX - low ? INT64_MAX : (int64_t)(low + r);
		}
	}
	if (p->kind == FLAGHOOK_RETRY_STANDARD) {
		int64_t ra = flaghook__retry_after_ms(retry_after, now_s);
		if (ra >= 0)
			wait = ra < p->retry_after_cap_ms ? ra : p->retry_after_cap_ms;
	}
	*wait_ms = wait;
	return FH_RETRY;
}
