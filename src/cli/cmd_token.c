// SPDX-License-Identifier: Apache-2.0
/*
 * `gatehouse token verify` and `gatehouse token decode` (SPEC §7): the JOSE core on the command
 * line, for operators checking what their IdP issues and for scripts: offline with `--key` or
 * `--jwks`, or against a live IdP with `--discovery-url`, through the same provider manager as the
 * gateway (discovery, issuer check, key set rules).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/base64url.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/json.h"
#include "jose/jwt.h"
#include "oidc/policy.h"
#include "oidc/provider.h"

#define KEY_FILE_MAX (1024 * 1024)
#define MAX_LIST     32

struct verify_opts {
    const char *jwks_path, *key_path, *discovery_url, *issuer, *token_arg;
    const char *audiences[MAX_LIST];
    size_t n_audiences;
    const char *types[MAX_LIST];
    size_t n_types;
    char *required_buf;
    const char *required[MAX_LIST];
    size_t n_required;
    unsigned algorithms;
    int64_t leeway, now;
    int allow_insecure_idp;
};

enum verify_flag {
    V_JWKS,
    V_KEY,
    V_DISCOVERY,
    V_ALG,
    V_ISSUER,
    V_AUDIENCE,
    V_TYP,
    V_REQUIRE,
    V_LEEWAY,
    V_NOW,
    V_INSECURE
};

static const struct gh_cli_flag verify_flags[] = {
    {"--jwks", NULL, "FILE", NULL, "a JWK Set ({\"keys\":[...]}) of public keys", V_JWKS},
    {"--key", NULL, "FILE", NULL,
     "one key: a PEM public key or certificate, or one JWK (an oct JWK for HMAC)", V_KEY},
    {"--discovery-url", NULL, "URL", NULL,
     "a live IdP's /.well-known/openid-configuration: its issuer and keys, as the gateway reads "
     "them; iss must be its issuer",
     V_DISCOVERY},
    {"--alg", NULL, "ALG", NULL,
     "an accepted algorithm; may repeat (default: every asymmetric one, RS*, PS*, ES*, EdDSA; "
     "HMAC, HS*, only when named)",
     V_ALG},
    {"--issuer", NULL, "ISS", NULL,
     "iss must equal ISS; with --discovery-url, instead of the IdP's issuer (as a profile's "
     "allowed_issuers: ADFS, Entra ID v1)",
     V_ISSUER},
    {"--audience", NULL, "AUD", NULL, "aud must contain one of the given audiences; may repeat",
     V_AUDIENCE},
    {"--typ", NULL, "TYP", NULL,
     "the header's typ must be one of these (e.g. at+jwt, case and application/ aside); may "
     "repeat (default: any typ)",
     V_TYP},
    {"--require", NULL, "CLAIMS", "exp", "comma list of claims that must be present ('' for none)",
     V_REQUIRE},
    {"--leeway", NULL, "SECONDS", "60", "clock skew allowed for exp, nbf, iat (at most 300)",
     V_LEEWAY},
    {"--now", NULL, "EPOCH", NULL, "check the times as of EPOCH instead of now", V_NOW},
    {"--allow-insecure-idp", NULL, NULL, NULL,
     "allow an http:// --discovery-url of a non-loopback IdP", V_INSECURE},
};

#define N_VERIFY_FLAGS (sizeof verify_flags / sizeof verify_flags[0])

const struct gh_cli_flag *gh_cli_token_verify_flags(size_t *n)
{
    *n = N_VERIFY_FLAGS;
    return verify_flags;
}

void gh_cli_token_help(FILE *out)
{
    fputs("usage: gatehouse token verify (--jwks FILE | --key FILE | --discovery-url URL)\n"
          "                              [--alg ALG]... [--issuer ISS] [--audience AUD]...\n"
          "                              [--typ TYP]... [--require CLAIMS] [--leeway SECONDS] "
          "[--now EPOCH]\n"
          "                              [TOKEN | -]\n"
          "       gatehouse token decode [TOKEN | -]\n"
          "\n"
          "verify checks one token by the rules of gatehouse (signature, alg, kid, times, issuer,\n"
          "audience, required claims), offline against a key or a JWK Set, or against a live IdP,\n"
          "and prints one JSON object:\n"
          "  {\"valid\":true,\"alg\":...,\"kid\":...,\"header\":{...},\"claims\":{...}}  exit 0\n"
          "  {\"valid\":false,\"error\":\"<reason>\",\"message\":\"...\"}             exit 1\n"
          "Bad usage or an unreadable file exits 2.\n"
          "\n",
          out);
    gh_cli_flags_help(verify_flags, N_VERIFY_FLAGS, out);
    fputs(
        "  TOKEN | -               the token, or - (or nothing) to read it from standard input\n"
        "\n"
        "decode prints the header and payload WITHOUT checking anything; never trust its output.\n",
        out);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("gatehouse token: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nrun `gatehouse help token` for usage\n", stderr);
    return GH_EXIT_USAGE;
}

static int parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits a comma list in place (`buf` is a copy the caller frees) into at most MAX_LIST names. */
static int split_list(char *buf, const char **items, size_t *n)
{
    *n = 0;
    if (*buf == '\0')
        return 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST)
            return -1;
        items[(*n)++] = tok;
    }
    return 0;
}

