/* The timer heap: see timers.h. */
#include "engine/timers.h"
#include "io/loop.h"

static void sift_up(flaghook_client *c, size_t i)
{
	fh_timer t = c->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (c->heap[parent].due <= t.due)
			break;
		c->heap[i] = c->heap[parent];
		i = parent;
	}
	c->heap[i] = t;
}

static void sift_down(flaghook_client *c, size_t i)
{
	fh_timer t = c->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		int64_t best = t.due;
		if (l < c->heap_len && c->heap[l].due < best)
			m = l, best = c->heap[l].due;
		if (r < c->heap_len && c->heap[r].due < best)
			m = r;
		if (m == i)
			break;
		c->heap[i] = c->heap[m];
		i = m;
	}
	c->heap[i] = t;
}

int flaghook__timers_push(flaghook_client *c, fh_timer t)
{
	if (t.due == INT64_MAX)
		t.due = INT64_MAX - 1; /* "never" is still a time: INT64_MAX means none */
	if (c->heap_len == c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
		fh_timer *h = flaghook__reallocarray(c->allocator, c->heap, cap, sizeof(*h));
		if (!h)
			return FLAGHOOK_ENOMEM;
		c->heap = h;
		c->heap_cap = cap;
	}
	c->heap[c->heap_len++] = t;
	sift_up(c, c->heap_len - 1);
	if (c->heap[0].due == t.due && c->heap[0].job == t.job && c->heap[0].ep == t.ep)
		flaghook__timers_arm(c); /* it is the earliest now */
	return 0;
}

int64_t flaghook__timers_next(const flaghook_client *c)
{
	return c->heap_len ? c->heap[0].due : INT64_MAX;
}

bool flaghook__timers_pop_due(flaghook_client *c, int64_t now, fh_timer *out)
{
	if (!c->heap_len || c->heap[0].due > now)
		return false;
	*out = c->heap[0];
	c->heap_len--;
	if (c->heap_len) {
		c->heap[0] = c->heap[c->heap_len];
		sift_down(c, 0);
	}
	return true;
}

void flaghook__timers_reorder(flaghook_client *c)
{
	for (size_t i = c->heap_len / 2; i-- > 0;)
		sift_down(c, i);
}

void flaghook__timers_filter(flaghook_client *c, bool (*keep)(const fh_timer *t, void *arg),
                             void (*drop)(fh_timer *t, void *arg), void *arg)
{
	/* One pass and a rebuild: removing entries one by one would move
	 * others behind the scan. */
	size_t kept = 0;
	for (size_t i = 0; i < c->heap_len; i++) {
		if (keep(&c->heap[i], arg))
			c->heap[kept++] = c->heap[i];
		else
			drop(&c->heap[i], arg);
	}
	c->heap_len = kept;
	flaghook__timers_reorder(c);
}

void flaghook__timers_free(flaghook_client *c)
{
	flaghook__free(c->allocator, c->heap);
	c->heap = NULL;
	c->heap_len = c->heap_cap = 0;
}

void flaghook__timers_arm(flaghook_client *c)
{
	if (c->timer_fd < 0)
		return;
	int64_t due = flaghook__timers_next(c);
	if (c->durable && c->storage.claim && !c->closing && c->next_poll < due)
		due = c->next_poll;
	/* A poll asked for soon: now, unless one is queued or running, which
	 * serves the request (the timer would only wake the loop for nothing,
	 * again and again until it ends). */
	if (c->poll_soon && !c->closing && !c->polling && !c->poll_queued)
		due = 0;
	if (due == INT64_MAX) {
		flaghook__timerfd_arm(c->timer_fd, INT64_MAX);
		return;
	}
	int64_t now = flaghook__clock(c), mono = flaghook__mono_us();
	int64_t delta = due > now ? due - now : 0;
	if (c->clock && delta > 1000000)
		delta = 1000000; /* a custom clock may run at any speed */
	flaghook__timerfd_arm(c->timer_fd, flaghook__sat_add(mono, delta));
}
