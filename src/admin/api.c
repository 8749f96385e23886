// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API of SPEC §6: each route's handler turns the request into a store call and the
 * store's answer or refusal into JSON. After every committed change the configuration snapshot is
 * rebuilt and published, so the next request through the gateway sees it (no restart, nothing
 * dropped).
 */
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/app.h"

#include <arpa/inet.h>
#include <strings.h>

#include "gateway/pipeline.h"
#include "gateway/server.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

/* ---- plumbing ---- */

static void store_error(struct gh_admin_response *res, const struct gh_store_error *err)
{
    gh_admin_error(res, err->status, err->code, err->field[0] ? err->field : NULL, "%s",
                   err->message);
}

struct gh_config *gh_app_config(struct gh_app *app)
{
    return (struct gh_config *)gh_snapshot_acquire(&app->config);
}

/* SPEC §1: one provider per URL that oidc profiles use; the others stop being fetched and listed.
 */
static void retain_used_providers(struct gh_app *app, const struct gh_config *config)
{
    struct gh_provider **used;
    size_t n = 0;
    if (app->providers == NULL || config == NULL ||
        (used = calloc(config->n_profiles + 1, sizeof *used)) == NULL)
        return;
    for (size_t i = 0; i < config->n_profiles; i++) {
        if (config->profiles[i].provider != NULL)
            used[n++] = config->profiles[i].provider;
    }
    gh_oidc_retain(app->providers, used, n);
    free(used);
}

/* Reloads run one at a time: handlers run on several work threads, and two reloads interleaved
 * could publish an older build after a newer one. Each loads the store inside the lock, so the
 * last to publish has the latest state. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

const char *const gh_reload_cause_names[GH_RELOAD_CAUSE_COUNT] = {"start", "write", "notify",
                                                                  "poll", "reconnect"};

static int reload(struct gh_app *app);

int gh_app_reload(struct gh_app *app, enum gh_reload_cause cause)
{
    pthread_mutex_lock(&reload_lock);
    int rc = reload(app);
    pthread_mutex_unlock(&reload_lock);
    if (rc == 1) /* published */
        atomic_fetch_add(&app->reloads[cause], 1);
    return rc < 0 ? rc : GH_OK;
}

/* Whether `generation` is the one the published snapshot already carries. */
static int already_published(struct gh_app *app, uint64_t generation)
{
    struct gh_config *current = gh_app_config(app);
    int same = current != NULL && current->generation == generation;
    gh_config_unref(current);
    return same;
}

/* 1 when a new snapshot was published, 0 when the store's generation was already, or an error. */
static int reload(struct gh_app *app)
{
    struct gh_store_error err;
    struct gh_config *config;
    json_t *doc = NULL;
    int rc;

    if ((rc = gh_store_load_all(app->store, &doc, &err)) != GH_OK)
        return rc;
    if (already_published(app, (uint64_t)json_integer_value(json_object_get(doc, "generation")))) {
        json_decref(doc);
        return 0;
    }
    rc = gh_config_build(doc, &config);
    json_decref(doc);
    if (rc != GH_OK)
        return rc;
    /* the snapshot is still private here: wire each oidc profile to its provider, so the data plane
     * never has to look one up */
    for (size_t i = 0; app->providers != NULL && i < config->n_profiles; i++) {
        struct gh_config_profile *p = &config->profiles[i];
        if (p->oidc_discovery_url != NULL)
            gh_oidc_provider_get(app->providers, GH_PROVIDER_DISCOVERY, p->oidc_discovery_url,
                                 &p->provider);
        else if (p->oidc_jwks_uri != NULL)
            gh_oidc_provider_get(app->providers, GH_PROVIDER_JWKS_URI, p->oidc_jwks_uri,
                                 &p->provider);
    }
    retain_used_providers(app, config);
    gh_snapshot_publish(&app->config, &config->snap);
    return 1;
}

static void after_write(struct gh_app *app)
{
    /* the change is committed; a failed rebuild only delays it until the next one */
    if (gh_app_reload(app, GH_RELOAD_WRITE) != GH_OK)
        gh_log(GH_LOG_ERROR, "cannot rebuild the configuration snapshot", NULL);
}

/* SPEC §4: saving an oidc profile fetches and checks its IdP, unless ?validate=false. */
struct check_ctx {
    struct gh_app *app;
};

