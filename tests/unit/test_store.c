// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration store through its public interface (store.h) only, the way the admin API uses
 * it: every kind goes through create, get, list, update and delete with its defaults; lists page by
 * cursor; access profile keys are shown once and kept only as SHA-256; export and import carry a
 * whole configuration; odd names come back byte for byte; a database keeps everything across a
 * reopen. The refusals (every error class, conflicts, references, the profile hook) live in
 * test_store_rules.c. Each test starts from a fresh database, and every accepted write is checked
 * to move the generation by exactly one, because the gateway rebuilds its snapshot on that number.
 * It runs on SQLite and, under tests/meta/with-postgres.sh, on PostgreSQL (storekit.h).
 */
#define _GNU_SOURCE /* strptime */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "store/store.h"
#include "storekit.h"
#include "testkit.h"

#define BASE62 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define B64URL BASE62 "-_"

/* The ten asymmetric algorithms a profile accepts by default (SPEC §1: "all asymmetric"). */
#define ASYMMETRIC                                                                                 \
    "[\"RS256\",\"RS384\",\"RS512\",\"PS256\",\"PS384\",\"PS512\",\"ES256\",\"ES384\",\"ES512\","  \
    "\"EdDSA\"]"
/* What a profile shows for every field the test does not set. */
#define PROFILE_DEFAULTS                                                                           \
    "\"collection_ids\":[],\"active\":true,\"policy_id\":null,\"key_claim\":null,"                 \
    "\"required_claims\":[\"exp\"],\"allowed_issuers\":[],\"audiences\":[],"                       \
    "\"algorithms\":" ASYMMETRIC ",\"leeway_seconds\":60,\"ip_allow\":[],\"ip_deny\":[],"          \
    "\"token_types\":[]"

