// SPDX-License-Identifier: Apache-2.0
/*
 * What the subcommands share: one table of flags per command that drives both the parser and the
 * help text, so that a flag cannot work without being described (or be described without
 * working), where the data directory is, and reading a file or standard input with a size limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Where a flag's description starts in the help, so that the descriptions line up. */
#define HELP_COLUMN 26
#define HELP_WIDTH  100

int gh_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int gh_cli_flag_match(const struct gh_cli_flag *flags, size_t n, int argc, char **argv, int *i,
                      const struct gh_cli_flag **flag, const char **value)
{
    const char *arg = argv[*i];

    *flag = NULL;
    *value = NULL;
    for (size_t f = 0; f < n; f++) {
        size_t len = strlen(flags[f].name);
        if (strncmp(arg, flags[f].name, len) != 0)
            continue;
        if (flags[f].metavar == NULL) { /* a switch: "--name" alone */
            if (arg[len] != '\0')
                continue;
            *flag = &flags[f];
            *value = "1";
            return 1;
        }
        if (arg[len] != '\0' && arg[len] != '=')
            continue;
        *flag = &flags[f];
        if (arg[len] == '=')
            *value = arg + len + 1;
        else if (*i + 1 < argc)
            *value = argv[++*i];
        else
            return -1;
        return 1;
    }
    return 0;
}

const char *gh_cli_flag_env(const struct gh_cli_flag *flag)
{
    const char *v = flag->env != NULL ? getenv(flag->env) : NULL;

    if (v == NULL || *v == '\0')
        return NULL; /* set but empty counts as unset, as shells make it easy to do */
    if (flag->metavar == NULL)
        return strcmp(v, "1") == 0 ? "1" : NULL;
    return v;
}

/* `text` from column `col` on, its words wrapped at HELP_WIDTH onto lines indented to
 * HELP_COLUMN. */
static void print_wrapped(const char *text, int col, FILE *out)
{
    for (const char *p = text; *p != '\0';) {
        int word = (int)strcspn(p, " ");
        if (col > HELP_COLUMN && col + 1 + word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_COLUMN, "");
            col = HELP_COLUMN;
        } else if (col > HELP_COLUMN) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", word, p);
        col += word;
        p += word + strspn(p + word, " ");
    }
    fputc('\n', out);
}

void gh_cli_flags_help(const struct gh_cli_flag *flags, size_t n, FILE *out)
{
    for (size_t f = 0; f < n; f++) {
        const struct gh_cli_flag *g = &flags[f];
        char text[1024];
        int width =
            fprintf(out, "  %s%s%s", g->name, g->metavar ? " " : "", g->metavar ? g->metavar : "");
        int pad = width < HELP_COLUMN ? HELP_COLUMN - width : 1;

        snprintf(text, sizeof text, "%s%s%s%s%s%s%s%s", g->help, g->env || g->fallback ? " (" : "",
                 g->env ? "env " : "", g->env ? g->env : "",
                 g->env && g->metavar == NULL ? "=1" : "", g->env && g->fallback ? "; " : "",
                 g->fallback ? "default " : "", g->fallback ? g->fallback : "");
        if (g->env || g->fallback)
            strncat(text, ")", sizeof text - strlen(text) - 1);
        fprintf(out, "%*s", pad, "");
        print_wrapped(text, width + pad, out);
    }
}

int gh_cli_data_dir(const char *data_dir, const char *db, char *out, size_t cap)
{
    const char *path, *slash;
    int n;

    if (data_dir != NULL && *data_dir != '\0')
        n = snprintf(out, cap, "%s", data_dir);
    else if (db == NULL || *db == '\0' || strncmp(db, "sqlite:", 7) != 0 ||
             strcmp(db, "sqlite::memory:") == 0)
        n = snprintf(out, cap, "%s", GH_CLI_DATA_DIR_DEFAULT);
    else {
        path = db + 7;
        if (strncmp(path, "//", 2) == 0) /* sqlite:///var/lib/gatehouse/gh.db */
            path += 2;
        slash = strrchr(path, '/');
        n = slash == NULL   ? snprintf(out, cap, ".")
            : slash == path ? snprintf(out, cap, "/")
                            : snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

int gh_cli_read_file(const char *path, size_t max, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t got;
    int rc = 0;

    *data = NULL;
    *len = 0;
    if (f == NULL)
        return -1;
    buf = malloc(max + 2);
    if (buf == NULL) {
        if (f != stdin)
            fclose(f);
        errno = ENOMEM;
        return -1;
    }
    got = fread(buf, 1, max + 1, f);
    if (ferror(f))
        rc = -1;
    else if (got > max)
        rc = -2;
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}
