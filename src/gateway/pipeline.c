// SPDX-License-Identifier: Apache-2.0
/*
 * The decision for one request, in the order of SPEC §5's table: route (404/405), credential (401),
 * profile binding and verification (401 invalid_token with a reason), authorization (403). Nothing
 * is trusted from a token before its signature verified, except the one key lookup of SPEC §2 that
 * says whose keys verify it. A token whose very bytes verified before, against what is still the
 * current configuration and key set, skips parsing and verification through the calling thread's
 * verified-token cache; routing and authorization run on every request all the same.
 */
#include "gateway/pipeline.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64url.h"
#include "common/error.h"
#include "common/json.h"
#include "jose/jwt.h"
#include "oidc/policy.h"

static void step(struct gh_decision *d, int record, const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void step(struct gh_decision *d, int record, const char *name, int ok, const char *fmt, ...)
{
    va_list ap;
    if (!record || d->n_steps == GH_MAX_STEPS)
        return;
    struct gh_step *s = &d->steps[d->n_steps++];
    s->name = name;
    s->ok = ok;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
}

static void deny(struct gh_decision *d, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void deny(struct gh_decision *d, int status, const char *error, const char *fmt, ...)
{
    va_list ap;
    d->outcome = GH_OUTCOME_DENY;
    d->status = status;
    d->error = error;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
}

static void refuse_token(struct gh_decision *d, int reason, const char *claim)
{
    d->reason = reason;
    d->token_sent = 1;
    if (claim != NULL && (reason == GH_ERR_MISSING_CLAIM || reason == GH_ERR_CLAIM_TYPE))
        deny(d, 401, "invalid_token", "The token was refused: %s (%s).", gh_error_message(reason),
             claim);
    else
        deny(d, 401, "invalid_token", "The token was refused: %s.", gh_error_message(reason));
}

/* ---- route ---- */

/* Encoded slashes, backslashes and dots could be decoded by an upstream into another path than the
 * one we routed: refuse them rather than guess how the upstream reads them. */
static int path_has_encoded_separator(const char *path, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (path[i] == '%' && ((path[i + 1] == '2' && strchr("fFeE", path[i + 2]) && path[i + 2]) ||
                               (path[i + 1] == '5' && (path[i + 2] == 'c' || path[i + 2] == 'C'))))
            return 1;
    }
    return memchr(path, '\\', len) != NULL;
}

/* A segment ends at '/', and its parameters start at ';' (or at an encoded one, for upstreams
 * that decode the path before they split it). */
static int segment_ends(const char *p, size_t left)
{
    return left == 0 || p[0] == '/' || p[0] == ';' ||
           (left >= 3 && p[0] == '%' && p[1] == '3' && (p[2] == 'b' || p[2] == 'B'));
}

/* A "." or ".." segment, also once its ";parameters" are removed: servlet containers (Tomcat,
 * Spring) drop them before they resolve dot segments, so "/a/..;/b" or "/a/..;jsessionid=1/b"
 * climbs out of /a there (issue 11: a profile read another collection that way). */
static int path_has_dot_segment(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (path[i] != '/')
            continue;
        size_t dots = 0;
        while (i + 1 + dots < len && path[i + 1 + dots] == '.' && dots < 3)
            dots++;
        if ((dots == 1 || dots == 2) && segment_ends(path + i + 1 + dots, len - i - 1 - dots))
            return 1;
    }
    return 0;
}

/*
 * Why the request target is refused before routing (400), or NULL. Each is a spelling that an
 * upstream could read as another path than the one routed, so none is guessed at. A '#' is never
 * sent by a client that means it (a fragment stays in the client), and Node/Express upstreams cut
 * the path there: "/reports/all#/summary" would pass an endpoint /reports/:id/summary and be
 * served as /reports/all. It is refused in the query as well, where upstreams cut the target too.
 */