/* Keys made once for the whole program: RSA generation is slow, and no test changes them. */
static struct gh_testkey rsa_key, ec_key;
static char *rsa_pem, *ec_jwk;
static const char hmac_secret[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes: HS256's floor */

/* ---- helpers (the fixture itself is tests/kit/storekit.c, shared with test_store_rules.c) ---- */

static char *dump(const json_t *v)
{
    return v != NULL ? json_dumps(v, JSON_SORT_KEYS | JSON_ENCODE_ANY) : strdup("(absent)");
}

/* The id a fixture name stands for (NULL for NULL); a name the fixture lacks fails the test. */
static const char *fx_id(const struct gh_fixture *fx, const char *name)
{
    const char *v = name != NULL ? gh_fx_get(fx, name, strlen(name)) : NULL;
    if (name != NULL && v == NULL)
        fail_msg("the fixture has no %s", name);
    return v;
}

static void open_store(const char *url, struct gh_store **s)
{
    char error[256] = "";
    if (gh_store_open(url, s, error, sizeof error) != GH_OK)
        fail_msg("cannot open %s: %s", url, error);
}

static void fixture_open(struct gh_fixture *fx)
{
    gh_fx_open(fx);
    gh_fx_set(fx, "PEM", rsa_pem);
    gh_fx_set(fx, "JWK", ec_jwk);
    gh_fx_set(fx, "HMAC", hmac_secret);
}

static json_t *must_update(struct gh_store *s, enum gh_kind kind, const char *id, json_t *patch)
{
    struct gh_store_error err = {0};
    json_t *out = NULL;
    uint64_t generation = gh_store_generation(s);
    if (gh_store_update(s, kind, id, patch, NULL, &out, &err) != GH_OK)
        gh_fx_fail_store("update", &err);
    json_decref(patch);
    assert_int_equal(gh_store_generation(s), generation + 1);
    return out;
}

static json_t *must_rotate(struct gh_store *s, const char *profile_id, int64_t grace)
{
    struct gh_store_error err = {0};
    json_t *out = NULL;
    uint64_t generation = gh_store_generation(s);
    if (gh_store_key_rotate(s, profile_id, grace, NULL, &out, &err) != GH_OK)
        gh_fx_fail_store("rotate", &err);
    assert_int_equal(gh_store_generation(s), generation + 1);
    return out;
}

/* Creates an object from a template under the parent the fixture names, and names its id `var`. */
static void fx_create(struct gh_fixture *fx, const char *var, enum gh_kind kind, const char *parent,
                      const char *tmpl)
{
    gh_fx_create(fx, var, kind, fx_id(fx, parent), tmpl);
}

static json_t *must_get(struct gh_store *s, enum gh_kind kind, const char *id)
{
    struct gh_store_error err = {0};
    json_t *out = NULL;
    if (gh_store_get(s, kind, id, &out, &err) != GH_OK)
        gh_fx_fail_store("get", &err);
    return out;
}

/* The "data" of one list call (a new reference). */
static json_t *must_list(struct gh_store *s, enum gh_kind kind, const char *parent)
{
    struct gh_store_error err = {0};
    json_t *page = NULL;
    if (gh_store_list(s, kind, parent, NULL, 1000, &page, &err) != GH_OK)
        gh_fx_fail_store("list", &err);
    assert_true(json_is_null(json_object_get(page, "next")));
    json_t *data = json_incref(json_object_get(page, "data"));
    json_decref(page);
    return data;
}

static json_t *must_export(struct gh_store *s, int secrets)
{
    struct gh_store_error err = {0};
    json_t *out = NULL;
    if (gh_store_export(s, secrets, &out, &err) != GH_OK)
        gh_fx_fail_store("export", &err);
    return out;
}

static void assert_json_equal(const json_t *got, const json_t *want, const char *what)
{
    if (!json_equal(got, want)) {
        char *a = dump(got), *b = dump(want);
        fail_msg("%s:\n got  %s\n want %s", what, a, b);
    }
}

/* Seconds since the epoch of an RFC 3339 UTC timestamp (fractional seconds allowed), or -1. */
static long long rfc3339_seconds(const char *text)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    struct tm tm = {0};
    if (text == NULL || strlen(text) < sizeof shape)
        return -1;
    for (size_t i = 0; i + 1 < sizeof shape; i++) {
        if (shape[i] == 'd' ? text[i] < '0' || text[i] > '9' : text[i] != shape[i])
            return -1;
    }
    const char *rest = text + sizeof shape - 1;
    if (*rest == '.' && rest[1] >= '0' && rest[1] <= '9') {
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
           &tm.tm_min, &tm.tm_sec);
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

/* A timestamp member that is RFC 3339 and within a few seconds of `expected`. */
static void assert_time_near(const json_t *obj, const char *member, long long expected)
{
    long long t = rfc3339_seconds(gh_fx_str(obj, member));
    if (t < 0)
        fail_msg("%s is not an RFC 3339 UTC timestamp: %s", member, gh_fx_str(obj, member));
    if (t < expected - 5 || t > expected + 5)
        fail_msg("%s is %s, not about %lld", member, gh_fx_str(obj, member), expected);
}

/* SPEC §1: prefix, '_', at least 12 base62 characters. */
static void assert_id(const json_t *obj, const char *prefix)
{
    const char *id = gh_fx_str(obj, "id");
    size_t plen = strlen(prefix);
    assert_non_null(id);
    if (strncmp(id, prefix, plen) != 0 || id[plen] != '_' || strlen(id + plen + 1) < 12 ||
        strspn(id + plen + 1, BASE62) != strlen(id + plen + 1))
        fail_msg("\"%s\" is not a %s_ id", id, prefix);
}

/* SPEC §1: "gk_" + 43 base64url characters (32 random bytes). */
static void assert_plain_key(const char *key)
{
    assert_non_null(key);
    assert_int_equal(strlen(key), 46);
    assert_memory_equal(key, "gk_", 3);
    assert_int_equal(strspn(key + 3, B64URL), 43);
}

static void sha256_hex(const char *text, char hex[65])
{
    unsigned char digest[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(text, strlen(text), digest, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
    for (unsigned i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", digest[i]);
}

/* 1 when the JSON text of `v` contains `needle` anywhere (a secret must never be shown). */
static int shows(const json_t *v, const char *needle)
{
    char *text = dump(v);
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* The member `id` of `list` whose "id" is `id`, or NULL. */
static json_t *find_id(const json_t *list, const char *id)
{
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        if (gh_fx_str(item, "id") != NULL && strcmp(gh_fx_str(item, "id"), id) == 0)
            return item;
    }
    return NULL;
}

/* An export without what changes on every write or import: the generation and updated_at. */
static void strip_volatile(json_t *doc)
{
    const char *kind;
    json_t *list, *item;
    size_t i;
    json_object_del(doc, "generation");
    json_object_foreach (doc, kind, list) {
        json_array_foreach (list, i, item)
            json_object_del(item, "updated_at");
    }
}

/* ---- create, get, list, update, delete of every kind ---- */

struct crud_case {
    const char *what;
    enum gh_kind kind;
    const char *prefix; /* of the id */
    const char *parent; /* fixture name of the parent (endpoints) */
    const char *input;  /* templates, see gh_fx_expand() */
    const char *shown;  /* every field shown, without id and timestamps: the defaults filled in */
    const char *patch;
};

#define PROFILE(auth, extra)                                                                       \
    "{\"client_id\":$CLI,\"name\":\"p\",\"auth_type\":\"" auth "\"" extra "}"
#define PROFILE_SHOWN(auth, extra)                                                                 \
    "{\"client_id\":$CLI,\"name\":\"p\",\"auth_type\":\"" auth "\"," PROFILE_DEFAULTS extra "}"
#define DISCOVERY "\"https://idp.example.com/.well-known/openid-configuration\""

static const struct crud_case crud_cases[] = {
    {"collection", GH_KIND_COLLECTION, "col", NULL,
     "{\"name\":\"Orders\",\"path\":\"/orders/v1\","
     "\"upstream\":\"https://orders.internal:8443/api\"}",
     "{\"name\":\"Orders\",\"version\":\"v1\",\"path\":\"/orders/v1\","
     "\"upstream\":\"https://orders.internal:8443/api\",\"active\":true,"
     "\"forward_authorization\":true,\"timeout_ms\":30000,\"upstream_ca\":null}",
     "{\"timeout_ms\":5000,\"active\":false,\"forward_authorization\":false,\"version\":\"v2\"}"},
    {"endpoint", GH_KIND_ENDPOINT, "ep", "COL", "{\"method\":\"GET\",\"path\":\"/items/:id\"}",
     "{\"collection_id\":$COL,\"method\":\"GET\",\"path\":\"/items/:id\",\"name\":null,"
     "\"active\":true,\"timeout_ms\":null}",
     "{\"name\":\"Get an item\",\"timeout_ms\":1500,\"method\":\"ANY\",\"path\":\"/files/*\"}"},
    {"client", GH_KIND_CLIENT, "cli", NULL, "{\"name\":\"Acme\"}",
     "{\"name\":\"Acme\",\"description\":\"\",\"active\":true}",
     "{\"description\":\"two\\nlines\",\"active\":false,\"name\":\"Acme Corp\"}"},
    {"policy", GH_KIND_POLICY, "pol", NULL,
     "{\"name\":\"Gold\",\"rate_limit\":{\"requests\":100,\"per_seconds\":60}}",
     "{\"name\":\"Gold\",\"rate_limit\":{\"requests\":100,\"per_seconds\":60},\"quota\":null}",
     "{\"quota\":{\"requests\":100000,\"per_seconds\":86400},\"rate_limit\":null}"},
    {"token profile", GH_KIND_PROFILE, "ap", NULL, PROFILE("token", ""),
     PROFILE_SHOWN("token", ",\"oidc_discovery_url\":null,\"oidc_jwks_uri\":null"),
     "{\"collection_ids\":[$COL],\"policy_id\":$POL,"
     "\"ip_allow\":[\"10.0.0.0/8\",\"2001:db8::/32\"],\"ip_deny\":[\"10.1.2.3\"]}"},
    {"oidc profile (discovery)", GH_KIND_PROFILE, "ap", NULL,
     PROFILE("oidc", ",\"oidc_discovery_url\":" DISCOVERY),
     PROFILE_SHOWN("oidc", ",\"oidc_discovery_url\":" DISCOVERY ",\"oidc_jwks_uri\":null"),
     "{\"audiences\":[\"api://orders\"],\"leeway_seconds\":300,"
     "\"key_claim\":\"https://gatehouse.dev/key\","
     "\"allowed_issuers\":[\"https://idp.example.com\"],"
     "\"token_types\":[\"at+jwt\",\"application/jwt\"]}"},
    {"oidc profile (jwks_uri)", GH_KIND_PROFILE, "ap", NULL,
     PROFILE("oidc", ",\"oidc_jwks_uri\":\"https://idp.example.com/jwks\""),
     PROFILE_SHOWN(
         "oidc", ",\"oidc_discovery_url\":null,\"oidc_jwks_uri\":\"https://idp.example.com/jwks\""),
     "{\"oidc_jwks_uri\":null,\"oidc_discovery_url\":" DISCOVERY ",\"algorithms\":[\"ES256\"]}"},
    {"jwt profile (PEM)", GH_KIND_PROFILE, "ap", NULL, PROFILE("jwt", ",\"jwt_key\":$PEM"),
     PROFILE_SHOWN("jwt", ",\"oidc_discovery_url\":null,\"oidc_jwks_uri\":null"),
     "{\"algorithms\":[\"RS256\",\"PS256\"],\"required_claims\":[]}"},
    {"jwt profile (JWK)", GH_KIND_PROFILE, "ap", NULL, PROFILE("jwt", ",\"jwt_key\":$JWK"),
     PROFILE_SHOWN("jwt", ",\"oidc_discovery_url\":null,\"oidc_jwks_uri\":null"),
     "{\"algorithms\":[\"ES256\"],\"active\":false}"},
    {"jwt profile (HMAC)", GH_KIND_PROFILE, "ap", NULL,
     PROFILE("jwt", ",\"algorithms\":[\"HS256\"],\"jwt_key\":$HMAC"),
     "{\"client_id\":$CLI,\"name\":\"p\",\"auth_type\":\"jwt\",\"collection_ids\":[],"
     "\"active\":true,\"policy_id\":null,\"key_claim\":null,\"required_claims\":[\"exp\"],"
     "\"allowed_issuers\":[],\"audiences\":[],\"algorithms\":[\"HS256\"],\"leeway_seconds\":60,"
     "\"ip_allow\":[],\"ip_deny\":[],\"token_types\":[],\"oidc_discovery_url\":null,"
     "\"oidc_jwks_uri\":null}",
     "{\"required_claims\":[\"exp\",\"sub\"],\"key_claim\":\"gatehouse_key\"}"},
};

/* What every shown object shares: its id, its timestamps, and never a secret. */
static void check_shown(const struct crud_case *c, const json_t *obj, const json_t *fields,
                        long long now)
{
    assert_id(obj, c->prefix);
    assert_time_near(obj, "created_at", now);
    assert_time_near(obj, "updated_at", now);
    assert_null(json_object_get(obj, "jwt_key"));
    assert_null(json_object_get(obj, "hash"));
    json_t *copy = json_deep_copy(obj);
    json_object_del(copy, "id");
    json_object_del(copy, "created_at");
    json_object_del(copy, "updated_at");
    json_object_del(copy, "key");
    assert_json_equal(copy, fields, c->what);
    json_decref(copy);
}

/* get and list show `obj` as it is (minus the one-time "key"). */
static void check_read_back(struct gh_fixture *fx, const struct crud_case *c, const json_t *obj)
{
    json_t *want = json_deep_copy(obj), *got = must_get(fx->s, c->kind, gh_fx_str(obj, "id"));
    json_object_del(want, "key");
    assert_json_equal(got, want, c->what);
    json_t *all = must_list(fx->s, c->kind, NULL);
    assert_json_equal(find_id(all, gh_fx_str(obj, "id")), want, c->what);
    if (c->parent != NULL) {
        json_t *mine = must_list(fx->s, c->kind, fx_id(fx, c->parent));
        assert_json_equal(find_id(mine, gh_fx_str(obj, "id")), want, c->what);
        json_decref(mine);
    }
    json_decref(all);
    json_decref(got);
    json_decref(want);
}

static void run_crud_case(const struct crud_case *c)
{
    struct gh_fixture fx;
    struct gh_store_error err = {0};
    json_t *fields, *created, *updated, *gone = NULL;
    long long now = (long long)time(NULL);

    fixture_open(&fx);
    fx_create(&fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    fx_create(&fx, "POL", GH_KIND_POLICY, NULL, "{\"name\":\"basic\"}");
    fx_create(&fx, "COL", GH_KIND_COLLECTION, NULL,
              "{\"name\":\"shop\",\"path\":\"/shop\",\"upstream\":\"http://shop.internal\"}");
    fields = gh_fx_expand(&fx, c->shown);
    created = gh_fx_must_create(fx.s, c->kind, fx_id(&fx, c->parent), gh_fx_expand(&fx, c->input));
    check_shown(c, created, fields, now);
    assert_string_equal(gh_fx_str(created, "created_at"), gh_fx_str(created, "updated_at"));
    if (c->kind == GH_KIND_PROFILE)
        assert_plain_key(gh_fx_str(created, "key"));
    else
        assert_null(json_object_get(created, "key"));
    check_read_back(&fx, c, created);

    json_t *patch = gh_fx_expand(&fx, c->patch);
    json_object_update(fields, patch);
    updated = must_update(fx.s, c->kind, gh_fx_str(created, "id"), patch);
    check_shown(c, updated, fields, now);
    assert_string_equal(gh_fx_str(updated, "id"), gh_fx_str(created, "id"));
    assert_string_equal(gh_fx_str(updated, "created_at"), gh_fx_str(created, "created_at"));
    check_read_back(&fx, c, updated);

    gh_fx_must_delete(fx.s, c->kind, gh_fx_str(created, "id"));
    assert_int_not_equal(gh_store_get(fx.s, c->kind, gh_fx_str(created, "id"), &gone, &err), GH_OK);
    assert_int_equal(err.status, 404);
    assert_null(gone);
    json_t *all = must_list(fx.s, c->kind, NULL);
    assert_null(find_id(all, gh_fx_str(created, "id")));
    json_decref(all);
    json_decref(fields);
    json_decref(created);
    json_decref(updated);
    gh_fx_close(&fx);
}

static void test_crud_every_kind(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof crud_cases / sizeof crud_cases[0]; i++) {
        print_message("  %s\n", crud_cases[i].what);
        run_crud_case(&crud_cases[i]);
    }
}

/* jwt_key is write-only (SPEC §1): kept for the gateway, shown only in a secret export. */
static void test_jwt_key_write_only(void **state)
{
    struct gh_fixture *fx = *state;
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    fx_create(fx, "PRF", GH_KIND_PROFILE, NULL, PROFILE("jwt", ",\"jwt_key\":$PEM"));
    json_t *plain = must_export(fx->s, 0), *secret = must_export(fx->s, 1), *all = NULL;
    json_t *got = must_get(fx->s, GH_KIND_PROFILE, fx_id(fx, "PRF"));
    struct gh_store_error err = {0};

    assert_false(shows(plain, "BEGIN PUBLIC KEY"));
    assert_false(shows(got, "BEGIN PUBLIC KEY"));
    json_t *profile = find_id(json_object_get(secret, "profiles"), fx_id(fx, "PRF"));
    assert_string_equal(gh_fx_str(profile, "jwt_key"), rsa_pem);
    assert_int_equal(gh_store_load_all(fx->s, &all, &err), GH_OK);
    profile = find_id(json_object_get(all, "profiles"), fx_id(fx, "PRF"));
    assert_string_equal(gh_fx_str(profile, "jwt_key"), rsa_pem);
    assert_int_equal(json_integer_value(json_object_get(all, "generation")),
                     gh_store_generation(fx->s));
    /* an update that does not name jwt_key keeps it */
    json_decref(
        must_update(fx->s, GH_KIND_PROFILE, fx_id(fx, "PRF"), gh_fx_parse("{\"active\":false}")));
    json_decref(secret);
    secret = must_export(fx->s, 1);
    profile = find_id(json_object_get(secret, "profiles"), fx_id(fx, "PRF"));
    assert_string_equal(gh_fx_str(profile, "jwt_key"), rsa_pem);
    json_decref(plain);
    json_decref(secret);
    json_decref(all);
    json_decref(got);
}

/* ---- lists ---- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Follows the cursors from the start; every id comes once, in id order. Returns the page count. */
static size_t walk_pages(struct gh_store *s, int limit, char **ids, size_t n)
{
    char after[64] = "";
    size_t seen = 0, pages = 0;
    for (;;) {
        struct gh_store_error err = {0};
        json_t *page = NULL, *item;
        size_t i;
        if (gh_store_list(s, GH_KIND_CLIENT, NULL, after[0] ? after : NULL, limit, &page, &err))
            gh_fx_fail_store("list", &err);
        pages++;
        json_array_foreach (json_object_get(page, "data"), i, item) {
            assert_true(seen < n);
            assert_string_equal(gh_fx_str(item, "id"), ids[seen++]);
        }
        const json_t *next = json_object_get(page, "next");
        int last = json_is_null(next);
        if (!last) {
            assert_string_equal(json_string_value(next), ids[seen - 1]);
            snprintf(after, sizeof after, "%s", json_string_value(next));
        }
        json_decref(page);
        if (last)
            break;
    }
    assert_int_equal(seen, n);
    return pages;
}

static void test_list_paging(void **state)
{
    struct gh_fixture *fx = *state;
    char *ids[101], name[32];
    for (size_t i = 0; i < 101; i++) {
        snprintf(name, sizeof name, "client %zu", i);
        json_t *out =
            gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, json_pack("{s:s}", "name", name));
        ids[i] = strdup(gh_fx_str(out, "id"));
        json_decref(out);
        if (i == 24) { /* 25 objects, 10 a page: 10 + 10 + 5 */
            qsort(ids, 25, sizeof ids[0], compare_strings);
            assert_int_equal(walk_pages(fx->s, 10, ids, 25), 3);
        }
    }
    qsort(ids, 101, sizeof ids[0], compare_strings);
    assert_int_equal(walk_pages(fx->s, 0, ids, 101), 2); /* 0: the default of 100 */
    assert_int_equal(walk_pages(fx->s, 1000, ids, 101), 1);
    for (size_t i = 0; i < 101; i++)
        free(ids[i]);
}

/* Endpoints list by collection, profiles by client, keys by profile. */
static void test_list_by_parent(void **state)
{
    struct gh_fixture *fx = *state;
    static const char *const upstream = ",\"upstream\":\"http://up\"}";
    char text[128];
    for (int c = 0; c < 2; c++) {
        snprintf(text, sizeof text, "{\"name\":\"c%d\",\"path\":\"/c%d\"%s", c, c, upstream);
        fx_create(fx, c ? "COL1" : "COL0", GH_KIND_COLLECTION, NULL, text);
    }
    fx_create(fx, "E0", GH_KIND_ENDPOINT, "COL0", "{\"method\":\"GET\",\"path\":\"/\"}");
    fx_create(fx, "E1", GH_KIND_ENDPOINT, "COL1", "{\"method\":\"GET\",\"path\":\"/\"}");
    fx_create(fx, "E2", GH_KIND_ENDPOINT, "COL1", "{\"method\":\"POST\",\"path\":\"/\"}");
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"a\"}");
    fx_create(fx, "CLI2", GH_KIND_CLIENT, NULL, "{\"name\":\"b\"}");
    fx_create(fx, "P0", GH_KIND_PROFILE, NULL, PROFILE("token", ""));
    fx_create(fx, "P1", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI2,\"name\":\"q\",\"auth_type\":\"token\"}");
    json_t *l0 = must_list(fx->s, GH_KIND_ENDPOINT, fx_id(fx, "COL0"));
    json_t *l1 = must_list(fx->s, GH_KIND_ENDPOINT, fx_id(fx, "COL1"));
    json_t *lp = must_list(fx->s, GH_KIND_PROFILE, fx_id(fx, "CLI2"));
    json_t *lk = must_list(fx->s, GH_KIND_KEY, fx_id(fx, "P0"));
    json_t *all = must_list(fx->s, GH_KIND_KEY, NULL);
    assert_int_equal(json_array_size(l0), 1);
    assert_non_null(find_id(l0, fx_id(fx, "E0")));
    assert_int_equal(json_array_size(l1), 2);
    assert_null(find_id(l1, fx_id(fx, "E0")));
    assert_int_equal(json_array_size(lp), 1);
    assert_non_null(find_id(lp, fx_id(fx, "P1")));
    assert_int_equal(json_array_size(lk), 1);
    assert_string_equal(gh_fx_str(json_array_get(lk, 0), "profile_id"), fx_id(fx, "P0"));
    assert_int_equal(json_array_size(all), 2);
    json_decref(l0);
    json_decref(l1);
    json_decref(lp);
    json_decref(lk);
    json_decref(all);
}

/* ---- access profile keys ---- */

/* The profile's keys as listed (a new reference), none showing a plain key or a hash. */
static json_t *profile_keys(struct gh_store *s, const char *profile_id)
{
    json_t *keys = must_list(s, GH_KIND_KEY, profile_id), *key;
    size_t i;
    json_array_foreach (keys, i, key) {
        assert_id(key, "key");
        assert_string_equal(gh_fx_str(key, "profile_id"), profile_id);
        assert_null(json_object_get(key, "key"));
        assert_null(json_object_get(key, "hash"));
    }
    return keys;
}

/* The hash the secret export keeps for key `key_id`, checked to be sha256(plain) when given. */
static void assert_key_hash(struct gh_store *s, const char *key_id, const char *plain)
{
    json_t *doc = must_export(s, 1);
    json_t *key = find_id(json_object_get(doc, "keys"), key_id);
    char hex[65];
    assert_non_null(key);
    sha256_hex(plain, hex);
    assert_string_equal(gh_fx_str(key, "hash"), hex);
    assert_false(shows(doc, plain)); /* only the hash is kept */
    json_decref(doc);
}

static void test_key_shown_once(void **state)
{
    struct gh_fixture *fx = *state;
    long long now = (long long)time(NULL);
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    json_t *created =
        gh_fx_must_create(fx->s, GH_KIND_PROFILE, NULL, gh_fx_expand(fx, PROFILE("token", "")));
    const char *plain = gh_fx_str(created, "key"), *id = gh_fx_str(created, "id");
    assert_plain_key(plain);

    json_t *got = must_get(fx->s, GH_KIND_PROFILE, id),
           *list = must_list(fx->s, GH_KIND_PROFILE, NULL);
    json_t *keys = profile_keys(fx->s, id), *plain_export = must_export(fx->s, 0);
    assert_false(shows(got, plain));
    assert_false(shows(list, plain));
    assert_false(shows(keys, plain));
    assert_false(shows(plain_export, plain));
    assert_false(shows(plain_export, "\"hash\""));
    assert_null(json_object_get(got, "key"));
    assert_int_equal(json_array_size(keys), 1);
    json_t *key = json_array_get(keys, 0);
    assert_memory_equal(gh_fx_str(key, "prefix"), plain, 8);
    assert_int_equal(strlen(gh_fx_str(key, "prefix")), 8);
    assert_time_near(key, "created_at", now);
    assert_true(json_is_null(json_object_get(key, "expires_at")));
    json_t *one = must_get(fx->s, GH_KIND_KEY, gh_fx_str(key, "id"));
    assert_json_equal(one, key, "get key");
    assert_key_hash(fx->s, gh_fx_str(key, "id"), plain);
    json_decref(one);
    json_decref(got);
    json_decref(list);
    json_decref(keys);
    json_decref(plain_export);
    json_decref(created);
}

/* Without grace the new key is the only one left, at once (SPEC §1). */
static void test_key_rotate_without_grace(void **state)
{
    struct gh_fixture *fx = *state;
    char old_hash[65];
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    json_t *created =
        gh_fx_must_create(fx->s, GH_KIND_PROFILE, NULL, gh_fx_expand(fx, PROFILE("token", "")));
    const char *id = gh_fx_str(created, "id");
    sha256_hex(gh_fx_str(created, "key"), old_hash);

    json_t *rotated = must_rotate(fx->s, id, 0);
    assert_id(rotated, "key");
    assert_plain_key(gh_fx_str(rotated, "key"));
    assert_string_not_equal(gh_fx_str(rotated, "key"), gh_fx_str(created, "key"));
    assert_null(json_object_get(rotated, "hash"));
    json_t *keys = profile_keys(fx->s, id);
    assert_int_equal(json_array_size(keys), 1);
    assert_string_equal(gh_fx_str(json_array_get(keys, 0), "id"), gh_fx_str(rotated, "id"));
    assert_key_hash(fx->s, gh_fx_str(rotated, "id"), gh_fx_str(rotated, "key"));
    json_t *doc = must_export(fx->s, 1);
    assert_false(shows(doc, old_hash));
    json_decref(doc);

    /* creating a key through gh_store_create is the same rotation */
    json_t *made = gh_fx_must_create(fx->s, GH_KIND_KEY, id, NULL);
    assert_plain_key(gh_fx_str(made, "key"));
    json_decref(keys);
    keys = profile_keys(fx->s, id);
    assert_int_equal(json_array_size(keys), 1);
    assert_string_equal(gh_fx_str(json_array_get(keys, 0), "id"), gh_fx_str(made, "id"));
    json_decref(made);
    json_decref(keys);
    json_decref(rotated);
    json_decref(created);
}

/* The only key of `keys` other than `new_id`. */
static json_t *other_key(const json_t *keys, const char *new_id)
{
    json_t *found = NULL, *key;
    size_t i;
    json_array_foreach (keys, i, key) {
        if (strcmp(gh_fx_str(key, "id"), new_id) != 0)
            found = key;
    }
    assert_non_null(found);
    return found;
}

static void test_key_rotate_with_grace(void **state)
{
    struct gh_fixture *fx = *state;
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    json_t *created =
        gh_fx_must_create(fx->s, GH_KIND_PROFILE, NULL, gh_fx_expand(fx, PROFILE("token", "")));
    const char *id = gh_fx_str(created, "id");
    long long now = (long long)time(NULL);

    json_t *rotated = must_rotate(fx->s, id, 300);
    json_t *keys = profile_keys(fx->s, id);
    assert_int_equal(json_array_size(keys), 2);
    json_t *fresh = find_id(keys, gh_fx_str(rotated, "id")),
           *old = other_key(keys, gh_fx_str(rotated, "id"));
    assert_true(json_is_null(json_object_get(fresh, "expires_at")));
    assert_time_near(old, "expires_at", now + 300);
    assert_key_hash(fx->s, gh_fx_str(old, "id"), gh_fx_str(created, "key"));
    assert_key_hash(fx->s, gh_fx_str(rotated, "id"), gh_fx_str(rotated, "key"));
    json_decref(keys);
    json_decref(rotated);
    json_decref(created);
}

/* Keys whose grace is over are removed by the next rotation, so rotations never pile them up. */
static void test_key_rotate_drops_expired_keys(void **state)
{
    struct gh_fixture *fx = *state;
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    fx_create(fx, "PRF", GH_KIND_PROFILE, NULL, PROFILE("token", ""));
    const char *id = fx_id(fx, "PRF");

    json_t *second = must_rotate(fx->s, id, 1); /* the first key expires in a second */
    json_t *keys = profile_keys(fx->s, id);
    assert_int_equal(json_array_size(keys), 2);
    json_decref(keys);
    sleep(2);
    json_t *third = must_rotate(fx->s, id, 600);
    keys = profile_keys(fx->s, id);
    /* the expired first key is gone; the second is in its grace; the third is new */
    assert_int_equal(json_array_size(keys), 2);
    assert_non_null(find_id(keys, gh_fx_str(second, "id")));
    assert_non_null(find_id(keys, gh_fx_str(third, "id")));
    json_decref(keys);
    json_decref(second);
    json_decref(third);
}

/* A second rotation with a longer grace must not give the first old key more time. */
static void test_key_rotate_twice_keeps_shorter_expiry(void **state)
{
    struct gh_fixture *fx = *state;
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    fx_create(fx, "PRF", GH_KIND_PROFILE, NULL, PROFILE("token", ""));
    const char *id = fx_id(fx, "PRF");
    json_t *before = profile_keys(fx->s, id);
    char first[64], first_expiry[64];
    snprintf(first, sizeof first, "%s", gh_fx_str(json_array_get(before, 0), "id"));
    long long now = (long long)time(NULL);

    json_t *second = must_rotate(fx->s, id, 300);
    json_t *keys = profile_keys(fx->s, id);
    snprintf(first_expiry, sizeof first_expiry, "%s",
             gh_fx_str(find_id(keys, first), "expires_at"));
    json_t *third = must_rotate(fx->s, id, 3000);
    json_decref(keys);
    keys = profile_keys(fx->s, id);
    assert_int_equal(json_array_size(keys), 3);
    assert_string_equal(gh_fx_str(find_id(keys, first), "expires_at"), first_expiry);
    assert_time_near(find_id(keys, first), "expires_at", now + 300);
    assert_time_near(find_id(keys, gh_fx_str(second, "id")), "expires_at", now + 3000);
    assert_true(json_is_null(json_object_get(find_id(keys, gh_fx_str(third, "id")), "expires_at")));
    json_decref(keys);
    json_decref(before);
    json_decref(second);
    json_decref(third);
}

static void test_profile_delete_removes_keys(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store_error err = {0};
    json_t *gone = NULL;
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"owner\"}");
    fx_create(fx, "PRF", GH_KIND_PROFILE, NULL, PROFILE("token", ""));
    fx_create(fx, "KEEP", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI,\"name\":\"keep\",\"auth_type\":\"token\"}");
    json_t *rotated = must_rotate(fx->s, fx_id(fx, "PRF"), 300);
    gh_fx_must_delete(fx->s, GH_KIND_PROFILE, fx_id(fx, "PRF"));
    json_t *keys = must_list(fx->s, GH_KIND_KEY, fx_id(fx, "PRF"));
    json_t *all = must_list(fx->s, GH_KIND_KEY, NULL), *doc = must_export(fx->s, 1);
    assert_int_equal(json_array_size(keys), 0);
    assert_int_equal(json_array_size(all), 1); /* only the other profile's key */
    assert_string_equal(gh_fx_str(json_array_get(all, 0), "profile_id"), fx_id(fx, "KEEP"));
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 1);
    assert_int_not_equal(gh_store_get(fx->s, GH_KIND_KEY, gh_fx_str(rotated, "id"), &gone, &err),
                         GH_OK);
    assert_int_equal(err.status, 404);
    json_decref(keys);
    json_decref(all);
    json_decref(doc);
    json_decref(rotated);
}

