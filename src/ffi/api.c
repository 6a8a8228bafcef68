/*
 * The layout-free API for bindings: each function reads its JSON into
 * the structs the C API takes and calls that API, so a body rendered from
 * JSON is the same bytes as one rendered from structs, and an endpoint
 * added from JSON passes the same checks.  Every failure's detail goes to
 * the caller's `error` buffer as well, for a binding whose call ran on a
 * worker thread (koffi's .async, a Python thread pool).
 */
#include "ffi/ffi.h"
#include "engine/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rc's detail (this thread's) into the caller's buffer; "" on success. */
static int said(int rc, char *error, size_t error_size)
{
	if (error && error_size)
		snprintf(error, error_size, "%s", rc ? flaghook_last_error() : "");
	return rc;
}

static int client_said(flaghook_client *c, int rc, char *error, size_t error_size)
{
	return said(flaghook__client_fail(c, rc), error, error_size);
}

void flaghook_free(void *ptr)
{
	free(ptr);
}

/* A flaghook_buf made with the default allocator, handed over as a
 * malloc'd string. */
static void hand_over(flaghook_buf *b, char **out, size_t *out_len)
{
	*out = b->ptr;
	*out_len = b->size;
	memset(b, 0, sizeof(*b));
}

int flaghook_render_json(char **out, size_t *out_len, const char *event_json, size_t event_len,
                         const char *options_json, char *error, size_t error_size)
{
	flaghook__error_clear();
	if (!out || !out_len || !event_json)
		return said(flaghook__error(FLAGHOOK_EINVAL, "out, out_len or event_json is NULL"), error, error_size);
	*out = NULL;
	*out_len = 0;
	fh_options_json opts;
	int rc = flaghook__render_options_json(&opts, options_json);
	if (rc)
		return said(rc, error, error_size);
	fh_event_json e;
	rc = flaghook__event_json(&e, event_json, event_len, NULL);
	if (!rc) {
		flaghook_buf body = FLAGHOOK_BUF_INIT;
		rc = flaghook_render(&body, &e.ev, &opts.o.render);
		if (!rc)
			hand_over(&body, out, out_len);
		flaghook__event_json_free(&e);
	}
	flaghook__options_json_free(&opts);
	return said(rc, error, error_size);
}

int flaghook_client_new_json(flaghook_client **out, const char *options_json, char *error, size_t error_size)
{
	flaghook__error_clear();
	if (!out)
		return said(flaghook__error(FLAGHOOK_EINVAL, "out is NULL"), error, error_size);
	*out = NULL;
	fh_options_json opts;
	int rc = flaghook__client_options_json(&opts, options_json);
	if (rc)
		return said(rc, error, error_size);
	rc = flaghook_client_new(out, &opts.o.client);
	flaghook__options_json_free(&opts);
	return said(rc, error, error_size);
}

int flaghook_endpoint_add_json(flaghook_client *c, uint64_t *out_id, const char *options_json, char *error,
                               size_t error_size)
{
	flaghook__error_clear();
	if (!c)
		return said(flaghook__error(FLAGHOOK_EINVAL, "client is NULL"), error, error_size);
	fh_options_json opts;
	int rc = flaghook__endpoint_options_json(&opts, options_json);
	if (rc)
		return client_said(c, rc, error, error_size);
	rc = flaghook_endpoint_add(c, out_id, &opts.o.endpoint);
	flaghook__options_json_free(&opts);
	return said(rc, error, error_size);
}

int flaghook_emit_json(flaghook_client *c, const char *event_json, size_t event_len, char *error, size_t error_size)
{
	flaghook__error_clear();
	if (!c || !event_json)
		return said(flaghook__error(FLAGHOOK_EINVAL, "client or event_json is NULL"), error, error_size);
	fh_event_json e;
	int rc = flaghook__event_json(&e, event_json, event_len, c->allocator);
	if (rc)
		return client_said(c, rc, error, error_size);
	rc = flaghook_emit(c, &e.ev);
	flaghook__event_json_free(&e);
	return said(rc, error, error_size);
}

int flaghook_results_fd(flaghook_client *c, int *out_fd)
{
	flaghook__error_clear();
	if (!c || !out_fd)
		return flaghook__error(FLAGHOOK_EINVAL, "client or out_fd is NULL");
	if (!c->result_queue)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL, "the client keeps no result queue "
		                                                "(client option result_queue)"));
	*out_fd = c->queue_fd;
	return 0;
}

int flaghook_result_next(flaghook_client *c, int64_t timeout_ms, char **out, size_t *out_len)
{
	flaghook__error_clear();
	if (!c || !out || !out_len)
		return flaghook__error(FLAGHOOK_EINVAL, "client, out or out_len is NULL");
	*out = NULL;
	*out_len = 0;
	if (!c->result_queue)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL, "the client keeps no result queue "
		                                                "(client option result_queue)"));
	/* A timeout is no failure of the client's: it is not its last error. */
	return flaghook__queue_pop(c, timeout_ms, out, out_len);
}
