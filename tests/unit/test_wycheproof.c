// SPDX-License-Identifier: Apache-2.0
/*
 * Google's Wycheproof vectors against gatehouse's JOSE core. The JWS and JWK files go through the
 * JWS layer the way a token from the network would (gh_jws_parse, then gh_jws_verify with every
 * alg allowed), and the signature primitive files through gh_jwk_fits and gh_sig_verify, so that
 * thousands of adversarial inputs written by others (malleated signatures, bad paddings, edge-case
 * points, wrong keys) judge our verdicts instead of our own idea of what could go wrong. Where
 * gatehouse is stricter than Wycheproof, the refusal is named in a table below with its exact code
 * and the rule of SPEC §3 or the RFC behind it; an entry that is never hit fails the test, so the
 * table always is the true list of our deviations. Counts per file are printed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "jose/alg.h"
#include "jose/jwk.h"
#include "jose/jws.h"
#include "jose/sig.h"
#include "testkit.h"

#define WY_JWS_FILE "json_web_signature_test.json"
#define WY_JWK_FILE "json_web_key_test.json"
#define WY_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One vector as the rules below see it. */
struct wy_case {
    const char *file;
    long tc_id;
    const char *comment;
    const char *result; /* "valid", "invalid" or "acceptable" */
    enum gh_alg alg;    /* primitive files: the alg under test; JWS files: GH_ALG_UNKNOWN */
    size_t key_len;     /* HMAC primitive files: the key's size in bytes */
};

/*
 * A refusal by a rule of gatehouse that Wycheproof does not have: a "valid" or "acceptable"
 * vector that must be refused with exactly `code`, because of `rule`.
 */
struct wy_rule {
    const char *file;
    long tc_id;                              /* the vector, or 0 when `applies` decides */
    int (*applies)(const struct wy_case *c); /* a group-level predicate, or NULL */
    int code;
    const char *rule;
};

/* SPEC §1 and RFC 7518 §3.2: the HMAC key must be at least as long as the hash output. */
static int wy_hmac_key_shorter_than_hash(const struct wy_case *c)
{
    const struct gh_alg_info *info = gh_alg_info(c->alg);
    return info != NULL && info->family == GH_FAMILY_HMAC && c->key_len < info->hash_len;
}

static const struct wy_rule wy_rules[] = {
    {WY_JWS_FILE, 346, NULL, GH_ERR_KEY_MISMATCH,
     "SPEC §3, RFC 7517 §4.4: the token's alg (PS384) must be the JWK's own alg (PS256)"},
    {WY_JWS_FILE, 350, NULL, GH_ERR_KEY_MISMATCH,
     "SPEC §3, RFC 7517 §4.4: the token's alg (PS384) must be the JWK's own alg (PS256)"},
    {WY_JWS_FILE, 347, NULL, GH_ERR_JWK_ALG,
     "SPEC §3, RFC 7518 §3.1: the JWK's alg \"ES521\" is no JWS alg (P-521 is ES512), so the key "
     "signs nothing"},
    {WY_JWS_FILE, 351, NULL, GH_ERR_JWK_ALG,
     "SPEC §3, RFC 7518 §3.1: the JWK's alg \"ES521\" is no JWS alg (P-521 is ES512), so the key "
     "signs nothing"},
    {WY_JWS_FILE, 372, NULL, GH_ERR_BASE64URL,
     "SPEC §3, RFC 7515 §2: strict base64url; '?' in the header segment is not in the alphabet"},
    {WY_JWS_FILE, 373, NULL, GH_ERR_BASE64URL,
     "SPEC §3, RFC 7515 §2: strict base64url; '?' in the payload segment is not in the alphabet"},
    {"hmac_sha256_test.json", 0, wy_hmac_key_shorter_than_hash, GH_ERR_HMAC_TOO_SHORT,
     "SPEC §1, RFC 7518 §3.2: an HS256 key has at least 32 bytes (16-byte keys here)"},
    {"hmac_sha384_test.json", 0, wy_hmac_key_shorter_than_hash, GH_ERR_HMAC_TOO_SHORT,
     "SPEC §1, RFC 7518 §3.2: an HS384 key has at least 48 bytes (24-byte keys here)"},
    {"hmac_sha512_test.json", 0, wy_hmac_key_shorter_than_hash, GH_ERR_HMAC_TOO_SHORT,
     "SPEC §1, RFC 7518 §3.2: an HS512 key has at least 64 bytes (32-byte keys here)"},
};
static unsigned wy_rule_hits[WY_COUNT(wy_rules)];

