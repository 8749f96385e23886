// SPDX-License-Identifier: Apache-2.0
/*
 * The claim list of SPEC §2. It is parsed once at start (from --key-claims) and read on every
 * request, so lookups are a few hash-table gets on the already parsed header and payload.
 */
#include "jose/keyclaims.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

#define HEADER_PREFIX "header:"

void gh_key_claims_clear(struct gh_key_claims *claims)
{
    for (size_t i = 0; i < claims->count; i++)
        free(claims->items[i].name);
    memset(claims, 0, sizeof *claims);
}

int gh_key_claims_parse(const char *list, struct gh_key_claims *out)
{
    const char *p = list;

    memset(out, 0, sizeof *out);
    do {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        struct gh_key_claim *item = &out->items[out->count];
        if (out->count == GH_KEY_CLAIMS_MAX)
            goto fail;
        if (len >= strlen(HEADER_PREFIX) && strncmp(p, HEADER_PREFIX, strlen(HEADER_PREFIX)) == 0) {
            item->in_header = 1;
            p += strlen(HEADER_PREFIX);
            len -= strlen(HEADER_PREFIX);
        }
        if (len == 0 || (item->name = strndup(p, len)) == NULL)
            goto fail;
        out->count++;
        p += len;
    } while (*p++ == ',');
    return GH_OK;
fail:
    gh_key_claims_clear(out);
    return GH_ERR_INVALID_ARG;
}

int gh_key_claims_find(const struct gh_key_claims *list, const json_t *header,
                       const json_t *payload, const char **value, size_t *len, size_t *index)
{
    *value = NULL;
    *len = 0;
    *index = 0;
    for (size_t i = 0; i < list->count; i++) {
        const struct gh_key_claim *item = &list->items[i];
        if (gh_json_string_member(item->in_header ? header : payload, item->name, value, len) ==
            GH_OK) {
            *index = i;
            return GH_OK;
        }
    }
    return GH_ERR_NO_PROFILE_KEY;
}
