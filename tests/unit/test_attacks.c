// SPDX-License-Identifier: Apache-2.0
/*
 * A corpus of known attacks on JWT verifiers and of malformed tokens, each run through the path
 * the gateway takes (gh_jwt_parse, then gh_jwt_verify with a realistic OIDC profile) and each
 * expected to be refused with one exact error code and the SPEC §3 reason word it maps to. It
 * exists so that a change anywhere in src/common or src/jose that lets one of these tokens through,
 * or that changes the reason an operator reads in logs and metrics, fails a test that names the
 * attack. Tokens are signed with the real keys wherever the point is a header or claim rule, so
 * that nothing but that rule can refuse them; positive controls run through the same table so the
 * corpus cannot pass by refusing everything. Every case is its own cmocka test, named in the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"
#include "jose/jwt.h"
#include "testkit.h"

/* The profile's clock: 2023-11-14T22:13:20Z. Claim values below are written relative to it. */
#define NOW    1700000000
#define ISSUER "https://idp.example"

/* Claims of a token the profile accepts; the variants below change one thing at a time. */
#define C_ISS  "\"iss\":\"https://idp.example\""
#define C_AUD  "\"aud\":\"orders\""
#define C_SUB  "\"sub\":\"alice\""
#define C_IAT  "\"iat\":1699999000"
#define C_EXP  "\"exp\":1700003600"
#define CLAIMS C_ISS "," C_AUD "," C_SUB "," C_IAT "," C_EXP
#define GOOD   "{" CLAIMS "}"
/* Open objects holding every good claim but one, for the case to add its own version. */
#define NO_EXP "{" C_ISS "," C_AUD "," C_SUB "," C_IAT
#define NO_ISS "{" C_AUD "," C_SUB "," C_IAT "," C_EXP
#define NO_AUD "{" C_ISS "," C_SUB "," C_IAT "," C_EXP
#define NO_IAT "{" C_ISS "," C_AUD "," C_SUB "," C_EXP
#define NO_SUB "{" C_ISS "," C_AUD "," C_IAT "," C_EXP

/* Open headers naming each key of the IdP's set. */
#define H_RSA "{\"alg\":\"RS256\",\"kid\":\"rsa-2025\""
#define H_EC  "{\"alg\":\"ES256\",\"kid\":\"ec-2025\""

#define OPEN15  "[[[[[[[[[[[[[[["
#define CLOSE15 "]]]]]]]]]]]]]]]"

/* Keys: the first four make the IdP's published set, the last two are the attacker's. */
enum signer { S_RSA, S_EC, S_ED, S_WEAK, S_EVIL_RSA, S_EVIL_EC, S_COUNT };
#define IDP_KEYS 4

static const struct {
    enum gh_alg alg;
    const char *kid;
    int rsa_bits;
} key_specs[S_COUNT] = {
    [S_RSA] = {GH_ALG_RS256, "rsa-2025", 2048},
    [S_EC] = {GH_ALG_ES256, "ec-2025", 0},
    [S_ED] = {GH_ALG_EDDSA, "ed-2025", 0},
    [S_WEAK] = {GH_ALG_RS256, "rsa-legacy", 1024}, /* a legacy key an IdP still publishes */
    [S_EVIL_RSA] = {GH_ALG_RS256, "attacker", 2048},
    [S_EVIL_EC] = {GH_ALG_ES256, "attacker-ec", 0},
};

enum policy_id {
    P_IDP,        /* the IdP's set, every asymmetric algorithm: the default profile */
    P_IDP_HS256,  /* the same set, with HS256 wrongly added to the profile's algorithms */
    P_RS256_ONLY, /* the same set, algorithms ["RS256"] */
    P_STATIC_PEM, /* a `jwt` profile whose jwt_key is the RSA key's PEM, algorithms RS256+HS256 */
    P_COUNT
};

/* Signature surgery applied by edit_signature. */
enum sig_op {
    OP_NONE,         /* the case leaves the signature alone */
    OP_TRUNCATE,     /* drop the last byte */
    OP_PREPEND_ZERO, /* same integer, one byte longer */
    OP_APPEND_ZERO,
    OP_ZERO,        /* every byte zero */
    OP_ONES,        /* every byte 0xff: an RSA signature larger than the modulus */
    OP_R_ORDER,     /* ECDSA r = n */
    OP_S_ORDER,     /* ECDSA s = n */
    OP_RS_ORDER,    /* ECDSA r = s = n: zero once reduced mod n */
    OP_R_ZERO,      /* ECDSA r = 0, s kept */
    OP_DER,         /* ECDSA in DER instead of R||S */
    OP_COORD_PAD,   /* ECDSA with each coordinate one zero byte longer */
    OP_ED_S_PLUS_L, /* Ed25519 S + L: the malleable, non-canonical twin of a valid signature */
};

struct attack;
typedef char *(*edit_fn)(char *token, const struct attack *a);
typedef char *(*build_fn)(const struct attack *a);

struct attack {
    const char *name;
    int expected;       /* GH_OK for a positive control */
    const char *reason; /* gh_error_reason(expected): the SPEC §3 word */
    enum policy_id policy;
    enum signer signer;
    enum gh_alg sign_alg; /* GH_ALG_UNKNOWN: the signer's own */
    const char *header;   /* JSON text (may hold %EVIL_JWK% / %EVIL_X5C%); NULL: alg and kid */
    size_t header_len;    /* for headers with NUL bytes; 0: strlen */
    const char *payload;  /* JSON text; NULL: GOOD */
    const char *literal;  /* the whole token, when it is not signed at all */
    build_fn build;       /* builds the token instead of signing header and payload */
    edit_fn edit;         /* changes the signed token */
    int seg;              /* segment an edit works on (0 header, 1 payload, 2 signature) */
    const char *text;     /* text an edit inserts */
    enum sig_op op;
    size_t size;          /* target size for the size builders */
    const char *used_kid; /* positive controls: the key that must have verified */
};

static struct {
    struct gh_testkey keys[S_COUNT];
    struct gh_jwks *idp;
    struct gh_jwks *static_pem;
    char *rsa_pem;
    size_t rsa_pem_len;
    char *evil_jwk;
    char *evil_x5c;
    struct gh_jwt_policy policies[P_COUNT];
} fx;

static const char *const required_claims[] = {"exp"};
static const char *const audiences[] = {"orders"};

/* The reason words of SPEC §3, plus "ok" for the positive controls, each between spaces. */
static const char spec_reasons[] =
    " ok malformed too_large unsupported_header alg_not_allowed unknown_kid key_mismatch weak_key"
    " bad_signature expired not_yet_valid issued_in_future bad_claim_type missing_claim"
    " wrong_issuer wrong_audience unknown_profile_key keys_unavailable ";

