// SPDX-License-Identifier: Apache-2.0
/*
 * The event loop of loop.h: epoll edge-triggered with one registration per descriptor, an eventfd
 * for other threads, a lazily re-keyed timer heap and deferred calls. Owners free an io's memory
 * right after gh_io_stop, possibly while events for it sit in the batch epoll_wait returned, so
 * epoll never carries an io pointer: it carries a slot index and the slot's generation, and a
 * stopped io's slot changes generation, which makes every event and kick gathered for it stale.
 */
#include "http/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

#define GH_LOOP_EVENTS     256
#define GH_LOOP_ROUNDS     16 /* rounds of deferred calls and kicks per turn, then the next turn */
#define GH_LOOP_WAKE_TOKEN UINT64_MAX

struct loop_slot {
    struct gh_io *io; /* NULL while free */
    uint32_t gen;
    uint32_t next_free; /* index + 1 of the next free slot; 0 ends the list */
};

struct gh_loop {
    int epfd, evfd;
    uint64_t now_ms, skew_ms;

    struct loop_slot *slots;
    uint32_t n_slots, cap_slots, free_slot; /* free_slot: index + 1, 0 when none */
    /* kicked slots as (gen << 32 | index); each array holds at most cap_slots entries */
    uint64_t *kicks, *kicks_run;
    size_t n_kicks;

    struct gh_timer **heap;
    size_t heap_len, heap_cap;

    struct gh_defer *defer_head, *defer_tail;
    struct gh_defer *running; /* the round of deferred calls being run */

    pthread_mutex_t mutex; /* guards the posted messages and posts_closed */
    struct gh_loop_msg *post_head, *post_tail;
    int posts_closed;
    atomic_int wake_pending; /* the eventfd was written and not read yet */
};

uint64_t gh_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t gh_monotonic_ms(void)
{
    return gh_monotonic_ns() / 1000000u;
}

uint64_t gh_loop_now_ms(const struct gh_loop *loop)
{
    return loop->now_ms;
}

void gh_loop_advance(struct gh_loop *loop, uint64_t ms)
{
    loop->skew_ms += ms;
    loop->now_ms += ms;
}

static void loop_update_time(struct gh_loop *loop)
{
    loop->now_ms = gh_monotonic_ms() + loop->skew_ms + 1; /* +1: 0 means "not armed" */
}

void gh_loop_update_time(struct gh_loop *loop)
{
    loop_update_time(loop);
}

/* ---- descriptors ---- */

static int slots_grow(struct gh_loop *loop)
{
    uint32_t cap = loop->cap_slots ? loop->cap_slots * 2 : 64;
    struct loop_slot *slots = realloc(loop->slots, cap * sizeof *slots);
    uint64_t *kicks, *run;

    if (slots == NULL)
        return GH_ERR_NOMEM;
    loop->slots = slots;
    /* the kick arrays grow first, so cap_slots never exceeds their room */
    if ((kicks = realloc(loop->kicks, cap * sizeof *kicks)) == NULL)
        return GH_ERR_NOMEM;
    loop->kicks = kicks;
    if ((run = realloc(loop->kicks_run, cap * sizeof *run)) == NULL)
        return GH_ERR_NOMEM;
    loop->kicks_run = run;
    loop->cap_slots = cap;
    return GH_OK;
}

int gh_io_start(struct gh_loop *loop, struct gh_io *io, int fd, gh_io_cb cb, void *data)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    uint32_t index;

    io->fd = fd;
    io->loop = loop;
    io->cb = cb;
    io->data = data;
    io->pending = 0;
    io->registered = 0;
    if (loop->free_slot != 0) {
        index = loop->free_slot - 1;
        loop->free_slot = loop->slots[index].next_free;
    } else {
        if (loop->n_slots == loop->cap_slots && slots_grow(loop) != GH_OK)
            return GH_ERR_IO;
        index = loop->n_slots++;
        loop->slots[index].gen = 0;
        loop->slots[index].io = NULL;
    }
    ev.data.u64 = (uint64_t)loop->slots[index].gen << 32 | index;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        loop->slots[index].next_free = loop->free_slot;
        loop->free_slot = index + 1;
        return GH_ERR_IO;
    }
    loop->slots[index].io = io;
    io->registered = (int)index + 1; /* the slot, so that stop finds it */
    return GH_OK;
}

void gh_io_stop(struct gh_io *io)
{
    struct gh_loop *loop = io->loop;
    uint32_t index;

    if (io->registered <= 0 || loop == NULL)
        return;
    index = (uint32_t)io->registered - 1;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    if (io->pending != 0) { /* keep the kick array within cap_slots: drop its entry */
        for (size_t i = 0; i < loop->n_kicks; i++) {
            if ((uint32_t)loop->kicks[i] == index) {
                loop->kicks[i] = loop->kicks[--loop->n_kicks];
                break;
            }
        }
    }
    loop->slots[index].io = NULL;
    loop->slots[index].gen++; /* events and kicks already gathered for it are stale now */
    loop->slots[index].next_free = loop->free_slot;
    loop->free_slot = index + 1;
    io->registered = 0;
    io->pending = 0;
}