static const char *target_refusal(const struct gh_request_view *req)
{
    if ((req->path_len > 0 && memchr(req->path, '#', req->path_len) != NULL) ||
        (req->query_len > 0 && memchr(req->query, '#', req->query_len) != NULL))
        return "The request target holds a '#', which an upstream could cut the path at.";
    if (path_has_dot_segment(req->path, req->path_len))
        return "The request path has a '.' or '..' segment (also with ;parameters), which an "
               "upstream would read as another path.";
    if (path_has_encoded_separator(req->path, req->path_len))
        return "The request path has an encoded '/', '\\' or '.' (%2F, %5C, %2E) or a "
               "backslash, which an upstream could read as another path.";
    return NULL;
}

static int method_is(const char *method, const struct gh_request_view *req)
{
    return strlen(method) == req->method_len && memcmp(method, req->method, req->method_len) == 0;
}

/* The methods an endpoint can name (SPEC §1), in the order an Allow header lists them. */
static const char *const allow_order[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};

/*
 * ANY means these seven only (issue 11): CONNECT, TRACE and extension methods (PROPFIND, PURGE,
 * ...) could make an upstream do what no endpoint names (TRACE echoes the forwarded headers,
 * credentials included). Any other method gets 405 where a path matches, not 501: RFC 9110
 * §9.1 asks 501 of a server that recognises no such method at all, but the gateway answers for the
 * one path (404 where none matches, as for every method), an upstream may well know the method,
 * and a 405's Allow tells the client what this path takes. It also keeps SPEC §5's table whole.
 */
static int method_is_endpoint_method(const struct gh_request_view *req)
{
    for (size_t m = 0; m < sizeof allow_order / sizeof allow_order[0]; m++)
        if (method_is(allow_order[m], req))
            return 1;
    return 0;
}

/* RFC 9110 §15.5.6: a 405 carries Allow. An ANY endpoint lists all seven methods; HEAD is listed
 * only when an endpoint names it, as a HEAD request is routed to HEAD and ANY endpoints only,
 * never to GET ones. */
static void allow_list(const struct gh_config_collection *col, const char *rest, size_t rest_len,
                       char *out, size_t cap)
{
    unsigned mask = 0;
    size_t n, o = 0;

    for (size_t i = 0; i < col->n_endpoints; i++) {
        const struct gh_config_endpoint *ep = &col->endpoints[i];
        if (!ep->active || !gh_path_match(ep->path, rest, rest_len, NULL, 0, &n))
            continue;
        for (size_t m = 0; m < sizeof allow_order / sizeof allow_order[0]; m++)
            if (strcmp(ep->method, "ANY") == 0 || strcmp(ep->method, allow_order[m]) == 0)
                mask |= 1u << m;
    }
    out[0] = '\0';
    for (size_t m = 0; m < sizeof allow_order / sizeof allow_order[0]; m++)
        if (mask & (1u << m))
            o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? ", " : "",
                                  allow_order[m]);
}

static int route(const struct gh_config *config, const struct gh_request_view *req,
                 struct gh_decision *d)
{
    const struct gh_config_collection *col;
    const char *rest, *refusal = target_refusal(req);
    int path_matched = 0, known = method_is_endpoint_method(req);

