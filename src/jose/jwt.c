// SPDX-License-Identifier: Apache-2.0
/*
 * JWT = JWS + claims. Kept apart from jws.c because the Wycheproof JWS vectors (arbitrary payload
 * bytes) go through the JWS layer alone.
 */
#include "jose/jwt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/json.h"
#include "common/json_region.h"

int gh_jwt_parse(const char *token, size_t len, struct gh_jwt *jwt)
{
    int rc;

    memset(jwt, 0, sizeof *jwt);
    gh_json_region_enter(); /* the header and claims live for one decision */
    if ((rc = gh_jws_parse(token, len, &jwt->jws)) == GH_OK &&
        (rc = gh_json_parse_object(jwt->jws.payload, jwt->jws.payload_len, &jwt->claims)) != GH_OK)
        gh_jwt_clear(jwt);
    gh_json_region_leave();
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

/* A media type without its "application/" (RFC 7515 §4.1.9: a typ without '/' means it). */
static void bare_media_type(const char **s, size_t *len)
{
    static const char prefix[] = "application/";

    if (*len > sizeof prefix - 1 && strncasecmp(*s, prefix, sizeof prefix - 1) == 0) {
        *s += sizeof prefix - 1;
        *len -= sizeof prefix - 1;
    }
}

int gh_jwt_typ_check(const struct gh_jws *jws, const char *const *types, size_t n)
{
    const json_t *typ = json_object_get(jws->header, "typ");
    const char *sent;
    size_t sent_len;

    if (n == 0)
        return GH_OK;
    if (!json_is_string(typ))
        return GH_ERR_TYP_NOT_ACCEPTED;
    sent = json_string_value(typ);
    sent_len = json_string_length(typ);
    bare_media_type(&sent, &sent_len);
    for (size_t i = 0; i < n; i++) {
        const char *want = types[i];
        size_t want_len = strlen(want);
        bare_media_type(&want, &want_len);
        /* a NUL inside the header's typ makes its length differ from strlen: never equal */
        if (want_len == sent_len && strlen(sent) == sent_len &&
            strncasecmp(want, sent, sent_len) == 0)
            return GH_OK;
    }
    return GH_ERR_TYP_NOT_ACCEPTED;
}

static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || s[i] == '\'')
            return 0;
    return 1;
}

void gh_jwt_typ_explain(const struct gh_jws *jws, const char *const *types, size_t n,
                        const char *by, char *out, size_t cap)
{
    const json_t *typ = json_object_get(jws->header, "typ");
    const char *sep = by != NULL ? " by " : "", *who = by != NULL ? by : "";
    size_t o;

    if (!json_is_string(typ))
        o = (size_t)snprintf(
            out, cap, "the token has no type (typ), and only these are accepted%s%s:", sep, who);
    else if (json_string_length(typ) <= 64 &&
             printable(json_string_value(typ), json_string_length(typ)))
        o = (size_t)snprintf(out, cap, "token type '%s' is not accepted%s%s (accepted:",
                             json_string_value(typ), sep, who);
    else
        o = (size_t)snprintf(out, cap, "the token's type is not accepted%s%s (accepted:", sep, who);
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : " ", types[i]);
    if (json_is_string(typ) && o < cap)
        snprintf(out + o, cap - o, ")");
}

int gh_jwt_verify(const struct gh_jwt *jwt, const struct gh_jwt_policy *policy,
                  const struct gh_jwk **used, const char **claim)
{
    int rc;

    if (claim != NULL)
        *claim = NULL;
    rc = gh_jws_verify(&jwt->jws, policy->algorithms, policy->keys, used);
    if (rc == GH_OK) /* typ is read only once the header is known to be the signer's */
        rc = gh_jwt_typ_check(&jwt->jws, policy->types, policy->n_types);
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
