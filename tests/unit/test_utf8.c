// SPDX-License-Identifier: Apache-2.0
/* Strict UTF-8 (RFC 3629) for log lines: what a fatal TextDecoder refuses is never written raw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/utf8.h"
#include "gateway/accesslog.h"

static size_t seq(const char *s)
{
    return gh_utf8_sequence((const unsigned char *)s, strlen(s));
}

static void test_valid_sequences(void **state)
{
    (void)state;
    assert_int_equal(seq("A"), 1);
    assert_int_equal(seq("\xc2\x80"), 2);         /* U+0080 */
    assert_int_equal(seq("\xc3\xa9"), 2);         /* é */
    assert_int_equal(seq("\xe0\xa0\x80"), 3);     /* U+0800 */
    assert_int_equal(seq("\xed\x9f\xbf"), 3);     /* U+D7FF, below the surrogates */
    assert_int_equal(seq("\xee\x80\x80"), 3);     /* U+E000, above them */
    assert_int_equal(seq("\xf0\x90\x80\x80"), 4); /* U+10000 */
    assert_int_equal(seq("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
}

static void test_invalid_sequences(void **state)
{
    static const char *const bad[] = {
        "\x80",             /* a continuation byte alone */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\x80",     /* overlong NUL */
        "\xe0\x9f\xbf",     /* overlong U+07FF */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80",
        "\xf8\x88\x80\x80",
        "\xff",
        "\xfe",
        "\xc3",         /* cut short */
        "\xe2\x82",     /* cut short */
        "\xe2\x28\xa1", /* a bad continuation */
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(seq(bad[i]), 0);
}

/* The access log's escaper: each byte outside valid UTF-8 is \u00XX, valid UTF-8 is kept. */
static void test_access_line_escapes_invalid_bytes(void **state)
{
    char buf[256];
    struct gh_line l;
    const char value[] = "a\xff\xc0\xaf\xe0\x80\x80\xed\xa0\x80\xf4\x90\x80\x80\xf8\x88\x80"
                         "\xc3\xa9\"\\\x01";
    (void)state;
    gh_line_init(&l, buf, sizeof buf);
    gh_line_str(&l, "path", value, sizeof value - 1, SIZE_MAX);
    assert_true(gh_line_end(&l));
    assert_string_equal(buf, "{\"path\":\"a\\u00ff\\u00c0\\u00af\\u00e0\\u0080\\u0080"
                             "\\u00ed\\u00a0\\u0080\\u00f4\\u0090\\u0080\\u0080"
                             "\\u00f8\\u0088\\u0080\xc3\xa9\\\"\\\\\\u0001\"}\n");
}

/* Cut at `max` inside a sequence: the part left is escaped, never written as half a character. */
static void test_access_line_cut_sequence(void **state)
{
    char buf[64];
    struct gh_line l;
    (void)state;
    gh_line_init(&l, buf, sizeof buf);
    gh_line_str(&l, "ua", "x\xe2\x82\xac", 4, 3);
    assert_true(gh_line_end(&l));
    assert_string_equal(buf, "{\"ua\":\"x\\u00e2\\u0082\"}\n");
}

static void test_scrub(void **state)
{
    const char value[] = "/v1/\xff\xed\xa0\x80\xc3\xa9\n";
    char *out = gh_utf8_scrub(value, sizeof value - 1, SIZE_MAX);
    (void)state;
    assert_non_null(out);
    assert_string_equal(out, "/v1/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\n");
    free(out);
    out = gh_utf8_scrub("ab\xc3\xa9", 4, 3); /* é cut in half */
    assert_string_equal(out, "ab\xef\xbf\xbd");
    free(out);
}

/* A log field that is not UTF-8 stays in the line (as U+FFFD), and so do the line's other fields.
 */
static void test_log_text(void **state)
{
    char line[512] = "";
    FILE *out = tmpfile();
    (void)state;
    assert_non_null(out);
    gh_log_set_output(out);
    gh_log(GH_LOG_INFO, "listening",
           json_pack("{s:s, s:o, s:o}", "address", "127.0.0.1:1", "data_dir",
                     gh_log_text("/tmp/st\xffte"), "none", gh_log_text(NULL)));
    gh_log_set_output(NULL);
    rewind(out);
    assert_non_null(fgets(line, sizeof line, out));
    fclose(out);
    assert_non_null(strstr(line,
                           "\"address\":\"127.0.0.1:1\",\"data_dir\":\"/tmp/st\xef\xbf\xbdte\","
                           "\"none\":null}\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sequences),
        cmocka_unit_test(test_invalid_sequences),
        cmocka_unit_test(test_access_line_escapes_invalid_bytes),
        cmocka_unit_test(test_access_line_cut_sequence),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_log_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
