/* Versions: the library's own, and the rule for every versioned struct. */
#include "internal.h"

#include <string.h>

const char *flaghook_version(void) { return FLAGHOOK_VERSION; }
uint32_t flaghook_version_number(void) { return FLAGHOOK_VERSION_NUMBER; }

int flaghook__check_version(unsigned int version, unsigned int current, const char *what)
{
	/* Structs only grow at the end, so every version up to ours is read
	 * as its layout; a newer one comes from a newer header than ours. */
	if (version == 0 || version > current)
		return flaghook__error(FLAGHOOK_EVERSION, "%s version %u is not supported (1..%u)",
		                       what, version, current);
	return 0;
}

int flaghook__struct_init(void *p, size_t size, unsigned int version, unsigned int current,
                          const char *what)
{
	if (!p)
		return flaghook__error(FLAGHOOK_EINVAL, "%s is NULL", what);
	int rc = flaghook__check_version(version, current, what);
	if (rc)
		return rc;
	memset(p, 0, size);
	memcpy(p, &version, sizeof(version)); /* every versioned struct starts with it */
	return 0;
}
