// SPDX-License-Identifier: Apache-2.0
/*
 * Mutation test of the whole token path: for a valid token of every supported algorithm, every
 * single-bit flip of every byte and every proper prefix must be refused by gh_jwt_parse or
 * gh_jwt_verify. A verifier that accepts any of them has a hole: a second encoding of the same
 * bytes (padding, non-canonical trailing bits, ignored characters), a part of the token that is not
 * covered by the signature, or a signature check that ignores some of its bytes. Each variant is
 * given in an exact-size buffer without a terminating NUL, so that a read past the token's end is
 * an AddressSanitizer error in the sanitizer build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "jose/jwt.h"
#include "testkit.h"

#define NOW 1700000000
#define PAYLOAD                                                                                    \
    "{\"iss\":\"https://idp.example\",\"aud\":\"orders\",\"sub\":\"alice\",\"iat\":1699999000,"    \
    "\"exp\":1700003600,\"jti\":\"4f1c2d\"}"

/* Accepted variants listed before the test fails, so one run shows the pattern. */
#define MAX_REPORTED 8

static const enum gh_alg algorithms[] = {
    GH_ALG_RS256, GH_ALG_RS384, GH_ALG_RS512, GH_ALG_PS256, GH_ALG_PS384,
    GH_ALG_PS512, GH_ALG_ES256, GH_ALG_ES384, GH_ALG_ES512, GH_ALG_EDDSA,
    GH_ALG_HS256, GH_ALG_HS384, GH_ALG_HS512,
};

static const char *const required_claims[] = {"exp"};
static const char *const audiences[] = {"orders"};

/* Why the variants were refused: counts per SPEC §3 reason word, in order of first appearance. */
struct tally {
    size_t variants, at_parse, at_verify, accepted;
    size_t n_reasons;
    const char *reason[24];
    size_t count[24];
};

static void tally_reason(struct tally *t, int rc)
{
    const char *reason = gh_error_reason(rc);
    size_t i = 0;

    while (i < t->n_reasons && strcmp(t->reason[i], reason) != 0)
        i++;
    if (i == t->n_reasons && t->n_reasons < sizeof t->reason / sizeof t->reason[0])
        t->reason[t->n_reasons++] = reason;
    if (i < t->n_reasons)
        t->count[i]++;
}

/* Runs `len` bytes of `token` through the gateway's path, from an exact-size copy. */
static int admit(const char *token, size_t len, const struct gh_jwt_policy *policy, int *at_parse)
{
    char *copy = malloc(len ? len : 1);
    struct gh_jwt jwt;
    int rc;

    assert_non_null(copy);
    memcpy(copy, token, len);
    rc = gh_jwt_parse(copy, len, &jwt);
    *at_parse = rc != GH_OK;
    if (rc == GH_OK)
        rc = gh_jwt_verify(&jwt, policy, NULL, NULL);
    gh_jwt_clear(&jwt);
    free(copy);
    return rc;
}

/* Counts one variant; an accepted one is printed (up to MAX_REPORTED) and fails the test later.
 * `flipped` is the byte index of a bit flip, or SIZE_MAX for a truncation. */
static void expect_refused(struct tally *t, const char *variant, size_t len,
                           const struct gh_jwt_policy *policy, size_t flipped)
{
    int at_parse, rc = admit(variant, len, policy, &at_parse);

    t->variants++;
    if (rc == GH_OK) {
        if (t->accepted++ >= MAX_REPORTED)
            return;
        if (flipped == SIZE_MAX)
            print_error("ACCEPTED: the token truncated to %zu bytes\n", len);
        else
            print_error("ACCEPTED: byte %zu of the token flipped to 0x%02x\n", flipped,
                        (unsigned char)variant[flipped]);
        return;
    }
    if (at_parse)
        t->at_parse++;
    else
        t->at_verify++;
    tally_reason(t, rc);
}

/* Every single-bit flip of every byte. */
static size_t flip_every_bit(const char *token, size_t len, const struct gh_jwt_policy *policy,
                             struct tally *t)
{
    char *variant = malloc(len);
    size_t flips = 0;

