/* Memory: see alloc.h. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static void *std_malloc(size_t size, void *ud) { (void)ud; return malloc(size); }
static void *std_realloc(void *p, size_t size, void *ud) { (void)ud; return realloc(p, size); }
static void std_free(void *p, void *ud) { (void)ud; free(p); }

static const flaghook_allocator default_allocator = {
	FLAGHOOK_ALLOCATOR_VERSION, std_malloc, std_realloc, std_free, NULL
};

const flaghook_allocator *flaghook__allocator(const flaghook_allocator *a)
{
	return a ? a : &default_allocator;
}

void *flaghook__malloc(const flaghook_allocator *a, size_t size)
{
	a = flaghook__allocator(a);
	return a->malloc(size ? size : 1, a->user_data);
}

void *flaghook__calloc(const flaghook_allocator *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	void *p = flaghook__malloc(a, n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *flaghook__realloc(const flaghook_allocator *a, void *p, size_t size)
{
	a = flaghook__allocator(a);
	return a->realloc(p, size ? size : 1, a->user_data);
}

void *flaghook__reallocarray(const flaghook_allocator *a, void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return flaghook__realloc(a, p, n * size);
}

void flaghook__free(const flaghook_allocator *a, void *p)
{
	if (!p)
		return;
	a = flaghook__allocator(a);
	a->free(p, a->user_data);
}

void *flaghook__memdup(const flaghook_allocator *a, const void *p, size_t n)
{
	void *q = flaghook__malloc(a, n);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

char *flaghook__strdup(const flaghook_allocator *a, const char *s)
{
	return s ? flaghook__memdup(a, s, strlen(s) + 1) : NULL;
}

void flaghook__wipe(void *p, size_t n)
{
	/* A volatile function pointer keeps the compiler from proving the
	 * stores dead and dropping them before the memory is freed. */
	static void *(*const volatile do_memset)(void *, int, size_t) = memset;
	if (p && n)
		do_memset(p, 0, n);
}

void flaghook__free_secret(const flaghook_allocator *a, char *s)
{
	if (!s)
		return;
	flaghook__wipe(s, strlen(s));
	flaghook__free(a, s);
}

int flaghook__buf_reserve(flaghook_buf *b, size_t extra, size_t limit)
{
	if (extra > SIZE_MAX - b->size - 1)
		return FLAGHOOK_ETOOBIG;
	size_t need = b->size + extra + 1; /* room for the NUL */
	if (limit && need - 1 > limit)
		return FLAGHOOK_ETOOBIG;
	if (need <= b->reserved)
		return 0;
	size_t cap = b->reserved ? b->reserved : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = flaghook__realloc(b->allocator, b->ptr, cap);
	if (!p)
		return FLAGHOOK_ENOMEM;
	b->ptr = p;
	b->reserved = cap;
	return 0;
}

void flaghook__buf_shrink(flaghook_buf *b)
{
	if (!b->ptr || b->reserved <= b->size + 1)
		return;
	char *p = flaghook__realloc(b->allocator, b->ptr, b->size + 1);
	if (p) { /* if not, the larger block serves as well */
		b->ptr = p;
		b->reserved = b->size + 1;
	}
}
