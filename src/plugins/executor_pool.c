/*
 * The built-in executor: N threads taking (job, arg) pairs from a ring.
 * The engine never sleeps in it: retries wait on the engine's timers.
 */
#include "plugins/plugins.h"

#include <pthread.h>
#include <stdbool.h>

#include <stdlib.h>
#include <string.h>

typedef struct task { void (*fn)(void *); void *arg; } task;

struct fh_pool {
	const flaghook_allocator *allocator;
	pthread_mutex_t lock;
	pthread_cond_t ready;
	task *ring;
	size_t cap, head, count;
	bool stopping;
	int nthreads;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	fh_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->count && !p->stopping)
			pthread_cond_wait(&p->ready, &p->lock);
		if (!p->count)
			break; /* stopping and drained */
		task t = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->lock);
		t.fn(t.arg);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int flaghook__pool_submit(void (*fn)(void *), void *arg, void *ud)
{
	fh_pool *p = ud;
	pthread_mutex_lock(&p->lock);
	if (p->count == p->cap) {
		/* Grow and unwrap the ring. */
		size_t cap = p->cap ? p->cap * 2 : 64;
		task *ring = flaghook__malloc(p->allocator, cap * sizeof(*ring));
		if (!ring) {
			pthread_mutex_unlock(&p->lock);
			return FLAGHOOK_ENOMEM;
		}
		for (size_t i = 0; i < p->count; i++)
			ring[i] = p->ring[(p->head + i) % p->cap];
		flaghook__free(p->allocator, p->ring);
		p->ring = ring;
		p->cap = cap;
		p->head = 0;
	}
	p->ring[(p->head + p->count) % p->cap] = (task){ fn, arg };
	p->count++;
	pthread_cond_signal(&p->ready);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void flaghook__pool_stop(fh_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->ready);
	flaghook__free(p->allocator, p->ring);
	flaghook__free(p->allocator, p->threads);
	flaghook__free(p->allocator, p);
}

int flaghook__pool_start(fh_pool **out, int threads, const flaghook_allocator *a)
{
	fh_pool *p = flaghook__calloc(a, 1, sizeof(*p));
	if (!p)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	p->allocator = a;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->ready, NULL);
	p->threads = flaghook__calloc(a, (size_t)threads, sizeof(pthread_t));
	if (!p->threads) {
		flaghook__pool_stop(p);
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p)) {
			flaghook__pool_stop(p);
			return flaghook__error(FLAGHOOK_ESYSTEM, "could not start pool thread %d of %d", i + 1, threads);
		}
		p->nthreads = i + 1;
	}
	*out = p;
	return 0;
}
