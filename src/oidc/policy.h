// SPDX-License-Identifier: Apache-2.0
/*
 * The rules of SPEC §4 that need no network: which URLs gatehouse may fetch keys from, what issuer
 * a discovery URL implies, and how long a fetched key set is kept. Pure functions, so they are
 * tested on their own and the fetching code only applies them.
 */
#ifndef GH_OIDC_POLICY_H
#define GH_OIDC_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "jose/claims.h"

#define GH_OIDC_TTL_MIN     60
#define GH_OIDC_TTL_MAX     86400
#define GH_OIDC_TTL_DEFAULT 900
#define GH_DISCOVERY_SUFFIX "/.well-known/openid-configuration"

/*
 * GH_OK when `url` is an absolute URL gatehouse may fetch: https, or http to a loopback host
 * (localhost, 127.0.0.0/8, ::1) or to any host when `allow_insecure`. GH_ERR_URL_INVALID for
 * anything else that is not an absolute http(s) URL with a host, GH_ERR_URL_INSECURE for http.
 */
int gh_oidc_url_check(const char *url, int allow_insecure);

/* 1 when `host` (as in a URL, IPv6 in brackets or not) names the loopback interface. */
int gh_oidc_host_is_loopback(const char *host);

/*
 * GH_OK when a fetch for the provider configured at `origin` may go on to `url`, a URL the
 * provider's answers lead to (a discovery document's jwks_uri, a redirect's Location): `url`
 * passes gh_oidc_url_check, and when its host is this machine (loopback, the unspecified address,
 * IPv4-mapped forms of both, *.localhost) `origin`'s host is loopback too; else GH_ERR_URL_LOCAL.
 * Without this, any IdP, or whoever controls its discovery document, could make the gateway GET
 * its own host's services (issue 11).
 */
int gh_oidc_url_check_from(const char *origin, const char *url, int allow_insecure);

/* 1 when the URL's host is loopback by gh_oidc_host_is_loopback (0 for what is no URL). */
int gh_oidc_url_is_loopback(const char *url);

/* 1 when a connection to `addr` (an AF_INET or AF_INET6 socket address) reaches this machine:
 * loopback or unspecified, IPv4-mapped or not. For names that resolve to such an address. */
int gh_oidc_addr_is_local(const void *sockaddr);

/* 1 when URLs `a` and `b` have the same scheme, host and port: a failed fetch of `b` for the
 * provider configured at `a` reports its detail only then (else: unreachable or not a valid
 * document, never what another host answered). */
int gh_oidc_same_origin(const char *a, const char *b);

/*
 * The issuer a discovery URL must announce: the URL without GH_DISCOVERY_SUFFIX, written into
 * `out` (`cap` bytes). GH_ERR_DISCOVERY_URL when the suffix is missing or nothing is left.
 */
int gh_oidc_expected_issuer(const char *discovery_url, char *out, size_t cap);

/*
 * 1 when `issuer` (`len` bytes, as a discovery document spells it) is the one the discovery URL
 * implies: less one terminating '/', it equals `expected` (gh_oidc_expected_issuer of the URL).
 * The one rule the gateway's providers, `token verify --discovery-url` and the admin API's
 * save-time check share (SPEC §4).
 */
int gh_oidc_issuer_fits(const char *expected, const char *issuer, size_t len);

/*
 * Sets the issuer rule of an oidc profile's tokens into `rules` (SPEC §3): `iss` must equal
 * `provider_issuer` exactly as the discovery document spells it (NULL for a provider configured by
 * JWKS URI: no rule), unless `allowed` (the profile's allowed_issuers, borrowed; they must outlive
 * `rules`) is non-empty: then `iss` must be one of them instead.
 */
void gh_oidc_issuer_rules(const char *provider_issuer, const char *const *allowed, size_t n_allowed,
                          struct gh_claim_rules *rules);

/*
 * Seconds to keep a response, from its Cache-Control, Expires and Date header values (each may be
 * NULL): max-age wins over Expires; no-cache/no-store mean the minimum; the result is clamped to
 * [GH_OIDC_TTL_MIN, GH_OIDC_TTL_MAX], GH_OIDC_TTL_DEFAULT when neither header says anything usable.
 * `now` (epoch seconds) is used for an Expires without Date.
 */
int64_t gh_oidc_ttl(const char *cache_control, const char *expires, const char *date, int64_t now);

#endif
