// SPDX-License-Identifier: Apache-2.0
/*
 * The little URL reading the proxy needs: a collection's upstream base URL (checked already by
 * gh_validate_upstream, so well formed) and an upstream's absolute Location, which is compared
 * with it to be turned back into the public path. Only http and https, only the parts the proxy
 * compares; anything else is "not a URL of ours" and passes unchanged. And a peer's address as
 * text, for X-Forwarded-For and the access log.
 */
#include "gateway/server_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

int gw_lcequal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return 0;
    for (size_t i = 0; i < a_len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return 0;
    }
    return 1;
}

/* A port of 1 to 5 digits, 1..65535; 0 when it is not one. */
static uint16_t parse_port(const char *p, size_t len)
{
    unsigned long v = 0;

    if (len == 0 || len > 5)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    return v >= 1 && v <= 65535 ? (uint16_t)v : 0;
}

/* host, [v6] or either with :port; 0 or -1. */
static int parse_authority(const char *a, size_t len, struct gw_url *out)
{
    const char *port = NULL, *end = a + len;

    if (len == 0 || memchr(a, '@', len) != NULL)
        return -1;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL || close == a + 1 || (close + 1 < end && close[1] != ':'))
            return -1;
        out->host = a + 1;
        out->host_len = (size_t)(close - a - 1);
        port = close + 1 < end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(a, ':', len);
        out->host = a;
        out->host_len = colon != NULL ? (size_t)(colon - a) : len;
        port = colon != NULL ? colon + 1 : NULL;
        if (out->host_len == 0)
            return -1;
    }
    if (port != NULL && (out->port = parse_port(port, (size_t)(end - port))) == 0)
        return -1;
    return 0;
}

int gw_url_parse(const char *s, size_t len, struct gw_url *out)
{
    size_t skip;

    memset(out, 0, sizeof *out);
    if (len >= 8 && gw_lcequal(s, 8, "https://", 8)) {
        out->https = 1;
        skip = 8;
    } else if (len >= 7 && gw_lcequal(s, 7, "http://", 7)) {
        skip = 7;
    } else {
        return -1;
    }
    const char *auth = s + skip, *end = s + len;
    size_t auth_len = 0;
    while (auth + auth_len < end && auth[auth_len] != '/' && auth[auth_len] != '?' &&
           auth[auth_len] != '#')
        auth_len++;
    out->authority = auth;
    out->authority_len = auth_len;
    if (parse_authority(auth, auth_len, out) != 0)
        return -1;
    if (out->port == 0)
        out->port = out->https ? 443 : 80;
    out->path = auth + auth_len;
    out->path_len = (size_t)(end - out->path);
    if (out->path_len == 0 || out->path[0] != '/') {
        if (out->path_len != 0)
            return -1; /* "?q" or "#f" right after the authority: not ours to rewrite */
        out->path = "/";
        out->path_len = 1;
    }
    return 0;
}

size_t gw_address_text(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t cap)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

    if (len == 0)
        return 0;
    if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
        if (inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, buf, (socklen_t)cap) == NULL)
            return 0;
    } else if (getnameinfo((const struct sockaddr *)ss, len, buf, (socklen_t)cap, NULL, 0,
                           NI_NUMERICHOST) != 0) {
        return 0;
    }
    return strlen(buf);
}
