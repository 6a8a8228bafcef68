/* The public side of memory: allocator tables and freeing what we return.
 * The wrappers themselves are in util/alloc.c. */
#include "internal.h"

int flaghook_allocator_init(flaghook_allocator *a, unsigned int version)
{
	static const size_t sizes[] = { 0, sizeof(flaghook_allocator) };
	return flaghook__struct_init(a, version, sizes, FH_COUNT(sizes), "allocator");
}

void flaghook_buf_free(flaghook_buf *b)
{
	if (!b)
		return;
	flaghook__free(b->allocator, b->ptr);
	b->ptr = NULL;
	b->size = 0;
	b->reserved = 0;
	b->allocator = NULL;
}