static int same_url(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static int is_oidc(const json_t *profile)
{
    const char *auth = json_string_value(json_object_get(profile, "auth_type"));
    return auth != NULL && strcmp(auth, "oidc") == 0;
}

/* An absent "active" is the default, true (a profile of an applied document may omit it). */
static int is_active(const json_t *profile)
{
    const json_t *active = json_object_get(profile, "active");
    return active == NULL || json_is_true(active);
}

/*
 * Whether a write must wait for the IdP: only when the profile ends up an active oidc profile and
 * it is new (`before` NULL), or was inactive, or was of another auth type, or names another
 * discovery URL or JWKS URI than it did. So deactivating, deleting, renaming or any change that
 * leaves the IdP alone never depends on an outside service that may be down (issue 10, item 12);
 * what starts using an IdP is checked.
 */
static int needs_idp_check(const json_t *before, const json_t *after)
{
    if (!is_oidc(after) || !is_active(after))
        return 0;
    if (before == NULL || !is_oidc(before) || !is_active(before))
        return 1;
    return !same_url(json_string_value(json_object_get(before, "oidc_discovery_url")),
                     json_string_value(json_object_get(after, "oidc_discovery_url"))) ||
           !same_url(json_string_value(json_object_get(before, "oidc_jwks_uri")),
                     json_string_value(json_object_get(after, "oidc_jwks_uri")));
}

static int check_oidc_profile(void *ctx, const json_t *before, const json_t *profile,
                              struct gh_store_error *err)
{
    struct gh_app *app = ((struct check_ctx *)ctx)->app;
    const char *disc = json_string_value(json_object_get(profile, "oidc_discovery_url"));
    const char *jwks = json_string_value(json_object_get(profile, "oidc_jwks_uri"));
    const char *field = disc != NULL ? "oidc_discovery_url" : "oidc_jwks_uri";
    struct gh_provider *p;
    int rc;

    if (!needs_idp_check(before, profile) || app->providers == NULL)
        return GH_OK;
    rc = gh_oidc_provider_get(app->providers,
                              disc != NULL ? GH_PROVIDER_DISCOVERY : GH_PROVIDER_JWKS_URI,
                              disc != NULL ? disc : jwks, &p);
    if (rc == GH_OK)
        rc = gh_provider_check_now(p, app->validate_timeout_ms);
    if (rc == GH_OK)
        return GH_OK;
    struct gh_config *current =
        gh_app_config(app); /* a refused profile leaves no provider behind */
    json_t *status = p != NULL && rc != GH_ERR_URL_INSECURE && rc != GH_ERR_URL_INVALID
                         ? gh_provider_status(p)
                         : NULL;
    const char *detail = json_string_value(json_object_get(status, "last_error"));
    err->status = 422;
    err->code = "validation_failed";
    snprintf(err->field, sizeof err->field, "%s", field);
    snprintf(err->message, sizeof err->message,
             "%s: %s (save with ?validate=false to skip this check)", field,
             detail != NULL ? detail : gh_error_message(rc));
    json_decref(status);
    retain_used_providers(app, current);
    gh_config_unref(current);
    return GH_ERR_INVALID_ARG;
}

static int wants_validation(const struct gh_admin_request *req)
{
    char *v = gh_admin_query_param(req, "validate");
    int validate = v == NULL || strcmp(v, "false") != 0;
    free(v);
    return validate;
}

/* Who makes a change: the admin API has one token, made by or given to serve, so every change is
 * the bootstrap token's; named admin tokens will name themselves here. */
static struct gh_actor request_actor(const struct gh_admin_request *req)
{
    return (struct gh_actor){req->remote_addr, "bootstrap"};
}

static int query_is_true(const struct gh_admin_request *req, const char *name)
{
    char *v = gh_admin_query_param(req, name);
    int yes = v != NULL && strcmp(v, "true") == 0;
    free(v);
    return yes;
}

static void answer(struct gh_app *app, struct gh_admin_response *res, int rc, json_t *out,
                   const struct gh_store_error *err, int status, int wrote)
{
    if (rc != GH_OK) {
        store_error(res, err);
        return;
    }
    if (wrote)
        after_write(app);
    res->status = status;
    res->body = out;
}

/* ---- objects ---- */

static int parse_limit(const struct gh_admin_request *req, int *limit,
                       struct gh_admin_response *res)
{
    char *text = gh_admin_query_param(req, "limit"), *end = NULL;
    long v = 0;
    *limit = 0;
    if (text == NULL)
        return 1;
    v = strtol(text, &end, 10);
    int ok = end != text && *end == '\0' && text[0] != '-' && text[0] != '+' && v >= 1 && v <= 1000;
    free(text);
    if (!ok) {
        gh_admin_error(res, 422, "validation_failed", "limit",
                       "limit must be a whole number from 1 to 1000");
        return 0;
    }
    *limit = (int)v;
    return 1;
}

static void list_kind(struct gh_app *app, enum gh_kind kind, const char *parent,
                      const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_store_error err;
    json_t *out = NULL;
    int limit;
    if (!parse_limit(req, &limit, res))
        return;
    char *after = gh_admin_query_param(req, "after");
    int rc = gh_store_list(app->store, kind, parent, after, limit, &out, &err);
    free(after);
    answer(app, res, rc, out, &err, 200, 0);
}

static void create_kind(struct gh_app *app, enum gh_kind kind, const char *parent,
                        const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_actor actor = request_actor(req);
    struct check_ctx ctx = {app};
    struct gh_write_options w = {&actor, wants_validation(req) ? check_oidc_profile : NULL, &ctx};
    struct gh_store_error err;
    json_t *body = gh_admin_json_body(req, res), *out = NULL;
    if (body == NULL)
        return;
    int rc = gh_store_create(app->store, kind, parent, body, &w, &out, &err);
    json_decref(body);
    answer(app, res, rc, out, &err, 201, 1);
}

static void get_kind(struct gh_app *app, enum gh_kind kind, const struct gh_admin_request *req,
                     struct gh_admin_response *res)
{
    struct gh_store_error err;
    json_t *out = NULL;
    int rc = gh_store_get(app->store, kind, req->params[0], &out, &err);
    answer(app, res, rc, out, &err, 200, 0);
}

static void update_kind(struct gh_app *app, enum gh_kind kind, const struct gh_admin_request *req,
                        struct gh_admin_response *res)
{
    struct gh_actor actor = request_actor(req);
    struct check_ctx ctx = {app};
    struct gh_write_options w = {&actor, wants_validation(req) ? check_oidc_profile : NULL, &ctx};
    struct gh_store_error err;
    json_t *body = gh_admin_json_body(req, res), *out = NULL;
    if (body == NULL)
        return;
    int rc = gh_store_update(app->store, kind, req->params[0], body, &w, &out, &err);
    json_decref(body);
    answer(app, res, rc, out, &err, 200, 1);
}

static void delete_kind(struct gh_app *app, enum gh_kind kind, const char *id,
                        const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_actor actor = request_actor(req);
    struct gh_write_options w = {&actor, NULL, NULL};
    struct gh_store_error err;
    int rc = gh_store_delete(app->store, kind, id, &w, &err);
    answer(app, res, rc, NULL, &err, 204, 1);
}

#define KIND_HANDLERS(prefix, kind)                                                                \
    static void prefix##_list(void *app, const struct gh_admin_request *req,                       \
                              struct gh_admin_response *res)                                       \
    {                                                                                              \
        list_kind(app, kind, NULL, req, res);                                                      \
    }                                                                                              \
    __attribute__((unused)) static void prefix##_create(                                           \
        void *app, const struct gh_admin_request *req, struct gh_admin_response *res)              \
    {                                                                                              \
        create_kind(app, kind, NULL, req, res);                                                    \
    }                                                                                              \
    static void prefix##_get(void *app, const struct gh_admin_request *req,                        \
                             struct gh_admin_response *res)                                        \
    {                                                                                              \
        get_kind(app, kind, req, res);                                                             \
    }                                                                                              \
    static void prefix##_update(void *app, const struct gh_admin_request *req,                     \
                                struct gh_admin_response *res)                                     \
    {                                                                                              \
        update_kind(app, kind, req, res);                                                          \
    }                                                                                              \
    static void prefix##_delete(void *app, const struct gh_admin_request *req,                     \
                                struct gh_admin_response *res)                                     \
    {                                                                                              \
        delete_kind(app, kind, req->params[0], req, res);                                          \
    }

