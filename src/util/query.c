/* Checking a caller's flaghook_query: see query.h. */
#include "query.h"
#include "fail.h"
#include "version.h"

int flaghook__check_query(const flaghook_query *q, const char *who)
{
	if (!q)
		return 0; /* NULL: everything */
	int rc = flaghook__check_version(q->version, FLAGHOOK_QUERY_VERSION, who);
	if (!rc && q->state != FLAGHOOK_STATE_ANY &&
	    (q->state < FLAGHOOK_DELIVERY_PENDING || q->state > FLAGHOOK_DELIVERY_DEAD))
		rc = flaghook__error(FLAGHOOK_EINVAL, "%s state %d is not a delivery state", who, (int)q->state);
	return rc;
}
