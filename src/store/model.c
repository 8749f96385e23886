// SPDX-License-Identifier: Apache-2.0
/*
 * Field tables and the merge of API input into object documents. One table per kind says, for each
 * field, its JSON type, whether it is required, nullable or write-only, its default and its rule,
 * so that create and update share every check and a new field is one table line.
 */
#include "store/model.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"
#include "jose/alg.h"
#include "jose/jwk.h"
#include "oidc/policy.h"
#include "store/backend.h"
#include "store/validate.h"

enum ftype { T_NAME, T_TEXT, T_BOOL, T_INT, T_STRLIST, T_RATE, T_REF, T_URL, T_SECRET, T_CHECKED };

#define F_REQUIRED  0x1u
#define F_NULLABLE  0x2u
#define F_READONLY  0x4u /* set by the store, never by the API (endpoint.collection_id) */
#define F_WRITEONLY 0x8u /* accepted, stored, never shown (jwt_key) */

struct field {
    const char *name;
    enum ftype type;
    unsigned flags;
    const char *defaults; /* JSON text of the default, NULL: no default (absent) */
    int64_t min, max;     /* T_INT range; T_TEXT / T_CHECKED / T_STRLIST item maximum length */
    int (*check)(const char *value, char *why, size_t cap);
};

static int check_version(const char *v, char *why, size_t cap);
static int check_key_claim(const char *v, char *why, size_t cap);

