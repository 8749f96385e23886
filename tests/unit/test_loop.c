// SPDX-License-Identifier: Apache-2.0
/*
 * The event loop of src/http/loop.c: timers (order, lazy re-arming against a simple model under
 * random operations), messages from other threads (per-sender order), wake-ups, closed posts,
 * deferred calls (once however often scheduled, bounded when they schedule themselves), kicks,
 * and an io stopped and freed by another io's callback in the same epoll batch (ASan proves no
 * event reaches it). Time moves by gh_loop_advance, never by waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "http/loop.h"

/* ---- timers ---- */

#define FIRED_MAX 256

struct fired {
    struct gh_timer *order[FIRED_MAX];
    size_t n;
};

static void on_timer(struct gh_timer *t)
{
    struct fired *f = t->data;

    assert_true(f->n < FIRED_MAX);
    f->order[f->n++] = t;
}

static void test_timers_fire_in_order(void **state)
{
    struct gh_loop *loop;
    struct fired f = {0};
    struct gh_timer t[3] = {
        {.cb = on_timer, .data = &f}, {.cb = on_timer, .data = &f}, {.cb = on_timer, .data = &f}};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    assert_int_equal(gh_timer_arm(loop, &t[0], 30000), GH_OK);
    assert_int_equal(gh_timer_arm(loop, &t[1], 10000), GH_OK);
    assert_int_equal(gh_timer_arm(loop, &t[2], 20000), GH_OK);
    assert_true(gh_timer_armed(&t[0]));
    gh_loop_run_once(loop, 0);
    assert_int_equal(f.n, 0);
    gh_loop_advance(loop, 25000);
    gh_loop_run_once(loop, 0);
    assert_int_equal(f.n, 2);
    assert_ptr_equal(f.order[0], &t[1]);
    assert_ptr_equal(f.order[1], &t[2]);
    assert_true(gh_timer_armed(&t[0]));
    assert_false(gh_timer_armed(&t[1]));
    gh_loop_advance(loop, 10000);
    gh_loop_run_once(loop, 0);
    assert_int_equal(f.n, 3);
    assert_ptr_equal(f.order[2], &t[0]);
    gh_loop_free(loop);
}

static void test_timers_rearm_and_disarm(void **state)
{
    struct gh_loop *loop;
    struct fired f = {0};
    struct gh_timer a = {.cb = on_timer, .data = &f}, b = {.cb = on_timer, .data = &f};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    /* later: the heap keeps the old key until it comes due, then re-keys */
    assert_int_equal(gh_timer_arm(loop, &a, 10000), GH_OK);
    assert_int_equal(gh_timer_arm(loop, &a, 100000), GH_OK);
    /* earlier */
    assert_int_equal(gh_timer_arm(loop, &b, 100000), GH_OK);
    assert_int_equal(gh_timer_arm(loop, &b, 5000), GH_OK);
    gh_loop_advance(loop, 50000);
    gh_loop_run_once(loop, 0);
    assert_int_equal(f.n, 1);
    assert_ptr_equal(f.order[0], &b);
    assert_true(gh_timer_armed(&a));
    gh_loop_advance(loop, 60000);
    gh_loop_run_once(loop, 0);
    assert_int_equal(f.n, 2);
    assert_ptr_equal(f.order[1], &a);

    assert_int_equal(gh_timer_arm(loop, &a, 1000), GH_OK);
    gh_timer_disarm(loop, &a);
    gh_timer_disarm(loop, &a);
    gh_timer_disarm(loop, &b); /* never armed again: harmless */
    assert_false(gh_timer_armed(&a));
    gh_loop_advance(loop, 5000);
    gh_loop_run_once(loop, 0);
    assert_int_equal(f.n, 2);
    gh_loop_free(loop);
}

/* Random arms (earlier and later), disarms and clock moves, checked against a model that keeps
 * each timer's deadline: each turn fires exactly the timers due, in deadline order. */
