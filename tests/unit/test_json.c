// SPDX-License-Identifier: Apache-2.0
/* JSON from the network: depth limit, duplicate names (also through escapes), trailing bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

static int parse(const char *text)
{
    json_t *obj = NULL;
    int rc = gh_json_parse_object(text, strlen(text), &obj);
    if (rc == GH_OK)
        assert_non_null(obj);
    else
        assert_null(obj);
    json_decref(obj);
    return rc;
}

/* {"a":{"a":...{}...}} with `depth` objects in all */
static void nested(char *buf, int depth)
{
    size_t o = 0;
    for (int i = 1; i < depth; i++)
        o += (size_t)sprintf(buf + o, "{\"a\":");
    o += (size_t)sprintf(buf + o, "{}");
    for (int i = 1; i < depth; i++)
        buf[o++] = '}';
    buf[o] = '\0';
}

static void test_depth_limit(void **state)
{
    char buf[4096];
    (void)state;
    nested(buf, 16);
    assert_int_equal(parse(buf), GH_OK);
    nested(buf, 17);
    assert_int_equal(parse(buf), GH_ERR_JSON_DEPTH);
    assert_int_equal(parse("{\"a\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}"), GH_OK); /* 16 */
    assert_int_equal(parse("{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}"),
                     GH_ERR_JSON_DEPTH); /* 17 */
    /* brackets inside strings, escaped quotes included, do not count */
    assert_int_equal(parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[\"}"), GH_OK);
}

static void test_depth_scan_is_bounded(void **state)
{
    static char deep[100001];
    (void)state;
    memset(deep, '[', sizeof deep - 1);
    assert_int_equal(gh_json_depth(deep, sizeof deep - 1, GH_JSON_MAX_DEPTH),
                     GH_JSON_MAX_DEPTH + 1);
    assert_int_equal(parse(deep), GH_ERR_JSON_DEPTH);
}

static void test_duplicates(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"a\":1,\"a\":1}"), GH_ERR_JSON_DUPLICATE);
    assert_int_equal(parse("{\"a\":1,\"\\u0061\":2}"), GH_ERR_JSON_DUPLICATE);
    assert_int_equal(parse("{\"x\":{\"b\":1,\"b\":2}}"), GH_ERR_JSON_DUPLICATE);
    assert_int_equal(parse("{\"a\":1,\"A\":2}"), GH_OK);
}

static void test_syntax_and_trailing_bytes(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"a\":1} "), GH_OK); /* JSON's own whitespace */
    assert_int_equal(parse("{\"a\":1}x"), GH_ERR_JSON_SYNTAX);
    assert_int_equal(parse("{\"a\":1}{}"), GH_ERR_JSON_SYNTAX);
    assert_int_equal(parse("{\"a\":1,}"), GH_ERR_JSON_SYNTAX);
    assert_int_equal(parse("{'a':1}"), GH_ERR_JSON_SYNTAX);
    assert_int_equal(parse("{\"a\":\"\xff\"}"), GH_ERR_JSON_SYNTAX);    /* not UTF-8 */
    assert_int_equal(parse("{\"a\":\"\\u0000\"}"), GH_ERR_JSON_SYNTAX); /* NUL in a string */
    assert_int_equal(parse("{\"a\":99999999999999999999}"), GH_ERR_JSON_SYNTAX);
    assert_int_equal(parse(""), GH_ERR_JSON_SYNTAX);
}

static void test_not_object(void **state)
{
    (void)state;
    assert_int_equal(parse("[1,2]"), GH_ERR_JSON_NOT_OBJECT);
    assert_int_equal(parse("\"s\""), GH_ERR_JSON_NOT_OBJECT);
    assert_int_equal(parse("5"), GH_ERR_JSON_NOT_OBJECT);
    assert_int_equal(parse("null"), GH_ERR_JSON_NOT_OBJECT);
}

static void test_explicit_length(void **state)
{
    json_t *obj;
    (void)state;
    /* the parser reads only `len` bytes: what follows is not part of the document */
    assert_int_equal(gh_json_parse_object("{\"a\":1}garbage", 7, &obj), GH_OK);
    json_decref(obj);
    assert_int_equal(gh_json_parse_object("{\"a\":1}", 6, &obj), GH_ERR_JSON_SYNTAX);
}

static void test_string_member(void **state)
{
    json_t *obj;
    const char *v;
    size_t len;
    (void)state;
    assert_int_equal(gh_json_parse_object("{\"s\":\"abc\",\"e\":\"\",\"n\":5}", 24, &obj), GH_OK);
    assert_int_equal(gh_json_string_member(obj, "s", &v, &len), GH_OK);
    assert_int_equal(len, 3);
    assert_string_equal(v, "abc");
    assert_int_equal(gh_json_string_member(obj, "e", &v, &len), GH_ERR_MISSING_CLAIM);
    assert_int_equal(gh_json_string_member(obj, "n", &v, &len), GH_ERR_CLAIM_TYPE);
    assert_int_equal(gh_json_string_member(obj, "x", &v, &len), GH_ERR_MISSING_CLAIM);
    assert_null(v);
    json_decref(obj);
}

static void test_error_table(void **state)
{
    (void)state;
    assert_string_equal(gh_error_reason(GH_ERR_JSON_DEPTH), "malformed");
    assert_string_equal(gh_error_reason(GH_ERR_EXPIRED), "expired");
    assert_string_equal(gh_error_reason(GH_OK), "ok");
    assert_string_equal(gh_error_name(GH_ERR_BAD_SIGNATURE), "BAD_SIGNATURE");
    assert_string_equal(gh_error_reason(12345), "internal");
    for (int code = GH_ERR_FIRST_ + 1; code < GH_ERR_LAST_; code++) {
        assert_true(strlen(gh_error_message(code)) > 10);
        assert_true(strlen(gh_error_reason(code)) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_limit),   cmocka_unit_test(test_depth_scan_is_bounded),
        cmocka_unit_test(test_duplicates),    cmocka_unit_test(test_syntax_and_trailing_bytes),
        cmocka_unit_test(test_not_object),    cmocka_unit_test(test_explicit_length),
        cmocka_unit_test(test_string_member), cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
