// SPDX-License-Identifier: Apache-2.0
/*
 * One line per event, written with a single fwrite under the stream lock so lines from several
 * threads never interleave.
 */
#include "common/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/error.h"
#include "common/utf8.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static int min_level = GH_LOG_INFO;
static FILE *output;

void gh_log_set_output(FILE *stream)
{
    output = stream;
}

int gh_log_set_level(const char *name)
{
    for (int i = GH_LOG_DEBUG; i <= GH_LOG_ERROR; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            min_level = i;
            return GH_OK;
        }
    }
    return GH_ERR_INVALID_ARG;
}

int gh_log_enabled(enum gh_log_level level)
{
    return (int)level >= min_level;
}

json_t *gh_log_text(const char *s)
{
    json_t *v = s != NULL ? json_string(s) : json_null();

    if (v == NULL) {
        char *clean = gh_utf8_scrub(s, strlen(s), SIZE_MAX);
        v = json_string(clean != NULL ? clean : "(out of memory)");
        free(clean);
    }
    return v;
}

void gh_log(enum gh_log_level level, const char *msg, json_t *fields)
{
    struct timeval tv;
    struct tm tm;
    char stamp[40];

    if ((int)level < min_level) {
        json_decref(fields);
        return;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    json_t *line =
        json_pack("{s:s, s:s, s:s}", "time", stamp, "level", level_names[level], "msg", msg);
    if (fields != NULL)
        json_object_update(line, fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        size_t len = strlen(text);
        text[len] = '\n'; /* json_dumps's NUL becomes the line end */
        FILE *out = output != NULL ? output : stdout;
        flockfile(out);
        fwrite(text, 1, len + 1, out);
        fflush(out);
        funlockfile(out);
        free(text);
    }
    json_decref(line);
    json_decref(fields);
}
