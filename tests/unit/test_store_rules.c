// SPDX-License-Identifier: Apache-2.0
/*
 * Every refusal of the configuration store, through its public interface (store.h): each error
 * class of SPEC §6 with its status, code and field (400 wrong JSON types, 404 unknown objects, 409
 * duplicates, overlapping collection paths and deletes of what is still used, 422 rule violations,
 * read-only fields and references to nothing), the profile check hook, and refused imports. SPEC §6
 * also says that a rejected write changes nothing, so every refusal here is checked against the
 * whole secret export and the generation taken before it. test_store.c covers what is accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store.h"
#include "storekit.h"
#include "testkit.h"

/* Well-formed ids that name nothing. */
#define NO_ID(prefix) prefix "_AAAAAAAAAAAAAAAA"

static struct gh_testkey rsa_key, weak_key, ec_key;
static char *rsa_pem, *weak_pem, *ec_jwk;
static const char hmac32[] = "0123456789abcdef0123456789abcdef";
static const char hmac31[] = "0123456789abcdef0123456789abcde";

/* What a refusal must leave: the whole configuration with secrets, and the generation. */
struct mark {
    json_t *doc;
    uint64_t generation;
};

/* ---- helpers (see test_store.c for the accepted side) ---- */

/* A fixture name, or the text itself when it names nothing (literal ids, NULL). */
static const char *fx_id(const struct gh_fixture *fx, const char *name)
{
    const char *v = name != NULL ? gh_fx_get(fx, name, strlen(name)) : NULL;
    return v != NULL ? v : name;
}

/* Creates an object from a template under the parent the fixture names, and names its id `var`. */
static void fx_create(struct gh_fixture *fx, const char *var, enum gh_kind kind, const char *parent,
                      const char *tmpl)
{
    gh_fx_create(fx, var, kind, fx_id(fx, parent), tmpl);
}

static struct mark mark_state(struct gh_store *s)
{
    struct gh_store_error err = {0};
    struct mark m = {NULL, gh_store_generation(s)};
    if (gh_store_export(s, 1, &m.doc, &err) != GH_OK)
        gh_fx_fail_store("export", &err);
    return m;
}

/* 1 when the configuration or the generation differ from what `m` found; frees the mark. */
static int changed(struct gh_store *s, struct mark *m)
{
    struct mark now = mark_state(s);
    int differs = now.generation != m->generation || !json_equal(now.doc, m->doc);
    json_decref(now.doc);
    json_decref(m->doc);
    m->doc = NULL;
    return differs;
}

static void assert_unchanged(struct gh_store *s, struct mark *m, const char *what)
{
    if (changed(s, m))
        fail_msg("%s: a refused write changed the configuration", what);
}

static const char *code_of(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 404:
        return "not_found";
    case 409:
        return "conflict";
    default:
        return "validation_failed";
    }
}

/* SPEC §6: status, code, the field when one is expected, and a message that leaks no secret.
 * 0 when the refusal is right; otherwise 1, with the reason printed. */
static int refusal_wrong(const char *what, int rc, const struct gh_store_error *err, int status,
                         const char *field)
{
    if (rc == GH_OK) {
        print_error("%s: accepted, expected %d\n", what, status);
        return 1;
    }
    if (err->status != status || err->code == NULL || strcmp(err->code, code_of(status)) != 0 ||
        (field != NULL && strcmp(err->field, field) != 0)) {
        print_error("%s: got %d %s field \"%s\" (%s), expected %d field \"%s\"\n", what,
                    err->status, err->code ? err->code : "(null)", err->field, err->message, status,
                    field ? field : "(any)");
        return 1;
    }
    if (err->message[0] == '\0' || strstr(err->message, "BEGIN PUBLIC") != NULL ||
        strstr(err->message, hmac31) != NULL) {
        print_error("%s: the message is empty or shows a secret: %s\n", what, err->message);
        return 1;
    }
    return 0;
}

static void assert_refused(const char *what, int rc, const struct gh_store_error *err, int status,
                           const char *field)
{
    if (refusal_wrong(what, rc, err, status, field))
        fail_msg("%s: wrong refusal", what);
}

/* ---- the fixture every table runs against ---- */

static void fixture_open(struct gh_fixture *fx)
{
    gh_fx_open(fx);
    gh_fx_set(fx, "PEM", rsa_pem);
    gh_fx_set(fx, "WEAK", weak_pem);
    gh_fx_set(fx, "JWK", ec_jwk);
    gh_fx_set(fx, "HMAC32", hmac32);
    gh_fx_set(fx, "HMAC31", hmac31);
    gh_fx_set(fx, "NOCLI", NO_ID("cli"));
    gh_fx_set(fx, "NOCOL", NO_ID("col"));
    gh_fx_set(fx, "NOPOL", NO_ID("pol"));
}

/* Two of each kind, so that duplicates and references have something to collide with. */
static void fixture_populate(struct gh_fixture *fx)
{
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"acme\"}");
    fx_create(fx, "CLI2", GH_KIND_CLIENT, NULL, "{\"name\":\"beta\"}");
    fx_create(fx, "POL", GH_KIND_POLICY, NULL, "{\"name\":\"gold\"}");
    fx_create(fx, "POL2", GH_KIND_POLICY, NULL, "{\"name\":\"silver\"}");
    fx_create(fx, "COL", GH_KIND_COLLECTION, NULL,
              "{\"name\":\"shop\",\"path\":\"/shop\",\"upstream\":\"http://shop.internal\"}");
    fx_create(fx, "COL2", GH_KIND_COLLECTION, NULL,
              "{\"name\":\"blog\",\"path\":\"/blog\",\"upstream\":\"http://blog.internal\"}");
    fx_create(fx, "EP", GH_KIND_ENDPOINT, "COL", "{\"method\":\"GET\",\"path\":\"/items/:id\"}");
    fx_create(fx, "EP2", GH_KIND_ENDPOINT, "COL", "{\"method\":\"POST\",\"path\":\"/items\"}");
    fx_create(fx, "PRF", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI,\"name\":\"p1\",\"auth_type\":\"token\","
              "\"collection_ids\":[$COL],\"policy_id\":$POL}");
    fx_create(fx, "PRF2", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI,\"name\":\"p2\",\"auth_type\":\"token\"}");
    fx_create(fx, "JWTP", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI2,\"name\":\"pem\",\"auth_type\":\"jwt\",\"jwt_key\":$PEM}");
}

/* ---- refused creates and updates, table-driven ---- */

enum op { CREATE, UPDATE };

struct refusal {
    const char *what;
    enum op op;
    enum gh_kind kind;
    const char *target; /* fixture name or literal id: the parent of a create, the updated object */
    const char *input;  /* template, see gh_fx_expand() */
    int status;
    const char *field; /* NULL: not checked */
};

