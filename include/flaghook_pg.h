/*
 * libflaghook-pg: an outbox in PostgreSQL that several flag-server
 * processes share.
 *
 *   flaghook_storage store = FLAGHOOK_STORAGE_INIT;
 *   flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
 *   po.conninfo = "host=127.0.0.1 dbname=flags user=flags";
 *   if (flaghook_pg_open(&store, &po) == 0)
 *       opts.storage = &store;   // the client owns it from flaghook_client_new
 *
 * Each process holds the deliveries it emitted or claimed under a lease it
 * renews while it runs; claims use SELECT ... FOR UPDATE SKIP LOCKED, so
 * one process works a delivery at a time, and a dead process's deliveries
 * are taken over when its lease runs out.  FIFO endpoints get their
 * deliveries in order across processes.  A lost connection is re-opened;
 * an emit that cannot be recorded returns FLAGHOOK_ESTORAGE.  Link with
 * pkg-config flaghook-pg.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_PG_H
#define FLAGHOOK_PG_H

#include "flaghook.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flaghook_pg_options {
	unsigned int version;
	const char *conninfo;       /* libpq connection string; may hold a password,
	                               which is never shown in an error */
	const char *schema;         /* NULL: "flaghook" (created when missing) */
	const char *owner;          /* this process's name in the outbox; NULL:
	                               "<hostname>:<pid>:<random>" */
	int64_t lease_ms;           /* how long a claim holds without renewal; 0: 30000 */
	int32_t connections;        /* connections kept open; 0: 4 */
	int64_t prune_after_ms;     /* delivered rows kept this long; 0: 7 days; <0: forever */
	int32_t attempt_log_max;    /* attempts kept per delivery (the latest); 0: 20 */
	size_t response_max;        /* reply bytes kept per attempt; 0: 1024 */
	int64_t connect_timeout_ms; /* 0: 5000 */
	const flaghook_allocator *allocator; /* NULL: malloc */
} flaghook_pg_options;

#define FLAGHOOK_PG_OPTIONS_VERSION 1
#define FLAGHOOK_PG_OPTIONS_INIT { FLAGHOOK_PG_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_pg_options_init(flaghook_pg_options *opts, unsigned int version);

/* The schema version this library writes. */
#define FLAGHOOK_PG_SCHEMA_VERSION 1

/* Connects, creates or migrates the schema, and fills *out.  Errors:
 * FLAGHOOK_EINVAL, FLAGHOOK_ESTORAGE (cannot connect, or a schema newer
 * than this library), FLAGHOOK_ENOMEM. */
FLAGHOOK_EXTERN int flaghook_pg_open(flaghook_storage *out, const flaghook_pg_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_PG_H */
