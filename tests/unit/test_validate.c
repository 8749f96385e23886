// SPDX-License-Identifier: Apache-2.0
/*
 * The field rules of SPEC §1 (src/store/validate.c), table by table: each rule has cases on both
 * sides of it and at its boundaries, so a rule that starts refusing everything fails as surely as
 * one that lets something through. Every refusal is also checked for a one-line message that names
 * the rule (the substring in the table) and never echoes secrets or unbounded input. Inputs that
 * come from requests (names, request paths) are copied into buffers of their exact length without
 * a terminator, so the ASan build catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/validate.h"

#define WHY_CAP 256

/* A refusal (`ok` 0) must carry a message containing `why` when it is not NULL. */
struct str_case {
    const char *in;
    int ok;
    const char *why;
};

static size_t n_cases; /* counted across all tables, printed at the end */

/* One line, not empty, NUL-terminated within the buffer, and naming the rule. */
static void check_message(const char *what, const char *in, const char *why, const char *expect)
{
    size_t len = strnlen(why, WHY_CAP);
    if (len == 0 || len >= WHY_CAP - 1 || strchr(why, '\n') != NULL)
        fail_msg("%s \"%s\": bad message \"%s\"", what, in, why);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] == 0x7f)
            fail_msg("%s \"%s\": control byte in message", what, in);
    if (expect != NULL && strstr(why, expect) == NULL)
        fail_msg("%s \"%s\": message \"%s\" lacks \"%s\"", what, in, why, expect);
}

typedef int (*str_rule)(const char *in, char *why, size_t cap);

static void run_str_cases(const char *what, str_rule rule, const struct str_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[WHY_CAP];
        memset(why, 'x', sizeof why); /* success must clear it */
        int rc = rule(cases[i].in, why, sizeof why);
        const char *shown = cases[i].in != NULL ? cases[i].in : "(null)";
        if (cases[i].ok) {
            if (rc != GH_OK)
                fail_msg("%s \"%s\" refused: %s", what, shown, why);
            assert_int_equal(why[0], '\0');
        } else {
            if (rc != GH_ERR_INVALID_ARG)
                fail_msg("%s \"%s\" accepted (rc %d)", what, shown, rc);
            check_message(what, shown, why, cases[i].why);
        }
        n_cases++;
    }
}

#define RUN(what, rule, table) run_str_cases(what, rule, table, sizeof table / sizeof table[0])

/* A string of `len` bytes: `head`, then `fill` up to the length. */
static char *repeat(const char *head, char fill, size_t len)
{
    char *s = malloc(len + 1);
    size_t hl = strlen(head);
    assert_non_null(s);
    memset(s, fill, len);
    memcpy(s, head, hl < len ? hl : len);
    s[len] = '\0';
    return s;
}

/* ---- collection paths ---- */

static const struct str_case collection_paths[] = {
    {"/orders", 1, NULL},
    {"/orders/v1", 1, NULL},
    {"/a", 1, NULL},
    {"/A-Z_a.z~0-9", 1, NULL},
    {"/v1.2", 1, NULL},
    {"/...", 1, NULL}, /* three dots is a name, not a dot segment */
    {"/.well-known", 1, NULL},
    {"/~user/a/b/c/d", 1, NULL},
    {NULL, 0, "must start with '/'"},
    {"", 0, "a collection path must start with '/'"},
    {"orders", 0, "a collection path must start with '/'"},
    {"\\orders", 0, "must start with '/'"},
    {"/", 0, "at least one segment"},
    {"/orders/", 0, "must not end with '/'"},
    {"//orders", 0, "segment 1 of the collection path is empty"},
    {"/orders//v1", 0, "segment 2 of the collection path is empty"},
    {"/orders/v 1", 0, "segment 2 of the collection path has a character outside [A-Za-z0-9._~-]"},
    {"/orders%20v1", 0, "outside [A-Za-z0-9._~-]"},
    {"/orders?x=1", 0, "outside [A-Za-z0-9._~-]"},
    {"/orders#x", 0, "outside [A-Za-z0-9._~-]"},
    {"/ord:ers", 0, "outside [A-Za-z0-9._~-]"},
    {"/orders/*", 0, "segment 2"},
    {"/orders/:id", 0, "segment 2"},
    {"/Z\xc3\xbcrich", 0, "outside [A-Za-z0-9._~-]"},
    {"/a\tb", 0, "outside [A-Za-z0-9._~-]"},
    {"/a;b", 0, "outside"},
    {"/a@b", 0, "outside"},
    {"/a\\b", 0, "outside"},
    {"/./a", 0, "segment 1 of the collection path is '.' or '..'"},
    {"/a/..", 0, "segment 2 of the collection path is '.' or '..'"},
    {"/a/.", 0, "'.' or '..'"},
};

static void test_collection_paths(void **state)
{
    (void)state;
    RUN("collection path", gh_validate_collection_path, collection_paths);
}