KIND_HANDLERS(collections, GH_KIND_COLLECTION)
KIND_HANDLERS(endpoints, GH_KIND_ENDPOINT)
KIND_HANDLERS(clients, GH_KIND_CLIENT)
KIND_HANDLERS(profiles, GH_KIND_PROFILE)
KIND_HANDLERS(policies, GH_KIND_POLICY)

/* Endpoints live under their collection: 404 when it does not exist. */
static int collection_exists(struct gh_app *app, const char *id, struct gh_admin_response *res)
{
    struct gh_store_error err;
    json_t *doc = NULL;
    if (gh_store_get(app->store, GH_KIND_COLLECTION, id, &doc, &err) != GH_OK) {
        store_error(res, &err);
        return 0;
    }
    json_decref(doc);
    return 1;
}

static void collection_endpoints_list(void *app, const struct gh_admin_request *req,
                                      struct gh_admin_response *res)
{
    if (collection_exists(app, req->params[0], res))
        list_kind(app, GH_KIND_ENDPOINT, req->params[0], req, res);
}

static void collection_endpoints_create(void *app, const struct gh_admin_request *req,
                                        struct gh_admin_response *res)
{
    create_kind(app, GH_KIND_ENDPOINT, req->params[0], req, res);
}

/* ---- keys ---- */