/* ---- export and import ---- */

/* A configuration with one of everything, some keys in grace. */
static void build_config(struct gh_fixture *fx)
{
    fx_create(fx, "POL", GH_KIND_POLICY, NULL,
              "{\"name\":\"gold\",\"rate_limit\":{\"requests\":10,\"per_seconds\":1}}");
    fx_create(fx, "CLI", GH_KIND_CLIENT, NULL, "{\"name\":\"acme\",\"description\":\"a\\nb\"}");
    fx_create(fx, "COL", GH_KIND_COLLECTION, NULL,
              "{\"name\":\"shop\",\"path\":\"/shop\",\"upstream\":\"http://shop:8080/v1\"}");
    fx_create(fx, "EP", GH_KIND_ENDPOINT, "COL", "{\"method\":\"GET\",\"path\":\"/items/:id\"}");
    fx_create(fx, "TOK", GH_KIND_PROFILE, NULL,
              PROFILE("token", ",\"collection_ids\":[$COL],\"policy_id\":$POL"));
    fx_create(fx, "OIDC", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI,\"name\":\"web\",\"auth_type\":\"oidc\","
              "\"oidc_discovery_url\":" DISCOVERY "}");
    fx_create(fx, "JWT", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI,\"name\":\"pem\",\"auth_type\":\"jwt\",\"jwt_key\":$PEM}");
    fx_create(fx, "HS", GH_KIND_PROFILE, NULL,
              "{\"client_id\":$CLI,\"name\":\"hs\",\"auth_type\":\"jwt\",\"jwt_key\":$HMAC,"
              "\"algorithms\":[\"HS256\"]}");
    json_decref(must_rotate(fx->s, fx_id(fx, "TOK"), 600));
}