    if (refusal != NULL) {
        deny(d, 400, "bad_request", "%s", refusal);
        step(d, req->explain, "route", 0, "%s", refusal);
        return 0;
    }
    if (req->path_len == 0 || req->path[0] != '/') {
        deny(d, 404, "not_found", "No API matches this path.");
        step(d, req->explain, "route", 0, "the path is not an absolute path");
        return 0;
    }
    col = gh_config_find_collection(config, req->path, req->path_len, &rest);
    if (col == NULL || !col->active) {
        deny(d, 404, "not_found", "No API matches this path.");
        step(d, req->explain, "route", 0,
             col == NULL ? "no collection path is a prefix of the path"
                         : "collection %s is not active",
             col ? col->id : "");
        return 0;
    }
    d->collection = col;
    d->rest = rest;
    d->rest_len = req->path_len - (size_t)(rest - req->path);
    /* an exact method wins over ANY */
    for (int pass = 0; pass < 2 && d->endpoint == NULL; pass++) {
        for (size_t i = 0; i < col->n_endpoints; i++) {
            const struct gh_config_endpoint *ep = &col->endpoints[i];
            size_t n;
            if (!ep->active || !gh_path_match(ep->path, d->rest_len ? d->rest : "/",
                                              d->rest_len ? d->rest_len : 1, NULL, 0, &n))
                continue;
            path_matched = 1;
            if (known &&
                (pass == 0 ? method_is(ep->method, req) : strcmp(ep->method, "ANY") == 0)) {
                d->endpoint = ep;
                break;
            }
        }
    }
    if (d->endpoint == NULL) {
        if (path_matched) {
            deny(d, 405, "method_not_allowed",
                 "This API does not accept this method on this path.");
            allow_list(col, d->rest_len ? d->rest : "/", d->rest_len ? d->rest_len : 1, d->allow,
                       sizeof d->allow);
        } else
            deny(d, 404, "not_found", "No API matches this path.");
        step(d, req->explain, "route", 0, "collection %s has no active endpoint for %s %.*s%s%s",
             col->id, path_matched ? "this method on" : "any method on",
             (int)(d->rest_len > 100 ? 100 : d->rest_len), d->rest,
             path_matched ? "; it takes " : "", d->allow);
        return 0;
    }
    step(d, req->explain, "route", 1, "collection %s, endpoint %s (%s %s)", col->id,
         d->endpoint->id, d->endpoint->method, d->endpoint->path);
    return 1;
}

/* The time to judge a key set's staleness by: the provider manager's millisecond clock, which
 * /readyz uses too (so both flip at the same moment), or the caller's `now` when that is later. */
static int64_t usable_clock_ms(const struct gh_provider *provider, int64_t now)
{
    int64_t ms = provider != NULL ? gh_provider_now_ms(provider) : 0;
    return ms > now * 1000 ? ms : now * 1000;
}

/* ---- credentials ---- */

enum credential { CRED_NONE, CRED_KEY, CRED_JWT };

/* Basic auth with user api-token: the key, decoded into `out` (cap bytes). */
static int basic_api_token(const char *b64, size_t len, char *out, size_t cap, size_t *out_len)
{
    unsigned char decoded[512];
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof decoded)
        return 0;
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return 0;
    while (len > 0 && b64[len - 1] == '=') { /* DecodeBlock counts padding as zero bytes */
        len--;
        n--;
    }
    if (n < 11 || memcmp(decoded, "api-token:", 10) != 0 || (size_t)n - 10 >= cap)
        return 0;
    memcpy(out, decoded + 10, (size_t)n - 10);
    *out_len = (size_t)n - 10;
    out[*out_len] = '\0';
    return memchr(out, '\0', *out_len) == NULL;
}

static enum credential find_credential(const struct gh_request_view *req, const char **value,
                                       size_t *len, char *basic_buf, size_t cap)
{
    const char *auth = req->authorization;
    size_t alen = req->authorization_len;

    /* the api-token header wins: Authorization may then be the upstream's own credential */
    if (req->api_token != NULL && req->api_token_len > 0) {
        *value = req->api_token;
        *len = req->api_token_len;
        return CRED_KEY;
    }
    if (auth == NULL)
        return CRED_NONE;
    if (alen > 6 && strncasecmp(auth, "Basic ", 6) == 0) {
        if (basic_api_token(auth + 6, alen - 6, basic_buf, cap, len)) {
            *value = basic_buf;
            return CRED_KEY;
        }
        return CRED_NONE;
    }
    if (alen > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
        *value = auth + 7;
        *len = alen - 7;
        while (*len > 0 && (*value)[0] == ' ') {
            (*value)++;
            (*len)--;
        }
        return *len > 0 ? CRED_JWT : CRED_NONE;
    }
    return CRED_NONE;
}