static void test_collection_path_length(void **state)
{
    char why[WHY_CAP];
    char *at = repeat("/", 'a', 255), *over = repeat("/", 'a', 256);
    char *segs = repeat("/", 'b', 255);
    (void)state;
    for (size_t i = 2; i < 255; i += 2) /* "/b/b/b..." at exactly 255 bytes */
        segs[i] = '/';
    segs[254] = 'b';
    assert_int_equal(gh_validate_collection_path(at, why, sizeof why), GH_OK);
    assert_int_equal(gh_validate_collection_path(segs, why, sizeof why), GH_OK);
    assert_int_equal(gh_validate_collection_path(over, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("collection path", "256 bytes", why, "at most 255 bytes");
    n_cases += 3;
    free(at);
    free(over);
    free(segs);
}

/* ---- overlapping collection paths ---- */

static void test_paths_overlap(void **state)
{
    static const struct {
        const char *a, *b;
        int overlap;
    } cases[] = {
        {"/a", "/a/b", 1},         {"/a/b", "/a", 1},
        {"/a", "/a", 1},           {"/orders/v1", "/orders/v1/items", 1},
        {"/a/b/c", "/a/b", 1},     {"/", "/a", 1},
        {"/a", "/ab", 0},          {"/ab", "/a", 0},
        {"/a/b", "/a/c", 0},       {"/orders/v1", "/orders/v10", 0},
        {"/Orders", "/orders", 0}, {"/a-b", "/a", 0},
        {"/a.b", "/a", 0},         {"/x", "/y", 0},
        {NULL, "/a", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (gh_paths_overlap(cases[i].a, cases[i].b) != cases[i].overlap)
            fail_msg("overlap(\"%s\", \"%s\") should be %d", cases[i].a ? cases[i].a : "(null)",
                     cases[i].b, cases[i].overlap);
        n_cases++;
    }
}

/* ---- upstream URLs ---- */

static const struct str_case upstreams[] = {
    {"http://example.com", 1, NULL},
    {"https://example.com", 1, NULL},
    {"http://example.com/", 1, NULL},
    {"https://api.internal:8443/base/v2", 1, NULL},
    {"http://127.0.0.1:8080", 1, NULL},
    {"http://[::1]:9000/x", 1, NULL},
    {"http://[2001:db8::1]", 1, NULL},
    {"https://my_service:80/", 1, NULL},
    {"http://localhost:1", 1, NULL},
    {"http://localhost:65535/", 1, NULL},
    {"https://example.com/a/b%20c/", 1, NULL},
    {"https://example.com/a;v=1/@x/~y/", 1, NULL},
    {"http://EXAMPLE.com", 1, NULL},
    {"http://example.com./", 1, NULL},
    {"http://a-b.c-d.example/...", 1, NULL},
    {NULL, 0, "must not be empty"},
    {"", 0, "must not be empty"},
    {"example.com", 0, "must start with http:// or https://"},
    {"ftp://example.com", 0, "must start with http:// or https://"},
    {"file:///etc/passwd", 0, "must start with http:// or https://"},
    {"HTTP://example.com", 0, "lower case"},
    {"https:/example.com", 0, "must start with http:// or https://"},
    {"https:example.com", 0, "must start with http:// or https://"},
    {"//example.com", 0, "must start with http:// or https://"},
    {"http://", 0, "has no host"},
    {"http:///path", 0, "has no host"},
    {"http://:80", 0, "has no host"},
    {"http://user@example.com", 0, "user name or password"},
    {"http://user:hunter2@example.com/", 0, "user name or password"},
    {"http://example.com?x=1", 0, "must not have a query"},
    {"http://example.com/?", 0, "must not have a query"},
    {"http://example.com/#top", 0, "must not have a fragment"},
    {"http://evil.example#@good.example/", 0, "fragment"},
    {"http://example.com:0", 0, "port must be a decimal from 1 to 65535"},
    {"http://example.com:65536", 0, "port"},
    {"http://example.com:", 0, "port"},
    {"http://example.com:-1", 0, "port"},
    {"http://example.com:+80", 0, "port"},
    {"http://example.com:080", 0, "leading zeros"},
    {"http://example.com:99999999999999999999", 0, "port"},
    {"http://example.com:80:81", 0, "port"},
    {"http://exa mple.com", 0, "whitespace or a control character at byte 10"},
    {" http://example.com", 0, "whitespace"},
    {"http://example.com/\n", 0, "control character"},
    {"http://example.com\t", 0, "control character"},
    {"http://example.com/\x7f", 0, "control character"},
    {"http://ex\xc3\xa4mple.com", 0, "non-ASCII"},
    {"http://example.com/a\\b", 0, "backslash"},
    {"https://example.com\\@evil.example", 0, "backslash"},
    {"http://[::1", 0, "closing ']'"},
    {"http://[fe80::1%25eth0]/", 0, "not an IPv6 address"},
    {"http://[1.2.3.4]", 0, "not an IPv6 address"},
    {"http://[]", 0, "not an IPv6 address"},
    {"http://[::1]x", 0, "other than a port"},
    {"http://[::1]:", 0, "port"},
    {"http://::1/", 0, "has no host"},
    {"http://example..com", 0, "empty label"},
    {"http://.example.com", 0, "empty label"},
    {"http://ex%41mple.com", 0, "outside [A-Za-z0-9._-]"},
    {"http://ex!ample.com", 0, "outside [A-Za-z0-9._-]"},
    {"http://2130706433/", 0, "not a dotted-quad"},
    {"http://0x7f.0.0.1/", 0, "not a dotted-quad"},
    {"http://127.1/", 0, "not a dotted-quad"},
    {"http://256.0.0.1/", 0, "not a dotted-quad"},
    {"http://01.2.3.4/", 0, "not a dotted-quad"},
    {"http://example.com/a/../b", 0, "'.' or '..' segment"},
    {"http://example.com/./", 0, "'.' or '..' segment"},
    {"http://example.com/x/..", 0, "'.' or '..' segment"},
    {"http://example.com/%2e%2E/x", 0, "'.' or '..' segment"},
    {"http://example.com/%zz", 0, "%XX escape"},
    {"http://example.com/a%2", 0, "%XX escape"},
    {"http://example.com/<x>", 0, "must be percent-encoded"},
    {"http://example.com/a|b", 0, "must be percent-encoded"},
};

static void test_upstreams(void **state)
{
    (void)state;
    RUN("upstream", gh_validate_upstream, upstreams);
}

/* ---- a collection's upstream_ca ---- */

/* A self-signed CA certificate (EC P-256, made with `openssl req -x509` for this test). */
#define CA_BODY                                                                                    \
    "MIIBlzCCAT2gAwIBAgIUCvPZB5/hTt4+K5gdtPrV9mUhoJgwCgYIKoZIzj0EAwIw\n"                           \
    "ITEfMB0GA1UEAwwWZ2F0ZWhvdXNlIHVuaXQgdGVzdCBDQTAeFw0yNjEyMDcxNjI5\n"                           \
    "MzJaFw0zNjEyMDQxNjI5MzJaMCExHzAdBgNVBAMMFmdhdGVob3VzZSB1bml0IHRl\n"                           \
    "c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT/thNvFUPhANfDtg4sYW4x\n"                           \
    "Ouh+wrlF9g75GzVwJNSQ543+7cv7oXlg+wx30aEvRVlyGErkiEXURUtcsxPK2ViG\n"                           \
    "o1MwUTAdBgNVHQ4EFgQUzsD3EzXJFaP+IwBob1WQcXsx27wwHwYDVR0jBBgwFoAU\n"                           \
    "zsD3EzXJFaP+IwBob1WQcXsx27wwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD\n"                           \
    "AgNIADBFAiEApVLw1J9h0PnTXk26UOAF22YbuoURSqW8p6U6IeHX4h4CIBDGNpgq\n"                           \
    "H93VAhrWFJLhZEEyy19LcnWQ3HJwdtWjPL+e\n"
#define CA_PEM "-----BEGIN CERTIFICATE-----\n" CA_BODY "-----END CERTIFICATE-----\n"

static const struct str_case ca_bundles[] = {
    {CA_PEM, 1, NULL},
    {"# a bundle with comments, as distributions write them\n" CA_PEM "\nsecond:\n" CA_PEM, 1,
     NULL},
    {"-----BEGIN CERTIFICATE-----\r\n" CA_BODY "-----END CERTIFICATE-----", 1, NULL},
    {"", 0, "no -----BEGIN CERTIFICATE----- block"},
    {"/etc/ssl/certs/private-ca.pem", 0, "no -----BEGIN CERTIFICATE----- block"},
    {"-----BEGIN PRIVATE KEY-----\n" CA_BODY "-----END PRIVATE KEY-----\n", 0, "private key"},
    {CA_PEM "-----BEGIN EC PRIVATE KEY-----\n" CA_BODY "-----END EC PRIVATE KEY-----\n", 0,
     "block 2 is a private key"},
    {"-----BEGIN PUBLIC KEY-----\n" CA_BODY "-----END PUBLIC KEY-----\n", 0, "not a CERTIFICATE"},
    {"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n", 0,
     "not a valid X.509 certificate"},
    {"-----BEGIN CERTIFICATE-----\n!!!!" CA_BODY "-----END CERTIFICATE-----\n", 0, "not valid PEM"},
    {CA_PEM "-----BEGIN CERTIFICATE-----\n" CA_BODY, 0, "block 2 is not valid PEM"},
};

static void test_ca_bundles(void **state)
{
    (void)state;
    RUN("upstream_ca", gh_validate_ca_bundle, ca_bundles);
}

static void test_upstream_lengths(void **state)
{
    char why[WHY_CAP];
    char *at = repeat("http://example.com/", 'p', 2048);
    char *over = repeat("http://example.com/", 'p', 2049);
    char *label = repeat("http://", 'l', 7 + 64);
    char *host = repeat("http://", 'h', 7 + 254);
    (void)state;
    for (size_t i = 7 + 60; i < 7 + 254; i += 61) /* 60-byte labels, 254 bytes in all */
        host[i] = '.';
    assert_int_equal(gh_validate_upstream(at, why, sizeof why), GH_OK);
    assert_int_equal(gh_validate_upstream(over, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("upstream", "2049 bytes", why, "at most 2048 bytes");
    assert_int_equal(gh_validate_upstream(label, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("upstream", "64-byte label", why, "longer than 63 bytes");
    label[7 + 63] = '\0';
    assert_int_equal(gh_validate_upstream(label, why, sizeof why), GH_OK);
    assert_int_equal(gh_validate_upstream(host, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("upstream", "254-byte host", why, "longer than 253 bytes");
    n_cases += 6;
    free(at);
    free(over);
    free(label);
    free(host);
}

/* The URL may carry a password; a refusal must not repeat any of it. */
static void test_upstream_message_never_echoes_url(void **state)
{
    static const char *const urls[] = {"http://admin:hunter2@example.com/",
                                       "https://example.com/hunter2?token=hunter2",
                                       "ftp://hunter2.example/"};
    (void)state;
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char why[WHY_CAP];
        assert_int_equal(gh_validate_upstream(urls[i], why, sizeof why), GH_ERR_INVALID_ARG);
        assert_null(strstr(why, "hunter2"));
        n_cases++;
    }
}

/* ---- methods ---- */

static const struct str_case methods[] = {
    {"GET", 1, NULL},
    {"POST", 1, NULL},
    {"PUT", 1, NULL},
    {"PATCH", 1, NULL},
    {"DELETE", 1, NULL},
    {"HEAD", 1, NULL},
    {"OPTIONS", 1, NULL},
    {"ANY", 1, NULL},
    {NULL, 0, "must not be empty"},
    {"", 0, "must not be empty"},
    {"get", 0, "\"get\" is not an endpoint method"},
    {"Get", 0, "upper case"},
    {"CONNECT", 0, "\"CONNECT\" is not an endpoint method"},
    {"TRACE", 0, "not an endpoint method"},
    {"GET ", 0, "not an endpoint method"},
    {" GET", 0, "not an endpoint method"},
    {"GETX", 0, "not an endpoint method"},
    {"G\nET", 0, "\"G?ET\""}, /* a control byte is shown as '?' */
    {"\"GET\"", 0, "\"?GET?\""},
};

static void test_methods(void **state)
{
    (void)state;
    RUN("method", gh_validate_method, methods);
}

/* A quoted input is capped at 64 bytes, so a long one cannot flood logs. */
static void test_method_quote_is_capped(void **state)
{
    char why[WHY_CAP];
    char *long_method = repeat("", 'M', 200);
    char *prefix = repeat("", 'M', 64);
    char *too_much = repeat("", 'M', 65);
    (void)state;
    assert_int_equal(gh_validate_method(long_method, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("method", "200 x M", why, prefix);
    assert_null(strstr(why, too_much));
    assert_non_null(strstr(why, "M..."));
    n_cases++;
    free(long_method);
    free(prefix);
    free(too_much);
}

/* ---- endpoint path templates ---- */

static const struct str_case endpoint_paths[] = {
    {"/", 1, NULL},
    {"/items", 1, NULL},
    {"/items/:id", 1, NULL},
    {"/items/:id/notes/:note_id", 1, NULL},
    {"/*", 1, NULL},
    {"/files/*", 1, NULL},
    {"/:a/:b/*", 1, NULL},
    {"/_x/:_y", 1, NULL},
    {"/v1.0/~x-y", 1, NULL},
    {"/:A1_b", 1, NULL},
    {"/:a/x/:b", 1, NULL},
    {NULL, 0, "an endpoint path must start with '/'"},
    {"", 0, "an endpoint path must start with '/'"},
    {"items", 0, "must start with '/'"},
    {"/items/", 0, "must not end with '/'"},
    {"//", 0, "must not end with '/'"},
    {"/items//x", 0, "segment 2 of the endpoint path is empty"},
    {"/:", 0, "segment 1 of the endpoint path is a ':' without a name"},
    {"/:1id", 0, "must start with a letter or '_'"},
    {"/items/:id-x", 0, "has a character outside [A-Za-z0-9_]"},
    {"/:id/:id", 0, "\":id\" appears twice"},
    {"/:a/x/:a", 0, "appears twice"},
    {"/a/*/b", 0, "'*' may only be the last segment"},
    {"/*/", 0, "must not end with '/'"},
    {"/a*", 0, "outside [A-Za-z0-9._~-]"},
    {"/a/**", 0, "outside [A-Za-z0-9._~-]"},
    {"/items/:id?", 0, "outside [A-Za-z0-9_]"},
    {"/items/{id}", 0, "segment 2 of the endpoint path has a character outside [A-Za-z0-9._~-]"},
    {"/a/./b", 0, "segment 2 of the endpoint path is '.' or '..'"},
    {"/..", 0, "'.' or '..'"},
    {"/a b", 0, "outside [A-Za-z0-9._~-]"},
    {"/%20", 0, "outside [A-Za-z0-9._~-]"},
    {"/items/:id/*/x", 0, "last segment"},
    {"/Z\xc3\xbcrich", 0, "outside"},
};

static void test_endpoint_paths(void **state)
{
    (void)state;
    RUN("endpoint path", gh_validate_endpoint_path, endpoint_paths);
}

static void test_endpoint_path_length(void **state)
{
    char why[WHY_CAP];
    char *at = repeat("/", 'e', 1024), *over = repeat("/", 'e', 1025);
    (void)state;
    assert_int_equal(gh_validate_endpoint_path(at, why, sizeof why), GH_OK);
    assert_int_equal(gh_validate_endpoint_path(over, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("endpoint path", "1025 bytes", why, "at most 1024 bytes");
    n_cases += 2;
    free(at);
    free(over);
}

/* ---- names ---- */

struct name_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int ok;
    const char *why;
};

static const struct name_case names[] = {
    {"a", 0, 1, NULL},
    {"Orders API", 0, 1, NULL},
    {"Z\xc3\xbcrich \xe8\xae\xa2\xe5\x8d\x95 \xf0\x9f\x93\xa6", 0, 1, NULL}, /* Zürich 订单 📦 */
    {"Robert'); DROP TABLE collections;--", 0, 1, NULL},
    {"' OR '1'='1", 0, 1, NULL},
    {"\"quoted\" name", 0, 1, NULL},
    {"O'Brien & Sons", 0, 1, NULL},
    {"<script>alert(1)</script>", 0, 1, NULL},
    {"100% done \\ %s %n", 0, 1, NULL},
    {"   spaced   ", 0, 1, NULL},
    {"\xc2\xa0nbsp", 0, 1, NULL},     /* U+00A0, just past the C1 controls */
    {"\xed\x9f\xbf", 0, 1, NULL},     /* U+D7FF, just below the surrogates */
    {"\xee\x80\x80", 0, 1, NULL},     /* U+E000, just above them */
    {"\xef\xbf\xbf", 0, 1, NULL},     /* U+FFFF */
    {"\xf0\x90\x80\x80", 0, 1, NULL}, /* U+10000, the shortest 4-byte form */
    {"\xf4\x8f\xbf\xbf", 0, 1, NULL}, /* U+10FFFF, the last code point */
    {"\xe0\xa0\x80", 0, 1, NULL},     /* U+0800, the shortest 3-byte form */
    {"", 0, 0, "a name must not be empty"},
    {"a\nb", 0, 0, "control characters (byte 1"},
    {"a\tb", 0, 0, "control characters"},
    {"a\0b", 3, 0, "control characters (byte 1"},
    {"\x1b[31mred", 0, 0, "control characters"},
    {"\x7f", 0, 0, "control characters"},
    {"\xc2\x80", 0, 0, "control characters"},  /* U+0080 (C1) */
    {"\xc2\x9f", 0, 0, "control characters"},  /* U+009F (C1) */
    {"\xc0\xaf", 0, 0, "valid UTF-8 (byte 0"}, /* overlong '/' */
    {"\xc1\xbf", 0, 0, "valid UTF-8"},
    {"\xe0\x80\xaf", 0, 0, "valid UTF-8"},     /* overlong, 3 bytes */
    {"\xe0\x9f\xbf", 0, 0, "valid UTF-8"},     /* overlong U+07FF */
    {"\xf0\x80\x80\xaf", 0, 0, "valid UTF-8"}, /* overlong, 4 bytes */
    {"\xf0\x8f\xbf\xbf", 0, 0, "valid UTF-8"}, /* overlong U+FFFF */
    {"\xed\xa0\x80", 0, 0, "valid UTF-8"},     /* U+D800 */
    {"\xed\xbf\xbf", 0, 0, "valid UTF-8"},     /* U+DFFF */
    {"\xf4\x90\x80\x80", 0, 0, "valid UTF-8"}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0, 0, "valid UTF-8"},
    {"\xff", 0, 0, "valid UTF-8"},
    {"\xfe", 0, 0, "valid UTF-8"},
    {"ok\x80", 0, 0, "valid UTF-8 (byte 2"},      /* a lone continuation byte */
    {"abc\xe2\x82", 0, 0, "valid UTF-8 (byte 3"}, /* truncated */
    {"\xf0\x9f\x93", 0, 0, "valid UTF-8"},
    {"\xe2\x28\xa1", 0, 0, "valid UTF-8"},
    {"\xc3\xbc\xc3", 0, 0, "valid UTF-8 (byte 2"},
};

/* The name in a buffer of exactly its length, no terminator, so ASan sees any over-read. */
static int check_name(const char *in, size_t len, char *why, size_t cap)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, in, len);
    int rc = gh_validate_name(copy, len, why, cap);
    free(copy);
    return rc;
}

static void test_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct name_case *c = &names[i];
        char why[WHY_CAP];
        size_t len = c->len != 0 ? c->len : strlen(c->in);
        int rc = check_name(c->in, len, why, sizeof why);
        if (c->ok && rc != GH_OK)
            fail_msg("name case %zu refused: %s", i, why);
        if (!c->ok) {
            if (rc != GH_ERR_INVALID_ARG)
                fail_msg("name case %zu accepted", i);
            check_message("name", "(case)", why, c->why);
        }
        n_cases++;
    }
}

static void test_name_lengths(void **state)
{
    char why[WHY_CAP];
    char *name = repeat("", 'n', 1001);
    (void)state;
    assert_int_equal(check_name(name, 1000, why, sizeof why), GH_OK);
    assert_int_equal(check_name(name, 1001, why, sizeof why), GH_ERR_INVALID_ARG);
    check_message("name", "1001 bytes", why, "at most 1000 bytes (this one has 1001)");
    /* the limit counts bytes, not characters: 998 + a 2-byte 'ü' fits, 999 + 'ü' does not */
    memcpy(name + 998, "\xc3\xbc", 2);
    assert_int_equal(check_name(name, 1000, why, sizeof why), GH_OK);
    memcpy(name + 999, "\xc3\xbc", 2);
    name[998] = 'n';
    assert_int_equal(check_name(name, 1001, why, sizeof why), GH_ERR_INVALID_ARG);
    /* 250 four-byte characters are 1000 bytes */
    for (size_t i = 0; i < 1000; i += 4)
        memcpy(name + i, "\xf0\x9f\x93\xa6", 4);
    assert_int_equal(check_name(name, 1000, why, sizeof why), GH_OK);
    assert_int_equal(gh_validate_name(NULL, 3, why, sizeof why), GH_ERR_INVALID_ARG);
    n_cases += 6;
    free(name);
}

/* A name is not ours to echo: the message names the byte, not the text. */
static void test_name_message_does_not_echo(void **state)
{
    char why[WHY_CAP];
    (void)state;
    assert_int_equal(check_name("secret-ish\x01", 11, why, sizeof why), GH_ERR_INVALID_ARG);
    assert_null(strstr(why, "secret"));
    n_cases++;
}

/* ---- CIDR blocks ---- */

struct cidr_case {
    const char *in;
    int ok;
    int family, prefix;
    const char *net; /* accepted: the network address; refused: a substring of the message */
};

static const struct cidr_case cidrs[] = {
    {"10.0.0.0/8", 1, 4, 8, "10.0.0.0"},
    {"0.0.0.0/0", 1, 4, 0, "0.0.0.0"},
    {"192.0.2.7", 1, 4, 32, "192.0.2.7"},
    {"192.0.2.7/32", 1, 4, 32, "192.0.2.7"},
    {"255.255.255.255/32", 1, 4, 32, "255.255.255.255"},
    {"128.0.0.0/1", 1, 4, 1, "128.0.0.0"},
    {"172.16.0.0/12", 1, 4, 12, "172.16.0.0"},
    {"1.2.3.0/24", 1, 4, 24, "1.2.3.0"},
    {"::/0", 1, 6, 0, "::"},
    {"::1", 1, 6, 128, "::1"},
    {"2001:db8::/32", 1, 6, 32, "2001:db8::"},
    {"2001:DB8::/32", 1, 6, 32, "2001:db8::"},
    {"2001:db8::1/128", 1, 6, 128, "2001:db8::1"},
    {"fe80::/10", 1, 6, 10, "fe80::"},
    {"2001:db8:0:0:0:0:0:0/127", 1, 6, 127, "2001:db8::"},
    {"::fffe:0:0/95", 1, 6, 95, "::fffe:0:0"}, /* just below the IPv4-mapped range */
    {NULL, 0, 0, 0, "must not be empty"},
    {"", 0, 0, 0, "must not be empty"},
    {"10.0.0.1/8", 0, 0, 0, "did you mean 10.0.0.0/8?"},
    {"1.2.3.4/0", 0, 0, 0, "did you mean 0.0.0.0/0?"},
    {"192.168.1.1/31", 0, 0, 0, "did you mean 192.168.1.0/31?"},
    {"2001:db8::1/32", 0, 0, 0, "did you mean 2001:db8::/32?"},
    {"::1/0", 0, 0, 0, "did you mean ::/0?"},
    {"10.0.0.0/33", 0, 0, 0, "from 0 to 32"},
    {"::/129", 0, 0, 0, "from 0 to 128"},
    {"1.2.3.4/", 0, 0, 0, "prefix length"},
    {"/8", 0, 0, 0, "needs an address before its '/'"},
    {"1.2.3.0/024", 0, 0, 0, "leading zeros"},
    {"1.2.3.0/08", 0, 0, 0, "leading zeros"}, /* one spelling per prefix, and no octal doubt */
    {"1.0.0.0/+8", 0, 0, 0, "without sign"},
    {"1.0.0.0/-1", 0, 0, 0, "prefix length"},
    {"1.0.0.0/ 8", 0, 0, 0, "prefix length"},
    {"1.0.0.0/8 ", 0, 0, 0, "prefix length"},
    {"1.0.0.0/0x8", 0, 0, 0, "prefix length"},
    {"1.0.0.0/1000", 0, 0, 0, "prefix length"},
    {"1.0.0.0/8/8", 0, 0, 0, "prefix length"},
    {"1.0.0.0/8x", 0, 0, 0, "prefix length"},
    {" 1.2.3.4", 0, 0, 0, "not start with an IPv4 or IPv6 address"},
    {"1.2.3.4 ", 0, 0, 0, "IPv4 or IPv6 address"},
    {"1.2.3", 0, 0, 0, "IPv4 or IPv6 address"},
    {"1.2.3.4.5", 0, 0, 0, "IPv4 or IPv6 address"},
    {"256.0.0.0/8", 0, 0, 0, "IPv4 or IPv6 address"},
    {"010.0.0.0/8", 0, 0, 0, "IPv4 or IPv6 address"},
    {"10.0.0.0\n/8", 0, 0, 0, "\"10.0.0.0?/8\""},
    {"example.com/8", 0, 0, 0, "IPv4 or IPv6 address"},
    {"gggg::/16", 0, 0, 0, "IPv4 or IPv6 address"},
    {"fe80::1%eth0", 0, 0, 0, "IPv4 or IPv6 address"},
    {"1:2:3:4:5:6:7:8:9", 0, 0, 0, "IPv4 or IPv6 address"},
    {"::ffff:10.0.0.0/104", 0, 0, 0, "IPv4-mapped IPv6 block, which never matches"},
    {"::ffff:10.0.0.0/104", 0, 0, 0, "write it as 10.0.0.0/8"},
    {"::ffff:10.1.2.3/104", 0, 0, 0, "write it as 10.0.0.0/8"},
    {"::ffff:1.2.3.4", 0, 0, 0, "write it as 1.2.3.4/32"},
    {"::ffff:0:0/96", 0, 0, 0, "write it as 0.0.0.0/0"},
    {"0000:0000:0000:0000:0000:0000:0000:0000:0000/128", 0, 0, 0, "IPv4 or IPv6 address"},
    {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/128", 0, 0, 0,
     "at most 64 bytes"},
};

static void test_cidr_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cidrs / sizeof cidrs[0]; i++) {
        const struct cidr_case *c = &cidrs[i];
        const char *shown = c->in != NULL ? c->in : "(null)";
        struct gh_cidr cidr;
        char why[WHY_CAP], net[INET6_ADDRSTRLEN];
        memset(&cidr, 0x5a, sizeof cidr);
        int rc = gh_cidr_parse(c->in, &cidr, why, sizeof why);
        if (!c->ok) {
            if (rc != GH_ERR_INVALID_ARG)
                fail_msg("CIDR \"%s\" accepted", shown);
            check_message("CIDR", shown, why, c->net);
            assert_int_equal(cidr.family, 0); /* cleared, never half-filled */
        } else {
            if (rc != GH_OK)
                fail_msg("CIDR \"%s\" refused: %s", shown, why);
            assert_int_equal(cidr.family, c->family);
            assert_int_equal(cidr.prefix, c->prefix);
            inet_ntop(c->family == 4 ? AF_INET : AF_INET6, cidr.addr, net, sizeof net);
            assert_string_equal(net, c->net);
        }
        n_cases++;
    }
}

/* An address in text, as the gateway would hold it: 4 bytes, or 16 for IPv6. */
static int parse_addr(const char *text, uint8_t *out)
{
    if (inet_pton(AF_INET, text, out) == 1)
        return 4;
    assert_int_equal(inet_pton(AF_INET6, text, out), 1);
    return 6;
}

static void test_cidr_contains(void **state)
{
    static const struct {
        const char *cidr, *addr;
        int in;
    } cases[] = {
        {"10.0.0.0/8", "10.1.2.3", 1},
        {"10.0.0.0/8", "10.255.255.255", 1},
        {"10.0.0.0/8", "11.0.0.0", 0},
        {"10.0.0.0/8", "9.255.255.255", 0},
        {"0.0.0.0/0", "203.0.113.9", 1},
        {"0.0.0.0/0", "::1", 0},
        {"::/0", "::1", 1},
        {"::/0", "2001:db8::5", 1},
        {"::/0", "10.0.0.1", 0},        /* IPv4 never matches an IPv6 block */
        {"::/0", "::ffff:10.0.0.1", 0}, /* a mapped address counts as IPv4 */
        {"10.0.0.0/8", "::ffff:10.1.2.3", 1},
        {"10.0.0.0/8", "::ffff:11.1.2.3", 0},
        {"1.2.3.4", "::ffff:1.2.3.4", 1},
        {"10.0.0.0/8", "::a00:1", 0},        /* IPv4-compatible (deprecated) is not mapped */
        {"10.0.0.0/8", "64:ff9b::a00:1", 0}, /* NAT64 is not mapped either */
        {"192.0.2.7", "192.0.2.7", 1},
        {"192.0.2.7", "192.0.2.8", 0},
        {"192.0.2.6/31", "192.0.2.7", 1},
        {"192.0.2.6/31", "192.0.2.8", 0},
        {"128.0.0.0/1", "127.255.255.255", 0},
        {"128.0.0.0/1", "128.0.0.0", 1},
        {"172.16.0.0/12", "172.31.255.255", 1},
        {"172.16.0.0/12", "172.32.0.0", 0},
        {"2001:db8::/32", "2001:db8:ffff::1", 1},
        {"2001:db8::/32", "2001:db9::", 0},
        {"::1", "::1", 1},
        {"::1", "::2", 0},
        {"fe80::/10", "febf::1", 1},
        {"fe80::/10", "fec0::1", 0},
        {"2001:db8::/127", "2001:db8::1", 1},
        {"2001:db8::/127", "2001:db8::2", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gh_cidr cidr;
        uint8_t addr[16];
        char why[WHY_CAP];
        assert_int_equal(gh_cidr_parse(cases[i].cidr, &cidr, why, sizeof why), GH_OK);
        int family = parse_addr(cases[i].addr, addr);
        if (gh_cidr_contains(&cidr, family, addr) != cases[i].in)
            fail_msg("%s in %s should be %d", cases[i].addr, cases[i].cidr, cases[i].in);
        n_cases++;
    }
}

static void test_cidr_contains_refuses_nonsense(void **state)
{
    struct gh_cidr cidr, bad;
    uint8_t addr[16] = {10, 0, 0, 1};
    char why[WHY_CAP];
    (void)state;
    assert_int_equal(gh_cidr_parse("0.0.0.0/0", &cidr, why, sizeof why), GH_OK);
    assert_int_equal(gh_cidr_contains(&cidr, 4, addr), 1);
    assert_int_equal(gh_cidr_contains(&cidr, 5, addr), 0);
    assert_int_equal(gh_cidr_contains(&cidr, 4, NULL), 0);
    assert_int_equal(gh_cidr_contains(NULL, 4, addr), 0);
    bad = cidr;
    bad.prefix = 33;
    assert_int_equal(gh_cidr_contains(&bad, 4, addr), 0);
    n_cases += 5;
}

/* ---- path matching ---- */

struct match_case {
    const char *tmpl, *path;
    int match;
    const char *params; /* "name=value,name=value" as expected on a match */
};

static const struct match_case matches[] = {
    /* the root */
    {"/", "", 1, ""},
    {"/", "/", 1, ""},
    {"/", "//", 0, NULL},
    {"/", "/a", 0, NULL},
    /* literals: whole segments, byte-exact */
    {"/items", "/items", 1, ""},
    {"/items", "/items/", 0, NULL}, /* a trailing slash is one more (empty) segment */
    {"/items", "/Items", 0, NULL},
    {"/items", "/ITEMS", 0, NULL},
    {"/items", "/item", 0, NULL},
    {"/items", "/itemsx", 0, NULL},
    {"/items", "", 0, NULL},
    {"/items", "/", 0, NULL},
    {"/items", "/items/x", 0, NULL},
    {"/items", "//items", 0, NULL},
    {"/items", "items", 0, NULL},
    {"/items", "/%69tems", 0, NULL}, /* not decoded */
    {"/v1.0/~u", "/v1.0/~u", 1, ""},
    {"/a-b", "/a_b", 0, NULL},
    /* parameters: one non-empty segment each */
    {"/items/:id", "/items/42", 1, "id=42"},
    {"/items/:id", "/items/", 0, NULL},
    {"/items/:id", "/items", 0, NULL},
    {"/items/:id", "/items//", 0, NULL},
    {"/items/:id", "/items/42/", 0, NULL},
    {"/items/:id", "/items/42/x", 0, NULL},
    {"/items/:id", "/items/a%2Fb", 1, "id=a%2Fb"}, /* an encoded slash never splits */
    {"/items/:id", "/items/a%2f..%2fadmin", 1, "id=a%2f..%2fadmin"},
    {"/items/:id", "/items/%20", 1, "id=%20"},
    {"/items/:id", "/items/...", 1, "id=..."},
    {"/items/:id", "/items/..", 0, NULL},
    {"/items/:id", "/items/.", 0, NULL},
    {"/items/:id", "/items/%2e%2e", 0, NULL},
    {"/items/:id", "/items/%2E.", 0, NULL},
    {"/items/:id", "/items/../items/1", 0, NULL},
    {"/:a/:b", "/x/y", 1, "a=x,b=y"},
    {"/:a/:b", "//y", 0, NULL},
    {"/:a/:b", "/x//y", 0, NULL},
    {"/:a/:b", "/x/", 0, NULL},
    {"/items/:id/notes/:nid", "/items/1/notes/2", 1, "id=1,nid=2"},
    {"/items/:id/notes/:nid", "/items/1/Notes/2", 0, NULL},
    {"/items/:id/notes", "/items/1/notes", 1, "id=1"},
    {"/:id", "/Z\xc3\xbcrich", 1, "id=Z\xc3\xbcrich"},
    /* a final wildcard: zero or more segments */
    {"/files/*", "/files", 1, ""},
    {"/files/*", "/files/", 1, ""},
    {"/files/*", "/files/a", 1, ""},
    {"/files/*", "/files/a/b/c.txt", 1, ""},
    {"/files/*", "/files//a", 1, ""},
    {"/files/*", "/files/a%2Fb", 1, ""},
    {"/files/*", "/filesX", 0, NULL},
    {"/files/*", "/file", 0, NULL},
    {"/files/*", "/Files/a", 0, NULL},
    {"/files/*", "", 0, NULL},
    {"/files/*", "/", 0, NULL},
    {"/files/*", "/files/a/../../etc/passwd", 0, NULL},
    {"/files/*", "/files/%2e%2e/x", 0, NULL},
    {"/files/*", "/files/./a", 0, NULL},
    {"/*", "", 1, ""},
    {"/*", "/", 1, ""},
    {"/*", "/anything/at/all", 1, ""},
    {"/*", "/..", 0, NULL},
    {"/u/:id/*", "/u/7", 1, "id=7"},
    {"/u/:id/*", "/u/7/", 1, "id=7"},
    {"/u/:id/*", "/u/7/x/y", 1, "id=7"},
    {"/u/:id/*", "/u", 0, NULL},
    {"/u/:id/*", "/u//x", 0, NULL},
};

/* Checks `got` against "name=value,..." */
static void check_params(const struct match_case *c, const struct gh_path_param *got, size_t n,
                         const char *path, size_t path_len)
{
    char text[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        /* values are slices of the request path, names slices of the template */
        assert_true(got[i].value >= path && got[i].value + got[i].value_len <= path + path_len);
        assert_true(got[i].name > c->tmpl && got[i].name[-1] == ':');
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%.*s=%.*s", i ? "," : "",
                                 (int)got[i].name_len, got[i].name, (int)got[i].value_len,
                                 got[i].value);
    }
    if (strcmp(text, c->params) != 0)
        fail_msg("%s vs %s: params \"%s\", expected \"%s\"", c->tmpl, c->path, text, c->params);
}

static void test_path_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
        const struct match_case *c = &matches[i];
        size_t len = strlen(c->path), n = 99;
        struct gh_path_param params[8];
        char *path = malloc(len > 0 ? len : 1); /* no terminator: ASan sees any over-read */
        assert_non_null(path);
        memcpy(path, c->path, len);
        int got = gh_path_match(c->tmpl, path, len, params, 8, &n);
        if (got != c->match)
            fail_msg("template \"%s\" vs \"%s\": %d, expected %d", c->tmpl, c->path, got, c->match);
        if (got)
            check_params(c, params, n, path, len);
        else
            assert_int_equal(n, 0);
        free(path);
        n_cases++;
    }
}

/* Capacity too small: still a match, the first `max` stored, *n_params says how many there are. */
static void test_path_match_capacity(void **state)
{
    static const char *const path = "/1/2/3";
    struct gh_path_param params[3];
    size_t n = 0;
    (void)state;
    memset(params, 0, sizeof params);
    assert_int_equal(gh_path_match("/:a/:b/:c", path, 6, params, 2, &n), 1);
    assert_int_equal(n, 3);
    assert_int_equal(params[1].value_len, 1);
    assert_memory_equal(params[1].value, "2", 1);
    assert_null(params[2].name); /* untouched */
    assert_int_equal(gh_path_match("/:a/:b/:c", path, 6, NULL, 0, &n), 1);
    assert_int_equal(n, 3);
    assert_int_equal(gh_path_match("/:a/:b/:c", path, 6, NULL, 0, NULL), 1);
    /* a length shorter than the string is honoured: "/1/2" has two segments */
    assert_int_equal(gh_path_match("/:a/:b/:c", path, 4, params, 3, &n), 0);
    assert_int_equal(gh_path_match("/:a/:b", path, 4, params, 3, &n), 1);
    /* a NUL byte inside the given length is part of a segment, not its end */
    assert_int_equal(gh_path_match("/a/b", "/a/b\0", 5, params, 3, &n), 0);
    assert_int_equal(gh_path_match("/", NULL, 0, params, 3, &n), 1);
    assert_int_equal(gh_path_match(NULL, "/", 1, params, 3, &n), 0);
    n_cases += 8;
}

/* ---- messages ---- */

/* `why` may be NULL or tiny: the rules still answer, and a short buffer is still a C string. */
static void test_message_buffers(void **state)
{
    char small[8];
    struct gh_cidr cidr;
    (void)state;
    assert_int_equal(gh_validate_collection_path("nope", NULL, 0), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_validate_upstream("nope", NULL, 0), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_validate_method("nope", NULL, 0), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_validate_endpoint_path("nope", NULL, 0), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_validate_name("\x01", 1, NULL, 0), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_cidr_parse("10.0.0.1/8", &cidr, NULL, 0), GH_ERR_INVALID_ARG);
    memset(small, 'x', sizeof small);
    assert_int_equal(gh_validate_collection_path("nope", small, sizeof small), GH_ERR_INVALID_ARG);
    assert_int_equal(strlen(small), sizeof small - 1);
    memset(small, 'x', sizeof small);
    assert_int_equal(gh_validate_collection_path("/ok", small, 1), GH_OK);
    assert_int_equal(small[0], '\0');
    assert_int_equal(small[1], 'x');
    assert_int_equal(gh_cidr_parse("10.0.0.0/8", NULL, small, sizeof small), GH_ERR_INVALID_ARG);
    n_cases += 9;
}

static int print_count(void **state)
{
    (void)state;
    printf("[ INFO     ] %zu table cases\n", n_cases);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collection_paths),
        cmocka_unit_test(test_collection_path_length),
        cmocka_unit_test(test_paths_overlap),
        cmocka_unit_test(test_upstreams),
        cmocka_unit_test(test_upstream_lengths),
        cmocka_unit_test(test_ca_bundles),
        cmocka_unit_test(test_upstream_message_never_echoes_url),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_method_quote_is_capped),
        cmocka_unit_test(test_endpoint_paths),
        cmocka_unit_test(test_endpoint_path_length),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_name_lengths),
        cmocka_unit_test(test_name_message_does_not_echo),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_cidr_contains_refuses_nonsense),
        cmocka_unit_test(test_path_match),
        cmocka_unit_test(test_path_match_capacity),
        cmocka_unit_test(test_message_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, print_count);
}
