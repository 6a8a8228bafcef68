/* The storage table's public side: init functions and the inspection and
 * replay calls, which check their arguments and hand over to the store. */
#include "client/client.h"
#include "engine/engine.h"
#include "util/query.h"

static const size_t query_sizes[] = { 0, sizeof(flaghook_query) };

int flaghook_query_init(flaghook_query *q, unsigned int version)
{
	int rc = flaghook__struct_init(q, version, query_sizes, FH_COUNT(query_sizes), "query");
	if (!rc)
		q->state = FLAGHOOK_STATE_ANY;
	return rc;
}

static int check(const flaghook_storage *s, const flaghook_query *q, const void *op, const char *what)
{
	flaghook__error_clear();
	if (!s)
		return flaghook__error(FLAGHOOK_EINVAL, "storage is NULL");
	int rc = flaghook__check_version(s->version, FLAGHOOK_STORAGE_VERSION, "storage");
	if (rc || (rc = flaghook__check_query(q, "query")))
		return rc;
	if (!op)
		return flaghook__error(FLAGHOOK_ENOTSUP, "this store has no %s", what);
	return 0;
}

/* A store's failure keeps its own detail; one that set none gets ours. */
static int store_rc(int rc, const char *what)
{
	if (rc && !flaghook_last_error()[0])
		flaghook__error(rc, "storage %s failed: %s", what, flaghook_strerror(rc));
	return rc;
}

int flaghook_storage_list(const flaghook_storage *s, const flaghook_query *q,
                          int (*each)(const flaghook_delivery *, void *), void *arg)
{
	int rc = check(s, q, s ? (const void *)s->list : NULL, "list");
	if (rc)
		return rc;
	if (!each)
		return flaghook__error(FLAGHOOK_EINVAL, "each is NULL");
	return store_rc(s->list(q, each, arg, s->user_data), "list");
}

int flaghook_storage_attempts(const flaghook_storage *s, const flaghook_query *q,
                              int (*each)(const flaghook_attempt *, void *), void *arg)
{
	int rc = check(s, q, s ? (const void *)s->attempts : NULL, "attempt log");
	if (rc)
		return rc;
	if (!each)
		return flaghook__error(FLAGHOOK_EINVAL, "each is NULL");
	return store_rc(s->attempts(q, each, arg, s->user_data), "attempts");
}

int flaghook_storage_requeue(const flaghook_storage *s, const flaghook_query *q, uint64_t *count)
{
	if (count)
		*count = 0;
	int rc = check(s, q, s ? (const void *)s->requeue : NULL, "requeue");
	if (rc)
		return rc;
	uint64_t n = 0;
	rc = store_rc(s->requeue(q, &n, s->user_data), "requeue");
	if (!rc && count)
		*count = n;
	return rc;
}

void flaghook_storage_close(flaghook_storage *s)
{
	if (!s)
		return;
	if (s->destroy)
		s->destroy(s->user_data);
	s->destroy = NULL;
	s->user_data = NULL;
}

int flaghook_client_requeue(flaghook_client *c, const flaghook_query *q, uint64_t *count)
{
	if (!c) {
		flaghook__error_clear();
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	}
	int rc = flaghook_storage_requeue(&c->storage, q, count);
	if (rc)
		return flaghook__client_fail(c, rc);
	flaghook__engine_poll_soon(c);
	return 0;
}
