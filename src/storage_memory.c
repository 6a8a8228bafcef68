/*
 * The default storage: an in-memory outbox.  It keeps every delivery that
 * has not reached a final outcome (id, endpoint, attempts) in an
 * open-addressing table, so recording an outcome costs O(1) however many
 * are pending; it does not survive the process.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

typedef struct pending {
	uint64_t id;                /* 0: empty slot (delivery ids start at 1) */
	uint64_t endpoint_id;
	int32_t attempts;
} pending;

typedef struct memory_store {
	const flaghook_allocator *allocator;
	pthread_mutex_t lock;
	pending *slots;
	size_t cap;                 /* a power of two, at least twice count */
	size_t count;
	uint64_t delivered, gave_up, abandoned;
} memory_store;

static size_t home(const memory_store *m, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 17) & (m->cap - 1);
}

static size_t find(const memory_store *m, uint64_t id)
{
	for (size_t i = home(m, id);; i = (i + 1) & (m->cap - 1))
		if (m->slots[i].id == id || m->slots[i].id == 0)
			return i;
}

static int grow(memory_store *m, size_t need)
{
	size_t cap = m->cap ? m->cap : 64;
	while (cap < 2 * need)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	pending *old = m->slots;
	size_t old_cap = m->cap;
	pending *slots = flaghook__calloc(m->allocator, cap, sizeof(*slots));
	if (!slots)
		return FLAGHOOK_ENOMEM;
	m->slots = slots;
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].id)
			m->slots[find(m, old[i].id)] = old[i];
	flaghook__free(m->allocator, old);
	return 0;
}

/* Removes slot i, shifting later members of its probe run back so lookups
 * never need tombstones. */
static void erase(memory_store *m, size_t i)
{
	size_t mask = m->cap - 1;
	for (size_t j = (i + 1) & mask; m->slots[j].id; j = (j + 1) & mask) {
		size_t h = home(m, m->slots[j].id);
		/* Move j back into i when its home is not in (i, j]. */
		if (((j - h) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].id = 0;
	m->count--;
}

static int mem_put(const flaghook_delivery *d, size_t n, void *ud)
{
	memory_store *m = ud;
	pthread_mutex_lock(&m->lock);
	int rc = grow(m, m->count + n); /* all or none: room first */
	if (!rc) {
		for (size_t i = 0; i < n; i++) {
			size_t at = find(m, d[i].id);
			if (!m->slots[at].id)
				m->count++;
			m->slots[at] = (pending){ d[i].id, d[i].endpoint_id, d[i].attempts };
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int mem_record(const flaghook_delivery *d, int outcome, int32_t status, int32_t errclass, void *ud)
{
	(void)status; (void)errclass;
	memory_store *m = ud;
	pthread_mutex_lock(&m->lock);
	size_t at = m->cap ? find(m, d->id) : 0;
	if (m->cap && m->slots[at].id) {
		if (outcome == FLAGHOOK_OUTCOME_RETRY) {
			m->slots[at].attempts = d->attempts;
		} else {
			erase(m, at);
			if (outcome == FLAGHOOK_OUTCOME_DELIVERED)
				m->delivered++;
			else if (outcome == FLAGHOOK_OUTCOME_ABANDONED)
				m->abandoned++;
			else
				m->gave_up++;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void mem_destroy(void *ud)
{
	memory_store *m = ud;
	pthread_mutex_destroy(&m->lock);
	flaghook__free(m->allocator, m->slots);
	flaghook__free(m->allocator, m);
}

size_t flaghook__storage_memory_count(void *ud)
{
	memory_store *m = ud;
	pthread_mutex_lock(&m->lock);
	size_t n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int flaghook__storage_memory(flaghook_storage *out, const flaghook_allocator *a)
{
	memory_store *m = flaghook__calloc(a, 1, sizeof(*m));
	if (!m)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	m->allocator = a;
	pthread_mutex_init(&m->lock, NULL);
	out->version = FLAGHOOK_STORAGE_VERSION;
	out->put = mem_put;
	out->record = mem_record;
	out->destroy = mem_destroy;
	out->user_data = m;
	return 0;
}
