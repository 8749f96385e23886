// SPDX-License-Identifier: Apache-2.0
/*
 * How much does gatehouse add to the cryptography of a token check? For each JWS algorithm this
 * measures the full verification of a typical IdP access token (the token string in:
 * gh_jwt_parse + gh_jwt_verify, i.e. base64url, both JSON documents, kid lookup in a set of three
 * keys, signature, claims) against bare OpenSSL verifying the same signature with the same key over
 * the same signing input, and prints the ratio. Machines are shared and noisy, so the two are
 * measured in the same run, in alternating short rounds, and only the ratio of their medians is
 * meant to be compared between machines and commits. Single-threaded on purpose: the question is
 * the cost per token, not the machine's throughput.
 *
 * usage: bench_verify [--rounds N] [--round-ms MS] [ALG...]
 */
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64url.h"
#include "common/error.h"
#include "jose/jwt.h"
#include "testkit.h"

#define KEYS_PER_SET 3 /* an IdP mid-rotation: the token names the last key, so lookup is real */
#define MAX_ROUNDS   100
#define ISSUER       "https://idp.example.com/oauth2/aus4x8d2k1QwErTy5357"
#define AUDIENCE     "api://orders"

struct bench_case {
    enum gh_alg alg;
    struct gh_testkey keys[KEYS_PER_SET];
    /* gatehouse side */
    struct gh_jwks *jwks;
    struct gh_jwt_policy policy;
    char *token;
    size_t token_len, header_len, payload_len;
    /* OpenSSL side: prepared once, as a caller with a key cache would */
    EVP_PKEY *pkey; /* public key only, for asymmetric algorithms */
    EVP_MD *md;     /* explicitly fetched, so neither side pays an implicit fetch per call */
    size_t signing_input_len; /* the token up to its second dot */
    unsigned char *sig;       /* DER for ECDSA, raw otherwise */
    size_t sig_len;
};

static const char *const required[] = {"exp", "sub"};
static const char *const audiences[] = {AUDIENCE};

static void die(const char *what)
{
    fprintf(stderr, "bench_verify: %s\n", what);
    exit(1);
}

/*
 * CPU time of this thread, not wall time: on a shared machine the thread is descheduled at random,
 * and wall time would charge those gaps to whichever side happened to be running.
 */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A kid the way IdPs publish them: a base64url SHA-256 thumbprint (43 characters). */
static void make_kid(enum gh_alg alg, int index, char kid[64])
{
    unsigned char digest[32];
    char seed[32];
    unsigned int len = 0;

    snprintf(seed, sizeof seed, "%s-%d", gh_alg_name(alg), index);
    if (EVP_Digest(seed, strlen(seed), digest, &len, EVP_sha256(), NULL) != 1)
        die("cannot hash a kid");
    gh_b64url_encode(digest, len, kid);
}

/* Header {"alg","kid","typ":"at+jwt"} and a payload of about 500 bytes, as Okta or Entra issue. */
static void make_token(struct bench_case *c, int64_t now)
{
    const struct gh_testkey *signer = &c->keys[KEYS_PER_SET - 1];
    char header[160], payload[1024];
    int h, p;

    h = snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}",
                 gh_alg_name(c->alg), signer->kid);
    p = snprintf(payload, sizeof payload,
                 "{\"ver\":1,\"jti\":\"AT.kF3c9Qz0bW7yL2nXp5RtVuH8sJ4mD6aE1gK\","
                 "\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
                 "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"auth_time\":%lld,"
                 "\"cid\":\"0oa9x7c5v3b1n2m4q6w8\",\"client_id\":\"0oa9x7c5v3b1n2m4q6w8\","
                 "\"uid\":\"00u2k4m6o8q0s2u4w6y8\",\"sub\":\"alice.martin@example.com\","
                 "\"scope\":\"openid profile email offline_access orders:read orders:write\","
                 "\"scp\":[\"openid\",\"profile\",\"email\",\"orders:read\",\"orders:write\"],"
                 "\"groups\":[\"Everyone\",\"orders-admins\"],"
                 "\"https://gatehouse.dev/key\":\"gk_Zr8vXq3LmN0pT6wY9aB2cD5eF7gH1jK4sU8iO0lQ2\"}",
                 (long long)now - 30, (long long)now - 30, (long long)now + 3600,
                 (long long)now - 45);
    if (h <= 0 || p <= 0 || (size_t)p >= sizeof payload)
        die("token template too large");
    c->header_len = (size_t)h;
    c->payload_len = (size_t)p;
    c->token = gh_test_sign(signer, header, payload);
    if (c->token == NULL)
        die("cannot sign the token");
    c->token_len = strlen(c->token);
}

/* The raw R||S signature of the token as the DER ECDSA-Sig-Value OpenSSL verifies. */
static void ecdsa_to_der(struct bench_case *c, const unsigned char *raw, size_t coord)
{
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)coord, NULL), *s = BN_bin2bn(raw + coord, (int)coord, NULL);
    unsigned char *der = NULL;
    int len;

    if (ecdsa == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(ecdsa, r, s))
        die("cannot build an ECDSA signature");
    len = i2d_ECDSA_SIG(ecdsa, &der);
    if (len <= 0)
        die("cannot encode an ECDSA signature");
    c->sig = der; /* allocated by OpenSSL */
    c->sig_len = (size_t)len;
    ECDSA_SIG_free(ecdsa);
}

