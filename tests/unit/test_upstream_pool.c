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
    h2o_url_t url;
    int fds[2];

    assert_non_null(f);
    f->worker.server = &f->server;
    f->worker.loop = h2o_evloop_create();
    gw_upstream_init(&f->worker);
    assert_int_equal(h2o_url_parse(H2O_STRLIT("http://127.0.0.1:1/"), &url), 0);
    assert_non_null(f->pool = gw_pool_for(&f->worker, &url, NULL));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct gw_upstream_conn *conn = calloc(1, sizeof *conn);
    assert_non_null(conn);
    conn->sock = h2o_evloop_socket_create(f->worker.loop, fds[0], 0);
    conn->pool = f->pool;
    conn->worker = &f->worker;
    gw_conn_release(conn, 1);
    f->peer = fds[1];
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    gw_upstream_dispose(&f->worker);
    h2o_evloop_run(f->worker.loop, 0); /* h2o frees closed sockets on the next turn */
    h2o_evloop_destroy(f->worker.loop);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quiet_connection_is_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_bytes_close_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_connection_is_not_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