#define COLL(path, upstream) "{\"name\":\"n\",\"path\":" path ",\"upstream\":" upstream "}"
#define COLF(extra)          "{\"name\":\"n\",\"path\":\"/z\",\"upstream\":\"http://z\"" extra "}"
#define PROF(auth, extra)                                                                          \
    "{\"client_id\":$CLI,\"name\":\"new\",\"auth_type\":\"" auth "\"" extra "}"
#define DISCOVERY "\"https://idp.example.com/.well-known/openid-configuration\""
#define C_CLI     CREATE, GH_KIND_CLIENT, NULL
#define C_COL     CREATE, GH_KIND_COLLECTION, NULL
#define C_EP      CREATE, GH_KIND_ENDPOINT, "COL"
#define C_PRF     CREATE, GH_KIND_PROFILE, NULL
#define C_POL     CREATE, GH_KIND_POLICY, NULL

static const struct refusal refusals[] = {
    /* unknown fields: 422 naming them */
    {"unknown client field", C_CLI, "{\"name\":\"x\",\"colour\":\"red\"}", 422, "colour"},
    {"unknown collection field", C_COL,
     "{\"name\":\"n\",\"path\":\"/z\",\"upstream\":\"http://z\",\"tls\":true}", 422, "tls"},
    {"unknown profile field", C_PRF, PROF("token", ",\"keys\":[]"), 422, "keys"},
    {"plain key on create", C_PRF, PROF("token", ",\"key\":\"gk_x\""), 422, "key"},
    /* missing required fields */
    {"client without name", C_CLI, "{}", 422, "name"},
    {"collection without path", C_COL, "{\"name\":\"n\",\"upstream\":\"http://z\"}", 422, "path"},
    {"collection without upstream", C_COL, "{\"name\":\"n\",\"path\":\"/z\"}", 422, "upstream"},
    {"collection without name", C_COL, "{\"path\":\"/z\",\"upstream\":\"http://z\"}", 422, "name"},
    {"endpoint without method", C_EP, "{\"path\":\"/x\"}", 422, "method"},
    {"endpoint without path", C_EP, "{\"method\":\"GET\"}", 422, "path"},
    {"profile without client", C_PRF, "{\"name\":\"n\",\"auth_type\":\"token\"}", 422, "client_id"},
    {"profile without name", C_PRF, "{\"client_id\":$CLI,\"auth_type\":\"token\"}", 422, "name"},
    {"profile without auth_type", C_PRF, "{\"client_id\":$CLI,\"name\":\"n\"}", 422, "auth_type"},
    {"policy without name", C_POL, "{\"rate_limit\":null}", 422, "name"},
    {"jwt profile without key", C_PRF, PROF("jwt", ""), 422, "jwt_key"},
    /* wrong JSON types: 400 */
    {"body not an object", C_CLI, "[\"name\"]", 400, NULL},
    {"name a number", C_CLI, "{\"name\":42}", 400, "name"},
    {"active a string", C_CLI, "{\"name\":\"x\",\"active\":\"yes\"}", 400, "active"},
    {"description an array", C_CLI, "{\"name\":\"x\",\"description\":[\"a\"]}", 400, "description"},
    {"timeout_ms a string", C_COL, COLF(",\"timeout_ms\":\"30\""), 400, "timeout_ms"},
    {"timeout_ms a fraction", C_COL, COLF(",\"timeout_ms\":1.5"), 400, "timeout_ms"},
    {"collection_ids a string", C_PRF, PROF("token", ",\"collection_ids\":$COL"), 400,
     "collection_ids"},
    {"collection_ids of numbers", C_PRF, PROF("token", ",\"collection_ids\":[1]"), 400,
     "collection_ids"},
    {"leeway a string", C_PRF, PROF("token", ",\"leeway_seconds\":\"60\""), 400, "leeway_seconds"},
    {"client_id a number", C_PRF, "{\"client_id\":7,\"name\":\"n\",\"auth_type\":\"token\"}", 400,
     "client_id"},
    {"forward_authorization 1", C_COL, COLF(",\"forward_authorization\":1"), 400,
     "forward_authorization"},
    {"rate_limit a number", C_POL, "{\"name\":\"n\",\"rate_limit\":5}", 400, "rate_limit"},
    {"rate_limit requests a string", C_POL,
     "{\"name\":\"n\",\"rate_limit\":{\"requests\":\"10\",\"per_seconds\":1}}", 400, "rate_limit"},
    {"method a number", C_EP, "{\"method\":1,\"path\":\"/x\"}", 400, "method"},
    /* rule violations: 422 */
    {"path without slash", C_COL, COLL("\"orders\"", "\"http://z\""), 422, "path"},
    {"path with trailing slash", C_COL, COLL("\"/orders/\"", "\"http://z\""), 422, "path"},
    {"path /", C_COL, COLL("\"/\"", "\"http://z\""), 422, "path"},
    {"path with a space", C_COL, COLL("\"/or ders\"", "\"http://z\""), 422, "path"},
    {"path with //", C_COL, COLL("\"/a//b\"", "\"http://z\""), 422, "path"},
    {"path with ..", C_COL, COLL("\"/a/../b\"", "\"http://z\""), 422, "path"},
    {"path with ?", C_COL, COLL("\"/a?b\"", "\"http://z\""), 422, "path"},
    {"upstream ftp", C_COL, COLL("\"/z\"", "\"ftp://z\""), 422, "upstream"},
    {"upstream relative", C_COL, COLL("\"/z\"", "\"z.internal:80\""), 422, "upstream"},
    {"upstream without host", C_COL, COLL("\"/z\"", "\"http://\""), 422, "upstream"},
    {"upstream with query", C_COL, COLL("\"/z\"", "\"http://z/p?q=1\""), 422, "upstream"},
    {"upstream with user", C_COL, COLL("\"/z\"", "\"http://u:pw@z\""), 422, "upstream"},
    {"upstream port 0", C_COL, COLL("\"/z\"", "\"http://z:0\""), 422, "upstream"},
    {"version with space", C_COL, COLF(",\"version\":\"v 1\""), 422, "version"},
    {"timeout_ms 0", C_COL, COLF(",\"timeout_ms\":0"), 422, "timeout_ms"},
    {"method lower case", C_EP, "{\"method\":\"get\",\"path\":\"/x\"}", 422, "method"},
    {"method FETCH", C_EP, "{\"method\":\"FETCH\",\"path\":\"/x\"}", 422, "method"},
    {"endpoint path relative", C_EP, "{\"method\":\"GET\",\"path\":\"items\"}", 422, "path"},
    {"endpoint path trailing /", C_EP, "{\"method\":\"GET\",\"path\":\"/items/\"}", 422, "path"},
    {"endpoint * not last", C_EP, "{\"method\":\"GET\",\"path\":\"/*/x\"}", 422, "path"},
    {"endpoint param twice", C_EP, "{\"method\":\"GET\",\"path\":\"/:id/:id\"}", 422, "path"},
    {"endpoint param unnamed", C_EP, "{\"method\":\"GET\",\"path\":\"/a/:\"}", 422, "path"},
    {"endpoint timeout 600001", C_EP, "{\"method\":\"GET\",\"path\":\"/x\",\"timeout_ms\":600001}",
     422, "timeout_ms"},
    {"empty name", C_CLI, "{\"name\":\"\"}", 422, "name"},
    {"name with a control byte", C_CLI, "{\"name\":\"a\\u0001b\"}", 422, "name"},
    {"name with NUL", C_CLI, "{\"name\":\"a\\u0000b\"}", 422, "name"},
    {"description with NUL", C_CLI, "{\"name\":\"x\",\"description\":\"a\\u0000b\"}", 422,
     "description"},
    {"leeway 301", C_PRF, PROF("token", ",\"leeway_seconds\":301"), 422, "leeway_seconds"},
    {"leeway -1", C_PRF, PROF("token", ",\"leeway_seconds\":-1"), 422, "leeway_seconds"},
    {"CIDR with host bits", C_PRF, PROF("token", ",\"ip_allow\":[\"10.0.0.1/8\"]"), 422,
     "ip_allow"},
    {"CIDR /33", C_PRF, PROF("token", ",\"ip_deny\":[\"10.0.0.0/33\"]"), 422, "ip_deny"},
    {"CIDR not an address", C_PRF, PROF("token", ",\"ip_allow\":[\"300.1.1.1\"]"), 422, "ip_allow"},
    {"unknown algorithm", C_PRF, PROF("token", ",\"algorithms\":[\"XS256\"]"), 422, "algorithms"},
    {"algorithm none", C_PRF, PROF("token", ",\"algorithms\":[\"none\"]"), 422, "algorithms"},
    {"no algorithm", C_PRF, PROF("token", ",\"algorithms\":[]"), 422, "algorithms"},
    {"auth_type saml", C_PRF, PROF("saml", ""), 422, "auth_type"},
    {"collection_ids twice", C_PRF, PROF("token", ",\"collection_ids\":[$COL,$COL]"), 422,
     "collection_ids"},
    {"collection_ids not an id", C_PRF, PROF("token", ",\"collection_ids\":[\"shop\"]"), 422,
     "collection_ids"},
    {"empty required claim", C_PRF, PROF("token", ",\"required_claims\":[\"\"]"), 422,
     "required_claims"},
    {"token_types a string", C_PRF,
     PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"token_types\":\"at+jwt\""), 400,
     "token_types"},
    {"token_types with a space", C_PRF,
     PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"token_types\":[\"at jwt\"]"), 422,
     "token_types"},
    {"token_types with a parameter", C_PRF,
     PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"token_types\":[\"jwt;q=1\"]"), 422,
     "token_types"},
    {"token_types without a subtype", C_PRF,
     PROF("jwt", ",\"jwt_key\":\"x\",\"token_types\":[\"application/\"]"), 422, "token_types"},
    {"token_types with two slashes", C_PRF,
     PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"token_types\":[\"a/b/c\"]"), 422,
     "token_types"},
    {"token_types for a token profile", C_PRF, PROF("token", ",\"token_types\":[\"at+jwt\"]"), 422,
     "token_types"},
    {"rate_limit 0 requests", C_POL,
     "{\"name\":\"n\",\"rate_limit\":{\"requests\":0,\"per_seconds\":1}}", 422, "rate_limit"},
    {"rate_limit without period", C_POL, "{\"name\":\"n\",\"rate_limit\":{\"requests\":1}}", 422,
     "rate_limit"},
    {"quota with burst", C_POL,
     "{\"name\":\"n\",\"quota\":{\"requests\":1,\"per_seconds\":1,\"burst\":2}}", 422, "quota"},
    /* auth types */
    {"HMAC secret of 31 bytes", C_PRF,
     PROF("jwt", ",\"algorithms\":[\"HS256\"],\"jwt_key\":$HMAC31"), 422, "jwt_key"},
    {"HMAC mixed with RSA", C_PRF,
     PROF("jwt", ",\"algorithms\":[\"HS256\",\"RS256\"],\"jwt_key\":$HMAC32"), 422, "algorithms"},
    {"two HMAC algorithms", C_PRF,
     PROF("jwt", ",\"algorithms\":[\"HS256\",\"HS512\"],\"jwt_key\":$HMAC32"), 422, "algorithms"},
    /* a public key is no secret: as an HMAC key, anyone holding it could sign tokens */
    {"public PEM as HMAC secret", C_PRF,
     PROF("jwt", ",\"algorithms\":[\"HS256\"],\"jwt_key\":$PEM"), 422, "jwt_key"},
    {"public JWK as HMAC secret", C_PRF,
     PROF("jwt", ",\"algorithms\":[\"HS256\"],\"jwt_key\":$JWK"), 422, "jwt_key"},
    {"PEM profile switched to HMAC", UPDATE, GH_KIND_PROFILE, "JWTP",
     "{\"algorithms\":[\"HS512\"]}", 422, NULL},
    {"RSA key of 1024 bits", C_PRF, PROF("jwt", ",\"jwt_key\":$WEAK"), 422, "jwt_key"},
    {"jwt_key not a key", C_PRF, PROF("jwt", ",\"jwt_key\":\"not a key\""), 422, "jwt_key"},
    {"RSA key, EC algorithms", C_PRF, PROF("jwt", ",\"jwt_key\":$PEM,\"algorithms\":[\"ES256\"]"),
     422, "algorithms"},
    {"EC JWK, RSA algorithms", C_PRF, PROF("jwt", ",\"jwt_key\":$JWK,\"algorithms\":[\"RS256\"]"),
     422, "algorithms"},
    {"jwt with a discovery URL", C_PRF,
     PROF("jwt", ",\"jwt_key\":$PEM,\"oidc_discovery_url\":" DISCOVERY), 422, "oidc_discovery_url"},
    {"oidc with both URLs", C_PRF,
     PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"oidc_jwks_uri\":\"https://i/jwks\""),
     422, "oidc_discovery_url"},
    {"oidc with neither URL", C_PRF, PROF("oidc", ""), 422, "oidc_discovery_url"},
    {"oidc discovery URL without suffix", C_PRF,
     PROF("oidc", ",\"oidc_discovery_url\":\"https://idp.example.com/\""), 422,
     "oidc_discovery_url"},
    {"oidc jwks_uri not a URL", C_PRF, PROF("oidc", ",\"oidc_jwks_uri\":\"jwks.json\""), 422,
     "oidc_jwks_uri"},
    {"oidc with HMAC", C_PRF,
     PROF("oidc", ",\"oidc_jwks_uri\":\"https://i/jwks\",\"algorithms\":[\"HS256\"]"), 422,
     "algorithms"},
    {"oidc with jwt_key", C_PRF,
     PROF("oidc", ",\"oidc_jwks_uri\":\"https://i/jwks\",\"jwt_key\":$PEM"), 422, "jwt_key"},
    {"token with jwt_key", C_PRF, PROF("token", ",\"jwt_key\":$PEM"), 422, "jwt_key"},
    {"token with key_claim", C_PRF, PROF("token", ",\"key_claim\":\"sub\""), 422, "key_claim"},
    {"token with jwks_uri", C_PRF, PROF("token", ",\"oidc_jwks_uri\":\"https://i/jwks\""), 422,
     "oidc_jwks_uri"},
    /* read-only fields */
    {"id on create", C_CLI, "{\"name\":\"x\",\"id\":\"cli_AAAAAAAAAAAAAAAA\"}", 422, "id"},
    {"created_at on create", C_CLI, "{\"name\":\"x\",\"created_at\":\"2020-01-01T00:00:00Z\"}", 422,
     "created_at"},
    {"collection_id on create", C_EP, "{\"collection_id\":$COL,\"method\":\"GET\",\"path\":\"/x\"}",
     422, "collection_id"},
    {"id on update", UPDATE, GH_KIND_CLIENT, "CLI", "{\"id\":\"cli_AAAAAAAAAAAAAAAA\"}", 422, "id"},
    {"created_at on update", UPDATE, GH_KIND_PROFILE, "PRF",
     "{\"created_at\":\"2020-01-01T00:00:00Z\"}", 422, "created_at"},
    {"updated_at on update", UPDATE, GH_KIND_CLIENT, "CLI",
     "{\"updated_at\":\"2020-01-01T00:00:00Z\"}", 422, "updated_at"},
    {"collection_id on update", UPDATE, GH_KIND_ENDPOINT, "EP", "{\"collection_id\":$COL2}", 422,
     "collection_id"},
    /* references to nothing */
    {"unknown client", C_PRF, "{\"client_id\":$NOCLI,\"name\":\"n\",\"auth_type\":\"token\"}", 422,
     "client_id"},
    {"unknown policy", C_PRF, PROF("token", ",\"policy_id\":$NOPOL"), 422, "policy_id"},
    {"unknown collection", C_PRF, PROF("token", ",\"collection_ids\":[$NOCOL]"), 422,
     "collection_ids"},
    {"a client id as collection", C_PRF, PROF("token", ",\"collection_ids\":[$CLI]"), 422,
     "collection_ids"},
    {"update to unknown policy", UPDATE, GH_KIND_PROFILE, "PRF", "{\"policy_id\":$NOPOL}", 422,
     "policy_id"},
    {"update to unknown client", UPDATE, GH_KIND_PROFILE, "PRF", "{\"client_id\":$NOCLI}", 422,
     "client_id"},
    {"update to unknown collection", UPDATE, GH_KIND_PROFILE, "PRF",
     "{\"collection_ids\":[$COL,$NOCOL]}", 422, "collection_ids"},
    /* updates that break a rule */
    {"update name empty", UPDATE, GH_KIND_CLIENT, "CLI", "{\"name\":\"\"}", 422, "name"},
    {"update active 1", UPDATE, GH_KIND_CLIENT, "CLI", "{\"active\":1}", 400, "active"},
    {"update not an object", UPDATE, GH_KIND_CLIENT, "CLI", "[]", 400, NULL},
    {"update unknown field", UPDATE, GH_KIND_COLLECTION, "COL", "{\"tls\":true}", 422, "tls"},
    {"update path /", UPDATE, GH_KIND_COLLECTION, "COL", "{\"path\":\"/\"}", 422, "path"},
    {"update to jwt without key", UPDATE, GH_KIND_PROFILE, "PRF", "{\"auth_type\":\"jwt\"}", 422,
     "jwt_key"},
    {"update token with jwt_key", UPDATE, GH_KIND_PROFILE, "PRF", "{\"jwt_key\":$PEM}", 422,
     "jwt_key"},
    {"update policy rate 0 s", UPDATE, GH_KIND_POLICY, "POL",
     "{\"rate_limit\":{\"requests\":1,\"per_seconds\":0}}", 422, "rate_limit"},
    /* duplicates and overlaps: 409 */
    {"same collection path", C_COL, COLL("\"/shop\"", "\"http://z\""), 409, "path"},
    {"path under a collection", C_COL, COLL("\"/shop/v2\"", "\"http://z\""), 409, "path"},
    {"path two levels under", C_COL, COLL("\"/blog/x/y\"", "\"http://z\""), 409, "path"},
    {"same name and version", C_COL,
     "{\"name\":\"shop\",\"path\":\"/shop2\",\"upstream\":"
     "\"http://z\",\"version\":\"v1\"}",
     409, "name"},
    {"same client name", C_CLI, "{\"name\":\"acme\"}", 409, "name"},
    {"same policy name", C_POL, "{\"name\":\"gold\"}", 409, "name"},
    {"same endpoint", C_EP, "{\"method\":\"GET\",\"path\":\"/items/:id\"}", 409, "path"},
    {"same profile name, same client", C_PRF,
     "{\"client_id\":$CLI,\"name\":\"p1\",\"auth_type\":\"token\"}", 409, "name"},
    {"rename client to a taken name", UPDATE, GH_KIND_CLIENT, "CLI2", "{\"name\":\"acme\"}", 409,
     "name"},
    {"rename policy to a taken name", UPDATE, GH_KIND_POLICY, "POL2", "{\"name\":\"gold\"}", 409,
     "name"},
    {"move a path under another", UPDATE, GH_KIND_COLLECTION, "COL2", "{\"path\":\"/shop/blog\"}",
     409, "path"},
    {"move a path under the other", UPDATE, GH_KIND_COLLECTION, "COL", "{\"path\":\"/blog/shop\"}",
     409, "path"},
    {"rename collection to a taken name", UPDATE, GH_KIND_COLLECTION, "COL2", "{\"name\":\"shop\"}",
     409, "name"},
    {"endpoint onto another", UPDATE, GH_KIND_ENDPOINT, "EP2",
     "{\"method\":\"GET\",\"path\":\"/items/:id\"}", 409, "path"},
    {"profile renamed to a taken name", UPDATE, GH_KIND_PROFILE, "PRF2", "{\"name\":\"p1\"}", 409,
     "name"},
    /* unknown objects */
    {"endpoint of an unknown collection", CREATE, GH_KIND_ENDPOINT, NO_ID("col"),
     "{\"method\":\"GET\",\"path\":\"/x\"}", 404, NULL},
    {"endpoint without a collection", CREATE, GH_KIND_ENDPOINT, NULL,
     "{\"method\":\"GET\",\"path\":\"/x\"}", 404, NULL},
    {"endpoint of a client", CREATE, GH_KIND_ENDPOINT, "CLI",
     "{\"method\":\"GET\",\"path\":\"/x\"}", 404, NULL},
    {"update unknown client", UPDATE, GH_KIND_CLIENT, NO_ID("cli"), "{\"name\":\"x\"}", 404, NULL},
    {"update unknown profile", UPDATE, GH_KIND_PROFILE, NO_ID("ap"), "{\"active\":false}", 404,
     NULL},
    {"update a key", UPDATE, GH_KIND_KEY, NO_ID("key"), "{\"expires_at\":null}", 422, NULL},
};