static void test_timers_random_against_model(void **state)
{
    enum { N = 48, OPS = 20000 };
    struct gh_loop *loop;
    struct fired f = {0};
    struct gh_timer t[N];
    uint64_t due[N] = {0};
    unsigned seed = 12345;

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    for (int i = 0; i < N; i++)
        t[i] = (struct gh_timer){.cb = on_timer, .data = &f};
    for (int op = 0; op < OPS; op++) {
        int r = rand_r(&seed) % 10, i = rand_r(&seed) % N;
        if (r < 5) {
            uint64_t after = (uint64_t)(rand_r(&seed) % 2000);
            assert_int_equal(gh_timer_arm(loop, &t[i], after), GH_OK);
            due[i] = gh_loop_now_ms(loop) + after;
        } else if (r < 7) {
            gh_timer_disarm(loop, &t[i]);
            due[i] = 0;
        } else {
            gh_loop_advance(loop, (uint64_t)(rand_r(&seed) % 400));
            f.n = 0;
            gh_loop_run_once(loop, 0);
            uint64_t now = gh_loop_now_ms(loop), last = 0;
            size_t expect = 0;
            for (int k = 0; k < N; k++)
                expect += due[k] != 0 && due[k] <= now;
            assert_int_equal(f.n, expect);
            for (size_t k = 0; k < f.n; k++) {
                size_t idx = (size_t)(f.order[k] - t);
                assert_true(due[idx] != 0 && due[idx] <= now);
                assert_true(due[idx] >= last);
                last = due[idx];
                due[idx] = 0;
            }
        }
        for (int k = 0; k < N; k++)
            assert_int_equal(gh_timer_armed(&t[k]), due[k] != 0);
    }
    gh_loop_free(loop);
}

/* ---- messages ---- */

#define SENDERS    4
#define PER_SENDER 5000

struct post_msg {
    struct gh_loop_msg msg;
    int sender, seq;
};

struct post_state {
    struct gh_loop *loop;
    struct post_msg *msgs; /* SENDERS * PER_SENDER */
    int next_seq[SENDERS];
    int received;
    int out_of_order;
};

struct sender_arg {
    struct post_state *ps;
    int sender;
};

static void on_post(struct gh_loop_msg *msg)
{
    struct post_msg *m = (struct post_msg *)msg;
    struct post_state *ps = msg->data;

    if (ps->next_seq[m->sender] != m->seq)
        ps->out_of_order++;
    ps->next_seq[m->sender] = m->seq + 1;
    ps->received++;
}

static void *sender_main(void *arg)
{
    struct sender_arg *a = arg;

    for (int i = 0; i < PER_SENDER; i++) {
        struct post_msg *m = &a->ps->msgs[a->sender * PER_SENDER + i];
        m->msg.cb = on_post;
        m->msg.data = a->ps;
        m->sender = a->sender;
        m->seq = i;
        if (gh_loop_post(a->ps->loop, &m->msg) != 1)
            abort();
    }
    return NULL;
}

