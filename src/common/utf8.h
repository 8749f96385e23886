// SPDX-License-Identifier: Apache-2.0
/*
 * UTF-8 as strict readers see it (RFC 3629: a fatal TextDecoder, jansson): client bytes must pass
 * this before they go into a JSON log line or the audit log, or the reader refuses the line.
 */
#ifndef GH_COMMON_UTF8_H
#define GH_COMMON_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes, n > 0), 0 when it is none. */
size_t gh_utf8_sequence(const unsigned char *s, size_t n);

/* A malloc'd NUL-terminated copy of at most `max` bytes of s (a sequence cut there counts as
 * invalid) in which every byte that is not valid UTF-8, and NUL, is U+FFFD; NULL when out of
 * memory.
 */
char *gh_utf8_scrub(const char *s, size_t len, size_t max);

#endif