/* 0 when `r` is refused as it should be and changes nothing; 1 (reason printed) otherwise. */
static int run_refusal(struct gh_fixture *fx, const struct refusal *r)
{
    struct gh_store_error err = {0};
    struct mark m = mark_state(fx->s);
    json_t *input = gh_fx_expand(fx, r->input), *out = NULL;
    const char *target = fx_id(fx, r->target);
    int rc = r->op == CREATE ? gh_store_create(fx->s, r->kind, target, input, NULL, &out, &err)
                             : gh_store_update(fx->s, r->kind, target, input, NULL, &out, &err);
    int wrong = refusal_wrong(r->what, rc, &err, r->status, r->field);
    json_decref(input);
    json_decref(out);
    if (changed(fx->s, &m)) {
        print_error("%s: a refused write changed the configuration\n", r->what);
        wrong = 1;
    }
    return wrong;
}

static void test_refused_writes(void **state)
{
    int wrong = 0;
    (void)state;
    /* a fresh store per case, so that a wrongly accepted write cannot change the next case */
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        struct gh_fixture fx;
        fixture_open(&fx);
        fixture_populate(&fx);
        wrong += run_refusal(&fx, &refusals[i]);
        gh_fx_close(&fx);
    }
    assert_int_equal(wrong, 0);
}

