/*
 * The layout-free surface for bindings (ffi/): events and options read
 * from JSON into the structs the C API takes, results and logs written as
 * JSON into a queue a host's event loop can watch, constants by name.
 */
#ifndef FLAGHOOK_FFI_H
#define FLAGHOOK_FFI_H

#include "client/client.h"
#include "ffi/json_read.h"

/* An event read from JSON; ev points into r's memory. */
typedef struct fh_event_json {
	fh_jr r;
	flaghook_event ev;
} fh_event_json;

int flaghook__event_json(fh_event_json *e, const char *json, size_t len, const flaghook_allocator *a);
void flaghook__event_json_free(fh_event_json *e);

/* Options read from JSON; the pointers in `o` point into r's memory, and
 * `retry` is what o->retry points to when "retry" was given. */
typedef struct fh_options_json {
	fh_jr r;
	flaghook_retry_policy retry;
	char *secret_bytes;         /* "secret_hex" decoded (in r's memory; wiped) */
	size_t secret_len;
	union {
		flaghook_client_options client;
		flaghook_endpoint_options endpoint;
		flaghook_render_options render;
	} o;
} fh_options_json;

int flaghook__client_options_json(fh_options_json *x, const char *json);
int flaghook__endpoint_options_json(fh_options_json *x, const char *json);
int flaghook__render_options_json(fh_options_json *x, const char *json);
void flaghook__options_json_free(fh_options_json *x);

#endif
