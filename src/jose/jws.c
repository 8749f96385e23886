// SPDX-License-Identifier: Apache-2.0
/*
 * Parsing a compact JWS costs one allocation for all decoded bytes and one JSON parse of the
 * header; the payload is left as bytes, because only a JWT (jwt.c) gives it a meaning.
 */
#include "jose/jws.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64url.h"
#include "common/error.h"
#include "common/json.h"
#include "jose/sig.h"

/* Header members whose presence changes how a JWS must be processed, which gatehouse refuses. */
static int check_header(struct gh_jws *jws)
{
    const json_t *alg = json_object_get(jws->header, "alg");
    const json_t *kid = json_object_get(jws->header, "kid");

    if (!json_is_string(alg))
        return GH_ERR_ALG_MISSING;
    /* None and NONE are no algorithm either; naming them as none counts the attack by its name */
    if (strcasecmp(json_string_value(alg), "none") == 0)
        return GH_ERR_ALG_NONE;
    jws->alg = gh_alg_from_name(json_string_value(alg), json_string_length(alg));
    if (jws->alg == GH_ALG_UNKNOWN)
        return GH_ERR_ALG_UNKNOWN;
    if (json_object_get(jws->header, "crit") != NULL)
        return GH_ERR_CRIT;
    if (json_object_get(jws->header, "b64") != NULL)
        return GH_ERR_B64;
    if (json_object_get(jws->header, "zip") != NULL)
        return GH_ERR_ZIP;
    if (kid != NULL) {
        if (!json_is_string(kid))
            return GH_ERR_KID_TYPE;
        jws->kid = json_string_value(kid);
        jws->kid_len = json_string_length(kid);
    }
    return GH_OK;
}

/*
 * For a token with an empty signature: GH_ERR_ALG_NONE when its header is a JSON object whose alg
 * is none in any case (an unsecured JWT, RFC 7519 §6, the classic attack), else
 * GH_ERR_EMPTY_SIGNATURE. Only the header is read; what else is wrong with the token matters less
 * than that it asks to go unsigned.
 */
static int empty_signature_reason(const char *header_b64, size_t header_len)
{
    unsigned char *buf = malloc(gh_b64url_decoded_max(header_len) + 1);
    json_t *header = NULL;
    size_t len;
    int rc = GH_ERR_EMPTY_SIGNATURE;

    if (buf != NULL && gh_b64url_decode(header_b64, header_len, buf, &len) == GH_OK &&
        gh_json_parse_object(buf, len, &header) == GH_OK) {
        const char *alg = json_string_value(json_object_get(header, "alg"));
        if (alg != NULL && strcasecmp(alg, "none") == 0)
            rc = GH_ERR_ALG_NONE;
    }
    json_decref(header);
    free(buf);
    return rc;
}

int gh_jws_parse(const char *token, size_t len, struct gh_jws *jws)
{
    const char *dot1, *dot2, *payload_b64, *sig_b64;
    size_t header_len, payload_b64_len, sig_b64_len, decoded_len;
    unsigned char *header_buf = NULL;
    int rc;

    memset(jws, 0, sizeof *jws);
    if (len > GH_TOKEN_MAX)
        return GH_ERR_TOKEN_TOO_LARGE;
    dot1 = memchr(token, '.', len);
    dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return GH_ERR_SEGMENTS;
    header_len = (size_t)(dot1 - token);
    payload_b64 = dot1 + 1;
    payload_b64_len = (size_t)(dot2 - payload_b64);
    sig_b64 = dot2 + 1;
    sig_b64_len = len - (size_t)(sig_b64 - token);
    if (header_len == 0)
        return GH_ERR_SEGMENTS;
    if (sig_b64_len == 0)
        return empty_signature_reason(token, header_len);
    if (gh_b64url_decoded_max(payload_b64_len) > GH_PAYLOAD_MAX)
        return GH_ERR_PAYLOAD_TOO_LARGE;

    /* header, then payload and signature, decoded into one buffer */
    header_buf = malloc(gh_b64url_decoded_max(header_len) + 1);
    jws->payload =
        malloc(gh_b64url_decoded_max(payload_b64_len) + gh_b64url_decoded_max(sig_b64_len) + 1);
    rc = GH_ERR_NOMEM;
    if (header_buf == NULL || jws->payload == NULL)
        goto fail;
    if ((rc = gh_b64url_decode(token, header_len, header_buf, &decoded_len)) != GH_OK ||
        (rc = gh_json_parse_object(header_buf, decoded_len, &jws->header)) != GH_OK)
        goto fail;
    if ((rc = gh_b64url_decode(payload_b64, payload_b64_len, jws->payload, &jws->payload_len)) !=
        GH_OK)
        goto fail;
    if (jws->payload_len > GH_PAYLOAD_MAX) {
        rc = GH_ERR_PAYLOAD_TOO_LARGE;
        goto fail;
    }
    jws->sig = jws->payload + jws->payload_len;
    if ((rc = gh_b64url_decode(sig_b64, sig_b64_len, jws->sig, &jws->sig_len)) != GH_OK ||
        (rc = check_header(jws)) != GH_OK)
        goto fail;
    jws->signing_input = token;
    jws->signing_input_len = (size_t)(dot2 - token);
    free(header_buf);
    return GH_OK;
fail:
    free(header_buf);
    gh_jws_clear(jws);
    return rc;
}

