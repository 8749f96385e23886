// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the request-head parser (gh_h1_parse_request in src/http/h1parse.c), the
 * first code to read a client's bytes. It must not read outside what it is given, and what it
 * hands back must stay inside it: a head length within the input, every slice inside the head.
 * Its verdict must not depend on how TCP cut the bytes: fed a prefix first (cut where the first
 * input byte says) it must say "more" or what it says about the whole input. A head it takes
 * must keep the promises the front end builds on (one framing, a Host in HTTP/1.1, trimmed
 * values without CR, LF or NUL, within the limits), and every refusal must carry one of the
 * statuses it may answer. Any broken property aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* small enough that inputs of a few KiB reach 414, 431 and the field count */
static const struct gh_h1_limits limits = {
    .head_bytes = 2048, .header_count = 24, .target_bytes = 256};

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_h1request: %s\n", what);
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
    return p != NULL && a >= lo && len <= size && a - lo <= size - len;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_status(long r, int status)
{
    if (r >= 0 && status != 0)
        fail("a status set without a refusal");
    if (r < 0 && status != 400 && status != 414 && status != 431 && status != 501 && status != 505)
        fail("a refusal without a status it may answer");
    if (r < 0 && -r >= GH_H1_ERROR_COUNT)
        fail("a refusal outside enum gh_h1_error");
}

static void check_fields(const struct gh_h1_request *req, const char *buf, size_t head)
{
    if (req->n_headers > limits.header_count)
        fail("more header fields than the limit");
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct gh_h1_header *h = &req->headers[i];
        if (h->name_len == 0 || memchr(h->name, ':', h->name_len) != NULL)
            fail("an empty header name or one holding a colon");
        if (!inside(h->name, h->name_len, buf, head) || !inside(h->value, h->value_len, buf, head))
            fail("a header name or value outside the head");
        if (h->value_len && (is_ows(h->value[0]) || is_ows(h->value[h->value_len - 1])))
            fail("a header value not trimmed");
        if (memchr(h->value, '\r', h->value_len) || memchr(h->value, '\n', h->value_len) ||
            memchr(h->value, '\0', h->value_len))
            fail("a header value holding CR, LF or NUL");
    }
}

/* What a head the parser took promises the front end. */
static void check_head(const struct gh_h1_request *req, const char *buf, size_t head)
{
    if (head > limits.head_bytes || head < 16)
        fail("a head longer than the limit or shorter than \"M / HTTP/1.0\\r\\n\\r\\n\"");
    if (memcmp(buf + head - 4, "\r\n\r\n", 4) != 0)
        fail("a head not ending with CRLF CRLF");
    if (req->minor_version != 0 && req->minor_version != 1)
        fail("minor version not 0 or 1");
    if (!inside(req->method, req->method_len, buf, head) || req->method_len == 0 ||
        !inside(req->target, req->target_len, buf, head) || req->target_len == 0)
        fail("method or target empty or outside the head");
    if (req->target_len > limits.target_bytes)
        fail("a target longer than the limit");
    if (req->minor_version == 1 && req->host == NULL)
        fail("HTTP/1.1 without Host");
    if (req->host != NULL && !inside(req->host, req->host_len, buf, head))
        fail("Host outside the head");
    if (req->content_length >= 0 && req->chunked)
        fail("two framings taken at once");
    if (req->content_length < -1 || (req->chunked && req->minor_version == 0))
        fail("a framing that cannot be");
    check_fields(req, buf, head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gh_h1_request req;                              /* ~40 KiB: kept off the stack */
    size_t split = size ? (size_t)data[0] * (size + 1) / 256 : 0; /* 0..size */
    char *buf = exact_copy(data, size), *part = exact_copy(data, split);
    int status = -1, part_status = -1;
    long r, r_part;

    r_part = gh_h1_parse_request(part, split, &limits, &req, &part_status);
    check_status(r_part, part_status);
    if (r_part > (long)split)
        fail("a head longer than the input");
    r = gh_h1_parse_request(buf, size, &limits, &req, &status);
    check_status(r, status);
    if (r > (long)size)
        fail("a head longer than the input");
    if (r_part != 0 && (r_part != r || part_status != status))
        fail("a prefix gave another verdict than the whole input");
    if (r > 0) {
        size_t head = (size_t)r;
        check_head(&req, buf, head);
        /* the head alone is complete, and one byte less of it is not */
        if (gh_h1_parse_request(buf, head, &limits, &req, &status) != r)
            fail("the head alone parses differently");
        if (gh_h1_parse_request(buf, head - 1, &limits, &req, &status) != 0)
            fail("a head less its last byte is not incomplete");
    }
    free(part);
    free(buf);
    return 0;
}
