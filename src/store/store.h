// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration store (SPEC §1, §6): collections, endpoints, clients, access profiles, keys and
 * policies, validated and kept in a database, with an audit record of every change. Objects travel
 * as JSON objects in the shapes of the admin API, so the admin layer only moves them. Everything
 * that is not SQL lives here and in model.c; the SQL lives behind struct gh_store_backend (SQLite
 * for one node, PostgreSQL for several sharing a database). Only a node's admin thread writes;
 * the gateway reads the immutable snapshot built from the store after each committed change
 * (config.h).
 */
#ifndef GH_STORE_STORE_H
#define GH_STORE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "oidc/provider.h"

enum gh_kind {
    GH_KIND_COLLECTION,
    GH_KIND_ENDPOINT,
    GH_KIND_CLIENT,
    GH_KIND_PROFILE,
    GH_KIND_POLICY,
    GH_KIND_KEY,
    GH_KIND_COUNT
};

/* Why a request to the store was refused, in the terms of SPEC §6. */
struct gh_store_error {
    int status;        /* 400, 404, 409, 422, 500, 503 */
    const char *code;  /* "bad_request", "not_found", "conflict", "validation_failed", "internal",
                          "store_unavailable" (the database cannot be reached) */
    char field[64];    /* the field at fault, "" when none */
    char message[512]; /* one sentence; never a secret */
};

/* Who made a change, for the audit table and the change's log line. */
struct gh_actor {
    const char *remote_addr;
    const char *name; /* the admin token's name ("bootstrap" for the token serve made or was
                         given); NULL: unknown */
};

struct gh_store;

/*
 * Opens the store named by `url`, applying the migrations it lacks: "sqlite:PATH",
 * "sqlite::memory:", a PostgreSQL URL ("postgres://USER:PASSWORD@HOST:PORT/DBNAME", also
 * "postgresql://"), "postgres:" followed by a libpq key=value string ("postgres:host=127.0.0.1
 * dbname=gh"), or "postgres:" alone (libpq's PG* environment variables). `error` receives a
 * message on failure (GH_ERR_IO, GH_ERR_INVALID_ARG, GH_ERR_STORE_UNAVAILABLE when PostgreSQL
 * cannot be reached); it never repeats a PostgreSQL URL or its password.
 */
int gh_store_open(const char *url, struct gh_store **out, char *error, size_t cap);

/* The same for a node that starts while PostgreSQL may be away: when it cannot be reached, *out
 * is a store all the same and GH_ERR_STORE_UNAVAILABLE is returned with `error` saying why; its
 * calls answer GH_ERR_STORE_UNAVAILABLE (503) until one connects (and migrates). */
int gh_store_open_waiting(const char *url, struct gh_store **out, char *error, size_t cap);

/* Whether `url` names a store this build can open, without opening it (a PostgreSQL string is
 * parsed, not connected to): GH_OK, or GH_ERR_INVALID_ARG with `error` saying which forms are
 * known. It never repeats a PostgreSQL string nor what could be a password. */
int gh_store_check_url(const char *url, char *error, size_t cap);
void gh_store_close(struct gh_store *s);

/* Where the store is, as logs may say it: sqlite:PATH, or postgres://HOST:PORT/DBNAME without a
 * user or password. Owned by the store. */
const char *gh_store_location(const struct gh_store *s);

/* The number of the latest committed change; a configuration snapshot carries the one it saw. */
uint64_t gh_store_generation(const struct gh_store *s);

/*
 * A hook the store calls while creating or updating a profile, after the fields are valid and
 * before anything is written: the admin layer checks an oidc profile's IdP there (SPEC §4).
 * `before` is the stored profile an update starts from (NULL on create), so the hook can leave
 * alone what does not touch the IdP. Return GH_OK, or fill `err` (422 with field) and return an
 * error.
 */
typedef int (*gh_profile_check)(void *ctx, const json_t *before, const json_t *profile,
                                struct gh_store_error *err);

struct gh_write_options {
    const struct gh_actor *actor;
    gh_profile_check check_profile; /* NULL: no check */
    void *check_ctx;
};

/*
 * Objects. `input` is the JSON object from the admin API (borrowed). On success *out is the object
 * as the API shows it (a new reference). A rejected write changes nothing. For GH_KIND_PROFILE,
 * creation also makes the first key: *out then has "key" with its plain text, shown only once.
 * `parent_id` is the collection of a new endpoint (and the profile of a new key).
 */
int gh_store_create(struct gh_store *s, enum gh_kind kind, const char *parent_id,
                    const json_t *input, const struct gh_write_options *w, json_t **out,
                    struct gh_store_error *err);
