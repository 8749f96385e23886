// SPDX-License-Identifier: Apache-2.0
/*
 * Strict HTTP/1.1 response heads and chunked bodies from upstreams (src/http/h1parse.c):
 * what a valid answer yields, that a head is never taken before its empty line has arrived, that
 * every way of bending the grammar is refused (a lenient parser is how response splitting and
 * smuggling start), and that chunked decoding gives the same body however the bytes arrive.
 * Inputs are given with explicit lengths, without a terminating NUL where it matters, so a read
 * past the end is an AddressSanitizer error in the sanitizer build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

/* An input with embedded NULs: its length is the literal's, not strlen's. */
struct bytes {
    const char *s;
    size_t n;
};
#define BYTES(lit)                                                                                 \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* 100 header slots make the result a few KiB: static rather than on every test's stack. */
static struct gh_h1_response res;
/* The buffer `res` points into, kept until the next parse so its fields can be compared. */
static char *parsed;

/* Parses from an exact-size heap copy, so the parser cannot lean on bytes after `len`. */
static long parse_n(const char *buf, size_t len)
{
    free(parsed);
    parsed = malloc(len ? len : 1);
    assert_non_null(parsed);
    if (len)
        memcpy(parsed, buf, len);
    return gh_h1_parse_response(parsed, len, &res);
}

static int free_parsed(void **state)
{
    (void)state;
    free(parsed);
    parsed = NULL;
    return 0;
}

static long parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static void assert_span(const char *p, size_t len, const char *want)
{
    assert_int_equal(len, strlen(want));
    if (len)
        assert_memory_equal(p, want, len);
}

static void assert_header(size_t i, const char *name, const char *value)
{
    assert_true(i < res.n_headers);
    assert_span(res.headers[i].name, res.headers[i].name_len, name);
    assert_span(res.headers[i].value, res.headers[i].value_len, value);
}

/* ---- response head ---- */

