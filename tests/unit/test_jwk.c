// SPDX-License-Identifier: Apache-2.0
/*
 * Key loading: every JWK binding rule of SPEC §3, set-level rules, PEM keys and certificates, and
 * gh_jwk_fits. Keys are made fresh by the test kit and edited as JSON to build each bad case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"
#include "jose/jwk.h"
#include "testkit.h"

static struct gh_testkey rsa, ec256, ec384, ec521, ed, hs256, rsa1024;

static int setup(void **state)
{
    (void)state;
    if (gh_testkey_generate(GH_ALG_RS256, "rsa", 0, &rsa) ||
        gh_testkey_generate(GH_ALG_ES256, "ec", 0, &ec256) ||
        gh_testkey_generate(GH_ALG_ES384, "ec384", 0, &ec384) ||
        gh_testkey_generate(GH_ALG_ES512, "ec521", 0, &ec521) ||
        gh_testkey_generate(GH_ALG_EDDSA, "ed", 0, &ed) ||
        gh_testkey_generate(GH_ALG_HS256, "hs", 0, &hs256) ||
        gh_testkey_generate(GH_ALG_RS256, "small", 1024, &rsa1024))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gh_testkey_clear(&rsa);
    gh_testkey_clear(&ec256);
    gh_testkey_clear(&ec384);
    gh_testkey_clear(&ec521);
    gh_testkey_clear(&ed);
    gh_testkey_clear(&hs256);
    gh_testkey_clear(&rsa1024);
    return 0;
}

/* The key's public JWK as a JSON object the test may edit. */
static json_t *jwk_of(const struct gh_testkey *key)
{
    char *text = gh_testkey_public_jwk(key);
    json_t *obj = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(obj);
    return obj;
}

/* Loads one JWK object (consumed) and returns its status. */
static int status_of(json_t *obj, unsigned flags)
{
    struct gh_jwk key;
    gh_jwk_from_json(obj, flags, &key);
    int status = key.status;
    if (status == GH_OK)
        assert_true(key.pkey != NULL || key.secret != NULL);
    gh_jwk_clear(&key);
    json_decref(obj);
    return status;
}

static json_t *with(json_t *obj, const char *name, json_t *value)
{
    json_object_set_new(obj, name, value);
    return obj;
}

static json_t *without(json_t *obj, const char *name)
{
    json_object_del(obj, name);
    return obj;
}

static void test_each_kind_loads(void **state)
{
    (void)state;
    assert_int_equal(status_of(jwk_of(&rsa), 0), GH_OK);
    assert_int_equal(status_of(jwk_of(&ec256), 0), GH_OK);
    assert_int_equal(status_of(jwk_of(&ec384), 0), GH_OK);
    assert_int_equal(status_of(jwk_of(&ec521), 0), GH_OK);
    assert_int_equal(status_of(jwk_of(&ed), 0), GH_OK);
    assert_int_equal(status_of(jwk_of(&hs256), GH_JWK_ALLOW_SECRET), GH_OK);
    /* alg, use and kid are optional */
    assert_int_equal(status_of(without(without(without(jwk_of(&rsa), "alg"), "use"), "kid"), 0),
                     GH_OK);
}

static void test_kty_crv_alg_binding(void **state)
{
    (void)state;
    assert_int_equal(status_of(without(jwk_of(&rsa), "kty"), 0), GH_ERR_JWK_KTY);
    assert_int_equal(status_of(with(jwk_of(&rsa), "kty", json_string("rsa")), 0), GH_ERR_JWK_KTY);
    assert_int_equal(status_of(with(jwk_of(&rsa), "kty", json_integer(1)), 0), GH_ERR_JWK_KTY);
    assert_int_equal(status_of(with(jwk_of(&ec256), "kty", json_string("RSA")), 0), GH_ERR_JWK_ALG);
    assert_int_equal(status_of(with(jwk_of(&ec256), "crv", json_string("P-384")), 0),
                     GH_ERR_JWK_ALG);
    assert_int_equal(
        status_of(without(with(jwk_of(&ec256), "crv", json_string("P-384")), "alg"), 0),
        GH_ERR_JWK_MEMBER); /* 32-byte coordinates are not P-384's */
    assert_int_equal(status_of(with(jwk_of(&ec256), "crv", json_string("secp256k1")), 0),
                     GH_ERR_JWK_CRV);
    assert_int_equal(status_of(with(jwk_of(&ed), "crv", json_string("X25519")), 0), GH_ERR_JWK_CRV);
    assert_int_equal(status_of(with(jwk_of(&ed), "crv", json_string("Ed448")), 0), GH_ERR_JWK_CRV);
    assert_int_equal(status_of(with(jwk_of(&ed), "kty", json_string("EC")), 0), GH_ERR_JWK_CRV);
    assert_int_equal(status_of(with(jwk_of(&rsa), "alg", json_string("ES256")), 0), GH_ERR_JWK_ALG);
    assert_int_equal(status_of(with(jwk_of(&rsa), "alg", json_string("RSA-OAEP")), 0),
                     GH_ERR_JWK_ALG);
    assert_int_equal(status_of(with(jwk_of(&rsa), "alg", json_string("none")), 0), GH_ERR_JWK_ALG);
    assert_int_equal(status_of(with(jwk_of(&rsa), "alg", json_integer(256)), 0), GH_ERR_JWK_ALG);
    assert_int_equal(status_of(with(jwk_of(&rsa), "alg", json_string("PS256")), 0), GH_OK);
}