static const unsigned char p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian like Ed25519's S. */
static const unsigned char ed25519_order[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- token surgery ---- */

/* Where segment `seg` of `token` starts and how long it is; 0 when there is no such segment. */
static int segment_bounds(const char *token, int seg, size_t *start, size_t *len)
{
    const char *p = token, *end;

    for (int i = 0; i < seg; i++) {
        p = strchr(p, '.');
        if (p == NULL)
            return 0;
        p++;
    }
    end = strchr(p, '.');
    *start = (size_t)(p - token);
    *len = end != NULL ? (size_t)(end - p) : strlen(p);
    return 1;
}

/* token[0, at) + text + token[at + cut, end); takes `token` over. NULL when out of memory. */
static char *splice(char *token, size_t at, size_t cut, const char *text)
{
    size_t len = strlen(token), text_len = strlen(text);
    char *out = malloc(len - cut + text_len + 1);

    if (out != NULL) {
        memcpy(out, token, at);
        memcpy(out + at, text, text_len);
        memcpy(out + at + text_len, token + at + cut, len - at - cut + 1);
    }
    free(token);
    return out;
}

/* Sets unused low bits of the segment's last character: the same bytes, a second encoding. */
static char *edit_noncanonical(char *token, const struct attack *a)
{
    size_t start, len, value;
    char *last;

    if (!segment_bounds(token, a->seg, &start, &len) || len % 4 < 2) {
        free(token); /* a segment of whole groups has no spare bits: the case is mis-built */
        return NULL;
    }
    last = &token[start + len - 1];
    value = (size_t)(strchr(b64url_alphabet, *last) - b64url_alphabet);
    *last = b64url_alphabet[value | 1];
    return token;
}

/* Appends the '=' padding that standard base64 would have. */
static char *edit_pad(char *token, const struct attack *a)
{
    size_t start, len;

    if (!segment_bounds(token, a->seg, &start, &len) || len % 4 == 0) {
        free(token);
        return NULL;
    }
    return splice(token, start + len, 0, len % 4 == 2 ? "==" : "=");
}

/* Inserts a->text in the middle of segment a->seg. */
static char *edit_insert(char *token, const struct attack *a)
{
    size_t start, len;

    if (!segment_bounds(token, a->seg, &start, &len)) {
        free(token);
        return NULL;
    }
    return splice(token, start + len / 2, 0, a->text);
}

static char *edit_prefix(char *token, const struct attack *a)
{
    return splice(token, 0, 0, a->text);
}

static char *edit_suffix(char *token, const struct attack *a)
{
    return splice(token, strlen(token), 0, a->text);
}

/* Empties segment a->seg, keeping its dots. */
static char *edit_empty_segment(char *token, const struct attack *a)
{
    size_t start, len;

    if (!segment_bounds(token, a->seg, &start, &len)) {
        free(token);
        return NULL;
    }
    return splice(token, start, len, "");
}

/* header.payload, as if the signature and its dot were stripped. */
static char *edit_two_segments(char *token, const struct attack *a)
{
    size_t start, len;

    (void)a;
    if (!segment_bounds(token, 2, &start, &len)) {
        free(token);
        return NULL;
    }
    return splice(token, start - 1, len + 1, "");
}

/* The standard base64 alphabet, as a library that forgot the URL-safe one would write it. */
static char *edit_standard_alphabet(char *token, const struct attack *a)
{
    int changed = 0;

    (void)a;
    for (char *p = token; *p != '\0'; p++) {
        if (*p == '-' || *p == '_') {
            *p = *p == '-' ? '+' : '/';
            changed = 1;
        }
    }
    if (!changed) { /* the case's payload is chosen to encode with '-', so this is a mis-build */
        free(token);
        return NULL;
    }
    return token;
}

/* Re-encodes raw R||S as DER; 0 if the DER happened to have the raw length (no test then). */
static int ecdsa_to_der(unsigned char *sig, size_t *len)
{
    size_t coord = *len / 2;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)coord, NULL), *s = BN_bin2bn(sig + coord, (int)coord, NULL);
    unsigned char *p = sig;
    int der_len = 0;

    if (ecdsa != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(ecdsa, r, s) == 1) {
        r = s = NULL; /* owned by ecdsa now */
        der_len = i2d_ECDSA_SIG(ecdsa, &p);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    if (der_len <= 0 || (size_t)der_len == 2 * coord)
        return 0;
    *len = (size_t)der_len;
    return 1;
}

/* S += L (mod 2^256; S < L, so no wrap): a signature a lax verifier still accepts. */
static void ed25519_add_order(unsigned char *sig)
{
    unsigned carry = 0;

    for (size_t i = 0; i < 32; i++) {
        unsigned v = sig[32 + i] + ed25519_order[i] + carry;
        sig[32 + i] = (unsigned char)v;
        carry = v >> 8;
    }
}

/* Applies `op` to the decoded signature in `sig` (room for 1100 bytes). 1 when done. */
static int transform_signature(enum sig_op op, unsigned char *sig, size_t *len)
{
    size_t coord = *len / 2;

    switch (op) {
    case OP_TRUNCATE:
        return (*len)-- > 0;
    case OP_PREPEND_ZERO:
        memmove(sig + 1, sig, (*len)++);
        sig[0] = 0;
        return 1;
    case OP_APPEND_ZERO:
        sig[(*len)++] = 0;
        return 1;
    case OP_ZERO:
    case OP_ONES:
        memset(sig, op == OP_ZERO ? 0x00 : 0xff, *len);
        return 1;
    case OP_R_ORDER:
    case OP_S_ORDER:
    case OP_RS_ORDER:
        if (*len != 64)
            return 0;
        if (op != OP_S_ORDER)
            memcpy(sig, p256_order, 32);
        if (op != OP_R_ORDER)
            memcpy(sig + 32, p256_order, 32);
        return 1;
    case OP_R_ZERO:
        memset(sig, 0, coord);
        return 1;
    case OP_DER:
        return ecdsa_to_der(sig, len);
    case OP_COORD_PAD:
        memmove(sig + coord + 2, sig + coord, coord);
        sig[coord + 1] = 0;
        memmove(sig + 1, sig, coord);
        sig[0] = 0;
        *len += 2;
        return 1;
    case OP_ED_S_PLUS_L:
        if (*len != 64)
            return 0;
        ed25519_add_order(sig);
        return 1;
    default:
        return 0;
    }
}

static char *edit_signature(char *token, const struct attack *a)
{
    unsigned char sig[1100];
    size_t start, len, sig_len;
    char *encoded;

    if (!segment_bounds(token, 2, &start, &len) || gh_b64url_decoded_max(len) > 1024 ||
        gh_b64url_decode(token + start, len, sig, &sig_len) != GH_OK ||
        !transform_signature(a->op, sig, &sig_len) ||
        (encoded = gh_b64url_encode_alloc(sig, sig_len)) == NULL) {
        free(token);
        return NULL;
    }
    token = splice(token, start, len, encoded);
    free(encoded);
    return token;
}

