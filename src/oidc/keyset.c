// SPDX-License-Identifier: Apache-2.0
/*
 * Discovery parsing and key set construction. A key set whose JWKS text is byte-identical to the
 * previous one keeps its generation, so caches keyed on it survive a refresh that changed nothing.
 */
#include "oidc/keyset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "oidc/policy.h"

static void set_error(char *error, size_t cap, int code, const char *detail)
{
    snprintf(error, cap, "%s%s%s", gh_error_message(code), detail[0] ? ": " : "", detail);
}

int gh_discovery_parse(const char *doc, size_t len, const char *expected_issuer, char **issuer,
                       char **jwks_uri, char *error, size_t cap)
{
    json_t *obj = NULL;
    const char *iss, *uri;
    size_t iss_len, uri_len;
    int rc;

    *issuer = *jwks_uri = NULL;
    if (gh_json_parse_object(doc, len, &obj) != GH_OK ||
        gh_json_string_member(obj, "issuer", &iss, &iss_len) != GH_OK ||
        gh_json_string_member(obj, "jwks_uri", &uri, &uri_len) != GH_OK) {
        set_error(error, cap, GH_ERR_DISCOVERY_FORM, "");
        rc = GH_ERR_DISCOVERY_FORM;
        goto out;
    }
    if (!gh_oidc_issuer_fits(expected_issuer, iss, iss_len)) {
        char detail[320];
        /* both values are public configuration, and seeing them is how an operator fixes this */
        snprintf(detail, sizeof detail,
                 "expected \"%.100s\" (or with one '/' at the end), the document says \"%.100s\"",
                 expected_issuer, iss);
        set_error(error, cap, GH_ERR_DISCOVERY_ISSUER, detail);
        rc = GH_ERR_DISCOVERY_ISSUER;
        goto out;
    }
    *issuer = strdup(iss);
    *jwks_uri = strdup(uri);
    rc = *issuer != NULL && *jwks_uri != NULL ? GH_OK : GH_ERR_NOMEM;
    if (rc != GH_OK) {
        free(*issuer);
        free(*jwks_uri);
        *issuer = *jwks_uri = NULL;
    }
out:
    json_decref(obj);
    return rc;
}

static void keyset_destroy(struct gh_snapshot *snap)
{
    struct gh_keyset *ks = (struct gh_keyset *)snap;
    gh_jwks_free(ks->jwks);
    free(ks->issuer);
    free(ks->jwks_uri);
    free(ks->discovery_json);
    free(ks->jwks_json);
    free(ks);
}

int gh_keyset_build(char *issuer, char *jwks_uri, char *discovery_json, char *jwks_json,
                    int64_t fetched_at, int64_t expires_at, const struct gh_keyset *previous,
                    struct gh_keyset **out, char *error, size_t cap)
{
    struct gh_keyset *ks = calloc(1, sizeof *ks);
    int rc;

    *out = NULL;
    if (ks == NULL) {
        free(issuer);
        free(jwks_uri);
        free(discovery_json);
        free(jwks_json);
        return GH_ERR_NOMEM;
    }
    gh_snapshot_init(&ks->snap, keyset_destroy);
    ks->issuer = issuer;
    ks->jwks_uri = jwks_uri;
    ks->discovery_json = discovery_json;
    ks->jwks_json = jwks_json;
    ks->fetched_at = fetched_at;
    ks->expires_at = expires_at;
    rc = gh_jwks_parse(jwks_json, strlen(jwks_json), 0, &ks->jwks);
    if (rc == GH_OK && gh_jwks_usable(ks->jwks) == 0)
        rc = GH_ERR_JWKS_NO_KEYS;
    if (rc != GH_OK) {
        set_error(error, cap, rc, "");
        keyset_destroy(&ks->snap);
        return rc;
    }
    ks->generation = previous == NULL                              ? 1
                     : strcmp(previous->jwks_json, jwks_json) == 0 ? previous->generation
                                                                   : previous->generation + 1;
    *out = ks;
    return GH_OK;
}