static void test_use_and_key_ops(void **state)
{
    (void)state;
    assert_int_equal(status_of(with(jwk_of(&rsa), "use", json_string("enc")), 0), GH_ERR_JWK_USE);
    assert_int_equal(status_of(with(jwk_of(&rsa), "use", json_true()), 0), GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(with(jwk_of(&rsa), "key_ops", json_pack("[s]", "verify")), 0),
                     GH_OK);
    assert_int_equal(
        status_of(with(jwk_of(&rsa), "key_ops", json_pack("[s,s]", "sign", "verify")), 0), GH_OK);
    assert_int_equal(status_of(with(jwk_of(&rsa), "key_ops", json_pack("[s]", "encrypt")), 0),
                     GH_ERR_JWK_KEY_OPS);
    assert_int_equal(status_of(with(jwk_of(&rsa), "key_ops", json_pack("[]")), 0),
                     GH_ERR_JWK_KEY_OPS);
    assert_int_equal(status_of(with(jwk_of(&rsa), "key_ops", json_string("verify")), 0),
                     GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(with(jwk_of(&rsa), "key_ops", json_pack("[i]", 1)), 0),
                     GH_ERR_JWK_MEMBER);
}

static void test_private_members_refused(void **state)
{
    (void)state;
    assert_int_equal(status_of(with(jwk_of(&rsa), "d", json_string("AQAB")), 0),
                     GH_ERR_JWK_PRIVATE);
    assert_int_equal(status_of(with(jwk_of(&rsa), "p", json_string("AQAB")), 0),
                     GH_ERR_JWK_PRIVATE);
    assert_int_equal(status_of(with(jwk_of(&ec256), "d", json_string("AQAB")), 0),
                     GH_ERR_JWK_PRIVATE);
    assert_int_equal(status_of(with(jwk_of(&ed), "d", json_string("AQAB")), 0), GH_ERR_JWK_PRIVATE);
}

static void test_rsa_rules(void **state)
{
    (void)state;
    assert_int_equal(status_of(jwk_of(&rsa1024), 0), GH_ERR_RSA_TOO_SMALL);
    assert_string_equal(gh_error_reason(GH_ERR_RSA_TOO_SMALL), "weak_key");
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("AQ")), 0),
                     GH_ERR_RSA_EXPONENT); /* 1 */
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("AQAA")), 0),
                     GH_ERR_RSA_EXPONENT);                                             /* even */
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("Aw")), 0), GH_OK); /* 3 */
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("AQAB=")), 0),
                     GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("")), 0), GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(without(jwk_of(&rsa), "n"), 0), GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(with(jwk_of(&rsa), "n", json_integer(5)), 0), GH_ERR_JWK_MEMBER);
}

/* The base64url of a `bits`-bit odd number (top and bottom bits set, a fixed pattern between):
 * no real modulus, but a size check needs none, and generating a 16384-bit key takes minutes. */
static json_t *big_odd(int bits)
{
    size_t len = (size_t)bits / 8;
    unsigned char *buf = malloc(len);
    char *text = malloc(gh_b64url_encoded_len(len) + 1);
    assert_non_null(buf);
    assert_non_null(text);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(0x5a ^ (i * 131));
    buf[0] |= 0x80;
    buf[len - 1] |= 0x01;
    gh_b64url_encode(buf, len, text);
    json_t *value = json_string(text);
    free(buf);
    free(text);
    return value;
}

/* Issue 11: an IdP's 64 keys of 16384 bits with 64-bit exponents made each kid-less token cost
 * ~0.4 s of CPU. Keys over 8192 bits and exponents over 2^32 are refused as weak_key. */