void gh_jws_clear(struct gh_jws *jws)
{
    if (jws == NULL)
        return;
    json_decref(jws->header);
    free(jws->payload);
    memset(jws, 0, sizeof *jws);
}

static int verify_with(const struct gh_jws *jws, const struct gh_jwk *key)
{
    return gh_sig_verify(jws->alg, key, (const unsigned char *)jws->signing_input,
                         jws->signing_input_len, jws->sig, jws->sig_len);
}

/* 1 when `key`, refused with `status`, would be of the type `alg` needs but is too weak. */
static int weak_of_type(const struct gh_jwk *key, enum gh_alg alg, int status)
{
    const struct gh_alg_info *info = gh_alg_info(alg);
    return strcmp(gh_error_reason(status), "weak_key") == 0 && info != NULL &&
           info->kty == key->kty;
}

int gh_jws_verify(const struct gh_jws *jws, unsigned allowed, const struct gh_jwks *keys,
                  const struct gh_jwk **used)
{
    int by_kid = jws->kid != NULL && !keys->ignore_kid;
    int result = by_kid ? GH_ERR_UNKNOWN_KID : GH_ERR_NO_FITTING_KEY;
    int tries = 0;
    const struct gh_jwk *culprit = NULL;

    if (used != NULL)
        *used = NULL;
    if (!(allowed & GH_ALG_BIT(jws->alg)))
        return GH_ERR_ALG_NOT_ALLOWED;
    for (size_t i = 0; i < keys->count; i++) {
        const struct gh_jwk *key = &keys->keys[i];
        int fits;
        if (by_kid && (key->kid == NULL || key->kid_len != jws->kid_len ||
                       memcmp(key->kid, jws->kid, jws->kid_len) != 0))
            continue;
        fits = gh_jwk_fits(key, jws->alg);
        if (fits != GH_OK) {
            /* with a kid, say why the key it names cannot be used; without, keep looking, but
             * name a key of the alg's type that is too weak: "no key fits" would hide that the
             * key itself is the problem (an RSA-1024 key given to `token verify --key`) */
            if ((by_kid && result == GH_ERR_UNKNOWN_KID) ||
                (!by_kid && result == GH_ERR_NO_FITTING_KEY && weak_of_type(key, jws->alg, fits))) {
                result = fits;
                culprit = key;
            }
            continue;
        }
        if (!by_kid && tries++ == GH_JWS_KIDLESS_TRIES) {
            /* another key fits but the bound is reached: say the token must name its key, not
             * that its signature is bad (it may be good for a key left untried) */
            result = GH_ERR_KIDLESS_TOO_MANY_KEYS;
            culprit = NULL;
            break;
        }
        result = verify_with(jws, key);
        if (result == GH_OK) {
            if (used != NULL)
                *used = key;
            return GH_OK;
        }
        culprit = NULL; /* a signature was checked: that is the answer, not a skipped key */
        if (by_kid)
            return result; /* set rules leave at most one usable key per kid */
    }
    if (used != NULL)
        *used = culprit;
    return result;
}
