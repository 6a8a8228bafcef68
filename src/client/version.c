/* The library's own version; the rule for versioned structs is in
 * util/version.c. */
#include "internal.h"

const char *flaghook_version(void) { return FLAGHOOK_VERSION; }
uint32_t flaghook_version_number(void) { return FLAGHOOK_VERSION_NUMBER; }
