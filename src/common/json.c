/*
 * The limits of SPEC §3 around Jansson. Depth is measured by a scan before parsing so that a token
 * of ten thousand '[' costs one pass over its bytes, not ten thousand recursive parser frames.
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
    json_error_t err;
    json_t *value;

    *out = NULL;
    if (gh_json_depth(buf, len, GH_JSON_MAX_DEPTH) > GH_JSON_MAX_DEPTH)
        return GH_ERR_JSON_DEPTH;
    value = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (value == NULL)
        return json_error_code(&err) == json_error_duplicate_key ? GH_ERR_JSON_DUPLICATE
                                                                 : GH_ERR_JSON_SYNTAX;
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