static void test_minimal_head(void **state)
{
    static const char head[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "X-Empty:\r\n"
                               "Content-Length: 5\r\n"
                               "\r\n";
    /* the body and a pipelined second answer follow: neither belongs to this head */
    static const char all[] = "HTTP/1.1 200 OK\r\n"
                              "Content-Type: text/plain\r\n"
                              "X-Empty:\r\n"
                              "Content-Length: 5\r\n"
                              "\r\n"
                              "hello"
                              "HTTP/1.1 404 Nope\r\n\r\n";
    (void)state;
    /* parsed in place here, to check that the pointers point into the caller's buffer */
    assert_int_equal(gh_h1_parse_response(all, sizeof all - 1, &res), sizeof head - 1);
    assert_int_equal(res.minor_version, 1);
    assert_int_equal(res.status, 200);
    assert_span(res.reason, res.reason_len, "OK");
    assert_ptr_equal(res.reason, all + 13);
    assert_int_equal(res.n_headers, 3);
    assert_header(0, "Content-Type", "text/plain");
    assert_header(1, "X-Empty", "");
    assert_header(2, "Content-Length", "5");
    assert_ptr_equal(res.headers[0].name, all + 17);
    assert_ptr_equal(res.headers[0].value, all + 31);
    assert_int_equal(parse_n(all, sizeof head - 1), sizeof head - 1);

    /* HTTP/1.0, a reason with spaces and obs-text, the status range's ends, no headers */
    assert_int_equal(parse("HTTP/1.0 404 Not \xc3\xa9 Found\r\n\r\n"), 29);
    assert_int_equal(res.minor_version, 0);
    assert_int_equal(res.status, 404);
    assert_span(res.reason, res.reason_len, "Not \xc3\xa9 Found");
    assert_int_equal(res.n_headers, 0);
    assert_int_equal(parse("HTTP/1.1 100 Continue\r\n\r\n"), 25);
    assert_int_equal(res.status, 100);
    assert_int_equal(parse("HTTP/1.1 999 X\r\n\r\n"), 18);
    assert_int_equal(res.status, 999);
}

/* An upstream socket's input buffer with nothing in it has no bytes at all: (NULL, 0) is "more
 * needed", not arithmetic on a null pointer (UBSan found it under the e2e tests). */
static void test_empty_input_without_bytes(void **state)
{
    struct gh_h1_response head;
    struct gh_h1_chunked c;
    size_t len = 0, used = 99;

    (void)state;
    assert_int_equal(gh_h1_parse_response(NULL, 0, &head), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(gh_h1_chunked_decode(&c, NULL, &len, &used), 0);
    assert_int_equal(len, 0);
    assert_int_equal(used, 0);
}

static void test_value_whitespace_trimmed(void **state)
{
    (void)state;
    assert_true(parse("HTTP/1.1 200 OK\r\n"
                      "A:  \t a \t b \t \r\n"
                      "B:\tx\r\n"
                      "C: \t \r\n"
                      "D:y\r\n"
                      "E: caf\xc3\xa9\r\n"
                      "\r\n") > 0);
    assert_int_equal(res.n_headers, 5);
    assert_header(0, "A", "a \t b"); /* inner whitespace is the value's */
    assert_header(1, "B", "x");
    assert_header(2, "C", "");
    assert_header(3, "D", "y");
    assert_header(4, "E", "caf\xc3\xa9"); /* obs-text is allowed in values */
}

static void test_empty_and_missing_reason(void **state)
{
    (void)state;
    assert_int_equal(parse("HTTP/1.1 204 \r\n\r\n"), 17);
    assert_int_equal(res.status, 204);
    assert_int_equal(res.reason_len, 0);
    assert_int_equal(parse("HTTP/1.1 204\r\n\r\n"), 16);
    assert_int_equal(res.status, 204);
    assert_int_equal(res.reason_len, 0);
    assert_int_equal(parse("HTTP/1.1 204\r\nX: y\r\n\r\n"), 22);
    assert_header(0, "X", "y");
}

static void test_every_prefix_is_incomplete(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX:  v \r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 204\r\n\r\n",
        "HTTP/1.0 301 \r\nLocation: /x\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(heads); i++) {
        size_t len = strlen(heads[i]);
        for (size_t k = 0; k < len; k++)
            assert_int_equal(parse_n(heads[i], k), 0);
        assert_int_equal(parse_n(heads[i], len), len);
    }
}

static void test_rejects_bad_line_endings(void **state)
{
    static const struct bytes bad[] = {
        BYTES("HTTP/1.1 200 OK\n\r\n"),              /* lone LF after the status line */
        BYTES("HTTP/1.1 200 OK\r\nX: y\n\r\n"),      /* ... after a field */
        BYTES("HTTP/1.1 200 OK\r\nX: y\r\n\n"),      /* ... as the empty line */
        BYTES("HTTP/1.1 200 OK\n\n"),                /* a head of LFs only */
        BYTES("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), /* bare CR inside a value */
        BYTES("HTTP/1.1 200 O\rK\r\n\r\n"),          /* ... inside the reason */
        BYTES("HTTP/1.1 200 OK\r\r\n\r\n"),          /* CR CR LF */
        BYTES("HTTP/1.1 200 OK\r\nX: y\r\n\r\r\n"),  /* CR before the empty line's CRLF */
        BYTES("HTTP/1.1 200 OK\r\nX: a\nSet-Cookie: b\r\n\r\n"), /* a smuggled field */
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_int_equal(parse_n(bad[i].s, bad[i].n), -1);
    /* a lone LF is refused as soon as it arrives, not when a CRLF finally does */
    assert_int_equal(parse("HTTP/1.1 200 OK\n"), -1);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX: y\n"), -1);
}

static void test_rejects_nul_and_control_chars(void **state)
{
    static const struct bytes bad[] = {
        BYTES("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX\0: a\r\n\r\n"),
        BYTES("HTTP/1.1 200 O\0K\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX: a\x1f b\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX: \x0b\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nX\x01: a\r\n\r\n"),
        BYTES("HTTP/1.1 200 O\x1bK\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\x7f\r\n\r\n"),
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_int_equal(parse_n(bad[i].s, bad[i].n), -1);
    /* HTAB is the one control byte a value may hold */
    assert_true(parse("HTTP/1.1 200 O\tK\r\nX: a\tb\r\n\r\n") > 0);
    assert_header(0, "X", "a\tb");
}

static void test_rejects_obs_fold(void **state)
{
    (void)state;
    assert_true(parse("HTTP/1.1 200 OK\r\nX: a\r\nY: b\r\n\r\n") > 0);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), -1);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n"), -1);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n Y: b\r\n\r\n"), -1);
    /* HTAB inside a value is no fold */
    assert_true(parse("HTTP/1.1 200 OK\r\nX: a\tb\r\n\r\n") > 0);
}

