// SPDX-License-Identifier: Apache-2.0
/*
 * The objects of SPEC §1 as data: each kind's fields with their types, defaults and rules, and the
 * functions that turn an admin API request body into a complete, valid object document (create) or
 * apply a partial one (update). Pure: no database here; references to other objects are checked by
 * store.c, which knows what exists. Internal to src/store.
 */
#ifndef GH_STORE_MODEL_H
#define GH_STORE_MODEL_H

#include <jansson.h>

#include "store/store.h"

#define GH_ID_RANDOM_CHARS 16

/* Writes "<prefix>_" + GH_ID_RANDOM_CHARS base62 characters from the CSPRNG into `out` (32 bytes).
 */
int gh_model_new_id(enum gh_kind kind, char *out);

/* The id prefix of a kind ("col", "ep", ...), and whether `id` has the kind's form. */
const char *gh_model_id_prefix(enum gh_kind kind);
int gh_model_id_valid(enum gh_kind kind, const char *id);

/*
 * Validates `input` against the kind's fields and merges it into a document: over the defaults when
 * `base` is NULL (create), over `base` otherwise (update: fields absent from `input` keep their
 * values). Unknown or read-only fields are refused (422 naming them), wrong JSON types are 400,
 * rule violations 422; on success *out is the new document (without id and timestamps). Cross-field
 * rules (auth types) are checked too, but not whether referenced objects exist.
 */
int gh_model_merge(enum gh_kind kind, const json_t *base, const json_t *input, json_t **out,
                   struct gh_store_error *err);

/* The document as the API shows it: write-only fields (jwt_key) and key hashes removed unless
 * `secrets`. A new reference. */
json_t *gh_model_public(enum gh_kind kind, const json_t *doc, int secrets);

/* Fills `err`. */
void gh_model_error(struct gh_store_error *err, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A new access profile key (SPEC §1): `plain` receives "gk_" + 43 base64url characters (47 bytes
 * and a NUL), `hash_hex` its SHA-256 in hex (65 bytes), `prefix` its first 8 characters (9 bytes).
 */
int gh_model_new_key(char *plain, char *hash_hex, char *prefix);

/* SHA-256 hex of a presented key, as the store keeps it. */
void gh_model_key_hash(const char *key, size_t len, char *hash_hex);

#endif