/* One flag's value into the options; GH_EXIT_OK or a usage error. */
static int set_verify_opt(struct verify_opts *o, int id, const char *v, const char **require,
                          unsigned *algs)
{
    unsigned one;
    int64_t n;

    switch ((enum verify_flag)id) {
    case V_JWKS:
        o->jwks_path = v;
        break;
    case V_KEY:
        o->key_path = v;
        break;
    case V_DISCOVERY:
        o->discovery_url = v;
        break;
    case V_ALG:
        if (gh_algs_parse(v, &one) != GH_OK)
            return usage_error("unsupported algorithm '%s' (RS256..512, PS256..512, ES256..512, "
                               "EdDSA, HS256..512)",
                               v);
        *algs |= one;
        break;
    case V_ISSUER:
        o->issuer = v;
        break;
    case V_AUDIENCE:
        if (o->n_audiences == MAX_LIST)
            return usage_error("too many --audience options (at most %d)", MAX_LIST);
        o->audiences[o->n_audiences++] = v;
        break;
    case V_TYP:
        if (o->n_types == MAX_LIST)
            return usage_error("too many --typ options (at most %d)", MAX_LIST);
        o->types[o->n_types++] = v;
        break;
    case V_REQUIRE:
        *require = v;
        break;
    case V_LEEWAY:
        if (parse_int(v, 0, GH_LEEWAY_MAX, &n) != 0)
            return usage_error("--leeway must be a whole number of seconds from 0 to 300, not '%s'",
                               v);
        o->leeway = n;
        break;
    case V_NOW:
        if (parse_int(v, 0, GH_TIME_MAX, &n) != 0)
            return usage_error("--now must be seconds since the epoch, not '%s'", v);
        o->now = n;
        break;
    case V_INSECURE:
        o->allow_insecure_idp = 1;
        break;
    }
    return GH_EXIT_OK;
}

