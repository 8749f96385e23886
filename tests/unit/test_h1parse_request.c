// SPDX-License-Identifier: Apache-2.0
/*
 * Strict HTTP/1.1 request heads from clients (gh_h1_parse_request in src/http/h1parse.c): every
 * rule of RFC 9112 the parser enforces is here with its valid twin, the smallest change that
 * makes the head acceptable, so a test fails both when a rule is dropped and when it refuses too
 * much. Smuggling lives in the difference between two parsers, so the framing rules (Content-
 * Length, Transfer-Encoding, line ends) get the most cases. Every head is also fed the way a
 * socket may deliver it, one more byte at a time, and must give the same outcome as at once.
 * Inputs are exact-size heap copies, so a read past the end is an AddressSanitizer error.
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

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct gh_h1_limits limits = {
    .head_bytes = 8192, .header_count = 100, .target_bytes = 2048};

/* A thousand header slots make the result ~40 KiB: static rather than on every test's stack. */
static struct gh_h1_request req, prefix_req;
/* The buffer `req` points into, kept until the next parse so its fields can be compared. */
static char *parsed;

static char *exact_copy(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    return copy;
}

/* Parses `s` whole into `req`, after checking that every prefix of it, as a socket could deliver
 * it, gives either "more" or that same outcome. Heads over 2 KiB are checked at a few prefixes
 * only, to keep the test quick under the sanitizers. */
static long parse_lim(const char *s, size_t n, const struct gh_h1_limits *lim, int *status)
{
    long r;

    free(parsed);
    parsed = exact_copy(s, n);
    r = gh_h1_parse_request(parsed, n, lim, &req, status);
    for (size_t k = 0; k<n; k += n> 2048 ? n / 7 + 1 : 1) {
        char *part = exact_copy(s, k);
        int st = -1;
        long rk = gh_h1_parse_request(part, k, lim, &prefix_req, &st);
        free(part);
        if (rk != 0 && (rk != r || st != *status))
            fail_msg("the first %zu bytes gave %ld (status %d), all %zu gave %ld (status %d)", k,
                     rk, st, n, r, *status);
        if (rk == 0 && st != 0)
            fail_msg("an incomplete head set status %d", st);
    }
    return r;
}

static int free_parsed(void **state)
{
    (void)state;
    free(parsed);
    parsed = NULL;
    return 0;
}

static void ok_at(const char *s, size_t n, int line)
{
    int status = -1;
    long r = parse_lim(s, n, &limits, &status);
    if (r != (long)n || status != 0)
        fail_msg("line %d: %ld (%s, status %d), want the whole head (%zu)", line, r,
                 r < 0 ? gh_h1_error_name((enum gh_h1_error) - r) : "-", status, n);
}

static void bad_lim_at(const char *s, size_t n, const struct gh_h1_limits *lim,
                       enum gh_h1_error want, int want_status, int line)
{
    int status = -1;
    long r = parse_lim(s, n, lim, &status);
    if (r != -(long)want || status != want_status)
        fail_msg("line %d: %ld (%s, status %d), want %s (status %d)", line, r,
                 r < 0 ? gh_h1_error_name((enum gh_h1_error) - r) : "-", status,
                 gh_h1_error_name(want), want_status);
}

/* string literals only: their length is the literal's, NULs included */
#define OK(lit)           ok_at(lit, sizeof(lit) - 1, __LINE__)
#define BAD(lit, e, st)   bad_lim_at(lit, sizeof(lit) - 1, &limits, e, st, __LINE__)
#define HEAD(line, field) line "\r\nHost: example.com\r\n" field "\r\n"
#define GET(field)        HEAD("GET / HTTP/1.1", field "\r\n")

static void assert_span(const char *p, size_t len, const char *want)
{
    assert_int_equal(len, strlen(want));
    if (len)
        assert_memory_equal(p, want, len);
}

static void assert_header(size_t i, const char *name, const char *value)
{
    assert_true(i < req.n_headers);
    assert_span(req.headers[i].name, req.headers[i].name_len, name);
    assert_span(req.headers[i].value, req.headers[i].value_len, value);
}

/* ---- what a valid head yields ---- */

