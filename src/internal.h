/* Internal declarations shared by the library's sources.  Nothing here is
 * exported: the build uses -fvisibility=hidden and only FLAGHOOK_EXTERN
 * functions are visible. */
#ifndef FLAGHOOK_INTERNAL_H
#define FLAGHOOK_INTERNAL_H

#include "flaghook.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/fail.h"
#include "util/version.h"

#include <stdarg.h>
#include <stdbool.h>

/* ---- time (time.c) ---- */

/* How Flagsmith's three code paths print a datetime. */
typedef enum {
	FH_TIME_STRFTIME, /* strftime("%Y-%m-%dT%H:%M:%S.%fZ"): always six digits */
	FH_TIME_DRF,      /* REST framework isoformat: ".ffffff" only when non-zero */
	FH_TIME_DJANGO,   /* DjangoJSONEncoder: milliseconds, only when non-zero */
} fh_time_style;
/* Writes the UTC time to out with its length; -1 when the year is outside
 * 1..9999 (what Python's datetime can hold). */
int flaghook__format_time(char out[32], int64_t us, fh_time_style style);

/* ---- JSON writer (json_writer.c) ---- */

#define FH_JSON_MAX_DEPTH 32

typedef struct fh_json {
	flaghook_buf *out;
	size_t limit;
	size_t room;          /* limit, or SIZE_MAX for none */
	bool compact;
	int depth;
	bool first[FH_JSON_MAX_DEPTH];     /* nothing written yet in this container */
	bool in_object[FH_JSON_MAX_DEPTH]; /* object (true) or array */
	/* Used only by the key-order assert, but always present: the layout
	 * must not depend on NDEBUG, which tests and library may set apart. */
	const char *last_key[FH_JSON_MAX_DEPTH];
	int err;              /* first error; later writes are no-ops */
	size_t bad_offset;    /* byte offset of an invalid UTF-8 sequence */
} fh_json;

void flaghook__json_init(fh_json *w, flaghook_buf *out, size_t limit, bool compact);
void flaghook__json_object_begin(fh_json *w);
void flaghook__json_object_end(fh_json *w);
void flaghook__json_array_begin(fh_json *w);
void flaghook__json_array_end(fh_json *w);
/* Keys must come in code-point order: render.c writes members pre-sorted. */
void flaghook__json_key(fh_json *w, const char *key);
/* A constant key of plain ASCII: written as is, no escaping pass. */
void flaghook__json_key_ascii(fh_json *w, const char *key, size_t len);
/* NUL-terminates the output (not counted in its size). */
void flaghook__json_finish(fh_json *w);
void flaghook__json_string(fh_json *w, const char *s, size_t len);
void flaghook__json_cstring(fh_json *w, const char *s); /* NULL writes null */
void flaghook__json_int(fh_json *w, int64_t v);
void flaghook__json_double(fh_json *w, double v);
void flaghook__json_bool(fh_json *w, bool v);
void flaghook__json_null(fh_json *w);

/* Python repr() of a finite double into out (>= 32 bytes); returns length,
 * or -1 for NaN and infinities. */
int flaghook__double_repr(char out[32], double v);
/* Checks UTF-8; returns the offset of the first bad byte or (size_t)-1. */
size_t flaghook__utf8_invalid_at(const char *s, size_t len);

/* ---- signing (sign.c) ---- */

int flaghook__hmac_sha256(uint8_t out[32], const void *key, size_t key_len,
                          const void *a, size_t a_len);
void flaghook__hex(char *out, const uint8_t *in, size_t n);

/* ---- rendering (render.c) ---- */

/* Renders with an explicit error-context prefix ("event"). */
int flaghook__render(flaghook_buf *out, const flaghook_event *ev, int profile,
                     uint32_t flags, size_t max_body);
/* Writes one typed value (objects with sorted keys), as for extra members. */
int flaghook__render_value(flaghook_buf *out, const flaghook_value *v, uint32_t flags);
/* Routing ids of a valid event (0 when none). */
void flaghook__event_scope(const flaghook_event *ev, int64_t *env_id, int64_t *org_id);

/* ---- default plug-ins (transport_curl.c, storage_memory.c) ---- */

/* Default plug-ins. */
int flaghook__transport_curl(flaghook_transport *out, const flaghook_allocator *a,
                             const char *ca_file);
int flaghook__storage_memory(flaghook_storage *out, const flaghook_allocator *a);
/* Checks a query's version and state (NULL is every delivery); `who`
 * names it in the error (storage.c). */
int flaghook__check_query(const flaghook_query *q, const char *who);
/* Deliveries the memory store holds (for tests). */
size_t flaghook__storage_memory_count(void *user_data);

#endif