static int profile_exists(struct gh_app *app, const char *id, struct gh_admin_response *res)
{
    struct gh_store_error err;
    json_t *doc = NULL;
    if (gh_store_get(app->store, GH_KIND_PROFILE, id, &doc, &err) != GH_OK) {
        store_error(res, &err);
        return 0;
    }
    json_decref(doc);
    return 1;
}

static void keys_list(void *app, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    if (profile_exists(app, req->params[0], res))
        list_kind(app, GH_KIND_KEY, req->params[0], req, res);
}

static void keys_create(void *ctx, const struct gh_admin_request *req,
                        struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_actor actor = request_actor(req);
    struct gh_write_options w = {&actor, NULL, NULL};
    struct gh_store_error err;
    json_t *body = NULL, *out = NULL;
    json_int_t grace = 0;

    if (req->body_len > 0) { /* the body is optional: {} or {"grace_seconds": N} */
        const char *key;
        json_t *value;
        if ((body = gh_admin_json_body(req, res)) == NULL)
            return;
        json_object_foreach (body, key, value) {
            if (strcmp(key, "grace_seconds") != 0) {
                gh_admin_error(res, 422, "validation_failed", key, "unknown field \"%.64s\"", key);
                json_decref(body);
                return;
            }
            if (!json_is_integer(value)) {
                gh_admin_error(res, 400, "bad_request", key, "grace_seconds must be an integer");
                json_decref(body);
                return;
            }
            grace = json_integer_value(value);
        }
        json_decref(body);
    }
    int rc = gh_store_key_rotate(app->store, req->params[0], grace, &w, &out, &err);
    answer(app, res, rc, out, &err, 201, 1);
}

static void keys_delete(void *ctx, const struct gh_admin_request *req,
                        struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_store_error err;
    json_t *key = NULL;
    if (gh_store_get(app->store, GH_KIND_KEY, req->params[1], &key, &err) != GH_OK) {
        store_error(res, &err);
        return;
    }
    int mine = strcmp(json_string_value(json_object_get(key, "profile_id")), req->params[0]) == 0;
    json_decref(key);
    if (!mine) {
        gh_admin_error(res, 404, "not_found", NULL, "profile %.64s has no key %.64s",
                       req->params[0], req->params[1]);
        return;
    }
    delete_kind(app, GH_KIND_KEY, req->params[1], req, res);
}

/* ---- providers ---- */

static struct gh_provider *provider_by_id(struct gh_app *app, const char *id)
{
    size_t n = 0;
    struct gh_provider *found = NULL,
                       **all = app->providers ? gh_oidc_providers(app->providers, &n) : NULL;
    for (size_t i = 0; i < n && found == NULL; i++) {
        if (strcmp(gh_provider_id(all[i]), id) == 0)
            found = all[i];
    }
    free(all);
    return found;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(gh_provider_id(*(struct gh_provider *const *)a),
                  gh_provider_id(*(struct gh_provider *const *)b));
}

/* Pages like every list: ordered by id, ?limit= and ?after=. */
static void providers_list(void *ctx, const struct gh_admin_request *req,
                           struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    size_t n = 0, shown = 0;
    int limit;
    if (!parse_limit(req, &limit, res))
        return;
    limit = limit ? limit : 100;
    char *after = gh_admin_query_param(req, "after");
    struct gh_provider **all = app->providers ? gh_oidc_providers(app->providers, &n) : NULL;
    json_t *data = json_array(), *next = json_null();
    const char *last = NULL;
    if (n > 0)
        qsort(all, n, sizeof *all, by_id);
    for (size_t i = 0; i < n; i++) {
        if (after != NULL && strcmp(gh_provider_id(all[i]), after) <= 0)
            continue;
        if (shown == (size_t)limit) { /* more remain: the cursor is the last one shown */
            next = json_string(last);
            break;
        }
        json_array_append_new(data, gh_provider_status(all[i]));
        last = gh_provider_id(all[i]);
        shown++;
    }
    free(all);
    free(after);
    res->body = json_pack("{s:o, s:o}", "data", data, "next", next);
}