static void test_minimal(void **state)
{
    static const char head[] = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\n\r\n";
    int status = -1;
    (void)state;
    /* parsed in place, to check that the slices point into the caller's buffer */
    assert_int_equal(gh_h1_parse_request(head, sizeof head - 1, &limits, &req, &status),
                     sizeof head - 1);
    assert_int_equal(status, 0);
    assert_ptr_equal(req.method, head);
    assert_span(req.method, req.method_len, "GET");
    assert_ptr_equal(req.target, head + 4);
    assert_span(req.target, req.target_len, "/a?b=c");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.n_headers, 2);
    assert_header(0, "Host", "example.com");
    assert_header(1, "X-Empty", "");
    assert_ptr_equal(req.headers[0].name, head + 21);
    assert_ptr_equal(req.host, head + 27);
    assert_span(req.host, req.host_len, "example.com");
    assert_int_equal(req.content_length, -1);
    assert_int_equal(req.chunked, 0);
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(req.expect_other, 0);
    assert_int_equal(req.keep_alive, 1);
    assert_int_equal(req.upgrade, 0);

    /* HTTP/1.0 needs no Host */
    OK("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(req.minor_version, 0);
    assert_null(req.host);
    assert_int_equal(req.keep_alive, 0);
    /* names keep their case (the buffer is the caller's); gh_h1_lower is there for the caller */
    OK(GET("X-MiXed: V"));
    assert_header(1, "X-MiXed", "V");
}

static void test_empty_input_without_bytes(void **state)
{
    int status = -1;
    (void)state;
    assert_int_equal(gh_h1_parse_request(NULL, 0, &limits, &req, &status), 0);
    assert_int_equal(status, 0);
}

static void test_pipelined_bytes_not_consumed(void **state)
{
    static const char head[] = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    static const char all[] = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
                              "hello"
                              "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    int status = -1;
    (void)state;
    assert_int_equal(parse_lim(all, sizeof all - 1, &limits, &status), sizeof head - 1);
    assert_int_equal(req.content_length, 5);
    /* even bytes that would be refused as a head are not this head's business */
    assert_int_equal(parse_lim("GET / HTTP/1.0\r\n\r\n\n\0\x01", 21, &limits, &status), 18);
}

/* ---- the request line ---- */

