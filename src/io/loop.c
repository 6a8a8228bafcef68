/* The I/O loop: see loop.h. */
#include "loop.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fail.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_EVENTS 128

struct fh_watch {
	int fd;
	fh_watch_cb cb;
	void *arg;
	bool dead;
	fh_watch *next_dead;
};

struct fh_loop {
	const flaghook_allocator *allocator;
	int epfd;
	bool dispatching;
	fh_watch *dead;             /* unwatched during a dispatch: freed after it */
};

int flaghook__loop_new(fh_loop **out, const flaghook_allocator *a)
{
	fh_loop *l = flaghook__calloc(a, 1, sizeof(*l));
	if (!l)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	l->allocator = a;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = errno;
		flaghook__free(a, l);
		return flaghook__error(FLAGHOOK_ESYSTEM, "epoll_create1: %s", strerror(e));
	}
	*out = l;
	return 0;
}

static void free_dead(fh_loop *l)
{
	while (l->dead) {
		fh_watch *w = l->dead;
		l->dead = w->next_dead;
		flaghook__free(l->allocator, w);
	}
}

void flaghook__loop_free(fh_loop *l)
{
	if (!l)
		return;
	free_dead(l);
	close(l->epfd);
	flaghook__free(l->allocator, l);
}

int flaghook__loop_fd(const fh_loop *l)
{
	return l->epfd;
}

int flaghook__loop_watch(fh_loop *l, int fd, uint32_t events, fh_watch_cb cb, void *arg, fh_watch **out)
{
	fh_watch *w = flaghook__calloc(l->allocator, 1, sizeof(*w));
	if (!w)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	w->fd = fd;
	w->cb = cb;
	w->arg = arg;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		int e = errno;
		flaghook__free(l->allocator, w);
		return flaghook__error(FLAGHOOK_ESYSTEM, "epoll_ctl: %s", strerror(e));
	}
	*out = w;
	return 0;
}

int flaghook__loop_rewatch(fh_loop *l, fh_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0)
		return flaghook__error(FLAGHOOK_ESYSTEM, "epoll_ctl: %s", strerror(errno));
	return 0;
}

void flaghook__loop_unwatch(fh_loop *l, fh_watch *w)
{
	if (!w)
		return;
	/* The descriptor may already be closed (libcurl closes a socket after
	 * telling us to stop watching it): epoll dropped it then. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (l->dispatching) {
		/* Events for it may still be in this round's array. */
		w->dead = true;
		w->next_dead = l->dead;
		l->dead = w;
	} else {
		flaghook__free(l->allocator, w);
	}
}

int flaghook__loop_run(fh_loop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : flaghook__error(FLAGHOOK_ESYSTEM, "epoll_wait: %s", strerror(errno));
	l->dispatching = true;
	for (int i = 0; i < n; i++) {
		fh_watch *w = evs[i].data.ptr;
		if (!w->dead)
			w->cb(w->arg, evs[i].events);
	}
	l->dispatching = false;
	free_dead(l);
	return n;
}

int flaghook__eventfd_new(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void flaghook__eventfd_signal(int fd)
{
	uint64_t one = 1;
	/* EAGAIN only when the counter is full: it is signalled anyway. */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void flaghook__eventfd_clear(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

int flaghook__timerfd_new(void)
{
	return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

void flaghook__timerfd_arm(int fd, int64_t due_us)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (due_us != INT64_MAX) {
		/* 0 disarms a timerfd: "as soon as possible" is one nanosecond. */
		if (due_us <= 0) {
			its.it_value.tv_nsec = 1;
		} else {
			its.it_value.tv_sec = (time_t)(due_us / 1000000);
			its.it_value.tv_nsec = (long)(due_us % 1000000) * 1000;
			if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
				its.it_value.tv_nsec = 1;
		}
	}
	timerfd_settime(fd, due_us == INT64_MAX ? 0 : TFD_TIMER_ABSTIME, &its, NULL);
}

void flaghook__timerfd_clear(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}
