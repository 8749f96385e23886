// SPDX-License-Identifier: Apache-2.0
/*
 * URL and caching rules. Header values come straight from the network, so parsing is defensive:
 * numbers are bounded, unknown directives are ignored, and nothing here can fail loudly.
 */
#include "oidc/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

int gh_oidc_host_is_loopback(const char *host)
{
    char buf[64];
    struct in_addr v4;
    struct in6_addr v6;
    size_t len = strlen(host);

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') { /* [::1] */
        if (len - 2 >= sizeof buf)
            return 0;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return 0;
}

/* The URL's scheme, host and port (curl's default for the scheme when none), each owned by the
 * caller (curl_free); GH_ERR_URL_INVALID when it is no absolute URL with a host. */
static int url_parts(const char *url, char **scheme, char **host, char **port)
{
    CURLU *u = curl_url();
    int rc = GH_ERR_URL_INVALID;

    *scheme = *host = NULL;
    if (port != NULL)
        *port = NULL;
    if (u == NULL)
        return GH_ERR_NOMEM;
    /* no guessing of schemes, no defaults: exactly what the operator wrote must be a full URL */
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK && (*host)[0] != '\0' &&
        (port == NULL || curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK))
        rc = GH_OK;
    curl_url_cleanup(u);
    if (rc != GH_OK) {
        curl_free(*scheme);
        curl_free(*host);
        *scheme = *host = NULL;
    }
    return rc;
}

/* 1 for an IPv4 address (host order) that reaches this host: 127.0.0.0/8, and 0.0.0.0/8, which
 * Linux connects to this host too. */
static int v4_is_local(uint32_t a)
{
    return (a >> 24) == 127 || (a >> 24) == 0;
}

static int v6_is_local(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        uint32_t v4;
        memcpy(&v4, a->s6_addr + 12, 4);
        return v4_is_local(ntohl(v4));
    }
    return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a);
}

int gh_oidc_addr_is_local(const void *sockaddr)
{
    sa_family_t family;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;

    /* copied out, not cast: the caller's bytes may be any of the sockaddr types */
    memcpy(&family, (const char *)sockaddr + offsetof(struct sockaddr, sa_family), sizeof family);
    if (family == AF_INET) {
        memcpy(&v4, sockaddr, sizeof v4);
        return v4_is_local(ntohl(v4.sin_addr.s_addr));
    }
    if (family == AF_INET6) {
        memcpy(&v6, sockaddr, sizeof v6);
        return v6_is_local(&v6.sin6_addr);
    }
    return 0;
}

/* 1 when `host` (from curl's URL parser, so IPv4 is already in dotted form) is this machine. */
static int host_is_local(const char *host)
{
    char buf[64];
    size_t len = strlen(host);
    struct in_addr v4;
    struct in6_addr v6;

    if (len > 0 && host[len - 1] == '.') /* "localhost." is localhost */
        len--;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, host, len);
    buf[len] = '\0';
    /* RFC 6761 §6.3: localhost and every name under it are loopback, and curl resolves them so */
    if (strcasecmp(buf, "localhost") == 0 ||
        (len > 10 && strcasecmp(buf + len - 10, ".localhost") == 0))
        return 1;
    if (inet_pton(AF_INET, buf, &v4) == 1)
        return v4_is_local(ntohl(v4.s_addr));
    if (inet_pton(AF_INET6, buf, &v6) == 1)
        return v6_is_local(&v6);
    return 0;
}

int gh_oidc_url_is_loopback(const char *url)
{
    char *scheme, *host;
    int loopback = url_parts(url, &scheme, &host, NULL) == GH_OK && gh_oidc_host_is_loopback(host);
    curl_free(scheme);
    curl_free(host);
    return loopback;
}

int gh_oidc_url_check_from(const char *origin, const char *url, int allow_insecure)
{
    char *scheme = NULL, *host = NULL;
    int rc = gh_oidc_url_check(url, allow_insecure);

    if (rc != GH_OK || gh_oidc_url_is_loopback(origin))
        return rc;
    if ((rc = url_parts(url, &scheme, &host, NULL)) == GH_OK && host_is_local(host))
        rc = GH_ERR_URL_LOCAL;
    curl_free(scheme);
    curl_free(host);
    return rc;
}

int gh_oidc_same_origin(const char *a, const char *b)
{
    char *sa, *ha, *pa, *sb = NULL, *hb = NULL, *pb = NULL;
    int same = 0;

    if (url_parts(a, &sa, &ha, &pa) != GH_OK)
        return 0;
    if (url_parts(b, &sb, &hb, &pb) == GH_OK)
        same = strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
    curl_free(sa);
    curl_free(ha);
    curl_free(pa);
    curl_free(sb);
    curl_free(hb);
    curl_free(pb);
    return same;
}

