// SPDX-License-Identifier: Apache-2.0
/*
 * The table of algorithms of RFC 7518 §3 and RFC 8037 that gatehouse supports, with the key
 * properties each requires; every other module asks this table instead of switching on names.
 */
#include "jose/alg.h"

#include <string.h>

#include "common/error.h"

static const struct gh_alg_info alg_table[GH_ALG_COUNT] = {
    [GH_ALG_RS256] = {"RS256", GH_FAMILY_RSA_PKCS1, GH_KTY_RSA, GH_CRV_NONE, "SHA256", 32, 0},
    [GH_ALG_RS384] = {"RS384", GH_FAMILY_RSA_PKCS1, GH_KTY_RSA, GH_CRV_NONE, "SHA384", 48, 0},
    [GH_ALG_RS512] = {"RS512", GH_FAMILY_RSA_PKCS1, GH_KTY_RSA, GH_CRV_NONE, "SHA512", 64, 0},
    [GH_ALG_PS256] = {"PS256", GH_FAMILY_RSA_PSS, GH_KTY_RSA, GH_CRV_NONE, "SHA256", 32, 0},
    [GH_ALG_PS384] = {"PS384", GH_FAMILY_RSA_PSS, GH_KTY_RSA, GH_CRV_NONE, "SHA384", 48, 0},
    [GH_ALG_PS512] = {"PS512", GH_FAMILY_RSA_PSS, GH_KTY_RSA, GH_CRV_NONE, "SHA512", 64, 0},
    [GH_ALG_ES256] = {"ES256", GH_FAMILY_ECDSA, GH_KTY_EC, GH_CRV_P256, "SHA256", 32, 32},
    [GH_ALG_ES384] = {"ES384", GH_FAMILY_ECDSA, GH_KTY_EC, GH_CRV_P384, "SHA384", 48, 48},
    [GH_ALG_ES512] = {"ES512", GH_FAMILY_ECDSA, GH_KTY_EC, GH_CRV_P521, "SHA512", 64, 66},
    [GH_ALG_EDDSA] = {"EdDSA", GH_FAMILY_EDDSA, GH_KTY_OKP, GH_CRV_ED25519, NULL, 0, 32},
    [GH_ALG_HS256] = {"HS256", GH_FAMILY_HMAC, GH_KTY_OCT, GH_CRV_NONE, "SHA256", 32, 0},
    [GH_ALG_HS384] = {"HS384", GH_FAMILY_HMAC, GH_KTY_OCT, GH_CRV_NONE, "SHA384", 48, 0},
    [GH_ALG_HS512] = {"HS512", GH_FAMILY_HMAC, GH_KTY_OCT, GH_CRV_NONE, "SHA512", 64, 0},
};

const struct gh_alg_info *gh_alg_info(enum gh_alg alg)
{
    if (alg <= GH_ALG_UNKNOWN || alg >= GH_ALG_COUNT)
        return NULL;
    return &alg_table[alg];
}

enum gh_alg gh_alg_from_name(const char *name, size_t len)
{
    for (int a = GH_ALG_UNKNOWN + 1; a < GH_ALG_COUNT; a++) {
        if (strlen(alg_table[a].name) == len && memcmp(alg_table[a].name, name, len) == 0)
            return (enum gh_alg)a;
    }
    return GH_ALG_UNKNOWN;
}

const char *gh_alg_name(enum gh_alg alg)
{
    const struct gh_alg_info *info = gh_alg_info(alg);
    return info != NULL ? info->name : "unknown";
}

static const char *const crv_names[] = {
    [GH_CRV_NONE] = "",      [GH_CRV_P256] = "P-256",      [GH_CRV_P384] = "P-384",
    [GH_CRV_P521] = "P-521", [GH_CRV_ED25519] = "Ed25519",
};

enum gh_crv gh_crv_from_name(const char *name)
{
    for (int c = GH_CRV_P256; c <= GH_CRV_ED25519; c++) {
        if (strcmp(crv_names[c], name) == 0)
            return (enum gh_crv)c;
    }
    return GH_CRV_NONE;
}

const char *gh_crv_name(enum gh_crv crv)
{
    return crv >= GH_CRV_NONE && crv <= GH_CRV_ED25519 ? crv_names[crv] : "";
}

const char *gh_kty_name(enum gh_kty kty)
{
    static const char *const names[] = {"", "RSA", "EC", "OKP", "oct"};
    return kty >= GH_KTY_NONE && kty <= GH_KTY_OCT ? names[kty] : "";
}

size_t gh_crv_coord_len(enum gh_crv crv)
{
    switch (crv) {
    case GH_CRV_P256:
    case GH_CRV_ED25519:
        return 32;
    case GH_CRV_P384:
        return 48;
    case GH_CRV_P521:
        return 66;
    default:
        return 0;
    }
}

int gh_algs_parse(const char *list, unsigned *mask)
{
    unsigned result = 0;
    const char *p = list;

    *mask = 0;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        enum gh_alg alg = gh_alg_from_name(p, len);
        if (alg == GH_ALG_UNKNOWN)
            return GH_ERR_ALG_UNKNOWN;
        result |= GH_ALG_BIT(alg);
        p += len;
        if (*p == ',')
            p++;
    }
    if (result == 0)
        return GH_ERR_INVALID_ARG;
    *mask = result;
    return GH_OK;
}