static json_t *must_import(struct gh_store *s, const json_t *doc)
{
    struct gh_store_error err = {0};
    json_t *summary = NULL;
    uint64_t generation = gh_store_generation(s);
    if (gh_store_import(s, doc, NULL, NULL, &summary, &err) != GH_OK)
        gh_fx_fail_store("import", &err);
    assert_int_equal(gh_store_generation(s), generation + 1);
    assert_int_equal(json_integer_value(json_object_get(summary, "generation")), generation + 1);
    return summary;
}

static void test_export_import_round_trip(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_fixture other;
    build_config(fx);
    json_t *first = must_export(fx->s, 1);
    assert_int_equal(json_integer_value(json_object_get(first, "generation")),
                     gh_store_generation(fx->s));

    fixture_open(&other);
    json_t *summary = must_import(other.s, first);
    assert_int_equal(json_integer_value(json_object_get(summary, "profiles")), 4);
    assert_int_equal(json_integer_value(json_object_get(summary, "keys")), 5);
    json_t *second = must_export(other.s, 1);
    strip_volatile(first);
    strip_volatile(second);
    assert_json_equal(second, first, "export after import");
    gh_fx_close(&other);
    json_decref(summary);
    json_decref(first);
    json_decref(second);
}

/* A document without "keys" keeps the keys of the profiles that remain, and only theirs. */
static void test_import_without_keys_keeps_keys(void **state)
{
    struct gh_fixture *fx = *state;
    build_config(fx);
    json_t *before = must_export(fx->s, 1), *doc = json_deep_copy(before);
    const char *dropped = fx_id(fx, "HS");
    json_t *profiles = json_object_get(doc, "profiles"), *item;
    size_t i, kept = 0;
    json_object_del(doc, "keys");
    json_array_foreach (profiles, i, item) {
        if (strcmp(gh_fx_str(item, "id"), dropped) == 0)
            break;
    }
    assert_int_equal(json_array_remove(profiles, i), 0);
    json_decref(must_import(fx->s, doc));

    json_t *after = must_export(fx->s, 1), *key;
    json_array_foreach (json_object_get(before, "keys"), i, key) {
        json_t *now = find_id(json_object_get(after, "keys"), gh_fx_str(key, "id"));
        if (strcmp(gh_fx_str(key, "profile_id"), dropped) == 0) {
            assert_null(now);
            continue;
        }
        assert_json_equal(now, key, "kept key");
        kept++;
    }
    assert_int_equal(json_array_size(json_object_get(after, "keys")), kept);
    assert_int_equal(kept, 4); /* the token profile's two, the oidc and the PEM profile's one */
    json_decref(before);
    json_decref(after);
    json_decref(doc);
}