int gh_oidc_url_check(const char *url, int allow_insecure)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = GH_ERR_URL_INVALID;

    if (u == NULL)
        return GH_ERR_NOMEM;
    /* no guessing of schemes, no defaults: exactly what the operator wrote must be a full URL */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        goto out;
    if (strcmp(scheme, "https") == 0)
        rc = GH_OK;
    else if (strcmp(scheme, "http") == 0)
        rc = allow_insecure || gh_oidc_host_is_loopback(host) ? GH_OK : GH_ERR_URL_INSECURE;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int gh_oidc_expected_issuer(const char *discovery_url, char *out, size_t cap)
{
    size_t len = strlen(discovery_url), suffix = strlen(GH_DISCOVERY_SUFFIX);

    if (len <= suffix || strcmp(discovery_url + len - suffix, GH_DISCOVERY_SUFFIX) != 0 ||
        len - suffix >= cap)
        return GH_ERR_DISCOVERY_URL;
    memcpy(out, discovery_url, len - suffix);
    out[len - suffix] = '\0';
    return GH_OK;
}

int gh_oidc_issuer_fits(const char *expected, const char *issuer, size_t len)
{
    /* OpenID Connect Discovery 1.0 §4: the discovery URL is the issuer less one terminating '/'
     * followed by the suffix, so Auth0's "https://TENANT.auth0.com/" is valid. One only, and no
     * other normalisation: the comparison stays the simple string comparison it names. */
    if (len > 0 && issuer[len - 1] == '/')
        len--;
    return len == strlen(expected) && memcmp(issuer, expected, len) == 0;
}

void gh_oidc_issuer_rules(const char *provider_issuer, const char *const *allowed, size_t n_allowed,
                          struct gh_claim_rules *rules)
{
    /* Non-empty allowed_issuers replace the provider's issuer instead of narrowing it: ADFS
     * (http://HOST/adfs/services/trust in access tokens beside https://HOST/adfs) and Entra ID v1
     * tokens (https://sts.windows.net/TENANT/ beside a v2.0 discovery issuer) never carry the
     * discovery issuer, and requiring both would refuse every token of theirs. The keys still
     * come from the checked discovery document. */
    rules->issuer = n_allowed > 0 ? NULL : provider_issuer;
    rules->allowed_issuers = allowed;
    rules->n_allowed_issuers = n_allowed;
}

static int64_t clamp_ttl(int64_t ttl)
{
    return ttl < GH_OIDC_TTL_MIN ? GH_OIDC_TTL_MIN : ttl > GH_OIDC_TTL_MAX ? GH_OIDC_TTL_MAX : ttl;
}

/* max-age from a Cache-Control value: >= 0 when found, -1 when absent, -2 for no-cache/no-store. */
static int64_t max_age(const char *cc)
{
    int64_t found = -1;
    const char *p = cc;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',')
            p++;
        size_t len = (size_t)(p - start);
        if ((len == 8 && strncasecmp(start, "no-store", 8) == 0) ||
            (len == 8 && strncasecmp(start, "no-cache", 8) == 0))
            return -2;
        if (len > 8 && strncasecmp(start, "max-age=", 8) == 0 && isdigit((unsigned char)start[8])) {
            int64_t v = 0;
            for (const char *d = start + 8; d < p && isdigit((unsigned char)*d); d++)
                v = v > GH_OIDC_TTL_MAX ? v : v * 10 + (*d - '0'); /* saturate, never overflow */
            found = v;
        }
    }
    return found;
}

int64_t gh_oidc_ttl(const char *cache_control, const char *expires, const char *date, int64_t now)
{
    if (cache_control != NULL) {
        int64_t age = max_age(cache_control);
        if (age == -2)
            return GH_OIDC_TTL_MIN;
        if (age >= 0)
            return clamp_ttl(age);
    }
    if (expires != NULL) {
        time_t exp = curl_getdate(expires, NULL);
        time_t base = date != NULL ? curl_getdate(date, NULL) : -1;
        if (exp == -1) /* RFC 9111 §5.3: an invalid Expires means already expired */
            return GH_OIDC_TTL_MIN;
        return clamp_ttl((int64_t)exp - (base != -1 ? (int64_t)base : now));
    }
    return GH_OIDC_TTL_DEFAULT;
}