static int token_auth(const struct gh_config *config, const struct gh_request_view *req,
                      const char *key, size_t len, int64_t now, struct gh_decision *d)
{
    const struct gh_config_profile *p = gh_config_find_key(config, key, len, now);
    /* the key of an oidc or jwt profile travels inside IdP tokens: it is no credential on its own
     */
    if (p == NULL || p->auth_type != GH_AUTH_TOKEN) {
        refuse_token(d, GH_ERR_UNKNOWN_PROFILE_KEY, NULL);
        step(d, req->explain, "profile", 0,
             "the access profile key is not the key of an active token profile");
        return 0;
    }
    d->profile = p;
    step(d, req->explain, "profile", 1, "access profile %s (token)", p->id);
    return 1;
}

/* What bound a JWT to its profile: the claim and the access profile key it carried. */
struct binding {
    const struct gh_config_profile *profile;
    const char *via;
    const char *key; /* a slice of the token's claims */
    size_t key_len;
};

/* SPEC §2: which profile a JWT is for; 0 when none. */
static int bind_profile(const struct gh_gateway_settings *settings, const struct gh_config *config,
                        const struct gh_jwt *jwt, int64_t now, struct binding *b)
{
    const char *value;
    size_t len, index;

    for (size_t i = 0; i < config->n_key_claims; i++) {
        if (gh_json_string_member(jwt->claims, config->key_claims[i], &value, &len) != GH_OK)
            continue;
        const struct gh_config_profile *p = gh_config_find_key(config, value, len, now);
        if (p != NULL && p->auth_type != GH_AUTH_TOKEN && p->key_claim != NULL &&
            strcmp(p->key_claim, config->key_claims[i]) == 0) {
            *b = (struct binding){p, config->key_claims[i], value, len};
            return 1;
        }
    }
    if (gh_key_claims_find(&settings->default_claims, jwt->jws.header, jwt->claims, &value, &len,
                           &index) != GH_OK)
        return 0;
    const struct gh_config_profile *p = gh_config_find_key(config, value, len, now);
    if (p == NULL || p->auth_type == GH_AUTH_TOKEN || p->key_claim != NULL)
        return 0;
    *b = (struct binding){p, settings->default_claims.items[index].name, value, len};
    return 1;
}

static void keep_identity(const struct gh_jwt *jwt, struct gh_decision *d)
{
    const char *sub;
    size_t len;
    /* the token's own payload segment: our base64url reader accepts only the canonical encoding
     * of a payload, so the segment is exactly what encoding the payload again would give */
    const char *dot = memchr(jwt->jws.signing_input, '.', jwt->jws.signing_input_len);
    const char *end = jwt->jws.signing_input + jwt->jws.signing_input_len;
    d->claims_b64 = dot != NULL ? strndup(dot + 1, (size_t)(end - dot - 1))
                                : gh_b64url_encode_alloc(jwt->jws.payload, jwt->jws.payload_len);
    if (gh_json_string_member(jwt->claims, "sub", &sub, &len) == GH_OK)
        d->subject = strndup(sub, len > 256 ? 256 : len);
}

/* RFC 9068 §4: a token of another type than the profile takes (an ID token signed with the same
 * key as the access tokens) is refused with the header's reason, and the answer says which type
 * came and which are taken: an operator's first question. */
static void refuse_type(struct gh_decision *d, const struct gh_config_profile *p,
                        const struct gh_jwt *jwt, int record)
{
    char why[160];

    gh_jwt_typ_explain(&jwt->jws, p->token_types, p->n_token_types, "this profile", why,
                       sizeof why);
    refuse_token(d, GH_ERR_TYP_NOT_ACCEPTED, NULL);
    deny(d, 401, "invalid_token", "The token was refused: %s.", why);
    step(d, record, "claims", 0, "%s: %s", gh_error_reason(GH_ERR_TYP_NOT_ACCEPTED), why);
}

