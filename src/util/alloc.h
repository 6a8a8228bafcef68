/*
 * Memory: the caller's allocator table or malloc, secure wiping, and the
 * growable buffer behind the public flaghook_buf.
 */
#ifndef FLAGHOOK_UTIL_ALLOC_H
#define FLAGHOOK_UTIL_ALLOC_H

#include "flaghook.h"

/* Resolves NULL to the malloc-backed default. */
const flaghook_allocator *flaghook__allocator(const flaghook_allocator *a);
void *flaghook__malloc(const flaghook_allocator *a, size_t size);
/* NULL also when n * size overflows. */
void *flaghook__calloc(const flaghook_allocator *a, size_t n, size_t size);
void *flaghook__realloc(const flaghook_allocator *a, void *p, size_t size);
/* realloc to n * size bytes; NULL (p untouched) when that overflows. */
void *flaghook__reallocarray(const flaghook_allocator *a, void *p, size_t n, size_t size);
void flaghook__free(const flaghook_allocator *a, void *p);
char *flaghook__strdup(const flaghook_allocator *a, const char *s);
void *flaghook__memdup(const flaghook_allocator *a, const void *p, size_t n);
/* Zeroes n bytes in a way the compiler may not remove. */
void flaghook__wipe(void *p, size_t n);
/* Wipes a NUL-terminated string (a secret, a URL with credentials), then
 * frees it.  NULL is a no-op. */
void flaghook__free_secret(const flaghook_allocator *a, char *s);

/* Growable byte buffer on the public flaghook_buf.  `limit` (0: none) caps
 * its size: growing past it fails with FLAGHOOK_ETOOBIG. */
int flaghook__buf_reserve(flaghook_buf *b, size_t extra, size_t limit);
/* Gives back the unused tail (a queued body may wait for hours). */
void flaghook__buf_shrink(flaghook_buf *b);

#endif