/* The OpenSSL side's inputs, taken from the token itself so both sides verify the same bytes. */
static void prepare_openssl(struct bench_case *c)
{
    const struct gh_alg_info *info = gh_alg_info(c->alg);
    const struct gh_testkey *signer = &c->keys[KEYS_PER_SET - 1];
    const char *sig_b64 = strrchr(c->token, '.') + 1;
    size_t b64_len = strlen(sig_b64), raw_len;
    unsigned char *raw = malloc(gh_b64url_decoded_max(b64_len) + 1);

    c->signing_input_len = (size_t)(sig_b64 - 1 - c->token);

    if (raw == NULL || gh_b64url_decode(sig_b64, b64_len, raw, &raw_len) != GH_OK)
        die("cannot decode the token's signature");
    if (info->digest != NULL && (c->md = EVP_MD_fetch(NULL, info->digest, NULL)) == NULL)
        die("cannot fetch the digest");
    if (info->family == GH_FAMILY_ECDSA) {
        ecdsa_to_der(c, raw, info->ec_coord_len);
        free(raw);
    } else {
        c->sig = raw;
        c->sig_len = raw_len;
    }
    if (info->family != GH_FAMILY_HMAC) {
        /* a public-only key, as gatehouse holds it, built without gatehouse's code */
        unsigned char *der = NULL;
        const unsigned char *p;
        int len = i2d_PUBKEY(signer->priv, &der);
        p = der;
        if (len <= 0 || (c->pkey = d2i_PUBKEY(NULL, &p, len)) == NULL)
            die("cannot export the public key");
        OPENSSL_free(der);
    }
}

static void setup_case(struct bench_case *c, enum gh_alg alg, int64_t now)
{
    const struct gh_alg_info *info = gh_alg_info(alg);
    unsigned flags = info->family == GH_FAMILY_HMAC ? GH_JWK_ALLOW_SECRET : 0;

    memset(c, 0, sizeof *c);
    c->alg = alg;
    for (int i = 0; i < KEYS_PER_SET; i++) {
        char kid[64];
        make_kid(alg, i, kid);
        if (gh_testkey_generate(alg, kid, 0, &c->keys[i]) != 0)
            die("cannot generate a key");
    }
    c->jwks = gh_testkey_jwks(c->keys, KEYS_PER_SET, flags);
    if (c->jwks == NULL || gh_jwks_usable(c->jwks) != KEYS_PER_SET)
        die("the key set is not usable");
    make_token(c, now);
    c->policy.algorithms = GH_ALG_BIT(alg);
    c->policy.keys = c->jwks;
    c->policy.rules.now = now;
    c->policy.rules.leeway = 60;
    c->policy.rules.required = required;
    c->policy.rules.n_required = sizeof required / sizeof required[0];
    c->policy.rules.issuer = ISSUER;
    c->policy.rules.audiences = audiences;
    c->policy.rules.n_audiences = 1;
    prepare_openssl(c);
}

static void clear_case(struct bench_case *c)
{
    for (int i = 0; i < KEYS_PER_SET; i++)
        gh_testkey_clear(&c->keys[i]);
    gh_jwks_free(c->jwks);
    free(c->token);
    EVP_PKEY_free(c->pkey);
    EVP_MD_free(c->md);
    if (gh_alg_info(c->alg)->family == GH_FAMILY_ECDSA)
        OPENSSL_free(c->sig);
    else
        free(c->sig);
}

/* What the gateway does per request (less the key-claim lookup between the two calls). */
static int gatehouse_verify(const struct bench_case *c)
{
    struct gh_jwt jwt;
    const struct gh_jwk *used;
    int rc = gh_jwt_parse(c->token, c->token_len, &jwt);

    if (rc == GH_OK)
        rc = gh_jwt_verify(&jwt, &c->policy, &used, NULL);
    gh_jwt_clear(&jwt);
    return rc == GH_OK;
}

