// SPDX-License-Identifier: Apache-2.0
/*
 * The keep-alive pool of src/gateway/upstream.c when an upstream sends bytes after a complete
 * answer (a body after HEAD, a second unasked answer). The loop reads an idle connection only
 * when its poll says so, so such bytes can sit unread in the kernel while the loop is busy with
 * other sockets, and the next request would read them as its answer: another client's. The e2e
 * suite cannot hit that moment on purpose; here the loop simply does not run between the bytes
 * and the take, which is that moment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "gateway/server_internal.h"

struct fixture {
    struct gh_gateway_server server;
    struct gw_worker worker;
    struct gw_pool *pool;
    int peer; /* the upstream's end */
};

/* One worker with an idle connection in its pool for http://127.0.0.1:1; `peer` its far end. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct gw_url url;
    int fds[2];

    assert_non_null(f);
    f->worker.server = &f->server;
    assert_int_equal(gh_loop_new(&f->worker.loop), GH_OK);
    assert_int_equal(gw_url_parse("http://127.0.0.1:1/", 19, &url), 0);
    assert_non_null(f->pool = gw_pool_for(&f->worker, &url, NULL));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct gw_upstream_conn *conn = gw_conn_adopt(&f->worker, f->pool, fds[0]);
    assert_non_null(conn);
    assert_int_equal(f->worker.upstream_sockets, 1);
    gw_conn_release(conn, 1);
    f->peer = fds[1];
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    gw_upstream_dispose(&f->worker);
    assert_int_equal(f->worker.upstream_sockets, 0);
    gh_loop_free(f->worker.loop);
    close(f->peer);
    free(f);
    return 0;
}

/* A quiet idle connection is taken, and goes back. */
static void test_quiet_connection_is_reused(void **state)
{
    struct fixture *f = *state;
    struct gw_upstream_conn *conn = gw_pool_take(f->pool);

    assert_non_null(conn);
    assert_int_equal(atomic_load(&f->server.metrics.upstream_extra_bytes), 0);
    gw_conn_release(conn, 1);
}

/* Bytes the loop has not read yet: the connection is closed, never handed to a request. */
static void test_unread_bytes_close_the_connection(void **state)
{
    struct fixture *f = *state;
    static const char poison[] = "HTTP/1.1 200 OK\r\nX-Poison: 1\r\nContent-Length: 0\r\n\r\n";

    assert_int_equal(write(f->peer, poison, sizeof poison - 1), (ssize_t)(sizeof poison - 1));
    assert_null(gw_pool_take(f->pool));
    assert_int_equal(atomic_load(&f->server.metrics.upstream_extra_bytes), 1);
    /* the upstream sees the close: its end, or a reset for the bytes never read */
    char byte;
    ssize_t n = recv(f->peer, &byte, 1, MSG_DONTWAIT);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/* The upstream closed it (its keep-alive timeout) before the loop noticed: closed, not counted. */
static void test_closed_connection_is_not_counted(void **state)
{
    struct fixture *f = *state;

    shutdown(f->peer, SHUT_WR);
    assert_null(gw_pool_take(f->pool));
    assert_int_equal(atomic_load(&f->server.metrics.upstream_extra_bytes), 0);
}

/* An idle connection the upstream closes is dropped by the loop itself, before anyone takes it. */
static void test_loop_drops_a_closed_idle_connection(void **state)
{
    struct fixture *f = *state;

    shutdown(f->peer, SHUT_WR);
    for (int i = 0; i < 100 && f->worker.upstream_sockets != 0; i++)
        gh_loop_run_once(f->worker.loop, 10);
    assert_int_equal(f->worker.upstream_sockets, 0);
    assert_null(gw_pool_take(f->pool));
}

/* Released while the server stops, or not reusable: closed, never pooled. */
static void test_release_while_stopping_closes(void **state)
{
    struct fixture *f = *state;
    struct gw_upstream_conn *conn = gw_pool_take(f->pool);

    assert_non_null(conn);
    atomic_store(&f->server.stopping, 1);
    gw_conn_release(conn, 1);
    assert_int_equal(f->worker.upstream_sockets, 0);
    assert_null(gw_pool_take(f->pool));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quiet_connection_is_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_bytes_close_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_connection_is_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_drops_a_closed_idle_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_while_stopping_closes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