static void test_rejects_bad_field_names(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",  /* space before the colon */
        "HTTP/1.1 200 OK\r\nX\t: a\r\n\r\n", /* ... or a tab */
        "HTTP/1.1 200 OK\r\n: a\r\n\r\n",    /* empty name */
        "HTTP/1.1 200 OK\r\nX\r\n\r\n",      /* no colon */
        "HTTP/1.1 200 OK\r\nX Y: a\r\n\r\n",      "HTTP/1.1 200 OK\r\nX(Y): a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX@: a\r\n\r\n",       "HTTP/1.1 200 OK\r\nX/Y: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\"X\": a\r\n\r\n",    "HTTP/1.1 200 OK\r\nX=Y: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\xc3\xa9: a\r\n\r\n", "HTTP/1.1 200 OK\r\n{X}: a\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_int_equal(parse(bad[i]), -1);
    /* every tchar of RFC 9110 §5.6.2 makes a name; a colon in the value is the value's */
    assert_true(parse("HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: a:b\r\n\r\n") > 0);
    assert_header(0, "!#$%&'*+-.^_`|~09azAZ", "a:b");
}

static void test_rejects_bad_versions(void **state)
{
    static const char *const bad[] = {
        "HTTP/2.0 200 OK\r\n\r\n",     "HTTP/1.2 200 OK\r\n\r\n",  "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.10 200 OK\r\n\r\n",    "HTTP/0.9 200 OK\r\n\r\n",  "HTTP/1 200 OK\r\n\r\n",
        "HTTPS/1.1 200 OK\r\n\r\n",    " HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_int_equal(parse(bad[i]), -1);
}

static void test_rejects_bad_status(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 099 OK\r\n\r\n",  "HTTP/1.1 000 OK\r\n\r\n",  "HTTP/1.1 1000 OK\r\n\r\n",
        "HTTP/1.1 1000\r\n\r\n",    "HTTP/1.1 20 OK\r\n\r\n",   "HTTP/1.1 20\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",  "HTTP/1.1 abc OK\r\n\r\n",  "HTTP/1.1 -20 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1 200\tOK\r\n\r\n", "HTTP/1.1200 OK\r\n\r\n",
        "HTTP/1.1\t200 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_int_equal(parse(bad[i]), -1);
}

/* A head with `n` fields H0..H(n-1); the caller frees it. */
static char *head_with_fields(size_t n, size_t *len)
{
    char *head = malloc(32 + n * 24), *p = head;

    assert_non_null(head);
    p += sprintf(p, "HTTP/1.1 200 OK\r\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "H%zu: v%zu\r\n", i, i);
    p += sprintf(p, "\r\n");
    *len = (size_t)(p - head);
    return head;
}

static void test_header_limit(void **state)
{
    size_t len;
    char *head;
    (void)state;
    head = head_with_fields(COUNT(res.headers), &len);
    assert_int_equal(parse_n(head, len), len);
    assert_int_equal(res.n_headers, COUNT(res.headers));
    assert_header(COUNT(res.headers) - 1, "H99", "v99");
    free(head);

    head = head_with_fields(COUNT(res.headers) + 1, &len);
    assert_int_equal(parse_n(head, len), -1);
    assert_int_equal(res.n_headers, COUNT(res.headers)); /* never one slot past the array */
    free(head);
}

/* ---- chunked body ---- */

/* Decodes `n` bytes at once in an exact-size copy; the body goes to `out` (room for `n`). */
static int dechunk(const char *in, size_t n, char *out, size_t *out_len, size_t *consumed)
{
    struct gh_h1_chunked c = {0};
    char *copy = malloc(n ? n : 1);
    size_t len = n;
    int rc;

    assert_non_null(copy);
    if (n)
        memcpy(copy, in, n);
    rc = gh_h1_chunked_decode(&c, copy, &len, consumed);
    if (rc >= 0) {
        assert_true(len <= n);
        assert_true(*consumed <= n);
        if (len)
            memcpy(out, copy, len);
        *out_len = len;
    }
    free(copy);
    return rc;
}

/* The same, fed one byte at a time: the decoder keeps all its state between calls. */
static int dechunk_bytewise(const char *in, size_t n, char *out, size_t *out_len, size_t *consumed)
{
    struct gh_h1_chunked c = {0};
    size_t total = 0;

    for (size_t i = 0; i < n; i++) {
        char byte = in[i];
        size_t len = 1, used = 0;
        int rc = gh_h1_chunked_decode(&c, &byte, &len, &used);
        if (rc < 0)
            return -1;
        assert_int_equal(used, 1);
        assert_true(len <= 1);
        if (len)
            out[total++] = byte;
        if (rc == 1) {
            *consumed = i + 1;
            *out_len = total;
            return 1;
        }
    }
    *consumed = n;
    *out_len = total;
    return 0;
}

/* A complete body decodes to `want` both at once and byte by byte, consuming all of `in`. */
static void assert_dechunks(const char *in, size_t n, const char *want, size_t want_len)
{
    char *out = malloc(n + 1);
    size_t len = 0, used = 0;

    assert_non_null(out);
    assert_int_equal(dechunk(in, n, out, &len, &used), 1);
    assert_int_equal(used, n);
    assert_int_equal(len, want_len);
    if (len)
        assert_memory_equal(out, want, len);
    assert_int_equal(dechunk_bytewise(in, n, out, &len, &used), 1);
    assert_int_equal(used, n);
    assert_int_equal(len, want_len);
    if (len)
        assert_memory_equal(out, want, len);
    free(out);
}

static void assert_dechunks_str(const char *in, const char *want)
{
    assert_dechunks(in, strlen(in), want, strlen(want));
}

static void test_chunked_single(void **state)
{
    (void)state;
    assert_dechunks_str("5\r\nhello\r\n0\r\n\r\n", "hello");
    assert_dechunks_str("0\r\n\r\n", ""); /* an empty body */
    /* the data is opaque: CRLF, "0\r\n\r\n" and NUL inside a chunk are body bytes */
    assert_dechunks("9\r\na\r\n0\r\n\r\n\0\r\n0\r\n\r\n", 19, "a\r\n0\r\n\r\n\0", 9);
}

static void test_chunked_several(void **state)
{
    (void)state;
    assert_dechunks_str("5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n", "hello world!");
    assert_dechunks_str("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", "abc");
}

static void test_chunked_hex_case(void **state)
{
    static const char sixteen[] = "0123456789abcdef";
    static const char twenty_six[] = "abcdefghijklmnopqrstuvwxyz";
    char in[128];
    (void)state;
    snprintf(in, sizeof in, "10\r\n%s\r\n0\r\n\r\n", sixteen);
    assert_dechunks_str(in, sixteen);
    snprintf(in, sizeof in, "1a\r\n%s\r\n0\r\n\r\n", twenty_six);
    assert_dechunks_str(in, twenty_six);
    snprintf(in, sizeof in, "1A\r\n%s\r\n0\r\n\r\n", twenty_six);
    assert_dechunks_str(in, twenty_six);
    snprintf(in, sizeof in, "F\r\n%.15s\r\nf\r\n%.15s\r\n0\r\n\r\n", twenty_six, twenty_six);
    assert_dechunks_str(in, "abcdefghijklmnoabcdefghijklmno");
    /* fifteen digits are the most the size may have, leading zeros included */
    assert_dechunks_str("000000000000003\r\nabc\r\n000000000000000\r\n\r\n", "abc");
}

static void test_chunked_extensions_skipped(void **state)
{
    (void)state;
    assert_dechunks_str("5;name=value\r\nhello\r\n0\r\n\r\n", "hello");
    assert_dechunks_str("5;a;b=\"q;\\\"x\"\r\nhello\r\n0;last\r\n\r\n", "hello");
    assert_dechunks_str("5 ;a=b\r\nhello\r\n0\t;c\r\n\r\n", "hello"); /* BWS before ';' */
}

static void test_chunked_trailers_skipped(void **state)
{
    (void)state;
    assert_dechunks_str("5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", "hello");
    assert_dechunks_str("5\r\nhello\r\n0\r\nA: 1\r\nB:\r\nC: x\ty\r\n\r\n", "hello");
}

static void test_chunked_end_and_consumed(void **state)
{
    static const char body[] = "3\r\nabc\r\n0\r\nT: v\r\n\r\n";
    static const char in[] = "3\r\nabc\r\n0\r\nT: v\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    const size_t body_end = sizeof body - 1; /* right after the empty line ending the trailers */
    struct gh_h1_chunked c = {0};
    char buf[sizeof in];
    size_t len = sizeof in - 1, used = 0;
    (void)state;
    memcpy(buf, in, sizeof in);
    assert_int_equal(gh_h1_chunked_decode(&c, buf, &len, &used), 1);
    assert_int_equal(used, body_end);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "abc", 3);
    /* the bytes after the body are left where they were, untouched */
    assert_memory_equal(buf + body_end, in + body_end, sizeof in - 1 - body_end);

    /* a finished decoder takes nothing more */
    len = sizeof in - 1 - body_end;
    assert_int_equal(gh_h1_chunked_decode(&c, buf + body_end, &len, &used), 1);
    assert_int_equal(used, 0);
    assert_int_equal(len, 0);

    /* ended by the last chunk without trailers, with a next body right after */
    memset(&c, 0, sizeof c);
    memcpy(buf, "0\r\n\r\n5\r\n", 8);
    len = 8;
    assert_int_equal(gh_h1_chunked_decode(&c, buf, &len, &used), 1);
    assert_int_equal(used, 5);
    assert_int_equal(len, 0);

    /* an incomplete body consumes all and asks for more */
    memset(&c, 0, sizeof c);
    memcpy(buf, "5\r\nhel", 6);
    len = 6;
    assert_int_equal(gh_h1_chunked_decode(&c, buf, &len, &used), 0);
    assert_int_equal(used, 6);
    assert_int_equal(len, 3);
}

static void test_chunked_byte_by_byte(void **state)
{
    static const struct bytes bodies[] = {
        BYTES("5\r\nhello\r\n0\r\n\r\n"),
        BYTES("5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"),
        BYTES("a;x=y\r\n0123456789\r\n0;z\r\nT: 1\r\nU: 2\r\n\r\n"),
        BYTES("3\r\n\r\n\0\r\n0\r\n\r\n"),
        BYTES("0\r\n\r\n"),
    };
    char once[128], bytewise[128];
    size_t once_len, once_used, byte_len, byte_used;
    (void)state;
    for (size_t i = 0; i < COUNT(bodies); i++) {
        assert_int_equal(dechunk(bodies[i].s, bodies[i].n, once, &once_len, &once_used), 1);
        assert_int_equal(
            dechunk_bytewise(bodies[i].s, bodies[i].n, bytewise, &byte_len, &byte_used), 1);
        assert_int_equal(byte_used, once_used);
        assert_int_equal(byte_len, once_len);
        assert_memory_equal(bytewise, once, once_len);
    }
}

static void test_chunked_rejects(void **state)
{
    static const struct bytes bad[] = {
        BYTES("\r\nhello\r\n0\r\n\r\n"),             /* missing size digits */
        BYTES(";x\r\nhello\r\n0\r\n\r\n"),           /* ... before an extension */
        BYTES(" 5\r\nhello\r\n0\r\n\r\n"),           /* ... before a space */
        BYTES("5\r\nhello\r\n\r\n"),                 /* ... of the next chunk */
        BYTES("0000000000000000\r\n\r\n"),           /* sixteen digits */
        BYTES("10000000000000000\r\nx\r\n"),         /* 2^64: the overflow guard */
        BYTES("FFFFFFFFFFFFFFFF\r\nx\r\n"),          /* 2^64 - 1 */
        BYTES("5\r\nhelloX\r\n0\r\n\r\n"),           /* more data than the size said */
        BYTES("5\r\nhello0\r\n\r\n"),                /* no CRLF after the data */
        BYTES("5\r\nhello\n0\r\n\r\n"),              /* LF alone after the data */
        BYTES("5\r\nhello\r0\r\n\r\n"),              /* CR alone after the data */
        BYTES("5x\r\nhello\r\n0\r\n\r\n"),           /* bad char after the size */
        BYTES("0x5\r\nhello\r\n0\r\n\r\n"),          /* no C prefix either */
        BYTES("-5\r\nhello\r\n0\r\n\r\n"),           /* nor a sign */
        BYTES("+5\r\nhello\r\n0\r\n\r\n"),           /* nor a plus */
        BYTES("5 x\r\nhello\r\n0\r\n\r\n"),          /* bad char after BWS */
        BYTES("5\nhello\r\n0\r\n\r\n"),              /* LF without CR after the size */
        BYTES("5\r\rhello\r\n0\r\n\r\n"),            /* CR without LF */
        BYTES("5;a\nhello\r\n0\r\n\r\n"),            /* LF without CR after an extension */
        BYTES("5;a\0b\r\nhello\r\n0\r\n\r\n"),       /* NUL in an extension */
        BYTES("5\r\nhello\r\n0\r\n\n"),              /* LF alone as the final line */
        BYTES("5\r\nhello\r\n0\r\n\rX"),             /* CR alone as the final line */
        BYTES("5\r\nhello\r\n0\r\nT: a\0b\r\n\r\n"), /* NUL in a trailer */
        BYTES("5\r\nhello\r\n0\r\nT: a\n\r\n"),      /* LF without CR in a trailer */
        BYTES("5\r\nhello\r\n0\r\n T: a\r\n\r\n"),   /* a folded trailer line */
        BYTES("5\r\nhello\r\n0\r\n: a\r\n\r\n"),     /* a trailer without name */
        BYTES("5\r\nhello\r\n0\r\n\0T: a\r\n\r\n"),  /* NUL starting a trailer */
        BYTES("5\r\nhello\r\n0\r\nT: a\rb\r\n\r\n"), /* bare CR in a trailer */
        BYTES("5;a\rb\r\nhello\r\n0\r\n\r\n"),       /* bare CR in an extension */
    };
    char out[64];
    size_t len, used;
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++) {
        /* refused whole and, however the bytes arrive, refused before the input runs out */
        assert_int_equal(dechunk(bad[i].s, bad[i].n, out, &len, &used), -1);
        assert_int_equal(dechunk_bytewise(bad[i].s, bad[i].n, out, &len, &used), -1);
    }
}

