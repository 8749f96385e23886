// SPDX-License-Identifier: Apache-2.0
/*
 * The limits of SPEC §3 on parsed JSON, and small readers over Jansson values. Nesting is limited
 * while parsing (json_parse.c) and can be measured on its own (gh_json_depth) without parsing.
 */
#include "common/json.h"

#include "common/error.h"

int gh_json_depth(const void *buf, size_t len, int max_depth)
{
    const unsigned char *p = buf;
    int depth = 0, deepest = 0, in_string = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character can be neither a quote nor a bracket that counts */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > max_depth)
                    return max_depth + 1;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return deepest;
}

int gh_json_parse_object(const void *buf, size_t len, json_t **out)
{
    json_t *value;
    int rc;

    *out = NULL;
    if ((rc = gh_json_read(buf, len, &value)) != GH_OK)
        return rc;
    if (!json_is_object(value)) {
        json_decref(value);
        return GH_ERR_JSON_NOT_OBJECT;
    }
    *out = value;
    return GH_OK;
}

int gh_json_string_member(const json_t *obj, const char *name, const char **value, size_t *len)
{
    const json_t *member = json_object_get(obj, name);

    *value = NULL;
    *len = 0;
    if (member == NULL)
        return GH_ERR_MISSING_CLAIM;
    if (!json_is_string(member))
        return GH_ERR_CLAIM_TYPE;
    if (json_string_length(member) == 0)
        return GH_ERR_MISSING_CLAIM;
    *value = json_string_value(member);
    *len = json_string_length(member);
    return GH_OK;
}