static void providers_get(void *ctx, const struct gh_admin_request *req,
                          struct gh_admin_response *res)
{
    struct gh_provider *p = provider_by_id(ctx, req->params[0]);
    if (p == NULL) {
        gh_admin_error(res, 404, "not_found", NULL, "no provider has the id %.64s", req->params[0]);
        return;
    }
    res->body = gh_provider_status(p);
}

static void providers_refresh(void *ctx, const struct gh_admin_request *req,
                              struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_provider *p = provider_by_id(app, req->params[0]);
    if (p == NULL) {
        gh_admin_error(res, 404, "not_found", NULL, "no provider has the id %.64s", req->params[0]);
        return;
    }
    int rc = gh_provider_check_now(p, app->validate_timeout_ms);
    json_t *status = gh_provider_status(p);
    if (rc == GH_OK) {
        res->body = status;
        return;
    }
    /* the IdP failed us: an error answer (so scripts and the CLI see it), with the provider's
     * status beside it; the last good keys keep serving */
    const char *why = json_string_value(json_object_get(status, "last_error"));
    gh_admin_error(res, 502, "bad_gateway", NULL, "the refresh of provider %s failed: %s",
                   gh_provider_id(p), why != NULL ? why : gh_error_message(rc));
    json_object_set_new(res->body, "provider", status);
}

/* ---- the audit log ---- */

/* GET /v1/audit: newest first, paged like every list, ?kind= and ?id= filter. */
static void audit_list(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_store_error err;
    json_t *out = NULL;
    int limit;
    if (!parse_limit(req, &limit, res))
        return;
    char *after = gh_admin_query_param(req, "after"), *kind = gh_admin_query_param(req, "kind"),
         *id = gh_admin_query_param(req, "id");
    int rc = gh_store_audit_list(app->store, kind, id, after, limit, &out, &err);
    free(after);
    free(kind);
    free(id);
    answer(app, res, rc, out, &err, 200, 0);
}

/* ---- the whole configuration ---- */

/* An export with the secrets (key hashes, jwt keys) is audited and logged before it is made, and
 * not made when it cannot be audited: nobody takes the secrets without a trace. */
static int audit_export(struct gh_app *app, const struct gh_admin_request *req,
                        struct gh_admin_response *res)
{
    struct gh_actor actor = request_actor(req);

    if (gh_store_audit_event(app->store, "export_secrets", "config", &actor, NULL) != GH_OK) {
        gh_admin_error(res, 500, "internal", NULL,
                       "the database failed while auditing the export; nothing was exported");
        return GH_ERR_IO;
    }
    gh_log(GH_LOG_INFO, "configuration exported with secrets",
           json_pack("{s:s, s:s, s:s, s:s}", "action", "export_secrets", "kind", "config", "actor",
                     actor.name, "remote_addr", actor.remote_addr));
    return GH_OK;
}

static void config_get(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_store_error err;
    json_t *out = NULL;
    int secrets = query_is_true(req, "secrets");

    if (secrets && audit_export(app, req, res) != GH_OK)
        return;
    int rc = gh_store_export(app->store, secrets, &out, &err);
    answer(app, res, rc, out, &err, 200, 0);
}

void gh_app_auth_denied(void *ctx, const struct gh_admin_denial *d)
{
    struct gh_app *app = ctx;
    struct gh_actor actor = {d->remote_addr, NULL}; /* who it was is what failed */
    json_t *detail = json_pack("{s:s, s:s, s:b, s:s, s:I}", "method", d->method, "path", d->path,
                               "token_presented", d->token_presented, "reason", d->reason,
                               "suppressed", (json_int_t)d->suppressed);

    /* the log line is written already (admin/http.c); a failed row is said, not fatal */
    if (detail == NULL ||
        gh_store_audit_event(app->store, "denied", "auth", &actor, detail) != GH_OK)
        gh_log(GH_LOG_ERROR, "cannot record a refused admin authentication in the audit log",
               json_pack("{s:s}", "remote_addr", d->remote_addr));
    json_decref(detail);
}

/* SPEC §4's IdP check for a configuration being applied, before anything is written: each
 * profile is checked by needs_idp_check against the stored profile of its id, so a configuration
 * still applies again while one of its IdPs is down, and deactivating profiles never waits on one.
 * Malformed profiles are left to the store's validation, which answers for them. */