/* The neighbours of the 409 cases above are fine: only exact duplicates and overlaps collide. */
static void test_near_duplicates_accepted(void **state)
{
    struct gh_fixture *fx = *state;
    fixture_populate(fx);
    fx_create(fx, NULL, GH_KIND_COLLECTION, NULL,
              "{\"name\":\"shopping\",\"path\":\"/shopping\",\"upstream\":\"http://z\"}");
    fx_create(fx, NULL, GH_KIND_COLLECTION, NULL,
              "{\"name\":\"Shop\",\"path\":\"/Shop\",\"upstream\":\"http://z\"}");
    fx_create(
        fx, NULL, GH_KIND_COLLECTION, NULL,
        "{\"name\":\"shop\",\"version\":\"v2\",\"path\":\"/shop-v2\",\"upstream\":\"http://z\"}");
    fx_create(fx, NULL, GH_KIND_ENDPOINT, "COL", "{\"method\":\"PUT\",\"path\":\"/items/:id\"}");
    fx_create(fx, NULL, GH_KIND_ENDPOINT, "COL2", "{\"method\":\"GET\",\"path\":\"/items/:id\"}");
    fx_create(fx, NULL, GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI2,\"name\":\"p1\",\"auth_type\":\"token\"}");
    fx_create(fx, NULL, GH_KIND_CLIENT, NULL, "{\"name\":\"Acme\"}");
}