/* Issue 10, item 13: an apply that leaves objects out is refused without prune, with the plan of
 * what it would delete; a dry run answers the plan and the counts and changes nothing. */
static void test_import_prune_and_dry_run(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store_error err = {0};
    json_t *summary = NULL, *item;
    size_t i;
    build_config(fx);
    json_t *before = must_export(fx->s, 1), *doc = json_deep_copy(before);
    json_t *profiles = json_object_get(doc, "profiles");
    uint64_t generation = gh_store_generation(fx->s);
    json_array_foreach (profiles, i, item) {
        if (strcmp(gh_fx_str(item, "id"), fx_id(fx, "HS")) == 0)
            break;
    }
    assert_int_equal(json_array_remove(profiles, i), 0);
    json_object_del(doc, "keys"); /* the kept keys follow the dropped profile out */

    const struct gh_import_options keep = {0, 0}, dry = {1, 1};
    assert_int_not_equal(gh_store_import(fx->s, doc, &keep, NULL, &summary, &err), GH_OK);
    assert_int_equal(err.status, 409);
    assert_non_null(strstr(err.message, "?prune=true"));
    assert_null(json_object_get(summary, "new_keys")); /* nothing was made */
    json_t *plan = json_object_get(summary, "plan");
    json_t *deleted = json_object_get(json_object_get(plan, "profiles"), "deleted");
    assert_int_equal(json_array_size(deleted), 1);
    assert_string_equal(gh_fx_str(json_array_get(deleted, 0), "id"), fx_id(fx, "HS"));
    assert_string_equal(gh_fx_str(json_array_get(deleted, 0), "name"), "hs");
    assert_int_equal(json_array_size(json_object_get(json_object_get(plan, "keys"), "deleted")), 1);
    assert_int_equal(gh_store_generation(fx->s), generation);
    json_decref(summary);

    summary = NULL;
    assert_int_equal(gh_store_import(fx->s, doc, &dry, NULL, &summary, &err), GH_OK);
    assert_true(json_is_true(json_object_get(summary, "dry_run")));
    assert_int_equal(json_integer_value(json_object_get(summary, "profiles")),
                     json_array_size(profiles));
    assert_int_equal(gh_store_generation(fx->s), generation);
    json_t *after = must_export(fx->s, 1);
    assert_json_equal(after, before, "a dry run changes nothing");
    json_decref(summary);
    json_decref(after);
    json_decref(before);
    json_decref(doc);
}