/* ---- token builders ---- */

/* `template` with %EVIL_JWK% and %EVIL_X5C% replaced by the attacker's key and certificate. */
static char *expand(const char *template)
{
    static const char *const names[] = {"%EVIL_JWK%", "%EVIL_X5C%"};
    const char *values[] = {fx.evil_jwk, fx.evil_x5c};
    char *out = strdup(template), *at;

    for (size_t i = 0; out != NULL && i < 2; i++) {
        while (out != NULL && (at = strstr(out, names[i])) != NULL)
            out = splice(out, (size_t)(at - out), strlen(names[i]), values[i]);
    }
    return out;
}

static char *default_header(enum signer signer)
{
    char buf[128];

    snprintf(buf, sizeof buf, "{\"alg\":\"%s\",\"kid\":\"%s\"}", gh_alg_name(key_specs[signer].alg),
             key_specs[signer].kid);
    return strdup(buf);
}

/* Signs the case's header and payload bytes with its signer. */
static char *sign_case(const struct attack *a)
{
    const char *payload = a->payload != NULL ? a->payload : GOOD;
    char *header, *token;
    size_t header_len;

    if (a->header == NULL)
        header = default_header(a->signer);
    else if (a->header_len == 0)
        header = expand(a->header);
    else if ((header = malloc(a->header_len)) != NULL)
        memcpy(header, a->header, a->header_len); /* raw bytes, possibly with NUL: as given */
    if (header == NULL)
        return NULL;
    header_len = a->header_len != 0 ? a->header_len : strlen(header);
    token = gh_test_sign_as(&fx.keys[a->signer], a->sign_alg, header, header_len, payload,
                            strlen(payload));
    free(header);
    return token;
}

/* `open` (a JSON object without its closing brace) plus a "pad" member of `n` characters. */
static char *padded_object(const char *open, size_t n)
{
    size_t open_len = strlen(open);
    char *out = malloc(open_len + n + 16);

    if (out == NULL)
        return NULL;
    memcpy(out, open, open_len);
    memcpy(out + open_len, ",\"pad\":\"", 8);
    memset(out + open_len + 8, 'x', n);
    memcpy(out + open_len + 8 + n, "\"}", 3);
    return out;
}

/* A properly signed RS256 token of exactly a->size characters, grown by a large header member. */
static char *build_sized_token(const struct attack *a)
{
    const size_t sig_chars = gh_b64url_encoded_len(256), fixed = strlen(H_RSA ",\"pad\":\"\"}");

    for (size_t p = 0; p < 3; p++) { /* one header size is skipped per 4 characters: vary both */
        for (size_t h = 0; h < GH_TOKEN_MAX; h++) {
            size_t total = gh_b64url_encoded_len(fixed + h) + 1 +
                           gh_b64url_encoded_len(strlen(NO_SUB ",\"pad\":\"\"}") + p) + 1 +
                           sig_chars;
            if (total > a->size)
                break;
            if (total == a->size) {
                char *header = padded_object(H_RSA, h), *payload = padded_object(NO_SUB, p);
                char *token = header != NULL && payload != NULL
                                  ? gh_test_sign_as(&fx.keys[S_RSA], GH_ALG_UNKNOWN, header,
                                                    strlen(header), payload, strlen(payload))
                                  : NULL;
                free(header);
                free(payload);
                if (token != NULL && strlen(token) != a->size) { /* the arithmetic above is off */
                    free(token);
                    token = NULL;
                }
                return token;
            }
        }
    }
    return NULL;
}

/* A properly signed RS256 token whose payload is exactly a->size bytes. */
static char *build_sized_payload(const struct attack *a)
{
    const char *header = H_RSA "}";
    size_t fixed = strlen("{" CLAIMS ",\"pad\":\"\"}");
    char *payload, *token;

    if (a->size < fixed || (payload = padded_object("{" CLAIMS, a->size - fixed)) == NULL)
        return NULL;
    token = gh_test_sign_as(&fx.keys[S_RSA], GH_ALG_UNKNOWN, header, strlen(header), payload,
                            strlen(payload));
    free(payload);
    return token;
}

/* A megabyte of base64url in three segments: refused before anything is decoded. */
static char *build_megabyte(const struct attack *a)
{
    size_t len = 1024 * 1024;
    char *token = malloc(len + 1);

    (void)a;
    if (token == NULL)
        return NULL;
    memset(token, 'A', len);
    token[len / 3] = token[2 * len / 3] = '.';
    token[len] = '\0';
    return token;
}

/* A signed header nesting a->size arrays deep, each level two bytes. */
static char *build_deep_header(const struct attack *a)
{
    size_t n = a->size, open_len = strlen(H_RSA ",\"x\":");
    char *header = malloc(open_len + 2 * n + 2), *token;

    if (header == NULL)
        return NULL;
    memcpy(header, H_RSA ",\"x\":", open_len);
    memset(header + open_len, '[', n);
    memset(header + open_len + n, ']', n);
    memcpy(header + open_len + 2 * n, "}", 2);
    token = gh_test_sign_as(&fx.keys[S_RSA], GH_ALG_UNKNOWN, header, strlen(header), GOOD,
                            strlen(GOOD));
    free(header);
    return token;
}

/* "H.P" plus the HMAC-SHA256 of it under `secret`: the kit's HMAC keys are too short for a PEM. */
static char *sign_hs256(const void *secret, size_t secret_len, const char *header,
                        const char *payload)
{
    size_t h = gh_b64url_encoded_len(strlen(header)), p = gh_b64url_encoded_len(strlen(payload));
    char *token = malloc(h + p + 2 + gh_b64url_encoded_len(EVP_MAX_MD_SIZE) + 1);
    unsigned char tag[EVP_MAX_MD_SIZE];
    unsigned int tag_len = 0;

    if (token == NULL)
        return NULL;
    gh_b64url_encode((const unsigned char *)header, strlen(header), token);
    token[h] = '.';
    gh_b64url_encode((const unsigned char *)payload, strlen(payload), token + h + 1);
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)token, h + 1 + p, tag,
             &tag_len) == NULL) {
        free(token);
        return NULL;
    }
    token[h + 1 + p] = '.';
    gh_b64url_encode(tag, tag_len, token + h + p + 2);
    return token;
}

/* The classic key confusion: HS256 keyed with the bytes of the RSA public key's PEM. */
static char *build_hmac_with_pem(const struct attack *a)
{
    return sign_hs256(fx.rsa_pem, fx.rsa_pem_len, a->header, GOOD);
}

