// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the token path of SPEC §3: the input is a compact token, as it would arrive
 * in an Authorization header. It goes through gh_jws_parse alone, then gh_jwt_parse and
 * gh_jwt_verify against fixed key sets (one key of each type, made once at start-up with the test
 * kit) with every algorithm allowed and fixed claim rules, and through the key-claim lookup of
 * SPEC §2. A fuzzed signature never verifies, so to reach the claim checks each input that parses
 * is also re-signed with the fuzzer's own key for its alg (for the algorithms that sign fast) and
 * must then verify; its claim verdict is cross-checked against the rules. Verdicts that contradict
 * the contract abort, which libFuzzer reports as a crash.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"
#include "jose/jwt.h"
#include "jose/keyclaims.h"
#include "testkit.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed clock of the claim rules; the seed tokens are issued around it. */
#define FUZZ_NOW     INT64_C(1700000000)
#define FUZZ_LEEWAY  60
#define FUZZ_ISSUER  "https://idp.example.com"
#define SINGLE_INDEX 2 /* the public key that also stands alone as an operator's key (ES256) */

struct key_spec {
    enum gh_alg alg;
    const char *kid;
    int keep_alg; /* 0: the JWK has no alg, so it fits every alg of its type */
};

/* Public keys of an IdP's set; oct keys cannot share a set with them (GH_ERR_JWK_MIXED). */
static const struct key_spec public_specs[] = {
    {GH_ALG_RS256, "rsa-rs256", 1}, {GH_ALG_PS256, "rsa-any", 0}, {GH_ALG_ES256, "ec-p256", 1},
    {GH_ALG_ES384, "ec-p384", 1},   {GH_ALG_ES512, "ec-p521", 1}, {GH_ALG_EDDSA, "ed25519", 1},
};
static const struct key_spec secret_specs[] = {
    {GH_ALG_HS256, "hs-256", 1},
    {GH_ALG_HS512, "hs-any", 0},
};
#define N_PUBLIC (sizeof public_specs / sizeof public_specs[0])
#define N_SECRET (sizeof secret_specs / sizeof secret_specs[0])

static struct gh_testkey public_keys[N_PUBLIC], secret_keys[N_SECRET];
static struct gh_jwks *public_set, *secret_set, *single_set;
static struct gh_key_claims key_claims;

static const char *const required[] = {"exp", "sub"};
static const char *const issuers[] = {FUZZ_ISSUER, "https://login.example.org/tenant"};
static const char *const audiences[] = {"api://orders", "gatehouse"};

static void fail(const char *what, int rc)
{
    fprintf(stderr, "fuzz_jws_verify: %s (%s)\n", what, rc ? gh_error_name(rc) : "GH_OK");
    abort();
}

static json_t *jwk_json(const struct gh_testkey *key, int keep_alg)
{
    char *text = gh_testkey_public_jwk(key);
    json_t *obj = text != NULL ? json_loads(text, 0, NULL) : NULL;

    free(text);
    if (obj == NULL)
        fail("cannot export a test key", 0);
    if (!keep_alg)
        json_object_del(obj, "alg");
    return obj;
}

/* Makes the keys of `specs` and a set of their JWKs, in the same order, all usable. */
static struct gh_jwks *make_set(const struct key_spec *specs, size_t n, struct gh_testkey *keys,
                                unsigned flags)
{
    json_t *doc = json_object(), *array = json_array();
    struct gh_jwks *set = NULL;

    for (size_t i = 0; i < n; i++) {
        if (gh_testkey_generate(specs[i].alg, specs[i].kid, 0, &keys[i]) != 0)
            fail("cannot generate a test key", 0);
        json_array_append_new(array, jwk_json(&keys[i], specs[i].keep_alg));
    }
    json_object_set_new(doc, "keys", array);
    if (gh_jwks_from_json(doc, flags, &set) != GH_OK || gh_jwks_usable(set) != n)
        fail("the fixed key set is not usable", 0);
    json_decref(doc);
    return set;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_t *single;
    char *text;

    public_set = make_set(public_specs, N_PUBLIC, public_keys, 0);
    secret_set = make_set(secret_specs, N_SECRET, secret_keys, GH_JWK_ALLOW_SECRET);
    /* an operator's single key: used whatever kid a token names */
    single = jwk_json(&public_keys[SINGLE_INDEX], 1);
    text = json_dumps(single, JSON_COMPACT);
    if (text == NULL || gh_jwks_from_key(text, strlen(text), 0, &single_set) != GH_OK ||
        gh_jwks_usable(single_set) != 1)
        fail("the single key is not usable", 0);
    free(text);
    json_decref(single);
    if (gh_key_claims_parse(GH_KEY_CLAIMS_DEFAULT, &key_claims) != GH_OK)
        fail("cannot parse the default key claims", 0);
    return 0;
}

