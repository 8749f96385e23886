// SPDX-License-Identifier: Apache-2.0
/*
 * The resolver pool of src/http/resolve.c: answers come on the asking loop's thread, a name under
 * the reserved .invalid domain (RFC 6761) fails with a static error, and a cancelled request never
 * calls back and leaks nothing (gh_resolve_shutdown joins the pool, so the answer is posted by
 * then and LeakSanitizer sees the rest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "common/error.h"
#include "http/resolve.h"

struct answer {
    int calls;
    int ok, port, family;
    const char *error;
    pthread_t thread;
};

static void on_answer(void *data, const struct addrinfo *res, const char *error)
{
    struct answer *a = data;

    a->calls++;
    a->thread = pthread_self();
    a->error = error;
    if (res != NULL) {
        a->ok = 1;
        a->family = res->ai_family;
        if (res->ai_family == AF_INET)
            a->port = ntohs(((const struct sockaddr_in *)res->ai_addr)->sin_port);
        else if (res->ai_family == AF_INET6)
            a->port = ntohs(((const struct sockaddr_in6 *)res->ai_addr)->sin6_port);
    }
}

static void run_until_answer(struct gh_loop *loop, struct answer *a)
{
    for (int turn = 0; a->calls == 0; turn++) {
        assert_true(turn < 3000);
        gh_loop_run_once(loop, 20);
    }
}

static void test_localhost(void **state)
{
    struct gh_loop *loop;
    struct gh_resolve *r;
    struct answer a = {0};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    assert_int_equal(gh_resolve_start(loop, "localhost", "8080", on_answer, &a, &r), GH_OK);
    assert_non_null(r);
    assert_int_equal(a.calls, 0); /* never from inside the call */
    run_until_answer(loop, &a);
    assert_int_equal(a.calls, 1);
    assert_true(pthread_equal(a.thread, pthread_self()));
    assert_true(a.ok);
    assert_null(a.error);
    assert_true(a.family == AF_INET || a.family == AF_INET6);
    assert_int_equal(a.port, 8080);
    gh_resolve_shutdown();
    gh_loop_free(loop);
}

static void test_literal_and_invalid(void **state)
{
    struct gh_loop *loop;
    struct gh_resolve *r;
    struct answer lit = {0}, bad = {0};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    assert_int_equal(gh_resolve_start(loop, "127.0.0.1", "1", on_answer, &lit, &r), GH_OK);
    assert_int_equal(gh_resolve_start(loop, "no-such-host.invalid", "80", on_answer, &bad, &r),
                     GH_OK);
    run_until_answer(loop, &lit);
    run_until_answer(loop, &bad);
    assert_true(lit.ok);
    assert_int_equal(lit.family, AF_INET);
    assert_false(bad.ok);
    assert_non_null(bad.error);
    assert_true(strlen(bad.error) > 0);
    assert_int_equal(gh_resolve_start(loop, "", "80", on_answer, &bad, &r), GH_ERR_INVALID_ARG);
    assert_null(r);
    assert_int_equal(gh_resolve_start(loop, "localhost", "", on_answer, &bad, &r),
                     GH_ERR_INVALID_ARG);
    gh_resolve_shutdown();
    gh_loop_free(loop);
}

static void test_cancel_before_answer(void **state)
{
    struct gh_loop *loop;
    struct gh_resolve *r1, *r2;
    struct answer a = {0}, b = {0};

    assert_int_equal(gh_loop_new(&loop), GH_OK);
    assert_int_equal(gh_resolve_start(loop, "localhost", "80", on_answer, &a, &r1), GH_OK);
    assert_int_equal(gh_resolve_start(loop, "localhost", "81", on_answer, &b, &r2), GH_OK);
    gh_resolve_cancel(r1);
    gh_resolve_cancel(NULL);
    gh_resolve_shutdown(); /* both answers are posted by now */
    gh_loop_run_once(loop, 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    /* the pool starts again after a shutdown */
    struct answer c = {0};
    assert_int_equal(gh_resolve_start(loop, "localhost", "82", on_answer, &c, &r1), GH_OK);
    run_until_answer(loop, &c);
    assert_int_equal(c.port, 82);
    gh_resolve_shutdown();
    gh_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_localhost),
        cmocka_unit_test(test_literal_and_invalid),
        cmocka_unit_test(test_cancel_before_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