    assert_non_null(variant);
    memcpy(variant, token, len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            variant[i] ^= (char)(1u << bit);
            expect_refused(t, variant, len, policy, i);
            variant[i] ^= (char)(1u << bit);
            flips++;
        }
    }
    free(variant);
    return flips;
}

/* Every proper prefix, the empty one included. */
static size_t truncate_everywhere(const char *token, size_t len, const struct gh_jwt_policy *policy,
                                  struct tally *t)
{
    for (size_t n = 0; n < len; n++)
        expect_refused(t, token, n, policy, SIZE_MAX);
    return len;
}

static void init_policy(struct gh_jwt_policy *policy, enum gh_alg alg, const struct gh_jwks *keys)
{
    memset(policy, 0, sizeof *policy);
    /* HMAC is allowed only when a profile names it (SPEC §1), so those tokens get such a profile */
    policy->algorithms =
        gh_alg_info(alg)->family == GH_FAMILY_HMAC ? GH_ALGS_HMAC : GH_ALGS_ASYMMETRIC;
    policy->keys = keys;
    policy->rules.now = NOW;
    policy->rules.leeway = 60;
    policy->rules.required = required_claims;
    policy->rules.n_required = 1;
    policy->rules.issuer = "https://idp.example";
    policy->rules.audiences = audiences;
    policy->rules.n_audiences = 1;
}

static void print_tally(const char *alg, size_t len, size_t flips, size_t cuts,
                        const struct tally *t, double seconds)
{
    char reasons[512] = "";
    size_t used = 0;

    for (size_t i = 0; i < t->n_reasons && used < sizeof reasons; i++)
        used += (size_t)snprintf(reasons + used, sizeof reasons - used, "%s%s %zu", i ? ", " : "",
                                 t->reason[i], t->count[i]);
    print_message("%-5s %4zu-byte token: %5zu bit flips + %4zu truncations = %5zu refused "
                  "(%zu at parse, %zu at verify; %s) in %.2f s\n",
                  alg, len, flips, cuts, t->variants - t->accepted, t->at_parse, t->at_verify,
                  reasons, seconds);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void test_mutations(void **state)
{
    enum gh_alg alg = *(const enum gh_alg *)*state;
    const char *name = gh_alg_name(alg);
    struct gh_testkey key;
    struct gh_jwks *keys;
    struct gh_jwt_policy policy;
    struct tally t = {0};
    struct timespec start;
    char kid[32], header[96], *token;
    size_t len, flips, cuts;
    int at_parse;

    snprintf(kid, sizeof kid, "mutation-%s", name);
    assert_int_equal(gh_testkey_generate(alg, kid, 2048, &key), 0);
    keys = gh_testkey_jwks(&key, 1, GH_JWK_ALLOW_SECRET);
    assert_non_null(keys);
    assert_int_equal(gh_jwks_usable(keys), 1);
    init_policy(&policy, alg, keys);
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", name, kid);
    token = gh_test_sign(&key, header, PAYLOAD);
    assert_non_null(token);
    len = strlen(token);

    /* the untouched token must verify, or every refusal below would prove nothing */
    assert_int_equal(admit(token, len, &policy, &at_parse), GH_OK);
    clock_gettime(CLOCK_MONOTONIC, &start);
    flips = flip_every_bit(token, len, &policy, &t);
    cuts = truncate_everywhere(token, len, &policy, &t);
    print_tally(name, len, flips, cuts, &t, seconds_since(&start));
    assert_int_equal(flips, 8 * len);
    assert_int_equal(cuts, len);
    assert_int_equal(t.variants, flips + cuts);
    free(token);
    gh_jwks_free(keys);
    gh_testkey_clear(&key);
    if (t.accepted != 0)
        fail_msg("%s: %zu of %zu variants were accepted", name, t.accepted, t.variants);
}

int main(void)
{
    struct CMUnitTest tests[sizeof algorithms / sizeof algorithms[0]];

    for (size_t i = 0; i < sizeof algorithms / sizeof algorithms[0]; i++) {
        memset(&tests[i], 0, sizeof tests[i]);
        tests[i].name = gh_alg_name(algorithms[i]);
        tests[i].test_func = test_mutations;
        tests[i].initial_state = (void *)&algorithms[i];
    }
    return _cmocka_run_group_tests("mutation", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
