/*
 * The default storage: an in-memory outbox with the whole storage table.
 *
 * A delivery the client holds costs one small slot in an open-addressing
 * table (id, endpoint, attempts, event id), so recording costs O(1) however
 * many are pending, and its body is not copied: the client has it.  A
 * delivery nobody holds (a FIFO delivery waiting its turn, a re-queued one)
 * keeps a full copy, since claim must hand it out.  Finished deliveries
 * (delivered and dead letters) and attempts are kept in bounded rings for
 * inspection and re-queueing.  Nothing survives the process: it is not
 * FLAGHOOK_STORAGE_DURABLE, so shutdown abandons what is left.
 */
#include "plugins/plugins.h"
#include "util/query.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_MAX 4096        /* finished deliveries kept */
#define ATTEMPTS_MAX 4096       /* attempts kept */
#define ERROR_MAX 160
#define RESPONSE_MAX 256

/* A delivery.  In the table it is pending; `body` is a copy only while
 * nobody holds it (claim must hand it out: released or re-queued), NULL
 * while the client holds it.  Finished ones move to the history ring with
 * a copy. */
typedef struct row {
	uint64_t id;                /* 0: an empty table slot (ids start at 1) */
	uint64_t endpoint_id;
	int64_t created_us, next_attempt_us, updated_us;
	int32_t event_type, attempts, last_status, state;
	int8_t fifo, held;
	int8_t in_loose;            /* listed in `loose`: held by nobody */
	char event_id[38];
	void *body;
	size_t body_len;
} row;

typedef struct mattempt {
	uint64_t delivery_id, endpoint_id;
	char event_id[40];
	int32_t number, outcome, status, errclass;
	int64_t started_us, finished_us, next_attempt_us;
	char error[ERROR_MAX];
	char response[RESPONSE_MAX];
	size_t response_len;
} mattempt;

typedef struct memory_store {
	const flaghook_allocator *allocator;
	pthread_mutex_t lock;
	uint64_t next_id;
	row *slots;
	size_t cap;                 /* a power of two, at least twice count */
	size_t count;               /* pending deliveries */
	uint64_t *loose;            /* ids of the rows nobody holds */
	size_t nloose, loose_cap;
	row *history[HISTORY_MAX];  /* finished, a ring, oldest at hist_next - hist_len */
	size_t hist_next, hist_len;
	mattempt *log;              /* ATTEMPTS_MAX, a ring */
	size_t log_next, log_len;
} memory_store;

/* ---- the table ---- */

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

static row *lookup(memory_store *m, uint64_t id)
{
	if (!m->cap || !id)
		return NULL;
	row *r = &m->slots[find(m, id)];
	return r->id ? r : NULL;
}

static int grow(memory_store *m, size_t need)
{
	size_t cap = m->cap ? m->cap : 64;
	while (cap < 2 * need)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	row *old = m->slots;
	size_t old_cap = m->cap;
	row *slots = flaghook__calloc(m->allocator, cap, sizeof(*slots));
	if (!slots)
		return flaghook__error(FLAGHOOK_ENOMEM, "memory store: out of memory");
	m->slots = slots;
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].id)
			m->slots[find(m, old[i].id)] = old[i];
	flaghook__free(m->allocator, old);
	return 0;
}

/* Removes slot i, shifting later members of its probe run back so lookups
 * never need tombstones.  The row's body is the caller's business. */
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

static int loose_reserve(memory_store *m, size_t more)
{
	if (m->nloose + more <= m->loose_cap)
		return 0;
	size_t cap = m->loose_cap ? m->loose_cap : 16;
	while (cap < m->nloose + more)
		cap *= 2;
	uint64_t *grown = flaghook__realloc(m->allocator, m->loose, cap * sizeof(*grown));
	if (!grown)
		return flaghook__error(FLAGHOOK_ENOMEM, "memory store: out of memory");
	m->loose = grown;
	m->loose_cap = cap;
	return 0;
}

static void loose_remove(memory_store *m, uint64_t id)
{
	for (size_t i = 0; i < m->nloose; i++) {
		if (m->loose[i] == id) {
			memmove(&m->loose[i], &m->loose[i + 1], (m->nloose - i - 1) * sizeof(*m->loose));
			m->nloose--;
			return;
		}
	}
}

static void row_free(memory_store *m, row *r)
{
	if (r) {
		flaghook__free(m->allocator, r->body);
		flaghook__free(m->allocator, r);
	}
}