/* An unknown kid: the caller parks the request and asks the provider (which decides whether a
 * refetch happens: SPEC §4). Takes the reference `ks`. */
static int ask_refetch(const struct gh_config_profile *p, const struct gh_jwt *jwt,
                       struct gh_keyset *ks, struct gh_decision *d)
{
    d->outcome = GH_OUTCOME_REFETCH;
    d->provider = p->provider;
    d->keyset = ks; /* the caller waits for a set newer than this one */
    if (jwt->jws.kid != NULL && (d->kid = malloc(jwt->jws.kid_len + 1)) != NULL) {
        memcpy(d->kid, jwt->jws.kid, jwt->jws.kid_len);
        d->kid[jwt->jws.kid_len] = '\0';
        d->kid_len = jwt->jws.kid_len;
    }
    return 0;
}

/*
 * explain's step for an unknown kid says what the provider would do now, and never claims a
 * refetch that would not happen: 1 when the gateway would refetch (or wait for one, or look
 * again), else the token is refused here.
 */
static int explain_unknown_kid(const struct gh_config_profile *p, const struct gh_jwt *jwt,
                               const struct gh_keyset *ks, struct gh_decision *d)
{
    static const char *const words[] = {
        [GH_KID_REFETCH] = ("not in the identity provider's keys: the gateway would refetch them "
                            "(allowed now) and decide again"),
        [GH_KID_JOIN] = ("not in the identity provider's keys: a refetch is under way, the gateway "
                         "would wait for it and decide again"),
        [GH_KID_NEWER_KEYS] = ("the identity provider's keys changed meanwhile: the gateway would "
                               "look again"),
        [GH_KID_REMEMBERED] = ("still unknown after a recent refetch, so remembered as unknown and "
                               "refused without fetching"),
        [GH_KID_TOO_SOON] =
            ("the keys were refetched moments ago: refused without fetching (a "
             "never-seen kid may refetch a few seconds after the previous refetch)"),
        [GH_KID_BUDGET_SPENT] =
            ("this identity provider's refetch budget is spent: refused without "
             "fetching"),
        [GH_KID_NO_FETCH] = "the identity provider's keys cannot be fetched",
    };
    enum gh_kid_verdict v =
        gh_provider_kid_outlook(p->provider, ks, jwt->jws.kid, jwt->jws.kid_len);
    int refetch = v == GH_KID_REFETCH || v == GH_KID_JOIN || v == GH_KID_NEWER_KEYS;

    step(d, 1, "signature", 0, "unknown kid: %s", words[v]);
    if (!refetch)
        refuse_token(d, GH_ERR_UNKNOWN_KID, NULL);
    return refetch;
}

/* On success *key_generation is the generation of the provider's key set that verified (0 for
 * static keys), for the verified-token cache. */