/* The least a correct verifier must do with OpenSSL 3 for one signature. */
static int openssl_verify(const struct bench_case *c)
{
    const struct gh_alg_info *info = gh_alg_info(c->alg);
    const unsigned char *msg = (const unsigned char *)c->token;
    size_t msg_len = c->signing_input_len;
    EVP_MD_CTX *ctx;
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    if (info->family == GH_FAMILY_HMAC) {
        unsigned char tag[EVP_MAX_MD_SIZE];
        unsigned int tag_len = 0;
        const struct gh_testkey *signer = &c->keys[KEYS_PER_SET - 1];
        if (HMAC(c->md, signer->secret, (int)signer->secret_len, msg, msg_len, tag, &tag_len) ==
            NULL)
            return 0;
        return tag_len == c->sig_len && CRYPTO_memcmp(tag, c->sig, c->sig_len) == 0;
    }
    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, c->md, NULL, c->pkey) == 1;
    if (ok && info->family == GH_FAMILY_RSA_PSS)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(ctx, c->sig, c->sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

typedef int (*verify_fn)(const struct bench_case *c);

/* Runs `fn` in batches of `batch` for at least `seconds`; ops per second. */
static double run_round(verify_fn fn, const struct bench_case *c, size_t batch, double seconds)
{
    double start = now_seconds(), elapsed;
    size_t ops = 0, ok = 0;

    do {
        for (size_t i = 0; i < batch; i++)
            ok += (size_t)fn(c);
        ops += batch;
        elapsed = now_seconds() - start;
    } while (elapsed < seconds);
    if (ok != ops)
        die("a verification failed while measuring");
    return (double)ops / elapsed;
}

/* Batch size for about a millisecond, so reading the clock (a system call) costs nothing. */
static size_t calibrate(verify_fn fn, const struct bench_case *c)
{
    double rate = run_round(fn, c, 1, 0.05);
    size_t batch = (size_t)(rate / 1000.0);
    return batch > 0 ? batch : 1;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct result {
    double gatehouse, openssl, ratio_min, ratio_max;
};

/* Alternating rounds (order swapped each round) so drift and neighbours hit both sides alike. */
static struct result measure(const struct bench_case *c, int rounds, double round_seconds)
{
    double gh[MAX_ROUNDS], ossl[MAX_ROUNDS];
    size_t gh_batch, ossl_batch;
    struct result r = {0, 0, 1e9, 0};

    if (!gatehouse_verify(c) || !openssl_verify(c))
        die("the token does not verify before measuring");
    gh_batch = calibrate(gatehouse_verify, c);
    ossl_batch = calibrate(openssl_verify, c);
    for (int i = 0; i < rounds; i++) {
        if (i % 2 == 0) {
            gh[i] = run_round(gatehouse_verify, c, gh_batch, round_seconds);
            ossl[i] = run_round(openssl_verify, c, ossl_batch, round_seconds);
        } else {
            ossl[i] = run_round(openssl_verify, c, ossl_batch, round_seconds);
            gh[i] = run_round(gatehouse_verify, c, gh_batch, round_seconds);
        }
        double ratio = gh[i] / ossl[i];
        r.ratio_min = ratio < r.ratio_min ? ratio : r.ratio_min;
        r.ratio_max = ratio > r.ratio_max ? ratio : r.ratio_max;
    }
    r.gatehouse = median(gh, rounds);
    r.openssl = median(ossl, rounds);
    return r;
}

static void usage(void)
{
    fputs("usage: bench_verify [--rounds N] [--round-ms MS] [ALG...]\n"
          "  ALG: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512\n"
          "  (default: all), --rounds 10, --round-ms 200\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    enum gh_alg algs[GH_ALG_COUNT];
    int n_algs = 0, rounds = 10, round_ms = 200;
    int64_t now = (int64_t)time(NULL);
    size_t header_len = 0, payload_len = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--round-ms") == 0 && i + 1 < argc) {
            round_ms = atoi(argv[++i]);
        } else {
            enum gh_alg alg = gh_alg_from_name(argv[i], strlen(argv[i]));
            if (alg == GH_ALG_UNKNOWN || n_algs == GH_ALG_COUNT)
                usage();
            algs[n_algs++] = alg;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || round_ms < 1)
        usage();
    if (n_algs == 0) {
        for (int a = GH_ALG_UNKNOWN + 1; a < GH_ALG_COUNT; a++)
            algs[n_algs++] = (enum gh_alg)a;
    }

    printf(
        "# bench_verify: full token verification (gh_jwt_parse + gh_jwt_verify) vs bare OpenSSL\n"
        "# signature verification, same key and signing input; %d alternating rounds of %d ms,\n"
        "# medians of thread CPU time; single thread; %s\n",
        rounds, round_ms, OpenSSL_version(OPENSSL_VERSION));
    printf("%-6s %16s %16s %7s %15s %12s %8s\n", "alg", "gatehouse ops/s", "openssl ops/s", "ratio",
           "round ratios", "added us/op", "token B");
    fflush(stdout);
    for (int i = 0; i < n_algs; i++) {
        struct bench_case c;
        struct result r;
        char range[32];

        setup_case(&c, algs[i], now);
        r = measure(&c, rounds, round_ms / 1000.0);
        snprintf(range, sizeof range, "%.2f..%.2f", r.ratio_min, r.ratio_max);
        printf("%-6s %16.0f %16.0f %7.3f %15s %12.2f %8zu\n", gh_alg_name(c.alg), r.gatehouse,
               r.openssl, r.gatehouse / r.openssl, range, 1e6 / r.gatehouse - 1e6 / r.openssl,
               c.token_len);
        fflush(stdout);
        header_len = c.header_len;
        payload_len = c.payload_len;
        clear_case(&c);
    }
    printf("# token: header JSON %zu B, payload JSON %zu B; JWK Set of %d keys, kid of the last\n"
           "# ratio = gatehouse/openssl medians; round ratios = min..max of the paired rounds;\n"
           "# added us/op = what gatehouse adds to one verification, in microseconds\n",
           header_len, payload_len, KEYS_PER_SET);
    return 0;
}