static void history_add(memory_store *m, row *r)
{
	if (m->hist_len == HISTORY_MAX)
		row_free(m, m->history[m->hist_next]); /* the oldest goes */
	else
		m->hist_len++;
	m->history[m->hist_next] = r;
	m->hist_next = (m->hist_next + 1) % HISTORY_MAX;
}

/* The i-th oldest finished delivery. */
static row **history_at(memory_store *m, size_t i)
{
	return &m->history[(m->hist_next + HISTORY_MAX - m->hist_len + i) % HISTORY_MAX];
}

static void copy_out(const row *r, flaghook_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->version = FLAGHOOK_DELIVERY_VERSION;
	d->id = r->id;
	d->event_id = r->event_id;
	d->event_type = r->event_type;
	d->endpoint_id = r->endpoint_id;
	d->body = r->body ? r->body : "";
	d->body_len = r->body ? r->body_len : 0;
	d->attempts = r->attempts;
	d->created_us = r->created_us;
	d->next_attempt_us = r->next_attempt_us;
	d->fifo = r->fifo;
	d->state = r->state;
	d->last_status = r->last_status;
	d->updated_us = r->updated_us;
}

static bool query_matches(const flaghook_query *q, const row *r)
{
	if (!q)
		return true;
	return (q->state == FLAGHOOK_STATE_ANY || q->state == r->state) &&
	       (!q->delivery_id || q->delivery_id == r->id) && (!q->endpoint_id || q->endpoint_id == r->endpoint_id) &&
	       (!q->since_us || r->created_us >= q->since_us);
}

static int check_delivery(const flaghook_delivery *d)
{
	int rc = flaghook__check_version(d->version, FLAGHOOK_DELIVERY_VERSION, "memory store: delivery");
	if (rc)
		return rc;
	if (!d->event_id || strlen(d->event_id) >= sizeof(((row *)0)->event_id))
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: delivery event_id is NULL or too long");
	if (!d->body && d->body_len)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: delivery body is NULL with body_len > 0");
	return 0;
}

/* ---- the storage table ---- */

static int mem_put(flaghook_delivery *d, size_t n, void *ud)
{
	memory_store *m = ud;
	if (!d && n)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: deliveries is NULL");
	for (size_t i = 0; i < n; i++) {
		int rc = check_delivery(&d[i]);
		if (rc)
			return rc;
	}
	int64_t now = flaghook__now_us();
	pthread_mutex_lock(&m->lock);
	int rc = grow(m, m->count + n); /* all or none: room first */
	if (!rc) {
		for (size_t i = 0; i < n; i++) {
			uint64_t id = m->next_id++;
			row *r = &m->slots[find(m, id)];
			/* Held by the client, which has the body: no copy. */
			*r = (row){ .id = id, .endpoint_id = d[i].endpoint_id, .created_us = d[i].created_us,
			            .next_attempt_us = d[i].next_attempt_us, .updated_us = now,
			            .event_type = d[i].event_type, .attempts = d[i].attempts,
			            .state = FLAGHOOK_DELIVERY_PENDING, .fifo = d[i].fifo != 0, .held = 1 };
			snprintf(r->event_id, sizeof(r->event_id), "%s", d[i].event_id);
			m->count++;
			d[i].id = id;
			d[i].claimed = 1;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = (*(row *const *)a)->id, y = (*(row *const *)b)->id;
	return x < y ? -1 : x > y;
}

/* The oldest pending delivery of a FIFO endpoint, held or not (lock held). */
static uint64_t oldest_pending(memory_store *m, uint64_t endpoint_id)
{
	uint64_t oldest = UINT64_MAX;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].id && m->slots[i].endpoint_id == endpoint_id && m->slots[i].id < oldest)
			oldest = m->slots[i].id;
	return oldest;
}

