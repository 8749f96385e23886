// SPDX-License-Identifier: Apache-2.0
/*
 * The provider manager's log lines (see events.h). Kids are compared by their text: a key whose
 * material changed under the same kid is not reported as added or removed, and the line says the
 * set changed all the same.
 */
#include "oidc/events.h"

#include <string.h>

#include "common/error.h"
#include "common/log.h"

static json_t *base_fields(const struct gh_oidc_event_source *src)
{
    /* gh_log_text: a URL or an error naming what an IdP sent may hold bytes that are not UTF-8,
     * which json_string() and json_pack() refuse, dropping the field or the line's fields */
    return json_pack("{s:o, s:o}", "provider", gh_log_text(src->provider), "url",
                     gh_log_text(src->url));
}

void gh_oidc_log_fetch(const struct gh_oidc_event_source *src, const char *url, long status,
                       size_t bytes, int64_t duration_ms, int rc)
{
    if (!gh_log_enabled(GH_LOG_DEBUG))
        return;
    json_t *f = base_fields(src);
    json_object_set_new(f, "fetch_url", gh_log_text(url));
    json_object_set_new(f, "status", json_integer(status));
    json_object_set_new(f, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(f, "duration_ms", json_integer(duration_ms));
    json_object_set_new(f, "result",
                        json_string(rc == GH_OK ? "ok"
                                    : rc == 1   ? "redirect"
                                                : gh_error_reason(rc)));
    gh_log(GH_LOG_DEBUG, "identity provider fetch", f);
}

void gh_oidc_log_failure(const struct gh_oidc_event_source *src, const char *error, int kid_refetch,
                         int failures_in_row, int64_t retry_in_ms)
{
    json_t *f = base_fields(src);
    json_object_set_new(f, "error", gh_log_text(error));
    json_object_set_new(f, "kind", json_string(kid_refetch ? "kid refetch" : "refresh"));
    json_object_set_new(f, "failures_in_row", json_integer(failures_in_row));
    json_object_set_new(f, "retry_in_ms", json_integer(retry_in_ms));
    gh_log(GH_LOG_WARN, "identity provider fetch failed", f);
}

static int holds_kid(const struct gh_keyset *ks, const char *kid)
{
    for (size_t i = 0; ks != NULL && i < ks->jwks->count; i++) {
        if (ks->jwks->keys[i].kid != NULL && strcmp(ks->jwks->keys[i].kid, kid) == 0)
            return 1;
    }
    return 0;
}

/* The kids of `a` that `b` does not hold. */
static json_t *kids_missing(const struct gh_keyset *a, const struct gh_keyset *b)
{
    json_t *list = json_array();
    for (size_t i = 0; a != NULL && i < a->jwks->count; i++) {
        const char *kid = a->jwks->keys[i].kid;
        if (kid != NULL && !holds_kid(b, kid))
            json_array_append_new(list, gh_log_text(kid));
    }
    return list;
}

void gh_oidc_log_keys(const struct gh_oidc_event_source *src, const struct gh_keyset *prev,
                      const struct gh_keyset *ks)
{
    if (prev != NULL && prev->generation == ks->generation)
        return;
    json_t *f = base_fields(src);
    json_object_set_new(f, "jwks_uri", gh_log_text(ks->jwks_uri));
    json_object_set_new(f, "added", kids_missing(ks, prev));
    json_object_set_new(f, "removed", kids_missing(prev, ks));
    json_object_set_new(f, "keys", json_integer((json_int_t)ks->jwks->count));
    json_object_set_new(f, "usable", json_integer((json_int_t)gh_jwks_usable(ks->jwks)));
    gh_log(GH_LOG_INFO,
           prev == NULL ? "identity provider keys loaded" : "identity provider keys changed", f);
}

void gh_oidc_log_freshness(const struct gh_oidc_event_source *src, enum gh_oidc_freshness state,
                           int64_t expires_at_ms, const char *last_error)
{
    static const char *const messages[] = {
        [GH_OIDC_STALE] = "identity provider keys stale: serving the last good keys",
        [GH_OIDC_UNAVAILABLE] = ("identity provider keys unavailable: past --max-stale, its "
                                 "tokens get keys_unavailable"),
        [GH_OIDC_FRESH_AGAIN] = "identity provider keys fresh again",
    };
    static const enum gh_log_level levels[] = {
        [GH_OIDC_STALE] = GH_LOG_WARN,
        [GH_OIDC_UNAVAILABLE] = GH_LOG_ERROR,
        [GH_OIDC_FRESH_AGAIN] = GH_LOG_INFO,
    };
    json_t *f = base_fields(src);
    json_object_set_new(f, "expired_at_ms", json_integer(expires_at_ms));
    if (last_error != NULL && last_error[0] != '\0')
        json_object_set_new(f, "last_error", gh_log_text(last_error));
    gh_log(levels[state], messages[state], f);
}