void gh_io_kick(struct gh_io *io, unsigned events)
{
    struct gh_loop *loop = io->loop;
    uint32_t index;

    if (io->registered <= 0 || events == 0)
        return;
    index = (uint32_t)io->registered - 1;
    if (io->pending == 0)
        loop->kicks[loop->n_kicks++] = (uint64_t)loop->slots[index].gen << 32 | index;
    io->pending |= events;
}

/* The live io of an event's or kick's token, or NULL when it was stopped since. */
static struct gh_io *loop_io_of(struct gh_loop *loop, uint64_t token)
{
    uint32_t index = (uint32_t)token;

    if (index >= loop->n_slots || loop->slots[index].gen != (uint32_t)(token >> 32))
        return NULL;
    return loop->slots[index].io;
}

static int loop_run_kicks(struct gh_loop *loop)
{
    size_t n = loop->n_kicks;
    uint64_t *run = loop->kicks;

    if (n == 0)
        return 0;
    /* kicks made by these callbacks go to the other array, for the next round */
    loop->kicks = loop->kicks_run;
    loop->kicks_run = run;
    loop->n_kicks = 0;
    for (size_t i = 0; i < n; i++) {
        struct gh_io *io = loop_io_of(loop, loop->kicks_run[i]);
        unsigned events;

        if (io == NULL || io->pending == 0)
            continue;
        events = io->pending;
        io->pending = 0;
        io->cb(io, events);
    }
    return 1;
}

/* ---- timers ---- */

static void heap_set(struct gh_loop *loop, size_t i, struct gh_timer *t)
{
    loop->heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(struct gh_loop *loop, size_t i)
{
    struct gh_timer *t = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->heap_ms <= t->heap_ms)
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct gh_loop *loop, size_t i)
{
    struct gh_timer *t = loop->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len &&
            loop->heap[child + 1]->heap_ms < loop->heap[child]->heap_ms)
            child++;
        if (t->heap_ms <= loop->heap[child]->heap_ms)
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