static void test_rsa_size_and_exponent_bounded(void **state)
{
    (void)state;
    assert_int_equal(status_of(with(jwk_of(&rsa), "n", big_odd(16384)), 0), GH_ERR_RSA_TOO_LARGE);
    assert_int_equal(status_of(with(jwk_of(&rsa), "n", big_odd(8200)), 0), GH_ERR_RSA_TOO_LARGE);
    assert_string_equal(gh_error_reason(GH_ERR_RSA_TOO_LARGE), "weak_key");
    /* 2^64 + 1 and 2^32 + 1: odd, but too large */
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("AQAAAAAAAAAB")), 0),
                     GH_ERR_RSA_EXPONENT);
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("AQAAAAE")), 0),
                     GH_ERR_RSA_EXPONENT);
    assert_string_equal(gh_error_reason(GH_ERR_RSA_EXPONENT), "weak_key");
    /* 2^32 - 1, the largest odd exponent allowed, and 65537 */
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("_____w")), 0), GH_OK);
    assert_int_equal(status_of(with(jwk_of(&rsa), "e", json_string("AQAB")), 0), GH_OK);
}

static void test_ec_rules(void **state)
{
    json_t *obj = jwk_of(&ec256);
    char y[64];
    (void)state;
    /* change the last character of y: the point leaves the curve */
    snprintf(y, sizeof y, "%s", json_string_value(json_object_get(obj, "y")));
    y[strlen(y) - 1] = y[strlen(y) - 1] == 'A' ? 'Q' : 'A';
    assert_int_equal(status_of(with(obj, "y", json_string(y)), 0), GH_ERR_JWK_EC_POINT);
    /* coordinates one byte short */
    assert_int_equal(status_of(with(jwk_of(&ec256), "x", json_string("AAAA")), 0),
                     GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(without(jwk_of(&ec256), "y"), 0), GH_ERR_JWK_MEMBER);
    assert_int_equal(status_of(with(jwk_of(&ed), "x", json_string("AAAA")), 0), GH_ERR_JWK_MEMBER);
}

static void test_oct_rules(void **state)
{
    (void)state;
    assert_int_equal(status_of(jwk_of(&hs256), 0), GH_ERR_JWK_SECRET);
    assert_int_equal(status_of(with(jwk_of(&hs256), "k",
                                    json_string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg")),
                               GH_JWK_ALLOW_SECRET),
                     GH_ERR_HMAC_TOO_SHORT); /* 31 bytes */
    assert_int_equal(status_of(with(jwk_of(&hs256), "k", json_string("")), GH_JWK_ALLOW_SECRET),
                     GH_ERR_HMAC_TOO_SHORT);
    assert_int_equal(
        status_of(with(jwk_of(&hs256), "alg", json_string("A256GCM")), GH_JWK_ALLOW_SECRET),
        GH_ERR_JWK_ALG);
}

static struct gh_jwks *set_of(const char *doc, unsigned flags)
{
    struct gh_jwks *set = NULL;
    assert_int_equal(gh_jwks_parse(doc, strlen(doc), flags, &set), GH_OK);
    return set;
}

static void test_set_form(void **state)
{
    struct gh_jwks *set = NULL;
    char *doc;
    (void)state;
    assert_int_equal(gh_jwks_parse("[]", 2, 0, &set), GH_ERR_JWKS_FORM);
    assert_int_equal(gh_jwks_parse("{\"keys\":{}}", 11, 0, &set), GH_ERR_JWKS_FORM);
    assert_int_equal(gh_jwks_parse("{\"keys\":[]", 10, 0, &set), GH_ERR_JWKS_FORM);
    assert_null(set);
    set = set_of("{\"keys\":[]}", 0);
    assert_int_equal(set->count, 0);
    gh_jwks_free(set);
    /* a bad key does not spoil the others */
    set = set_of("{\"keys\":[1,{\"kty\":\"XYZ\"},{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                 0);
    assert_int_equal(set->count, 3);
    assert_int_equal(set->keys[0].status, GH_ERR_JWK_NOT_OBJECT);
    assert_int_equal(set->keys[1].status, GH_ERR_JWK_KTY);
    assert_int_equal(set->keys[2].status, GH_ERR_RSA_TOO_SMALL);
    assert_int_equal(gh_jwks_usable(set), 0);
    gh_jwks_free(set);
    /* more keys than a set may hold */
    doc = malloc(70 * 8 + 16);
    strcpy(doc, "{\"keys\":[");
    for (int i = 0; i < GH_JWKS_MAX_KEYS + 1; i++)
        strcat(doc, i ? ",{}" : "{}");
    strcat(doc, "]}");
    assert_int_equal(gh_jwks_parse(doc, strlen(doc), 0, &set), GH_ERR_JWKS_FORM);
    free(doc);
}

static void test_set_rules(void **state)
{
    struct gh_testkey keys[3] = {rsa, ec256, hs256};
    struct gh_jwks *set;
    char rsa_kid[64];
    (void)state;
    /* secret keys beside public keys are not used; the public ones are */
    set = gh_testkey_jwks(keys, 3, GH_JWK_ALLOW_SECRET);
    assert_non_null(set);
    assert_int_equal(set->keys[0].status, GH_OK);
    assert_int_equal(set->keys[1].status, GH_OK);
    assert_int_equal(set->keys[2].status, GH_ERR_JWK_MIXED);
    gh_jwks_free(set);
    /* a published set (no flag) never holds secrets */
    set = gh_testkey_jwks(&hs256, 1, 0);
    assert_int_equal(set->keys[0].status, GH_ERR_JWK_SECRET);
    gh_jwks_free(set);
    /* two signing keys with one kid: neither is used */
    memcpy(rsa_kid, rsa.kid, sizeof rsa_kid);
    keys[1] = ec256;
    snprintf(keys[1].kid, sizeof keys[1].kid, "%s", rsa_kid);
    set = gh_testkey_jwks(keys, 2, 0);
    assert_int_equal(set->keys[0].status, GH_ERR_JWK_DUPLICATE_KID);
    assert_int_equal(set->keys[1].status, GH_ERR_JWK_DUPLICATE_KID);
    gh_jwks_free(set);
    /* ...but an encryption key sharing the kid of the signing key is no conflict */
    set = set_of(
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
        "{\"kty\":\"OKP\",\"kid\":\"a\",\"crv\":\"Ed25519\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
        0);
    assert_int_equal(set->keys[0].status, GH_ERR_JWK_USE);
    assert_int_equal(set->keys[1].status, GH_OK);
    gh_jwks_free(set);
}

static char *pem_of(EVP_PKEY *pkey, int as_cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *copy;
    long len;
    if (as_cert) {
        X509 *cert = X509_new();
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, pkey);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"idp", -1, -1, 0);
        X509_set_issuer_name(cert, X509_get_subject_name(cert));
        X509_sign(cert, pkey, EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 ? NULL : EVP_sha256());
        PEM_write_bio_X509(bio, cert);
        X509_free(cert);
    } else {
        PEM_write_bio_PUBKEY(bio, pkey);
    }
    len = BIO_get_mem_data(bio, &data);
    copy = strndup(data, (size_t)len);
    BIO_free(bio);
    return copy;
}

