// SPDX-License-Identifier: Apache-2.0
/*
 * The field rules of SPEC §1 as pure functions, kept apart from the store so that the admin API,
 * `gatehouse config apply` and the gateway's router all judge a path, URL, name or address block
 * by the same code. Inputs are operator-written configuration and, for gh_path_match and
 * gh_cidr_contains, live request data, so nothing here allocates, every scan is bounded by a
 * ceiling before it starts, and every refusal names the one rule it breaks in a single sentence.
 * Messages quote at most 64 bytes of input, with anything outside printable ASCII shown as '?',
 * and never quote a URL or a name (a URL may carry a password, a name is not ours to echo).
 *
 * Where SPEC §1 is silent, these rules are stricter rather than looser, because a configuration
 * that is refused can be fixed while one that is accepted but routes surprisingly cannot be seen:
 * "." and ".." segments are refused everywhere (URL normalisation removes them before a request
 * could ever match, and an upstream that resolves them would escape the endpoint), a number has one
 * spelling (no leading zeros in a CIDR prefix or a port), and an upstream scheme is written in
 * lower case.
 */
#include "store/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

#define GH_COLLECTION_PATH_MAX 255
#define GH_ENDPOINT_PATH_MAX   1024
#define GH_UPSTREAM_MAX        2048
#define GH_NAME_MAX            1000
#define GH_HOST_MAX            253
#define GH_LABEL_MAX           63
#define GH_CIDR_TEXT_MAX       64
#define GH_QUOTE_MAX           64
#define QUOTE_BUF              (GH_QUOTE_MAX + 4) /* quoted bytes, "...", NUL */

/* Writes the reason and returns the code, so that every refusal below is one `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t cap, const char *fmt, ...)
{
    if (why != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return GH_ERR_INVALID_ARG;
}

/* Every function starts here, so a caller never reads the message of an earlier call. */
static void clear_why(char *why, size_t cap)
{
    if (why != NULL && cap > 0)
        why[0] = '\0';
}

/* A printable copy of at most GH_QUOTE_MAX bytes of `s` for a message: control bytes, '"' and
 * non-ASCII become '?', so a message can never carry a terminal escape or an unbounded echo of
 * input. */