static int mem_claim(int64_t now, int64_t horizon, size_t max,
                     int (*take)(const flaghook_delivery *, void *), void *arg, void *ud)
{
	memory_store *m = ud;
	if (!take)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: take is NULL");
	pthread_mutex_lock(&m->lock);
	if (!m->nloose) {
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	row **c = flaghook__calloc(m->allocator, m->nloose, sizeof(*c));
	if (!c) {
		pthread_mutex_unlock(&m->lock);
		return flaghook__error(FLAGHOOK_ENOMEM, "memory store: out of memory");
	}
	size_t n = 0, taken = 0;
	for (size_t i = 0; i < m->nloose; i++) {
		row *r = lookup(m, m->loose[i]);
		if (r)
			c[n++] = r;
	}
	qsort(c, n, sizeof(*c), by_id);
	/* take() runs under the lock: the client only copies what it is given.
	 * Rows are looked up by id again: nothing moves them meanwhile. */
	for (size_t i = 0; i < n && taken < max; i++) {
		row *r = c[i];
		if (r->held || r->next_attempt_us > now + horizon)
			continue;
		/* FIFO (released or re-queued ones only, so a rare scan): only an
		 * endpoint's oldest pending delivery may go. */
		if (r->fifo && oldest_pending(m, r->endpoint_id) < r->id)
			continue;
		flaghook_delivery d;
		copy_out(r, &d);
		int verdict = take(&d, arg);
		if (verdict < 0)
			break;
		if (verdict > 0)
			continue;
		/* Held now: the client has the body. */
		r->held = 1;
		r->in_loose = 0;
		loose_remove(m, r->id);
		flaghook__free(m->allocator, r->body);
		r->body = NULL;
		taken++;
	}
	pthread_mutex_unlock(&m->lock);
	flaghook__free(m->allocator, c);
	return 0;
}

static void log_attempt(memory_store *m, const row *r, const flaghook_attempt *a)
{
	mattempt *e = &m->log[m->log_next];
	memset(e, 0, sizeof(*e));
	e->delivery_id = r->id;
	e->endpoint_id = r->endpoint_id;
	snprintf(e->event_id, sizeof(e->event_id), "%s", r->event_id);
	e->number = a->number;
	e->outcome = a->outcome;
	e->status = a->status;
	e->errclass = a->errclass;
	e->started_us = a->started_us;
	e->finished_us = a->finished_us;
	e->next_attempt_us = a->next_attempt_us;
	snprintf(e->error, sizeof(e->error), "%s", a->error ? a->error : "");
	e->response_len = a->response ? (a->response_len < RESPONSE_MAX ? a->response_len : RESPONSE_MAX) : 0;
	if (e->response_len)
		memcpy(e->response, a->response, e->response_len);
	m->log_next = (m->log_next + 1) % ATTEMPTS_MAX;
	if (m->log_len < ATTEMPTS_MAX)
		m->log_len++;
}

static int mem_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	memory_store *m = ud;
	if (!d || !a)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: delivery or attempt is NULL");
	int rc = flaghook__check_version(a->version, FLAGHOOK_ATTEMPT_VERSION, "memory store: attempt");
	if (rc)
		return rc;
	if (a->outcome < FLAGHOOK_OUTCOME_DELIVERED || a->outcome > FLAGHOOK_OUTCOME_RELEASED)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: outcome %d is not an outcome", (int)a->outcome);
	if (!d->body && d->body_len)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: delivery body is NULL with body_len > 0");
	/* A copy made before the lock, for an outcome that keeps one.  The
	 * history of finished deliveries is best effort: out of memory, a
	 * finished delivery is simply not kept (its result said what became
	 * of it).  A release needs its copy: claim must hand it out. */
	void *copy = NULL;
	bool needs_copy = a->outcome != FLAGHOOK_OUTCOME_RETRY && a->outcome != FLAGHOOK_OUTCOME_ABANDONED;
	bool copied = !needs_copy || !d->body_len || (copy = flaghook__memdup(m->allocator, d->body, d->body_len));
	row *hist = needs_copy && a->outcome != FLAGHOOK_OUTCOME_RELEASED
	                ? flaghook__calloc(m->allocator, 1, sizeof(*hist)) : NULL;
	if (a->outcome == FLAGHOOK_OUTCOME_RELEASED && !copied)
		return flaghook__error(FLAGHOOK_ENOMEM, "memory store: out of memory");
	if (!copied || (needs_copy && a->outcome != FLAGHOOK_OUTCOME_RELEASED && !hist)) {
		flaghook__free(m->allocator, copy);
		flaghook__free(m->allocator, hist);
		copy = NULL;
		hist = NULL;
	}
	pthread_mutex_lock(&m->lock);
	row *r = lookup(m, d->id);
	if (!r) {
		pthread_mutex_unlock(&m->lock);
		flaghook__free(m->allocator, copy);
		flaghook__free(m->allocator, hist);
		return flaghook__error(FLAGHOOK_ENOTFOUND, "memory store: no pending delivery %llu",
		                       (unsigned long long)d->id);
	}
	if (a->outcome == FLAGHOOK_OUTCOME_RELEASED && !r->in_loose && loose_reserve(m, 1)) {
		pthread_mutex_unlock(&m->lock);
		flaghook__free(m->allocator, copy);
		flaghook__free(m->allocator, hist);
		return FLAGHOOK_ENOMEM;
	}
	if (a->number > 0) {
		log_attempt(m, r, a);
		r->attempts = a->number;
		r->last_status = a->status;
	}
	r->updated_us = flaghook__now_us();
	switch (a->outcome) {
	case FLAGHOOK_OUTCOME_RETRY:
		r->next_attempt_us = a->next_attempt_us;
		r->held = 1;
		break;
	case FLAGHOOK_OUTCOME_RELEASED:
		/* Pending again, held by nobody: claim hands it out from a copy. */
		if (!r->in_loose) {
			flaghook__free(m->allocator, r->body);
			r->body = copy;
			r->body_len = d->body_len;
			copy = NULL;
			m->loose[m->nloose++] = r->id;
			r->in_loose = 1;
		}
		r->held = 0;
		break;
	case FLAGHOOK_OUTCOME_DELIVERED:
	case FLAGHOOK_OUTCOME_GAVE_UP:
		/* Kept for inspection and re-queueing, a bounded number of them. */
		if (r->in_loose)
			loose_remove(m, r->id);
		if (hist) {
			*hist = *r;
			if (!hist->body) {
				hist->body = copy;
				hist->body_len = d->body_len;
				copy = NULL;
			}
			hist->state = a->outcome == FLAGHOOK_OUTCOME_DELIVERED ? FLAGHOOK_DELIVERY_DELIVERED
			                                                         : FLAGHOOK_DELIVERY_DEAD;
			hist->held = 0;
			hist->in_loose = 0;
			history_add(m, hist);
			hist = NULL;
		} else {
			flaghook__free(m->allocator, r->body);
		}
		erase(m, (size_t)(r - m->slots));
		break;
	default: /* ABANDONED: nothing outlives the process here */
		if (r->in_loose)
			loose_remove(m, r->id);
		flaghook__free(m->allocator, r->body);
		erase(m, (size_t)(r - m->slots));
		break;
	}
	pthread_mutex_unlock(&m->lock);
	flaghook__free(m->allocator, copy);
	flaghook__free(m->allocator, hist);
	return 0;
}