static int pem_status(EVP_PKEY *pkey, int as_cert, enum gh_kty *kty)
{
    char *pem = pem_of(pkey, as_cert);
    struct gh_jwks *set = NULL;
    int status;
    assert_int_equal(gh_jwks_from_key(pem, strlen(pem), 0, &set), GH_OK);
    assert_int_equal(set->count, 1);
    assert_true(set->ignore_kid);
    status = set->keys[0].status;
    *kty = set->keys[0].kty;
    gh_jwks_free(set);
    free(pem);
    return status;
}

static void test_pem_keys_and_certificates(void **state)
{
    enum gh_kty kty;
    struct gh_jwks *set = NULL;
    (void)state;
    for (int cert = 0; cert <= 1; cert++) {
        assert_int_equal(pem_status(rsa.priv, cert, &kty), GH_OK);
        assert_int_equal(kty, GH_KTY_RSA);
        assert_int_equal(pem_status(ec384.priv, cert, &kty), GH_OK);
        assert_int_equal(kty, GH_KTY_EC);
        assert_int_equal(pem_status(ed.priv, cert, &kty), GH_OK);
        assert_int_equal(kty, GH_KTY_OKP);
        assert_int_equal(pem_status(rsa1024.priv, cert, &kty), GH_ERR_RSA_TOO_SMALL);
    }
    assert_int_equal(
        gh_jwks_from_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 58, 0,
                         &set),
        GH_ERR_JWK_PEM);
    assert_int_equal(gh_jwks_from_key("not a key", 9, 0, &set), GH_ERR_JWK_NOT_OBJECT);
    assert_null(set);
}