/* SPEC §1: no collection path may be a prefix by segments of another, whichever came first. */
static void test_collection_path_overlap(void **state)
{
    static const struct {
        const char *first, *second;
        int status; /* 0: both accepted */
    } pairs[] = {
        {"/a", "/a/b", 409},   {"/a/b", "/a", 409},  {"/a", "/ab", 0},
        {"/ab", "/a", 0},      {"/a/b", "/a/bc", 0}, {"/a/b/c", "/a", 409},
        {"/a", "/a/b/c", 409}, {"/a.b", "/a/b", 0},  {"/a/b", "/a/b", 409},
    };
    (void)state;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct gh_fixture fx;
        struct gh_store_error err = {0};
        json_t *out = NULL, *second;
        char what[64];
        fixture_open(&fx);
        json_decref(gh_fx_must_create(fx.s, GH_KIND_COLLECTION, NULL,
                                      json_pack("{s:s, s:s, s:s}", "name", "first", "path",
                                                pairs[i].first, "upstream", "http://up")));
        second = json_pack("{s:s, s:s, s:s}", "name", "second", "path", pairs[i].second, "upstream",
                           "http://up");
        snprintf(what, sizeof what, "%s then %s", pairs[i].first, pairs[i].second);
        struct mark m = mark_state(fx.s);
        int rc = gh_store_create(fx.s, GH_KIND_COLLECTION, NULL, second, NULL, &out, &err);
        if (pairs[i].status == 0 && rc != GH_OK)
            gh_fx_fail_store(what, &err);
        if (pairs[i].status != 0) {
            assert_refused(what, rc, &err, pairs[i].status, "path");
            assert_unchanged(fx.s, &m, what);
        }
        json_decref(m.doc);
        json_decref(out);
        json_decref(second);
        gh_fx_close(&fx);
    }
}

/* ---- deletes ---- */

static void assert_delete_refused(struct gh_fixture *fx, enum gh_kind kind, const char *name,
                                  int status)
{
    struct gh_store_error err = {0};
    struct mark m = mark_state(fx->s);
    char what[64];
    snprintf(what, sizeof what, "delete %s %s", gh_kind_plural(kind), name);
    assert_refused(what, gh_store_delete(fx->s, kind, fx_id(fx, name), NULL, &err), &err, status,
                   NULL);
    assert_unchanged(fx->s, &m, what);
}

static void must_update(struct gh_fixture *fx, enum gh_kind kind, const char *name,
                        const char *patch)
{
    struct gh_store_error err = {0};
    json_t *out = NULL, *input = gh_fx_expand(fx, patch);
    uint64_t generation = gh_store_generation(fx->s);
    if (gh_store_update(fx->s, kind, fx_id(fx, name), input, NULL, &out, &err) != GH_OK)
        gh_fx_fail_store(patch, &err);
    assert_int_equal(gh_store_generation(fx->s), generation + 1);
    json_decref(input);
    json_decref(out);
}

/* 409 while anything still refers to the object; accepted once nothing does, however the last
 * reference went (its object deleted, or the profile changed to stop naming it). */
