// SPDX-License-Identifier: Apache-2.0
/*
 * Request ids, one rule for the gateway and the admin API: the caller's X-Request-Id when it is
 * sane, so a client's report and its trace join up, else 128 random bits in hex. Either way the
 * text is safe in a header, a JSON string and a log line without escaping.
 */
#ifndef GH_COMMON_REQUESTID_H
#define GH_COMMON_REQUESTID_H

#include <stddef.h>

#define GH_REQUEST_ID_MAX 128 /* a caller's X-Request-Id longer than this is replaced */

/* 1 when `s` (len bytes, not NUL-terminated) may be kept as a request id: 1 to GH_REQUEST_ID_MAX
 * characters of [A-Za-z0-9._-]. */
int gh_request_id_is_sane(const char *s, size_t len);

/*
 * Writes the request's id into `out` (NUL-terminated): `sent` (may be NULL, `sent_len` bytes) when
 * sane, else a new random one. `salt` (any address unique to the request) only tells ids apart in
 * the never-expected case that the random generator fails.
 */
void gh_request_id_make(const char *sent, size_t sent_len, const void *salt,
                        char out[GH_REQUEST_ID_MAX + 1]);

#endif
