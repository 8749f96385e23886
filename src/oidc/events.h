// SPDX-License-Identifier: Apache-2.0
/*
 * What the provider manager tells an operator through the log (issue 10, item 6): a fetch that
 * failed, keys that changed (which kids came and went), keys that went stale or unavailable and
 * came back, and at debug level every HTTP fetch. One JSON line each through gh_log, always with
 * the provider's id and URL. Only public facts go in: URLs, kids, statuses, sizes, error texts;
 * never a token or key material. Internal to src/oidc, called on the manager thread.
 */
#ifndef GH_OIDC_EVENTS_H
#define GH_OIDC_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "oidc/provider.h"

struct gh_oidc_event_source {
    const char *provider; /* id */
    const char *url;      /* the discovery URL or JWKS URI of the provider */
};

/* debug: one HTTP GET ended (status 0 when no answer came), with its size and duration. */
void gh_oidc_log_fetch(const struct gh_oidc_event_source *src, const char *url, long status,
                       size_t bytes, int64_t duration_ms, int rc);

/* warn: a refresh or refetch failed; the last good keys (if any) keep serving. */
void gh_oidc_log_failure(const struct gh_oidc_event_source *src, const char *error, int kid_refetch,
                         int failures_in_row, int64_t retry_in_ms);

/* info: keys published: the first ones (`prev` NULL) or a change, with the kids added and removed.
 * Nothing is logged when the set is the same as before. */
void gh_oidc_log_keys(const struct gh_oidc_event_source *src, const struct gh_keyset *prev,
                      const struct gh_keyset *ks);

enum gh_oidc_freshness { GH_OIDC_STALE, GH_OIDC_UNAVAILABLE, GH_OIDC_FRESH_AGAIN };

/* warn (stale), error (unavailable) or info (fresh again): a change of the keys' state. */
void gh_oidc_log_freshness(const struct gh_oidc_event_source *src, enum gh_oidc_freshness state,
                           int64_t expires_at_ms, const char *last_error);

#endif