/*
 * Defects of the vector files themselves: "invalid" vectors whose stored token is byte-identical
 * to a "valid" one (the malformation their name promises was lost when the file was generated), so
 * no verifier can both accept the twin and refuse them. The test checks that the defect is still
 * there (same token as the twin) and that they get the twin's verdict, and counts them apart.
 */
struct wy_defect {
    const char *file;
    long tc_id;
    long twin; /* the "valid" vector with the same token */
    const char *note;
};

static const struct wy_defect wy_defects[] = {
    {WY_JWS_FILE, 367, 357, "invalidBase64Padding: the stored token has no padding at all"},
    {WY_JWS_FILE, 370, 357, "invalidBase64PaddingInPayload: the stored token has no padding"},
};
static unsigned wy_defect_hits[WY_COUNT(wy_defects)];

struct wy_stats {
    const char *file;
    unsigned total, valid_accepted, invalid_refused, named, acceptable_accepted, acceptable_refused,
        not_jws, defects, failures;
};

#define WY_MAX_FILES 16
static struct wy_stats wy_summary[WY_MAX_FILES];
static size_t wy_summary_count;

static struct wy_stats *wy_stats_new(const char *file)
{
    struct wy_stats *st;
    assert_true(wy_summary_count < WY_MAX_FILES);
    st = &wy_summary[wy_summary_count++];
    memset(st, 0, sizeof *st);
    st->file = file;
    return st;
}

/* Parses wycheproof/<name>; a missing or unreadable file fails the test, it never skips it. */
static json_t *wy_load(const char *name)
{
    char path[4096];
    size_t len = 0;
    char *text;
    json_t *doc;
    json_error_t err;

    snprintf(path, sizeof path, "%s/wycheproof/%s", gh_test_vectors_dir(), name);
    text = gh_test_read_file(path, &len);
    if (text == NULL)
        fail_msg("cannot read %s: the Wycheproof vectors are missing (they live in "
                 "tests/vectors, or set GH_VECTORS_DIR)",
                 path);
    doc = json_loadb(text, len, 0, &err);
    free(text);
    if (doc == NULL)
        fail_msg("%s is not JSON: %s (line %d)", path, err.text, err.line);
    return doc;
}