static const char *quote(char *buf, const char *s, size_t len)
{
    size_t n = len > GH_QUOTE_MAX ? GH_QUOTE_MAX : len;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* RFC 3986 "unreserved": the only bytes a path segment of ours may hold, so that a configured path
 * has exactly one spelling and never needs percent-encoding. */
static int is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Length of the segment starting at `s`: up to the next '/' or `end`. */
static size_t seg_len(const char *s, const char *end)
{
    const char *slash = memchr(s, '/', (size_t)(end - s));
    return slash != NULL ? (size_t)(slash - s) : (size_t)(end - s);
}

/* 1 for ".", ".." or either spelled with %2e/%2E. RFC 3986 §5.2.4 resolves these away, and an
 * upstream that decodes before resolving would do so too, so such a segment never names a resource
 * of its own: it is refused in configuration and never matched in a request. */
static int is_dot_segment(const char *s, size_t len)
{
    size_t dots = 0, i = 0;

    while (i < len) {
        if (s[i] == '.')
            i++;
        else if (len - i >= 3 && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e')
            i += 3;
        else
            return 0;
        if (++dots > 2)
            return 0;
    }
    return dots > 0;
}

/* 1 when some segment of `path` (non-empty, starting with '/') is a dot segment. */
static int has_dot_segment(const char *path, size_t len)
{
    const char *s = path + 1, *end = path + len;

    for (;;) {
        size_t n = seg_len(s, end);
        if (is_dot_segment(s, n))
            return 1;
        if (s + n == end)
            return 0;
        s += n + 1;
    }
}

/* One literal segment of a collection path or endpoint template; `what` names the object. */
static int check_literal(const char *what, const char *s, size_t len, size_t index, char *why,
                         size_t cap)
{
    if (len == 0)
        return fail(why, cap, "segment %zu of the %s is empty (two '/' in a row)", index, what);
    for (size_t i = 0; i < len; i++)
        if (!is_unreserved((unsigned char)s[i]))
            return fail(why, cap, "segment %zu of the %s has a character outside [A-Za-z0-9._~-]",
                        index, what);
    if (is_dot_segment(s, len))
        return fail(why, cap,
                    "segment %zu of the %s is '.' or '..', which URL normalisation removes", index,
                    what);
    return GH_OK;
}

int gh_validate_collection_path(const char *path, char *why, size_t cap)
{
    clear_why(why, cap);
    if (path == NULL || path[0] != '/')
        return fail(why, cap, "a collection path must start with '/'");
    size_t len = strnlen(path, GH_COLLECTION_PATH_MAX + 1);
    if (len > GH_COLLECTION_PATH_MAX)
        return fail(why, cap, "a collection path must be at most %d bytes", GH_COLLECTION_PATH_MAX);
    if (len == 1)
        return fail(why, cap, "a collection path needs at least one segment after '/'");
    if (path[len - 1] == '/')
        return fail(why, cap, "a collection path must not end with '/'");

    const char *s = path + 1, *end = path + len;
    for (size_t index = 1;; index++) {
        size_t n = seg_len(s, end);
        int rc = check_literal("collection path", s, n, index, why, cap);
        if (rc != GH_OK)
            return rc;
        s += n;
        if (s == end)
            return GH_OK;
        s++; /* the '/' */
    }
}

/* 1 when the shorter `a` is `b` or `b`'s prefix ending at a segment boundary. A path ending in '/'
 * (only "/" among valid ones) is a prefix of everything below it. */
static int is_segment_prefix(const char *a, size_t la, const char *b, size_t lb)
{
    if (memcmp(a, b, la) != 0)
        return 0;
    return la == lb || b[la] == '/' || (la > 0 && a[la - 1] == '/');
}

/* Byte-exact, like routing: "/Orders" and "/orders" are different collections. */
int gh_paths_overlap(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 0;
    size_t la = strlen(a), lb = strlen(b);
    return la <= lb ? is_segment_prefix(a, la, b, lb) : is_segment_prefix(b, lb, a, la);
}

/* ---- upstream URLs ---- */

/* Bytes no URL of ours may hold anywhere: the checks after this one may then treat the URL as
 * plain printable ASCII. */
static int check_url_bytes(const char *url, size_t len, char *why, size_t cap)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return fail(why, cap,
                        "the upstream URL has whitespace or a control character at byte %zu", i);
        if (c >= 0x80)
            return fail(why, cap,
                        "the upstream URL has a non-ASCII byte at byte %zu (percent-encode paths "
                        "and write host names in punycode)",
                        i);
        if (c == '\\')
            return fail(why, cap,
                        "the upstream URL has a backslash, which some parsers read as '/'");
    }
    return GH_OK;
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* A port: 1..65535 in decimal, one spelling (no leading zeros, no sign, not empty). */
static int check_port(const char *p, size_t len, char *why, size_t cap)
{
    unsigned long v = 0;

    if (len == 0 || len > 5 || p[0] == '0')
        goto bad;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)p[i]))
            goto bad;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v >= 1 && v <= 65535)
        return GH_OK;
bad:
    return fail(why, cap,
                "the upstream URL's port must be a decimal from 1 to 65535 without leading zeros");
}

static int check_ipv6_host(const char *h, size_t len, char *why, size_t cap)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a6;

    if (len == 0 || len >= sizeof buf)
        return fail(why, cap, "the upstream URL's bracketed host is not an IPv6 address");
    memcpy(buf, h, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET6, buf, &a6) != 1) /* also refuses zone ids ("%25eth0") */
        return fail(why, cap,
                    "the upstream URL's bracketed host is not an IPv6 address (zone ids are not "
                    "allowed)");
    return GH_OK;
}

/* A host name or dotted-quad IPv4 address. Underscores are allowed because container and service
 * names use them; a last label that starts with a digit must make a canonical dotted quad, since
 * resolvers read "2130706433" or "0x7f.1" as addresses that the operator never wrote. */
