// SPDX-License-Identifier: Apache-2.0
/* Finding the access profile key (SPEC §2): list parsing, first non-empty claim, no fall-through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/error.h"
#include "jose/keyclaims.h"

static void test_parse_default_and_workato_lists(void **state)
{
    struct gh_key_claims list;
    (void)state;
    assert_int_equal(gh_key_claims_parse(GH_KEY_CLAIMS_DEFAULT, &list), GH_OK);
    assert_int_equal(list.count, 4);
    assert_string_equal(list.items[0].name, "https://gatehouse.dev/key");
    assert_false(list.items[0].in_header);
    assert_string_equal(list.items[3].name, "kid");
    assert_true(list.items[3].in_header);
    gh_key_claims_clear(&list);
    assert_int_equal(
        gh_key_claims_parse("https://www.workato.com/sub,workato_sub,sub,header:kid", &list),
        GH_OK);
    assert_int_equal(list.count, 4);
    assert_string_equal(list.items[0].name,
                        "https://www.workato.com/sub"); /* a ':' is no header prefix */
    assert_false(list.items[0].in_header);
    gh_key_claims_clear(&list);
}

static void test_parse_rejects_bad_lists(void **state)
{
    struct gh_key_claims list;
    (void)state;
    assert_int_equal(gh_key_claims_parse("", &list), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_key_claims_parse("a,,b", &list), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_key_claims_parse("a,", &list), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_key_claims_parse("header:", &list), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_key_claims_parse("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", &list),
                     GH_ERR_INVALID_ARG);
    assert_int_equal(list.count, 0);
}

static int find(const char *header, const char *payload, const char **value, size_t *index)
{
    struct gh_key_claims list;
    json_t *h = json_loads(header, 0, NULL), *p = json_loads(payload, 0, NULL);
    size_t len;
    assert_int_equal(gh_key_claims_parse(GH_KEY_CLAIMS_DEFAULT, &list), GH_OK);
    int rc = gh_key_claims_find(&list, h, p, value, &len, index);
    static char copy[256];
    if (rc == GH_OK) {
        assert_int_equal(len, strlen(*value));
        strcpy(copy, *value); /* the value is borrowed from p, freed below */
        *value = copy;
    }
    gh_key_claims_clear(&list);
    json_decref(h);
    json_decref(p);
    return rc;
}

static void test_first_non_empty_wins(void **state)
{
    const char *v;
    size_t i;
    (void)state;
    assert_int_equal(find("{\"kid\":\"k\"}",
                          "{\"https://gatehouse.dev/key\":\"gk_1\",\"gatehouse_key\":\"gk_2\","
                          "\"sub\":\"s\"}",
                          &v, &i),
                     GH_OK);
    assert_string_equal(v, "gk_1");
    assert_int_equal(i, 0);
    assert_int_equal(find("{\"kid\":\"k\"}", "{\"gatehouse_key\":\"gk_2\",\"sub\":\"s\"}", &v, &i),
                     GH_OK);
    assert_string_equal(v, "gk_2");
    assert_int_equal(find("{\"kid\":\"k\"}", "{\"sub\":\"s\"}", &v, &i), GH_OK);
    assert_string_equal(v, "s");
    assert_int_equal(find("{\"kid\":\"k\"}", "{\"iss\":\"x\"}", &v, &i), GH_OK);
    assert_string_equal(v, "k");
    assert_int_equal(i, 3);
}

static void test_empty_and_non_string_claims_are_skipped(void **state)
{
    const char *v;
    size_t i;
    (void)state;
    assert_int_equal(find("{}",
                          "{\"https://gatehouse.dev/key\":\"\",\"gatehouse_key\":5,\"sub\":\"s\"}",
                          &v, &i),
                     GH_OK);
    assert_string_equal(v, "s");
    assert_int_equal(i, 2);
    /* a payload kid is not the header kid */
    assert_int_equal(find("{}", "{\"kid\":\"k\"}", &v, &i), GH_ERR_NO_PROFILE_KEY);
    assert_string_equal(gh_error_reason(GH_ERR_NO_PROFILE_KEY), "unknown_profile_key");
}

static void test_no_fall_through(void **state)
{
    /* The candidate is the first present claim, even when a later one would name a real profile:
     * a token cannot pick its profile by carrying several claims. The caller looks only this up. */
    const char *v;
    size_t i;
    (void)state;
    assert_int_equal(find("{\"kid\":\"gk_real\"}", "{\"sub\":\"not-a-key\"}", &v, &i), GH_OK);
    assert_string_equal(v, "not-a-key");
    assert_int_equal(i, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_default_and_workato_lists),
        cmocka_unit_test(test_parse_rejects_bad_lists),
        cmocka_unit_test(test_first_non_empty_wins),
        cmocka_unit_test(test_empty_and_non_string_claims_are_skipped),
        cmocka_unit_test(test_no_fall_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
