/*
 * The default storage: an in-memory outbox.  It keeps every delivery that
 * has not reached a final outcome, so a caller (and the engine) can see what
 * is pending; it does not survive the process.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

typedef struct pending {
	uint64_t id;
	uint64_t endpoint_id;
	int32_t attempts;
} pending;

typedef struct memory_store {
	const flaghook_allocator *allocator;
	pthread_mutex_t lock;
	pending *items;
	size_t count, cap;
	uint64_t delivered, gave_up;
} memory_store;

static int mem_put(const flaghook_delivery *d, size_t n, void *ud)
{
	memory_store *m = ud;
	pthread_mutex_lock(&m->lock);
	if (m->count + n > m->cap) {
		size_t cap = m->cap ? m->cap : 16;
		while (cap < m->count + n)
			cap *= 2;
		pending *grown = flaghook__realloc(m->allocator, m->items, cap * sizeof(*grown));
		if (!grown) {
			pthread_mutex_unlock(&m->lock);
			return FLAGHOOK_ENOMEM; /* nothing recorded: all or none */
		}
		m->items = grown;
		m->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		m->items[m->count++] = (pending){ d[i].id, d[i].endpoint_id, d[i].attempts };
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_record(const flaghook_delivery *d, int outcome, int32_t status, int32_t errclass, void *ud)
{
	(void)status; (void)errclass;
	memory_store *m = ud;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->count; i++) {
		if (m->items[i].id != d->id)
			continue;
		if (outcome == FLAGHOOK_OUTCOME_RETRY) {
			m->items[i].attempts = d->attempts;
		} else {
			m->items[i] = m->items[--m->count];
			if (outcome == FLAGHOOK_OUTCOME_DELIVERED)
				m->delivered++;
			else
				m->gave_up++;
		}
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void mem_destroy(void *ud)
{
	memory_store *m = ud;
	pthread_mutex_destroy(&m->lock);
	flaghook__free(m->allocator, m->items);
	flaghook__free(m->allocator, m);
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