/* "1;" + `ext` extension bytes + the rest of a one-byte body; the caller frees it. */
static char *long_extension(size_t ext, size_t *n)
{
    char *in = malloc(ext + 16);

    assert_non_null(in);
    memcpy(in, "1;", 2);
    memset(in + 2, 'e', ext);
    memcpy(in + 2 + ext, "\r\nx\r\n0\r\n\r\n", 10);
    *n = ext + 12;
    return in;
}

/* "1\r\nx\r\n0\r\n" + a trailer line of `line` bytes + the empty line; the caller frees it. */
static char *long_trailer(size_t line, size_t *n)
{
    char *in = malloc(line + 16);

    assert_non_null(in);
    memcpy(in, "1\r\nx\r\n0\r\nT:", 11);
    memset(in + 11, 'v', line - 2);
    memcpy(in + 9 + line, "\r\n\r\n", 4);
    *n = line + 13;
    return in;
}

static void test_chunked_line_caps(void **state)
{
    char out[16];
    size_t n, len, used;
    char *in;
    (void)state;
    in = long_extension(8192, &n);
    assert_dechunks(in, n, "x", 1);
    free(in);
    in = long_extension(8193, &n);
    assert_int_equal(dechunk(in, n, out, &len, &used), -1);
    free(in);
    in = long_extension(100000, &n); /* refused long before its end, in any case */
    assert_int_equal(dechunk(in, n, out, &len, &used), -1);
    free(in);

    in = long_trailer(8192, &n);
    assert_dechunks(in, n, "x", 1);
    free(in);
    in = long_trailer(8193, &n);
    assert_int_equal(dechunk(in, n, out, &len, &used), -1);
    free(in);
}

