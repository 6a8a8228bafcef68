/*
 * libflaghook — Flagsmith-compatible webhooks for flag servers written in C.
 *
 * Include this one header.  The API is in flaghook/, one file a part, in
 * the order a reader needs them:
 *
 *   flaghook/common.h         versions, error codes, memory, the handle types
 *   flaghook/event.h          events, rendering, signatures (no client needed)
 *   flaghook/client.h         the client, endpoints, emitting: what a flag
 *                             server calls, starting at flaghook_client_new
 *   flaghook/outbox.h         the outbox's records; inspecting and replaying
 *   flaghook/bindings.h       JSON in and out, for other languages' bindings
 *   flaghook/sys/transport.h  for plug-in authors: transports and executors
 *   flaghook/sys/storage.h    for plug-in authors: storage
 *
 * Every function that can fail returns an int: 0 on success or a
 * negative FLAGHOOK_E* code whose value never changes.  Structs passed in
 * start with `unsigned int version` and only ever grow at the end; each has
 * an INIT macro and an init function (FLAGHOOK_CLIENT_OPTIONS_INIT and
 * flaghook_client_options_init(), and so on).  Handles are opaque.  Nothing
 * here uses varargs, bit-fields, ssize_t or passes a struct by value, so the
 * API binds through any FFI.
 *
 * Threads: every function may be called from any thread; the functions that
 * take a client may be called on one client from many threads at once.
 * flaghook_client_free() must not race with other calls on that client.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_H
#define FLAGHOOK_H

#include "flaghook/common.h"
#include "flaghook/event.h"
#include "flaghook/outbox.h"
#include "flaghook/client.h"
#include "flaghook/bindings.h"
#include "flaghook/sys/transport.h"
#include "flaghook/sys/storage.h"

#endif /* FLAGHOOK_H */