static int check_host_name(const char *h, size_t len, char *why, size_t cap)
{
    size_t label = 0, last = 0;

    if (len > GH_HOST_MAX)
        return fail(why, cap, "the upstream URL's host is longer than %d bytes", GH_HOST_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return fail(why, cap, "the upstream URL's host has an empty label");
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_')
            return fail(why, cap,
                        "the upstream URL's host has a character outside [A-Za-z0-9._-] (write "
                        "IPv6 addresses in brackets)");
        if (label++ == 0)
            last = i;
        if (label > GH_LABEL_MAX)
            return fail(why, cap, "a label of the upstream URL's host is longer than %d bytes",
                        GH_LABEL_MAX);
    }
    if (is_digit((unsigned char)h[last])) {
        char buf[INET_ADDRSTRLEN];
        struct in_addr a4;
        int ok = len < sizeof buf;
        if (ok) {
            memcpy(buf, h, len);
            buf[len] = '\0';
            ok = inet_pton(AF_INET, buf, &a4) == 1;
        }
        if (!ok)
            return fail(why, cap,
                        "the upstream URL's host looks numeric but is not a dotted-quad IPv4 "
                        "address");
    }
    return GH_OK;
}

/* The authority between "//" and the path: host (or [IPv6]) and an optional port, no user info. */
static int check_authority(const char *a, size_t len, char *why, size_t cap)
{
    const char *end = a + len, *port = NULL;
    int rc;

    if (memchr(a, '@', len) != NULL)
        return fail(why, cap, "the upstream URL must not carry a user name or password ('@')");
    if (len == 0 || a[0] == ':')
        return fail(why, cap, "the upstream URL has no host");
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL)
            return fail(why, cap, "the upstream URL's IPv6 host lacks its closing ']'");
        rc = check_ipv6_host(a + 1, (size_t)(close - a - 1), why, cap);
        if (rc != GH_OK)
            return rc;
        if (close + 1 < end && close[1] != ':')
            return fail(why, cap, "the upstream URL has something other than a port after ']'");
        port = close + 1 < end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(a, ':', len);
        size_t hlen = colon != NULL ? (size_t)(colon - a) : len;
        rc = check_host_name(a, hlen, why, cap);
        if (rc != GH_OK)
            return rc;
        port = colon != NULL ? colon + 1 : NULL;
    }
    return port != NULL ? check_port(port, (size_t)(end - port), why, cap) : GH_OK;
}

/* RFC 3986 pchar minus '%' (checked separately) plus '/'. */
static int is_path_char(unsigned char c)
{
    return is_unreserved(c) || (c != '\0' && strchr("!$&'()*+,;=:@/", c) != NULL);
}

/* The base path, starting at its '/'. */
static int check_base_path(const char *p, size_t len, char *why, size_t cap)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (len - i < 3 || !is_hex((unsigned char)p[i + 1]) || !is_hex((unsigned char)p[i + 2]))
                return fail(why, cap,
                            "the upstream URL's path has a '%%' that does not start a %%XX escape");
            i += 2;
        } else if (!is_path_char(c)) {
            return fail(why, cap,
                        "the upstream URL's path has a character that must be percent-encoded");
        }
    }
    if (has_dot_segment(p, len))
        return fail(why, cap, "the upstream URL's path has a '.' or '..' segment");
    return GH_OK;
}

/* A hand parser rather than libcurl's: it needs no allocation, and it can say which rule a URL
 * breaks instead of only that libcurl did not like it. */