/* "1\r\nx\r\n0\r\n" + `lines` trailer lines of `line` bytes each (CRLF included) + the empty
 * line, the last trailer line `extra` bytes longer; the caller frees it. */
static char *many_trailers(size_t lines, size_t line, size_t extra, size_t *n)
{
    size_t total = 9 + lines * line + extra + 2, o = 9;
    char *in = malloc(total);

    assert_non_null(in);
    memcpy(in, "1\r\nx\r\n0\r\n", 9);
    for (size_t i = 0; i < lines; i++) {
        size_t len = line + (i + 1 == lines ? extra : 0);
        in[o] = 'T';
        in[o + 1] = ':';
        memset(in + o + 2, 'v', len - 4);
        memcpy(in + o + len - 2, "\r\n", 2);
        o += len;
    }
    memcpy(in + o, "\r\n", 2);
    *n = total;
    return in;
}

/* Trailers are skipped, but a body that never ends its trailers must not keep its connection
 * busy: all of them together are capped at 16 KiB (CRLFs included), besides each line's cap. */
static void test_chunked_trailers_capped_together(void **state)
{
    char out[16];
    size_t n, len, used;
    char *in;
    (void)state;
    in = many_trailers(8, 2048, 0, &n); /* exactly 16384 bytes of trailers */
    assert_dechunks(in, n, "x", 1);
    free(in);
    in = many_trailers(8, 2048, 1, &n); /* one byte more */
    assert_int_equal(dechunk(in, n, out, &len, &used), -1);
    assert_int_equal(dechunk_bytewise(in, n, out, &len, &used), -1);
    free(in);
    in = many_trailers(4096, 4, 0, &n); /* many tiny lines add up the same */
    assert_dechunks(in, n, "x", 1);
    free(in);
    in = many_trailers(4097, 4, 0, &n);
    assert_int_equal(dechunk(in, n, out, &len, &used), -1);
    free(in);
}

