// SPDX-License-Identifier: Apache-2.0
/*
 * What admin API handlers use to read a request and to answer: the JSON error body every refusal
 * carries, the request body as one JSON object with a reason when it is not one, and query
 * parameters decoded. Apart from http.c so that the listener's file is about HTTP and routing.
 */
#include "admin/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

void gh_admin_response_clear(struct gh_admin_response *res)
{
    json_decref(res->body);
    free(res->text);
    res->body = NULL;
    res->text = NULL;
    res->content_type = NULL;
}

/* A JSON string of `s`; bytes that are not valid UTF-8 (a cut message, a client's bytes) become
 * '?' rather than making the whole answer fail. */
static json_t *utf8_string(const char *s)
{
    json_t *v = json_string(s);
    char *copy;

    if (v != NULL || (copy = strdup(s)) == NULL)
        return v;
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

void gh_admin_error(struct gh_admin_response *res, int status, const char *code, const char *field,
                    const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    gh_admin_response_clear(res);
    res->status = status;
    if ((res->body = json_object()) == NULL)
        return;
    json_object_set_new(res->body, "error", utf8_string(code));
    json_object_set_new(res->body, "message", utf8_string(message));
    if (field != NULL)
        json_object_set_new(res->body, "field", utf8_string(field));
}

json_t *gh_admin_json_body(const struct gh_admin_request *req, struct gh_admin_response *res)
{
    json_error_t err;
    json_t *obj = NULL, *any;
    int rc;

    if (req->body == NULL || req->body_len == 0) {
        gh_admin_error(res, 400, "bad_request", NULL, "the body is not a JSON object: it is empty");
        return NULL;
    }
    rc = gh_json_parse_object(req->body, req->body_len, &obj);
    if (rc == GH_OK)
        return obj;
    if (rc == GH_ERR_JSON_DEPTH) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: it nests deeper than %d levels",
                       GH_JSON_MAX_DEPTH);
    } else if (rc == GH_ERR_JSON_DUPLICATE) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: an object in it repeats a member name");
    } else if (rc == GH_ERR_JSON_NOT_OBJECT) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: it is JSON of another type");
    } else {
        /* parsed again only to say where; Jansson's own text is not used since it quotes input */
        any = json_loadb((const char *)req->body, req->body_len, JSON_DECODE_ANY, &err);
        json_decref(any);
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: it is not valid JSON (line %d, column %d)",
                       err.line, err.column);
    }
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes `len` bytes of a query component into `dst` (room for len + 1): %XX escapes and '+'
 * for a space, as in HTML forms. -1 for a broken escape or %00, which no caller can use. */
static int percent_decode(const char *src, size_t len, char *dst)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%') {
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
            if (lo < 0 || (hi | lo) == 0)
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = src[i] == '+' ? ' ' : src[i];
        }
    }
    dst[o] = '\0';
    return 0;
}

char *gh_admin_query_param(const struct gh_admin_request *req, const char *name)
{
    const char *p = req != NULL && req->query != NULL ? req->query : "";

    while (name != NULL && *p != '\0') {
        size_t len = strcspn(p, "&"), key_len = strcspn(p, "=&");
        char *key = malloc(key_len + 1), *value;
        int match = key != NULL && percent_decode(p, key_len, key) == 0 && strcmp(key, name) == 0;
        free(key);
        if (match) {
            size_t value_len = key_len < len ? len - key_len - 1 : 0;
            if ((value = malloc(value_len + 1)) == NULL)
                return NULL;
            if (percent_decode(p + len - value_len, value_len, value) == 0)
                return value;
            free(value);
            return NULL; /* the first occurrence decides, even when it is broken */
        }
        p += len;
        p += *p == '&';
    }
    return NULL;
}