static void test_posts_from_threads_in_order(void **state)
{
    struct post_state ps = {0};
    struct sender_arg args[SENDERS];
    pthread_t threads[SENDERS];

    assert_int_equal(gh_loop_new(&ps.loop), GH_OK);
    assert_non_null(ps.msgs = calloc(SENDERS * PER_SENDER, sizeof *ps.msgs));
    for (int i = 0; i < SENDERS; i++) {
        args[i] = (struct sender_arg){&ps, i};
        assert_int_equal(pthread_create(&threads[i], NULL, sender_main, &args[i]), 0);
    }
    while (ps.received < SENDERS * PER_SENDER)
        gh_loop_run_once(ps.loop, -1); /* a lost wake-up hangs here: the test's timeout fails */
    for (int i = 0; i < SENDERS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(ps.out_of_order, 0);
    assert_int_equal(ps.received, SENDERS * PER_SENDER);
    free(ps.msgs);
    gh_loop_free(ps.loop);
}

static void *waker_main(void *arg)
{
    gh_loop_wake(arg);
    return NULL;
}

static void test_wake_from_thread(void **state)
{
    struct gh_loop *loop;
    pthread_t thread;

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    assert_int_equal(pthread_create(&thread, NULL, waker_main, loop), 0);
    gh_loop_run_once(loop, -1); /* returns only when woken */
    pthread_join(thread, NULL);
    /* the wake-up was consumed: a turn with nothing to do waits its full (zero) time */
    gh_loop_run_once(loop, 0);
    gh_loop_free(loop);
}

static void test_close_posts(void **state)
{
    struct post_state ps = {0};
    struct post_msg m[2] = {{.msg = {.cb = on_post, .data = &ps}, .seq = 0},
                            {.msg = {.cb = on_post, .data = &ps}, .seq = 1}};

    assert_int_equal(gh_loop_new(&ps.loop), GH_OK);
    assert_int_equal(gh_loop_post(ps.loop, &m[0].msg), 1);
    gh_loop_close_posts(ps.loop);
    assert_int_equal(gh_loop_post(ps.loop, &m[1].msg), 0);
    gh_loop_run_once(ps.loop, 0);
    assert_int_equal(ps.received, 1); /* queued before closing: still delivered */
    gh_loop_run_once(ps.loop, 0);
    assert_int_equal(ps.received, 1);
    gh_loop_free(ps.loop);
}

/* ---- deferred calls ---- */

struct defer_state {
    struct gh_loop *loop;
    int runs, again;
    struct gh_defer *chain;
};

static void on_defer(struct gh_defer *d)
{
    struct defer_state *s = d->data;

    s->runs++;
    if (s->again)
        gh_defer_schedule(s->loop, d);
    if (s->chain != NULL) {
        gh_defer_schedule(s->loop, s->chain);
        s->chain = NULL;
    }
}

static void test_defer_once_and_bounded(void **state)
{
    struct defer_state a = {0}, b = {0}, c = {0};
    struct gh_defer da = {.cb = on_defer, .data = &a}, db = {.cb = on_defer, .data = &b},
                    dc = {.cb = on_defer, .data = &c};

    assert_int_equal(gh_loop_new(&a.loop), GH_OK);
    b.loop = c.loop = a.loop;
    gh_defer_schedule(a.loop, &da);
    gh_defer_schedule(a.loop, &da);
    gh_defer_schedule(a.loop, &da);
    a.chain = &db;                /* scheduled from inside a deferred call: same turn, next round */
    gh_loop_run_once(a.loop, -1); /* pending defers: no waiting */
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 1);

    gh_defer_schedule(a.loop, &dc);
    gh_defer_cancel(a.loop, &dc);
    gh_defer_cancel(a.loop, &dc);
    gh_loop_run_once(a.loop, 0);
    assert_int_equal(c.runs, 0);

    /* one that schedules itself forever: each turn ends, and the next runs it again */
    c.again = 1;
    gh_defer_schedule(a.loop, &dc);
    gh_loop_run_once(a.loop, -1);
    int first = c.runs;
    assert_true(first >= 1 && first < 1000);
    gh_loop_run_once(a.loop, -1);
    assert_true(c.runs > first);
    gh_defer_cancel(a.loop, &dc);
    gh_loop_run_once(a.loop, 0);
    gh_loop_free(a.loop);
}

/* ---- descriptors ---- */

struct io_pair {
    struct gh_io io;
    int fds[2];
    int calls;
    unsigned events;
    struct io_pair **victim; /* stopped and freed by this one's callback */
};

static struct io_pair *io_pair_new(struct gh_loop *loop, gh_io_cb cb)
{
    struct io_pair *p = calloc(1, sizeof *p);

    assert_non_null(p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds), 0);
    assert_int_equal(gh_io_start(loop, &p->io, p->fds[0], cb, p), GH_OK);
    return p;
}

static void io_pair_free(struct io_pair *p)
{
    if (p == NULL)
        return;
    gh_io_stop(&p->io);
    close(p->fds[0]);
    close(p->fds[1]);
    free(p);
}

static int total_calls;
static struct io_pair *replacement; /* started by the callback that freed its victim */

static void on_io(struct gh_io *io, unsigned events)
{
    struct io_pair *p = io->data;

    p->calls++;
    p->events |= events;
    total_calls++;
    if (p->victim != NULL && *p->victim != NULL) {
        io_pair_free(*p->victim);
        *p->victim = NULL;
        /* likely in the slot just freed: the victim's gathered event must not reach it */
        replacement = io_pair_new(io->loop, on_io);
    }
}