static void test_delete_in_use(void **state)
{
    struct gh_fixture *fx = *state;
    fixture_populate(fx);
    assert_delete_refused(fx, GH_KIND_COLLECTION, "COL", 409); /* endpoints and a profile */
    assert_delete_refused(fx, GH_KIND_CLIENT, "CLI", 409);
    assert_delete_refused(fx, GH_KIND_POLICY, "POL", 409);
    gh_fx_must_delete(fx->s, GH_KIND_ENDPOINT, fx_id(fx, "EP"));
    gh_fx_must_delete(fx->s, GH_KIND_ENDPOINT, fx_id(fx, "EP2"));
    assert_delete_refused(fx, GH_KIND_COLLECTION, "COL", 409); /* still granted by PRF */
    must_update(fx, GH_KIND_PROFILE, "PRF", "{\"collection_ids\":[$COL2]}");
    gh_fx_must_delete(fx->s, GH_KIND_COLLECTION, fx_id(fx, "COL"));
    assert_delete_refused(fx, GH_KIND_COLLECTION, "COL2", 409); /* the grant moved here */
    assert_delete_refused(fx, GH_KIND_POLICY, "POL", 409);
    must_update(fx, GH_KIND_PROFILE, "PRF", "{\"policy_id\":null}");
    gh_fx_must_delete(fx->s, GH_KIND_POLICY, fx_id(fx, "POL"));
    gh_fx_must_delete(fx->s, GH_KIND_PROFILE, fx_id(fx, "PRF"));
    assert_delete_refused(fx, GH_KIND_CLIENT, "CLI", 409); /* PRF2 is left */
    gh_fx_must_delete(fx->s, GH_KIND_COLLECTION, fx_id(fx, "COL2"));
    gh_fx_must_delete(fx->s, GH_KIND_PROFILE, fx_id(fx, "PRF2"));
    gh_fx_must_delete(fx->s, GH_KIND_CLIENT, fx_id(fx, "CLI"));
}

/* 404 for ids that name nothing, including another kind's ids. */
static void test_unknown_ids(void **state)
{
    static const struct {
        enum gh_kind kind;
        const char *id;
    } unknown[] = {
        {GH_KIND_COLLECTION, NO_ID("col")},
        {GH_KIND_COLLECTION, "CLI"},
        {GH_KIND_ENDPOINT, NO_ID("ep")},
        {GH_KIND_CLIENT, NO_ID("cli")},
        {GH_KIND_CLIENT, "COL"},
        {GH_KIND_PROFILE, NO_ID("ap")},
        {GH_KIND_POLICY, NO_ID("pol")},
        {GH_KIND_KEY, NO_ID("key")},
        {GH_KIND_CLIENT, "no such id"},
        {GH_KIND_CLIENT, ""},
    };
    struct gh_fixture *fx = *state;
    fixture_populate(fx);
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        struct gh_store_error err = {0};
        json_t *out = NULL, *patch = gh_fx_parse("{\"active\":false}");
        const char *id = fx_id(fx, unknown[i].id);
        struct mark m = mark_state(fx->s);
        assert_refused(id, gh_store_get(fx->s, unknown[i].kind, id, &out, &err), &err, 404, NULL);
        assert_null(out);
        if (unknown[i].kind != GH_KIND_KEY) {
            assert_refused(id, gh_store_update(fx->s, unknown[i].kind, id, patch, NULL, &out, &err),
                           &err, 404, NULL);
            assert_null(out);
        }
        assert_refused(id, gh_store_delete(fx->s, unknown[i].kind, id, NULL, &err), &err, 404,
                       NULL);
        assert_unchanged(fx->s, &m, id);
        json_decref(patch);
    }
}

/* ---- lists and stores ---- */

/* SPEC §6: ?limit= is 1..1000 (0 means the default). */
static void test_list_limits(void **state)
{
    struct gh_fixture *fx = *state;
    static const int bad[] = {1001, -1, 100000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gh_store_error err = {0};
        json_t *page = NULL;
        assert_refused("limit",
                       gh_store_list(fx->s, GH_KIND_CLIENT, NULL, NULL, bad[i], &page, &err), &err,
                       422, "limit");
        assert_null(page);
    }
}

/* A store URL of no known form is refused, saying which forms there are; a PostgreSQL string
 * libpq cannot parse is refused before any connection. None of the errors repeats what could be a
 * password. */
static void test_open_refuses_bad_urls(void **state)
{
    static const struct {
        const char *url, *says;
    } cases[] = {
        {"mysql:x", "sqlite:"},
        {"sqlite:", "sqlite:"},
        {"", "postgres://"},
        {"mysql://gh:Secret42@db/gatehouse", "not \"mysql:...\""},
        {"host=db password=Secret42", "postgres:KEY=VALUE"},
        {"postgres:host=127.0.0.1 password=Secret42 nonsense", "connection string is not valid"},
        {"postgres://gh:%zzSecret42@127.0.0.1/gatehouse", "connection string is not valid"},
        {"postgresql://gh:Secret42@127.0.0.1:5432/gh?nonsense=1", "connection string is not valid"},
        /* no @: libpq reads gh as the host and the password as the port */
        {"postgres://gh:Secret42/gatehouse", "port is not a number"},
        {"postgres:port=Secret42", "port is not a number"},
        {"sqlite:/nonexistent-gh-dir/sub/gatehouse.db", "/nonexistent-gh-dir/sub/gatehouse.db"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gh_store *s = (struct gh_store *)&s; /* any non-NULL value: must become NULL */
        char error[512] = "";
        assert_int_not_equal(gh_store_open(cases[i].url, &s, error, sizeof error), GH_OK);
        assert_null(s);
        if (strstr(error, cases[i].says) == NULL || strstr(error, "Secret42") != NULL)
            fail_msg("opening \"%s\" says \"%s\"", cases[i].url, error);
    }
    gh_store_close(NULL);
}

/* Every documented form of --db is accepted without connecting: SQLite's, PostgreSQL's URLs (with
 * libpq's parameters), its key=value pairs, and "postgres:" alone for the PG* variables. */
static void test_check_url_accepts_every_form(void **state)
{
    static const char *const urls[] = {
        "sqlite:gatehouse.db",
        "sqlite::memory:",
        "sqlite:///var/lib/gatehouse/gh.db",
        "postgres://gh:Secret42@db.internal:5432/gatehouse",
        "postgresql://gh@db.internal/gatehouse?sslmode=require&connect_timeout=3",
        "postgres://%2Fvar%2Frun%2Fpostgresql/gatehouse",
        "postgres:host=db.internal port=5432 dbname=gatehouse user=gh password=Secret42",
        "postgres:host=a,b port=5432,5433 target_session_attrs=read-write",
        "postgres:",
    };
    (void)state;
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char error[512] = "";
        if (gh_store_check_url(urls[i], error, sizeof error) != GH_OK)
            fail_msg("\"%s\" is refused: %s", urls[i], error);
    }
}

/* ---- keys ---- */

static void test_key_rotation_refused(void **state)
{
    static const struct {
        const char *profile;
        int64_t grace;
        int status;
        const char *field;
    } cases[] = {
        {NO_ID("ap"), 0, 404, NULL},
        {"CLI", 0, 404, NULL},
        {"PRF", -1, 422, "grace_seconds"},
        {"PRF", 366LL * 86400 + 1, 422, "grace_seconds"},
    };
    struct gh_fixture *fx = *state;
    fixture_populate(fx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gh_store_error err = {0};
        json_t *out = NULL;
        struct mark m = mark_state(fx->s);
        int rc = gh_store_key_rotate(fx->s, fx_id(fx, cases[i].profile), cases[i].grace, NULL, &out,
                                     &err);
        assert_refused(cases[i].profile, rc, &err, cases[i].status, cases[i].field);
        assert_null(out);
        assert_unchanged(fx->s, &m, cases[i].profile);
    }
    /* the key create of the API is a rotation too */
    struct gh_store_error err = {0};
    json_t *out = NULL;
    struct mark m = mark_state(fx->s);
    assert_refused("key of nothing",
                   gh_store_create(fx->s, GH_KIND_KEY, NO_ID("ap"), NULL, NULL, &out, &err), &err,
                   404, NULL);
    assert_unchanged(fx->s, &m, "key of nothing");
}