static int wy_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The hex string member `name` of `obj` as new bytes (the caller frees them); NULL if not hex. */
static unsigned char *wy_hex(const json_t *obj, const char *name, size_t *len)
{
    const char *hex = json_string_value(json_object_get(obj, name));
    size_t n = hex != NULL ? strlen(hex) : 1;
    unsigned char *out;

    *len = 0;
    if (n % 2 != 0 || (out = malloc(n / 2 + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = wy_nibble(hex[2 * i]), lo = wy_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

static struct wy_case wy_case_of(const char *file, const json_t *test)
{
    struct wy_case c = {file,
                        (long)json_integer_value(json_object_get(test, "tcId")),
                        json_string_value(json_object_get(test, "comment")),
                        json_string_value(json_object_get(test, "result")),
                        GH_ALG_UNKNOWN,
                        0};
    if (c.comment == NULL)
        c.comment = "";
    if (c.result == NULL)
        c.result = "(no result)";
    return c;
}

static void wy_fail(struct wy_stats *st, const struct wy_case *c, int rc, const char *expected)
{
    st->failures++;
    print_error("%s tcId %ld (%s, \"%s\"): gatehouse returned %s, expected %s\n", c->file, c->tc_id,
                c->result, c->comment, gh_error_name(rc), expected);
}

static const struct wy_rule *wy_find_rule(const struct wy_case *c)
{
    for (size_t i = 0; i < WY_COUNT(wy_rules); i++) {
        const struct wy_rule *r = &wy_rules[i];
        if (strcmp(r->file, c->file) == 0 &&
            (r->applies != NULL ? r->applies(c) : r->tc_id == c->tc_id))
            return r;
    }
    return NULL;
}

/*
 * The verdict rules: "valid" must be accepted and "invalid" refused, except that a "valid" or
 * "acceptable" vector named in wy_rules must be refused with exactly the rule's code. Any other
 * "acceptable" vector is counted, not judged: Wycheproof leaves its verdict to the library, and
 * either one is defensible. (In these files they are RSA PKCS#1 v1.5 signatures whose DigestInfo
 * omits the NULL parameters, flag MissingNull: RFC 8017 §9.2 note 1 gives the one encoding with
 * NULL, while its Appendix B.1 asks to accept hash AlgorithmIdentifiers without parameters.
 * gatehouse leaves it to OpenSSL, which refuses them; the summary counts which way it went.)
 */
static void wy_judge(const struct wy_case *c, int rc, struct wy_stats *st)
{
    int invalid = strcmp(c->result, "invalid") == 0;
    const struct wy_rule *rule = invalid ? NULL : wy_find_rule(c);

    if (rule != NULL) {
        wy_rule_hits[rule - wy_rules]++;
        if (rc == rule->code)
            st->named++;
        else
            wy_fail(st, c, rc, gh_error_name(rule->code));
    } else if (strcmp(c->result, "valid") == 0) {
        if (rc == GH_OK)
            st->valid_accepted++;
        else
            wy_fail(st, c, rc, "OK (no named rule refuses it)");
    } else if (invalid) {
        if (rc != GH_OK)
            st->invalid_refused++;
        else
            wy_fail(st, c, rc, "a refusal");
    } else if (strcmp(c->result, "acceptable") == 0) {
        if (rc == GH_OK)
            st->acceptable_accepted++;
        else
            st->acceptable_refused++;
    } else {
        wy_fail(st, c, rc, "a known result word");
    }
}

/* Checks the end of one file: every vector seen and every table entry of the file hit. */
static void wy_finish(const json_t *doc, struct wy_stats *st)
{
    json_int_t declared = json_integer_value(json_object_get(doc, "numberOfTests"));

    for (size_t i = 0; i < WY_COUNT(wy_rules); i++) {
        if (strcmp(wy_rules[i].file, st->file) == 0 && wy_rule_hits[i] == 0) {
            st->failures++;
            print_error("%s: the named rule for tcId %ld (%s, \"%s\") was never hit; the table is "
                        "stale\n",
                        st->file, wy_rules[i].tc_id, gh_error_name(wy_rules[i].code),
                        wy_rules[i].rule);
        }
    }
    for (size_t i = 0; i < WY_COUNT(wy_defects); i++) {
        if (strcmp(wy_defects[i].file, st->file) == 0 && wy_defect_hits[i] == 0) {
            st->failures++;
            print_error(
                "%s: the vector defect of tcId %ld (%s) is gone; remove it from the table\n",
                st->file, wy_defects[i].tc_id, wy_defects[i].note);
        }
    }
    if (declared != (json_int_t)st->total) {
        st->failures++;
        print_error("%s: %u vectors run, the file declares %lld\n", st->file, st->total,
                    (long long)declared);
    }
}

/* Fails the test after the file's memory is released, so that a failure leaks nothing. */
static void wy_verdict(const struct wy_stats *st)
{
    if (st->failures != 0)
        fail_msg("%s: %u vector(s) disagree with gatehouse (see above)", st->file, st->failures);
}

/* ---- JWS and JWK files: the JWS layer, as a token from the network ---- */

static const char *const wy_private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};

/*
 * The group's key as gatehouse loads a key set: "public" when present, else "private" with the
 * private members of each asymmetric key deleted (our parser refuses a JWK that carries them); one
 * JWK is wrapped as {"keys":[jwk]}. Returns gh_jwks_parse's code; *out is the set (may be NULL).
 */
static int wy_group_keys(const json_t *group, struct gh_jwks **out)
{
    const json_t *pub = json_object_get(group, "public");
    json_t *key = json_deep_copy(pub != NULL ? pub : json_object_get(group, "private"));
    json_t *set, *keys, *jwk;
    size_t i;
    char *text;
    int rc;

    *out = NULL;
    if (key == NULL)
        return GH_ERR_NOMEM;
    set = json_object_get(key, "keys") != NULL ? key : json_pack("{s:[o]}", "keys", key);
    if (set == NULL)
        return GH_ERR_NOMEM;
    keys = json_object_get(set, "keys");
    json_array_foreach(keys, i, jwk)
    {
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        for (size_t m = 0; pub == NULL && m < WY_COUNT(wy_private_members); m++) {
            if (kty == NULL || strcmp(kty, "oct") != 0)
                json_object_del(jwk, wy_private_members[m]);
        }
    }
    text = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    if (text == NULL)
        return GH_ERR_NOMEM;
    rc = gh_jwks_parse(text, strlen(text), GH_JWK_ALLOW_SECRET, out);
    free(text);
    return rc;
}

/* The token bytes a client would send: a compact JWS as is, a JSON serialization as its text. */
static char *wy_token_text(const json_t *jws)
{
    return json_is_string(jws) ? strdup(json_string_value(jws)) : json_dumps(jws, JSON_COMPACT);
}

static int wy_verify_token(const char *token, const struct gh_jwks *keys)
{
    struct gh_jws jws;
    const struct gh_jwk *used = NULL;
    int rc = gh_jws_parse(token, strlen(token), &jws);

    if (rc == GH_OK) {
        rc = gh_jws_verify(&jws, GH_ALGS_ALL, keys, &used);
        if (rc == GH_OK && used == NULL)
            rc = GH_ERR_INTERNAL; /* an acceptance must name the key that verified */
    }
    gh_jws_clear(&jws);
    return rc;
}

static const json_t *wy_find_test(const json_t *doc, long tc_id)
{
    const json_t *group, *test;
    size_t g, t;

    json_array_foreach(json_object_get(doc, "testGroups"), g, group)
    {
        json_array_foreach(json_object_get(group, "tests"), t, test)
        {
            if (json_integer_value(json_object_get(test, "tcId")) == tc_id)
                return test;
        }
    }
    return NULL;
}

/* 1 when `c` is a listed defect of the file (checked and counted here), else 0. */
static int wy_defect(const json_t *doc, const struct wy_case *c, const json_t *jws, int rc,
                     struct wy_stats *st)
{
    for (size_t i = 0; i < WY_COUNT(wy_defects); i++) {
        const struct wy_defect *d = &wy_defects[i];
        const json_t *twin;
        if (strcmp(d->file, c->file) != 0 || d->tc_id != c->tc_id)
            continue;
        wy_defect_hits[i]++;
        twin = wy_find_test(doc, d->twin);
        if (twin == NULL || !json_equal(json_object_get(twin, "jws"), jws) ||
            strcmp(json_string_value(json_object_get(twin, "result")), "valid") != 0)
            wy_fail(st, c, rc, "the listed defect (same token as a valid twin), which is gone");
        else if (rc != GH_OK)
            wy_fail(st, c, rc, "OK, the verdict of its byte-identical valid twin");
        else
            st->defects++;
        return 1;
    }
    return 0;
}

static void wy_run_jws_group(const json_t *doc, const json_t *group, struct wy_stats *st)
{
    struct gh_jwks *keys = NULL;
    int key_rc = wy_group_keys(group, &keys);
    const json_t *test;
    size_t i;

    json_array_foreach(json_object_get(group, "tests"), i, test)
    {
        struct wy_case c = wy_case_of(st->file, test);
        const json_t *jws = json_object_get(test, "jws");
        char *token = wy_token_text(jws);
        int rc;

        assert_non_null(token);
        /* a key set document gatehouse refuses refuses every token checked against it */
        rc = key_rc != GH_OK ? key_rc : wy_verify_token(token, keys);
        free(token);
        st->total++;
        if (!wy_defect(doc, &c, jws, rc, st))
            wy_judge(&c, rc, st);
    }
    gh_jwks_free(keys);
}

static void wy_run_jws_file(const char *name)
{
    json_t *doc = wy_load(name);
    struct wy_stats *st = wy_stats_new(name);
    const json_t *group;
    size_t g;

    assert_true(json_array_size(json_object_get(doc, "testGroups")) > 0);
    json_array_foreach(json_object_get(doc, "testGroups"), g, group)
    {
        wy_run_jws_group(doc, group, st);
    }
    wy_finish(doc, st);
    json_decref(doc);
    wy_verdict(st);
}

static void test_json_web_signature(void **state)
{
    (void)state;
    wy_run_jws_file(WY_JWS_FILE);
}

static void test_json_web_key(void **state)
{
    (void)state;
    wy_run_jws_file(WY_JWK_FILE);
}

/* ---- signature primitive files: gh_sig_verify with one key per group ---- */

struct wy_primitive {
    const char *file;
    enum gh_alg alg;
};

static const struct wy_primitive wy_primitives[] = {
    {"ecdsa_secp256r1_sha256_p1363_test.json", GH_ALG_ES256},
    {"ecdsa_secp384r1_sha384_p1363_test.json", GH_ALG_ES384},
    {"ecdsa_secp521r1_sha512_p1363_test.json", GH_ALG_ES512},
    {"rsa_signature_2048_sha256_test.json", GH_ALG_RS256},
    {"rsa_signature_2048_sha384_test.json", GH_ALG_RS384},
    {"rsa_signature_2048_sha512_test.json", GH_ALG_RS512},
    {"rsa_pss_2048_sha256_mgf1_32_test.json", GH_ALG_PS256},
    {"rsa_pss_4096_sha384_mgf1_48_test.json", GH_ALG_PS384},
    {"rsa_pss_4096_sha512_mgf1_64_test.json", GH_ALG_PS512},
    {"ed25519_test.json", GH_ALG_EDDSA},
    {"hmac_sha256_test.json", GH_ALG_HS256},
    {"hmac_sha384_test.json", GH_ALG_HS384},
    {"hmac_sha512_test.json", GH_ALG_HS512},
};

/* A group's public key: its publicKeyJwk as JSON text when present, else its publicKeyPem. */
static int wy_primitive_key(const json_t *group, struct gh_jwks **out)
{
    const json_t *jwk = json_object_get(group, "publicKeyJwk");
    const char *pem = json_string_value(json_object_get(group, "publicKeyPem"));
    char *text;
    int rc;

    *out = NULL;
    if (jwk == NULL)
        return pem != NULL ? gh_jwks_from_key(pem, strlen(pem), 0, out) : GH_ERR_INVALID_ARG;
    text = json_dumps(jwk, JSON_COMPACT);
    if (text == NULL)
        return GH_ERR_NOMEM;
    rc = gh_jwks_from_key(text, strlen(text), GH_JWK_ALLOW_SECRET, out);
    free(text);
    return rc;
}

/*
 * gatehouse's verdict on one primitive vector, asked the way gh_jws_verify asks: first whether the
 * key fits the alg (the refusal's reason is then the key's), then gh_sig_verify. gh_sig_verify is
 * called in both cases, and must refuse a key that gh_jwk_fits refused.
 */
static int wy_primitive_verdict(const struct wy_case *c, const struct gh_jwk *key,
                                const json_t *test, const char *sig_member, struct wy_stats *st)
{
    size_t msg_len, sig_len;
    unsigned char *msg = wy_hex(test, "msg", &msg_len), *sig = wy_hex(test, sig_member, &sig_len);
    int fits, rc;

    assert_non_null(msg);
    assert_non_null(sig);
    fits = gh_jwk_fits(key, c->alg);
    rc = gh_sig_verify(c->alg, key, msg, msg_len, sig, sig_len);
    free(msg);
    free(sig);
    if (fits == GH_OK)
        return rc;
    if (rc != GH_ERR_KEY_MISMATCH)
        wy_fail(st, c, rc, "KEY_MISMATCH from gh_sig_verify for a key gh_jwk_fits refused");
    return fits;
}

/* HMAC vectors carry their own key; gh_jwks_from_secret is how an operator's secret is loaded. */
static int wy_hmac_verdict(struct wy_case *c, const json_t *test, struct wy_stats *st)
{
    struct gh_jwks *keys = NULL;
    unsigned char *secret = wy_hex(test, "key", &c->key_len);
    int rc;

    assert_non_null(secret);
    rc = gh_jwks_from_secret(secret, c->key_len, &keys);
    free(secret);
    if (rc == GH_OK)
        rc = wy_primitive_verdict(c, &keys->keys[0], test, "tag", st);
    gh_jwks_free(keys);
    return rc;
}

static void wy_run_primitive_group(const struct wy_primitive *p, const json_t *group,
                                   struct wy_stats *st)
{
    const struct gh_alg_info *info = gh_alg_info(p->alg);
    int hmac = info->family == GH_FAMILY_HMAC;
    json_int_t full_tag_bits = (json_int_t)(8 * info->hash_len);
    struct gh_jwks *keys = NULL;
    int key_rc = hmac ? GH_OK : wy_primitive_key(group, &keys);
    const json_t *test;
    size_t i;

    json_array_foreach(json_object_get(group, "tests"), i, test)
    {
        struct wy_case c = wy_case_of(p->file, test);
        int rc;

        c.alg = p->alg;
        st->total++;
        if (hmac && json_integer_value(json_object_get(group, "tagSize")) != full_tag_bits) {
            st->not_jws++; /* a truncated tag is no JWS HMAC (RFC 7518 §3.2) */
            continue;
        }
        if (hmac)
            rc = wy_hmac_verdict(&c, test, st);
        else if (key_rc != GH_OK)
            rc = key_rc;
        else
            rc = wy_primitive_verdict(&c, &keys->keys[0], test, "sig", st);
        wy_judge(&c, rc, st);
    }
    gh_jwks_free(keys);
}

static void test_primitive_file(void **state)
{
    const struct wy_primitive *p = *state;
    json_t *doc = wy_load(p->file);
    struct wy_stats *st = wy_stats_new(p->file);
    const json_t *group;
    size_t g;

    assert_true(json_array_size(json_object_get(doc, "testGroups")) > 0);
    json_array_foreach(json_object_get(doc, "testGroups"), g, group)
    {
        wy_run_primitive_group(p, group, st);
    }
    wy_finish(doc, st);
    json_decref(doc);
    wy_verdict(st);
}

/* Without the vectors this program proves nothing, so their absence is a failure, not a skip. */
static void test_vectors_present(void **state)
{
    char path[4096];
    struct stat sb;
    (void)state;

    snprintf(path, sizeof path, "%s/wycheproof", gh_test_vectors_dir());
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        fail_msg("the Wycheproof vectors directory %s is missing (see tests/vectors/README.md, "
                 "or set GH_VECTORS_DIR)",
                 path);
}

static void wy_print_row(const struct wy_stats *s)
{
    printf("%-40s %6u %6u %6u %6u %6u %6u %7u %7u\n", s->file, s->total, s->valid_accepted,
           s->invalid_refused, s->named, s->acceptable_accepted, s->acceptable_refused, s->not_jws,
           s->defects);
}

static void wy_print_summary(void)
{
    struct wy_stats sum = {.file = "all files"};

    printf("\nWycheproof summary (vectors from %s/wycheproof)\n", gh_test_vectors_dir());
    printf("%-40s %6s %6s %6s %6s %6s %6s %7s %7s\n", "file", "total", "valid+", "inval-", "named",
           "accpt+", "accpt-", "not-JWS", "defects");
    for (size_t i = 0; i < wy_summary_count; i++) {
        const struct wy_stats *s = &wy_summary[i];
        wy_print_row(s);
        sum.total += s->total;
        sum.valid_accepted += s->valid_accepted;
        sum.invalid_refused += s->invalid_refused;
        sum.named += s->named;
        sum.acceptable_accepted += s->acceptable_accepted;
        sum.acceptable_refused += s->acceptable_refused;
        sum.not_jws += s->not_jws;
        sum.defects += s->defects;
    }
    wy_print_row(&sum);
    printf("valid+ valid accepted, inval- invalid refused, named refused by a named rule, "
           "accpt+/- acceptable accepted/refused, defects invalid vectors identical to a valid "
           "one\n");
    for (size_t i = 0; i < WY_COUNT(wy_rules); i++)
        printf("  named rule %s tcId %ld: %s (%u hits): %s\n", wy_rules[i].file, wy_rules[i].tc_id,
               gh_error_name(wy_rules[i].code), wy_rule_hits[i], wy_rules[i].rule);
}

int main(void)
{
#define WY_PRIMITIVE_TEST(i)                                                                       \
    {                                                                                              \
        .name = wy_primitives[i].file, .test_func = test_primitive_file,                           \
        .initial_state = (void *)&wy_primitives[i]                                                 \
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_present),
        {.name = WY_JWS_FILE, .test_func = test_json_web_signature},
        {.name = WY_JWK_FILE, .test_func = test_json_web_key},
        WY_PRIMITIVE_TEST(0),
        WY_PRIMITIVE_TEST(1),
        WY_PRIMITIVE_TEST(2),
        WY_PRIMITIVE_TEST(3),
        WY_PRIMITIVE_TEST(4),
        WY_PRIMITIVE_TEST(5),
        WY_PRIMITIVE_TEST(6),
        WY_PRIMITIVE_TEST(7),
        WY_PRIMITIVE_TEST(8),
        WY_PRIMITIVE_TEST(9),
        WY_PRIMITIVE_TEST(10),
        WY_PRIMITIVE_TEST(11),
        WY_PRIMITIVE_TEST(12),
    };
#undef WY_PRIMITIVE_TEST
    _Static_assert(WY_COUNT(wy_primitives) == 13, "one test per primitive file");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    wy_print_summary();
    return rc;
}
