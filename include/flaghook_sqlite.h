/*
 * libflaghook-sqlite: a durable outbox in one SQLite file, for one process.
 *
 *   flaghook_storage store = FLAGHOOK_STORAGE_INIT;
 *   flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
 *   so.path = "/var/lib/flagserver/webhooks.db";
 *   if (flaghook_sqlite_open(&store, &so) == 0)
 *       opts.storage = &store;   // the client owns it from flaghook_client_new
 *
 * WAL mode; a schema with a version number, migrated forward on open;
 * group commit, so that threads emitting at once share one fsync; an
 * attempt log bounded per delivery; delivered rows pruned after a while.
 * One process at a time: opening takes over every delivery the file holds
 * (a process that died held them).  Link with pkg-config flaghook-sqlite.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_SQLITE_H
#define FLAGHOOK_SQLITE_H

#include "flaghook.h"

#ifdef __cplusplus
extern "C" {
#endif

/* synchronous: how hard a commit is pushed to disk. */
#define FLAGHOOK_SQLITE_SYNC_FULL   0 /* fsync at every (group) commit: survives power loss */
#define FLAGHOOK_SQLITE_SYNC_NORMAL 1 /* survives a process crash, not a power loss */

typedef struct flaghook_sqlite_options {
	unsigned int version;
	const char *path;           /* the database file; created when missing */
	int32_t synchronous;        /* FLAGHOOK_SQLITE_SYNC_* */
	int64_t busy_timeout_ms;    /* 0: 5000 */
	int64_t prune_after_ms;     /* delivered rows kept this long; 0: 7 days; <0: forever */
	int32_t attempt_log_max;    /* attempts kept per delivery (the latest); 0: 20 */
	size_t response_max;        /* reply bytes kept per attempt; 0: 1024 */
	const flaghook_allocator *allocator; /* NULL: malloc */
	/* ---- version 2 ---- */
	/* Permissions of a database file this call creates (the -wal and
	 * -shm files follow it), less the umask; 0: 0600, since it holds flag
	 * bodies and receivers' replies.  An existing file keeps its own. */
	uint32_t file_mode;
} flaghook_sqlite_options;

#define FLAGHOOK_SQLITE_OPTIONS_VERSION 2
#define FLAGHOOK_SQLITE_OPTIONS_INIT { FLAGHOOK_SQLITE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_sqlite_options_init(flaghook_sqlite_options *opts,
                                                 unsigned int version);

/* The schema version this library writes. */
#define FLAGHOOK_SQLITE_SCHEMA_VERSION 1

/* Opens (creating or migrating) the database and fills *out.  Errors:
 * FLAGHOOK_EINVAL (no path), FLAGHOOK_ESTORAGE (cannot open, or a schema
 * newer than this library), FLAGHOOK_ENOMEM.  Release with
 * flaghook_storage_close(), or hand it to a client. */
FLAGHOOK_EXTERN int flaghook_sqlite_open(flaghook_storage *out,
                                         const flaghook_sqlite_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_SQLITE_H */