static int check_applied_profiles(struct gh_app *app, const json_t *doc, struct gh_store_error *err)
{
    const json_t *profiles = json_object_get(doc, "profiles"), *item;
    struct check_ctx ctx = {app};
    size_t i;
    int rc = GH_OK;

    json_array_foreach ((json_t *)profiles, i, item) {
        const char *id = json_string_value(json_object_get(item, "id"));
        struct gh_store_error ignored;
        json_t *stored = NULL;
        if ((json_string_value(json_object_get(item, "oidc_discovery_url")) == NULL) ==
            (json_string_value(json_object_get(item, "oidc_jwks_uri")) == NULL))
            continue;
        if (id != NULL)
            gh_store_get(app->store, GH_KIND_PROFILE, id, &stored, &ignored);
        rc = check_oidc_profile(&ctx, stored, item, err);
        json_decref(stored);
        if (rc != GH_OK) {
            char message[sizeof err->message + 64];
            snprintf(message, sizeof message, "profile %.40s: %s", id != NULL ? id : "(new)",
                     err->message);
            snprintf(err->message, sizeof err->message, "%.*s", (int)sizeof err->message - 1,
                     message);
            snprintf(err->field, sizeof err->field, "profiles");
            break;
        }
    }
    return rc;
}

/* PUT /v1/config: ?prune=true deletes what the document leaves out (without it such an apply is
 * a 409 that carries the plan), ?dry_run=true answers the plan and changes nothing. */
static void config_put(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_actor actor = request_actor(req);
    struct gh_write_options w = {&actor, NULL, NULL};
    struct gh_import_options o = {query_is_true(req, "prune"), query_is_true(req, "dry_run")};
    struct gh_store_error err;
    json_t *body = gh_admin_json_body(req, res), *out = NULL;
    if (body == NULL)
        return;
    int rc = json_is_object(body) && wants_validation(req) ? check_applied_profiles(app, body, &err)
                                                           : GH_OK;
    if (rc == GH_OK)
        rc = gh_store_import(app->store, body, &o, &w, &out, &err);
    json_decref(body);
    if (o.dry_run || rc != GH_OK) { /* providers the check made for profiles not saved go */
        struct gh_config *current = gh_app_config(app);
        retain_used_providers(app, current);
        gh_config_unref(current);
    }
    if (rc != GH_OK && out != NULL) { /* a refused prune: the error, and the plan it refused */
        store_error(res, &err);
        json_object_set(res->body, "plan", json_object_get(out, "plan"));
        json_decref(out);
        return;
    }
    answer(app, res, rc, out, &err, 200, !o.dry_run);
}

/* The header `name` of an explain request's "headers" object (names compared case-insensitively).
 */
static const char *explain_header(const json_t *headers, const char *name, size_t *len)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)headers, key, value) {
        if (strcasecmp(key, name) == 0 && json_is_string(value)) {
            *len = json_string_length(value);
            return json_string_value(value);
        }
    }
    *len = 0;
    return NULL;
}

static json_t *explain_answer(const struct gh_decision *d)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < d->n_steps; i++)
        json_array_append_new(steps, json_pack("{s:s, s:b, s:s}", "step", d->steps[i].name, "ok",
                                               d->steps[i].ok, "detail", d->steps[i].detail));
    const char *reason = d->outcome == GH_OUTCOME_REFETCH ? "unknown_kid"
                         : d->reason != 0                 ? gh_error_reason(d->reason)
                                                          : NULL;
    return json_pack(
        "{s:i, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:o}", "status",
        d->outcome == GH_OUTCOME_REFETCH ? 401 : d->status, "error",
        d->outcome == GH_OUTCOME_REFETCH ? "invalid_token" : d->error, "reason", reason, "message",
        d->outcome == GH_OUTCOME_ALLOW     ? "The request would be proxied."
        : d->outcome == GH_OUTCOME_REFETCH ? "The token's kid is unknown: the gateway would "
                                             "refetch the IdP's keys and decide again."
                                           : d->message,
        "collection_id", d->collection ? d->collection->id : NULL, "endpoint_id",
        d->endpoint ? d->endpoint->id : NULL, "profile_id", d->profile ? d->profile->id : NULL,
        "steps", steps);
}

