// SPDX-License-Identifier: Apache-2.0
/*
 * The gateway's access log (SPEC §5: one JSON line per request on stdout) without ever letting a
 * worker wait on stdout: workers append finished lines to a bounded buffer under a short lock,
 * and a writer thread of its own hands them to stdout. When stdout is stuck and the buffer full,
 * lines are dropped and counted rather than stalling the data plane.
 */
#ifndef GH_GATEWAY_ACCESSLOG_H
#define GH_GATEWAY_ACCESSLOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct gh_accesslog;

/* Starts the writer thread on `out` (borrowed, e.g. stdout); `dropped` (may be NULL) counts lost
 * lines. GH_ERR_NOMEM or GH_ERR_IO when it cannot start. */
int gh_accesslog_start(FILE *out, size_t max_buffered, atomic_uint_fast64_t *dropped,
                       struct gh_accesslog **log);

/* Queues one line (with its newline). Never blocks on I/O. */
void gh_accesslog_write(struct gh_accesslog *log, const char *line, size_t len);

/* Writes what is queued, stops the thread and frees everything. NULL is fine. */
void gh_accesslog_stop(struct gh_accesslog *log);

/* A JSON line under construction in a caller's fixed buffer: a field that does not fit is left
 * out whole, never overrun, so the line is always one JSON object. */
struct gh_line {
    char *buf;
    size_t len, cap;
    int full; /* the field being written did not fit */
};

void gh_line_init(struct gh_line *l, char *buf, size_t cap);
/* ,"key":"value" (value escaped, at most `max` of its bytes; NULL value writes null) */
void gh_line_str(struct gh_line *l, const char *key, const char *value, size_t len, size_t max);
/* ,"key":number */
void gh_line_int(struct gh_line *l, const char *key, int64_t value);
/* ,"key":null */
void gh_line_null(struct gh_line *l, const char *key);
/* Closes the object with "}\n"; 0 when the buffer was too small for even that. */
int gh_line_end(struct gh_line *l);

#endif