/* GH_EXIT_OK, a usage error, or -1 after printing the help that was asked for. */
static int parse_verify_opts(int argc, char **argv, struct verify_opts *o)
{
    const char *require = "exp";
    unsigned algs = 0;
    int rc;

    o->leeway = 60;
    o->now = gh_clock_wall_seconds();
    for (int i = 1; i < argc; i++) {
        const struct gh_cli_flag *flag;
        const char *v;
        int m = gh_cli_flag_match(verify_flags, N_VERIFY_FLAGS, argc, argv, &i, &flag, &v);
        if (m < 0)
            return usage_error("option %s needs a value", argv[i]);
        if (m > 0 && (rc = set_verify_opt(o, flag->id, v, &require, &algs)) != GH_EXIT_OK)
            return rc;
        if (m > 0)
            continue;
        if (gh_cli_is_help(argv[i])) {
            gh_cli_token_help(stdout);
            return -1;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("unknown option '%s'", argv[i]);
        if (o->token_arg != NULL)
            return usage_error("more than one token given");
        o->token_arg = argv[i];
    }
    if (!!o->jwks_path + !!o->key_path + !!o->discovery_url != 1)
        return usage_error("give exactly one of --jwks FILE, --key FILE or --discovery-url URL%s",
                           "");
    o->algorithms = algs ? algs : GH_ALGS_ASYMMETRIC;
    o->required_buf = strdup(require);
    if (o->required_buf == NULL || split_list(o->required_buf, o->required, &o->n_required) != 0)
        return usage_error("--require lists too many claims (at most %d)", MAX_LIST);
    return GH_EXIT_OK;
}

/* Reads the token argument or standard input, trimming the line end a shell or file adds. */
static int read_token(const char *arg, char **token, size_t *len)
{
    int rc;
    if (arg != NULL && strcmp(arg, "-") != 0) {
        *token = strdup(arg);
        *len = strlen(arg);
        return *token != NULL ? 0 : -1;
    }
    rc = gh_cli_read_file("-", GH_TOKEN_MAX + 2, token, len);
    if (rc == -2) { /* keep it too large, so that verification names the reason */
        *token = malloc(GH_TOKEN_MAX + 1);
        if (*token == NULL)
            return -1;
        memset(*token, 'A', GH_TOKEN_MAX + 1);
        *len = GH_TOKEN_MAX + 1;
        return 0;
    }
    while (rc == 0 && *len > 0 && strchr(" \t\r\n", (*token)[*len - 1]) != NULL)
        (*token)[--*len] = '\0';
    return rc;
}

static int load_keys(const struct verify_opts *o, struct gh_jwks **keys)
{
    const char *path = o->jwks_path ? o->jwks_path : o->key_path;
    char *data;
    size_t len;
    int rc = gh_cli_read_file(path, KEY_FILE_MAX, &data, &len);

    if (rc == -2)
        return usage_error("key file '%s' is larger than 1 MiB", path);
    if (rc != 0) {
        fprintf(stderr, "gatehouse token: cannot read '%s': %s\n", path, strerror(errno));
        return GH_EXIT_USAGE;
    }
    rc = o->jwks_path ? gh_jwks_parse(data, len, 0, keys)
                      : gh_jwks_from_key(data, len, GH_JWK_ALLOW_SECRET, keys);
    free(data);
    if (rc != GH_OK) {
        fprintf(stderr, "gatehouse token: '%s' is not a usable %s: %s\n", path,
                o->jwks_path ? "JWK Set" : "key (PEM or JWK)", gh_error_message(rc));
        return GH_EXIT_USAGE;
    }
    return GH_EXIT_OK;
}

/* Fetches the IdP's discovery document and key set, as the gateway's provider manager does. */
static int fetch_provider_keys(const struct verify_opts *o, struct gh_oidc_manager **manager,
                               struct gh_keyset **keyset)
{
    struct gh_oidc_options options;
    struct gh_provider *provider;
    int rc;

    gh_oidc_options_default(&options);
    options.allow_insecure = o->allow_insecure_idp;
    /* stdout carries the verdict alone, and the CLI reports a failed fetch itself: only errors of
     * the provider thread are logged, on stderr */
    gh_log_set_output(stderr);
    gh_log_set_level("error");
    if ((rc = gh_oidc_manager_new(&options, manager)) != GH_OK ||
        (rc = gh_oidc_provider_get(*manager, GH_PROVIDER_DISCOVERY, o->discovery_url, &provider)) !=
            GH_OK) {
        fprintf(stderr, "gatehouse token: --discovery-url %s: %s\n", o->discovery_url,
                gh_error_message(rc));
        return GH_EXIT_USAGE;
    }
    rc = gh_provider_wait_ready(provider, 2 * options.fetch_timeout_ms + 1000);
    if (rc != GH_OK) {
        json_t *status = gh_provider_status(provider);
        const char *detail = json_string_value(json_object_get(status, "last_error"));
        fprintf(stderr, "gatehouse token: cannot load the IdP's keys: %s\n",
                detail != NULL ? detail : gh_error_message(rc));
        json_decref(status);
        return GH_EXIT_USAGE;
    }
    *keyset = gh_provider_keys(provider);
    return GH_EXIT_OK;
}

static void print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        puts(text);
        free(text);
    }
    json_decref(obj);
}

/* `key` (may be NULL) is the key at fault, whose size an operator needs when it is too small. */
static int print_refusal(int code, const char *claim, const struct gh_jwk *key,
                         const struct gh_jwt *jwt, const struct gh_jwt_policy *policy)
{
    char message[256];
    if (code == GH_ERR_TYP_NOT_ACCEPTED)
        gh_jwt_typ_explain(&jwt->jws, policy->types, policy->n_types, NULL, message,
                           sizeof message);
    else if (claim != NULL && (code == GH_ERR_MISSING_CLAIM || code == GH_ERR_CLAIM_TYPE))
        snprintf(message, sizeof message, "%s: %s", gh_error_message(code), claim);
    else if (key != NULL && key->kty == GH_KTY_RSA && key->bits > 0 &&
             (code == GH_ERR_RSA_TOO_SMALL || code == GH_ERR_RSA_TOO_LARGE))
        snprintf(message, sizeof message, "%s: this one has %d bits", gh_error_message(code),
                 key->bits);
    else
        snprintf(message, sizeof message, "%s", gh_error_message(code));
    print_json(json_pack("{s:b, s:s, s:s}", "valid", 0, "error", gh_error_reason(code), "message",
                         message));
    return GH_EXIT_FAIL;
}

