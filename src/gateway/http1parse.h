// SPDX-License-Identifier: Apache-2.0
/*
 * The two pieces of HTTP/1.1 (RFC 9112) the gateway reads from upstreams: a response head and a
 * chunked body. Pure functions over bytes, no sockets, so they are tested and fuzzed alone.
 * Both are strict: an upstream answer that bends the grammar is refused (502) rather than
 * guessed at, because a guess is how response splitting and smuggling start.
 */
#ifndef GH_GATEWAY_HTTP1PARSE_H
#define GH_GATEWAY_HTTP1PARSE_H

#include <stddef.h>
#include <stdint.h>

#define GW_HTTP1_MAX_HEADERS 100

struct gw_http1_header {
    const char *name, *value; /* into the parsed buffer; value without surrounding spaces */
    size_t name_len, value_len;
};

struct gw_http1_response {
    int minor_version; /* HTTP/1.x */
    int status;        /* 100..999 */
    const char *reason;
    size_t reason_len;
    struct gw_http1_header headers[GW_HTTP1_MAX_HEADERS];
    size_t n_headers;
};

/* Parses the response head at the start of `buf`: its length including the empty line, 0 when
 * it is not complete yet, -1 when it is not a valid head (or has too many header fields). */
long gw_http1_parse_response(const char *buf, size_t len, struct gw_http1_response *out);

/* A chunked body's decoder; zero it before the first call. */
struct gw_chunked {
    int state;
    uint64_t left;   /* data bytes left in the current chunk, or the size being read */
    int size_digits; /* hex digits of the size read so far */
    size_t line_len; /* bytes of the current extension or trailer line (capped) */
};

/* Decodes `*len` bytes of `data` in place: on return data[0 .. *len) are body bytes and
 * `*consumed` says how many input bytes were used. 1 when the body ended (the last chunk and the
 * trailers were read; bytes after *consumed are not the body's), 0 when more input is needed
 * (then *consumed is the whole input), -1 when the framing is invalid. */
int gw_chunked_decode(struct gw_chunked *c, char *data, size_t *len, size_t *consumed);

#endif