static int verify_jwt(const struct gh_config_profile *p, const struct gh_jwt *jwt,
                      const struct gh_request_view *req, int64_t now, int after_refetch,
                      uint64_t *key_generation, struct gh_decision *d)
{
    struct gh_keyset *ks = NULL;
    const char *claim = NULL;
    struct gh_jwt_policy policy = {
        .algorithms = p->algorithms,
        .keys = p->static_keys,
        .rules = {.now = now,
                  .leeway = p->leeway_seconds,
                  .required = p->required_claims,
                  .n_required = p->n_required_claims,
                  .allowed_issuers = p->allowed_issuers,
                  .n_allowed_issuers = p->n_allowed_issuers,
                  .audiences = p->audiences,
                  .n_audiences = p->n_audiences},
        .types = p->token_types,
        .n_types = p->n_token_types,
    };
    if (p->auth_type == GH_AUTH_OIDC) {
        ks = p->provider != NULL ? gh_provider_keys(p->provider) : NULL;
        if (ks == NULL ||
            gh_provider_usable(p->provider, ks, usable_clock_ms(p->provider, now)) != GH_OK) {
            gh_keyset_unref(ks);
            refuse_token(d, GH_ERR_KEYS_UNAVAILABLE, NULL);
            step(d, req->explain, "signature", 0, "the identity provider's keys are unavailable");
            return 0;
        }
        policy.keys = ks->jwks;
        gh_oidc_issuer_rules(ks->issuer, p->allowed_issuers, p->n_allowed_issuers, &policy.rules);
        *key_generation = ks->generation;
    } else if (policy.keys == NULL) {
        refuse_token(d, GH_ERR_KEYS_UNAVAILABLE, NULL);
        return 0;
    }
    int rc = gh_jwt_verify(jwt, &policy, NULL, &claim);
    if (rc == GH_ERR_UNKNOWN_KID && ks != NULL && !after_refetch) {
        if (!req->explain || explain_unknown_kid(p, jwt, ks, d))
            return ask_refetch(p, jwt, ks, d);
        gh_keyset_unref(ks);
        return 0;
    }
    gh_keyset_unref(ks);
    if (rc == GH_ERR_TYP_NOT_ACCEPTED) {
        refuse_type(d, p, jwt, req->explain);
        return 0;
    }
    if (rc != GH_OK) {
        refuse_token(d, rc, claim);
        step(d, req->explain,
             rc >= GH_ERR_EXPIRED && rc <= GH_ERR_WRONG_AUDIENCE ? "claims" : "signature", 0,
             "%s%s%s", gh_error_reason(rc), claim ? ": " : "", claim ? claim : "");
        return 0;
    }
    step(d, req->explain, "signature", 1, "%s signature and claims verified",
         gh_alg_name(jwt->jws.alg));
    keep_identity(jwt, d);
    return 1;
}

/* ---- the verified-token cache ---- */

/* For oidc profiles: the provider still publishes the key set that verified, and may serve it. */
static int keys_unchanged(const struct gh_config_profile *p, const struct gh_token_record *r,
                          int64_t now)
{
    struct gh_keyset *ks;
    int same;

    if (p->auth_type != GH_AUTH_OIDC)
        return r->key_generation == 0; /* static keys belong to the snapshot, compared already */
    ks = p->provider != NULL ? gh_provider_keys(p->provider) : NULL;
    same = ks != NULL && ks->generation == r->key_generation &&
           gh_provider_usable(p->provider, ks, usable_clock_ms(p->provider, now)) == GH_OK;
    gh_keyset_unref(ks);
    return same;
}

/*
 * A cached verification stands for parsing, binding and verifying only while everything they read
 * is unchanged: the settings, the snapshot (its address and its generation, as a freed snapshot's
 * address may be reused), the profile's provider and its key set generation, which must still be
 * usable. Anything else is a miss and the record goes, so the full path decides (and refuses)
 * exactly as it would without a cache. The cache's own clock check covers exp and leeway.
 */
static int from_cache(const struct gh_gateway_settings *settings, const struct gh_config *config,
                      const struct gh_request_view *req, const unsigned char *hash, int64_t now,
                      struct gh_decision *d)
{
    const struct gh_token_record *r = gh_token_cache_find(req->cache, hash, now);
    const struct gh_config_profile *p = NULL;