/* Every delivery, finished and pending, in id order (lock held). */
static row **all_rows(memory_store *m, size_t *n)
{
	size_t cap = m->hist_len + m->count;
	row **all = flaghook__calloc(m->allocator, cap ? cap : 1, sizeof(*all));
	if (!all)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < m->hist_len; i++)
		all[k++] = *history_at(m, i);
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].id)
			all[k++] = &m->slots[i];
	qsort(all, k, sizeof(*all), by_id);
	*n = k;
	return all;
}

static int mem_list(const flaghook_query *q, int (*each)(const flaghook_delivery *, void *), void *arg,
                    void *ud)
{
	memory_store *m = ud;
	int rc = flaghook__check_query(q, "memory store: query");
	if (rc)
		return rc;
	if (!each)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: each is NULL");
	size_t limit = q && q->limit ? q->limit : SIZE_MAX, listed = 0, n = 0;
	pthread_mutex_lock(&m->lock);
	row **all = all_rows(m, &n);
	if (!all) {
		pthread_mutex_unlock(&m->lock);
		return flaghook__error(FLAGHOOK_ENOMEM, "memory store: out of memory");
	}
	/* A pending delivery the client holds is listed without its body:
	 * the store keeps no copy of what the client has. */
	for (size_t i = 0; i < n && listed < limit; i++) {
		if (!query_matches(q, all[i]))
			continue;
		flaghook_delivery d;
		copy_out(all[i], &d);
		listed++;
		if (each(&d, arg))
			break;
	}
	pthread_mutex_unlock(&m->lock);
	flaghook__free(m->allocator, all);
	return 0;
}

