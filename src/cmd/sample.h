/* The sample events the Flagsmith server's "Test webhook" button sends. */
#ifndef FLAGHOOK_SAMPLE_H
#define FLAGHOOK_SAMPLE_H

#include "flaghook.h"

/* Environment scope: FLAG_UPDATED for test_feature.  Static storage. */
const flaghook_event *fh_sample_environment(void);
/* Organisation scope: AUDIT_LOG_CREATED by Jane Doe.  Static storage. */
const flaghook_event *fh_sample_organisation(void);

#endif
