/*
 * The I/O loop: one epoll descriptor that everything the library waits on
 * is registered with (the curl driver's sockets and timer, the engine's
 * wake-up and timer descriptors).  It is the one file descriptor a host's
 * event loop watches in TICK mode (flaghook_fd); in the default mode the
 * library's I/O thread runs it.  One thread runs it at a time.
 */
#ifndef FLAGHOOK_IO_LOOP_H
#define FLAGHOOK_IO_LOOP_H

#include "flaghook.h"

#include <stdint.h>

typedef struct fh_loop fh_loop;
typedef struct fh_watch fh_watch;

/* Called on the thread running the loop with the epoll events. */
typedef void (*fh_watch_cb)(void *arg, uint32_t events);

int flaghook__loop_new(fh_loop **out, const flaghook_allocator *a);
/* Every watch must have been removed. */
void flaghook__loop_free(fh_loop *l);
/* Readable when a run would find something to do. */
int flaghook__loop_fd(const fh_loop *l);

/* Watches fd for `events` (EPOLLIN, EPOLLOUT); cb(arg, events) runs when
 * they happen.  Any thread. */
int flaghook__loop_watch(fh_loop *l, int fd, uint32_t events, fh_watch_cb cb, void *arg, fh_watch **out);
int flaghook__loop_rewatch(fh_loop *l, fh_watch *w, uint32_t events);
/* Stops watching; safe from a callback of the same run (the watch is
 * freed after the run's dispatch). */
void flaghook__loop_unwatch(fh_loop *l, fh_watch *w);

/* Waits up to timeout_ms (-1: no limit, 0: not at all) for events and
 * runs their callbacks.  Returns how many ran, or a negative code. */
int flaghook__loop_run(fh_loop *l, int timeout_ms);

/* An eventfd that wakes the loop from any thread (write) and is cleared
 * on the loop thread (read). */
int flaghook__eventfd_new(void);
void flaghook__eventfd_signal(int fd);
void flaghook__eventfd_clear(int fd);

/* A monotonic timerfd: armed for `due_us` on CLOCK_MONOTONIC (0 or less:
 * as soon as possible; INT64_MAX: disarmed). */
int flaghook__timerfd_new(void);
void flaghook__timerfd_arm(int fd, int64_t due_us);
void flaghook__timerfd_clear(int fd);

#endif
