// SPDX-License-Identifier: Apache-2.0
/*
 * What the provider manager logs (issue 10, item 6): an operator could see an IdP's trouble only
 * through metrics. Standard output (where gh_log writes its JSON lines) is captured into a file
 * while a provider goes through its life against the mock IdP with an injected clock: first keys,
 * a rotation (a kid added, then one removed), a failed refresh, stale, unavailable, fresh again;
 * and at debug level one line per HTTP fetch. Each line is parsed and its fields checked, and no
 * line may carry key material.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "mockidp.h"
#include "oidc/provider.h"
#include "oidckit.h"
#include "testkit.h"

#define T0 1700000000000LL

/* The kit, plus the file that standard output goes to while a test runs. */
struct fixture {
    struct gh_oidckit kit;
    char log_path[64];
    int saved_stdout;
};

static void serve_keys(struct fixture *f, const struct gh_testkey *a, const struct gh_testkey *b)
{
    gh_oidckit_serve_keys(&f->kit, a, b, "Cache-Control: max-age=120\r\n");
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (gh_oidckit_init(&f->kit, T0, GH_ALG_ES256, GH_ALG_ES256, "Cache-Control: max-age=120\r\n"))
        return -1;
    f->kit.options.max_stale_ms = 3600 * 1000;
    /* gh_log writes to stdout: send it to a file for the test's life */
    snprintf(f->log_path, sizeof f->log_path, "/tmp/gh-events-XXXXXX");
    int fd = mkstemp(f->log_path);
    fflush(stdout);
    f->saved_stdout = dup(STDOUT_FILENO);
    if (fd < 0 || f->saved_stdout < 0 || dup2(fd, STDOUT_FILENO) < 0)
        return -1;
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    gh_oidckit_clear(&f->kit); /* the manager's last lines still go to the file */
    fflush(stdout);
    dup2(f->saved_stdout, STDOUT_FILENO);
    close(f->saved_stdout);
    unlink(f->log_path);
    gh_log_set_level("info");
    free(f);
    return 0;
}

/* The JSON log lines written so far with this msg (a new array reference). */
static json_t *lines_with(struct fixture *f, const char *msg)
{
    size_t len;
    fflush(stdout);
    char *text = gh_test_read_file(f->log_path, &len);
    json_t *found = json_array();
    for (char *line = text, *end; line != NULL && *line != '\0'; line = end + 1) {
        end = strchr(line, '\n');
        if (end == NULL)
            break;
        *end = '\0';
        json_t *j = json_loads(line, 0, NULL);
        const char *m = json_string_value(json_object_get(j, "msg"));
        if (m != NULL && strcmp(m, msg) == 0)
            json_array_append(found, j);
        json_decref(j);
    }
    free(text);
    return found;
}

/* Waits (real time, up to 10 s) for at least `n` lines with `msg`; returns the n-th. */
static json_t *wait_line(struct fixture *f, const char *msg, size_t n)
{
    for (int i = 0; i < 1000; i++) {
        json_t *all = lines_with(f, msg);
        if (json_array_size(all) >= n) {
            json_t *last = json_incref(json_array_get(all, n - 1));
            json_decref(all);
            return last;
        }
        json_decref(all);
        usleep(10000);
    }
    fail_msg("no log line \"%s\" (#%zu) within 10 s", msg, n);
    return NULL;
}

static void expect_kids(json_t *line, const char *member, const char *kid)
{
    json_t *list = json_object_get(line, member);
    assert_true(json_is_array(list));
    if (kid == NULL) {
        assert_int_equal(json_array_size(list), 0);
        return;
    }
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_array_get(list, 0)), kid);
}

static void expect_source(struct fixture *f, json_t *line, const char *level)
{
    assert_string_equal(json_string_value(json_object_get(line, "level")), level);
    assert_string_equal(json_string_value(json_object_get(line, "url")), f->kit.discovery_url);
    assert_string_equal(json_string_value(json_object_get(line, "provider")),
                        gh_provider_id(f->kit.p));
}

static void refresh_and_wait(struct fixture *f, uint64_t completions_before)
{
    struct gh_provider_counters c;
    gh_provider_refresh(f->kit.p);
    for (int i = 0; i < 1000; i++) {
        gh_provider_counters(f->kit.p, &c);
        if (c.jwks_fetches + c.failures > completions_before)
            return;
        usleep(10000);
    }
}

