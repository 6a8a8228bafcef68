/*
 * Reading JSON from a caller (the layout-free API for bindings): cJSON
 * parses, and this module adds what cJSON does not do.
 *
 * - Integers stay exact over all of int64: cJSON keeps numbers as doubles
 *   (exact only to 2^53), so every number literal's text is found in the
 *   input in document order, matched with cJSON's items in the same order,
 *   and parsed again from its text (an integer literal with strtoll, one
 *   with a fraction or an exponent as a float, as Python's json does).
 * - Duplicate keys and invalid UTF-8 are errors, as are unknown keys where
 *   the caller says so.
 * - Errors name the JSON path: "$.data.new_state.feature.id: ...".
 * - Everything allocated while reading goes into one arena, freed at once.
 */
#ifndef FLAGHOOK_FFI_JSON_READ_H
#define FLAGHOOK_FFI_JSON_READ_H

#include "internal.h"

#include <cjson/cJSON.h>

typedef struct fh_arena_block fh_arena_block;

typedef struct fh_jr {
	const flaghook_allocator *allocator;
	cJSON *root;
	const char *text;
	struct { size_t start, len; } *numbers; /* every number literal, in order */
	size_t nnumbers;
	fh_arena_block *blocks;
	int err;
	int code;                   /* what a bad document is: FLAGHOOK_EEVENT or _EINVAL */
	int depth;
	const char *path[40];       /* keys; NULL with an index */
	long index[40];
} fh_jr;

/* Parses `len` bytes of JSON (NUL-terminated or not).  0, or `code` (what
 * a bad document is: FLAGHOOK_EEVENT for an event, FLAGHOOK_EINVAL for
 * options) with the detail set ("not valid JSON at byte N"); every later
 * failure of the typed reads below is `code` too. */
int flaghook__jr_open(fh_jr *r, const char *json, size_t len, const flaghook_allocator *a, int code);
void flaghook__jr_close(fh_jr *r);

/* Memory that lives until jr_close; NULL sets ENOMEM. */
void *flaghook__jr_alloc(fh_jr *r, size_t size);

/* The path, for what a caller reports. */
void flaghook__jr_push(fh_jr *r, const char *key);
void flaghook__jr_push_index(fh_jr *r, long index);
void flaghook__jr_pop(fh_jr *r);
/* Records the first error: `code` with the path and
 * `what`; returns false, so a caller can `return flaghook__jr_fail(...)`. */
bool flaghook__jr_fail(fh_jr *r, int code, const char *what);

/* An object's members must all be among `known` (NULL-terminated) and
 * appear once; false after failing. */
bool flaghook__jr_keys(fh_jr *r, const cJSON *obj, const char *const *known);

/* Typed reads of a member (`obj` an object) or an item.  `need`: absent
 * is an error (else *out keeps its value and true is returned).  Strings
 * are checked for UTF-8 and returned as cJSON's own (valid while open). */
bool flaghook__jr_int(fh_jr *r, const cJSON *obj, const char *key, bool need, int64_t *out);
bool flaghook__jr_bool(fh_jr *r, const cJSON *obj, const char *key, bool need, int32_t *out);
bool flaghook__jr_str(fh_jr *r, const cJSON *obj, const char *key, bool need, bool nullable, const char **out);
/* The item's exact number: *is_int says which kind the literal was. */
bool flaghook__jr_number(fh_jr *r, const cJSON *item, int64_t *i, double *d, bool *is_int);
/* Any JSON value as a typed flaghook_value (arrays and objects deep). */
bool flaghook__jr_value(fh_jr *r, const cJSON *item, flaghook_value *out);
/* A member that must be an object (or, nullable, null: *out NULL). */
bool flaghook__jr_object(fh_jr *r, const cJSON *obj, const char *key, bool need, bool nullable, const cJSON **out);

#endif
