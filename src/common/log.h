// SPDX-License-Identifier: Apache-2.0
/*
 * Logs as one JSON object per line on standard output (SPEC §5), so that log pipelines need no
 * parser of ours. Callers pass their fields as a JSON object; nothing secret may ever be in it.
 */
#ifndef GH_COMMON_LOG_H
#define GH_COMMON_LOG_H

#include <jansson.h>
#include <stdio.h>

enum gh_log_level { GH_LOG_DEBUG, GH_LOG_INFO, GH_LOG_WARN, GH_LOG_ERROR };

/* A JSON string of `s` for a log field that is always there: bytes that are not UTF-8 (a path,
 * a URL or a header from outside) become U+FFFD, where json_string() would give NULL and
 * json_pack() would fail, dropping the field or every field of the line; NULL gives null. */
json_t *gh_log_text(const char *s);

/* The least level written (GH_LOG_INFO by default); from "debug", "info", "warn", "error". */
int gh_log_set_level(const char *name);

/* Where lines go: stdout by default (SPEC §5); a command whose stdout is its answer (`token
 * verify`) sends them to stderr. Set it before any thread logs. */
void gh_log_set_output(FILE *stream);

/* 1 when lines of `level` are written: callers skip building the fields of lines nobody reads. */
int gh_log_enabled(enum gh_log_level level);

/* Writes {"time":..., "level":..., "msg": msg, ...fields} and a newline; takes `fields` (may be
 * NULL). */
void gh_log(enum gh_log_level level, const char *msg, json_t *fields);

#endif