static void test_rotation_failure_and_staleness_are_logged(void **state)
{
    struct fixture *f = *state;
    json_t *line;

    assert_int_equal(gh_oidc_manager_new(&f->kit.options, &f->kit.m), GH_OK);
    assert_int_equal(
        gh_oidc_provider_get(f->kit.m, GH_PROVIDER_DISCOVERY, f->kit.discovery_url, &f->kit.p),
        GH_OK);
    assert_int_equal(gh_provider_wait_ready(f->kit.p, 5000), GH_OK);
    line = wait_line(f, "identity provider keys loaded", 1);
    expect_source(f, line, "info");
    expect_kids(line, "added", "k1");
    json_decref(line);

    serve_keys(f, &f->kit.k1, &f->kit.k2); /* the IdP publishes k2 */
    refresh_and_wait(f, 1);
    line = wait_line(f, "identity provider keys changed", 1);
    expect_source(f, line, "info");
    expect_kids(line, "added", "k2");
    expect_kids(line, "removed", NULL);
    json_decref(line);
    serve_keys(f, &f->kit.k2, NULL); /* and drops k1 */
    refresh_and_wait(f, 2);
    line = wait_line(f, "identity provider keys changed", 2);
    expect_kids(line, "added", NULL);
    expect_kids(line, "removed", "k1");
    json_decref(line);

    gh_mockidp_set_json(f->kit.idp, "/.well-known/openid-configuration", 503, "{}", NULL);
    refresh_and_wait(f, 3);
    line = wait_line(f, "identity provider fetch failed", 1);
    expect_source(f, line, "warn");
    assert_non_null(strstr(json_string_value(json_object_get(line, "error")), "HTTP 503"));
    assert_int_equal(json_integer_value(json_object_get(line, "failures_in_row")), 1);
    json_decref(line);

    /* the keys (max-age=120) run out, then max-stale (1 h) passes */
    gh_oidckit_clock_set(T0 + 121000);
    gh_oidc_manager_wake(f->kit.m);
    line = wait_line(f, "identity provider keys stale: serving the last good keys", 1);
    expect_source(f, line, "warn");
    assert_non_null(strstr(json_string_value(json_object_get(line, "last_error")), "HTTP 503"));
    json_decref(line);
    gh_oidckit_clock_set(T0 + 121000 + 3600 * 1000);
    gh_oidc_manager_wake(f->kit.m);
    line = wait_line(f,
                     "identity provider keys unavailable: past --max-stale, its tokens get "
                     "keys_unavailable",
                     1);
    expect_source(f, line, "error");
    json_decref(line);
    /* the IdP is back */
    gh_mockidp_serve_discovery(f->kit.idp, NULL, "/jwks");
    gh_provider_refresh(f->kit.p);
    line = wait_line(f, "identity provider keys fresh again", 1);
    expect_source(f, line, "info");
    json_decref(line);
    /* each state change was logged once */
    json_t *stale = lines_with(f, "identity provider keys stale: serving the last good keys");
    assert_int_equal(json_array_size(stale), 1);
    json_decref(stale);
    /* at info level, no per-fetch lines */
    json_t *fetches = lines_with(f, "identity provider fetch");
    assert_int_equal(json_array_size(fetches), 0);
    json_decref(fetches);
}

static void test_debug_logs_each_fetch_and_never_key_material(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(gh_log_set_level("debug"), GH_OK);
    assert_int_equal(gh_oidc_manager_new(&f->kit.options, &f->kit.m), GH_OK);
    assert_int_equal(
        gh_oidc_provider_get(f->kit.m, GH_PROVIDER_DISCOVERY, f->kit.discovery_url, &f->kit.p),
        GH_OK);
    assert_int_equal(gh_provider_wait_ready(f->kit.p, 5000), GH_OK);
    json_t *discovery = wait_line(f, "identity provider fetch", 1);
    json_t *jwks = wait_line(f, "identity provider fetch", 2);
    expect_source(f, jwks, "debug");
    char jwks_url[300];
    snprintf(jwks_url, sizeof jwks_url, "%s/jwks", gh_mockidp_base_url(f->kit.idp));
    assert_string_equal(json_string_value(json_object_get(discovery, "fetch_url")),
                        f->kit.discovery_url);
    assert_string_equal(json_string_value(json_object_get(jwks, "fetch_url")), jwks_url);
    assert_int_equal(json_integer_value(json_object_get(jwks, "status")), 200);
    assert_true(json_integer_value(json_object_get(jwks, "bytes")) > 100);
    assert_true(json_is_integer(json_object_get(jwks, "duration_ms")));
    assert_string_equal(json_string_value(json_object_get(jwks, "result")), "ok");
    json_decref(discovery);
    json_decref(jwks);
    /* the public key's coordinates appear nowhere in the log */
    char *jwk = gh_testkey_public_jwk(&f->kit.k1);
    json_t *parsed = json_loads(jwk, 0, NULL);
    const char *x = json_string_value(json_object_get(parsed, "x"));
    size_t len;
    fflush(stdout);
    char *text = gh_test_read_file(f->log_path, &len);
    assert_non_null(x);
    assert_null(strstr(text, x));
    assert_null(strstr(text, "\"kty\""));
    free(text);
    json_decref(parsed);
    free(jwk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_failure_and_staleness_are_logged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_debug_logs_each_fetch_and_never_key_material, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