static const struct field collection_fields[] = {
    {"name", T_NAME, F_REQUIRED, NULL, 0, 0, NULL},
    {"version", T_CHECKED, 0, "\"v1\"", 0, 64, check_version},
    {"path", T_CHECKED, F_REQUIRED, NULL, 0, 255, gh_validate_collection_path},
    {"upstream", T_CHECKED, F_REQUIRED, NULL, 0, 2048, gh_validate_upstream},
    {"active", T_BOOL, 0, "true", 0, 0, NULL},
    {"forward_authorization", T_BOOL, 0, "true", 0, 0, NULL},
    {"timeout_ms", T_INT, 0, "30000", 1, 600000, NULL},
    /* PEM text rather than a file name: it travels with config export/apply and is the same on
     * every node of a shared store */
    {"upstream_ca", T_CHECKED, F_NULLABLE, "null", 0, 262144, gh_validate_ca_bundle},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const struct field endpoint_fields[] = {
    {"collection_id", T_REF, F_READONLY, NULL, 0, 0, NULL},
    {"method", T_CHECKED, F_REQUIRED, NULL, 0, 16, gh_validate_method},
    {"path", T_CHECKED, F_REQUIRED, NULL, 0, 1024, gh_validate_endpoint_path},
    {"name", T_NAME, F_NULLABLE, "null", 0, 0, NULL},
    {"active", T_BOOL, 0, "true", 0, 0, NULL},
    {"timeout_ms", T_INT, F_NULLABLE, "null", 1, 600000, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const struct field client_fields[] = {
    {"name", T_NAME, F_REQUIRED, NULL, 0, 0, NULL},
    {"description", T_TEXT, 0, "\"\"", 0, 10000, NULL},
    {"active", T_BOOL, 0, "true", 0, 0, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const struct field profile_fields[] = {
    {"client_id", T_REF, F_REQUIRED, NULL, 0, 0, NULL},
    {"name", T_NAME, F_REQUIRED, NULL, 0, 0, NULL},
    {"auth_type", T_TEXT, F_REQUIRED, NULL, 1, 16, NULL},
    {"collection_ids", T_STRLIST, 0, "[]", 0, 64, NULL},
    {"active", T_BOOL, 0, "true", 0, 0, NULL},
    {"policy_id", T_REF, F_NULLABLE, "null", 0, 0, NULL},
    {"key_claim", T_CHECKED, F_NULLABLE, "null", 0, 256, check_key_claim},
    {"required_claims", T_STRLIST, 0, "[\"exp\"]", 0, 256, NULL},
    {"allowed_issuers", T_STRLIST, 0, "[]", 0, 2048, NULL},
    {"audiences", T_STRLIST, 0, "[]", 0, 2048, NULL},
    {"algorithms", T_STRLIST, 0,
     "[\"RS256\",\"RS384\",\"RS512\",\"PS256\",\"PS384\",\"PS512\",\"ES256\",\"ES384\",\"ES512\","
     "\"EdDSA\"]",
     0, 16, NULL},
    {"leeway_seconds", T_INT, 0, "60", 0, 300, NULL},
    {"ip_allow", T_STRLIST, 0, "[]", 0, 64, NULL},
    {"ip_deny", T_STRLIST, 0, "[]", 0, 64, NULL},
    {"oidc_discovery_url", T_URL, F_NULLABLE, "null", 0, 2048, NULL},
    {"oidc_jwks_uri", T_URL, F_NULLABLE, "null", 0, 2048, NULL},
    {"jwt_key", T_SECRET, F_NULLABLE | F_WRITEONLY, "null", 0, 65536, NULL},
    {"token_types", T_STRLIST, 0, "[]", 0, 255, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const struct field policy_fields[] = {
    {"name", T_NAME, F_REQUIRED, NULL, 0, 0, NULL},
    {"rate_limit", T_RATE, F_NULLABLE, "null", 0, 0, NULL},
    {"quota", T_RATE, F_NULLABLE, "null", 0, 0, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const struct field *const kind_fields[GH_KIND_COUNT] = {
    [GH_KIND_COLLECTION] = collection_fields, [GH_KIND_ENDPOINT] = endpoint_fields,
    [GH_KIND_CLIENT] = client_fields,         [GH_KIND_PROFILE] = profile_fields,
    [GH_KIND_POLICY] = policy_fields,         [GH_KIND_KEY] = NULL,
};

static const char *const id_prefixes[GH_KIND_COUNT] = {"col", "ep", "cli", "ap", "pol", "key"};

void gh_model_error(struct gh_store_error *err, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    err->code = status == 400   ? "bad_request"
                : status == 404 ? "not_found"
                : status == 409 ? "conflict"
                : status == 422 ? "validation_failed"
                                : "internal";
    snprintf(err->field, sizeof err->field, "%s", field != NULL ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

const char *gh_model_id_prefix(enum gh_kind kind)
{
    return kind >= 0 && kind < GH_KIND_COUNT ? id_prefixes[kind] : "";
}

int gh_model_new_id(enum gh_kind kind, char *out)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t o = (size_t)sprintf(out, "%s_", gh_model_id_prefix(kind));
    while (o < strlen(gh_model_id_prefix(kind)) + 1 + GH_ID_RANDOM_CHARS) {
        unsigned char byte;
        if (RAND_bytes(&byte, 1) != 1)
            return GH_ERR_INTERNAL;
        if (byte < 248) /* 248 = 4 * 62: reject the rest so every digit is equally likely */
            out[o++] = digits[byte % 62];
    }
    out[o] = '\0';
    return GH_OK;
}

int gh_model_id_valid(enum gh_kind kind, const char *id)
{
    const char *prefix = gh_model_id_prefix(kind);
    size_t plen = strlen(prefix), len = strlen(id);
    if (len < plen + 13 || len > plen + 1 + 64 || strncmp(id, prefix, plen) != 0 || id[plen] != '_')
        return 0;
    for (const char *p = id + plen + 1; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return 0;
    }
    return 1;
}

static int check_version(const char *v, char *why, size_t cap)
{
    if (*v == '\0') {
        snprintf(why, cap, "a version must not be empty");
        return GH_ERR_INVALID_ARG;
    }
    for (const char *p = v; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '.' || *p == '-' || *p == '_')) {
            snprintf(why, cap, "a version may use only letters, digits, '.', '-' and '_'");
            return GH_ERR_INVALID_ARG;
        }
    }
    return GH_OK;
}

static int check_key_claim(const char *v, char *why, size_t cap)
{
    if (*v == '\0') {
        snprintf(why, cap, "key_claim must not be empty (use null for the default claims)");
        return GH_ERR_INVALID_ARG;
    }
    return gh_validate_name(v, strlen(v), why, cap);
}

/* ---- one field ---- */

static const char *type_name(enum ftype t)
{
    switch (t) {
    case T_BOOL:
        return "a boolean";
    case T_INT:
        return "an integer";
    case T_STRLIST:
        return "an array of strings";
    case T_RATE:
        return "an object {\"requests\":N,\"per_seconds\":S}";
    default:
        return "a string";
    }
}

static int check_rate(const char *name, const json_t *v, struct gh_store_error *err)
{
    const char *key;
    json_t *member;
    json_object_foreach ((json_t *)v, key, member) {
        if (strcmp(key, "requests") != 0 && strcmp(key, "per_seconds") != 0) {
            gh_model_error(err, 422, name,
                           "%s has an unknown member (only requests and per_seconds)", name);
            return GH_ERR_INVALID_ARG;
        }
        if (!json_is_integer(member)) {
            gh_model_error(err, 400, name, "%s.%s must be an integer", name, key);
            return GH_ERR_INVALID_ARG;
        }
    }
    json_t *req = json_object_get(v, "requests"), *per = json_object_get(v, "per_seconds");
    if (req == NULL || per == NULL || json_integer_value(req) < 1 ||
        json_integer_value(req) > 1000000000 || json_integer_value(per) < 1 ||
        json_integer_value(per) > 366LL * 86400) {
        gh_model_error(err, 422, name,
                       "%s needs requests (1..1000000000) and per_seconds (1..31622400)", name);
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static int check_string(const struct field *f, const char *s, size_t len,
                        struct gh_store_error *err)
{
    char why[256];
    switch (f->type) {
    case T_NAME:
        if (gh_validate_name(s, len, why, sizeof why) != GH_OK) {
            gh_model_error(err, 422, f->name, "%s: %s", f->name, why);
            return GH_ERR_INVALID_ARG;
        }
        return GH_OK;
    case T_URL:
        if (len > (size_t)f->max || gh_oidc_url_check(s, 1) != GH_OK) {
            gh_model_error(err, 422, f->name, "%s must be an absolute http or https URL", f->name);
            return GH_ERR_INVALID_ARG;
        }
        return GH_OK;
    default:
        if ((f->max > 0 && len > (size_t)f->max) || (f->min > 0 && len < (size_t)f->min) ||
            strlen(s) != len) {
            gh_model_error(err, 422, f->name, "%s must have %lld to %lld bytes and no NUL", f->name,
                           (long long)f->min, (long long)f->max);
            return GH_ERR_INVALID_ARG;
        }
        if (f->check != NULL && f->check(s, why, sizeof why) != GH_OK) {
            gh_model_error(err, 422, f->name, "%s: %s", f->name, why);
            return GH_ERR_INVALID_ARG;
        }
        return GH_OK;
    }
}

static int check_list(const struct field *f, const json_t *v, struct gh_store_error *err)
{
    size_t i;
    json_t *item;
    if (json_array_size(v) > 1000) {
        gh_model_error(err, 422, f->name, "%s has more than 1000 items", f->name);
        return GH_ERR_INVALID_ARG;
    }
    json_array_foreach ((json_t *)v, i, item) {
        if (!json_is_string(item)) {
            gh_model_error(err, 400, f->name, "%s must be an array of strings", f->name);
            return GH_ERR_INVALID_ARG;
        }
        size_t len = json_string_length(item);
        if (len == 0 || len > (size_t)f->max) {
            gh_model_error(err, 422, f->name, "%s item %zu must have 1 to %lld bytes", f->name, i,
                           (long long)f->max);
            return GH_ERR_INVALID_ARG;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal(item, json_array_get(v, j))) {
                gh_model_error(err, 422, f->name, "%s lists \"%.64s\" twice", f->name,
                               json_string_value(item));
                return GH_ERR_INVALID_ARG;
            }
        }
    }
    return GH_OK;
}

/* Type and rule of one value of `f`. */
static int check_value(const struct field *f, const json_t *v, struct gh_store_error *err)
{
    if (json_is_null(v)) {
        if (f->flags & F_NULLABLE)
            return GH_OK;
        gh_model_error(err, 422, f->name, "%s cannot be null", f->name);
        return GH_ERR_INVALID_ARG;
    }
    int type_ok = f->type == T_BOOL      ? json_is_boolean(v)
                  : f->type == T_INT     ? json_is_integer(v)
                  : f->type == T_STRLIST ? json_is_array(v)
                  : f->type == T_RATE    ? json_is_object(v)
                                         : json_is_string(v);
    if (!type_ok) {
        gh_model_error(err, 400, f->name, "%s must be %s%s", f->name, type_name(f->type),
                       f->flags & F_NULLABLE ? " or null" : "");
        return GH_ERR_INVALID_ARG;
    }
    switch (f->type) {
    case T_BOOL:
        return GH_OK;
    case T_INT:
        if (json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
            gh_model_error(err, 422, f->name, "%s must be from %lld to %lld", f->name,
                           (long long)f->min, (long long)f->max);
            return GH_ERR_INVALID_ARG;
        }
        return GH_OK;
    case T_STRLIST:
        return check_list(f, v, err);
    case T_RATE:
        return check_rate(f->name, v, err);
    case T_REF:
        return GH_OK; /* existence is the store's to check */
    default:
        return check_string(f, json_string_value(v), json_string_length(v), err);
    }
}

/* ---- profiles: rules across fields ---- */

static int check_each(const json_t *doc, const char *name, int (*fn)(const char *, char *, size_t),
                      struct gh_store_error *err)
{
    size_t i;
    json_t *item;
    char why[256];
    json_array_foreach (json_object_get(doc, name), i, item) {
        if (fn(json_string_value(item), why, sizeof why) != GH_OK) {
            gh_model_error(err, 422, name, "%s item %zu: %s", name, i, why);
            return GH_ERR_INVALID_ARG;
        }
    }
    return GH_OK;
}

static int check_cidr(const char *text, char *why, size_t cap)
{
    struct gh_cidr cidr;
    return gh_cidr_parse(text, &cidr, why, cap);
}

/* A JWS typ value (RFC 7515 §4.1.9): a media type, "application/" optional, without parameters:
 * type and subtype of RFC 6838's restricted-name characters. */
static int check_token_type(const char *text, char *why, size_t cap)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "!#$&-^_.+";
    const char *slash = strchr(text, '/');
    size_t first = slash != NULL ? (size_t)(slash - text) : strlen(text);

    if (first == 0 || strspn(text, chars) != first ||
        (slash != NULL && (slash[1] == '\0' || strspn(slash + 1, chars) != strlen(slash + 1)))) {
        snprintf(why, cap,
                 "\"%.64s\" is not a media type such as at+jwt or application/at+jwt (letters, "
                 "digits and !#$&-^_.+, one '/' at most, no parameters)",
                 text);
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static int check_collection_id(const char *id, char *why, size_t cap)
{
    if (gh_model_id_valid(GH_KIND_COLLECTION, id))
        return GH_OK;
    snprintf(why, cap, "\"%.64s\" is not a collection id", id);
    return GH_ERR_INVALID_ARG;
}

/* The algorithms as a mask; 422 for unknown names or an empty list. */
static int algorithm_mask(const json_t *doc, unsigned *mask, struct gh_store_error *err)
{
    size_t i;
    json_t *item;
    *mask = 0;
    json_array_foreach (json_object_get(doc, "algorithms"), i, item) {
        enum gh_alg alg = gh_alg_from_name(json_string_value(item), json_string_length(item));
        if (alg == GH_ALG_UNKNOWN) {
            gh_model_error(err, 422, "algorithms",
                           "algorithms item %zu (\"%.32s\") is not a supported JWS algorithm", i,
                           json_string_value(item));
            return GH_ERR_INVALID_ARG;
        }
        *mask |= GH_ALG_BIT(alg);
    }
    if (*mask == 0) {
        gh_model_error(err, 422, "algorithms", "algorithms must name at least one algorithm");
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static int must_be_null(const json_t *doc, const char *name, const char *auth,
                        struct gh_store_error *err)
{
    if (json_is_null(json_object_get(doc, name)))
        return GH_OK;
    gh_model_error(err, 422, name, "%s does not apply to a profile of auth_type %s", name, auth);
    return GH_ERR_INVALID_ARG;
}

static int check_oidc_profile(const json_t *doc, unsigned algs, struct gh_store_error *err)
{
    const json_t *disc = json_object_get(doc, "oidc_discovery_url"),
                 *jwks = json_object_get(doc, "oidc_jwks_uri");
    char issuer[2048];
    if (json_is_null(disc) == json_is_null(jwks)) {
        gh_model_error(err, 422, "oidc_discovery_url",
                       "an oidc profile needs exactly one of oidc_discovery_url and oidc_jwks_uri");
        return GH_ERR_INVALID_ARG;
    }
    if (!json_is_null(disc) &&
        gh_oidc_expected_issuer(json_string_value(disc), issuer, sizeof issuer) != GH_OK) {
        gh_model_error(err, 422, "oidc_discovery_url", "oidc_discovery_url must end with %s",
                       GH_DISCOVERY_SUFFIX);
        return GH_ERR_INVALID_ARG;
    }
    if (algs & GH_ALGS_HMAC) {
        gh_model_error(
            err, 422, "algorithms",
            "an oidc profile cannot accept HMAC algorithms: an IdP never publishes secrets");
        return GH_ERR_INVALID_ARG;
    }
    return must_be_null(doc, "jwt_key", "oidc", err);
}

static int check_jwt_key(const json_t *doc, unsigned algs, struct gh_store_error *err)
{
    const json_t *key = json_object_get(doc, "jwt_key");
    struct gh_jwks *set = NULL;
    int rc;

    if (algs & GH_ALGS_HMAC) { /* SPEC §1: a secret only with exactly one HMAC algorithm */
        if (algs & ~GH_ALGS_HMAC || (algs & (algs - 1)) != 0) {
            gh_model_error(
                err, 422, "algorithms",
                "HMAC needs algorithms to be exactly one of [\"HS256\"], [\"HS384\"], [\"HS512\"]");
            return GH_ERR_INVALID_ARG;
        }
        /* a public key used as an HMAC secret lets anyone who has it sign tokens: the classic key
         * confusion attack; a JWK's text is not the secret either */
        if (gh_jwks_from_key(json_string_value(key), json_string_length(key), GH_JWK_ALLOW_SECRET,
                             &set) == GH_OK) {
            gh_jwks_free(set);
            gh_model_error(
                err, 422, "jwt_key",
                "jwt_key looks like a key document (PEM or JWK); an HMAC profile needs the shared "
                "secret itself, and never a public key");
            return GH_ERR_INVALID_ARG;
        }
        size_t need = (algs & GH_ALG_BIT(GH_ALG_HS512))   ? 64
                      : (algs & GH_ALG_BIT(GH_ALG_HS384)) ? 48
                                                          : 32;
        if (json_string_length(key) < need) {
            gh_model_error(err, 422, "jwt_key",
                           "an HMAC secret for this algorithm needs at least %zu bytes", need);
            return GH_ERR_INVALID_ARG;
        }
        return GH_OK;
    }
    rc = gh_jwks_from_key(json_string_value(key), json_string_length(key), 0, &set);
    if (rc != GH_OK || set->keys[0].status != GH_OK) {
        gh_model_error(err, 422, "jwt_key", "jwt_key is not a usable public key: %s",
                       gh_error_message(rc != GH_OK ? rc : set->keys[0].status));
        gh_jwks_free(set);
        return GH_ERR_INVALID_ARG;
    }
    int fits = 0;
    for (int a = GH_ALG_RS256; a < GH_ALG_COUNT; a++)
        fits |= (algs & GH_ALG_BIT(a)) && gh_jwk_fits(&set->keys[0], (enum gh_alg)a) == GH_OK;
    gh_jwks_free(set);
    if (!fits) {
        gh_model_error(err, 422, "algorithms", "none of the algorithms fits the type of jwt_key");
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static int check_profile(const json_t *doc, struct gh_store_error *err)
{
    const char *auth = json_string_value(json_object_get(doc, "auth_type"));
    unsigned algs;
    int rc;

    if (strcmp(auth, "oidc") != 0 && strcmp(auth, "jwt") != 0 && strcmp(auth, "token") != 0) {
        gh_model_error(err, 422, "auth_type", "auth_type must be oidc, jwt or token");
        return GH_ERR_INVALID_ARG;
    }
    if ((rc = algorithm_mask(doc, &algs, err)) != GH_OK ||
        (rc = check_each(doc, "ip_allow", check_cidr, err)) != GH_OK ||
        (rc = check_each(doc, "ip_deny", check_cidr, err)) != GH_OK ||
        (rc = check_each(doc, "collection_ids", check_collection_id, err)) != GH_OK ||
        (rc = check_each(doc, "token_types", check_token_type, err)) != GH_OK)
        return rc;
    if (strcmp(auth, "oidc") == 0)
        return check_oidc_profile(doc, algs, err);
    if ((rc = must_be_null(doc, "oidc_discovery_url", auth, err)) != GH_OK ||
        (rc = must_be_null(doc, "oidc_jwks_uri", auth, err)) != GH_OK)
        return rc;
    if (strcmp(auth, "token") == 0) {
        if (json_array_size(json_object_get(doc, "token_types")) != 0) {
            gh_model_error(err, 422, "token_types",
                           "token_types does not apply to a profile of auth_type token (its "
                           "credential is the profile key, not a JWT)");
            return GH_ERR_INVALID_ARG;
        }
        if ((rc = must_be_null(doc, "jwt_key", auth, err)) != GH_OK)
            return rc;
        return must_be_null(doc, "key_claim", auth, err);
    }
    if (json_is_null(json_object_get(doc, "jwt_key"))) {
        gh_model_error(err, 422, "jwt_key",
                       "a jwt profile needs jwt_key (a PEM public key, a JWK, or an HMAC secret)");
        return GH_ERR_INVALID_ARG;
    }
    return check_jwt_key(doc, algs, err);
}

/* ---- merge ---- */

static const struct field *find_field(const struct field *fields, const char *name)
{
    for (const struct field *f = fields; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

static json_t *defaults_of(const struct field *fields)
{
    json_t *doc = json_object();
    for (const struct field *f = fields; f->name != NULL; f++) {
        if (f->defaults != NULL)
            json_object_set_new(doc, f->name, json_loads(f->defaults, JSON_DECODE_ANY, NULL));
    }
    return doc;
}

static int apply_input(const struct field *fields, json_t *doc, const json_t *input,
                       struct gh_store_error *err)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)input, key, value) {
        const struct field *f = find_field(fields, key);
        if (strcmp(key, "id") == 0 || strcmp(key, "created_at") == 0 ||
            strcmp(key, "updated_at") == 0 || (f != NULL && (f->flags & F_READONLY))) {
            gh_model_error(err, 422, key, "%s is set by gatehouse and cannot be written", key);
            return GH_ERR_INVALID_ARG;
        }
        if (f == NULL) {
            gh_model_error(err, 422, key, "unknown field \"%.64s\"", key);
            return GH_ERR_INVALID_ARG;
        }
        if (check_value(f, value, err) != GH_OK)
            return GH_ERR_INVALID_ARG;
        json_object_set_new(doc, key, json_deep_copy(value));
    }
    return GH_OK;
}

/* The same members, in the order of the field table (then any others, such as id), so that every
 * answer lists fields alike however the request ordered them. */
static json_t *in_field_order(const struct field *fields, const json_t *doc)
{
    json_t *ordered = json_object();
    const char *key;
    json_t *value;
    for (const struct field *f = fields; f->name != NULL; f++) {
        if ((value = json_object_get(doc, f->name)) != NULL)
            json_object_set(ordered, f->name, value);
    }
    json_object_foreach ((json_t *)doc, key, value) {
        if (json_object_get(ordered, key) == NULL)
            json_object_set(ordered, key, value);
    }
    return ordered;
}

int gh_model_merge(enum gh_kind kind, const json_t *base, const json_t *input, json_t **out,
                   struct gh_store_error *err)
{
    const struct field *fields = kind_fields[kind];
    json_t *doc;

    *out = NULL;
    if (fields == NULL || !json_is_object(input)) {
        gh_model_error(err, 400, NULL, "the body must be a JSON object");
        return GH_ERR_INVALID_ARG;
    }
    doc = base != NULL ? json_deep_copy(base) : defaults_of(fields);
    if (apply_input(fields, doc, input, err) != GH_OK)
        goto fail;
    for (const struct field *f = fields; f->name != NULL; f++) {
        if ((f->flags & F_REQUIRED) && !(f->flags & F_READONLY) &&
            (json_object_get(doc, f->name) == NULL ||
             json_is_null(json_object_get(doc, f->name)))) {
            gh_model_error(err, 422, f->name, "%s is required", f->name);
            goto fail;
        }
    }
    if (kind == GH_KIND_PROFILE && check_profile(doc, err) != GH_OK)
        goto fail;
    *out = in_field_order(fields, doc);
    json_decref(doc);
    return GH_OK;
fail:
    json_decref(doc);
    return GH_ERR_INVALID_ARG;
}

json_t *gh_model_public(enum gh_kind kind, const json_t *doc, int secrets)
{
    json_t *copy = json_deep_copy(doc);
    if (secrets)
        return copy;
    if (kind == GH_KIND_PROFILE)
        json_object_del(copy, "jwt_key");
    if (kind == GH_KIND_KEY)
        json_object_del(copy, "hash");
    return copy;
}

/* ---- access profile keys ---- */

static void to_hex(const unsigned char *bytes, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    hex[2 * len] = '\0';
}

void gh_model_key_hash(const char *key, size_t len, char *hash_hex)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, len, digest);
    to_hex(digest, sizeof digest, hash_hex);
}

int gh_model_new_key(char *plain, char *hash_hex, char *prefix)
{
    unsigned char random[32];
    if (RAND_bytes(random, sizeof random) != 1)
        return GH_ERR_INTERNAL;
    memcpy(plain, "gk_", 3);
    gh_b64url_encode(random, sizeof random, plain + 3);
    OPENSSL_cleanse(random, sizeof random);
    gh_model_key_hash(plain, strlen(plain), hash_hex);
    memcpy(prefix, plain, 8);
    prefix[8] = '\0';
    return GH_OK;
}

/* What the databases constrain of each kind: both backends build their statements from it. */
const struct gh_store_table gh_store_tables[GH_KIND_COUNT] = {
    [GH_KIND_COLLECTION] = {"collections", {"id", "name", "version", "path", NULL}, NULL},
    [GH_KIND_ENDPOINT] = {"endpoints",
                          {"id", "collection_id", "method", "path", NULL},
                          "collection_id"},
    [GH_KIND_CLIENT] = {"clients", {"id", "name", NULL}, NULL},
    [GH_KIND_PROFILE] = {"profiles", {"id", "client_id", "policy_id", "name", NULL}, "client_id"},
    [GH_KIND_POLICY] = {"policies", {"id", "name", NULL}, NULL},
    [GH_KIND_KEY] = {"keys", {"id", "profile_id", "hash", NULL}, "profile_id"},
};