/* POST /v1/explain: the gateway's checks for a described request, without proxying it. */
static void explain(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    struct gh_request_view view = {.family = 4, .addr = {127, 0, 0, 1}, .explain = 1};
    struct gh_decision d;
    json_t *body = gh_admin_json_body(req, res);
    if (body == NULL)
        return;
    const json_t *method = json_object_get(body, "method"), *path = json_object_get(body, "path");
    const json_t *headers = json_object_get(body, "headers"),
                 *client = json_object_get(body, "client_ip");
    if (!json_is_string(method) || !json_is_string(path) ||
        (headers != NULL && !json_is_object(headers)) ||
        (client != NULL && !json_is_string(client))) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "explain needs {\"method\": string, \"path\": string, \"headers\": object, "
                       "\"client_ip\": string (optional)}");
        json_decref(body);
        return;
    }
    if (client != NULL) {
        if (inet_pton(AF_INET, json_string_value(client), view.addr) != 1) {
            view.family = 6;
            if (inet_pton(AF_INET6, json_string_value(client), view.addr) != 1) {
                gh_admin_error(res, 422, "validation_failed", "client_ip",
                               "client_ip is not an IP address");
                json_decref(body);
                return;
            }
        }
    }
    view.method = json_string_value(method);
    view.method_len = json_string_length(method);
    view.path = json_string_value(path);
    view.path_len = strcspn(view.path, "?"); /* the gateway routes without the query string */
    if (view.path[view.path_len] == '?') {   /* but refuses a '#' in it */
        view.query = view.path + view.path_len + 1;
        view.query_len = json_string_length(path) - view.path_len - 1;
    }
    view.authorization = explain_header(headers, "authorization", &view.authorization_len);
    view.api_token = explain_header(headers, "api-token", &view.api_token_len);
    struct gh_config *config = gh_app_config(app);
    static const struct gh_gateway_settings no_settings;
    gh_gateway_decide(app->settings != NULL ? app->settings : &no_settings, config, &view,
                      gh_clock_wall_seconds(), 0, &d);
    res->body = explain_answer(&d);
    gh_decision_clear(&d);
    gh_config_unref(config);
    json_decref(body);
}

/* ---- health ---- */

static void healthz(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    (void)ctx, (void)req;
    res->body = json_pack("{s:s}", "status", "ok");
}

/* One provider's state for /readyz?verbose: ok, stale (serving its last good keys past their
 * lifetime) or unavailable (its tokens get keys_unavailable). */
static json_t *provider_readiness(struct gh_provider *p)
{
    json_t *status = gh_provider_status(p);
    int available = json_is_true(json_object_get(status, "available"));
    int stale = json_is_true(json_object_get(status, "stale"));
    json_t *entry = json_pack(
        "{s:s, s:s, s:O?, s:s, s:b, s:b, s:I, s:O?, s:O?}", "id", gh_provider_id(p), "url",
        gh_provider_url(p), "issuer", json_object_get(status, "issuer"), "state",
        !available ? "unavailable"
        : stale    ? "stale"
                   : "ok",
        "available", available, "stale", stale, "keys",
        (json_int_t)json_array_size(json_object_get(status, "keys")), "fetched_at",
        json_object_get(status, "fetched_at"), "last_error", json_object_get(status, "last_error"));
    json_decref(status);
    return entry;
}

static int wants_verbose(const struct gh_admin_request *req)
{
    char *v = gh_admin_query_param(req, "verbose");
    int verbose = v != NULL && strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
    free(v);
    return verbose;
}

int gh_app_store_reachable(struct gh_app *app)
{
    struct gh_store_watch *watch = atomic_load(&app->watch);
    return watch != NULL ? gh_store_watch_reachable(watch) : gh_store_ping(app->store);
}

/*
 * SPEC §6: ready means this node can serve: a configuration is published and the gateway listens
 * (not yet while serve starts it, no longer once SIGTERM began a drain: a load balancer then sends
 * new requests elsewhere). The store answering is not part of it once a configuration is
 * published: the gateway serves from the snapshot, never from the database, and every node of a
 * cluster shares one database, so a database that blinks would make a load balancer pull every
 * node at once for nothing. The body says the store is unreachable ("store"), as /metrics does.
 * Likewise one IdP's trouble never makes the node unready: a load balancer would take the node out
 * for every customer because of one customer's IdP, and every node alike. Providers' health is in
 * /v1/providers, /metrics and here with ?verbose, which never changes the status.
 */
