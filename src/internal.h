/* What every source of the library includes: the public header and the
 * shared helpers of src/util.  Each module's own offers are in its own
 * header (payload/render.h, engine/sched.h, ...).  Nothing here is
 * exported: the build uses -fvisibility=hidden and only FLAGHOOK_EXTERN
 * functions are visible; internal names are flaghook__*. */
#ifndef FLAGHOOK_INTERNAL_H
#define FLAGHOOK_INTERNAL_H

#include "flaghook.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/fail.h"
#include "util/version.h"

#include <stdarg.h>
#include <stdbool.h>

#endif
