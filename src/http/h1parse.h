// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/1.1 (RFC 9112) as bytes, both ways, strictly: the request head the front end reads from
 * clients, the response head the gateway reads from upstreams, and the chunked coding of either
 * body. Pure functions, no sockets, so they are tested rule by rule (each with its valid twin) and
 * fuzzed alone. Whatever bends the grammar is refused rather than guessed at: two parsers that
 * guess differently are how requests are smuggled past a front end.
 */
#ifndef GH_HTTP_H1PARSE_H
#define GH_HTTP_H1PARSE_H

#include <stddef.h>
#include <stdint.h>

#define GH_H1_MAX_HEADERS 1000 /* room in the parse results; the real limits are the caller's */

struct gh_h1_header {
    const char *name, *value; /* into the parsed buffer; value without surrounding SP/HTAB */
    size_t name_len, value_len;
};

/* ---- requests ---- */

struct gh_h1_limits {
    size_t head_bytes;   /* the whole head, request line and empty line included (431 past it) */
    size_t header_count; /* header fields (431 past it) */
    size_t target_bytes; /* the request target (414 past it) */
};

/* Why a request head was refused: the status to answer and a sentence for the client. Every one
 * of them ends the connection (the framing of what follows cannot be trusted). */
enum gh_h1_error {
    GH_H1_INCOMPLETE = 0,
    GH_H1_BAD_REQUEST_LINE,   /* 400: not method SP target SP HTTP/1.x CRLF */
    GH_H1_BAD_VERSION,        /* 505: HTTP/2.0, HTTP/3 ... on an HTTP/1 connection */
    GH_H1_BAD_TARGET,         /* 400: not origin, absolute, authority (CONNECT) or * (OPTIONS) form,
                                 or bytes a target cannot hold */
    GH_H1_TARGET_TOO_LONG,    /* 414 */
    GH_H1_BAD_LINE_END,       /* 400: a bare LF or CR, or a NUL */
    GH_H1_BAD_FIELD,          /* 400: a name that is not a token, space before the colon, a
                                 control byte in a value */
    GH_H1_OBS_FOLD,           /* 400: a line starting with SP or HTAB (obsolete folding) */
    GH_H1_HEAD_TOO_LARGE,     /* 431 */
    GH_H1_TOO_MANY_HEADERS,   /* 431 */
    GH_H1_NO_HOST,            /* 400: HTTP/1.1 without Host */
    GH_H1_MANY_HOSTS,         /* 400: Host repeated */
    GH_H1_BAD_HOST,           /* 400: a Host value that is not uri-host [":" port] */
    GH_H1_BAD_LENGTH,         /* 400: Content-Length not 1*DIGIT, larger than 2^62, or
                                 repeated (even with the same value) */
    GH_H1_LENGTH_AND_CHUNKED, /* 400: Content-Length with Transfer-Encoding */
    GH_H1_BAD_CODING,         /* a transfer coding other than exactly "chunked": 501 for codings
                                 not implemented before a final chunked ("gzip, chunked"); 400
                                 when chunked is not last or not once ("identity", "chunked,
                                 chunked"), for a malformed list, a second Transfer-Encoding
                                 field, and any Transfer-Encoding in HTTP/1.0 */
    GH_H1_ERROR_COUNT
};

struct gh_h1_request {
    const char *method, *target;
    size_t method_len, target_len;
    int minor_version; /* HTTP/1.0 or HTTP/1.1 */
    struct gh_h1_header headers[GH_H1_MAX_HEADERS];
    size_t n_headers;
    /* what the head says about the connection and the body */
    const char *host; /* the Host value (NULL for HTTP/1.0 without one) */
    size_t host_len;
    int64_t content_length; /* -1 when none */
    int chunked;            /* Transfer-Encoding: chunked */
    int expect_continue;    /* Expect: 100-continue (other expectations: expect_other) */
    int expect_other;
    int keep_alive; /* 1.1 without Connection: close, or 1.0 with keep-alive */
    int upgrade;    /* an Upgrade field is present (never acted on by the parser) */
};

/*
 * Parses the request head at the start of `buf`. Returns its length including the empty line;
 * 0 while it is not complete and within the limits yet; -(enum gh_h1_error) when refused, with
 * `*status` the status to answer. Field names keep their case; gh_h1_lower lowers them in place
 * when the caller owns the bytes.
 * The outcome does not depend on how the bytes arrived: a call with fewer bytes gives 0 or what
 * the call with all of them gives. Each call reads from the start of `buf` (nothing is kept), so
 * a caller reading a slow client should call again only when the new bytes hold a LF, the buffer
 * has doubled since the last call, or it has passed head_bytes: refusals come a little later,
 * the same, and the work is a pass over the head per line instead of one per read.
 */
long gh_h1_parse_request(const char *buf, size_t len, const struct gh_h1_limits *limits,
                         struct gh_h1_request *out, int *status);

/* A short sentence for the client saying what was wrong, for each enum gh_h1_error. */
const char *gh_h1_error_message(enum gh_h1_error e);

/* A metric label for each enum gh_h1_error ("bad_line_end", "obs_fold", ...). */
const char *gh_h1_error_name(enum gh_h1_error e);

/* ---- responses ---- */

struct gh_h1_response {
    int minor_version;
    int status; /* 100..999 */
    const char *reason;
    size_t reason_len;
    struct gh_h1_header headers[100];
    size_t n_headers;
};

/* Parses the response head at the start of `buf`: its length including the empty line, 0 when
 * it is not complete yet, -1 when it is not a valid head (or has more than 100 header fields). */
long gh_h1_parse_response(const char *buf, size_t len, struct gh_h1_response *out);

/* ---- chunked bodies ---- */

/* A chunked body's decoder; zero it before the first call. */
struct gh_h1_chunked {
    int state;
    uint64_t left;        /* data bytes left in the current chunk, or the size being read */
    int size_digits;      /* hex digits of the size read so far */
    size_t line_len;      /* bytes of the current extension or trailer line (capped) */
    size_t trailer_bytes; /* all trailer lines so far (capped) */
};

/* Decodes `*len` bytes of `data` in place: on return data[0 .. *len) are body bytes and
 * `*consumed` says how many input bytes were used. 1 when the body ended (the last chunk and the
 * trailers were read; bytes after *consumed are not the body's), 0 when more input is needed
 * (then *consumed is the whole input), -1 when the framing is invalid (a bare LF included) or
 * an extension or trailer line passes 8 KiB, or all trailers together 16 KiB. */
int gh_h1_chunked_decode(struct gh_h1_chunked *c, char *data, size_t *len, size_t *consumed);

/* Lowers ASCII letters of `s` in place. */
void gh_h1_lower(char *s, size_t len);

#endif
