// SPDX-License-Identifier: Apache-2.0
/*
 * One event loop per thread, the base of the front end (src/http/) and of the gateway's upstream
 * side. It replaces h2o 2.2.5's evloop, which re-registered a socket with epoll whenever a reader
 * paused or resumed (two epoll_ctl per HTTP/1 request) and leaked its descriptor and caches at
 * thread end. Here a descriptor is registered once, edge-triggered for reading and writing, and
 * pausing is a flag: the owner reads until EAGAIN or remembers that more is there.
 *
 * Timers are a binary heap with lazy re-arming: moving a timer later (an idle timeout restarted
 * per request) only writes its deadline, and the heap fixes its place when it comes due, so the
 * common case costs no heap work. Other threads reach a loop only through gh_loop_post.
 *
 * Everything here but gh_loop_post and gh_loop_wake is for the loop's own thread.
 */
#ifndef GH_HTTP_LOOP_H
#define GH_HTTP_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct gh_loop;

/* ---- descriptors ---- */

#define GH_IO_READ  1u /* readable, or the peer closed or reset (read to find out) */
#define GH_IO_WRITE 2u /* writable, or the connection failed (write or getsockopt to find out) */
#define GH_IO_HUP   4u /* with GH_IO_READ: the peer closed its side or the connection broke */

struct gh_io;
typedef void (*gh_io_cb)(struct gh_io *io, unsigned events);

/* A descriptor watched by a loop. Embed it in its owner; `data` is the owner's. */
struct gh_io {
    int fd;
    struct gh_loop *loop;
    gh_io_cb cb;
    void *data;
    /* private */
    unsigned pending; /* events seen but not delivered yet (a turn of deferred delivery) */
    int registered;   /* its slot in the loop + 1; 0 while not watched */
};

/* Registers `fd` (non-blocking already) edge-triggered for reading and writing: `cb` is called
 * on the loop's thread with the events that arrived. GH_OK, or GH_ERR_IO when epoll refuses it
 * (out of memory, too many watches). The loop does not own the descriptor. */
int gh_io_start(struct gh_loop *loop, struct gh_io *io, int fd, gh_io_cb cb, void *data);

/* Forgets the descriptor (before closing it): no callback comes for it afterwards, not even one
 * already gathered in this turn. Harmless on an io never started or stopped already. */
void gh_io_stop(struct gh_io *io);

/* Delivers `events` to the io's callback at the end of this turn, as if epoll had reported them:
 * how an owner that paused reading (edge-triggered: no new edge will come) resumes without
 * recursing from inside its own callback. */
void gh_io_kick(struct gh_io *io, unsigned events);

/* ---- timers ---- */

struct gh_timer;
typedef void (*gh_timer_cb)(struct gh_timer *t);

struct gh_timer {
    gh_timer_cb cb;
    void *data;
    /* private */
    uint64_t due_ms;  /* when it fires (loop milliseconds); 0 while not armed */
    uint64_t heap_ms; /* its key in the heap: <= due_ms, re-keyed lazily */
    size_t slot;      /* index in the heap + 1; 0 while not in it */
};

/* The loop's current time is read once per turn, after its poll. A caller about to arm timers
 * after a long stretch of work (a drain beginning after whatever the last turn ran) refreshes it,
 * so their deadlines count from now. */
void gh_loop_update_time(struct gh_loop *loop);

/* Arms (or re-arms) `t` to fire `after_ms` from the loop's current time. Cheap when it moves
 * later. GH_OK, or GH_ERR_NOMEM when the heap cannot grow (the timer is then not armed). */
int gh_timer_arm(struct gh_loop *loop, struct gh_timer *t, uint64_t after_ms);

/* Disarms; harmless when not armed. */
void gh_timer_disarm(struct gh_loop *loop, struct gh_timer *t);

/* 1 when armed. */
int gh_timer_armed(const struct gh_timer *t);

/* ---- messages from other threads ---- */

struct gh_loop_msg;
typedef void (*gh_loop_msg_cb)(struct gh_loop_msg *msg);

/* A message handed to a loop by another thread; the sender's memory until its callback runs on
 * the loop's thread, which then owns it. */
struct gh_loop_msg {
    gh_loop_msg_cb cb;
    void *data;
    struct gh_loop_msg *next; /* private */
};

/* Queues `msg` for the loop's thread and wakes it. Any thread; never blocks for long (a mutex
 * held for a pointer swap). 0 after gh_loop_close_posts, when nothing may be posted any more
 * (the message stays the caller's), 1 when queued. */
int gh_loop_post(struct gh_loop *loop, struct gh_loop_msg *msg);

/* Wakes the loop from gh_loop_run_once without a message. Any thread. */
void gh_loop_wake(struct gh_loop *loop);

/* Refuses every later post; messages already queued are still delivered by the next turns.
 * Loop thread. */
void gh_loop_close_posts(struct gh_loop *loop);

/* ---- deferred calls ---- */

struct gh_defer;
typedef void (*gh_defer_cb)(struct gh_defer *d);

/* A call made at the end of the current turn (after the I/O callbacks), once however often it is
 * scheduled before it runs: how a callback finishes work without recursing into its caller. */
struct gh_defer {
    gh_defer_cb cb;
    void *data;
    /* private */
    struct gh_defer *next;
    int queued;
};

void gh_defer_schedule(struct gh_loop *loop, struct gh_defer *d);
void gh_defer_cancel(struct gh_loop *loop, struct gh_defer *d);

/* ---- the loop ---- */

/* A loop for the calling thread (it may be run by another one later, one thread at a time).
 * GH_OK, or GH_ERR_IO / GH_ERR_NOMEM. */
int gh_loop_new(struct gh_loop **out);

/* Closes its epoll and wake-up descriptors and frees it. Watched descriptors are not closed (they
 * are their owners'); messages still queued are dropped without their callbacks. NULL is fine. */
void gh_loop_free(struct gh_loop *loop);

/* Waits for events at most `max_wait_ms` (-1: until something happens), then calls back: I/O,
 * messages, due timers, deferred calls. A signal interrupting the wait is not an error. */
void gh_loop_run_once(struct gh_loop *loop, int max_wait_ms);

/* The loop's clock: CLOCK_MONOTONIC milliseconds, read once per turn. */
uint64_t gh_loop_now_ms(const struct gh_loop *loop);

/* Moves the loop's clock `ms` later, now and for every later turn: how tests reach timeouts
 * without waiting for them. Loop thread. */
void gh_loop_advance(struct gh_loop *loop, uint64_t ms);

/* CLOCK_MONOTONIC now, in milliseconds and nanoseconds (not cached). */
uint64_t gh_monotonic_ms(void);
uint64_t gh_monotonic_ns(void);

#endif
