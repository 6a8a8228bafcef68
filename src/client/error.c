/* Error codes, their texts, and the per-thread detail of the last failure
 * (util/fail.c formats it). */
#include "internal.h"

#include <stdio.h>

static _Thread_local char last_error[512];

const char *flaghook_strerror(int code)
{
	switch (code) {
	case FLAGHOOK_OK: return "success";
	case FLAGHOOK_EINVAL: return "invalid argument";
	case FLAGHOOK_ENOMEM: return "out of memory";
	case FLAGHOOK_EUTF8: return "invalid UTF-8";
	case FLAGHOOK_ETOOBIG: return "body over the size limit";
	case FLAGHOOK_EURL: return "unacceptable URL";
	case FLAGHOOK_ESECRET: return "unacceptable secret";
	case FLAGHOOK_ENOTFOUND: return "no such endpoint";
	case FLAGHOOK_EVERSION: return "unsupported struct version";
	case FLAGHOOK_EDELIVERY: return "delivery failed";
	case FLAGHOOK_EVERIFY: return "signature does not match";
	case FLAGHOOK_ETRANSPORT: return "transport failure";
	case FLAGHOOK_EFULL: return "queue full";
	case FLAGHOOK_ESTATE: return "client is shutting down";
	case FLAGHOOK_ESTORAGE: return "storage failure";
	case FLAGHOOK_EBUFSIZE: return "buffer too small";
	case FLAGHOOK_EEVENT: return "invalid event";
	case FLAGHOOK_ETIMEOUT: return "timed out";
	case FLAGHOOK_ESYSTEM: return "system error";
	case FLAGHOOK_ENOTSUP: return "not supported by the plug-in";
	case FLAGHOOK_EREFUSED: return "address refused";
	default: return "unknown error";
	}
}

const char *flaghook_last_error(void)
{
	return last_error;
}

int flaghook_error_set(int code, const char *detail)
{
	if (!detail || !detail[0])
		last_error[0] = '\0';
	else
		snprintf(last_error, sizeof(last_error), "%s", detail);
	return code;
}

const char *flaghook_outcome_name(int outcome)
{
	switch (outcome) {
	case FLAGHOOK_OUTCOME_DELIVERED: return "delivered";
	case FLAGHOOK_OUTCOME_RETRY: return "retry";
	case FLAGHOOK_OUTCOME_GAVE_UP: return "gave_up";
	case FLAGHOOK_OUTCOME_ABANDONED: return "abandoned";
	case FLAGHOOK_OUTCOME_RELEASED: return "released";
	default: return "unknown";
	}
}

const char *flaghook_errclass_name(int errclass)
{
	switch (errclass) {
	case FLAGHOOK_ERRCLASS_NONE: return "none";
	case FLAGHOOK_ERRCLASS_CONNECT: return "connect";
	case FLAGHOOK_ERRCLASS_TIMEOUT: return "timeout";
	case FLAGHOOK_ERRCLASS_DNS: return "dns";
	case FLAGHOOK_ERRCLASS_TLS: return "tls";
	case FLAGHOOK_ERRCLASS_SEND: return "send";
	case FLAGHOOK_ERRCLASS_RECV: return "recv";
	case FLAGHOOK_ERRCLASS_HTTP: return "http";
	case FLAGHOOK_ERRCLASS_OTHER: return "other";
	case FLAGHOOK_ERRCLASS_REFUSED: return "refused";
	default: return "unknown";
	}
}