/* Issue 10, items 13 and 14: a new profile that ends up without a key gets one, shown once; the
 * counts are what the store holds afterwards, not the lengths of the document's lists. */
static void test_import_keys_new_profiles(void **state)
{
    struct gh_fixture *fx = *state;
    build_config(fx);
    json_t *doc = must_export(fx->s, 0);
    size_t keys = json_array_size(json_object_get(doc, "keys"));
    json_object_del(doc, "keys");
    json_array_append_new(json_object_get(doc, "profiles"),
                          json_pack("{s:s, s:s, s:s, s:s}", "id", "ap_000000000000new", "client_id",
                                    fx_id(fx, "CLI"), "name", "new", "auth_type", "token"));
    json_t *summary = must_import(fx->s, doc);
    json_t *made = json_object_get(summary, "new_keys");
    assert_int_equal(json_array_size(made), 1);
    const char *plain = gh_fx_str(json_array_get(made, 0), "key");
    assert_non_null(plain);
    assert_int_equal(strncmp(plain, "gk_", 3), 0);
    assert_string_equal(gh_fx_str(json_array_get(made, 0), "profile_id"), "ap_000000000000new");
    assert_string_equal(gh_fx_str(json_array_get(made, 0), "profile_name"), "new");
    assert_int_equal(json_integer_value(json_object_get(summary, "keys")), keys + 1);
    json_t *listed = must_list(fx->s, GH_KIND_KEY, "ap_000000000000new");
    assert_int_equal(json_array_size(listed), 1);
    assert_int_equal(strncmp(gh_fx_str(json_array_get(listed, 0), "prefix"), plain, 8), 0);
    json_decref(listed);
    json_decref(summary);
    summary = must_import(fx->s, doc); /* again: the profile has its key now */
    assert_int_equal(json_array_size(json_object_get(summary, "new_keys")), 0);
    assert_int_equal(json_integer_value(json_object_get(summary, "keys")), keys + 1);
    json_decref(summary);
    json_decref(doc);
}

