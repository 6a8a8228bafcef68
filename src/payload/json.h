/* The JSON writer: the one place a body byte is written (json_writer.c). */
#ifndef FLAGHOOK_PAYLOAD_JSON_H
#define FLAGHOOK_PAYLOAD_JSON_H

#include "internal.h"

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
void flaghook__json_uint(fh_json *w, uint64_t v); /* ids and counters */
void flaghook__json_double(fh_json *w, double v);
void flaghook__json_bool(fh_json *w, bool v);
void flaghook__json_null(fh_json *w);

/* Python repr() of a finite double into out (>= 32 bytes); returns length,
 * or -1 for NaN and infinities. */
int flaghook__double_repr(char out[32], double v);
/* Checks UTF-8; returns the offset of the first bad byte or (size_t)-1. */
size_t flaghook__utf8_invalid_at(const char *s, size_t len);

#endif
