/*
 * Versioned structs: every public struct starts with `unsigned int
 * version` and only ever grows at the end.  A caller built against an
 * older header hands us the older, shorter layout, so each struct keeps a
 * table of its size at every version (sizes[v], sizes[0] unused), and we
 * never write or read past the size of the version the caller names.
 */
#ifndef FLAGHOOK_UTIL_VERSION_H
#define FLAGHOOK_UTIL_VERSION_H

#include <stddef.h>

/* Size of a struct up to (not including) member m: the size of the
 * version before m was added. */
#define FH_SIZE_BEFORE(type, m) offsetof(type, m)
#define FH_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Checks that `version` is one of 1..current; sets the error naming
 * `what` otherwise (FLAGHOOK_EVERSION). */
int flaghook__check_version(unsigned int version, unsigned int current, const char *what);

/* Zeroes sizes[version] bytes of p and sets its version: a caller's
 * struct of that version's size, never more. */
int flaghook__struct_init(void *p, unsigned int version, const size_t *sizes, size_t nsizes,
                          const char *what);

/* Copies a caller's struct of any known version into `dst`, the current
 * layout (sizes[nsizes-1] bytes): the members the caller's version has,
 * zero (the default) for the rest.  NULL src is an error naming `what`. */
int flaghook__struct_read(void *dst, const void *src, const size_t *sizes, size_t nsizes,
                          const char *what);

#endif