int gh_validate_upstream(const char *url, char *why, size_t cap)
{
    size_t len, skip;
    int rc;

    clear_why(why, cap);
    if (url == NULL || url[0] == '\0')
        return fail(why, cap, "the upstream URL must not be empty");
    len = strnlen(url, GH_UPSTREAM_MAX + 1);
    if (len > GH_UPSTREAM_MAX)
        return fail(why, cap, "the upstream URL must be at most %d bytes", GH_UPSTREAM_MAX);
    rc = check_url_bytes(url, len, why, cap);
    if (rc != GH_OK)
        return rc;
    /* lower case only: the proxy compares schemes byte-exact, and one spelling is easier to audit
     */
    if (strncmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncmp(url, "http://", 7) == 0)
        skip = 7;
    else
        return fail(why, cap, "the upstream URL must start with http:// or https:// (lower case)");
    if (memchr(url, '#', len) != NULL)
        return fail(why, cap, "the upstream URL must not have a fragment ('#')");
    if (memchr(url, '?', len) != NULL)
        return fail(why, cap, "the upstream URL must not have a query ('?')");

    const char *auth = url + skip, *end = url + len;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    const char *auth_end = slash != NULL ? slash : end;
    rc = check_authority(auth, (size_t)(auth_end - auth), why, cap);
    if (rc == GH_OK && slash != NULL)
        rc = check_base_path(slash, (size_t)(end - slash), why, cap);
    return rc;
}

/* One PEM block of a CA bundle: a certificate that DER-decodes whole, or a refusal. */
static int check_pem_block(const char *name, const unsigned char *der, long len, int index,
                           char *why, size_t cap)
{
    const unsigned char *p = der;
    X509 *cert;

    if (strstr(name, "PRIVATE KEY") != NULL)
        return fail(why, cap,
                    "block %d is a private key: a CA bundle holds certificates only, "
                    "and a key must never be stored here",
                    index);
    if (strcmp(name, "CERTIFICATE") != 0)
        return fail(why, cap, "block %d is a %.32s, not a CERTIFICATE", index, name);
    cert = d2i_X509(NULL, &p, len);
    X509_free(cert);
    if (cert == NULL || p != der + len)
        return fail(why, cap, "certificate %d is not a valid X.509 certificate", index);
    return GH_OK;
}

int gh_validate_ca_bundle(const char *pem, char *why, size_t cap)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    int n = 0, rc = GH_OK;

    clear_why(why, cap);
    if (bio == NULL)
        return fail(why, cap, "out of memory");
    ERR_clear_error();
    while (rc == GH_OK && PEM_read_bio(bio, &name, &header, &der, &len) == 1) {
        rc = check_pem_block(name, der, len, ++n, why, cap);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
    }
    /* the loop ends at the text's end ("no start line") or at a broken block */
    if (rc == GH_OK && ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
        rc = fail(why, cap, "block %d is not valid PEM (broken base64 or a missing END line)",
                  n + 1);
    else if (rc == GH_OK && n == 0)
        rc = fail(why, cap, "not a PEM bundle: no -----BEGIN CERTIFICATE----- block");
    ERR_clear_error();
    BIO_free(bio);
    return rc;
}

int gh_validate_method(const char *method, char *why, size_t cap)
{
    static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                          "DELETE", "HEAD", "OPTIONS", "ANY"};
    char q[QUOTE_BUF];

    clear_why(why, cap);
    if (method == NULL || method[0] == '\0')
        return fail(why, cap, "an endpoint method must not be empty");
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(method, methods[i]) == 0)
            return GH_OK;
    return fail(why, cap,
                "\"%s\" is not an endpoint method: use GET, POST, PUT, PATCH, DELETE, HEAD, "
                "OPTIONS or ANY in upper case",
                quote(q, method, strnlen(method, GH_QUOTE_MAX + 1)));
}

/* ---- endpoint path templates ---- */

/* 1 when a ":name" segment before `upto` in the template has the same name. */
static int param_seen(const char *path, const char *upto, const char *name, size_t len)
{
    for (const char *s = path + 1; s < upto;) {
        size_t n = seg_len(s, upto);
        if (n == len + 1 && s[0] == ':' && memcmp(s + 1, name, len) == 0)
            return 1;
        s += n + 1;
    }
    return 0;
}