/* ---- chunked: encode then decode, randomly ---- */

static uint64_t rng_state = 0x243f6a8885a308d3u; /* fixed: every run tests the same bodies */

static uint64_t next_random(void)
{
    /* xorshift64: small, deterministic, good enough to pick sizes */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t below(size_t n)
{
    return n ? (size_t)(next_random() % n) : 0;
}

/* Chunks `body` with random sizes, hex case, extensions and trailers, the way different upstreams
 * would; returns the encoding's length. `out` needs room for 40 bytes per chunk besides `n`. */
static size_t encode_chunked(const char *body, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n;) {
        /* mostly small chunks (every state change is near), sometimes large ones */
        size_t size = 1 + below(below(3) ? 16 : 1024);
        if (size > n - i)
            size = n - i;
        o += (size_t)sprintf(out + o, below(2) ? "%zx" : "%zX", size);
        if (below(4) == 0)
            o += (size_t)sprintf(out + o, "%s;e%u=v", below(2) ? " " : "", (unsigned)below(100));
        memcpy(out + o, "\r\n", 2);
        memcpy(out + o + 2, body + i, size);
        memcpy(out + o + 2 + size, "\r\n", 2);
        o += size + 4;
        i += size;
    }
    o += (size_t)sprintf(out + o, below(4) ? "0\r\n" : "0;last\r\n");
    for (size_t t = below(3); t > 0; t--)
        o += (size_t)sprintf(out + o, "Trailer-%zu: %u\r\n", t, (unsigned)below(1000));
    memcpy(out + o, "\r\n", 2);
    return o + 2;
}