/* The audit log of item 22: newest first, by object or kind, paged by cursor. */
static void test_audit_list(void **state)
{
    struct gh_fixture *fx = *state;
    struct gh_store_error err = {0};
    json_t *page = NULL, *out = NULL, *patch = gh_fx_parse("{\"description\":\"x\"}");
    build_config(fx);
    const char *cli = fx_id(fx, "CLI");
    assert_int_equal(gh_store_update(fx->s, GH_KIND_CLIENT, cli, patch, NULL, &out, &err), GH_OK);
    json_decref(out);
    assert_int_equal(gh_store_audit_list(fx->s, NULL, cli, NULL, 0, &page, &err), GH_OK);
    json_t *data = json_object_get(page, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_string_equal(gh_fx_str(json_array_get(data, 0), "action"), "update");
    assert_string_equal(gh_fx_str(json_array_get(data, 1), "action"), "create");
    assert_string_equal(gh_fx_str(json_array_get(data, 0), "kind"), "clients");
    assert_true(json_is_object(json_object_get(json_array_get(data, 1), "detail")));
    assert_true(json_is_null(json_object_get(page, "next")));
    /* UTC with milliseconds, as every backend writes it: 2026-12-07T22:38:14.123Z */
    const char *at = gh_fx_str(json_array_get(data, 0), "at");
    struct tm tm;
    char *rest = at != NULL ? strptime(at, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (rest == NULL || strlen(rest) != 5 || rest[0] != '.' ||
        strspn(rest + 1, "0123456789") != 3 || rest[4] != 'Z')
        fail_msg("the audit time \"%s\" is not YYYY-MM-DDTHH:MM:SS.mmmZ", at ? at : "(none)");
    json_decref(page);

    assert_int_equal(gh_store_audit_list(fx->s, "client", cli, NULL, 1, &page, &err), GH_OK);
    assert_int_equal(json_array_size(json_object_get(page, "data")), 1);
    char *next = strdup(gh_fx_str(page, "next"));
    json_decref(page);
    assert_int_equal(gh_store_audit_list(fx->s, "clients", cli, next, 1, &page, &err), GH_OK);
    assert_string_equal(gh_fx_str(json_array_get(json_object_get(page, "data"), 0), "action"),
                        "create");
    json_decref(page);
    free(next);
    assert_int_not_equal(gh_store_audit_list(fx->s, NULL, NULL, "nope", 0, &page, &err), GH_OK);
    assert_int_equal(err.status, 422);
    json_decref(patch);
}

/* A non-secret export has no jwt_key: applying it keeps each profile's key from before. */
static void test_import_carries_jwt_key(void **state)
{
    struct gh_fixture *fx = *state;
    build_config(fx);
    json_t *doc = must_export(fx->s, 0);
    json_object_del(doc, "keys"); /* the keys of a public export: see the next test */
    json_decref(must_import(fx->s, doc));
    json_t *after = must_export(fx->s, 1);
    json_t *jwt = find_id(json_object_get(after, "profiles"), fx_id(fx, "JWT"));
    json_t *hs = find_id(json_object_get(after, "profiles"), fx_id(fx, "HS"));
    assert_string_equal(gh_fx_str(jwt, "jwt_key"), rsa_pem);
    assert_string_equal(gh_fx_str(hs, "jwt_key"), hmac_secret);
    json_decref(after);
    json_decref(doc);
}

/*
 * What GET /v1/config answers can be PUT back unchanged (SPEC §6): its keys carry no hash, and must
 * then stay as they are, exactly as a missing jwt_key is carried over.
 */
static void test_import_public_export_as_is(void **state)
{
    struct gh_fixture *fx = *state;
    build_config(fx);
    json_t *before = must_export(fx->s, 1), *doc = must_export(fx->s, 0);
    json_decref(must_import(fx->s, doc));
    json_t *after = must_export(fx->s, 1);
    strip_volatile(before);
    strip_volatile(after);
    assert_json_equal(after, before, "configuration after applying its own public export");
    json_decref(before);
    json_decref(after);
    json_decref(doc);
}

/* ---- strange input, byte for byte ---- */

static void assert_same_bytes(const json_t *v, const char *want, size_t len, const char *what)
{
    if (!json_is_string(v) || json_string_length(v) != len ||
        memcmp(json_string_value(v), want, len) != 0)
        fail_msg("%s did not come back byte for byte", what);
}

/* Creates a client with `name` and `description` and reads both back every way there is. */
static void check_round_trip(struct gh_store *s, const char *name, const char *description)
{
    json_t *input = json_pack("{s:s, s:s}", "name", name, "description", description);
    assert_non_null(input);
    json_t *out = gh_fx_must_create(s, GH_KIND_CLIENT, NULL, input);
    json_t *got = must_get(s, GH_KIND_CLIENT, gh_fx_str(out, "id")),
           *all = must_list(s, GH_KIND_CLIENT, NULL);
    json_t *doc = must_export(s, 0);
    const json_t *seen[] = {out, got, find_id(all, gh_fx_str(out, "id")),
                            find_id(json_object_get(doc, "clients"), gh_fx_str(out, "id"))};
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++) {
        assert_same_bytes(json_object_get(seen[i], "name"), name, strlen(name), name);
        assert_same_bytes(json_object_get(seen[i], "description"), description, strlen(description),
                          description);
    }
    json_decref(out);
    json_decref(got);
    json_decref(all);
    json_decref(doc);
}

static void test_strange_input_byte_exact(void **state)
{
    struct gh_fixture *fx = *state;
    static const char *const names[] = {
        "say \"hello\" and 'bye'",
        "back\\slash \\\\ \\n \\u0041",
        "'; DROP TABLE clients; --",
        "Robert'); DELETE FROM profiles WHERE ('1'='1",
        "%s%n%x {} [] $1 ?1 :name",
        "fox \xF0\x9F\xA6\x8A key \xF0\x9F\x94\x91 family "
        "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
        "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xE2\x80\xAE"
        "abc",
        "e\xCC\x81 a\xCC\x88 Z\xCD\x91\xCD\x92\xCD\x93",
        "\xEF\xBB\xBF"
        "BOM and \xE2\x80\x8B zero width",
    };
    char long_name[1001];
    for (size_t i = 0; i < 250; i++)
        memcpy(long_name + 4 * i, "\xF0\x9F\xA6\x8A", 4); /* 1000 bytes, 250 characters */
    long_name[1000] = '\0';

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_round_trip(fx->s, names[i], "line one\nline two\r\n\ttabbed \"quoted\" \\ end\n");
    check_round_trip(fx->s, long_name, "");
    json_t *all = must_list(fx->s, GH_KIND_CLIENT, NULL);
    assert_int_equal(json_array_size(all), sizeof names / sizeof names[0] + 1);
    json_decref(all);
    /* the same fragment where a column is constrained too */
    json_decref(
        gh_fx_must_create(fx->s, GH_KIND_POLICY, NULL, json_pack("{s:s}", "name", names[2])));
    json_decref(gh_fx_must_create(
        fx->s, GH_KIND_COLLECTION, NULL,
        json_pack("{s:s, s:s, s:s}", "name", names[2], "path", "/x", "upstream", "http://x")));
}

/* ---- a database file ---- */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_int_equal(unlink(path), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

static void test_file_survives_reopen(void **state)
{
    struct gh_fixture *fx = *state;
    const char *url = gh_fx_durable_url(fx);
    gh_store_close(fx->s);
    open_store(url, &fx->s);
    build_config(fx);
    json_t *before = must_export(fx->s, 1);
    uint64_t generation = gh_store_generation(fx->s);
    assert_int_equal(generation, 9);
    gh_store_close(fx->s);

    open_store(url, &fx->s);
    assert_int_equal(gh_store_generation(fx->s), generation);
    assert_int_equal(gh_store_ping(fx->s), 1);
    json_t *after = must_export(fx->s, 1);
    assert_json_equal(after, before, "configuration after reopening");
    json_decref(
        gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"later\"}")));
    gh_store_close(fx->s);
    open_store(url, &fx->s);
    assert_int_equal(gh_store_generation(fx->s), generation + 1);
    json_decref(before);
    json_decref(after);
}

/* Runs `sql` on the database file behind the store (closed meanwhile). */
static void run_sql(const char *file, const char *sql)
{
    sqlite3 *db = NULL;
    char *error = NULL;
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
        fail_msg("%s: %s", sql, error);
    sqlite3_close(db);
}

/* A database written before a field existed gets its default in every document by a numbered
 * migration, so the API shows complete objects and an export applies anywhere. The test takes a
 * database back to schema 4 (the documents lose the fields, the migrations after 4 are forgotten)
 * and opens it again. */