/* ":name" with name [A-Za-z_][A-Za-z0-9_]*, not used earlier in the template. */
static int check_param(const char *path, const char *s, size_t len, size_t index, char *why,
                       size_t cap)
{
    const char *name = s + 1;
    size_t n = len - 1;
    char q[QUOTE_BUF];

    if (n == 0)
        return fail(why, cap, "segment %zu of the endpoint path is a ':' without a name", index);
    if (!is_alpha((unsigned char)name[0]) && name[0] != '_')
        return fail(why, cap,
                    "the parameter name in segment %zu of the endpoint path must start with a "
                    "letter or '_'",
                    index);
    for (size_t i = 1; i < n; i++)
        if (!is_alnum((unsigned char)name[i]) && name[i] != '_')
            return fail(why, cap,
                        "the parameter name in segment %zu of the endpoint path has a character "
                        "outside [A-Za-z0-9_]",
                        index);
    if (param_seen(path, s, name, n))
        return fail(why, cap, "the parameter \":%s\" appears twice in the endpoint path",
                    quote(q, name, n));
    return GH_OK;
}

int gh_validate_endpoint_path(const char *path, char *why, size_t cap)
{
    clear_why(why, cap);
    if (path == NULL || path[0] != '/')
        return fail(why, cap, "an endpoint path must start with '/'");
    size_t len = strnlen(path, GH_ENDPOINT_PATH_MAX + 1);
    if (len > GH_ENDPOINT_PATH_MAX)
        return fail(why, cap, "an endpoint path must be at most %d bytes", GH_ENDPOINT_PATH_MAX);
    if (len == 1)
        return GH_OK; /* "/": the collection's root */
    if (path[len - 1] == '/')
        return fail(why, cap, "an endpoint path must not end with '/' unless it is \"/\"");

    const char *s = path + 1, *end = path + len;
    for (size_t index = 1;; index++) {
        size_t n = seg_len(s, end);
        int last = s + n == end, rc;
        if (n == 1 && s[0] == '*')
            rc = last ? GH_OK
                      : fail(why, cap, "'*' may only be the last segment of an endpoint path");
        else if (n > 0 && s[0] == ':')
            rc = check_param(path, s, n, index, why, cap);
        else
            rc = check_literal("endpoint path", s, n, index, why, cap);
        if (rc != GH_OK || last)
            return rc;
        s += n + 1;
    }
}

/* ---- names ---- */

/* Length of the well-formed UTF-8 sequence at `s` (Unicode Table 3-7), or 0: this refuses
 * overlong forms, surrogates, code points past U+10FFFF and truncated sequences in one place. */
static size_t utf8_next(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xc2) /* a continuation byte, or a lead byte that can only be overlong */
        return 0;
    if (c < 0xe0) {
        n = 2, v = c & 0x1f;
    } else if (c < 0xf0) {
        n = 3, v = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
        hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
    } else if (c < 0xf5) {
        n = 4, v = c & 0x07;
        lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    v = v << 6 | (s[1] & 0x3f);
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    *cp = v;
    return n;
}

/* C1 controls (U+0080..U+009F) are refused along with C0 and DEL: they are control characters as
 * much as those are, and some terminals act on them when a name is printed in a table. */
int gh_validate_name(const char *name, size_t len, char *why, size_t cap)
{
    const unsigned char *s = (const unsigned char *)name;

    clear_why(why, cap);
    if (name == NULL || len == 0)
        return fail(why, cap, "a name must not be empty");
    if (len > GH_NAME_MAX)
        return fail(why, cap, "a name must be at most %d bytes (this one has %zu)", GH_NAME_MAX,
                    len);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next(s + i, len - i, &cp);
        if (n == 0)
            return fail(why, cap, "a name must be valid UTF-8 (byte %zu is not)", i);
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return fail(why, cap, "a name must not contain control characters (byte %zu has one)",
                        i);
        i += n;
    }
    return GH_OK;
}

/* ---- CIDR blocks ---- */

/* The prefix length after '/': a decimal 0..max, one spelling (no sign, space or leading zero). */
static int parse_prefix(const char *p, size_t len, int max)
{
    int v = 0;

    if (len == 0 || len > 3 || (p[0] == '0' && len > 1))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= max ? v : -1;
}

