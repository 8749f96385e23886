// SPDX-License-Identifier: Apache-2.0
/*
 * Claim checks. Numbers are compared as whole seconds after a range check, so no claim value can
 * overflow an integer conversion, and a fractional `exp` counts down to its second.
 */
#include "jose/claims.h"

#include <math.h>
#include <string.h>

#include "common/error.h"

/* The NumericDate member `name`: 1 with *value when present and sane, 0 when absent, or an error.
 */
static int numeric_date(const json_t *claims, const char *name, int64_t *value)
{
    const json_t *member = json_object_get(claims, name);

    *value = 0;
    if (member == NULL)
        return 0;
    if (json_is_integer(member)) {
        json_int_t v = json_integer_value(member);
        if (v < -GH_TIME_MAX || v > GH_TIME_MAX)
            return GH_ERR_CLAIM_TYPE;
        *value = (int64_t)v;
        return 1;
    }
    if (json_is_real(member)) {
        double v = json_real_value(member);
        if (!isfinite(v) || v < (double)-GH_TIME_MAX || v > (double)GH_TIME_MAX)
            return GH_ERR_CLAIM_TYPE;
        *value = (int64_t)floor(v);
        return 1;
    }
    return GH_ERR_CLAIM_TYPE;
}

static int string_in(const char *value, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(value, list[i]) == 0)
            return 1;
    }
    return 0;
}

/* `aud` is a string or an array of strings (RFC 7519 §4.1.3); 1 when it holds one of `audiences`.
 */
static int check_audience(const json_t *aud, const struct gh_claim_rules *rules)
{
    size_t i;
    const json_t *item;

    if (json_is_string(aud))
        return string_in(json_string_value(aud), rules->audiences, rules->n_audiences)
                   ? GH_OK
                   : GH_ERR_WRONG_AUDIENCE;
    if (!json_is_array(aud))
        return GH_ERR_CLAIM_TYPE;
    json_array_foreach (aud, i, item) {
        if (!json_is_string(item))
            return GH_ERR_CLAIM_TYPE;
    }
    json_array_foreach (aud, i, item) {
        if (string_in(json_string_value(item), rules->audiences, rules->n_audiences))
            return GH_OK;
    }
    return GH_ERR_WRONG_AUDIENCE;
}

static int check_types(const json_t *claims, int64_t times[3], int present[3], const char **claim)
{
    static const char *const names[3] = {"exp", "nbf", "iat"};
    const json_t *iss = json_object_get(claims, "iss");

    for (int i = 0; i < 3; i++) {
        int rc = numeric_date(claims, names[i], &times[i]);
        if (rc < 0) {
            *claim = names[i];
            return rc;
        }
        present[i] = rc;
    }
    if (iss != NULL && !json_is_string(iss)) {
        *claim = "iss";
        return GH_ERR_CLAIM_TYPE;
    }
    return GH_OK;
}

int gh_claims_check(const json_t *claims, const struct gh_claim_rules *rules, const char **claim)
{
    const char *ignored, *iss;
    const json_t *aud;
    int64_t times[3]; /* exp, nbf, iat */
    int present[3], rc;

    if (claim == NULL)
        claim = &ignored;
    *claim = NULL;
    if ((rc = check_types(claims, times, present, claim)) != GH_OK)
        return rc;
    for (size_t i = 0; i < rules->n_required; i++) {
        if (json_object_get(claims, rules->required[i]) == NULL) {
            *claim = rules->required[i];
            return GH_ERR_MISSING_CLAIM;
        }
    }
    *claim = "exp";
    if (present[0] && rules->now >= times[0] + rules->leeway)
        return GH_ERR_EXPIRED;
    *claim = "nbf";
    if (present[1] && times[1] > rules->now + rules->leeway)
        return GH_ERR_NOT_YET_VALID;
    *claim = "iat";
    if (present[2] && times[2] > rules->now + rules->leeway)
        return GH_ERR_ISSUED_IN_FUTURE;
    *claim = "iss";
    iss = json_string_value(json_object_get(claims, "iss"));
    if ((rules->issuer != NULL || rules->n_allowed_issuers > 0) && iss == NULL)
        return GH_ERR_MISSING_CLAIM;
    if (rules->issuer != NULL && strcmp(iss, rules->issuer) != 0)
        return GH_ERR_WRONG_ISSUER;
    if (rules->n_allowed_issuers > 0 &&
        !string_in(iss, rules->allowed_issuers, rules->n_allowed_issuers))
        return GH_ERR_WRONG_ISSUER;
    *claim = "aud";
    if (rules->n_audiences > 0) {
        aud = json_object_get(claims, "aud");
        if (aud == NULL)
            return GH_ERR_MISSING_CLAIM;
        if ((rc = check_audience(aud, rules)) != GH_OK)
            return rc;
    }
    *claim = NULL;
    return GH_OK;
}