static void test_request_line(void **state)
{
    (void)state;
    OK("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_TARGET, 400);
    BAD("GET /\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400); /* HTTP/0.9 */
    BAD("GET\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / \r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    /* the method is a token, any token */
    OK("M-SEARCH! / HTTP/1.1\r\nHost: a\r\n\r\n");
    BAD("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    OK("get / HTTP/1.1\r\nHost: a\r\n\r\n"); /* case-sensitive, but any token is a method */
}

static void test_versions(void **state)
{
    (void)state;
    OK("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    OK("GET / HTTP/1.0\r\n\r\n");
    BAD("GET / HTTP/1.2\r\nHost: a\r\n\r\n", GH_H1_BAD_VERSION, 505);
    BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", GH_H1_BAD_VERSION, 505);
    BAD("GET / HTTP/3\r\nHost: a\r\n\r\n", GH_H1_BAD_VERSION, 505);
    BAD("GET / HTTP/0.9\r\n\r\n", GH_H1_BAD_VERSION, 505);
    BAD("GET / HTTP/1.10\r\nHost: a\r\n\r\n", GH_H1_BAD_VERSION, 505);
    BAD("GET / http/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / HTTP/1.\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / HTTP/\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("GET / HTTP/1.1 HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
}

static void test_empty_lines_before(void **state)
{
    (void)state;
    OK("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_span(req.method, req.method_len, "GET");
    OK("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    BAD("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_REQUEST_LINE, 400);
    BAD("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
}

/* ---- line ends ---- */

static void test_line_ends(void **state)
{
    (void)state;
    OK("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n");
    BAD("GET / HTTP/1.1\nHost: a\r\nX: y\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GE\nT / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\nSmuggled: b\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    /* NUL anywhere */
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX\0: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\0\r\nHost: a\r\n\r\n", GH_H1_BAD_LINE_END, 400);
}

/* A bad line end is refused as it arrives, not when a CRLF finally does. */
static void test_line_ends_refused_early(void **state)
{
    (void)state;
    BAD("GET / HTTP/1.1\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\n", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\rX", GH_H1_BAD_LINE_END, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: \0", GH_H1_BAD_LINE_END, 400);
}

/* ---- header fields ---- */

static void test_fields(void **state)
{
    (void)state;
    OK(GET("X: a\r\nY: b"));
    BAD(GET("X: a\r\n b"), GH_H1_OBS_FOLD, 400);
    BAD(GET("X: a\r\n\tb"), GH_H1_OBS_FOLD, 400);
    BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", GH_H1_OBS_FOLD, 400); /* before the first field */
    BAD(GET("X : a"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X\t: a"), GH_H1_BAD_FIELD, 400);
    BAD(GET(": a"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X Y: a"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X(Y): a"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X/Y: a"), GH_H1_BAD_FIELD, 400);
    BAD(GET("\xc3\xa9: a"), GH_H1_BAD_FIELD, 400);
    BAD(GET("Host : a"), GH_H1_BAD_FIELD, 400);
    /* '_' is a tchar: the parser takes it (the gateway drops such names later) */
    OK(GET("X_Forwarded_For: a"));
    assert_header(1, "X_Forwarded_For", "a");
    OK(GET("!#$%&'*+-.^_`|~09azAZ: a:b"));
    assert_header(1, "!#$%&'*+-.^_`|~09azAZ", "a:b");
}

static void test_field_values(void **state)
{
    (void)state;
    OK(GET("A:  \t a \t b \t \r\nB:\tx\r\nC: \t \r\nD:y\r\nE: caf\xc3\xa9"));
    assert_int_equal(req.n_headers, 6);
    assert_header(1, "A", "a \t b"); /* OWS trimmed both sides, inner whitespace kept */
    assert_header(2, "B", "x");
    assert_header(3, "C", "");
    assert_header(4, "D", "y");
    assert_header(5, "E", "caf\xc3\xa9"); /* obs-text is allowed in values */
    OK(GET("X: a\tb"));
    BAD(GET("X: a\x01"
            "b"),
        GH_H1_BAD_FIELD, 400);
    BAD(GET("X: a\x1f"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X: \x0b"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X: a\x7f"), GH_H1_BAD_FIELD, 400);
    BAD(GET("X: \x1b[31m"), GH_H1_BAD_FIELD, 400);
}

static void test_header_count(void **state)
{
    const struct gh_h1_limits three = {.head_bytes = 8192, .header_count = 3, .target_bytes = 64};
    const struct gh_h1_limits huge = {
        .head_bytes = 1 << 20, .header_count = 5000, .target_bytes = 64};
    static const char ok3[] = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n";
    static const char bad4[] = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n";
    int status = -1;
    char *head, *p;
    (void)state;
    assert_int_equal(parse_lim(ok3, sizeof ok3 - 1, &three, &status), sizeof ok3 - 1);
    assert_int_equal(req.n_headers, 3);
    bad_lim_at(bad4, sizeof bad4 - 1, &three, GH_H1_TOO_MANY_HEADERS, 431, __LINE__);
    /* refused when the field past the limit is read, before the head ends */
    bad_lim_at(bad4, sizeof bad4 - 3, &three, GH_H1_TOO_MANY_HEADERS, 431, __LINE__);

    /* a limit above the result's room is the room: GH_H1_MAX_HEADERS fields, never one more */
    head = p = malloc(64 + (GH_H1_MAX_HEADERS + 1) * 16);
    assert_non_null(head);
    p += sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < GH_H1_MAX_HEADERS; i++)
        p += sprintf(p, "H%d: v\r\n", i);
    p += sprintf(p, "\r\n");
    assert_int_equal(parse_lim(head, (size_t)(p - head), &huge, &status), p - head);
    assert_int_equal(req.n_headers, GH_H1_MAX_HEADERS);
    sprintf(p - 2, "Z: v\r\n\r\n");
    bad_lim_at(head, (size_t)(p - head) + 6, &huge, GH_H1_TOO_MANY_HEADERS, 431, __LINE__);
    assert_int_equal(req.n_headers, GH_H1_MAX_HEADERS);
    free(head);
}

/* ---- targets ---- */

static void test_targets(void **state)
{
    (void)state;
    OK(HEAD("GET /a/b?c=d&e HTTP/1.1", ""));
    OK(HEAD("GET //a HTTP/1.1", ""));
    OK(HEAD("GET /a{|}\"<>^`\\ HTTP/1.1", "")); /* visible ASCII; the gateway reduces it */
    BAD(HEAD("GET /a#f HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET /\xc3\xa9 HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET /\x01 HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET /\x7f HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET a/b HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET ?a HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET /a b HTTP/1.1", ""), GH_H1_BAD_REQUEST_LINE, 400);
}

static void test_absolute_form(void **state)
{
    (void)state;
    OK(HEAD("GET http://example.com/a?b HTTP/1.1", ""));
    assert_span(req.target, req.target_len, "http://example.com/a?b"); /* kept as sent */
    OK(HEAD("GET HTTPS://Example.COM:8443 HTTP/1.1", ""));
    OK(HEAD("GET http://example.com?q HTTP/1.1", ""));
    OK(HEAD("GET http://[::1]:80/ HTTP/1.1", ""));
    OK(HEAD("GET http://192.0.2.1/ HTTP/1.1", ""));
    BAD(HEAD("GET http:// HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET http:///a HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET http://user@example.com/ HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET http://example.com:8x/ HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET ftp://example.com/ HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET http:/example.com/ HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("GET http://[::1/ HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
}

static void test_authority_and_asterisk_forms(void **state)
{
    (void)state;
    OK(HEAD("CONNECT example.com:443 HTTP/1.1", ""));
    assert_span(req.target, req.target_len, "example.com:443");
    OK(HEAD("CONNECT [::1]:443 HTTP/1.1", ""));
    BAD(HEAD("GET example.com:443 HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("CONNECT example.com HTTP/1.1", ""), GH_H1_BAD_TARGET, 400); /* the port is due */
    BAD(HEAD("CONNECT / HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("CONNECT http://example.com:443/ HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("connect example.com:443 HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);

    OK(HEAD("OPTIONS * HTTP/1.1", ""));
    OK(HEAD("OPTIONS /a HTTP/1.1", ""));
    BAD(HEAD("GET * HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("OPTIONS *a HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
    BAD(HEAD("OPTIONS ** HTTP/1.1", ""), GH_H1_BAD_TARGET, 400);
}

/* "GET /xxx... HTTP/1.1\r\nHost: a\r\n\r\n" with a target of `n` bytes; the caller frees it. */
static char *head_with_target(size_t n, size_t *len)
{
    char *head = malloc(n + 64), *p = head;

    assert_non_null(head);
    p += sprintf(p, "GET /");
    memset(p, 'x', n - 1);
    p += n - 1;
    p += sprintf(p, " HTTP/1.1\r\nHost: a\r\n\r\n");
    *len = (size_t)(p - head);
    return head;
}

static void test_target_length(void **state)
{
    const struct gh_h1_limits lim = {.head_bytes = 8192, .header_count = 10, .target_bytes = 100};
    int status = -1;
    size_t len;
    char *head;
    (void)state;
    head = head_with_target(100, &len);
    assert_int_equal(parse_lim(head, len, &lim, &status), len);
    assert_int_equal(req.target_len, 100);
    free(head);
    head = head_with_target(101, &len);
    bad_lim_at(head, len, &lim, GH_H1_TARGET_TOO_LONG, 414, __LINE__);
    /* known as soon as the 101st byte of the target is there */
    bad_lim_at(head, 4 + 101, &lim, GH_H1_TARGET_TOO_LONG, 414, __LINE__);
    assert_int_equal(parse_lim(head, 4 + 100, &lim, &status), 0);
    free(head);
    /* a target beyond the head's size is the head's problem first */
    head = head_with_target(9000, &len);
    bad_lim_at(head, len, &(struct gh_h1_limits){8192, 10, 20000}, GH_H1_HEAD_TOO_LARGE, 431,
               __LINE__);
    free(head);
}

/* A request head of exactly `n` bytes (n >= 48), padded in one field; the caller frees it. */
static char *head_of_size(size_t n)
{
    static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nPad: ", end[] = "\r\n\r\n";
    char *head = malloc(n);

    assert_non_null(head);
    memcpy(head, start, sizeof start - 1);
    memset(head + sizeof start - 1, 'p', n - (sizeof start - 1) - (sizeof end - 1));
    memcpy(head + n - (sizeof end - 1), end, sizeof end - 1);
    return head;
}

static void test_head_size(void **state)
{
    const struct gh_h1_limits lim = {.head_bytes = 1000, .header_count = 10, .target_bytes = 100};
    int status = -1;
    char *head;
    (void)state;
    head = head_of_size(1000);
    assert_int_equal(parse_lim(head, 1000, &lim, &status), 1000);
    assert_int_equal(status, 0);
    free(head);
    head = head_of_size(1001);
    bad_lim_at(head, 1001, &lim, GH_H1_HEAD_TOO_LARGE, 431, __LINE__);
    free(head);
    /* known as soon as byte 1001 arrives without the head having ended */
    head = head_of_size(1500);
    bad_lim_at(head, 1001, &lim, GH_H1_HEAD_TOO_LARGE, 431, __LINE__);
    assert_int_equal(parse_lim(head, 1000, &lim, &status), 0);
    free(head);
    /* a head within the limit followed by more bytes is no large head */
    head = head_of_size(1000);
    head = realloc(head, 1500);
    assert_non_null(head);
    memset(head + 1000, 'z', 500);
    assert_int_equal(parse_lim(head, 1500, &lim, &status), 1000);
    /* and an error inside the limit wins over the size */
    head[20] = '\n';
    bad_lim_at(head, 1500, &lim, GH_H1_BAD_LINE_END, 400, __LINE__);
    free(head);
}

/* ---- Host ---- */

static void test_host(void **state)
{
    (void)state;
    OK("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    BAD("GET / HTTP/1.1\r\n\r\n", GH_H1_NO_HOST, 400);
    BAD("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", GH_H1_NO_HOST, 400);
    OK("GET / HTTP/1.1\r\nhOsT: example.com\r\n\r\n");
    OK("GET / HTTP/1.0\r\n\r\n");
    OK("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", GH_H1_MANY_HOSTS, 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", GH_H1_MANY_HOSTS, 400);
    BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", GH_H1_MANY_HOSTS, 400);
    /* RFC 9112 3.2: empty when the target has no authority */
    OK("GET / HTTP/1.1\r\nHost:\r\n\r\n");
    assert_non_null(req.host);
    assert_int_equal(req.host_len, 0);
    OK("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert_span(req.host, req.host_len, "[::1]:8080");
    OK("GET / HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n");
    OK("GET / HTTP/1.1\r\nHost: example.com:65535\r\n\r\n");
    OK("GET / HTTP/1.1\r\nHost: a-b_c~d.%41!$&'()*+,;=\r\n\r\n");
    OK("GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: example.com:80a\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: example.com:65536\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: %4\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", GH_H1_BAD_HOST, 400);
    BAD("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", GH_H1_BAD_HOST, 400);
    OK("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"); /* sub-delims are reg-name's; matches no route */
}

/* ---- Content-Length ---- */

static void test_content_length(void **state)
{
    (void)state;
    OK(GET("Content-Length: 5"));
    assert_int_equal(req.content_length, 5);
    OK(GET("Content-Length:  5 "));
    assert_int_equal(req.content_length, 5);
    OK(GET("content-length: 0"));
    assert_int_equal(req.content_length, 0);
    OK(GET("Content-Length: 007"));
    assert_int_equal(req.content_length, 7);
    OK(GET("Content-Length: 4611686018427387904")); /* 2^62, the largest taken */
    assert_int_equal(req.content_length, (int64_t)1 << 62);
    BAD(GET("Content-Length: 4611686018427387905"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 99999999999999999999999"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: +5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: -5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5,5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5, 5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5 5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 0x5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5.0"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length:"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5\r\nContent-Length: 5"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5\r\nContent-Length: 6"), GH_H1_BAD_LENGTH, 400);
    BAD(GET("Content-Length: 5\r\ncontent-length: 5"), GH_H1_BAD_LENGTH, 400);
}

/* ---- Transfer-Encoding ---- */

static void test_transfer_encoding(void **state)
{
    (void)state;
    OK(GET("Transfer-Encoding: chunked"));
    assert_int_equal(req.chunked, 1);
    assert_int_equal(req.content_length, -1);
    OK(GET("Transfer-Encoding: CHUNKED"));
    assert_int_equal(req.chunked, 1);
    OK(GET("transfer-encoding: \t chunked \t"));
    assert_int_equal(req.chunked, 1);
    /* codings we do not implement before the final chunked: 501 (RFC 9112 6.1) */
    BAD(GET("Transfer-Encoding: gzip, chunked"), GH_H1_BAD_CODING, 501);
    BAD(GET("Transfer-Encoding: gzip;q=1 , chunked"), GH_H1_BAD_CODING, 501);
    /* chunked not last, not once, or a list that is not one: 400 (RFC 9112 6.1, 6.3) */
    BAD(GET("Transfer-Encoding: chunked, chunked"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: chunked, gzip"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: identity"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: gzip"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: chunked;a=b"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: chunked,"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: ,chunked"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: chunk ed"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: \"chunked\""), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: xchunked"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding:"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"), GH_H1_BAD_CODING, 400);
    BAD(GET("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"), GH_H1_BAD_CODING, 400);
    /* HTTP/1.0 has no transfer codings */
    OK("POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n");
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", GH_H1_BAD_CODING, 400);
}

static void test_length_and_chunked(void **state)
{
    (void)state;
    OK(GET("Content-Length: 5"));
    OK(GET("Transfer-Encoding: chunked"));
    BAD(GET("Content-Length: 5\r\nTransfer-Encoding: chunked"), GH_H1_LENGTH_AND_CHUNKED, 400);
    BAD(GET("Transfer-Encoding: chunked\r\nContent-Length: 5"), GH_H1_LENGTH_AND_CHUNKED, 400);
    BAD(GET("Transfer-Encoding: chunked\r\nContent-Length: 0"), GH_H1_LENGTH_AND_CHUNKED, 400);
}

/* ---- what the head says about the connection ---- */

static void test_expect(void **state)
{
    (void)state;
    OK(GET("Expect: 100-continue"));
    assert_int_equal(req.expect_continue, 1);
    assert_int_equal(req.expect_other, 0);
    OK(GET("Expect:  100-Continue "));
    assert_int_equal(req.expect_continue, 1);
    OK(GET("Expect: 100-continue-please"));
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(req.expect_other, 1);
    OK(GET("Expect: 100-continue, x"));
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(req.expect_other, 1);
    /* RFC 9110 10.1.1: a 1.0 request's 100-continue is ignored */
    OK("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(req.expect_other, 0);
}

static void test_keep_alive(void **state)
{
    (void)state;
    OK(GET("X: y"));
    assert_int_equal(req.keep_alive, 1);
    OK(GET("Connection: close"));
    assert_int_equal(req.keep_alive, 0);
    OK(GET("Connection: Upgrade,  CLOSE "));
    assert_int_equal(req.keep_alive, 0);
    OK(GET("Connection: keep-alive\r\nConnection: close"));
    assert_int_equal(req.keep_alive, 0);
    OK(GET("Connection: closed"));
    assert_int_equal(req.keep_alive, 1);
    OK("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(req.keep_alive, 0);
    OK("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_int_equal(req.keep_alive, 1);
    OK("GET / HTTP/1.0\r\nConnection: te, keep-alive\r\n\r\n");
    assert_int_equal(req.keep_alive, 1);
    OK("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_int_equal(req.keep_alive, 0);
}

static void test_upgrade(void **state)
{
    (void)state;
    OK(GET("Connection: Upgrade"));
    assert_int_equal(req.upgrade, 0);
    OK(GET("Upgrade: h2c"));
    assert_int_equal(req.upgrade, 1);
    OK(GET("upgrade: websocket"));
    assert_int_equal(req.upgrade, 1);
}

/* ---- however the bytes arrive ---- */

static void test_every_prefix_is_incomplete(void **state)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\nPOST /x?y HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 3\r\nX:  v \r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost:\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    };
    int status = -1;
    (void)state;
    for (size_t i = 0; i < COUNT(heads); i++) {
        size_t len = strlen(heads[i]);
        for (size_t k = 0; k < len; k++) {
            char *part = exact_copy(heads[i], k);
            assert_int_equal(gh_h1_parse_request(part, k, &limits, &req, &status), 0);
            assert_int_equal(status, 0);
            free(part);
        }
        assert_int_equal(parse_lim(heads[i], len, &limits, &status), len);
    }
}

/* The caller's way: one buffer that grows by one byte per read; flags and slices are the same
 * as when the head is parsed at once. */
static void test_byte_by_byte_equals_whole(void **state)
{
    static const char *const heads[] = {
        ("POST http://a/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Expect: 100-continue\r\nConnection: close\r\nUpgrade: x\r\n\r\nbody"),
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 12\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n",
    };
    static struct gh_h1_request whole;
    (void)state;
    for (size_t i = 0; i < COUNT(heads); i++) {
        size_t len = strlen(heads[i]);
        char *buf = exact_copy(heads[i], len), *grow = NULL;
        int st_whole = -1, st = -1;
        long r_whole = gh_h1_parse_request(buf, len, &limits, &whole, &st_whole), r = 0;
        size_t k = 0;
        while (r == 0 && k < len) {
            grow = realloc(grow, ++k);
            assert_non_null(grow);
            grow[k - 1] = heads[i][k - 1];
            r = gh_h1_parse_request(grow, k, &limits, &req, &st);
        }
        assert_int_equal(r, r_whole);
        assert_int_equal(st, st_whole);
        if (r > 0) {
            assert_int_equal(k, r); /* complete on its last byte, not later */
            assert_int_equal(req.n_headers, whole.n_headers);
            assert_int_equal(req.method - grow, whole.method - buf);
            assert_int_equal(req.target_len, whole.target_len);
            assert_int_equal(req.content_length, whole.content_length);
            assert_int_equal(req.chunked, whole.chunked);
            assert_int_equal(req.expect_continue, whole.expect_continue);
            assert_int_equal(req.keep_alive, whole.keep_alive);
            assert_int_equal(req.upgrade, whole.upgrade);
            for (size_t h = 0; h < req.n_headers; h++) {
                assert_int_equal(req.headers[h].value - grow, whole.headers[h].value - buf);
                assert_int_equal(req.headers[h].value_len, whole.headers[h].value_len);
            }
        }
        free(grow);
        free(buf);
    }
}

/* ---- the error table and the helper ---- */

static void test_error_names_and_messages(void **state)
{
    (void)state;
    for (int e = 0; e < GH_H1_ERROR_COUNT; e++) {
        const char *name = gh_h1_error_name((enum gh_h1_error)e);
        assert_non_null(name);
        assert_non_null(gh_h1_error_message((enum gh_h1_error)e));
        assert_true(strlen(gh_h1_error_message((enum gh_h1_error)e)) > 10);
        for (int f = 0; f < e; f++)
            assert_string_not_equal(name, gh_h1_error_name((enum gh_h1_error)f));
    }
    assert_string_equal(gh_h1_error_name(GH_H1_BAD_LINE_END), "bad_line_end");
    assert_string_equal(gh_h1_error_name(GH_H1_OBS_FOLD), "obs_fold");
    assert_non_null(gh_h1_error_name(GH_H1_ERROR_COUNT));
    assert_non_null(gh_h1_error_message((enum gh_h1_error) - 1));
}

static void test_lower(void **state)
{
    char s[] = "Content-TYPE: X_1~";
    (void)state;
    gh_h1_lower(s, 12);
    assert_string_equal(s, "content-type: X_1~");
    gh_h1_lower(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_empty_input_without_bytes),
        cmocka_unit_test(test_pipelined_bytes_not_consumed),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_empty_lines_before),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_line_ends_refused_early),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_field_values),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_authority_and_asterisk_forms),
        cmocka_unit_test(test_target_length),
        cmocka_unit_test(test_head_size),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_length_and_chunked),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_every_prefix_is_incomplete),
        cmocka_unit_test(test_byte_by_byte_equals_whole),
        cmocka_unit_test(test_error_names_and_messages),
        cmocka_unit_test(test_lower),
    };
    return cmocka_run_group_tests(tests, NULL, free_parsed);
}