    if (r == NULL)
        return 0;
    if (r->settings == settings && r->config == config &&
        r->config_generation == config->generation && r->profile_index < config->n_profiles)
        p = &config->profiles[r->profile_index];
    if (p == NULL || p->provider != r->provider || !keys_unchanged(p, r, now) ||
        (d->claims_b64 = strdup(r->claims_b64)) == NULL ||
        (r->subject != NULL && (d->subject = strdup(r->subject)) == NULL)) {
        free(d->claims_b64);
        d->claims_b64 = NULL;
        gh_token_cache_forget(req->cache, hash);
        return 0;
    }
    d->profile = p;
    d->cache_hit = 1;
    step(d, req->explain, "credential", 1, "a JWT seen before");
    step(d, req->explain, "profile", 1, "access profile %s (%s), bound earlier (cache)", p->id,
         p->auth_type == GH_AUTH_OIDC ? "oidc" : "jwt");
    step(d, req->explain, "signature", 1, "verified earlier (cache)");
    return 1;
}

/* The exp claim as the claim checks read it: whole seconds, a fraction counting down. Only read
 * after verification, which refused any exp that is not a sane number. */
static int token_exp(const json_t *claims, int64_t *exp)
{
    const json_t *member = json_object_get(claims, "exp");

    if (json_is_integer(member))
        *exp = (int64_t)json_integer_value(member);
    else if (json_is_real(member))
        *exp = (int64_t)floor(json_real_value(member));
    else
        return 0;
    return 1;
}

/*
 * Keeps a verification that just succeeded. `r` comes with what the caller knows (settings,
 * snapshot, time, key generation); the rest is filled here. The record lives until exp plus the
 * profile's leeway, capped by the cache's TTL. The binding of SPEC §2 depends on time only through
 * the profile key's expiry (a key never becomes valid later), so a token whose key stops being
 * valid within that life (a key rotation's grace period) is not cached at all.
 */
static void remember(struct gh_token_cache *cache, const unsigned char *hash,
                     struct gh_token_record *r, const struct binding *b, const struct gh_jwt *jwt,
                     const struct gh_decision *d)
{
    const struct gh_config_profile *p = b->profile;
    int64_t exp;

    if (d->claims_b64 == NULL)
        return; /* they could not be kept (no memory): nothing to replay */
    r->profile_index = (size_t)(p - r->config->profiles);
    r->provider = p->provider;
    r->until = r->checked_at + GH_TOKEN_CACHE_TTL;
    if (token_exp(jwt->claims, &exp) && exp + p->leeway_seconds < r->until)
        r->until = exp + p->leeway_seconds;
    r->claims_b64 = d->claims_b64;
    r->subject = d->subject;
    if (r->until > r->checked_at &&
        gh_config_find_key(r->config, b->key, b->key_len, r->until - 1) == p)
        gh_token_cache_insert(cache, hash, r);
}

/* "an" before a name read with a vowel sound first: an ES256 ("ee"), an RS256 ("ar"), an HS256
 * ("aitch"), an EdDSA; a PS256 ("pee"). Letters are read by their names here. */
static const char *article(const char *name)
{
    return name[0] != '\0' && strchr("AEFHILMNORSX", name[0]) != NULL ? "an" : "a";
}

static int jwt_auth(const struct gh_gateway_settings *settings, const struct gh_config *config,
                    const struct gh_request_view *req, const char *token, size_t len, int64_t now,
                    int after_refetch, struct gh_decision *d)
{
    unsigned char hash[GH_TOKEN_HASH_LEN];
    struct gh_token_record rec = {.settings = settings,
                                  .config = config,
                                  .config_generation = config->generation,
                                  .checked_at = now};
    struct binding b;
    struct gh_jwt jwt;
    /* an oversized token is refused by the parser: no point hashing it */
    int cacheable = req->cache != NULL && len <= GH_TOKEN_MAX &&
                    gh_token_cache_hash(req->cache, token, len, hash) == GH_OK;

    if (cacheable && from_cache(settings, config, req, hash, now, d))
        return 1;
    int rc = gh_jwt_parse(token, len, &jwt), ok = 0;
    if (rc != GH_OK) {
        refuse_token(d, rc, NULL);
        step(d, req->explain, "credential", 0, "the bearer token is not an acceptable JWT: %s",
             gh_error_reason(rc));
        return 0;
    }
    step(d, req->explain, "credential", 1, "%s %s JWT", article(gh_alg_name(jwt.jws.alg)),
         gh_alg_name(jwt.jws.alg));
    if (!bind_profile(settings, config, &jwt, now, &b)) {
        refuse_token(d, GH_ERR_UNKNOWN_PROFILE_KEY, NULL);
        step(d, req->explain, "profile", 0,
             "no access profile key in the token's claims matches an active profile");
    } else {
        d->profile = b.profile;
        step(d, req->explain, "profile", 1, "access profile %s (%s), key from claim %s",
             b.profile->id, b.profile->auth_type == GH_AUTH_OIDC ? "oidc" : "jwt", b.via);
        ok = verify_jwt(b.profile, &jwt, req, now, after_refetch, &rec.key_generation, d);
        if (ok && cacheable)
            remember(req->cache, hash, &rec, &b, &jwt, d);
    }
    gh_jwt_clear(&jwt);
    return ok;
}