static void test_single_jwk_and_secret(void **state)
{
    char *text = gh_testkey_public_jwk(&hs256);
    struct gh_jwks *set = NULL;
    (void)state;
    assert_int_equal(gh_jwks_from_key(text, strlen(text), GH_JWK_ALLOW_SECRET, &set), GH_OK);
    assert_int_equal(set->keys[0].status, GH_OK);
    assert_true(set->ignore_kid);
    gh_jwks_free(set);
    assert_int_equal(gh_jwks_from_key(text, strlen(text), 0, &set), GH_OK);
    assert_int_equal(set->keys[0].status, GH_ERR_JWK_SECRET);
    gh_jwks_free(set);
    free(text);
    assert_int_equal(
        gh_jwks_from_secret((const unsigned char *)"0123456789abcdef0123456789abcdef", 32, &set),
        GH_OK);
    assert_int_equal(set->keys[0].status, GH_OK);
    assert_int_equal(gh_jwk_fits(&set->keys[0], GH_ALG_HS256), GH_OK);
    assert_int_equal(gh_jwk_fits(&set->keys[0], GH_ALG_HS384), GH_ERR_HMAC_TOO_SHORT);
    assert_int_equal(gh_jwk_fits(&set->keys[0], GH_ALG_RS256), GH_ERR_KEY_MISMATCH);
    gh_jwks_free(set);
    assert_int_equal(gh_jwks_from_secret((const unsigned char *)"short", 5, &set), GH_OK);
    assert_int_equal(set->keys[0].status, GH_ERR_HMAC_TOO_SHORT);
    gh_jwks_free(set);
}

static void test_fits(void **state)
{
    struct gh_testkey keys[4] = {rsa, ec256, ed, ec521};
    struct gh_jwks *set = gh_testkey_jwks(keys, 4, 0);
    (void)state;
    /* the RSA JWK says alg RS256: PS256 and RS384 do not fit it */
    assert_int_equal(gh_jwk_fits(&set->keys[0], GH_ALG_RS256), GH_OK);
    assert_int_equal(gh_jwk_fits(&set->keys[0], GH_ALG_PS256), GH_ERR_KEY_MISMATCH);
    assert_int_equal(gh_jwk_fits(&set->keys[0], GH_ALG_ES256), GH_ERR_KEY_MISMATCH);
    assert_int_equal(gh_jwk_fits(&set->keys[1], GH_ALG_ES256), GH_OK);
    assert_int_equal(gh_jwk_fits(&set->keys[1], GH_ALG_ES384), GH_ERR_KEY_MISMATCH);
    assert_int_equal(gh_jwk_fits(&set->keys[2], GH_ALG_EDDSA), GH_OK);
    assert_int_equal(gh_jwk_fits(&set->keys[2], GH_ALG_HS256), GH_ERR_KEY_MISMATCH);
    assert_int_equal(gh_jwk_fits(&set->keys[3], GH_ALG_ES512), GH_OK);
    assert_int_equal(gh_jwk_fits(&set->keys[3], GH_ALG_UNKNOWN), GH_ERR_KEY_MISMATCH);
    gh_jwks_free(set);
}

static void test_roca_fingerprint(void **state)
{
    /* A modulus that is a power of 65537 modulo every small prime has the ROCA fingerprint; 65537^k
     * itself is one, and an odd 2048-bit power of 65537 makes a well-formed (if silly) modulus. */
    BIGNUM *n = BN_new(), *e = BN_new();
    BN_CTX *ctx = BN_CTX_new();
    unsigned char buf[512];
    char *n64, doc[1024];
    struct gh_jwks *set;
    (void)state;
    BN_set_word(e, 65537);
    BN_set_word(n, 65537);
    while (BN_num_bits(n) < 2048)
        BN_mul(n, n, e, ctx);
    int len = BN_bn2bin(n, buf);
    n64 = malloc(700);
    gh_b64url_encode(buf, (size_t)len, n64);
    snprintf(doc, sizeof doc, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", n64);
    set = set_of(doc, 0);
    assert_int_equal(set->keys[0].status, GH_ERR_RSA_ROCA);
    gh_jwks_free(set);
    /* and a real key does not */
    set = gh_testkey_jwks(&rsa, 1, 0);
    assert_int_equal(set->keys[0].status, GH_OK);
    gh_jwks_free(set);
    free(n64);
    BN_free(n);
    BN_free(e);
    BN_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_kind_loads),
        cmocka_unit_test(test_kty_crv_alg_binding),
        cmocka_unit_test(test_use_and_key_ops),
        cmocka_unit_test(test_private_members_refused),
        cmocka_unit_test(test_rsa_rules),
        cmocka_unit_test(test_rsa_size_and_exponent_bounded),
        cmocka_unit_test(test_ec_rules),
        cmocka_unit_test(test_oct_rules),
        cmocka_unit_test(test_set_form),
        cmocka_unit_test(test_set_rules),
        cmocka_unit_test(test_pem_keys_and_certificates),
        cmocka_unit_test(test_single_jwk_and_secret),
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_roca_fingerprint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
