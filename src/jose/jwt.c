// SPDX-License-Identifier: Apache-2.0
/*
 * JWT = JWS + claims. Kept apart from jws.c because the Wycheproof JWS vectors (arbitrary payload
 * bytes) go through the JWS layer alone.
 */
#include "jose/jwt.h"

#include <string.h>

#include "common/error.h"
#include "common/json.h"

int gh_jwt_parse(const char *token, size_t len, struct gh_jwt *jwt)
{
    int rc;

    memset(jwt, 0, sizeof *jwt);
    if ((rc = gh_jws_parse(token, len, &jwt->jws)) != GH_OK)
        return rc;
    if ((rc = gh_json_parse_object(jwt->jws.payload, jwt->jws.payload_len, &jwt->claims)) != GH_OK)
        gh_jwt_clear(jwt);
    return rc;
}

void gh_jwt_clear(struct gh_jwt *jwt)
{
    if (jwt == NULL)
        return;
    gh_jws_clear(&jwt->jws);
    json_decref(jwt->claims);
    jwt->claims = NULL;
}

int gh_jwt_verify(const struct gh_jwt *jwt, const struct gh_jwt_policy *policy,
                  const struct gh_jwk **used, const char **claim)
{
    int rc;

    if (claim != NULL)
        *claim = NULL;
    rc = gh_jws_verify(&jwt->jws, policy->algorithms, policy->keys, used);
    if (rc != GH_OK)
        return rc;
    return gh_claims_check(jwt->claims, &policy->rules, claim);
}

int gh_jwt_check(const char *token, size_t len, const struct gh_jwt_policy *policy)
{
    struct gh_jwt jwt;
    int rc = gh_jwt_parse(token, len, &jwt);
    if (rc == GH_OK)
        rc = gh_jwt_verify(&jwt, policy, NULL, NULL);
    gh_jwt_clear(&jwt);
    return rc;
}
