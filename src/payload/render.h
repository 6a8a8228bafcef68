/* Events to bodies (render.c) and the time formats they use (time.c). */
#ifndef FLAGHOOK_PAYLOAD_RENDER_H
#define FLAGHOOK_PAYLOAD_RENDER_H

#include "internal.h"

/* How Flagsmith's three code paths print a datetime. */
typedef enum {
	FH_TIME_STRFTIME, /* strftime("%Y-%m-%dT%H:%M:%S.%fZ"): always six digits */
	FH_TIME_DRF,      /* REST framework isoformat: ".ffffff" only when non-zero */
	FH_TIME_DJANGO,   /* DjangoJSONEncoder: milliseconds, only when non-zero */
} fh_time_style;
/* Writes the UTC time to out with its length; -1 when the year is outside
 * 1..9999 (what Python's datetime can hold). */
int flaghook__format_time(char out[32], int64_t us, fh_time_style style);

/* Renders with an explicit error-context prefix ("event"). */
int flaghook__render(flaghook_buf *out, const flaghook_event *ev, int profile,
                     uint32_t flags, size_t max_body);
/* Writes one typed value (objects with sorted keys), as for extra members. */
int flaghook__render_value(flaghook_buf *out, const flaghook_value *v, uint32_t flags);
/* Routing ids of a valid event (0 when none). */
void flaghook__event_scope(const flaghook_event *ev, int64_t *env_id, int64_t *org_id);

#endif
