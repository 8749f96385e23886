// SPDX-License-Identifier: Apache-2.0
/*
 * Trusted proxies (src/gateway/forwarded.c): the list is parsed strictly, and the client behind
 * proxies is believed only from a trusted peer and only up to the first hop that is not one of
 * them, read from the right, so a caller cannot choose its own address by sending
 * X-Forwarded-For.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "common/error.h"
#include "gateway/forwarded.h"

static void test_parse(void **unused)
{
    struct gh_trusted_proxies t;
    char why[256];

    (void)unused;
    assert_int_equal(gh_trusted_proxies_parse(NULL, &t, why, sizeof why), GH_OK);
    assert_int_equal(t.n, 0);
    assert_int_equal(gh_trusted_proxies_parse("10.0.0.0/8, 192.0.2.7 ,::1", &t, why, sizeof why),
                     GH_OK);
    assert_int_equal(t.n, 3);
    assert_int_equal(gh_trusted_proxies_parse("10.0.0.0/8,,::1", &t, why, sizeof why),
                     GH_ERR_INVALID_ARG);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(gh_trusted_proxies_parse("10.0.0.1/8", &t, why, sizeof why),
                     GH_ERR_INVALID_ARG);
    assert_int_equal(gh_trusted_proxies_parse("proxy.example", &t, why, sizeof why),
                     GH_ERR_INVALID_ARG);
    assert_int_equal(gh_trusted_proxies_parse("10.0.0.0/8,", &t, why, sizeof why),
                     GH_ERR_INVALID_ARG);
}

static void v4(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    assert_int_equal(inet_pton(AF_INET, text, out), 1);
}

/* The client for peer `peer` (IPv4) and X-Forwarded-For `xff`, as text. */
static const char *client(const struct gh_trusted_proxies *t, const char *peer, const char *xff)
{
    static char text[INET6_ADDRSTRLEN];
    uint8_t p[16], addr[16];
    int family;

    v4(peer, p);
    gh_forwarded_client(t, 4, p, xff, xff != NULL ? strlen(xff) : 0, &family, addr);
    inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, text, sizeof text);
    return text;
}

static void test_client(void **unused)
{
    struct gh_trusted_proxies none, lb;
    char why[256];

    (void)unused;
    gh_trusted_proxies_parse(NULL, &none, why, sizeof why);
    gh_trusted_proxies_parse("10.0.0.0/8", &lb, why, sizeof why);
    /* no trusted proxy: whatever the caller says, the client is the peer */
    assert_string_equal(client(&none, "203.0.113.9", "1.2.3.4"), "203.0.113.9");
    /* an untrusted peer behind a trusted list: still the peer */
    assert_string_equal(client(&lb, "203.0.113.9", "1.2.3.4"), "203.0.113.9");
    /* a trusted load balancer: the hop it appended */
    assert_string_equal(client(&lb, "10.0.0.2", "198.51.100.7"), "198.51.100.7");
    /* a forged first entry is not believed: the walk stops at the first untrusted from the
     * right */
    assert_string_equal(client(&lb, "10.0.0.2", "1.1.1.1, 198.51.100.7, 10.0.0.3"), "198.51.100.7");
    /* every hop trusted: the leftmost */
    assert_string_equal(client(&lb, "10.0.0.2", "10.1.1.1, 10.0.0.3"), "10.1.1.1");
    /* garbage stops the walk at the last hop that could be read */
    assert_string_equal(client(&lb, "10.0.0.2", "1.1.1.1, junk, 10.0.0.3"), "10.0.0.3");
    assert_string_equal(client(&lb, "10.0.0.2", "junk"), "10.0.0.2");
    /* IPv6, bracketed with a port, and IPv4-mapped */
    assert_string_equal(client(&lb, "10.0.0.2", "[2001:db8::1]:443"), "2001:db8::1");
    assert_string_equal(client(&lb, "10.0.0.2", "::ffff:198.51.100.8"), "198.51.100.8");
    /* no X-Forwarded-For at all */
    assert_string_equal(client(&lb, "10.0.0.2", NULL), "10.0.0.2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_client),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