static int token_verify(int argc, char **argv)
{
    struct verify_opts o = {0};
    struct gh_jwks *keys = NULL;
    struct gh_oidc_manager *manager = NULL;
    struct gh_keyset *keyset = NULL;
    const char *issuers[1];
    struct gh_jwt jwt;
    char *token = NULL;
    size_t len;
    const char *claim = NULL;
    const struct gh_jwk *key = NULL;
    int rc, exit_code;

    memset(&jwt, 0, sizeof jwt);
    if ((exit_code = parse_verify_opts(argc, argv, &o)) != GH_EXIT_OK) {
        if (exit_code < 0) /* the help was asked for and printed */
            exit_code = GH_EXIT_OK;
        goto out;
    }
    if (o.discovery_url != NULL)
        exit_code = fetch_provider_keys(&o, &manager, &keyset);
    else
        exit_code = load_keys(&o, &keys);
    if (exit_code != GH_EXIT_OK)
        goto out;
    if (read_token(o.token_arg, &token, &len) != 0) {
        fprintf(stderr, "gatehouse token: cannot read the token: %s\n", strerror(errno));
        exit_code = GH_EXIT_USAGE;
        goto out;
    }
    struct gh_jwt_policy policy = {
        .algorithms = o.algorithms,
        .keys = keyset != NULL ? keyset->jwks : keys,
        .rules = {.now = o.now,
                  .leeway = o.leeway,
                  .required = o.required,
                  .n_required = o.n_required,
                  .issuer = o.issuer,
                  .audiences = o.audiences,
                  .n_audiences = o.n_audiences},
        .types = o.types,
        .n_types = o.n_types,
    };
    if (keyset != NULL) { /* the rule of an oidc profile, --issuer as its allowed_issuers */
        issuers[0] = o.issuer;
        gh_oidc_issuer_rules(keyset->issuer, issuers, o.issuer != NULL, &policy.rules);
    }
    rc = gh_jwt_parse(token, len, &jwt);
    if (rc == GH_OK)
        rc = gh_jwt_verify(&jwt, &policy, &key, &claim);
    if (rc != GH_OK) {
        exit_code = print_refusal(rc, claim, key, &jwt, &policy);
        goto out;
    }
    /* a token without kid is valid too: kid is then null (json_pack's s% refuses NULL) */
    print_json(json_pack("{s:b, s:s, s:o, s:O, s:O}", "valid", 1, "alg", gh_alg_name(jwt.jws.alg),
                         "kid",
                         jwt.jws.kid ? json_stringn(jwt.jws.kid, jwt.jws.kid_len) : json_null(),
                         "header", jwt.jws.header, "claims", jwt.claims));
    exit_code = GH_EXIT_OK;
out:
    gh_jwt_clear(&jwt);
    gh_jwks_free(keys);
    gh_keyset_unref(keyset);
    gh_oidc_manager_free(manager);
    free(token);
    free(o.required_buf);
    return exit_code;
}

/* A segment as JSON when it is a JSON object, else as the base64url text it was sent as. */
static json_t *decode_segment(const char *seg, size_t len)
{
    unsigned char *buf = malloc(gh_b64url_decoded_max(len) + 1);
    size_t out_len;
    json_t *obj = NULL;

    if (buf != NULL && gh_b64url_decode(seg, len, buf, &out_len) == GH_OK &&
        gh_json_parse_object(buf, out_len, &obj) == GH_OK) {
        free(buf);
        return obj;
    }
    free(buf);
    return json_null();
}

static int token_decode(int argc, char **argv)
{
    char *token = NULL;
    size_t len;
    const char *dot1, *dot2;

    if (argc == 2 && gh_cli_is_help(argv[1])) {
        gh_cli_token_help(stdout);
        return GH_EXIT_OK;
    }
    if (argc > 2)
        return usage_error("decode takes one token (or - for standard input)");
    if (read_token(argc == 2 ? argv[1] : NULL, &token, &len) != 0) {
        fprintf(stderr, "gatehouse token: cannot read the token: %s\n", strerror(errno));
        return GH_EXIT_USAGE;
    }
    dot1 = len <= GH_TOKEN_MAX ? memchr(token, '.', len) : NULL;
    dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL) {
        free(token);
        fputs("gatehouse token: not a compact JWS (header.payload.signature, at most 16 KiB)\n",
              stderr);
        return GH_EXIT_FAIL;
    }
    fputs("warning: decoded WITHOUT verification; nothing here is trustworthy\n", stderr);
    print_json(json_pack("{s:b, s:o, s:o}", "verified", 0, "header",
                         decode_segment(token, (size_t)(dot1 - token)), "payload",
                         decode_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1))));
    free(token);
    return GH_EXIT_OK;
}

int gh_cli_token(int argc, char **argv)
{
    if (argc < 2) {
        gh_cli_token_help(stderr);
        return GH_EXIT_USAGE;
    }
    if (strcmp(argv[1], "verify") == 0)
        return token_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "decode") == 0)
        return token_decode(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || gh_cli_is_help(argv[1])) {
        gh_cli_token_help(stdout);
        return GH_EXIT_OK;
    }
    return usage_error("unknown token command '%s' (verify, decode)", argv[1]);
}