static void heap_remove(struct gh_loop *loop, struct gh_timer *t)
{
    size_t i = t->slot - 1;
    struct gh_timer *last = loop->heap[--loop->heap_len];

    t->slot = 0;
    if (last == t)
        return;
    heap_set(loop, i, last);
    if (i > 0 && loop->heap[(i - 1) / 2]->heap_ms > last->heap_ms)
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

int gh_timer_arm(struct gh_loop *loop, struct gh_timer *t, uint64_t after_ms)
{
    uint64_t due = loop->now_ms + (after_ms < UINT32_MAX ? after_ms : UINT32_MAX); /* no wrap */

    if (t->slot != 0) {
        t->due_ms = due;
        if (due < t->heap_ms) { /* earlier than its key: the heap must know now */
            t->heap_ms = due;
            heap_up(loop, t->slot - 1);
        }
        return GH_OK;
    }
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct gh_timer **heap = realloc(loop->heap, cap * sizeof *heap);
        if (heap == NULL)
            return GH_ERR_NOMEM;
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    t->due_ms = t->heap_ms = due;
    loop->heap[loop->heap_len++] = t;
    heap_up(loop, loop->heap_len - 1);
    return GH_OK;
}

void gh_timer_disarm(struct gh_loop *loop, struct gh_timer *t)
{
    if (t->slot != 0)
        heap_remove(loop, t);
    t->due_ms = 0;
}

int gh_timer_armed(const struct gh_timer *t)
{
    return t->slot != 0;
}

/* Re-keys timers moved later until the top's key is its real deadline; the top then or NULL. */
static struct gh_timer *timers_top(struct gh_loop *loop)
{
    while (loop->heap_len > 0) {
        struct gh_timer *t = loop->heap[0];
        if (t->heap_ms == t->due_ms)
            return t;
        t->heap_ms = t->due_ms;
        heap_down(loop, 0);
    }
    return NULL;
}

static void loop_run_timers(struct gh_loop *loop)
{
    /* a timer re-armed for "now" by its own callback must not keep this turn going forever */
    size_t budget = loop->heap_len;
    struct gh_timer *t;

    while (budget-- > 0 && (t = timers_top(loop)) != NULL && t->due_ms <= loop->now_ms) {
        heap_remove(loop, t);
        t->due_ms = 0;
        t->cb(t);
    }
}

/* ---- messages from other threads ---- */

static void loop_signal(struct gh_loop *loop)
{
    uint64_t one = 1;

    if (atomic_exchange(&loop->wake_pending, 1) == 0) {
        while (write(loop->evfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

int gh_loop_post(struct gh_loop *loop, struct gh_loop_msg *msg)
{
    pthread_mutex_lock(&loop->mutex);
    if (loop->posts_closed) {
        pthread_mutex_unlock(&loop->mutex);
        return 0;
    }
    msg->next = NULL;
    if (loop->post_tail != NULL)
        loop->post_tail->next = msg;
    else
        loop->post_head = msg;
    loop->post_tail = msg;
    pthread_mutex_unlock(&loop->mutex);
    loop_signal(loop);
    return 1;
}

void gh_loop_wake(struct gh_loop *loop)
{
    loop_signal(loop);
}

void gh_loop_close_posts(struct gh_loop *loop)
{
    pthread_mutex_lock(&loop->mutex);
    loop->posts_closed = 1;
    pthread_mutex_unlock(&loop->mutex);
}

static void loop_read_wake(struct gh_loop *loop)
{
    uint64_t count;

    while (read(loop->evfd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    /* after the read: a post from now on writes again, and this turn takes the queue after it */
    atomic_store(&loop->wake_pending, 0);
}

static void loop_run_posts(struct gh_loop *loop)
{
    struct gh_loop_msg *msg;

    pthread_mutex_lock(&loop->mutex);
    msg = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->mutex);
    while (msg != NULL) {
        struct gh_loop_msg *next = msg->next; /* the callback owns msg */
        msg->cb(msg);
        msg = next;
    }
}

/* ---- deferred calls ---- */

void gh_defer_schedule(struct gh_loop *loop, struct gh_defer *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->next = NULL;
    if (loop->defer_tail != NULL)
        loop->defer_tail->next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
}

void gh_defer_cancel(struct gh_loop *loop, struct gh_defer *d)
{
    struct gh_defer **p;

    if (!d->queued)
        return;
    d->queued = 0;
    for (p = &loop->running; *p != NULL; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            return;
        }
    }
    struct gh_defer *prev = NULL;
    for (p = &loop->defer_head; *p != NULL; prev = *p, p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            if (loop->defer_tail == d)
                loop->defer_tail = prev;
            return;
        }
    }
}

static int loop_run_defers(struct gh_loop *loop)
{
    if (loop->defer_head == NULL)
        return 0;
    /* schedules made by these calls go to the fresh list: the next round */
    loop->running = loop->defer_head;
    loop->defer_head = loop->defer_tail = NULL;
    while (loop->running != NULL) {
        struct gh_defer *d = loop->running;
        loop->running = d->next;
        d->queued = 0;
        d->cb(d);
    }
    return 1;
}

/* ---- the loop ---- */

int gh_loop_new(struct gh_loop **out)
{
    struct gh_loop *loop = calloc(1, sizeof *loop);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = GH_LOOP_WAKE_TOKEN};
    int rc = GH_ERR_IO;

    *out = NULL;
    if (loop == NULL)
        return GH_ERR_NOMEM;
    loop->epfd = loop->evfd = -1;
    pthread_mutex_init(&loop->mutex, NULL);
    atomic_init(&loop->wake_pending, 0);
    if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto out;
    if ((loop->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        goto out;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev) != 0)
        goto out;
    if (slots_grow(loop) != GH_OK) {
        rc = GH_ERR_NOMEM;
        goto out;
    }
    loop_update_time(loop);
    *out = loop;
    loop = NULL;
    rc = GH_OK;
out:
    gh_loop_free(loop);
    return rc;
}

void gh_loop_free(struct gh_loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->evfd >= 0)
        close(loop->evfd);
    pthread_mutex_destroy(&loop->mutex);
    free(loop->slots);
    free(loop->kicks);
    free(loop->kicks_run);
    free(loop->heap);
    free(loop);
}

static int loop_timeout(struct gh_loop *loop, int max_wait_ms)
{
    struct gh_timer *t;
    uint64_t wait;

    if (loop->defer_head != NULL || loop->n_kicks > 0)
        return 0;
    if ((t = timers_top(loop)) == NULL)
        return max_wait_ms;
    loop_update_time(loop);
    wait = t->due_ms > loop->now_ms ? t->due_ms - loop->now_ms : 0;
    if (max_wait_ms >= 0 && wait > (uint64_t)max_wait_ms)
        return max_wait_ms;
    return wait > INT32_MAX ? INT32_MAX : (int)wait;
}

static void loop_dispatch(struct gh_loop *loop, const struct epoll_event *events, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t e = events[i].events;
        unsigned what = 0;
        struct gh_io *io;

        if (events[i].data.u64 == GH_LOOP_WAKE_TOKEN) {
            loop_read_wake(loop);
            continue;
        }
        if ((io = loop_io_of(loop, events[i].data.u64)) == NULL)
            continue; /* stopped by an earlier callback of this batch */
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            what |= GH_IO_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            what |= GH_IO_WRITE;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            what |= GH_IO_HUP;
        io->cb(io, what);
    }
}

void gh_loop_run_once(struct gh_loop *loop, int max_wait_ms)
{
    struct epoll_event events[GH_LOOP_EVENTS];
    int n = epoll_wait(loop->epfd, events, GH_LOOP_EVENTS, loop_timeout(loop, max_wait_ms));

    loop_update_time(loop);
    if (n > 0) /* n < 0: EINTR, or nothing to do this turn */
        loop_dispatch(loop, events, n);
    loop_run_posts(loop);
    loop_run_timers(loop);
    for (int round = 0; round < GH_LOOP_ROUNDS; round++) {
        int ran = loop_run_defers(loop);
        ran |= loop_run_kicks(loop);
        if (!ran)
            break;
    }
}