/* ---- authorization ---- */

static int in_any(const struct gh_cidr *list, size_t n, const struct gh_request_view *req)
{
    for (size_t i = 0; i < n; i++) {
        if (gh_cidr_contains(&list[i], req->family, req->addr))
            return 1;
    }
    return 0;
}

static int authorize(const struct gh_request_view *req, struct gh_decision *d)
{
    const struct gh_config_profile *p = d->profile;
    const char *why = !p->active          ? "the access profile is not active"
                      : !p->client_active ? "the API client is not active"
                      : !gh_config_grants(p, d->collection)
                          ? "the access profile does not grant this API"
                      : in_any(p->ip_deny, p->n_ip_deny, req) ? "the client address is denied"
                      : p->n_ip_allow > 0 && !in_any(p->ip_allow, p->n_ip_allow, req)
                          ? "the client address is not allowed"
                          : NULL;
    if (why != NULL) {
        deny(d, 403, "forbidden", "Forbidden: %s.", why);
        step(d, req->explain, "authorize", 0, "%s", why);
        return 0;
    }
    step(d, req->explain, "authorize", 1, "profile %s of client %s may call collection %s", p->id,
         p->client_id, d->collection->id);
    return 1;
}

void gh_gateway_decide(const struct gh_gateway_settings *settings, const struct gh_config *config,
                       const struct gh_request_view *req, int64_t now, int after_refetch,
                       struct gh_decision *d)
{
    char basic[300];
    const char *cred = NULL;
    size_t cred_len = 0;

    memset(d, 0, sizeof *d);
    if (!route(config, req, d))
        return;
    enum credential kind = find_credential(req, &cred, &cred_len, basic, sizeof basic);
    if (kind == CRED_NONE) {
        deny(d, 401, "unauthorized",
             "A credential is required: a Bearer token, an api-token header, or Basic auth with "
             "user api-token.");
        step(d, req->explain, "credential", 0, "no credential was sent");
        return;
    }
    if (kind == CRED_KEY) {
        step(d, req->explain, "credential", 1, "an access profile key");
        if (!token_auth(config, req, cred, cred_len, now, d))
            return;
    } else if (!jwt_auth(settings, config, req, cred, cred_len, now, after_refetch, d)) {
        return;
    }
    if (!authorize(req, d))
        return;
    d->outcome = GH_OUTCOME_ALLOW;
    d->status = 200;
    /* only a verified Bearer JWT may go on: never a Basic-encoded key, nor an Authorization sent
     * beside an api-token (the proxy drops it then) */
    d->authorization_verified = kind == CRED_JWT;
}

void gh_decision_clear(struct gh_decision *d)
{
    free(d->claims_b64);
    free(d->subject);
    free(d->kid);
    gh_keyset_unref(d->keyset);
    d->claims_b64 = d->subject = d->kid = NULL;
    d->keyset = NULL;
}
