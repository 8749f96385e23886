// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the HTTP/1.1 pieces that read upstream bytes (src/http/h1parse.c):
 * the response-head parser and the in-place chunked decoder. An upstream is not trusted, so
 * neither may read outside what it is given, and what they hand back must stay inside it: a head
 * length within the input, header and reason pointers into the head, a decoder that never writes
 * more than it read. The decoder must also not care how the bytes arrive, or a body would depend
 * on TCP segmentation: fed in two fragments (split where the first input byte says) it must give
 * what it gives fed at once. Any broken property aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_h1response: %s\n", what);
    abort();
}

/* An exact-size heap copy: AddressSanitizer then sees a single byte read too many. (At least one
 * byte, so that an empty input still has a valid pointer to offset.) */
static char *exact_copy(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        fail("out of memory");
    if (size)
        memcpy(copy, data, size);
    return copy;
}

/* [p, p + len) lies inside [start, start + size); compared as integers, since pointers into
 * different objects may not be compared in C. */
static int inside(const char *p, size_t len, const char *start, size_t size)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)start;
    return a >= lo && len <= size && a - lo <= size - len;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_head(const uint8_t *data, size_t size)
{
    static struct gh_h1_response res; /* a few KiB: kept off the stack */
    char *buf = exact_copy(data, size);
    long n = gh_h1_parse_response(buf, size, &res);

    if (n < -1 || n > (long)size)
        fail("head length outside -1..size");
    if (n > 0) {
        size_t head = (size_t)n;
        if (head < 16)
            fail("a head shorter than \"HTTP/1.x NNN\\r\\n\\r\\n\"");
        if (res.minor_version != 0 && res.minor_version != 1)
            fail("minor version not 0 or 1");
        if (res.status < 100 || res.status > 999)
            fail("status outside 100..999");
        if (!inside(res.reason, res.reason_len, buf, head))
            fail("reason outside the head");
        if (res.n_headers > sizeof res.headers / sizeof res.headers[0])
            fail("more headers than the result holds");
        for (size_t i = 0; i < res.n_headers; i++) {
            const struct gh_h1_header *h = &res.headers[i];
            if (h->name_len == 0)
                fail("empty header name");
            if (!inside(h->name, h->name_len, buf, head) ||
                !inside(h->value, h->value_len, buf, head))
                fail("header name or value outside the head");
            if (memchr(h->name, ':', h->name_len) != NULL)
                fail("header name holds a colon");
            if (h->value_len && (is_ows(h->value[0]) || is_ows(h->value[h->value_len - 1])))
                fail("header value not trimmed");
            if (memchr(h->value, '\r', h->value_len) || memchr(h->value, '\n', h->value_len) ||
                memchr(h->value, '\0', h->value_len))
                fail("header value holds CR, LF or NUL");
        }
        if (memcmp(buf + head - 4, "\r\n\r\n", 4) != 0)
            fail("head does not end with CRLF CRLF");
        /* the head alone is complete, and one byte less of it is not */
        if (gh_h1_parse_response(buf, head, &res) != n)
            fail("the head alone parses differently");
        if (gh_h1_parse_response(buf, head - 1, &res) != 0)
            fail("a head less its last byte is not incomplete");
    }
    free(buf);
}

/* The body bytes one decode call gave, appended to `out` at `*out_len`. */
static void take(char *out, size_t *out_len, const char *bytes, size_t len)
{
    if (len) {
        memcpy(out + *out_len, bytes, len);
        *out_len += len;
    }
}

/* One call with the output checks every call must pass. */
static int decode(struct gh_h1_chunked *c, char *bytes, size_t n, size_t *len, size_t *used)
{
    int rc;

    *len = n;
    *used = (size_t)-1;
    rc = gh_h1_chunked_decode(c, bytes, len, used);
    if (rc < -1 || rc > 1)
        fail("chunked decode returned an undocumented code");
    if (rc >= 0) {
        if (*len > n || *used > n)
            fail("chunked decode gave or used more than its input");
        if (*len > *used)
            fail("chunked decode gave more body bytes than it consumed");
        if (rc == 0 && *used != n)
            fail("chunked decode wants more input but did not consume all");
    }
    return rc;
}

static void check_chunked(const uint8_t *data, size_t size)
{
    char *once = exact_copy(data, size), *split_buf = exact_copy(data, size);
    char *out_once = exact_copy(data, size), *out_split = exact_copy(data, size);
    size_t split = size ? (size_t)data[0] * (size + 1) / 256 : 0; /* 0..size */
    size_t once_len = 0, once_used = 0, split_len = 0, split_used = 0, len, used;
    struct gh_h1_chunked c1 = {0}, c2 = {0};
    int rc_once, rc_split;

    rc_once = decode(&c1, once, size, &len, &used);
    if (rc_once >= 0) {
        take(out_once, &once_len, once, len);
        once_used = used;
    }

    rc_split = decode(&c2, split_buf, split, &len, &used);
    if (rc_split >= 0) {
        take(out_split, &split_len, split_buf, len);
        split_used = used;
    }
    if (rc_split == 0) {
        rc_split = decode(&c2, split_buf + split, size - split, &len, &used);
        if (rc_split >= 0) {
            take(out_split, &split_len, split_buf + split, len);
            split_used += used;
        }
    }

    if (rc_once != rc_split)
        fail("fragmenting the input changed the outcome");
    if (rc_once >= 0) {
        if (once_used != split_used)
            fail("fragmenting the input changed what was consumed");
        if (once_len != split_len || (once_len && memcmp(out_once, out_split, once_len) != 0))
            fail("fragmenting the input changed the body");
    }
    free(out_split);
    free(out_once);
    free(split_buf);
    free(once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_head(data, size);
    check_chunked(data, size);
    return 0;
}
