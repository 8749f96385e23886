// SPDX-License-Identifier: Apache-2.0
/*
 * The claim checks of SPEC §3, run only after the signature verified: types of the registered time
 * claims, required claims, times with leeway, issuer and audience.
 */
#ifndef GH_JOSE_CLAIMS_H
#define GH_JOSE_CLAIMS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GH_LEEWAY_MAX 300
/* Latest time a claim may name: 9999-12-31T23:59:59Z. Beyond it a number is not a date. */
#define GH_TIME_MAX INT64_C(253402300799)

struct gh_claim_rules {
    int64_t now;                 /* seconds since the epoch */
    int64_t leeway;              /* 0..GH_LEEWAY_MAX */
    const char *const *required; /* names that must be present */
    size_t n_required;
    const char *issuer;                 /* exact `iss` (an OIDC provider's), or NULL */
    const char *const *allowed_issuers; /* `iss` must be one of them when non-empty */
    size_t n_allowed_issuers;
    const char *const *audiences; /* `aud` must contain one of them when non-empty */
    size_t n_audiences;
};

/*
 * Checks `claims` (a JSON object) against `rules`. On refusal returns the GH_ERR_* and, when
 * `claim` is not NULL, points *claim at the name of the claim at fault (static or from rules).
 * Order: bad_claim_type, missing_claim, expired, not_yet_valid, issued_in_future, wrong_issuer,
 * wrong_audience.
 */
int gh_claims_check(const json_t *claims, const struct gh_claim_rules *rules, const char **claim);

#endif