static void test_migrations_fill_new_fields(void **state)
{
    struct gh_fixture *fx = *state;
    char dir[] = "/tmp/gh_test_store_XXXXXX", url[160], file[128];
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/gatehouse.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", file);
    gh_store_close(fx->s);
    open_store(url, &fx->s);
    json_t *client =
        gh_fx_must_create(fx->s, GH_KIND_CLIENT, NULL, gh_fx_parse("{\"name\":\"c\"}"));
    char body[256];
    snprintf(body, sizeof body, "{\"client_id\":\"%s\",\"name\":\"p\",\"auth_type\":\"token\"}",
             gh_fx_str(client, "id"));
    json_t *profile = gh_fx_must_create(fx->s, GH_KIND_PROFILE, NULL, gh_fx_parse(body));
    json_t *collection = gh_fx_must_create(
        fx->s, GH_KIND_COLLECTION, NULL,
        gh_fx_parse("{\"name\":\"c\",\"path\":\"/c\",\"upstream\":\"https://c.internal\"}"));
    gh_store_close(fx->s);
    run_sql(file, "UPDATE profiles SET doc = json_remove(doc, '$.token_types');"
                  "UPDATE collections SET doc = json_remove(doc, '$.upstream_ca');"
                  "DELETE FROM schema_migrations WHERE version > 4;");

    open_store(url, &fx->s);
    json_t *got = must_get(fx->s, GH_KIND_PROFILE, gh_fx_str(profile, "id"));
    json_t *want = json_deep_copy(profile);
    json_object_del(want, "key");
    assert_json_equal(got, want, "profile after the migration");
    assert_int_equal(json_array_size(json_object_get(got, "token_types")), 0);
    assert_non_null(json_object_get(got, "token_types"));
    json_decref(got);
    got = must_get(fx->s, GH_KIND_COLLECTION, gh_fx_str(collection, "id"));
    assert_json_equal(got, collection, "collection after the migration");
    assert_true(json_is_null(json_object_get(got, "upstream_ca")));
    json_decref(collection);
    gh_store_close(fx->s);
    fx->s = NULL;
    remove_tree(dir);
    json_decref(got);
    json_decref(want);
    json_decref(profile);
    json_decref(client);
}

static void assert_cached(struct gh_store *s, const char *url, const struct gh_persisted_keys *want)
{
    const struct gh_oidc_persistence *p = gh_store_persistence(s);
    struct gh_persisted_keys got;
    assert_int_equal(p->load(p->ctx, url, &got), GH_OK);
    if (want->discovery == NULL)
        assert_null(got.discovery);
    else
        assert_string_equal(got.discovery, want->discovery);
    assert_string_equal(got.jwks, want->jwks);
    assert_int_equal(got.fetched_at, want->fetched_at);
    assert_int_equal(got.expires_at, want->expires_at);
    free(got.discovery);
    free(got.jwks);
}

/* SPEC §4: the last good documents per URL outlive a restart; they are no configuration change. */
static void test_provider_cache(void **state)
{
    struct gh_fixture *fx = *state;
    static const char u1[] = "https://idp.example.com/.well-known/openid-configuration";
    static const char u2[] = "https://other.example.com/jwks";
    struct gh_persisted_keys a = {"{\"issuer\":\"https://idp.example.com\"}", "{\"keys\":[]}",
                                  1700000000123, 1700000900123};
    struct gh_persisted_keys b = {NULL, "{\"keys\":[{\"kty\":\"EC\"}]}", 1, 2}, none;
    const char *url = gh_fx_durable_url(fx);
    gh_store_close(fx->s);
    open_store(url, &fx->s);

    const struct gh_oidc_persistence *p = gh_store_persistence(fx->s);
    assert_int_not_equal(p->load(p->ctx, u1, &none), GH_OK); /* nothing kept yet */
    assert_int_equal(p->save(p->ctx, u1, &b), GH_OK);
    assert_int_equal(p->save(p->ctx, u1, &a), GH_OK); /* replaces */
    assert_int_equal(p->save(p->ctx, u2, &b), GH_OK);
    assert_cached(fx->s, u1, &a);
    assert_cached(fx->s, u2, &b);
    assert_int_equal(gh_store_generation(fx->s), 0);
    gh_store_close(fx->s);
    open_store(url, &fx->s);
    assert_cached(fx->s, u1, &a);
    assert_cached(fx->s, u2, &b);
}

struct quota_seen {
    int n;
    char profile[4][32];
    int64_t window[4], count[4];
};

static void see_quota(void *arg, const char *profile_id, int64_t window, int64_t count)
{
    struct quota_seen *q = arg;
    if (q->n < 4) {
        snprintf(q->profile[q->n], sizeof q->profile[q->n], "%s", profile_id);
        q->window[q->n] = window;
        q->count[q->n++] = count;
    }
}

/* SPEC §5: quota counters survive a restart; a save replaces the profile's counter. They are no
 * configuration change. */
static void test_quota_counters(void **state)
{
    struct gh_fixture *fx = *state;
    struct quota_seen seen = {0};
    const char *url = gh_fx_durable_url(fx);
    gh_store_close(fx->s);
    open_store(url, &fx->s);

    assert_int_equal(gh_store_quota_save(fx->s, "ap_one", 7, 3), GH_OK);
    assert_int_equal(gh_store_quota_save(fx->s, "ap_two", 1700000000, 9000000000LL), GH_OK);
    assert_int_equal(gh_store_quota_save(fx->s, "ap_one", 8, 1), GH_OK); /* replaces */
    assert_int_equal(gh_store_generation(fx->s), 0);
    gh_store_close(fx->s);
    open_store(url, &fx->s);
    assert_int_equal(gh_store_quota_load_all(fx->s, see_quota, &seen), GH_OK);
    assert_int_equal(seen.n, 2);
    int one = strcmp(seen.profile[0], "ap_one") == 0 ? 0 : 1;
    assert_string_equal(seen.profile[one], "ap_one");
    assert_int_equal(seen.window[one], 8);
    assert_int_equal(seen.count[one], 1);
    assert_string_equal(seen.profile[1 - one], "ap_two");
    assert_int_equal(seen.window[1 - one], 1700000000);
    assert_int_equal(seen.count[1 - one], 9000000000LL);
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
        gh_testkey_generate(GH_ALG_ES256, "ec", 0, &ec_key) != 0)
        return -1;
    rsa_pem = public_pem(rsa_key.priv);
    ec_jwk = gh_testkey_public_jwk(&ec_key);
    return rsa_pem != NULL && ec_jwk != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(rsa_pem);
    free(ec_jwk);
    gh_testkey_clear(&rsa_key);
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

/* Every test runs on both backends (storekit.h), but the last: SQLite's migrations 5 and 6 fill
 * documents that predate a field, which PostgreSQL stores never had (src/store/pg.c);
 * test_store_pg.c proves PostgreSQL's migrations instead. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud_every_kind),
        T(test_jwt_key_write_only),
        T(test_list_paging),
        T(test_list_by_parent),
        T(test_key_shown_once),
        T(test_key_rotate_without_grace),
        T(test_key_rotate_with_grace),
        T(test_key_rotate_drops_expired_keys),
        T(test_key_rotate_twice_keeps_shorter_expiry),
        T(test_profile_delete_removes_keys),
        T(test_export_import_round_trip),
        T(test_import_without_keys_keeps_keys),
        T(test_import_prune_and_dry_run),
        T(test_import_keys_new_profiles),
        T(test_audit_list),
        T(test_import_carries_jwt_key),
        T(test_import_public_export_as_is),
        T(test_strange_input_byte_exact),
        T(test_file_survives_reopen),
        T(test_provider_cache),
        T(test_quota_counters),
        T(test_migrations_fill_new_fields),
    };
    size_t n = sizeof tests / sizeof tests[0] - (gh_fx_postgres() ? 1 : 0);
    return _cmocka_run_group_tests(gh_fx_postgres() ? "store on PostgreSQL" : "store on SQLite",
                                   tests, n, group_setup, group_teardown);
}