static struct gh_jwt_policy policy_for(const struct gh_jwks *keys)
{
    struct gh_jwt_policy policy = {
        .algorithms = GH_ALGS_ALL,
        .keys = keys,
        .rules = {.now = FUZZ_NOW,
                  .leeway = FUZZ_LEEWAY,
                  .required = required,
                  .n_required = 2,
                  .issuer = FUZZ_ISSUER,
                  .allowed_issuers = issuers,
                  .n_allowed_issuers = 2,
                  .audiences = audiences,
                  .n_audiences = 2},
    };
    return policy;
}

static int is_signature_error(int rc)
{
    switch (rc) {
    case GH_ERR_ALG_NOT_ALLOWED:
    case GH_ERR_UNKNOWN_KID:
    case GH_ERR_NO_FITTING_KEY:
    case GH_ERR_KEY_MISMATCH:
    case GH_ERR_KIDLESS_TOO_MANY_KEYS:
    case GH_ERR_SIG_LENGTH:
    case GH_ERR_BAD_SIGNATURE:
    case GH_ERR_HMAC_TOO_SHORT:
        return 1;
    default:
        return 0;
    }
}

/* A refusal may point at the key at fault (jws.h): one of the set's keys, and only for a key's own
 * status (the key the kid names does not fit), never for a checked signature or a missing key. */
static int names_key_at_fault(const struct gh_jwks *set, const struct gh_jwk *used, int rc)
{
    int in_set = 0;
    for (size_t i = 0; i < set->count; i++)
        in_set |= used == &set->keys[i];
    return in_set && rc != GH_ERR_BAD_SIGNATURE && rc != GH_ERR_SIG_LENGTH &&
           rc != GH_ERR_UNKNOWN_KID && rc != GH_ERR_NO_FITTING_KEY &&
           rc != GH_ERR_ALG_NOT_ALLOWED && rc != GH_ERR_KIDLESS_TOO_MANY_KEYS;
}

/* The JWS layer alone: what a parse promises about the structure it fills in. */
static void check_jws(const uint8_t *data, size_t size)
{
    struct gh_jws jws;
    int rc = gh_jws_parse((const char *)data, size, &jws);

    if (rc != GH_OK) {
        if (jws.header != NULL || jws.payload != NULL || rc >= 0)
            fail("a failed parse left something behind", rc);
        gh_jws_clear(&jws);
        return;
    }
    if (gh_alg_info(jws.alg) == NULL || jws.signing_input != (const char *)data ||
        jws.signing_input_len >= size || jws.payload_len > GH_PAYLOAD_MAX || jws.sig_len == 0 ||
        (jws.kid != NULL && strlen(jws.kid) != jws.kid_len))
        fail("a parsed JWS breaks its own invariants", rc);
    for (int s = 0; s < 3; s++) {
        const struct gh_jwks *set = s == 0 ? public_set : s == 1 ? secret_set : single_set;
        const struct gh_jwk *used = NULL;
        rc = gh_jws_verify(&jws, GH_ALGS_ALL, set, &used);
        if (rc == GH_OK)
            fail("a token nobody signed verified", rc);
        if (!is_signature_error(rc))
            fail("gh_jws_verify returned an undocumented code", rc);
        if (used != NULL && !names_key_at_fault(set, used, rc))
            fail("gh_jws_verify named a key at fault where no key is", rc);
    }
    gh_jws_clear(&jws);
}

/* An independent reading of the fixed rules, for tokens whose claims gatehouse accepted. */
static void check_accepted_claims(const json_t *claims)
{
    const json_t *exp = json_object_get(claims, "exp"), *iss = json_object_get(claims, "iss");

    if (!json_is_number(exp) || floor(json_number_value(exp)) + FUZZ_LEEWAY <= (double)FUZZ_NOW)
        fail("accepted a token without a valid exp", 0);
    if (json_object_get(claims, "sub") == NULL || json_object_get(claims, "aud") == NULL)
        fail("accepted a token without a required claim", 0);
    if (!json_is_string(iss) || strcmp(json_string_value(iss), FUZZ_ISSUER) != 0)
        fail("accepted a token of another issuer", 0);
}

/* The key of `set` (and its test key) that should verify a token of `alg` and `kid`, or -1. */
static int signer_for(const struct gh_jws *jws, const struct gh_jwks *set)
{
    int by_kid = jws->kid != NULL && !set->ignore_kid;

    for (size_t i = 0; i < set->count; i++) {
        const struct gh_jwk *key = &set->keys[i];
        int fits = gh_jwk_fits(key, jws->alg) == GH_OK;
        if (!by_kid && fits)
            return (int)i;
        /* with a kid, only the key it names is tried (kids are unique in the fixed sets) */
        if (by_kid && key->kid_len == jws->kid_len && memcmp(key->kid, jws->kid, jws->kid_len) == 0)
            return fits ? (int)i : -1;
    }
    return -1;
}

