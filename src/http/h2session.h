// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/2 server session without its socket: bytes in (gh_h2_session_feed), bytes out
 * (gh_h2_session_pull), the streams and their requests in between. h2conn.c ties it to a gh_sock,
 * a timer and a deferred call; the fuzz target drives it directly. Split so that everything a
 * client's bytes can reach is reachable without a network, and so that neither file passes the
 * house's size.
 */
#ifndef GH_HTTP_H2SESSION_H
#define GH_HTTP_H2SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/conn.h"

struct gh_h2;

/* Called (inside the session's own calls or the handler's) when the session has work for
 * gh_h2_session_run / gh_h2_session_pull: the owner schedules them for later, never recursing. */
typedef void (*gh_h2_kick_cb)(struct gh_h2 *h, void *data);

/* A session for `c` (whose worker gives the limits, metrics and handler), with its SETTINGS
 * queued. NULL when out of memory. */
struct gh_h2 *gh_h2_session_new(struct gh_http_conn *c, gh_h2_kick_cb kick, void *kick_data);

/* Ends every request that is left (on_done with completed 0) and frees. NULL is fine. */
void gh_h2_session_free(struct gh_h2 *h);

/* Reads `len` client bytes, then hands the requests whose heads completed in them (and whose
 * streams are still open) to the handler. 0, or -1 when the connection must close at once. */
int gh_h2_session_feed(struct gh_h2 *h, const uint8_t *in, size_t len);

/* Work owed outside of nghttp2's calls: body bytes to deliver, answers that drained. */
void gh_h2_session_run(struct gh_h2 *h);

/* The next bytes to send, valid until the next call: their length, 0 when there is nothing now,
 * -1 when the connection must close at once. */
ssize_t gh_h2_session_pull(struct gh_h2 *h, const uint8_t **out);

/* 1 when the connection has nothing more to do once its output is written (GOAWAY sent and no
 * stream left, or the peer is done). */
int gh_h2_session_finished(const struct gh_h2 *h);

/* Open streams (for the idle timeout). */
unsigned gh_h2_session_streams(const struct gh_h2 *h);

/* Handles the head and body timeouts due at `now_ms`; returns the next deadline (0: none), or
 * UINT64_MAX when a head timed out and the connection must end (GOAWAY queued). */
uint64_t gh_h2_session_timeouts(struct gh_h2 *h, uint64_t now_ms);

/* GOAWAY NO_ERROR with the last stream seen: take no new stream, finish the others. */
void gh_h2_session_drain(struct gh_h2 *h);

/* GOAWAY with `error_code` (nghttp2's), then nothing more is read. */
void gh_h2_session_terminate(struct gh_h2 *h, uint32_t error_code);

/* The request side of gh_http_proto (h2conn.c's gh_h2_proto adds drain and cut). */
int gh_h2_respond_start(struct gh_http_request *req, int status,
                        const struct gh_http_header *headers, size_t n, int64_t content_length);
int gh_h2_respond_write(struct gh_http_request *req, const void *data, size_t len, int last);
void gh_h2_respond_abort(struct gh_http_request *req);
void gh_h2_body_start(struct gh_http_request *req);
void gh_h2_body_pause(struct gh_http_request *req);
void gh_h2_body_resume(struct gh_http_request *req);

#endif