int gh_store_update(struct gh_store *s, enum gh_kind kind, const char *id, const json_t *patch,
                    const struct gh_write_options *w, json_t **out, struct gh_store_error *err);
int gh_store_delete(struct gh_store *s, enum gh_kind kind, const char *id,
                    const struct gh_write_options *w, struct gh_store_error *err);
int gh_store_get(struct gh_store *s, enum gh_kind kind, const char *id, json_t **out,
                 struct gh_store_error *err);

/* A page of objects ordered by id: {"data":[...],"next":cursor|null}. `parent_id` filters
 * endpoints by collection and keys by profile (NULL: all). `limit` 1..1000 (0: 100). */
int gh_store_list(struct gh_store *s, enum gh_kind kind, const char *parent_id, const char *after,
                  int limit, json_t **out, struct gh_store_error *err);

/*
 * A new key for a profile (SPEC §1): the other keys are revoked at once, or stay valid for
 * `grace_seconds` (> 0). *out is the key object with "key": its plain text.
 */
int gh_store_key_rotate(struct gh_store *s, const char *profile_id, int64_t grace_seconds,
                        const struct gh_write_options *w, json_t **out, struct gh_store_error *err);

/* The whole configuration as one document: {"collections":[...],"endpoints":[...],...}. With
 * `secrets`, profiles carry jwt_key and keys their SHA-256 (`hash`); without, neither. */
int gh_store_export(struct gh_store *s, int secrets, json_t **out, struct gh_store_error *err);

/* How an apply treats what the document leaves out, and whether it writes at all. */
struct gh_import_options {
    int prune;   /* delete the objects the document does not mention; without it such an apply
                    is refused (409) and changes nothing */
    int dry_run; /* work out the plan and the counts, then roll everything back */
};

/*
 * Replaces the whole configuration with `doc` (the export format) in one transaction. Keys given
 * with `hash` keep working; a document without "keys" keeps the stored keys of its profiles; a
 * new profile that ends up without a key gets one. *summary (also on a 409 refusal, NULL
 * otherwise on error) is {"<kind>": count after the apply, ..., "generation", "plan": {"<kind>":
 * {"created":[{id,name}], "changed":[...], "deleted":[...], "unchanged": N}}, "new_keys":
 * [{profile_id, profile_name, id, prefix, key}]}: "key" is the plain text, shown only this once
 * (never in a dry run, which also says "dry_run": true). `o` NULL: prune, no dry run.
 */
int gh_store_import(struct gh_store *s, const json_t *doc, const struct gh_import_options *o,
                    const struct gh_write_options *w, json_t **summary, struct gh_store_error *err);

/*
 * Records in the audit log an event that changes nothing: a refused admin authentication (kind
 * "auth", action "denied"), an export of the secrets (kind "config", action "export_secrets").
 * `detail` (NULL: none) is kept as JSON and must be valid UTF-8. GH_OK or GH_ERR_IO.
 */
int gh_store_audit_event(struct gh_store *s, const char *action, const char *kind,
                         const struct gh_actor *actor, const json_t *detail);

/*
 * A page of the audit log, newest first: {"data":[{"seq","at","action","kind","id","actor",
 * "remote_addr","detail"}],"next":cursor|null}. `kind` ("profiles" or "profile", "config", "auth")
 * and `id` filter when set; `after` is a cursor from "next"; `limit` 1..1000 (0: 100).
 */
int gh_store_audit_list(struct gh_store *s, const char *kind, const char *id, const char *after,
                        int limit, json_t **out, struct gh_store_error *err);

/* The provider cache of SPEC §4 (last good discovery document and key set per URL). */
const struct gh_oidc_persistence *gh_store_persistence(struct gh_store *s);

/* Quota counters of the gateway's rate limiter (window index and count per profile). */
int gh_store_quota_load_all(struct gh_store *s,
                            void (*visit)(void *arg, const char *profile_id, int64_t window,
                                          int64_t count),
                            void *arg);
int gh_store_quota_save(struct gh_store *s, const char *profile_id, int64_t window, int64_t count);

/* 1 when the database answers a trivial query (readiness). */
int gh_store_ping(struct gh_store *s);

/* Every object of every kind in one consistent read, for building the gateway's snapshot:
 * {"collections":[...],...,"keys":[{..., "hash":"hex"}], "profiles":[{..., "jwt_key":...}]}. */
int gh_store_load_all(struct gh_store *s, json_t **out, struct gh_store_error *err);

/* Names of the kinds as the API spells them in paths and documents ("collections", ...). */
const char *gh_kind_plural(enum gh_kind kind);
const char *gh_kind_singular(enum gh_kind kind); /* "collection", ... */

#endif
