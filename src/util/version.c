/* Versioned structs: see version.h. */
#include "version.h"
#include "fail.h"

#include "flaghook.h"

#include <string.h>

int flaghook__check_version(unsigned int version, unsigned int current, const char *what)
{
	/* Structs only grow at the end, so every version up to ours is read
	 * as its layout; a newer one comes from a newer header than ours. */
	if (version == 0 || version > current)
		return flaghook__error(FLAGHOOK_EVERSION, "%s version %u is not supported (1..%u)", what,
		                       version, current);
	return 0;
}

int flaghook__struct_init(void *p, unsigned int version, const size_t *sizes, size_t nsizes,
                          const char *what)
{
	if (!p)
		return flaghook__error(FLAGHOOK_EINVAL, "%s is NULL", what);
	int rc = flaghook__check_version(version, (unsigned)(nsizes - 1), what);
	if (rc)
		return rc;
	memset(p, 0, sizes[version]);
	memcpy(p, &version, sizeof(version)); /* every versioned struct starts with it */
	return 0;
}

int flaghook__struct_read(void *dst, const void *src, const size_t *sizes, size_t nsizes,
                          const char *what)
{
	if (!src)
		return flaghook__error(FLAGHOOK_EINVAL, "%s is NULL", what);
	unsigned int version;
	memcpy(&version, src, sizeof(version));
	int rc = flaghook__check_version(version, (unsigned)(nsizes - 1), what);
	if (rc)
		return rc;
	memset(dst, 0, sizes[nsizes - 1]);
	memcpy(dst, src, sizes[version]);
	return 0;
}