static void test_chunked_round_trip_random(void **state)
{
    enum { BODIES = 400, MAX_BODY = 4096 };
    static const char next[] = "HTTP/1.1 200 OK\r\n"; /* bytes after the body, not its own */
    char *body = malloc(MAX_BODY), *enc = malloc(MAX_BODY * 41 + 128), *dec = malloc(MAX_BODY);
    (void)state;
    assert_non_null(body);
    assert_non_null(enc);
    assert_non_null(dec);
    for (int b = 0; b < BODIES; b++) {
        size_t n = below(8) == 0 ? below(4) : below(MAX_BODY + 1), dec_len = 0, pos = 0, m;
        int rc = 0;
        /* bytes that look like framing are the likeliest to confuse a decoder */
        for (size_t i = 0; i < n; i++)
            body[i] = below(2) ? "\r\n0;: \t\0"[below(8)] : (char)below(256);
        m = encode_chunked(body, n, enc);
        memcpy(enc + m, next, sizeof next - 1);

        struct gh_h1_chunked c = {0};
        while (rc == 0) {
            size_t left = m + sizeof next - 1 - pos;
            size_t frag = 1 + below(below(2) ? 8 : left), len, used;
            if (frag > left)
                frag = left;
            assert_true(frag > 0); /* the body ends before `next` does */
            len = frag;
            rc = gh_h1_chunked_decode(&c, enc + pos, &len, &used);
            assert_true(rc >= 0);
            assert_true(len <= frag);
            assert_true(dec_len + len <= n);
            memcpy(dec + dec_len, enc + pos, len);
            dec_len += len;
            if (rc == 0)
                assert_int_equal(used, frag);
            pos += used;
        }
        assert_int_equal(pos, m); /* consumed exactly the encoding */
        assert_int_equal(dec_len, n);
        if (n)
            assert_memory_equal(dec, body, n);
    }
    free(dec);
    free(enc);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_head),
        cmocka_unit_test(test_empty_input_without_bytes),
        cmocka_unit_test(test_value_whitespace_trimmed),
        cmocka_unit_test(test_empty_and_missing_reason),
        cmocka_unit_test(test_every_prefix_is_incomplete),
        cmocka_unit_test(test_rejects_bad_line_endings),
        cmocka_unit_test(test_rejects_nul_and_control_chars),
        cmocka_unit_test(test_rejects_obs_fold),
        cmocka_unit_test(test_rejects_bad_field_names),
        cmocka_unit_test(test_rejects_bad_versions),
        cmocka_unit_test(test_rejects_bad_status),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_chunked_single),
        cmocka_unit_test(test_chunked_several),
        cmocka_unit_test(test_chunked_hex_case),
        cmocka_unit_test(test_chunked_extensions_skipped),
        cmocka_unit_test(test_chunked_trailers_skipped),
        cmocka_unit_test(test_chunked_end_and_consumed),
        cmocka_unit_test(test_chunked_byte_by_byte),
        cmocka_unit_test(test_chunked_rejects),
        cmocka_unit_test(test_chunked_line_caps),
        cmocka_unit_test(test_chunked_trailers_capped_together),
        cmocka_unit_test(test_chunked_round_trip_random),
    };
    return cmocka_run_group_tests(tests, NULL, free_parsed);
}
