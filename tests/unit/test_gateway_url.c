// SPDX-License-Identifier: Apache-2.0
/*
 * src/gateway/url.c: the upstream base URLs the proxy connects to and the Locations it compares
 * with them. A Location that does not parse passes unchanged, so a parser that accepts too much
 * would rewrite what it should not, and one that accepts too little leaves upstream addresses in
 * answers: each rule here has its twin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "gateway/server_internal.h"

static int parse(const char *s, struct gw_url *u)
{
    return gw_url_parse(s, strlen(s), u);
}

static void assert_slice(const char *p, size_t len, const char *want)
{
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

static void test_http_with_port_and_path(void **state)
{
    struct gw_url u;

    (void)state;
    assert_int_equal(parse("http://api.internal:8080/base/v1", &u), 0);
    assert_int_equal(u.https, 0);
    assert_slice(u.authority, u.authority_len, "api.internal:8080");
    assert_slice(u.host, u.host_len, "api.internal");
    assert_int_equal(u.port, 8080);
    assert_slice(u.path, u.path_len, "/base/v1");
}

static void test_defaults_of_the_scheme(void **state)
{
    struct gw_url u;

    (void)state;
    assert_int_equal(parse("https://example.com", &u), 0);
    assert_int_equal(u.https, 1);
    assert_int_equal(u.port, 443);
    assert_slice(u.path, u.path_len, "/");
    assert_int_equal(parse("HTTP://Example.COM/x?q=1", &u), 0); /* a Location may shout */
    assert_int_equal(u.port, 80);
    assert_slice(u.path, u.path_len, "/x?q=1");
}

static void test_ipv6_host(void **state)
{
    struct gw_url u;

    (void)state;
    assert_int_equal(parse("http://[::1]:9000/a", &u), 0);
    assert_slice(u.host, u.host_len, "::1");
    assert_slice(u.authority, u.authority_len, "[::1]:9000");
    assert_int_equal(u.port, 9000);
    assert_int_equal(parse("http://[::1]x/a", &u), -1);
    assert_int_equal(parse("http://[::1/a", &u), -1);
    assert_int_equal(parse("http://[]/a", &u), -1);
}

static void test_refused(void **state)
{
    struct gw_url u;

    (void)state;
    assert_int_equal(parse("ftp://example.com/", &u), -1);
    assert_int_equal(parse("/relative/path", &u), -1);
    assert_int_equal(parse("http://", &u), -1);
    assert_int_equal(parse("http://:80/", &u), -1);
    assert_int_equal(parse("http://user@host/", &u), -1);
    assert_int_equal(parse("http://host:0/", &u), -1);
    assert_int_equal(parse("http://host:65536/", &u), -1);
    assert_int_equal(parse("http://host:8x/", &u), -1);
    assert_int_equal(parse("http://host?q", &u), -1);
    assert_int_equal(parse("http://host:65535/", &u), 0);
}

/* Slices from the network are not NUL-terminated: nothing past `len` is read. */
static void test_slice_is_bounded(void **state)
{
    struct gw_url u;
    const char *s = "http://host/pathXXXX";

    (void)state;
    assert_int_equal(gw_url_parse(s, 16, &u), 0);
    assert_slice(u.path, u.path_len, "/path");
    assert_int_equal(gw_url_parse(s, 11, &u), 0);
    assert_slice(u.host, u.host_len, "host");
    assert_slice(u.path, u.path_len, "/");
}

static void test_lcequal(void **state)
{
    (void)state;
    assert_true(gw_lcequal("Content-Length", 14, "content-length", 14));
    assert_false(gw_lcequal("content-lengtH", 14, "content-length", 13));
    assert_false(gw_lcequal("x-a", 3, "x-b", 3));
    assert_true(gw_lcequal("", 0, "", 0));
}

/* An IPv4 client of a dual-stack socket reads as plain IPv4, the form ip_allow lists and
 * X-Forwarded-For use; IPv6 stays IPv6; no address is no text. */
static void test_address_text(void **state)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    char buf[64];

    (void)state;
    memset(&ss, 0, sizeof ss);
    sin6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6->sin6_addr), 1);
    assert_int_equal(gw_address_text(&ss, sizeof *sin6, buf, sizeof buf), 9);
    assert_string_equal(buf, "192.0.2.7");
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr), 1);
    assert_int_equal(gw_address_text(&ss, sizeof *sin6, buf, sizeof buf), 11);
    assert_string_equal(buf, "2001:db8::1");
    memset(&ss, 0, sizeof ss);
    sin->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr), 1);
    assert_int_equal(gw_address_text(&ss, sizeof *sin, buf, sizeof buf), 9);
    assert_string_equal(buf, "127.0.0.1");
    assert_int_equal(gw_address_text(&ss, 0, buf, sizeof buf), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_with_port_and_path),
        cmocka_unit_test(test_defaults_of_the_scheme),
        cmocka_unit_test(test_ipv6_host),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_slice_is_bounded),
        cmocka_unit_test(test_lcequal),
        cmocka_unit_test(test_address_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
