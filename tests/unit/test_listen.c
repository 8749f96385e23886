// SPDX-License-Identifier: Apache-2.0
/*
 * The listeners' addresses and sockets (common/listen.c): the forms an operator writes, numeric
 * only for the admin listener, loopback or not, and above all that an address somebody else
 * listens on is refused, even when that somebody set SO_REUSEPORT (as gatehouse's gateway did
 * before, which let a second instance share its port in silence). Only loopback is bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/listen.h"

static int resolve(const char *spec, int flags, size_t *n)
{
    struct sockaddr_storage addrs[GH_LISTEN_MAX];
    socklen_t lens[GH_LISTEN_MAX];
    char error[256] = "";
    int rc = gh_listen_resolve(spec, flags, addrs, lens, n, error, sizeof error);

    if (rc != GH_OK && error[0] == '\0')
        fail_msg("no message for '%s'", spec);
    return rc;
}

static void test_forms(void **state)
{
    static const char *const refused[] = {
        "",        "nonsense", "127.0.0.1",    "127.0.0.1:",    "1.2.3.4:99999",  "::1:80",
        "[::1]80", "[::1:80",  "[1.2.3.4]:80", "127.0.0.1:+80", "127.0.0.1:0x50", "[]:80"};
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (resolve(refused[i], GH_LISTEN_NAMES, &n) != GH_ERR_INVALID_ARG)
            fail_msg("'%s' was accepted", refused[i]);
    assert_int_equal(resolve("127.0.0.1:8080", 0, &n), GH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(resolve("[::1]:8080", 0, &n), GH_OK);
    assert_int_equal(n, 1);
    /* the shorthands and names are the gateway's only */
    assert_int_equal(resolve("*:8080", GH_LISTEN_NAMES, &n), GH_OK);
    assert_int_equal(resolve(":8080", GH_LISTEN_NAMES, &n), GH_OK);
    assert_int_equal(resolve("*:8080", 0, &n), GH_ERR_INVALID_ARG);
    assert_int_equal(resolve(":8080", 0, &n), GH_ERR_INVALID_ARG);
    assert_int_equal(resolve("localhost:8080", 0, &n), GH_ERR_INVALID_ARG);
    assert_int_equal(resolve("localhost:8080", GH_LISTEN_NAMES, &n), GH_OK);
    assert_true(n >= 1 && n <= GH_LISTEN_MAX);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_int_equal(gh_listen_is_loopback("127.0.0.1:9901", 0), 1);
    assert_int_equal(gh_listen_is_loopback("127.1.2.3:9901", 0), 1);
    assert_int_equal(gh_listen_is_loopback("[::1]:9901", 0), 1);
    assert_int_equal(gh_listen_is_loopback("localhost:9901", GH_LISTEN_NAMES), 1);
    assert_int_equal(gh_listen_is_loopback("0.0.0.0:9901", 0), 0);
    assert_int_equal(gh_listen_is_loopback("[::]:9901", 0), 0);
    assert_int_equal(gh_listen_is_loopback("192.0.2.1:9901", 0), 0);
    assert_int_equal(gh_listen_is_loopback("*:9901", GH_LISTEN_NAMES), 0);
    assert_int_equal(gh_listen_is_loopback("nonsense", 0), -1);
}

static unsigned port_of(const char *address)
{
    const char *colon = strrchr(address, ':');
    return colon != NULL ? (unsigned)atoi(colon + 1) : 0;
}

/* A listener of somebody else's on 127.0.0.1, with or without SO_REUSEPORT; its port. */
static int foreign_listener(int reuseport, unsigned *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof sin;
    int on = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (reuseport)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void test_address_in_use(void **state)
{
    struct gh_listen_set first, second;
    char spec[64], error[256];
    unsigned port;
    (void)state;
    for (int reuseport = 0; reuseport <= 1; reuseport++) {
        int fd = foreign_listener(reuseport, &port);
        snprintf(spec, sizeof spec, "127.0.0.1:%u", port);
        assert_int_equal(gh_listen_open(spec, 0, &second, error, sizeof error), GH_ERR_ADDR_IN_USE);
        assert_non_null(strstr(error, "address already in use"));
        assert_non_null(strstr(error, spec));
        gh_listen_close(&second);
        close(fd);
    }
    /* two of ours: the second is refused the same way */
    assert_int_equal(gh_listen_open("127.0.0.1:0", 0, &first, error, sizeof error), GH_OK);
    assert_int_equal(first.n, 1);
    port = port_of(first.addresses[0]);
    assert_true(port > 0);
    snprintf(spec, sizeof spec, "127.0.0.1:%u", port);
    assert_string_equal(first.addresses[0], spec);
    assert_int_equal(gh_listen_open(spec, 0, &second, error, sizeof error), GH_ERR_ADDR_IN_USE);
    gh_listen_close(&second);
    gh_listen_close(&first);
    /* once closed, the address is free again at once (SO_REUSEADDR) */
    assert_int_equal(gh_listen_open(spec, 0, &second, error, sizeof error), GH_OK);
    gh_listen_close(&second);
}

static void test_a_name_binds_each_address_on_one_port(void **state)
{
    struct gh_listen_set set;
    char error[256];
    (void)state;
    assert_int_equal(gh_listen_open("localhost:0", GH_LISTEN_NAMES, &set, error, sizeof error),
                     GH_OK);
    assert_true(set.n >= 1);
    for (size_t i = 0; i < set.n; i++) {
        assert_true(set.fds[i] >= 0);
        assert_int_equal(port_of(set.addresses[i]), port_of(set.addresses[0]));
        assert_true(strncmp(set.addresses[i], "127.", 4) == 0 ||
                    strncmp(set.addresses[i], "[::1]:", 6) == 0);
    }
    gh_listen_close(&set);
    for (size_t i = 0; i < set.n; i++)
        assert_int_equal(set.fds[i], -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_a_name_binds_each_address_on_one_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