/* ---- names: 1000 bytes, not 1000 characters ---- */

static void test_name_length(void **state)
{
    static const struct {
        enum gh_kind kind;
        const char *parent, *tmpl; /* the name is set on top of tmpl */
    } kinds[] = {
        {GH_KIND_CLIENT, NULL, "{}"},
        {GH_KIND_POLICY, NULL, "{}"},
        {GH_KIND_COLLECTION, NULL, "{\"path\":\"/long\",\"upstream\":\"http://z\"}"},
        {GH_KIND_ENDPOINT, "COL", "{\"method\":\"GET\",\"path\":\"/long\"}"},
        {GH_KIND_PROFILE, NULL, "{\"client_id\":$CLI,\"auth_type\":\"token\"}"},
    };
    struct gh_fixture *fx = *state;
    char name[1002];
    for (size_t i = 0; i < 500; i++)
        memcpy(name + 2 * i, "\xC3\xA9", 2); /* 500 x "é": 1000 bytes */
    name[1000] = '\0';
    fixture_populate(fx);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct gh_store_error err = {0};
        json_t *input = gh_fx_expand(fx, kinds[i].tmpl), *out = NULL;
        const char *parent = fx_id(fx, kinds[i].parent);
        name[1000] = 'x'; /* 1001 bytes */
        name[1001] = '\0';
        json_object_set_new(input, "name", json_string(name));
        struct mark m = mark_state(fx->s);
        assert_refused(gh_kind_plural(kinds[i].kind),
                       gh_store_create(fx->s, kinds[i].kind, parent, input, NULL, &out, &err), &err,
                       422, "name");
        assert_unchanged(fx->s, &m, gh_kind_plural(kinds[i].kind));
        name[1000] = '\0';
        json_object_set_new(input, "name", json_string(name));
        out = gh_fx_must_create(fx->s, kinds[i].kind, parent, input);
        assert_int_equal(json_string_length(json_object_get(out, "name")), 1000);
        json_decref(out);
    }
}

/* ---- the profile check hook (SPEC §4: an oidc profile's IdP is checked before saving) ---- */

struct hook {
    int calls;
    int refuse;
    json_t *seen;   /* the last profile the hook was shown */
    int was_active; /* `before` of the last call: -1 none (a create), else its active */
};

static int check_hook(void *ctx, const json_t *before, const json_t *profile,
                      struct gh_store_error *err)
{
    struct hook *h = ctx;
    h->calls++;
    h->was_active = before == NULL ? -1 : json_is_true(json_object_get(before, "active"));
    json_decref(h->seen);
    h->seen = json_deep_copy(profile);
    if (!h->refuse)
        return GH_OK;
    err->status = 422;
    err->code = "validation_failed";
    snprintf(err->field, sizeof err->field, "oidc_discovery_url");
    snprintf(err->message, sizeof err->message, "the IdP has no usable signing key");
    return GH_ERR_INVALID_ARG;
}

static void test_check_hook_refuses(void **state)
{
    struct gh_fixture *fx = *state;
    struct hook h = {0, 1, NULL, 0};
    struct gh_write_options w = {NULL, check_hook, &h};
    struct gh_store_error err = {0};
    json_t *out = NULL;
    fixture_populate(fx);
    json_t *input = gh_fx_expand(fx, PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY));
    json_t *patch = gh_fx_parse("{\"active\":false}");

    struct mark m = mark_state(fx->s);
    assert_refused("hook on create",
                   gh_store_create(fx->s, GH_KIND_PROFILE, NULL, input, &w, &out, &err), &err, 422,
                   "oidc_discovery_url");
    assert_string_equal(err.message, "the IdP has no usable signing key");
    assert_null(out);
    assert_unchanged(fx->s, &m, "hook on create");
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.was_active, -1); /* a create has no stored profile before it */
    assert_int_equal(json_integer_value(json_object_get(h.seen, "leeway_seconds")), 60);

    m = mark_state(fx->s);
    memset(&err, 0, sizeof err);
    assert_refused("hook on update",
                   gh_store_update(fx->s, GH_KIND_PROFILE, fx_id(fx, "PRF"), patch, &w, &out, &err),
                   &err, 422, "oidc_discovery_url");
    assert_unchanged(fx->s, &m, "hook on update");
    assert_int_equal(h.calls, 2);
    assert_false(json_is_true(json_object_get(h.seen, "active"))); /* it saw the patched profile */
    assert_int_equal(h.was_active, 1); /* and the stored one it starts from */
    json_decref(h.seen);
    json_decref(input);
    json_decref(patch);
}

/* The hook sees only profiles, only once their fields are valid, and may let them through. */
static void test_check_hook_accepts(void **state)
{
    struct gh_fixture *fx = *state;
    struct hook h = {0, 0, NULL, 0};
    struct gh_write_options w = {NULL, check_hook, &h};
    struct gh_store_error err = {0};
    json_t *out = NULL;
    fixture_populate(fx);
    json_t *bad = gh_fx_expand(
        fx, PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"leeway_seconds\":999"));
    assert_refused("invalid before the hook",
                   gh_store_create(fx->s, GH_KIND_PROFILE, NULL, bad, &w, &out, &err), &err, 422,
                   "leeway_seconds");
    assert_int_equal(h.calls, 0);
    json_decref(bad);

    json_t *client = gh_fx_parse("{\"name\":\"not a profile\"}");
    assert_int_equal(gh_store_create(fx->s, GH_KIND_CLIENT, NULL, client, &w, &out, &err), GH_OK);
    assert_int_equal(h.calls, 0);
    json_decref(out);
    json_decref(client);

    uint64_t generation = gh_store_generation(fx->s);
    json_t *input = gh_fx_expand(fx, PROF("oidc", ",\"oidc_discovery_url\":" DISCOVERY));
    assert_int_equal(gh_store_create(fx->s, GH_KIND_PROFILE, NULL, input, &w, &out, &err), GH_OK);
    assert_int_equal(h.calls, 1);
    assert_int_equal(gh_store_generation(fx->s), generation + 1);
    assert_string_equal(json_string_value(json_object_get(h.seen, "oidc_discovery_url")),
                        "https://idp.example.com/.well-known/openid-configuration");
    json_decref(out);
    json_decref(input);
    json_decref(h.seen);
}