static int mem_attempts(const flaghook_query *q, int (*each)(const flaghook_attempt *, void *), void *arg,
                        void *ud)
{
	memory_store *m = ud;
	int rc = flaghook__check_query(q, "memory store: query");
	if (rc)
		return rc;
	if (!each)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: each is NULL");
	size_t limit = q && q->limit ? q->limit : SIZE_MAX, listed = 0;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->log_len && listed < limit; i++) {
		const mattempt *e = &m->log[(m->log_next + ATTEMPTS_MAX - m->log_len + i) % ATTEMPTS_MAX];
		if (q && ((q->delivery_id && q->delivery_id != e->delivery_id) ||
		          (q->endpoint_id && q->endpoint_id != e->endpoint_id) ||
		          (q->since_us && e->started_us < q->since_us)))
			continue;
		flaghook_attempt a = {
			.version = FLAGHOOK_ATTEMPT_VERSION,
			.delivery_id = e->delivery_id,
			.endpoint_id = e->endpoint_id,
			.event_id = e->event_id,
			.number = e->number,
			.outcome = e->outcome,
			.status = e->status,
			.errclass = e->errclass,
			.started_us = e->started_us,
			.finished_us = e->finished_us,
			.next_attempt_us = e->next_attempt_us,
			.error = e->error,
			.response = e->response,
			.response_len = e->response_len,
		};
		listed++;
		if (each(&a, arg))
			break;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_requeue(const flaghook_query *q, uint64_t *count, void *ud)
{
	memory_store *m = ud;
	int rc = flaghook__check_query(q, "memory store: query");
	if (rc)
		return rc;
	uint64_t n = 0;
	size_t limit = q && q->limit ? q->limit : SIZE_MAX;
	pthread_mutex_lock(&m->lock);
	int64_t now = flaghook__now_us();
	size_t len = m->hist_len, kept = 0;
	row **tmp = flaghook__calloc(m->allocator, len ? len : 1, sizeof(*tmp));
	rc = tmp ? grow(m, m->count + len) : flaghook__error(FLAGHOOK_ENOMEM, "memory store: out of memory");
	if (!rc)
		rc = loose_reserve(m, len);
	if (!rc) {
		/* Oldest first; what stays is put back in the same order. */
		for (size_t i = 0; i < len; i++)
			tmp[i] = *history_at(m, i);
		m->hist_len = m->hist_next = 0;
		for (size_t i = 0; i < len; i++) {
			row *h = tmp[i];
			if (n < limit && query_matches(q, h)) {
				row *r = &m->slots[find(m, h->id)];
				*r = *h;
				r->state = FLAGHOOK_DELIVERY_PENDING;
				r->attempts = 0;
				r->next_attempt_us = now;
				r->updated_us = now;
				r->held = 0;
				r->in_loose = 1;
				m->count++;
				m->loose[m->nloose++] = r->id;
				flaghook__free(m->allocator, h); /* the body moved to the row */
				n++;
			} else {
				tmp[kept++] = h;
			}
		}
		for (size_t i = 0; i < kept; i++)
			history_add(m, tmp[i]);
	}
	pthread_mutex_unlock(&m->lock);
	flaghook__free(m->allocator, tmp);
	if (!rc && count)
		*count = n;
	return rc;
}

static int mem_pending(uint64_t *count, void *ud)
{
	memory_store *m = ud;
	if (!count)
		return flaghook__error(FLAGHOOK_EINVAL, "memory store: count is NULL");
	pthread_mutex_lock(&m->lock);
	*count = m->count;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void mem_destroy(void *ud)
{
	memory_store *m = ud;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].id)
			flaghook__free(m->allocator, m->slots[i].body);
	for (size_t i = 0; i < m->hist_len; i++)
		row_free(m, *history_at(m, i));
	pthread_mutex_destroy(&m->lock);
	flaghook__free(m->allocator, m->slots);
	flaghook__free(m->allocator, m->loose);
	flaghook__free(m->allocator, m->log);
	flaghook__free(m->allocator, m);
}

size_t flaghook__storage_memory_count(void *ud)
{
	uint64_t n = 0;
	mem_pending(&n, ud);
	return (size_t)n;
}

int flaghook__storage_memory(flaghook_storage *out, const flaghook_allocator *a)
{
	memory_store *m = flaghook__calloc(a, 1, sizeof(*m));
	if (!m)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	m->allocator = a;
	m->next_id = 1;
	/* The attempt log is allocated once, so recording never allocates for
	 * it: about 1.8 MB of address space, touched only as it fills. */
	m->log = flaghook__calloc(a, ATTEMPTS_MAX, sizeof(*m->log));
	if (!m->log) {
		flaghook__free(a, m);
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&m->lock, NULL);
	*out = (flaghook_storage){
		.version = FLAGHOOK_STORAGE_VERSION,
		.flags = 0,
		.put = mem_put,
		.claim = mem_claim,
		.record = mem_record,
		.list = mem_list,
		.attempts = mem_attempts,
		.requeue = mem_requeue,
		.pending = mem_pending,
		.destroy = mem_destroy,
		.user_data = m,
	};
	return 0;
}