static void readyz(void *ctx, const struct gh_admin_request *req, struct gh_admin_response *res)
{
    struct gh_app *app = ctx;
    json_t *reasons = json_array();
    struct gh_config *config = gh_app_config(app);
    int reachable = gh_app_store_reachable(app);

    if (config == NULL)
        json_array_append_new(reasons, json_string(reachable ? "no configuration is loaded"
                                                             : "no configuration is loaded: the "
                                                               "configuration store cannot be "
                                                               "reached"));
    if (!atomic_load(&app->serving))
        json_array_append_new(reasons,
                              json_string("the gateway is not listening (starting, or draining)"));
    json_t *store =
        json_pack("{s:s, s:b}", "location", gh_store_location(app->store), "reachable", reachable);
    if (!reachable)
        json_object_set_new(store, "message",
                            json_string(config != NULL
                                            ? "the configuration store cannot be reached: this "
                                              "node serves its last configuration and admin "
                                              "writes answer 503 until it is back"
                                            : "the configuration store cannot be reached: this "
                                              "node serves nothing until it is"));
    if (config != NULL)
        json_object_set_new(store, "generation", json_integer((json_int_t)config->generation));
    gh_config_unref(config);
    int ready = json_array_size(reasons) == 0;
    res->status = ready ? 200 : 503;
    res->body = json_pack("{s:b, s:o, s:o}", "ready", ready, "reasons", reasons, "store", store);
    if (res->body != NULL && wants_verbose(req)) {
        size_t n = 0;
        struct gh_provider **all = app->providers ? gh_oidc_providers(app->providers, &n) : NULL;
        json_t *providers = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(providers, provider_readiness(all[i]));
        free(all);
        json_object_set_new(res->body, "providers", providers);
    }
}

const struct gh_admin_route gh_admin_routes[] = {
    {"GET", "/healthz", healthz, 1, 0},
    {"GET", "/readyz", readyz, 0, 1},
    {"GET", "/metrics", gh_app_metrics, 0, 1},
    {"GET", "/v1/collections", collections_list, 0, 0},
    {"POST", "/v1/collections", collections_create, 0, 0},
    {"GET", "/v1/collections/{id}", collections_get, 0, 0},
    {"PATCH", "/v1/collections/{id}", collections_update, 0, 0},
    {"DELETE", "/v1/collections/{id}", collections_delete, 0, 0},
    {"GET", "/v1/collections/{id}/endpoints", collection_endpoints_list, 0, 0},
    {"POST", "/v1/collections/{id}/endpoints", collection_endpoints_create, 0, 0},
    {"GET", "/v1/endpoints", endpoints_list, 0, 0},
    {"GET", "/v1/endpoints/{id}", endpoints_get, 0, 0},
    {"PATCH", "/v1/endpoints/{id}", endpoints_update, 0, 0},
    {"DELETE", "/v1/endpoints/{id}", endpoints_delete, 0, 0},
    {"GET", "/v1/clients", clients_list, 0, 0},
    {"POST", "/v1/clients", clients_create, 0, 0},
    {"GET", "/v1/clients/{id}", clients_get, 0, 0},
    {"PATCH", "/v1/clients/{id}", clients_update, 0, 0},
    {"DELETE", "/v1/clients/{id}", clients_delete, 0, 0},
    {"GET", "/v1/profiles", profiles_list, 0, 0},
    {"POST", "/v1/profiles", profiles_create, 0, 0},
    {"GET", "/v1/profiles/{id}", profiles_get, 0, 0},
    {"PATCH", "/v1/profiles/{id}", profiles_update, 0, 0},
    {"DELETE", "/v1/profiles/{id}", profiles_delete, 0, 0},
    {"GET", "/v1/profiles/{id}/keys", keys_list, 0, 0},
    {"POST", "/v1/profiles/{id}/keys", keys_create, 0, 0},
    {"DELETE", "/v1/profiles/{id}/keys/{key_id}", keys_delete, 0, 0},
    {"GET", "/v1/policies", policies_list, 0, 0},
    {"POST", "/v1/policies", policies_create, 0, 0},
    {"GET", "/v1/policies/{id}", policies_get, 0, 0},
    {"PATCH", "/v1/policies/{id}", policies_update, 0, 0},
    {"DELETE", "/v1/policies/{id}", policies_delete, 0, 0},
    {"GET", "/v1/providers", providers_list, 0, 0},
    {"GET", "/v1/providers/{id}", providers_get, 0, 0},
    {"POST", "/v1/providers/{id}/refresh", providers_refresh, 0, 0},
    {"POST", "/v1/explain", explain, 0, 0},
    {"GET", "/v1/config", config_get, 0, 0},
    {"PUT", "/v1/config", config_put, 0, 0},
    {"GET", "/v1/audit", audit_list, 0, 0},
};

const size_t gh_admin_route_count = sizeof gh_admin_routes / sizeof gh_admin_routes[0];
