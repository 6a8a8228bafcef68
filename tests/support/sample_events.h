/* Test events: the C side of tests/golden/gen.py, event for event. */
#ifndef TEST_SAMPLE_EVENTS_H
#define TEST_SAMPLE_EVENTS_H

#include "flaghook.h"

typedef struct golden_case {
	const char *name;           /* tests/golden/<name>.json */
	const flaghook_event *event;
	int32_t profile;
	uint32_t flags;
} golden_case;

/* Every golden case; *n gets the count. */
const golden_case *golden_cases(size_t *n);

#endif
