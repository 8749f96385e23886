// SPDX-License-Identifier: Apache-2.0
/*
 * URL and caching rules. Header values come straight from the network, so parsing is defensive:
 * numbers are bounded, unknown directives are ignored, and nothing here can fail loudly.
 */
#include "oidc/policy.h"

#include <arpa/inet.h>
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
