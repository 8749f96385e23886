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
#include "common/error.h"
#include "common/log.h"
#include "common/json.h"
#include "jose/jwt.h"
#include "oidc/provider.h"

#define KEY_FILE_MAX (1024 * 1024)
#define MAX_LIST     32

struct verify_opts {
    const char *jwks_path, *key_path, *discovery_url, *issuer, *token_arg;
    const char *audiences[MAX_LIST];
    size_t n_audiences;
    char *required_buf;
    const char *required[MAX_LIST];
    size_t n_required;
    unsigned algorithms;
    int64_t leeway, now;
    int allow_insecure_idp;
};

void gh_cli_token_help(FILE *out)
{
    fputs(
        "usage: gatehouse token verify (--jwks FILE | --key FILE | --discovery-url URL)\n"
        "                              [--alg ALG]... [--issuer ISS] [--audience AUD]...\n"
        "                              [--require CLAIMS] [--leeway SECONDS] [--now EPOCH]\n"
        "                              [TOKEN | -]\n"
        "       gatehouse token decode [TOKEN | -]\n"
        "\n"
        "verify checks one token by the rules of gatehouse (signature, alg, kid, times, issuer,\n"
        "audience, required claims) and prints one JSON object:\n"
        "  {\"valid\":true,\"alg\":...,\"kid\":...,\"header\":{...},\"claims\":{...}}  exit 0\n"
        "  {\"valid\":false,\"error\":\"<reason>\",\"message\":\"...\"}             exit 1\n"
        "Bad usage or an unreadable file exits 2.\n"
        "\n"
        "  --jwks FILE         a JWK Set ({\"keys\":[...]}) of public keys\n"
        "  --key FILE          one key: a PEM public key or certificate, or one JWK (an oct JWK\n"
        "                      for HMAC)\n"
        "  --alg ALG           an accepted algorithm; may repeat. Default: every asymmetric one\n"
        "                      (RS*, PS*, ES*, EdDSA); HMAC (HS*) only when named\n"
        "  --issuer ISS        iss must equal ISS\n"
        "  --audience AUD      aud must contain one of the given audiences; may repeat\n"
        "  --require CLAIMS    comma list of claims that must be present (default exp, '' for "
        "none)\n"
        "  --leeway SECONDS    clock skew allowed for exp, nbf, iat (default 60, at most 300)\n"
        "  --now EPOCH         check the times as of EPOCH instead of now\n"
        "  TOKEN | -           the token, or - (or nothing) to read it from standard input\n"
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

/* Value of option `name` at argv[*i], as "--name VALUE" or "--name=VALUE"; NULL when not it. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int parse_verify_opts(int argc, char **argv, struct verify_opts *o)
{
    const char *require = "exp";
    unsigned algs = 0;

    o->leeway = 60;
    o->now = (int64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        int64_t n;
        if ((v = option_value(argc, argv, &i, "--jwks", &missing)) != NULL) {
            o->jwks_path = v;
        } else if ((v = option_value(argc, argv, &i, "--key", &missing)) != NULL) {
            o->key_path = v;
        } else if ((v = option_value(argc, argv, &i, "--discovery-url", &missing)) != NULL) {
            o->discovery_url = v;
        } else if ((v = option_value(argc, argv, &i, "--alg", &missing)) != NULL) {
            unsigned one;
            if (gh_algs_parse(v, &one) != GH_OK)
                return usage_error(
                    "unsupported algorithm '%s' (RS256..512, PS256..512, ES256..512, "
                    "EdDSA, HS256..512)",
                    v);
            algs |= one;
        } else if ((v = option_value(argc, argv, &i, "--issuer", &missing)) != NULL) {
            o->issuer = v;
        } else if ((v = option_value(argc, argv, &i, "--audience", &missing)) != NULL) {
            if (o->n_audiences == MAX_LIST)
                return usage_error("too many --audience options (at most %d)", MAX_LIST);
            o->audiences[o->n_audiences++] = v;
        } else if ((v = option_value(argc, argv, &i, "--require", &missing)) != NULL) {
            require = v;
        } else if ((v = option_value(argc, argv, &i, "--leeway", &missing)) != NULL) {
            if (parse_int(v, 0, GH_LEEWAY_MAX, &n) != 0)
                return usage_error(
                    "--leeway must be a whole number of seconds from 0 to 300, not '%s'", v);
            o->leeway = n;
        } else if ((v = option_value(argc, argv, &i, "--now", &missing)) != NULL) {
            if (parse_int(v, 0, GH_TIME_MAX, &n) != 0)
                return usage_error("--now must be seconds since the epoch, not '%s'", v);
            o->now = n;
        } else if (strcmp(argv[i], "--allow-insecure-idp") == 0) {
            o->allow_insecure_idp = 1;
        } else if (missing) {
            return usage_error("option %s needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return usage_error("unknown option '%s'", argv[i]);
        } else if (o->token_arg != NULL) {
            return usage_error("more than one token given");
        } else {
            o->token_arg = argv[i];
        }
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

static int print_refusal(int code, const char *claim)
{
    char message[256];
    if (claim != NULL && (code == GH_ERR_MISSING_CLAIM || code == GH_ERR_CLAIM_TYPE))
        snprintf(message, sizeof message, "%s: %s", gh_error_message(code), claim);
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
    int rc, exit_code;

    memset(&jwt, 0, sizeof jwt);
    if ((exit_code = parse_verify_opts(argc, argv, &o)) != GH_EXIT_OK)
        goto out;
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
    };
    if (keyset != NULL) { /* the IdP's issuer is the one to match; --issuer must agree with it */
        policy.rules.issuer = keyset->issuer;
        if (o.issuer != NULL) {
            issuers[0] = o.issuer;
            policy.rules.allowed_issuers = issuers;
            policy.rules.n_allowed_issuers = 1;
        }
    }
    rc = gh_jwt_parse(token, len, &jwt);
    if (rc == GH_OK)
        rc = gh_jwt_verify(&jwt, &policy, NULL, &claim);
    if (rc != GH_OK) {
        exit_code = print_refusal(rc, claim);
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
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        gh_cli_token_help(stdout);
        return GH_EXIT_OK;
    }
    return usage_error("unknown token command '%s' (verify, decode)", argv[1]);
}
