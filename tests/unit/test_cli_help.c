// SPDX-License-Identifier: Apache-2.0
/*
 * Every command's help against its parser's table of flags: each flag the parser takes is in the
 * help on a line of its own with a description, each environment twin and default is named, and
 * every command prints its help for --help and -h with exit 0. The tables come from the CLI's own
 * sources (gatehouse_cli), the help from the real binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli/cli.h"
#include "cli/cmd_admin.h"

#ifndef GH_BINARY
#error "GH_BINARY must name the gatehouse binary"
#endif

static const char *const admin_commands[] = {"collections", "endpoints", "clients",
                                             "profiles",    "keys",      "policies",
                                             "providers",   "explain",   "config"};

/* Runs `gatehouse ARGS` with the gatehouse environment cleared; returns the exit status and
 * stdout (malloc'd, the caller frees it). */
static int run(const char *args, char **out)
{
    char cmd[1024];
    size_t cap = 1 << 16, len = 0;
    FILE *p;
    int status;

    snprintf(cmd, sizeof cmd,
             "env $(env | sed -n 's/^\\(GATEHOUSE_[A-Z_]*\\)=.*/-u \\1/p') %s %s "
             "2>/dev/null",
             GH_BINARY, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    *out = malloc(cap);
    assert_non_null(*out);
    for (size_t n; (n = fread(*out + len, 1, cap - len - 1, p)) > 0;)
        len += n;
    (*out)[len] = '\0';
    status = pclose(p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The line of `text` that starts (after a few spaces: not a wrapped description) with `flag` as a
 * whole word, or NULL. */
static const char *flag_line(const char *text, const char *flag)
{
    size_t len = strlen(flag);

    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *p = line + strspn(line, " ");
        if (p - line <= 6 && strncmp(p, flag, len) == 0 &&
            (p[len] == ' ' || p[len] == '\n' || p[len] == '\0'))
            return p;
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return NULL;
}

/* 1 when the line of `flag` has a description after the flag and `metavar` (NULL: none; "*": any
 * one word, for tables that do not name it). */
static int described(const char *text, const char *flag, const char *metavar)
{
    const char *p = flag_line(text, flag);
    size_t n;

    if (p == NULL)
        return 0;
    p += strlen(flag);
    if (metavar != NULL && strcmp(metavar, "*") == 0) {
        if (p[0] != ' ' || p[1] == ' ')
            return 0;
        p += 1 + strcspn(p + 1, " \n");
    } else if (metavar != NULL) {
        n = strlen(metavar);
        if (p[0] != ' ' || strncmp(p + 1, metavar, n) != 0)
            return 0;
        p += 1 + n;
    }
    n = strcspn(p, "\n");
    while (n > 0 && *p == ' ')
        p++, n--;
    return n >= 3; /* a few words, not a stray character */
}

/* `text` with each run of spaces and line ends made one space: the help wraps its lines. */
static char *squeezed(const char *text)
{
    char *copy = strdup(text), *w = copy;

    assert_non_null(copy);
    for (const char *p = text; *p != '\0'; p++)
        if (!(*p == ' ' || *p == '\n') || (w > copy && w[-1] != ' '))
            *w++ = *p == '\n' ? ' ' : *p;
    *w = '\0';
    return copy;
}

static void check_table(const char *command, const struct gh_cli_flag *flags, size_t n)
{
    char args[128], *text, *flat, needle[256];

    snprintf(args, sizeof args, "help %s", command);
    assert_int_equal(run(args, &text), 0);
    flat = squeezed(text);
    for (size_t i = 0; i < n; i++) {
        if (!described(text, flags[i].name, flags[i].metavar))
            fail_msg("`gatehouse help %s` does not describe %s %s on a line of its own:\n%s",
                     command, flags[i].name, flags[i].metavar ? flags[i].metavar : "", text);
        if (flags[i].env != NULL && strstr(text, flags[i].env) == NULL)
            fail_msg("`gatehouse help %s` does not name %s (the env twin of %s)", command,
                     flags[i].env, flags[i].name);
        snprintf(needle, sizeof needle, "default %s", flags[i].fallback ? flags[i].fallback : "");
        if (flags[i].fallback != NULL && *flags[i].fallback && strstr(flat, needle) == NULL)
            fail_msg("`gatehouse help %s` does not give %s's default %s", command, flags[i].name,
                     flags[i].fallback);
    }
    free(flat);
    free(text);
}

static void test_serve_help_matches_its_flags(void **state)
{
    size_t n;
    const struct gh_cli_flag *flags = gh_cli_serve_flags(&n);
    (void)state;
    assert_true(n >= 11);
    check_table("serve", flags, n);
}

static void test_token_verify_help_matches_its_flags(void **state)
{
    size_t n;
    const struct gh_cli_flag *flags = gh_cli_token_verify_flags(&n);
    (void)state;
    assert_true(n >= 10);
    check_table("token", flags, n);
}

struct admin_check {
    const char *command;
    char *text;
    size_t seen;
};

static void check_admin_flag(const char *flag, int takes_value, void *arg)
{
    struct admin_check *c = arg;
    const char *metavar = takes_value ? "*" : NULL;

    c->seen++;
    if (!described(c->text, flag, metavar))
        fail_msg("`gatehouse help %s` does not describe %s %s on a line of its own:\n%s",
                 c->command, flag, metavar ? metavar : "", c->text);
}

static void test_admin_helps_match_their_flags(void **state)
{
    char args[128];
    (void)state;
    for (size_t i = 0; i < sizeof admin_commands / sizeof admin_commands[0]; i++) {
        struct admin_check c = {admin_commands[i], NULL, 0};
        snprintf(args, sizeof args, "help %s", admin_commands[i]);
        assert_int_equal(run(args, &c.text), 0);
        assert_int_equal(gh_cli_admin_flags(admin_commands[i], check_admin_flag, &c), 0);
        assert_true(c.seen >= 4); /* the options every admin command takes, at least */
        free(c.text);
    }
    assert_int_equal(gh_cli_admin_flags("nonsense", check_admin_flag, NULL), -1);
}

/* `CMD --help` and `CMD -h` exit 0 and print what `help TOPIC` prints. */
static void expect_same_help(const char *command, const char *topic)
{
    static const char *const asks[] = {"--help", "-h"};
    char args[128], *expected, *got;

    snprintf(args, sizeof args, "help %s", topic);
    assert_int_equal(run(args, &expected), 0);
    assert_true(strlen(expected) > 100);
    for (size_t i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "%s %s", command, asks[i]);
        if (run(args, &got) != 0 || strcmp(got, expected) != 0)
            fail_msg("`gatehouse %s` does not print `gatehouse help %s` with exit 0:\n%s", args,
                     topic, got);
        free(got);
    }
    free(expected);
}

static void test_every_command_takes_help_and_h(void **state)
{
    char command[64];
    (void)state;
    expect_same_help("serve", "serve");
    expect_same_help("serve --listen 127.0.0.1:0", "serve");
    expect_same_help("token", "token");
    expect_same_help("token verify", "token");
    expect_same_help("token verify --jwks x.json", "token");
    expect_same_help("token decode", "token");
    expect_same_help("version", "help");
    expect_same_help("", "help");
    for (size_t i = 0; i < sizeof admin_commands / sizeof admin_commands[0]; i++) {
        expect_same_help(admin_commands[i], admin_commands[i]);
        snprintf(command, sizeof command, "%s list", admin_commands[i]);
        expect_same_help(command, admin_commands[i]);
    }
}

/* What the issue found: texts of features that have long been there said "soon" and "later". */
static void test_help_texts_are_current(void **state)
{
    static const char *const topics[] = {"", "serve", "token"};
    char args[64], *text;
    (void)state;
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        snprintf(args, sizeof args, "help %s", topics[i]);
        assert_int_equal(run(args, &text), 0);
        if (strstr(text, "soon") != NULL || strstr(text, "later") != NULL)
            fail_msg("`gatehouse %s` promises for later what is there:\n%s", args, text);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_help_matches_its_flags),
        cmocka_unit_test(test_token_verify_help_matches_its_flags),
        cmocka_unit_test(test_admin_helps_match_their_flags),
        cmocka_unit_test(test_every_command_takes_help_and_h),
        cmocka_unit_test(test_help_texts_are_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
