// SPDX-License-Identifier: Apache-2.0
/*
 * JSON from the network, parsed with the rules of SPEC §3: an explicit length (no NUL needed),
 * duplicate member names rejected, nesting limited before the parser recurses, and nothing but
 * whitespace after the value. Jansson does the parsing; this file adds the limits it lacks.
 */
#ifndef GH_COMMON_JSON_H
#define GH_COMMON_JSON_H

#include <jansson.h>
#include <stddef.h>

#define GH_JSON_MAX_DEPTH 16

/*
 * Parses `len` bytes into a JSON object. On success *out is a new reference the caller releases
 * with json_decref. Errors: GH_ERR_JSON_DEPTH, GH_ERR_JSON_DUPLICATE, GH_ERR_JSON_SYNTAX,
 * GH_ERR_JSON_NOT_OBJECT.
 */
int gh_json_parse_object(const void *buf, size_t len, json_t **out);

/* Parses any JSON value with the same rules (our own strict reader, see json_parse.c). */
int gh_json_read(const void *buf, size_t len, json_t **out);

/* Nesting depth of the JSON text (objects and arrays), or max_depth + 1 once it passes max_depth.
 */
int gh_json_depth(const void *buf, size_t len, int max_depth);

/*
 * The member `name` of `obj` when it is a non-empty string: GH_OK with a borrowed pointer and its
 * length (the string may contain NUL bytes only if the parser allowed them, which ours does not).
 * GH_ERR_MISSING_CLAIM when absent or empty, GH_ERR_CLAIM_TYPE when not a string.
 */
int gh_json_string_member(const json_t *obj, const char *name, const char **value, size_t *len);

#endif