static void test_io_stop_in_same_batch(void **state)
{
    struct gh_loop *loop;
    struct io_pair *a, *b;

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    a = io_pair_new(loop, on_io);
    b = io_pair_new(loop, on_io);
    /* the first writable edges: one turn, both in the batch; whichever comes first frees the
     * other, whose gathered event must not be delivered */
    a->victim = &b;
    b->victim = &a;
    total_calls = 0;
    gh_loop_run_once(loop, -1);
    assert_int_equal(total_calls, 1);
    assert_true((a == NULL) != (b == NULL));
    struct io_pair *left = a != NULL ? a : b;
    assert_int_equal(left->calls, 1);
    assert_true(left->events & GH_IO_WRITE);

    struct io_pair *c = replacement;
    assert_non_null(c);
    assert_int_equal(c->calls, 0);
    left->victim = NULL;
    gh_loop_run_once(loop, -1); /* its own first edge */
    assert_int_equal(c->calls, 1);
    assert_int_equal(write(left->fds[1], "x", 1), 1);
    gh_loop_run_once(loop, -1);
    assert_int_equal(left->calls, 2);
    assert_true(left->events & GH_IO_READ);
    io_pair_free(left);
    io_pair_free(c);
    gh_loop_free(loop);
}

static void test_io_kick(void **state)
{
    struct gh_loop *loop;
    struct io_pair *a, *b;

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    a = io_pair_new(loop, on_io);
    b = io_pair_new(loop, on_io);
    gh_loop_run_once(loop, -1); /* the first writable edges */
    a->calls = b->calls = 0;
    a->events = b->events = 0;
    gh_io_kick(&a->io, GH_IO_READ);
    gh_io_kick(&a->io, GH_IO_WRITE); /* merged: one call with both */
    gh_io_kick(&b->io, GH_IO_READ);
    gh_io_stop(&b->io); /* a stopped io's kick is dropped */
    gh_io_kick(&b->io, GH_IO_READ);
    gh_loop_run_once(loop, -1); /* a pending kick: no waiting */
    assert_int_equal(a->calls, 1);
    assert_int_equal(a->events, GH_IO_READ | GH_IO_WRITE);
    assert_int_equal(b->calls, 0);
    gh_loop_run_once(loop, 0);
    assert_int_equal(a->calls, 1);
    io_pair_free(a);
    io_pair_free(b);
    gh_loop_free(loop);
}

/* Edge-triggered: one callback per edge, none while nothing new happens. */
static void test_io_edge_triggered(void **state)
{
    struct gh_loop *loop;
    struct io_pair *a;
    char buf[8];

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    a = io_pair_new(loop, on_io);
    gh_loop_run_once(loop, -1);
    a->calls = 0;
    assert_int_equal(write(a->fds[1], "ab", 2), 2);
    gh_loop_run_once(loop, -1);
    assert_int_equal(a->calls, 1);
    gh_loop_run_once(loop, 0); /* not read: still no second edge */
    assert_int_equal(a->calls, 1);
    assert_int_equal(read(a->fds[0], buf, sizeof buf), 2);
    close(a->fds[1]);
    a->fds[1] = open("/dev/null", O_RDONLY);
    gh_loop_run_once(loop, -1); /* the peer closed: an edge */
    assert_int_equal(a->calls, 2);
    assert_true(a->events & GH_IO_READ);
    io_pair_free(a);
    gh_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_order),
        cmocka_unit_test(test_timers_rearm_and_disarm),
        cmocka_unit_test(test_timers_random_against_model),
        cmocka_unit_test(test_posts_from_threads_in_order),
        cmocka_unit_test(test_wake_from_thread),
        cmocka_unit_test(test_close_posts),
        cmocka_unit_test(test_defer_once_and_bounded),
        cmocka_unit_test(test_io_stop_in_same_batch),
        cmocka_unit_test(test_io_kick),
        cmocka_unit_test(test_io_edge_triggered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