/* Number of leading bytes fully inside the prefix, and the mask of the partial byte after them. */
static void prefix_split(int prefix, size_t *full, uint8_t *mask)
{
    *full = (size_t)prefix / 8;
    *mask = (uint8_t)(0xff00u >> (prefix % 8));
}

static int is_v4_mapped(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, mapped, sizeof mapped) == 0;
}

/* Refuses host bits past the prefix, suggesting the block the operator most likely meant. */
static int check_host_bits(struct gh_cidr *c, const char *text, size_t len, char *why, size_t cap)
{
    size_t full, bytes = c->family == 4 ? 4 : 16;
    uint8_t mask, net[16];
    char shown[INET6_ADDRSTRLEN], q[QUOTE_BUF];

    prefix_split(c->prefix, &full, &mask);
    memcpy(net, c->addr, sizeof net);
    if (full < bytes) {
        net[full] &= mask;
        memset(net + full + 1, 0, bytes - full - 1);
    }
    if (memcmp(net, c->addr, bytes) == 0)
        return GH_OK;
    inet_ntop(c->family == 4 ? AF_INET : AF_INET6, net, shown, sizeof shown);
    return fail(why, cap, "\"%s\" has bits set past its /%d prefix; did you mean %s/%d?",
                quote(q, text, len), c->prefix, shown, c->prefix);
}

/* An IPv4-mapped IPv6 block could never match, because gh_cidr_contains treats a mapped client
 * address as IPv4; refusing it with the IPv4 spelling beats a rule that silently does nothing. */
static int check_not_mapped(const struct gh_cidr *c, const char *text, size_t len, char *why,
                            size_t cap)
{
    char shown[INET_ADDRSTRLEN], q[QUOTE_BUF];
    uint8_t net[4] = {0};
    size_t full;
    uint8_t mask;

    if (c->family != 6 || c->prefix < 96 || !is_v4_mapped(c->addr))
        return GH_OK;
    prefix_split(c->prefix - 96, &full, &mask);
    memcpy(net, c->addr + 12, full);
    if (full < 4)
        net[full] = c->addr[12 + full] & mask;
    inet_ntop(AF_INET, net, shown, sizeof shown);
    return fail(why, cap,
                "\"%s\" is an IPv4-mapped IPv6 block, which never matches because mapped client "
                "addresses count as IPv4; write it as %s/%d",
                quote(q, text, len), shown, c->prefix - 96);
}