/* The signature of one valid token glued onto another payload signed under the same key. */
static char *build_transplant(const struct attack *a)
{
    const char *header = H_RSA "}";
    char *donor = gh_test_sign_as(&fx.keys[S_RSA], GH_ALG_UNKNOWN, header, strlen(header), GOOD,
                                  strlen(GOOD));
    char *target = gh_test_sign_as(&fx.keys[S_RSA], GH_ALG_UNKNOWN, header, strlen(header),
                                   a->payload, strlen(a->payload));
    size_t ds, dl, ts, tl;
    char *token = NULL;

    if (donor != NULL && target != NULL && segment_bounds(donor, 2, &ds, &dl) &&
        segment_bounds(target, 2, &ts, &tl)) {
        token = splice(target, ts, tl, donor + ds);
        target = NULL;
    }
    free(donor);
    free(target);
    return token;
}

/* ---- the corpus ---- */

#define REFUSED(code, why) .expected = GH_ERR_##code, .reason = why
#define ACCEPTED(kid)      .expected = GH_OK, .reason = "ok", .used_kid = kid

static const struct attack attacks[] = {
    /* positive controls: the profile accepts proper tokens, including at every limit */
    {"control: RS256 token", ACCEPTED("rsa-2025")},
    {"control: ES256 token", ACCEPTED("ec-2025"), .signer = S_EC},
    {"control: EdDSA token", ACCEPTED("ed-2025"), .signer = S_ED},
    {"control: RS256 without kid tries each fitting key", ACCEPTED("rsa-2025"),
     .header = "{\"alg\":\"RS256\"}"},
    {"control: typ and cty are ignored", ACCEPTED("rsa-2025"),
     .header = H_RSA ",\"typ\":\"JWT\",\"cty\":\"json\"}"},
    {"control: header nests exactly 16 levels", ACCEPTED("rsa-2025"),
     .header = H_RSA ",\"x\":" OPEN15 "0" CLOSE15 "}"},
    {"control: payload nests exactly 16 levels", ACCEPTED("rsa-2025"),
     .payload = "{" CLAIMS ",\"x\":" OPEN15 "0" CLOSE15 "}"},
    {"control: brackets and escaped quotes in strings are not nesting", ACCEPTED("rsa-2025"),
     .payload = "{" CLAIMS ",\"x\":\"" OPEN15 OPEN15 "\",\"y\":\"\\\"" OPEN15 OPEN15 "\"}"},
    {"control: token of exactly 16384 bytes", ACCEPTED("rsa-2025"), .build = build_sized_token,
     .size = GH_TOKEN_MAX},
    {"control: payload of exactly 10240 bytes", ACCEPTED("rsa-2025"), .build = build_sized_payload,
     .size = GH_PAYLOAD_MAX},
    {"control: exp 59 s ago, within the leeway", ACCEPTED("rsa-2025"),
     .payload = NO_EXP ",\"exp\":1699999941}"},
    {"control: nbf and iat 60 s ahead, within the leeway", ACCEPTED("rsa-2025"),
     .payload = NO_IAT ",\"iat\":1700000060,\"nbf\":1700000060}"},
    {"control: aud array holding the audience", ACCEPTED("rsa-2025"),
     .payload = NO_AUD ",\"aud\":[\"billing\",\"orders\"]}"},

    /* alg */
    {"alg none, with a signature", REFUSED(ALG_NONE, "alg_not_allowed"),
     .header = "{\"alg\":\"none\"}"},
    {"alg none, empty signature (unsecured JWT)", REFUSED(ALG_NONE, "alg_not_allowed"),
     .header = "{\"alg\":\"none\"}", .edit = edit_empty_segment, .seg = 2},
    {"alg none naming the RSA key", REFUSED(ALG_NONE, "alg_not_allowed"),
     .header = "{\"alg\":\"none\",\"kid\":\"rsa-2025\"}"},
    {"alg None", REFUSED(ALG_NONE, "alg_not_allowed"), .header = "{\"alg\":\"None\"}"},
    {"alg NONE", REFUSED(ALG_NONE, "alg_not_allowed"), .header = "{\"alg\":\"NONE\"}"},
    {"alg None, empty signature", REFUSED(ALG_NONE, "alg_not_allowed"),
     .header = "{\"alg\":\"None\"}", .edit = edit_empty_segment, .seg = 2},
    {"alg NONE, empty signature", REFUSED(ALG_NONE, "alg_not_allowed"),
     .header = "{\"alg\":\"NONE\"}", .edit = edit_empty_segment, .seg = 2},
    {"alg nOnE, empty signature", REFUSED(ALG_NONE, "alg_not_allowed"),
     .header = "{\"alg\":\"nOnE\"}", .edit = edit_empty_segment, .seg = 2},
    {"alg missing", REFUSED(ALG_MISSING, "malformed"), .header = "{\"kid\":\"rsa-2025\"}"},
    {"alg is a number", REFUSED(ALG_MISSING, "malformed"),
     .header = "{\"alg\":256,\"kid\":\"rsa-2025\"}"},
    {"alg is an array", REFUSED(ALG_MISSING, "malformed"),
     .header = "{\"alg\":[\"RS256\"],\"kid\":\"rsa-2025\"}"},
    {"alg is null", REFUSED(ALG_MISSING, "malformed"),
     .header = "{\"alg\":null,\"kid\":\"rsa-2025\"}"},
    {"alg is empty", REFUSED(ALG_UNKNOWN, "alg_not_allowed"),
     .header = "{\"alg\":\"\",\"kid\":\"rsa-2025\"}"},
    {"alg unknown (RS1)", REFUSED(ALG_UNKNOWN, "alg_not_allowed"),
     .header = "{\"alg\":\"RS1\",\"kid\":\"rsa-2025\"}"},
    {"alg in lower case (rs256)", REFUSED(ALG_UNKNOWN, "alg_not_allowed"),
     .header = "{\"alg\":\"rs256\",\"kid\":\"rsa-2025\"}"},
    {"alg with a trailing space", REFUSED(ALG_UNKNOWN, "alg_not_allowed"),
     .header = "{\"alg\":\"RS256 \",\"kid\":\"rsa-2025\"}"},
    {"alg ES256K (unsupported curve)", REFUSED(ALG_UNKNOWN, "alg_not_allowed"),
     .header = "{\"alg\":\"ES256K\",\"kid\":\"ec-2025\"}", .signer = S_EC},
    {"alg Ed25519 (fully specified name, unsupported)", REFUSED(ALG_UNKNOWN, "alg_not_allowed"),
     .header = "{\"alg\":\"Ed25519\",\"kid\":\"ed-2025\"}", .signer = S_ED},
    {"HS256 keyed with the RSA key's PEM, default algorithms",
     REFUSED(ALG_NOT_ALLOWED, "alg_not_allowed"), .build = build_hmac_with_pem,
     .header = "{\"alg\":\"HS256\",\"kid\":\"rsa-2025\"}"},
    {"HS256 keyed with the RSA key's PEM, HS256 allowed, RSA kid",
     REFUSED(KEY_MISMATCH, "key_mismatch"), .policy = P_IDP_HS256, .build = build_hmac_with_pem,
     .header = "{\"alg\":\"HS256\",\"kid\":\"rsa-2025\"}"},
    {"HS256 keyed with the RSA key's PEM, HS256 allowed, no kid",
     REFUSED(NO_FITTING_KEY, "key_mismatch"), .policy = P_IDP_HS256, .build = build_hmac_with_pem,
     .header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"},
    {"HS256 keyed with the PEM of a jwt profile's static key",
     REFUSED(NO_FITTING_KEY, "key_mismatch"), .policy = P_STATIC_PEM, .build = build_hmac_with_pem,
     .header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"},
    {"ES256 token on a profile allowing only RS256", REFUSED(ALG_NOT_ALLOWED, "alg_not_allowed"),
     .policy = P_RS256_ONLY, .signer = S_EC},
    {"PS256 on an RSA key pinned to RS256", REFUSED(KEY_MISMATCH, "key_mismatch"),
     .sign_alg = GH_ALG_PS256, .header = "{\"alg\":\"PS256\",\"kid\":\"rsa-2025\"}"},

    /* key selection */
    {"kid is a number", REFUSED(KID_TYPE, "malformed"),
     .header = "{\"alg\":\"RS256\",\"kid\":2025}"},
    {"kid is null", REFUSED(KID_TYPE, "malformed"), .header = "{\"alg\":\"RS256\",\"kid\":null}"},
    {"unknown kid", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"rsa-2024\"}"},
    {"empty kid", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"\"}"},
    {"kid path traversal", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"../../../../../dev/null\"}"},
    {"kid SQL injection", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"x' UNION SELECT 'secret' --\"}"},
    {"RS256 token naming the EC key", REFUSED(KEY_MISMATCH, "key_mismatch"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"ec-2025\"}"},
    {"EdDSA token naming the RSA key", REFUSED(KEY_MISMATCH, "key_mismatch"), .signer = S_ED,
     .header = "{\"alg\":\"EdDSA\",\"kid\":\"rsa-2025\"}"},
    {"ES384 token naming the P-256 key", REFUSED(KEY_MISMATCH, "key_mismatch"), .signer = S_EC,
     .sign_alg = GH_ALG_ES384, .header = "{\"alg\":\"ES384\",\"kid\":\"ec-2025\"}"},
    {"ES512 token without kid, no P-521 key in the set", REFUSED(NO_FITTING_KEY, "key_mismatch"),
     .signer = S_EC, .sign_alg = GH_ALG_ES512, .header = "{\"alg\":\"ES512\"}"},
    {"RS256 signed by a 1024-bit key of the set", REFUSED(RSA_TOO_SMALL, "weak_key"),
     .signer = S_WEAK},
    {"1024-bit signature under the 2048-bit key's kid", REFUSED(SIG_LENGTH, "bad_signature"),
     .signer = S_WEAK, .header = H_RSA "}"},
    {"embedded jwk with the attacker's key and kid", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .signer = S_EVIL_RSA, .header = "{\"alg\":\"RS256\",\"kid\":\"attacker\",\"jwk\":%EVIL_JWK%}"},
    {"embedded jwk with the attacker's key, IdP kid", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .signer = S_EVIL_RSA, .header = H_RSA ",\"jwk\":%EVIL_JWK%}"},
    {"embedded jwk with the attacker's key, no kid", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .signer = S_EVIL_RSA, .header = "{\"alg\":\"RS256\",\"jwk\":%EVIL_JWK%}"},
    {"jku pointing at the attacker's key set", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .signer = S_EVIL_RSA,
     .header = "{\"alg\":\"RS256\",\"kid\":\"attacker\",\"jku\":"
               "\"https://attacker.example/.well-known/jwks.json\"}"},
    {"jku lookalike host, IdP kid", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_EVIL_RSA,
     .header = H_RSA ",\"jku\":\"https://idp.example.attacker.example/jwks.json\"}"},
    {"x5u pointing at the attacker's certificate", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .signer = S_EVIL_RSA, .header = H_RSA ",\"x5u\":\"https://attacker.example/idp.pem\"}"},
    {"x5c with the attacker's self-signed certificate", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .signer = S_EVIL_RSA, .header = "{\"alg\":\"RS256\",\"x5c\":[\"%EVIL_X5C%\"]}"},
    {"ES256 signed by the attacker under the IdP kid", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .signer = S_EVIL_EC, .header = H_EC "}"},

    /* headers that change processing */
    {"crit naming exp", REFUSED(CRIT, "unsupported_header"),
     .header = H_RSA ",\"crit\":[\"exp\"],\"exp\":1700003600}"},
    {"crit empty", REFUSED(CRIT, "unsupported_header"), .header = H_RSA ",\"crit\":[]}"},
    {"crit b64 with b64 false (RFC 7797)", REFUSED(CRIT, "unsupported_header"),
     .header = H_RSA ",\"b64\":false,\"crit\":[\"b64\"]}"},
    {"b64 false without crit", REFUSED(B64, "unsupported_header"),
     .header = H_RSA ",\"b64\":false}"},
    {"zip DEF", REFUSED(ZIP, "unsupported_header"), .header = H_RSA ",\"zip\":\"DEF\"}"},

    /* duplicate member names */
    {"header repeats alg, the second none", REFUSED(JSON_DUPLICATE, "malformed"),
     .header = H_RSA ",\"alg\":\"none\"}"},
    {"header repeats kid", REFUSED(JSON_DUPLICATE, "malformed"),
     .header = H_RSA ",\"kid\":\"ec-2025\"}"},
    {"header repeats alg as \\u0061lg", REFUSED(JSON_DUPLICATE, "malformed"),
     .header = H_RSA ",\"\\u0061lg\":\"none\"}"},
    {"payload repeats exp", REFUSED(JSON_DUPLICATE, "malformed"),
     .payload = "{" CLAIMS ",\"exp\":4102444800}"},
    {"payload repeats iss as \\u0069ss", REFUSED(JSON_DUPLICATE, "malformed"),
     .payload = "{" CLAIMS ",\"\\u0069ss\":\"https://evil.example\"}"},
    {"payload repeats a member of a nested object", REFUSED(JSON_DUPLICATE, "malformed"),
     .payload = "{" CLAIMS ",\"x\":{\"a\":1,\"a\":2}}"},

    /* claim types and times */
    {"exp is a string", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = NO_EXP ",\"exp\":\"1700003600\"}"},
    /* Jansson cannot represent these numbers and fails the parse (RFC 8259 §9 allows that limit),
     * so the token is refused as a whole before any claim is looked at. */
    {"exp 1e400 (beyond double)", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_EXP ",\"exp\":1e400}"},
    {"exp 99999999999999999999 (beyond int64)", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_EXP ",\"exp\":99999999999999999999}"},
    {"exp 1e20", REFUSED(CLAIM_TYPE, "bad_claim_type"), .payload = NO_EXP ",\"exp\":1e20}"},
    {"exp after the year 9999", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = NO_EXP ",\"exp\":253402300800}"},
    {"exp -1e20", REFUSED(CLAIM_TYPE, "bad_claim_type"), .payload = NO_EXP ",\"exp\":-1e20}"},
    {"exp is true", REFUSED(CLAIM_TYPE, "bad_claim_type"), .payload = NO_EXP ",\"exp\":true}"},
    {"exp is null", REFUSED(CLAIM_TYPE, "bad_claim_type"), .payload = NO_EXP ",\"exp\":null}"},
    {"exp is an array", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = NO_EXP ",\"exp\":[1700003600]}"},
    {"exp NaN", REFUSED(JSON_SYNTAX, "malformed"), .payload = NO_EXP ",\"exp\":NaN}"},
    {"nbf is a string", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = "{" CLAIMS ",\"nbf\":\"0\"}"},
    {"iat is an object", REFUSED(CLAIM_TYPE, "bad_claim_type"), .payload = NO_IAT ",\"iat\":{}}"},
    {"expired an hour ago", REFUSED(EXPIRED, "expired"), .payload = NO_EXP ",\"exp\":1699996400}"},
    {"expired by exactly the leeway", REFUSED(EXPIRED, "expired"),
     .payload = NO_EXP ",\"exp\":1699999940}"},
    {"nbf an hour ahead", REFUSED(NOT_YET_VALID, "not_yet_valid"),
     .payload = "{" CLAIMS ",\"nbf\":1700003600}"},
    {"nbf one second past the leeway", REFUSED(NOT_YET_VALID, "not_yet_valid"),
     .payload = "{" CLAIMS ",\"nbf\":1700000061}"},
    {"iat an hour ahead", REFUSED(ISSUED_IN_FUTURE, "issued_in_future"),
     .payload = NO_IAT ",\"iat\":1700003600}"},
    {"exp missing", REFUSED(MISSING_CLAIM, "missing_claim"), .payload = NO_EXP "}"},
    {"iss missing", REFUSED(MISSING_CLAIM, "missing_claim"), .payload = NO_ISS "}"},
    {"aud missing", REFUSED(MISSING_CLAIM, "missing_claim"), .payload = NO_AUD "}"},
    {"empty payload object", REFUSED(MISSING_CLAIM, "missing_claim"), .payload = "{}"},
    {"wrong iss", REFUSED(WRONG_ISSUER, "wrong_issuer"),
     .payload = NO_ISS ",\"iss\":\"https://evil.example\"}"},
    {"iss with a trailing slash", REFUSED(WRONG_ISSUER, "wrong_issuer"),
     .payload = NO_ISS ",\"iss\":\"https://idp.example/\"}"},
    {"iss in other case", REFUSED(WRONG_ISSUER, "wrong_issuer"),
     .payload = NO_ISS ",\"iss\":\"https://IDP.example\"}"},
    {"iss is not a string", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = NO_ISS ",\"iss\":[\"https://idp.example\"]}"},
    {"iss with NUL escape then more", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_ISS ",\"iss\":\"https://idp.example\\u0000.evil.example\"}"},
    {"wrong aud", REFUSED(WRONG_AUDIENCE, "wrong_audience"),
     .payload = NO_AUD ",\"aud\":\"billing\"}"},
    {"aud in other case", REFUSED(WRONG_AUDIENCE, "wrong_audience"),
     .payload = NO_AUD ",\"aud\":\"Orders\"}"},
    {"aud array without the audience", REFUSED(WRONG_AUDIENCE, "wrong_audience"),
     .payload = NO_AUD ",\"aud\":[\"billing\",\"orders-admin\"]}"},
    {"aud empty array", REFUSED(WRONG_AUDIENCE, "wrong_audience"),
     .payload = NO_AUD ",\"aud\":[]}"},
    {"aud array with a non-string member", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = NO_AUD ",\"aud\":[\"orders\",1]}"},
    {"aud is an object", REFUSED(CLAIM_TYPE, "bad_claim_type"),
     .payload = NO_AUD ",\"aud\":{\"orders\":true}}"},

    /* signature first: bad claims never speak before the key and signature do */
    {"expired and signed by the attacker: signature first", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .signer = S_EVIL_RSA, .header = H_RSA "}", .payload = NO_EXP ",\"exp\":1}"},
    {"wrong iss and unknown kid: key first", REFUSED(UNKNOWN_KID, "unknown_kid"),
     .signer = S_EVIL_RSA, .payload = NO_ISS ",\"iss\":\"https://evil.example\"}"},
    {"signature transplanted from another token", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .build = build_transplant, .payload = NO_SUB ",\"sub\":\"admin\"}"},

    /* base64url */
    {"non-canonical trailing bits in the header", REFUSED(BASE64URL, "malformed"),
     .edit = edit_noncanonical, .seg = 0},
    {"non-canonical trailing bits in the payload", REFUSED(BASE64URL, "malformed"),
     .edit = edit_noncanonical, .seg = 1},
    {"non-canonical trailing bits in the signature", REFUSED(BASE64URL, "malformed"),
     .edit = edit_noncanonical, .seg = 2},
    {"padding in the header", REFUSED(BASE64URL, "malformed"), .edit = edit_pad, .seg = 0},
    {"padding in the payload", REFUSED(BASE64URL, "malformed"), .edit = edit_pad, .seg = 1},
    {"padding in the signature", REFUSED(BASE64URL, "malformed"), .edit = edit_pad, .seg = 2},
    {"space inside the header", REFUSED(BASE64URL, "malformed"), .edit = edit_insert, .seg = 0,
     .text = " "},
    {"newline inside the payload", REFUSED(BASE64URL, "malformed"), .edit = edit_insert, .seg = 1,
     .text = "\n"},
    {"tab inside the signature", REFUSED(BASE64URL, "malformed"), .edit = edit_insert, .seg = 2,
     .text = "\t"},
    {"trailing newline", REFUSED(BASE64URL, "malformed"), .edit = edit_suffix, .text = "\n"},
    {"trailing CRLF", REFUSED(BASE64URL, "malformed"), .edit = edit_suffix, .text = "\r\n"},
    {"Bearer prefix left on", REFUSED(BASE64URL, "malformed"), .edit = edit_prefix,
     .text = "Bearer "},
    {"standard base64 alphabet", REFUSED(BASE64URL, "malformed"), .edit = edit_standard_alphabet,
     .payload = "{" CLAIMS ",\"note\":\"~~~\"}"},

    /* segments */
    {"extra fourth segment", REFUSED(SEGMENTS, "malformed"), .edit = edit_suffix, .text = ".e30"},
    {"five segments (JWE form)", REFUSED(SEGMENTS, "malformed"), .edit = edit_suffix,
     .text = ".AAAA.AAAA"},
    {"two segments", REFUSED(SEGMENTS, "malformed"), .edit = edit_two_segments},
    {"empty string", REFUSED(SEGMENTS, "malformed"), .literal = ""},
    {"only dots", REFUSED(SEGMENTS, "malformed"), .literal = ".."},
    {"three dots", REFUSED(SEGMENTS, "malformed"), .literal = "..."},
    {"empty header segment", REFUSED(SEGMENTS, "malformed"), .edit = edit_empty_segment, .seg = 0},
    {"empty payload segment", REFUSED(JSON_SYNTAX, "malformed"), .edit = edit_empty_segment,
     .seg = 1},
    {"empty signature segment", REFUSED(EMPTY_SIGNATURE, "malformed"), .edit = edit_empty_segment,
     .seg = 2},

    /* JSON form */
    {"header is an array", REFUSED(JSON_NOT_OBJECT, "malformed"), .header = "[" H_RSA "}]"},
    {"header is a string", REFUSED(JSON_NOT_OBJECT, "malformed"), .header = "\"RS256\""},
    {"header is a number", REFUSED(JSON_NOT_OBJECT, "malformed"), .header = "256"},
    {"payload is an array", REFUSED(JSON_NOT_OBJECT, "malformed"), .payload = "[" GOOD "]"},
    {"payload is a string", REFUSED(JSON_NOT_OBJECT, "malformed"), .payload = "\"alice\""},
    {"trailing garbage after the header", REFUSED(JSON_SYNTAX, "malformed"), .header = H_RSA "}x"},
    {"second object after the header", REFUSED(JSON_SYNTAX, "malformed"),
     .header = H_RSA "}{\"alg\":\"none\"}"},
    {"NUL byte after the header", REFUSED(JSON_SYNTAX, "malformed"), .header = H_RSA "}\0",
     .header_len = sizeof(H_RSA "}")},
    {"trailing garbage after the payload", REFUSED(JSON_SYNTAX, "malformed"), .payload = GOOD "]"},
    {"comment in the header", REFUSED(JSON_SYNTAX, "malformed"), .header = H_RSA "/* hi */}"},
    {"header with a UTF-8 BOM", REFUSED(JSON_SYNTAX, "malformed"),
     .header = "\xEF\xBB\xBF" H_RSA "}"},
    {"invalid UTF-8 in a payload string", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_SUB ",\"sub\":\"al\xff\"}"},
    {"overlong UTF-8 in the kid", REFUSED(JSON_SYNTAX, "malformed"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"rsa-2025\xc0\xaf\"}"},
    {"UTF-8 encoded surrogate in a payload string", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_SUB ",\"sub\":\"\xed\xa0\x80\"}"},
    {"lone surrogate escape", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_SUB ",\"sub\":\"\\ud800\"}"},
    {"NUL escape in the kid", REFUSED(JSON_SYNTAX, "malformed"),
     .header = "{\"alg\":\"RS256\",\"kid\":\"rsa-2025\\u0000x\"}"},
    {"NUL escape in sub", REFUSED(JSON_SYNTAX, "malformed"),
     .payload = NO_SUB ",\"sub\":\"alice\\u0000admin\"}"},
    {"header nests 17 levels", REFUSED(JSON_DEPTH, "malformed"),
     .header = H_RSA ",\"x\":[" OPEN15 "0" CLOSE15 "]}"},
    {"payload nests 17 levels", REFUSED(JSON_DEPTH, "malformed"),
     .payload = "{" CLAIMS ",\"x\":{\"y\":" OPEN15 "0" CLOSE15 "}}"},
    {"header nests 5000 levels", REFUSED(JSON_DEPTH, "malformed"), .build = build_deep_header,
     .size = 5000},

    /* sizes */
    {"token of 16385 bytes", REFUSED(TOKEN_TOO_LARGE, "too_large"), .build = build_sized_token,
     .size = GH_TOKEN_MAX + 1},
    {"token of 1 MiB", REFUSED(TOKEN_TOO_LARGE, "too_large"), .build = build_megabyte},
    {"payload of 10241 bytes", REFUSED(PAYLOAD_TOO_LARGE, "too_large"),
     .build = build_sized_payload, .size = GH_PAYLOAD_MAX + 1},

    /* signature encodings and values */
    {"ECDSA r = s = 0 (CVE-2022-21449)", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_EC,
     .edit = edit_signature, .op = OP_ZERO},
    {"ECDSA r = s = n", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_EC,
     .edit = edit_signature, .op = OP_RS_ORDER},
    {"ECDSA r = n", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_EC, .edit = edit_signature,
     .op = OP_R_ORDER},
    {"ECDSA s = n", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_EC, .edit = edit_signature,
     .op = OP_S_ORDER},
    {"ECDSA r = 0", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_EC, .edit = edit_signature,
     .op = OP_R_ZERO},
    {"ECDSA signature in DER", REFUSED(SIG_LENGTH, "bad_signature"), .signer = S_EC,
     .edit = edit_signature, .op = OP_DER},
    {"ECDSA signature truncated", REFUSED(SIG_LENGTH, "bad_signature"), .signer = S_EC,
     .edit = edit_signature, .op = OP_TRUNCATE},
    {"ECDSA signature with a zero byte appended", REFUSED(SIG_LENGTH, "bad_signature"),
     .signer = S_EC, .edit = edit_signature, .op = OP_APPEND_ZERO},
    {"ECDSA coordinates zero-padded to 33 bytes", REFUSED(SIG_LENGTH, "bad_signature"),
     .signer = S_EC, .edit = edit_signature, .op = OP_COORD_PAD},
    {"RSA signature truncated", REFUSED(SIG_LENGTH, "bad_signature"), .edit = edit_signature,
     .op = OP_TRUNCATE},
    {"RSA signature with a leading zero byte", REFUSED(SIG_LENGTH, "bad_signature"),
     .edit = edit_signature, .op = OP_PREPEND_ZERO},
    {"RSA signature of zeros", REFUSED(BAD_SIGNATURE, "bad_signature"), .edit = edit_signature,
     .op = OP_ZERO},
    {"RSA signature larger than the modulus", REFUSED(BAD_SIGNATURE, "bad_signature"),
     .edit = edit_signature, .op = OP_ONES},
    {"Ed25519 S + L (non-canonical S)", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_ED,
     .edit = edit_signature, .op = OP_ED_S_PLUS_L},
    {"Ed25519 signature of zeros", REFUSED(BAD_SIGNATURE, "bad_signature"), .signer = S_ED,
     .edit = edit_signature, .op = OP_ZERO},
    {"Ed25519 signature truncated", REFUSED(SIG_LENGTH, "bad_signature"), .signer = S_ED,
     .edit = edit_signature, .op = OP_TRUNCATE},
};

#define N_ATTACKS (sizeof attacks / sizeof attacks[0])

/* ---- fixture ---- */

static char *public_pem(EVP_PKEY *pkey, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (bio != NULL && PEM_write_bio_PUBKEY(bio, pkey) == 1 &&
        (n = BIO_get_mem_data(bio, &data)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(bio);
    return out;
}

/* A self-signed certificate for the attacker's key claiming to be the IdP, as standard base64 DER
 * (the form of an x5c entry). */
static char *self_signed_x5c(EVP_PKEY *pkey)
{
    X509 *cert = X509_new();
    X509_NAME *name = cert != NULL ? X509_get_subject_name(cert) : NULL;
    unsigned char *der = NULL;
    char *b64 = NULL;
    int len = 0;

    if (name != NULL && X509_set_version(cert, 2) == 1 &&
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(cert), 0) != NULL &&
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400) != NULL &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"idp.example",
                                   -1, -1, 0) == 1 &&
        X509_set_issuer_name(cert, name) == 1 && X509_set_pubkey(cert, pkey) == 1 &&
        X509_sign(cert, pkey, EVP_sha256()) > 0 && (len = i2d_X509(cert, &der)) > 0 &&
        (b64 = malloc(((size_t)len + 2) / 3 * 4 + 1)) != NULL)
        EVP_EncodeBlock((unsigned char *)b64, der, len);
    OPENSSL_free(der);
    X509_free(cert);
    return b64;
}

static void init_policy(enum policy_id id, unsigned algorithms, const struct gh_jwks *keys)
{
    struct gh_jwt_policy *p = &fx.policies[id];

    memset(p, 0, sizeof *p);
    p->algorithms = algorithms;
    p->keys = keys;
    p->rules.now = NOW;
    p->rules.leeway = 60;
    p->rules.required = required_claims;
    p->rules.n_required = 1;
    p->rules.issuer = ISSUER;
    p->rules.audiences = audiences;
    p->rules.n_audiences = 1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < S_COUNT; i++)
        gh_testkey_clear(&fx.keys[i]);
    gh_jwks_free(fx.idp);
    gh_jwks_free(fx.static_pem);
    free(fx.rsa_pem);
    free(fx.evil_jwk);
    free(fx.evil_x5c);
    memset(&fx, 0, sizeof fx);
    return 0;
}

static int group_setup(void **state)
{
    (void)state; /* the group state stays NULL so each case receives its table row */
    for (int i = 0; i < S_COUNT; i++) {
        if (gh_testkey_generate(key_specs[i].alg, key_specs[i].kid, key_specs[i].rsa_bits,
                                &fx.keys[i]) != 0)
            return -1;
    }
    fx.idp = gh_testkey_jwks(fx.keys, IDP_KEYS, 0);
    fx.rsa_pem = public_pem(fx.keys[S_RSA].priv, &fx.rsa_pem_len);
    fx.evil_jwk = gh_testkey_public_jwk(&fx.keys[S_EVIL_RSA]);
    fx.evil_x5c = self_signed_x5c(fx.keys[S_EVIL_RSA].priv);
    if (fx.idp == NULL || fx.rsa_pem == NULL || fx.evil_jwk == NULL || fx.evil_x5c == NULL ||
        gh_jwks_from_key(fx.rsa_pem, fx.rsa_pem_len, 0, &fx.static_pem) != GH_OK)
        return -1;
    /* the set must hold three usable keys and the weak one skipped, or cases test nothing */
    if (gh_jwks_usable(fx.idp) != 3 || fx.idp->keys[S_WEAK].status != GH_ERR_RSA_TOO_SMALL)
        return -1;
    init_policy(P_IDP, GH_ALGS_ASYMMETRIC, fx.idp);
    init_policy(P_IDP_HS256, GH_ALGS_ASYMMETRIC | GH_ALG_BIT(GH_ALG_HS256), fx.idp);
    init_policy(P_RS256_ONLY, GH_ALG_BIT(GH_ALG_RS256), fx.idp);
    init_policy(P_STATIC_PEM, GH_ALG_BIT(GH_ALG_RS256) | GH_ALG_BIT(GH_ALG_HS256), fx.static_pem);
    return 0;
}

/* ---- running a case ---- */

static char *make_token(const struct attack *a)
{
    char *token;

    if (a->literal != NULL)
        return strdup(a->literal);
    token = a->build != NULL ? a->build(a) : sign_case(a);
    if (token != NULL && a->edit != NULL)
        token = a->edit(token, a);
    return token;
}

static int is_spec_reason(const char *reason)
{
    char word[40];

    snprintf(word, sizeof word, " %s ", reason);
    return strstr(spec_reasons, word) != NULL;
}

/* The gateway's path: parse, then verify with the profile. */
static int admit(const char *token, size_t len, const struct gh_jwt_policy *policy,
                 const struct gh_jwk **used)
{
    struct gh_jwt jwt;
    int rc = gh_jwt_parse(token, len, &jwt);

    *used = NULL;
    if (rc == GH_OK)
        rc = gh_jwt_verify(&jwt, policy, used, NULL);
    gh_jwt_clear(&jwt);
    return rc;
}

static void run_case(void **state)
{
    const struct attack *a = *state;
    const struct gh_jwt_policy *policy = &fx.policies[a->policy];
    const struct gh_jwk *used;
    char *built = make_token(a), *token;
    size_t len;
    int rc, rc_check;

    /* the table's reason must be the code's and a word of SPEC §3 */
    assert_string_equal(gh_error_reason(a->expected), a->reason);
    assert_true(is_spec_reason(a->reason));
    if (built == NULL)
        fail_msg("%s: the token could not be built", a->name);
    /* an exact-size copy without a NUL, so reading past the token is an ASan error */
    len = strlen(built);
    token = malloc(len ? len : 1);
    if (token != NULL)
        memcpy(token, built, len);
    free(built);
    assert_non_null(token);
    rc = admit(token, len, policy, &used);
    rc_check = gh_jwt_check(token, len, policy);
    free(token); /* before any assertion, which would leave the test without freeing it */
    if (rc != a->expected)
        fail_msg("%s: expected %s (%s), got %s (%s)", a->name, gh_error_name(a->expected),
                 a->reason, gh_error_name(rc), gh_error_reason(rc));
    assert_int_equal(rc_check, rc); /* the one-call path must agree */
    if (a->used_kid != NULL) {
        assert_non_null(used);
        assert_string_equal(used->kid, a->used_kid);
    }
}

int main(void)
{
    struct CMUnitTest *tests = calloc(N_ATTACKS, sizeof *tests);
    size_t controls = 0;
    int failed;

    if (tests == NULL)
        return 1;
    for (size_t i = 0; i < N_ATTACKS; i++) {
        tests[i].name = attacks[i].name;
        tests[i].test_func = run_case;
        tests[i].initial_state = (void *)&attacks[i];
        controls += attacks[i].expected == GH_OK;
    }
    print_message("attack corpus: %zu cases, %zu attacks and %zu positive controls\n", N_ATTACKS,
                  N_ATTACKS - controls, controls);
    failed = _cmocka_run_group_tests("attacks", tests, N_ATTACKS, group_setup, group_teardown);
    free(tests);
    return failed;
}
