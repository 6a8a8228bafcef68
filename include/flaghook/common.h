/*
 * libflaghook: what every part of the API shares: the export macros, the
 * version, the error codes, the global init, memory, and the handle and
 * plug-in table types.  Include <flaghook.h>, not this file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_COMMON_H
#define FLAGHOOK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define FLAGHOOK_EXTERN __declspec(dllexport)
#elif defined(__GNUC__)
#  define FLAGHOOK_EXTERN __attribute__((visibility("default")))
#else
#  define FLAGHOOK_EXTERN
#endif

#if defined(__GNUC__)
#  define FLAGHOOK_WARN_UNUSED __attribute__((warn_unused_result))
#else
#  define FLAGHOOK_WARN_UNUSED
#endif


/* ------------------------------------------------------------------ */
/* Version                                                             */

#define FLAGHOOK_VERSION_MAJOR 0
#define FLAGHOOK_VERSION_MINOR 1
#define FLAGHOOK_VERSION_PATCH 0
#define FLAGHOOK_VERSION "0.1.0"
/* 0xMMmmpp */
#define FLAGHOOK_VERSION_NUMBER 0x000100

/* The version of the library actually loaded ("0.1.0"). */
FLAGHOOK_EXTERN const char *flaghook_version(void);
/* FLAGHOOK_VERSION_NUMBER of the library actually loaded. */
FLAGHOOK_EXTERN uint32_t flaghook_version_number(void);

/* ------------------------------------------------------------------ */
/* Errors: fixed values, never reused.                                 */

#define FLAGHOOK_OK          0
#define FLAGHOOK_EINVAL     -1  /* a NULL or out-of-range argument */
#define FLAGHOOK_ENOMEM     -2  /* an allocation failed */
#define FLAGHOOK_EUTF8      -3  /* a string is not valid UTF-8 */
#define FLAGHOOK_ETOOBIG    -4  /* the body is over the configured limit */
#define FLAGHOOK_EURL       -5  /* the URL is not an acceptable http(s) URL */
#define FLAGHOOK_ESECRET    -6  /* the secret is not acceptable */
#define FLAGHOOK_ENOTFOUND  -7  /* no such endpoint */
#define FLAGHOOK_EVERSION   -8  /* a struct version this library does not know */
#define FLAGHOOK_EDELIVERY  -9  /* at least one endpoint did not take the event */
#define FLAGHOOK_EVERIFY   -10  /* a signature does not match */
#define FLAGHOOK_ETRANSPORT -11 /* the transport could not be set up */
#define FLAGHOOK_EFULL     -12  /* the delivery queue is full */
#define FLAGHOOK_ESTATE    -13  /* the client is shutting down; or (a shared store's
                                   record) another process holds the delivery now */
#define FLAGHOOK_ESTORAGE  -14  /* the storage plug-in failed */
#define FLAGHOOK_EBUFSIZE  -15  /* the caller's buffer is too small */
#define FLAGHOOK_EEVENT    -16  /* the event does not describe a valid payload */
#define FLAGHOOK_ETIMEOUT  -17  /* a wait ran out of time */
#define FLAGHOOK_ESYSTEM   -18  /* the operating system refused (e.g. no randomness) */
#define FLAGHOOK_ENOTSUP   -19  /* the plug-in does not offer this */
#define FLAGHOOK_EREFUSED  -20  /* the address is one the client may not connect to
                                   (loopback, private, link-local, ...: see
                                   flaghook_url_check) */
/* FLAGHOOK_EFULL, FLAGHOOK_ESTATE and FLAGHOOK_ETIMEOUT come from the
 * asynchronous engine (ESTATE also from a shared store's record). */

/* A short static description of a code ("invalid UTF-8"); never NULL. */
FLAGHOOK_EXTERN const char *flaghook_strerror(int code);

/*
 * Detail of the last failure on the calling thread ("event.flag.new_state.
 * feature.name: invalid UTF-8 at byte 3"), or "" when there was none.  Valid
 * until the next libflaghook call on this thread.  Never contains a secret.
 */
FLAGHOOK_EXTERN const char *flaghook_last_error(void);

/* For plug-ins: sets the calling thread's detail (NULL: "") and returns
 * code, so a transport or store can `return flaghook_error_set(...)`.  The
 * library quotes it in its own message.  Never pass a secret. */
FLAGHOOK_EXTERN int flaghook_error_set(int code, const char *detail);

/* ------------------------------------------------------------------ */
/* Global state: a reference count around libcurl's global init.       */
/* flaghook_client_new() takes a reference itself; call these only to  */
/* control when libcurl is initialised.                                */

FLAGHOOK_EXTERN int flaghook_global_init(void);
FLAGHOOK_EXTERN void flaghook_global_cleanup(void);

/* ------------------------------------------------------------------ */
/* Memory                                                              */

typedef struct flaghook_allocator {
	unsigned int version;
	void *(*malloc)(size_t size, void *user_data);
	void *(*realloc)(void *ptr, size_t size, void *user_data);
	void (*free)(void *ptr, void *user_data);
	void *user_data;
} flaghook_allocator;

#define FLAGHOOK_ALLOCATOR_VERSION 1
#define FLAGHOOK_ALLOCATOR_INIT { FLAGHOOK_ALLOCATOR_VERSION, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_allocator_init(flaghook_allocator *allocator,
                                            unsigned int version);

/* Bytes the library allocated for the caller; release with flaghook_buf_free. */
typedef struct flaghook_buf {
	char *ptr;      /* NUL-terminated for convenience; size excludes the NUL */
	size_t size;
	size_t reserved;
	const flaghook_allocator *allocator; /* internal */
} flaghook_buf;

#define FLAGHOOK_BUF_INIT { 0, 0, 0, 0 }
/* Frees the bytes and resets *buf to FLAGHOOK_BUF_INIT; NULL is a no-op. */
FLAGHOOK_EXTERN void flaghook_buf_free(flaghook_buf *buf);

/* ------------------------------------------------------------------ */
/* The handle and the plug-in tables, declared here and defined where  */
/* their readers look: the client is opaque; the tables are in         */
/* flaghook/sys/, for those who implement them.                        */

typedef struct flaghook_client flaghook_client;
typedef struct flaghook_transport flaghook_transport; /* flaghook/sys/transport.h */
typedef struct flaghook_executor flaghook_executor;   /* flaghook/sys/transport.h */
typedef struct flaghook_storage flaghook_storage;     /* flaghook/sys/storage.h */

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_COMMON_H */