/*
 * The token with its signature replaced by a real one, made with the fixed key that must verify it
 * (its set in *set_out); the caller frees it. NULL when the alg is slow to sign or no key fits.
 */
static char *resign(const struct gh_jws *jws, const struct gh_jwks **set_out)
{
    const struct gh_jwks *set;
    const struct gh_testkey *key;
    unsigned char *sig;
    size_t sig_len, len;
    char *token;
    int index;

    switch (gh_alg_info(jws->alg)->family) {
    case GH_FAMILY_HMAC:
        set = secret_set;
        break;
    case GH_FAMILY_EDDSA:
        set = public_set;
        break;
    case GH_FAMILY_ECDSA: /* P-256 only: P-384 and P-521 signing cost too much per input */
        if (jws->alg != GH_ALG_ES256)
            return NULL;
        set = jws->signing_input_len % 2 ? single_set : public_set;
        break;
    default: /* RSA signing takes milliseconds */
        return NULL;
    }
    if ((index = signer_for(jws, set)) < 0)
        return NULL;
    key = set == secret_set   ? &secret_keys[index]
          : set == single_set ? &public_keys[SINGLE_INDEX]
                              : &public_keys[index];
    sig = gh_test_signature(key, jws->alg, jws->signing_input, jws->signing_input_len, &sig_len);
    if (sig == NULL)
        fail("the test kit cannot sign", 0);
    len = jws->signing_input_len + 1 + gh_b64url_encoded_len(sig_len);
    token = malloc(len + 1);
    if (token == NULL)
        fail("out of memory", GH_ERR_NOMEM);
    memcpy(token, jws->signing_input, jws->signing_input_len);
    token[jws->signing_input_len] = '.';
    gh_b64url_encode(sig, sig_len, token + jws->signing_input_len + 1);
    free(sig);
    *set_out = set;
    return token;
}

static void check_resigned(const struct gh_jwt *original)
{
    const struct gh_jwks *set = NULL;
    const struct gh_jwk *used = NULL;
    const char *claim = NULL;
    struct gh_jwt_policy policy;
    struct gh_jwt jwt;
    char *token = resign(&original->jws, &set);
    size_t len;
    int rc;

    if (token == NULL)
        return;
    len = strlen(token);
    rc = gh_jwt_parse(token, len, &jwt);
    if (rc != GH_OK) {
        /* only the size cap can refuse what parsed before with another signature */
        if (rc != GH_ERR_TOKEN_TOO_LARGE || len <= GH_TOKEN_MAX)
            fail("a re-signed token no longer parses", rc);
        free(token);
        return;
    }
    policy = policy_for(set);
    rc = gh_jwt_verify(&jwt, &policy, &used, &claim);
    if (is_signature_error(rc))
        fail("a token signed with a fitting key did not verify", rc);
    if (rc == GH_OK)
        check_accepted_claims(jwt.claims);
    else if (claim == NULL && rc != GH_ERR_NOMEM)
        fail("a claim refusal names no claim", rc);
    if (used == NULL)
        fail("verified, but no key reported", rc);
    gh_jwt_clear(&jwt);
    free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_jwt jwt;
    const char *value;
    size_t value_len, index;
    int rc;

    check_jws(data, size);
    rc = gh_jwt_parse((const char *)data, size, &jwt);
    if (rc != GH_OK) {
        gh_jwt_clear(&jwt);
        return 0;
    }
    for (int s = 0; s < 3; s++) {
        struct gh_jwt_policy policy = policy_for(s == 0   ? public_set
                                                 : s == 1 ? secret_set
                                                          : single_set);
        const char *claim = NULL;
        rc = gh_jwt_verify(&jwt, &policy, NULL, &claim);
        /* the signature comes first: no claim is looked at before it verifies */
        if (rc == GH_OK || !is_signature_error(rc) || claim != NULL)
            fail("an unsigned token got past the signature check", rc);
    }
    rc = gh_key_claims_find(&key_claims, jwt.jws.header, jwt.claims, &value, &value_len, &index);
    if (rc == GH_OK ? value == NULL || value_len == 0 || index >= key_claims.count
                    : rc != GH_ERR_NO_PROFILE_KEY)
        fail("the key-claim lookup broke its contract", rc);
    check_resigned(&jwt);
    gh_jwt_clear(&jwt);
    return 0;
}