int gh_cidr_parse(const char *text, struct gh_cidr *out, char *why, size_t cap)
{
    char addr[INET6_ADDRSTRLEN], q[QUOTE_BUF];
    int rc;

    clear_why(why, cap);
    if (out == NULL)
        return fail(why, cap, "a CIDR block needs somewhere to be stored");
    memset(out, 0, sizeof *out);
    if (text == NULL || text[0] == '\0')
        return fail(why, cap, "a CIDR block must not be empty");
    size_t len = strnlen(text, GH_CIDR_TEXT_MAX + 1);
    if (len > GH_CIDR_TEXT_MAX)
        return fail(why, cap, "a CIDR block must be at most %d bytes", GH_CIDR_TEXT_MAX);
    const char *slash = memchr(text, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - text) : len;
    if (alen == 0)
        return fail(why, cap, "a CIDR block needs an address before its '/'");
    int family = memchr(text, ':', alen) != NULL ? 6 : 4;
    int ok = alen < sizeof addr;
    if (ok) {
        memcpy(addr, text, alen);
        addr[alen] = '\0';
        ok = inet_pton(family == 4 ? AF_INET : AF_INET6, addr, out->addr) == 1;
    }
    if (!ok)
        return fail(why, cap, "\"%s\" does not start with an IPv4 or IPv6 address",
                    quote(q, text, len));
    int max = family == 4 ? 32 : 128;
    int prefix = slash != NULL ? parse_prefix(slash + 1, len - alen - 1, max) : max;
    if (prefix < 0)
        return fail(why, cap,
                    "the prefix length of \"%s\" must be a decimal from 0 to %d without sign or "
                    "leading zeros",
                    quote(q, text, len), max);
    out->family = family;
    out->prefix = prefix;
    rc = check_not_mapped(out, text, len, why, cap);
    if (rc == GH_OK)
        rc = check_host_bits(out, text, len, why, cap);
    if (rc != GH_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int gh_cidr_contains(const struct gh_cidr *cidr, int family, const uint8_t *addr)
{
    size_t full;
    uint8_t mask;

    if (cidr == NULL || addr == NULL || (family != 4 && family != 6))
        return 0;
    if (family == 6 && is_v4_mapped(addr)) { /* a dual-stack socket's view of an IPv4 client */
        family = 4;
        addr += 12;
    }
    if (family != cidr->family || cidr->prefix < 0 || cidr->prefix > (family == 4 ? 32 : 128))
        return 0;
    prefix_split(cidr->prefix, &full, &mask);
    if (memcmp(addr, cidr->addr, full) != 0)
        return 0;
    return full == (family == 4 ? 4u : 16u) || ((addr[full] ^ cidr->addr[full]) & mask) == 0;
}

/* ---- matching request paths ---- */

static void add_param(struct gh_path_param *params, size_t max, size_t *count, const char *name,
                      size_t name_len, const char *value, size_t value_len)
{
    if (*count < max && params != NULL)
        params[*count] = (struct gh_path_param){name, name_len, value, value_len};
    (*count)++;
}

/*
 * Segment by segment, never decoding: "%2F" stays inside its segment, so an encoded slash can
 * never make one segment look like two. The request path is empty or starts with '/'; "/a/" has
 * the segments "a" and "" (a trailing slash is an empty segment, so "/items/:id" does not match
 * "/items/42/", and "/items" does not match "/items/"). Rules:
 *   - a literal segment matches the same bytes (case-sensitive);
 *   - ":name" matches exactly one non-empty segment, so "//" never fills a parameter;
 *   - a final "*" segment matches the rest, zero or more segments: "/files" followed by that
 *     segment matches "/files", "/files/" and "/files/a/b", but not "/filesX"; the rest is not
 *     recorded as a parameter;
 *   - the template "/" matches only "" and "/";
 *   - a request path with a "." or ".." segment (also as %2e) never matches anything.
 * On a match, returns 1 and sets *n_params to the number of parameters in the template, which
 * may exceed `max`: only the first `max` are stored (names slice the template without ':', values
 * slice `path`), and the caller sees the shortfall as *n_params > max. On no match, returns 0 and
 * sets *n_params to 0; `params` may have been partly written. `n_params` may be NULL.
 */
int gh_path_match(const char *template_path, const char *path, size_t path_len,
                  struct gh_path_param *params, size_t max, size_t *n_params)
{
    size_t count = 0;

    if (n_params != NULL)
        *n_params = 0;
    if (path == NULL && path_len == 0)
        path = ""; /* no arithmetic on a null pointer below */
    if (template_path == NULL || template_path[0] != '/' || (path == NULL && path_len > 0) ||
        (path_len > 0 && path[0] != '/') || (path_len > 0 && has_dot_segment(path, path_len)))
        return 0;
    if (template_path[1] == '\0')
        return path_len <= 1;

    const char *t = template_path + 1, *p = path_len > 0 ? path + 1 : path;
    const char *end = path + path_len;
    int more = path_len > 0; /* is there one more request segment at p (possibly empty)? */
    for (;;) {
        size_t tn = strcspn(t, "/");
        int last = t[tn] == '\0';
        if (last && tn == 1 && t[0] == '*')
            break; /* the rest, whatever it is */
        if (!more)
            return 0;
        size_t pn = seg_len(p, end);
        if (tn > 0 && t[0] == ':') {
            if (pn == 0)
                return 0;
            add_param(params, max, &count, t + 1, tn - 1, p, pn);
        } else if (tn != pn || memcmp(t, p, pn) != 0) {
            return 0;
        }
        p += pn;
        more = p < end;
        if (more)
            p++; /* the '/' */
        if (last) {
            if (more)
                return 0;
            break;
        }
        t += tn + 1;
    }
    if (n_params != NULL)
        *n_params = count;
    return 1;
}
