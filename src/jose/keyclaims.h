// SPDX-License-Identifier: Apache-2.0
/*
 * Where a JWT carries its access profile key (SPEC §2): an ordered list of claims, each in the
 * payload or, with the prefix "header:", in the JOSE header. The first claim present as a non-empty
 * string is the candidate; there is no fall-through to later claims when its value is unknown.
 */
#ifndef GH_JOSE_KEYCLAIMS_H
#define GH_JOSE_KEYCLAIMS_H

#include <jansson.h>
#include <stddef.h>

#define GH_KEY_CLAIMS_DEFAULT "https://gatehouse.dev/key,gatehouse_key,sub,header:kid"
#define GH_KEY_CLAIMS_MAX     16

struct gh_key_claim {
    int in_header;
    char *name;
};

struct gh_key_claims {
    size_t count;
    struct gh_key_claim items[GH_KEY_CLAIMS_MAX];
};

/*
 * Parses a comma-separated list ("a,b,header:kid"). GH_ERR_INVALID_ARG for an empty list, an empty
 * name or more than GH_KEY_CLAIMS_MAX names. Free with gh_key_claims_clear.
 */
int gh_key_claims_parse(const char *list, struct gh_key_claims *out);
void gh_key_claims_clear(struct gh_key_claims *claims);

/*
 * The first claim of `list` that is a non-empty string in `payload` (or `header`). GH_OK with the
 * borrowed value, its length and the index in the list; GH_ERR_NO_PROFILE_KEY when none is.
 */
int gh_key_claims_find(const struct gh_key_claims *list, const json_t *header,
                       const json_t *payload, const char **value, size_t *len, size_t *index);

#endif