/* ---- refused imports ---- */

struct bad_import {
    const char *what;
    const char *member; /* NULL: the whole document is `item` */
    int replace;        /* 1: member = item; 0: item appended to the member's array */
    const char *item;
    int status;
    const char *field;
};

#define HASH "0000000000000000000000000000000000000000000000000000000000000001"

static const struct bad_import bad_imports[] = {
    {"unknown client field", "clients", 0,
     "{\"id\":\"cli_BBBBBBBBBBBBBBBB\",\"name\":\"x\",\"colour\":1}", 422, "colour"},
    {"client without id", "clients", 0, "{\"name\":\"x\"}", 422, NULL},
    {"bad collection path", "collections", 0,
     "{\"id\":\"col_BBBBBBBBBBBBBBBB\",\"name\":\"x\",\"path\":\"bad\",\"upstream\":\"http://z\"}",
     422, "path"},
    {"overlapping collection", "collections", 0,
     "{\"id\":\"col_BBBBBBBBBBBBBBBB\",\"name\":\"x\",\"path\":\"/shop/x\","
     "\"upstream\":\"http://z\"}",
     409, "path"},
    {"endpoint of no collection", "endpoints", 0,
     "{\"id\":\"ep_BBBBBBBBBBBBBBBB\",\"collection_id\":$NOCOL,\"method\":\"GET\",\"path\":\"/\"}",
     422, NULL},
    {"key with a bad hash", "keys", 0,
     "{\"id\":\"key_BBBBBBBBBBBBBBBB\",\"profile_id\":$PRF,\"hash\":\"abc\"}", 422, NULL},
    {"new jwt profile without key", "profiles", 0,
     "{\"id\":\"ap_BBBBBBBBBBBBBBBB\",\"client_id\":$CLI,\"name\":\"j\",\"auth_type\":\"jwt\"}",
     422, "jwt_key"},
    {"profile of no client", "profiles", 0,
     "{\"id\":\"ap_BBBBBBBBBBBBBBBB\",\"client_id\":$NOCLI,\"name\":\"j\",\"auth_type\":\"token\"}",
     422, "client_id"},
    {"duplicate client name", "clients", 0, "{\"id\":\"cli_BBBBBBBBBBBBBBBB\",\"name\":\"acme\"}",
     409, "name"},
    {"duplicate id", "clients", 0, "{\"id\":$CLI2,\"name\":\"zeta\"}", 409, "id"},
    /* SPEC §1: timestamps are RFC 3339 UTC; a key's expiry decides whether it still admits */
    {"client created_at not a time", "clients", 0,
     "{\"id\":\"cli_BBBBBBBBBBBBBBBB\",\"name\":\"x\",\"created_at\":\"yesterday\"}", 422,
     "created_at"},
    {"key expires_at not a time", "keys", 0,
     "{\"id\":\"key_BBBBBBBBBBBBBBBB\",\"profile_id\":$PRF,\"prefix\":\"gk_abcde\","
     "\"hash\":\"" HASH "\",\"created_at\":\"2024-01-01T00:00:00Z\",\"expires_at\":\"tomorrow\"}",
     422, "expires_at"},
    {"key expires_at a number", "keys", 0,
     "{\"id\":\"key_BBBBBBBBBBBBBBBB\",\"profile_id\":$PRF,\"prefix\":\"gk_abcde\","
     "\"hash\":\"" HASH "\",\"created_at\":\"2024-01-01T00:00:00Z\",\"expires_at\":1700000000}",
     422, "expires_at"},
    {"unknown member", "widgets", 1, "[]", 422, "widgets"},
    {"member not an array", "clients", 1, "{}", 400, "clients"},
    {"document not an object", NULL, 1, "[]", 400, NULL},
};

static int run_bad_import(struct gh_fixture *fx, const struct bad_import *b)
{
    struct gh_store_error err = {0};
    struct mark m = mark_state(fx->s);
    json_t *item = gh_fx_expand(fx, b->item), *doc = item, *summary = NULL;
    if (b->member != NULL) {
        doc = json_deep_copy(m.doc);
        if (b->replace)
            json_object_set(doc, b->member, item);
        else
            json_array_append(json_object_get(doc, b->member), item);
        json_decref(item);
    }
    int wrong = refusal_wrong(b->what, gh_store_import(fx->s, doc, NULL, NULL, &summary, &err),
                              &err, b->status, b->field);
    json_decref(summary);
    json_decref(doc);
    if (changed(fx->s, &m)) {
        print_error("%s: a refused import changed the configuration\n", b->what);
        wrong = 1;
    }
    return wrong;
}

static void test_import_refused(void **state)
{
    int wrong = 0;
    (void)state;
    /* a fresh store per case, as for the refused writes above */
    for (size_t i = 0; i < sizeof bad_imports / sizeof bad_imports[0]; i++) {
        struct gh_fixture fx;
        fixture_open(&fx);
        fixture_populate(&fx);
        wrong += run_bad_import(&fx, &bad_imports[i]);
        gh_fx_close(&fx);
    }
    assert_int_equal(wrong, 0);
}

/* ---- set-up ---- */

static char *public_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, pkey) == 1 &&
        (n = BIO_get_mem_data(bio, &data)) > 0)
        out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    if (gh_testkey_generate(GH_ALG_RS256, "rsa", 0, &rsa_key) != 0 ||
        gh_testkey_generate(GH_ALG_RS256, "weak", 1024, &weak_key) != 0 ||
        gh_testkey_generate(GH_ALG_ES256, "ec", 0, &ec_key) != 0)
        return -1;
    rsa_pem = public_pem(rsa_key.priv);
    weak_pem = public_pem(weak_key.priv);
    ec_jwk = gh_testkey_public_jwk(&ec_key);
    return rsa_pem != NULL && weak_pem != NULL && ec_jwk != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(rsa_pem);
    free(weak_pem);
    free(ec_jwk);
    gh_testkey_clear(&rsa_key);
    gh_testkey_clear(&weak_key);
    gh_testkey_clear(&ec_key);
    return 0;
}

static int setup(void **state)
{
    struct gh_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    fixture_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    gh_fx_close(*state);
    free(*state);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_writes),
        T(test_near_duplicates_accepted),
        cmocka_unit_test(test_collection_path_overlap),
        T(test_delete_in_use),
        T(test_unknown_ids),
        T(test_list_limits),
        cmocka_unit_test(test_open_refuses_bad_urls),
        cmocka_unit_test(test_check_url_accepts_every_form),
        T(test_key_rotation_refused),
        T(test_name_length),
        T(test_check_hook_refuses),
        T(test_check_hook_accepts),
        cmocka_unit_test(test_import_refused),
    };
    return _cmocka_run_group_tests(
        gh_fx_postgres() ? "store rules on PostgreSQL" : "store rules on SQLite", tests,
        sizeof tests / sizeof tests[0], group_setup, group_teardown);
}
